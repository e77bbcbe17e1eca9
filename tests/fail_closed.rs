//! Fail closed: a lighttpd config that relies on a module lightd does not implement, and that
//! protects something (access, auth, TLS, backends, security headers...), is refused by `-t`,
//! `-tt` and at start, naming each place; harmless keys stay warnings. Warnings and errors go
//! to server.errorlog as well as stderr, once each; `-p` shows what is ignored; lighttpd's
//! other flags are accepted or refused with a reason.

mod common;

use std::fs;
use std::net::TcpStream;
use std::os::fd::{FromRawFd, OwnedFd};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::*;

/// Every protective lighttpd module lightd does not implement, with one of its keys (None:
/// the module has no keys of its own) and a value that key takes. README's table says the same.
const PROTECTIVE: &[(&str, Option<(&str, &str)>)] = &[
    ("mod_access", Some(("url.access-deny", "( \"~\", \".inc\" )"))),
    ("mod_ajp13", Some(("ajp13.server", "( \"/\" => ( ( \"host\" => \"127.0.0.1\", \"port\" => 8009 ) ) )"))),
    ("mod_alias", Some(("alias.url", "( \"/doc/\" => \"/usr/share/doc/\" )"))),
    ("mod_auth", Some(("auth.require", "( \"/admin/\" => ( \"method\" => \"basic\", \"realm\" => \"a\", \"require\" => \"valid-user\" ) )"))),
    ("mod_authn_file", Some(("auth.backend.htpasswd.userfile", "\"/etc/lighttpd/htpasswd\""))),
    ("mod_authn_dbi", None),
    ("mod_authn_gssapi", None),
    ("mod_authn_ldap", Some(("auth.backend.ldap.hostname", "\"ldap.example.org\""))),
    ("mod_authn_mysql", None),
    ("mod_authn_pam", Some(("auth.backend.pam.opts", "( \"service\" => \"http\" )"))),
    ("mod_authn_sasl", None),
    ("mod_cgi", Some(("cgi.assign", "( \".pl\" => \"/usr/bin/perl\" )"))),
    ("mod_cml", Some(("cml.extension", "\".cml\""))),
    ("mod_evasive", Some(("evasive.max-conns-per-ip", "10"))),
    ("mod_evhost", Some(("evhost.path-pattern", "\"/srv/%3/\""))),
    ("mod_extforward", Some(("extforward.forwarder", "( \"10.0.0.1\" => \"trust\" )"))),
    ("mod_fastcgi", Some(("fastcgi.server", "( \".php\" => ( ( \"socket\" => \"/run/php.sock\" ) ) )"))),
    ("mod_geoip", Some(("geoip.db-filename", "\"/usr/share/GeoIP/GeoIP.dat\""))),
    ("mod_magnet", Some(("magnet.attract-raw-url-to", "( \"/etc/lighttpd/a.lua\" )"))),
    ("mod_maxminddb", Some(("maxminddb.activate", "\"enable\""))),
    ("mod_mysql_vhost", Some(("mysql-vhost.db", "\"vhosts\""))),
    ("mod_openssl", Some(("ssl.engine", "\"enable\""))),
    ("mod_gnutls", Some(("ssl.pemfile", "\"/etc/ssl/site.pem\""))),
    ("mod_mbedtls", Some(("ssl.privkey", "\"/etc/ssl/site.key\""))),
    ("mod_wolfssl", Some(("ssl.ca-file", "\"/etc/ssl/ca.pem\""))),
    ("mod_nss", Some(("ssl.cipher-list", "\"HIGH\""))),
    ("mod_boringssl", Some(("ssl.verifyclient.activate", "\"enable\""))),
    ("mod_proxy", Some(("proxy.server", "( \"\" => ( ( \"host\" => \"127.0.0.1\", \"port\" => 8080 ) ) )"))),
    ("mod_redirect", Some(("url.redirect", "( \"^/old$\" => \"/new\" )"))),
    ("mod_rewrite", Some(("url.rewrite-once", "( \"^/a$\" => \"/b\" )"))),
    ("mod_scgi", Some(("scgi.server", "( \".scgi\" => ( ( \"host\" => \"127.0.0.1\", \"port\" => 9000 ) ) )"))),
    ("mod_secdownload", Some(("secdownload.secret", "\"s3cret\""))),
    ("mod_setenv", Some(("setenv.add-response-header", "( \"Strict-Transport-Security\" => \"max-age=63072000\" )"))),
    ("mod_simple_vhost", Some(("simple-vhost.server-root", "\"/srv/www/\""))),
    ("mod_sockproxy", Some(("sockproxy.server", "( ( \"host\" => \"127.0.0.1\", \"port\" => 22 ) )"))),
    ("mod_ssi", Some(("ssi.extension", "( \".shtml\" )"))),
    ("mod_trigger_b4_dl", Some(("trigger-before-download.trigger-url", "\"^/trigger/\""))),
    ("mod_userdir", Some(("userdir.path", "\"public_html\""))),
    ("mod_vhostdb", Some(("vhostdb.backend", "\"dbi\""))),
    ("mod_vhostdb_dbi", None),
    ("mod_vhostdb_ldap", None),
    ("mod_vhostdb_mysql", None),
    ("mod_vhostdb_pgsql", None),
    ("mod_webdav", Some(("webdav.activate", "\"enable\""))),
    ("mod_wstunnel", Some(("wstunnel.server", "( \"/ws\" => ( ( \"host\" => \"127.0.0.1\", \"port\" => 8081 ) ) )"))),
];

