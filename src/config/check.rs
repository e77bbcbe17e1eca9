//! The `-tt` checks: what the configuration refers to on this machine actually exists.

use std::ffi::CString;
use std::path::Path;

#[cfg(feature = "backend")]
use super::types::ReqSetting;
use super::types::{CondChain, Config, ConfigError, Loc, Val};

fn fail(loc: Option<Loc>, msg: String) -> ConfigError {
    ConfigError { loc, msg }
}

fn check_dir(key: &str, dir: &Path, loc: Option<Loc>) -> Result<(), ConfigError> {
    match std::fs::metadata(dir) {
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(fail(
            loc,
            format!("{key} \"{}\" is not a directory", dir.display()),
        )),
        Err(e) => Err(fail(loc, format!("{key} \"{}\": {e}", dir.display()))),
    }
}

/// A log or pid file need not exist yet, but the directory it goes in must.
fn check_parent(key: &str, file: &Path, loc: Option<Loc>) -> Result<(), ConfigError> {
    match file.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.is_dir() => Err(fail(
            loc,
            format!(
                "{key} \"{}\": directory \"{}\" does not exist",
                file.display(),
                dir.display()
            ),
        )),
        _ => Ok(()),
    }
}

fn check_branches(cfg: &Config, chains: &[CondChain]) -> Result<(), ConfigError> {
    for b in chains.iter().flat_map(|c| &c.branches) {
        let loc = |key: &str| {
            cfg.locs
                .get(&format!("{key}@{}", b.id))
                .cloned()
                .or_else(|| b.cond.as_ref().map(|c| c.loc.clone()))
        };
        for s in &b.settings {
            match (s.name(), &s.val) {
                ("server.document-root", Val::Path(p)) => {
                    check_dir("server.document-root", p, loc("server.document-root"))?
                }
                ("accesslog.filename", Val::OptStr(Some(f))) => check_parent(
                    "accesslog.filename",
                    Path::new(f),
                    loc("accesslog.filename"),
                )?,
                _ => {}
            }
        }
        check_branches(cfg, &b.children)?;
    }
    Ok(())
}

/// Look a name up in the user or group database (files, LDAP, whatever NSS is configured).
fn name_exists(name: &str, group: bool) -> Result<bool, String> {
    lookup(name, group).map(|ids| ids.is_some())
}

/// A user's (uid, primary gid), or a group's (gid, gid); None if there is no such name.
fn lookup(name: &str, group: bool) -> Result<Option<(u32, u32)>, String> {
    let cname = CString::new(name).map_err(|_| "the name contains a NUL byte".to_string())?;
    let mut buf: Vec<libc::c_char> = vec![0; 4096];
    // Entries with many members can need a bigger buffer; ERANGE says so. Bounded at 1 MiB.
    loop {
        let rc = if group {
            // SAFETY: an all-zero `group` is a valid value (null pointers, zero ids); every
            // pointer passed lives across the call and `buf.len()` is the buffer's real size.
            unsafe {
                let mut grp: libc::group = std::mem::zeroed();
                let mut result: *mut libc::group = std::ptr::null_mut();
                let rc = libc::getgrnam_r(
                    cname.as_ptr(),
                    &mut grp,
                    buf.as_mut_ptr(),
                    buf.len(),
                    &mut result,
                );
                if rc == 0 {
                    // SAFETY: non-null `result` points at `grp`, filled in by the call.
                    return Ok(result.as_ref().map(|g| (g.gr_gid, g.gr_gid)));
                }
                rc
            }
        } else {
            // SAFETY: as above, for `passwd`.
            unsafe {
                let mut pwd: libc::passwd = std::mem::zeroed();
                let mut result: *mut libc::passwd = std::ptr::null_mut();
                let rc = libc::getpwnam_r(
                    cname.as_ptr(),
                    &mut pwd,
                    buf.as_mut_ptr(),
                    buf.len(),
                    &mut result,
                );
                if rc == 0 {
                    // SAFETY: non-null `result` points at `pwd`, filled in by the call.
                    return Ok(result.as_ref().map(|p| (p.pw_uid, p.pw_gid)));
                }
                rc
            }
        };
        if rc == libc::ERANGE && buf.len() < (1 << 20) {
            buf.resize(buf.len() * 2, 0);
            continue;
        }
        return Err(std::io::Error::from_raw_os_error(rc).to_string());
    }
}

