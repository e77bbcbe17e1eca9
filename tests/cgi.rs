//! mod_cgi against the real binary and real scripts (/bin/sh): the environment, request
//! bodies in and responses out (lengths, chunked, HEAD), large uploads spooled and streamed,
//! local redirects, and the failures: scripts that die, hang, or outlive their client.

mod common;

use std::time::{Duration, Instant};

use common::*;

const CGI: &str = "server.modules = ( \"mod_cgi\" )\ncgi.assign = ( \".sh\" => \"/bin/sh\" )";

/// Prints its environment's CGI variables, one per line, as the body.
const ENV_SH: &str = "printf 'Content-Type: text/plain\\r\\n\\r\\n'\n\
for v in REQUEST_METHOD QUERY_STRING SCRIPT_NAME PATH_INFO REQUEST_URI SERVER_PROTOCOL \
GATEWAY_INTERFACE REMOTE_ADDR CONTENT_LENGTH CONTENT_TYPE HTTP_X_TEST HTTP_PROXY \
SCRIPT_FILENAME DOCUMENT_ROOT REDIRECT_STATUS; do\n\
  eval \"printf '%s=%s\\n' $v \\\"\\${$v-unset}\\\"\"\n\
done\n";

/// Echoes the request body's byte count and checksum.
const SUM_SH: &str = "printf 'Content-Type: text/plain\\r\\n\\r\\n'\n\
cksum\n";

fn site() -> Builder {
    builder()
        .file("env.sh", ENV_SH)
        .file("sum.sh", SUM_SH)
        .file("index.html", "home")
        .config(CGI)
}

fn env_of(r: &Response) -> Vec<(String, String)> {
    r.text()
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn var<'a>(env: &'a [(String, String)], k: &str) -> &'a str {
    env.iter()
        .find(|(n, _)| n == k)
        .map_or("<missing>", |(_, v)| v.as_str())
}

