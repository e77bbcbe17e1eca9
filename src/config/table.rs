//! Every configuration key lightd implements, in one table: its name, the lighttpd module that
//! reads it, whether it is server-wide or per request, how its value is checked and where it
//! goes. Adding a key is one row here (plus its field in `Config` or `ReqConf`).
//!
//! Keys of lighttpd's that lightd does not implement are classified in `keys.rs`; a module
//! left out of the build (a cargo feature) falls back to that classification, so a
//! `--no-default-features` binary refuses what it cannot honour instead of ignoring it.

use std::fmt;
use std::path::PathBuf;
use std::rc::Rc;

use super::expire::Expire;
use super::mime;
use super::parser::Setting;
use super::types::{Config, ConfigError, ReqConf};
use super::urlrules::Rules;
use super::validate::{
    err, want_bool, want_int, want_list, want_log_path, want_map, want_path, want_secs, want_str,
    Pending, MAX_SECS,
};
use super::value::Value;

/// A per-request key's value, checked and converted once at load time. Conditional branches
/// keep these and apply them (cheaply) whenever a new combination of branches is merged.
#[derive(Clone, Debug)]
pub enum Val {
    Bool(bool),
    Str(String),
    /// A string where "" means "unset".
    OptStr(Option<String>),
    Path(PathBuf),
    List(Vec<String>),
    Map(Vec<(String, String)>),
    Int(i64),
    /// A compiled url.redirect / url.rewrite* list.
    Rules(Rc<Rules>),
    /// expire.url / expire.mimetypes: (prefix, rule) in config order.
    Expire(Vec<(String, Expire)>),
    /// extforward.forwarder, extforward.headers, extforward.params.
    #[cfg(feature = "extforward")]
    Forwarders(super::extforward::Forwarders),
    #[cfg(feature = "extforward")]
    ExtHeaders(super::extforward::Headers),
    #[cfg(feature = "extforward")]
    ExtParams(super::extforward::Params),
    /// evhost.path-pattern (None when empty).
    #[cfg(feature = "vhost")]
    Pattern(Option<Rc<super::vhost::Pattern>>),
    /// dir-listing.exclude, compiled.
    #[cfg(feature = "dirlisting")]
    Regexes(Vec<regex_lite::Regex>),
    /// A compiled accesslog.format.
    #[cfg(feature = "accesslog")]
    AccessLogFormat(Rc<super::accesslog::Format>),
    /// auth.require: the checked entries in config order.
    #[cfg(feature = "auth")]
    AuthRequire(Rc<[super::auth::Require]>),
    /// cgi.assign: (suffix, interpreter or None to run the file itself).
    #[cfg(feature = "cgi")]
    CgiAssign(Rc<[(String, Option<PathBuf>)]>),
    /// cgi.x-sendfile-docroot: absolute, simplified, ending in "/".
    #[cfg(feature = "cgi")]
    Paths(Rc<[PathBuf]>),
    #[cfg(feature = "cgi")]
    CgiLimits(super::gateway::CgiLimits),
    /// A `*.server` list, checked (host indices are given once the whole config is read;
    /// see `gwparse::index_hosts`).
    #[cfg(any(
        feature = "fastcgi",
        feature = "scgi",
        feature = "proxy",
        feature = "wstunnel"
    ))]
    GwServer(super::gateway::Proto, Rc<[super::gateway::GwExt]>),
    #[cfg(any(
        feature = "fastcgi",
        feature = "scgi",
        feature = "proxy",
        feature = "wstunnel"
    ))]
    Balance(super::gateway::Balance),
    #[cfg(feature = "proxy")]
    Forwarded(super::gateway::Forwarded),
    #[cfg(feature = "proxy")]
    ProxyHeader(Rc<super::gateway::ProxyHeader>),
    /// deflate.allowed-encodings: the codings lightd produces, and those only served
    /// precompressed.
    #[cfg(feature = "deflate")]
    Encodings(Vec<super::deflate::Allowed>, Vec<&'static str>),
    /// deflate.max-loadavg.
    #[cfg(feature = "deflate")]
    Float(f64),
    /// An ssl.* file (None when blank), with where it was set.
    #[cfg(feature = "tls")]
    SslPath(Option<super::ssl::PathAt>),
    /// ssl.cipher-list, mapped (None when blank).
    #[cfg(feature = "tls")]
    Suites(Option<Vec<super::ssl::Suite>>),
    /// ssl.ec-curve, mapped (None when blank).
    #[cfg(feature = "tls")]
    Groups(Option<Vec<super::ssl::Group>>),
    /// ssl.openssl.ssl-conf-cmd, mapped.
    #[cfg(feature = "tls")]
    ConfCmd(Rc<super::ssl::ConfCmd>),
}

impl Val {
    /// Only the row that made a value applies it, so a mismatch cannot happen; treat one as
    /// "unset" rather than panic.
    #[cfg(any(feature = "redirect", feature = "rewrite"))]
    fn rules(&self) -> Option<Rc<Rules>> {
        match self {
            Val::Rules(r) => Some(Rc::clone(r)),
            _ => None,
        }
    }
    #[cfg(any(feature = "alias", feature = "setenv"))]
    fn pairs(&self) -> Vec<(String, String)> {
        match self {
            Val::Map(m) => m.clone(),
            _ => Vec::new(),
        }
    }
    #[cfg(feature = "expire")]
    fn expire(&self) -> Vec<(String, Expire)> {
        match self {
            Val::Expire(v) => v.clone(),
            _ => Vec::new(),
        }
    }
    fn opt(&self) -> Option<String> {
        match self {
            Val::OptStr(v) => v.clone(),
            _ => None,
        }
    }
}

/// How a key takes effect.
pub(crate) enum Apply {
    /// Server-wide: straight into the config being built (an error inside a conditional).
    Global(fn(&mut Config, &mut Pending, &Setting) -> Result<(), ConfigError>),
    /// Per request: checked once into a [`Val`], applied to a `ReqConf` for each merge.
    Request(
        fn(&Setting) -> Result<Val, ConfigError>,
        fn(&mut ReqConf, &Val),
    ),
    /// The same, for a value that can load with a warning (lighttpd logs and goes on): the
    /// checker adds messages (without the location) to the list.
    #[cfg(any(feature = "backend", feature = "deflate", feature = "tls"))]
    RequestWarn(
        fn(&Setting, &mut Vec<String>) -> Result<Val, ConfigError>,
        fn(&mut ReqConf, &Val),
    ),
}

/// One implemented key.
pub(crate) struct Key {
    pub name: &'static str,
    /// The lighttpd module that reads it, or "core".
    pub module: &'static str,
    pub apply: Apply,
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl Key {
    pub(crate) fn is_global(&self) -> bool {
        matches!(self.apply, Apply::Global(_))
    }
}

/// One per-request setting as written in a block, already checked.
#[derive(Clone, Debug)]
pub struct ReqSetting {
    pub(crate) key: &'static Key,
    pub val: Val,
    /// The value in config syntax, for `-p`.
    pub text: String,
}

impl ReqSetting {
    pub fn name(&self) -> &'static str {
        self.key.name
    }

    pub(crate) fn apply(&self, conf: &mut ReqConf) {
        match self.key.apply {
            Apply::Request(_, apply) => apply(conf, &self.val),
            #[cfg(any(feature = "backend", feature = "deflate", feature = "tls"))]
            Apply::RequestWarn(_, apply) => apply(conf, &self.val),
            Apply::Global(_) => {}
        }
    }
}

// Macros rather than const fns: a const fn taking `fn(&mut ...)` pointers needs Rust 1.83,
// and lightd builds with 1.71.
macro_rules! global {
    ($name:expr, $f:expr $(,)?) => {
        Key {
            name: $name,
            module: "core",
            apply: Apply::Global($f),
        }
    };
}

macro_rules! request {
    ($name:expr, $module:expr, $parse:expr, $apply:expr $(,)?) => {
        Key {
            name: $name,
            module: $module,
            apply: Apply::Request($parse, $apply),
        }
    };
}

#[cfg(any(feature = "backend", feature = "deflate", feature = "tls"))]
macro_rules! request_warn {
    ($name:expr, $module:expr, $parse:expr, $apply:expr $(,)?) => {
        Key {
            name: $name,
            module: $module,
            apply: Apply::RequestWarn($parse, $apply),
        }
    };
}

fn bool_val(s: &Setting) -> Result<Val, ConfigError> {
    want_bool(s).map(Val::Bool)
}

fn list_val(s: &Setting) -> Result<Val, ConfigError> {
    want_list(s).map(Val::List)
}

