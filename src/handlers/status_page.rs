//! mod_status: the counters a single-threaded server keeps cheaply, and the pages lighttpd's
//! `status.status-url` (HTML, `?auto`, `?json`), `status.statistics-url` and
//! `status.config-url` serve, rendered from them.
//!
//! Everything here is pure: the connection code feeds [`Stats`] (a request finished, bytes
//! written, a connection changed state, a second passed) and a handler calls a renderer with
//! the current time and whatever per-request data the page shows. Output formats follow
//! lighttpd 1.4's mod_status so that munin, collectd and scripts written against lighttpd keep
//! working: the `?auto` field names, the JSON keys and the scoreboard letters are lighttpd's.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::dirlist_page::{civil, escape_into, Escape};

/// Seconds in the sliding average, as in lighttpd ("5s sliding average").
const RING: usize = 5;

/// The scoreboard is one letter per connection; gauges that drifted (a missed transition in
/// the caller) must not make it unbounded.
const MAX_SCOREBOARD: u64 = 1 << 16;

/// At most this many rows in the HTML connection table; the caller's connection count is
/// bounded by server.max-connections anyway, this bounds a caller that passes more.
pub const MAX_ROWS: usize = 1 << 16;

/// `?refresh=` is capped at a week, as lighttpd does.
const MAX_REFRESH: u64 = 604_800;

/// Where a connection is, for the scoreboard and the per-state counts.
///
/// lighttpd's states are finer (it has eleven); ours map onto the ones a single-threaded
/// HTTP/1.1 server actually passes through, and each keeps the letter and name lighttpd shows
/// for the corresponding state, so scoreboard parsers count the same things.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnState {
    /// Reading a request head (lighttpd `read`, 'r').
    ReadHead,
    /// Reading a request body (lighttpd `readpost`, 'R').
    ReadBody,
    /// Waiting on a backend (CGI, proxy) before the response starts (lighttpd `handle-req`, 'h').
    Handle,
    /// Writing a response (lighttpd `write`, 'W').
    Write,
    /// Idle between requests (lighttpd shows 'k' for a read state with a finished request).
    KeepAlive,
    /// Half-closed, draining the client before close (lighttpd `close`, 'C').
    Linger,
}

impl ConnState {
    /// All states, in the order the HTML legend lists them.
    pub const ALL: [ConnState; 6] = [
        ConnState::ReadHead,
        ConnState::ReadBody,
        ConnState::Handle,
        ConnState::Write,
        ConnState::Linger,
        ConnState::KeepAlive,
    ];

    /// The scoreboard letter lighttpd uses for this state.
    pub fn letter(self) -> u8 {
        match self {
            ConnState::ReadHead => b'r',
            ConnState::ReadBody => b'R',
            ConnState::Handle => b'h',
            ConnState::Write => b'W',
            ConnState::KeepAlive => b'k',
            ConnState::Linger => b'C',
        }
    }

    /// The state's name as lighttpd prints it.
    pub fn name(self) -> &'static str {
        match self {
            ConnState::ReadHead => "read",
            ConnState::ReadBody => "readpost",
            ConnState::Handle => "handle-req",
            ConnState::Write => "write",
            ConnState::KeepAlive => "keep-alive",
            ConnState::Linger => "close",
        }
    }

    fn index(self) -> usize {
        match self {
            ConnState::ReadHead => 0,
            ConnState::ReadBody => 1,
            ConnState::Handle => 2,
            ConnState::Write => 3,
            ConnState::Linger => 4,
            ConnState::KeepAlive => 5,
        }
    }

    /// A short, key-safe name for the statistics page.
    fn key(self) -> &'static str {
        match self {
            ConnState::ReadHead => "read-head",
            ConnState::ReadBody => "read-body",
            ConnState::Handle => "handle",
            ConnState::Write => "write",
            ConnState::KeepAlive => "keep-alive",
            ConnState::Linger => "linger",
        }
    }
}

/// Server-wide counters, updated in O(1) on the hot path and once a second by [`Stats::tick`].
#[derive(Debug, Clone)]
pub struct Stats {
    started: u64,
    max_conns: u64,
    /// Totals up to the last tick.
    requests: u64,
    bytes_out: u64,
    /// Counted since the last tick; they go into the ring and the totals at the next one.
    sec_requests: u64,
    sec_bytes: u64,
    /// The last [`RING`] one-second buckets, oldest overwritten first.
    ring_requests: [u64; RING],
    ring_bytes: [u64; RING],
    ring_pos: usize,
    last_tick: u64,
    conns: [u64; ConnState::ALL.len()],
}

impl Stats {
    /// Counters for a server started at `now_secs` (Unix seconds) that accepts at most
    /// `max_conns` connections (server.max-connections; `IdleServers` is the remainder).
    pub fn new(now_secs: u64, max_conns: u64) -> Stats {
        Stats {
            started: now_secs,
            max_conns,
            requests: 0,
            bytes_out: 0,
            sec_requests: 0,
            sec_bytes: 0,
            ring_requests: [0; RING],
            ring_bytes: [0; RING],
            ring_pos: 0,
            last_tick: now_secs,
            conns: [0; ConnState::ALL.len()],
        }
    }

    /// One request has been answered (lighttpd counts at request-done, so the status request
    /// itself shows up only on the next one).
    pub fn request_done(&mut self) {
        self.sec_requests = self.sec_requests.saturating_add(1);
    }

