//! `server.max-worker`: the supervisor's side (forking, reaping and replacing workers, passing
//! signals on) and a worker's life.

use super::*;

impl Server {
    /// Start workers up to the configured number (supervisor only).
    pub(super) fn spawn_workers(&mut self) {
        let Role::Supervisor { workers } = self.role else {
            return;
        };
        while self.workers.len() < workers && self.ctx.drain_started.is_none() {
            match self.spawn_worker() {
                Some(pid) => self.workers.push(pid),
                None => break,
            }
        }
    }

    /// Fork one worker: it builds its own loop on the same listening sockets and never returns
    /// here.
    pub(super) fn spawn_worker(&mut self) -> Option<u32> {
        // SAFETY: getpid has no preconditions.
        let parent = unsafe { libc::getpid() };
        // SAFETY: lightd is single-threaded, so the child is a consistent copy.
        let pid = unsafe { libc::fork() };
        if pid < 0 {
            log::error!("starting a worker: {}", io::Error::last_os_error());
            return None;
        }
        if pid > 0 {
            log::info!("started worker pid {}", pid);
            return Some(pid as u32);
        }
        // The worker must not outlive the supervisor: when it dies, the worker stops accepting
        // and finishes what it has (SIGUSR2), so that the supervisor's restart can bind.
        // SAFETY: plain system calls.
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGUSR2);
            if libc::getppid() != parent {
                libc::_exit(0);
            }
        }
        // The worker owns its copies of the listening sockets outright, so that its drain
        // closes every one of them. The control socket is the supervisor's: a copy held here
        // would keep it answering no one after the supervisor died.
        let listeners: Vec<Listener> = self.listeners.iter_mut().filter_map(Option::take).collect();
        if let Some(mut c) = self.control.take() {
            c.disarm();
        }
        let code = match worker_main(self.ctx.cfg.clone(), listeners) {
            Ok(()) => 0,
            Err(e) => {
                log::error!("worker: {}", e);
                1
            }
        };
        // Skip every destructor of the supervisor's state copied into this process (the pid
        // file and control socket belong to the supervisor).
        std::process::exit(code)
    }

    pub(super) fn signal_workers(&self, sig: libc::c_int) {
        for &pid in &self.workers {
            // SAFETY: signalling our own children, not yet reaped, so the pids are ours.
            unsafe { libc::kill(pid as libc::pid_t, sig) };
        }
    }

    /// Tell workers to stop at once and wait for them, bounded.
    pub(super) fn stop_workers_now(&mut self) {
        if self.workers.is_empty() {
            return;
        }
        self.signal_workers(libc::SIGTERM);
        self.reap_workers_blocking(WORKER_STOP_WAIT);
        if !self.workers.is_empty() {
            self.signal_workers(libc::SIGKILL);
            self.reap_workers_blocking(Duration::from_secs(1));
        }
    }

    pub(super) fn reap_workers_blocking(&mut self, limit: Duration) {
        let until = Instant::now() + limit;
        while !self.workers.is_empty() && Instant::now() < until {
            self.reap_workers();
            if !self.workers.is_empty() {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// Reap exited workers; returns how many ended.
    pub(super) fn reap_workers(&mut self) -> usize {
        let before = self.workers.len();
        self.workers.retain(|&pid| {
            let mut status = 0;
            // SAFETY: waiting without blocking for a child of ours.
            let r = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, libc::WNOHANG) };
            if r == 0 {
                return true;
            }
            if libc::WIFSIGNALED(status)
                || (libc::WIFEXITED(status) && libc::WEXITSTATUS(status) != 0)
            {
                log::warn!("worker pid {} ended abnormally (status {:#x})", pid, status);
            }
            false
        });
        before - self.workers.len()
    }

    /// Reap workers, and replace those that ended while we are not stopping.
    pub(super) fn check_workers(&mut self) {
        if self.workers.is_empty() && !matches!(self.role, Role::Supervisor { .. }) {
            return;
        }
        let ended = self.reap_workers();
        if ended > 0 && self.ctx.drain_started.is_none() {
            log::warn!("{} worker(s) ended; starting replacements", ended);
            self.spawn_workers();
        }
    }

    /// Mark this process as a worker (set in the forked child).
    pub(super) fn become_worker(&mut self) {
        self.role = Role::Worker;
    }
}

/// A worker's life: its own loop on copies of the supervisor's listening sockets.
pub(super) fn worker_main(cfg: Config, listeners: Vec<Listener>) -> io::Result<()> {
    let reexec = Reexec {
        exe: PathBuf::new(),
        args: Vec::new(),
    };
    let mut server = Server::new(cfg, listeners, None, reexec)?;
    server.become_worker();
    server.run().map(|_| ())
}
