//! mod_accesslog's `accesslog.format`, compiled once at config load: a format lighttpd refuses
//! is a config error with file and line. Rendering a line per request is
//! `modules::accesslog`'s job.
//!
//! The directives, their `%{...}` options and what lighttpd refuses at start-up follow
//! lighttpd 1.4.85's `src/mod_accesslog.c`.

use std::rc::Rc;

/// lighttpd's default `accesslog.format`: Apache's combined format with `%V` (the requested
/// host) where Apache has the ident field.
pub const DEFAULT_FORMAT: &str = super::validate::DEFAULT_ACCESSLOG_FORMAT;

/// `%t` without a format: the Common Log Format time in local time.
const CLF_TIME: &str = "[%d/%b/%Y:%T %z]";

/// lighttpd keeps a fixed array of 128 parsed fields, the last one the terminator.
const MAX_FIELDS: usize = 127;

/// `accesslog.escaping`: how bytes that a client or a backend controls are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Escaping {
    /// `\"`, `\\`, `\a`..`\r`, and `\xHH` for every other byte outside printable ASCII.
    #[default]
    Default,
    /// `\"`, `\\`, `\a`..`\r`, and `\u00HH` for the other C0 and C1 controls and DEL;
    /// other non-ASCII bytes pass unchanged, so UTF-8 stays readable.
    Json,
}

impl Escaping {
    /// The config value as lighttpd reads it: exactly "json" selects JSON, anything else the
    /// default.
    pub fn from_config(value: &str) -> Escaping {
        if value == "json" {
            Escaping::Json
        } else {
            Escaping::Default
        }
    }
}

/// Which instant a time stamp shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Clock {
    Begin,
    End,
}

/// How a time stamp is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stamp {
    Strftime,
    Sec,
    Msec,
    Usec,
    Nsec,
    MsecFrac,
    UsecFrac,
    NsecFrac,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unit {
    Sec,
    Msec,
    Usec,
    Nsec,
}

/// One compiled piece of the format.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Field {
    Literal(String),
    /// Accepted but prints nothing: `%P`, a nameless `%i`/`%o`/`%e`/`%n`/`%C`, `%{..}%`,
    /// `%{..}l`, as in lighttpd.
    Nothing,
    RemoteAddr {
        mask: bool,
    },
    LocalAddr,
    Port {
        remote: bool,
    },
    BytesBody,
    BytesOut,
    BytesIn,
    RequestHeader(String),
    ResponseHeader(String),
    Env(String),
    User,
    Cookie(String),
    Time {
        clock: Clock,
        stamp: Stamp,
        fmt: String,
    },
    Duration(Unit),
    Filename,
    Protocol,
    Method,
    KeepAliveCount,
    RequestLine,
    Status,
    Url,
    Query,
    ServerName,
    Host,
    ConnStatus,
}

/// A compiled `accesslog.format`. Its escaping is a key of its own (`accesslog.escaping`),
/// which a different block may set, so it is passed to the renderer separately.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Format {
    fields: Vec<Field>,
    /// The value as written, for `-p`.
    text: String,
}

