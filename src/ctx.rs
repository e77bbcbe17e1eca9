//! What every connection shares: the read-only config, the settings cache, pooled buffers,
//! the clock, the file cache and the access logs. The loop owns one; connections borrow it
//! while they are driven.

use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::config::{Config, MatchSet, ReqConf};
use crate::handlers::Seg;
use crate::http::request::{Header, Limits};
use crate::log::AccessLog;

/// During a graceful stop, how long an idle keep-alive connection stays open for a request its
/// client may already have sent.
pub const DRAIN_IDLE_WINDOW: Duration = Duration::from_millis(1000);

/// Most request heads may have this many fields.
const MAX_HEADERS: usize = 128;

/// Idle buffer sets kept for reuse; beyond this they are freed.
const POOL_MAX: usize = 128;

/// The cached per-request settings for distinct sets of matching conditions.
const CONF_CACHE_MAX: usize = 64;

/// The buffers a busy connection uses. Pooled: idle connections give them back.
pub struct Bufs {
    pub rbuf: Box<[u8]>,
    /// The serialized response head.
    pub hbuf: Vec<u8>,
    /// The response's own header fields, while modules may still edit them.
    pub hdrs: Vec<u8>,
    /// Response bodies kept in memory (and an interim 100 Continue).
    pub wbuf: Vec<u8>,
    pub segs: VecDeque<Seg>,
    /// Whole responses to pipelined requests, kept back to leave with a later one in one
    /// send: on loopback and on the wire every send costs a segment, and the client has
    /// asked for all of them already. Sent before anything else queued.
    pub batch: Vec<u8>,
    pub headers: Vec<Header>,
    pub path: String,
    pub fs_path: PathBuf,
    pub ranges: Vec<(u64, u64)>,
    pub scratch: String,
}

/// Everything connections share: read-only config plus caches, pools and logs.
pub struct Ctx {
    pub cfg: Config,
    pub base: Rc<ReqConf>,
    conf_cache: Vec<(MatchSet, Rc<ReqConf>)>,
    // Boxed so that a connection's `Option<Box<Bufs>>` is one pointer and moving a set in
    // and out of the pool copies a pointer, not the struct.
    #[allow(clippy::vec_box)]
    pool: Vec<Box<Bufs>>,
    rbuf_size: usize,
    /// Now, as of the latest wake-up.
    pub now: Instant,
    /// The Date header value, formatted once per second.
    pub date: [u8; 29],
    date_secs: u64,
    pub drain_started: Option<Instant>,
    /// At the connection limit with clients waiting to be accepted: responses end keep-alive
    /// (`Connection: close`), as nginx does, so that a busy keep-alive client does not hold
    /// its slot for up to server.max-keep-alive-requests requests while others wait.
    pub end_keep_alive: bool,
    pub limits: Limits,
    pub cache: crate::handlers::cache::FileCache,
    /// The current second (wall clock), as the Date header shows it.
    pub now_secs: u64,
    pub(crate) accesslogs: Vec<AccessLog>,
    /// The bound address per listener index.
    listener_addrs: Vec<SocketAddr>,
    /// mod_status's counters.
    #[cfg(feature = "status")]
    pub stats: crate::handlers::status_page::Stats,
    /// mod_status is loaded: connections report their state changes (a status page shows
    /// them); otherwise nobody could see them, so they are not counted.
    #[cfg(feature = "status")]
    pub count_states: bool,
    /// mod_auth: signs Digest nonces (unless an auth.require entry has its own
    /// nonce-secret).
    #[cfg(feature = "auth")]
    pub auth_secret: [u8; 32],
    /// The loop's registry: backends register their descriptors with it.
    #[cfg(feature = "backend")]
    pub registry: mio::Registry,
    /// Per gateway host (`GwHost::index`): the next process to try.
    #[cfg(any(feature = "fastcgi", feature = "scgi"))]
    gw_next: Vec<u32>,
    /// Per gateway host with a `bin-path` (`GwHost::index`): its spawned processes.
    #[cfg(any(feature = "fastcgi", feature = "scgi"))]
    pub pools: Vec<Option<crate::backend::pool::Pool>>,
    /// The process that spawned the pools: only it restarts and stops them (worker processes
    /// forked after the pools started use them, and leave them alone).
    #[cfg(any(feature = "fastcgi", feature = "scgi"))]
    pools_owner: u32,
    /// The gateways' hosts: their load and disable-time for balancing, and mod_proxy's idle
    /// upstream connections.
    #[cfg(any(feature = "fastcgi", feature = "scgi", feature = "proxy"))]
    pub upstreams: crate::backend::upstream::Upstreams,
    /// mod_deflate: compressors running at once (see `pipeline::deflate::Slot`).
    #[cfg(feature = "deflate")]
    pub deflate_streams: Rc<std::cell::Cell<usize>>,
    /// The 1-minute load average and the second it was read (deflate.max-loadavg).
    #[cfg(feature = "deflate")]
    load: std::cell::Cell<(u64, f64)>,
    /// TLS: which listeners speak it, and the server configs (certificates) by SNI.
    #[cfg(feature = "tls")]
    pub tls: crate::tls::Tls,
}

