//! mod_status against the real binary: the status page's three forms, the statistics and
//! config pages, counters that follow the traffic, and the modules that guard the URLs.
#![cfg(feature = "status")]

mod common;

use std::time::{Duration, Instant};

use common::*;

const STATUS: &str = "server.modules = ( \"mod_access\", \"mod_status\" )\n\
                      status.status-url = \"/server-status\"\n\
                      status.statistics-url = \"/server-statistics\"\n\
                      status.config-url = \"/server-config\"";

fn site(extra: &str) -> Server {
    builder()
        .file("index.html", "home")
        .config(STATUS)
        .config(extra)
        .start()
}

/// The `?auto` form as (field, value) pairs.
fn auto(s: &Server) -> Vec<(String, String)> {
    let r = s.get("/server-status?auto");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.header("Content-Type"), Some("text/plain"));
    r.text()
        .lines()
        .map(|l| {
            let (k, v) = l.split_once(": ").unwrap_or_else(|| panic!("{l:?}"));
            (k.to_string(), v.to_string())
        })
        .collect()
}

fn field(fields: &[(String, String)], name: &str) -> String {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("no {name} in {fields:?}"))
}

fn num(fields: &[(String, String)], name: &str) -> u64 {
    field(fields, name).parse().unwrap()
}

#[test]
fn auto_form_has_lighttpds_fields() {
    let s = site("server.max-connections = 16");
    let f = auto(&s);
    let names: Vec<&str> = f.iter().map(|(k, _)| k.as_str()).collect();
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
    // This connection is the one busy; the scoreboard has a letter per slot.
    assert_eq!(num(&f, "BusyServers"), 1, "{f:?}");
    assert_eq!(num(&f, "IdleServers"), 15, "{f:?}");
    let board = field(&f, "Scoreboard");
    assert_eq!(board.len(), 16, "{board}");
    assert!(
        board.starts_with('W') && board[1..].bytes().all(|b| b == b'_'),
        "{board}"
    );
}

#[test]
fn counters_follow_requests_and_bytes() {
    let s = site("");
    let before = auto(&s);
    for _ in 0..5 {
        assert_eq!(s.get("/index.html").status, 200);
    }
    let after = auto(&s);
    // The five, and the first status request (counted when it was done).
    let (a, b) = (
        num(&before, "Total Accesses"),
        num(&after, "Total Accesses"),
    );
    assert!(b >= a + 6, "{before:?} -> {after:?}");
    let bytes = |s: &Server| -> u64 {
        let r = s.get("/server-statistics");
        let t = r.text();
        t.lines()
            .find_map(|l| l.strip_prefix("status.bytes-out: "))
            .unwrap_or_else(|| panic!("{t}"))
            .parse()
            .unwrap()
    };
    let x = bytes(&s);
    assert_eq!(s.get("/index.html").status, 200);
    let y = bytes(&s);
    // At least the 200's head and its 4-byte body, and the statistics page before it.
    assert!(y > x + 100, "{x} -> {y}");
}

#[test]
fn json_form_and_jsonp() {
    let s = site("");
    s.get("/index.html");
    let r = s.get("/server-status?json");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("application/javascript"));
    let body = r.text();
    for key in [
        "\"RequestsTotal\": ",
        "\"TrafficTotal\": ",
        "\"Uptime\": ",
        "\"BusyServers\": ",
        "\"IdleServers\": ",
        "\"RequestAverage5s\":",
        "\"TrafficAverage5s\":",
    ] {
        assert!(body.contains(key), "{key}: {body}");
    }
    assert!(body.starts_with('{') && body.ends_with('}'), "{body}");
    let body = s.get("/server-status?jsonp=cb_1").text();
    assert!(
        body.starts_with("cb_1({") && body.ends_with("});"),
        "{body}"
    );
    // Not an identifier: plain JSON, the callback ignored.
    let body = s.get("/server-status?jsonp=alert(1)").text();
    assert!(body.starts_with('{'), "{body}");
}