    /// `n` bytes (head and body) went out to a client.
    pub fn bytes_written(&mut self, n: u64) {
        self.sec_bytes = self.sec_bytes.saturating_add(n);
    }

    /// A connection moved: `None -> Some(s)` on accept, `Some(a) -> Some(b)` on a state
    /// change, `Some(s) -> None` on close. Counts saturate at zero rather than wrap, so a
    /// missed transition skews one number instead of making it enormous.
    pub fn conn_change(&mut self, from: Option<ConnState>, to: Option<ConnState>) {
        if from == to {
            return;
        }
        if let Some(slot) = from.and_then(|s| self.conns.get_mut(s.index())) {
            *slot = slot.saturating_sub(1);
        }
        if let Some(slot) = to.and_then(|s| self.conns.get_mut(s.index())) {
            *slot = slot.saturating_add(1);
        }
    }

    /// Close the current one-second bucket. Call once a second from the event loop; a call
    /// that comes late (the loop slept or was busy) closes the bucket and records the
    /// skipped seconds as empty, so the 5 s average still covers the last five seconds.
    pub fn tick(&mut self, now_secs: u64) {
        if now_secs <= self.last_tick {
            // The same second, or the clock went back: only follow it down, so a later
            // tick is not held back by a future timestamp.
            self.last_tick = now_secs;
            return;
        }
        let elapsed = now_secs - self.last_tick;
        self.last_tick = now_secs;
        self.push_bucket(self.sec_requests, self.sec_bytes);
        self.requests = self.requests.saturating_add(self.sec_requests);
        self.bytes_out = self.bytes_out.saturating_add(self.sec_bytes);
        self.sec_requests = 0;
        self.sec_bytes = 0;
        // Bounded: more than RING empty seconds clear the ring, and no more.
        let empty = (elapsed - 1).min(RING as u64);
        for _ in 0..empty {
            self.push_bucket(0, 0);
        }
    }

    fn push_bucket(&mut self, requests: u64, bytes: u64) {
        let pos = self.ring_pos % RING;
        if let Some(r) = self.ring_requests.get_mut(pos) {
            *r = requests;
        }
        if let Some(b) = self.ring_bytes.get_mut(pos) {
            *b = bytes;
        }
        self.ring_pos = (pos + 1) % RING;
    }

    /// When the server started (Unix seconds).
    pub fn started(&self) -> u64 {
        self.started
    }

    /// Seconds since start (0 if the clock went back past it).
    pub fn uptime(&self, now_secs: u64) -> u64 {
        now_secs.saturating_sub(self.started)
    }

    /// Requests answered since start, including the current second.
    pub fn requests_total(&self) -> u64 {
        self.requests.saturating_add(self.sec_requests)
    }

    /// Bytes sent since start, including the current second.
    pub fn bytes_total(&self) -> u64 {
        self.bytes_out.saturating_add(self.sec_bytes)
    }

    /// Requests per second over the last five completed seconds (lighttpd: sum / 5, so it
    /// ramps up during the first five seconds).
    pub fn requests_avg5(&self) -> f64 {
        self.ring_requests.iter().map(|&v| v as f64).sum::<f64>() / RING as f64
    }

    /// Bytes per second over the last five completed seconds.
    pub fn bytes_avg5(&self) -> f64 {
        self.ring_bytes.iter().map(|&v| v as f64).sum::<f64>() / RING as f64
    }

    /// Open connections in state `s`.
    pub fn in_state(&self, s: ConnState) -> u64 {
        self.conns.get(s.index()).copied().unwrap_or(0)
    }

    /// Open connections in all states.
    pub fn connections(&self) -> u64 {
        self.conns.iter().fold(0u64, |a, &b| a.saturating_add(b))
    }

    /// server.max-connections minus the open connections (lighttpd's `IdleServers`).
    pub fn idle_slots(&self) -> u64 {
        self.max_conns.saturating_sub(self.connections())
    }
}

/// The three forms the status URL answers in, chosen by the query string as lighttpd does:
/// exactly `auto` gives the text form, anything starting with `json` the JSON form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFormat {
    Html,
    Auto,
    Json,
}

impl StatusFormat {
    /// The form a request for status.status-url with this query (without '?') wants.
    pub fn for_query(query: &[u8]) -> StatusFormat {
        if query == b"auto" {
            StatusFormat::Auto
        } else if query.starts_with(b"json") {
            StatusFormat::Json
        } else {
            StatusFormat::Html
        }
    }
}

/// Request-side facts the HTML status page shows.
#[derive(Debug, Clone, Copy)]
pub struct StatusView<'a> {
    /// Current Unix time.
    pub now: u64,
    /// Seconds east of UTC for the start time ("Started at" is local time, as in lighttpd).
    pub utc_offset: i64,
    /// server.tag; empty for none.
    pub server_tag: &'a str,
    /// The request's Host (authority).
    pub host: &'a [u8],
    /// server.name, shown after the host when set and different.
    pub server_name: Option<&'a [u8]>,
    /// The query string without '?' (`refresh=N` adds a meta refresh).
    pub query: &'a [u8],
    /// status.enable-sort (default true): sortable column headers and the script for them.
    pub enable_sort: bool,
}

