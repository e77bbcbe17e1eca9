//! Content types: the built-in table used when mimetype.assign is absent, and suffix lookup.

/// Used when the config has no mimetype.assign. Every suffix lighttpd 1.4 also knows without
/// a mimetype.assign (its `config_mimetypes_default`) maps to exactly lighttpd's type, so a
/// site moved between the two servers gets the same Content-Type headers; the few entries
/// lighttpd lacks are lightd's own additions. Grouped by kind; the order does not matter,
/// since lookup sorts the table.
const BUILTIN: &[(&str, &str)] = &[
    // Documents and text. lighttpd names a charset for some text types and not others;
    // its choices are kept as they are, charset spelling (no space after ';') included.
    (".html", "text/html"),
    (".htm", "text/html"),
    (".xhtml", "application/xhtml+xml"),
    (".css", "text/css;charset=utf-8"),
    (".js", "text/javascript"),
    (".mjs", "text/javascript"),
    (".json", "application/json"),
    (".xml", "text/xml"),
    (".dtd", "application/xml-dtd"),
    (".xsl", "application/xslt+xml"),
    (".xslt", "application/xslt+xml"),
    (".txt", "text/plain;charset=utf-8"),
    (".text", "text/plain;charset=utf-8"),
    (".conf", "text/plain"),
    (".log", "text/plain"),
    (".md", "text/markdown;charset=utf-8"),
    (".rst", "text/x-rst"),
    (".csv", "text/csv"),
    (".rtf", "text/rtf"),
    (".ics", "text/calendar"),
    (".pdf", "application/pdf"),
    // A file named README (any directory) reads as text, as in lighttpd.
    ("README", "text/plain;charset=utf-8"),
    // Images.
    (".apng", "image/apng"),
    (".avif", "image/avif"),
    (".bmp", "image/bmp"),
    (".gif", "image/gif"),
    (".ico", "image/vnd.microsoft.icon"),
    (".jpeg", "image/jpeg"),
    (".jpg", "image/jpeg"),
    (".png", "image/png"),
    (".svg", "image/svg+xml"),
    (".svgz", "image/svg+xml"),
    (".tiff", "image/tiff"),
    (".webp", "image/webp"),
    // Fonts.
    (".eot", "application/vnd.ms-fontobject"),
    (".otf", "font/otf"),
    (".sfnt", "font/sfnt"),
    (".ttc", "font/collection"),
    (".ttf", "font/ttf"),
    (".woff", "font/woff"),
    (".woff2", "font/woff2"),
    // Audio.
    (".aac", "audio/aac"),
    (".flac", "audio/flac"),
    (".m4a", "audio/mp4"),
    (".mp3", "audio/mpeg"),
    (".oga", "audio/ogg"),
    (".ogg", "audio/ogg"),
    (".opus", "audio/opus"),
    (".wav", "audio/x-wav"),
    (".weba", "audio/webm"),
    (".ogx", "application/ogg"),
    // Video.
    (".avi", "video/x-msvideo"),
    (".m4v", "video/mp4"),
    (".mkv", "video/x-matroska"),
    (".mov", "video/quicktime"),
    (".mp4", "video/mp4"),
    (".mpeg", "video/mpeg"),
    (".mpg", "video/mpeg"),
    (".ogv", "video/ogg"),
    (".qt", "video/quicktime"),
    (".webm", "video/webm"),
    // Archives and compressed files.
    (".7z", "application/x-7z-compressed"),
    (".bz2", "application/x-bzip2"),
    (".gz", "application/gzip"),
    (".rar", "application/vnd.rar"),
    (".tar", "application/x-tar"),
    (".tar.gz", "application/x-gtar-compressed"),
    (".tgz", "application/x-gtar-compressed"),
    (".xz", "application/x-xz"),
    (".zip", "application/zip"),
    (".zst", "application/zstd"),
    // Programs, packages and disk images. Naming a type even when it is only
    // application/octet-stream keeps lighttpd's reasoning: the file is a known download.
    (".bin", "application/octet-stream"),
    (".class", "application/java-vm"),
    (".deb", "application/vnd.debian.binary-package"),
    (".dll", "application/x-msdos-program"),
    (".dmg", "application/x-apple-diskimage"),
    (".exe", "application/x-msdos-program"),
    (".img", "application/octet-stream"),
    (".iso", "application/x-iso9660-image"),
    (".jar", "application/java-archive"),
    (".lha", "application/x-lha"),
    (".lhz", "application/x-lzh"),
    (".rpm", "application/x-redhat-package-manager"),
    (".sig", "application/pgp-signature"),
    (".so", "application/octet-stream"),
    (".torrent", "application/x-bittorrent"),
    // lightd's additions, for current web content lighttpd's table predates.
    (".atom", "application/atom+xml"),
    (".jsonld", "application/ld+json"),
    (".map", "application/json"),
    (".rss", "application/rss+xml"),
    (".tif", "image/tiff"),
    (".vtt", "text/vtt;charset=utf-8"),
    (".wasm", "application/wasm"),
    (".webmanifest", "application/manifest+json"),
    // Anything else.
    ("", "application/octet-stream"),
];

