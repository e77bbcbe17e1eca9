//! mod_auth with mod_authn_file's backends: which `auth.require` entry covers a path, and
//! whether a request's credentials satisfy it (Basic, Digest, or a REMOTE_USER set earlier).
//!
//! Pure request-time logic: the integrator turns lighttpd's config into [`Settings`] and
//! [`Require`] values once, then per request calls [`find`] and [`check`] and acts on the
//! [`Outcome`]. The only I/O is reading the user file, which lighttpd also does per check.
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
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use digest::{Algo, Algorithms};

/// How long to hold back the 401 after invalid credentials, unless
/// `server.feature-flags += ("auth.delay-invalid-creds" => "disable")`. lighttpd parks the
/// response until its next once-a-second maintenance tick (0 to 1 s); a fixed second is the
/// same bound without the lucky early release, and slows password guessing on one
/// connection as much. The connection closes after that response either way.
pub const INVALID_CREDS_DELAY: Duration = Duration::from_secs(1);

/// `auth.backend`: where user names and secrets come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    /// `user:cleartext password` lines (auth.backend.plain.userfile).
    Plain,
    /// `user:hash` lines from Apache's htpasswd (auth.backend.htpasswd.userfile). Basic only.
    Htpasswd,
    /// `user:realm:hex(HA1)` lines from Apache's htdigest (auth.backend.htdigest.userfile).
    Htdigest,
}

impl BackendKind {
    /// Parse `auth.backend`. A blank value means "no backend" (None), as in lighttpd.
    pub fn parse(s: &str) -> Result<Option<BackendKind>, String> {
        match s {
            "" => Ok(None),
            "plain" => Ok(Some(BackendKind::Plain)),
            "htpasswd" => Ok(Some(BackendKind::Htpasswd)),
            "htdigest" => Ok(Some(BackendKind::Htdigest)),
            "ldap" | "pam" | "dbi" | "gssapi" | "sasl" | "mysql" => Err(format!(
                "auth.backend \"{}\" is not supported by lightd (supported: \"plain\", \
                 \"htpasswd\", \"htdigest\")",
                s
            )),
            _ => Err(format!(
                "auth.backend not supported: \"{}\" (expecting \"plain\", \"htpasswd\" or \
                 \"htdigest\")",
                s
            )),
        }
    }
}

/// mod_authn_file's file keys. A blank value is the same as unset, as in lighttpd.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserFiles {
    /// auth.backend.plain.userfile
    pub plain_userfile: Option<PathBuf>,
    /// auth.backend.plain.groupfile: accepted because lighttpd 1.4.85 accepts it, but, as
    /// there, never read (no file backend looks groups up).
    pub plain_groupfile: Option<PathBuf>,
    /// auth.backend.htpasswd.userfile
    pub htpasswd_userfile: Option<PathBuf>,
    /// auth.backend.htdigest.userfile
    pub htdigest_userfile: Option<PathBuf>,
}

impl UserFiles {
    /// The config keys [`UserFiles::set`] takes.
    pub const KEYS: [&'static str; 4] = [
        "auth.backend.plain.userfile",
        "auth.backend.plain.groupfile",
        "auth.backend.htpasswd.userfile",
        "auth.backend.htdigest.userfile",
    ];

    /// Set one of [`UserFiles::KEYS`]; false if `key` is not one of them.
    pub fn set(&mut self, key: &str, value: &str) -> bool {
        let slot = match key {
            "auth.backend.plain.userfile" => &mut self.plain_userfile,
            "auth.backend.plain.groupfile" => &mut self.plain_groupfile,
            "auth.backend.htpasswd.userfile" => &mut self.htpasswd_userfile,
            "auth.backend.htdigest.userfile" => &mut self.htdigest_userfile,
            _ => return false,
        };
        *slot = (!value.is_empty()).then(|| PathBuf::from(value));
        true
    }

    /// The user file a backend reads.
    pub fn path(&self, kind: BackendKind) -> Option<&Path> {
        match kind {
            BackendKind::Plain => self.plain_userfile.as_deref(),
            BackendKind::Htpasswd => self.htpasswd_userfile.as_deref(),
            BackendKind::Htdigest => self.htdigest_userfile.as_deref(),
        }
    }
}