fn str_val(s: &Setting) -> Result<Val, ConfigError> {
    want_str(s).map(|v| Val::Str(v.to_string()))
}

impl Val {
    fn bool(&self) -> bool {
        matches!(self, Val::Bool(true))
    }
    fn list(&self) -> Vec<String> {
        match self {
            Val::List(v) => v.clone(),
            _ => Vec::new(),
        }
    }
    fn string(&self) -> String {
        match self {
            Val::Str(v) => v.clone(),
            _ => String::new(),
        }
    }
}

/// The table, in sections: the core, then one per optional module (empty when the module's
/// cargo feature is off, so its code is not linked in). Order does not matter; names are
/// unique (a test checks).
pub(crate) const KEYS: [&[Key]; SECTIONS] = [
    CORE_KEYS,
    ACCESS_KEYS,
    ALIAS_KEYS,
    REDIRECT_KEYS,
    REWRITE_KEYS,
    SETENV_KEYS,
    EXPIRE_KEYS,
    EXTFORWARD_KEYS,
    VHOST_KEYS,
    USERDIR_KEYS,
    DIRLISTING_KEYS,
    STATUS_KEYS,
    ACCESSLOG_KEYS,
    AUTH_KEYS,
    BACKEND_KEYS,
    CGI_KEYS,
    FASTCGI_KEYS,
    SCGI_KEYS,
    PROXY_KEYS,
    WSTUNNEL_KEYS,
    #[cfg(feature = "deflate")]
    DEFLATE_KEYS,
    #[cfg(feature = "tls")]
    SSL_KEYS,
];

// mod_deflate's and mod_openssl's sections are left out, not empty, in a build without them:
// that build then compiles to exactly what it did before the modules existed (800 KiB budget).
const SECTIONS: usize = 20 + cfg!(feature = "deflate") as usize + cfg!(feature = "tls") as usize;

/// Every implemented key of this build.
pub(crate) fn keys() -> impl Iterator<Item = &'static Key> {
    KEYS.iter().flat_map(|t| t.iter())
}

const CORE_KEYS: &[Key] = &[
    // Server-wide.
    global!("server.bind", |_, p, s| {
        let v = want_str(s)?;
        if !v.is_empty() {
            let ip = super::cond::parse_host(v).map_err(|m| err(s, m))?;
            p.bind = Some((ip, s.loc.clone()));
        }
        Ok(())
    }),
    global!("server.port", |_, p, s| {
        // 0 asks the kernel for a free port (used by tests).
        let port = want_int(s, 0, 65535)?;
        p.port = Some((u16::try_from(port).unwrap_or(80), s.loc.clone()));
        Ok(())
    }),
    global!("server.modules", |_, p, s| {
        p.modules = Some((want_list(s)?, s.loc.clone(), s.item_locs.clone()));
        Ok(())
    }),
    global!("server.pid-file", |c, _, s| {
        c.pid_file = want_path(s)?;
        Ok(())
    }),
    global!("server.control-socket", |c, _, s| {
        c.control_socket = want_path(s)?;
        Ok(())
    }),
    global!("server.max-worker", |c, _, s| {
        c.max_worker = want_int(s, 0, 64)? as u32;
        Ok(())
    }),
    global!("server.errorlog", |c, _, s| {
        c.errorlog = want_log_path(s, "error logs")?.map(PathBuf::from);
        Ok(())
    }),
    global!("server.username", |c, _, s| {
        c.username = Some(want_str(s)?.to_string()).filter(|v| !v.is_empty());
        Ok(())
    }),
    global!("server.groupname", |c, _, s| {
        c.groupname = Some(want_str(s)?.to_string()).filter(|v| !v.is_empty());
        Ok(())
    }),
    global!("server.max-connections", |c, _, s| {
        c.max_connections = usize::try_from(want_int(s, 1, 1 << 20)?).unwrap_or(1024);
        Ok(())
    }),
    global!("server.max-fds", |c, _, s| {
        c.max_fds = Some(want_int(s, 1, MAX_SECS)?.unsigned_abs());
        Ok(())
    }),
    global!("server.max-keep-alive-requests", |c, _, s| {
        c.max_keep_alive_requests =
            u32::try_from(want_int(s, 0, i64::from(u32::MAX))?).unwrap_or(1000);
        Ok(())
    }),
    global!("server.max-keep-alive-idle", |c, _, s| {
        c.max_keep_alive_idle = want_secs(s, 0)?;
        Ok(())
    }),
    global!("server.max-read-idle", |c, _, s| {
        c.max_read_idle = want_secs(s, 1)?;
        Ok(())
    }),
    global!("server.max-write-idle", |c, _, s| {
        c.max_write_idle = want_secs(s, 1)?;
        Ok(())
    }),
    global!("server.max-request-size", |c, _, s| {
        c.max_request_size = want_int(s, 0, i64::MAX / 1024)?.unsigned_abs() * 1024;
        Ok(())
    }),
    global!("server.max-request-field-size", |c, _, s| {
        c.max_request_field_size = usize::try_from(want_int(s, 256, 65535)?).unwrap_or(8192);
        Ok(())
    }),
    global!("server.graceful-shutdown-timeout", |c, p, s| {
        c.graceful_shutdown_timeout = want_secs(s, 0)?;
        p.graceful_explicit = true;
        Ok(())
    }),
    global!("server.max-request-head-time", |c, _, s| {
        c.max_request_head_time = want_secs(s, 1)?;
        Ok(())
    }),
    global!("server.systemd-socket-activation", |c, _, s| {
        c.socket_activation = want_bool(s)?;
        Ok(())
    }),
    global!("server.feature-flags", feature_flags),
    // Per request.
    request!(
        "server.document-root",
        "core",
        |s| match want_path(s)? {
            Some(p) => Ok(Val::Path(p)),
            None => Err(err(s, "must not be empty")),
        },
        |c, v| {
            if let Val::Path(p) = v {
                c.document_root = Some(p.clone());
            }
        },
    ),
    request!("index-file.names", "mod_indexfile", list_val, |c, v| {
        c.index_files = v.list()
    }),
    request!("server.indexfiles", "mod_indexfile", list_val, |c, v| {
        c.index_files = v.list()
    }),
    request!("server.follow-symlink", "core", bool_val, |c, v| {
        c.follow_symlink = v.bool()
    }),
    request!(
        "server.force-lowercase-filenames",
        "core",
        bool_val,
        |c, v| c.force_lowercase_filenames = v.bool(),
    ),
    request!("server.range-requests", "core", bool_val, |c, v| {
        c.range_requests = v.bool()
    }),
    request!("static-file.etags", "mod_staticfile", bool_val, |c, v| {
        c.etags = v.bool()
    }),
    request!(
        "static-file.disable-pathinfo",
        "mod_staticfile",
        bool_val,
        |c, v| c.static_pathinfo = !v.bool(),
    ),
    request!(
        "static-file.exclude-extensions",
        "mod_staticfile",
        list_val,
        |c, v| c.exclude_extensions = v.list(),
    ),
    request!(
        "dir-listing.activate",
        "mod_dirlisting",
        bool_val,
        |c, v| c.dir_listing = v.bool(),
    ),
    request!("server.dir-listing", "mod_dirlisting", bool_val, |c, v| {
        c.dir_listing = v.bool()
    }),
    request!(
        "mimetype.assign",
        "core",
        |s| Ok(Val::Map(mime::sorted(want_map(s)?))),
        |c, v| {
            if let Val::Map(m) = v {
                c.mime = m.clone();
            }
        },
    ),
    request!("server.tag", "core", str_val, |c, v| {
        c.server_tag = v.string()
    }),
    request!("server.error-handler", "core", url_path_val, |c, v| {
        c.error_handler = v.opt()
    }),
    request!("server.error-handler-404", "core", url_path_val, |c, v| {
        c.error_handler_404 = v.opt()
    }),
    request!(
        "server.errorfile-prefix",
        "core",
        |s| {
            Ok(Val::OptStr(
                want_path(s)?.map(|p| p.to_string_lossy().into_owned()),
            ))
        },
        |c, v| c.errorfile_prefix = v.opt(),
    ),
];

/// A URL path for an internal redirect (error handlers): absolute, or empty for "none".
fn url_path_val(s: &Setting) -> Result<Val, ConfigError> {
    let v = want_str(s)?;
    if v.is_empty() {
        return Ok(Val::OptStr(None));
    }
    if !v.starts_with('/') || v.bytes().any(|b| b.is_ascii_control()) {
        return Err(err(
            s,
            format!(
                "expected a URL path starting with '/', got \"{}\"",
                v.escape_debug()
            ),
        ));
    }
    Ok(Val::OptStr(Some(v.to_string())))
}

