//! mod_openssl's keys (`ssl.*`), checked and kept as plain data: which listeners speak TLS,
//! which certificate a connection gets (also per `$HTTP["host"]`, chosen by SNI), and the
//! protocol options. The certificates themselves are read and checked by the tls layer.
//!
//! Semantics follow lighttpd 1.4.85's `src/mod_openssl.c`: which keys are valid where
//! (`ssl.engine`, `ssl.cipher-list` and `ssl.openssl.ssl-conf-cmd` only globally or directly in
//! a `$SERVER["socket"]` block, `ssl.stek-file` only globally), the defaults (client
//! certificates enforced when asked for, depth 9, TLS 1.3 as the minimum), and the rule that
//! a `$SERVER["socket"]` block either sets `ssl.pemfile` itself or sets nothing but
//! `ssl.engine`, inheriting the global certificate (Debian's 10-ssl.conf). OpenSSL's command
//! and cipher-string syntax is mapped onto what rustls offers; what cannot be mapped is an
//! error when ignoring it could weaken what the admin asked for, and a warning otherwise.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::rc::Rc;

use super::types::{CondChain, CondField, CondInput, Config, ConfigError, Loc, ReqConf};

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

/// The TLS 1.2 suites in OpenSSL's own order (`openssl ciphers -s -tls1_2 ALL`), which is the
/// order a cipher string adds them in.
const TLS12_ORDER: [Suite; 6] = [
    Suite::EcdheEcdsaAes256Gcm,
    Suite::EcdheRsaAes256Gcm,
    Suite::EcdheEcdsaChacha20,
    Suite::EcdheRsaChacha20,
    Suite::EcdheEcdsaAes128Gcm,
    Suite::EcdheRsaAes128Gcm,
];

/// OpenSSL's default TLS 1.3 order (its default `Ciphersuites`).
const TLS13_ORDER: [Suite; 3] = [
    Suite::Tls13Aes256Gcm,
    Suite::Tls13Chacha20,
    Suite::Tls13Aes128Gcm,
];

impl Suite {
    /// The name OpenSSL (and so lighttpd's configs) uses: the IANA name for TLS 1.3 suites.
    pub fn name(self) -> &'static str {
        match self {
            Suite::Tls13Aes128Gcm => "TLS_AES_128_GCM_SHA256",
            Suite::Tls13Aes256Gcm => "TLS_AES_256_GCM_SHA384",
            Suite::Tls13Chacha20 => "TLS_CHACHA20_POLY1305_SHA256",
            Suite::EcdheEcdsaAes128Gcm => "ECDHE-ECDSA-AES128-GCM-SHA256",
            Suite::EcdheEcdsaAes256Gcm => "ECDHE-ECDSA-AES256-GCM-SHA384",
            Suite::EcdheEcdsaChacha20 => "ECDHE-ECDSA-CHACHA20-POLY1305",
            Suite::EcdheRsaAes128Gcm => "ECDHE-RSA-AES128-GCM-SHA256",
            Suite::EcdheRsaAes256Gcm => "ECDHE-RSA-AES256-GCM-SHA384",
            Suite::EcdheRsaChacha20 => "ECDHE-RSA-CHACHA20-POLY1305",
        }
    }

    pub fn is_tls13(self) -> bool {
        matches!(
            self,
            Suite::Tls13Aes128Gcm | Suite::Tls13Aes256Gcm | Suite::Tls13Chacha20
        )
    }

    /// The key strength OpenSSL's `@STRENGTH` sorts by.
    fn bits(self) -> u32 {
        match self {
            Suite::EcdheEcdsaAes128Gcm | Suite::EcdheRsaAes128Gcm | Suite::Tls13Aes128Gcm => 128,
            _ => 256,
        }
    }
}

/// A key exchange group rustls (with ring) offers, for `Curves` / `Groups` and `ssl.ec-curve`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Group {
    X25519,
    Secp256r1,
    Secp384r1,
}

/// A file named by a key, with where the key was set (for file:line in errors).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathAt {
    pub path: PathBuf,
    pub loc: Loc,
}

/// What one `ssl.openssl.ssl-conf-cmd` array says, mapped. None: the array does not say it.
/// A later array (another block) replaces an earlier one as a whole, as in lighttpd, so a
/// block's commands never mix with the global block's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ConfCmd {
    /// `CipherString`: the TLS 1.2 suites.
    pub tls12: Option<Vec<Suite>>,
    /// `Ciphersuites`: the TLS 1.3 suites.
    pub tls13: Option<Vec<Suite>>,
    /// `MinProtocol` / `MaxProtocol` / `Protocol`; the inner None is "None" (no limit).
    pub min: Option<Option<Proto>>,
    pub max: Option<Option<Proto>>,
    /// `Options ServerPreference` / `-ServerPreference`.
    pub server_preference: Option<bool>,
    /// `Options SessionTicket` / `-SessionTicket`.
    pub tickets: Option<bool>,
    /// `Curves` / `Groups`.
    pub groups: Option<Vec<Group>>,
}

