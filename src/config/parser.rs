//! The language itself: statements, expressions, includes and conditional blocks, evaluated as
//! they are read into a tree of scopes (one per block), the way lighttpd's parser does.
//!
//! Values are only typed later (see `validate`); this pass knows about keys just enough to
//! warn about unknown ones and to refuse server-wide keys inside conditionals, at the line
//! where they are written.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::cond;
use super::glob;
use super::keys::{self, KeyKind};
use super::lexer::{lex, Tok, Token};
use super::types::{
    Cond, CondField, CondOp, ConfigError, ListenSpec, Loc, Refusal, MAX_COND_BRANCHES,
};
use super::value::{push_unique, Value};

/// Deeper include nesting than this is almost certainly a file including itself.
pub(crate) const MAX_INCLUDE_DEPTH: usize = 16;
/// Blocks and arrays nested deeper than this are refused before they can exhaust the stack.
const MAX_NESTING: usize = 64;

/// One key's final value in one block, with where it was last assigned.
#[derive(Clone, Debug)]
pub(crate) struct Setting {
    pub key: String,
    pub value: Value,
    pub loc: Loc,
    /// Where each element of an array value was written, when known for all of them (an
    /// array written out in place, or appended to with `+=`); empty otherwise. Messages about
    /// one element (a module in server.modules) then cite its own line.
    pub item_locs: Vec<Loc>,
}

/// The assignments of one block, in the order keys were first assigned.
#[derive(Clone, Debug, Default)]
pub(crate) struct Scope {
    pub entries: Vec<Setting>,
    index: HashMap<String, usize>,
}

impl Scope {
    fn get(&self, key: &str) -> Option<&Setting> {
        self.index.get(key).map(|i| &self.entries[*i])
    }

    fn set(&mut self, key: &str, value: Value, loc: Loc, item_locs: Vec<Loc>) {
        match self.index.get(key) {
            Some(i) => {
                let e = &mut self.entries[*i];
                e.value = value;
                e.loc = loc;
                e.item_locs = item_locs;
            }
            None => {
                self.index.insert(key.to_string(), self.entries.len());
                self.entries.push(Setting {
                    key: key.to_string(),
                    value,
                    loc,
                    item_locs,
                });
            }
        }
    }
}

#[derive(Debug)]
pub(crate) struct RawBranch {
    pub id: usize,
    pub cond: Option<Cond>,
    pub scope: Scope,
    pub chains: Vec<RawChain>,
}

#[derive(Debug)]
pub(crate) struct RawChain {
    pub branches: Vec<RawBranch>,
}

/// Everything the language pass produces.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub global: Scope,
    pub chains: Vec<RawChain>,
    pub warnings: Vec<String>,
    /// Keys lightd refuses to serve without, wherever they are set.
    pub refusals: Vec<Refusal>,
    /// One per `$SERVER["socket"] == "..."`, in config order.
    pub sockets: Vec<ListenSpec>,
}

#[derive(Default)]
struct Frame {
    scope: Scope,
    chains: Vec<RawChain>,
}

/// The tokens of one file (or one include_shell output) and a read position.
struct Cursor {
    toks: Vec<Token>,
    pos: usize,
    file: PathBuf,
}

impl Cursor {
    fn peek(&self) -> &Tok {
        // The lexer always ends with Eof and nothing advances past it.
        self.toks.get(self.pos).map_or(&Tok::Eof, |t| &t.tok)
    }

    fn loc(&self) -> Loc {
        let line = self
            .toks
            .get(self.pos)
            .or(self.toks.last())
            .map_or(1, |t| t.line);
        Loc {
            file: self.file.clone(),
            line,
        }
    }

    fn advance(&mut self) -> Tok {
        let tok = self.peek().clone();
        if tok != Tok::Eof {
            self.pos += 1;
        }
        tok
    }

    fn skip_newlines(&mut self) {
        while *self.peek() == Tok::Newline {
            self.pos += 1;
        }
    }

    fn expect(&mut self, want: &Tok, what: &str) -> Result<(), ConfigError> {
        if self.peek() == want {
            self.pos += 1;
            Ok(())
        } else {
            Err(err(
                self.loc(),
                format!("expected {what}, found {}", self.peek()),
            ))
        }
    }
}