/// A map of header names to values (mod_setenv): names must be tokens and values must not
/// hold line breaks, or the config could inject header lines.
#[cfg(feature = "setenv")]
fn header_map_val(s: &Setting) -> Result<Val, ConfigError> {
    let map = want_map(s)?;
    for (k, v) in &map {
        if k.is_empty() || !k.bytes().all(crate::http::request::is_tchar) {
            return Err(err(
                s,
                format!("\"{}\" is not a valid header name", k.escape_debug()),
            ));
        }
        if v.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
            return Err(err(
                s,
                format!("the value for \"{k}\" contains a line break"),
            ));
        }
    }
    Ok(Val::Map(map))
}

/// A map of environment variable names to values (mod_setenv).
#[cfg(feature = "setenv")]
fn env_map_val(s: &Setting) -> Result<Val, ConfigError> {
    let map = want_map(s)?;
    for (k, v) in &map {
        if k.is_empty() || k.contains('=') || k.contains('\0') || v.contains('\0') {
            return Err(err(
                s,
                format!(
                    "\"{}\" is not a valid environment variable",
                    k.escape_debug()
                ),
            ));
        }
    }
    Ok(Val::Map(map))
}

#[cfg(any(feature = "redirect", feature = "rewrite"))]
fn rules_val(s: &Setting) -> Result<Val, ConfigError> {
    let map = want_map(s)?;
    super::urlrules::compile(&map)
        .map(|r| Val::Rules(Rc::new(r)))
        .map_err(|e| err(s, e))
}

#[cfg(feature = "expire")]
fn expire_val(s: &Setting, mimetypes: bool) -> Result<Val, ConfigError> {
    let map = want_map(s)?;
    let mut out = Vec::with_capacity(map.len());
    for (k, v) in map {
        let rule = super::expire::parse(&v).map_err(|e| err(s, e))?;
        let key = if mimetypes {
            super::expire::mimetype_key(&k).to_string()
        } else {
            k
        };
        out.push((key, rule));
    }
    if mimetypes {
        super::expire::fix_javascript(&mut out);
    }
    Ok(Val::Expire(out))
}

/// One of the six url.rewrite* keys: a later block's rewrite keys replace all of an earlier
/// block's (one list per block, as lighttpd builds them).
#[cfg(feature = "rewrite")]
fn apply_rewrite(c: &mut ReqConf, kind: super::urlrules::RewriteKind, v: &Val) {
    if c.rewrite_branch != c.branch || c.rewrite.is_empty() {
        c.rewrite.clear();
        c.rewrite_branch = c.branch;
    }
    c.rewrite.retain(|(k, _)| *k != kind);
    if let Some(r) = v.rules() {
        c.rewrite.push((kind, r));
    }
    // lighttpd's order within a block, whatever order the keys were written in.
    c.rewrite.sort_by_key(|(k, _)| k.rank());
}

#[cfg(feature = "access")]
const ACCESS_KEYS: &[Key] = &[
    request!("url.access-deny", "mod_access", list_val, |c, v| {
        c.access_deny = v.list()
    }),
    request!("url.access-allow", "mod_access", list_val, |c, v| {
        c.access_allow = v.list()
    }),
];
#[cfg(not(feature = "access"))]
const ACCESS_KEYS: &[Key] = &[];

#[cfg(feature = "alias")]
const ALIAS_KEYS: &[Key] = &[request!(
    "alias.url",
    "mod_alias",
    |s| {
        let mut map = want_map(s)?;
        for (k, v) in &map {
            if k.is_empty() || v.is_empty() {
                return Err(err(s, "URL prefixes and directories must not be empty"));
            }
        }
        // The longest prefix wins; a stable sort keeps config order between equals.
        map.sort_by_key(|(k, _)| std::cmp::Reverse(k.len()));
        Ok(Val::Map(map))
    },
    |c, v| c.alias = v.pairs(),
)];
#[cfg(not(feature = "alias"))]
const ALIAS_KEYS: &[Key] = &[];

#[cfg(feature = "redirect")]
const REDIRECT_KEYS: &[Key] = &[
    request!("url.redirect", "mod_redirect", rules_val, |c, v| {
        c.redirect = v.rules().map(|r| (r, c.branch))
    }),
    request!(
        "url.redirect-code",
        "mod_redirect",
        |s| want_int(s, 0, 999).map(Val::Int),
        |c, v| {
            if let Val::Int(n) = v {
                c.redirect_code = Some(*n);
            }
        },
    ),
];
#[cfg(not(feature = "redirect"))]
const REDIRECT_KEYS: &[Key] = &[];

#[cfg(feature = "rewrite")]
use super::urlrules::RewriteKind;
#[cfg(feature = "rewrite")]
const REWRITE_KEYS: &[Key] = &[
    request!("url.rewrite-once", "mod_rewrite", rules_val, |c, v| {
        apply_rewrite(c, RewriteKind::Once, v)
    }),
    request!("url.rewrite-final", "mod_rewrite", rules_val, |c, v| {
        apply_rewrite(c, RewriteKind::Final, v)
    }),
    request!("url.rewrite", "mod_rewrite", rules_val, |c, v| {
        apply_rewrite(c, RewriteKind::Rewrite, v)
    }),
    request!("url.rewrite-repeat", "mod_rewrite", rules_val, |c, v| {
        apply_rewrite(c, RewriteKind::Repeat, v)
    }),
    request!(
        "url.rewrite-if-not-file",
        "mod_rewrite",
        rules_val,
        |c, v| apply_rewrite(c, RewriteKind::IfNotFile, v),
    ),
    request!(
        "url.rewrite-repeat-if-not-file",
        "mod_rewrite",
        rules_val,
        |c, v| apply_rewrite(c, RewriteKind::RepeatIfNotFile, v),
    ),
];
#[cfg(not(feature = "rewrite"))]
const REWRITE_KEYS: &[Key] = &[];

#[cfg(feature = "setenv")]
const SETENV_KEYS: &[Key] = &[
    request!(
        "setenv.add-request-header",
        "mod_setenv",
        header_map_val,
        |c, v| c.setenv.add_request_header = v.pairs(),
    ),
    request!(
        "setenv.set-request-header",
        "mod_setenv",
        header_map_val,
        |c, v| c.setenv.set_request_header = v.pairs(),
    ),
    request!(
        "setenv.add-response-header",
        "mod_setenv",
        header_map_val,
        |c, v| c.setenv.add_response_header = v.pairs(),
    ),
    request!(
        "setenv.set-response-header",
        "mod_setenv",
        header_map_val,
        |c, v| c.setenv.set_response_header = v.pairs(),
    ),
    request!(
        "setenv.add-environment",
        "mod_setenv",
        env_map_val,
        |c, v| c.setenv.add_environment = v.pairs(),
    ),
    request!(
        "setenv.set-environment",
        "mod_setenv",
        env_map_val,
        |c, v| c.setenv.set_environment = v.pairs(),
    ),
];
#[cfg(not(feature = "setenv"))]
const SETENV_KEYS: &[Key] = &[];

#[cfg(feature = "expire")]
const EXPIRE_KEYS: &[Key] = &[
    request!(
        "expire.url",
        "mod_expire",
        |s| expire_val(s, false),
        |c, v| c.expire_url = v.expire(),
    ),
    request!(
        "expire.mimetypes",
        "mod_expire",
        |s| expire_val(s, true),
        |c, v| c.expire_mime = v.expire(),
    ),
];
#[cfg(not(feature = "expire"))]
const EXPIRE_KEYS: &[Key] = &[];

#[cfg(feature = "extforward")]
const EXTFORWARD_KEYS: &[Key] = &[
    request!(
        "extforward.forwarder",
        "mod_extforward",
        |s| {
            super::extforward::Forwarders::parse(&want_map(s)?)
                .map(Val::Forwarders)
                .map_err(|e| err(s, e))
        },
        |c, v| {
            if let Val::Forwarders(f) = v {
                c.extforward.forwarders = f.clone();
            }
        },
    ),
    request!(
        "extforward.headers",
        "mod_extforward",
        |s| {
            super::extforward::Headers::parse(&want_list(s)?)
                .map(Val::ExtHeaders)
                .map_err(|e| err(s, e))
        },
        |c, v| {
            if let Val::ExtHeaders(h) = v {
                c.extforward.headers = h.clone();
            }
        },
    ),
    request!(
        "extforward.params",
        "mod_extforward",
        |s| {
            super::extforward::Params::parse(&want_map(s)?)
                .map(Val::ExtParams)
                .map_err(|e| err(s, e))
        },
        |c, v| {
            if let Val::ExtParams(p) = v {
                c.extforward.params = *p;
            }
        },
    ),
];
#[cfg(not(feature = "extforward"))]
const EXTFORWARD_KEYS: &[Key] = &[];

