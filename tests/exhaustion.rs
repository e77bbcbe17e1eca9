//! Resource exhaustion, measured: slow heads, slow bodies, slow readers, floods of pipelined
//! requests, thousands of connections and running out of descriptors each cost the server a
//! bounded amount of time, memory and descriptors, and never lock other clients out.
//!
//! What is measured comes from the client side (when a connection ends, how long a request
//! takes) and from /proc (the server's descriptors, resident memory and CPU time), so each
//! assertion is about an observable cost, not about how lightd implements its limits.
//!
//! The tests here run one at a time (see `serial`): each pushes the machine on purpose, and
//! timing bounds for one would otherwise absorb the load of another.

mod common;

use common::*;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

const OK: &str = "ok\n";

static SERIAL: Mutex<()> = Mutex::new(());

/// Hold this for the whole test. A failed test poisons the lock; the next one runs anyway.
fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// Raise this process's soft descriptor limit to at least `want` (up to the hard limit).
fn raise_nofile(want: libc::rlim_t) -> libc::rlim_t {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit write to or read from the struct we pass.
    unsafe {
        assert_eq!(libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim), 0);
        let target = want.min(lim.rlim_max);
        if lim.rlim_cur < target {
            lim.rlim_cur = target;
            assert_eq!(
                libc::setrlimit(libc::RLIMIT_NOFILE, &lim),
                0,
                "setrlimit: {}",
                io::Error::last_os_error()
            );
        }
    }
    lim.rlim_cur
}

/// Wait until `pred` holds for the server's descriptor count; the last count seen either way.
fn wait_fds(pid: i32, timeout: Duration, pred: impl Fn(usize) -> bool) -> (bool, usize) {
    let deadline = Instant::now() + timeout;
    loop {
        let n = open_fds(pid).unwrap_or(0);
        if pred(n) {
            return (true, n);
        }
        if Instant::now() >= deadline {
            return (false, n);
        }
        thread::sleep(POLL);
    }
}

/// Block in read until `due`, so a close is seen the moment it happens; the read timeout
/// paces the caller's trickle. True if the server closed (or reset) the connection first.
/// Bytes read meanwhile (a 408 may precede the close) are ignored.
fn closed_before(c: &mut Conn, due: Instant) -> bool {
    loop {
        let left = due.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return false;
        }
        c.set_read_timeout(left.max(Duration::from_millis(1)));
        match c.read_some(4096) {
            Ok(b) if b.is_empty() => return true,
            Ok(_) => {}
            Err(e) if is_timeout(&e) => return false,
            Err(_) => return true,
        }
    }
}

/// A GET on a new connection that must be answered 200 within `limit`; returns how long it
/// took, or what went wrong.
fn timed_get(s: &Server, limit: Duration) -> Result<Duration, String> {
    let start = Instant::now();
    let stream =
        TcpStream::connect_timeout(&s.addr(), limit).map_err(|e| format!("connect: {e}"))?;
    let mut c = Conn::from_stream(stream);
    c.set_read_timeout(
        limit
            .saturating_sub(start.elapsed())
            .max(Duration::from_millis(1)),
    );
    c.try_send(&get("/ok.txt"))
        .map_err(|e| format!("send: {e}"))?;
    let r = c
        .try_read_response(false)
        .map_err(|e| format!("after {:?}: {e}", start.elapsed()))?;
    let took = start.elapsed();
    if r.status != 200 || r.text() != OK {
        return Err(format!("got {} after {took:?}", r.status));
    }
    if took > limit {
        return Err(format!("answered only after {took:?}"));
    }
    Ok(took)
}

