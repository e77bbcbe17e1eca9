//! A small in-memory cache of small static files, revalidated with one `stat` per file per
//! second (as lighttpd's stat cache does), so a hot small file costs no open, fstat, read or
//! close per request.
//!
//! The revalidation compares everything that changes when the file does, or when who may read
//! it does: identity, size, mtime and ctime (a chmod or chown changes only the ctime), and the
//! `stat` itself fails once a directory on the way is closed to us. A file that is empty or
//! was written in the last two seconds (by its mtime) is not cached at all: it may be in the middle of being
//! rewritten (`: > f; cp new f`), and caching that moment would serve it for a second.
//!
//! Larger files are kept open instead (at most [`MAX_FDS`] of them), under the same
//! revalidation: a hot large file then costs a `dup` per request rather than an open, an fstat
//! and the last close of the file. sendfile reads it at explicit offsets, so one descriptor
//! serves any number of responses at once.
//!
//! Bounded in entries, bytes and descriptors; when full, the least recently checked entry is
//! dropped.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::Path;
use std::rc::Rc;

/// Files up to this size are cached (the same bound as an in-buffer response body).
pub const MAX_FILE: u64 = 16 * 1024;
/// The most bytes of file content kept.
const MAX_BYTES: usize = 2 * 1024 * 1024;
/// The most files kept.
const MAX_ENTRIES: usize = 1024;
/// The most large files kept open, of a server with descriptors to spare (see
/// [`FileCache::set_max_fds`]).
pub const MAX_FDS: usize = 32;

/// What a response needs to know about a file, whether it came from the cache or the disk.
#[derive(Clone)]
pub struct FileInfo {
    pub len: u64,
    pub mtime: u64,
    pub etag: [u8; 64],
    pub etag_len: usize,
    pub last_modified: [u8; 29],
}

impl FileInfo {
    pub fn new(meta: &std::fs::Metadata) -> FileInfo {
        let mtime = meta.mtime().max(0) as u64;
        let mut etag = [0u8; 64];
        let etag_len = {
            let mut cur = io::Cursor::new(&mut etag[..]);
            // A strong validator from what changes when the file changes.
            let _ = write!(cur, "\"{:x}-{:x}-{:x}\"", meta.ino(), meta.size(), mtime);
            cur.position() as usize
        };
        let mut last_modified = [0u8; 29];
        crate::http::date::format(mtime, &mut last_modified);
        FileInfo {
            len: meta.size(),
            mtime,
            etag,
            etag_len,
            last_modified,
        }
    }

    pub fn etag(&self) -> &[u8] {
        &self.etag[..self.etag_len]
    }
}

/// What the cache holds of a file.
enum Content {
    Mem(Rc<[u8]>),
    Open(File),
}

/// A cache hit: a small file's content, or a descriptor of its own for a large one.
pub enum Hit {
    Mem(Rc<[u8]>),
    File(File),
}

struct Entry {
    info: FileInfo,
    content: Content,
    /// Identity of the file when it was read, to notice replacement.
    dev: u64,
    ino: u64,
    mtime_ns: i64,
    /// Changes with the content and with permissions and ownership.
    ctime_ns: i64,
    /// The second in which the file was last confirmed unchanged.
    checked: u64,
}

pub struct FileCache {
    map: HashMap<Box<[u8]>, Entry, BuildFnv>,
    bytes: usize,
    /// Entries holding an open file, and how many may.
    fds: usize,
    max_fds: usize,
}

impl Default for FileCache {
    fn default() -> FileCache {
        FileCache {
            map: HashMap::default(),
            bytes: 0,
            fds: 0,
            max_fds: MAX_FDS,
        }
    }
}

/// FNV-1a instead of the default SipHash, which costs more than the rest of a cache hit. The
/// keys are paths of files that exist: a client cannot fill the table with colliding keys,
/// which is what SipHash's keying defends against.
#[derive(Default, Clone, Copy)]
struct BuildFnv;

struct Fnv(u64);

impl std::hash::BuildHasher for BuildFnv {
    type Hasher = Fnv;
    fn build_hasher(&self) -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
}

impl std::hash::Hasher for Fnv {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn finish(&self) -> u64 {
        self.0
    }
}

/// A file modified this long ago or less (in whole seconds) is not cached: it may still be
/// changing.
const SETTLE_SECS: i64 = 2;

fn ns(secs: i64, nsec: i64) -> i64 {
    secs.saturating_mul(1_000_000_000).saturating_add(nsec)
}

fn same_file(e: &Entry, m: &std::fs::Metadata) -> bool {
    e.dev == m.dev()
        && e.ino == m.ino()
        && e.info.len == m.size()
        && e.mtime_ns == ns(m.mtime(), m.mtime_nsec())
        && e.ctime_ns == ns(m.ctime(), m.ctime_nsec())
}

impl FileCache {
    /// Keep at most `n` files open (no more than [`MAX_FDS`]): descriptors the server holds in
    /// reserve for them.
    pub fn set_max_fds(&mut self, n: usize) {
        self.max_fds = n.min(MAX_FDS);
    }

