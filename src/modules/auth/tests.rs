//! Tests of the whole check: lighttpd's own mod_auth cases (tests/request.t with
//! tests/lighttpd.user and tests/lighttpd.htpasswd), RFC 7616 vectors, and the edge cases.

use super::digest::{self, check_nonce, make_nonce, parse_params, Algo, NonceCheck};
use super::*;
use crate::config::auth::config_warnings;
use std::net::Ipv4Addr;
use std::path::PathBuf;

const SECRET: &[u8] = b"per-process secret for tests";
/// 2026-11-29, some time after every timestamp in lighttpd's test nonces.
const NOW: u64 = 1_795_900_000;

/// A directory of user files, removed when dropped.
struct Files {
    dir: PathBuf,
}

impl Files {
    fn new(name: &str) -> Files {
        let dir = std::env::temp_dir().join(format!("lightd-auth-{}-{}", std::process::id(), name));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // Verbatim copies of lighttpd's tests/lighttpd.user and tests/lighttpd.htpasswd.
        std::fs::write(dir.join("lighttpd.user"), "jan:jan\n").unwrap();
        std::fs::write(
            dir.join("lighttpd.htpasswd"),
            "# some comment\nsha:{SHA}2PRZAyDhNDqRW2OUFwZQqPNdaSY=\n\n\
             apr-md5:$apr1$w2kLqmDN$uMe8ZCfMRT81wf43Y1hny0\n",
        )
        .unwrap();
        Files { dir }
    }

    fn write(&self, name: &str, content: &str) -> PathBuf {
        let p = self.dir.join(name);
        std::fs::write(&p, content).unwrap();
        p
    }