/// The `ssl.*` settings in effect for one connection (merged like any per-request setting:
/// a `$SERVER["socket"]` block and, for SNI, `$HTTP["host"]` blocks override the global
/// ones).
///
/// The protocol fields (`min_proto` to `groups`) are derived from the keys that can set them
/// (`ssl.cipher-list`, `ssl.honor-cipher-order`, `ssl.ec-curve` and the commands of
/// `ssl.openssl.ssl-conf-cmd`, which win, as in lighttpd where they are applied last): those
/// keys' own values are kept in the fields after `stapling_file` and the derived ones are
/// recomputed whenever one of them changes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SslConf {
    /// `ssl.engine`: this listener speaks TLS.
    pub engine: bool,
    /// `ssl.pemfile`: the certificate chain, and the key when `privkey` is unset.
    pub pemfile: Option<PathAt>,
    /// `ssl.privkey`.
    pub privkey: Option<PathAt>,
    /// `ssl.ca-file` or `ssl.verifyclient.ca-file` (one key in lighttpd: the last set wins):
    /// the CAs trusted for client certificates.
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
    /// From `MinProtocol` / `MaxProtocol` in `ssl.openssl.ssl-conf-cmd`. None: rustls's
    /// defaults (TLS 1.2 and 1.3). lighttpd 1.4.85's default minimum is TLS 1.3, so that is
    /// what a config that does not say otherwise gets (`MinProtocol` "TLSv1.2" allows 1.2).
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
    /// From `Curves` / `Groups` in ssl-conf-cmd or `ssl.ec-curve`: the key exchange groups in
    /// order of preference. None: rustls's defaults (X25519, P-256, P-384).
    pub groups: Option<Vec<Group>>,
    /// `ssl.stapling-file`: a DER OCSP response to staple.
    pub stapling_file: Option<PathAt>,
    /// `ssl.cipher-list` as mapped (its TLS 1.2 suites). Input of `suites`.
    pub cipher_list: Option<Vec<Suite>>,
    /// `ssl.honor-cipher-order` as written. Input of `honor_cipher_order`.
    pub honor_key: bool,
    /// `ssl.ec-curve` as mapped. Input of `groups`.
    pub ec_curve: Option<Vec<Group>>,
    /// `ssl.openssl.ssl-conf-cmd` as mapped. Input of the protocol fields.
    pub conf_cmd: Option<Rc<ConfCmd>>,
}

impl Default for SslConf {
    /// lighttpd's defaults: no TLS, client certificates enforced (once activated) to depth 9,
    /// TLS 1.3 as the minimum, the server's suite order, tickets on.
    fn default() -> SslConf {
        SslConf {
            engine: false,
            pemfile: None,
            privkey: None,
            ca_file: None,
            ca_crl_file: None,
            verify_activate: false,
            verify_enforce: true,
            verify_depth: 9,
            verify_username: None,
            verify_exportcert: false,
            min_proto: Some(Proto::Tls13),
            max_proto: None,
            suites: None,
            honor_cipher_order: true,
            no_tickets: false,
            acme_tls_1: None,
            stek_file: None,
            groups: None,
            stapling_file: None,
            cipher_list: None,
            honor_key: true,
            ec_curve: None,
            conf_cmd: None,
        }
    }
}

impl SslConf {
    /// Recompute the protocol fields from the keys that set them: the ssl-conf-cmd commands
    /// win over `ssl.cipher-list`, `ssl.honor-cipher-order` and `ssl.ec-curve`.
    pub(crate) fn derive(&mut self) {
        let none = ConfCmd::default();
        let cmd = self.conf_cmd.as_deref().unwrap_or(&none);
        self.min_proto = cmd.min.unwrap_or(Some(Proto::Tls13));
        self.max_proto = cmd.max.unwrap_or(None);
        let tls12 = cmd.tls12.as_ref().or(self.cipher_list.as_ref());
        self.suites = match (cmd.tls13.as_ref(), tls12) {
            (None, None) => None,
            (t13, t12) => {
                let mut v: Vec<Suite> = t13.cloned().unwrap_or_else(|| TLS13_ORDER.to_vec());
                // lighttpd's default cipher list ("EECDH+AESGCM:CHACHA20:!PSK:!DHE")
                // selects every TLS 1.2 suite rustls has, in OpenSSL's order.
                v.extend(t12.cloned().unwrap_or_else(|| TLS12_ORDER.to_vec()));
                Some(v)
            }
        };
        self.honor_cipher_order = cmd.server_preference.unwrap_or(self.honor_key);
        self.no_tickets = !cmd.tickets.unwrap_or(true);
        self.groups = cmd.groups.clone().or_else(|| self.ec_curve.clone());
    }
}

// ---------------------------------------------------------------------------------------------
// OpenSSL cipher strings

/// OpenSSL's cipher-string keywords and which of [`TLS12_ORDER`] each selects (bit i: suite
/// i), as `openssl ciphers -s -tls1_2 KEYWORD` (OpenSSL 3.0) answers. Keywords for ciphers
/// rustls does not have select nothing.
const KEYWORDS: &[(&str, u8)] = &[
    ("ALL", 0b111111),
    ("DEFAULT", 0b111111),
    ("HIGH", 0b111111),
    ("TLSv1.2", 0b111111),
    ("kEECDH", 0b111111),
    ("kECDHE", 0b111111),
    ("ECDH", 0b111111),
    ("ECDHE", 0b111111),
    ("EECDH", 0b111111),
    ("FIPS", 0b110011),
    ("aECDSA", 0b010101),
    ("ECDSA", 0b010101),
    ("aRSA", 0b101010),
    ("AES", 0b110011),
    ("AESGCM", 0b110011),
    ("AES128", 0b110000),
    ("AES256", 0b000011),
    ("CHACHA20", 0b001100),
    ("COMPLEMENTOFALL", 0),
    ("COMPLEMENTOFDEFAULT", 0),
    ("MEDIUM", 0),
    ("LOW", 0),
    ("EXP", 0),
    ("EXPORT", 0),
    ("eNULL", 0),
    ("NULL", 0),
    ("aNULL", 0),
    ("kRSA", 0),
    ("RSA", 0),
    ("kDHr", 0),
    ("kDHd", 0),
    ("kDH", 0),
    ("kDHE", 0),
    ("kEDH", 0),
    ("DH", 0),
    ("DHE", 0),
    ("EDH", 0),
    ("ADH", 0),
    ("AECDH", 0),
    ("aECDH", 0),
    ("aDSS", 0),
    ("DSS", 0),
    ("aDH", 0),
    ("TLSv1", 0),
    ("TLSv1.0", 0),
    ("SSLv3", 0),
    ("AESCCM", 0),
    ("AESCCM8", 0),
    ("ARIA", 0),
    ("ARIA128", 0),
    ("ARIA256", 0),
    ("ARIAGCM", 0),
    ("CAMELLIA", 0),
    ("CAMELLIA128", 0),
    ("CAMELLIA256", 0),
    ("3DES", 0),
    ("DES", 0),
    ("RC4", 0),
    ("RC2", 0),
    ("IDEA", 0),
    ("SEED", 0),
    ("MD5", 0),
    ("SHA1", 0),
    ("SHA", 0),
    ("SHA256", 0),
    ("SHA384", 0),
    ("CBC", 0),
    ("PSK", 0),
    ("kPSK", 0),
    ("aPSK", 0),
    ("kECDHEPSK", 0),
    ("kDHEPSK", 0),
    ("kRSAPSK", 0),
    ("ECDHEPSK", 0),
    ("DHEPSK", 0),
    ("RSAPSK", 0),
    ("SRP", 0),
    ("kSRP", 0),
    ("aSRP", 0),
    ("kGOST", 0),
    ("aGOST", 0),
    ("GOST94", 0),
    ("GOST89MAC", 0),
];

