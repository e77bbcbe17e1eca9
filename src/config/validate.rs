//! From untyped scopes to the typed [`Config`]: every implemented key gets its type and range
//! checked here, with the file and line of the assignment.

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::cond;
use super::keys::{self, KeyKind};
use super::mime;
use super::parser::{Parsed, RawChain, Setting};
use super::table::{self, Apply, Key};
use super::types::{
    CondBranch, CondChain, Config, ConfigError, Ignored, ListenSpec, Loc, Refusal, ReqConf,
};
use super::value::Value;

/// lighttpd's default: Apache's Combined Log Format with `%V` (the requested host) where
/// Apache has the ident field.
#[cfg(feature = "accesslog")]
pub(crate) const DEFAULT_ACCESSLOG_FORMAT: &str =
    "%h %V %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-Agent}i\"";

pub(crate) const DEFAULT_PORT: u16 = 80;

/// Upper bound for durations given in seconds: large enough for any real use, small enough that
/// adding it to an `Instant` cannot overflow.
pub(crate) const MAX_SECS: i64 = i32::MAX as i64;

pub(crate) fn default_req() -> ReqConf {
    ReqConf {
        document_root: None,
        index_files: vec!["index.html".to_string(), "index.htm".to_string()],
        follow_symlink: true,
        force_lowercase_filenames: false,
        range_requests: true,
        etags: true,
        static_pathinfo: true,
        exclude_extensions: Vec::new(),
        dir_listing: false,
        mime: mime::builtin(),
        server_tag: format!("lightd/{}", env!("CARGO_PKG_VERSION")),
        branch: None,
        access_deny: Vec::new(),
        access_allow: Vec::new(),
        alias: Vec::new(),
        redirect: None,
        redirect_code: None,
        rewrite: Vec::new(),
        rewrite_branch: None,
        setenv: Default::default(),
        expire_url: Vec::new(),
        expire_mime: Vec::new(),
        error_handler: None,
        error_handler_404: None,
        errorfile_prefix: None,
        #[cfg(feature = "extforward")]
        extforward: Default::default(),
        #[cfg(feature = "vhost")]
        vhost: Default::default(),
        #[cfg(feature = "userdir")]
        userdir: Default::default(),
        #[cfg(feature = "dirlisting")]
        listing: Default::default(),
        #[cfg(feature = "status")]
        status: Default::default(),
        #[cfg(feature = "accesslog")]
        accesslog: Default::default(),
        #[cfg(feature = "auth")]
        auth: Default::default(),
        #[cfg(feature = "cgi")]
        cgi: Default::default(),
        #[cfg(feature = "fastcgi")]
        fastcgi: Default::default(),
        #[cfg(feature = "scgi")]
        scgi: Default::default(),
        #[cfg(feature = "proxy")]
        proxy: Default::default(),
        #[cfg(feature = "wstunnel")]
        wstunnel: Default::default(),
        #[cfg(feature = "backend")]
        stream_request_body: 0,
        #[cfg(feature = "backend")]
        stream_response_body: 0,
        #[cfg(feature = "deflate")]
        deflate: Default::default(),
        #[cfg(feature = "tls")]
        ssl: Default::default(),
    }
}

pub(crate) fn err(s: &Setting, msg: impl std::fmt::Display) -> ConfigError {
    ConfigError {
        loc: Some(s.loc.clone()),
        msg: format!("{}: {msg}", s.key),
    }
}

pub(crate) fn want_str(s: &Setting) -> Result<&str, ConfigError> {
    match &s.value {
        Value::Str(v) => Ok(v),
        other => Err(err(
            s,
            format!("expected a string, got {}", other.describe()),
        )),
    }
}

/// Integers may also be written as decimal strings: lighttpd accepts them so that numbers can
/// come from environment variables (`server.port = env.PORT`).
pub(crate) fn want_int(s: &Setting, min: i64, max: i64) -> Result<i64, ConfigError> {
    let n = match &s.value {
        Value::Int(n) => *n,
        Value::Str(t) => t.trim().parse::<i64>().map_err(|_| {
            err(
                s,
                format!("expected an integer, got {}", s.value.describe()),
            )
        })?,
        other => {
            return Err(err(
                s,
                format!("expected an integer, got {}", other.describe()),
            ))
        }
    };
    if n < min || n > max {
        return Err(err(
            s,
            format!("expected a value from {min} to {max}, got {n}"),
        ));
    }
    Ok(n)
}

