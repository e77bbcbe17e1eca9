//! mod_proxy's wire format, pure: the request head sent to an upstream, rebuilt from the
//! client's, and the mapping of URLs and host names between what the client sees and what the
//! upstream sees (`proxy.header`'s map-urlpath, map-host-request, map-host-response,
//! https-remap), in both directions.
//!
//! The head follows lighttpd 1.4.85's mod_proxy.c (`proxy_create_env`, `proxy_set_Forwarded`,
//! `http_header_remap_*`): the request line with the mapped target, `Host` (kept, mapped, or
//! the host's id with `proxy.replace-http-host`), the client's fields without the hop-by-hop
//! ones, `X-Forwarded-For` (the peer appended), `X-Host`, `X-Forwarded-Host`,
//! `X-Forwarded-Proto`, and `Forwarded` when `proxy.forwarded` asks for it. Two deliberate
//! differences:
//! - lighttpd always sends `Connection: close`; lightd keeps the upstream connection for the
//!   next request (HTTP/1.1, no `Connection: close`), except with `force-http10` or without a
//!   Host, where the request is HTTP/1.0 and closes.
//! - Fields the client's `Connection` names are hop-by-hop (RFC 9110 §7.6.1) and are not
//!   forwarded (lighttpd forwards them), except `Content-Length`, which frames the body and
//!   which no client may make us drop.

use std::net::{IpAddr, SocketAddr};

use super::request::trim_ows;
use crate::config::gateway::{Forwarded, ProxyHeader};

/// What a request's mapping remembers for its response: the `map-host-request` entry and the
/// `map-urlpath` entry it used (indexes), which the reverse mapping tries first.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct MapState {
    forwarded_host: Option<usize>,
    forwarded_urlpath: Option<usize>,
}

/// `proxy.header`'s mappings as they apply to one request.
#[derive(Clone, Copy)]
pub struct Mapper<'a> {
    pub opts: &'a ProxyHeader,
    /// The request's Host, which a "-" in a host map stands for.
    pub http_host: Option<&'a [u8]>,
    /// `https-remap` is set and the client came over https (as a trusted proxy says).
    pub https_remap: bool,
}

impl<'a> Mapper<'a> {
    /// Whether request URLs are mapped (lighttpd's `remap_headers`).
    pub fn maps_request(&self) -> bool {
        !self.opts.map_urlpath.is_empty() || !self.opts.map_host_request.is_empty()
    }

    /// Whether response URLs (Location, Content-Location, Set-Cookie) are mapped back.
    pub fn maps_response(&self) -> bool {
        !self.opts.map_urlpath.is_empty() || !self.opts.map_host_response.is_empty()
    }

