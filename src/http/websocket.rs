//! The server side of WebSocket (RFC 6455) as mod_wstunnel speaks it: the opening handshake
//! checked from the request's fields, an incremental decoder for the client's frames, and
//! encoders for the server's.
//!
//! mod_wstunnel does not relay frames: it unwraps the client's data frames into a plain byte
//! stream for the backend, and wraps what the backend sends into frames of one type (text by
//! default, binary with `wstunnel.frame-type = "binary"` or when the client asks for the
//! "binary" subprotocol). So the decoder hands out data payload as ranges of the caller's
//! buffer, unmasked in place, as it arrives, without reassembling messages; only control
//! frames (at most 125 bytes) are collected, in a fixed buffer inside the decoder, because
//! they are acted on whole (a ping is answered with its payload, a close ends the tunnel).
//!
//! Text payload is not checked for UTF-8: it goes to the backend as bytes, unreassembled, as
//! lighttpd sends it. A close frame's reason is checked, being small and whole.

use std::fmt;
use std::ops::Range;

use sha1::{Digest, Sha1};

/// The GUID the handshake appends to the client's key (RFC 6455 §1.3).
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Close codes (RFC 6455 §7.4.1) lightd sends.
pub const CLOSE_NORMAL: u16 = 1000;
/// The server is going away: shutdown, reload deadline, idle timeout.
pub const CLOSE_GOING_AWAY: u16 = 1001;
pub const CLOSE_PROTOCOL_ERROR: u16 = 1002;
pub const CLOSE_INVALID_DATA: u16 = 1007;
pub const CLOSE_TOO_BIG: u16 = 1009;
/// The backend failed.
pub const CLOSE_INTERNAL_ERROR: u16 = 1011;

/// The largest control frame payload (RFC 6455 §5.5).
pub const MAX_CONTROL: usize = 125;

// ---------------------------------------------------------------------------------------------
// The opening handshake (RFC 6455 §4.2).

/// The request fields the handshake looks at, as the request parser gives them (trimmed
/// values; None when absent).
#[derive(Debug, Clone, Copy, Default)]
pub struct UpgradeFields<'a> {
    pub upgrade: Option<&'a [u8]>,
    pub connection: Option<&'a [u8]>,
    pub key: Option<&'a [u8]>,
    pub version: Option<&'a [u8]>,
    pub origin: Option<&'a [u8]>,
    /// Sec-WebSocket-Protocol.
    pub protocol: Option<&'a [u8]>,
}

/// A handshake to accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handshake {
    /// The Sec-WebSocket-Accept value (base64 of a SHA-1: always 28 bytes).
    pub accept: [u8; 28],
    /// The subprotocol to name in Sec-WebSocket-Protocol, as lighttpd answers: "binary" when
    /// the client offers it (and then frames are binary), else "base64" when offered.
    pub subprotocol: Option<&'static str>,
}

impl Handshake {
    /// Whether the client asked for binary frames through the subprotocol.
    pub fn binary(&self) -> bool {
        self.subprotocol == Some("binary")
    }
}

/// Why a handshake is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeError {
    /// No `Upgrade: websocket` with `Connection: upgrade`: not a WebSocket request at all,
    /// and mod_wstunnel leaves it to other handlers.
    NotWebSocket,
    /// Sec-WebSocket-Key missing or not the base64 of 16 bytes: 400.
    BadKey,
    /// Sec-WebSocket-Version missing or not 13: 400, and the answer carries
    /// `Sec-WebSocket-Version: 13` (RFC 6455 §4.4).
    BadVersion,
    /// `wstunnel.origins` is set and the request has no Origin: 400.
    MissingOrigin,
    /// The Origin matches none of `wstunnel.origins`: 403.
    OriginNotAllowed,
}

impl HandshakeError {
    pub fn status(&self) -> u16 {
        match self {
            HandshakeError::OriginNotAllowed => 403,
            _ => 400,
        }
    }

