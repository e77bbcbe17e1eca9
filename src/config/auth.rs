//! mod_auth's and mod_authn_file's settings: `auth.backend`, the user file keys and the
//! `auth.require` list, checked at load time (with lighttpd's messages) into the values the
//! request-time check in `modules::auth` reads.

use std::path::{Path, PathBuf};
use std::rc::Rc;

use super::types::{CondChain, Config, ReqSetting, Val};
use super::value::Value;

/// A digest algorithm, without the `-sess` variant flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algo {
    Md5,
    Sha256,
    Sha512_256,
}

impl Algo {
    /// The name used in `algorithm=`.
    pub fn name(self) -> &'static str {
        match self {
            Algo::Md5 => "MD5",
            Algo::Sha256 => "SHA-256",
            Algo::Sha512_256 => "SHA-512-256",
        }
    }

    /// The length of its output in bytes.
    pub fn output_len(self) -> usize {
        match self {
            Algo::Md5 => 16,
            Algo::Sha256 | Algo::Sha512_256 => 32,
        }
    }

    /// Parse an algorithm name as lighttpd does: case-insensitive, an optional `-sess`
    /// suffix (returned as the flag), and the empty string meaning MD5.
    pub fn parse(s: &[u8]) -> Option<(Algo, bool)> {
        if s.is_empty() {
            return Some((Algo::Md5, false));
        }
        // split_at cannot panic: the index is at most the length.
        let (base, sess) = match s.len().checked_sub(5).map(|i| s.split_at(i)) {
            Some((b, tail)) if !b.is_empty() && tail.eq_ignore_ascii_case(b"-sess") => (b, true),
            _ => (s, false),
        };
        let algo = [Algo::Md5, Algo::Sha256, Algo::Sha512_256]
            .into_iter()
            .find(|a| base.eq_ignore_ascii_case(a.name().as_bytes()))?;
        Some((algo, sess))
    }
}

/// The set of algorithms an `auth.require` entry offers (lighttpd's `algorithm` option).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Algorithms {
    pub md5: bool,
    pub sha256: bool,
    pub sha512_256: bool,
}

impl Default for Algorithms {
    /// lighttpd's default when `algorithm` is absent or blank: MD5 only.
    fn default() -> Algorithms {
        Algorithms {
            md5: true,
            sha256: false,
            sha512_256: false,
        }
    }
}

impl Algorithms {
    /// Parse lighttpd's `algorithm` option: names separated by `|`, e.g. "SHA-256|MD5".
    /// A `-sess` suffix is accepted and means nothing more: lighttpd always allows the
    /// session variant of any algorithm it offers.
    pub fn parse(s: &str) -> Result<Algorithms, String> {
        if s.trim().is_empty() {
            return Ok(Algorithms::default());
        }
        let mut out = Algorithms {
            md5: false,
            sha256: false,
            sha512_256: false,
        };
        for name in s.split('|') {
            match Algo::parse(name.as_bytes()) {
                // An empty name means MD5 in the header, but in the option it is a typo.
                Some((a, _)) if !name.is_empty() => *out.flag(a) = true,
                _ => {
                    return Err(format!(
                        "auth.require: invalid algorithm \"{}\" in \"{}\" \
                         (expecting MD5, SHA-256 or SHA-512-256, separated by '|')",
                        name, s
                    ))
                }
            }
        }
        Ok(out)
    }

    /// The flag for `a`, to switch it on or off.
    pub fn flag(&mut self, a: Algo) -> &mut bool {
        match a {
            Algo::Md5 => &mut self.md5,
            Algo::Sha256 => &mut self.sha256,
            Algo::Sha512_256 => &mut self.sha512_256,
        }
    }

    /// Is `a` offered?
    pub fn has(self, a: Algo) -> bool {
        match a {
            Algo::Md5 => self.md5,
            Algo::Sha256 => self.sha256,
            Algo::Sha512_256 => self.sha512_256,
        }
    }