/// simple-vhost.debug is a level in lighttpd (a short); any non-zero level logs the misses.
#[cfg(feature = "vhost")]
fn debug_val(s: &Setting) -> Result<Val, ConfigError> {
    match s.value {
        Value::Int(_) => want_int(s, 0, 65535).map(|n| Val::Bool(n != 0)),
        _ => bool_val(s),
    }
}

#[cfg(feature = "vhost")]
const VHOST_KEYS: &[Key] = &[
    request!(
        "simple-vhost.server-root",
        "mod_simple_vhost",
        str_val,
        |c, v| {
            c.vhost.server_root = v.string();
            c.vhost.rebuild();
        },
    ),
    request!(
        "simple-vhost.default-host",
        "mod_simple_vhost",
        str_val,
        |c, v| {
            c.vhost.default_host = v.string();
            c.vhost.rebuild();
        },
    ),
    request!(
        "simple-vhost.document-root",
        "mod_simple_vhost",
        str_val,
        |c, v| {
            c.vhost.document_root = v.string();
            c.vhost.rebuild();
        },
    ),
    request!(
        "simple-vhost.debug",
        "mod_simple_vhost",
        debug_val,
        |c, v| {
            c.vhost.debug = v.bool();
            c.vhost.rebuild();
        },
    ),
    request!(
        "evhost.path-pattern",
        "mod_evhost",
        |s| {
            super::vhost::Pattern::parse(want_str(s)?)
                .map(|p| Val::Pattern(p.map(Rc::new)))
                .map_err(|e| err(s, e))
        },
        |c, v| {
            if let Val::Pattern(p) = v {
                c.vhost.evhost = p.clone();
            }
        },
    ),
];
#[cfg(not(feature = "vhost"))]
const VHOST_KEYS: &[Key] = &[];

#[cfg(feature = "userdir")]
const USERDIR_KEYS: &[Key] = &[
    request!("userdir.path", "mod_userdir", str_val, |c, v| {
        c.userdir.path = Some(v.string())
    }),
    request!("userdir.exclude-user", "mod_userdir", list_val, |c, v| {
        c.userdir.exclude_user = v.list()
    }),
    request!("userdir.include-user", "mod_userdir", list_val, |c, v| {
        c.userdir.include_user = Some(v.list())
    }),
    request!("userdir.basepath", "mod_userdir", str_val, |c, v| {
        c.userdir.basepath = Some(v.string()).filter(|b| !b.is_empty())
    }),
    request!("userdir.letterhomes", "mod_userdir", bool_val, |c, v| {
        c.userdir.letterhomes = v.bool()
    }),
    request!("userdir.active", "mod_userdir", bool_val, |c, v| {
        c.userdir.active = v.bool()
    }),
];
#[cfg(not(feature = "userdir"))]
const USERDIR_KEYS: &[Key] = &[];
/// A string where "" means unset.
#[cfg(any(feature = "dirlisting", feature = "status"))]
fn opt_str_val(s: &Setting) -> Result<Val, ConfigError> {
    let v = want_str(s)?;
    Ok(Val::OptStr((!v.is_empty()).then(|| v.to_string())))
}

/// One dir-listing option: the options are shared, so a block that sets one copies them.
#[cfg(feature = "dirlisting")]
fn listing(c: &mut ReqConf) -> &mut super::dirlisting::ListingOpts {
    Rc::make_mut(&mut c.listing)
}

/// dir-listing.show-readme / show-header: "enable" is the default file name.
#[cfg(feature = "dirlisting")]
fn include_val(s: &Setting, default_name: &str) -> Result<Val, ConfigError> {
    let v = want_str(s)?;
    if v.contains('\0') {
        return Err(err(s, "must not contain NUL"));
    }
    Ok(Val::OptStr(
        super::dirlisting::ListingOpts::include_setting(v, default_name),
    ))
}

#[cfg(feature = "dirlisting")]
const DIRLISTING_KEYS: &[Key] = &[
    request!(
        "dir-listing.hide-dotfiles",
        "mod_dirlisting",
        bool_val,
        |c, v| listing(c).hide_dotfiles = v.bool(),
    ),
    request!(
        "dir-listing.exclude",
        "mod_dirlisting",
        |s| {
            let list = want_list(s)?;
            super::dirlisting::ListingOpts::compile_excludes(&list)
                .map(Val::Regexes)
                // The message names the key already; err() adds it with the line.
                .map_err(|e| err(s, e.trim_start_matches("dir-listing.exclude: ")))
        },
        |c, v| {
            if let Val::Regexes(r) = v {
                listing(c).exclude = r.clone();
            }
        },
    ),
    request!(
        "dir-listing.encoding",
        "mod_dirlisting",
        opt_str_val,
        |c, v| listing(c).encoding = v.opt(),
    ),
    request!(
        "dir-listing.external-css",
        "mod_dirlisting",
        opt_str_val,
        |c, v| listing(c).external_css = v.opt(),
    ),
    request!(
        "dir-listing.external-js",
        "mod_dirlisting",
        opt_str_val,
        |c, v| listing(c).external_js = v.opt(),
    ),
    request!(
        "dir-listing.show-readme",
        "mod_dirlisting",
        |s| include_val(s, "README.txt"),
        |c, v| listing(c).show_readme = v.opt(),
    ),
    request!(
        "dir-listing.hide-readme-file",
        "mod_dirlisting",
        bool_val,
        |c, v| listing(c).hide_readme_file = v.bool(),
    ),
    request!(
        "dir-listing.encode-readme",
        "mod_dirlisting",
        bool_val,
        |c, v| listing(c).encode_readme = v.bool(),
    ),
    request!(
        "dir-listing.show-header",
        "mod_dirlisting",
        |s| include_val(s, "HEADER.txt"),
        |c, v| listing(c).show_header = v.opt(),
    ),
    request!(
        "dir-listing.hide-header-file",
        "mod_dirlisting",
        bool_val,
        |c, v| listing(c).hide_header_file = v.bool(),
    ),
    request!(
        "dir-listing.encode-header",
        "mod_dirlisting",
        bool_val,
        |c, v| listing(c).encode_header = v.bool(),
    ),
    request!(
        "dir-listing.set-footer",
        "mod_dirlisting",
        opt_str_val,
        |c, v| listing(c).set_footer = v.opt(),
    ),
    request!(
        "dir-listing.auto-layout",
        "mod_dirlisting",
        bool_val,
        |c, v| listing(c).auto_layout = v.bool(),
    ),
    request!("dir-listing.sort", "mod_dirlisting", bool_val, |c, v| {
        listing(c).sort = v.bool()
    }),
];
#[cfg(not(feature = "dirlisting"))]
const DIRLISTING_KEYS: &[Key] = &[];

/// A status page URL: a path ("" for none).
#[cfg(feature = "status")]
fn status_url_val(s: &Setting) -> Result<Val, ConfigError> {
    let v = want_str(s)?;
    if !v.is_empty() && !v.starts_with('/') {
        return Err(err(
            s,
            format!(
                "expected a URL path starting with '/', got \"{}\"",
                v.escape_debug()
            ),
        ));
    }
    opt_str_val(s)
}

#[cfg(feature = "status")]
const STATUS_KEYS: &[Key] = &[
    request!("status.status-url", "mod_status", status_url_val, |c, v| {
        c.status.status_url = v.opt()
    }),
    request!(
        "status.statistics-url",
        "mod_status",
        status_url_val,
        |c, v| c.status.statistics_url = v.opt(),
    ),
    request!("status.config-url", "mod_status", status_url_val, |c, v| {
        c.status.config_url = v.opt()
    }),
    request!("status.enable-sort", "mod_status", bool_val, |c, v| {
        c.status.enable_sort = v.bool()
    }),
];
#[cfg(not(feature = "status"))]
const STATUS_KEYS: &[Key] = &[];
#[cfg(feature = "accesslog")]
const ACCESSLOG_KEYS: &[Key] = &[
    request!(
        "accesslog.filename",
        "mod_accesslog",
        |s| want_log_path(s, "access logs").map(Val::OptStr),
        |c, v| c.accesslog.filename = v.opt(),
    ),
    request!(
        "accesslog.format",
        "mod_accesslog",
        // Compiled here, so a format lighttpd refuses is an error with file and line.
        |s| {
            super::accesslog::compile(want_str(s)?)
                .map(|f| Val::AccessLogFormat(Rc::new(f)))
                // The messages name the key already; `err` adds it with the location.
                .map_err(|e| err(s, e.strip_prefix("accesslog.format ").unwrap_or(&e)))
        },
        |c, v| {
            if let Val::AccessLogFormat(f) = v {
                c.accesslog.format = Rc::clone(f);
            }
        },
    ),
    request!("accesslog.escaping", "mod_accesslog", str_val, |c, v| {
        c.accesslog.escaping = super::accesslog::Escaping::from_config(&v.string())
    }),
];
#[cfg(not(feature = "accesslog"))]
const ACCESSLOG_KEYS: &[Key] = &[];

