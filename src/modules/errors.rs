//! The core's error documents: `server.error-handler` (any 4xx/5xx), `server.error-handler-404`
//! (a 404 only; the general one wins when both are set), both internal redirects to a URL, and
//! `server.errorfile-prefix`, a static "<prefix><status>.html" file served as the error page.

use crate::config::ReqConf;

/// How an error-handler restart ends, as lighttpd decides it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Saved {
    /// `server.error-handler`: the answer keeps the original status.
    General(u16),
    /// `server.error-handler-404`: a 404 stays a 404; whatever else the handler answers
    /// (a static page: 200) is kept.
    NotFound,
}

impl Saved {
    /// The status that sent the request to the handler (a backend's REDIRECT_STATUS).
    pub fn status(&self) -> u16 {
        match self {
            Saved::General(s) => *s,
            Saved::NotFound => 404,
        }
    }
}

/// The URL to restart with for an error `status`, if the config has a handler for it.
pub fn handler(conf: &ReqConf, status: u16) -> Option<(&str, Saved)> {
    if status < 400 {
        return None;
    }
    if let Some(h) = conf.error_handler.as_deref() {
        return Some((h, Saved::General(status)));
    }
    if status == 404 {
        if let Some(h) = conf.error_handler_404.as_deref() {
            return Some((h, Saved::NotFound));
        }
    }
    None
}

/// The status of the handler's answer.
pub fn final_status(saved: Saved, handler_status: u16) -> u16 {
    match saved {
        Saved::General(s) => s,
        Saved::NotFound => handler_status,
    }
}

/// The errorfile for `status`, if configured: "<prefix><status>.html".
pub fn errorfile(conf: &ReqConf, status: u16) -> Option<std::path::PathBuf> {
    let prefix = conf.errorfile_prefix.as_deref()?;
    Some(std::path::PathBuf::from(format!("{prefix}{status}.html")))
}
