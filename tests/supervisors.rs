//! The init files under the tools that run them: runit's runsv, s6-supervise, daemontools'
//! supervise and OpenRC's openrc-run with supervise-daemon (all from Debian, the real
//! programs), OpenWrt's procd script under a stand-in for procd (Debian has no procd; see
//! tests/procd_standin/rc.common), and the LSB script as Buildroot's S50lightd with busybox as
//! the only shell and tools.
//!
//! Under each supervisor lightd starts, serves, reloads 8 times by that supervisor's own reload
//! command while a load checks every byte (no request may fail, and the supervisor must see no
//! exit: the pid it watches never changes, and it alone holds the listening socket once the old
//! generation has drained), survives a reload onto a broken config, and stops gracefully: a
//! download in flight when the stop is asked for completes byte for byte.
//!
//! A tool that is not installed is skipped with a note, except under CI, which installs them
//! (.ci/run). Tests that run a load take turns, so that each has the 2-core machine to itself.

mod common;
mod reload_util;

use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use common::{connect_small_rcvbuf, pid_alive, wait_refused, Conn, BIN};
use reload_util::*;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
/// Reloads under load, per supervisor.
const RELOADS: usize = 8;
/// How long a supervisor may take to start lightd and report its pid.
const START_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Tools
// ---------------------------------------------------------------------------------------------

/// Tests that put the machine under load take turns.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|e| e.into_inner())
}

/// Where `name` is: $PATH, then the sbin directories a non-root PATH may lack.
fn tool(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin", "/usr/bin", "/bin"].map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Whether `test` can run: every tool is installed and `probe` (if any) succeeds. Otherwise it
/// says why it is skipped, or, under CI, which installs everything (.ci/run), fails.
fn runnable(test: &str, tools: &[&str], probe: Option<&[&str]>) -> bool {
    // The supervisors exec lightd themselves, which a binary only the tests' wrapper can run
    // does not survive.
    if common::skip_without_direct_exec() {
        return false;
    }
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| tool(t).is_none())
        .collect();
    let why = if !missing.is_empty() {
        Some(format!("{} not installed", missing.join(", ")))
    } else if let Some(args) = probe {
        let ok = quiet(args[0])
            .args(&args[1..])
            .status()
            .is_ok_and(|s| s.success());
        (!ok).then(|| format!("`{}` failed here", args.join(" ")))
    } else {
        None
    };
    match why {
        None => true,
        Some(why) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "{test}: {why}, and CI must run this test (.ci/run installs what it needs)"
            );
            eprintln!("note: {test} skipped: {why}");
            false
        }
    }
}

/// A command (found as `tool` finds it) with stdin closed and none of the variables that would
/// make lightd act as if systemd ran it (or log differently).
fn quiet(prog: impl AsRef<std::ffi::OsStr>) -> Command {
    let prog = prog.as_ref();
    let found = prog.to_str().filter(|p| !p.contains('/')).and_then(tool);
    let mut cmd = Command::new(found.as_deref().map_or(prog, |p| p.as_os_str()));
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    for k in SCRUBBED_ENV {
        cmd.env_remove(k);
    }
    cmd
}

fn cmd(prog: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = quiet(prog);
    cmd.stdout(Stdio::inherit()).stderr(Stdio::inherit());
    cmd
}

/// Copy an init file from the repository, pointing it at the test's binary and config, and
/// /var and procd's /run into the site's directory, as a packager's sed would point them elsewhere. Keeps the
/// file's mode.
fn install_rc(src: &str, dest: &Path, site: &Site) {
    let from = Path::new(ROOT).join(src);
    let text = fs::read_to_string(&from).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    let text = text
        .replace("/usr/sbin/lightd", BIN)
        .replace("/etc/lightd/lightd.conf", &site.conf_str())
        .replace("/var/", &format!("{}/var/", site.dir().display()))
        .replace(" /run\"", &format!(" {}/run\"", site.dir().display()));
    fs::create_dir_all(dest.parent().unwrap()).unwrap();
    fs::write(dest, text).unwrap();
    let mode = fs::metadata(&from).unwrap().permissions().mode();
    fs::set_permissions(dest, fs::Permissions::from_mode(mode)).unwrap();
}

