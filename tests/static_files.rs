//! Serving files and directories: bytes, types, redirects, index files, listings, exclusions,
//! symlinks and files that are neither (FIFOs).

mod common;

use common::*;
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::symlink;
use std::time::Duration;

#[test]
fn serves_a_large_file_byte_exact() {
    let data = pattern(3 * 1024 * 1024 + 17);
    let s = builder().file("big.bin", &data).start();
    let r = s.get("/big.bin");
    assert_eq!(r.status, 200, "{}", r.head);
    assert_eq!(
        r.header("Content-Length"),
        Some(data.len().to_string().as_str())
    );
    assert!(r.body == data, "body differs from the file");
}

#[test]
fn empty_file() {
    let s = builder().file("empty.txt", "").start();
    let mut c = s.connect();
    let r = c.get("/empty.txt");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.header("Content-Length"), Some("0"));
    // The connection is still usable afterwards.
    assert_eq!(c.get("/empty.txt").status, 200);
}

/// Without mimetype.assign, the built-in table gives lighttpd's own default types.
#[test]
fn default_mime_types() {
    let mut b = builder();
    for name in [
        "a.html",
        "a.txt",
        "a.css",
        "a.js",
        "a.png",
        "favicon.ico",
        "README",
        "noext",
    ] {
        b = b.file(name, "x");
    }
    let s = b.start();
    for (path, want) in [
        ("/a.html", "text/html"),
        ("/a.txt", "text/plain;charset=utf-8"),
        ("/a.css", "text/css;charset=utf-8"),
        ("/a.js", "text/javascript"),
        ("/a.png", "image/png"),
        ("/favicon.ico", "image/vnd.microsoft.icon"),
        ("/README", "text/plain;charset=utf-8"),
        ("/noext", "application/octet-stream"),
    ] {
        let r = s.get(path);
        assert_eq!(r.status, 200, "{}", r.describe());
        assert_eq!(r.header("Content-Type"), Some(want), "{path}\n{}", r.head);
    }
}

#[test]
fn missing_file_is_404() {
    let s = builder().file("a.txt", "x").start();
    assert_eq!(s.get("/nope.txt").status, 404);
    assert_eq!(s.get("/no/such/dir/file").status, 404);
}

#[test]
fn percent_encoded_names() {
    let s = builder().file("a b.txt", "with a space").start();
    let r = s.get("/a%20b.txt");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "with a space"),
        "{}",
        r.describe()
    );
}

#[test]
fn directory_without_slash_redirects_keeping_the_query() {
    let s = builder().file("sub/index.html", "sub index").start();
    let r = s.get("/sub?a=1&b=2");
    assert_eq!(r.status, 301, "{}", r.describe());
    let loc = r
        .header("Location")
        .unwrap_or_else(|| panic!("no Location\n{}", r.describe()));
    assert!(loc.ends_with("/sub/?a=1&b=2"), "Location {loc:?}");
    let r = s.get("/sub");
    let loc = r.header("Location").unwrap_or("");
    assert!(loc.ends_with("/sub/"), "Location {loc:?}");
}

/// Raw UTF-8 bytes in the request-target are accepted (as lighttpd and nginx accept them)
/// and mean what their percent-encoded form means; the redirect to "dir/" encodes them again.
/// lighttpd's request.t: "internal redirect in directory with special characters".
#[test]
fn raw_non_ascii_bytes_in_the_target() {
    let s = builder()
        .file("~test \u{e4}_/index.html", "umlaut index")
        .file("caf\u{e9}.txt", "coffee")
        .start();
    for (target, want) in [
        ("/~test%20\u{e4}_", "/~test%20%C3%A4_/"),
        ("/~test%20\u{e4}_?foo", "/~test%20%C3%A4_/?foo"),
        ("/~test%20%C3%A4_?\u{e4}=1", "/~test%20%C3%A4_/?%C3%A4=1"),
    ] {
        // HTTP/1.0 without Host, as request.t sends it.
        let r = s.request(format!("GET {target} HTTP/1.0\r\n\r\n").as_bytes());
        assert_eq!(r.status, 301, "GET {target}\n{}", r.describe());
        assert_eq!(r.header("Location"), Some(want), "GET {target}");
    }
    for target in ["/~test%20\u{e4}_/", "/~test%20%c3%a4_/"] {
        let r = s.get(target);
        assert_eq!(
            (r.status, r.text().as_str()),
            (200, "umlaut index"),
            "{target}"
        );
    }
    for target in [
        "/caf\u{e9}.txt",
        "/caf%C3%A9.txt",
        "/caf\u{e9}.txt?x=\u{e9}",
    ] {
        let r = s.get(target);
        assert_eq!((r.status, r.text().as_str()), (200, "coffee"), "{target}");
    }
    // Raw bytes that are not UTF-8 get the 400 their percent-encoded form gets: Latin-1,
    // overlong dots, a surrogate, a truncated sequence.
    for target in [
        &b"/caf\xe9.txt"[..],
        b"/\xc0\xae\xc0\xae/caf\xc3\xa9.txt",
        b"/\xed\xa0\x80",
        b"/caf\xc3",
    ] {
        let mut raw = b"GET ".to_vec();
        raw.extend_from_slice(target);
        raw.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\n\r\n");
        let r = s.request(&raw);
        assert_eq!(r.status, 400, "{}\n{}", target.escape_ascii(), r.describe());
    }
    // Control bytes and DEL stay refused in the target.
    for target in [&b"/caf\x7f"[..], b"/caf\x1b"] {
        let mut raw = b"GET ".to_vec();
        raw.extend_from_slice(target);
        raw.extend_from_slice(b" HTTP/1.1\r\nHost: x\r\n\r\n");
        assert_eq!(s.request(&raw).status, 400, "{}", target.escape_ascii());
    }
}

