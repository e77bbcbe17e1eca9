//! HTTP Digest authentication (RFC 7616, with RFC 2069's qop-less form as lighttpd accepts):
//! algorithms, the Authorization header parser, stateless nonces, and the check itself.
//!
//! Nonces carry their own proof: `hex(time):hex(random):hex(H(time, random, secret))`, the
//! layout lighttpd uses with `nonce-secret`, so the server keeps no per-client state, and a
//! lighttpd sharing the same `nonce-secret` accepts our nonces and we accept its. A nonce is
//! good for 10 minutes; in its last minute a successful response offers the next one in
//! `Authentication-Info`, and after it the client is told `stale=true` to retry without
//! asking the user again.

use std::sync::atomic::{AtomicU32, Ordering};

use md5::{Digest, Md5};
use sha2::{Sha256, Sha512_256};

use super::password::ct_eq;
use super::userfile::{self, HtdigestKey};
use super::{log_bad, BackendKind, Outcome, Request, Require, Settings};
pub use super::{Algo, Algorithms};

/// How long a nonce is accepted, in seconds (lighttpd: 10 minutes).
pub const NONCE_LIFETIME: u64 = 600;
/// A nonce older than this gets a `nextnonce` offered with the response (lighttpd: 9 minutes).
pub const NONCE_RENEW: u64 = 540;
/// The longest Digest Authorization value parsed; a longer one is answered 400.
pub const MAX_HEADER: usize = 16 * 1024;
/// The most parameters one Digest header may carry.
const MAX_PARAMS: usize = 32;
/// The longest user name accepted through `username*` (lighttpd's buffer size).
const MAX_USER: usize = 256;

/// Digests are request-time work; the algorithm names are parsed with the config.
impl Algo {
    /// The hash of the concatenation of `parts`.
    pub fn hash(self, parts: &[&[u8]]) -> Vec<u8> {
        fn run<D: Digest>(parts: &[&[u8]]) -> Vec<u8> {
            let mut d = D::new();
            for p in parts {
                d.update(p);
            }
            d.finalize().to_vec()
        }
        match self {
            Algo::Md5 => run::<Md5>(parts),
            Algo::Sha256 => run::<Sha256>(parts),
            Algo::Sha512_256 => run::<Sha512_256>(parts),
        }
    }
}

/// Lowercase hex.
pub fn to_hex(b: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(char::from(D[usize::from(x >> 4)]));
        s.push(char::from(D[usize::from(x & 15)]));
    }
    s
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Binary from hex (either case), or None if the length is odd or a digit is not hex.
pub fn from_hex(s: &[u8]) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    s.chunks(2)
        .map(|p| match p {
            [h, l] => Some((hex_digit(*h)? << 4) | hex_digit(*l)?),
            _ => None,
        })
        .collect()
}

/// `v` in lowercase hex with whole bytes and no leading zero bytes, as lighttpd's
/// buffer_append_uint_hex writes the numbers in a nonce (0x5 is "05").
fn hex_uint(v: u64) -> String {
    let bytes = v.to_be_bytes();
    let skip = bytes.iter().take(7).take_while(|&&b| b == 0).count();
    to_hex(bytes.get(skip..).unwrap_or_default())
}

/// Up to `max` hex digits from the start of `s` as a number, and how many digits were used.
fn parse_hex_prefix(s: &[u8], max: usize) -> (u64, usize) {
    let mut v = 0u64;
    let mut n = 0;
    for &c in s.iter().take(max) {
        match hex_digit(c) {
            Some(d) => v = (v << 4) | u64::from(d),
            None => break,
        }
        n += 1;
    }
    (v, n)
}

/// The nonce for time `ts` and random value `rnd`. The MAC hashes the numbers in native byte
/// order, as lighttpd does, so that nonces interoperate with a lighttpd on the same kind of
/// machine that shares the secret.
pub fn make_nonce(ts: u64, rnd: u32, secret: &[u8], algo: Algo) -> String {
    let mac = algo.hash(&[&(ts as i64).to_ne_bytes(), &rnd.to_ne_bytes(), secret]);
    format!(
        "{}:{}:{}",
        hex_uint(ts),
        hex_uint(u64::from(rnd)),
        to_hex(&mac)
    )
}

