//! lighttpd's request modules against the real binary: mod_access, mod_alias, mod_redirect,
//! mod_rewrite, mod_setenv, mod_expire and the error documents, each with its bad inputs
//! (escapes, loops, hostile captures).

mod common;

use common::*;

const MODS: &str = "server.modules = ( \"mod_access\", \"mod_alias\", \"mod_redirect\", \
                    \"mod_rewrite\", \"mod_setenv\", \"mod_expire\" )";

fn site(extra: &str) -> Builder {
    builder()
        .file("index.html", "home")
        .file("a.txt", "text a")
        .config(MODS)
        .config(extra)
}

fn get(s: &Server, path: &str, host: &str) -> Response {
    s.request(
        format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
}

#[test]
fn access_deny_and_allow_by_suffix() {
    let s = site(
        "url.access-deny = ( \"~\", \".inc\" )\n\
         $HTTP[\"url\"] =^ \"/pub/\" {\n  url.access-allow = ( \".txt\" )\n}",
    )
    .file("db.inc", "secret")
    .file("x.html~", "backup")
    .file("pub/ok.txt", "fine")
    .file("pub/no.html", "not allowed")
    .file("dir/index.inc", "index secret")
    .start();
    for (path, status) in [
        ("/db.inc", 403),
        ("/x.html~", 403),
        ("/a.txt", 200),
        ("/pub/ok.txt", 200),
        ("/pub/no.html", 403),
        // The allow list wins over the deny list inside its block; outside, deny applies.
        ("/pub/", 403),
        // Encoded and dot-segment spellings reach the same normalised path.
        ("/%64b.inc", 403),
        ("/pub/../db.inc", 403),
        ("/DB.INC", 404),
    ] {
        let r = s.get(path);
        assert_eq!(r.status, status, "{path}: {}", r.describe());
        assert!(
            !r.text().contains("secret"),
            "{path} leaked: {}",
            r.describe()
        );
    }
    // A directory whose index file is denied is denied too (lighttpd checks the index).
    let s2 = site("url.access-deny = ( \".inc\" )\nindex-file.names = ( \"index.inc\" )")
        .file("dir/index.inc", "index secret")
        .start();
    let r = s2.get("/dir/");
    assert_eq!(r.status, 403, "{}", r.describe());
    // "" denies everything.
    let s3 = site("url.access-deny = ( \"\" )").start();
    assert_eq!(s3.get("/index.html").status, 403);
}

#[test]
fn alias_longest_prefix_and_no_escape() {
    let b = site("");
    let dir = b.dir().to_path_buf();
    std::fs::create_dir_all(dir.join("icons/sub")).unwrap();
    std::fs::write(dir.join("icons/a.png"), "icon a").unwrap();
    std::fs::write(dir.join("icons/sub/b.png"), "icon b").unwrap();
    std::fs::create_dir_all(dir.join("deep")).unwrap();
    std::fs::write(dir.join("deep/b.png"), "deep b").unwrap();
    std::fs::write(dir.join("secret.txt"), "outside").unwrap();
    let s = b
        .config(
            "alias.url = ( \"/icons\" => \"{dir}/icons/\", \"/icons/sub/\" => \"{dir}/deep/\" )",
        )
        .start();
    let r = s.get("/icons/a.png");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "icon a"),
        "{}",
        r.describe()
    );
    // The longest prefix wins.
    let r = s.get("/icons/sub/b.png");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "deep b"),
        "{}",
        r.describe()
    );
    // "/icons" without a slash onto "icons/": "/icons../secret.txt" must not climb out.
    for path in ["/icons../secret.txt", "/icons..", "/icons%2e%2e/secret.txt"] {
        let r = s.get(path);
        assert_eq!(r.status, 403, "{path}: {}", r.describe());
        assert!(!r.text().contains("outside"), "{path}: {}", r.describe());
    }
    // Dot segments are resolved before the alias is looked up.
    let r = s.get("/icons/../secret.txt");
    assert_ne!(r.status, 200, "{}", r.describe());
    // Outside the alias, the document root still serves.
    assert_eq!(s.get("/a.txt").text(), "text a");
}

