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

use super::request::{is_field_value_char, is_tchar};
use super::HttpError;

/// 16 hex digits are 64 bits, so a size that fits this many digits cannot overflow u64.
const MAX_SIZE_DIGITS: u8 = 16;
/// The chunk-size line with its extensions, without the CRLF. Extensions are ignored, so
/// this only has to be generous enough for real clients.
const MAX_CHUNK_LINE: u16 = 4096;
/// The trailer section, including its line endings and the final empty line.
const MAX_TRAILERS: u16 = 8192;

const BAD_SIZE: HttpError = HttpError::new(400, "invalid chunk size");
const BAD_EXT: HttpError = HttpError::new(400, "invalid chunk extension");
const BAD_EOL: HttpError = HttpError::new(400, "chunk line not ended by CRLF");
const BAD_DATA_END: HttpError = HttpError::new(400, "chunk data not followed by CRLF");
const BAD_TRAILER: HttpError = HttpError::new(400, "invalid trailer field");

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
#[derive(Debug, Default, Clone)]
pub struct ChunkedDecoder {
    state: State,
    /// The size being read, then the data bytes left in the current chunk.
    remaining: u64,
    digits: u8,
    line_len: u16,
    trailer_len: u16,
}

impl ChunkedDecoder {
    pub fn new() -> Self {
        ChunkedDecoder::default()
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
    pub fn feed(
        &mut self,
        input: &[u8],
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
                    if let Err(e) = self.step(b) {
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
    fn step(&mut self, b: u8) -> Result<(), HttpError> {
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
                self.trailer_byte(b)?
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
    fn trailer_byte(&mut self, b: u8) -> Result<State, HttpError> {
        Ok(match (self.state, b) {
            (State::TrailerStart, b'\r') => State::EndLf,
            (State::TrailerStart, _) if is_tchar(b) => State::TrailerName,
            (State::TrailerName, b':') => State::TrailerValue,
            (State::TrailerName, _) if is_tchar(b) => State::TrailerName,
            (State::TrailerValue, b'\r') => State::TrailerLf,
            (State::TrailerValue, _) if is_field_value_char(b) => State::TrailerValue,
            (State::TrailerLf, b'\n') => State::TrailerStart,
            (State::EndLf, b'\n') => State::Done,
            (State::TrailerLf | State::EndLf, _) => return Err(BAD_EOL),
            // Empty names, whitespace before the colon, obs-fold, control bytes, bare LF.
            _ => return Err(BAD_TRAILER),
        })
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
        let mut d = ChunkedDecoder::new();
        let mut payload = Vec::new();
        let mut consumed = 0;
        for piece in pieces {
            match d.feed(piece, &mut |b| payload.extend_from_slice(b)) {
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
    fn table_at_every_split_point() {
        for (input, want) in CASES {
            let input = input.as_bytes();
            check_all_splits(input, &expected(input, want));
        }
    }

    #[test]
    fn chunk_line_is_bounded() {
        // "1;" plus extension bytes: a line of exactly 4096 is fine, one more is not.
        let line = |len: usize| format!("1;{}\r\nx\r\n0\r\n\r\n", "e".repeat(len - 2));
        let ok = line(4096);
        check_all_splits(ok.as_bytes(), &(Ok((ok.len(), true)), b"x".to_vec()));
        let long = line(4097);
        check_all_splits(long.as_bytes(), &(Err(400), Vec::new()));
        // Whitespace before ';' counts too.
        let spaces = format!("1{};\r\nx\r\n0\r\n\r\n", " ".repeat(4096));
        assert_eq!(run(&[spaces.as_bytes()]).0, Err(400));
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
        let err = d.feed(b"x", &mut sink);
        assert_eq!(err.map_err(|e| e.status), Err(400));
        assert_eq!(d.feed(b"0\r\n\r\n", &mut sink), err);
        assert_eq!(d.feed(b"", &mut sink), err);

        let mut d = ChunkedDecoder::new();
        assert_eq!(d.feed(b"0\r\n\r\n", &mut sink), Ok((5, true)));
        assert!(d.is_done());
        assert_eq!(d.feed(b"more", &mut sink), Ok((0, true)));
        assert_eq!(d.feed(b"", &mut sink), Ok((0, true)));
    }

    #[test]
    fn payload_slices_are_never_empty_nor_past_the_body() {
        let mut calls = 0;
        let mut d = ChunkedDecoder::new();
        let r = d.feed(b"2\r\nab\r\n0\r\n\r\nzz", &mut |b| {
            assert!(!b.is_empty());
            assert_eq!(b, b"ab");
            calls += 1;
        });
        assert_eq!(r, Ok((12, true)));
        assert_eq!(calls, 1);
    }
}
