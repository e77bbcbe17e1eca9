//! A request turned into a two-way stream once its 101 Switching Protocols is queued: an
//! `Upgrade` passed through mod_proxy (bytes relayed as they are), or mod_wstunnel (lightd
//! speaks WebSocket to the client: the payload of the client's frames goes to the backend as
//! plain bytes, and what the backend sends comes back framed, text or binary).
//!
//! The connection drives it (`conn.rs`, `step_tunnel`): it reads the client's bytes after the
//! request head and offers them to [`from_client`], calls [`turn`] for the backend's side, and
//! writes what is queued for the client. Each direction stops while [`BACKPRESSURE`] bytes
//! wait for the other side. The tunnel ends when either side does (lighttpd's mod_wstunnel and
//! `gw_set_transparent`): a client's close frame is answered with one, a backend's end of
//! stream becomes a close frame 1001 for a WebSocket client and the end of the connection for
//! a raw one, after the client's own end (half-close) has been passed to the backend.
//! Idleness (server.max-read-idle) and the deadline of a graceful stop end it too, with close
//! code 1001; `wstunnel.ping-interval` sends pings meanwhile.

use std::collections::VecDeque;
#[cfg(feature = "wstunnel")]
use std::time::Duration;
use std::time::Instant;

use crate::backend::job::{Got, Job};
use crate::ctx::{Bufs, Ctx};
use crate::handlers::Seg;
#[cfg(feature = "wstunnel")]
use crate::http::websocket::{self as ws, Frame, FrameDecoder, Opcode};

use super::backend::BACKPRESSURE;
use super::Exchange;

/// The longest WebSocket message a client may send (the sum of its frames); its payload is
/// streamed to the backend, never held, so this only bounds what a message may claim.
#[cfg(feature = "wstunnel")]
const MAX_MESSAGE: u64 = 1 << 62;

/// Backend reads per turn, so one busy tunnel cannot keep the loop from others.
const READS_PER_TURN: usize = 8;

/// The WebSocket side of a mod_wstunnel tunnel.
#[cfg(feature = "wstunnel")]
struct Ws {
    dec: FrameDecoder,
    /// The frame type the backend's bytes go out in.
    opcode: Opcode,
    /// `wstunnel.ping-interval`, and when the next ping is due.
    ping_every: Option<Duration>,
    next_ping: Instant,
    close_sent: bool,
}

pub struct Tunnel {
    #[cfg(feature = "wstunnel")]
    ws: Option<Ws>,
    /// The client sent its end of stream.
    client_eof: bool,
    /// The backend sent its end of stream.
    backend_eof: bool,
    /// The client's end was passed on (shutdown of the backend socket's write side).
    backend_shut: bool,
    /// Nothing more is relayed: what is queued for the client goes out, then it closes.
    ending: bool,
}

/// What a turn of the tunnel did.
#[derive(Debug, PartialEq, Eq)]
pub enum Flow {
    Wait,
    Progress,
    /// The tunnel is over: send what is queued and close the connection.
    End,
}

impl Tunnel {
    /// Bytes relayed as they are (Upgrade through mod_proxy).
    pub fn raw() -> Tunnel {
        Tunnel {
            #[cfg(feature = "wstunnel")]
            ws: None,
            client_eof: false,
            backend_eof: false,
            backend_shut: false,
            ending: false,
        }
    }

    /// mod_wstunnel: frames with the client, bytes with the backend.
    #[cfg(feature = "wstunnel")]
    pub fn websocket(binary: bool, ping_interval: u32, now: Instant) -> Tunnel {
        let ping_every = (ping_interval > 0).then(|| Duration::from_secs(ping_interval.into()));
        Tunnel {
            ws: Some(Ws {
                dec: FrameDecoder::new(MAX_MESSAGE),
                opcode: if binary { Opcode::Binary } else { Opcode::Text },
                ping_every,
                next_ping: now + ping_every.unwrap_or_default(),
                close_sent: false,
            }),
            ..Tunnel::raw()
        }
    }

    #[cfg(feature = "wstunnel")]
    fn is_ws(&self) -> bool {
        self.ws.is_some()
    }

    #[cfg(not(feature = "wstunnel"))]
    fn is_ws(&self) -> bool {
        false
    }

    /// Queue a close frame for a WebSocket client (once), and end.
    fn close(&mut self, wbuf: &mut Vec<u8>, segs: &mut VecDeque<Seg>, code: u16) {
        #[cfg(feature = "wstunnel")]
        if let Some(w) = self.ws.as_mut().filter(|w| !w.close_sent) {
            w.close_sent = true;
            queue(wbuf, segs, |out| ws::close_frame(out, code, ""));
        }
        let _ = (wbuf, segs, code);
        self.ending = true;
    }
}

