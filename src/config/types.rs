//! The validated configuration: plain data, built once at start-up and shared read-only.
//!
//! Settings that lighttpd allows inside conditional blocks live in [`ReqConf`]; the server keeps
//! one base `ReqConf` and derives (and caches) a merged copy per distinct set of matching
//! conditions, so a request that matches no condition costs nothing extra.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Where in the configuration something was written: "file:line".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Loc {
    pub file: PathBuf,
    pub line: u32,
}

impl fmt::Display for Loc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// A configuration error: always names the file, the line and what was expected.
#[derive(Debug, Clone)]
pub struct ConfigError {
    pub loc: Option<Loc>,
    pub msg: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.loc {
            Some(loc) => write!(f, "{}: {}", loc, self.msg),
            None => f.write_str(&self.msg),
        }
    }
}

impl std::error::Error for ConfigError {}

/// Something a config asks for that lightd does not implement and will not run without: a
/// key of a module that protects something, or such a module in server.modules.
#[derive(Clone, Debug)]
pub struct Refusal {
    pub loc: Loc,
    /// The key as written (with a hint when lightd does not know the name), or
    /// "server.modules: mod_x".
    pub what: String,
    /// The lighttpd module that would honour it, or "core".
    pub owner: &'static str,
    /// What would go wrong without it.
    pub harm: &'static str,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.owner == "core" {
            write!(
                f,
                "{}: {} is not implemented by lightd",
                self.loc, self.what
            )?;
        } else {
            write!(
                f,
                "{}: {} needs {}, which lightd does not implement",
                self.loc, self.what, self.owner
            )?;
        }
        write!(f, "; without it, {}", self.harm)
    }
}

/// A key lightd reads but ignores (a harmless lighttpd key, or an unknown one), kept so that
/// `-p` can show it.
#[derive(Clone, Debug)]
pub struct Ignored {
    pub key: String,
    /// The value in config syntax.
    pub value: String,
    pub loc: Loc,
}

/// One address to listen on, with where it was configured.
#[derive(Clone, Debug)]
pub struct ListenSpec {
    pub addr: SocketAddr,
    /// The text as written ("[::]:80", ":8080", "0.0.0.0:80"), for messages and `-p`.
    pub text: String,
    pub loc: Loc,
    /// The server.bind/server.port entry when server.bind is not set. With
    /// server.systemd-socket-activation enabled and sockets inherited, lighttpd does not bind
    /// this default address, and neither does lightd.
    pub implicit: bool,
}

