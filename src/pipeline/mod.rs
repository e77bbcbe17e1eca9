//! The request pipeline: what happens between a parsed head and a response ready to send, in
//! lighttpd's phases and lighttpd's order.
//!
//! 1. uri_raw: modules that look at the request as sent;
//! 2. conditions and settings: which `$HTTP[...]` blocks apply, and the merged settings
//!    (evaluated again after an internal restart);
//! 3. uri_clean: modules that decide on the normalised path;
//! 4. docroot: which document root serves the request;
//! 5. physical: where the path lives on disk, and the checks on it;
//! 6. handler selection, and 7. the handler, which describes the response;
//! 8. response start: modules that edit the response head; then the head is serialized once;
//! 9. request done ([`done`]): the access log.
//!
//! Modules are compiled in (cargo features) and switched on by `server.modules`; each phase
//! calls the enabled ones in a fixed order. Nothing is boxed per request: a request that no
//! module touches costs a few branches.

mod exchange;

pub use exchange::{BodyState, Exchange};

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;

use crate::config::{CondField, CondInput};
use crate::ctx::{Bufs, Ctx};
use crate::handlers::{self, Reply, Request, Seg};
use crate::http::request::{self, Head, Header, Method, Version};
use crate::http::{path, response};
use crate::log::Piece;

/// What the pipeline knows about the connection a request came on.
pub struct ConnInfo<'a> {
    pub peer: SocketAddr,
    /// The peer's address as text, for `$HTTP["remote-ip"]`.
    pub peer_ip: &'a str,
    /// The address of the listener it arrived on.
    pub local: SocketAddr,
}

/// Build the response for the exchange's request (its body, if any, fully read). The head is
/// queued at `b.segs[from_seg]`, after anything already queued (an interim response's rest).
pub fn respond(ctx: &mut Ctx, ex: &mut Exchange, b: &mut Bufs, rlen: usize, conn: &ConnInfo) {
    let Some(head) = ex.head else {
        return respond_error(ctx, ex, b, 400);
    };
    let first_seg = b.segs.len();
    let buf = &b.rbuf[..rlen];

    // Normalise the path first: conditions on $HTTP["url"] see the normalised path.
    let raw_path = head.path.get(buf);
    let path_result = if head.method == Method::Options && raw_path == b"*" {
        b.path.clear();
        b.path.push('*');
        Ok(())
    } else {
        path::normalize(raw_path, &mut b.path)
    };

    let conf = if ctx.cfg.conds.is_empty() {
        Rc::clone(&ctx.base)
    } else {
        let view = View {
            buf,
            head: &head,
            headers: &b.headers[..head.header_count],
            path: &b.path,
            ip: conn.peer_ip,
            peer: conn.peer.ip(),
            local: conn.local,
        };
        let set = ctx.cfg.matches(&view);
        ctx.conf_for(&set)
    };

    let mut reply = Reply {
        hdrs: &mut b.hdrs,
        wbuf: &mut b.wbuf,
        segs: &mut b.segs,
        file: &mut ex.file,
        fs_path: &mut b.fs_path,
        ranges: &mut b.ranges,
        scratch: &mut b.scratch,
        cache: &mut ctx.cache,
        now: ctx.now_secs,
        head_only: ex.head_only,
        status: 0,
        content_length: None,
        body_len: 0,
        mtime: None,
    };
    reply.hdrs.clear();
    match path_result {
        Err(e) => {
            ex.persist = response::Persist::Close;
            reply.error(e.status);
        }
        Ok(()) => {
            let req = Request {
                buf,
                head: &head,
                headers: &b.headers[..head.header_count],
                path: &b.path,
                query: head.query.map(|q| q.get(buf)),
                root: conf.document_root.as_deref(),
                rel: &b.path,
                conf: &conf,
            };
            handlers::handle(&req, &mut reply);
        }
    }
    ex.status = reply.status;
    ex.body_len = reply.body_len;
    let content_length = reply.content_length;
    write_head(ctx, ex, b, first_seg, &conf.server_tag, content_length);
    ex.conf = Some(conf);
}

/// Answer with an error page and no module involvement: the request could not be parsed or
/// framed, or was refused before it was read. The connection closes after it.
pub fn respond_error(ctx: &mut Ctx, ex: &mut Exchange, b: &mut Bufs, status: u16) {
    let first_seg = b.segs.len();
    let conf = Rc::clone(&ctx.base);
    let mut reply = Reply {
        hdrs: &mut b.hdrs,
        wbuf: &mut b.wbuf,
        segs: &mut b.segs,
        file: &mut ex.file,
        fs_path: &mut b.fs_path,
        ranges: &mut b.ranges,
        scratch: &mut b.scratch,
        cache: &mut ctx.cache,
        now: ctx.now_secs,
        head_only: ex.head_only,
        status: 0,
        content_length: None,
        body_len: 0,
        mtime: None,
    };
    reply.error(status);
    ex.status = reply.status;
    ex.body_len = reply.body_len;
    let content_length = reply.content_length;
    write_head(ctx, ex, b, first_seg, &conf.server_tag, content_length);
    ex.conf = Some(conf);
}

/// Serialize the head once the response is settled, and queue it before the body.
fn write_head(
    ctx: &Ctx,
    ex: &Exchange,
    b: &mut Bufs,
    at: usize,
    tag: &str,
    content_length: Option<u64>,
) {
    b.hbuf.clear();
    response::write_head(
        &mut b.hbuf,
        ex.status,
        &ctx.date,
        tag,
        &b.hdrs,
        content_length,
        ex.persist,
    );
    let seg = Seg::Head(0, b.hbuf.len());
    if at >= b.segs.len() {
        b.segs.push_back(seg);
    } else {
        b.segs.insert(at, seg);
    }
}

