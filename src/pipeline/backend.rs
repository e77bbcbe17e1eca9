//! Requests a backend answers: choosing the backend (mod_cgi's `cgi.assign`, the gateways'
//! `*.server`), starting it once the body is spooled (or at once when bodies stream), and
//! turning the backend's response into the client's: its head through the same
//! response-start modules as any other, its body framed for the client as it arrives.
//!
//! The connection drives a [`Gw`] from the loop: it feeds the request body in, calls
//! [`turn`] whenever a descriptor is ready, and writes what `turn` queued.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::backend::env::EnvBuf;
use crate::backend::job::{Got, Job};
use crate::backend::spool::Spool;
#[cfg(any(feature = "fastcgi", feature = "scgi"))]
use crate::config::gateway::{GwConf, GwHost, Mode, Proto};
use crate::config::ReqConf;
use crate::ctx::{Bufs, Ctx};
use crate::handlers::Seg;
use crate::http::gw_head::{self, GwHead, StatusFrom};
use crate::http::request::{self, Head};
use crate::http::response;

use super::Exchange;

/// Request body bytes kept in memory before the spool goes to a file.
const SPOOL_MEM: usize = 64 * 1024;

/// Stop reading from the client while this much body waits for the backend, and from the
/// backend while this much response waits for the client.
pub const BACKPRESSURE: usize = 64 * 1024;

/// The most a backend's response head may take.
const MAX_HEAD: usize = 64 * 1024;

/// What to start for a request, decided by the pipeline before its body is read.
pub enum Plan {
    /// Run a CGI script: argv (interpreter first, if any), working directory, environment.
    Cgi {
        argv: Vec<std::ffi::OsString>,
        cwd: PathBuf,
    },
    /// Send it to a gateway host (FastCGI, SCGI): which protocol, which host, and whether
    /// the host only authorizes (FastCGI's authorizer role).
    #[cfg(any(feature = "fastcgi", feature = "scgi"))]
    Gw {
        proto: Proto,
        host: Rc<GwHost>,
        authorizer: bool,
    },
    /// mod_proxy or mod_wstunnel: an upstream host and what to send it.
    #[cfg(any(feature = "proxy", feature = "wstunnel"))]
    Proxy(Box<super::proxy::ProxyPlan>),
}

/// How the response body reaches the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Framing {
    /// The backend announced a length: pass exactly that many bytes.
    Length(u64),
    /// HTTP/1.1 client, no length: chunked.
    Chunked,
    /// HTTP/1.0 client, no length: the end of the connection ends the body.
    Close,
    /// HEAD, or a status without a body: read and drop what the backend sends.
    Discard,
    /// `server.stream-response-body = 0` (lighttpd's default) and no length: the body is
    /// collected, so that a short one goes out with a Content-Length as lighttpd's does. Past
    /// [`BACKPRESSURE`] bytes it streams after all (chunked, or to the close for
    /// HTTP/1.0): memory stays bounded whatever the backend sends.
    Buffer,
}

/// How the backend delimits its body.
enum Source {
    /// By its end (CGI, FastCGI, SCGI; HTTP without a length).
    End,
    /// By a Content-Length: this much is left.
    Length(u64),
    /// Chunked (an HTTP upstream, or a script that chose to): decoded here.
    Chunked(Box<crate::http::chunked::ChunkedDecoder>),
}

#[derive(Debug, PartialEq, Eq)]
pub(super) enum Resp {
    /// Waiting for (the rest of) the backend's head.
    Head,
    Body(Framing),
    /// The response is complete on our side (all of it queued).
    Done,
}

/// A request in a backend's hands.
pub struct Gw {
    plan: Option<Plan>,
    /// The environment (CGI, FastCGI, SCGI).
    env: EnvBuf,
    /// The request body, until the job starts and takes it.
    spool: Option<Spool>,
    pub job: Option<Job>,
    /// Response bytes read and not yet handled.
    pub(super) resp: Vec<u8>,
    pub(super) state: Resp,
    source: Source,
    /// The head waiting for a buffered body's length (Framing::Buffer): the server tag.
    held_head: Option<String>,
    /// Start the backend before the body is complete, and pass the body on as it comes.
    stream_request: bool,
    /// How the backend's head is read.
    mode: gw_head::Mode,
    /// `cgi.local-redir`.
    local_redir: bool,
    /// X-Sendfile is honoured, limited to these directories (empty: anywhere).
    x_sendfile: Option<Rc<[PathBuf]>>,
    /// The request's settings, for the response-start modules.
    pub(super) conf: Rc<ReqConf>,
    /// The request is an error handler's restart: the answer's status follows its rules.
    pub saved: Option<crate::modules::errors::Saved>,
    /// The pool process this request is bound to (released when the job ends).
    #[cfg(any(feature = "fastcgi", feature = "scgi"))]
    pub proc: Option<(Rc<GwHost>, u32)>,
    /// The host's load count while this request is on it (least-connection balancing).
    #[cfg(any(feature = "fastcgi", feature = "scgi"))]
    _load: Option<crate::backend::upstream::Load>,
    /// A FastCGI authorizer: on 200 the request goes on to its handler.
    #[cfg_attr(not(feature = "fastcgi"), allow(dead_code))]
    authorizer: bool,
    /// mod_proxy and mod_wstunnel's own state, once the upstream is chosen.
    #[cfg(any(feature = "proxy", feature = "wstunnel"))]
    pub(super) up: Option<Box<super::proxy::Up>>,
    /// mod_deflate compresses the body on its way to the client.
    #[cfg(feature = "deflate")]
    pub(super) zip: Option<Box<super::deflate::Zip>>,
}

/// What a turn of the backend produced for the connection.
#[derive(Debug, PartialEq, Eq)]
pub enum Turn {
    /// Nothing can move until a descriptor is ready.
    Wait,
    /// Something moved: queue it out and come again.
    Progress,
    /// `cgi.local-redir`: restart the request with `ex.target`.
    Restart,
    /// The backend failed before its head: answer with this status.
    Fail(u16),
    /// The backend failed after the head went out: the client's response cannot be
    /// completed honestly, so the connection must be cut.
    Cut,
    /// The response is completely queued.
    Done,
}