/// The most elements a cipher string, a suite list or a group list may have: far more than
/// any real one, and it bounds the work on a hostile config.
const MAX_ITEMS: usize = 256;

/// The suites a cipher string can name, for messages.
fn available12() -> String {
    let names: Vec<&str> = TLS12_ORDER.iter().map(|s| s.name()).collect();
    names.join(":")
}

/// Which TLS 1.2 suites one element (without its prefix) selects, as a bit mask over
/// [`TLS12_ORDER`]; None when OpenSSL would not know it either.
fn select(word: &str) -> Option<u8> {
    let mut mask = 0b111111u8;
    // "ECDHE+AESGCM": every part must match.
    for part in word.split('+') {
        let m = if let Some(i) = TLS12_ORDER
            .iter()
            .position(|s| s.name().eq_ignore_ascii_case(part))
        {
            1u8 << i
        } else if let Some((_, m)) = KEYWORDS.iter().find(|(k, _)| k.eq_ignore_ascii_case(part)) {
            *m
        } else if looks_like_cipher_name(part) {
            // An OpenSSL cipher rustls does not have (AES256-SHA, DHE-RSA-...): nothing.
            0
        } else {
            return None;
        };
        mask &= m;
    }
    Some(mask)
}

/// OpenSSL's names for ciphers are upper-case words joined by dashes ("AES256-SHA",
/// "DHE-RSA-AES128-GCM-SHA256", "TLS_AES_128_CCM_SHA256").
fn looks_like_cipher_name(s: &str) -> bool {
    (s.contains('-') || s.starts_with("TLS_"))
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// Map an OpenSSL cipher string (`ssl.cipher-list`, `CipherString`) onto rustls's TLS 1.2
/// suites, with OpenSSL's semantics: elements separated by ':', ',' or ' '; "A+B" selects
/// what both select; a prefix '!' removes for good, '-' removes, '+' moves to the end;
/// "@STRENGTH" sorts by key length. An empty result is an error naming what is available;
/// words OpenSSL would not know are warned about (they select nothing).
pub fn cipher_string(text: &str, warn: &mut Vec<String>) -> Result<Vec<Suite>, String> {
    let text = if text.trim().is_empty() { "HIGH" } else { text };
    let mut list: Vec<Suite> = Vec::new();
    let mut banned = 0u8;
    let elems: Vec<&str> = text
        .split([':', ',', ' '])
        .filter(|e| !e.is_empty())
        .collect();
    if elems.len() > MAX_ITEMS {
        return Err(format!("more than {MAX_ITEMS} elements"));
    }
    // Suite B (RFC 6460): a keyword at the start replaces the whole string with its fixed
    // list, as in OpenSSL; anywhere else it selects nothing.
    let suite_b = |w: &str| match w {
        "SUITEB128" => Some(vec![Suite::EcdheEcdsaAes128Gcm, Suite::EcdheEcdsaAes256Gcm]),
        "SUITEB128ONLY" => Some(vec![Suite::EcdheEcdsaAes128Gcm]),
        "SUITEB192" => Some(vec![Suite::EcdheEcdsaAes256Gcm]),
        _ => None,
    };
    if let Some(fixed) = elems.first().and_then(|w| suite_b(w)) {
        return Ok(fixed);
    }
    for elem in elems {
        if suite_b(elem.trim_start_matches(['!', '-', '+'])).is_some() {
            continue;
        }
        if elem.eq_ignore_ascii_case("@STRENGTH") {
            // A stable sort: equal strengths keep their order, as in OpenSSL.
            list.sort_by_key(|s| std::cmp::Reverse(s.bits()));
            continue;
        }
        if elem.starts_with('@') {
            // @SECLEVEL=n: rustls's suites all pass every level, but levels 3 and up also
            // refuse RSA keys under 3072 bits (the server's and clients'), which lightd does
            // not check: such a level cannot be honoured.
            let level = elem
                .get(..10)
                .filter(|p| p.eq_ignore_ascii_case("@SECLEVEL="))
                .and_then(|_| elem.get(10..))
                .and_then(|n| n.parse::<u32>().ok());
            if level.is_some_and(|n| n >= 3) {
                return Err(format!(
                    "{elem}: lightd cannot enforce OpenSSL security levels above 2 (they refuse \
                     RSA keys under 3072 bits); remove it"
                ));
            }
            continue;
        }
        let (op, word) = match elem.as_bytes().first() {
            Some(b'!') => ('!', &elem[1..]),
            Some(b'-') => ('-', &elem[1..]),
            Some(b'+') => ('+', &elem[1..]),
            _ => (' ', elem),
        };
        if word.starts_with("TLS_") && TLS13_ORDER.iter().any(|s| s.name() == word) {
            warn.push(format!(
                "\"{word}\" is a TLS 1.3 suite, which a cipher string does not set (use \
                 \"Ciphersuites\"); it selects nothing here"
            ));
            continue;
        }
        let Some(mask) = select(word) else {
            warn.push(format!(
                "\"{word}\" is not a cipher or cipher keyword lightd knows; it selects nothing"
            ));
            continue;
        };
        let picked = TLS12_ORDER
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) != 0)
            .map(|(_, s)| *s);
        match op {
            '!' => {
                banned |= mask;
                list.retain(|s| !picked.clone().any(|p| p == *s));
            }
            '-' => list.retain(|s| !picked.clone().any(|p| p == *s)),
            '+' => {
                // Only those already in the list move; nothing is added.
                let (moved, kept): (Vec<Suite>, Vec<Suite>) =
                    list.iter().partition(|s| picked.clone().any(|p| p == **s));
                list = kept;
                list.extend(moved);
            }
            _ => {
                for (i, s) in TLS12_ORDER.iter().enumerate() {
                    if mask & (1 << i) != 0 && banned & (1 << i) == 0 && !list.contains(s) {
                        list.push(*s);
                    }
                }
            }
        }
    }
    if list.is_empty() {
        return Err(format!(
            "\"{text}\" selects no cipher suite lightd (rustls) has; available: {}",
            available12()
        ));
    }
    Ok(list)
}

