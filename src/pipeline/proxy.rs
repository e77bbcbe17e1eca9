//! mod_proxy and mod_wstunnel on the backend path: which upstream takes a request and what is
//! sent to it, idle upstream connections reused, and the parts of a response that are theirs
//! alone: URLs mapped back, a 101 that turns the request into a tunnel, and the WebSocket
//! handshake, which lightd answers itself once the backend is connected.
//!
//! Both modules take requests in uri_clean by their URL path and never look for a local file
//! (lighttpd's `gw_check_extension` with check-local off); mod_wstunnel only takes WebSocket
//! upgrades (GET, HTTP/1.1, `Upgrade: websocket`, `Connection: upgrade`). The request head
//! is built when the request is chosen ([`crate::http::proxy`]) and sent when the backend
//! starts; a body with a Content-Length streams to the upstream as it arrives, a chunked one
//! is spooled first so that the upstream gets its length, as lighttpd does when it buffers.
//!
//! Unlike lighttpd, which closes every upstream connection after one request, lightd keeps a
//! connection whose response was cleanly delimited for the next request to the same host
//! (`backend::upstream`). One that turns out to have been closed by the upstream while it
//! idled is detected before use, and a request that fails on a reused connection before any of
//! its body was sent is sent again once on a new connection.

use std::rc::Rc;
use std::time::Instant;

use crate::backend::connect;
use crate::backend::job::{Job, Wire};
use crate::backend::spool::Spool;
use crate::config::gateway::{GwConf, GwHost};
use crate::config::ReqConf;
use crate::ctx::{Bufs, Ctx};
use crate::handlers::Seg;
use crate::http::gw_head::GwHead;
use crate::http::request::{self, Head, Method, Version};
use crate::http::response;

use super::backend::{Gw, Plan, Resp, Turn};
use super::tunnel::Tunnel;
use super::{ConnInfo, Exchange};

/// What a proxied request keeps while a backend serves it.
pub struct Up {
    pub host: Rc<GwHost>,
    /// The request became a tunnel (after a 101).
    pub tunnel: Option<Tunnel>,
    /// mod_wstunnel: the handshake to answer once the backend is connected.
    #[cfg(feature = "wstunnel")]
    ws: Option<WsAccept>,
    /// mod_proxy's response mapping (map-urlpath, map-host-response), when configured.
    #[cfg(feature = "proxy")]
    map: Option<Box<MapCtx>>,
    /// The request allows the upstream connection to carry another one (HTTP/1.1 went out,
    /// nothing is being upgraded).
    #[cfg_attr(not(feature = "proxy"), allow(dead_code))]
    keep: bool,
    /// The response allows it too: its version and Connection, and a delimited body.
    resp_keep: bool,
    /// The upstream sent bytes past the end of its response: the connection is not reused.
    pub overrun: bool,
    /// The client's Upgrade went upstream: a 101 opens a tunnel.
    upgrade: bool,
    /// The connection came from the idle pool, and the request as sent, to send it again
    /// on a new connection if the reused one turns out to be dead.
    resend: Option<Vec<u8>>,
    /// The connection's slab key, to register a new upstream socket under.
    key: usize,
    /// The request counts against its host's load while it lives.
    #[cfg(feature = "proxy")]
    _load: Option<crate::backend::upstream::Load>,
}

#[cfg(feature = "proxy")]
struct MapCtx {
    opts: Rc<crate::config::gateway::ProxyHeader>,
    http_host: Option<Vec<u8>>,
    https_remap: bool,
    st: crate::http::proxy::MapState,
}

#[cfg(feature = "wstunnel")]
struct WsAccept {
    accept: [u8; 28],
    subprotocol: Option<&'static str>,
    binary: bool,
    ping_interval: u32,
}

/// How the head sent upstream ends.
#[cfg_attr(not(feature = "proxy"), allow(dead_code))]
enum Length {
    /// The client's Content-Length (if any) went with the fields.
    AsSent,
    /// `Content-Length: 0`: a body-less request whose method expects a body (lighttpd).
    Zero,
    /// A chunked body, spooled: its length once it is complete.
    Spooled,
}