impl Ctx {
    /// The shared state for `cfg`, with the access logs it names opened and the listeners
    /// bound at `listener_addrs` (by listener index).
    pub fn new(
        cfg: Config,
        listener_addrs: Vec<SocketAddr>,
        #[cfg(feature = "backend")] registry: mio::Registry,
    ) -> io::Result<Ctx> {
        let mut accesslogs = Vec::new();
        for path in accesslog_paths(&cfg) {
            accesslogs.push(AccessLog::open(std::path::Path::new(&path))?);
        }
        let max_head = cfg.max_request_field_size.max(512);
        let limits = Limits {
            max_head,
            // A request line that alone fills the head limit is a URI problem (414), not a
            // header problem (431).
            max_request_line: max_head - 1,
            max_headers: MAX_HEADERS,
        };
        let base = Rc::new(cfg.base.clone());
        #[cfg(feature = "status")]
        let stats = crate::handlers::status_page::Stats::new(
            crate::log::now_secs(),
            cfg.max_connections as u64,
        );
        let mut ctx = Ctx {
            cfg,
            base,
            conf_cache: Vec::new(),
            pool: Vec::new(),
            rbuf_size: max_head + 4096,
            now: Instant::now(),
            date: [b' '; 29],
            date_secs: 0,
            drain_started: None,
            end_keep_alive: false,
            limits,
            cache: Default::default(),
            now_secs: 0,
            accesslogs,
            listener_addrs,
            #[cfg(feature = "status")]
            stats,
            #[cfg(feature = "status")]
            count_states: false,
            #[cfg(feature = "auth")]
            auth_secret: auth_secret()?,
            #[cfg(feature = "backend")]
            registry,
            #[cfg(any(feature = "fastcgi", feature = "scgi"))]
            gw_next: Vec::new(),
            #[cfg(any(feature = "fastcgi", feature = "scgi"))]
            pools: Vec::new(),
            #[cfg(any(feature = "fastcgi", feature = "scgi"))]
            pools_owner: 0,
            #[cfg(any(feature = "fastcgi", feature = "scgi", feature = "proxy"))]
            upstreams: Default::default(),
            #[cfg(feature = "deflate")]
            deflate_streams: Rc::default(),
            #[cfg(feature = "deflate")]
            load: std::cell::Cell::new((u64::MAX, 0.0)),
            #[cfg(feature = "tls")]
            tls: Default::default(),
        };
        #[cfg(feature = "status")]
        {
            ctx.count_states = ctx.cfg.modules.iter().any(|m| m == "mod_status");
        }
        ctx.refresh_clock();
        Ok(ctx)
    }

    /// Spawn the processes of every gateway host with a `bin-path`, each pool under this
    /// generation's tag (a reload's old and new generations never share a socket). A pool
    /// that cannot start is logged and retried on the tick: its requests get 503 meanwhile.
    #[cfg(any(feature = "fastcgi", feature = "scgi"))]
    pub fn start_pools(&mut self) {
        use crate::backend::pool::{generation_tag, Pool};
        let tag = generation_tag();
        self.pools_owner = std::process::id();
        self.pools = Vec::with_capacity(self.cfg.gw_hosts.len());
        for h in &self.cfg.gw_hosts {
            let pool = match h.bin_path {
                Some(_) => match Pool::start(std::rc::Rc::clone(h), &tag, self.now) {
                    Ok(p) => Some(p),
                    Err(e) => {
                        log::error!(
                            "spawning {} for {}: {}",
                            h.bin_path.as_deref().unwrap_or_default().join(" "),
                            h.addr,
                            e
                        );
                        None
                    }
                },
                None => None,
            };
            self.pools.push(pool);
        }
    }