    /// The offered algorithms, strongest first: the order of lighttpd's challenges.
    pub fn list(self) -> impl Iterator<Item = Algo> {
        [Algo::Sha512_256, Algo::Sha256, Algo::Md5]
            .into_iter()
            .filter(move |&a| self.has(a))
    }

    /// The one algorithm an htdigest file is searched with when Basic auth checks against
    /// it: SHA-256 if offered, then SHA-512-256, else MD5 (lighttpd's order).
    pub fn for_htdigest_basic(self) -> Algo {
        if self.sha256 {
            Algo::Sha256
        } else if self.sha512_256 {
            Algo::Sha512_256
        } else {
            Algo::Md5
        }
    }
}

/// `auth.backend`: where user names and secrets come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    /// `user:cleartext password` lines (auth.backend.plain.userfile).
    Plain,
    /// `user:hash` lines from Apache's htpasswd (auth.backend.htpasswd.userfile). Basic only.
    Htpasswd,
    /// `user:realm:hex(HA1)` lines from Apache's htdigest (auth.backend.htdigest.userfile).
    Htdigest,
}

impl BackendKind {
    /// Parse `auth.backend`. A blank value means "no backend" (None), as in lighttpd.
    pub fn parse(s: &str) -> Result<Option<BackendKind>, String> {
        match s {
            "" => Ok(None),
            "plain" => Ok(Some(BackendKind::Plain)),
            "htpasswd" => Ok(Some(BackendKind::Htpasswd)),
            "htdigest" => Ok(Some(BackendKind::Htdigest)),
            "ldap" | "pam" | "dbi" | "gssapi" | "sasl" | "mysql" => Err(format!(
                "auth.backend \"{}\" is not supported by lightd (supported: \"plain\", \
                 \"htpasswd\", \"htdigest\")",
                s
            )),
            _ => Err(format!(
                "auth.backend not supported: \"{}\" (expecting \"plain\", \"htpasswd\" or \
                 \"htdigest\")",
                s
            )),
        }
    }
}

/// mod_authn_file's file keys. A blank value is the same as unset, as in lighttpd.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserFiles {
    /// auth.backend.plain.userfile
    pub plain_userfile: Option<PathBuf>,
    /// auth.backend.plain.groupfile: accepted because lighttpd 1.4.85 accepts it, but, as
    /// there, never read (no file backend looks groups up).
    pub plain_groupfile: Option<PathBuf>,
    /// auth.backend.htpasswd.userfile
    pub htpasswd_userfile: Option<PathBuf>,
    /// auth.backend.htdigest.userfile
    pub htdigest_userfile: Option<PathBuf>,
}

impl UserFiles {
    /// The config keys [`UserFiles::set`] takes.
    pub const KEYS: [&'static str; 4] = [
        "auth.backend.plain.userfile",
        "auth.backend.plain.groupfile",
        "auth.backend.htpasswd.userfile",
        "auth.backend.htdigest.userfile",
    ];

    /// Set one of [`UserFiles::KEYS`]; false if `key` is not one of them.
    pub fn set(&mut self, key: &str, value: &str) -> bool {
        let slot = match key {
            "auth.backend.plain.userfile" => &mut self.plain_userfile,
            "auth.backend.plain.groupfile" => &mut self.plain_groupfile,
            "auth.backend.htpasswd.userfile" => &mut self.htpasswd_userfile,
            "auth.backend.htdigest.userfile" => &mut self.htdigest_userfile,
            _ => return false,
        };
        *slot = (!value.is_empty()).then(|| PathBuf::from(value));
        true
    }

    /// The user file a backend reads.
    pub fn path(&self, kind: BackendKind) -> Option<&Path> {
        match kind {
            BackendKind::Plain => self.plain_userfile.as_deref(),
            BackendKind::Htpasswd => self.htpasswd_userfile.as_deref(),
            BackendKind::Htdigest => self.htdigest_userfile.as_deref(),
        }
    }
}

