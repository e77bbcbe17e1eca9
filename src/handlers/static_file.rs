//! Static files: path to file, validators (ETag, Last-Modified), conditional requests, ranges,
//! directory redirects, index files, and the choice between an in-buffer body and sendfile.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::Path;
use std::rc::Rc;

use super::cache::{FileInfo, Hit};
use super::{Reply, Request, Seg};
use crate::config::mime_lookup;
use crate::http::request::Method;
use crate::http::{date, range, response, util};

/// Bodies up to this size are read into the write buffer and go out with the headers in one
/// write; larger ones are sent with sendfile.
const SMALL_BODY: u64 = 16 * 1024;

/// The multipart boundary: lighttpd's, so a multipart/byteranges body is the same bytes from
/// either server. Fixed is fine: it only has to be absent from the part headers we write, and
/// parts are delimited by the lengths we announce.
const BOUNDARY: &str = "fkj49sn38dcn3";

/// The Content-Type of a multipart/byteranges response, with [`BOUNDARY`].
const MULTIPART_TYPE: &str = "multipart/byteranges; boundary=fkj49sn38dcn3";

/// What ends a multipart/byteranges body: the close delimiter and a final CRLF.
const MULTIPART_END: &str = "\r\n--fkj49sn38dcn3--\r\n";

pub fn serve(req: &Request, reply: &mut Reply) {
    let Some(root) = req.root else {
        log::debug!("no server.document-root for this request");
        return reply.error(500);
    };

    reply.fs_path.clear();
    reply.fs_path.push(root);
    // The path is normalised and starts with '/'; push it as text so PathBuf::push does not
    // treat it as absolute and replace the root.
    reply
        .fs_path
        .as_mut_os_string()
        .push(std::ffi::OsStr::from_bytes(req.rel.as_bytes()));

    if !req.conf.follow_symlink {
        if let Err(status) = check_no_symlinks(root, req.rel) {
            return reply.error(status);
        }
    }
    // Matched against the file's path, as lighttpd's mod_staticfile does: what the suffix
    // guards is the file served, whatever URL (alias, userdir, lower-cased) led to it.
    if excluded(req, reply.fs_path.as_os_str().as_bytes()) {
        return reply.error(403);
    }
    if let Some((info, src)) = cached(req, reply) {
        return serve_file(req, reply, src, &info, req.path);
    }

    let file = match open_nonblocking(reply.fs_path) {
        Ok(f) => f,
        // "/file.html/more": a file with path info after it.
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) && req.conf.static_pathinfo => {
            return serve_with_pathinfo(req, reply, root);
        }
        Err(e) => return reply.error(io_status(&e)),
    };
    let meta = match file.metadata() {
        Ok(m) => m,
        Err(e) => return reply.error(io_status(&e)),
    };

    if meta.is_dir() {
        drop(file);
        return serve_dir(req, reply);
    }
    if !meta.is_file() {
        return reply.error(403);
    }
    let (src, info) = load(req, reply, file, &meta);
    serve_file(req, reply, src, &info, req.path);
}

/// A path that runs on past a regular file ("/file.html/more"): lighttpd serves the file and
/// calls the rest path info, unless `static-file.disable-pathinfo` is set. The file found is
/// checked like any other (excluded extensions, the index of denied names is not involved).
fn serve_with_pathinfo(req: &Request, reply: &mut Reply, root: &Path) {
    // Each '/' from the end marks a shorter candidate; the path is bounded, so is the walk.
    let mut end = req.rel.len();
    while let Some(slash) = req.rel[..end].rfind('/') {
        end = slash;
        if end == 0 {
            break;
        }
        let candidate = &req.rel[..end];
        reply.fs_path.clear();
        reply.fs_path.push(root);
        reply
            .fs_path
            .as_mut_os_string()
            .push(std::ffi::OsStr::from_bytes(candidate.as_bytes()));
        let Ok(meta) = std::fs::metadata(&*reply.fs_path) else {
            continue;
        };
        if !meta.is_file() {
            break;
        }
        // mod_access judged the whole path; the file itself must pass too (stricter than
        // lighttpd, which would serve "/x.php/more" where only ".php" is denied).
        let info_len = req.rel.len() - end;
        let url_file = req
            .path
            .get(..req.path.len().saturating_sub(info_len))
            .unwrap_or(req.path);
        if excluded(req, candidate.as_bytes()) || access_denied(req, url_file) {
            return reply.error(403);
        }
        let file = match open_nonblocking(reply.fs_path) {
            Ok(f) => f,
            Err(e) => return reply.error(io_status(&e)),
        };
        let meta = match file.metadata() {
            Ok(m) if m.is_file() => m,
            Ok(_) => return reply.error(403),
            Err(e) => return reply.error(io_status(&e)),
        };
        // Not cached: the cache is keyed by the file's own path.
        let info = FileInfo::new(&meta);
        let name = candidate.rsplit('/').next().unwrap_or(candidate);
        return serve_file(req, reply, Source::File(file), &info, name);
    }
    reply.error(404)
}

