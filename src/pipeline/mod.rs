//! The request pipeline: what happens between a parsed head and a response ready to send, in
//! lighttpd's phases and lighttpd's order.
//!
//! 1. uri_raw: modules that look at the request as sent;
//! 2. conditions and settings: which `$HTTP[...]` blocks apply, and the merged settings
//!    (evaluated again after an internal restart);
//! 3. uri_clean: modules that decide on the normalised path;
//! 4. docroot: which document root serves the request;
//! 5. physical: where the path lives on disk, and the checks on it;
//! 6. handler selection, and 7. the handler, which describes the response;
//! 8. response start: modules that edit the response head; then the head is serialized once;
//! 9. request done ([`done`]): the access log.
//!
//! Modules are compiled in (cargo features) and switched on by `server.modules`; each phase
//! calls the enabled ones in a fixed order. Nothing is boxed per request: a request that no
//! module touches costs a few branches.

#[cfg(feature = "accesslog")]
mod accesslog;
#[cfg(feature = "backend")]
pub mod backend;
#[cfg(feature = "deflate")]
pub mod deflate;
mod exchange;
#[cfg(any(feature = "proxy", feature = "wstunnel"))]
pub mod proxy;
#[cfg(any(feature = "proxy", feature = "wstunnel"))]
pub mod tunnel;

pub use exchange::{BodyState, Exchange};

use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;

#[cfg(any(feature = "redirect", feature = "rewrite"))]
use crate::config::urlrules::{self, UrlParts};
use crate::config::{CondField, CondInput, ReqConf};
use crate::ctx::{Bufs, Ctx};
use crate::handlers::{self, Reply, Request, Seg};
use crate::http::request::{self, Head, Header, Method};
use crate::http::{path, response};
use crate::modules;

/// What the pipeline knows about the connection a request came on.
pub struct ConnInfo<'a> {
    pub peer: SocketAddr,
    /// The peer's address as text, for `$HTTP["remote-ip"]`.
    pub peer_ip: &'a str,
    /// The address of the listener it arrived on.
    pub local: SocketAddr,
    /// Requests this connection has carried, this one included.
    pub requests: u32,
    /// "https" on a TLS listener, else "http".
    pub scheme: &'static str,
    /// The established TLS session, for the backends' SSL_* environment.
    #[cfg(feature = "tls")]
    pub tls: Option<&'a rustls::ServerConnection>,
    /// The `ssl.*` settings its handshake was made with.
    #[cfg(feature = "tls")]
    pub tls_conf: Option<&'a crate::config::ssl::SslConf>,
}

/// A fresh [`Reply`] over the exchange's buffers. A macro rather than a function so that the
/// borrows stay per field: the handler reads the request from the same `Bufs` meanwhile.
macro_rules! reply {
    ($ctx:expr, $ex:expr, $b:expr) => {
        Reply {
            hdrs: &mut $b.hdrs,
            wbuf: &mut $b.wbuf,
            segs: &mut $b.segs,
            file: &mut $ex.file,
            fs_path: &mut $b.fs_path,
            ranges: &mut $b.ranges,
            scratch: &mut $b.scratch,
            cache: &mut $ctx.cache,
            now: $ctx.now_secs,
            head_only: $ex.head_only,
            status: 0,
            content_length: None,
            body_len: 0,
            mtime: None,
            compressed: None,
        }
    };
}

/// Internal restarts (rewrites, error handlers) one request may take before it fails with
/// 500; mod_rewrite's own loop limit is lower per phase, this bounds everything together.
const MAX_RESTARTS: u32 = 128;

