//! Per-user web directories ("/~user/page.html"): lighttpd's mod_userdir, as a mapping from
//! the normalised request path to a base directory, with the home-directory lookup injected.

use std::ffi::{CStr, CString, OsStr};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

/// lighttpd copies the user name into a 256-byte buffer and ignores longer ones.
pub const MAX_USER_LEN: usize = 255;

/// Largest buffer offered to getpwnam_r: a passwd entry is a few hundred bytes; an NSS
/// backend that wants more than this gets no answer rather than unbounded memory.
const MAX_PW_BUF: usize = 64 * 1024;

pub use crate::config::userdir::Userdir;

/// What mod_userdir does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mapping {
    /// Not a userdir request, or one lighttpd declines (excluded, not included, unknown user,
    /// no such directory, unusable name): the request goes on as if the module were absent,
    /// which normally ends in 404 for "/~user/..." under the document root.
    Pass,
    /// "/~user" without the slash: lighttpd answers 301, Location being the URL-encoded path
    /// with "/" appended, then "?query" if there is one. It does so before any check on the
    /// user, so the answer says nothing about whether the user exists.
    RedirectToDirectory,
    /// Serve from the user's directory.
    Mapped {
        /// The user's base directory (lighttpd's physical.basedir, also the DOCUMENT_ROOT
        /// CGI sees): home + userdir.path, without a trailing slash unless the join left one.
        basedir: PathBuf,
        /// The file: basedir + "/" + what follows "/~user/" in the path.
        physical: PathBuf,
    },
}

impl Userdir {
    /// Map a normalised request path (decoded, no dot segments, as [`crate::http::path`]
    /// makes it). `lowercase` is server.force-lowercase-filenames: the user name is then
    /// matched against exclude-user without regard to case, lowered in basepath mode, and the
    /// rest of the path is lowered like every physical path. `home` looks a user up in the
    /// passwd database (normally [`home_dir`]); `is_dir` checks the result exists there.
    pub fn map(
        &self,
        url_path: &str,
        lowercase: bool,
        home: &mut dyn FnMut(&str) -> Option<PathBuf>,
        is_dir: &mut dyn FnMut(&Path) -> bool,
    ) -> Mapping {
        let after_tilde = match url_path.strip_prefix("/~") {
            Some(s) => s,
            None => return Mapping::Pass,
        };
        let sub = match (&self.path, self.active) {
            (Some(p), true) => p.as_str(),
            _ => return Mapping::Pass,
        };
        let (user, rest) = match after_tilde.split_once('/') {
            Some(parts) => parts,
            // "/~" names nobody; "/~user" is a directory without its slash.
            None if after_tilde.is_empty() => return Mapping::Pass,
            None => return Mapping::RedirectToDirectory,
        };
        if user.is_empty() {
            return Mapping::Pass;
        }
        let excluded = self.exclude_user.iter().any(|x| {
            if lowercase {
                x.eq_ignore_ascii_case(user)
            } else {
                x == user
            }
        });
        if excluded {
            return Mapping::Pass;
        }
        // include-user is matched exactly even with lowercase filenames, as lighttpd does.
        if let Some(inc) = &self.include_user {
            if !inc.iter().any(|x| x == user) {
                return Mapping::Pass;
            }
        }
        if !usable_name(user) {
            return Mapping::Pass;
        }
        let mut base = match &self.basepath {
            None => {
                let dir = match home(user) {
                    Some(d) => d,
                    None => return Mapping::Pass,
                };
                let mut b = dir.into_os_string().into_vec();
                join_bytes(&mut b, sub.as_bytes());
                if !is_dir(Path::new(OsStr::from_bytes(&b))) {
                    return Mapping::Pass;
                }
                b
            }
            Some(basepath) => {
                // Without passwd to vouch for the name, only a conservative alphabet is
                // spliced into the path.
                let portable = user
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_' || c == b'.');
                if !portable {
                    return Mapping::Pass;
                }
                let u = if lowercase {
                    user.to_ascii_lowercase()
                } else {
                    user.to_string()
                };
                let mut b = basepath.as_bytes().to_vec();
                if self.letterhomes {
                    join_bytes(&mut b, u.get(..1).unwrap_or_default().as_bytes());
                }
                join_bytes(&mut b, u.as_bytes());
                join_bytes(&mut b, sub.as_bytes());
                b
            }
        };
        let basedir = PathBuf::from(OsStr::from_bytes(&base));
        if !base.ends_with(b"/") {
            base.push(b'/');
        }
        if lowercase {
            base.extend(rest.bytes().map(|c| c.to_ascii_lowercase()));
        } else {
            base.extend_from_slice(rest.as_bytes());
        }
        Mapping::Mapped {
            basedir,
            physical: PathBuf::from(OsStr::from_bytes(&base)),
        }
    }
}

