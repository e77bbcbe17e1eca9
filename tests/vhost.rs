//! mod_simple_vhost, mod_evhost, mod_userdir and mod_extforward against the real binary: the
//! document root from the Host (and hostile Hosts that must not move it), per-user
//! directories, and the client address from trusted proxies only.

mod common;

use std::time::{Duration, Instant};

use common::*;

fn get(s: &Server, path: &str, host: &str) -> Response {
    s.request(
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

fn get_with(s: &Server, path: &str, headers: &str) -> Response {
    s.request(
        format!("GET {path} HTTP/1.1\r\nHost: x\r\n{headers}Connection: close\r\n\r\n").as_bytes(),
    )
}

fn vhosts(extra: &str) -> Server {
    builder()
        .file("index.html", "main docroot")
        .dir_file("vhosts/a.example/htdocs/index.html", "site a")
        .dir_file("vhosts/b.example/htdocs/index.html", "site b")
        .dir_file("vhosts/default.example/htdocs/index.html", "default site")
        .dir_file("vhosts/secret.txt", "outside")
        .dir_file("secret.txt", "outside too")
        .config(extra)
        .start()
}

#[test]
fn simple_vhost_hosts_default_and_hostile_values() {
    let s = vhosts(
        "server.modules += ( \"mod_simple_vhost\" )\n\
         simple-vhost.server-root = \"{dir}/vhosts\"\n\
         simple-vhost.default-host = \"default.example\"\n\
         simple-vhost.document-root = \"htdocs\"",
    );
    let long = "a".repeat(5000);
    for (host, body) in [
        ("a.example", "site a"),
        ("B.Example", "site b"),
        ("a.example:8080", "site a"),
        ("a.example.", "site a"),
        ("unknown.example", "default site"),
        ("..", "default site"),
        ("a.example/..", "default site"),
        ("../secret.txt", "default site"),
        (long.as_str(), "default site"),
    ] {
        let r = get(&s, "/", host);
        if r.status == 400 {
            // lighttpd answers 400 to an invalid Host; either way nothing leaves the root.
            continue;
        }
        assert_eq!(r.status, 200, "{host:.40}: {}", r.describe());
        assert_eq!(r.text(), body, "{host:.40}");
    }
    // A dot-segment path cannot leave the vhost's document root.
    let r = get(&s, "/../secret.txt", "a.example");
    assert_ne!(r.text(), "outside");
    assert_ne!(r.text(), "outside too");
}

#[test]
fn simple_vhost_without_server_root_in_a_host_block_keeps_that_docroot() {
    // lighttpd's rule: simple-vhost applies wherever simple-vhost.server-root is set, also
    // over a server.document-root of a matching $HTTP["host"] block; "" switches it off.
    let s = vhosts(
        "server.modules += ( \"mod_simple_vhost\" )\n\
         simple-vhost.server-root = \"{dir}/vhosts\"\n\
         simple-vhost.document-root = \"htdocs\"\n\
         $HTTP[\"host\"] == \"a.example\" {\n  server.document-root = \"{docroot}\"\n}\n\
         $HTTP[\"host\"] == \"b.example\" {\n  server.document-root = \"{docroot}\"\n  \
         simple-vhost.server-root = \"\"\n}",
    );
    assert_eq!(get(&s, "/", "a.example").text(), "site a");
    assert_eq!(get(&s, "/", "b.example").text(), "main docroot");
    // No default host and no directory for the host: the configured docroot stays.
    assert_eq!(get(&s, "/", "c.example").text(), "main docroot");
}

#[test]
fn evhost_pattern() {
    let s = builder()
        .file("index.html", "main docroot")
        .dir_file("ev/example/www/index.html", "www of example")
        .dir_file("ev/example/index.html", "example itself")
        .config(
            "server.modules += ( \"mod_evhost\" )\n\
             evhost.path-pattern = \"{dir}/ev/%2/%3/\"",
        )
        .start();
    assert_eq!(get(&s, "/", "www.example.org").text(), "www of example");
    assert_eq!(get(&s, "/", "WWW.example.org:81").text(), "www of example");
    assert_eq!(get(&s, "/", "example.org").text(), "example itself");
    // No such directory, or an unusable Host: the configured root.
    assert_eq!(get(&s, "/", "www.other.org").text(), "main docroot");
    for host in ["..", "a/../..", "%2e%2e.org"] {
        let r = get(&s, "/", host);
        assert!(
            r.status == 400 || r.text() == "main docroot",
            "{host}: {}",
            r.describe()
        );
    }
}

fn userdirs(extra: &str) -> Server {
    builder()
        .file("index.html", "main docroot")
        .dir_file("homes/jan/public_html/index.html", "jan's page")
        .dir_file("homes/jan/public_html/sub/f.txt", "jan's file")
        .dir_file("homes/ann/public_html/index.html", "ann's page")
        .dir_file("homes/j/jo/public_html/index.html", "letterhome")
        .dir_file("homes/secret.txt", "outside")
        .config("server.modules += ( \"mod_userdir\" )\nuserdir.path = \"public_html\"")
        .config(extra)
        .start()
}

#[test]
fn userdir_with_basepath() {
    let s = userdirs(
        "userdir.basepath = \"{dir}/homes\"\n\
         userdir.exclude-user = ( \"ann\" )",
    );
    assert_eq!(s.get("/~jan/").text(), "jan's page");
    assert_eq!(s.get("/~jan/sub/f.txt").text(), "jan's file");
    // Excluded: the request goes on under the document root, where nothing is.
    assert_eq!(s.get("/~ann/").status, 404);
    assert_eq!(s.get("/~nobody/").status, 404);
    // "/~jan" without the slash: 301 to the directory, query kept, before any user check.
    let r = s.get("/~jan?x=1");
    assert_eq!(r.status, 301, "{}", r.describe());
    assert_eq!(r.header("Location"), Some("/~jan/?x=1"));
    let r = s.get("/~ann");
    assert_eq!(r.status, 301);
    let r = s.get("/~j%20n");
    assert_eq!(r.status, 301);
    assert_eq!(r.header("Location"), Some("/~j%20n/"));
    // Hostile user names never leave the base path.
    for path in [
        "/~../secret.txt",
        "/~..%2fsecret.txt",
        "/~.jan/",
        "/~%2e%2e/secret.txt",
    ] {
        let r = s.get(path);
        assert!(!r.text().contains("outside"), "{path}: {}", r.describe());
        assert_ne!(r.status, 200, "{path}: {}", r.describe());
    }
}

#[test]
fn userdir_include_user_and_letterhomes() {
    let s = userdirs("userdir.basepath = \"{dir}/homes\"\nuserdir.include-user = ( \"jan\" )");
    assert_eq!(s.get("/~jan/").text(), "jan's page");
    assert_eq!(s.get("/~ann/").status, 404);
    let s = userdirs("userdir.basepath = \"{dir}/homes\"\nuserdir.letterhomes = \"enable\"");
    assert_eq!(s.get("/~jo/").text(), "letterhome");
    let s = userdirs("userdir.basepath = \"{dir}/homes\"\nuserdir.active = \"disable\"");
    assert_eq!(s.get("/~jan/").status, 404);
}

fn wait_line(path: &std::path::Path, needle: &str) -> Option<String> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if let Some(l) = text.lines().find(|l| l.contains(needle)) {
            return Some(l.to_string());
        }
        if Instant::now() > deadline {
            return None;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

const DENY_FORWARDED: &str = "$HTTP[\"remote-ip\"] == \"192.0.2.7\" {\n  \
                              url.access-deny = ( \"\" )\n}\n\
                              $HTTP[\"remote-ip\"] == \"198.51.100.0/24\" {\n  \
                              url.access-deny = ( \"\" )\n}\n\
                              $HTTP[\"scheme\"] == \"https\" {\n  \
                              url.access-deny = ( \".https\" )\n}";

#[test]
fn extforward_trusted_peer_changes_conditions_and_log() {
    let b = builder()
        .file("index.html", "home")
        .file("a.https", "only over http")
        .config(
            "server.modules += ( \"mod_extforward\", \"mod_access\", \"mod_accesslog\" )\n\
             extforward.forwarder = ( \"127.0.0.1\" => \"trust\" )\n\
             accesslog.filename = \"{dir}/access.log\"",
        )
        .config(DENY_FORWARDED);
    let log = b.dir().join("access.log");
    let s = b.start();
    assert_eq!(get_with(&s, "/", "").status, 200);
    assert_eq!(
        get_with(&s, "/", "X-Forwarded-For: 203.0.113.9\r\n").status,
        200
    );
    let r = get_with(&s, "/?fwd", "X-Forwarded-For: 192.0.2.7\r\n");
    assert_eq!(r.status, 403, "{}", r.describe());
    let line = wait_line(&log, "/?fwd").expect("access log line");
    assert!(line.starts_with("192.0.2.7 "), "{line}");
    // The rightmost untrusted hop counts; a client-written left part does not.
    assert_eq!(
        get_with(&s, "/", "X-Forwarded-For: 192.0.2.7, 203.0.113.9\r\n").status,
        200
    );
    assert_eq!(
        get_with(&s, "/", "X-Forwarded-For: 203.0.113.9, 192.0.2.7\r\n").status,
        403
    );
    // Networks in conditions see the forwarded address too.
    assert_eq!(
        get_with(&s, "/", "X-Forwarded-For: 198.51.100.20\r\n").status,
        403
    );
    // The forwarded scheme is what $HTTP["scheme"] sees.
    assert_eq!(get_with(&s, "/a.https", "").status, 200);
    let r = get_with(
        &s,
        "/a.https",
        "X-Forwarded-For: 203.0.113.9\r\nX-Forwarded-Proto: https\r\n",
    );
    assert_eq!(r.status, 403, "{}", r.describe());
    // A hop that is not an address changes nothing.
    assert_eq!(
        get_with(&s, "/", "X-Forwarded-For: nonsense\r\n").status,
        200
    );
}

#[test]
fn extforward_untrusted_peer_is_ignored() {
    let s = builder()
        .file("index.html", "home")
        .config(
            "server.modules += ( \"mod_extforward\", \"mod_access\" )\n\
             extforward.forwarder = ( \"10.0.0.1\" => \"trust\" )",
        )
        .config(DENY_FORWARDED)
        .start();
    assert_eq!(
        get_with(&s, "/", "X-Forwarded-For: 192.0.2.7\r\n").status,
        200
    );
    assert_eq!(
        get_with(&s, "/", "Forwarded: for=192.0.2.7\r\n").status,
        200
    );
    // Nor is a bad header from it refused: it is never read.
    assert_eq!(
        get_with(&s, "/", "Forwarded: for=\"192.0.2.7\r\n").status,
        200
    );
}

#[test]
fn extforward_forwarded_header_and_malformed() {
    let s = builder()
        .file("index.html", "home")
        .config(
            "server.modules += ( \"mod_extforward\", \"mod_access\" )\n\
             extforward.forwarder = ( \"127.0.0.1\" => \"trust\" )\n\
             extforward.headers = ( \"Forwarded\" )",
        )
        .config(DENY_FORWARDED)
        .start();
    assert_eq!(
        get_with(&s, "/", "Forwarded: for=203.0.113.9\r\n").status,
        200
    );
    assert_eq!(
        get_with(&s, "/", "Forwarded: for=192.0.2.7\r\n").status,
        403
    );
    assert_eq!(
        get_with(
            &s,
            "/",
            "Forwarded: for=192.0.2.7;proto=http, for=127.0.0.1\r\n"
        )
        .status,
        403
    );
    // X-Forwarded-For is not among the configured headers.
    assert_eq!(
        get_with(&s, "/", "X-Forwarded-For: 192.0.2.7\r\n").status,
        200
    );
    // Malformed from a trusted peer: 400.
    let r = get_with(&s, "/", "Forwarded: for=\"192.0.2.7\r\n");
    assert_eq!(r.status, 400, "{}", r.describe());
    let many = vec!["for=192.0.2.1"; 100].join(", ");
    let r = get_with(&s, "/", &format!("Forwarded: {many}\r\n"));
    assert_eq!(r.status, 400, "{}", r.describe());
}

#[test]
fn hap_proxy_keys_stay_refused() {
    let out = builder()
        .config(
            "server.modules += ( \"mod_extforward\" )\n\
             extforward.hap-PROXY = \"enable\"",
        )
        .run(&["-t"]);
    assert!(!out.status.success(), "{}", out.describe());
}
