//! The in-place reload that supervisors tracking one pid need (procd, runit, s6, daemontools, a
//! container's PID 1). The test stands in for such a supervisor: it starts `lightd -D` and
//! watches that one pid. SIGUSR1 must keep that pid in charge and alone on the port, lose no
//! request under load, and every way it can go wrong (a broken config, an exec that fails,
//! signals during the exec, either process killed at each step) must leave either the same pid
//! serving or the port free for the supervisor's next start.

mod common;
mod reload_util;

use std::fs;
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use reload_util::*;

/// How many in-place reloads a pid has completed, from its log.
fn ready_count(site: &Site, pid: i32) -> usize {
    site.log()
        .lines()
        .filter(|l| line_pid(l) == Some(pid) && l.contains("reload: this image is ready"))
        .count()
}

/// Wait until `pid` has completed `n` in-place reloads.
fn wait_ready(site: &Site, pid: i32, n: usize) {
    assert!(
        wait_until(READY_TIMEOUT, || ready_count(site, pid) >= n),
        "pid {pid} did not complete in-place reload {n}\n{}",
        site.dump()
    );
    assert_eq!(ready_count(site, pid), n, "reloads completed by {pid}");
}

/// The processes running this site's config that hold the listening socket.
fn holders(site: &Site, inode: u64) -> Vec<i32> {
    procs_with_arg(&site.conf())
        .into_iter()
        .filter(|&p| socket_inodes(p).contains(&inode))
        .collect()
}

/// `want` (sorted) are exactly the processes of this site holding the listening socket.
fn assert_holders(site: &Site, inode: u64, want: &[i32]) {
    let mut want = want.to_vec();
    want.sort_unstable();
    assert_eq!(
        holders(site, inode),
        want,
        "the processes holding the listening socket\n{}",
        site.dump()
    );
}

/// `n` SIGUSR1 reloads of `pid` under `load`, each completed in place, with `check` after each:
/// the pid stays alive, a download in flight when the reload began completes byte-exact, and
/// requests complete afterwards.
fn reload_in_place_under_load(
    site: &Site,
    load: &Load,
    pid: i32,
    n: usize,
    mut check: impl FnMut(&Site, usize),
) {
    for i in 0..n {
        let download = load.download_in_flight();
        let before = load.completed();
        send_signal(pid, libc::SIGUSR1);
        wait_ready(site, pid, i + 1);
        assert!(
            common::pid_alive(pid),
            "reload {i}: the supervised pid {pid} exited"
        );
        check(site, i);
        if let Some(seq) = download {
            load.wait_download_ok(seq, &format!("reload {i}"));
        }
        load.wait_progress(10, &format!("after reload {i}"));
        assert!(load.completed() > before, "reload {i}: nothing completed");
    }
}

/// The one socket listening on the site's port.
fn the_listener(site: &Site) -> u64 {
    let socks = listen_inodes(site.addr().port());
    assert_eq!(socks.len(), 1, "sockets listening on {}", site.addr());
    socks[0]
}

/// The old generations of `pid`: processes running this config whose parent it is.
fn old_gens(site: &Site, pid: i32) -> Vec<i32> {
    procs_with_arg(&site.conf())
        .into_iter()
        .filter(|&p| parent_pid(p) == Some(pid))
        .collect()
}

/// Wait for exactly one old generation of `pid`; return it.
fn one_old_gen(site: &mut Site, pid: i32) -> i32 {
    let mut kids = Vec::new();
    let ok = wait_until(READY_TIMEOUT, || {
        kids = old_gens(site, pid);
        kids.len() == 1
    });
    assert!(ok, "old generations of {pid}: {kids:?}\n{}", site.dump());
    site.track(kids[0]);
    kids[0]
}

/// Wait until only `want` run this config (old generations have drained and exited).
fn wait_only(site: &Site, want: &[i32]) {
    let limit = Duration::from_secs(GRACE) + MARGIN;
    assert!(
        wait_until(limit, || procs_with_arg(&site.conf()) == want),
        "processes running this config after {limit:?}: {:?}, want {want:?}\n{}",
        procs_with_arg(&site.conf()),
        site.dump()
    );
}