/// The per-request mod_auth settings besides `auth.require` (each merged from the config
/// conditions independently, as lighttpd does).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// auth.backend
    pub backend: Option<BackendKind>,
    /// The userfile keys.
    pub files: UserFiles,
    /// auth.extern-authn: a REMOTE_USER already set (by another module) that the rule
    /// accepts is enough, whatever the method.
    pub extern_authn: bool,
}

/// An `auth.require` entry's `method`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Basic,
    Digest,
    /// Trust REMOTE_USER set by an earlier module (e.g. a TLS client certificate).
    Extern,
}

/// An `auth.require` entry's `require` string, as lighttpd parses it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rule {
    /// "valid-user": anyone the backend authenticates.
    pub valid_user: bool,
    /// `user=NAME` terms.
    pub users: Vec<String>,
    /// `group=NAME` terms: kept, but no file backend has groups, so they never match.
    pub groups: Vec<String>,
    /// `host=NAME` terms: kept, but lighttpd never implemented them, so they never match.
    pub hosts: Vec<String>,
}

impl Rule {
    /// Is the authenticated `user` allowed? (Case-sensitive, as lighttpd compares.)
    pub fn allows(&self, user: &[u8]) -> bool {
        self.valid_user || self.users.iter().any(|u| u.as_bytes() == user)
    }
}

const REQUIRE_SYNTAX: &str = "(expecting \"valid-user\" or \"user=a|user=b|group=g|host=h\")";

/// Parse a `require` string: exactly "valid-user", or `|`-separated `user=`, `group=` and
/// `host=` terms (a trailing `|` is tolerated, as in lighttpd).
pub fn parse_require(s: &str) -> Result<Rule, String> {
    if s.is_empty() {
        return Err("auth.require: the require field is blank".into());
    }
    let mut rule = Rule::default();
    if s == "valid-user" {
        rule.valid_user = true;
        return Ok(rule);
    }
    let terms: Vec<&str> = s.split('|').collect();
    let last = terms.len().saturating_sub(1);
    for (i, term) in terms.into_iter().enumerate() {
        if term.is_empty() && i == last {
            break;
        }
        let Some((key, value)) = term.split_once('=') else {
            return Err(format!(
                "auth.require: error parsing 'require' field: missing '=' {}; value: \"{}\", \
                 near: \"{}\"",
                REQUIRE_SYNTAX, s, term
            ));
        };
        if value.is_empty() {
            return Err(format!(
                "auth.require: error parsing 'require' field: missing token after '=' {}; \
                 value: \"{}\", near: \"{}\"",
                REQUIRE_SYNTAX, s, term
            ));
        }
        let list = match key {
            "user" => &mut rule.users,
            "group" => &mut rule.groups,
            "host" => &mut rule.hosts,
            "valid-user" => {
                return Err(format!(
                    "auth.require: valid-user cannot be combined with other require rules {}; \
                     value: \"{}\"",
                    REQUIRE_SYNTAX, s
                ))
            }
            _ => {
                return Err(format!(
                    "auth.require: invalid/unsupported token in 'require' field {}; value: \
                     \"{}\", near: \"{}\"",
                    REQUIRE_SYNTAX, s, term
                ))
            }
        };
        list.push(value.to_string());
    }
    Ok(rule)
}

fn parse_bool(key: &str, v: &str) -> Result<bool, String> {
    const YES: [&str; 4] = ["enable", "enabled", "true", "1"];
    const NO: [&str; 4] = ["disable", "disabled", "false", "0"];
    if YES.iter().any(|y| y.eq_ignore_ascii_case(v)) {
        Ok(true)
    } else if NO.iter().any(|n| n.eq_ignore_ascii_case(v)) {
        Ok(false)
    } else {
        Err(format!(
            "auth.require: \"{}\" must be \"enable\" or \"disable\", not \"{}\"",
            key, v
        ))
    }
}

/// One `auth.require` entry: `"path" => ( "method" => ..., "realm" => ..., ... )`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Require {
    /// The URL-path prefix it covers.
    pub path: String,
    pub method: Method,
    /// The realm (may be empty, but must be given).
    pub realm: String,
    /// Digest algorithms offered (`algorithm`); MD5 unless configured.
    pub algorithms: Algorithms,
    pub rule: Rule,
    /// `nonce-secret` (or `nonce_secret`): signs nonces instead of the per-process secret,
    /// so nonces survive restarts and are shared between processes.
    pub nonce_secret: Option<Vec<u8>>,
    /// `userhash`: offer RFC 7616 user name hashing in the Digest challenge.
    pub userhash: bool,
}

