//! The configuration language as the running server sees it: includes, variables, operators,
//! conditionals, extra listeners, modules and warnings, and the errors -t reports.

mod common;

use common::*;
use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

/// The Server header of a GET with extra header lines.
fn tag_of(s: &Server, path: &str, headers: &[&str]) -> String {
    let r = s.request(&req("GET", path, headers));
    assert_eq!(r.status, 200, "GET {path} {headers:?}\n{}", r.describe());
    r.header("Server").unwrap_or("<none>").to_string()
}

/// `-t` on this config must fail and name `loc` ("file:line:").
fn assert_t_fails_at(b: &Builder, loc: &str) -> Output {
    let out = b.run(&["-t"]);
    assert!(!out.status.success(), "-t should fail\n{}", out.describe());
    assert!(
        out.stderr.contains(loc),
        "the error should name {loc}\n{}",
        out.describe()
    );
    assert!(out.stderr.contains("lightd: "), "{}", out.describe());
    out
}

#[test]
fn comments_and_server_tag() {
    let s = builder()
        .file("index.html", "x")
        .config(
            "# a comment line\n  # an indented one\nserver.tag = \"tag-one\" # trailing comment",
        )
        .start();
    assert_eq!(tag_of(&s, "/index.html", &[]), "tag-one");
}

#[test]
fn variables_and_concatenation() {
    let s = builder()
        .file("index.html", "x")
        .config("var.mid = \"middle\"\nvar.pre = \"pre-\" + var.mid\nserver.tag = var.pre + \"-\" + \"post\"")
        .start();
    assert_eq!(tag_of(&s, "/index.html", &[]), "pre-middle-post");
}

#[test]
fn env_variables_are_read() {
    let s = builder()
        .file("index.html", "x")
        .env("LIGHTD_TEST_TAG_VALUE", "from-env")
        .config("server.tag = env.LIGHTD_TEST_TAG_VALUE")
        .start();
    assert_eq!(tag_of(&s, "/index.html", &[]), "from-env");
}

#[test]
fn undefined_env_variable_is_an_error() {
    let b = builder().config("server.tag = env.LIGHTD_TEST_SURELY_UNDEFINED_42");
    // The base config has three lines, so the added line is line 4.
    let out = assert_t_fails_at(&b, "lightd.conf:4:");
    assert!(
        out.stderr.contains("LIGHTD_TEST_SURELY_UNDEFINED_42"),
        "{}",
        out.describe()
    );
}

#[test]
fn var_cwd_is_the_working_directory() {
    let cwd = TempDir::new("cwd");
    let s = builder()
        .file("index.html", "x")
        .cwd(cwd.path())
        .config("server.tag = var.CWD")
        .start();
    assert_eq!(
        tag_of(&s, "/index.html", &[]),
        cwd.path().display().to_string()
    );
}

#[test]
fn append_and_force_assign() {
    let s = builder()
        .file("a/first.html", "first index")
        .file("b/second.html", "second index")
        .config(
            "index-file.names = (\"first.html\")\nindex-file.names += (\"second.html\")\nserver.tag = \"one\"\nserver.tag := \"two\"",
        )
        .start();
    // Both names must be in the list: each directory has only one of them.
    let a = s.get("/a/");
    assert_eq!(
        (a.status, a.text().as_str()),
        (200, "first index"),
        "{}",
        a.describe()
    );
    let b = s.get("/b/");
    assert_eq!(
        (b.status, b.text().as_str()),
        (200, "second index"),
        "{}",
        b.describe()
    );
    assert_eq!(b.header("Server"), Some("two"));
}

#[test]
fn duplicate_assignment_is_an_error() {
    let b = builder().config("server.tag = \"a\"\nserver.tag = \"b\"");
    assert_t_fails_at(&b, "lightd.conf:5:");
}

#[test]
fn wrong_value_type_is_an_error() {
    let b = builder().raw_config(
        "server.document-root = \"{docroot}\"\nserver.bind = \"127.0.0.1\"\nserver.port = \"not a number\"\n",
    );
    assert_t_fails_at(&b, "lightd.conf:3:");
}

