//! Certificates and keys: every file the `ssl.*` keys name, read and checked once at start
//! (and at `-tt`, and at each reload), before privileges are dropped since key files are
//! often readable by root only; and rustls's server configs built from them.
//!
//! A bad file is a config error naming the key's file:line and what is wrong (as lighttpd's
//! mod_openssl does at start); a certificate that expires within a week is a warning. The
//! dates and names come from a small bounds-checked DER reader of our own (no X.509 crate):
//! the same reader gives CGI and FastCGI the client certificate's `SSL_CLIENT_*` variables.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer};
use rustls::server::{ServerSessionMemoryCache, WebPkiClientVerifier};
use rustls::sign::{CertifiedKey, SingleCertAndKey};
use rustls::{RootCertStore, ServerConfig, SupportedProtocolVersion};

use crate::config::ssl::{Group, PathAt, Proto, SslConf, Suite};
use crate::config::{Config, ConfigError};

/// A certificate that expires within this long gives a warning at start.
const EXPIRY_WARNING_SECS: u64 = 7 * 24 * 3600;

/// TLS sessions remembered for resumption without tickets (and for TLS 1.3's stateful
/// tickets): bounded, the oldest go first.
const SESSION_CACHE: usize = 1024;

/// The largest certificate, key, CA or CRL file read: far above any real one, and a config
/// that points at a huge file (or /dev/zero) must not take the memory.
const MAX_FILE: u64 = 16 << 20;

/// The crypto provider, in one place so that it can be swapped.
fn provider() -> CryptoProvider {
    super::provider::provider()
}

/// One certificate chain with its key, as one `ssl.pemfile` (and `ssl.privkey`) names it.
struct Loaded {
    pemfile: PathBuf,
    privkey: Option<PathBuf>,
    key: Arc<CertifiedKey>,
}

/// Every certificate, key, CA list, CRL and OCSP response the config names, loaded.
pub struct Store {
    keys: Vec<Loaded>,
    /// CA files (ssl.ca-file, ssl.verifyclient.ca-file) by path.
    cas: Vec<(PathBuf, Vec<CertificateDer<'static>>)>,
    /// CRL files by path.
    crls: Vec<(PathBuf, Vec<CertificateRevocationListDer<'static>>)>,
    /// OCSP responses (ssl.stapling-file) by path.
    staples: Vec<(PathBuf, Vec<u8>)>,
    /// One ticket key (rotating) and one session cache for every server config made, so
    /// that a session resumes whichever config (SNI name) the client comes back through.
    ticketer: Option<Arc<dyn rustls::server::ProducesTickets>>,
    sessions: Arc<dyn rustls::server::StoresServerSessions>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("keys", &self.keys.len())
            .field("cas", &self.cas.len())
            .field("crls", &self.crls.len())
            .finish()
    }
}

fn at(p: &PathAt, msg: String) -> ConfigError {
    ConfigError {
        loc: Some(p.loc.clone()),
        msg,
    }
}

/// Read a file named by `key`, bounded.
fn read(key: &str, p: &PathAt) -> Result<Vec<u8>, ConfigError> {
    use std::io::Read;
    let shown = p.path.display();
    let f = std::fs::File::open(&p.path)
        .map_err(|e| at(p, format!("{key}: cannot open \"{shown}\": {e}")))?;
    let mut buf = Vec::new();
    f.take(MAX_FILE + 1)
        .read_to_end(&mut buf)
        .map_err(|e| at(p, format!("{key}: cannot read \"{shown}\": {e}")))?;
    if buf.len() as u64 > MAX_FILE {
        return Err(at(
            p,
            format!("{key}: \"{shown}\" is larger than {MAX_FILE} bytes"),
        ));
    }
    Ok(buf)
}

fn certs_in(
    key: &str,
    p: &PathAt,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| at(p, format!("{key}: \"{}\": bad PEM: {e}", p.path.display())))?;
    if certs.is_empty() {
        return Err(at(
            p,
            format!("{key}: no certificate in \"{}\"", p.path.display()),
        ));
    }
    Ok(certs)
}

impl Store {
    /// Load and check every certificate and key the config names, with the warnings to log
    /// (certificates about to expire). Errors name the key's file:line.
    pub fn load(cfg: &Config) -> Result<(Store, Vec<String>), ConfigError> {
        Store::load_at(cfg, now())
    }

