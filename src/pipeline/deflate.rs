//! mod_deflate in the response path: whether a response is compressed, with which coding, and
//! the compressed body, whether it comes from a static file, the cache directory, a
//! precompressed sidecar file or a backend.
//!
//! lighttpd's rules decide (its mod_deflate_handle_response_start): not HEAD, not 1xx, 204,
//! 205 or 304, nothing already encoded, a length between deflate.min-compress-size and
//! deflate.max-compress-size, a coding the client accepts among deflate.allowed-encodings, and
//! a Content-Type deflate.mimetypes lists. Vary gets Accept-Encoding, and the ETag the coding
//! as a suffix ("abc" -> "abc-gzip"), which If-None-Match is checked against once more.
//!
//! lighttpd compresses only complete responses, at once. lightd compresses a body of up to
//! [`ONE_SHOT`] bytes at once, sent with a Content-Length; a larger one is compressed a slice
//! per turn of the loop ([`Stream`]) and sent chunked (HTTP/1.1) or to the close (HTTP/1.0),
//! so a 100 MB file costs neither memory nor a stalled loop. A backend's body is compressed as
//! it arrives.

use std::cell::Cell;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::Exchange;
use crate::config::deflate::Allowed;
use crate::config::ReqConf;
use crate::ctx::{Bufs, Ctx};
use crate::handlers::Seg;
use crate::http::request::{self, Head, Header, Method};
use crate::http::response;
use crate::modules::deflate::{self as codec, Coding, Encoder};

/// Bodies up to this size are compressed in one go and announced with a Content-Length, as
/// lighttpd announces all of its compressed responses.
pub const ONE_SHOT: u64 = 64 * 1024;

/// The most input one connection compresses in one turn of the loop (deflate.work-block-size
/// lowers it): about a millisecond at level 6, so other connections are not held up.
const SLICE: u64 = 64 * 1024;

/// Streaming compressions at once. Each holds a compressor's state (a few hundred KB); past
/// this many, responses go out uncompressed rather than let memory grow with the load.
pub const MAX_STREAMS: usize = 64;

/// What mod_deflate makes of a response.
pub enum Decision {
    /// Sent as it is (Vary may still have been added).
    Identity,
    /// The compressed entity matches If-None-Match: this status (304, or 412 for other
    /// methods) with no body.
    Status(u16),
    /// Compressed with this coding. `cache`: the cache file for the compressed entity, when
    /// the response may be cached (lighttpd's conditions).
    Compress {
        coding: Coding,
        cache: Option<PathBuf>,
    },
    /// A precompressed sidecar file ("file.br", "file.gz") is sent instead.
    Sidecar(File, u64),
}

/// The request's fields, as the pipeline read them.
pub struct Req<'a> {
    pub buf: &'a [u8],
    pub headers: &'a [Header],
    pub head: &'a Head,
}

impl Req<'_> {
    fn header(&self, name: &str) -> Option<&[u8]> {
        request::header(self.buf, self.headers, name)
    }
}

/// The body a decision is about: its length when known, and for a static file the file on
/// disk (for the cache directory and sidecar files).
pub struct Body<'a> {
    pub len: Option<u64>,
    pub file: Option<&'a Path>,
    pub mtime: Option<u64>,
}

