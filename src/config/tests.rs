//! Tests of the whole loader: language, includes, conditions, typing, errors and warnings.
//!
//! Each case writes its files into a fresh directory under the system temp dir; messages are
//! compared with that directory replaced by "T" so expected strings stay readable.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::parser::{self, Parsed};
use super::*;

static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// A fresh, empty directory for one test case, removed again when dropped.
struct Tmp(PathBuf);

impl std::ops::Deref for Tmp {
    type Target = Path;
    fn deref(&self) -> &Path {
        &self.0
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn tmpdir() -> Tmp {
    let n = COUNTER.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("lightd-config-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    Tmp(dir)
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{}: {e}", parent.display()));
    }
    std::fs::write(&p, text).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
    p
}

/// Write `files` (the first is the main config) into a fresh dir and load the main one.
fn load_files(files: &[(&str, &str)]) -> (Tmp, Result<Config, ConfigError>) {
    let dir = tmpdir();
    for (name, text) in files {
        write(&dir, name, text);
    }
    let main = dir.join(files[0].0);
    let res = load(&main);
    (dir, res)
}

fn norm(dir: &Path, s: &str) -> String {
    s.replace(&dir.display().to_string(), "T")
}

fn ok(src: &str) -> Config {
    let (dir, res) = load_files(&[("main.conf", src)]);
    res.unwrap_or_else(|e| panic!("{src:?}: {}", norm(&dir, &e.to_string())))
}

fn fails(src: &str) -> String {
    let (dir, res) = load_files(&[("main.conf", src)]);
    match res {
        Ok(_) => panic!("{src:?} loaded"),
        Err(e) => norm(&dir, &e.to_string()),
    }
}

fn warnings(src: &str) -> Vec<String> {
    let (dir, res) = load_files(&[("main.conf", src)]);
    match res {
        Ok(c) => c.warnings.iter().map(|w| norm(&dir, w)).collect(),
        Err(e) => panic!("{src:?}: {}", norm(&dir, &e.to_string())),
    }
}

/// The global block's values after evaluation, printed in config syntax.
fn globals(src: &str) -> Result<HashMap<String, String>, String> {
    let dir = tmpdir();
    let parsed: Parsed = parser::parse_text(src, &dir.join("t.conf"), dir.to_path_buf())
        .map_err(|e| norm(&dir, &e.to_string()))?;
    Ok(parsed
        .global
        .entries
        .iter()
        .map(|s| (s.key.clone(), s.value.to_string()))
        .collect())
}

// ---------------------------------------------------------------------------------------------
// The language

#[test]
fn value_table() {
    let cases: &[(&str, &str)] = &[
        (r#"var.x = "a""#, r#""a""#),
        (r#"var.x = "a\"b""#, r#""a\"b""#),
        (r#"var.x = "a\\b""#, r#""a\b""#),
        (r#"var.x = "\.php$""#, r#""\.php$""#),
        ("var.x = 42", "42"),
        ("var.x = -7", "-7"),
        ("var.x = 1 + 2", "3"),
        (r#"var.x = "a" + "b" + "c""#, r#""abc""#),
        (r#"var.x = "port " + 80"#, r#""port 80""#),
        (r#"var.x = ( "a", "b" )"#, r#"( "a", "b" )"#),
        (r#"var.x = ( "a", "b", )"#, r#"( "a", "b" )"#),
        ("var.x = ()", "()"),
        (
            "var.x = (\n  \"a\", # comment\n  \"b\"\n)",
            r#"( "a", "b" )"#,
        ),
        (r#"var.x = ( ".h" => "t/h" )"#, r#"( ".h" => "t/h" )"#),
        (
            r#"var.x = ( "a" => ( "b" => 1 ) )"#,
            r#"( "a" => ( "b" => 1 ) )"#,
        ),
        (r#"var.x = ( "a" ) + ( "b" )"#, r#"( "a", "b" )"#),
        (
            r#"var.x = ( "k" => "a" ) + ( "j" => "b" )"#,
            r#"( "k" => "a", "j" => "b" )"#,
        ),
        (
            "var.x = ( \"a\" + \"b\" => \"c\" + 1 )",
            r#"( "ab" => "c1" )"#,
        ),
        ("var.x = \"a\"; var.y = 1", r#""a""#),
        ("var.x = \"enable\"", r#""enable""#),
    ];
    for (src, want) in cases {
        let got = globals(src).unwrap_or_else(|e| panic!("{src:?}: {e}"));
        assert_eq!(got.get("var.x").map(String::as_str), Some(*want), "{src:?}");
    }
}

#[test]
fn assignment_operator_table() {
    let cases: &[(&str, Result<&str, &str>)] = &[
        ("var.x = 1\nvar.x := 2", Ok("2")),
        ("var.x = \"a\"\nvar.x += \"b\"", Ok(r#""ab""#)),
        ("var.x += \"b\"", Ok(r#""b""#)),
        (
            "var.x = ( \"a\" )\nvar.x += ( \"b\" )",
            Ok(r#"( "a", "b" )"#),
        ),
        ("var.x := 5", Ok("5")),
        (
            "var.x = 1\nvar.x = 2",
            Err(
                "T/t.conf:2: 'var.x' is already set in this block (at T/t.conf:1); use ':=' \
                 to replace the value or '+=' to append to it",
            ),
        ),
        (
            "var.x = ( \"a\" )\nvar.x += \"b\"",
            Err("T/t.conf:2: var.x: cannot combine an array with the string \"b\""),
        ),
        (
            "var.x = ( \"a\" => 1 )\nvar.x += ( \"a\" => 2 )",
            Err("T/t.conf:2: var.x: duplicate array key \"a\""),
        ),
    ];
    for (src, want) in cases {
        let got = globals(src).map(|g| g.get("var.x").cloned().unwrap_or_default());
        assert_eq!(
            got,
            want.map(str::to_string).map_err(str::to_string),
            "{src:?}"
        );
    }
}

#[test]
fn plus_assign_inherits_from_the_enclosing_block() {
    let cfg = ok(r#"
index-file.names = ( "index.html" )
$HTTP["host"] == "a" {
    index-file.names += ( "index.php" )
}
$HTTP["host"] == "b" {
    static-file.exclude-extensions += ( ".php" )
}
"#);
    let a = &cfg.conds[0].branches[0].settings;
    assert!(
        matches!(&a[..], [s] if s.name() == "index-file.names" && matches!(&s.val, Val::List(v) if v == &["index.html", "index.php"])),
        "{a:?}"
    );
    let b = &cfg.conds[1].branches[0].settings;
    assert!(
        matches!(&b[..], [s] if s.name() == "static-file.exclude-extensions" && matches!(&s.val, Val::List(v) if v == &[".php"])),
        "{b:?}"
    );
    assert_eq!(cfg.base.index_files, vec!["index.html"]);
}

#[test]
fn same_key_in_different_blocks_is_not_a_duplicate() {
    let cfg = ok(r#"
server.document-root = "/a"
$HTTP["host"] == "x" { server.document-root = "/b" }
"#);
    assert_eq!(cfg.base.document_root, Some(PathBuf::from("/a")));
}

#[test]
fn variables() {
    std::env::set_var("LIGHTD_TEST_ENV", "/from/env");
    let cases: &[(&str, Result<&str, &str>)] = &[
        (
            "var.base = \"/srv\"\nvar.x = base + \"/www\"",
            Ok(r#""/srv/www""#),
        ),
        (
            "var.base = \"/srv\"\nvar.x = var.base + \"/www\"",
            Ok(r#""/srv/www""#),
        ),
        (
            "server.port = 8080\nvar.x = \"p\" + server.port",
            Ok(r#""p8080""#),
        ),
        ("var.x = env.LIGHTD_TEST_ENV", Ok(r#""/from/env""#)),
        ("var.x = var.PID", Ok("PID")),
        ("var.x = var.CWD", Ok("CWD")),
        ("var.CWD = \"/x\"\nvar.x = CWD", Ok(r#""/x""#)),
        ("var.x = nope", Err("T/t.conf:1: undefined variable 'nope'")),
        (
            "\nvar.x = var.nope",
            Err("T/t.conf:2: undefined variable 'var.nope'"),
        ),
        (
            "var.x = env.LIGHTD_TEST_SURELY_UNSET",
            Err("T/t.conf:1: environment variable 'LIGHTD_TEST_SURELY_UNSET' is not set"),
        ),
        (
            "env.X = 1",
            Err("T/t.conf:1: cannot assign to environment variable 'env.X'"),
        ),
    ];
    let pid = std::process::id().to_string();
    let cwd = value::quote(
        &std::env::current_dir()
            .unwrap_or_default()
            .to_string_lossy(),
    );
    for (src, want) in cases {
        let want = want
            .map(|w| match w {
                "PID" => pid.clone(),
                "CWD" => cwd.clone(),
                w => w.to_string(),
            })
            .map_err(str::to_string);
        let got = globals(src).map(|g| g.get("var.x").cloned().unwrap_or_default());
        assert_eq!(got, want, "{src:?}");
    }
}

#[test]
fn variables_are_scoped_to_blocks() {
    let cfg = ok(r#"
var.root = "/srv"
$HTTP["host"] == "a" {
    var.root = "/other"
    server.document-root = root + "/a"
}
server.document-root = root + "/main"
"#);
    assert_eq!(cfg.base.document_root, Some(PathBuf::from("/srv/main")));
    let s = &cfg.conds[0].branches[0].settings;
    assert!(matches!(&s[..], [s] if matches!(&s.val, Val::Path(p) if p == Path::new("/other/a"))));
}

#[test]
fn syntax_error_table() {
    let cases: &[(&str, &str)] = &[
        (
            "server.port 80",
            "T/t.conf:1: expected '=', '+=' or ':=' after 'server.port', found integer 80",
        ),
        (
            "server.port = ",
            "T/t.conf:1: expected a value (string, integer, array or variable), found end of file",
        ),
        (
            "server.port =\n80",
            "T/t.conf:1: expected a value (string, integer, array or variable), found end of line",
        ),
        (
            "var.x = \"a\" +\n \"b\"",
            "T/t.conf:1: expected a value (string, integer, array or variable), found end of line",
        ),
        (
            "server.port = }",
            "T/t.conf:1: expected a value (string, integer, array or variable), found '}'",
        ),
        (
            "server.port = 80 81",
            "T/t.conf:1: expected end of line, found integer 81",
        ),
        (
            "\n\nvar.x = ( \"a\" \"b\" )",
            "T/t.conf:3: expected ')' or ',' in the array opened at line 3, found string \"b\"",
        ),
        (
            "var.x = ( \"a\",\n\n \"b\"",
            "T/t.conf:3: expected ')' or ',' in the array opened at line 1, found end of file",
        ),
        (
            "var.x = ( 1 => \"b\" )",
            "T/t.conf:1: array keys must be strings, got the integer 1",
        ),
        (
            "var.x = ( \"a\" => 1, \"a\" => 2 )",
            "T/t.conf:1: duplicate array key \"a\"",
        ),
        (
            "var.x = ( \"a\" ) + 1",
            "T/t.conf:1: cannot combine an array with the integer 1",
        ),
        (
            "var.x = 9223372036854775807 + 1",
            "T/t.conf:1: integer overflow in 9223372036854775807 + 1",
        ),
        ("}", "T/t.conf:1: unexpected '}' without an open block"),
        (
            "else { }",
            "T/t.conf:1: 'else' without a preceding conditional block",
        ),
        (
            "\"x\" = 1",
            "T/t.conf:1: expected a key, a condition or 'include', found string \"x\"",
        ),
        (
            "$HTTP[\"host\"] == \"a\" {\n server.tag = \"x\"\n",
            "T/t.conf:3: expected '}' to close the block opened at line 1",
        ),
        (
            "$HTTP[\"host\"] == \"a\" server.tag = \"x\"",
            "T/t.conf:1: expected '{' to open the block, found 'server.tag'",
        ),
        (
            "$HTTP \"host\"] == \"a\" {}",
            "T/t.conf:1: expected '[' after '$HTTP', found string \"host\"",
        ),
        (
            "$HTTP[\"host\" == \"a\" {}",
            "T/t.conf:1: expected ']', found '=='",
        ),
        (
            "$HTTP[\"host\"] = \"a\" {}",
            "T/t.conf:1: expected a comparison (==, !=, =~, !~, =^ or =$), found '='",
        ),
        (
            "$HTTP[\"host\"] == 1 {}",
            "T/t.conf:1: expected a string to compare with, got the integer 1",
        ),
        (
            "$HTTP[1] == \"a\" {}",
            "T/t.conf:1: expected a string inside $HTTP[...], got the integer 1",
        ),
        (
            "$HTTP[\"host\"] == \"a\" {} else 5",
            "T/t.conf:1: expected a condition or '{' after 'else', found integer 5",
        ),
        (
            "$HTTP[\"host\"] == \"a\" {} elseif {}",
            "T/t.conf:1: expected a condition after 'elseif', found '{'",
        ),
        (
            "include 5",
            "T/t.conf:1: include expects a string, got the integer 5",
        ),
        ("a = \"x", "T/t.conf:1: unterminated string"),
    ];
    for (src, want) in cases {
        let got = globals(src).map(|_| ());
        assert_eq!(got, Err(want.to_string()), "{src:?}");
    }
}

#[test]
fn nesting_is_bounded() {
    let deep = format!("var.x = {}1{}", "( ".repeat(100), " )".repeat(100));
    let got = globals(&deep).map(|_| ());
    assert_eq!(
        got,
        Err("T/t.conf:1: blocks or arrays nested more than 64 deep".to_string())
    );
}

// ---------------------------------------------------------------------------------------------
// Includes

#[test]
fn include_relative_to_main_config_dir() {
    // "sub/inc.conf" includes "other.conf": lighttpd resolves that against the main file's
    // directory, not the including file's.
    let (dir, res) = load_files(&[
        ("main.conf", "include \"sub/inc.conf\"\nserver.port = 81"),
        ("sub/inc.conf", "include \"other.conf\"\n"),
        ("other.conf", "server.tag = \"from-other\"\n"),
    ]);
    let cfg = res.unwrap_or_else(|e| panic!("{}", norm(&dir, &e.to_string())));
    assert_eq!(cfg.base.server_tag, "from-other");
    assert_eq!(cfg.listen[0].addr.port(), 81);
}

#[test]
fn include_glob_in_order_and_empty_glob() {
    let (dir, res) = load_files(&[
        (
            "main.conf",
            "index-file.names = ()\ninclude \"conf.d/*.conf\"\ninclude \"none.d/*.conf\"\n",
        ),
        ("conf.d/20-b.conf", "index-file.names += ( \"b\" )\n"),
        ("conf.d/10-a.conf", "index-file.names += ( \"a\" )\n"),
        ("conf.d/30-c.disabled", "index-file.names += ( \"c\" )\n"),
    ]);
    let cfg = res.unwrap_or_else(|e| panic!("{}", norm(&dir, &e.to_string())));
    assert_eq!(cfg.base.index_files, vec!["a", "b"]);
}

#[test]
fn include_absolute_path_and_inside_a_block() {
    let dir = tmpdir();
    let inc = write(&dir, "abs.conf", "server.document-root = \"/abs\"\n");
    let main = write(
        &dir,
        "main.conf",
        &format!(
            "$HTTP[\"host\"] == \"a\" {{\n  include \"{}\"\n}}\n",
            inc.display()
        ),
    );
    let cfg = load(&main).unwrap_or_else(|e| panic!("{e}"));
    let s = &cfg.conds[0].branches[0].settings;
    assert!(matches!(&s[..], [s] if matches!(&s.val, Val::Path(p) if p == Path::new("/abs"))));
}

#[test]
fn include_errors() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("main.conf", "\ninclude \"missing.conf\"")],
            "T/main.conf:2: cannot read included file 'T/missing.conf': No such file or directory (os error 2)",
        ),
        (
            &[("main.conf", "include \"loop.conf\""), ("loop.conf", "include \"loop.conf\"")],
            "T/loop.conf:1: includes nested more than 16 deep (does a file include itself?)",
        ),
        (
            &[("main.conf", "include \"bad.conf\""), ("bad.conf", "# fine\nserver.port = = 1\n")],
            "T/bad.conf:2: expected a value (string, integer, array or variable), found '='",
        ),
        (
            &[("main.conf", "$HTTP[\"host\"] == \"a\" {\ninclude \"close.conf\"\n}"), ("close.conf", "}\n")],
            "T/close.conf:1: unexpected '}' without an open block",
        ),
    ];
    for (files, want) in cases {
        let (dir, res) = load_files(files);
        let got = res.map(|_| ()).map_err(|e| norm(&dir, &e.to_string()));
        assert_eq!(got, Err(want.to_string()), "{files:?}");
    }
    let missing = load(Path::new("/nonexistent/lightd.conf")).map(|_| ());
    assert_eq!(
        missing.map_err(|e| e.to_string()),
        Err("cannot read config file '/nonexistent/lightd.conf': No such file or directory (os error 2)".to_string())
    );
}

#[test]
fn include_shell_output_is_parsed() {
    let cfg = ok(r#"
server.port = 8081
include_shell "echo 'server.tag = \"shell\"'; echo 'var.p = 1'"
include_shell "printf '$SERVER[\"socket\"] == \"[::]:%s\" { }\n' " + server.port
"#);
    assert_eq!(cfg.base.server_tag, "shell");
    let texts: Vec<&str> = cfg.listen.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(texts, vec!["0.0.0.0:8081", "[::]:8081"]);
}

#[test]
fn include_shell_errors() {
    for (src, want) in [
        ("\ninclude_shell \"exit 3\"", "T/main.conf:2: include_shell \"exit 3\" failed (exit status: 3)"),
        (
            "include_shell \"/nonexistent/create-mime.conf.pl\"",
            "T/main.conf:1: include_shell \"/nonexistent/create-mime.conf.pl\" failed (exit status: 127)",
        ),
        ("include_shell \"echo 'server.port = x'\"", "echo 'server.port = x':1: undefined variable 'x'"),
    ] {
        assert_eq!(fails(src), want, "{src:?}");
    }
}

// ---------------------------------------------------------------------------------------------
// Conditions

/// A request for `Config::matches`.
struct Req {
    fields: Vec<(CondField, &'static str)>,
    ip: IpAddr,
    sock: SocketAddr,
}

impl Req {
    fn new(fields: &[(CondField, &'static str)]) -> Req {
        Req {
            fields: fields.to_vec(),
            ip: IpAddr::from([127, 0, 0, 1]),
            sock: SocketAddr::from(([0, 0, 0, 0], 80)),
        }
    }
}

impl CondInput for Req {
    fn field(&self, field: &CondField) -> Option<&str> {
        self.fields
            .iter()
            .find(|(f, _)| f == field)
            .map(|(_, v)| *v)
    }
    fn remote_ip(&self) -> IpAddr {
        self.ip
    }
    fn server_socket(&self) -> SocketAddr {
        self.sock
    }
}

fn ids(set: &MatchSet) -> Vec<usize> {
    (0..MAX_COND_BRANCHES)
        .filter(|i| set.0[i / 64] & (1 << (i % 64)) != 0)
        .collect()
}

#[test]
fn operator_table() {
    use CondField::*;
    // (field, op, pattern, request value (None = absent), matches?)
    let cases: &[(&str, &str, Option<&'static str>, bool)] = &[
        (
            r#"$HTTP["host"] == "example.org""#,
            "",
            Some("example.org"),
            true,
        ),
        (
            r#"$HTTP["host"] == "example.org""#,
            "",
            Some("EXAMPLE.org"),
            true,
        ),
        (
            r#"$HTTP["host"] == "example.org""#,
            "",
            Some("other.org"),
            false,
        ),
        (
            r#"$HTTP["host"] != "example.org""#,
            "",
            Some("other.org"),
            true,
        ),
        (r#"$HTTP["host"] != "example.org""#, "", None, true),
        (r#"$HTTP["host"] == """#, "", None, true),
        (
            r#"$HTTP["host"] =~ "^(www\.)?example\.org$""#,
            "",
            Some("www.example.org"),
            true,
        ),
        (
            r#"$HTTP["host"] =~ "^(www\.)?example\.org$""#,
            "",
            Some("wwwxexample.org"),
            false,
        ),
        (r#"$HTTP["host"] !~ "example""#, "", Some("other.org"), true),
        (r#"$HTTP["host"] =^ "www.""#, "", Some("www.a"), true),
        (r#"$HTTP["host"] =$ ".org""#, "", Some("a.ORG"), true),
        (
            r#"$HTTP["url"] =^ "/files/""#,
            "url",
            Some("/files/a"),
            true,
        ),
        (
            r#"$HTTP["url"] =^ "/files/""#,
            "url",
            Some("/FILES/a"),
            false,
        ),
        (r#"$HTTP["url"] =$ ".php""#, "url", Some("/a.php"), true),
        (r#"$HTTP["url"] =~ "\.php$""#, "url", Some("/a.php"), true),
        (r#"$HTTP["url"] =~ "\.php$""#, "url", Some("/aphp"), false),
        (r#"$HTTP["url"] =$ "é""#, "url", Some("/x/aé"), true),
        (r#"$HTTP["url"] =^ "/é""#, "url", Some("/"), false),
        (
            r#"$HTTP["request-method"] == "POST""#,
            "method",
            Some("POST"),
            true,
        ),
        (
            r#"$HTTP["request-method"] == "POST""#,
            "method",
            Some("post"),
            false,
        ),
        (
            r#"$HTTP["querystring"] =~ "debug=1""#,
            "qs",
            Some("a=b&debug=1"),
            true,
        ),
        (r#"$HTTP["scheme"] == "http""#, "scheme", Some("http"), true),
        (
            r#"$HTTP["useragent"] =~ "curl""#,
            "ua",
            Some("curl/8"),
            true,
        ),
        (r#"$HTTP["referer"] == """#, "ref", None, true),
        (
            r#"$HTTP["cookie"] =~ "session=""#,
            "cookie",
            Some("a=1; session=2"),
            true,
        ),
        (
            r#"$REQUEST_HEADER["X-Test"] == "yes""#,
            "xtest",
            Some("yes"),
            true,
        ),
        (
            r#"$REQUEST_HEADER["X-Test"] == "yes""#,
            "xtest",
            None,
            false,
        ),
    ];
    for (cond, which, value, want) in cases {
        let field = match *which {
            "url" => Url,
            "method" => RequestMethod,
            "qs" => QueryString,
            "scheme" => Scheme,
            "ua" => UserAgent,
            "ref" => Referer,
            "cookie" => Cookie,
            "xtest" => RequestHeader("X-Test".to_string()),
            _ => Host,
        };
        let cfg = ok(&format!("{cond} {{ server.tag = \"hit\" }}"));
        let req = Req::new(&value.map(|v| vec![(field, v)]).unwrap_or_default());
        let set = cfg.matches(&req);
        assert_eq!(!set.is_empty(), *want, "{cond} with {value:?}");
        let tag = cfg.merged(&set).server_tag;
        assert_eq!(tag == "hit", *want, "{cond} with {value:?}");
    }
}

#[test]
fn remote_ip_table() {
    let cases: &[(&str, &str, bool)] = &[
        (r#"$HTTP["remote-ip"] == "10.0.0.0/8""#, "10.1.2.3", true),
        (r#"$HTTP["remote-ip"] == "10.0.0.0/8""#, "11.1.2.3", false),
        (
            r#"$HTTP["remote-ip"] == "10.0.0.0/8""#,
            "::ffff:10.1.2.3",
            true,
        ),
        (r#"$HTTP["remote-ip"] != "10.0.0.0/8""#, "11.1.2.3", true),
        (
            r#"$HTTP["remote-ip"] == "192.168.0.1""#,
            "192.168.0.1",
            true,
        ),
        (r#"$HTTP["remote-ip"] == "::1/128""#, "::1", true),
        (r#"$HTTP["remote-ip"] == "::1""#, "127.0.0.1", false),
        (r#"$HTTP["remoteip"] == "127.0.0.1""#, "127.0.0.1", true),
        (r#"$HTTP["remote-ip"] =^ "192.168.""#, "192.168.7.7", true),
        (r#"$HTTP["remote-ip"] =~ "^10\.""#, "10.0.0.1", true),
    ];
    for (cond, ip, want) in cases {
        let cfg = ok(&format!("{cond} {{ server.tag = \"hit\" }}"));
        let mut req = Req::new(&[]);
        req.ip = ip.parse().unwrap_or(req.ip);
        assert_eq!(!cfg.matches(&req).is_empty(), *want, "{cond} from {ip}");
    }
}

/// lighttpd drops an `if` written before a condition and takes `elif` for `else`, as its
/// own test config (condition.conf) does.
#[test]
fn leading_if_and_elif() {
    let cfg = ok(r#"
if $HTTP["host"] == "a" { server.tag = "A" }
elif $HTTP["host"] == "b" { server.tag = "B" }
else if $HTTP["host"] == "c" { server.tag = "C" }
"#);
    assert_eq!(cfg.conds.len(), 1);
    assert_eq!(cfg.conds[0].branches.len(), 3);
    for (host, tag) in [("a", "A"), ("b", "B"), ("c", "C"), ("d", "lightd/")] {
        let req = Req::new(&[(CondField::Host, host)]);
        let got = cfg.merged(&cfg.matches(&req)).server_tag;
        assert!(got.starts_with(tag), "{host}: {got}");
    }
    assert_eq!(
        fails("elif $HTTP[\"host\"] == \"a\" {}\n"),
        "T/main.conf:1: 'elif' without a preceding conditional block"
    );
}

#[test]
fn else_chains_take_the_first_match() {
    let src = r#"
$HTTP["host"] == "a" {
    server.tag = "A"
} else $HTTP["host"] == "b" {
    server.tag = "B"
}
else if $HTTP["host"] == "c" {
    server.tag = "C"
} elseif $HTTP["host"] == "d" { server.tag = "D" }
elsif $HTTP["host"] =~ "." { server.tag = "any" }
else {
    server.tag = "none"
}
$HTTP["url"] =^ "/x"
{
    index-file.names = ( "x.html" )
}
"#;
    let cfg = ok(src);
    assert_eq!(cfg.conds.len(), 2);
    assert_eq!(cfg.conds[0].branches.len(), 6);
    assert!(cfg.conds[0].branches[5].cond.is_none());
    for (host, tag, want_ids) in [
        ("a", "A", vec![0]),
        ("b", "B", vec![1]),
        ("c", "C", vec![2]),
        ("d", "D", vec![3]),
        ("zz", "any", vec![4]),
        ("", "none", vec![5]),
    ] {
        let req = Req::new(&[(CondField::Host, host), (CondField::Url, "/y")]);
        let set = cfg.matches(&req);
        assert_eq!(ids(&set), want_ids, "{host}");
        assert_eq!(cfg.merged(&set).server_tag, tag, "{host}");
    }
    let req = Req::new(&[(CondField::Host, "a"), (CondField::Url, "/x/1")]);
    let set = cfg.matches(&req);
    assert_eq!(ids(&set), vec![0, 6]);
    let merged = cfg.merged(&set);
    assert_eq!(
        (merged.server_tag.as_str(), merged.index_files),
        ("A", vec!["x.html".to_string()])
    );
}

#[test]
fn nested_blocks_and_config_order() {
    let cfg = ok(r#"
server.document-root = "/base"
$HTTP["host"] == "a" {
    server.document-root = "/a"
    $HTTP["url"] =^ "/deep/" {
        server.document-root = "/a-deep"
        dir-listing.activate = "enable"
    } else {
        server.follow-symlink = "disable"
    }
}
$HTTP["url"] =^ "/deep/" {
    server.tag = "later"
}
"#);
    // ids: 0 host==a, 1 url deep (nested), 2 else (nested), 3 url deep (top level)
    let ids_of = |c: &CondChain| c.branches.iter().map(|b| b.id).collect::<Vec<_>>();
    assert_eq!(ids_of(&cfg.conds[0]), vec![0]);
    assert_eq!(ids_of(&cfg.conds[0].branches[0].children[0]), vec![1, 2]);
    assert_eq!(ids_of(&cfg.conds[1]), vec![3]);

    let req = Req::new(&[(CondField::Host, "a"), (CondField::Url, "/deep/x")]);
    let set = cfg.matches(&req);
    assert_eq!(ids(&set), vec![0, 1, 3]);
    let m = cfg.merged(&set);
    assert_eq!(m.document_root, Some(PathBuf::from("/a-deep")));
    assert!(m.dir_listing && m.follow_symlink);
    assert_eq!(m.server_tag, "later");

    let req = Req::new(&[(CondField::Host, "a"), (CondField::Url, "/other")]);
    let set = cfg.matches(&req);
    assert_eq!(ids(&set), vec![0, 2]);
    let m = cfg.merged(&set);
    assert_eq!(m.document_root, Some(PathBuf::from("/a")));
    assert!(!m.follow_symlink && !m.dir_listing);

    // Nested conditions are not considered when their parent is not taken.
    let req = Req::new(&[(CondField::Host, "b"), (CondField::Url, "/deep/x")]);
    let set = cfg.matches(&req);
    assert_eq!(ids(&set), vec![3]);
    assert_eq!(cfg.merged(&set).document_root, Some(PathBuf::from("/base")));
    assert_eq!(
        cfg.merged(&MatchSet::default()).server_tag,
        cfg.base.server_tag
    );
}

#[test]
fn server_socket_opens_listeners() {
    let cfg = ok(r#"
server.port = 8080
server.bind = "127.0.0.1"
$SERVER["socket"] == "[::]:8080" { }
$SERVER["socket"] == ":8443" {
    server.document-root = "/tls"
}
$SERVER["socket"] == "127.0.0.1:8080" { server.tag = "main" }
$SERVER["socket"] == ":8443" { server.tag = "again" }
$SERVER["socket"] != ":8443" { server.tag = "not-8443" }
"#);
    let texts: Vec<(String, String)> = cfg
        .listen
        .iter()
        .map(|l| (l.addr.to_string(), l.text.clone()))
        .collect();
    assert_eq!(
        texts,
        vec![
            ("127.0.0.1:8080".to_string(), "127.0.0.1:8080".to_string()),
            ("[::]:8080".to_string(), "[::]:8080".to_string()),
            ("0.0.0.0:8443".to_string(), ":8443".to_string()),
        ]
    );
    assert_eq!(cfg.listen[2].loc.line, 5);
    assert_eq!(
        cfg.conds[1].branches[0]
            .cond
            .as_ref()
            .and_then(|c| c.socket),
        Some(cfg.listen[2].addr)
    );

    let mut req = Req::new(&[]);
    req.sock = cfg.listen[2].addr;
    let set = cfg.matches(&req);
    assert_eq!(ids(&set), vec![1, 3]);
    let m = cfg.merged(&set);
    assert_eq!(
        (m.document_root, m.server_tag.as_str()),
        (Some(PathBuf::from("/tls")), "again")
    );

    req.sock = cfg.listen[0].addr;
    let set = cfg.matches(&req);
    assert_eq!(ids(&set), vec![2, 4]);
    assert_eq!(cfg.merged(&set).server_tag, "not-8443");
}

#[test]
fn ephemeral_port_listeners_stay_apart() {
    let mut cfg = ok(r#"
server.bind = "127.0.0.1"
server.port = 0
$SERVER["socket"] == "127.0.0.1:0" { server.tag = "extra" }
"#);
    let listen: Vec<String> = cfg.listen.iter().map(|l| l.addr.to_string()).collect();
    assert_eq!(listen, vec!["127.0.0.1:0", "127.0.0.1:0"]);
    let bound = [
        SocketAddr::from(([127, 0, 0, 1], 40001)),
        SocketAddr::from(([127, 0, 0, 1], 40002)),
    ];
    cfg.resolve_ephemeral_ports(&[(0, bound[0]), (1, bound[1])]);
    let tag_on = |sock: SocketAddr| {
        let mut req = Req::new(&[]);
        req.sock = sock;
        cfg.merged(&cfg.matches(&req)).server_tag
    };
    assert_eq!(tag_on(bound[1]), "extra");
    assert_ne!(tag_on(bound[0]), "extra");
}

#[test]
fn condition_error_table() {
    let cases: &[(&str, &str)] = &[
        (
            "$HTTP[\"hots\"] == \"a\" {}",
            "T/main.conf:1: unknown field $HTTP[\"hots\"]; expected one of \"host\", \"url\", \"remote-ip\", \"querystring\", \"request-method\", \"scheme\", \"useragent\", \"referer\", \"cookie\"",
        ),
        ("\n$FOO[\"x\"] == \"a\" {}", "T/main.conf:2: unknown condition '$FOO'; expected $HTTP, $REQUEST_HEADER or $SERVER"),
        (
            "$PHYSICAL[\"path\"] =~ \"x\" {}",
            "T/main.conf:1: $PHYSICAL[...] conditions are not supported by lightd (it supports $HTTP, $REQUEST_HEADER and $SERVER[\"socket\"])",
        ),
        ("$SERVER[\"name\"] == \"a\" {}", "T/main.conf:1: unknown field $SERVER[\"name\"]; expected $SERVER[\"socket\"]"),
        ("$REQUEST_HEADER[\"\"] == \"a\" {}", "T/main.conf:1: invalid header name \"\""),
        (
            "$HTTP[\"url\"] =~ \"(unclosed\" {}",
            "T/main.conf:1: invalid regular expression \"(unclosed\": found open group without closing ')'",
        ),
        (
            "$HTTP[\"remote-ip\"] == \"10.0.0.0/33\" {}",
            "T/main.conf:1: $HTTP[\"remote-ip\"]: expected an IP address or a network such as \"10.0.0.0/8\", got \"10.0.0.0/33\"",
        ),
        ("$SERVER[\"socket\"] == \"/run/l.sock\" {}", "T/main.conf:1: $SERVER[\"socket\"]: unix domain sockets are not supported"),
        ("$SERVER[\"socket\"] == \"[::]\" {}", "T/main.conf:1: $SERVER[\"socket\"]: expected \"[ipv6]:port\", got \"[::]\""),
        ("$SERVER[\"socket\"] != \"nope\" {}", "T/main.conf:1: $SERVER[\"socket\"]: expected \"ip:port\" or \":port\", got \"nope\""),
        (
            "$HTTP[\"host\"] == \"a\" {\n  $SERVER[\"socket\"] == \":81\" {}\n}",
            "T/main.conf:2: $SERVER[\"socket\"] == \"...\" opens a listener and must be at the top level, not inside another conditional",
        ),
        ("$HTTP[\"host\"] == \"a\" {\n\n  server.port = 81\n}", "T/main.conf:3: server.port cannot be set inside a conditional"),
        ("$HTTP[\"host\"] == \"a\" { server.modules = () }", "T/main.conf:1: server.modules cannot be set inside a conditional"),
        ("$HTTP[\"host\"] == \"a\" { server.feature-flags = () }", "T/main.conf:1: server.feature-flags cannot be set inside a conditional"),
        (
            "$HTTP[\"host\"] == \"a\" {\n server.follow-symlink = \"maybe\"\n}",
            "T/main.conf:2: server.follow-symlink: expected \"enable\" or \"disable\", got the string \"maybe\"",
        ),
    ];
    for (src, want) in cases {
        assert_eq!(fails(src), *want, "{src:?}");
    }
}

#[test]
fn branch_limit() {
    let ok_src = "$HTTP[\"host\"] == \"x\" { }\n".repeat(MAX_COND_BRANCHES);
    assert_eq!(ok(&ok_src).conds.len(), MAX_COND_BRANCHES);
    let too_many = format!("{ok_src}\n$HTTP[\"host\"] == \"y\" {{ }}\n");
    assert_eq!(
        fails(&too_many),
        format!(
            "T/main.conf:{}: too many conditional blocks (lightd allows at most 256)",
            MAX_COND_BRANCHES + 2
        )
    );
}

// ---------------------------------------------------------------------------------------------
// Keys, types and defaults

#[test]
fn defaults() {
    let cfg = ok("");
    let l = &cfg.listen[0];
    assert_eq!(
        (cfg.listen.len(), l.addr.to_string().as_str()),
        (1, "0.0.0.0:80")
    );
    assert_eq!(
        cfg.modules,
        vec!["mod_indexfile", "mod_dirlisting", "mod_staticfile"]
    );
    assert_eq!((cfg.pid_file.clone(), cfg.errorlog.clone()), (None, None));
    assert_eq!((cfg.username.clone(), cfg.groupname.clone()), (None, None));
    assert_eq!((cfg.max_connections, cfg.max_fds), (1024, None));
    assert_eq!(cfg.max_keep_alive_requests, 1000);
    assert_eq!(cfg.max_keep_alive_idle, Duration::from_secs(5));
    assert_eq!(cfg.max_read_idle, Duration::from_secs(60));
    assert_eq!(cfg.max_write_idle, Duration::from_secs(360));
    assert_eq!(
        (cfg.max_request_size, cfg.max_request_field_size),
        (0, 8192)
    );
    assert_eq!(cfg.graceful_shutdown_timeout, Duration::from_secs(8));
    assert_eq!(cfg.max_request_head_time, Duration::from_secs(30));
    let b = &cfg.base;
    assert_eq!(b.document_root, None);
    assert_eq!(b.index_files, vec!["index.html", "index.htm"]);
    assert!(b.follow_symlink && b.range_requests && !b.dir_listing);
    assert!(b.exclude_extensions.is_empty());
    assert_eq!(
        mime_lookup(&b.mime, "a.css"),
        Some("text/css;charset=utf-8")
    );
    assert_eq!(
        b.server_tag,
        format!("lightd/{}", env!("CARGO_PKG_VERSION"))
    );
    #[cfg(feature = "accesslog")]
    {
        assert_eq!(b.accesslog.filename, None);
        // lighttpd's default, which has %V where Apache's combined format has %l.
        assert_eq!(
            b.accesslog.format.text(),
            "%h %V %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-Agent}i\""
        );
        assert_eq!(b.accesslog.escaping, super::accesslog::Escaping::Default);
    }
    assert!(cfg.conds.is_empty() && cfg.warnings.is_empty());
}

#[test]
fn every_implemented_key() {
    let cfg = ok(r#"
server.bind = "::1"
server.port = 0
server.modules = ( "mod_accesslog", "mod_staticfile" )
server.pid-file = "/run/lightd.pid"
server.errorlog = "/var/log/lightd/error.log"
server.username = "www-data"
server.groupname = "www-data"
server.max-connections = 10
server.max-fds = 2048
server.max-keep-alive-requests = 0
server.max-keep-alive-idle = 0
server.max-read-idle = 7
server.max-write-idle = 8
server.max-request-size = 100
server.max-request-field-size = 4096
server.graceful-shutdown-timeout = 0
server.max-request-head-time = 9
server.feature-flags = ( "server.h2proto" => "enable" )
server.document-root = "htdocs"
server.indexfiles = ( "default.htm" )
server.follow-symlink = "disable"
server.range-requests = "false"
static-file.exclude-extensions = ( ".php", ".pl" )
server.dir-listing = "enable"
mimetype.assign = ( ".gz" => "application/gzip", ".tar.gz" => "application/x-tgz", "" => "application/x-unknown" )
server.tag = ""
accesslog.filename = "access.log"
accesslog.format = "%h %r"
accesslog.escaping = "json"
"#);
    assert_eq!(cfg.listen[0].addr.to_string(), "[::1]:0");
    assert_eq!(
        cfg.modules,
        vec![
            "mod_accesslog",
            "mod_staticfile",
            "mod_indexfile",
            "mod_dirlisting"
        ]
    );
    assert_eq!(cfg.pid_file, Some(PathBuf::from("/run/lightd.pid")));
    assert_eq!(
        cfg.errorlog,
        Some(PathBuf::from("/var/log/lightd/error.log"))
    );
    assert_eq!(cfg.username.as_deref(), Some("www-data"));
    assert_eq!(cfg.groupname.as_deref(), Some("www-data"));
    assert_eq!((cfg.max_connections, cfg.max_fds), (10, Some(2048)));
    assert_eq!(cfg.max_keep_alive_requests, 0);
    assert_eq!(cfg.max_keep_alive_idle, Duration::ZERO);
    assert_eq!(cfg.max_read_idle, Duration::from_secs(7));
    assert_eq!(cfg.max_write_idle, Duration::from_secs(8));
    assert_eq!(
        (cfg.max_request_size, cfg.max_request_field_size),
        (102_400, 4096)
    );
    assert_eq!(cfg.graceful_shutdown_timeout, Duration::ZERO);
    assert_eq!(cfg.max_request_head_time, Duration::from_secs(9));
    let b = &cfg.base;
    assert_eq!(b.document_root, Some(PathBuf::from("htdocs")));
    assert_eq!(b.index_files, vec!["default.htm"]);
    assert!(!b.follow_symlink && !b.range_requests && b.dir_listing);
    assert_eq!(b.exclude_extensions, vec![".php", ".pl"]);
    assert_eq!(mime_lookup(&b.mime, "x.tar.gz"), Some("application/x-tgz"));
    assert_eq!(mime_lookup(&b.mime, "x.gz"), Some("application/gzip"));
    assert_eq!(mime_lookup(&b.mime, "x.css"), Some("application/x-unknown"));
    assert_eq!(b.server_tag, "");
    #[cfg(feature = "accesslog")]
    {
        assert_eq!(b.accesslog.filename.as_deref(), Some("access.log"));
        assert_eq!(b.accesslog.format.text(), "%h %r");
        assert_eq!(b.accesslog.escaping, super::accesslog::Escaping::Json);
    }
    assert_eq!(cfg.locs.get("server.port").map(|l| l.line), Some(3));
    // A build without mod_accesslog warns about its keys and ignores them.
    assert!(
        cfg.warnings
            .iter()
            .all(|w| !cfg!(feature = "accesslog") && w.contains("accesslog")),
        "{:?}",
        cfg.warnings
    );
}

#[test]
fn conversions() {
    type Getter = fn(&Config) -> String;
    let cases: &[(&str, Getter, &str)] = &[
        ("server.port = \"8080\"", |c| c.listen[0].addr.port().to_string(), "8080"),
        ("server.bind = \"localhost\"", |c| c.listen[0].addr.ip().to_string(), "127.0.0.1"),
        ("server.bind = \"[::]\"", |c| c.listen[0].addr.to_string(), "[::]:80"),
        ("server.bind = \"::\"", |c| c.listen[0].addr.to_string(), "[::]:80"),
        ("server.bind = \"\"", |c| c.listen[0].addr.to_string(), "0.0.0.0:80"),
        ("dir-listing.activate = 1", |c| c.base.dir_listing.to_string(), "true"),
        ("dir-listing.activate = \"Enable\"", |c| c.base.dir_listing.to_string(), "true"),
        ("server.range-requests = 0", |c| c.base.range_requests.to_string(), "false"),
        ("server.range-requests = \"off\"", |c| c.base.range_requests.to_string(), "false"),
        ("server.errorlog = \"\"", |c| format!("{:?}", c.errorlog), "None"),
        (
            "server.feature-flags += ( \"server.graceful-shutdown-timeout\" => 5 )",
            |c| c.graceful_shutdown_timeout.as_secs().to_string(),
            "5",
        ),
        (
            "server.graceful-shutdown-timeout = 3\nserver.feature-flags = ( \"server.graceful-shutdown-timeout\" => 5 )",
            |c| c.graceful_shutdown_timeout.as_secs().to_string(),
            "3",
        ),
        ("mimetype.assign = ()", |c| c.base.mime.len().to_string(), "0"),
        (
            "server.modules = ( \"mod_staticfile\", \"mod_staticfile\" )",
            |c| c.modules.join(","),
            "mod_staticfile,mod_indexfile,mod_dirlisting",
        ),
    ];
    for (src, get, want) in cases {
        assert_eq!(get(&ok(src)), *want, "{src:?}");
    }
}

#[test]
fn type_error_table() {
    let cases: &[(&str, &str)] = &[
        ("server.port = \"http\"", "T/main.conf:1: server.port: expected an integer, got the string \"http\""),
        ("\nserver.port = 70000", "T/main.conf:2: server.port: expected a value from 0 to 65535, got 70000"),
        ("server.port = ( 80 )", "T/main.conf:1: server.port: expected an integer, got an array"),
        ("server.max-read-idle = 0", "T/main.conf:1: server.max-read-idle: expected a value from 1 to 2147483647, got 0"),
        ("server.max-request-field-size = 10", "T/main.conf:1: server.max-request-field-size: expected a value from 256 to 65535, got 10"),
        ("server.max-connections = -1", "T/main.conf:1: server.max-connections: expected a value from 1 to 1048576, got -1"),
        ("server.bind = \"/run/lightd.sock\"", "T/main.conf:1: server.bind: unix domain sockets are not supported"),
        (
            "server.bind = \"example.com\"",
            "T/main.conf:1: server.bind: \"example.com\" is not an IP address (lightd does not resolve host names other than localhost)",
        ),
        ("server.errorlog = \"|/usr/bin/logger\"", "T/main.conf:1: server.errorlog: piped error logs (\"|command\") are not supported by lightd; log to a file"),
        #[cfg(feature = "accesslog")]
        ("accesslog.filename = \"|cronolog\"", "T/main.conf:1: accesslog.filename: piped access logs (\"|command\") are not supported by lightd; log to a file"),
        // lighttpd refuses an empty or unknown format at start-up too.
        #[cfg(feature = "accesslog")]
        ("accesslog.format = \"\"", "T/main.conf:1: accesslog.format: must not be empty"),
        #[cfg(feature = "accesslog")]
        ("\naccesslog.format = \"%h %Z\"", "T/main.conf:2: accesslog.format: \"%h %Z\": unknown format-specifier %Z (% or %{...} must be followed by a valid format-specifier)"),
        #[cfg(feature = "accesslog")]
        ("accesslog.format = \"%t %t\"", "T/main.conf:1: accesslog.format: \"%t %t\": you may not use strftime timestamp format %{}t twice"),
        #[cfg(feature = "accesslog")]
        ("accesslog.escaping = 1", "T/main.conf:1: accesslog.escaping: expected a string, got the integer 1"),
        ("server.document-root = \"\"", "T/main.conf:1: server.document-root: must not be empty"),
        ("server.document-root = 5", "T/main.conf:1: server.document-root: expected a string, got the integer 5"),
        ("server.follow-symlink = 2", "T/main.conf:1: server.follow-symlink: expected \"enable\" or \"disable\", got the integer 2"),
        ("index-file.names = \"index.html\"", "T/main.conf:1: index-file.names: expected a list of strings such as ( \"a\", \"b\" ), got the string \"index.html\""),
        ("index-file.names = ( \"a\" => \"b\" )", "T/main.conf:1: index-file.names: expected a list of strings such as ( \"a\", \"b\" ), got an array"),
        ("mimetype.assign = ( \"text/html\" )", "T/main.conf:1: mimetype.assign: expected a map of strings such as ( \".html\" => \"text/html\" ), got an entry without a key (the string \"text/html\")"),
        ("mimetype.assign = ( \".a\" => 1 )", "T/main.conf:1: mimetype.assign: expected a map of strings such as ( \".html\" => \"text/html\" ), got the integer 1 for \".a\""),
        ("server.modules = ( \"mod_rewrtie\" )", "T/main.conf:1: server.modules: unknown module 'mod_rewrtie'; did you mean 'mod_rewrite'?"),
        ("server.modules = ( \"mod_php\" )", "T/main.conf:1: server.modules: unknown module 'mod_php'"),
        ("server.feature-flags = \"x\"", "T/main.conf:1: server.feature-flags: expected a map, got the string \"x\""),
        (
            "server.feature-flags = ( \"server.graceful-shutdown-timeout\" => \"soon\" )",
            "T/main.conf:1: server.feature-flags \"server.graceful-shutdown-timeout\": expected an integer, got the string \"soon\"",
        ),
    ];
    for (src, want) in cases {
        assert_eq!(fails(src), *want, "{src:?}");
    }
}

#[test]
fn warning_table() {
    let cases: &[(&str, &[&str])] = &[
        ("upload-progress.progress-url = \"/p\"", &["T/main.conf:1: lighttpd key 'upload-progress.progress-url' (mod_uploadprogress) is not implemented by lightd and is ignored"]),
        ("server.name = \"x\"", &["T/main.conf:1: lighttpd key 'server.name' is not implemented by lightd and is ignored"]),
        ("\nserver.documentroot = \"/x\"", &["T/main.conf:2: unknown key 'server.documentroot'; did you mean 'server.document-root'?"]),
        ("foo.bar = 1", &["T/main.conf:1: unknown key 'foo.bar' is ignored"]),
        ("deflate.mimetype = 1", &["T/main.conf:1: unknown key 'deflate.mimetype'; did you mean 'deflate.mimetypes'?"]),
        // A module's key without the module: a feature is ignored, as by lighttpd; a
        // protection is enforced all the same.
        (
            "$HTTP[\"host\"] == \"a\" {\n  expire.url = ( \"\" => \"access plus 1 days\" )\n}",
            &["T/main.conf:2: expire.url is ignored: mod_expire is not in server.modules"],
        ),
        (
            "url.access-deny = ( \".inc\" )",
            &["T/main.conf:1: url.access-deny is set but mod_access is not in server.modules; lighttpd would ignore it, lightd enforces it (add mod_access to server.modules)"],
        ),
        (
            "usertrack.cookie-name = \"/a\"\nusertrack.cookie-name := \"/b\"",
            &["T/main.conf:1: lighttpd key 'usertrack.cookie-name' (mod_usertrack) is not implemented by lightd and is ignored"],
        ),
        (
            "server.modules = ( \"mod_flv_streaming\", \"mod_indexfile\", \"mod_usertrack\" )",
            &[
                "T/main.conf:1: module 'mod_flv_streaming' is not implemented by lightd; its settings are ignored",
                "T/main.conf:1: module 'mod_usertrack' is not implemented by lightd; its settings are ignored",
            ],
        ),
        // Each module is cited at its own line, through += as well.
        (
            "server.modules = (\n  \"mod_indexfile\",\n  \"mod_rrdtool\",\n)\nserver.modules += (\n  \"mod_h2\" )",
            &[
                "T/main.conf:3: module 'mod_rrdtool' is not implemented by lightd; its settings are ignored",
                "T/main.conf:6: module 'mod_h2' is not implemented by lightd; its settings are ignored",
            ],
        ),
        (
            "server.modules = ( \"mod_staticfile\", \"mod_staticfile\" )",
            &["T/main.conf:1: module 'mod_staticfile' is listed more than once"],
        ),
        #[cfg(feature = "accesslog")]
        (
            "server.modules = ()\naccesslog.filename = \"/tmp/a.log\"",
            &["T/main.conf:2: accesslog.filename is set but mod_accesslog is not in server.modules; lighttpd would not log, lightd writes the access log anyway"],
        ),
        ("accesslog.filename = \"/tmp/a.log\"", &[]),
        ("var.anything = 1\nserver.feature-flags = ( \"x\" => 1 )", &[]),
    ];
    for (src, want) in cases {
        // Rows about an optional module's keys need the module in this build.
        let needs = [
            ("expire.", cfg!(feature = "expire")),
            ("url.access-", cfg!(feature = "access")),
            ("accesslog.", cfg!(feature = "accesslog")),
        ];
        if needs.iter().any(|(k, built)| src.contains(k) && !built) {
            continue;
        }
        assert_eq!(warnings(src), *want, "{src:?}");
    }
}

/// What lightd refuses to run without: every protective key and module, wherever it is, each
/// with its own file:line and module; nothing else.
fn refused(src: &str) -> Vec<String> {
    let (dir, res) = load_files(&[("main.conf", src)]);
    let cfg = res.unwrap_or_else(|e| panic!("{src:?}: {}", norm(&dir, &e.to_string())));
    cfg.refused
        .iter()
        .map(|r| norm(&dir, &r.to_string()))
        .collect()
}

#[test]
fn refusal_table() {
    let cases: &[(&str, &[&str])] = &[
        (
            "secdownload.secret = \"x\"",
            &["T/main.conf:1: secdownload.secret needs mod_secdownload, which lightd does not implement; without it, its signed, time-limited download links would not be checked"],
        ),
        (
            "\nwebdav.is-readonly = \"enable\"",
            &["T/main.conf:2: webdav.is-readonly needs mod_webdav, which lightd does not implement; without it, its WebDAV rules (read-only mode, locking) would not apply"],
        ),
        #[cfg(not(feature = "cgi"))]
        (
            "cgi.assign = ( \".pl\" => \"/usr/bin/perl\" )",
            &["T/main.conf:1: cgi.assign needs mod_cgi, which lightd does not implement; without it, scripts would be served as their source code instead of being run"],
        ),
        // A misspelled key of a backend module the build has is refused all the same.
        (
            "\ncgi.asign = ( \".pl\" => \"/usr/bin/perl\" )",
            &["T/main.conf:2: cgi.asign (a name lightd does not know in mod_cgi's keys; did you mean 'cgi.assign'?) needs mod_cgi, which lightd does not implement; without it, scripts would be served as their source code instead of being run"],
        ),
        #[cfg(not(feature = "tls"))]
        (
            "$SERVER[\"socket\"] == \"127.0.0.1:0\" {\n  ssl.engine = \"enable\"\n}",
            &["T/main.conf:2: ssl.engine needs mod_openssl, which lightd does not implement; without it, the socket would speak plain, unencrypted HTTP (this build of lightd has no TLS: build it with `--features tls`)"],
        ),
        (
            "server.chroot = \"/srv\"",
            &["T/main.conf:1: server.chroot is not implemented by lightd; without it, lightd would run outside the chroot jail"],
        ),
        (
            "webdav.activate = \"enable\"",
            &["T/main.conf:1: webdav.activate needs mod_webdav, which lightd does not implement; without it, its WebDAV rules (read-only mode, locking) would not apply"],
        ),
        // A misspelling in a protective namespace is refused, not ignored.
        (
            "auth.requre = ()",
            &["T/main.conf:1: auth.requre (a name lightd does not know in mod_auth's keys; did you mean 'auth.require'?) needs mod_auth, which lightd does not implement; without it, pages it protects with a password would be served to anyone"],
        ),
        // Encrypted Client Hello is refused even with TLS (rustls servers lack it).
        #[cfg(feature = "tls")]
        (
            "ssl.ech-opts = ( \"keydir\" => \"/etc/ech\" )",
            &["T/main.conf:1: ssl.ech-opts is not implemented by lightd; without it, hosts meant to be reached only through Encrypted Client Hello would be served with their names in the clear"],
        ),
        // A misspelled mod_openssl key is refused, in either build.
        #[cfg(feature = "tls")]
        (
            "ssl.pemfil = \"/a.pem\"",
            &["T/main.conf:1: ssl.pemfil (a name lightd does not know in mod_openssl's keys; did you mean 'ssl.pemfile'?) needs mod_openssl, which lightd does not implement; without it, the socket would speak plain, unencrypted HTTP"],
        ),
        #[cfg(not(feature = "tls"))]
        (
            "ssl.pemfil = \"/a.pem\"",
            &["T/main.conf:1: ssl.pemfil (a name lightd does not know in mod_openssl's keys; did you mean 'ssl.pemfile'?) needs mod_openssl, which lightd does not implement; without it, the socket would speak plain, unencrypted HTTP (this build of lightd has no TLS: build it with `--features tls`)"],
        ),
        // Every place: a key in two blocks is two refusals.
        (
            "$HTTP[\"host\"] == \"a\" {\n  sockproxy.server = ( ( \"host\" => \"127.0.0.1\" ) )\n}\nelse {\n  sockproxy.server = ()\n}",
            &[
                "T/main.conf:2: sockproxy.server needs mod_sockproxy, which lightd does not implement; without it, requests meant for the proxied service would be answered from the document root instead",
                "T/main.conf:5: sockproxy.server needs mod_sockproxy, which lightd does not implement; without it, requests meant for the proxied service would be answered from the document root instead",
            ],
        ),
        // A protective module is refused by itself, at its own line.
        (
            "server.modules = (\n  \"mod_indexfile\",\n  \"mod_evasive\",\n  \"mod_deflate\",\n)",
            &["T/main.conf:3: server.modules: mod_evasive needs mod_evasive, which lightd does not implement; without it, its per-client connection limits would not be enforced"],
        ),
        // Harmless keys and modules are warnings, not refusals.
        ("deflate.mimetypes = ()\nserver.modules = ( \"mod_status\" )\ndebug.log-request-handling = \"enable\"", &[]),
    ];
    for (src, want) in cases {
        assert_eq!(refused(src), *want, "{src:?}");
    }
}

/// The refusal is one error naming everything, and there is nothing that turns it off.
#[test]
fn refusal_error_names_every_place() {
    let cfg = ok("sockproxy.server = ()\nserver.modules = ( \"mod_sockproxy\" )\n");
    let e = cfg.refusal().expect_err("refused").to_string();
    assert!(e.starts_with("refusing to start: "), "{e}");
    assert!(
        e.contains("main.conf:1: sockproxy.server needs mod_sockproxy"),
        "{e}"
    );
    assert!(
        e.contains("main.conf:2: server.modules: mod_sockproxy needs mod_sockproxy"),
        "{e}"
    );
    assert!(ok("server.port = 80\n").refusal().is_ok());
}

// ---------------------------------------------------------------------------------------------
// Whole configurations

/// The shape of Debian's /etc/lighttpd/lighttpd.conf (bookworm), with the two include_shell
/// scripts replaced by commands that print what they print.
const DEBIAN: &str = r#"server.modules = (
	"mod_indexfile",
	"mod_access",
	"mod_alias",
 	"mod_redirect",
)

server.document-root        = "/var/www/html"
server.upload-dirs          = ( "/var/cache/lighttpd/uploads" )
server.errorlog             = "/var/log/lighttpd/error.log"
server.pid-file             = "/run/lighttpd.pid"
server.username             = "www-data"
server.groupname            = "www-data"
server.port                 = 80

# features
#https://redmine.lighttpd.net/projects/lighttpd/wiki/Server_feature-flagsDetails
server.feature-flags       += ("server.h2proto" => "enable")
server.feature-flags       += ("server.h2c"     => "enable")
server.feature-flags       += ("server.graceful-shutdown-timeout" => 5)
#server.feature-flags       += ("server.graceful-restart-bg" => "enable")

# strict parsing and normalization of URL for consistency and security
server.http-parseopts = (
  "header-strict"           => "enable",# default
  "host-strict"             => "enable",# default
  "host-normalize"          => "enable",# default
  "url-normalize-unreserved"=> "enable",# recommended highly
  "url-normalize-required"  => "enable",# recommended
  "url-ctrls-reject"        => "enable",# recommended
  "url-path-2f-decode"      => "enable",# recommended highly (unless breaks app)
 #"url-path-2f-reject"      => "enable",
  "url-path-dotseg-remove"  => "enable",# recommended highly (unless breaks app)
 #"url-path-dotseg-reject"  => "enable",
 #"url-query-20-plus"       => "enable",# consistency in query string
)

index-file.names            = ( "index.php", "index.html" )
url.access-deny             = ( "~", ".inc" )
static-file.exclude-extensions = ( ".php", ".pl", ".fcgi" )

# default listening port for IPv6 falls back to the IPv4 port
include_shell "echo '$SERVER[\"socket\"] == \"[::]:'" + server.port + "'\" { }'"
include_shell "printf 'mimetype.assign = (\n  \".html\" => \"text/html\",\n  \".css\" => \"text/css\",\n)\n'"
include "conf-enabled/*.conf"

#server.compat-module-load   = "disable"
server.modules += (
	"mod_dirlisting",
	"mod_staticfile",
)
"#;

// Debian's config loads mod_access, mod_alias, mod_redirect and mod_accesslog.
#[cfg(all(
    feature = "access",
    feature = "alias",
    feature = "redirect",
    feature = "accesslog"
))]
#[test]
fn debian_default_config() {
    let (dir, res) = load_files(&[
        ("lighttpd.conf", DEBIAN),
        ("conf-enabled/10-accesslog.conf", "server.modules += ( \"mod_accesslog\" )\naccesslog.filename = \"/var/log/lighttpd/access.log\"\n"),
        ("conf-available/10-userdir.conf", "server.modules += ( \"mod_userdir\" )\n"),
    ]);
    let cfg = res.unwrap_or_else(|e| panic!("{}", norm(&dir, &e.to_string())));
    let listen: Vec<String> = cfg.listen.iter().map(|l| l.addr.to_string()).collect();
    assert_eq!(listen, vec!["0.0.0.0:80", "[::]:80"]);
    assert_eq!(
        cfg.modules,
        vec![
            "mod_indexfile",
            "mod_access",
            "mod_alias",
            "mod_redirect",
            "mod_accesslog",
            "mod_dirlisting",
            "mod_staticfile"
        ]
    );
    assert_eq!(cfg.graceful_shutdown_timeout, Duration::from_secs(5));
    assert_eq!(cfg.base.document_root, Some(PathBuf::from("/var/www/html")));
    assert_eq!(cfg.base.index_files, vec!["index.php", "index.html"]);
    assert_eq!(mime_lookup(&cfg.base.mime, "a.css"), Some("text/css"));
    #[cfg(feature = "accesslog")]
    assert_eq!(
        cfg.base.accesslog.filename.as_deref(),
        Some("/var/log/lighttpd/access.log")
    );
    let warnings: Vec<String> = cfg.warnings.iter().map(|w| norm(&dir, w)).collect();
    // A build with backends spools request bodies, so it reads server.upload-dirs.
    let mut want = vec![
        "T/lighttpd.conf:9: lighttpd key 'server.upload-dirs' is not implemented by lightd and is ignored",
        "T/lighttpd.conf:24: lighttpd key 'server.http-parseopts' is not implemented by lightd and is ignored",
    ];
    if cfg!(feature = "backend") {
        want.remove(0);
    }
    assert_eq!(warnings, want);
    #[cfg(feature = "backend")]
    assert_eq!(
        cfg.upload_dirs,
        vec![PathBuf::from("/var/cache/lighttpd/uploads")]
    );
    // Debian's stock config denies "~" and ".inc" files, and loads access, alias and redirect,
    // which lightd has: it starts, and denies them.
    assert!(cfg.refused.is_empty(), "{:?}", cfg.refused);
    assert!(cfg.refusal().is_ok());
    assert_eq!(cfg.base.access_deny, vec!["~", ".inc"]);
}

#[test]
fn shipped_example_config_loads_cleanly() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/lightd.conf");
    let cfg = load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert!(
        cfg.warnings
            .iter()
            .all(|w| !cfg!(feature = "accesslog") && w.contains("accesslog")),
        "{:?}",
        cfg.warnings
    );
    assert_eq!(cfg.listen[0].addr.to_string(), "127.0.0.1:8080");
    let root = cfg.base.document_root.clone().unwrap_or_default();
    assert!(root.ends_with("conf/site"), "{}", root.display());
    assert_eq!(
        mime_lookup(&cfg.base.mime, "index.html"),
        Some("text/html; charset=utf-8")
    );
    let req = Req::new(&[(CondField::Url, "/files/")]);
    assert!(cfg.merged(&cfg.matches(&req)).dir_listing);
    assert!(
        !cfg.merged(&cfg.matches(&Req::new(&[(CondField::Url, "/")])))
            .dir_listing
    );
    // The sample site is there, so -tt passes when run from the repository root.
    let mut here = cfg.clone();
    here.base.document_root = Some(Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/site"));
    check_loadable(&here).unwrap_or_else(|e| panic!("{e}"));
}

#[test]
fn printed_config_reads_back_the_same() {
    let (dir, res) = load_files(&[
        ("lighttpd.conf", DEBIAN),
        ("conf-enabled/x.conf", "$HTTP[\"host\"] =~ \"^(www\\.)?a\\\"b$\" {\n  server.tag = \"q\\\"uote\"\n  $HTTP[\"url\"] =^ \"/x\" { accesslog.filename = \"\" } else { mimetype.assign = ( \".x\" => \"a/b\" ) }\n} else $REQUEST_HEADER[\"X-A\"] != \"1\" {\n} else {\n  dir-listing.activate = \"enable\"\n}\n"),
    ]);
    let cfg = res.unwrap_or_else(|e| panic!("{}", norm(&dir, &e.to_string())));
    let printed = cfg.to_string();
    let again_path = write(&dir, "printed.conf", &printed);
    let again = load(&again_path).unwrap_or_else(|e| panic!("{e}\n{printed}"));
    // Only the module warnings repeat: everything else printed is a key lightd implements.
    assert!(
        again.warnings.iter().all(|w| w.contains(": module '")),
        "{:?}",
        again.warnings
    );
    let reprinted = again.to_string();
    // Ignored keys are printed as comments, so they do not come back.
    let strip = |s: &str| {
        s.lines()
            .skip(1)
            .filter(|l| !l.trim_start().starts_with("# ignored") && !l.is_empty())
            .collect::<Vec<_>>()
            .join("\n")
    };
    assert_eq!(strip(&printed), strip(&reprinted));
    let upload = printed
        .lines()
        .find(|l| l.contains("server.upload-dirs"))
        .map(|l| norm(&dir, l));
    // Read by a build with backends, ignored by one without.
    assert_eq!(
        upload.as_deref(),
        Some(if cfg!(feature = "backend") {
            "server.upload-dirs = ( \"/var/cache/lighttpd/uploads\" )"
        } else {
            "# ignored (not implemented by lightd), T/lighttpd.conf:9: server.upload-dirs = ( \"/var/cache/lighttpd/uploads\" )"
        })
    );
    for needle in [
        "server.port = 80\n",
        "server.graceful-shutdown-timeout = 5\n",
        "$SERVER[\"socket\"] == \"[::]:80\" {\n}\n",
        "} else $REQUEST_HEADER[\"X-A\"] != \"1\" {\n} else {\n    dir-listing.activate = \"enable\"\n}",
        "    server.tag = \"q\\\"uote\"\n",
        #[cfg(feature = "accesslog")]
        "        accesslog.filename = \"\"\n",
    ] {
        assert!(printed.contains(needle), "{needle:?} not in:\n{printed}");
    }
}

// ---------------------------------------------------------------------------------------------
// -tt

#[test]
fn check_loadable_table() {
    let dir = tmpdir();
    let root = dir.join("root");
    std::fs::create_dir_all(&root).unwrap_or_default();
    write(&dir, "file", "");
    let r = root.display().to_string();
    let f = dir.join("file").display().to_string();
    let cases: Vec<(String, Result<(), String>)> = vec![
        (format!("server.document-root = \"{r}\""), Ok(())),
        (
            format!("server.document-root = \"{r}\"\nserver.username = \"root\"\nserver.groupname = \"root\"\nserver.errorlog = \"{r}/e.log\"\nserver.pid-file = \"p.pid\"\naccesslog.filename = \"{r}/a.log\""),
            Ok(()),
        ),
        ("server.port = 1".to_string(), Err("T/main.conf: server.document-root is not set".to_string())),
        (
            format!("\nserver.document-root = \"{r}/nope\""),
            Err("T/main.conf:2: server.document-root \"T/root/nope\": No such file or directory (os error 2)".to_string()),
        ),
        (format!("server.document-root = \"{f}\""), Err("T/main.conf:1: server.document-root \"T/file\" is not a directory".to_string())),
        (
            format!("server.document-root = \"{r}\"\n$HTTP[\"host\"] == \"a\" {{\n  server.tag = \"x\"\n  server.document-root = \"{r}/gone\"\n}}"),
            Err("T/main.conf:4: server.document-root \"T/root/gone\": No such file or directory (os error 2)".to_string()),
        ),
        (
            format!("server.document-root = \"{r}\"\nserver.username = \"no-such-user-lightd\""),
            Err("T/main.conf:2: server.username: no such user \"no-such-user-lightd\"".to_string()),
        ),
        (
            format!("server.document-root = \"{r}\"\nserver.groupname = \"no-such-group-lightd\""),
            Err("T/main.conf:2: server.groupname: no such group \"no-such-group-lightd\"".to_string()),
        ),
        (
            format!("server.document-root = \"{r}\"\nserver.errorlog = \"{r}/no/e.log\""),
            Err("T/main.conf:2: server.errorlog \"T/root/no/e.log\": directory \"T/root/no\" does not exist".to_string()),
        ),
        (
            format!("server.document-root = \"{r}\"\nserver.pid-file = \"/nonexistent-dir/p.pid\""),
            Err("T/main.conf:2: server.pid-file \"/nonexistent-dir/p.pid\": directory \"/nonexistent-dir\" does not exist".to_string()),
        ),
        #[cfg(feature = "accesslog")]
        (
            format!("server.document-root = \"{r}\"\n$HTTP[\"url\"] =^ \"/a\" {{\n  accesslog.filename = \"{r}/x/a.log\"\n}}"),
            Err("T/main.conf:3: accesslog.filename \"T/root/x/a.log\": directory \"T/root/x\" does not exist".to_string()),
        ),
    ];
    for (src, want) in cases {
        let main = write(&dir, "main.conf", &src);
        let cfg = load(&main).unwrap_or_else(|e| panic!("{src:?}: {e}"));
        let got = check_loadable(&cfg).map_err(|e| norm(&dir, &e.to_string()));
        assert_eq!(got, want, "{src:?}");
    }
}

/// mod_dirlisting's options: compiled in, they load into the listing settings (a bad exclude
/// regex names its line); left out, dir-listing.exclude is refused since the listing would
/// show what it hides.
#[test]
fn dir_listing_keys() {
    #[cfg(feature = "dirlisting")]
    {
        let c = ok("dir-listing.exclude = ( \"^secret\", \"~$\" )\n\
                    dir-listing.hide-dotfiles = \"disable\"\n\
                    dir-listing.show-readme = \"enable\"\n\
                    dir-listing.show-header = \"HEAD.txt\"\n\
                    dir-listing.encoding = \"utf-8\"\n\
                    dir-listing.sort = \"disable\"\n\
                    $HTTP[\"url\"] =^ \"/x/\" { dir-listing.external-css = \"/s.css\" }");
        let l = &c.base.listing;
        assert_eq!(l.exclude.len(), 2);
        assert!(!l.hide_dotfiles && !l.sort);
        assert_eq!(l.show_readme.as_deref(), Some("README.txt"));
        assert_eq!(l.show_header.as_deref(), Some("HEAD.txt"));
        assert_eq!(l.encoding.as_deref(), Some("utf-8"));
        assert_eq!(l.external_css, None);
        assert!(c.refused.is_empty(), "{:?}", c.refused);
        assert!(fails("\n\ndir-listing.exclude = ( \"(open\" )")
            .starts_with("T/main.conf:3: dir-listing.exclude: bad regex"));
    }
    #[cfg(not(feature = "dirlisting"))]
    assert_eq!(
        refused("dir-listing.exclude = ( \"^secret\" )"),
        ["T/main.conf:1: dir-listing.exclude needs mod_dirlisting, which lightd does not implement; without it, directory listings would show the names it hides"]
    );
}

/// mod_status's URLs apply only with mod_status loaded, as in lighttpd (a harmless module:
/// without it they are ignored with a warning).
#[test]
fn status_keys() {
    let src = "status.status-url = \"/server-status\"";
    #[cfg(feature = "status")]
    {
        assert_eq!(
            warnings(src),
            ["T/main.conf:1: status.status-url is ignored: mod_status is not in server.modules"]
        );
        let c = ok(&format!(
            "server.modules = ( \"mod_status\" )\n{src}\nstatus.enable-sort = \"disable\""
        ));
        assert_eq!(c.base.status.status_url.as_deref(), Some("/server-status"));
        assert!(!c.base.status.enable_sort);
        assert!(c.warnings.is_empty(), "{:?}", c.warnings);
        assert!(
            fails("server.modules = ( \"mod_status\" )\nstatus.config-url = \"cfg\"")
                .starts_with("T/main.conf:2: status.config-url: expected a URL path")
        );
    }
    #[cfg(not(feature = "status"))]
    assert_eq!(
        warnings(src),
        ["T/main.conf:1: lighttpd key 'status.status-url' (mod_status) is not implemented by lightd and is ignored"]
    );
}

// ---------------------------------------------------------------------------------------------
// The backends: mod_cgi, the gateways, and the request/response body keys

/// `src` with the backend modules this build has loaded, on its first line (so line numbers
/// stay as written): their keys then load without the "not in server.modules" warning.
#[cfg(any(feature = "cgi", feature = "fastcgi"))]
fn with_mods(src: &str) -> String {
    let mods: Vec<String> = [
        ("mod_cgi", cfg!(feature = "cgi")),
        ("mod_fastcgi", cfg!(feature = "fastcgi")),
        ("mod_scgi", cfg!(feature = "scgi")),
        ("mod_proxy", cfg!(feature = "proxy")),
        ("mod_wstunnel", cfg!(feature = "wstunnel")),
    ]
    .iter()
    .filter(|(_, built)| *built)
    .map(|(m, _)| format!("\"{m}\""))
    .collect();
    format!("server.modules = ( {} ); {src}", mods.join(", "))
}

/// Every conditional branch of a config, depth-first in config order.
#[cfg(feature = "fastcgi")]
fn branches(cfg: &Config) -> Vec<&CondBranch> {
    fn walk<'a>(chains: &'a [CondChain], out: &mut Vec<&'a CondBranch>) {
        for b in chains.iter().flat_map(|c| &c.branches) {
            out.push(b);
            walk(&b.children, out);
        }
    }
    let mut out = Vec::new();
    walk(&cfg.conds, &mut out);
    out
}

/// The settings a request in branch `id` (and its parents) runs with.
#[cfg(feature = "backend")]
fn merged_for(cfg: &Config, ids: &[usize]) -> ReqConf {
    let mut set = MatchSet::default();
    for id in ids {
        set.set(*id);
    }
    cfg.merged(&set)
}

#[cfg(feature = "backend")]
#[test]
fn backend_defaults() {
    let cfg = ok("");
    // lighttpd's default spool directory (chunk.c): $TMPDIR, else /var/tmp.
    let tmp = std::env::var("TMPDIR")
        .ok()
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "/var/tmp".to_string());
    assert_eq!(cfg.upload_dirs, vec![PathBuf::from(tmp)]);
    assert_eq!(cfg.upload_temp_file_size, 1 << 20);
    assert_eq!((cfg.stream_request_body, cfg.stream_response_body), (0, 0));
    assert_eq!(
        (cfg.base.stream_request_body, cfg.base.stream_response_body),
        (0, 0)
    );
    assert!(cfg.gw_hosts.is_empty());
    #[cfg(feature = "cgi")]
    {
        let c = &cfg.base.cgi;
        assert!(c.assign.is_empty() && c.x_sendfile_docroot.is_empty());
        assert!(!c.execute_x_only && !c.x_sendfile && !c.local_redir && !c.upgrade);
        assert_eq!(c.limits, gateway::CgiLimits::default());
    }
    #[cfg(feature = "proxy")]
    {
        let p = &cfg.base.proxy;
        assert!(p.exts.is_empty() && p.map_extensions.is_empty());
        assert_eq!((p.balance, p.debug), (gateway::Balance::Fair, 0));
        assert_eq!(p.proxy_forwarded, gateway::Forwarded::default());
        assert!(!p.proxy_header.upgrade && p.proxy_header.map_urlpath.is_empty());
        assert!(!p.replace_http_host);
    }
    #[cfg(feature = "wstunnel")]
    {
        let w = &cfg.base.wstunnel;
        assert!(!w.ws_binary && w.ws_origins.is_empty() && w.ws_ping_interval == 0);
    }
}

#[cfg(feature = "backend")]
#[test]
fn body_keys() {
    let cfg = ok("server.upload-dirs = ( \"/srv/up\", \"/var/tmp\" )\n\
                  server.upload-temp-file-size = 65536\n\
                  server.stream-request-body = 1\n\
                  server.stream-response-body = 2\n\
                  $HTTP[\"url\"] =^ \"/big/\" {\n  server.stream-request-body = 2\n  server.stream-response-body = \"3\"\n}");
    assert_eq!(
        cfg.upload_dirs,
        vec![PathBuf::from("/srv/up"), PathBuf::from("/var/tmp")]
    );
    assert_eq!(cfg.upload_temp_file_size, 65536);
    assert_eq!((cfg.stream_request_body, cfg.stream_response_body), (1, 2));
    // lighttpd allows them in conditionals; 3 (both bits) is "minimal buffering".
    let m = merged_for(&cfg, &[0]);
    assert_eq!((m.stream_request_body, m.stream_response_body), (2, 2));
    assert_eq!(
        ok("server.upload-temp-file-size = 0").upload_temp_file_size,
        1 << 20
    );
    assert_eq!(
        ok("server.upload-dirs = ()").upload_dirs,
        ok("").upload_dirs
    );
    assert_eq!(
        warnings("server.stream-request-body = 5"),
        ["T/main.conf:1: server.stream-request-body: only its two low bits mean anything (1: stream, 2: stream with minimal buffering); 5 is read as 1"]
    );
    for (src, want) in [
        ("server.upload-dirs = \"/tmp\"", "T/main.conf:1: server.upload-dirs: expected a list of strings such as ( \"a\", \"b\" ), got the string \"/tmp\""),
        ("server.upload-dirs = ( \"/tmp\", \"\" )", "T/main.conf:1: server.upload-dirs: a directory must not be empty"),
        ("\nserver.upload-temp-file-size = -1", "T/main.conf:2: server.upload-temp-file-size: expected a value from 0 to 4294967295, got -1"),
        ("server.stream-request-body = \"on\"", "T/main.conf:1: server.stream-request-body: expected an integer, got the string \"on\""),
        ("server.stream-response-body = 65536", "T/main.conf:1: server.stream-response-body: expected a value from 0 to 65535, got 65536"),
        ("$HTTP[\"url\"] =^ \"/a\" {\n  server.upload-dirs = ( \"/tmp\" )\n}", "T/main.conf:2: server.upload-dirs cannot be set inside a conditional"),
    ] {
        assert_eq!(fails(src), want, "{src:?}");
    }
}

#[cfg(feature = "cgi")]
#[test]
fn cgi_keys() {
    let cfg = ok("server.modules = ( \"mod_cgi\" )\n\
                  cgi.assign = ( \".pl\" => \"/usr/bin/perl\", \".cgi\" => \"\" )\n\
                  cgi.execute-x-only = \"enable\"\n\
                  cgi.x-sendfile = \"enable\"\n\
                  cgi.x-sendfile-docroot = ( \"//srv/./a/../b\", \"/tmp/\", \"/../x\" )\n\
                  cgi.local-redir = \"enable\"\n\
                  cgi.upgrade = 1\n\
                  cgi.limits = ( \"read-timeout\" => 30, \"Write-Timeout\" => \"7\", \"tcp-fin-propagate\" => \"SIGHUP\" )\n\
                  $HTTP[\"host\"] == \"b\" {\n  cgi.assign = ( \".sh\" => \"/bin/sh\" )\n  cgi.local-redir = \"disable\"\n}");
    assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
    let c = &cfg.base.cgi;
    assert_eq!(
        &c.assign[..],
        &[
            (".pl".to_string(), Some(PathBuf::from("/usr/bin/perl"))),
            (".cgi".to_string(), None)
        ]
    );
    assert!(c.execute_x_only && c.x_sendfile && c.local_redir && c.upgrade);
    assert_eq!(
        &c.x_sendfile_docroot[..],
        &[
            PathBuf::from("/srv/b/"),
            PathBuf::from("/tmp/"),
            PathBuf::from("/x/")
        ]
    );
    assert_eq!(c.limits.read_timeout, Duration::from_secs(30));
    assert_eq!(c.limits.write_timeout, Duration::from_secs(7));
    assert_eq!(c.limits.fin_signal, libc::SIGHUP);
    // A block's keys override the global ones one by one.
    let b = merged_for(&cfg, &[0]).cgi;
    assert_eq!(
        &b.assign[..],
        &[(".sh".to_string(), Some(PathBuf::from("/bin/sh")))]
    );
    assert!(!b.local_redir && b.x_sendfile && b.upgrade);

    // tcp-fin-propagate: a number, a signal name (any case, SIG optional), enable/disable.
    for (v, sig) in [
        ("\"TERM\"", libc::SIGTERM),
        ("\"sigkill\"", libc::SIGKILL),
        ("\"USR1\"", libc::SIGUSR1),
        ("2", libc::SIGINT),
        ("\"0\"", 0),
        ("\"enable\"", libc::SIGTERM),
        ("\"disable\"", 0),
    ] {
        let c = ok(&format!("cgi.limits = ( \"tcp-fin-propagate\" => {v} )"));
        assert_eq!(c.base.cgi.limits.fin_signal, sig, "{v}");
    }
    for (src, want) in [
        (
            "cgi.limits = ( \"tcp-fin-propagate\" => \"SIGBOGUS\" )",
            &["T/main.conf:1: cgi.limits: \"tcp-fin-propagate\": unknown signal \"SIGBOGUS\"; SIGTERM is sent, as lighttpd does"][..],
        ),
        (
            "\ncgi.limits = ( \"idle-timeout\" => 3 )",
            &["T/main.conf:2: cgi.limits: unrecognized cgi.limits param: \"idle-timeout\" (ignored; known: read-timeout, write-timeout, tcp-fin-propagate)"],
        ),
        (
            "cgi.debug = 1",
            &["T/main.conf:1: lighttpd key 'cgi.debug' (mod_cgi) is not implemented by lightd and is ignored"],
        ),
        // Without mod_cgi loaded, lighttpd would serve the scripts as files; lightd runs them.
        (
            "server.modules = ()\ncgi.assign = ( \".pl\" => \"/usr/bin/perl\" )",
            &["T/main.conf:2: cgi.assign is set but mod_cgi is not in server.modules; lighttpd would ignore it, lightd enforces it (add mod_cgi to server.modules)"],
        ),
    ] {
        let src = if src.starts_with("server.modules") {
            src.to_string()
        } else {
            with_mods(src)
        };
        assert_eq!(warnings(&src), want, "{src:?}");
    }
    assert_eq!(
        ok("cgi.limits = ( \"tcp-fin-propagate\" => \"x\" )")
            .base
            .cgi
            .limits
            .fin_signal,
        libc::SIGTERM
    );
    for (src, want) in [
        ("cgi.assign = ( \".pl\" )", "T/main.conf:1: cgi.assign: expected a map of strings such as ( \".html\" => \"text/html\" ), got an entry without a key (the string \".pl\")"),
        ("cgi.assign = \"/usr/bin/perl\"", "T/main.conf:1: cgi.assign: expected a map of strings such as ( \".html\" => \"text/html\" ), got the string \"/usr/bin/perl\""),
        ("\ncgi.execute-x-only = \"maybe\"", "T/main.conf:2: cgi.execute-x-only: expected \"enable\" or \"disable\", got the string \"maybe\""),
        ("cgi.x-sendfile = 2", "T/main.conf:1: cgi.x-sendfile: expected \"enable\" or \"disable\", got the integer 2"),
        ("cgi.local-redir = ( )", "T/main.conf:1: cgi.local-redir: expected \"enable\" or \"disable\", got an empty array"),
        ("cgi.upgrade = \"yes\"", "T/main.conf:1: cgi.upgrade: expected \"enable\" or \"disable\", got the string \"yes\""),
        ("cgi.x-sendfile-docroot = ( \"srv/files\" )", "T/main.conf:1: cgi.x-sendfile-docroot: paths must begin with '/'; invalid: \"srv/files\""),
        ("cgi.x-sendfile-docroot = \"/srv\"", "T/main.conf:1: cgi.x-sendfile-docroot: expected a list of strings such as ( \"a\", \"b\" ), got the string \"/srv\""),
        ("cgi.limits = \"30\"", "T/main.conf:1: cgi.limits: expected ( \"read-timeout\" => 30, \"write-timeout\" => 30, \"tcp-fin-propagate\" => \"SIGTERM\" ), got the string \"30\""),
        ("cgi.limits = ( 30 )", "T/main.conf:1: cgi.limits: expected ( \"read-timeout\" => 30, \"write-timeout\" => 30, \"tcp-fin-propagate\" => \"SIGTERM\" ): an entry has no key (the integer 30)"),
        ("cgi.limits = ( \"read-timeout\" => -1 )", "T/main.conf:1: cgi.limits: \"read-timeout\": expected an integer from 0 to 2147483647, got the integer -1"),
        ("cgi.limits = ( \"write-timeout\" => \"soon\" )", "T/main.conf:1: cgi.limits: \"write-timeout\": expected an integer from 0 to 2147483647, got the string \"soon\""),
        ("cgi.limits = ( \"tcp-fin-propagate\" => 99 )", "T/main.conf:1: cgi.limits: \"tcp-fin-propagate\": expected a signal number from 0 to 64 or a signal name, got 99"),
        ("cgi.limits = ( \"tcp-fin-propagate\" => ( 1 ) )", "T/main.conf:1: cgi.limits: \"tcp-fin-propagate\": expected a signal number or name, got an array"),
    ] {
        assert_eq!(fails(src), want, "{src:?}");
    }
}

/// A host of `cfg.base.<module>.exts[ext]`, by position.
#[cfg(any(
    feature = "fastcgi",
    feature = "scgi",
    feature = "proxy",
    feature = "wstunnel"
))]
fn host_of(exts: &[gateway::GwExt], ext: &str, n: usize) -> std::rc::Rc<gateway::GwHost> {
    let e = exts
        .iter()
        .find(|e| e.key == ext)
        .unwrap_or_else(|| panic!("no {ext:?} in {exts:?}"));
    e.hosts
        .get(n)
        .cloned()
        .unwrap_or_else(|| panic!("{ext}: no host {n}"))
}

/// Every host of every block points at a `gw_hosts` entry with its address and program,
/// and each entry's index is its position.
#[cfg(feature = "fastcgi")]
fn assert_indexed(cfg: &Config) {
    for (i, h) in cfg.gw_hosts.iter().enumerate() {
        assert_eq!(h.index, i, "{h:?}");
    }
    let mut all: Vec<&ReqSetting> = cfg.base_settings.iter().collect();
    for b in branches(cfg) {
        all.extend(&b.settings);
    }
    for s in all {
        if let Val::GwServer(_, exts) = &s.val {
            for h in exts.iter().flat_map(|e| &e.hosts) {
                let pool = cfg
                    .gw_hosts
                    .get(h.index)
                    .unwrap_or_else(|| panic!("{h:?}: index out of range"));
                assert_eq!((&pool.addr, &pool.bin_path), (&h.addr, &h.bin_path));
            }
        }
    }
}

#[cfg(feature = "fastcgi")]
#[test]
fn gateway_host_forms_and_defaults() {
    use gateway::{Addr, Mode};
    let cfg = ok("server.modules = ( \"mod_fastcgi\" )\n\
                  fastcgi.server = (\n\
                    \".php\" => ( (\n\
                      \"socket\" => \"/run/php.sock\",\n\
                      \"bin-path\" => \"/usr/bin/php-cgi -c  /etc/php.ini\",\n\
                      \"max-procs\" => 2,\n\
                      \"min-procs\" => 3,\n\
                    ) ),\n\
                    \"/app\" => (\n\
                      \"grisu\" => ( \"host\" => \"10.0.0.1\", \"port\" => 9000 ),\n\
                      \"other\" => ( \"host\" => \"::1\", \"port\" => \"9001\", \"check-local\" => \"disable\" ),\n\
                    ),\n\
                    \"\" => ( ( \"host\" => \"/run/any.sock\" ), ( \"bin-path\" => \"/opt/app\", \"port\" => 7000 ) ),\n\
                  )\n");
    assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
    let exts = &cfg.base.fastcgi.exts;
    let keys: Vec<&str> = exts.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, [".php", "/app", ""]);

    // The unnamed form: id "", lighttpd's defaults.
    let php = host_of(exts, ".php", 0);
    assert_eq!(php.id, "");
    assert_eq!(php.addr, Addr::Unix(PathBuf::from("/run/php.sock")));
    // Split on each space, as lighttpd does (two spaces make an empty argument).
    assert_eq!(
        php.bin_path.as_deref(),
        Some(&["/usr/bin/php-cgi", "-c", "", "/etc/php.ini"].map(String::from)[..])
    );
    assert_eq!(php.program(), Some("/usr/bin/php-cgi"));
    // min-procs above max-procs is lowered to it.
    assert_eq!((php.min_procs, php.max_procs), (2, 2));
    assert_eq!(php.kill_signal, libc::SIGTERM);
    assert!(php.listen_backlog >= 1024);
    assert!(php.check_local && php.mode == Mode::Responder);
    assert_eq!(php.connect_timeout, Duration::from_secs(8));
    assert_eq!(
        (php.read_timeout, php.write_timeout),
        (Duration::ZERO, Duration::ZERO)
    );
    assert_eq!(php.disable_time, Duration::from_secs(1));
    assert_eq!(php.idle_timeout, Duration::from_secs(60));
    assert_eq!(php.max_load_per_proc, 1);
    assert!(php.bin_env.is_empty() && php.bin_copy_env.is_empty());
    assert!(!php.x_sendfile && !php.upgrade && !php.fix_root_scriptname);
    assert!(php.docroot.is_none() && php.strip_request_uri.is_none());

    // The named form, TCP; a host that is not spawned has one "process".
    let grisu = host_of(exts, "/app", 0);
    assert_eq!(grisu.id, "grisu");
    assert_eq!(grisu.addr, Addr::Tcp("10.0.0.1".to_string(), 9000));
    assert_eq!((grisu.min_procs, grisu.max_procs), (1, 1));
    assert!(grisu.bin_path.is_none() && grisu.check_local);
    let other = host_of(exts, "/app", 1);
    assert_eq!(other.addr, Addr::Tcp("::1".to_string(), 9001));
    assert_eq!(other.addr.to_string(), "[::1]:9001");
    assert!(!other.check_local);

    // A host that is a path is a unix socket; a spawned TCP host defaults to 127.0.0.1.
    let any = host_of(exts, "", 0);
    assert_eq!(any.addr, Addr::Unix(PathBuf::from("/run/any.sock")));
    let spawned = host_of(exts, "", 1);
    assert_eq!(spawned.addr, Addr::Tcp("127.0.0.1".to_string(), 7000));
    assert_eq!((spawned.min_procs, spawned.max_procs), (4, 4));

    assert_eq!(cfg.gw_hosts.len(), 5);
    assert_indexed(&cfg);
}

#[cfg(feature = "fastcgi")]
#[test]
fn gateway_every_host_option() {
    use gateway::{Addr, Mode};
    let cfg = ok(&with_mods(
        "fastcgi.server = ( \".fcgi\" => ( \"all\" => (\n\
                    \"host\" => \"127.0.0.2\",\n\
                    \"port\" => 65536,\n\
                    \"listen-backlog\" => 16,\n\
                    \"bin-path\" => \"/opt/app.fcgi\",\n\
                    \"kill-signal\" => 9,\n\
                    \"check-local\" => \"disabled\",\n\
                    \"mode\" => \"authorizer\",\n\
                    \"docroot\" => \"/srv/app\",\n\
                    \"min-procs\" => 1,\n\
                    \"max-procs\" => 1,\n\
                    \"max-load-per-proc\" => 5,\n\
                    \"idle-timeout\" => 10,\n\
                    \"disable-time\" => 3,\n\
                    \"bin-environment\" => ( \"PHP_FCGI_MAX_REQUESTS\" => \"500\" ),\n\
                    \"bin-copy-environment\" => ( \"PATH\", \"USER\" ),\n\
                    \"broken-scriptfilename\" => \"enable\",\n\
                    \"strip-request-uri\" => \"/app/\",\n\
                    \"fix-root-scriptname\" => \"true\",\n\
                    \"allow-x-send-file\" => \"enable\",\n\
                    \"x-sendfile-docroot\" => ( \"/srv/files/./a/..\" ),\n\
                    \"tcp-fin-propagate\" => 1,\n\
                    \"connect-timeout\" => 2,\n\
                    \"write-timeout\" => \"4\",\n\
                    \"read-timeout\" => 5,\n\
                    \"upgrade\" => \"enable\",\n\
                  ) ) )\n\
                  fastcgi.balance = \"round-robin\"\n\
                  fastcgi.debug = \"2\"\n\
                  fastcgi.map-extensions = ( \".php3\" => \".fcgi\" )\n",
    ));
    assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
    let h = host_of(&cfg.base.fastcgi.exts, ".fcgi", 0);
    // 65536 is taken as 65535, as lighttpd's T_CONFIG_SHORT does.
    assert_eq!(h.addr, Addr::Tcp("127.0.0.2".to_string(), 65535));
    assert_eq!(h.listen_backlog, 16);
    assert_eq!(h.kill_signal, 9);
    assert!(!h.check_local);
    assert_eq!(h.mode, Mode::Authorizer);
    assert_eq!(h.docroot, Some(PathBuf::from("/srv/app")));
    assert_eq!((h.min_procs, h.max_procs, h.max_load_per_proc), (1, 1, 5));
    assert_eq!(h.idle_timeout, Duration::from_secs(10));
    assert_eq!(h.disable_time, Duration::from_secs(3));
    assert_eq!(
        h.bin_env,
        vec![("PHP_FCGI_MAX_REQUESTS".to_string(), "500".to_string())]
    );
    assert_eq!(h.bin_copy_env, vec!["PATH", "USER"]);
    assert!(h.broken_scriptfilename && h.fix_root_scriptname && h.x_sendfile);
    // lighttpd drops the trailing slash (and simplifies the docroots, adding one).
    assert_eq!(h.strip_request_uri.as_deref(), Some("/app"));
    assert_eq!(h.x_sendfile_docroot, vec![PathBuf::from("/srv/files/")]);
    assert!(h.tcp_fin_propagate && h.upgrade);
    assert_eq!(h.connect_timeout, Duration::from_secs(2));
    assert_eq!(h.write_timeout, Duration::from_secs(4));
    assert_eq!(h.read_timeout, Duration::from_secs(5));
    let f = &cfg.base.fastcgi;
    assert_eq!(f.balance, gateway::Balance::RoundRobin);
    assert_eq!(f.debug, 2);
    assert_eq!(
        f.map_extensions,
        vec![(".php3".to_string(), ".fcgi".to_string())]
    );
    for (v, want) in [
        ("\"fair\"", gateway::Balance::Fair),
        ("\"least-connection\"", gateway::Balance::Fair),
        ("\"hash\"", gateway::Balance::Hash),
        ("\"sticky\"", gateway::Balance::Sticky),
        ("\"\"", gateway::Balance::Fair),
    ] {
        assert_eq!(
            ok(&format!("fastcgi.balance = {v}")).base.fastcgi.balance,
            want,
            "{v}"
        );
    }
}

#[cfg(feature = "fastcgi")]
#[test]
fn gateway_errors() {
    let x = "T/main.conf:1: fastcgi.server: ";
    for (server, want) in [
        ("\"x\"", "expected ( \".ext\" => ( \"name\" => ( \"host\" => \"127.0.0.1\", \"port\" => 9000 ) ), ... ), got the string \"x\""),
        ("( ( ( \"host\" => \"a\" ) ) )", "expected ( \".ext\" => ( \"name\" => ( \"host\" => \"127.0.0.1\", \"port\" => 9000 ) ), ... ): an entry has no extension or path prefix"),
        ("( \".php\" => \"127.0.0.1\" )", "expected ( \".ext\" => ( \"name\" => ( \"host\" => \"127.0.0.1\", \"port\" => 9000 ) ), ... ): got the string \"127.0.0.1\" for \".php\""),
        // The options written straight under the extension: a common mistake.
        ("( \".php\" => ( \"host\" => \"127.0.0.1\" ) )", "\".php\" => \"host\": expected the host's options in a list of their own, such as ( \".php\" => ( ( \"host\" => \"127.0.0.1\", \"port\" => 9000 ) ) ), got the string \"127.0.0.1\""),
        ("( \".php\" => ( ( \"127.0.0.1\" ) ) )", "\".php\" => host 1: an option has no name (the string \"127.0.0.1\"); expected ( \"host\" => \"127.0.0.1\", \"port\" => 9000, ... )"),
        ("( \".php\" => ( ( \"host\" => \"a\", \"port\" => 1, \"socket\" => \"/s\" ) ) )", "\".php\" => host 1: either \"host\"/\"port\" or \"socket\" may be set, not both"),
        ("( \".php\" => ( \"s\" => ( \"port\" => 9000, \"socket\" => \"/s\" ) ) )", "\".php\" => \"s\": either \"host\"/\"port\" or \"socket\" may be set, not both"),
        ("( \".php\" => ( ( \"port\" => 9000 ) ) )", "\".php\" => host 1: \"host\" or \"bin-path\" must be set"),
        ("( \".php\" => ( ( \"bin-path\" => \"/x\" ) ) )", "\".php\" => host 1: \"bin-path\" needs a \"socket\" or a \"port\" for the spawned processes to listen on"),
        ("( \".php\" => ( ( \"bin-path\" => \"/x\", \"host\" => \"127.0.0.1\" ) ) )", "\".php\" => host 1: \"bin-path\" needs a \"socket\" or a \"port\" for the spawned processes to listen on"),
        ("( \".php\" => ( ( \"bin-path\" => \"/x\", \"socket\" => \"/s\", \"max-procs\" => 0 ) ) )", "\".php\" => host 1: \"max-procs\" must be at least 1"),
        ("( \".php\" => ( ( \"bin-path\" => \"/x\", \"port\" => 65535, \"max-procs\" => 2 ) ) )", "\".php\" => host 1: \"port\" 65535 with \"max-procs\" 2 needs ports above 65535"),
        ("( \".php\" => ( ( \"host\" => \"a\", \"port\" => 70000 ) ) )", "\".php\" => host 1: \"port\": expected an integer from 0 to 65535, got the integer 70000"),
        ("( \".php\" => ( ( \"host\" => \"a\", \"port\" => \"http\" ) ) )", "\".php\" => host 1: \"port\": expected an integer from 0 to 65535, got the string \"http\""),
        ("( \".php\" => ( ( \"host\" => 5 ) ) )", "\".php\" => host 1: \"host\": expected a string, got the integer 5"),
        ("( \".php\" => ( ( \"host\" => \"a\", \"check-local\" => \"maybe\" ) ) )", "\".php\" => host 1: \"check-local\": expected \"enable\" or \"disable\", got the string \"maybe\""),
        ("( \".php\" => ( ( \"host\" => \"a\", \"kill-signal\" => 0 ) ) )", "\".php\" => host 1: \"kill-signal\": expected a signal number from 1 to 64, got 0"),
        ("( \".php\" => ( ( \"host\" => \"a\", \"connect-timeout\" => -1 ) ) )", "\".php\" => host 1: \"connect-timeout\": expected an integer from 0 to 2147483647, got the integer -1"),
        ("( \".php\" => ( ( \"host\" => \"a\", \"bin-environment\" => ( \"A=B\" => \"1\" ) ) ) )", "\".php\" => host 1: \"bin-environment\": \"A=B\" is not a valid environment variable"),
        ("( \".php\" => ( ( \"host\" => \"a\", \"bin-environment\" => ( \"A\" ) ) ) )", "\".php\" => host 1: \"bin-environment\": expected a map of strings such as ( \"a\" => \"b\" ), got an array"),
        ("( \".php\" => ( ( \"host\" => \"a\", \"bin-copy-environment\" => \"PATH\" ) ) )", "\".php\" => host 1: \"bin-copy-environment\": expected a list of strings such as ( \"a\", \"b\" ), got the string \"PATH\""),
        ("( \".php\" => ( ( \"host\" => \"a\", \"x-sendfile-docroot\" => ( \"files\" ) ) ) )", "\".php\" => host 1: \"x-sendfile-docroot\": paths must begin with '/'; invalid: \"files\""),
    ] {
        let src = format!("fastcgi.server = {server}");
        assert_eq!(fails(&src), format!("{x}{want}"), "{src}");
    }
    let long = format!("/{}", "s".repeat(105));
    assert_eq!(
        fails(&format!(
            "fastcgi.server = ( \".php\" => ( ( \"socket\" => \"{long}\" ) ) )"
        )),
        format!(
            "{x}\".php\" => host 1: the socket path is too long (at most 105 bytes): \"{long}\""
        )
    );
    // A spawned pool's "-<n>" counts.
    let edge = format!("/{}", "s".repeat(103));
    assert!(
        ok(&format!(
            "fastcgi.server = ( \".php\" => ( ( \"socket\" => \"{edge}\" ) ) )"
        ))
        .gw_hosts
        .len()
            == 1
    );
    assert!(fails(&format!(
        "fastcgi.server = ( \".php\" => ( ( \"socket\" => \"{edge}\", \"bin-path\" => \"/x\", \"max-procs\" => 10 ) ) )"
    ))
    .contains("the socket path is too long (at most 105 bytes, with the \"-<n>\" each spawned process adds)"));
    let name = "n".repeat(129);
    assert_eq!(
        fails(&format!(
            "fastcgi.server = ( \".php\" => ( \"{name}\" => ( \"host\" => \"a\" ) ) )"
        )),
        format!("{x}\".php\" => \"{name}\": a host name is at most 128 bytes")
    );
    for (src, want) in [
        ("\nfastcgi.debug = -1", "T/main.conf:2: fastcgi.debug: expected a value from 0 to 4294967295, got -1"),
        ("fastcgi.balance = 1", "T/main.conf:1: fastcgi.balance: expected a string, got the integer 1"),
        ("fastcgi.map-extensions = ( \".php3\" )", "T/main.conf:1: fastcgi.map-extensions: expected a map of strings such as ( \".html\" => \"text/html\" ), got an entry without a key (the string \".php3\")"),
        // The line of the assignment inside a block.
        ("$HTTP[\"host\"] == \"a\" {\n  fastcgi.server = ( \".php\" => ( ( \"port\" => 1 ) ) )\n}", "T/main.conf:2: fastcgi.server: \".php\" => host 1: \"host\" or \"bin-path\" must be set"),
    ] {
        assert_eq!(fails(src), want, "{src:?}");
    }
}

#[cfg(feature = "fastcgi")]
#[test]
fn gateway_warnings() {
    for (src, want) in [
        (
            "fastcgi.server = ( \".php\" => ( ( \"host\" => \"a\", \"bin_path\" => \"/x\", \"chek-local\" => \"disable\" ) ) )",
            &[
                "T/main.conf:1: fastcgi.server: \".php\" => host 1: unknown option \"bin_path\" is ignored; did you mean \"bin-path\" (with '-' instead of '_')?",
                "T/main.conf:1: fastcgi.server: \".php\" => host 1: unknown option \"chek-local\" is ignored; did you mean \"check-local\"?",
            ][..],
        ),
        (
            "fastcgi.server = ( \".php\" => ( \"x\" => ( \"host\" => \"a\", \"mode\" => \"filter\" ) ) )",
            &["T/main.conf:1: fastcgi.server: \".php\" => \"x\": unknown mode \"filter\" (ignored, mode set to responder, as lighttpd does)"],
        ),
        (
            "fastcgi.server = ( \".php\" => (), \".fcgi\" => ( ( \"host\" => \"a\" ) ) )",
            &["T/main.conf:1: fastcgi.server: \".php\" has no hosts and is ignored, as lighttpd does"],
        ),
        (
            "\nfastcgi.balance = \"random\"",
            &["T/main.conf:2: fastcgi.balance has to be one of: least-connection, round-robin, hash, sticky, but not: \"random\"; using least-connection, as lighttpd does"],
        ),
    ] {
        assert_eq!(warnings(&with_mods(src)), want, "{src:?}");
    }
    let c = ok("fastcgi.server = ( \".php\" => (), \".fcgi\" => ( ( \"host\" => \"a\", \"mode\" => \"x\" ) ) )");
    assert_eq!(c.base.fastcgi.exts.len(), 1);
    assert_eq!(
        host_of(&c.base.fastcgi.exts, ".fcgi", 0).mode,
        gateway::Mode::Responder
    );
    assert_eq!(
        ok("fastcgi.balance = \"random\"").base.fastcgi.balance,
        gateway::Balance::Fair
    );
}

/// Pools are per config: the same bin-path on the same address is one index wherever it is
/// written; hosts that only connect share one when their definitions are identical.
#[cfg(feature = "fastcgi")]
#[test]
fn gateway_hosts_share_indices_across_blocks() {
    use std::rc::Rc;
    let spawn = "\"socket\" => \"/run/app.sock\", \"bin-path\" => \"/opt/app\", \"max-procs\" => 2";
    let cfg = ok(&with_mods(&format!(
        "fastcgi.server = ( \".php\" => ( ( {spawn} ) ) )\n\
         $HTTP[\"host\"] == \"a\" {{\n\
           fastcgi.server = ( \".php\" => ( ( {spawn} ) ), \"/remote\" => ( ( \"host\" => \"10.0.0.9\", \"port\" => 9000 ) ) )\n\
         }}\n\
         else $HTTP[\"host\"] == \"b\" {{\n\
           fastcgi.server = ( \"/x\" => ( ( {spawn}, \"check-local\" => \"disable\", \"mode\" => \"authorizer\" ) ) )\n\
           $HTTP[\"url\"] =^ \"/y\" {{\n\
             fastcgi.server += ( \"/remote\" => ( ( \"host\" => \"10.0.0.9\", \"port\" => 9000 ) ) )\n\
           }}\n\
         }}\n\
         $HTTP[\"host\"] == \"c\" {{\n\
           fastcgi.server = ( \"/remote\" => ( ( \"host\" => \"10.0.0.9\", \"port\" => 9000, \"check-local\" => \"disable\" ) ) )\n\
         }}\n"
    )));
    assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
    assert_indexed(&cfg);
    // One pool, one remote host defined the same way twice, and one defined differently.
    assert_eq!(cfg.gw_hosts.len(), 3, "{:#?}", cfg.gw_hosts);
    let base = host_of(&cfg.base.fastcgi.exts, ".php", 0);
    let a = merged_for(&cfg, &[0]).fastcgi;
    let b = merged_for(&cfg, &[1]).fastcgi;
    let by = merged_for(&cfg, &[1, 2]).fastcgi;
    let c = merged_for(&cfg, &[3]).fastcgi;
    // Identical definitions are one value.
    assert!(Rc::ptr_eq(&base, &host_of(&a.exts, ".php", 0)));
    // Other per-request options, same pool.
    let bx = host_of(&b.exts, "/x", 0);
    assert!(!Rc::ptr_eq(&base, &bx));
    assert_eq!(bx.index, base.index);
    assert!(!bx.check_local && bx.mode == gateway::Mode::Authorizer);
    assert!(base.check_local && base.mode == gateway::Mode::Responder);
    // `+=` in a nested block appends to the enclosing block's list.
    let keys: Vec<&str> = by.exts.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(keys, ["/x", "/remote"]);
    let remote_a = host_of(&a.exts, "/remote", 0);
    assert!(Rc::ptr_eq(&remote_a, &host_of(&by.exts, "/remote", 0)));
    let remote_c = host_of(&c.exts, "/remote", 0);
    assert_ne!(remote_a.index, remote_c.index);
    assert!(Rc::ptr_eq(&cfg.gw_hosts[base.index], &base));

    // The same pool with other spawn options: the first definition's apply, as in lighttpd.
    let w = warnings(&with_mods(&format!(
        "fastcgi.server = ( \".php\" => ( ( {spawn} ) ) )\n\
         $HTTP[\"host\"] == \"a\" {{\n  fastcgi.server = ( \".php\" => ( ( \"socket\" => \"/run/app.sock\", \"bin-path\" => \"/opt/app\", \"max-procs\" => 8 ) ) )\n}}"
    )));
    assert_eq!(
        w,
        ["T/main.conf:3: fastcgi.server: unix:/run/app.sock shares the process pool that fastcgi.server (T/main.conf:1) spawns; the pool's options (bin-environment, min-procs, max-procs, ...) are those of that first definition, as in lighttpd"]
    );
    // One address, two programs: lighttpd's "duplicate unixsocket path".
    assert_eq!(
        fails(&format!(
            "fastcgi.server = ( \".php\" => ( ( {spawn} ) ) )\n\
             $HTTP[\"host\"] == \"a\" {{\n  fastcgi.server = ( \".php\" => ( ( \"socket\" => \"/run/app.sock\", \"bin-path\" => \"/opt/other\" ) ) )\n}}"
        )),
        "T/main.conf:3: fastcgi.server: unix:/run/app.sock is where fastcgi.server (T/main.conf:1) spawns \"/opt/app\"; another bin-path or protocol cannot use the same address (lighttpd: duplicate unixsocket path)"
    );
    // TCP pools too: the suite's FastCGI config spawns one responder from every block.
    let tcp = "\"host\" => \"127.0.0.1\", \"port\" => 10000, \"bin-path\" => \"/opt/resp\", \"max-procs\" => 1";
    let cfg = ok(&format!(
        "$HTTP[\"host\"] == \"auth\" {{\n  fastcgi.server = ( \"/\" => (\n    \"auth\" => ( {tcp}, \"mode\" => \"authorizer\" ),\n    \"resp\" => ( {tcp} ) ) )\n}}\n\
         else {{\n  fastcgi.server = ( \".php\" => ( ( {tcp}, \"check-local\" => \"disable\" ) ), \".fcgi\" => ( \"grisu\" => ( {tcp} ) ) )\n}}\n"
    ));
    assert_eq!(cfg.gw_hosts.len(), 1, "{:#?}", cfg.gw_hosts);
    assert_indexed(&cfg);
    let hosts: Vec<usize> = branches(&cfg)
        .iter()
        .flat_map(|b| &b.settings)
        .filter_map(|s| match &s.val {
            Val::GwServer(_, e) => Some(e.iter().flat_map(|e| &e.hosts).map(|h| h.index)),
            _ => None,
        })
        .flatten()
        .collect();
    assert_eq!(hosts, [0, 0, 0, 0]);
}

/// With worker processes, a pool does not grow by itself (lighttpd disables adaptive
/// spawning with server.max-worker).
#[cfg(feature = "fastcgi")]
#[test]
fn gateway_pools_with_workers() {
    let src = with_mods("server.max-worker = 2\nfastcgi.server = ( \".php\" => ( ( \"socket\" => \"/s\", \"bin-path\" => \"/x\", \"min-procs\" => 1, \"max-procs\" => 3 ) ) )");
    let (dir, res) = load_files(&[("main.conf", &src)]);
    let cfg = res.unwrap_or_else(|e| panic!("{e}"));
    let h = host_of(&cfg.base.fastcgi.exts, ".php", 0);
    assert_eq!((h.min_procs, h.max_procs), (3, 3));
    let w: Vec<String> = cfg.warnings.iter().map(|w| norm(&dir, w)).collect();
    assert_eq!(
        w,
        ["T/main.conf:2: fastcgi.server: unix:/s: adaptive backend spawning disabled (server.max-worker is 2): min-procs is max-procs, 3"]
    );
    let one = ok("server.max-worker = 1\nfastcgi.server = ( \".php\" => ( ( \"socket\" => \"/s\", \"bin-path\" => \"/x\", \"min-procs\" => 1, \"max-procs\" => 3 ) ) )");
    let h = host_of(&one.base.fastcgi.exts, ".php", 0);
    assert_eq!((h.min_procs, h.max_procs), (1, 3));
}

#[cfg(all(feature = "fastcgi", feature = "scgi"))]
#[test]
fn gateway_protocols_do_not_share_an_address() {
    assert_eq!(
        fails("fastcgi.server = ( \".php\" => ( ( \"socket\" => \"/s\", \"bin-path\" => \"/x\" ) ) )\nscgi.server = ( \".py\" => ( ( \"socket\" => \"/s\", \"bin-path\" => \"/x\" ) ) )"),
        "T/main.conf:2: scgi.server: unix:/s is where fastcgi.server (T/main.conf:1) spawns \"/x\"; another bin-path or protocol cannot use the same address (lighttpd: duplicate unixsocket path)"
    );
}

#[cfg(feature = "scgi")]
#[test]
fn scgi_keys() {
    let cfg = ok("scgi.protocol = \"scgi\"\n\
                  scgi.server = ( \".py\" => ( ( \"socket\" => \"/run/py.sock\", \"bin-path\" => \"/opt/app.py --workers 1\" ) ), \
                                  \"/one\" => ( ( \"port\" => 9100, \"bin-path\" => \"/opt/one\" ) ) )");
    // mod_scgi runs a command line through the shell, as lighttpd does.
    let py = host_of(&cfg.base.scgi.exts, ".py", 0);
    assert_eq!(
        py.bin_path.as_deref(),
        Some(&["/bin/sh", "-c", "exec /opt/app.py --workers 1"].map(String::from)[..])
    );
    assert_eq!(py.program(), Some("/opt/app.py"));
    let one = host_of(&cfg.base.scgi.exts, "/one", 0);
    assert_eq!(one.bin_path.as_deref(), Some(&["/opt/one".to_string()][..]));
    assert!(py.check_local);
    for (src, want) in [
        ("scgi.protocol = \"uwsgi\"", "T/main.conf:1: scgi.protocol: \"uwsgi\" is not supported by lightd (it has no uwsgi protocol); only \"scgi\" is"),
        ("scgi.protocol = \"http\"", "T/main.conf:1: scgi.protocol: expected \"scgi\" or \"uwsgi\", got \"http\""),
        ("scgi.server = ( \".py\" => ( ( \"host\" => \"a\", \"mode\" => \"authorizer\" ) ) )", "T/main.conf:1: scgi.server: \".py\" => host 1: \"mode\" = \"authorizer\" is only supported by mod_fastcgi in lightd"),
    ] {
        assert_eq!(fails(src), want, "{src:?}");
    }
}

#[cfg(feature = "proxy")]
#[test]
fn proxy_keys() {
    let cfg = ok("server.modules = ( \"mod_proxy\" )\n\
                  proxy.server = ( \"\" => ( \"grisu\" => ( \"host\" => \"127.0.0.1\", \"port\" => 8080 ) ) )\n\
                  proxy.balance = \"hash\"\n\
                  proxy.debug = 1\n\
                  proxy.forwarded = ( \"for\" => 1, \"proto\" => \"enable\", \"host\" => \"disable\", \"by\" => 0, \"remote_user\" => \"true\" )\n\
                  proxy.header = (\n\
                    \"map-host-request\" => ( \"-\" => \"backend.example\" ),\n\
                    \"map-host-response\" => ( \"backend.example\" => \"-\" ),\n\
                    \"map-urlpath\" => ( \"/a/b\" => \"/x\", \"/a\" => \"/y\" ),\n\
                    \"map-urlpath-resp-host-include\" => ( \"backend.example\" ),\n\
                    \"map-urlpath-resp-host-exclude\" => ( \"other.example\" ),\n\
                    \"upgrade\" => \"enable\",\n\
                    \"connect\" => \"enable\",\n\
                    \"https-remap\" => \"enable\",\n\
                    \"force-http10\" => \"disable\",\n\
                  )\n\
                  proxy.replace-http-host = \"enable\"\n\
                  $HTTP[\"url\"] =^ \"/ws\" {\n  proxy.header = ( \"upgrade\" => \"enable\" )\n}");
    assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
    let p = &cfg.base.proxy;
    let h = host_of(&p.exts, "", 0);
    // mod_proxy never looks for a local file.
    assert!(!h.check_local);
    assert_eq!(h.id, "grisu");
    assert_eq!(p.balance, gateway::Balance::Hash);
    assert_eq!(p.debug, 1);
    assert_eq!(
        p.proxy_forwarded,
        gateway::Forwarded {
            for_: true,
            proto: true,
            host: false,
            by: false,
            remote_user: true
        }
    );
    let hd = &p.proxy_header;
    let pair = |a: &str, b: &str| (a.to_string(), b.to_string());
    assert_eq!(hd.map_host_request, vec![pair("-", "backend.example")]);
    assert_eq!(hd.map_host_response, vec![pair("backend.example", "-")]);
    // Config order: lighttpd takes the first prefix that matches.
    assert_eq!(hd.map_urlpath, vec![pair("/a/b", "/x"), pair("/a", "/y")]);
    assert_eq!(hd.map_urlpath_resp_host_include, vec!["backend.example"]);
    assert_eq!(hd.map_urlpath_resp_host_exclude, vec!["other.example"]);
    assert!(hd.upgrade && hd.connect_method && hd.https_remap && !hd.force_http10);
    assert!(p.replace_http_host);
    // proxy.header is replaced as a whole by a block.
    let ws = merged_for(&cfg, &[0]).proxy;
    assert!(ws.proxy_header.upgrade && ws.proxy_header.map_urlpath.is_empty());
    assert!(!ws.proxy_header.connect_method);
    for (src, want) in [
        ("proxy.server = ( \"\" => ( ( \"host\" => \"a\", \"mode\" => \"authorizer\" ) ) )", "T/main.conf:1: proxy.server: must not define any hosts with attribute \"mode\" = \"authorizer\""),
        ("proxy.header = ( \"connect-method\" => \"enable\" )", "T/main.conf:1: proxy.header: unexpected key \"connect-method\""),
        ("proxy.header = ( \"upgrad\" => \"enable\" )", "T/main.conf:1: proxy.header: unexpected key \"upgrad\"; did you mean \"upgrade\"?"),
        ("proxy.header = ( \"upgrade\" => \"yes\" )", "T/main.conf:1: proxy.header: expected \"upgrade\" => \"enable\" or \"disable\", got the string \"yes\""),
        ("proxy.header = ( \"map-urlpath\" => \"/a\" )", "T/main.conf:1: proxy.header: expected ( \"map-urlpath\" => ( \"key\" => \"value\" ) ), got the string \"/a\""),
        ("proxy.header = ( \"map-urlpath-resp-host-include\" => ( \"a\" => \"b\" ) )", "T/main.conf:1: proxy.header: expected ( \"map-urlpath-resp-host-include\" => ( \"list\" ) ), got an array"),
        ("proxy.header = ( \"upgrade\" )", "T/main.conf:1: proxy.header: an entry has no key (the string \"upgrade\")"),
        ("proxy.header = \"upgrade\"", "T/main.conf:1: proxy.header: expected ( \"map-urlpath\" => ( \"/a\" => \"/b\" ), ... ), got the string \"upgrade\""),
        ("proxy.forwarded = ( \"client\" => 1 )", "T/main.conf:1: proxy.forwarded: keys must be one of: by, for, host, proto, remote_user, but not: \"client\""),
        ("proxy.forwarded = ( \"for\" => \"yes\" )", "T/main.conf:1: proxy.forwarded: values must be one of: 0, 1, enable, disable; error for key: for"),
        ("proxy.forwarded = \"for\"", "T/main.conf:1: proxy.forwarded: expected ( \"for\" => \"enable\", ... ), got the string \"for\""),
        ("proxy.replace-http-host = 3", "T/main.conf:1: proxy.replace-http-host: expected \"enable\" or \"disable\", got the integer 3"),
    ] {
        assert_eq!(fails(src), want, "{src:?}");
    }
}

#[cfg(feature = "wstunnel")]
#[test]
fn wstunnel_keys() {
    let cfg = ok(
        "wstunnel.server = ( \"/ws\" => ( ( \"host\" => \"127.0.0.1\", \"port\" => 8081 ) ) )\n\
                  wstunnel.frame-type = \"Binary\"\n\
                  wstunnel.origins = ( \"example.org\", \"https://a.example\" )\n\
                  wstunnel.ping-interval = 30\n\
                  wstunnel.balance = \"sticky\"\n",
    );
    let w = &cfg.base.wstunnel;
    assert!(!host_of(&w.exts, "/ws", 0).check_local);
    assert!(w.ws_binary);
    assert_eq!(w.ws_origins, vec!["example.org", "https://a.example"]);
    assert_eq!(w.ws_ping_interval, 30);
    assert_eq!(w.balance, gateway::Balance::Sticky);
    // Anything but "binary" is text, as in lighttpd.
    assert!(!ok("wstunnel.frame-type = \"bin\"").base.wstunnel.ws_binary);
    for (src, want) in [
        ("wstunnel.origins = ( \"example.org\", \"\" )", "T/main.conf:1: wstunnel.origins: unexpected empty string"),
        ("wstunnel.ping-interval = 70000", "T/main.conf:1: wstunnel.ping-interval: expected a value from 0 to 65535, got 70000"),
        ("wstunnel.frame-type = 1", "T/main.conf:1: wstunnel.frame-type: expected a string, got the integer 1"),
        ("wstunnel.server = ( \"/ws\" => ( ( \"host\" => \"a\", \"mode\" => \"authorizer\" ) ) )", "T/main.conf:1: wstunnel.server: must not define any hosts with attribute \"mode\" = \"authorizer\""),
    ] {
        assert_eq!(fails(src), want, "{src:?}");
    }
}

/// -tt (and start-up, which runs the same checks): a bin-path must be an executable file, and
/// until the request path runs a backend module (gateway::WIRED), a config that hands
/// requests to it is refused rather than answered from the document root.
#[cfg(all(feature = "cgi", feature = "fastcgi"))]
#[test]
fn check_loadable_backends() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tmpdir();
    let root = dir.join("root");
    std::fs::create_dir_all(&root).unwrap_or_default();
    let prog = write(&dir, "app.fcgi", "#!/bin/sh\n");
    let plain = write(&dir, "plain", "");
    std::fs::set_permissions(&prog, std::fs::Permissions::from_mode(0o755))
        .unwrap_or_else(|e| panic!("{e}"));
    let (r, p, f) = (
        root.display().to_string(),
        prog.display().to_string(),
        plain.display().to_string(),
    );
    let wired = |m: &str| gateway::WIRED.contains(&m);
    let cases: Vec<(String, Result<(), String>)> = vec![
        // Settings that hand nothing to a backend are fine.
        (
            format!("server.document-root = \"{r}\"\ncgi.assign = ()\ncgi.x-sendfile = \"enable\"\nfastcgi.server = ()"),
            Ok(()),
        ),
        (
            format!("server.document-root = \"{r}\"\nfastcgi.server = ( \".php\" => ( ( \"socket\" => \"{r}/s\", \"bin-path\" => \"{f} -x\" ) ) )"),
            Err("T/main.conf:2: fastcgi.server: invalid \"bin-path\" => \"T/plain -x\" (check that the file exists, is a regular file, and is executable by lightd)".to_string()),
        ),
        (
            format!("server.document-root = \"{r}\"\n$HTTP[\"host\"] == \"a\" {{\n  fastcgi.server = ( \".php\" => ( ( \"socket\" => \"{r}/s\", \"bin-path\" => \"{r}\" ) ) )\n}}"),
            Err("T/main.conf:3: fastcgi.server: invalid \"bin-path\" => \"T/root\" (check that the file exists, is a regular file, and is executable by lightd)".to_string()),
        ),
        (
            format!("server.document-root = \"{r}\"\nfastcgi.server = ( \".php\" => ( ( \"socket\" => \"{r}/s\", \"bin-path\" => \"{p}\" ) ) )"),
            if wired("mod_fastcgi") { Ok(()) } else {
                Err("T/main.conf:2: fastcgi.server: this build reads mod_fastcgi's settings but does not run its backends yet; refusing to start rather than answer these requests from the document root".to_string())
            },
        ),
        (
            format!("server.document-root = \"{r}\"\n$HTTP[\"url\"] =^ \"/cgi-bin/\" {{\n  cgi.assign = ( \"\" => \"\" )\n}}"),
            if wired("mod_cgi") { Ok(()) } else {
                Err("T/main.conf:3: cgi.assign: this build reads mod_cgi's settings but does not run its backends yet; refusing to start rather than answer these requests from the document root".to_string())
            },
        ),
    ];
    for (src, want) in cases {
        let main = write(&dir, "main.conf", &src);
        let cfg = load(&main).unwrap_or_else(|e| panic!("{src:?}: {e}"));
        // -t itself loads them.
        assert!(cfg.refusal().is_ok(), "{src:?}");
        let got = check_loadable(&cfg).map_err(|e| norm(&dir, &e.to_string()));
        assert_eq!(got, want, "{src:?}");
    }
}

/// `-p` prints the backends' settings as written (they read back the same), and the spool
/// settings in use.
#[cfg(all(feature = "fastcgi", feature = "proxy"))]
#[test]
fn printed_backend_config_reads_back() {
    let src = "server.upload-dirs = ( \"/srv/up\" )\n\
               fastcgi.server = ( \".php\" => ( \"php\" => ( \"socket\" => \"/run/php.sock\", \"bin-path\" => \"/usr/bin/php-cgi\" ) ) )\n\
               $HTTP[\"host\"] == \"a\" {\n  proxy.server = ( \"\" => ( ( \"host\" => \"10.0.0.1\", \"port\" => 80 ) ) )\n  proxy.header = ( \"upgrade\" => \"enable\" )\n}\n";
    let (dir, res) = load_files(&[("main.conf", src)]);
    let cfg = res.unwrap_or_else(|e| panic!("{e}"));
    let printed = cfg.to_string();
    for needle in [
        "server.upload-dirs = ( \"/srv/up\" )\n",
        "server.upload-temp-file-size = 1048576\n",
        "fastcgi.server = ( \".php\" => ( \"php\" => ( \"socket\" => \"/run/php.sock\", \"bin-path\" => \"/usr/bin/php-cgi\" ) ) )\n",
        "    proxy.header = ( \"upgrade\" => \"enable\" )\n",
    ] {
        assert!(printed.contains(needle), "{needle:?} not in:\n{printed}");
    }
    let again =
        load(&write(&dir, "printed.conf", &printed)).unwrap_or_else(|e| panic!("{e}\n{printed}"));
    assert_eq!(again.gw_hosts, cfg.gw_hosts);
    assert_eq!(again.upload_dirs, cfg.upload_dirs);
    assert_eq!(
        merged_for(&again, &[0]).proxy.exts,
        merged_for(&cfg, &[0]).proxy.exts
    );
}

/// server.force-lowercase-filenames is a per-request key (lighttpd.conf sets it in
/// `$HTTP["host"]` blocks), checked like any flag; without a global setting it follows the
/// document root's file system, which here (a directory that does not exist, and "/", whose
/// spelling has no case) means off.
#[test]
fn force_lowercase_filenames() {
    let cfg = ok(r#"
server.document-root = "/nonexistent-lightd-root"
$HTTP["host"] == "lc" {
    server.force-lowercase-filenames = "enable"
}
"#);
    assert!(!cfg.base.force_lowercase_filenames);
    let set = cfg.matches(&Req::new(&[(CondField::Host, "lc")]));
    assert!(cfg.merged(&set).force_lowercase_filenames);
    let set = cfg.matches(&Req::new(&[(CondField::Host, "other")]));
    assert!(!cfg.merged(&set).force_lowercase_filenames);

    let cfg = ok("server.document-root = \"/\"\nserver.force-lowercase-filenames = \"enable\"");
    assert!(cfg.base.force_lowercase_filenames);
    assert!(!super::validate::ignores_case(Path::new("/")));
    assert!(!super::validate::ignores_case(Path::new(
        "/nonexistent-lightd-root"
    )));
    assert_eq!(
        fails("server.force-lowercase-filenames = 2"),
        "T/main.conf:1: server.force-lowercase-filenames: expected \"enable\" or \"disable\", got the integer 2"
    );
    assert_eq!(
        super::keys::kind("server.force-lowercase-filenames"),
        super::keys::KeyKind::Request
    );
}

// ---------------------------------------------------------------------------------------------
// mod_deflate

#[cfg(feature = "deflate")]
#[test]
fn deflate_keys() {
    use super::deflate::{Allowed, DeflateConf};
    // Nothing set: lighttpd's defaults.
    let cfg = ok("server.modules = ( \"mod_deflate\" )");
    assert_eq!(*cfg.base.deflate, DeflateConf::default());
    assert!(cfg.base.deflate.mimetypes.is_empty());
    assert_eq!(cfg.base.deflate.max_compress_kb, 131_072);
    assert_eq!(cfg.base.deflate.min_compress_size, 256);
    assert_eq!(cfg.base.deflate.work_block_kb, 2048);
    assert_eq!(cfg.base.deflate.level, -1);

    let cfg = ok(r#"
server.modules = ( "mod_deflate" )
deflate.mimetypes = ( "text/*", "application/javascript", "image/svg+xml" )
deflate.allowed-encodings = ( "deflate", "x-gzip" )
deflate.max-compress-size = 2048
deflate.min-compress-size = "100"
deflate.compression-level = 9
deflate.output-buffer-size = 65536
deflate.work-block-size = 512
deflate.max-loadavg = "3.5"
deflate.cache-dir = "/var/cache/lightd/compress/"
$HTTP["url"] =~ "^/raw/" {
    deflate.mimetypes = ()
    deflate.compression-level = 1
}
"#);
    let d = &cfg.base.deflate;
    assert_eq!(d.mimetypes, ["text/", "text/javascript", "image/svg+xml"]);
    assert_eq!(d.allowed, [Allowed::Deflate, Allowed::Gzip]);
    assert!(d.sidecar.is_empty());
    assert_eq!(
        (d.max_compress_kb, d.min_compress_size, d.level),
        (2048, 100, 9)
    );
    assert_eq!((d.output_buffer_size, d.work_block_kb), (65535, 512));
    assert_eq!(d.max_loadavg, 3.5);
    assert_eq!(
        d.cache_dir.as_deref(),
        Some(Path::new("/var/cache/lightd/compress"))
    );
    // A block overrides only what it sets.
    let m = cfg.merged(&cfg.matches(&Req::new(&[(CondField::Url, "/raw/x")])));
    assert!(m.deflate.mimetypes.is_empty());
    assert_eq!(m.deflate.level, 1);
    assert_eq!(m.deflate.allowed, [Allowed::Deflate, Allowed::Gzip]);
    let m = cfg.merged(&cfg.matches(&Req::new(&[(CondField::Url, "/other")])));
    assert_eq!(m.deflate, cfg.base.deflate);
    // The global block's settings are shared, not copied, by requests that do not change them.
    assert!(std::rc::Rc::ptr_eq(&m.deflate, &cfg.base.deflate));
}

#[cfg(feature = "deflate")]
#[test]
fn deflate_errors_and_warnings() {
    for (src, want) in [
        (
            "deflate.compression-level = 0",
            "T/main.conf:1: deflate.compression-level: must be between 1 and 9 (or -1: the default), got 0",
        ),
        (
            "\ndeflate.compression-level = 10",
            "T/main.conf:2: deflate.compression-level: must be between 1 and 9 (or -1: the default), got 10",
        ),
        (
            "deflate.compression-level = -2",
            "T/main.conf:1: deflate.compression-level: must be between 1 and 9 (or -1: the default), got -2",
        ),
        (
            "deflate.compression-level = \"fast\"",
            "T/main.conf:1: deflate.compression-level: expected an integer, got the string \"fast\"",
        ),
        (
            "deflate.min-compress-size = 70000",
            "T/main.conf:1: deflate.min-compress-size: expected a value from 0 to 65536, got 70000",
        ),
        (
            "deflate.max-compress-size = -1",
            "T/main.conf:1: deflate.max-compress-size: expected a value from 0 to 4294967295, got -1",
        ),
        (
            "deflate.max-loadavg = 2",
            "T/main.conf:1: deflate.max-loadavg: expected a string, got the integer 2",
        ),
        (
            "deflate.cache-dir = \"/\"",
            "T/main.conf:1: deflate.cache-dir: \"/\" cannot be the cache directory",
        ),
    ] {
        assert_eq!(fails(src), want, "{src:?}");
    }
    for level in ["-1", "1", "\"6\"", "9"] {
        ok(&format!("deflate.compression-level = {level}"));
    }

    let m = "server.modules = ( \"mod_deflate\" )\n";
    for (src, want) in [
        (
            "deflate.allowed-encodings = ( \"br\", \"gzip\", \"zstd\" )",
            vec!["T/main.conf:2: deflate.allowed-encodings: lightd compresses with gzip and deflate only; br and zstd are served only from precompressed files"],
        ),
        ("deflate.allowed-encodings = ( \"gzip\" )", vec![]),
        (
            "compress.filetype = ( \"text/plain\" )",
            vec!["T/main.conf:2: DEPRECATED: compress.filetype replaced with deflate.mimetypes"],
        ),
        (
            "compress.allowed-encodings = ( \"bzip2\" )",
            vec![
                "T/main.conf:2: DEPRECATED: compress.allowed-encodings replaced with deflate.allowed-encodings",
                "T/main.conf:2: deflate.allowed-encodings: lightd compresses with gzip and deflate only; bzip2 is served only from precompressed files",
            ],
        ),
        (
            "compress.max-filesize = 10",
            vec!["T/main.conf:2: DEPRECATED: compress.max-filesize replaced with deflate.max-compress-size"],
        ),
        (
            "compress.max-loadavg = \"1\"",
            vec!["T/main.conf:2: DEPRECATED: compress.max-loadavg replaced with deflate.max-loadavg"],
        ),
        (
            "compress.cache-dir = \"\"",
            vec!["T/main.conf:2: DEPRECATED: compress.cache-dir replaced with deflate.cache-dir"],
        ),
        // Removed or tuning keys lightd does not read: warned and ignored.
        (
            "deflate.params = ( \"BROTLI_PARAM_QUALITY\" => 5 )",
            vec!["T/main.conf:2: lighttpd key 'deflate.params' (mod_deflate) is not implemented by lightd and is ignored"],
        ),
        (
            "deflate.sync-flush = \"enable\"",
            vec!["T/main.conf:2: lighttpd key 'deflate.sync-flush' (mod_deflate) is not implemented by lightd and is ignored"],
        ),
    ] {
        assert_eq!(warnings(&format!("{m}{src}")), want, "{src:?}");
    }
    // Without the module loaded the keys are ignored, as by lighttpd (they protect nothing).
    assert_eq!(
        warnings("deflate.mimetypes = ( \"text/\" )"),
        ["T/main.conf:1: deflate.mimetypes is ignored: mod_deflate is not in server.modules"]
    );
    assert!(ok("deflate.mimetypes = ( \"text/\" )")
        .base
        .deflate
        .mimetypes
        .is_empty());
}

/// mod_compress is mod_deflate under its old name (lighttpd loads mod_deflate for it), and
/// the compress.* keys set the same things.
#[cfg(feature = "deflate")]
#[test]
fn mod_compress_is_mod_deflate() {
    use super::deflate::Allowed;
    let cfg = ok(r#"
server.modules = ( "mod_compress" )
compress.filetype = ( "text/plain", "text/html" )
compress.allowed-encodings = ( "gzip", "br" )
compress.max-filesize = 64
compress.max-loadavg = "0.5"
"#);
    assert!(cfg.modules.iter().any(|m| m == "mod_deflate"));
    let d = &cfg.base.deflate;
    assert_eq!(d.mimetypes, ["text/plain", "text/html"]);
    assert_eq!(d.allowed, [Allowed::Gzip]);
    assert_eq!(d.sidecar, ["br"]);
    assert_eq!((d.max_compress_kb, d.max_loadavg), (64, 0.5));
    // The later setting wins, whichever spelling.
    let cfg = ok("server.modules = ( \"mod_deflate\" )\ncompress.max-filesize = 64\ndeflate.max-compress-size = 8");
    assert_eq!(cfg.base.deflate.max_compress_kb, 8);
    // Only br listed: nothing to compress on the fly, br from precompressed files.
    let cfg = ok("server.modules = ( \"mod_deflate\" )\ndeflate.allowed-encodings = ( \"br\" )");
    assert!(cfg.base.deflate.allowed.is_empty());
    // An empty list is lighttpd's default.
    let cfg = ok("server.modules = ( \"mod_deflate\" )\ndeflate.allowed-encodings = ( )");
    assert_eq!(cfg.base.deflate.allowed, [Allowed::Gzip, Allowed::Deflate]);
}

/// The cache directory is made (with its parents) by the start-up checks, not by -t; one that
/// cannot be made stops the start with the key's file and line.
#[cfg(feature = "deflate")]
#[test]
fn deflate_cache_dir_is_created_at_start() {
    let dir = tmpdir();
    let cache = dir.0.join("cache/deflate/x");
    let src = format!(
        "server.document-root = \"{}\"\nserver.modules = ( \"mod_deflate\" )\n$HTTP[\"host\"] == \"a\" {{\n  deflate.cache-dir = \"{}/\"\n}}\n",
        dir.0.display(),
        cache.display()
    );
    let main = write(&dir.0, "main.conf", &src);
    let cfg = load(&main).unwrap_or_else(|e| panic!("{e}"));
    assert!(!cache.exists(), "-t must not create it");
    super::check_loadable(&cfg).unwrap_or_else(|e| panic!("{e}"));
    assert!(cache.is_dir());

    let file = write(&dir.0, "plain-file", "x");
    let src = format!(
        "server.document-root = \"{}\"\nserver.modules = ( \"mod_deflate\" )\n\ndeflate.cache-dir = \"{}/sub\"\n",
        dir.0.display(),
        file.display()
    );
    let main = write(&dir.0, "main.conf", &src);
    let cfg = load(&main).unwrap_or_else(|e| panic!("{e}"));
    let e = norm(
        &dir.0,
        &super::check_loadable(&cfg)
            .expect_err("under a file")
            .to_string(),
    );
    assert!(
        e.starts_with("T/main.conf:4: deflate.cache-dir: cannot create \"T/plain-file/sub\": "),
        "{e}"
    );
}

// ---------------------------------------------------------------------------------------------
// mod_openssl

/// A connection for `matches`: the host (SNI name) on a socket.
#[cfg(feature = "tls")]
struct Sni(&'static str, SocketAddr);

#[cfg(feature = "tls")]
impl CondInput for Sni {
    fn field(&self, field: &CondField) -> Option<&str> {
        match field {
            CondField::Host => Some(self.0),
            CondField::Scheme => Some("https"),
            _ => None,
        }
    }
    fn remote_ip(&self) -> IpAddr {
        IpAddr::from([127, 0, 0, 1])
    }
    fn server_socket(&self) -> SocketAddr {
        self.1
    }
}

#[cfg(feature = "tls")]
fn ssl_path(p: &Option<super::ssl::PathAt>) -> Option<String> {
    p.as_ref().map(|p| p.path.display().to_string())
}

#[cfg(feature = "tls")]
fn names(v: &[super::ssl::Suite]) -> String {
    v.iter().map(|s| s.name()).collect::<Vec<_>>().join(":")
}

#[cfg(feature = "tls")]
#[test]
fn ssl_debian_pattern_inherits_the_global_certificate() {
    let cfg = ok(r#"server.modules += ( "mod_openssl" )
server.port = 8080
ssl.pemfile = "/etc/lighttpd/server.pem"
$SERVER["socket"] == "0.0.0.0:8443" {
	ssl.engine  = "enable"
}
$SERVER["socket"] == "[::]:8443" {
	ssl.engine  = "enable"
}
"#);
    assert!(cfg.warnings.is_empty(), "{:?}", cfg.warnings);
    assert_eq!(cfg.listen.len(), 3);
    assert!(cfg.listener_ssl(0).is_none(), "the plain port stays plain");
    for i in [1, 2] {
        let s = cfg
            .listener_ssl(i)
            .expect("TLS on the socket block's listener");
        assert!(s.engine);
        assert_eq!(
            ssl_path(&s.pemfile).as_deref(),
            Some("/etc/lighttpd/server.pem")
        );
        assert_eq!(s.pemfile.as_ref().map(|p| p.loc.line), Some(3));
    }
    assert!(cfg.listener_ssl(3).is_none());
    // The global scope's engine is on for every listener unless a block turns it off.
    let cfg = ok(r#"ssl.engine = "enable"
ssl.pemfile = "/a.pem"
$SERVER["socket"] == ":8080" { ssl.engine = "disable" }
"#);
    assert_eq!(
        cfg.listen[0].addr.port(),
        443,
        "lighttpd's TLS default port"
    );
    assert!(cfg.listener_ssl(0).is_some());
    assert!(cfg.listener_ssl(1).is_none());
    assert_eq!(ok("server.document-root = \"/\"").listen[0].addr.port(), 80);
}

#[cfg(feature = "tls")]
#[test]
fn ssl_sni_chooses_the_certificate_by_host() {
    let cfg = ok(r#"$SERVER["socket"] == ":8443" {
  ssl.engine = "enable"
  ssl.pemfile = "/a.pem"
  $HTTP["host"] == "b.example" {
    ssl.pemfile = "/b.pem"
    ssl.privkey = "/b.key"
  }
}
"#);
    let sock = SocketAddr::from(([127, 0, 0, 1], 8443));
    let conf = |host| cfg.merged(&cfg.matches(&Sni(host, sock))).ssl;
    let b = conf("B.example");
    assert_eq!(ssl_path(&b.pemfile).as_deref(), Some("/b.pem"));
    assert_eq!(ssl_path(&b.privkey).as_deref(), Some("/b.key"));
    assert!(b.engine);
    let a = conf("a.example");
    assert_eq!(ssl_path(&a.pemfile).as_deref(), Some("/a.pem"));
    assert_eq!(a.privkey, None);
    // Without SNI: the socket's certificate.
    assert_eq!(ssl_path(&conf("").pemfile).as_deref(), Some("/a.pem"));
    // A connection on another socket has no TLS at all.
    let other = cfg.merged(&cfg.matches(&Sni("b.example", SocketAddr::from(([0; 4], 80)))));
    assert!(!other.ssl.engine);
    // Every certificate is listed for loading at start, with where it was set.
    let files: Vec<String> = cfg
        .ssl_files()
        .iter()
        .map(|(k, p)| format!("{k} {} {}", p.path.display(), p.loc.line))
        .collect();
    assert_eq!(
        files,
        [
            "ssl.pemfile /a.pem 3",
            "ssl.pemfile /b.pem 5",
            "ssl.privkey /b.key 6"
        ]
    );
    assert_eq!(cfg.ssl_confs().len(), 3, "global, socket, host");
}

#[cfg(feature = "tls")]
#[test]
fn ssl_defaults_are_lighttpds() {
    let cfg = ok("server.document-root = \"/\"");
    let s = &cfg.base.ssl;
    assert!(!s.engine);
    assert!(s.verify_enforce && !s.verify_activate);
    assert_eq!(s.verify_depth, 9);
    assert!(s.honor_cipher_order && !s.no_tickets);
    assert_eq!(s.min_proto, Some(super::ssl::Proto::Tls13));
    assert_eq!(
        (s.max_proto, s.suites.clone(), s.groups.clone()),
        (None, None, None)
    );
}

#[cfg(feature = "tls")]
#[test]
fn ssl_scope_and_certificate_errors() {
    for (src, want) in [
        (
            "ssl.engine = \"enable\"\n",
            "T/main.conf:1: ssl.pemfile has to be set when ssl.engine = \"enable\"",
        ),
        (
            "$HTTP[\"host\"] == \"a\" {\n  ssl.engine = \"enable\"\n}\n",
            "T/main.conf:2: ssl.engine is valid only in the global scope or directly in a $SERVER[\"socket\"] condition",
        ),
        (
            "$SERVER[\"socket\"] == \":8443\" {\n  $HTTP[\"host\"] == \"a\" {\n    ssl.openssl.ssl-conf-cmd = (\"MinProtocol\" => \"TLSv1.2\")\n  }\n}\n",
            "T/main.conf:3: ssl.openssl.ssl-conf-cmd is valid only in the global scope or directly in a $SERVER[\"socket\"] condition",
        ),
        (
            "$HTTP[\"url\"] =^ \"/x\" {\n  ssl.cipher-list = \"HIGH\"\n}\n",
            "T/main.conf:2: ssl.cipher-list is valid only in the global scope or directly in a $SERVER[\"socket\"] condition",
        ),
        (
            "$SERVER[\"socket\"] == \":8443\" {\n  ssl.stek-file = \"/k\"\n}\n",
            "T/main.conf:2: ssl.stek-file is valid only in the global scope",
        ),
        // Only ssl.engine may rely on the global certificate.
        (
            "ssl.pemfile = \"/a.pem\"\n$SERVER[\"socket\"] == \":8443\" {\n  ssl.engine = \"enable\"\n  ssl.ca-file = \"/ca.pem\"\n}\n",
            "T/main.conf:2: ssl.pemfile has to be set in the same $SERVER[\"socket\"] scope as other ssl.* directives, unless only ssl.engine is set, inheriting ssl.* from the global scope (where ssl.pemfile must then be set)",
        ),
        // ... and then there must be one.
        (
            "$SERVER[\"socket\"] == \":8443\" {\n  ssl.engine = \"enable\"\n}\n",
            "T/main.conf:1: ssl.pemfile has to be set in the same $SERVER[\"socket\"] scope as other ssl.* directives, unless only ssl.engine is set, inheriting ssl.* from the global scope (where ssl.pemfile must then be set)",
        ),
        (
            "ssl.use-sslv3 = \"enable\"\n",
            "T/main.conf:1: ssl.use-sslv3: SSLv2 and SSLv3 are insecure and not offered by lightd (rustls speaks TLS 1.2 and 1.3 only); remove the key or set it to \"disable\"",
        ),
        (
            "ssl.use-sslv2 = \"enable\"\n",
            "T/main.conf:1: ssl.use-sslv2: SSLv2 and SSLv3 are insecure and not offered by lightd (rustls speaks TLS 1.2 and 1.3 only); remove the key or set it to \"disable\"",
        ),
        (
            "ssl.pemfile = \"/a.pem\"\n$HTTP[\"host\"] == \"a\" {\n  ssl.verifyclient.activate = \"enable\"\n}\n",
            "T/main.conf:3: ssl.verifyclient.activate is enabled but neither ssl.verifyclient.ca-file nor ssl.ca-file is set: no client certificate could be verified",
        ),
        (
            "ssl.cipher-list = \"AES256-SHA:DHE-RSA-AES256-GCM-SHA384\"\n",
            "T/main.conf:1: ssl.cipher-list: \"AES256-SHA:DHE-RSA-AES256-GCM-SHA384\" selects no cipher suite lightd (rustls) has; available: ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256",
        ),
        (
            "ssl.ec-curve = \"secp521r1\"\n",
            "T/main.conf:1: ssl.ec-curve: \"secp521r1\" names no key exchange group lightd (rustls) has; available: X25519:P-256:P-384",
        ),
        (
            "ssl.openssl.ssl-conf-cmd = (\"MaxProtocol\" => \"TLSv1.1\")\n",
            "T/main.conf:1: ssl.openssl.ssl-conf-cmd: \"MaxProtocol\" => \"TLSv1.1\": a maximum of TLSv1.1 leaves nothing rustls speaks (TLSv1.2, TLSv1.3)",
        ),
        (
            "ssl.openssl.ssl-conf-cmd = (\"MaxProtocol\" => \"TLSv1.2\")\n",
            "T/main.conf:1: ssl.openssl.ssl-conf-cmd: MinProtocol TLSv1.3 (lighttpd's default minimum) is above MaxProtocol TLSv1.2",
        ),
        (
            "ssl.openssl.ssl-conf-cmd = (\"Options\" => \"ServerPreference,NoSuchFlag\")\n",
            "T/main.conf:1: ssl.openssl.ssl-conf-cmd: \"Options\" => \"ServerPreference,NoSuchFlag\": Options: unknown flag \"NoSuchFlag\"",
        ),
        (
            "ssl.openssl.ssl-conf-cmd = (\"VerifyMode\" => \"Require\")\n",
            "T/main.conf:1: ssl.openssl.ssl-conf-cmd: \"VerifyMode\" => \"Require\": client certificates are configured with ssl.verifyclient.* and ssl.ca-file in lightd",
        ),
        (
            "ssl.openssl.ssl-conf-cmd = (\"Certificate\" => \"/x.pem\")\n",
            "T/main.conf:1: ssl.openssl.ssl-conf-cmd: \"Certificate\" => \"/x.pem\": the certificate and key are set with ssl.pemfile and ssl.privkey in lightd",
        ),
        (
            "ssl.openssl.ssl-conf-cmd = (\"MinProtocl\" => \"TLSv1.2\")\n",
            "T/main.conf:1: ssl.openssl.ssl-conf-cmd: \"MinProtocl\": unknown command",
        ),
        (
            "ssl.openssl.ssl-conf-cmd = (\"Protocol\" => \"-ALL\")\n",
            "T/main.conf:1: ssl.openssl.ssl-conf-cmd: \"Protocol\" => \"-ALL\": \"-ALL\" leaves neither TLSv1.2 nor TLSv1.3 on, and rustls speaks nothing else",
        ),
        (
            "ssl.openssl.ssl-conf-cmd = (\"Ciphersuites\" => \"TLS_AES_128_GCM_SHA256:TLS_FOO\")\n",
            "T/main.conf:1: ssl.openssl.ssl-conf-cmd: \"Ciphersuites\" => \"TLS_AES_128_GCM_SHA256:TLS_FOO\": unknown TLS 1.3 suite \"TLS_FOO\"; available: TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256",
        ),
        (
            "ssl.openssl.ssl-conf-cmd = (\"Ciphersuites\" => \"\")\n",
            "T/main.conf:1: ssl.openssl.ssl-conf-cmd: \"Ciphersuites\" is empty and TLSv1.3 is the only version allowed: no handshake could succeed",
        ),
        (
            "ssl.openssl.ssl-conf-cmd = (\"Groups\" => \"X25519:P-256:Curve9000\")\n",
            "T/main.conf:1: ssl.openssl.ssl-conf-cmd: \"Groups\" => \"X25519:P-256:Curve9000\": unknown group \"Curve9000\"",
        ),
        (
            "ssl.verifyclient.enforce = \"maybe\"\n",
            "T/main.conf:1: ssl.verifyclient.enforce: expected \"enable\" or \"disable\", got the string \"maybe\"",
        ),
    ] {
        assert_eq!(fails(src), want, "{src}");
    }
}

#[cfg(feature = "tls")]
#[test]
fn ssl_cipher_strings_map_as_openssl_does() {
    use super::ssl::cipher_string;
    let all = "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256";
    let table: &[(&str, &str)] = &[
        ("HIGH", all),
        ("", all),
        ("DEFAULT", all),
        // lighttpd 1.4.85's default.
        ("EECDH+AESGCM:CHACHA20:!PSK:!DHE", "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"),
        ("ECDHE-RSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256"),
        ("HIGH:!aRSA", "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256"),
        ("ECDSA+AES128:RSA+AES128:aRSA+AES128", "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"),
        ("AESGCM:-AES256:CHACHA20", "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"),
        // '-' can be taken back, '!' cannot.
        ("HIGH:-CHACHA20:CHACHA20", "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"),
        ("HIGH:!CHACHA20:CHACHA20", "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"),
        ("HIGH:+AES256", "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384"),
        ("AES128:CHACHA20:@STRENGTH", "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256"),
        ("AES256-SHA:ECDHE-ECDSA-CHACHA20-POLY1305,ECDHE-RSA-CHACHA20-POLY1305", "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"),
        // Suite B keywords decide only at the start; elsewhere they select nothing.
        ("HIGH:@SECLEVEL=2:!SUITEB128", all),
        ("SUITEB128:CHACHA20", "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384"),
    ];
    for (text, want) in table {
        let mut w = Vec::new();
        let got = cipher_string(text, &mut w).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(names(&got), *want, "{text}");
        assert!(w.is_empty(), "{text}: {w:?}");
        // The same answer as OpenSSL itself, where its CLI is installed.
        if let Ok(out) = std::process::Command::new("openssl")
            .args(["ciphers", "-s", "-tls1_2", text])
            .output()
        {
            if out.status.success() && !text.is_empty() {
                let theirs: Vec<String> = String::from_utf8_lossy(&out.stdout)
                    .trim()
                    .split(':')
                    .filter(|n| all.split(':').any(|a| a == *n))
                    .map(str::to_string)
                    .collect();
                assert_eq!(theirs.join(":"), *want, "openssl ciphers {text}");
            }
        }
    }
    let mut w = Vec::new();
    let got = cipher_string("HIGH:!aNUL", &mut w).expect("a typo selects nothing");
    assert_eq!(got.len(), 6);
    assert_eq!(
        w,
        ["\"aNUL\" is not a cipher or cipher keyword lightd knows; it selects nothing"]
    );
    let mut w = Vec::new();
    assert!(cipher_string("TLS_AES_128_GCM_SHA256", &mut w).is_err());
    assert_eq!(w.len(), 1, "{w:?}");
}

#[cfg(feature = "tls")]
#[test]
fn ssl_conf_cmd_maps_onto_rustls() {
    use super::ssl::{Group, Proto};
    let load = |cmd: &str| {
        let (dir, res) = load_files(&[(
            "main.conf",
            &format!(
                "server.modules = ( \"mod_openssl\" )\nssl.openssl.ssl-conf-cmd = ( {cmd} )\n"
            ),
        )]);
        let cfg = res.unwrap_or_else(|e| panic!("{cmd}: {e}"));
        let w: Vec<String> = cfg.warnings.iter().map(|w| norm(&dir, w)).collect();
        (cfg.base.ssl.clone(), w)
    };
    let (s, w) = load("\"MinProtocol\" => \"TLSv1.2\"");
    assert_eq!((s.min_proto, s.max_proto), (Some(Proto::Tls12), None));
    assert!(w.is_empty(), "{w:?}");
    // A minimum of TLSv1 promises "nothing older": raised to what rustls has, with a warning.
    let (s, w) = load("\"MinProtocol\" => \"TLSv1\"");
    assert_eq!(s.min_proto, Some(Proto::Tls12));
    assert_eq!(w, ["T/main.conf:2: ssl.openssl.ssl-conf-cmd: \"MinProtocol\" => \"TLSv1\": rustls speaks nothing older than TLSv1.2; the minimum is raised from TLSv1 to TLSv1.2"]);
    let (s, _) = load("\"MinProtocol\" => \"None\"");
    assert_eq!(s.min_proto, None);
    let (s, w) = load("\"Protocol\" => \"ALL,-SSLv3,-TLSv1,-TLSv1.1\"");
    assert_eq!(
        (s.min_proto, s.max_proto),
        (Some(Proto::Tls12), Some(Proto::Tls13))
    );
    assert!(w.is_empty(), "{w:?}");
    let (s, _) = load("\"Protocol\" => \"-ALL, TLSv1.3\"");
    assert_eq!(
        (s.min_proto, s.max_proto),
        (Some(Proto::Tls13), Some(Proto::Tls13))
    );
    let (s, _) = load("\"MinProtocol\" => \"TLSv1.2\", \"MaxProtocol\" => \"TLSv1.2\"");
    assert_eq!(
        (s.min_proto, s.max_proto),
        (Some(Proto::Tls12), Some(Proto::Tls12))
    );
    let (s, w) = load("\"Options\" => \"-SessionTicket, -ServerPreference, -Compression\"");
    assert!(s.no_tickets && !s.honor_cipher_order);
    assert!(w.is_empty(), "{w:?}");
    let (s, w) = load("\"Options\" => \"PrioritizeChaCha,UnsafeLegacyRenegotiation\"");
    assert!(!s.no_tickets && s.honor_cipher_order);
    assert_eq!(w.len(), 2, "{w:?}");
    let (s, w) = load("\"Curves\" => \"X25519:X448:prime256v1:?FFDHE9000\"");
    assert_eq!(s.groups, Some(vec![Group::X25519, Group::Secp256r1]));
    assert_eq!(w, ["T/main.conf:2: ssl.openssl.ssl-conf-cmd: \"Curves\" => \"X25519:X448:prime256v1:?FFDHE9000\": group \"X448\" is not offered by rustls; ignored"]);
    let (s, _) = load("\"Ciphersuites\" => \"TLS_CHACHA20_POLY1305_SHA256\", \"CipherString\" => \"ECDHE-RSA-AES128-GCM-SHA256\", \"MinProtocol\" => \"TLSv1.2\"");
    assert_eq!(
        names(s.suites.as_deref().unwrap_or_default()),
        "TLS_CHACHA20_POLY1305_SHA256:ECDHE-RSA-AES128-GCM-SHA256"
    );
    let (s, w) = load("\"SignatureAlgorithms\" => \"ECDSA+SHA256\", \"SecurityLevel\" => \"2\"");
    assert_eq!(w.len(), 2, "{w:?}");
    assert_eq!(s.suites, None);
    // Only TLS 1.3 suites named: the TLS 1.2 ones are lighttpd's default list.
    let (s, _) = load("\"Ciphersuites\" => \"TLS_AES_128_GCM_SHA256\"");
    let suites = s.suites.clone().unwrap_or_default();
    assert_eq!(suites.len(), 7);
    assert_eq!(
        suites.first().map(|s| s.name()),
        Some("TLS_AES_128_GCM_SHA256")
    );
}

#[cfg(feature = "tls")]
#[test]
fn ssl_conf_cmd_wins_and_replaces_as_in_lighttpd() {
    use super::ssl::Proto;
    // CipherString beats ssl.cipher-list whatever the order (lighttpd applies it last).
    let cfg = ok(
        r#"ssl.openssl.ssl-conf-cmd = ( "CipherString" => "CHACHA20" )
ssl.cipher-list = "AESGCM"
ssl.honor-cipher-order = "disable"
$SERVER["socket"] == ":8443" {
  ssl.engine = "enable"
  ssl.pemfile = "/a.pem"
  ssl.openssl.ssl-conf-cmd = ( "MinProtocol" => "TLSv1.2" )
}
$SERVER["socket"] == ":9443" {
  ssl.engine = "enable"
  ssl.pemfile = "/a.pem"
  ssl.cipher-list = "AES256"
  ssl.openssl.ssl-conf-cmd = ( "Options" => "ServerPreference" )
}
"#,
    );
    let g = &cfg.base.ssl;
    assert_eq!(
        names(g.suites.as_deref().unwrap_or_default()),
        "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
    );
    assert!(!g.honor_cipher_order);
    assert!(cfg
        .warnings
        .iter()
        .any(|w| w.contains("ssl.cipher-list is deprecated")));
    // A block's command array replaces the global one as a whole: its CipherString is gone,
    // so ssl.cipher-list (inherited) applies again.
    let a = cfg.listener_ssl(1).expect("tls");
    assert_eq!(a.min_proto, Some(Proto::Tls12));
    assert_eq!(
        names(a.suites.as_deref().unwrap_or_default())
            .split(':')
            .skip(3)
            .collect::<Vec<_>>(),
        [
            "ECDHE-ECDSA-AES256-GCM-SHA384",
            "ECDHE-RSA-AES256-GCM-SHA384",
            "ECDHE-ECDSA-AES128-GCM-SHA256",
            "ECDHE-RSA-AES128-GCM-SHA256"
        ]
    );
    assert!(!a.honor_cipher_order);
    let b = cfg.listener_ssl(2).expect("tls");
    assert_eq!(b.min_proto, Some(Proto::Tls13));
    assert!(b.honor_cipher_order);
    assert_eq!(
        names(b.suites.as_deref().unwrap_or_default())
            .split(':')
            .skip(3)
            .collect::<Vec<_>>(),
        [
            "ECDHE-ECDSA-AES256-GCM-SHA384",
            "ECDHE-RSA-AES256-GCM-SHA384"
        ]
    );
}

#[cfg(feature = "tls")]
#[test]
fn ssl_keys_warned_about_and_accepted() {
    let w = warnings(
        r#"server.modules = ( "mod_openssl" )
ssl.dh-file = "/etc/dh.pem"
ssl.use-sslv2 = "disable"
ssl.use-sslv3 = "disable"
ssl.disable-client-renegotiation = "enable"
ssl.use-compression = "disable"
ssl.ec-curve = "secp384r1"
ssl.verifyclient.depth = 300
ssl.empty-fragments = "enable"
"#,
    );
    assert_eq!(
        w,
        [
            "T/main.conf:2: ssl.dh-file is ignored: rustls has no finite-field DH suites",
            "T/main.conf:8: ssl.verifyclient.depth is absurdly large (300); limiting to 255",
            "T/main.conf:9: ssl.empty-fragments is ignored: it guards CBC suites in TLS 1.0, which rustls does not have",
        ]
    );
    let cfg = ok("ssl.verifyclient.depth = 300\nssl.ec-curve = \"secp384r1\"\nssl.stapling-file = \"/ocsp.der\"\nssl.acme-tls-1 = \"/acme\"\nssl.stek-file = \"/stek\"\nssl.verifyclient.username = \"SSL_CLIENT_S_DN_CN\"\nssl.verifyclient.ca-crl-file = \"/crl.pem\"\n");
    let s = &cfg.base.ssl;
    assert_eq!(s.verify_depth, 255);
    assert_eq!(s.groups, Some(vec![super::ssl::Group::Secp384r1]));
    assert_eq!(ssl_path(&s.stapling_file).as_deref(), Some("/ocsp.der"));
    assert_eq!(ssl_path(&s.acme_tls_1).as_deref(), Some("/acme"));
    assert_eq!(ssl_path(&s.stek_file).as_deref(), Some("/stek"));
    assert_eq!(ssl_path(&s.ca_crl_file).as_deref(), Some("/crl.pem"));
    assert_eq!(s.verify_username.as_deref(), Some("SSL_CLIENT_S_DN_CN"));
    // lighttpd loads mod_openssl itself for ssl.* keys, and says so once.
    let w = warnings(
        "server.modules = ( \"mod_staticfile\" )\nssl.pemfile = \"/a.pem\"\nssl.ca-file = \"/ca.pem\"\n",
    );
    assert_eq!(w, ["T/main.conf:2: ssl.* keys are set but mod_openssl is not in server.modules; lighttpd loads it anyway, and lightd does too (add \"mod_openssl\" to server.modules)"]);
    // Client certificates with a CA: fine, enforced by default.
    let cfg = ok("ssl.ca-file = \"/ca.pem\"\nssl.verifyclient.activate = \"enable\"\n");
    assert!(cfg.base.ssl.verify_activate && cfg.base.ssl.verify_enforce);
}

#[cfg(feature = "tls")]
#[test]
fn ssl_keys_printed_as_written() {
    let cfg = ok(r#"ssl.pemfile = "/etc/ssl/a.pem"
ssl.openssl.ssl-conf-cmd = ( "MinProtocol" => "TLSv1.2" )
$SERVER["socket"] == ":8443" {
  ssl.engine = "enable"
}
"#);
    let p = cfg.to_string();
    for line in [
        "ssl.pemfile = \"/etc/ssl/a.pem\"",
        "ssl.openssl.ssl-conf-cmd = ( \"MinProtocol\" => \"TLSv1.2\" )",
        "    ssl.engine = \"enable\"",
    ] {
        assert!(p.contains(line), "{line:?} not in:\n{p}");
    }
}

#[cfg(not(feature = "tls"))]
#[test]
fn ssl_refused_without_tls() {
    let cfg = ok("$SERVER[\"socket\"] == \":8443\" {\n  ssl.engine = \"enable\"\n  ssl.pemfile = \"/a.pem\"\n}\n");
    let e = cfg.refusal().expect_err("no TLS in this build").to_string();
    assert!(e.contains(":2: ssl.engine needs mod_openssl"), "{e}");
}
