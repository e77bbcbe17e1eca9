//! mod_deflate's pure parts: which coding a request gets (lighttpd 1.4.85's
//! `mod_deflate_choose_encoding`), whether a Content-Type is compressed, the Vary and ETag
//! edits, and a streaming gzip / zlib encoder. No I/O: the response path feeds it.
//!
//! Memory: an [`Encoder`] holds miniz_oxide's compressor, about 320 KB on the heap (a 32 KB
//! window plus 258 bytes, two 64 KB hash tables, a 64 KB LZ code buffer, an 85 KB output
//! buffer and 4 KB of Huffman tables), allocated when it is made and freed when it drops.
//! Bound the number of concurrent encoders by that figure.

use crate::config::deflate::Allowed;
use crate::http::response;
use miniz_oxide::deflate::core::{
    compress_to_output, create_comp_flags_from_zip_params, CompressorOxide, TDEFLFlush, TDEFLStatus,
};

/// A content coding lightd can produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coding {
    Gzip,
    Deflate,
}

/// What the client gets in Content-Encoding and the ETag suffix: "gzip", "x-gzip" or
/// "deflate" (x-gzip when only x-gzip was accepted, as lighttpd does).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Chosen {
    pub coding: Coding,
    pub label: &'static str,
}

/// The codings a client accepts, as lighttpd reads Accept-Encoding.
#[derive(Default)]
struct Accepts {
    gzip: bool,
    x_gzip: bool,
    deflate: bool,
}

/// Read Accept-Encoding the way lighttpd 1.4.85 does: tokens separated by spaces and commas,
/// compared case-sensitively, each token's parameters (";q=...") skipped. So "gzip;q=0" still
/// accepts gzip: lighttpd does not honour q-values, and lightd answers as it does. The scan
/// ends at a NUL, as lighttpd's C string does.
fn accepts(value: &[u8]) -> Accepts {
    let v = value.split(|&b| b == 0).next().unwrap_or_default();
    let mut a = Accepts::default();
    let mut i = 0;
    // Every pass moves `i` forward by at least one byte, so this ends.
    while i < v.len() {
        while v.get(i).is_some_and(|&b| b == b' ' || b == b',') {
            i += 1;
        }
        let start = i;
        while v.get(i).is_some_and(|&b| !matches!(b, b' ' | b',' | b';')) {
            i += 1;
        }
        match v.get(start..i).unwrap_or_default() {
            b"gzip" => a.gzip = true,
            b"x-gzip" => a.x_gzip = true,
            b"deflate" => a.deflate = true,
            _ => {}
        }
        if v.get(i) == Some(&b';') {
            while v.get(i).is_some_and(|&b| b != b',') {
                i += 1;
            }
        }
        // Past the delimiter.
        i += 1;
    }
    a
}

/// lighttpd's mod_deflate_choose_encoding: parse Accept-Encoding, then the first entry of
/// `allowed` (config order) the client accepts wins; for a gzip entry "gzip" is preferred to
/// "x-gzip". None when the client accepts nothing allowed (or `allowed` is empty, which is
/// what a config listing only codings lightd cannot produce gives; the default is
/// `[Gzip, Deflate]`).
pub fn choose(accept: &[u8], allowed: &[Allowed]) -> Option<Chosen> {
    let a = accepts(accept);
    allowed.iter().find_map(|entry| match entry {
        Allowed::Gzip if a.gzip => Some(Chosen {
            coding: Coding::Gzip,
            label: "gzip",
        }),
        Allowed::Gzip if a.x_gzip => Some(Chosen {
            coding: Coding::Gzip,
            label: "x-gzip",
        }),
        Allowed::Deflate if a.deflate => Some(Chosen {
            coding: Coding::Deflate,
            label: "deflate",
        }),
        _ => None,
    })
}