impl Gw {
    pub fn new(plan: Plan, env: EnvBuf, ctx: &Ctx, conf: Rc<ReqConf>) -> Gw {
        let dirs: Rc<[PathBuf]> = ctx.cfg.upload_dirs.clone().into();
        // mod_cgi's keys for a script; a gateway host's own x-sendfile (lighttpd never does
        // a local redirect for a gateway).
        let (local_redir, x_sendfile): (bool, Option<Rc<[PathBuf]>>) = match &plan {
            #[cfg(feature = "cgi")]
            Plan::Cgi { .. } => (
                conf.cgi.local_redir,
                conf.cgi
                    .x_sendfile
                    .then(|| Rc::clone(&conf.cgi.x_sendfile_docroot)),
            ),
            #[cfg(any(feature = "fastcgi", feature = "scgi"))]
            Plan::Gw { host, .. } => (
                false,
                host.x_sendfile
                    .then(|| host.x_sendfile_docroot.clone().into()),
            ),
            #[allow(unreachable_patterns)]
            _ => (false, None),
        };
        let streams = plan_streams(&plan);
        Gw {
            mode: match plan {
                Plan::Cgi { .. } => gw_head::Mode::Cgi,
                #[cfg(any(feature = "fastcgi", feature = "scgi"))]
                Plan::Gw { .. } => gw_head::Mode::Gateway,
                #[cfg(any(feature = "proxy", feature = "wstunnel"))]
                Plan::Proxy(_) => gw_head::Mode::Http,
            },
            authorizer: plan_authorizes(&plan),
            plan: Some(plan),
            env,
            spool: Some(Spool::new(SPOOL_MEM, dirs)),
            job: None,
            resp: Vec::new(),
            state: Resp::Head,
            source: Source::End,
            held_head: None,
            stream_request: streams.unwrap_or(ctx.cfg.stream_request_body != 0),
            local_redir,
            x_sendfile,
            conf,
            saved: None,
            #[cfg(any(feature = "fastcgi", feature = "scgi"))]
            proc: None,
            #[cfg(any(feature = "fastcgi", feature = "scgi"))]
            _load: None,
            #[cfg(any(feature = "proxy", feature = "wstunnel"))]
            up: None,
            #[cfg(feature = "deflate")]
            zip: None,
        }
    }

    /// Where request body bytes go now.
    pub fn body_sink(&mut self) -> &mut Spool {
        if let Some(j) = self.job.as_mut() {
            return &mut j.body;
        }
        // The spool moves into the job when it starts, so it is here until then.
        self.spool
            .get_or_insert_with(|| Spool::new(SPOOL_MEM, Rc::from(Vec::new())))
    }

    /// The request's trailer section arrived: the whitelisted fields join the environment
    /// as HTTP_* variables (lighttpd merges them into the request's fields).
    pub fn request_trailers(&mut self, trailers: &[u8], whitelist: &[String]) {
        for line in trailers.split(|&c| c == b'\n') {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(i) = line.iter().position(|&c| c == b':') else {
                continue;
            };
            let name = &line[..i];
            if !whitelist
                .iter()
                .any(|w| w.as_bytes().eq_ignore_ascii_case(name))
            {
                continue;
            }
            let mut var = b"HTTP_".to_vec();
            var.extend(name.iter().map(|&c| match c {
                b'-' => b'_',
                c => c.to_ascii_uppercase(),
            }));
            self.env
                .push(&var, crate::http::request::trim_ows(&line[i + 1..]));
        }
    }

    /// Whether the connection should read more body from the client now.
    pub fn wants_body(&self) -> bool {
        match &self.job {
            // Not started: spool it all (to a file beyond memory) unless streaming.
            None => {
                !self.stream_request
                    || self.spool.as_ref().map_or(0, |s| s.len()) < BACKPRESSURE as u64
            }
            Some(j) => j.pending_input() < BACKPRESSURE as u64 && self.state != Resp::Done,
        }
    }

    pub fn started(&self) -> bool {
        self.job.is_some()
    }

    /// Whether the job should start now: the body is complete, or bodies stream.
    pub fn ready_to_start(&self, body_complete: bool) -> bool {
        self.job.is_none() && (body_complete || self.stream_request)
    }

    /// The whole request body is in (tell the job: it frames the end).
    pub fn body_complete(&mut self) {
        if let Some(j) = self.job.as_mut() {
            j.body_complete = true;
        }
    }

    /// The backend's own `read-timeout`, when it has one.
    pub fn read_timeout(&self) -> Option<std::time::Duration> {
        #[cfg(any(feature = "proxy", feature = "wstunnel"))]
        if let Some(up) = &self.up {
            let t = up.host.read_timeout;
            return (!t.is_zero()).then_some(t);
        }
        #[cfg(any(feature = "fastcgi", feature = "scgi"))]
        if let Some(Plan::Gw { host, .. }) = &self.plan {
            return (!host.read_timeout.is_zero()).then_some(host.read_timeout);
        }
        #[cfg(any(feature = "fastcgi", feature = "scgi"))]
        if let Some((host, _)) = &self.proc {
            return (!host.read_timeout.is_zero()).then_some(host.read_timeout);
        }
        #[cfg(feature = "cgi")]
        if !self.conf.cgi.limits.read_timeout.is_zero() {
            return Some(self.conf.cgi.limits.read_timeout);
        }
        None
    }

    /// The response's head has been queued for the client.
    pub fn head_sent(&self) -> bool {
        self.state != Resp::Head
    }

    /// Take the job's descriptors out of the poll and let it go (its child is stopped, its
    /// pool process released).
    pub fn stop(&mut self, ctx: &mut Ctx) {
        if let Some(mut j) = self.job.take() {
            j.deregister(&ctx.registry);
        }
        #[cfg(any(feature = "fastcgi", feature = "scgi"))]
        if let Some((host, n)) = self.proc.take() {
            ctx.proc_done(&host, n);
        }
    }
}

#[cfg(any(feature = "fastcgi", feature = "scgi"))]
fn proto_name(p: Proto) -> &'static str {
    match p {
        Proto::FastCgi => "fastcgi",
        Proto::Scgi => "scgi",
        Proto::Proxy => "proxy",
        Proto::WsTunnel => "wstunnel",
    }
}

