//! mod_proxy's upstream hosts between requests: idle keep-alive connections waiting for the
//! next request to the same host, and what the balancer knows of each host (its load, and
//! whether it failed recently).
//!
//! The pool is small and bounded ([`PER_HOST`], [`TOTAL`]) and its connections are not in the
//! poll: nothing is read from them while they idle. An upstream may close an idle connection
//! at any time, so one is checked before it is reused (a peek that must find nothing to read
//! and no end of stream), and connections idle for longer than [`IDLE_FOR`] are closed rather
//! than trusted. Whatever is left closes with the loop's shared state at the end of a drain.

use std::cell::Cell;
use std::os::fd::{AsRawFd, OwnedFd};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::config::gateway::{Addr, Balance, GwHost};

/// Idle connections kept per upstream host: as many as nginx's usual `keepalive 64`, so
/// that 50 busy clients do not reconnect on every other request (4 here cost a new upstream
/// connection on about half of them in the backends bench).
pub const PER_HOST: usize = 64;
/// Idle connections kept in all: each holds a descriptor.
pub const TOTAL: usize = 64;
/// An idle connection older than this is closed instead of reused. Servers end idle
/// keep-alive connections after a few seconds (lighttpd after 5), and a request sent just as
/// the upstream closes is lost; staying under their limit keeps that race rare.
pub const IDLE_FOR: Duration = Duration::from_secs(4);

struct Idle {
    host: usize,
    fd: OwnedFd,
    since: Instant,
}

#[derive(Default)]
struct HostState {
    /// Requests the host is serving now (least-connection balancing).
    load: Rc<Cell<u32>>,
    /// A connect failed: the host is skipped until then (`disable-time`).
    disabled_until: Option<Instant>,
}

/// The shared state; one per loop.
#[derive(Default)]
pub struct Upstreams {
    idle: Vec<Idle>,
    /// By `GwHost::index`.
    hosts: Vec<HostState>,
    /// Round robin: per `*.server` entry (keyed by its first host's index), the position of
    /// the host used last.
    rr: Vec<(usize, usize)>,
}

/// A request's share of its host's load, given back when dropped.
pub struct Load(Rc<Cell<u32>>);

impl Drop for Load {
    fn drop(&mut self) {
        self.0.set(self.0.get().saturating_sub(1));
    }
}

/// lighttpd's djbhash, which its hash and sticky balancing use.
pub fn djb(bytes: &[u8], mut hash: u32) -> u32 {
    for &b in bytes {
        hash = (hash << 5).wrapping_add(hash) ^ u32::from(b);
    }
    hash
}

/// The seed of [`djb`].
pub const DJB_INIT: u32 = 5381;

/// A host's own hash for hash balancing: its name (or socket path) and port.
fn host_hash(h: &GwHost) -> u32 {
    use std::os::unix::ffi::OsStrExt;
    match &h.addr {
        Addr::Tcp(name, port) => djb(name.as_bytes(), DJB_INIT) ^ u32::from(*port),
        Addr::Unix(p) => djb(p.as_os_str().as_bytes(), DJB_INIT),
    }
}

impl Upstreams {
    fn host(&mut self, index: usize) -> &mut HostState {
        if self.hosts.len() <= index {
            self.hosts.resize_with(index + 1, HostState::default);
        }
        &mut self.hosts[index]
    }