/// Where a response body comes from.
enum Source {
    /// An open file, sent with sendfile (or read into the buffer when small).
    File(File),
    /// Cached content.
    Mem(Rc<[u8]>),
}

/// The file at `reply.fs_path` from the cache. The cache is bypassed when symlinks must not be
/// followed, since that is checked per request.
fn cached(req: &Request, reply: &mut Reply) -> Option<(FileInfo, Source)> {
    if !req.conf.follow_symlink {
        return None;
    }
    let (info, hit) = reply.cache.get(reply.fs_path, reply.now)?;
    let src = match hit {
        Hit::Mem(body) => Source::Mem(body),
        Hit::File(file) => Source::File(file),
    };
    Some((info, src))
}

/// Describe an opened regular file, caching it (its content when small, else the open file).
fn load(
    req: &Request,
    reply: &mut Reply,
    file: File,
    meta: &std::fs::Metadata,
) -> (Source, FileInfo) {
    let info = FileInfo::new(meta);
    if req.conf.follow_symlink {
        if let Some(body) = reply
            .cache
            .insert(reply.fs_path, &file, meta, &info, reply.now)
        {
            return (Source::Mem(body), info);
        }
    }
    (Source::File(file), info)
}

/// Whether `name` (a path or file name) ends in one of static-file.exclude-extensions.
fn excluded(req: &Request, name: &[u8]) -> bool {
    req.conf
        .exclude_extensions
        .iter()
        .any(|ext| !ext.is_empty() && name.ends_with(ext.as_bytes()))
}

fn serve_dir(req: &Request, reply: &mut Reply) {
    if !req.path.ends_with('/') {
        // Redirect to "dir/", built from the normalised path with each segment encoded again:
        // the raw path could start with "//host", which a browser would take for another site,
        // and raw non-ASCII bytes in it come out percent-encoded (RFC 9112 §3.2).
        reply.scratch.clear();
        for seg in req.path.split('/').filter(|s| !s.is_empty()) {
            reply.scratch.push('/');
            util::url_encode_segment(seg, reply.scratch);
        }
        reply.scratch.push('/');
        if let Some(q) = req.query {
            reply.scratch.push('?');
            util::encode_query(q, reply.scratch);
        }
        let location = std::mem::take(reply.scratch);
        // No body, as lighttpd: the Location is the whole answer.
        reply.start(301);
        reply.header("Location", location.as_bytes());
        reply.end_head(Some(0));
        *reply.scratch = location;
        return;
    }

    let dir_len = reply.fs_path.as_os_str().len();
    for name in &req.conf.index_files {
        if name.contains('/') || excluded(req, name.as_bytes()) {
            // lighttpd allows "/index.php"-style names that point elsewhere; lightd only
            // looks inside the directory itself.
            continue;
        }
        reply
            .fs_path
            .as_mut_os_string()
            .push(std::ffi::OsStr::new(name));
        if let Some((info, src)) = cached(req, reply) {
            truncate_path(reply, dir_len);
            if index_denied(req, name) {
                return reply.error(403);
            }
            return serve_file(req, reply, src, &info, name);
        }
        let opened = if req.conf.follow_symlink || !is_symlink(reply.fs_path) {
            open_nonblocking(reply.fs_path)
                .ok()
                .and_then(|f| f.metadata().ok().map(|m| (f, m)))
                .filter(|(_, m)| m.is_file())
        } else {
            None
        };
        if let Some((file, meta)) = opened {
            if index_denied(req, name) {
                return reply.error(403);
            }
            let (src, info) = load(req, reply, file, &meta);
            truncate_path(reply, dir_len);
            return serve_file(req, reply, src, &info, name);
        }
        truncate_path(reply, dir_len);
    }

    if req.conf.dir_listing {
        return super::listing::serve(req, reply);
    }
    reply.error(403);
}

