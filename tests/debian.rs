//! Debian's stock /etc/lighttpd/lighttpd.conf (bookworm, lighttpd 1.4.69) starts and serves:
//! mod_indexfile, mod_access, mod_alias and mod_redirect loaded, `url.access-deny = ( "~",
//! ".inc" )`, the javascript alias from conf-enabled, the include_shell helpers. Only what ties
//! it to a machine is changed: paths point into a temporary directory, the port is any free one
//! on 127.0.0.1, the perl helpers are replaced by commands printing what they print, and the
//! user and group lines are dropped (the test may not run as root).
//!
//! With TLS, the same with Debian's conf-available/10-ssl.conf enabled: the global
//! `ssl.pemfile` inherited by `$SERVER["socket"]` blocks that only say `ssl.engine = "enable"`.

mod common;

use common::*;

/// The stock file, with the substitutions above marked.
const STOCK: &str = r#"server.modules = (
	"mod_indexfile",
	"mod_access",
	"mod_alias",
 	"mod_redirect",
)

server.document-root        = "{docroot}"
server.upload-dirs          = ( "/var/cache/lighttpd/uploads" )
server.errorlog             = "{dir}/error.log"
server.pid-file             = "{dir}/lighttpd.pid"
# (server.username / server.groupname "www-data" dropped)
server.port                 = 0
server.bind                 = "127.0.0.1"

# features
#https://redmine.lighttpd.net/projects/lighttpd/wiki/Server_feature-flagsDetails
server.feature-flags       += ("server.h2proto" => "enable")
server.feature-flags       += ("server.h2c"     => "enable")
server.feature-flags       += ("server.graceful-shutdown-timeout" => 5)
#server.feature-flags       += ("server.graceful-restart-bg" => "enable")

# strict parsing and normalization of URL for consistency and security
# https://redmine.lighttpd.net/projects/lighttpd/wiki/Server_http-parseoptsDetails
# (might need to explicitly set "url-path-2f-decode" = "disable"
#  if a specific application is encoding URLs inside url-path)
server.http-parseopts = (
  "header-strict"           => "enable",# default
  "host-strict"             => "enable",# default
  "host-normalize"          => "enable",# default
  "url-normalize-unreserved"=> "enable",# recommended highly
  "url-normalize-required"  => "enable",# recommended
  "url-ctrls-reject"        => "enable",# recommended
  "url-path-2f-decode"      => "enable",# recommended highly (unless breaks app)
 #"url-path-2f-reject"      => "enable",
  "url-path-dotseg-remove"  => "enable",# recommended highly (unless breaks app)
 #"url-path-dotseg-reject"  => "enable",
 #"url-query-20-plus"       => "enable",# consistency in query string
)

index-file.names            = ( "index.php", "index.html" )
url.access-deny             = ( "~", ".inc" )
static-file.exclude-extensions = ( ".php", ".pl", ".fcgi" )

# default listening port for IPv6 falls back to the IPv4 port
## Use ipv6 if available
#include_shell "/usr/share/lighttpd/use-ipv6.pl " + server.port
include_shell "echo '$SERVER[\"socket\"] == \"[::1]:0\" { }'"
#include_shell "/usr/share/lighttpd/create-mime.conf.pl"
include_shell "printf 'mimetype.assign = (\n  \".html\" => \"text/html\",\n  \".css\" => \"text/css\",\n  \".js\" => \"text/javascript\",\n)\n'"
include "{dir}/conf-enabled/*.conf"

#server.compat-module-load   = "disable"
server.modules += (
	"mod_dirlisting",
	"mod_staticfile",
)
"#;

