//! mod_accesslog's log lines: an `accesslog.format` (compiled at config load, in
//! `config::accesslog`) rendered per request.
//!
//! What the directives print, what counts as absent and how client bytes are escaped follow lighttpd 1.4.85's `src/mod_accesslog.c` and `buffer_append_bs_escaped*` in
//! `src/buffer.c`. Rendering appends to the caller's buffer and allocates nothing else; time
//! stamps go through a strftime of our own over `localtime_r`, so no global cache is needed.

use crate::config::accesslog::{Clock, Escaping, Field, Format, Stamp, Unit};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
/// lighttpd's strftime buffer: a longer time stamp is dropped whole.
const MAX_TIME_LEN: usize = 4095;

/// A socket address as lighttpd prints it in `%a`, `%A` and `%p`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SockAddr<'a> {
    Ip(SocketAddr),
    /// A unix-domain socket's path (lighttpd gives its clients the listener's path too).
    Unix(&'a [u8]),
}

/// How the connection ended, for `%X`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnStatus {
    /// The response was not completed (lighttpd's CON_STATE_ERROR): `X`.
    Aborted,
    /// Completed, connection closes: `-`.
    Close,
    /// Completed, connection stays open: `+`.
    KeepAlive,
}

/// The per-request data the directives read. The integrator implements it for its request
/// state; every method is cheap and borrows, so rendering copies each value once.
pub trait Fields {
    /// The client (after mod_extforward, if it replaced it): `%a`, `%h`, `%{remote}p`.
    fn remote(&self) -> SockAddr<'_>;
    /// The listening socket the request came in on, as bound (`0.0.0.0:80`, not the
    /// connection's own local address, as lighttpd): `%A`, `%p`.
    fn local(&self) -> SockAddr<'_>;
    /// The method as lighttpd names it; empty when it is none lighttpd knows (or the request
    /// line did not parse): `%m`, `%r`.
    fn method(&self) -> &[u8];
    /// "HTTP/1.0", "HTTP/1.1", or empty when unknown: `%H`, `%r`.
    fn protocol(&self) -> &[u8];
    /// The request-target exactly as received: `%r`.
    fn request_target(&self) -> &[u8];
    /// The request-target after any rewrite, still percent-encoded: `%U` is the part
    /// before the first `?`.
    fn target(&self) -> &[u8];
    /// The query string (after any rewrite) without its `?`: `%q`.
    fn query(&self) -> &[u8] {
        let t = self.target();
        match t.iter().position(|&c| c == b'?') {
            Some(q) => t.get(q + 1..).unwrap_or_default(),
            None => &[],
        }
    }
    /// The request's authority (Host), empty when none: `%V`.
    fn authority(&self) -> &[u8];
    /// lighttpd's `r->server_name`: `server.name` where set, else the authority: `%v`.
    fn server_name(&self) -> &[u8];
    /// The file the request mapped to, empty when none: `%f`.
    fn physical_path(&self) -> &[u8];
    /// `%s`, `%>s`.
    fn status(&self) -> u16;
    /// Bytes read for this request: request line, headers and body: `%I`.
    fn bytes_in(&self) -> u64;
    /// Bytes written for this request, response head included: `%O`.
    fn bytes_out(&self) -> u64;
    /// Length of the response head, which `%b` leaves out of `bytes_out`.
    fn response_header_len(&self) -> u64;
    /// A request header's value, found by case-insensitive name, repeated headers joined as
    /// lighttpd joins them: `%{Name}i`, and `Cookie` for `%{name}C`.
    fn request_header(&self, name: &str) -> Option<&[u8]>;
    /// A response header's value: `%{Name}o`.
    fn response_header(&self, name: &str) -> Option<&[u8]>;
    /// A request environment variable (set by modules such as setenv or auth): `%{NAME}e`,
    /// `%{NAME}n`.
    fn env(&self, name: &str) -> Option<&[u8]>;
    /// The authenticated user: `%u`. lighttpd reads the REMOTE_USER environment variable.
    fn remote_user(&self) -> Option<&[u8]> {
        self.env("REMOTE_USER")
    }
    /// When the request started, as (seconds, nanoseconds) since the Unix epoch.
    fn start_time(&self) -> (i64, u32);
    /// Now, the time of logging: the "end" of `%t` and the end of `%T`/`%D`.
    fn end_time(&self) -> (i64, u32);
    /// How many requests this connection has carried, this one included (from 1): `%k`.
    fn request_count(&self) -> u64;
    /// `%X`.
    fn conn_status(&self) -> ConnStatus;
}

/// Append one log line for the request, '\n' included, local time for time stamps.
pub fn render(f: &Format, esc: Escaping, src: &dyn Fields, out: &mut Vec<u8>) {
    render_with(f, esc, src, out, local_tm);
}

/// [`render`] with the time zone conversion passed in, so tests need not depend on TZ.
fn render_with(
    f: &Format,
    esc: Escaping,
    src: &dyn Fields,
    out: &mut Vec<u8>,
    tm_of: fn(i64) -> Option<Tm>,
) {
    for field in f.fields() {
        match field {
            Field::Literal(s) => out.extend_from_slice(s.as_bytes()),
            Field::Nothing => {}
            Field::RemoteAddr { mask } => match src.remote() {
                SockAddr::Ip(sa) if *mask => push_masked(out, sa.ip()),
                SockAddr::Ip(sa) => push_ip(out, sa.ip()),
                SockAddr::Unix(p) => out.extend_from_slice(p),
            },
            Field::LocalAddr => match src.local() {
                SockAddr::Ip(SocketAddr::V4(a)) => push_ipv4(out, *a.ip()),
                SockAddr::Ip(SocketAddr::V6(a)) => {
                    out.push(b'[');
                    push_ipv6(out, a.ip());
                    out.push(b']');
                }
                SockAddr::Unix(p) => out.extend_from_slice(p),
            },
            Field::Port { remote: true } => match src.remote() {
                SockAddr::Ip(sa) => push_uint(out, u64::from(sa.port())),
                SockAddr::Unix(_) => out.push(b'0'),
            },
            Field::Port { remote: false } => {
                // A unix socket has no port; lighttpd prints nothing.
                if let SockAddr::Ip(sa) = src.local() {
                    push_uint(out, u64::from(sa.port()));
                }
            }
            Field::BytesBody => {
                push_bytes(out, src.bytes_out(), src.response_header_len());
            }
            Field::BytesOut => push_bytes(out, src.bytes_out(), 0),
            Field::BytesIn => push_bytes(out, src.bytes_in(), 0),
            Field::RequestHeader(n) => push_value(out, src.request_header(n), esc),
            Field::ResponseHeader(n) => push_value(out, src.response_header(n), esc),
            Field::Env(n) => push_value(out, src.env(n), esc),
            Field::User => push_value(out, src.remote_user(), esc),
            Field::Cookie(n) => {
                if let Some(v) = src.request_header("Cookie").and_then(|c| cookie(c, n)) {
                    escape(out, v, esc);
                }
            }
            Field::Time { clock, stamp, fmt } => {
                let (secs, nanos) = match clock {
                    Clock::Begin => src.start_time(),
                    Clock::End => src.end_time(),
                };
                push_time(out, secs, nanos, *stamp, fmt.as_bytes(), tm_of);
            }
            Field::Duration(unit) => push_duration(out, src.start_time(), src.end_time(), *unit),
            Field::Filename => push_value(out, Some(src.physical_path()), esc),
            Field::Protocol => escape(out, src.protocol(), esc),
            Field::Method => escape(out, src.method(), esc),
            Field::KeepAliveCount => push_uint(out, src.request_count().saturating_sub(1)),
            Field::RequestLine => {
                // lighttpd rebuilds the line from its parts rather than keep the raw bytes.
                escape(out, src.method(), esc);
                out.push(b' ');
                escape(out, src.request_target(), esc);
                out.push(b' ');
                escape(out, src.protocol(), esc);
            }
            Field::Status => push_uint(out, u64::from(src.status())),
            Field::Url => {
                let t = src.target();
                let path = t.split(|&c| c == b'?').next().unwrap_or_default();
                escape(out, path, esc);
            }
            Field::Query => escape(out, src.query(), esc),
            Field::ServerName => push_value(out, Some(src.server_name()), esc),
            Field::Host => push_value(out, Some(src.authority()), esc),
            Field::ConnStatus => out.push(match src.conn_status() {
                ConnStatus::Aborted => b'X',
                ConnStatus::Close => b'-',
                ConnStatus::KeepAlive => b'+',
            }),
        }
    }
    out.push(b'\n');
}