/// Whether any process (even a zombie) has this pid.
fn exists(pid: i32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// A config include that holds a starting lightd in its config load until the test opens
/// the gate, so that the test can act at a known step of a reload.
struct Gate {
    go: PathBuf,
    waiting: PathBuf,
}

impl Gate {
    /// Install the gate in the site's config, open.
    fn install(site: &mut Site, extra: &str) -> Gate {
        let dir = site.dir().to_path_buf();
        let go = dir.join("go");
        let waiting = dir.join("waiting");
        let script = dir.join("gate.sh");
        // 600 turns of 50 ms: never more than 30 s, whatever the test does.
        fs::write(
            &script,
            format!(
                "#!/bin/sh\n: > '{w}'\ni=0\nwhile [ ! -e '{g}' ] && [ $i -lt 600 ]; do \
                 sleep 0.05; i=$((i+1)); done\nrm -f '{w}'\n",
                w = waiting.display(),
                g = go.display()
            ),
        )
        .unwrap();
        fs::write(&go, "").unwrap();
        site.set_extra(&format!(
            "{extra}include_shell \"sh {}\"\n",
            script.display()
        ));
        Gate { go, waiting }
    }

    fn close(&self) {
        fs::remove_file(&self.go).unwrap();
    }

    fn open(&self) {
        fs::write(&self.go, "").unwrap();
    }

    /// Wait until a starting lightd is held at the gate.
    fn wait_held(&self, site: &Site) {
        assert!(
            wait_until(READY_TIMEOUT, || self.waiting.exists()),
            "no lightd reached the gate\n{}",
            site.dump()
        );
    }
}

/// A download of the big file on a connection with a small receive buffer, started and then
/// left unread, so it stays in flight in whichever process accepted it.
struct Download {
    stream: std::net::TcpStream,
    got: Vec<u8>,
}

impl Download {
    fn start(site: &Site) -> Download {
        let mut stream = common::connect_small_rcvbuf(site.addr(), 16 << 10);
        stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
        stream.write_all(&get_request(BIG, true)).unwrap();
        let mut got = vec![0u8; 64 << 10];
        stream.read_exact(&mut got).unwrap();
        assert!(
            got.starts_with(b"HTTP/1.1 200"),
            "the download did not start"
        );
        Download { stream, got }
    }

    /// Read the rest; the body must be the file, byte for byte.
    fn finish(mut self, what: &str) {
        let mut buf = vec![0u8; 256 << 10];
        loop {
            match self.stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => self.got.extend_from_slice(&buf[..n]),
                Err(e) => panic!(
                    "{what}: the download failed after {} bytes: {e}",
                    self.got.len()
                ),
            }
        }
        let head = self
            .got
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("response head")
            + 4;
        assert_eq!(
            self.got.len() - head,
            BIG_LEN,
            "{what}: the download was cut short"
        );
        assert!(
            self.got[head..] == *content().body(BIG),
            "{what}: the download is not byte-exact"
        );
    }
}

/// The yardstick: 8 reloads by SIGUSR1 under load, with the test as a supervisor that
/// tracks one pid. No request fails, the pid never exits (so nothing is respawned), the
/// listening socket is the same one throughout, and afterwards the supervised pid is the only
/// process that holds it.
#[test]
fn eight_sigusr1_reloads_under_load_keep_the_supervised_pid() {
    if common::skip_without_direct_exec() {
        return;
    }
    let mut site = Site::new("inplace-usr1", GRACE, "");
    let pid = site.start_first();
    let inode = the_listener(&site);
    let spec = LoadSpec::full();
    let load = Load::start(site.addr(), spec);
    load.warm_up(false);
    reload_in_place_under_load(&site, &load, pid, 8, |site, i| {
        assert_eq!(
            listen_inodes(site.addr().port()),
            vec![inode],
            "reload {i}: the listening socket changed"
        );
    });
    load.finish(spec, "load");
    wait_only(&site, &[pid]);
    assert_holders(&site, inode, &[pid]);
    assert_eq!(site.read_pid(), Some(pid), "the pid file");
    let listened: Vec<i32> = listening_lines(&site.log())
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert!(
        listened.iter().all(|&p| p == pid) && listened.len() == 9,
        "processes that logged `listening on`: {listened:?}"
    );
    site.check_serves();
    site.stop(pid, true);
}