/// A user name that can be spliced into a path without changing its shape: not too long, no
/// "..", no leading '.', no separator, NUL or control character. (lighttpd leaves this to
/// getpwnam in passwd mode and refuses only "." and ".." in basepath mode; this is stricter.)
fn usable_name(user: &str) -> bool {
    user.len() <= MAX_USER_LEN
        && !user.starts_with('.')
        && !user.contains("..")
        && !user.bytes().any(|c| c == b'/' || c.is_ascii_control())
}

/// Append `part` to `out` with exactly one '/' between them (a leading slash of `part` is
/// dropped when `out` already ends in one), as lighttpd joins path pieces.
fn join_bytes(out: &mut Vec<u8>, part: &[u8]) {
    match (out.ends_with(b"/"), part.first() == Some(&b'/')) {
        (true, true) => out.extend_from_slice(part.get(1..).unwrap_or_default()),
        (false, false) => {
            out.push(b'/');
            out.extend_from_slice(part);
        }
        _ => out.extend_from_slice(part),
    }
}

/// The home directory of `user` from the passwd database (getpwnam_r), or None if there is
/// no such user or the lookup fails. This may block on a network NSS backend, as lighttpd's
/// getpwnam does.
pub fn home_dir(user: &str) -> Option<PathBuf> {
    let name = CString::new(user).ok()?;
    // SAFETY: sysconf has no preconditions.
    let hint = unsafe { libc::sysconf(libc::_SC_GETPW_R_SIZE_MAX) };
    let mut size = usize::try_from(hint)
        .ok()
        .filter(|&n| n > 0)
        .unwrap_or(1024)
        .min(MAX_PW_BUF);
    // Bounded: the buffer doubles up to MAX_PW_BUF, a handful of tries.
    loop {
        let mut buf = vec![0 as libc::c_char; size];
        // SAFETY: passwd is plain data; all-zero is a valid value to be overwritten.
        let mut pwd: libc::passwd = unsafe { std::mem::zeroed() };
        let mut result: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: every pointer is valid for the call and `buf.len()` is its real length.
        let rc = unsafe {
            libc::getpwnam_r(
                name.as_ptr(),
                &mut pwd,
                buf.as_mut_ptr(),
                buf.len(),
                &mut result,
            )
        };
        if rc == libc::ERANGE && size < MAX_PW_BUF {
            size = (size * 2).min(MAX_PW_BUF);
            continue;
        }
        if rc != 0 || result.is_null() || pwd.pw_dir.is_null() {
            return None;
        }
        // SAFETY: on success pw_dir points to a NUL-terminated string inside `buf`, which is
        // alive here; the bytes are copied out before it is dropped.
        let dir = unsafe { CStr::from_ptr(pwd.pw_dir) };
        let dir = dir.to_bytes();
        if dir.is_empty() {
            return None;
        }
        return Some(PathBuf::from(OsStr::from_bytes(dir)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn homes(user: &str) -> Option<PathBuf> {
        match user {
            "jan" => Some(PathBuf::from("/home/jan")),
            "Root" | "root" => Some(PathBuf::from("/root/")),
            "nodir" => Some(PathBuf::from("/home/nodir")),
            _ => None,
        }
    }

    fn dirs(p: &Path) -> bool {
        matches!(
            p.to_str(),
            Some("/home/jan/public_html") | Some("/root/public_html") | Some("/home/jan/")
        )
    }

    fn run(cfg: &Userdir, path: &str, lowercase: bool) -> Mapping {
        cfg.map(path, lowercase, &mut homes, &mut dirs)
    }

    fn mapped(basedir: &str, physical: &str) -> Mapping {
        Mapping::Mapped {
            basedir: PathBuf::from(basedir),
            physical: PathBuf::from(physical),
        }
    }

    fn public_html() -> Userdir {
        Userdir {
            path: Some("public_html".into()),
            ..Userdir::default()
        }
    }

    #[test]
    fn passwd_mode() {
        let cfg = public_html();
        let jan = "/home/jan/public_html";
        assert_eq!(
            run(&cfg, "/~jan/a/b.html", false),
            mapped(jan, "/home/jan/public_html/a/b.html")
        );
        assert_eq!(
            run(&cfg, "/~jan/", false),
            mapped(jan, "/home/jan/public_html/")
        );
        assert_eq!(
            run(&cfg, "/~root/x", false),
            mapped("/root/public_html", "/root/public_html/x")
        );
        // Unknown user, or no public_html: lighttpd carries on without the module.
        assert_eq!(run(&cfg, "/~nobody/x", false), Mapping::Pass);
        assert_eq!(run(&cfg, "/~nodir/x", false), Mapping::Pass);
        // The path is matched exactly: no user "JAN".
        assert_eq!(run(&cfg, "/~JAN/x", false), Mapping::Pass);
        // userdir.path "" serves the home directory itself.
        let home = Userdir {
            path: Some(String::new()),
            ..Userdir::default()
        };
        assert_eq!(
            run(&home, "/~jan/i.html", false),
            mapped("/home/jan/", "/home/jan/i.html")
        );
    }

    #[test]
    fn not_userdir_requests_and_redirect() {
        let cfg = public_html();
        assert_eq!(run(&cfg, "/jan/x", false), Mapping::Pass);
        assert_eq!(run(&cfg, "/", false), Mapping::Pass);
        assert_eq!(run(&cfg, "/~", false), Mapping::Pass);
        assert_eq!(run(&cfg, "/~/", false), Mapping::Pass);
        assert_eq!(run(&cfg, "/~/x", false), Mapping::Pass);
        // The redirect comes before any check on the user, as in lighttpd.
        assert_eq!(run(&cfg, "/~jan", false), Mapping::RedirectToDirectory);
        assert_eq!(run(&cfg, "/~nobody", false), Mapping::RedirectToDirectory);
        // Off: unset path, or active = disable.
        assert_eq!(run(&Userdir::default(), "/~jan/x", false), Mapping::Pass);
        assert_eq!(run(&Userdir::default(), "/~jan", false), Mapping::Pass);
        let off = Userdir {
            active: false,
            ..public_html()
        };
        assert_eq!(run(&off, "/~jan/x", false), Mapping::Pass);
    }

    #[test]
    fn include_and_exclude() {
        let mut cfg = public_html();
        cfg.exclude_user = vec!["root".into()];
        assert_eq!(run(&cfg, "/~root/x", false), Mapping::Pass);
        assert!(matches!(
            run(&cfg, "/~jan/x", false),
            Mapping::Mapped { .. }
        ));
        // Case-insensitive exclusion with lower-cased file names: "Root" is excluded too.
        assert!(matches!(
            run(&cfg, "/~Root/x", false),
            Mapping::Mapped { .. }
        ));
        assert_eq!(run(&cfg, "/~Root/x", true), Mapping::Pass);
        cfg.include_user = Some(vec!["jan".into()]);
        assert!(matches!(
            run(&cfg, "/~jan/x", false),
            Mapping::Mapped { .. }
        ));
        assert_eq!(run(&cfg, "/~nodir/x", false), Mapping::Pass);
        // An explicitly empty include list lets nobody in.
        cfg.include_user = Some(Vec::new());
        assert_eq!(run(&cfg, "/~jan/x", false), Mapping::Pass);
    }

    #[test]
    fn basepath_mode() {
        let mut cfg = Userdir {
            path: Some("htdocs".into()),
            basepath: Some("/var/www/users/".into()),
            ..Userdir::default()
        };
        let mut no_home = |_: &str| -> Option<PathBuf> { panic!("basepath must not use passwd") };
        let mut no_stat = |_: &Path| -> bool { panic!("basepath does not check the directory") };
        let mut go = |cfg: &Userdir, p: &str, lc: bool| cfg.map(p, lc, &mut no_home, &mut no_stat);
        assert_eq!(
            go(&cfg, "/~jan/index.html", false),
            mapped(
                "/var/www/users/jan/htdocs",
                "/var/www/users/jan/htdocs/index.html"
            )
        );
        assert_eq!(
            go(&cfg, "/~Jan/A.html", true),
            mapped(
                "/var/www/users/jan/htdocs",
                "/var/www/users/jan/htdocs/a.html"
            )
        );
        cfg.letterhomes = true;
        assert_eq!(
            go(&cfg, "/~jan.d-x_1/", false),
            mapped(
                "/var/www/users/j/jan.d-x_1/htdocs",
                "/var/www/users/j/jan.d-x_1/htdocs/"
            )
        );
        for bad in ["/~a b/x", "/~a@b/x", "/~%2e%2e/x", "/~a\\b/x", "/~é/x"] {
            assert_eq!(go(&cfg, bad, false), Mapping::Pass, "{}", bad);
        }
    }

    #[test]
    fn names_that_would_change_the_path_are_refused() {
        let cfg = Userdir {
            path: Some("public_html".into()),
            basepath: Some("/u".into()),
            ..Userdir::default()
        };
        let mut all_homes = |u: &str| Some(PathBuf::from(format!("/home/{}", u)));
        let mut all_dirs = |_: &Path| true;
        for bad in [
            "/~../etc/passwd",
            "/~./x",
            "/~.hidden/x",
            "/~a..b/x",
            "/~\u{1}/x",
        ] {
            assert_eq!(
                cfg.map(bad, false, &mut all_homes, &mut all_dirs),
                Mapping::Pass,
                "{:?}",
                bad
            );
            let passwd = Userdir {
                basepath: None,
                ..cfg.clone()
            };
            assert_eq!(
                passwd.map(bad, false, &mut all_homes, &mut all_dirs),
                Mapping::Pass,
                "{:?}",
                bad
            );
        }
        let long = format!("/~{}/x", "a".repeat(MAX_USER_LEN + 1));
        assert_eq!(
            cfg.map(&long, false, &mut all_homes, &mut all_dirs),
            Mapping::Pass
        );
        let ok = format!("/~{}/x", "a".repeat(MAX_USER_LEN));
        assert!(matches!(
            cfg.map(&ok, false, &mut all_homes, &mut all_dirs),
            Mapping::Mapped { .. }
        ));
    }

    #[test]
    fn home_dir_from_passwd() {
        // root is in every passwd database this runs on; its home is an absolute path.
        let root = home_dir("root").expect("root has a passwd entry");
        assert!(root.is_absolute(), "{:?}", root);
        assert_eq!(home_dir("no-such-user-lightd-test"), None);
        assert_eq!(home_dir("a\0b"), None);
        assert_eq!(home_dir(""), None);
    }
}