    /// The replacement for an authority, if a host map names it.
    fn host_match(&self, st: &mut MapState, authority: &[u8], req: bool) -> Option<&'a [u8]> {
        let hosts = if req {
            &self.opts.map_host_request
        } else {
            &self.opts.map_host_response
        };
        for (i, (from, to)) in hosts.iter().enumerate() {
            // "-" is the request's own Host; in a response, the host the upstream was told
            // (the first request mapping that applied), when there was one.
            let key: &[u8] = if from == "-" {
                let told = st
                    .forwarded_host
                    .filter(|_| !req)
                    .and_then(|i| self.opts.map_host_request.get(i));
                match (told, self.http_host) {
                    (Some((_, v)), _) => v.as_bytes(),
                    (None, Some(h)) => h,
                    (None, None) => continue,
                }
            } else {
                from.as_bytes()
            };
            if !authority.eq_ignore_ascii_case(key) {
                continue;
            }
            if to == "-" {
                return self.http_host;
            }
            if to.is_empty() {
                // Matched, and left as it is: no later entry applies.
                return None;
            }
            if req && st.forwarded_host.is_none() {
                st.forwarded_host = Some(i);
            }
            return Some(to.as_bytes());
        }
        None
    }

    /// map-urlpath: the length of the prefix of `path` an entry matches, and its
    /// replacement. Requests map key to value; responses map value back to key, the entry
    /// the request used first.
    fn urlpath_match(&self, st: &mut MapState, path: &[u8], req: bool) -> Option<(usize, &'a str)> {
        let paths = &self.opts.map_urlpath;
        if req {
            let (i, (from, to)) = paths
                .iter()
                .enumerate()
                .find(|(_, (from, _))| path.starts_with(from.as_bytes()))?;
            if st.forwarded_urlpath.is_none() {
                st.forwarded_urlpath = Some(i);
            }
            return Some((from.len(), to.as_str()));
        }
        let used = st.forwarded_urlpath.and_then(|i| paths.get(i));
        used.into_iter()
            .chain(paths.iter())
            .find(|(_, to)| path.starts_with(to.as_bytes()))
            .map(|(from, to)| (to.len(), from.as_str()))
    }

    /// Map a URL (a path, or "scheme://authority/path") in one direction. None when nothing
    /// changes.
    pub fn uri(&self, st: &mut MapState, value: &[u8], req: bool) -> Option<Vec<u8>> {
        let mut out: Vec<u8> = Vec::with_capacity(value.len() + 16);
        let path: &[u8];
        let mut map_path = true;
        if value.first() == Some(&b'/') {
            path = value;
        } else {
            let colon = value.iter().position(|&c| c == b':')?;
            if value.get(colon + 1..colon + 3) != Some(b"//") {
                return None;
            }
            let scheme = &value[..colon];
            let auth_start = colon + 3;
            let rest = &value[auth_start..];
            let (authority, tail) = match rest.iter().position(|&c| c == b'/') {
                Some(i) => (&rest[..i], &rest[i..]),
                // lighttpd gives a bare authority a path ("http://h" -> "http://h/").
                None => (rest, &b"/"[..]),
            };
            if authority.is_empty() {
                return None;
            }
            let m = self.host_match(st, authority, req);
            let mut scheme: &[u8] = scheme;
            if m.is_some() && self.https_remap {
                if req && scheme == b"https" {
                    scheme = b"http";
                } else if !req && scheme == b"http" {
                    scheme = b"https";
                }
            }
            let authority = m.unwrap_or(authority);
            if !req {
                // The reverse path mapping applies only to the hosts the include list names
                // (when it has any), and never to those the exclude list names.
                let listed = |l: &[String]| {
                    l.iter()
                        .any(|h| authority.eq_ignore_ascii_case(h.as_bytes()))
                };
                let include = &self.opts.map_urlpath_resp_host_include;
                let exclude = &self.opts.map_urlpath_resp_host_exclude;
                if (!include.is_empty() && !listed(include)) || listed(exclude) {
                    map_path = false;
                }
            }
            out.extend_from_slice(scheme);
            out.extend_from_slice(b"://");
            out.extend_from_slice(authority);
            path = tail;
        }
        match self.urlpath_match(st, path, req).filter(|_| map_path) {
            Some((n, to)) => {
                out.extend_from_slice(to.as_bytes());
                out.extend_from_slice(&path[n..]);
            }
            None => out.extend_from_slice(path),
        }
        (out != value).then_some(out)
    }

    /// Map a response's Set-Cookie back: its Path (map-urlpath) and Domain
    /// (map-host-response) attributes. None when nothing changes.
    pub fn set_cookie(&self, st: &mut MapState, value: &[u8]) -> Option<Vec<u8>> {
        let mut out = value.to_vec();
        let mut changed = false;
        let mut i = 0;
        // Each turn moves past one attribute, so at most value.len() turns.
        for _ in 0..=value.len() {
            // The next attribute: after a ';' and any blanks. The first piece is the cookie
            // itself, never an attribute.
            while i < out.len() && out[i] != b';' {
                i += 1;
            }
            i += 1;
            while i < out.len() && matches!(out[i], b' ' | b'\t') {
                i += 1;
            }
            if i >= out.len() {
                break;
            }
            let Some(eq) = out[i..].iter().position(|&c| c == b'=') else {
                break;
            };
            let name_is = |n: &[u8]| out[i..i + eq].eq_ignore_ascii_case(n);
            let (path, domain) = (name_is(b"path"), name_is(b"domain"));
            i += eq + 1;
            if out.get(i) == Some(&b'"') {
                i += 1;
            }
            if path && out.get(i) == Some(&b'/') {
                if let Some((n, to)) = self.urlpath_match(st, &out[i..], false) {
                    out.splice(i..i + n, to.bytes());
                    i += to.len();
                    changed = true;
                }
            } else if domain {
                if out.get(i) == Some(&b'.') {
                    i += 1;
                }
                let len = out[i..]
                    .iter()
                    .position(|&c| matches!(c, b';' | b' ' | b'\t' | b'\r'))
                    .unwrap_or(out.len() - i);
                if let Some(to) = self.host_match(st, &out[i..i + len], false) {
                    out.splice(i..i + len, to.iter().copied());
                    i += to.len();
                    changed = true;
                }
            }
        }
        changed.then_some(out)
    }
}

