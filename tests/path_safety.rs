//! Request paths against the file system: no spelling of `..`, separator or encoding reaches a
//! file outside the document root, odd names map to the file they literally name (or to none),
//! and symlinks leaving the docroot are served or refused exactly as server.follow-symlink says.
//!
//! The policy under test (see src/http/path.rs): decode once, `%2F` is a separator like '/',
//! `..` above the root stays at the root (RFC 3986 §5.2.4), backslash is an ordinary byte,
//! invalid UTF-8 (overlong forms included) and NUL are 400.

mod common;

use common::*;
use std::os::unix::fs::symlink;

/// The content of the one file outside the docroot that traversal would aim for. Unique, so
/// finding it in any response is unambiguous.
const SECRET: &str = "SECRET-4e1d-outside-the-docroot\n";
const FILE: &str = "docroot-file\n";
const DIR_FILE: &str = "dir-file\n";
const INNER: &str = "sub-inner\n";
const LITERAL: &str = "literal-percent-dir\n";
const LINKED_FILE: &str = "linked-file-elsewhere\n";
const LINKED_DIR: &str = "linked-dir-elsewhere\n";

/// docroot/ with ordinary files, outside/secret.txt beside it, and elsewhere/ holding what
/// the docroot's symlinks point at (kept apart from the secret so the traversal table's
/// "never the secret" holds whatever follow-symlink says).
fn layout(follow: &str) -> Builder {
    let b = builder()
        .file("file.txt", FILE)
        .file("dir/file.txt", DIR_FILE)
        .file("sub/inner.txt", INNER)
        // A directory literally named "%2e%2e": what a double-encoded ".." must reach.
        .file("%2e%2e/lit.txt", LITERAL)
        .dir_file("outside/secret.txt", SECRET)
        .dir_file("elsewhere/target.txt", LINKED_FILE)
        .dir_file("elsewhere/d/inner.txt", LINKED_DIR)
        .config(&format!("server.follow-symlink = \"{follow}\""));
    let root = b.docroot();
    let dir = b.dir().to_path_buf();
    symlink(dir.join("elsewhere/target.txt"), root.join("link-file.txt")).unwrap();
    symlink("../elsewhere/target.txt", root.join("rel-link.txt")).unwrap();
    symlink(dir.join("elsewhere/d"), root.join("link-dir")).unwrap();
    b
}