    fn load_at(cfg: &Config, now: u64) -> Result<(Store, Vec<String>), ConfigError> {
        let mut store = Store {
            keys: Vec::new(),
            cas: Vec::new(),
            crls: Vec::new(),
            staples: Vec::new(),
            ticketer: None,
            sessions: ServerSessionMemoryCache::new(SESSION_CACHE),
        };
        store.ticketer = Some(
            rustls::crypto::ring::Ticketer::new().map_err(|e| ConfigError {
                loc: None,
                msg: format!("TLS session tickets: {e}"),
            })?,
        );
        let mut warnings = Vec::new();
        let provider = provider();
        for conf in cfg.ssl_confs() {
            if let Some(pem) = &conf.pemfile {
                let privkey = conf.privkey.as_ref().map(|p| p.path.clone());
                if !store
                    .keys
                    .iter()
                    .any(|k| k.pemfile == pem.path && k.privkey == privkey)
                {
                    let key = load_pair(pem, conf.privkey.as_ref(), &provider, now, &mut warnings)?;
                    store.keys.push(Loaded {
                        pemfile: pem.path.clone(),
                        privkey,
                        key: Arc::new(key),
                    });
                }
            }
            for (key, p) in [("ssl.ca-file", &conf.ca_file)] {
                if let Some(p) = p {
                    if !store.cas.iter().any(|(q, _)| *q == p.path) {
                        let certs = certs_in(key, p, &read(key, p)?)?;
                        store.cas.push((p.path.clone(), certs));
                    }
                }
            }
            if let Some(p) = &conf.ca_crl_file {
                if !store.crls.iter().any(|(q, _)| *q == p.path) {
                    let key = "ssl.ca-crl-file";
                    let pem = read(key, p)?;
                    let crls: Vec<_> = CertificateRevocationListDer::pem_slice_iter(&pem)
                        .collect::<Result<_, _>>()
                        .map_err(|e| {
                            at(p, format!("{key}: \"{}\": bad PEM: {e}", p.path.display()))
                        })?;
                    if crls.is_empty() {
                        return Err(at(p, format!("{key}: no CRL in \"{}\"", p.path.display())));
                    }
                    store.crls.push((p.path.clone(), crls));
                }
            }
            if let Some(p) = &conf.stapling_file {
                if !store.staples.iter().any(|(q, _)| *q == p.path) {
                    let der = read("ssl.stapling-file", p)?;
                    store.staples.push((p.path.clone(), der));
                }
            }
            if let Some(p) = &conf.stek_file {
                let w = format!(
                    "{}: ssl.stek-file is not used by lightd: session tickets are encrypted \
                     with rustls's own keys, rotated every 6 hours",
                    p.loc
                );
                if !warnings.contains(&w) {
                    warnings.push(w);
                }
            }
        }
        Ok((store, warnings))
    }

    /// rustls's server config for one set of ssl settings (a listener's, or a host's chosen
    /// by SNI): its certificate and key, ALPN, versions, suites and groups, session
    /// resumption and client certificate verification.
    pub fn server_config(&self, ssl: &SslConf) -> Result<Arc<ServerConfig>, String> {
        let pem = ssl
            .pemfile
            .as_ref()
            .ok_or_else(|| "ssl.pemfile is not set".to_string())?;
        let privkey = ssl.privkey.as_ref().map(|p| p.path.clone());
        let loaded = self
            .keys
            .iter()
            .find(|k| k.pemfile == pem.path && k.privkey == privkey)
            .ok_or_else(|| format!("{}: certificate not loaded", pem.path.display()))?;
        let mut key = Arc::clone(&loaded.key);
        if let Some(p) = &ssl.stapling_file {
            if let Some((_, der)) = self.staples.iter().find(|(q, _)| *q == p.path) {
                let mut with = (*key).clone();
                with.ocsp = Some(der.clone());
                key = Arc::new(with);
            }
        }

        let mut provider = provider();
        if let Some(suites) = &ssl.suites {
            let all = std::mem::take(&mut provider.cipher_suites);
            provider.cipher_suites = suites
                .iter()
                .filter_map(|s| {
                    let want = rustls_suite(*s);
                    all.iter().find(|c| c.suite() == want).copied()
                })
                .collect();
        }
        if let Some(groups) = &ssl.groups {
            let all = std::mem::take(&mut provider.kx_groups);
            provider.kx_groups = groups
                .iter()
                .filter_map(|g| {
                    let want = rustls_group(*g);
                    all.iter().find(|k| k.name() == want).copied()
                })
                .collect();
        }
        let provider = Arc::new(provider);

        let lo = ssl.min_proto.unwrap_or(Proto::Tls12);
        let hi = ssl.max_proto.unwrap_or(Proto::Tls13);
        let mut versions: Vec<&'static SupportedProtocolVersion> = Vec::new();
        if lo <= Proto::Tls13 && hi >= Proto::Tls13 {
            versions.push(&rustls::version::TLS13);
        }
        if lo <= Proto::Tls12 && hi >= Proto::Tls12 {
            versions.push(&rustls::version::TLS12);
        }
        let builder = ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&versions)
            .map_err(|e| format!("TLS versions and suites: {e}"))?;

        let builder = if ssl.verify_activate {
            let ca = ssl.ca_file.as_ref().ok_or_else(|| {
                "ssl.verifyclient.activate without ssl.verifyclient.ca-file or ssl.ca-file"
                    .to_string()
            })?;
            let certs = self
                .cas
                .iter()
                .find(|(q, _)| *q == ca.path)
                .map(|(_, c)| c)
                .ok_or_else(|| format!("{}: CA file not loaded", ca.path.display()))?;
            let mut roots = RootCertStore::empty();
            for c in certs {
                roots
                    .add(c.clone())
                    .map_err(|e| format!("{}: {e}", ca.path.display()))?;
            }
            let mut vb =
                WebPkiClientVerifier::builder_with_provider(Arc::new(roots), Arc::clone(&provider));
            if let Some(p) = &ssl.ca_crl_file {
                let (_, crls) = self
                    .crls
                    .iter()
                    .find(|(q, _)| *q == p.path)
                    .ok_or_else(|| format!("{}: CRL file not loaded", p.path.display()))?;
                // An expired CRL is refused, as OpenSSL refuses it: it no longer says what
                // is revoked.
                vb = vb
                    .with_crls(crls.iter().cloned())
                    .enforce_revocation_expiration();
            }
            if !ssl.verify_enforce {
                vb = vb.allow_unauthenticated();
            }
            let verifier = vb
                .build()
                .map_err(|e| format!("client certificate verifier: {e}"))?;
            let verifier =
                super::verify::DepthLimited::new(verifier, ssl.verify_depth, certs.clone());
            builder.with_client_cert_verifier(Arc::new(verifier))
        } else {
            builder.with_no_client_auth()
        };
        let mut config =
            builder.with_cert_resolver(Arc::new(SingleCertAndKey::from(CertifiedKey::clone(&key))));
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        config.ignore_client_order = ssl.honor_cipher_order;
        config.session_storage = Arc::clone(&self.sessions);
        if let (false, Some(t)) = (ssl.no_tickets, &self.ticketer) {
            config.ticketer = Arc::clone(t);
        }
        config.max_early_data_size = 0;
        Ok(Arc::new(config))
    }
}

