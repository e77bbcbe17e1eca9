//! HTTPS end to end, with clients that are not lightd's own (curl, `openssl s_client`,
//! python's ssl module) and a PKI made by the openssl CLI for each test: static files small
//! and large, keep-alive and pipelining, CGI with the TLS environment and client certificates,
//! forced TLS 1.2 and 1.3, SNI, ALPN, session resumption, the scheme in conditions, bad input
//! on the TLS port, and certificate problems at `-tt` and at start.
//!
//! `LIGHTD_TLS_TESTS_AGAINST=lighttpd` runs the same tests against Debian's lighttpd with
//! mod_openssl, to check the tests themselves (see tests/common/tls.rs); where lighttpd 1.4.69
//! behaves otherwise than lightd promises, the test says so and checks lighttpd's behaviour.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::tls::*;
use common::*;

/// The config every test starts from: a plain listener and, in `tls_block`, a TLS one.
const BASE: &str = r#"server.document-root = "{docroot}"
server.bind = "127.0.0.1"
server.port = {port}
server.modules += ( "mod_openssl", "mod_cgi", "mod_redirect" )
mimetype.assign = ( ".txt" => "text/plain", ".bin" => "application/octet-stream" )
cgi.assign = ( ".sh" => "/bin/sh" )
"#;

/// The CGI script: the TLS-related environment, one `NAME=value` a line, then a marker line,
/// then the request body as received.
const ENV_SH: &str = "printf 'Content-Type: text/plain\\r\\n\\r\\n'\n\
for v in HTTPS REQUEST_SCHEME SERVER_PORT SSL_CLIENT_S_DN_CN SSL_CLIENT_S_DN_O \
SSL_CLIENT_VERIFY REMOTE_USER; do eval \"x=\\${$v-unset}\"; printf '%s=%s\\n' \"$v\" \"$x\"; done\n\
printf -- '--body--\\n'\n\
cat\n";

const BODY_MARK: &[u8] = b"--body--\n";

/// `$SERVER["socket"] == "{tls}" { ssl.engine ... }` with `cert` (separate key file) and
/// `extra` lines inside the block.
fn tls_block(cert: &Cert, extra: &str) -> String {
    format!(
        "$SERVER[\"socket\"] == \"{{tls}}\" {{\n\
         \x20 ssl.engine = \"enable\"\n\
         \x20 ssl.pemfile = \"{}\"\n\
         \x20 ssl.privkey = \"{}\"\n\
         {extra}\n\
         }}\n",
        s(&cert.cert),
        s(&cert.key)
    )
}

/// Start a server with BASE, the TLS block for `cert` and then `more` config; files in `b`.
/// `more` comes after the block: in lighttpd's config a later matching block overrides an
/// earlier one, so SNI's `$HTTP["host"]` blocks must follow the socket's.
fn start(b: Builder, cert: &Cert, block_extra: &str, more: &str) -> TlsServer {
    let text = format!("{BASE}{}{more}\n", tls_block(cert, block_extra));
    TlsServer::start(b, &text)
}

/// TLS 1.2 allowed: the default minimum is TLS 1.3, as in lighttpd 1.4.85.
const MIN_TLS12: &str = "ssl.openssl.ssl-conf-cmd = (\"MinProtocol\" => \"TLSv1.2\")";

fn hello() -> Builder {
    tls_builder()
        .file("hello.txt", "hello over TLS\n")
        .file("env.sh", ENV_SH)
}

/// The CGI output split into the environment (NAME -> value) and the echoed body.
fn parse_env(body: &[u8]) -> (Vec<(String, String)>, Vec<u8>) {
    let at = find(body, BODY_MARK).unwrap_or_else(|| {
        panic!(
            "no body marker in the CGI output: {:?}",
            String::from_utf8_lossy(&body[..body.len().min(2000)])
        )
    });
    let env = String::from_utf8_lossy(&body[..at])
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    (env, body[at + BODY_MARK.len()..].to_vec())
}

fn env_of<'a>(env: &'a [(String, String)], k: &str) -> &'a str {
    env.iter()
        .find(|(n, _)| n == k)
        .map(|(_, v)| v.as_str())
        .unwrap_or("<missing>")
}

/// Responses in `bytes` (each framed by Content-Length): (status, body) each.
fn split_responses(mut bytes: &[u8]) -> Vec<(u16, Vec<u8>)> {
    let mut out = Vec::new();
    // Bounded: each turn consumes a head or stops.
    while let Some(end) = find(bytes, b"\r\n\r\n") {
        let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
        let status = head
            .split_whitespace()
            .nth(1)
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        let len: usize = head
            .lines()
            .find_map(|l| {
                let (k, v) = l.split_once(':')?;
                k.eq_ignore_ascii_case("content-length")
                    .then(|| v.trim().parse().ok())?
            })
            .unwrap_or(0);
        let body_end = (end + 4 + len).min(bytes.len());
        out.push((status, bytes[end + 4..body_end].to_vec()));
        bytes = &bytes[body_end..];
    }
    out
}

/// The s_client arguments that verify the server as "localhost" against the test CA.
fn verify_args(pki: &Pki) -> Vec<String> {
    vec![
        "-CAfile".into(),
        s(&pki.ca).into(),
        "-servername".into(),
        "localhost".into(),
        "-verify_return_error".into(),
    ]
}

fn args(v: &[String]) -> Vec<&str> {
    v.iter().map(String::as_str).collect()
}

// ---------------------------------------------------------------------------------------------
// Serving
// ---------------------------------------------------------------------------------------------

#[test]
fn static_file_over_tls_with_curl() {
    let pki = Pki::new();
    let bin = pattern(1024);
    let srv = start(hello().file("1k.bin", &bin), &pki.localhost, "", "");
    let f = curl_get(&pki.ca, srv.tls(), "localhost", "/hello.txt");
    assert_eq!(f.code, 200, "{f:?}");
    assert_eq!(f.http_version, "1.1");
    assert_eq!(f.ssl_verify_result, 0);
    assert_eq!(f.body, b"hello over TLS\n");
    let f = curl_get(&pki.ca, srv.tls(), "localhost", "/1k.bin");
    assert_eq!(f.code, 200);
    assert!(f.body == bin, "1k.bin differs ({} bytes)", f.body.len());
    // The plain listener beside it still speaks plain HTTP.
    let r = Conn::connect(srv.plain()).get("/hello.txt");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, b"hello over TLS\n");
}

