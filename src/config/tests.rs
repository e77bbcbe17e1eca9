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
        ("deflate.mimetypes = ( \"text/html\" )", &["T/main.conf:1: lighttpd key 'deflate.mimetypes' (mod_deflate) is not implemented by lightd and is ignored"]),
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
            "server.modules = ( \"mod_deflate\", \"mod_indexfile\", \"mod_usertrack\" )",
            &[
                "T/main.conf:1: module 'mod_deflate' is not implemented by lightd; its settings are ignored",
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
        (
            "$SERVER[\"socket\"] == \"127.0.0.1:0\" {\n  ssl.engine = \"enable\"\n}",
            &["T/main.conf:2: ssl.engine needs mod_openssl, which lightd does not implement; without it, the socket would speak plain, unencrypted HTTP"],
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
