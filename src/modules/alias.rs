//! mod_alias: `alias.url` maps a URL prefix to a directory; the longest prefix wins (the
//! config keeps the list sorted that way).

use crate::config::ReqConf;

/// Where the alias puts `path`: the directory and the rest of the path, which starts with '/'
/// or is empty. Err(403) when the rest would climb out of the directory: an alias key without
/// a trailing slash ("/icons") onto a directory with one ("/usr/share/icons/") would otherwise
/// turn "/icons../x" into "/usr/share/icons/../x".
///
/// With server.force-lowercase-filenames the prefixes match without regard to ASCII case, as
/// in lighttpd (where the path is lower-cased before the alias sees it); the rest keeps the
/// request's spelling and is lowered with the rest of the physical path.
pub fn map<'a>(conf: &'a ReqConf, path: &'a str) -> Option<Result<(&'a str, &'a str), u16>> {
    let nocase = conf.force_lowercase_filenames;
    let (rest, dir) = conf.alias.iter().find_map(|(k, dir)| {
        let head = path.as_bytes().get(..k.len())?;
        let hit = if nocase {
            head.eq_ignore_ascii_case(k.as_bytes())
        } else {
            head == k.as_bytes()
        };
        // Equal up to ASCII case, so the key's length ends a character in `path` too.
        hit.then(|| path.get(k.len()..)).flatten().map(|r| (r, dir))
    })?;
    // The path is normalised, so "." and ".." can only appear here, glued to the key.
    let first = rest.split('/').next().unwrap_or("");
    if first == "." || first == ".." {
        return Some(Err(403));
    }
    // A rest without a leading slash ("/icons" + "x.png") continues the directory's name, as
    // in lighttpd (which simply concatenates).
    Some(Ok((dir.as_str(), rest)))
}
