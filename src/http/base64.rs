//! Standard base64 encoding (RFC 4648, with padding), for what lightd writes itself: the
//! WebSocket Sec-WebSocket-Accept value and a client certificate's PEM for SSL_CLIENT_CERT.

/// The standard alphabet.
pub const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding; `out` must hold 4 bytes per started 3 of `input`.
pub fn encode_into(input: &[u8], out: &mut [u8]) {
    for (group, dst) in input.chunks(3).zip(out.chunks_mut(4)) {
        let b = [
            group[0],
            group.get(1).copied().unwrap_or(0),
            group.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for (i, d) in dst.iter_mut().enumerate() {
            *d = if i <= group.len() {
                ALPHABET[((n >> (18 - 6 * i)) & 0x3f) as usize]
            } else {
                b'='
            };
        }
    }
}

/// `input` in base64, as a string.
#[cfg(feature = "tls")]
pub fn encode(input: &[u8]) -> String {
    let mut out = vec![0u8; (input.len() + 2) / 3 * 4];
    encode_into(input, &mut out);
    // Only alphabet bytes and '=' were written.
    out.into_iter().map(char::from).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_table() {
        // RFC 4648 §10.
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            let mut out = vec![0u8; want.len()];
            encode_into(input.as_bytes(), &mut out);
            assert_eq!(out, want.as_bytes(), "{input:?}");
        }
        let mut out = [0u8; 4];
        encode_into(&[0xfb, 0xff, 0xbf], &mut out);
        assert_eq!(&out, b"+/+/");
    }
}
