//! mod_dirlisting against the real binary: every dir-listing.* option, hostile file names,
//! and the options inside conditional blocks.
#![cfg(feature = "dirlisting")]

mod common;

use common::*;

fn listing(extra: &str) -> Builder {
    builder()
        .file("d/a.txt", "a")
        .file("d/b.html", "<p>b</p>")
        .file("d/.hidden", "dot")
        .file("d/sub/inner.txt", "inner")
        .file("d/Zed.txt", "zed")
        .config("dir-listing.activate = \"enable\"")
        .config(extra)
}

fn body_of(s: &Server, path: &str) -> String {
    let r = s.get(path);
    assert_eq!(r.status, 200, "{}", r.describe());
    r.text()
}

#[test]
fn hostile_names_are_escaped_and_encoded() {
    let b = listing("")
        .file("d/<script>alert(1)<\\script>", "x")
        .file("d/q\"uote'&amp.txt", "x")
        .file("d/50%?#x.txt", "x")
        .file("d/new\nline", "x");
    // A name that is not UTF-8 is listed with its bytes escaped, not passed through.
    {
        use std::os::unix::ffi::OsStrExt;
        let name = std::ffi::OsStr::from_bytes(b"bad\xff\xfe.txt");
        write_file(&b.docroot().join("d").join(name), "x");
    }
    let s = b.start();
    let body = body_of(&s, "/d/");
    assert!(!body.contains("<script>alert"), "{body}");
    assert!(
        body.contains("&#x3C;script&#x3E;alert(1)&#x3C;\\script&#x3E;"),
        "{body}"
    );
    assert!(
        body.contains("href=\"%3Cscript%3Ealert(1)%3C%5Cscript%3E\""),
        "{body}"
    );
    assert!(body.contains("q&#x22;uote&#x27;&#x26;amp.txt"), "{body}");
    assert!(body.contains("href=\"q%22uote%27%26amp.txt\""), "{body}");
    assert!(body.contains("href=\"50%25%3F%23x.txt\""), "{body}");
    assert!(body.contains("new&#x0A;line"), "{body}");
    assert!(body.contains("href=\"bad%FF%FE.txt\""), "{body}");
    // A directory whose own name is hostile: the title and heading escape it.
    let b = listing("").file("<i>/f.txt", "x");
    let s = b.start();
    let body = body_of(&s, "/%3Ci%3E/");
    assert!(body.contains("Index of /&#x3C;i&#x3E;/"), "{body}");
    assert!(!body.contains("<i>"), "{body}");
}

#[test]
fn dotfiles_hidden_by_default_and_shown_when_asked() {
    let s = listing("").start();
    let body = body_of(&s, "/d/");
    assert!(
        body.contains("a.txt") && !body.contains(".hidden"),
        "{body}"
    );
    let s = listing("dir-listing.hide-dotfiles = \"disable\"").start();
    let body = body_of(&s, "/d/");
    assert!(body.contains(">.hidden<"), "{body}");
}

#[test]
fn exclude_regexes_hide_names() {
    let s = listing("dir-listing.exclude = ( \"^Z\", \"\\.html$\" )").start();
    let body = body_of(&s, "/d/");
    assert!(body.contains("a.txt") && body.contains("sub/"), "{body}");
    assert!(!body.contains("Zed.txt"), "{body}");
    assert!(!body.contains("b.html"), "{body}");
    // Hidden from the listing only, as in lighttpd: the file itself is still served.
    assert_eq!(s.get("/d/Zed.txt").status, 200);
    // In a conditional block: only the listings under it hide the names.
    let s = listing("$HTTP[\"url\"] =^ \"/d/sub/\" { dir-listing.exclude = ( \"inner\" ) }")
        .file("d/sub/other.txt", "o")
        .start();
    let body = body_of(&s, "/d/sub/");
    assert!(
        body.contains("href=\"other.txt\"") && !body.contains("href=\"inner.txt\""),
        "{body}"
    );
    assert!(body_of(&s, "/d/").contains("Zed.txt"));
}

#[test]
fn readme_and_header_included() {
    let b = listing(
        "dir-listing.show-readme = \"enable\"\n\
         dir-listing.show-header = \"HEAD.txt\"",
    )
    .file("d/README.txt", "read <me> & more")
    .file("d/HEAD.txt", "<b>head</b>");
    let s = b.start();
    let body = body_of(&s, "/d/");
    let head = body
        .find("<pre class=\"header\">&#x3C;b&#x3E;head")
        .expect(&body);
    let table = body.find("<table").expect(&body);
    let readme = body
        .find("<pre class=\"readme\">read &#x3C;me&#x3E; &#x26; more")
        .expect(&body);
    assert!(head < table && table < readme, "{body}");
    // Still listed unless hidden.
    assert!(body.contains("href=\"README.txt\""), "{body}");

    let s = listing(
        "dir-listing.show-readme = \"enable\"\n\
         dir-listing.encode-readme = \"disable\"\n\
         dir-listing.hide-readme-file = \"enable\"\n\
         dir-listing.show-header = \"enable\"\n\
         dir-listing.hide-header-file = \"enable\"",
    )
    .file("d/README.txt", "<em>raw readme</em>")
    .file("d/HEADER.txt", "plain header")
    .start();
    let body = body_of(&s, "/d/");
    assert!(body.contains("<em>raw readme</em>"), "{body}");
    assert!(
        body.contains("<pre class=\"header\">plain header</pre>"),
        "{body}"
    );
    assert!(!body.contains("href=\"README.txt\""), "{body}");
    assert!(!body.contains("href=\"HEADER.txt\""), "{body}");
}

