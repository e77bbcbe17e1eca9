//! The chunked transfer coding (RFC 9112 §7.1), decoded incrementally with bounded state.
//!
//! The decoder never buffers input: payload bytes go straight to the sink as slices of the
//! input, and the framing is read one byte at a time into a state plus a few counters. So
//! its memory is fixed no matter how the body is split across reads, and every byte of
//! framing is judged exactly once, in order: splitting the input cannot change the outcome.
//!
//! The framing is read strictly (CRLF only, no whitespace around the size, bounded
//! extensions and trailers) because lenient chunk parsing is where front ends and back ends
//! most often disagree about where a request ends.
//!
//! Trailer fields are checked and then dropped (lightd has no backend to pass them to). A
//! field that must not be a trailer (RFC 9110 §6.5.1: framing, routing, authentication,
//! controls) is refused, and so is one the request's `Trailer` field did not announce, as
//! lighttpd refuses them. The name being read is kept in a small fixed buffer for that.

use super::request::{is_field_value_char, is_tchar};
use super::HttpError;

/// 16 hex digits are 64 bits, so a size that fits this many digits cannot overflow u64.
const MAX_SIZE_DIGITS: u8 = 16;
/// The chunk-size line with its extensions, without the CRLF. lighttpd refuses a line that
/// reaches 1024 bytes with its CRLF, so this is 1021; extensions are ignored, and real
/// clients send none or short ones.
const MAX_CHUNK_LINE: u16 = 1024 - 3;
/// The trailer section, including its line endings and the final empty line.
const MAX_TRAILERS: u16 = 8192;
/// The longest trailer field name: registered field names are far shorter, and the name has
/// to be held until its colon to be judged.
pub const MAX_TRAILER_NAME: usize = 64;
// The name's length is kept in a u8.
const _: () = assert!(MAX_TRAILER_NAME <= u8::MAX as usize);

/// Fields a recipient may refuse to see as trailers (RFC 9110 §6.5.1): message framing,
/// routing, request modifiers, authentication, response controls and payload processing,
/// plus Trailer itself. lighttpd's list, compared case-insensitively.
const FORBIDDEN_TRAILERS: &[&str] = &[
    "Age",
    "Authorization",
    "Cache-Control",
    "Connection",
    "Content-Encoding",
    "Content-Length",
    "Content-Range",
    "Content-Type",
    "Date",
    "Expect",
    "Expires",
    "Forwarded",
    "Host",
    "If-Match",
    "If-Modified-Since",
    "If-None-Match",
    "If-Range",
    "If-Unmodified-Since",
    "Location",
    "Max-Forwards",
    "Pragma",
    "Proxy-Connection",
    "Range",
    "Set-Cookie",
    "TE",
    "Trailer",
    "Transfer-Encoding",
    "Upgrade",
    "User-Agent",
    "Vary",
    "WWW-Authenticate",
];

const BAD_SIZE: HttpError = HttpError::new(400, "invalid chunk size");
const BAD_EXT: HttpError = HttpError::new(400, "invalid chunk extension");
const BAD_EOL: HttpError = HttpError::new(400, "chunk line not ended by CRLF");
const BAD_DATA_END: HttpError = HttpError::new(400, "chunk data not followed by CRLF");
const BAD_TRAILER: HttpError = HttpError::new(400, "invalid trailer field");
const FORBIDDEN_TRAILER: HttpError = HttpError::new(400, "field not allowed as a trailer");
const UNDECLARED_TRAILER: HttpError = HttpError::new(400, "trailer not listed in Trailer");
const LONG_TRAILER_NAME: HttpError = HttpError::new(400, "trailer field name too long");

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Before the first hex digit of a chunk size.
    #[default]
    SizeStart,
    /// Inside the hex digits.
    Size,
    /// Whitespace after the size: only a ';' may follow (BWS before a chunk-ext).
    SizeSpace,
    /// After ';': extensions, skipped up to the CR.
    Ext,
    /// Saw the CR ending the size line.
    SizeLf,
    /// Inside chunk data; `remaining` bytes to go.
    Data,
    DataCr,
    DataLf,
    /// At the start of a trailer line (or of the final empty line).
    TrailerStart,
    TrailerName,
    TrailerValue,
    TrailerLf,
    /// Saw the CR of the final empty line.
    EndLf,
    Done,
    Failed(HttpError),
}