impl Store {
    /// ACME's tls-alpn-01 challenge (RFC 8737, `ssl.acme-tls-1`): a client that offers only
    /// the "acme-tls/1" protocol for `name` gets the challenge certificate the ACME client
    /// left in `dir` (`<name>.crt.pem` and `<name>.key.pem`, read now: they change with each
    /// challenge), and nothing else is spoken on that connection. As lighttpd, names with a
    /// '/' or starting with '.' are refused.
    pub fn acme_config(&self, dir: &PathAt, name: &str) -> Result<Arc<ServerConfig>, String> {
        if name.is_empty() || name.contains('/') || name.starts_with('.') {
            return Err(format!("acme-tls/1 for a bad server name {name:?}"));
        }
        let file = |ext: &str| PathAt {
            path: dir.path.join(format!("{name}{ext}")),
            loc: dir.loc.clone(),
        };
        let (crt, key) = (file(".crt.pem"), file(".key.pem"));
        let mut ignored = Vec::new();
        let ck = load_pair(&crt, Some(&key), &provider(), now(), &mut ignored)
            .map_err(|e| format!("acme-tls/1: {}", e.msg))?;
        let mut config = ServerConfig::builder_with_provider(Arc::new(provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("acme-tls/1: {e}"))?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(SingleCertAndKey::from(ck)));
        config.alpn_protocols = vec![ACME_TLS_1.to_vec()];
        config.max_early_data_size = 0;
        Ok(Arc::new(config))
    }
}

/// The ALPN protocol of ACME's tls-alpn-01 challenge.
pub const ACME_TLS_1: &[u8] = b"acme-tls/1";

fn rustls_suite(s: Suite) -> rustls::CipherSuite {
    use rustls::CipherSuite as C;
    match s {
        Suite::Tls13Aes128Gcm => C::TLS13_AES_128_GCM_SHA256,
        Suite::Tls13Aes256Gcm => C::TLS13_AES_256_GCM_SHA384,
        Suite::Tls13Chacha20 => C::TLS13_CHACHA20_POLY1305_SHA256,
        Suite::EcdheEcdsaAes128Gcm => C::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        Suite::EcdheEcdsaAes256Gcm => C::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        Suite::EcdheEcdsaChacha20 => C::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        Suite::EcdheRsaAes128Gcm => C::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        Suite::EcdheRsaAes256Gcm => C::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        Suite::EcdheRsaChacha20 => C::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    }
}

fn rustls_group(g: Group) -> rustls::NamedGroup {
    match g {
        Group::X25519 => rustls::NamedGroup::X25519,
        Group::Secp256r1 => rustls::NamedGroup::secp256r1,
        Group::Secp384r1 => rustls::NamedGroup::secp384r1,
    }
}

/// Load one chain and its key (from `privkey`, else from the pemfile itself) and check them:
/// a key rustls can use, that matches the leaf, and a leaf valid now.
fn load_pair(
    pem: &PathAt,
    privkey: Option<&PathAt>,
    provider: &CryptoProvider,
    now: u64,
    warnings: &mut Vec<String>,
) -> Result<CertifiedKey, ConfigError> {
    let pem_bytes = read("ssl.pemfile", pem)?;
    let chain = certs_in("ssl.pemfile", pem, &pem_bytes)?;
    let (key_at, key_name, key_bytes) = match privkey {
        Some(p) => (p, "ssl.privkey", read("ssl.privkey", p)?),
        None => (pem, "ssl.pemfile", pem_bytes),
    };
    let key_der = PrivateKeyDer::from_pem_slice(&key_bytes).map_err(|e| {
        let why = match e {
            rustls::pki_types::pem::Error::NoItemsFound => "no private key".to_string(),
            e => format!("no usable private key ({e})"),
        };
        let hint = if privkey.is_none() {
            " (and ssl.privkey is not set)"
        } else {
            ""
        };
        at(
            key_at,
            format!("{key_name}: {why} in \"{}\"{hint}", key_at.path.display()),
        )
    })?;
    let signing = provider
        .key_provider
        .load_private_key(key_der)
        .map_err(|e| {
            at(
                key_at,
                format!(
                    "{key_name}: \"{}\": unsupported private key ({e}); lightd takes RSA, ECDSA \
                 P-256/P-384 and Ed25519 keys",
                    key_at.path.display()
                ),
            )
        })?;
    let ck = CertifiedKey::new(chain, signing);
    match ck.keys_match() {
        Ok(()) | Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::Unknown)) => {}
        Err(rustls::Error::InconsistentKeys(_)) => {
            return Err(at(
                key_at,
                format!(
                    "{key_name}: the private key in \"{}\" does not match the certificate in \
                     \"{}\"",
                    key_at.path.display(),
                    pem.path.display()
                ),
            ))
        }
        Err(e) => {
            return Err(at(
                pem,
                format!("ssl.pemfile: \"{}\": {e}", pem.path.display()),
            ))
        }
    }
    let leaf = ck.cert.first().map(|c| c.as_ref()).unwrap_or_default();
    let info = Cert::parse(leaf).ok_or_else(|| {
        at(
            pem,
            format!(
                "ssl.pemfile: \"{}\": the certificate is not valid X.509 DER",
                pem.path.display()
            ),
        )
    })?;
    let cn = info.subject_cn().unwrap_or_else(|| "(no CN)".to_string());
    let shown = pem.path.display();
    if now < info.not_before {
        return Err(at(
            pem,
            format!(
                "ssl.pemfile: \"{shown}\": the certificate for {cn} is not valid before {}",
                date(info.not_before)
            ),
        ));
    }
    if now > info.not_after {
        return Err(at(
            pem,
            format!(
                "ssl.pemfile: \"{shown}\": the certificate for {cn} expired on {}",
                date(info.not_after)
            ),
        ));
    }
    if info.not_after - now < EXPIRY_WARNING_SECS {
        warnings.push(format!(
            "{}: {shown}: certificate for {cn} expires on {}",
            pem.loc,
            date(info.not_after)
        ));
    }
    Ok(ck)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// A small DER reader: just enough X.509 for dates, names and the serial number

