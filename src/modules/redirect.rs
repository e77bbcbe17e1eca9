//! mod_redirect: `url.redirect` rules matched against the normalised request-target; the first
//! match answers with `url.redirect-code` (lighttpd's default: 301 for GET and HEAD and for
//! HTTP/1.0, else 308) and a Location built from the rule's replacement.

use crate::config::urlrules::{self, Outcome, UrlParts};
use crate::config::ReqConf;

/// What the redirect rules decided.
pub enum Redirect {
    /// No rule matched (or one stopped the list): go on.
    None,
    /// Answer with this status; `out` holds the Location (none when empty).
    To(u16),
    /// The replacement could not be built: 500.
    Fail,
}

pub fn check(
    conf: &ReqConf,
    target: &str,
    cond_caps: &[Option<&str>],
    url: &UrlParts,
    get_or_head: bool,
    http_1_0: bool,
    out: &mut String,
) -> Redirect {
    let Some((rules, _)) = conf.redirect.as_ref() else {
        return Redirect::None;
    };
    match urlrules::apply(rules, target, cond_caps, url, out) {
        Ok(Outcome::NoMatch) | Ok(Outcome::Stop(_)) => Redirect::None,
        Ok(Outcome::Replaced(_)) => Redirect::To(urlrules::redirect_status(
            conf.redirect_code,
            get_or_head,
            http_1_0,
        )),
        Err(e) => {
            log::warn!("url.redirect: {}", e);
            Redirect::Fail
        }
    }
}