#[test]
fn includes_are_relative_to_the_config_directory() {
    let b = builder()
        .file("index.html", "x")
        .dir_file("conf.d/10-tag.conf", "server.tag = \"from-include\"\n")
        .dir_file(
            "conf.d/20-index.conf",
            "index-file.names = (\"start.htm\")\n",
        )
        .dir_file("literal.conf", "server.max-keep-alive-requests = 50\n")
        .file("d/start.htm", "start page")
        .config(
            "include \"conf.d/*.conf\"\ninclude \"nothing-here/*.conf\"\ninclude \"literal.conf\"",
        );
    // Run from elsewhere, so paths relative to the working directory would not resolve.
    let s = b.cwd(std::path::Path::new("/")).start();
    assert_eq!(tag_of(&s, "/index.html", &[]), "from-include");
    let r = s.get("/d/");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "start page"),
        "{}",
        r.describe()
    );
}

#[test]
fn missing_literal_include_is_an_error() {
    let b = builder().config("include \"no-such-file.conf\"");
    let out = assert_t_fails_at(&b, "lightd.conf:4:");
    assert!(
        out.stderr.contains("no-such-file.conf"),
        "{}",
        out.describe()
    );
}

#[test]
fn error_in_an_included_file_names_that_file() {
    let b = builder()
        .dir_file("inc/bad.conf", "# fine\nserver.tag = = \"x\"\n# end\n")
        .config("include \"inc/bad.conf\"");
    assert_t_fails_at(&b, "bad.conf:2:");
}

#[test]
fn include_shell_reads_command_output() {
    let b = builder().file("index.html", "x");
    let script = b.dir().join("gen.sh");
    write_file(&script, "echo 'server.tag = \"from-shell\"'\n");
    let s = b
        .config(&format!("include_shell \"sh {}\"", script.display()))
        .start();
    assert_eq!(tag_of(&s, "/index.html", &[]), "from-shell");
}

#[test]
fn unknown_module_is_an_error() {
    let b = builder().config("server.modules = (\"mod_no_such_thing\")");
    let out = assert_t_fails_at(&b, "lightd.conf:4:");
    assert!(
        out.stderr.contains("mod_no_such_thing"),
        "{}",
        out.describe()
    );
}

#[test]
fn unimplemented_harmless_module_is_a_warning() {
    let s = builder()
        .file("index.html", "still served")
        .config("server.modules = (\"mod_rrdtool\")")
        .start();
    assert!(
        s.wait_log("mod_rrdtool", Duration::from_secs(5)),
        "no warning naming mod_rrdtool\n{}",
        s.stderr()
    );
    let r = s.get("/index.html");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"still served"[..]));
}

#[test]
fn unimplemented_harmless_and_misspelled_keys_are_warnings() {
    let s = builder()
        .file("index.html", "still served")
        .config("deflate.mimetypes = ( \"text/html\" )\nserver.documentroot = \"/nowhere\"")
        .start();
    for key in ["deflate.mimetypes", "server.documentroot"] {
        assert!(
            s.wait_log(key, Duration::from_secs(5)),
            "no warning naming {key}\n{}",
            s.stderr()
        );
    }
    let r = s.get("/index.html");
    assert_eq!((r.status, r.body.as_slice()), (200, &b"still served"[..]));
}

#[test]
fn mimetype_assign_longest_suffix_wins() {
    let s = builder()
        .file("a.tar.gz", "t")
        .file("b.gz", "g")
        .file("c.txt", "c")
        .config(
            "mimetype.assign = (\".gz\" => \"application/gzip\", \".tar.gz\" => \"application/x-tgz\", \".txt\" => \"text/x-custom\")",
        )
        .start();
    assert_eq!(
        s.get("/a.tar.gz").header("Content-Type"),
        Some("application/x-tgz")
    );
    assert_eq!(
        s.get("/b.gz").header("Content-Type"),
        Some("application/gzip")
    );
    assert_eq!(
        s.get("/c.txt").header("Content-Type"),
        Some("text/x-custom")
    );
}

