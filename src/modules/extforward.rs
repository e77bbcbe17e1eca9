//! The client's address behind trusted proxies: lighttpd's mod_extforward, as a pure function
//! from the peer address and the request's forwarding headers to the address (and, where
//! lighttpd takes them, scheme, host and remote user) the request should be treated as from.
//!
//! Only a peer listed as trusted in `extforward.forwarder` is believed. From its header the
//! client is the rightmost hop that is not itself a trusted proxy: anything to the left of
//! that was written by a party nobody vouches for. A client connecting directly can send
//! whatever X-Forwarded-For it likes; it is never read.
//!
//! Not supported: `extforward.hap-PROXY` and `extforward.hap-PROXY-ssl-client-verify` (the
//! HAProxy PROXY protocol), and unix-socket peers (a forwarder key starting with '/' is only
//! ever matched against a Forwarded `for="/path"`).

use std::borrow::Cow;
use std::net::IpAddr;

pub use crate::config::extforward::{ExtForward, Forwarders, Headers, Params, DEFAULT_HEADERS};
use crate::http::host::Host;

/// X-Forwarded-For hops examined from the right. A chain of more trusted proxies than this
/// is not believed at all (the peer's address stays), rather than walked without end.
pub const MAX_HOPS: usize = 64;

/// Budget for a Forwarded header, counted as lighttpd's fixed table counts it: four per
/// `key=value` pair, one per ','. More is refused with 400 ("too many params"), as there.
const FORWARDED_BUDGET: usize = 252;

/// Access to the request's header fields.
pub trait RequestHeaders {
    /// The value of the field `name` (matched without regard to case), its repeated
    /// occurrences joined with ", " in order (lighttpd merges them so), without the
    /// surrounding whitespace; None if absent.
    fn header(&self, name: &str) -> Option<Cow<'_, [u8]>>;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    /// "http" or "https", case-insensitively; nothing else is taken from a header.
    fn from_header(v: &[u8]) -> Option<Scheme> {
        if v.eq_ignore_ascii_case(b"https") {
            Some(Scheme::Https)
        } else if v.eq_ignore_ascii_case(b"http") {
            Some(Scheme::Http)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// lighttpd also switches the connection's default port with the scheme (used when
    /// normalising the Host and building redirects).
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }
}

/// What the request is to be treated as, when a trusted proxy said so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Forwarded {
    /// The client address (for REMOTE_ADDR, `$HTTP["remoteip"]`, the access log, ...).
    pub addr: IpAddr,
    /// From X-Forwarded-Proto (with an address header other than Forwarded) or the chosen
    /// Forwarded element's `proto=`; only "http" and "https" are taken.
    pub scheme: Option<Scheme>,
    /// Forwarded `host=` (with `extforward.params` host): the new Host, checked as a Host
    /// header is and lower-cased.
    pub host: Option<String>,
    /// Forwarded `remote_user=` (with `extforward.params` remote_user), unescaped.
    pub remote_user: Option<String>,
}

/// A Forwarded header lighttpd answers with 400; the reason is for the error log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadForwarded(pub &'static str);

impl std::fmt::Display for BadForwarded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// Decide the request's client address from the peer address and its headers.
///
/// Ok(None): nothing changes (no header present, the peer is not trusted, every hop is
/// trusted, or the chosen hop is not a valid address; lighttpd then keeps the peer's
/// address, and ignores X-Forwarded-Proto too). Err: the request is answered 400
/// (a malformed or oversized Forwarded header from a trusted peer, which lighttpd refuses
/// rather than guess, since guessing could let a client spoof its address).
///
/// lighttpd does this once per request, at uri_raw, and not again when the request restarts
/// (a rewrite, a CGI local redirect); the changed address lasts for that request only.
pub fn resolve(
    cfg: &ExtForward,
    peer: IpAddr,
    req: &dyn RequestHeaders,
) -> Result<Option<Forwarded>, BadForwarded> {
    let found = cfg
        .headers
        .names()
        .iter()
        .find_map(|name| req.header(name).map(|v| (name, v)));
    let (name, value) = match found {
        Some(f) => f,
        None => return Ok(None),
    };
    if !cfg.forwarders.trusts_peer(peer) {
        return Ok(None);
    }
    // Everything after a NUL is invisible to lighttpd's string handling.
    let value = match value.iter().position(|&c| c == 0) {
        Some(n) => value.get(..n).unwrap_or_default(),
        None => &value[..],
    };
    if name.eq_ignore_ascii_case("forwarded") {
        forwarded(cfg, value)
    } else {
        Ok(
            x_forwarded_for(&cfg.forwarders, value).map(|addr| Forwarded {
                addr,
                scheme: req
                    .header("X-Forwarded-Proto")
                    .and_then(|p| Scheme::from_header(trim(&p))),
                host: None,
                remote_user: None,
            }),
        )
    }
}

