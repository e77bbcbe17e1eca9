//! Directory listings (mod_dirlisting, dir-listing.activate): read the directory, leaving out
//! what the `dir-listing.*` options hide before anything is stat-ed, then render the page with
//! `dirlist_page` (the full listing, cargo feature `dirlisting`) or a plain table (without it,
//! where the options other than activate are not available and dir-listing.exclude is refused
//! at load).

use std::borrow::Cow;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;

use super::dirlist_page::{self, Entry, MAX_ENTRIES};
use super::{Reply, Request};

/// Directory entries looked at per listing, hidden ones included: a directory of millions
/// of hidden names cannot make one request scan forever.
const MAX_SCANNED: usize = 16 * MAX_ENTRIES;

pub fn serve(req: &Request, reply: &mut Reply) {
    let rd = match std::fs::read_dir(&*reply.fs_path) {
        Ok(rd) => rd,
        Err(e) => {
            log::debug!("listing {}: {}", reply.fs_path.display(), e);
            return reply.error(403);
        }
    };
    let mut entries = Vec::new();
    let mut truncated = false;
    for (n, ent) in rd.flatten().enumerate() {
        if n >= MAX_SCANNED || entries.len() > MAX_ENTRIES {
            truncated = true;
            break;
        }
        let name = ent.file_name();
        // Before any stat: a hidden or excluded name costs nothing more.
        if !shows(req, name.as_bytes()) {
            continue;
        }
        let Ok(meta) = ent.metadata() else { continue };
        // Symlinks are listed as what they point to, when that can be reached; with
        // server.follow-symlink disabled they could not be fetched, so they are not listed
        // (and their targets are not described).
        let meta = if meta.file_type().is_symlink() {
            if !req.conf.follow_symlink {
                continue;
            }
            match std::fs::metadata(ent.path()) {
                Ok(m) => m,
                Err(_) => continue,
            }
        } else {
            meta
        };
        entries.push(Entry {
            name: name.as_bytes().to_vec(),
            is_dir: meta.is_dir(),
            size: meta.size(),
            mtime: meta.mtime(),
        });
    }
    let from = reply.wbuf.len();
    let ctype = render(req, reply, &entries, truncated);
    let len = (reply.wbuf.len() - from) as u64;
    if reply.head_only {
        reply.wbuf.truncate(from);
    }
    reply.start(200);
    reply.header("Content-Type", ctype.as_bytes());
    #[cfg(feature = "dirlisting")]
    for link in req.conf.listing.preload_links() {
        reply.header("Link", link.as_bytes());
    }
    reply.end_head(Some(len));
    if !reply.head_only {
        reply.body_len = len;
    }
    reply.push_mem(from);
}

#[cfg(feature = "dirlisting")]
fn shows(req: &Request, name: &[u8]) -> bool {
    req.conf.listing.shows(name)
}

/// Without the options, lighttpd's defaults: dot files hidden.
#[cfg(not(feature = "dirlisting"))]
fn shows(_: &Request, name: &[u8]) -> bool {
    name.first() != Some(&b'.')
}

/// The full listing: lighttpd's page, or its `?json` form.
#[cfg(feature = "dirlisting")]
fn render<'a>(
    req: &Request<'a>,
    reply: &mut Reply,
    entries: &[Entry],
    truncated: bool,
) -> Cow<'a, str> {
    use dirlist_page::{Listing, ListingEnv};

    struct Env<'a>(&'a [(String, String)]);
    impl ListingEnv for Env<'_> {
        fn content_type(&self, name: &[u8]) -> Option<&str> {
            crate::config::mime_lookup(self.0, std::str::from_utf8(name).ok()?)
        }
        fn utc_offset(&self, t: i64) -> i64 {
            dirlist_page::local_utc_offset(t)
        }
    }

    let opts = &*req.conf.listing;
    let header = opts
        .show_header
        .as_deref()
        .and_then(|f| include_file(req, reply, f));
    let readme = opts
        .show_readme
        .as_deref()
        .and_then(|f| include_file(req, reply, f));
    let page = Listing {
        url_path: req.path.as_bytes(),
        entries,
        truncated,
        header: header.as_deref(),
        readme: readme.as_deref(),
        server_tag: &req.conf.server_tag,
    };
    if dirlist_page::wants_json(req.query.unwrap_or_default()) {
        return Cow::Borrowed(dirlist_page::render_json(opts, &page, reply.wbuf));
    }
    dirlist_page::render(opts, &page, &Env(&req.conf.mime), reply.wbuf)
}