/// mod_access looks again once a directory request has found its index file, as lighttpd's
/// does: `url.access-deny = ( ".php" )` also denies "/dir/" served by "/dir/index.php".
fn index_denied(req: &Request, name: &str) -> bool {
    #[cfg(feature = "access")]
    if !req.conf.access_deny.is_empty() || !req.conf.access_allow.is_empty() {
        return access_denied(req, &format!("{}{}", req.path, name));
    }
    let _ = (req, name);
    false
}

/// Whether mod_access refuses URL path `url`.
fn access_denied(req: &Request, url: &str) -> bool {
    #[cfg(feature = "access")]
    return !crate::modules::access::allowed(req.conf, url);
    #[cfg(not(feature = "access"))]
    {
        let _ = (req, url);
        false
    }
}

/// Cut the path back to `len` bytes, reusing its allocation.
fn truncate_path(reply: &mut Reply, len: usize) {
    use std::os::unix::ffi::OsStringExt;
    let mut bytes = std::mem::take(reply.fs_path).into_os_string().into_vec();
    bytes.truncate(len);
    *reply.fs_path = std::ffi::OsString::from_vec(bytes).into();
}

/// Open for reading without blocking: opening a FIFO (or a device) with a plain open waits for
/// a writer and would freeze the whole loop. Anything but a regular file or directory is
/// refused after the open, from its metadata.
fn open_nonblocking(p: &Path) -> io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(p)
}

fn is_symlink(p: &Path) -> bool {
    std::fs::symlink_metadata(p)
        .map(|m| m.file_type().is_symlink())
        .unwrap_or(false)
}

/// With server.follow-symlink disabled, refuse a path any of whose components below the
/// document root is a symlink.
fn check_no_symlinks(root: &Path, path: &str) -> Result<(), u16> {
    let mut p = root.to_path_buf();
    for comp in path.split('/').filter(|c| !c.is_empty()) {
        p.push(comp);
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => return Err(403),
            Ok(_) => {}
            Err(e) => return Err(io_status(&e)),
        }
    }
    Ok(())
}

fn io_status(e: &io::Error) -> u16 {
    match e.kind() {
        io::ErrorKind::NotFound => 404,
        io::ErrorKind::PermissionDenied => 403,
        _ => match e.raw_os_error() {
            Some(libc::ENOTDIR) | Some(libc::ENAMETOOLONG) | Some(libc::ELOOP) => 404,
            _ => {
                log::warn!("opening a file: {}", e);
                500
            }
        },
    }
}

/// If-None-Match: does any listed tag match ours by weak comparison (RFC 9110 §13.1.2)?
fn none_match(value: &[u8], etag: &[u8]) -> bool {
    fn bare(t: &[u8]) -> &[u8] {
        t.strip_prefix(b"W/").unwrap_or(t)
    }
    value.split(|b| *b == b',').any(|t| {
        let t = crate::http::request::trim_ows(t);
        t == b"*" || (!t.is_empty() && bare(t) == bare(etag))
    })
}