/// Decide, and edit the head for it (Vary, ETag, Content-Encoding, Content-Length).
pub fn decide(
    ctx: &Ctx,
    conf: &ReqConf,
    req: &Req,
    status: u16,
    hdrs: &mut Vec<u8>,
    body: &Body,
) -> Decision {
    let d = &conf.deflate;
    if d.mimetypes.is_empty()
        || req.head.method == Method::Head
        || status < 200
        || matches!(status, 204 | 205 | 304)
        || response::find(hdrs, "Transfer-Encoding").is_some()
        || response::find(hdrs, "Content-Encoding").is_some()
    {
        return Decision::Identity;
    }
    if let Some(len) = body.len {
        if len <= d.min_compress_size
            || (d.max_compress_kb > 0 && len > d.max_compress_kb.saturating_mul(1024))
        {
            return Decision::Identity;
        }
    }
    let Some(accept) = req.header("Accept-Encoding") else {
        return Decision::Identity;
    };
    let chosen = codec::choose(accept, &d.allowed);
    let sidecars = match body.file {
        Some(_) => sidecar_codings(accept, conf),
        None => [None; 3],
    };
    if chosen.is_none() && sidecars[0].is_none() {
        return Decision::Identity;
    }
    if !codec::mime_matches(&d.mimetypes, response::find(hdrs, "Content-Type")) {
        return Decision::Identity;
    }
    // The response now depends on Accept-Encoding, whatever happens below.
    let had_vary = codec::add_vary(hdrs);

    // A fresh precompressed file beats compressing.
    let side = match body.file {
        Some(path) if sidecars[0].is_some() => find_sidecar(path, body.mtime, &sidecars),
        _ => None,
    };
    let label = match (&side, &chosen) {
        (Some((label, ..)), _) => *label,
        (None, Some(c)) => c.label,
        (None, None) => return Decision::Identity,
    };

    // The compressed entity's tag; checked as http_response_handle_cachable would.
    let etag = response::find(hdrs, "ETag").map(|t| suffixed(t, label));
    if let (Some(tag), Some(inm)) = (etag.as_deref(), req.header("If-None-Match")) {
        let ranged = req.header("Range").is_some();
        if status < 300 && etag_matches(inm, tag, !ranged) {
            if matches!(req.head.method, Method::Get | Method::Head) {
                response::set(hdrs, "ETag", tag);
                response::remove(hdrs, "Content-Length");
                return Decision::Status(304);
            }
            return Decision::Status(412);
        }
    }
    if d.max_loadavg > 0.0 && d.max_loadavg < ctx.loadavg() {
        return Decision::Identity;
    }
    if let Some(tag) = &etag {
        response::set(hdrs, "ETag", tag);
    }
    response::set(hdrs, "Content-Encoding", label.as_bytes());
    response::remove(hdrs, "Content-Length");
    if let Some((_, file, len)) = side {
        return Decision::Sidecar(file, len);
    }
    let Some(chosen) = chosen else {
        return Decision::Identity;
    };
    // lighttpd's conditions for keeping the compressed file: a whole static file with a
    // strong enough tag, no other Vary, and nothing asking caches not to keep it.
    let cacheable = !had_vary
        && etag.as_ref().is_some_and(|t| t.len() > 2)
        && response::find(hdrs, "Cache-Control").map_or(true, |cc| {
            !has_token(cc, "private") && !has_token(cc, "no-store")
        });
    let cache = match (&d.cache_dir, body.file, &etag, cacheable) {
        (Some(dir), Some(file), Some(tag), true) => Some(cache_name(dir, file, tag)),
        _ => None,
    };
    Decision::Compress {
        coding: chosen.coding,
        cache,
    }
}

/// Whether a body of this type and length would be compressed for a client that sent this
/// Accept-Encoding (the handler asks, to know whether Range applies).
pub fn would_compress(conf: &ReqConf, accept: &[u8], ctype: &str, len: u64) -> bool {
    let d = &conf.deflate;
    len > d.min_compress_size
        && (d.max_compress_kb == 0 || len <= d.max_compress_kb.saturating_mul(1024))
        && codec::choose(accept, &d.allowed).is_some()
        && codec::mime_matches(&d.mimetypes, Some(ctype.as_bytes()))
}

/// Whether a comma-separated field value lists `token` (parameters after '=' aside).
fn has_token(value: &[u8], token: &str) -> bool {
    value.split(|&c| c == b',').any(|t| {
        let t = t.split(|&c| c == b'=').next().unwrap_or_default();
        request::trim_ows(t).eq_ignore_ascii_case(token.as_bytes())
    })
}

/// "abc" or W/"abc" -> "abc-gzip" (W/ kept).
fn suffixed(tag: &[u8], label: &str) -> Vec<u8> {
    let mut t = tag.to_vec();
    if t.last() == Some(&b'"') && t.len() >= 2 {
        t.pop();
        t.push(b'-');
        t.extend_from_slice(label.as_bytes());
        t.push(b'"');
    }
    t
}

/// If-None-Match against a tag: "*", or any listed tag, weakly compared unless `weak` is false
/// (a ranged request), when a weak tag never matches.
fn etag_matches(list: &[u8], tag: &[u8], weak: bool) -> bool {
    let bare = |t: &'_ [u8]| -> Option<Vec<u8>> {
        match t.strip_prefix(b"W/") {
            Some(rest) if weak => Some(rest.to_vec()),
            Some(_) => None,
            None => Some(t.to_vec()),
        }
    };
    let Some(ours) = bare(tag) else {
        return false;
    };
    list.split(|b| *b == b',').any(|t| {
        let t = request::trim_ows(t);
        t == b"*" || (!t.is_empty() && bare(t).is_some_and(|t| t == ours))
    })
}

