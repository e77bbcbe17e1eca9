//! lightd: a small, fast HTTP/1.1 server in the spirit of lighttpd.
//!
//! # The life of a request
//! 1. [`config`] parses lighttpd's config language once into a read-only [`config::Config`].
//! 2. [`listener`] binds the configured addresses (or adopts sockets handed in from outside).
//! 3. [`server`] runs one `mio::Poll` loop: it accepts connections into a slab, dispatches
//!    readiness, checks deadlines and handles signals (graceful drain, log reopening).
//! 4. [`conn`] is the per-connection state machine: it reads into a pooled buffer, asks
//!    [`http::request`] to parse the head (pure, offsets only), reads and discards any body,
//!    and hands the request to [`handlers`].
//! 5. [`handlers::static_file`] maps the normalised path ([`http::path`]) under the document
//!    root, applies validators and ranges, and queues the head plus either an in-buffer body or
//!    file ranges for sendfile.
//! 6. [`conn`] writes it out, logs it ([`log`]), and either resets for the next (possibly
//!    pipelined) request or half-closes and lingers before the slot is freed.

#[cfg(feature = "backend")]
pub mod backend;
pub mod config;
pub mod conn;
pub mod ctx;
pub mod handlers;
pub mod handover;
pub mod http;
pub mod inplace;
pub mod listener;
pub mod log;
pub mod modules;
pub mod pipeline;
pub mod process;
pub mod server;
#[cfg(feature = "tls")]
pub mod tls;

use std::path::PathBuf;

/// What the command line asked for.
#[derive(Debug, Default)]
pub struct Options {
    pub config: Option<PathBuf>,
    pub foreground: bool,
    /// 1 for -t, 2 for -tt.
    pub test: u8,
    pub print: bool,
    /// `-i SECS`: stop gracefully after this long without any activity.
    pub idle_timeout: Option<std::time::Duration>,
}

/// Start lightd as the options say. Returns the exit code, or an error message to print once.
pub fn run(opts: &Options) -> Result<i32, String> {
    log::init();
    // Claim inherited descriptors first: until they are close-on-exec, any command we run
    // (include_shell) would inherit the listening sockets.
    let mut inherited = handover::take_inherited();
    // This image may be an in-place reload of the process a supervisor tracks.
    let mut in_place = match inplace::take() {
        Some((ip, handed)) => {
            inherited = handed;
            Some(ip)
        }
        None => None,
    };
    // A generation started by SIGUSR1 reports back through this pipe, success or failure, so
    // the running one can log why a reload failed.
    let mut parent = handover::take_ready_fd();
    let res = start(opts, inherited, &mut parent, &mut in_place);
    if let (Err(e), Some(ip)) = (&res, in_place.take()) {
        // Still the pid the supervisor tracks: stay, and let the old generation serve.
        if !log::has_errorlog() {
            if let Some(p) = ip.errorlog() {
                let _ = log::set_errorlog(p);
            }
        }
        ::log::error!(
            "reload failed: {}; the old generation keeps serving (SIGUSR1 tries again)",
            e.replace('\n', " ")
        );
        return Ok(inplace::wait(ip));
    }
    if let Err(e) = &res {
        // main prints it on stderr; once server.errorlog is open it goes there as well.
        log::to_errorlog_file(::log::Level::Error, e);
        if let Some(p) = parent.as_mut() {
            use std::io::Write;
            // One line: the reader acts on the first line that starts with ERROR.
            let _ = writeln!(p, "ERROR {}", e.replace('\n', " "));
        }
    }
    res
}