/// lighttpd's prefix match of Content-Type against deflate.mimetypes (case-sensitive, as
/// lighttpd's). No Content-Type matches only if the first entry is "".
pub fn mime_matches(mimetypes: &[String], content_type: Option<&[u8]>) -> bool {
    match content_type {
        Some(ct) => mimetypes.iter().any(|m| ct.starts_with(m.as_bytes())),
        None => mimetypes.first().is_some_and(|m| m.is_empty()),
    }
}

/// Whether a comma-separated field value holds `token` (ASCII case ignored), lighttpd's
/// http_header_str_contains_token: an element matches when it starts with the token followed
/// by its end, a space, a tab, ',' or ';'.
fn contains_token(value: &[u8], token: &[u8]) -> bool {
    value.split(|&b| b == b',').any(|element| {
        let e = element
            .iter()
            .position(|&b| b != b' ' && b != b'\t')
            .and_then(|p| element.get(p..))
            .unwrap_or_default();
        e.len() >= token.len()
            && e.get(..token.len())
                .is_some_and(|head| head.eq_ignore_ascii_case(token))
            && matches!(
                e.get(token.len()),
                None | Some(b' ') | Some(b'\t') | Some(b';')
            )
    })
}

/// The values of every `name` field in a "Name: value\r\n" list, joined with ", " (how
/// repeated fields combine), and how many there were.
fn joined(hdrs: &[u8], name: &str) -> (Vec<u8>, usize) {
    let mut out = Vec::new();
    let mut n = 0;
    for line in hdrs.split(|&b| b == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            continue;
        };
        let (field, value) = line.split_at(colon);
        if !field.eq_ignore_ascii_case(name.as_bytes()) {
            continue;
        }
        let value = value.get(1..).unwrap_or_default();
        let value = value.strip_prefix(b" ").unwrap_or(value);
        if n > 0 {
            out.extend_from_slice(b", ");
        }
        out.extend_from_slice(value);
        n += 1;
    }
    (out, n)
}

/// Add "Accept-Encoding" to Vary in a header list, or add `Vary: Accept-Encoding` (a
/// compressed response differs by Accept-Encoding). Returns whether a Vary was there before
/// (lighttpd does not cache a compressed file for a response that had one).
pub fn add_vary(hdrs: &mut Vec<u8>) -> bool {
    let (value, n) = joined(hdrs, "Vary");
    if n == 0 {
        response::header(hdrs, "Vary", b"Accept-Encoding");
        return false;
    }
    if contains_token(&value, b"Accept-Encoding") {
        if n > 1 {
            response::set(hdrs, "Vary", &value);
        }
        return true;
    }
    let mut value = value;
    value.extend_from_slice(b",Accept-Encoding");
    response::set(hdrs, "Vary", &value);
    true
}

/// ETag "abc" -> "abc-gzip" in the header list (lighttpd's suffix, also for a weak W/"abc");
/// returns the new value (None: no ETag, or an empty one). An ETag without its closing quote
/// (a backend's mistake) gets "-label" appended.
pub fn suffix_etag(hdrs: &mut Vec<u8>, label: &str) -> Option<Vec<u8>> {
    let old = response::find(hdrs, "ETag").filter(|v| !v.is_empty())?;
    let mut new = Vec::with_capacity(old.len() + label.len() + 1);
    match old.strip_suffix(b"\"") {
        Some(head) => {
            new.extend_from_slice(head);
            new.push(b'-');
            new.extend_from_slice(label.as_bytes());
            new.push(b'"');
        }
        None => {
            new.extend_from_slice(old);
            new.push(b'-');
            new.extend_from_slice(label.as_bytes());
        }
    }
    response::set(hdrs, "ETag", &new);
    Some(new)
}

/// CRC-32 (ISO-HDLC, as gzip's trailer), one table lookup per byte: several hundred MB/s, far
/// faster than the compression it runs beside, and 1 KB of table.
const fn crc_table() -> [u32; 256] {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
}

static CRC_TABLE: [u32; 256] = crc_table();