/// Whether an error means the process (or the system) has no descriptor left.
fn out_of_fds(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE))
}

impl Plan {
    /// Whether the backend is given a CGI environment (mod_proxy and mod_wstunnel send an
    /// HTTP head, or nothing, instead).
    pub fn needs_env(&self) -> bool {
        match self {
            #[cfg(any(feature = "proxy", feature = "wstunnel"))]
            Plan::Proxy(_) => false,
            _ => true,
        }
    }
}

/// Whether a plan passes the body on as it arrives whatever server.stream-request-body says
/// (None: as it says). mod_proxy streams a body of known length (the upstream is told that
/// length) and spools a chunked one (to learn its length before the head goes out).
fn plan_streams(plan: &Plan) -> Option<bool> {
    match plan {
        #[cfg(any(feature = "proxy", feature = "wstunnel"))]
        Plan::Proxy(p) => Some(p.streams()),
        _ => None,
    }
}

/// Whether a plan is a FastCGI authorizer's.
fn plan_authorizes(plan: &Plan) -> bool {
    match plan {
        #[cfg(any(feature = "fastcgi", feature = "scgi"))]
        Plan::Gw { authorizer, .. } => *authorizer,
        _ => false,
    }
}

/// Start the backend: spawn the CGI child (or connect), register its descriptors under the
/// connection's key. Err is the status to answer with.
pub fn start(ctx: &mut Ctx, g: &mut Gw, key: usize, body_complete: bool) -> Result<(), u16> {
    let Some(plan) = g.plan.take() else {
        return Err(500);
    };
    let body = g
        .spool
        .take()
        .unwrap_or_else(|| Spool::new(SPOOL_MEM, Rc::from(Vec::new())));
    let mut job = match plan {
        Plan::Cgi { argv, cwd } => {
            if body_complete {
                // CGI needs the length: known now that the body is spooled.
                g.env
                    .replace_first(b"CONTENT_LENGTH", body.total().to_string().as_bytes());
            }
            let has_body = body.total() > 0 || !body_complete;
            let args: Vec<&std::ffi::OsStr> = argv.iter().map(|a| a.as_os_str()).collect();
            let child =
                crate::backend::spawn::spawn_cgi(&args, &cwd, &g.env, None).map_err(|e| {
                    log::error!(
                        "cgi: starting {}: {}",
                        argv.last().map_or("?".into(), |a| a.to_string_lossy()),
                        e
                    );
                    // Out of descriptors is the server's load (503, try again); a script that
                    // cannot be run is its own error (500, as lighttpd answers).
                    if out_of_fds(&e) {
                        503u16
                    } else {
                        500u16
                    }
                })?;
            // Without a body the script's stdin is closed at once: it reads end of file.
            let stdin = has_body.then_some(child.stdin);
            Job::pipes(child.pid as libc::pid_t, stdin, child.stdout, body, ctx.now)
        }
        #[cfg(any(feature = "fastcgi", feature = "scgi"))]
        Plan::Gw {
            proto,
            host,
            authorizer,
        } => {
            if body_complete && !authorizer {
                g.env
                    .replace_first(b"CONTENT_LENGTH", body.total().to_string().as_bytes());
            }
            // A process to take it; one that refuses because it died is restarted and tried
            // again at once (bounded: each retry restarted one).
            let mut tries = 0;
            let (sock, connecting) = loop {
                tries += 1;
                let Some((n, target)) = ctx.pick_proc(&host) else {
                    log::error!(
                        "{}: no process of {} takes requests",
                        proto_name(proto),
                        host.addr
                    );
                    return Err(503);
                };
                match crate::backend::connect::connect_to(&target) {
                    Ok(s) => {
                        g.proc = Some((Rc::clone(&host), n));
                        g._load = Some(ctx.upstreams.load(host.index));
                        break s;
                    }
                    Err(e) => {
                        log::error!("{}: connecting to {}: {}", proto_name(proto), target, e);
                        if !ctx.proc_failed(&host, n, &e) || tries >= 3 {
                            // Skipped by the balancer for its disable-time.
                            ctx.upstreams.failed(&host, ctx.now);
                            // lighttpd: a backend that cannot be reached is 503.
                            return Err(503);
                        }
                    }
                }
            };
            let mut head = Vec::with_capacity(g.env.byte_len() + 64);
            let wire = match proto {
                #[cfg(feature = "fastcgi")]
                Proto::FastCgi => {
                    use crate::http::fcgi;
                    let role = if authorizer {
                        fcgi::Role::Authorizer
                    } else {
                        fcgi::Role::Responder
                    };
                    fcgi::begin_request(&mut head, 1, role, false);
                    if let Err(e) = fcgi::params(&mut head, 1, g.env.iter()) {
                        log::error!("fastcgi: the environment: {}", e);
                        return Err(500);
                    }
                    crate::backend::job::Wire::Fcgi(crate::backend::fcgi::Fcgi::new(1))
                }
                #[cfg(feature = "scgi")]
                Proto::Scgi => {
                    let len = if body_complete { body.total() } else { 0 };
                    if let Err(e) = crate::http::scgi::request_header(&mut head, len, g.env.iter())
                    {
                        log::error!("scgi: the environment: {}", e);
                        return Err(500);
                    }
                    crate::backend::job::Wire::Raw
                }
                _ => return Err(500),
            };
            Job::socket(wire, sock, connecting, head, body, ctx.now)
        }
        #[cfg(any(feature = "proxy", feature = "wstunnel"))]
        Plan::Proxy(p) => super::proxy::start(ctx, g, *p, body, key)?,
    };
    job.body_complete = body_complete;
    if let Err(e) = job.register(&ctx.registry, key) {
        log::error!("backend: registering its descriptors: {}", e);
        return Err(500);
    }
    g.job = Some(job);
    Ok(())
}

/// What a gateway host changes in the environment.
#[derive(Default)]
pub struct EnvOpts<'a> {
    pub docroot: Option<&'a Path>,
    pub strip_request_uri: Option<&'a str>,
    pub authorizer: bool,
}

