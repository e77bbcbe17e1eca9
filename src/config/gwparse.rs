//! Parsing and checking of the backends' keys: mod_cgi's `cgi.*`, the gateways' `*.server`
//! host lists and their other keys (`fastcgi.*`, `scgi.*`, `proxy.*`, `wstunnel.*`), and the
//! core keys about request and response bodies (`server.upload-dirs`, `server.stream-*`).
//!
//! Value syntax, defaults and checks follow lighttpd 1.4.85 (mod_cgi.c, gw_backend.c
//! `gw_set_defaults_backend`, mod_fastcgi.c, mod_scgi.c, mod_proxy.c, mod_wstunnel.c,
//! configfile.c). Where lighttpd only logs about a bad value and goes on (an unknown host
//! option, `mode` or `*.balance`), lightd warns with the file and line and does the same.
//! Everything lighttpd refuses is an error naming the file, the line and the reason.
//!
//! Host indices (`Config::gw_hosts`) are given after the whole config is read, by
//! [`index_hosts`]: a host is parsed on its own, but whether it shares a process pool depends
//! on every other block.

use std::path::PathBuf;

use super::parser::Setting;
use super::types::ConfigError;
use super::validate::{err, want_int, want_list};

// ---------------------------------------------------------------------------------------------
// Core: request and response bodies

/// `server.upload-dirs`: where bodies too large for memory are spooled. An empty list means
/// the default, as in lighttpd: $TMPDIR, else /var/tmp.
pub(crate) fn upload_dirs(s: &Setting) -> Result<Vec<PathBuf>, ConfigError> {
    let list = want_list(s)?;
    if list.iter().any(|d| d.is_empty()) {
        return Err(err(s, "a directory must not be empty"));
    }
    if list.is_empty() {
        return Ok(default_upload_dirs());
    }
    Ok(list.into_iter().map(PathBuf::from).collect())
}

/// lighttpd's default spool directory: $TMPDIR, else /var/tmp (chunk.c).
pub(crate) fn default_upload_dirs() -> Vec<PathBuf> {
    let dir = std::env::var_os("TMPDIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/var/tmp"));
    vec![dir]
}

/// lighttpd's spool file size when `server.upload-temp-file-size` is 0 or unset (chunk.c).
pub(crate) const DEFAULT_TEMPFILE_SIZE: u64 = 1024 * 1024;

/// `server.upload-temp-file-size`: bytes per spool file, 0 for lighttpd's default (1 MiB).
pub(crate) fn upload_temp_file_size(s: &Setting) -> Result<u64, ConfigError> {
    let n = want_int(s, 0, i64::from(u32::MAX))?.unsigned_abs();
    Ok(if n == 0 { DEFAULT_TEMPFILE_SIZE } else { n })
}

/// `server.stream-request-body` / `server.stream-response-body`: lighttpd's bits (1: stream,
/// 2: stream with minimal buffering, which implies 1), as 0 (buffer whole), 1 or 2.
pub(crate) fn stream_mode(s: &Setting, warnings: &mut Vec<String>) -> Result<i64, ConfigError> {
    let n = want_int(s, 0, 65535)?;
    if n > 3 {
        warnings.push(format!(
            "{}: only its two low bits mean anything (1: stream, 2: stream with minimal \
             buffering); {n} is read as {}",
            s.key,
            n & 3
        ));
    }
    Ok(if n & 2 != 0 { 2 } else { n & 1 })
}

/// Helpers for the value types lighttpd's modules read, shared by mod_cgi and the gateways.
#[cfg(any(
    feature = "cgi",
    feature = "fastcgi",
    feature = "scgi",
    feature = "proxy",
    feature = "wstunnel"
))]
mod common {
    use std::path::PathBuf;

    use crate::config::value::Value;

    /// lighttpd's `buffer_path_simplify` followed by `buffer_append_slash`, for the
    /// `x-sendfile-docroot` lists: "//a/./b/../c" becomes "/a/c/". The caller checked that
    /// `p` starts with "/"; ".." never climbs above the root.
    pub(super) fn simplify_dir(p: &str) -> PathBuf {
        let mut parts: Vec<&str> = Vec::new();
        for seg in p.split('/') {
            match seg {
                "" | "." => {}
                ".." => {
                    parts.pop();
                }
                s => parts.push(s),
            }
        }
        let mut out = String::with_capacity(p.len() + 1);
        for seg in parts {
            out.push('/');
            out.push_str(seg);
        }
        out.push('/');
        PathBuf::from(out)
    }

    /// An `x-sendfile-docroot` list: absolute paths, simplified, each ending in "/".
    pub(super) fn docroots(list: &[String]) -> Result<Vec<PathBuf>, String> {
        list.iter()
            .map(|d| {
                if d.starts_with('/') {
                    Ok(simplify_dir(d))
                } else {
                    Err(format!(
                        "paths must begin with '/'; invalid: \"{}\"",
                        d.escape_debug()
                    ))
                }
            })
            .collect()
    }

    /// lighttpd's T_CONFIG_INT: a non-negative integer (or decimal string) up to `max`.
    pub(super) fn int(v: &Value, max: i64) -> Result<u64, String> {
        let n = match v {
            Value::Int(n) => Some(*n),
            Value::Str(t) => t.parse::<i64>().ok(),
            Value::Array(_) => None,
        };
        match n {
            Some(n) if (0..=max).contains(&n) => Ok(n.unsigned_abs()),
            _ => Err(format!(
                "expected an integer from 0 to {max}, got {}",
                v.describe()
            )),
        }
    }

