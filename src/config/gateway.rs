//! The checked settings of the modules that hand requests to another program: mod_cgi, and the
//! gateways mod_fastcgi, mod_scgi, mod_proxy and mod_wstunnel, which share lighttpd's
//! `*.server` host syntax. Built at load time; the runtime (`backend/`) only reads them.
//!
//! A gateway host with a `bin-path` is a process pool lightd spawns. Pools are per config, not
//! per request: every host of every block gets an index into `Config::gw_hosts`, and the
//! runtime keeps a pool's processes and its round-robin state under that index. Hosts that
//! spawn the same `bin-path` on the same address share one index, wherever they are written
//! (see `gwparse::index_hosts`).
//!
//! The values are parsed and checked in `gwparse.rs`; this file only declares them.

use std::fmt;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

/// The backend modules whose requests the request path runs. A config that uses a module not
/// listed here (a non-empty `cgi.assign` or `*.server`) loads and passes `-t`, but `-tt` and
/// start-up refuse it: serving it without its backend would answer from the document root,
/// script source included (README, "Fail closed"). Each module is added here by the change
/// that wires it to requests.
pub const WIRED: &[&str] = &[
    "mod_cgi",
    "mod_fastcgi",
    "mod_scgi",
    "mod_proxy",
    "mod_wstunnel",
];

/// `cgi.limits`: lighttpd's per-script limits (all off by default).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct CgiLimits {
    /// `read-timeout`: the script sent nothing for this long (zero: no limit).
    pub read_timeout: Duration,
    /// `write-timeout`: the script took nothing of the request body for this long.
    pub write_timeout: Duration,
    /// `tcp-fin-propagate`: the signal sent to the script when the client half-closes
    /// (0: none). lighttpd takes a number or a signal name; an unknown name means SIGTERM.
    pub fin_signal: i32,
}

/// mod_cgi's per-request settings.
#[derive(Clone, Debug)]
pub struct CgiConf {
    /// `cgi.assign`: (suffix of the path, or of its last component, interpreter), in config
    /// order. `None` as the interpreter ("" in the config) runs the file itself.
    pub assign: Rc<[(String, Option<PathBuf>)]>,
    /// `cgi.execute-x-only`: only files with an execute bit run.
    pub execute_x_only: bool,
    /// `cgi.x-sendfile`: honour X-Sendfile / X-LIGHTTPD-send-file from scripts.
    pub x_sendfile: bool,
    /// `cgi.x-sendfile-docroot`: the directories X-Sendfile may name (empty: anywhere).
    pub x_sendfile_docroot: Rc<[PathBuf]>,
    /// `cgi.local-redir`: a script's `Location: /local` without a status restarts the
    /// request internally (RFC 3875 §6.2.2).
    pub local_redir: bool,
    /// `cgi.upgrade`: a script may take over the connection (Upgrade: websocket).
    pub upgrade: bool,
    /// `cgi.limits`.
    pub limits: CgiLimits,
}

// By hand: `Rc<[T]>: Default` needs Rust 1.80, and lightd builds with 1.71.
impl Default for CgiConf {
    fn default() -> CgiConf {
        CgiConf {
            assign: Rc::new([]),
            execute_x_only: false,
            x_sendfile: false,
            x_sendfile_docroot: Rc::new([]),
            local_redir: false,
            upgrade: false,
            limits: CgiLimits::default(),
        }
    }
}

/// Which protocol a gateway speaks to its hosts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proto {
    FastCgi,
    Scgi,
    Proxy,
    WsTunnel,
}

/// mod_fastcgi's `mode`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Mode {
    #[default]
    Responder,
    /// The host only decides whether the request may go on (FastCGI's authorizer role);
    /// on 200 the request continues to the next handler, with the host's `Variable-*`
    /// headers in its environment.
    Authorizer,
}

/// `*.balance`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Balance {
    /// Least connections ("fair" and "least-connection").
    #[default]
    Fair,
    RoundRobin,
    /// By a hash of the request's path and Host, so a path sticks to a host.
    Hash,
    /// By a hash of the client's address.
    Sticky,
}

/// Where a gateway host listens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Addr {
    /// `socket` (or a `host` starting with "/"): a unix socket path. A spawned pool's
    /// process n listens on "<path>-<n>", as in lighttpd.
    Unix(PathBuf),
    /// `host` (a name or an address; default 127.0.0.1) and `port` (default 80). A spawned
    /// pool's process n listens on port + n, as in lighttpd.
    Tcp(String, u16),
}