#[test]
fn html_page_escapes_and_sorts() {
    let s = site("server.tag = \"tag<&>\"");
    let r = s.request(b"GET /server-status?refresh=5 HTTP/1.1\r\nHost: status.example\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.header("Content-Type"), Some("text/html"));
    let body = r.text();
    assert!(
        body.contains("<h1>Server-Status (tag&#x3C;&#x26;&#x3E;)</h1>"),
        "{body}"
    );
    assert!(!body.contains("tag<&>"), "{body}");
    assert!(
        body.contains("<td class=\"string\">status.example</td>"),
        "{body}"
    );
    assert!(
        body.contains("<meta http-equiv=\"refresh\" content=\"5\">"),
        "{body}"
    );
    assert!(body.contains("resort(this)"), "{body}");
    // The request itself is in the connection table.
    assert!(
        body.contains("<td class=\"string\">/server-status?refresh=5</td>"),
        "{body}"
    );
    let s = site("status.enable-sort = \"disable\"");
    let body = s.get("/server-status").text();
    assert!(!body.contains("resort("), "{body}");
    assert!(
        body.contains("<th class=\"status\">Client IP</th>"),
        "{body}"
    );
}

#[test]
fn statistics_and_config_pages() {
    let s = site("");
    let r = s.get("/server-statistics");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("text/plain"));
    let body = r.text();
    let keys: Vec<&str> = body.lines().filter_map(|l| l.split(": ").next()).collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "{body}");
    assert!(body.contains("status.requests: "), "{body}");
    let r = s.get("/server-config");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("Content-Type"), Some("text/html"));
    let body = r.text();
    assert!(body.contains("mod_status<br />"), "{body}");
    assert!(body.contains("linux-sysepoll"), "{body}");
    // HEAD: the head alone.
    let mut c = s.connect();
    c.send(b"HEAD /server-config HTTP/1.1\r\nHost: x\r\n\r\n");
    let h = c.read_head_response();
    assert_eq!(h.status, 200);
    assert!(h.body.is_empty());
    assert!(c.get("/index.html").text() == "home");
}

#[test]
fn keep_alive_and_closed_connections_in_the_scoreboard() {
    let s = site("");
    let mut idle = s.connect();
    assert_eq!(idle.get("/index.html").text(), "home");
    let board = field(&auto(&s), "Scoreboard");
    assert!(
        board.starts_with("Wk_") || board.starts_with("kW_"),
        "{board}"
    );
    drop(idle);
    // The server notices the close on its next turn; wait for it with a deadline.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let f = auto(&s);
        if num(&f, "BusyServers") == 1 {
            assert!(field(&f, "Scoreboard").starts_with("W_"), "{f:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the closed connection is still counted: {f:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn status_url_in_a_conditional_block() {
    let s = builder()
        .file("index.html", "home")
        .config("server.modules = ( \"mod_status\" )")
        .config("$HTTP[\"host\"] == \"admin.example\" { status.status-url = \"/st\" }")
        .start();
    let r = s.request(b"GET /st?auto HTTP/1.1\r\nHost: admin.example\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert!(r.text().starts_with("Total Accesses: "), "{}", r.describe());
    let r = s.request(b"GET /st?auto HTTP/1.1\r\nHost: www.example\r\nConnection: close\r\n\r\n");
    assert_eq!(r.status, 404, "{}", r.describe());
}

#[test]
fn access_deny_guards_the_status_url() {
    let s = site(
        "$HTTP[\"remote-ip\"] != \"10.0.0.0/8\" {\n  \
         $HTTP[\"url\"] =^ \"/server-\" { url.access-deny = ( \"\" ) }\n}",
    );
    for url in [
        "/server-status",
        "/server-status?auto",
        "/server-statistics",
        "/server-config",
    ] {
        let r = s.get(url);
        assert_eq!(r.status, 403, "{url}: {}", r.describe());
        assert!(!r.text().contains("Total Accesses"), "{url}");
    }
    assert_eq!(s.get("/index.html").status, 200);
}

#[test]
fn without_mod_status_the_urls_are_plain_paths() {
    let b = builder()
        .file("index.html", "home")
        .config("status.status-url = \"/server-status\"");
    let out = b.run(&["-t"]);
    assert!(out.status.success(), "{}", out.describe());
    assert!(
        out.stderr
            .contains("status.status-url is ignored: mod_status is not in server.modules"),
        "{}",
        out.describe()
    );
    let s = b.start();
    assert_eq!(s.get("/server-status").status, 404);
}
