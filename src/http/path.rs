//! Request paths: percent-decode exactly once, then remove dot segments (RFC 3986 §5.2.4).
//!
//! CONTRACT STUB: the paths helper replaces this file with the real implementation.

use super::HttpError;

/// Decode and normalise the (still percent-encoded) path of a request target into `out`.
/// The result starts with '/', has no "." or ".." segments, no NUL, and keeps a trailing slash.
pub fn normalize(_raw: &[u8], _out: &mut String) -> Result<(), HttpError> {
    unimplemented!()
}
