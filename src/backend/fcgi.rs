//! FastCGI on a job's socket: the request body framed as STDIN records, the response taken
//! from STDOUT records (STDERR goes to the error log), END_REQUEST ends it. The records
//! themselves are `http::fcgi`'s.

use std::io;
use std::os::fd::RawFd;

use super::job::{read_append, Got};
use crate::http::fcgi::{self, Decoder, Record};

/// The STDERR a misbehaving application can make us log, per request.
const MAX_STDERR_LOG: usize = 4096;

pub struct Fcgi {
    pub id: u16,
    dec: Decoder,
    /// Raw bytes read from the socket, not yet decoded.
    inbuf: Vec<u8>,
    stderr_logged: usize,
}

impl Fcgi {
    pub fn new(id: u16) -> Fcgi {
        Fcgi {
            id,
            dec: Decoder::new(id),
            inbuf: Vec::new(),
            stderr_logged: 0,
        }
    }

    /// Frame body bytes as STDIN records; an empty `data` is the end of the body.
    pub fn stdin(&mut self, out: &mut Vec<u8>, data: &[u8]) {
        fcgi::stdin(out, self.id, data);
    }

    /// Read from the socket and decode: STDOUT payload is appended to `resp`.
    pub fn read(&mut self, fd: RawFd, resp: &mut Vec<u8>, max: usize) -> io::Result<Got> {
        let n = read_append(fd, &mut self.inbuf, max)?;
        let got = self.decode(resp)?;
        if got == Got::End {
            return Ok(Got::End);
        }
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the FastCGI application closed the connection before END_REQUEST",
            ));
        }
        Ok(Got::Data)
    }

    fn decode(&mut self, resp: &mut Vec<u8>) -> io::Result<Got> {
        let mut pos = 0;
        // Every step consumes bytes or returns; bounded by the input.
        let got = loop {
            let step = self
                .dec
                .feed(&self.inbuf[pos..])
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
            let base = pos;
            pos += step.used;
            match step.record {
                None => break Got::Data,
                Some(Record::Stdout(r)) => {
                    if let Some(d) = self.inbuf.get(base + r.start..base + r.end) {
                        resp.extend_from_slice(d);
                    }
                }
                Some(Record::Stderr(r)) => {
                    if self.stderr_logged < MAX_STDERR_LOG {
                        if let Some(d) = self.inbuf.get(base + r.start..base + r.end) {
                            self.stderr_logged += d.len();
                            log::error!(
                                "fastcgi stderr: {}",
                                String::from_utf8_lossy(d).trim_end()
                            );
                        }
                    }
                }
                Some(Record::End {
                    app_status,
                    protocol_status,
                }) => {
                    if protocol_status != fcgi::REQUEST_COMPLETE {
                        return Err(io::Error::new(
                            io::ErrorKind::Other,
                            format!(
                                "the FastCGI application refused the request (protocol status {protocol_status}, app status {app_status})"
                            ),
                        ));
                    }
                    break Got::End;
                }
            }
            if pos >= self.inbuf.len() {
                break Got::Data;
            }
        };
        self.inbuf.drain(..pos.min(self.inbuf.len()));
        Ok(got)
    }
}
