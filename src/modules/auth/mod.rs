//! mod_auth with mod_authn_file's backends: which `auth.require` entry covers a path, and
//! whether a request's credentials satisfy it (Basic, Digest, or a REMOTE_USER set earlier).
//!
//! Pure request-time logic: `config::auth` turns lighttpd's config into [`Settings`] and
//! [`Require`] values once; the pipeline calls [`find`] and [`check`] per request (uri_clean,
//! after mod_access) and acts on the [`Outcome`]. The only I/O is reading the user file, which lighttpd also does per check.
//!
//! lighttpd behaviours kept on purpose (src/mod_auth.c, src/mod_auth_api.c,
//! src/mod_authn_file.c in lighttpd 1.4.85):
//! - the first entry whose path is a prefix of the URL path applies, in config order;
//! - `require` grants by user name only: `group=` and `host=` parse but never match with the
//!   file backends (lighttpd says "'host' not implemented"), and an authenticated user the
//!   rule does not name gets a 401 again, never a 403;
//! - a missing or unreadable user file is indistinguishable from a wrong password (401);
//!   only a missing or unsuitable `auth.backend` is a 500;
//! - wrong credentials ask for `Connection: close` and a delayed answer ([`Outcome`]'s
//!   `bad_creds`, [`INVALID_CREDS_DELAY`]).

pub mod base64;
pub mod basic;
pub mod digest;
pub mod password;
pub mod userfile;

#[cfg(test)]
mod tests;

use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

// The settings are built with the config (imports run from modules to config, not back).
pub use crate::config::auth::{
    parse_require, Algo, Algorithms, BackendKind, Method, Require, Rule, Settings, UserFiles,
};

/// How long to hold back the 401 after invalid credentials, unless
/// `server.feature-flags += ("auth.delay-invalid-creds" => "disable")`. lighttpd parks the
/// response until its next once-a-second maintenance tick (0 to 1 s); a fixed second is the
/// same bound without the lucky early release, and slows password guessing on one
/// connection as much. The connection closes after that response either way.
pub const INVALID_CREDS_DELAY: Duration = Duration::from_secs(1);

/// The entry covering `path` (the normalised URL path): the first, in config order, whose
/// path is a prefix of it; compared ignoring ASCII case when `case_insensitive`
/// (server.force-lowercase-filenames).
pub fn find<'a>(list: &'a [Require], path: &str, case_insensitive: bool) -> Option<&'a Require> {
    list.iter().find(|r| {
        let p = r.path.as_bytes();
        match path.as_bytes().get(..p.len()) {
            Some(head) if case_insensitive => head.eq_ignore_ascii_case(p),
            Some(head) => head == p,
            None => false,
        }
    })
}

/// What [`check`] needs to know about the request.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    /// The normalised URL path (for log messages).
    pub path: &'a str,
    /// The Authorization header's value, if the request has one.
    pub authorization: Option<&'a [u8]>,
    /// The request method as sent ("GET"); part of the Digest computation.
    pub method: &'a str,
    /// The request-target exactly as sent in the request line; Digest's `uri=` must equal it.
    pub target: &'a [u8],
    /// The client's address (for log messages).
    pub client: IpAddr,
    /// Wall-clock time, unix seconds (Digest nonces carry it).
    pub now: u64,
    /// REMOTE_USER if an earlier module set it (for "extern" and auth.extern-authn).
    pub remote_user: Option<&'a str>,
}