    pub fn reason(&self) -> &'static str {
        match self {
            HandshakeError::NotWebSocket => "not a WebSocket upgrade",
            HandshakeError::BadKey => "invalid Sec-WebSocket-Key",
            HandshakeError::BadVersion => "unsupported Sec-WebSocket-Version",
            HandshakeError::MissingOrigin => "no Origin",
            HandshakeError::OriginNotAllowed => "Origin not allowed",
        }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

/// Whether the fields ask for a WebSocket: Upgrade lists "websocket" and Connection lists
/// "upgrade" (case-insensitive list elements). The method (GET) and version (HTTP/1.1) are
/// the caller's to check.
pub fn is_upgrade(f: &UpgradeFields) -> bool {
    f.upgrade.is_some_and(|v| lists(v, b"websocket"))
        && f.connection.is_some_and(|v| lists(v, b"upgrade"))
}

/// Check a WebSocket upgrade request and compute the answer's fields. `allowed_origins` is
/// `wstunnel.origins`: when not empty, the Origin must be one of them or a subdomain of one
/// (a suffix after a '.'), compared as sent, as lighttpd compares it.
pub fn handshake(
    f: &UpgradeFields,
    allowed_origins: &[String],
) -> Result<Handshake, HandshakeError> {
    if !is_upgrade(f) {
        return Err(HandshakeError::NotWebSocket);
    }
    // lighttpd checks the origin first, then the version, then the key.
    if !allowed_origins.is_empty() {
        let origin = f.origin.unwrap_or_default();
        if origin.is_empty() {
            return Err(HandshakeError::MissingOrigin);
        }
        if !allowed_origins
            .iter()
            .any(|a| origin_matches(origin, a.as_bytes()))
        {
            return Err(HandshakeError::OriginNotAllowed);
        }
    }
    if f.version != Some(&b"13"[..]) {
        return Err(HandshakeError::BadVersion);
    }
    let key = f.key.unwrap_or_default();
    if !valid_key(key) {
        return Err(HandshakeError::BadKey);
    }
    let subprotocol = match f.protocol {
        Some(p) if lists(p, b"binary") => Some("binary"),
        Some(p) if lists(p, b"base64") => Some("base64"),
        _ => None,
    };
    Ok(Handshake {
        accept: accept_key(key),
        subprotocol,
    })
}

/// Sec-WebSocket-Accept for `key`: base64(SHA-1(key + GUID)).
pub fn accept_key(key: &[u8]) -> [u8; 28] {
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(GUID);
    let digest = sha.finalize();
    let mut out = [0u8; 28];
    super::base64::encode_into(&digest, &mut out);
    out
}

/// Whether a comma-separated list has `token` as an element (ignoring case and any
/// ";parameters").
fn lists(value: &[u8], token: &[u8]) -> bool {
    value.split(|&b| b == b',').any(|e| {
        let e = e.split(|&b| b == b';').next().unwrap_or_default();
        super::request::trim_ows(e).eq_ignore_ascii_case(token)
    })
}

fn origin_matches(origin: &[u8], allowed: &[u8]) -> bool {
    match origin.len().checked_sub(allowed.len()) {
        Some(0) => origin == allowed,
        Some(n) => origin.ends_with(allowed) && origin[n - 1] == b'.',
        None => false,
    }
}

use super::base64::ALPHABET as BASE64;

/// The key is base64 of 16 bytes (RFC 6455 §4.1): 22 characters and "==".
fn valid_key(key: &[u8]) -> bool {
    key.len() == 24 && key[..22].iter().all(|b| BASE64.contains(b)) && &key[22..] == b"=="
}

// ---------------------------------------------------------------------------------------------
// Frames (RFC 6455 §5).

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opcode {
    Continuation = 0,
    Text = 1,
    Binary = 2,
    Close = 8,
    Ping = 9,
    Pong = 10,
}

/// A frame to be closed with this code, for the reason given (for the log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WsError {
    /// The close code to send the client.
    pub code: u16,
    pub reason: &'static str,
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebSocket error {}: {}", self.code, self.reason)
    }
}

const fn protocol_error(reason: &'static str) -> WsError {
    WsError {
        code: CLOSE_PROTOCOL_ERROR,
        reason,
    }
}

/// What the client sent, as the decoder reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    /// Payload of a data frame at this range of the input, already unmasked. A frame's
    /// payload may come in several pieces, each reported as it arrives; an empty frame is
    /// reported once, with an empty range. `binary` is the message's type (from its first
    /// frame); `fin` is set on the last piece of the message.
    Data {
        range: Range<usize>,
        binary: bool,
        fin: bool,
    },
    /// A ping, whole: answer with a pong carrying [`FrameDecoder::control_payload`].
    Ping,
    /// A pong, whole.
    Pong,
    /// A close frame, whole: the code it carries, if any (its reason is
    /// `control_payload()[2..]`). Nothing may follow it.
    Close { code: Option<u16> },
}

/// One call's result: `used` bytes of the input are dealt with. With no frame, that is all of
/// the input; with one, the bytes up to and including the frame's range.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    pub used: usize,
    pub frame: Option<Frame>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Header,
    Payload,
    Closed,
    Failed(WsError),
}

/// Incremental decoder of a client's frames.
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    max_message: u64,
    state: State,
    /// The frame header as far as it has arrived, and how long it is (known after 2 bytes).
    head: [u8; 14],
    have: u8,
    need: u8,
    opcode: u8,
    fin: bool,
    mask: [u8; 4],
    /// Payload bytes of the current frame already unmasked (only its position mod 4 matters).
    mask_off: u8,
    remaining: u64,
    /// Inside a fragmented message: whether it is binary.
    message: Option<bool>,
    message_len: u64,
    control: [u8; MAX_CONTROL],
    control_len: u8,
}

