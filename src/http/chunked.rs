//! The chunked transfer coding (RFC 9112 §7.1), decoded incrementally with bounded state.
//!
//! CONTRACT STUB: the parser helper replaces this file with the real implementation.

use super::HttpError;

/// Incremental decoder; feed it whatever bytes arrived.
#[derive(Debug, Default, Clone)]
pub struct ChunkedDecoder {}

impl ChunkedDecoder {
    pub fn new() -> Self {
        ChunkedDecoder {}
    }

    /// Decode from `input`, passing payload bytes to `sink`. Returns the bytes of `input`
    /// consumed and whether the body (last chunk and trailers) is complete. Stops consuming at
    /// the end of the body, so pipelined bytes after it are left alone.
    pub fn feed(
        &mut self,
        _input: &[u8],
        _sink: &mut dyn FnMut(&[u8]),
    ) -> Result<(usize, bool), HttpError> {
        unimplemented!()
    }
}
