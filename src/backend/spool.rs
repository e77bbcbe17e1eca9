//! A request body on its way to a backend: a FIFO of bytes that stays in memory up to a limit
//! and goes on in an anonymous temp file beyond it, so that memory stays bounded whatever the
//! body's size (a backend that needs the whole body before it starts, such as a CGI script
//! given CONTENT_LENGTH for a chunked upload, or one that reads slower than the client sends).
//!
//! The temp file is made as lighttpd makes its upload files (chunk.c): in the first
//! `server.upload-dirs` directory that works (TMPDIR, else /var/tmp, when none is configured),
//! moving on to the next one when a disk is full. It has no name from the start where the
//! filesystem has O_TMPFILE, and otherwise is made by mkostemp (mode 0600) and unlinked at
//! once: nothing is left behind if lightd is killed. Bytes already sent on are punched out of
//! the file as it goes, so a long upload streamed through a slow backend does not hold its
//! whole length on a small tmpfs.

use std::collections::VecDeque;
use std::ffi::CString;
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// At most this much of the file is read into memory at a time.
const READ_MAX: usize = 16 * 1024;

/// Space already sent on is given back to the filesystem in steps of this size.
const PUNCH_STEP: u64 = 1 << 20;

/// A request body FIFO. See the module doc.
#[derive(Debug)]
pub struct Spool {
    mem_limit: usize,
    dirs: Rc<[PathBuf]>,
    /// The directory the next temp file is tried in first: it only moves forward (past a
    /// full disk), as lighttpd's does.
    dir_next: usize,
    /// The front of the FIFO: `mem[mem_off..]`. Never more than `mem_limit` bytes, capacity
    /// included.
    mem: Vec<u8>,
    mem_off: usize,
    /// What follows, oldest first. Only the last one is written to; there is more than one
    /// only after a full disk sent the rest to another directory.
    files: VecDeque<Segment>,
    /// Bytes read from the front file: `buf[buf_off..]` are at its `read` offset.
    buf: Vec<u8>,
    buf_off: usize,
    pushed: u64,
    taken: u64,
}

#[derive(Debug)]
struct Segment {
    file: File,
    /// The offset of the first byte not yet taken.
    read: u64,
    /// The end of what was written.
    end: u64,
    /// Everything before this has been punched out (or punching failed: then u64::MAX).
    punched: u64,
}

impl Spool {
    /// A spool keeping up to `mem_limit` bytes in memory, then using a temp file in the
    /// first usable directory of `dirs`.
    pub fn new(mem_limit: usize, dirs: Rc<[PathBuf]>) -> Spool {
        Spool {
            mem_limit,
            dirs,
            dir_next: 0,
            mem: Vec::new(),
            mem_off: 0,
            files: VecDeque::new(),
            buf: Vec::new(),
            buf_off: 0,
            pushed: 0,
            taken: 0,
        }
    }

    /// Bytes pushed and not yet taken.
    pub fn len(&self) -> u64 {
        self.pushed - self.taken
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Bytes pushed since the start.
    pub fn total(&self) -> u64 {
        self.pushed
    }

    /// Whether part of the body is in a temp file now.
    pub fn on_disk(&self) -> bool {
        !self.files.is_empty()
    }

    /// Append `data`. An error (no usable directory, every disk full) leaves what was pushed
    /// before, and whatever part of `data` was written, in place; the caller answers the
    /// request with an error rather than going on with a hole in the body.
    pub fn push(&mut self, data: &[u8]) -> io::Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let pending = self.mem.len() - self.mem_off;
        if self.files.is_empty() && pending + data.len() <= self.mem_limit {
            self.push_mem(data);
            return Ok(());
        }
        self.push_file(data)
    }

    fn push_mem(&mut self, data: &[u8]) {
        if self.mem.len() + data.len() > self.mem_limit {
            // What was taken makes room (at most a memmove of mem_limit bytes, once per
            // mem_limit bytes taken).
            self.mem.drain(..self.mem_off);
            self.mem_off = 0;
        }
        let need = self.mem.len() + data.len();
        if need > self.mem.capacity() {
            // Grow by doubling, but never past the limit: a 64 KiB limit must not become a
            // 128 KiB allocation.
            let want = need
                .max(self.mem.capacity() * 2)
                .min(self.mem_limit)
                .max(need);
            self.mem.reserve_exact(want - self.mem.len());
        }
        self.mem.extend_from_slice(data);
        self.pushed += data.len() as u64;
    }

