//! Directory listings (dir-listing.activate): an HTML table of a directory's entries, names
//! escaped for HTML and encoded for URLs.

use std::fmt::Write as _;
use std::os::unix::fs::MetadataExt;

use super::{Reply, Request};
use crate::http::{date, util};

/// Listings stop here, so a huge directory cannot make one response unbounded.
const MAX_ENTRIES: usize = 10_000;

struct Entry {
    name: String,
    dir: bool,
    size: u64,
    mtime: u64,
}

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
    for ent in rd.flatten() {
        if entries.len() >= MAX_ENTRIES {
            truncated = true;
            break;
        }
        let Ok(name) = ent.file_name().into_string() else {
            // Not UTF-8: it could not be linked to in a normalised URL anyway.
            continue;
        };
        if name.starts_with('.') {
            continue;
        }
        let Ok(meta) = ent.metadata() else { continue };
        // Symlinks are listed as what they point to, when that can be reached; with
        // server.follow-symlink disabled they could not be fetched, so they are not listed
        // (and their targets are not described).
        if meta.file_type().is_symlink() && !req.conf.follow_symlink {
            continue;
        }
        let meta = if meta.file_type().is_symlink() {
            match std::fs::metadata(ent.path()) {
                Ok(m) => m,
                Err(_) => continue,
            }
        } else {
            meta
        };
        entries.push(Entry {
            name,
            dir: meta.is_dir(),
            size: meta.size(),
            mtime: meta.mtime().max(0) as u64,
        });
    }
    entries.sort_by(|a, b| b.dir.cmp(&a.dir).then_with(|| a.name.cmp(&b.name)));

    let html = &mut *reply.scratch;
    html.clear();
    html.push_str("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>Index of ");
    util::html_escape(req.path, html);
    html.push_str("</title></head>\n<body><h1>Index of ");
    util::html_escape(req.path, html);
    html.push_str("</h1>\n<table>\n<tr><th>Name</th><th>Last Modified</th><th>Size</th></tr>\n");
    if req.path != "/" {
        html.push_str("<tr><td><a href=\"../\">../</a></td><td></td><td>-</td></tr>\n");
    }
    let mut when = [0u8; 29];
    for e in &entries {
        html.push_str("<tr><td><a href=\"");
        util::url_encode_segment(&e.name, html);
        if e.dir {
            html.push('/');
        }
        html.push_str("\">");
        util::html_escape(&e.name, html);
        if e.dir {
            html.push('/');
        }
        date::format(e.mtime, &mut when);
        html.push_str("</a></td><td>");
        html.push_str(std::str::from_utf8(&when).unwrap_or(""));
        html.push_str("</td><td>");
        if e.dir {
            html.push('-');
        } else {
            let _ = write!(html, "{}", e.size);
        }
        html.push_str("</td></tr>\n");
    }
    html.push_str("</table>\n");
    if truncated {
        let _ = writeln!(
            html,
            "<p>Only the first {} entries are shown.</p>",
            MAX_ENTRIES
        );
    }
    html.push_str("</body></html>\n");

    let from = reply.wbuf.len();
    reply.start(200);
    reply.header("Content-Type", b"text/html; charset=utf-8");
    let len = reply.scratch.len() as u64;
    reply.end_head(Some(len));
    if !reply.head_only {
        reply.wbuf.extend_from_slice(reply.scratch.as_bytes());
        reply.body_len = len;
    }
    reply.push_mem(from);
}
