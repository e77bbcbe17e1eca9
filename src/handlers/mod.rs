//! Request handlers: given a parsed request and its settings, describe the response.
//!
//! A handler writes the response head (and small bodies) into the connection's write buffer and
//! queues file ranges to be sent with sendfile. Handlers that wait on other descriptors (CGI
//! pipes, proxy sockets) will return a pending state and be resumed by the connection when
//! their descriptor becomes ready; static files never wait.

pub mod cache;
pub mod dirlist;
pub mod static_file;

use std::collections::VecDeque;
use std::fs::File;
use std::path::PathBuf;

use crate::config::ReqConf;
use crate::http::request::{Head, Header, Method, Version};
use crate::http::response;

/// One piece of response output, sent in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seg {
    /// Bytes `start..end` of the write buffer.
    Mem(usize, usize),
    /// `len` bytes of the response file starting at `offset`, sent with sendfile.
    File { offset: u64, len: u64 },
}

/// What the handler reads: the request as parsed, with its normalised path and settings.
pub struct Request<'a> {
    /// The read buffer the head's spans point into.
    pub buf: &'a [u8],
    pub head: &'a Head,
    pub headers: &'a [Header],
    /// The decoded, normalised path ("/dir/file").
    pub path: &'a str,
    pub conf: &'a ReqConf,
}

impl Request<'_> {
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        crate::http::request::header(self.buf, self.headers, name)
    }
}

/// How the connection ends after this response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Persist {
    Close,
    /// HTTP/1.0 keep-alive must be announced.
    KeepAlive10,
    /// HTTP/1.1 persists by default: nothing to announce.
    KeepAlive11,
}

/// Where the handler writes the response, plus the scratch space it may reuse.
pub struct Reply<'a> {
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
    pub date: &'a [u8; 29],
    pub persist: Persist,
    /// HEAD: headers as for GET, no body.
    pub head_only: bool,
    /// Filled in for the access log.
    pub status: u16,
    /// Body bytes queued (for the access log).
    pub body_len: u64,
}

impl Reply<'_> {
    /// Status line and the headers every response carries.
    pub fn start(&mut self, status: u16, server_tag: &str) {
        self.status = status;
        response::status_line(self.wbuf, status);
        response::header(self.wbuf, "Date", self.date);
        if !server_tag.is_empty() {
            response::header(self.wbuf, "Server", server_tag.as_bytes());
        }
    }

    /// Content-Length (unless the status has no body), Connection, and the blank line.
    pub fn end_head(&mut self, content_length: Option<u64>) {
        if let Some(len) = content_length {
            response::header_u64(self.wbuf, "Content-Length", len);
        }
        match self.persist {
            Persist::Close => response::header(self.wbuf, "Connection", b"close"),
            Persist::KeepAlive10 => response::header(self.wbuf, "Connection", b"keep-alive"),
            Persist::KeepAlive11 => {}
        }
        self.wbuf.extend_from_slice(b"\r\n");
    }

    /// Queue everything written to the buffer so far (from `from`) as the next segment.
    pub fn push_mem(&mut self, from: usize) {
        let end = self.wbuf.len();
        if end > from {
            self.segs.push_back(Seg::Mem(from, end));
        }
    }

    /// A complete error response with its small HTML body (none for HEAD).
    pub fn error(&mut self, status: u16, server_tag: &str) {
        self.error_with(status, server_tag, None);
    }

    /// An error response with one extra header (Allow, Location, Content-Range).
    pub fn error_with(&mut self, status: u16, server_tag: &str, extra: Option<(&str, &[u8])>) {
        let from = self.wbuf.len();
        self.start(status, server_tag);
        if let Some((name, value)) = extra {
            response::header(self.wbuf, name, value);
        }
        if response::bodiless(status) {
            self.end_head(None);
        } else {
            response::header(self.wbuf, "Content-Type", b"text/html; charset=utf-8");
            let len = response::error_body_len(status);
            self.end_head(Some(len as u64));
            if !self.head_only {
                response::error_body(self.wbuf, status);
                self.body_len = len as u64;
            }
        }
        self.push_mem(from);
    }
}

/// Produce the response for one request.
pub fn handle(req: &Request, reply: &mut Reply) {
    let tag = req.conf.server_tag.as_str();
    match req.head.method {
        Method::Options => {
            let from = reply.wbuf.len();
            reply.start(200, tag);
            response::header(reply.wbuf, "Allow", response::ALLOW.as_bytes());
            reply.end_head(Some(0));
            reply.push_mem(from);
        }
        Method::Get | Method::Head | Method::Post => static_file::serve(req, reply),
        _ => reply.error_with(405, tag, Some(("Allow", response::ALLOW.as_bytes()))),
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