/// The per-request mod_auth settings besides `auth.require` (each merged from the config
/// conditions independently, as lighttpd does).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settings {
    /// auth.backend
    pub backend: Option<BackendKind>,
    /// The userfile keys.
    pub files: UserFiles,
    /// auth.extern-authn: a REMOTE_USER already set (by another module) that the rule
    /// accepts is enough, whatever the method.
    pub extern_authn: bool,
}

/// An `auth.require` entry's `method`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Basic,
    Digest,
    /// Trust REMOTE_USER set by an earlier module (e.g. a TLS client certificate).
    Extern,
}

/// An `auth.require` entry's `require` string, as lighttpd parses it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Rule {
    /// "valid-user": anyone the backend authenticates.
    pub valid_user: bool,
    /// `user=NAME` terms.
    pub users: Vec<String>,
    /// `group=NAME` terms: kept, but no file backend has groups, so they never match.
    pub groups: Vec<String>,
    /// `host=NAME` terms: kept, but lighttpd never implemented them, so they never match.
    pub hosts: Vec<String>,
}

impl Rule {
    /// Is the authenticated `user` allowed? (Case-sensitive, as lighttpd compares.)
    pub fn allows(&self, user: &[u8]) -> bool {
        self.valid_user || self.users.iter().any(|u| u.as_bytes() == user)
    }
}

const REQUIRE_SYNTAX: &str = "(expecting \"valid-user\" or \"user=a|user=b|group=g|host=h\")";

/// Parse a `require` string: exactly "valid-user", or `|`-separated `user=`, `group=` and
/// `host=` terms (a trailing `|` is tolerated, as in lighttpd).
pub fn parse_require(s: &str) -> Result<Rule, String> {
    if s.is_empty() {
        return Err("auth.require: the require field is blank".into());
    }
    let mut rule = Rule::default();
    if s == "valid-user" {
        rule.valid_user = true;
        return Ok(rule);
    }
    let terms: Vec<&str> = s.split('|').collect();
    let last = terms.len().saturating_sub(1);
    for (i, term) in terms.into_iter().enumerate() {
        if term.is_empty() && i == last {
            break;
        }
        let Some((key, value)) = term.split_once('=') else {
            return Err(format!(
                "auth.require: error parsing 'require' field: missing '=' {}; value: \"{}\", \
                 near: \"{}\"",
                REQUIRE_SYNTAX, s, term
            ));
        };
        if value.is_empty() {
            return Err(format!(
                "auth.require: error parsing 'require' field: missing token after '=' {}; \
                 value: \"{}\", near: \"{}\"",
                REQUIRE_SYNTAX, s, term
            ));
        }
        let list = match key {
            "user" => &mut rule.users,
            "group" => &mut rule.groups,
            "host" => &mut rule.hosts,
            "valid-user" => {
                return Err(format!(
                    "auth.require: valid-user cannot be combined with other require rules {}; \
                     value: \"{}\"",
                    REQUIRE_SYNTAX, s
                ))
            }
            _ => {
                return Err(format!(
                    "auth.require: invalid/unsupported token in 'require' field {}; value: \
                     \"{}\", near: \"{}\"",
                    REQUIRE_SYNTAX, s, term
                ))
            }
        };
        list.push(value.to_string());
    }
    Ok(rule)
}

fn parse_bool(key: &str, v: &str) -> Result<bool, String> {
    const YES: [&str; 4] = ["enable", "enabled", "true", "1"];
    const NO: [&str; 4] = ["disable", "disabled", "false", "0"];
    if YES.iter().any(|y| y.eq_ignore_ascii_case(v)) {
        Ok(true)
    } else if NO.iter().any(|n| n.eq_ignore_ascii_case(v)) {
        Ok(false)
    } else {
        Err(format!(
            "auth.require: \"{}\" must be \"enable\" or \"disable\", not \"{}\"",
            key, v
        ))
    }
}