impl EnvOpts<'_> {
    pub fn for_plan(plan: &Plan) -> EnvOpts<'_> {
        match plan {
            Plan::Cgi { .. } => EnvOpts::default(),
            #[cfg(any(feature = "fastcgi", feature = "scgi"))]
            Plan::Gw {
                host, authorizer, ..
            } => EnvOpts {
                docroot: host.docroot.as_deref(),
                strip_request_uri: host.strip_request_uri.as_deref(),
                authorizer: *authorizer,
            },
            #[cfg(any(feature = "proxy", feature = "wstunnel"))]
            Plan::Proxy(_) => EnvOpts::default(),
        }
    }
}

/// The gateway modules' lists, in the order lighttpd's default module order runs them. No
/// allocation: this runs for every request of a config that has a gateway module compiled in.
#[cfg(any(feature = "fastcgi", feature = "scgi"))]
fn gateways(conf: &ReqConf) -> impl Iterator<Item = (Proto, &GwConf)> {
    #[cfg(feature = "fastcgi")]
    let fastcgi = Some((Proto::FastCgi, &conf.fastcgi));
    #[cfg(not(feature = "fastcgi"))]
    let fastcgi = None;
    #[cfg(feature = "scgi")]
    let scgi = Some((Proto::Scgi, &conf.scgi));
    #[cfg(not(feature = "scgi"))]
    let scgi = None;
    [fastcgi, scgi]
        .into_iter()
        .flatten()
        .filter(|(_, g)| !g.exts.is_empty())
}

/// Whether any backend module could take a request with these settings: the physical
/// phase looks for a script only then.
pub fn any_configured(conf: &ReqConf) -> bool {
    #[cfg(feature = "cgi")]
    if !conf.cgi.assign.is_empty() {
        return true;
    }
    #[cfg(any(feature = "fastcgi", feature = "scgi"))]
    if gateways(conf).next().is_some() {
        return true;
    }
    let _ = conf;
    false
}

/// A backend's choice for a request: the plan, and the SCRIPT_NAME / PATH_INFO split.
pub struct Choice {
    pub plan: Plan,
    pub script_name: String,
    pub path_info: String,
}

/// The gateways' check (lighttpd's gw_check_extension). `uri_path` is the request's
/// normalised path; `physical` is its file once the physical phase found one (None in
/// uri_clean, where only hosts with check-local disabled take requests). `authorized`: an
/// authorizer already said yes, so only responders are looked for.
#[cfg(any(feature = "fastcgi", feature = "scgi"))]
pub fn select_gw(
    ctx: &mut Ctx,
    conf: &ReqConf,
    uri_path: &str,
    physical: Option<&str>,
    authorized: bool,
    peer: &str,
) -> Option<Choice> {
    for (proto, gw) in gateways(conf) {
        for mode in [Mode::Authorizer, Mode::Responder] {
            if mode == Mode::Authorizer && authorized {
                continue;
            }
            let name = physical.unwrap_or(uri_path);
            // *.map-extensions first: a mapped suffix is handled as the one it maps to.
            let mapped = gw
                .map_extensions
                .iter()
                .find(|(from, _)| name.ends_with(from.as_str()))
                .map(|(_, to)| to.as_str());
            let ext = gw.exts.iter().find(|e| {
                e.hosts.iter().any(|h| h.mode == mode)
                    && match mapped {
                        Some(m) => e.key == m,
                        None if e.key.starts_with('/') => uri_path.starts_with(e.key.as_str()),
                        None => name.ends_with(e.key.as_str()),
                    }
            });
            let Some(ext) = ext else { continue };
            let host = pick_host(ctx, gw, &ext.hosts, mode, uri_path, peer)?;
            if physical.is_none() && host.check_local {
                // Decided in the physical phase, once the file is known to exist.
                return None;
            }
            let authorizer = mode == Mode::Authorizer;
            let (mut script_name, mut path_info) = (uri_path.to_string(), String::new());
            // Only "/prefix" entries split off path info, and not for an authorizer.
            if physical.is_none() && ext.key.starts_with('/') && !authorizer {
                if ext.key.len() == 1 && host.fix_root_scriptname {
                    path_info = std::mem::take(&mut script_name);
                } else if let Some(i) = uri_path
                    .get(ext.key.len()..)
                    .and_then(|rest| rest.find('/'))
                {
                    let cut = ext.key.len() + i;
                    path_info = uri_path[cut..].to_string();
                    script_name.truncate(cut);
                }
            }
            return Some(Choice {
                plan: Plan::Gw {
                    proto,
                    host: Rc::clone(host),
                    authorizer,
                },
                script_name,
                path_info,
            });
        }
    }
    None
}

/// The host of an entry that takes the request: by `*.balance` among those of `mode`.
#[cfg(any(feature = "fastcgi", feature = "scgi"))]
fn pick_host<'a>(
    ctx: &mut Ctx,
    gw: &GwConf,
    hosts: &'a [Rc<GwHost>],
    mode: Mode,
    path: &str,
    peer: &str,
) -> Option<&'a Rc<GwHost>> {
    use crate::backend::upstream::{djb, DJB_INIT};
    use crate::config::gateway::Balance;
    if hosts.len() == 1 {
        return hosts.first().filter(|h| h.mode == mode);
    }
    // An entry rarely mixes modes (an authorizer beside responders); the balancer sees
    // only the hosts of the mode asked for.
    let of_mode: Vec<Rc<GwHost>> = hosts.iter().filter(|h| h.mode == mode).cloned().collect();
    let base = match gw.balance {
        Balance::Hash => djb(path.as_bytes(), DJB_INIT),
        Balance::Sticky => djb(peer.as_bytes(), DJB_INIT),
        _ => 0,
    };
    let chosen = ctx.upstreams.pick(&of_mode, gw.balance, base, ctx.now)?;
    hosts
        .iter()
        .find(|h| h.index == chosen.index && h.mode == mode)
}