/// cksum's output for `data`, computed by cksum itself.
fn cksum(data: &[u8]) -> String {
    use std::io::Write;
    let mut c = std::process::Command::new("cksum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("cksum");
    c.stdin
        .take()
        .expect("stdin")
        .write_all(data)
        .expect("feed cksum");
    let out = c.wait_with_output().expect("cksum output");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn environment_follows_rfc_3875() {
    let s = site().start();
    let r = s.request(
        b"GET /env.sh/extra/path?a=1&b=%20 HTTP/1.1\r\nHost: x\r\nX-Test: hello\r\n\
          Proxy: http://evil/\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    let env = env_of(&r);
    assert_eq!(var(&env, "REQUEST_METHOD"), "GET");
    assert_eq!(var(&env, "QUERY_STRING"), "a=1&b=%20");
    assert_eq!(var(&env, "SCRIPT_NAME"), "/env.sh");
    assert_eq!(var(&env, "PATH_INFO"), "/extra/path");
    assert_eq!(var(&env, "REQUEST_URI"), "/env.sh/extra/path?a=1&b=%20");
    assert_eq!(var(&env, "SERVER_PROTOCOL"), "HTTP/1.1");
    assert_eq!(var(&env, "GATEWAY_INTERFACE"), "CGI/1.1");
    assert_eq!(var(&env, "REMOTE_ADDR"), "127.0.0.1");
    assert_eq!(var(&env, "HTTP_X_TEST"), "hello");
    // httpoxy: a client's Proxy field never becomes HTTP_PROXY.
    assert_eq!(var(&env, "HTTP_PROXY"), "unset");
    assert_eq!(var(&env, "REDIRECT_STATUS"), "200");
    let root = s.docroot();
    assert_eq!(
        var(&env, "SCRIPT_FILENAME"),
        root.join("env.sh").to_string_lossy()
    );
    // lighttpd always passes the length, 0 for a body-less GET.
    assert_eq!(var(&env, "CONTENT_LENGTH"), "0");
}

#[test]
fn bodies_in_with_length_and_chunked() {
    let s = site().start();
    let body = pattern(300_000);
    let mut c = s.connect();
    let mut req = format!(
        "POST /sum.sh HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(&body);
    c.send(&req);
    let r = c.read_response();
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.text().trim(), cksum(&body));
    // No length from the script: a short body is collected and gets a Content-Length, as
    // lighttpd's server.stream-response-body = 0 does; the connection stays usable.
    assert!(!r.chunked, "{}", r.describe());
    assert_eq!(
        r.header("Content-Length"),
        Some(r.body.len().to_string().as_str())
    );
    // Chunked upload on the same connection: the script still gets CONTENT_LENGTH, because
    // the body is spooled first.
    let mut req =
        b"POST /env.sh HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for part in body[..5000].chunks(777) {
        req.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        req.extend_from_slice(part);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    c.send(&req);
    let r = c.read_response();
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(var(&env_of(&r), "CONTENT_LENGTH"), "5000");
    assert_eq!(var(&env_of(&r), "REQUEST_METHOD"), "POST");
}

/// Writes `$QUERY_STRING` KiB (the 1 KiB file "block", repeated), no length. Scripts run
/// in their own directory.
const BIG_SH: &str = "printf 'Content-Type: application/octet-stream\\r\\n\\r\\n'\n\
i=0\nwhile [ $i -lt \"${QUERY_STRING:-1}\" ]; do cat block; i=$((i + 1)); done\n";

fn big_body(kib: usize) -> Vec<u8> {
    let line: Vec<u8> = (b'0'..b'0' + 64).collect();
    line.iter().copied().cycle().take(kib * 1024).collect()
}

#[test]
fn long_responses_stream_chunked_or_to_the_close() {
    let s = site()
        .file("big.sh", BIG_SH)
        .file("block", big_body(1))
        .start();
    // Past the collecting limit an HTTP/1.1 client gets the rest chunked, byte-exact.
    let mut c = s.connect();
    for kib in [1, 63, 64, 65, 300] {
        let r = c.get(&format!("/big.sh?{kib}"));
        assert_eq!(r.status, 200, "{}", r.describe());
        assert_eq!(r.body.len(), kib * 1024, "{kib} KiB");
        assert!(r.body == big_body(kib), "{kib} KiB: body differs");
        assert_eq!(
            r.chunked,
            kib * 1024 >= 64 * 1024,
            "{kib} KiB: {}",
            r.describe()
        );
    }
    // HTTP/1.0 has no chunks: the end of the connection ends a long body.
    let r = s.request(b"GET /big.sh?300 HTTP/1.0\r\n\r\n");
    assert_eq!(r.body.len(), 300 * 1024);
    assert!(r.header("Content-Length").is_none(), "{}", r.describe());
    // server.stream-response-body = 1: nothing is collected.
    let s = site()
        .file("big.sh", BIG_SH)
        .file("block", big_body(1))
        .config("server.stream-response-body = 1")
        .start();
    let r = s.get("/big.sh?1");
    assert!(r.chunked || r.has_close(), "{}", r.describe());
    assert!(r.body == big_body(1));
}

#[test]
fn a_100_mb_upload_is_spooled_not_held() {
    let s = site()
        .config("server.max-request-size = 0")
        .config(&format!(
            "server.upload-dirs = ( \"{}\" )",
            std::env::temp_dir().display()
        ))
        .start();
    let len: usize = 100 << 20;
    let chunk = pattern(1 << 20);
    let mut c = s.connect();
    c.send(
        format!("POST /sum.sh HTTP/1.1\r\nHost: x\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    let mut peak = 0u64;
    for _ in 0..100 {
        c.send(&chunk);
        peak = peak.max(rss_kib(s.pid()));
    }
    c.set_read_timeout(Duration::from_secs(120));
    let r = c.read_response();
    assert_eq!(r.status, 200, "{}", r.describe());
    let mut all = Vec::with_capacity(len);
    for _ in 0..100 {
        all.extend_from_slice(&chunk);
    }
    assert_eq!(r.text().trim(), cksum(&all));
    // The body went to a file, not to memory: lightd's resident set stays far below it.
    assert!(
        peak < 40 * 1024,
        "RSS peaked at {peak} KiB during a 100 MiB upload"
    );
}

#[test]
fn status_location_and_lengths_from_the_script() {
    let s = site()
        .file(
            "status.sh",
            "printf 'Status: 418 Teapot\\r\\nX-From: script\\r\\nContent-Length: 5\\r\\n\\r\\nshort'\n",
        )
        .file("away.sh", "printf 'Location: http://elsewhere.example/\\r\\n\\r\\n'\n")
        .file("local.sh", "printf 'Location: /index.html\\r\\n\\r\\n'\n")
        .config("cgi.local-redir = \"enable\"")
        .start();
    let r = s.get("/status.sh");
    assert_eq!(r.status, 418, "{}", r.describe());
    assert_eq!(r.header("X-From"), Some("script"));
    assert_eq!(r.header("Content-Length"), Some("5"));
    assert_eq!(r.text(), "short");
    assert!(r.header("Status").is_none(), "{}", r.describe());
    let r = s.get("/away.sh");
    assert_eq!(r.status, 302, "{}", r.describe());
    assert_eq!(r.header("Location"), Some("http://elsewhere.example/"));
    // cgi.local-redir: a local Location without a Status is followed inside the server.
    let r = s.get("/local.sh");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.text(), "home");
    // HEAD: the script's head, no body.
    let mut c = s.connect();
    c.send(b"HEAD /status.sh HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.read_head_response();
    assert_eq!(r.status, 418);
    // The connection is still in step: a GET on it works.
    let r = c.get("/status.sh");
    assert_eq!(r.text(), "short");
}

#[test]
fn a_script_that_dies_mid_body_cuts_the_connection() {
    let s = site()
        .file(
            "die.sh",
            "printf 'Content-Length: 100000\\r\\n\\r\\n'\nprintf 'only this much'\nexit 1\n",
        )
        .file(
            "bad.sh",
            "printf 'X-Ok: 1\\r\\nBad Name: x\\r\\n\\r\\nbody'\n",
        )
        .start();
    let mut c = s.connect();
    c.send(b"GET /die.sh HTTP/1.1\r\nHost: x\r\n\r\n");
    let r = c.try_read_response(false);
    assert!(
        r.is_err(),
        "a short body must not look complete: {:?}",
        r.map(|r| r.describe())
    );
    // A head with a field that is not a field is a bad gateway. (Output whose first line
    // has no colon at all is a body without a head: lighttpd serves it with 200.)
    let r = s.get("/bad.sh");
    assert_eq!(r.status, 502, "{}", r.describe());
}

#[test]
fn a_silent_script_times_out_and_is_killed() {
    let s = site()
        .file("hang.sh", "echo $$ > \"$0.pid\"\nexec sleep 30\n")
        .config("server.max-read-idle = 2\nserver.max-write-idle = 2")
        .start();
    let t = Instant::now();
    let r = s.get("/hang.sh");
    assert_eq!(r.status, 504, "{}", r.describe());
    assert!(
        t.elapsed() < Duration::from_secs(10),
        "took {:?}",
        t.elapsed()
    );
    let pid = read_pid(&s.docroot().join("hang.sh.pid"));
    assert!(
        wait_until(Duration::from_secs(10), || !pid_alive(pid)),
        "script {pid} still runs"
    );
}

#[test]
fn a_client_that_goes_away_stops_its_script() {
    let s = site()
        .file("slow.sh", "echo $$ > \"$0.pid\"\nexec sleep 30\n")
        .start();
    let mut c = s.connect();
    c.send(b"GET /slow.sh HTTP/1.1\r\nHost: x\r\n\r\n");
    let pidfile = s.docroot().join("slow.sh.pid");
    assert!(wait_until(Duration::from_secs(10), || {
        std::fs::read_to_string(&pidfile).is_ok_and(|t| t.ends_with('\n'))
    }));
    let pid = read_pid(&pidfile);
    assert!(pid_alive(pid));
    drop(c);
    assert!(
        wait_until(Duration::from_secs(10), || !pid_alive(pid)),
        "script {pid} outlived its client"
    );
    // And it was reaped: lightd has no zombie children.
    assert!(
        wait_until(Duration::from_secs(10), || zombies_of(s.pid()) == 0),
        "zombies left"
    );
}

#[test]
fn many_scripts_leave_no_zombies() {
    let s = site().start();
    let mut c = s.connect();
    for i in 0..50 {
        let r = c.get(&format!("/env.sh?{i}"));
        assert_eq!(r.status, 200, "{}", r.describe());
    }
    assert!(
        wait_until(Duration::from_secs(10), || zombies_of(s.pid()) == 0),
        "zombies left"
    );
}

#[test]
fn scripts_that_cannot_run() {
    let s = site()
        .file("plain.cgi", "#!/bin/sh\necho hi\n")
        .config("cgi.assign += ( \".cgi\" => \"\" )\ncgi.execute-x-only = \"enable\"")
        .config("cgi.assign += ( \".nope\" => \"/nonexistent/interpreter\" )")
        .file("x.nope", "")
        .start();
    // Not executable with cgi.execute-x-only: refused, and never served as source.
    let r = s.get("/plain.cgi");
    assert_eq!(r.status, 403, "{}", r.describe());
    assert!(!r.text().contains("echo hi"));
    let r = s.get("/x.nope");
    assert_eq!(r.status, 500, "{}", r.describe());
    // A script that does not exist is a 404, not a spawn.
    let r = s.get("/missing.sh");
    assert_eq!(r.status, 404, "{}", r.describe());
}

fn read_pid(p: &std::path::Path) -> i32 {
    std::fs::read_to_string(p)
        .ok()
        .and_then(|t| t.trim().parse().ok())
        .unwrap_or_else(|| panic!("no pid in {}", p.display()))
}

fn wait_until(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let t = Instant::now();
    while t.elapsed() < limit {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    f()
}

/// Zombie children of `pid`, from /proc.
fn zombies_of(pid: i32) -> usize {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return 0;
    };
    dir.flatten()
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter(|stat| {
            // "pid (comm) S ppid ...": the fields after the last ')'.
            let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
            let mut f = rest.split_whitespace();
            let state = f.next();
            let ppid = f.next().and_then(|p| p.parse::<i32>().ok());
            state == Some("Z") && ppid == Some(pid)
        })
        .count()
}