impl FrameDecoder {
    /// A decoder that refuses messages (the sum of their frames) longer than `max_message`
    /// bytes, with close code 1009.
    pub fn new(max_message: u64) -> FrameDecoder {
        FrameDecoder {
            max_message,
            state: State::Header,
            head: [0; 14],
            have: 0,
            need: 2,
            opcode: 0,
            fin: false,
            mask: [0; 4],
            mask_off: 0,
            remaining: 0,
            message: None,
            message_len: 0,
            control: [0; MAX_CONTROL],
            control_len: 0,
        }
    }

    /// The payload of the last Ping, Pong or Close reported.
    pub fn control_payload(&self) -> &[u8] {
        &self.control[..usize::from(self.control_len)]
    }

    /// Whether a close frame has been read.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Decode from the start of `input`, unmasking data payload in place: see [`Step`]. The
    /// caller passes the data on, drops `used` bytes, and calls again with what is left and
    /// what arrives next.
    ///
    /// After a close frame any further byte is an error; an empty input is fine. After an
    /// error every call returns it again.
    pub fn feed(&mut self, input: &mut [u8]) -> Result<Step, WsError> {
        let r = self.run(input);
        if let Err(e) = r {
            self.state = State::Failed(e);
        }
        r
    }

    fn run(&mut self, input: &mut [u8]) -> Result<Step, WsError> {
        let mut pos = 0;
        let none = |used| Ok(Step { used, frame: None });
        // Every turn consumes at least one byte, or moves from a complete header to its
        // payload, or returns.
        loop {
            let avail = input.len() - pos;
            match self.state {
                State::Failed(e) => return Err(e),
                State::Closed if avail > 0 => return Err(protocol_error("data after close")),
                State::Closed => return none(pos),
                State::Header if avail == 0 => return none(pos),
                State::Header => {
                    let have = usize::from(self.have);
                    let n = avail.min(usize::from(self.need) - have);
                    self.head[have..have + n].copy_from_slice(&input[pos..pos + n]);
                    self.have += n as u8;
                    pos += n;
                    if self.have == 2 && self.need == 2 {
                        self.need = self.first_two()?;
                    }
                    if self.have == self.need && self.need > 2 {
                        self.header_done()?;
                    }
                }
                State::Payload if self.opcode >= 8 => {
                    if self.remaining > 0 && avail == 0 {
                        return none(pos);
                    }
                    // remaining <= 125 for a control frame.
                    let n = avail.min(self.remaining as usize);
                    let at = usize::from(self.control_len);
                    let dst = &mut self.control[at..at + n];
                    dst.copy_from_slice(&input[pos..pos + n]);
                    self.mask_off = unmask(dst, self.mask, self.mask_off);
                    self.control_len += n as u8;
                    self.remaining -= n as u64;
                    pos += n;
                    if self.remaining == 0 {
                        let frame = self.control_done()?;
                        return Ok(Step {
                            used: pos,
                            frame: Some(frame),
                        });
                    }
                }
                State::Payload => {
                    if self.remaining > 0 && avail == 0 {
                        return none(pos);
                    }
                    let n = usize::try_from(self.remaining).map_or(avail, |r| r.min(avail));
                    let range = pos..pos + n;
                    self.mask_off = unmask(&mut input[range.clone()], self.mask, self.mask_off);
                    self.remaining -= n as u64;
                    pos += n;
                    let binary = self.message.unwrap_or(false);
                    let fin = self.fin && self.remaining == 0;
                    if self.remaining == 0 {
                        self.next_frame();
                        if fin {
                            self.message = None;
                            self.message_len = 0;
                        }
                    }
                    return Ok(Step {
                        used: pos,
                        frame: Some(Frame::Data { range, binary, fin }),
                    });
                }
            }
        }
    }

    /// Judge the first two bytes; returns the header's full length.
    fn first_two(&mut self) -> Result<u8, WsError> {
        let [b0, b1, ..] = self.head;
        self.fin = b0 & 0x80 != 0;
        self.opcode = b0 & 0x0f;
        if b0 & 0x70 != 0 {
            // No extension is ever negotiated, so no reserved bit may be set.
            return Err(protocol_error("reserved bits set"));
        }
        match self.opcode {
            0 if self.message.is_none() => {
                return Err(protocol_error("continuation frame without a message"))
            }
            1 | 2 if self.message.is_some() => {
                return Err(protocol_error("new message inside a fragmented one"))
            }
            0..=2 => {}
            8..=10 if !self.fin => return Err(protocol_error("fragmented control frame")),
            8..=10 => {}
            _ => return Err(protocol_error("unknown opcode")),
        }
        if b1 & 0x80 == 0 {
            return Err(protocol_error("client frame not masked"));
        }
        let len7 = b1 & 0x7f;
        if self.opcode >= 8 && usize::from(len7) > MAX_CONTROL {
            return Err(protocol_error("control frame longer than 125 bytes"));
        }
        if self.opcode == 8 && len7 == 1 {
            return Err(protocol_error("close frame with a 1-byte payload"));
        }
        Ok(match len7 {
            126 => 2 + 2 + 4,
            127 => 2 + 8 + 4,
            _ => 2 + 4,
        })
    }

