//! Which configuration keys and modules exist: the ones lightd implements, the rest of lighttpd
//! 1.4's (accepted with a warning), and spelling suggestions for everything else.

/// How lightd treats a key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyKind {
    /// Implemented, server-wide: an error inside a conditional.
    Global,
    /// Implemented and allowed inside conditionals.
    Request,
    /// A lighttpd 1.4 key lightd does not implement and that only adds a feature: accepted
    /// with a warning, so an existing lighttpd.conf still loads.
    Unimplemented { owner: &'static str },
    /// A key of a module that protects something (access, auth, TLS, backends...), which
    /// lightd does not implement: the config is refused rather than served without it.
    /// `known` is false for a name lightd does not know in that module's namespace.
    Refused {
        owner: &'static str,
        harm: &'static str,
        known: bool,
    },
    /// Neither: a warning with a spelling suggestion.
    Unknown,
}

// What goes wrong when lightd serves without a module: the reason a key or module is refused.
const ACCESS: &str = "files it denies would be served to anyone";
const AUTH: &str = "pages it protects with a password would be served to anyone";
const CGI: &str = "scripts would be served as their source code instead of being run";
const GATEWAY: &str =
    "requests meant for its backends would be answered from the document root, script source \
     included";
const PROXY: &str =
    "requests meant for the proxied service would be answered from the document root instead";
#[cfg(feature = "tls")]
const TLS: &str = "the socket would speak plain, unencrypted HTTP";
// A build without the "tls" feature says how to get one that has it.
#[cfg(not(feature = "tls"))]
const TLS: &str = "the socket would speak plain, unencrypted HTTP (this build of lightd has no \
                   TLS: build it with `--features tls`)";
#[cfg(feature = "tls")]
const ECH: &str =
    "hosts meant to be reached only through Encrypted Client Hello would be served with their \
     names in the clear";
const EXTFORWARD: &str =
    "every proxied client would have the proxy's address, so $HTTP[\"remote-ip\"] rules meant \
     for the proxy would match everyone";
const EVASIVE: &str = "its per-client connection limits would not be enforced";
const REWRITE: &str = "URLs would not be rewritten, so requests would reach paths the rules hide";
const REDIRECT: &str =
    "requests it redirects (to HTTPS, or away from a path) would be served in place";
const ALIAS: &str = "aliased URLs would be served from the document root, not their directories";
const VHOST: &str = "every host would be served from the same document root";
const USERDIR: &str = "/~user/ URLs would be served from the document root, not home directories";
const SETENV: &str =
    "the headers it sets (security headers such as HSTS, CSP and X-Frame-Options) would be \
     missing";
const SECDOWNLOAD: &str = "its signed, time-limited download links would not be checked";
const WEBDAV: &str = "its WebDAV rules (read-only mode, locking) would not apply";
const MAGNET: &str = "its Lua scripts, which often decide access, would not run";
const SSI: &str = "server-side include pages would be served as source, directives included";
const CML: &str = "its Lua scripts would not run and would be served as source";
const TRIGGER: &str = "downloads it guards would be served without the trigger";
const GEO: &str = "the location data that access rules and scripts rely on would be missing";
const CHROOT: &str = "lightd would run outside the chroot jail";
const SOCKET_PERMS: &str = "the permissions it sets on a Unix-domain socket would not apply";
const DIRLIST_EXCLUDE: &str = "directory listings would show the names it hides";

/// A set of lighttpd 1.4 keys lightd does not implement, with their owner and whether they
/// protect something.
pub(crate) struct Unimplemented {
    /// The lighttpd module that reads these keys, or "core".
    pub owner: &'static str,
    /// What would be served wrongly if lightd ignored them; None when ignoring them only
    /// loses a feature (debug output, tuning, cosmetics), which is a warning.
    pub harm: Option<&'static str>,
    /// The keys, as lighttpd spells them, separated by spaces. (One string rather than a
    /// slice of them: each element of a slice costs a pointer and a relocation in the binary,
    /// and there are some 300 keys.)
    pub keys: &'static str,
    /// Key namespaces the owner has: a key lightd does not know that starts with one of these
    /// (a newer lighttpd key, or a misspelled one) is treated like the listed keys. For a
    /// protective owner that means refused: a misspelled auth.require must not become an
    /// ignored one.
    pub prefixes: &'static str,
}