/// One DER element: its tag and contents.
#[derive(Clone, Copy)]
struct Tlv<'a> {
    tag: u8,
    body: &'a [u8],
}

/// Read one element from the front of `d`, returning it and the rest. Only single-byte tags
/// (all X.509 needs) and definite lengths up to 4 bytes; anything else is None.
fn tlv(d: &[u8]) -> Option<(Tlv<'_>, &[u8])> {
    let (&tag, rest) = d.split_first()?;
    if tag & 0x1f == 0x1f {
        return None;
    }
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 || rest.len() < n {
            return None;
        }
        let (bytes, rest) = rest.split_at(n);
        let len = bytes.iter().fold(0usize, |a, b| (a << 8) | usize::from(*b));
        (len, rest)
    };
    if rest.len() < len {
        return None;
    }
    let (body, rest) = rest.split_at(len);
    Some((Tlv { tag, body }, rest))
}

/// The elements inside a constructed element, at most `max` (a certificate has a handful at
/// each level; a hostile one cannot make us loop long).
fn children(body: &[u8], max: usize) -> Option<Vec<Tlv<'_>>> {
    let mut out = Vec::new();
    let mut rest = body;
    while !rest.is_empty() {
        if out.len() == max {
            return None;
        }
        let (t, r) = tlv(rest)?;
        out.push(t);
        rest = r;
    }
    Some(out)
}

/// One attribute of a distinguished name: OpenSSL's short name (or the dotted OID) and the
/// value as text.
type Attr = (String, String);

/// What lightd reads from a certificate.
struct Cert {
    serial: Vec<u8>,
    issuer: Vec<Attr>,
    subject: Vec<Attr>,
    /// Unix seconds.
    not_before: u64,
    not_after: u64,
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;

impl Cert {
    fn parse(der: &[u8]) -> Option<Cert> {
        let (cert, _) = tlv(der)?;
        if cert.tag != SEQUENCE {
            return None;
        }
        let top = children(cert.body, 3)?;
        let tbs = top.first().filter(|t| t.tag == SEQUENCE)?;
        let mut f = children(tbs.body, 16)?.into_iter();
        let mut next = f.next()?;
        // [0] EXPLICIT version, when not v1.
        if next.tag == 0xa0 {
            next = f.next()?;
        }
        if next.tag != 0x02 {
            return None;
        }
        let serial = next.body.to_vec();
        let _sig_alg = f.next().filter(|t| t.tag == SEQUENCE)?;
        let issuer = f.next().filter(|t| t.tag == SEQUENCE)?;
        let validity = f.next().filter(|t| t.tag == SEQUENCE)?;
        let subject = f.next().filter(|t| t.tag == SEQUENCE)?;
        let v = children(validity.body, 2)?;
        Some(Cert {
            serial,
            issuer: name(issuer.body)?,
            subject: name(subject.body)?,
            not_before: time(v.first()?)?,
            not_after: time(v.get(1)?)?,
        })
    }

    fn subject_cn(&self) -> Option<String> {
        self.subject
            .iter()
            .rev()
            .find(|(k, _)| k == "CN")
            .map(|(_, v)| v.clone())
    }
}

/// A Name: SEQUENCE OF SET OF (OID, value), in order.
fn name(body: &[u8]) -> Option<Vec<Attr>> {
    let mut out = Vec::new();
    for rdn in children(body, 64)? {
        if rdn.tag != SET {
            return None;
        }
        for atv in children(rdn.body, 16)? {
            let parts = children(atv.body, 2)?;
            let oid = parts.first().filter(|t| t.tag == 0x06)?;
            let value = parts.get(1)?;
            out.push((oid_name(oid.body), string(value)));
        }
    }
    Some(out)
}

/// OpenSSL's short names for the attributes certificates use (what its `OBJ_nid2sn` gives,
/// so the variables are called what lighttpd calls them).
fn oid_name(oid: &[u8]) -> String {
    const X520: &[(u8, &str)] = &[
        (3, "CN"),
        (4, "SN"),
        (5, "serialNumber"),
        (6, "C"),
        (7, "L"),
        (8, "ST"),
        (9, "street"),
        (10, "O"),
        (11, "OU"),
        (12, "title"),
        (13, "description"),
        (17, "postalCode"),
        (41, "name"),
        (42, "GN"),
        (43, "initials"),
        (44, "generationQualifier"),
        (46, "dnQualifier"),
        (65, "pseudonym"),
    ];
    if let [0x55, 0x04, n] = oid {
        if let Some((_, s)) = X520.iter().find(|(k, _)| k == n) {
            return s.to_string();
        }
    }
    match oid {
        [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01] => "emailAddress".to_string(),
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x19] => "DC".to_string(),
        [0x09, 0x92, 0x26, 0x89, 0x93, 0xf2, 0x2c, 0x64, 0x01, 0x01] => "UID".to_string(),
        _ => dotted(oid),
    }
}