#[test]
fn url_prefix_condition_enables_dir_listing() {
    let s = builder()
        .file("files/listed-file.txt", "x")
        .file("other/hidden-file.txt", "x")
        .config("$HTTP[\"url\"] =^ \"/files/\" { dir-listing.activate = \"enable\" }")
        .start();
    let r = s.get("/files/");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert!(r.text().contains("listed-file.txt"), "{}", r.describe());
    let r = s.get("/other/");
    assert!((400..500).contains(&r.status), "{}", r.describe());
    assert!(!r.text().contains("hidden-file.txt"), "{}", r.describe());
}

#[test]
fn host_condition_switches_document_root() {
    let b = builder().file("index.html", "main site");
    write_file(&b.dir().join("other/index.html"), "other site");
    let s = b
        .config("$HTTP[\"host\"] == \"b.example\" { server.document-root = \"{dir}/other\" }")
        .start();
    let r = s.request(b"GET /index.html HTTP/1.1\r\nHost: b.example\r\n\r\n");
    assert_eq!(r.text(), "other site", "{}", r.describe());
    let r = s.request(b"GET /index.html HTTP/1.1\r\nHost: a.example\r\n\r\n");
    assert_eq!(r.text(), "main site", "{}", r.describe());
}

#[test]
fn header_field_conditions() {
    let s = builder()
        .file("f.txt", "x")
        .file("f.htm", "x")
        .config(
            r#"server.tag = "base"
$HTTP["useragent"] =~ "^ua-test" { server.tag = "ua" }
$HTTP["referer"] =^ "http://ref.example/" { server.tag = "referer" }
$HTTP["cookie"] =~ "session=abc" { server.tag = "cookie" }
$HTTP["querystring"] == "q=1" { server.tag = "query" }
$HTTP["request-method"] == "POST" { server.tag = "post" }
$REQUEST_HEADER["X-Lightd-Test"] == "yes" { server.tag = "reqhdr" }
$HTTP["url"] =$ ".htm" { server.tag = "suffix" }"#,
        )
        .start();
    assert_eq!(tag_of(&s, "/f.txt", &[]), "base");
    assert_eq!(tag_of(&s, "/f.txt", &["User-Agent: ua-test/1.0"]), "ua");
    assert_eq!(tag_of(&s, "/f.txt", &["User-Agent: other ua-test"]), "base");
    assert_eq!(
        tag_of(&s, "/f.txt", &["Referer: http://ref.example/page"]),
        "referer"
    );
    assert_eq!(
        tag_of(&s, "/f.txt", &["Cookie: a=b; session=abc"]),
        "cookie"
    );
    assert_eq!(tag_of(&s, "/f.txt?q=1", &[]), "query");
    assert_eq!(tag_of(&s, "/f.txt?q=12", &[]), "base");
    assert_eq!(tag_of(&s, "/f.txt", &["X-Lightd-Test: yes"]), "reqhdr");
    assert_eq!(tag_of(&s, "/f.txt", &["X-Lightd-Test: no"]), "base");
    assert_eq!(tag_of(&s, "/f.htm", &[]), "suffix");
    let r = s.request(b"POST /f.txt HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n");
    assert_eq!(r.header("Server"), Some("post"), "{}", r.describe());
}

#[test]
fn negated_conditions() {
    let s = builder()
        .file("f.html", "x")
        .file("f.txt", "x")
        .file("pub/f.txt", "x")
        .config(
            r#"server.tag = "base"
$HTTP["host"] != "a.example" { server.tag = "not-a" }
$HTTP["url"] !~ "^/pub/" { static-file.exclude-extensions = (".txt") }"#,
        )
        .start();
    let r = s.request(b"GET /f.html HTTP/1.1\r\nHost: a.example\r\n\r\n");
    assert_eq!(r.header("Server"), Some("base"), "{}", r.describe());
    let r = s.request(b"GET /f.html HTTP/1.1\r\nHost: b.example\r\n\r\n");
    assert_eq!(r.header("Server"), Some("not-a"), "{}", r.describe());
    // Outside /pub/ .txt is excluded; inside it is served.
    let r = s.get("/f.txt");
    assert_eq!(r.status, 403, "{}", r.describe());
    let r = s.get("/pub/f.txt");
    assert_eq!(r.status, 200, "{}", r.describe());
}