/// Map OpenSSL's `Ciphersuites` (TLS 1.3 names, ':'-separated). A known name rustls lacks
/// (the CCM suites) is warned about; an unknown one is an error, as in OpenSSL. Empty means
/// "no TLS 1.3 suite", which `check_versions` then judges.
pub fn ciphersuites(text: &str, warn: &mut Vec<String>) -> Result<Vec<Suite>, String> {
    let mut out = Vec::new();
    let names: Vec<&str> = text.split(':').filter(|n| !n.trim().is_empty()).collect();
    if names.len() > MAX_ITEMS {
        return Err(format!("more than {MAX_ITEMS} names"));
    }
    for name in names {
        let name = name.trim();
        if let Some(s) = TLS13_ORDER.iter().find(|s| s.name() == name) {
            if !out.contains(s) {
                out.push(*s);
            }
        } else if name == "TLS_AES_128_CCM_SHA256" || name == "TLS_AES_128_CCM_8_SHA256" {
            warn.push(format!("\"{name}\" is not offered by rustls; ignored"));
        } else {
            let names: Vec<&str> = TLS13_ORDER.iter().map(|s| s.name()).collect();
            return Err(format!(
                "unknown TLS 1.3 suite \"{name}\"; available: {}",
                names.join(":")
            ));
        }
    }
    Ok(out)
}

/// Map a list of groups (`Curves` / `Groups`, `ssl.ec-curve`): OpenSSL's names, separated by
/// ':' (OpenSSL 3.5's '/' and the '*' key-share marks too). Groups OpenSSL has and rustls
/// lacks are warned about (none if marked '?', OpenSSL's "ignore if unknown"), unknown ones
/// are an error, and a list left empty is an error naming what is available.
pub fn groups(text: &str, warn: &mut Vec<String>) -> Result<Vec<Group>, String> {
    const KNOWN_ELSEWHERE: &[&str] = &[
        "X448",
        "P-521",
        "secp521r1",
        "secp224r1",
        "P-224",
        "secp192r1",
        "prime192v1",
        "brainpoolP256r1",
        "brainpoolP384r1",
        "brainpoolP512r1",
        "brainpoolP256r1tls13",
        "brainpoolP384r1tls13",
        "brainpoolP512r1tls13",
        "ffdhe2048",
        "ffdhe3072",
        "ffdhe4096",
        "ffdhe6144",
        "ffdhe8192",
        "X25519MLKEM768",
        "SecP256r1MLKEM768",
        "SecP384r1MLKEM1024",
        "MLKEM512",
        "MLKEM768",
        "MLKEM1024",
    ];
    let mut out = Vec::new();
    let names: Vec<&str> = text
        .split([':', '/'])
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect();
    if names.len() > MAX_ITEMS {
        return Err(format!("more than {MAX_ITEMS} names"));
    }
    for raw in names {
        let quiet = raw.contains('?');
        if raw.starts_with('-') || raw.starts_with("?-") {
            // OpenSSL 3.5 reads "-name" as "without name": not a list lightd can build.
            return Err(format!(
                "{raw}: removing a group is not supported; list the groups to use"
            ));
        }
        let name = raw.trim_start_matches(['*', '?']);
        let g = match name.to_ascii_lowercase().as_str() {
            "x25519" => Some(Group::X25519),
            "p-256" | "prime256v1" | "secp256r1" => Some(Group::Secp256r1),
            "p-384" | "secp384r1" => Some(Group::Secp384r1),
            _ => None,
        };
        match g {
            Some(g) => {
                if !out.contains(&g) {
                    out.push(g);
                }
            }
            None if quiet => {}
            None if KNOWN_ELSEWHERE.iter().any(|k| k.eq_ignore_ascii_case(name)) => {
                warn.push(format!(
                    "group \"{name}\" is not offered by rustls; ignored"
                ));
            }
            None => return Err(format!("unknown group \"{name}\"")),
        }
    }
    if out.is_empty() {
        return Err(format!(
            "\"{text}\" names no key exchange group lightd (rustls) has; available: \
             X25519:P-256:P-384"
        ));
    }
    Ok(out)
}