fn err(loc: Loc, msg: impl Into<String>) -> ConfigError {
    ConfigError {
        loc: Some(loc),
        msg: msg.into(),
    }
}

struct Loader {
    /// Relative includes are resolved against the main config file's directory, like lighttpd.
    main_dir: PathBuf,
    /// [0] holds var.CWD and var.PID, [1] is the global block, then one per open conditional.
    frames: Vec<Frame>,
    warnings: Vec<String>,
    warned: HashSet<String>,
    refusals: Vec<Refusal>,
    sockets: Vec<ListenSpec>,
    next_id: usize,
    include_depth: usize,
    nesting: usize,
    /// Arrays open while reading the current statement's value, and where each element of
    /// the outermost one was written (see `Setting::item_locs`).
    array_depth: usize,
    item_locs: Vec<Loc>,
}

/// Read the main config file and everything it includes.
pub(crate) fn parse_main(path: &Path) -> Result<Parsed, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
        loc: None,
        msg: format!("cannot read config file '{}': {e}", path.display()),
    })?;
    let main_dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    parse_text(&text, path, main_dir)
}

/// Parse config text as if it were the file `path` (whose directory is `main_dir`).
pub(crate) fn parse_text(
    text: &str,
    path: &Path,
    main_dir: PathBuf,
) -> Result<Parsed, ConfigError> {
    let mut predefined = Frame::default();
    let here = Loc {
        file: path.to_path_buf(),
        line: 0,
    };
    let cwd = std::env::current_dir()
        .map(|d| d.to_string_lossy().into_owned())
        .unwrap_or_default();
    predefined
        .scope
        .set("var.CWD", Value::Str(cwd), here.clone(), Vec::new());
    predefined.scope.set(
        "var.PID",
        Value::Int(i64::from(std::process::id())),
        here,
        Vec::new(),
    );
    let mut loader = Loader {
        main_dir,
        frames: vec![predefined, Frame::default()],
        warnings: Vec::new(),
        warned: HashSet::new(),
        refusals: Vec::new(),
        sockets: Vec::new(),
        next_id: 0,
        include_depth: 0,
        nesting: 0,
        array_depth: 0,
        item_locs: Vec::new(),
    };
    loader.run_source(text, path.to_path_buf())?;
    let global = loader.frames.pop().unwrap_or_default();
    Ok(Parsed {
        global: global.scope,
        chains: global.chains,
        warnings: loader.warnings,
        refusals: loader.refusals,
        sockets: loader.sockets,
    })
}

impl Loader {
    fn run_source(&mut self, text: &str, file: PathBuf) -> Result<(), ConfigError> {
        let toks = lex(text, &file)?;
        let mut cur = Cursor { toks, pos: 0, file };
        self.block(&mut cur, None)
    }

    fn in_conditional(&self) -> bool {
        self.frames.len() > 2
    }

    fn warn(&mut self, loc: &Loc, msg: String) {
        self.warnings.push(format!("{loc}: {msg}"));
    }

    /// Statements until end of file, or until the `}` closing a block opened at `open`.
    fn block(&mut self, cur: &mut Cursor, open: Option<&Loc>) -> Result<(), ConfigError> {
        loop {
            match cur.peek().clone() {
                Tok::Newline | Tok::Semicolon => {
                    cur.advance();
                    continue;
                }
                Tok::Eof => {
                    return match open {
                        Some(o) => Err(err(
                            cur.loc(),
                            format!("expected '}}' to close the block opened at line {}", o.line),
                        )),
                        None => Ok(()),
                    }
                }
                Tok::RBrace => {
                    return match open {
                        Some(_) => {
                            cur.advance();
                            Ok(())
                        }
                        None => Err(err(cur.loc(), "unexpected '}' without an open block")),
                    }
                }
                // lighttpd drops an `if` written before a condition: `if $HTTP["host"] ...`.
                Tok::Name(name)
                    if name == "if"
                        && matches!(cur.toks.get(cur.pos + 1), Some(t) if matches!(t.tok, Tok::CondVar(_))) =>
                {
                    cur.advance();
                    self.chain(cur)?
                }
                Tok::Name(name) => self.statement(cur, &name)?,
                Tok::CondVar(_) => self.chain(cur)?,
                other => {
                    return Err(err(
                        cur.loc(),
                        format!("expected a key, a condition or 'include', found {other}"),
                    ))
                }
            }
            match cur.peek() {
                Tok::Newline | Tok::Semicolon => {
                    cur.advance();
                }
                Tok::Eof | Tok::RBrace => {}
                other => {
                    return Err(err(
                        cur.loc(),
                        format!("expected end of line, found {other}"),
                    ));
                }
            }
        }
    }