/// Where the cache directory keeps a file's compressed form: the file's own path under the
/// directory, then "-" and its tag without quotes ('/' in the tag made '~'), as lighttpd
/// names them, so a changed file (a new tag) gets a new name.
fn cache_name(dir: &Path, file: &Path, tag: &[u8]) -> PathBuf {
    let mut name = dir.as_os_str().as_bytes().to_vec();
    let f = file.as_os_str().as_bytes();
    if !f.starts_with(b"/") {
        name.push(b'/');
    }
    name.extend_from_slice(f);
    name.push(b'-');
    let inner = tag.strip_prefix(b"W/").unwrap_or(tag);
    let inner = inner
        .strip_prefix(b"\"")
        .and_then(|t| t.strip_suffix(b"\""))
        .unwrap_or(inner);
    name.extend(inner.iter().map(|&c| if c == b'/' { b'~' } else { c }));
    PathBuf::from(std::ffi::OsStr::from_bytes(&name))
}

/// The sidecar codings this request may get, best first: those the client accepts among the
/// allowed ones.
fn sidecar_codings(accept: &[u8], conf: &ReqConf) -> Sidecars {
    const ALL: [(&str, &str); 3] = [("zstd", ".zst"), ("br", ".br"), ("gzip", ".gz")];
    let d = &conf.deflate;
    let accepted = |name: &str| {
        accept.split(|&c| c == b',').any(|t| {
            let t = t.split(|&c| c == b';').next().unwrap_or_default();
            request::trim_ows(t).eq_ignore_ascii_case(name.as_bytes())
        })
    };
    // br and zstd only when deflate.allowed-encodings names them: lightd cannot produce
    // them, so nothing else says the operator wants them sent.
    let allowed = |name: &str| {
        d.sidecar.contains(&name) || (name == "gzip" && d.allowed.contains(&Allowed::Gzip))
    };
    let mut out: Sidecars = [None; 3];
    let mut n = 0;
    for (name, ext) in ALL {
        if accepted(name) && allowed(name) {
            out[n] = Some((name, ext));
            n += 1;
        }
    }
    out
}

/// Sidecar codings in order of preference: (Content-Encoding label, file name suffix).
type Sidecars = [Option<(&'static str, &'static str)>; 3];

/// The first fresh sidecar file: a regular file no older than the file itself.
fn find_sidecar(
    path: &Path,
    mtime: Option<u64>,
    list: &Sidecars,
) -> Option<(&'static str, File, u64)> {
    for (label, ext) in list.iter().flatten() {
        let mut name = path.as_os_str().to_os_string();
        name.push(ext);
        let found = File::open(&name).ok().and_then(|f| {
            let m = f.metadata().ok()?;
            let fresh = mtime.map_or(true, |t| m.mtime() >= 0 && m.mtime() as u64 >= t);
            // An empty file is no gzip or brotli stream: not a usable sidecar.
            (m.is_file() && fresh && m.len() > 0).then_some((f, m.len()))
        });
        if let Some((f, len)) = found {
            return Some((label, f, len));
        }
    }
    None
}

/// A place among the [`MAX_STREAMS`] compressors that may run at once, given back on drop.
pub struct Slot(Rc<Cell<usize>>);