fn trim(v: &[u8]) -> &[u8] {
    trim_end(trim_start(v))
}

fn trim_start(mut v: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = v {
        v = rest;
    }
    v
}

fn trim_end(mut v: &[u8]) -> &[u8] {
    while let [rest @ .., b' ' | b'\t'] = v {
        v = rest;
    }
    v
}

/// Bytes that can be part of an address in an X-Forwarded-For list; everything else
/// separates (lighttpd's tokenisation, so "unknown" yields nothing and "1.2.3.4:80" is one
/// invalid hop).
fn is_addr_byte(c: u8) -> bool {
    c.is_ascii_hexdigit() || c == b':' || c == b'.'
}

/// The hops of an X-Forwarded-For list, from the right: maximal runs of address bytes,
/// without leading dots.
struct HopsFromRight<'a> {
    v: &'a [u8],
    end: usize,
}

impl<'a> Iterator for HopsFromRight<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        // Each turn moves `end` left by at least one byte, so this ends.
        loop {
            let head = self.v.get(..self.end)?;
            let stop = head.iter().rposition(|&c| is_addr_byte(c))? + 1;
            let start = head
                .get(..stop)?
                .iter()
                .rposition(|&c| !is_addr_byte(c))
                .map_or(0, |i| i + 1);
            self.end = start;
            let hop = head.get(start..stop)?;
            let first = hop.iter().position(|&c| c != b'.').unwrap_or(hop.len());
            match hop.get(first..) {
                Some(h) if !h.is_empty() => return Some(h),
                _ => continue,
            }
        }
    }
}

/// The rightmost untrusted hop, if it is a valid address. A garbage hop there means the
/// header is ignored, not that the walk goes on past it (lighttpd's behaviour, and the
/// safe one: what is left of an unreadable hop is even less trustworthy).
fn x_forwarded_for(f: &Forwarders, value: &[u8]) -> Option<IpAddr> {
    let hops = HopsFromRight {
        v: value,
        end: value.len(),
    };
    for hop in hops.take(MAX_HOPS) {
        if !f.trusts_hop(hop) {
            return std::str::from_utf8(hop).ok()?.parse().ok();
        }
    }
    None
}

/// One `key=value` of a Forwarded element, as written (quotes and escapes still in).
#[derive(Debug, Clone, Copy)]
struct Param<'a> {
    key: &'a [u8],
    value: &'a [u8],
}

const BAD_QUOTE: BadForwarded = BadForwarded("invalid quoted-string in Forwarded header");
const TOO_MANY: BadForwarded = BadForwarded("too many params in Forwarded header");
const BAD_IPV6: BadForwarded = BadForwarded("invalid IPv6 address in Forwarded header");
const BAD_HOST: BadForwarded = BadForwarded("invalid host= value in Forwarded header");
const BAD_USER: BadForwarded = BadForwarded("invalid remote_user= value in Forwarded header");

/// Index of the '"' closing the quoted-string that opens at `open`.
fn closing_quote(s: &[u8], open: usize) -> Result<usize, BadForwarded> {
    let mut i = open + 1;
    // Bounded by s.len(): i grows every turn.
    loop {
        match s.get(i) {
            None => return Err(BAD_QUOTE),
            Some(b'"') => return Ok(i),
            Some(b'\\') => {
                if s.get(i + 1).is_none() {
                    return Err(BAD_QUOTE);
                }
                i += 2;
            }
            Some(_) => i += 1,
        }
    }
}

/// Index of the first byte of `stops` outside a quoted-string, or s.len().
fn scan_to(s: &[u8], mut i: usize, stops: &[u8]) -> Result<usize, BadForwarded> {
    while let Some(&c) = s.get(i) {
        if stops.contains(&c) {
            return Ok(i);
        }
        if c == b'"' {
            i = closing_quote(s, i)?;
        }
        i += 1;
    }
    Ok(s.len())
}

