//! The checked settings of the modules that hand requests to another program: mod_cgi, and the
//! gateways mod_fastcgi, mod_scgi, mod_proxy and mod_wstunnel, which share lighttpd's
//! `*.server` host syntax. Built at load time; the runtime (`backend/`) only reads them.
//!
//! A gateway host with a `bin-path` is a process pool lightd spawns. Pools are per config, not
//! per request: every host of every block gets an index into `Config::gw_hosts`, and the
//! runtime keeps a pool's processes and its round-robin state under that index.

use std::path::PathBuf;
use std::rc::Rc;
use std::time::Duration;

/// mod_cgi's per-request settings.
#[derive(Clone, Debug, Default)]
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
    /// `socket`: a unix socket path. A spawned pool appends "-<n>" per process.
    Unix(PathBuf),
    /// `host` (a name or an address) and `port`.
    Tcp(String, u16),
}

/// One host of a `*.server` entry, as lighttpd's gw_backend reads it.
#[derive(Clone, Debug)]
pub struct GwHost {
    /// Index into `Config::gw_hosts`: the runtime's pool state for this host.
    pub index: usize,
    /// The host's name in the config ("grisu" in `"grisu" => ( ... )`), or "".
    pub id: String,
    pub addr: Addr,
    /// `bin-path`, split into program and arguments on spaces: spawn the pool.
    pub bin_path: Option<Vec<String>>,
    /// `bin-environment` (name, value) and `bin-copy-environment` (names copied from
    /// lightd's own environment); without either a spawned process gets lightd's whole
    /// environment, as lighttpd does.
    pub bin_env: Vec<(String, String)>,
    pub bin_copy_env: Vec<String>,
    pub min_procs: u32,
    pub max_procs: u32,
    /// `kill-signal` (default SIGTERM): how a pool's processes are told to stop.
    pub kill_signal: i32,
    pub listen_backlog: u32,
    /// `check-local` (default on): the file must exist under the document root.
    pub check_local: bool,
    pub mode: Mode,
    /// `docroot`: DOCUMENT_ROOT and SCRIPT_FILENAME's base for this host.
    pub docroot: Option<PathBuf>,
    /// `strip-request-uri`: a prefix removed from REQUEST_URI.
    pub strip_request_uri: Option<String>,
    /// `fix-root-scriptname`: for the prefix "/", SCRIPT_NAME is "" and PATH_INFO the path.
    pub fix_root_scriptname: bool,
    /// `x-sendfile` (or the older `allow-x-send-file`) and `x-sendfile-docroot`.
    pub x_sendfile: bool,
    pub x_sendfile_docroot: Vec<PathBuf>,
    /// `upgrade`: the host may take the connection over (WebSocket through the gateway).
    pub upgrade: bool,
    /// `tcp-fin-propagate`: pass the client's half-close on to the host.
    pub tcp_fin_propagate: bool,
    /// `connect-timeout`, `write-timeout`, `read-timeout`; zero means none.
    pub connect_timeout: Duration,
    pub write_timeout: Duration,
    pub read_timeout: Duration,
    /// `disable-time`: how long a host that failed is skipped.
    pub disable_time: Duration,
    /// `max-load-per-proc`: a spawned pool grows past min-procs when busier than this.
    pub max_load_per_proc: u32,
}

/// One entry of a `*.server` list: the requests it takes and the hosts that serve them.
#[derive(Clone, Debug)]
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
    /// `map-urlpath`: (prefix, replacement), longest prefix first.
    pub map_urlpath: Vec<(String, String)>,
    /// `upgrade`: pass Upgrade (WebSocket) through.
    pub upgrade: bool,
    /// `connect-method`: tunnel CONNECT.
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
#[derive(Clone, Debug, Default)]
pub struct GwConf {
    /// `*.server`, in config order.
    pub exts: Rc<[GwExt]>,
    pub balance: Balance,
    /// `*.map-extensions`: (suffix, suffix it is handled as).
    pub map_extensions: Vec<(String, String)>,
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
