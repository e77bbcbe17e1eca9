//! FastCGI records (the FastCGI 1.0 specification): encoders for what the web server sends
//! (BEGIN_REQUEST, PARAMS, STDIN, ABORT_REQUEST) and an incremental decoder for what the
//! application answers (STDOUT, STDERR, END_REQUEST).
//!
//! The decoder hands out STDOUT and STDERR payload as ranges of the caller's buffer, as the
//! bytes arrive: a record may be 64 KiB plus padding, and nothing needs the whole of it in one
//! buffer. Its own state is a handful of counters and the 8 bytes of a header or END_REQUEST
//! body that may be split across reads.
//!
//! lightd runs one request per connection (no multiplexing), so a record of that request
//! carries the request id the encoder used; a STDOUT, STDERR or END_REQUEST for another id is
//! a protocol error. Management records (id 0) and record types a responder has no business
//! sending are skipped.

use std::fmt;
use std::ops::Range;

/// The only protocol version.
pub const VERSION: u8 = 1;

/// Record types.
pub const BEGIN_REQUEST: u8 = 1;
pub const ABORT_REQUEST: u8 = 2;
pub const END_REQUEST: u8 = 3;
pub const PARAMS: u8 = 4;
pub const STDIN: u8 = 5;
pub const STDOUT: u8 = 6;
pub const STDERR: u8 = 7;

/// The most content one record holds (its length is 16 bits).
pub const MAX_CONTENT: usize = 0xffff;
/// The record header's size.
pub const HEADER_LEN: usize = 8;
/// The longest name or value a PARAMS pair can carry (a 31-bit length).
pub const MAX_PARAM_LEN: usize = 0x7fff_ffff;

/// The role asked for in BEGIN_REQUEST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Responder = 1,
    Authorizer = 2,
}

/// END_REQUEST's protocolStatus values.
pub const REQUEST_COMPLETE: u8 = 0;
pub const CANT_MPX_CONN: u8 = 1;
pub const OVERLOADED: u8 = 2;
pub const UNKNOWN_ROLE: u8 = 3;

/// A FastCGI protocol violation. The request fails (502) and the connection to the application
/// is closed: after a framing error nothing more on it can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FcgiError {
    /// What is wrong, for the error log; never contains application bytes.
    pub reason: &'static str,
}

impl fmt::Display for FcgiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FastCGI protocol error: {}", self.reason)
    }
}

const fn fail(reason: &'static str) -> FcgiError {
    FcgiError { reason }
}

// ---------------------------------------------------------------------------------------------
// Encoders. Each appends whole records to `out`.

/// Append a record header.
///
/// For STDIN data copied by the caller (from a file, say) without going through [`stdin`]:
/// the header, then exactly `content_len` bytes, then `padding` bytes of anything.
pub fn header(out: &mut Vec<u8>, kind: u8, request_id: u16, content_len: u16, padding: u8) {
    let [id1, id0] = request_id.to_be_bytes();
    let [len1, len0] = content_len.to_be_bytes();
    out.extend_from_slice(&[VERSION, kind, id1, id0, len1, len0, padding, 0]);
}

/// Append BEGIN_REQUEST. With `keep_conn` the application leaves the connection open after
/// END_REQUEST, for the next request.
pub fn begin_request(out: &mut Vec<u8>, request_id: u16, role: Role, keep_conn: bool) {
    header(out, BEGIN_REQUEST, request_id, 8, 0);
    let [role1, role0] = (role as u16).to_be_bytes();
    out.extend_from_slice(&[role1, role0, u8::from(keep_conn), 0, 0, 0, 0, 0]);
}

/// Append ABORT_REQUEST.
pub fn abort_request(out: &mut Vec<u8>, request_id: u16) {
    header(out, ABORT_REQUEST, request_id, 0, 0);
}

