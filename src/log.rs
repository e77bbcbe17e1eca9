//! The error log (the `log` facade through env_logger, to stderr or server.errorlog) and the
//! access log (lighttpd's accesslog.format, buffered and flushed once per loop turn).

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::http::date;

/// Where error-log lines go: stderr until a file is configured. A Mutex because `log` needs
/// `Sync`; there is one thread, so it is never contended.
static ERRORLOG: Mutex<Option<(PathBuf, File)>> = Mutex::new(None);

/// The env_logger target: writes each formatted record to the current error log.
struct ErrorLogTarget;

impl Write for ErrorLogTarget {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut guard = ERRORLOG.lock().unwrap_or_else(|e| e.into_inner());
        match guard.as_mut() {
            Some((_, f)) => f.write_all(buf).map(|_| buf.len()),
            None => io::stderr().write_all(buf).map(|_| buf.len()),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Install the logger. RUST_LOG is honoured; without it lightd logs at info.
pub fn init() {
    let mut b = env_logger::Builder::new();
    b.filter_level(log::LevelFilter::Info);
    if let Ok(spec) = std::env::var("RUST_LOG") {
        b.parse_filters(&spec);
    }
    b.target(env_logger::Target::Pipe(Box::new(ErrorLogTarget)));
    b.format(|buf, rec| {
        let mut ts = [0u8; 29];
        date::format(now_secs(), &mut ts);
        writeln!(
            buf,
            "{}: lightd[{}] {}: {}",
            String::from_utf8_lossy(&ts),
            std::process::id(),
            rec.level(),
            rec.args()
        )
    });
    // A second init (tests calling run twice) keeps the first logger; nothing to do then.
    let _ = b.try_init();
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

/// One piece of a compiled accesslog.format.
#[derive(Debug, Clone, PartialEq)]
pub enum Piece {
    Lit(String),
    RemoteHost,     // %h %a
    Dash,           // %l %u (no identd, no auth yet)
    Time,           // %t
    RequestLine,    // %r
    Status,         // %s %>s
    BytesClf,       // %b ("-" for zero)
    BytesOut,       // %O
    Header(String), // %{Name}i
    Host,           // %V %v
    Path,           // %U
    Query,          // %q
    Method,         // %m
    Protocol,       // %H
    DurationSecs,   // %T
    DurationMicros, // %D
    LocalPort,      // %p
}

/// Compile a lighttpd/Apache-style format string. Unknown directives log "-", as lighttpd's
/// unsupported ones do, rather than refusing to start.
pub fn compile_format(fmt: &str) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut lit = String::new();
    let mut chars = fmt.chars().peekable();
    while let Some(c) = chars.next() {
        if c != '%' {
            lit.push(c);
            continue;
        }
        let mut name = None;
        if chars.peek() == Some(&'{') {
            chars.next();
            let mut n = String::new();
            for c in chars.by_ref() {
                if c == '}' {
                    break;
                }
                n.push(c);
            }
            name = Some(n);
        }
        if chars.peek() == Some(&'>') {
            chars.next();
        }
        let piece = match chars.next() {
            Some('%') => {
                lit.push('%');
                continue;
            }
            Some('h') | Some('a') => Piece::RemoteHost,
            Some('l') | Some('u') => Piece::Dash,
            Some('t') => Piece::Time,
            Some('r') => Piece::RequestLine,
            Some('s') => Piece::Status,
            Some('b') => Piece::BytesClf,
            Some('O') => Piece::BytesOut,
            Some('i') => Piece::Header(name.unwrap_or_default()),
            Some('V') | Some('v') => Piece::Host,
            Some('U') => Piece::Path,
            Some('q') => Piece::Query,
            Some('m') => Piece::Method,
            Some('H') => Piece::Protocol,
            Some('T') => Piece::DurationSecs,
            Some('D') => Piece::DurationMicros,
            Some('p') => Piece::LocalPort,
            Some(_) | None => Piece::Dash,
        };
        if !lit.is_empty() {
            out.push(Piece::Lit(std::mem::take(&mut lit)));
        }
        out.push(piece);
    }
    if !lit.is_empty() {
        out.push(Piece::Lit(lit));
    }
    out
}

/// An open access log: its path (for reopening), its compiled format and a write buffer.
pub struct AccessLog {
    pub path: PathBuf,
    pub format: String,
    pub pieces: Vec<Piece>,
    file: File,
    buf: Vec<u8>,
}

/// Past this much buffered text the access log is written out at once.
const ACCESSLOG_FLUSH_AT: usize = 16 * 1024;

impl AccessLog {
    pub fn open(path: &Path, format: &str) -> io::Result<AccessLog> {
        Ok(AccessLog {
            path: path.to_path_buf(),
            format: format.to_string(),
            pieces: compile_format(format),
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
        if let Err(e) = self.file.write_all(&self.buf) {
            log::error!("writing access log {}: {}", self.path.display(), e);
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

/// Append the Common Log Format time, "[06/Nov/1994:08:49:37 +0000]", built from the HTTP
/// date's fixed positions ("Sun, 06 Nov 1994 08:49:37 GMT").
pub fn clf_time(secs: u64, out: &mut Vec<u8>) {
    let mut d = [0u8; 29];
    date::format(secs, &mut d);
    out.push(b'[');
    out.extend_from_slice(&d[5..7]);
    out.push(b'/');
    out.extend_from_slice(&d[8..11]);
    out.push(b'/');
    out.extend_from_slice(&d[12..16]);
    out.push(b':');
    out.extend_from_slice(&d[17..25]);
    out.extend_from_slice(b" +0000]");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn combined_format_compiles() {
        let p = compile_format(r#"%h %l %u %t "%r" %>s %b "%{Referer}i" "%{User-Agent}i""#);
        assert_eq!(p[0], Piece::RemoteHost);
        assert!(p.contains(&Piece::Status));
        assert!(p.contains(&Piece::Header("User-Agent".into())));
        assert_eq!(p.last(), Some(&Piece::Lit("\"".into())));
    }

    #[test]
    fn percent_escape_and_unknown() {
        assert_eq!(
            compile_format("100%% %Z"),
            vec![Piece::Lit("100% ".into()), Piece::Dash]
        );
    }
}
