//! The MONITOR THREAD: the live update stream behind `focl monitor`.
//!
//! Fed by: peer threads (`MonitorMsg::Event`, through `MonitorLink`, only while someone
//! listens, never blocking: a full queue drops and counts), the control thread (`Subscribe`
//! hands over a client's connection with its filter; `Status`) and the main thread (`Stop`).
//! Emits: NDJSON lines to each subscriber, `{"id":N,"data":EVENT}`, and one closing reply line.
//!
//! A subscriber that does not read is never allowed to slow anything: its lines wait in a
//! buffer of at most `MAX_BUFFERED` bytes; past that it gets a closing `slow_consumer` error
//! (best effort), is disconnected and counted. Decoding happens here, once per event, not on
//! the peer threads.

mod event;

use crate::control::proto::{code, CtlError, MonitorStatus, Reply};
use crate::msg::{MonitorFilter, MonitorLink, MonitorMsg, MONITOR_CHANNEL_CAPACITY};
use crossbeam_channel::{Receiver, RecvTimeoutError};
use log::{info, warn};
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Bytes of lines a subscriber may leave unread before it is cut off.
pub const MAX_BUFFERED: usize = 1024 * 1024;
/// Subscribers at once; more are refused.
pub const MAX_SUBSCRIBERS: usize = 32;
/// How often waiting lines are retried when no event arrives.
const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// How long a cut-off subscriber has to read its closing line before the connection goes.
const CLOSING_GRACE: Duration = Duration::from_secs(30);

struct Subscriber {
    id: u64,
    stream: UnixStream,
    filter: MonitorFilter,
    out: Vec<u8>,
    written: usize,
}

impl Subscriber {
    fn queue(&mut self, line: &[u8]) {
        self.out.extend_from_slice(line);
        self.out.push(b'\n');
    }

    fn pending(&self) -> usize {
        self.out.len() - self.written
    }

