//! Signals: SIGINT drains gracefully (listeners closed at once, work in flight finished, clean
//! closes, exit 0), the drain has a deadline, a second SIGINT or a SIGTERM stops at once, and
//! SIGHUP reopens the logs.

mod common;

use common::*;
use std::fs;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const BIG: usize = 10 * 1024 * 1024;
const SMALL: &str = "small file body\n";

fn server(extra: &str) -> (Server, Vec<u8>) {
    let data = pattern(BIG);
    let s = builder()
        .file("big.bin", &data)
        .file("small.txt", SMALL)
        .config(extra)
        .start();
    (s, data)
}

/// Start a download of big.bin that stays in flight: a small receive window and only the
/// first bytes read.
fn stalled_download(s: &Server) -> Conn {
    let mut c = Conn::connect_small_rcvbuf(s.addr());
    c.send(&get("/big.bin"));
    c.fill_to(64 * 1024).expect("start of the download");
    c
}

#[test]
fn sigint_on_an_idle_server_exits_zero() {
    let (mut s, _) = server("");
    assert_eq!(s.get("/small.txt").status, 200);
    s.signal(libc::SIGINT);
    let st = s.wait_exit(Duration::from_secs(20));
    assert!(st.is_some(), "no exit within 20 s of SIGINT");
    assert!(st.unwrap().success(), "exit status {st:?}");
}

#[test]
fn sigint_refuses_new_connections_and_finishes_a_download_in_flight() {
    let (mut s, data) = server("server.graceful-shutdown-timeout = 60");
    let mut c = stalled_download(&s);
    s.signal(libc::SIGINT);
    assert!(
        s.wait_refused(Duration::from_secs(10)),
        "the listener still accepts after SIGINT"
    );
    assert!(
        s.is_running(),
        "the server exited with a download in flight"
    );
    // Now read the rest at full speed: it must arrive complete and byte-exact.
    let r = c.read_response();
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(r.body.len(), data.len(), "download truncated");
    assert!(r.body == data, "download corrupted");
    match c.read_to_eof() {
        Ok(rest) => assert!(
            rest.is_empty(),
            "{} stray bytes after the response",
            rest.len()
        ),
        Err(e) => panic!("the connection should end with a clean EOF, got {e}"),
    }
    let st = s.wait_exit(Duration::from_secs(20));
    assert!(st.is_some_and(|st| st.success()), "exit status {st:?}");
}

#[test]
fn idle_keep_alive_connection_may_send_one_more_request() {
    let (mut s, _) = server("server.graceful-shutdown-timeout = 30");
    let mut c = s.connect();
    let r = c.get("/small.txt");
    assert!(!r.has_close(), "{}", r.head);
    s.signal(libc::SIGINT);
    assert!(
        s.wait_refused(Duration::from_secs(10)),
        "the listener still accepts after SIGINT"
    );
    c.try_send(&get("/small.txt"))
        .expect("the idle connection was closed before it could send one more request");
    let r = c
        .try_read_response(false)
        .expect("the request sent during the drain was not answered");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, SMALL),
        "{}",
        r.describe()
    );
    assert!(
        r.has_close(),
        "responses during a drain must carry Connection: close\n{}",
        r.head
    );
    match c.read_to_eof() {
        Ok(rest) => assert!(rest.is_empty()),
        Err(e) => panic!("the connection should end with a clean EOF, got {e}"),
    }
    let st = s.wait_exit(Duration::from_secs(20));
    assert!(st.is_some_and(|st| st.success()), "exit status {st:?}");
}

#[test]
fn idle_keep_alive_connection_is_closed_cleanly() {
    let (mut s, _) = server("server.graceful-shutdown-timeout = 30");
    let mut c = s.connect();
    assert_eq!(c.get("/small.txt").status, 200);
    s.signal(libc::SIGINT);
    c.set_read_timeout(Duration::from_secs(25));
    match c.read_to_eof() {
        Ok(rest) => assert!(
            rest.is_empty(),
            "unexpected bytes: {:?}",
            String::from_utf8_lossy(&rest)
        ),
        Err(e) => panic!("an idle connection should be closed with a clean EOF, got {e}"),
    }
    let st = s.wait_exit(Duration::from_secs(20));
    assert!(st.is_some_and(|st| st.success()), "exit status {st:?}");
}

