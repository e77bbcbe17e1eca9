//! Zero-loss reload with dynamic requests in flight: CGI scripts that are still running, request
//! bodies half uploaded, and (where the responder builds) FastCGI requests to a spawned pool,
//! across several SIGUSR1 reloads, and a compressed download (mod_deflate) streaming through one.
//! Every answer is checked; none may fail.

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
    kinds: u64,
) -> Vec<thread::JoinHandle<()>> {
    (0..threads)
        .map(|t| {
            let (stop, tally) = (Arc::clone(stop), Arc::clone(tally));
            thread::spawn(move || {
                let mut i = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    i += 1;
                    let kind = (i + t as u64) % kinds;
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
                        // Through mod_proxy to the test's upstream, which echoes the path.
                        4 => (
                            format!("GET /p/{q} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").into_bytes(),
                            format!("proxied /p/{q}").into_bytes(),
                        ),
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

/// The kinds of request the load sends: 3 (CGI), 4 (and FastCGI), 5 (and mod_proxy).
fn reload_with_dynamic_load(site: &mut Site, kinds: u64) {
    reload_then(site, kinds, |_| {});
}

/// After the reloads: `check(site)` runs with the last generation still serving.
fn reload_then(site: &mut Site, kinds: u64, check: impl FnOnce(&Site)) {
    site.under_systemd();
    site.start_first();
    let stop = Arc::new(AtomicBool::new(false));
    let tally = Arc::new(Tally::default());
    let threads = start_load(site.addr(), 6, &stop, &tally, kinds);
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
    reload_with_dynamic_load(&mut site, 3);
}

/// An HTTP/1.1 upstream for mod_proxy: answers every request with "proxied <path>", keeping
/// connections alive.
fn upstream() -> SocketAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    thread::spawn(move || {
        for s in l.incoming().flatten() {
            thread::spawn(move || {
                let mut w = s.try_clone().unwrap();
                let mut r = std::io::BufReader::new(s);
                loop {
                    let mut line = String::new();
                    if std::io::BufRead::read_line(&mut r, &mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
                    // The fields, to the empty line (requests here have no body).
                    loop {
                        let mut f = String::new();
                        if std::io::BufRead::read_line(&mut r, &mut f).unwrap_or(0) == 0 {
                            return;
                        }
                        if f == "\r\n" {
                            break;
                        }
                    }
                    let body = format!("proxied {path}");
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if w.write_all(resp.as_bytes()).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[test]
fn sigusr1_reloads_lose_no_fastcgi_or_proxied_request() {
    if common::skip_without_direct_exec() {
        return;
    }
    // lighttpd's own test responder, built with the C compiler CI installs.
    let Some((_dir, bin)) = common::suite_responder("fcgi-responder") else {
        return;
    };
    let upstream = upstream();
    let mut site = Site::new("reload-fcgi", GRACE, "");
    let sock = site.dir().join("fcgi.sock");
    site.set_extra(&format!(
        "server.modules += ( \"mod_cgi\", \"mod_fastcgi\", \"mod_proxy\" )\n\
         proxy.server = ( \"/p/\" => (( \"host\" => \"127.0.0.1\", \"port\" => {} )) )\n\
         cgi.assign = ( \".sh\" => \"/bin/sh\" )\n\
         fastcgi.server = ( \".fcgi\" => (( \"socket\" => \"{}\", \"bin-path\" => \"{}\", \
         \"max-procs\" => 2, \"check-local\" => \"disable\" )) )",
        upstream.port(),
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
    reload_then(&mut site, 5, |site| {
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

/// A client WebSocket frame (masked, as RFC 6455 requires of clients).
fn ws_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![0x80 | opcode];
    assert!(payload.len() < 126);
    f.push(0x80 | payload.len() as u8);
    let mask = [0x12, 0x34, 0x56, 0x78];
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    f
}

/// One server frame: (opcode, payload).
fn ws_read(s: &mut TcpStream) -> std::io::Result<(u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    s.read_exact(&mut h)?;
    let len = match h[1] & 0x7f {
        126 => {
            let mut l = [0u8; 2];
            s.read_exact(&mut l)?;
            u16::from_be_bytes(l) as usize
        }
        127 => {
            let mut l = [0u8; 8];
            s.read_exact(&mut l)?;
            u64::from_be_bytes(l) as usize
        }
        n => n as usize,
    };
    let mut p = vec![0u8; len];
    s.read_exact(&mut p)?;
    Ok((h[0] & 0x0f, p))
}

/// A WebSocket through mod_wstunnel to a TCP echo backend; the 101 is read.
fn ws_open(addr: SocketAddr) -> TcpStream {
    let mut c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    c.write_all(
        b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
          Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    )
    .unwrap();
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 4096 {
        c.read_exact(&mut b).unwrap();
        head.push(b[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101 "),
        "{}",
        String::from_utf8_lossy(&head)
    );
    c
}

#[test]
fn a_websocket_open_across_a_reload_works_until_the_deadline_then_closes_cleanly() {
    if common::skip_without_direct_exec() {
        return;
    }
    // A TCP echo backend.
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let echo = l.local_addr().unwrap();
    thread::spawn(move || {
        for s in l.incoming().flatten() {
            thread::spawn(move || {
                let mut w = s.try_clone().unwrap();
                let mut r = s;
                let mut buf = [0u8; 4096];
                while let Ok(n) = r.read(&mut buf) {
                    if n == 0 || w.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    let grace = 3;
    let mut site = Site::new(
        "reload-ws",
        grace,
        &format!(
            "server.modules += ( \"mod_wstunnel\" )\n\
             wstunnel.server = ( \"/ws\" => (( \"host\" => \"127.0.0.1\", \"port\" => {} )) )",
            echo.port()
        ),
    );
    site.under_systemd();
    site.start_first();
    let mut c = ws_open(site.addr());
    c.write_all(&ws_frame(1, b"before")).unwrap();
    assert_eq!(ws_read(&mut c).unwrap(), (1, b"before".to_vec()));
    // The tunnel keeps echoing from its own thread while the reload runs, until the old
    // generation's deadline closes it.
    let echoes = thread::spawn(move || {
        let mut ok = 0u32;
        for i in 0..200 {
            let msg = format!("during {i}");
            if c.write_all(&ws_frame(1, msg.as_bytes())).is_err() {
                return (ok, None, String::from("write failed before a close frame"));
            }
            match ws_read(&mut c) {
                Ok((1, p)) if p == msg.as_bytes() => ok += 1,
                Ok((8, p)) => {
                    let code = p.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
                    return (ok, code, String::new());
                }
                other => return (ok, None, format!("unexpected {other:?}")),
            }
            thread::sleep(Duration::from_millis(100));
        }
        (ok, None, String::from("never closed"))
    });
    let old = site.current_pid();
    let t = Instant::now();
    send_signal(old, libc::SIGUSR1);
    let new = site.finish_reload(old);
    let (ok, code, err) = echoes.join().unwrap();
    assert!(err.is_empty(), "{err} after {ok} echoes\n{}", site.dump());
    // It worked across the handover, for about the grace period, then closed with 1001.
    assert_eq!(code, Some(1001), "{}", site.dump());
    assert!(ok >= 10, "only {ok} echoes during the reload");
    assert!(t.elapsed() >= Duration::from_secs(grace - 1));
    // The new generation takes new tunnels.
    let mut c = ws_open(site.addr());
    c.write_all(&ws_frame(1, b"after")).unwrap();
    assert_eq!(ws_read(&mut c).unwrap(), (1, b"after".to_vec()));
    drop(c);
    site.stop(new, true);
}

#[test]
fn a_compressed_download_in_flight_across_a_reload_completes() {
    if common::skip_without_direct_exec() {
        return;
    }
    let mut site = Site::new(
        "reload-deflate",
        GRACE,
        "server.modules += ( \"mod_deflate\" )\n\
         mimetype.assign = ( \".txt\" => \"text/plain\" )\n\
         deflate.mimetypes = ( \"text/\" )",
    );
    // 8 MiB of numbered lines: compressed a slice per turn, for many turns.
    let mut text = Vec::new();
    let mut i = 0u64;
    while text.len() < 8 << 20 {
        text.extend_from_slice(format!("{i:>12} a line of text that compresses\n").as_bytes());
        i += 1;
    }
    let file = site.dir().join("docroot/big.txt");
    std::fs::write(&file, &text).unwrap();
    site.under_systemd();
    site.start_first();
    let mut c = common::connect_small_rcvbuf(site.addr(), 16 * 1024);
    c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    c.write_all(
        b"GET /big.txt HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    // The first bytes, then the reload, then the rest, read from a thread so the old
    // generation can finish while the test waits for it.
    let mut first = vec![0u8; 4096];
    let n = c.read(&mut first).unwrap();
    first.truncate(n);
    assert!(n > 0, "nothing before the reload");
    let (go, wait) = std::sync::mpsc::channel::<()>();
    let reader = thread::spawn(move || {
        let _ = wait.recv_timeout(Duration::from_secs(30));
        let mut rest = Vec::new();
        let r = c.read_to_end(&mut rest).map(|_| rest);
        r.map(|rest| [first, rest].concat())
    });
    let old = site.current_pid();
    send_signal(old, libc::SIGUSR1);
    let _ = go.send(());
    let new = site.finish_reload(old);
    let got = reader.join().unwrap().expect("read the download");
    let end = got
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a head")
        + 4;
    let head = String::from_utf8_lossy(&got[..end]).to_string();
    assert!(head.contains("Content-Encoding: gzip"), "{head}");
    // The chunked body, decoded here, then gunzipped by gzip(1).
    let mut body = Vec::new();
    let mut rest = &got[end..];
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("size line");
        let size = usize::from_str_radix(std::str::from_utf8(&rest[..eol]).unwrap(), 16).unwrap();
        rest = &rest[eol + 2..];
        if size == 0 {
            break;
        }
        assert!(rest.len() >= size + 2, "the body was cut");
        body.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
    let gz = site.dir().join("body.gz");
    std::fs::write(&gz, &body).unwrap();
    let out = std::process::Command::new("gzip")
        .arg("-dc")
        .arg(&gz)
        .output()
        .expect("gzip");
    assert!(
        out.status.success(),
        "gzip: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout == text, "the download differs from the file");
    site.stop(new, true);
}