/// Answer with a regular file's content: validators, conditional requests and ranges.
fn serve_file(req: &Request, reply: &mut Reply, src: Source, info: &FileInfo, name: &str) {
    let len = info.len;
    let mtime = info.mtime;
    // static-file.etags = "disable": no ETag, so no entity tag can match either.
    let etag: &[u8] = if req.conf.etags { info.etag() } else { b"" };
    let lm = &info.last_modified;
    let get_like = matches!(req.head.method, Method::Get | Method::Head);

    // Conditional requests (RFC 9110 §13.2.2): If-None-Match wins over If-Modified-Since.
    let not_modified = if let Some(inm) = req.header("If-None-Match") {
        none_match(inm, etag)
    } else if let (true, Some(ims)) = (get_like, req.header("If-Modified-Since")) {
        date::parse(ims).is_some_and(|t| mtime <= t)
    } else {
        false
    };
    let ctype = mime_lookup(&req.conf.mime, name).unwrap_or("application/octet-stream");
    if not_modified {
        if !get_like {
            return reply.error(412);
        }
        // Content-Type, ETag and Last-Modified, as lighttpd sends them. RFC 9110 §15.4.5
        // only asks for the validators and calls other metadata a SHOULD NOT unless it
        // guides cache updates; the type is harmless there (a cache refreshing its stored
        // response gets the same value) and clients of lighttpd see it. Not Accept-Ranges,
        // which lighttpd adds only to a 200, and never Content-Length.
        reply.start(304);
        reply.header("Content-Type", ctype.as_bytes());
        if !etag.is_empty() {
            reply.header("ETag", etag);
        }
        reply.header("Last-Modified", lm);
        reply.mtime = Some(mtime);
        return;
    }

    let mut outcome = range::RangeOutcome::Ignore;
    let compressed = reply.compressed.is_some_and(|f| f(ctype, len));
    if req.conf.range_requests && req.head.method == Method::Get && !compressed {
        if let Some(r) = req.header("Range") {
            let if_range_ok = match req.header("If-Range") {
                None => true,
                // An entity tag must match strongly; a weak one never does.
                Some(v) if v.starts_with(b"\"") || v.starts_with(b"W/") => v == etag,
                Some(v) => date::parse(v) == Some(mtime),
            };
            if if_range_ok {
                outcome = range::parse(r, len, reply.ranges);
            }
        }
    }

    let from = reply.wbuf.len();
    reply.mtime = Some(mtime);
    match outcome {
        range::RangeOutcome::Unsatisfiable => {
            let mut cr = [0u8; 48];
            let n = {
                let mut c = io::Cursor::new(&mut cr[..]);
                let _ = write!(c, "bytes */{}", len);
                c.position() as usize
            };
            reply.error_with(416, Some(("Content-Range", &cr[..n])));
        }
        range::RangeOutcome::Ranges if reply.ranges.len() == 1 => {
            let (a, b) = reply.ranges[0];
            reply.start(206);
            common_file_headers(reply, req, ctype, etag, lm);
            let mut cr = [0u8; 80];
            let n = {
                let mut c = io::Cursor::new(&mut cr[..]);
                let _ = write!(c, "bytes {}-{}/{}", a, b, len);
                c.position() as usize
            };
            reply.header("Content-Range", &cr[..n]);
            reply.end_head(Some(b - a + 1));
            queue_body(reply, from, src, a, b - a + 1);
        }
        range::RangeOutcome::Ranges => {
            reply.start(206);
            let mut total = MULTIPART_END.len() as u64;
            // Compute the length first: the part headers are written after the head.
            for (i, &(a, b)) in reply.ranges.iter().enumerate() {
                total += part_header_len(i == 0, ctype, a, b, len) + (b - a + 1);
            }
            common_file_headers(reply, req, ctype, etag, lm);
            reply.header("Content-Type", MULTIPART_TYPE.as_bytes());
            reply.end_head(Some(total));
            if reply.head_only {
                return;
            }
            for i in 0..reply.ranges.len() {
                let (a, b) = reply.ranges[i];
                let start = reply.wbuf.len();
                write_part_header(reply.wbuf, i == 0, ctype, a, b, len);
                match &src {
                    // Cached content is small: copy the part in with its header.
                    Source::Mem(body) => {
                        reply.wbuf.extend_from_slice(&body[a as usize..=b as usize]);
                        reply.push_mem(start);
                    }
                    Source::File(_) => {
                        reply.push_mem(start);
                        reply.segs.push_back(Seg::File {
                            offset: a,
                            len: b - a + 1,
                        });
                    }
                }
            }
            let start = reply.wbuf.len();
            reply.wbuf.extend_from_slice(MULTIPART_END.as_bytes());
            reply.push_mem(start);
            reply.body_len = total;
            if let Source::File(file) = src {
                *reply.file = Some(file);
            }
        }
        range::RangeOutcome::Ignore => {
            reply.start(200);
            reply.header("Content-Type", ctype.as_bytes());
            common_file_headers(reply, req, "", etag, lm);
            reply.end_head(Some(len));
            queue_body(reply, from, src, 0, len);
        }
    }
}

/// Headers shared by 200 and 206 responses. `ctype` is written unless empty (multipart
/// responses have their own Content-Type).
fn common_file_headers(reply: &mut Reply, req: &Request, ctype: &str, etag: &[u8], lm: &[u8]) {
    if req.conf.range_requests {
        reply.header("Accept-Ranges", b"bytes");
    }
    if !ctype.is_empty() && reply.status == 206 && reply.ranges.len() == 1 {
        reply.header("Content-Type", ctype.as_bytes());
    }
    if !etag.is_empty() {
        reply.header("ETag", etag);
    }
    reply.header("Last-Modified", lm);
}