/// A request mod_proxy or mod_wstunnel takes.
pub struct ProxyPlan {
    up: Up,
    /// The request head without its end (empty for mod_wstunnel, which sends only payload).
    head: Vec<u8>,
    length: Length,
}

impl ProxyPlan {
    /// Whether the body goes upstream as it arrives (it has a length of its own).
    pub fn streams(&self) -> bool {
        !matches!(self.length, Length::Spooled)
    }
}

impl Up {
    fn new(host: &Rc<GwHost>) -> Up {
        Up {
            host: Rc::clone(host),
            tunnel: None,
            #[cfg(feature = "wstunnel")]
            ws: None,
            #[cfg(feature = "proxy")]
            map: None,
            keep: false,
            resp_keep: false,
            overrun: false,
            upgrade: false,
            resend: None,
            key: 0,
            #[cfg(feature = "proxy")]
            _load: None,
        }
    }

    fn module(&self) -> &'static str {
        #[cfg(feature = "wstunnel")]
        if self.ws.is_some() {
            return "wstunnel";
        }
        "proxy"
    }
}

/// What mod_extforward decided, which the forwarding fields report.
#[cfg_attr(not(feature = "proxy"), allow(dead_code))]
pub(super) struct Fwd<'a> {
    pub scheme: Option<&'static str>,
    pub host: Option<&'a str>,
}

/// The hosts of the `*.server` entry that takes `path` (`*.map-extensions` first, then the
/// first entry whose key is a prefix of the path, for keys starting with '/', or a suffix).
fn entry<'a>(gw: &'a GwConf, path: &str) -> Option<&'a [Rc<GwHost>]> {
    let mapped = gw
        .map_extensions
        .iter()
        .find(|(from, _)| path.ends_with(from.as_str()))
        .and_then(|(_, to)| gw.exts.iter().find(|e| e.key == *to));
    let ext = mapped.or_else(|| {
        gw.exts.iter().find(|e| {
            if e.key.starts_with('/') {
                path.starts_with(e.key.as_str())
            } else {
                path.ends_with(e.key.as_str())
            }
        })
    })?;
    Some(&ext.hosts)
}

/// The host to use among `hosts`, by `*.balance`; None when every one is down.
fn pick<'a>(
    ctx: &mut Ctx,
    gw: &GwConf,
    hosts: &'a [Rc<GwHost>],
    path: &str,
    authority: &[u8],
    peer: &str,
) -> Option<&'a Rc<GwHost>> {
    #[cfg(feature = "proxy")]
    {
        use crate::backend::upstream::{djb, DJB_INIT};
        use crate::config::gateway::Balance;
        let base = match gw.balance {
            Balance::Hash => djb(
                &authority.to_ascii_lowercase(),
                djb(path.as_bytes(), DJB_INIT),
            ),
            Balance::Sticky => djb(peer.as_bytes(), DJB_INIT),
            _ => 0,
        };
        ctx.upstreams.pick(hosts, gw.balance, base, ctx.now)
    }
    #[cfg(not(feature = "proxy"))]
    {
        let _ = (ctx, gw, path, authority, peer);
        hosts.first()
    }
}

