//! mod_auth against the real binary: Basic and Digest with the plain, htpasswd and htdigest
//! backends, lighttpd's own test cases (tests/request.t), the delay after wrong credentials,
//! and the config errors.

#![cfg(feature = "auth")]

mod common;

use common::*;
use md5::{Digest, Md5};
use std::time::{Duration, Instant};

/// Verbatim copies of lighttpd's tests/lighttpd.user and tests/lighttpd.htpasswd.
const LIGHTTPD_USER: &str = "jan:jan\n";
const LIGHTTPD_HTPASSWD: &str = "# some comment\nsha:{SHA}2PRZAyDhNDqRW2OUFwZQqPNdaSY=\n\n\
                                 apr-md5:$apr1$w2kLqmDN$uMe8ZCfMRT81wf43Y1hny0";

/// Where the shared copy of lighttpd's suite lives on the build machines.
const SUITE: &str = "/work/shared/lighttpd-tests/tests";

/// Tests that do not measure the delay switch it off, so a wrong password is answered at once.
const NO_DELAY: &str = "server.feature-flags = ( \"auth.delay-invalid-creds\" => \"disable\" )";

fn b64(input: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in input.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(T[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn basic(user: &str, pw: &str) -> String {
    format!(
        "Authorization: Basic {}",
        b64(format!("{user}:{pw}").as_bytes())
    )
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn md5(s: &str) -> String {
    hex(&Md5::digest(s.as_bytes()))
}

fn sha256(s: &str) -> String {
    hex(&sha2::Sha256::digest(s.as_bytes()))
}

/// One request on a new connection, with extra header lines.
fn fetch(s: &Server, path: &str, headers: &[&str]) -> Response {
    s.request(&req("GET", path, headers))
}

/// A parameter of a challenge: `name="value"` or `name=token`.
fn param(challenge: &str, name: &str) -> Option<String> {
    let at = challenge.find(&format!("{name}="))? + name.len() + 1;
    let rest = &challenge[at..];
    if let Some(q) = rest.strip_prefix('"') {
        q.split('"').next().map(str::to_string)
    } else {
        rest.split(',').next().map(|v| v.trim().to_string())
    }
}

/// The Authorization line answering a Digest challenge (qop=auth), RFC 7616 §3.4.1.
#[allow(clippy::too_many_arguments)]
fn digest_auth(
    hash: fn(&str) -> String,
    algo: &str,
    user: &str,
    realm: &str,
    pw: &str,
    nonce: &str,
    method: &str,
    uri: &str,
) -> String {
    let (nc, cnonce) = ("00000001", "0a4f113b");
    let ha1 = hash(&format!("{user}:{realm}:{pw}"));
    let ha2 = hash(&format!("{method}:{uri}"));
    let resp = hash(&format!("{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}"));
    format!(
        "Authorization: Digest username=\"{user}\", realm=\"{realm}\", nonce=\"{nonce}\", \
         uri=\"{uri}\", algorithm={algo}, qop=auth, nc={nc}, cnonce=\"{cnonce}\", \
         response=\"{resp}\""
    )
}

/// A server with `/admin/` behind `method` and the given backend lines.
fn server(method: &str, require: &str, backend: &str) -> Server {
    builder()
        .file("admin/secret.txt", "secret\n")
        .file("public.txt", "public\n")
        .dir_file("lighttpd.user", LIGHTTPD_USER)
        .dir_file("lighttpd.htpasswd", LIGHTTPD_HTPASSWD)
        .config(&format!(
            "server.modules = ( \"mod_auth\", \"mod_authn_file\" )\n{NO_DELAY}\n{backend}\n\
             auth.require = ( \"/admin/\" => ( \"method\" => \"{method}\", \
             \"realm\" => \"download archiv\", \"require\" => \"{require}\" ) )"
        ))
        .start()
}

fn plain(method: &str, require: &str) -> Server {
    server(
        method,
        require,
        "auth.backend = \"plain\"\nauth.backend.plain.userfile = \"{dir}/lighttpd.user\"",
    )
}

#[test]
fn basic_plain() {
    let s = plain("basic", "valid-user");
    // Outside the protected prefix, nothing changes.
    assert_eq!(fetch(&s, "/public.txt", &[]).status, 200);

    let r = fetch(&s, "/admin/secret.txt", &[]);
    assert_eq!(r.status, 401, "{}", r.describe());
    assert_eq!(
        r.header("WWW-Authenticate"),
        Some("Basic realm=\"download archiv\", charset=\"UTF-8\""),
        "{}",
        r.head
    );
    assert!(r.text().contains("401 Unauthorized"), "{}", r.describe());
    assert!(
        !r.has_close(),
        "a missing header is no failed guess\n{}",
        r.head
    );

    let r = fetch(&s, "/admin/secret.txt", &[&basic("jan", "jan")]);
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.text(), "secret\n");
    assert_eq!(r.header("WWW-Authenticate"), None);

    for (user, pw) in [("jan", "wrong"), ("nobody", "jan"), ("jan", "")] {
        let r = fetch(&s, "/admin/secret.txt", &[&basic(user, pw)]);
        assert_eq!(r.status, 401, "{user}:{pw}\n{}", r.describe());
        assert!(r.has_close(), "{}", r.head);
        assert_eq!(
            r.header("WWW-Authenticate"),
            Some("Basic realm=\"download archiv\", charset=\"UTF-8\"")
        );
    }

    // Not base64, or no colon inside: the request is malformed.
    for bad in ["Authorization: Basic !!!", "Authorization: Basic ="] {
        let r = fetch(&s, "/admin/secret.txt", &[bad]);
        assert_eq!(r.status, 400, "{bad}\n{}", r.describe());
    }
    // Another scheme is a missing Basic header: a challenge.
    let r = fetch(&s, "/admin/secret.txt", &["Authorization: Bearer abc"]);
    assert_eq!(r.status, 401, "{}", r.describe());

    // The user stays on a keep-alive connection for the next request.
    let mut c = s.connect();
    for _ in 0..3 {
        c.send(&req("GET", "/admin/secret.txt", &[&basic("jan", "jan")]));
        let r = c.read_response();
        assert_eq!(r.status, 200, "{}", r.describe());
        assert!(!r.has_close());
    }
}

#[test]
fn require_user() {
    let s = builder()
        .file("admin/secret.txt", "secret\n")
        .dir_file("users", "jan:jan\nkim:kim\n")
        .config(&format!(
            "server.modules = ( \"mod_auth\" )\n{NO_DELAY}\nauth.backend = \"plain\"\n\
             auth.backend.plain.userfile = \"{{dir}}/users\"\n\
             auth.require = ( \"/admin/\" => ( \"method\" => \"basic\", \"realm\" => \"r\", \
             \"require\" => \"user=kim|user=someone\" ) )"
        ))
        .start();
    assert_eq!(
        fetch(&s, "/admin/secret.txt", &[&basic("kim", "kim")]).status,
        200
    );
    // jan's password is right, but the rule does not name jan: 401 again, as in lighttpd.
    let r = fetch(&s, "/admin/secret.txt", &[&basic("jan", "jan")]);
    assert_eq!(r.status, 401, "{}", r.describe());
    assert_eq!(
        fetch(&s, "/admin/secret.txt", &[&basic("kim", "jan")]).status,
        401
    );
}

#[test]
fn htpasswd_sha_apr1_and_crypt() {
    let lines = format!(
        "{LIGHTTPD_HTPASSWD}\ndes:abHmYwzWPQJxg\nmd5:$1$saltsalt$e78r986ZkPTVusZhQh1NA/\n\
         sha5:$5$saltsalt$NNNBdCgM/XxNaTVhCvvuuaSk9sXmyeviFZ8OLJI5yc3\n\
         sha6:$6$saltsalt$mdwUWMbm1St1AH6pJ7pGT4QTwKjc2ldwqql1wKwF.uect.z//NUW4p29u2VVRBcE6JTZYWfSDgI7CCp5qCg.g.\n"
    );
    let s = builder()
        .file("admin/secret.txt", "secret\n")
        .dir_file("htpasswd", lines)
        .config(&format!(
            "server.modules = ( \"mod_auth\" )\n{NO_DELAY}\nauth.backend = \"htpasswd\"\n\
             auth.backend.htpasswd.userfile = \"{{dir}}/htpasswd\"\n\
             auth.require = ( \"/admin/\" => ( \"method\" => \"basic\", \"realm\" => \"r\", \
             \"require\" => \"valid-user\" ) )"
        ))
        .start();
    for (user, good, bad) in [
        ("sha", "sha", "shb"),
        ("apr-md5", "apr-md5", "apr-md6"),
        ("des", "des-pw", "des-px"),
        ("md5", "md5-pw", "md5-px"),
        ("sha5", "sha5-pw", "sha5-px"),
        ("sha6", "sha6-pw", "sha6-px"),
    ] {
        let r = fetch(&s, "/admin/secret.txt", &[&basic(user, good)]);
        assert_eq!(r.status, 200, "{user}:{good}\n{}", r.describe());
        let r = fetch(&s, "/admin/secret.txt", &[&basic(user, bad)]);
        assert_eq!(r.status, 401, "{user}:{bad}\n{}", r.describe());
    }
}

#[test]
fn htdigest_basic_and_digest() {
    let line = format!("kim:secret area:{}\n", md5("kim:secret area:pw"));
    let s = builder()
        .file("b/x.txt", "basic\n")
        .file("d/x.txt", "digest\n")
        .dir_file(
            "htdigest",
            format!("# comment\nother:elsewhere:{}\n{line}", md5("x")),
        )
        .config(&format!(
            "server.modules = ( \"mod_auth\" )\n{NO_DELAY}\nauth.backend = \"htdigest\"\n\
             auth.backend.htdigest.userfile = \"{{dir}}/htdigest\"\n\
             auth.require = ( \"/b/\" => ( \"method\" => \"basic\", \"realm\" => \"secret area\", \
             \"require\" => \"valid-user\" ), \"/d/\" => ( \"method\" => \"digest\", \
             \"realm\" => \"secret area\", \"require\" => \"valid-user\" ) )"
        ))
        .start();
    assert_eq!(fetch(&s, "/b/x.txt", &[&basic("kim", "pw")]).status, 200);
    assert_eq!(fetch(&s, "/b/x.txt", &[&basic("kim", "px")]).status, 401);

    let ch = fetch(&s, "/d/x.txt", &[]);
    let www = ch
        .header("WWW-Authenticate")
        .unwrap_or_default()
        .to_string();
    let nonce = param(&www, "nonce").expect("a nonce");
    let auth = digest_auth(
        md5,
        "MD5",
        "kim",
        "secret area",
        "pw",
        &nonce,
        "GET",
        "/d/x.txt",
    );
    let r = fetch(&s, "/d/x.txt", &[&auth]);
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.text(), "digest\n");
}

#[test]
fn digest_flow() {
    let s = plain("digest", "valid-user");
    let r = fetch(&s, "/admin/secret.txt?x=1", &[]);
    assert_eq!(r.status, 401, "{}", r.describe());
    let www = r.header("WWW-Authenticate").unwrap_or_default().to_string();
    assert!(
        www.starts_with(
            "Digest realm=\"download archiv\", charset=\"UTF-8\", algorithm=MD5, nonce=\""
        ),
        "{www}"
    );
    assert!(www.ends_with("\", qop=\"auth\""), "{www}");
    assert_eq!(param(&www, "stale"), None);
    let nonce = param(&www, "nonce").expect("a nonce");

    // The uri is the request-target as sent, query included.
    let target = "/admin/secret.txt?x=1";
    let good = digest_auth(
        md5,
        "MD5",
        "jan",
        "download archiv",
        "jan",
        &nonce,
        "GET",
        target,
    );
    let r = fetch(&s, target, &[&good]);
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.text(), "secret\n");
    // HEAD computes with its own method.
    let head = digest_auth(
        md5,
        "MD5",
        "jan",
        "download archiv",
        "jan",
        &nonce,
        "HEAD",
        target,
    );
    let mut c = s.connect();
    c.send(&req("HEAD", target, &[&head]));
    assert_eq!(c.read_head_response().status, 200);

    // The wrong password: 401 with a new challenge, and the connection ends.
    let bad = digest_auth(
        md5,
        "MD5",
        "jan",
        "download archiv",
        "jab",
        &nonce,
        "GET",
        target,
    );
    let r = fetch(&s, target, &[&bad]);
    assert_eq!(r.status, 401, "{}", r.describe());
    assert!(r.has_close(), "{}", r.head);
    assert!(r
        .header("WWW-Authenticate")
        .unwrap_or_default()
        .starts_with("Digest "));

    // A response computed for another uri than the request's: malformed (lighttpd: 400).
    let other = digest_auth(
        md5,
        "MD5",
        "jan",
        "download archiv",
        "jan",
        &nonce,
        "GET",
        "/admin/",
    );
    let r = fetch(&s, target, &[&other]);
    assert_eq!(r.status, 400, "{}", r.describe());

    // An expired nonce (its time more than 10 minutes back): stale=true, ask again silently.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let old = format!("{:x}:1234:{}", now - 3600, md5("whatever"));
    let stale = digest_auth(
        md5,
        "MD5",
        "jan",
        "download archiv",
        "jan",
        &old,
        "GET",
        target,
    );
    let r = fetch(&s, target, &[&stale]);
    assert_eq!(r.status, 401, "{}", r.describe());
    let www = r.header("WWW-Authenticate").unwrap_or_default();
    assert!(www.ends_with(", stale=true"), "{www}");
    assert!(
        !r.has_close(),
        "a stale nonce is no failed guess\n{}",
        r.head
    );

    // A nonce in date but not made by this process (another instance's): stale too.
    let forged = format!("{:x}:1234:{}", now - 5, md5("not ours"));
    let auth = digest_auth(
        md5,
        "MD5",
        "jan",
        "download archiv",
        "jan",
        &forged,
        "GET",
        target,
    );
    let r = fetch(&s, target, &[&auth]);
    assert_eq!(r.status, 401, "{}", r.describe());
    assert!(r
        .header("WWW-Authenticate")
        .unwrap_or_default()
        .ends_with(", stale=true"));
}

#[test]
fn digest_sha256() {
    let s = builder()
        .file("admin/secret.txt", "secret\n")
        .dir_file("lighttpd.user", LIGHTTPD_USER)
        .config(&format!(
            "server.modules = ( \"mod_auth\" )\n{NO_DELAY}\nauth.backend = \"plain\"\n\
             auth.backend.plain.userfile = \"{{dir}}/lighttpd.user\"\n\
             auth.require = ( \"/admin/\" => ( \"method\" => \"digest\", \"realm\" => \"r\", \
             \"require\" => \"valid-user\", \"algorithm\" => \"SHA-256|MD5\" ) )"
        ))
        .start();
    let r = fetch(&s, "/admin/secret.txt", &[]);
    // One challenge per algorithm, the strongest first.
    assert_eq!(r.header_count("WWW-Authenticate"), 2, "{}", r.head);
    let www = r.header("WWW-Authenticate").unwrap_or_default().to_string();
    assert!(www.contains("algorithm=SHA-256"), "{www}");
    let nonce = param(&www, "nonce").expect("a nonce");
    let auth = digest_auth(
        sha256,
        "SHA-256",
        "jan",
        "r",
        "jan",
        &nonce,
        "GET",
        "/admin/secret.txt",
    );
    let r = fetch(&s, "/admin/secret.txt", &[&auth]);
    assert_eq!(r.status, 200, "{}", r.describe());
}

/// Wrong credentials are answered after about a second, on a closed connection; right ones
/// and missing ones at once; with the feature flag off, wrong ones at once too.
#[test]
fn delay_after_invalid_credentials() {
    let start = |flag: &str| {
        builder()
            .file("admin/secret.txt", "secret\n")
            .dir_file("lighttpd.user", LIGHTTPD_USER)
            .config(&format!(
                "server.modules = ( \"mod_auth\" )\n{flag}\nauth.backend = \"plain\"\n\
                 auth.backend.plain.userfile = \"{{dir}}/lighttpd.user\"\n\
                 auth.require = ( \"/admin/\" => ( \"method\" => \"basic\", \"realm\" => \"r\", \
                 \"require\" => \"valid-user\" ) )"
            ))
            .start()
    };
    let timed = |s: &Server, h: &[&str]| {
        let t = Instant::now();
        let r = fetch(s, "/admin/secret.txt", h);
        (r.status, t.elapsed())
    };
    let s = start("");
    let (st, t) = timed(&s, &[&basic("jan", "wrong")]);
    assert_eq!(st, 401);
    assert!(
        t >= Duration::from_millis(900),
        "a wrong password answered after {t:?}"
    );
    assert!(t < Duration::from_secs(5), "{t:?}");
    let (st, t) = timed(&s, &[&basic("jan", "jan")]);
    assert_eq!(st, 200);
    assert!(
        t < Duration::from_millis(500),
        "a right password answered after {t:?}"
    );
    let (st, t) = timed(&s, &[]);
    assert_eq!(st, 401);
    assert!(
        t < Duration::from_millis(500),
        "a missing header answered after {t:?}"
    );
    // The held response does not hold up anyone else.
    let mut held = s.connect();
    held.send(&req("GET", "/admin/secret.txt", &[&basic("jan", "wrong")]));
    let (st, t) = timed(&s, &[&basic("jan", "jan")]);
    assert_eq!((st, t < Duration::from_millis(500)), (200, true), "{t:?}");
    assert_eq!(held.read_response().status, 401);

    let s = start("server.feature-flags = ( \"auth.delay-invalid-creds\" => \"disable\" )");
    let (st, t) = timed(&s, &[&basic("jan", "wrong")]);
    assert_eq!(st, 401);
    assert!(t < Duration::from_millis(500), "with the delay off: {t:?}");
}

/// A graceful stop still sends a held 401 (at its time) before the process ends.
#[test]
fn held_response_goes_out_during_a_drain() {
    let mut s = builder()
        .file("admin/secret.txt", "secret\n")
        .dir_file("lighttpd.user", LIGHTTPD_USER)
        .config(
            "server.modules = ( \"mod_auth\" )\nauth.backend = \"plain\"\n\
             auth.backend.plain.userfile = \"{dir}/lighttpd.user\"\n\
             auth.require = ( \"/admin/\" => ( \"method\" => \"basic\", \"realm\" => \"r\", \
             \"require\" => \"valid-user\" ) )",
        )
        .start();
    let mut c = s.connect();
    let t = Instant::now();
    c.send(&req("GET", "/admin/secret.txt", &[&basic("jan", "wrong")]));
    // The request is in (and held) once the failure is logged.
    assert!(
        s.wait_log("password doesn't match", Duration::from_secs(5)),
        "{}",
        s.stderr()
    );
    s.signal(libc::SIGINT);
    let r = c.read_response();
    assert_eq!(r.status, 401, "{}", r.describe());
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );
    assert!(
        s.wait_exit(Duration::from_secs(10)).is_some(),
        "lightd did not stop"
    );
}