/// One turn of the backend: send it what is pending, read what it answered, and queue the
/// client's response (head once, then body, framed) in `b`. Reads no more while
/// [`BACKPRESSURE`] bytes wait for the client.
pub fn turn(ctx: &mut Ctx, ex: &mut Exchange, b: &mut Bufs, head: &Head, rlen: usize) -> Turn {
    let Some(g) = ex.backend.as_mut() else {
        return Turn::Done;
    };
    let Some(job) = g.job.as_mut() else {
        return Turn::Wait;
    };
    let mut progress = false;
    let connecting = job.connecting;
    match job.pump() {
        Ok(p) => progress |= p,
        Err(e) if connecting => {
            // The host refused or is unreachable: down, as lighttpd answers it.
            log::error!("backend: connecting: {}", e);
            #[cfg(any(feature = "fastcgi", feature = "scgi"))]
            if let Some((host, n)) = g.proc.take() {
                ctx.proc_failed(&host, n, &e);
                // The balancer skips the host for its disable-time.
                ctx.upstreams.failed(&host, ctx.now);
            }
            // mod_proxy's balancer skips the host for a while.
            #[cfg(any(feature = "proxy", feature = "wstunnel"))]
            if let Some(t) = super::proxy::failed(ctx, g, true) {
                return t;
            }
            return Turn::Fail(503);
        }
        Err(e) => {
            // A kept upstream connection that was dead: sent again on a new one.
            #[cfg(any(feature = "proxy", feature = "wstunnel"))]
            if let Some(t) = super::proxy::failed(ctx, g, false) {
                return t;
            }
            log::error!("backend: sending the request: {}", e);
            return if g.head_sent() {
                Turn::Cut
            } else {
                Turn::Fail(502)
            };
        }
    }
    #[cfg(any(feature = "proxy", feature = "wstunnel"))]
    if !job.connecting && super::proxy::ws_waiting(&g.state, g.up.as_deref()) {
        return super::proxy::ws_accept(ctx, ex, b, head);
    }
    if g.state == Resp::Done {
        return if progress { Turn::Progress } else { Turn::Done };
    }
    // Room for more response in the client's queue?
    if b.segs.is_empty() && g.held_head.is_none() {
        b.wbuf.clear();
    }
    if b.wbuf.len() >= BACKPRESSURE {
        return if progress { Turn::Progress } else { Turn::Wait };
    }
    let got = match job.read(&mut g.resp) {
        Ok(got) => got,
        Err(e) => {
            #[cfg(any(feature = "proxy", feature = "wstunnel"))]
            if let Some(t) = super::proxy::failed(ctx, g, false) {
                return t;
            }
            log::error!("backend: reading the response: {}", e);
            return if g.head_sent() {
                Turn::Cut
            } else {
                Turn::Fail(502)
            };
        }
    };
    match got {
        Got::Wait if !progress => return Turn::Wait,
        Got::Wait => return Turn::Progress,
        Got::Data => job.last_read = ctx.now,
        Got::End => {}
    }
    let ended = got == Got::End;
    #[cfg(any(feature = "proxy", feature = "wstunnel"))]
    if ended && g.state == Resp::Head && g.resp.is_empty() {
        // Closed before saying anything: a kept connection the upstream had given up.
        if let Some(t) = super::proxy::failed(ctx, g, false) {
            return t;
        }
    }
    // Interim responses (1xx but 101) are dropped; bounded, each one consumed bytes.
    for _ in 0..16 {
        if g.state != Resp::Head {
            break;
        }
        match gw_head::parse(&g.resp, g.mode, MAX_HEAD) {
            Ok(Some(h)) if h.interim() => {
                g.resp.drain(..h.len.min(g.resp.len()));
                continue;
            }
            Ok(Some(h)) => {
                let t = on_head(ctx, ex, b, head, rlen, &h);
                if t != Turn::Progress {
                    return t;
                }
                // A 101: the rest is the tunnel's, not a body.
                #[cfg(any(feature = "proxy", feature = "wstunnel"))]
                if super::tunnel::is_open(ex) {
                    return t;
                }
            }
            Ok(None) if ended => {
                log::error!("backend: the response ended inside its head");
                return Turn::Fail(502);
            }
            Ok(None) => return Turn::Progress,
            Err(e) => {
                log::error!("backend: bad response head: {}", e);
                return Turn::Fail(502);
            }
        }
        break;
    }
    let t = body_out(ctx, ex, b, ended);
    #[cfg(any(feature = "proxy", feature = "wstunnel"))]
    if t == Turn::Done {
        if let Some(g) = ex.backend.as_mut() {
            super::proxy::finished(ctx, g);
        }
    }
    t
}