/// One keep-alive client sending requests back to back until a response says close.
/// Returns how many responses it got, or what went wrong.
fn back_to_back(addr: std::net::SocketAddr, done: Arc<AtomicUsize>) -> Result<usize, String> {
    let mut c = Conn::connect(addr);
    let deadline = Instant::now() + Duration::from_secs(60);
    for i in 0..200_000 {
        if Instant::now() > deadline {
            return Err(format!("no Connection: close after {i} responses"));
        }
        c.try_send(&get("/small.txt"))
            .map_err(|e| format!("request {i}: send failed: {e}"))?;
        let r = c
            .try_read_response(false)
            .map_err(|e| format!("request {i}: {e}"))?;
        if r.status != 200 || r.body != SMALL.as_bytes() {
            return Err(format!("request {i}: bad response\n{}", r.describe()));
        }
        done.fetch_add(1, Ordering::SeqCst);
        if r.has_close() {
            return match c.read_to_eof() {
                Ok(rest) if rest.is_empty() => Ok(i + 1),
                Ok(rest) => Err(format!(
                    "{} stray bytes after the last response",
                    rest.len()
                )),
                Err(e) => Err(format!("after the last response: {e} (want a clean EOF)")),
            };
        }
    }
    Err("no Connection: close".to_string())
}

#[test]
fn back_to_back_keep_alive_clients_see_no_reset_during_drain() {
    let (mut s, _) = server("server.graceful-shutdown-timeout = 30");
    let done = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..3)
        .map(|_| {
            let (addr, done) = (s.addr(), done.clone());
            thread::spawn(move || back_to_back(addr, done))
        })
        .collect();
    // Let the clients get going, so the signal lands in the middle of their traffic.
    let deadline = Instant::now() + Duration::from_secs(20);
    while done.load(Ordering::SeqCst) < 150 && Instant::now() < deadline {
        thread::sleep(POLL);
    }
    assert!(
        done.load(Ordering::SeqCst) >= 150,
        "clients made no progress"
    );
    s.signal(libc::SIGINT);
    let results: Vec<_> = clients.into_iter().map(|t| t.join().unwrap()).collect();
    let errors: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    assert!(
        errors.is_empty(),
        "clients failed during the drain: {errors:#?}"
    );
    let st = s.wait_exit(Duration::from_secs(20));
    assert!(st.is_some_and(|st| st.success()), "exit status {st:?}");
}

#[test]
fn graceful_shutdown_timeout_ends_the_drain() {
    let (mut s, _) = server("server.graceful-shutdown-timeout = 2");
    let _c = stalled_download(&s);
    s.signal(libc::SIGINT);
    let sent = Instant::now();
    // The default timeout is 8 s: exiting clearly before it shows the setting took effect.
    let st = s.wait_exit(Duration::from_secs(7));
    let took = sent.elapsed();
    assert!(
        st.is_some(),
        "still running 7 s after SIGINT with a 2 s graceful timeout"
    );
    assert!(
        took >= Duration::from_millis(1500),
        "exited after {took:?}: the stalled download should have been given the 2 s"
    );
}

#[test]
fn second_sigint_stops_at_once() {
    let (mut s, _) = server("server.graceful-shutdown-timeout = 60");
    let _c = stalled_download(&s);
    s.signal(libc::SIGINT);
    // Make sure the first signal was handled before sending the second, or the two could be
    // coalesced into one.
    assert!(
        s.wait_refused(Duration::from_secs(10)),
        "the listener still accepts after SIGINT"
    );
    assert!(s.is_running());
    s.signal(libc::SIGINT);
    let st = s.wait_exit(Duration::from_secs(10));
    assert!(
        st.is_some(),
        "a second SIGINT did not stop the server (graceful timeout is 60 s)"
    );
}

