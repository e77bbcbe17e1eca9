//! The command line: -v, -V, -h, -t, -tt, -p, error reporting, and daemon mode (-D absent).

mod common;

use common::*;
use std::net::TcpListener;
use std::time::{Duration, Instant};

#[test]
fn version_flag_names_lightd() {
    let out = run(&["-v"]);
    assert!(out.status.success(), "{}", out.describe());
    assert!(out.stdout.contains("lightd"), "{}", out.describe());
}

#[test]
fn big_v_prints_version_and_features() {
    let short = run(&["-v"]);
    let long = run(&["-V"]);
    assert!(long.status.success(), "{}", long.describe());
    assert!(long.stdout.contains("lightd"), "{}", long.describe());
    // The features come on top of the version, so there is more to say than -v says.
    assert!(
        long.stdout.trim().len() > short.stdout.trim().len(),
        "-V should add compiled-in features to -v's output\n-v: {}\n-V: {}",
        short.stdout,
        long.stdout
    );
}

#[test]
fn help_flag_lists_options() {
    let out = run(&["-h"]);
    assert!(out.status.success(), "{}", out.describe());
    let text = format!("{}{}", out.stdout, out.stderr);
    for flag in ["-f", "-D", "-t", "-v"] {
        assert!(
            text.contains(flag),
            "help does not mention {flag}\n{}",
            out.describe()
        );
    }
}

#[test]
fn unknown_option_fails() {
    let out = run(&["-Z"]);
    assert!(!out.status.success(), "{}", out.describe());
    assert!(out.stderr.contains("lightd: "), "{}", out.describe());
}

#[test]
fn missing_config_file_fails_naming_it() {
    let dir = TempDir::new("cli");
    let missing = dir.path().join("no-such.conf");
    let out = run(&["-D", "-f", missing.to_str().unwrap()]);
    assert!(!out.status.success(), "{}", out.describe());
    assert!(out.stderr.starts_with("lightd: "), "{}", out.describe());
    assert!(out.stderr.contains("no-such.conf"), "{}", out.describe());
}

#[test]
fn test_flag_accepts_a_good_config() {
    let b = builder().config("server.tag = \"x\"");
    let out = b.run(&["-t"]);
    assert!(out.status.success(), "{}", out.describe());
    assert!(out.stdout.contains("Syntax OK"), "{}", out.describe());
}

#[test]
fn test_flag_reports_file_and_line_once() {
    let b = builder().raw_config(
        "# a comment\nserver.document-root = \"{docroot}\"\nserver.port = = 80\nserver.bind = \"127.0.0.1\"\n",
    );
    let out = b.run(&["-t"]);
    assert!(!out.status.success(), "{}", out.describe());
    assert!(!out.stdout.contains("Syntax OK"), "{}", out.describe());
    let loc = "lightd.conf:3:";
    assert!(
        out.stderr.contains(loc),
        "error should name {loc}\n{}",
        out.describe()
    );
    assert_eq!(
        out.stderr.matches(loc).count(),
        1,
        "the error should be printed once\n{}",
        out.describe()
    );
    let line = out.stderr.lines().find(|l| l.contains(loc)).unwrap();
    assert!(line.starts_with("lightd: "), "{}", out.describe());
}

#[test]
fn double_t_checks_that_the_docroot_exists() {
    let b = builder().raw_config(
        "server.document-root = \"{dir}/missing-root\"\nserver.bind = \"127.0.0.1\"\nserver.port = 0\n",
    );
    let t = b.run(&["-t"]);
    assert!(
        t.status.success(),
        "-t must only check syntax\n{}",
        t.describe()
    );
    assert!(t.stdout.contains("Syntax OK"), "{}", t.describe());
    let tt = b.run(&["-tt"]);
    assert!(
        !tt.status.success(),
        "-tt must fail on a missing docroot\n{}",
        tt.describe()
    );
    assert!(tt.stderr.contains("lightd: "), "{}", tt.describe());
    assert!(
        tt.stderr.contains("missing-root") || tt.stderr.contains("document-root"),
        "the error should say what is missing\n{}",
        tt.describe()
    );
}

#[test]
fn double_t_accepts_a_loadable_config() {
    let out = builder().run(&["-tt"]);
    assert!(out.status.success(), "{}", out.describe());
}