fn start(
    opts: &Options,
    inherited: Vec<handover::Handed>,
    parent: &mut Option<std::fs::File>,
    in_place: &mut Option<inplace::InPlace>,
) -> Result<i32, String> {
    let path = opts
        .config
        .as_deref()
        .ok_or("no config file given (use -f FILE)")?;
    let mut cfg = config::load(path).map_err(|e| e.to_string())?;
    for w in &cfg.warnings {
        ::log::warn!("{}", w);
    }
    if opts.test > 0 || opts.print {
        // Fail closed in the config test too, so the rc script's configtest and the unit's
        // ExecReload= check stop a reload onto a config lightd would refuse.
        cfg.refusal().map_err(|e| e.to_string())?;
    }
    if opts.test >= 2 {
        config::check_loadable(&cfg).map_err(|e| e.to_string())?;
        // Every certificate and key the ssl.* keys name: readable, well-formed, matching.
        #[cfg(feature = "tls")]
        load_certs(&cfg)?;
    }
    if opts.test > 0 {
        println!("Syntax OK");
        return Ok(0);
    }
    if opts.print {
        use std::io::Write;
        // A closed pipe (`lightd -p | head`) is the reader's choice, not an error.
        return match write!(std::io::stdout(), "{}", cfg) {
            Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                Err(format!("printing the config: {}", e))
            }
            _ => Ok(0),
        };
    }

    // From here on warnings and errors go to server.errorlog as well as stderr (each once).
    if let Some(p) = &cfg.errorlog {
        log::set_errorlog(p).map_err(|e| format!("server.errorlog: {}", e))?;
        for w in &cfg.warnings {
            log::to_errorlog_file(::log::Level::Warn, w);
        }
    }
    cfg.refusal().map_err(|e| e.to_string())?;
    // The same checks as -tt, at every start: a reload onto a config whose document root is
    // gone must fail and leave the running generation serving, not start and answer 404.
    config::check_loadable(&cfg).map_err(|e| e.to_string())?;
    // Read now, while the key files (often root's alone) can still be read.
    #[cfg(feature = "tls")]
    let certs = load_certs(&cfg)?;

    // Remember where this binary is now: SIGUSR1 re-executes that path, so a new binary
    // installed there is an upgrade.
    let exe = match in_place.as_ref() {
        // The name we were executed by: /proc/self/exe would say "(deleted)" once a package
        // upgrade replaced the file, and the upgrade is what the next reload should run.
        Some(ip) => ip.exe().to_path_buf(),
        None => std::env::current_exe().map_err(|e| format!("finding our own binary: {}", e))?,
    };
    let reexec = server::Reexec {
        exe,
        args: std::env::args_os().skip(1).collect(),
    };
    if let Some(n) = cfg.max_fds {
        process::set_max_fds(n).map_err(|e| format!("server.max-fds = {}: {}", n, e))?;
    }
    // Resolve users before anything irreversible, so a typo fails before a takeover.
    let creds = process::Creds::resolve(cfg.username.as_deref(), cfg.groupname.as_deref())?;
    let (listeners, takeover) = acquire(&cfg, inherited)?;
    // `$SERVER["socket"]` blocks on port 0 (tests) must match the port actually bound.
    let bound: Vec<(usize, std::net::SocketAddr)> = listeners
        .iter()
        .filter_map(|(spec, l)| spec.map(|i| (i, l.local)))
        .collect();
    cfg.resolve_ephemeral_ports(&bound);
    let listeners: Vec<listener::Listener> = listeners.into_iter().map(|(_, l)| l).collect();
    let control = match cfg
        .control_path()
        .map(|p| handover::ControlSocket::bind(&p))
    {
        Some(Ok(c)) => Some(c),
        // After dropping privileges an in-place image may not be able to write there; it
        // serves all the same, and SIGUSR1 still reloads it.
        Some(Err(e)) if in_place.is_some() => {
            ::log::error!("control socket: {}; a second lightd cannot take over", e);
            None
        }
        Some(Err(e)) => return Err(format!("control socket: {}", e)),
        None => None,
    };

    let new_generation = takeover.is_some() || parent.is_some();
    // An in-place image is the process its supervisor started: it must not fork away.
    let mut ready = if opts.foreground || parent.is_some() || in_place.is_some() {
        process::Ready::foreground()
    } else {
        process::daemonize().map_err(|e| format!("daemonizing: {}", e))?
    };
    let pid_path = cfg.pid_file.clone();
    // lighttpd runs one process with -i: idleness is a property of the whole server.
    let workers = if opts.idle_timeout.is_some() {
        0
    } else {
        cfg.max_worker as usize
    };
    let mut server = server::Server::new(cfg, listeners, control, reexec)
        .map_err(|e| format!("starting the server: {}", e))?;
    #[cfg(feature = "tls")]
    server.set_tls(certs);
    if workers > 1 {
        server.make_supervisor(workers);
    }
    if let Some(t) = opts.idle_timeout {
        server.set_idle_limit(t);
    }
    // The handlers are in place: signals held across an in-place exec can be delivered.
    if inplace::release_signals(in_place.is_some()) {
        ::log::info!("SIGUSR1 during the reload: folded into it");
    }

    // Everything that can fail happens before we tell the generation before us that we are
    // ready, so that a failure leaves it serving: after READY only renames in directories we
    // have just written to, and the privilege drop resolved above, remain.
    let pending_pid = match &pid_path {
        // An in-place image has the pid the file already names; it may no longer have the
        // privileges to write there.
        Some(p) if in_place.is_some() && process::PidFile::names_us(p) => {
            Some(process::PendingPidFile::adopt(p))
        }
        Some(p) => Some(process::PidFile::prepare(p).map_err(|e| e.to_string())?),
        None => None,
    };
    if let Some(t) = takeover {
        let from = t.from_pid;
        t.ready()
            .map_err(|e| format!("telling pid {} that we are ready: {}", from, e))?;
    }
    if let Some(mut p) = parent.take() {
        use std::io::Write;
        // If the parent is gone it cannot drain either; serving is still right.
        let _ = p.write_all(b"READY\n");
    }
    if let Some(ip) = in_place.take() {
        server.adopt_old_generations(ip.ready());
    }
    if new_generation {
        handover::notify(&format!("MAINPID={}\nREADY=1", std::process::id()));
    } else {
        handover::notify("READY=1");
    }
    // From here on this process is in charge: a failure is logged, never fatal, because the
    // old generation is already draining.
    let pid_file = match pending_pid.map(|p| p.commit()) {
        Some(Ok(f)) => Some(f),
        Some(Err(e)) => {
            ::log::error!("{}", e);
            None
        }
        None => None,
    };
    if let Err(e) = server.publish_control() {
        ::log::error!("control socket: {}", e);
    }
    creds.apply()?;
    for a in server.local_addrs() {
        ::log::info!("listening on {}", a);
    }
    ready.done();

    process::trim_binary_residency();
    let exit = server.run().map_err(|e| format!("event loop: {}", e))?;
    ::log::info!("stopped ({:?})", exit);
    if exit == server::Exit::HandedOver {
        // The pid file belongs to the new generation now. Checking its content before
        // removing it would race with the new generation's rename, so leave it alone.
        std::mem::forget(pid_file);
    }
    Ok(0)
}