/// Append to the client's queue: `fill` writes after what is queued (the buffer is reused once
/// everything queued went out).
#[cfg(feature = "wstunnel")]
fn queue(wbuf: &mut Vec<u8>, segs: &mut VecDeque<Seg>, fill: impl FnOnce(&mut Vec<u8>)) {
    if segs.is_empty() {
        wbuf.clear();
    }
    let from = wbuf.len();
    fill(wbuf);
    push_seg(wbuf, segs, from);
}

/// Queue `wbuf[from..]`, in the last segment when it ends where these bytes begin.
fn push_seg(wbuf: &[u8], segs: &mut VecDeque<Seg>, from: usize) {
    let to = wbuf.len();
    if to == from {
        return;
    }
    if let Some(Seg::Mem(_, end)) = segs.back_mut() {
        if *end == from {
            *end = to;
            return;
        }
    }
    segs.push_back(Seg::Mem(from, to));
}

/// The tunnel of an exchange, and its backend.
fn parts(ex: &mut Exchange) -> Option<(&mut Tunnel, &mut Job, &mut Vec<u8>)> {
    let g = ex.backend.as_mut()?;
    let t = g.up.as_mut()?.tunnel.as_mut()?;
    Some((t, g.job.as_mut()?, &mut g.resp))
}

/// Whether the exchange's request has become a tunnel.
pub fn is_open(ex: &Exchange) -> bool {
    ex.backend
        .as_ref()
        .and_then(|g| g.up.as_ref())
        .is_some_and(|u| u.tunnel.is_some())
}

/// Whether the client's bytes are wanted now: the backend's queue has room.
pub fn wants_client(ex: &mut Exchange) -> bool {
    parts(ex).is_some_and(|(t, job, _)| {
        !t.ending && !t.client_eof && job.pending_input() < BACKPRESSURE as u64
    })
}

/// The client ended its side.
pub fn client_eof(ex: &mut Exchange) {
    if let Some((t, _, _)) = parts(ex) {
        t.client_eof = true;
        if t.is_ws() {
            // Gone without a close frame: there is nobody left to answer.
            t.ending = true;
        }
    }
}

/// Take the client's bytes in `data` (unmasked in place for a WebSocket): returns how many
/// were used. What is not used is offered again after the backend has taken more.
pub fn from_client(
    ex: &mut Exchange,
    data: &mut [u8],
    wbuf: &mut Vec<u8>,
    segs: &mut VecDeque<Seg>,
) -> usize {
    let Some((t, job, _)) = parts(ex) else {
        return data.len();
    };
    if t.ending {
        // Nothing more goes anywhere.
        return data.len();
    }
    #[cfg(feature = "wstunnel")]
    if t.ws.is_some() {
        return ws_from_client(t, job, data, wbuf, segs);
    }
    let _ = (wbuf, segs);
    let room = (BACKPRESSURE as u64).saturating_sub(job.pending_input()) as usize;
    let n = room.min(data.len());
    job.queue(&data[..n]);
    n
}

/// Decode the client's frames: data payload to the backend, pings answered, a close
/// answered and the tunnel ended, a protocol error closed with its code.
#[cfg(feature = "wstunnel")]
fn ws_from_client(
    t: &mut Tunnel,
    job: &mut Job,
    data: &mut [u8],
    wbuf: &mut Vec<u8>,
    segs: &mut VecDeque<Seg>,
) -> usize {
    let mut pos = 0;
    // Every turn uses at least one byte or stops.
    while pos < data.len() && job.pending_input() < BACKPRESSURE as u64 {
        let Some(w) = t.ws.as_mut() else {
            return data.len();
        };
        let step = match w.dec.feed(&mut data[pos..]) {
            Ok(step) => step,
            Err(e) => {
                log::debug!("wstunnel: {}", e);
                t.close(wbuf, segs, e.code);
                return data.len();
            }
        };
        let base = pos;
        pos += step.used;
        match step.frame {
            None => {}
            Some(Frame::Data { range, .. }) => {
                job.queue(&data[base + range.start..base + range.end]);
            }
            Some(Frame::Ping) => {
                let payload = w.dec.control_payload();
                queue(wbuf, segs, |out| ws::frame(out, Opcode::Pong, payload));
            }
            Some(Frame::Pong) => {}
            Some(Frame::Close { .. }) => {
                // Answered with a normal closure, as lighttpd answers; then it is over.
                t.close(wbuf, segs, ws::CLOSE_NORMAL);
                return data.len();
            }
        }
        if step.used == 0 {
            break;
        }
    }
    pos
}