    fn settings(&self, kind: BackendKind, file: &str) -> Settings {
        let mut s = Settings {
            backend: Some(kind),
            ..Settings::default()
        };
        let key = match kind {
            BackendKind::Plain => "auth.backend.plain.userfile",
            BackendKind::Htpasswd => "auth.backend.htpasswd.userfile",
            BackendKind::Htdigest => "auth.backend.htdigest.userfile",
        };
        assert!(s.files.set(key, self.dir.join(file).to_str().unwrap()));
        s
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn req<'a>(path: &'a str, auth: Option<&'a str>) -> Request<'a> {
    Request {
        path,
        authorization: auth.map(str::as_bytes),
        method: "GET",
        target: path.as_bytes(),
        client: IpAddr::V4(Ipv4Addr::new(192, 168, 2, 10)),
        now: NOW,
        remote_user: None,
    }
}

/// lighttpd's tests/lighttpd.conf auth.require list.
fn lighttpd_require() -> Vec<Require> {
    vec![
        Require::parse(
            "/server-status",
            &[
                ("method", "digest"),
                ("realm", "download archiv"),
                ("require", "group=www|user=jan|host=192.168.2.10"),
            ],
        )
        .unwrap(),
        Require::parse(
            "/server-config",
            &[
                ("method", "basic"),
                ("realm", "download archiv"),
                ("require", "valid-user"),
            ],
        )
        .unwrap(),
    ]
}

fn status(o: &Outcome) -> u16 {
    match o {
        Outcome::Allow { .. } => 200,
        Outcome::Challenge { .. } => 401,
        Outcome::BadRequest => 400,
        Outcome::ServerError => 500,
    }
}

#[test]
fn lighttpd_request_t_basic() {
    let f = Files::new("basic");
    let plain = f.settings(BackendKind::Plain, "lighttpd.user");
    let htpasswd = f.settings(BackendKind::Htpasswd, "lighttpd.htpasswd");
    let list = lighttpd_require();
    let r = find(&list, "/server-config", false).unwrap();
    // (settings, Authorization, status, bad_creds): the cases of request.t, in its order.
    let cases: &[(&Settings, Option<&str>, u16, bool)] = &[
        (&plain, None, 401, false),
        (&plain, Some("Basic \u{80}mFuOmphb"), 400, false),
        (&plain, Some("Basic bm90Oml0Cg=="), 401, true),
        (&plain, Some("Basic amFuOmphbg=="), 200, false),
        (&htpasswd, Some("Basic c2hhOnNoYQ=="), 200, false),
        (&htpasswd, Some("Basic c2hhOnNoYg=="), 401, true),
        (&htpasswd, Some("Basic YXByLW1kNTphcHItbWQ1"), 200, false),
        (&htpasswd, Some("Basic YXByLW1kNTphcHItbWQ2"), 401, true),
        (&plain, Some("Basic bWQ1Om1kNA=="), 401, true),
        (&plain, Some("Basic ="), 400, false),
        // And a few more: scheme case, another scheme, no colon, empty, too long.
        (&plain, Some("bAsIc amFuOmphbg=="), 200, false),
        (&plain, Some("Digest amFuOmphbg=="), 401, false),
        (&plain, Some("Basic"), 401, false),
        (&plain, Some("Basic amFuamFu"), 400, false),
        (&plain, Some("Basic "), 401, false),
        // "jan:ja"
        (&plain, Some("Basic amFuOmph"), 401, true),
        // The same users in the other file do not exist.
        (&htpasswd, Some("Basic amFuOmphbg=="), 401, true),
    ];
    for (i, (s, auth, want, bad)) in cases.iter().enumerate() {
        let o = check(r, s, &req("/server-config", *auth), SECRET);
        assert_eq!(status(&o), *want, "case {}: {:?}", i, o);
        match o {
            Outcome::Challenge {
                www_authenticate,
                bad_creds,
            } => {
                assert_eq!(bad_creds, *bad, "case {}", i);
                assert_eq!(
                    www_authenticate,
                    vec!["Basic realm=\"download archiv\", charset=\"UTF-8\"".to_string()]
                );
            }
            Outcome::Allow {
                user, auth_type, ..
            } => {
                assert_eq!(auth_type, Some("Basic"));
                let decoded = base64::decode(auth.unwrap()[6..].trim().as_bytes(), 100).unwrap();
                assert!(decoded.starts_with(format!("{}:", user).as_bytes()));
            }
            _ => {}
        }
    }
    // lighttpd's 1363-character limit answers with a challenge, not a 400.
    let long = format!("Basic {}", "QUJD".repeat(341));
    let o = check(r, &plain, &req("/server-config", Some(&long)), SECRET);
    assert_eq!(
        o,
        Outcome::Challenge {
            www_authenticate: vec![basic::challenge("download archiv")],
            bad_creds: false
        }
    );
}

#[test]
fn lighttpd_request_t_digest() {
    let f = Files::new("digest");
    let plain = f.settings(BackendKind::Plain, "lighttpd.user");
    let list = lighttpd_require();
    let r = find(&list, "/server-status", false).unwrap();
    let cases: &[(&str, u16, bool)] = &[
        (
            // 'Digest-Auth: missing qop, no crash': wrong realm.
            "Digest username=\"jan\", realm=\"jan\", nonce=\"9a5428ccc05b086a08d918e73b01fc6f\",\r\n \
             uri=\"/server-status\", response=\"ea5f7d9a30b8b762f9610ccb87dea74f\"",
            401,
            false,
        ),
        (
            // 'missing nc (noncecount instead)'.
            "Digest username=\"jan\", realm=\"jan\",\t nonce=\"b1d12348b4620437c43dd61c50ae4639\",\t \
             uri=\"/MJ-BONG.xm.mpc\", qop=auth, noncecount=00000001\",\t \
             cnonce=\"036FCA5B86F7E7C4965C7F9B8FE714B7\",\t \
             response=\"29B32C2953C763C6D033C8A49983B87E\"",
            400,
            false,
        ),
        (
            // 'md5-sess + missing cnonce'.
            "Digest username=\"jan\", realm=\"download archiv\", \
             nonce=\"b3b26457000000003a9b34a3cd56d26e48a52a498ac9765d4b\", \
             uri=\"/server-status\", qop=auth, nc=00000001, \
             algorithm=\"md5-sess\", response=\"049b000fb00ab51dddea6f093a96aa2e\"",
            400,
            false,
        ),
    ];
    for (i, (auth, want, bad)) in cases.iter().enumerate() {
        let o = check(r, &plain, &req("/server-status", Some(auth)), SECRET);
        assert_eq!(status(&o), *want, "case {}: {:?}", i, o);
        if let Outcome::Challenge { bad_creds, .. } = o {
            assert_eq!(bad_creds, *bad);
        }
    }
    // 'stale nonce' and 'BWS, trailing WS, stale nonce': a 401 ending in ", stale=true".
    for auth in [
        "Digest username=\"jan\", realm=\"download archiv\", \
         nonce=\"b3b26457000000003a9b34a3cd56d26e48a52a498ac9765d4b\", \
         uri=\"/server-status\", qop=auth, nc=00000001, cnonce=\"65ee1b37\", \
         algorithm=\"md5\", response=\"049b000fb00ab51dddea6f093a96aa2e\"",
        "Digest username = \"jan\", realm = \"download archiv\",\t\
         nonce = \"b3b26457000000003a9b34a3cd56d26e48a52a498ac9765d4b\",\t\
         uri = \"/server-status\", qop = auth, nc = 00000001, cnonce = \"65ee1b37\",\t\
         algorithm = \"md5\", response = \"049b000fb00ab51dddea6f093a96aa2e\"     ",
    ] {
        match check(r, &plain, &req("/server-status", Some(auth)), SECRET) {
            Outcome::Challenge {
                www_authenticate,
                bad_creds: false,
            } => {
                assert_eq!(www_authenticate.len(), 1);
                assert!(
                    www_authenticate[0].ends_with(", stale=true"),
                    "{:?}",
                    www_authenticate
                );
                assert!(www_authenticate[0].contains("algorithm=MD5,"));
            }
            o => panic!("{:?}", o),
        }
    }
}

/// The nonce inside a challenge header value.
fn nonce_of(challenge: &str) -> String {
    let start = challenge.find("nonce=\"").unwrap() + 7;
    let len = challenge[start..].find('"').unwrap();
    challenge[start..start + len].to_string()
}

/// A Digest Authorization value as a client would compute it.
#[allow(clippy::too_many_arguments)]
fn client_digest(
    algo: Algo,
    user: &str,
    realm: &str,
    pw: &str,
    nonce: &str,
    uri: &str,
    method: &str,
    extra: &str,
) -> String {
    let ha1 = digest::ha1(algo, user.as_bytes(), realm.as_bytes(), pw.as_bytes());
    let resp = digest::response(
        algo,
        false,
        &ha1,
        nonce.as_bytes(),
        b"0a4f113b",
        b"00000001",
        Some(b"auth"),
        method.as_bytes(),
        uri.as_bytes(),
    );
    format!(
        "Digest username=\"{}\", realm=\"{}\", nonce=\"{}\", uri=\"{}\", algorithm={}, \
         qop=auth, nc=00000001, cnonce=\"0a4f113b\", response=\"{}\"{}",
        user,
        realm,
        nonce,
        uri,
        algo.name(),
        digest::to_hex(&resp),
        extra
    )
}

fn fresh_nonce(r: &Require, algo: Algo, now: u64) -> String {
    let mut only = Algorithms {
        md5: false,
        sha256: false,
        sha512_256: false,
    };
    match algo {
        Algo::Md5 => only.md5 = true,
        Algo::Sha256 => only.sha256 = true,
        Algo::Sha512_256 => only.sha512_256 = true,
    }
    nonce_of(&digest::challenge(r, only, now, SECRET, false)[0])
}

#[test]
fn digest_round_trip_plain_and_htdigest() {
    let f = Files::new("roundtrip");
    f.write("plain", "jan:jan\nbob:builder\n");
    // HA1 lines computed independently: `printf 'jan:download archiv:jan' | md5sum` and
    // `... | sha256sum`.
    f.write(
        "htdigest",
        "jan:download archiv:317f608511995f338a00da1fc231574a\n\
         jan:download archiv:dea2ad4a611cc01639b02d50fe716e8a98c784c3dc3c20e1c9cab2d674c115b6\n",
    );
    let plain = f.settings(BackendKind::Plain, "plain");
    let list = lighttpd_require();
    let r = find(&list, "/server-status/x?y", false).unwrap();
    let target = "/server-status/x?y";
    let mut rq = req("/server-status/x", None);
    rq.target = target.as_bytes();

    let nonce = fresh_nonce(r, Algo::Md5, NOW);
    let good = client_digest(
        Algo::Md5,
        "jan",
        "download archiv",
        "jan",
        &nonce,
        target,
        "GET",
        "",
    );
    rq.authorization = Some(good.as_bytes());
    match check(r, &plain, &rq, SECRET) {
        Outcome::Allow {
            user,
            auth_type: Some("Digest"),
            authentication_info: None,
        } => assert_eq!(user, "jan"),
        o => panic!("{:?}", o),
    }
    // The same header for another method, another target, or after 10 minutes fails.
    rq.method = "POST";
    assert_eq!(status(&check(r, &plain, &rq, SECRET)), 401);
    rq.method = "GET";
    rq.target = b"/server-status/x?z";
    assert_eq!(check(r, &plain, &rq, SECRET), Outcome::BadRequest);
    rq.target = target.as_bytes();
    rq.now = NOW + 601;
    match check(r, &plain, &rq, SECRET) {
        Outcome::Challenge {
            www_authenticate,
            bad_creds: false,
        } => assert!(www_authenticate[0].ends_with("stale=true")),
        o => panic!("{:?}", o),
    }
    // In its last minute it still works, and the next nonce is offered.
    rq.now = NOW + 550;
    match check(r, &plain, &rq, SECRET) {
        Outcome::Allow {
            authentication_info: Some(info),
            ..
        } => {
            let next = info
                .strip_prefix("nextnonce=\"")
                .unwrap()
                .trim_end_matches('"');
            assert_eq!(
                check_nonce(next.as_bytes(), NOW + 550, SECRET, Algo::Md5),
                NonceCheck::Fresh { renew: false }
            );
        }
        o => panic!("{:?}", o),
    }
    rq.now = NOW;

    // Wrong password and unknown user are bad credentials; a user the rule does not name
    // authenticates but is refused without the penalty, as in lighttpd.
    for (user, pw, bad) in [
        ("jan", "nope", true),
        ("eve", "jan", true),
        ("bob", "builder", false),
    ] {
        let h = client_digest(
            Algo::Md5,
            user,
            "download archiv",
            pw,
            &nonce,
            target,
            "GET",
            "",
        );
        let rq = Request {
            authorization: Some(h.as_bytes()),
            ..rq
        };
        match check(r, &plain, &rq, SECRET) {
            Outcome::Challenge {
                www_authenticate,
                bad_creds,
            } => {
                assert_eq!(bad_creds, bad, "{}", user);
                assert!(!www_authenticate[0].contains("stale"));
            }
            o => panic!("{} {:?}", user, o),
        }
    }

    // htdigest, MD5 and SHA-256 lines side by side.
    let htd = f.settings(BackendKind::Htdigest, "htdigest");
    let both = Require::parse(
        "/",
        &[
            ("method", "digest"),
            ("realm", "download archiv"),
            ("require", "user=jan"),
            ("algorithm", "SHA-256|MD5"),
        ],
    )
    .unwrap();
    for algo in [Algo::Md5, Algo::Sha256] {
        let nonce = fresh_nonce(&both, algo, NOW);
        for (pw, want) in [("jan", 200), ("jam", 401)] {
            let h = client_digest(
                algo,
                "jan",
                "download archiv",
                pw,
                &nonce,
                target,
                "GET",
                "",
            );
            let rq = Request {
                authorization: Some(h.as_bytes()),
                ..rq
            };
            assert_eq!(
                status(&check(&both, &htd, &rq, SECRET)),
                want,
                "{:?} {}",
                algo,
                pw
            );
        }
    }
    // Basic against the htdigest file hashes with the configured algorithm (SHA-256 here).
    let basic_htd = Require {
        method: Method::Basic,
        ..both.clone()
    };
    for (creds, want) in [("amFuOmphbg==", 200), ("amFuOmphbQ==", 401)] {
        let h = format!("Basic {}", creds);
        let rq = Request {
            authorization: Some(h.as_bytes()),
            ..rq
        };
        assert_eq!(status(&check(&basic_htd, &htd, &rq, SECRET)), want);
    }
    // An algorithm the entry does not offer is refused with a fresh challenge.
    let nonce = fresh_nonce(r, Algo::Sha256, NOW);
    let h = client_digest(
        Algo::Sha256,
        "jan",
        "download archiv",
        "jan",
        &nonce,
        target,
        "GET",
        "",
    );
    rq.authorization = Some(h.as_bytes());
    match check(r, &plain, &rq, SECRET) {
        Outcome::Challenge {
            www_authenticate,
            bad_creds: false,
        } => assert!(www_authenticate[0].contains("algorithm=MD5")),
        o => panic!("{:?}", o),
    }
}

#[test]
fn digest_md5_sess() {
    let f = Files::new("sess");
    let plain = f.settings(BackendKind::Plain, "lighttpd.user");
    let r = &lighttpd_require()[0];
    let nonce = fresh_nonce(r, Algo::Md5, NOW);
    let ha1 = digest::ha1(Algo::Md5, b"jan", b"download archiv", b"jan");
    // Session HA1 computed by hand, not by digest::response's sess branch.
    let sess_ha1 = Algo::Md5.hash(&[
        digest::to_hex(&ha1).as_bytes(),
        b":",
        nonce.as_bytes(),
        b":",
        b"c",
    ]);
    let resp = digest::response(
        Algo::Md5,
        false,
        &sess_ha1,
        nonce.as_bytes(),
        b"c",
        b"00000002",
        Some(b"auth"),
        b"GET",
        b"/server-status",
    );
    let h = format!(
        "Digest username=\"jan\", realm=\"download archiv\", nonce=\"{}\", uri=\"/server-status\", \
         algorithm=MD5-sess, qop=auth, nc=00000002, cnonce=\"c\", response=\"{}\"",
        nonce,
        digest::to_hex(&resp).to_uppercase()
    );
    let o = check(r, &plain, &req("/server-status", Some(&h)), SECRET);
    assert_eq!(status(&o), 200, "{:?}", o);
}

#[test]
fn digest_malformed_headers() {
    let f = Files::new("malformed");
    let plain = f.settings(BackendKind::Plain, "lighttpd.user");
    let r = &lighttpd_require()[0];
    let nonce = fresh_nonce(r, Algo::Md5, NOW);
    let good = client_digest(
        Algo::Md5,
        "jan",
        "download archiv",
        "jan",
        &nonce,
        "/server-status",
        "GET",
        "",
    );
    assert_eq!(
        status(&check(
            r,
            &plain,
            &req("/server-status", Some(&good)),
            SECRET
        )),
        200
    );
    let bad: Vec<String> = vec![
        format!("{}, nc=00000001", good),
        format!("{}, realm=\"download archiv\"", good),
        format!("{}, username=\"jan\"", good),
        good.replace("cnonce=\"0a4f113b\"", "cnonce=\"0a4f113b"),
        format!("{}, x=\"unterminated", good),
        format!("{}, x=\"ends in a backslash\\", good),
        format!("{}, =value", good),
        format!("{}, novalue", good),
        format!("{} junk", good),
        format!("{}, opaque=\"{}\"", good, "x".repeat(digest::MAX_HEADER)),
        format!("{}{}", good, ", a=b".repeat(40)),
        good.replace("response=\"", "response=\"0"),
        good.replace("response=\"", "response=\"zz"),
        good.replace("qop=auth", "qop=auth-int"),
        good.replace("qop=auth", "qop=other"),
        good.replace(", nc=00000001", ""),
        good.replace(", uri=\"/server-status\"", ""),
        // A current time without the random part.
        good.replace(&nonce, &format!("{:x}:zz:00", NOW)),
    ];
    for h in &bad {
        let o = check(r, &plain, &req("/server-status", Some(h)), SECRET);
        assert_eq!(o, Outcome::BadRequest, "{}", h);
    }
    // Unknown parameters, quoted escapes and odd spacing are fine.
    let fine = [
        format!("{}, opaque=\"a\\\"b\", auth-param=token", good),
        good.replace(", ", " ,\t"),
        good.replace("username=\"jan\"", "username=\"j\\an\""),
        good.replace("qop=auth", "qop=\"auth\""),
    ];
    for h in &fine {
        let o = check(r, &plain, &req("/server-status", Some(h)), SECRET);
        assert_eq!(status(&o), 200, "{} {:?}", h, o);
    }
}

#[test]
fn parse_params_table() {
    let p = parse_params(b"username=\"a\\\"b\", REALM=r, Nonce = \"n\" ,uri=\"/x y\",,").unwrap();
    assert_eq!(p.username.as_deref(), Some(&b"a\"b"[..]));
    assert_eq!(p.realm.as_deref(), Some(&b"r"[..]));
    assert_eq!(p.nonce.as_deref(), Some(&b"n"[..]));
    assert_eq!(p.uri.as_deref(), Some(&b"/x y"[..]));
    assert_eq!(p.response, None);
    assert_eq!(parse_params(b"").unwrap(), digest::Params::default());
    for bad in [
        &b"a"[..],
        b"a=",
        b"a=\"",
        b"a=b c=d",
        b"a=b=c",
        b"\"a\"=b",
        b"realm=a, realm=a",
        b"a=\"\\",
    ] {
        // "a=" is an empty token value, which is allowed; everything else is malformed.
        if bad == b"a=" {
            assert!(parse_params(bad).is_ok());
        } else {
            assert!(
                parse_params(bad).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }
}

// RFC 2617 section 3.5 and RFC 7616 section 3.9.1.
#[test]
fn rfc_digest_vectors() {
    let resp = digest::response(
        Algo::Md5,
        false,
        &digest::ha1(
            Algo::Md5,
            b"Mufasa",
            b"testrealm@host.com",
            b"Circle Of Life",
        ),
        b"dcd98b7102dd2f0e8b11d0f600bfb0c093",
        b"0a4f113b",
        b"00000001",
        Some(b"auth"),
        b"GET",
        b"/dir/index.html",
    );
    assert_eq!(digest::to_hex(&resp), "6629fae49393a05397450978507c4ef1");
    for (algo, want) in [
        (Algo::Md5, "8ca523f5e9506fed4657c9700eebdbec"),
        (
            Algo::Sha256,
            "753927fa0e85d155564e2e272a28d1802ca10daf4496794697cf8db5856cb6c1",
        ),
    ] {
        let resp = digest::response(
            algo,
            false,
            &digest::ha1(algo, b"Mufasa", b"http-auth@example.org", b"Circle of Life"),
            b"7ypf/xlj9XXwfDPEoM4URrv/xwf94BcCAzFZH4GiTo0v",
            b"f2/wE4q74E6zIJEtWaHKaf5wv/H5QzzpXusqGemxURZJ",
            b"00000001",
            Some(b"auth"),
            b"GET",
            b"/dir/index.html",
        );
        assert_eq!(digest::to_hex(&resp), want, "{:?}", algo);
    }
}

#[test]
fn rfc7616_username_star_and_userhash() {
    let f = Files::new("userhash");
    // RFC 7616 section 3.9.2's user, with SHA-512-256; the htdigest line carries the
    // userhash as the optional fourth field. (The RFC's printed userhash is known to be
    // wrong; this one is `printf 'J\xc3\xa4s\xc3\xb8n Doe:api@example.org' | openssl dgst
    // -sha512-256`.)
    let user = "J\u{e4}s\u{f8}n Doe";
    let realm = "api@example.org";
    let ha1 = digest::ha1(
        Algo::Sha512_256,
        user.as_bytes(),
        realm.as_bytes(),
        b"Secret, or not?",
    );
    let uh = digest::to_hex(&Algo::Sha512_256.hash(&[user.as_bytes(), b":", realm.as_bytes()]));
    assert_eq!(
        uh,
        "793263caabb707a56211940d90411ea4a575adeccb7e360aeb624ed06ece9b0b"
    );
    f.write(
        "htdigest",
        &format!("{}:{}:{}:{}\n", user, realm, digest::to_hex(&ha1), uh),
    );
    let s = f.settings(BackendKind::Htdigest, "htdigest");
    let r = Require::parse(
        "/doe.json",
        &[
            ("method", "digest"),
            ("realm", realm),
            ("require", &format!("user={}", user)),
            ("algorithm", "SHA-512-256"),
            ("userhash", "enable"),
        ],
    )
    .unwrap();
    let ch = digest::challenge(&r, r.algorithms, NOW, SECRET, false);
    assert_eq!(ch.len(), 1);
    assert!(ch[0].contains("algorithm=SHA-512-256") && ch[0].ends_with(", userhash=true"));
    let nonce = nonce_of(&ch[0]);
    let resp = digest::response(
        Algo::Sha512_256,
        false,
        &ha1,
        nonce.as_bytes(),
        b"NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v",
        b"00000001",
        Some(b"auth"),
        b"GET",
        b"/doe.json",
    );
    let tail = format!(
        "realm=\"{}\", uri=\"/doe.json\", algorithm=SHA-512-256, nonce=\"{}\", nc=00000001, \
         cnonce=\"NTg6RKcb9boFIAS3KrFK9BGeh+iDa/sm6jUMp2wds69v\", qop=auth, response=\"{}\"",
        realm,
        nonce,
        digest::to_hex(&resp)
    );
    let by_hash = format!(
        "Digest username=\"{}\", userhash=true, {}",
        uh.to_uppercase(),
        tail
    );
    let by_star = format!("Digest username*=UTF-8''J%C3%A4s%C3%B8n%20Doe, {}", tail);
    for h in [&by_hash, &by_star] {
        match check(&r, &s, &req("/doe.json", Some(h)), SECRET) {
            Outcome::Allow { user: u, .. } => assert_eq!(u, user),
            o => panic!("{} {:?}", h, o),
        }
    }
    for bad in [
        format!(
            "Digest username*=UTF-8''J%C3%A4s%C3%B8n%20Doe, userhash=true, {}",
            tail
        ),
        format!("Digest username*=UTF-8''J%C3s, {}", tail),
        format!("Digest username*=UTF-8''J%0An, {}", tail),
        format!("Digest username*=KOI8-R''Jn, {}", tail),
        format!("Digest username*=UTF-8'J, {}", tail),
        format!("Digest username*=UTF-8''J%C, {}", tail),
    ] {
        assert_eq!(
            check(&r, &s, &req("/doe.json", Some(&bad)), SECRET),
            Outcome::BadRequest,
            "{}",
            bad
        );
    }
}

#[test]
fn nonces() {
    let n = make_nonce(NOW, 0x1234, SECRET, Algo::Md5);
    assert!(n.starts_with(&format!("{:x}:1234:", NOW)), "{}", n);
    assert_eq!(n.len(), format!("{:x}:1234:", NOW).len() + 32);
    assert!(make_nonce(NOW, 5, SECRET, Algo::Sha256).contains(":05:"));
    let check = |nonce: &str, now| check_nonce(nonce.as_bytes(), now, SECRET, Algo::Md5);
    assert_eq!(check(&n, NOW), NonceCheck::Fresh { renew: false });
    assert_eq!(check(&n, NOW + 600), NonceCheck::Fresh { renew: true });
    assert_eq!(check(&n, NOW + 601), NonceCheck::Stale);
    assert_eq!(check(&n, NOW - 1), NonceCheck::Stale);
    // The MAC covers time, random part and secret.
    assert_eq!(
        check_nonce(n.as_bytes(), NOW, b"other", Algo::Md5),
        NonceCheck::Forged
    );
    assert_eq!(
        check_nonce(n.as_bytes(), NOW, SECRET, Algo::Sha256),
        NonceCheck::Forged
    );
    let later = n.replacen(&format!("{:x}", NOW), &format!("{:x}", NOW + 1), 1);
    assert_eq!(check(&later, NOW + 1), NonceCheck::Forged);
    assert_eq!(
        check(&n.replacen(":1234:", ":1235:", 1), NOW),
        NonceCheck::Forged
    );
    assert_eq!(check(&format!("{:x}:", NOW), NOW), NonceCheck::Malformed);
    assert_eq!(check(&format!("{:x}:12", NOW), NOW), NonceCheck::Malformed);
    assert_eq!(check("", NOW), NonceCheck::Stale);
    assert_eq!(check(":1234:00", NOW), NonceCheck::Stale);
    assert_eq!(check(&"f".repeat(100), NOW), NonceCheck::Stale);
    // Challenges hand out distinct nonces that all verify.
    let r = &lighttpd_require()[0];
    let a = fresh_nonce(r, Algo::Md5, NOW);
    let b = fresh_nonce(r, Algo::Md5, NOW);
    assert_ne!(a, b);
    assert_eq!(check(&a, NOW), NonceCheck::Fresh { renew: false });
    assert_eq!(check(&b, NOW), NonceCheck::Fresh { renew: false });
}

#[test]
fn nonce_from_another_process_or_secret() {
    let f = Files::new("secret");
    let plain = f.settings(BackendKind::Plain, "lighttpd.user");
    let r = lighttpd_require().remove(0);
    // Made by another process: retry silently (stale), don't ask the user.
    let foreign = make_nonce(NOW, 7, b"the previous process", Algo::Md5);
    let h = client_digest(
        Algo::Md5,
        "jan",
        "download archiv",
        "jan",
        &foreign,
        "/server-status",
        "GET",
        "",
    );
    match check(&r, &plain, &req("/server-status", Some(&h)), SECRET) {
        Outcome::Challenge {
            www_authenticate,
            bad_creds: false,
        } => assert!(www_authenticate[0].ends_with("stale=true")),
        o => panic!("{:?}", o),
    }
    // With a configured nonce-secret, nonces made with it work in any process, and others
    // get lighttpd's plain 401; one without the random part is a 400.
    let mut rs = r.clone();
    rs.nonce_secret = Some(b"shared".to_vec());
    let shared = make_nonce(NOW, 7, b"shared", Algo::Md5);
    let h = client_digest(
        Algo::Md5,
        "jan",
        "download archiv",
        "jan",
        &shared,
        "/server-status",
        "GET",
        "",
    );
    assert_eq!(
        status(&check(
            &rs,
            &plain,
            &req("/server-status", Some(&h)),
            b"any"
        )),
        200
    );
    let h = client_digest(
        Algo::Md5,
        "jan",
        "download archiv",
        "jan",
        &foreign,
        "/server-status",
        "GET",
        "",
    );
    match check(&rs, &plain, &req("/server-status", Some(&h)), SECRET) {
        Outcome::Challenge {
            www_authenticate,
            bad_creds: false,
        } => assert!(!www_authenticate[0].contains("stale")),
        o => panic!("{:?}", o),
    }
    let fresh = digest::challenge(&rs, rs.algorithms, NOW, SECRET, false);
    assert_eq!(
        check_nonce(nonce_of(&fresh[0]).as_bytes(), NOW, b"shared", Algo::Md5),
        NonceCheck::Fresh { renew: false }
    );
}

#[test]
fn challenge_format() {
    let r = Require::parse(
        "/",
        &[
            ("method", "digest"),
            ("realm", "say \"hi\""),
            ("require", "valid-user"),
            ("algorithm", "md5|sha-256|SHA-512-256"),
        ],
    )
    .unwrap();
    let ch = digest::challenge(&r, r.algorithms, NOW, SECRET, false);
    let names: Vec<&str> = ch
        .iter()
        .map(|c| {
            c.split("algorithm=")
                .nth(1)
                .unwrap()
                .split(',')
                .next()
                .unwrap()
        })
        .collect();
    assert_eq!(names, ["SHA-512-256", "SHA-256", "MD5"]);
    for c in &ch {
        assert!(c.starts_with("Digest realm=\"say \\\"hi\\\"\", charset=\"UTF-8\", algorithm="));
        assert!(c.ends_with("\", qop=\"auth\""), "{}", c);
    }
    assert_eq!(
        basic::challenge("a\"b"),
        "Basic realm=\"a\\\"b\", charset=\"UTF-8\""
    );
}

#[test]
fn require_rules_user_group_host() {
    let f = Files::new("rules");
    f.write("plain", "jan:jan\nwww:www\nhost:host\n");
    let s = f.settings(BackendKind::Plain, "plain");
    let cases: &[(&str, &str, u16)] = &[
        ("valid-user", "jan:jan", 200),
        ("user=jan", "jan:jan", 200),
        ("user=www|user=jan", "jan:jan", 200),
        ("user=Jan", "jan:jan", 401),
        ("user=www", "jan:jan", 401),
        // group= and host= never grant access with the file backends, even to a user or
        // client of that name.
        ("group=www", "www:www", 401),
        ("host=192.168.2.10", "jan:jan", 401),
        ("host=host", "host:host", 401),
        ("group=www|user=jan|host=192.168.2.10", "jan:jan", 200),
        ("group=www|user=jan|host=192.168.2.10", "www:www", 401),
    ];
    for (rule, creds, want) in cases {
        let r = Require::parse(
            "/",
            &[("method", "basic"), ("realm", "r"), ("require", rule)],
        )
        .unwrap();
        let h = format!("Basic {}", base64::encode(creds.as_bytes()));
        let o = check(&r, &s, &req("/x", Some(&h)), SECRET);
        assert_eq!(status(&o), *want, "{} {}", rule, creds);
        if let Outcome::Challenge { bad_creds, .. } = o {
            // lighttpd checks the rule inside the Basic backend: a refusal counts as bad.
            assert!(bad_creds);
        }
    }
}

#[test]
fn parse_require_table() {
    let ok: &[(&str, Rule)] = &[
        (
            "valid-user",
            Rule {
                valid_user: true,
                ..Rule::default()
            },
        ),
        (
            "user=a|user=b|group=g|host=h",
            Rule {
                valid_user: false,
                users: vec!["a".into(), "b".into()],
                groups: vec!["g".into()],
                hosts: vec!["h".into()],
            },
        ),
        (
            "user=a=b|",
            Rule {
                users: vec!["a=b".into()],
                ..Rule::default()
            },
        ),
    ];
    for (s, want) in ok {
        assert_eq!(parse_require(s).as_ref(), Ok(want), "{}", s);
    }
    let bad: &[(&str, &str)] = &[
        ("", "blank"),
        ("valid-user|user=a", "missing '='"),
        ("user=a|valid-user", "missing '='"),
        ("valid-user=x", "cannot be combined"),
        ("user=", "missing token"),
        ("user=|user=b", "missing token"),
        ("user=a||user=b", "missing '='"),
        ("users=a", "invalid/unsupported"),
        ("User=a", "invalid/unsupported"),
        ("|", "missing '='"),
    ];
    for (s, msg) in bad {
        let e = parse_require(s).unwrap_err();
        assert!(e.contains(msg), "{:?}: {}", s, e);
    }
}

#[test]
fn require_parse_validation() {
    let base = [
        ("method", "basic"),
        ("realm", "r"),
        ("require", "valid-user"),
    ];
    let r = Require::parse("/p", &base).unwrap();
    assert_eq!(r.method, Method::Basic);
    assert_eq!(r.algorithms, Algorithms::default());
    assert!(!r.userhash && r.nonce_secret.is_none());
    // An empty realm is allowed (lighttpd only requires the field).
    assert!(Require::parse(
        "/p",
        &[
            ("method", "digest"),
            ("realm", ""),
            ("require", "valid-user")
        ]
    )
    .is_ok());
    let r = Require::parse(
        "/p",
        &[
            ("method", "digest"),
            ("realm", "r"),
            ("require", "user=a"),
            ("algorithm", "SHA-256-sess|md5"),
            ("nonce_secret", "s"),
            ("userhash", "TRUE"),
        ],
    )
    .unwrap();
    assert_eq!(
        r.algorithms,
        Algorithms {
            md5: true,
            sha256: true,
            sha512_256: false
        }
    );
    assert_eq!(r.nonce_secret.as_deref(), Some(&b"s"[..]));
    assert!(r.userhash);
    let bad: &[(&[(&str, &str)], &str)] = &[
        (
            &[("realm", "r"), ("require", "valid-user")],
            "method field is missing",
        ),
        (
            &[("method", ""), ("realm", "r"), ("require", "valid-user")],
            "method field is missing",
        ),
        (
            &[
                ("method", "Basic"),
                ("realm", "r"),
                ("require", "valid-user"),
            ],
            "unknown method",
        ),
        (
            &[
                ("method", "ntlm"),
                ("realm", "r"),
                ("require", "valid-user"),
            ],
            "unknown method",
        ),
        (
            &[("method", "basic"), ("require", "valid-user")],
            "realm field is missing",
        ),
        (
            &[
                ("method", "basic"),
                ("realm", "r\nX: y"),
                ("require", "valid-user"),
            ],
            "control",
        ),
        (
            &[("method", "basic"), ("realm", "r")],
            "require field is missing",
        ),
        (
            &[("method", "basic"), ("realm", "r"), ("require", "")],
            "require field is missing",
        ),
        (
            &[("method", "basic"), ("realm", "r"), ("require", "nobody")],
            "missing '='",
        ),
        (
            &[
                ("method", "basic"),
                ("realm", "r"),
                ("require", "valid-user"),
                ("algorithm", "sha-1"),
            ],
            "invalid algorithm",
        ),
        (
            &[
                ("method", "basic"),
                ("realm", "r"),
                ("require", "valid-user"),
                ("algorithm", "MD5|"),
            ],
            "invalid algorithm",
        ),
        (
            &[
                ("method", "basic"),
                ("realm", "r"),
                ("require", "valid-user"),
                ("userhash", "maybe"),
            ],
            "userhash",
        ),
        (
            &[
                ("method", "basic"),
                ("realm", "r"),
                ("require", "valid-user"),
                ("colour", "red"),
            ],
            "unknown",
        ),
        (
            &[
                ("method", "basic"),
                ("method", "basic"),
                ("realm", "r"),
                ("require", "valid-user"),
            ],
            "twice",
        ),
    ];
    for (opts, msg) in bad {
        let e = Require::parse("/p", opts).unwrap_err();
        assert!(e.contains(msg), "{:?}: {}", opts, e);
    }
}

#[test]
fn backend_and_files_config() {
    assert_eq!(BackendKind::parse(""), Ok(None));
    assert_eq!(BackendKind::parse("plain"), Ok(Some(BackendKind::Plain)));
    assert_eq!(
        BackendKind::parse("htpasswd"),
        Ok(Some(BackendKind::Htpasswd))
    );
    assert_eq!(
        BackendKind::parse("htdigest"),
        Ok(Some(BackendKind::Htdigest))
    );
    assert!(BackendKind::parse("ldap")
        .unwrap_err()
        .contains("not supported by lightd"));
    assert!(BackendKind::parse("Plain")
        .unwrap_err()
        .contains("not supported"));
    let mut u = UserFiles::default();
    for k in UserFiles::KEYS {
        assert!(u.set(k, "/f"));
    }
    assert!(!u.set("auth.backend.ldap.hostname", "x"));
    assert_eq!(u.path(BackendKind::Htdigest), Some(Path::new("/f")));
    assert!(u.set("auth.backend.htdigest.userfile", ""));
    assert_eq!(u.path(BackendKind::Htdigest), None);
}

#[test]
fn find_and_warnings() {
    let mk = |p: &str, rule: &str| {
        Require::parse(p, &[("method", "basic"), ("realm", "r"), ("require", rule)]).unwrap()
    };
    let list = vec![
        mk("/a/b", "valid-user"),
        mk("/a", "valid-user"),
        mk("/a/c", "group=g|host=h"),
    ];
    assert_eq!(
        find(&list, "/a/b/x", false).map(|r| &r.path[..]),
        Some("/a/b")
    );
    assert_eq!(find(&list, "/a/c", false).map(|r| &r.path[..]), Some("/a"));
    assert_eq!(find(&list, "/ab", false).map(|r| &r.path[..]), Some("/a"));
    assert_eq!(find(&list, "/A/B", false).map(|r| &r.path[..]), None);
    assert_eq!(find(&list, "/A/B", true).map(|r| &r.path[..]), Some("/a/b"));
    assert_eq!(find(&list, "/", false), None);
    assert_eq!(find(&list, "", false), None);
    let w = config_warnings(&list);
    assert_eq!(w.len(), 3, "{:?}", w);
    assert!(w[0].contains("(\"/a/c\") will never match due to earlier match (\"/a\")"));
    assert!(w[1].contains("'host'") && w[2].contains("'group'"));
    assert!(config_warnings(&list[..2]).is_empty());
}

#[test]
fn misconfiguration_and_unreadable_files() {
    let f = Files::new("misconf");
    let list = lighttpd_require();
    let (digest_r, basic_r) = (&list[0], &list[1]);
    let jan = Some("Basic amFuOmphbg==");
    // No backend: 500 for either method, as lighttpd.
    let none = Settings::default();
    assert_eq!(
        check(basic_r, &none, &req("/server-config", jan), SECRET),
        Outcome::ServerError
    );
    assert_eq!(
        check(digest_r, &none, &req("/server-status", None), SECRET),
        Outcome::ServerError
    );
    // htpasswd cannot do Digest.
    let htpasswd = f.settings(BackendKind::Htpasswd, "lighttpd.htpasswd");
    assert_eq!(
        check(digest_r, &htpasswd, &req("/server-status", None), SECRET),
        Outcome::ServerError
    );
    // A missing, unset or oversized user file looks like wrong credentials.
    let missing = f.settings(BackendKind::Plain, "no-such-file");
    let unset = Settings {
        backend: Some(BackendKind::Plain),
        ..Settings::default()
    };
    f.write("big", &"jan:jan\n".repeat(200_000));
    let big = f.settings(BackendKind::Plain, "big");
    for s in [&missing, &unset, &big] {
        match check(basic_r, s, &req("/server-config", jan), SECRET) {
            Outcome::Challenge {
                bad_creds: true, ..
            } => {}
            o => panic!("{:?}", o),
        }
    }
}

#[test]
fn extern_and_extern_authn() {
    let f = Files::new("extern");
    let plain = f.settings(BackendKind::Plain, "lighttpd.user");
    let ext = Require::parse(
        "/",
        &[
            ("method", "extern"),
            ("realm", ""),
            ("require", "user=cert"),
        ],
    )
    .unwrap();
    let mut rq = req("/x", None);
    assert_eq!(
        check(&ext, &plain, &rq, SECRET),
        Outcome::Challenge {
            www_authenticate: vec![],
            bad_creds: false
        }
    );
    rq.remote_user = Some("cert");
    assert_eq!(
        check(&ext, &plain, &rq, SECRET),
        Outcome::Allow {
            user: "cert".into(),
            auth_type: None,
            authentication_info: None
        }
    );
    rq.remote_user = Some("other");
    assert_eq!(status(&check(&ext, &plain, &rq, SECRET)), 401);
    // auth.extern-authn lets a matching REMOTE_USER through a Basic entry too.
    let b = Require::parse(
        "/",
        &[
            ("method", "basic"),
            ("realm", "r"),
            ("require", "user=cert"),
        ],
    )
    .unwrap();
    rq.remote_user = Some("cert");
    assert_eq!(status(&check(&b, &plain, &rq, SECRET)), 401);
    let with = Settings {
        extern_authn: true,
        ..plain.clone()
    };
    assert_eq!(status(&check(&b, &with, &rq, SECRET)), 200);
}

// Nonces from a real lighttpd's challenges (Debian's 1.4.69 with "nonce-secret" =>
// "shared"; 1.4.85 makes them the same way). The MAC hashes native-endian integers, so these
// only hold on little-endian machines, like the lighttpd that made them.
#[cfg(target_endian = "little")]
#[test]
fn lighttpd_made_nonces_verify() {
    let now = 0x6b0c_65fe + 1;
    for (n, a) in [
        (
            "6b0c65fe:42628fb8:6c5e157bbfd184e047bf1e6c9f8c1df8",
            Algo::Md5,
        ),
        (
            "6b0c65fe:7c6fd2e7:9b004286537e2a43420ccff2f2fa8a68",
            Algo::Md5,
        ),
        (
            "6b0c65fe:3cc42cc9:b235cad2f2f9533c523d9976864481a5bc334d2c85b57570775e03c926545d2b",
            Algo::Sha256,
        ),
    ] {
        assert_eq!(
            check_nonce(n.as_bytes(), now, b"shared", a),
            NonceCheck::Fresh { renew: false },
            "{}",
            n
        );
        assert_eq!(
            check_nonce(n.as_bytes(), now, b"Shared", a),
            NonceCheck::Forged
        );
    }
}
