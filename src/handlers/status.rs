//! mod_status's handler: a request whose path is status.status-url, status.statistics-url or
//! status.config-url is answered from the server's counters with the pages of `status_page`.
//! It runs after the uri_clean modules, so url.access-deny (and auth) guard these URLs like
//! any other.

use std::net::IpAddr;

use super::status_page::{self, ConfigInfo, ConnRow, ConnState, Stats, StatusFormat, StatusView};
use super::{Reply, Request};
use crate::config::ReqConf;

/// Which of mod_status's pages a URL is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Page {
    Status,
    Statistics,
    Config,
}

/// The page configured at `path`, if any (an exact match on the normalised path, as in
/// lighttpd).
pub fn page(conf: &ReqConf, path: &str) -> Option<Page> {
    let s = &conf.status;
    let is = |u: &Option<String>| u.as_deref() == Some(path);
    if is(&s.status_url) {
        Some(Page::Status)
    } else if is(&s.config_url) {
        Some(Page::Config)
    } else if is(&s.statistics_url) {
        Some(Page::Statistics)
    } else {
        None
    }
}

/// What the pages show besides the request: the counters, the modules in effect and the
/// client asking.
pub struct Server<'a> {
    pub stats: &'a Stats,
    pub modules: &'a [String],
    pub peer: IpAddr,
}

pub fn serve(req: &Request, reply: &mut Reply, page: Page, srv: &Server) {
    let from = reply.wbuf.len();
    let now = reply.now;
    let query = req.query.unwrap_or_default();
    let out = &mut *reply.wbuf;
    let ctype = match page {
        Page::Status => match StatusFormat::for_query(query) {
            StatusFormat::Auto => status_page::render_auto(srv.stats, now, out),
            StatusFormat::Json => status_page::render_json(srv.stats, now, query, out),
            StatusFormat::Html => {
                let host = req.head.host.map(|h| h.get(req.buf)).unwrap_or_default();
                let view = StatusView {
                    now,
                    utc_offset: super::dirlist_page::local_utc_offset(srv.stats.started() as i64),
                    server_tag: &req.conf.server_tag,
                    host,
                    server_name: None,
                    query,
                    enable_sort: req.conf.status.enable_sort,
                };
                // The connection table shows this request only: the other connections are
                // in the loop's slab, out of a handler's reach, and the counts above cover
                // them all.
                let me = ConnRow {
                    client: srv.peer,
                    body_read: 0,
                    body_len: 0,
                    bytes_sent: 0,
                    bytes_queued: 0,
                    state: ConnState::Write,
                    age_secs: 0,
                    host,
                    uri: req.head.target.get(req.buf),
                    file: b"",
                };
                status_page::render_html(srv.stats, &view, &mut std::iter::once(me), out)
            }
        },
        Page::Statistics => status_page::render_statistics(srv.stats, now, &[], out),
        Page::Config => {
            let modules: Vec<&str> = srv.modules.iter().map(String::as_str).collect();
            let version = concat!("lightd/", env!("CARGO_PKG_VERSION"));
            let info = ConfigInfo {
                server_tag: &req.conf.server_tag,
                version,
                modules: &modules,
            };
            status_page::render_config(&info, out)
        }
    };
    let len = (reply.wbuf.len() - from) as u64;
    if reply.head_only {
        reply.wbuf.truncate(from);
    }
    reply.start(200);
    reply.header("Content-Type", ctype.as_bytes());
    reply.end_head(Some(len));
    if !reply.head_only {
        reply.body_len = len;
    }
    reply.push_mem(from);
}