#[test]
fn debian_stock_config_starts_and_serves() {
    let b = builder()
        .raw_config(STOCK)
        .listeners(2)
        .errorlog()
        .file("index.html", "<h1>It works</h1>")
        .file("db.inc", "<?php $password = 'secret';")
        .file("page.html~", "editor backup")
        .file("app/index.php", "<?php echo 'source';")
        .file("app/index.html", "app html")
        .dir_file("javascript/jquery/jquery.js", "/* jquery */");
    let alias = format!(
        "alias.url += (\"/javascript\" => \"{}/javascript\")\n",
        b.dir().display()
    );
    let b = b.dir_file("conf-enabled/90-javascript-alias.conf", alias);
    // -tt accepts it: nothing refused, only the two keys lightd ignores are warned about.
    let out = b.run(&["-tt"]);
    assert!(out.status.success(), "{}", out.describe());
    let s = b.start();
    for addr in s.addrs().to_vec() {
        let mut c = Conn::connect(addr);
        c.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
        let r = c.read_response();
        assert_eq!(r.status, 200, "{addr}: {}", r.describe());
        assert_eq!(r.text(), "<h1>It works</h1>");
    }
    // What the config protects stays protected.
    for path in ["/db.inc", "/page.html~", "/app/index.php"] {
        let r = s.get(path);
        assert_eq!(r.status, 403, "{path}: {}", r.describe());
        assert!(!r.text().contains("secret") && !r.text().contains("source"));
    }
    // index.php is first in index-file.names but excluded as a static file: index.html serves.
    assert_eq!(s.get("/app/").text(), "app html");
    // The alias from conf-enabled.
    let r = s.get("/javascript/jquery/jquery.js");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "/* jquery */"),
        "{}",
        r.describe()
    );
    assert_eq!(r.header("Content-Type"), Some("text/javascript"));
    assert_eq!(s.get("/nothing-here").status, 404);
}

/// Debian's conf-available/10-ssl.conf (lighttpd 1.4.69), enabled. Changed: the pemfile's path
/// (a test certificate and key in one file, as Debian's server.pem), the socket (any free port
/// on 127.0.0.1 instead of 0.0.0.0:443), and use-ipv6.pl replaced by what it prints for 443
/// (on [::1], port 0).
#[cfg(feature = "tls")]
const SSL_CONF: &str = r#"# /usr/share/doc/lighttpd/ssl.txt
# -*- conflicts: mbedtls, gnutls, nss, wolfssl -*-

server.modules += ( "mod_openssl" )

# ssl.* in global scope gets inherited by
#   $SERVER["socket"] == "..." { ssl.engine = "enable" }
ssl.pemfile = "{pem}"

$SERVER["socket"] == "127.0.0.1:0" {
	ssl.engine  = "enable"
}
include_shell "printf '$SERVER[\"socket\"] == \"[::1]:0\" {\nssl.engine = \"enable\"\n}\n'"
"#;

#[cfg(feature = "tls")]
#[test]
fn debian_stock_config_with_10_ssl_conf_serves_https() {
    use common::tls::{curl_get, s, speaks_tls, Pki};
    let pki = Pki::new();
    let b = builder()
        .raw_config(STOCK)
        .listeners(4)
        .errorlog()
        .file("index.html", "<h1>It works</h1>")
        .file("db.inc", "<?php $password = 'secret';");
    let ssl = SSL_CONF.replace("{pem}", s(&pki.localhost.both));
    let b = b.dir_file("conf-enabled/10-ssl.conf", ssl);
    let out = b.run(&["-tt"]);
    assert!(out.status.success(), "{}", out.describe());
    let srv = b.start();
    // Two plain listeners (the stock file's) and two TLS ones (10-ssl.conf's).
    let addrs = srv.addrs().to_vec();
    assert_eq!(addrs.len(), 4, "{addrs:?}");
    let (tls, plain): (Vec<_>, Vec<_>) = addrs.into_iter().partition(|a| speaks_tls(*a));
    assert_eq!(
        (tls.len(), plain.len()),
        (2, 2),
        "TLS {tls:?}, plain {plain:?}"
    );
    for addr in tls {
        if addr.is_ipv6() {
            // curl's --resolve takes the address; the certificate names 127.0.0.1 and
            // localhost only, so the IPv6 listener is checked for a handshake above.
            continue;
        }
        let f = curl_get(&pki.ca, addr, "localhost", "/");
        assert_eq!(
            (f.code, f.body.as_slice()),
            (200, &b"<h1>It works</h1>"[..]),
            "{addr}"
        );
        let f = curl_get(&pki.ca, addr, "localhost", "/db.inc");
        assert_eq!(f.code, 403, "{addr}: the stock url.access-deny over TLS");
    }
    for addr in plain {
        let mut c = Conn::connect(addr);
        c.send(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
        assert_eq!(c.read_response().status, 200, "{addr}");
    }
}
