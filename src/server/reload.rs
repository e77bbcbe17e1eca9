//! Reloads: re-executing our binary with the listening sockets (in place, or as a child that
//! systemd makes the main pid), the control-socket conversation with a new generation started
//! from outside, and the old generation's side of an in-place reload.

use super::*;

/// What SIGUSR1 re-executes: the binary path and arguments this process was started with.
pub struct Reexec {
    pub exe: PathBuf,
    pub args: Vec<OsString>,
}

/// A reload under way: a new generation has our listeners and we wait for it to be ready.
pub(super) enum Reload {
    /// Started by SIGUSR1; reports on a pipe.
    Child {
        child: Child,
        buf: Vec<u8>,
        deadline: Instant,
    },
    /// Started from outside; talks on the control socket.
    Takeover {
        conn: UnixStream,
        buf: Vec<u8>,
        sent: bool,
        deadline: Instant,
    },
}

impl Server {
    /// SIGUSR1: re-execute our binary with the listeners. Under systemd (NOTIFY_SOCKET) as a
    /// child that becomes the main pid once ready, and we drain; otherwise in place, so the pid
    /// a supervisor or pid file knows stays in charge.
    pub(super) fn start_reexec(&mut self) {
        if self.ctx.drain_started.is_some() {
            log::info!("SIGUSR1 ignored: this instance is already stopping");
            return;
        }
        if self.reload.is_some() {
            log::info!("SIGUSR1: a reload is already under way; coalesced into it");
            return;
        }
        if std::env::var_os("NOTIFY_SOCKET").is_none() {
            self.reload_in_place();
            return;
        }
        let fds: Vec<_> = self
            .listeners
            .iter()
            .flatten()
            .map(|l| l.raw_fd())
            .collect();
        handover::notify(&format!(
            "RELOADING=1\nMONOTONIC_USEC={}",
            handover::monotonic_usec()
        ));
        let child = match handover::spawn_generation(&self.reexec.exe, &self.reexec.args, &fds) {
            Ok(c) => c,
            Err(e) => {
                log::error!(
                    "reload failed: starting {}: {}; still serving",
                    self.reexec.exe.display(),
                    e
                );
                handover::notify("READY=1");
                return;
            }
        };
        let fd = child.ready.as_raw_fd();
        // SAFETY: fcntl on the pipe we own; non-blocking so the loop never waits on it.
        unsafe {
            let fl = libc::fcntl(fd, libc::F_GETFL);
            libc::fcntl(fd, libc::F_SETFL, fl | libc::O_NONBLOCK);
        }
        if let Err(e) =
            self.poll
                .registry()
                .register(&mut SourceFd(&fd), CHILD_TOKEN, Interest::READABLE)
        {
            log::error!("reload failed: watching the new generation: {}", e);
            self.kill_child(child.pid);
            return;
        }
        log::info!(
            "SIGUSR1: started new generation (pid {}) with {} listening socket(s)",
            child.pid,
            fds.len()
        );
        self.reload = Some(Reload::Child {
            child,
            buf: Vec::new(),
            deadline: self.ctx.now + RELOAD_TIMEOUT,
        });
    }