/// mod_auth's keys, and mod_authn_file's (the file backends; lighttpd splits them into a
/// module of their own, which server.modules may name).
#[cfg(feature = "auth")]
const AUTH_KEYS: &[Key] = &[
    request!(
        "auth.backend",
        "mod_auth",
        |s| {
            let v = want_str(s)?;
            super::auth::BackendKind::parse(v)
                .map_err(|e| err(s, e.strip_prefix("auth.backend ").unwrap_or(&e)))?;
            Ok(Val::Str(v.to_string()))
        },
        |c, v| {
            // Checked when parsed: an error here cannot happen.
            c.auth.settings.backend = super::auth::BackendKind::parse(&v.string()).ok().flatten()
        },
    ),
    request!(
        "auth.backend.plain.userfile",
        "mod_authn_file",
        str_val,
        |c, v| {
            c.auth
                .settings
                .files
                .set("auth.backend.plain.userfile", &v.string());
        },
    ),
    request!(
        "auth.backend.plain.groupfile",
        "mod_authn_file",
        str_val,
        |c, v| {
            c.auth
                .settings
                .files
                .set("auth.backend.plain.groupfile", &v.string());
        },
    ),
    request!(
        "auth.backend.htpasswd.userfile",
        "mod_authn_file",
        str_val,
        |c, v| {
            c.auth
                .settings
                .files
                .set("auth.backend.htpasswd.userfile", &v.string());
        },
    ),
    request!(
        "auth.backend.htdigest.userfile",
        "mod_authn_file",
        str_val,
        |c, v| {
            c.auth
                .settings
                .files
                .set("auth.backend.htdigest.userfile", &v.string());
        },
    ),
    request!(
        "auth.require",
        "mod_auth",
        |s| {
            super::auth::parse_require_list(&s.value)
                .map(|l| Val::AuthRequire(l.into()))
                // Most messages name the key already.
                .map_err(|e| match e.starts_with("auth.require") {
                    true => ConfigError {
                        loc: Some(s.loc.clone()),
                        msg: e,
                    },
                    false => err(s, e),
                })
        },
        |c, v| {
            if let Val::AuthRequire(l) = v {
                c.auth.require = Rc::clone(l);
            }
        },
    ),
];
#[cfg(not(feature = "auth"))]
const AUTH_KEYS: &[Key] = &[];

/// The core keys about request and response bodies, which only a build with backends uses
/// (without one they are ignored with a warning: every body is read whole and discarded).
#[cfg(feature = "backend")]
const BACKEND_KEYS: &[Key] = &[
    global!("server.upload-dirs", |c, _, s| {
        c.upload_dirs = super::gwparse::upload_dirs(s)?;
        Ok(())
    }),
    global!("server.upload-temp-file-size", |c, _, s| {
        c.upload_temp_file_size = super::gwparse::upload_temp_file_size(s)?;
        Ok(())
    }),
    request_warn!(
        "server.stream-request-body",
        "core",
        |s, w| super::gwparse::stream_mode(s, w).map(Val::Int),
        |c, v| {
            if let Val::Int(n) = v {
                c.stream_request_body = u8::try_from(*n).unwrap_or(0);
            }
        },
    ),
    request_warn!(
        "server.stream-response-body",
        "core",
        |s, w| super::gwparse::stream_mode(s, w).map(Val::Int),
        |c, v| {
            if let Val::Int(n) = v {
                c.stream_response_body = u8::try_from(*n).unwrap_or(0);
            }
        },
    ),
];
#[cfg(not(feature = "backend"))]
const BACKEND_KEYS: &[Key] = &[];

#[cfg(feature = "cgi")]
const CGI_KEYS: &[Key] = &[
    request!(
        "cgi.assign",
        "mod_cgi",
        |s| super::gwparse::assign(s).map(|a| Val::CgiAssign(a.into())),
        |c, v| {
            if let Val::CgiAssign(a) = v {
                c.cgi.assign = Rc::clone(a);
            }
        },
    ),
    request!("cgi.execute-x-only", "mod_cgi", bool_val, |c, v| {
        c.cgi.execute_x_only = v.bool()
    }),
    request!("cgi.x-sendfile", "mod_cgi", bool_val, |c, v| {
        c.cgi.x_sendfile = v.bool()
    }),
    request!(
        "cgi.x-sendfile-docroot",
        "mod_cgi",
        |s| super::gwparse::x_sendfile_docroot(s).map(|d| Val::Paths(d.into())),
        |c, v| {
            if let Val::Paths(d) = v {
                c.cgi.x_sendfile_docroot = Rc::clone(d);
            }
        },
    ),
    request!("cgi.local-redir", "mod_cgi", bool_val, |c, v| {
        c.cgi.local_redir = v.bool()
    }),
    request!("cgi.upgrade", "mod_cgi", bool_val, |c, v| {
        c.cgi.upgrade = v.bool()
    }),
    request_warn!(
        "cgi.limits",
        "mod_cgi",
        |s, w| super::gwparse::limits(s, w).map(Val::CgiLimits),
        |c, v| {
            if let Val::CgiLimits(l) = v {
                c.cgi.limits = *l;
            }
        },
    ),
];
#[cfg(not(feature = "cgi"))]
const CGI_KEYS: &[Key] = &[];

/// `*.debug`: lighttpd's level, a non-negative integer.
#[cfg(any(
    feature = "fastcgi",
    feature = "scgi",
    feature = "proxy",
    feature = "wstunnel"
))]
fn gw_debug_val(s: &Setting) -> Result<Val, ConfigError> {
    want_int(s, 0, i64::from(u32::MAX)).map(Val::Int)
}

#[cfg(any(
    feature = "fastcgi",
    feature = "scgi",
    feature = "proxy",
    feature = "wstunnel"
))]
fn map_val(s: &Setting) -> Result<Val, ConfigError> {
    want_map(s).map(Val::Map)
}

/// The keys every gateway module has (`<prefix>.server`, `.balance`, `.debug`,
/// `.map-extensions`), setting `ReqConf::<field>`, followed by the module's own rows.
#[cfg(any(
    feature = "fastcgi",
    feature = "scgi",
    feature = "proxy",
    feature = "wstunnel"
))]
macro_rules! gw_keys {
    ($prefix:literal, $module:literal, $proto:ident, $field:ident $(, $extra:expr)* $(,)?) => {
        &[
            request_warn!(
                concat!($prefix, ".server"),
                $module,
                |s, w| super::gwparse::server(s, super::gateway::Proto::$proto, w),
                |c, v| {
                    if let Val::GwServer(_, e) = v {
                        c.$field.exts = Rc::clone(e);
                    }
                },
            ),
            request_warn!(
                concat!($prefix, ".balance"),
                $module,
                super::gwparse::balance,
                |c, v| {
                    if let Val::Balance(b) = v {
                        c.$field.balance = *b;
                    }
                },
            ),
            request!(concat!($prefix, ".debug"), $module, gw_debug_val, |c, v| {
                if let Val::Int(n) = v {
                    c.$field.debug = *n;
                }
            }),
            request!(
                concat!($prefix, ".map-extensions"),
                $module,
                map_val,
                |c, v| {
                    if let Val::Map(m) = v {
                        c.$field.map_extensions = m.clone();
                    }
                },
            ),
            $($extra,)*
        ]
    };
}

#[cfg(feature = "fastcgi")]
const FASTCGI_KEYS: &[Key] = gw_keys!("fastcgi", "mod_fastcgi", FastCgi, fastcgi);
#[cfg(not(feature = "fastcgi"))]
const FASTCGI_KEYS: &[Key] = &[];

