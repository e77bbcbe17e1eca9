//! Which configuration keys and modules exist: the ones lightd implements, the rest of lighttpd
//! 1.4's (accepted with a warning), and spelling suggestions for everything else.

/// How lightd treats a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyKind {
    /// Implemented, server-wide: an error inside a conditional.
    Global,
    /// Implemented and allowed inside conditionals.
    Request,
    /// Implemented but deliberately silent: `server.feature-flags` carries lighttpd tuning
    /// switches that mostly have no meaning for lightd.
    Silent,
    /// A lighttpd 1.4 key lightd does not implement: accepted with a warning, so an existing
    /// lighttpd.conf still loads.
    Unimplemented,
    /// Neither: a warning with a spelling suggestion.
    Unknown,
}

/// Keys lightd implements that only make sense once per server.
pub(crate) const GLOBAL_KEYS: &[&str] = &[
    "server.bind",
    "server.port",
    "server.modules",
    "server.pid-file",
    "server.control-socket",
    "server.max-worker",
    "server.errorlog",
    "server.username",
    "server.groupname",
    "server.max-connections",
    "server.max-fds",
    "server.max-keep-alive-requests",
    "server.max-keep-alive-idle",
    "server.max-read-idle",
    "server.max-write-idle",
    "server.max-request-size",
    "server.max-request-field-size",
    "server.graceful-shutdown-timeout",
    "server.max-request-head-time",
    "server.systemd-socket-activation",
];

/// Keys lightd implements per request (they become `ReqSetting`s inside conditionals).
pub(crate) const REQUEST_KEYS: &[&str] = &[
    "server.document-root",
    "index-file.names",
    "server.indexfiles",
    "server.follow-symlink",
    "server.range-requests",
    "static-file.exclude-extensions",
    "dir-listing.activate",
    "server.dir-listing",
    "mimetype.assign",
    "server.tag",
    "accesslog.filename",
    "accesslog.format",
];

