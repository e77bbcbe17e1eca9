//! The build recipes in packaging/ (OpenWrt, Buildroot, Yocto), checked against the repository
//! without a build system: what each installs exists and goes where the init files and
//! packaging/lightd.conf expect it, the license checksums are LICENSE's, and the crate list for
//! bitbake is exactly Cargo.lock's. CI installs busybox and shellcheck (.ci/run); elsewhere the
//! checks that need them are skipped with a note.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

const OPENWRT: &str = "packaging/openwrt/lightd/Makefile";
const BUILDROOT_MK: &str = "packaging/buildroot/lightd/lightd.mk";
const BUILDROOT_CONFIG: &str = "packaging/buildroot/lightd/Config.in";
const BUILDROOT_HASH: &str = "packaging/buildroot/lightd/lightd.hash";
const YOCTO: &str = "packaging/yocto/lightd_git.bb";
const CRATES_INC: &str = "packaging/yocto/lightd-crates.inc";
const GENERATOR: &str = "packaging/yocto/gen-crates-inc.sh";

/// Stands for the binary cargo builds, in the install lists below.
const BUILT: &str = "<the lightd cargo builds>";

fn read(rel: &str) -> String {
    fs::read_to_string(Path::new(ROOT).join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

/// The value of `KEY = value` (also `:=`, `?=`, `??=`), unquoted.
fn assignment(text: &str, key: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let rest = line.trim_start().strip_prefix(key)?.trim_start();
        let value = ["??=", "?=", ":=", "="]
            .iter()
            .find_map(|op| rest.strip_prefix(op))?;
        Some(value.trim().trim_matches('"').to_string())
    })
}

/// The lines of a Makefile or recipe with `\` continuations joined and comments dropped.
fn logical_lines(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for line in text.lines() {
        if cur.is_empty() && line.trim_start().starts_with('#') {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => {
                cur.push_str(head);
                cur.push(' ');
            }
            None => {
                cur.push_str(line);
                out.push(std::mem::take(&mut cur));
            }
        }
    }
    out
}

/// How to read one recipe's install commands: which tokens name a file from the source tree
/// (or the built binary), and how its destination variables expand.
struct Recipe {
    path: &'static str,
    /// Token prefix -> what it stands for: "" keeps the rest as a path in the repository, any
    /// other value replaces the whole token (the built binary).
    sources: &'static [(&'static str, &'static str)],
    /// How destinations name the root of the target's file system (the staging directory).
    root: &'static str,
    /// Directory variables in destinations, and their values on the target.
    vars: &'static [(&'static str, &'static str)],
}

const RECIPES: [Recipe; 3] = [
    Recipe {
        path: OPENWRT,
        sources: &[
            ("$(PKG_INSTALL_DIR)/bin/lightd", BUILT),
            ("$(PKG_BUILD_DIR)/", ""),
        ],
        root: "$(1)",
        vars: &[],
    },
    Recipe {
        path: BUILDROOT_MK,
        sources: &[("$(LIGHTD_BIN)", BUILT), ("$(@D)/", "")],
        root: "$(TARGET_DIR)",
        vars: &[],
    },
    Recipe {
        path: YOCTO,
        sources: &[
            ("${B}/target/${CARGO_TARGET_SUBDIR}/lightd", BUILT),
            ("${S}/", ""),
        ],
        root: "${D}",
        vars: &[
            ("${sbindir}", "/usr/sbin"),
            ("${sysconfdir}", "/etc"),
            ("${localstatedir}", "/var"),
            ("${nonarch_libdir}", "/usr/lib"),
            // /lib/systemd/system without usrmerge; the units name no path of their own.
            ("${systemd_system_unitdir}", "/usr/lib/systemd/system"),
        ],
    },
];

/// What a recipe installs: (source, destination) pairs, and the directories it creates.
struct Installs {
    files: BTreeSet<(String, String)>,
    dirs: BTreeSet<String>,
}

