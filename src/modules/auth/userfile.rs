//! Reading and searching mod_authn_file's user files: plain and htpasswd (`user:secret`) and
//! htdigest (`user:realm:hexdigest[:userhash]`).
//!
//! Like lighttpd, the file is read afresh for every check, so edits take effect without a
//! reload. Unlike lighttpd (64 MB) a file over [`MAX_FILE`] is refused: these files are small,
//! and each read blocks the event loop. Lines follow lighttpd's rules: blank lines and lines
//! starting with `#` are skipped, as are lines over [`MAX_LINE`] bytes; a trailing CR is
//! dropped; the first line naming the user wins.

use std::io::Read;
use std::path::Path;

/// The largest user file read; anything larger is treated as unreadable.
pub const MAX_FILE: u64 = 1 << 20;
/// Lines longer than this (lighttpd's limit) are skipped, not parsed.
pub const MAX_LINE: usize = 1024;

/// File contents that are wiped when dropped: the file holds password hashes, or with the
/// plain backend cleartext passwords, and lighttpd clears its copy too.
pub struct Secret(Vec<u8>);

impl Secret {
    pub fn new(v: Vec<u8>) -> Secret {
        Secret(v)
    }
    pub fn bytes(&self) -> &[u8] {
        &self.0
    }
}

impl Drop for Secret {
    fn drop(&mut self) {
        self.0.fill(0);
        // Without an observer the optimiser may drop stores to memory about to be freed.
        std::hint::black_box(&mut self.0);
    }
}

/// Read a user file, bounded by [`MAX_FILE`]. The error says why, naming the path.
pub fn load(path: &Path) -> Result<Secret, String> {
    let f = std::fs::File::open(path)
        .map_err(|e| format!("opening auth user file {}: {}", path.display(), e))?;
    let mut data = Vec::new();
    // One byte more than allowed tells "too large" apart from "exactly at the limit".
    f.take(MAX_FILE + 1)
        .read_to_end(&mut data)
        .map_err(|e| format!("reading auth user file {}: {}", path.display(), e))?;
    let data = Secret::new(data);
    if data.bytes().len() as u64 > MAX_FILE {
        return Err(format!(
            "auth user file {} is larger than {} bytes; refusing to use it",
            path.display(),
            MAX_FILE
        ));
    }
    Ok(data)
}

/// The lines worth looking at: not blank, not comments, not over-long, without the CR of a
/// CRLF ending. Each comes with its 1-based line number for messages.
fn lines(data: &[u8]) -> impl Iterator<Item = (usize, &[u8])> {
    // split() yields at most one more item than there are newlines in a file of bounded
    // size, so this loop is bounded by MAX_FILE.
    data.split(|&b| b == b'\n')
        .enumerate()
        .filter_map(|(i, line)| {
            let first = *line.first()?;
            if first == b'#' || first == b'\r' || line.len() > MAX_LINE {
                return None;
            }
            Some((i + 1, line.strip_suffix(b"\r").unwrap_or(line)))
        })
}

/// The secret stored for `user` in a plain or htpasswd file: everything after the first ':'
/// (so a plain password may itself contain ':'). Lines without ':' are reported in `bad`.
pub fn find_password<'a>(data: &'a [u8], user: &[u8], bad: &mut Vec<usize>) -> Option<&'a [u8]> {
    for (n, line) in lines(data) {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            bad.push(n);
            continue;
        };
        let (u, rest) = line.split_at(colon);
        if u == user {
            return rest.get(1..);
        }
    }
    None
}

/// What an htdigest line lookup found: the user's name as the file spells it, and the
/// stored digest as binary.
pub struct HtdigestEntry {
    pub user: Vec<u8>,
    pub digest: Vec<u8>,
}