/// A fresh unpredictable value for the next nonce: a counter hashed with the secret and the
/// time, so that no random number source is needed and no two nonces of a process repeat.
fn next_rnd(secret: &[u8], now: u64) -> u32 {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let h = Algo::Sha256.hash(&[
        b"lightd nonce",
        secret,
        &now.to_ne_bytes(),
        &n.to_ne_bytes(),
    ]);
    let mut b = [0u8; 4];
    for (d, s) in b.iter_mut().zip(&h) {
        *d = *s;
    }
    u32::from_ne_bytes(b)
}

/// What a nonce from a client turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub enum NonceCheck {
    /// Ours and in date; `renew` when it expires within the minute.
    Fresh { renew: bool },
    /// Expired, from the future, or without a readable time: ask again with stale=true.
    Stale,
    /// A time, but not the `time:random:` layout.
    Malformed,
    /// The right layout, but not made with this secret.
    Forged,
}

/// Check a nonce at time `now` (unix seconds), in lighttpd's order: the time first, then
/// the layout, then the MAC.
pub fn check_nonce(nonce: &[u8], now: u64, secret: &[u8], algo: Algo) -> NonceCheck {
    let (ts, n) = parse_hex_prefix(nonce, 16);
    let rest = match nonce.get(n..) {
        Some([b':', rest @ ..]) if n > 0 => rest,
        _ => return NonceCheck::Stale,
    };
    if ts > now || now - ts > NONCE_LIFETIME {
        return NonceCheck::Stale;
    }
    let (rnd, m) = parse_hex_prefix(rest, 8);
    if m == 0 || rest.get(m) != Some(&b':') {
        return NonceCheck::Malformed;
    }
    let want = make_nonce(ts, rnd as u32, secret, algo);
    if !ct_eq(want.as_bytes(), nonce) {
        return NonceCheck::Forged;
    }
    NonceCheck::Fresh {
        renew: now - ts > NONCE_RENEW,
    }
}

/// `s` as the inside of a quoted-string (the realm is configured, so it may hold anything).
fn quote(s: &str) -> String {
    let mut q = String::with_capacity(s.len() + 2);
    q.push('"');
    for c in s.chars() {
        if c == '"' || c == '\\' {
            q.push('\\');
        }
        q.push(c);
    }
    q.push('"');
    q
}

/// The WWW-Authenticate values for a Digest challenge: one per algorithm in `algos`,
/// strongest first, each with a new nonce. `stale` marks a retry after an expired nonce.
pub fn challenge(
    require: &Require,
    algos: Algorithms,
    now: u64,
    secret: &[u8],
    stale: bool,
) -> Vec<String> {
    let secret = require.nonce_secret.as_deref().unwrap_or(secret);
    algos
        .list()
        .map(|a| {
            let nonce = make_nonce(now, next_rnd(secret, now), secret, a);
            format!(
                "Digest realm={}, charset=\"UTF-8\", algorithm={}, nonce=\"{}\", qop=\"auth\"{}{}",
                quote(&require.realm),
                a.name(),
                nonce,
                if require.userhash {
                    ", userhash=true"
                } else {
                    ""
                },
                if stale { ", stale=true" } else { "" },
            )
        })
        .collect()
}

/// The parameters of a Digest Authorization header that matter, after unquoting.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Params {
    pub username: Option<Vec<u8>>,
    pub username_star: Option<Vec<u8>>,
    pub realm: Option<Vec<u8>>,
    pub nonce: Option<Vec<u8>>,
    pub uri: Option<Vec<u8>>,
    pub algorithm: Option<Vec<u8>>,
    pub qop: Option<Vec<u8>>,
    pub cnonce: Option<Vec<u8>>,
    pub nc: Option<Vec<u8>>,
    pub response: Option<Vec<u8>>,
    pub userhash: Option<Vec<u8>>,
}

impl Params {
    fn slot(&mut self, name: &[u8]) -> Option<&mut Option<Vec<u8>>> {
        let names: [(&[u8], &mut Option<Vec<u8>>); 11] = [
            (b"username", &mut self.username),
            (b"username*", &mut self.username_star),
            (b"realm", &mut self.realm),
            (b"nonce", &mut self.nonce),
            (b"uri", &mut self.uri),
            (b"algorithm", &mut self.algorithm),
            (b"qop", &mut self.qop),
            (b"cnonce", &mut self.cnonce),
            (b"nc", &mut self.nc),
            (b"response", &mut self.response),
            (b"userhash", &mut self.userhash),
        ];
        names
            .into_iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, slot)| slot)
    }
}