fn installs(recipe: &Recipe) -> Installs {
    let expand_dest = |token: &str| -> Option<String> {
        let mut path = token.strip_prefix(recipe.root)?.to_string();
        for (var, value) in recipe.vars {
            path = path.replace(var, value);
        }
        Some(path)
    };
    let mut files = BTreeSet::new();
    let mut dirs = BTreeSet::new();
    for line in logical_lines(&read(recipe.path)) {
        let tokens: Vec<&str> = line.split_whitespace().collect();
        let is_install = tokens
            .first()
            .is_some_and(|t| *t == "install" || (t.starts_with("$(INSTALL") && t.ends_with(')')));
        if !is_install {
            continue;
        }
        let sources: Vec<String> = tokens
            .iter()
            .filter_map(|t| {
                recipe.sources.iter().find_map(|(prefix, stands_for)| {
                    let rest = t.strip_prefix(prefix)?;
                    Some(match *stands_for {
                        "" => rest.to_string(),
                        other => other.to_string(),
                    })
                })
            })
            .collect();
        let dests: Vec<String> = tokens.iter().filter_map(|t| expand_dest(t)).collect();
        if sources.is_empty() {
            // `install -d DIR` and OpenWrt's $(INSTALL_DIR) DIR.
            dirs.extend(dests);
            continue;
        }
        let dest = dests
            .last()
            .unwrap_or_else(|| panic!("{}: no destination in: {line}", recipe.path));
        for src in sources {
            let to = match dest.strip_suffix('/') {
                Some(dir) => format!("{dir}/{}", src.rsplit('/').next().unwrap()),
                None => dest.clone(),
            };
            files.insert((src, to));
        }
    }
    Installs { files, dirs }
}

/// The paths the init files and packaging/lightd.conf agree on (tests/install.rs checks that
/// they do), read from them rather than restated here.
struct Layout {
    daemon: String,
    conf: String,
    /// packaging/lightd.conf's `include`s, installed beside it.
    includes: Vec<String>,
    docroot: String,
    logdirs: BTreeSet<String>,
}

fn conf_value(conf: &str, key: &str) -> String {
    assignment(conf, key).unwrap_or_else(|| panic!("packaging/lightd.conf sets no {key}"))
}

fn parent(path: &str) -> String {
    Path::new(path).parent().unwrap().display().to_string()
}

fn layout() -> Layout {
    let rc = read("rc/lightd");
    let default = |var: &str| -> String {
        let start = format!(": \"${{{var}:=");
        let line = rc
            .lines()
            .find(|l| l.starts_with(&start))
            .unwrap_or_else(|| panic!("rc/lightd has no default for {var}"));
        line[start.len()..].trim_end_matches("}\"").to_string()
    };
    let conf = read("packaging/lightd.conf");
    let includes = conf
        .lines()
        .filter_map(|l| l.trim().strip_prefix("include \""))
        .map(|rest| rest.trim_end_matches('"').to_string())
        .collect();
    let logdirs = ["server.errorlog", "accesslog.filename"]
        .iter()
        .map(|key| parent(&conf_value(&conf, key)))
        .collect();
    Layout {
        daemon: default("DAEMON"),
        conf: default("CONF"),
        includes,
        docroot: conf_value(&conf, "server.document-root"),
        logdirs,
    }
}

/// What each recipe must install, from `layout()`: the binary, the config and what it
/// includes, and each system's init files.
fn expected(recipe: &Recipe, l: &Layout) -> BTreeSet<(String, String)> {
    let etc = parent(&l.conf);
    let mut want = vec![
        (BUILT.to_string(), l.daemon.clone()),
        ("packaging/lightd.conf".to_string(), l.conf.clone()),
    ];
    for inc in &l.includes {
        // conf/ holds the files the sample config includes; `make install` takes them from there.
        want.push((format!("conf/{inc}"), format!("{etc}/{inc}")));
    }
    // Each system's init files. Buildroot's rcS starts /etc/init.d/S??* in order.
    let mut init: Vec<(&str, &str)> = match recipe.path {
        OPENWRT => vec![("rc/lightd.procd", "/etc/init.d/lightd")],
        BUILDROOT_MK => vec![("rc/lightd", "/etc/init.d/S50lightd")],
        YOCTO => vec![
            ("rc/lightd", "/etc/init.d/lightd"),
            (
                "packaging/yocto/volatiles.99_lightd",
                "/etc/default/volatiles/99_lightd",
            ),
        ],
        other => unreachable!("{other}"),
    };
    // OpenWrt has procd, never systemd.
    if recipe.path != OPENWRT {
        init.extend([
            (
                "rc/lightd.service",
                "/usr/lib/systemd/system/lightd.service",
            ),
            ("rc/lightd.socket", "/usr/lib/systemd/system/lightd.socket"),
            (
                "packaging/lightd.tmpfiles",
                "/usr/lib/tmpfiles.d/lightd.conf",
            ),
        ]);
    }
    want.extend(
        init.into_iter()
            .map(|(s, d)| (s.to_string(), d.to_string())),
    );
    want.into_iter().collect()
}