/// The pids holding socket `inode` open, from /proc/PID/fd (not /proc/PID/exe, which names
/// qemu when the binary runs under emulation).
fn holders(inode: u64) -> Vec<i32> {
    let want = format!("socket:[{inode}]");
    let mut out = Vec::new();
    for e in fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()) else {
            continue;
        };
        let held = fs::read_dir(format!("/proc/{pid}/fd"))
            .into_iter()
            .flatten()
            .flatten()
            .any(|fd| fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == want.as_str()));
        if held {
            out.push(pid);
        }
    }
    out.sort_unstable();
    out
}

/// A command running in the background with its output in a file.
struct Background {
    child: Child,
    out: PathBuf,
    what: String,
}

impl Background {
    fn spawn(mut cmd: Command, out: PathBuf) -> Background {
        let f = File::create(&out).unwrap();
        cmd.stdout(f.try_clone().unwrap()).stderr(f);
        let what = format!("{cmd:?}");
        let child = cmd.spawn().unwrap_or_else(|e| panic!("{what}: {e}"));
        Background { child, out, what }
    }

    /// Its exit status and output; panics (killing it) if it runs past `timeout`.
    fn finish(mut self, timeout: Duration) -> (ExitStatus, String) {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return (st, fs::read_to_string(&self.out).unwrap_or_default());
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "{} still ran after {timeout:?}; output:\n{}",
                    self.what,
                    fs::read_to_string(&self.out).unwrap_or_default()
                );
            }
            std::thread::sleep(POLL);
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------------
// A lightd under a supervisor
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Sup {
    Runit,
    S6,
    Daemontools,
    OpenRc,
    /// rc/lightd.procd under tests/procd_standin/rc.common, not procd.
    ProcdStandIn,
}

/// Mounts a private /run for OpenRC's state (openrc-run refuses to run on a system OpenRC did
/// not boot, and its state must not mix with the machine's), marks it booted, says so by
/// creating the file "$1", and holds the namespace.
const OPENRC_NAMESPACE: &str = "set -e
mount -t tmpfs -o mode=0755 lightd-test /run
mkdir -p /run/openrc
cd /run/openrc
mkdir daemons exclusive failed hotplugged inactive options scheduled started starting stopping tmp wasinactive
touch softlevel
: >\"$1\"
exec sleep 600";

struct Supervised {
    sup: Sup,
    /// The service directory (runit, s6, daemontools) or the init script (OpenRC, procd).
    svc: PathBuf,
    /// runsv, s6-supervise or supervise; for OpenRC, the process holding its mount namespace.
    child: Option<Child>,
    /// The pid the supervisor started, which every reload must keep.
    pid: i32,
    /// OpenRC's count of starts by supervise-daemon: a respawn raises it.
    start_count: Option<String>,
    /// The socket listening on the port since the first start.
    listener: u64,
    // Last: dropped after the supervisor is killed, so nothing respawns what the site kills.
    site: Site,
}

