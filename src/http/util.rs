//! Small text helpers for generated HTML: escaping and URL-encoding.
//!
//! CONTRACT STUB: the paths helper replaces this file with the real implementation.

/// Append `s` to `out` with &, <, >, " and ' escaped for HTML text and attributes.
pub fn html_escape(_s: &str, _out: &mut String) {
    unimplemented!()
}

/// Append `s` to `out` percent-encoded for use as a path segment in a URL (keeps unreserved
/// characters; encodes everything else, including '/', '?', '#', '%' and non-ASCII).
pub fn url_encode_segment(_s: &str, _out: &mut String) {
    unimplemented!()
}