impl fmt::Display for Addr {
    /// "unix:/path" or "host:port" ("[::1]:port" for an IPv6 address), for messages.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Addr::Unix(p) => write!(f, "unix:{}", p.display()),
            Addr::Tcp(h, port) if h.contains(':') => write!(f, "[{h}]:{port}"),
            Addr::Tcp(h, port) => write!(f, "{h}:{port}"),
        }
    }
}

/// One host of a `*.server` entry, as lighttpd's gw_backend reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GwHost {
    /// Index into `Config::gw_hosts`: the runtime's pool state for this host. Hosts that
    /// spawn the same `bin-path` on the same address share it (and `gw_hosts[index]` is the
    /// first of them, whose spawn settings the pool uses), as do identical definitions.
    pub index: usize,
    /// The host's name in the config ("grisu" in `"grisu" => ( ... )`), or "".
    pub id: String,
    pub addr: Addr,
    /// `bin-path`, split into program and arguments on each space or tab, as lighttpd does:
    /// spawn the pool. For mod_scgi a command with arguments runs as
    /// `/bin/sh -c "exec <bin-path>"`, as lighttpd does.
    pub bin_path: Option<Vec<String>>,
    /// `bin-environment` (name, value) and `bin-copy-environment` (names copied from
    /// lightd's own environment); without either a spawned process gets lightd's whole
    /// environment, as lighttpd does.
    pub bin_env: Vec<(String, String)>,
    pub bin_copy_env: Vec<String>,
    /// `min-procs` and `max-procs` (default 4 and 4; at least 1, min at most max). A host
    /// without `bin-path` has 1 and 1.
    pub min_procs: u32,
    pub max_procs: u32,
    /// `kill-signal` (default SIGTERM): how a pool's processes are told to stop.
    pub kill_signal: i32,
    pub listen_backlog: u32,
    /// `check-local` (default on; always off for mod_proxy and mod_wstunnel, as there): the
    /// file must exist under the document root.
    pub check_local: bool,
    pub mode: Mode,
    /// `docroot`: DOCUMENT_ROOT and SCRIPT_FILENAME's base for this host.
    pub docroot: Option<PathBuf>,
    /// `strip-request-uri`: a prefix removed from REQUEST_URI (without its trailing slash,
    /// as lighttpd keeps it).
    pub strip_request_uri: Option<String>,
    /// `fix-root-scriptname`: for the prefix "/", SCRIPT_NAME is "" and PATH_INFO the path.
    pub fix_root_scriptname: bool,
    /// `x-sendfile` (or the older `allow-x-send-file`) and `x-sendfile-docroot` (absolute,
    /// simplified, each ending in "/").
    pub x_sendfile: bool,
    pub x_sendfile_docroot: Vec<PathBuf>,
    /// `upgrade`: the host may take the connection over (WebSocket through the gateway).
    pub upgrade: bool,
    /// `tcp-fin-propagate`: pass the client's half-close on to the host.
    pub tcp_fin_propagate: bool,
    /// `connect-timeout` (default 8 s), `write-timeout`, `read-timeout`; zero means none.
    pub connect_timeout: Duration,
    pub write_timeout: Duration,
    pub read_timeout: Duration,
    /// `disable-time` (default 1 s): how long a host that failed is skipped.
    pub disable_time: Duration,
    /// `max-load-per-proc` (default 1): a spawned pool grows past min-procs when busier than
    /// this.
    pub max_load_per_proc: u32,
    /// `idle-timeout` (default 60 s): a spawned process above min-procs idle this long is
    /// stopped.
    pub idle_timeout: Duration,
    /// `broken-scriptfilename`: PHP's old cgi.fix_pathinfo behaviour (SCRIPT_FILENAME is the
    /// path with PATH_INFO appended).
    pub broken_scriptfilename: bool,
}

impl GwHost {
    /// A host at `addr` with lighttpd's defaults (gw_set_defaults_backend): 4 processes,
    /// SIGTERM, check-local on, responder, an 8 s connect timeout, a 1 s disable time, a
    /// 60 s idle timeout, and the largest listen backlog the system allows (at least 1024).
    pub fn new(id: &str, addr: Addr) -> GwHost {
        GwHost {
            index: 0,
            id: id.to_string(),
            addr,
            bin_path: None,
            bin_env: Vec::new(),
            bin_copy_env: Vec::new(),
            min_procs: 4,
            max_procs: 4,
            kill_signal: libc::SIGTERM,
            listen_backlog: u32::try_from(libc::SOMAXCONN).unwrap_or(1024).max(1024),
            check_local: true,
            mode: Mode::Responder,
            docroot: None,
            strip_request_uri: None,
            fix_root_scriptname: false,
            x_sendfile: false,
            x_sendfile_docroot: Vec::new(),
            upgrade: false,
            tcp_fin_propagate: false,
            connect_timeout: Duration::from_secs(8),
            write_timeout: Duration::ZERO,
            read_timeout: Duration::ZERO,
            disable_time: Duration::from_secs(1),
            max_load_per_proc: 1,
            idle_timeout: Duration::from_secs(60),
            broken_scriptfilename: false,
        }
    }
}