#[test]
fn redirect_codes_captures_and_conditional_captures() {
    let s = site(
        "url.redirect = ( \"^/old/(.*)$\" => \"/new/$1\", \"^/q(\\?.*)?$\" => \"/r${qsa}\" )\n\
         $HTTP[\"host\"] =~ \"^(www)\\.(example)\\.org$\" {\n  url.redirect = ( \"^/(.*)\" => \"https://%2.org/%1/$1\" )\n  url.redirect-code = 302\n}",
    )
    .start();
    let r = s.get("/old/x/y?z=1");
    assert_eq!(r.status, 301, "{}", r.describe());
    assert_eq!(r.header("Location"), Some("/new/x/y?z=1"));
    let r = s.get("/q?a=b");
    assert_eq!(r.header("Location"), Some("/r?a=b"), "{}", r.describe());
    let r = get(&s, "/p/q", "www.example.org");
    assert_eq!(r.status, 302, "{}", r.describe());
    assert_eq!(r.header("Location"), Some("https://example.org/www/p/q"));
    // A POST keeps its method: 308 (lighttpd's default for non-GET).
    let r = s.request(
        b"POST /old/a HTTP/1.1\r\nHost: h\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(r.status, 308, "{}", r.describe());
    // No rule: served.
    assert_eq!(s.get("/a.txt").status, 200);
}

#[test]
fn redirect_to_itself_is_answered_not_followed() {
    // A loop is the client's to follow: each answer is one 301, and the server stays fine.
    let s = site("url.redirect = ( \"^/loop$\" => \"/loop\" )").start();
    for _ in 0..20 {
        let r = s.get("/loop");
        assert_eq!(r.status, 301);
        assert_eq!(r.header("Location"), Some("/loop"));
    }
    assert_eq!(s.get("/a.txt").status, 200);
}

#[test]
fn rewrite_kinds_loops_and_escapes() {
    let s = site(
        "url.rewrite-once = ( \"^/once/(.*)$\" => \"/$1\" )\n\
         url.rewrite-repeat = ( \"^/rep/(.*)$\" => \"/rep/$1\" )\n\
         url.rewrite-if-not-file = ( \"^/app/(.*)$\" => \"/index.html?p=$1\" )\n\
         url.rewrite = ( \"^/up/(.*)$\" => \"/../../$1\", \"^/rel$\" => \"no-slash\" )",
    )
    .file("app/real.txt", "real file")
    .start();
    let r = s.get("/once/a.txt");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "text a"),
        "{}",
        r.describe()
    );
    // An endless repeat rule ends in a 500, not a hang.
    let r = s.get("/rep/x");
    assert_eq!(r.status, 500, "{}", r.describe());
    // if-not-file: an existing file is served as is, anything else goes to the app.
    assert_eq!(s.get("/app/real.txt").text(), "real file");
    let r = s.get("/app/missing");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "home"),
        "{}",
        r.describe()
    );
    // A rewrite to ".." cannot leave the document root: the new target is normalised.
    let b = builder();
    std::fs::write(b.dir().join("outside.txt"), "outside").unwrap();
    let r = s.get("/up/outside.txt");
    assert_ne!(r.status, 200, "{}", r.describe());
    assert!(!r.text().contains("outside"));
    // A result that is not a path is a 500.
    assert_eq!(s.get("/rel").status, 500);
    // Once rewritten by a "once" rule, the target is not rewritten again.
    let s2 = site("url.rewrite-once = ( \"^/a$\" => \"/b\", \"^/b$\" => \"/a.txt\" )")
        .file("b", "bee")
        .start();
    assert_eq!(s2.get("/a").text(), "bee");
}

#[test]
fn rewrite_changes_what_conditions_see() {
    let s = site(
        "url.rewrite-once = ( \"^/secret-alias$\" => \"/hidden/s.txt\" )\n\
         $HTTP[\"url\"] =^ \"/hidden/\" {\n  url.access-deny = ( \"\" )\n}",
    )
    .file("hidden/s.txt", "hidden")
    .start();
    // The rewritten URL falls in the denied block: rewriting cannot route around a rule.
    assert_eq!(s.get("/secret-alias").status, 403);
    assert_eq!(s.get("/hidden/s.txt").status, 403);
}