/// The backend's head is complete: build the client's head from it.
fn on_head(
    ctx: &mut Ctx,
    ex: &mut Exchange,
    b: &mut Bufs,
    head: &Head,
    rlen: usize,
    h: &GwHead,
) -> Turn {
    let Some(g) = ex.backend.as_mut() else {
        return Turn::Done;
    };
    let raw = std::mem::take(&mut g.resp);
    let field = |name: &str| h.field(&raw, name);
    let location = h.location.map(|l| l.get(&raw));
    // RFC 3875 §6.2.2: a local path in Location with no status is an internal redirect.
    if g.local_redir
        && h.status_from == StatusFrom::Location
        && location.is_some_and(|l| l.starts_with(b"/") && !l.starts_with(b"//"))
    {
        if let Some(l) = location.and_then(|l| std::str::from_utf8(l).ok()) {
            ex.target = Some(l.to_string());
            return Turn::Restart;
        }
    }
    let mut status = h
        .status
        .unwrap_or(if location.is_some() { 302 } else { 200 });
    // A FastCGI authorizer's yes: the request goes on, with its Variable-* fields.
    #[cfg(feature = "fastcgi")]
    if g.authorizer && status == 200 {
        let vars = h
            .fields
            .iter()
            .filter_map(|f| {
                let name = f.name.get(&raw);
                let var = name.get(9..)?;
                if !name[..9].eq_ignore_ascii_case(b"Variable-") || var.is_empty() {
                    return None;
                }
                Some((var.to_vec(), f.value.get(&raw).to_vec()))
            })
            .collect();
        ex.authorized = Some(vars);
        return Turn::Restart;
    }
    if !(100..=999).contains(&status) {
        status = 502;
    }
    #[cfg(any(feature = "proxy", feature = "wstunnel"))]
    if status == 101 && g.up.is_some() {
        return super::proxy::upgraded(ctx, ex, b, head, &raw, h);
    }
    if let Some(saved) = g.saved {
        status = crate::modules::errors::final_status(saved, status);
    }
    // X-Sendfile: the backend names a file to send instead of its body.
    let sendfile = g.x_sendfile.as_ref().and_then(|dirs| {
        field("X-Sendfile")
            .or_else(|| field("X-LIGHTTPD-send-file"))
            .map(|p| {
                (
                    PathBuf::from(String::from_utf8_lossy(p).as_ref()),
                    Rc::clone(dirs),
                )
            })
    });
    b.hdrs.clear();
    for f in &h.fields {
        let name = f.name.get(&raw);
        if is_dropped(name) {
            continue;
        }
        if sendfile.is_some() && name.eq_ignore_ascii_case(b"Content-Length") {
            continue;
        }
        let Ok(name) = std::str::from_utf8(name) else {
            continue;
        };
        #[cfg(any(feature = "proxy", feature = "wstunnel"))]
        if let Some(v) = super::proxy::map_field(g, name.as_bytes(), f.value.get(&raw)) {
            response::header(&mut b.hdrs, name, &v);
            continue;
        }
        response::header(&mut b.hdrs, name, f.value.get(&raw));
    }
    let conf = Rc::clone(&g.conf);
    let bodiless = ex.head_only || response::bodiless(status);
    let mut content_length = h.content_length;
    if let Some((path, dirs)) = sendfile {
        return send_file(ctx, ex, b, head, status, &path, &dirs);
    }
    let framing = if bodiless {
        if response::bodiless(status) {
            content_length = None;
        }
        Framing::Discard
    } else if let Some(n) = h.content_length {
        Framing::Length(n)
    } else {
        unknown_length(ctx, &mut ex.persist, head)
    };
    g.source = if g.mode == gw_head::Mode::Http && (ex.head_only || response::bodiless(status)) {
        // An HTTP upstream sends no body after HEAD, a 1xx, 204 or 304, whatever its
        // fields say.
        Source::Length(0)
    } else if h.chunked {
        let mut dec = Box::<crate::http::chunked::ChunkedDecoder>::default();
        // Its trailer fields reach the client: merged into a collected response's head, or
        // as the trailer of a chunked one.
        dec.keep_trailers();
        Source::Chunked(dec)
    } else if let (Some(n), true) = (h.content_length, g.mode == gw_head::Mode::Http) {
        Source::Length(n)
    } else {
        Source::End
    };
    #[cfg(any(feature = "proxy", feature = "wstunnel"))]
    {
        let delimited = matches!(g.source, Source::Length(_) | Source::Chunked(_));
        super::proxy::on_head(g, h, delimited);
    }
    ex.status = status;
    // The rest of what was read is body.
    let rest = raw.get(h.len..).unwrap_or_default().to_vec();
    g.resp = rest;
    g.state = Resp::Body(framing);
    super::response_start(ctx, ex, b, head, &conf, None, true);
    #[cfg(feature = "deflate")]
    let framing = deflate_head(ctx, ex, b, head, rlen, &conf, framing, &mut content_length);
    #[cfg(not(feature = "deflate"))]
    let _ = rlen;
    if framing == Framing::Chunked {
        response::header(&mut b.hdrs, "Transfer-Encoding", b"chunked");
    }
    // A Server field from the backend replaces the tag, as in lighttpd.
    let tag = if response::find(&b.hdrs, "Server").is_some() {
        String::new()
    } else {
        conf.server_tag.clone()
    };
    if framing == Framing::Buffer {
        // Written once the body's length is known (or it outgrows the buffer).
        if let Some(g) = ex.backend.as_mut() {
            g.held_head = Some(tag);
        }
    } else {
        b.segs.push_back(Seg::Head(0, 0));
        let at = b.segs.len();
        let cl = if framing == Framing::Chunked {
            None
        } else {
            content_length
        };
        super::write_head(ctx, ex, b, at, &tag, cl);
    }
    ex.conf = Some(conf);
    Turn::Progress
}

/// mod_deflate's say on a backend's response (after the other response-start modules, as
/// in lighttpd): the framing to use. A compressed body has no length until it ends: it is
/// collected and compressed whole when short (server.stream-response-body = 0), else
/// streamed.
#[cfg(feature = "deflate")]
#[allow(clippy::too_many_arguments)]
fn deflate_head(
    ctx: &Ctx,
    ex: &mut Exchange,
    b: &mut Bufs,
    head: &Head,
    rlen: usize,
    conf: &ReqConf,
    framing: Framing,
    content_length: &mut Option<u64>,
) -> Framing {
    if framing == Framing::Discard || conf.deflate.mimetypes.is_empty() {
        return framing;
    }
    let req = super::deflate::Req {
        buf: b.rbuf.get(..rlen).unwrap_or_default(),
        headers: b.headers.get(..head.header_count).unwrap_or_default(),
        head,
    };
    let decided =
        super::deflate::backend_response(ctx, conf, &req, ex.status, &mut b.hdrs, *content_length);
    let Some(g) = ex.backend.as_mut() else {
        return framing;
    };
    let framing = match decided {
        Ok(None) => return framing,
        Ok(Some(zip)) => {
            g.zip = Some(zip);
            *content_length = None;
            unknown_length(ctx, &mut ex.persist, head)
        }
        Err(status) => {
            // The compressed entity is what the client has: no body, the backend's is
            // read and dropped.
            ex.status = status;
            *content_length = if status == 304 { None } else { Some(0) };
            Framing::Discard
        }
    };
    g.state = Resp::Body(framing);
    framing
}

/// How a body whose length is not known yet reaches the client: collected
/// (`server.stream-response-body = 0`), else chunked to HTTP/1.1, else ended by the close.
fn unknown_length(ctx: &Ctx, persist: &mut response::Persist, head: &Head) -> Framing {
    if ctx.cfg.stream_response_body == 0 {
        Framing::Buffer
    } else if head.version == request::Version::Http11 {
        Framing::Chunked
    } else {
        *persist = response::Persist::Close;
        Framing::Close
    }
}

