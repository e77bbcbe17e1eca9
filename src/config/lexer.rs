//! Tokens of lighttpd's configuration language, with the line each starts on.
//!
//! Newlines are tokens because they end statements; inside `( )` and `[ ]` they are dropped
//! so that arrays can span lines, as lighttpd allows.

use std::fmt;
use std::path::Path;

use super::types::{ConfigError, Loc};

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Tok {
    Newline,
    Semicolon,
    Str(String),
    Int(i64),
    /// A key or variable name: `server.port`, `var.x`, `env.HOME`, `include`, `else`.
    Name(String),
    /// `$HTTP`, `$SERVER`, `$REQUEST_HEADER`, ... without the `$`.
    CondVar(String),
    LParen,
    RParen,
    LBracket,
    RBracket,
    LBrace,
    RBrace,
    Comma,
    Arrow,       // =>
    Assign,      // =
    PlusAssign,  // +=
    ColonAssign, // :=
    Plus,        // +
    Eq,          // ==
    Ne,          // !=
    Match,       // =~
    NotMatch,    // !~
    Prefix,      // =^
    Suffix,      // =$
    Eof,
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let p = match self {
            Tok::Newline => return f.write_str("end of line"),
            Tok::Eof => return f.write_str("end of file"),
            Tok::Str(s) => return write!(f, "string \"{}\"", s.escape_debug()),
            Tok::Int(i) => return write!(f, "integer {i}"),
            Tok::Name(n) => return write!(f, "'{n}'"),
            Tok::CondVar(n) => return write!(f, "'${n}'"),
            Tok::Semicolon => ";",
            Tok::LParen => "(",
            Tok::RParen => ")",
            Tok::LBracket => "[",
            Tok::RBracket => "]",
            Tok::LBrace => "{",
            Tok::RBrace => "}",
            Tok::Comma => ",",
            Tok::Arrow => "=>",
            Tok::Assign => "=",
            Tok::PlusAssign => "+=",
            Tok::ColonAssign => ":=",
            Tok::Plus => "+",
            Tok::Eq => "==",
            Tok::Ne => "!=",
            Tok::Match => "=~",
            Tok::NotMatch => "!~",
            Tok::Prefix => "=^",
            Tok::Suffix => "=$",
        };
        write!(f, "'{p}'")
    }
}

#[derive(Clone, Debug)]
pub(crate) struct Token {
    pub tok: Tok,
    pub line: u32,
}

fn is_name_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-')
}