/// An OID in dotted form ("1.2.3"), for attributes without a short name.
fn dotted(oid: &[u8]) -> String {
    let mut parts: Vec<u64> = Vec::new();
    let mut acc: u64 = 0;
    for &b in oid {
        acc = (acc << 7) | u64::from(b & 0x7f);
        if b & 0x80 == 0 {
            if parts.is_empty() {
                let first = (acc / 40).min(2);
                parts.push(first);
                parts.push(acc - first * 40);
            } else {
                parts.push(acc);
            }
            acc = 0;
        }
        if acc > u64::MAX >> 8 {
            break;
        }
    }
    let strs: Vec<String> = parts.iter().map(|p| p.to_string()).collect();
    strs.join(".")
}

/// A directory string as text: UTF-8 and the ASCII types as they are, BMPString (UCS-2)
/// decoded, control characters escaped as OpenSSL does ("\xHH"), so a name cannot carry a
/// line break into a log or an environment variable.
fn string(t: &Tlv<'_>) -> String {
    let text = match t.tag {
        0x1e => {
            let units: Vec<u16> = t
                .body
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16_lossy(&units)
        }
        _ => String::from_utf8_lossy(t.body).into_owned(),
    };
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_control() {
            let mut b = [0u8; 4];
            for byte in c.encode_utf8(&mut b).bytes() {
                out.push_str(&format!("\\x{byte:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// UTCTime (YYMMDDHHMMSSZ, years 1950-2049) or GeneralizedTime (YYYYMMDDHHMMSSZ) as Unix
/// seconds.
fn time(t: &Tlv<'_>) -> Option<u64> {
    let s = t.body;
    let digits = |r: std::ops::Range<usize>| -> Option<u64> {
        let part = s.get(r)?;
        part.iter().try_fold(0u64, |a, b| {
            b.is_ascii_digit().then(|| a * 10 + u64::from(b - b'0'))
        })
    };
    let (year, rest) = match (t.tag, s.len()) {
        (0x17, 13) => {
            let yy = digits(0..2)?;
            (if yy >= 50 { 1900 + yy } else { 2000 + yy }, 2)
        }
        (0x18, 15) => (digits(0..4)?, 4),
        _ => return None,
    };
    if s.last() != Some(&b'Z') {
        return None;
    }
    let month = digits(rest..rest + 2)?;
    let day = digits(rest + 2..rest + 4)?;
    let hour = digits(rest + 4..rest + 6)?;
    let min = digits(rest + 6..rest + 8)?;
    let sec = digits(rest + 8..rest + 10)?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || min > 59 || sec > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day)?;
    Some(days * 86400 + hour * 3600 + min * 60 + sec)
}

/// Days since 1970-01-01 of a date (proleptic Gregorian), for years from 1970 on.
fn days_from_civil(y: u64, m: u64, d: u64) -> Option<u64> {
    let y = if m <= 2 { y.checked_sub(1)? } else { y };
    let era = y / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    (era * 146097 + doe).checked_sub(719468)
}

/// (year, month, day) of a day count since 1970-01-01.
fn civil_from_days(z: u64) -> (u64, u64, u64) {
    let z = z + 719468;
    let era = z / 146097;
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + u64::from(m <= 2);
    (y, m, d)
}

/// "2026-03-10 12:00:00 UTC".
fn date(secs: u64) -> String {
    let (y, m, d) = civil_from_days(secs / 86400);
    let t = secs % 86400;
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02} UTC",
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

/// OpenSSL's ASN1_TIME_print format, as Apache's SSL_CLIENT_V_START: "Mar 10 12:00:00 2026
/// GMT".
fn openssl_date(secs: u64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let (y, m, d) = civil_from_days(secs / 86400);
    let t = secs % 86400;
    let mon = usize::try_from(m.saturating_sub(1))
        .ok()
        .and_then(|i| MONTHS.get(i))
        .unwrap_or(&"???");
    format!(
        "{mon} {d:2} {:02}:{:02}:{:02} {y} GMT",
        t / 3600,
        t / 60 % 60,
        t % 60
    )
}

/// A name as OpenSSL's X509_NAME_oneline writes it: "/C=DE/O=Example/CN=host".
fn oneline(attrs: &[Attr]) -> String {
    attrs.iter().map(|(k, v)| format!("/{k}={v}")).collect()
}

/// The client certificate's variables for CGI, FastCGI, SCGI and proxies, from its DER:
/// lighttpd's (mod_openssl.c https_add_ssl_client_entries) SSL_CLIENT_S_DN,
/// SSL_CLIENT_S_DN_<attr> (the last of each name) and SSL_CLIENT_M_SERIAL (upper-case hex
/// without leading zero bytes), and Apache mod_ssl's SSL_CLIENT_I_DN, SSL_CLIENT_V_START and
/// SSL_CLIENT_V_END. Call it only for a certificate the handshake verified. Empty when the
/// DER cannot be read.
pub fn client_env(cert_der: &[u8]) -> Vec<(String, String)> {
    let Some(c) = Cert::parse(cert_der) else {
        return Vec::new();
    };
    let mut env = vec![("SSL_CLIENT_S_DN".to_string(), oneline(&c.subject))];
    for (k, v) in &c.subject {
        // lighttpd sets only attributes with a short name (and a name that fits its
        // buffer); a later one of the same name replaces an earlier one.
        if k.contains('.') || k.len() > 40 {
            continue;
        }
        let key = format!("SSL_CLIENT_S_DN_{k}");
        env.retain(|(n, _)| *n != key);
        env.push((key, v.clone()));
    }
    env.push(("SSL_CLIENT_I_DN".to_string(), oneline(&c.issuer)));
    let serial: String = c
        .serial
        .iter()
        .skip_while(|b| **b == 0)
        .map(|b| format!("{b:02X}"))
        .collect();
    // OpenSSL's BN_bn2hex, as lighttpd prints it: whole bytes, so a leading zero nibble stays.
    env.push((
        "SSL_CLIENT_M_SERIAL".to_string(),
        if serial.is_empty() {
            "0".to_string()
        } else {
            serial
        },
    ));
    env.push(("SSL_CLIENT_V_START".to_string(), openssl_date(c.not_before)));
    env.push(("SSL_CLIENT_V_END".to_string(), openssl_date(c.not_after)));
    env
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;

    /// A fresh directory for one test, removed when dropped.
    struct Tmp(PathBuf);

    impl Drop for Tmp {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn tmp(name: &str) -> Tmp {
        let d = std::env::temp_dir().join(format!("lightd-certs-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap_or_else(|e| panic!("{}: {e}", d.display()));
        Tmp(d)
    }

    /// Run the openssl CLI in `dir`; None when it is not installed (the test then has
    /// nothing to check against).
    fn openssl(dir: &Path, args: &[&str]) -> Option<String> {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .ok()?;
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Some(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// The test certificates: RSA and ECDSA P-256 (valid 30 days), one valid 3 days, an
    /// Ed448 one (a key type ring cannot use), a chain with its key in one file, garbage.
    fn certs(dir: &Path) -> Option<()> {
        let req = |key: &str, pem: &str, days: &str, subj: &str, alg: &[&str]| {
            let mut a = vec!["req", "-x509", "-nodes", "-keyout", key, "-out", pem];
            a.extend_from_slice(&["-days", days, "-subj", subj]);
            // A leaf, not a CA (webpki refuses a CA certificate as a server's), for the
            // name the handshake test asks for.
            let san = format!(
                "subjectAltName=DNS:{}",
                subj.rsplit('=').next().unwrap_or("")
            );
            a.extend_from_slice(&["-addext", "basicConstraints=critical,CA:FALSE"]);
            a.extend_from_slice(&["-addext", &san]);
            a.extend_from_slice(alg);
            openssl(dir, &a)
        };
        req(
            "rsa.key",
            "rsa.pem",
            "30",
            "/C=DE/O=Example Org/CN=rsa.example",
            &["-newkey", "rsa:2048"],
        )?;
        req(
            "ec.key",
            "ec.pem",
            "30",
            "/CN=ec.example",
            &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        )?;
        req(
            "soon.key",
            "soon.pem",
            "3",
            "/CN=soon.example",
            &["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
        )?;
        openssl(
            dir,
            &["genpkey", "-algorithm", "ED448", "-out", "ed448.key"],
        )?;
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-key",
                "ed448.key",
                "-out",
                "ed448.pem",
                "-days",
                "30",
                "-subj",
                "/CN=ed448.example",
            ],
        )?;
        let both = [
            std::fs::read(dir.join("ec.pem")).ok()?,
            std::fs::read(dir.join("ec.key")).ok()?,
        ]
        .concat();
        std::fs::write(dir.join("both.pem"), both).ok()?;
        std::fs::write(dir.join("garbage.pem"), b"\x00\x01 not a certificate\n").ok()?;
        Some(())
    }

    fn config(dir: &Path, body: &str) -> Config {
        let main = dir.join("lightd.conf");
        let text = format!("server.modules = ( \"mod_openssl\" )\n{body}");
        std::fs::write(&main, text).unwrap_or_else(|e| panic!("{e}"));
        crate::config::load(&main).unwrap_or_else(|e| panic!("{body}: {e}"))
    }

    fn load(dir: &Path, body: &str) -> Result<(Store, Vec<String>), String> {
        let cfg = config(dir, body);
        Store::load(&cfg).map_err(|e| e.to_string().replace(&dir.display().to_string(), "T"))
    }

    #[test]
    fn each_outcome_of_loading() {
        let t = tmp("outcomes");
        let d = &t.0;
        if certs(d).is_none() {
            eprintln!("openssl is not installed: nothing to test against");
            return;
        }
        let ds = d.display();
        // Good pairs: RSA and ECDSA with separate keys, and a key inside the pemfile.
        for body in [
            format!("ssl.pemfile = \"{ds}/rsa.pem\"\nssl.privkey = \"{ds}/rsa.key\""),
            format!("ssl.pemfile = \"{ds}/ec.pem\"\nssl.privkey = \"{ds}/ec.key\""),
            format!("ssl.pemfile = \"{ds}/both.pem\""),
        ] {
            let (store, w) = load(d, &body).unwrap_or_else(|e| panic!("{body}: {e}"));
            assert!(w.is_empty(), "{w:?}");
            assert_eq!(store.keys.len(), 1);
        }
        // Expiring within 7 days: a warning naming file, CN and date.
        let (_, w) = load(
            d,
            &format!("ssl.pemfile = \"{ds}/soon.pem\"\nssl.privkey = \"{ds}/soon.key\""),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(w.len(), 1, "{w:?}");
        let w = w[0].replace(&ds.to_string(), "T");
        assert!(
            w.starts_with(
                "T/lightd.conf:2: T/soon.pem: certificate for soon.example expires on 20"
            ),
            "{w}"
        );
        assert!(w.ends_with(" UTC"), "{w}");
        for (body, want) in [
            (
                format!("ssl.pemfile = \"{ds}/missing.pem\""),
                "T/lightd.conf:2: ssl.pemfile: cannot open \"T/missing.pem\": No such file or directory (os error 2)",
            ),
            (
                format!("ssl.pemfile = \"{ds}/garbage.pem\""),
                "T/lightd.conf:2: ssl.pemfile: no certificate in \"T/garbage.pem\"",
            ),
            (
                format!("ssl.pemfile = \"{ds}/rsa.pem\""),
                "T/lightd.conf:2: ssl.pemfile: no private key in \"T/rsa.pem\" (and ssl.privkey is not set)",
            ),
            (
                format!("ssl.pemfile = \"{ds}/rsa.pem\"\nssl.privkey = \"{ds}/rsa.pem\""),
                "T/lightd.conf:3: ssl.privkey: no private key in \"T/rsa.pem\"",
            ),
            (
                format!("ssl.pemfile = \"{ds}/rsa.pem\"\nssl.privkey = \"{ds}/ec.key\""),
                "T/lightd.conf:3: ssl.privkey: the private key in \"T/ec.key\" does not match the certificate in \"T/rsa.pem\"",
            ),
            (
                format!("ssl.pemfile = \"{ds}/rsa.pem\"\nssl.privkey = \"{ds}/rsa.key\"\n$HTTP[\"host\"] == \"b\" {{\n  ssl.privkey = \"{ds}/soon.key\"\n}}"),
                "T/lightd.conf:5: ssl.privkey: the private key in \"T/soon.key\" does not match the certificate in \"T/rsa.pem\"",
            ),
            (
                format!("ssl.ca-file = \"{ds}/garbage.pem\""),
                "T/lightd.conf:2: ssl.ca-file: no certificate in \"T/garbage.pem\"",
            ),
            (
                format!("ssl.ca-crl-file = \"{ds}/rsa.pem\""),
                "T/lightd.conf:2: ssl.ca-crl-file: no CRL in \"T/rsa.pem\"",
            ),
        ] {
            assert_eq!(load(d, &body).err().as_deref(), Some(want), "{body}");
        }
        let e = load(
            d,
            &format!("ssl.pemfile = \"{ds}/ed448.pem\"\nssl.privkey = \"{ds}/ed448.key\""),
        )
        .err()
        .unwrap_or_default();
        assert!(
            e.starts_with("T/lightd.conf:3: ssl.privkey: \"T/ed448.key\": unsupported private key"),
            "{e}"
        );
        // Expired, and not yet valid: the same certificate at other times.
        let cfg = config(
            d,
            &format!("ssl.pemfile = \"{ds}/ec.pem\"\nssl.privkey = \"{ds}/ec.key\""),
        );
        let later = now() + 40 * 86400;
        let e = Store::load_at(&cfg, later)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        let e = e.replace(&ds.to_string(), "T");
        assert!(
            e.starts_with("T/lightd.conf:2: ssl.pemfile: \"T/ec.pem\": the certificate for ec.example expired on 20"),
            "{e}"
        );
        let e = Store::load_at(&cfg, 86400)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            e.contains("the certificate for ec.example is not valid before 20"),
            "{e}"
        );
    }

    #[test]
    fn server_configs_follow_the_settings() {
        let t = tmp("configs");
        let d = &t.0;
        if certs(d).is_none() {
            return;
        }
        let ds = d.display();
        let cfg = config(
            d,
            &format!(
                "ssl.pemfile = \"{ds}/rsa.pem\"\nssl.privkey = \"{ds}/rsa.key\"\n\
                 ssl.ca-file = \"{ds}/ec.pem\"\n\
                 ssl.openssl.ssl-conf-cmd = ( \"Options\" => \"-ServerPreference\" )\n\
                 $HTTP[\"host\"] == \"mtls\" {{\n  ssl.verifyclient.activate = \"enable\"\n  \
                 ssl.acme-tls-1 = \"{ds}\"\n}}"
            ),
        );
        let (store, _) = Store::load(&cfg).unwrap_or_else(|e| panic!("{e}"));
        let base = store
            .server_config(&cfg.base.ssl)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(base.alpn_protocols, [b"http/1.1".to_vec()]);
        assert!(!base.ignore_client_order);
        assert_eq!(base.max_early_data_size, 0);
        assert!(base.ticketer.enabled());
        // A real handshake: TLS 1.3 works, TLS 1.2 is refused (lighttpd's default minimum).
        let root = d.join("rsa.pem");
        assert_eq!(
            handshake(&base, &root, &rustls::version::TLS13),
            Ok(Some(b"http/1.1".to_vec()))
        );
        assert!(handshake(&base, &root, &rustls::version::TLS12).is_err());
        let confs = cfg.ssl_confs();
        let mtls = confs
            .iter()
            .find(|c| c.verify_activate)
            .unwrap_or_else(|| panic!("{confs:?}"));
        let m = store.server_config(mtls).unwrap_or_else(|e| panic!("{e}"));
        // acme-tls/1 is answered by its own config (`acme_config`), not offered by this one.
        assert_eq!(m.alpn_protocols, [b"http/1.1".to_vec()]);
        // Without a loaded certificate there is no config to build.
        let mut other = (*cfg.base.ssl).clone();
        other.pemfile = None;
        assert!(store.server_config(&other).is_err());
    }

    #[test]
    fn client_variables_match_openssls_reading() {
        let t = tmp("env");
        let d = &t.0;
        if certs(d).is_none() {
            return;
        }
        let der_path = d.join("rsa.der");
        openssl(
            d,
            &[
                "x509", "-in", "rsa.pem", "-outform", "DER", "-out", "rsa.der",
            ],
        );
        let der = std::fs::read(&der_path).unwrap_or_else(|e| panic!("{e}"));
        let env = client_env(&der);
        let get = |k: &str| {
            env.iter()
                .find(|(n, _)| n == k)
                .map(|(_, v)| v.clone())
                .unwrap_or_else(|| panic!("{k} missing from {env:?}"))
        };
        assert!(
            !env.iter().any(|(k, _)| k == "SSL_CLIENT_VERIFY"),
            "{env:?}"
        );
        assert_eq!(get("SSL_CLIENT_S_DN"), "/C=DE/O=Example Org/CN=rsa.example");
        assert_eq!(get("SSL_CLIENT_I_DN"), "/C=DE/O=Example Org/CN=rsa.example");
        assert_eq!(get("SSL_CLIENT_S_DN_CN"), "rsa.example");
        assert_eq!(get("SSL_CLIENT_S_DN_O"), "Example Org");
        assert_eq!(get("SSL_CLIENT_S_DN_C"), "DE");
        let field = |flag: &str, prefix: &str| {
            openssl(d, &["x509", "-in", "rsa.pem", "-noout", flag])
                .unwrap_or_default()
                .trim()
                .trim_start_matches(prefix)
                .to_string()
        };
        let serial = field("-serial", "serial=");
        // Whole bytes, as OpenSSL prints them.
        assert_eq!(get("SSL_CLIENT_M_SERIAL"), serial);
        assert_eq!(get("SSL_CLIENT_V_START"), field("-startdate", "notBefore="));
        assert_eq!(get("SSL_CLIENT_V_END"), field("-enddate", "notAfter="));
        // Every truncation of a real certificate, and garbage, read as nothing, never panic.
        for n in 0..der.len() {
            assert!(client_env(&der[..n]).is_empty(), "{n}");
        }
        assert!(client_env(b"\x30\x84\xff\xff\xff\xff").is_empty());
    }

    /// An in-memory handshake with a rustls client trusting `root`, for "rsa.example" with
    /// ALPN http/1.1: the protocol the server chose, or the error.
    fn handshake(
        server: &Arc<ServerConfig>,
        root: &Path,
        version: &'static SupportedProtocolVersion,
    ) -> Result<Option<Vec<u8>>, String> {
        let mut roots = RootCertStore::empty();
        for c in CertificateDer::pem_file_iter(root).map_err(|e| e.to_string())? {
            roots
                .add(c.map_err(|e| e.to_string())?)
                .map_err(|e| e.to_string())?;
        }
        let mut client = rustls::ClientConfig::builder_with_provider(Arc::new(provider()))
            .with_protocol_versions(&[version])
            .map_err(|e| e.to_string())?
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.alpn_protocols = vec![b"http/1.1".to_vec()];
        let name =
            rustls::pki_types::ServerName::try_from("rsa.example").map_err(|e| e.to_string())?;
        let mut c =
            rustls::ClientConnection::new(Arc::new(client), name).map_err(|e| e.to_string())?;
        let mut s = rustls::ServerConnection::new(Arc::clone(server)).map_err(|e| e.to_string())?;
        for _ in 0..16 {
            let mut buf = Vec::new();
            while c.wants_write() {
                c.write_tls(&mut buf).map_err(|e| e.to_string())?;
            }
            let mut rd = &buf[..];
            while !rd.is_empty() {
                s.read_tls(&mut rd).map_err(|e| e.to_string())?;
            }
            s.process_new_packets().map_err(|e| e.to_string())?;
            let mut buf = Vec::new();
            while s.wants_write() {
                s.write_tls(&mut buf).map_err(|e| e.to_string())?;
            }
            let mut rd = &buf[..];
            while !rd.is_empty() {
                c.read_tls(&mut rd).map_err(|e| e.to_string())?;
            }
            c.process_new_packets().map_err(|e| e.to_string())?;
            if !c.is_handshaking() && !s.is_handshaking() {
                return Ok(s.alpn_protocol().map(|p| p.to_vec()));
            }
        }
        Err("handshake did not finish".to_string())
    }

    #[test]
    fn der_times() {
        let t = |tag: u8, s: &str| {
            time(&Tlv {
                tag,
                body: s.as_bytes(),
            })
        };
        assert_eq!(t(0x17, "700101000000Z"), Some(0));
        assert_eq!(t(0x17, "491231235959Z"), Some(2_524_607_999));
        assert_eq!(t(0x18, "20260310120000Z"), Some(1_773_144_000));
        assert_eq!(date(1_773_144_000), "2026-03-10 12:00:00 UTC");
        assert_eq!(openssl_date(1_773_144_000), "Mar 10 12:00:00 2026 GMT");
        assert_eq!(t(0x17, "260310120000"), None);
        assert_eq!(t(0x17, "261310120000Z"), None);
        assert_eq!(t(0x18, "2026031012000Z"), None);
        assert_eq!(
            dotted(&[0x2b, 0x06, 0x01, 0x04, 0x01, 0x82, 0x37]),
            "1.3.6.1.4.1.311"
        );
    }
}