/// Who asked, for `X-Forwarded-For` and `Forwarded`.
#[derive(Clone, Copy, Debug)]
pub struct Client<'a> {
    /// The peer of the client connection (not an address a trusted proxy named: lighttpd
    /// appends the real peer to the chain).
    pub peer: IpAddr,
    /// The listener's address the request came in on (`by=`).
    pub local: SocketAddr,
    /// The scheme the client used on this connection (`proto=`).
    pub proto: &'a str,
    /// The Host the client sent (`host=`).
    pub host: Option<&'a [u8]>,
    /// The authenticated user (`remote_user=`).
    pub remote_user: Option<&'a str>,
}

/// Everything the head is built from.
pub struct Request<'a> {
    pub method: &'a str,
    /// The target, origin-form and normalised as lighttpd normalises it.
    pub target: &'a [u8],
    /// The client spoke HTTP/1.1.
    pub client_http11: bool,
    /// `force-http10`.
    pub force_http10: bool,
    /// The request's Host (after mod_extforward), which `Host` carries (mapped).
    pub host: Option<&'a [u8]>,
    /// `proxy.replace-http-host`: the upstream host's id replaces Host.
    pub replace_host: Option<&'a str>,
    /// The client's fields in order, as mod_setenv left them.
    pub fields: &'a [(&'a [u8], &'a [u8])],
    /// The upgrade policy allowed the client's Upgrade through.
    pub upgrade: bool,
    pub forwarded: Forwarded,
    pub client: Client<'a>,
    /// The request's scheme (after mod_extforward), for `X-Forwarded-Proto`.
    pub scheme: &'a str,
}

/// Whether a client field never goes upstream as it is: hop-by-hop, rebuilt here, or unsafe
/// to pass on. `upgrade`/`te` say whether Upgrade and TE survive the policy.
fn dropped(name: &[u8], value: &[u8], r: &Request, te: bool) -> bool {
    const ALWAYS: &[&str] = &[
        "Host",
        "Connection",
        "Keep-Alive",
        "Proxy-Connection",
        "Transfer-Encoding",
        // httpoxy: a program behind the upstream may take it for its outgoing proxy.
        "Proxy",
        // A response field; passing it on would reflect it.
        "Set-Cookie",
        // The 100-continue exchange is lightd's with the client.
        "Expect",
        "X-Forwarded-For",
        "X-Host",
        "X-Forwarded-Host",
        "X-Forwarded-Proto",
    ];
    if ALWAYS
        .iter()
        .any(|d| name.eq_ignore_ascii_case(d.as_bytes()))
    {
        return true;
    }
    if name.eq_ignore_ascii_case(b"Upgrade") {
        return !r.upgrade;
    }
    if name.eq_ignore_ascii_case(b"TE") {
        return !(te && value.eq_ignore_ascii_case(b"trailers"));
    }
    if name.eq_ignore_ascii_case(b"Forwarded") {
        return r.forwarded != Forwarded::default();
    }
    if name.eq_ignore_ascii_case(b"Content-Length") {
        return false;
    }
    // RFC 9110 §7.6.1: what the client's Connection names is for this hop only.
    r.fields
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(b"Connection"))
        .flat_map(|(_, v)| v.split(|&c| c == b','))
        .any(|t| trim_ows(t).eq_ignore_ascii_case(name))
}

/// The values of every field named `name`, joined with ", " (None if there is none).
fn joined(fields: &[(&[u8], &[u8])], name: &str) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    for (_, v) in fields
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
    {
        if v.is_empty() {
            continue;
        }
        match out.as_mut() {
            Some(o) => {
                o.extend_from_slice(b", ");
                o.extend_from_slice(v);
            }
            None => out = Some(v.to_vec()),
        }
    }
    out
}