/// Every other key lighttpd 1.4 knows (core and the modules shipped with it, current and
/// removed), so that an existing config loads with a precise warning instead of a guess.
pub(crate) const LIGHTTPD_KEYS: &[&str] = &[
    // core
    "server.name",
    "server.chroot",
    "server.core-files",
    "server.event-handler",
    "server.network-backend",
    "server.errorfile-prefix",
    "server.error-handler",
    "server.error-handler-404",
    "server.error-intercept",
    "server.errorlog-use-syslog",
    "server.syslog-facility",
    "server.breakagelog",
    "server.force-lowercase-filenames",
    "server.protocol-http11",
    "server.stream-request-body",
    "server.stream-response-body",
    "server.kbytes-per-second",
    "server.upload-dirs",
    "server.upload-temp-file-size",
    "server.chunkqueue-chunk-sz",
    "server.http-parseopts",
    "server.http-parseopt-header-strict",
    "server.http-parseopt-host-strict",
    "server.http-parseopt-host-normalize",
    "server.reject-expect-100-with-417",
    "server.stat-cache-engine",
    "server.compat-module-load",
    "server.use-ipv6",
    "server.set-v6only",
    "server.v4mapped",
    "server.defer-accept",
    "server.bsd-accept-filter",
    "server.listen-backlog",
    "server.socket-perms",
    "server.use-noatime",
    "server.max-stat-threads",
    "connection.kbytes-per-second",
    "mimetype.use-xattr",
    "mimetype.xattr-name",
    "etag.use-inode",
    "etag.use-mtime",
    "etag.use-size",
    "debug.log-condition-handling",
    "debug.log-condition-cache-handling",
    "debug.log-file-not-found",
    "debug.log-request-handling",
    "debug.log-request-header",
    "debug.log-request-header-on-error",
    "debug.log-response-header",
    "debug.log-timeouts",
    "debug.log-state-handling",
    "debug.log-ssl-noise",
    // TLS (mod_openssl, mod_gnutls, mod_mbedtls, mod_wolfssl, mod_nss)
    "ssl.engine",
    "ssl.pemfile",
    "ssl.privkey",
    "ssl.ca-file",
    "ssl.ca-dn-file",
    "ssl.ca-crl-file",
    "ssl.cipher-list",
    "ssl.honor-cipher-order",
    "ssl.dh-file",
    "ssl.ec-curve",
    "ssl.disable-client-renegotiation",
    "ssl.use-sslv2",
    "ssl.use-sslv3",
    "ssl.use-compression",
    "ssl.empty-fragments",
    "ssl.read-ahead",
    "ssl.verifyclient.activate",
    "ssl.verifyclient.enforce",
    "ssl.verifyclient.depth",
    "ssl.verifyclient.username",
    "ssl.verifyclient.exportcert",
    "ssl.verifyclient.ca-file",
    "ssl.verifyclient.ca-dn-file",
    "ssl.verifyclient.ca-crl-file",
    "ssl.openssl.ssl-conf-cmd",
    "ssl.acme-tls-1",
    "ssl.stapling-file",
    "ssl.message-digest",
    // mod_access
    "url.access-deny",
    "url.access-allow",
    // mod_accesslog
    "accesslog.use-syslog",
    "accesslog.syslog-level",
    "accesslog.escaping",
    // mod_ajp13
    "ajp13.server",
    "ajp13.balance",
    "ajp13.debug",
    "ajp13.map-extensions",
    // mod_alias
    "alias.url",
    // mod_auth and mod_authn_*
    "auth.backend",
    "auth.require",
    "auth.extern-authn",
    "auth.cache",
    "auth.debug",
    "auth.backend.plain.userfile",
    "auth.backend.htdigest.userfile",
    "auth.backend.htpasswd.userfile",
    "auth.backend.ldap.hostname",
    "auth.backend.ldap.base-dn",
    "auth.backend.ldap.filter",
    "auth.backend.ldap.ca-file",
    "auth.backend.ldap.ca-path",
    "auth.backend.ldap.starttls",
    "auth.backend.ldap.bind-dn",
    "auth.backend.ldap.bind-pw",
    "auth.backend.ldap.allow-empty-pw",
    "auth.backend.ldap.groupmember",
    "auth.backend.ldap.timeout",
    "auth.backend.mysql.host",
    "auth.backend.mysql.user",
    "auth.backend.mysql.pass",
    "auth.backend.mysql.db",
    "auth.backend.mysql.port",
    "auth.backend.mysql.socket",
    "auth.backend.mysql.users_table",
    "auth.backend.mysql.col_user",
    "auth.backend.mysql.col_pass",
    "auth.backend.mysql.col_realm",
    "auth.backend.dbi",
    "auth.backend.pam.opts",
    "auth.backend.gssapi.keytab",
    "auth.backend.gssapi.principal",
    "auth.backend.gssapi.store-creds",
    "auth.backend.sasl.opts",
    // mod_cgi
    "cgi.assign",
    "cgi.execute-x-only",
    "cgi.x-sendfile",
    "cgi.x-sendfile-docroot",
    "cgi.local-redir",
    "cgi.upgrade",
    "cgi.limits",
    "cgi.debug",
    // mod_cml
    "cml.extension",
    "cml.memcache-hosts",
    "cml.memcache-namespace",
    "cml.power-magnet",
    // mod_compress, mod_deflate
    "compress.cache-dir",
    "compress.filetype",
    "compress.max-filesize",
    "compress.allowed-encodings",
    "deflate.mimetypes",
    "deflate.allowed-encodings",
    "deflate.max-compress-size",
    "deflate.min-compress-size",
    "deflate.compression-level",
    "deflate.output-buffer-size",
    "deflate.work-block-size",
    "deflate.max-loadavg",
    "deflate.cache-dir",
    "deflate.params",
    "deflate.sync-flush",
    // mod_dirlisting (beyond dir-listing.activate)
    "dir-listing.hide-dotfiles",
    "dir-listing.external-css",
    "dir-listing.external-js",
    "dir-listing.encoding",
    "dir-listing.exclude",
    "dir-listing.show-readme",
    "dir-listing.hide-readme-file",
    "dir-listing.show-header",
    "dir-listing.hide-header-file",
    "dir-listing.set-footer",
    "dir-listing.encode-readme",
    "dir-listing.encode-header",
    "dir-listing.auto-layout",
    "dir-listing.cache",
    "dir-listing.sort",
    // mod_evasive
    "evasive.max-conns-per-ip",
    "evasive.silent",
    "evasive.location",
    // mod_evhost
    "evhost.path-pattern",
    // mod_expire
    "expire.url",
    "expire.mimetypes",
    // mod_extforward
    "extforward.forwarder",
    "extforward.headers",
    "extforward.params",
    "extforward.hap-PROXY",
    "extforward.hap-PROXY-ssl-client-verify",
    // mod_fastcgi
    "fastcgi.server",
    "fastcgi.balance",
    "fastcgi.debug",
    "fastcgi.map-extensions",
    // mod_flv_streaming
    "flv-streaming.extensions",
    // mod_geoip, mod_maxminddb
    "geoip.db-filename",
    "geoip.memory-cache",
    "maxminddb.activate",
    "maxminddb.db",
    "maxminddb.env",
    // mod_magnet
    "magnet.attract-raw-url-to",
    "magnet.attract-physical-path-to",
    "magnet.attract-response-start-to",
    "magnet.cache-size",
    // mod_mysql_vhost
    "mysql-vhost.db",
    "mysql-vhost.user",
    "mysql-vhost.pass",
    "mysql-vhost.sock",
    "mysql-vhost.sql",
    "mysql-vhost.hostname",
    "mysql-vhost.port",
    // mod_proxy
    "proxy.server",
    "proxy.balance",
    "proxy.debug",
    "proxy.map-extensions",
    "proxy.forwarded",
    "proxy.header",
    "proxy.replace-http-host",
    // mod_redirect, mod_rewrite
    "url.redirect",
    "url.redirect-code",
    "url.rewrite",
    "url.rewrite-once",
    "url.rewrite-repeat",
    "url.rewrite-if-not-file",
    "url.rewrite-repeat-if-not-file",
    "url.rewrite-final",
    // mod_rrdtool
    "rrdtool.binary",
    "rrdtool.db-name",
    // mod_scgi
    "scgi.server",
    "scgi.balance",
    "scgi.debug",
    "scgi.map-extensions",
    "scgi.protocol",
    // mod_secdownload
    "secdownload.secret",
    "secdownload.document-root",
    "secdownload.uri-prefix",
    "secdownload.timeout",
    "secdownload.algorithm",
    "secdownload.path-segments",
    "secdownload.hash-querystr",
    // mod_setenv
    "setenv.add-request-header",
    "setenv.add-response-header",
    "setenv.add-environment",
    "setenv.set-request-header",
    "setenv.set-response-header",
    "setenv.set-environment",
    // mod_simple_vhost
    "simple-vhost.server-root",
    "simple-vhost.default-host",
    "simple-vhost.document-root",
    "simple-vhost.debug",
    // mod_sockproxy
    "sockproxy.server",
    "sockproxy.balance",
    "sockproxy.debug",
    // mod_ssi
    "ssi.extension",
    "ssi.content-type",
    "ssi.conditional-requests",
    "ssi.exec",
    "ssi.recursion-max",
    // mod_staticfile (beyond exclude-extensions)
    "static-file.etags",
    "static-file.disable-pathinfo",
    // mod_status
    "status.status-url",
    "status.config-url",
    "status.statistics-url",
    "status.enable-sort",
    // mod_trigger_b4_dl
    "trigger-before-download.gdbm-filename",
    "trigger-before-download.trigger-url",
    "trigger-before-download.download-url",
    "trigger-before-download.deny-url",
    "trigger-before-download.trigger-timeout",
    "trigger-before-download.memcache-hosts",
    "trigger-before-download.memcache-namespace",
    "trigger-before-download.debug",
    // mod_uploadprogress
    "upload-progress.progress-url",
    "upload-progress.remove-timeout",
    "upload-progress.debug",
    // mod_userdir
    "userdir.path",
    "userdir.exclude-user",
    "userdir.include-user",
    "userdir.basepath",
    "userdir.letterhomes",
    "userdir.active",
    // mod_usertrack
    "usertrack.cookie-name",
    "usertrack.cookie-max-age",
    "usertrack.cookie-domain",
    "usertrack.cookie-attrs",
    // mod_vhostdb and backends
    "vhostdb.backend",
    "vhostdb.cache",
    "vhostdb.dbi",
    "vhostdb.ldap",
    "vhostdb.mysql",
    "vhostdb.pgsql",
    // mod_webdav
    "webdav.activate",
    "webdav.is-readonly",
    "webdav.sqlite-db-name",
    "webdav.log-xml",
    "webdav.opts",
    // mod_wstunnel
    "wstunnel.server",
    "wstunnel.balance",
    "wstunnel.debug",
    "wstunnel.map-extensions",
    "wstunnel.frame-type",
    "wstunnel.origins",
    "wstunnel.ping-interval",
];

