//! Content types: the built-in table used when mimetype.assign is absent, and suffix lookup.

/// Used when the config has no mimetype.assign. Text types name their charset so browsers do
/// not guess; everything else is the registered type.
const BUILTIN: &[(&str, &str)] = &[
    // text
    (".html", "text/html; charset=utf-8"),
    (".htm", "text/html; charset=utf-8"),
    (".css", "text/css; charset=utf-8"),
    (".js", "text/javascript; charset=utf-8"),
    (".mjs", "text/javascript; charset=utf-8"),
    (".txt", "text/plain; charset=utf-8"),
    (".text", "text/plain; charset=utf-8"),
    (".conf", "text/plain; charset=utf-8"),
    (".log", "text/plain; charset=utf-8"),
    (".md", "text/markdown; charset=utf-8"),
    (".csv", "text/csv; charset=utf-8"),
    (".xml", "text/xml; charset=utf-8"),
    (".ics", "text/calendar; charset=utf-8"),
    (".vtt", "text/vtt; charset=utf-8"),
    // structured data and documents
    (".json", "application/json"),
    (".jsonld", "application/ld+json"),
    (".map", "application/json"),
    (".webmanifest", "application/manifest+json"),
    (".xhtml", "application/xhtml+xml"),
    (".rss", "application/rss+xml"),
    (".atom", "application/atom+xml"),
    (".pdf", "application/pdf"),
    (".wasm", "application/wasm"),
    (".rtf", "application/rtf"),
    // images
    (".png", "image/png"),
    (".jpg", "image/jpeg"),
    (".jpeg", "image/jpeg"),
    (".gif", "image/gif"),
    (".webp", "image/webp"),
    (".avif", "image/avif"),
    (".svg", "image/svg+xml"),
    (".svgz", "image/svg+xml"),
    (".ico", "image/x-icon"),
    (".bmp", "image/bmp"),
    (".tif", "image/tiff"),
    (".tiff", "image/tiff"),
    // fonts
    (".woff", "font/woff"),
    (".woff2", "font/woff2"),
    (".ttf", "font/ttf"),
    (".otf", "font/otf"),
    (".eot", "application/vnd.ms-fontobject"),
    // audio and video
    (".mp3", "audio/mpeg"),
    (".ogg", "audio/ogg"),
    (".oga", "audio/ogg"),
    (".opus", "audio/opus"),
    (".wav", "audio/wav"),
    (".flac", "audio/flac"),
    (".m4a", "audio/mp4"),
    (".aac", "audio/aac"),
    (".mp4", "video/mp4"),
    (".m4v", "video/mp4"),
    (".webm", "video/webm"),
    (".ogv", "video/ogg"),
    (".mov", "video/quicktime"),
    (".avi", "video/x-msvideo"),
    (".mkv", "video/x-matroska"),
    (".mpeg", "video/mpeg"),
    (".mpg", "video/mpeg"),
    // archives and binaries
    (".zip", "application/zip"),
    (".gz", "application/gzip"),
    (".tgz", "application/gzip"),
    (".tar", "application/x-tar"),
    (".bz2", "application/x-bzip2"),
    (".xz", "application/x-xz"),
    (".zst", "application/zstd"),
    (".7z", "application/x-7z-compressed"),
    (".deb", "application/vnd.debian.binary-package"),
    (".rpm", "application/x-rpm"),
    (".iso", "application/x-iso9660-image"),
    (".jar", "application/java-archive"),
    (".bin", "application/octet-stream"),
    (".exe", "application/octet-stream"),
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

pub(crate) fn lookup<'a>(mime: &'a [(String, String)], name: &str) -> Option<&'a str> {
    let exact = mime
        .iter()
        .find(|(suffix, _)| !suffix.is_empty() && name.ends_with(suffix.as_str()));
    let folded = || {
        mime.iter().find(|(suffix, _)| {
            !suffix.is_empty()
                && name.len() >= suffix.len()
                && name.is_char_boundary(name.len() - suffix.len())
                && name[name.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
        })
    };
    let fallback = || mime.iter().find(|(suffix, _)| suffix.is_empty());
    exact
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
        assert!(b.len() >= 60, "{}", b.len());
        for (k, v) in &b {
            assert!(k.starts_with('.'), "{k}");
            if v.starts_with("text/") {
                assert!(v.ends_with("; charset=utf-8"), "{k} => {v}");
            }
        }
        let mut keys: Vec<&str> = b.iter().map(|(k, _)| k.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(
            keys.len(),
            b.len(),
            "duplicate suffix in the built-in table"
        );
        assert_eq!(lookup(&b, "index.html"), Some("text/html; charset=utf-8"));
        assert_eq!(lookup(&b, "app.wasm"), Some("application/wasm"));
        assert_eq!(lookup(&b, "noext"), None);
    }
}