/// A protocol name for MinProtocol / MaxProtocol / Protocol: None for SSLv3 to TLSv1.1
/// (older than rustls speaks).
enum Version {
    Old(&'static str),
    New(Proto),
}

fn version(name: &str) -> Result<Version, String> {
    let n = name.trim();
    let v = if n.eq_ignore_ascii_case("TLSv1.3") {
        Version::New(Proto::Tls13)
    } else if n.eq_ignore_ascii_case("TLSv1.2") {
        Version::New(Proto::Tls12)
    } else if n.eq_ignore_ascii_case("TLSv1.1") {
        Version::Old("TLSv1.1")
    } else if n.eq_ignore_ascii_case("TLSv1") || n.eq_ignore_ascii_case("TLSv1.0") {
        Version::Old("TLSv1")
    } else if n.eq_ignore_ascii_case("SSLv3") {
        Version::Old("SSLv3")
    } else {
        return Err(format!(
            "unknown protocol \"{n}\"; expected TLSv1.2 or TLSv1.3 (or None)"
        ));
    };
    Ok(v)
}

/// `Protocol`: OpenSSL's list of versions switched on ("TLSv1.2") or off ("-TLSv1.1"), "ALL"
/// for every one, applied in order to "all on". The result is the range of versions left on.
fn protocol_list(text: &str, warn: &mut Vec<String>) -> Result<(Proto, Proto), String> {
    // SSLv3, TLSv1, TLSv1.1, TLSv1.2, TLSv1.3.
    let mut on = [true; 5];
    let items: Vec<&str> = text
        .split([',', ' ', ':'])
        .filter(|s| !s.is_empty())
        .collect();
    if items.len() > MAX_ITEMS {
        return Err(format!("more than {MAX_ITEMS} names"));
    }
    for item in items {
        let (flag, name) = match item.strip_prefix('-') {
            Some(n) => (false, n),
            None => (true, item.strip_prefix('+').unwrap_or(item)),
        };
        if name.eq_ignore_ascii_case("ALL") {
            on = [flag; 5];
            continue;
        }
        let i = match version(name)? {
            Version::Old("SSLv3") => 0,
            Version::Old("TLSv1") => 1,
            Version::Old(_) => 2,
            Version::New(Proto::Tls12) => 3,
            Version::New(Proto::Tls13) => 4,
        };
        on[i] = flag;
    }
    if on[..3].iter().any(|b| *b) {
        warn.push(
            "Protocol: SSLv3, TLSv1 and TLSv1.1 are not offered by rustls (only TLSv1.2 and \
             TLSv1.3); they stay off"
                .to_string(),
        );
    }
    match (on[3], on[4]) {
        (true, true) => Ok((Proto::Tls12, Proto::Tls13)),
        (true, false) => Ok((Proto::Tls12, Proto::Tls12)),
        (false, true) => Ok((Proto::Tls13, Proto::Tls13)),
        (false, false) => Err(format!(
            "\"{text}\" leaves neither TLSv1.2 nor TLSv1.3 on, and rustls speaks nothing else"
        )),
    }
}

/// `Options`: OpenSSL's flags, comma- or space-separated, "-" to clear one. What rustls does
/// anyway is accepted, what only loosens security (and rustls will not loosen) or only tunes
/// OpenSSL is warned about, and an unknown flag is an error (OpenSSL refuses it too, and a
/// misspelled flag must not vanish silently).
fn options(text: &str, cmd: &mut ConfCmd, warn: &mut Vec<String>) -> Result<(), String> {
    let items: Vec<&str> = text
        .split([',', ' ', '\t'])
        .filter(|s| !s.is_empty())
        .collect();
    if items.len() > MAX_ITEMS {
        return Err(format!("more than {MAX_ITEMS} flags"));
    }
    for item in items {
        let (flag, name) = match item.strip_prefix('-') {
            Some(n) => (false, n),
            None => (true, item.strip_prefix('+').unwrap_or(item)),
        };
        let is = |n: &str| name.eq_ignore_ascii_case(n);
        if is("ServerPreference") {
            cmd.server_preference = Some(flag);
        } else if is("SessionTicket") {
            cmd.tickets = Some(flag);
        } else if (is("Compression") && !flag)
            || (is("NoRenegotiation") && flag)
            || is("NoResumptionOnRenegotiation")
            || (is("AntiReplay") && flag)
            || (is("EncryptThenMac") && flag)
            || (is("ExtendedMasterSecret") && flag)
        {
            // rustls already behaves this way: no compression, no renegotiation, no early
            // data (so nothing to replay), AEAD suites only, extended master secret.
        } else if is("Compression")
            || is("NoRenegotiation")
            || is("AllowNoDHEKex")
            || is("UnsafeLegacyRenegotiation")
            || is("UnsafeLegacyServerConnect")
            || is("LegacyServerConnect")
            || is("AntiReplay")
            || is("EncryptThenMac")
            || is("ExtendedMasterSecret")
            || is("ClientRenegotiation")
        {
            warn.push(format!(
                "Options {item}: would loosen security, which rustls does not do; ignored"
            ));
        } else if is("PrioritizeChaCha")
            || is("KTLS")
            || is("Bugs")
            || is("MiddleboxCompat")
            || is("DHSingle")
            || is("ECDHSingle")
            || is("PreferNoDHEKex")
            || is("TxCertificateCompression")
            || is("RxCertificateCompression")
            || is("EnableKTLSTxZerocopySendfile")
            || is("IgnoreUnexpectedEOF")
            || is("NoTX")
        {
            warn.push(format!(
                "Options {item}: OpenSSL tuning rustls has no equivalent for; ignored"
            ));
        } else {
            return Err(format!("Options: unknown flag \"{item}\""));
        }
    }
    Ok(())
}

/// Map `ssl.openssl.ssl-conf-cmd` (pairs of OpenSSL SSL_CONF_cmd name and value). Commands
/// are read in order, so a later MinProtocol overrides an earlier Protocol. Names are
/// compared without regard to case, as OpenSSL does for its file syntax.
pub fn conf_cmd(pairs: &[(String, String)], warn: &mut Vec<String>) -> Result<ConfCmd, String> {
    let mut cmd = ConfCmd::default();
    if pairs.len() > MAX_ITEMS {
        return Err(format!("more than {MAX_ITEMS} commands"));
    }
    for (name, value) in pairs {
        let is = |n: &str| name.eq_ignore_ascii_case(n);
        let ctx = |e: String| format!("\"{name}\" => \"{value}\": {e}");
        let mut said = Vec::new();
        if is("CipherString") {
            cmd.tls12 = Some(cipher_string(value, &mut said).map_err(ctx)?);
        } else if is("Ciphersuites") {
            cmd.tls13 = Some(ciphersuites(value, &mut said).map_err(ctx)?);
        } else if is("MinProtocol") {
            cmd.min = Some(if value.trim().eq_ignore_ascii_case("None") {
                None
            } else {
                match version(value).map_err(ctx)? {
                    Version::New(p) => Some(p),
                    // A minimum means "nothing older": raising it to what rustls speaks
                    // keeps that promise.
                    Version::Old(v) => {
                        said.push(format!(
                            "rustls speaks nothing older than TLSv1.2; the minimum is raised \
                             from {v} to TLSv1.2"
                        ));
                        Some(Proto::Tls12)
                    }
                }
            });
        } else if is("MaxProtocol") {
            cmd.max = Some(if value.trim().eq_ignore_ascii_case("None") {
                None
            } else {
                match version(value).map_err(ctx)? {
                    Version::New(p) => Some(p),
                    // Serving 1.2 would break the limit the admin set: nothing can be
                    // offered.
                    Version::Old(v) => {
                        return Err(ctx(format!(
                            "a maximum of {v} leaves nothing rustls speaks (TLSv1.2, TLSv1.3)"
                        )))
                    }
                }
            });
        } else if is("Protocol") {
            let (lo, hi) = protocol_list(value, &mut said).map_err(ctx)?;
            cmd.min = Some(Some(lo));
            cmd.max = Some(Some(hi));
        } else if is("Options") {
            options(value, &mut cmd, &mut said).map_err(ctx)?;
        } else if is("Curves") || is("Groups") {
            cmd.groups = Some(groups(value, &mut said).map_err(ctx)?);
        } else if is("VerifyMode")
            || is("VerifyCAFile")
            || is("VerifyCAPath")
            || is("VerifyCAStore")
            || is("ClientCAFile")
            || is("ClientCAPath")
            || is("ClientCAStore")
            || is("RequestCAFile")
            || is("RequestCAPath")
            || is("RequestCAStore")
        {
            // Client certificates guard access: not honouring them would let everyone in.
            return Err(ctx(
                "client certificates are configured with ssl.verifyclient.* and ssl.ca-file \
                 in lightd"
                    .to_string(),
            ));
        } else if is("Certificate")
            || is("PrivateKey")
            || is("ServerInfoFile")
            || is("ChainCAFile")
            || is("ChainCAPath")
            || is("ChainCAStore")
        {
            // Serving another certificate than the one configured here would be wrong.
            return Err(ctx(
                "the certificate and key are set with ssl.pemfile and ssl.privkey in lightd"
                    .to_string(),
            ));
        } else if is("SignatureAlgorithms")
            || is("ClientSignatureAlgorithms")
            || is("SigAlgs")
            || is("ClientSigAlgs")
        {
            // rustls's list has nothing weak in it (no SHA-1, no MD5), so a narrower list
            // cannot be needed for security.
            said.push(
                "rustls's signature algorithms are used (ECDSA, Ed25519, RSA-PSS and \
                 RSA-PKCS#1 with SHA-256/384/512); ignored"
                    .to_string(),
            );
        } else if is("DHParameters") || is("ECDHParameters") {
            said.push("rustls has no finite-field DH suites; ignored".to_string());
        } else if is("SecurityLevel") && value.trim().parse::<u32>().map_or(true, |n| n >= 3) {
            return Err(ctx(
                "lightd cannot enforce OpenSSL security levels above 2 (they refuse RSA keys \
                 under 3072 bits)"
                    .to_string(),
            ));
        } else if is("SecurityLevel")
            || is("NumTickets")
            || is("RecordPadding")
            || is("MaxSendFragment")
        {
            said.push("OpenSSL tuning rustls has no equivalent for; ignored".to_string());
        } else {
            // OpenSSL refuses unknown commands (and lighttpd then does not start); a
            // misspelled security setting must not be dropped in silence.
            return Err(format!("\"{name}\": unknown command"));
        }
        warn.extend(
            said.into_iter()
                .map(|w| format!("\"{name}\" => \"{value}\": {w}")),
        );
    }
    check_versions(&cmd)?;
    Ok(cmd)
}

/// Whether the versions and suites a command array leaves can still make a handshake.
fn check_versions(cmd: &ConfCmd) -> Result<(), String> {
    let min = cmd
        .min
        .unwrap_or(Some(Proto::Tls13))
        .unwrap_or(Proto::Tls12);
    let max = cmd.max.flatten().unwrap_or(Proto::Tls13);
    if min > max {
        let default = if cmd.min.is_none() {
            " (lighttpd's default minimum)"
        } else {
            ""
        };
        return Err(format!(
            "MinProtocol {}{default} is above MaxProtocol {}",
            proto_name(min),
            proto_name(max)
        ));
    }
    if let Some(t13) = &cmd.tls13 {
        if t13.is_empty() && min == Proto::Tls13 {
            return Err(
                "\"Ciphersuites\" is empty and TLSv1.3 is the only version allowed: no \
                 handshake could succeed"
                    .to_string(),
            );
        }
    }
    Ok(())
}

pub fn proto_name(p: Proto) -> &'static str {
    match p {
        Proto::Tls12 => "TLSv1.2",
        Proto::Tls13 => "TLSv1.3",
    }
}

