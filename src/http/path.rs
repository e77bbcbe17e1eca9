//! Request paths: percent-decode exactly once, then remove dot segments (RFC 3986 §5.2.4).
//!
//! The result is what the static-file handler joins to the document root, so this is the one
//! place that decides whether a request can name a file outside it. The policy:
//!
//! - Decoding happens exactly once. `%252e` becomes the literal three bytes `%2e` (a file name
//!   that contains them), never `.`; decoding twice is how double-encoding attacks get through.
//! - `%2F` decodes to '/' like any other byte and then takes part in normalisation as a
//!   separator. Some servers refuse it or keep it opaque; treating it as '/' means there is no
//!   spelling of ".." (`%2e%2e%2f`, `.%2e/`, ...) that survives, because segments are judged
//!   only after decoding.
//! - The decoded bytes must be UTF-8 (which also rejects overlong forms such as `%c0%ae`), and
//!   must not contain NUL or other control characters: NUL would truncate the name at the
//!   system-call boundary, and control characters would end up in logs and directory listings.
//! - Raw bytes 0x80-0xFF, which the request parser admits, are judged exactly as the same
//!   bytes percent-encoded: one UTF-8 check for both spellings.
//! - Backslash is an ordinary byte: on Linux it is part of a file name, never a separator.
//! - `..` above the root stays at the root, repeated slashes collapse, a trailing slash stays.

use super::HttpError;

const BAD_ESCAPE: HttpError = HttpError::new(400, "invalid percent-escape in path");
const BAD_UTF8: HttpError = HttpError::new(400, "path is not valid UTF-8");
const NUL: HttpError = HttpError::new(400, "NUL in path");
const CONTROL: HttpError = HttpError::new(400, "control character in path");

/// Decode and normalise the (still percent-encoded) path of a request target into `out`.
/// The result starts with '/', has no "." or ".." segments, no NUL, and keeps a trailing slash.
pub fn normalize(raw: &[u8], out: &mut String) -> Result<(), HttpError> {
    // Work on the String's own byte buffer so a reused `out` does not allocate; it is handed
    // back (cleared on error) whatever happens.
    let mut buf = std::mem::take(out).into_bytes();
    buf.clear();
    let result = normalize_into(raw, &mut buf);
    match result {
        Ok(()) => match String::from_utf8(buf) {
            Ok(s) => {
                *out = s;
                Ok(())
            }
            Err(e) => {
                // Unreachable in practice (every kept segment was checked), but never panic.
                let mut bytes = e.into_bytes();
                bytes.clear();
                *out = String::from_utf8(bytes).unwrap_or_default();
                Err(BAD_UTF8)
            }
        },
        Err(err) => {
            buf.clear();
            // An empty Vec is valid UTF-8, so this keeps the capacity.
            *out = String::from_utf8(buf).unwrap_or_default();
            Err(err)
        }
    }
}

/// The decoding and dot-segment removal, in one pass over `raw`.
///
/// `buf` always holds "/" followed by finished segments each ending in '/', then the segment
/// being decoded. A segment is judged when a decoded '/' or the end of input closes it.
fn normalize_into(raw: &[u8], buf: &mut Vec<u8>) -> Result<(), HttpError> {
    // A target without a leading '/' is treated as if it had one; a leading '/' in `raw`
    // then only produces an empty segment, which collapses away.
    buf.push(b'/');
    let mut seg_start = 1;
    let mut i = 0;
    while i < raw.len() {
        let byte = match raw[i] {
            b'%' => {
                let hi = raw.get(i + 1).copied().and_then(hex_value);
                let lo = raw.get(i + 2).copied().and_then(hex_value);
                match (hi, lo) {
                    (Some(hi), Some(lo)) => {
                        i += 3;
                        (hi << 4) | lo
                    }
                    _ => return Err(BAD_ESCAPE),
                }
            }
            b => {
                i += 1;
                b
            }
        };
        match byte {
            0 => return Err(NUL),
            0x01..=0x1f | 0x7f => return Err(CONTROL),
            b'/' => {
                close_segment(buf, seg_start, true)?;
                seg_start = buf.len();
            }
            b => buf.push(b),
        }
    }
    close_segment(buf, seg_start, false)
}

