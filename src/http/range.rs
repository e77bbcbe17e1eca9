//! The Range request field (RFC 9110 §14): byte ranges only, coalesced and bounded.
//!
//! CONTRACT STUB: the paths helper replaces this file with the real implementation.

/// What to do with a Range field for a representation of `len` bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RangeOutcome {
    /// Not a byte range we honour (syntax error, unknown unit): serve the whole file with 200.
    Ignore,
    /// No range overlaps the file: 416.
    Unsatisfiable,
    /// `out` holds one or more inclusive ranges, sorted and coalesced.
    Ranges,
}

/// Parse `value` (for example "bytes=0-99,200-") for a file of `len` bytes into `out`.
pub fn parse(_value: &[u8], _len: u64, _out: &mut Vec<(u64, u64)>) -> RangeOutcome {
    unimplemented!()
}