/// The realm comes from the auth.require entry that covers the path.
#[test]
fn realm_per_entry() {
    let s = builder()
        .dir_file("lighttpd.user", LIGHTTPD_USER)
        .config(&format!(
            "server.modules = ( \"mod_auth\" )\n{NO_DELAY}\nauth.backend = \"plain\"\n\
             auth.backend.plain.userfile = \"{{dir}}/lighttpd.user\"\n\
             auth.require = (\n\
               \"/a/inner/\" => ( \"method\" => \"basic\", \"realm\" => \"inner\", \"require\" => \"valid-user\" ),\n\
               \"/a/\" => ( \"method\" => \"basic\", \"realm\" => \"outer\", \"require\" => \"valid-user\" ),\n\
               \"/d/\" => ( \"method\" => \"digest\", \"realm\" => \"dig\", \"require\" => \"valid-user\" ),\n\
             )"
        ))
        .start();
    for (path, want) in [
        ("/a/x", "Basic realm=\"outer\""),
        ("/a/inner/x", "Basic realm=\"inner\""),
        ("/d/x", "Digest realm=\"dig\""),
    ] {
        let r = fetch(&s, path, &[]);
        assert_eq!(r.status, 401, "{path}");
        let www = r.header("WWW-Authenticate").unwrap_or_default();
        assert!(www.starts_with(want), "{path}: {www}");
    }
    assert_eq!(fetch(&s, "/b/x", &[]).status, 404);
}