    /// lighttpd's boolean: "enable", "enabled", "true", "1" or an integer other than 0 for
    /// on, "disable", "disabled", "false", "0" or 0 for off (case-insensitive), plus
    /// lightd's "on" and "off".
    pub(super) fn boolean(v: &Value) -> Result<bool, String> {
        const YES: [&str; 5] = ["enable", "enabled", "true", "1", "on"];
        const NO: [&str; 5] = ["disable", "disabled", "false", "0", "off"];
        match v {
            Value::Int(n) => Ok(*n != 0),
            Value::Str(t) if YES.iter().any(|y| y.eq_ignore_ascii_case(t)) => Ok(true),
            Value::Str(t) if NO.iter().any(|y| y.eq_ignore_ascii_case(t)) => Ok(false),
            other => Err(format!(
                "expected \"enable\" or \"disable\", got {}",
                other.describe()
            )),
        }
    }

    /// The highest signal number a process can be sent here.
    pub(super) const MAX_SIGNAL: u32 = 64;
}

// ---------------------------------------------------------------------------------------------
// mod_cgi

#[cfg(feature = "cgi")]
pub(crate) use cgi::*;

#[cfg(feature = "cgi")]
mod cgi {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::common::{boolean, docroots, int, MAX_SIGNAL};
    use super::{err, want_list};
    use crate::config::gateway::CgiLimits;
    use crate::config::parser::Setting;
    use crate::config::types::ConfigError;
    use crate::config::validate::{want_map, MAX_SECS};
    use crate::config::value::Value;

    /// A signal by name ("TERM", "SIGTERM", "term"), as lighttpd's mod_cgi reads them.
    fn signal_by_name(name: &str) -> Option<i32> {
        let upper = name.to_ascii_uppercase();
        let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
        let sig = match bare {
            "HUP" => libc::SIGHUP,
            "INT" => libc::SIGINT,
            "QUIT" => libc::SIGQUIT,
            "ILL" => libc::SIGILL,
            "TRAP" => libc::SIGTRAP,
            "ABRT" => libc::SIGABRT,
            "BUS" => libc::SIGBUS,
            "FPE" => libc::SIGFPE,
            "KILL" => libc::SIGKILL,
            "USR1" => libc::SIGUSR1,
            "SEGV" => libc::SIGSEGV,
            "USR2" => libc::SIGUSR2,
            "PIPE" => libc::SIGPIPE,
            "ALRM" => libc::SIGALRM,
            "TERM" => libc::SIGTERM,
            "CHLD" => libc::SIGCHLD,
            "CONT" => libc::SIGCONT,
            "URG" => libc::SIGURG,
            "XCPU" => libc::SIGXCPU,
            "XFSZ" => libc::SIGXFSZ,
            "WINCH" => libc::SIGWINCH,
            "POLL" | "IO" => libc::SIGIO,
            _ => return None,
        };
        Some(sig)
    }

    /// `cgi.assign`: (suffix, interpreter) in config order; "" runs the file itself.
    pub(crate) fn assign(s: &Setting) -> Result<Vec<(String, Option<PathBuf>)>, ConfigError> {
        let map = want_map(s)?;
        Ok(map
            .into_iter()
            .map(|(k, v)| (k, (!v.is_empty()).then(|| PathBuf::from(v))))
            .collect())
    }

    /// `cgi.x-sendfile-docroot`.
    pub(crate) fn x_sendfile_docroot(s: &Setting) -> Result<Vec<PathBuf>, ConfigError> {
        docroots(&want_list(s)?).map_err(|e| err(s, e))
    }

    /// `cgi.limits = ( "read-timeout" => 30, "write-timeout" => 30, "tcp-fin-propagate" =>
    /// "SIGTERM" )`. Keys are case-insensitive; an unknown key is logged and skipped, as
    /// lighttpd does.
    pub(crate) fn limits(
        s: &Setting,
        warnings: &mut Vec<String>,
    ) -> Result<CgiLimits, ConfigError> {
        const SYNTAX: &str = "expected ( \"read-timeout\" => 30, \"write-timeout\" => 30, \
                              \"tcp-fin-propagate\" => \"SIGTERM\" )";
        let Value::Array(items) = &s.value else {
            return Err(err(s, format!("{SYNTAX}, got {}", s.value.describe())));
        };
        let mut out = CgiLimits::default();
        for (k, v) in items {
            let Some(k) = k else {
                return Err(err(
                    s,
                    format!("{SYNTAX}: an entry has no key ({})", v.describe()),
                ));
            };
            let secs = |v: &Value| {
                int(v, MAX_SECS)
                    .map(Duration::from_secs)
                    .map_err(|e| err(s, format!("\"{}\": {e}", k.escape_debug())))
            };
            if k.eq_ignore_ascii_case("read-timeout") {
                out.read_timeout = secs(v)?;
            } else if k.eq_ignore_ascii_case("write-timeout") {
                out.write_timeout = secs(v)?;
            } else if k.eq_ignore_ascii_case("tcp-fin-propagate") {
                out.fin_signal = fin_signal(s, v, warnings)?;
            } else {
                warnings.push(format!(
                    "{}: unrecognized cgi.limits param: \"{}\" (ignored; known: read-timeout, \
                     write-timeout, tcp-fin-propagate)",
                    s.key,
                    k.escape_debug()
                ));
            }
        }
        Ok(out)
    }

