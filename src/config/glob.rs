//! Shell-style wildcards for `include "conf.d/*.conf"`: `*`, `?` and `[...]` per path component.

use std::path::{Component, Path, PathBuf};

/// Whether an include argument is a pattern rather than a literal file name.
pub(crate) fn has_magic(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

/// Every existing path matching `pattern`, sorted, like glob(3). Unreadable directories are
/// skipped, as glob(3) does by default; a pattern matching nothing yields an empty list.
pub(crate) fn expand(pattern: &Path) -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = vec![PathBuf::new()];
    for comp in pattern.components() {
        let part = match comp {
            Component::Normal(p) => p.to_string_lossy(),
            other => {
                // Root, "." and "..": taken literally.
                for p in &mut found {
                    p.push(other.as_os_str());
                }
                continue;
            }
        };
        if !has_magic(&part) {
            for p in &mut found {
                p.push(part.as_ref());
            }
            continue;
        }
        let mut next = Vec::new();
        for dir in &found {
            let listing = if dir.as_os_str().is_empty() {
                std::fs::read_dir(".")
            } else {
                std::fs::read_dir(dir)
            };
            let Ok(entries) = listing else { continue };
            let mut names: Vec<String> = entries
                .filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                // As in the shell, a wildcard does not match a leading dot.
                .filter(|n| !n.starts_with('.') || part.starts_with('.'))
                .filter(|n| matches(part.as_bytes(), n.as_bytes()))
                .collect();
            names.sort();
            next.extend(names.into_iter().map(|n| dir.join(n)));
        }
        found = next;
    }
    found.retain(|p| !p.as_os_str().is_empty() && p.exists());
    found.sort();
    found
}

/// Match one bracket expression starting just after `[`. Returns whether `c` matched and the
/// index just past the closing `]`, or None when the bracket is not closed (then `[` is
/// literal, as in the shell).
fn class(pat: &[u8], mut i: usize, c: u8) -> Option<(bool, usize)> {
    let negate = matches!(pat.get(i), Some(b'!') | Some(b'^'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let lo = *pat.get(i)?;
        if lo == b']' && !first {
            return Some((matched != negate, i + 1));
        }
        first = false;
        if pat.get(i + 1) == Some(&b'-') && pat.get(i + 2).is_some_and(|h| *h != b']') {
            let hi = pat[i + 2];
            matched |= lo <= c && c <= hi;
            i += 3;
        } else {
            matched |= lo == c;
            i += 1;
        }
    }
}

/// Wildcard match of one path component. Iterative with a single backtrack point for `*`,
/// so the cost stays linear-ish whatever the pattern.
pub(crate) fn matches(pat: &[u8], name: &[u8]) -> bool {
    let (mut p, mut n) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while n < name.len() {
        let step = match pat.get(p) {
            Some(b'*') => {
                star = Some((p, n));
                p += 1;
                continue;
            }
            Some(b'?') => Some(p + 1),
            Some(b'[') => match class(pat, p + 1, name[n]) {
                Some((true, end)) => Some(end),
                Some((false, _)) => None,
                None => (name[n] == b'[').then_some(p + 1),
            },
            Some(&c) => (c == name[n]).then_some(p + 1),
            None => None,
        };
        match (step, star) {
            (Some(next), _) => {
                p = next;
                n += 1;
            }
            (None, Some((sp, sn))) => {
                // Let the last `*` swallow one more character and retry.
                p = sp + 1;
                n = sn + 1;
                star = Some((sp, sn + 1));
            }
            (None, None) => return false,
        }
    }
    pat[p..].iter().all(|c| *c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcard_table() {
        for (pat, name, want) in [
            ("*.conf", "a.conf", true),
            ("*.conf", "a.conf.bak", false),
            ("*.conf", ".conf", true),
            ("a?c", "abc", true),
            ("a?c", "ac", false),
            ("[ab]x", "bx", true),
            ("[ab]x", "cx", false),
            ("[!ab]x", "cx", true),
            ("[^ab]x", "ax", false),
            ("[a-c]", "b", true),
            ("[a-c]", "d", false),
            ("[]]", "]", true),
            ("[a-]", "-", true),
            ("[", "[", true),
            ("*a*b*c*", "xxaxxbxxcxx", true),
            ("*a*b*c", "abcabd", false),
            ("**", "", true),
            ("", "", true),
            ("", "a", false),
            ("10-*.conf", "10-a.conf", true),
        ] {
            assert_eq!(
                matches(pat.as_bytes(), name.as_bytes()),
                want,
                "{pat} ~ {name}"
            );
        }
    }

    #[test]
    fn expands_in_sorted_order() {
        let dir = std::env::temp_dir().join(format!("lightd-glob-{}", std::process::id()));
        let sub = dir.join("conf.d");
        std::fs::create_dir_all(&sub).unwrap_or_default();
        for f in ["b.conf", "a.conf", "c.txt", ".hidden.conf"] {
            std::fs::write(sub.join(f), "").unwrap_or_default();
        }
        let got = expand(&dir.join("conf.d/*.conf"));
        assert_eq!(got, vec![sub.join("a.conf"), sub.join("b.conf")]);
        let got = expand(&dir.join("*/a.conf"));
        assert_eq!(got, vec![sub.join("a.conf")]);
        assert!(expand(&dir.join("nothing/*.conf")).is_empty());
        assert!(expand(&dir.join("conf.d/*.none")).is_empty());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