/// The verdict on a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Go on. Set REMOTE_USER to `user` and AUTH_TYPE to `auth_type` (None: leave both as
    /// they are, the user came from REMOTE_USER); add `Authentication-Info:
    /// {authentication_info}` to the response when given (a Digest nonce nearing expiry).
    Allow {
        user: String,
        auth_type: Option<&'static str>,
        authentication_info: Option<String>,
    },
    /// 401 with one `WWW-Authenticate` header per value (none for "extern"). With
    /// `bad_creds` the credentials were wrong: send `Connection: close` and, unless
    /// auth.delay-invalid-creds is disabled, hold the response for [`INVALID_CREDS_DELAY`].
    Challenge {
        www_authenticate: Vec<String>,
        bad_creds: bool,
    },
    /// 400: a malformed Authorization header.
    BadRequest,
    /// 500: the configuration cannot work (no auth.backend, or Digest with htpasswd). The
    /// reason has been logged.
    ServerError,
}

/// Check a request against the entry [`find`] picked. `secret` is a per-process random
/// value that signs Digest nonces (unless the entry has its own nonce-secret); with several
/// worker processes it should be made before they fork, so nonces work across them.
pub fn check(require: &Require, settings: &Settings, req: &Request<'_>, secret: &[u8]) -> Outcome {
    if settings.extern_authn || require.method == Method::Extern {
        if let Some(u) = req.remote_user {
            if require.rule.allows(u.as_bytes()) {
                return Outcome::Allow {
                    user: u.to_string(),
                    auth_type: None,
                    authentication_info: None,
                };
            }
        }
    }
    match require.method {
        Method::Basic => basic::check(require, settings, req),
        Method::Digest => digest::check(require, settings, req, secret),
        Method::Extern => Outcome::Challenge {
            www_authenticate: Vec::new(),
            bad_creds: false,
        },
    }
}

/// The credentials after the auth scheme `scheme` (lowercase), or None if the header uses
/// another scheme. The scheme is case-insensitive and followed by one or more spaces.
fn strip_scheme<'h>(header: &'h [u8], scheme: &[u8]) -> Option<&'h [u8]> {
    let start = header.iter().position(|&b| b != b' ' && b != b'\t')?;
    let end = header.iter().rposition(|&b| b != b' ' && b != b'\t')? + 1;
    let h = header.get(start..end)?;
    let (name, rest) = (h.get(..scheme.len())?, h.get(scheme.len()..)?);
    if !name.eq_ignore_ascii_case(scheme) || rest.first() != Some(&b' ') {
        return None;
    }
    let skip = rest.iter().take_while(|&&b| b == b' ').count();
    rest.get(skip..)
}

/// Read the backend's user file, logging (with the path) why not if it cannot be read.
fn load_userfile(
    kind: BackendKind,
    settings: &Settings,
    req: &Request<'_>,
) -> Option<userfile::Secret> {
    let Some(path) = settings.files.path(kind) else {
        let key = match kind {
            BackendKind::Plain => "auth.backend.plain.userfile",
            BackendKind::Htpasswd => "auth.backend.htpasswd.userfile",
            BackendKind::Htdigest => "auth.backend.htdigest.userfile",
        };
        log::error!(
            "{} is not set; nobody can log in to {}",
            key,
            req.path.escape_debug()
        );
        return None;
    };
    match userfile::load(path) {
        Ok(d) => Some(d),
        Err(e) => {
            log::error!("{}", e);
            None
        }
    }
}

/// Report user-file lines that could not be parsed (at most a few numbers).
fn log_bad_lines(path: &Path, bad: &[usize]) {
    if let Some(first) = bad.first() {
        log::warn!(
            "parse error in {} at line {}{} (expected 'user:secret', or \
             'user:realm:digest[:userhash]' for htdigest)",
            path.display(),
            first,
            if bad.len() > 1 {
                format!(" and {} more", bad.len() - 1)
            } else {
                String::new()
            }
        );
    }
}

/// Log failed credentials in lighttpd's words, which tools such as fail2ban look for.
fn log_bad(req: &Request<'_>, user: &[u8], scheme: &str) {
    log::warn!(
        "{}: password doesn't match for {} username: {} IP: {}",
        scheme,
        req.path.escape_debug(),
        String::from_utf8_lossy(user).escape_debug(),
        req.client
    );
}