/// Build the response for the exchange's request (its body, if any, fully read). The head is
/// queued after anything already queued (an interim response's rest).
pub fn respond(ctx: &mut Ctx, ex: &mut Exchange, b: &mut Bufs, rlen: usize, conn: &ConnInfo) {
    let Some(head) = ex.head else {
        return respond_error(ctx, ex, b, 400);
    };
    // The head's place in the queue, filled in once the head is written; the body follows.
    b.segs.push_back(Seg::Head(0, 0));
    let first_seg = b.segs.len();
    let mut pipe = Pipe::default();
    // An internal redirect a backend asked for (cgi.local-redir) starts from its target.
    #[cfg(feature = "backend")]
    {
        pipe.target = ex.target.take();
    }
    let mut conf = Rc::clone(&ctx.base);
    b.hdrs.clear();
    // What the access log reports as the file: only one this request mapped to.
    b.fs_path.clear();
    let (status, content_length, body_len, mtime) = loop {
        pipe.restarts += 1;
        let step = if pipe.restarts > MAX_RESTARTS {
            Step::Error(500)
        } else {
            prepare(ctx, ex, b, rlen, conn, &head, &mut pipe, &mut conf)
        };
        // mod_deflate's answer to "would this be compressed?", for the handler's ranges.
        #[cfg(feature = "deflate")]
        let accept = (matches!(step, Step::Handle)
            && !conf.deflate.mimetypes.is_empty()
            && head.method == Method::Get)
            .then(|| {
                let headers = b.headers.get(..head.header_count).unwrap_or_default();
                request::header(&b.rbuf[..rlen], headers, "Accept-Encoding")
            })
            .flatten()
            .map(<[u8]>::to_vec);
        #[cfg(feature = "deflate")]
        let probe = |ctype: &str, len: u64| {
            accept
                .as_deref()
                .is_some_and(|a| deflate::would_compress(&conf, a, ctype, len))
        };
        let mut reply = reply!(ctx, ex, b);
        reply.discard_body(first_seg);
        #[cfg(feature = "deflate")]
        if accept.is_some() {
            reply.compressed = Some(&probe);
        }
        match step {
            Step::Restart => continue,
            Step::Error(s) => {
                if s == 400 || s == 414 {
                    ex.persist = response::Persist::Close;
                }
                reply.error(s);
            }
            Step::Redirect(s) => {
                reply.start(s);
                if !pipe.location.is_empty() {
                    reply.header("Location", pipe.location.as_bytes());
                }
                if !response::bodiless(s) {
                    reply.end_head(Some(0));
                }
            }
            #[cfg(feature = "backend")]
            Step::Backend => {
                if let Some((script, c)) = pipe.backend.take() {
                    // The head comes from the backend: drop the place kept for ours.
                    b.segs.truncate(first_seg - 1);
                    let plan = c.plan;
                    let opts = backend::EnvOpts::for_plan(&plan);
                    let env = if plan.needs_env() {
                        backend_env(
                            ex,
                            b,
                            rlen,
                            conn,
                            &head,
                            &pipe,
                            &conf,
                            &script,
                            (&c.script_name, &c.path_info),
                            &opts,
                        )
                    } else {
                        crate::backend::env::EnvBuf::new()
                    };
                    let mut gw = backend::Gw::new(plan, env, ctx, Rc::clone(&conf));
                    gw.saved = pipe.saved;
                    ex.backend = Some(Box::new(gw));
                    ex.conf = Some(conf);
                    ex.target = pipe.target.take();
                    return;
                }
                reply.error(500);
            }
            Step::Handle => {
                let buf = &b.rbuf[..rlen];
                let req = Request {
                    buf,
                    head: &head,
                    headers: &b.headers[..head.header_count],
                    path: &b.path,
                    query: query_of(&pipe.target, buf, &head),
                    root: pipe.root.as_deref().or(conf.document_root.as_deref()),
                    rel: pipe.rel.as_deref().unwrap_or(&b.path),
                    conf: &conf,
                };
                #[cfg(feature = "status")]
                if let Some(page) = handlers::status::page(&conf, &b.path) {
                    let srv = handlers::status::Server {
                        stats: &ctx.stats,
                        modules: &ctx.cfg.modules,
                        peer: conn.peer.ip(),
                    };
                    handlers::status::serve(&req, &mut reply, page, &srv);
                } else {
                    handlers::handle(&req, &mut reply);
                }
                #[cfg(not(feature = "status"))]
                handlers::handle(&req, &mut reply);
            }
        }
        // Error documents: an internal restart with the handler's URL, or a static page.
        if reply.status >= 400 && pipe.saved.is_none() {
            if let Some((url, saved)) = modules::errors::handler(&conf, reply.status) {
                pipe.saved = Some(saved);
                pipe.target = Some(url.to_string());
                reply.discard_body(first_seg);
                continue;
            }
            if let Some(file) = modules::errors::errorfile(&conf, reply.status) {
                errorfile(&mut reply, &file, first_seg);
            }
        }
        if let Some(saved) = pipe.saved {
            reply.status = modules::errors::final_status(saved, reply.status);
        }
        break (
            reply.status,
            reply.content_length,
            reply.body_len,
            reply.mtime,
        );
    };
    ex.status = status;
    ex.body_len = body_len;
    #[cfg(feature = "auth")]
    for (name, value) in &pipe.auth_headers {
        if *name != "WWW-Authenticate" || status == 401 {
            response::header(&mut b.hdrs, name, value.as_bytes());
        }
    }
    response_start(ctx, ex, b, &head, &conf, mtime, pipe.clean);
    #[cfg(feature = "deflate")]
    let content_length = if conf.deflate.mimetypes.is_empty() {
        content_length
    } else {
        deflate::static_response(
            ctx,
            ex,
            b,
            rlen,
            &head,
            &conf,
            first_seg,
            content_length,
            mtime,
        )
    };
    // Only mod_setenv can have given the response a Server field of its own; the tag then
    // yields to it. (Looked for only then: scanning every head would cost every request.)
    let own_server = pipe.clean
        && conf
            .setenv
            .add_response_header
            .iter()
            .chain(&conf.setenv.set_response_header)
            .any(|(k, _)| k.eq_ignore_ascii_case("Server"))
        && response::find(&b.hdrs, "Server").is_some();
    let tag = if own_server {
        ""
    } else {
        conf.server_tag.as_str()
    };
    write_head(ctx, ex, b, first_seg, tag, content_length);
    ex.conf = Some(conf);
    // The target after rewrites, for the access log (moved, not copied).
    ex.target = pipe.target.take();
}