impl Require {
    /// Build an entry from its path and its option pairs, validated as lighttpd does at
    /// start-up: `method` and `require` must be present and not blank, `realm` present,
    /// `algorithm` names known, and no other options.
    pub fn parse(path: &str, options: &[(&str, &str)]) -> Result<Require, String> {
        let mut method = None;
        let mut realm = None;
        let mut require = None;
        let mut algorithm = None;
        let mut nonce_secret = None;
        let mut userhash = None;
        for &(k, v) in options {
            let slot = match k {
                "method" => &mut method,
                "realm" => &mut realm,
                "require" => &mut require,
                "algorithm" => &mut algorithm,
                "nonce-secret" | "nonce_secret" => &mut nonce_secret,
                "userhash" => &mut userhash,
                _ => {
                    return Err(format!(
                        "the field is unknown in: auth.require = ( \"{}\" => ( ..., -> \"{}\" \
                         <- => \"...\" ) ) (known: method, realm, require, algorithm, \
                         nonce-secret, userhash)",
                        path, k
                    ))
                }
            };
            if slot.replace(v).is_some() {
                return Err(format!(
                    "auth.require = ( \"{}\" => ( ... ) ): \"{}\" is given twice",
                    path, k
                ));
            }
        }
        let method = match method {
            None | Some("") => {
                return Err(format!(
                    "the method field is missing or blank in: auth.require = ( \"{}\" => ( \
                     ..., \"method\" => \"...\" ) )",
                    path
                ))
            }
            Some("basic") => Method::Basic,
            Some("digest") => Method::Digest,
            Some("extern") => Method::Extern,
            Some(m) => {
                return Err(format!(
                    "unknown method \"{}\" (expecting \"basic\", \"digest\" or \"extern\") in \
                     auth.require = ( \"{}\" => ( ..., \"method\" => \"...\" ) )",
                    m, path
                ))
            }
        };
        let Some(realm) = realm else {
            return Err(format!(
                "the realm field is missing in: auth.require = ( \"{}\" => ( ..., \"realm\" \
                 => \"...\" ) )",
                path
            ));
        };
        // The realm goes into a response header: a control character would corrupt it.
        if realm.chars().any(|c| c.is_control()) {
            return Err(format!(
                "auth.require = ( \"{}\" => ( ... ) ): the realm contains a control character",
                path
            ));
        }
        let rule = match require {
            None | Some("") => {
                return Err(format!(
                    "the require field is missing or blank in: auth.require = ( \"{}\" => ( \
                     ..., \"require\" => \"...\" ) )",
                    path
                ))
            }
            Some(r) => parse_require(r)?,
        };
        let algorithms = Algorithms::parse(algorithm.unwrap_or(""))?;
        let userhash = match userhash {
            Some(v) => parse_bool("userhash", v)?,
            None => false,
        };
        Ok(Require {
            path: path.to_string(),
            method,
            realm: realm.to_string(),
            algorithms,
            rule,
            nonce_secret: nonce_secret.map(|s| s.as_bytes().to_vec()),
            userhash,
        })
    }
}

/// Start-up warnings for a parsed `auth.require` list, as lighttpd gives them: entries that
/// an earlier, shorter prefix hides, and `host=`/`group=` terms that can never match.
pub fn config_warnings(list: &[Require]) -> Vec<String> {
    let mut out = Vec::new();
    for (n, r) in list.iter().enumerate() {
        if let Some(earlier) = list.iter().take(n).find(|o| r.path.starts_with(&o.path)) {
            out.push(format!(
                "auth.require path (\"{}\") will never match due to earlier match (\"{}\"); fix \
                 by sorting longer paths before shorter paths",
                r.path, earlier.path
            ));
        }
        if !r.rule.hosts.is_empty() {
            out.push(format!(
                "auth.require \"{}\": 'host' in the 'require' field is not implemented (as in \
                 lighttpd) and never matches",
                r.path
            ));
        }
        if !r.rule.groups.is_empty() {
            out.push(format!(
                "auth.require \"{}\": 'group' in the 'require' field never matches with the \
                 plain, htpasswd and htdigest backends",
                r.path
            ));
        }
    }
    out
}

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