#[test]
fn rsa_certificate_with_the_key_in_the_pemfile() {
    let pki = Pki::new();
    // ssl.pemfile alone, holding the certificate and then the key (lighttpd's default).
    let text = format!(
        "{BASE}$SERVER[\"socket\"] == \"{{tls}}\" {{\n  ssl.engine = \"enable\"\n  \
         ssl.pemfile = \"{}\"\n}}\n",
        s(&pki.localhost_rsa.both)
    );
    let srv = TlsServer::start(hello(), &text);
    let f = curl_get(&pki.ca, srv.tls(), "localhost", "/hello.txt");
    assert_eq!(f.code, 200, "{f:?}");
    assert_eq!(f.body, b"hello over TLS\n");
    let r = s_client(
        srv.tls(),
        &args(&verify_args(&pki)),
        &get_close("localhost", "/hello.txt"),
        CLIENT_TIMEOUT,
    );
    let out = r.stdout_text();
    assert_eq!(
        peer_subject(&out).as_deref(),
        Some("CN = localhost, O = rsa"),
        "{}",
        r.describe()
    );
    assert!(
        out.contains("Server public key is 2048 bit"),
        "{}",
        r.describe()
    );
}

#[test]
fn a_large_file_arrives_byte_exact() {
    let pki = Pki::new();
    let big = pattern(20 << 20);
    let srv = start(hello().file("big.bin", &big), &pki.localhost, "", "");
    let f = curl_get(&pki.ca, srv.tls(), "localhost", "/big.bin");
    assert_eq!(f.code, 200);
    assert_eq!(f.body.len(), big.len(), "length of the download");
    assert!(f.body == big, "the 20 MB download differs from the file");
}

#[test]
fn keep_alive_several_requests_on_one_connection() {
    let pki = Pki::new();
    let srv = start(hello().file("b.txt", "bee\n"), &pki.localhost, "", "");
    let paths = ["/hello.txt", "/b.txt", "/hello.txt", "/b.txt", "/hello.txt"];
    let got = curl(&pki.ca, srv.tls(), "localhost", &paths, &[]).unwrap_or_else(|e| panic!("{e}"));
    for (i, (f, p)) in got.iter().zip(paths).enumerate() {
        assert_eq!(f.code, 200, "{p}: {f:?}");
        let want: &[u8] = if p == "/b.txt" {
            b"bee\n"
        } else {
            b"hello over TLS\n"
        };
        assert_eq!(f.body, want, "{p}");
        // One connection (and one handshake) for all of them.
        assert_eq!(
            f.num_connects,
            u32::from(i == 0),
            "transfer {i}: new connections"
        );
    }
}

#[test]
fn pipelined_requests_in_one_record() {
    let pki = Pki::new();
    let srv = start(hello().file("b.txt", "bee\n"), &pki.localhost, "", "");
    let mut input = Vec::new();
    for p in ["/hello.txt", "/b.txt", "/hello.txt"] {
        input.extend_from_slice(format!("GET {p} HTTP/1.1\r\nHost: localhost\r\n\r\n").as_bytes());
    }
    input.extend_from_slice(&get_close("localhost", "/b.txt"));
    let mut a = vec!["-quiet".to_string()];
    a.extend(verify_args(&pki));
    let r = s_client(srv.tls(), &args(&a), &input, CLIENT_TIMEOUT);
    let got = split_responses(&r.stdout);
    let want: Vec<(u16, Vec<u8>)> = ["hello over TLS\n", "bee\n", "hello over TLS\n", "bee\n"]
        .iter()
        .map(|b| (200, b.as_bytes().to_vec()))
        .collect();
    assert_eq!(got, want, "{}", r.describe());
}

