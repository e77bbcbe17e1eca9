//! Small text helpers for generated HTML and redirects: escaping and URL-encoding.
//!
//! Directory listings put file names, which anyone with write access to the docroot chooses,
//! into HTML text, attribute values and URLs; these two functions are what keeps such a name
//! from becoming markup or a different link.

/// Append `s` to `out` with &, <, >, " and ' escaped for HTML text and attributes.
pub fn html_escape(s: &str, out: &mut String) {
    // Copy runs of harmless text in one go rather than char by char.
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let entity = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            // &#39; rather than &apos;, which HTML 4 lacks.
            b'\'' => "&#39;",
            _ => continue,
        };
        // `i` is at an ASCII byte, so both slices end on char boundaries.
        out.push_str(&s[start..i]);
        out.push_str(entity);
        start = i + 1;
    }
    out.push_str(&s[start..]);
}

/// Append `s` to `out` percent-encoded for use as a path segment in a URL (keeps unreserved
/// characters; encodes everything else, including '/', '?', '#', '%' and non-ASCII).
pub fn url_encode_segment(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            push_escape(b, out);
        }
    }
}

/// Append the bytes of a request's query to `out` for a Location field: visible ASCII as it
/// came (the query's own escapes and delimiters mean what the client meant), every other byte
/// (the raw non-ASCII bytes the parser admits) percent-encoded, so the URI is ASCII again.
pub fn encode_query(q: &[u8], out: &mut String) {
    for &b in q {
        if (0x21..=0x7e).contains(&b) {
            out.push(char::from(b));
        } else {
            push_escape(b, out);
        }
    }
}

fn push_escape(b: u8, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('%');
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 0x0f)]));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escape_table() {
        #[rustfmt::skip]
        let cases: &[(&str, &str)] = &[
            ("", ""),
            ("plain.txt", "plain.txt"),
            ("a&b", "a&amp;b"),
            ("<script>", "&lt;script&gt;"),
            ("\"quoted\"", "&quot;quoted&quot;"),
            ("it's", "it&#39;s"),
            ("&amp;", "&amp;amp;"),
            ("<<>>", "&lt;&lt;&gt;&gt;"),
            ("caf\u{e9} & \u{65e5}", "caf\u{e9} &amp; \u{65e5}"),
            ("x\"><img src=x onerror='y'>", "x&quot;&gt;&lt;img src=x onerror=&#39;y&#39;&gt;"),
        ];
        for &(input, want) in cases {
            let mut out = String::from("pre:");
            html_escape(input, &mut out);
            assert_eq!(out, format!("pre:{want}"), "{input:?}");
        }
    }

    #[test]
    fn url_encode_table() {
        #[rustfmt::skip]
        let cases: &[(&str, &str)] = &[
            ("", ""),
            ("AZaz09-._~", "AZaz09-._~"),
            ("a b", "a%20b"),
            ("a/b", "a%2Fb"),
            ("a?b#c", "a%3Fb%23c"),
            ("100%", "100%25"),
            ("%2e", "%252e"),
            ("a+b=c&d", "a%2Bb%3Dc%26d"),
            ("..", ".."),
            ("back\\slash", "back%5Cslash"),
            ("\u{e9}", "%C3%A9"),
            ("\u{1f600}", "%F0%9F%98%80"),
            ("\u{7f}\u{1}", "%7F%01"),
            ("<'\">", "%3C%27%22%3E"),
        ];
        for &(input, want) in cases {
            let mut out = String::from("/");
            url_encode_segment(input, &mut out);
            assert_eq!(out, format!("/{want}"), "{input:?}");
        }
    }

    #[test]
    fn encode_query_table() {
        #[rustfmt::skip]
        let cases: &[(&[u8], &str)] = &[
            (b"", ""),
            (b"foo", "foo"),
            (b"a=1&b=%20x", "a=1&b=%20x"),
            (b"q=/x?y", "q=/x?y"),
            ("\u{e4}=\u{f6}".as_bytes(), "%C3%A4=%C3%B6"),
            (b"\xff\x80", "%FF%80"),
            (b"a b\x01\x7f", "a%20b%01%7F"),
        ];
        for &(input, want) in cases {
            let mut out = String::from("?");
            encode_query(input, &mut out);
            assert_eq!(out, format!("?{want}"), "{input:?}");
        }
    }

    #[test]
    fn url_encoded_names_decode_back() {
        // What a listing links to must lead back to the same file through path::normalize.
        for name in [
            "a b",
            "%2e%2e",
            "caf\u{e9}",
            "x?y#z",
            "back\\slash",
            "100%",
            "a+b",
        ] {
            let mut link = String::from("/dir/");
            url_encode_segment(name, &mut link);
            let mut path = String::new();
            assert!(super::super::path::normalize(link.as_bytes(), &mut path).is_ok());
            assert_eq!(path, format!("/dir/{name}"));
        }
    }
}