/// One `auth.require` entry: `"path" => ( "method" => ..., "realm" => ..., ... )`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Require {
    /// The URL-path prefix it covers.
    pub path: String,
    pub method: Method,
    /// The realm (may be empty, but must be given).
    pub realm: String,
    /// Digest algorithms offered (`algorithm`); MD5 unless configured.
    pub algorithms: Algorithms,
    pub rule: Rule,
    /// `nonce-secret` (or `nonce_secret`): signs nonces instead of the per-process secret,
    /// so nonces survive restarts and are shared between processes.
    pub nonce_secret: Option<Vec<u8>>,
    /// `userhash`: offer RFC 7616 user name hashing in the Digest challenge.
    pub userhash: bool,
}

impl Require {
    /// Build an entry from its path and its option pairs, validated as lighttpd does at
    /// start-up: `method` and `require` must be present and not blank, `realm` present,
    /// `algorithm` names known, and no other options.
    pub fn parse(path: &str, options: &[(&str, &str)]) -> Result<Require, String> {
        let mut method = None;
        let mut realm = None;
        let mut require = None;
        let mut algorithm = None;
        let mut nonce_secret = None;
        let mut userhash = None;
        for &(k, v) in options {
            let slot = match k {
                "method" => &mut method,
                "realm" => &mut realm,
                "require" => &mut require,
                "algorithm" => &mut algorithm,
                "nonce-secret" | "nonce_secret" => &mut nonce_secret,
                "userhash" => &mut userhash,
                _ => {
                    return Err(format!(
                        "the field is unknown in: auth.require = ( \"{}\" => ( ..., -> \"{}\" \
                         <- => \"...\" ) ) (known: method, realm, require, algorithm, \
                         nonce-secret, userhash)",
                        path, k
                    ))
                }
            };
            if slot.replace(v).is_some() {
                return Err(format!(
                    "auth.require = ( \"{}\" => ( ... ) ): \"{}\" is given twice",
                    path, k
                ));
            }
        }
        let method = match method {
            None | Some("") => {
                return Err(format!(
                    "the method field is missing or blank in: auth.require = ( \"{}\" => ( \
                     ..., \"method\" => \"...\" ) )",
                    path
                ))
            }
            Some("basic") => Method::Basic,
            Some("digest") => Method::Digest,
            Some("extern") => Method::Extern,
            Some(m) => {
                return Err(format!(
                    "unknown method \"{}\" (expecting \"basic\", \"digest\" or \"extern\") in \
                     auth.require = ( \"{}\" => ( ..., \"method\" => \"...\" ) )",
                    m, path
                ))
            }
        };
        let Some(realm) = realm else {
            return Err(format!(
                "the realm field is missing in: auth.require = ( \"{}\" => ( ..., \"realm\" \
                 => \"...\" ) )",
                path
            ));
        };
        // The realm goes into a response header: a control character would corrupt it.
        if realm.chars().any(|c| c.is_control()) {
            return Err(format!(
                "auth.require = ( \"{}\" => ( ... ) ): the realm contains a control character",
                path
            ));
        }
        let rule = match require {
            None | Some("") => {
                return Err(format!(
                    "the require field is missing or blank in: auth.require = ( \"{}\" => ( \
                     ..., \"require\" => \"...\" ) )",
                    path
                ))
            }
            Some(r) => parse_require(r)?,
        };
        let algorithms = Algorithms::parse(algorithm.unwrap_or(""))?;
        let userhash = match userhash {
            Some(v) => parse_bool("userhash", v)?,
            None => false,
        };
        Ok(Require {
            path: path.to_string(),
            method,
            realm: realm.to_string(),
            algorithms,
            rule,
            nonce_secret: nonce_secret.map(|s| s.as_bytes().to_vec()),
            userhash,
        })
    }
}