/// A reload onto a broken config, of a daemonized lightd (whose only voice is its error log):
/// the pid stays, the old generation keeps serving, the error log says why, a second SIGUSR1
/// fails the same way without a second old generation, and once the config is fixed the next
/// SIGUSR1 applies it and the old generation leaves.
#[test]
fn broken_config_keeps_the_pid_and_the_old_generation_serving() {
    if common::skip_without_direct_exec() {
        return;
    }
    let mut site = Site::new("inplace-broken", GRACE, "");
    let pid = site.start_daemon();
    let inode = the_listener(&site);
    let spec = LoadSpec::full();
    let load = Load::start(site.addr(), spec);
    load.warm_up(false);

    let needle = site.write_broken_config();
    let failures = |site: &Site| {
        site.errorlog_text()
            .lines()
            .filter(|l| {
                line_pid(l) == Some(pid) && l.contains("reload failed") && l.contains(&needle)
            })
            .count()
    };
    send_signal(pid, libc::SIGUSR1);
    assert!(
        wait_until(READY_TIMEOUT, || failures(&site) == 1),
        "the error log does not say why the reload failed ({needle})\n{}",
        site.dump()
    );
    let old = one_old_gen(&mut site, pid);
    assert!(common::pid_alive(pid), "the supervised pid {pid} exited");
    assert_eq!(site.read_pid(), Some(pid), "the pid file changed");
    assert_holders(&site, inode, &[pid, old]);
    load.wait_progress(10, "after the failed reload");

    send_signal(pid, libc::SIGUSR1);
    assert!(
        wait_until(READY_TIMEOUT, || failures(&site) == 2),
        "the second failed reload was not reported\n{}",
        site.dump()
    );
    assert_eq!(
        old_gens(&site, pid),
        vec![old],
        "old generations after a second failure"
    );
    load.wait_progress(10, "after the second failed reload");

    site.set_extra("server.tag = \"inplace-v2\"\n");
    let download = load.download_in_flight();
    send_signal(pid, libc::SIGUSR1);
    wait_ready(&site, pid, 1);
    if let Some(seq) = download {
        load.wait_download_ok(seq, "the download the old generation was serving");
    }
    wait_only(&site, &[pid]);
    assert_holders(&site, inode, &[pid]);
    load.wait_progress(10, "after the fixed reload");
    load.finish(spec, "load");

    let mut s = std::net::TcpStream::connect(site.addr()).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    s.write_all(&get_request(SMALL, true)).unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(
        resp.contains("\r\nServer: inplace-v2\r\n"),
        "the fixed config is not in force:\n{resp}"
    );
    site.stop(pid, true);
}