impl Slot {
    /// A place, or None when every one is taken.
    pub fn take(ctx: &Ctx) -> Option<Slot> {
        let n = ctx.deflate_streams.get();
        if n >= MAX_STREAMS {
            return None;
        }
        ctx.deflate_streams.set(n + 1);
        Some(Slot(Rc::clone(&ctx.deflate_streams)))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

/// Apply mod_deflate to a static response (a handler's, or an error page) whose body is
/// queued after `first_seg`. Returns the Content-Length to announce.
#[allow(clippy::too_many_arguments)]
pub fn static_response(
    ctx: &Ctx,
    ex: &mut Exchange,
    b: &mut Bufs,
    rlen: usize,
    head: &Head,
    conf: &ReqConf,
    first_seg: usize,
    content_length: Option<u64>,
    mtime: Option<u64>,
) -> Option<u64> {
    // The body: all in the write buffer, or a whole file. Anything else (multipart ranges)
    // is not compressed.
    let only = (b.segs.len() == first_seg + 1)
        .then(|| b.segs.get(first_seg))
        .flatten();
    let body = match only {
        Some(Seg::Mem(s, e)) => Some((Some((*s, *e)), (e - s) as u64)),
        Some(Seg::File { offset: 0, len }) if ex.file.is_some() => Some((None, *len)),
        _ => None,
    };
    let Some((mem, len)) = body.filter(|&(_, len)| content_length == Some(len)) else {
        return content_length;
    };
    // A large body in memory (a long directory listing) would have to be compressed in one
    // go, holding up the loop: it goes out as it is.
    if mem.is_some() && len > ONE_SHOT {
        return content_length;
    }
    // A large body needs a compressor for many turns: without a free one, send it as it is.
    let slot = if len > ONE_SHOT {
        match Slot::take(ctx) {
            Some(s) => Some(s),
            None => return content_length,
        }
    } else {
        None
    };
    // The file on disk, for the cache and sidecars: only for a file served whole.
    let file = (ex.status == 200 && mtime.is_some() && !b.fs_path.as_os_str().is_empty())
        .then(|| b.fs_path.clone());
    let info = Body {
        len: Some(len),
        file: file.as_deref(),
        mtime,
    };
    let req = Req {
        buf: b.rbuf.get(..rlen).unwrap_or_default(),
        headers: b.headers.get(..head.header_count).unwrap_or_default(),
        head,
    };
    let decision = decide(ctx, conf, &req, ex.status, &mut b.hdrs, &info);
    let from = mem.map_or(b.wbuf.len(), |(s, _)| s);
    match decision {
        Decision::Identity => content_length,
        Decision::Status(status) => {
            clear_body(ex, b, first_seg, from);
            ex.status = status;
            (status != 304).then_some(0)
        }
        Decision::Sidecar(f, n) => {
            clear_body(ex, b, first_seg, from);
            if n > 0 {
                b.segs.push_back(Seg::File { offset: 0, len: n });
                ex.file = Some(f);
            }
            ex.body_len = n;
            Some(n)
        }
        Decision::Compress { coding, cache } => {
            // Compressed before: the cache directory has it.
            if let Some(hit) = cache.as_deref().and_then(cached) {
                let (f, n) = hit;
                clear_body(ex, b, first_seg, from);
                b.segs.push_back(Seg::File { offset: 0, len: n });
                ex.file = Some(f);
                ex.body_len = n;
                return Some(n);
            }
            let level = conf.deflate.level;
            if let Some(slot) = slot {
                let Some(src) = ex.file.take() else {
                    return content_length;
                };
                clear_body(ex, b, first_seg, from);
                let chunked = start_streaming(ex, b);
                let work = conf.deflate.work_block_kb.saturating_mul(1024);
                let slice = if work > 0 { work.min(SLICE) } else { SLICE };
                ex.deflate = Some(Box::new(Stream {
                    enc: Encoder::new(coding, level),
                    file: src,
                    offset: 0,
                    left: len,
                    chunked,
                    slice: slice as usize,
                    inbuf: Vec::new(),
                    out: Vec::new(),
                    cache: cache.and_then(CacheFile::create),
                    done: false,
                    _slot: slot,
                }));
                return None;
            }
            // Small enough to compress now, whole.
            let mut input = Vec::new();
            let data: &[u8] = match mem {
                Some((s, e)) => b.wbuf.get(s..e).unwrap_or_default(),
                None => {
                    input.resize(len as usize, 0);
                    let read = ex.file.as_ref().map(|f| f.read_exact_at(&mut input, 0));
                    if !matches!(read, Some(Ok(()))) {
                        // Gone or shorter than a moment ago: the response is wrong either
                        // way; an error beats a corrupt body.
                        log::warn!("deflate: cannot read {}", b.fs_path.display());
                        clear_body(ex, b, first_seg, from);
                        ex.status = 500;
                        response::remove(&mut b.hdrs, "Content-Encoding");
                        return Some(0);
                    }
                    &input
                }
            };
            let mut out = Vec::with_capacity(data.len() / 2 + 64);
            let mut enc = Encoder::new(coding, level);
            enc.write(data, &mut out);
            enc.finish(&mut out);
            if let Some(mut c) = cache.and_then(CacheFile::create) {
                c.write(&out);
                c.finish();
            }
            clear_body(ex, b, first_seg, from);
            let start = b.wbuf.len();
            b.wbuf.extend_from_slice(&out);
            b.segs.push_back(Seg::Mem(start, b.wbuf.len()));
            ex.body_len = out.len() as u64;
            Some(out.len() as u64)
        }
    }
}

/// Forget the body queued after `first_seg` (write buffer bytes from `from` on).
fn clear_body(ex: &mut Exchange, b: &mut Bufs, first_seg: usize, from: usize) {
    b.segs.truncate(first_seg);
    b.wbuf.truncate(from);
    ex.file = None;
    ex.body_len = 0;
}

/// The head of a body whose length is unknown until it ends: chunked for HTTP/1.1 (true),
/// else ended by the close.
fn start_streaming(ex: &mut Exchange, b: &mut Bufs) -> bool {
    let chunked = ex
        .head
        .is_some_and(|h| h.version == request::Version::Http11);
    if chunked {
        response::header(&mut b.hdrs, "Transfer-Encoding", b"chunked");
    } else {
        ex.persist = response::Persist::Close;
        ex.client_closes = false;
    }
    chunked
}

/// A cache file that exists: opened, with its length.
fn cached(path: &Path) -> Option<(File, u64)> {
    let f = File::open(path).ok()?;
    let m = f.metadata().ok()?;
    m.is_file().then_some((f, m.len()))
}

/// A large static file being compressed, a slice per turn.
pub struct Stream {
    enc: Encoder,
    file: File,
    offset: u64,
    left: u64,
    chunked: bool,
    slice: usize,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    /// The compressed file being written to the cache directory as it is sent.
    cache: Option<CacheFile>,
    done: bool,
    _slot: Slot,
}

/// Compress the next slice of a streamed body into the (empty) write queue. Ok(true) once the
/// body's end is queued; Err when the file cannot be read (the response cannot be finished).
pub fn produce(ex: &mut Exchange, b: &mut Bufs) -> io::Result<bool> {
    let Some(s) = ex.deflate.as_mut() else {
        return Ok(true);
    };
    if s.done {
        return Ok(true);
    }
    let n = s.left.min(s.slice as u64) as usize;
    s.inbuf.resize(n, 0);
    s.file.read_exact_at(&mut s.inbuf, s.offset)?;
    s.offset += n as u64;
    s.left -= n as u64;
    s.out.clear();
    s.enc.write(&s.inbuf, &mut s.out);
    if s.left == 0 {
        s.enc.finish(&mut s.out);
        s.done = true;
    }
    if let Some(c) = s.cache.as_mut() {
        c.write(&s.out);
    }
    if s.done {
        if let Some(c) = s.cache.take() {
            c.finish();
        }
        // Nothing more is read from the file, nor compressed.
        s.inbuf = Vec::new();
    }
    b.wbuf.clear();
    if s.chunked && !s.out.is_empty() {
        let _ = write!(b.wbuf, "{:x}\r\n", s.out.len());
        b.wbuf.extend_from_slice(&s.out);
        b.wbuf.extend_from_slice(b"\r\n");
    } else {
        b.wbuf.extend_from_slice(&s.out);
    }
    if s.chunked && s.done {
        b.wbuf.extend_from_slice(b"0\r\n\r\n");
    }
    ex.body_len += s.out.len() as u64;
    if !b.wbuf.is_empty() {
        b.segs.push_back(Seg::Mem(0, b.wbuf.len()));
    }
    Ok(s.done)
}

/// A compressed file on its way into the cache directory: written under a name of its own,
/// renamed into place when complete (so a reader never sees half of one), removed if not.
struct CacheFile {
    tmp: PathBuf,
    dest: PathBuf,
    file: Option<File>,
}

impl CacheFile {
    fn create(dest: PathBuf) -> Option<CacheFile> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static SEQ: AtomicU64 = AtomicU64::new(0);
        if let Some(dir) = dest.parent() {
            if let Err(e) = std::fs::create_dir_all(dir) {
                log::warn!("deflate.cache-dir: cannot create {}: {}", dir.display(), e);
                return None;
            }
        }
        let mut tmp = dest.clone().into_os_string();
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        tmp.push(format!(".{}.{}", std::process::id(), seq));
        let tmp = PathBuf::from(tmp);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp);
        match file {
            Ok(f) => Some(CacheFile {
                tmp,
                dest,
                file: Some(f),
            }),
            Err(e) => {
                log::warn!("deflate.cache-dir: cannot create {}: {}", tmp.display(), e);
                None
            }
        }
    }