/// Whether this build implements lighttpd module `module`, as `-V` lists them ("+ modules:
/// access, alias, ..."); a module it implements is enforced rather than refused.
fn implemented(module: &str) -> bool {
    let out = run(&["-V"]);
    let name = match module {
        // The file backend belongs to mod_auth here.
        "mod_authn_file" => "auth",
        m => m.strip_prefix("mod_").unwrap_or(m),
    };
    out.stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("+ modules: "))
        .flat_map(|l| l.split(", "))
        .any(|m| m == name)
}

/// Config lines with a setting for `docroot` and server.errorlog, then `extra`.
fn site(extra: &str) -> Builder {
    builder().file("index.html", "public").config(extra)
}

fn assert_refused(out: &Output, line: &str, what: &str, module: &str) {
    assert!(!out.status.success(), "not refused:\n{}", out.describe());
    assert_eq!(out.status.code(), Some(1), "{}", out.describe());
    let needle =
        format!("lightd.conf:{line}: {what} needs {module}, which lightd does not implement");
    assert!(
        out.stderr.contains("refusing to start") && out.stderr.contains(&needle),
        "want {needle:?} in:\n{}",
        out.describe()
    );
    assert!(!out.stdout.contains("Syntax OK"), "{}", out.describe());
}

/// `-t` and `-tt` refuse every protective module when it is loaded, and each of their keys
/// when it is set (even without the module, even inside a conditional), naming file:line and
/// the module.
#[test]
fn every_protective_module_and_key_is_refused_by_the_config_test() {
    // The base config has 3 lines (document-root, bind, port); ours start at line 4.
    let mut refused = 0;
    for (module, key) in PROTECTIVE {
        if implemented(module) {
            // Loaded and set, it is accepted: tests/modules.rs and friends show it enforced.
            let (key, value) = key.unwrap_or(("server.tag", "\"x\""));
            let b = site(&format!(
                "server.modules = ( \"{module}\" )\n$HTTP[\"host\"] =~ \".\" {{\n  {key} = {value}\n}}"
            ));
            let out = b.run(&["-t"]);
            assert!(
                out.status.success() && out.stdout.contains("Syntax OK"),
                "{module}: {}",
                out.describe()
            );
            continue;
        }
        refused += 1;
        let b = site(&format!("server.modules = ( \"{module}\" )"));
        for flag in ["-t", "-tt"] {
            let out = b.run(&[flag]);
            assert_refused(&out, "4", &format!("server.modules: {module}"), module);
        }
        let Some((key, value)) = key else { continue };
        let owner = if key.starts_with("ssl.") {
            "mod_openssl"
        } else if key.starts_with("auth.") {
            "mod_auth"
        } else {
            module
        };
        let b = site(&format!(
            "$HTTP[\"host\"] =~ \".\" {{\n  {key} = {value}\n}}"
        ));
        for flag in ["-t", "-tt"] {
            let out = b.run(&[flag]);
            assert_refused(&out, "5", key, owner);
        }
    }
    // The backends and TLS come later; until then their configs must be refused.
    assert!(refused >= 10, "only {refused} protective modules refused");
}