/// Measured: from connecting to the server closing, while the client sends one byte of its
/// head per second (so it is never read-idle). The close must come from
/// server.max-request-head-time = 3: not clearly before it, not long after it.
#[test]
fn slowloris_head_is_cut_off_at_max_request_head_time() {
    let _g = serial();
    let s = builder()
        .file("ok.txt", OK)
        .config("server.max-request-head-time = 3\nserver.max-read-idle = 60")
        .start();
    let mut c = s.connect();
    let start = Instant::now();
    // The head never ends: after the request line and Host, one header value grows forever.
    let mut bytes = b"GET /ok.txt HTTP/1.1\r\nHost: localhost\r\nX-Slow: "
        .iter()
        .copied();
    let mut sent = 0u64;
    let mut closed_at = None;
    'outer: while start.elapsed() < Duration::from_secs(15) {
        let b = bytes.next().unwrap_or(b'a');
        if c.try_send(&[b]).is_err() {
            closed_at = Some(start.elapsed());
            break;
        }
        sent += 1;
        // Until the next byte is due, block in read so the close is seen the moment it
        // happens; the read timeout is what paces the trickle.
        let due = start + Duration::from_secs(sent);
        if closed_before(&mut c, due) {
            closed_at = Some(start.elapsed());
            break 'outer;
        }
    }
    eprintln!("slowloris closed after {closed_at:?}");
    let Some(t) = closed_at else {
        panic!("a client trickling 1 byte/s was still connected after 15 s ({sent} bytes)");
    };
    assert!(
        t >= Duration::from_secs(2),
        "closed after {t:?}, before max-request-head-time = 3 s could have passed"
    );
    assert!(
        t <= Duration::from_millis(5500),
        "closed only after {t:?} (max-request-head-time = 3 s)"
    );
    assert_eq!(s.get("/ok.txt").status, 200);
}

/// Measured: with 1,100 connections each holding a partial head (more than the default
/// server.max-connections = 1024), how long a normal client waits for its answer.
#[test]
fn eleven_hundred_slow_heads_do_not_lock_out_a_normal_client() {
    let _g = serial();
    const SLOW: usize = 1100;
    let have = raise_nofile(4096);
    assert!(
        have >= SLOW as libc::rlim_t + 200,
        "RLIMIT_NOFILE is only {have}"
    );
    let s = builder()
        .file("ok.txt", OK)
        .config("server.max-fds = 4096")
        .start();
    let mut slow = Vec::with_capacity(SLOW);
    for i in 0..SLOW {
        let mut st = TcpStream::connect_timeout(&s.addr(), Duration::from_secs(10))
            .unwrap_or_else(|e| panic!("slow connection {i}: {e}"));
        st.write_all(b"GET /ok.txt HTTP/1.1\r\nHost: localhost\r\nX-Slow: ")
            .unwrap_or_else(|e| panic!("slow connection {i}: {e}"));
        slow.push(st);
    }
    // Let the server take in as many as it will (the default limit is 1024).
    let (_, held) = wait_fds(s.pid(), Duration::from_secs(20), |n| n >= 1000);
    let mut failures = Vec::new();
    let mut times = Vec::new();
    for _ in 0..3 {
        match timed_get(&s, Duration::from_secs(5)) {
            Ok(t) => times.push(t),
            Err(e) => failures.push(e),
        }
    }
    eprintln!("{SLOW} slow heads, server holding {held} fds: normal GETs took {times:?}");
    assert!(
        failures.is_empty(),
        "with {SLOW} slow heads open (server holding {held} descriptors), normal clients were \
         not served within 5 s:\n{}\n(served ones took {times:?})",
        failures.join("\n")
    );
    drop(slow);
    assert!(s.get("/ok.txt").status == 200);
}

/// Measured: a request body that stops part way is closed by server.max-read-idle = 2,
/// counted from the last byte.
#[test]
fn stalled_request_body_is_closed_by_max_read_idle() {
    let _g = serial();
    let s = builder()
        .file("ok.txt", OK)
        .config("server.max-read-idle = 2")
        .start();
    let mut c = s.connect();
    c.send(b"POST /ok.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\n0123456789");
    let start = Instant::now();
    let (closed, _) = c.wait_closed(Duration::from_secs(10));
    let t = start.elapsed();
    eprintln!("stalled body closed: {closed} after {t:?}");
    assert!(closed, "a stalled body was still open after {t:?}");
    assert!(
        (Duration::from_millis(1500)..=Duration::from_millis(6000)).contains(&t),
        "closed after {t:?} with max-read-idle = 2 s"
    );
    timed_get(&s, Duration::from_secs(3)).unwrap();
}