/// Incremental decoder; feed it whatever bytes arrived.
#[derive(Debug, Clone)]
pub struct ChunkedDecoder {
    state: State,
    /// The size being read, then the data bytes left in the current chunk.
    remaining: u64,
    digits: u8,
    line_len: u16,
    trailer_len: u16,
    /// The trailer field name read so far (`name[..name_len]`).
    name: [u8; MAX_TRAILER_NAME],
    name_len: u8,
    /// The trailer section as received, when the caller asked to keep it
    /// ([`ChunkedDecoder::keep_trailers`]); bounded like the section itself. Boxed: one
    /// pointer in every decoder, the buffer only where a backend wants the trailers.
    #[allow(clippy::box_collection)]
    kept: Option<Box<Vec<u8>>>,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder {
            state: State::default(),
            remaining: 0,
            digits: 0,
            line_len: 0,
            trailer_len: 0,
            name: [0; MAX_TRAILER_NAME],
            name_len: 0,
            kept: None,
        }
    }
}

/// Which trailer fields the request announced in its `Trailer` field, if it has one:
/// `listed(name)` says whether `name` is among them. A request without a Trailer field may
/// send any trailer that is not forbidden.
pub type Declared<'a> = Option<&'a dyn Fn(&[u8]) -> bool>;

impl ChunkedDecoder {
    pub fn new() -> Self {
        ChunkedDecoder::default()
    }

    /// Keep the trailer section's bytes (checked as usual) for [`ChunkedDecoder::trailers`].
    pub fn keep_trailers(&mut self) {
        self.kept = Some(Box::default());
    }

    /// The trailer fields kept, "Name: value" lines each ending in CRLF, without the final
    /// empty line (empty when none came, or none were kept).
    pub fn trailers(&self) -> &[u8] {
        let t: &[u8] = self.kept.as_deref().map_or(&[], |k| k.as_slice());
        t.strip_suffix(b"\r\n").unwrap_or(t)
    }

    /// Whether the last chunk and the trailers have been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decode from `input`, passing payload bytes to `sink`. Returns the bytes of `input`
    /// consumed and whether the body (last chunk and trailers) is complete. Stops consuming at
    /// the end of the body, so pipelined bytes after it are left alone.
    ///
    /// Until the body is complete, all of `input` is consumed. After an error every later
    /// call returns the same error.
    ///
    /// `declared` describes the request's Trailer field; it must be the same on every call
    /// for one body.
    pub fn feed(
        &mut self,
        input: &[u8],
        declared: Declared,
        sink: &mut dyn FnMut(&[u8]),
    ) -> Result<(usize, bool), HttpError> {
        let mut i = 0;
        while i < input.len() {
            match self.state {
                State::Done => break,
                State::Failed(e) => return Err(e),
                State::Data => {
                    let avail = input.len() - i;
                    // `remaining` may exceed usize on 32-bit targets; then all of input fits.
                    let n = usize::try_from(self.remaining).map_or(avail, |r| r.min(avail));
                    sink(&input[i..i + n]);
                    i += n;
                    self.remaining -= n as u64;
                    if self.remaining == 0 {
                        self.state = State::DataCr;
                    }
                }
                _ => {
                    let b = input[i];
                    i += 1;
                    if let Err(e) = self.step(b, declared) {
                        self.state = State::Failed(e);
                        return Err(e);
                    }
                }
            }
        }
        match self.state {
            State::Failed(e) => Err(e),
            s => Ok((i, s == State::Done)),
        }
    }

    /// Advance the framing state machine by one byte.
    fn step(&mut self, b: u8, declared: Declared) -> Result<(), HttpError> {
        self.state = match self.state {
            State::SizeStart => {
                // No sign, no "0x", no leading whitespace: 1*HEXDIG.
                let d = hex(b).ok_or(BAD_SIZE)?;
                self.remaining = d;
                self.digits = 1;
                self.line_len = 1;
                State::Size
            }
            State::Size | State::SizeSpace | State::Ext => {
                // After whitespace only ';' may come: "5 \r\n" is trailing whitespace.
                if b == b'\r' && self.state != State::SizeSpace {
                    State::SizeLf
                } else {
                    self.line_len += 1;
                    if self.line_len > MAX_CHUNK_LINE {
                        return Err(BAD_EXT);
                    }
                    self.size_line_byte(b)?
                }
            }
            State::SizeLf => {
                if b != b'\n' {
                    return Err(BAD_EOL);
                }
                if self.remaining == 0 {
                    self.trailer_len = 0;
                    State::TrailerStart
                } else {
                    State::Data
                }
            }
            State::DataCr if b == b'\r' => State::DataLf,
            State::DataLf if b == b'\n' => State::SizeStart,
            State::DataCr | State::DataLf => return Err(BAD_DATA_END),
            State::TrailerStart
            | State::TrailerName
            | State::TrailerValue
            | State::TrailerLf
            | State::EndLf => {
                self.trailer_len += 1;
                if self.trailer_len > MAX_TRAILERS {
                    return Err(HttpError::new(400, "trailer section too large"));
                }
                if let Some(k) = self.kept.as_mut() {
                    k.push(b);
                }
                self.trailer_byte(b, declared)?
            }
            // feed() handles these without calling step().
            State::Data | State::Done | State::Failed(_) => self.state,
        };
        Ok(())
    }