/// The backend module a setting hands requests to (a non-empty `cgi.assign` or `*.server`).
#[cfg(feature = "backend")]
fn backend_of(s: &ReqSetting) -> Option<&'static str> {
    match &s.val {
        #[cfg(feature = "cgi")]
        Val::CgiAssign(a) if !a.is_empty() => Some("mod_cgi"),
        #[cfg(any(
            feature = "fastcgi",
            feature = "scgi",
            feature = "proxy",
            feature = "wstunnel"
        ))]
        Val::GwServer(p, e) if !e.is_empty() => Some(super::gwparse::module(*p)),
        _ => None,
    }
}

/// A `bin-path` must name an executable regular file: lighttpd checks it before spawning
/// (gw_backend.c), and its start fails when the spawn does.
#[cfg(any(
    feature = "fastcgi",
    feature = "scgi",
    feature = "proxy",
    feature = "wstunnel"
))]
fn check_bin_paths(s: &ReqSetting, loc: Option<Loc>) -> Result<(), ConfigError> {
    use std::os::unix::fs::PermissionsExt;
    let Val::GwServer(_, exts) = &s.val else {
        return Ok(());
    };
    for h in exts.iter().flat_map(|e| &e.hosts) {
        let Some(prog) = h.program() else { continue };
        let ok = std::fs::metadata(prog)
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
        if !ok {
            return Err(fail(
                loc,
                format!(
                    "{}: invalid \"bin-path\" => \"{}\" (check that the file exists, is a \
                     regular file, and is executable by lightd)",
                    s.name(),
                    h.bin_path.as_deref().unwrap_or_default().join(" ")
                ),
            ));
        }
    }
    Ok(())
}

/// What the backends' settings need before they can be served: the programs they spawn, and
/// a request path that runs them (`gateway::WIRED`). Until a module is wired, a config that
/// hands requests to it is refused at start and by -tt, so its scripts are never answered
/// from the document root.
#[cfg(feature = "backend")]
fn check_backends(cfg: &Config) -> Result<(), ConfigError> {
    let one = |s: &ReqSetting, loc: Option<Loc>| -> Result<(), ConfigError> {
        #[cfg(any(
            feature = "fastcgi",
            feature = "scgi",
            feature = "proxy",
            feature = "wstunnel"
        ))]
        check_bin_paths(s, loc.clone())?;
        match backend_of(s) {
            Some(m) if !super::gateway::WIRED.contains(&m) => Err(fail(
                loc,
                format!(
                    "{}: this build reads {m}'s settings but does not run its backends yet; \
                     refusing to start rather than answer these requests from the document root",
                    s.name()
                ),
            )),
            _ => Ok(()),
        }
    };
    for s in &cfg.base_settings {
        one(s, cfg.locs.get(s.name()).cloned())?;
    }
    // Bounded by the config's own size (at most MAX_COND_BRANCHES branches).
    let mut stack: Vec<&CondChain> = cfg.conds.iter().rev().collect();
    while let Some(chain) = stack.pop() {
        for b in &chain.branches {
            for s in &b.settings {
                one(s, cfg.locs.get(&format!("{}@{}", s.name(), b.id)).cloned())?;
            }
            stack.extend(b.children.iter().rev());
        }
    }
    Ok(())
}

