//! The logs when things go wrong: a full disk floods neither the error log nor the loop (each
//! place logs a few lines, then a count), and a write the disk cuts short never leaves a torn
//! line behind.

mod common;

use std::fs;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use common::*;

/// The access log on a device that is always full (/dev/full: every write fails with ENOSPC),
/// under hundreds of requests. Each failed flush used to write an error line, one per loop
/// turn; now the place logs a few lines, and when its window ends, how many it suppressed.
#[test]
fn a_full_disk_does_not_flood_the_error_log() {
    let b = builder()
        .file("index.html", "x")
        .config("accesslog.filename = \"/dev/full\"")
        .errorlog();
    let log = b.dir().join("error.log");
    let s = b.start();
    let mut c = s.connect();
    const N: usize = 300;
    for _ in 0..N {
        assert_eq!(c.get("/index.html").status, 200);
    }
    let failures = |t: &str| t.matches("writing access log /dev/full").count();
    let text = fs::read_to_string(&log).unwrap_or_default();
    assert!(
        (1..=5).contains(&failures(&text)),
        "{} error lines for {N} failed flushes (want 1 to 5):\n{}",
        failures(&text),
        text
    );
    // The rest are counted, and the count is written when the window ends (10 s).
    let deadline = Instant::now() + Duration::from_secs(30);
    let summary = loop {
        let text = fs::read_to_string(&log).unwrap_or_default();
        if let Some(line) = text
            .lines()
            .find(|l| l.contains("similar message(s) suppressed"))
        {
            break line.to_string();
        }
        assert!(
            Instant::now() < deadline,
            "no summary of the suppressed lines:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let n: u64 = summary
        .split_whitespace()
        .find_map(|w| w.parse().ok())
        .unwrap_or(0);
    assert!(n > 0, "{summary}");
    assert!(
        summary.contains("writing access log /dev/full"),
        "{summary}"
    );
}

/// The disk fills up in the middle of a write (here: a file size limit, RLIMIT_FSIZE, with
/// SIGXFSZ ignored, so writes past it come back short and then fail). The access log keeps
/// only whole lines: it always ends with a newline and every line is complete.
#[test]
fn a_write_cut_short_leaves_no_torn_line() {
    const LIMIT: libc::rlim_t = 10_000;
    let b = builder()
        .file("index.html", "x")
        .config("accesslog.filename = \"{dir}/access.log\"");
    let access = b.dir().join("access.log");
    let s = b.start_with(|cmd| {
        // SAFETY: signal and setrlimit are async-signal-safe and touch only the child.
        unsafe {
            cmd.pre_exec(|| {
                libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
                let lim = libc::rlimit {
                    rlim_cur: LIMIT,
                    rlim_max: LIMIT,
                };
                if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    });
    // Lines of different lengths, so a cut falls inside one.
    let mut c = s.connect();
    for i in 0..400 {
        let ua = "x".repeat(i % 37);
        let r = c.request(
            format!("GET /index.html HTTP/1.1\r\nHost: t\r\nUser-Agent: {ua}\r\n\r\n").as_bytes(),
        );
        assert_eq!(r.status, 200);
    }
    // A request on a fresh connection is logged after the earlier ones were flushed.
    assert_eq!(s.get("/index.html").status, 200);
    // A write the limit cut short is taken back right after it (a write, then a truncate):
    // the file is read once no such pair is in progress, i.e. once it ends in a newline,
    // for up to 5 s. A torn tail that stays fails below.
    let deadline = Instant::now() + Duration::from_secs(5);
    let text = loop {
        let text = fs::read(&access).unwrap();
        if text.last() == Some(&b'\n') || Instant::now() >= deadline {
            break text;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(
        text.len() as u64 > LIMIT / 2,
        "the log did not fill up ({} bytes)",
        text.len()
    );
    assert_eq!(
        text.last(),
        Some(&b'\n'),
        "the access log ends in a torn line"
    );
    for line in String::from_utf8_lossy(&text).lines() {
        assert!(
            line.starts_with("127.0.0.1 ") && line.ends_with('"'),
            "torn line: {line:?}"
        );
    }
}