/// One line of the HTML page's connection table.
#[derive(Debug, Clone, Copy)]
pub struct ConnRow<'a> {
    pub client: IpAddr,
    /// Request body bytes read so far and the declared length (both 0 without a body).
    pub body_read: u64,
    pub body_len: u64,
    /// Response bytes written to the socket and bytes queued for it in total.
    pub bytes_sent: u64,
    pub bytes_queued: u64,
    pub state: ConnState,
    /// Seconds since the current request (or the connection's idle period) began.
    pub age_secs: u64,
    /// The request's Host, or server.name when there was none.
    pub host: &'a [u8],
    /// The request target as received (path and query).
    pub uri: &'a [u8],
    /// The file or handler the request maps to; empty when none.
    pub file: &'a [u8],
}

/// The HTML status page (status.status-url without `?auto`/`?json`). Returns the
/// Content-Type. `rows` gives the open connections; at most [`MAX_ROWS`] are shown.
pub fn render_html(
    stats: &Stats,
    view: &StatusView,
    rows: &mut dyn Iterator<Item = ConnRow<'_>>,
    out: &mut Vec<u8>,
) -> &'static str {
    let mut s = String::with_capacity(4096);
    s.push_str(
        "<!DOCTYPE html>\n<html lang=\"en\">\n <head>\n  <meta charset=\"UTF-8\" />\n  \
         <title>Status</title>\n",
    );
    s.push_str(STATUS_CSS);
    if let Some(secs) = refresh_secs(view.query) {
        let _ = writeln!(s, "<meta http-equiv=\"refresh\" content=\"{}\">", secs);
    }
    if view.enable_sort {
        s.push_str(STATUS_SORT_JS);
    }
    s.push_str(" </head>\n<body>\n<h1>Server-Status");
    if !view.server_tag.is_empty() {
        s.push_str(" (");
        esc(view.server_tag.as_bytes(), Escape::Html, &mut s);
        s.push(')');
    }
    s.push_str(
        "</h1><table summary=\"status\" class=\"status\">\
         <tr><td>Hostname</td><td class=\"string\">",
    );
    esc(view.host, Escape::Html, &mut s);
    if let Some(name) = view
        .server_name
        .filter(|n| !n.is_empty() && *n != view.host)
    {
        s.push_str(" (");
        esc(name, Escape::Html, &mut s);
        s.push(')');
    }
    s.push_str("</td></tr>\n<tr><td>Uptime</td><td class=\"string\">");
    uptime_words(stats.uptime(view.now), &mut s);
    s.push_str("</td></tr>\n<tr><td>Started at</td><td class=\"string\">");
    let local = (stats.started() as i64).saturating_add(view.utc_offset);
    let c = civil(local);
    let _ = write!(
        s,
        "{}-{:02}-{:02} {:02}:{:02}:{:02}",
        c.year, c.month, c.day, c.hour, c.min, c.sec
    );
    s.push_str(
        "</td></tr>\n<tr><th colspan=\"2\">absolute (since start)</th></tr>\n\
         <tr><td>Requests</td><td class=\"string\">",
    );
    scaled(stats.requests_total() as f64, 1000, &mut s);
    s.push_str("req</td></tr>\n<tr><td>Traffic</td><td class=\"string\">");
    scaled(stats.bytes_total() as f64, 1024, &mut s);
    s.push_str(
        "byte</td></tr>\n<tr><th colspan=\"2\">average (since start)</th></tr>\n\
         <tr><td>Requests</td><td class=\"string\">",
    );
    // lighttpd divides by zero in the first second; one second is the honest floor.
    let up = stats.uptime(view.now).max(1) as f64;
    scaled(stats.requests_total() as f64 / up, 1000, &mut s);
    s.push_str("req/s</td></tr>\n<tr><td>Traffic</td><td class=\"string\">");
    scaled(stats.bytes_total() as f64 / up, 1024, &mut s);
    s.push_str(
        "byte/s</td></tr>\n<tr><th colspan=\"2\">average (5s sliding average)</th></tr>\n\
         <tr><td>Requests</td><td class=\"string\">",
    );
    scaled(stats.requests_avg5(), 1000, &mut s);
    s.push_str("req/s</td></tr>\n<tr><td>Traffic</td><td class=\"string\">");
    scaled(stats.bytes_avg5(), 1024, &mut s);
    s.push_str("byte/s</td></tr>\n</table>\n<hr />\n<pre>\n<b>");
    let _ = write!(s, "{}", stats.connections());
    s.push_str(" connections</b>\n");
    // Grouped by state rather than in connection order: the letters are all a reader (or a
    // script) can get from it either way, and this needs no walk over the connections.
    let mut written = 0u64;
    for st in ConnState::ALL {
        for _ in 0..stats.in_state(st) {
            if written >= MAX_SCOREBOARD {
                break;
            }
            s.push(char::from(st.letter()));
            written += 1;
            if written % 50 == 0 {
                s.push('\n');
            }
        }
    }
    s.push_str("\n\n<table>\n");
    for st in ConnState::ALL {
        let _ = writeln!(
            s,
            "<tr><td style=\"text-align:right\">{}</td><td>&nbsp;&nbsp;{} = {}</td></tr>",
            stats.in_state(st),
            char::from(st.letter()),
            st.name()
        );
    }
    s.push_str(
        "</table>\n</pre><hr />\n<h2>Connections</h2>\n\
         <table summary=\"status\" class=\"status\">\n<tr>",
    );
    for col in [
        "Client IP",
        "Read",
        "Written",
        "State",
        "Time",
        "Host",
        "URI",
        "File",
    ] {
        if view.enable_sort {
            let _ = writeln!(
                s,
                "<th class=\"status\"><a href=\"#\" class=\"sortheader\" \
                 onclick=\"resort(this);return false;\">{}<span class=\"sortarrow\">:</span></a></th>",
                col
            );
        } else {
            let _ = writeln!(s, "<th class=\"status\">{}</th>", col);
        }
    }
    s.push_str("</tr>\n");
    out.extend_from_slice(s.as_bytes());
    s.clear();
    for row in rows.take(MAX_ROWS) {
        conn_row(&row, &mut s);
        // Flush per row so a large table does not hold two copies of itself.
        out.extend_from_slice(s.as_bytes());
        s.clear();
    }
    out.extend_from_slice(b"</table>\n</body>\n</html>\n");
    "text/html"
}