/// Measured: a body trickled at 1 byte/s never lets max-read-idle = 2 expire, yet must not
/// hold its slot indefinitely; it must be cut off within 12 s (six idle periods), while other
/// clients keep being served in well under a second or two.
#[test]
fn trickled_request_body_is_closed() {
    let _g = serial();
    let s = builder()
        .file("ok.txt", OK)
        .config("server.max-read-idle = 2")
        .start();
    let mut c = s.connect();
    c.send(b"POST /ok.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 1000\r\n\r\n");
    let start = Instant::now();
    let mut closed_at = None;
    let mut slow_gets = Vec::new();
    let mut sent = 0u64;
    'outer: while start.elapsed() < Duration::from_secs(12) {
        if c.try_send(b"x").is_err() {
            closed_at = Some(start.elapsed());
            break;
        }
        sent += 1;
        // Someone else is served meanwhile.
        if let Err(e) = timed_get(&s, Duration::from_secs(2)) {
            slow_gets.push(e);
        }
        let due = start + Duration::from_secs(sent);
        if closed_before(&mut c, due) {
            closed_at = Some(start.elapsed());
            break 'outer;
        }
    }
    assert!(
        slow_gets.is_empty(),
        "other clients were not served promptly:\n{}",
        slow_gets.join("\n")
    );
    assert!(
        closed_at.is_some(),
        "a body trickled at 1 byte/s was still being accepted after {:?} ({sent} bytes) with \
         max-read-idle = 2: no rate or total-time limit applies to request bodies",
        start.elapsed()
    );
}

/// Measured: the server's descriptor count while one client holds 20 downloads of a large
/// file and reads each a few bytes at a time (so the server can write nothing for long
/// stretches). server.max-write-idle = 2 must release all 20 (socket and file) well within
/// 12 s, while other clients are answered in under 3 s each.
#[test]
fn slow_readers_are_dropped_by_max_write_idle() {
    let _g = serial();
    const N: usize = 20;
    let s = builder()
        .file("ok.txt", OK)
        .file("big.bin", pattern(10 * 1024 * 1024))
        .config("server.max-write-idle = 2")
        .start();
    let pid = s.pid();
    // What the server holds with no connections: listener, poll, pipes, logs.
    let baseline = open_fds(pid).expect("server descriptors");
    let mut downloads: Vec<TcpStream> = (0..N)
        .map(|_| {
            let mut st = connect_small_rcvbuf(s.addr(), 16 * 1024);
            st.write_all(&get("/big.bin")).unwrap();
            st.set_nonblocking(true).unwrap();
            st
        })
        .collect();
    let (held, n) = wait_fds(pid, Duration::from_secs(10), |n| n >= baseline + N);
    assert!(
        held,
        "the downloads never started: {n} descriptors, baseline {baseline}"
    );
    let start = Instant::now();
    let mut slow_gets = Vec::new();
    let mut released = None;
    let mut buf = [0u8; 16];
    while start.elapsed() < Duration::from_secs(12) {
        // The slow reader: 16 bytes per download per round.
        for d in &mut downloads {
            let _ = d.read(&mut buf);
        }
        // Count before this round's probe GET: its own connection may still be closing
        // on the server side right after the response.
        if open_fds(pid).unwrap_or(usize::MAX) <= baseline {
            released = Some(start.elapsed());
            break;
        }
        if let Err(e) = timed_get(&s, Duration::from_secs(3)) {
            slow_gets.push(e);
        }
        // The pace of the slow reader, not a synchronisation.
        thread::sleep(Duration::from_millis(500));
    }
    eprintln!("{N} slow downloads released after {released:?} (baseline {baseline} fds)");
    assert!(
        slow_gets.is_empty(),
        "other clients were not served promptly during the slow reads:\n{}",
        slow_gets.join("\n")
    );
    assert!(
        released.is_some(),
        "after {:?} the server still holds {:?} descriptors (baseline {baseline}, {N} slow \
         downloads) with max-write-idle = 2",
        start.elapsed(),
        open_fds(pid)
    );
}

/// Measured: the server's VmRSS before and after a client pipelines megabytes of requests and
/// never reads a response. Back-pressure must stop the reading, not queue the answers.
#[test]
fn pipelining_without_reading_keeps_memory_flat() {
    let _g = serial();
    // Keep-alive may not end the flood early: only back-pressure is to stop it.
    let s = builder()
        .file("ok.txt", OK)
        .config("server.max-keep-alive-requests = 100000000")
        .start();
    for _ in 0..20 {
        assert_eq!(s.get("/ok.txt").status, 200);
    }
    let before = rss_kb(s.pid()).expect("VmRSS");
    let mut flood = s.connect();
    flood
        .stream
        .set_write_timeout(Some(Duration::from_secs(3)))
        .unwrap();
    let one = get("/ok.txt");
    let chunk: Vec<u8> = one.iter().copied().cycle().take(one.len() * 2000).collect();
    const TOTAL: usize = 16 << 20;
    let mut sent = 0;
    let mut pushed_back = false;
    while sent < TOTAL {
        match flood.stream.write(&chunk) {
            Ok(n) => sent += n,
            Err(e) if is_timeout(&e) => {
                // Nothing accepted for 3 s: the server stopped reading, as it should.
                pushed_back = true;
                break;
            }
            Err(e) => panic!("flood write after {sent} bytes: {e}"),
        }
    }
    // The highest of a few samples, in case the server is still catching up.
    let mut after = 0;
    for _ in 0..10 {
        after = after.max(rss_kb(s.pid()).expect("VmRSS"));
        thread::sleep(Duration::from_millis(50));
    }
    let grew = after.saturating_sub(before);
    eprintln!("pipelined {sent} bytes, pushed back: {pushed_back}, VmRSS {before} -> {after} kB");
    assert!(
        grew < 5 * 1024,
        "VmRSS grew by {grew} kB ({before} -> {after} kB) after {} MB of pipelined requests \
         (back-pressure applied: {pushed_back})",
        sent >> 20
    );
    timed_get(&s, Duration::from_secs(3)).unwrap();
    drop(flood);
    timed_get(&s, Duration::from_secs(3)).unwrap();
}