fn is_ws(b: u8) -> bool {
    // CR and LF too, in case a folded header line reaches us unfolded.
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Parse the part of a Digest Authorization header after "Digest ": a comma-separated list
/// of `name=token` or `name="quoted string"` (backslash escapes undone), with optional
/// whitespace around `=` and commas, as RFC 7235 and lighttpd allow. Unknown parameters are
/// skipped; a known one given twice, an unterminated quote, or anything that is not a
/// parameter is an error (a 400).
pub fn parse_params(s: &[u8]) -> Result<Params, &'static str> {
    if s.len() > MAX_HEADER {
        return Err("header too long");
    }
    let mut p = Params::default();
    let mut i = 0;
    let mut count = 0;
    let at = |i: usize| s.get(i).copied();
    loop {
        while at(i).is_some_and(|b| is_ws(b) || b == b',') {
            i += 1;
        }
        if i >= s.len() {
            break;
        }
        count += 1;
        if count > MAX_PARAMS {
            return Err("too many parameters");
        }
        let start = i;
        while at(i).is_some_and(is_tchar) {
            i += 1;
        }
        let name = s.get(start..i).unwrap_or_default();
        if name.is_empty() {
            return Err("expected a parameter name");
        }
        while at(i).is_some_and(is_ws) {
            i += 1;
        }
        if at(i) != Some(b'=') {
            return Err("expected '=' after a parameter name");
        }
        i += 1;
        while at(i).is_some_and(is_ws) {
            i += 1;
        }
        let value = if at(i) == Some(b'"') {
            i += 1;
            let mut v = Vec::new();
            loop {
                match at(i) {
                    None => return Err("unterminated quoted string"),
                    Some(b'"') => break,
                    Some(b'\\') => {
                        v.push(at(i + 1).ok_or("unterminated quoted string")?);
                        i += 2;
                    }
                    Some(c) => {
                        v.push(c);
                        i += 1;
                    }
                }
            }
            i += 1;
            v
        } else {
            let vstart = i;
            while at(i).is_some_and(is_tchar) {
                i += 1;
            }
            s.get(vstart..i).unwrap_or_default().to_vec()
        };
        while at(i).is_some_and(is_ws) {
            i += 1;
        }
        match at(i) {
            None | Some(b',') => {}
            Some(_) => return Err("junk after a parameter value"),
        }
        if let Some(slot) = p.slot(name) {
            if slot.is_some() {
                return Err("parameter given twice");
            }
            *slot = Some(value);
        }
    }
    Ok(p)
}

/// Decode an RFC 5987 ext-value (`UTF-8'lang'percent%20encoded`) from `username*`.
fn decode_ext_value(v: &[u8]) -> Result<Vec<u8>, &'static str> {
    let mut parts = v.splitn(3, |&b| b == b'\'');
    let (Some(charset), Some(_lang), Some(enc)) = (parts.next(), parts.next(), parts.next()) else {
        return Err("invalid \"username*\" ext-value");
    };
    let utf8 = charset.eq_ignore_ascii_case(b"utf-8");
    if !utf8 && !charset.eq_ignore_ascii_case(b"iso-8859-1") {
        return Err("invalid \"username*\" charset");
    }
    let mut out = Vec::with_capacity(enc.len());
    let mut i = 0;
    while let Some(&c) = enc.get(i) {
        if c == b'%' {
            let h = enc.get(i + 1).copied().and_then(hex_digit);
            let l = enc.get(i + 2).copied().and_then(hex_digit);
            match (h, l) {
                (Some(h), Some(l)) => out.push((h << 4) | l),
                _ => return Err("invalid \"username*\" percent-encoding"),
            }
            i += 3;
        } else {
            out.push(c);
            i += 1;
        }
    }
    if out.len() > MAX_USER {
        return Err("\"username*\" too long");
    }
    if utf8 && std::str::from_utf8(&out).is_err() {
        return Err("\"username*\" is not UTF-8");
    }
    if out.iter().any(|&b| b < 0x20 || b == 0x7f) {
        return Err("\"username*\" contains control characters");
    }
    Ok(out)
}

