//! Zero-downtime reload, end to end: each way of starting a new generation (the rc script,
//! SIGUSR1, a takeover started by hand, systemd socket activation) under continuous load with
//! every response checked byte for byte, and the ways a reload can go wrong (a broken config,
//! a burst of signals, a client that never reads, the sd_notify protocol, a stop while a new
//! generation is starting, a takeover that cannot complete).

mod common;
mod reload_util;

use std::ffi::CString;
use std::fs;
use std::io::{self, Read, Write};
use std::net::TcpListener;
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

use reload_util::*;

/// `n` reloads while `load` runs, each started by `trigger(site, i, old_pid)`. Each must hand
/// over cleanly (see `Site::finish_reload`), requests must complete while it is in progress,
/// a download of the big file in flight when it starts must complete byte-exact, and the new
/// generation alone must serve afterwards. Returns the last generation's pid.
fn reloads(
    site: &mut Site,
    load: &Load,
    n: usize,
    mut trigger: impl FnMut(&mut Site, usize, i32),
) -> i32 {
    let mut pid = site.current_pid();
    for i in 0..n {
        let download = load.download_in_flight();
        let before = load.completed();
        trigger(site, i, pid);
        let new = site.finish_reload(pid);
        assert!(
            load.completed() > before,
            "reload {i} ({pid} -> {new}): no request completed while it was in progress\n{}",
            load.summary()
        );
        if let Some(seq) = download {
            load.wait_download_ok(seq, &format!("reload {i} ({pid} -> {new})"));
        }
        load.wait_progress(10, &format!("after reload {i}, generation {new} alone"));
        pid = new;
    }
    pid
}

/// Let a download finish if the load has one, stop the load, insist on zero errors, and check
/// that the last generation still serves.
fn end_load(site: &Site, load: Load, spec: LoadSpec) {
    load.finish(spec, "load");
    site.check_serves();
}

/// The shells to run rc/lightd with; at least one must exist.
fn rc_shells() -> Vec<Vec<String>> {
    let shells = shells();
    assert!(
        !shells.is_empty(),
        "neither dash nor busybox sh is installed"
    );
    shells
}

#[test]
fn rc_script_reload_under_load() {
    if common::skip_without_direct_exec() {
        return;
    }
    let shells = rc_shells();
    let mut site = Site::new("reload-rc", GRACE, "");
    let out = site.run(site.rc(&shells[0], "start"));
    out.assert_ok("rc start");
    let first = site.read_pid().unwrap_or_else(|| {
        panic!(
            "rc start returned 0 but wrote no pid file\n{}\n{}",
            out.text,
            site.dump()
        )
    });
    site.track(first);
    site.learn_port(first);

    let spec = LoadSpec::full();
    let load = Load::start(site.addr(), spec);
    load.warm_up(false);
    let last = reloads(&mut site, &load, 3, |site, i, old| {
        // Alternate the shells, so the script is exercised by each one installed.
        let sh = &shells[i % shells.len()];
        let out = site.run(site.rc(sh, "reload"));
        assert!(
            out.status.success(),
            "{sh:?} rc/lightd reload: {:?}\n{}",
            out.status,
            out.text
        );
        // It returns 0 only once the new generation serves.
        site.assert_new_generation_serving(old);
    });
    end_load(&site, load, spec);

    let sh = shells.last().unwrap();
    let out = site.run(site.rc(sh, "stop"));
    assert!(
        out.status.success(),
        "{sh:?} rc/lightd stop: {:?}\n{}",
        out.status,
        out.text
    );
    assert!(
        !common::pid_alive(last),
        "the last generation {last} still runs after rc stop returned"
    );
    for &pid in site.generations() {
        assert!(
            !common::pid_alive(pid),
            "generation {pid} still running after rc stop returned"
        );
    }
    assert!(
        !site.pid_file().exists(),
        "pid file left behind after rc stop"
    );
}

