//! mod_deflate's settings (`deflate.*`, and mod_compress's `compress.*` spellings that lighttpd
//! still maps onto them), checked and normalised as lighttpd 1.4.85's
//! `mod_deflate_set_defaults` does. The request-time logic is in `modules/deflate.rs`.

use std::path::PathBuf;

/// One entry of `deflate.allowed-encodings` that lightd can produce itself, in config order.
/// lighttpd maps each configured string by substring: one containing "gzip" allows gzip and
/// x-gzip, one containing "deflate" allows deflate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Allowed {
    /// "gzip", also sent as "x-gzip" to a client that accepts only that.
    Gzip,
    /// "deflate" (the zlib format).
    Deflate,
}

/// The settings for one request (shared: most requests use the global block's).
#[derive(Clone, Debug, PartialEq)]
pub struct DeflateConf {
    /// Content-Type prefixes to compress; empty means compression is off (lighttpd's
    /// default). A trailing '*' has been dropped and "application/javascript" reads
    /// "text/javascript", as lighttpd does.
    pub mimetypes: Vec<String>,
    /// The codings to produce, first the client accepts wins. The default,
    /// `[Gzip, Deflate]`, picks exactly what lighttpd's default (gzip, then x-gzip, then
    /// deflate) picks. Empty when the config listed only codings lightd cannot produce: then
    /// nothing is compressed on the fly (lighttpd does the same when its build lacks them).
    pub allowed: Vec<Allowed>,
    /// Codings from `deflate.allowed-encodings` lightd does not produce ("br", "zstd",
    /// "bzip2"), in config order: served only from precompressed files.
    pub sidecar: Vec<&'static str>,
    /// `deflate.max-compress-size`, in KB (0: no limit).
    pub max_compress_kb: u64,
    /// `deflate.min-compress-size`, in bytes: a body this size or smaller is sent as is.
    pub min_compress_size: u64,
    /// `deflate.compression-level`: 1..=9, or -1 for the library's default (6).
    pub level: i32,
    /// `deflate.output-buffer-size` (bytes; 0: lighttpd's default).
    pub output_buffer_size: u64,
    /// `deflate.work-block-size`, in KB: how much input one step compresses.
    pub work_block_kb: u64,
    /// `deflate.max-loadavg`: above this 1-minute load average nothing is compressed
    /// (0: no limit).
    pub max_loadavg: f64,
    /// `deflate.cache-dir` without its trailing '/'; created at start if missing.
    pub cache_dir: Option<PathBuf>,
}

impl Default for DeflateConf {
    /// lighttpd's defaults.
    fn default() -> Self {
        DeflateConf {
            mimetypes: Vec::new(),
            allowed: vec![Allowed::Gzip, Allowed::Deflate],
            sidecar: Vec::new(),
            max_compress_kb: 128 * 1024,
            min_compress_size: 256,
            level: -1,
            output_buffer_size: 0,
            work_block_kb: 2048,
            max_loadavg: 0.0,
            cache_dir: None,
        }
    }
}

/// `deflate.mimetypes` as lighttpd normalises it: lighttpd matches a prefix, so a trailing
/// '*' (on more than two characters: "*" and "a*" stay) is dropped, and
/// "application/javascript" becomes "text/javascript" (RFC 9239 made that the type).
pub fn mimetypes(list: Vec<String>) -> Vec<String> {
    list.into_iter()
        .map(|mut m| {
            if m.len() > 2 && m.ends_with('*') {
                m.pop();
            }
            if m == "application/javascript" {
                m = "text/javascript".to_string();
            }
            m
        })
        .collect()
}

/// Codings lighttpd can be built with that lightd does not produce, and the substring that
/// selects each (lighttpd's strstr on the configured string).
const SIDECAR: [(&str, &str); 3] = [("bzip2", "bzip2"), ("br", "br"), ("zstd", "zstd")];

/// `deflate.allowed-encodings`: the codings lightd produces, in config order, and those it can
/// only serve precompressed. An empty list means lighttpd's default. Each entry is matched by
/// substring like lighttpd does, so "x-gzip" allows gzip and "brotli" allows br; entries
/// naming no coding are ignored, as by lighttpd.
pub fn allowed(list: &[String]) -> (Vec<Allowed>, Vec<&'static str>) {
    if list.is_empty() {
        return (DeflateConf::default().allowed, Vec::new());
    }
    let mut produce = Vec::new();
    let mut sidecar = Vec::new();
    for e in list {
        if e.contains("gzip") {
            produce.push(Allowed::Gzip);
        }
        if e.contains("deflate") {
            produce.push(Allowed::Deflate);
        }
        for (needle, label) in SIDECAR {
            if e.contains(needle) && !sidecar.contains(&label) {
                sidecar.push(label);
            }
        }
    }
    (produce, sidecar)
}

/// The warning for codings lightd only serves precompressed (None when there are none).
pub fn sidecar_warning(sidecar: &[&str]) -> Option<String> {
    let (last, rest) = sidecar.split_last()?;
    let names = match rest {
        [] => last.to_string(),
        _ => format!("{} and {last}", rest.join(", ")),
    };
    let verb = if rest.is_empty() { "is" } else { "are" };
    Some(format!(
        "deflate.allowed-encodings: lightd compresses with gzip and deflate only; {names} \
         {verb} served only from precompressed files"
    ))
}