fn crc32(crc: u32, data: &[u8]) -> u32 {
    let mut c = !crc;
    for &b in data {
        // The index is masked to 0..=255, within the table.
        c = CRC_TABLE[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// A streaming compressor. Output is appended to `out`; every call does bounded work
/// proportional to its input.
pub struct Encoder {
    /// Boxed: the compressor has a 64 KB buffer inline, too big to move around.
    c: Box<CompressorOxide>,
    coding: Coding,
    /// The gzip header is written with the first output, so an encoder that is made and
    /// dropped unused costs nothing on the wire.
    started: bool,
    finished: bool,
    crc: u32,
    bytes_in: u64,
    /// For the gzip header's XFL byte.
    level: i32,
}

impl Encoder {
    /// level: deflate.compression-level (-1 = default 6, else 1..=9; others are clamped).
    pub fn new(coding: Coding, level: i32) -> Encoder {
        let level = if level < 0 { 6 } else { level.clamp(1, 9) };
        // Positive window bits: miniz_oxide writes the zlib header and Adler-32 trailer
        // (RFC 1950, 32 KB window, as zlib's windowBits 15); negative: raw deflate inside
        // our own gzip framing.
        let window_bits = match coding {
            Coding::Deflate => 15,
            Coding::Gzip => -15,
        };
        let flags = create_comp_flags_from_zip_params(level, window_bits, 0);
        Encoder {
            c: Box::new(CompressorOxide::new(flags)),
            coding,
            started: false,
            finished: false,
            crc: 0,
            bytes_in: 0,
            level,
        }
    }

    /// The gzip header, as zlib writes it: no name, no mtime, XFL from the level, OS Unix.
    fn start(&mut self, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        if self.coding == Coding::Gzip {
            let xfl = match self.level {
                9 => 2,
                1 => 4,
                _ => 0,
            };
            out.extend_from_slice(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, xfl, 3]);
        }
    }

    /// Run the compressor over `input` with `flush`. Returns false if it failed (which only
    /// a misuse such as writing after `finish` can cause).
    fn run(&mut self, mut input: &[u8], flush: TDEFLFlush, out: &mut Vec<u8>) -> bool {
        self.start(out);
        // With output to a callback the compressor takes all of its input in one call;
        // the bound only guards against a library that would not.
        for _ in 0..1024 {
            let (status, used) = compress_to_output(&mut self.c, input, flush, |b| {
                out.extend_from_slice(b);
                true
            });
            input = input.get(used..).unwrap_or_default();
            match status {
                TDEFLStatus::Done => return true,
                TDEFLStatus::Okay if input.is_empty() => return true,
                TDEFLStatus::Okay => {}
                TDEFLStatus::BadParam | TDEFLStatus::PutBufFailed => return false,
            }
        }
        false
    }

    pub fn write(&mut self, input: &[u8], out: &mut Vec<u8>) {
        if self.finished || input.is_empty() {
            return;
        }
        self.bytes_in += input.len() as u64;
        if self.coding == Coding::Gzip {
            self.crc = crc32(self.crc, input);
        }
        self.run(input, TDEFLFlush::None, out);
    }

    /// Emit everything buffered so far (a sync flush), for a streamed response whose
    /// backend paused: the client can decode what it has.
    pub fn flush(&mut self, out: &mut Vec<u8>) {
        if !self.finished {
            self.run(&[], TDEFLFlush::Sync, out);
        }
    }

    /// End the stream (deflate's final block, and gzip's CRC32 and size trailer). Later
    /// calls do nothing.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if self.finished {
            return;
        }
        self.run(&[], TDEFLFlush::Finish, out);
        self.finished = true;
        if self.coding == Coding::Gzip {
            out.extend_from_slice(&self.crc.to_le_bytes());
            // ISIZE: the input size modulo 2^32 (RFC 1952).
            out.extend_from_slice(&(self.bytes_in as u32).to_le_bytes());
        }
    }

    pub fn bytes_in(&self) -> u64 {
        self.bytes_in
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::process::{Command, Stdio};
    use Allowed::{Deflate, Gzip};

    fn gz() -> Option<Chosen> {
        Some(Chosen {
            coding: Coding::Gzip,
            label: "gzip",
        })
    }

    #[test]
    fn choose_like_lighttpd() {
        let x_gz = Some(Chosen {
            coding: Coding::Gzip,
            label: "x-gzip",
        });
        let dfl = Some(Chosen {
            coding: Coding::Deflate,
            label: "deflate",
        });
        let both = &[Gzip, Deflate][..];
        for (accept, allowed, want) in [
            // The lighttpd suite's cases (tests/mod-deflate.t).
            ("gzip, deflate", both, gz()),
            ("bzip2, gzip, deflate", both, gz()),
            ("deflate", both, dfl),
            ("x-gzip", both, x_gz),
            ("", both, None),
            // gzip is preferred to x-gzip in one entry, whatever the client's order.
            ("x-gzip, gzip", both, gz()),
            ("deflate, gzip", both, gz()),
            // Config order decides, not the client's.
            ("gzip, deflate", &[Deflate, Gzip][..], dfl),
            ("gzip", &[Deflate][..], None),
            ("gzip", &[][..], None),
            // lighttpd 1.4.85 skips parameters: q=0 does not refuse a coding.
            ("gzip;q=0", both, gz()),
            ("gzip;q=0, deflate", both, gz()),
            ("br;q=1.0, deflate;q=0.5", both, dfl),
            ("gzip ;q=0", both, gz()),
            // Tokens compare case-sensitively and whole.
            ("GZIP", both, None),
            ("gzipx, deflatey", both, None),
            ("identity, *", both, None),
            ("  ,, deflate ,", both, dfl),
            // A NUL ends the value, as lighttpd's C string.
            ("br\0gzip", both, None),
        ] {
            assert_eq!(
                choose(accept.as_bytes(), allowed),
                want,
                "{accept:?} {allowed:?}"
            );
        }
    }

    #[test]
    fn mimetypes() {
        let m = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(mime_matches(
            &m(&["text/"]),
            Some(b"text/html; charset=utf-8")
        ));
        assert!(!mime_matches(&m(&["text/"]), Some(b"image/png")));
        assert!(!mime_matches(&m(&["text/html"]), Some(b"text/htm")));
        assert!(!mime_matches(&m(&["text/"]), Some(b"TEXT/html")));
        assert!(mime_matches(&m(&["", "text/"]), None));
        assert!(!mime_matches(&m(&["text/", ""]), None));
        assert!(mime_matches(&m(&["text/", ""]), Some(b"anything")));
        assert!(!mime_matches(&[], None));
        assert!(!mime_matches(&[], Some(b"text/html")));
    }

    #[test]
    fn vary() {
        let mut h = b"Content-Type: text/html\r\n".to_vec();
        assert!(!add_vary(&mut h));
        assert_eq!(response::find(&h, "Vary"), Some(&b"Accept-Encoding"[..]));
        // Already there (any case, with parameters): unchanged.
        for v in [
            "accept-encoding",
            "Cookie, Accept-Encoding",
            "Accept-Encoding;x",
        ] {
            let mut h = format!("Vary: {v}\r\nX: y\r\n").into_bytes();
            let before = h.clone();
            assert!(add_vary(&mut h));
            assert_eq!(h, before, "{v}");
        }
        let mut h = b"Vary: Cookie\r\n".to_vec();
        assert!(add_vary(&mut h));
        assert_eq!(
            response::find(&h, "Vary"),
            Some(&b"Cookie,Accept-Encoding"[..])
        );
        // A longer token is not the same token.
        let mut h = b"Vary: Accept-Encodings\r\n".to_vec();
        assert!(add_vary(&mut h));
        assert_eq!(
            response::find(&h, "Vary"),
            Some(&b"Accept-Encodings,Accept-Encoding"[..])
        );
        // Two Vary lines become one.
        let mut h = b"Vary: Cookie\r\nVary: Origin\r\n".to_vec();
        assert!(add_vary(&mut h));
        assert_eq!(h, b"Vary: Cookie, Origin,Accept-Encoding\r\n".to_vec());
    }

    #[test]
    fn etag() {
        let mut h = b"ETag: \"abc\"\r\nX: y\r\n".to_vec();
        assert_eq!(suffix_etag(&mut h, "gzip"), Some(b"\"abc-gzip\"".to_vec()));
        assert_eq!(response::find(&h, "ETag"), Some(&b"\"abc-gzip\""[..]));
        assert_eq!(response::find(&h, "X"), Some(&b"y"[..]));
        let mut h = b"ETag: W/\"1-2\"\r\n".to_vec();
        assert_eq!(
            suffix_etag(&mut h, "x-gzip"),
            Some(b"W/\"1-2-x-gzip\"".to_vec())
        );
        let mut h = b"ETag: bare\r\n".to_vec();
        assert_eq!(
            suffix_etag(&mut h, "deflate"),
            Some(b"bare-deflate".to_vec())
        );
        let mut h = b"X: y\r\n".to_vec();
        assert_eq!(suffix_etag(&mut h, "gzip"), None);
        assert_eq!(h, b"X: y\r\n".to_vec());
        let mut h = b"ETag: \r\n".to_vec();
        assert_eq!(suffix_etag(&mut h, "gzip"), None);
    }

    #[test]
    fn crc_check_value() {
        // The standard check value of CRC-32/ISO-HDLC.
        assert_eq!(crc32(0, b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(crc32(0, b"1234"), b"56789"), 0xCBF4_3926);
        assert_eq!(crc32(0, b""), 0);
    }

    /// Decode with a decoder that shares no code with ours: gzip(1) for gzip, perl's zlib
    /// binding for the zlib format. Returns (stdout, whether the decoder was satisfied).
    fn decode(coding: Coding, data: &[u8]) -> (Vec<u8>, bool) {
        let mut cmd = match coding {
            Coding::Gzip => {
                let mut c = Command::new("gzip");
                c.arg("-dc");
                c
            }
            Coding::Deflate => {
                let mut c = Command::new("perl");
                c.args([
                    "-MCompress::Zlib",
                    "-e",
                    "binmode STDIN; binmode STDOUT; local $/; my $in = <STDIN>; \
                     my ($i, $s) = inflateInit(); my ($o, $st) = $i->inflate($in); \
                     print $o if defined $o; exit($st == Z_STREAM_END ? 0 : 1)",
                ]);
                c
            }
        };
        let mut child = cmd
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the decoder (gzip, perl) is installed");
        let mut stdin = child.stdin.take().expect("stdin");
        let data = data.to_vec();
        // Written from a thread: the decoder's output may fill its pipe before it has read
        // all of its input.
        let writer = std::thread::spawn(move || {
            let _ = stdin.write_all(&data);
        });
        let out = child.wait_with_output().expect("decoder ran");
        let _ = writer.join();
        (out.stdout, out.status.success())
    }

    /// Text that compresses like a web page: repeated words with variation.
    fn sample(len: usize) -> Vec<u8> {
        let words = [
            "<div class=\"item\">",
            "lightd",
            "compresses",
            "function(x) { return x + 1; }",
            "</div>\n",
            "lorem",
            "ipsum",
        ];
        let mut out = Vec::with_capacity(len + 64);
        let mut n: u32 = 7;
        while out.len() < len {
            n = n.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            out.extend_from_slice(words[(n >> 16) as usize % words.len()].as_bytes());
            out.extend_from_slice((n % 1000).to_string().as_bytes());
        }
        out.truncate(len);
        out
    }

    fn encode(coding: Coding, level: i32, input: &[u8], step: usize, flush: bool) -> Vec<u8> {
        let mut e = Encoder::new(coding, level);
        let mut out = Vec::new();
        for chunk in input.chunks(step.max(1)) {
            e.write(chunk, &mut out);
            if flush {
                e.flush(&mut out);
            }
        }
        e.finish(&mut out);
        assert_eq!(e.bytes_in(), input.len() as u64);
        out
    }

    #[test]
    fn round_trips() {
        let big = sample(1 << 20);
        for coding in [Coding::Gzip, Coding::Deflate] {
            for (input, level, step, flush) in [
                (&b""[..], -1, 1, false),
                (&b"a"[..], 1, 1, false),
                (&big[..1000], 9, 7, true),
                (&big[..], -1, 16384, false),
                (&big[..], 1, 65536, false),
                (&big[..200_000], 6, 1000, true),
            ] {
                let enc = encode(coding, level, input, step, flush);
                let (dec, ok) = decode(coding, &enc);
                assert!(ok, "{coding:?} level {level}: the decoder refused");
                assert!(dec == input, "{coding:?} level {level}: differs");
                if input.len() == big.len() {
                    assert!(
                        enc.len() < input.len() / 3,
                        "{coding:?}: {} bytes",
                        enc.len()
                    );
                }
            }
        }
    }

    #[test]
    fn formats() {
        let mut out = Vec::new();
        let mut e = Encoder::new(Coding::Gzip, -1);
        e.finish(&mut out);
        // Header: magic, deflate, no flags, no mtime, XFL 0, OS Unix.
        assert_eq!(
            out.get(..10),
            Some(&[0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3][..])
        );
        // Trailer: CRC32 and size of nothing.
        assert_eq!(out.get(out.len() - 8..), Some(&[0u8; 8][..]));
        let mut out9 = Vec::new();
        Encoder::new(Coding::Gzip, 9).finish(&mut out9);
        assert_eq!(out9.get(8), Some(&2));
        // zlib: CMF 0x78 (deflate, 32 KB window), FCHECK makes the pair a multiple of 31.
        let mut z = Vec::new();
        let mut e = Encoder::new(Coding::Deflate, -1);
        e.write(b"hello", &mut z);
        e.finish(&mut z);
        assert_eq!(z.first(), Some(&0x78));
        let pair = u16::from(z[0]) << 8 | u16::from(z[1]);
        assert_eq!(pair % 31, 0);
        // Finishing twice, or writing after the end, adds nothing.
        let len = z.len();
        e.finish(&mut z);
        e.write(b"more", &mut z);
        e.flush(&mut z);
        assert_eq!(z.len(), len);
        assert_eq!(e.bytes_in(), 5);
    }

    #[test]
    fn flush_makes_a_decodable_prefix() {
        let input = sample(50_000);
        for coding in [Coding::Gzip, Coding::Deflate] {
            let mut e = Encoder::new(coding, -1);
            let mut out = Vec::new();
            e.write(&input[..30_000], &mut out);
            e.flush(&mut out);
            // A sync flush ends in an empty stored block.
            assert_eq!(out.get(out.len() - 4..), Some(&[0, 0, 0xff, 0xff][..]));
            // Unfinished: the decoder complains, but has all the data so far.
            let (dec, ok) = decode(coding, &out);
            assert!(!ok, "{coding:?}: an unfinished stream was accepted");
            assert!(
                dec == input[..30_000],
                "{coding:?}: {} bytes decoded",
                dec.len()
            );
            e.write(&input[30_000..], &mut out);
            e.finish(&mut out);
            let (dec, ok) = decode(coding, &out);
            assert!(ok && dec == input, "{coding:?}");
            // A damaged stream is refused: the checksum is checked.
            let mut bad = out.clone();
            if let Some(b) = bad.get_mut(out.len() - 6) {
                *b ^= 1;
            }
            assert!(!decode(coding, &bad).1, "{coding:?}: a bad checksum passed");
        }
    }

    #[test]
    fn output_grows_with_input_not_at_once() {
        // Bounded work: a write of a small piece after a large one emits little, and the
        // encoder keeps no more than its window's worth of pending output.
        let input = sample(1 << 20);
        let mut e = Encoder::new(Coding::Gzip, -1);
        let mut out = Vec::new();
        for chunk in input.chunks(4096) {
            e.write(chunk, &mut out);
        }
        let before_finish = out.len();
        e.finish(&mut out);
        assert!(out.len() - before_finish < 200_000);
    }
}
