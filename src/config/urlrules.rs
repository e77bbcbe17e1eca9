//! The URL rule language that mod_redirect and mod_rewrite share: which string the patterns
//! see, how a rule list is compiled, and how a replacement such as `/x/${esc:1}${qsa}` is
//! expanded, all with lighttpd 1.4.85's semantics (src/keyvalue.c, src/burl.c).
//!
//! # What the patterns are matched against
//! The request-target (path and query, still percent-encoded) after lighttpd normalises it with
//! the default `server.http-parseopts`; see [`match_target`]. Both modules match that string,
//! and `${url.path}` / `${url.query}` / `${qsa}` are cut from it too.
//!
//! # Replacement syntax
//! - `$0`..`$9`: the rule's own captures, inserted as they are (no encoding). `%0`..`%9`: the
//!   captures of the conditional whose block defines the list (lighttpd's `config_capture` of
//!   that block: `$HTTP["host"] =~ "^(www)\."` gives `%1` = `www`); none outside such a block.
//! - `$$` is `$` and `%%` is `%`; a `$` or `%` followed by anything else is kept as written.
//! - `${n}` / `%{n}` (n up to 99) insert a capture, by default percent-encoding everything but
//!   unreserved characters and '/', without double-encoding an existing `%XX`.
//! - Modifiers before the number or name, any number of them: `esc:`/`escape:` (encode all but
//!   unreserved, '%' included), `escnde:` (like the default but '/' encoded too), `escpsnde:`
//!   (the default), `noesc:`/`noescape:` (as is), `encb64u:` / `decb64u:` (base64url without
//!   padding), `tolower:` / `toupper:` (change case, leaving `%XX` alone). A case modifier on
//!   its own selects no encoding and so inserts nothing, exactly as lighttpd does: write
//!   `${tolower:noesc:1}`, not `${tolower:1}`.
//! - Names: `${url.scheme}`, `${url.authority}`, `${url.authority.noport}`, `${url.port}` (the
//!   port of the listening socket), `${url.path}`, `${url.query}`, and `${qsa}`, which appends
//!   the request's query string with '?' (or '&' when the output already has a '?'). The names
//!   are inserted as they are unless a modifier says otherwise.
//! - Anything else inside `${...}` is skipped. An unterminated `${` is refused when the list is
//!   compiled (lighttpd would silently truncate the result there at run time).

use std::fmt::Write as _;

use regex_lite::Regex;

/// The longest result a replacement may produce; past it the request fails (500).
pub const MAX_OUTPUT: usize = 8192;
/// lighttpd refuses regexes with more capture groups than this (its match data has 20 slots).
const MAX_CAPTURES: usize = 19;
/// lighttpd aborts a request after this many passes through mod_rewrite once it has rewritten.
pub const MAX_REWRITE_LOOPS: u16 = 100;

// How an inserted value is recoded; lighttpd's BURL_* flags, combined by the modifiers.
const TOLOWER: u8 = 0x01;
const TOUPPER: u8 = 0x02;
const ENCODE_NONE: u8 = 0x04;
const ENCODE_ALL: u8 = 0x08;
const ENCODE_NDE: u8 = 0x10;
const ENCODE_PSNDE: u8 = 0x20;
const ENCODE_B64U: u8 = 0x40;
const DECODE_B64U: u8 = 0x80;

/// One piece of a compiled replacement.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Lit(String),
    /// `cond`: from the enclosing conditional (`%n`) rather than the rule (`$n`).
    Cap {
        cond: bool,
        num: u8,
        flags: u8,
    },
    Scheme(u8),
    Authority(u8),
    AuthorityNoPort(u8),
    Port,
    Path(u8),
    Query(u8),
    Qsa(u8),
}

/// One compiled `"pattern" => "replacement"` pair.
#[derive(Debug, Clone)]
struct Rule {
    re: Regex,
    pattern: String,
    pieces: Vec<Piece>,
    /// An empty replacement: a match stops the list and changes nothing.
    blank: bool,
    /// Whether any piece reads the rule's own captures (else a cheaper is_match will do).
    needs_caps: bool,
}

/// A compiled rule list, in config order; the first rule that matches wins.
#[derive(Debug, Clone, Default)]
pub struct Rules(Vec<Rule>);

impl Rules {
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The pattern of rule `i` as configured, for log messages.
    pub fn pattern(&self, i: usize) -> Option<&str> {
        self.0.get(i).map(|r| r.pattern.as_str())
    }

    /// Whether any replacement uses `%n`, i.e. whether the caller needs the captures of the
    /// enclosing conditional at all.
    pub fn uses_cond_captures(&self) -> bool {
        self.0.iter().any(|r| {
            r.pieces
                .iter()
                .any(|p| matches!(p, Piece::Cap { cond: true, .. }))
        })
    }
}

/// Compile `(pattern, replacement)` pairs, in config order.
///
/// As lighttpd does with url-normalize on (the default), both sides are first brought into the
/// form of a normalised target: `%xx` in the pattern (`%%xx` in the replacement) gets
/// upper-case hex, and bytes above 0x7F become `%XX` (`%%XX`). The empty pattern matches
/// every target. Errors name the pattern: a regex that regex-lite cannot compile (PCRE-only
/// syntax such as look-around or back-references included), more than 19 capture groups, or a
/// replacement with an unterminated `${`.
pub fn compile(pairs: &[(String, String)]) -> Result<Rules, String> {
    let mut rules = Vec::with_capacity(pairs.len());
    for (pattern, replacement) in pairs {
        let key = normalize_key(pattern);
        let re = Regex::new(&key)
            .map_err(|e| format!("url rule \"{}\": invalid regex: {}", pattern, e))?;
        if re.captures_len().saturating_sub(1) > MAX_CAPTURES {
            return Err(format!(
                "url rule \"{}\": too many capture groups (at most {}; use (?:...))",
                pattern, MAX_CAPTURES
            ));
        }
        let value = normalize_value(replacement);
        let pieces = parse_replacement(value.as_bytes())
            .map_err(|e| format!("url rule \"{}\" => \"{}\": {}", pattern, replacement, e))?;
        let needs_caps = pieces
            .iter()
            .any(|p| matches!(p, Piece::Cap { cond: false, .. }));
        rules.push(Rule {
            re,
            pattern: pattern.clone(),
            blank: value.is_empty(),
            pieces,
            needs_caps,
        });
    }
    Ok(Rules(rules))
}

/// The request data `${url.*}` reads besides the target itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct UrlParts<'a> {
    /// "http" or "https".
    pub scheme: &'a str,
    /// The Host of the request, lower-cased; lighttpd uses `server.name` when it is empty.
    pub authority: &'a str,
    /// The port of the socket the request arrived on (not the one in Host).
    pub port: u16,
}

/// What [`apply`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// No rule matched: go on as if the list were not there.
    NoMatch,
    /// Rule `n` matched and its replacement is empty: lighttpd stops at it and changes nothing
    /// (no redirect; no rewrite).
    Stop(usize),
    /// Rule `n` matched; `out` holds its expansion (possibly empty, e.g. `"$1"` with `$1`
    /// empty).
    Replaced(usize),
}

/// Why an expansion failed; the caller answers 500.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubstError {
    /// The result would be longer than [`MAX_OUTPUT`].
    TooLong,
    /// The result would contain CR, LF or NUL (only possible through a `%n` capture of a
    /// header the caller let through); it must never reach a header or a target.
    Unsafe,
}

impl std::fmt::Display for SubstError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SubstError::TooLong => write!(f, "url rule result longer than {} bytes", MAX_OUTPUT),
            SubstError::Unsafe => f.write_str("url rule result contains CR, LF or NUL"),
        }
    }
}