/// The redirect to "dir/" is built from the normalised path. Built from the raw one,
/// `//evil.example/../sub` gave `Location: //evil.example/../sub/`, which a browser reads as
/// another site (an open redirect).
#[test]
fn directory_redirect_stays_on_site() {
    let s = builder()
        .file("sub/index.html", "sub index")
        .file("a b/index.html", "a b index")
        .start();
    for (path, want) in [
        ("//evil.example/../sub", "/sub/"),
        ("//evil.example/../sub?x=1", "/sub/?x=1"),
        // Each segment is encoded again, and the query string is kept as sent.
        ("/a%20b", "/a%20b/"),
        ("/sub?x=1", "/sub/?x=1"),
    ] {
        let r = s.get(path);
        assert_eq!(r.status, 301, "GET {path}\n{}", r.describe());
        let loc = r
            .header("Location")
            .unwrap_or_else(|| panic!("GET {path}: no Location\n{}", r.describe()));
        assert!(
            loc.starts_with('/') && !loc.starts_with("//"),
            "GET {path}: Location {loc:?} points off-site"
        );
        assert_eq!(loc, want, "GET {path}: Location");
    }
    // Where the redirect points is served.
    let r = s.get("/a%20b/");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "a b index"),
        "{}",
        r.describe()
    );
}

#[test]
fn index_files_in_configured_order() {
    let s = builder()
        .file("d1/index.html", "d1 index.html")
        .file("d2/index.html", "d2 index.html")
        .file("d2/home.htm", "d2 home.htm")
        .config("index-file.names = (\"home.htm\", \"index.html\")")
        .start();
    let r = s.get("/d1/");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "d1 index.html"),
        "{}",
        r.describe()
    );
    let r = s.get("/d2/");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "d2 home.htm"),
        "{}",
        r.describe()
    );
    assert!(r
        .header("Content-Type")
        .is_some_and(|c| c.starts_with("text/html")));
}

#[test]
fn default_index_file_is_index_html() {
    let s = builder().file("index.html", "root index").start();
    let r = s.get("/");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "root index"),
        "{}",
        r.describe()
    );
}

#[test]
fn directory_listing_escapes_names() {
    let s = builder()
        .file("list/<b>&x.txt", "x")
        .file("list/plain.txt", "x")
        .file("list/subdir/inner.txt", "x")
        .config("dir-listing.activate = \"enable\"")
        .start();
    let r = s.get("/list/");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert!(
        r.header("Content-Type")
            .is_some_and(|c| c.starts_with("text/html")),
        "{}",
        r.describe()
    );
    let body = r.text();
    assert!(body.contains("plain.txt"), "{body}");
    assert!(body.contains("subdir"), "{body}");
    assert!(
        body.contains("&#x3C;b&#x3E;&#x26;x.txt"),
        "the name should be HTML-escaped\n{body}"
    );
    assert!(
        !body.contains("<b>&x.txt"),
        "the raw name must not appear\n{body}"
    );
}

#[test]
fn directory_without_index_or_listing_is_refused() {
    let s = builder().file("noindex/file.txt", "x").start();
    let r = s.get("/noindex/");
    assert_ne!(r.status, 200, "{}", r.describe());
    assert!((400..500).contains(&r.status), "{}", r.describe());
    assert!(!r.text().contains("file.txt"), "{}", r.describe());
}