#[test]
fn print_config_is_lighttpd_syntax() {
    let b = builder()
        .config("server.tag = \"printed-tag\"\nindex-file.names = (\"a.html\", \"b.html\")");
    let out = b.run(&["-p"]);
    assert!(out.status.success(), "{}", out.describe());
    assert!(
        out.stdout.contains("server.document-root"),
        "{}",
        out.describe()
    );
    assert!(
        out.stdout.contains(&b.docroot().display().to_string()),
        "{}",
        out.describe()
    );
    assert!(out.stdout.contains("printed-tag"), "{}", out.describe());
    // The printed config is itself a valid config.
    let printed = b.dir().join("printed.conf");
    write_file(&printed, &out.stdout);
    let again = run(&["-t", "-f", printed.to_str().unwrap()]);
    assert!(
        again.status.success() && again.stdout.contains("Syntax OK"),
        "-p output does not pass -t\n--- -p output ---\n{}\n--- -t ---\n{}",
        out.stdout,
        again.describe()
    );
}

#[test]
fn foreground_port_in_use_fails_naming_the_address() {
    let holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let b = builder().raw_config(&format!(
        "server.document-root = \"{{docroot}}\"\nserver.bind = \"127.0.0.1\"\nserver.port = {port}\n"
    ));
    let mut s = b.spawn(&["-D"]);
    let st = s.wait_exit(START_TIMEOUT);
    let stderr = s.stderr();
    assert!(
        st.is_some(),
        "lightd kept running on a port in use\n{stderr}"
    );
    assert!(!st.unwrap().success(), "{stderr}");
    assert!(stderr.contains("lightd: "), "{stderr}");
    assert!(
        stderr.contains(&format!("127.0.0.1:{port}")),
        "the error should name the address\n{stderr}"
    );
    drop(holder);
}

#[test]
fn daemon_starts_writes_pid_file_and_stops_on_sigint() {
    let b = builder()
        .file("index.html", "daemon says hi")
        .config("server.pid-file = \"{dir}/lightd.pid\"")
        .errorlog();
    let pid_file = b.dir().join("lightd.pid");
    let mut s = b.spawn(&[]);
    let launcher = s.child_pid();
    let st = s
        .wait_exit(START_TIMEOUT)
        .expect("the launcher did not exit");
    assert!(st.success(), "launcher failed: {st:?}\n{}", s.stderr());
    // The launcher returns only once the daemon listens, so the pid file is already there.
    assert!(pid_file.exists(), "no pid file when the launcher returned");
    let pid = s.adopt_daemon(&pid_file);
    assert_ne!(
        pid, launcher,
        "the pid file should name the daemon, not the launcher"
    );
    assert!(pid_alive(pid), "the daemon {pid} is not running");
    s.wait_listening();
    let r = s.get("/index.html");
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.body, b"daemon says hi");

    s.signal(libc::SIGINT);
    assert!(
        s.wait_gone(Duration::from_secs(20)),
        "the daemon did not stop on SIGINT"
    );
}

#[test]
fn daemon_failure_after_fork_is_reported_by_the_launcher() {
    let holder = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let b = builder().raw_config(&format!(
        "server.document-root = \"{{docroot}}\"\nserver.bind = \"127.0.0.1\"\nserver.port = {port}\nserver.pid-file = \"{{dir}}/lightd.pid\"\n"
    ));
    let pid_file = b.dir().join("lightd.pid");
    let mut s = b.spawn(&[]);
    let started = Instant::now();
    let st = s.wait_exit(START_TIMEOUT);
    // Whatever happened, make sure a stray daemon is cleaned up by the harness.
    if pid_file.exists() {
        if let Ok(text) = std::fs::read_to_string(&pid_file) {
            if !text.trim().is_empty() {
                s.adopt_daemon(&pid_file);
            }
        }
    }
    let st = st.expect("the launcher did not exit");
    assert!(
        !st.success(),
        "the launcher exited 0 though the daemon could not bind\n{}",
        s.stderr()
    );
    let addr = format!("127.0.0.1:{port}");
    let cap = s.stderr_capture();
    let left = Duration::from_secs(5).saturating_sub(started.elapsed());
    cap.wait_for(left.max(Duration::from_secs(1)), |t| t.contains(&addr));
    let stderr = s.stderr();
    assert!(stderr.contains("lightd: "), "{stderr}");
    assert!(
        stderr.contains(&addr),
        "the launcher should relay the daemon's error naming {addr}\n{stderr}"
    );
    drop(holder);
}