    /// The whole header is in: read the length and mask, and start the payload.
    fn header_done(&mut self) -> Result<(), WsError> {
        let h = self.head;
        let len7 = h[1] & 0x7f;
        let (len, mask_at) = match len7 {
            126 => (u64::from(u16::from_be_bytes([h[2], h[3]])), 4),
            127 => {
                let len = u64::from_be_bytes([h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9]]);
                if len >> 63 != 0 {
                    return Err(protocol_error("frame length with the top bit set"));
                }
                (len, 10)
            }
            n => (u64::from(n), 2),
        };
        self.mask = [h[mask_at], h[mask_at + 1], h[mask_at + 2], h[mask_at + 3]];
        self.mask_off = 0;
        self.remaining = len;
        if self.opcode < 8 {
            if self.opcode != 0 {
                self.message = Some(self.opcode == 2);
                self.message_len = 0;
            }
            if len > self.max_message.saturating_sub(self.message_len) {
                return Err(WsError {
                    code: CLOSE_TOO_BIG,
                    reason: "message too big",
                });
            }
            self.message_len += len;
        } else {
            self.control_len = 0;
        }
        self.state = State::Payload;
        Ok(())
    }

    /// A control frame's payload is complete.
    fn control_done(&mut self) -> Result<Frame, WsError> {
        let frame = match self.opcode {
            9 => Frame::Ping,
            10 => Frame::Pong,
            _ => {
                let code = match *self.control_payload() {
                    [] => None,
                    [hi, lo, ..] => Some(u16::from_be_bytes([hi, lo])),
                    // A 1-byte close payload was refused with the header.
                    [_] => return Err(protocol_error("close frame with a 1-byte payload")),
                };
                if let Some(c) = code {
                    // §7.4: codes a peer may send; 1005, 1006 and 1015 never go on the wire.
                    if !matches!(c, 1000..=1003 | 1007..=1014 | 3000..=4999) {
                        return Err(protocol_error("invalid close code"));
                    }
                }
                if std::str::from_utf8(self.control_payload().get(2..).unwrap_or_default()).is_err()
                {
                    return Err(WsError {
                        code: CLOSE_INVALID_DATA,
                        reason: "close reason not UTF-8",
                    });
                }
                self.state = State::Closed;
                return Ok(Frame::Close { code });
            }
        };
        self.next_frame();
        Ok(frame)
    }

    fn next_frame(&mut self) {
        self.state = State::Header;
        self.have = 0;
        self.need = 2;
    }
}

/// XOR `data` with the mask, starting `off` bytes into it; returns the offset after `data`.
fn unmask(data: &mut [u8], mask: [u8; 4], off: u8) -> u8 {
    // Rotate the mask so that it starts at `off`, then work a word at a time: this runs over
    // every byte a client sends.
    let mut rot = [0u8; 4];
    for (i, r) in rot.iter_mut().enumerate() {
        *r = mask[(usize::from(off) + i) & 3];
    }
    let word = u32::from_ne_bytes(rot);
    let mut chunks = data.chunks_exact_mut(4);
    for c in &mut chunks {
        let v = u32::from_ne_bytes([c[0], c[1], c[2], c[3]]) ^ word;
        c.copy_from_slice(&v.to_ne_bytes());
    }
    for (i, b) in chunks.into_remainder().iter_mut().enumerate() {
        *b ^= rot[i];
    }
    ((usize::from(off) + data.len()) & 3) as u8
}

// ---------------------------------------------------------------------------------------------
// Server frames: never masked (§5.1), never fragmented by these encoders.

/// Append a frame header for a payload of `len` bytes, for a caller that writes the payload
/// itself (a backend read passed on as one frame).
pub fn frame_header(out: &mut Vec<u8>, opcode: Opcode, fin: bool, len: u64) {
    out.push(u8::from(fin) << 7 | opcode as u8);
    if len < 126 {
        out.push(len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        out.push(126);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&len.to_be_bytes());
    }
}

/// Append a whole frame. A control frame's payload is cut to 125 bytes, the most it may carry.
pub fn frame(out: &mut Vec<u8>, opcode: Opcode, payload: &[u8]) {
    let payload = match opcode {
        Opcode::Close | Opcode::Ping | Opcode::Pong => {
            payload.get(..MAX_CONTROL).unwrap_or(payload)
        }
        _ => payload,
    };
    frame_header(out, opcode, true, payload.len() as u64);
    out.extend_from_slice(payload);
}

