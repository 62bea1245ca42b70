//! One STATION THREAD per `[[bmp.stations]]` entry: connects to the station (back-off with a
//! ceiling), tells the BMP thread each time a connection is up, and writes what the BMP thread
//! queued for that connection.
//!
//! Fed by: the BMP thread (`Chunk`s of encoded messages tagged with the connection they were
//! built for, and `Chunk::Stop`). Emits: `BmpMsg::StationConnected` to the BMP thread, bytes
//! to the station's socket, its status in `StationShared`.
//!
//! The socket is blocking with short timeouts, so a station that stops reading never holds
//! this thread longer than `POLL`: it sees the BMP thread's cut (`StationShared::cut`) or a
//! stop in time. A station sends nothing (RFC 7854 §3.3); what it sends is read and ignored.

use super::{Chunk, StationShared};
use crate::config::{BmpStationConfig, BMP_CONNECT_RETRY_CEILING_SECS};
use crate::msg::{BmpLink, BmpMsg};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use log::{info, warn};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long one blocking socket call or channel wait may take before flags are checked again.
const POLL: Duration = Duration::from_millis(100);
/// A connection attempt gives up after this.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Queued chunks are gathered into one write up to about this many bytes.
const COALESCE_BYTES: usize = 256 * 1024;
/// The Termination message gets this long to leave on stop.
const FAREWELL_WITHIN: Duration = Duration::from_secs(2);

/// How a connection ended.
enum Ended {
    /// focld stops, or the station was removed: the thread ends.
    Stop,
    /// The BMP thread cut it: the station fell `buffer_limit_mb` behind.
    Cut,
    Failed(String),
}

pub(super) struct StationThread {
    pub id: u64,
    pub cfg: BmpStationConfig,
    pub rx: Receiver<Chunk>,
    pub shared: Arc<StationShared>,
    pub bmp: BmpLink,
}

impl StationThread {
    pub(super) fn run(self) {
        let addr = SocketAddr::new(self.cfg.address, self.cfg.port);
        let first = Duration::from_secs(self.cfg.connect_retry_secs.into());
        let ceiling = Duration::from_secs(BMP_CONNECT_RETRY_CEILING_SECS.into()).max(first);
        let mut delay = first;
        let mut conn: u64 = 0;
        loop {
            self.shared.set_state("connecting", None);
            match TcpStream::connect_timeout(&addr, CONNECT_TIMEOUT) {
                Ok(stream) => {
                    conn += 1;
                    self.shared.connected(conn > 1);
                    info!("bmp {}: connected", self.cfg.label());
                    if !self.bmp.send_blocking(BmpMsg::StationConnected { station: self.id, conn }) {
                        return;
                    }
                    match self.serve(stream, conn) {
                        Ended::Stop => return self.shared.set_state("stopped", None),
                        Ended::Cut => {
                            // Falling behind again right away would only repeat the dump: wait longer.
                            delay = (delay * 2).min(ceiling);
                            let e = format!("fell {} MiB behind; connection dropped", self.cfg.buffer_limit_mb);
                            self.shared.set_state("waiting", Some(e));
                        }
                        Ended::Failed(e) => {
                            warn!("bmp {}: connection lost: {e}", self.cfg.label());
                            delay = first;
                            self.shared.set_state("waiting", Some(e));
                        }
                    }
                }
                Err(e) => {
                    self.shared.set_state("waiting", Some(format!("connect failed: {e}")));
                    if self.wait(delay) {
                        return self.shared.set_state("stopped", None);
                    }
                    delay = (delay * 2).min(ceiling);
                    continue;
                }
            }
            if self.wait(delay) {
                return self.shared.set_state("stopped", None);
            }
        }
    }