/// Finish the segment `buf[seg_start..]`: drop it if empty or ".", drop it and its parent if
/// "..", otherwise keep it (followed by '/' when a separator closed it).
///
/// After a "." or ".." the buffer ends in '/', which is what keeps `/a/b/..` as `/a/`.
fn close_segment(buf: &mut Vec<u8>, seg_start: usize, slash: bool) -> Result<(), HttpError> {
    match &buf[seg_start..] {
        // Repeated slash: the '/' before the empty segment is already there.
        b"" => {}
        b"." => buf.truncate(seg_start),
        b".." => {
            // buf[..seg_start] is "/" or "/x/.../y/": remove the last finished segment, if
            // any. At the root there is nothing to remove, which is the clamp.
            buf.truncate(seg_start);
            if seg_start > 1 {
                let parent_end = seg_start - 1;
                let parent_start = buf[..parent_end]
                    .iter()
                    .rposition(|&b| b == b'/')
                    .map_or(1, |p| p + 1);
                buf.truncate(parent_start);
            }
        }
        segment => {
            // UTF-8 is checked per segment, before ".." can remove it: a multi-byte sequence
            // never contains 0x2F, so this is the same as checking the whole decoded path.
            if std::str::from_utf8(segment).is_err() {
                return Err(BAD_UTF8);
            }
            if slash {
                buf.push(b'/');
            }
        }
    }
    Ok(())
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn norm(raw: &[u8]) -> Result<String, u16> {
        let mut out = String::new();
        normalize(raw, &mut out).map(|()| out).map_err(|e| e.status)
    }

    #[test]
    fn table() {
        #[rustfmt::skip]
        let cases: &[(&[u8], Result<&str, u16>)] = &[
            // Plain paths and the root.
            (b"", Ok("/")),
            (b"/", Ok("/")),
            (b"/index.html", Ok("/index.html")),
            (b"a/b", Ok("/a/b")),
            (b"/dir/", Ok("/dir/")),
            (b"/a/b/c", Ok("/a/b/c")),
            // ".." in every spelling, never above the root.
            (b"/../x", Ok("/x")),
            (b"/..", Ok("/")),
            (b"..", Ok("/")),
            (b"../../x", Ok("/x")),
            (b"/%2e%2e/x", Ok("/x")),
            (b"/%2E%2E/x", Ok("/x")),
            (b"/.%2e/x", Ok("/x")),
            (b"/%2e./x", Ok("/x")),
            (b"/a/%2e%2e%2f%2e%2e%2fetc/passwd", Ok("/etc/passwd")),
            (b"/a/b/%2e%2e%2F%2E%2E%2F%2e%2e%2fetc/passwd", Ok("/etc/passwd")),
            (b"/a/b/../../../../x", Ok("/x")),
            (b"/a/b/../c", Ok("/a/c")),
            (b"/a/b/..", Ok("/a/")),
            (b"/a/b/../", Ok("/a/")),
            (b"/a/..", Ok("/")),
            (b"/a/../..", Ok("/")),
            (b"/a/b/c/../../d", Ok("/a/d")),
            // Double encoding decodes once: a literal "%2e%2e" name, not "..".
            (b"/%252e%252e/x", Ok("/%2e%2e/x")),
            (b"/%252e%252e%252fx", Ok("/%2e%2e%2fx")),
            (b"/%25", Ok("/%")),
            // "." segments.
            (b"/./x", Ok("/x")),
            (b"/a/.", Ok("/a/")),
            (b"/a/./", Ok("/a/")),
            (b"/.", Ok("/")),
            (b"/%2e/x", Ok("/x")),
            (b"/a/./b/./c", Ok("/a/b/c")),
            // Dots and spaces that are part of a name are kept.
            (b"/...", Ok("/...")),
            (b"/.../x", Ok("/.../x")),
            (b"/.hidden", Ok("/.hidden")),
            (b"/..hidden", Ok("/..hidden")),
            (b"/a..", Ok("/a..")),
            (b"/file.", Ok("/file.")),
            (b"/file ", Ok("/file ")),
            (b"/file%20", Ok("/file ")),
            (b"/a%20b/c", Ok("/a b/c")),
            // Repeated slashes collapse.
            (b"//a", Ok("/a")),
            (b"///a//b///", Ok("/a/b/")),
            (b"//../a", Ok("/a")),
            (b"//", Ok("/")),
            // %2F is a separator once decoded.
            (b"/file/", Ok("/file/")),
            (b"/file%2f", Ok("/file/")),
            (b"/file%2F", Ok("/file/")),
            (b"/a%2fb", Ok("/a/b")),
            (b"%2fa", Ok("/a")),
            // Backslash is an ordinary byte.
            (b"/a\\b", Ok("/a\\b")),
            (b"/..\\x", Ok("/..\\x")),
            (b"/%5c..%5cx", Ok("/\\..\\x")),
            (b"/a/..\\../x", Ok("/a/..\\../x")),
            // Unicode, raw or percent-encoded.
            (b"/%c3%a9t%C3%A9.txt", Ok("/\u{e9}t\u{e9}.txt")),
            ("/caf\u{e9}".as_bytes(), Ok("/caf\u{e9}")),
            (b"/%e6%97%a5%e6%9c%ac", Ok("/\u{65e5}\u{672c}")),
            (b"/%f0%9f%98%80", Ok("/\u{1f600}")),
            // Other bytes that are literal in a name once decoded.
            (b"/a%3fb%23c", Ok("/a?b#c")),
            (b"/a+b", Ok("/a+b")),
            // Bad escapes.
            (b"/%zz", Err(400)),
            (b"/%4", Err(400)),
            (b"/%", Err(400)),
            (b"/a%g0", Err(400)),
            (b"/a%0g", Err(400)),
            // NUL and control characters, encoded or raw.
            (b"/%00", Err(400)),
            (b"/a%00.html", Err(400)),
            (b"/a\0b", Err(400)),
            (b"/%01", Err(400)),
            (b"/%0a", Err(400)),
            (b"/%0d%0a", Err(400)),
            (b"/%1f", Err(400)),
            (b"/%7f", Err(400)),
            (b"/a\tb", Err(400)),
            // Control characters count even in a segment ".." would remove.
            (b"/%01/../x", Err(400)),
            // Invalid UTF-8, including overlong dots and slashes.
            (b"/%c0%ae", Err(400)),
            (b"/%c0%ae%c0%ae/x", Err(400)),
            (b"/%e0%80%ae", Err(400)),
            (b"/%c0%af", Err(400)),
            (b"/%ff", Err(400)),
            (b"/%c3", Err(400)),
            (b"/%c3/x", Err(400)),
            (b"/%ed%a0%80", Err(400)),
            (b"/\xff", Err(400)),
            (b"/%80/../x", Err(400)),
            // Raw bytes 0x80-0xFF (the parser admits them) are judged as decoded ones are.
            (b"/~test%20\xc3\xa4_", Ok("/~test \u{e4}_")),
            (b"/%c3\xa4", Ok("/\u{e4}")),
            (b"/\xc3%a4", Ok("/\u{e4}")),
            (b"/\xc0\xae\xc0\xae/x", Err(400)),
            (b"/\xc0\xaf", Err(400)),
            (b"/\xe0\x80\xae", Err(400)),
            (b"/\xed\xa0\x80", Err(400)),
            (b"/\xc3", Err(400)),
            (b"/\xc3/x", Err(400)),
            (b"/\x80/../x", Err(400)),
            (b"/\xf4\x90\x80\x80", Err(400)),
        ];
        for (raw, want) in cases {
            let got = norm(raw);
            let want = want.map(str::to_owned);
            assert_eq!(got, want, "input {:?}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn reuses_buffer() {
        let mut out = String::with_capacity(64);
        out.push_str("stale");
        let cap = out.capacity();
        let ptr = out.as_ptr();
        assert!(normalize(b"/a/b", &mut out).is_ok());
        assert_eq!(out, "/a/b");
        assert_eq!((out.capacity(), out.as_ptr()), (cap, ptr));
        assert_eq!(normalize(b"/%zz", &mut out).map_err(|e| e.status), Err(400));
        assert_eq!(out, "");
        assert_eq!((out.capacity(), out.as_ptr()), (cap, ptr));
        assert!(normalize(b"/x/", &mut out).is_ok());
        assert_eq!(out, "/x/");
        assert_eq!(out.as_ptr(), ptr);
    }

    /// A raw byte 0x80-0xFF and its percent-encoded form give the same answer, whatever
    /// surrounds them: there is one UTF-8 judgement, not two.
    #[test]
    fn raw_and_encoded_bytes_are_judged_alike() {
        const PIECES: &[&[u8]] = &[
            b"/",
            b"a",
            b".",
            b"..",
            b"%2f",
            b"\xc3",
            b"\xa4",
            b"\xc0",
            b"\xae",
            b"\xed",
            b"\xa0",
            b"\x80",
            b"\xe6\x97\xa5",
            b"\xf0\x9f\x98\x80",
            b"\xff",
            b"\xf4",
        ];
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let (mut ok, mut rejected) = (0, 0);
        for _ in 0..20_000 {
            let mut raw = Vec::new();
            for _ in 0..rng.below(8) {
                raw.extend_from_slice(PIECES[rng.below(PIECES.len())]);
            }
            let mut encoded = Vec::new();
            for &b in &raw {
                if b >= 0x80 {
                    encoded.extend_from_slice(format!("%{b:02x}").as_bytes());
                } else {
                    encoded.push(b);
                }
            }
            let got = norm(&raw);
            assert_eq!(got, norm(&encoded), "raw {raw:?} vs encoded");
            if got.is_ok() {
                ok += 1;
            } else {
                rejected += 1;
            }
        }
        assert!(
            ok > 1_000 && rejected > 1_000,
            "ok {ok} rejected {rejected}"
        );
    }

    /// xorshift64*: enough randomness to explore inputs, and deterministic.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// Encode `s` so that `normalize` decodes it back to exactly `s`.
    fn reencode(s: &str) -> String {
        s.replace('%', "%25")
    }

    #[test]
    fn property_never_escapes() {
        const PIECES: &[&str] = &[
            "/", "/", "/", ".", ".", "..", "%2e", "%2E", "%2f", "%2F", "%2e%2e", "%25", "%252e",
            "a", "b", "\\", "%5c", " ", "%20", "%c3%a9", "é", "%00", "%c0%ae", "%zz", "%", "%0a",
            "~", "%ff", "//", "/..", "/.", "../", "./",
        ];
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut out = String::new();
        let mut raw = String::new();
        let (mut ok, mut rejected) = (0, 0);
        for _ in 0..50_000 {
            raw.clear();
            for _ in 0..rng.below(12) {
                raw.push_str(PIECES[rng.below(PIECES.len())]);
            }
            if normalize(raw.as_bytes(), &mut out).is_err() {
                rejected += 1;
                continue;
            }
            ok += 1;
            let ctx = format!("input {raw:?} output {out:?}");
            assert!(out.starts_with('/'), "{ctx}");
            assert!(!out.contains("/../"), "{ctx}");
            assert!(!out.contains("/./"), "{ctx}");
            assert!(!out.contains("//"), "{ctx}");
            assert!(!out.contains('\0'), "{ctx}");
            assert!(!out.ends_with("/.."), "{ctx}");
            assert!(!out.ends_with("/."), "{ctx}");
            assert!(out.split('/').all(|s| s != "." && s != ".."), "{ctx}");
            assert!(!out.chars().any(|c| c.is_ascii_control()), "{ctx}");
            // Normalising is idempotent once the output is encoded back.
            let again = norm(reencode(&out).as_bytes());
            assert_eq!(again.as_deref(), Ok(out.as_str()), "{ctx}");
        }
        // The generator must exercise both outcomes to mean anything.
        assert!(
            ok > 1_000 && rejected > 1_000,
            "ok {ok} rejected {rejected}"
        );
    }
}