impl GwHost {
    /// The file lighttpd checks before spawning: the first word of `bin-path` (also when
    /// mod_scgi runs it through `/bin/sh -c`).
    pub fn program(&self) -> Option<&str> {
        let args = self.bin_path.as_ref()?;
        match args.as_slice() {
            [sh, c, cmd] if sh == "/bin/sh" && c == "-c" && cmd.starts_with("exec ") => cmd
                .get("exec ".len()..)
                .and_then(|rest| rest.split([' ', '\t']).next()),
            _ => args.first().map(String::as_str),
        }
    }
}

/// One entry of a `*.server` list: the requests it takes and the hosts that serve them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GwExt {
    /// The key: a suffix (".php"), or a path prefix when it starts with "/" ("/app"), or
    /// "" for every request.
    pub key: String,
    pub hosts: Vec<Rc<GwHost>>,
}

/// `proxy.header`.
#[derive(Clone, Debug, Default)]
pub struct ProxyHeader {
    /// `map-host-request` and `map-host-response`: (from, to); "-" as `from` is the
    /// request's own Host, "" as `to` leaves it.
    pub map_host_request: Vec<(String, String)>,
    pub map_host_response: Vec<(String, String)>,
    /// `map-urlpath`: (prefix, replacement) in config order; the first prefix that matches
    /// wins, as in lighttpd (so a config lists longer prefixes first).
    pub map_urlpath: Vec<(String, String)>,
    /// `map-urlpath-resp-host-include` and `-exclude`: which response hosts (Location and
    /// friends) map-urlpath's reverse mapping applies to.
    pub map_urlpath_resp_host_include: Vec<String>,
    pub map_urlpath_resp_host_exclude: Vec<String>,
    /// `upgrade`: pass Upgrade (WebSocket) through.
    pub upgrade: bool,
    /// `connect` (lighttpd's key name): tunnel CONNECT.
    pub connect_method: bool,
    /// `https-remap`: rewrite "https://" in Location and friends when the client came in
    /// over https.
    pub https_remap: bool,
    /// `force-http10`: talk HTTP/1.0 to the host.
    pub force_http10: bool,
}

/// `proxy.forwarded`: which Forwarded parameters are added.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Forwarded {
    pub for_: bool,
    pub proto: bool,
    pub host: bool,
    pub by: bool,
    pub remote_user: bool,
}

/// One gateway module's per-request settings (`fastcgi.*`, `scgi.*`, `proxy.*`,
/// `wstunnel.*`).
#[derive(Clone, Debug)]
pub struct GwConf {
    /// `*.server`, in config order (an entry without hosts is dropped, as lighttpd does).
    pub exts: Rc<[GwExt]>,
    pub balance: Balance,
    /// `*.map-extensions`: (suffix, suffix it is handled as), in config order.
    pub map_extensions: Vec<(String, String)>,
    /// `*.debug`: lighttpd's debug level (logging only).
    pub debug: i64,
    /// mod_proxy only.
    pub proxy_header: Rc<ProxyHeader>,
    pub proxy_forwarded: Forwarded,
    /// `proxy.replace-http-host` (older form of map-host-request).
    pub replace_http_host: bool,
    /// mod_wstunnel only: `wstunnel.frame-type` ("text" or "binary"), `wstunnel.origins`,
    /// `wstunnel.ping-interval` (seconds, 0 = none).
    pub ws_binary: bool,
    pub ws_origins: Vec<String>,
    pub ws_ping_interval: u32,
}

// By hand: `Rc<[T]>: Default` needs Rust 1.80, and lightd builds with 1.71.
impl Default for GwConf {
    fn default() -> GwConf {
        GwConf {
            exts: Rc::new([]),
            balance: Balance::default(),
            map_extensions: Vec::new(),
            debug: 0,
            proxy_header: Rc::default(),
            proxy_forwarded: Forwarded::default(),
            replace_http_host: false,
            ws_binary: false,
            ws_origins: Vec::new(),
            ws_ping_interval: 0,
        }
    }
}
