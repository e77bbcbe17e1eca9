//! Zero-loss reload with dynamic requests in flight: CGI scripts that are still running, request
//! bodies half uploaded, and (where the responder builds) FastCGI requests to a spawned pool,
//! across several SIGUSR1 reloads. Every answer is checked; none may fail.

mod common;
mod reload_util;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use reload_util::*;

/// What the dynamic load saw.
#[derive(Default)]
struct Tally {
    ok: AtomicU64,
    failed: AtomicU64,
    first_failures: Mutex<Vec<String>>,
}

impl Tally {
    fn fail(&self, what: String) {
        self.failed.fetch_add(1, Ordering::SeqCst);
        let mut f = self.first_failures.lock().unwrap();
        if f.len() < 10 {
            f.push(what);
        }
    }
}

/// One request on a fresh connection; the whole response (`Connection: close`).
fn exchange(addr: SocketAddr, req: &[u8]) -> Result<Vec<u8>, String> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
        .map_err(|e| format!("connect: {e}"))?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok();
    s.write_all(req).map_err(|e| format!("write: {e}"))?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).map_err(|e| format!("read: {e}"))?;
    Ok(out)
}

/// The body of a complete 200 response with a Content-Length, or why not.
fn body_of(resp: &[u8]) -> Result<&[u8], String> {
    let text = String::from_utf8_lossy(resp);
    let end = resp
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| {
            format!(
                "no complete head: {:?}",
                text.chars().take(200).collect::<String>()
            )
        })?;
    let head = String::from_utf8_lossy(&resp[..end]);
    if !head.starts_with("HTTP/1.1 200 ") {
        return Err(format!("not a 200: {head}"));
    }
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .ok_or_else(|| format!("no Content-Length: {head}"))?;
    let body = &resp[end + 4..];
    if body.len() != len {
        return Err(format!("body of {} bytes, announced {len}", body.len()));
    }
    Ok(body)
}

/// A body of `n` bytes that differs per request.
fn upload(n: usize, seed: u64) -> Vec<u8> {
    (0..n)
        .map(|i| ((i as u64 * 31 + seed) % 251) as u8)
        .collect()
}

fn sum(data: &[u8]) -> u64 {
    data.iter().map(|&b| b as u64).sum()
}

/// Scripts: a quick one, one that takes a while (in flight during the reload), and one that
/// reads its body and answers with its length and byte sum (a checksum `od` can compute).
fn write_scripts(site: &Site) {
    let d = site.dir().join("docroot");
    std::fs::write(
        d.join("quick.sh"),
        "printf 'Content-Type: text/plain\\r\\n\\r\\nquick %s' \"$QUERY_STRING\"\n",
    )
    .unwrap();
    std::fs::write(
        d.join("slow.sh"),
        "sleep 1\nprintf 'Content-Type: text/plain\\r\\n\\r\\nslow %s' \"$QUERY_STRING\"\n",
    )
    .unwrap();
    std::fs::write(
        d.join("sum.sh"),
        "printf 'Content-Type: text/plain\\r\\n\\r\\n'\n\
         od -An -v -tu1 | awk '{for(i=1;i<=NF;i++){s+=$i;n++}} END{printf \"%d %d\", n, s}'\n",
    )
    .unwrap();
}

/// Start `threads` clients that loop over the three kinds of request until `stop`.
fn start_load(
    addr: SocketAddr,
    threads: usize,
    stop: &Arc<AtomicBool>,
    tally: &Arc<Tally>,
    fastcgi: bool,
) -> Vec<thread::JoinHandle<()>> {
    (0..threads)
        .map(|t| {
            let (stop, tally) = (Arc::clone(stop), Arc::clone(tally));
            thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    i += 1;
                    let kind = (i + t as u64) % if fastcgi { 4 } else { 3 };
                    let q = format!("{t}-{i}");
                    let (req, want): (Vec<u8>, Vec<u8>) = match kind {
                        0 => (
                            format!("GET /quick.sh?{q} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").into_bytes(),
                            format!("quick {q}").into_bytes(),
                        ),
                        1 => (
                            format!("GET /slow.sh?{q} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").into_bytes(),
                            format!("slow {q}").into_bytes(),
                        ),
                        2 => {
                            let body = upload(200_000 + (i as usize % 7) * 1000, i);
                            let mut r = format!(
                                "POST /sum.sh HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: {}\r\n\r\n",
                                body.len()
                            )
                            .into_bytes();
                            r.extend_from_slice(&body);
                            (r, format!("{} {}", body.len(), sum(&body)).into_bytes())
                        }
                        // lighttpd's test responder answers with the variable `env=` names.
                        _ => (
                            format!("GET /x.fcgi?env=HTTP_X_Q HTTP/1.1\r\nHost: x\r\nX-Q: {q}\r\nConnection: close\r\n\r\n").into_bytes(),
                            q.clone().into_bytes(),
                        ),
                    };
                    match exchange(addr, &req).and_then(|r| {
                        let b = body_of(&r)?.to_vec();
                        if b == want {
                            Ok(())
                        } else {
                            Err(format!(
                                "kind {kind}: body {:?}, want {:?}",
                                String::from_utf8_lossy(&b),
                                String::from_utf8_lossy(&want)
                            ))
                        }
                    }) {
                        Ok(()) => {
                            tally.ok.fetch_add(1, Ordering::SeqCst);
                        }
                        Err(e) => tally.fail(format!("kind {kind} ({q}): {e}")),
                    }
                }
            })
        })
        .collect()
}