// ---------------------------------------------------------------------------------------------
// Where keys are valid, and which certificate each listener has

/// Keys lighttpd reads only globally or directly in a `$SERVER["socket"]` block (its
/// T_CONFIG_SCOPE_SOCKET).
const SOCKET_SCOPE: &[&str] = &["ssl.engine", "ssl.cipher-list", "ssl.openssl.ssl-conf-cmd"];

/// Keys lighttpd reads only globally (T_CONFIG_SCOPE_SERVER).
const SERVER_SCOPE: &[&str] = &["ssl.stek-file"];

fn is_socket_cond(c: &Option<super::types::Cond>) -> bool {
    matches!(c, Some(c) if c.field == CondField::ServerSocket)
}

/// The `-t` checks of the ssl keys, once the config is built: each key in a scope lighttpd
/// reads it in, a certificate for every listener that speaks TLS, and a CA for every block
/// that asks for client certificates.
pub(crate) fn check(cfg: &Config) -> Result<(), ConfigError> {
    fn scopes(cfg: &Config, chains: &[CondChain], top: bool) -> Result<(), ConfigError> {
        for b in chains.iter().flat_map(|c| &c.branches) {
            for s in &b.settings {
                let name = s.name();
                let socket_ok = top && is_socket_cond(&b.cond);
                let msg = if SERVER_SCOPE.contains(&name) {
                    "is valid only in the global scope"
                } else if SOCKET_SCOPE.contains(&name) && !socket_ok {
                    "is valid only in the global scope or directly in a $SERVER[\"socket\"] \
                     condition"
                } else {
                    continue;
                };
                return Err(ConfigError {
                    loc: cfg.locs.get(&format!("{name}@{}", b.id)).cloned(),
                    msg: format!("{name} {msg}"),
                });
            }
            scopes(cfg, &b.children, false)?;
        }
        Ok(())
    }
    scopes(cfg, &cfg.conds, true)?;

    let base = &cfg.base.ssl;
    if base.engine && base.pemfile.is_none() {
        return Err(ConfigError {
            loc: cfg.locs.get("ssl.engine").cloned(),
            msg: "ssl.pemfile has to be set when ssl.engine = \"enable\"".to_string(),
        });
    }
    // A $SERVER["socket"] block that turns TLS on either names its own certificate or sets
    // nothing else, inheriting every ssl.* key of the global scope (lighttpd's rule: a
    // certificate from one scope with options from another is a mistake more often than not).
    for b in cfg.conds.iter().flat_map(|c| &c.branches) {
        if !is_socket_cond(&b.cond) {
            continue;
        }
        let mut conf = cfg.base.clone();
        for s in &b.settings {
            s.apply(&mut conf);
        }
        if !conf.ssl.engine {
            continue;
        }
        let ssl_keys = b.settings.iter().filter(|s| s.name().starts_with("ssl."));
        let sets_pemfile = b.settings.iter().any(|s| s.name() == "ssl.pemfile");
        let others = ssl_keys.filter(|s| s.name() != "ssl.engine").count();
        if !sets_pemfile && (others > 0 || base.pemfile.is_none()) {
            return Err(ConfigError {
                loc: b.cond.as_ref().map(|c| c.loc.clone()),
                msg: "ssl.pemfile has to be set in the same $SERVER[\"socket\"] scope as other \
                      ssl.* directives, unless only ssl.engine is set, inheriting ssl.* from \
                      the global scope (where ssl.pemfile must then be set)"
                    .to_string(),
            });
        }
    }
    client_checks_decidable(cfg, &cfg.conds)?;
    // Asking for client certificates without trusting any CA could never verify one.
    for (conf, at) in confs_with_locs(cfg) {
        if conf.verify_activate && conf.ca_file.is_none() {
            return Err(ConfigError {
                loc: at,
                msg: "ssl.verifyclient.activate is enabled but neither \
                      ssl.verifyclient.ca-file nor ssl.ca-file is set: no client \
                      certificate could be verified"
                    .to_string(),
            });
        }
    }
    Ok(())
}