    fn write(&mut self, data: &[u8]) {
        if let Some(f) = self.file.as_mut() {
            if let Err(e) = f.write_all(data) {
                log::warn!("deflate.cache-dir: writing {}: {}", self.tmp.display(), e);
                self.file = None;
            }
        }
    }

    fn finish(mut self) {
        if self.file.take().is_some() {
            if let Err(e) = std::fs::rename(&self.tmp, &self.dest) {
                log::warn!("deflate.cache-dir: {}: {}", self.dest.display(), e);
            }
        }
    }
}

impl Drop for CacheFile {
    fn drop(&mut self) {
        // Not renamed into place (incomplete, or failed): nothing of it may stay.
        let _ = std::fs::remove_file(&self.tmp);
    }
}

/// A backend's body being compressed as it arrives.
pub struct Zip {
    enc: Encoder,
    /// Flush what is compressed so far after each read (server.stream-response-body set), so
    /// a client sees a slow backend's output as it comes, at some cost in ratio.
    flush: bool,
    _slot: Slot,
}

impl Zip {
    /// Compress `input` onto `out`; `end`: it is the body's last.
    pub fn run(&mut self, input: &[u8], end: bool, out: &mut Vec<u8>) {
        self.enc.write(input, out);
        if end {
            self.enc.finish(out);
        } else if self.flush && !input.is_empty() {
            self.enc.flush(out);
        }
    }
}