/// The environment for the backend of a request the pipeline gave to one: the script
/// (or the gateway's idea of it) is `rel[..split]`, the path info what follows.
#[cfg(feature = "backend")]
#[allow(clippy::too_many_arguments)]
fn backend_env(
    ex: &Exchange,
    b: &Bufs,
    rlen: usize,
    conn: &ConnInfo,
    head: &Head,
    pipe: &Pipe,
    conf: &ReqConf,
    script: &std::path::Path,
    names: (&str, &str),
    opts: &backend::EnvOpts,
) -> crate::backend::env::EnvBuf {
    use std::os::unix::ffi::OsStrExt;
    let buf = &b.rbuf[..rlen];
    let (script_name, path_info) = names;
    let root = pipe
        .root
        .as_deref()
        .or(conf.document_root.as_deref())
        .unwrap_or(std::path::Path::new("/"));
    // The request's fields as mod_setenv left them.
    #[allow(unused_mut)]
    let mut fields: Vec<(&[u8], &[u8])> = b.headers[..head.header_count]
        .iter()
        .map(|h| (h.name.get(buf), h.value.get(buf)))
        .collect();
    #[cfg(feature = "setenv")]
    crate::modules::setenv::request_fields(conf, &mut fields);
    #[allow(unused_mut)]
    let mut vars: Vec<(&[u8], &[u8])> = Vec::new();
    // mod_openssl's SSL_* variables (and REMOTE_USER from a client certificate).
    #[cfg(feature = "tls")]
    let tls_vars = conn
        .tls
        .map(|t| crate::tls::cgi_env(t, &conf.ssl))
        .unwrap_or_default();
    #[cfg(feature = "tls")]
    vars.extend(tls_vars.iter().map(|(k, v)| (k.as_bytes(), v.as_bytes())));
    // What a FastCGI authorizer passed on (Variable-NAME: value gives NAME=value).
    #[cfg(feature = "fastcgi")]
    if let Some(auth) = &ex.authorized {
        vars.extend(auth.iter().map(|(k, v)| (k.as_slice(), v.as_slice())));
    }
    #[cfg(feature = "setenv")]
    {
        for (k, v) in &conf.setenv.add_environment {
            vars.push((k.as_bytes(), v.as_bytes()));
        }
        for (k, v) in &conf.setenv.set_environment {
            vars.retain(|(n, _)| *n != k.as_bytes());
            vars.push((k.as_bytes(), v.as_bytes()));
        }
    }
    #[cfg(feature = "extforward")]
    let remote = match &pipe.fwd_ip {
        Some((ip, _)) => SocketAddr::new(*ip, conn.peer.port()),
        None => conn.peer,
    };
    #[cfg(not(feature = "extforward"))]
    let remote = conn.peer;
    #[cfg(feature = "extforward")]
    let scheme = pipe.fwd_scheme.unwrap_or(conn.scheme);
    #[cfg(not(feature = "extforward"))]
    let scheme = conn.scheme;
    let target = pipe
        .target
        .as_deref()
        .map_or(head.target.get(buf), str::as_bytes);
    let host = head.host.map(|h| h.get(buf)).unwrap_or_default();
    let input = crate::backend::env::Input {
        method: head.method.as_str(),
        protocol: match head.version {
            request::Version::Http10 => "HTTP/1.0",
            request::Version::Http11 => "HTTP/1.1",
        },
        request_uri: head.target.get(buf),
        target,
        query: query_of(&pipe.target, buf, head).unwrap_or_default(),
        script_name: script_name.as_bytes(),
        path_info: path_info.as_bytes(),
        physical_path: script.as_os_str().as_bytes(),
        basedir: root.as_os_str().as_bytes(),
        docroot: opts.docroot.map(|d| d.as_os_str().as_bytes()),
        strip_request_uri: opts.strip_request_uri.map(str::as_bytes),
        break_scriptfilename: false,
        authorizer: opts.authorizer,
        content_length: head.content_length.unwrap_or(0),
        scheme,
        server_software: conf.server_tag.as_bytes(),
        server_name: host,
        local: conn.local,
        remote,
        #[cfg(feature = "auth")]
        remote_user: ex.remote_user.as_deref().map(str::as_bytes),
        #[cfg(not(feature = "auth"))]
        remote_user: None,
        #[cfg(feature = "auth")]
        auth_type: ex.auth_type.map(str::as_bytes),
        #[cfg(not(feature = "auth"))]
        auth_type: None,
        redirect_status: pipe.saved.as_ref().map(|s| s.status()),
        headers: &fields,
        env: &vars,
    };
    let _ = ex;
    let mut env = crate::backend::env::EnvBuf::new();
    crate::backend::env::build(&input, &mut env);
    env
}

/// For a directory (a path ending in '/'), the first `index-file.names` entry that is a file
/// in it: what the request is about once mod_indexfile has had its say.
#[cfg(any(feature = "cgi", feature = "fastcgi", feature = "scgi"))]
fn index_of<'c>(root: &std::path::Path, rel: &str, conf: &'c ReqConf) -> Option<&'c str> {
    if !rel.ends_with('/') {
        return None;
    }
    conf.index_files
        .iter()
        .filter(|n| !n.is_empty() && !n.starts_with('/') && !n.contains("/../"))
        .find(|n| {
            let mut p = root.as_os_str().to_owned();
            p.push(rel);
            p.push(n.as_str());
            std::fs::metadata(&p).is_ok_and(|m| m.is_file())
        })
        .map(String::as_str)
}

/// Whether a FastCGI authorizer already allowed this request.
#[cfg(any(feature = "fastcgi", feature = "scgi"))]
fn gw_authorized(ex: &Exchange) -> bool {
    #[cfg(feature = "fastcgi")]
    return ex.authorized.is_some();
    #[cfg(not(feature = "fastcgi"))]
    {
        let _ = ex;
        false
    }
}