/// Split `src` into tokens. `file` is only used for error locations.
pub(crate) fn lex(src: &str, file: &Path) -> Result<Vec<Token>, ConfigError> {
    let err = |line: u32, msg: String| ConfigError {
        loc: Some(Loc {
            file: file.to_path_buf(),
            line,
        }),
        msg,
    };
    let chars: Vec<char> = src.chars().collect();
    let mut toks = Vec::new();
    let mut line: u32 = 1;
    // Depth of ( and [ nesting: newlines inside do not end a statement.
    let mut depth: usize = 0;
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let start_line = line;
        let next = chars.get(i + 1).copied();
        let mut push = |tok: Tok, len: usize, i: &mut usize| {
            toks.push(Token {
                tok,
                line: start_line,
            });
            *i += len;
        };
        match c {
            '\n' => {
                if depth == 0 {
                    push(Tok::Newline, 1, &mut i);
                } else {
                    i += 1;
                }
                line += 1;
            }
            ' ' | '\t' | '\r' => i += 1,
            '#' => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            '"' => {
                let mut s = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(err(start_line, "unterminated string".to_string()));
                        }
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        // Only \" and \\ are escapes; any other backslash is kept, so
                        // regexes such as "\.php$" mean what they say.
                        Some('\\') if matches!(chars.get(i + 1), Some('"') | Some('\\')) => {
                            s.push(chars[i + 1]);
                            i += 2;
                        }
                        Some(&ch) => {
                            if ch == '\n' {
                                line += 1;
                            }
                            s.push(ch);
                            i += 1;
                        }
                    }
                }
                toks.push(Token {
                    tok: Tok::Str(s),
                    line: start_line,
                });
            }
            '0'..='9' | '-' if c != '-' || next.is_some_and(|n| n.is_ascii_digit()) => {
                let begin = i;
                i += 1;
                while i < chars.len() && chars[i].is_ascii_alphanumeric() {
                    i += 1;
                }
                let text: String = chars[begin..i].iter().collect();
                let n = text
                    .parse::<i64>()
                    .map_err(|_| err(start_line, format!("invalid integer '{text}'")))?;
                toks.push(Token {
                    tok: Tok::Int(n),
                    line: start_line,
                });
            }
            c if is_name_start(c) => {
                let begin = i;
                while i < chars.len() && is_name_char(chars[i]) {
                    i += 1;
                }
                toks.push(Token {
                    tok: Tok::Name(chars[begin..i].iter().collect()),
                    line: start_line,
                });
            }
            '$' => {
                let begin = i + 1;
                i += 1;
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                if i == begin {
                    return Err(err(start_line, "expected a name after '$'".to_string()));
                }
                toks.push(Token {
                    tok: Tok::CondVar(chars[begin..i].iter().collect()),
                    line: start_line,
                });
            }
            '(' => {
                depth += 1;
                push(Tok::LParen, 1, &mut i);
            }
            ')' => {
                depth = depth.saturating_sub(1);
                push(Tok::RParen, 1, &mut i);
            }
            '[' => {
                depth += 1;
                push(Tok::LBracket, 1, &mut i);
            }
            ']' => {
                depth = depth.saturating_sub(1);
                push(Tok::RBracket, 1, &mut i);
            }
            '{' => push(Tok::LBrace, 1, &mut i),
            '}' => push(Tok::RBrace, 1, &mut i),
            ',' => push(Tok::Comma, 1, &mut i),
            ';' => push(Tok::Semicolon, 1, &mut i),
            '=' => match next {
                Some('=') => push(Tok::Eq, 2, &mut i),
                Some('>') => push(Tok::Arrow, 2, &mut i),
                Some('~') => push(Tok::Match, 2, &mut i),
                Some('^') => push(Tok::Prefix, 2, &mut i),
                Some('$') => push(Tok::Suffix, 2, &mut i),
                _ => push(Tok::Assign, 1, &mut i),
            },
            '!' => match next {
                Some('=') => push(Tok::Ne, 2, &mut i),
                Some('~') => push(Tok::NotMatch, 2, &mut i),
                _ => return Err(err(start_line, "expected '!=' or '!~'".to_string())),
            },
            '+' => match next {
                Some('=') => push(Tok::PlusAssign, 2, &mut i),
                _ => push(Tok::Plus, 1, &mut i),
            },
            ':' => match next {
                Some('=') => push(Tok::ColonAssign, 2, &mut i),
                _ => return Err(err(start_line, "expected ':='".to_string())),
            },
            other => {
                return Err(err(
                    start_line,
                    format!("unexpected character '{}'", other.escape_debug()),
                ))
            }
        }
    }
    toks.push(Token {
        tok: Tok::Eof,
        line,
    });
    Ok(toks)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<Tok> {
        lex(src, Path::new("t.conf"))
            .unwrap_or_else(|e| panic!("{src:?}: {e}"))
            .into_iter()
            .map(|t| t.tok)
            .collect()
    }

    fn s(x: &str) -> Tok {
        Tok::Str(x.to_string())
    }
    fn n(x: &str) -> Tok {
        Tok::Name(x.to_string())
    }

    #[test]
    fn token_table() {
        use Tok::*;
        let cases: Vec<(&str, Vec<Tok>)> = vec![
            ("", vec![Eof]),
            ("# only a comment", vec![Eof]),
            ("a = 1", vec![n("a"), Assign, Int(1), Eof]),
            ("a += -5", vec![n("a"), PlusAssign, Int(-5), Eof]),
            ("a := \"x\"", vec![n("a"), ColonAssign, s("x"), Eof]),
            (r#""a\"b""#, vec![s("a\"b"), Eof]),
            (r#""a\\b""#, vec![s("a\\b"), Eof]),
            (r#""\.php$""#, vec![s("\\.php$"), Eof]),
            ("\"a#b\" # c", vec![s("a#b"), Eof]),
            ("x\ny", vec![n("x"), Newline, n("y"), Eof]),
            ("x\r\ny", vec![n("x"), Newline, n("y"), Eof]),
            (
                "( \"a\",\n \"b\" )",
                vec![LParen, s("a"), Comma, s("b"), RParen, Eof],
            ),
            (
                "(\".h\" => \"t\")",
                vec![LParen, s(".h"), Arrow, s("t"), RParen, Eof],
            ),
            ("server.document-root", vec![n("server.document-root"), Eof]),
            (
                "$HTTP[\"host\"] == \"a\" {",
                vec![
                    CondVar("HTTP".into()),
                    LBracket,
                    s("host"),
                    RBracket,
                    Eq,
                    s("a"),
                    LBrace,
                    Eof,
                ],
            ),
            (
                "!= =~ !~ =^ =$",
                vec![Ne, Match, NotMatch, Prefix, Suffix, Eof],
            ),
            ("} else {", vec![RBrace, n("else"), LBrace, Eof]),
            ("a + b", vec![n("a"), Plus, n("b"), Eof]),
            ("a;b", vec![n("a"), Semicolon, n("b"), Eof]),
        ];
        for (src, want) in cases {
            assert_eq!(kinds(src), want, "{src:?}");
        }
    }

    #[test]
    fn lines_are_counted() {
        let toks = lex("a\n\"x\ny\"\nb", Path::new("t.conf")).unwrap_or_default();
        let lines: Vec<u32> = toks.iter().map(|t| t.line).collect();
        // a, NL, "x\ny", NL, b, EOF
        assert_eq!(lines, vec![1, 1, 2, 3, 4, 4]);
    }

    #[test]
    fn errors_name_file_and_line() {
        for (src, want) in [
            ("a = \"x", "t.conf:1: unterminated string"),
            ("\n\na = 1x", "t.conf:3: invalid integer '1x'"),
            (
                "a = 99999999999999999999",
                "t.conf:1: invalid integer '99999999999999999999'",
            ),
            ("a ! b", "t.conf:1: expected '!=' or '!~'"),
            ("a : b", "t.conf:1: expected ':='"),
            ("\na = @", "t.conf:2: unexpected character '@'"),
            ("$ x", "t.conf:1: expected a name after '$'"),
        ] {
            match lex(src, Path::new("t.conf")) {
                Ok(t) => panic!("{src:?} lexed: {t:?}"),
                Err(e) => assert_eq!(e.to_string(), want, "{src:?}"),
            }
        }
    }
}