#[test]
fn setenv_response_headers() {
    let s = site(
        "setenv.add-response-header = ( \"X-A\" => \"1\", \"X-Frame-Options\" => \"DENY\" )\n\
         setenv.set-response-header = ( \"Server\" => \"mine\", \"Accept-Ranges\" => \"\" )\n\
         $HTTP[\"url\"] == \"/a.txt\" {\n  setenv.set-response-header = ( \"Content-Type\" => \"text/x-mine\" )\n}",
    )
    .start();
    let r = s.get("/index.html");
    assert_eq!(r.header("X-A"), Some("1"), "{}", r.describe());
    assert_eq!(r.header("X-Frame-Options"), Some("DENY"));
    assert_eq!(r.header("Server"), Some("mine"));
    assert_eq!(r.header_count("Server"), 1);
    assert_eq!(r.header("Accept-Ranges"), None, "{}", r.describe());
    let r = s.get("/a.txt");
    assert_eq!(
        r.header("Content-Type"),
        Some("text/x-mine"),
        "{}",
        r.describe()
    );
    assert_eq!(r.header_count("Content-Type"), 1);
    // Error answers carry them too.
    let r = s.get("/missing");
    assert_eq!(r.status, 404);
    assert_eq!(r.header("X-A"), Some("1"));
}

#[test]
fn setenv_refuses_header_injection() {
    // A config string may span lines; a line break in a header value would split the header.
    let out =
        site("setenv.add-response-header = ( \"X-A\" => \"1\nSet-Cookie: x=1\" )").run(&["-t"]);
    assert!(!out.status.success(), "{}", out.describe());
    assert!(out.stderr.contains("lightd.conf:5:"), "{}", out.describe());
    let out = site("setenv.add-response-header = ( \"Bad Name\" => \"1\" )").run(&["-t"]);
    assert!(!out.status.success(), "{}", out.describe());
}

#[test]
fn expire_by_url_and_mimetype() {
    let s = site(
        "expire.url = ( \"/static/\" => \"access plus 2 hours\" )\n\
         expire.mimetypes = ( \"text/\" => \"modification plus 1 seconds 2 minutes\" )",
    )
    .file("static/s.css", "body{}")
    .start();
    let r = s.get("/static/s.css");
    assert_eq!(
        r.header("Cache-Control"),
        Some("max-age=7200"),
        "{}",
        r.describe()
    );
    // HTTP/1.0 gets Expires instead.
    let r = s.request(b"GET /static/s.css HTTP/1.0\r\n\r\n");
    assert!(r.header("Expires").is_some(), "{}", r.describe());
    assert_eq!(r.header("Cache-Control"), None);
    // By type: modification-based, never in the past.
    let r = s.get("/a.txt");
    let cc = r.header("Cache-Control").unwrap_or_default().to_string();
    let age: i64 = cc
        .strip_prefix("max-age=")
        .and_then(|v| v.parse().ok())
        .unwrap_or(-1);
    assert!((0..=121).contains(&age), "{cc}: {}", r.describe());
    // Errors get no expiry.
    assert_eq!(s.get("/static/missing").header("Cache-Control"), None);
    // A bad rule is a config error naming the line.
    let out = site("expire.url = ( \"/\" => \"access plus 2 fortnights\" )").run(&["-t"]);
    assert!(!out.status.success(), "{}", out.describe());
    assert!(out.stderr.contains("lightd.conf:5:"), "{}", out.describe());
}

