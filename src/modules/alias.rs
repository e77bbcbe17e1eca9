//! mod_alias: `alias.url` maps a URL prefix to a directory; the longest prefix wins (the
//! config keeps the list sorted that way).

use crate::config::ReqConf;

/// Where the alias puts `path`: the directory and the rest of the path, which starts with '/'
/// or is empty. Err(403) when the rest would climb out of the directory: an alias key without
/// a trailing slash ("/icons") onto a directory with one ("/usr/share/icons/") would otherwise
/// turn "/icons../x" into "/usr/share/icons/../x".
pub fn map<'a>(conf: &'a ReqConf, path: &'a str) -> Option<Result<(&'a str, &'a str), u16>> {
    let (key, dir) = conf
        .alias
        .iter()
        .find(|(k, _)| path.starts_with(k.as_str()))?;
    let rest = &path[key.len()..];
    // The path is normalised, so "." and ".." can only appear here, glued to the key.
    let first = rest.split('/').next().unwrap_or("");
    if first == "." || first == ".." {
        return Some(Err(403));
    }
    // A rest without a leading slash ("/icons" + "x.png") continues the directory's name, as
    // in lighttpd (which simply concatenates).
    Some(Ok((dir.as_str(), rest)))
}