    fn statement(&mut self, cur: &mut Cursor, name: &str) -> Result<(), ConfigError> {
        let loc = cur.loc();
        cur.advance();
        match name {
            "include" | "include_shell" => {
                let arg = match self.expr(cur)? {
                    Value::Str(s) => s,
                    other => {
                        return Err(err(
                            loc,
                            format!("{name} expects a string, got {}", other.describe()),
                        ))
                    }
                };
                if name == "include" {
                    self.include(&arg, &loc)
                } else {
                    self.include_shell(&arg, &loc)
                }
            }
            "else" | "elseif" | "elsif" | "elif" => Err(err(
                loc,
                format!("'{name}' without a preceding conditional block"),
            )),
            key => {
                let op = cur.advance();
                if !matches!(op, Tok::Assign | Tok::PlusAssign | Tok::ColonAssign) {
                    return Err(err(
                        loc,
                        format!("expected '=', '+=' or ':=' after '{key}', found {op}"),
                    ));
                }
                // A newline ends the statement: `key =` alone on a line is an error there,
                // not a confusing one about whatever the next line holds.
                self.item_locs.clear();
                let value = self.expr(cur)?;
                let items = std::mem::take(&mut self.item_locs);
                // Element locations only help when there is one for every element (not
                // for `var.list + ("x")`, say).
                let items = match &value {
                    Value::Array(a) if a.len() == items.len() => items,
                    _ => Vec::new(),
                };
                self.assign(key, &op, value, loc, items)
            }
        }
    }

    fn assign(
        &mut self,
        key: &str,
        op: &Tok,
        value: Value,
        loc: Loc,
        items: Vec<Loc>,
    ) -> Result<(), ConfigError> {
        if key.starts_with("env.") {
            return Err(err(
                loc,
                format!("cannot assign to environment variable '{key}'"),
            ));
        }
        // A bare name is a variable, as in lighttpd: `one += 1` appends to var.one.
        let bare;
        let key = if key.contains('.') {
            key
        } else {
            bare = format!("var.{key}");
            bare.as_str()
        };
        if !key.starts_with("var.") {
            self.check_key(key, &loc)?;
        }
        let depth = self.frames.len();
        let current = &self.frames[depth - 1].scope;
        let mut item_locs = items;
        let new = match op {
            Tok::Assign => {
                if let Some(prev) = current.get(key) {
                    return Err(err(
                        loc,
                        format!(
                            "'{key}' is already set in this block (at {}); use ':=' to replace \
                             the value or '+=' to append to it",
                            prev.loc
                        ),
                    ));
                }
                value
            }
            Tok::PlusAssign => {
                // lighttpd semantics: append to the value in this block, else to the value
                // inherited from an enclosing block, else behave like '='.
                let prev = self.frames[..depth]
                    .iter()
                    .rev()
                    .find_map(|f| f.scope.get(key))
                    .map(|s| (s.value.clone(), s.item_locs.clone()));
                match prev {
                    Some((p, p_locs)) => {
                        let merged = p
                            .add(value)
                            .map_err(|m| err(loc.clone(), format!("{key}: {m}")))?;
                        item_locs = match &merged {
                            Value::Array(a) if a.len() == p_locs.len() + item_locs.len() => {
                                p_locs.into_iter().chain(item_locs).collect()
                            }
                            _ => Vec::new(),
                        };
                        merged
                    }
                    None => value,
                }
            }
            _ => value,
        };
        self.frames[depth - 1].scope.set(key, new, loc, item_locs);
        Ok(())
    }