/// Fields of a backend's head that never reach the client as they are: the framing, which
/// is the client connection's own, hop-by-hop fields, the CGI Status line, and X-Sendfile.
fn is_dropped(name: &[u8]) -> bool {
    const DROP: &[&str] = &[
        "Status",
        "Connection",
        "Keep-Alive",
        "Transfer-Encoding",
        "Proxy-Connection",
        "Upgrade",
        "TE",
        "Trailer",
        "Date",
        "X-Sendfile",
        "X-LIGHTTPD-send-file",
        "Content-Length",
    ];
    DROP.iter().any(|d| name.eq_ignore_ascii_case(d.as_bytes()))
}

/// X-Sendfile: answer with the named file (the backend's status and fields kept).
fn send_file(
    ctx: &mut Ctx,
    ex: &mut Exchange,
    b: &mut Bufs,
    head: &Head,
    status: u16,
    path: &Path,
    dirs: &[PathBuf],
) -> Turn {
    let allowed = path.is_absolute()
        && !path
            .components()
            .any(|c| matches!(c, std::path::Component::ParentDir))
        && (dirs.is_empty() || dirs.iter().any(|d| path.starts_with(d)));
    if !allowed {
        log::error!(
            "x-sendfile: {} is outside x-sendfile-docroot; refused",
            path.display()
        );
        return Turn::Fail(502);
    }
    let Ok(file) = std::fs::File::open(path) else {
        return Turn::Fail(404);
    };
    let Ok(meta) = file.metadata() else {
        return Turn::Fail(404);
    };
    if !meta.is_file() {
        return Turn::Fail(404);
    }
    let len = meta.len();
    ex.status = status;
    if let Some(g) = ex.backend.as_mut() {
        g.state = Resp::Done;
    }
    let conf = ex
        .backend
        .as_ref()
        .map(|g| Rc::clone(&g.conf))
        .unwrap_or_else(|| Rc::clone(&ctx.base));
    super::response_start(ctx, ex, b, head, &conf, None, true);
    b.segs.push_back(Seg::Head(0, 0));
    let at = b.segs.len();
    if !ex.head_only && len > 0 {
        b.segs.push_back(Seg::File { offset: 0, len });
        ex.file = Some(file);
    }
    ex.body_len = if ex.head_only { 0 } else { len };
    super::write_head(ctx, ex, b, at, &conf.server_tag, Some(len));
    ex.conf = Some(conf);
    Turn::Done
}

/// Move response body bytes into the client's queue, framed for the client.
fn body_out(ctx: &Ctx, ex: &mut Exchange, b: &mut Bufs, ended: bool) -> Turn {
    let Some(g) = ex.backend.as_mut() else {
        return Turn::Done;
    };
    let Resp::Body(framing) = g.state else {
        return if g.state == Resp::Done {
            Turn::Done
        } else {
            Turn::Progress
        };
    };
    let raw = std::mem::take(&mut g.resp);
    // The payload, decoded from the backend's framing.
    let mut data: Vec<u8> = Vec::new();
    let mut complete = ended;
    // Bytes after the end of the body: the upstream connection cannot be trusted again.
    let mut extra = false;
    let payload: &[u8] = match &mut g.source {
        Source::End => &raw,
        Source::Length(left) => {
            let take = (raw.len() as u64).min(*left) as usize;
            extra = take < raw.len();
            *left -= take as u64;
            if *left == 0 {
                complete = true;
            } else if ended {
                log::error!(
                    "backend: response ended {} bytes short of its Content-Length",
                    left
                );
                return cut(g, b);
            }
            &raw[..take]
        }
        Source::Chunked(dec) => {
            match dec.feed(&raw, None, &mut |d| data.extend_from_slice(d)) {
                Ok((used, done)) => {
                    extra = done && used < raw.len();
                    if done {
                        complete = true;
                    } else if ended {
                        log::error!("backend: response ended inside its chunked body");
                        return cut(g, b);
                    }
                }
                Err(e) => {
                    log::error!("backend: bad chunked body: {}", e.reason);
                    return cut(g, b);
                }
            }
            &data
        }
    };
    let trailers: Vec<u8> = match (&g.source, complete) {
        (Source::Chunked(dec), true) => dec.trailers().to_vec(),
        _ => Vec::new(),
    };
    #[cfg(any(feature = "proxy", feature = "wstunnel"))]
    if let Some(up) = g.up.as_mut().filter(|_| extra) {
        up.overrun = true;
    }
    let _ = extra;
    // mod_deflate: what goes out is the compressed payload (a collected body is compressed
    // whole, below).
    #[cfg(feature = "deflate")]
    let zipped: Vec<u8>;
    #[cfg(feature = "deflate")]
    let payload: &[u8] = match g.zip.as_mut() {
        Some(z) if !matches!(framing, Framing::Buffer | Framing::Discard) => {
            let mut out = Vec::with_capacity(payload.len() / 2 + 64);
            z.run(payload, complete, &mut out);
            zipped = out;
            &zipped
        }
        _ => payload,
    };
    let from = b.wbuf.len();
    let mut framing = framing;
    match framing {
        Framing::Discard => {}
        Framing::Length(left) => {
            let take = (payload.len() as u64).min(left) as usize;
            b.wbuf.extend_from_slice(&payload[..take]);
            let left = left - take as u64;
            framing = Framing::Length(left);
            ex.body_len += take as u64;
            if take < payload.len() {
                log::warn!("backend: sent more than its Content-Length; the rest is dropped");
            }
            if left == 0 {
                complete = true;
            } else if complete {
                log::error!(
                    "backend: response ended {} bytes short of its Content-Length",
                    left
                );
                if b.wbuf.len() > from {
                    b.segs.push_back(Seg::Mem(from, b.wbuf.len()));
                }
                return Turn::Cut;
            }
        }
        Framing::Chunked => {
            chunk(b, payload);
            ex.body_len += payload.len() as u64;
            if complete {
                b.wbuf.extend_from_slice(b"0\r\n");
                b.wbuf.extend_from_slice(&trailers);
                b.wbuf.extend_from_slice(b"\r\n");
            }
        }
        Framing::Close => {
            b.wbuf.extend_from_slice(payload);
            ex.body_len += payload.len() as u64;
        }
        Framing::Buffer => {
            // Collected in the write buffer with nothing queued yet: the head goes first.
            b.wbuf.extend_from_slice(payload);
            ex.body_len += payload.len() as u64;
            let tag = g.held_head.clone().unwrap_or_default();
            if complete {
                g.held_head = None;
                #[cfg(feature = "deflate")]
                if let Some(z) = g.zip.as_mut() {
                    ex.body_len = zip_collected(z, &mut b.wbuf, true);
                }
                // The backend's trailer fields join the head (lighttpd merges them too).
                for line in trailers.split(|&c| c == b'\n') {
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    if let Some(i) = line.iter().position(|&c| c == b':') {
                        if let Ok(name) = std::str::from_utf8(&line[..i]) {
                            let value = crate::http::request::trim_ows(&line[i + 1..]);
                            response::header(&mut b.hdrs, name, value);
                        }
                    }
                }
                let len = b.wbuf.len();
                b.segs.push_back(Seg::Head(0, 0));
                let at = b.segs.len();
                b.segs.push_back(Seg::Mem(0, len));
                g.state = Resp::Done;
                g.resp = raw;
                g.resp.clear();
                super::write_head(ctx, ex, b, at, &tag, Some(len as u64));
                return Turn::Done;
            }
            if b.wbuf.len() < BACKPRESSURE {
                g.resp = raw;
                g.resp.clear();
                return Turn::Progress;
            }
            // Too much to hold: stream it after all.
            g.held_head = None;
            #[cfg(feature = "deflate")]
            if let Some(z) = g.zip.as_mut() {
                ex.body_len = zip_collected(z, &mut b.wbuf, false);
            }
            let len = b.wbuf.len();
            let chunked = ex
                .head
                .is_some_and(|h| h.version == request::Version::Http11);
            if chunked {
                response::header(&mut b.hdrs, "Transfer-Encoding", b"chunked");
                framing = Framing::Chunked;
            } else {
                ex.persist = response::Persist::Close;
                framing = Framing::Close;
            }
            g.state = Resp::Body(framing);
            g.resp = raw;
            g.resp.clear();
            b.segs.push_back(Seg::Head(0, 0));
            let at = b.segs.len();
            if len > 0 {
                b.segs.push_back(Seg::Mem(0, len));
            }
            // (Nothing collected can only be a compressor that kept it all: no chunk then,
            // as an empty one would end the body.)
            if chunked && len > 0 {
                b.wbuf.extend_from_slice(b"\r\n");
                b.segs.push_back(Seg::Mem(len, len + 2));
            }
            super::write_head(ctx, ex, b, at, &tag, None);
            if chunked && len > 0 {
                // The chunk-size line of what was collected goes right after the head.
                use std::io::Write;
                let _ = write!(b.hbuf, "{:x}\r\n", len);
                if let Some(Seg::Head(_, e)) = b.segs.get_mut(at - 1) {
                    *e = b.hbuf.len();
                }
            }
            return Turn::Progress;
        }
    }
    if complete {
        g.state = Resp::Done;
    } else {
        g.state = Resp::Body(framing);
    }
    // Keep the allocation for the next read.
    g.resp = raw;
    g.resp.clear();
    if b.wbuf.len() > from {
        b.segs.push_back(Seg::Mem(from, b.wbuf.len()));
    }
    if g.state == Resp::Done {
        Turn::Done
    } else {
        Turn::Progress
    }
}

