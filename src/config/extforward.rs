//! `extforward.*` checked at load time (lighttpd's mod_extforward): which peers are trusted
//! proxies, which headers are read and which Forwarded parameters are taken. Reading the
//! headers of a request is in `modules/extforward.rs`.

use std::net::IpAddr;

/// lighttpd's list when `extforward.headers` is unset or empty.
pub const DEFAULT_HEADERS: [&str; 2] = ["X-Forwarded-For", "Forwarded-For"];

/// An `extforward.forwarder` key that is not an address or network.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Name {
    /// An RFC 7239 obfuscated identifier ("_proxy1"), or a unix socket path ("/run/x.sock"),
    /// compared as text with the `for=` of a Forwarded element.
    Text(String),
    Addr(IpAddr),
}

/// An address with a prefix length, e.g. 10.0.0.0/8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Cidr {
    net: IpAddr,
    bits: u8,
}

impl Cidr {
    fn contains(&self, a: IpAddr) -> bool {
        match (self.net, a) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.bits)).unwrap_or(0);
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.bits))
                    .unwrap_or(0);
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// IPv4-mapped IPv6 addresses (a dual-stack socket's view of an IPv4 peer) as plain IPv4, so
/// one config entry covers both spellings, as lighttpd's address comparisons do.
pub(crate) fn canonical(a: IpAddr) -> IpAddr {
    match a {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(a, IpAddr::V4),
        v4 => v4,
    }
}

/// Parse an address, accepting IPv6 in brackets too.
pub(crate) fn parse_addr(s: &str) -> Option<IpAddr> {
    let s = s
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(s);
    s.parse().ok()
}

/// `extforward.forwarder`: which peers and hops are trusted proxies.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forwarders {
    /// The "all" entry: Some(true) trusts every peer, Some(false) none (lighttpd: "all" takes
    /// precedence over the other entries for the connecting peer, either way).
    all: Option<bool>,
    /// Single addresses and names, each trusted or explicitly untrusted.
    exact: Vec<(Name, bool)>,
    /// Trusted networks.
    nets: Vec<Cidr>,
}

impl Forwarders {
    /// From the config's `key => value` pairs. Keys: an IP address, a network ("10.0.0.0/8",
    /// "[2001:db8::]/32"), "all", an obfuscated identifier ("_name") or a socket path.
    /// Values: "trust" or "untrusted", any case.
    ///
    /// Stricter than lighttpd, which starts anyway: another value (lighttpd logs an error
    /// and treats it as untrusted), an "untrusted" network (lighttpd ignores it, so an
    /// exception carved out of a trusted network would silently not apply), a prefix longer
    /// than the address (lighttpd clamps it) and a key that can never match anything are
    /// all refused here.
    pub fn parse(entries: &[(String, String)]) -> Result<Forwarders, String> {
        let mut f = Forwarders::default();
        for (key, value) in entries {
            let what = || format!("extforward.forwarder \"{}\" => \"{}\"", key, value);
            let trusted = if value.eq_ignore_ascii_case("trust") {
                true
            } else if value.eq_ignore_ascii_case("untrusted") {
                false
            } else {
                return Err(format!(
                    "{}: the value must be \"trust\" or \"untrusted\"",
                    what()
                ));
            };
            if key == "all" {
                f.all = Some(trusted);
            } else if key.starts_with('/') {
                f.exact.push((Name::Text(key.clone()), trusted));
            } else if let Some((addr, bits)) = key.split_once('/') {
                let raw = parse_addr(addr)
                    .ok_or_else(|| format!("{}: \"{}\" is not an IP address", what(), addr))?;
                let max = if raw.is_ipv4() { 32 } else { 128 };
                let bits = match bits.parse::<u8>() {
                    Ok(b) if (1..=max).contains(&b) && bits.bytes().all(|c| c.is_ascii_digit()) => {
                        b
                    }
                    _ => {
                        return Err(format!(
                            "{}: invalid prefix length \"{}\" (1 to {})",
                            what(),
                            bits,
                            max
                        ))
                    }
                };
                let net = canonical(raw);
                // "::ffff:10.0.0.0/104" is 10.0.0.0/8 (addresses are compared canonically).
                let bits = if raw.is_ipv6() && net.is_ipv4() {
                    match bits.checked_sub(96) {
                        Some(b) if b > 0 => b,
                        _ => {
                            return Err(format!(
                                "{}: an IPv4-mapped network needs a prefix over 96",
                                what()
                            ))
                        }
                    }
                } else {
                    bits
                };
                if !trusted {
                    return Err(format!(
                        "{}: only single addresses can be \"untrusted\"; \
                         lighttpd would ignore this network",
                        what()
                    ));
                }
                f.nets.push(Cidr { net, bits });
            } else if let Some(a) = parse_addr(key) {
                f.exact.push((Name::Addr(canonical(a)), trusted));
            } else if is_obfuscated_id(key) {
                f.exact.push((Name::Text(key.clone()), trusted));
            } else {
                return Err(format!(
                    "{}: the key must be an IP address, a network (addr/bits), \"all\", \
                     an obfuscated identifier (_name) or a socket path",
                    what()
                ));
            }
        }
        Ok(f)
    }