#[cfg(feature = "scgi")]
const SCGI_KEYS: &[Key] = gw_keys!(
    "scgi",
    "mod_scgi",
    Scgi,
    scgi,
    // Only "scgi" loads, so there is nothing to set.
    request!(
        "scgi.protocol",
        "mod_scgi",
        super::gwparse::scgi_protocol,
        |_, _| {}
    ),
);
#[cfg(not(feature = "scgi"))]
const SCGI_KEYS: &[Key] = &[];

#[cfg(feature = "proxy")]
const PROXY_KEYS: &[Key] = gw_keys!(
    "proxy",
    "mod_proxy",
    Proxy,
    proxy,
    request!(
        "proxy.forwarded",
        "mod_proxy",
        super::gwparse::forwarded,
        |c, v| {
            if let Val::Forwarded(f) = v {
                c.proxy.proxy_forwarded = *f;
            }
        }
    ),
    request!(
        "proxy.header",
        "mod_proxy",
        super::gwparse::proxy_header,
        |c, v| {
            if let Val::ProxyHeader(h) = v {
                c.proxy.proxy_header = Rc::clone(h);
            }
        }
    ),
    request!("proxy.replace-http-host", "mod_proxy", bool_val, |c, v| {
        c.proxy.replace_http_host = v.bool()
    }),
);
#[cfg(not(feature = "proxy"))]
const PROXY_KEYS: &[Key] = &[];

#[cfg(feature = "wstunnel")]
const WSTUNNEL_KEYS: &[Key] = gw_keys!(
    "wstunnel",
    "mod_wstunnel",
    WsTunnel,
    wstunnel,
    // Anything but "binary" (in any case) is text, as in lighttpd.
    request!(
        "wstunnel.frame-type",
        "mod_wstunnel",
        |s| Ok(Val::Bool(want_str(s)?.eq_ignore_ascii_case("binary"))),
        |c, v| c.wstunnel.ws_binary = v.bool()
    ),
    request!(
        "wstunnel.origins",
        "mod_wstunnel",
        super::gwparse::origins,
        |c, v| c.wstunnel.ws_origins = v.list()
    ),
    request!(
        "wstunnel.ping-interval",
        "mod_wstunnel",
        |s| want_int(s, 0, 65535).map(Val::Int),
        |c, v| {
            if let Val::Int(n) = v {
                c.wstunnel.ws_ping_interval = u32::try_from(*n).unwrap_or(0);
            }
        }
    ),
);
#[cfg(not(feature = "wstunnel"))]
const WSTUNNEL_KEYS: &[Key] = &[];

/// mod_deflate's settings: a block that sets one copies the shared struct.
#[cfg(feature = "deflate")]
fn deflate(c: &mut ReqConf) -> &mut super::deflate::DeflateConf {
    Rc::make_mut(&mut c.deflate)
}

/// lighttpd's "short" keys: 0 to 65535 (65536 is taken as 65535), also as a decimal string.
#[cfg(feature = "deflate")]
fn short_val(s: &Setting) -> Result<Val, ConfigError> {
    want_int(s, 0, 65536).map(|n| Val::Int(n.min(65535)))
}

/// lighttpd's "int" keys: 0 to 2^32-1.
#[cfg(feature = "deflate")]
fn uint_val(s: &Setting) -> Result<Val, ConfigError> {
    want_int(s, 0, i64::from(u32::MAX)).map(Val::Int)
}

#[cfg(feature = "deflate")]
fn deflate_mimetypes_val(s: &Setting) -> Result<Val, ConfigError> {
    want_list(s).map(|l| Val::List(super::deflate::mimetypes(l)))
}

#[cfg(feature = "deflate")]
fn deflate_encodings_val(s: &Setting, w: &mut Vec<String>) -> Result<Val, ConfigError> {
    let (produce, sidecar) = super::deflate::allowed(&want_list(s)?);
    w.extend(super::deflate::sidecar_warning(&sidecar));
    Ok(Val::Encodings(produce, sidecar))
}

#[cfg(feature = "deflate")]
fn deflate_loadavg_val(s: &Setting) -> Result<Val, ConfigError> {
    want_str(s).map(|v| Val::Float(super::deflate::loadavg(v)))
}

#[cfg(feature = "deflate")]
fn deflate_cache_dir_val(s: &Setting) -> Result<Val, ConfigError> {
    super::deflate::cache_dir(want_str(s)?)
        .map(|d| Val::OptStr(d.map(|p| p.to_string_lossy().into_owned())))
        .map_err(|e| err(s, e))
}

/// lighttpd's warning for a mod_compress key it reads as its mod_deflate replacement.
#[cfg(feature = "deflate")]
fn deprecated(s: &Setting, w: &mut Vec<String>, new: &str) {
    w.push(format!("DEPRECATED: {} replaced with {new}", s.key));
}

#[cfg(feature = "deflate")]
fn deflate_int(v: &Val) -> u64 {
    match v {
        Val::Int(n) => n.unsigned_abs(),
        _ => 0,
    }
}

#[cfg(feature = "deflate")]
fn apply_deflate_encodings(c: &mut ReqConf, v: &Val) {
    if let Val::Encodings(p, s) = v {
        let d = deflate(c);
        d.allowed = p.clone();
        d.sidecar = s.clone();
    }
}

#[cfg(feature = "deflate")]
fn apply_deflate_loadavg(c: &mut ReqConf, v: &Val) {
    if let Val::Float(f) = v {
        deflate(c).max_loadavg = *f;
    }
}

#[cfg(feature = "deflate")]
fn apply_deflate_cache_dir(c: &mut ReqConf, v: &Val) {
    deflate(c).cache_dir = v.opt().map(PathBuf::from);
}

#[cfg(feature = "deflate")]
fn apply_deflate_max(c: &mut ReqConf, v: &Val) {
    deflate(c).max_compress_kb = deflate_int(v);
}

/// mod_deflate's keys, and mod_compress's older names for some of them (lighttpd warns and
/// reads them as the new ones).
#[cfg(feature = "deflate")]
const DEFLATE_KEYS: &[Key] = &[
    request!(
        "deflate.mimetypes",
        "mod_deflate",
        deflate_mimetypes_val,
        |c, v| deflate(c).mimetypes = v.list(),
    ),
    request_warn!(
        "deflate.allowed-encodings",
        "mod_deflate",
        deflate_encodings_val,
        apply_deflate_encodings,
    ),
    request!(
        "deflate.max-compress-size",
        "mod_deflate",
        uint_val,
        apply_deflate_max,
    ),
    request!(
        "deflate.min-compress-size",
        "mod_deflate",
        short_val,
        |c, v| deflate(c).min_compress_size = deflate_int(v),
    ),
    request!(
        "deflate.compression-level",
        "mod_deflate",
        |s| {
            let n = short_level(s)?;
            if n == -1 || (1..=9).contains(&n) {
                Ok(Val::Int(n))
            } else {
                Err(err(
                    s,
                    format!("must be between 1 and 9 (or -1: the default), got {n}"),
                ))
            }
        },
        |c, v| {
            if let Val::Int(n) = v {
                deflate(c).level = i32::try_from(*n).unwrap_or(-1);
            }
        },
    ),
    request!(
        "deflate.output-buffer-size",
        "mod_deflate",
        short_val,
        |c, v| deflate(c).output_buffer_size = deflate_int(v),
    ),
    request!(
        "deflate.work-block-size",
        "mod_deflate",
        short_val,
        |c, v| deflate(c).work_block_kb = deflate_int(v),
    ),
    request!(
        "deflate.max-loadavg",
        "mod_deflate",
        deflate_loadavg_val,
        apply_deflate_loadavg,
    ),
    request!(
        "deflate.cache-dir",
        "mod_deflate",
        deflate_cache_dir_val,
        apply_deflate_cache_dir,
    ),
    request_warn!(
        "compress.filetype",
        "mod_deflate",
        |s, w| {
            deprecated(s, w, "deflate.mimetypes");
            deflate_mimetypes_val(s)
        },
        |c, v| deflate(c).mimetypes = v.list(),
    ),
    request_warn!(
        "compress.allowed-encodings",
        "mod_deflate",
        |s, w| {
            deprecated(s, w, "deflate.allowed-encodings");
            deflate_encodings_val(s, w)
        },
        apply_deflate_encodings,
    ),
    request_warn!(
        "compress.cache-dir",
        "mod_deflate",
        |s, w| {
            deprecated(s, w, "deflate.cache-dir");
            deflate_cache_dir_val(s)
        },
        apply_deflate_cache_dir,
    ),
    request_warn!(
        "compress.max-filesize",
        "mod_deflate",
        |s, w| {
            deprecated(s, w, "deflate.max-compress-size");
            uint_val(s)
        },
        apply_deflate_max,
    ),
    request_warn!(
        "compress.max-loadavg",
        "mod_deflate",
        |s, w| {
            deprecated(s, w, "deflate.max-loadavg");
            deflate_loadavg_val(s)
        },
        apply_deflate_loadavg,
    ),
];

