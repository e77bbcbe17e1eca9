//! mod_accesslog against the running server: lighttpd's format directives over real
//! requests, values other modules change (url.rewrite, mod_setenv), JSON escaping of hostile
//! header values, and formats lighttpd refuses at start-up.
#![cfg(feature = "accesslog")]

mod common;

use common::*;
use std::path::Path;
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

/// The first access log line that contains `marker`.
fn line_with(log: &Path, marker: &str) -> String {
    wait_file_line(log, WAIT, |l| l.contains(marker))
        .unwrap_or_else(|| panic!("no access log line with {marker:?} in {}", log.display()))
}

/// A server logging with `format` (and `extra` config), the log's path.
fn server(format: &str, extra: &str) -> (Server, std::path::PathBuf) {
    let b = builder().file("index.html", "hello").config(&format!(
        "server.modules = ( \"mod_accesslog\", \"mod_rewrite\", \"mod_setenv\" )\n\
         accesslog.filename = \"{{dir}}/access.log\"\n\
         accesslog.format = \"{format}\"\n{extra}"
    ));
    let log = b.dir().join("access.log");
    (b.start(), log)
}

#[test]
fn lighttpds_default_format() {
    let b = builder()
        .file("index.html", "hello")
        .config("accesslog.filename = \"{dir}/access.log\"");
    let log = b.dir().join("access.log");
    let s = b.start();
    let r = s.request(
        b"GET /index.html?a=1 HTTP/1.1\r\nHost: example.org\r\nReferer: http://r/\r\n\
          User-Agent: ua/1\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    let line = line_with(&log, "index.html");
    // %h %V %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i"
    let (start, rest) = line.split_once(" [").expect("a %t field");
    assert_eq!(start, "127.0.0.1 example.org -");
    let (_, rest) = rest.split_once("] ").expect("the end of %t");
    assert_eq!(
        rest,
        "\"GET /index.html?a=1 HTTP/1.1\" 200 5 \"http://r/\" \"ua/1\""
    );
}

#[test]
fn request_response_and_env_fields() {
    let (s, log) = server(
        "%m|%H|%s|%b|%{X-A}i|%{x-missing}i|%{Content-Type}o|%{Server}o|%{FOO}e|%{sid}C|%v|%p|%X|%k",
        "setenv.add-environment = ( \"FOO\" => \"bar\" )\nserver.tag = \"tagged\"",
    );
    let mut c = s.connect();
    let r = c.request(
        b"GET /index.html HTTP/1.1\r\nHost: h.example\r\nX-A: one\r\nX-A: two\r\n\
          Cookie: a=1; sid=xyz\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    let port = s.addr().port();
    let line = line_with(&log, "GET|");
    assert_eq!(
        line,
        format!("GET|HTTP/1.1|200|5|one, two|-|text/html|tagged|bar|xyz|h.example|{port}|+|0")
    );
    // The second request on the connection, which also closes it.
    c.send(b"HEAD /index.html HTTP/1.0\r\nHost: h.example\r\n\r\n");
    let r = c.read_head_response();
    assert_eq!(r.status, 200, "{}", r.describe());
    let line = line_with(&log, "HEAD|");
    assert!(line.ends_with("|-|1"), "{line}");
    assert!(line.starts_with("HEAD|HTTP/1.0|200|0|-|-|"), "{line}");
}

#[test]
fn query_and_url_after_a_rewrite() {
    let (s, log) = server(
        "%r|%U|%q",
        "url.rewrite-once = ( \"^/old/([^?]*)[?](.*)$\" => \"/index.html?was=$1&$2\" )",
    );
    let r = s.get("/old/page?x=1");
    assert_eq!(r.status, 200, "{}", r.describe());
    // %r is the request as received; %U and %q are the target after the rewrite.
    assert_eq!(
        line_with(&log, "/old/"),
        "GET /old/page?x=1 HTTP/1.1|/index.html|was=page&x=1"
    );
}

#[test]
fn setenv_request_headers_show_in_the_log() {
    let (s, log) = server(
        "%{X-Added}i|%{X-Set}i|%{X-Gone}i|%{User-Agent}i",
        "setenv.add-request-header = ( \"X-Added\" => \"cfg\" )\n\
         setenv.set-request-header = ( \"X-Set\" => \"forced\", \"X-Gone\" => \"\" )",
    );
    let r = s.request(
        b"GET /index.html HTTP/1.1\r\nHost: x\r\nX-Added: client\r\nX-Set: client\r\n\
          X-Gone: client\r\nUser-Agent: marker\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(line_with(&log, "marker"), "client, cfg|forced|-|marker");
}

#[test]
fn durations_and_time_stamps() {
    let (s, log) = server("%D %T %{ms}T %{sec}t %{msec_frac}t %a %A %I %O", "");
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert_eq!(s.get("/index.html").status, 200);
    let line = line_with(&log, "127.0.0.1");
    let f: Vec<&str> = line.split(' ').collect();
    assert_eq!(f.len(), 9, "{line}");
    let usec: i64 = f[0].parse().unwrap();
    let secs: i64 = f[1].parse().unwrap();
    let ms: i64 = f[2].parse().unwrap();
    assert!((1..10_000_000).contains(&usec), "{line}");
    assert!((0..10).contains(&secs), "{line}");
    assert!(ms >= 1 && ms <= usec / 1000 + 1, "{line}");
    let stamp: u64 = f[3].parse().unwrap();
    assert!(stamp >= before && stamp < before + 60, "{line}");
    assert_eq!(f[4].len(), 3, "{line}");
    assert_eq!(f[5], "127.0.0.1");
    assert_eq!(f[6], "127.0.0.1");
    let bytes_in: u64 = f[7].parse().unwrap();
    let bytes_out: u64 = f[8].parse().unwrap();
    assert!(bytes_in > 20, "{line}");
    assert!(bytes_out > 5 + 40, "{line}");
}

#[test]
fn json_escaping_of_hostile_header_values() {
    let (s, log) = server(
        "{\\\"ua\\\":\\\"%{User-Agent}i\\\",\\\"ref\\\":\\\"%{Referer}i\\\"}",
        "accesslog.escaping = \"json\"",
    );
    let r = s.request(
        b"GET /index.html HTTP/1.1\r\nHost: x\r\nUser-Agent: a\"b\\c\tcaf\xc3\xa9\"}\r\n\
          Referer: \"\r\n\r\n",
    );
    assert_eq!(r.status, 200, "{}", r.describe());
    let line = line_with(&log, "{\"ua\"");
    assert_eq!(
        line,
        "{\"ua\":\"a\\\"b\\\\c\\tcaf\u{e9}\\\"}\",\"ref\":\"\\\"\"}"
    );
    // The default escaping writes the same bytes as \xHH.
    let (s, log) = server("%{User-Agent}i", "");
    let r = s.request(b"GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: q\"\t\xc3\xa9\r\n\r\n");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(line_with(&log, "q"), "q\\\"\\t\\xC3\\xA9");
}

#[test]
fn a_bad_format_is_refused_with_file_and_line() {
    for (format, msg) in [
        ("%h %Z", "unknown format-specifier %Z"),
        ("%t %{%s}t", "twice"),
        ("%{x}a", "%{mask}a"),
        ("", "must not be empty"),
    ] {
        let b = builder().config(&format!(
            "accesslog.filename = \"{{dir}}/access.log\"\n\naccesslog.format = \"{format}\""
        ));
        let out = b.run(&["-t"]);
        assert!(!out.status.success(), "{format:?}\n{}", out.describe());
        assert!(
            out.stderr.contains("lightd.conf:6: accesslog.format: "),
            "{format:?}\n{}",
            out.describe()
        );
        assert!(out.stderr.contains(msg), "{format:?}\n{}", out.describe());
    }
}

#[test]
fn formats_per_conditional_block_share_one_file() {
    let b = builder().file("index.html", "hello").config(
        "accesslog.filename = \"{dir}/access.log\"\naccesslog.format = \"plain %U\"\n\
         $HTTP[\"url\"] =^ \"/index\" {\n  accesslog.format = \"cond %U %s\"\n}",
    );
    let log = b.dir().join("access.log");
    let s = b.start();
    assert_eq!(s.get("/nothing").status, 404);
    assert_eq!(s.get("/index.html").status, 200);
    assert_eq!(line_with(&log, "plain"), "plain /nothing");
    assert_eq!(line_with(&log, "cond"), "cond /index.html 200");
}
