//! mod_openssl's keys (`ssl.*`), checked and kept as plain data: which listeners speak TLS,
//! which certificate a connection gets (also per `$HTTP["host"]`, chosen by SNI), and the
//! protocol options. The certificates themselves are read and checked by `crate::tls`.

use std::path::PathBuf;

use super::types::Loc;

/// A TLS protocol version, for `MinProtocol` / `MaxProtocol`. rustls speaks TLS 1.2 and 1.3
/// only: older versions are refused at config time when they are asked for as the minimum.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Proto {
    Tls12,
    Tls13,
}

/// The cipher suites rustls (with ring) offers. An OpenSSL cipher string is mapped onto
/// these; a string that selects none of them is a config error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Suite {
    Tls13Aes128Gcm,
    Tls13Aes256Gcm,
    Tls13Chacha20,
    EcdheEcdsaAes128Gcm,
    EcdheEcdsaAes256Gcm,
    EcdheEcdsaChacha20,
    EcdheRsaAes128Gcm,
    EcdheRsaAes256Gcm,
    EcdheRsaChacha20,
}

/// A file named by a key, with where the key was set (for file:line in errors).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathAt {
    pub path: PathBuf,
    pub loc: Loc,
}

/// The `ssl.*` settings in effect for one connection (merged like any per-request setting:
/// a `$SERVER["socket"]` block and, for SNI, `$HTTP["host"]` blocks override the global
/// ones).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SslConf {
    /// `ssl.engine`: this listener speaks TLS.
    pub engine: bool,
    /// `ssl.pemfile`: the certificate chain, and the key when `privkey` is unset.
    pub pemfile: Option<PathAt>,
    /// `ssl.privkey`.
    pub privkey: Option<PathAt>,
    /// `ssl.ca-file`: CA certificates, also the default for verifying client certificates.
    pub ca_file: Option<PathAt>,
    /// `ssl.ca-crl-file` (and `ssl.verifyclient.ca-crl-file`): revoked client certificates.
    pub ca_crl_file: Option<PathAt>,
    /// `ssl.verifyclient.activate`: ask for a client certificate.
    pub verify_activate: bool,
    /// `ssl.verifyclient.enforce`: refuse the handshake without a valid one (lighttpd's
    /// default when activated: enforce).
    pub verify_enforce: bool,
    /// `ssl.verifyclient.depth` (lighttpd's default 9).
    pub verify_depth: u32,
    /// `ssl.verifyclient.username`: the certificate field whose value becomes REMOTE_USER
    /// (e.g. "SSL_CLIENT_S_DN_CN").
    pub verify_username: Option<String>,
    /// `ssl.verifyclient.exportcert`: SSL_CLIENT_CERT (PEM) in the environment.
    pub verify_exportcert: bool,
    /// `ssl.verifyclient.ca-file`: the CAs trusted for client certificates (else `ca_file`).
    pub verify_ca_file: Option<PathAt>,
    /// From `MinProtocol` / `MaxProtocol` in `ssl.openssl.ssl-conf-cmd`. None: rustls's
    /// defaults (TLS 1.2 and 1.3).
    pub min_proto: Option<Proto>,
    pub max_proto: Option<Proto>,
    /// From `ssl.cipher-list` or `CipherString` / `Ciphersuites` in ssl-conf-cmd, in the
    /// order given. None: rustls's defaults.
    pub suites: Option<Vec<Suite>>,
    /// `ssl.honor-cipher-order` (default enabled) or `Options ServerPreference`: the server's
    /// order of suites wins over the client's.
    pub honor_cipher_order: bool,
    /// `Options -SessionTicket`: no session tickets.
    pub no_tickets: bool,
    /// `ssl.acme-tls-1`: the directory of ACME tls-alpn-01 challenge certificates.
    pub acme_tls_1: Option<PathAt>,
    /// `ssl.stek-file`: session ticket encryption keys from a file (rotated by the operator).
    pub stek_file: Option<PathAt>,
}
