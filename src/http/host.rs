//! The Host a request names, checked the way lighttpd's default "host-strict" policy checks
//! it before a module splices it into a filesystem path (virtual hosts) or takes it from a
//! proxy (extforward): DNS labels, a dotted quad or a bracketed IPv6 literal, then a port.

/// The longest Host value looked at. lighttpd refuses absolute-URI authorities of 1024 bytes
/// or more; a longer name could not be a directory name anyway.
pub const MAX_HOST_LEN: usize = 1023;

/// A Host header value (or absolute-URI authority) that passed lighttpd's strict host check,
/// lower-cased, with one trailing dot of the name and an empty trailing ":" removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    authority: String,
    /// Bytes of `authority` that are the name (the rest is ":port", if any).
    name_len: usize,
}

impl Host {
    /// Check and normalise a Host value. None if it is empty, too long, or not a valid host.
    pub fn parse(raw: &str) -> Option<Host> {
        if raw.is_empty() || raw.len() > MAX_HOST_LEN {
            return None;
        }
        let lower = raw.to_ascii_lowercase();
        let (name, port) = if lower.starts_with('[') {
            let close = lower.find(']')?;
            let (name, rest) = lower.split_at(close + 1);
            if !valid_ipv6_literal(name) {
                return None;
            }
            (name, rest)
        } else {
            let (name, rest) = lower.split_at(lower.find(':').unwrap_or(lower.len()));
            // "example.org." is the same host as "example.org" (one dot only: ".." is not).
            let name = name.strip_suffix('.').unwrap_or(name);
            if !valid_hostname(name) {
                return None;
            }
            (name, rest)
        };
        let port = match port.strip_prefix(':') {
            None if port.is_empty() => "",
            Some(p) if p.bytes().all(|b| b.is_ascii_digit()) => p,
            _ => return None,
        };
        let mut authority = String::with_capacity(name.len() + port.len() + 1);
        authority.push_str(name);
        if !port.is_empty() {
            authority.push(':');
            authority.push_str(port);
        }
        Some(Host {
            authority,
            name_len: name.len(),
        })
    }

    /// The host name without the port: "example.org", "192.0.2.1" or "[2001:db8::1]".
    pub fn name(&self) -> &str {
        self.authority.get(..self.name_len).unwrap_or_default()
    }

    /// The name with its ":port" as the client sent it (lighttpd keeps a non-default port).
    pub fn authority(&self) -> &str {
        &self.authority
    }

    /// Whether the name is a bracketed IPv6 literal.
    pub fn is_ip_literal(&self) -> bool {
        self.authority.starts_with('[')
    }
}

/// Letters, digits and hyphens in non-empty labels that do not start with a hyphen; if the
/// last label is all digits, the whole name must be four all-digit labels (an IPv4 address).
fn valid_hostname(name: &str) -> bool {
    if name.is_empty() {
        return false;
    }
    let mut labels = 0usize;
    let mut all_numeric = true;
    let mut last_numeric = false;
    // Bounded: `name` is at most MAX_HOST_LEN bytes.
    for label in name.split('.') {
        let ok_chars = label
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !ok_chars || label.is_empty() || label.starts_with('-') {
            return false;
        }
        last_numeric = label.bytes().all(|b| b.is_ascii_digit());
        all_numeric &= last_numeric;
        labels += 1;
    }
    !last_numeric || (labels == 4 && all_numeric)
}

/// "[...]" holding hex digits, '.' and at most seven ':' (lighttpd does not validate further,
/// and refuses scoped literals such as "%eth0").
fn valid_ipv6_literal(lit: &str) -> bool {
    let inner = match lit.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        Some(s) if !s.is_empty() => s,
        _ => return false,
    };
    inner
        .bytes()
        .all(|b| b.is_ascii_hexdigit() || b == b'.' || b == b':')
        && inner.bytes().filter(|&b| b == b':').count() <= 7
}