    fn push_file(&mut self, mut data: &[u8]) -> io::Result<()> {
        // Bounded: each turn writes something, or moves to the next directory.
        while !data.is_empty() {
            let seg = match self.files.back_mut() {
                Some(s) => s,
                None => {
                    let file = self.open_temp()?;
                    self.files.push_back(Segment {
                        file,
                        read: 0,
                        end: 0,
                        punched: 0,
                    });
                    match self.files.back_mut() {
                        Some(s) => s,
                        None => continue,
                    }
                }
            };
            match seg.file.write_at(data, seg.end) {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero)),
                Ok(n) => {
                    seg.end += n as u64;
                    self.pushed += n as u64;
                    data = data.get(n..).unwrap_or(&[]);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_full(&e) && self.dir_next + 1 < self.dirs.len() => {
                    // lighttpd's answer to a full disk: the next upload dir, in a new file
                    // that follows this one.
                    log::warn!(
                        "upload temp file in {}: {}; going on in the next server.upload-dirs",
                        self.dir_name(self.dir_next).display(),
                        e
                    );
                    self.dir_next += 1;
                    let file = self.open_temp()?;
                    self.files.push_back(Segment {
                        file,
                        read: 0,
                        end: 0,
                        punched: 0,
                    });
                }
                Err(e) => {
                    return Err(io::Error::new(
                        e.kind(),
                        format!(
                            "writing the request body to a temp file in {}: {}",
                            self.dir_name(self.dir_next).display(),
                            e
                        ),
                    ))
                }
            }
        }
        Ok(())
    }

    fn dir_name(&self, i: usize) -> PathBuf {
        match self.dirs.get(i) {
            Some(d) => d.clone(),
            None => default_dir(),
        }
    }

    /// A new anonymous temp file in the first usable directory from `dir_next` on.
    fn open_temp(&mut self) -> io::Result<File> {
        if self.dirs.is_empty() {
            return open_anonymous(&default_dir());
        }
        let mut last = None;
        for (i, dir) in self.dirs.iter().enumerate().skip(self.dir_next) {
            match open_anonymous(dir) {
                Ok(f) => {
                    self.dir_next = i;
                    return Ok(f);
                }
                Err(e) => last = Some((dir, e)),
            }
        }
        // Only the last error is reported, as lighttpd does.
        Err(match last {
            Some((dir, e)) => io::Error::new(
                e.kind(),
                format!("making an upload temp file in {}: {}", dir.display(), e),
            ),
            None => io::Error::new(
                io::ErrorKind::NotFound,
                "making an upload temp file: no server.upload-dirs directory left",
            ),
        })
    }

    /// The next bytes to send: the memory part whole, or up to 16 KiB of the file (read from
    /// it now if needed). Empty when the spool is.
    pub fn front(&mut self) -> io::Result<&[u8]> {
        if self.mem_off < self.mem.len() {
            return Ok(self.mem.get(self.mem_off..).unwrap_or(&[]));
        }
        if self.buf_off >= self.buf.len() {
            self.fill()?;
        }
        Ok(self.buf.get(self.buf_off..).unwrap_or(&[]))
    }

    /// Read the front file's next bytes into `buf`.
    fn fill(&mut self) -> io::Result<()> {
        self.buf.clear();
        self.buf_off = 0;
        // Bounded: every segment left in the queue has something in it.
        while let Some(seg) = self.files.front() {
            if seg.read < seg.end {
                break;
            }
            self.files.pop_front();
        }
        let Some(seg) = self.files.front() else {
            return Ok(());
        };
        let want = (seg.end - seg.read).min(READ_MAX as u64) as usize;
        self.buf.resize(want, 0);
        let mut got = 0;
        while got < want {
            let dst = self.buf.get_mut(got..).unwrap_or(&mut []);
            match seg.file.read_at(dst, seg.read + got as u64) {
                Ok(0) => break,
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.buf.clear();
                    return Err(io::Error::new(
                        e.kind(),
                        format!("reading the request body back from its temp file: {}", e),
                    ));
                }
            }
        }
        self.buf.truncate(got);
        if got == 0 {
            // Our own file, unlinked, came back shorter than written: nothing sane to send.
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the request body's temp file is shorter than what was written to it",
            ));
        }
        Ok(())
    }

    /// Take `n` bytes off the front (at most what there is).
    pub fn consume(&mut self, n: usize) {
        let mut n = (n as u64).min(self.len());
        let m = (self.mem.len() - self.mem_off).min(n as usize);
        self.mem_off += m;
        self.taken += m as u64;
        n -= m as u64;
        if self.mem_off == self.mem.len() {
            self.mem.clear();
            self.mem_off = 0;
        }
        // Bounded: each turn takes from a segment or drops an empty one.
        while n > 0 {
            let Some(seg) = self.files.front_mut() else {
                break;
            };
            let k = (seg.end - seg.read).min(n);
            seg.read += k;
            n -= k;
            self.taken += k;
            let in_buf = (self.buf.len() - self.buf_off) as u64;
            if k >= in_buf {
                self.buf.clear();
                self.buf_off = 0;
            } else {
                self.buf_off += k as usize;
            }
            if seg.read == seg.end {
                // Drained: closing it frees its space, and what comes next can go to
                // memory again.
                self.files.pop_front();
                self.buf.clear();
                self.buf_off = 0;
            } else {
                seg.punch();
            }
        }
    }
}