/// Signals that arrive while the new image is starting (before it has handlers) must not end
/// the supervised process: a burst of SIGUSR1 is folded into the reload under way, and SIGHUP
/// is delivered once the image runs.
#[test]
fn signals_during_the_exec_are_held_and_a_burst_is_one_reload() {
    if common::skip_without_direct_exec() {
        return;
    }
    let mut site = Site::new("inplace-burst", GRACE, "");
    let gate = Gate::install(&mut site, "");
    let pid = site.start_first();
    gate.close();
    send_signal(pid, libc::SIGUSR1);
    gate.wait_held(&site);
    let old = one_old_gen(&mut site, pid);
    for _ in 0..5 {
        send_signal(pid, libc::SIGUSR1);
    }
    send_signal(pid, libc::SIGHUP);
    gate.open();
    wait_ready(&site, pid, 1);
    assert!(
        wait_until(MARGIN, || site.log().contains("logs reopened")),
        "the SIGHUP sent during the exec was lost\n{}",
        site.dump()
    );
    wait_only(&site, &[pid]);
    assert!(
        wait_until(MARGIN, || !exists(old)),
        "old generation {old} was not reaped"
    );
    let reloads = site
        .log()
        .lines()
        .filter(|l| l.contains("SIGUSR1: reloading in place"))
        .count();
    assert_eq!(
        reloads,
        1,
        "reloads started by a burst of 6 SIGUSR1\n{}",
        site.dump()
    );
    assert!(
        site.log().contains("folded into it"),
        "the burst was not reported as folded\n{}",
        site.dump()
    );
    site.check_serves();
    site.stop(pid, true);
}

/// SIGINT while the new image starts: the stop waits for the new image's handlers, then
/// drains both generations; a download the old one serves completes, and the supervised pid
/// exits 0 with the port closed.
#[test]
fn sigint_during_the_exec_drains_both_generations() {
    if common::skip_without_direct_exec() {
        return;
    }
    let mut site = Site::new("inplace-sigint", GRACE, "");
    let gate = Gate::install(&mut site, "");
    let pid = site.start_first();
    let download = Download::start(&site);
    gate.close();
    send_signal(pid, libc::SIGUSR1);
    gate.wait_held(&site);
    send_signal(pid, libc::SIGINT);
    gate.open();
    download.finish("the download in flight across the stop");
    assert!(
        site.wait_gone(pid, Duration::from_secs(GRACE) + MARGIN)
            .is_some(),
        "the supervised pid {pid} did not stop\n{}",
        site.dump()
    );
    wait_only(&site, &[]);
    assert!(
        common::wait_refused(site.addr(), MARGIN),
        "the port still accepts after the stop"
    );
}

/// The new image dies before it is ready (killed while it loads its config). The supervisor
/// sees its pid exit, as for any crash. The old generation must then let go of the port, so
/// that the supervisor's next start can bind it, and still finish the download it serves.
#[test]
fn new_image_killed_before_ready_frees_the_port_for_the_next_start() {
    if common::skip_without_direct_exec() {
        return;
    }
    let mut site = Site::new("inplace-kill-new", GRACE, "");
    let gate = Gate::install(&mut site, "");
    let pid = site.start_first();
    let download = Download::start(&site);
    gate.close();
    send_signal(pid, libc::SIGUSR1);
    gate.wait_held(&site);
    let old = one_old_gen(&mut site, pid);
    send_signal(pid, libc::SIGKILL);
    assert!(
        site.wait_gone(pid, MARGIN).is_some(),
        "pid {pid} survived SIGKILL"
    );
    let port = site.addr().port();
    assert!(
        wait_until(MARGIN, || listen_inodes(port).is_empty()),
        "the old generation {old} still listens after the new image died\n{}",
        site.dump()
    );
    // The supervisor starts lightd afresh: it binds the port.
    gate.open();
    let fresh = site.spawn(site.lightd(&["-D", "-f", &site.conf_str()]));
    site.wait_listening(fresh, READY_TIMEOUT);
    site.check_serves();
    download.finish("the download on the old generation");
    wait_only(&site, &[fresh]);
    site.stop(fresh, true);
}

/// The old generation is killed while the new image starts: the new image still takes over,
/// reaps it (no zombie left), and holds the port alone.
#[test]
fn old_generation_killed_during_the_exec_is_reaped() {
    if common::skip_without_direct_exec() {
        return;
    }
    let mut site = Site::new("inplace-kill-old", GRACE, "");
    let gate = Gate::install(&mut site, "");
    let pid = site.start_first();
    let inode = the_listener(&site);
    gate.close();
    send_signal(pid, libc::SIGUSR1);
    gate.wait_held(&site);
    let old = one_old_gen(&mut site, pid);
    send_signal(old, libc::SIGKILL);
    gate.open();
    wait_ready(&site, pid, 1);
    assert!(
        wait_until(MARGIN, || !exists(old)),
        "the killed old generation {old} was not reaped\n{}",
        site.dump()
    );
    assert_holders(&site, inode, &[pid]);
    site.check_serves();
    site.stop(pid, true);
}

