//! Name-based virtual hosting: lighttpd's mod_simple_vhost and mod_evhost, as pure functions
//! from a request's Host to the document root to serve it from.
//!
//! Both modules splice the Host into a filesystem path, so the Host is first checked the way
//! lighttpd's default ("host-strict") policy checks it: DNS labels of letters, digits and
//! hyphens, a dotted quad, or a bracketed IPv6 literal, then an optional numeric port. What
//! passes cannot contain '/', an empty label, or a label starting with '.', so no Host can
//! name ".." or leave the configured root. lighttpd answers 400 to a Host that fails the
//! check before these modules run; here such a Host is simply not used (simple-vhost falls
//! back to its default host, evhost leaves the document root alone).

use std::path::{Path, PathBuf};

pub use crate::config::vhost::SimpleVhost;
use crate::config::vhost::{append_slash, Pattern, Piece};
use crate::http::host::Host;
#[cfg(test)]
use {crate::config::vhost::MAX_PATTERN_SEQUENCES, crate::http::host::MAX_HOST_LEN};

/// The name part of a configured host ("example.org:8080" -> "example.org").
fn strip_port(host: &str) -> &str {
    if host.starts_with('[') {
        if let Some(close) = host.find(']') {
            return host.get(..=close).unwrap_or(host);
        }
    }
    host.split(':').next().unwrap_or(host)
}

/// Append `part` to `out` with exactly one '/' between them (lighttpd's path join: a leading
/// slash of `part` is dropped when `out` already ends in one).
fn join_path(out: &mut String, part: &str) {
    match (out.ends_with('/'), part.starts_with('/')) {
        (true, true) => out.push_str(part.get(1..).unwrap_or_default()),
        (false, false) => {
            out.push('/');
            out.push_str(part);
        }
        _ => out.push_str(part),
    }
}

/// The document root a virtual-host module chose, and the server name that goes with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VhostRoot {
    /// Always ends in '/', as lighttpd's document roots do.
    pub doc_root: PathBuf,
    /// What lighttpd puts in `r->server_name`: the request's authority (port included) when
    /// its own directory was used, else simple-vhost.default-host as configured; None when
    /// the default host is unset (the server name is then left as it was).
    pub server_name: Option<String>,
}

impl SimpleVhost {
    /// server-root + host + document-root, or server-root + document-root without a host.
    fn build(&self, host_name: Option<&str>) -> String {
        let mut out = self.server_root.clone();
        if let Some(h) = host_name {
            out.push_str(h);
        }
        match &self.document_root {
            Some(d) => join_path(&mut out, d),
            None => append_slash(&mut out),
        }
        out
    }

    /// The document root for a request whose Host (or absolute-URI authority) is `host`.
    ///
    /// As lighttpd: the request's own directory if `exists` says it is a directory, else the
    /// default host's (server-root + document-root when no default host is set) if that is
    /// one, else None (the document root stays as configured). A Host that is empty or fails
    /// the strict host check is not used at all. With `debug`, each miss is logged.
    pub fn docroot(
        &self,
        host: Option<&str>,
        exists: &mut dyn FnMut(&Path) -> bool,
    ) -> Option<VhostRoot> {
        if let Some(h) = host.and_then(Host::parse) {
            let path = self.build(Some(h.name()));
            if exists(Path::new(&path)) {
                return Some(VhostRoot {
                    doc_root: PathBuf::from(path),
                    server_name: Some(h.authority().to_string()),
                });
            }
            self.log_miss(&path);
        }
        let path = self.build(self.default_host.as_deref().map(strip_port));
        if exists(Path::new(&path)) {
            return Some(VhostRoot {
                doc_root: PathBuf::from(path),
                server_name: self.default_host.clone(),
            });
        }
        self.log_miss(&path);
        None
    }

    fn log_miss(&self, path: &str) {
        // simple-vhost.debug is how an admin asks why a host was not served from its own
        // directory; the path holds only a checked host name, so it is safe to log.
        if self.debug {
            log::info!("simple-vhost: {} is not a directory", path);
        }
    }
}

