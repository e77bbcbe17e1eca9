//! mod_access: `url.access-deny` and `url.access-allow`, suffixes of the URL path. With an
//! allow list, only paths ending in one of its suffixes pass; otherwise paths ending in a deny
//! suffix get 403 ("" denies everything). Checked on the normalised path, and again on the
//! index file a directory request resolves to (the static handler asks [`allowed`] for it).

use crate::config::ReqConf;

/// Whether the access rules let `path` through.
pub fn allowed(conf: &ReqConf, path: &str) -> bool {
    if !conf.access_allow.is_empty() {
        return conf.access_allow.iter().any(|s| path.ends_with(s.as_str()));
    }
    !conf.access_deny.iter().any(|s| path.ends_with(s.as_str()))
}