/// Every module name lighttpd 1.4 has shipped; anything else in server.modules is an error.
pub(crate) const LIGHTTPD_MODULES: &[&str] = &[
    "mod_access",
    "mod_accesslog",
    "mod_ajp13",
    "mod_alias",
    "mod_auth",
    "mod_authn_dbi",
    "mod_authn_file",
    "mod_authn_gssapi",
    "mod_authn_ldap",
    "mod_authn_mysql",
    "mod_authn_pam",
    "mod_authn_sasl",
    "mod_boringssl",
    "mod_cgi",
    "mod_cml",
    "mod_compress",
    "mod_deflate",
    "mod_dirlisting",
    "mod_evasive",
    "mod_evhost",
    "mod_expire",
    "mod_extforward",
    "mod_fastcgi",
    "mod_flv_streaming",
    "mod_geoip",
    "mod_gnutls",
    "mod_h2",
    "mod_indexfile",
    "mod_magnet",
    "mod_maxminddb",
    "mod_mbedtls",
    "mod_mysql_vhost",
    "mod_nss",
    "mod_openssl",
    "mod_proxy",
    "mod_redirect",
    "mod_rewrite",
    "mod_rrdtool",
    "mod_scgi",
    "mod_secdownload",
    "mod_setenv",
    "mod_simple_vhost",
    "mod_sockproxy",
    "mod_ssi",
    "mod_staticfile",
    "mod_status",
    "mod_trigger_b4_dl",
    "mod_uploadprogress",
    "mod_userdir",
    "mod_usertrack",
    "mod_vhostdb",
    "mod_vhostdb_dbi",
    "mod_vhostdb_ldap",
    "mod_vhostdb_mysql",
    "mod_vhostdb_pgsql",
    "mod_webdav",
    "mod_wolfssl",
    "mod_wstunnel",
];