/// Try the rules in order against `target` (the output of [`match_target`]) and expand the
/// first that matches into `out`. `cond_caps` are `%0`, `%1`, ... (an empty slice when the
/// list is not inside a regex conditional).
pub fn apply(
    rules: &Rules,
    target: &str,
    cond_caps: &[Option<&str>],
    url: &UrlParts,
    out: &mut String,
) -> Result<Outcome, SubstError> {
    out.clear();
    for (i, rule) in rules.0.iter().enumerate() {
        let caps = if rule.needs_caps {
            match rule.re.captures(target) {
                Some(c) => Some(c),
                None => continue,
            }
        } else if rule.re.is_match(target) {
            None
        } else {
            continue;
        };
        if rule.blank {
            return Ok(Outcome::Stop(i));
        }
        let ctx = Ctx {
            target,
            caps: caps.as_ref(),
            cond_caps,
            url,
        };
        expand(&rule.pieces, &ctx, out)?;
        return Ok(Outcome::Replaced(i));
    }
    Ok(Outcome::NoMatch)
}

/// Everything an expansion reads.
struct Ctx<'a, 'h> {
    target: &'a str,
    caps: Option<&'a regex_lite::Captures<'h>>,
    cond_caps: &'a [Option<&'a str>],
    url: &'a UrlParts<'a>,
}

fn expand(pieces: &[Piece], ctx: &Ctx, out: &mut String) -> Result<(), SubstError> {
    let (path, query) = match ctx.target.find('?') {
        Some(q) => (ctx.target.get(..q).unwrap_or(""), ctx.target.get(q + 1..)),
        None => (ctx.target, None),
    };
    for piece in pieces {
        match piece {
            Piece::Lit(s) => out.push_str(s),
            Piece::Cap { cond, num, flags } => {
                let n = usize::from(*num);
                let v = if *cond {
                    ctx.cond_caps.get(n).copied().flatten()
                } else {
                    ctx.caps.and_then(|c| c.get(n)).map(|m| m.as_str())
                };
                if let Some(v) = v {
                    append(out, v, *flags);
                }
            }
            Piece::Scheme(f) => append(out, ctx.url.scheme, *f),
            Piece::Authority(f) => append(out, ctx.url.authority, *f),
            Piece::AuthorityNoPort(f) => {
                let a = ctx.url.authority;
                // A trailing ']' is an IPv6 literal without a port: its colons stay.
                let host = match a.rfind(':') {
                    Some(c) if !a.ends_with(']') => a.get(..c).unwrap_or(a),
                    _ => a,
                };
                append(out, host, *f);
            }
            Piece::Port => {
                let _ = write!(out, "{}", ctx.url.port);
            }
            Piece::Path(f) => append(out, path, *f),
            Piece::Query(f) => append(out, query.unwrap_or(""), *f),
            Piece::Qsa(f) => {
                // A target without '?' has no query at all; "?" alone has an empty one, which
                // still adds the '?' when the output has none yet.
                if let Some(q) = query {
                    if out.contains('?') {
                        if !q.is_empty() {
                            out.push('&');
                        }
                    } else {
                        out.push('?');
                    }
                    append(out, q, *f);
                }
            }
        }
        // Checked per piece, so a replacement of many `$0` stops growing at the limit.
        if out.len() > MAX_OUTPUT {
            return Err(SubstError::TooLong);
        }
    }
    if out.bytes().any(|b| matches!(b, b'\r' | b'\n' | 0)) {
        return Err(SubstError::Unsafe);
    }
    Ok(())
}

/// Append `s` recoded as `flags` say (lighttpd's `burl_append`).
fn append(out: &mut String, s: &str, flags: u8) {
    if s.is_empty() {
        return;
    }
    if flags == 0 {
        out.push_str(s);
        return;
    }
    let off = out.len();
    if flags & ENCODE_NONE != 0 {
        out.push_str(s);
    } else if flags & ENCODE_ALL != 0 {
        encode_all(out, s.as_bytes());
    } else if flags & ENCODE_NDE != 0 {
        encode_nde(out, s.as_bytes(), false);
    } else if flags & ENCODE_PSNDE != 0 {
        encode_nde(out, s.as_bytes(), true);
    } else if flags & ENCODE_B64U != 0 {
        base64url_encode(out, s.as_bytes());
    } else if flags & DECODE_B64U != 0 {
        base64url_decode(out, s.as_bytes());
    }
    // With only a case flag nothing was appended, and there is nothing to change.
    if flags & (TOLOWER | TOUPPER) != 0 && out.len() > off {
        let mut tail = out.split_off(off).into_bytes();
        change_case(&mut tail, flags & TOLOWER != 0);
        out.push_str(&String::from_utf8_lossy(&tail));
    }
}

/// Lower- or upper-case ASCII letters, stepping over `%XX` so the escapes keep their hex.
fn change_case(b: &mut [u8], lower: bool) {
    let mut i = 0;
    while i < b.len() {
        let c = b.get(i).copied().unwrap_or(0);
        if c == b'%' && is_hex(at(b, i + 1)) && is_hex(at(b, i + 2)) {
            i += 3;
            continue;
        }
        if let Some(slot) = b.get_mut(i) {
            *slot = if lower {
                c.to_ascii_lowercase()
            } else {
                c.to_ascii_uppercase()
            };
        }
        i += 1;
    }
}

fn is_unreserved(c: u8) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~')
}

fn is_hex(c: u8) -> bool {
    c.is_ascii_hexdigit()
}

fn hex_val(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        b'A'..=b'F' => c - b'A' + 10,
        _ => 0,
    }
}

/// The byte at `i`, or 0 past the end: the C code reads its NUL terminator there.
fn at(b: &[u8], i: usize) -> u8 {
    b.get(i).copied().unwrap_or(0)
}

const HEX_UC: &[u8; 16] = b"0123456789ABCDEF";

fn push_pct(out: &mut String, c: u8) {
    out.push('%');
    out.push(char::from(HEX_UC[usize::from(c >> 4)]));
    out.push(char::from(HEX_UC[usize::from(c & 0xF)]));
}

/// `esc:`: encode everything but unreserved characters, '%' included.
fn encode_all(out: &mut String, s: &[u8]) {
    for &c in s {
        if is_unreserved(c) {
            out.push(char::from(c));
        } else {
            push_pct(out, c);
        }
    }
}

/// `escnde:` and (`keep_slash`) `escpsnde:`: encode but do not double-encode. An existing
/// `%XX` of an unreserved character is decoded; any other is kept as written.
fn encode_nde(out: &mut String, s: &[u8], keep_slash: bool) {
    let mut i = 0;
    while let Some(&c) = s.get(i) {
        // Unlike lighttpd, an escape is only recognised inside the value: it reads up to two
        // bytes past a capture's end, into the rest of the subject.
        let (h1, h2) = (at(s, i + 1), at(s, i + 2));
        if c == b'%' && is_hex(h1) && is_hex(h2) {
            let x = hex_val(h1) << 4 | hex_val(h2);
            if is_unreserved(x) {
                out.push(char::from(x));
            } else {
                out.push('%');
                out.push(char::from(h1));
                out.push(char::from(h2));
            }
            i += 3;
        } else {
            if is_unreserved(c) || (keep_slash && c == b'/') {
                out.push(char::from(c));
            } else {
                push_pct(out, c);
            }
            i += 1;
        }
    }
}

const B64U: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// `encb64u:`: base64url without padding.
fn base64url_encode(out: &mut String, s: &[u8]) {
    for chunk in s.chunks(3) {
        let b0 = u32::from(at(chunk, 0));
        let b1 = u32::from(at(chunk, 1));
        let b2 = u32::from(at(chunk, 2));
        let v = b0 << 16 | b1 << 8 | b2;
        let n = chunk.len() + 1; // 1 byte -> 2 chars, 2 -> 3, 3 -> 4
        for k in 0..n {
            let idx = (v >> (18 - 6 * k as u32)) & 0x3F;
            out.push(char::from(B64U[idx as usize]));
        }
    }
}

