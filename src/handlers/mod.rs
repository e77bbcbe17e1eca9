//! Request handlers: given a request and its settings, describe the response.
//!
//! A handler sets the status and the response's own headers (a header list, see
//! [`crate::http::response`]), and queues the body: small bodies in the write buffer, file
//! ranges to be sent with sendfile. It never writes the head itself: that is serialized once,
//! after the response-start modules have had their say. Handlers that wait on other
//! descriptors (CGI pipes, proxy sockets) belong in `backend/`; these never wait.

pub mod cache;
pub mod dirlist_page;
pub mod listing;
pub mod static_file;
#[cfg(feature = "status")]
pub mod status;
pub mod status_page;

use std::collections::VecDeque;
use std::fs::File;
use std::path::PathBuf;

use crate::config::ReqConf;
use crate::http::request::{Head, Header, Method, Version};
use crate::http::response;
pub use crate::http::response::Persist;

/// One piece of response output, sent in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seg {
    /// Bytes `start..end` of the head buffer: the serialized response head.
    Head(usize, usize),
    /// Bytes `start..end` of the write buffer.
    Mem(usize, usize),
    /// `len` bytes of the response file starting at `offset`, sent with sendfile.
    File { offset: u64, len: u64 },
}

/// What the handler reads: the request as parsed, with its normalised path, where that path
/// lives on disk, and its settings.
pub struct Request<'a> {
    /// The read buffer the head's spans point into.
    pub buf: &'a [u8],
    pub head: &'a Head,
    pub headers: &'a [Header],
    /// The decoded, normalised URL path ("/dir/file"), after any rewrite.
    pub path: &'a str,
    /// The query string (without '?'), after any rewrite.
    pub query: Option<&'a [u8]>,
    /// The directory `rel` is under: the document root, or what an alias or a user
    /// directory maps the URL to. None: nothing configured, the request gets a 500.
    pub root: Option<&'a std::path::Path>,
    /// The part of the path below `root`, starting with '/'.
    pub rel: &'a str,
    pub conf: &'a ReqConf,
}

impl Request<'_> {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        crate::http::request::header(self.buf, self.headers, name)
    }
}

/// Whether a body of this Content-Type and length would be compressed (see
/// [`Reply::compressed`]).
pub type CompressProbe<'a> = dyn Fn(&str, u64) -> bool + 'a;

/// Where the handler describes the response, plus the scratch space it may reuse.
pub struct Reply<'a> {
    /// The response's own header fields ("Name: value\r\n" lines).
    pub hdrs: &'a mut Vec<u8>,
    /// Body bytes kept in memory; `Seg::Mem` ranges point into it.
    pub wbuf: &'a mut Vec<u8>,
    pub segs: &'a mut VecDeque<Seg>,
    pub file: &'a mut Option<File>,
    pub fs_path: &'a mut PathBuf,
    pub ranges: &'a mut Vec<(u64, u64)>,
    pub scratch: &'a mut String,
    /// Small files kept in memory.
    pub cache: &'a mut cache::FileCache,
    /// The current second, for cache revalidation.
    pub now: u64,
    /// HEAD: headers as for GET, no body.
    pub head_only: bool,
    pub status: u16,
    /// The body's length, announced as Content-Length; None for statuses without a body.
    pub content_length: Option<u64>,
    /// Body bytes queued (for the access log).
    pub body_len: u64,
    /// The modification time of the file served, for mod_expire's "modification" rules.
    pub mtime: Option<u64>,
    /// Whether mod_deflate will compress a body of this Content-Type and length for this
    /// request. Such a response ignores Range, as lighttpd's does: ranges are of the
    /// unencoded content.
    pub compressed: Option<&'a CompressProbe<'a>>,
}

impl Reply<'_> {
    /// Begin a response with `status`, forgetting any header fields set so far.
    pub fn start(&mut self, status: u16) {
        self.status = status;
        self.hdrs.clear();
        self.content_length = None;
    }

    /// Add a header field.
    pub fn header(&mut self, name: &str, value: &[u8]) {
        response::header(self.hdrs, name, value);
    }

    /// The body's length (None when the status has no body).
    pub fn end_head(&mut self, content_length: Option<u64>) {
        self.content_length = content_length;
    }

    /// Queue everything written to the body buffer since `from` as the next segment.
    pub fn push_mem(&mut self, from: usize) {
        let end = self.wbuf.len();
        if end > from {
            self.segs.push_back(Seg::Mem(from, end));
        }
    }

    /// Throw away the body queued so far, and the file (a response being replaced).
    pub fn discard_body(&mut self, keep_segs: usize) {
        if self.segs.len() <= keep_segs && self.file.is_none() && self.body_len == 0 {
            // Nothing queued yet (the first pass of every request).
            return;
        }
        let keep_to = self
            .segs
            .iter()
            .take(keep_segs)
            .filter_map(|s| match s {
                Seg::Mem(_, e) => Some(*e),
                _ => None,
            })
            .max()
            .unwrap_or(0);
        self.segs.truncate(keep_segs);
        self.wbuf.truncate(keep_to);
        *self.file = None;
        self.body_len = 0;
        self.mtime = None;
    }

    /// A complete error response with its small HTML body (none for HEAD).
    pub fn error(&mut self, status: u16) {
        self.error_with(status, None);
    }

    /// An error response with one extra header (Allow, Location, Content-Range).
    pub fn error_with(&mut self, status: u16, extra: Option<(&str, &[u8])>) {
        self.start(status);
        if let Some((name, value)) = extra {
            self.header(name, value);
        }
        if response::bodiless(status) {
            return;
        }
        self.header("Content-Type", b"text/html; charset=utf-8");
        let len = response::error_body_len(status);
        self.end_head(Some(len as u64));
        if !self.head_only {
            let from = self.wbuf.len();
            response::error_body(self.wbuf, status);
            self.body_len = len as u64;
            self.push_mem(from);
        }
    }
}

/// Produce the response for one request.
pub fn handle(req: &Request, reply: &mut Reply) {
    match req.head.method {
        Method::Options => {
            reply.start(200);
            reply.header("Allow", response::ALLOW.as_bytes());
            reply.end_head(Some(0));
        }
        Method::Get | Method::Head | Method::Post => static_file::serve(req, reply),
        _ => reply.error_with(405, Some(("Allow", response::ALLOW.as_bytes()))),
    }
}

/// The persistence of a response given the request's wishes and the server's.
pub fn persist(version: Version, keep_alive: bool) -> Persist {
    match (keep_alive, version) {
        (false, _) => Persist::Close,
        (true, Version::Http10) => Persist::KeepAlive10,
        (true, Version::Http11) => Persist::KeepAlive11,
    }
}