    /// The host of an entry that takes a request, by `*.balance`, among those not disabled;
    /// None when all are (lighttpd answers 503). `base_hash` is the request's hash for
    /// hash (path and authority) and sticky (client address) balancing.
    pub fn pick<'a>(
        &mut self,
        hosts: &'a [Rc<GwHost>],
        balance: Balance,
        base_hash: u32,
        now: Instant,
    ) -> Option<&'a Rc<GwHost>> {
        let states = &self.hosts;
        let active = |i: &usize| {
            hosts.get(*i).is_some_and(|h| {
                states
                    .get(h.index)
                    .and_then(|s| s.disabled_until)
                    .map_or(true, |t| now >= t)
            })
        };
        let n = hosts.len();
        let chosen = match balance {
            _ if n <= 1 => (0..n).find(active),
            Balance::Fair => (0..n)
                .filter(active)
                .min_by_key(|&i| states.get(hosts[i].index).map_or(0, |s| s.load.get())),
            Balance::RoundRobin => {
                let key = hosts[0].index;
                let last = self
                    .rr
                    .iter()
                    .find(|(k, _)| *k == key)
                    .map_or(n - 1, |(_, l)| *l);
                let next = (1..=n).map(|step| (last + step) % n).find(active);
                if let Some(i) = next {
                    match self.rr.iter_mut().find(|(k, _)| *k == key) {
                        Some(e) => e.1 = i,
                        // Bounded by the number of entries in the config.
                        None => self.rr.push((key, i)),
                    }
                }
                next
            }
            Balance::Hash | Balance::Sticky => {
                let mut best: Option<(usize, u32)> = None;
                for i in (0..n).filter(active) {
                    let h = base_hash ^ host_hash(&hosts[i]);
                    // Ties go to the later host, as in lighttpd.
                    if best.map_or(true, |(_, b)| b <= h) {
                        best = Some((i, h));
                    }
                }
                best.map(|(i, _)| i)
            }
        };
        chosen.and_then(|i| hosts.get(i))
    }

    /// Count a request against its host until the returned guard is dropped.
    pub fn load(&mut self, index: usize) -> Load {
        let l = &self.host(index).load;
        l.set(l.get().saturating_add(1));
        Load(Rc::clone(l))
    }

    /// Connecting to `h` failed: skip it for its `disable-time`.
    pub fn failed(&mut self, h: &GwHost, now: Instant) {
        self.host(h.index).disabled_until = Some(now + h.disable_time);
    }

    /// An idle connection to host `index` that is still open, if there is one. Stale ones
    /// met on the way are closed.
    pub fn take(&mut self, index: usize, now: Instant) -> Option<OwnedFd> {
        self.expire(now);
        // Newest first: the least likely to have been closed by the upstream. Bounded by the
        // pool's size.
        while let Some(pos) = self.idle.iter().rposition(|i| i.host == index) {
            let idle = self.idle.remove(pos);
            if still_open(&idle.fd) {
                return Some(idle.fd);
            }
            log::debug!("proxy: an idle upstream connection was closed by the upstream");
        }
        None
    }

    /// Keep a connection whose response ended cleanly for the next request to host `index`.
    pub fn put(&mut self, index: usize, fd: OwnedFd, now: Instant) {
        self.expire(now);
        if self.idle.iter().filter(|i| i.host == index).count() >= PER_HOST {
            if let Some(pos) = self.idle.iter().position(|i| i.host == index) {
                self.idle.remove(pos);
            }
        }
        if self.idle.len() >= TOTAL {
            self.idle.remove(0);
        }
        self.idle.push(Idle {
            host: index,
            fd,
            since: now,
        });
    }

    /// Close every idle connection (a drain keeps none).
    pub fn clear(&mut self) {
        self.idle.clear();
    }

    /// How many idle connections are kept.
    pub fn idle_count(&self) -> usize {
        self.idle.len()
    }

    fn expire(&mut self, now: Instant) {
        self.idle
            .retain(|i| now.saturating_duration_since(i.since) < IDLE_FOR);
    }
}