/// Protection inside a $HTTP["host"] block covers that host only.
#[test]
fn protected_path_in_a_host_block() {
    let s = builder()
        .file("admin/secret.txt", "secret\n")
        .dir_file("lighttpd.user", LIGHTTPD_USER)
        .config(&format!(
            "server.modules = ( \"mod_auth\", \"mod_authn_file\" )\n{NO_DELAY}\n\
             $HTTP[\"host\"] == \"private.example\" {{\n\
               auth.backend = \"plain\"\n\
               auth.backend.plain.userfile = \"{{dir}}/lighttpd.user\"\n\
               auth.require = ( \"/admin/\" => ( \"method\" => \"basic\", \"realm\" => \"p\", \
               \"require\" => \"valid-user\" ) )\n\
             }}"
        ))
        .start();
    let on = |host: &str, extra: &str| {
        let mut raw = format!("GET /admin/secret.txt HTTP/1.1\r\nHost: {host}\r\n");
        if !extra.is_empty() {
            raw.push_str(extra);
            raw.push_str("\r\n");
        }
        raw.push_str("\r\n");
        s.request(raw.as_bytes())
    };
    assert_eq!(on("public.example", "").status, 200);
    assert_eq!(on("private.example", "").status, 401);
    assert_eq!(on("private.example", &basic("jan", "jan")).status, 200);
}