/// deflate.compression-level: lighttpd reads a "short" (0..65535) and then checks 1..9; an
/// explicit -1 (its internal "default") is accepted here too, since it means the default.
#[cfg(feature = "deflate")]
fn short_level(s: &Setting) -> Result<i64, ConfigError> {
    match &s.value {
        Value::Int(n) if *n < 0 => Ok(*n),
        Value::Str(t) if t.trim().starts_with('-') => want_int(s, i64::MIN, i64::MAX),
        _ => want_int(s, 0, 65536).map(|n| n.min(65535)),
    }
}

/// mod_openssl's settings: a block that sets one copies the shared struct.
#[cfg(feature = "tls")]
fn ssl(c: &mut ReqConf) -> &mut super::ssl::SslConf {
    Rc::make_mut(&mut c.ssl)
}

/// ssl.ca-dn-file and ssl.verifyclient.ca-dn-file.
#[cfg(feature = "tls")]
fn ca_dn_refused(s: &Setting) -> Result<Val, ConfigError> {
    Err(err(
        s,
        "cannot be honoured: lightd cannot restrict which CA issued a client certificate by \
         name (OpenSSL's CA-DN list); trust only those CAs with ssl.verifyclient.ca-file \
         instead",
    ))
}

/// An ssl.* file: blank means unset, as in lighttpd.
#[cfg(feature = "tls")]
fn ssl_path_val(s: &Setting) -> Result<Val, ConfigError> {
    Ok(Val::SslPath(want_path(s)?.map(|path| super::ssl::PathAt {
        path,
        loc: s.loc.clone(),
    })))
}

#[cfg(feature = "tls")]
fn ssl_path(v: &Val) -> Option<super::ssl::PathAt> {
    match v {
        Val::SslPath(p) => p.clone(),
        _ => None,
    }
}

/// A key lightd reads but cannot act on, and need not: lighttpd's tuning of OpenSSL.
#[cfg(feature = "tls")]
fn ssl_ignored(s: &Setting, w: &mut Vec<String>, why: &str) -> Result<Val, ConfigError> {
    w.push(format!("{} is ignored: {why}", s.key));
    Ok(Val::Str(String::new()))
}

/// ssl.use-sslv2 / ssl.use-sslv3: "enable" asks for a protocol rustls does not have (and
/// that is broken): refused. "disable" is what happens anyway.
#[cfg(feature = "tls")]
fn ssl_old_proto_val(s: &Setting) -> Result<Val, ConfigError> {
    if want_bool(s)? {
        return Err(err(
            s,
            "SSLv2 and SSLv3 are insecure and not offered by lightd (rustls speaks TLS 1.2 \
             and 1.3 only); remove the key or set it to \"disable\"",
        ));
    }
    Ok(Val::Bool(false))
}

#[cfg(feature = "tls")]
fn ssl_cipher_list_val(s: &Setting, w: &mut Vec<String>) -> Result<Val, ConfigError> {
    let v = want_str(s)?;
    if v.trim().is_empty() {
        return Ok(Val::Suites(None));
    }
    w.push(format!(
        "{} is deprecated. Please prefer lighttpd secure TLS defaults, or use \
         ssl.openssl.ssl-conf-cmd \"CipherString\" to set custom cipher list.",
        s.key
    ));
    let mut said = Vec::new();
    let suites = super::ssl::cipher_string(v, &mut said).map_err(|e| err(s, e))?;
    w.extend(said.into_iter().map(|m| format!("{}: {m}", s.key)));
    Ok(Val::Suites(Some(suites)))
}

#[cfg(feature = "tls")]
fn ssl_ec_curve_val(s: &Setting, w: &mut Vec<String>) -> Result<Val, ConfigError> {
    let v = want_str(s)?;
    if v.trim().is_empty() {
        return Ok(Val::Groups(None));
    }
    let mut said = Vec::new();
    let groups = super::ssl::groups(v, &mut said).map_err(|e| err(s, e))?;
    w.extend(said.into_iter().map(|m| format!("{}: {m}", s.key)));
    Ok(Val::Groups(Some(groups)))
}

#[cfg(feature = "tls")]
fn ssl_conf_cmd_val(s: &Setting, w: &mut Vec<String>) -> Result<Val, ConfigError> {
    let pairs = want_map(s)?;
    let mut said = Vec::new();
    let cmd = super::ssl::conf_cmd(&pairs, &mut said).map_err(|e| err(s, e))?;
    w.extend(said.into_iter().map(|m| format!("{}: {m}", s.key)));
    Ok(Val::ConfCmd(Rc::new(cmd)))
}

/// lighttpd reads the depth as a "short" and limits it to 255 with a message.
#[cfg(feature = "tls")]
fn ssl_depth_val(s: &Setting, w: &mut Vec<String>) -> Result<Val, ConfigError> {
    let n = want_int(s, 0, 65535)?;
    if n > 255 {
        w.push(format!(
            "{} is absurdly large ({n}); limiting to 255",
            s.key
        ));
    }
    Ok(Val::Int(n.min(255)))
}

/// mod_openssl's keys (lighttpd 1.4.85's and the older ones configs still carry). Where each
/// may be written is checked once the config is read (`ssl::check`).
#[cfg(feature = "tls")]
const SSL_KEYS: &[Key] = &[
    request!("ssl.engine", "mod_openssl", bool_val, |c, v| {
        ssl(c).engine = v.bool()
    }),
    request!("ssl.pemfile", "mod_openssl", ssl_path_val, |c, v| {
        ssl(c).pemfile = ssl_path(v)
    }),
    request!("ssl.privkey", "mod_openssl", ssl_path_val, |c, v| {
        ssl(c).privkey = ssl_path(v)
    }),
    request!("ssl.ca-file", "mod_openssl", ssl_path_val, |c, v| {
        ssl(c).ca_file = ssl_path(v)
    }),
    request!("ssl.ca-crl-file", "mod_openssl", ssl_path_val, |c, v| {
        ssl(c).ca_crl_file = ssl_path(v)
    }),
    // lighttpd also accepts a client certificate only from a CA this file names: lightd
    // cannot, so the key is refused rather than dropped (fail closed).
    request!("ssl.ca-dn-file", "mod_openssl", ca_dn_refused, |_, _| {}),
    request!(
        "ssl.verifyclient.activate",
        "mod_openssl",
        bool_val,
        |c, v| ssl(c).verify_activate = v.bool()
    ),
    request!(
        "ssl.verifyclient.enforce",
        "mod_openssl",
        bool_val,
        |c, v| ssl(c).verify_enforce = v.bool()
    ),
    request_warn!(
        "ssl.verifyclient.depth",
        "mod_openssl",
        ssl_depth_val,
        |c, v| {
            if let Val::Int(n) = v {
                ssl(c).verify_depth = u32::try_from(*n).unwrap_or(9);
            }
        }
    ),
    request!(
        "ssl.verifyclient.username",
        "mod_openssl",
        |s| Ok(Val::OptStr(
            Some(want_str(s)?.to_string()).filter(|v| !v.trim().is_empty())
        )),
        |c, v| ssl(c).verify_username = v.opt()
    ),
    request!(
        "ssl.verifyclient.exportcert",
        "mod_openssl",
        bool_val,
        |c, v| ssl(c).verify_exportcert = v.bool()
    ),
    // One key with ssl.ca-file in lighttpd: whichever a block sets last is the one in force.
    request!(
        "ssl.verifyclient.ca-file",
        "mod_openssl",
        ssl_path_val,
        |c, v| ssl(c).ca_file = ssl_path(v)
    ),
    request!(
        "ssl.verifyclient.ca-crl-file",
        "mod_openssl",
        ssl_path_val,
        |c, v| ssl(c).ca_crl_file = ssl_path(v)
    ),
    request!(
        "ssl.verifyclient.ca-dn-file",
        "mod_openssl",
        ca_dn_refused,
        |_, _| {}
    ),
    request!("ssl.honor-cipher-order", "mod_openssl", bool_val, |c, v| {
        let t = ssl(c);
        t.honor_key = v.bool();
        t.derive();
    }),
    request_warn!(
        "ssl.cipher-list",
        "mod_openssl",
        ssl_cipher_list_val,
        |c, v| {
            if let Val::Suites(l) = v {
                let t = ssl(c);
                t.cipher_list = l.clone();
                t.derive();
            }
        }
    ),
    request_warn!(
        "ssl.openssl.ssl-conf-cmd",
        "mod_openssl",
        ssl_conf_cmd_val,
        |c, v| {
            if let Val::ConfCmd(cmd) = v {
                let t = ssl(c);
                t.conf_cmd = Some(Rc::clone(cmd));
                t.derive();
            }
        }
    ),
    request_warn!("ssl.ec-curve", "mod_openssl", ssl_ec_curve_val, |c, v| {
        if let Val::Groups(g) = v {
            let t = ssl(c);
            t.ec_curve = g.clone();
            t.derive();
        }
    }),
    request!("ssl.use-sslv2", "mod_openssl", ssl_old_proto_val, |_, _| {}),
    request!("ssl.use-sslv3", "mod_openssl", ssl_old_proto_val, |_, _| {}),
    // rustls never renegotiates, which is what this asks for.
    request!(
        "ssl.disable-client-renegotiation",
        "mod_openssl",
        bool_val,
        |_, _| {}
    ),
    request_warn!(
        "ssl.use-compression",
        "mod_openssl",
        |s, w| {
            if want_bool(s)? {
                ssl_ignored(s, w, "rustls never compresses (CRIME)")?;
            }
            Ok(Val::Bool(false))
        },
        |_, _| {}
    ),
    request_warn!(
        "ssl.dh-file",
        "mod_openssl",
        |s, w| ssl_ignored(s, w, "rustls has no finite-field DH suites"),
        |_, _| {}
    ),
    request_warn!(
        "ssl.read-ahead",
        "mod_openssl",
        |s, w| {
            want_bool(s)?;
            ssl_ignored(s, w, "rustls reads records as they come")
        },
        |_, _| {}
    ),
    request_warn!(
        "ssl.empty-fragments",
        "mod_openssl",
        |s, w| {
            want_bool(s)?;
            ssl_ignored(
                s,
                w,
                "it guards CBC suites in TLS 1.0, which rustls does not have",
            )
        },
        |_, _| {}
    ),
    request_warn!(
        "ssl.message-digest",
        "mod_openssl",
        |s, w| ssl_ignored(s, w, "lighttpd no longer reads it either"),
        |_, _| {}
    ),
    request!("ssl.acme-tls-1", "mod_openssl", ssl_path_val, |c, v| {
        ssl(c).acme_tls_1 = ssl_path(v)
    }),
    request!("ssl.stapling-file", "mod_openssl", ssl_path_val, |c, v| {
        ssl(c).stapling_file = ssl_path(v)
    }),
    request!("ssl.stek-file", "mod_openssl", ssl_path_val, |c, v| {
        ssl(c).stek_file = ssl_path(v)
    }),
];

