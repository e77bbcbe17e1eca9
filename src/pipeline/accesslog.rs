//! Request done with mod_accesslog: the values a format reads, taken from the exchange, the
//! request as received, the serialized response head and the connection, and the line
//! appended to the log file's buffer.
//!
//! Nothing is allocated for a request whose logged headers each arrived once and that
//! mod_setenv leaves alone; a repeated header or one mod_setenv changes is joined as
//! lighttpd joins it, into a small buffer of its own.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use crate::config::ReqConf;
use crate::ctx::{Bufs, Ctx};
use crate::http::request::{self, Head, Header, Version};
use crate::http::response::Persist;
use crate::modules::accesslog::{self, ConnStatus, Fields, SockAddr};

use super::{ConnInfo, Exchange};

/// Write the access log line for a finished request, if its settings name a log.
pub(super) fn log(ctx: &mut Ctx, ex: &Exchange, b: Option<&Bufs>, rlen: usize, conn: &ConnInfo) {
    let Some(conf) = ex.conf.as_deref() else {
        return;
    };
    let Some(name) = conf.accesslog.filename.as_deref() else {
        return;
    };
    let Some(log) = ctx.accesslog(name) else {
        return;
    };
    let (buf, headers, resp_head, fs_path): (&[u8], &[Header], &[u8], &[u8]) = match b {
        Some(b) => (
            b.rbuf.get(..rlen).unwrap_or_default(),
            &b.headers,
            &b.hbuf,
            b.fs_path.as_os_str().as_encoded_bytes_compat(),
        ),
        None => (&[], &[], &[], &[]),
    };
    let head = ex.head.as_ref();
    let headers = head.map_or(&[][..], |h| {
        headers.get(..h.header_count).unwrap_or_default()
    });
    // The end is now; the start is as long before it as the monotonic clock says.
    let wall = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let took = Instant::now().saturating_duration_since(ex.start);
    let begin = wall.saturating_sub(took);
    let mut line = Line {
        ex,
        conf,
        head,
        buf,
        headers,
        resp_head,
        fs_path,
        conn,
        rlen,
        start: (secs(begin.as_secs()), begin.subsec_nanos()),
        end: (secs(wall.as_secs()), wall.subsec_nanos()),
        joined: Vec::new(),
        env: Vec::new(),
    };
    line.prepare();
    accesslog::render(
        &conf.accesslog.format,
        conf.accesslog.escaping,
        &line,
        log.buf(),
    );
    log.line_done();
}

fn secs(s: u64) -> i64 {
    i64::try_from(s).unwrap_or(i64::MAX)
}

/// `OsStr::as_encoded_bytes` is newer than the minimum Rust version; on Unix the bytes of a
/// path are its `OsStrExt` bytes.
trait EncodedBytes {
    fn as_encoded_bytes_compat(&self) -> &[u8];
}

impl EncodedBytes for std::ffi::OsStr {
    fn as_encoded_bytes_compat(&self) -> &[u8] {
        std::os::unix::ffi::OsStrExt::as_bytes(self)
    }
}

/// One finished request, as mod_accesslog's directives read it.
struct Line<'a> {
    ex: &'a Exchange,
    conf: &'a ReqConf,
    head: Option<&'a Head>,
    buf: &'a [u8],
    headers: &'a [Header],
    /// The serialized response head, status line first.
    resp_head: &'a [u8],
    fs_path: &'a [u8],
    conn: &'a ConnInfo<'a>,
    rlen: usize,
    start: (i64, u32),
    end: (i64, u32),
    /// Request headers whose logged value is not a single field as received (repeated, or
    /// changed by mod_setenv): the value as lighttpd would hold it, empty when absent.
    joined: Vec<(&'a str, Vec<u8>)>,
    /// The request environment mod_setenv built (setenv.add-environment, set-environment).
    env: Vec<(&'a str, Vec<u8>)>,
}

/// lighttpd's `http_header_token_append`: a separator only between non-empty parts.
fn append(v: &mut Vec<u8>, part: &[u8], sep: &[u8]) {
    if !v.is_empty() {
        v.extend_from_slice(sep);
    }
    v.extend_from_slice(part);
}

impl<'a> Line<'a> {
    /// Work out the values that are not single fields of the request as received.
    fn prepare(&mut self) {
        let format = &self.conf.accesslog.format;
        // Bounded by the format's fields (at most 127).
        for name in format.request_headers() {
            if self
                .joined
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name))
            {
                continue;
            }
            let buf = self.buf;
            let matching = || {
                self.headers
                    .iter()
                    .filter(|h| h.name.get(buf).eq_ignore_ascii_case(name.as_bytes()))
            };
            let setenv_touches = self
                .setenv_request_headers()
                .any(|(k, _, _)| k.eq_ignore_ascii_case(name));
            if matching().count() <= 1 && !setenv_touches {
                continue;
            }
            // lighttpd joins repeated fields with ", ", and Cookie with "; "; an empty field
            // is not stored at all.
            let sep: &[u8] = if name.eq_ignore_ascii_case("Cookie") {
                b"; "
            } else {
                b", "
            };
            let mut v = Vec::new();
            for h in matching() {
                let part = h.value.get(buf);
                if !part.is_empty() {
                    append(&mut v, part, sep);
                }
            }
            for (k, val, set) in self.setenv_request_headers() {
                if !k.eq_ignore_ascii_case(name) {
                    continue;
                }
                if set {
                    // set-request-header replaces; an empty value removes the header.
                    v.clear();
                    v.extend_from_slice(val.as_bytes());
                } else if !val.is_empty() {
                    append(&mut v, val.as_bytes(), sep);
                }
            }
            self.joined.push((name, v));
        }
        #[cfg(feature = "setenv")]
        {
            let se = &self.conf.setenv;
            for (k, v) in &se.add_environment {
                match self.env.iter_mut().find(|(n, _)| n == k) {
                    Some((_, cur)) => append(cur, v.as_bytes(), b", "),
                    None => self.env.push((k, v.as_bytes().to_vec())),
                }
            }
            for (k, v) in &se.set_environment {
                match self.env.iter_mut().find(|(n, _)| n == k) {
                    Some((_, cur)) => {
                        cur.clear();
                        cur.extend_from_slice(v.as_bytes());
                    }
                    None => self.env.push((k, v.as_bytes().to_vec())),
                }
            }
        }
    }

    /// mod_setenv's request header edits in the order lighttpd applies them: the adds, then
    /// the sets (`true`).
    fn setenv_request_headers(&self) -> impl Iterator<Item = (&'a str, &'a str, bool)> {
        #[cfg(feature = "setenv")]
        let (add, set) = (
            &self.conf.setenv.add_request_header[..],
            &self.conf.setenv.set_request_header[..],
        );
        #[cfg(not(feature = "setenv"))]
        let (add, set): (&[(String, String)], &[(String, String)]) = (&[], &[]);
        add.iter()
            .map(|(k, v)| (k.as_str(), v.as_str(), false))
            .chain(set.iter().map(|(k, v)| (k.as_str(), v.as_str(), true)))
    }
}