/// The leaks the fail-closed issue found: each config either starts and enforces what it asks
/// (modules lightd now has) or refuses to start, exiting 1 without ever listening.
#[test]
fn protective_configs_are_enforced_or_refuse_to_start() {
    // Implemented: the protection holds.
    if implemented("mod_access") {
        let s = site("server.modules = ( \"mod_access\" )\nurl.access-deny = ( \"~\", \".inc\" )")
            .file("db.inc", "secret")
            .file("page.html~", "old")
            .start();
        assert_eq!(s.get("/db.inc").status, 403);
        assert_eq!(s.get("/page.html~").status, 403);
        assert_eq!(s.get("/index.html").status, 200);
    }
    if implemented("mod_setenv") {
        let s = site("server.modules = ( \"mod_setenv\" )\nsetenv.add-response-header = ( \"X-Frame-Options\" => \"DENY\" )")
            .start();
        let r = s.get("/index.html");
        assert_eq!(r.status, 200);
        assert_eq!(r.header("X-Frame-Options"), Some("DENY"), "{r:?}");
    }
    if implemented("mod_dirlisting") {
        let s = site("dir-listing.activate = \"enable\"\ndir-listing.exclude = ( \"\\.inc$\" )")
            .file("d/db.inc", "secret")
            .file("d/page.html", "public")
            .start();
        let r = s.get("/d/");
        assert_eq!(r.status, 200, "{r:?}");
        assert!(
            r.text().contains("page.html") && !r.text().contains("db.inc"),
            "{r:?}"
        );
    }
    if implemented("mod_auth") {
        let s = site("server.modules = ( \"mod_auth\" )\nauth.backend = \"plain\"\n\
                      auth.backend.plain.userfile = \"{dir}/users\"\n\
                      auth.require = ( \"/\" => ( \"method\" => \"basic\", \"realm\" => \"a\", \"require\" => \"valid-user\" ) )")
            .dir_file("users", "jan:jan\n")
            .start();
        assert_eq!(s.get("/index.html").status, 401);
    }
    for (module, key, value) in [
        ("mod_auth", "auth.require", "( \"/\" => ( \"method\" => \"basic\", \"realm\" => \"a\", \"require\" => \"valid-user\" ) )"),
        ("mod_access", "url.access-deny", "( \"~\", \".inc\" )"),
        ("mod_cgi", "cgi.assign", "( \".pl\" => \"/usr/bin/perl\" )"),
        ("mod_fastcgi", "fastcgi.server", "( \".php\" => ( ( \"socket\" => \"/run/php.sock\" ) ) )"),
        ("mod_openssl", "ssl.engine", "\"enable\""),
        ("mod_extforward", "extforward.forwarder", "( \"127.0.0.1\" => \"trust\" )"),
        ("mod_setenv", "setenv.add-response-header", "( \"X-Frame-Options\" => \"DENY\" )"),
        // A build without the full listing (feature dirlisting) refuses it.
        ("mod_dirlisting", "dir-listing.exclude", "( \"\\.inc$\" )"),
    ] {
        if implemented(module) {
            continue;
        }
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let b = site(&format!("server.port := {port}\n{key} = {value}"));
        let started = Instant::now();
        let mut server = b.spawn(&["-D"]);
        let status = server
            .wait_exit(CMD_TIMEOUT)
            .unwrap_or_else(|| panic!("{key}: lightd is still running\n{}", server.log_text()));
        assert_eq!(status.code(), Some(1), "{key}: {}", server.log_text());
        assert!(
            server.stderr().contains("refusing to start") && server.stderr().contains(key),
            "{key}: {}",
            server.stderr()
        );
        assert!(
            TcpStream::connect(("127.0.0.1", port)).is_err(),
            "{key}: something listens on {port}"
        );
        assert!(started.elapsed() < CMD_TIMEOUT);
    }
}