/// The backend's side: send it what the client sent, and queue what it sent for the client.
pub fn turn(ex: &mut Exchange, b: &mut Bufs) -> Flow {
    let Some((t, job, resp)) = parts(ex) else {
        return Flow::End;
    };
    // Only a WebSocket tunnel needs a buffer of its own (for framing).
    let _ = &resp;
    if t.ending {
        return Flow::End;
    }
    let mut progress = false;
    match job.pump() {
        Ok(p) => progress |= p,
        Err(e) => {
            log::debug!("tunnel: writing to the backend: {}", e);
            t.close(&mut b.wbuf, &mut b.segs, CLOSE_BACKEND_FAILED);
            return Flow::End;
        }
    }
    if t.client_eof && !t.backend_shut && job.pending_input() == 0 {
        // The client's half-close goes on to the backend, which may still answer.
        job.shutdown_write();
        t.backend_shut = true;
    }
    for _ in 0..READS_PER_TURN {
        if b.segs.is_empty() {
            b.wbuf.clear();
        }
        if b.wbuf.len() >= BACKPRESSURE {
            break;
        }
        #[cfg(feature = "wstunnel")]
        let into = if t.ws.is_some() {
            &mut *resp
        } else {
            &mut b.wbuf
        };
        #[cfg(not(feature = "wstunnel"))]
        let into = &mut b.wbuf;
        let from = into.len();
        match job.read(into) {
            Ok(Got::Wait) => break,
            Ok(Got::Data) => {
                progress = true;
                #[cfg(feature = "wstunnel")]
                if let Some(w) = t.ws.as_ref() {
                    let opcode = w.opcode;
                    queue(&mut b.wbuf, &mut b.segs, |out| {
                        ws::frame_header(out, opcode, true, resp.len() as u64);
                        out.extend_from_slice(resp);
                    });
                    resp.clear();
                    continue;
                }
                push_seg(&b.wbuf, &mut b.segs, from);
            }
            Ok(Got::End) => {
                t.backend_eof = true;
                break;
            }
            Err(e) => {
                log::debug!("tunnel: reading from the backend: {}", e);
                t.close(&mut b.wbuf, &mut b.segs, CLOSE_BACKEND_FAILED);
                return Flow::End;
            }
        }
    }
    if t.backend_eof {
        // The backend is done: lighttpd tells a WebSocket client the server goes away.
        t.close(&mut b.wbuf, &mut b.segs, CLOSE_GOING_AWAY);
        return Flow::End;
    }
    if t.ending {
        return Flow::End;
    }
    if progress {
        Flow::Progress
    } else {
        Flow::Wait
    }
}

/// Close codes the tunnel sends (RFC 6455 §7.4.1): the server goes away (idle, stopping, the
/// backend closed), or the backend failed.
const CLOSE_GOING_AWAY: u16 = 1001;
const CLOSE_BACKEND_FAILED: u16 = 1011;

/// When the tunnel next needs the loop without I/O: it has been idle for server.max-read-idle,
/// a ping is due, or a graceful stop's deadline comes.
pub fn deadline(ctx: &Ctx, ex: &Exchange, last_io: Instant) -> Option<Instant> {
    let t = ex.backend.as_ref()?.up.as_ref()?.tunnel.as_ref()?;
    let mut d = last_io + ctx.cfg.max_read_idle;
    #[cfg(feature = "wstunnel")]
    if let Some(w) = t.ws.as_ref().filter(|w| w.ping_every.is_some()) {
        d = d.min(w.next_ping);
    }
    let _ = t;
    if let Some(stop) = drain_deadline(ctx) {
        d = d.min(stop);
    }
    Some(d)
}

/// A graceful stop's deadline, if one is running and has one.
fn drain_deadline(ctx: &Ctx) -> Option<Instant> {
    let t = ctx.cfg.graceful_shutdown_timeout;
    ctx.drain_started.filter(|_| !t.is_zero()).map(|s| s + t)
}

/// The deadline passed: a ping is queued if that is what was due, else the tunnel ends (with a
/// close frame 1001 for a WebSocket client). Returns whether it ended.
pub fn timeout(ctx: &Ctx, ex: &mut Exchange, b: &mut Bufs, last_io: Instant) -> bool {
    let Some((t, _, _)) = parts(ex) else {
        return true;
    };
    let now = ctx.now;
    let idle = now >= last_io + ctx.cfg.max_read_idle;
    let stopping = drain_deadline(ctx).is_some_and(|d| now >= d);
    #[cfg(feature = "wstunnel")]
    if !idle && !stopping {
        if let Some(w) = t.ws.as_mut() {
            if let Some(every) = w.ping_every.filter(|_| now >= w.next_ping) {
                w.next_ping = now + every;
                queue(&mut b.wbuf, &mut b.segs, |out| {
                    ws::frame(out, Opcode::Ping, b"ping")
                });
                return false;
            }
        }
    }
    log::debug!(
        "tunnel: {}",
        if stopping {
            "closed at the graceful stop's deadline"
        } else {
            "idle too long"
        }
    );
    let _ = idle;
    t.close(&mut b.wbuf, &mut b.segs, CLOSE_GOING_AWAY);
    true
}