    /// Warn about keys lightd ignores, record the ones it refuses to run without, and refuse
    /// server-wide keys inside conditionals.
    fn check_key(&mut self, key: &str, loc: &Loc) -> Result<(), ConfigError> {
        match keys::kind(key) {
            KeyKind::Global if self.in_conditional() => Err(err(
                loc.clone(),
                format!("{key} cannot be set inside a conditional"),
            )),
            KeyKind::Global | KeyKind::Request => Ok(()),
            KeyKind::Refused { owner, harm, known } => {
                // Every place counts: each one is something the config protects.
                let what = if known {
                    key.to_string()
                } else {
                    let hint = keys::suggest(key, keys::all_keys())
                        .map(|s| format!("; did you mean '{s}'?"))
                        .unwrap_or_default();
                    format!("{key} (a name lightd does not know in {owner}'s keys{hint})")
                };
                self.refusals.push(Refusal {
                    loc: loc.clone(),
                    what,
                    owner,
                    harm,
                });
                Ok(())
            }
            kind => {
                // One warning per key is enough to act on; repeating it per line is noise.
                if self.warned.insert(key.to_string()) {
                    let msg = match kind {
                        KeyKind::Unimplemented { owner: "core" } => {
                            format!(
                                "lighttpd key '{key}' is not implemented by lightd and is ignored"
                            )
                        }
                        KeyKind::Unimplemented { owner } => format!(
                            "lighttpd key '{key}' ({owner}) is not implemented by lightd and is \
                             ignored"
                        ),
                        _ => match keys::suggest(key, keys::all_keys()) {
                            Some(s) => format!("unknown key '{key}'; did you mean '{s}'?"),
                            None => format!("unknown key '{key}' is ignored"),
                        },
                    };
                    self.warn(loc, msg);
                }
                Ok(())
            }
        }
    }

    fn include(&mut self, pattern: &str, loc: &Loc) -> Result<(), ConfigError> {
        if self.include_depth >= MAX_INCLUDE_DEPTH {
            return Err(err(
                loc.clone(),
                format!(
                    "includes nested more than {MAX_INCLUDE_DEPTH} deep (does a file include itself?)"
                ),
            ));
        }
        let path = self.main_dir.join(pattern);
        let files = if glob::has_magic(pattern) {
            // A pattern that matches nothing is fine: conf-enabled/ may well be empty.
            glob::expand(&path)
        } else {
            vec![path]
        };
        for file in files {
            let text = std::fs::read_to_string(&file).map_err(|e| {
                err(
                    loc.clone(),
                    format!("cannot read included file '{}': {e}", file.display()),
                )
            })?;
            self.include_depth += 1;
            self.run_source(&text, file)?;
            self.include_depth -= 1;
        }
        Ok(())
    }

    fn include_shell(&mut self, cmd: &str, loc: &Loc) -> Result<(), ConfigError> {
        if self.include_depth >= MAX_INCLUDE_DEPTH {
            return Err(err(
                loc.clone(),
                format!("includes nested more than {MAX_INCLUDE_DEPTH} deep"),
            ));
        }
        let out = Command::new("/bin/sh")
            .arg("-c")
            .arg(cmd)
            .stdin(Stdio::null())
            .stderr(Stdio::inherit())
            .output()
            .map_err(|e| {
                err(
                    loc.clone(),
                    format!("cannot run include_shell \"{cmd}\": {e}"),
                )
            })?;
        if !out.status.success() {
            return Err(err(
                loc.clone(),
                format!("include_shell \"{cmd}\" failed ({})", out.status),
            ));
        }
        let text = String::from_utf8(out.stdout).map_err(|_| {
            err(
                loc.clone(),
                format!("output of include_shell \"{cmd}\" is not UTF-8"),
            )
        })?;
        self.include_depth += 1;
        // Errors inside the output are reported against the command, as lighttpd does.
        self.run_source(&text, PathBuf::from(cmd))?;
        self.include_depth -= 1;
        Ok(())
    }