/// mod_deflate for a backend's response, once its head is read: the compressor when the body
/// is to be compressed (the head edited for it), or the status when the compressed entity
/// matches the request's If-None-Match.
pub fn backend_response(
    ctx: &Ctx,
    conf: &ReqConf,
    req: &Req,
    status: u16,
    hdrs: &mut Vec<u8>,
    len: Option<u64>,
) -> Result<Option<Box<Zip>>, u16> {
    if conf.deflate.mimetypes.is_empty() {
        return Ok(None);
    }
    let Some(slot) = Slot::take(ctx) else {
        return Ok(None);
    };
    let body = Body {
        len,
        file: None,
        mtime: None,
    };
    match decide(ctx, conf, req, status, hdrs, &body) {
        Decision::Compress { coding, .. } => Ok(Some(Box::new(Zip {
            enc: Encoder::new(coding, conf.deflate.level),
            flush: ctx.cfg.stream_response_body != 0 && conf.deflate.output_buffer_size == 0,
            _slot: slot,
        }))),
        Decision::Status(s) => Err(s),
        Decision::Identity | Decision::Sidecar(..) => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tag_gets_the_coding_inside_its_quotes() {
        assert_eq!(suffixed(b"\"abc\"", "gzip"), b"\"abc-gzip\"");
        assert_eq!(suffixed(b"W/\"abc\"", "br"), b"W/\"abc-br\"");
        // Not a quoted tag: left alone rather than mangled.
        assert_eq!(suffixed(b"abc", "gzip"), b"abc");
    }

    #[test]
    fn if_none_match_against_the_compressed_tag() {
        let tag = b"\"abc-gzip\"";
        assert!(etag_matches(b"\"abc-gzip\"", tag, true));
        assert!(etag_matches(b"\"x\", \"abc-gzip\"", tag, true));
        assert!(etag_matches(b"*", tag, true));
        assert!(!etag_matches(b"\"abc\"", tag, true));
        assert!(etag_matches(b"W/\"abc-gzip\"", tag, true));
        // A ranged request compares strongly: a weak tag matches nothing.
        assert!(!etag_matches(b"W/\"abc-gzip\"", tag, false));
        assert!(!etag_matches(b"\"abc-gzip\"", b"W/\"abc-gzip\"", false));
        assert!(!etag_matches(b"", tag, true));
    }

    #[test]
    fn cache_names_follow_lighttpds_layout() {
        let n = cache_name(
            Path::new("/var/cache/lightd"),
            Path::new("/srv/www/a.html"),
            b"\"1-2/3\"",
        );
        assert_eq!(n, Path::new("/var/cache/lightd/srv/www/a.html-1-2~3"));
        let n = cache_name(Path::new("/c"), Path::new("rel.txt"), b"W/\"t\"");
        assert_eq!(n, Path::new("/c/rel.txt-t"));
    }

    #[test]
    fn cache_control_tokens() {
        assert!(has_token(b"no-cache, private", "private"));
        assert!(has_token(b"private=\"Set-Cookie\"", "private"));
        assert!(has_token(b"No-Store", "no-store"));
        assert!(!has_token(b"max-age=60, public", "private"));
        assert!(!has_token(b"privateer", "private"));
    }
}