/// `server.feature-flags`: current lighttpd reads its graceful shutdown timeout from here
/// (Debian's default config sets it this way), so honour it; the other flags tune lighttpd
/// internals.
fn feature_flags(_c: &mut Config, p: &mut Pending, s: &Setting) -> Result<(), ConfigError> {
    let Value::Array(items) = &s.value else {
        return Err(err(
            s,
            format!("expected a map, got {}", s.value.describe()),
        ));
    };
    let flag = items
        .iter()
        .find(|(k, _)| k.as_deref() == Some("server.graceful-shutdown-timeout"));
    if let Some((_, v)) = flag {
        let inner = Setting {
            key: "server.feature-flags \"server.graceful-shutdown-timeout\"".to_string(),
            value: v.clone(),
            loc: s.loc.clone(),
            item_locs: Vec::new(),
        };
        p.graceful_flag = Some(want_secs(&inner, 0)?);
    }
    // lighttpd re-reads a changed ssl.ca-crl-file every minute with this flag; lightd reads
    // CRLs at start (and each reload) only, so a certificate revoked since would still be
    // accepted: refused rather than ignored.
    let refresh = items
        .iter()
        .find(|(k, _)| k.as_deref() == Some("ssl.refresh-crls"));
    if let Some((_, v)) = refresh {
        let off =
            matches!(v, Value::Str(t) if t == "disable" || t == "0") || matches!(v, Value::Int(0));
        if !off {
            return Err(err(
                s,
                "\"ssl.refresh-crls\" cannot be honoured: lightd reads CRLs when it starts \
                 and when it reloads; reload after updating a CRL instead",
            ));
        }
    }
    // Request trailer fields a backend may see, merged into the request's fields (lighttpd
    // drops the others).
    #[cfg(feature = "backend")]
    if let Some((_, v)) = items
        .iter()
        .find(|(k, _)| k.as_deref() == Some("request.trailer-whitelist"))
    {
        let names: Vec<&Value> = match v {
            Value::Array(a) => a.iter().map(|(_, v)| v).collect(),
            v => vec![v],
        };
        _c.trailer_whitelist.clear();
        for n in names {
            match n {
                Value::Str(n) if !n.is_empty() => _c.trailer_whitelist.push(n.to_ascii_lowercase()),
                other => {
                    return Err(err(
                        s,
                        format!(
                            "\"request.trailer-whitelist\": expected field names, got {}",
                            other.describe()
                        ),
                    ))
                }
            }
        }
    }
    // mod_auth's delay after wrong credentials; on unless disabled.
    #[cfg(feature = "auth")]
    if let Some((_, v)) = items
        .iter()
        .find(|(k, _)| k.as_deref() == Some("auth.delay-invalid-creds"))
    {
        let inner = Setting {
            key: "server.feature-flags \"auth.delay-invalid-creds\"".to_string(),
            value: v.clone(),
            loc: s.loc.clone(),
            item_locs: Vec::new(),
        };
        _c.auth_delay_invalid_creds = want_bool(&inner)?;
    }
    Ok(())
}

/// Whether the module that reads a key is part of this build. (mod_deflate needs no arm: a
/// build without it has no keys of its, which `keys::missing` also checks.)
// With every optional module left out of the build, the arms all say false.
#[allow(clippy::match_like_matches_macro)]
pub(crate) fn compiled(module: &str) -> bool {
    match module {
        "mod_access" => cfg!(feature = "access"),
        "mod_alias" => cfg!(feature = "alias"),
        "mod_redirect" => cfg!(feature = "redirect"),
        "mod_rewrite" => cfg!(feature = "rewrite"),
        "mod_setenv" => cfg!(feature = "setenv"),
        "mod_expire" => cfg!(feature = "expire"),
        "mod_extforward" => cfg!(feature = "extforward"),
        "mod_simple_vhost" | "mod_evhost" => cfg!(feature = "vhost"),
        "mod_userdir" => cfg!(feature = "userdir"),
        "mod_status" => cfg!(feature = "status"),
        "mod_accesslog" => cfg!(feature = "accesslog"),
        "mod_auth" | "mod_authn_file" => cfg!(feature = "auth"),
        "mod_cgi" => cfg!(feature = "cgi"),
        "mod_fastcgi" => cfg!(feature = "fastcgi"),
        "mod_scgi" => cfg!(feature = "scgi"),
        "mod_proxy" => cfg!(feature = "proxy"),
        "mod_wstunnel" => cfg!(feature = "wstunnel"),
        _ => true,
    }
}

/// The implemented key called `name`, if this build has its module.
pub(crate) fn lookup(name: &str) -> Option<&'static Key> {
    keys().find(|k| k.name == name)
}

/// Check a per-request setting; None when `s` is not a per-request key. Warnings about
/// its value (lighttpd logs them and goes on) are added to `warnings` with file:line.
pub(crate) fn req_setting(
    s: &Setting,
    warnings: &mut Vec<String>,
) -> Result<Option<ReqSetting>, ConfigError> {
    let Some(key) = lookup(&s.key) else {
        return Ok(None);
    };
    let val = match key.apply {
        Apply::Request(parse, _) => parse(s)?,
        #[cfg(any(feature = "backend", feature = "deflate", feature = "tls"))]
        Apply::RequestWarn(parse, _) => {
            let mut said = Vec::new();
            let val = parse(s, &mut said)?;
            warnings.extend(said.into_iter().map(|w| format!("{}: {w}", s.loc)));
            val
        }
        Apply::Global(_) => return Ok(None),
    };
    // Without a key that warns, nothing is added.
    let _ = &warnings;
    Ok(Some(ReqSetting {
        key,
        val,
        text: s.value.to_string(),
    }))
}
