//! Conditions: which request fields exist, listener addresses, CIDR patterns, and evaluating a
//! condition against a request.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use super::types::{Cond, CondField, CondInput, CondOp};

/// The field named by `$VAR["name"]`, or a message saying what is allowed.
pub(crate) fn field(var: &str, name: &str) -> Result<CondField, String> {
    match var {
        "HTTP" => Ok(match name {
            "host" => CondField::Host,
            "url" => CondField::Url,
            // "remoteip" is the spelling of lighttpd before 1.4.x renamed it.
            "remote-ip" | "remoteip" => CondField::RemoteIp,
            "querystring" | "query-string" => CondField::QueryString,
            "request-method" => CondField::RequestMethod,
            "scheme" => CondField::Scheme,
            "useragent" | "user-agent" => CondField::UserAgent,
            "referer" => CondField::Referer,
            "cookie" => CondField::Cookie,
            // lighttpd maps these to request headers too.
            "language" => CondField::RequestHeader("Accept-Language".to_string()),
            "request-header" => {
                return Err("use $REQUEST_HEADER[\"Name\"] to test a request header".to_string())
            }
            _ => {
                return Err(format!(
                    "unknown field $HTTP[\"{}\"]; expected one of \"host\", \"url\", \
                     \"remote-ip\", \"querystring\", \"request-method\", \"scheme\", \
                     \"useragent\", \"referer\", \"cookie\"",
                    name.escape_debug()
                ))
            }
        }),
        "REQUEST_HEADER" => {
            let valid = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?={}".contains(&b));
            if valid {
                Ok(CondField::RequestHeader(name.to_string()))
            } else {
                Err(format!("invalid header name \"{}\"", name.escape_debug()))
            }
        }
        "SERVER" if name == "socket" => Ok(CondField::ServerSocket),
        "SERVER" => Err(format!(
            "unknown field $SERVER[\"{}\"]; expected $SERVER[\"socket\"]",
            name.escape_debug()
        )),
        "PHYSICAL" | "ENV" => Err(format!(
            "${var}[...] conditions are not supported by lightd \
             (it supports $HTTP, $REQUEST_HEADER and $SERVER[\"socket\"])"
        )),
        _ => Err(format!(
            "unknown condition '${var}'; expected $HTTP, $REQUEST_HEADER or $SERVER"
        )),
    }
}

/// A listening address as lighttpd writes it: ":8080", "127.0.0.1:8080", "[::]:80",
/// "[::1]:8080", "localhost:8080".
pub(crate) fn parse_socket(s: &str) -> Result<SocketAddr, String> {
    if s.starts_with('/') {
        return Err("unix domain sockets are not supported".to_string());
    }
    let (host, port) = if let Some(rest) = s.strip_prefix('[') {
        let (h, p) = rest
            .split_once("]:")
            .ok_or_else(|| format!("expected \"[ipv6]:port\", got \"{s}\""))?;
        (h, p)
    } else {
        let (h, p) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("expected \"ip:port\" or \":port\", got \"{s}\""))?;
        if h.contains(':') {
            return Err(format!("IPv6 addresses must be in brackets: \"[{h}]:{p}\""));
        }
        (h, p)
    };
    let port: u16 = port
        .parse()
        .map_err(|_| format!("invalid port \"{port}\" in \"{s}\""))?;
    let ip = if host.is_empty() {
        IpAddr::V4(Ipv4Addr::UNSPECIFIED)
    } else {
        parse_host(host)?
    };
    Ok(SocketAddr::new(ip, port))
}

/// An address for server.bind: an IP literal (brackets allowed for IPv6) or "localhost".
pub(crate) fn parse_host(h: &str) -> Result<IpAddr, String> {
    if h.starts_with('/') {
        return Err("unix domain sockets are not supported".to_string());
    }
    if h == "localhost" {
        return Ok(IpAddr::V4(Ipv4Addr::LOCALHOST));
    }
    let bare = h
        .strip_prefix('[')
        .and_then(|x| x.strip_suffix(']'))
        .unwrap_or(h);
    bare.parse().map_err(|_| {
        format!("\"{h}\" is not an IP address (lightd does not resolve host names other than localhost)")
    })
}