    /// Write what the socket takes now. Err: the subscriber is gone (also noticed when it
    /// hangs up while nothing is being written).
    fn flush(&mut self) -> io::Result<()> {
        let mut probe = [0u8; 64];
        match self.stream.read(&mut probe) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(_) => {} // a subscriber has nothing to say; ignore it
            Err(e) if e.kind() == io::ErrorKind::WouldBlock || e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        while self.written < self.out.len() {
            match self.stream.write(&self.out[self.written..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        if self.written == self.out.len() {
            self.out.clear();
            self.written = 0;
        } else if self.written > MAX_BUFFERED {
            self.out.drain(..self.written);
            self.written = 0;
        }
        Ok(())
    }

    /// Replace what waits with the closing line; it goes out as the reader drains its socket.
    fn closing(&mut self, reply: Reply) {
        self.out.clear();
        self.written = 0;
        if let Ok(line) = serde_json::to_vec(&reply) {
            self.queue(&line);
        }
    }

    /// The closing line, as far as the socket takes it now, then the end of the connection.
    fn close(mut self, reply: Reply) {
        self.closing(reply);
        let _ = self.flush();
        let _ = self.stream.shutdown(std::net::Shutdown::Both);
    }
}

/// Owns the monitor thread.
pub struct MonitorHandle {
    pub link: MonitorLink,
    join: Option<JoinHandle<()>>,
}

impl MonitorHandle {
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(j) = self.join.take() {
            self.link.send_blocking(MonitorMsg::Stop);
            let _ = j.join();
        }
    }
}

impl Drop for MonitorHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

pub fn spawn() -> io::Result<MonitorHandle> {
    let (tx, rx) = crossbeam_channel::bounded(MONITOR_CHANNEL_CAPACITY);
    let link = MonitorLink::new(tx);
    let (subscribers, dropped) = link.counters();
    let join = std::thread::Builder::new().name("monitor".into()).spawn(move || {
        Monitor { subs: Vec::new(), closing: Vec::new(), count: subscribers, dropped, sent: 0, cut_off: 0 }.run(rx)
    })?;
    Ok(MonitorHandle { link, join: Some(join) })
}

struct Monitor {
    subs: Vec<Subscriber>,
    /// Cut-off subscribers whose closing line waits for them to read (one line each).
    closing: Vec<(Subscriber, Instant)>,
    /// Shared with the peer threads: they send nothing while this is 0.
    count: Arc<AtomicUsize>,
    dropped: Arc<AtomicU64>,
    sent: u64,
    cut_off: u64,
}

impl Monitor {
    fn run(mut self, rx: Receiver<MonitorMsg>) {
        loop {
            match rx.recv_timeout(FLUSH_EVERY) {
                Ok(MonitorMsg::Event(ev)) => {
                    let decoded = event::decode(&ev);
                    for s in &mut self.subs {
                        if let Some(v) = event::render(&decoded, &s.filter) {
                            if let Ok(line) = serde_json::to_vec(&serde_json::json!({ "id": s.id, "data": v })) {
                                s.queue(&line);
                                self.sent += 1;
                            }
                        }
                    }
                }
                Ok(MonitorMsg::Subscribe { id, stream, filter }) => self.subscribe(id, stream, filter),
                Ok(MonitorMsg::Status(reply)) => {
                    let _ = reply.send(MonitorStatus {
                        subscribers: self.subs.len() as u64,
                        events_sent: self.sent,
                        dropped: self.dropped.load(Ordering::Relaxed),
                        cut_off: self.cut_off,
                    });
                }
                Ok(MonitorMsg::Stop) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
            self.flush_all();
        }
        for s in std::mem::take(&mut self.subs) {
            let id = s.id;
            s.close(Reply::ok(id, serde_json::json!({ "events": self.sent, "reason": "focld shutting down" })));
        }
        self.count.store(0, Ordering::Relaxed);
    }

    fn subscribe(&mut self, id: u64, stream: UnixStream, filter: MonitorFilter) {
        let sub = Subscriber { id, stream, filter, out: Vec::new(), written: 0 };
        if let Err(e) = sub.stream.set_nonblocking(true) {
            warn!("monitor: cannot use a subscriber's connection: {e}");
            return;
        }
        if self.subs.len() >= MAX_SUBSCRIBERS {
            let e =
                CtlError::new(code::NOT_SUPPORTED, format!("{MAX_SUBSCRIBERS} monitors are running; try again later"));
            sub.close(Reply::err(id, e));
            return;
        }
        info!("monitor: subscriber {} joined ({} now)", id, self.subs.len() + 1);
        self.subs.push(sub);
        self.count.store(self.subs.len(), Ordering::Relaxed);
    }

    /// Write what each subscriber takes; drop the gone, cut off the slow.
    fn flush_all(&mut self) {
        let mut i = 0;
        while i < self.subs.len() {
            let s = &mut self.subs[i];
            let gone = s.flush().is_err();
            let slow = !gone && s.pending() > MAX_BUFFERED;
            if gone || slow {
                let s = self.subs.swap_remove(i);
                if slow {
                    self.cut_off += 1;
                    warn!(
                        "monitor: subscriber {} cut off: more than {} KiB of events unread ({} cut off so far)",
                        s.id,
                        MAX_BUFFERED / 1024,
                        self.cut_off
                    );
                    let mut s = s;
                    let id = s.id;
                    s.closing(Reply::err(
                        id,
                        CtlError::new(
                            code::SLOW_CONSUMER,
                            format!(
                                "focld cut this monitor off: more than {} KiB of events waited unread; reconnect to go on",
                                MAX_BUFFERED / 1024
                            ),
                        ),
                    ));
                    self.closing.push((s, Instant::now() + CLOSING_GRACE));
                }
                self.count.store(self.subs.len(), Ordering::Relaxed);
            } else {
                i += 1;
            }
        }
        // Closing lines: the connection ends once its line is out, or after the grace time.
        self.closing.retain_mut(|(s, deadline)| {
            let done = s.flush().is_err() || s.pending() == 0 || Instant::now() > *deadline;
            if done {
                let _ = s.stream.shutdown(std::net::Shutdown::Both);
            }
            !done
        });
    }
}