/// `decb64u:` as lighttpd decodes: control characters and space are skipped, decoding stops at
/// the first other character outside the alphabet ('=' included), and a final group of one
/// character (or a NUL) makes the whole value decode to nothing.
fn base64url_decode(out: &mut String, s: &[u8]) {
    let mut bytes = Vec::with_capacity(s.len() / 4 * 3 + 3);
    let mut acc: u32 = 0;
    let mut n: u32 = 0;
    let mut stop: Option<u8> = None;
    for &c in s {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            0x01..=0x20 => continue,
            _ => {
                stop = Some(c);
                break;
            }
        };
        acc = acc << 6 | u32::from(v);
        n += 1;
        if n % 4 == 0 {
            bytes.extend_from_slice(&[(acc >> 16) as u8, (acc >> 8) as u8, acc as u8]);
            acc = 0;
        }
    }
    let rest = if stop == Some(0) { 1 } else { n % 4 };
    match rest {
        3 => bytes.extend_from_slice(&[(acc >> 10) as u8, (acc >> 2) as u8]),
        2 => bytes.push((acc >> 4) as u8),
        1 => return,
        _ => {}
    }
    push_decoded(out, &bytes);
}

/// Append decoded bytes: valid UTF-8 as it is, but control characters and bytes that are not
/// UTF-8 percent-encoded, so that neither a header nor the String can be broken by them.
/// (lighttpd appends the raw bytes.)
fn push_decoded(out: &mut String, b: &[u8]) {
    let mut rest = b;
    // Each round consumes at least one byte: a valid prefix, or an invalid sequence after it.
    while !rest.is_empty() {
        let (valid, bad_len) = match std::str::from_utf8(rest) {
            Ok(s) => (s, 0),
            Err(e) => {
                let v = e.valid_up_to();
                let bad = e.error_len().unwrap_or(rest.len() - v);
                let prefix = rest.get(..v).unwrap_or(&[]);
                (std::str::from_utf8(prefix).unwrap_or(""), bad.max(1))
            }
        };
        for ch in valid.chars() {
            if ch.is_ascii_control() {
                push_pct(out, ch as u8);
            } else {
                out.push(ch);
            }
        }
        let used = valid.len();
        for &c in rest.get(used..used + bad_len).unwrap_or(&[]) {
            push_pct(out, c);
        }
        rest = rest.get(used + bad_len..).unwrap_or(&[]);
    }
}

/// Compile a normalised replacement into pieces, scanning it the way lighttpd's
/// `pcre_keyvalue_buffer_subst` does at every request, so both agree on every odd input.
fn parse_replacement(v: &[u8]) -> Result<Vec<Piece>, &'static str> {
    let mut pieces = Vec::new();
    let mut lit: Vec<u8> = Vec::new();
    let mut start = 0;
    let mut k = 0;
    // A '$' or '%' in the last byte is plain text: it has nothing to introduce.
    while k + 1 < v.len() {
        let c = at(v, k);
        if c == b'$' || c == b'%' {
            lit.extend_from_slice(v.get(start..k).unwrap_or(&[]));
            let next = at(v, k + 1);
            if next == b'{' {
                let (piece, close) = parse_braced(v, k)?;
                if let Some(p) = piece {
                    flush(&mut lit, &mut pieces);
                    pieces.push(p);
                }
                k = close;
            } else if next.is_ascii_digit() {
                flush(&mut lit, &mut pieces);
                pieces.push(Piece::Cap {
                    cond: c == b'%',
                    num: next - b'0',
                    flags: 0,
                });
                k += 1;
            } else {
                // "$$" and "%%" are the escapes; anything else is kept, '$' or '%' included.
                lit.push(c);
                if next != c {
                    lit.push(next);
                }
                k += 1;
            }
            start = k + 1;
        }
        k += 1;
    }
    lit.extend_from_slice(v.get(start..).unwrap_or(&[]));
    flush(&mut lit, &mut pieces);
    Ok(pieces)
}

fn flush(lit: &mut Vec<u8>, pieces: &mut Vec<Piece>) {
    if !lit.is_empty() {
        pieces.push(Piece::Lit(String::from_utf8_lossy(lit).into_owned()));
        lit.clear();
    }
}

/// Index of the first `ch` at or after `from`, stopping at a NUL as the C string would.
fn find_from(v: &[u8], from: usize, ch: u8) -> Option<usize> {
    let rest = v.get(from..)?;
    let end = rest.iter().position(|&c| c == 0).unwrap_or(rest.len());
    rest.get(..end)?
        .iter()
        .position(|&c| c == ch)
        .map(|i| from + i)
}

const UNTERMINATED: &str = "unterminated ${...} or %{...} in the replacement";

/// Parse the `${...}` or `%{...}` that starts at `k`; returns its piece (None when it inserts
/// nothing) and the index of its closing '}'.
fn parse_braced(v: &[u8], k: usize) -> Result<(Option<Piece>, usize), &'static str> {
    let cond = at(v, k) == b'%';
    let mut p = k + 2;
    let mut flags = 0u8;
    let after_colon = |p: usize| find_from(v, p, b':').map(|c| c + 1).ok_or(UNTERMINATED);
    // Every branch advances p, so this ends within v.len() rounds.
    loop {
        let c = at(v, p);
        if c.is_ascii_digit() || c == b'}' || c == 0 {
            break;
        }
        let rest = v.get(p..).unwrap_or(&[]);
        if rest.starts_with(b"esc") {
            p += 3;
            let r = v.get(p..).unwrap_or(&[]);
            if r.starts_with(b":") {
                flags |= ENCODE_ALL;
                p += 1;
            } else if r.starts_with(b"ape:") {
                flags |= ENCODE_ALL;
                p += 4;
            } else if r.starts_with(b"nde:") {
                flags |= ENCODE_NDE;
                p += 4;
            } else if r.starts_with(b"psnde:") {
                flags |= ENCODE_PSNDE;
                p += 6;
            } else {
                p = after_colon(p)?;
            }
        } else if rest.starts_with(b"no") {
            p += 2;
            let r = v.get(p..).unwrap_or(&[]);
            if r.starts_with(b"esc:") {
                flags |= ENCODE_NONE;
                p += 4;
            } else if r.starts_with(b"escape:") {
                flags |= ENCODE_NONE;
                p += 7;
            } else {
                p = after_colon(p)?;
            }
        } else if rest.starts_with(b"to") {
            p += 2;
            let r = v.get(p..).unwrap_or(&[]);
            if r.starts_with(b"lower:") {
                flags |= TOLOWER;
                p += 6;
            } else if r.starts_with(b"upper:") {
                flags |= TOUPPER;
                p += 6;
            } else {
                p = after_colon(p)?;
            }
        } else if rest.starts_with(b"url.") {
            p += 4;
            let r = v.get(p..).unwrap_or(&[]);
            let named: [(&[u8], Piece); 6] = [
                (b"scheme}", Piece::Scheme(flags)),
                (b"authority}", Piece::Authority(flags)),
                (b"port}", Piece::Port),
                (b"path}", Piece::Path(flags)),
                (b"query}", Piece::Query(flags)),
                (b"authority.noport}", Piece::AuthorityNoPort(flags)),
            ];
            for (name, piece) in named {
                if r.starts_with(name) {
                    return Ok((Some(piece), p + name.len() - 1));
                }
            }
            // An unknown url.* name inserts nothing.
            return find_from(v, p, b'}')
                .map(|close| (None, close))
                .ok_or(UNTERMINATED);
        } else if rest.starts_with(b"qsa}") {
            return Ok((Some(Piece::Qsa(flags)), p + 3));
        } else if rest.starts_with(b"encb64u:") {
            flags |= ENCODE_B64U;
            p += 8;
        } else if rest.starts_with(b"decb64u:") {
            flags |= DECODE_B64U;
            p += 8;
        } else {
            // Unknown characters are skipped one at a time.
            p += 1;
        }
    }
    let c = at(v, p);
    if c == 0 {
        return Err(UNTERMINATED);
    }
    if c == b'}' {
        // Modifiers with neither number nor name: nothing to insert.
        return Ok((None, p));
    }
    let mut num = c - b'0';
    p += 1;
    let d = at(v, p);
    if d.is_ascii_digit() {
        num = num * 10 + (d - b'0');
        p += 1;
    }
    if at(v, p) != b'}' {
        p = find_from(v, p, b'}').ok_or(UNTERMINATED)?;
    }
    if flags == 0 {
        flags = ENCODE_PSNDE;
    }
    Ok((Some(Piece::Cap { cond, num, flags }), p))
}