/// mod_wstunnel, then mod_proxy: whether one takes the request, and what to start. Err is the
/// status to answer with (no host up: 503; a handshake refused: 400 or 403).
#[allow(clippy::too_many_arguments)]
pub(super) fn select(
    ctx: &mut Ctx,
    ex: &Exchange,
    b: &Bufs,
    rlen: usize,
    conn: &ConnInfo,
    head: &Head,
    conf: &ReqConf,
    target: Option<&str>,
    fwd: &Fwd,
) -> Option<Result<Plan, u16>> {
    let buf = &b.rbuf[..rlen];
    let headers = &b.headers[..head.header_count.min(b.headers.len())];
    let host_field = fwd
        .host
        .map(str::as_bytes)
        .or_else(|| head.host.map(|h| h.get(buf)));
    #[cfg(feature = "wstunnel")]
    if !conf.wstunnel.exts.is_empty()
        && head.method == Method::Get
        && head.version == Version::Http11
    {
        use crate::http::websocket;
        let hdr = |n: &str| request::header(buf, headers, n);
        let f = websocket::UpgradeFields {
            upgrade: hdr("Upgrade"),
            connection: hdr("Connection"),
            key: hdr("Sec-WebSocket-Key"),
            version: hdr("Sec-WebSocket-Version"),
            origin: hdr("Origin"),
            protocol: hdr("Sec-WebSocket-Protocol"),
        };
        if websocket::is_upgrade(&f) {
            if let Some(hosts) = entry(&conf.wstunnel, &b.path) {
                let gw = &conf.wstunnel;
                let peer = conn.peer_ip;
                let authority = host_field.unwrap_or_default();
                let Some(host) = pick(ctx, gw, hosts, &b.path, authority, peer) else {
                    log::error!("wstunnel: all hosts for {} are down", b.path);
                    return Some(Err(503));
                };
                if host_field.map_or(true, <[u8]>::is_empty) {
                    return Some(Err(400));
                }
                if head.chunked || head.content_length.is_some_and(|n| n > 0) {
                    // The tunnel's bytes would follow a body lightd would have to skip.
                    log::debug!("wstunnel: a WebSocket handshake with a body; refused");
                    return Some(Err(400));
                }
                let hs = match websocket::handshake(&f, &gw.ws_origins) {
                    Ok(hs) => hs,
                    Err(e) => {
                        log::debug!("wstunnel: handshake refused: {}", e);
                        return Some(Err(e.status()));
                    }
                };
                let mut up = Up::new(host);
                up.ws = Some(WsAccept {
                    accept: hs.accept,
                    subprotocol: hs.subprotocol,
                    binary: gw.ws_binary || hs.binary(),
                    ping_interval: gw.ws_ping_interval,
                });
                #[cfg(feature = "proxy")]
                {
                    up._load = Some(ctx.upstreams.load(host.index));
                }
                let plan = ProxyPlan {
                    up,
                    head: Vec::new(),
                    length: Length::AsSent,
                };
                return Some(Ok(Plan::Proxy(Box::new(plan))));
            }
        }
    }
    #[cfg(feature = "proxy")]
    if !conf.proxy.exts.is_empty() {
        let hosts = entry(&conf.proxy, &b.path)?;
        let gw = &conf.proxy;
        let authority = host_field.unwrap_or_default();
        let Some(host) = pick(ctx, gw, hosts, &b.path, authority, conn.peer_ip) else {
            log::error!("proxy: all hosts for {} are down", b.path);
            return Some(Err(503));
        };
        if head.method == Method::Connect {
            // lighttpd's proxy.header "connect" tunnels CONNECT; lightd does not.
            return Some(Err(405));
        }
        return Some(Ok(proxy_plan(
            ctx, ex, buf, headers, conn, head, conf, target, fwd, host,
        )));
    }
    let _ = (ctx, ex, conn, target, host_field, headers);
    None
}