#[test]
fn regex_match_with_else_chain() {
    let s = builder()
        .file("f.txt", "x")
        .file("f.html", "x")
        .file("f.css", "x")
        .config(
            r#"$HTTP["url"] =~ "\.txt$" { server.tag = "is-txt" }
else $HTTP["url"] =$ ".html" { server.tag = "is-html" }
else { server.tag = "is-other" }"#,
        )
        .start();
    assert_eq!(tag_of(&s, "/f.txt", &[]), "is-txt");
    assert_eq!(tag_of(&s, "/f.html", &[]), "is-html");
    assert_eq!(tag_of(&s, "/f.css", &[]), "is-other");
}

#[test]
fn nested_conditions() {
    let s = builder()
        .file("n/f.txt", "x")
        .file("f.txt", "x")
        .config(
            r#"server.tag = "base"
$HTTP["url"] =^ "/n/" {
    $HTTP["querystring"] == "x=1" { server.tag = "nested-x" }
    else $HTTP["querystring"] == "y=1" { server.tag = "nested-y" }
    else { server.tag = "nested-else" }
}"#,
        )
        .start();
    assert_eq!(tag_of(&s, "/n/f.txt?x=1", &[]), "nested-x");
    assert_eq!(tag_of(&s, "/n/f.txt?y=1", &[]), "nested-y");
    assert_eq!(tag_of(&s, "/n/f.txt?z=1", &[]), "nested-else");
    assert_eq!(tag_of(&s, "/f.txt?x=1", &[]), "base");
}

#[test]
fn remote_ip_and_scheme_conditions() {
    let s = builder()
        .file("f.txt", "x")
        .config(
            r#"server.tag = "base"
$HTTP["scheme"] == "http" {
    $HTTP["remote-ip"] == "127.0.0.0/8" { server.tag = "local-http" }
}
$HTTP["remote-ip"] == "10.0.0.0/8" { server.tag = "ten" }"#,
        )
        .start();
    assert_eq!(tag_of(&s, "/f.txt", &[]), "local-http");
}

#[test]
fn server_socket_block_opens_an_extra_listener() {
    let b = builder().file("which.txt", "main");
    write_file(&b.dir().join("extra/which.txt"), "extra");
    let s = b
        .config(
            "$SERVER[\"socket\"] == \"127.0.0.1:0\" {\n  server.document-root = \"{dir}/extra\"\n  server.tag = \"extra-tag\"\n}",
        )
        .listeners(2)
        .start();
    let addrs = s.addrs().to_vec();
    assert_eq!(addrs.len(), 2, "{addrs:?}");
    assert_ne!(addrs[0], addrs[1]);
    let mut seen = Vec::new();
    for addr in &addrs {
        let mut c = Conn::connect(*addr);
        let r = c.get("/which.txt");
        assert_eq!(r.status, 200, "{addr}: {}", r.describe());
        seen.push((r.text(), r.header("Server").map(str::to_string)));
    }
    seen.sort();
    // Exactly one listener (the block's) gets the block's settings.
    assert_eq!(seen[0].0, "extra", "(body, Server) per listener: {seen:?}");
    assert_eq!(seen[0].1.as_deref(), Some("extra-tag"), "{seen:?}");
    assert_eq!(seen[1].0, "main", "(body, Server) per listener: {seen:?}");
    assert_ne!(seen[1].1.as_deref(), Some("extra-tag"), "{seen:?}");
}

#[test]
fn ipv6_listener() {
    if TcpListener::bind("[::1]:0").is_err() {
        eprintln!("note: skipping ipv6_listener: cannot bind [::1] here");
        return;
    }
    let s = builder()
        .file("f.txt", "over v6")
        .config("$SERVER[\"socket\"] == \"[::1]:0\" { server.tag = \"v6\" }")
        .listeners(2)
        .start();
    let v6: Vec<SocketAddr> = s.addrs().iter().copied().filter(|a| a.is_ipv6()).collect();
    assert_eq!(v6.len(), 1, "expected one [::1] listener: {:?}", s.addrs());
    let mut c = Conn::connect(v6[0]);
    let r = c.request(b"GET /f.txt HTTP/1.1\r\nHost: [::1]\r\n\r\n");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.text(), "over v6");
    assert_eq!(r.header("Server"), Some("v6"));
}