/// An IP address or a CIDR network, for `$HTTP["remote-ip"] == "10.0.0.0/8"`.
pub(crate) fn parse_cidr(s: &str) -> Result<(IpAddr, u8), String> {
    let bad = || format!("expected an IP address or a network such as \"10.0.0.0/8\", got \"{s}\"");
    let (ip, bits) = match s.split_once('/') {
        Some((ip, bits)) => (ip, Some(bits)),
        None => (s, None),
    };
    let ip: IpAddr = ip.parse().map_err(|_| bad())?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        Some(b) => b.parse::<u8>().ok().filter(|b| *b <= max).ok_or_else(bad)?,
        None => max,
    };
    Ok((ip, bits))
}

/// Clients on a dual-stack socket show up as ::ffff:a.b.c.d; compare them as IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6
            .to_ipv4_mapped()
            .map(IpAddr::V4)
            .unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

fn in_network(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    match (canonical(ip), net) {
        (IpAddr::V4(a), IpAddr::V4(n)) => {
            let mask = u32::MAX.checked_shl(32 - u32::from(bits)).unwrap_or(0);
            u32::from(a) & mask == u32::from(n) & mask
        }
        (IpAddr::V6(a), IpAddr::V6(n)) => {
            let mask = u128::MAX.checked_shl(128 - u32::from(bits)).unwrap_or(0);
            u128::from(a) & mask == u128::from(n) & mask
        }
        _ => false,
    }
}

/// Whether a connection on `actual` belongs to the `$SERVER["socket"]` block for `want`.
/// `actual` may be the listener's address or the connection's local address: an unspecified
/// `want` ("0.0.0.0:80", "[::]:80") accepts any address of its family on that port.
pub(crate) fn socket_matches(want: SocketAddr, actual: SocketAddr) -> bool {
    if want.port() != actual.port() {
        return false;
    }
    let a = canonical(actual.ip());
    match want.ip() {
        IpAddr::V4(w) if w.is_unspecified() => a.is_ipv4(),
        IpAddr::V6(w) if w.is_unspecified() => a.is_ipv6() || actual.ip().is_ipv6(),
        w => canonical(w) == a,
    }
}

/// Evaluate one condition. Absent fields compare as the empty string, as in lighttpd.
pub(crate) fn eval(cond: &Cond, input: &dyn CondInput) -> bool {
    let positive = !matches!(cond.op, CondOp::Ne | CondOp::NotMatch);
    match (&cond.field, cond.op) {
        (CondField::ServerSocket, CondOp::Eq | CondOp::Ne) => {
            let want = cond.socket.or_else(|| parse_socket(&cond.pattern).ok());
            let hit = want.is_some_and(|w| socket_matches(w, input.server_socket()));
            return hit == positive;
        }
        (CondField::RemoteIp, CondOp::Eq | CondOp::Ne) => {
            let hit = parse_cidr(&cond.pattern)
                .is_ok_and(|(net, bits)| in_network(input.remote_ip(), net, bits));
            return hit == positive;
        }
        _ => {}
    }
    let owned;
    let value: &str = match (&cond.field, input.field(&cond.field)) {
        (_, Some(v)) => v,
        (CondField::RemoteIp, None) => {
            owned = canonical(input.remote_ip()).to_string();
            &owned
        }
        (CondField::ServerSocket, None) => {
            owned = input.server_socket().to_string();
            &owned
        }
        (_, None) => "",
    };
    // Host names are case-insensitive; everything else is compared as sent.
    let fold = cond.field == CondField::Host;
    let eq = |a: &str, b: &str| {
        if fold {
            a.eq_ignore_ascii_case(b)
        } else {
            a == b
        }
    };
    let hit = match cond.op {
        CondOp::Eq | CondOp::Ne => eq(value, &cond.pattern),
        CondOp::Match | CondOp::NotMatch => cond.regex.as_ref().is_some_and(|r| r.is_match(value)),
        CondOp::Prefix => {
            value.len() >= cond.pattern.len()
                && value.is_char_boundary(cond.pattern.len())
                && eq(&value[..cond.pattern.len()], &cond.pattern)
        }
        CondOp::Suffix => {
            value.len() >= cond.pattern.len()
                && value.is_char_boundary(value.len() - cond.pattern.len())
                && eq(&value[value.len() - cond.pattern.len()..], &cond.pattern)
        }
    };
    hit == positive
}