/// lighttpd's `pcre_keyvalue_burl_normalize_key`: `%xx` gets upper-case hex and bytes above
/// 0x7F are percent-encoded, so a pattern is written in the same terms as a normalised target.
fn normalize_key(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let (h1, h2) = (at(b, i + 1), at(b, i + 2));
        if c == b'%' && is_hex(h1) && is_hex(h2) {
            out.push('%');
            out.push(char::from(h1.to_ascii_uppercase()));
            out.push(char::from(h2.to_ascii_uppercase()));
            i += 3;
        } else {
            if c > 0x7F {
                push_pct(&mut out, c);
            } else {
                out.push(char::from(c));
            }
            i += 1;
        }
    }
    out
}

/// lighttpd's `pcre_keyvalue_burl_normalize_value`: the same for a replacement, where a
/// literal percent is written `%%`: `%%xx` gets upper-case hex, high bytes become `%%XX`.
fn normalize_value(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = String::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let (h1, h2) = (at(b, i + 2), at(b, i + 3));
        if c == b'%' && at(b, i + 1) == b'%' && is_hex(h1) && is_hex(h2) {
            out.push_str("%%");
            out.push(char::from(h1.to_ascii_uppercase()));
            out.push(char::from(h2.to_ascii_uppercase()));
            i += 4;
        } else {
            if c > 0x7F {
                out.push('%');
                push_pct(&mut out, c);
            } else {
                out.push(char::from(c));
            }
            i += 1;
        }
    }
    out
}

/// Bytes the request-target may carry unencoded (lighttpd's `encoded_chars_http_uri_reqd` is
/// the complement): unreserved, sub-delims, ':', '@', '/' and '?'.
fn allowed_raw(c: u8) -> bool {
    is_unreserved(c)
        || matches!(
            c,
            b'!' | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
                | b'/'
                | b'?'
        )
}

/// A byte that can never occur in UTF-8, or that starts an overlong form of ASCII. This is
/// lighttpd's whole UTF-8 check: longer overlong forms and stray continuation bytes pass.
fn utf8_invalid_byte(c: u8) -> bool {
    c >= 0xF5 || (c | 1) == 0xC1
}

/// Normalise a request-target into the string the rule patterns are matched against, as
/// lighttpd 1.4.85 does with the default `server.http-parseopts` (url-normalize-unreserved,
/// url-ctrls-reject, url-path-2f-decode, url-path-dotseg-remove, url-invalid-utf8-reject):
///
/// - `%XX` of an unreserved character (A-Z a-z 0-9 - . _ ~) is decoded; every other `%XX`
///   stays encoded with upper-case hex (`%3a` -> `%3A`, `%20` stays).
/// - Bytes a target may not carry raw (space, `"`, `<`, `>`, `\`, `^`, `` ` ``, `{`, `|`, `}`,
///   controls, DEL, bytes above 0x7F, a '%' that starts no escape) are percent-encoded.
/// - A '#' and everything after it is dropped.
/// - 400 for a control character or DEL in any spelling (`%00`-`%1F`, `%7F`), or a byte that
///   is never valid UTF-8 (`%C0`, `%C1`, `%F5`-`%FF`, raw or encoded).
/// - In the path (not the query), `%2F` becomes '/', then "." and ".." segments and repeated
///   slashes are removed ("/a/b/.." -> "/a/"; ".." cannot climb above "/").
///
/// The query is kept as it is otherwise (`+` and `%20` stay distinct). An absolute-form target
/// (`http://host/path`) is cut to its path (the caller takes the host from it); `*` (OPTIONS)
/// is returned unchanged; anything else that does not start with '/' is a 400, as lighttpd's
/// strict request-line parsing has it.
pub fn match_target(raw_target: &[u8], out: &mut String) -> Result<(), u16> {
    out.clear();
    let raw = origin_form(raw_target)?;
    if raw == b"*" {
        out.push('*');
        return Ok(());
    }

    let mut buf: Vec<u8> = Vec::with_capacity(raw.len() + 8);
    let mut qs: Option<usize> = None;
    let mut invalid_utf8 = false;
    let mut i = 0;
    while let Some(&c) = raw.get(i) {
        let (h1, h2) = (at(raw, i + 1), at(raw, i + 2));
        if allowed_raw(c) {
            if c == b'?' && qs.is_none() {
                qs = Some(buf.len());
            }
            buf.push(c);
            i += 1;
        } else if c == b'%' && is_hex(h1) && is_hex(h2) {
            let x = hex_val(h1) << 4 | hex_val(h2);
            if is_unreserved(x) {
                buf.push(x);
            } else {
                buf.extend_from_slice(&[b'%', h1.to_ascii_uppercase(), h2.to_ascii_uppercase()]);
                invalid_utf8 |= utf8_invalid_byte(x);
            }
            i += 3;
        } else if c == b'#' {
            break;
        } else {
            buf.extend_from_slice(&[
                b'%',
                HEX_UC[usize::from(c >> 4)],
                HEX_UC[usize::from(c & 0xF)],
            ]);
            invalid_utf8 |= utf8_invalid_byte(c);
            i += 1;
        }
    }
    if invalid_utf8 {
        return Err(400);
    }
    // Every '%' is now followed by two upper-case hex digits, so this finds %00-%1F and %7F.
    for (j, &c) in buf.iter().enumerate() {
        if c == b'%'
            && (at(&buf, j + 1) < b'2' || (at(&buf, j + 1) == b'7' && at(&buf, j + 2) == b'F'))
        {
            return Err(400);
        }
    }

    let (path, query) = buf.split_at(qs.unwrap_or(buf.len()));
    let mut decoded = Vec::with_capacity(path.len());
    let mut j = 0;
    while let Some(&c) = path.get(j) {
        if c == b'%' && at(path, j + 1) == b'2' && at(path, j + 2) == b'F' {
            decoded.push(b'/');
            j += 3;
        } else {
            decoded.push(c);
            j += 1;
        }
    }
    let mut result = remove_dot_segments(&decoded);
    result.extend_from_slice(query);
    // Everything non-ASCII was percent-encoded above, so this cannot fail.
    match String::from_utf8(result) {
        Ok(s) => {
            *out = s;
            Ok(())
        }
        Err(_) => Err(400),
    }
}

/// The origin-form part of a request-target (see [`match_target`]).
fn origin_form(raw: &[u8]) -> Result<&[u8], u16> {
    if raw.first() == Some(&b'/') || raw == b"*" {
        return Ok(raw);
    }
    for scheme in [&b"http://"[..], &b"https://"[..]] {
        let n = scheme.len();
        let head = raw.get(..n).unwrap_or(&[]);
        if raw.len() > n && head.eq_ignore_ascii_case(scheme) {
            let rest = raw.get(n..).unwrap_or(&[]);
            if let Some(slash) = rest.iter().position(|&c| c == b'/') {
                // lighttpd: an empty or absurdly long authority is a bad request.
                if slash == 0 || slash >= 1024 {
                    return Err(400);
                }
                return Ok(rest.get(slash..).unwrap_or(&[]));
            }
        }
    }
    Err(400)
}

/// Remove "." and ".." segments and empty segments from a path that starts with '/'. A path
/// that ends in "/", "/." or "/.." keeps a trailing slash.
fn remove_dot_segments(path: &[u8]) -> Vec<u8> {
    let body = path.get(1..).unwrap_or(&[]);
    let mut segs: Vec<&[u8]> = Vec::new();
    let mut trailing = false;
    let mut parts = body.split(|&c| c == b'/').peekable();
    while let Some(seg) = parts.next() {
        let last = parts.peek().is_none();
        match seg {
            b"" | b"." => {}
            b".." => {
                segs.pop();
            }
            s => segs.push(s),
        }
        if last {
            trailing = matches!(seg, b"" | b"." | b"..");
        }
    }
    let mut out = Vec::with_capacity(path.len());
    out.push(b'/');
    for (n, s) in segs.iter().enumerate() {
        if n > 0 {
            out.push(b'/');
        }
        out.extend_from_slice(s);
    }
    if trailing && !segs.is_empty() {
        out.push(b'/');
    }
    out
}