/// Append a close frame with `code` and `reason`, the reason cut to fit (123 bytes) at a
/// character boundary.
pub fn close_frame(out: &mut Vec<u8>, code: u16, reason: &str) {
    let mut end = reason.len().min(MAX_CONTROL - 2);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    let reason = &reason.as_bytes()[..end];
    frame_header(out, Opcode::Close, true, 2 + reason.len() as u64);
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(reason);
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"dGhlIHNhbXBsZSBub25jZQ==";

    fn fields() -> UpgradeFields<'static> {
        UpgradeFields {
            upgrade: Some(b"websocket"),
            connection: Some(b"Upgrade"),
            key: Some(KEY),
            version: Some(b"13"),
            origin: Some(b"http://example.com"),
            protocol: None,
        }
    }

    #[test]
    fn accept_key_matches_the_rfc_example() {
        // RFC 6455 §1.3.
        assert_eq!(&accept_key(KEY), b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
        let hs = handshake(&fields(), &[]);
        assert_eq!(hs.map(|h| h.accept), Ok(*b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo="));
    }

    #[test]
    fn handshake_checks() {
        type Edit = fn(&mut UpgradeFields<'static>);
        type Want = Result<Option<&'static str>, HandshakeError>;
        let none: &[String] = &[];
        let origins = ["example.com".to_string(), "http://trusted.org".to_string()];
        #[rustfmt::skip]
        let cases: &[(Edit, &[String], Want)] = &[
            (|_| {}, none, Ok(None)),
            (|f| f.upgrade = Some(b"WebSocket"), none, Ok(None)),
            (|f| f.upgrade = Some(b"h2c, websocket"), none, Ok(None)),
            (|f| f.connection = Some(b"keep-alive, Upgrade"), none, Ok(None)),
            (|f| f.upgrade = None, none, Err(HandshakeError::NotWebSocket)),
            (|f| f.upgrade = Some(b"h2c"), none, Err(HandshakeError::NotWebSocket)),
            (|f| f.upgrade = Some(b"websockets"), none, Err(HandshakeError::NotWebSocket)),
            (|f| f.connection = Some(b"keep-alive"), none, Err(HandshakeError::NotWebSocket)),
            (|f| f.connection = None, none, Err(HandshakeError::NotWebSocket)),
            (|f| f.version = Some(b"8"), none, Err(HandshakeError::BadVersion)),
            (|f| f.version = Some(b"13, 8"), none, Err(HandshakeError::BadVersion)),
            (|f| f.version = None, none, Err(HandshakeError::BadVersion)),
            (|f| f.key = None, none, Err(HandshakeError::BadKey)),
            (|f| f.key = Some(b"short=="), none, Err(HandshakeError::BadKey)),
            (|f| f.key = Some(b"dGhlIHNhbXBsZSBub25jZQ="), none, Err(HandshakeError::BadKey)),
            (|f| f.key = Some(b"dGhlIHNhbXBsZSBub25jZQ=x"), none, Err(HandshakeError::BadKey)),
            (|f| f.key = Some(b"dGhlIHNhbXBsZSBub25j*Q=="), none, Err(HandshakeError::BadKey)),
            (|f| f.protocol = Some(b"chat, binary"), none, Ok(Some("binary"))),
            (|f| f.protocol = Some(b"base64"), none, Ok(Some("base64"))),
            (|f| f.protocol = Some(b"base64, binary"), none, Ok(Some("binary"))),
            (|f| f.protocol = Some(b"chat"), none, Ok(None)),
            // Origins: exact, or a subdomain; missing is 400, a mismatch 403.
            (|f| f.origin = Some(b"example.com"), &origins, Ok(None)),
            (|f| f.origin = Some(b"http://www.example.com"), &origins, Ok(None)),
            (|f| f.origin = Some(b"http://trusted.org"), &origins, Ok(None)),
            (|f| f.origin = Some(b"http://badexample.com"), &origins, Err(HandshakeError::OriginNotAllowed)),
            (|f| f.origin = Some(b"http://example.com.evil"), &origins, Err(HandshakeError::OriginNotAllowed)),
            (|f| f.origin = Some(b"https://trusted.org"), &origins, Err(HandshakeError::OriginNotAllowed)),
            (|f| f.origin = Some(b"com"), &origins, Err(HandshakeError::OriginNotAllowed)),
            (|f| f.origin = None, &origins, Err(HandshakeError::MissingOrigin)),
            (|f| f.origin = Some(b""), &origins, Err(HandshakeError::MissingOrigin)),
            (|f| f.origin = None, none, Ok(None)),
        ];
        for (i, (edit, allowed, want)) in cases.iter().enumerate() {
            let mut f = fields();
            edit(&mut f);
            let got = handshake(&f, allowed).map(|h| h.subprotocol);
            assert_eq!(&got, want, "case {i}");
            if let Ok(sub) = got {
                assert_eq!(
                    handshake(&f, allowed).map(|h| h.binary()),
                    Ok(sub == Some("binary"))
                );
            }
        }
        assert_eq!(HandshakeError::OriginNotAllowed.status(), 403);
        assert_eq!(HandshakeError::BadVersion.status(), 400);
    }

    /// A client frame: masked with `mask`, with the shortest length encoding unless `long`.
    fn client_frame(b0: u8, payload: &[u8], mask: [u8; 4], long: bool) -> Vec<u8> {
        let mut v = Vec::new();
        let len = payload.len();
        if long {
            v.extend_from_slice(&[b0, 0x80 | 127]);
            v.extend_from_slice(&(len as u64).to_be_bytes());
        } else if len < 126 {
            v.extend_from_slice(&[b0, 0x80 | len as u8]);
        } else if len <= 0xffff {
            v.extend_from_slice(&[b0, 0x80 | 126]);
            v.extend_from_slice(&(len as u16).to_be_bytes());
        } else {
            v.extend_from_slice(&[b0, 0x80 | 127]);
            v.extend_from_slice(&(len as u64).to_be_bytes());
        }
        v.extend_from_slice(&mask);
        v.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        v
    }

    /// What a decoder made of a stream: one line per message or control frame.
    fn decode(input: &[u8], cuts: &[usize], max: u64) -> (Vec<String>, Option<WsError>) {
        let mut dec = FrameDecoder::new(max);
        let mut events = Vec::new();
        let mut data = Vec::new();
        let mut buf: Vec<u8> = Vec::new();
        let mut bounds = cuts.to_vec();
        bounds.push(input.len());
        let mut from = 0;
        for to in bounds {
            buf.extend_from_slice(&input[from..to]);
            from = to;
            // Bounded: a step with a frame consumes at least one byte, except an empty data
            // frame's, whose header (6 bytes or more) was consumed by the same step.
            for _ in 0..=buf.len() {
                let step = match dec.feed(&mut buf) {
                    Ok(s) => s,
                    Err(e) => return (events, Some(e)),
                };
                assert!(step.used <= buf.len());
                match step.frame {
                    None => {
                        assert_eq!(step.used, buf.len());
                        buf.clear();
                        break;
                    }
                    Some(Frame::Data { range, binary, fin }) => {
                        assert!(range.end <= step.used && step.used > 0);
                        data.extend_from_slice(&buf[range]);
                        if fin {
                            let kind = if binary { "binary" } else { "text" };
                            events.push(format!("{kind} {}", String::from_utf8_lossy(&data)));
                            data.clear();
                        }
                    }
                    Some(f) => {
                        let p = String::from_utf8_lossy(dec.control_payload()).into_owned();
                        events.push(format!("{f:?} {p:?}"));
                    }
                }
                buf.drain(..step.used);
            }
        }
        (events, None)
    }

    const M: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

    fn sample() -> Vec<u8> {
        let mut v = Vec::new();
        // RFC 6455 §5.7: a masked "Hello".
        v.extend_from_slice(&[
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ]);
        // A fragmented binary message with a ping between its fragments.
        v.extend(client_frame(0x02, b"frag", M, false));
        v.extend(client_frame(0x89, b"are you there", [1, 2, 3, 4], false));
        v.extend(client_frame(0x00, b"ment", [9, 9, 9, 9], false));
        v.extend(client_frame(0x80, b"ed", [0, 0, 0, 0], false));
        // Lengths in 16 and (needlessly) 64 bits, an empty frame, a pong.
        v.extend(client_frame(0x81, &[b'a'; 300], M, false));
        v.extend(client_frame(0x81, b"long form", M, true));
        v.extend(client_frame(0x81, b"", M, false));
        v.extend(client_frame(0x8a, b"", M, false));
        v.extend(client_frame(0x88, b"\x03\xe8bye", M, false));
        v
    }

    fn sample_events() -> Vec<String> {
        vec![
            "text Hello".to_string(),
            "Ping \"are you there\"".to_string(),
            "binary fragmented".to_string(),
            format!("text {}", "a".repeat(300)),
            "text long form".to_string(),
            "text ".to_string(),
            "Pong \"\"".to_string(),
            "Close { code: Some(1000) } \"\\u{3}\u{e8}bye\"".replace("\u{e8}", "\u{fffd}"),
        ]
    }

    #[test]
    fn decodes_at_every_split_point() {
        let input = sample();
        let want = (sample_events(), None);
        assert_eq!(decode(&input, &[], 1 << 20), want);
        for k in 0..=input.len() {
            assert_eq!(decode(&input, &[k], 1 << 20), want, "cut at {k}");
        }
        let cuts: Vec<usize> = (1..input.len()).collect();
        assert_eq!(decode(&input, &cuts, 1 << 20), want);
    }

    #[test]
    fn close_payload_and_what_follows() {
        let mut dec = FrameDecoder::new(100);
        let mut input = client_frame(0x88, b"\x03\xe9going", M, false);
        let n = input.len();
        let step = dec.feed(&mut input);
        assert_eq!(
            step,
            Ok(Step {
                used: n,
                frame: Some(Frame::Close { code: Some(1001) })
            })
        );
        assert_eq!(dec.control_payload(), b"\x03\xe9going");
        assert!(dec.is_closed());
        assert_eq!(
            dec.feed(&mut []),
            Ok(Step {
                used: 0,
                frame: None
            })
        );
        let mut more = client_frame(0x81, b"x", M, false);
        assert_eq!(
            dec.feed(&mut more).map(|s| s.used),
            Err(protocol_error("data after close"))
        );
    }

    #[test]
    fn protocol_errors() {
        let e = |code, reason| Some(WsError { code, reason });
        let p = |reason| e(CLOSE_PROTOCOL_ERROR, reason);
        let mut unmasked = client_frame(0x81, b"hi", M, false);
        unmasked[1] &= 0x7f;
        let mut top_bit = client_frame(0x82, b"x", M, true);
        top_bit[2] = 0x80;
        #[rustfmt::skip]
        let cases: Vec<(Vec<u8>, Option<WsError>)> = vec![
            (unmasked, p("client frame not masked")),
            (top_bit, p("frame length with the top bit set")),
            (client_frame(0xc1, b"x", M, false), p("reserved bits set")),
            (client_frame(0xa1, b"x", M, false), p("reserved bits set")),
            (client_frame(0x83, b"x", M, false), p("unknown opcode")),
            (client_frame(0x8b, b"x", M, false), p("unknown opcode")),
            (client_frame(0x80, b"x", M, false), p("continuation frame without a message")),
            ([client_frame(0x01, b"a", M, false), client_frame(0x81, b"b", M, false)].concat(),
             p("new message inside a fragmented one")),
            ([client_frame(0x81, b"a", M, false), client_frame(0x00, b"b", M, false)].concat(),
             p("continuation frame without a message")),
            (client_frame(0x09, b"x", M, false), p("fragmented control frame")),
            (client_frame(0x89, &[0; 126], M, false), p("control frame longer than 125 bytes")),
            (client_frame(0x8a, b"", M, true), p("control frame longer than 125 bytes")),
            (client_frame(0x88, b"\x03", M, false), p("close frame with a 1-byte payload")),
            (client_frame(0x88, b"\x03\xed", M, false), p("invalid close code")),
            (client_frame(0x88, b"\x03\xee", M, false), p("invalid close code")),
            (client_frame(0x88, b"\x00\x00", M, false), p("invalid close code")),
            (client_frame(0x88, b"\x13\x88", M, false), p("invalid close code")),
            (client_frame(0x88, b"\x03\xe8\xff", M, false), e(CLOSE_INVALID_DATA, "close reason not UTF-8")),
            (client_frame(0x81, &[b'x'; 101], M, false), e(CLOSE_TOO_BIG, "message too big")),
            ([client_frame(0x01, &[b'x'; 60], M, false), client_frame(0x80, &[b'x'; 41], M, false)].concat(),
             e(CLOSE_TOO_BIG, "message too big")),
        ];
        for (i, (input, want)) in cases.iter().enumerate() {
            for k in 0..=input.len() {
                let (_, got) = decode(input, &[k], 100);
                assert_eq!(&got, want, "case {i} cut at {k}");
            }
        }
        // Exactly at the limit is fine, and the count starts again with each message.
        let ok = [
            client_frame(0x01, &[b'x'; 60], M, false),
            client_frame(0x80, &[b'x'; 40], M, false),
            client_frame(0x82, &[b'y'; 100], M, false),
        ]
        .concat();
        let (events, err) = decode(&ok, &[], 100);
        assert_eq!((events.len(), err), (2, None));
    }

    #[test]
    fn errors_stick() {
        let mut dec = FrameDecoder::new(100);
        let mut bad = client_frame(0x83, b"x", M, false);
        let first = dec.feed(&mut bad);
        assert!(first.is_err());
        assert_eq!(dec.feed(&mut []).map(|s| s.used), first.map(|s| s.used));
    }

    #[test]
    fn data_is_handed_out_as_it_arrives() {
        let payload = vec![b'z'; 100_000];
        let input = client_frame(0x82, &payload, M, false);
        let mut dec = FrameDecoder::new(u64::MAX);
        // Header (2 + 8 + 4 bytes) and 10 payload bytes: those 10 come out, unmasked.
        let mut part = input[..24].to_vec();
        let step = dec.feed(&mut part);
        assert_eq!(
            step,
            Ok(Step {
                used: 24,
                frame: Some(Frame::Data {
                    range: 14..24,
                    binary: true,
                    fin: false
                })
            })
        );
        assert_eq!(&part[14..24], &payload[..10]);
    }

    #[test]
    fn unmask_matches_bytewise_at_every_offset() {
        let data: Vec<u8> = (0..=255u8).collect();
        for off in 0..4u8 {
            for len in [0, 1, 3, 4, 5, 17, 256] {
                let mut fast = data[..len].to_vec();
                let end = unmask(&mut fast, M, off);
                let slow: Vec<u8> = data[..len]
                    .iter()
                    .enumerate()
                    .map(|(i, b)| b ^ M[(usize::from(off) + i) % 4])
                    .collect();
                assert_eq!(fast, slow, "off {off} len {len}");
                assert_eq!(usize::from(end), (usize::from(off) + len) % 4);
            }
        }
    }

    #[test]
    fn hostile_input_never_panics_and_splits_agree() {
        let mut state: u64 = 0x1234_5678_9abc_def1;
        let mut rand = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        const B0: &[u8] = &[
            0x81, 0x82, 0x01, 0x02, 0x00, 0x80, 0x88, 0x89, 0x8a, 0x09, 0xc1, 0x8f,
        ];
        for _ in 0..2000 {
            let mut input = Vec::new();
            for _ in 0..(rand() % 5) {
                let b0 = B0[(rand() % B0.len() as u64) as usize];
                let len = (rand() % 140) as usize;
                let payload: Vec<u8> = (0..len).map(|_| rand() as u8).collect();
                let mut f =
                    client_frame(b0, &payload, (rand() as u32).to_ne_bytes(), rand() % 4 == 0);
                if rand() % 8 == 0 {
                    let i = (rand() as usize) % f.len();
                    f[i] = rand() as u8;
                }
                input.extend(f);
            }
            let whole = decode(&input, &[], 200);
            let k = (rand() as usize) % (input.len() + 1);
            assert_eq!(decode(&input, &[k], 200), whole, "cut at {k}");
        }
    }

    #[test]
    fn server_frames() {
        let mut out = Vec::new();
        frame(&mut out, Opcode::Text, b"Hello");
        assert_eq!(out, [0x81, 5, b'H', b'e', b'l', b'l', b'o']);
        out.clear();
        frame(&mut out, Opcode::Binary, &[7; 300]);
        assert_eq!(&out[..4], &[0x82, 126, 1, 44]);
        assert_eq!(out.len(), 4 + 300);
        out.clear();
        frame_header(&mut out, Opcode::Binary, true, 70_000);
        assert_eq!(out, [0x82, 127, 0, 0, 0, 0, 0, 1, 0x11, 0x70]);
        out.clear();
        frame_header(&mut out, Opcode::Text, false, 125);
        assert_eq!(out, [0x01, 125]);
        out.clear();
        frame_header(&mut out, Opcode::Continuation, true, 126);
        assert_eq!(out, [0x80, 126, 0, 126]);
        out.clear();
        frame(&mut out, Opcode::Ping, b"ping");
        assert_eq!(out, [0x89, 4, b'p', b'i', b'n', b'g']);
        out.clear();
        frame(&mut out, Opcode::Pong, &[1; 200]);
        assert_eq!(&out[..2], &[0x8a, 125]);
        assert_eq!(out.len(), 2 + 125);
        out.clear();
        close_frame(&mut out, CLOSE_GOING_AWAY, "");
        assert_eq!(out, [0x88, 2, 0x03, 0xe9]);
        out.clear();
        // 61 two-byte characters: cut to 61 * 2 = 122 bytes, not into a character.
        let reason = "\u{e9}".repeat(70);
        close_frame(&mut out, CLOSE_NORMAL, &reason);
        assert_eq!(out[1], 2 + 122);
        assert!(std::str::from_utf8(&out[4..]).is_ok());
        assert_eq!(out.len(), 2 + 2 + 122);
    }

    #[test]
    fn server_frames_decode_with_a_mask_added() {
        // What the encoders write is what a decoder reads, once masked as a client would.
        for len in [0usize, 1, 125, 126, 65535, 65536] {
            let payload: Vec<u8> = (0..len).map(|i| i as u8).collect();
            let mut out = Vec::new();
            frame(&mut out, Opcode::Binary, &payload);
            let hlen = out.len() - len;
            let mut masked = out[..hlen].to_vec();
            masked[1] |= 0x80;
            masked.extend_from_slice(&M);
            masked.extend(payload.iter().enumerate().map(|(i, b)| b ^ M[i % 4]));
            let (events, err) = decode(&masked, &[], u64::MAX);
            assert_eq!(err, None);
            let want = format!("binary {}", String::from_utf8_lossy(&payload));
            assert_eq!(events, [want], "len {len}");
        }
    }
}