/// With server.force-lowercase-filenames an auth.require prefix covers every spelling of
/// the path (lighttpd's "lowercase-auth" block in request.t), and a good login still gets
/// the file; without it, a differently spelled path is simply another (missing) file.
#[test]
fn protected_path_with_lowercase_filenames() {
    let s = builder()
        .file("image.jpg", "a jpeg\n")
        .dir_file("lighttpd.user", LIGHTTPD_USER)
        .config(&format!(
            "server.modules = ( \"mod_auth\", \"mod_authn_file\" )\n{NO_DELAY}\n\
             auth.backend = \"plain\"\n\
             auth.backend.plain.userfile = \"{{dir}}/lighttpd.user\"\n\
             auth.require = ( \"/image.jpg\" => ( \"method\" => \"basic\", \
             \"realm\" => \"download archiv\", \"require\" => \"valid-user\" ) )\n\
             $HTTP[\"host\"] == \"lowercase-auth\" {{\n\
               server.force-lowercase-filenames = \"enable\"\n\
             }}"
        ))
        .start();
    let on = |host: &str, path: &str, extra: &str| {
        let mut raw = format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n");
        if !extra.is_empty() {
            raw.push_str(extra);
            raw.push_str("\r\n");
        }
        raw.push_str("\r\n");
        s.request(raw.as_bytes())
    };
    for path in ["/image.jpg", "/image.JPG", "/IMAGE.Jpg"] {
        let r = on("lowercase-auth", path, "");
        assert_eq!(r.status, 401, "{path}\n{}", r.describe());
        assert!(r.header("WWW-Authenticate").is_some(), "{path}");
        assert!(!r.text().contains("a jpeg"), "{path} leaked");
        let r = on("lowercase-auth", path, &basic("jan", "jan"));
        assert_eq!((r.status, r.text().as_str()), (200, "a jpeg\n"), "{path}");
    }
    assert_eq!(on("exact", "/image.jpg", "").status, 401);
    assert_eq!(on("exact", "/image.JPG", "").status, 404);
}