/// Per-request pipeline state that lives across internal restarts.
#[derive(Default)]
struct Pipe {
    restarts: u32,
    /// The target after a rewrite or an error handler's restart (path and query, encoded).
    target: Option<String>,
    /// The normalised target url rules match (scratch, reused across restarts).
    #[cfg_attr(not(any(feature = "redirect", feature = "rewrite")), allow(dead_code))]
    matched: String,
    /// Where the request lives on disk when a module (alias) decided it; else the document
    /// root and the URL path.
    root: Option<std::path::PathBuf>,
    rel: Option<String>,
    /// An error handler's restart is under way.
    saved: Option<modules::errors::Saved>,
    /// A redirect's Location.
    location: String,
    /// The request got past uri_clean (redirect, access, auth): mod_setenv, which lighttpd
    /// runs in that phase after those modules, has seen it and adds its response headers.
    clean: bool,
    #[cfg(feature = "rewrite")]
    rewrite: modules::rewrite::State,
    /// mod_extforward ran (once per request, not again after a restart).
    #[cfg(feature = "extforward")]
    fwd_done: bool,
    /// The client address a trusted proxy named, as text for `$HTTP["remote-ip"]`, and
    /// the scheme and Host it forwarded.
    #[cfg(feature = "extforward")]
    fwd_ip: Option<(IpAddr, String)>,
    #[cfg(feature = "extforward")]
    fwd_scheme: Option<&'static str>,
    #[cfg(feature = "extforward")]
    fwd_host: Option<String>,
    /// Headers mod_auth adds: its challenges (sent with a final 401) and
    /// Authentication-Info.
    #[cfg(feature = "auth")]
    auth_headers: Vec<(&'static str, String)>,
    /// The backend chosen: the script file, where its path info starts in `rel`, and what
    /// to start.
    #[cfg(feature = "backend")]
    backend: Option<(std::path::PathBuf, backend::Choice)>,
}

/// The query string, from the rewritten target if there is one.
fn query_of<'a>(target: &'a Option<String>, buf: &'a [u8], head: &Head) -> Option<&'a [u8]> {
    match target {
        Some(t) => t.split_once('?').map(|(_, q)| q.as_bytes()),
        None => head.query.map(|q| q.get(buf)),
    }
}

/// What the phases before the handler decided.
enum Step {
    /// Run the handler.
    Handle,
    /// Start again with `pipe.target`.
    #[cfg_attr(not(feature = "rewrite"), allow(dead_code))]
    Restart,
    /// Answer with this error status.
    Error(u16),
    /// Answer with this redirect status and `pipe.location`.
    #[cfg_attr(not(feature = "redirect"), allow(dead_code))]
    Redirect(u16),
    /// A backend answers: `pipe.backend` says which.
    #[cfg(feature = "backend")]
    #[cfg_attr(
        not(any(feature = "cgi", feature = "fastcgi", feature = "scgi")),
        allow(dead_code)
    )]
    Backend,
}