    /// A byte of the size line after the first digit, other than CR.
    fn size_line_byte(&mut self, b: u8) -> Result<State, HttpError> {
        Ok(match self.state {
            State::Size => {
                if let Some(d) = hex(b) {
                    if self.digits == MAX_SIZE_DIGITS {
                        return Err(BAD_SIZE);
                    }
                    self.digits += 1;
                    self.remaining = (self.remaining << 4) | d;
                    State::Size
                } else if b == b';' {
                    State::Ext
                } else if b == b' ' || b == b'\t' {
                    State::SizeSpace
                } else {
                    // Includes a bare LF: framing lines need CRLF.
                    return Err(BAD_SIZE);
                }
            }
            State::SizeSpace => match b {
                b' ' | b'\t' => State::SizeSpace,
                b';' => State::Ext,
                // Whitespace then the line end (or anything else) is not in the grammar.
                _ => return Err(BAD_SIZE),
            },
            // Extensions are skipped, but control bytes (a bare LF above all) are refused.
            _ if is_field_value_char(b) => State::Ext,
            _ => return Err(BAD_EXT),
        })
    }

    /// A byte of the trailer section (RFC 9112 §7.1.2), checked like a header field line.
    fn trailer_byte(&mut self, b: u8, declared: Declared) -> Result<State, HttpError> {
        Ok(match (self.state, b) {
            (State::TrailerStart, b'\r') => State::EndLf,
            (State::TrailerStart, _) if is_tchar(b) => {
                self.name_len = 0;
                self.name_byte(b)?;
                State::TrailerName
            }
            (State::TrailerName, b':') => {
                self.check_trailer_name(declared)?;
                State::TrailerValue
            }
            (State::TrailerName, _) if is_tchar(b) => {
                self.name_byte(b)?;
                State::TrailerName
            }
            (State::TrailerValue, b'\r') => State::TrailerLf,
            (State::TrailerValue, _) if is_field_value_char(b) => State::TrailerValue,
            (State::TrailerLf, b'\n') => State::TrailerStart,
            (State::EndLf, b'\n') => State::Done,
            (State::TrailerLf | State::EndLf, _) => return Err(BAD_EOL),
            // Empty names, whitespace before the colon, obs-fold, control bytes, bare LF.
            _ => return Err(BAD_TRAILER),
        })
    }

    /// Keep one more byte of the trailer name; a name too long to keep is refused.
    fn name_byte(&mut self, b: u8) -> Result<(), HttpError> {
        let i = usize::from(self.name_len);
        let slot = self.name.get_mut(i).ok_or(LONG_TRAILER_NAME)?;
        *slot = b;
        self.name_len += 1;
        Ok(())
    }

    /// The name of a trailer field is complete: refuse it if it may not be a trailer, or if
    /// the request announced its trailers and this is not one of them.
    fn check_trailer_name(&self, declared: Declared) -> Result<(), HttpError> {
        let name = &self.name[..usize::from(self.name_len)];
        if FORBIDDEN_TRAILERS
            .iter()
            .any(|f| f.as_bytes().eq_ignore_ascii_case(name))
        {
            return Err(FORBIDDEN_TRAILER);
        }
        match declared {
            Some(listed) if !listed(name) => Err(UNDECLARED_TRAILER),
            _ => Ok(()),
        }
    }
}