/// The new image dies after it is ready, while the old generation drains: the download on the
/// old generation completes, and the supervisor's next start binds the port.
#[test]
fn new_image_killed_after_ready_leaves_the_drain_alone() {
    if common::skip_without_direct_exec() {
        return;
    }
    let mut site = Site::new("inplace-kill-after", GRACE, "");
    let pid = site.start_first();
    let download = Download::start(&site);
    send_signal(pid, libc::SIGUSR1);
    wait_ready(&site, pid, 1);
    let old = one_old_gen(&mut site, pid);
    send_signal(pid, libc::SIGKILL);
    assert!(
        site.wait_gone(pid, MARGIN).is_some(),
        "pid {pid} survived SIGKILL"
    );
    let fresh = site.spawn(site.lightd(&["-D", "-f", &site.conf_str()]));
    site.wait_listening(fresh, READY_TIMEOUT);
    site.check_serves();
    download.finish("the download on the draining old generation");
    assert!(
        site.wait_gone(old, Duration::from_secs(GRACE) + MARGIN)
            .is_some(),
        "old generation {old} did not finish"
    );
    site.stop(fresh, true);
}

/// The binary cannot be executed: not executable at all (nothing is forked, the pid serves
/// on), or not a program (the exec fails after the fork: the pid waits while the old
/// generation serves). Putting the binary back and SIGUSR1 again completes the reload.
#[test]
fn a_binary_that_cannot_run_leaves_the_pid_serving() {
    if common::skip_without_direct_exec() {
        return;
    }
    let mut site = Site::new("inplace-badexe", GRACE, "");
    let bin = site.dir().join("lightd");
    fs::copy(common::BIN, &bin).unwrap();
    let pid = site.spawn(site.lightd_bin(&bin, &["-D", "-f", &site.conf_str()]));
    site.learn_port(pid);
    let inode = the_listener(&site);

    // Not executable: refused before anything is forked.
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o644)).unwrap();
    send_signal(pid, libc::SIGUSR1);
    assert!(
        wait_until(MARGIN, || site.log().lines().any(|l| l
            .contains("Permission denied")
            && l.ends_with("still serving"))),
        "no error for a binary that is not executable\n{}",
        site.dump()
    );
    assert_eq!(
        procs_with_arg(&site.conf()),
        vec![pid],
        "processes after the refusal"
    );
    site.check_serves();

    // Executable but not a program: the exec fails after the fork.
    let junk = site.dir().join("junk");
    fs::write(&junk, "this is not a program\n").unwrap();
    fs::set_permissions(&junk, fs::Permissions::from_mode(0o755)).unwrap();
    fs::rename(&junk, &bin).unwrap();
    send_signal(pid, libc::SIGUSR1);
    assert!(
        wait_until(MARGIN, || site.log().contains("reload failed: executing")),
        "no error for a binary that does not execute\n{}",
        site.dump()
    );
    let old = one_old_gen(&mut site, pid);
    site.check_serves();
    assert_holders(&site, inode, &[pid, old]);

    // The binary is back: the reload goes through.
    let copy = site.dir().join("copy");
    fs::copy(common::BIN, &copy).unwrap();
    fs::rename(&copy, &bin).unwrap();
    send_signal(pid, libc::SIGUSR1);
    wait_ready(&site, pid, 1);
    wait_only(&site, &[pid]);
    assert_holders(&site, inode, &[pid]);
    site.check_serves();
    site.stop(pid, true);
}