fn conn_row(row: &ConnRow, s: &mut String) {
    let _ = write!(
        s,
        "<tr><td class=\"string\">{}</td><td class=\"int\">{}/{}</td>\
         <td class=\"int\">{}/{}</td><td class=\"string\">{}</td><td class=\"int\">{}</td>\
         <td class=\"string\">",
        row.client,
        row.body_read,
        row.body_len,
        row.bytes_sent,
        row.bytes_queued,
        row.state.name(),
        row.age_secs
    );
    esc(row.host, Escape::Html, s);
    s.push_str("</td><td class=\"string\">");
    esc(row.uri, Escape::Html, s);
    s.push_str("</td><td class=\"string\">");
    esc(row.file, Escape::Html, s);
    s.push_str("</td></tr>\n");
}

/// The `?auto` text form. Field names and order are lighttpd's (which kept Apache's), since
/// munin's and collectd's plugins parse exactly these lines. Returns the Content-Type.
pub fn render_auto(stats: &Stats, now: u64, out: &mut Vec<u8>) -> &'static str {
    let mut s = String::with_capacity(256);
    let _ = write!(
        s,
        "Total Accesses: {}\nTotal kBytes: {}\nUptime: {}\nBusyServers: {}\nIdleServers: {}\n\
         Scoreboard: ",
        stats.requests_total(),
        stats.bytes_total() / 1024,
        stats.uptime(now),
        stats.connections(),
        stats.idle_slots()
    );
    out.extend_from_slice(s.as_bytes());
    let mut budget = MAX_SCOREBOARD;
    for st in ConnState::ALL {
        let n = stats.in_state(st).min(budget);
        budget -= n;
        push_repeated(out, st.letter(), n);
    }
    // lighttpd pads with one '_' per free connection slot; tools count them as idle workers.
    push_repeated(out, b'_', stats.idle_slots().min(budget));
    out.push(b'\n');
    "text/plain"
}

fn push_repeated(out: &mut Vec<u8>, b: u8, n: u64) {
    let n = usize::try_from(n).unwrap_or(0);
    out.resize(out.len() + n, b);
}

/// The `?json` form, with lighttpd's keys (TrafficTotal in kB, TrafficAverage5s in kB/s).
/// `?jsonp=NAME` wraps it in a call to NAME when NAME is a plain identifier (letters,
/// digits, '_', starting with a letter, and nothing after it); otherwise it is ignored, as in
/// lighttpd. The Content-Type is lighttpd's `application/javascript` for both.
pub fn render_json(stats: &Stats, now: u64, query: &[u8], out: &mut Vec<u8>) -> &'static str {
    let callback = query.strip_prefix(b"jsonp=").filter(|f| {
        f.first().is_some_and(u8::is_ascii_alphabetic)
            && f.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_')
    });
    if let Some(f) = callback {
        out.extend_from_slice(f);
        out.push(b'(');
    }
    let mut s = String::with_capacity(256);
    // Integer averages, as lighttpd (off_t arithmetic) reports them.
    let _ = write!(
        s,
        "{{\n\t\"RequestsTotal\": {},\n\t\"TrafficTotal\": {},\n\t\"Uptime\": {},\n\
         \t\"BusyServers\": {},\n\t\"IdleServers\": {},\n\t\"RequestAverage5s\":{},\n\
         \t\"TrafficAverage5s\":{}\n}}",
        stats.requests_total(),
        stats.bytes_total() / 1024,
        stats.uptime(now),
        stats.connections(),
        stats.idle_slots(),
        stats.requests_avg5() as u64,
        stats.bytes_avg5() as u64 / 1024
    );
    out.extend_from_slice(s.as_bytes());
    if callback.is_some() {
        out.extend_from_slice(b");");
    }
    "application/javascript"
}