/// mod_openssl's keys but Encrypted Client Hello's: a macro so that both builds' groups
/// (with the "tls" feature and without) list them from one literal.
macro_rules! openssl_keys {
    () => {
        "ssl.engine ssl.pemfile ssl.privkey ssl.ca-file ssl.ca-dn-file ssl.ca-crl-file \
         ssl.cipher-list ssl.honor-cipher-order ssl.dh-file ssl.ec-curve \
         ssl.disable-client-renegotiation ssl.use-sslv2 ssl.use-sslv3 \
         ssl.use-compression ssl.empty-fragments ssl.read-ahead \
         ssl.verifyclient.activate ssl.verifyclient.enforce ssl.verifyclient.depth \
         ssl.verifyclient.username ssl.verifyclient.exportcert ssl.verifyclient.ca-file \
         ssl.verifyclient.ca-dn-file ssl.verifyclient.ca-crl-file \
         ssl.openssl.ssl-conf-cmd ssl.acme-tls-1 ssl.stapling-file ssl.stek-file \
         ssl.message-digest"
    };
}

const fn group(
    owner: &'static str,
    harm: Option<&'static str>,
    keys: &'static str,
    prefixes: &'static str,
) -> Unimplemented {
    Unimplemented {
        owner,
        harm,
        keys,
        prefixes,
    }
}