/// Append the PARAMS stream: every (name, value) pair, then the empty PARAMS record that ends
/// the stream.
///
/// Pairs are packed into records of at most 64 KiB and a pair is never split between two
/// records unless it is larger than a record on its own: the specification allows a pair to
/// span records, but PHP's FastCGI code (php-fpm, php-cgi) decodes each record on its own and
/// rejects a pair cut in two.
///
/// A name or value longer than [`MAX_PARAM_LEN`] is an error, and then `out` is left as it was.
pub fn params<'a, I>(out: &mut Vec<u8>, request_id: u16, pairs: I) -> Result<(), FcgiError>
where
    I: IntoIterator<Item = (&'a [u8], &'a [u8])>,
{
    let start = out.len();
    let mut rec = Stream::new(out, PARAMS, request_id);
    for (name, value) in pairs {
        if name.len() > MAX_PARAM_LEN || value.len() > MAX_PARAM_LEN {
            out.truncate(start);
            return Err(fail("parameter longer than 2 GiB"));
        }
        let mut lens = [0u8; 8];
        let n = put_len(&mut lens, 0, name.len());
        let n = put_len(&mut lens, n, value.len());
        let size = n + name.len() + value.len();
        if rec.used(out) > 0 && rec.used(out) + size > MAX_CONTENT {
            rec.close(out);
            rec = Stream::new(out, PARAMS, request_id);
        }
        rec = rec.put(out, &lens[..n]);
        rec = rec.put(out, name);
        rec = rec.put(out, value);
    }
    if rec.used(out) > 0 {
        rec.close(out);
    } else {
        // Nothing in the last record: drop its header rather than send an empty record twice.
        out.truncate(rec.at);
    }
    header(out, PARAMS, request_id, 0, 0);
    Ok(())
}

/// Append `data` as STDIN records of at most 64 KiB each. Empty `data` appends the empty
/// STDIN record that ends the request body.
pub fn stdin(out: &mut Vec<u8>, request_id: u16, data: &[u8]) {
    if data.is_empty() {
        return header(out, STDIN, request_id, 0, 0);
    }
    for part in data.chunks(MAX_CONTENT) {
        // chunks() never yields more than MAX_CONTENT bytes, so the length fits in u16.
        header(out, STDIN, request_id, part.len() as u16, 0);
        out.extend_from_slice(part);
    }
}

/// A name-value length: one byte below 128, else four with the top bit set.
fn put_len(buf: &mut [u8; 8], at: usize, len: usize) -> usize {
    if len < 0x80 {
        buf[at] = len as u8;
        at + 1
    } else {
        // The caller checked len <= MAX_PARAM_LEN, so it fits in 31 bits.
        let b = (len as u32 | 0x8000_0000).to_be_bytes();
        buf[at..at + 4].copy_from_slice(&b);
        at + 4
    }
}

/// An open record of a stream type: its header sits at `at` with the length still to fill in.
struct Stream {
    at: usize,
    kind: u8,
    request_id: u16,
}

impl Stream {
    fn new(out: &mut Vec<u8>, kind: u8, request_id: u16) -> Stream {
        let at = out.len();
        header(out, kind, request_id, 0, 0);
        Stream {
            at,
            kind,
            request_id,
        }
    }

    fn used(&self, out: &[u8]) -> usize {
        out.len() - self.at - HEADER_LEN
    }

    /// Append `data`, closing full records and opening new ones as needed.
    fn put(mut self, out: &mut Vec<u8>, mut data: &[u8]) -> Stream {
        // Each turn fills the open record or uses up `data`: at most len / 64 KiB + 1 turns.
        loop {
            let room = MAX_CONTENT - self.used(out);
            let n = room.min(data.len());
            out.extend_from_slice(&data[..n]);
            data = &data[n..];
            if data.is_empty() {
                return self;
            }
            let (kind, id) = (self.kind, self.request_id);
            self.close(out);
            self = Stream::new(out, kind, id);
        }
    }

    /// Write the content length into the header.
    fn close(self, out: &mut [u8]) {
        // used() never passes MAX_CONTENT, so it fits in u16.
        let len = (self.used(out) as u16).to_be_bytes();
        out[self.at + 4..self.at + 6].copy_from_slice(&len);
    }
}

// ---------------------------------------------------------------------------------------------
// The decoder.