fn hex(b: u8) -> Option<u64> {
    (b as char).to_digit(16).map(u64::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a whole body decodes to: payload, consumed bytes, done; or the status.
    type Outcome = (Result<(usize, bool), u16>, Vec<u8>);

    /// Feed `pieces` in order, as a connection would: stop at the first error or when done.
    fn run(pieces: &[&[u8]]) -> Outcome {
        run_declared(pieces, None)
    }

    /// `run` for a request whose Trailer field is described by `declared`.
    fn run_declared(pieces: &[&[u8]], declared: Declared) -> Outcome {
        let mut d = ChunkedDecoder::new();
        let mut payload = Vec::new();
        let mut consumed = 0;
        for piece in pieces {
            match d.feed(piece, declared, &mut |b| payload.extend_from_slice(b)) {
                Err(e) => return (Err(e.status), payload),
                Ok((n, true)) => return (Ok((consumed + n, true)), payload),
                Ok((n, false)) => {
                    assert_eq!(n, piece.len(), "an unfinished body consumes all input");
                    consumed += n;
                }
            }
        }
        (Ok((consumed, false)), payload)
    }

    enum Want {
        /// The payload and how many bytes after the body stay unconsumed.
        Done(&'static str, usize),
        /// Not finished; the payload so far.
        More(&'static str),
        Bad,
    }
    use Want::*;

    #[rustfmt::skip]
    const CASES: &[(&str, Want)] = &[
        ("5\r\nhello\r\n0\r\n\r\n", Done("hello", 0)),
        ("5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", Done("hello world", 0)),
        ("A\r\n0123456789\r\n0\r\n\r\n", Done("0123456789", 0)),
        ("a\r\n0123456789\r\n0\r\n\r\n", Done("0123456789", 0)),
        ("1\r\n\r\r\n2\r\n\r\n\r\n0\r\n\r\n", Done("\r\r\n", 0)),
        ("0\r\n\r\n", Done("", 0)),
        ("000\r\n\r\n", Done("", 0)),
        ("0000000000000005\r\nhello\r\n0\r\n\r\n", Done("hello", 0)),
        // Extensions: ignored, BWS before ';' allowed.
        ("5;ext=1\r\nhello\r\n0;last\r\n\r\n", Done("hello", 0)),
        ("5 ;ext\r\nhello\r\n0\r\n\r\n", Done("hello", 0)),
        ("5\t ; a = \"b c\"\r\nhello\r\n0\r\n\r\n", Done("hello", 0)),
        ("5;\r\nhello\r\n0\r\n\r\n", Done("hello", 0)),
        ("5;a=\u{e9}\r\nhello\r\n0\r\n\r\n", Done("hello", 0)),
        // Trailers.
        ("5\r\nhello\r\n0\r\nX-T: v\r\nY:w\r\n\r\n", Done("hello", 0)),
        ("0\r\nX-T:\r\n\r\n", Done("", 0)),
        ("0\r\nX-T: a\tb \u{80}\r\n\r\n", Done("", 0)),
        // Pipelined bytes after the body are left alone.
        ("0\r\n\r\nGET / HTTP/1.1\r\n", Done("", 16)),
        ("3\r\nabc\r\n0\r\nT: 1\r\n\r\n0\r\n\r\n", Done("abc", 5)),
        // Incomplete.
        ("", More("")),
        ("5", More("")),
        ("5\r\nhel", More("hel")),
        ("5\r\nhello\r", More("hello")),
        ("5\r\nhello\r\n0\r\n", More("hello")),
        ("5\r\nhello\r\n0\r\n\r", More("hello")),
        ("0\r\nX: y\r\n", More("")),
        ("FFFFFFFFFFFFFFFF\r\nabc", More("abc")),
        // Sizes.
        ("\r\n", Bad),
        (";a\r\n", Bad),
        ("0x5\r\nhello\r\n0\r\n\r\n", Bad),
        ("-5\r\nhello\r\n0\r\n\r\n", Bad),
        ("+5\r\nhello\r\n0\r\n\r\n", Bad),
        (" 5\r\nhello\r\n0\r\n\r\n", Bad),
        ("\t5\r\nhello\r\n0\r\n\r\n", Bad),
        ("5 \r\nhello\r\n0\r\n\r\n", Bad),
        ("5\t\r\nhello\r\n0\r\n\r\n", Bad),
        ("5 5\r\nhello\r\n0\r\n\r\n", Bad),
        ("g\r\n", Bad),
        ("00000000000000005\r\nhello\r\n0\r\n\r\n", Bad),
        ("10000000000000000\r\n", Bad),
        // Line endings.
        ("5\nhello\r\n0\r\n\r\n", Bad),
        ("5;a\nhello\r\n0\r\n\r\n", Bad),
        ("5\rhello\r\n0\r\n\r\n", Bad),
        ("5\r\nhello\n0\r\n\r\n", Bad),
        ("5\r\nhello\r0\r\n\r\n", Bad),
        ("5\r\nhelloX\r\n0\r\n\r\n", Bad),
        ("5\r\nhello\r\r\n0\r\n\r\n", Bad),
        ("5\r\nhello0\r\n\r\n", Bad),
        ("0\r\n\n", Bad),
        ("0\n\r\n", Bad),
        ("0\r\n\rx", Bad),
        // Extensions with control bytes.
        ("5;\x01\r\nhello\r\n0\r\n\r\n", Bad),
        ("5;a\0\r\nhello\r\n0\r\n\r\n", Bad),
        ("5;a\x7f\r\nhello\r\n0\r\n\r\n", Bad),
        // Trailers checked like header fields.
        ("0\r\nX: v\n\r\n", Bad),
        ("0\r\nX: v\r\n\n", Bad),
        ("0\r\nX : v\r\n\r\n", Bad),
        ("0\r\n: v\r\n\r\n", Bad),
        ("0\r\n v\r\n\r\n", Bad),
        ("0\r\nX: a\r\n b\r\n\r\n", Bad),
        ("0\r\nX: a\0b\r\n\r\n", Bad),
        ("0\r\nX: a\x01\r\n\r\n", Bad),
        ("0\r\nX v\r\n\r\n", Bad),
        ("0\r\nX\r\n\r\n", Bad),
        ("0\r\nX(: v\r\n\r\n", Bad),
        ("0\r\nX: a\rb\r\n\r\n", Bad),
        // Fields that may not be trailers, in any case (RFC 9110 §6.5.1).
        ("0\r\nContent-Length: 0\r\n\r\n", Bad),
        ("0\r\ncontent-length: 0\r\n\r\n", Bad),
        ("0\r\nTransfer-Encoding: chunked\r\n\r\n", Bad),
        ("0\r\nHost: a\r\n\r\n", Bad),
        ("0\r\nTE: trailers\r\n\r\n", Bad),
        ("0\r\nte:\r\n\r\n", Bad),
        ("0\r\nAuthorization: x\r\n\r\n", Bad),
        ("0\r\nTrailer: X\r\n\r\n", Bad),
        ("0\r\nProxy-Connection: x\r\n\r\n", Bad),
        ("0\r\nMAX-FORWARDS: 1\r\n\r\n", Bad),
        ("0\r\nIf-Unmodified-Since: x\r\n\r\n", Bad),
        ("0\r\nWWW-Authenticate: x\r\n\r\n", Bad),
        ("0\r\nX-T: 1\r\nSet-Cookie: a=b\r\n\r\n", Bad),
        // Names that only look like forbidden ones are fine.
        ("0\r\nContent-Lengths: 0\r\n\r\n", Done("", 0)),
        ("0\r\nX-Host: a\r\n\r\n", Done("", 0)),
        ("0\r\nT: a\r\n\r\n", Done("", 0)),
        ("0\r\nServer-Timing: db;dur=53\r\n\r\n", Done("", 0)),
    ];

    fn expected(input: &[u8], want: &Want) -> Outcome {
        match *want {
            Done(p, rest) => (Ok((input.len() - rest, true)), p.as_bytes().to_vec()),
            More(p) => (Ok((input.len(), false)), p.as_bytes().to_vec()),
            Bad => (Err(400), Vec::new()),
        }
    }

    /// Compare, ignoring the partial payload delivered before an error.
    fn same(got: &Outcome, want: &Outcome) -> bool {
        match (&got.0, &want.0) {
            (Err(a), Err(b)) => a == b,
            _ => got == want,
        }
    }

    fn check_all_splits(input: &[u8], want: &Outcome) {
        let shown = String::from_utf8_lossy(input);
        let whole = run(&[input]);
        assert!(
            same(&whole, want),
            "{shown:?}: got {whole:?}, want {want:?}"
        );
        for k in 0..=input.len() {
            let (a, b) = input.split_at(k);
            let got = run(&[a, b]);
            assert!(same(&got, want), "{shown:?} split at {k}: got {got:?}");
        }
        let bytes: Vec<&[u8]> = input.chunks(1).collect();
        let got = run(&bytes);
        assert!(same(&got, want), "{shown:?} byte by byte: got {got:?}");
    }

    #[test]
    fn kept_trailers_are_the_field_lines() {
        let body = b"3\r\nabc\r\n0\r\nA: 1\r\nB-C: two\r\n\r\nNEXT";
        // Whatever the split, the payload and the kept lines are the same.
        for cut in 0..body.len() {
            let mut d = ChunkedDecoder::new();
            d.keep_trailers();
            let mut data = Vec::new();
            let (u1, _) = d
                .feed(&body[..cut], None, &mut |x| data.extend_from_slice(x))
                .unwrap();
            let (u2, done) = d
                .feed(&body[u1..], None, &mut |x| data.extend_from_slice(x))
                .unwrap();
            assert!(done, "cut {cut}");
            assert_eq!(&body[u1 + u2..], b"NEXT", "cut {cut}");
            assert_eq!(data, b"abc");
            assert_eq!(d.trailers(), b"A: 1\r\nB-C: two\r\n", "cut {cut}");
        }
        // Not kept unless asked, and none when none came.
        let mut d = ChunkedDecoder::new();
        d.feed(body, None, &mut |_| {}).unwrap();
        assert_eq!(d.trailers(), b"");
        let mut d = ChunkedDecoder::new();
        d.keep_trailers();
        d.feed(b"0\r\n\r\n", None, &mut |_| {}).unwrap();
        assert_eq!(d.trailers(), b"");
    }

    #[test]
    fn table_at_every_split_point() {
        for (input, want) in CASES {
            let input = input.as_bytes();
            check_all_splits(input, &expected(input, want));
        }
    }

    #[test]
    fn chunk_line_is_bounded() {
        // "1;" plus extension bytes: a line of 1023 bytes with its CRLF is fine, 1024 (where
        // lighttpd stops) is not.
        let line = |len: usize| format!("1;{}\r\nx\r\n0\r\n\r\n", "e".repeat(len - 2 - 2));
        let ok = line(1023);
        check_all_splits(ok.as_bytes(), &(Ok((ok.len(), true)), b"x".to_vec()));
        let long = line(1024);
        check_all_splits(long.as_bytes(), &(Err(400), Vec::new()));
        // Whitespace before ';' counts too.
        let spaces = format!("1{};\r\nx\r\n0\r\n\r\n", " ".repeat(1021));
        assert_eq!(run(&[spaces.as_bytes()]).0, Err(400));
        // The line is refused as it grows, before its end arrives.
        let endless = format!("1;{}", "e".repeat(1020));
        assert_eq!(run(&[endless.as_bytes()]).0, Err(400));
        assert_eq!(run(&[&endless.as_bytes()[..1021]]).0, Ok((1021, false)));
        // lighttpd's request.t: "a ; " and 1024 x's.
        let lighttpd = format!("a ; {}\r\n0123456789\r\n0\r\n\r\n", "x".repeat(1024));
        assert_eq!(run(&[lighttpd.as_bytes()]).0, Err(400));
    }

    #[test]
    fn trailer_names_are_bounded() {
        let body = |n: usize| format!("0\r\n{}: v\r\n\r\n", "n".repeat(n));
        let ok = body(MAX_TRAILER_NAME);
        check_all_splits(ok.as_bytes(), &(Ok((ok.len(), true)), Vec::new()));
        let long = body(MAX_TRAILER_NAME + 1);
        check_all_splits(long.as_bytes(), &(Err(400), Vec::new()));
        // Refused at the byte that makes it too long, without waiting for the colon.
        let open = format!("0\r\n{}", "n".repeat(MAX_TRAILER_NAME + 1));
        assert_eq!(run(&[open.as_bytes()]).0, Err(400));
        // A forbidden name after a long allowed one: the buffer starts over for each name.
        let two = format!("0\r\n{}: v\r\nHost: h\r\n\r\n", "n".repeat(60));
        check_all_splits(two.as_bytes(), &(Err(400), Vec::new()));
    }

    /// With a Trailer field in the request, only the fields it lists may arrive.
    #[test]
    fn trailers_must_be_declared_when_announced() {
        let listed = |name: &[u8]| name.eq_ignore_ascii_case(b"test-trailer");
        let declared: Declared = Some(&listed);
        for (input, ok) in [
            ("0\r\nTest-Trailer: testing\r\n\r\n", true),
            ("0\r\nTEST-TRAILER: testing\r\n\r\n", true),
            ("0\r\n\r\n", true),
            (
                "a\r\n0123456789\r\n0\r\nTest-Trailer: testing\r\n\r\n",
                true,
            ),
            ("0\r\nOther: x\r\n\r\n", false),
            ("0\r\nTest-Trailer: a\r\nOther: x\r\n\r\n", false),
            ("0\r\nTest-Traile: x\r\n\r\n", false),
            // Listing a forbidden field does not make it allowed.
            ("0\r\nContent-Length: 0\r\n\r\n", false),
        ] {
            let bytes = input.as_bytes();
            let payload = if bytes.starts_with(b"a") {
                b"0123456789".to_vec()
            } else {
                Vec::new()
            };
            let want = if ok {
                (Ok((bytes.len(), true)), payload)
            } else {
                (Err(400), Vec::new())
            };
            let whole = run_declared(&[bytes], declared);
            assert!(same(&whole, &want), "{input:?}: {whole:?}");
            for k in 0..=bytes.len() {
                let (a, b) = bytes.split_at(k);
                let got = run_declared(&[a, b], declared);
                assert!(same(&got, &want), "{input:?} split at {k}: {got:?}");
            }
        }
        let everything: Declared = Some(&|_: &[u8]| true);
        let forbidden = b"0\r\nContent-Length: 0\r\n\r\n";
        assert_eq!(run_declared(&[forbidden], everything).0, Err(400));
    }

    #[test]
    fn trailers_are_bounded() {
        // The trailer section is "X: " + value + CRLF + CRLF: 7 bytes around the value.
        let body = |n: usize| format!("0\r\nX: {}\r\n\r\n", "v".repeat(n));
        let ok = body(8192 - 7);
        check_all_splits(ok.as_bytes(), &(Ok((ok.len(), true)), Vec::new()));
        let big = body(8192 - 6);
        check_all_splits(big.as_bytes(), &(Err(400), Vec::new()));
        // Many small trailer lines hit the same bound.
        let many = format!("0\r\n{}\r\n", "A: b\r\n".repeat(2000));
        assert_eq!(run(&[many.as_bytes()]).0, Err(400));
    }

    #[test]
    fn large_payload_is_delivered_exactly() {
        let data: Vec<u8> = (0..70_000u32).map(|i| (i % 251) as u8).collect();
        let mut body = Vec::new();
        for piece in data.chunks(9_999) {
            body.extend_from_slice(format!("{:x}\r\n", piece.len()).as_bytes());
            body.extend_from_slice(piece);
            body.extend_from_slice(b"\r\n");
        }
        body.extend_from_slice(b"0\r\n\r\nNEXT");
        for size in [1, 7, 4096, body.len()] {
            let pieces: Vec<&[u8]> = body.chunks(size).collect();
            let (res, payload) = run(&pieces);
            assert_eq!(res, Ok((body.len() - 4, true)), "pieces of {size}");
            assert!(payload == data, "pieces of {size}");
        }
    }

    #[test]
    fn error_state_is_sticky_and_done_consumes_nothing() {
        let mut d = ChunkedDecoder::new();
        let mut sink = |_: &[u8]| {};
        let err = d.feed(b"x", None, &mut sink);
        assert_eq!(err.map_err(|e| e.status), Err(400));
        assert_eq!(d.feed(b"0\r\n\r\n", None, &mut sink), err);
        assert_eq!(d.feed(b"", None, &mut sink), err);

        let mut d = ChunkedDecoder::new();
        assert_eq!(d.feed(b"0\r\n\r\n", None, &mut sink), Ok((5, true)));
        assert!(d.is_done());
        assert_eq!(d.feed(b"more", None, &mut sink), Ok((0, true)));
        assert_eq!(d.feed(b"", None, &mut sink), Ok((0, true)));
    }

    #[test]
    fn payload_slices_are_never_empty_nor_past_the_body() {
        let mut calls = 0;
        let mut d = ChunkedDecoder::new();
        let r = d.feed(b"2\r\nab\r\n0\r\n\r\nzz", None, &mut |b| {
            assert!(!b.is_empty());
            assert_eq!(b, b"ab");
            calls += 1;
        });
        assert_eq!(r, Ok((12, true)));
        assert_eq!(calls, 1);
    }
}