/// lighttpd's own mod_auth cases (tests/request.t with its tests/lighttpd.conf blocks), with
/// the user files from its suite when this machine has it, else the copies above. The paths
/// are files here: mod_status answers them in lighttpd.
#[test]
fn lighttpd_suite_cases() {
    let suite = std::path::Path::new(SUITE);
    let (user, htpasswd) = if suite.join("lighttpd.user").is_file() {
        (
            std::fs::read_to_string(suite.join("lighttpd.user")).unwrap(),
            std::fs::read_to_string(suite.join("lighttpd.htpasswd")).unwrap(),
        )
    } else {
        (LIGHTTPD_USER.to_string(), LIGHTTPD_HTPASSWD.to_string())
    };
    let s = builder()
        .file("server-status", "status\n")
        .file("server-config", "config\n")
        .dir_file("lighttpd.user", user)
        .dir_file("lighttpd.htpasswd", htpasswd)
        .config(
            r#"server.feature-flags += ( "auth.delay-invalid-creds" => "disable" )
server.modules = ( "mod_auth", "mod_authn_file" )
$HTTP["host"] =~ "^auth-" {
	$HTTP["host"] == "auth-htpasswd.example.org" {
		auth.backend = "htpasswd"
		auth.backend.htpasswd.userfile = "{dir}/lighttpd.htpasswd"
	}
	$HTTP["host"] == "auth-plain.example.org" {
		auth.backend = "plain"
		auth.backend.plain.userfile = "{dir}/lighttpd.user"
	}
	auth.require = (
		"/server-status" => (
			"method"  => "digest",
			"realm"   => "download archiv",
			"require" => "group=www|user=jan|host=192.168.2.10",
		),
		"/server-config" => (
			"method"  => "basic",
			"realm"   => "download archiv",
			"require" => "valid-user",
		),
	)
}"#,
        )
        .start();
    let cases: &[(&str, &str, &[u8], u16)] = &[
        ("Missing Auth-token", "plain", b"GET /server-status", 401),
        ("Invalid base64", "plain", b"GET /server-config\r\nAuthorization: Basic \x80mFuOmphb", 400),
        ("Wrong Auth-token", "plain", b"GET /server-config\r\nAuthorization: Basic bm90Oml0Cg==", 401),
        ("Valid - plain", "plain", b"GET /server-config\r\nAuthorization: Basic amFuOmphbg==", 200),
        ("Valid - htpasswd (sha)", "htpasswd", b"GET /server-config\r\nAuthorization: Basic c2hhOnNoYQ==", 200),
        ("htpasswd (sha, wrong)", "htpasswd", b"GET /server-config\r\nAuthorization: Basic c2hhOnNoYg==", 401),
        ("Valid - htpasswd (apr-md5)", "htpasswd", b"GET /server-config\r\nAuthorization: Basic YXByLW1kNTphcHItbWQ1", 200),
        ("htpasswd (apr-md5, wrong)", "htpasswd", b"GET /server-config\r\nAuthorization: Basic YXByLW1kNTphcHItbWQ2", 401),
        ("plain, unknown user", "plain", b"GET /server-config\r\nAuthorization: Basic bWQ1Om1kNA==", 401),
        ("Digest: missing qop, no crash", "plain", b"GET /server-status\r\nUser-Agent: Wget/1.9.1\r\nAuthorization: Digest username=\"jan\", realm=\"jan\", nonce=\"9a5428ccc05b086a08d918e73b01fc6f\",\r\n                uri=\"/server-status\", response=\"ea5f7d9a30b8b762f9610ccb87dea74f\"", 401),
        ("Digest: missing nc, no crash", "plain", b"GET /server-status\r\nUser-Agent: Wget/1.9.1\r\nAuthorization: Digest username=\"jan\", realm=\"jan\",\r\n\tnonce=\"b1d12348b4620437c43dd61c50ae4639\",\r\n\turi=\"/MJ-BONG.xm.mpc\", qop=auth, noncecount=00000001\",\r\n\tcnonce=\"036FCA5B86F7E7C4965C7F9B8FE714B7\",\r\n\tresponse=\"29B32C2953C763C6D033C8A49983B87E\"", 400),
        ("Basic: Invalid Base64 =", "plain", b"GET /server-config\r\nAuthorization: Basic =", 400),
        ("Digest: md5-sess + missing cnonce", "plain", b"GET /server-status\r\nAuthorization: Digest username=\"jan\", realm=\"download archiv\",\r\n\tnonce=\"b3b26457000000003a9b34a3cd56d26e48a52a498ac9765d4b\",\r\n\turi=\"/server-status\", qop=auth, nc=00000001,\r\n\talgorithm=\"md5-sess\", response=\"049b000fb00ab51dddea6f093a96aa2e\"", 400),
        ("Digest: stale nonce", "plain", b"GET /server-status\r\nAuthorization: Digest username=\"jan\", realm=\"download archiv\",\r\n\tnonce=\"b3b26457000000003a9b34a3cd56d26e48a52a498ac9765d4b\",\r\n\turi=\"/server-status\", qop=auth, nc=00000001, cnonce=\"65ee1b37\",\r\n\talgorithm=\"md5\", response=\"049b000fb00ab51dddea6f093a96aa2e\"", 401),
        ("Digest: BWS, trailing WS, stale nonce", "plain", b"GET /server-status\r\nAuthorization: Digest username = \"jan\", realm = \"download archiv\",\r\n\tnonce = \"b3b26457000000003a9b34a3cd56d26e48a52a498ac9765d4b\",\r\n\turi = \"/server-status\", qop = auth, nc = 00000001, cnonce = \"65ee1b37\",\r\n\talgorithm = \"md5\", response = \"049b000fb00ab51dddea6f093a96aa2e\"     ", 401),
    ];
    for (name, host, head, want) in cases {
        // request.t writes "METHOD PATH HTTP/1.0", the Host line, then the rest.
        let (line, rest) = match head.iter().position(|&b| b == b'\r') {
            Some(i) => head.split_at(i),
            None => (&head[..], &b""[..]),
        };
        let mut raw = line.to_vec();
        raw.extend_from_slice(format!(" HTTP/1.0\r\nHost: auth-{host}.example.org").as_bytes());
        raw.extend_from_slice(rest);
        raw.extend_from_slice(b"\r\n\r\n");
        // request.t continues long Authorization lines with obs-fold, which lightd unfolds
        // as lighttpd does (RFC 9112 §5.2), so mod_auth answers the bytes as sent; unfolded
        // by hand they get the same answer.
        let folded = raw
            .windows(3)
            .any(|w| w[..2] == *b"\r\n" && (w[2] == b' ' || w[2] == b'\t'));
        if folded {
            let by_hand = s.request(&unfold(&raw));
            assert_eq!(
                by_hand.status,
                *want,
                "{name}, unfolded\n{}",
                by_hand.describe()
            );
        }
        let r = s.request(&raw);
        assert_eq!(r.status, *want, "{name}\n{}", r.describe());
        if name.contains("stale") {
            let www = r.header("WWW-Authenticate").unwrap_or_default();
            assert!(www.ends_with(", stale=true"), "{name}: {www}");
        }
    }
}