/// A value that may be absent: "-" when missing or empty, else escaped.
fn push_value(out: &mut Vec<u8>, v: Option<&[u8]>, esc: Escaping) {
    match v {
        Some(v) if !v.is_empty() => escape(out, v, esc),
        _ => out.push(b'-'),
    }
}

/// A byte count less `adjust`: "-" when nothing moved at all, and never below 0 (a response
/// that was only a head logs `%b` as 0).
fn push_bytes(out: &mut Vec<u8>, n: u64, adjust: u64) {
    if n == 0 {
        out.push(b'-');
    } else {
        push_uint(out, n.saturating_sub(adjust));
    }
}

/// Escape bytes a client or backend controls, as lighttpd's `buffer_append_bs_escaped` and
/// `buffer_append_bs_escaped_json` do, so a log line can be split on quotes and spaces.
fn escape(out: &mut Vec<u8>, s: &[u8], esc: Escaping) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let safe = |c: u8| match esc {
        Escaping::Default => (0x20..0x7f).contains(&c) && c != b'"' && c != b'\\',
        // C1 controls (0x80..0x9f) are escaped too; the other high bytes are left for UTF-8.
        Escaping::Json => (c & 0x7f) >= 0x20 && c != 0x7f && c != b'"' && c != b'\\',
    };
    let mut rest = s;
    while !rest.is_empty() {
        let run = rest.iter().position(|&c| !safe(c)).unwrap_or(rest.len());
        let (plain, tail) = rest.split_at(run);
        out.extend_from_slice(plain);
        let Some((&c, tail)) = tail.split_first() else {
            break;
        };
        rest = tail;
        let short = match c {
            0x07 => Some(b'a'),
            0x08 => Some(b'b'),
            b'\t' => Some(b't'),
            b'\n' => Some(b'n'),
            0x0b => Some(b'v'),
            0x0c => Some(b'f'),
            b'\r' => Some(b'r'),
            b'"' | b'\\' => Some(c),
            _ => None,
        };
        let hi = HEX[usize::from(c >> 4)];
        let lo = HEX[usize::from(c & 0xf)];
        match (short, esc) {
            (Some(s), _) => out.extend_from_slice(&[b'\\', s]),
            (None, Escaping::Default) => out.extend_from_slice(&[b'\\', b'x', hi, lo]),
            (None, Escaping::Json) => out.extend_from_slice(&[b'\\', b'u', b'0', b'0', hi, lo]),
        }
    }
}

/// The value of cookie `name` in a Cookie header, by lighttpd's reading of it: pairs are
/// split on ';', the value runs to the next ';' less trailing blanks; a pair whose name
/// ends in a space or tab ends the search. None when absent or empty.
fn cookie<'a>(header: &'a [u8], name: &str) -> Option<&'a [u8]> {
    let name = name.as_bytes();
    // lighttpd reads the header as a C string.
    let s = header.split(|&c| c == 0).next().unwrap_or_default();
    let blank = |p: usize| matches!(s.get(p), Some(b' ') | Some(b'\t'));
    let mut p = 0;
    // Each round moves past at least one byte, so this bounds the loop.
    for _ in 0..=s.len() {
        while blank(p) {
            p += 1;
        }
        let after = p + name.len();
        if s.get(p..after) == Some(name) && s.get(after) == Some(&b'=') {
            let v = after + 1;
            let value = s.get(v..).unwrap_or_default();
            let end = value.iter().position(|&c| c == b';').unwrap_or(value.len());
            let value = value.get(..end).unwrap_or_default();
            // Trailing blanks go, but the first byte always stays.
            let keep = value
                .iter()
                .rposition(|&c| c != b' ' && c != b'\t')
                .map_or(1, |last| last + 1);
            return value.get(..keep).filter(|v| !v.is_empty());
        }
        while s.get(p).is_some_and(|&c| !matches!(c, b';' | b' ' | b'\t')) {
            p += 1;
        }
        while blank(p) {
            p += 1;
        }
        if s.get(p) != Some(&b';') {
            return None;
        }
        p += 1;
    }
    None
}

/// The time stamps written last, one per format: a log line's `%t` changes once a second,
/// and without the cache localtime_r and strftime are most of a line's cost (lighttpd keeps
/// the formatted time per second as well). Capacity is reused, so the steady state does not
/// allocate.
struct StampCache {
    slots: [(i64, usize, Vec<u8>, Vec<u8>); 2],
    next: usize,
}

thread_local! {
    static STAMPS: std::cell::RefCell<StampCache> = const {
        std::cell::RefCell::new(StampCache {
            slots: [(i64::MIN, 0, Vec::new(), Vec::new()), (i64::MIN, 0, Vec::new(), Vec::new())],
            next: 0,
        })
    };
}

impl StampCache {
    /// Append the cached stamp for (`secs`, `fmt`, `tm_of`) if there is one.
    fn copy(&self, out: &mut Vec<u8>, secs: i64, fmt: &[u8], tm_of: fn(i64) -> Option<Tm>) -> bool {
        let zone = tm_of as usize;
        match self
            .slots
            .iter()
            .find(|(s, z, f, _)| *s == secs && *z == zone && f == fmt)
        {
            Some((_, _, _, stamp)) => {
                out.extend_from_slice(stamp);
                true
            }
            None => false,
        }
    }

    fn keep(&mut self, secs: i64, fmt: &[u8], tm_of: fn(i64) -> Option<Tm>, stamp: &[u8]) {
        let zone = tm_of as usize;
        // The slot this format had, else the older one.
        let i = self
            .slots
            .iter()
            .position(|(_, z, f, _)| *z == zone && f == fmt)
            .unwrap_or(self.next);
        self.next = (i + 1) % self.slots.len();
        let slot = &mut self.slots[i];
        slot.0 = secs;
        slot.1 = zone;
        slot.2.clear();
        slot.2.extend_from_slice(fmt);
        slot.3.clear();
        slot.3.extend_from_slice(stamp);
    }
}