    /// `tcp-fin-propagate`: a signal number, a signal name, or "enable" (SIGTERM) and
    /// "disable" (none). lighttpd takes an unknown name as SIGTERM; lightd does too, with a
    /// warning, except for "disable", which it takes at its word.
    fn fin_signal(s: &Setting, v: &Value, warnings: &mut Vec<String>) -> Result<i32, ConfigError> {
        let bad = |what: String| err(s, format!("\"tcp-fin-propagate\": {what}"));
        let n = match v {
            Value::Int(n) => *n,
            Value::Str(t) => match t.parse::<i64>() {
                Ok(n) => n,
                Err(_) => {
                    if let Some(sig) = signal_by_name(t) {
                        return Ok(sig);
                    }
                    return match boolean(v) {
                        Ok(true) => Ok(libc::SIGTERM),
                        Ok(false) => Ok(0),
                        Err(_) => {
                            warnings.push(format!(
                                "{}: \"tcp-fin-propagate\": unknown signal \"{}\"; SIGTERM is \
                                 sent, as lighttpd does",
                                s.key,
                                t.escape_debug()
                            ));
                            Ok(libc::SIGTERM)
                        }
                    };
                }
            },
            other => {
                return Err(bad(format!(
                    "expected a signal number or name, got {}",
                    other.describe()
                )))
            }
        };
        match u32::try_from(n) {
            Ok(sig) if sig <= MAX_SIGNAL => Ok(sig as i32),
            _ => Err(bad(format!(
                "expected a signal number from 0 to {MAX_SIGNAL} or a signal name, got {n}"
            ))),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The gateways

#[cfg(any(
    feature = "fastcgi",
    feature = "scgi",
    feature = "proxy",
    feature = "wstunnel"
))]
pub(crate) use gw::*;

#[cfg(any(
    feature = "fastcgi",
    feature = "scgi",
    feature = "proxy",
    feature = "wstunnel"
))]
mod gw {
    use std::path::PathBuf;
    use std::rc::Rc;
    use std::time::Duration;

    use super::common::{boolean, docroots, int, MAX_SIGNAL};
    use super::err;
    use crate::config::gateway::{Addr, Balance, GwExt, GwHost, Mode, Proto};
    use crate::config::keys::suggest;
    use crate::config::parser::Setting;
    use crate::config::table::Val;
    use crate::config::types::{CondChain, Config, ConfigError, Loc, ReqSetting};
    use crate::config::validate::{want_str, MAX_SECS};
    use crate::config::value::Value;

    /// lighttpd's T_CONFIG_SHORT: an integer (or a decimal string) from 0 to 65535; 65536
    /// is taken as 65535, as lighttpd does.
    fn short(v: &Value) -> Result<u32, String> {
        let n = match v {
            Value::Int(n) => Some(*n),
            Value::Str(t) => t.parse::<i64>().ok(),
            Value::Array(_) => None,
        };
        match n {
            Some(n @ 0..=65535) => Ok(n as u32),
            Some(65536) => Ok(65535),
            _ => Err(format!(
                "expected an integer from 0 to 65535, got {}",
                v.describe()
            )),
        }
    }

    fn string(v: &Value) -> Result<&str, String> {
        match v {
            Value::Str(t) => Ok(t),
            other => Err(format!("expected a string, got {}", other.describe())),
        }
    }

    /// A list of strings without keys (lighttpd's T_CONFIG_ARRAY_VLIST).
    fn vlist(v: &Value) -> Result<Vec<String>, String> {
        let bad = || {
            format!(
                "expected a list of strings such as ( \"a\", \"b\" ), got {}",
                v.describe()
            )
        };
        let Value::Array(items) = v else {
            return Err(bad());
        };
        items
            .iter()
            .map(|(k, x)| match (k, x) {
                (None, Value::Str(x)) => Ok(x.clone()),
                _ => Err(bad()),
            })
            .collect()
    }

    /// A map of strings (lighttpd's T_CONFIG_ARRAY_KVSTRING).
    fn kvstring(v: &Value) -> Result<Vec<(String, String)>, String> {
        let bad = || {
            format!(
                "expected a map of strings such as ( \"a\" => \"b\" ), got {}",
                v.describe()
            )
        };
        let Value::Array(items) = v else {
            return Err(bad());
        };
        items
            .iter()
            .map(|(k, x)| match (k, x) {
                (Some(k), Value::Str(x)) => Ok((k.clone(), x.clone())),
                _ => Err(bad()),
            })
            .collect()
    }

    /// The host options gw_backend.c reads, for "did you mean" hints.
    const HOST_OPTIONS: &[&str] = &[
        "host",
        "port",
        "socket",
        "listen-backlog",
        "bin-path",
        "kill-signal",
        "check-local",
        "mode",
        "docroot",
        "min-procs",
        "max-procs",
        "max-load-per-proc",
        "idle-timeout",
        "disable-time",
        "bin-environment",
        "bin-copy-environment",
        "broken-scriptfilename",
        "strip-request-uri",
        "fix-root-scriptname",
        "allow-x-send-file",
        "x-sendfile",
        "x-sendfile-docroot",
        "tcp-fin-propagate",
        "connect-timeout",
        "write-timeout",
        "read-timeout",
        "upgrade",
    ];

