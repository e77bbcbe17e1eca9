//! The error log (the `log` facade, to stderr or server.errorlog, filtered by RUST_LOG) and the
//! access log files (lines formatted by mod_accesslog, buffered and flushed once per loop
//! turn).
//!
//! Both keep their files whole: a line goes out in one write, and a write the disk cut short
//! (ENOSPC) is taken back to the last complete line, so a full disk never leaves a torn
//! line. The error log also rate-limits each place in the code that logs, so a condition
//! that repeats on every loop turn (a full disk, no descriptors left) writes a few lines and
//! then "repeated N times", not millions of lines.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::http::date;

/// Where error-log lines go: stderr until a file is configured. A Mutex because `log` needs
/// `Sync`; there is one thread, so it is never contended.
static ERRORLOG: Mutex<Option<(PathBuf, File)>> = Mutex::new(None);

/// Write formatted records to the current error log: server.errorlog once it is open, else
/// stderr (unless `file_only`).
fn emit(buf: &[u8], file_only: bool) {
    let mut guard = ERRORLOG.lock().unwrap_or_else(|e| e.into_inner());
    match guard.as_mut() {
        // A failure to write the error log has nowhere to be reported; the record is lost
        // whole rather than in part.
        Some((_, f)) => {
            let _ = append_whole(f, buf);
        }
        None if !file_only => {
            let _ = io::stderr().write_all(buf);
        }
        None => {}
    }
}