/// Request done: the access log line.
pub fn done(ctx: &mut Ctx, ex: &Exchange, b: Option<&Bufs>, rlen: usize, conn: &ConnInfo) {
    let Some(conf) = ex.conf.as_ref() else {
        return;
    };
    let Some(name) = conf.accesslog_filename.as_deref() else {
        return;
    };
    let elapsed = ctx.now.saturating_duration_since(ex.start);
    let local_port = conn.local.port();
    let Some(log) = ctx.accesslog(name, &conf.accesslog_format) else {
        return;
    };
    let empty: [u8; 0] = [];
    let (buf, headers): (&[u8], &[Header]) = match b {
        Some(b) => (&b.rbuf[..rlen], &b.headers),
        None => (&empty, &[]),
    };
    let head = ex.head.as_ref();
    let headers = head.map_or(&[][..], |h| &headers[..h.header_count.min(headers.len())]);
    let pieces = std::mem::take(&mut log.pieces);
    let out = log.buf();
    for p in &pieces {
        match p {
            Piece::Lit(s) => out.extend_from_slice(s.as_bytes()),
            Piece::RemoteHost => {
                let _ = write!(out, "{}", conn.peer.ip());
            }
            Piece::Dash => out.push(b'-'),
            Piece::Time => {
                crate::log::clf_time(crate::log::now_secs(), out);
            }
            Piece::RequestLine => match head {
                Some(h) => {
                    out.extend_from_slice(h.method.as_str().as_bytes());
                    out.push(b' ');
                    escape_into(out, h.target.get(buf));
                    out.extend_from_slice(match h.version {
                        Version::Http10 => b" HTTP/1.0",
                        Version::Http11 => b" HTTP/1.1",
                    });
                }
                None => out.push(b'-'),
            },
            Piece::Status => {
                let _ = write!(out, "{}", ex.status);
            }
            Piece::BytesClf if ex.body_len == 0 => out.push(b'-'),
            Piece::BytesClf | Piece::BytesOut => {
                let _ = write!(out, "{}", ex.body_len);
            }
            Piece::Header(name) => match request::header(buf, headers, name) {
                Some(v) if head.is_some() => escape_into(out, v),
                _ => out.push(b'-'),
            },
            Piece::Host => match head.and_then(|h| h.host) {
                Some(s) => escape_into(out, s.get(buf)),
                None => out.push(b'-'),
            },
            Piece::Path => match head {
                Some(h) => escape_into(out, h.path.get(buf)),
                None => out.push(b'-'),
            },
            Piece::Query => {
                if let Some(q) = head.and_then(|h| h.query) {
                    out.push(b'?');
                    escape_into(out, q.get(buf));
                }
            }
            Piece::Method => match head {
                Some(h) => out.extend_from_slice(h.method.as_str().as_bytes()),
                None => out.push(b'-'),
            },
            Piece::Protocol => out.extend_from_slice(match head.map(|h| h.version) {
                Some(Version::Http10) => b"HTTP/1.0",
                _ => b"HTTP/1.1",
            }),
            Piece::DurationSecs => {
                let _ = write!(out, "{}", elapsed.as_secs());
            }
            Piece::DurationMicros => {
                let _ = write!(out, "{}", elapsed.as_micros());
            }
            Piece::LocalPort => {
                let _ = write!(out, "{}", local_port);
            }
        }
    }
    out.push(b'\n');
    log.pieces = pieces;
    log.line_done();
}

/// Copy client bytes into a log line with quotes, backslashes and non-printables escaped, so
/// a client cannot forge log lines.
fn escape_into(out: &mut Vec<u8>, v: &[u8]) {
    for &c in v {
        match c {
            b'"' | b'\\' => {
                out.push(b'\\');
                out.push(c);
            }
            0x20..=0x7e => out.push(c),
            _ => {
                let _ = write!(out, "\\x{:02x}", c);
            }
        }
    }
}

/// The request as conditions see it.
struct View<'a> {
    buf: &'a [u8],
    head: &'a Head,
    headers: &'a [Header],
    path: &'a str,
    ip: &'a str,
    peer: IpAddr,
    local: SocketAddr,
}

impl CondInput for View<'_> {
    fn field(&self, field: &CondField) -> Option<&str> {
        let hdr = |name: &str| request::header(self.buf, self.headers, name);
        let bytes: Option<&[u8]> = match field {
            CondField::Host => self.head.host.map(|s| s.get(self.buf)),
            CondField::Url => Some(self.path.as_bytes()),
            CondField::RemoteIp => Some(self.ip.as_bytes()),
            CondField::QueryString => self.head.query.map(|s| s.get(self.buf)),
            CondField::RequestMethod => Some(self.head.method.as_str().as_bytes()),
            CondField::Scheme => Some(b"http"),
            CondField::UserAgent => hdr("User-Agent"),
            CondField::Referer => hdr("Referer"),
            CondField::Cookie => hdr("Cookie"),
            CondField::RequestHeader(name) => hdr(name),
            CondField::ServerSocket => None,
        };
        bytes.and_then(|b| std::str::from_utf8(b).ok())
    }

    fn remote_ip(&self) -> IpAddr {
        self.peer
    }

    fn server_socket(&self) -> SocketAddr {
        self.local
    }
}