#[test]
fn excluded_extensions_are_403() {
    let s = builder()
        .file("script.php", "<?php secret(); ?>")
        .file("ok.txt", "fine")
        .config("static-file.exclude-extensions = (\".php\", \".pl\")")
        .start();
    let r = s.get("/script.php");
    assert_eq!(r.status, 403, "{}", r.describe());
    assert!(!r.text().contains("secret()"));
    assert_eq!(s.get("/ok.txt").status, 200);
}

fn symlink_server(follow: &str) -> Server {
    let b = builder().file("plain.txt", "plain");
    let outside = b.dir().join("outside.txt");
    write_file(&outside, "OUTSIDE-CONTENT");
    symlink(&outside, b.docroot().join("link.txt")).unwrap();
    b.config(&format!("server.follow-symlink = \"{follow}\""))
        .start()
}

#[test]
fn symlink_out_of_docroot_refused_when_disabled() {
    let s = symlink_server("disable");
    let r = s.get("/link.txt");
    assert_eq!(r.status, 403, "{}", r.describe());
    assert!(!r.text().contains("OUTSIDE-CONTENT"));
    assert_eq!(s.get("/plain.txt").status, 200);
}

#[test]
fn symlink_followed_when_enabled() {
    let s = symlink_server("enable");
    let r = s.get("/link.txt");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "OUTSIDE-CONTENT"),
        "{}",
        r.describe()
    );
}

/// A symlinked file and a symlinked directory in `list/`, both pointing out of the docroot,
/// beside a plain file; the listing of `list/` with server.follow-symlink = `follow`.
fn listing_with_symlinks(follow: &str) -> String {
    let b = builder().file("list/plain.txt", "plain");
    let outside = b.dir().join("outside.txt");
    write_file(&outside, "OUTSIDE-CONTENT");
    write_file(&b.dir().join("outside-dir/inner.txt"), "inner");
    symlink(&outside, b.docroot().join("list/linked-file.txt")).unwrap();
    symlink(
        b.dir().join("outside-dir"),
        b.docroot().join("list/linked-dir"),
    )
    .unwrap();
    let s = b
        .config("dir-listing.activate = \"enable\"")
        .config(&format!("server.follow-symlink = \"{follow}\""))
        .start();
    let r = s.get("/list/");
    assert_eq!(r.status, 200, "{}", r.describe());
    let body = r.text();
    assert!(
        body.contains("plain.txt"),
        "no plain.txt in the listing\n{body}"
    );
    body
}

/// With symlinks not followed, a listing must not offer them (they could not be fetched) nor
/// describe their targets; it used to list them as what they point to.
#[test]
fn listing_leaves_out_symlinks_when_not_followed() {
    let body = listing_with_symlinks("disable");
    for name in ["linked-file", "linked-dir"] {
        assert!(
            !body.contains(name),
            "{name} is listed with follow-symlink disabled\n{body}"
        );
    }
}

#[test]
fn listing_shows_symlinks_when_followed() {
    let body = listing_with_symlinks("enable");
    for name in ["linked-file.txt", "linked-dir"] {
        assert!(
            body.contains(name),
            "{name} is not listed with follow-symlink enabled\n{body}"
        );
    }
}

/// How long a request may take to be answered before the server counts as frozen: far more
/// than a loaded machine needs for a small file, far less than the socket timeout.
const PROMPT: Duration = Duration::from_secs(5);

/// A FIFO under the docroot is refused, and at once: a plain open() of a FIFO waits for a
/// writer, which in a single-threaded server froze every connection, not just this one.
#[test]
fn fifo_is_refused_without_freezing_the_server() {
    let b = builder().file("other.txt", "other file");
    let fifo = b.docroot().join("fifo");
    let c_path = CString::new(fifo.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    let rc = unsafe { libc::mkfifo(c_path.as_ptr(), 0o644) };
    assert_eq!(
        rc,
        0,
        "mkfifo {}: {}",
        fifo.display(),
        io::Error::last_os_error()
    );
    let s = b.start();

    // No writer ever opens the FIFO. Whichever request the server reaches first, a blocking
    // open leaves one of them unanswered.
    let mut at_fifo = s.connect();
    at_fifo.set_read_timeout(PROMPT);
    at_fifo.send(&get("/fifo"));
    let mut other = s.connect();
    other.set_read_timeout(PROMPT);
    other.send(&get("/other.txt"));
    let r = other.try_read_response(false).unwrap_or_else(|e| {
        panic!("GET /other.txt beside GET /fifo: no answer within {PROMPT:?} ({e}): frozen")
    });
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "other file"),
        "{}",
        r.describe()
    );
    let r = at_fifo
        .try_read_response(false)
        .unwrap_or_else(|e| panic!("GET /fifo: no answer within {PROMPT:?} ({e})"));
    assert_eq!(r.status, 403, "{}", r.describe());
    // And the server carries on.
    assert_eq!(s.get("/other.txt").status, 200);
}