/// Compute the expected `response` (RFC 7616 section 3.4.1) from the binary HA1.
#[allow(clippy::too_many_arguments)]
pub fn response(
    algo: Algo,
    sess: bool,
    ha1: &[u8],
    nonce: &[u8],
    cnonce: &[u8],
    nc: &[u8],
    qop: Option<&[u8]>,
    method: &[u8],
    uri: &[u8],
) -> Vec<u8> {
    let mut a1 = to_hex(ha1);
    if sess {
        a1 = to_hex(&algo.hash(&[a1.as_bytes(), b":", nonce, b":", cnonce]));
    }
    let a2 = to_hex(&algo.hash(&[method, b":", uri]));
    match qop {
        Some(qop) => algo.hash(&[
            a1.as_bytes(),
            b":",
            nonce,
            b":",
            nc,
            b":",
            cnonce,
            b":",
            qop,
            b":",
            a2.as_bytes(),
        ]),
        None => algo.hash(&[a1.as_bytes(), b":", nonce, b":", a2.as_bytes()]),
    }
}

/// HA1 = H(user ":" realm ":" password), what an htdigest file stores.
pub fn ha1(algo: Algo, user: &[u8], realm: &[u8], pw: &[u8]) -> Vec<u8> {
    algo.hash(&[user, b":", realm, b":", pw])
}

/// Check a request against a `"method" => "digest"` entry.
pub(super) fn check(
    require: &Require,
    settings: &Settings,
    req: &Request<'_>,
    secret: &[u8],
) -> Outcome {
    let challenge_all = |stale_algo: Option<Algo>| {
        let algos = match stale_algo {
            // A stale nonce is answered for the client's algorithm only, as lighttpd does.
            Some(a) => {
                let mut only = Algorithms {
                    md5: false,
                    sha256: false,
                    sha512_256: false,
                };
                *only.flag(a) = true;
                only
            }
            None => require.algorithms,
        };
        challenge(require, algos, req.now, secret, stale_algo.is_some())
    };
    let unauthorized = |bad_creds: bool| Outcome::Challenge {
        www_authenticate: challenge_all(None),
        bad_creds,
    };

    let kind = match settings.backend {
        Some(k @ (BackendKind::Plain | BackendKind::Htdigest)) => k,
        Some(BackendKind::Htpasswd) => {
            log::error!(
                "auth.require \"method\" => \"digest\" cannot work with auth.backend \
                 \"htpasswd\" (try \"basic\"?) for {}",
                req.path.escape_debug()
            );
            return Outcome::ServerError;
        }
        None => {
            log::error!(
                "auth.backend not configured for {}",
                req.path.escape_debug()
            );
            return Outcome::ServerError;
        }
    };

    let value = match req
        .authorization
        .and_then(|h| super::strip_scheme(h, b"digest"))
    {
        Some(v) => v,
        None => return unauthorized(false),
    };
    let p = match parse_params(value) {
        Ok(p) => p,
        Err(why) => return bad_request(req, why),
    };

    // The fields RFC 7616 requires; nc and cnonce only come with qop.
    let qop_ok = p.qop.is_none() || (p.nc.is_some() && p.cnonce.is_some());
    let (Some(realm), Some(nonce), Some(uri), Some(resp), true, true) = (
        p.realm.as_deref(),
        p.nonce.as_deref(),
        p.uri.as_deref(),
        p.response.as_deref(),
        qop_ok,
        p.username.is_some() != p.username_star.is_some(),
    ) else {
        return bad_request(req, "missing field");
    };
    let userhash = p.userhash.as_deref() == Some(b"true");
    let username: Vec<u8> = match (&p.username, &p.username_star) {
        (Some(u), _) if userhash => u.to_ascii_lowercase(),
        (Some(u), _) => u.clone(),
        (None, Some(_)) if userhash => return bad_request(req, "\"username*\" with userhash=true"),
        (None, Some(star)) => match decode_ext_value(star) {
            Ok(u) => u,
            Err(why) => return bad_request(req, why),
        },
        (None, None) => return bad_request(req, "missing field"),
    };

    if realm != require.realm.as_bytes() {
        log::debug!("digest: realm mismatch for {}", req.path.escape_debug());
        return unauthorized(false);
    }
    let (algo, sess) = match Algo::parse(p.algorithm.as_deref().unwrap_or_default()) {
        Some((a, s)) if require.algorithms.has(a) => (a, s),
        _ => {
            log::debug!(
                "digest: algorithm not offered for {}",
                req.path.escape_debug()
            );
            return unauthorized(false);
        }
    };
    let cnonce = p.cnonce.as_deref().unwrap_or_default();
    if sess && p.cnonce.is_none() {
        return bad_request(req, "-sess algorithm without cnonce");
    }
    let want = match from_hex(resp) {
        Some(r) if r.len() == algo.output_len() => r,
        _ => return bad_request(req, "response is not a digest of the right length"),
    };
    match p.qop.as_deref() {
        None => {}
        Some(q) if q.eq_ignore_ascii_case(b"auth") => {}
        Some(q) if q.eq_ignore_ascii_case(b"auth-int") => {
            return bad_request(req, "qop=auth-int not supported")
        }
        Some(_) => return bad_request(req, "unknown qop"),
    }
    // A response computed for one request-target must not be replayed for another.
    if uri != req.target {
        log::warn!(
            "digest: auth failed: uri mismatch ({} != {}), IP: {}",
            String::from_utf8_lossy(req.target).escape_debug(),
            String::from_utf8_lossy(uri).escape_debug(),
            req.client
        );
        return bad_request(req, "uri mismatch");
    }

    let configured = require.nonce_secret.as_deref();
    let renew = match check_nonce(nonce, req.now, configured.unwrap_or(secret), algo) {
        NonceCheck::Fresh { renew } => renew,
        NonceCheck::Stale => {
            return Outcome::Challenge {
                www_authenticate: challenge_all(Some(algo)),
                bad_creds: false,
            }
        }
        NonceCheck::Malformed => return bad_request(req, "nonce invalid"),
        // Without a configured nonce-secret the secret is this process's, so a nonce from
        // before a restart or from another worker lands here: let the client retry with a
        // new nonce rather than asking the user again. With a configured secret it is a
        // nonce nobody here made (lighttpd's answer: a plain 401).
        NonceCheck::Forged if configured.is_none() => {
            return Outcome::Challenge {
                www_authenticate: challenge_all(Some(algo)),
                bad_creds: false,
            }
        }
        NonceCheck::Forged => {
            log::debug!("digest: nonce mismatch for {}", req.path.escape_debug());
            return unauthorized(false);
        }
    };

    // The stored HA1, and the user's real name (different from `username` with userhash).
    let found = match lookup_ha1(kind, settings, req, algo, &username, realm, userhash) {
        Some(f) => f,
        None => {
            log_bad(req, &username, "Digest");
            return unauthorized(true);
        }
    };
    let (user, ha1_stored) = found;
    let got = response(
        algo,
        sess,
        ha1_stored.bytes(),
        nonce,
        cnonce,
        p.nc.as_deref().unwrap_or_default(),
        p.qop.as_deref(),
        req.method.as_bytes(),
        uri,
    );
    if !ct_eq(&got, &want) {
        log_bad(req, &user, "Digest");
        return unauthorized(true);
    }
    if !require.rule.allows(&user) {
        log::debug!(
            "digest: user {} not allowed for {}",
            String::from_utf8_lossy(&user).escape_debug(),
            req.path.escape_debug()
        );
        return unauthorized(false);
    }
    let authentication_info = renew.then(|| {
        let s = configured.unwrap_or(secret);
        format!(
            "nextnonce=\"{}\"",
            make_nonce(req.now, next_rnd(s, req.now), s, algo)
        )
    });
    Outcome::Allow {
        user: String::from_utf8_lossy(&user).into_owned(),
        auth_type: Some("Digest"),
        authentication_info,
    }
}