    /// The cached file at `path`, revalidated if it was last checked before `now` (seconds).
    /// A large file comes as a descriptor of its own (None if none is left to make one).
    pub fn get(&mut self, path: &Path, now: u64) -> Option<(FileInfo, Hit)> {
        let key = path.as_os_str().as_bytes();
        let e = self.map.get_mut(key)?;
        if e.checked != now {
            match std::fs::metadata(path) {
                Ok(m) if m.is_file() && same_file(e, &m) => e.checked = now,
                _ => {
                    self.remove(key);
                    return None;
                }
            }
        }
        let hit = match &e.content {
            Content::Mem(body) => Hit::Mem(Rc::clone(body)),
            Content::Open(f) => Hit::File(f.try_clone().ok()?),
        };
        Some((e.info.clone(), hit))
    }

    /// Read `file` (already open, `meta` its metadata) into the cache if it is small enough,
    /// else keep a descriptor of it. Returns the content of a small file, or None if it is
    /// not cached as content (too big, or the read failed).
    pub fn insert(
        &mut self,
        path: &Path,
        file: &File,
        meta: &std::fs::Metadata,
        info: &FileInfo,
        now: u64,
    ) -> Option<Rc<[u8]>> {
        // Empty or just written: perhaps caught in the middle of a rewrite.
        if meta.size() == 0 || meta.mtime() > now as i64 - SETTLE_SECS {
            return None;
        }
        let (content, body) = if meta.size() > MAX_FILE {
            (Content::Open(file.try_clone().ok()?), None)
        } else {
            let mut body = vec![0u8; meta.size() as usize];
            file.read_exact_at(&mut body, 0).ok()?;
            let body: Rc<[u8]> = body.into();
            (Content::Mem(Rc::clone(&body)), Some(body))
        };
        let key: Box<[u8]> = path.as_os_str().as_bytes().into();
        self.remove(&key);
        let len = body.as_ref().map_or(0, |b| b.len());
        let fd = usize::from(body.is_none());
        if fd > self.max_fds {
            return None;
        }
        while self.map.len() >= MAX_ENTRIES
            || self.bytes + len > MAX_BYTES
            || self.fds + fd > self.max_fds
        {
            if !self.evict_one(fd == 1 && self.fds + fd > self.max_fds) {
                break;
            }
        }
        self.bytes += len;
        self.fds += fd;
        self.map.insert(
            key,
            Entry {
                info: info.clone(),
                content,
                dev: meta.dev(),
                ino: meta.ino(),
                mtime_ns: ns(meta.mtime(), meta.mtime_nsec()),
                ctime_ns: ns(meta.ctime(), meta.ctime_nsec()),
                checked: now,
            },
        );
        body
    }

    fn remove(&mut self, key: &[u8]) {
        match self.map.remove(key).map(|e| e.content) {
            Some(Content::Mem(body)) => self.bytes -= body.len(),
            Some(Content::Open(_)) => self.fds -= 1,
            None => {}
        }
    }