#[test]
fn error_handlers_and_errorfiles() {
    let b = site(
        "$HTTP[\"host\"] == \"h404\" {\n  server.error-handler-404 = \"/e/404.html\"\n}\n\
         $HTTP[\"host\"] == \"hall\" {\n  server.error-handler = \"/e/any.html\"\n  url.access-deny = ( \".inc\" )\n}\n\
         $HTTP[\"host\"] == \"files\" {\n  server.errorfile-prefix = \"{dir}/status-\"\n}\n\
         $HTTP[\"host\"] == \"broken\" {\n  server.error-handler-404 = \"/e/missing.html\"\n}",
    )
    .file("e/404.html", "custom not found")
    .file("e/any.html", "custom error");
    std::fs::write(b.dir().join("status-404.html"), "file not found page").unwrap();
    let s = b.start();
    // error-handler-404 serving a static page: 200, as lighttpd.
    let r = get(&s, "/nope", "h404");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "custom not found"),
        "{}",
        r.describe()
    );
    // server.error-handler keeps the original status.
    let r = get(&s, "/nope", "hall");
    assert_eq!(
        (r.status, r.text().as_str()),
        (404, "custom error"),
        "{}",
        r.describe()
    );
    let r = get(&s, "/x.inc", "hall");
    assert_eq!(
        (r.status, r.text().as_str()),
        (403, "custom error"),
        "{}",
        r.describe()
    );
    // errorfile-prefix: the page for the status.
    let r = get(&s, "/nope", "files");
    assert_eq!(
        (r.status, r.text().as_str()),
        (404, "file not found page"),
        "{}",
        r.describe()
    );
    // An error handler that is itself missing: the plain 404 page, no loop.
    let r = get(&s, "/nope", "broken");
    assert_eq!(r.status, 404, "{}", r.describe());
    assert!(r.text().contains("404 Not Found"), "{}", r.describe());
}

#[test]
fn static_file_etags_can_be_turned_off() {
    let s = site("$HTTP[\"url\"] =^ \"/plain/\" {\n  static-file.etags = \"disable\"\n}")
        .file("plain/p.txt", "plain")
        .start();
    let r = s.get("/a.txt");
    let etag = r.header("ETag").expect("ETag by default").to_string();
    let cond = |path: &str| {
        s.request(
            format!("GET {path} HTTP/1.1\r\nHost: h\r\nIf-None-Match: {etag}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
    };
    assert_eq!(cond("/a.txt").status, 304);
    let r = s.get("/plain/p.txt");
    assert_eq!(r.header("ETag"), None, "{}", r.describe());
    assert!(r.header("Last-Modified").is_some());
    // No entity tag, so none can match: the full answer.
    assert_eq!(cond("/plain/p.txt").status, 200);
}

#[test]
fn static_files_take_path_info_unless_disabled() {
    let s = site(
        "url.access-deny = ( \".inc\" )\nstatic-file.exclude-extensions = ( \".php\" )\n\
         $HTTP[\"url\"] =^ \"/strict/\" {\n  static-file.disable-pathinfo = \"enable\"\n}",
    )
    .file("x.php", "<?php source")
    .file("db.inc", "secret")
    .file("strict/s.txt", "strict")
    .start();
    // lighttpd's default: the file, the rest being path info.
    let r = s.get("/a.txt/more/path");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "text a"),
        "{}",
        r.describe()
    );
    assert!(
        r.header("Content-Type")
            .is_some_and(|t| t.starts_with("text/plain")),
        "{}",
        r.describe()
    );
    // The file found is checked like any other: excluded and denied names stay closed.
    for path in ["/x.php/a", "/db.inc/b"] {
        let r = s.get(path);
        assert_eq!(r.status, 403, "{path}: {}", r.describe());
        assert!(!r.text().contains("source") && !r.text().contains("secret"));
    }
    assert_eq!(s.get("/strict/s.txt/more").status, 404);
    assert_eq!(s.get("/missing/more").status, 404);
}