/// SIGINT to a pid whose new image could not start: the old generation drains (its download
/// completes), then the pid exits 0 and the port is closed.
#[test]
fn sigint_while_waiting_stops_the_old_generation_gracefully() {
    if common::skip_without_direct_exec() {
        return;
    }
    let mut site = Site::new("inplace-wait-stop", GRACE, "");
    let pid = site.start_first();
    let download = Download::start(&site);
    let needle = site.write_broken_config();
    send_signal(pid, libc::SIGUSR1);
    assert!(
        wait_until(READY_TIMEOUT, || site.log().contains(&needle)),
        "the failed reload was not reported\n{}",
        site.dump()
    );
    let old = one_old_gen(&mut site, pid);
    send_signal(pid, libc::SIGINT);
    download.finish("the download on the old generation");
    assert!(
        site.wait_gone(pid, Duration::from_secs(GRACE) + MARGIN)
            .is_some(),
        "pid {pid} did not stop\n{}",
        site.dump()
    );
    assert!(
        !common::pid_alive(old),
        "old generation {old} outlived the stop"
    );
    assert!(
        common::wait_refused(site.addr(), MARGIN),
        "the port still accepts"
    );
}

/// server.max-worker = 2 under a one-pid supervisor: the supervisor re-executes in place, its
/// old workers drain, new ones start, and under load nothing fails.
#[test]
fn workers_reload_in_place_under_load() {
    if common::skip_without_direct_exec() {
        return;
    }
    let mut site = Site::new("inplace-workers", GRACE, "server.max-worker = 2\n");
    let pid = site.start_first();
    let workers = |site: &Site| old_gens(site, pid);
    assert!(
        wait_until(READY_TIMEOUT, || workers(&site).len() == 2),
        "workers: {:?}",
        workers(&site)
    );
    let spec = LoadSpec::full();
    let load = Load::start(site.addr(), spec);
    load.warm_up(false);
    let mut before = workers(&site);
    reload_in_place_under_load(&site, &load, pid, 3, |site, i| {
        let mut now = Vec::new();
        let ok = wait_until(Duration::from_secs(GRACE) + MARGIN, || {
            now = workers(site);
            now.len() == 2 && now.iter().all(|w| !before.contains(w))
        });
        assert!(
            ok,
            "reload {i}: workers {now:?} (before: {before:?})\n{}",
            site.dump()
        );
        before = now;
    });
    load.finish(spec, "load");
    site.stop(pid, true);
}

/// The supervisor of server.max-worker is killed (SIGKILL, as a supervisor's own stop timeout
/// or the OOM killer would): its workers stop accepting at once, so the restarted lightd binds
/// the port, and finish the download they serve.
#[test]
fn workers_of_a_killed_supervisor_free_the_port_and_finish() {
    let mut site = Site::new("inplace-workers-kill", GRACE, "server.max-worker = 2\n");
    let pid = site.start_first();
    assert!(
        wait_until(READY_TIMEOUT, || old_gens(&site, pid).len() == 2),
        "workers: {:?}",
        old_gens(&site, pid)
    );
    let workers = old_gens(&site, pid);
    let download = Download::start(&site);
    send_signal(pid, libc::SIGKILL);
    assert!(
        site.wait_gone(pid, MARGIN).is_some(),
        "pid {pid} survived SIGKILL"
    );
    let port = site.addr().port();
    assert!(
        wait_until(MARGIN, || listen_inodes(port).is_empty()),
        "the workers {workers:?} still listen after their supervisor died\n{}",
        site.dump()
    );
    let fresh = site.spawn(site.lightd(&["-D", "-f", &site.conf_str()]));
    site.wait_listening(fresh, READY_TIMEOUT);
    site.check_serves();
    download.finish("the download on a worker of the killed supervisor");
    for w in workers {
        assert!(
            wait_until(Duration::from_secs(GRACE) + MARGIN, || !common::pid_alive(
                w
            )),
            "worker {w} outlived its supervisor"
        );
    }
    site.stop(fresh, true);
}