/// Start-up warnings for a parsed `auth.require` list, as lighttpd gives them: entries that
/// an earlier, shorter prefix hides, and `host=`/`group=` terms that can never match.
pub fn config_warnings(list: &[Require]) -> Vec<String> {
    let mut out = Vec::new();
    for (n, r) in list.iter().enumerate() {
        if let Some(earlier) = list.iter().take(n).find(|o| r.path.starts_with(&o.path)) {
            out.push(format!(
                "auth.require path (\"{}\") will never match due to earlier match (\"{}\"); fix \
                 by sorting longer paths before shorter paths",
                r.path, earlier.path
            ));
        }
        if !r.rule.hosts.is_empty() {
            out.push(format!(
                "auth.require \"{}\": 'host' in the 'require' field is not implemented (as in \
                 lighttpd) and never matches",
                r.path
            ));
        }
        if !r.rule.groups.is_empty() {
            out.push(format!(
                "auth.require \"{}\": 'group' in the 'require' field never matches with the \
                 plain, htpasswd and htdigest backends",
                r.path
            ));
        }
    }
    out
}

/// The mod_auth settings one request runs with (a field of `ReqConf`).
#[derive(Clone, Debug)]
pub struct AuthConf {
    /// auth.backend and the userfile keys.
    pub settings: Settings,
    /// auth.require, in config order; shared, since merged settings copy it.
    pub require: Rc<[Require]>,
}

// By hand: `Rc<[T]>: Default` needs Rust 1.80, and lightd builds with 1.71.
impl Default for AuthConf {
    fn default() -> AuthConf {
        AuthConf {
            settings: Settings::default(),
            require: Rc::new([]),
        }
    }
}

/// How a key that takes a string (`auth.require`'s options) is given.
fn option_str<'a>(path: &str, key: &str, v: &'a Value) -> Result<&'a str, String> {
    match v {
        Value::Str(s) => Ok(s),
        other => Err(format!(
            "auth.require = ( \"{}\" => ( \"{}\" => ... ) ): expected a string, got {}",
            path,
            key,
            other.describe()
        )),
    }
}

/// Parse `auth.require = ( "path" => ( "method" => ..., ... ), ... )`.
pub(crate) fn parse_require_list(v: &Value) -> Result<Vec<Require>, String> {
    const SYNTAX: &str = "expected ( \"/path\" => ( \"method\" => \"basic\", \"realm\" => \
                          \"...\", \"require\" => \"valid-user\" ), ... )";
    let Value::Array(entries) = v else {
        return Err(format!("{SYNTAX}, got {}", v.describe()));
    };
    let mut out = Vec::with_capacity(entries.len());
    for (path, options) in entries {
        let Some(path) = path else {
            return Err(format!("{SYNTAX}: an entry has no path"));
        };
        let Value::Array(options) = options else {
            return Err(format!(
                "{SYNTAX}: \"{}\" => {}",
                path.escape_debug(),
                options.describe()
            ));
        };
        let mut pairs = Vec::with_capacity(options.len());
        for (k, v) in options {
            let Some(k) = k else {
                return Err(format!(
                    "{SYNTAX}: an option of \"{}\" has no name",
                    path.escape_debug()
                ));
            };
            pairs.push((k.as_str(), option_str(path, k, v)?));
        }
        out.push(Require::parse(path, &pairs)?);
    }
    Ok(out)
}

/// Load-time warnings for every auth.require list ([`config_warnings`]), with its file:line.
pub(crate) fn warn(cfg: &Config, out: &mut Vec<String>) {
    let mut one = |settings: &[ReqSetting], id: Option<usize>| {
        for s in settings {
            let Val::AuthRequire(list) = &s.val else {
                continue;
            };
            let key = match id {
                Some(id) => format!("auth.require@{id}"),
                None => "auth.require".to_string(),
            };
            let at = cfg
                .locs
                .get(&key)
                .map(|l| format!("{l}: "))
                .unwrap_or_default();
            out.extend(
                config_warnings(list)
                    .into_iter()
                    .map(|w| format!("{at}{w}")),
            );
        }
    };
    one(&cfg.base_settings, None);
    // Bounded by the config's own size (at most MAX_COND_BRANCHES branches).
    let mut stack: Vec<&CondChain> = cfg.conds.iter().rev().collect();
    while let Some(chain) = stack.pop() {
        for b in &chain.branches {
            one(&b.settings, Some(b.id));
            stack.extend(b.children.iter().rev());
        }
    }
}