    /// Whether anything is configured (lighttpd runs the module only then).
    pub fn is_set(&self) -> bool {
        self.all.is_some() || !self.exact.is_empty() || !self.nets.is_empty()
    }

    /// Whether the connecting peer is a trusted proxy.
    pub fn trusts_peer(&self, peer: IpAddr) -> bool {
        match self.all {
            Some(all) => all,
            None => self.trusts_addr(canonical(peer)),
        }
    }

    /// An explicit entry decides; otherwise membership of a trusted network. ("all" does not
    /// extend to hops in a header, as in lighttpd.)
    pub(crate) fn trusts_addr(&self, a: IpAddr) -> bool {
        let exact = self.exact.iter().find_map(|(n, t)| match n {
            Name::Addr(x) if *x == a => Some(*t),
            _ => None,
        });
        exact.unwrap_or_else(|| self.nets.iter().any(|c| c.contains(a)))
    }

    /// Whether a hop as written in a header is a trusted proxy.
    pub(crate) fn trusts_hop(&self, hop: &[u8]) -> bool {
        let s = match std::str::from_utf8(hop) {
            Ok(s) => s,
            Err(_) => return false,
        };
        if let Ok(a) = s.parse::<IpAddr>() {
            return self.trusts_addr(canonical(a));
        }
        self.exact
            .iter()
            .any(|(n, t)| *t && matches!(n, Name::Text(x) if x == s))
    }
}

/// RFC 7239 §6.3 obfnode: "_" followed by letters, digits, '.', '_' or '-'.
pub(crate) fn is_obfuscated_id(s: &str) -> bool {
    s.len() > 1
        && s.starts_with('_')
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'.' || c == b'_' || c == b'-')
}

/// `extforward.headers`: the headers looked for, in order; the first one present is used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Headers(Vec<String>);

impl Default for Headers {
    fn default() -> Self {
        Headers(DEFAULT_HEADERS.iter().map(|h| h.to_string()).collect())
    }
}

impl Headers {
    /// From the configured list; an empty list means lighttpd's default (X-Forwarded-For,
    /// Forwarded-For). "Forwarded" (any case) is parsed as RFC 7239, any other name as a
    /// list of addresses.
    pub fn parse(names: &[String]) -> Result<Headers, String> {
        if names.is_empty() {
            return Ok(Headers::default());
        }
        for n in names {
            let tchar = |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c);
            if n.is_empty() || !n.bytes().all(tchar) {
                return Err(format!(
                    "extforward.headers: \"{}\" is not a header field name",
                    n
                ));
            }
        }
        Ok(Headers(names.to_vec()))
    }

    pub fn names(&self) -> &[String] {
        &self.0
    }
}

/// `extforward.params`: which Forwarded parameters besides `for` and `proto` (always used)
/// are taken.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Params {
    /// `host=`: replaces the request's Host.
    pub host: bool,
    /// `remote_user=`: sets REMOTE_USER.
    pub remote_user: bool,
}

impl Params {
    /// From `key => value` pairs, values as the config wrote them: "enable"/"disable",
    /// "true"/"false", or an integer (as its decimal text; non-zero is true).
    pub fn parse(entries: &[(String, String)]) -> Result<Params, String> {
        let mut p = Params::default();
        for (key, value) in entries {
            let on = match value.to_ascii_lowercase().as_str() {
                "enable" | "enabled" | "true" => true,
                "disable" | "disabled" | "false" => false,
                v => match v.parse::<i64>() {
                    Ok(i) => i != 0,
                    Err(_) => {
                        return Err(format!(
                            "extforward.params \"{}\" => \"{}\": the value must be \
                             enable, disable, 1 or 0",
                            key, value
                        ))
                    }
                },
            };
            match key.as_str() {
                "host" => p.host = on,
                "remote_user" => p.remote_user = on,
                _ => {
                    return Err(format!(
                        "extforward.params: the keys are host and remote_user, not \"{}\"",
                        key
                    ))
                }
            }
        }
        Ok(p)
    }
}

/// The module's settings for one condition block. lighttpd runs the module only where
/// `extforward.forwarder` is set.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExtForward {
    pub forwarders: Forwarders,
    pub headers: Headers,
    pub params: Params,
}
