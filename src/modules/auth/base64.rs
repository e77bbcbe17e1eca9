//! Strict, bounded base64 decoding (standard alphabet) for Basic credentials and `{SHA}` lines.
//!
//! lighttpd's decoder skips whitespace and control bytes and stops at the first `=`; this one
//! refuses anything that is not canonical-looking base64, which turns every input lighttpd
//! rejects into a rejection here too, and a few it would have tolerated (embedded spaces,
//! junk after the padding) into rejections as well.

/// The value of one base64 digit, or None for anything outside `A-Z a-z 0-9 + /`.
fn digit(b: u8) -> Option<u32> {
    let v = match b {
        b'A'..=b'Z' => b - b'A',
        b'a'..=b'z' => b - b'a' + 26,
        b'0'..=b'9' => b - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => return None,
    };
    Some(u32::from(v))
}

/// Decode `input`, or None if it is not base64 or would decode to more than `max_out` bytes.
///
/// Padding is optional, but where present it must complete the last group of four and nothing
/// may follow it; a lone trailing digit (which carries less than one byte) is refused.
pub fn decode(input: &[u8], max_out: usize) -> Option<Vec<u8>> {
    let data_len = input.iter().position(|&b| b == b'=').unwrap_or(input.len());
    let (data, pad) = input.split_at(data_len);
    if pad.len() > 2 || pad.iter().any(|&b| b != b'=') {
        return None;
    }
    if !pad.is_empty() && input.len() % 4 != 0 {
        return None;
    }
    if data.len() % 4 == 1 {
        return None;
    }
    // Checked before allocating, so a huge input cannot make a huge buffer.
    let out_len = data.len() / 4 * 3 + (data.len() % 4).saturating_sub(1);
    if out_len > max_out {
        return None;
    }
    let mut out = Vec::with_capacity(out_len);
    for group in data.chunks(4) {
        let mut acc: u32 = 0;
        for &b in group {
            acc = (acc << 6) | digit(b)?;
        }
        // Left-align a short final group as if zero digits followed it.
        acc <<= 6 * (4 - group.len() as u32);
        let bytes = acc.to_be_bytes();
        let n = group.len() - 1;
        out.extend_from_slice(bytes.get(1..1 + n)?);
    }
    Some(out)
}

#[cfg(test)]
pub(crate) fn encode(input: &[u8]) -> String {
    // Test-only: the independent direction, to round-trip arbitrary bytes through decode().
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut s = String::new();
    for c in input.chunks(3) {
        let b = [c[0], *c.get(1).unwrap_or(&0), *c.get(2).unwrap_or(&0)];
        let v = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= c.len() {
                s.push(A[((v >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                s.push('=');
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_table() {
        let cases: &[(&[u8], Option<&[u8]>)] = &[
            (b"amFuOmphbg==", Some(b"jan:jan")),
            (b"amFuOmphbg", Some(b"jan:jan")),
            (b"c2hhOnNoYQ==", Some(b"sha:sha")),
            (b"YXByLW1kNTphcHItbWQ1", Some(b"apr-md5:apr-md5")),
            (b"bm90Oml0Cg==", Some(b"not:it\n")),
            (b"", Some(b"")),
            (b"QQ==", Some(b"A")),
            (b"QUI=", Some(b"AB")),
            (b"QUJD", Some(b"ABC")),
            // lighttpd's request.t: both are answered 400.
            (b"=", None),
            (b"\x80mFuOmphb", None),
            // Truncated: one digit cannot hold a byte.
            (b"amFuO", None),
            (b"Q===", None),
            (b"QQ=", None),
            (b"QQ==QQ==", None),
            (b"QQ==x", None),
            (b"am Fu", None),
            (b"amFu\n", None),
            (b"am-_", None),
        ];
        for (input, want) in cases {
            let got = decode(input, 1024);
            assert_eq!(
                got.as_deref(),
                *want,
                "input {:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn decode_is_bounded() {
        assert_eq!(decode(b"QUJD", 3).as_deref(), Some(&b"ABC"[..]));
        assert_eq!(decode(b"QUJD", 2), None);
        assert_eq!(decode(b"QUJDRA", 3), None);
        let huge = vec![b'A'; 1 << 20];
        assert_eq!(decode(&huge, 1023), None);
    }

    #[test]
    fn round_trips_every_length_and_byte() {
        let bytes: Vec<u8> = (0..=255u8).rev().chain(0..=255u8).collect();
        for len in 0..70 {
            let src = &bytes[len * 3..len * 3 + len];
            let enc = encode(src);
            assert_eq!(
                decode(enc.as_bytes(), 1024).as_deref(),
                Some(src),
                "{}",
                enc
            );
            let unpadded = enc.trim_end_matches('=');
            assert_eq!(decode(unpadded.as_bytes(), 1024).as_deref(), Some(src));
        }
    }
}