    /// Longest host name lighttpd accepts in `"name" => ( ... )`.
    const MAX_HOST_NAME: usize = 128;

    /// lighttpd's limit on a unix socket path: with its NUL, at most sizeof(sun_path) - 2.
    const MAX_SOCKET_PATH: usize = 105;

    /// lighttpd's default listen backlog for spawned processes: SOMAXCONN, at least 1024.
    /// The module a gateway protocol belongs to, for messages.
    pub(crate) fn module(proto: Proto) -> &'static str {
        match proto {
            Proto::FastCgi => "mod_fastcgi",
            Proto::Scgi => "mod_scgi",
            Proto::Proxy => "mod_proxy",
            Proto::WsTunnel => "mod_wstunnel",
        }
    }

    /// One host of an entry, for messages: `".php" => "grisu"`, or `".php" => host 2` for the
    /// unnamed form.
    fn label(ext: &str, name: Option<&str>, n: usize) -> String {
        match name {
            Some(name) => format!("\"{}\" => \"{}\"", ext.escape_debug(), name.escape_debug()),
            None => format!("\"{}\" => host {}", ext.escape_debug(), n + 1),
        }
    }

    /// `*.server`: `( "<ext>" => ( "<name>" => ( options ) ), ... )` or, without host names,
    /// `( "<ext>" => ( ( options ), ... ), ... )`. Every host is checked as gw_backend.c does;
    /// indices are given later ([`index_hosts`]).
    pub(crate) fn server(
        s: &Setting,
        proto: Proto,
        warnings: &mut Vec<String>,
    ) -> Result<Val, ConfigError> {
        const SYNTAX: &str = "expected ( \".ext\" => ( \"name\" => ( \"host\" => \"127.0.0.1\", \
                              \"port\" => 9000 ) ), ... )";
        let Value::Array(entries) = &s.value else {
            return Err(err(s, format!("{SYNTAX}, got {}", s.value.describe())));
        };
        let mut exts: Vec<GwExt> = Vec::with_capacity(entries.len());
        for (ext, hosts) in entries {
            let Some(ext) = ext else {
                return Err(err(
                    s,
                    format!("{SYNTAX}: an entry has no extension or path prefix"),
                ));
            };
            let Value::Array(hosts) = hosts else {
                return Err(err(
                    s,
                    format!(
                        "{SYNTAX}: got {} for \"{}\"",
                        hosts.describe(),
                        ext.escape_debug()
                    ),
                ));
            };
            let mut list = Vec::with_capacity(hosts.len());
            for (n, (name, opts)) in hosts.iter().enumerate() {
                let here = label(ext, name.as_deref(), n);
                let Value::Array(opts) = opts else {
                    return Err(err(
                        s,
                        format!(
                            "{here}: expected the host's options in a list of their own, such \
                             as ( \"{}\" => ( ( \"host\" => \"127.0.0.1\", \"port\" => 9000 ) ) \
                             ), got {}",
                            ext.escape_debug(),
                            opts.describe()
                        ),
                    ));
                };
                if name.as_ref().is_some_and(|n| n.len() > MAX_HOST_NAME) {
                    return Err(err(
                        s,
                        format!("{here}: a host name is at most {MAX_HOST_NAME} bytes"),
                    ));
                }
                let host = host(
                    s,
                    proto,
                    &here,
                    name.as_deref().unwrap_or(""),
                    opts,
                    warnings,
                )?;
                list.push(Rc::new(host));
            }
            if list.is_empty() {
                warnings.push(format!(
                    "{}: \"{}\" has no hosts and is ignored, as lighttpd does",
                    s.key,
                    ext.escape_debug()
                ));
                continue;
            }
            exts.push(GwExt {
                key: ext.clone(),
                hosts: list,
            });
        }
        Ok(Val::GwServer(proto, exts.into()))
    }

    /// One host's options, checked and defaulted as gw_set_defaults_backend does.
    fn host(
        s: &Setting,
        proto: Proto,
        here: &str,
        id: &str,
        opts: &[(Option<String>, Value)],
        warnings: &mut Vec<String>,
    ) -> Result<GwHost, ConfigError> {
        let mut h = GwHost::new(id, Addr::Tcp(String::new(), 0));
        let mut host: Option<String> = None;
        let mut port = 0u32;
        let mut socket: Option<String> = None;
        let mut bin_path: Option<String> = None;
        for (k, v) in opts {
            let Some(k) = k else {
                return Err(err(
                    s,
                    format!(
                        "{here}: an option has no name ({}); expected ( \"host\" => \
                         \"127.0.0.1\", \"port\" => 9000, ... )",
                        v.describe()
                    ),
                ));
            };
            // Each option's message names the option and the host.
            let bad = |e: String| err(s, format!("{here}: \"{}\": {e}", k.escape_debug()));
            let secs = |v: &Value| int(v, MAX_SECS).map(Duration::from_secs).map_err(bad);
            match k.as_str() {
                "host" => {
                    host = Some(string(v).map_err(bad)?.to_string()).filter(|x| !x.is_empty())
                }
                "port" => port = short(v).map_err(bad)?,
                "socket" => {
                    socket = Some(string(v).map_err(bad)?.to_string()).filter(|x| !x.is_empty())
                }
                "listen-backlog" => {
                    h.listen_backlog = int(v, i64::from(i32::MAX)).map_err(bad)? as u32
                }
                "bin-path" => {
                    bin_path = Some(string(v).map_err(bad)?.to_string()).filter(|x| !x.is_empty())
                }
                "kill-signal" => {
                    let n = short(v).map_err(bad)?;
                    if n == 0 || n > MAX_SIGNAL {
                        return Err(bad(format!(
                            "expected a signal number from 1 to {MAX_SIGNAL}, got {n}"
                        )));
                    }
                    h.kill_signal = n as i32;
                }
                "check-local" => h.check_local = boolean(v).map_err(bad)?,
                "mode" => match string(v).map_err(bad)? {
                    "" | "responder" => h.mode = Mode::Responder,
                    "authorizer" => h.mode = Mode::Authorizer,
                    other => warnings.push(format!(
                        "{}: {here}: unknown mode \"{}\" (ignored, mode set to responder, as \
                         lighttpd does)",
                        s.key,
                        other.escape_debug()
                    )),
                },
                "docroot" => {
                    h.docroot = Some(string(v).map_err(bad)?)
                        .filter(|d| !d.is_empty())
                        .map(PathBuf::from)
                }
                "min-procs" => h.min_procs = short(v).map_err(bad)?,
                "max-procs" => h.max_procs = short(v).map_err(bad)?,
                "max-load-per-proc" => h.max_load_per_proc = short(v).map_err(bad)?,
                "idle-timeout" => {
                    h.idle_timeout = Duration::from_secs(short(v).map_err(bad)?.into())
                }
                "disable-time" => {
                    h.disable_time = Duration::from_secs(short(v).map_err(bad)?.into())
                }
                "bin-environment" => {
                    let env = kvstring(v).map_err(bad)?;
                    for (name, value) in &env {
                        if name.is_empty() || name.contains(['=', '\0']) || value.contains('\0') {
                            return Err(bad(format!(
                                "\"{}\" is not a valid environment variable",
                                name.escape_debug()
                            )));
                        }
                    }
                    h.bin_env = env;
                }
                "bin-copy-environment" => {
                    let names = vlist(v).map_err(bad)?;
                    if let Some(name) = names
                        .iter()
                        .find(|n| n.is_empty() || n.contains(['=', '\0']))
                    {
                        return Err(bad(format!(
                            "\"{}\" is not a valid environment variable name",
                            name.escape_debug()
                        )));
                    }
                    h.bin_copy_env = names;
                }
                "broken-scriptfilename" => h.broken_scriptfilename = boolean(v).map_err(bad)?,
                "strip-request-uri" => {
                    let mut p = string(v).map_err(bad)?.to_string();
                    // lighttpd drops one trailing slash (http_cgi.c adds it back).
                    if p.ends_with('/') {
                        p.pop();
                    }
                    h.strip_request_uri = Some(p).filter(|p| !p.is_empty());
                }
                "fix-root-scriptname" => h.fix_root_scriptname = boolean(v).map_err(bad)?,
                "allow-x-send-file" | "x-sendfile" => h.x_sendfile = boolean(v).map_err(bad)?,
                "x-sendfile-docroot" => {
                    h.x_sendfile_docroot = docroots(&vlist(v).map_err(bad)?).map_err(bad)?
                }
                "tcp-fin-propagate" => h.tcp_fin_propagate = boolean(v).map_err(bad)?,
                "connect-timeout" => h.connect_timeout = secs(v)?,
                "write-timeout" => h.write_timeout = secs(v)?,
                "read-timeout" => h.read_timeout = secs(v)?,
                "upgrade" => h.upgrade = boolean(v).map_err(bad)?,
                other => {
                    // lighttpd says nothing about unknown options (only about '_' in them);
                    // a warning with a suggestion catches the typo it would hide.
                    let dashed = other.replace('_', "-");
                    let hint = if HOST_OPTIONS.contains(&dashed.as_str()) {
                        format!("; did you mean \"{dashed}\" (with '-' instead of '_')?")
                    } else {
                        suggest(other, HOST_OPTIONS.iter().copied())
                            .map(|m| format!("; did you mean \"{m}\"?"))
                            .unwrap_or_default()
                    };
                    warnings.push(format!(
                        "{}: {here}: unknown option \"{}\" is ignored{hint}",
                        s.key,
                        other.escape_debug()
                    ));
                }
            }
        }

        let fail = |m: String| err(s, format!("{here}: {m}"));
        if (host.is_some() || port != 0) && socket.is_some() {
            return Err(fail(
                "either \"host\"/\"port\" or \"socket\" may be set, not both".to_string(),
            ));
        }
        // A host that is a path is a unix socket (lighttpd).
        if socket.is_none() && host.as_deref().is_some_and(|x| x.starts_with('/')) {
            socket = host.take();
        }
        if socket.is_none() && bin_path.is_some() && port == 0 {
            return Err(fail(
                "\"bin-path\" needs a \"socket\" or a \"port\" for the spawned processes to \
                 listen on"
                    .to_string(),
            ));
        }
        if bin_path.is_some() {
            if h.max_procs == 0 {
                return Err(fail("\"max-procs\" must be at least 1".to_string()));
            }
            h.min_procs = h.min_procs.min(h.max_procs);
        } else {
            // Not spawned: one "process", the address itself (lighttpd).
            h.min_procs = 1;
            h.max_procs = 1;
        }
        h.addr = match socket {
            Some(path) => {
                // Spawned processes listen on "<path>-<n>".
                let suffix = match bin_path {
                    Some(_) => 1 + (h.max_procs - 1).to_string().len(),
                    None => 0,
                };
                if path.contains('\0') {
                    return Err(fail("the socket path contains a NUL byte".to_string()));
                }
                if path.len() + suffix > MAX_SOCKET_PATH {
                    return Err(fail(format!(
                        "the socket path is too long (at most {MAX_SOCKET_PATH} bytes{}): \"{}\"",
                        if suffix > 0 {
                            ", with the \"-<n>\" each spawned process adds"
                        } else {
                            ""
                        },
                        path.escape_debug()
                    )));
                }
                Addr::Unix(PathBuf::from(path))
            }
            None => {
                if host.is_none() && bin_path.is_none() {
                    return Err(fail("\"host\" or \"bin-path\" must be set".to_string()));
                }
                let port = if port == 0 { 80 } else { port };
                // Spawned process n listens on port + n.
                if bin_path.is_some() && port + (h.max_procs - 1) > 65535 {
                    return Err(fail(format!(
                        "\"port\" {port} with \"max-procs\" {} needs ports above 65535",
                        h.max_procs
                    )));
                }
                Addr::Tcp(host.unwrap_or_else(|| "127.0.0.1".to_string()), port as u16)
            }
        };
        h.bin_path = bin_path.map(|b| {
            // lighttpd splits on each space or tab, keeping empty arguments.
            let args: Vec<String> = b.split([' ', '\t']).map(str::to_string).collect();
            if proto == Proto::Scgi && args.len() != 1 {
                // mod_scgi's old behaviour: a command line runs through the shell.
                vec!["/bin/sh".to_string(), "-c".to_string(), format!("exec {b}")]
            } else {
                args
            }
        });
        match proto {
            Proto::FastCgi => {}
            Proto::Scgi if h.mode == Mode::Authorizer => {
                return Err(fail(
                    "\"mode\" = \"authorizer\" is only supported by mod_fastcgi in lightd"
                        .to_string(),
                ))
            }
            Proto::Scgi => {}
            Proto::Proxy | Proto::WsTunnel => {
                if h.mode == Mode::Authorizer {
                    return Err(err(
                        s,
                        "must not define any hosts with attribute \"mode\" = \"authorizer\"",
                    ));
                }
                // These modules never look for a local file (lighttpd).
                h.check_local = false;
            }
        }
        Ok(h)
    }

    /// `*.balance`: lighttpd logs an unknown method and uses least-connection; so does
    /// lightd, with a warning.
    pub(crate) fn balance(s: &Setting, warnings: &mut Vec<String>) -> Result<Val, ConfigError> {
        let b = match want_str(s)? {
            "" | "fair" | "least-connection" => Balance::Fair,
            "round-robin" => Balance::RoundRobin,
            "hash" => Balance::Hash,
            "sticky" => Balance::Sticky,
            other => {
                warnings.push(format!(
                    "{} has to be one of: least-connection, round-robin, hash, sticky, but not: \
                     \"{}\"; using least-connection, as lighttpd does",
                    s.key,
                    other.escape_debug()
                ));
                Balance::Fair
            }
        };
        Ok(Val::Balance(b))
    }

    /// `scgi.protocol`: "scgi". lighttpd also has "uwsgi", which lightd does not implement.
    #[cfg(feature = "scgi")]
    pub(crate) fn scgi_protocol(s: &Setting) -> Result<Val, ConfigError> {
        match want_str(s)? {
            "scgi" => Ok(Val::Bool(true)),
            "uwsgi" => Err(err(
                s,
                "\"uwsgi\" is not supported by lightd (it has no uwsgi protocol); only \
                 \"scgi\" is",
            )),
            other => Err(err(
                s,
                format!(
                    "expected \"scgi\" or \"uwsgi\", got \"{}\"",
                    other.escape_debug()
                ),
            )),
        }
    }

    /// `proxy.forwarded = ( "for" => 1, "proto" => "enable", ... )`.
    #[cfg(feature = "proxy")]
    pub(crate) fn forwarded(s: &Setting) -> Result<Val, ConfigError> {
        use crate::config::gateway::Forwarded;
        let Value::Array(items) = &s.value else {
            return Err(err(
                s,
                format!(
                    "expected ( \"for\" => \"enable\", ... ), got {}",
                    s.value.describe()
                ),
            ));
        };
        let mut f = Forwarded::default();
        for (k, v) in items {
            let slot = match k.as_deref() {
                Some("by") => &mut f.by,
                Some("for") => &mut f.for_,
                Some("host") => &mut f.host,
                Some("proto") => &mut f.proto,
                Some("remote_user") => &mut f.remote_user,
                other => {
                    return Err(err(
                        s,
                        format!(
                            "keys must be one of: by, for, host, proto, remote_user, but not: \
                             {}",
                            other.map_or_else(
                                || format!("an entry without a key ({})", v.describe()),
                                |k| format!("\"{}\"", k.escape_debug())
                            )
                        ),
                    ))
                }
            };
            *slot = boolean(v).map_err(|_| {
                err(
                    s,
                    format!(
                        "values must be one of: 0, 1, enable, disable; error for key: {}",
                        k.as_deref().unwrap_or_default()
                    ),
                )
            })?;
        }
        Ok(Val::Forwarded(f))
    }

    /// `proxy.header = ( "map-host-request" => ( "-" => "backend.example" ), "upgrade" =>
    /// "enable", ... )`.
    #[cfg(feature = "proxy")]
    pub(crate) fn proxy_header(s: &Setting) -> Result<Val, ConfigError> {
        use crate::config::gateway::ProxyHeader;
        let Value::Array(items) = &s.value else {
            return Err(err(
                s,
                format!(
                    "expected ( \"map-urlpath\" => ( \"/a\" => \"/b\" ), ... ), got {}",
                    s.value.describe()
                ),
            ));
        };
        let mut h = ProxyHeader::default();
        for (k, v) in items {
            let Some(k) = k.as_deref() else {
                return Err(err(s, format!("an entry has no key ({})", v.describe())));
            };
            let flag = match k {
                "https-remap" => Some(&mut h.https_remap),
                "force-http10" => Some(&mut h.force_http10),
                "upgrade" => Some(&mut h.upgrade),
                "connect" => Some(&mut h.connect_method),
                _ => None,
            };
            if let Some(flag) = flag {
                *flag = boolean(v).map_err(|_| {
                    err(
                        s,
                        format!(
                            "expected \"{k}\" => \"enable\" or \"disable\", got {}",
                            v.describe()
                        ),
                    )
                })?;
                continue;
            }
            let map = match k {
                "map-urlpath" => Some(&mut h.map_urlpath),
                "map-host-request" => Some(&mut h.map_host_request),
                "map-host-response" => Some(&mut h.map_host_response),
                _ => None,
            };
            if let Some(map) = map {
                *map = kvstring(v).map_err(|_| {
                    err(
                        s,
                        format!(
                            "expected ( \"{k}\" => ( \"key\" => \"value\" ) ), got {}",
                            v.describe()
                        ),
                    )
                })?;
                continue;
            }
            let list = match k {
                "map-urlpath-resp-host-include" => Some(&mut h.map_urlpath_resp_host_include),
                "map-urlpath-resp-host-exclude" => Some(&mut h.map_urlpath_resp_host_exclude),
                _ => None,
            };
            if let Some(list) = list {
                *list = vlist(v).map_err(|_| {
                    err(
                        s,
                        format!("expected ( \"{k}\" => ( \"list\" ) ), got {}", v.describe()),
                    )
                })?;
                continue;
            }
            let hint = suggest(
                k,
                [
                    "https-remap",
                    "force-http10",
                    "upgrade",
                    "connect",
                    "map-urlpath",
                    "map-host-request",
                    "map-host-response",
                    "map-urlpath-resp-host-include",
                    "map-urlpath-resp-host-exclude",
                ]
                .into_iter(),
            )
            .map(|m| format!("; did you mean \"{m}\"?"))
            .unwrap_or_default();
            return Err(err(
                s,
                format!("unexpected key \"{}\"{hint}", k.escape_debug()),
            ));
        }
        Ok(Val::ProxyHeader(Rc::new(h)))
    }

    /// `wstunnel.origins`: allowed Origin suffixes; an empty string is an error (lighttpd).
    #[cfg(feature = "wstunnel")]
    pub(crate) fn origins(s: &Setting) -> Result<Val, ConfigError> {
        use crate::config::validate::want_list;
        let list = want_list(s)?;
        if list.iter().any(String::is_empty) {
            return Err(err(s, "unexpected empty string"));
        }
        Ok(Val::List(list))
    }

    /// Give every host of every `*.server` (the global block's, then each conditional
    /// branch's, in config order) its index into `Config::gw_hosts`, and fill that list.
    ///
    /// lighttpd spawns a `bin-path` pool once per unix socket: a second definition with the
    /// same socket and bin-path anywhere in the config is the first one (gw_backend.c,
    /// `unixsocket_is_dup`), and the same socket with another bin-path is an error. A TCP
    /// host it spawns again, and the second spawn finds the port taken and uses the running
    /// processes. lightd shares one index for the same address and bin-path, unix or TCP,
    /// and refuses one address with two bin-paths or two protocols. Identical definitions
    /// (every option equal, same protocol) share their index too, spawned or not.
    ///
    /// Also: with `server.max-worker` above 1, a spawned pool does not grow on its own (as
    /// lighttpd disables adaptive spawning with workers): min-procs becomes max-procs.
    pub(crate) fn index_hosts(
        cfg: &mut Config,
        warnings: &mut Vec<String>,
    ) -> Result<(), ConfigError> {
        let mut ix = Indexer {
            max_worker: cfg.max_worker,
            hosts: Vec::new(),
            seen: Vec::new(),
            pools: Vec::new(),
        };
        let locs = &cfg.locs;
        let loc = |name: &str, id: Option<usize>| -> Option<Loc> {
            match id {
                Some(id) => locs.get(&format!("{name}@{id}")).cloned(),
                None => locs.get(name).cloned(),
            }
        };
        for set in cfg.base_settings.iter_mut() {
            if ix.reindex(set, loc(set.name(), None), warnings)? {
                set.apply(&mut cfg.base);
            }
        }
        // Depth-first in config order; bounded by the config's own size (at most
        // MAX_COND_BRANCHES branches).
        let mut stack: Vec<&mut CondChain> = cfg.conds.iter_mut().rev().collect();
        while let Some(chain) = stack.pop() {
            let mut children: Vec<&mut CondChain> = Vec::new();
            for b in chain.branches.iter_mut() {
                for set in b.settings.iter_mut() {
                    ix.reindex(set, loc(set.name(), Some(b.id)), warnings)?;
                }
                children.extend(b.children.iter_mut());
            }
            stack.extend(children.into_iter().rev());
        }
        cfg.gw_hosts = ix.hosts;
        Ok(())
    }

    /// A spawned pool: its first definition (whose spawn options it uses), protocol, and
    /// where that was written.
    struct Pool {
        first: Rc<GwHost>,
        proto: Proto,
        key: &'static str,
        loc: Option<Loc>,
    }

    impl Pool {
        /// "fastcgi.server (T/main.conf:3)", for messages.
        fn place(&self) -> String {
            match &self.loc {
                Some(l) => format!("{} ({l})", self.key),
                None => self.key.to_string(),
            }
        }
    }

    struct Indexer {
        max_worker: u32,
        /// `Config::gw_hosts` being built.
        hosts: Vec<Rc<GwHost>>,
        /// Every distinct definition made so far (pool members with their own options
        /// included) and its protocol, so identical ones share one value.
        seen: Vec<(Proto, Rc<GwHost>)>,
        pools: Vec<Pool>,
    }

    /// Whether two definitions are the same apart from their index.
    fn same(a: &GwHost, b: &GwHost) -> bool {
        let mut b = b.clone();
        b.index = a.index;
        *a == b
    }

    /// The options a spawned pool takes from its first definition.
    fn same_spawn(a: &GwHost, b: &GwHost) -> bool {
        a.bin_env == b.bin_env
            && a.bin_copy_env == b.bin_copy_env
            && a.min_procs == b.min_procs
            && a.max_procs == b.max_procs
            && a.kill_signal == b.kill_signal
            && a.listen_backlog == b.listen_backlog
            && a.max_load_per_proc == b.max_load_per_proc
            && a.idle_timeout == b.idle_timeout
    }

    impl Indexer {
        /// Re-index one setting's hosts; true if it is a `*.server` setting (so the caller
        /// applies it again).
        fn reindex(
            &mut self,
            set: &mut ReqSetting,
            loc: Option<Loc>,
            warnings: &mut Vec<String>,
        ) -> Result<bool, ConfigError> {
            let Val::GwServer(proto, exts) = &set.val else {
                return Ok(false);
            };
            let proto = *proto;
            let key = set.name();
            let mut out = Vec::with_capacity(exts.len());
            for e in exts.iter() {
                let mut hosts = Vec::with_capacity(e.hosts.len());
                for h in &e.hosts {
                    hosts.push(self.place(h, proto, key, &loc, warnings)?);
                }
                out.push(GwExt {
                    key: e.key.clone(),
                    hosts,
                });
            }
            set.val = Val::GwServer(proto, out.into());
            Ok(true)
        }

        fn place(
            &mut self,
            h: &GwHost,
            proto: Proto,
            key: &'static str,
            loc: &Option<Loc>,
            warnings: &mut Vec<String>,
        ) -> Result<Rc<GwHost>, ConfigError> {
            let at = loc.as_ref().map(|l| format!("{l}: ")).unwrap_or_default();
            let mut h = h.clone();
            if self.max_worker > 1 && h.bin_path.is_some() && h.min_procs != h.max_procs {
                h.min_procs = h.max_procs;
                warnings.push(format!(
                    "{at}{key}: {}: adaptive backend spawning disabled (server.max-worker is \
                     {}): min-procs is max-procs, {}",
                    h.addr, self.max_worker, h.max_procs
                ));
            }
            if let Some((_, same_def)) = self.seen.iter().find(|(p, s)| *p == proto && same(s, &h))
            {
                // The same pool or host, written again (often by `+=` in a block).
                return Ok(Rc::clone(same_def));
            }
            let pool = match h.bin_path {
                Some(_) => self.pools.iter().find(|p| p.first.addr == h.addr),
                None => None,
            };
            if let Some(pool) = pool {
                if pool.first.bin_path != h.bin_path || pool.proto != proto {
                    return Err(ConfigError {
                        loc: loc.clone(),
                        msg: format!(
                            "{key}: {} is where {} spawns \"{}\"; another bin-path or protocol \
                             cannot use the same address (lighttpd: duplicate unixsocket path)",
                            h.addr,
                            pool.place(),
                            pool.first
                                .bin_path
                                .as_deref()
                                .unwrap_or_default()
                                .join(" ")
                                .escape_debug()
                        ),
                    });
                }
                if !same_spawn(&pool.first, &h) {
                    warnings.push(format!(
                        "{at}{key}: {} shares the process pool that {} spawns; the pool's \
                         options (bin-environment, min-procs, max-procs, ...) are those of that \
                         first definition, as in lighttpd",
                        h.addr,
                        pool.place()
                    ));
                }
                h.index = pool.first.index;
                let rc = Rc::new(h);
                self.seen.push((proto, Rc::clone(&rc)));
                return Ok(rc);
            }
            h.index = self.hosts.len();
            let rc = Rc::new(h);
            if rc.bin_path.is_some() {
                self.pools.push(Pool {
                    first: Rc::clone(&rc),
                    proto,
                    key,
                    loc: loc.clone(),
                });
            }
            self.hosts.push(Rc::clone(&rc));
            self.seen.push((proto, Rc::clone(&rc)));
            Ok(rc)
        }
    }
}
