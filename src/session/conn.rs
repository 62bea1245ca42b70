//! One TCP connection of a peer thread and its buffers: the framer on the way in, a write
//! buffer on the way out (flushed until the socket would block), and what the RFC 9687 send
//! hold timer needs to know.

use super::driver::{MAX_READ_BUFFER, NOTIFICATION_FLUSH};
use super::sock;
use crate::msg::ConnId;
use crate::wire::frame::Framer;
use crate::wire::open::{Capabilities, Negotiated};
use mio::net::TcpStream;
use mio::Poll;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

/// One TCP connection of the peer and its buffers.
pub(super) struct Conn {
    pub(super) id: ConnId,
    pub(super) stream: TcpStream,
    pub(super) outgoing: bool,
    /// False while an outgoing connect is in progress.
    pub(super) connected: bool,
    pub(super) framer: Framer,
    pub(super) out: Vec<u8>,
    pub(super) out_pos: usize,
    pub(super) local: Option<SocketAddr>,
    pub(super) remote: Option<SocketAddr>,
    /// What the peer's OPEN on this connection said, once it came.
    pub(super) peer_caps: Option<Capabilities>,
    pub(super) negotiated: Option<Negotiated>,
    /// The peer closed its side, or the connection broke (`broken` says how): nothing more
    /// is read or written, but the whole messages already buffered are still processed.
    pub(super) eof: bool,
    pub(super) broken: Option<String>,
    /// TcpFails was reported for it.
    pub(super) failed: bool,
    /// Bytes read from the socket so far, and their count when the hold timer last looked.
    pub(super) bytes_in: u64,
    pub(super) bytes_seen_by_hold: u64,
    /// True when the socket may hold unread bytes (edge-triggered readiness).
    pub(super) readable: bool,
    /// Since when bytes have been waiting to be written without the peer taking any
    /// (RFC 9687 send hold timer); `None` while nothing waits.
    pub(super) send_stalled_since: Option<Instant>,
}

impl Conn {
    pub(super) fn new(id: ConnId, stream: TcpStream, outgoing: bool, connected: bool) -> Conn {
        let mut c = Conn {
            id,
            stream,
            outgoing,
            connected,
            framer: Framer::new(),
            out: Vec::new(),
            out_pos: 0,
            local: None,
            remote: None,
            peer_caps: None,
            negotiated: None,
            eof: false,
            broken: None,
            failed: false,
            bytes_in: 0,
            bytes_seen_by_hold: 0,
            readable: true,
            send_stalled_since: None,
        };
        if connected {
            c.learn_addresses();
        }
        c
    }

    pub(super) fn learn_addresses(&mut self) {
        self.local = self.stream.local_addr().ok().map(sock::canonical_addr);
        self.remote = self.stream.peer_addr().ok().map(sock::canonical_addr);
    }

    /// The connection broke: stop using it, keep what was received.
    pub(super) fn break_off(&mut self, reason: String) {
        self.eof = true;
        self.broken.get_or_insert(reason);
    }

    pub(super) fn queue(&mut self, msg: &[u8]) {
        self.out.extend_from_slice(msg);
    }

    /// Write what is buffered until the socket would block.
    pub(super) fn flush(&mut self) -> io::Result<()> {
        if !self.connected || self.broken.is_some() {
            return Ok(());
        }
        while self.out_pos < self.out.len() {
            match self.stream.write(&self.out[self.out_pos..]) {
                Ok(0) => return Err(io::Error::new(io::ErrorKind::WriteZero, "connection closed while writing")),
                Ok(n) => {
                    self.out_pos += n;
                    self.send_stalled_since = None;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
            self.send_stalled_since = None;
        } else if self.send_stalled_since.is_none() {
            self.send_stalled_since = Some(Instant::now());
        }
        Ok(())
    }

    /// Read into the framer until the socket would block or the buffer is full.
    /// Returns Ok(false) at end of stream.
    pub(super) fn fill(&mut self) -> io::Result<bool> {
        let mut buf = [0u8; 16 * 1024];
        while self.framer.buffered() < MAX_READ_BUFFER {
            match self.stream.read(&mut buf) {
                Ok(0) => {
                    self.eof = true;
                    return Ok(false);
                }
                Ok(n) => {
                    self.bytes_in += n as u64;
                    self.framer.feed(&buf[..n]);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    self.readable = false;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Best effort: get the last bytes (a NOTIFICATION) out, then close.
    pub(super) fn close(mut self, poll: &Poll) {
        let deadline = Instant::now() + NOTIFICATION_FLUSH;
        while self.connected && self.out_pos < self.out.len() && Instant::now() < deadline {
            if self.flush().is_err() {
                break;
            }
            if self.out_pos < self.out.len() {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let _ = poll.registry().deregister(&mut self.stream);
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}