/// Settings that may differ per request (lighttpd allows them inside conditionals).
#[derive(Clone, Debug)]
pub struct ReqConf {
    /// None means "not configured": requests get 500 and -tt reports it.
    pub document_root: Option<PathBuf>,
    pub index_files: Vec<String>,
    pub follow_symlink: bool,
    /// `server.force-lowercase-filenames`, for case-insensitive file systems: the file is
    /// looked up by the lower-cased URL path, and the rules that match paths (url.access-*,
    /// auth.require, alias.url, userdir) compare without regard to ASCII case, so no
    /// spelling of a name escapes them. Unset in the global scope, it is detected from the
    /// document root, as lighttpd does.
    pub force_lowercase_filenames: bool,
    pub range_requests: bool,
    /// `static-file.etags`: send ETag and honour entity-tag preconditions.
    pub etags: bool,
    /// Not `static-file.disable-pathinfo`: "/file.html/more" serves the file.
    pub static_pathinfo: bool,
    /// Suffixes such as ".php": files ending in one are never served as static files (403).
    pub exclude_extensions: Vec<String>,
    pub dir_listing: bool,
    /// (suffix, content type), sorted longest suffix first so the first match wins.
    pub mime: Vec<(String, String)>,
    pub server_tag: String,
    /// While merging: the conditional branch whose settings are being applied (None for the
    /// global block). Keys whose values use the block's captures record it.
    pub branch: Option<usize>,
    /// mod_access: `url.access-deny` and `url.access-allow` suffixes.
    pub access_deny: Vec<String>,
    pub access_allow: Vec<String>,
    /// mod_alias: (URL prefix, directory), longest prefix first.
    pub alias: Vec<(String, String)>,
    /// mod_redirect: the rules and the branch that set them.
    pub redirect: Option<(std::rc::Rc<super::urlrules::Rules>, Option<usize>)>,
    pub redirect_code: Option<i64>,
    /// mod_rewrite: one config block's lists, by kind in lighttpd's order, and that block.
    pub rewrite: Vec<(
        super::urlrules::RewriteKind,
        std::rc::Rc<super::urlrules::Rules>,
    )>,
    pub rewrite_branch: Option<usize>,
    /// mod_setenv.
    pub setenv: SetEnv,
    /// mod_expire: `expire.url` (URL prefix) and `expire.mimetypes` (type prefix) rules.
    pub expire_url: Vec<(String, super::expire::Expire)>,
    pub expire_mime: Vec<(String, super::expire::Expire)>,
    /// `server.error-handler`, `server.error-handler-404` (URL paths) and
    /// `server.errorfile-prefix` (a path prefix for "<status>.html" files).
    pub error_handler: Option<String>,
    pub error_handler_404: Option<String>,
    pub errorfile_prefix: Option<String>,
    /// mod_extforward: trusted proxies, headers read, Forwarded params taken.
    #[cfg(feature = "extforward")]
    pub extforward: super::extforward::ExtForward,
    /// mod_simple_vhost and mod_evhost.
    #[cfg(feature = "vhost")]
    pub vhost: super::vhost::VhostConf,
    /// mod_userdir.
    #[cfg(feature = "userdir")]
    pub userdir: super::userdir::Userdir,
    /// mod_dirlisting: the `dir-listing.*` options besides activate (shared: most requests
    /// use the global block's, and a listing only reads them).
    #[cfg(feature = "dirlisting")]
    pub listing: std::rc::Rc<super::dirlisting::ListingOpts>,
    /// mod_status.
    #[cfg(feature = "status")]
    pub status: StatusConf,
    /// mod_accesslog: the log file, its format and escaping.
    #[cfg(feature = "accesslog")]
    pub accesslog: super::accesslog::AccessLogConf,
    /// mod_auth and mod_authn_file.
    #[cfg(feature = "auth")]
    pub auth: super::auth::AuthConf,
    /// mod_cgi.
    #[cfg(feature = "cgi")]
    pub cgi: super::gateway::CgiConf,
    /// mod_fastcgi, mod_scgi, mod_proxy and mod_wstunnel.
    #[cfg(feature = "fastcgi")]
    pub fastcgi: super::gateway::GwConf,
    #[cfg(feature = "scgi")]
    pub scgi: super::gateway::GwConf,
    #[cfg(feature = "proxy")]
    pub proxy: super::gateway::GwConf,
    #[cfg(feature = "wstunnel")]
    pub wstunnel: super::gateway::GwConf,
    /// `server.stream-request-body` and `server.stream-response-body` for this request
    /// (lighttpd allows them in conditionals): 0 buffers the whole body, 1 streams it, 2
    /// streams it with minimal buffering.
    #[cfg(feature = "backend")]
    pub stream_request_body: u8,
    #[cfg(feature = "backend")]
    pub stream_response_body: u8,
    /// mod_deflate (shared: most requests use the global block's).
    #[cfg(feature = "deflate")]
    pub deflate: std::rc::Rc<super::deflate::DeflateConf>,
    /// mod_openssl (shared: most connections use the global block's or their socket's). At
    /// the handshake, the host is the SNI name, so `$HTTP["host"]` blocks choose the
    /// certificate.
    #[cfg(feature = "tls")]
    pub ssl: std::rc::Rc<super::ssl::SslConf>,
}

/// mod_status's settings: the URLs its pages answer at (None: that page is off).
#[derive(Clone, Debug)]
pub struct StatusConf {
    pub status_url: Option<String>,
    pub statistics_url: Option<String>,
    pub config_url: Option<String>,
    /// status.enable-sort: sortable columns on the HTML page.
    pub enable_sort: bool,
}

impl Default for StatusConf {
    fn default() -> StatusConf {
        StatusConf {
            status_url: None,
            statistics_url: None,
            config_url: None,
            enable_sort: true,
        }
    }
}

/// mod_setenv's settings: (name, value) pairs in config order. An empty value with a `set-`
/// key removes the header.
#[derive(Clone, Debug, Default)]
pub struct SetEnv {
    pub add_request_header: Vec<(String, String)>,
    pub set_request_header: Vec<(String, String)>,
    pub add_response_header: Vec<(String, String)>,
    pub set_response_header: Vec<(String, String)>,
    pub add_environment: Vec<(String, String)>,
    pub set_environment: Vec<(String, String)>,
}