/// Client certificates are asked for and checked during the handshake, when only the socket,
/// the client's address and the server name are known: a client-certificate key inside a
/// block on anything else (the URL, a header) would never be applied, and the request it
/// means to protect would be served unchecked. Refused, with where (fail closed). The
/// `else` branches after such a condition are as undecided as it is.
fn client_checks_decidable(cfg: &Config, chains: &[CondChain]) -> Result<(), ConfigError> {
    fn walk(cfg: &Config, chains: &[CondChain], undecided: bool) -> Result<(), ConfigError> {
        for chain in chains {
            let mut undecided = undecided;
            for b in &chain.branches {
                let known = |f: &CondField| {
                    matches!(
                        f,
                        CondField::ServerSocket
                            | CondField::RemoteIp
                            | CondField::Host
                            | CondField::Scheme
                    )
                };
                if b.cond.as_ref().is_some_and(|c| !known(&c.field)) {
                    undecided = true;
                }
                if undecided {
                    let client = b.settings.iter().find(|s| {
                        let n = s.name();
                        n.starts_with("ssl.verifyclient.")
                            || n == "ssl.ca-file"
                            || n == "ssl.ca-crl-file"
                    });
                    if let Some(set) = client {
                        return Err(ConfigError {
                            loc: cfg
                                .locs
                                .get(&format!("{}@{}", set.name(), b.id))
                                .cloned()
                                .or_else(|| b.cond.as_ref().map(|c| c.loc.clone())),
                            msg: format!(
                                "{} cannot be honoured in this block: client certificates are \
                                 checked during the TLS handshake, before the request's URL \
                                 and headers are known; only $SERVER[\"socket\"], \
                                 $HTTP[\"remote-ip\"], $HTTP[\"host\"] and $HTTP[\"scheme\"] \
                                 conditions can choose them",
                                set.name()
                            ),
                        });
                    }
                }
                walk(cfg, &b.children, undecided)?;
            }
        }
        Ok(())
    }
    walk(cfg, chains, false)
}