/// Refusals, warnings and start-up errors reach server.errorlog as well as stderr, once in
/// each, with the file and line they are about.
#[test]
fn warnings_and_refusals_go_to_the_error_log_too_once_each() {
    let b = site(
        "upload-progress.progress-url = \"/p\"\nsockproxy.server = ( ( \"host\" => \"127.0.0.1\", \"port\" => 22 ) )",
    )
    .errorlog();
    let log = b.dir().join("error.log");
    let mut server = b.spawn(&["-D"]);
    let status = server.wait_exit(CMD_TIMEOUT).expect("lightd still running");
    assert_eq!(status.code(), Some(1));
    let errlog = fs::read_to_string(&log).unwrap_or_default();
    let stderr = server.stderr();
    let warning = "lightd.conf:4: lighttpd key 'upload-progress.progress-url' (mod_uploadprogress) is not implemented by lightd and is ignored";
    let refusal =
        "lightd.conf:5: sockproxy.server needs mod_sockproxy, which lightd does not implement";
    for (place, text) in [("stderr", &stderr), ("server.errorlog", &errlog)] {
        for needle in [warning, refusal, "refusing to start"] {
            assert_eq!(
                text.matches(needle).count(),
                1,
                "{needle:?} should appear once in {place}:\n{text}"
            );
        }
    }
}

/// Errors at start that are not about keys (here: a missing document root, found by the same
/// checks as -tt) reach the error log as well.
#[test]
fn start_up_errors_go_to_the_error_log_too() {
    let b = builder().raw_config(
        "server.document-root = \"{dir}/missing\"\nserver.bind = \"127.0.0.1\"\nserver.port = 0\n\
         server.errorlog = \"{dir}/error.log\"\n",
    );
    let log = b.dir().join("error.log");
    let mut server = b.spawn(&["-D"]);
    let status = server.wait_exit(CMD_TIMEOUT).expect("lightd still running");
    assert_eq!(status.code(), Some(1));
    let errlog = fs::read_to_string(&log).unwrap_or_default();
    for (place, text) in [("stderr", server.stderr()), ("server.errorlog", errlog)] {
        assert_eq!(
            text.matches("lightd.conf:1: server.document-root").count(),
            1,
            "{place}:\n{text}"
        );
    }
}

/// `-p` shows every key lightd ignores, where it was set, as a comment (so the output still
/// loads), in its block; a block with only ignored keys is no longer printed as `{ }`.
#[test]
fn print_marks_ignored_keys() {
    let b = site("server.name = \"www.example.org\"\n$HTTP[\"host\"] == \"a\" {\n  flv-streaming.extensions = ( \".flv\" )\n}");
    let out = b.run(&["-p"]);
    assert!(out.status.success(), "{}", out.describe());
    let conf = b.config_path().display().to_string();
    for needle in [
        format!("# ignored (not implemented by lightd), {conf}:4: server.name = \"www.example.org\"\n"),
        format!("$HTTP[\"host\"] == \"a\" {{\n    # ignored (not implemented by lightd), {conf}:6: flv-streaming.extensions = ( \".flv\" )\n}}"),
    ] {
        assert!(out.stdout.contains(&needle), "{needle:?} not in:\n{}", out.stdout);
    }
    // -p refuses what the server would refuse.
    let out =
        site("sockproxy.server = ( ( \"host\" => \"127.0.0.1\", \"port\" => 22 ) )").run(&["-p"]);
    assert_refused(&out, "4", "sockproxy.server", "mod_sockproxy");
}

