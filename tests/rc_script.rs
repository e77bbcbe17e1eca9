//! Static checks of the init scripts (rc/lightd and the scripts for procd, OpenRC, runit and
//! s6) and of the procd stand-in the tests run them with: each must parse under dash and
//! busybox sh and be clean under shellcheck as POSIX sh. CI installs the tools (.ci/run);
//! elsewhere a missing tool is skipped with a note.

use std::process::Command;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/rc/lightd");

/// Every shell script under rc/, and the stand-in for OpenWrt's rc.common.
const SCRIPTS: [&str; 7] = [
    concat!(env!("CARGO_MANIFEST_DIR"), "/rc/lightd"),
    concat!(env!("CARGO_MANIFEST_DIR"), "/rc/lightd.procd"),
    concat!(env!("CARGO_MANIFEST_DIR"), "/rc/lightd.openrc"),
    concat!(env!("CARGO_MANIFEST_DIR"), "/rc/runit/run"),
    concat!(env!("CARGO_MANIFEST_DIR"), "/rc/runit/control/t"),
    concat!(env!("CARGO_MANIFEST_DIR"), "/rc/s6/run"),
    concat!(env!("CARGO_MANIFEST_DIR"), "/tests/procd_standin/rc.common"),
];

/// Run `cmd args`; None when the tool is not installed (a failure under CI).
fn run(cmd: &str, args: &[&str]) -> Option<std::process::Output> {
    match Command::new(cmd).args(args).output() {
        Ok(o) => Some(o),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            assert!(
                std::env::var_os("CI").is_none(),
                "{cmd} is not installed, and CI must run this check (.ci/run installs it)"
            );
            eprintln!("note: {cmd} not installed; check skipped");
            None
        }
        Err(e) => panic!("running {cmd}: {e}"),
    }
}

fn assert_ok(what: &str, out: Option<std::process::Output>) {
    if let Some(o) = out {
        assert!(
            o.status.success(),
            "{what} failed:\n{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

#[test]
fn rc_scripts_are_clean_under_shellcheck() {
    // -s sh: the procd and OpenRC scripts start with interpreters shellcheck does not know
    // (`/bin/sh /etc/rc.common`, `/sbin/openrc-run`), and both run POSIX sh.
    let mut args = vec!["-s", "sh"];
    args.extend(SCRIPTS);
    assert_ok("shellcheck", run("shellcheck", &args));
}

#[test]
fn rc_scripts_parse_under_dash_and_busybox() {
    for script in SCRIPTS {
        assert_ok(&format!("dash -n {script}"), run("dash", &["-n", script]));
        assert_ok(
            &format!("busybox sh -n {script}"),
            run("busybox", &["sh", "-n", script]),
        );
    }
}

/// The small files s6-supervise reads: down-signal must name SIGINT (lightd's graceful stop;
/// s6's default, SIGTERM, is its immediate one), and timeout-kill a number of milliseconds.
#[test]
fn s6_down_signal_is_sigint() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/rc/s6");
    let read = |f: &str| std::fs::read_to_string(format!("{dir}/{f}")).unwrap();
    assert_eq!(read("down-signal"), "SIGINT\n");
    assert!(read("timeout-kill").trim().parse::<u32>().is_ok());
}

#[test]
fn rc_script_rejects_an_unknown_action_with_lsb_code_2() {
    let Some(o) = run("dash", &[SCRIPT, "frobnicate"]) else {
        return;
    };
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Where /var/log is a tmpfs (Buildroot links it to /tmp), the log directories a config names
/// are gone after every reboot, and lightd refuses to start without them: `configtest` (which
/// reload and restart run first) and `start` make them, from what `lightd -p` says the config
/// names, conditional blocks included.
#[test]
fn rc_script_makes_the_log_directories_the_config_names() {
    let dir = std::env::temp_dir().join(format!("lightd-rc-logdirs-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("www")).unwrap();
    let conf = dir.join("lightd.conf");
    let d = dir.display();
    std::fs::write(
        &conf,
        format!(
            "server.document-root = \"{d}/www\"\nserver.port = 1\n\
             server.pid-file = \"{d}/lightd.pid\"\n\
             server.errorlog = \"{d}/logs/error.log\"\n\
             server.modules += (\"mod_accesslog\")\n\
             $HTTP[\"host\"] == \"example.org\" {{\n  accesslog.filename = \"{d}/vhost/logs/access.log\"\n}}\n"
        ),
    )
    .unwrap();
    for shell in ["dash", "busybox"] {
        for sub in ["logs", "vhost"] {
            let _ = std::fs::remove_dir_all(dir.join(sub));
        }
        let mut args = vec![];
        if shell == "busybox" {
            args.push("sh");
        }
        args.extend([SCRIPT, "configtest"]);
        let out = match Command::new(shell)
            .args(&args)
            .env("DAEMON", env!("CARGO_BIN_EXE_lightd"))
            .env("CONF", &conf)
            .env("PIDFILE", dir.join("lightd.pid"))
            .env("LIGHTD_DEFAULTS", "/nonexistent")
            .output()
        {
            Ok(o) => o,
            Err(e)
                if e.kind() == std::io::ErrorKind::NotFound && std::env::var_os("CI").is_none() =>
            {
                eprintln!("note: {shell} not installed; check skipped");
                continue;
            }
            Err(e) => panic!("running {shell}: {e}"),
        };
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success(),
            "{shell} rc/lightd configtest: {:?}\n{text}",
            out.status
        );
        for sub in ["logs", "vhost/logs"] {
            assert!(
                dir.join(sub).is_dir(),
                "{shell}: configtest did not make {d}/{sub}\n{text}"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