/// The delimiter and headers before a part. The body starts with the first delimiter, with
/// no preamble; every later one is preceded by the CRLF that RFC 2046 §5.1.1 counts as part
/// of the delimiter. This is lighttpd's layout, byte for byte.
fn write_part_header(out: &mut Vec<u8>, first: bool, ctype: &str, a: u64, b: u64, len: u64) {
    if !first {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"--");
    out.extend_from_slice(BOUNDARY.as_bytes());
    out.extend_from_slice(b"\r\nContent-Type: ");
    out.extend_from_slice(ctype.as_bytes());
    out.extend_from_slice(b"\r\nContent-Range: bytes ");
    response::push_u64(out, a);
    out.push(b'-');
    response::push_u64(out, b);
    out.push(b'/');
    response::push_u64(out, len);
    out.extend_from_slice(b"\r\n\r\n");
}

/// The length of what [`write_part_header`] writes, without writing it.
fn part_header_len(first: bool, ctype: &str, a: u64, b: u64, len: u64) -> u64 {
    let fixed = "--\r\nContent-Type: \r\nContent-Range: bytes -/\r\n\r\n".len();
    let crlf = if first { 0 } else { 2 };
    (crlf + fixed + BOUNDARY.len() + ctype.len()) as u64
        + decimal_len(a)
        + decimal_len(b)
        + decimal_len(len)
}

/// How many digits `v` has in decimal.
fn decimal_len(mut v: u64) -> u64 {
    let mut n = 1;
    while v >= 10 {
        v /= 10;
        n += 1;
    }
    n
}

/// Queue `len` bytes of the body from `offset`, after what was written to the body buffer
/// since `from`: small bodies are copied or read into the buffer, so that head and body leave
/// in one write.
fn queue_body(reply: &mut Reply, from: usize, src: Source, offset: u64, len: u64) {
    if reply.head_only || len == 0 {
        return reply.push_mem(from);
    }
    reply.body_len = len;
    let file = match src {
        Source::Mem(body) => {
            let end = (offset + len) as usize;
            reply.wbuf.extend_from_slice(&body[offset as usize..end]);
            return reply.push_mem(from);
        }
        Source::File(file) => file,
    };
    if len <= SMALL_BODY {
        let start = reply.wbuf.len();
        reply.wbuf.resize(start + len as usize, 0);
        if file.read_exact_at(&mut reply.wbuf[start..], offset).is_ok() {
            return reply.push_mem(from);
        }
        // The file shrank under us: fall back to sendfile, which will notice and cut the
        // connection rather than send a wrong length.
        reply.wbuf.truncate(start);
    }
    reply.push_mem(from);
    reply.segs.push_back(Seg::File { offset, len });
    *reply.file = Some(file);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_none_match_weak_comparison() {
        assert!(none_match(b"\"a\"", b"\"a\""));
        assert!(none_match(b"W/\"a\"", b"\"a\""));
        assert!(none_match(b"\"x\", \"a\"", b"\"a\""));
        assert!(none_match(b"*", b"\"a\""));
        assert!(!none_match(b"\"b\"", b"\"a\""));
        assert!(!none_match(b"", b"\"a\""));
    }

    #[test]
    fn multipart_type_names_the_boundary() {
        assert!(MULTIPART_TYPE.ends_with(&format!("boundary={BOUNDARY}")));
        assert!(MULTIPART_END.contains(BOUNDARY));
    }

    #[test]
    fn part_header_len_is_exact() {
        for first in [true, false] {
            for (a, b, len) in [
                (0, 99, 1000),
                (0, 0, 1),
                (9, 10, 11),
                (99_999, 100_000, 1 << 40),
                (u64::MAX - 2, u64::MAX - 1, u64::MAX),
            ] {
                let mut v = Vec::new();
                write_part_header(&mut v, first, "text/plain", a, b, len);
                assert_eq!(
                    v.len() as u64,
                    part_header_len(first, "text/plain", a, b, len),
                    "{a}-{b}/{len}"
                );
            }
        }
    }

    #[test]
    fn part_headers_as_lighttpd_writes_them() {
        let mut v = Vec::new();
        write_part_header(&mut v, true, "text/plain", 0, 1, 100);
        write_part_header(&mut v, false, "text/plain", 97, 98, 100);
        assert_eq!(
            String::from_utf8_lossy(&v),
            "--fkj49sn38dcn3\r\nContent-Type: text/plain\r\nContent-Range: bytes 0-1/100\r\n\r\n\
             \r\n--fkj49sn38dcn3\r\nContent-Type: text/plain\r\nContent-Range: bytes 97-98/100\r\n\r\n"
        );
    }
}