#[test]
fn lighttpd_flags_are_accepted_or_refused_with_a_reason() {
    // -m DIR: lighttpd's module directory; lightd's modules are built in.
    let b = site("");
    let out = b.run(&["-m", "/usr/lib/lighttpd", "-t"]);
    assert!(
        out.status.success() && out.stdout.contains("Syntax OK"),
        "{}",
        out.describe()
    );

    let out = run(&["-1", "-f", "/nonexistent"]);
    assert_eq!(out.status.code(), Some(2), "{}", out.describe());
    assert!(
        out.stderr.contains("-1 (serve one connection on stdin"),
        "{}",
        out.describe()
    );

    // lighttpd has no -S either.
    let out = run(&["-S"]);
    assert_eq!(out.status.code(), Some(2), "{}", out.describe());
    assert!(
        out.stderr.contains("unknown option -S"),
        "{}",
        out.describe()
    );

    for bad in ["x", "-3", ""] {
        let out = run(&["-i", bad, "-t", "-f", "/nonexistent"]);
        assert_eq!(out.status.code(), Some(2), "-i {bad:?}: {}", out.describe());
        assert!(out.stderr.contains("idle timeout"), "{}", out.describe());
    }
}

/// `-i SECS`: with nothing happening for SECS seconds the server stops gracefully by itself,
/// as lighttpd's -i does; activity keeps it running.
#[test]
fn idle_timeout_stops_the_server_gracefully() {
    let mut server = site("").spawn_with(&["-D", "-i", "2"], |_| {});
    server.wait_listening();
    let started = Instant::now();
    // Activity for a while: requests every half second keep it up past its idle limit.
    while started.elapsed() < Duration::from_secs(3) {
        assert_eq!(server.get("/index.html").status, 200);
        assert!(
            server.is_running(),
            "stopped while busy\n{}",
            server.log_text()
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    let status = server
        .wait_exit(Duration::from_secs(20))
        .unwrap_or_else(|| panic!("still running when idle\n{}", server.log_text()));
    assert!(status.success(), "{status:?}\n{}", server.log_text());
    assert!(
        server
            .log_text()
            .contains("idle timeout 2 s exceeded, initiating graceful shutdown"),
        "{}",
        server.log_text()
    );
}

/// `-V` says what the regular expressions are (Perl-compatible, by regex-lite, which is what
/// lighttpd's suite asks "+ PCRE support" for), and lightd -V | head -1 is not a crash.
#[test]
fn version_features_are_honest_and_survive_a_closed_pipe() {
    let out = run(&["-V"]);
    assert!(out.status.success());
    assert!(out.stdout.contains("\t+ PCRE support"), "{}", out.stdout);
    assert!(out.stdout.contains("regex-lite"), "{}", out.stdout);

    // A pipe whose reader is already gone: the write fails with EPIPE.
    let mut fds = [0; 2];
    // SAFETY: valid pointer to two ints; both descriptors are owned below.
    assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
    // SAFETY: fresh descriptors from pipe2, each owned once.
    let (rd, wr) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(rd);
    for flag in ["-V", "-v", "-h"] {
        let mut cmd = lightd_command(&[flag]);
        cmd.stdout(Stdio::from(wr.try_clone().unwrap()));
        let status = cmd.status().expect("run lightd");
        assert_eq!(
            status.code(),
            Some(0),
            "lightd {flag} into a closed pipe: {status:?}"
        );
    }
}