/// Phases 1 to 6: from the target to a handler, or to an early answer.
#[allow(clippy::too_many_arguments)]
fn prepare(
    ctx: &mut Ctx,
    ex: &mut Exchange,
    b: &mut Bufs,
    rlen: usize,
    conn: &ConnInfo,
    head: &Head,
    pipe: &mut Pipe,
    conf: &mut Rc<ReqConf>,
) -> Step {
    let buf = &b.rbuf[..rlen];
    pipe.root = None;
    pipe.rel = None;
    pipe.clean = false;

    // The path, normalised: conditions on $HTTP["url"] see it.
    let raw_path = match &pipe.target {
        Some(t) => t.split_once('?').map_or(t.as_str(), |(p, _)| p).as_bytes(),
        None => head.path.get(buf),
    };
    let normalized = if head.method == Method::Options && raw_path == b"*" && pipe.target.is_none()
    {
        b.path.clear();
        b.path.push('*');
        Ok(())
    } else {
        path::normalize(raw_path, &mut b.path)
    };
    if let Err(e) = normalized {
        ex.persist = response::Persist::Close;
        return Step::Error(e.status);
    }

    // Conditions and settings.
    let query = query_of(&pipe.target, buf, head);
    #[cfg(feature = "extforward")]
    let (ip, peer) = match &pipe.fwd_ip {
        Some((addr, text)) => (text.as_str(), *addr),
        None => (conn.peer_ip, conn.peer.ip()),
    };
    #[cfg(not(feature = "extforward"))]
    let (ip, peer) = (conn.peer_ip, conn.peer.ip());
    let view = View {
        buf,
        head,
        headers: &b.headers[..head.header_count],
        path: &b.path,
        query,
        ip,
        peer,
        local: conn.local,
        scheme: conn.scheme,
        #[cfg(feature = "extforward")]
        fwd_scheme: pipe.fwd_scheme,
        #[cfg(feature = "extforward")]
        fwd_host: pipe.fwd_host.as_deref().map(str::as_bytes),
    };
    *conf = if ctx.cfg.conds.is_empty() {
        Rc::clone(&ctx.base)
    } else {
        let set = ctx.cfg.matches(&view);
        ctx.conf_for(&set)
    };
    let conf = &**conf;
    // Without the optional modules nothing below reads the settings.
    let _ = (conf, &view);

    // Client certificates are checked during the handshake, with the settings the server
    // name chose. A request for a host (Host other than the SNI name) whose settings ask for
    // other checks was not checked as they say: 421, so that the client connects again for
    // that host (RFC 9110 §15.5.20), rather than served on weaker checks.
    #[cfg(feature = "tls")]
    if let Some(hs) = conn.tls_conf {
        if !crate::tls::same_client_checks(hs, &conf.ssl) {
            log::debug!("TLS: request for a host with other client-certificate checks: 421");
            return Step::Error(421);
        }
    }

    // uri_raw: mod_extforward first, once. A new address (or scheme, or Host) changes what
    // conditions see, so the request starts again with it and every condition is evaluated
    // anew; the restart does not run the module again.
    #[cfg(feature = "extforward")]
    if !pipe.fwd_done {
        pipe.fwd_done = true;
        if conf.extforward.forwarders.is_set() {
            let hdrs = ForwardHeaders {
                buf,
                headers: &b.headers[..head.header_count],
            };
            match modules::extforward::resolve(&conf.extforward, conn.peer.ip(), &hdrs) {
                Ok(None) => {}
                Ok(Some(f)) => {
                    ex.client = Some(f.addr);
                    pipe.fwd_ip = Some((f.addr, f.addr.to_string()));
                    pipe.fwd_scheme = f.scheme.map(|s| s.as_str());
                    pipe.fwd_host = f.host;
                    return Step::Restart;
                }
                Err(e) => {
                    log::debug!("extforward: {e}");
                    ex.persist = response::Persist::Close;
                    return Step::Error(400);
                }
            }
        }
    }

    // uri_raw and uri_clean: the url rules, which match the normalised target.
    #[cfg(any(feature = "redirect", feature = "rewrite"))]
    if conf.redirect.is_some() || !conf.rewrite.is_empty() {
        let raw_target = match &pipe.target {
            Some(t) => t.as_bytes(),
            None => head.target.get(buf),
        };
        if let Err(s) = urlrules::match_target(raw_target, &mut pipe.matched) {
            return Step::Error(s);
        }
        let authority = authority(&view);
        let url = UrlParts {
            scheme: view.scheme(),
            authority: &authority,
            port: conn.local.port(),
        };
        #[cfg(feature = "rewrite")]
        match rewrite_pass(
            ctx,
            conf,
            false,
            &mut pipe.rewrite,
            &pipe.matched,
            &view,
            &url,
        ) {
            Ok(None) => {}
            Ok(Some(target)) => {
                pipe.target = Some(target);
                return Step::Restart;
            }
            Err(()) => return Step::Error(500),
        }
        #[cfg(feature = "redirect")]
        if let Some((_, branch)) = &conf.redirect {
            let caps = branch_captures(ctx, *branch, &view);
            let caps: Vec<Option<&str>> = caps.iter().map(|c| c.as_deref()).collect();
            let get_or_head = matches!(head.method, Method::Get | Method::Head);
            let http_1_0 = head.version == request::Version::Http10;
            match modules::redirect::check(
                conf,
                &pipe.matched,
                &caps,
                &url,
                get_or_head,
                http_1_0,
                &mut pipe.location,
            ) {
                modules::redirect::Redirect::None => {}
                modules::redirect::Redirect::To(s) => return Step::Redirect(s),
                modules::redirect::Redirect::Fail => return Step::Error(500),
            }
        }
    }

    // uri_clean: access.
    #[cfg(feature = "access")]
    if !modules::access::allowed(conf, &b.path) {
        return Step::Error(403);
    }

    // mod_setenv's turn in uri_clean: after redirect and access, before auth, the order of
    // lighttpd's usual module list; answers decided before it get none of its headers.
    pipe.clean = true;

    // uri_clean: auth, after access as in lighttpd's module order.
    #[cfg(feature = "auth")]
    if !conf.auth.require.is_empty() {
        let headers = &b.headers[..head.header_count];
        let out = &mut pipe.auth_headers;
        if let Some(step) = authenticate(ctx, ex, buf, head, headers, &b.path, conn, conf, out) {
            return step;
        }
    }

    // docroot: mod_simple_vhost, then mod_evhost (lighttpd runs both where both are set, so
    // the later one's directory wins). They override server.document-root whenever they
    // find a directory, also one set in a matching $HTTP["host"] block: lighttpd skips
    // simple-vhost only where simple-vhost.server-root is unset or "".
    #[cfg(feature = "vhost")]
    if conf.vhost.simple.is_some() || conf.vhost.evhost.is_some() {
        let host = view.host().and_then(|h| std::str::from_utf8(h).ok());
        let mut is_dir = |p: &std::path::Path| p.is_dir();
        if let Some(sv) = &conf.vhost.simple {
            if let Some(r) = sv.docroot(host, &mut is_dir) {
                pipe.root = Some(r.doc_root);
            }
        }
        if let (Some(pattern), Some(h)) = (&conf.vhost.evhost, host) {
            match modules::vhost::docroot(pattern, h) {
                Some(d) if d.is_dir() => pipe.root = Some(d),
                _ => {}
            }
        }
    }

    // The gateways whose hosts do not check for a local file take the request by its URL
    // path (lighttpd decides this in uri_clean; the document root is still worked out, and
    // SCRIPT_FILENAME is the script's path under it).
    #[cfg(any(feature = "fastcgi", feature = "scgi"))]
    if let Some(c) = backend::select_gw(ctx, conf, &b.path, None, gw_authorized(ex), ip) {
        let mut script = pipe
            .root
            .as_deref()
            .or(conf.document_root.as_deref())
            .map(|r| r.as_os_str().to_owned())
            .unwrap_or_default();
        script.push(&c.script_name);
        pipe.backend = Some((script.into(), c));
        return Step::Backend;
    }

    // mod_wstunnel and mod_proxy, which take requests by their URL path only.
    #[cfg(any(feature = "proxy", feature = "wstunnel"))]
    {
        let fwd = proxy::Fwd {
            #[cfg(feature = "extforward")]
            scheme: pipe.fwd_scheme,
            #[cfg(feature = "extforward")]
            host: pipe.fwd_host.as_deref(),
            #[cfg(not(feature = "extforward"))]
            scheme: None,
            #[cfg(not(feature = "extforward"))]
            host: None,
        };
        let target = pipe.target.as_deref();
        match proxy::select(ctx, ex, b, rlen, conn, head, conf, target, &fwd) {
            None => {}
            Some(Err(s)) => return Step::Error(s),
            Some(Ok(plan)) => {
                let c = backend::Choice {
                    plan,
                    script_name: b.path.clone(),
                    path_info: String::new(),
                };
                pipe.backend = Some((std::path::PathBuf::new(), c));
                return Step::Backend;
            }
        }
    }

    // physical: userdir, alias, then the if-not-file rewrites.
    #[cfg(feature = "userdir")]
    if conf.userdir.path.is_some() && b.path.starts_with("/~") {
        use modules::userdir::Mapping;
        let mut is_dir = |p: &std::path::Path| p.is_dir();
        let lower = conf.force_lowercase_filenames;
        match conf
            .userdir
            .map(&b.path, lower, &mut modules::userdir::home_dir, &mut is_dir)
        {
            Mapping::Pass => {}
            Mapping::RedirectToDirectory => {
                // Built from the normalised path, each segment encoded again (as the
                // static handler's redirect to a directory), then the query.
                pipe.location.clear();
                for seg in b.path.split('/').filter(|s| !s.is_empty()) {
                    pipe.location.push('/');
                    crate::http::util::url_encode_segment(seg, &mut pipe.location);
                }
                pipe.location.push('/');
                if let Some(q) = query {
                    pipe.location.push('?');
                    crate::http::util::encode_query(q, &mut pipe.location);
                }
                return Step::Redirect(301);
            }
            Mapping::Mapped { basedir, .. } => {
                // "/~user/rest": the file is basedir + "/rest".
                let rest = b.path.get(2..).and_then(|s| s.find('/').map(|i| &s[i..]));
                pipe.root = Some(basedir);
                pipe.rel = Some(rest.unwrap_or("/").to_string());
            }
        }
    }
    #[cfg(feature = "alias")]
    if !conf.alias.is_empty() {
        match modules::alias::map(conf, &b.path) {
            None => {}
            Some(Err(s)) => {
                // lighttpd answers this one without mod_setenv's headers too.
                pipe.clean = false;
                return Step::Error(s);
            }
            Some(Ok((dir, rest))) => {
                pipe.root = Some(std::path::PathBuf::from(dir));
                pipe.rel = Some(rest.to_string());
            }
        }
    }
    // server.force-lowercase-filenames: the file is the lower-cased path under its root (the
    // document root or the directory a module chose keeps its case), as in lighttpd.
    if conf.force_lowercase_filenames {
        pipe.rel
            .get_or_insert_with(|| b.path.clone())
            .make_ascii_lowercase();
    }
    #[cfg(feature = "rewrite")]
    if conf.rewrite.iter().any(|(k, _)| k.if_not_file()) {
        let root = pipe.root.as_deref().or(conf.document_root.as_deref());
        let rel = pipe.rel.as_deref().unwrap_or(&b.path);
        let is_file = root.is_some_and(|r| {
            let mut p = r.as_os_str().to_owned();
            p.push(rel);
            std::fs::metadata(&p).is_ok_and(|m| m.is_file())
        });
        if !is_file {
            // The uri_raw pass above set `pipe.matched` for this target (a rewrite list
            // exists, so it ran).
            let authority = authority(&view);
            let url = UrlParts {
                scheme: view.scheme(),
                authority: &authority,
                port: conn.local.port(),
            };
            match rewrite_pass(
                ctx,
                conf,
                true,
                &mut pipe.rewrite,
                &pipe.matched,
                &view,
                &url,
            ) {
                Ok(None) => {}
                Ok(Some(target)) => {
                    pipe.target = Some(target);
                    return Step::Restart;
                }
                Err(()) => return Step::Error(500),
            }
        }
    }
    // The handler: a gateway for an existing file (check-local), then mod_cgi for a file
    // cgi.assign names. A directory is looked at through its index file, as lighttpd's
    // mod_indexfile hands it on: a directory's index.php must run, never be served.
    #[cfg(any(feature = "cgi", feature = "fastcgi", feature = "scgi"))]
    if let Some(root) = pipe
        .root
        .as_deref()
        .or(conf.document_root.as_deref())
        .filter(|_| backend::any_configured(conf))
    {
        let rel = pipe.rel.as_deref().unwrap_or(&b.path);
        let (rel, url) = match index_of(root, rel, conf) {
            Some(name) => (
                std::borrow::Cow::Owned(format!("{rel}{name}")),
                std::borrow::Cow::Owned(format!("{}{name}", b.path)),
            ),
            None => (
                std::borrow::Cow::Borrowed(rel),
                std::borrow::Cow::Borrowed(b.path.as_str()),
            ),
        };
        #[cfg(any(feature = "fastcgi", feature = "scgi"))]
        if let Some((script, _, split)) = backend::script_of(root, &rel) {
            let physical = script.to_string_lossy();
            if let Some(mut c) =
                backend::select_gw(ctx, conf, &url, Some(&physical), gw_authorized(ex), ip)
            {
                let path_info = rel.get(split..).unwrap_or("");
                c.path_info = path_info.to_string();
                c.script_name = url.strip_suffix(path_info).unwrap_or(&url).to_string();
                pipe.backend = Some((script, c));
                return Step::Backend;
            }
        }
        #[cfg(feature = "cgi")]
        if !conf.cgi.assign.is_empty() {
            match backend::select_cgi(conf, root, &rel) {
                None => {}
                Some(Err(s)) => return Step::Error(s),
                Some(Ok((script, split, plan))) => {
                    let path_info = rel.get(split..).unwrap_or("").to_string();
                    let script_name = url.strip_suffix(path_info.as_str()).unwrap_or(&url);
                    let c = backend::Choice {
                        plan,
                        script_name: script_name.to_string(),
                        path_info,
                    };
                    pipe.backend = Some((script, c));
                    return Step::Backend;
                }
            }
        }
    }
    let _ = (&ex, &view);
    Step::Handle
}