/// Build mod_proxy's request for `host`.
#[cfg(feature = "proxy")]
#[allow(clippy::too_many_arguments)]
fn proxy_plan(
    ctx: &mut Ctx,
    ex: &Exchange,
    buf: &[u8],
    headers: &[request::Header],
    conn: &ConnInfo,
    head: &Head,
    conf: &ReqConf,
    target: Option<&str>,
    fwd: &Fwd,
    host: &Rc<GwHost>,
) -> Plan {
    use crate::http::proxy as wire;
    let gw = &conf.proxy;
    let opts = &gw.proxy_header;
    // The request's fields as mod_setenv left them.
    #[cfg_attr(not(feature = "setenv"), allow(unused_mut))]
    let mut fields: Vec<(&[u8], &[u8])> = headers
        .iter()
        .map(|h| (h.name.get(buf), h.value.get(buf)))
        .collect();
    #[cfg(feature = "setenv")]
    crate::modules::setenv::request_fields(conf, &mut fields);
    // The target as lighttpd holds it after parsing: normalised (unreserved characters
    // decoded, hex upper-cased, dot segments removed), after any rewrite.
    let raw_target = target.map_or_else(|| head.target.get(buf), str::as_bytes);
    let mut normal = String::new();
    let target: &[u8] = match crate::config::urlrules::match_target(raw_target, &mut normal) {
        Ok(()) => normal.as_bytes(),
        Err(_) => raw_target,
    };
    let sent_host = head.host.map(|h| h.get(buf));
    let http_host = fwd.host.map(str::as_bytes).or(sent_host);
    let scheme = fwd.scheme.unwrap_or(conn.scheme);
    let has_body = head.chunked || head.content_length.is_some_and(|n| n > 0);
    // lighttpd's upgrade policy: an Upgrade goes upstream only when allowed, from an
    // HTTP/1.1 client, on a request without a body.
    let upgrade = (opts.upgrade || host.upgrade)
        && head.version == Version::Http11
        && !has_body
        && request::header(buf, headers, "Upgrade").is_some();
    #[cfg(feature = "auth")]
    let remote_user = ex.remote_user.as_deref();
    #[cfg(not(feature = "auth"))]
    let remote_user = None;
    let _ = ex;
    let r = wire::Request {
        method: head.method.as_str(),
        target,
        client_http11: head.version == Version::Http11,
        force_http10: opts.force_http10,
        host: http_host,
        replace_host: gw.replace_http_host.then_some(host.id.as_str()),
        fields: &fields,
        upgrade,
        forwarded: gw.proxy_forwarded,
        client: wire::Client {
            peer: conn.peer.ip(),
            local: conn.local,
            proto: conn.scheme,
            host: sent_host,
            remote_user,
        },
        scheme,
    };
    let mapper = wire::Mapper {
        opts,
        http_host,
        https_remap: opts.https_remap && scheme == "https",
    };
    let mut st = wire::MapState::default();
    let mut out = Vec::with_capacity(head.len + 256);
    let keep = wire::write_head(&mut out, &r, &mapper, &mut st);
    let mut up = Up::new(host);
    up.keep = keep;
    // The Upgrade went out only on an HTTP/1.1 request (not forced to 1.0, with a Host).
    let http10 = opts.force_http10 || (http_host.is_none() && r.replace_host.is_none());
    up.upgrade = upgrade && !http10;
    if mapper.maps_response() {
        up.map = Some(Box::new(MapCtx {
            opts: Rc::clone(opts),
            http_host: http_host.map(<[u8]>::to_vec),
            https_remap: mapper.https_remap,
            st,
        }));
    }
    up._load = Some(ctx.upstreams.load(host.index));
    let length = if head.chunked {
        Length::Spooled
    } else if head.content_length.is_none() && !matches!(head.method, Method::Get | Method::Head) {
        Length::Zero
    } else {
        Length::AsSent
    };
    Plan::Proxy(Box::new(ProxyPlan {
        up,
        head: out,
        length,
    }))
}