/// What the application said, as the decoder reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    /// Payload of STDOUT (the response) at this range of the input. A record's payload may
    /// come in several pieces; none is empty.
    Stdout(Range<usize>),
    /// Payload of STDERR (for the error log), likewise.
    Stderr(Range<usize>),
    /// END_REQUEST, read whole with its padding: the request is over.
    End {
        app_status: u32,
        protocol_status: u8,
    },
}

/// One call's result: `used` bytes of the input are dealt with. With no record, that is all of
/// the input; with one, the bytes up to and including the record's range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub used: usize,
    pub record: Option<Record>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Header,
    Content,
    Padding,
    Done,
    Failed(FcgiError),
}

/// Incremental decoder of the application's records for one request.
#[derive(Debug, Clone)]
pub struct Decoder {
    request_id: u16,
    state: State,
    /// A header, or END_REQUEST's body, as far as it has arrived.
    part: [u8; 8],
    have: u8,
    kind: u8,
    /// Content bytes of the current record still to come.
    content: u16,
    /// Padding bytes still to come.
    padding: u8,
}

impl Decoder {
    /// A decoder for the records of `request_id` (the id given to [`begin_request`]).
    pub fn new(request_id: u16) -> Decoder {
        Decoder {
            request_id,
            state: State::Header,
            part: [0; 8],
            have: 0,
            kind: 0,
            content: 0,
            padding: 0,
        }
    }

    /// Whether END_REQUEST has been read.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// Decode from the start of `input`: see [`Step`]. The caller drops `used` bytes once it
    /// has dealt with the record, and calls again with what is left and what arrives next.
    ///
    /// After END_REQUEST any further byte is an error (the application may not send more for
    /// this request); an empty input is fine. After an error every call returns it again.
    pub fn feed(&mut self, input: &[u8]) -> Result<Step, FcgiError> {
        let r = self.run(input);
        if let Err(e) = r {
            self.state = State::Failed(e);
        }
        r
    }

    fn run(&mut self, input: &[u8]) -> Result<Step, FcgiError> {
        let mut pos = 0;
        let none = |used| Ok(Step { used, record: None });
        // Every turn consumes at least one byte, or changes state without consuming (at most
        // twice in a row: Content to Padding to Header or Done), or returns.
        loop {
            let avail = input.len() - pos;
            match self.state {
                State::Failed(e) => return Err(e),
                State::Done if avail > 0 => return Err(fail("record after END_REQUEST")),
                State::Done => return none(pos),
                State::Header if avail == 0 => return none(pos),
                State::Header => {
                    pos += self.gather(&input[pos..], HEADER_LEN);
                    if usize::from(self.have) == HEADER_LEN {
                        self.have = 0;
                        self.start_record()?;
                    }
                }
                State::Content if self.content == 0 => self.state = State::Padding,
                State::Content if avail == 0 => return none(pos),
                State::Content => {
                    // n <= content, a u16.
                    let n = avail.min(usize::from(self.content));
                    match self.kind {
                        STDOUT | STDERR => {
                            self.content -= n as u16;
                            let range = pos..pos + n;
                            pos += n;
                            let record = if self.kind == STDOUT {
                                Record::Stdout(range)
                            } else {
                                Record::Stderr(range)
                            };
                            return Ok(Step {
                                used: pos,
                                record: Some(record),
                            });
                        }
                        END_REQUEST if self.have < 8 => {
                            let took = self.gather(&input[pos..pos + n], 8);
                            self.content -= took as u16;
                            pos += took;
                        }
                        _ => {
                            // Skipped: another record type, or END_REQUEST's extra bytes.
                            self.content -= n as u16;
                            pos += n;
                        }
                    }
                }
                State::Padding if self.padding > 0 => {
                    if avail == 0 {
                        return none(pos);
                    }
                    let n = avail.min(usize::from(self.padding));
                    self.padding -= n as u8;
                    pos += n;
                }
                State::Padding if self.kind != END_REQUEST => self.state = State::Header,
                State::Padding => {
                    self.state = State::Done;
                    let [s3, s2, s1, s0, protocol_status, ..] = self.part;
                    return Ok(Step {
                        used: pos,
                        record: Some(Record::End {
                            app_status: u32::from_be_bytes([s3, s2, s1, s0]),
                            protocol_status,
                        }),
                    });
                }
            }
        }
    }