    /// SIGUSR1 without systemd: fork the old generation off to finish its connections (a
    /// supervisor's workers already are that), and re-execute this process in place with the
    /// listeners. Returns only in the forked old generation, or if nothing was started.
    pub(super) fn reload_in_place(&mut self) {
        let exe = self.reexec.exe.clone();
        let Ok(path) =
            std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(exe.as_os_str()))
        else {
            log::error!(
                "reload failed: {}: not a valid path; still serving",
                exe.display()
            );
            return;
        };
        // SAFETY: a NUL-terminated path. Checked first because after the fork there is no
        // going back to serving here.
        if unsafe { libc::access(path.as_ptr(), libc::X_OK) } != 0 {
            log::error!(
                "reload failed: {}: {}; still serving",
                exe.display(),
                io::Error::last_os_error()
            );
            return;
        }
        let fds: Vec<RawFd> = self
            .listeners
            .iter()
            .flatten()
            .map(|l| l.raw_fd())
            .collect();
        let mut children: Vec<crate::inplace::OldGen> = self
            .old_gens
            .iter()
            .map(|&pid| crate::inplace::OldGen {
                pid,
                serving: false,
            })
            .collect();
        for l in &mut self.ctx.accesslogs {
            l.flush();
        }
        crate::inplace::hold_signals();
        if self.role == Role::Single {
            // SAFETY: getpid has no preconditions.
            let me = unsafe { libc::getpid() };
            // SAFETY: lightd is single-threaded, so the child is a consistent copy.
            let pid = unsafe { libc::fork() };
            if pid < 0 {
                crate::inplace::release_signals(false);
                log::error!(
                    "reload failed: forking the old generation: {}; still serving",
                    io::Error::last_os_error()
                );
                return;
            }
            if pid == 0 {
                self.become_old_generation(me);
                return;
            }
            children.push(crate::inplace::OldGen {
                pid: pid as u32,
                serving: true,
            });
        } else {
            // The workers serve until the new image has its own.
            children.extend(
                self.workers
                    .iter()
                    .map(|&pid| crate::inplace::OldGen { pid, serving: true }),
            );
        }
        log::info!(
            "SIGUSR1: reloading in place with {} listening socket(s); the old generation \
             serves until this process is ready",
            fds.len()
        );
        let e = crate::inplace::exec(&exe, &self.reexec.args, &fds, &children);
        log::error!("reload failed: executing {}: {}", exe.display(), e);
        // The old generation has the connections now, so this image cannot serve again: it
        // waits as a failed new image would.
        let mut keep = Vec::new();
        for &fd in &fds {
            // SAFETY: duplicating a descriptor that is open in this process.
            let d = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
            if d >= 0 {
                // SAFETY: a fresh descriptor owned by nothing else.
                keep.push(unsafe { OwnedFd::from_raw_fd(d) });
            }
        }
        let ip = crate::inplace::InPlace::new(keep, children, exe, self.reexec.args.clone());
        let code = crate::inplace::wait(ip);
        std::process::exit(code)
    }

    /// In the child forked by an in-place reload: finish what we have, accepting until the new
    /// image is ready (SIGINT) or has died (SIGUSR2, the parent-death signal).
    pub(super) fn become_old_generation(&mut self, parent: libc::pid_t) {
        // SAFETY: plain system calls.
        unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGUSR2) };
        crate::inplace::release_signals(false);
        self.old_generation = true;
        // The pid file and control socket stay with the process the supervisor knows.
        self.handed_over = true;
        if let Some(mut c) = self.control.take() {
            let _ = self
                .poll
                .registry()
                .deregister(&mut SourceFd(&c.listener.as_raw_fd()));
            c.disarm();
        }
        // Their parent is the other process.
        self.old_gens.clear();
        self.zombies.clear();
        // SAFETY: plain system call.
        if unsafe { libc::getppid() } != parent {
            log::warn!("in-place reload: the new image is already gone; draining");
            self.begin_drain();
        }
    }

    pub(super) fn signal_old_gens(&self, sig: libc::c_int) {
        for &pid in &self.old_gens {
            // SAFETY: our children, not yet reaped, so the pids are ours.
            unsafe { libc::kill(pid as libc::pid_t, sig) };
        }
    }

    /// A process connected to the control socket: a new generation asking for the listeners.
    pub(super) fn on_control_accept(&mut self) {
        // Edge-triggered: accept until WouldBlock, or a queued caller would wait for its
        // timeout. Bounded all the same; one takeover at a time, extra callers are refused.
        for _ in 0..4096 {
            let Some(c) = self.control.as_ref() else {
                return;
            };
            let conn = match c.listener.accept() {
                Ok((conn, _)) => conn,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    log::warn!("control socket accept: {}", e);
                    return;
                }
            };
            // SAFETY: plain system call.
            let me = unsafe { libc::geteuid() };
            let uid = handover::peer_uid(&conn);
            if uid != Some(0) && uid != Some(me) {
                log::warn!("control socket: refused a takeover from uid {:?}", uid);
                continue;
            }
            if self.reload.is_some() || self.ctx.drain_started.is_some() {
                log::info!("control socket: refused a takeover: a reload is already under way");
                continue;
            }
            if conn.set_nonblocking(true).is_err() {
                continue;
            }
            if let Err(e) = self.poll.registry().register(
                &mut SourceFd(&conn.as_raw_fd()),
                CONTROL_CONN_TOKEN,
                Interest::READABLE,
            ) {
                log::warn!("control socket: {}", e);
                continue;
            }
            self.reload = Some(Reload::Takeover {
                conn,
                buf: Vec::new(),
                sent: false,
                deadline: self.ctx.now + RELOAD_TIMEOUT,
            });
            self.on_reload_progress();
        }
    }

    /// Read what the new generation said (pipe or control connection) and act on it.
    pub(super) fn on_reload_progress(&mut self) {
        let mut eof = false;
        let mut chunk = [0u8; 128];
        {
            let (src, buf): (&mut dyn Read, &mut Vec<u8>) = match self.reload.as_mut() {
                Some(Reload::Child { child, buf, .. }) => (&mut child.ready, buf),
                Some(Reload::Takeover { conn, buf, .. }) => (conn, buf),
                None => return,
            };
            loop {
                match src.read(&mut chunk) {
                    Ok(0) => {
                        eof = true;
                        break;
                    }
                    Ok(n) => {
                        buf.extend_from_slice(&chunk[..n]);
                        if buf.len() > CONTROL_MSG_MAX {
                            eof = true;
                            break;
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(_) => {
                        eof = true;
                        break;
                    }
                }
            }
        }

        // Act on each complete line.
        loop {
            let line = match self.reload.as_mut() {
                Some(Reload::Child { buf, .. }) | Some(Reload::Takeover { buf, .. }) => {
                    match buf.iter().position(|b| *b == b'\n') {
                        Some(i) => {
                            let line: Vec<u8> = buf.drain(..=i).collect();
                            String::from_utf8_lossy(&line).trim().to_string()
                        }
                        None => break,
                    }
                }
                None => return,
            };
            if self.on_reload_line(&line) {
                return;
            }
        }
        if eof {
            let why = match &self.reload {
                Some(Reload::Child { child, .. }) => {
                    format!(
                        "the new generation (pid {}) exited before it was ready",
                        child.pid
                    )
                }
                _ => "the new generation disconnected before it was ready".to_string(),
            };
            self.abandon_reload(&why);
        }
    }

    /// Returns true when the reload is over (either way).
    pub(super) fn on_reload_line(&mut self, line: &str) -> bool {
        let kind_child = matches!(self.reload, Some(Reload::Child { .. }));
        if kind_child {
            if line == "READY" {
                let pid = match &self.reload {
                    Some(Reload::Child { child, .. }) => child.pid,
                    _ => 0,
                };
                self.complete_reload(pid);
                return true;
            }
            if let Some(msg) = line.strip_prefix("ERROR ") {
                let why = format!("the new generation failed: {}", msg);
                self.abandon_reload(&why);
                return true;
            }
            return false;
        }
        // The control-socket conversation.
        if line == "TAKEOVER 1" {
            let fds: Vec<_> = self
                .listeners
                .iter()
                .flatten()
                .map(|l| (l.raw_fd(), l.local))
                .collect();
            let res = match &self.reload {
                Some(Reload::Takeover { conn, .. }) => handover::send_listeners(conn, &fds),
                _ => return true,
            };
            if let Err(e) = res {
                self.abandon_reload(&format!("sending the listening sockets: {}", e));
                return true;
            }
            if let Some(Reload::Takeover { sent, .. }) = self.reload.as_mut() {
                *sent = true;
            }
            handover::notify(&format!(
                "RELOADING=1\nMONOTONIC_USEC={}",
                handover::monotonic_usec()
            ));
            log::info!(
                "control socket: handed {} listening socket(s) to a new generation",
                fds.len()
            );
            return false;
        }
        if let Some(pid) = line.strip_prefix("READY ") {
            let sent = matches!(self.reload, Some(Reload::Takeover { sent: true, .. }));
            if let (true, Ok(pid)) = (sent, pid.parse::<u32>()) {
                if let Some(Reload::Takeover { conn, .. }) = self.reload.as_mut() {
                    // The acknowledgement lets the new generation know we heard it.
                    let _ = conn.write_all(b"OK\n");
                }
                self.complete_reload(pid);
                return true;
            }
        }
        self.abandon_reload(&format!(
            "unexpected message on the control socket: {:?}",
            line
        ));
        true
    }

    /// The new generation serves: hand systemd the new main pid and drain like SIGINT.
    pub(super) fn complete_reload(&mut self, pid: u32) {
        self.drop_reload_source();
        log::info!("reload: new generation (pid {}) is ready; draining", pid);
        // From the current main pid this is accepted even with NotifyAccess=main. No
        // STOPPING=1 here: the service is not stopping, only this process is.
        handover::notify(&format!("MAINPID={}\nREADY=1", pid));
        self.handed_over = true;
        self.begin_drain();
    }

    /// The reload did not happen: keep serving, say why, clean up the attempt.
    pub(super) fn abandon_reload(&mut self, why: &str) {
        let Some(child) = self.drop_reload_source() else {
            return;
        };
        if let Some(pid) = child {
            self.kill_child(pid);
        }
        if self.ctx.drain_started.is_none() {
            log::error!("reload failed: {}; still serving", why);
            handover::notify("READY=1");
        }
    }

    /// End the reload's conversation. None if there was no reload; otherwise the pid of the
    /// child generation, if we started one.
    pub(super) fn drop_reload_source(&mut self) -> Option<Option<u32>> {
        let (fd, pid) = match self.reload.as_ref()? {
            Reload::Child { child, .. } => (child.ready.as_raw_fd(), Some(child.pid)),
            Reload::Takeover { conn, .. } => (conn.as_raw_fd(), None),
        };
        let _ = self.poll.registry().deregister(&mut SourceFd(&fd));
        self.reload = None;
        Some(pid)
    }

    /// End a generation we started that will not take over, and remember to reap it.
    pub(super) fn kill_child(&mut self, pid: u32) {
        // SAFETY: signalling a child we started and have not reaped, so the pid is ours.
        unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
        self.zombies.push(pid);
    }

    /// Reload deadline, and reaping of failed generations.
    pub(super) fn check_reload(&mut self) {
        let late = match &self.reload {
            Some(Reload::Child { deadline, .. }) | Some(Reload::Takeover { deadline, .. }) => {
                self.ctx.now >= *deadline
            }
            None => false,
        };
        if late {
            self.abandon_reload(&format!(
                "the new generation was not ready within {} s",
                RELOAD_TIMEOUT.as_secs()
            ));
        }
        self.check_workers();
        self.old_gens.retain(|&pid| {
            let mut status = 0;
            // SAFETY: waiting without blocking for a child of ours.
            let r = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, libc::WNOHANG) };
            r == 0
        });
        self.zombies.retain(|&pid| {
            let mut status = 0;
            // SAFETY: waiting without blocking for a child of ours.
            let r = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, libc::WNOHANG) };
            r == 0
        });
    }
}