/// A request head with obs-fold replaced by a space (RFC 9112 §5.2).
fn unfold(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i..].starts_with(b"\r\n") && matches!(raw.get(i + 2), Some(b' ' | b'\t')) {
            out.push(b' ');
            i += 2;
            while matches!(raw.get(i), Some(b' ' | b'\t')) {
                i += 1;
            }
        } else {
            out.push(raw[i]);
            i += 1;
        }
    }
    out
}

/// Bad auth values are config errors that name the file and line; loading mod_authn_file is
/// accepted; the other auth.* keys keep their classification.
#[test]
fn config_errors() {
    let check = |text: &str| builder().config(text).run(&["-t"]);
    let ok = check(
        "server.modules = ( \"mod_authn_file\" )\nauth.backend = \"htpasswd\"\n\
         auth.backend.htpasswd.userfile = \"/etc/htpasswd\"\n\
         auth.require = ( \"/\" => ( \"method\" => \"basic\", \"realm\" => \"a\", \"require\" => \"valid-user\" ) )",
    );
    assert!(ok.status.success(), "{}", ok.describe());
    for (text, line, needle) in [
        ("auth.backend = \"ldap\"", 4, "auth.backend"),
        ("auth.backend = \"plaintext\"", 4, "not supported"),
        (
            "auth.require = ( \"/\" => ( \"method\" => \"ntlm\", \"realm\" => \"a\", \"require\" => \"valid-user\" ) )",
            4,
            "unknown method \"ntlm\"",
        ),
        (
            "auth.require = ( \"/\" => ( \"method\" => \"basic\", \"require\" => \"valid-user\" ) )",
            4,
            "realm field is missing",
        ),
        (
            "auth.require = ( \"/\" => ( \"method\" => \"basic\", \"realm\" => \"a\" ) )",
            4,
            "require field is missing",
        ),
        (
            "auth.require = ( \"/\" => ( \"method\" => \"basic\", \"realm\" => \"a\", \"require\" => \"user:jan\" ) )",
            4,
            "missing '='",
        ),
        (
            "auth.require = ( \"/\" => ( \"method\" => \"digest\", \"realm\" => \"a\", \"require\" => \"valid-user\", \"algorithm\" => \"SHA-1\" ) )",
            4,
            "invalid algorithm",
        ),
        (
            "auth.require = ( \"/\" => ( \"method\" => \"basic\", \"realm\" => \"a\", \"require\" => \"valid-user\", \"colour\" => \"red\" ) )",
            4,
            "unknown",
        ),
        ("auth.require = ( \"/\" => \"basic\" )", 4, "expected"),
        (
            "\n$HTTP[\"host\"] == \"x\" {\n  auth.require = ( \"/\" => ( \"method\" => 1 ) )\n}",
            6,
            "expected a string",
        ),
    ] {
        let out = check(text);
        assert!(!out.status.success(), "{text}\n{}", out.describe());
        let err = out.stderr.clone();
        assert!(err.contains(&format!("lightd.conf:{line}: ")), "{text}\n{err}");
        assert!(err.contains(needle), "{text}\n{err}");
        assert_eq!(err.matches("auth.require: auth.require").count(), 0, "{err}");
    }
    // Keys of mod_auth that lightd does not implement stay refused.
    let out = check("auth.extern-authn = \"enable\"");
    assert!(!out.status.success(), "{}", out.describe());
    assert!(out.stderr.contains("auth.extern-authn"), "{}", out.stderr);
}