/// Every other key lighttpd 1.4 knows (core and the modules shipped with it, current and
/// removed), grouped by owner and classified.
pub(crate) const UNIMPLEMENTED: &[Unimplemented] = &[
    group("core", Some(CHROOT), "server.chroot", ""),
    group("core", Some(SOCKET_PERMS), "server.socket-perms", ""),
    group(
        "core",
        None,
        "server.name server.core-files server.event-handler server.network-backend \
         server.errorfile-prefix server.error-handler server.error-handler-404 \
         server.error-intercept server.errorlog-use-syslog server.syslog-facility \
         server.breakagelog server.protocol-http11 \
         server.stream-request-body server.stream-response-body server.kbytes-per-second \
         server.upload-dirs server.upload-temp-file-size server.chunkqueue-chunk-sz \
         server.http-parseopts server.http-parseopt-header-strict \
         server.http-parseopt-host-strict server.http-parseopt-host-normalize \
         server.reject-expect-100-with-417 server.stat-cache-engine \
         server.compat-module-load server.use-ipv6 server.set-v6only server.v4mapped \
         server.defer-accept server.bsd-accept-filter server.listen-backlog \
         server.ip-transparent server.use-noatime server.max-stat-threads \
         connection.kbytes-per-second mimetype.use-xattr mimetype.xattr-name \
         etag.use-inode etag.use-mtime etag.use-size debug.log-condition-handling \
         debug.log-condition-cache-handling debug.log-file-not-found \
         debug.log-request-handling debug.log-request-header \
         debug.log-request-header-on-error debug.log-response-header debug.log-timeouts \
         debug.log-state-handling debug.log-ssl-noise",
        "debug.",
    ),
    // With the "tls" feature the mod_openssl keys are implemented (config/table.rs) except
    // Encrypted Client Hello's, which rustls's server side does not have: those are refused
    // on their own. Without it, the group is as it was before TLS existed (that build must
    // not grow).
    #[cfg(not(feature = "tls"))]
    group(
        "mod_openssl",
        Some(TLS),
        concat!(openssl_keys!(), " ssl.ech-opts ssl.ech-public-name"),
        "ssl.",
    ),
    #[cfg(feature = "tls")]
    group("mod_openssl", Some(TLS), openssl_keys!(), "ssl."),
    #[cfg(feature = "tls")]
    group("core", Some(ECH), "ssl.ech-opts ssl.ech-public-name", ""),
    group(
        "mod_access",
        Some(ACCESS),
        "url.access-deny url.access-allow",
        "url.access-",
    ),
    group(
        "mod_accesslog",
        None,
        // filename, format and escaping are implemented (config/table.rs) when the build
        // has mod_accesslog; without it they are ignored with a warning like the others.
        "accesslog.use-syslog accesslog.syslog-level accesslog.escaping accesslog.filename \
         accesslog.format",
        "accesslog.",
    ),
    group(
        "mod_ajp13",
        Some(GATEWAY),
        "ajp13.server ajp13.balance ajp13.debug ajp13.map-extensions",
        "ajp13.",
    ),
    group("mod_alias", Some(ALIAS), "alias.url", "alias."),
    group(
        "mod_auth",
        Some(AUTH),
        "auth.backend auth.require auth.extern-authn auth.cache auth.debug \
         auth.backend.plain.userfile auth.backend.plain.groupfile \
         auth.backend.htdigest.userfile auth.backend.htpasswd.userfile \
         auth.backend.ldap.hostname auth.backend.ldap.base-dn auth.backend.ldap.filter \
         auth.backend.ldap.ca-file auth.backend.ldap.ca-path auth.backend.ldap.starttls \
         auth.backend.ldap.bind-dn auth.backend.ldap.bind-pw \
         auth.backend.ldap.allow-empty-pw auth.backend.ldap.groupmember \
         auth.backend.ldap.timeout auth.backend.mysql.host auth.backend.mysql.user \
         auth.backend.mysql.pass auth.backend.mysql.db auth.backend.mysql.port \
         auth.backend.mysql.socket auth.backend.mysql.users_table \
         auth.backend.mysql.col_user auth.backend.mysql.col_pass \
         auth.backend.mysql.col_realm auth.backend.dbi auth.backend.pam.opts \
         auth.backend.gssapi.keytab auth.backend.gssapi.principal \
         auth.backend.gssapi.store-creds auth.backend.sasl.opts",
        "auth.",
    ),
    group(
        "mod_cgi",
        Some(CGI),
        "cgi.assign cgi.execute-x-only cgi.x-sendfile cgi.x-sendfile-docroot \
         cgi.local-redir cgi.upgrade cgi.limits",
        "cgi.",
    ),
    // Not a lighttpd key (1.4.85 warns about it as unknown), but configs set it by analogy
    // with fastcgi.debug: a warning, not a refusal of the cgi. namespace.
    group("mod_cgi", None, "cgi.debug", ""),
    group(
        "mod_cml",
        Some(CML),
        "cml.extension cml.memcache-hosts cml.memcache-namespace cml.power-magnet",
        "cml.",
    ),
    group(
        "mod_deflate",
        None,
        "compress.cache-dir compress.filetype compress.max-filesize compress.max-loadavg \
         compress.allowed-encodings deflate.mimetypes deflate.allowed-encodings \
         deflate.max-compress-size deflate.min-compress-size deflate.compression-level \
         deflate.output-buffer-size deflate.work-block-size deflate.max-loadavg \
         deflate.cache-dir deflate.params deflate.sync-flush",
        "deflate. compress.",
    ),
    group(
        "mod_dirlisting",
        Some(DIRLIST_EXCLUDE),
        "dir-listing.exclude",
        "",
    ),
    // lightd always hides dot files, which is also lighttpd's default.
    group(
        "mod_dirlisting",
        None,
        "dir-listing.hide-dotfiles dir-listing.external-css dir-listing.external-js \
         dir-listing.encoding dir-listing.show-readme dir-listing.hide-readme-file \
         dir-listing.show-header dir-listing.hide-header-file dir-listing.set-footer \
         dir-listing.encode-readme dir-listing.encode-header dir-listing.auto-layout \
         dir-listing.cache dir-listing.sort",
        "dir-listing.",
    ),
    group(
        "mod_evasive",
        Some(EVASIVE),
        "evasive.max-conns-per-ip evasive.silent evasive.location",
        "evasive.",
    ),
    group("mod_evhost", Some(VHOST), "evhost.path-pattern", "evhost."),
    group("mod_expire", None, "expire.url expire.mimetypes", "expire."),
    group(
        "mod_extforward",
        Some(EXTFORWARD),
        "extforward.forwarder extforward.headers extforward.params extforward.hap-PROXY \
         extforward.hap-PROXY-ssl-client-verify",
        "extforward.",
    ),
    group(
        "mod_fastcgi",
        Some(GATEWAY),
        "fastcgi.server fastcgi.balance fastcgi.debug fastcgi.map-extensions",
        "fastcgi.",
    ),
    group(
        "mod_flv_streaming",
        None,
        "flv-streaming.extensions",
        "flv-streaming.",
    ),
    group(
        "mod_geoip",
        Some(GEO),
        "geoip.db-filename geoip.memory-cache",
        "geoip.",
    ),
    group(
        "mod_maxminddb",
        Some(GEO),
        "maxminddb.activate maxminddb.db maxminddb.env",
        "maxminddb.",
    ),
    group(
        "mod_magnet",
        Some(MAGNET),
        "magnet.attract-raw-url-to magnet.attract-physical-path-to \
         magnet.attract-response-start-to magnet.cache-size",
        "magnet.",
    ),
    group(
        "mod_mysql_vhost",
        Some(VHOST),
        "mysql-vhost.db mysql-vhost.user mysql-vhost.pass mysql-vhost.sock \
         mysql-vhost.sql mysql-vhost.hostname mysql-vhost.port",
        "mysql-vhost.",
    ),
    group(
        "mod_proxy",
        Some(PROXY),
        "proxy.server proxy.balance proxy.debug proxy.map-extensions proxy.forwarded \
         proxy.header proxy.replace-http-host",
        "proxy.",
    ),
    group(
        "mod_redirect",
        Some(REDIRECT),
        "url.redirect url.redirect-code",
        "url.redirect",
    ),
    group(
        "mod_rewrite",
        Some(REWRITE),
        "url.rewrite url.rewrite-once url.rewrite-repeat url.rewrite-if-not-file \
         url.rewrite-repeat-if-not-file url.rewrite-final",
        "url.rewrite",
    ),
    group(
        "mod_rrdtool",
        None,
        "rrdtool.binary rrdtool.db-name",
        "rrdtool.",
    ),
    group(
        "mod_scgi",
        Some(GATEWAY),
        "scgi.server scgi.balance scgi.debug scgi.map-extensions scgi.protocol",
        "scgi.",
    ),
    group(
        "mod_secdownload",
        Some(SECDOWNLOAD),
        "secdownload.secret secdownload.document-root secdownload.uri-prefix \
         secdownload.timeout secdownload.algorithm secdownload.path-segments \
         secdownload.hash-querystr",
        "secdownload.",
    ),
    group(
        "mod_setenv",
        Some(SETENV),
        "setenv.add-request-header setenv.add-response-header setenv.add-environment \
         setenv.set-request-header setenv.set-response-header setenv.set-environment",
        "setenv.",
    ),
    group(
        "mod_simple_vhost",
        Some(VHOST),
        "simple-vhost.server-root simple-vhost.default-host simple-vhost.document-root \
         simple-vhost.debug",
        "simple-vhost.",
    ),
    group(
        "mod_sockproxy",
        Some(PROXY),
        "sockproxy.server sockproxy.balance sockproxy.debug",
        "sockproxy.",
    ),
    group(
        "mod_ssi",
        Some(SSI),
        "ssi.extension ssi.content-type ssi.conditional-requests ssi.exec \
         ssi.recursion-max",
        "ssi.",
    ),
    group(
        "mod_staticfile",
        None,
        "static-file.etags static-file.disable-pathinfo",
        "static-file.",
    ),
    group(
        "mod_status",
        None,
        "status.status-url status.config-url status.statistics-url status.enable-sort",
        "status.",
    ),
    group(
        "mod_trigger_b4_dl",
        Some(TRIGGER),
        "trigger-before-download.gdbm-filename trigger-before-download.trigger-url \
         trigger-before-download.download-url trigger-before-download.deny-url \
         trigger-before-download.trigger-timeout trigger-before-download.memcache-hosts \
         trigger-before-download.memcache-namespace trigger-before-download.debug",
        "trigger-before-download.",
    ),
    group(
        "mod_uploadprogress",
        None,
        "upload-progress.progress-url upload-progress.remove-timeout \
         upload-progress.debug",
        "upload-progress.",
    ),
    group(
        "mod_userdir",
        Some(USERDIR),
        "userdir.path userdir.exclude-user userdir.include-user userdir.basepath \
         userdir.letterhomes userdir.active",
        "userdir.",
    ),
    group(
        "mod_usertrack",
        None,
        "usertrack.cookie-name usertrack.cookie-max-age usertrack.cookie-domain \
         usertrack.cookie-attrs",
        "usertrack.",
    ),
    group(
        "mod_vhostdb",
        Some(VHOST),
        "vhostdb.backend vhostdb.cache vhostdb.dbi vhostdb.ldap vhostdb.mysql \
         vhostdb.pgsql",
        "vhostdb.",
    ),
    group(
        "mod_webdav",
        Some(WEBDAV),
        "webdav.activate webdav.is-readonly webdav.sqlite-db-name webdav.log-xml \
         webdav.opts",
        "webdav.",
    ),
    group(
        "mod_wstunnel",
        Some(PROXY),
        "wstunnel.server wstunnel.balance wstunnel.debug wstunnel.map-extensions \
         wstunnel.frame-type wstunnel.origins wstunnel.ping-interval",
        "wstunnel.",
    ),
];