/// The parts of a host name evhost substitutes: for "sub2.sub1.domain.tld", %0 is
/// "domain.tld", %1 "tld", %2 "domain", %3 "sub1", %4 "sub2". A one-label name is both %0
/// and %1; an IPv6 literal is only %0.
fn host_part<'a>(h: &'a Host, labels: &[&'a str], n: usize) -> Option<&'a str> {
    let name = h.name();
    if h.is_ip_literal() {
        return (n == 0).then_some(name);
    }
    if n == 0 {
        if labels.len() < 2 {
            return Some(name);
        }
        // The last two labels, as one slice of the name.
        let tail: usize = labels.iter().rev().take(2).map(|l| l.len()).sum::<usize>() + 1;
        return name.get(name.len().saturating_sub(tail)..);
    }
    labels
        .len()
        .checked_sub(n)
        .and_then(|i| labels.get(i))
        .copied()
}

/// The document root evhost builds from `pattern` for the Host value `host`, ending in '/'.
///
/// None when the Host is empty or fails the strict host check, or when the result would have
/// a "." or ".." path segment that a substitution helped form (a pattern such as "/srv/.%3."
/// with a short host name), so that no Host can move the root. lighttpd uses the result only
/// if it is a directory (it logs the miss at error level and keeps the configured root); that
/// check is the caller's. Unknown parts (%4 of "example.org") expand to nothing, as in
/// lighttpd.
pub fn docroot(pattern: &Pattern, host: &str) -> Option<PathBuf> {
    let h = Host::parse(host)?;
    // At most MAX_HOST_LEN / 2 labels.
    let labels: Vec<&str> = if h.is_ip_literal() {
        Vec::new()
    } else {
        h.name().split('.').collect()
    };
    let mut out = String::new();
    // Where each substitution landed, as [start, end] byte ranges of `out` (empty ones too).
    let mut substituted: Vec<(usize, usize)> = Vec::new();
    for piece in &pattern.pieces {
        let start = out.len();
        match piece {
            Piece::Text(t) => {
                out.push_str(t);
                continue;
            }
            Piece::Percent => {
                out.push('%');
                continue;
            }
            Piece::Whole => out.push_str(h.name()),
            Piece::Part(n) => out.push_str(host_part(&h, &labels, *n).unwrap_or_default()),
            Piece::Char(n, m) => {
                let c = host_part(&h, &labels, *n).and_then(|p| p.get(m.checked_sub(1)?..*m));
                out.push_str(c.unwrap_or_default());
            }
        }
        substituted.push((start, out.len()));
    }
    append_slash(&mut out);
    let mut seg_start = 0;
    for seg in out.split('/') {
        let seg_end = seg_start + seg.len();
        let touched = substituted
            .iter()
            .any(|&(s, e)| s <= seg_end && e >= seg_start);
        if touched && (seg == "." || seg == "..") {
            return None;
        }
        seg_start = seg_end + 1;
    }
    Some(PathBuf::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn host_check_table() {
        // (raw, Some((name, authority)) or None)
        let cases: &[(&str, Option<(&str, &str)>)] = &[
            ("example.org", Some(("example.org", "example.org"))),
            (
                "WWW.Example.ORG",
                Some(("www.example.org", "www.example.org")),
            ),
            (
                "www.example.org:8080",
                Some(("www.example.org", "www.example.org:8080")),
            ),
            (
                "www.example.org.",
                Some(("www.example.org", "www.example.org")),
            ),
            (
                "www.example.org.:81",
                Some(("www.example.org", "www.example.org:81")),
            ),
            ("example.org:", Some(("example.org", "example.org"))),
            ("localhost", Some(("localhost", "localhost"))),
            ("a-.b", Some(("a-.b", "a-.b"))),
            ("3com.com", Some(("3com.com", "3com.com"))),
            ("192.0.2.1", Some(("192.0.2.1", "192.0.2.1"))),
            ("192.0.2.1:80", Some(("192.0.2.1", "192.0.2.1:80"))),
            ("[2001:DB8::1]", Some(("[2001:db8::1]", "[2001:db8::1]"))),
            ("[::1]:8080", Some(("[::1]", "[::1]:8080"))),
            ("", None),
            (".", None),
            ("..", None),
            ("a..b", None),
            (".example.org", None),
            ("example.org..", None),
            ("-a.org", None),
            ("a.-b.org", None),
            ("a_b.org", None),
            ("a b", None),
            ("a/b", None),
            ("../../etc", None),
            ("..%2f..", None),
            ("a\\b", None),
            ("a\0b", None),
            ("example.org:80x", None),
            ("example.org:-1", None),
            (":80", None),
            ("1.2.3", None),
            ("1.2.3.4.5", None),
            ("example.123", None),
            ("a.1.2.3", None),
            ("[]", None),
            ("[::1", None),
            ("[::1]x", None),
            ("[::1%eth0]", None),
            ("[1:2:3:4:5:6:7:8:9]", None),
            ("[/..]", None),
        ];
        for (raw, want) in cases {
            let got = Host::parse(raw);
            let got = got.as_ref().map(|h| (h.name(), h.authority()));
            assert_eq!(got, *want, "{:?}", raw);
        }
        assert!(Host::parse(&"a".repeat(MAX_HOST_LEN)).is_some());
        assert!(Host::parse(&"a".repeat(MAX_HOST_LEN + 1)).is_none());
    }

    /// An `exists` that answers from a set of directories and records what was asked.
    struct Fs {
        dirs: HashSet<String>,
        asked: Vec<String>,
    }

    impl Fs {
        fn new(dirs: &[&str]) -> Fs {
            Fs {
                dirs: dirs.iter().map(|d| d.to_string()).collect(),
                asked: Vec::new(),
            }
        }
        fn check(&mut self, p: &Path) -> bool {
            let s = p.to_string_lossy().into_owned();
            let hit = self.dirs.contains(&s);
            self.asked.push(s);
            hit
        }
    }

    fn sv(cfg: &SimpleVhost, host: Option<&str>, fs: &mut Fs) -> Option<(String, Option<String>)> {
        cfg.docroot(host, &mut |p| fs.check(p))
            .map(|r| (r.doc_root.to_string_lossy().into_owned(), r.server_name))
    }

    #[test]
    fn simple_vhost_own_directory_then_default() {
        let cfg = SimpleVhost::new("/srv/vhosts", "default.example:8080", "htdocs", false)
            .expect("server-root set");
        let mut fs = Fs::new(&[
            "/srv/vhosts/www.example.org/htdocs/",
            "/srv/vhosts/default.example/htdocs/",
        ]);
        let own = Some((
            "/srv/vhosts/www.example.org/htdocs/".to_string(),
            Some("www.example.org:81".to_string()),
        ));
        assert_eq!(sv(&cfg, Some("WWW.example.org.:81"), &mut fs), own);
        let dflt = Some((
            "/srv/vhosts/default.example/htdocs/".to_string(),
            Some("default.example:8080".to_string()),
        ));
        assert_eq!(sv(&cfg, Some("nosuch.example"), &mut fs), dflt);
        assert_eq!(
            fs.asked,
            [
                "/srv/vhosts/www.example.org/htdocs/",
                "/srv/vhosts/nosuch.example/htdocs/",
                "/srv/vhosts/default.example/htdocs/"
            ]
        );
        assert_eq!(sv(&cfg, None, &mut fs), dflt);
        assert_eq!(sv(&cfg, Some(""), &mut fs), dflt);
    }

    #[test]
    fn simple_vhost_host_cannot_escape_server_root() {
        let cfg = SimpleVhost::new("/srv/vhosts/", "default", "", false).expect("set");
        // Every directory "exists": only the host check stands between a Host and the path.
        let mut all = |_: &Path| true;
        for evil in [
            "..",
            "../../etc",
            "/etc",
            "a/../../b",
            ".hidden",
            "..:80",
            "%2e%2e",
            "a\0b",
            "[::1]/../x",
        ] {
            let r = cfg.docroot(Some(evil), &mut all).expect("default host");
            assert_eq!(
                r.doc_root,
                PathBuf::from("/srv/vhosts/default/"),
                "{:?}",
                evil
            );
            assert_eq!(r.server_name.as_deref(), Some("default"));
        }
        // Whatever passes the check stays one directory below server-root.
        let r = cfg.docroot(Some("[::1]:80"), &mut all).expect("own");
        assert_eq!(r.doc_root, PathBuf::from("/srv/vhosts/[::1]/"));
    }

    #[test]
    fn simple_vhost_without_default_host() {
        let cfg = SimpleVhost::new("/srv", "", "/htdocs", true).expect("set");
        let mut fs = Fs::new(&["/srv/htdocs/"]);
        assert_eq!(
            sv(&cfg, Some("missing.example"), &mut fs),
            Some(("/srv/htdocs/".to_string(), None))
        );
        let mut none = Fs::new(&[]);
        assert_eq!(sv(&cfg, Some("missing.example"), &mut none), None);
        let cfg = SimpleVhost::new("/srv", "", "", false).expect("set");
        let mut fs = Fs::new(&["/srv/a.example/"]);
        assert_eq!(
            sv(&cfg, Some("a.example"), &mut fs),
            Some(("/srv/a.example/".to_string(), Some("a.example".to_string())))
        );
        assert!(SimpleVhost::new("", "x", "y", false).is_none());
    }

    fn ev(pattern: &str, host: &str) -> Option<String> {
        let p = Pattern::parse(pattern).expect("valid").expect("non-empty");
        docroot(&p, host).map(|p| p.to_string_lossy().into_owned())
    }

    #[test]
    fn evhost_parts() {
        let p = "/w/%0|%1|%2|%3|%4|%5|%_";
        assert_eq!(
            ev(p, "a.b.Example.com:8080").as_deref(),
            Some("/w/example.com|com|example|b|a||a.b.example.com/")
        );
        assert_eq!(
            ev(p, "example.com").as_deref(),
            Some("/w/example.com|com|example||||example.com/")
        );
        assert_eq!(
            ev(p, "localhost:99").as_deref(),
            Some("/w/localhost|localhost|||||localhost/")
        );
        assert_eq!(
            ev(p, "192.0.2.7").as_deref(),
            Some("/w/2.7|7|2|0|192||192.0.2.7/")
        );
        assert_eq!(
            ev(p, "[2001:db8::1]:80").as_deref(),
            Some("/w/[2001:db8::1]||||||[2001:db8::1]/")
        );
        assert_eq!(
            ev("/w/%{2.1}/%{2.3}%{2.0}%{3}/%{2.9}%%/", "www.example.org").as_deref(),
            Some("/w/e/aexamplewww/%/")
        );
        assert_eq!(
            ev("/w/%3/htdocs", "example.org").as_deref(),
            Some("/w//htdocs/")
        );
    }

    #[test]
    fn evhost_refuses_bad_hosts_and_dot_segments() {
        for evil in ["", "..", "../x", "a/b", ".a.b", "a..b", "x_y.org"] {
            assert_eq!(ev("/w/%_/", evil), None, "{:?}", evil);
        }
        // A short host leaves %3 empty: "/w/.%3./" would become "/w/../".
        assert_eq!(ev("/w/.%3./x/", "example.org"), None);
        assert_eq!(
            ev("/w/.%3./x/", "a.example.org").as_deref(),
            Some("/w/.a./x/")
        );
        assert_eq!(ev("/w/%3./x/", "example.org"), None);
        assert_eq!(ev("/w/.%{3.2}/x/", "a.example.org"), None);
        // Dot segments the administrator wrote are theirs.
        assert_eq!(
            ev("/w/../v/%0", "example.org").as_deref(),
            Some("/w/../v/example.org/")
        );
    }

    #[test]
    fn evhost_pattern_errors() {
        assert_eq!(Pattern::parse(""), Ok(None));
        for bad in [
            "/w/%", "/w/%x", "/w/%{x}", "/w/%{1", "/w/%{1.}", "/w/%{1.2", "/w/%{12}",
        ] {
            let e = Pattern::parse(bad).expect_err(bad);
            assert!(e.contains("invalid evhost.path-pattern"), "{}", e);
        }
        let many = "%0".repeat(MAX_PATTERN_SEQUENCES);
        assert!(Pattern::parse(&many).is_ok());
        assert!(Pattern::parse(&format!("{}%1", many)).is_err());
    }
}