impl Supervised {
    /// Install the init files for `sup`, start lightd under it, learn the pid it watches and
    /// the port, and check that it serves.
    fn start(sup: Sup, tag: &str) -> Supervised {
        let site = Site::new(tag, GRACE, "");
        let conf = site.conf();
        let svc = match sup {
            Sup::Runit => {
                let svc = site.dir().join("sv/lightd");
                install_rc("rc/runit/run", &svc.join("run"), &site);
                install_rc("rc/runit/control/t", &svc.join("control/t"), &site);
                svc
            }
            Sup::Daemontools => {
                // The runit run script serves daemontools as it is; control/ is runit's only.
                let svc = site.dir().join("service/lightd");
                install_rc("rc/runit/run", &svc.join("run"), &site);
                svc
            }
            Sup::S6 => {
                let svc = site.dir().join("s6/lightd");
                for f in ["run", "down-signal", "timeout-kill"] {
                    install_rc(&format!("rc/s6/{f}"), &svc.join(f), &site);
                }
                svc
            }
            Sup::OpenRc => {
                let script = site.dir().join("init.d/lightd");
                install_rc("rc/lightd.openrc", &script, &site);
                script
            }
            Sup::ProcdStandIn => {
                let script = site.dir().join("init.d/lightd");
                install_rc("rc/lightd.procd", &script, &site);
                fs::create_dir_all(site.dir().join("procd")).unwrap();
                script
            }
        };
        let mut s = Supervised {
            sup,
            svc,
            child: None,
            pid: 0,
            start_count: None,
            listener: 0,
            site,
        };
        match sup {
            Sup::Runit => s.spawn_supervisor("runsv"),
            Sup::S6 => s.spawn_supervisor("s6-supervise"),
            Sup::Daemontools => s.spawn_supervisor("supervise"),
            Sup::OpenRc => {
                s.hold_openrc_namespace();
                let out = s.run(s.openrc("start"));
                out.assert_ok("openrc-run start");
            }
            Sup::ProcdStandIn => {
                let out = s.run(s.procd("start"));
                out.assert_ok("rc.common stand-in start");
                for d in ["var/log/lightd", "var/www/html", "run"] {
                    assert!(
                        s.site.dir().join(d).is_dir(),
                        "start_service did not make /{d}"
                    );
                }
                let calls = s.procd_calls();
                let command = format!("procd_set_param command {BIN} -D -f {}", conf.display());
                for want in [command.as_str(), "procd_set_param respawn"] {
                    assert!(
                        calls.lines().any(|l| l == want),
                        "start_service did not call `{want}`; calls:\n{calls}"
                    );
                }
            }
        }
        let mut pid = None;
        let ok = wait_until(START_TIMEOUT, || {
            pid = s.supervised_pid().filter(|&p| pid_alive(p));
            pid.is_some()
        });
        assert!(
            ok,
            "{sup:?}: no supervised lightd after {START_TIMEOUT:?}\n{}",
            s.site.dump()
        );
        s.pid = pid.unwrap();
        s.start_count = s.openrc_value("start_count");
        s.site.track(s.pid);
        s.site.learn_port(s.pid);
        s.listener = listen_inodes(s.site.addr().port())[0];
        s.site.check_serves();
        s
    }