/// Every other lighttpd 1.4 module, and what serving without it would do (None: it only adds a
/// feature). Those this build compiles in ([`super::table::compiled`]) are implemented; loading
/// one that is not is refused when it protects something and a warning otherwise. Anything
/// else in server.modules is an unknown module, an error.
pub(crate) const MISSING_MODULES: &[(&str, Option<&str>)] = &[
    ("mod_access", Some(ACCESS)),
    // Logging protects nothing: a build without it warns and serves.
    ("mod_accesslog", None),
    ("mod_ajp13", Some(GATEWAY)),
    ("mod_alias", Some(ALIAS)),
    ("mod_auth", Some(AUTH)),
    ("mod_authn_dbi", Some(AUTH)),
    ("mod_authn_file", Some(AUTH)),
    ("mod_authn_gssapi", Some(AUTH)),
    ("mod_authn_ldap", Some(AUTH)),
    ("mod_authn_mysql", Some(AUTH)),
    ("mod_authn_pam", Some(AUTH)),
    ("mod_authn_sasl", Some(AUTH)),
    ("mod_boringssl", Some(TLS)),
    ("mod_cgi", Some(CGI)),
    ("mod_cml", Some(CML)),
    ("mod_compress", None),
    ("mod_deflate", None),
    ("mod_echo", None),
    ("mod_evasive", Some(EVASIVE)),
    ("mod_evhost", Some(VHOST)),
    ("mod_expire", None),
    ("mod_extforward", Some(EXTFORWARD)),
    ("mod_fastcgi", Some(GATEWAY)),
    ("mod_flv_streaming", None),
    ("mod_geoip", Some(GEO)),
    ("mod_gnutls", Some(TLS)),
    ("mod_h2", None),
    ("mod_magnet", Some(MAGNET)),
    ("mod_maxminddb", Some(GEO)),
    ("mod_mbedtls", Some(TLS)),
    ("mod_mysql_vhost", Some(VHOST)),
    ("mod_nss", Some(TLS)),
    ("mod_openssl", Some(TLS)),
    ("mod_proxy", Some(PROXY)),
    ("mod_redirect", Some(REDIRECT)),
    ("mod_rewrite", Some(REWRITE)),
    ("mod_rrdtool", None),
    ("mod_scgi", Some(GATEWAY)),
    ("mod_secdownload", Some(SECDOWNLOAD)),
    ("mod_setenv", Some(SETENV)),
    ("mod_simple_vhost", Some(VHOST)),
    ("mod_skeleton", None),
    ("mod_sockproxy", Some(PROXY)),
    ("mod_ssi", Some(SSI)),
    ("mod_status", None),
    ("mod_trigger_b4_dl", Some(TRIGGER)),
    ("mod_uploadprogress", None),
    ("mod_userdir", Some(USERDIR)),
    ("mod_usertrack", None),
    ("mod_vhostdb", Some(VHOST)),
    ("mod_vhostdb_dbi", Some(VHOST)),
    ("mod_vhostdb_ldap", Some(VHOST)),
    ("mod_vhostdb_mysql", Some(VHOST)),
    ("mod_vhostdb_pgsql", Some(VHOST)),
    ("mod_webdav", Some(WEBDAV)),
    ("mod_wolfssl", Some(TLS)),
    ("mod_wstunnel", Some(PROXY)),
];

