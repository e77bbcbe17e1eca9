//! One request and its response, from the parsed head to the access log line: everything that
//! is per request rather than per connection. Created when a head is parsed (or fails to
//! parse) and dropped when the response is out, so nothing needs resetting by hand.

use std::fs::File;
use std::rc::Rc;
use std::time::Instant;

use crate::config::ReqConf;
use crate::http::chunked::ChunkedDecoder;
use crate::http::request::Head;
use crate::http::response::Persist;

/// How much of the request body is still to be read (and discarded: no handler reads bodies
/// yet).
pub enum BodyState {
    None,
    Length(u64),
    /// Boxed: the decoder holds a trailer name buffer, and every exchange would otherwise
    /// carry its size; chunked bodies are rare enough to allocate for.
    Chunked(Box<ChunkedDecoder>),
}

pub struct Exchange {
    /// None when the request could not be parsed (it is being answered with an error).
    pub head: Option<Head>,
    pub body: BodyState,
    pub body_seen: u64,
    /// When the head was complete.
    pub start: Instant,
    /// The persistence announced in the response.
    pub persist: Persist,
    /// The client itself asked for the connection to end after this response (Connection:
    /// close, or HTTP/1.0 without keep-alive), so it sends nothing more (RFC 9112 §9.6).
    pub client_closes: bool,
    /// HEAD: headers as for GET, no body.
    pub head_only: bool,
    /// The settings the request ran with, once known.
    pub conf: Option<Rc<ReqConf>>,
    pub status: u16,
    /// Body bytes queued.
    pub body_len: u64,
    /// The file whose ranges the response sends with sendfile.
    pub file: Option<File>,
    /// The response may not leave before this (auth's delay after bad credentials).
    pub hold_until: Option<Instant>,
    /// The client address a trusted proxy named (mod_extforward), for the access log.
    #[cfg(feature = "extforward")]
    pub client: Option<std::net::IpAddr>,
    /// The target (path and query) after rewrites, when a module changed it.
    pub target: Option<String>,
    /// The user mod_auth authenticated (REMOTE_USER; the access log's %u), and how
    /// (AUTH_TYPE: "Basic" or "Digest").
    #[cfg(feature = "auth")]
    pub remote_user: Option<String>,
    #[cfg(feature = "auth")]
    pub auth_type: Option<&'static str>,
    /// The backend answering this request, once the pipeline chose one.
    #[cfg(feature = "backend")]
    pub backend: Option<Box<super::backend::Gw>>,
    /// A FastCGI authorizer allowed the request: its `Variable-*` fields, for the
    /// environment of whatever handles the request next.
    #[cfg(feature = "fastcgi")]
    pub authorized: Option<Vec<(Vec<u8>, Vec<u8>)>>,
    /// mod_deflate: a large file being compressed as it is sent.
    #[cfg(feature = "deflate")]
    pub deflate: Option<Box<super::deflate::Stream>>,
}

impl Exchange {
    pub fn new(head: Option<Head>, now: Instant, persist: Persist) -> Exchange {
        Exchange {
            head,
            body: BodyState::None,
            body_seen: 0,
            start: now,
            persist,
            client_closes: false,
            head_only: false,
            conf: None,
            status: 0,
            body_len: 0,
            file: None,
            hold_until: None,
            #[cfg(feature = "extforward")]
            client: None,
            target: None,
            #[cfg(feature = "auth")]
            remote_user: None,
            #[cfg(feature = "auth")]
            auth_type: None,
            #[cfg(feature = "backend")]
            backend: None,
            #[cfg(feature = "fastcgi")]
            authorized: None,
            #[cfg(feature = "deflate")]
            deflate: None,
        }
    }
}