/// The modules whose behaviour lightd provides; listing them is silent.
pub(crate) const IMPLEMENTED_MODULES: &[&str] = &[
    "mod_staticfile",
    "mod_indexfile",
    "mod_dirlisting",
    "mod_accesslog",
];

/// lighttpd loads these even when server.modules does not list them, so lightd does too.
pub(crate) const DEFAULT_MODULES: &[&str] = &["mod_indexfile", "mod_dirlisting", "mod_staticfile"];

pub(crate) fn kind(key: &str) -> KeyKind {
    if GLOBAL_KEYS.contains(&key) {
        KeyKind::Global
    } else if REQUEST_KEYS.contains(&key) {
        KeyKind::Request
    } else if key == "server.feature-flags" {
        KeyKind::Silent
    } else if LIGHTTPD_KEYS.contains(&key) {
        KeyKind::Unimplemented
    } else {
        KeyKind::Unknown
    }
}

/// The closest name in `candidates`, if it is close enough to be a likely typo.
pub(crate) fn suggest<'a>(
    word: &str,
    candidates: impl Iterator<Item = &'a str>,
) -> Option<&'a str> {
    // A quarter of the word's length (at least 1, at most 3) catches a dropped dash or a
    // transposition without suggesting unrelated names for short ones.
    let n = word.chars().count();
    let limit = (n / 4).clamp(1, 3);
    candidates
        // The distance is at least the difference in length: skip the costly computation
        // for candidates that cannot be close enough.
        .filter(|c| c.chars().count().abs_diff(n) <= limit)
        .map(|c| (edit_distance(word, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// All known key names, for suggestions.
pub(crate) fn all_keys() -> impl Iterator<Item = &'static str> {
    GLOBAL_KEYS
        .iter()
        .chain(REQUEST_KEYS)
        .chain(LIGHTTPD_KEYS)
        .chain(std::iter::once(&"server.feature-flags"))
        .copied()
}

/// Levenshtein distance over chars, case-insensitive (a key typed with capitals is still
/// probably the lower-case one).
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().map(|c| c.to_ascii_lowercase()).collect();
    let b: Vec<char> = b.chars().map(|c| c.to_ascii_lowercase()).collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for (i, ca) in a.iter().enumerate() {
        cur[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let subst = prev[j] + usize::from(ca != cb);
            cur[j + 1] = subst.min(prev[j + 1] + 1).min(cur[j] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances() {
        for (a, b, d) in [
            ("", "", 0),
            ("abc", "abc", 0),
            ("abc", "abd", 1),
            ("server.documentroot", "server.document-root", 1),
            ("kitten", "sitting", 3),
            ("ABC", "abc", 0),
        ] {
            assert_eq!(edit_distance(a, b), d, "{a} vs {b}");
        }
    }

    #[test]
    fn suggestions() {
        for (word, want) in [
            ("server.documentroot", Some("server.document-root")),
            ("server.prot", Some("server.port")),
            ("index-file.name", Some("index-file.names")),
            ("dir-listing.activte", Some("dir-listing.activate")),
            ("totally.unrelated", None),
        ] {
            assert_eq!(suggest(word, all_keys()), want, "{word}");
        }
    }

    #[test]
    fn tables_are_disjoint_and_unique() {
        let all: Vec<&str> = all_keys().collect();
        let mut sorted = all.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), all.len(), "a key is listed twice");
        for m in IMPLEMENTED_MODULES.iter().chain(DEFAULT_MODULES) {
            assert!(LIGHTTPD_MODULES.contains(m), "{m}");
        }
    }

    #[test]
    fn kinds() {
        for (key, want) in [
            ("server.port", KeyKind::Global),
            ("server.document-root", KeyKind::Request),
            ("server.feature-flags", KeyKind::Silent),
            ("url.rewrite", KeyKind::Unimplemented),
            ("server.documentroot", KeyKind::Unknown),
        ] {
            assert_eq!(kind(key), want, "{key}");
        }
    }
}