/// The modules whose behaviour lightd provides; listing them is silent.
pub(crate) const IMPLEMENTED_MODULES: &[&str] =
    &["mod_staticfile", "mod_indexfile", "mod_dirlisting"];

/// lighttpd loads these even when server.modules does not list them, so lightd does too.
pub(crate) const DEFAULT_MODULES: &[&str] = &["mod_indexfile", "mod_dirlisting", "mod_staticfile"];

/// Whether this build lacks lighttpd module `name`, and if so what serving without it would do.
pub(crate) fn missing(name: &str) -> Option<Option<&'static str>> {
    if super::table::compiled(name) && super::table::keys().any(|k| k.module == name) {
        return None;
    }
    MISSING_MODULES
        .iter()
        .find(|(m, _)| *m == name)
        .map(|(_, harm)| *harm)
}

/// What serving without module `name` would do, whether or not this build has it (None: only
/// a feature is lost).
pub(crate) fn harm(name: &str) -> Option<&'static str> {
    MISSING_MODULES
        .iter()
        .find(|(m, _)| *m == name)
        .and_then(|(_, harm)| *harm)
}

/// Whether `name` is a module lighttpd 1.4 has shipped.
pub(crate) fn is_lighttpd_module(name: &str) -> bool {
    IMPLEMENTED_MODULES.contains(&name) || MISSING_MODULES.iter().any(|(m, _)| *m == name)
}

