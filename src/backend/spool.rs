//! Placeholder request-body FIFO (in memory), replaced by the spooling one.

use std::io;
use std::path::PathBuf;
use std::rc::Rc;

pub struct Spool {
    buf: Vec<u8>,
    pos: usize,
    total: u64,
}

impl Spool {
    pub fn new(_mem_limit: usize, _dirs: Rc<[PathBuf]>) -> Spool {
        Spool {
            buf: Vec::new(),
            pos: 0,
            total: 0,
        }
    }
    pub fn push(&mut self, data: &[u8]) -> io::Result<()> {
        if self.pos == self.buf.len() {
            self.buf.clear();
            self.pos = 0;
        }
        self.buf.extend_from_slice(data);
        self.total += data.len() as u64;
        Ok(())
    }
    pub fn len(&self) -> u64 {
        (self.buf.len() - self.pos) as u64
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn front(&mut self) -> io::Result<&[u8]> {
        let end = self.buf.len().min(self.pos + 16384);
        Ok(&self.buf[self.pos..end])
    }
    pub fn consume(&mut self, n: usize) {
        self.pos = (self.pos + n).min(self.buf.len());
    }
    pub fn total(&self) -> u64 {
        self.total
    }
}
