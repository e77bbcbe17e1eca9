//! mod_access: `url.access-deny` and `url.access-allow`, suffixes of the URL path. With an
//! allow list, only paths ending in one of its suffixes pass; otherwise paths ending in a deny
//! suffix get 403 ("" denies everything). Checked on the normalised path, and again on the
//! index file a directory request resolves to (the static handler asks [`allowed`] for it).

use crate::config::ReqConf;

/// Whether the access rules let `path` through. With server.force-lowercase-filenames the
/// suffixes match without regard to ASCII case, as in lighttpd: "/x.PHP" is the file
/// "/x.php" there, and must meet the rule for ".php".
pub fn allowed(conf: &ReqConf, path: &str) -> bool {
    let nocase = conf.force_lowercase_filenames;
    let ends = |s: &String| ends_with(path, s, nocase);
    if !conf.access_allow.is_empty() {
        return conf.access_allow.iter().any(ends);
    }
    !conf.access_deny.iter().any(ends)
}

/// `path` ends with `suffix`, compared exactly or, with `nocase`, ignoring ASCII case.
fn ends_with(path: &str, suffix: &str, nocase: bool) -> bool {
    let (p, s) = (path.as_bytes(), suffix.as_bytes());
    match p.len().checked_sub(s.len()).and_then(|at| p.get(at..)) {
        Some(tail) if nocase => tail.eq_ignore_ascii_case(s),
        Some(tail) => tail == s,
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::ends_with;

    #[test]
    fn suffixes_ignore_case_only_when_asked() {
        assert!(ends_with("/a/image.jpg", ".jpg", false));
        assert!(!ends_with("/a/image.JPG", ".jpg", false));
        for p in ["/image.jpg", "/image.JPG", "/IMAGE.Jpg"] {
            assert!(ends_with(p, ".jpg", true), "{p}");
            assert!(ends_with(p, ".JPG", true), "{p}");
        }
        assert!(!ends_with("/image.png", ".jpg", true));
        // Shorter than the suffix, and the empty suffix (which denies everything).
        assert!(!ends_with("jpg", ".jpg", true));
        assert!(ends_with("/x", "", true) && ends_with("", "", false));
        // Non-ASCII bytes are compared exactly even when case is ignored.
        assert!(ends_with("/caf\u{e9}", "\u{e9}", true));
        assert!(!ends_with("/caf\u{e9}", "\u{c9}", true));
    }
}