impl Fields for Line<'_> {
    fn remote(&self) -> SockAddr<'_> {
        // The client a trusted proxy named (mod_extforward) takes the peer's place.
        #[cfg(feature = "extforward")]
        if let Some(ip) = self.ex.client {
            return SockAddr::Ip(std::net::SocketAddr::new(ip, self.conn.peer.port()));
        }
        SockAddr::Ip(self.conn.peer)
    }

    fn local(&self) -> SockAddr<'_> {
        SockAddr::Ip(self.conn.local)
    }

    fn method(&self) -> &[u8] {
        self.head.map_or(&[], |h| h.method.as_str().as_bytes())
    }

    fn protocol(&self) -> &[u8] {
        match self.head.map(|h| h.version) {
            Some(Version::Http10) => b"HTTP/1.0",
            Some(Version::Http11) => b"HTTP/1.1",
            None => b"",
        }
    }

    fn request_target(&self) -> &[u8] {
        self.head.map_or(&[], |h| h.target.get(self.buf))
    }

    fn target(&self) -> &[u8] {
        match &self.ex.target {
            Some(t) => t.as_bytes(),
            None => self.request_target(),
        }
    }

    fn authority(&self) -> &[u8] {
        self.head
            .and_then(|h| h.host)
            .map_or(&[], |h| h.get(self.buf))
    }

    fn server_name(&self) -> &[u8] {
        // server.name is not implemented: lighttpd then uses the request's authority.
        self.authority()
    }

    fn physical_path(&self) -> &[u8] {
        self.fs_path
    }

    fn status(&self) -> u16 {
        self.ex.status
    }

    fn bytes_in(&self) -> u64 {
        let head = self.head.map_or(self.rlen, |h| h.len);
        (head as u64).saturating_add(self.ex.body_seen)
    }

    fn bytes_out(&self) -> u64 {
        self.response_header_len().saturating_add(self.ex.body_len)
    }

    fn response_header_len(&self) -> u64 {
        self.resp_head.len() as u64
    }

    fn request_header(&self, name: &str) -> Option<&[u8]> {
        if let Some((_, v)) = self
            .joined
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
        {
            return Some(v);
        }
        request::header(self.buf, self.headers, name)
    }

    fn response_header(&self, name: &str) -> Option<&[u8]> {
        // One pass over the head's lines, after the status line; bounded by its length.
        for line in self.resp_head.split(|&c| c == b'\n').skip(1) {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            if line.is_empty() {
                break;
            }
            let Some(colon) = line.iter().position(|&c| c == b':') else {
                continue;
            };
            let (n, v) = line.split_at(colon);
            if n.eq_ignore_ascii_case(name.as_bytes()) {
                let v = v.get(1..).unwrap_or_default();
                let start = v.iter().position(|&c| c != b' ' && c != b'\t');
                return Some(start.and_then(|s| v.get(s..)).unwrap_or_default());
            }
        }
        None
    }

    fn env(&self, name: &str) -> Option<&[u8]> {
        // The user mod_auth authenticated (%u reads REMOTE_USER).
        #[cfg(feature = "auth")]
        if name == "REMOTE_USER" {
            if let Some(u) = &self.ex.remote_user {
                return Some(u.as_bytes());
            }
        }
        self.env
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| &v[..])
    }

    fn start_time(&self) -> (i64, u32) {
        self.start
    }

    fn end_time(&self) -> (i64, u32) {
        self.end
    }

    fn request_count(&self) -> u64 {
        u64::from(self.conn.requests)
    }

    fn conn_status(&self) -> ConnStatus {
        // Only complete responses are logged.
        match self.ex.persist {
            Persist::Close => ConnStatus::Close,
            Persist::KeepAlive10 | Persist::KeepAlive11 => ConnStatus::KeepAlive,
        }
    }
}