#[test]
fn sigterm_stops_at_once() {
    let (mut s, _) = server("server.graceful-shutdown-timeout = 60");
    let _c = stalled_download(&s);
    s.signal(libc::SIGTERM);
    let st = s.wait_exit(Duration::from_secs(10));
    assert!(
        st.is_some(),
        "SIGTERM did not stop the server at once (graceful timeout is 60 s)"
    );
}

#[test]
fn sighup_reopens_the_logs() {
    let b = builder()
        .file("small.txt", SMALL)
        .config("accesslog.filename = \"{dir}/access.log\"")
        .errorlog();
    let access = b.dir().join("access.log");
    let error = b.dir().join("error.log");
    let mut s = b.start();
    assert_eq!(s.get("/small.txt?before").status, 200);
    assert!(
        wait_file_line(&access, Duration::from_secs(10), |l| l
            .contains("/small.txt?before"))
        .is_some(),
        "no access log line before the rotation"
    );
    fs::rename(&access, s.dir().join("access.log.1")).unwrap();
    fs::rename(&error, s.dir().join("error.log.1")).unwrap();
    s.signal(libc::SIGHUP);
    // Requests made before the server handles the signal still go to the renamed file, so
    // keep asking until one shows up in a new file.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut found = false;
    for i in 0..1000 {
        assert_eq!(s.get(&format!("/small.txt?after={i}")).status, 200);
        if wait_file_line(&access, Duration::from_millis(100), |l| {
            l.contains("/small.txt?after=")
        })
        .is_some()
        {
            found = true;
            break;
        }
        if Instant::now() > deadline {
            break;
        }
    }
    assert!(found, "no new access log appeared after SIGHUP");
    assert!(
        wait_file(&error, Duration::from_secs(10)),
        "the error log was not reopened"
    );
    assert!(s.is_running(), "SIGHUP stopped the server");
}

/// The pids whose parent is `parent` (read from /proc/PID/stat).
fn children_of(parent: i32) -> Vec<i32> {
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces, so split after the last ')'.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest.split_whitespace().collect())
            .unwrap_or_default();
        if fields.first() != Some(&"Z") && fields.get(1) == Some(&parent.to_string().as_str()) {
            out.push(pid);
        }
    }
    out.sort_unstable();
    out
}

/// Whether `pid` has a descriptor open on exactly `path`.
fn holds_file(pid: i32, path: &std::path::Path) -> bool {
    fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .any(|e| fs::read_link(e.path()).is_ok_and(|l| l == path))
}

/// With server.max-worker, SIGHUP to the supervisor reaches every worker: each one reopens
/// the access log at its path after the old file was renamed away.
#[test]
fn sighup_reaches_every_worker() {
    let b = builder()
        .file("small.txt", SMALL)
        .config("server.max-worker = 2\naccesslog.filename = \"{dir}/access.log\"");
    let access = b.dir().join("access.log");
    let rotated = b.dir().join("access.log.1");
    let mut s = b.start();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut workers = children_of(s.pid());
    while workers.len() != 2 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        workers = children_of(s.pid());
    }
    assert_eq!(workers.len(), 2, "workers: {workers:?}");
    assert_eq!(s.get("/small.txt").status, 200);
    fs::rename(&access, &rotated).unwrap();
    for &w in &workers {
        assert!(holds_file(w, &rotated), "worker {w} does not hold the log");
    }
    s.signal(libc::SIGHUP);
    for &w in &workers {
        let deadline = Instant::now() + Duration::from_secs(10);
        let reopened = |w| holds_file(w, &access) && !holds_file(w, &rotated);
        while !reopened(w) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        assert!(
            reopened(w),
            "worker {w} did not reopen the access log after SIGHUP"
        );
    }
    assert!(s.is_running(), "SIGHUP stopped the supervisor");
}
