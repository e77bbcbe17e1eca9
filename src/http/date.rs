//! HTTP dates (RFC 9110 §5.6.7): IMF-fixdate out, all three formats in.
//!
//! CONTRACT STUB: the paths helper replaces this file with the real implementation.

/// Format seconds since the Unix epoch as "Sun, 06 Nov 1994 08:49:37 GMT" (always 29 bytes).
pub fn format(_secs: u64, _out: &mut [u8; 29]) {
    unimplemented!()
}

/// Parse an HTTP date into seconds since the Unix epoch; None when it is not a valid date.
pub fn parse(_value: &[u8]) -> Option<u64> {
    unimplemented!()
}