#[test]
fn each_recipe_installs_what_make_install_does_where_the_init_files_expect_it() {
    let l = layout();
    for recipe in &RECIPES {
        let got = installs(recipe);
        let want = expected(recipe, &l);
        assert_eq!(
            got.files, want,
            "{}: installs (source, destination) differ from what the init files and \
             packaging/lightd.conf expect",
            recipe.path
        );
        for (src, _) in &got.files {
            assert!(
                src == BUILT || Path::new(ROOT).join(src).is_file(),
                "{}: installs {src}, which is not in the repository",
                recipe.path
            );
        }
        // OpenWrt's /var is a tmpfs: its init script makes the directories at start.
        if recipe.path != OPENWRT {
            assert!(
                got.dirs.contains(&l.docroot),
                "{}: does not create the document root {} (dirs: {:?})",
                recipe.path,
                l.docroot,
                got.dirs
            );
        }
    }
}

#[test]
fn the_procd_script_names_the_daemon_and_config() {
    let l = layout();
    let text = read("rc/lightd.procd");
    for want in [&l.daemon, &l.conf] {
        assert!(
            text.contains(want.as_str()),
            "rc/lightd.procd never names {want}"
        );
    }
}

#[test]
fn the_log_directory_made_at_boot_is_the_one_lightd_conf_names() {
    let l = layout();
    assert_eq!(
        l.logdirs.len(),
        1,
        "logs in several directories: {:?}",
        l.logdirs
    );
    let logdir = l.logdirs.iter().next().unwrap().as_str();
    // Each file's directory entries ("d ..."), and the field that holds the path.
    for (file, field) in [
        ("packaging/lightd.tmpfiles", 1),
        // populate-volatile.sh's format: TYPE USER GROUP MODE PATH LINKSOURCE.
        ("packaging/yocto/volatiles.99_lightd", 4),
    ] {
        let text = read(file);
        let dirs: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("d "))
            .map(|l| l.split_whitespace().nth(field).unwrap_or(""))
            .collect();
        assert_eq!(dirs, [logdir], "{file}");
    }
}

#[test]
fn conffiles_and_service_lists_name_what_is_installed() {
    let l = layout();
    let etc = parent(&l.conf);
    let mut conffiles = vec![l.conf.clone()];
    conffiles.extend(l.includes.iter().map(|inc| format!("{etc}/{inc}")));

    let openwrt = read(OPENWRT);
    let block = openwrt
        .split("define Package/lightd/conffiles\n")
        .nth(1)
        .and_then(|rest| rest.split("endef").next())
        .expect("the OpenWrt recipe has a conffiles block");
    let listed: Vec<&str> = block.lines().collect();
    assert_eq!(listed, conffiles, "{OPENWRT}: conffiles");

    let yocto = read(YOCTO);
    let listed = assignment(&yocto, "CONFFILES:${PN}").expect("CONFFILES:${PN}");
    let listed: Vec<String> = listed
        .split_whitespace()
        .map(|p| p.replace("${sysconfdir}", "/etc"))
        .collect();
    assert_eq!(listed, conffiles, "{YOCTO}: CONFFILES");

    let units = assignment(&yocto, "SYSTEMD_SERVICE:${PN}").expect("SYSTEMD_SERVICE:${PN}");
    let units: BTreeSet<&str> = units.split_whitespace().collect();
    assert_eq!(
        units,
        BTreeSet::from(["lightd.service", "lightd.socket"]),
        "{YOCTO}: SYSTEMD_SERVICE"
    );
    assert_eq!(
        assignment(&yocto, "INITSCRIPT_NAME").as_deref(),
        Some("lightd"),
        "{YOCTO}: INITSCRIPT_NAME is the installed script's name"
    );
}