#[test]
fn post_to_cgi_sees_https_and_the_body() {
    let pki = Pki::new();
    let b = hello();
    let body: Vec<u8> = pattern(100_000);
    let body_file = b.dir().join("post.bin");
    write_file(&body_file, &body);
    let srv = start(b, &pki.localhost, "", "");
    let data = format!("@{}", s(&body_file));
    let got = curl(
        &pki.ca,
        srv.tls(),
        "localhost",
        &["/env.sh"],
        &[
            "--data-binary",
            &data,
            "-H",
            "Content-Type: application/octet-stream",
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got[0].code, 200, "{:?}", got[0]);
    let (env, echoed) = parse_env(&got[0].body);
    assert_eq!(env_of(&env, "HTTPS"), "on", "{env:?}");
    assert_eq!(env_of(&env, "REQUEST_SCHEME"), "https", "{env:?}");
    assert_eq!(
        env_of(&env, "SERVER_PORT"),
        srv.tls().port().to_string(),
        "{env:?}"
    );
    // No client certificate was asked for.
    assert_eq!(env_of(&env, "SSL_CLIENT_S_DN_CN"), "unset", "{env:?}");
    assert_eq!(echoed.len(), body.len(), "the body the script read");
    assert!(echoed == body, "the CGI script read another body");
    // The same script over plain HTTP: no HTTPS, scheme http.
    let r = Conn::connect(srv.plain()).get("/env.sh");
    let (env, _) = parse_env(&r.body);
    assert_eq!(env_of(&env, "HTTPS"), "unset", "{env:?}");
    assert_eq!(env_of(&env, "REQUEST_SCHEME"), "http", "{env:?}");
}

#[test]
fn client_certificates_enforced_and_in_the_cgi_environment() {
    let pki = Pki::new();
    let extra = format!(
        "  ssl.ca-file = \"{}\"\n  ssl.verifyclient.activate = \"enable\"\n  \
         ssl.verifyclient.enforce = \"enable\"\n  \
         ssl.verifyclient.username = \"SSL_CLIENT_S_DN_CN\"",
        s(&pki.ca)
    );
    let srv = start(hello(), &pki.localhost, &extra, "");
    // Without a certificate: no response (the handshake fails, at once in TLS 1.2, at the
    // first read in TLS 1.3).
    let r = curl(&pki.ca, srv.tls(), "localhost", &["/hello.txt"], &[]);
    assert!(r.is_err(), "served without a client certificate: {r:?}");
    let r = curl(
        &pki.ca,
        srv.tls(),
        "localhost",
        &["/hello.txt"],
        &["--tls-max", "1.2"],
    );
    assert!(
        r.is_err(),
        "served without a client certificate (TLS 1.2): {r:?}"
    );
    // A certificate not from the CA: refused too.
    let stranger = Pki::new();
    let r = curl(
        &pki.ca,
        srv.tls(),
        "localhost",
        &["/hello.txt"],
        &[
            "--cert",
            s(&stranger.client.cert),
            "--key",
            s(&stranger.client.key),
        ],
    );
    assert!(
        r.is_err(),
        "served with a foreign client certificate: {r:?}"
    );
    // With one: served, and the subject is in the environment.
    let got = curl(
        &pki.ca,
        srv.tls(),
        "localhost",
        &["/env.sh"],
        &[
            "--cert",
            s(&pki.client.cert),
            "--key",
            s(&pki.client.key),
            "--data-binary",
            "posted",
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(got[0].code, 200, "{:?}", got[0]);
    let (env, echoed) = parse_env(&got[0].body);
    assert_eq!(env_of(&env, "SSL_CLIENT_S_DN_CN"), "test client", "{env:?}");
    assert_eq!(env_of(&env, "SSL_CLIENT_S_DN_O"), "lightd tests", "{env:?}");
    assert_eq!(env_of(&env, "SSL_CLIENT_VERIFY"), "SUCCESS", "{env:?}");
    assert_eq!(env_of(&env, "REMOTE_USER"), "test client", "{env:?}");
    assert_eq!(env_of(&env, "HTTPS"), "on", "{env:?}");
    assert_eq!(echoed, b"posted");
}

// ---------------------------------------------------------------------------------------------
// Protocol versions, SNI, ALPN, resumption, other clients
// ---------------------------------------------------------------------------------------------

#[test]
fn tls12_and_tls13_forced_with_s_client() {
    let pki = Pki::new();
    // lighttpd 1.4.85's default minimum is TLS 1.3 (lightd's too); 1.2 is allowed by asking.
    if against() == Against::Lightd {
        let srv = start(hello(), &pki.localhost, "", "");
        let mut a = vec!["-tls1_2".to_string()];
        a.extend(verify_args(&pki));
        let r = s_client(
            srv.tls(),
            &args(&a),
            &get_close("localhost", "/hello.txt"),
            CLIENT_TIMEOUT,
        );
        assert!(
            !r.stdout_text().contains("New, TLSv1.2, Cipher is"),
            "TLS 1.2 was accepted with the default minimum (1.3): {}",
            r.describe()
        );
    }
    let srv = start(hello(), &pki.localhost, MIN_TLS12, "");
    for (flag, name) in [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")] {
        let mut a = vec![flag.to_string()];
        a.extend(verify_args(&pki));
        let r = s_client(
            srv.tls(),
            &args(&a),
            &get_close("localhost", "/hello.txt"),
            CLIENT_TIMEOUT,
        );
        let out = r.stdout_text();
        assert!(
            out.contains(&format!("New, {name}, Cipher is")),
            "{flag}: {}",
            r.describe()
        );
        assert!(
            out.contains("Verify return code: 0 (ok)"),
            "{flag}: {}",
            r.describe()
        );
        assert!(
            out.contains("HTTP/1.1 200 OK") && out.contains("hello over TLS"),
            "{flag}: {}",
            r.describe()
        );
    }
}

/// ACME's tls-alpn-01 (ssl.acme-tls-1): a client offering "acme-tls/1" gets the challenge
/// certificate the ACME client left in the directory, read at the handshake (so a new one is
/// used at once), and no HTTP; other clients get the site's certificate as before.
#[test]
fn acme_tls_1_answers_the_challenge_certificate() {
    if against() != Against::Lightd {
        return;
    }
    let pki = Pki::new();
    let dir = TempDir::new("acme");
    let challenge = pki.issue(
        "challenge",
        &Spec {
            subject: "/CN=acme challenge",
            sans: &["DNS:localhost"],
            key: KeyType::EcP256,
            days: 7,
            client: false,
        },
    );
    std::fs::copy(&challenge.cert, dir.path().join("localhost.crt.pem")).expect("copy");
    std::fs::copy(&challenge.key, dir.path().join("localhost.key.pem")).expect("copy");
    let extra = format!("ssl.acme-tls-1 = \"{}\"", s(dir.path()));
    let srv = start(hello(), &pki.localhost, &extra, "");
    let acme = |name: &str| {
        s_client(
            srv.tls(),
            &["-servername", name, "-alpn", "acme-tls/1"],
            b"",
            CLIENT_TIMEOUT,
        )
    };
    let r = acme("localhost");
    let out = r.stdout_text();
    assert_eq!(
        peer_subject(&out).as_deref(),
        Some("CN = acme challenge"),
        "{}",
        r.describe()
    );
    assert!(
        out.contains("ALPN protocol: acme-tls/1"),
        "{}",
        r.describe()
    );
    // No challenge certificate for that name: the handshake fails, nothing else is served.
    let r = acme("other.test");
    assert!(peer_subject(&r.stdout_text()).is_none(), "{}", r.describe());
    // An HTTP client still gets the site's certificate and its page.
    let f = curl_get(&pki.ca, srv.tls(), "localhost", "/hello.txt");
    assert_eq!((f.code, f.body.as_slice()), (200, &b"hello over TLS\n"[..]));
}

#[test]
fn sni_picks_the_certificate() {
    let pki = Pki::new();
    let more = format!(
        "$HTTP[\"host\"] == \"a.test\" {{\n  ssl.pemfile = \"{}\"\n  ssl.privkey = \"{}\"\n}}\n\
         $HTTP[\"host\"] == \"b.test\" {{\n  ssl.pemfile = \"{}\"\n  ssl.privkey = \"{}\"\n}}\n",
        s(&pki.a_test.cert),
        s(&pki.a_test.key),
        s(&pki.b_test.cert),
        s(&pki.b_test.key)
    );
    let srv = start(hello(), &pki.localhost, "", &more);
    for (sni, want) in [
        (Some("a.test"), "CN = a.test"),
        (Some("b.test"), "CN = b.test"),
        (Some("other.test"), "CN = localhost"),
        (None, "CN = localhost"),
    ] {
        let mut a = vec!["-CAfile".to_string(), s(&pki.ca).to_string()];
        match sni {
            Some(n) => a.extend(["-servername".to_string(), n.to_string()]),
            None => a.push("-noservername".to_string()),
        }
        let r = s_client(
            srv.tls(),
            &args(&a),
            &get_close(sni.unwrap_or("localhost"), "/hello.txt"),
            CLIENT_TIMEOUT,
        );
        let out = r.stdout_text();
        assert_eq!(
            peer_subject(&out).as_deref(),
            Some(want),
            "SNI {sni:?}: {}",
            r.describe()
        );
        assert!(
            out.contains("HTTP/1.1 200 OK"),
            "SNI {sni:?}: {}",
            r.describe()
        );
    }
    // And curl, checking the name against the certificate, is served under each name.
    for host in ["a.test", "b.test", "localhost"] {
        let f = curl_get(&pki.ca, srv.tls(), host, "/hello.txt");
        assert_eq!(f.code, 200, "{host}: {f:?}");
        assert_eq!(f.body, b"hello over TLS\n", "{host}");
    }
}

#[test]
fn alpn_negotiates_http_1_1() {
    let pki = Pki::new();
    let srv = start(hello(), &pki.localhost, "", "");
    let mut offers = vec!["http/1.1"];
    // lighttpd 1.4.69 speaks HTTP/2 and rightly picks h2 when offered; lightd does not.
    if against() == Against::Lightd {
        offers.push("h2,http/1.1");
    }
    for offer in offers {
        let mut a = vec!["-alpn".to_string(), offer.to_string()];
        a.extend(verify_args(&pki));
        let r = s_client(
            srv.tls(),
            &args(&a),
            &get_close("localhost", "/hello.txt"),
            CLIENT_TIMEOUT,
        );
        let out = r.stdout_text();
        assert!(
            out.contains("ALPN protocol: http/1.1"),
            "offered {offer}: {}",
            r.describe()
        );
        assert!(out.contains("HTTP/1.1 200 OK"), "{}", r.describe());
    }
}

#[test]
fn session_resumption_with_tickets() {
    let pki = Pki::new();
    let srv = start(hello(), &pki.localhost, MIN_TLS12, "");
    let tmp = TempDir::new("sess");
    for (flag, name) in [("-tls1_3", "TLSv1.3"), ("-tls1_2", "TLSv1.2")] {
        let sess = tmp.path().join(format!("{name}.sess"));
        let mut a = vec![flag.to_string(), "-sess_out".into(), s(&sess).to_string()];
        a.extend(verify_args(&pki));
        let first = s_client(
            srv.tls(),
            &args(&a),
            &get_close("localhost", "/hello.txt"),
            CLIENT_TIMEOUT,
        );
        assert!(
            first.stdout_text().contains(&format!("New, {name},")),
            "{}",
            first.describe()
        );
        assert!(
            sess.exists(),
            "{name}: no session saved: {}",
            first.describe()
        );
        let mut a = vec![flag.to_string(), "-sess_in".into(), s(&sess).to_string()];
        a.extend(verify_args(&pki));
        let second = s_client(
            srv.tls(),
            &args(&a),
            &get_close("localhost", "/hello.txt"),
            CLIENT_TIMEOUT,
        );
        let out = second.stdout_text();
        assert!(
            out.contains(&format!("Reused, {name},")),
            "{name}: not resumed: {}",
            second.describe()
        );
        assert!(out.contains("hello over TLS"), "{}", second.describe());
    }
}

const PY_GET: &str = r#"
import socket, ssl, sys
ca, port = sys.argv[1], int(sys.argv[2])
ctx = ssl.create_default_context(cafile=ca)
ctx.set_alpn_protocols(["http/1.1"])
with socket.create_connection(("127.0.0.1", port), timeout=20) as raw:
    with ctx.wrap_socket(raw, server_hostname="localhost") as c:
        c.sendall(b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        data = b""
        while len(data) < 1 << 20:
            b = c.recv(65536)
            if not b:
                break
            data += b
        print("version", c.version())
        print("alpn", c.selected_alpn_protocol())
        print("subject", dict(x[0] for x in c.getpeercert()["subject"])["commonName"])
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
"#;

#[test]
fn python_ssl_module_gets_a_page() {
    let pki = Pki::new();
    let srv = start(hello(), &pki.localhost, "", "");
    let r = python(
        PY_GET,
        &[s(&pki.ca), &srv.tls().port().to_string()],
        CLIENT_TIMEOUT,
    );
    assert!(r.ok(), "{}", r.describe());
    let out = r.stdout_text();
    assert!(out.contains("version TLSv1.3\n"), "{out}");
    assert!(out.contains("alpn http/1.1\n"), "{out}");
    assert!(out.contains("subject localhost\n"), "{out}");
    let at = out
        .find("HTTP/1.1 200 OK")
        .unwrap_or_else(|| panic!("{out}"));
    assert!(out[at..].ends_with("\r\n\r\nhello over TLS\n"), "{out}");
}

/// A client whose ClientHello arrives in two pieces (5 bytes, a pause, the rest), as a large
/// one (post-quantum key shares) does over a real network: the handshake completes at once.
const PY_SPLIT_HELLO: &str = r#"
import socket, ssl, sys, time
ca, port = sys.argv[1], int(sys.argv[2])
ctx = ssl.create_default_context(cafile=ca)
inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
tls = ctx.wrap_bio(inc, out, server_hostname="localhost")
try:
    tls.do_handshake()
except ssl.SSLWantReadError:
    pass
hello = out.read()
s = socket.create_connection(("127.0.0.1", port))
s.settimeout(5)
s.sendall(hello[:5])
time.sleep(0.3)
s.sendall(hello[5:])
t0 = time.time()
while True:
    try:
        tls.do_handshake()
        break
    except ssl.SSLWantReadError:
        d = out.read()
        if d:
            s.sendall(d)
        r = s.recv(65536)
        if not r:
            sys.exit("EOF in the handshake")
        inc.write(r)
s.sendall(out.read())
print("handshake %.2f s" % (time.time() - t0))
tls.write(b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
s.sendall(out.read())
resp = b""
while True:
    try:
        d = tls.read(65536)
        if not d:
            break
        resp += d
    except ssl.SSLWantReadError:
        r = s.recv(65536)
        if not r:
            break
        inc.write(r)
    except ssl.SSLZeroReturnError:
        break
sys.stdout.write(resp.decode())
"#;

#[test]
fn a_client_hello_in_two_pieces_is_answered() {
    let pki = Pki::new();
    let srv = start(hello(), &pki.localhost, "", "");
    let r = python(
        PY_SPLIT_HELLO,
        &[s(&pki.ca), &srv.tls().port().to_string()],
        CLIENT_TIMEOUT,
    );
    assert!(r.ok(), "{}", r.describe());
    let out = r.stdout_text();
    // Answered as soon as it is complete, not at a timeout (the socket's is 5 s).
    let took: f64 = out
        .strip_prefix("handshake ")
        .and_then(|t| t.split(' ').next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(took < 2.0, "the handshake took {took} s: {out}");
    assert!(out.ends_with("\r\n\r\nhello over TLS\n"), "{out}");
}

/// A client offering only protocols lightd does not speak (h2) is not refused: the handshake
/// goes on without ALPN, as OpenSSL (and so lighttpd) does.
#[test]
fn alpn_without_http_1_goes_on_without_alpn() {
    let pki = Pki::new();
    let srv = start(hello(), &pki.localhost, "", "");
    let mut a = vec!["-alpn".to_string(), "h2".to_string()];
    a.extend(verify_args(&pki));
    let r = s_client(
        srv.tls(),
        &args(&a),
        &get_close("localhost", "/hello.txt"),
        CLIENT_TIMEOUT,
    );
    let out = r.stdout_text();
    assert!(out.contains("No ALPN negotiated"), "{}", r.describe());
    assert!(out.contains("HTTP/1.1 200 OK"), "{}", r.describe());
}

/// During the handshake only the socket, the client's address and (with SNI) the host and
/// scheme are known: a block on anything else is undecided and does not apply, nor do the
/// `else` branches after it; without SNI a host condition is undecided too (lighttpd's rule).
#[test]
fn sni_undecided_conditions_do_not_choose_the_certificate() {
    let pki = Pki::new();
    let more = format!(
        "$HTTP[\"url\"] !~ \"^/admin\" {{\n  ssl.pemfile = \"{a}\"\n  ssl.privkey = \"{ak}\"\n}}\n\
         $HTTP[\"host\"] == \"b.test\" {{\n}}\n\
         else {{\n  ssl.pemfile = \"{a}\"\n  ssl.privkey = \"{ak}\"\n}}\n",
        a = s(&pki.a_test.cert),
        ak = s(&pki.a_test.key),
    );
    let srv = start(hello(), &pki.localhost, "", &more);
    for (sni, want) in [
        // The url block is undecided; with SNI "b.test" the else is not taken.
        (Some("b.test"), "CN = localhost"),
        // Without SNI, the host condition is undecided, so its else is not taken either.
        (None, "CN = localhost"),
        // With SNI "other.test" the else applies.
        (Some("other.test"), "CN = a.test"),
    ] {
        let mut a = vec!["-CAfile".to_string(), s(&pki.ca).to_string()];
        match sni {
            Some(n) => a.extend(["-servername".to_string(), n.to_string()]),
            None => a.push("-noservername".to_string()),
        }
        let req = get_close(sni.unwrap_or("localhost"), "/hello.txt");
        let r = s_client(srv.tls(), &args(&a), &req, CLIENT_TIMEOUT);
        assert_eq!(
            peer_subject(&r.stdout_text()).as_deref(),
            Some(want),
            "SNI {sni:?}: {}",
            r.describe()
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Bad input on the TLS port
// ---------------------------------------------------------------------------------------------

/// The server still completes a handshake and serves after whatever a test did to it.
fn still_serves(srv: &mut TlsServer, pki: &Pki) {
    assert!(srv.is_running(), "the server died\n{}", srv.log_text());
    let f = curl_get(&pki.ca, srv.tls(), "localhost", "/hello.txt");
    assert_eq!(f.code, 200, "{f:?}");
    assert_eq!(f.body, b"hello over TLS\n");
}

#[test]
fn garbage_instead_of_a_client_hello_is_closed() {
    let pki = Pki::new();
    let mut srv = start(hello(), &pki.localhost, "", "");
    // Bytes that are neither a TLS record (0x16) nor an HTTP method.
    let mut junk = pattern(600);
    junk[0] = 0x00;
    let mut c = TcpStream::connect(srv.tls()).expect("connect");
    // The server may close before all of it is written: a failed write is fine.
    let _ = c.write_all(&junk);
    let (got, closed) = read_until_closed(&mut c, Duration::from_secs(10));
    assert!(closed, "the connection stayed open after garbage");
    // Nothing but (at most) a TLS alert record.
    assert!(
        got.is_empty() || got[0] == 0x15,
        "answered garbage with {:?}",
        String::from_utf8_lossy(&got)
    );
    still_serves(&mut srv, &pki);
}

#[test]
fn plain_http_on_the_tls_port() {
    let pki = Pki::new();
    let mut srv = start(hello(), &pki.localhost, "", "");
    let mut c = TcpStream::connect(srv.tls()).expect("connect");
    c.write_all(&get("/hello.txt")).expect("send");
    let (got, closed) = read_until_closed(&mut c, Duration::from_secs(10));
    assert!(closed, "the connection stayed open after plain HTTP");
    let text = String::from_utf8_lossy(&got);
    match against() {
        Against::Lightd => {
            // A 400 in plain text the browser can show (nginx does the same), then close.
            assert!(
                text.starts_with("HTTP/1.1 400 ") || text.starts_with("HTTP/1.0 400 "),
                "plain HTTP on the TLS port got {text:?}"
            );
            assert!(!text.contains("hello over TLS"), "{text:?}");
        }
        // lighttpd 1.4.69 closes without a word (OpenSSL reports "http request").
        Against::Lighttpd => assert!(got.is_empty(), "{text:?}"),
    }
    still_serves(&mut srv, &pki);
}

#[test]
fn a_slow_handshake_is_closed_at_max_read_idle() {
    let pki = Pki::new();
    let mut srv = start(hello(), &pki.localhost, "", "server.max-read-idle = 2\n");
    let mut c = TcpStream::connect(srv.tls()).expect("connect");
    // The start of a handshake record header, and then nothing.
    c.write_all(&[0x16, 0x03, 0x01]).expect("send");
    let t = Instant::now();
    let (got, closed) = read_until_closed(&mut c, Duration::from_secs(15));
    let took = t.elapsed();
    assert!(closed, "still open after {took:?} with max-read-idle = 2");
    assert!(
        took >= Duration::from_millis(1500),
        "closed after only {took:?}"
    );
    assert!(got.is_empty() || got[0] == 0x15, "got {got:?}");
    still_serves(&mut srv, &pki);
}

#[test]
fn renegotiation_is_refused_without_hurting_the_server() {
    let pki = Pki::new();
    let mut srv = start(hello(), &pki.localhost, MIN_TLS12, "");
    let mut a = vec!["-tls1_2".to_string(), "-msg".to_string()];
    a.extend(verify_args(&pki));
    let mut sc = Interactive::start(srv.tls(), &args(&a));
    assert!(
        sc.out
            .wait_for(Duration::from_secs(15), |t| t.contains("New, TLSv1.2,")),
        "no TLS 1.2 handshake: {}",
        sc.text()
    );
    // s_client's "R" command: a renegotiation started by the client.
    assert!(sc.send(b"R\n"), "s_client stdin: {}", sc.text());
    // s_client says so on stderr; the protocol messages (-msg) go to stdout.
    assert!(
        sc.err
            .wait_for(Duration::from_secs(10), |t| t.contains("RENEGOTIATING")),
        "{}",
        sc.text()
    );
    // The server's answer, an alert, or the connection closed; bounded either way.
    sc.out.wait_for(Duration::from_secs(10), |t| {
        t.contains("no_renegotiation") || t.contains("Alert") && t.contains(", ClientHello")
    });
    sc.send(&get_close("localhost", "/hello.txt"));
    sc.finish(Duration::from_secs(10));
    let all = format!("{}{}", sc.out.text(), sc.err.text());
    // One ServerHello: the second handshake never got one.
    let hellos = all
        .lines()
        .filter(|l| l.starts_with("<<< ") && l.ends_with(", ServerHello"))
        .count();
    assert_eq!(hellos, 1, "ServerHello messages received: {}", sc.text());
    still_serves(&mut srv, &pki);
}

// ---------------------------------------------------------------------------------------------
// The scheme in conditions
// ---------------------------------------------------------------------------------------------

#[test]
fn scheme_condition_redirects_plain_http_only() {
    let pki = Pki::new();
    let more = "$HTTP[\"scheme\"] == \"http\" {\n  \
                url.redirect = ( \"^/(.*)\" => \"https://secure.test/$1\" )\n}\n";
    let srv = start(hello(), &pki.localhost, "", more);
    let r = Conn::connect(srv.plain()).get("/hello.txt");
    assert!(
        r.status == 301 || r.status == 302,
        "plain HTTP: {}",
        r.describe()
    );
    assert_eq!(
        r.header("Location"),
        Some("https://secure.test/hello.txt"),
        "{}",
        r.describe()
    );
    let f = curl_get(&pki.ca, srv.tls(), "localhost", "/hello.txt");
    assert_eq!(f.code, 200, "HTTPS is not redirected: {f:?}");
    assert_eq!(f.body, b"hello over TLS\n");
}

// ---------------------------------------------------------------------------------------------
// Certificates at -tt and at start
// ---------------------------------------------------------------------------------------------

/// The line of `text` (1-based) that contains `needle`.
fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("{needle:?} not in the config"))
}

/// `-tt` on the config: (success, everything printed).
fn preflight(b: &Builder) -> (bool, String) {
    match against() {
        Against::Lightd => {
            let out = b.run(&["-tt"]);
            (
                out.status.success(),
                format!("{}{}", out.stdout, out.stderr),
            )
        }
        Against::Lighttpd => {
            let cfg = b.write_config();
            let r = run_bounded(
                Command::new(LIGHTTPD).arg("-tt").arg("-f").arg(&cfg),
                &[],
                CLIENT_TIMEOUT,
            );
            (r.ok(), format!("{}{}", r.stdout_text(), r.stderr))
        }
    }
}

/// Start (`-D`) on the config: (still running after it was up or exited, everything it
/// printed). lightd must exit non-zero on a certificate error, before listening.
fn start_fails(b: Builder) -> String {
    assert_eq!(against(), Against::Lightd);
    let mut srv = b.spawn(&["-D"]);
    let st = srv.wait_exit(START_TIMEOUT);
    let text = srv.log_text();
    assert!(
        st.is_some_and(|s| !s.success()),
        "lightd did not fail to start ({st:?})\n{text}"
    );
    assert!(
        listen_addrs(&text).is_empty(),
        "it listened before failing:\n{text}"
    );
    text
}

/// A config for the -tt tests: the TLS block with `pemfile` and `privkey`, placeholders
/// filled as `TlsServer` would (no listener is opened by -tt).
fn cert_config(b: Builder, pemfile: &Path, privkey: &Path) -> (Builder, String) {
    let text = format!(
        "{BASE}$SERVER[\"socket\"] == \"{{tls}}\" {{\n  ssl.engine = \"enable\"\n  \
         ssl.pemfile = \"{}\"\n  ssl.privkey = \"{}\"\n}}\n",
        s(pemfile),
        s(privkey)
    );
    let (port, tls) = match against() {
        Against::Lightd => ("0".to_string(), "127.0.0.1:0".to_string()),
        Against::Lighttpd => (
            free_port().to_string(),
            format!("127.0.0.1:{}", free_port()),
        ),
    };
    let text = text.replace("{port}", &port).replace("{tls}", &tls);
    let b = b.raw_config(&text);
    let written = b.config_text();
    (b, written)
}

/// The control for the certificate-error tests: the same config with a good certificate and
/// its own key passes `-tt`, so the error is about the files, not the config around them.
fn good_config_passes(pki: &Pki) {
    let (b, _) = cert_config(hello(), &pki.localhost.cert, &pki.localhost.key);
    let (ok, out) = preflight(&b);
    assert!(ok, "-tt refused a good certificate and key:\n{out}");
}

#[test]
fn a_missing_certificate_is_a_config_error_with_file_and_line() {
    let pki = Pki::new();
    good_config_passes(&pki);
    let missing = pki.dir().join("no-such-cert.pem");
    let (b, text) = cert_config(hello(), &missing, &pki.localhost.key);
    let (ok, out) = preflight(&b);
    assert!(!ok, "-tt accepted a missing certificate:\n{out}");
    assert!(out.contains(s(&missing)), "the file is not named:\n{out}");
    if against() == Against::Lightd {
        let at = format!("lightd.conf:{}", line_of(&text, "ssl.pemfile"));
        assert!(out.contains(&at), "no {at} in:\n{out}");
        let started = start_fails(b);
        assert!(started.contains(&at), "no {at} at start:\n{started}");
    }
}

#[test]
fn a_key_that_does_not_match_is_a_config_error_with_file_and_line() {
    let pki = Pki::new();
    good_config_passes(&pki);
    let (b, text) = cert_config(hello(), &pki.localhost.cert, &pki.a_test.key);
    let (ok, out) = preflight(&b);
    assert!(!ok, "-tt accepted a key of another certificate:\n{out}");
    if against() == Against::Lightd {
        // The mismatch is between two keys: either line may be the one named.
        let pem = format!("lightd.conf:{}", line_of(&text, "ssl.pemfile"));
        let key = format!("lightd.conf:{}", line_of(&text, "ssl.privkey"));
        assert!(
            out.contains(&pem) || out.contains(&key),
            "neither {pem} nor {key} in:\n{out}"
        );
        let started = start_fails(b);
        assert!(
            started.contains(&pem) || started.contains(&key),
            "neither {pem} nor {key} at start:\n{started}"
        );
    }
}

#[test]
fn a_key_file_that_is_not_a_key_is_a_config_error() {
    let pki = Pki::new();
    good_config_passes(&pki);
    // A certificate where the key should be.
    let (b, text) = cert_config(hello(), &pki.localhost.cert, &pki.a_test.cert);
    let (ok, out) = preflight(&b);
    assert!(!ok, "-tt accepted a certificate as the key:\n{out}");
    if against() == Against::Lightd {
        let key = format!("lightd.conf:{}", line_of(&text, "ssl.privkey"));
        assert!(out.contains(&key), "no {key} in:\n{out}");
    }
}

#[test]
fn an_expired_certificate_is_reported() {
    let pki = Pki::new();
    good_config_passes(&pki);
    let (b, _) = cert_config(hello(), &pki.expired.cert, &pki.expired.key);
    let (_, out) = preflight(&b);
    assert!(
        out.to_ascii_lowercase().contains("expired") && out.contains(s(&pki.expired.cert)),
        "an expired certificate is not reported:\n{out}"
    );
}

#[test]
fn a_certificate_expiring_within_7_days_gives_a_warning_at_start() {
    if against() == Against::Lighttpd {
        eprintln!("note: lighttpd does not warn about a certificate that is still valid");
        return;
    }
    let pki = Pki::new();
    let mut srv = start(hello(), &pki.soon, "", "");
    // It starts and serves, with the soon-to-expire certificate...
    still_serves_with(&mut srv, &pki, "CN = localhost, O = soon");
    // ...and said so when it loaded it.
    let log = srv.log_text();
    assert!(
        log.to_ascii_lowercase().contains("expire") && log.contains(s(&pki.soon.cert)),
        "no expiry warning naming the certificate:\n{log}"
    );
    // An ordinary certificate (30 days) gives no such warning.
    let srv = start(hello(), &pki.localhost, "", "");
    let log = srv.log_text();
    assert!(
        !log.contains(s(&pki.localhost.cert)),
        "a warning about a certificate valid for 30 days:\n{log}"
    );
}

fn still_serves_with(srv: &mut TlsServer, pki: &Pki, subject: &str) {
    still_serves(srv, pki);
    let r = s_client(
        srv.tls(),
        &args(&verify_args(pki)),
        &get_close("localhost", "/hello.txt"),
        CLIENT_TIMEOUT,
    );
    assert_eq!(
        peer_subject(&r.stdout_text()).as_deref(),
        Some(subject),
        "{}",
        r.describe()
    );
}

// ---------------------------------------------------------------------------------------------
// Client-certificate settings lightd cannot honour as written, and checks that must hold
// ---------------------------------------------------------------------------------------------

/// The TLS config of `cert_config` with `extra` appended: `-tt`'s verdict, its output and the
/// config as written.
fn tt_with(pki: &Pki, extra: &str) -> (bool, String, String) {
    let (b, text) = cert_config(hello(), &pki.localhost.cert, &pki.localhost.key);
    let b = b.raw_config(&format!("{text}{extra}\n"));
    let text = b.config_text();
    let (ok, out) = preflight(&b);
    (ok, out, text)
}

/// Client certificates are checked at the handshake, before the URL is known: a
/// client-certificate key in a URL block (or the else after one) would never apply, and what
/// it protects would be served unchecked. A config error with file:line, not a warning.
#[test]
fn client_certificate_keys_in_undecidable_blocks_are_refused() {
    if against() != Against::Lightd {
        return;
    }
    let pki = Pki::new();
    let ca = s(&pki.ca);
    for extra in [
        format!(
            "$HTTP[\"url\"] =~ \"^/admin\" {{\n  ssl.ca-file = \"{ca}\"\n  \
             ssl.verifyclient.activate = \"enable\"\n}}"
        ),
        format!(
            "$HTTP[\"useragent\"] == \"x\" {{\n}}\nelse {{\n  ssl.ca-file = \"{ca}\"\n  \
             ssl.verifyclient.activate = \"enable\"\n}}"
        ),
    ] {
        let (ok, out, text) = tt_with(&pki, &extra);
        assert!(!ok, "-tt accepted:\n{extra}\n{out}");
        let at = format!("lightd.conf:{}", line_of(&text, "ssl.ca-file = "));
        assert!(out.contains(&at), "no {at} in:\n{out}");
        assert!(out.contains("during the TLS handshake"), "{out}");
    }
    // A host block is decided at the handshake (by SNI): accepted.
    let (ok, out, _) = tt_with(
        &pki,
        &format!(
            "$HTTP[\"host\"] == \"a.test\" {{\n  ssl.ca-file = \"{ca}\"\n  \
             ssl.verifyclient.activate = \"enable\"\n}}"
        ),
    );
    assert!(ok, "{out}");
}

/// Keys that would restrict clients in ways lightd cannot enforce are config errors.
#[test]
fn restrictions_lightd_cannot_enforce_are_config_errors() {
    if against() != Against::Lightd {
        return;
    }
    let pki = Pki::new();
    let ca = s(&pki.ca);
    let block = |k: &str| format!("$SERVER[\"socket\"] == \"127.0.0.1:1\" {{\n{k}\n}}");
    for (extra, why) in [
        (format!("ssl.ca-dn-file = \"{ca}\""), "ssl.ca-dn-file"),
        (
            format!("ssl.verifyclient.ca-dn-file = \"{ca}\""),
            "ssl.verifyclient.ca-dn-file",
        ),
        (
            block("ssl.openssl.ssl-conf-cmd = (\"CipherString\" => \"HIGH:@SECLEVEL=3\")"),
            "@SECLEVEL=3",
        ),
        (
            block("ssl.openssl.ssl-conf-cmd = (\"SecurityLevel\" => \"4\")"),
            "security levels",
        ),
        (
            block("ssl.openssl.ssl-conf-cmd = (\"Groups\" => \"X25519:-P-256\")"),
            "-P-256",
        ),
        (
            "server.feature-flags += (\"ssl.refresh-crls\" => \"enable\")".to_string(),
            "ssl.refresh-crls",
        ),
    ] {
        let (ok, out, _) = tt_with(&pki, &extra);
        assert!(!ok, "-tt accepted:\n{extra}\n{out}");
        assert!(out.contains(why), "{why} not named:\n{out}");
    }
}

/// A request whose Host has other client-certificate settings than the name the handshake
/// was made for (SNI) gets 421: it was not checked as its settings say.
#[test]
fn a_host_with_other_client_checks_than_the_handshake_gets_421() {
    if against() != Against::Lightd {
        return;
    }
    let pki = Pki::new();
    let more = format!(
        "$HTTP[\"host\"] == \"b.test\" {{\n  ssl.pemfile = \"{}\"\n  ssl.privkey = \"{}\"\n  \
         ssl.ca-file = \"{}\"\n  ssl.verifyclient.activate = \"enable\"\n}}\n",
        s(&pki.b_test.cert),
        s(&pki.b_test.key),
        s(&pki.ca)
    );
    let srv = start(hello(), &pki.localhost, "", &more);
    // Handshake as localhost (no client certificate asked), then ask for b.test.
    let mut a = vec!["-servername".to_string(), "localhost".to_string()];
    a.extend(verify_args(&pki));
    let r = s_client(
        srv.tls(),
        &args(&a),
        &get_close("b.test", "/hello.txt"),
        CLIENT_TIMEOUT,
    );
    let out = r.stdout_text();
    assert!(out.contains("HTTP/1.1 421 "), "{}", r.describe());
    assert!(!out.contains("hello over TLS"), "{}", r.describe());
    // The same host on its own handshake asks for the certificate (and has none: refused).
    let f = curl(&pki.ca, srv.tls(), "b.test", &["/hello.txt"], &[]);
    assert!(
        f.is_err(),
        "b.test served without a client certificate: {f:?}"
    );
    // And localhost for localhost is served as before.
    let f = curl_get(&pki.ca, srv.tls(), "localhost", "/hello.txt");
    assert_eq!(f.code, 200, "{f:?}");
}

/// `ssl.verifyclient.depth`: a client certificate issued by an intermediate CA needs a depth
/// of at least 1 (OpenSSL's count), and is refused at 0.
#[test]
fn verifyclient_depth_limits_the_chain() {
    if against() != Against::Lightd {
        return;
    }
    let pki = Pki::new();
    let d = pki.dir();
    let sh = |script: &str| {
        let r = run_bounded(
            Command::new("sh").arg("-ec").arg(script).current_dir(d),
            b"",
            CLIENT_TIMEOUT,
        );
        assert!(r.ok(), "{}", r.describe());
    };
    // An intermediate CA under the test CA, and a client certificate from it; the client
    // sends its certificate and the intermediate.
    let ca_key = pki.ca.with_file_name("ca.key");
    assert!(
        ca_key.exists(),
        "the test CA's key is not at {}",
        ca_key.display()
    );
    sh(&format!(
        "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
         -keyout inter.key -out inter.csr -subj '/CN=intermediate'
         printf 'basicConstraints=critical,CA:TRUE\\nkeyUsage=critical,keyCertSign,cRLSign\\n' > inter.ext
         openssl x509 -req -in inter.csr -CA '{ca}' -CAkey '{key}' -CAcreateserial -days 3 \
         -extfile inter.ext -out inter.pem
         openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
         -keyout leaf.key -out leaf.csr -subj '/CN=deep client'
         printf 'extendedKeyUsage=clientAuth\\n' > leaf.ext
         openssl x509 -req -in leaf.csr -CA inter.pem -CAkey inter.key -CAcreateserial \
         -days 3 -extfile leaf.ext -out leaf.pem
         cat leaf.pem inter.pem > leaf-chain.pem",
        ca = s(&pki.ca),
        key = s(&ca_key)
    ));
    for (depth, served) in [(0, false), (1, true)] {
        let extra = format!(
            "  ssl.ca-file = \"{}\"\n  ssl.verifyclient.activate = \"enable\"\n  \
             ssl.verifyclient.depth = {depth}",
            s(&pki.ca)
        );
        let srv = start(hello(), &pki.localhost, &extra, "");
        let cert = d.join("leaf-chain.pem");
        let key = d.join("leaf.key");
        let r = curl(
            &pki.ca,
            srv.tls(),
            "localhost",
            &["/hello.txt"],
            &["--cert", s(&cert), "--key", s(&key)],
        );
        match (served, r) {
            (true, Ok(f)) => assert_eq!(f[0].code, 200, "depth {depth}: {f:?}"),
            (false, Err(_)) => {}
            (want, got) => panic!("depth {depth}: served should be {want}: {got:?}"),
        }
    }
}