/// The status mod_redirect answers with. `configured` is `url.redirect-code` if set; lighttpd
/// takes any value from 100 to 999 as it is and treats anything else as unset. Unset means
/// 301 for GET and HEAD and for HTTP/1.0 clients, else 308 (which, unlike 301, tells the
/// client to repeat the method and body).
///
/// The pipeline runs the redirect list in the uri_clean phase (after mod_rewrite's uri_raw
/// pass), matching [`match_target`]'s string; on [`Outcome::Replaced`] it sets `Location` to
/// the result (lighttpd sends no Location at all when the result is empty) and finishes the
/// request with this status.
pub fn redirect_status(configured: Option<i64>, get_or_head: bool, http_1_0: bool) -> u16 {
    match configured {
        Some(c) if (100..1000).contains(&c) => c as u16,
        _ if get_or_head || http_1_0 => 301,
        _ => 308,
    }
}

/// The six mod_rewrite keys. What the request pipeline does with them:
///
/// - **Where**: the plain list (`url.rewrite-once`, `-final`, `url.rewrite`, `-repeat`) runs in
///   the uri_raw phase, before mod_redirect. The "if-not-file" list runs in the physical phase,
///   only if no handler has claimed the request yet and the physical path is not a regular
///   file (missing, a directory, anything else, or followed by path-info all count as "not a
///   file"). Both match the normalised target ([`match_target`]).
/// - **Which list applies**: one config block's keys make at most two lists (see
///   [`compile_rewrite`]); a later matching block's list replaces an earlier one, it does not
///   extend it.
/// - **On a match**: see [`rewrite`]. An empty replacement stops the list with no rewrite.
///   Otherwise the result must start with '/', or the request fails with 500. The new target
///   replaces the old, the physical path is cleared, and request processing restarts: the
///   target is normalised again (400 if it is now invalid), conditionals are re-evaluated and
///   the phases run again from uri_raw.
/// - **Once or repeat**: after a "once" rule (`url.rewrite-once`, its old names
///   `url.rewrite-final` and `url.rewrite`, and `url.rewrite-if-not-file`) has rewritten, no
///   rewrite rule of either list applies again for this request. After a "repeat" rule
///   (`url.rewrite-repeat`, `url.rewrite-repeat-if-not-file`) the lists are tried again on the
///   new target.
/// - **Loop limit**: once something has been rewritten, every further pass through mod_rewrite
///   (each phase that consults a list) counts; the 101st fails the request with 500
///   ("endless loop in rewrite-rule"). [`RewriteState`] keeps that count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RewriteKind {
    Once,
    Final,
    Rewrite,
    Repeat,
    IfNotFile,
    RepeatIfNotFile,
}

impl RewriteKind {
    pub const ALL: [RewriteKind; 6] = [
        RewriteKind::Once,
        RewriteKind::Final,
        RewriteKind::Rewrite,
        RewriteKind::Repeat,
        RewriteKind::IfNotFile,
        RewriteKind::RepeatIfNotFile,
    ];

    /// The config key.
    pub fn key(self) -> &'static str {
        match self {
            RewriteKind::Once => "url.rewrite-once",
            RewriteKind::Final => "url.rewrite-final",
            RewriteKind::Rewrite => "url.rewrite",
            RewriteKind::Repeat => "url.rewrite-repeat",
            RewriteKind::IfNotFile => "url.rewrite-if-not-file",
            RewriteKind::RepeatIfNotFile => "url.rewrite-repeat-if-not-file",
        }
    }

    pub fn from_key(key: &str) -> Option<RewriteKind> {
        RewriteKind::ALL.into_iter().find(|k| k.key() == key)
    }

    /// Whether the lists are tried again after this kind of rule has rewritten.
    pub fn repeats(self) -> bool {
        matches!(self, RewriteKind::Repeat | RewriteKind::RepeatIfNotFile)
    }

    /// Whether it belongs to the physical-phase list, applied only when no regular file exists.
    pub fn if_not_file(self) -> bool {
        matches!(self, RewriteKind::IfNotFile | RewriteKind::RepeatIfNotFile)
    }

    /// Where lighttpd puts this kind's rules within its list.
    pub fn rank(self) -> u8 {
        match self {
            RewriteKind::Once | RewriteKind::IfNotFile => 0,
            RewriteKind::Final => 1,
            RewriteKind::Rewrite => 2,
            RewriteKind::Repeat | RewriteKind::RepeatIfNotFile => 3,
        }
    }
}

/// One compiled mod_rewrite list: "once" rules first, then "repeat" rules from `repeat_from`.
#[derive(Debug, Clone, Default)]
pub struct RewriteList {
    pub rules: Rules,
    pub repeat_from: usize,
}

/// The two lists one config block defines.
#[derive(Debug, Clone, Default)]
pub struct RewriteLists {
    /// From `url.rewrite-once`, `-final`, `url.rewrite` and `-repeat` (uri_raw phase).
    pub uri: Option<RewriteList>,
    /// From `url.rewrite-if-not-file` and `-repeat-if-not-file` (physical phase).
    pub if_not_file: Option<RewriteList>,
}

/// Build one block's lists the way lighttpd does: whatever order the keys were written in,
/// the plain list holds the rules of `url.rewrite-once`, then `url.rewrite-final`, then
/// `url.rewrite`, then `url.rewrite-repeat`, and the first matching rule of the whole list
/// wins; likewise `-if-not-file` before `-repeat-if-not-file`.
pub fn compile_rewrite(
    block: &[(RewriteKind, &[(String, String)])],
) -> Result<RewriteLists, String> {
    let build = |nf: bool| -> Result<Option<RewriteList>, String> {
        let mut mine: Vec<(RewriteKind, &[(String, String)])> = block
            .iter()
            .filter(|(k, _)| k.if_not_file() == nf)
            .copied()
            .collect();
        if mine.is_empty() {
            return Ok(None);
        }
        // Stable, so two entries of one kind keep their order.
        mine.sort_by_key(|(k, _)| k.rank());
        let mut pairs = Vec::new();
        let mut repeat_from = None;
        for (kind, list) in mine {
            if kind.repeats() && repeat_from.is_none() {
                repeat_from = Some(pairs.len());
            }
            pairs.extend(list.iter().cloned());
        }
        let rules = compile(&pairs).map_err(|e| {
            let keys: Vec<&str> = block.iter().map(|(k, _)| k.key()).collect();
            format!("{} ({})", e, keys.join(", "))
        })?;
        let repeat_from = repeat_from.unwrap_or(rules.len());
        Ok(Some(RewriteList { rules, repeat_from }))
    };
    Ok(RewriteLists {
        uri: build(false)?,
        if_not_file: build(true)?,
    })
}

/// mod_rewrite's per-request memory; create one per request and keep it across restarts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RewriteState {
    /// Passes through [`rewrite`] since the first rewrite.
    loops: u16,
    rewritten: bool,
    /// A "once" rule has rewritten: no more rewriting for this request.
    finished: bool,
}

impl RewriteState {
    pub fn rewritten(&self) -> bool {
        self.rewritten
    }
}

/// What the pipeline does after [`rewrite`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RewriteStep {
    /// Nothing changed: go on with the phase.
    GoOn,
    /// `out` is the new target: clear the physical path and restart request processing.
    Restart,
    /// Fail the request with this status (500): endless loop, a result that does not start
    /// with '/', or a result too long.
    Fail(u16),
}