/// Every block's ssl settings merged along its path from the global scope (global, then
/// each enclosing block, then the block), with where `ssl.verifyclient.activate` was last
/// set on that path.
fn confs_with_locs(cfg: &Config) -> Vec<(Rc<SslConf>, Option<Loc>)> {
    fn walk(
        cfg: &Config,
        chains: &[CondChain],
        parent: &ReqConf,
        at: &Option<Loc>,
        out: &mut Vec<(Rc<SslConf>, Option<Loc>)>,
    ) {
        for b in chains.iter().flat_map(|c| &c.branches) {
            let mut conf = parent.clone();
            let mut loc = at.clone();
            for s in &b.settings {
                s.apply(&mut conf);
                if s.name() == "ssl.verifyclient.activate" {
                    loc = cfg
                        .locs
                        .get(&format!("ssl.verifyclient.activate@{}", b.id))
                        .cloned();
                }
            }
            if !out.iter().any(|(c, _)| **c == *conf.ssl) {
                out.push((Rc::clone(&conf.ssl), loc.clone()));
            }
            walk(cfg, &b.children, &conf, &loc, out);
        }
    }
    let at = cfg.locs.get("ssl.verifyclient.activate").cloned();
    let mut out = vec![(Rc::clone(&cfg.base.ssl), at.clone())];
    walk(cfg, &cfg.conds, &cfg.base, &at, &mut out);
    out
}

/// A connection on a listener, before any request: only its socket is known.
struct OnSocket(SocketAddr);

impl CondInput for OnSocket {
    fn field(&self, _: &CondField) -> Option<&str> {
        None
    }
    fn remote_ip(&self) -> std::net::IpAddr {
        std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED)
    }
    fn server_socket(&self) -> SocketAddr {
        self.0
    }
}

impl Config {
    /// The socket-level ssl settings of listener `i` (an index into `listen`) when it speaks
    /// TLS, else None: the global scope's, then those written directly in the top-level
    /// `$SERVER["socket"]` blocks that match its address (lighttpd builds a listener's TLS
    /// context from exactly these). Call after `resolve_ephemeral_ports` for port-0
    /// listeners. The certificate a handshake uses may still differ by SNI: evaluate the
    /// conditions with the SNI name as the host and use `merged(..).ssl`.
    pub fn listener_ssl(&self, i: usize) -> Option<Rc<SslConf>> {
        let spec = self.listen.get(i)?;
        // A port-0 listener's block was pointed at its real address: find it by location.
        let addr = if spec.addr.port() == 0 {
            self.conds
                .iter()
                .flat_map(|c| &c.branches)
                .filter_map(|b| b.cond.as_ref())
                .find(|c| c.loc == spec.loc && c.field == CondField::ServerSocket)
                .and_then(|c| c.socket)
                .unwrap_or(spec.addr)
        } else {
            spec.addr
        };
        self.socket_ssl(addr)
    }

    /// The socket-level ssl settings for a listener bound to `addr` (see
    /// [`Config::listener_ssl`]), when it speaks TLS.
    pub fn socket_ssl(&self, addr: SocketAddr) -> Option<Rc<SslConf>> {
        let input = OnSocket(addr);
        let mut conf = self.base.clone();
        for chain in &self.conds {
            // Only a chain of socket conditions can decide a socket's scope; a chain that
            // starts with another condition is about requests.
            let hit = chain
                .branches
                .iter()
                .take_while(|b| is_socket_cond(&b.cond))
                .find(|b| {
                    b.cond
                        .as_ref()
                        .is_some_and(|c| super::cond::eval(c, &input))
                });
            if let Some(b) = hit {
                for s in &b.settings {
                    s.apply(&mut conf);
                }
            }
        }
        conf.ssl.engine.then_some(conf.ssl)
    }

    /// Every distinct set of ssl settings a connection can end up with, as far as each block
    /// decides it: the global scope's and, for every conditional block, the global scope
    /// merged with its enclosing blocks and itself. (A connection matching two unrelated
    /// blocks gets a mix, but the files and their checks are all in this list: a file can
    /// only come from a block that names it.) For loading and checking every certificate at
    /// start.
    pub fn ssl_confs(&self) -> Vec<Rc<SslConf>> {
        confs_with_locs(self).into_iter().map(|(c, _)| c).collect()
    }

    /// Every file an ssl key names anywhere in the config, with the key and where it was
    /// set: (key, file), without repeats of the same key, path and location.
    pub fn ssl_files(&self) -> Vec<(&'static str, PathAt)> {
        let mut out: Vec<(&'static str, PathAt)> = Vec::new();
        for c in self.ssl_confs() {
            let files = [
                ("ssl.pemfile", &c.pemfile),
                ("ssl.privkey", &c.privkey),
                ("ssl.ca-file", &c.ca_file),
                ("ssl.ca-crl-file", &c.ca_crl_file),
                ("ssl.stapling-file", &c.stapling_file),
                ("ssl.stek-file", &c.stek_file),
                ("ssl.acme-tls-1", &c.acme_tls_1),
            ];
            for (key, f) in files {
                if let Some(f) = f {
                    if !out.iter().any(|(k, p)| *k == key && p == f) {
                        out.push((key, f.clone()));
                    }
                }
            }
        }
        out
    }
}