/// Split a Forwarded value into elements (between commas) of parameters, skipping what is
/// not `key=value` as lighttpd does. Errors on an unterminated quoted-string anywhere (an
/// attacker's improper quoting must not shift what a trusted proxy appended) and on a
/// header over the budget.
fn split_forwarded(s: &[u8]) -> Result<Vec<Vec<Param<'_>>>, BadForwarded> {
    let mut elements = vec![Vec::new()];
    let mut spent = 0usize;
    let mut i = 0;
    while i < s.len() {
        while matches!(s.get(i), Some(b' ' | b'\t')) {
            i += 1;
        }
        match s.get(i) {
            None => break,
            Some(b';') => {
                i += 1;
                continue;
            }
            Some(b',') => {
                spent += 1;
                if spent > FORWARDED_BUDGET {
                    return Err(TOO_MANY);
                }
                elements.push(Vec::new());
                i += 1;
                continue;
            }
            Some(_) => {}
        }
        let k = i;
        i = scan_to(s, i, b"=;,")?;
        if s.get(i) != Some(&b'=') {
            continue;
        }
        let key = s.get(k..i).unwrap_or_default();
        i += 1;
        let v = i;
        i = scan_to(s, i, b";,")?;
        let value = s.get(v..i).unwrap_or_default();
        if key.is_empty() {
            continue;
        }
        spent += 4;
        if spent > FORWARDED_BUDGET {
            return Err(TOO_MANY);
        }
        if let Some(e) = elements.last_mut() {
            e.push(Param { key, value });
        }
    }
    Ok(elements)
}

/// Without trailing blanks and, if quoted, without the quotes (escapes left as they are).
fn unquote_raw(v: &[u8]) -> (&[u8], bool) {
    let v = trim_end(v);
    match v {
        [b'"', inner @ .., b'"'] => (inner, true),
        _ => (v, false),
    }
}

/// The address part of a `for=` value: unquoted; from a quoted one the IPv6 brackets and
/// any port are removed ("[2001:db8::1]:4711" -> "2001:db8::1", "192.0.2.1:80" ->
/// "192.0.2.1"); obfuscated names, paths and "unknown" are left whole.
fn for_node(v: &[u8]) -> Result<&[u8], BadForwarded> {
    let (v, quoted) = unquote_raw(v);
    if !quoted {
        return Ok(v);
    }
    match v {
        [b'[', rest @ ..] => match rest.iter().rposition(|&c| c == b']') {
            Some(close) if close > 0 => Ok(rest.get(..close).unwrap_or_default()),
            _ => Err(BAD_IPV6),
        },
        [b'_' | b'/' | b'u', ..] => Ok(v),
        _ => Ok(v.split(|&c| c == b':').next().unwrap_or_default()),
    }
}

/// A quoted-string's content with its backslash escapes undone; None if one is cut off.
fn unescape(v: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(v.len());
    let mut it = v.iter();
    while let Some(&c) = it.next() {
        if c == b'\\' {
            out.push(*it.next()?);
        } else {
            out.push(c);
        }
    }
    Some(out)
}

/// A host= or remote_user= value: trailing blanks dropped, quoted-strings unescaped.
fn param_text(v: &[u8]) -> Option<Vec<u8>> {
    match unquote_raw(v) {
        (inner, true) => unescape(inner),
        (raw, false) => Some(raw.to_vec()),
    }
}

fn last_param<'a>(element: &[Param<'a>], key: &[u8]) -> Option<&'a [u8]> {
    element
        .iter()
        .rev()
        .find(|p| p.key.eq_ignore_ascii_case(key))
        .map(|p| p.value)
}