/// Write the request head without its final blank line (see [`end_head`]). Returns whether
/// the upstream connection may carry another request after this one: HTTP/1.1 went out and
/// the connection is not being upgraded.
pub fn write_head(out: &mut Vec<u8>, r: &Request, m: &Mapper, st: &mut MapState) -> bool {
    let remap = m.maps_request();
    // Without a Host the request can only be HTTP/1.0 (lighttpd).
    let has_host = r.replace_host.is_some_and(|h| !h.is_empty()) || r.host.is_some();
    let http10 = r.force_http10 || !has_host;
    out.extend_from_slice(r.method.as_bytes());
    out.push(b' ');
    match m.uri(st, r.target, true).filter(|_| remap) {
        Some(t) => out.extend_from_slice(&t),
        None => out.extend_from_slice(r.target),
    }
    out.extend_from_slice(if http10 {
        b" HTTP/1.0\r\n"
    } else {
        b" HTTP/1.1\r\n"
    });
    match (r.replace_host.filter(|h| !h.is_empty()), r.host) {
        (Some(id), _) => field(out, b"Host", id.as_bytes()),
        (None, Some(h)) => {
            let mapped = if remap {
                m.host_match(st, h, true)
            } else {
                None
            };
            field(out, b"Host", mapped.unwrap_or(h));
        }
        (None, None) => {}
    }
    let te_ok = !r.force_http10 && r.client_http11;
    let mut te = false;
    for &(name, value) in r.fields {
        if value.is_empty() || dropped(name, value, r, te_ok) {
            continue;
        }
        te |= name.eq_ignore_ascii_case(b"TE");
        let is_uri = name.eq_ignore_ascii_case(b"Destination")
            || name.eq_ignore_ascii_case(b"Content-Location");
        match m.uri(st, value, true).filter(|_| remap && is_uri) {
            Some(v) => field(out, name, &v),
            None => field(out, name, value),
        }
    }
    if r.forwarded != Forwarded::default() {
        let v = forwarded(r);
        if !v.is_empty() {
            field(out, b"Forwarded", &v);
        }
    }
    let mut xff = joined(r.fields, "X-Forwarded-For").unwrap_or_default();
    if !xff.is_empty() {
        xff.extend_from_slice(b", ");
    }
    xff.extend_from_slice(r.client.peer.to_string().as_bytes());
    field(out, b"X-Forwarded-For", &xff);
    if let Some(h) = r.host.filter(|h| !h.is_empty()) {
        field(out, b"X-Host", h);
        field(out, b"X-Forwarded-Host", h);
    }
    field(out, b"X-Forwarded-Proto", r.scheme.as_bytes());
    let upgrade = r.upgrade && !http10;
    if http10 {
        field(out, b"Connection", b"close");
    } else {
        match (te, upgrade) {
            (true, true) => field(out, b"Connection", b"te, upgrade"),
            (true, false) => field(out, b"Connection", b"te"),
            (false, true) => field(out, b"Connection", b"upgrade"),
            (false, false) => {}
        }
    }
    !http10 && !upgrade
}

/// End the head: a Content-Length the caller adds (a chunked body spooled to learn its length,
/// or 0 for a body-less request whose method expects one), and the blank line.
pub fn end_head(out: &mut Vec<u8>, content_length: Option<u64>) {
    if let Some(n) = content_length {
        field(out, b"Content-Length", n.to_string().as_bytes());
    }
    out.extend_from_slice(b"\r\n");
}