impl Segment {
    /// Give the space of what was taken back to the filesystem, a step at a time.
    fn punch(&mut self) {
        let upto = self.read / PUNCH_STEP * PUNCH_STEP;
        if self.punched == u64::MAX || upto <= self.punched {
            return;
        }
        let (Ok(off), Ok(len)) = (
            libc::off64_t::try_from(self.punched),
            libc::off64_t::try_from(upto - self.punched),
        ) else {
            return;
        };
        // SAFETY: deallocating a range of a file we own; its size is kept.
        let r = unsafe {
            libc::fallocate64(
                self.file.as_raw_fd(),
                libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE,
                off,
                len,
            )
        };
        // A filesystem without hole punching keeps the space until the file closes.
        self.punched = if r == 0 { upto } else { u64::MAX };
    }
}

fn is_full(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// lighttpd's directory when server.upload-dirs names none: TMPDIR, else /var/tmp.
fn default_dir() -> PathBuf {
    match std::env::var_os("TMPDIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from("/var/tmp"),
    }
}

/// An anonymous read-write file of mode 0600 in `dir`, close-on-exec.
fn open_anonymous(dir: &Path) -> io::Result<File> {
    if !tests::force_mkstemp() {
        let r = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_TMPFILE | libc::O_CLOEXEC)
            .open(dir);
        match r {
            Ok(f) => return Ok(f),
            // The filesystem (or a kernel before 3.11, which reads O_TMPFILE as O_DIRECTORY)
            // cannot: make a named one and unlink it.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EOPNOTSUPP) | Some(libc::EISDIR) | Some(libc::EINVAL)
                ) => {}
            Err(e) => return Err(e),
        }
    }
    let mut template = dir.as_os_str().as_bytes().to_vec();
    if template.last() != Some(&b'/') {
        template.push(b'/');
    }
    template.extend_from_slice(b"lightd-upload-XXXXXX");
    let template = CString::new(template)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in a directory name"))?;
    let raw = template.into_raw();
    // SAFETY: mkostemp rewrites the X's of a NUL-terminated buffer we own; it creates the
    // file with mode 0600.
    let fd = unsafe { libc::mkostemp(raw, libc::O_CLOEXEC) };
    let err = io::Error::last_os_error();
    // SAFETY: taking back the buffer given out by into_raw above.
    let path = unsafe { CString::from_raw(raw) };
    if fd < 0 {
        return Err(err);
    }
    // SAFETY: a descriptor just created, owned here.
    let file = unsafe { File::from_raw_fd(fd) };
    // SAFETY: the name mkostemp filled in, NUL-terminated.
    if unsafe { libc::unlink(path.as_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(file)
}

#[cfg(not(test))]
mod tests {
    pub(super) fn force_mkstemp() -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::spawn::tests::TempDir;
    use std::cell::Cell;
    use std::os::unix::fs::MetadataExt;

    thread_local! {
        /// Take the path of filesystems without O_TMPFILE (per test thread).
        static FORCE_MKSTEMP: Cell<bool> = const { Cell::new(false) };
    }

    pub(super) fn force_mkstemp() -> bool {
        FORCE_MKSTEMP.with(|f| f.get())
    }

    fn dirs(d: &[&Path]) -> Rc<[PathBuf]> {
        d.iter().map(|p| p.to_path_buf()).collect::<Vec<_>>().into()
    }

    /// Deterministic bytes that differ from one offset to the next.
    fn pattern(from: u64, len: usize) -> Vec<u8> {
        (0..len as u64)
            .map(|i| {
                let x = (from + i).wrapping_mul(2654435761);
                (x >> 13) as u8
            })
            .collect()
    }

    /// Take everything, `step` bytes (at most) at a time.
    fn drain(s: &mut Spool, step: usize) -> Vec<u8> {
        let mut out = Vec::new();
        // Bounded by the length.
        for _ in 0..=s.len() {
            let f = s.front().unwrap();
            if f.is_empty() {
                break;
            }
            let k = f.len().min(step);
            out.extend_from_slice(&f[..k]);
            s.consume(k);
        }
        out
    }

    #[test]
    fn small_bodies_stay_in_memory() {
        let dir = TempDir::new("spool-mem");
        let mut s = Spool::new(64, dirs(&[&dir.0]));
        s.push(b"hello ").unwrap();
        s.push(b"").unwrap();
        s.push(b"world").unwrap();
        assert_eq!((s.len(), s.total()), (11, 11));
        assert!(!s.on_disk());
        assert_eq!(s.front().unwrap(), b"hello world");
        s.consume(6);
        assert_eq!(s.front().unwrap(), b"world");
        assert_eq!((s.len(), s.total()), (5, 11));
        s.consume(100);
        assert!(s.is_empty());
        assert_eq!(s.front().unwrap(), b"");
        assert_eq!(std::fs::read_dir(&dir.0).unwrap().count(), 0);
    }

    #[test]
    fn a_large_body_goes_through_a_file_in_order_with_bounded_memory() {
        let dir = TempDir::new("spool-big");
        let limit = 64 * 1024;
        let mut s = Spool::new(limit, dirs(&[&dir.0]));
        let total: u64 = 8 << 20;
        let mut sent = 0u64;
        let mut got = Vec::new();
        let mut step = 1;
        let mut turns = 0;
        // Push in uneven pieces, and take some now and then, slower than it comes.
        while sent < total {
            let n = ((sent % 70_001) as usize + 1).min((total - sent) as usize);
            s.push(&pattern(sent, n)).unwrap();
            sent += n as u64;
            turns += 1;
            if turns % 3 == 0 {
                step = step % 20_000 + 4_999;
                let f = s.front().unwrap();
                let k = f.len().min(step);
                got.extend_from_slice(&f[..k]);
                s.consume(k);
            }
            assert!(s.mem.capacity() <= limit, "memory grew past its limit");
            assert!(s.buf.capacity() <= READ_MAX);
        }
        assert!(s.on_disk());
        assert_eq!(s.total(), total);
        got.extend(drain(&mut s, 7_777));
        assert_eq!(got.len() as u64, total);
        assert!(got == pattern(0, total as usize), "bytes out of order");
        assert!(!s.on_disk());
        // Nothing was ever visible in the directory.
        assert_eq!(std::fs::read_dir(&dir.0).unwrap().count(), 0);
    }

    #[test]
    fn after_the_file_drains_new_bytes_go_to_memory_again() {
        let dir = TempDir::new("spool-again");
        let mut s = Spool::new(16, dirs(&[&dir.0]));
        s.push(b"0123456789").unwrap();
        s.push(b"abcdefghij").unwrap(); // past 16: into a file
        assert!(s.on_disk());
        s.consume(4);
        s.push(b"KLM").unwrap(); // the file is in use: after it, not in memory
        assert_eq!(drain(&mut s, 5), b"456789abcdefghijKLM");
        assert!(!s.on_disk());
        s.push(b"xyz").unwrap();
        assert!(!s.on_disk());
        assert_eq!(s.front().unwrap(), b"xyz");
        assert_eq!(s.total(), 26);
    }

    fn file_mode_and_links(s: &Spool) -> (u32, u64) {
        let m = s.files.front().unwrap().file.metadata().unwrap();
        (m.mode() & 0o7777, m.nlink())
    }

    #[test]
    fn the_temp_file_is_private_and_nameless() {
        for force in [false, true] {
            FORCE_MKSTEMP.with(|f| f.set(force));
            let dir = TempDir::new("spool-mode");
            let mut s = Spool::new(0, dirs(&[&dir.0]));
            s.push(b"secret").unwrap();
            assert!(s.on_disk());
            assert_eq!(
                file_mode_and_links(&s),
                (0o600, 0),
                "mkstemp path: {}",
                force
            );
            assert_eq!(std::fs::read_dir(&dir.0).unwrap().count(), 0);
            assert_eq!(drain(&mut s, 100), b"secret");
            let fd = {
                s.push(b"x").unwrap();
                s.files.front().unwrap().file.as_raw_fd()
            };
            assert_ne!(
                unsafe { libc::fcntl(fd, libc::F_GETFD) } & libc::FD_CLOEXEC,
                0
            );
        }
        FORCE_MKSTEMP.with(|f| f.set(false));
    }

    #[test]
    fn the_first_usable_directory_is_taken() {
        let dir = TempDir::new("spool-dirs");
        let not_a_dir = dir.0.join("file");
        std::fs::write(&not_a_dir, b"").unwrap();
        let good = dir.0.join("good");
        std::fs::create_dir(&good).unwrap();
        let list = dirs(&[&dir.0.join("missing"), &not_a_dir, &good]);
        let mut s = Spool::new(4, list);
        s.push(b"0123456789").unwrap();
        assert!(s.on_disk());
        assert_eq!(s.dir_next, 2);
        assert_eq!(drain(&mut s, 3), b"0123456789");
    }

    #[test]
    fn no_usable_directory_is_an_error_not_a_panic() {
        let dir = TempDir::new("spool-none");
        let mut s = Spool::new(4, dirs(&[&dir.0.join("missing")]));
        s.push(b"abc").unwrap();
        let e = s.push(b"defgh").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::NotFound);
        assert!(e.to_string().contains("missing"), "{}", e);
        // What was there before is intact.
        assert_eq!((s.len(), s.total()), (3, 3));
        assert_eq!(s.front().unwrap(), b"abc");
    }

    /// A segment on /dev/full: every write fails with ENOSPC, as on a full disk.
    fn full_segment() -> Segment {
        Segment {
            file: std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open("/dev/full")
                .unwrap(),
            read: 0,
            end: 0,
            punched: 0,
        }
    }

    #[test]
    fn a_full_disk_moves_on_to_the_next_directory() {
        let dir = TempDir::new("spool-full");
        let (a, b) = (dir.0.join("a"), dir.0.join("b"));
        std::fs::create_dir(&a).unwrap();
        std::fs::create_dir(&b).unwrap();
        let mut s = Spool::new(4, dirs(&[&a, &b]));
        s.push(b"mem").unwrap();
        // As if the file in `a` had been made and its disk had filled since.
        s.files.push_back(full_segment());
        s.push(b"0123456789").unwrap();
        assert_eq!(s.dir_next, 1);
        assert_eq!(s.files.len(), 2);
        assert_eq!(drain(&mut s, 4), b"mem0123456789");
        assert!(!s.on_disk());
    }

    #[test]
    fn a_full_disk_with_no_directory_left_is_an_error() {
        let dir = TempDir::new("spool-full-last");
        let mut s = Spool::new(0, dirs(&[&dir.0]));
        s.files.push_back(full_segment());
        let e = s.push(b"0123456789").unwrap_err();
        assert_eq!(e.raw_os_error(), None, "wrapped with context");
        assert!(e.to_string().contains("No space left"), "{}", e);
        assert_eq!(s.total(), 0);
        // Still usable for what it holds (nothing), and no panic on reading.
        assert_eq!(s.front().unwrap(), b"");
    }

    #[test]
    fn space_already_sent_is_given_back() {
        let dir = TempDir::new("spool-punch");
        let mut s = Spool::new(0, dirs(&[&dir.0]));
        let total = 4 * PUNCH_STEP as usize;
        s.push(&pattern(0, total)).unwrap();
        let blocks = |s: &Spool| s.files.front().unwrap().file.metadata().unwrap().blocks();
        let before = blocks(&s);
        let mut taken = 0;
        while taken < 3 * PUNCH_STEP as usize {
            let n = s.front().unwrap().len();
            assert!(n > 0 && n <= READ_MAX);
            s.consume(n);
            taken += n;
        }
        let seg = s.files.front().unwrap();
        if seg.punched == u64::MAX {
            eprintln!("no hole punching on this filesystem; not checked");
            return;
        }
        assert_eq!(seg.punched, 3 * PUNCH_STEP);
        assert!(
            blocks(&s) * 512 <= before * 512 - 3 * PUNCH_STEP + 4096,
            "{} -> {} blocks",
            before,
            blocks(&s)
        );
        // The rest reads back intact.
        let rest = drain(&mut s, 10_000);
        assert!(rest == pattern(taken as u64, total - taken));
    }

    #[test]
    fn consume_past_the_front_skips_into_the_file() {
        let dir = TempDir::new("spool-skip");
        let mut s = Spool::new(8, dirs(&[&dir.0]));
        let data = pattern(0, 100_000);
        s.push(&data[..8]).unwrap();
        s.push(&data[8..]).unwrap();
        assert_eq!(s.front().unwrap(), &data[..8]);
        // More than the front shows: the rest comes out of the file.
        s.consume(20_000);
        assert_eq!(s.front().unwrap(), &data[20_000..20_000 + READ_MAX]);
        s.consume(1);
        assert_eq!(s.front().unwrap()[0], data[20_001]);
        s.consume(usize::MAX);
        assert!(s.is_empty());
        assert_eq!(s.front().unwrap(), b"");
    }
}