/// A listening socket with the index of its `cfg.listen` entry (None: inherited, named by none).
type Acquired = (Option<usize>, listener::Listener);

/// The listening sockets, from the first source that has them: inherited (LISTEN_FDS), taken
/// over from the running instance, or bound afresh. Each comes with the index of its entry in
/// `cfg.listen`, or None for an inherited socket that matches no entry and is served with the
/// global settings (server.systemd-socket-activation).
fn acquire(
    cfg: &config::Config,
    mut handed: Vec<handover::Handed>,
) -> Result<(Vec<Acquired>, Option<handover::Takeover>), String> {
    let mut takeover = None;
    if !handed.is_empty() {
        ::log::info!("inherited {} listening socket(s)", handed.len());
    } else if let Some(path) = cfg.control_path() {
        match handover::takeover(&path) {
            Ok(Some(mut t)) => {
                ::log::info!(
                    "taking over {} listening socket(s) from pid {}",
                    t.listeners.len(),
                    t.from_pid
                );
                handed = std::mem::take(&mut t.listeners);
                takeover = Some(t);
            }
            // Nothing is running there: bind afresh.
            Ok(None) => {}
            // Something is running but would not hand over (a reload already under way, a
            // hung instance): binding beside it would leave two servers on the port.
            Err(e) => {
                return Err(format!(
                    "taking over from the running instance through {}: {}",
                    path.display(),
                    e
                ))
            }
        }
    }
    // lighttpd's socket activation: with sockets handed in, the default address is not bound
    // unless server.bind names it, and sockets that match nothing are served, not closed.
    let activated = cfg.socket_activation && !handed.is_empty();
    let mut out = Vec::with_capacity(cfg.listen.len() + handed.len());
    for (i, spec) in cfg.listen.iter().enumerate() {
        // Port 0 (tests) matches a socket on the same IP: the port is whatever was bound.
        let pos = handed.iter().position(|h| {
            h.addr == spec.addr || (spec.addr.port() == 0 && h.addr.ip() == spec.addr.ip())
        });
        let l = match pos {
            Some(i) => {
                let h = handed.swap_remove(i);
                listener::Listener::from_fd(h.fd)
                    .map_err(|e| format!("{}: adopting {}: {}", spec.loc, h.addr, e))?
            }
            None if activated && spec.implicit => continue,
            None => listener::Listener::bind(spec.addr)
                .map_err(|e| format!("{}: cannot listen on {}: {}", spec.loc, spec.addr, e))?,
        };
        out.push((Some(i), l));
    }
    for h in handed {
        if activated {
            ::log::info!(
                "serving inherited socket {} with the global settings \
                 (server.systemd-socket-activation)",
                h.addr
            );
            let l = listener::Listener::from_fd(h.fd)
                .map_err(|e| format!("adopting inherited socket {}: {}", h.addr, e))?;
            out.push((None, l));
        } else {
            ::log::info!("closing inherited socket {}: no longer configured", h.addr);
        }
    }
    Ok((out, takeover))
}

/// The certificates and keys the config names, loaded and checked; their warnings (a
/// certificate about to expire) logged once.
#[cfg(feature = "tls")]
fn load_certs(cfg: &config::Config) -> Result<tls::certs::Store, String> {
    let (store, warnings) = tls::certs::Store::load(cfg).map_err(|e| e.to_string())?;
    for w in &warnings {
        ::log::warn!("{}", w);
    }
    Ok(store)
}
