//! Untyped configuration values as the language produces them, before a key gives them a type.

use std::fmt;

/// lighttpd has three value types; booleans are the strings "enable"/"disable".
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Value {
    Str(String),
    Int(i64),
    /// lighttpd arrays are lists whose elements may carry a key (`"k" => v`), so one type
    /// covers both lists and maps.
    Array(Vec<(Option<String>, Value)>),
}

impl Value {
    /// The value's type for "expected X, got Y" messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Value::Str(s) => format!("the string \"{}\"", s.escape_debug()),
            Value::Int(i) => format!("the integer {i}"),
            Value::Array(a) if a.is_empty() => "an empty array".to_string(),
            Value::Array(_) => "an array".to_string(),
        }
    }

    /// `a + b`, lighttpd style. The error message lacks a location; the caller adds it.
    pub(crate) fn add(self, rhs: Value) -> Result<Value, String> {
        match (self, rhs) {
            (Value::Str(mut a), Value::Str(b)) => {
                a.push_str(&b);
                Ok(Value::Str(a))
            }
            (Value::Str(mut a), Value::Int(b)) => {
                a.push_str(&b.to_string());
                Ok(Value::Str(a))
            }
            (Value::Int(a), Value::Str(b)) => Ok(Value::Str(format!("{a}{b}"))),
            (Value::Int(a), Value::Int(b)) => a
                .checked_add(b)
                .map(Value::Int)
                .ok_or_else(|| format!("integer overflow in {a} + {b}")),
            (Value::Array(mut a), Value::Array(b)) => {
                for (k, v) in b {
                    push_unique(&mut a, k, v)?;
                }
                Ok(Value::Array(a))
            }
            (a, b) => Err(format!(
                "cannot combine {} with {}",
                a.describe(),
                b.describe()
            )),
        }
    }
}

/// Append to an array, refusing a key that is already there (as lighttpd does: a silently
/// shadowed entry would be a surprise).
pub(crate) fn push_unique(
    a: &mut Vec<(Option<String>, Value)>,
    k: Option<String>,
    v: Value,
) -> Result<(), String> {
    if let Some(key) = &k {
        if a.iter().any(|(k2, _)| k2.as_deref() == Some(key)) {
            return Err(format!("duplicate array key \"{}\"", key.escape_debug()));
        }
    }
    a.push((k, v));
    Ok(())
}

/// Quote a string in config syntax. A backslash is only escaped where the lexer would
/// otherwise take it as an escape (before `"` or `\`, or last), so regexes print as written
/// ("\.php$") and stay readable by lighttpd too.
pub(crate) fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        let escape = match c {
            '"' => true,
            '\\' => matches!(chars.peek(), None | Some('"') | Some('\\')),
            _ => false,
        };
        if escape {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

impl fmt::Display for Value {
    /// Config syntax, so `-p` output can be read back.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Str(s) => f.write_str(&quote(s)),
            Value::Int(i) => write!(f, "{i}"),
            Value::Array(a) => {
                f.write_str("(")?;
                for (i, (k, v)) in a.iter().enumerate() {
                    f.write_str(if i == 0 { " " } else { ", " })?;
                    if let Some(k) = k {
                        write!(f, "{} => ", quote(k))?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str(if a.is_empty() { ")" } else { " )" })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(x: &str) -> Value {
        Value::Str(x.to_string())
    }
    fn arr(items: &[&str]) -> Value {
        Value::Array(items.iter().map(|x| (None, s(x))).collect())
    }
    fn map(items: &[(&str, &str)]) -> Value {
        Value::Array(
            items
                .iter()
                .map(|(k, v)| (Some(k.to_string()), s(v)))
                .collect(),
        )
    }

    #[test]
    fn addition_table() {
        let cases: Vec<(Value, Value, Result<Value, &str>)> = vec![
            (s("a"), s("b"), Ok(s("ab"))),
            (s("port "), Value::Int(80), Ok(s("port 80"))),
            (Value::Int(80), s("x"), Ok(s("80x"))),
            (Value::Int(2), Value::Int(3), Ok(Value::Int(5))),
            (
                Value::Int(i64::MAX),
                Value::Int(1),
                Err("integer overflow in 9223372036854775807 + 1"),
            ),
            (arr(&["a"]), arr(&["b"]), Ok(arr(&["a", "b"]))),
            (
                map(&[(".a", "x")]),
                map(&[(".b", "y")]),
                Ok(map(&[(".a", "x"), (".b", "y")])),
            ),
            (
                map(&[(".a", "x")]),
                map(&[(".a", "y")]),
                Err("duplicate array key \".a\""),
            ),
            (
                arr(&["a"]),
                s("b"),
                Err("cannot combine an array with the string \"b\""),
            ),
            (
                Value::Int(1),
                arr(&[]),
                Err("cannot combine the integer 1 with an empty array"),
            ),
        ];
        for (a, b, want) in cases {
            let label = format!("{a} + {b}");
            assert_eq!(a.add(b), want.map_err(str::to_string), "{label}");
        }
    }

    #[test]
    fn display_is_config_syntax() {
        for (raw, quoted) in [
            ("a\"b", r#""a\"b""#),
            (r"\.php$", r#""\.php$""#),
            (r"a\\b", r#""a\\\b""#),
            (r"end\", r#""end\\""#),
            (r"\", r#""\\""#),
            (r#"\""#, r#""\\\"""#),
        ] {
            assert_eq!(quote(raw), quoted, "{raw}");
            let back = crate::config::lexer::lex(quoted, std::path::Path::new("t"))
                .ok()
                .and_then(|t| t.first().map(|t| t.tok.clone()));
            assert_eq!(
                back,
                Some(crate::config::lexer::Tok::Str(raw.to_string())),
                "{raw}"
            );
        }
        assert_eq!(arr(&[]).to_string(), "()");
        assert_eq!(arr(&["a", "b"]).to_string(), r#"( "a", "b" )"#);
        assert_eq!(map(&[(".h", "t/h")]).to_string(), r#"( ".h" => "t/h" )"#);
    }
}