/// `sha256sum FILE` / `md5sum FILE`: the hex digest.
fn digest(tool: &str, rel: &str) -> String {
    let out = Command::new(tool)
        .arg(Path::new(ROOT).join(rel))
        .output()
        .unwrap_or_else(|e| panic!("running {tool} (coreutils): {e}"));
    assert!(out.status.success(), "{tool} {rel} failed");
    let text = String::from_utf8(out.stdout).unwrap();
    text.split_whitespace().next().unwrap().to_string()
}

#[test]
fn license_fields_and_checksums_match_cargo_toml_and_license() {
    let license = assignment(&read("Cargo.toml"), "license").expect("Cargo.toml license");
    assert_eq!(license, "MIT");

    let openwrt = read(OPENWRT);
    assert_eq!(assignment(&openwrt, "PKG_LICENSE").as_deref(), Some("MIT"));
    assert_eq!(
        assignment(&openwrt, "PKG_LICENSE_FILES").as_deref(),
        Some("LICENSE")
    );

    let buildroot = read(BUILDROOT_MK);
    assert_eq!(
        assignment(&buildroot, "LIGHTD_LICENSE").as_deref(),
        Some("MIT")
    );
    assert_eq!(
        assignment(&buildroot, "LIGHTD_LICENSE_FILES").as_deref(),
        Some("LICENSE")
    );
    let sha256 = digest("sha256sum", "LICENSE");
    let hashed: Vec<Vec<String>> = read(BUILDROOT_HASH)
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| l.split_whitespace().map(str::to_string).collect())
        .collect();
    assert_eq!(
        hashed,
        [vec!["sha256".to_string(), sha256, "LICENSE".to_string()]],
        "{BUILDROOT_HASH}: the LICENSE line (sha256sum LICENSE)"
    );

    let yocto = read(YOCTO);
    assert_eq!(assignment(&yocto, "LICENSE").as_deref(), Some("MIT"));
    assert_eq!(
        assignment(&yocto, "LIC_FILES_CHKSUM"),
        Some(format!(
            "file://LICENSE;md5={}",
            digest("md5sum", "LICENSE")
        )),
        "{YOCTO}: LIC_FILES_CHKSUM (md5sum LICENSE)"
    );
}

#[test]
fn recipes_agree_with_cargo_toml_on_version_and_rust() {
    let cargo = read("Cargo.toml");
    let version = assignment(&cargo, "version").expect("Cargo.toml version");
    let yocto = read(YOCTO);
    assert_eq!(
        assignment(&yocto, "PV"),
        Some(format!("{version}+git")),
        "{YOCTO}: PV"
    );
    // scarthgap, the Yocto release the recipe is written for, ships Rust 1.75.
    let msrv = assignment(&cargo, "rust-version").expect("Cargo.toml rust-version");
    let parts: Vec<u32> = msrv.split('.').map(|p| p.parse().unwrap()).collect();
    assert!(
        parts[0] == 1 && parts[1] <= 75,
        "Cargo.toml rust-version {msrv} is newer than the Rust 1.75 of Yocto scarthgap"
    );
    assert!(
        yocto.contains("require ${BPN}-crates.inc"),
        "{YOCTO} does not require the crate list"
    );
    let config = read(BUILDROOT_CONFIG);
    for line in [
        "depends on BR2_PACKAGE_HOST_RUSTC_TARGET_ARCH_SUPPORTS",
        "select BR2_PACKAGE_HOST_RUSTC",
    ] {
        assert!(config.contains(line), "{BUILDROOT_CONFIG} lacks {line}");
    }
}

/// The crates.io packages of Cargo.lock, as (name, version, checksum).
fn locked_crates() -> Vec<(String, String, String)> {
    let lock = read("Cargo.lock");
    let mut out = Vec::new();
    for entry in lock.split("[[package]]\n").skip(1) {
        let field = |key: &str| assignment(entry, key).unwrap_or_default();
        let source = field("source");
        if source.is_empty() {
            continue; // lightd itself
        }
        assert_eq!(
            source,
            "registry+https://github.com/rust-lang/crates.io-index",
            "{} comes from elsewhere than crates.io",
            field("name")
        );
        out.push((field("name"), field("version"), field("checksum")));
    }
    out
}

