//! A closed-loop keep-alive client for many connections at once (the scaling table): every
//! connection has one GET in flight and sends the next as soon as the answer is complete.
//!
//! Why not wrk: wrk opens all its connections in one burst inside the timed run. At 10,000
//! connections that burst overflows every server's listen backlog, the kernel drops the SYNs,
//! and the clients retry one and three seconds later, so a few-second run measures the storm
//! and the backlog size rather than the cost of serving 10,000 connections. Here the
//! connections are opened first, at most CONNECTING more than the server has accepted (the
//! caller counts its descriptors), and the timed window (and the server's CPU samples, taken by
//! the caller's closures) starts only when the server holds all of them. Counting handshakes
//! on our side is not enough: with SYN cookies, a handshake the full accept queue drops leaves
//! a client that believes it is connected and a server that does not know it.

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// Connections being opened at once: well under any listen backlog.
const CONNECTING: usize = 128;
/// How long opening all the connections may take; then the window starts with those the
/// server holds (a trickle of late handshakes is progress, so STALL alone would not end it).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// How long opening may make no progress (no handshake completes, the server accepts nothing)
/// before the window starts with what there is: a server that stops accepting short of the
/// goal is measured with the connections it holds, and says so.
const STALL: Duration = Duration::from_secs(2);
/// The largest response head accepted.
const MAX_HEAD: usize = 8 * 1024;
/// Latency samples kept (beyond it, later ones are dropped from the percentile, not counted
/// less): bounds memory at 40 MB.
const MAX_SAMPLES: usize = 10_000_000;

/// What the timed window saw.
pub struct Outcome {
    /// Responses completed inside the window.
    pub requests: u64,
    pub window: Duration,
    pub p99_ms: f64,
    /// Connections lost or answers that were not 200 with a Content-Length.
    pub errors: u64,
    /// Connections opened, and how many of them the server had accepted, when the window
    /// started (both `conns` unless opening stalled).
    pub opened: usize,
    pub held: usize,
}

struct Conn {
    sock: TcpStream,
    connected: bool,
    /// The response head read so far (until its blank line).
    head: Vec<u8>,
    /// Body bytes still to come; None while the head is incomplete.
    body_left: Option<usize>,
    /// Request bytes not yet written.
    unsent: usize,
    sent_at: Instant,
    dead: bool,
}