#[test]
fn sigusr1_reload_under_load() {
    if common::skip_without_direct_exec() {
        return;
    }
    let mut site = Site::new("reload-usr1", GRACE, "");
    // The handoff to a new main pid; the in-place reload is in tests/supervised.rs.
    site.under_systemd();
    site.start_first();
    let spec = LoadSpec::full();
    let load = Load::start(site.addr(), spec);
    load.warm_up(false);
    let last = reloads(&mut site, &load, 4, |_, _, old| {
        send_signal(old, libc::SIGUSR1)
    });
    end_load(&site, load, spec);
    site.stop(last, true);
}

#[test]
fn takeover_by_hand_under_load() {
    let mut site = Site::new("reload-takeover", GRACE, "");
    site.start_first();
    let spec = LoadSpec::full();
    let load = Load::start(site.addr(), spec);
    load.warm_up(false);
    let last = reloads(&mut site, &load, 3, |site, i, old| {
        // Without -D the command returns 0 only once the new process serves.
        let out = site.run(site.lightd(&["-f", &site.conf_str()]));
        assert!(
            out.status.success(),
            "takeover {i}: lightd -f exited {:?}\n{}",
            out.status,
            out.text
        );
        site.assert_new_generation_serving(old);
    });
    end_load(&site, load, spec);
    site.stop(last, true);
}

