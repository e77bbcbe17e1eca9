//! mod_expire: `Cache-Control: max-age` (or `Expires` for HTTP/1.0 clients) on successful
//! responses, from `expire.url` (by URL prefix) or `expire.mimetypes` (by Content-Type prefix).

use crate::config::expire;
use crate::config::ReqConf;
use crate::http::response;

/// Add the expiry headers, if a rule applies. Only for 200 and 206 answers to GET and HEAD
/// that have no Cache-Control yet, as lighttpd.
#[allow(clippy::too_many_arguments)]
pub fn response_headers(
    conf: &ReqConf,
    path: &str,
    status: u16,
    get_or_head: bool,
    http_1_0: bool,
    now: u64,
    mtime: Option<u64>,
    hdrs: &mut Vec<u8>,
) {
    if !(status == 200 || status == 206) || !get_or_head {
        return;
    }
    if response::find(hdrs, "Cache-Control").is_some() {
        return;
    }
    let ctype = response::find(hdrs, "Content-Type").and_then(|v| std::str::from_utf8(v).ok());
    let Some(rule) = expire::lookup(&conf.expire_url, &conf.expire_mime, path, ctype) else {
        return;
    };
    let (mut exp, mut cc) = (Vec::new(), Vec::new());
    if !expire::headers(rule, now, mtime, &mut exp, &mut cc) {
        return;
    }
    if http_1_0 {
        response::header(hdrs, "Expires", &exp);
    } else {
        response::header(hdrs, "Cache-Control", &cc);
    }
}