/// Compress the body collected in `wbuf` in place (`end`: all of it); its new length.
#[cfg(feature = "deflate")]
fn zip_collected(z: &mut super::deflate::Zip, wbuf: &mut Vec<u8>, end: bool) -> u64 {
    let mut out = Vec::with_capacity(wbuf.len() / 2 + 64);
    z.run(wbuf, end, &mut out);
    *wbuf = out;
    wbuf.len() as u64
}

/// One chunk of a chunked body (nothing for no bytes: an empty chunk would end the body).
fn chunk(b: &mut Bufs, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    use std::io::Write;
    let _ = write!(b.wbuf, "{:x}\r\n", data.len());
    b.wbuf.extend_from_slice(data);
    b.wbuf.extend_from_slice(b"\r\n");
}

/// The backend broke its framing after the head went out: what is queued goes, then the
/// connection is cut.
fn cut(g: &mut Gw, _b: &mut Bufs) -> Turn {
    g.state = Resp::Done;
    Turn::Cut
}

/// mod_cgi: whether `cgi.assign` takes this request, and the plan to run it. Called in the
/// physical phase with where the request lives on disk. Err is the status to answer with.
#[cfg(feature = "cgi")]
pub fn select_cgi(
    conf: &ReqConf,
    root: &Path,
    rel: &str,
) -> Option<Result<(PathBuf, usize, Plan), u16>> {
    if conf.cgi.assign.is_empty() {
        return None;
    }
    // The script is the longest prefix of the path that is a file; the rest is PATH_INFO.
    let (script, meta, split) = script_of(root, rel)?;
    let name = script.to_string_lossy();
    let (_, interp) = conf
        .cgi
        .assign
        .iter()
        .find(|(suffix, _)| name.ends_with(suffix.as_str()))?;
    if conf.cgi.execute_x_only && interp.is_none() {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o111 == 0 {
            return Some(Err(403));
        }
    }
    let mut argv: Vec<std::ffi::OsString> = Vec::with_capacity(2);
    if let Some(i) = interp {
        argv.push(i.clone().into_os_string());
    }
    argv.push(script.clone().into_os_string());
    let cwd = script
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    Some(Ok((script, split, Plan::Cgi { argv, cwd })))
}

/// The longest prefix of `rel` (cut at a '/') that is a regular file under `root`: the file,
/// its metadata, and where in `rel` the path info begins.
pub fn script_of(root: &Path, rel: &str) -> Option<(PathBuf, std::fs::Metadata, usize)> {
    let mut end = rel.len();
    // Bounded by the number of '/' in the path.
    loop {
        let mut p = root.as_os_str().to_owned();
        p.push(&rel[..end]);
        let p = PathBuf::from(p);
        match std::fs::metadata(&p) {
            Ok(m) if m.is_file() => return Some((p, m, end)),
            Ok(_) => return None,
            Err(_) => {}
        }
        end = rel[..end].rfind('/')?;
        if end == 0 {
            return None;
        }
    }
}