/// Runs in the forked child before exec: put the listening socket at fd 3 (inheritable), set
/// LISTEN_FDS and LISTEN_PID (whose value is only known here), remove `scrub`, and set
/// NOTIFY_SOCKET to `notify`. setenv is
/// not async-signal-safe in general; it is sound here because glibc resets the malloc locks in
/// the child and nothing in the test process ever holds the environment lock (std's set_var
/// is not used).
fn pass_listen_fd(fd: RawFd, scrub: &[CString], notify: &CString) -> io::Result<()> {
    let mut digits = [0u8; 16];
    // SAFETY: descriptor and environment calls on this (child) process only; the strings are
    // NUL-terminated and outlive the calls.
    unsafe {
        if fd != 3 && libc::dup2(fd, 3) < 0 {
            return Err(io::Error::last_os_error());
        }
        // dup2 clears FD_CLOEXEC, but not when fd was already 3.
        let flags = libc::fcntl(3, libc::F_GETFD);
        if flags < 0 || libc::fcntl(3, libc::F_SETFD, flags & !libc::FD_CLOEXEC) < 0 {
            return Err(io::Error::last_os_error());
        }
        for k in scrub {
            libc::unsetenv(k.as_ptr());
        }
        // The pid in decimal, without allocating.
        let mut n = libc::getpid() as u32;
        let mut i = digits.len() - 1;
        loop {
            i -= 1;
            digits[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        if libc::setenv(c"LISTEN_FDS".as_ptr(), c"1".as_ptr(), 1) != 0
            || libc::setenv(c"LISTEN_PID".as_ptr(), digits[i..].as_ptr().cast(), 1) != 0
            || libc::setenv(c"NOTIFY_SOCKET".as_ptr(), notify.as_ptr(), 1) != 0
        {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[test]
fn socket_activation_then_sigusr1_under_load() {
    if common::skip_without_direct_exec() {
        return;
    }
    // The test owns the listening socket, as systemd would with lightd.socket.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let inode = own_fd_inode(listener.as_raw_fd()).expect("listener inode");
    let mut site = Site::new("reload-sockact", GRACE, "");
    site.set_port(port);
    // systemd socket activation, so SIGUSR1 hands over to a new main pid.
    site.under_systemd();
    let notify = CString::new(std::os::unix::ffi::OsStringExt::into_vec(
        site.notify_socket().unwrap().into_os_string(),
    ))
    .unwrap();

    // No Command::env here: std would apply it after the hook and lose LISTEN_*.
    let mut cmd = site.lightd_same_env(&["-D", "-f", &site.conf_str()]);
    let fd = listener.as_raw_fd();
    let scrub: Vec<CString> = SCRUBBED_ENV
        .iter()
        .map(|k| CString::new(*k).unwrap())
        .collect();
    // SAFETY: pass_listen_fd only touches the child's descriptors and environment.
    unsafe {
        cmd.pre_exec(move || pass_listen_fd(fd, &scrub, &notify));
    }
    let first = site.spawn(cmd);
    site.learn_port(first);
    // lightd serves on the socket it was given: the only listener on the port is ours, and
    // the server holds it.
    assert_eq!(
        listen_inodes(port),
        vec![inode],
        "the socket listening on port {port} is not the one passed in LISTEN_FDS"
    );
    assert!(
        socket_inodes(first).contains(&inode),
        "lightd does not hold the socket passed in LISTEN_FDS"
    );
    site.check_serves();

    // Reloads while the test still holds its copy of the socket.
    let spec = LoadSpec::full();
    let load = Load::start(site.addr(), spec);
    load.warm_up(false);
    let last = reloads(&mut site, &load, 3, |_, _, old| {
        send_signal(old, libc::SIGUSR1)
    });
    assert!(
        socket_inodes(last).contains(&inode),
        "the last generation does not hold the socket passed in LISTEN_FDS"
    );
    end_load(&site, load, spec);
    // The test's copy keeps the port open, so no refusal to check.
    site.stop(last, false);
    drop(listener);
}

#[test]
fn broken_config_reload_fails_and_the_old_generation_keeps_serving() {
    if common::skip_without_direct_exec() {
        return;
    }
    let shells = rc_shells();
    let mut site = Site::new("reload-broken", GRACE, "");
    // The handoff to a new main pid; the in-place reload is in tests/supervised.rs.
    site.under_systemd();
    // Daemonized, so the running generation's stderr is /dev/null and its error log is the
    // only place a reason for a failed reload can go.
    let pid = site.start_daemon();

    let spec = LoadSpec::full();
    let load = Load::start(site.addr(), spec);
    load.warm_up(false);
    let needle = site.write_broken_config();
    let still_in_charge = |site: &Site, what: &str| {
        assert!(common::pid_alive(pid), "{what}: generation {pid} is gone");
        assert_eq!(site.read_pid(), Some(pid), "{what}: the pid file changed");
        assert_eq!(
            procs_with_arg(&site.conf()),
            vec![pid],
            "{what}: processes running this config"
        );
        site.check_listener(pid);
    };

    // The rc script refuses, with the config error.
    let out = site.run(site.rc(&shells[0], "reload"));
    assert!(
        !out.status.success(),
        "rc reload with a broken config exited 0\n{}",
        out.text
    );
    assert!(
        out.text.contains(&needle),
        "rc reload's output does not name {needle}:\n{}",
        out.text
    );
    still_in_charge(&site, "after rc reload");
    load.wait_progress(10, "after the refused rc reload");

    // SIGUSR1: the new generation fails to load, the old one says why in its log.
    let logged = site.errorlog_text().len();
    send_signal(pid, libc::SIGUSR1);
    let said = wait_until(Duration::from_secs(30), || {
        site.errorlog_text()
            .get(logged..)
            .is_some_and(|t| t.contains(&needle))
    });
    assert!(
        said,
        "after SIGUSR1 with a broken config, the error log does not say why (no {needle})\n{}",
        site.dump()
    );
    // The failed child is gone and nothing else took over.
    assert!(
        wait_until(Duration::from_secs(10), || procs_with_arg(&site.conf())
            == vec![pid]),
        "processes running this config after the failed reload: {:?}",
        procs_with_arg(&site.conf())
    );
    still_in_charge(&site, "after SIGUSR1");
    load.wait_progress(10, "after the failed SIGUSR1 reload");

    // The failure left nothing stuck: with the config fixed, the next reload works.
    site.write_config();
    let last = reloads(&mut site, &load, 1, |_, _, old| {
        send_signal(old, libc::SIGUSR1)
    });
    end_load(&site, load, spec);
    site.stop(last, true);
}

#[test]
fn burst_of_sigusr1_gives_one_reload() {
    if common::skip_without_direct_exec() {
        return;
    }
    // Loading this config takes a second, so a reload stays under way long enough for the
    // rest of the burst to arrive during it (a new generation is otherwise ready in ms).
    let mut site = Site::new("reload-burst", GRACE, "include_shell \"sleep 1\"");
    // The handoff to a new main pid; the in-place reload is in tests/supervised.rs.
    site.under_systemd();
    let first = site.start_first();
    let spec = LoadSpec::full();
    let load = Load::start(site.addr(), spec);
    load.warm_up(false);
    let new = reloads(&mut site, &load, 1, |site, _, old| {
        // Signals sent back to back may merge before lightd sees them, so one first, then,
        // once the new process exists (and is still loading its config), nine more in a row.
        send_signal(old, libc::SIGUSR1);
        let conf = site.conf();
        let started = wait_until(READY_TIMEOUT, || {
            procs_with_arg(&conf).iter().any(|p| *p != old)
        });
        assert!(started, "SIGUSR1 started no new process\n{}", site.dump());
        for _ in 0..9 {
            send_signal(old, libc::SIGUSR1);
        }
    });
    // Any extra generation would be a child of the first one, so it exists by now (the first
    // one has exited): exactly one process runs this config, and only two ever listened.
    assert_eq!(
        procs_with_arg(&site.conf()),
        vec![new],
        "processes running this config after a burst of 10 SIGUSR1"
    );
    let listened: std::collections::BTreeSet<i32> = listening_lines(&site.log())
        .into_iter()
        .map(|(p, _)| p)
        .collect();
    assert_eq!(
        listened,
        [first, new].into_iter().collect(),
        "generations that logged `listening on`"
    );
    end_load(&site, load, spec);
    site.stop(new, true);
}

#[test]
fn drain_deadline_stops_the_old_generation() {
    if common::skip_without_direct_exec() {
        return;
    }
    const DEADLINE: u64 = 2;
    let mut site = Site::new("reload-deadline", DEADLINE, "");
    // The handoff to a new main pid; the in-place reload is in tests/supervised.rs.
    site.under_systemd();
    let old = site.start_first();
    // The big download would outlast a 2 s drain and be cut, rightly; leave it out.
    let spec = LoadSpec::no_download();
    let load = Load::start(site.addr(), spec);
    load.warm_up(false);

    // A download that never reads: small receive buffer, so the server stays blocked on it.
    let stream = common::connect_small_rcvbuf(site.addr(), 16 << 10);
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut held = stream;
    held.write_all(&get_request(BIG, false)).unwrap();
    let mut first = [0u8; 1024];
    let n = held.read(&mut first).unwrap();
    assert!(
        first[..n].starts_with(b"HTTP/1.1 200"),
        "the held download did not start: {:?}",
        String::from_utf8_lossy(&first[..n])
    );

    let t0 = Instant::now();
    let before = load.completed();
    send_signal(old, libc::SIGUSR1);
    let new = site.wait_new_generation(old, READY_TIMEOUT);
    let ready = t0.elapsed();
    let slack = Duration::from_secs(4);
    let limit = Duration::from_secs(DEADLINE) + slack;
    let drained = site.wait_gone(old, limit + MARGIN);
    let gone = t0.elapsed();
    assert!(
        drained.is_some_and(|d| d <= limit),
        "old generation {old} was still running {:?} after generation {new} took over; \
         server.graceful-shutdown-timeout = {DEADLINE} is not enforced\n{}",
        drained.unwrap_or(limit + MARGIN),
        site.dump()
    );
    // It did drain: the request in flight kept it alive until the deadline.
    assert!(
        gone >= Duration::from_millis(DEADLINE * 1000 - 200),
        "old generation exited {gone:?} after SIGUSR1 (new one ready after {ready:?}): it \
         did not wait for the request in flight"
    );
    assert_eq!(
        site.read_pid(),
        Some(new),
        "pid file after the old one exited"
    );
    site.check_listener(new);
    assert!(
        load.completed() > before,
        "no request completed during the reload\n{}",
        load.summary()
    );

    // The held download was cut at the deadline, not completed.
    let mut got = n;
    let mut buf = vec![0u8; 256 << 10];
    let end = loop {
        match held.read(&mut buf) {
            Ok(0) => break "EOF".to_string(),
            Ok(k) => got += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break e.to_string(),
        }
    };
    assert!(
        got < BIG_LEN,
        "the held download got {got} bytes and then {end}; it should have been cut short"
    );
    assert!(
        !end.contains("timed out") && !end.contains("temporarily unavailable"),
        "the held download was not closed: {end}"
    );

    load.wait_progress(10, "after the reload");
    end_load(&site, load, spec);
    // The new generation serves the big file in full.
    let mut c = Client::connect(site.addr()).unwrap_or_else(|f| panic!("{}", f.msg));
    if let Err(f) = c.exchange(&get_request(BIG, false), content().body(BIG)) {
        panic!(
            "GET {BIG} from the new generation: {:?}: {}",
            f.fault, f.msg
        );
    }
    site.stop(new, true);
}

/// The datagrams of one reload from `old` to `new`, started by a signal at `t_signal` (µs on
/// CLOCK_MONOTONIC), are in systemd's order: RELOADING=1 with MONOTONIC_USEC from the old
/// generation, then MAINPID=<new> and READY=1 from the new one. And no STOPPING=1: systemd
/// takes STOPPING=1 from any process it accepts notifications from (NotifyAccess=all in
/// rc/lightd.service) as the whole service stopping, so an old generation that sent it on
/// handing over would get the new one stopped too (systemd's service_notify_message).
fn check_reload_notes(notes: &[Note], old: i32, new: i32, t_signal: u64) {
    let show = || {
        notes
            .iter()
            .map(|n| format!("  pid {}: {:?}", n.pid, n.text))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let pos = |pred: &dyn Fn(&Note) -> bool| notes.iter().position(pred);
    let reloading = pos(&|n| n.pid == old && n.has("RELOADING", "1"))
        .unwrap_or_else(|| panic!("no RELOADING=1 from the old generation {old}:\n{}", show()));
    let usec: u64 = notes[reloading]
        .field("MONOTONIC_USEC")
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("RELOADING=1 without a valid MONOTONIC_USEC:\n{}", show()));
    assert!(
        t_signal <= usec && usec <= notes[reloading].at_us,
        "MONOTONIC_USEC={usec} is not between the signal ({t_signal}) and its receipt ({})",
        notes[reloading].at_us
    );
    let ready = pos(&|n| n.pid == new && n.has("READY", "1"))
        .unwrap_or_else(|| panic!("no READY=1 from the new generation {new}:\n{}", show()));
    let mainpid = pos(&|n| n.pid == new && n.has("MAINPID", &new.to_string()))
        .unwrap_or_else(|| panic!("no MAINPID={new} from the new generation:\n{}", show()));
    assert!(
        reloading < ready && mainpid <= ready,
        "expected RELOADING=1 (old), then MAINPID={new} with READY=1 (new):\n{}",
        show()
    );
    assert!(
        pos(&|n| n.has("STOPPING", "1")).is_none(),
        "STOPPING=1 during a reload would make systemd stop the service:\n{}",
        show()
    );
}

#[test]
fn sd_notify_sequence_across_reloads() {
    if common::skip_without_direct_exec() {
        return;
    }
    let mut site = Site::new("reload-notify", GRACE, "");
    let sock = site.dir().join("notify.sock");
    let mut notify = Notify::bind(&sock);
    let mut cmd = site.lightd(&["-D", "-f", &site.conf_str()]);
    cmd.env("NOTIFY_SOCKET", &sock);
    let first = site.spawn(cmd);
    site.learn_port(first);
    assert!(
        notify.wait(READY_TIMEOUT, |ns| ns
            .iter()
            .any(|n| n.pid == first && n.has("READY", "1"))),
        "no READY=1 from the first generation: {:?}",
        notify.notes()
    );

    let spec = LoadSpec::full();
    let load = Load::start(site.addr(), spec);
    load.warm_up(false);
    let mut old = first;
    for _ in 0..2 {
        let mark = notify.notes().len();
        let t_signal = monotonic_us();
        let new = reloads(&mut site, &load, 1, |_, _, old| {
            send_signal(old, libc::SIGUSR1)
        });
        // The old generation has exited: after the marker, all it sent is in.
        notify.sync();
        check_reload_notes(&notify.notes()[mark..], old, new, t_signal);
        old = new;
    }
    end_load(&site, load, spec);
    // A real stop is announced.
    let mark = notify.notes().len();
    site.stop(old, true);
    notify.sync();
    assert!(
        notify.notes()[mark..]
            .iter()
            .any(|n| n.pid == old && n.has("STOPPING", "1")),
        "no STOPPING=1 from the last generation on SIGINT: {:?}",
        &notify.notes()[mark..]
    );
}

/// SIGTERM means stop now, also in the middle of a SIGUSR1 reload: the generation still
/// starting must end too. Left alone it finished loading its config after its parent had
/// gone, and then served on the inherited socket after the service was stopped.
#[test]
fn sigterm_during_a_reload_ends_the_starting_generation() {
    if common::skip_without_direct_exec() {
        return;
    }
    // Loading this config takes 3 s, so a new generation is still starting (running the
    // shell) when SIGTERM comes; its `sh -c` is a grandchild, not a generation.
    let mut site = Site::new("reload-sigterm", GRACE, "include_shell \"sleep 3\"");
    // The handoff to a new main pid; the in-place reload is in tests/supervised.rs.
    site.under_systemd();
    let old = site.start_first();
    let addr = site.addr();
    let port = addr.port();

    send_signal(old, libc::SIGUSR1);
    let mut starting = Vec::new();
    let spawned = wait_until(Duration::from_secs(10), || {
        starting = lightd_children(old);
        !starting.is_empty()
    });
    assert!(
        spawned,
        "SIGUSR1 started no new generation\n{}",
        site.dump()
    );
    assert_eq!(starting.len(), 1, "children of {old}: {starting:?}");
    let new = starting[0];
    site.track(new);

    let t0 = Instant::now();
    send_signal(old, libc::SIGTERM);
    assert!(
        site.wait_gone(old, Duration::from_secs(5)).is_some(),
        "generation {old} still running 5 s after SIGTERM (stop now)\n{}",
        site.dump()
    );
    // A zombie counts as gone: once the old generation exits, nothing may reap its child.
    let ended = wait_until(Duration::from_secs(6), || !common::pid_alive(new));
    assert!(
        ended,
        "the starting generation {new} still runs {:?} after its parent {old} got SIGTERM\n{}",
        t0.elapsed(),
        site.dump()
    );
    assert!(
        !listening_lines(&site.log()).iter().any(|(p, _)| *p == new),
        "the starting generation {new} got as far as listening\n{}",
        site.dump()
    );
    assert!(
        common::wait_refused(addr, Duration::from_secs(5)),
        "{addr} still accepts connections after SIGTERM; listening sockets: {:?}\n{}",
        listen_inodes(port),
        site.dump()
    );
    assert_eq!(
        procs_with_arg(&site.conf()),
        Vec::<i32>::new(),
        "processes running this config after SIGTERM"
    );
}

/// A new instance that finds one running but cannot take over from it (here: a takeover is
/// already under way) must fail start-up. It used to warn and bind a second SO_REUSEPORT
/// socket beside the running one, leaving two servers sharing the port for good.
#[test]
fn takeover_that_cannot_complete_fails_instead_of_binding_beside() {
    let mut site = Site::new("reload-refused", GRACE, "");
    let first = site.start_first();
    let ctl = site.control_socket();
    assert!(
        wait_until(Duration::from_secs(10), || ctl.exists()),
        "no control socket at {}\n{}",
        ctl.display(),
        site.dump()
    );

    // A connection that never says a word: the running instance takes it for a takeover
    // under way (its accept queue is FIFO, so it sees this one first) and refuses others.
    let silent =
        UnixStream::connect(&ctl).unwrap_or_else(|e| panic!("connect {}: {e}", ctl.display()));

    // Well within the takeover client's own 10 s timeout: the refusal is immediate.
    let second = site.lightd(&["-D", "-f", &site.conf_str()]);
    let out = site
        .run_within(second, Duration::from_secs(8))
        .unwrap_or_else(|out| {
            panic!(
                "a second lightd still ran 8 s after it found generation {first} busy with a \
             takeover (serving beside it?); output:\n{}\n{}",
                out.text,
                site.dump()
            )
        });
    assert!(
        !out.status.success(),
        "a second lightd started beside the running one: {:?}\n{}",
        out.status,
        out.text
    );
    let lower = out.text.to_lowercase();
    assert!(
        lower.contains("takeover") || lower.contains("taking over"),
        "the second lightd's error does not mention the takeover:\n{}",
        out.text
    );
    // One socket on the port, the first generation's; nobody else runs this config.
    site.check_listener(first);
    assert_eq!(
        procs_with_arg(&site.conf()),
        vec![first],
        "processes running this config after the failed start"
    );
    site.check_serves();

    // Once the silent caller hangs up, the running instance gives up on it ...
    let logged = site.errorlog_text().len();
    drop(silent);
    let gave_up = wait_until(Duration::from_secs(10), || {
        site.errorlog_text()
            .get(logged..)
            .is_some_and(|t| t.contains("reload failed"))
    });
    assert!(
        gave_up,
        "generation {first} did not notice the silent caller leave\n{}",
        site.dump()
    );
    // ... and the next takeover goes through as usual.
    let third = site.lightd(&["-D", "-f", &site.conf_str()]);
    let third = site.spawn(third);
    let new = site.finish_reload(first);
    assert_eq!(
        new, third,
        "the generation in charge is not the third lightd"
    );
    site.check_serves();
    site.stop(new, true);
}

/// The live processes running this site's config, sorted.
fn site_procs(site: &Site) -> Vec<i32> {
    procs_with_arg(&site.conf())
}

/// Wait for `pid` to have exactly `n` live lightd children; returns them.
fn wait_workers(site: &Site, pid: i32, n: usize) -> Vec<i32> {
    let mut kids = Vec::new();
    let ok = wait_until(READY_TIMEOUT, || {
        kids = lightd_children(pid);
        kids.len() == n
    });
    assert!(
        ok,
        "pid {pid} has workers {kids:?}, want {n}\n{}",
        site.dump()
    );
    kids
}

/// One GET on a new connection, which must be answered 200 with the right body.
fn get_small(site: &Site) {
    let mut s = std::net::TcpStream::connect_timeout(&site.addr(), IO_TIMEOUT).unwrap();
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    write!(
        s,
        "GET {SMALL} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).unwrap();
    let text = String::from_utf8_lossy(&resp);
    assert!(text.starts_with("HTTP/1.1 200 "), "{text}");
    assert!(resp.ends_with(content().body(SMALL)), "wrong body: {text}");
}

/// server.max-worker = 2: a supervisor and two workers serve; SIGUSR1 reloads under the full
/// load lose nothing, and each old supervisor leaves with its workers.
#[test]
fn workers_reload_under_load() {
    if common::skip_without_direct_exec() {
        return;
    }
    let mut site = Site::new("workers-usr1", GRACE, "server.max-worker = 2\n");
    // The handoff to a new main pid; the in-place reload is in tests/supervised.rs.
    site.under_systemd();
    let first = site.start_first();
    wait_workers(&site, first, 2);
    let spec = LoadSpec::full();
    let load = Load::start(site.addr(), spec);
    load.warm_up(false);
    let last = reloads(&mut site, &load, 3, |_, _, old| {
        send_signal(old, libc::SIGUSR1)
    });
    end_load(&site, load, spec);
    let workers = wait_workers(&site, last, 2);
    // Only the last generation remains: its supervisor and its two workers.
    let mut want = workers.clone();
    want.push(last);
    want.sort_unstable();
    assert!(
        wait_until(Duration::from_secs(GRACE) + MARGIN, || site_procs(&site)
            == want),
        "processes with this config: {:?}, want {want:?}\n{}",
        site_procs(&site),
        site.dump()
    );
    site.stop(last, true);
    for w in workers {
        assert!(
            wait_until(MARGIN, || !common::pid_alive(w)),
            "worker {w} outlived its supervisor's stop\n{}",
            site.dump()
        );
    }
}

/// A worker that dies is replaced, and the port keeps serving.
#[test]
fn a_crashed_worker_is_replaced() {
    let mut site = Site::new("workers-crash", GRACE, "server.max-worker = 2\n");
    let pid = site.start_first();
    let before = wait_workers(&site, pid, 2);
    send_signal(before[0], libc::SIGKILL);
    let mut now = Vec::new();
    let ok = wait_until(READY_TIMEOUT, || {
        now = lightd_children(pid);
        now.len() == 2 && !now.contains(&before[0])
    });
    assert!(
        ok,
        "after killing worker {}: workers {now:?}\n{}",
        before[0],
        site.dump()
    );
    for _ in 0..20 {
        get_small(&site);
    }
    site.stop(pid, true);
}

/// SIGINT to the supervisor drains the workers like a single process: a large download in
/// flight completes byte-exact, new connections are refused, everything exits.
#[test]
fn workers_drain_a_download_on_sigint() {
    let mut site = Site::new("workers-drain", GRACE, "server.max-worker = 2\n");
    let pid = site.start_first();
    let workers = wait_workers(&site, pid, 2);
    let mut s = common::connect_small_rcvbuf(site.addr(), 16 * 1024);
    s.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    write!(s, "GET {BIG} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    // Read a little so the download is surely in flight, then stop the supervisor.
    let mut got = vec![0u8; 256 * 1024];
    s.read_exact(&mut got).unwrap();
    send_signal(pid, libc::SIGINT);
    let mut rest = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let head_end = got.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let want_total = head_end + BIG_LEN;
    let mut total = got.len();
    while total < want_total {
        let n = s.read(&mut buf).unwrap();
        assert!(
            n > 0,
            "download cut at {total} of {want_total} bytes\n{}",
            site.dump()
        );
        rest.extend_from_slice(&buf[..n]);
        total += n;
    }
    got.extend_from_slice(&rest);
    assert!(
        got[head_end..] == *content().body(BIG),
        "the download is not byte-exact"
    );
    assert!(
        site.wait_gone(pid, Duration::from_secs(GRACE) + MARGIN)
            .is_some(),
        "supervisor {pid} still running after SIGINT\n{}",
        site.dump()
    );
    for w in workers {
        assert!(!common::pid_alive(w), "worker {w} outlived its supervisor");
    }
}

/// A new generation runs the same load checks as `-tt` and refuses what lightd refuses, before
/// it says ready: a reload (SIGUSR1, or a second `lightd -f`) onto a config whose document
/// root is gone, or that needs a module lightd lacks, fails, and the old generation keeps
/// serving and says why. (It used to start and answer 404 to everything.)
#[test]
fn reload_onto_an_unloadable_config_fails_and_the_old_generation_keeps_serving() {
    if common::skip_without_direct_exec() {
        return;
    }
    let mut site = Site::new("reload-unloadable", GRACE, "");
    // The handoff to a new main pid; the in-place reload is in tests/supervised.rs.
    site.under_systemd();
    let first = site.start_first();
    let good = site.config_text();
    for (extra, needle) in [
        (
            format!(
                "server.document-root := \"{}/gone\"\n",
                site.dir().display()
            ),
            "/gone",
        ),
        (
            "sockproxy.server = ( ( \"host\" => \"127.0.0.1\", \"port\" => 22 ) )\n".to_string(),
            "sockproxy.server needs mod_sockproxy",
        ),
    ] {
        fs::write(site.conf(), format!("{good}{extra}")).unwrap();
        let logged = site.errorlog_text().len();
        send_signal(first, libc::SIGUSR1);
        let said = wait_until(Duration::from_secs(30), || {
            site.errorlog_text()
                .get(logged..)
                .is_some_and(|t| t.contains("reload failed") && t.contains(needle))
        });
        assert!(
            said,
            "SIGUSR1 onto {extra:?}: no 'reload failed ... {needle}'\n{}",
            site.dump()
        );
        let out = site.run(site.lightd(&["-D", "-f", &site.conf_str()]));
        assert!(
            !out.status.success() && out.text.contains(needle),
            "a second lightd on {extra:?} did not fail naming {needle}: {:?}\n{}",
            out.status,
            out.text
        );
        assert!(
            wait_until(Duration::from_secs(10), || procs_with_arg(&site.conf())
                == vec![first]),
            "processes running this config: {:?}",
            procs_with_arg(&site.conf())
        );
        site.check_serves();
    }
    fs::write(site.conf(), &good).unwrap();
    site.stop(first, true);
}