pub(crate) fn want_secs(s: &Setting, min: i64) -> Result<Duration, ConfigError> {
    // The range check guarantees the value is not negative.
    Ok(Duration::from_secs(
        want_int(s, min, MAX_SECS)?.unsigned_abs(),
    ))
}

pub(crate) fn want_bool(s: &Setting) -> Result<bool, ConfigError> {
    let parsed = match &s.value {
        Value::Str(t) => match t.to_ascii_lowercase().as_str() {
            "enable" | "true" | "on" | "1" => Some(true),
            "disable" | "false" | "off" | "0" => Some(false),
            _ => None,
        },
        Value::Int(1) => Some(true),
        Value::Int(0) => Some(false),
        _ => None,
    };
    parsed.ok_or_else(|| {
        err(
            s,
            format!(
                "expected \"enable\" or \"disable\", got {}",
                s.value.describe()
            ),
        )
    })
}

pub(crate) fn want_list(s: &Setting) -> Result<Vec<String>, ConfigError> {
    let bad = || {
        err(
            s,
            format!(
                "expected a list of strings such as ( \"a\", \"b\" ), got {}",
                s.value.describe()
            ),
        )
    };
    let Value::Array(items) = &s.value else {
        return Err(bad());
    };
    items
        .iter()
        .map(|(k, v)| match (k, v) {
            (None, Value::Str(x)) => Ok(x.clone()),
            _ => Err(bad()),
        })
        .collect()
}

pub(crate) fn want_map(s: &Setting) -> Result<Vec<(String, String)>, ConfigError> {
    let bad = |what: String| {
        err(
            s,
            format!("expected a map of strings such as ( \".html\" => \"text/html\" ), {what}"),
        )
    };
    let Value::Array(items) = &s.value else {
        return Err(bad(format!("got {}", s.value.describe())));
    };
    items
        .iter()
        .map(|(k, v)| match (k, v) {
            (Some(k), Value::Str(x)) => Ok((k.clone(), x.clone())),
            (None, v) => Err(bad(format!(
                "got an entry without a key ({})",
                v.describe()
            ))),
            (Some(k), v) => Err(bad(format!("got {} for \"{k}\"", v.describe()))),
        })
        .collect()
}

pub(crate) fn want_path(s: &Setting) -> Result<Option<PathBuf>, ConfigError> {
    let v = want_str(s)?;
    Ok((!v.is_empty()).then(|| PathBuf::from(v)))
}

pub(crate) fn want_log_path(s: &Setting, what: &str) -> Result<Option<String>, ConfigError> {
    let v = want_str(s)?;
    if v.starts_with('|') {
        return Err(err(
            s,
            format!("piped {what} (\"|command\") are not supported by lightd; log to a file"),
        ));
    }
    Ok((!v.is_empty()).then(|| v.to_string()))
}

/// Global settings not stored directly in `Config` until everything is read.
#[derive(Default)]
pub(crate) struct Pending {
    pub bind: Option<(IpAddr, Loc)>,
    pub port: Option<(u16, Loc)>,
    /// The list, where it was set, and where each element was written (when known).
    pub modules: Option<(Vec<String>, Loc, Vec<Loc>)>,
    pub graceful_explicit: bool,
    pub graceful_flag: Option<Duration>,
}