/// Find the stored HA1 for a digest check: computed from the cleartext with the plain
/// backend, read from the file with htdigest (by name, or by userhash).
fn lookup_ha1(
    kind: BackendKind,
    settings: &Settings,
    req: &Request<'_>,
    algo: Algo,
    username: &[u8],
    realm: &[u8],
    userhash: bool,
) -> Option<(Vec<u8>, userfile::Secret)> {
    let data = super::load_userfile(kind, settings, req)?;
    let path = settings.files.path(kind)?;
    let mut bad = Vec::new();
    let found = match kind {
        BackendKind::Plain => userfile::find_password(data.bytes(), username, &mut bad).map(|pw| {
            (
                username.to_vec(),
                userfile::Secret::new(ha1(algo, username, realm, pw)),
            )
        }),
        _ => {
            let key = if userhash {
                HtdigestKey::Userhash(username)
            } else {
                HtdigestKey::User(username)
            };
            userfile::find_htdigest(data.bytes(), key, realm, algo.output_len() * 2, &mut bad)
                .map(|e| (e.user, userfile::Secret::new(e.digest)))
        }
    };
    super::log_bad_lines(path, &bad);
    found
}

fn bad_request(req: &Request<'_>, why: &str) -> Outcome {
    log::debug!(
        "digest: 400 for {} from {}: {}",
        req.path.escape_debug(),
        req.client,
        why
    );
    Outcome::BadRequest
}
