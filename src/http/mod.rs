//! Pure HTTP/1.1 pieces: request-head parsing, body framing, paths, ranges, dates. No I/O.

#[cfg(any(feature = "wstunnel", feature = "tls"))]
pub mod base64;
pub mod chunked;
pub mod date;
#[cfg(feature = "fastcgi")]
pub mod fcgi;
#[cfg(feature = "backend")]
pub mod gw_head;
#[cfg(any(feature = "vhost", feature = "extforward"))]
pub mod host;
pub mod path;
#[cfg(feature = "proxy")]
pub mod proxy;
pub mod range;
pub mod request;
pub mod response;
#[cfg(feature = "scgi")]
pub mod scgi;
pub mod util;
#[cfg(feature = "wstunnel")]
pub mod websocket;

/// A parse failure that maps to a response status; the connection is closed after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpError {
    pub status: u16,
    /// A short reason for the debug log and the error page. Never contains client bytes.
    pub reason: &'static str,
}

impl HttpError {
    pub const fn new(status: u16, reason: &'static str) -> Self {
        HttpError { status, reason }
    }
}
