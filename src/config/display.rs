//! `-p`: the effective configuration printed in lighttpd syntax, defaults included, so an admin
//! sees exactly what lightd will use (and can feed it back to `lightd -f`).

use std::fmt::{self, Write};

use super::types::{Cond, CondChain, CondField, CondOp, Config, Ignored, ReqConf, ReqSetting};
use super::value::quote;

fn list(v: &[String]) -> String {
    if v.is_empty() {
        return "()".to_string();
    }
    let items: Vec<String> = v.iter().map(|s| quote(s)).collect();
    format!("( {} )", items.join(", "))
}

fn map(v: &[(String, String)], indent: &str) -> String {
    if v.is_empty() {
        return "()".to_string();
    }
    let mut out = String::from("(\n");
    for (k, t) in v {
        let _ = writeln!(out, "{indent}    {} => {},", quote(k), quote(t));
    }
    out.push_str(indent);
    out.push(')');
    out
}

fn flag(b: bool) -> &'static str {
    if b {
        "\"enable\""
    } else {
        "\"disable\""
    }
}

fn setting(s: &ReqSetting) -> String {
    format!("{} = {}", s.name(), s.text)
}

fn base_settings(b: &ReqConf, set: &[ReqSetting]) -> Vec<String> {
    let mut out = vec![match &b.document_root {
        Some(p) => format!("server.document-root = {}", quote(&p.to_string_lossy())),
        None => {
            "# server.document-root is not set: lightd will not start (-tt and start-up need it)"
                .to_string()
        }
    }];
    out.push(format!("index-file.names = {}", list(&b.index_files)));
    out.push(format!(
        "server.follow-symlink = {}",
        flag(b.follow_symlink)
    ));
    out.push(format!(
        "server.range-requests = {}",
        flag(b.range_requests)
    ));
    out.push(format!(
        "static-file.exclude-extensions = {}",
        list(&b.exclude_extensions)
    ));
    out.push(format!("dir-listing.activate = {}", flag(b.dir_listing)));
    out.push(format!("server.tag = {}", quote(&b.server_tag)));
    #[cfg(feature = "accesslog")]
    {
        out.push(match &b.accesslog.filename {
            Some(f) => format!("accesslog.filename = {}", quote(f)),
            None => "# accesslog.filename is not set: no access log".to_string(),
        });
        out.push(format!(
            "accesslog.format = {}",
            quote(b.accesslog.format.text())
        ));
    }
    out.push(format!("mimetype.assign = {}", map(&b.mime, "")));
    // Module keys as written: their defaults mean "off".
    for s in set {
        if !CORE_SHOWN.contains(&s.name()) {
            out.push(setting(s));
        }
    }
    out
}

/// The per-request keys `base_settings` always shows, with their values in use.
const CORE_SHOWN: &[&str] = &[
    "server.document-root",
    "index-file.names",
    "server.indexfiles",
    "server.follow-symlink",
    "server.range-requests",
    "static-file.exclude-extensions",
    "dir-listing.activate",
    "server.dir-listing",
    "server.tag",
    "accesslog.filename",
    "accesslog.format",
    "mimetype.assign",
];

fn cond(c: &Cond) -> String {
    let field = match &c.field {
        CondField::Host => "$HTTP[\"host\"]".to_string(),
        CondField::Url => "$HTTP[\"url\"]".to_string(),
        CondField::RemoteIp => "$HTTP[\"remote-ip\"]".to_string(),
        CondField::QueryString => "$HTTP[\"querystring\"]".to_string(),
        CondField::RequestMethod => "$HTTP[\"request-method\"]".to_string(),
        CondField::Scheme => "$HTTP[\"scheme\"]".to_string(),
        CondField::UserAgent => "$HTTP[\"useragent\"]".to_string(),
        CondField::Referer => "$HTTP[\"referer\"]".to_string(),
        CondField::Cookie => "$HTTP[\"cookie\"]".to_string(),
        CondField::RequestHeader(h) => format!("$REQUEST_HEADER[{}]", quote(h)),
        CondField::ServerSocket => "$SERVER[\"socket\"]".to_string(),
    };
    let op = match c.op {
        CondOp::Eq => "==",
        CondOp::Ne => "!=",
        CondOp::Match => "=~",
        CondOp::NotMatch => "!~",
        CondOp::Prefix => "=^",
        CondOp::Suffix => "=$",
    };
    format!("{field} {op} {}", quote(&c.pattern))
}

/// Keys lightd ignores, as comments: shown so nothing the config says silently disappears, and
/// commented out so the output still loads.
fn ignored(f: &mut fmt::Formatter<'_>, keys: &[Ignored], indent: &str) -> fmt::Result {
    for k in keys {
        writeln!(
            f,
            "{indent}# ignored (not implemented by lightd), {}: {} = {}",
            k.loc, k.key, k.value
        )?;
    }
    Ok(())
}