impl Format {
    pub fn fields(&self) -> &[Field] {
        &self.fields
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The request headers the format reads (`%{Name}i`, and `Cookie` for `%{name}C`).
    pub fn request_headers(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().filter_map(|f| match f {
            Field::RequestHeader(n) => Some(n.as_str()),
            Field::Cookie(_) => Some("Cookie"),
            _ => None,
        })
    }
}

/// mod_accesslog's per-request settings.
#[derive(Clone, Debug)]
pub struct AccessLogConf {
    /// None: no access log for these requests.
    pub filename: Option<String>,
    pub format: Rc<Format>,
    pub escaping: Escaping,
}

impl Default for AccessLogConf {
    fn default() -> AccessLogConf {
        AccessLogConf {
            filename: None,
            format: Rc::new(default_format()),
            escaping: Escaping::Default,
        }
    }
}

/// lighttpd's default format, compiled.
pub fn default_format() -> Format {
    // The constant is checked by a test; should it ever fail to compile, log nothing rather
    // than panic.
    compile(DEFAULT_FORMAT).unwrap_or(Format {
        fields: Vec::new(),
        text: DEFAULT_FORMAT.to_string(),
    })
}

/// Compile an `accesslog.format` value (as the config lexer produced it).
///
/// Backslash escapes (`\t`, `\n`, ...; any other escaped character stands for itself) are
/// resolved first, as lighttpd does. Whatever lighttpd refuses at start-up is an error here:
/// an empty format, an unknown `%x` (named in the message), a bad `%{...}` option, more than
/// 127 pieces, or two strftime-style (or `sec`) time stamps in one format.
pub fn compile(text: &str) -> Result<Format, String> {
    let fmt = unescape(text);
    if fmt.is_empty() {
        return Err("accesslog.format must not be empty".to_string());
    }
    let b = fmt.as_bytes();
    let mut fields: Vec<Field> = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        while b.get(i).is_some_and(|&c| c != b'%') {
            i += 1;
        }
        if start != i {
            push_literal(&mut fields, fmt.get(start..i).unwrap_or_default(), &fmt)?;
        }
        if i >= b.len() {
            break;
        }
        i += 1; // the '%'
        if i >= b.len() {
            return Err(format!(
                "accesslog.format \"{}\": % must be followed by a format-specifier",
                fmt
            ));
        }
        if fields.len() >= MAX_FIELDS {
            return Err(too_many(&fmt));
        }
        let mut name = None;
        if b.get(i) == Some(&b'{') {
            let open = i + 1;
            let close = b
                .get(open..)
                .and_then(|rest| rest.iter().position(|&c| c == b'}'))
                .map(|p| open + p);
            match close {
                Some(close) if close > open => {
                    name = fmt.get(open..close);
                    i = close + 1;
                }
                _ => {
                    return Err(format!(
                        "accesslog.format \"{}\": %{{...}} must contain a string and be \
                         terminated by }}",
                        fmt
                    ))
                }
            }
        } else {
            // lighttpd ignores Apache's "original/final request" markers: %>s is %s.
            if matches!(b.get(i), Some(b'<') | Some(b'>')) {
                i += 1;
            }
            let lit = match b.get(i) {
                Some(b'%') => Some("%"),
                // No identd lookups: %l is always "-".
                Some(b'l') => Some("-"),
                _ => None,
            };
            if let Some(lit) = lit {
                match fields.last_mut() {
                    Some(Field::Literal(s)) => s.push_str(lit),
                    _ => fields.push(Field::Literal(lit.to_string())),
                }
                i += 1;
                continue;
            }
        }
        let c = match fmt.get(i..).and_then(|rest| rest.chars().next()) {
            Some(c) => c,
            None => {
                return Err(format!(
                    "accesslog.format \"{}\": % or %{{...}} must be followed by a \
                     format-specifier",
                    fmt
                ))
            }
        };
        fields.push(directive(c, name, &fmt)?);
        i += c.len_utf8();
    }
    // lighttpd caches one formatted time stamp per format, so it refuses a second; `sec`
    // counts as one too.
    let stamps = fields
        .iter()
        .filter(|f| {
            matches!(
                f,
                Field::Time {
                    stamp: Stamp::Strftime | Stamp::Sec,
                    ..
                }
            )
        })
        .count();
    if stamps > 1 {
        return Err(format!(
            "accesslog.format \"{}\": you may not use strftime timestamp format %{{}}t twice",
            fmt
        ));
    }
    Ok(Format {
        fields,
        text: text.to_string(),
    })
}

/// lighttpd's pass over `accesslog.format` before parsing: C-style escapes for control
/// characters, any other escaped character stands for itself, a trailing backslash is dropped.
fn unescape(fmt: &str) -> String {
    if !fmt.contains('\\') {
        return fmt.to_string();
    }
    let mut out = String::with_capacity(fmt.len());
    let mut chars = fmt.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        let Some(e) = chars.next() else { break };
        out.push(match e {
            'a' => '\x07',
            'b' => '\x08',
            'f' => '\x0c',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'v' => '\x0b',
            other => other,
        });
    }
    out
}

fn too_many(fmt: &str) -> String {
    format!(
        "accesslog.format \"{}\": too many fields (>= {})",
        fmt, MAX_FIELDS
    )
}