fn push_time(
    out: &mut Vec<u8>,
    secs: i64,
    nanos: u32,
    stamp: Stamp,
    fmt: &[u8],
    tm_of: fn(i64) -> Option<Tm>,
) {
    let nanos = i64::from(nanos.min(999_999_999));
    // lighttpd rounds sub-second parts up.
    let scaled = |per_sec: i64, div: i64| {
        secs.saturating_mul(per_sec)
            .saturating_add((nanos + div - 1) / div)
    };
    match stamp {
        Stamp::Strftime => {
            if STAMPS.with(|c| c.borrow().copy(out, secs, fmt, tm_of)) {
                return;
            }
            let Some(tm) = tm_of(secs) else { return };
            let mark = out.len();
            strftime(out, fmt, &tm);
            if out.len() - mark > MAX_TIME_LEN {
                out.truncate(mark);
            }
            STAMPS.with(|c| c.borrow_mut().keep(secs, fmt, tm_of, &out[mark..]));
        }
        Stamp::Sec => push_int(out, secs),
        Stamp::Msec => push_int(out, scaled(1_000, 1_000_000)),
        Stamp::Usec => push_int(out, scaled(1_000_000, 1_000)),
        Stamp::Nsec => push_int(out, scaled(1_000_000_000, 1)),
        // The rounded-up fraction can reach a whole second; lighttpd then writes a digit
        // into the byte before the field. We stop at the largest fraction instead.
        Stamp::MsecFrac => push_padded(out, ((nanos + 999_999) / 1_000_000).min(999), 3),
        Stamp::UsecFrac => push_padded(out, ((nanos + 999) / 1_000).min(999_999), 6),
        Stamp::NsecFrac => push_padded(out, nanos, 9),
    }
}

fn push_duration(out: &mut Vec<u8>, start: (i64, u32), end: (i64, u32), unit: Unit) {
    if unit == Unit::Sec {
        // Whole-second clock difference, as lighttpd: not the rounded duration.
        push_int(out, end.0.saturating_sub(start.0));
        return;
    }
    let ns = end
        .0
        .saturating_sub(start.0)
        .saturating_mul(1_000_000_000)
        .saturating_add(i64::from(end.1) - i64::from(start.1));
    let v = if ns <= 0 {
        // The clock went backwards (or did not move): lighttpd logs -1.
        -1
    } else {
        match unit {
            Unit::Msec => ns / 1_000_000 + i64::from(ns % 1_000_000 != 0),
            Unit::Usec => ns / 1_000 + i64::from(ns % 1_000 != 0),
            _ => ns,
        }
    };
    push_int(out, v);
}

fn push_uint(out: &mut Vec<u8>, mut v: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        if let Some(d) = buf.get_mut(i) {
            *d = b'0' + (v % 10) as u8;
        }
        v /= 10;
        if v == 0 || i == 0 {
            break;
        }
    }
    out.extend_from_slice(buf.get(i..).unwrap_or_default());
}

fn push_int(out: &mut Vec<u8>, v: i64) {
    if v < 0 {
        out.push(b'-');
    }
    push_uint(out, v.unsigned_abs());
}

/// `v` in at least `width` digits, zero-filled.
fn push_padded(out: &mut Vec<u8>, v: i64, width: usize) {
    push_num(out, v, width, b'0');
}

fn push_num(out: &mut Vec<u8>, v: i64, width: usize, pad: u8) {
    let digits = {
        let (mut n, mut d) = (v.unsigned_abs(), 1);
        while n >= 10 {
            n /= 10;
            d += 1;
        }
        d + usize::from(v < 0)
    };
    for _ in digits..width {
        out.push(pad);
    }
    push_int(out, v);
}

fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(a) => push_ipv4(out, a),
        IpAddr::V6(a) => push_ipv6(out, &a),
    }
}

fn push_ipv4(out: &mut Vec<u8>, a: Ipv4Addr) {
    for (i, o) in a.octets().iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        push_uint(out, u64::from(*o));
    }
}

/// IPv6 text as glibc's inet_ntop writes it (which is what lighttpd logs): the longest run of
/// two or more zero groups (the first of equals) becomes "::", and both IPv4-mapped and the
/// old IPv4-compatible addresses end in dotted quad.
fn push_ipv6(out: &mut Vec<u8>, a: &Ipv6Addr) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let g = a.segments();
    let (mut best, mut best_len) = (0usize, 0usize);
    let mut i = 0;
    while i < g.len() {
        if g.get(i) == Some(&0) {
            let start = i;
            while g.get(i) == Some(&0) {
                i += 1;
            }
            if i - start > best_len {
                best = start;
                best_len = i - start;
            }
        } else {
            i += 1;
        }
    }
    if best_len < 2 {
        best_len = 0;
    }
    let o = a.octets();
    let dotted = best == 0 && (best_len == 6 || (best_len == 5 && g.get(5) == Some(&0xffff)));
    for (i, &w) in g.iter().enumerate() {
        if best_len > 0 && (best..best + best_len).contains(&i) {
            if i == best {
                out.push(b':');
            }
            continue;
        }
        if i > 0 {
            out.push(b':');
        }
        if i == 6 && dotted {
            push_ipv4(out, Ipv4Addr::new(o[12], o[13], o[14], o[15]));
            return;
        }
        let mut started = false;
        for shift in [12u16, 8, 4, 0] {
            let d = (w >> shift) & 0xf;
            if d != 0 || started || shift == 0 {
                started = true;
                out.push(HEX[usize::from(d)]);
            }
        }
    }
    if best_len > 0 && best + best_len == 8 {
        out.push(b':');
    }
}

/// `%{mask}a`: lighttpd's anonymisation of the printed address. IPv4 (also IPv4-mapped)
/// keeps three octets and ends in ".0"; IPv6 keeps what comes before the third ':' or the
/// first "::", then "::".
fn push_masked(out: &mut Vec<u8>, ip: IpAddr) {
    let mark = out.len();
    push_ip(out, ip);
    let mapped = matches!(ip, IpAddr::V6(a) if a.to_ipv4_mapped().is_some());
    let Some(text) = out.get(mark..) else { return };
    let keep = if matches!(ip, IpAddr::V4(_)) || mapped {
        text.iter().rposition(|&c| c == b'.').map(|p| (p + 1, b'0'))
    } else {
        let mut colons = 0;
        let mut at = None;
        for (p, &c) in text.iter().enumerate() {
            if c == b':' {
                colons += 1;
                if colons == 3 || text.get(p + 1) == Some(&b':') {
                    at = Some(p + 1);
                    break;
                }
            }
        }
        at.map(|p| (p, b':'))
    };
    if let Some((len, last)) = keep {
        out.truncate(mark + len);
        out.push(last);
    }
}

/// A broken-down time, as `localtime_r` gives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Tm {
    /// Seconds since the epoch, for `%s`.
    t: i64,
    year: i64,
    /// 0..=11
    mon: u8,
    /// 1..=31
    mday: u8,
    hour: u8,
    min: u8,
    sec: u8,
    /// 0 = Sunday
    wday: u8,
    /// 0..=365
    yday: u16,
    /// Seconds east of UTC.
    gmtoff: i64,
    zone: [u8; 15],
    zone_len: u8,
}

/// Local time through the C library, as lighttpd. None if it cannot convert `t`.
fn local_tm(t: i64) -> Option<Tm> {
    // time_t's width is the C library's (32 bits on older 32-bit ABIs): let the call pick it,
    // and refuse what does not fit rather than wrap. (Where time_t is i64 this converts
    // nothing, hence the allow.)
    #[allow(clippy::useless_conversion)]
    let tt = t.try_into().ok()?;
    // SAFETY: an all-zero `tm` is a valid value (integers and a null pointer); both
    // pointers refer to live locals for the duration of the call.
    let (tm, ok) = unsafe {
        let mut tm: libc::tm = std::mem::zeroed();
        let ok = !libc::localtime_r(&tt, &mut tm).is_null();
        (tm, ok)
    };
    if !ok {
        return None;
    }
    let mut zone = [0u8; 15];
    let mut zone_len = 0;
    if !tm.tm_zone.is_null() {
        for (i, z) in zone.iter_mut().enumerate() {
            // SAFETY: tm_zone points at a NUL-terminated name in the C library's time zone
            // data, which lives as long as the process; we stop at its NUL.
            // (c_char is i8 or u8 by target; its byte is what we want either way.)
            let [c] = unsafe { *tm.tm_zone.add(i) }.to_ne_bytes();
            if c == 0 {
                break;
            }
            *z = c;
            zone_len += 1;
        }
    }
    let small = |v: libc::c_int| u8::try_from(v).unwrap_or(0);
    Some(Tm {
        t,
        year: i64::from(tm.tm_year) + 1900,
        mon: small(tm.tm_mon),
        mday: small(tm.tm_mday),
        hour: small(tm.tm_hour),
        min: small(tm.tm_min),
        sec: small(tm.tm_sec),
        wday: small(tm.tm_wday),
        yday: u16::try_from(tm.tm_yday).unwrap_or(0),
        #[allow(clippy::useless_conversion)] // c_long is i32 on 32-bit targets
        gmtoff: i64::from(tm.tm_gmtoff),
        zone,
        zone_len,
    })
}