#[test]
fn encoding_in_content_type() {
    let s = listing("").start();
    let r = s.get("/d/");
    assert_eq!(
        r.header("Content-Type"),
        Some("text/html"),
        "{}",
        r.describe()
    );
    let s = listing("dir-listing.encoding = \"iso-8859-1\"").start();
    let r = s.get("/d/");
    assert_eq!(
        r.header("Content-Type"),
        Some("text/html;charset=iso-8859-1"),
        "{}",
        r.describe()
    );
    assert!(r.text().contains("<meta charset=\"iso-8859-1\">"));
}

#[test]
fn external_css_and_js_footer_and_layout() {
    let s = listing(
        "dir-listing.external-css = \"/style/list.css\"\n\
         dir-listing.external-js = \"/js/sort.js\"\n\
         dir-listing.set-footer = \"<i>my footer</i>\"",
    )
    .start();
    let r = s.get("/d/");
    let body = r.text();
    assert!(
        body.contains("<link rel=\"stylesheet\" type=\"text/css\" href=\"/style/list.css\">"),
        "{body}"
    );
    assert!(!body.contains("<style"), "{body}");
    assert!(
        body.contains("<script type=\"text/javascript\" src=\"/js/sort.js\"></script>"),
        "{body}"
    );
    assert!(
        body.contains("<div class=\"foot\"><i>my footer</i></div>"),
        "{body}"
    );
    assert_eq!(r.header_count("Link"), 2, "{}", r.describe());

    // The default footer is server.tag.
    let s = listing("server.tag = \"tag<1>\"").start();
    let body = body_of(&s, "/d/");
    assert!(
        body.contains("<div class=\"foot\">tag&#x3C;1&#x3E;</div>"),
        "{body}"
    );

    // Without auto-layout the page is the table alone.
    let s = listing("dir-listing.auto-layout = \"disable\"").start();
    let body = body_of(&s, "/d/");
    assert!(body.starts_with("<h2>Index of /d/</h2>"), "{body}");
    assert!(
        !body.contains("<html") && !body.contains("<script"),
        "{body}"
    );
}

#[test]
fn sorted_directories_first_then_bytes() {
    let s = listing("").file("d/adir/x", "x").start();
    let body = body_of(&s, "/d/");
    let at = |n: &str| body.find(&format!("href=\"{n}\"")).expect(n);
    // Directories first, then files in byte order (capitals before lower case).
    assert!(
        at("../") < at("adir/") && at("adir/") < at("sub/"),
        "{body}"
    );
    assert!(at("sub/") < at("Zed.txt"), "{body}");
    assert!(
        at("Zed.txt") < at("a.txt") && at("a.txt") < at("b.html"),
        "{body}"
    );
    // Unsorted: the same rows, in whatever order the directory gives.
    let s = listing("dir-listing.sort = \"disable\"").start();
    let body = body_of(&s, "/d/");
    for n in ["a.txt", "b.html", "Zed.txt", "sub/"] {
        assert!(body.contains(&format!("href=\"{n}\"")), "{n}: {body}");
    }
}

#[test]
fn rows_show_type_and_size() {
    let s = listing("").file("d/big.bin", vec![0u8; 3000]).start();
    let body = body_of(&s, "/d/");
    assert!(
        body.contains("<td class=\"s\" data-value=\"3000\">2.9K</td><td class=\"t\">application/octet-stream</td>"),
        "{body}"
    );
    assert!(body.contains("<td class=\"t\">text/html"), "{body}");
}

#[test]
fn json_listing_and_head() {
    let s = listing("").start();
    let r = s.get("/d/?json");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.header("Content-Type"), Some("application/json"));
    let body = r.text();
    assert!(body.starts_with('[') && body.ends_with(']'), "{body}");
    assert!(
        body.contains("{\"name\":\"a.txt\",\"type\":\"file\",\"size\":1,"),
        "{body}"
    );
    assert!(
        body.contains("{\"name\":\"sub\",\"type\":\"dir\","),
        "{body}"
    );
    assert!(!body.contains(".hidden"), "{body}");

    let get = s.get("/d/");
    let mut c = s.connect();
    c.send(b"HEAD /d/ HTTP/1.1\r\nHost: x\r\n\r\n");
    let head = c.read_head_response();
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty(), "{}", head.describe());
    // No body bytes followed the head: the next response on the connection is intact.
    let next = c.get("/d/");
    assert!(
        next.text().starts_with("<!DOCTYPE html>"),
        "{}",
        next.describe()
    );
    assert_eq!(
        head.header("Content-Length"),
        get.header("Content-Length"),
        "{}",
        head.describe()
    );
}

#[test]
fn listing_off_in_a_block_and_options_per_block() {
    let s = listing(
        "$HTTP[\"url\"] =^ \"/d/sub/\" { dir-listing.activate = \"disable\" }\n\
         $HTTP[\"url\"] =^ \"/e/\" { dir-listing.hide-dotfiles = \"disable\" }",
    )
    .file("e/.dot", "x")
    .start();
    assert_eq!(s.get("/d/sub/").status, 403);
    assert!(body_of(&s, "/e/").contains(">.dot<"));
    assert!(!body_of(&s, "/d/").contains(".hidden"));
}

#[test]
fn bad_exclude_regex_is_a_config_error() {
    let out = listing("dir-listing.exclude = ( \"(unclosed\" )").run(&["-t"]);
    assert!(!out.status.success(), "{}", out.describe());
    assert!(
        out.stderr.contains("dir-listing.exclude: bad regex"),
        "{}",
        out.describe()
    );
}