/// RFC 7239 Forwarded, walked from the last element (the one our peer added) towards the
/// first, for as long as each element's `for=` is a trusted proxy.
///
/// lighttpd 1.4.85 never examines the first element when it holds a single parameter (its
/// walk stops one slot early), so a one-element "Forwarded: for=192.0.2.1" from a trusted
/// proxy changes nothing there; this walk examines every element.
fn forwarded(cfg: &ExtForward, value: &[u8]) -> Result<Option<Forwarded>, BadForwarded> {
    let elements = split_forwarded(value)?;
    // The element whose for= is taken, and that for=.
    let mut chosen: Option<(usize, &[u8])> = None;
    for (e, element) in elements.iter().enumerate().rev() {
        // An element without for= (say, only proto=) does not end the walk.
        let node = match last_param(element, b"for") {
            Some(v) => for_node(v)?,
            None => continue,
        };
        if node.is_empty() {
            continue;
        }
        let trusted = cfg.forwarders.trusts_hop(node);
        // An obfuscated or unknown node can be walked through (if trusted by name) but is
        // never the answer: the last real address seen is.
        if !matches!(node.first(), Some(b'_' | b'/')) && node != b"unknown" {
            chosen = Some((e, node));
        }
        if !trusted {
            break;
        }
    }
    let (e, node) = match chosen {
        Some(c) => c,
        None => return Ok(None),
    };
    let addr = match std::str::from_utf8(node).ok().and_then(|s| s.parse().ok()) {
        Some(a) => a,
        None => return Ok(None),
    };
    let element = elements.get(e).map(Vec::as_slice).unwrap_or_default();
    let later = elements.get(e + 1..).unwrap_or_default();
    let scheme = last_param(element, b"proto").and_then(|p| Scheme::from_header(unquote_raw(p).0));

    let mut host = None;
    if cfg.params.host {
        // The element's own host=, else the earliest one a later (trusted) proxy set.
        let raw = last_param(element, b"host").or_else(|| {
            later
                .iter()
                .find_map(|el| el.iter().find(|p| p.key.eq_ignore_ascii_case(b"host")))
                .map(|p| p.value)
        });
        if let Some(raw) = raw {
            let text = param_text(raw).ok_or(BAD_HOST)?;
            let parsed = std::str::from_utf8(&text).ok().and_then(Host::parse);
            host = Some(parsed.ok_or(BAD_HOST)?.authority().to_string());
        }
    }

    let mut remote_user = None;
    if cfg.params.remote_user {
        // The closest proxy's: authentication may have happened at any trusted hop.
        let raw = later
            .iter()
            .rev()
            .find_map(|el| last_param(el, b"remote_user"))
            .or_else(|| last_param(element, b"remote_user"));
        if let Some(raw) = raw {
            let text = param_text(raw).ok_or(BAD_USER)?;
            // Bytes that are not text, or control characters, are not passed on into the
            // environment and logs; the name is dropped.
            remote_user = String::from_utf8(text)
                .ok()
                .filter(|u| !u.chars().any(char::is_control));
        }
    }

    Ok(Some(Forwarded {
        addr,
        scheme,
        host,
        remote_user,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    struct Req<'a>(Vec<(&'a str, &'a str)>);

    impl RequestHeaders for Req<'_> {
        fn header(&self, name: &str) -> Option<Cow<'_, [u8]>> {
            let vals: Vec<&str> = self
                .0
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| *v)
                .collect();
            (!vals.is_empty()).then(|| Cow::Owned(vals.join(", ").into_bytes()))
        }
    }

    fn pairs(kv: &[(&str, &str)]) -> Vec<(String, String)> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// lighttpd's own test setup (tests/lighttpd.conf) plus a network, a name and an
    /// explicit exception.
    fn cfg(headers: &[&str], params: &[(&str, &str)]) -> ExtForward {
        ExtForward {
            forwarders: Forwarders::parse(&pairs(&[
                ("127.0.0.1", "trust"),
                ("127.0.30.1", "trust"),
                ("10.0.0.0/8", "Trust"),
                ("10.9.9.9", "untrusted"),
                ("_hidden", "trust"),
                ("2001:db8::/32", "trust"),
            ]))
            .expect("valid"),
            headers: Headers::parse(&headers.iter().map(|h| h.to_string()).collect::<Vec<_>>())
                .expect("valid"),
            params: Params::parse(&pairs(params)).expect("valid"),
        }
    }

    const PROXY: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
    const STRANGER: IpAddr = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 99));

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("test address")
    }

    /// The address chosen, or "-" for no change, or "400".
    fn addr_of(c: &ExtForward, peer: IpAddr, h: &[(&str, &str)]) -> String {
        match resolve(c, peer, &Req(h.to_vec())) {
            Ok(Some(f)) => f.addr.to_string(),
            Ok(None) => "-".to_string(),
            Err(_) => "400".to_string(),
        }
    }

    #[test]
    fn x_forwarded_for_table() {
        let c = cfg(&[], &[]);
        let cases: &[(&str, &str)] = &[
            // lighttpd's tests/request.t cases
            ("127.0.10.1", "127.0.10.1"),
            ("127.0.10.1, 127.0.20.1", "127.0.20.1"),
            ("127.0.10.1, 127.0.20.1, 127.0.30.1", "127.0.20.1"),
            // trusted hops are skipped, the first untrusted from the right wins
            ("1.2.3.4, 10.1.1.1", "1.2.3.4"),
            ("5.5.5.5,1.2.3.4 ,10.1.1.1,10.2.2.2", "1.2.3.4"),
            // an explicit "untrusted" beats the trusted network around it
            ("1.2.3.4, 10.9.9.9, 10.1.1.1", "10.9.9.9"),
            // every hop trusted: no change
            ("10.2.2.2, 10.1.1.1", "-"),
            // garbage where the client should be: the header is ignored, not walked past
            ("1.2.3.4, garbage, 10.1.1.1", "-"),
            ("1.2.3.4:80", "-"),
            ("[2001:db8::1]:80", "-"),
            ("127.1", "-"),
            ("999.1.1.1", "-"),
            // "unknown" has no address bytes and vanishes, as in lighttpd
            ("1.2.3.4, unknown, 10.1.1.1", "1.2.3.4"),
            ("2001:DB8:1::7, 2001:db8::2", "-"),
            ("2001:DB9::7, 2001:db8::2", "2001:db9::7"),
            ("::ffff:10.1.1.1, 1.2.3.4", "1.2.3.4"),
            ("1.2.3.4, ::ffff:10.1.1.1", "1.2.3.4"),
            ("..1.2.3.4", "1.2.3.4"),
            ("", "-"),
            ("  , ,", "-"),
        ];
        for (xff, want) in cases {
            assert_eq!(
                addr_of(&c, PROXY, &[("X-Forwarded-For", xff)]),
                *want,
                "{:?}",
                xff
            );
        }
        // Repeated fields are one list.
        let h = [
            ("X-Forwarded-For", "1.2.3.4"),
            ("x-forwarded-for", "5.6.7.8"),
        ];
        assert_eq!(addr_of(&c, PROXY, &h), "5.6.7.8");
        // The second default header.
        assert_eq!(
            addr_of(&c, PROXY, &[("Forwarded-For", "1.2.3.4")]),
            "1.2.3.4"
        );
    }

    #[test]
    fn spoofing_from_an_untrusted_peer_is_ignored() {
        let c = cfg(
            &["Forwarded", "X-Forwarded-For"],
            &[("host", "1"), ("remote_user", "1")],
        );
        let spoof: &[(&str, &str)] = &[
            ("X-Forwarded-For", "10.1.1.1"),
            ("X-Forwarded-Proto", "https"),
            (
                "Forwarded",
                "for=10.1.1.1;proto=https;host=admin.example;remote_user=root",
            ),
        ];
        for peer in [STRANGER, ip("10.9.9.9"), ip("::1"), ip("127.0.0.2")] {
            for h in spoof {
                assert_eq!(
                    resolve(&c, peer, &Req(vec![*h])),
                    Ok(None),
                    "{} {:?}",
                    peer,
                    h
                );
            }
            assert_eq!(resolve(&c, peer, &Req(spoof.to_vec())), Ok(None));
        }
        // A client behind a trusted proxy prepending hops gains nothing: the proxy's own
        // append is what is read.
        let h = [("X-Forwarded-For", "10.1.1.1, 127.0.0.1, 203.0.113.5")];
        assert_eq!(addr_of(&c, PROXY, &h), "203.0.113.5");
        let h = [("Forwarded", "for=10.1.1.1, for=203.0.113.5")];
        assert_eq!(addr_of(&c, PROXY, &h), "203.0.113.5");
        // An IPv4 peer seen through a dual-stack socket is the same peer.
        let mapped = IpAddr::V6(Ipv4Addr::new(127, 0, 0, 1).to_ipv6_mapped());
        assert_eq!(
            addr_of(&c, mapped, &[("X-Forwarded-For", "1.2.3.4")]),
            "1.2.3.4"
        );
    }

    #[test]
    fn more_trusted_hops_than_the_bound_are_not_believed() {
        let c = cfg(&[], &[]);
        let mut hops: Vec<String> = vec!["1.2.3.4".into()];
        hops.extend((0..MAX_HOPS - 1).map(|i| format!("10.0.{}.{}", i / 250, i % 250 + 1)));
        let within = hops.join(", ");
        assert_eq!(
            addr_of(&c, PROXY, &[("X-Forwarded-For", &within)]),
            "1.2.3.4"
        );
        hops.push("10.1.1.1".into());
        let beyond = hops.join(", ");
        assert_eq!(addr_of(&c, PROXY, &[("X-Forwarded-For", &beyond)]), "-");
    }

    #[test]
    fn x_forwarded_proto() {
        let c = cfg(&[], &[]);
        let scheme = |h: &[(&str, &str)]| {
            resolve(&c, PROXY, &Req(h.to_vec())).map(|f| f.and_then(|f| f.scheme))
        };
        let xff = ("X-Forwarded-For", "1.2.3.4");
        assert_eq!(
            scheme(&[xff, ("X-Forwarded-Proto", "HTTPS")]),
            Ok(Some(Scheme::Https))
        );
        assert_eq!(
            scheme(&[xff, ("X-Forwarded-Proto", "http")]),
            Ok(Some(Scheme::Http))
        );
        // Only a single value is honoured, as in lighttpd.
        assert_eq!(
            scheme(&[xff, ("X-Forwarded-Proto", "https, http")]),
            Ok(None)
        );
        assert_eq!(scheme(&[xff, ("X-Forwarded-Proto", "ftp")]), Ok(None));
        // No address taken, no scheme either.
        let bad = ("X-Forwarded-For", "nonsense");
        assert_eq!(
            resolve(&c, PROXY, &Req(vec![bad, ("X-Forwarded-Proto", "https")])),
            Ok(None)
        );
    }

    #[test]
    fn first_configured_header_present_wins() {
        let c = cfg(&["Forwarded", "X-Forwarded-For"], &[]);
        let both = [
            ("X-Forwarded-For", "1.2.3.4"),
            ("Forwarded", "for=5.6.7.8;proto=https, for=10.0.0.1"),
        ];
        let f = resolve(&c, PROXY, &Req(both.to_vec()))
            .expect("ok")
            .expect("some");
        assert_eq!((f.addr, f.scheme), (ip("5.6.7.8"), Some(Scheme::Https)));
        let c = cfg(&["X-Forwarded-For", "Forwarded"], &[]);
        assert_eq!(addr_of(&c, PROXY, &both), "1.2.3.4");
        // A header that is not configured is never read.
        let c = cfg(&["X-Real-IP"], &[]);
        assert_eq!(addr_of(&c, PROXY, &both), "-");
        assert_eq!(addr_of(&c, PROXY, &[("X-Real-IP", "9.9.9.9")]), "9.9.9.9");
    }

    fn fwd(value: &str) -> Result<Option<Forwarded>, BadForwarded> {
        let c = cfg(&["Forwarded"], &[("host", "enable"), ("remote_user", "1")]);
        resolve(&c, PROXY, &Req(vec![("Forwarded", value)]))
    }

    fn fwd_addr(value: &str) -> String {
        match fwd(value) {
            Ok(Some(f)) => f.addr.to_string(),
            Ok(None) => "-".to_string(),
            Err(_) => "400".to_string(),
        }
    }

    #[test]
    fn forwarded_for_table() {
        let cases: &[(&str, &str)] = &[
            // lighttpd's tests/request.t case
            (
                "for=127.0.10.1, for=127.0.20.1;proto=https, for=127.0.30.1;proto=http",
                "127.0.20.1",
            ),
            // (lighttpd 1.4.85 skips a one-parameter first element; see `forwarded`)
            ("for=1.2.3.4", "1.2.3.4"),
            ("for=1.2.3.4, for=10.0.0.1", "1.2.3.4"),
            ("For=1.2.3.4;proto=https, for=10.0.0.1", "1.2.3.4"),
            // the last for= of an element counts
            (
                "for=5.6.7.8;for=6.6.6.6;proto=https, for=10.0.0.1",
                "6.6.6.6",
            ),
            // an element without for= is passed over
            ("by=x;for=5.6.7.8;proto=https, proto=http", "5.6.7.8"),
            // trusted obfuscated name walked through; untrusted one stops the walk and the
            // last real address seen is the answer
            ("for=5.6.7.8, for=\"_hidden\", for=10.0.0.1", "5.6.7.8"),
            ("for=5.6.7.8, for=_other, for=10.0.0.1", "10.0.0.1"),
            ("for=5.6.7.8, for=unknown", "-"),
            // every element trusted: the earliest address
            ("for=10.0.0.2, for=10.0.0.1", "10.0.0.2"),
            // quoted addresses lose brackets and port; unquoted ones keep them
            ("for=5.6.7.8, for=\"[2001:db8::2]:443\"", "5.6.7.8"),
            ("for=\"[2001:db9::2]:443\"", "2001:db9::2"),
            ("for=\"10.1.1.1:443\";proto=https, for=9.9.9.9", "9.9.9.9"),
            ("for=\"1.2.3.4:80\"", "1.2.3.4"),
            ("for=1.2.3.4:80", "-"),
            ("for=[2001:db9::2]", "-"),
            // empty for= is passed over, as in lighttpd
            ("for=5.6.7.8, for=\"\"", "5.6.7.8"),
            ("for=5.6.7.8, for=", "5.6.7.8"),
            // blanks after the value are dropped, before it they are not
            ("for=1.2.3.4  ", "1.2.3.4"),
            ("for= 1.2.3.4", "-"),
            ("for =1.2.3.4", "-"),
            ("garbage, ;;, for=1.2.3.4", "1.2.3.4"),
            ("", "-"),
            ("proto=https", "-"),
            // malformed: 400
            ("for=\"unterminated", "400"),
            ("for=5.6.7.8, for=\"[]\"", "400"),
            ("for=5.6.7.8, for=\"[::1\"", "400"),
            ("for=1.2.3.4;x=\"a\\", "400"),
            ("a\"=b, for=1.2.3.4", "400"),
        ];
        for (value, want) in cases {
            assert_eq!(fwd_addr(value), *want, "{:?}", value);
        }
    }

    #[test]
    fn forwarded_quoting_cannot_hide_a_hop() {
        // A client's quoted-string swallowing the comma and the proxy's element would be
        // read as one element by a naive split; unterminated, it is refused instead.
        assert_eq!(fwd_addr("for=\"1.1.1.1, for=10.0.0.1"), "400");
        // Terminated, the comma inside quotes is data: one element, whose for= is garbage.
        assert_eq!(fwd_addr("for=\"1.1.1.1, for=10.0.0.5\""), "-");
        // Escaped quotes do not end the string.
        assert_eq!(fwd_addr("x=\"a\\\",b\", for=1.2.3.4"), "1.2.3.4");
    }

    #[test]
    fn forwarded_budget() {
        // 63 parameters fit lighttpd's table; 63 and a comma do not.
        let fits = format!("{};for=1.2.3.4", vec!["x=1"; 62].join(";"));
        assert_eq!(fwd_addr(&fits), "1.2.3.4");
        assert_eq!(fwd_addr(&format!("{},", fits)), "400");
        assert_eq!(fwd_addr(&",".repeat(300)), "400");
        // Not key=value: costs nothing.
        let junk = format!("{};for=1.2.3.4", "x;".repeat(500));
        assert_eq!(fwd_addr(&junk), "1.2.3.4");
    }

    #[test]
    fn forwarded_proto_host_remote_user() {
        let f = fwd("for=1.2.3.4;proto=\"HTTPS\";host=\"Ex\\ample.ORG:8443\";remote_user=\"j\\\"an\", for=10.0.0.1")
            .expect("ok")
            .expect("some");
        assert_eq!(f.addr, ip("1.2.3.4"));
        assert_eq!(f.scheme, Some(Scheme::Https));
        assert_eq!(f.host.as_deref(), Some("example.org:8443"));
        assert_eq!(f.remote_user.as_deref(), Some("j\"an"));

        // host= from the earliest later element; remote_user= from the closest proxy.
        let f = fwd("for=1.2.3.4, for=10.0.0.1;host=a.example;remote_user=u1, for=10.0.0.2;host=b.example;remote_user=u2")
            .expect("ok")
            .expect("some");
        assert_eq!(f.host.as_deref(), Some("a.example"));
        assert_eq!(f.remote_user.as_deref(), Some("u2"));
        assert_eq!(f.scheme, None);

        // proto is only http or https; host must be a valid host.
        let f = fwd("for=1.2.3.4;proto=ftp").expect("ok").expect("some");
        assert_eq!(f.scheme, None);
        assert_eq!(
            fwd("for=1.2.3.4;host=\"../etc\"").map(|_| ()),
            Err(BAD_HOST)
        );
        assert_eq!(fwd("for=1.2.3.4;host=a/b").map(|_| ()), Err(BAD_HOST));
        assert_eq!(fwd("for=1.2.3.4;host=").map(|_| ()), Err(BAD_HOST));
        assert_eq!(
            fwd("for=1.2.3.4;remote_user=\"a\\\\\"").map(|f| f.and_then(|f| f.remote_user)),
            Ok(Some("a\\".into()))
        );

        // Without extforward.params they are not taken.
        let c = cfg(&["Forwarded"], &[]);
        let h = Req(vec![(
            "Forwarded",
            "for=1.2.3.4;host=x.example;remote_user=root",
        )]);
        let f = resolve(&c, PROXY, &h).expect("ok").expect("some");
        assert_eq!((f.host, f.remote_user), (None, None));
        // Nor when no address was taken.
        assert_eq!(fwd("for=unknown;host=x.example"), Ok(None));
    }

    #[test]
    fn forwarder_config() {
        let ok = |kv: &[(&str, &str)]| Forwarders::parse(&pairs(kv));
        let f = ok(&[("all", "trust")]).expect("valid");
        assert!(f.trusts_peer(STRANGER));
        // "all" only speaks for the peer; hops still need their own entry.
        assert!(!f.trusts_hop(b"192.0.2.99"));
        let f = ok(&[("all", "untrusted"), ("127.0.0.1", "trust")]).expect("valid");
        assert!(!f.trusts_peer(PROXY));
        let f = ok(&[
            ("[2001:db8::1]", "trust"),
            ("192.0.2.0/24", "trust"),
            ("::ffff:10.0.0.0/104", "trust"),
        ])
        .expect("valid");
        assert!(f.trusts_peer(ip("2001:db8::1")));
        assert!(!f.trusts_peer(ip("2001:db8::2")));
        assert!(f.trusts_peer(ip("192.0.2.200")));
        assert!(!f.trusts_peer(ip("192.0.3.1")));
        assert!(f.trusts_peer(ip("10.200.0.1")));
        assert!(f.trusts_peer(IpAddr::V6(Ipv6Addr::new(
            0, 0, 0, 0, 0, 0xffff, 0xc000, 0x0201
        ))));
        let f = ok(&[("0.0.0.0/1", "trust"), ("::/1", "trust")]).expect("valid");
        assert!(f.trusts_peer(ip("127.0.0.1")) && !f.trusts_peer(ip("128.0.0.1")));
        assert!(f.trusts_peer(ip("::1")) && !f.trusts_peer(ip("8000::1")));
        let f = ok(&[("1.2.3.4/32", "trust"), ("::1/128", "trust")]).expect("valid");
        assert!(f.trusts_peer(ip("1.2.3.4")) && !f.trusts_peer(ip("1.2.3.5")));
        assert!(f.trusts_peer(ip("::1")));
        assert!(ok(&[("/run/proxy.sock", "trust"), ("_gw-1", "trust")]).is_ok());

        for (kv, needle) in [
            (("127.0.0.1", "yes"), "\"trust\" or \"untrusted\""),
            (("127.0.0.1", ""), "\"trust\" or \"untrusted\""),
            (("10.0.0.0/0", "trust"), "prefix length"),
            (("10.0.0.0/33", "trust"), "prefix length"),
            (("10.0.0.0/+8", "trust"), "prefix length"),
            (("10.0.0.0/8x", "trust"), "prefix length"),
            (("10.0.0.0/", "trust"), "prefix length"),
            (("::/129", "trust"), "prefix length"),
            (("::ffff:10.0.0.0/90", "trust"), "over 96"),
            (("10.0.0/8", "trust"), "not an IP address"),
            (("10.0.0.0/8", "untrusted"), "only single addresses"),
            (("proxy.example", "trust"), "the key must be"),
            (("_", "trust"), "the key must be"),
            (("10.0.0.1 ", "trust"), "the key must be"),
        ] {
            let e = ok(&[kv]).expect_err(kv.0);
            assert!(e.contains(needle), "{:?}: {}", kv, e);
            assert!(e.contains(kv.0), "{}", e);
        }
    }

    #[test]
    fn headers_and_params_config() {
        assert_eq!(Headers::parse(&[]).expect("ok").names(), DEFAULT_HEADERS);
        let h = Headers::parse(&["X-Real-IP".to_string()]).expect("ok");
        assert_eq!(h.names(), ["X-Real-IP"]);
        assert!(Headers::parse(&["X Real".to_string()]).is_err());
        assert!(Headers::parse(&[String::new()]).is_err());

        let p = |kv: &[(&str, &str)]| Params::parse(&pairs(kv));
        assert_eq!(p(&[]), Ok(Params::default()));
        assert_eq!(
            p(&[("host", "Enable"), ("remote_user", "0")]),
            Ok(Params {
                host: true,
                remote_user: false
            })
        );
        assert_eq!(
            p(&[("host", "2")]),
            Ok(Params {
                host: true,
                remote_user: false
            })
        );
        assert!(p(&[("for", "1")])
            .expect_err("for")
            .contains("host and remote_user"));
        assert!(p(&[("Host", "1")]).is_err());
        assert!(p(&[("host", "maybe")])
            .expect_err("value")
            .contains("enable, disable"));
    }
}