    /// Copy bytes of `input` into `part` until it holds `want`; returns how many were taken.
    fn gather(&mut self, input: &[u8], want: usize) -> usize {
        let have = usize::from(self.have);
        let n = input.len().min(want - have);
        self.part[have..have + n].copy_from_slice(&input[..n]);
        self.have += n as u8;
        n
    }

    /// A whole header is in `part`: judge it and move on to its content.
    fn start_record(&mut self) -> Result<(), FcgiError> {
        let [version, kind, id1, id0, len1, len0, padding, _] = self.part;
        if version != VERSION {
            return Err(fail("unsupported protocol version"));
        }
        let id = u16::from_be_bytes([id1, id0]);
        let content = u16::from_be_bytes([len1, len0]);
        if matches!(kind, STDOUT | STDERR | END_REQUEST) && id != self.request_id {
            return Err(fail("record for another request id"));
        }
        if kind == END_REQUEST && content < 8 {
            return Err(fail("END_REQUEST body too short"));
        }
        self.kind = kind;
        self.content = content;
        self.padding = padding;
        self.state = State::Content;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// STDOUT, STDERR and END_REQUEST's (app status, protocol status).
    type Decoded = (Vec<u8>, Vec<u8>, Option<(u32, u8)>);

    /// Decode `input` fed in pieces cut at `cuts`, the way a caller with a small buffer would.
    fn decode(input: &[u8], cuts: &[usize], id: u16) -> Result<Decoded, FcgiError> {
        let mut dec = Decoder::new(id);
        let (mut out, mut err, mut end) = (Vec::new(), Vec::new(), None);
        let mut buf: Vec<u8> = Vec::new();
        let mut bounds = cuts.to_vec();
        bounds.push(input.len());
        let mut from = 0;
        for to in bounds {
            buf.extend_from_slice(&input[from..to]);
            from = to;
            // Bounded: every step with a record consumes at least one byte of buf, and a step
            // without one consumes all of it.
            for _ in 0..=buf.len() {
                let step = dec.feed(&buf)?;
                assert!(step.used <= buf.len());
                match step.record {
                    None => {
                        assert_eq!(step.used, buf.len());
                        buf.clear();
                        break;
                    }
                    Some(Record::Stdout(r)) => {
                        assert!(!r.is_empty() && r.end <= step.used);
                        out.extend_from_slice(&buf[r]);
                    }
                    Some(Record::Stderr(r)) => {
                        assert!(!r.is_empty() && r.end <= step.used);
                        err.extend_from_slice(&buf[r]);
                    }
                    Some(Record::End {
                        app_status,
                        protocol_status,
                    }) => {
                        assert!(end.is_none());
                        end = Some((app_status, protocol_status));
                    }
                }
                buf.drain(..step.used);
            }
        }
        Ok((out, err, end))
    }

    fn record(kind: u8, id: u16, content: &[u8], padding: u8) -> Vec<u8> {
        let mut v = Vec::new();
        header(&mut v, kind, id, content.len() as u16, padding);
        v.extend_from_slice(content);
        v.extend(std::iter::repeat(0xAA).take(usize::from(padding)));
        v
    }

    fn end_record(id: u16, app: u32, proto: u8, padding: u8) -> Vec<u8> {
        let mut body = app.to_be_bytes().to_vec();
        body.extend_from_slice(&[proto, 0, 0, 0]);
        record(END_REQUEST, id, &body, padding)
    }

    /// A response as an application sends it: interleaved STDOUT and STDERR, padding, a
    /// management record and an empty STDOUT, then END_REQUEST.
    fn sample() -> Vec<u8> {
        let mut v = Vec::new();
        v.extend(record(STDOUT, 1, b"Content-Type: text/plain\r\n\r\n", 3));
        v.extend(record(STDERR, 1, b"warning: x\n", 0));
        v.extend(record(10, 0, b"\x0dFCGI_MAX_CONNS1", 7)); // GET_VALUES_RESULT
        v.extend(record(STDOUT, 1, b"hello ", 2));
        v.extend(record(STDOUT, 1, b"world", 0));
        v.extend(record(STDOUT, 1, b"", 0));
        v.extend(end_record(1, 7, REQUEST_COMPLETE, 5));
        v
    }

    #[test]
    fn decodes_at_every_split_point() {
        let input = sample();
        let want = (
            b"Content-Type: text/plain\r\n\r\nhello world".to_vec(),
            b"warning: x\n".to_vec(),
            Some((7, REQUEST_COMPLETE)),
        );
        assert_eq!(decode(&input, &[], 1), Ok(want.clone()));
        for k in 0..=input.len() {
            assert_eq!(decode(&input, &[k], 1), Ok(want.clone()), "cut at {k}");
        }
        // Byte by byte: the smallest buffer a caller could have.
        let cuts: Vec<usize> = (1..input.len()).collect();
        assert_eq!(decode(&input, &cuts, 1), Ok(want));
    }

    #[test]
    fn stdout_comes_out_before_the_record_is_complete() {
        let content = vec![b'x'; MAX_CONTENT];
        let input = record(STDOUT, 1, &content, 255);
        let mut dec = Decoder::new(1);
        // Only the header and 100 bytes of a 64 KiB record: 100 bytes are handed out.
        let step = dec.feed(&input[..HEADER_LEN + 100]);
        assert_eq!(
            step,
            Ok(Step {
                used: HEADER_LEN + 100,
                record: Some(Record::Stdout(HEADER_LEN..HEADER_LEN + 100)),
            })
        );
        let (out, _, end) = decode(&input, &[4096, 8192, 65000], 1).unwrap_or_default();
        assert_eq!(out.len(), MAX_CONTENT);
        assert_eq!(end, None);
    }

    #[test]
    fn end_request_stops_the_stream() {
        let mut input = end_record(1, 0, REQUEST_COMPLETE, 0);
        let mut dec = Decoder::new(1);
        let step = dec.feed(&input);
        assert!(matches!(
            step,
            Ok(Step {
                used: 16,
                record: Some(Record::End { .. })
            })
        ));
        assert!(dec.is_done());
        assert_eq!(
            dec.feed(&[]),
            Ok(Step {
                used: 0,
                record: None
            })
        );
        input.extend(record(STDOUT, 1, b"late", 0));
        assert_eq!(
            dec.feed(&input[16..]),
            Err(fail("record after END_REQUEST"))
        );
        // The error sticks.
        assert_eq!(dec.feed(&[]), Err(fail("record after END_REQUEST")));
    }

    #[test]
    fn end_request_status_and_long_body() {
        // A longer END_REQUEST body than 8 bytes: the rest is skipped.
        let mut body = 0xdead_beef_u32.to_be_bytes().to_vec();
        body.extend_from_slice(&[OVERLOADED, 0, 0, 0, 9, 9, 9]);
        let input = record(END_REQUEST, 3, &body, 1);
        for k in 0..=input.len() {
            let got = decode(&input, &[k], 3);
            assert_eq!(
                got,
                Ok((vec![], vec![], Some((0xdead_beef, OVERLOADED)))),
                "cut {k}"
            );
        }
    }

    #[test]
    fn protocol_errors() {
        let mut bad_version = record(STDOUT, 1, b"x", 0);
        bad_version[0] = 2;
        assert_eq!(
            decode(&bad_version, &[], 1),
            Err(fail("unsupported protocol version"))
        );
        let other_id = record(STDOUT, 2, b"x", 0);
        assert_eq!(
            decode(&other_id, &[], 1),
            Err(fail("record for another request id"))
        );
        let short_end = record(END_REQUEST, 1, b"1234567", 0);
        assert_eq!(
            decode(&short_end, &[], 1),
            Err(fail("END_REQUEST body too short"))
        );
        // Management records and types a responder should not send are skipped.
        let mut skipped = record(11, 0, b"\x63\0\0\0\0\0\0\0", 0); // UNKNOWN_TYPE
        skipped.extend(record(STDIN, 1, b"odd", 1));
        skipped.extend(record(99, 1, &[0; 300], 4));
        skipped.extend(record(STDOUT, 1, b"ok", 0));
        assert_eq!(decode(&skipped, &[], 1), Ok((b"ok".to_vec(), vec![], None)));
        // A truncated stream is just incomplete: the caller sees EOF before END_REQUEST.
        let input = sample();
        let got = decode(&input[..input.len() - 3], &[], 1);
        assert!(matches!(got, Ok((_, _, None))));
    }

    #[test]
    fn hostile_input_never_panics() {
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut rand = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        for _ in 0..2000 {
            // Mostly valid headers with random fields, so decoding gets past the version.
            let mut input = Vec::new();
            for _ in 0..(rand() % 6) {
                let kind = [STDOUT, STDERR, END_REQUEST, 0, 200][(rand() % 5) as usize];
                let len = (rand() % 40) as usize;
                let content: Vec<u8> = (0..len).map(|_| rand() as u8).collect();
                let mut r = record(kind, (rand() % 2) as u16, &content, (rand() % 9) as u8);
                if rand() % 10 == 0 {
                    r[0] = rand() as u8;
                }
                input.extend(r);
            }
            let whole = decode(&input, &[], 1);
            let k = (rand() as usize) % (input.len() + 1);
            let cut = decode(&input, &[k], 1);
            assert_eq!(whole, cut, "cut at {k}");
        }
    }

    type Pairs = Vec<(Vec<u8>, Vec<u8>)>;

    /// The PARAMS records of `v`: each record's content.
    fn params_records(mut v: &[u8]) -> Vec<Vec<u8>> {
        let mut records = Vec::new();
        while v.len() >= HEADER_LEN {
            assert_eq!(&v[..4], &[VERSION, PARAMS, 0, 9]);
            let len = usize::from(u16::from_be_bytes([v[4], v[5]]));
            let pad = usize::from(v[6]);
            records.push(v[HEADER_LEN..HEADER_LEN + len].to_vec());
            v = &v[HEADER_LEN + len + pad..];
        }
        assert!(v.is_empty());
        records
    }

    /// The pairs of a name-value stream, or None when it ends inside a pair (which is how
    /// PHP judges each record on its own).
    fn pairs_of(mut s: &[u8]) -> Option<Pairs> {
        fn read_len(s: &mut &[u8]) -> Option<usize> {
            let b = *s.first()?;
            if b < 0x80 {
                *s = &s[1..];
                Some(usize::from(b))
            } else {
                let n = s.get(..4)?;
                let n = u32::from_be_bytes([n[0] & 0x7f, n[1], n[2], n[3]]) as usize;
                *s = &s[4..];
                Some(n)
            }
        }
        let mut pairs = Vec::new();
        while !s.is_empty() {
            let nl = read_len(&mut s)?;
            let vl = read_len(&mut s)?;
            let name = s.get(..nl)?.to_vec();
            let value = s.get(nl..nl + vl)?.to_vec();
            pairs.push((name, value));
            s = &s[nl + vl..];
        }
        Some(pairs)
    }

    fn owned(pairs: &[(&[u8], &[u8])]) -> Pairs {
        pairs
            .iter()
            .map(|(n, v)| (n.to_vec(), v.to_vec()))
            .collect()
    }

    #[test]
    fn params_encode() {
        let long_name = vec![b'N'; 200];
        let long_value = vec![b'v'; 127];
        let longer_value = vec![b'w'; 128];
        let pairs: Vec<(&[u8], &[u8])> = vec![
            (b"SCRIPT_NAME", b"/index.php"),
            (b"EMPTY", b""),
            (&long_name, b"x"),
            (b"A", &long_value),
            (b"B", &longer_value),
        ];
        let mut out = b"prefix".to_vec();
        assert_eq!(params(&mut out, 9, pairs.iter().copied()), Ok(()));
        assert_eq!(&out[..6], b"prefix");
        let records = params_records(&out[6..]);
        // One record and the empty one that ends the stream.
        assert_eq!(records.len(), 2);
        assert!(records[1].is_empty());
        assert_eq!(pairs_of(&records[0]), Some(owned(&pairs)));
        // 1-byte lengths below 128, 4-byte ones from 128 on.
        assert_eq!(&records[0][..2], &[11, 10]);
        let at = records[0].len() - 128 - 1 - 5;
        assert_eq!(&records[0][at..at + 5], &[1, 0x80, 0, 0, 128]);

        // No pairs: just the end of the stream.
        let mut out = Vec::new();
        assert_eq!(params(&mut out, 9, std::iter::empty()), Ok(()));
        assert_eq!(out, [VERSION, PARAMS, 0, 9, 0, 0, 0, 0]);
    }

    #[test]
    fn params_split_at_pair_boundaries_unless_a_pair_is_too_big() {
        // 40 pairs of 3 KB: more than one record, and each record holds whole pairs.
        let value = vec![b'v'; 3000];
        let names: Vec<String> = (0..40).map(|i| format!("HTTP_X_{i}")).collect();
        let pairs: Vec<(&[u8], &[u8])> = names.iter().map(|n| (n.as_bytes(), &value[..])).collect();
        let mut out = Vec::new();
        assert_eq!(params(&mut out, 9, pairs.iter().copied()), Ok(()));
        let records = params_records(&out);
        assert!(records.len() >= 3, "{} records", records.len());
        assert_eq!(records.last().map(Vec::len), Some(0));
        let mut got = Vec::new();
        for r in &records {
            assert!(r.len() <= MAX_CONTENT);
            got.extend(pairs_of(r).unwrap_or_else(|| panic!("record of {} cuts a pair", r.len())));
        }
        assert_eq!(got, owned(&pairs));
        // Records are filled: the next pair would not have fitted.
        assert!(records[0].len() + 3014 > MAX_CONTENT);

        // A pair bigger than a record spans records, and the stream reads back whole.
        let huge = vec![b'h'; 150_000];
        let pairs: Vec<(&[u8], &[u8])> = vec![(b"A", b"1"), (b"HUGE", &huge), (b"Z", b"2")];
        let mut out = Vec::new();
        assert_eq!(params(&mut out, 9, pairs.iter().copied()), Ok(()));
        let records = params_records(&out);
        let (last, full) = records.split_last().unwrap_or_else(|| panic!("no records"));
        assert!(last.is_empty() && full.len() >= 3);
        assert!(full.iter().all(|r| !r.is_empty() && r.len() <= MAX_CONTENT));
        assert_eq!(pairs_of(&records.concat()), Some(owned(&pairs)));
    }

    #[test]
    fn begin_stdin_abort() {
        let mut out = Vec::new();
        begin_request(&mut out, 1, Role::Responder, false);
        assert_eq!(
            out,
            [1, BEGIN_REQUEST, 0, 1, 0, 8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0]
        );
        out.clear();
        begin_request(&mut out, 0x0102, Role::Authorizer, true);
        assert_eq!(
            out,
            [1, BEGIN_REQUEST, 1, 2, 0, 8, 0, 0, 0, 2, 1, 0, 0, 0, 0, 0]
        );
        out.clear();
        abort_request(&mut out, 1);
        assert_eq!(out, [1, ABORT_REQUEST, 0, 1, 0, 0, 0, 0]);

        out.clear();
        stdin(&mut out, 1, b"");
        assert_eq!(out, [1, STDIN, 0, 1, 0, 0, 0, 0]);
        out.clear();
        stdin(&mut out, 1, b"abc");
        assert_eq!(out, [1, STDIN, 0, 1, 0, 3, 0, 0, b'a', b'b', b'c']);
        // 150,000 bytes: records of 65535, 65535 and 18930, and no end record.
        let body: Vec<u8> = (0..150_000u32).map(|i| i as u8).collect();
        out.clear();
        stdin(&mut out, 1, &body);
        let mut v = &out[..];
        let mut back = Vec::new();
        let mut sizes = Vec::new();
        while !v.is_empty() {
            assert_eq!(&v[..4], &[1, STDIN, 0, 1]);
            let len = usize::from(u16::from_be_bytes([v[4], v[5]]));
            sizes.push(len);
            back.extend_from_slice(&v[8..8 + len]);
            v = &v[8 + len..];
        }
        assert_eq!(sizes, [65535, 65535, 18930]);
        assert_eq!(back, body);
    }
}