fn push_literal(fields: &mut Vec<Field>, s: &str, fmt: &str) -> Result<(), String> {
    if let Some(Field::Literal(prev)) = fields.last_mut() {
        prev.push_str(s);
        return Ok(());
    }
    if fields.len() >= MAX_FIELDS {
        return Err(too_many(fmt));
    }
    fields.push(Field::Literal(s.to_string()));
    Ok(())
}

/// The field for `%c` or `%{name}c`.
fn directive(c: char, name: Option<&str>, fmt: &str) -> Result<Field, String> {
    let named = |make: fn(String) -> Field| match name {
        Some(n) => make(n.to_string()),
        None => Field::Nothing,
    };
    Ok(match c {
        'a' | 'h' => match name {
            None => Field::RemoteAddr { mask: false },
            Some("mask") => Field::RemoteAddr { mask: true },
            Some(_) => return Err(format!("accesslog.format \"{}\": invalid %{{mask}}a", fmt)),
        },
        'A' => Field::LocalAddr,
        'b' | 'B' => Field::BytesBody,
        'C' => named(Field::Cookie),
        'D' => Field::Duration(Unit::Usec),
        'e' | 'n' => named(Field::Env),
        'f' => Field::Filename,
        'H' => Field::Protocol,
        'i' => named(Field::RequestHeader),
        'I' => Field::BytesIn,
        'k' => Field::KeepAliveCount,
        // Only reachable as %{..}% and %{..}l, which lighttpd accepts and prints as nothing.
        '%' | 'l' | 'P' => Field::Nothing,
        'm' => Field::Method,
        'o' => named(Field::ResponseHeader),
        'O' => Field::BytesOut,
        'p' => match name {
            None | Some("canonical") | Some("local") => Field::Port { remote: false },
            Some("remote") => Field::Port { remote: true },
            Some(_) => {
                return Err(format!(
                    "accesslog.format \"{}\": invalid %{{canonical,local,remote}}p",
                    fmt
                ))
            }
        },
        'q' => Field::Query,
        'r' => Field::RequestLine,
        's' => Field::Status,
        't' => time_field(name, fmt)?,
        'T' => Field::Duration(match name {
            None | Some("s") | Some("sec") => Unit::Sec,
            Some("ms") | Some("msec") => Unit::Msec,
            Some("us") | Some("usec") => Unit::Usec,
            Some("ns") | Some("nsec") => Unit::Nsec,
            Some(u) => {
                return Err(format!(
                    "accesslog.format \"{}\": invalid time unit in %{{{}}}T",
                    fmt, u
                ))
            }
        }),
        'u' => Field::User,
        'U' => Field::Url,
        'v' => Field::ServerName,
        'V' => Field::Host,
        'X' => Field::ConnStatus,
        other => {
            return Err(format!(
                "accesslog.format \"{}\": unknown format-specifier %{} (% or %{{...}} must be \
                 followed by a valid format-specifier)",
                fmt, other
            ))
        }
    })
}

fn time_field(name: Option<&str>, fmt: &str) -> Result<Field, String> {
    let Some(name) = name else {
        return Ok(Field::Time {
            clock: Clock::End,
            stamp: Stamp::Strftime,
            fmt: CLF_TIME.to_string(),
        });
    };
    let (clock, rest) = if let Some(r) = name.strip_prefix("begin:") {
        (Clock::Begin, r)
    } else if let Some(r) = name.strip_prefix("end:") {
        (Clock::End, r)
    } else {
        (Clock::End, name)
    };
    let stamp = match rest {
        "sec" => Stamp::Sec,
        "msec" => Stamp::Msec,
        "usec" => Stamp::Usec,
        "nsec" => Stamp::Nsec,
        "msec_frac" => Stamp::MsecFrac,
        "usec_frac" => Stamp::UsecFrac,
        "nsec_frac" => Stamp::NsecFrac,
        r if r.contains('%') => Stamp::Strftime,
        _ => {
            return Err(format!(
                "accesslog.format \"{}\": constant string for time format (misspelled token? \
                 or missing '%'): %{{{}}}t",
                fmt, name
            ))
        }
    };
    // Only strftime needs the text; the numeric stamps are fully described by `stamp`.
    let fmt = if stamp == Stamp::Strftime {
        rest.to_string()
    } else {
        String::new()
    };
    Ok(Field::Time { clock, stamp, fmt })
}