impl SetEnv {
    pub fn is_empty(&self) -> bool {
        self.add_request_header.is_empty()
            && self.set_request_header.is_empty()
            && self.add_response_header.is_empty()
            && self.set_response_header.is_empty()
            && self.add_environment.is_empty()
            && self.set_environment.is_empty()
    }
}

pub use super::table::{ReqSetting, Val};

/// The request field a condition looks at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CondField {
    Host,
    Url,
    RemoteIp,
    QueryString,
    RequestMethod,
    Scheme,
    UserAgent,
    Referer,
    Cookie,
    /// `$REQUEST_HEADER["Name"]`, name as written.
    RequestHeader(String),
    /// `$SERVER["socket"]`
    ServerSocket,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CondOp {
    Eq,       // ==
    Ne,       // !=
    Match,    // =~
    NotMatch, // !~
    Prefix,   // =^
    Suffix,   // =$
}

/// One `$FIELD["..."] OP "pattern"` test.
#[derive(Clone, Debug)]
pub struct Cond {
    pub field: CondField,
    pub op: CondOp,
    pub pattern: String,
    /// Compiled for =~ and !~.
    pub regex: Option<regex_lite::Regex>,
    /// For `$SERVER["socket"] == "..."`: the parsed address, so it can be compared with the
    /// listener the request arrived on.
    pub socket: Option<SocketAddr>,
    pub loc: Loc,
}

/// One branch of an if / else-if / else chain.
#[derive(Clone, Debug)]
pub struct CondBranch {
    /// Index of this branch in a depth-first numbering of all branches; at most
    /// [`MAX_COND_BRANCHES`]. Used as the bit in a [`MatchSet`].
    pub id: usize,
    /// None for a plain `else`.
    pub cond: Option<Cond>,
    pub settings: Vec<ReqSetting>,
    /// Keys set in this block that lightd ignores, for `-p`.
    pub ignored: Vec<Ignored>,
    /// Nested chains, considered only when this branch is taken.
    pub children: Vec<CondChain>,
}

/// `cond { } else cond { } else { }`: at most one branch is taken, the first that matches.
#[derive(Clone, Debug)]
pub struct CondChain {
    pub branches: Vec<CondBranch>,
}

/// The most conditional branches a config may have; a bigger config is an error.
pub const MAX_COND_BRANCHES: usize = 256;

/// Which branches a request took: a bitset, cheap to compute, compare and use as a cache key.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct MatchSet(pub [u64; MAX_COND_BRANCHES / 64]);

impl MatchSet {
    pub fn set(&mut self, id: usize) {
        self.0[id / 64] |= 1 << (id % 64);
    }
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|w| *w == 0)
    }
}

/// What a condition can ask about a request. Implemented by the connection.
pub trait CondInput {
    /// The value of a field, or None when the request does not have it (an absent header
    /// compares as the empty string, as in lighttpd).
    fn field(&self, field: &CondField) -> Option<&str>;
    /// The remote address, for `$HTTP["remote-ip"]` with CIDR patterns.
    fn remote_ip(&self) -> std::net::IpAddr;
    /// The local listening address the connection came in on, for `$SERVER["socket"]`.
    fn server_socket(&self) -> SocketAddr;
    /// Whether conditions on `field` can be decided yet. During a TLS handshake most of a
    /// request is not known: a condition on it is undecided, and neither its block nor the
    /// `else` branches after it apply (lighttpd's rule).
    fn decided(&self, _field: &CondField) -> bool {
        true
    }
}