/// Every module name lighttpd 1.4 has shipped, for suggestions.
pub(crate) fn lighttpd_modules() -> impl Iterator<Item = &'static str> {
    IMPLEMENTED_MODULES
        .iter()
        .copied()
        .chain(MISSING_MODULES.iter().map(|(m, _)| *m))
}

/// The group an unimplemented key belongs to: by its exact name, else by namespace (the
/// longest matching prefix, so "url.access-" wins over nothing and "dir-listing.exclude"
/// stays protective).
fn unimplemented(key: &str) -> Option<(&'static Unimplemented, bool)> {
    if let Some(g) = UNIMPLEMENTED
        .iter()
        .find(|g| g.keys.split(' ').any(|k| k == key))
    {
        return Some((g, true));
    }
    UNIMPLEMENTED
        .iter()
        .flat_map(|g| g.prefixes.split_whitespace().map(move |p| (g, p)))
        .filter(|(_, p)| key.starts_with(p))
        .max_by_key(|(_, p)| p.len())
        .map(|(g, _)| (g, false))
}

pub(crate) fn kind(key: &str) -> KeyKind {
    if let Some(k) = super::table::lookup(key) {
        return if k.is_global() {
            KeyKind::Global
        } else {
            KeyKind::Request
        };
    }
    match unimplemented(key) {
        Some((g, known)) => match g.harm {
            Some(harm) => KeyKind::Refused {
                owner: g.owner,
                harm,
                known,
            },
            None if known => KeyKind::Unimplemented { owner: g.owner },
            None => KeyKind::Unknown,
        },
        None => KeyKind::Unknown,
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
    super::table::keys().map(|k| k.name).chain(
        UNIMPLEMENTED
            .iter()
            .flat_map(|g| g.keys.split(' '))
            .filter(|k| super::table::lookup(k).is_none()),
    )
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
        let mut modules: Vec<&str> = lighttpd_modules().collect();
        modules.sort_unstable();
        let n = modules.len();
        modules.dedup();
        assert_eq!(n, modules.len(), "a module is listed twice");
        for m in DEFAULT_MODULES {
            assert!(IMPLEMENTED_MODULES.contains(m), "{m}");
        }
        for g in UNIMPLEMENTED {
            assert!(
                g.owner == "core" || is_lighttpd_module(g.owner),
                "{} owns keys but is not a module",
                g.owner
            );
            // A module that protects something is refused whether it is loaded or only has
            // its keys set; the two tables must agree.
            if let Some((_, harm)) = MISSING_MODULES.iter().find(|(m, _)| *m == g.owner) {
                assert!(
                    harm.is_some() || g.harm.is_none(),
                    "{}: protective keys of a harmless module",
                    g.owner
                );
            }
        }
    }

    #[test]
    fn kinds() {
        for (key, want) in [
            ("server.port", KeyKind::Global),
            ("server.document-root", KeyKind::Request),
            ("server.feature-flags", KeyKind::Global),
            ("server.name", KeyKind::Unimplemented { owner: "core" }),
            (
                "deflate.params",
                KeyKind::Unimplemented {
                    owner: "mod_deflate",
                },
            ),
            ("server.documentroot", KeyKind::Unknown),
            // A misspelled harmless key is merely unknown.
            ("deflate.mimetype", KeyKind::Unknown),
        ] {
            assert_eq!(kind(key), want, "{key}");
        }
        // A module in the build makes its keys implemented.
        assert_eq!(
            kind("deflate.mimetypes"),
            if cfg!(feature = "deflate") {
                KeyKind::Request
            } else {
                KeyKind::Unimplemented {
                    owner: "mod_deflate",
                }
            }
        );
        if cfg!(feature = "rewrite") {
            assert_eq!(kind("url.rewrite-once"), KeyKind::Request);
        }
        if cfg!(feature = "access") {
            assert_eq!(kind("url.access-deny"), KeyKind::Request);
        }
        // A backend module in the build makes its keys implemented; without it they are
        // refused, and so are unknown names in its namespace either way.
        for (key, owner, built) in [
            ("cgi.assign", "mod_cgi", cfg!(feature = "cgi")),
            ("fastcgi.server", "mod_fastcgi", cfg!(feature = "fastcgi")),
            ("scgi.protocol", "mod_scgi", cfg!(feature = "scgi")),
            ("proxy.header", "mod_proxy", cfg!(feature = "proxy")),
            (
                "wstunnel.origins",
                "mod_wstunnel",
                cfg!(feature = "wstunnel"),
            ),
        ] {
            match kind(key) {
                KeyKind::Request => assert!(built, "{key}"),
                KeyKind::Refused {
                    owner: o,
                    known: true,
                    ..
                } => assert!(!built && o == owner, "{key}"),
                other => panic!("{key}: {other:?}"),
            }
            let typo = format!("{key}x");
            assert!(
                matches!(kind(&typo), KeyKind::Refused { owner: o, known: false, .. } if o == owner),
                "{typo}"
            );
        }
        let upload = kind("server.upload-dirs");
        if cfg!(feature = "backend") {
            assert_eq!(upload, KeyKind::Global);
            assert_eq!(kind("server.stream-request-body"), KeyKind::Request);
        } else {
            assert_eq!(upload, KeyKind::Unimplemented { owner: "core" });
        }
        // Not a lighttpd key: a warning, whatever the build.
        assert_eq!(
            kind("cgi.debug"),
            KeyKind::Unimplemented { owner: "mod_cgi" }
        );
        // mod_openssl's keys are implemented with the "tls" feature and refused without it;
        // unknown names in its namespace are refused either way.
        assert_eq!(
            matches!(kind("ssl.engine"), KeyKind::Request),
            cfg!(feature = "tls")
        );
        if !cfg!(feature = "tls") {
            assert!(matches!(
                kind("ssl.pemfile"),
                KeyKind::Refused {
                    owner: "mod_openssl",
                    known: true,
                    ..
                }
            ));
        }
        for (key, owner, known) in [
            ("sockproxy.server", "mod_sockproxy", true),
            ("ajp13.server", "mod_ajp13", true),
            #[cfg(feature = "tls")]
            ("ssl.ech-opts", "core", true),
            ("server.chroot", "core", true),
            ("webdav.activate", "mod_webdav", true),
            // Unknown names in a protective namespace are refused too.
            ("auth.requre", "mod_auth", false),
            ("ssl.new-key-from-the-future", "mod_openssl", false),
            ("url.redirect-foo", "mod_redirect", false),
        ] {
            match kind(key) {
                KeyKind::Refused {
                    owner: o, known: k, ..
                } => assert_eq!((o, k), (owner, known), "{key}"),
                other => panic!("{key}: {other:?}"),
            }
        }
    }
}
