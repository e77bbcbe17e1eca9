//! TLS on the client socket (mod_openssl's role), with rustls: the handshake and the records
//! run inside the one loop, on the non-blocking socket, and never block it.
//!
//! `session` is the transport a connection reads and writes through; `certs` reads and checks
//! certificates and keys at start (and -tt), and builds rustls's server configs from them.

pub mod certs;
pub mod provider;
pub mod session;
pub mod verify;

use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;

use crate::config::ssl::SslConf;
use crate::config::types::{CondField, CondInput, MatchSet};
use crate::config::Config;

/// The TLS state the loop shares: which listeners speak TLS, the certificates loaded at
/// start, and the server configs made from them, by the conditions a handshake matched.
#[derive(Default)]
pub struct Tls {
    /// Per listener index: TLS on.
    on: Vec<bool>,
    store: Option<certs::Store>,
    /// Server configs by the set of conditional blocks the handshake matched: a few distinct
    /// ones per site (one per certificate). Bounded: cleared when full.
    cache: Vec<(MatchSet, session::Chosen)>,
}

/// At most this many server configs are kept (each distinct set of matching blocks makes
/// one).
const CACHE_MAX: usize = 64;

/// What the conditions see during a handshake: the listener, the client's address, the
/// scheme, and the name from SNI as the Host. Everything else of a request is not known yet
/// and compares as empty, as in lighttpd.
struct Hello<'a> {
    local: SocketAddr,
    peer: SocketAddr,
    peer_ip: &'a str,
    host: Option<&'a str>,
}

impl CondInput for Hello<'_> {
    fn field(&self, field: &CondField) -> Option<&str> {
        match field {
            CondField::Host => self.host,
            CondField::Scheme => Some("https"),
            CondField::RemoteIp => Some(self.peer_ip),
            _ => None,
        }
    }
    fn remote_ip(&self) -> std::net::IpAddr {
        self.peer.ip()
    }
    fn server_socket(&self) -> SocketAddr {
        self.local
    }
    /// As lighttpd: the socket and the client's address are known from the start; the host
    /// and the scheme once the client named a server (SNI); nothing else until a request.
    fn decided(&self, field: &CondField) -> bool {
        match field {
            CondField::ServerSocket | CondField::RemoteIp => true,
            CondField::Host | CondField::Scheme => self.host.is_some(),
            _ => false,
        }
    }
}

impl Tls {
    /// The TLS state for the listeners bound at `listeners` (by index): a listener speaks TLS
    /// when `ssl.engine` is enabled for a connection on it.
    pub fn new(cfg: &Config, store: certs::Store, listeners: &[SocketAddr]) -> Tls {
        let on = listeners
            .iter()
            .map(|&local| {
                let ip = local.ip().to_string();
                let hello = Hello {
                    local,
                    peer: local,
                    peer_ip: &ip,
                    host: None,
                };
                cfg.merged(&cfg.matches(&hello)).ssl.engine
            })
            .collect();
        Tls {
            on,
            store: Some(store),
            cache: Vec::new(),
        }
    }

    /// Whether listener `i` speaks TLS.
    pub fn on(&self, i: usize) -> bool {
        self.on.get(i).copied().unwrap_or(false)
    }

    /// The server config for a connection on `local` from `peer` that asked for `sni`: the
    /// `ssl.*` settings of the blocks it matches (`$HTTP["host"]` with the SNI name, as
    /// lighttpd chooses `ssl.pemfile`). None (the handshake fails) when they name no usable
    /// certificate; that is logged. A client offering "acme-tls/1" is answered from
    /// `ssl.acme-tls-1`'s directory when that is set.
    pub fn config_for(
        &mut self,
        cfg: &Config,
        local: SocketAddr,
        hello: &session::Hello<'_>,
        peer: SocketAddr,
    ) -> Option<session::Chosen> {
        let (sc, conf) = self.config_for_hello(cfg, local, hello, peer)?;
        // (The challenge's own config speaks acme-tls/1.)
        let acme = sc.alpn_protocols.iter().any(|p| p == certs::ACME_TLS_1);
        if !hello.no_http_alpn || acme {
            return Some((sc, conf));
        }
        // A client offering only other protocols (h2 alone, say): no ALPN in the answer,
        // as OpenSSL does, rather than a refusal. Rare, so made per handshake.
        let mut sc = (*sc).clone();
        sc.alpn_protocols.clear();
        Some((Arc::new(sc), conf))
    }

    fn config_for_hello(
        &mut self,
        cfg: &Config,
        local: SocketAddr,
        hello: &session::Hello<'_>,
        peer: SocketAddr,
    ) -> Option<session::Chosen> {
        let (sni, acme) = (hello.sni, hello.acme);
        let store = self.store.as_ref()?;
        let ip = peer.ip().to_string();
        let host = sni.map(str::to_ascii_lowercase);
        let hello = Hello {
            local,
            peer,
            peer_ip: &ip,
            host: host.as_deref(),
        };
        let set = cfg.matches(&hello);
        if acme {
            let conf = cfg.merged(&set);
            if let Some(dir) = conf.ssl.acme_tls_1.as_ref() {
                return match store.acme_config(dir, host.as_deref().unwrap_or("")) {
                    Ok(sc) => Some((sc, Rc::clone(&conf.ssl))),
                    Err(e) => {
                        log::error!("TLS on {} from {}: {}", local, peer, e);
                        None
                    }
                };
            }
        }
        if let Some((_, (sc, conf))) = self.cache.iter().find(|(s, _)| *s == set) {
            return Some((Arc::clone(sc), Rc::clone(conf)));
        }
        let conf = cfg.merged(&set);
        match store.server_config(&conf.ssl) {
            Ok(sc) => {
                if self.cache.len() >= CACHE_MAX {
                    self.cache.clear();
                }
                let chosen = (sc, Rc::clone(&conf.ssl));
                self.cache.push((set, chosen.clone()));
                Some(chosen)
            }
            Err(e) => {
                log::error!("TLS for {:?} on {}: {}", sni.unwrap_or(""), local, e);
                None
            }
        }
    }
}