/// The default bind address when server.bind is not set.
pub(crate) const ANY_V4: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv6Addr;

    const ANY_V6: IpAddr = IpAddr::V6(Ipv6Addr::UNSPECIFIED);

    #[test]
    fn socket_table() {
        for (text, want) in [
            (":8080", Ok("0.0.0.0:8080")),
            ("127.0.0.1:8080", Ok("127.0.0.1:8080")),
            ("[::]:80", Ok("[::]:80")),
            ("[::1]:8080", Ok("[::1]:8080")),
            ("localhost:81", Ok("127.0.0.1:81")),
            (":0", Ok("0.0.0.0:0")),
            ("/run/l.sock", Err("unix domain sockets are not supported")),
            ("[::]", Err("expected \"[ipv6]:port\", got \"[::]\"")),
            ("127.0.0.1", Err("expected \"ip:port\" or \":port\", got \"127.0.0.1\"")),
            (":99999", Err("invalid port \"99999\" in \":99999\"")),
            ("::1:80", Err("IPv6 addresses must be in brackets: \"[::1]:80\"")),
            (
                "example.com:80",
                Err("\"example.com\" is not an IP address (lightd does not resolve host names other than localhost)"),
            ),
        ] {
            let got = parse_socket(text).map(|a| a.to_string());
            assert_eq!(got, want.map(str::to_string).map_err(str::to_string), "{text}");
        }
    }

    #[test]
    fn cidr_table() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap_or(ANY_V6);
        for (pat, addr, want) in [
            ("10.0.0.0/8", "10.1.2.3", true),
            ("10.0.0.0/8", "11.1.2.3", false),
            ("10.0.0.0/8", "::ffff:10.9.9.9", true),
            ("192.168.1.7", "192.168.1.7", true),
            ("192.168.1.7", "192.168.1.8", false),
            ("0.0.0.0/0", "8.8.8.8", true),
            ("::1/128", "::1", true),
            ("::1/128", "::2", false),
            ("2001:db8::/32", "2001:db8:1::5", true),
            ("2001:db8::/32", "10.0.0.1", false),
        ] {
            let (net, bits) = parse_cidr(pat).unwrap_or((ANY_V6, 255));
            assert_eq!(in_network(ip(addr), net, bits), want, "{addr} in {pat}");
        }
        for bad in ["10.0.0.0/33", "::1/129", "host", "10.0.0/8", "10.0.0.0/x"] {
            assert!(parse_cidr(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn socket_match_table() {
        let a = |s: &str| parse_socket(s).unwrap_or(SocketAddr::new(ANY_V6, 1));
        for (want, actual, hit) in [
            (":80", "0.0.0.0:80", true),
            (":80", "10.0.0.1:80", true),
            (":80", "10.0.0.1:81", false),
            (":80", "[::]:80", false),
            ("[::]:80", "[::]:80", true),
            ("[::]:80", "[2001:db8::1]:80", true),
            ("[::]:80", "10.0.0.1:80", false),
            ("127.0.0.1:8080", "127.0.0.1:8080", true),
            ("127.0.0.1:8080", "127.0.0.2:8080", false),
            ("127.0.0.1:8080", "[::ffff:127.0.0.1]:8080", true),
        ] {
            assert_eq!(
                socket_matches(a(want), a(actual)),
                hit,
                "{want} vs {actual}"
            );
        }
    }

    #[test]
    fn field_table() {
        for (var, name, ok) in [
            ("HTTP", "host", true),
            ("HTTP", "remoteip", true),
            ("HTTP", "useragent", true),
            ("HTTP", "hots", false),
            ("REQUEST_HEADER", "X-Forwarded-For", true),
            ("REQUEST_HEADER", "", false),
            ("REQUEST_HEADER", "a b", false),
            ("SERVER", "socket", true),
            ("SERVER", "name", false),
            ("PHYSICAL", "path", false),
            ("FOO", "x", false),
        ] {
            assert_eq!(field(var, name).is_ok(), ok, "${var}[{name}]");
        }
    }
}