/// Measured: lightd's CPU time (utime + stime) over 2 s while it is full under a low descriptor
/// limit (RLIMIT_NOFILE = 64, twice as many clients as that connecting), which must stay under
/// 0.2 s (no busy accept loop); then that it serves again once the clients go.
#[test]
fn out_of_descriptors_neither_spins_nor_wedges() {
    let _g = serial();
    const LIMIT: libc::rlim_t = 64;
    let s = builder()
        .file("ok.txt", OK)
        .config("server.max-connections = 1000")
        .start_with(|cmd| {
            // SAFETY: the hook only calls setrlimit, which is async-signal-safe.
            unsafe {
                cmd.pre_exec(|| {
                    let mut lim = libc::rlimit {
                        rlim_cur: 0,
                        rlim_max: 0,
                    };
                    if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    lim.rlim_cur = LIMIT;
                    if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                        return Err(io::Error::last_os_error());
                    }
                    Ok(())
                });
            }
        });
    let pid = s.pid();
    assert_eq!(timed_get(&s, Duration::from_secs(5)).map(|_| ()), Ok(()));
    let baseline = open_fds(pid).expect("server descriptors");
    // Twice what fits; they send nothing, so none of them finishes or times out meanwhile.
    let extra: Vec<TcpStream> = (0..2 * LIMIT as usize)
        .map(|_| TcpStream::connect_timeout(&s.addr(), Duration::from_secs(10)).unwrap())
        .collect();
    // lightd caps its connections below the descriptor limit (it keeps some for the files it
    // serves and its logs), so "full" is that cap: at least 16 connections held, the rest of
    // the clients waiting in the queue, and never more descriptors than the limit.
    let (full, n) = wait_fds(pid, Duration::from_secs(10), |n| n >= baseline + 16);
    assert!(
        full,
        "the server never filled up: {n} open, {baseline} before the clients"
    );
    assert!(
        n <= LIMIT as usize,
        "{n} descriptors open with RLIMIT_NOFILE = {LIMIT}"
    );
    let cpu0 = cpu_time(pid).expect("cpu time");
    // The measurement window.
    thread::sleep(Duration::from_secs(2));
    let cpu1 = cpu_time(pid).expect("cpu time");
    let used = cpu1.saturating_sub(cpu0);
    eprintln!("at the fd limit ({n} open): {used:?} CPU in 2 s");
    assert!(
        used < Duration::from_millis(200),
        "lightd used {used:?} of CPU in 2 s while out of descriptors"
    );
    drop(extra);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut last = String::new();
    while Instant::now() < deadline {
        match timed_get(&s, Duration::from_secs(3)) {
            Ok(_) => return,
            Err(e) => last = e,
        }
    }
    panic!("not serving 10 s after the extra connections closed: {last}");
}