fn modules(
    cfg: &mut Config,
    listed: Option<(Vec<String>, Loc, Vec<Loc>)>,
    warnings: &mut Vec<String>,
) -> Result<(), ConfigError> {
    let Some((list, loc, item_locs)) = listed else {
        cfg.modules = keys::DEFAULT_MODULES
            .iter()
            .map(|m| m.to_string())
            .collect();
        return Ok(());
    };
    let mut out: Vec<String> = Vec::new();
    for (i, m) in list.into_iter().enumerate() {
        // Each module's own line when the list was written out (or appended to with +=).
        let at = item_locs.get(i).unwrap_or(&loc).clone();
        // lighttpd replaced mod_compress with mod_deflate, which reads compress.* too.
        #[cfg(feature = "deflate")]
        let m = match m.as_str() {
            "mod_compress" => "mod_deflate".to_string(),
            _ => m,
        };
        if !keys::is_lighttpd_module(&m) {
            let hint = keys::suggest(&m, keys::lighttpd_modules())
                .map(|s| format!("; did you mean '{s}'?"))
                .unwrap_or_default();
            return Err(ConfigError {
                loc: Some(at),
                msg: format!("server.modules: unknown module '{m}'{hint}"),
            });
        }
        if out.contains(&m) {
            warnings.push(format!("{at}: module '{m}' is listed more than once"));
            continue;
        }
        match keys::missing(&m) {
            Some(Some(harm)) => cfg.refused.push(Refusal {
                loc: at,
                what: format!("server.modules: {m}"),
                owner: keys::MISSING_MODULES
                    .iter()
                    .find(|(name, _)| *name == m)
                    .map_or("core", |(name, _)| name),
                harm,
            }),
            Some(None) => warnings.push(format!(
                "{at}: module '{m}' is not implemented by lightd; its settings are ignored"
            )),
            None => {}
        }
        out.push(m);
    }
    // lighttpd's compatibility loading: mod_auth brings the file backends (mod_authn_file),
    // and a backend brings mod_auth.
    #[cfg(feature = "auth")]
    {
        let has = |out: &[String], m: &str| out.iter().any(|x| x == m);
        if has(&out, "mod_auth") && !has(&out, "mod_authn_file") {
            out.push("mod_authn_file".to_string());
        } else if has(&out, "mod_authn_file") && !has(&out, "mod_auth") {
            out.insert(0, "mod_auth".to_string());
        }
    }
    for m in keys::DEFAULT_MODULES {
        if !out.iter().any(|x| x == m) {
            out.push(m.to_string());
        }
    }
    cfg.modules = out;
    Ok(())
}

/// A key lightd ignores, as `-p` shows it.
fn ignored(s: &Setting) -> Ignored {
    Ignored {
        key: s.key.clone(),
        // One line: `-p` prints it inside a comment.
        value: s.value.to_string().replace(['\n', '\r'], " "),
        loc: s.loc.clone(),
    }
}

/// Whether a per-request key takes effect given the loaded modules. A key of a module that is
/// not in server.modules is ignored by lighttpd. lightd ignores it too when the module only
/// adds a feature, but enforces it when the module protects something: the config says what
/// it wants protected, and lightd never serves what a config protects. Either way it warns.
fn gate(key: &Key, modules: &[String], loc: &Loc, warned: &mut Vec<String>) -> bool {
    let m = key.module;
    // Always loaded; and the access log has its own warning (see `build`).
    if m == "core" || m == "mod_accesslog" || modules.iter().any(|x| x == m) {
        return true;
    }
    // lighttpd loads mod_openssl itself when ssl.* keys are set (configfile.c), with a
    // warning that a future release will not.
    #[cfg(feature = "tls")]
    if m == "mod_openssl" {
        let msg = format!(
            "{loc}: ssl.* keys are set but mod_openssl is not in server.modules; lighttpd \
             loads it anyway, and lightd does too (add \"mod_openssl\" to server.modules)"
        );
        if !warned
            .iter()
            .any(|w| w.ends_with(&msg[loc.to_string().len()..]))
        {
            warned.push(msg);
        }
        return true;
    }
    let enforce = keys::harm(m).is_some();
    let msg = if enforce {
        format!(
            "{loc}: {} is set but {m} is not in server.modules; lighttpd would ignore it, \
             lightd enforces it (add {m} to server.modules)",
            key.name
        )
    } else {
        format!(
            "{loc}: {} is ignored: {m} is not in server.modules",
            key.name
        )
    };
    if !warned
        .iter()
        .any(|w| w.ends_with(&msg[loc.to_string().len()..]))
    {
        warned.push(msg);
    }
    enforce
}

fn chains(
    raw: Vec<RawChain>,
    locs: &mut HashMap<String, Loc>,
    modules: &[String],
    warned: &mut Vec<String>,
) -> Result<Vec<CondChain>, ConfigError> {
    raw.into_iter()
        .map(|c| {
            let branches = c
                .branches
                .into_iter()
                .map(|b| {
                    let mut settings = Vec::new();
                    let mut skipped = Vec::new();
                    for s in &b.scope.entries {
                        match keys::kind(&s.key) {
                            KeyKind::Request => {}
                            KeyKind::Unimplemented { .. } | KeyKind::Unknown
                                if !s.key.starts_with("var.") =>
                            {
                                skipped.push(ignored(s));
                                continue;
                            }
                            // Refused keys are in Parsed::refusals; the parser already
                            // refused global keys here; var.* are the language's own.
                            _ => continue,
                        }
                        let mut said = Vec::new();
                        if let Some(set) = table::req_setting(s, &mut said)? {
                            if !gate(set.key, modules, &s.loc, warned) {
                                continue;
                            }
                            warned.append(&mut said);
                            locs.insert(format!("{}@{}", s.key, b.id), s.loc.clone());
                            settings.push(set);
                        }
                    }
                    Ok(CondBranch {
                        id: b.id,
                        cond: b.cond,
                        settings,
                        ignored: skipped,
                        children: chains(b.chains, locs, modules, warned)?,
                    })
                })
                .collect::<Result<Vec<_>, ConfigError>>()?;
            Ok(CondChain { branches })
        })
        .collect()
}