/// Whether a request's `ssl.*` settings ask for the same client-certificate checks as the
/// handshake's did (so what the handshake verified holds for the request).
pub fn same_client_checks(handshake: &SslConf, request: &SslConf) -> bool {
    let checks = |c: &SslConf| {
        (
            c.verify_activate,
            c.verify_activate.then_some((
                c.verify_enforce,
                c.verify_depth,
                c.ca_file.as_ref().map(|p| p.path.clone()),
                c.ca_crl_file.as_ref().map(|p| p.path.clone()),
            )),
        )
    };
    checks(handshake) == checks(request)
}

/// The OpenSSL name of a suite (what lighttpd puts in SSL_CIPHER) and its key size in bits.
fn suite_name(s: rustls::CipherSuite) -> (&'static str, u32) {
    use rustls::CipherSuite as C;
    match s {
        C::TLS13_AES_128_GCM_SHA256 => ("TLS_AES_128_GCM_SHA256", 128),
        C::TLS13_AES_256_GCM_SHA384 => ("TLS_AES_256_GCM_SHA384", 256),
        C::TLS13_CHACHA20_POLY1305_SHA256 => ("TLS_CHACHA20_POLY1305_SHA256", 256),
        C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 => ("ECDHE-ECDSA-AES128-GCM-SHA256", 128),
        C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384 => ("ECDHE-ECDSA-AES256-GCM-SHA384", 256),
        C::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256 => ("ECDHE-ECDSA-CHACHA20-POLY1305", 256),
        C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256 => ("ECDHE-RSA-AES128-GCM-SHA256", 128),
        C::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384 => ("ECDHE-RSA-AES256-GCM-SHA384", 256),
        C::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256 => ("ECDHE-RSA-CHACHA20-POLY1305", 256),
        _ => ("UNKNOWN", 0),
    }
}

/// What a TLS connection adds to a CGI, FastCGI or SCGI request's environment, as lighttpd's
/// mod_openssl does: the protocol and cipher, and with `ssl.verifyclient.activate` the client
/// certificate's verdict and fields (REMOTE_USER from `ssl.verifyclient.username`, the PEM with
/// `ssl.verifyclient.exportcert`).
pub fn cgi_env(
    c: &rustls::ServerConnection,
    ssl: &crate::config::ssl::SslConf,
) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let proto = match c.protocol_version() {
        Some(rustls::ProtocolVersion::TLSv1_3) => "TLSv1.3",
        Some(rustls::ProtocolVersion::TLSv1_2) => "TLSv1.2",
        _ => "",
    };
    out.push(("SSL_PROTOCOL".to_string(), proto.to_string()));
    if let Some(s) = c.negotiated_cipher_suite() {
        let (name, bits) = suite_name(s.suite());
        out.push(("SSL_CIPHER".to_string(), name.to_string()));
        out.push(("SSL_CIPHER_USEKEYSIZE".to_string(), bits.to_string()));
        out.push(("SSL_CIPHER_ALGKEYSIZE".to_string(), bits.to_string()));
    }
    if !ssl.verify_activate {
        return out;
    }
    // rustls verified the chain during the handshake (or refused it): a certificate here
    // is a verified one.
    let Some(leaf) = c.peer_certificates().and_then(|v| v.first()) else {
        out.push(("SSL_CLIENT_VERIFY".to_string(), "NONE".to_string()));
        return out;
    };
    out.push(("SSL_CLIENT_VERIFY".to_string(), "SUCCESS".to_string()));
    out.extend(certs::client_env(leaf));
    if let Some(var) = ssl.verify_username.as_deref() {
        let user = out.iter().find(|(k, _)| k == var).map(|(_, v)| v.clone());
        if let Some(user) = user {
            out.push(("REMOTE_USER".to_string(), user));
            out.push(("AUTH_TYPE".to_string(), "SSL_CLIENT_VERIFY".to_string()));
        }
    }
    if ssl.verify_exportcert {
        out.push(("SSL_CLIENT_CERT".to_string(), pem(leaf)));
    }
    out
}

/// A certificate in PEM, as SSL_CLIENT_CERT carries it.
fn pem(der: &[u8]) -> String {
    let b64 = crate::http::base64::encode(der);
    let mut out = String::from("-----BEGIN CERTIFICATE-----\n");
    for line in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END CERTIFICATE-----\n");
    out
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;

    /// SSL_CLIENT_CERT's PEM reads back, through rustls's own PEM parser, as the same DER,
    /// with lines of 64 characters as OpenSSL writes them.
    #[test]
    fn pem_reads_back_as_the_same_der() {
        for len in [0usize, 1, 2, 3, 47, 48, 49, 1000] {
            let der: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let text = super::pem(&der);
            assert!(text.lines().all(|l| l.len() <= 64), "{text}");
            if len == 0 {
                continue;
            }
            let back = CertificateDer::from_pem_slice(text.as_bytes())
                .unwrap_or_else(|e| panic!("{len}: {e}\n{text}"));
            assert_eq!(back.as_ref(), der.as_slice(), "{len}");
        }
    }
}