/// The whole validated configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// The main config file as given on the command line.
    pub source: PathBuf,
    /// server.bind/server.port first, then one per `$SERVER["socket"] == "..."` block;
    /// duplicates removed.
    pub listen: Vec<ListenSpec>,
    pub modules: Vec<String>,
    pub pid_file: Option<PathBuf>,
    /// lightd's own `server.control-socket`: the Unix socket a new generation connects to for
    /// the listening sockets. Defaults to `<server.pid-file>.sock`; see [`Config::control_path`].
    pub control_socket: Option<PathBuf>,
    pub errorlog: Option<PathBuf>,
    pub username: Option<String>,
    pub groupname: Option<String>,
    pub max_connections: usize,
    pub max_fds: Option<u64>,
    pub max_keep_alive_requests: u32,
    pub max_keep_alive_idle: Duration,
    pub max_read_idle: Duration,
    pub max_write_idle: Duration,
    /// server.max-request-size, converted from KB to bytes. 0 means no limit.
    pub max_request_size: u64,
    /// server.max-request-field-size in bytes: the largest request head accepted.
    pub max_request_field_size: usize,
    /// Zero means no limit.
    pub graceful_shutdown_timeout: Duration,
    /// server.max-worker: above 1, a supervisor process runs this many worker processes, each
    /// with its own loop on the same listening sockets. 0 or 1: one process does everything.
    pub max_worker: u32,
    /// lightd's own `server.max-request-head-time` (default 30 s): the total time a client has
    /// to send a complete request head, so a trickling client cannot hold a slot forever.
    pub max_request_head_time: Duration,
    /// server.systemd-socket-activation: inherited sockets (LISTEN_FDS) that match no
    /// configured address are served with the global settings, and the implicit default
    /// address is not bound when sockets were inherited.
    pub socket_activation: bool,
    /// mod_auth: hold the 401 after wrong credentials (server.feature-flags
    /// "auth.delay-invalid-creds", on unless "disable").
    pub auth_delay_invalid_creds: bool,
    /// `server.upload-dirs`: where request bodies too large for memory are spooled (the
    /// first that works; default, as in lighttpd: $TMPDIR, else /var/tmp).
    pub upload_dirs: Vec<PathBuf>,
    /// `server.upload-temp-file-size`: the most bytes one spool file holds before the next
    /// is started (lighttpd's default, also for 0: 1 MiB).
    pub upload_temp_file_size: u64,
    /// `server.stream-request-body` and `server.stream-response-body` of the global block: 0
    /// buffers the whole body, 1 streams it, 2 streams it with minimal buffering (lighttpd's
    /// values). lighttpd allows both in conditionals: a request's own value is in
    /// `ReqConf::stream_request_body` / `stream_response_body` (builds with backends).
    pub stream_request_body: u8,
    pub stream_response_body: u8,
    /// `server.feature-flags` "request.trailer-whitelist": request trailer fields passed to
    /// backends (lower case).
    #[cfg(feature = "backend")]
    pub trailer_whitelist: Vec<String>,
    /// Every gateway host of every block, by `GwHost::index` (see config/gateway.rs).
    #[cfg(feature = "backend")]
    pub gw_hosts: Vec<std::rc::Rc<super::gateway::GwHost>>,
    pub base: ReqConf,
    /// The per-request keys set outside any conditional, as written, for `-p`.
    pub base_settings: Vec<ReqSetting>,
    pub conds: Vec<CondChain>,
    /// Warnings gathered while loading (unimplemented or unknown keys), already formatted as
    /// "file:line: message". The caller logs them once.
    pub warnings: Vec<String>,
    /// What the config needs that lightd does not implement and will not serve without. A
    /// config with any is refused: see [`Config::refusal`]. The server will not start on it.
    pub refused: Vec<Refusal>,
    /// Global keys lightd ignores, for `-p`.
    pub ignored: Vec<Ignored>,
    /// Where keys were set, so `-tt` can name file:line: "server.document-root" for the global
    /// block, "server.document-root@3" for the conditional branch with id 3.
    pub locs: std::collections::HashMap<String, Loc>,
}

/// Refusals listed in one error before the rest are summed up.
const REFUSALS_SHOWN: usize = 32;

impl Config {
    /// Fail closed: an error naming every key and module this config relies on that lightd
    /// does not implement, if there are any. There is no way to ignore them.
    pub fn refusal(&self) -> Result<(), ConfigError> {
        if self.refused.is_empty() {
            return Ok(());
        }
        let mut msg = String::from(
            "refusing to start: this config relies on lighttpd features that lightd does not \
             implement, and serving without them would expose what they protect (lightd never \
             ignores such keys; remove them, or keep lighttpd for this site):",
        );
        for r in self.refused.iter().take(REFUSALS_SHOWN) {
            msg.push_str("\n  ");
            msg.push_str(&r.to_string());
        }
        if self.refused.len() > REFUSALS_SHOWN {
            msg.push_str(&format!(
                "\n  ... and {} more",
                self.refused.len() - REFUSALS_SHOWN
            ));
        }
        Err(ConfigError { loc: None, msg })
    }

    /// The control socket's path: `server.control-socket`, else `<server.pid-file>.sock`, else
    /// none (then a new generation cannot take the listeners over and binds afresh).
    pub fn control_path(&self) -> Option<PathBuf> {
        if let Some(p) = &self.control_socket {
            return Some(p.clone());
        }
        self.pid_file.as_ref().map(|p| {
            let mut s = p.as_os_str().to_owned();
            s.push(".sock");
            PathBuf::from(s)
        })
    }
}