/// One pass of mod_rewrite over `list` (either list; the state is shared, as in lighttpd).
pub fn rewrite(
    list: &RewriteList,
    state: &mut RewriteState,
    target: &str,
    cond_caps: &[Option<&str>],
    url: &UrlParts,
    out: &mut String,
) -> RewriteStep {
    if state.rewritten {
        state.loops = state.loops.saturating_add(1);
        if state.loops > MAX_REWRITE_LOOPS {
            return RewriteStep::Fail(500);
        }
        if state.finished {
            return RewriteStep::GoOn;
        }
    }
    match apply(&list.rules, target, cond_caps, url, out) {
        Ok(Outcome::NoMatch) | Ok(Outcome::Stop(_)) => RewriteStep::GoOn,
        Ok(Outcome::Replaced(i)) if out.starts_with('/') => {
            state.rewritten = true;
            if i < list.repeat_from {
                state.finished = true;
            }
            RewriteStep::Restart
        }
        Ok(Outcome::Replaced(_)) | Err(_) => RewriteStep::Fail(500),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile_pairs(pairs: &[(&str, &str)]) -> Result<Rules, String> {
        let owned: Vec<(String, String)> = pairs
            .iter()
            .map(|(p, r)| (p.to_string(), r.to_string()))
            .collect();
        compile(&owned)
    }

    const URL: UrlParts<'static> = UrlParts {
        scheme: "http",
        authority: "localhost:99",
        port: 38471,
    };

    /// Normalise `raw` as a request-target, apply the rules, return the outcome and output.
    fn run_with(
        pairs: &[(&str, &str)],
        raw: &str,
        caps: &[Option<&str>],
        url: &UrlParts,
    ) -> (Outcome, String) {
        let rules = compile_pairs(pairs).expect("test rules compile");
        let mut target = String::new();
        match_target(raw.as_bytes(), &mut target).expect("test target is valid");
        let mut out = String::new();
        let o = apply(&rules, &target, caps, url, &mut out).expect("expansion succeeds");
        (o, out)
    }

    fn subst(pairs: &[(&str, &str)], raw: &str) -> String {
        match run_with(pairs, raw, &[], &URL) {
            (Outcome::Replaced(_), s) => s,
            (o, _) => panic!("{:?} for {}", o, raw),
        }
    }

    fn target(raw: &[u8]) -> Result<String, u16> {
        let mut out = String::from("left over");
        match_target(raw, &mut out).map(|()| out)
    }

    #[test]
    fn target_normalisation_table() {
        // lighttpd's src/t/test_burl.c (unreserved cases) plus the default 2F-decode and
        // dot-segment removal, one line per case.
        let ok: &[(&[u8], &str)] = &[
            (b"/", "/"),
            (b"/abc", "/abc"),
            (b"/abc/", "/abc/"),
            (b"/abc?", "/abc?"),
            (b"/abc?d=e&f=g", "/abc?d=e&f=g"),
            (b"/abc?d=e&f=g#", "/abc?d=e&f=g"),
            (b"/abc?d=e&f=g#any", "/abc?d=e&f=g"),
            (b"/abc#frag?x", "/abc"),
            (b"/%20", "/%20"),
            (b"/%2b", "/%2B"),
            (b"/%2B", "/%2B"),
            (b"/%3a", "/%3A"),
            (b"/%3A", "/%3A"),
            (b"/%41%62%7e%2d%2E%5f", "/Ab~-._"),
            (b"/~test%20\xc3\xa4_", "/~test%20%C3%A4_"),
            (b"/%c3%a4", "/%C3%A4"),
            (b"/a b\"<>", "/a%20b%22%3C%3E"),
            (b"/{|}^`\\[]", "/%7B%7C%7D%5E%60%5C%5B%5D"),
            (b"/!$&'()*+,;=:@", "/!$&'()*+,;=:@"),
            (b"/100%", "/100%25"),
            (b"/%zz%4", "/%25zz%254"),
            // Decoded exactly once: neither spelling turns into a separator.
            (b"/%252F", "/%252F"),
            (b"/%2%46", "/%252F"),
            // %2F becomes '/' in the path only, before dot segments are judged.
            (b"/a%2fb", "/a/b"),
            (b"/a%2Fb?c=%2f", "/a/b?c=%2F"),
            (b"/%2F", "/"),
            (b"/a%2F..%2Fb", "/b"),
            (b"/%2e%2e/etc", "/etc"),
            (b"//", "/"),
            (b"/a//b", "/a/b"),
            (b"/a/./b", "/a/b"),
            (b"/a/../b", "/b"),
            (b"/a/b/.", "/a/b/"),
            (b"/a/b/..", "/a/"),
            (b"/a/../b/..", "/"),
            (b"/../../x", "/x"),
            (b"/a/.b/..c/...", "/a/.b/..c/..."),
            (b"/subdir/../css/index.html", "/css/index.html"),
            (b"/a/..?x=/../", "/?x=/../"),
            // The query keeps '+' and %20 apart, and its '?' after the first.
            (b"/p?a=b+c%20d", "/p?a=b+c%20d"),
            (b"/a?b?c", "/a?b?c"),
            (b"/%3F?x", "/%3F?x"),
            // Absolute form is cut to its path; OPTIONS * passes.
            (b"http://example.org/a%3a", "/a%3A"),
            (b"HTTPS://example.org/x?y", "/x?y"),
            (b"*", "*"),
        ];
        for (raw, want) in ok {
            assert_eq!(
                target(raw).as_deref(),
                Ok(*want),
                "{}",
                String::from_utf8_lossy(raw)
            );
        }
        let bad: &[&[u8]] = &[
            b"/%C0",
            b"/%c1",
            b"/\xc0",
            b"/\xfd",
            b"/\xfe",
            b"/\xff",
            b"/%F5",
            b"/\x07",
            b"/\t",
            b"/\r",
            b"/\x7f",
            b"/%00",
            b"/%1f",
            b"/%7f",
            b"/a?b=%0a",
            b"",
            b"abc",
            b"http://example.org",
            b"http:///x",
            b"ftp://example.org/x",
        ];
        for raw in bad {
            assert_eq!(target(raw), Err(400), "{}", String::from_utf8_lossy(raw));
        }
        let long_host = format!("http://{}/x", "h".repeat(1024));
        assert_eq!(target(long_host.as_bytes()), Err(400));
    }

    #[test]
    fn lighttpd_encoded_path_redirect() {
        // tests/core-condition.t with var-include-sub.conf: the capture is inserted as it is,
        // from the normalised target.
        let got = subst(
            &[("^/rewrite/all(/.*)$", "$1")],
            "/rewrite/all/some+test%3axxx%20with%20space",
        );
        assert_eq!(got, "/some+test%3Axxx%20with%20space");
    }

    #[test]
    fn empty_pattern_matches_everything() {
        // tests/condition.conf: url.redirect = ( "" => "/default" ).
        assert_eq!(subst(&[("", "/default")], "/index.html"), "/default");
        assert_eq!(subst(&[("", "/match_1")], "/?x"), "/match_1");
    }

    #[test]
    fn lighttpd_keyvalue_cases() {
        // src/t/test_keyvalue.c, with the enclosing $HTTP["host"] =~ "^(www).example.com$".
        let pairs = [
            ("^/foo($|\\?.+)", "/foo/$1"),
            ("^/bar(?:$|\\?(.+))", "/?bar&$1"),
            ("^/redirect(?:\\?(.*))?$", "/?seg=%1&$1"),
            ("^(/[^?]*)(?:\\?(.*))?$", "/?file=$1&$2"),
        ];
        let caps = [Some("www.example.com"), Some("www")];
        let cases = [
            ("/foo", "/foo/"),
            ("/foo?a=b", "/foo/?a=b"),
            ("/bar?a=b", "/?bar&a=b"),
            ("/nofile?a=b", "/?file=/nofile&a=b"),
            ("/redirect?a=b", "/?seg=www&a=b"),
        ];
        for (raw, want) in cases {
            let (o, out) = run_with(&pairs, raw, &caps, &URL);
            assert!(matches!(o, Outcome::Replaced(_)), "{}", raw);
            assert_eq!(out, want, "{}", raw);
        }
    }

    #[test]
    fn first_match_wins_and_blank_stops() {
        let pairs = [
            ("^/e$", ""),
            ("^/e", "/never"),
            ("^/x", "/one"),
            ("^/", "/two"),
        ];
        assert_eq!(run_with(&pairs, "/e", &[], &URL).0, Outcome::Stop(0));
        assert_eq!(
            run_with(&pairs, "/x", &[], &URL),
            (Outcome::Replaced(2), "/one".to_string())
        );
        assert_eq!(
            run_with(&pairs, "/y", &[], &URL),
            (Outcome::Replaced(3), "/two".to_string())
        );
        assert_eq!(
            run_with(&[("^/x", "/y")], "/z", &[], &URL).0,
            Outcome::NoMatch
        );
    }

    #[test]
    fn capture_encodings() {
        // Observed from lighttpd 1.4.69 for this request (toupper: its 1.4.85 fix applied).
        let raw = "/a/AbC%41%2f%3a%7e%c3%a4%20x/";
        let one = |r: &str| subst(&[("^/a/(.*)$", r)], raw);
        assert_eq!(one("$1"), "AbCA/%3A~%C3%A4%20x/");
        assert_eq!(one("${1}"), "AbCA/%3A~%C3%A4%20x/");
        assert_eq!(one("${escpsnde:1}"), "AbCA/%3A~%C3%A4%20x/");
        assert_eq!(one("${escnde:1}"), "AbCA%2F%3A~%C3%A4%20x%2F");
        assert_eq!(one("${esc:1}"), "AbCA%2F%253A~%25C3%25A4%2520x%2F");
        assert_eq!(one("${escape:1}"), one("${esc:1}"));
        assert_eq!(one("${noesc:1}"), "AbCA/%3A~%C3%A4%20x/");
        assert_eq!(one("${noescape:1}"), one("${noesc:1}"));
        assert_eq!(one("${esc:tolower:1}"), "abca%2F%253a~%25c3%25a4%2520x%2F");
        assert_eq!(one("${toupper:escpsnde:1}"), "ABCA/%3A~%C3%A4%20X/");
        // A case modifier alone selects no encoding, so inserts nothing (lighttpd too).
        assert_eq!(one("<${tolower:1}|${tolower:url.path}>"), "<|>");
        // The default encoding of ${n} encodes what a raw capture would not.
        assert_eq!(subst(&[("^/(.*)$", "/${1}")], "/a:b@c$d"), "/a%3Ab%40c%24d");
        assert_eq!(subst(&[("^/(.*)$", "/$1")], "/a:b@c$d"), "/a:b@c$d");
        // No double encoding, and escapes of unreserved characters are decoded.
        assert_eq!(subst(&[("^/(.*)$", "/${escnde:1}")], "/%5b"), "/%5B");
    }

    #[test]
    fn literal_escapes_and_odd_forms() {
        // Observed from lighttpd 1.4.69.
        let got = subst(&[("^/f(.*)", "$$1|%%1|$x|%a|${foo}|${1 }|${12}|$")], "/fzz");
        assert_eq!(got, "$1|%1|$x|%a||zz||$");
        assert_eq!(subst(&[("^/(.)", "$%1%")], "/q"), "$%1%");
        // An unknown modifier up to its ':' is skipped; the default encoding then applies.
        assert_eq!(subst(&[("^/(.*)", "/${escfoo:1}")], "/a:b"), "/a%3Ab");
        assert_eq!(subst(&[("^/(.*)", "${esc:}x")], "/a"), "x");
    }

    #[test]
    fn two_digit_captures() {
        let pat = "^/(a)(b)(c)(d)(e)(f)(g)(h)(i)(j)(k)(l)$";
        assert_eq!(
            subst(&[(pat, "/${12}${10}|$12")], "/abcdefghijkl"),
            "/lj|a2"
        );
        assert_eq!(subst(&[(pat, "/${13}x")], "/abcdefghijkl"), "/x");
        let nineteen = format!("^/{}$", "(x)".repeat(19));
        assert!(compile_pairs(&[(&nineteen, "/")]).is_ok());
        let twenty = format!("^/{}$", "(x)".repeat(20));
        let e = compile_pairs(&[(&twenty, "/")]).unwrap_err();
        assert!(e.contains(&twenty) && e.contains("capture"), "{}", e);
    }

    #[test]
    fn url_parts_and_qsa() {
        let r = |rule: &str, raw: &str, url: &UrlParts| match run_with(
            &[("^/", rule)],
            raw,
            &[],
            url,
        ) {
            (Outcome::Replaced(_), s) => s,
            (o, _) => panic!("{:?}", o),
        };
        let all = "${url.scheme}|${url.authority}|${url.authority.noport}|${url.port}|${url.path}|${url.query}|${url.nosuch}";
        assert_eq!(
            r(all, "/d/x%3a?q=1&r", &URL),
            "http|localhost:99|localhost|38471|/d/x%3A|q=1&r|"
        );
        assert_eq!(r(all, "/d", &URL), "http|localhost:99|localhost|38471|/d||");
        let v6 = UrlParts {
            scheme: "https",
            authority: "[::1]",
            port: 443,
        };
        assert_eq!(r("${url.authority.noport}", "/", &v6), "[::1]");
        let v6p = UrlParts {
            authority: "[::1]:8443",
            ..v6
        };
        assert_eq!(r("${url.authority.noport}", "/", &v6p), "[::1]");
        // ${qsa}: '?' or '&' as the output needs; "?" alone still adds one.
        assert_eq!(r("/y${qsa}", "/b?q=1", &URL), "/y?q=1");
        assert_eq!(r("/y${qsa}", "/b?", &URL), "/y?");
        assert_eq!(r("/y${qsa}", "/b", &URL), "/y");
        assert_eq!(r("/y?z=1${qsa}", "/b?q=1", &URL), "/y?z=1&q=1");
        assert_eq!(r("/y?z=1${qsa}", "/b?", &URL), "/y?z=1");
        // The form from lighttpd's documentation.
        assert_eq!(
            r("/index.php${url.path}${qsa}", "/a/b?c=d", &URL),
            "/index.php/a/b?c=d"
        );
    }

    #[test]
    fn conditional_captures() {
        // $HTTP["host"] =~ "^(www)\.(ex)" matched "www.example.org"; observed from lighttpd.
        let caps = [Some("www.ex"), Some("www"), Some("ex")];
        let (o, out) = run_with(
            &[("^/h/(.*)", "/%1/%2/%0/%{tolower:1}/%{1}/%3/%9")],
            "/h/ABC",
            &caps,
            &URL,
        );
        assert_eq!(o, Outcome::Replaced(0));
        assert_eq!(out, "/www/ex/www.ex//www//");
        // No enclosing conditional: %n is empty.
        assert_eq!(subst(&[("^/", "/%1x")], "/a"), "/x");
        assert!(compile_pairs(&[("^/", "/%1")]).map(|r| r.uses_cond_captures()) == Ok(true));
        assert!(compile_pairs(&[("^/", "/$1%%1")]).map(|r| r.uses_cond_captures()) == Ok(false));
    }

    #[test]
    fn base64url() {
        // Observed from lighttpd 1.4.69.
        let r = |rule: &str, raw: &str| subst(&[("^/d/([^?]*)", rule)], raw);
        assert_eq!(
            r("${encb64u:1}|${decb64u:1}", "/d/aGVsbG8"),
            "YUdWc2JHOA|hello"
        );
        assert_eq!(r("${decb64u:1}", "/d/aGVsbA"), "hell");
        assert_eq!(r("${decb64u:1}", "/d/aGVsbA=="), "hell");
        assert_eq!(r("<${decb64u:1}>", "/d/a"), "<>");
        assert_eq!(r("${encb64u:1}", "/d/~~~"), "fn5-");
        // Undecodable bytes and controls do not get through raw.
        assert_eq!(r("${decb64u:1}", "/d/AWE"), "%01a");
        assert_eq!(r("${decb64u:1}", "/d/_w"), "%FF");
        assert_eq!(r("${decb64u:1}", "/d/w6Q"), "\u{e4}");
    }

    #[test]
    fn config_side_normalisation() {
        // Patterns and replacements are written in the target's terms, as in lighttpd.
        assert_eq!(subst(&[("^/\u{e4}$", "/ok")], "/\u{e4}"), "/ok");
        assert_eq!(subst(&[("^/x%3a$", "/ok")], "/x%3a"), "/ok");
        assert_eq!(subst(&[("^/x%3a$", "/ok")], "/x%3A"), "/ok");
        assert_eq!(
            run_with(&[("^/x%3a$", "/ok")], "/x:", &[], &URL).0,
            Outcome::NoMatch
        );
        assert_eq!(subst(&[("^/", "/\u{fc}")], "/"), "/%C3%BC");
        assert_eq!(subst(&[("^/", "/%%3a")], "/"), "/%3A");
    }

    #[test]
    fn compile_errors_name_the_pattern() {
        for (pat, repl) in [
            ("^/(unclosed", "/x"),
            ("^/(?=look)", "/x"),
            ("^/a", "/${url.path"),
            ("^/a", "/${esc"),
            ("^/a", "/${escq}"),
            ("^/a", "/${1"),
            ("^/a", "/%{url.x"),
        ] {
            let e = compile_pairs(&[("^/ok", "/"), (pat, repl)]).unwrap_err();
            assert!(e.contains(pat), "{}", e);
        }
    }

    #[test]
    fn output_is_bounded_and_header_safe() {
        let long = format!("/{}", "a".repeat(3000));
        let rules = compile_pairs(&[("^(.*)$", "$1$1$1")]).unwrap();
        let mut out = String::new();
        assert_eq!(
            apply(&rules, &long, &[], &URL, &mut out),
            Err(SubstError::TooLong)
        );
        let short = format!("/{}", "a".repeat(2000));
        assert!(apply(&rules, &short, &[], &URL, &mut out).is_ok());
        assert_eq!(out.len(), 3 * short.len());
        let rules = compile_pairs(&[("^/", "/%1")]).unwrap();
        for evil in ["a\r\nSet-Cookie: x", "a\nb", "a\0b"] {
            assert_eq!(
                apply(&rules, "/", &[None, Some(evil)], &URL, &mut out),
                Err(SubstError::Unsafe)
            );
        }
    }

    #[test]
    fn redirect_codes() {
        assert_eq!(redirect_status(None, true, false), 301);
        assert_eq!(redirect_status(None, false, true), 301);
        assert_eq!(redirect_status(None, false, false), 308);
        assert_eq!(redirect_status(Some(302), false, false), 302);
        assert_eq!(redirect_status(Some(100), true, false), 100);
        assert_eq!(redirect_status(Some(999), true, false), 999);
        assert_eq!(redirect_status(Some(99), false, false), 308);
        assert_eq!(redirect_status(Some(1000), true, false), 301);
        assert_eq!(redirect_status(Some(-302), true, false), 301);
    }

    fn block(specs: &[(RewriteKind, &[(&str, &str)])]) -> RewriteLists {
        let owned: Vec<(RewriteKind, Vec<(String, String)>)> = specs
            .iter()
            .map(|(k, l)| {
                let l = l
                    .iter()
                    .map(|(p, r)| (p.to_string(), r.to_string()))
                    .collect();
                (*k, l)
            })
            .collect();
        let refs: Vec<(RewriteKind, &[(String, String)])> =
            owned.iter().map(|(k, l)| (*k, l.as_slice())).collect();
        compile_rewrite(&refs).expect("rewrite block compiles")
    }

    #[test]
    fn rewrite_keys() {
        for k in RewriteKind::ALL {
            assert_eq!(RewriteKind::from_key(k.key()), Some(k));
        }
        assert_eq!(RewriteKind::from_key("url.redirect"), None);
        assert_eq!(
            RewriteKind::from_key("url.rewrite"),
            Some(RewriteKind::Rewrite)
        );
        assert!(RewriteKind::Repeat.repeats() && !RewriteKind::Final.repeats());
        assert!(RewriteKind::RepeatIfNotFile.if_not_file() && !RewriteKind::Once.if_not_file());
    }

    #[test]
    fn rewrite_list_order_and_once() {
        // Written repeat-first, but lighttpd puts once, final, rewrite before repeat.
        let lists = block(&[
            (RewriteKind::Repeat, &[("^/r", "/from-repeat")]),
            (RewriteKind::Rewrite, &[("^/r", "/from-rewrite")]),
            (RewriteKind::Once, &[("^/q", "/from-once")]),
            (RewriteKind::Final, &[("^/r", "/from-final")]),
        ]);
        assert!(lists.if_not_file.is_none());
        let list = lists.uri.expect("a uri list");
        assert_eq!(list.rules.len(), 4);
        assert_eq!(list.repeat_from, 3);
        assert_eq!(list.rules.pattern(0), Some("^/q"));

        let mut st = RewriteState::default();
        let mut out = String::new();
        assert_eq!(
            rewrite(&list, &mut st, "/r", &[], &URL, &mut out),
            RewriteStep::Restart
        );
        assert_eq!(out, "/from-final");
        assert!(st.rewritten());
        // A once rule rewrote: the next pass changes nothing even though "^/" would match.
        let again = block(&[(RewriteKind::Repeat, &[("^/", "/loop")])])
            .uri
            .unwrap();
        assert_eq!(
            rewrite(&again, &mut st, "/from-final", &[], &URL, &mut out),
            RewriteStep::GoOn
        );
    }

    #[test]
    fn rewrite_repeat_loop_limit() {
        let list = block(&[(RewriteKind::Repeat, &[("^/(.*)$", "/$1")])])
            .uri
            .unwrap();
        assert_eq!(list.repeat_from, 0);
        let mut st = RewriteState::default();
        let mut out = String::new();
        let mut restarts = 0;
        let mut step = RewriteStep::GoOn;
        for _ in 0..1000 {
            step = rewrite(&list, &mut st, "/x", &[], &URL, &mut out);
            if step != RewriteStep::Restart {
                break;
            }
            restarts += 1;
        }
        assert_eq!(step, RewriteStep::Fail(500));
        assert_eq!(restarts, 101);
    }

    #[test]
    fn rewrite_results_must_be_paths() {
        let list = block(&[(
            RewriteKind::Once,
            &[
                ("^/blank", ""),
                ("^/rel", "rel"),
                ("^/e(.*)", "$1"),
                ("^/ok", "/fine?${qsa}"),
            ],
        )])
        .uri
        .unwrap();
        let mut out = String::new();
        let mut go = |t: &str| rewrite(&list, &mut RewriteState::default(), t, &[], &URL, &mut out);
        assert_eq!(go("/blank"), RewriteStep::GoOn);
        assert_eq!(go("/rel"), RewriteStep::Fail(500));
        assert_eq!(go("/e"), RewriteStep::Fail(500));
        assert_eq!(go("/nomatch"), RewriteStep::GoOn);
        assert_eq!(go("/ok?a"), RewriteStep::Restart);
    }

    #[test]
    fn if_not_file_list_is_separate() {
        let lists = block(&[
            (RewriteKind::RepeatIfNotFile, &[("^/b", "/rb")]),
            (RewriteKind::IfNotFile, &[("^/a", "/ra")]),
            (RewriteKind::Once, &[("^/c", "/rc")]),
        ]);
        let nf = lists.if_not_file.expect("an if-not-file list");
        assert_eq!(nf.rules.pattern(0), Some("^/a"));
        assert_eq!(nf.repeat_from, 1);
        let uri = lists.uri.expect("a uri list");
        assert_eq!((uri.rules.len(), uri.repeat_from), (1, 1));
        // A bad rule in either list fails the block, naming the pattern.
        let owned = vec![("^/(".to_string(), "/x".to_string())];
        let e = compile_rewrite(&[(RewriteKind::IfNotFile, owned.as_slice())]).unwrap_err();
        assert!(
            e.contains("^/(") && e.contains("url.rewrite-if-not-file"),
            "{}",
            e
        );
    }
}