/// Append `buf` (whole lines) to a file opened for appending. If the write is cut short (a
/// full disk), the partial tail is removed again, back to the last complete line of `buf`
/// that made it. On failure, returns how many bytes of `buf` are in the file, and why.
pub(crate) fn append_whole(f: &mut File, buf: &[u8]) -> Result<(), (usize, io::Error)> {
    let mut done = 0;
    let err = loop {
        match f.write(&buf[done..]) {
            Ok(0) => break io::Error::from(io::ErrorKind::WriteZero),
            Ok(n) => {
                done += n;
                if done == buf.len() {
                    return Ok(());
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => break e,
        }
    };
    let keep = buf[..done]
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    if done > keep {
        // With O_APPEND the offset is now the end of what we wrote. Take the torn tail back
        // only if nobody (another generation sharing the log) appended after it.
        let fd = f.as_raw_fd();
        // SAFETY: lseek and fstat on a descriptor we own, with a valid stat buffer.
        unsafe {
            let end = libc::lseek(fd, 0, libc::SEEK_CUR);
            let mut st: libc::stat = std::mem::zeroed();
            if end >= 0 && libc::fstat(fd, &mut st) == 0 && st.st_size == end {
                libc::ftruncate(fd, end - (done - keep) as libc::off_t);
            }
        }
    }
    Err((keep, err))
}

/// Each place that logs may write this many records per window before the rest are counted
/// instead of written.
const BURST: u32 = 5;
/// The rate-limiting window.
const WINDOW: Duration = Duration::from_secs(10);
/// Places tracked at once; more than this (not expected) share the oldest slot.
const SITES: usize = 64;

/// Rate limiting per logging call site (source file and line).
struct Site {
    file: &'static str,
    line: u32,
    level: log::Level,
    since: Instant,
    written: u32,
    suppressed: u64,
    /// The text of the latest suppressed record, for the summary.
    last: String,
}

/// The longest suppressed message text kept for a summary.
const LAST_MAX: usize = 256;

static SITES_STATE: Mutex<Vec<Site>> = Mutex::new(Vec::new());

/// Whether a record from this call site may be written now. Summaries of windows that ended
/// are written first.
fn admit(file: &'static str, line: u32, level: log::Level, text: impl FnOnce() -> String) -> bool {
    let now = Instant::now();
    let mut sites = SITES_STATE.lock().unwrap_or_else(|e| e.into_inner());
    let i = match sites.iter().position(|s| s.file == file && s.line == line) {
        Some(i) => i,
        None => {
            if sites.len() >= SITES {
                // Reuse the slot whose window started longest ago, reporting what it held.
                if let Some(j) = (0..sites.len()).min_by_key(|&j| sites[j].since) {
                    let old = sites.swap_remove(j);
                    summarize(&old);
                }
            }
            sites.push(Site {
                file,
                line,
                level,
                since: now,
                written: 0,
                suppressed: 0,
                last: String::new(),
            });
            sites.len() - 1
        }
    };
    let s = &mut sites[i];
    if now.duration_since(s.since) >= WINDOW {
        summarize(s);
        s.since = now;
        s.written = 0;
        s.suppressed = 0;
        s.last.clear();
    }
    if s.written < BURST {
        s.written += 1;
        true
    } else {
        s.suppressed += 1;
        s.last = text();
        if s.last.len() > LAST_MAX {
            let mut cut = LAST_MAX;
            while !s.last.is_char_boundary(cut) {
                cut -= 1;
            }
            s.last.truncate(cut);
        }
        false
    }
}

fn summarize(s: &Site) {
    if s.suppressed > 0 {
        write_record(
            s.level,
            &format!(
                "{} similar message(s) suppressed in {} s (each place in lightd logs at most \
                 {} per {} s); the last: {}",
                s.suppressed,
                WINDOW.as_secs(),
                BURST,
                WINDOW.as_secs(),
                s.last
            ),
            false,
        );
    }
}

/// Report the counts of windows that have ended (called from the loop on its timer), so a
/// flood that stopped is still accounted for. Returns whether some window is still counting.
pub fn flush_suppressed() -> bool {
    let now = Instant::now();
    let mut sites = SITES_STATE.lock().unwrap_or_else(|e| e.into_inner());
    sites.retain(|s| {
        if now.duration_since(s.since) < WINDOW {
            return true;
        }
        summarize(s);
        false
    });
    sites.iter().any(|s| s.suppressed > 0)
}

/// Format one record the way the logger does, into `out`.
fn format_record(out: &mut Vec<u8>, level: log::Level, msg: &str) {
    for line in msg.lines() {
        format_line(out, level, format_args!("{line}"));
    }
}

/// One error-log line: "date: lightd[pid] LEVEL: text".
fn format_line(out: &mut Vec<u8>, level: log::Level, text: std::fmt::Arguments) {
    let mut ts = [0u8; 29];
    date::format(now_secs(), &mut ts);
    let _ = writeln!(
        out,
        "{}: lightd[{}] {}: {}",
        String::from_utf8_lossy(&ts),
        std::process::id(),
        level,
        text
    );
}

/// Write a record directly: to the error log file, or (unless `file_only`) to stderr when
/// there is none.
fn write_record(level: log::Level, msg: &str, file_only: bool) {
    let mut buf = Vec::with_capacity(128);
    format_record(&mut buf, level, msg);
    emit(&buf, file_only);
}

/// Write `msg` (one record per line) to server.errorlog if it is open, and nowhere else: for
/// what has already been printed on stderr.
pub fn to_errorlog_file(level: log::Level, msg: &str) {
    write_record(level, msg, true);
}

/// The `log` facade's logger: formats, rate-limits and writes lightd's records.
struct Logger;

impl log::Log for Logger {
    fn enabled(&self, meta: &log::Metadata) -> bool {
        meta.level() <= log::max_level()
    }

    fn log(&self, rec: &log::Record) {
        if !self.enabled(rec.metadata()) {
            return;
        }
        if let Some(file) = rec.file_static() {
            if !admit(file, rec.line().unwrap_or(0), rec.level(), || {
                rec.args().to_string()
            }) {
                return;
            }
        }
        let mut buf = Vec::with_capacity(128);
        format_line(&mut buf, rec.level(), *rec.args());
        emit(&buf, false);
    }

    fn flush(&self) {}
}

static LOGGER: Logger = Logger;

/// RUST_LOG, read the way env_logger reads it as far as lightd's own records go:
/// comma-separated directives, each a level (`debug`), a target (`lightd`, meaning all), or
/// `target=level`; the last one that applies to lightd wins. Info without it.
fn level_from(spec: &str) -> log::LevelFilter {
    let ours = |t: &str| t == "lightd" || t.starts_with("lightd::");
    let mut level = log::LevelFilter::Info;
    for d in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        match d.split_once('=') {
            Some((t, l)) if ours(t.trim()) => {
                if let Ok(l) = l.trim().parse() {
                    level = l;
                }
            }
            Some(_) => {}
            None => {
                if let Ok(l) = d.parse() {
                    level = l;
                } else if ours(d) {
                    level = log::LevelFilter::Trace;
                }
            }
        }
    }
    level
}

/// Install the logger. RUST_LOG is honoured; without it lightd logs at info.
pub fn init() {
    let level = std::env::var("RUST_LOG").map_or(log::LevelFilter::Info, |s| level_from(&s));
    // A second init (tests calling run twice) keeps the first logger; nothing to do then.
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(level);
    }
}

