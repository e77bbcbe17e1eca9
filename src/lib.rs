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

pub mod config;
pub mod conn;
pub mod handlers;
pub mod http;
pub mod listener;
pub mod log;
pub mod process;
pub mod server;

use std::path::PathBuf;

/// What the command line asked for.
#[derive(Debug, Default)]
pub struct Options {
    pub config: Option<PathBuf>,
    pub foreground: bool,
    /// 1 for -t, 2 for -tt.
    pub test: u8,
    pub print: bool,
}

/// Start lightd as the options say. Returns the exit code, or an error message to print once.
pub fn run(opts: &Options) -> Result<i32, String> {
    log::init();
    let path = opts
        .config
        .as_deref()
        .ok_or("no config file given (use -f FILE)")?;
    let mut cfg = config::load(path).map_err(|e| e.to_string())?;
    for w in &cfg.warnings {
        ::log::warn!("{}", w);
    }
    if opts.test >= 2 {
        config::check_loadable(&cfg).map_err(|e| e.to_string())?;
    }
    if opts.test > 0 {
        println!("Syntax OK");
        return Ok(0);
    }
    if opts.print {
        print!("{}", cfg);
        return Ok(0);
    }

    if let Some(n) = cfg.max_fds {
        process::set_max_fds(n).map_err(|e| format!("server.max-fds = {}: {}", n, e))?;
    }
    let mut listeners = Vec::with_capacity(cfg.listen.len());
    for spec in &cfg.listen {
        let l = listener::Listener::bind(spec.addr)
            .map_err(|e| format!("{}: cannot listen on {}: {}", spec.loc, spec.addr, e))?;
        listeners.push(l);
    }
    // `$SERVER["socket"]` blocks on port 0 (tests) must match the port actually bound.
    let bound: Vec<std::net::SocketAddr> = listeners.iter().map(|l| l.local).collect();
    cfg.resolve_ephemeral_ports(&bound);
    if let Some(p) = &cfg.errorlog {
        log::set_errorlog(p).map_err(|e| format!("server.errorlog: {}", e))?;
    }

    let mut ready = if opts.foreground {
        process::Ready::foreground()
    } else {
        process::daemonize().map_err(|e| format!("daemonizing: {}", e))?
    };
    let pid_file = match &cfg.pid_file {
        Some(p) => Some(process::PidFile::write(p).map_err(|e| e.to_string())?),
        None => None,
    };
    let (user, group) = (cfg.username.clone(), cfg.groupname.clone());
    let mut server =
        server::Server::new(cfg, listeners).map_err(|e| format!("starting the server: {}", e))?;
    process::drop_privileges(user.as_deref(), group.as_deref())?;
    for a in server.local_addrs() {
        ::log::info!("listening on {}", a);
    }
    ready.done();

    let exit = server.run().map_err(|e| format!("event loop: {}", e))?;
    ::log::info!("stopped ({:?})", exit);
    drop(pid_file);
    Ok(0)
}