fn wait_ok(tally: &Tally, more_than: u64, limit: Duration) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if tally.ok.load(Ordering::SeqCst) > more_than {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    false
}

/// After the reloads: `check(site)` runs with the last generation still serving.
fn reload_with_dynamic_load(site: &mut Site, fastcgi: bool) {
    reload_then(site, fastcgi, |_| {});
}

fn reload_then(site: &mut Site, fastcgi: bool, check: impl FnOnce(&Site)) {
    site.under_systemd();
    site.start_first();
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let threads = start_load(site.addr(), 6, &stop, &tally, fastcgi);
    assert!(
        wait_ok(&tally, 10, Duration::from_secs(30)),
        "the load does not get answers\n{}",
        site.dump()
    );
    let mut pid = site.current_pid();
    for r in 0..3 {
        let before = tally.ok.load(Ordering::SeqCst);
        send_signal(pid, libc::SIGUSR1);
        let new = site.finish_reload(pid);
        assert!(
            wait_ok(&tally, before + 10, Duration::from_secs(30)),
            "reload {r}: no answers after it\n{}",
            site.dump()
        );
        pid = new;
    }
    stop.store(true, Ordering::SeqCst);
    for t in threads {
        t.join().unwrap();
    }
    let failed = tally.failed.load(Ordering::SeqCst);
    assert_eq!(
        failed,
        0,
        "{} answers, {failed} failed: {:#?}\n{}",
        tally.ok.load(Ordering::SeqCst),
        tally.first_failures.lock().unwrap(),
        site.dump()
    );
    check(site);
    site.stop(pid, true);
}

#[test]
fn sigusr1_reloads_lose_no_cgi_request_or_upload() {
    if common::skip_without_direct_exec() {
        return;
    }
    let mut site = Site::new(
        "reload-cgi",
        GRACE,
        "server.modules += ( \"mod_cgi\" )\ncgi.assign = ( \".sh\" => \"/bin/sh\" )",
    );
    write_scripts(&site);
    reload_with_dynamic_load(&mut site, false);
}

#[test]
fn sigusr1_reloads_lose_no_fastcgi_request() {
    if common::skip_without_direct_exec() {
        return;
    }
    // lighttpd's own test responder, built with the C compiler CI installs.
    let dir = common::TempDir::new("fcgi-responder");
    let bin = dir.path().join("fcgi-responder");
    let src = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../shared/lighttpd-tests/tests/fcgi-responder.c"
    );
    let built = std::path::Path::new(src).exists()
        && std::process::Command::new("cc")
            .args(["-O1", "-o"])
            .arg(&bin)
            .arg(src)
            .status()
            .is_ok_and(|s| s.success());
    if !built {
        eprintln!("skipped: the FastCGI test responder could not be built");
        return;
    }
    let mut site = Site::new("reload-fcgi", GRACE, "");
    let sock = site.dir().join("fcgi.sock");
    site.set_extra(&format!(
        "server.modules += ( \"mod_cgi\", \"mod_fastcgi\" )\n\
         cgi.assign = ( \".sh\" => \"/bin/sh\" )\n\
         fastcgi.server = ( \".fcgi\" => (( \"socket\" => \"{}\", \"bin-path\" => \"{}\", \
         \"max-procs\" => 2, \"check-local\" => \"disable\" )) )",
        sock.display(),
        bin.display()
    ));
    write_scripts(&site);
    let sockets = |site: &Site| -> Vec<String> {
        std::fs::read_dir(site.dir())
            .map(|d| {
                d.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .filter(|n| n.starts_with("fcgi.sock-"))
                    .collect()
            })
            .unwrap_or_default()
    };
    reload_then(&mut site, true, |site| {
        // Each generation's pool stopped after its drain: only the last one's two
        // processes run, and only its two sockets are left.
        assert!(
            wait_until(Duration::from_secs(20), || procs_with_arg(&bin).len() == 2),
            "responder processes: {:?}\n{}",
            procs_with_arg(&bin),
            site.dump()
        );
        assert_eq!(sockets(site).len(), 2, "{:?}", sockets(site));
    });
    // And the last generation's pool stops with it.
    assert!(
        wait_until(Duration::from_secs(20), || procs_with_arg(&bin).is_empty()),
        "responder processes left after the stop: {:?}",
        procs_with_arg(&bin)
    );
    assert!(sockets(&site).is_empty(), "{:?}", sockets(&site));
}