#[cfg(feature = "accesslog")]
fn sets_accesslog(chains: &[CondChain]) -> bool {
    chains.iter().flat_map(|c| &c.branches).any(|b| {
        b.settings.iter().any(|s| {
            matches!(&s.val, table::Val::OptStr(Some(_))) && s.name() == "accesslog.filename"
        }) || sets_accesslog(&b.children)
    })
}

/// Whether the file system holding `dir` ignores case: its upper- and lower-cased spellings
/// both exist and are the same directory. A path without letters cannot tell, and counts as
/// case-sensitive (lighttpd's test in configfile.c, with the device compared too).
pub(crate) fn ignores_case(dir: &Path) -> bool {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    use std::os::unix::fs::MetadataExt;
    let bytes = dir.as_os_str().as_bytes();
    let upper = std::ffi::OsString::from_vec(bytes.to_ascii_uppercase());
    let lower = std::ffi::OsString::from_vec(bytes.to_ascii_lowercase());
    if upper == lower {
        return false;
    }
    match (std::fs::metadata(&upper), std::fs::metadata(&lower)) {
        (Ok(u), Ok(l)) => u.dev() == l.dev() && u.ino() == l.ino(),
        _ => false,
    }
}

/// Whether the global scope says `ssl.engine = "enable"`.
#[cfg(feature = "tls")]
fn ssl_engine(cfg: &Config) -> bool {
    cfg.base.ssl.engine
}
#[cfg(not(feature = "tls"))]
fn ssl_engine(_: &Config) -> bool {
    false
}

