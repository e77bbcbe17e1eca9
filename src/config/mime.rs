//! Content types: the built-in table used when mimetype.assign is absent, and suffix lookup.

/// Used when the config has no mimetype.assign. Every suffix lighttpd 1.4 also knows without
/// a mimetype.assign (its `config_mimetypes_default`) maps to exactly lighttpd's type, so a
/// site moved between the two servers gets the same Content-Type headers; the few entries
/// lighttpd lacks are lightd's own additions. Grouped by kind; the order does not matter,
/// since lookup sorts the table.
///
/// One entry per line, `suffix TAB type`; the empty suffix is the fallback. One string
/// rather than a table of pairs: every string in a static table costs a pointer and a
/// relocation in the binary.
const BUILTIN: &str = concat!(
    // Documents and text. lighttpd names a charset for some text types and not others;
    // its choices are kept as they are, charset spelling (no space after ';') included.
    ".html\ttext/html\n",
    ".htm\ttext/html\n",
    ".xhtml\tapplication/xhtml+xml\n",
    ".css\ttext/css;charset=utf-8\n",
    ".js\ttext/javascript\n",
    ".mjs\ttext/javascript\n",
    ".json\tapplication/json\n",
    ".xml\ttext/xml\n",
    ".dtd\tapplication/xml-dtd\n",
    ".xsl\tapplication/xslt+xml\n",
    ".xslt\tapplication/xslt+xml\n",
    ".txt\ttext/plain;charset=utf-8\n",
    ".text\ttext/plain;charset=utf-8\n",
    ".conf\ttext/plain\n",
    ".log\ttext/plain\n",
    ".md\ttext/markdown;charset=utf-8\n",
    ".rst\ttext/x-rst\n",
    ".csv\ttext/csv\n",
    ".rtf\ttext/rtf\n",
    ".ics\ttext/calendar\n",
    ".pdf\tapplication/pdf\n",
    // A file named README (any directory) reads as text, as in lighttpd.
    "README\ttext/plain;charset=utf-8\n",
    // Images.
    ".apng\timage/apng\n",
    ".avif\timage/avif\n",
    ".bmp\timage/bmp\n",
    ".gif\timage/gif\n",
    ".ico\timage/vnd.microsoft.icon\n",
    ".jpeg\timage/jpeg\n",
    ".jpg\timage/jpeg\n",
    ".png\timage/png\n",
    ".svg\timage/svg+xml\n",
    ".svgz\timage/svg+xml\n",
    ".tiff\timage/tiff\n",
    ".webp\timage/webp\n",
    // Fonts.
    ".eot\tapplication/vnd.ms-fontobject\n",
    ".otf\tfont/otf\n",
    ".sfnt\tfont/sfnt\n",
    ".ttc\tfont/collection\n",
    ".ttf\tfont/ttf\n",
    ".woff\tfont/woff\n",
    ".woff2\tfont/woff2\n",
    // Audio.
    ".aac\taudio/aac\n",
    ".flac\taudio/flac\n",
    ".m4a\taudio/mp4\n",
    ".mp3\taudio/mpeg\n",
    ".oga\taudio/ogg\n",
    ".ogg\taudio/ogg\n",
    ".opus\taudio/opus\n",
    ".wav\taudio/x-wav\n",
    ".weba\taudio/webm\n",
    ".ogx\tapplication/ogg\n",
    // Video.
    ".avi\tvideo/x-msvideo\n",
    ".m4v\tvideo/mp4\n",
    ".mkv\tvideo/x-matroska\n",
    ".mov\tvideo/quicktime\n",
    ".mp4\tvideo/mp4\n",
    ".mpeg\tvideo/mpeg\n",
    ".mpg\tvideo/mpeg\n",
    ".ogv\tvideo/ogg\n",
    ".qt\tvideo/quicktime\n",
    ".webm\tvideo/webm\n",
    // Archives and compressed files.
    ".7z\tapplication/x-7z-compressed\n",
    ".bz2\tapplication/x-bzip2\n",
    ".gz\tapplication/gzip\n",
    ".rar\tapplication/vnd.rar\n",
    ".tar\tapplication/x-tar\n",
    ".tar.gz\tapplication/x-gtar-compressed\n",
    ".tgz\tapplication/x-gtar-compressed\n",
    ".xz\tapplication/x-xz\n",
    ".zip\tapplication/zip\n",
    ".zst\tapplication/zstd\n",
    // Programs, packages and disk images. Naming a type even when it is only
    // application/octet-stream keeps lighttpd's reasoning: the file is a known download.
    ".bin\tapplication/octet-stream\n",
    ".class\tapplication/java-vm\n",
    ".deb\tapplication/vnd.debian.binary-package\n",
    ".dll\tapplication/x-msdos-program\n",
    ".dmg\tapplication/x-apple-diskimage\n",
    ".exe\tapplication/x-msdos-program\n",
    ".img\tapplication/octet-stream\n",
    ".iso\tapplication/x-iso9660-image\n",
    ".jar\tapplication/java-archive\n",
    ".lha\tapplication/x-lha\n",
    ".lhz\tapplication/x-lzh\n",
    ".rpm\tapplication/x-redhat-package-manager\n",
    ".sig\tapplication/pgp-signature\n",
    ".so\tapplication/octet-stream\n",
    ".torrent\tapplication/x-bittorrent\n",
    // lightd's additions, for current web content lighttpd's table predates.
    ".atom\tapplication/atom+xml\n",
    ".jsonld\tapplication/ld+json\n",
    ".map\tapplication/json\n",
    ".rss\tapplication/rss+xml\n",
    ".tif\timage/tiff\n",
    ".vtt\ttext/vtt;charset=utf-8\n",
    ".wasm\tapplication/wasm\n",
    ".webmanifest\tapplication/manifest+json\n",
    // Anything else.
    "\tapplication/octet-stream\n",
);

/// The built-in table, in lookup order.
pub(crate) fn builtin() -> Vec<(String, String)> {
    sorted(
        BUILTIN
            .lines()
            .filter_map(|l| l.split_once('\t'))
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