/// A chmod changes only a file's ctime. The small-file cache must notice it (lighttpd's stat
/// cache does, within seconds) instead of serving the cached copy of a file nobody may read
/// any more.
#[test]
fn chmod_of_a_cached_file_is_noticed() {
    use std::os::unix::fs::PermissionsExt;
    let mut b = builder().file("secret.txt", "was public");
    // Permissions do not stop root: serve as an ordinary user when the tests run as root.
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        b = b.config("server.username = \"nobody\"");
    }
    let path = b.docroot().join("secret.txt");
    backdate(&path, 60);
    let s = b.start();
    let mut c = s.connect();
    for _ in 0..3 {
        let r = c.get("/secret.txt");
        assert_eq!((r.status, r.body.as_slice()), (200, &b"was public"[..]));
    }
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o000)).unwrap();
    // The cache looks at each file at most once a second; allow for a slow machine.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut last = 0;
    while std::time::Instant::now() < deadline {
        last = c.get("/secret.txt").status;
        if last == 403 {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(last, 403, "a file chmodded 000 is still served");
}

/// An in-place rewrite (`: > f; cp new f`) has a moment when the file is empty. A request in
/// that moment may see it empty, but the cache must not keep that moment: the next request,
/// in the same second, gets the new content.
#[test]
fn a_file_caught_empty_mid_rewrite_is_not_served_empty_afterwards() {
    let b = builder().file("page.html", "old content, fully written");
    let path = b.docroot().join("page.html");
    backdate(&path, 60);
    let s = b.start();
    let mut c = s.connect();
    assert_eq!(c.get("/page.html").body, b"old content, fully written");
    let secs = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
    };
    let cached_in = secs().as_secs();
    // The cache revalidates a file once per wall-clock second, so the whole rewrite must
    // happen within one second, a later one than the cached copy was checked in (within that
    // second the old copy is served by design): start early in a new second, and try again if
    // it did not fit.
    for attempt in 0..5 {
        let now = secs();
        if now.subsec_millis() > 300 || now.as_secs() == cached_in {
            std::thread::sleep(Duration::from_millis(1000 - u64::from(now.subsec_millis())));
        }
        let second = secs().as_secs();
        std::fs::write(&path, "").unwrap();
        let during = c.get("/page.html");
        let content = format!("new content {attempt}");
        std::fs::write(&path, &content).unwrap();
        let after = c.get("/page.html");
        if secs().as_secs() != second {
            continue;
        }
        assert_eq!(during.status, 200);
        assert_eq!(
            String::from_utf8_lossy(&after.body),
            content,
            "the empty moment was cached: {}",
            after.describe()
        );
        return;
    }
    panic!("could not fit a rewrite into one second in 5 attempts");
}

/// A 304 carries the fields a 200 would carry about the representation, as lighttpd's does:
/// Content-Type, ETag and Last-Modified, but neither a body nor Content-Length (nor
/// Accept-Ranges, which lighttpd adds to a 200 only). lighttpd's request.t: "Status 304 has
/// no Content-Length (#1002)".
#[test]
fn not_modified_keeps_the_representation_fields() {
    let s = builder()
        .file("page.html", "<p>x</p>\n")
        .file("notes.txt", "notes\n")
        .start();
    for path in ["/page.html", "/notes.txt"] {
        let full = s.get(path);
        assert_eq!(full.status, 200, "{}", full.describe());
        let ctype = full
            .header("Content-Type")
            .expect("Content-Type")
            .to_string();
        let etag = full.header("ETag").expect("ETag").to_string();
        let lm = full.header("Last-Modified").expect("Last-Modified");
        for cond in [
            format!("If-None-Match: {etag}"),
            format!("If-Modified-Since: {lm}"),
        ] {
            // HTTP/1.0 without Host, as request.t sends it; HEAD as well as GET.
            for method in ["GET", "HEAD"] {
                let r = s.request(format!("{method} {path} HTTP/1.0\r\n{cond}\r\n\r\n").as_bytes());
                let what = format!("{method} {path} with {cond}\n{}", r.describe());
                assert_eq!(r.status, 304, "{what}");
                assert_eq!(r.header("Content-Type"), Some(ctype.as_str()), "{what}");
                assert_eq!(r.header("ETag"), Some(etag.as_str()), "{what}");
                assert_eq!(r.header("Last-Modified"), Some(lm), "{what}");
                assert_eq!(r.header("Content-Length"), None, "{what}");
                assert_eq!(r.header("Accept-Ranges"), None, "{what}");
                assert!(r.body.is_empty(), "{what}");
            }
        }
    }
}
