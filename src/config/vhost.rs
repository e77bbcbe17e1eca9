//! `simple-vhost.*` and `evhost.path-pattern` checked at load time (lighttpd's mod_simple_vhost
//! and mod_evhost); the request-time side, which picks the document root from the Host, is in
//! `modules/vhost.rs`.

/// Append a '/' to a non-empty string that does not end in one.
pub(crate) fn append_slash(s: &mut String) {
    if !s.is_empty() && !s.ends_with('/') {
        s.push('/');
    }
}

/// `simple-vhost.*` for one condition block, normalised as lighttpd's set_defaults does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimpleVhost {
    /// simple-vhost.server-root with a trailing '/'.
    pub(crate) server_root: String,
    pub(crate) default_host: Option<String>,
    /// simple-vhost.document-root with a trailing '/'.
    pub(crate) document_root: Option<String>,
    pub(crate) debug: bool,
}

impl SimpleVhost {
    /// From the four settings (unset strings as ""). None when server-root is empty: lighttpd
    /// then skips the module. An empty default-host or document-root counts as unset.
    pub fn new(
        server_root: &str,
        default_host: &str,
        document_root: &str,
        debug: bool,
    ) -> Option<SimpleVhost> {
        if server_root.is_empty() {
            return None;
        }
        let mut root = server_root.to_string();
        append_slash(&mut root);
        let document_root = (!document_root.is_empty()).then(|| {
            let mut d = document_root.to_string();
            append_slash(&mut d);
            d
        });
        Some(SimpleVhost {
            server_root: root,
            default_host: (!default_host.is_empty()).then(|| default_host.to_string()),
            document_root,
            debug,
        })
    }
}

/// Most %-sequences in one evhost.path-pattern (lighttpd's fixed table holds 63).
pub(crate) const MAX_PATTERN_SEQUENCES: usize = 63;

/// One piece of a compiled evhost.path-pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Piece {
    Text(String),
    /// "%%"
    Percent,
    /// "%_": the whole host name, without the port.
    Whole,
    /// "%N" or "%{N}": part N of the host (0 = domain + TLD, 1 = TLD, 2 = domain, 3...).
    Part(usize),
    /// "%{N.M}": the M-th character (from 1) of part N; nothing if it is shorter.
    Char(usize, usize),
}

/// A compiled evhost.path-pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern {
    pub(crate) pieces: Vec<Piece>,
}

impl Pattern {
    /// Compile a pattern. Ok(None) for an empty one (lighttpd then skips the module).
    /// Sequences: "%%", "%_", "%0".."%9", "%{N}", "%{N.M}" with single digits N and M.
    pub fn parse(pattern: &str) -> Result<Option<Pattern>, String> {
        if pattern.is_empty() {
            return Ok(None);
        }
        let bad = |why: &str| {
            Err(format!(
                "invalid evhost.path-pattern \"{}\": {}",
                pattern.escape_debug(),
                why
            ))
        };
        let b = pattern.as_bytes();
        let digit = |i: usize| {
            b.get(i)
                .filter(|c| c.is_ascii_digit())
                .map(|c| (c - b'0') as usize)
        };
        let mut pieces = Vec::new();
        let mut text_start = 0;
        let mut sequences = 0;
        let mut i = 0;
        while i < b.len() {
            if b.get(i) != Some(&b'%') {
                i += 1;
                continue;
            }
            sequences += 1;
            if sequences > MAX_PATTERN_SEQUENCES {
                return bad("too many %-sequences");
            }
            let (piece, len) = match (b.get(i + 1), digit(i + 1)) {
                (Some(b'%'), _) => (Piece::Percent, 2),
                (Some(b'_'), _) => (Piece::Whole, 2),
                (_, Some(n)) => (Piece::Part(n), 2),
                (Some(b'{'), _) => match (digit(i + 2), b.get(i + 3), digit(i + 4), b.get(i + 5)) {
                    (Some(n), Some(b'}'), _, _) => (Piece::Part(n), 4),
                    (Some(n), Some(b'.'), Some(0), Some(b'}')) => (Piece::Part(n), 6),
                    (Some(n), Some(b'.'), Some(m), Some(b'}')) => (Piece::Char(n, m), 6),
                    _ => return bad("expected %{N} or %{N.M} with single digits"),
                },
                _ => return bad("'%' must be followed by '%', '_', a digit or '{'"),
            };
            if let Some(t) = pattern.get(text_start..i).filter(|t| !t.is_empty()) {
                pieces.push(Piece::Text(t.to_string()));
            }
            pieces.push(piece);
            i += len;
            text_start = i;
        }
        if let Some(t) = pattern.get(text_start..).filter(|t| !t.is_empty()) {
            pieces.push(Piece::Text(t.to_string()));
        }
        Ok(Some(Pattern { pieces }))
    }
}

/// mod_simple_vhost's and mod_evhost's settings for a request: the four simple-vhost keys as
/// written (each may come from a different block) and what they make, rebuilt whenever one
/// of them is applied so that nothing is built per request.
#[derive(Debug, Clone, Default)]
pub struct VhostConf {
    pub server_root: String,
    pub default_host: String,
    pub document_root: String,
    pub debug: bool,
    /// None while simple-vhost.server-root is unset or empty (the module is then skipped).
    pub simple: Option<SimpleVhost>,
    /// evhost.path-pattern; None when unset or empty.
    pub evhost: Option<std::rc::Rc<Pattern>>,
}

impl VhostConf {
    pub(crate) fn rebuild(&mut self) {
        self.simple = SimpleVhost::new(
            &self.server_root,
            &self.default_host,
            &self.document_root,
            self.debug,
        );
    }
}