/// `(target, acceptable statuses, exact body when it must be served)`.
type Case = (&'static str, &'static [u16], Option<&'static str>);

const CASES: &[Case] = &[
    ("/file.txt", &[200], Some(FILE)),
    // `..` in every spelling: clamped at the root, so nothing there.
    ("/../outside/secret.txt", &[404], None),
    ("/../../../../outside/secret.txt", &[404], None),
    ("/%2e%2e/outside/secret.txt", &[404], None),
    ("/%2E%2E/outside/secret.txt", &[404], None),
    ("/.%2e/outside/secret.txt", &[404], None),
    ("/%2e./outside/secret.txt", &[404], None),
    ("/%2e%2e%2foutside%2fsecret.txt", &[404], None),
    ("/%2e%2e%2Foutside/secret.txt", &[404], None),
    ("/..%2foutside/secret.txt", &[404], None),
    ("/sub/../../outside/secret.txt", &[404], None),
    ("/sub/..%2f..%2foutside/secret.txt", &[404], None),
    ("/sub/%2e%2e%2f%2e%2e%2foutside%2fsecret.txt", &[404], None),
    ("/./../outside/secret.txt", &[404], None),
    ("//../outside/secret.txt", &[404], None),
    ("http://x/../outside/secret.txt", &[404], None),
    ("/../file.txt", &[200], Some(FILE)),
    ("/sub/../file.txt", &[200], Some(FILE)),
    ("/sub/%2e%2e/file.txt", &[200], Some(FILE)),
    // Decoded once: `%252e%252e` is the literal name "%2e%2e".
    ("/%252e%252e/outside/secret.txt", &[404], None),
    ("/%252e%252e%252foutside%252fsecret.txt", &[404], None),
    ("/%252e%252e/lit.txt", &[200], Some(LITERAL)),
    // Backslash is a file-name byte, never a separator. Raw, it is not a URI character, so
    // refusing it outright is fine too.
    ("/..\\outside\\secret.txt", &[400, 404], None),
    ("/sub/..\\..\\outside\\secret.txt", &[400, 404], None),
    ("/%5c..%5coutside%5csecret.txt", &[404], None),
    ("/sub/%5c..%5c..%5coutside%5csecret.txt", &[404], None),
    // Overlong UTF-8 for '.' and '/': not UTF-8 at all.
    ("/%c0%ae%c0%ae/outside/secret.txt", &[400], None),
    ("/%c0%ae%c0%ae%c0%afoutside%c0%afsecret.txt", &[400], None),
    ("/%e0%80%ae%e0%80%ae/outside/secret.txt", &[400], None),
    ("/%c0%ae%c0%ae/file.txt", &[400], None),
    // Raw non-ASCII bytes are name bytes like their percent-encoded forms: no way around "..".
    ("/\u{e4}/../../outside/secret.txt", &[404], None),
    ("/sub/\u{e4}/../../file.txt", &[200], Some(FILE)),
    ("/sub/\u{e4}%2f..%2f..%2ffile.txt", &[200], Some(FILE)),
    // NUL would truncate the name at the system call.
    ("/file.txt%00", &[400], None),
    ("/file.txt%00.html", &[400], None),
    ("/%00/../outside/secret.txt", &[400], None),
    // Trailing dot or space name another (missing) file, not this one.
    ("/file.txt.", &[404], None),
    ("/file.txt%20", &[404], None),
    ("/file.txt%2e", &[404], None),
    // Leading slashes collapse; they never introduce an authority.
    ("//file.txt", &[200], Some(FILE)),
    ("///file.txt", &[200], Some(FILE)),
    ("//localhost/file.txt", &[404], None),
    ("//127.0.0.1/file.txt", &[404], None),
    // A path that runs on past a file: the file, with the rest as path info, as lighttpd
    // does unless static-file.disable-pathinfo is set (tests/modules.rs).
    ("/file.txt/", &[200], Some(FILE)),
    ("/file.txt%2f", &[200], Some(FILE)),
    ("/file.txt%2F", &[200], Some(FILE)),
    // %2F decodes to '/' before normalisation.
    ("/dir/file.txt", &[200], Some(DIR_FILE)),
    ("/dir%2ffile.txt", &[200], Some(DIR_FILE)),
    ("/dir%2Ffile.txt", &[200], Some(DIR_FILE)),
    ("/sub%2finner.txt", &[200], Some(INNER)),
];

/// Bodies that must not appear where a request names nothing.
const KNOWN: &[&str] = &[FILE, DIR_FILE, INNER, LITERAL, LINKED_FILE, LINKED_DIR];

#[test]
fn path_table() {
    let s = layout("enable").start();
    let mut failures = Vec::new();
    for &(target, want, body) in CASES {
        let mut c = s.connect();
        // A 400 may come before the server reads everything; the response is what counts.
        let _ = c.try_send(&get(target));
        let r = match c.try_read_response(false) {
            Ok(r) => r,
            Err(e) => {
                failures.push(format!("{target}: no response: {e}"));
                continue;
            }
        };
        let text = r.text();
        if text.contains(SECRET.trim_end()) || r.head.contains(SECRET.trim_end()) {
            failures.push(format!("{target}: LEAKED THE SECRET ({})", r.status));
            continue;
        }
        if !want.contains(&r.status) {
            failures.push(format!("{target}: got {}, want {want:?}", r.status));
            continue;
        }
        match body {
            Some(b) if text != b => {
                failures.push(format!(
                    "{target}: {} with body {text:?}, want {b:?}",
                    r.status
                ));
            }
            None => {
                if let Some(k) = KNOWN.iter().find(|k| text.contains(k.trim_end())) {
                    failures.push(format!("{target}: {} served the content {k:?}", r.status));
                }
            }
            _ => {}
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} paths failed:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

/// The symlink cases: a file link (absolute and relative target) and a directory component.
const LINKS: &[(&str, &str)] = &[
    ("/link-file.txt", LINKED_FILE),
    ("/rel-link.txt", LINKED_FILE),
    ("/link-dir/inner.txt", LINKED_DIR),
];

#[test]
fn symlinks_out_of_the_docroot_are_followed_when_enabled() {
    let s = layout("enable").start();
    let mut failures = Vec::new();
    for &(target, body) in LINKS {
        let r = s.get(target);
        if (r.status, r.text().as_str()) != (200, body) {
            failures.push(format!("{target}: got {}, want 200 {body:?}", r.status));
        }
    }
    assert!(
        failures.is_empty(),
        "follow-symlink = enable:\n{}",
        failures.join("\n")
    );
}

#[test]
fn symlinks_are_refused_when_disabled() {
    let s = layout("disable").start();
    let mut failures = Vec::new();
    for &(target, body) in LINKS {
        let r = s.get(target);
        if r.status != 403 || r.text().contains(body.trim_end()) {
            failures.push(format!(
                "{target}: got {} {:?}, want 403",
                r.status,
                r.text()
            ));
        }
    }
    // Ordinary files are unaffected.
    let r = s.get("/dir/file.txt");
    if (r.status, r.text().as_str()) != (200, DIR_FILE) {
        failures.push(format!("/dir/file.txt: got {}", r.status));
    }
    assert!(
        failures.is_empty(),
        "follow-symlink = disable:\n{}",
        failures.join("\n")
    );
}