/// Create every `deflate.cache-dir` (and `compress.cache-dir`) that is missing, with its
/// parents, as lighttpd does at start; failing to is a config error. lighttpd creates them
/// after dropping privileges, so they belong to its user: lightd, still root here, hands the
/// directories it creates to server.username / server.groupname.
#[cfg(feature = "deflate")]
fn make_cache_dirs(cfg: &Config) -> Result<(), ConfigError> {
    let mut dirs: Vec<(&super::types::ReqSetting, Option<Loc>)> = Vec::new();
    for s in &cfg.base_settings {
        dirs.push((s, cfg.locs.get(s.name()).cloned()));
    }
    // Bounded by the config's own size.
    let mut stack: Vec<&CondChain> = cfg.conds.iter().rev().collect();
    while let Some(chain) = stack.pop() {
        for b in &chain.branches {
            for s in &b.settings {
                dirs.push((s, cfg.locs.get(&format!("{}@{}", s.name(), b.id)).cloned()));
            }
            stack.extend(b.children.iter().rev());
        }
    }
    // SAFETY: plain system call.
    let root = unsafe { libc::geteuid() } == 0;
    let mut owner = None;
    if root && (cfg.username.is_some() || cfg.groupname.is_some()) {
        let user = match &cfg.username {
            Some(u) => lookup(u, false).ok().flatten(),
            None => None,
        };
        let group = match &cfg.groupname {
            Some(g) => lookup(g, true).ok().flatten().map(|(gid, _)| gid),
            None => None,
        };
        // SAFETY: plain system calls.
        let (my_uid, my_gid) = unsafe { (libc::geteuid(), libc::getegid()) };
        owner = Some((
            user.map_or(my_uid, |(uid, _)| uid),
            group.or(user.map(|(_, gid)| gid)).unwrap_or(my_gid),
        ));
    }
    for (s, loc) in dirs {
        let Val::OptStr(Some(dir)) = &s.val else {
            continue;
        };
        if !s.name().ends_with(".cache-dir") {
            continue;
        }
        super::deflate::create_cache_dir(Path::new(dir), owner)
            .map_err(|e| fail(loc, format!("{}: cannot create \"{dir}\": {e}", s.name())))?;
    }
    Ok(())
}

pub(crate) fn check(cfg: &Config) -> Result<(), ConfigError> {
    let loc = |key: &str| cfg.locs.get(key).cloned();
    match &cfg.base.document_root {
        None => {
            return Err(fail(
                None,
                format!("{}: server.document-root is not set", cfg.source.display()),
            ))
        }
        Some(p) => check_dir("server.document-root", p, loc("server.document-root"))?,
    }
    check_branches(cfg, &cfg.conds)?;
    #[cfg(feature = "backend")]
    check_backends(cfg)?;
    #[cfg(feature = "deflate")]
    make_cache_dirs(cfg)?;
    #[cfg(feature = "accesslog")]
    if let Some(f) = &cfg.base.accesslog.filename {
        check_parent(
            "accesslog.filename",
            Path::new(f),
            loc("accesslog.filename"),
        )?;
    }
    if let Some(f) = &cfg.errorlog {
        check_parent("server.errorlog", f, loc("server.errorlog"))?;
    }
    if let Some(f) = &cfg.pid_file {
        check_parent("server.pid-file", f, loc("server.pid-file"))?;
    }
    if let Some(f) = &cfg.control_socket {
        check_parent("server.control-socket", f, loc("server.control-socket"))?;
    }
    for (key, name, group) in [
        ("server.username", &cfg.username, false),
        ("server.groupname", &cfg.groupname, true),
    ] {
        let Some(name) = name else { continue };
        let what = if group { "group" } else { "user" };
        match name_exists(name, group) {
            Ok(true) => {}
            Ok(false) => return Err(fail(loc(key), format!("{key}: no such {what} \"{name}\""))),
            Err(e) => {
                return Err(fail(
                    loc(key),
                    format!("{key}: cannot look up {what} \"{name}\": {e}"),
                ))
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert_eq!(name_exists("root", false), Ok(true));
        assert_eq!(name_exists("root", true), Ok(true));
        assert_eq!(name_exists("no-such-user-lightd-test", false), Ok(false));
        assert_eq!(name_exists("no-such-group-lightd-test", true), Ok(false));
        assert!(name_exists("a\0b", false).is_err());
    }
}