    /// Sleep `d`, dropping chunks of connections that are gone; true when told to stop.
    fn wait(&self, d: Duration) -> bool {
        let until = Instant::now() + d;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            match self.rx.recv_timeout(left) {
                Ok(Chunk::Data { bytes, .. }) => self.shared.taken(bytes.len()),
                Ok(Chunk::Stop { .. }) | Err(RecvTimeoutError::Disconnected) => return true,
                Err(RecvTimeoutError::Timeout) => return false,
            }
        }
    }

    fn serve(&self, mut s: TcpStream, conn: u64) -> Ended {
        if let Err(e) = s.set_write_timeout(Some(POLL)).and_then(|_| s.set_read_timeout(Some(Duration::from_millis(1))))
        {
            return Ended::Failed(format!("socket options: {e}"));
        }
        let _ = s.set_nodelay(true);
        loop {
            if self.shared.cut.load(Ordering::Relaxed) == conn {
                return Ended::Cut;
            }
            match self.rx.recv_timeout(POLL) {
                Ok(Chunk::Data { conn: c, messages, bytes }) => {
                    self.shared.taken(bytes.len());
                    if c != conn {
                        continue; // built for an earlier connection
                    }
                    // What else is already queued goes out in the same write (one system
                    // call for a burst of small Route Monitoring messages, not one each).
                    let (mut out, mut count, mut stop) = (None::<Vec<u8>>, messages, None);
                    while out.as_ref().map_or(bytes.len(), Vec::len) < COALESCE_BYTES {
                        match self.rx.try_recv() {
                            Ok(Chunk::Data { conn: c2, messages: m2, bytes: b2 }) => {
                                self.shared.taken(b2.len());
                                if c2 == conn {
                                    out.get_or_insert_with(|| bytes.to_vec()).extend_from_slice(&b2);
                                    count += m2;
                                }
                            }
                            Ok(Chunk::Stop { farewell }) => {
                                stop = Some(farewell);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    let all: &[u8] = out.as_deref().unwrap_or(&bytes);
                    if let Err(end) = self.write_all(&mut s, all, conn) {
                        return end;
                    }
                    self.shared.sent(count, all.len());
                    if let Some(farewell) = stop {
                        return farewell_and_close(&mut s, farewell);
                    }
                }
                Ok(Chunk::Stop { farewell }) => return farewell_and_close(&mut s, farewell),
                Err(RecvTimeoutError::Disconnected) => return Ended::Stop,
                Err(RecvTimeoutError::Timeout) => {
                    // Idle: notice a station that closed its end.
                    let mut probe = [0u8; 512];
                    match s.read(&mut probe) {
                        Ok(0) => return Ended::Failed("closed by the station".into()),
                        Ok(_) => {}
                        Err(e) if is_retry(&e) => {}
                        Err(e) => return Ended::Failed(format!("read failed: {e}")),
                    }
                }
            }
        }
    }

    /// Write all of `bytes`, checking for a cut or a stop between tries.
    fn write_all(&self, s: &mut TcpStream, bytes: &[u8], conn: u64) -> Result<(), Ended> {
        let mut at = 0;
        while at < bytes.len() {
            if self.shared.cut.load(Ordering::Relaxed) == conn {
                return Err(Ended::Cut);
            }
            if self.shared.stopping.load(Ordering::Relaxed) {
                return Err(Ended::Stop);
            }
            match s.write(&bytes[at..]) {
                Ok(0) => return Err(Ended::Failed("the station closed the connection".into())),
                Ok(n) => at += n,
                Err(e) if is_retry(&e) => {}
                Err(e) => return Err(Ended::Failed(format!("write failed: {e}"))),
            }
        }
        Ok(())
    }
}

/// Write the Termination message, when there is one, and close: focld stops or the station
/// was removed.
fn farewell_and_close(s: &mut TcpStream, farewell: Option<bytes::Bytes>) -> Ended {
    if let Some(f) = farewell {
        let _ = s.set_write_timeout(Some(FAREWELL_WITHIN));
        let _ = s.write_all(&f);
    }
    let _ = s.shutdown(std::net::Shutdown::Both);
    Ended::Stop
}

fn is_retry(e: &io::Error) -> bool {
    matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted)
}