    fn spawn_supervisor(&mut self, prog: &str) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.site.stderr_file())
            .unwrap();
        let child = quiet(prog)
            .arg(&self.svc)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {prog}: {e}"));
        self.child = Some(child);
    }

    fn hold_openrc_namespace(&mut self) {
        let ready = self.site.dir().join("openrc-namespace-ready");
        let child = quiet("unshare")
            .args(["--mount", "--propagation", "private", "--"])
            .args(["/bin/sh", "-c", OPENRC_NAMESPACE, "sh"])
            .arg(&ready)
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn unshare");
        self.child = Some(child);
        assert!(
            wait_until(Duration::from_secs(20), || ready.exists()),
            "the mount namespace for OpenRC was not set up"
        );
    }

    /// The pid of the process holding OpenRC's namespace.
    fn holder(&self) -> u32 {
        self.child.as_ref().expect("no namespace holder").id()
    }

    /// `openrc-run SCRIPT --nodeps ACTION` in OpenRC's namespace. --nodeps: this machine's
    /// init.d has no "net" service to start first.
    fn openrc(&self, action: &str) -> Command {
        let mut c = cmd("nsenter");
        c.args(["-t", &self.holder().to_string(), "-m", "--"])
            .arg(&self.svc)
            .args(["--nodeps", action]);
        c
    }

    /// One of the values supervise-daemon records for the service, read through the
    /// namespace's root.
    fn openrc_value(&self, key: &str) -> Option<String> {
        if self.sup != Sup::OpenRc {
            return None;
        }
        let path = format!(
            "/proc/{}/root/run/openrc/options/lightd/{key}",
            self.holder()
        );
        fs::read_to_string(path).ok().map(|s| s.trim().to_string())
    }

    /// `sh rc.common-stand-in SCRIPT ACTION`, under busybox sh (OpenWrt's shell) if there is
    /// one.
    fn procd(&self, action: &str) -> Command {
        let standin = Path::new(ROOT).join("tests/procd_standin/rc.common");
        let mut c = match tool("busybox") {
            Some(bb) => {
                let mut c = cmd(bb);
                c.arg("sh");
                c
            }
            None => cmd("sh"),
        };
        c.arg(standin)
            .arg(&self.svc)
            .arg(action)
            .env("STANDIN_STATE", self.site.dir().join("procd"));
        c
    }

    fn procd_calls(&self) -> String {
        fs::read_to_string(self.site.dir().join("procd/calls")).unwrap_or_default()
    }

    fn run(&mut self, cmd: Command) -> Outcome {
        self.site.run(cmd)
    }

    /// The output of a status command, or "" if it could not run.
    fn status_text(&self, prog: &str, args: &[&str]) -> String {
        quiet(prog)
            .args(args)
            .arg(&self.svc)
            .stdout(Stdio::piped())
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// The pid the supervisor says it runs.
    fn supervised_pid(&self) -> Option<i32> {
        let text = match self.sup {
            Sup::Runit => fs::read_to_string(self.svc.join("supervise/pid")).ok()?,
            Sup::S6 => self.status_text("s6-svstat", &["-p"]),
            Sup::Daemontools => {
                // "DIR: up (pid 123) 4 seconds"
                let s = self.status_text("svstat", &[]);
                let i = s.find("(pid ")? + "(pid ".len();
                let j = i + s[i..].find(')')?;
                s[i..j].to_string()
            }
            Sup::OpenRc => self.openrc_value("child_pid")?,
            Sup::ProcdStandIn => fs::read_to_string(self.site.dir().join("procd/pid")).ok()?,
        };
        text.trim().parse().ok().filter(|&p| p > 1)
    }

    /// Whether the supervisor reports the service down (and so will not start it again).
    fn reports_down(&mut self) -> bool {
        match self.sup {
            Sup::Runit => self.status_text("sv", &["status"]).starts_with("down:"),
            Sup::S6 => self.status_text("s6-svstat", &[]).starts_with("down"),
            Sup::Daemontools => self.status_text("svstat", &[]).contains(": down"),
            Sup::OpenRc => {
                let out = self.run(self.openrc("status"));
                out.status.code() == Some(3)
            }
            Sup::ProcdStandIn => self
                .procd_calls()
                .lines()
                .last()
                .is_some_and(|l| l == "procd_kill lightd  (no instance running)"),
        }
    }

    /// The supervisor's own reload command (daemontools has none for SIGUSR1: there the pid
    /// svstat reports gets `kill -USR1`).
    fn reload(&mut self) -> Outcome {
        let c = match self.sup {
            Sup::Runit => {
                let mut c = cmd("sv");
                c.arg("1").arg(&self.svc);
                c
            }
            Sup::S6 => {
                let mut c = cmd("s6-svc");
                c.arg("-1").arg(&self.svc);
                c
            }
            Sup::Daemontools => {
                let pid = self.supervised_pid().expect("svstat shows no pid");
                let mut c = cmd("kill");
                c.args(["-USR1", &pid.to_string()]);
                c
            }
            Sup::OpenRc => self.openrc("reload"),
            Sup::ProcdStandIn => self.procd("reload"),
        };
        self.run(c)
    }

    /// The supervisor's graceful stop.
    fn stop_command(&self) -> Command {
        match self.sup {
            Sup::Runit => {
                let mut c = cmd("sv");
                c.args(["-w", "30", "stop"]).arg(&self.svc);
                c
            }
            Sup::S6 => {
                let mut c = cmd("s6-svc");
                c.args(["-wD", "-T", "30000", "-d"]).arg(&self.svc);
                c
            }
            Sup::Daemontools => {
                // Once (do not restart it when it exits), then SIGINT: svc -d would send SIGTERM.
                let mut c = cmd("svc");
                c.arg("-oi").arg(&self.svc);
                c
            }
            Sup::OpenRc => self.openrc("stop"),
            Sup::ProcdStandIn => self.procd("stop"),
        }
    }

    /// How many times the supervised pid has logged `listening on`: once per image it has run,
    /// the first and one per completed reload.
    fn images(&self) -> usize {
        listening_lines(&self.site.log())
            .iter()
            .filter(|(p, _)| *p == self.pid)
            .count()
    }

    /// The supervisor saw no exit: it still names the first pid (and OpenRC counted no
    /// respawn), that pid runs, and lightd's pid file names it too.
    fn assert_same_pid(&self, when: &str) {
        assert_eq!(
            self.supervised_pid(),
            Some(self.pid),
            "{:?}, {when}: the supervised pid changed (a respawn)\n{}",
            self.sup,
            self.site.dump()
        );
        assert_eq!(
            self.openrc_value("start_count"),
            self.start_count,
            "{when}: supervise-daemon respawned lightd"
        );
        assert!(pid_alive(self.pid), "{when}: pid {} is gone", self.pid);
        assert_eq!(
            self.site.read_pid(),
            Some(self.pid),
            "{when}: lightd's pid file"
        );
    }

    /// Wait until the old generations, children of the supervised pid, have finished their
    /// connections and exited.
    fn wait_old_generations_gone(&self, when: &str) {
        let limit = Duration::from_secs(GRACE) + MARGIN;
        assert!(
            wait_until(limit, || lightd_children(self.pid).is_empty()),
            "{when}: old generations {:?} of pid {} still run after {limit:?}\n{}",
            lightd_children(self.pid),
            self.pid,
            self.site.dump()
        );
    }

    /// Exactly one socket listens on the port, the one bound at the first start, and only the
    /// supervised pid holds it.
    fn assert_sole_listener(&self, when: &str) {
        let port = self.site.addr().port();
        assert_eq!(
            listen_inodes(port),
            vec![self.listener],
            "{when}: the sockets listening on port {port} (inodes)"
        );
        assert_eq!(
            holders(self.listener),
            vec![self.pid],
            "{when}: the processes holding the listening socket\n{}",
            self.site.dump()
        );
    }

    /// Send the reload command and wait for the supervised pid to serve a new image, with the
    /// same pid, and the old generation to drain.
    fn reload_and_wait(&mut self, when: &str) {
        let images = self.images();
        let out = self.reload();
        assert!(
            out.status.success(),
            "{:?} {when}: the reload command exited {:?}\n{}",
            self.sup,
            out.status,
            out.text
        );
        assert!(
            wait_until(READY_TIMEOUT, || self.images() > images),
            "{when}: pid {} logged no `listening on` for a new image within {READY_TIMEOUT:?}\n{}",
            self.pid,
            self.site.dump()
        );
        self.assert_same_pid(when);
        self.wait_old_generations_gone(when);
        self.assert_sole_listener(when);
    }

    /// RELOADS reloads by the supervisor's command while a load runs: no request fails, every
    /// download in flight completes, the pid never changes.
    fn reloads_under_load(&mut self) {
        let spec = LoadSpec::full();
        let load = Load::start(self.site.addr(), spec);
        load.warm_up(false);
        for i in 0..RELOADS {
            let when = format!("reload {i}");
            let download = load.download_in_flight();
            let before = load.completed();
            self.reload_and_wait(&when);
            assert!(
                load.completed() > before,
                "{when}: no request completed while it was in progress\n{}",
                load.summary()
            );
            if let Some(seq) = download {
                load.wait_download_ok(seq, &when);
            }
            load.wait_progress(10, &format!("after {when}"));
        }
        load.finish(
            spec,
            &format!(
                "{:?}: {RELOADS} reloads, pid {} throughout",
                self.sup, self.pid
            ),
        );
        self.assert_same_pid("after the reloads");
        self.assert_sole_listener("after the reloads");
        self.site.check_serves();
    }

    /// A reload onto a config that does not load costs nothing: the init script refuses it
    /// with lightd's message (OpenRC, procd), or lightd does (the plain supervisors just
    /// signal); the pid stays and serves. The next reload, config fixed, works.
    fn broken_config_reload(&mut self) {
        let at = self.site.write_broken_config();
        let images = self.images();
        let out = self.reload();
        match self.sup {
            Sup::OpenRc | Sup::ProcdStandIn => {
                assert!(
                    !out.status.success(),
                    "{:?}: a reload onto a broken config succeeded\n{}",
                    self.sup,
                    out.text
                );
                assert!(
                    out.text.contains(&at),
                    "{:?}: the failed reload does not show lightd's message ({at})\n{}",
                    self.sup,
                    out.text
                );
                if self.sup == Sup::ProcdStandIn {
                    let signals = self
                        .procd_calls()
                        .lines()
                        .filter(|l| l.starts_with("procd_send_signal"))
                        .count();
                    assert_eq!(
                        signals, RELOADS,
                        "the failed reload signalled lightd anyway"
                    );
                }
            }
            _ => {
                assert!(out.status.success(), "{:?}: {}", self.sup, out.text);
                assert!(
                    wait_until(READY_TIMEOUT, || self
                        .site
                        .log()
                        .lines()
                        .any(|l| l.contains("reload failed") && l.contains(&at))),
                    "lightd logged no failed reload naming {at}\n{}",
                    self.site.dump()
                );
            }
        }
        assert_eq!(self.images(), images, "a broken config was served");
        self.assert_same_pid("after a reload onto a broken config");
        self.site.check_serves();
        self.site.write_config();
        self.reload_and_wait("the reload after the config was fixed");
        self.site.check_serves();
    }

    /// The supervisor's stop while a download is in flight: the listener closes, the download
    /// completes byte for byte and the connection closes cleanly, lightd exits, and the
    /// supervisor reports the service down rather than starting it again.
    fn stop_with_download(&mut self) {
        let addr = self.site.addr();
        let want = content().body(BIG);
        let mut conn = Conn::from_stream(connect_small_rcvbuf(addr, 16 * 1024));
        conn.send(&get_request(BIG, false));
        // The head and the first bytes: the rest waits in the server, far beyond socket buffers.
        conn.fill_to(64 * 1024)
            .unwrap_or_else(|e| panic!("the download did not start: {e}"));
        let stop = Background::spawn(self.stop_command(), self.site.dir().join("stop.out"));
        assert!(
            wait_refused(addr, Duration::from_secs(30)),
            "{:?}: the port still accepts after the stop command\n{}",
            self.sup,
            self.site.dump()
        );
        let resp = conn.read_response();
        assert_eq!(resp.status, 200, "{}", resp.describe());
        assert!(
            resp.body == want,
            "the download in flight did not complete byte for byte ({} of {} bytes)",
            resp.body.len(),
            want.len()
        );
        match conn.read_to_eof() {
            Ok(rest) if rest.is_empty() => {}
            other => panic!("after the download, expected a clean close: {other:?}"),
        }
        let (status, text) = stop.finish(CMD_TIMEOUT);
        assert!(
            status.success(),
            "{:?}: the stop command exited {status:?}\n{text}",
            self.sup
        );
        let limit = Duration::from_secs(GRACE) + MARGIN;
        assert!(
            self.site.wait_gone(self.pid, limit).is_some(),
            "pid {} still runs {limit:?} after the stop\n{}",
            self.pid,
            self.site.dump()
        );
        assert!(
            wait_until(Duration::from_secs(10), || self.reports_down()),
            "{:?}: the supervisor does not report the service down",
            self.sup
        );
        let left = procs_with_arg(&self.site.conf());
        assert!(
            left.is_empty(),
            "lightd runs again after the stop: {left:?}"
        );
        assert!(
            !self.site.pid_file().exists(),
            "lightd's pid file was left behind: it did not stop gracefully"
        );
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        if self.sup == Sup::OpenRc && self.child.is_some() {
            // supervise-daemon detached from us: find it through its pid file in the namespace.
            let path = format!("/proc/{}/root/run/supervise-lightd.pid", self.holder());
            let pid: Option<i32> = fs::read_to_string(path)
                .ok()
                .and_then(|s| s.trim().parse().ok());
            if let Some(pid) = pid.filter(|&p| p > 1 && pid_alive(p)) {
                let ours = fs::read(format!("/proc/{pid}/cmdline"))
                    .is_ok_and(|c| c.starts_with(b"supervise-daemon\0lightd\0"));
                if ours {
                    // SAFETY: FFI on the supervisor this test started, checked just above.
                    unsafe { libc::kill(pid, libc::SIGKILL) };
                }
            }
        }
        // The supervisor first, so that it cannot respawn what the site then kills.
        if let Some(c) = &mut self.child {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Start, reload under load, reload onto a broken config, stop with a download in flight.
fn exercise(sup: Sup, tag: &str) {
    let _turn = serial();
    let mut s = Supervised::start(sup, tag);
    s.reloads_under_load();
    s.broken_config_reload();
    s.stop_with_download();
}

#[test]
fn runit_runsv() {
    if runnable("runit", &["runsv", "sv"], None) {
        exercise(Sup::Runit, "runit");
    }
}

#[test]
fn s6_supervise() {
    if runnable("s6", &["s6-supervise", "s6-svc", "s6-svstat"], None) {
        exercise(Sup::S6, "s6");
    }
}

#[test]
fn daemontools_supervise() {
    if runnable("daemontools", &["supervise", "svc", "svstat"], None) {
        exercise(Sup::Daemontools, "daemontools");
    }
}

/// openrc-run and supervise-daemon, the real ones, in a mount namespace with a private /run.
#[test]
fn openrc_supervise_daemon() {
    let probe: &[&str] = &["unshare", "--mount", "--propagation", "private", "true"];
    if runnable(
        "openrc",
        &["openrc-run", "supervise-daemon", "unshare", "nsenter"],
        Some(probe),
    ) {
        exercise(Sup::OpenRc, "openrc");
    }
}

/// rc/lightd.procd under a stand-in for procd: the script's calls, carried out with plain
/// processes (see tests/procd_standin/rc.common).
#[test]
fn procd_script_under_a_stand_in() {
    if common::skip_without_direct_exec() {
        return;
    }
    exercise(Sup::ProcdStandIn, "procd");
}

#[test]
fn procd_script_refuses_to_start_on_a_broken_config() {
    if common::skip_without_direct_exec() {
        return;
    }
    let mut site = Site::new("procd-broken", GRACE, "");
    let at = site.write_broken_config();
    let script = site.dir().join("init.d/lightd");
    install_rc("rc/lightd.procd", &script, &site);
    let state = site.dir().join("procd");
    fs::create_dir_all(&state).unwrap();
    let mut c = cmd("sh");
    c.arg(Path::new(ROOT).join("tests/procd_standin/rc.common"))
        .arg(&script)
        .arg("start")
        .env("STANDIN_STATE", &state);
    let out = site.run(c);
    // rc.common's start exits with the status of sending the service to procd, as OpenWrt's
    // does; what the user sees is the message.
    assert!(
        out.text.contains(&at) && out.text.contains("not starting"),
        "{}",
        out.text
    );
    let calls = fs::read_to_string(state.join("calls")).unwrap_or_default();
    assert!(
        !calls.contains("procd_open_instance"),
        "an instance was declared for a config that does not load:\n{calls}"
    );
    assert!(!state.join("pid").exists(), "lightd was started");
}

// ---------------------------------------------------------------------------------------------
// The LSB script as Buildroot's S50lightd, with busybox as the only shell and tools
// ---------------------------------------------------------------------------------------------

/// In a private mount namespace, cover every directory of programs with one holding only
/// busybox and its applets, then run "$@" (which then finds /bin/sh, sed, sleep, ... in busybox
/// alone).
const BUSYBOX_ONLY: &str = "bb=$1
shift
for d in /usr/sbin /usr/local/sbin /usr/local/bin /sbin /bin /usr/bin; do
    # /bin and /sbin are links into /usr on a merged-/usr system.
    if [ -d \"$d\" ] && [ ! -L \"$d\" ]; then
        \"$bb/mount\" -o bind \"$bb\" \"$d\" || exit 97
    fi
done
exec \"$@\"";

/// A directory holding a copy of busybox and a link to it for each applet.
fn busybox_dir(dir: &Path) {
    let bb = tool("busybox").expect("busybox");
    fs::create_dir_all(dir).unwrap();
    fs::copy(&bb, dir.join("busybox")).unwrap();
    let list = Command::new(&bb)
        .arg("--list")
        .output()
        .expect("busybox --list");
    for applet in String::from_utf8_lossy(&list.stdout).split_whitespace() {
        if applet != "busybox" {
            std::os::unix::fs::symlink("busybox", dir.join(applet)).unwrap();
        }
    }
}

fn busybox_only(bb: &Path, argv: &[&std::ffi::OsStr]) -> Command {
    let mut c = cmd("unshare");
    c.args(["--mount", "--propagation", "private", "--"])
        .args(["/bin/sh", "-c", BUSYBOX_ONLY, "sh"])
        .arg(bb)
        .args(argv);
    c
}

/// `/etc/init.d/S50lightd ACTION` as Buildroot's rcS runs it (`$i start`: the script's own
/// #!/bin/sh, which is busybox), pointed at the site through the environment.
fn s50(site: &Site, bb: &Path, script: &Path, action: &str) -> Command {
    let mut c = busybox_only(bb, &[script.as_os_str(), action.as_ref()]);
    c.env("DAEMON", BIN)
        .env("CONF", site.conf())
        .env("PIDFILE", site.pid_file())
        .env("LIGHTD_DEFAULTS", "/nonexistent")
        .env_remove("OPTS");
    c
}

#[test]
fn buildroot_s50_under_busybox_alone() {
    let probe: &[&str] = &["unshare", "--mount", "--propagation", "private", "true"];
    if !runnable("buildroot-busybox", &["busybox", "unshare"], Some(probe)) {
        return;
    }
    let _turn = serial();
    let mut site = Site::new("buildroot", GRACE, "");
    let bb = site.dir().join("busybox");
    busybox_dir(&bb);
    let script = site.dir().join("etc/init.d/S50lightd");
    install_rc("rc/lightd", &script, &site);

    // Nothing but busybox is there to run.
    let probe = site.run(busybox_only(
        &bb,
        &[
            "/bin/sh".as_ref(),
            "-c".as_ref(),
            "readlink /bin/sh; readlink /usr/bin/sed; readlink /usr/bin/env; ls /usr/bin | wc -l"
                .as_ref(),
        ],
    ));
    let applets = fs::read_dir(&bb).unwrap().count();
    assert_eq!(
        probe.text.split_whitespace().collect::<Vec<_>>(),
        ["busybox", "busybox", "busybox", &applets.to_string()],
        "the namespace does not have busybox alone in /usr/bin"
    );

    let out = site.run(s50(&site, &bb, &script, "start"));
    out.assert_ok("S50lightd start");
    let first = site.read_pid().expect("S50lightd start wrote no pid file");
    site.track(first);
    site.learn_port(first);

    // The LSB script reloads by takeover: a second lightd takes the listening socket over the
    // control socket, so the pid changes and the old one drains.
    let spec = LoadSpec::full();
    let load = Load::start(site.addr(), spec);
    load.warm_up(false);
    let mut pid = first;
    for i in 0..3 {
        let download = load.download_in_flight();
        let out = site.run(s50(&site, &bb, &script, "reload"));
        assert!(
            out.status.success(),
            "S50lightd reload {i}: {:?}\n{}",
            out.status,
            out.text
        );
        site.assert_new_generation_serving(pid);
        pid = site.finish_reload(pid);
        if let Some(seq) = download {
            load.wait_download_ok(seq, &format!("reload {i}"));
        }
        load.wait_progress(10, &format!("after reload {i}"));
    }
    load.finish(spec, "S50lightd under busybox: 3 takeover reloads");
    site.check_serves();

    // Stop with a download in flight: SIGINT, and the script waits for the drain.
    let addr = site.addr();
    let mut conn = Conn::from_stream(connect_small_rcvbuf(addr, 16 * 1024));
    conn.send(&get_request(BIG, false));
    conn.fill_to(64 * 1024)
        .unwrap_or_else(|e| panic!("the download did not start: {e}"));
    let stop = Background::spawn(
        s50(&site, &bb, &script, "stop"),
        site.dir().join("stop.out"),
    );
    assert!(
        wait_refused(addr, Duration::from_secs(30)),
        "the port still accepts after S50lightd stop\n{}",
        site.dump()
    );
    let resp = conn.read_response();
    assert!(
        resp.status == 200 && resp.body == content().body(BIG),
        "the download in flight did not complete byte for byte: {}",
        resp.describe()
    );
    let (status, text) = stop.finish(CMD_TIMEOUT);
    assert!(status.success(), "S50lightd stop: {status:?}\n{text}");
    assert!(
        !pid_alive(pid),
        "pid {pid} still runs after S50lightd stop returned"
    );
    assert!(!site.pid_file().exists(), "pid file left behind");
}