/// Start a proxied request: an idle connection to its host when there is one, else a new
/// connection (a failure is 503, and the host is skipped for its disable-time).
pub(super) fn start(
    ctx: &mut Ctx,
    g: &mut Gw,
    p: ProxyPlan,
    body: Spool,
    key: usize,
) -> Result<Job, u16> {
    #[cfg_attr(not(feature = "proxy"), allow(unused_mut))]
    let ProxyPlan {
        mut up,
        mut head,
        length,
    } = p;
    up.key = key;
    #[cfg(feature = "wstunnel")]
    let ws = up.ws.is_some();
    #[cfg(not(feature = "wstunnel"))]
    let ws = false;
    if !ws {
        let len = match length {
            Length::AsSent => None,
            Length::Zero => Some(0),
            Length::Spooled => Some(body.total()),
        };
        #[cfg(feature = "proxy")]
        crate::http::proxy::end_head(&mut head, len);
        let _ = len;
    }
    #[cfg(feature = "proxy")]
    let idle = if up.keep && ctx.drain_started.is_none() {
        ctx.upstreams.take(up.host.index, ctx.now)
    } else {
        None
    };
    #[cfg(not(feature = "proxy"))]
    let idle: Option<std::os::fd::OwnedFd> = None;
    let (sock, connecting) = match idle {
        Some(fd) => {
            up.resend = Some(head.clone());
            (fd, false)
        }
        None => connect::connect(&up.host.addr).map_err(|e| {
            log::error!("{}: connecting to {}: {}", up.module(), up.host.addr, e);
            connect_failed(ctx, &up);
            503u16
        })?,
    };
    g.up = Some(Box::new(up));
    Ok(Job::socket(
        Wire::Raw,
        sock,
        connecting,
        head,
        body,
        ctx.now,
    ))
}

/// Connecting to the request's host failed: the balancer skips it for a while.
fn connect_failed(ctx: &mut Ctx, up: &Up) {
    #[cfg(feature = "proxy")]
    ctx.upstreams.failed(&up.host, ctx.now);
    let _ = (ctx, up);
}

/// The backend failed before its response began. A connect that failed is 503 (and the host
/// is skipped for a while). A reused connection the upstream had closed is replaced by a new
/// one and the request sent again, once, if none of its body was sent: Some(Turn::Progress).
/// None: the caller's usual failure.
pub(super) fn failed(ctx: &mut Ctx, g: &mut Gw, connecting: bool) -> Option<Turn> {
    let up = g.up.as_mut()?;
    if connecting {
        log::error!("{}: connecting to {} failed", up.module(), up.host.addr);
        connect_failed(ctx, up);
        return Some(Turn::Fail(503));
    }
    if g.state != Resp::Head || !g.resp.is_empty() {
        return None;
    }
    let job = g.job.as_mut()?;
    if !job.body_untouched() {
        return None;
    }
    let head = up.resend.take()?;
    log::debug!(
        "proxy: a kept upstream connection to {} was closed; sending again",
        up.host.addr
    );
    let (sock, connecting) = match connect::connect(&up.host.addr) {
        Ok(s) => s,
        Err(e) => {
            log::error!("proxy: connecting to {}: {}", up.host.addr, e);
            connect_failed(ctx, up);
            return Some(Turn::Fail(503));
        }
    };
    let body = job.take_body();
    let body_complete = job.body_complete;
    job.deregister(&ctx.registry);
    let mut fresh = Job::socket(Wire::Raw, sock, connecting, head, body, ctx.now);
    fresh.body_complete = body_complete;
    if let Err(e) = fresh.register(&ctx.registry, up.key) {
        log::error!("proxy: registering the upstream socket: {}", e);
        return Some(Turn::Fail(500));
    }
    g.job = Some(fresh);
    Some(Turn::Progress)
}

/// When the upstream has taken too long to accept the connection (`connect-timeout`); the
/// connection answers 504 then. (Its `read-timeout` is `Gw::read_timeout`'s, as for the other
/// gateways.)
pub fn deadline(ex: &Exchange) -> Option<Instant> {
    let g = ex.backend.as_ref()?;
    let up = g.up.as_ref()?;
    let job = g.job.as_ref()?;
    let t = up.host.connect_timeout;
    (job.connecting && !t.is_zero()).then(|| job.started + t)
}

/// The upstream's head is parsed: whether it lets the connection be reused, given that its
/// body is `delimited` (a length or chunked).
pub(super) fn on_head(g: &mut Gw, h: &GwHead, delimited: bool) {
    if let Some(up) = g.up.as_mut() {
        up.resp_keep = delimited && h.reusable();
    }
}