#[test]
fn daemon_failure_writing_the_pid_file_is_reported_by_the_launcher() {
    // The pid file is written by the daemon, after the fork: its failure must still reach
    // the launcher's exit status and stderr.
    let b = builder().config("server.pid-file = \"{dir}/no-such-dir/lightd.pid\"");
    let mut s = b.spawn(&[]);
    let st = s
        .wait_exit(START_TIMEOUT)
        .expect("the launcher did not exit");
    let cap = s.stderr_capture();
    cap.wait_for(Duration::from_secs(5), |t| t.contains("no-such-dir"));
    let stderr = s.stderr();
    assert!(
        !st.success(),
        "the launcher exited 0 though the daemon failed\n{stderr}"
    );
    assert!(stderr.contains("lightd: "), "{stderr}");
    assert!(
        stderr.contains("no-such-dir"),
        "the error should name the pid file\n{stderr}"
    );
}

#[test]
fn server_username_drops_root_privileges() {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("note: skipping server_username_drops_root_privileges: not running as root");
        return;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let Some(uid) = passwd
        .lines()
        .find(|l| l.starts_with("nobody:"))
        .and_then(|l| l.split(':').nth(2))
        .map(str::to_string)
    else {
        eprintln!("note: skipping server_username_drops_root_privileges: no user nobody");
        return;
    };
    let b = builder()
        .file("index.html", "as nobody")
        .config("server.username = \"nobody\"");
    // The unprivileged server must still be able to read the docroot, whatever the umask.
    use std::os::unix::fs::PermissionsExt;
    for (p, mode) in [
        (b.dir().to_path_buf(), 0o755),
        (b.docroot(), 0o755),
        (b.docroot().join("index.html"), 0o644),
    ] {
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let s = b.start();
    let r = s.get("/index.html");
    assert_eq!(
        (r.status, r.text().as_str()),
        (200, "as nobody"),
        "{}",
        r.describe()
    );
    let status = std::fs::read_to_string(format!("/proc/{}/status", s.pid())).unwrap();
    let uids: Vec<&str> = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .map(|l| l.split_whitespace().skip(1).collect())
        .unwrap_or_default();
    assert!(
        !uids.is_empty() && uids.iter().all(|u| *u == uid),
        "real/effective/saved/fs uids should all be nobody's ({uid}): {uids:?}"
    );
}

/// A generation killed before it said ready leaves `<pid-file>.<pid>.tmp` and
/// `<pid-file>.sock.<pid>.tmp` behind. The next start removes those whose pid is gone, and
/// leaves alone one whose process still runs (it may be a generation starting right now).
#[test]
fn stale_temporary_files_of_dead_generations_are_removed() {
    let dead = {
        let mut child = std::process::Command::new("true")
            .spawn()
            .expect("run true");
        child.wait().expect("wait for true");
        child.id()
    };
    let alive = std::process::id();
    let b = builder()
        .file("index.html", "x")
        .config("server.pid-file = \"{dir}/lightd.pid\"");
    let dir = b.dir().to_path_buf();
    let stale = [
        dir.join(format!("lightd.pid.{dead}.tmp")),
        dir.join(format!("lightd.pid.sock.{dead}.tmp")),
    ];
    let live = dir.join(format!("lightd.pid.{alive}.tmp"));
    let other = dir.join("lightd.pid.notapid.tmp");
    for p in stale.iter().chain([&live, &other]) {
        std::fs::write(p, "").unwrap();
    }
    let s = b.start();
    assert_eq!(s.get("/index.html").status, 200);
    for p in &stale {
        assert!(
            !p.exists(),
            "{} is still there\n{}",
            p.display(),
            s.log_text()
        );
    }
    assert!(live.exists(), "removed a live process's {}", live.display());
    assert!(
        other.exists(),
        "removed {}, which is not ours",
        other.display()
    );
}
