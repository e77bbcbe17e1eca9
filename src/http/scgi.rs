//! The SCGI request header (the SCGI 1 protocol): the CGI environment as a netstring of
//! NUL-terminated names and values, sent before the request body.
//!
//! `<length>:CONTENT_LENGTH<NUL><n><NUL>SCGI<NUL>1<NUL><name><NUL><value><NUL>...,`
//!
//! The protocol requires CONTENT_LENGTH first and SCGI=1 present; the encoder writes both
//! itself, right at the start, so the caller can hand it the same environment it builds for
//! CGI and FastCGI (whose own CONTENT_LENGTH and any SCGI pair are left out). The application
//! reads the body as exactly CONTENT_LENGTH bytes after the ','.

use std::fmt;

use super::response::push_u64;

/// Why a header could not be encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScgiError {
    pub reason: &'static str,
}

impl fmt::Display for ScgiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot encode SCGI header: {}", self.reason)
    }
}

/// Room left before the header for its length: u64's 20 digits and the ':'.
const PREFIX_ROOM: usize = 21;

/// Append the SCGI header for a body of `content_length` bytes and the (name, value) pairs.
///
/// A NUL in a name or value would end it early on the application's side and turn the rest
/// into a different variable, so such a pair is refused, as is an empty name; on error `out`
/// is left as it was. Pairs named CONTENT_LENGTH or SCGI are skipped: the encoder writes those.
pub fn request_header<'a, I>(
    out: &mut Vec<u8>,
    content_length: u64,
    pairs: I,
) -> Result<(), ScgiError>
where
    I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
{
    let start = out.len();
    // The netstring's length comes first but is known last: leave room for it, write the
    // payload, then put the length right before the payload and close the gap.
    out.resize(start + PREFIX_ROOM, 0);
    out.extend_from_slice(b"CONTENT_LENGTH\0");
    push_u64(out, content_length);
    out.extend_from_slice(b"\0SCGI\x001\0");
    for (name, value) in pairs {
        if name.is_empty() || name.contains(&0) || value.contains(&0) {
            out.truncate(start);
            return Err(ScgiError {
                reason: if name.is_empty() {
                    "empty variable name"
                } else {
                    "NUL byte in a variable"
                },
            });
        }
        if name == b"CONTENT_LENGTH" || name == b"SCGI" {
            continue;
        }
        out.extend_from_slice(name);
        out.push(0);
        out.extend_from_slice(value);
        out.push(0);
    }
    let payload = out.len() - start - PREFIX_ROOM;
    let mut prefix = Vec::with_capacity(PREFIX_ROOM);
    push_u64(&mut prefix, payload as u64);
    prefix.push(b':');
    let at = start + PREFIX_ROOM - prefix.len();
    out[at..start + PREFIX_ROOM].copy_from_slice(&prefix);
    out.copy_within(at.., start);
    out.truncate(out.len() - (at - start));
    out.push(b',');
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parse a netstring header back into its pairs, checking the framing on the way.
    fn parse(v: &[u8]) -> (Vec<(String, String)>, usize) {
        let colon = v.iter().position(|&b| b == b':').unwrap_or(0);
        let digits = std::str::from_utf8(&v[..colon]).unwrap_or_default();
        assert!(
            !digits.starts_with('0') || digits == "0",
            "leading zero: {digits}"
        );
        let len: usize = digits.parse().unwrap_or(usize::MAX);
        let body = &v[colon + 1..colon + 1 + len];
        assert_eq!(v[colon + 1 + len], b',');
        assert_eq!(body.last(), Some(&0));
        let parts: Vec<String> = body[..body.len() - 1]
            .split(|&b| b == 0)
            .map(|p| String::from_utf8_lossy(p).into_owned())
            .collect();
        assert_eq!(parts.len() % 2, 0);
        let pairs = parts
            .chunks(2)
            .map(|c| (c[0].clone(), c[1].clone()))
            .collect();
        (pairs, colon + 1 + len + 1)
    }

    fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn the_example_from_the_specification() {
        let mut out = Vec::new();
        let env: [(&[u8], &[u8]); 3] = [
            (b"CONTENT_LENGTH", b"27"),
            (b"REQUEST_METHOD", b"POST"),
            (b"REQUEST_URI", b"/deepthought"),
        ];
        assert_eq!(request_header(&mut out, 27, env), Ok(()));
        let want = b"70:CONTENT_LENGTH\x0027\x00SCGI\x001\x00REQUEST_METHOD\x00POST\x00\
                     REQUEST_URI\x00/deepthought\x00,";
        assert_eq!(out, want.to_vec());
    }

    #[test]
    fn pairs_round_trip_and_lengths_have_no_leading_zeros() {
        for n in [0usize, 1, 5, 80, 2000] {
            let value = "v".repeat(n);
            let pairs = [
                ("EMPTY", ""),
                ("HTTP_HOST", "example.com"),
                ("X", &value[..]),
            ];
            let mut out = b"before".to_vec();
            let input = pairs.iter().map(|(a, b)| (a.as_bytes(), b.as_bytes()));
            assert_eq!(request_header(&mut out, 1234567, input), Ok(()));
            assert_eq!(&out[..6], b"before");
            let (got, used) = parse(&out[6..]);
            assert_eq!(used, out.len() - 6);
            let mut want = owned(&[("CONTENT_LENGTH", "1234567"), ("SCGI", "1")]);
            want.extend(owned(&pairs));
            assert_eq!(got, want);
        }
        // The largest length still fits in the room left for the prefix.
        let mut out = Vec::new();
        assert_eq!(request_header(&mut out, u64::MAX, []), Ok(()));
        let (got, _) = parse(&out);
        assert_eq!(got[0].1, u64::MAX.to_string());
    }

    #[test]
    fn content_length_and_scgi_from_the_caller_are_not_repeated() {
        let mut out = Vec::new();
        let env: [(&[u8], &[u8]); 3] = [(b"SCGI", b"2"), (b"CONTENT_LENGTH", b"9"), (b"A", b"b")];
        assert_eq!(request_header(&mut out, 0, env), Ok(()));
        let (got, _) = parse(&out);
        assert_eq!(
            got,
            owned(&[("CONTENT_LENGTH", "0"), ("SCGI", "1"), ("A", "b")])
        );
    }

    #[test]
    fn nul_and_empty_names_are_refused_and_leave_out_unchanged() {
        for (name, value) in [(&b"A\0B"[..], &b"v"[..]), (b"A", b"v\0w"), (b"", b"v")] {
            let mut out = b"keep".to_vec();
            let env = [(&b"OK"[..], &b"1"[..]), (name, value)];
            let r = request_header(&mut out, 5, env);
            assert!(r.is_err(), "{name:?}={value:?}");
            assert_eq!(out, b"keep");
        }
    }
}