/// The built-in table, in lookup order.
pub(crate) fn builtin() -> Vec<(String, String)> {
    sorted(
        BUILTIN
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

/// Longest suffix first, so the first match in a linear scan is the most specific one
/// (".tar.gz" before ".gz"); ties by name so `-p` output is stable.
pub(crate) fn sorted(mut v: Vec<(String, String)>) -> Vec<(String, String)> {
    v.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
    v
}

/// The type for `name`: the longest suffix that matches exactly, else the longest that matches
/// ignoring ASCII case, else the `""` fallback, if any.
pub(crate) fn lookup<'a>(mime: &'a [(String, String)], name: &str) -> Option<&'a str> {
    // This runs for every file served, over a table of about a hundred suffixes. A suffix can
    // match only if its last byte is the name's, so that byte is compared first: most entries
    // are then passed over without a call to compare strings.
    let last = name.as_bytes().last().copied();
    let exact = || {
        mime.iter().find(|(suffix, _)| {
            suffix.as_bytes().last().copied() == last && name.ends_with(suffix.as_str())
        })
    };
    let folded = || {
        let last = last.map(|b| b.to_ascii_lowercase());
        mime.iter().find(|(suffix, _)| {
            suffix.as_bytes().last().map(u8::to_ascii_lowercase) == last
                && name.len() >= suffix.len()
                && name.is_char_boundary(name.len() - suffix.len())
                && name[name.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
        })
    };
    // The empty suffix has no last byte, so the passes above skip it (for an empty name they
    // find it, which is the same answer).
    let fallback = || mime.iter().find(|(suffix, _)| suffix.is_empty());
    exact()
        .or_else(folded)
        .or_else(fallback)
        .map(|(_, t)| t.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        sorted(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn lookup_table() {
        let t = table(&[
            (".gz", "application/gzip"),
            (".tar.gz", "application/x-gtar"),
            (".html", "text/html"),
            ("README", "text/plain"),
        ]);
        let with_default = {
            let mut t = t.clone();
            t.push((String::new(), "application/x-default".to_string()));
            sorted(t)
        };
        for (name, want, want_default) in [
            ("a.tar.gz", Some("application/x-gtar"), "application/x-gtar"),
            ("a.gz", Some("application/gzip"), "application/gzip"),
            ("index.html", Some("text/html"), "text/html"),
            ("INDEX.HTML", Some("text/html"), "text/html"),
            ("A.TAR.GZ", Some("application/x-gtar"), "application/x-gtar"),
            ("README", Some("text/plain"), "text/plain"),
            ("x.bin", None, "application/x-default"),
            ("", None, "application/x-default"),
            ("é.html", Some("text/html"), "text/html"),
            ("é", None, "application/x-default"),
        ] {
            assert_eq!(lookup(&t, name), want, "{name}");
            assert_eq!(
                lookup(&with_default, name),
                Some(want_default),
                "{name} with default"
            );
        }
    }

    #[test]
    fn builtin_is_sane() {
        let b = builtin();
        assert!(b.len() >= 90, "{}", b.len());
        for (k, v) in &b {
            assert!(k.starts_with('.') || k == "README" || k.is_empty(), "{k}");
            // lighttpd's spelling of parameters, which clients compare as text sometimes.
            assert!(!v.contains(' '), "{k} => {v}");
        }
        let mut keys: Vec<&str> = b.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(
            keys.len(),
            b.len(),
            "duplicate suffix in the built-in table"
        );
    }

    /// A sample of lighttpd 1.4's defaults (configfile.c, config_mimetypes_default), looked up
    /// the way requests look them up, and lightd's own additions.
    #[test]
    fn builtin_matches_lighttpd() {
        let b = builtin();
        #[rustfmt::skip]
        let cases: &[(&str, &str)] = &[
            ("index.html", "text/html"),
            ("a.htm", "text/html"),
            ("a.txt", "text/plain;charset=utf-8"),
            ("a.css", "text/css;charset=utf-8"),
            ("a.js", "text/javascript"),
            ("a.xml", "text/xml"),
            ("a.md", "text/markdown;charset=utf-8"),
            ("a.conf", "text/plain"),
            ("a.rtf", "text/rtf"),
            ("favicon.ico", "image/vnd.microsoft.icon"),
            ("a.wav", "audio/x-wav"),
            ("a.exe", "application/x-msdos-program"),
            ("a.rpm", "application/x-redhat-package-manager"),
            ("a.tgz", "application/x-gtar-compressed"),
            ("a.tar.gz", "application/x-gtar-compressed"),
            ("a.gz", "application/gzip"),
            ("a.JPG", "image/jpeg"),
            ("/docs/README", "text/plain;charset=utf-8"),
            ("noext", "application/octet-stream"),
            ("a.unknown", "application/octet-stream"),
            // lightd's additions.
            ("app.wasm", "application/wasm"),
            ("subs.vtt", "text/vtt;charset=utf-8"),
            ("site.webmanifest", "application/manifest+json"),
        ];
        for (name, want) in cases {
            assert_eq!(lookup(&b, name), Some(*want), "{name}");
        }
    }
}