/// mod_auth: check the request against the `auth.require` entry covering its path, if any.
/// None: go on (nothing covers it, or the credentials are good).
/// Its headers go into `out` (kept across internal restarts, added to the final response).
#[cfg(feature = "auth")]
#[allow(clippy::too_many_arguments)]
fn authenticate(
    ctx: &Ctx,
    ex: &mut Exchange,
    buf: &[u8],
    head: &Head,
    headers: &[Header],
    path: &str,
    conn: &ConnInfo,
    conf: &ReqConf,
    out: &mut Vec<(&'static str, String)>,
) -> Option<Step> {
    use modules::auth::{self, Outcome};
    let require = auth::find(&conf.auth.require, path, conf.force_lowercase_filenames)?;
    let req = auth::Request {
        path,
        authorization: request::header(buf, headers, "Authorization"),
        method: head.method.as_str(),
        // Digest's uri= is compared with the target as sent, before any rewrite.
        target: head.target.get(buf),
        client: conn.peer.ip(),
        now: ctx.now_secs,
        remote_user: None,
    };
    out.clear();
    match auth::check(require, &conf.auth.settings, &req, &ctx.auth_secret) {
        Outcome::Allow {
            user,
            auth_type,
            authentication_info,
        } => {
            ex.remote_user = Some(user);
            ex.auth_type = auth_type;
            if let Some(v) = authentication_info {
                out.push(("Authentication-Info", v));
            }
            None
        }
        Outcome::Challenge {
            www_authenticate,
            bad_creds,
        } => {
            out.extend(
                www_authenticate
                    .into_iter()
                    .map(|v| ("WWW-Authenticate", v)),
            );
            if bad_creds {
                // Slow down guessing: one try per connection, answered late.
                ex.persist = response::Persist::Close;
                if ctx.cfg.auth_delay_invalid_creds {
                    ex.hold_until = Some(ctx.now + auth::INVALID_CREDS_DELAY);
                }
            }
            Some(Step::Error(401))
        }
        Outcome::BadRequest => Some(Step::Error(400)),
        Outcome::ServerError => Some(Step::Error(500)),
    }
}

/// `${url.authority}`: the Host (or the forwarded one), lower-cased as lighttpd has it.
#[cfg(any(feature = "redirect", feature = "rewrite"))]
fn authority<'a>(view: &View<'a>) -> std::borrow::Cow<'a, str> {
    let host = std::str::from_utf8(view.host().unwrap_or_default()).unwrap_or("");
    if host.bytes().any(|c| c.is_ascii_uppercase()) {
        std::borrow::Cow::Owned(host.to_ascii_lowercase())
    } else {
        std::borrow::Cow::Borrowed(host)
    }
}