fn open_append(path: &Path) -> io::Result<File> {
    OpenOptions::new().create(true).append(true).open(path)
}

/// Send the error log to `path` from now on.
pub fn set_errorlog(path: &Path) -> io::Result<()> {
    let f = open_append(path).map_err(|e| annotate(e, path))?;
    *ERRORLOG.lock().unwrap_or_else(|e| e.into_inner()) = Some((path.to_path_buf(), f));
    Ok(())
}

/// The file the error log goes to, if not stderr.
pub fn errorlog_path() -> Option<PathBuf> {
    let guard = ERRORLOG.lock().unwrap_or_else(|e| e.into_inner());
    guard.as_ref().map(|(p, _)| p.clone())
}

/// Whether the error log goes to a file yet.
pub fn has_errorlog() -> bool {
    ERRORLOG.lock().unwrap_or_else(|e| e.into_inner()).is_some()
}

/// Reopen the error log file (SIGHUP, after logrotate moved it away).
pub fn reopen_errorlog() {
    let mut guard = ERRORLOG.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((path, file)) = guard.as_mut() {
        match open_append(path) {
            Ok(f) => *file = f,
            // Keep writing to the old file rather than losing lines.
            Err(e) => {
                let msg = format!("reopening error log {}: {}", path.display(), e);
                drop(guard);
                log::error!("{}", msg);
            }
        }
    }
}

fn annotate(e: io::Error, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{}: {}", path.display(), e))
}

pub fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// An open access log: its path (for reopening) and a write buffer. Lines come formatted
/// (mod_accesslog's formats are per request; several may write to one file).
pub struct AccessLog {
    pub path: PathBuf,
    file: File,
    buf: Vec<u8>,
}

/// Past this much buffered text the access log is written out at once.
const ACCESSLOG_FLUSH_AT: usize = 16 * 1024;

impl AccessLog {
    pub fn open(path: &Path) -> io::Result<AccessLog> {
        Ok(AccessLog {
            path: path.to_path_buf(),
            file: open_append(path).map_err(|e| annotate(e, path))?,
            buf: Vec::with_capacity(ACCESSLOG_FLUSH_AT),
        })
    }

    /// The buffer to append one line to; call [`AccessLog::line_done`] afterwards.
    pub fn buf(&mut self) -> &mut Vec<u8> {
        &mut self.buf
    }

    pub fn line_done(&mut self) {
        if self.buf.len() >= ACCESSLOG_FLUSH_AT {
            self.flush();
        }
    }

    pub fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        if let Err((kept, e)) = append_whole(&mut self.file, &self.buf) {
            // Whatever did not fit is dropped, whole lines only: buffering it until the disk
            // has room would grow without bound.
            let lost = self.buf[kept..].iter().filter(|&&b| b == b'\n').count();
            log::error!(
                "writing access log {}: {} ({} line(s) lost)",
                self.path.display(),
                e,
                lost
            );
        }
        self.buf.clear();
    }

    pub fn reopen(&mut self) {
        self.flush();
        match open_append(&self.path) {
            Ok(f) => self.file = f,
            Err(e) => log::error!("reopening access log {}: {}", self.path.display(), e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rust_log_levels() {
        use log::LevelFilter::*;
        for (spec, want) in [
            ("", Info),
            ("debug", Debug),
            ("warn", Warn),
            ("lightd", Trace),
            ("lightd=debug", Debug),
            ("lightd::conn=trace", Trace),
            ("mio=trace", Info),
            ("error,lightd=debug", Debug),
            ("lightd=debug,off", Off),
            ("nonsense", Info),
        ] {
            assert_eq!(level_from(spec), want, "{spec:?}");
        }
    }
}