pub(crate) fn build(parsed: Parsed, source: &Path) -> Result<Config, ConfigError> {
    let mut cfg = Config {
        source: source.to_path_buf(),
        listen: Vec::new(),
        modules: Vec::new(),
        pid_file: None,
        control_socket: None,
        errorlog: None,
        username: None,
        groupname: None,
        max_connections: 1024,
        max_fds: None,
        max_keep_alive_requests: 1000,
        max_keep_alive_idle: Duration::from_secs(5),
        max_read_idle: Duration::from_secs(60),
        max_write_idle: Duration::from_secs(360),
        max_request_size: 0,
        max_request_field_size: 8192,
        graceful_shutdown_timeout: Duration::from_secs(8),
        max_worker: 0,
        max_request_head_time: Duration::from_secs(30),
        socket_activation: false,
        auth_delay_invalid_creds: true,
        #[cfg(feature = "backend")]
        upload_dirs: super::gwparse::default_upload_dirs(),
        #[cfg(not(feature = "backend"))]
        upload_dirs: vec![std::path::PathBuf::from("/var/tmp")],
        // lighttpd's default (chunk.c).
        upload_temp_file_size: 1024 * 1024,
        stream_request_body: 0,
        stream_response_body: 0,
        #[cfg(feature = "backend")]
        gw_hosts: Vec::new(),
        #[cfg(feature = "backend")]
        trailer_whitelist: Vec::new(),
        base: default_req(),
        base_settings: Vec::new(),
        conds: Vec::new(),
        warnings: parsed.warnings,
        refused: parsed.refusals,
        ignored: Vec::new(),
        locs: HashMap::new(),
    };
    let mut pending = Pending::default();
    // server.modules first: whether a module's keys apply depends on it.
    let mut warnings = std::mem::take(&mut cfg.warnings);
    if let Some(s) = parsed
        .global
        .entries
        .iter()
        .find(|s| s.key == "server.modules")
    {
        pending.modules = Some((want_list(s)?, s.loc.clone(), s.item_locs.clone()));
    }
    let explicit_modules = pending.modules.is_some();
    modules(&mut cfg, pending.modules.take(), &mut warnings)?;
    for s in &parsed.global.entries {
        if s.key == "server.modules" {
            cfg.locs.insert(s.key.clone(), s.loc.clone());
            continue;
        }
        match keys::kind(&s.key) {
            KeyKind::Global => {
                if let Some(Key {
                    apply: Apply::Global(f),
                    ..
                }) = table::lookup(&s.key)
                {
                    f(&mut cfg, &mut pending, s)?;
                }
            }
            KeyKind::Request => {
                let mut said = Vec::new();
                if let Some(set) = table::req_setting(s, &mut said)? {
                    if gate(set.key, &cfg.modules, &s.loc, &mut warnings) {
                        warnings.append(&mut said);
                        set.apply(&mut cfg.base);
                        cfg.base_settings.push(set);
                    }
                }
            }
            KeyKind::Unimplemented { .. } | KeyKind::Unknown => {
                if !s.key.starts_with("var.") {
                    cfg.ignored.push(ignored(s));
                }
                continue;
            }
            KeyKind::Refused { .. } => continue,
        }
        cfg.locs.insert(s.key.clone(), s.loc.clone());
    }
    if let (false, Some(t)) = (pending.graceful_explicit, pending.graceful_flag) {
        cfg.graceful_shutdown_timeout = t;
    }
    // Not set globally: lighttpd turns it on where the document root's file system ignores
    // case, since there url.access-deny ".php" would otherwise let "/x.PHP" through.
    if !cfg.locs.contains_key("server.force-lowercase-filenames") {
        if let Some(root) = &cfg.base.document_root {
            cfg.base.force_lowercase_filenames = ignores_case(root);
        }
    }
    cfg.conds = chains(parsed.chains, &mut cfg.locs, &cfg.modules, &mut warnings)?;
    // Pools are shared across blocks, so hosts get their indices once every block is read.
    #[cfg(any(
        feature = "fastcgi",
        feature = "scgi",
        feature = "proxy",
        feature = "wstunnel"
    ))]
    super::gwparse::index_hosts(&mut cfg, &mut warnings)?;
    #[cfg(feature = "backend")]
    {
        cfg.stream_request_body = cfg.base.stream_request_body;
        cfg.stream_response_body = cfg.base.stream_response_body;
    }
    #[cfg(feature = "auth")]
    super::auth::warn(&cfg, &mut warnings);
    #[cfg(feature = "tls")]
    super::ssl::check(&cfg)?;
    cfg.warnings = warnings;

    let bind_set = pending.bind.is_some();
    let (ip, bind_loc) = pending
        .bind
        .map(|(ip, l)| (ip, Some(l)))
        .unwrap_or((cond::ANY_V4, None));
    let (port, port_loc) = pending
        .port
        .map(|(p, l)| (p, Some(l)))
        // lighttpd's default port is 443 when the global scope enables TLS.
        .unwrap_or((
            if cfg!(feature = "tls") && ssl_engine(&cfg) {
                443
            } else {
                DEFAULT_PORT
            },
            None,
        ));
    let loc = bind_loc.or(port_loc).unwrap_or(Loc {
        file: source.to_path_buf(),
        line: 0,
    });
    let main = std::net::SocketAddr::new(ip, port);
    cfg.listen.push(ListenSpec {
        addr: main,
        text: main.to_string(),
        loc,
        implicit: !bind_set,
    });
    for spec in parsed.sockets {
        // Port 0 means "any free port": two such entries are two different listeners.
        if spec.addr.port() == 0 || !cfg.listen.iter().any(|l| l.addr == spec.addr) {
            cfg.listen.push(spec);
        }
    }

    // Without mod_accesslog its keys are ignored with the other unimplemented ones.
    #[cfg(not(feature = "accesslog"))]
    let _ = explicit_modules;
    #[cfg(feature = "accesslog")]
    if explicit_modules
        && !cfg.modules.iter().any(|m| m == "mod_accesslog")
        && (cfg.base.accesslog.filename.is_some() || sets_accesslog(&cfg.conds))
    {
        let at = cfg
            .locs
            .get("accesslog.filename")
            .map(|l| format!("{l}: "))
            .unwrap_or_default();
        cfg.warnings.push(format!(
            "{at}accesslog.filename is set but mod_accesslog is not in server.modules; \
             lighttpd would not log, lightd writes the access log anyway"
        ));
    }
    Ok(cfg)
}