/// One mod_rewrite pass over the plain list or the "-if-not-file" one: Ok(None) to go on,
/// Ok(Some(target)) to restart with it, Err(()) for a 500.
#[cfg(feature = "rewrite")]
fn rewrite_pass(
    ctx: &Ctx,
    conf: &ReqConf,
    if_not_file: bool,
    state: &mut modules::rewrite::State,
    matched: &str,
    view: &View,
    url: &UrlParts,
) -> Result<Option<String>, ()> {
    if !conf
        .rewrite
        .iter()
        .any(|(k, _)| k.if_not_file() == if_not_file)
    {
        return Ok(None);
    }
    let caps = branch_captures(ctx, conf.rewrite_branch, view);
    let caps: Vec<Option<&str>> = caps.iter().map(|c| c.as_deref()).collect();
    let mut out = String::new();
    match modules::rewrite::pass(conf, if_not_file, state, matched, &caps, url, &mut out) {
        modules::rewrite::Step::GoOn => Ok(None),
        modules::rewrite::Step::Restart => Ok(Some(out)),
        modules::rewrite::Step::Fail => Err(()),
    }
}

/// The captures of the conditional block that set a rule list, for `%n`.
#[cfg(any(feature = "redirect", feature = "rewrite"))]
fn branch_captures(ctx: &Ctx, branch: Option<usize>, view: &View) -> Vec<Option<String>> {
    match branch {
        Some(id) => ctx.cfg.captures(id, view),
        None => Vec::new(),
    }
}

/// Phase 8, response start: the modules that edit the head.
fn response_start(
    ctx: &Ctx,
    ex: &Exchange,
    b: &mut Bufs,
    head: &Head,
    conf: &ReqConf,
    mtime: Option<u64>,
    clean: bool,
) {
    let _ = (ctx, ex, head, mtime, clean);
    #[cfg(feature = "expire")]
    if !conf.expire_url.is_empty() || !conf.expire_mime.is_empty() {
        modules::expire::response_headers(
            conf,
            &b.path,
            ex.status,
            matches!(head.method, Method::Get | Method::Head),
            head.version == request::Version::Http10,
            ctx.now_secs,
            mtime,
            &mut b.hdrs,
        );
    }
    #[cfg(feature = "setenv")]
    if clean
        && (!conf.setenv.add_response_header.is_empty()
            || !conf.setenv.set_response_header.is_empty())
    {
        modules::setenv::response_headers(conf, &mut b.hdrs);
    }
    let _ = (conf, &b);
}

/// `server.errorfile-prefix`: the error page from "<prefix><status>.html" when it exists.
fn errorfile(reply: &mut Reply, file: &std::path::Path, first_seg: usize) {
    /// Error pages are small; a bigger file is not an error page.
    const MAX: u64 = 64 * 1024;
    let Ok(meta) = std::fs::metadata(file) else {
        return;
    };
    if !meta.is_file() || meta.len() > MAX {
        return;
    }
    let Ok(body) = std::fs::read(file) else {
        return;
    };
    let status = reply.status;
    reply.discard_body(first_seg);
    reply.start(status);
    reply.header("Content-Type", b"text/html");
    reply.end_head(Some(body.len() as u64));
    if !reply.head_only {
        let from = reply.wbuf.len();
        reply.wbuf.extend_from_slice(&body);
        reply.body_len = body.len() as u64;
        reply.push_mem(from);
    }
}