/// Whether an idle connection can carry a request: nothing to read (an idle upstream sends
/// nothing; bytes or an end of stream mean it is finished with us) and no error pending.
fn still_open(fd: &OwnedFd) -> bool {
    let mut b = [0u8; 1];
    // SAFETY: a valid descriptor and a 1-byte buffer.
    let n = unsafe {
        libc::recv(
            fd.as_raw_fd(),
            b.as_mut_ptr() as *mut libc::c_void,
            1,
            libc::MSG_PEEK | libc::MSG_DONTWAIT,
        )
    };
    n < 0 && std::io::Error::last_os_error().kind() == std::io::ErrorKind::WouldBlock
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::unix::net::UnixStream;

    fn host(index: usize, name: &str, port: u16) -> Rc<GwHost> {
        let mut h = GwHost::new("", Addr::Tcp(name.into(), port));
        h.index = index;
        (h.min_procs, h.max_procs, h.check_local) = (1, 1, false);
        Rc::new(h)
    }

    #[test]
    fn stale_idle_connections_are_never_handed_out() {
        let mut u = Upstreams::default();
        let now = Instant::now();
        let (a, a_peer) = UnixStream::pair().unwrap();
        let (b, b_peer) = UnixStream::pair().unwrap();
        let (c, mut c_peer) = UnixStream::pair().unwrap();
        u.put(1, a.into(), now);
        u.put(1, b.into(), now);
        u.put(1, c.into(), now);
        // The newest was closed by its peer, the next one got unexpected bytes: only the
        // oldest is still fit.
        c_peer.write_all(b"x").unwrap();
        drop(b_peer);
        let fd = u.take(1, now).expect("the open one");
        assert_eq!(u.idle_count(), 0);
        drop(a_peer);
        assert!(!still_open(&fd));
        assert!(u.take(1, now).is_none());
        // Too old: closed, not reused.
        let (d, _d_peer) = UnixStream::pair().unwrap();
        u.put(2, d.into(), now);
        assert!(u.take(2, now + IDLE_FOR).is_none());
    }

    #[test]
    fn the_pool_is_bounded() {
        let mut u = Upstreams::default();
        let now = Instant::now();
        let mut peers = Vec::new();
        for i in 0..(TOTAL + 10) {
            let (a, b) = UnixStream::pair().unwrap();
            peers.push(b);
            u.put(i % 20, a.into(), now);
        }
        assert_eq!(u.idle_count(), TOTAL);
        for _ in 0..10 {
            let (a, b) = UnixStream::pair().unwrap();
            peers.push(b);
            u.put(99, a.into(), now);
        }
        assert!(u.idle.iter().filter(|i| i.host == 99).count() <= PER_HOST);
    }

    #[test]
    fn balancing() {
        let mut u = Upstreams::default();
        let now = Instant::now();
        let hosts = vec![host(0, "a", 1), host(1, "b", 2), host(2, "c", 3)];
        // Least connection: the least loaded; loads go back when the guards drop.
        let l0 = u.load(0);
        let l2 = u.load(2);
        assert_eq!(u.pick(&hosts, Balance::Fair, 0, now).unwrap().index, 1);
        let l1 = u.load(1);
        let l1b = u.load(1);
        drop(l0);
        assert_eq!(u.pick(&hosts, Balance::Fair, 0, now).unwrap().index, 0);
        drop((l1, l1b, l2));
        // Round robin goes around, skipping a disabled host until its time is over.
        let rr: Vec<usize> = (0..4)
            .map(|_| u.pick(&hosts, Balance::RoundRobin, 0, now).unwrap().index)
            .collect();
        assert_eq!(rr, [0, 1, 2, 0]);
        u.failed(&hosts[1], now);
        assert_eq!(
            u.pick(&hosts, Balance::RoundRobin, 0, now).unwrap().index,
            2
        );
        assert_eq!(
            u.pick(&hosts, Balance::RoundRobin, 0, now).unwrap().index,
            0
        );
        let later = now + Duration::from_secs(1);
        assert_eq!(
            u.pick(&hosts, Balance::RoundRobin, 0, later).unwrap().index,
            1
        );
        // Hash: the same input always lands on the same host.
        let h = djb(b"www.example.org", djb(b"/path", DJB_INIT));
        let first = u.pick(&hosts, Balance::Hash, h, later).unwrap().index;
        for _ in 0..5 {
            assert_eq!(
                u.pick(&hosts, Balance::Hash, h, later).unwrap().index,
                first
            );
        }
        // All down: nobody.
        for h in &hosts {
            u.failed(h, now);
        }
        assert!(u.pick(&hosts, Balance::Fair, 0, now).is_none());
        assert!(u.pick(&hosts[..1], Balance::Fair, 0, now).is_none());
    }
}