/// Measured: with server.max-connections = 4, four connections are served and kept; a fifth
/// is not answered while they stay open (observed for 1.5 s), and is answered as soon as one
/// of the four closes.
#[test]
fn max_connections_is_honoured_exactly() {
    let _g = serial();
    const N: usize = 4;
    let s = builder()
        .file("ok.txt", OK)
        .config(&format!("server.max-connections = {N}"))
        .start();
    let mut conns: Vec<Conn> = (0..N).map(|_| s.connect()).collect();
    for (i, c) in conns.iter_mut().enumerate() {
        let r = c.get("/ok.txt");
        assert_eq!(r.status, 200, "connection {i} of {N}: {}", r.head);
        assert!(!r.has_close(), "connection {i} of {N} not kept: {}", r.head);
    }
    let mut extra = s.connect();
    extra.send(&get("/ok.txt"));
    extra.set_read_timeout(Duration::from_millis(1500));
    match extra.read_some(1) {
        Err(e) if is_timeout(&e) => {}
        Ok(b) if b.is_empty() => panic!("connection {} was closed instead of waiting", N + 1),
        Ok(_) => panic!("connection {} was served while {N} were open", N + 1),
        Err(e) => panic!("connection {} failed instead of waiting: {e}", N + 1),
    }
    // The N still work meanwhile.
    for c in &mut conns {
        assert_eq!(c.get("/ok.txt").status, 200);
    }
    let start = Instant::now();
    drop(conns.pop());
    extra.set_read_timeout(IO_TIMEOUT);
    let r = extra
        .try_read_response(false)
        .expect("the waiting connection was not served once a slot was free");
    assert_eq!((r.status, r.text().as_str()), (200, OK));
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "took {:?}",
        start.elapsed()
    );
}

/// After the loop stalls for longer than server.max-keep-alive-idle (here: the process is
/// stopped), every idle deadline has passed at once, while requests sent during the stall wait
/// in the sockets. One poll reports at most 1024 connections, so with more than that the
/// others are still unhandled when the timeout scan runs: they must be served, not closed.
#[test]
fn requests_waiting_after_a_stall_are_answered_not_closed() {
    let _g = serial();
    const N: usize = 1200;
    let have = raise_nofile(4096);
    assert!(
        have >= N as libc::rlim_t + 200,
        "RLIMIT_NOFILE is only {have}"
    );
    let s = builder()
        .file("ok.txt", OK)
        .config(
            "server.max-fds = 4096\nserver.max-connections = 2000\nserver.max-keep-alive-idle = 2",
        )
        .start();
    let mut conns = Vec::with_capacity(N);
    for i in 0..N {
        let mut c = s.connect();
        let r = c.get("/ok.txt");
        assert_eq!(r.status, 200, "connection {i}: {}", r.head);
        conns.push(c);
    }
    // Stop the server for longer than the idle limit; the requests arrive meanwhile.
    s.signal(libc::SIGSTOP);
    let stopped = Instant::now();
    for c in &mut conns {
        c.send(&get("/ok.txt"));
    }
    let left = Duration::from_millis(3500).saturating_sub(stopped.elapsed());
    thread::sleep(left);
    s.signal(libc::SIGCONT);
    let mut lost = Vec::new();
    for (i, c) in conns.iter_mut().enumerate() {
        match c.try_read_response(false) {
            Ok(r) if r.status == 200 && r.text() == OK => {}
            Ok(r) => lost.push(format!("{i}: {}", r.head)),
            Err(e) => lost.push(format!("{i}: {e}")),
        }
    }
    assert!(
        lost.is_empty(),
        "{} of {N} requests sent during a stall were not answered:\n{}",
        lost.len(),
        lost.iter().take(10).cloned().collect::<Vec<_>>().join("\n")
    );
}

/// At the connection limit, with a client waiting to be accepted, a busy keep-alive client is
/// told `Connection: close` on its next response (as nginx does) instead of keeping its slot
/// for up to server.max-keep-alive-requests requests.
#[test]
fn at_the_limit_a_keep_alive_client_gives_its_slot_to_a_waiting_one() {
    let _g = serial();
    let s = builder()
        .file("ok.txt", OK)
        .config("server.max-connections = 1")
        .start();
    let mut busy = s.connect();
    for _ in 0..3 {
        let r = busy.get("/ok.txt");
        assert_eq!(r.status, 200);
        assert!(!r.has_close(), "closed with nobody waiting: {}", r.head);
    }
    let mut waiting = s.connect();
    waiting.send(&get("/ok.txt"));
    // The server learns of the newcomer from its listener; within a couple of requests the
    // busy client's response says close.
    let mut closed_after = None;
    for i in 0..3 {
        let r = busy.get("/ok.txt");
        assert_eq!(r.status, 200);
        if r.has_close() {
            closed_after = Some(i);
            break;
        }
    }
    assert!(
        closed_after.is_some(),
        "the busy keep-alive client kept its slot while another waited"
    );
    let start = Instant::now();
    let r = waiting
        .try_read_response(false)
        .expect("the waiting client was not served");
    assert_eq!((r.status, r.text().as_str()), (200, OK));
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
}