    /// The pools' periodic work (restarts, reaping); only in the process that owns them.
    #[cfg(any(feature = "fastcgi", feature = "scgi"))]
    pub fn tick_pools(&mut self) {
        if self.pools_owner != std::process::id() {
            return;
        }
        let now = self.now;
        for p in self.pools.iter_mut().flatten() {
            p.tick(now);
        }
    }

    /// Stop the pools (end of this generation): kill-signal, sockets removed, and a short
    /// wait to reap them. A worker process leaves them to its supervisor; the old generation
    /// of an in-place reload (a fork of the process that spawned them) stops them itself,
    /// since they are its generation's.
    #[cfg(any(feature = "fastcgi", feature = "scgi"))]
    pub fn stop_pools(&mut self, worker: bool) {
        if worker || self.pools.iter().all(Option::is_none) {
            return;
        }
        let now = Instant::now();
        for p in self.pools.iter_mut().flatten() {
            p.stop(now);
        }
        // Bounded: most backends exit at once on their kill-signal.
        for _ in 0..50 {
            let now = Instant::now();
            for p in self.pools.iter_mut().flatten() {
                p.tick(now);
            }
            if self.pools.iter().flatten().all(|p| p.is_stopped()) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Where the next request for `host` goes: a process of its pool (the least loaded
    /// running one, round robin among equals), or the host's own address. None: no process
    /// takes requests now (503).
    #[cfg(any(feature = "fastcgi", feature = "scgi"))]
    pub fn pick_proc(
        &mut self,
        host: &crate::config::gateway::GwHost,
    ) -> Option<(u32, crate::backend::connect::Target)> {
        use crate::backend::connect::Target;
        if host.bin_path.is_none() {
            return Some((0, Target::Addr(host.addr.clone())));
        }
        let now = self.now;
        let pool = self.pools.get_mut(host.index)?.as_mut()?;
        if !pool.ensure_running(now) {
            return None;
        }
        if self.gw_next.len() <= host.index {
            self.gw_next.resize(host.index + 1, 0);
        }
        let n = pool.len().max(1);
        let start = self.gw_next[host.index] as usize % n;
        let i = (0..n)
            .map(|k| (start + k) % n)
            .filter(|&i| pool.addr(i).is_some())
            .min_by_key(|&i| pool.load(i))?;
        self.gw_next[host.index] = ((i + 1) % n) as u32;
        let sa = pool.addr(i)?.clone();
        pool.acquire(i, now);
        Some((i as u32, Target::Sock(sa)))
    }

    /// A request bound to process `n` of `host` is done with it.
    #[cfg(any(feature = "fastcgi", feature = "scgi"))]
    pub fn proc_done(&mut self, host: &crate::config::gateway::GwHost, n: u32) {
        let now = self.now;
        if let Some(p) = self.pools.get_mut(host.index).and_then(Option::as_mut) {
            p.release(n as usize, now);
        }
    }

    /// Connecting to process `n` of `host` failed: true if it was restarted and may be
    /// tried again at once.
    #[cfg(any(feature = "fastcgi", feature = "scgi"))]
    pub fn proc_failed(
        &mut self,
        host: &crate::config::gateway::GwHost,
        n: u32,
        err: &io::Error,
    ) -> bool {
        let now = self.now;
        let owner = self.pools_owner == std::process::id();
        match self.pools.get_mut(host.index).and_then(Option::as_mut) {
            Some(p) => {
                p.release(n as usize, now);
                owner && p.connect_failed(n as usize, err, now) == crate::backend::pool::Retry::Now
            }
            None => false,
        }
    }

    pub fn take_bufs(&mut self) -> Box<Bufs> {
        self.pool.pop().unwrap_or_else(|| {
            Box::new(Bufs {
                rbuf: vec![0u8; self.rbuf_size].into_boxed_slice(),
                hbuf: Vec::with_capacity(1024),
                hdrs: Vec::with_capacity(512),
                wbuf: Vec::with_capacity(20 * 1024),
                segs: VecDeque::with_capacity(4),
                batch: Vec::new(),
                headers: Vec::with_capacity(32),
                path: String::with_capacity(256),
                fs_path: PathBuf::with_capacity(512),
                ranges: Vec::new(),
                scratch: String::new(),
            })
        })
    }

    pub fn give_bufs(&mut self, mut b: Box<Bufs>) {
        if self.pool.len() >= POOL_MAX {
            return;
        }
        b.wbuf.clear();
        b.segs.clear();
        b.batch.clear();
        b.hbuf.clear();
        b.hbuf.shrink_to(8 * 1024);
        b.hdrs.clear();
        b.hdrs.shrink_to(8 * 1024);
        // A directory listing or a multipart reply may have grown these; don't keep that.
        b.wbuf.shrink_to(64 * 1024);
        b.scratch.clear();
        b.scratch.shrink_to(4096);
        b.ranges.clear();
        b.ranges.shrink_to(8);
        self.pool.push(b);
    }

    /// The settings for a request that took the conditional branches in `set`.
    pub fn conf_for(&mut self, set: &MatchSet) -> Rc<ReqConf> {
        if set.is_empty() {
            return Rc::clone(&self.base);
        }
        if let Some((_, c)) = self.conf_cache.iter().find(|(s, _)| s == set) {
            return Rc::clone(c);
        }
        let merged = Rc::new(self.cfg.merged(set));
        if self.conf_cache.len() < CONF_CACHE_MAX {
            self.conf_cache.push((*set, Rc::clone(&merged)));
        }
        merged
    }

    pub fn accesslog(&mut self, path: &str) -> Option<&mut AccessLog> {
        self.accesslogs
            .iter_mut()
            .find(|l| l.path.as_os_str() == path)
    }

    /// The TLS server config for a connection on listener `i` that sent `hello`.
    #[cfg(feature = "tls")]
    pub fn tls_config(
        &mut self,
        i: usize,
        hello: &crate::tls::session::Hello<'_>,
        peer: SocketAddr,
    ) -> Option<crate::tls::session::Chosen> {
        let local = self.listener_addrs.get(i).copied()?;
        self.tls.config_for(&self.cfg, local, hello, peer)
    }

    /// The address listener `i` is actually bound to.
    pub fn listener_local(&self, i: usize) -> SocketAddr {
        self.listener_addrs[i]
    }

    /// The 1-minute load average, read at most once a second (lighttpd samples it once a
    /// second too). 0 when the system will not say.
    #[cfg(feature = "deflate")]
    pub fn loadavg(&self) -> f64 {
        let (at, value) = self.load.get();
        if at == self.now_secs {
            return value;
        }
        let mut avg = [0f64; 1];
        // SAFETY: the buffer has room for the one sample asked for.
        let n = unsafe { libc::getloadavg(avg.as_mut_ptr(), 1) };
        let value = if n == 1 { avg[0] } else { 0.0 };
        self.load.set((self.now_secs, value));
        value
    }

    /// Read the clocks after a wake-up; the Date header is formatted once per second.
    pub fn refresh_clock(&mut self) {
        self.now = Instant::now();
        let secs = crate::log::now_secs();
        self.now_secs = secs;
        if secs != self.date_secs {
            self.date_secs = secs;
            crate::http::date::format(secs, &mut self.date);
            // mod_status's one-second buckets close when the second changes.
            #[cfg(feature = "status")]
            self.stats.tick(secs);
        }
    }
}

/// Every accesslog.filename the config can select (none without mod_accesslog).
fn accesslog_paths(cfg: &Config) -> Vec<String> {
    #[cfg(feature = "accesslog")]
    fn walk(chains: &[crate::config::CondChain], out: &mut Vec<String>) {
        use crate::config::Val;
        for br in chains.iter().flat_map(|c| &c.branches) {
            for s in &br.settings {
                if let ("accesslog.filename", Val::OptStr(Some(f))) = (s.name(), &s.val) {
                    out.push(f.clone());
                }
            }
            walk(&br.children, out);
        }
    }
    let mut out = Vec::new();
    #[cfg(feature = "accesslog")]
    {
        out.extend(cfg.base.accesslog.filename.clone());
        walk(&cfg.conds, &mut out);
    }
    let _ = cfg;
    out.sort();
    out.dedup();
    out
}

/// The secret that signs Digest nonces: random, read once per process. Workers are forked
/// after the supervisor made its own, so they share it and accept each other's nonces; a new
/// generation (reload in place, restart) has a new one, and the auth code answers nonces it
/// cannot verify with stale=true, so clients retry without asking their user again.
#[cfg(feature = "auth")]
fn auth_secret() -> io::Result<[u8; 32]> {
    use std::io::Read;
    static SECRET: std::sync::OnceLock<[u8; 32]> = std::sync::OnceLock::new();
    if let Some(s) = SECRET.get() {
        return Ok(*s);
    }
    let mut b = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut b))
        .map_err(|e| io::Error::new(e.kind(), format!("/dev/urandom: {e}")))?;
    Ok(*SECRET.get_or_init(|| b))
}