/// The status.statistics-url page: `key: value` lines sorted by key, as lighttpd prints its
/// plugin statistics. lightd's own keys are under `status.`; `extra` adds the caller's
/// (cache hits, backend counters, ...). Keys are cleaned of anything but visible ASCII so a
/// line cannot be split or forged. At most 1024 keys are printed. Returns the Content-Type.
pub fn render_statistics(
    stats: &Stats,
    now: u64,
    extra: &[(&str, u64)],
    out: &mut Vec<u8>,
) -> &'static str {
    const MAX_KEYS: usize = 1024;
    let mut keys: Vec<(String, u64)> = vec![
        ("status.requests".into(), stats.requests_total()),
        ("status.bytes-out".into(), stats.bytes_total()),
        ("status.uptime".into(), stats.uptime(now)),
        ("status.connections".into(), stats.connections()),
        ("status.connections-free".into(), stats.idle_slots()),
        ("status.requests-avg5s".into(), stats.requests_avg5() as u64),
        ("status.bytes-out-avg5s".into(), stats.bytes_avg5() as u64),
    ];
    for st in ConnState::ALL {
        keys.push((
            format!("status.connections.{}", st.key()),
            stats.in_state(st),
        ));
    }
    for &(k, v) in extra.iter().take(MAX_KEYS) {
        let clean: String = k
            .chars()
            .take(256)
            .map(|c| {
                if c.is_ascii_graphic() && c != ':' {
                    c
                } else {
                    '_'
                }
            })
            .collect();
        keys.push((clean, v));
    }
    keys.sort();
    let mut s = String::new();
    for (k, v) in keys.iter().take(MAX_KEYS) {
        let _ = writeln!(s, "{}: {}", k, v);
    }
    out.extend_from_slice(s.as_bytes());
    "text/plain"
}

/// What the status.config-url page describes.
#[derive(Debug, Clone, Copy)]
pub struct ConfigInfo<'a> {
    /// server.tag; empty for none.
    pub server_tag: &'a str,
    /// The version string, e.g. "lightd/0.1.0".
    pub version: &'a str,
    /// The modules in effect, in load order.
    pub modules: &'a [&'a str],
}

/// The status.config-url page: lighttpd's table of server features, the event handler and
/// the loaded modules, plus a version row. Returns the Content-Type.
pub fn render_config(info: &ConfigInfo, out: &mut Vec<u8>) -> &'static str {
    let mut s = String::with_capacity(1024);
    s.push_str(
        "<!DOCTYPE html>\n<html lang=\"en\">\n <head>\n  <meta charset=\"UTF-8\" />\n  \
         <title>Status</title>\n </head>\n <body>\n",
    );
    if !info.server_tag.is_empty() {
        s.push_str("  <h1>");
        esc(info.server_tag.as_bytes(), Escape::Html, &mut s);
        s.push_str("</h1>\n");
    }
    s.push_str("  <table summary=\"status\" border=\"1\">\n");
    config_heading("Server-Features", &mut s);
    // regex-lite is always built in, so regex conditionals are always available.
    config_row("RegEx Conditionals", "enabled", &mut s);
    let mut version = String::new();
    esc(info.version.as_bytes(), Escape::Html, &mut version);
    config_row("Version", &version, &mut s);
    config_heading("Network Engine", &mut s);
    config_row("fd-Event-Handler", event_handler(), &mut s);
    config_heading("Config-File-Settings", &mut s);
    let mut mods = String::new();
    for (i, m) in info.modules.iter().take(256).enumerate() {
        if i != 0 {
            mods.push_str("<br />");
        }
        esc(m.as_bytes(), Escape::Html, &mut mods);
    }
    config_row("Loaded Modules", &mods, &mut s);
    s.push_str("  </table>\n </body>\n</html>\n");
    out.extend_from_slice(s.as_bytes());
    "text/html"
}

/// lighttpd's name for the poller mio uses on this platform.
fn event_handler() -> &'static str {
    if cfg!(any(target_os = "linux", target_os = "android")) {
        "linux-sysepoll"
    } else if cfg!(any(
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "netbsd",
        target_os = "openbsd",
        target_os = "dragonfly"
    )) {
        "freebsd-kqueue"
    } else {
        "poll"
    }
}

fn config_heading(title: &str, s: &mut String) {
    let _ = write!(
        s,
        "   <tr>\n    <th colspan=\"2\">{}</th>\n   </tr>\n",
        title
    );
}

/// `value` is HTML already.
fn config_row(key: &str, value: &str, s: &mut String) {
    let _ = write!(
        s,
        "   <tr>\n    <td><b>{}</b></td>\n    <td>{}</td>\n   </tr>\n",
        key, value
    );
}

/// `refresh=N` at the start of the query: N seconds (capped at a week), if positive.
fn refresh_secs(query: &[u8]) -> Option<u64> {
    let rest = query.strip_prefix(b"refresh=")?;
    // strtol-like: leading digits only; more than 7 digits is past the cap anyway.
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).take(8);
    let n = digits.fold(0u64, |n, &d| n * 10 + u64::from(d - b'0'));
    (n > 0).then_some(n.min(MAX_REFRESH))
}

/// "1 days 2 hours 3 min 4 s", leaving out leading zero parts, as lighttpd writes it.
fn uptime_words(secs: u64, s: &mut String) {
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (hours, rest) = (rest / 3600, rest % 3600);
    let (mins, secs) = (rest / 60, rest % 60);
    if days != 0 {
        let _ = write!(s, "{} days ", days);
    }
    if hours != 0 {
        let _ = write!(s, "{} hours ", hours);
    }
    if mins != 0 {
        let _ = write!(s, "{} min ", mins);
    }
    let _ = write!(s, "{} s", secs);
}