/// Open `conns` connections to `addr`, then for `dur` keep one `req` in flight on each.
/// `accepted` says how many connections the server holds (None: unknown, then our own count of
/// handshakes stands in). `start` runs when the server holds them all, just before the first
/// request; `end` gets its result when the window closes, before any connection is closed.
pub fn run<T, U>(
    addr: SocketAddr,
    req: &[u8],
    conns: usize,
    dur: Duration,
    mut accepted: impl FnMut() -> Option<usize>,
    start: impl FnOnce() -> T,
    end: impl FnOnce(T) -> U,
) -> Result<(Outcome, U), String> {
    let mut poll = Poll::new().map_err(|e| format!("creating a poll: {e}"))?;
    let mut events = Events::with_capacity(1024);
    let mut all: Vec<Conn> = Vec::with_capacity(conns);

    // Open the connections, CONNECTING at a time.
    let deadline = Instant::now() + CONNECT_TIMEOUT;
    let mut up = 0;
    let mut held = 0;
    let mut progress = (Instant::now(), 0, 0);
    while up < conns || held < conns {
        if (up, held) != (progress.1, progress.2) {
            progress = (Instant::now(), up, held);
        } else if progress.0.elapsed() >= STALL {
            break;
        }
        if all.len() - held.min(all.len()) >= CONNECTING || up == conns {
            held = accepted().unwrap_or(up);
        }
        while all.len() < conns && all.len() - held.min(all.len()) < CONNECTING {
            let mut sock =
                TcpStream::connect(addr).map_err(|e| format!("connection {}: {e}", all.len()))?;
            poll.registry()
                .register(
                    &mut sock,
                    Token(all.len()),
                    Interest::READABLE | Interest::WRITABLE,
                )
                .map_err(|e| format!("registering a connection: {e}"))?;
            all.push(Conn {
                sock,
                connected: false,
                head: Vec::new(),
                body_left: None,
                unsent: 0,
                sent_at: Instant::now(),
                dead: false,
            });
        }
        let now = Instant::now();
        if now >= deadline && held > 0 {
            break;
        }
        if now >= deadline {
            return Err(format!(
                "{up} of {conns} connections up, {held} held by the server, after \
                 {CONNECT_TIMEOUT:?}"
            ));
        }
        // Short waits: the server's accepting shows in `accepted`, not as an event of ours.
        poll_once(
            &mut poll,
            &mut events,
            (deadline - now).min(Duration::from_millis(5)),
        )?;
        for ev in events.iter() {
            let Some(c) = all.get_mut(ev.token().0) else {
                continue;
            };
            if c.connected || !(ev.is_writable() || ev.is_error()) {
                continue;
            }
            if let Ok(Some(e)) | Err(e) = c.sock.take_error() {
                return Err(format!("connecting: {e}"));
            }
            match c.sock.peer_addr() {
                Ok(_) => {
                    c.connected = true;
                    // A connection the server refuses to keep shows as an error later.
                    let _ = c.sock.set_nodelay(true);
                    up += 1;
                    // The request's first byte now: a server with TCP_DEFER_ACCEPT (lightd,
                    // h2o) is handed a connection only once data arrives, and would otherwise
                    // never hold it before the window. The rest goes when the window opens.
                    if let Some(Ok(1)) = req.get(..1).map(|b| c.sock.write(b)) {
                        c.unsent = req.len() - 1;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotConnected => {}
                Err(e) => return Err(format!("connecting: {e}")),
            }
        }
    }

    // The timed window.
    let before = start();
    let t0 = Instant::now();
    let stop = t0 + dur;
    for c in all.iter_mut() {
        c.sent_at = t0;
        send(c, req, t0);
    }
    let mut requests = 0u64;
    let mut errors = 0u64;
    let mut latencies: Vec<u32> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let now = Instant::now();
        if now >= stop {
            break;
        }
        poll_once(&mut poll, &mut events, stop - now)?;
        for ev in events.iter() {
            let Some(c) = all.get_mut(ev.token().0) else {
                continue;
            };
            if c.dead {
                continue;
            }
            if ev.is_writable() && c.unsent > 0 {
                send(c, req, c.sent_at);
            }
            // Edge-triggered: read until the socket is drained.
            for _ in 0..1024 {
                match c.sock.read(&mut buf) {
                    Ok(0) => {
                        c.dead = true;
                        errors += 1;
                        break;
                    }
                    Ok(n) => match consume(c, &buf[..n]) {
                        Ok(true) => {
                            let done = Instant::now();
                            requests += 1;
                            if latencies.len() < MAX_SAMPLES {
                                let us = done.duration_since(c.sent_at).as_micros();
                                latencies.push(u32::try_from(us).unwrap_or(u32::MAX));
                            }
                            if done < stop {
                                send(c, req, done);
                            }
                        }
                        Ok(false) => {}
                        Err(()) => {
                            c.dead = true;
                            errors += 1;
                            break;
                        }
                    },
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => {
                        c.dead = true;
                        errors += 1;
                        break;
                    }
                }
            }
        }
    }
    let after = end(before);
    let window = t0.elapsed();
    latencies.sort_unstable();
    let p99_ms = match latencies.len() {
        0 => f64::NAN,
        n => {
            let i = ((n as f64 * 0.99).ceil() as usize).clamp(1, n) - 1;
            f64::from(latencies[i]) / 1000.0
        }
    };
    Ok((
        Outcome {
            requests,
            window,
            p99_ms,
            errors,
            opened: all.len(),
            held,
        },
        after,
    ))
}

fn poll_once(poll: &mut Poll, events: &mut Events, timeout: Duration) -> Result<(), String> {
    match poll.poll(events, Some(timeout)) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => {
            events.clear();
            Ok(())
        }
        Err(e) => Err(format!("polling: {e}")),
    }
}

/// Write the request (or what is left of it) on `c`; a short write waits for writability.
fn send(c: &mut Conn, req: &[u8], at: Instant) {
    if c.unsent == 0 {
        c.unsent = req.len();
        c.sent_at = at;
    }
    while c.unsent > 0 {
        let from = req.len() - c.unsent;
        match c.sock.write(&req[from..]) {
            Ok(0) => {
                c.dead = true;
                return;
            }
            Ok(n) => c.unsent -= n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => {
                c.dead = true;
                return;
            }
        }
    }
}

/// Feed response bytes to `c`: Ok(true) when they complete its response. Bytes beyond it
/// cannot belong to anything (one request in flight): an error, as is anything but a 200
/// with a Content-Length.
fn consume(c: &mut Conn, mut bytes: &[u8]) -> Result<bool, ()> {
    if c.body_left.is_none() {
        let had = c.head.len();
        c.head.extend_from_slice(bytes);
        let Some(end) = c.head.windows(4).position(|w| w == b"\r\n\r\n") else {
            return if c.head.len() > MAX_HEAD {
                Err(())
            } else {
                Ok(false)
            };
        };
        let head = String::from_utf8_lossy(&c.head[..end]);
        let ok = head
            .split("\r\n")
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            == Some("200");
        let len = head
            .split("\r\n")
            .filter_map(|l| l.split_once(':'))
            .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.trim().parse::<usize>().ok());
        let (true, Some(len)) = (ok, len) else {
            return Err(());
        };
        c.body_left = Some(len);
        // What of `bytes` lies past the head is body.
        bytes = (end + 4)
            .checked_sub(had)
            .and_then(|from| bytes.get(from..))
            .ok_or(())?;
        c.head.clear();
    }
    let left = c.body_left.unwrap_or(0);
    if bytes.len() > left {
        return Err(());
    }
    let left = left - bytes.len();
    if left == 0 {
        c.body_left = None;
        Ok(true)
    } else {
        c.body_left = Some(left);
        Ok(false)
    }
}