/// How to pick the htdigest line.
pub enum HtdigestKey<'a> {
    /// By user name (the first field).
    User(&'a [u8]),
    /// By the optional fourth field, lowercase hex of H(user ":" realm) (RFC 7616 userhash).
    Userhash(&'a [u8]),
}

/// Find the line for `key` and `realm` whose digest has `hex_len` hex digits (so an MD5 line
/// and a SHA-256 line for the same user can coexist; lighttpd skips the ones of the wrong
/// length). A line whose digest is not hex ends the search unsuccessfully, as in lighttpd.
pub fn find_htdigest(
    data: &[u8],
    key: HtdigestKey<'_>,
    realm: &[u8],
    hex_len: usize,
    bad: &mut Vec<usize>,
) -> Option<HtdigestEntry> {
    for (n, line) in lines(data) {
        let mut fields = line.splitn(4, |&b| b == b':');
        let (Some(user), Some(f_realm), Some(digest)) =
            (fields.next(), fields.next(), fields.next())
        else {
            bad.push(n);
            continue;
        };
        let userhash = fields.next();
        if f_realm != realm {
            continue;
        }
        let wanted = match key {
            HtdigestKey::User(u) => user == u,
            HtdigestKey::Userhash(h) => userhash.is_some_and(|f| super::password::ct_eq(f, h)),
        };
        if !wanted || digest.len() != hex_len {
            continue;
        }
        return super::digest::from_hex(digest).map(|digest| HtdigestEntry {
            user: user.to_vec(),
            digest,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lighttpd_test_files_parse() {
        // The contents of lighttpd's tests/lighttpd.user and tests/lighttpd.htpasswd.
        let user = b"jan:jan\n";
        let htpasswd = b"# some comment\nsha:{SHA}2PRZAyDhNDqRW2OUFwZQqPNdaSY=\n\napr-md5:$apr1$w2kLqmDN$uMe8ZCfMRT81wf43Y1hny0\n";
        let mut bad = Vec::new();
        assert_eq!(find_password(user, b"jan", &mut bad), Some(&b"jan"[..]));
        assert_eq!(find_password(user, b"ja", &mut bad), None);
        assert_eq!(find_password(user, b"jan:jan", &mut bad), None);
        assert_eq!(
            find_password(htpasswd, b"sha", &mut bad),
            Some(&b"{SHA}2PRZAyDhNDqRW2OUFwZQqPNdaSY="[..])
        );
        assert_eq!(
            find_password(htpasswd, b"apr-md5", &mut bad),
            Some(&b"$apr1$w2kLqmDN$uMe8ZCfMRT81wf43Y1hny0"[..])
        );
        // A comment line is not a user named "# some comment".
        assert_eq!(find_password(htpasswd, b"# some comment", &mut bad), None);
        assert!(bad.is_empty());
    }

    #[test]
    fn line_rules() {
        let long = format!("long:{}\n", "x".repeat(MAX_LINE));
        let data = format!(
            "nocolon\r\n{}crlf:pw\r\nfirst:one\nfirst:two\ncolons:a:b:c\nempty:\nlast:nonl",
            long
        );
        let d = data.as_bytes();
        let mut bad = Vec::new();
        assert_eq!(find_password(d, b"long", &mut bad), None);
        assert_eq!(bad, vec![1]);
        assert_eq!(find_password(d, b"crlf", &mut bad), Some(&b"pw"[..]));
        assert_eq!(find_password(d, b"first", &mut bad), Some(&b"one"[..]));
        assert_eq!(find_password(d, b"colons", &mut bad), Some(&b"a:b:c"[..]));
        assert_eq!(find_password(d, b"empty", &mut bad), Some(&b""[..]));
        assert_eq!(find_password(d, b"last", &mut bad), Some(&b"nonl"[..]));
        assert_eq!(find_password(d, b"", &mut bad), None);
    }

    #[test]
    fn htdigest_lookup() {
        // `htdigest` output for user "u", realm "r", password "p" (MD5) and a SHA-256 line.
        let md5 = "a8a40d6f3d1ab4e3c6b8e5c0b9d7c2c0";
        let sha = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        let data = format!(
            "bad line\nu:other:{md5}\nu:r:{md5}:ffee\nu:r:{sha}\nv:r:nothex{}\n",
            "x".repeat(26),
            md5 = md5,
            sha = sha
        );
        let d = data.as_bytes();
        let mut bad = Vec::new();
        let e = find_htdigest(d, HtdigestKey::User(b"u"), b"r", 32, &mut bad);
        assert_eq!(e.map(|e| e.digest), from_hex_for_test(md5));
        assert_eq!(bad, vec![1]);
        let e = find_htdigest(d, HtdigestKey::User(b"u"), b"r", 64, &mut bad);
        assert_eq!(e.map(|e| e.digest), from_hex_for_test(sha));
        assert!(find_htdigest(d, HtdigestKey::User(b"u"), b"x", 32, &mut bad).is_none());
        assert!(find_htdigest(d, HtdigestKey::User(b"v"), b"r", 32, &mut bad).is_none());
        let e = find_htdigest(d, HtdigestKey::Userhash(b"ffee"), b"r", 32, &mut bad);
        assert_eq!(e.map(|e| e.user), Some(b"u".to_vec()));
        assert!(find_htdigest(d, HtdigestKey::Userhash(b"ffe"), b"r", 32, &mut bad).is_none());
    }

    fn from_hex_for_test(s: &str) -> Option<Vec<u8>> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
            .collect()
    }

    #[test]
    fn load_is_bounded() {
        let dir = std::env::temp_dir().join(format!("lightd-auth-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ok = dir.join("ok");
        std::fs::write(&ok, vec![b'a'; MAX_FILE as usize]).unwrap();
        assert_eq!(load(&ok).unwrap().bytes().len() as u64, MAX_FILE);
        let big = dir.join("big");
        std::fs::write(&big, vec![b'a'; MAX_FILE as usize + 1]).unwrap();
        let e = load(&big).err().unwrap();
        assert!(e.contains("big") && e.contains("larger"), "{}", e);
        let e = load(&dir.join("missing")).err().unwrap();
        assert!(e.contains("missing"), "{}", e);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