    fn enter(&mut self, loc: &Loc) -> Result<(), ConfigError> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(err(
                loc.clone(),
                format!("blocks or arrays nested more than {MAX_NESTING} deep"),
            ));
        }
        Ok(())
    }

    /// `cond { } else cond { } else { }`
    fn chain(&mut self, cur: &mut Cursor) -> Result<(), ConfigError> {
        let top_level = !self.in_conditional();
        let mut branches = Vec::new();
        let mut plain_else = false;
        loop {
            let loc = cur.loc();
            let cond = if plain_else {
                None
            } else {
                Some(self.cond(cur, top_level)?)
            };
            cur.skip_newlines();
            cur.expect(&Tok::LBrace, "'{' to open the block")?;
            if self.next_id >= MAX_COND_BRANCHES {
                return Err(err(
                    loc,
                    format!(
                        "too many conditional blocks (lightd allows at most {MAX_COND_BRANCHES})"
                    ),
                ));
            }
            let id = self.next_id;
            self.next_id += 1;
            self.enter(&loc)?;
            self.frames.push(Frame::default());
            let body = self.block(cur, Some(&loc));
            let frame = self.frames.pop().unwrap_or_default();
            self.nesting -= 1;
            body?;
            let done = cond.is_none();
            branches.push(RawBranch {
                id,
                cond,
                scope: frame.scope,
                chains: frame.chains,
            });
            if done {
                break;
            }
            // `}` newline `else` continues the chain; anything else ends it.
            let save = cur.pos;
            cur.skip_newlines();
            match cur.peek().clone() {
                Tok::Name(n) if n == "else" => {
                    cur.advance();
                    cur.skip_newlines();
                    if matches!(cur.peek(), Tok::Name(n) if n == "if") {
                        cur.advance();
                    }
                    match cur.peek() {
                        Tok::CondVar(_) => {}
                        Tok::LBrace => plain_else = true,
                        other => {
                            return Err(err(
                                cur.loc(),
                                format!("expected a condition or '{{' after 'else', found {other}"),
                            ))
                        }
                    }
                }
                Tok::Name(n) if matches!(n.as_str(), "elseif" | "elsif" | "elif") => {
                    cur.advance();
                    cur.skip_newlines();
                    if !matches!(cur.peek(), Tok::CondVar(_)) {
                        return Err(err(
                            cur.loc(),
                            format!("expected a condition after '{n}', found {}", cur.peek()),
                        ));
                    }
                }
                _ => {
                    cur.pos = save;
                    break;
                }
            }
        }
        if let Some(f) = self.frames.last_mut() {
            f.chains.push(RawChain { branches });
        }
        Ok(())
    }

    /// `$VAR["name"] op "pattern"`
    fn cond(&mut self, cur: &mut Cursor, top_level: bool) -> Result<Cond, ConfigError> {
        let loc = cur.loc();
        let var = match cur.advance() {
            Tok::CondVar(v) => v,
            other => return Err(err(loc, format!("expected a condition, found {other}"))),
        };
        cur.expect(&Tok::LBracket, &format!("'[' after '${var}'"))?;
        let name = match self.expr(cur)? {
            Value::Str(s) => s,
            other => {
                return Err(err(
                    loc,
                    format!(
                        "expected a string inside ${var}[...], got {}",
                        other.describe()
                    ),
                ))
            }
        };
        cur.expect(&Tok::RBracket, "']'")?;
        let op = match cur.advance() {
            Tok::Eq => CondOp::Eq,
            Tok::Ne => CondOp::Ne,
            Tok::Match => CondOp::Match,
            Tok::NotMatch => CondOp::NotMatch,
            Tok::Prefix => CondOp::Prefix,
            Tok::Suffix => CondOp::Suffix,
            other => {
                return Err(err(
                    loc,
                    format!("expected a comparison (==, !=, =~, !~, =^ or =$), found {other}"),
                ))
            }
        };
        let pattern = match self.expr(cur)? {
            Value::Str(s) => s,
            other => {
                return Err(err(
                    loc,
                    format!(
                        "expected a string to compare with, got {}",
                        other.describe()
                    ),
                ))
            }
        };
        let field = cond::field(&var, &name).map_err(|m| err(loc.clone(), m))?;
        let regex = match op {
            CondOp::Match | CondOp::NotMatch => {
                Some(regex_lite::Regex::new(&pattern).map_err(|e| {
                    err(
                        loc.clone(),
                        format!(
                            "invalid regular expression \"{}\": {e}",
                            pattern.escape_debug()
                        ),
                    )
                })?)
            }
            _ => None,
        };
        let mut socket = None;
        match (&field, op) {
            (CondField::ServerSocket, CondOp::Eq) => {
                let addr = cond::parse_socket(&pattern)
                    .map_err(|m| err(loc.clone(), format!("$SERVER[\"socket\"]: {m}")))?;
                if !top_level {
                    return Err(err(
                        loc,
                        "$SERVER[\"socket\"] == \"...\" opens a listener and must be at the top \
                         level, not inside another conditional",
                    ));
                }
                self.sockets.push(ListenSpec {
                    addr,
                    text: pattern.clone(),
                    loc: loc.clone(),
                    implicit: false,
                });
                socket = Some(addr);
            }
            (CondField::ServerSocket, CondOp::Ne) => {
                cond::parse_socket(&pattern)
                    .map_err(|m| err(loc.clone(), format!("$SERVER[\"socket\"]: {m}")))?;
            }
            (CondField::RemoteIp, CondOp::Eq | CondOp::Ne) => {
                cond::parse_cidr(&pattern)
                    .map_err(|m| err(loc.clone(), format!("$HTTP[\"remote-ip\"]: {m}")))?;
            }
            _ => {}
        }
        Ok(Cond {
            field,
            op,
            pattern,
            regex,
            socket,
            loc,
        })
    }

    /// `term ('+' term)*`
    fn expr(&mut self, cur: &mut Cursor) -> Result<Value, ConfigError> {
        let mut value = self.term(cur)?;
        while *cur.peek() == Tok::Plus {
            let loc = cur.loc();
            cur.advance();
            let rhs = self.term(cur)?;
            value = value.add(rhs).map_err(|m| err(loc, m))?;
        }
        Ok(value)
    }

    fn term(&mut self, cur: &mut Cursor) -> Result<Value, ConfigError> {
        let loc = cur.loc();
        match cur.advance() {
            Tok::Str(s) => Ok(Value::Str(s)),
            Tok::Int(i) => Ok(Value::Int(i)),
            Tok::Name(n) => self.lookup(&n, loc),
            Tok::LParen => self.array(cur, loc),
            other => Err(err(
                loc,
                format!("expected a value (string, integer, array or variable), found {other}"),
            )),
        }
    }

    /// After '(': `( [elem (',' elem)* [',']] )`, elem = `expr` or `expr => expr`.
    fn array(&mut self, cur: &mut Cursor, loc: Loc) -> Result<Value, ConfigError> {
        self.enter(&loc)?;
        self.array_depth += 1;
        let outermost = self.array_depth == 1;
        let mut items = Vec::new();
        loop {
            if *cur.peek() == Tok::RParen {
                cur.advance();
                break;
            }
            let item_loc = cur.loc();
            if outermost {
                self.item_locs.push(item_loc.clone());
            }
            let first = self.expr(cur)?;
            let pushed = if *cur.peek() == Tok::Arrow {
                cur.advance();
                let key = match first {
                    Value::Str(k) => k,
                    other => {
                        return Err(err(
                            item_loc,
                            format!("array keys must be strings, got {}", other.describe()),
                        ))
                    }
                };
                let value = self.expr(cur)?;
                push_unique(&mut items, Some(key), value)
            } else {
                push_unique(&mut items, None, first)
            };
            pushed.map_err(|m| err(item_loc, m))?;
            let sep_loc = cur.loc();
            match cur.advance() {
                Tok::Comma => {}
                Tok::RParen => break,
                other => {
                    return Err(err(
                        sep_loc,
                        format!(
                            "expected ')' or ',' in the array opened at line {}, found {other}",
                            loc.line
                        ),
                    ))
                }
            }
        }
        self.nesting -= 1;
        self.array_depth -= 1;
        Ok(Value::Array(items))
    }

    /// `env.NAME`, `var.NAME`, a bare `NAME` (meaning var.NAME), or a key set earlier such as
    /// `server.port`; blocks see what their enclosing blocks set.
    fn lookup(&self, name: &str, loc: Loc) -> Result<Value, ConfigError> {
        if let Some(env) = name.strip_prefix("env.") {
            return match std::env::var(env) {
                Ok(v) => Ok(Value::Str(v)),
                Err(std::env::VarError::NotPresent) => {
                    Err(err(loc, format!("environment variable '{env}' is not set")))
                }
                Err(std::env::VarError::NotUnicode(_)) => Err(err(
                    loc,
                    format!("environment variable '{env}' is not valid UTF-8"),
                )),
            };
        }
        let var = format!("var.{name}");
        let both = [var.as_str(), name];
        let candidates = if name.starts_with("var.") {
            &both[1..]
        } else {
            &both[..]
        };
        for c in candidates {
            if let Some(s) = self.frames.iter().rev().find_map(|f| f.scope.get(c)) {
                return Ok(s.value.clone());
            }
        }
        Err(err(loc, format!("undefined variable '{name}'")))
    }
}