    /// Drop the entry checked longest ago (of those holding a descriptor, with `open`).
    /// O(entries), and only when the cache is full.
    fn evict_one(&mut self, open: bool) -> bool {
        let oldest = self
            .map
            .iter()
            .filter(|(_, e)| !open || matches!(e.content, Content::Open(_)))
            .min_by_key(|(_, e)| e.checked)
            .map(|(k, _)| k.clone());
        match oldest {
            Some(k) => {
                self.remove(&k);
                true
            }
            None => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(name: &str, content: &[u8]) -> std::path::PathBuf {
        let p = std::env::temp_dir().join(format!("lightd-cache-{}-{}", std::process::id(), name));
        std::fs::write(&p, content).unwrap();
        p
    }

    fn load(c: &mut FileCache, p: &Path, now: u64) -> Option<Rc<[u8]>> {
        let f = File::open(p).unwrap();
        let m = f.metadata().unwrap();
        c.insert(p, &f, &m, &FileInfo::new(&m), now)
    }

    /// The content of a hit: cached bytes, or what its descriptor reads.
    fn content(hit: Option<(FileInfo, Hit)>) -> Option<Vec<u8>> {
        match hit?.1 {
            Hit::Mem(body) => Some(body.to_vec()),
            Hit::File(f) => {
                let mut v = vec![0u8; f.metadata().ok()?.len() as usize];
                f.read_exact_at(&mut v, 0).ok()?;
                Some(v)
            }
        }
    }

    /// A "now" long after any file these tests create, so that the files count as settled.
    fn later() -> u64 {
        crate::log::now_secs() + 100
    }

    #[test]
    fn hit_then_revalidate_on_change() {
        let t = later();
        let p = temp_file("a", b"one");
        let mut c = FileCache::default();
        assert!(c.get(&p, t).is_none());
        assert_eq!(&*load(&mut c, &p, t).unwrap(), b"one");
        assert_eq!(content(c.get(&p, t)).unwrap(), b"one");
        // Replaced on disk: the next second's stat notices (different size or inode).
        let q = temp_file("a.new", b"three");
        std::fs::rename(&q, &p).unwrap();
        assert_eq!(
            content(c.get(&p, t)).unwrap(),
            b"one",
            "within the same second"
        );
        assert!(
            c.get(&p, t + 1).is_none(),
            "a changed file must not be served from cache"
        );
        assert_eq!(c.bytes, 0);
        std::fs::remove_file(&p).unwrap();
        assert!(load(&mut c, &temp_file("b", b"x"), t + 2).is_some());
    }

    #[test]
    fn empty_and_just_modified_files_are_not_cached() {
        let mut c = FileCache::default();
        let empty = temp_file("empty", b"");
        assert!(load(&mut c, &empty, later()).is_none());
        let fresh = temp_file("fresh", b"being written");
        let mtime = std::fs::metadata(&fresh).unwrap().mtime() as u64;
        // Modified this second or the one before: it may still change.
        assert!(load(&mut c, &fresh, mtime).is_none());
        assert!(load(&mut c, &fresh, mtime + 1).is_none());
        assert!(load(&mut c, &fresh, mtime + 2).is_some());
        assert_eq!(c.map.len(), 1);
        std::fs::remove_file(&empty).unwrap();
        std::fs::remove_file(&fresh).unwrap();
    }

    /// chmod changes neither size nor mtime, only the ctime: the next revalidation must drop
    /// the entry, so that the request goes to the file and its new permissions.
    #[test]
    fn permission_change_is_noticed() {
        use std::os::unix::fs::PermissionsExt;
        let t = later();
        let p = temp_file("perm", b"secret");
        let mut c = FileCache::default();
        assert!(load(&mut c, &p, t).is_some());
        // Timestamps are coarse: let the clock move past the ctime so the chmod changes it.
        let ctime = std::fs::metadata(&p).unwrap().ctime_nsec();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(20));
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o640)).unwrap();
            if std::fs::metadata(&p).unwrap().ctime_nsec() != ctime {
                break;
            }
        }
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o000)).unwrap();
        assert!(c.get(&p, t).is_some(), "within the same second");
        assert!(c.get(&p, t + 1).is_none(), "chmod went unnoticed");
        std::fs::remove_file(&p).unwrap();
    }

    /// A large file is kept open, not read: a hit is a descriptor of its own for the same
    /// file, and a replacement is noticed as for small files.
    #[test]
    fn big_files_are_kept_open_and_revalidated() {
        let t = later();
        let big = temp_file("big-open", &vec![7u8; MAX_FILE as usize + 1]);
        let mut c = FileCache::default();
        assert!(load(&mut c, &big, t).is_none(), "not cached as content");
        assert_eq!((c.fds, c.bytes), (1, 0));
        let first = c.get(&big, t).unwrap();
        assert!(matches!(first.1, Hit::File(_)));
        assert_eq!(first.0.len, MAX_FILE + 1);
        assert_eq!(
            content(Some(first)).unwrap(),
            vec![7u8; MAX_FILE as usize + 1]
        );
        let q = temp_file("big-open.new", &vec![8u8; MAX_FILE as usize + 2]);
        std::fs::rename(&q, &big).unwrap();
        assert!(
            c.get(&big, t + 1).is_none(),
            "a replaced file must not be served"
        );
        assert_eq!(c.fds, 0);
        std::fs::remove_file(&big).unwrap();
    }

    #[test]
    fn open_files_stay_bounded() {
        let t = later();
        let big = temp_file("big-many", &vec![7u8; MAX_FILE as usize + 1]);
        let mut c = FileCache::default();
        for i in 0..MAX_FDS + 5 {
            let link = std::env::temp_dir().join(format!(
                "lightd-cache-{}-biglink{}",
                std::process::id(),
                i
            ));
            let _ = std::fs::remove_file(&link);
            std::fs::hard_link(&big, &link).unwrap();
            load(&mut c, &link, t + i as u64);
            std::fs::remove_file(&link).unwrap();
            assert!(c.fds <= MAX_FDS, "{} descriptors kept", c.fds);
        }
        assert_eq!(c.fds, MAX_FDS);
        std::fs::remove_file(&big).unwrap();
    }

    #[test]
    fn big_files_are_not_read_and_bytes_stay_bounded() {
        let t = later();
        let big = temp_file("big", &vec![7u8; MAX_FILE as usize + 1]);
        let mut c = FileCache::default();
        assert!(load(&mut c, &big, t).is_none());
        let small = temp_file("small", &vec![1u8; MAX_FILE as usize]);
        for i in 0..(MAX_BYTES / MAX_FILE as usize + 10) {
            // The same file under many names (symlinks would do too).
            let link =
                std::env::temp_dir().join(format!("lightd-cache-{}-link{}", std::process::id(), i));
            let _ = std::fs::remove_file(&link);
            std::fs::hard_link(&small, &link).unwrap();
            load(&mut c, &link, t + i as u64).unwrap();
            std::fs::remove_file(&link).unwrap();
            assert!(c.bytes <= MAX_BYTES && c.map.len() <= MAX_ENTRIES);
        }
        std::fs::remove_file(&big).unwrap();
        std::fs::remove_file(&small).unwrap();
    }
}