const DAYS: [&str; 7] = [
    "Sunday",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// strftime in the C locale, for the directives glibc has: the flags `-` (no padding), `_`
/// (spaces), `0` (zeros) and `^` (upper case) and the `E`/`O` modifiers (no-ops in the C
/// locale) are understood; a field width, `#` or an unknown directive is copied through.
fn strftime(out: &mut Vec<u8>, fmt: &[u8], tm: &Tm) {
    let mut i = 0;
    while let Some(&c) = fmt.get(i) {
        i += 1;
        if c != b'%' {
            out.push(c);
            continue;
        }
        let start = i - 1;
        let mut pad = None;
        let mut upper = false;
        while let Some(&f) = fmt.get(i) {
            match f {
                b'-' => pad = Some(None),
                b'_' => pad = Some(Some(b' ')),
                b'0' => pad = Some(Some(b'0')),
                b'^' => upper = true,
                _ => break,
            }
            i += 1;
        }
        if matches!(fmt.get(i), Some(b'E') | Some(b'O')) {
            i += 1;
        }
        let Some(&conv) = fmt.get(i) else {
            out.extend_from_slice(fmt.get(start..).unwrap_or_default());
            break;
        };
        i += 1;
        let mark = out.len();
        if !conversion(out, conv, pad, tm) {
            out.extend_from_slice(fmt.get(start..i).unwrap_or_default());
        } else if upper {
            if let Some(s) = out.get_mut(mark..) {
                s.make_ascii_uppercase();
            }
        }
    }
}

/// One strftime conversion; false if `conv` is not one. `pad`: None for the conversion's
/// own padding, Some(None) for none, Some(Some(c)) to pad with c.
fn conversion(out: &mut Vec<u8>, conv: u8, pad: Option<Option<u8>>, tm: &Tm) -> bool {
    let num = |out: &mut Vec<u8>, v: i64, width: usize, own: u8| match pad.unwrap_or(Some(own)) {
        Some(p) => push_num(out, v, width, p),
        None => push_int(out, v),
    };
    let text = |out: &mut Vec<u8>, s: &str, len: usize| {
        out.extend_from_slice(s.as_bytes().get(..len).unwrap_or(s.as_bytes()));
    };
    let day = DAYS.get(usize::from(tm.wday)).copied().unwrap_or("?");
    let month = MONTHS.get(usize::from(tm.mon)).copied().unwrap_or("?");
    let hour12 = match tm.hour % 12 {
        0 => 12,
        h => h,
    };
    let yday = i64::from(tm.yday);
    let wday = i64::from(tm.wday);
    let monday_based = (wday + 6) % 7;
    match conv {
        b'a' => text(out, day, 3),
        b'A' => text(out, day, usize::MAX),
        b'b' | b'h' => text(out, month, 3),
        b'B' => text(out, month, usize::MAX),
        b'c' => strftime(out, b"%a %b %e %H:%M:%S %Y", tm),
        b'C' => num(out, tm.year.div_euclid(100), 2, b'0'),
        b'd' => num(out, i64::from(tm.mday), 2, b'0'),
        b'D' | b'x' => strftime(out, b"%m/%d/%y", tm),
        b'e' => num(out, i64::from(tm.mday), 2, b' '),
        b'F' => strftime(out, b"%Y-%m-%d", tm),
        b'g' => num(out, iso_week(tm).0.rem_euclid(100), 2, b'0'),
        b'G' => num(out, iso_week(tm).0, 1, b'0'),
        b'H' => num(out, i64::from(tm.hour), 2, b'0'),
        b'I' => num(out, i64::from(hour12), 2, b'0'),
        b'j' => num(out, yday + 1, 3, b'0'),
        b'k' => num(out, i64::from(tm.hour), 2, b' '),
        b'l' => num(out, i64::from(hour12), 2, b' '),
        b'm' => num(out, i64::from(tm.mon) + 1, 2, b'0'),
        b'M' => num(out, i64::from(tm.min), 2, b'0'),
        b'n' => out.push(b'\n'),
        b'p' => text(out, if tm.hour < 12 { "AM" } else { "PM" }, 2),
        b'P' => text(out, if tm.hour < 12 { "am" } else { "pm" }, 2),
        b'r' => strftime(out, b"%I:%M:%S %p", tm),
        b'R' => strftime(out, b"%H:%M", tm),
        b's' => push_int(out, tm.t),
        b'S' => num(out, i64::from(tm.sec), 2, b'0'),
        b't' => out.push(b'\t'),
        b'T' | b'X' => strftime(out, b"%H:%M:%S", tm),
        b'u' => num(out, monday_based + 1, 1, b'0'),
        b'U' => num(out, (yday + 7 - wday) / 7, 2, b'0'),
        b'V' => num(out, iso_week(tm).1, 2, b'0'),
        b'w' => num(out, wday, 1, b'0'),
        b'W' => num(out, (yday + 7 - monday_based) / 7, 2, b'0'),
        b'y' => num(out, tm.year.rem_euclid(100), 2, b'0'),
        b'Y' => num(out, tm.year, 1, b'0'),
        b'z' => {
            let off = tm.gmtoff;
            out.push(if off < 0 { b'-' } else { b'+' });
            let mins = off.unsigned_abs() / 60;
            push_padded(out, ((mins / 60) * 100 + mins % 60) as i64, 4);
        }
        b'Z' => out.extend_from_slice(tm.zone.get(..usize::from(tm.zone_len)).unwrap_or_default()),
        b'%' => out.push(b'%'),
        _ => return false,
    }
    true
}

/// ISO 8601 week-based year and week number (weeks start on Monday; week 1 holds the
/// year's first Thursday).
fn iso_week(tm: &Tm) -> (i64, i64) {
    let leap = |y: i64| y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days_in = |y: i64| if leap(y) { 366 } else { 365 };
    // Monday = 0; a year has 53 weeks when it starts on a Thursday, or on a Wednesday in a
    // leap year.
    let weeks_in = |y: i64, jan1: i64| {
        if jan1 == 3 || (jan1 == 2 && leap(y)) {
            53
        } else {
            52
        }
    };
    let yday = i64::from(tm.yday);
    let wday = (i64::from(tm.wday) + 6) % 7;
    let jan1 = (wday - yday).rem_euclid(7);
    let week = (yday - wday + 10) / 7;
    if week < 1 {
        let prev = tm.year - 1;
        let prev_jan1 = (jan1 - days_in(prev)).rem_euclid(7);
        (prev, weeks_in(prev, prev_jan1))
    } else if week > weeks_in(tm.year, jan1) {
        (tm.year + 1, 1)
    } else {
        (tm.year, week)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::accesslog::{compile, DEFAULT_FORMAT};

    /// A request with a value for every directive.
    struct Req {
        remote: SockAddr<'static>,
        local: SockAddr<'static>,
        method: &'static [u8],
        protocol: &'static [u8],
        request_target: &'static [u8],
        target: &'static [u8],
        authority: &'static [u8],
        server_name: &'static [u8],
        physical_path: &'static [u8],
        status: u16,
        bytes_in: u64,
        bytes_out: u64,
        header_len: u64,
        req_headers: Vec<(&'static str, &'static [u8])>,
        resp_headers: Vec<(&'static str, &'static [u8])>,
        env: Vec<(&'static str, &'static [u8])>,
        start: (i64, u32),
        end: (i64, u32),
        count: u64,
        conn: ConnStatus,
    }

    fn find<'a>(list: &'a [(&'static str, &'static [u8])], name: &str) -> Option<&'a [u8]> {
        list.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }

    impl Fields for Req {
        fn remote(&self) -> SockAddr<'_> {
            self.remote
        }
        fn local(&self) -> SockAddr<'_> {
            self.local
        }
        fn method(&self) -> &[u8] {
            self.method
        }
        fn protocol(&self) -> &[u8] {
            self.protocol
        }
        fn request_target(&self) -> &[u8] {
            self.request_target
        }
        fn target(&self) -> &[u8] {
            self.target
        }
        fn authority(&self) -> &[u8] {
            self.authority
        }
        fn server_name(&self) -> &[u8] {
            self.server_name
        }
        fn physical_path(&self) -> &[u8] {
            self.physical_path
        }
        fn status(&self) -> u16 {
            self.status
        }
        fn bytes_in(&self) -> u64 {
            self.bytes_in
        }
        fn bytes_out(&self) -> u64 {
            self.bytes_out
        }
        fn response_header_len(&self) -> u64 {
            self.header_len
        }
        fn request_header(&self, name: &str) -> Option<&[u8]> {
            find(&self.req_headers, name)
        }
        fn response_header(&self, name: &str) -> Option<&[u8]> {
            find(&self.resp_headers, name)
        }
        fn env(&self, name: &str) -> Option<&[u8]> {
            self.env.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
        }
        fn start_time(&self) -> (i64, u32) {
            self.start
        }
        fn end_time(&self) -> (i64, u32) {
            self.end
        }
        fn request_count(&self) -> u64 {
            self.count
        }
        fn conn_status(&self) -> ConnStatus {
            self.conn
        }
    }

    fn req() -> Req {
        Req {
            remote: SockAddr::Ip("192.0.2.7:54321".parse().unwrap()),
            local: SockAddr::Ip("0.0.0.0:8080".parse().unwrap()),
            method: b"GET",
            protocol: b"HTTP/1.1",
            request_target: b"/a%20b?x=1&y=\"q\"",
            target: b"/rewritten/p?z=2",
            authority: b"example.org",
            server_name: b"srv.example",
            physical_path: b"/var/www/a b",
            status: 200,
            bytes_in: 312,
            bytes_out: 1234,
            header_len: 200,
            req_headers: vec![
                ("Referer", b"http://ref/"),
                ("User-Agent", b"Mozilla/5.0 \"x\""),
                ("Cookie", b"a=1; id=abc ; t=\t; sess = x; late=1"),
                ("X-Empty", b""),
            ],
            resp_headers: vec![("Content-Type", b"text/html")],
            env: vec![("REMOTE_USER", b"alice"), ("FOO", b"bar")],
            // 2023-11-14 22:13:20.25 UTC, a Tuesday; the request took 1.250000001 s.
            start: (1_700_000_000, 250_000_000),
            end: (1_700_000_001, 500_000_001),
            count: 3,
            conn: ConnStatus::KeepAlive,
        }
    }

    /// Civil UTC time from Unix seconds, by counting whole years and months (a different
    /// method from any the module uses), so tests do not depend on the machine's TZ.
    fn utc_tm(t: i64) -> Option<Tm> {
        let leap = |y: i64| y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
        let mut days = t.div_euclid(86_400);
        let secs = t.rem_euclid(86_400);
        let wday = (days + 4).rem_euclid(7) as u8; // 1970-01-01 was a Thursday
        let mut year = 1970;
        while days < 0 {
            year -= 1;
            days += if leap(year) { 366 } else { 365 };
        }
        while days >= if leap(year) { 366 } else { 365 } {
            days -= if leap(year) { 366 } else { 365 };
            year += 1;
        }
        let yday = days as u16;
        let lens = [
            31,
            if leap(year) { 29 } else { 28 },
            31,
            30,
            31,
            30,
            31,
            31,
            30,
            31,
            30,
            31,
        ];
        let mut mon = 0;
        while days >= lens[mon] {
            days -= lens[mon];
            mon += 1;
        }
        let mut zone = [0u8; 15];
        zone[..3].copy_from_slice(b"UTC");
        Some(Tm {
            t,
            year,
            mon: mon as u8,
            mday: days as u8 + 1,
            hour: (secs / 3600) as u8,
            min: (secs / 60 % 60) as u8,
            sec: (secs % 60) as u8,
            wday,
            yday,
            gmtoff: 0,
            zone,
            zone_len: 3,
        })
    }

    fn line_esc(fmt: &str, r: &Req, esc: Escaping) -> String {
        let f = compile(fmt).unwrap_or_else(|e| panic!("{fmt:?}: {e}"));
        let mut out = b"prefix ".to_vec();
        render_with(&f, esc, r, &mut out, utc_tm);
        let s = String::from_utf8(out).unwrap();
        let s = s.strip_prefix("prefix ").expect("render appends");
        s.strip_suffix('\n')
            .expect("one line ends in \\n")
            .to_string()
    }

    fn line(fmt: &str, r: &Req) -> String {
        line_esc(fmt, r, Escaping::Default)
    }

    #[test]
    fn every_directive() {
        let r = req();
        for (fmt, want) in [
            ("%%", "%"),
            ("100%% %>%%<l", "100% %-"),
            ("%a", "192.0.2.7"),
            ("%h", "192.0.2.7"),
            ("%{mask}a", "192.0.2.0"),
            ("%{mask}h", "192.0.2.0"),
            ("%A", "0.0.0.0"),
            ("%b", "1034"),
            ("%B", "1034"),
            ("%O", "1234"),
            ("%I", "312"),
            ("%C", ""),
            ("%{id}C", "abc"),
            ("%{a}C", "1"),
            ("%{t}C", "\\t"),
            // "sess = x": a blank after a cookie name ends lighttpd's search.
            ("%{sess}C", ""),
            ("%{late}C", ""),
            ("%{nope}C", ""),
            ("%D", "1250001"),
            ("%{ms}D", "1250001"),
            ("%e", ""),
            ("%{FOO}e", "bar"),
            ("%{foo}e", "-"),
            ("%{FOO}n", "bar"),
            ("%f", "/var/www/a b"),
            ("%H", "HTTP/1.1"),
            ("%i", ""),
            ("%{Referer}i", "http://ref/"),
            ("%{user-agent}i", "Mozilla/5.0 \\\"x\\\""),
            ("%{X-None}i", "-"),
            ("%{X-Empty}i", "-"),
            ("%k", "2"),
            ("%l", "-"),
            ("%m", "GET"),
            ("%o", ""),
            ("%{content-type}o", "text/html"),
            ("%{X-None}o", "-"),
            ("%p", "8080"),
            ("%{local}p", "8080"),
            ("%{canonical}p", "8080"),
            ("%{remote}p", "54321"),
            ("%P", ""),
            ("%q", "z=2"),
            ("%r", "GET /a%20b?x=1&y=\\\"q\\\" HTTP/1.1"),
            ("%s", "200"),
            ("%>s", "200"),
            ("%<s", "200"),
            ("%{ignored}s", "200"),
            ("%t", "[14/Nov/2023:22:13:21 +0000]"),
            ("%{%Y-%m-%dT%H:%M:%S%z}t", "2023-11-14T22:13:21+0000"),
            ("%{end:%H:%M:%S}t", "22:13:21"),
            ("%{begin:%H:%M:%S}t", "22:13:20"),
            ("%{sec}t", "1700000001"),
            ("%{end:sec}t", "1700000001"),
            ("%{begin:sec}t", "1700000000"),
            ("%{msec}t", "1700000001501"),
            ("%{begin:msec}t", "1700000000250"),
            ("%{usec}t", "1700000001500001"),
            ("%{nsec}t", "1700000001500000001"),
            ("%{begin:nsec}t", "1700000000250000000"),
            ("%{msec_frac}t", "501"),
            ("%{usec_frac}t", "500001"),
            ("%{nsec_frac}t", "500000001"),
            ("%{begin:msec_frac}t", "250"),
            ("%T", "1"),
            ("%{s}T", "1"),
            ("%{sec}T", "1"),
            ("%{ms}T", "1251"),
            ("%{msec}T", "1251"),
            ("%{us}T", "1250001"),
            ("%{usec}T", "1250001"),
            ("%{ns}T", "1250000001"),
            ("%{nsec}T", "1250000001"),
            ("%u", "alice"),
            ("%U", "/rewritten/p"),
            ("%v", "srv.example"),
            ("%V", "example.org"),
            ("%X", "+"),
            ("%{x}%", ""),
            ("%{x}l", ""),
            ("[%{msec}t.%{usec_frac}t] %T", "[1700000001501.500001] 1"),
        ] {
            assert_eq!(line(fmt, &r), want, "{fmt:?}");
        }
    }

    #[test]
    fn combined_formats_by_hand() {
        let r = req();
        assert_eq!(
            line(DEFAULT_FORMAT, &r),
            "192.0.2.7 example.org alice [14/Nov/2023:22:13:21 +0000] \
             \"GET /a%20b?x=1&y=\\\"q\\\" HTTP/1.1\" 200 1034 \"http://ref/\" \
             \"Mozilla/5.0 \\\"x\\\"\""
        );
        // Apache's combined format on a bare request: every absent value is "-".
        let bare = Req {
            req_headers: vec![],
            env: vec![],
            bytes_out: 0,
            ..req()
        };
        assert_eq!(
            line(
                "%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-Agent}i\"",
                &bare
            ),
            "192.0.2.7 - - [14/Nov/2023:22:13:21 +0000] \"GET /a%20b?x=1&y=\\\"q\\\" HTTP/1.1\" \
             200 - \"-\" \"-\""
        );
    }

    #[test]
    fn render_appends_without_touching_what_is_there() {
        let f = compile("%s").unwrap();
        let mut out = b"old\n".to_vec();
        render_with(&f, Escaping::Default, &req(), &mut out, utc_tm);
        render_with(&f, Escaping::Default, &req(), &mut out, utc_tm);
        assert_eq!(out, b"old\n200\n200\n");
    }

    #[test]
    fn absent_and_empty_values() {
        let r = Req {
            method: b"",
            protocol: b"",
            request_target: b"",
            target: b"",
            authority: b"",
            server_name: b"",
            physical_path: b"",
            req_headers: vec![],
            resp_headers: vec![],
            env: vec![],
            bytes_in: 0,
            bytes_out: 0,
            count: 1,
            ..req()
        };
        for (fmt, want) in [
            ("%V|%v|%f|%u", "-|-|-|-"),
            ("%{Referer}i|%{X}o|%{FOO}e", "-|-|-"),
            // Cookie, path and query print nothing rather than "-", as in lighttpd.
            ("%{a}C|%U|%q|%m|%H", "||||"),
            ("[%r]", "[  ]"),
            ("%b|%O|%I", "-|-|-"),
            ("%k", "0"),
        ] {
            assert_eq!(line(fmt, &r), want, "{fmt:?}");
        }
        // A response that was only a head: %b is 0, not "-" and not negative.
        let head_only = Req {
            bytes_out: 150,
            header_len: 200,
            ..req()
        };
        assert_eq!(line("%b %O", &head_only), "0 150");
        let first = Req { count: 0, ..req() };
        assert_eq!(line("%k", &first), "0");
    }

    #[test]
    fn connection_status() {
        for (conn, want) in [
            (ConnStatus::Aborted, "X"),
            (ConnStatus::Close, "-"),
            (ConnStatus::KeepAlive, "+"),
        ] {
            assert_eq!(line("%X", &Req { conn, ..req() }), want);
        }
    }

    #[test]
    fn durations_round_up_and_backwards_clocks_log_minus_one() {
        let at = |start, end| Req {
            start,
            end,
            ..req()
        };
        let r = at((100, 999_999_999), (101, 0)); // 1 ns
        assert_eq!(line("%T %{ms}T %D %{ns}T", &r), "1 1 1 1");
        let r = at((100, 0), (100, 0));
        assert_eq!(line("%T %{ms}T %D %{ns}T", &r), "0 -1 -1 -1");
        let r = at((100, 5), (99, 0));
        assert_eq!(line("%T %{ms}T %D", &r), "-1 -1 -1");
        let r = at((100, 0), (102, 3_000_000));
        assert_eq!(line("%T %{ms}T %D", &r), "2 2003 2003000");
    }

    #[test]
    fn fractions_are_zero_padded_and_stay_below_one_second() {
        let r = Req {
            end: (7, 5_000_000),
            ..req()
        };
        assert_eq!(
            line("%{msec_frac}t %{usec_frac}t %{nsec_frac}t", &r),
            "005 005000 005000000"
        );
        let r = Req {
            end: (7, 999_999_999),
            ..req()
        };
        assert_eq!(
            line("%{msec_frac}t %{usec_frac}t %{nsec_frac}t %{msec}t", &r),
            "999 999999 999999999 8000"
        );
        let r = Req {
            end: (7, 0),
            ..req()
        };
        assert_eq!(line("%{msec_frac}t %{usec}t", &r), "000 7000000");
    }

    #[test]
    fn default_escaping() {
        let r = Req {
            req_headers: vec![(
                "X",
                b"a\"b\\c\x07\x08\t\n\x0b\x0c\r\x00\x1b\x7f\x80\xff \xc3\xa9~",
            )],
            ..req()
        };
        assert_eq!(
            line("%{X}i", &r),
            r#"a\"b\\c\a\b\t\n\v\f\r\x00\x1B\x7F\x80\xFF \xC3\xA9~"#
        );
        // Printable ASCII passes untouched.
        let printable: Vec<u8> = (0x20u8..0x7f)
            .filter(|&c| c != b'"' && c != b'\\')
            .collect();
        let mut out = Vec::new();
        escape(&mut out, &printable, Escaping::Default);
        assert_eq!(out, printable);
    }

    #[test]
    fn json_escaping() {
        let r = Req {
            req_headers: vec![(
                "X",
                b"a\"b\\c\x07\x08\t\n\x0b\x0c\r\x00\x1b\x7f\x80\x9f\xa0\xff \xc3\xa9~",
            )],
            ..req()
        };
        let want = "a\\\"b\\\\c\\a\\b\\t\\n\\v\\f\\r\\u0000\\u001B\\u007F\\u0080\\u009F";
        let mut want = want.as_bytes().to_vec();
        want.extend_from_slice(b"\xa0\xff \xc3\xa9~");
        let f = compile("%{X}i").unwrap();
        let esc = Escaping::from_config("json");
        assert_eq!(esc, Escaping::Json);
        let mut out = Vec::new();
        render_with(&f, esc, &r, &mut out, utc_tm);
        want.push(b'\n');
        assert_eq!(out, want);
        // Only the exact word selects JSON.
        assert_eq!(Escaping::from_config("JSON"), Escaping::Default);
        assert_eq!(Escaping::from_config("default"), Escaping::Default);
    }

    #[test]
    fn escaping_covers_every_client_controlled_field() {
        let nasty: &'static [u8] = b"\"\n";
        let r = Req {
            method: nasty,
            protocol: nasty,
            request_target: nasty,
            target: b"\"\n?\"\n",
            authority: nasty,
            server_name: nasty,
            physical_path: nasty,
            req_headers: vec![("H", nasty), ("Cookie", b"c=\"\n")],
            resp_headers: vec![("H", nasty)],
            env: vec![("E", nasty), ("REMOTE_USER", nasty)],
            ..req()
        };
        let fmt = "%m %H %r %U %q %V %v %f %{H}i %{c}C %{H}o %{E}e %u";
        let got = line(fmt, &r);
        assert!(!got.contains('\n'), "{got:?}");
        assert_eq!(got.matches("\\\"\\n").count(), 15, "{got:?}");
    }

    #[test]
    fn cookies_as_lighttpd_reads_them() {
        for (header, name, want) in [
            (&b"a=1"[..], "a", Some(&b"1"[..])),
            (b"a=1; b=2", "b", Some(b"2")),
            (b"b=2;a=1", "a", Some(b"1")),
            (b"b=1;;a=2", "a", Some(b"2")),
            (b"ab=1; a=2", "a", Some(b"2")),
            (b"\t a=x y  \t; b=3", "a", Some(b"x y")),
            (b"a=   ;", "a", Some(b" ")),
            (b"a=; b=2", "a", None),
            (b"a=", "a", None),
            (b"  a = 1", "a", None),
            // A blank after a name ends the search.
            (b"x y=1; a=2", "a", None),
            (b"a=1 b=2", "b", None),
            (b"a=1\0; b=2", "b", None),
            (b"", "a", None),
            (b";;;;", "a", None),
        ] {
            assert_eq!(cookie(header, name), want, "{:?} {name}", header);
        }
    }

    #[test]
    fn unix_and_ipv6_sockets() {
        let r = Req {
            remote: SockAddr::Unix(b"/run/lightd.sock"),
            local: SockAddr::Unix(b"/run/lightd.sock"),
            ..req()
        };
        assert_eq!(
            line("%a|%{mask}a|%{remote}p|%A|%p", &r),
            "/run/lightd.sock|/run/lightd.sock|0|/run/lightd.sock|"
        );
        let r = Req {
            remote: SockAddr::Ip("[2001:db8::1]:443".parse().unwrap()),
            local: SockAddr::Ip("[::]:80".parse().unwrap()),
            ..req()
        };
        assert_eq!(
            line("%a|%{mask}a|%{remote}p|%A|%p", &r),
            "2001:db8::1|2001:db8::|443|[::]|80"
        );
    }

    #[test]
    fn masked_addresses() {
        for (ip, want) in [
            ("198.51.100.9", "198.51.100.0"),
            ("10.0.0.0", "10.0.0.0"),
            ("1:2:3:4:5:6:7:8", "1:2:3::"),
            ("2001:db8:aaaa:bbbb::1", "2001:db8:aaaa::"),
            ("2001:db8::1", "2001:db8::"),
            ("2001::", "2001::"),
            ("::1", "::"),
            ("::ffff:198.51.100.9", "::ffff:198.51.100.0"),
            ("::1.2.3.4", "::"),
        ] {
            let ip: IpAddr = ip.parse().unwrap();
            let mut out = Vec::new();
            push_masked(&mut out, ip);
            assert_eq!(String::from_utf8(out).unwrap(), want, "{ip}");
        }
    }

    #[test]
    fn ipv6_text_matches_glibc() {
        for (ip, want) in [
            ("::", "::"),
            ("::1", "::1"),
            ("1::", "1::"),
            ("::1.2.3.4", "::1.2.3.4"),
            ("::ffff:1.2.3.4", "::ffff:1.2.3.4"),
            ("::ffff:0:1.2.3.4", "::ffff:0:102:304"),
            ("1:0:0:1:0:0:0:1", "1:0:0:1::1"),
            ("1:0:1:0:1:0:1:0", "1:0:1:0:1:0:1:0"),
            ("0:0:0:0:0:1:0:0", "::1:0:0"),
            ("0:0:1:0:0:0:0:0", "0:0:1::"),
            ("1:0:0:2:0:0:3:4", "1::2:0:0:3:4"),
            ("2001:DB8:0:0:0:0:0:ABCD", "2001:db8::abcd"),
            ("fe80::0102:0a0b", "fe80::102:a0b"),
        ] {
            let a: Ipv6Addr = ip.parse().unwrap();
            let mut out = Vec::new();
            push_ipv6(&mut out, &a);
            assert_eq!(String::from_utf8(out).unwrap(), want, "{ip}");
        }
        // Whatever the zero pattern, the text reads back as the same address.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..2000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let mut g = [0u16; 8];
            for (i, w) in g.iter_mut().enumerate() {
                *w = if (x >> (i * 2)) & 3 == 0 { x as u16 } else { 0 };
                x = x.rotate_left(9);
            }
            let a = Ipv6Addr::from(g);
            let mut out = Vec::new();
            push_ipv6(&mut out, &a);
            let text = String::from_utf8(out).unwrap();
            assert_eq!(text.parse::<Ipv6Addr>().ok(), Some(a), "{text}");
        }
    }

    fn strf(fmt: &str, t: i64) -> String {
        let mut out = Vec::new();
        strftime(&mut out, fmt.as_bytes(), &utc_tm(t).unwrap());
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn strftime_directives_as_glibc() {
        // Expected lines from glibc's strftime in the C locale.
        let fmt = "%a %A %b %h %B %C %d %e %G %g %H %I %j %k %l %m %M %p %P %S %u %U %V %w %W \
                   %y %Y %s";
        for (t, want) in [
            (1700000000, "Tue Tuesday Nov Nov November 20 14 14 2023 23 22 10 318 22 10 11 13 PM pm 20 2 46 46 2 46 23 2023 1700000000"),
            (1609632309, "Sun Sunday Jan Jan January 20 03  3 2020 20 00 12 003  0 12 01 05 AM am 09 7 01 53 0 00 21 2021 1609632309"),
            (1735560000, "Mon Monday Dec Dec December 20 30 30 2025 25 12 12 365 12 12 12 00 PM pm 00 1 52 01 1 53 24 2024 1735560000"),
            (1451649599, "Fri Friday Jan Jan January 20 01  1 2015 15 11 11 001 11 11 01 59 AM am 59 5 00 53 5 00 16 2016 1451649599"),
            (1798765323, "Fri Friday Jan Jan January 20 01  1 2026 26 01 01 001  1  1 01 02 AM am 03 5 00 53 5 00 27 2027 1798765323"),
            (1262264400, "Thu Thursday Dec Dec December 20 31 31 2009 09 13 01 365 13  1 12 00 PM pm 00 4 52 53 4 52 09 2009 1262264400"),
            (1262563199, "Sun Sunday Jan Jan January 20 03  3 2009 09 23 11 003 23 11 01 59 PM pm 59 7 01 53 0 00 10 2010 1262563199"),
            (951808089, "Tue Tuesday Feb Feb February 20 29 29 2000 00 07 07 060  7  7 02 08 AM am 09 2 09 09 2 09 00 2000 951808089"),
            (0, "Thu Thursday Jan Jan January 19 01  1 1970 70 00 12 001  0 12 01 00 AM am 00 4 00 01 4 00 70 1970 0"),
        ] {
            assert_eq!(strf(fmt, t), want, "{t}");
        }
        let t = 1700000000;
        for (fmt, want) in [
            ("%c", "Tue Nov 14 22:13:20 2023"),
            ("%x %X", "11/14/23 22:13:20"),
            (
                "%D %F %R %r %T",
                "11/14/23 2023-11-14 22:13 10:13:20 PM 22:13:20",
            ),
            ("%n%t%%", "\n\t%"),
            ("%z %Z", "+0000 UTC"),
            ("[%d/%b/%Y:%T %z]", "[14/Nov/2023:22:13:20 +0000]"),
            ("%^a %^B %^c", "TUE NOVEMBER TUE NOV 14 22:13:20 2023"),
            ("%Ey %Od %OH %EY", "23 14 22 2023"),
            // Unknown directives, widths and '#' are copied through, as is a trailing '%'.
            ("%Q %5d %#Z %E", "%Q %5d %#Z %E"),
            ("x%", "x%"),
            ("x%-", "x%-"),
            ("no directives", "no directives"),
        ] {
            assert_eq!(strf(fmt, t), want, "{fmt:?}");
        }
        // Padding flags, on 2021-01-03 00:05:09 (day 3, hour 0).
        let t = 1609632309;
        for (fmt, want) in [
            ("%d|%-d|%_d|%0d", "03|3| 3|03"),
            ("%e|%-e|%0e", " 3|3|03"),
            ("%k|%-k|%0k|%l|%-l", " 0|0|00|12|12"),
            ("%j|%-j|%_j", "003|3|  3"),
            ("%-_d|%_-d|%0_d", " 3|3| 3"),
        ] {
            assert_eq!(strf(fmt, t), want, "{fmt:?}");
        }
    }

    #[test]
    fn time_zone_offsets() {
        let mut tm = utc_tm(1700000000).unwrap();
        for (off, want) in [
            (0, "+0000"),
            (5 * 3600 + 1800, "+0530"),
            (-3 * 3600, "-0300"),
            (-1800, "-0030"),
            (14 * 3600, "+1400"),
        ] {
            tm.gmtoff = off;
            let mut out = Vec::new();
            strftime(&mut out, b"%z", &tm);
            assert_eq!(String::from_utf8(out).unwrap(), want, "{off}");
        }
        tm.zone[..4].copy_from_slice(b"CEST");
        tm.zone_len = 4;
        let mut out = Vec::new();
        strftime(&mut out, b"%Z %^Z", &tm);
        assert_eq!(out, b"CEST CEST");
    }

    #[test]
    fn local_time_agrees_with_utc_shifted_by_its_offset() {
        for t in [
            0,
            951808089,
            1609632309,
            1700000000,
            1719835200,
            2_000_000_000,
        ] {
            let local = local_tm(t).expect("localtime_r");
            assert!(local.gmtoff.abs() < 86_400, "{t}: {}", local.gmtoff);
            assert!(local.zone_len > 0, "{t}: no zone name");
            let mut shifted = utc_tm(t + local.gmtoff).unwrap();
            shifted.t = t;
            shifted.gmtoff = local.gmtoff;
            shifted.zone = local.zone;
            shifted.zone_len = local.zone_len;
            assert_eq!(local, shifted, "{t}");
        }
    }

    #[test]
    fn overlong_time_stamp_is_dropped() {
        let fmt = format!("%{{{}}}t|", "%A".repeat(600)); // 4200 bytes
        assert_eq!(line(&fmt, &req()), "|");
        let fmt = format!("%{{{}}}t|", "%A".repeat(585)); // 4095 bytes fit
        assert_eq!(line(&fmt, &req()), format!("{}|", "Tuesday".repeat(585)));
    }

    #[test]
    fn backslash_escapes_in_the_format() {
        let r = req();
        assert_eq!(
            line(r#"a\tb\"c\\d\qe\a\b\f\r\v%s\"#, &r),
            "a\tb\"c\\dqe\x07\x08\x0c\r\x0b200"
        );
        // Escapes are resolved before parsing: "\%" starts a directive.
        assert_eq!(line(r"\%s", &r), "200");
    }

    #[test]
    fn compile_errors() {
        for (fmt, part) in [
            ("", "empty"),
            ("%", "must be followed"),
            ("abc%", "must be followed"),
            ("%>", "must be followed"),
            ("%{abc}", "must be followed"),
            ("%Z", "%Z"),
            ("%y", "%y"),
            ("%é", "%é"),
            ("%>{x}i", "%{"),
            ("%{}i", "%{...}"),
            ("%{abc", "%{...}"),
            ("%{x}a", "%{mask}a"),
            ("%{x}h", "%{mask}a"),
            ("%{x}p", "%{canonical,local,remote}p"),
            ("%{min}T", "invalid time unit in %{min}T"),
            ("%{bogus}t", "constant string"),
            ("%{begin:}t", "constant string"),
            ("%{end:msecs}t", "constant string"),
            ("%t %t", "twice"),
            ("%t %{sec}t", "twice"),
            ("%{begin:sec}t %{end:%s}t", "twice"),
        ] {
            let e = compile(fmt).expect_err(fmt);
            assert!(e.contains(part), "{fmt:?}: {e}");
        }
        for ok in [
            "%t %{msec}t %{usec_frac}t %{begin:nsec}t %{begin:msec_frac}t",
            "%{sec}t %{nsec}t",
            "%{%s}t",
        ] {
            assert!(compile(ok).is_ok(), "{ok:?}");
        }
    }

    #[test]
    fn at_most_127_pieces() {
        let ok = |f: &str| compile(f).map(|c| c.fields().len());
        assert_eq!(ok(&"%s".repeat(127)), Ok(127));
        assert!(ok(&"%s".repeat(128)).unwrap_err().contains("too many"));
        assert_eq!(ok(&format!("{}x", "%s".repeat(126))), Ok(127));
        assert!(ok(&format!("{}x", "%s".repeat(127))).is_err());
        // "%%" and "%l" merge into the literal before them and take no piece...
        assert_eq!(ok(&format!("{}%%%l%%", "%s%%".repeat(63))), Ok(126));
        assert_eq!(ok(&format!("{}%s", "%s%%".repeat(63))), Ok(127));
        // ...but lighttpd checks for room before it knows that.
        assert!(ok(&format!("{}%s%%", "%s%%".repeat(63))).is_err());
        assert!(ok(&format!("{}%s%l", "%s%%".repeat(63))).is_err());
    }

    #[test]
    fn literals_are_merged_and_nameless_fields_print_nothing() {
        let f = compile("a%%b%lc%i%Cd").unwrap();
        assert_eq!(
            f.fields(),
            vec![
                Field::Literal("a%b-c".into()),
                Field::Nothing,
                Field::Nothing,
                Field::Literal("d".into()),
            ]
        );
        assert_eq!(line("a%%b%lc%i%Cd", &req()), "a%b-cd");
    }

    #[test]
    fn default_format_is_lighttpds() {
        let f = compile(DEFAULT_FORMAT).unwrap();
        assert_eq!(f.text(), DEFAULT_FORMAT);
        assert_eq!(f.fields().first(), Some(&Field::RemoteAddr { mask: false }));
        assert!(f.fields().contains(&Field::Host));
        assert!(f.fields().contains(&Field::User));
    }
}