/// server.force-lowercase-filenames, with lighttpd.conf's "lowercase-*" host blocks from its
/// request.t: the file is looked up by the lower-cased path, and url.access-deny,
/// static-file.exclude-extensions and alias.url see that path (or match without regard to
/// case), so no spelling of a name escapes a rule written in lower case.
#[test]
fn force_lowercase_filenames() {
    let b = site(
        "$HTTP[\"host\"] == \"lowercase-allow\" {\n  server.force-lowercase-filenames = \"enable\"\n}\n\
         $HTTP[\"host\"] == \"lowercase-deny\" {\n  server.force-lowercase-filenames = \"enable\"\n  \
           url.access-deny = ( \".jpg\" )\n}\n\
         $HTTP[\"host\"] == \"lowercase-exclude\" {\n  server.force-lowercase-filenames = \"enable\"\n  \
           static-file.exclude-extensions = ( \".jpg\" )\n}\n\
         $HTTP[\"host\"] == \"lowercase-alias\" {\n  server.force-lowercase-filenames = \"enable\"\n  \
           alias.url = ( \"/pics/\" => \"{dir}/Pictures/\" )\n}\n\
         $HTTP[\"host\"] == \"exact-deny\" {\n  url.access-deny = ( \".jpg\" )\n}",
    )
    .file("image.jpg", "a jpeg")
    .file("sub/page.html", "a page")
    .file("Upper.txt", "upper")
    .dir_file("Pictures/cat.png", "a cat");
    let s = b.start();
    for (host, path, want) in [
        // Every spelling finds the lower-case file.
        ("lowercase-allow", "/image.JPG", 200),
        ("lowercase-allow", "/IMAGE.jpg", 200),
        ("lowercase-allow", "/Sub/Page.HTML", 200),
        // A file whose name has capitals cannot be reached at all: lighttpd's semantics
        // (the option is for file systems where case does not matter).
        ("lowercase-allow", "/Upper.txt", 404),
        // Without the option, case matters as usual.
        ("other", "/image.JPG", 404),
        ("other", "/Upper.txt", 200),
        // Deny and exclude rules hold for every spelling.
        ("lowercase-deny", "/image.JPG", 403),
        ("lowercase-deny", "/image.jpg", 403),
        ("lowercase-exclude", "/image.JPG", 403),
        ("lowercase-exclude", "/image.jpg", 403),
        ("lowercase-exclude", "/sub/PAGE.html", 200),
        // The alias matches any spelling of its prefix; its directory keeps its case and
        // the rest of the path is lowered.
        ("lowercase-alias", "/PICS/CAT.PNG", 200),
        ("lowercase-alias", "/pics/cat.png", 200),
        // Without the option, a denied suffix in capitals is not the same name (and the
        // file it would name does not exist).
        ("exact-deny", "/image.jpg", 403),
        ("exact-deny", "/image.JPG", 404),
    ] {
        let r = get(&s, path, host);
        assert_eq!(r.status, want, "{host} {path}\n{}", r.describe());
        if want == 200 {
            let body = r.text();
            assert!(
                ["a jpeg", "a page", "upper", "a cat"].contains(&body.as_str()),
                "{host} {path}: {body:?}"
            );
        } else {
            assert!(!r.text().contains("a jpeg"), "{host} {path} leaked");
        }
    }
    assert_eq!(get(&s, "/Pics/Cat.png", "lowercase-alias").text(), "a cat");
}

/// Unset in the global scope, server.force-lowercase-filenames is detected from the document
/// root as lighttpd does: where its upper-case spelling is the same directory (here by a
/// symlink, standing in for a case-insensitive file system), lower-casing is on, and a deny
/// rule holds for "/x.JPG"; set explicitly, the setting wins.
#[test]
fn force_lowercase_filenames_is_detected_from_the_document_root() {
    let serve = |explicit: &str| {
        let b = builder();
        let dir = b.dir().to_path_buf();
        write_file(&dir.join("site/image.jpg"), "a jpeg");
        write_file(&dir.join("site/page.html"), "a page");
        std::os::unix::fs::symlink("site", dir.join("SITE")).unwrap();
        // A relative document root, so that only its own name has letters to change case.
        b.cwd(&dir)
            .raw_config(&format!(
                "server.document-root = \"site\"\nserver.bind = \"127.0.0.1\"\n\
                 server.port = 0\nserver.modules = ( \"mod_access\" )\n\
                 url.access-deny = ( \".jpg\" )\n{explicit}"
            ))
            .start()
    };
    let s = serve("");
    assert_eq!(s.get("/PAGE.HTML").text(), "a page");
    assert_eq!(s.get("/image.JPG").status, 403);
    assert_eq!(s.get("/image.jpg").status, 403);
    let s = serve("server.force-lowercase-filenames = \"disable\"");
    assert_eq!(s.get("/PAGE.HTML").status, 404);
    assert_eq!(s.get("/image.JPG").status, 404);
    assert_eq!(s.get("/page.html").text(), "a page");
}