/// A show-header / show-readme file: relative names are in the listed directory. Only a
/// regular file is read (opened without blocking, so a FIFO cannot stall the loop), not a
/// symlink when symlinks are not followed, and at most `MAX_INCLUDE_BYTES` of it.
#[cfg(feature = "dirlisting")]
fn include_file(req: &Request, reply: &Reply, name: &str) -> Option<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;

    let path = if name.starts_with('/') {
        std::path::PathBuf::from(name)
    } else {
        reply.fs_path.join(name)
    };
    if !req.conf.follow_symlink
        && std::fs::symlink_metadata(&path).is_ok_and(|m| m.file_type().is_symlink())
    {
        return None;
    }
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(&path)
        .ok()?;
    if !file.metadata().ok()?.is_file() {
        return None;
    }
    let mut body = Vec::new();
    file.take(dirlist_page::MAX_INCLUDE_BYTES as u64)
        .read_to_end(&mut body)
        .ok()?;
    Some(body)
}

/// The plain listing of a build without the `dirlisting` feature: a table of names (escaped
/// and encoded as in the full one), dates and sizes, directories first.
#[cfg(not(feature = "dirlisting"))]
fn render<'a>(
    req: &Request<'a>,
    reply: &mut Reply,
    entries: &[Entry],
    truncated: bool,
) -> Cow<'a, str> {
    use dirlist_page::{escape_into, href_encode, Escape};
    use std::io::Write as _;

    let mut order: Vec<&Entry> = entries.iter().take(MAX_ENTRIES).collect();
    order.sort_by(|a, b| (!a.is_dir, &a.name).cmp(&(!b.is_dir, &b.name)));
    let out = &mut *reply.wbuf;
    for part in [
        &b"<!DOCTYPE html>\n<html><head><title>Index of "[..],
        b"</title></head>\n<body><h2>Index of ",
    ] {
        out.extend_from_slice(part);
        escape_into(req.path.as_bytes(), Escape::MinimalXml, out);
    }
    out.extend_from_slice(
        b"</h2>\n<table>\n<tr><th>Name</th><th>Last Modified</th><th>Size</th></tr>\n",
    );
    if req.path != "/" {
        out.extend_from_slice(b"<tr><td><a href=\"../\">..</a>/</td><td></td><td>-</td></tr>\n");
    }
    let mut when = [0u8; 29];
    for e in order {
        let slash: &[u8] = if e.is_dir { b"/" } else { b"" };
        out.extend_from_slice(b"<tr><td><a href=\"");
        href_encode(&e.name, out);
        out.extend_from_slice(slash);
        out.extend_from_slice(b"\">");
        escape_into(&e.name, Escape::MinimalXml, out);
        out.extend_from_slice(b"</a>");
        out.extend_from_slice(slash);
        crate::http::date::format(e.mtime.max(0) as u64, &mut when);
        out.extend_from_slice(b"</td><td>");
        out.extend_from_slice(&when);
        out.extend_from_slice(b"</td><td>");
        if e.is_dir {
            out.push(b'-');
        } else {
            let _ = write!(out, "{}", e.size);
        }
        out.extend_from_slice(b"</td></tr>\n");
    }
    out.extend_from_slice(b"</table>\n");
    if truncated || entries.len() > MAX_ENTRIES {
        let _ = writeln!(
            out,
            "<p>Only the first {} entries are listed.</p>",
            MAX_ENTRIES
        );
    }
    out.extend_from_slice(b"</body></html>\n");
    Cow::Borrowed("text/html")
}