/// A value with lighttpd's two-character unit prefix (" k", " M", ... or two spaces): whole
/// numbers in steps of 1000 (request counts), two decimals in steps of 1024 (bytes).
fn scaled(mut v: f64, step: u32, s: &mut String) {
    let step = f64::from(step);
    let mut prefix = ' ';
    // Bounded by the prefix list.
    for p in ['k', 'M', 'G', 'T', 'P', 'E', 'Z', 'Y'] {
        if v > step {
            v /= step;
            prefix = p;
        } else {
            break;
        }
    }
    if !v.is_finite() {
        v = 0.0;
    }
    if step == 1000.0 {
        let _ = write!(s, "{}", v as u64);
    } else {
        let _ = write!(s, "{:.2}", v);
    }
    s.push(' ');
    s.push(prefix);
}

/// Client-sent or configured text into the page, with lighttpd's ENCODING_HTML rules; the
/// result is ASCII, so building the page as a String loses nothing.
fn esc(bytes: &[u8], how: Escape, s: &mut String) {
    let mut v = Vec::with_capacity(bytes.len());
    escape_into(bytes, how, &mut v);
    s.push_str(&String::from_utf8_lossy(&v));
}

const STATUS_CSS: &str = "  <style type=\"text/css\">\n\
    table.status { border: thin solid black; }\n\
    td { white-space: nowrap; }\n\
    td.int, td.string { background-color: #f0f0f0; }\n\
    td.int { text-align: right; }\n\
    td.string { text-align: left; }\n\
    th.status, a.sortheader { background-color: black; color: white; font-weight: bold; }\n\
    a.sortheader { display: block; text-decoration: none; }\n\
    span.sortarrow { color: white; text-decoration: none; }\n\
  </style>\n";