fn field(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.reserve(name.len() + value.len() + 4);
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

/// The `Forwarded` value (RFC 7239): the client's own, or one seeded from its
/// X-Forwarded-For, then an element for this hop with the parameters `proxy.forwarded` asks
/// for, ';'-separated.
fn forwarded(r: &Request) -> Vec<u8> {
    let f = r.forwarded;
    let c = &r.client;
    let mut b = match joined(r.fields, "Forwarded") {
        Some(mut v) => {
            v.extend_from_slice(b", ");
            v
        }
        None => {
            let mut v = Vec::new();
            // Seeded from X-Forwarded-For, each address quoted (they are not validated).
            for a in joined(r.fields, "X-Forwarded-For")
                .unwrap_or_default()
                .split(|&c| matches!(c, b',' | b' ' | b'\t'))
                .filter(|a| !a.is_empty())
            {
                let v6 = a.contains(&b':');
                v.extend_from_slice(if v6 { b"for=\"[" } else { b"for=\"" });
                escaped(&mut v, a);
                v.extend_from_slice(if v6 { b"]\", " } else { b"\", " });
            }
            v
        }
    };
    let start = b.len();
    let sep = |b: &mut Vec<u8>| {
        if b.len() > start {
            b.push(b';');
        }
    };
    if f.for_ {
        sep(&mut b);
        match c.peer {
            IpAddr::V4(a) => b.extend_from_slice(format!("for={a}").as_bytes()),
            IpAddr::V6(a) => b.extend_from_slice(format!("for=\"[{a}]\"").as_bytes()),
        }
    }
    if f.by {
        sep(&mut b);
        b.extend_from_slice(format!("by=\"{}\"", c.local).as_bytes());
    }
    if f.proto {
        sep(&mut b);
        b.extend_from_slice(b"proto=");
        b.extend_from_slice(c.proto.as_bytes());
    }
    if f.host {
        if let Some(h) = c.host.filter(|h| !h.is_empty()) {
            sep(&mut b);
            b.extend_from_slice(b"host=\"");
            escaped(&mut b, h);
            b.push(b'"');
        }
    }
    if f.remote_user {
        if let Some(u) = c.remote_user {
            sep(&mut b);
            b.extend_from_slice(b"remote_user=\"");
            escaped(&mut b, u.as_bytes());
            b.push(b'"');
        }
    }
    if b.len() == start {
        // Nothing for this hop: no dangling separator.
        let keep = b.len().saturating_sub(2);
        if b.ends_with(b", ") {
            b.truncate(keep);
        }
    }
    b
}

/// A quoted-string's content: '"', '\\' and control bytes (but tab) backslash-escaped.
fn escaped(out: &mut Vec<u8>, s: &[u8]) {
    for &c in s {
        if c == b'"' || c == b'\\' || c == 0x7f || (c < 0x20 && c != b'\t') {
            out.push(b'\\');
        }
        out.push(c);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn opts() -> ProxyHeader {
        ProxyHeader::default()
    }

    fn client() -> Client<'static> {
        Client {
            peer: IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)),
            local: "127.0.0.1:8080".parse().unwrap(),
            proto: "http",
            host: Some(b"www.example.org"),
            remote_user: None,
        }
    }

    fn req<'a>(
        fields: &'a [(&'a [u8], &'a [u8])],
        o: &'a ProxyHeader,
    ) -> (Request<'a>, Mapper<'a>) {
        let r = Request {
            method: "GET",
            target: b"/a?b",
            client_http11: true,
            force_http10: o.force_http10,
            host: Some(b"www.example.org"),
            replace_host: None,
            fields,
            upgrade: false,
            forwarded: Forwarded::default(),
            client: client(),
            scheme: "http",
        };
        let m = Mapper {
            opts: o,
            http_host: Some(b"www.example.org"),
            https_remap: false,
        };
        (r, m)
    }

    fn head(r: &Request, m: &Mapper) -> (String, bool, MapState) {
        let mut out = Vec::new();
        let mut st = MapState::default();
        let keep = write_head(&mut out, r, m, &mut st);
        end_head(&mut out, None);
        (String::from_utf8(out).unwrap(), keep, st)
    }

    #[test]
    fn hop_by_hop_fields_go_and_forwarding_fields_come() {
        let o = opts();
        let fields: &[(&[u8], &[u8])] = &[
            (b"Host", b"www.example.org"),
            (b"Connection", b"keep-alive, X-Secret"),
            (b"Keep-Alive", b"timeout=5"),
            (b"X-Secret", b"s"),
            (b"Proxy", b"http://evil/"),
            (b"Proxy-Connection", b"x"),
            (b"TE", b"gzip"),
            (b"Upgrade", b"websocket"),
            (b"Accept", b"*/*"),
            (b"X-Forwarded-For", b"1.2.3.4"),
            (b"X-Host", b"spoofed"),
            (b"Set-Cookie", b"a=b"),
            (b"Expect", b"100-continue"),
            (b"X-Empty", b""),
        ];
        let (r, m) = req(fields, &o);
        let (h, keep, _) = head(&r, &m);
        assert_eq!(
            h,
            "GET /a?b HTTP/1.1\r\nHost: www.example.org\r\nAccept: */*\r\n\
             X-Forwarded-For: 1.2.3.4, 10.0.0.7\r\nX-Host: www.example.org\r\n\
             X-Forwarded-Host: www.example.org\r\nX-Forwarded-Proto: http\r\n\r\n"
        );
        assert!(keep);
    }

    #[test]
    fn connection_cannot_remove_the_body_length() {
        let o = opts();
        let fields: &[(&[u8], &[u8])] = &[
            (b"Connection", b"Content-Length"),
            (b"Content-Length", b"5"),
        ];
        let (mut r, m) = req(fields, &o);
        r.method = "POST";
        let (h, _, _) = head(&r, &m);
        assert!(h.contains("\r\nContent-Length: 5\r\n"), "{h}");
    }

    #[test]
    fn force_http10_and_no_host_close() {
        let mut o = opts();
        o.force_http10 = true;
        let fields: &[(&[u8], &[u8])] = &[(b"TE", b"trailers"), (b"Upgrade", b"x")];
        let (mut r, m) = req(fields, &o);
        r.upgrade = true;
        let (h, keep, _) = head(&r, &m);
        assert!(
            h.starts_with("GET /a?b HTTP/1.0\r\nHost: www.example.org\r\n"),
            "{h}"
        );
        assert!(h.ends_with("Connection: close\r\n\r\n"), "{h}");
        assert!(!h.contains("TE:"), "{h}");
        assert!(!keep);
        let o = opts();
        let (mut r, m) = req(&[], &o);
        r.host = None;
        let (h, keep, _) = head(&r, &m);
        assert!(h.starts_with("GET /a?b HTTP/1.0\r\nX-Forwarded-For"), "{h}");
        assert!(!h.contains("X-Host"), "{h}");
        assert!(!keep);
    }

    #[test]
    fn upgrade_and_te_trailers_are_announced() {
        let o = opts();
        let fields: &[(&[u8], &[u8])] = &[
            (b"Upgrade", b"websocket"),
            (b"Connection", b"Upgrade"),
            (b"TE", b"trailers"),
        ];
        let (mut r, m) = req(fields, &o);
        r.upgrade = true;
        let (h, keep, _) = head(&r, &m);
        assert!(h.contains("\r\nUpgrade: websocket\r\n"), "{h}");
        assert!(h.contains("\r\nTE: trailers\r\n"), "{h}");
        assert!(h.ends_with("Connection: te, upgrade\r\n\r\n"), "{h}");
        assert!(!keep, "an upgraded connection is not reused");
    }

    #[test]
    fn replace_host_and_map_host_request() {
        let mut o = opts();
        o.map_host_request = vec![("-".into(), "backend.local".into())];
        let (mut r, m) = req(&[], &o);
        let (h, _, st) = head(&r, &m);
        assert!(h.contains("\r\nHost: backend.local\r\n"), "{h}");
        // X-Host keeps what the client asked for.
        assert!(h.contains("\r\nX-Host: www.example.org\r\n"), "{h}");
        // The response maps the told host back.
        let mut st = st;
        let mut o2 = opts();
        o2.map_host_request = o.map_host_request.clone();
        o2.map_host_response = vec![("-".into(), "-".into())];
        let m2 = Mapper { opts: &o2, ..m };
        assert_eq!(
            m2.uri(&mut st, b"http://backend.local/x", false).as_deref(),
            Some(&b"http://www.example.org/x"[..])
        );
        r.replace_host = Some("grisu");
        let (h, _, _) = head(&r, &m);
        assert!(h.contains("\r\nHost: grisu\r\n"), "{h}");
    }

    #[test]
    fn map_urlpath_both_ways() {
        let mut o = opts();
        o.map_urlpath = vec![
            ("/rewrite/all".into(), "/cgi.pl?".into()),
            ("/app/".into(), "/".into()),
        ];
        let (mut r, m) = req(&[], &o);
        r.target = b"/rewrite/all/some+test%3Axxx%20with%20space";
        let (h, _, mut st) = head(&r, &m);
        assert!(
            h.starts_with("GET /cgi.pl?/some+test%3Axxx%20with%20space HTTP/1.1\r\n"),
            "{h}"
        );
        // Location comes back under the client's prefix; the entry the request used first.
        assert_eq!(
            m.uri(&mut st, b"/cgi.pl?x", false).as_deref(),
            Some(&b"/rewrite/allx"[..])
        );
        assert_eq!(
            m.uri(&mut st, b"http://up/cgi.pl?y", false).as_deref(),
            Some(&b"http://up/rewrite/ally"[..])
        );
        assert_eq!(m.uri(&mut st, b"relative", false), None);
        // A bare authority gains its "/" (as lighttpd's), then maps.
        let mut st = MapState::default();
        assert_eq!(
            m.uri(&mut st, b"http://up", false).as_deref(),
            Some(&b"http://up/app/"[..])
        );
        let mut st = MapState::default();
        assert_eq!(m.uri(&mut st, b"/app/x", true).as_deref(), Some(&b"/x"[..]));
    }

    #[test]
    fn response_host_lists_and_https_remap() {
        let mut o = opts();
        o.map_urlpath = vec![("/pub/".into(), "/".into())];
        o.map_host_response = vec![("backend".into(), "www.example.org".into())];
        o.map_urlpath_resp_host_include = vec!["www.example.org".into()];
        let m = Mapper {
            opts: &o,
            http_host: Some(b"www.example.org"),
            https_remap: true,
        };
        let mut st = MapState::default();
        assert_eq!(
            m.uri(&mut st, b"http://backend/x", false).as_deref(),
            Some(&b"https://www.example.org/pub/x"[..])
        );
        // Not in the include list: the host is mapped, the path is not.
        assert_eq!(m.uri(&mut st, b"http://other/x", false), None);
        o.map_urlpath_resp_host_include.clear();
        o.map_urlpath_resp_host_exclude = vec!["other".into()];
        let m = Mapper {
            opts: &o,
            http_host: None,
            https_remap: false,
        };
        assert_eq!(m.uri(&mut st, b"http://other/x", false), None);
        assert_eq!(
            m.uri(&mut st, b"http://third/x", false).as_deref(),
            Some(&b"http://third/pub/x"[..])
        );
    }

    #[test]
    fn set_cookie_path_and_domain() {
        let mut o = opts();
        o.map_urlpath = vec![("/app/".into(), "/".into())];
        o.map_host_response = vec![("backend".into(), "example.org".into())];
        let m = Mapper {
            opts: &o,
            http_host: None,
            https_remap: false,
        };
        let mut st = MapState::default();
        assert_eq!(
            m.set_cookie(&mut st, b"id=1; Path=/x; Domain=.backend; HttpOnly")
                .as_deref(),
            Some(&b"id=1; Path=/app/x; Domain=.example.org; HttpOnly"[..])
        );
        // The cookie's own name=value is never taken for an attribute.
        assert_eq!(m.set_cookie(&mut st, b"path=/x"), None);
        assert_eq!(m.set_cookie(&mut st, b"a=b; Secure"), None);
    }

    #[test]
    fn forwarded_per_flags() {
        let o = opts();
        let fields: &[(&[u8], &[u8])] = &[(b"X-Forwarded-For", b"192.0.2.1, 2001:db8::1")];
        let (mut r, m) = req(fields, &o);
        r.forwarded = Forwarded {
            for_: true,
            proto: true,
            host: true,
            by: true,
            remote_user: true,
        };
        r.client.remote_user = Some("j\"o");
        let (h, _, _) = head(&r, &m);
        assert!(
            h.contains(
                "\r\nForwarded: for=\"192.0.2.1\", for=\"[2001:db8::1]\", for=10.0.0.7;\
                 by=\"127.0.0.1:8080\";proto=http;host=\"www.example.org\";\
                 remote_user=\"j\\\"o\"\r\n"
            ),
            "{h}"
        );
        // A Forwarded from the client is extended, not replaced.
        let fields: &[(&[u8], &[u8])] = &[(b"Forwarded", b"for=192.0.2.9")];
        let (mut r, m) = req(fields, &o);
        r.forwarded.for_ = true;
        let (h, _, _) = head(&r, &m);
        assert!(
            h.contains("\r\nForwarded: for=192.0.2.9, for=10.0.0.7\r\n"),
            "{h}"
        );
        // Without proxy.forwarded the client's passes untouched.
        r.forwarded = Forwarded::default();
        let (h, _, _) = head(&r, &m);
        assert!(h.contains("\r\nForwarded: for=192.0.2.9\r\n"), "{h}");
    }

    #[test]
    fn request_uri_fields_are_mapped() {
        let mut o = opts();
        o.map_urlpath = vec![("/dav/".into(), "/".into())];
        let fields: &[(&[u8], &[u8])] = &[
            (b"Destination", b"http://www.example.org/dav/b"),
            (b"Referer", b"http://www.example.org/dav/c"),
        ];
        let (r, m) = req(fields, &o);
        let (h, _, _) = head(&r, &m);
        assert!(
            h.contains("\r\nDestination: http://www.example.org/b\r\n"),
            "{h}"
        );
        assert!(
            h.contains("\r\nReferer: http://www.example.org/dav/c\r\n"),
            "{h}"
        );
    }
}