/// `deflate.max-loadavg` with C's strtod: the longest leading part that is a number, and 0
/// for a blank string or one that does not start with a number ("2.5 please" is 2.5).
pub fn loadavg(v: &str) -> f64 {
    let v = v.trim_start_matches([' ', '\t', '\n', '\r', '\x0b', '\x0c']);
    // A float literal is short; looking further cannot find a longer number that parses.
    let limit = v.len().min(64);
    (1..=limit)
        .rev()
        .filter(|&n| v.is_char_boundary(n))
        .find_map(|n| v.get(..n).and_then(|p| p.parse::<f64>().ok()))
        .unwrap_or(0.0)
}

/// `deflate.cache-dir`: None when blank; one trailing '/' removed, as lighttpd does. The
/// directory is created by the start-up checks (`check.rs`), not here: `-t` only reads.
pub fn cache_dir(v: &str) -> Result<Option<PathBuf>, String> {
    if v.trim().is_empty() {
        return Ok(None);
    }
    let trimmed = v.strip_suffix('/').unwrap_or(v);
    if trimmed.is_empty() {
        return Err("\"/\" cannot be the cache directory".to_string());
    }
    if trimmed.contains('\0') {
        return Err("must not contain NUL".to_string());
    }
    Ok(Some(PathBuf::from(trimmed)))
}

/// Create `dir` and its missing parents (mode 0700, as lighttpd), handing the directories
/// it creates to `owner` (uid, gid): lighttpd creates them after dropping privileges, so
/// they belong to the server's user; lightd checks its config before the drop.
pub fn create_cache_dir(dir: &std::path::Path, owner: Option<(u32, u32)>) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    if dir.is_dir() {
        return Ok(());
    }
    // The missing ancestors, outermost last; bounded by the path's components.
    let missing: Vec<&std::path::Path> = dir.ancestors().take_while(|a| !a.exists()).collect();
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    if let Some((uid, gid)) = owner {
        for d in missing.iter().rev() {
            // std's chown needs Rust 1.73; lightd builds with 1.71.
            use std::os::unix::ffi::OsStrExt;
            let path = std::ffi::CString::new(d.as_os_str().as_bytes())
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
            // SAFETY: a NUL-terminated path that lives across the call.
            if unsafe { libc::chown(path.as_ptr(), uid, gid) } != 0 {
                return Err(std::io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn mimetypes_like_lighttpd() {
        assert_eq!(
            mimetypes(strings(&[
                "text/*",
                "application/javascript",
                "image/svg+xml",
                "a*",
                "",
                "application/javascript*",
            ])),
            strings(&[
                "text/",
                "text/javascript",
                "image/svg+xml",
                "a*",
                "",
                "text/javascript",
            ])
        );
    }

    #[test]
    fn allowed_by_substring() {
        use Allowed::*;
        for (list, produce, sidecar) in [
            (&[][..], &[Gzip, Deflate][..], &[][..]),
            (&["gzip", "deflate"], &[Gzip, Deflate], &[]),
            (&["deflate", "x-gzip"], &[Deflate, Gzip], &[]),
            (&["br", "gzip"], &[Gzip], &["br"]),
            (&["brotli", "zstd", "bzip2"], &[], &["br", "zstd", "bzip2"]),
            (&["x-bzip2", "identity", "compress"], &[], &["bzip2"]),
            // One string naming two codings allows both, gzip first (lighttpd's order).
            (&["deflate,gzip"], &[Gzip, Deflate], &[]),
        ] {
            let (p, s) = allowed(&strings(list));
            assert_eq!((p.as_slice(), s.as_slice()), (produce, sidecar), "{list:?}");
        }
    }

    #[test]
    fn warning_text() {
        assert_eq!(sidecar_warning(&[]), None);
        assert_eq!(
            sidecar_warning(&["br"]).as_deref(),
            Some(
                "deflate.allowed-encodings: lightd compresses with gzip and deflate only; br \
                 is served only from precompressed files"
            )
        );
        assert!(sidecar_warning(&["br", "zstd", "bzip2"]).is_some_and(
            |w| w.ends_with("br, zstd and bzip2 are served only from precompressed files")
        ));
    }

    #[test]
    fn strtod() {
        for (v, want) in [
            ("", 0.0),
            ("   ", 0.0),
            ("2.5", 2.5),
            (" 3", 3.0),
            ("4.25 please", 4.25),
            ("1e1x", 10.0),
            ("-1", -1.0),
            ("abc", 0.0),
            (".5", 0.5),
        ] {
            assert_eq!(loadavg(v), want, "{v:?}");
        }
    }

    #[test]
    fn cache_dirs() {
        assert_eq!(cache_dir(""), Ok(None));
        assert_eq!(
            cache_dir("/var/cache/lightd/"),
            Ok(Some(PathBuf::from("/var/cache/lightd")))
        );
        assert_eq!(cache_dir("rel"), Ok(Some(PathBuf::from("rel"))));
        assert!(cache_dir("/").is_err());
    }

    #[test]
    fn creates_nested_dirs() {
        let base = std::env::temp_dir().join(format!("lightd-deflate-{}", std::process::id()));
        let dir = base.join("a/b/c");
        assert!(!dir.exists());
        create_cache_dir(&dir, None).expect("create");
        assert!(dir.is_dir());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&dir).map(|m| m.permissions().mode() & 0o777);
        assert_eq!(mode.ok(), Some(0o700));
        // Existing: nothing to do.
        create_cache_dir(&dir, None).expect("again");
        // Under a file: an error, not a panic.
        let file = base.join("file");
        std::fs::write(&file, b"x").expect("write");
        assert!(create_cache_dir(&file.join("sub"), None).is_err());
        let _ = std::fs::remove_dir_all(&base);
    }
}