/// Run the generator on the repository's Cargo.lock: `SHELL... gen-crates-inc.sh Cargo.lock`,
/// with `dir` (if any) first on PATH.
fn generate(shell: &[&Path], dir: Option<&Path>) -> Output {
    let mut cmd = Command::new(shell[0]);
    cmd.args(&shell[1..])
        .arg(Path::new(ROOT).join(GENERATOR))
        .arg(Path::new(ROOT).join("Cargo.lock"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(dir) = dir {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let dirs = std::iter::once(dir.to_path_buf()).chain(std::env::split_paths(&path));
        cmd.env("PATH", std::env::join_paths(dirs).unwrap());
    }
    run_command(cmd)
}

fn assert_same_as_checked_in(what: &str, out: &Output) {
    assert!(out.status.success(), "{what}: {}", out.describe());
    let checked_in = read(CRATES_INC);
    if out.stdout == checked_in {
        return;
    }
    let first = out
        .stdout
        .lines()
        .zip(checked_in.lines())
        .position(|(a, b)| a != b)
        .map_or_else(
            || "one is longer".to_string(),
            |i| format!("line {}", i + 1),
        );
    panic!(
        "{CRATES_INC} is not what {what} makes of Cargo.lock (first difference: {first}); \
         regenerate it: {GENERATOR} > {CRATES_INC}"
    );
}

#[test]
fn crate_list_is_what_the_generator_makes_of_cargo_lock() {
    assert_same_as_checked_in("sh", &generate(&[Path::new("sh")], None));
}

#[test]
fn crate_list_names_every_locked_crate_with_its_checksum() {
    // Read Cargo.lock independently of the awk script, so that a broken generator and a list
    // regenerated with it cannot agree with each other and pass.
    let inc = read(CRATES_INC);
    let uris: Vec<&str> = inc
        .lines()
        .filter_map(|l| l.trim().strip_prefix("crate://crates.io/"))
        .map(|l| l.trim_end_matches(" \\"))
        .collect();
    let sums: Vec<&str> = inc.lines().filter(|l| l.starts_with("SRC_URI[")).collect();
    let locked = locked_crates();
    let want_uris: Vec<String> = locked.iter().map(|(n, v, _)| format!("{n}/{v}")).collect();
    let want_sums: Vec<String> = locked
        .iter()
        .map(|(n, v, c)| format!("SRC_URI[{n}-{v}.sha256sum] = \"{c}\""))
        .collect();
    assert_eq!(uris, want_uris, "{CRATES_INC}: crate:// URIs");
    assert_eq!(sums, want_sums, "{CRATES_INC}: checksums");
}

fn find_in_path(tool: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(tool))
        .find(|p| p.is_file())
}

/// The path of `tool`; None (a failure under CI) when it is not installed.
fn tool(name: &str) -> Option<PathBuf> {
    let found = find_in_path(name);
    if found.is_none() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{name} is not installed, and CI must run this check (.ci/run installs it)"
        );
        eprintln!("note: {name} not installed; check skipped");
    }
    found
}

#[test]
fn generator_gives_the_same_list_under_busybox_sh_and_awk() {
    // Someone may well regenerate the list on a busybox system (OpenWrt, Buildroot).
    let Some(busybox) = tool("busybox") else {
        return;
    };
    // A directory whose `awk` is busybox's, first on PATH.
    let dir = TempDir::new("busybox-awk");
    std::os::unix::fs::symlink(&busybox, dir.path().join("awk")).unwrap();
    let out = generate(&[&busybox, Path::new("sh")], Some(dir.path()));
    assert_same_as_checked_in("busybox sh and awk", &out);
}

#[test]
fn generator_is_clean_under_shellcheck() {
    let Some(shellcheck) = tool("shellcheck") else {
        return;
    };
    let out = Command::new(shellcheck)
        .args(["-s", "sh"])
        .arg(Path::new(ROOT).join(GENERATOR))
        .output()
        .expect("run shellcheck");
    assert!(
        out.status.success(),
        "shellcheck {GENERATOR}:\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}