/// A response field's value mapped back for the client (Location, Content-Location,
/// Set-Cookie, by proxy.header). None: it goes as it is.
pub(super) fn map_field(g: &mut Gw, name: &[u8], value: &[u8]) -> Option<Vec<u8>> {
    #[cfg(feature = "proxy")]
    {
        let m = g.up.as_mut()?.map.as_mut()?;
        let mapper = crate::http::proxy::Mapper {
            opts: &m.opts,
            http_host: m.http_host.as_deref(),
            https_remap: m.https_remap,
        };
        if name.eq_ignore_ascii_case(b"Location") || name.eq_ignore_ascii_case(b"Content-Location")
        {
            return mapper.uri(&mut m.st, value, false);
        }
        if name.eq_ignore_ascii_case(b"Set-Cookie") {
            return mapper.set_cookie(&mut m.st, value);
        }
        None
    }
    #[cfg(not(feature = "proxy"))]
    {
        let _ = (g, name, value);
        None
    }
}

/// The response is complete: keep the upstream connection for the next request to its host
/// when both sides allow it and it ended cleanly.
pub(super) fn finished(ctx: &mut Ctx, g: &mut Gw) {
    #[cfg(feature = "proxy")]
    {
        let Some(up) = g.up.as_ref() else { return };
        if !up.keep || !up.resp_keep || up.overrun || up.tunnel.is_some() {
            return;
        }
        if ctx.drain_started.is_some() {
            // A drain keeps nothing for later.
            ctx.upstreams.clear();
            return;
        }
        let index = up.host.index;
        if let Some(fd) = g.job.as_mut().and_then(|j| j.take_socket(&ctx.registry)) {
            ctx.upstreams.put(index, fd, ctx.now);
        }
    }
    let _ = (ctx, g);
}

/// Whether the backend is a WebSocket server whose handshake is still to be answered.
pub(super) fn ws_waiting(state: &Resp, up: Option<&Up>) -> bool {
    #[cfg(feature = "wstunnel")]
    return *state == Resp::Head && up.is_some_and(|u| u.ws.is_some());
    #[cfg(not(feature = "wstunnel"))]
    {
        let _ = (state, up);
        false
    }
}

/// mod_wstunnel: the backend is connected, so the client gets its 101 with the handshake's
/// fields, and the request becomes a WebSocket tunnel.
pub(super) fn ws_accept(ctx: &mut Ctx, ex: &mut Exchange, b: &mut Bufs, head: &Head) -> Turn {
    #[cfg(feature = "wstunnel")]
    {
        let Some(g) = ex.backend.as_mut() else {
            return Turn::Fail(500);
        };
        let Some(up) = g.up.as_mut() else {
            return Turn::Fail(500);
        };
        let Some(a) = up.ws.take() else {
            return Turn::Fail(500);
        };
        b.hdrs.clear();
        response::header(&mut b.hdrs, "Upgrade", b"websocket");
        response::header(&mut b.hdrs, "Connection", b"upgrade");
        response::header(&mut b.hdrs, "Sec-WebSocket-Accept", &a.accept);
        if let Some(p) = a.subprotocol {
            response::header(&mut b.hdrs, "Sec-WebSocket-Protocol", p.as_bytes());
        }
        up.tunnel = Some(Tunnel::websocket(a.binary, a.ping_interval, ctx.now));
        switched(ctx, ex, b, head, None);
        Turn::Progress
    }
    #[cfg(not(feature = "wstunnel"))]
    {
        let _ = (ctx, ex, b, head);
        Turn::Fail(500)
    }
}