fn chains(f: &mut fmt::Formatter<'_>, chains: &[CondChain], indent: &str) -> fmt::Result {
    let inner = format!("{indent}    ");
    for chain in chains {
        writeln!(f)?;
        for (i, b) in chain.branches.iter().enumerate() {
            let head = match &b.cond {
                Some(c) => format!("{} {{", cond(c)),
                None => "{".to_string(),
            };
            if i == 0 {
                writeln!(f, "{indent}{head}")?;
            } else {
                writeln!(f, "{indent}}} else {head}")?;
            }
            for s in &b.settings {
                writeln!(f, "{inner}{}", setting(s))?;
            }
            ignored(f, &b.ignored, &inner)?;
            self::chains(f, &b.children, &inner)?;
        }
        writeln!(f, "{indent}}}")?;
    }
    Ok(())
}

pub(crate) fn write(cfg: &Config, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    writeln!(
        f,
        "# lightd's effective configuration, read from {}",
        cfg.source.display()
    )?;
    writeln!(f, "# (every key with the value in use, defaults included)")?;
    writeln!(f)?;
    let main = cfg.listen.first().map(|l| l.addr);
    if let Some(addr) = main {
        writeln!(f, "server.bind = {}", quote(&addr.ip().to_string()))?;
        writeln!(f, "server.port = {}", addr.port())?;
    }
    writeln!(f, "server.modules = {}", list(&cfg.modules))?;
    let opt = |key: &str, v: Option<String>, unset: &str| match v {
        Some(v) => format!("{key} = {}", quote(&v)),
        None => format!("# {key} is not set{unset}"),
    };
    let path =
        |p: &Option<std::path::PathBuf>| p.as_ref().map(|p| p.to_string_lossy().into_owned());
    writeln!(f, "{}", opt("server.pid-file", path(&cfg.pid_file), ""))?;
    writeln!(
        f,
        "{}",
        opt(
            "server.control-socket",
            path(&cfg.control_path()),
            " (needs server.pid-file)"
        )
    )?;
    writeln!(
        f,
        "{}",
        opt(
            "server.errorlog",
            path(&cfg.errorlog),
            ": errors go to stderr"
        )
    )?;
    writeln!(f, "{}", opt("server.username", cfg.username.clone(), ""))?;
    writeln!(f, "{}", opt("server.groupname", cfg.groupname.clone(), ""))?;
    writeln!(f, "server.max-connections = {}", cfg.max_connections)?;
    match cfg.max_fds {
        Some(n) => writeln!(f, "server.max-fds = {n}")?,
        None => writeln!(
            f,
            "# server.max-fds is not set: the inherited limit is kept"
        )?,
    }
    writeln!(
        f,
        "server.max-keep-alive-requests = {}",
        cfg.max_keep_alive_requests
    )?;
    writeln!(
        f,
        "server.max-keep-alive-idle = {}",
        cfg.max_keep_alive_idle.as_secs()
    )?;
    writeln!(f, "server.max-read-idle = {}", cfg.max_read_idle.as_secs())?;
    writeln!(
        f,
        "server.max-write-idle = {}",
        cfg.max_write_idle.as_secs()
    )?;
    writeln!(
        f,
        "server.max-request-size = {}",
        cfg.max_request_size / 1024
    )?;
    writeln!(
        f,
        "server.max-request-field-size = {}",
        cfg.max_request_field_size
    )?;
    writeln!(f, "server.max-worker = {}", cfg.max_worker)?;
    writeln!(
        f,
        "server.graceful-shutdown-timeout = {}",
        cfg.graceful_shutdown_timeout.as_secs()
    )?;
    writeln!(
        f,
        "server.max-request-head-time = {}",
        cfg.max_request_head_time.as_secs()
    )?;
    writeln!(
        f,
        "server.systemd-socket-activation = {}",
        flag(cfg.socket_activation)
    )?;
    // Only a build with backends spools bodies; without one these keys are ignored.
    #[cfg(feature = "backend")]
    {
        let dirs: Vec<String> = cfg
            .upload_dirs
            .iter()
            .map(|d| d.to_string_lossy().into_owned())
            .collect();
        writeln!(f, "server.upload-dirs = {}", list(&dirs))?;
        writeln!(
            f,
            "server.upload-temp-file-size = {}",
            cfg.upload_temp_file_size
        )?;
    }
    writeln!(f)?;
    for line in base_settings(&cfg.base, &cfg.base_settings) {
        writeln!(f, "{line}")?;
    }
    if !cfg.ignored.is_empty() {
        writeln!(f)?;
        ignored(f, &cfg.ignored, "")?;
    }
    chains(f, &cfg.conds, "")
}