/// Client-side sorting of the connection table (status.enable-sort): `resort(link)` is what
/// the header links call. Numeric columns (class "int") compare by their leading number.
const STATUS_SORT_JS: &str = "<script type=\"text/javascript\">\n\
// <!--\n\
var status_sorted = null;\n\
function status_key(cell) {\n\
 var t = cell.textContent || cell.innerText || '';\n\
 return cell.className == 'int' ? (parseFloat(t) || 0) : t.toLowerCase();\n\
}\n\
function resort(link) {\n\
 var col = link.parentNode.cellIndex;\n\
 var table = link.parentNode.parentNode.parentNode.parentNode;\n\
 var arrow = link.getElementsByTagName('span')[0];\n\
 var down = arrow.getAttribute('data-dir') != 'down';\n\
 var rows = [];\n\
 for (var i = 1; i < table.rows.length; i++) rows.push(table.rows[i]);\n\
 rows.sort(function (a, b) {\n\
  var x = status_key(a.cells[col]), y = status_key(b.cells[col]);\n\
  var c = x < y ? -1 : (x > y ? 1 : 0);\n\
  return down ? c : -c;\n\
 });\n\
 if (status_sorted && status_sorted !== arrow) {\n\
  status_sorted.innerHTML = ':';\n\
  status_sorted.removeAttribute('data-dir');\n\
 }\n\
 arrow.setAttribute('data-dir', down ? 'down' : 'up');\n\
 arrow.innerHTML = down ? '&darr;' : '&uarr;';\n\
 status_sorted = arrow;\n\
 for (var j = 0; j < rows.length; j++) rows[j].parentNode.appendChild(rows[j]);\n\
}\n\
// -->\n\
</script>\n";

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handlers::dirlist_page::tests::json_check;

    fn text(out: &[u8]) -> &str {
        std::str::from_utf8(out).unwrap()
    }

    /// The value of `key: value` lines.
    fn field<'a>(page: &'a str, key: &str) -> Option<&'a str> {
        page.lines()
            .find_map(|l| l.strip_prefix(key)?.strip_prefix(": "))
    }

    fn busy() -> Stats {
        let mut st = Stats::new(1_000, 10);
        for _ in 0..7 {
            st.request_done();
        }
        st.bytes_written(5000);
        st.conn_change(None, Some(ConnState::ReadHead));
        st.conn_change(None, Some(ConnState::ReadHead));
        st.conn_change(Some(ConnState::ReadHead), Some(ConnState::Write));
        st.conn_change(None, Some(ConnState::KeepAlive));
        st
    }

    #[test]
    fn auto_has_lighttpds_fields_in_order() {
        let st = busy();
        let mut out = b"prefix".to_vec();
        assert_eq!(render_auto(&st, 1_042, &mut out), "text/plain");
        let page = text(&out[6..]);
        let names: Vec<&str> = page.lines().filter_map(|l| l.split(": ").next()).collect();
        assert_eq!(
            names,
            [
                "Total Accesses",
                "Total kBytes",
                "Uptime",
                "BusyServers",
                "IdleServers",
                "Scoreboard"
            ]
        );
        assert_eq!(field(page, "Total Accesses"), Some("7"));
        assert_eq!(field(page, "Total kBytes"), Some("4"));
        assert_eq!(field(page, "Uptime"), Some("42"));
        assert_eq!(field(page, "BusyServers"), Some("3"));
        assert_eq!(field(page, "IdleServers"), Some("7"));
        let board = field(page, "Scoreboard").unwrap();
        assert_eq!(board.len(), 10, "one letter per slot: {board:?}");
        assert_eq!(board.matches('r').count(), 1);
        assert_eq!(board.matches('W').count(), 1);
        assert_eq!(board.matches('k').count(), 1);
        assert_eq!(board.matches('_').count(), 7);
        assert!(page.ends_with('\n'));
    }

    #[test]
    fn tick_moves_counts_into_the_five_second_average() {
        let mut st = Stats::new(100, 4);
        for _ in 0..10 {
            st.request_done();
        }
        st.bytes_written(10 * 1024);
        assert_eq!(st.requests_avg5(), 0.0, "nothing until the second closes");
        assert_eq!(st.requests_total(), 10, "totals include the open second");
        st.tick(101);
        assert_eq!(st.requests_avg5(), 2.0);
        assert_eq!(st.bytes_avg5(), 2048.0);
        assert_eq!(st.requests_total(), 10);
        // Four quiet ticks keep it in the window; the fifth pushes it out.
        for t in 102..=105 {
            st.tick(t);
            assert_eq!(st.requests_avg5(), 2.0, "at {t}");
        }
        st.tick(106);
        assert_eq!(st.requests_avg5(), 0.0);
        assert_eq!(st.requests_total(), 10);
    }

    #[test]
    fn late_tick_counts_skipped_seconds_as_empty() {
        let mut st = Stats::new(0, 4);
        for t in 1..=5 {
            st.request_done();
            st.tick(t);
        }
        assert_eq!(st.requests_avg5(), 1.0);
        // Five requests, then the loop slept three seconds.
        for _ in 0..5 {
            st.request_done();
        }
        st.tick(8);
        // Buckets: [1, 1, 5, 0, 0] for seconds 4..8.
        assert_eq!(st.requests_avg5(), 7.0 / 5.0);
        st.tick(1_000_000);
        assert_eq!(st.requests_avg5(), 0.0);
        assert_eq!(st.requests_total(), 10);
        // A clock that steps back neither panics nor pushes a bucket.
        st.request_done();
        st.tick(10);
        assert_eq!(st.requests_avg5(), 0.0);
        st.tick(11);
        assert_eq!(st.requests_avg5(), 0.2);
    }

    #[test]
    fn connection_gauges_saturate() {
        let mut st = Stats::new(0, 2);
        st.conn_change(Some(ConnState::Write), None);
        assert_eq!(st.connections(), 0);
        st.conn_change(None, Some(ConnState::Linger));
        st.conn_change(None, Some(ConnState::Linger));
        st.conn_change(None, Some(ConnState::Linger));
        assert_eq!(st.in_state(ConnState::Linger), 3);
        assert_eq!(st.idle_slots(), 0, "over the limit is not negative");
        st.conn_change(Some(ConnState::Linger), Some(ConnState::Linger));
        assert_eq!(st.in_state(ConnState::Linger), 3);
    }

    #[test]
    fn json_is_valid_with_lighttpds_keys() {
        let mut st = busy();
        st.tick(1_001);
        let mut out = Vec::new();
        assert_eq!(
            render_json(&st, 1_010, b"json", &mut out),
            "application/javascript"
        );
        let page = text(&out);
        json_check(page).unwrap_or_else(|e| panic!("{e}: {page}"));
        for (k, v) in [
            ("RequestsTotal", "7"),
            ("TrafficTotal", "4"),
            ("Uptime", "10"),
            ("BusyServers", "3"),
            ("IdleServers", "7"),
            ("RequestAverage5s", "1"),
            ("TrafficAverage5s", "0"),
        ] {
            let at = page
                .find(&format!("\"{k}\":"))
                .unwrap_or_else(|| panic!("{k}"));
            let rest = page[at + k.len() + 3..].trim_start();
            assert!(rest.starts_with(v), "{k}: {rest}");
        }
    }

    #[test]
    fn jsonp_only_for_plain_identifiers() {
        let st = busy();
        let mut out = Vec::new();
        render_json(&st, 1_000, b"jsonp=cb_1", &mut out);
        let page = text(&out);
        assert!(
            page.starts_with("cb_1({") && page.ends_with("});"),
            "{page}"
        );
        json_check(&page[5..page.len() - 2]).unwrap();
        for q in [
            &b"jsonp=1cb"[..],
            b"jsonp=",
            b"jsonp=a(b)",
            b"jsonp=alert(1)//",
            b"jsonp=a&x=y",
            b"jsonp=<script>",
        ] {
            let mut out = Vec::new();
            render_json(&st, 1_000, q, &mut out);
            let page = text(&out);
            assert!(page.starts_with('{'), "{q:?}: {page}");
            json_check(page).unwrap();
        }
    }

    #[test]
    fn format_by_query() {
        assert_eq!(StatusFormat::for_query(b"auto"), StatusFormat::Auto);
        assert_eq!(StatusFormat::for_query(b"autox"), StatusFormat::Html);
        assert_eq!(StatusFormat::for_query(b"json"), StatusFormat::Json);
        assert_eq!(StatusFormat::for_query(b"jsonp=f"), StatusFormat::Json);
        assert_eq!(StatusFormat::for_query(b""), StatusFormat::Html);
        assert_eq!(StatusFormat::for_query(b"refresh=5"), StatusFormat::Html);
    }

    fn view<'a>(query: &'a [u8], sort: bool) -> StatusView<'a> {
        StatusView {
            now: 1_000 + 90_061,
            utc_offset: 3600,
            server_tag: "lightd<b>",
            host: b"ex<ample>.org",
            server_name: Some(b"srv\"name"),
            query,
            enable_sort: sort,
        }
    }

    #[test]
    fn html_escapes_what_clients_send() {
        let st = busy();
        let rows = [ConnRow {
            client: "192.0.2.1".parse().unwrap(),
            body_read: 3,
            body_len: 10,
            bytes_sent: 100,
            bytes_queued: 200,
            state: ConnState::ReadBody,
            age_secs: 4,
            host: b"h<script>alert(1)</script>",
            uri: b"/a?b=\"'&\x01\xff",
            file: b"/srv/<x>",
        }];
        let mut out = Vec::new();
        let ct = render_html(&st, &view(b"", true), &mut rows.iter().copied(), &mut out);
        assert_eq!(ct, "text/html");
        let page = text(&out);
        assert!(!page.contains("<script>alert"), "{page}");
        assert!(!page.contains("<x>") && !page.contains("<ample>") && !page.contains("lightd<b>"));
        assert!(page.contains("<h1>Server-Status (lightd&#x3C;b&#x3E;)</h1>"));
        assert!(page.contains("h&#x3C;script&#x3E;alert(1)&#x3C;/script&#x3E;"));
        assert!(page.contains("/a?b=&#x22;&#x27;&#x26;&#x01;&#xFF;"));
        assert!(page.contains("ex&#x3C;ample&#x3E;.org (srv&#x22;name)"));
        assert!(page.contains("<td class=\"int\">3/10</td><td class=\"int\">100/200</td>"));
        assert!(page.contains("<td class=\"string\">readpost</td>"));
        // 90 061 s = 1 day 1 hour 1 min 1 s; start 1000 s + 1 h offset = 01:16:40 local.
        assert!(page.contains("1 days 1 hours 1 min 1 s"), "{page}");
        assert!(page.contains("1970-01-01 01:16:40"));
        assert!(page.contains("<b>3 connections</b>\nrWk\n"), "{page}");
        assert!(page.contains("7  req</td>"), "unit is two characters");
    }

    #[test]
    fn enable_sort_controls_script_and_header_links() {
        let st = busy();
        let mut on = Vec::new();
        render_html(&st, &view(b"", true), &mut std::iter::empty(), &mut on);
        let mut off = Vec::new();
        render_html(&st, &view(b"", false), &mut std::iter::empty(), &mut off);
        let (on, off) = (text(&on), text(&off));
        assert!(on.contains("function resort(") && on.contains("class=\"sortheader\""));
        assert!(!off.contains("<script") && !off.contains("sortheader\""));
        assert!(off.contains("<th class=\"status\">Client IP</th>"));
    }

    #[test]
    fn refresh_meta() {
        let st = busy();
        for (q, want) in [
            (&b"refresh=5"[..], Some("content=\"5\"")),
            (b"refresh=99999999999", Some("content=\"604800\"")),
            (b"refresh=0", None),
            (b"refresh=x", None),
            (b"x=1", None),
        ] {
            let mut out = Vec::new();
            render_html(&st, &view(q, false), &mut std::iter::empty(), &mut out);
            let page = text(&out);
            match want {
                Some(w) => assert!(page.contains(w), "{q:?}"),
                None => assert!(!page.contains("http-equiv"), "{q:?}"),
            }
        }
    }

    #[test]
    fn scaled_units() {
        for (v, step, want) in [
            (0.0, 1000, "0  "),
            (999.0, 1000, "999  "),
            (1000.0, 1000, "1000  "),
            (1001.0, 1000, "1 k"),
            (2_500_000.0, 1000, "2 M"),
            (1536.0, 1024, "1.50 k"),
            (512.0, 1024, "512.00  "),
            (f64::INFINITY, 1024, "0.00 Y"),
        ] {
            let mut s = String::new();
            scaled(v, step, &mut s);
            assert_eq!(s, want, "{v}");
        }
    }

    #[test]
    fn statistics_sorted_and_clean() {
        let st = busy();
        let mut out = Vec::new();
        let extra = [("zz.last", 9), ("a\nforged: 1", 2)];
        assert_eq!(
            render_statistics(&st, 1_005, &extra, &mut out),
            "text/plain"
        );
        let page = text(&out);
        let keys: Vec<&str> = page
            .lines()
            .map(|l| l.split(": ").next().unwrap())
            .collect();
        let mut sorted = keys.clone();
        sorted.sort();
        assert_eq!(keys, sorted);
        assert!(page.lines().all(|l| l.matches(": ").count() == 1), "{page}");
        assert_eq!(field(page, "a_forged__1"), Some("2"));
        assert_eq!(field(page, "zz.last"), Some("9"));
        assert_eq!(field(page, "status.requests"), Some("7"));
        assert_eq!(field(page, "status.uptime"), Some("5"));
        assert_eq!(field(page, "status.connections.write"), Some("1"));
        assert_eq!(field(page, "status.connections"), Some("3"));
    }

    #[test]
    fn config_page_lists_modules() {
        let mut out = Vec::new();
        let info = ConfigInfo {
            server_tag: "lightd",
            version: "lightd/0.1.0",
            modules: &["indexfile", "dirlisting", "<evil>", "staticfile"],
        };
        assert_eq!(render_config(&info, &mut out), "text/html");
        let page = text(&out);
        assert!(page.contains("<h1>lightd</h1>"));
        assert!(page.contains("indexfile<br />dirlisting<br />&#x3C;evil&#x3E;<br />staticfile"));
        assert!(page.contains("lightd/0.1.0"));
        assert!(page.contains("Loaded Modules"));
    }
}