/// A 101 from an upstream: when the client's Upgrade was passed on, the client gets the
/// upstream's 101 and the request becomes a tunnel; anything after the head is the tunnel's
/// first bytes. Otherwise the upstream switched protocols nobody asked for: 502.
pub(super) fn upgraded(
    ctx: &mut Ctx,
    ex: &mut Exchange,
    b: &mut Bufs,
    head: &Head,
    raw: &[u8],
    h: &GwHead,
) -> Turn {
    let Some(up) = ex.backend.as_mut().and_then(|g| g.up.as_mut()) else {
        return Turn::Fail(502);
    };
    if !up.upgrade || h.field(raw, "Upgrade").is_none() {
        log::error!("proxy: {} switched protocols unasked", up.host.addr);
        return Turn::Fail(502);
    }
    b.hdrs.clear();
    const HOP: &[&str] = &[
        "Connection",
        "Keep-Alive",
        "Proxy-Connection",
        "Transfer-Encoding",
        "Content-Length",
        "TE",
        "Trailer",
        "Date",
    ];
    for f in &h.fields {
        let name = f.name.get(raw);
        if HOP.iter().any(|d| name.eq_ignore_ascii_case(d.as_bytes())) {
            continue;
        }
        if let Ok(n) = std::str::from_utf8(name) {
            response::header(&mut b.hdrs, n, f.value.get(raw));
        }
    }
    response::header(&mut b.hdrs, "Connection", b"upgrade");
    up.tunnel = Some(Tunnel::raw());
    switched(ctx, ex, b, head, Some(raw.get(h.len..).unwrap_or_default()));
    Turn::Progress
}

/// Queue the 101 whose fields are in `b.hdrs`, then `first` (bytes the upstream sent after
/// its head) for the client.
fn switched(ctx: &mut Ctx, ex: &mut Exchange, b: &mut Bufs, head: &Head, first: Option<&[u8]>) {
    let Some(g) = ex.backend.as_mut() else { return };
    g.state = Resp::Done;
    let conf = Rc::clone(&g.conf);
    ex.status = 101;
    // The connection goes on as the tunnel: no "Connection: close" in this head, whatever
    // keep-alive would have said; it closes when the tunnel ends.
    ex.persist = response::Persist::KeepAlive11;
    super::response_start(ctx, ex, b, head, &conf, None, true);
    let tag = if response::find(&b.hdrs, "Server").is_some() {
        String::new()
    } else {
        conf.server_tag.clone()
    };
    b.segs.push_back(Seg::Head(0, 0));
    let at = b.segs.len();
    super::write_head(ctx, ex, b, at, &tag, None);
    if let Some(first) = first.filter(|f| !f.is_empty()) {
        let from = b.wbuf.len();
        b.wbuf.extend_from_slice(first);
        b.segs.push_back(Seg::Mem(from, b.wbuf.len()));
    }
    ex.conf = Some(conf);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::gateway::{Addr, GwExt};

    fn host(port: u16) -> Rc<GwHost> {
        let mut h = GwHost::new("", Addr::Tcp("127.0.0.1".into(), port));
        h.index = port as usize;
        (h.min_procs, h.max_procs, h.check_local) = (1, 1, false);
        Rc::new(h)
    }

    #[test]
    fn entries_match_as_lighttpd_matches_them() {
        let gw = GwConf {
            exts: Rc::new([
                GwExt {
                    key: "/api".into(),
                    hosts: vec![host(1)],
                },
                GwExt {
                    key: ".php".into(),
                    hosts: vec![host(2)],
                },
                GwExt {
                    key: "".into(),
                    hosts: vec![host(3)],
                },
            ]),
            map_extensions: vec![
                (".php5".into(), ".php".into()),
                (".x".into(), ".none".into()),
            ],
            ..GwConf::default()
        };
        let port = |p: &str| entry(&gw, p).map(|h| h[0].index);
        // A "/" key is a prefix of the path (not of a segment only, as in lighttpd).
        assert_eq!(port("/api/v1"), Some(1));
        assert_eq!(port("/apix"), Some(1));
        // Others are suffixes; "" takes everything left.
        assert_eq!(port("/a/index.php"), Some(2));
        assert_eq!(port("/a/index.php5"), Some(2));
        assert_eq!(port("/a/index.html"), Some(3));
        // A mapping to no entry falls back to the usual match.
        assert_eq!(port("/a/b.x"), Some(3));
        let none = GwConf {
            exts: Rc::new([GwExt {
                key: "/only".into(),
                hosts: vec![host(4)],
            }]),
            ..GwConf::default()
        };
        assert!(entry(&none, "/other").is_none());
    }
}