/// Answer with an error page and no module involvement: the request could not be parsed or
/// framed, or was refused before it was read. The connection closes after it.
pub fn respond_error(ctx: &mut Ctx, ex: &mut Exchange, b: &mut Bufs, status: u16) {
    // The head's place in the queue, filled in once the head is written; the body follows.
    b.segs.push_back(Seg::Head(0, 0));
    let first_seg = b.segs.len();
    let conf = Rc::clone(&ctx.base);
    let mut reply = reply!(ctx, ex, b);
    reply.error(status);
    ex.status = reply.status;
    ex.body_len = reply.body_len;
    let content_length = reply.content_length;
    write_head(ctx, ex, b, first_seg, &conf.server_tag, content_length);
    ex.conf = Some(conf);
}

/// Serialize the head once the response is settled, into the place kept for it before the
/// body.
fn write_head(
    ctx: &Ctx,
    ex: &Exchange,
    b: &mut Bufs,
    at: usize,
    tag: &str,
    content_length: Option<u64>,
) {
    b.hbuf.clear();
    response::write_head(
        &mut b.hbuf,
        ex.status,
        &ctx.date,
        tag,
        &b.hdrs,
        content_length,
        ex.persist,
    );
    let seg = Seg::Head(0, b.hbuf.len());
    // `at` is just after the place kept for it.
    match at.checked_sub(1).and_then(|i| b.segs.get_mut(i)) {
        Some(slot) => *slot = seg,
        None => b.segs.push_front(seg),
    }
}

/// Request done: mod_status's counters, and the access log line.
pub fn done(ctx: &mut Ctx, ex: &Exchange, b: Option<&Bufs>, rlen: usize, conn: &ConnInfo) {
    #[cfg(feature = "status")]
    {
        ctx.stats.request_done();
        // The head still sits in its buffer until the next response replaces it.
        let head = b.map_or(0, |b| b.hbuf.len() as u64);
        ctx.stats.bytes_written(head.saturating_add(ex.body_len));
    }
    #[cfg(feature = "accesslog")]
    accesslog::log(ctx, ex, b, rlen, conn);
    let _ = (ctx, ex, b, rlen, conn);
}

/// The request as conditions see it.
struct View<'a> {
    buf: &'a [u8],
    head: &'a Head,
    headers: &'a [Header],
    path: &'a str,
    query: Option<&'a [u8]>,
    ip: &'a str,
    peer: IpAddr,
    local: SocketAddr,
    /// The connection's own scheme.
    scheme: &'static str,
    /// The scheme and Host a trusted proxy forwarded.
    #[cfg(feature = "extforward")]
    fwd_scheme: Option<&'static str>,
    #[cfg(feature = "extforward")]
    fwd_host: Option<&'a [u8]>,
}

impl<'a> View<'a> {
    fn scheme(&self) -> &'static str {
        #[cfg(feature = "extforward")]
        if let Some(s) = self.fwd_scheme {
            return s;
        }
        self.scheme
    }

    fn host(&self) -> Option<&'a [u8]> {
        #[cfg(feature = "extforward")]
        if let Some(h) = self.fwd_host {
            return Some(h);
        }
        self.head.host.map(|s| s.get(self.buf))
    }
}

impl CondInput for View<'_> {
    fn field(&self, field: &CondField) -> Option<&str> {
        let hdr = |name: &str| request::header(self.buf, self.headers, name);
        let bytes: Option<&[u8]> = match field {
            CondField::Host => self.host(),
            CondField::Url => Some(self.path.as_bytes()),
            CondField::RemoteIp => Some(self.ip.as_bytes()),
            CondField::QueryString => self.query,
            CondField::RequestMethod => Some(self.head.method.as_str().as_bytes()),
            CondField::Scheme => Some(self.scheme().as_bytes()),
            CondField::UserAgent => hdr("User-Agent"),
            CondField::Referer => hdr("Referer"),
            CondField::Cookie => hdr("Cookie"),
            CondField::RequestHeader(name) => hdr(name),
            CondField::ServerSocket => None,
        };
        bytes.and_then(|b| std::str::from_utf8(b).ok())
    }

    fn remote_ip(&self) -> IpAddr {
        self.peer
    }

    fn server_socket(&self) -> SocketAddr {
        self.local
    }
}

/// The request's header fields as mod_extforward reads them: repeated fields joined with
/// ", " (allocating only then).
#[cfg(feature = "extforward")]
struct ForwardHeaders<'a> {
    buf: &'a [u8],
    headers: &'a [Header],
}

#[cfg(feature = "extforward")]
impl modules::extforward::RequestHeaders for ForwardHeaders<'_> {
    fn header(&self, name: &str) -> Option<std::borrow::Cow<'_, [u8]>> {
        let mut found = self
            .headers
            .iter()
            .filter(|h| h.name.get(self.buf).eq_ignore_ascii_case(name.as_bytes()))
            .map(|h| h.value.get(self.buf));
        let first = found.next()?;
        let Some(second) = found.next() else {
            return Some(std::borrow::Cow::Borrowed(first));
        };
        let mut v = first.to_vec();
        // Bounded by the header count of the parsed head.
        for more in std::iter::once(second).chain(found) {
            v.extend_from_slice(b", ");
            v.extend_from_slice(more);
        }
        Some(std::borrow::Cow::Owned(v))
    }
}
