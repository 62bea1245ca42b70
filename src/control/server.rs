//! The control server: serves focl's NDJSON requests on a Unix stream socket.
//!
//! Fed by focl clients (one request a line); decodes each into a typed `Request`, asks a
//! `Handler` (the dispatcher, which talks to the other threads over channels) and writes one
//! reply line per request, or, for a streamed answer, its data lines and then one closing
//! reply line. A stream is pulled from its channel only while the client's pending output is
//! small, so a client that reads slowly slows only its own stream (the producer waits on a
//! full channel without blocking); a client's next request is read once its stream ended.
//! A mio loop (`Token(0)` the listener, `Token(1)` the stop waker) serves many clients at
//! once: a client that sends nothing, sends garbage or does not read its replies never holds
//! up the others.

use super::proto::{code, CtlError, Reply, Request, StreamItem, StreamLine, MAX_REQUEST_BYTES};
use crossbeam_channel::{Receiver, TryRecvError};
use log::{debug, error, info, warn};
use mio::net::{UnixListener, UnixStream};
use mio::{Events, Interest, Poll, Token, Waker};
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::unix::fs::{FileTypeExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
/// Replies buffered for a client that does not read them; past this it is dropped.
const MAX_CLIENT_OUTPUT: usize = 16 * 1024 * 1024;
/// Clients served at once; more are refused until some leave.
const MAX_CLIENTS: usize = 64;
/// A stream is pulled further only while less than this is waiting to be written to its client.
const STREAM_PENDING: usize = 1024 * 1024;
/// How often streams are pulled while any is open and none has moved lately.
const STREAM_TICK: Duration = Duration::from_millis(5);
/// How soon a stream is pulled again after it began or moved: the wait doubles from this to
/// `STREAM_TICK` while nothing arrives, so a short answer (a `rib lookup`) leaves within a
/// fraction of a millisecond of the RIB writing it, and an idle stream costs a wakeup per tick.
const STREAM_FIRST_TICK: Duration = Duration::from_micros(250);

/// The answer to one request: a reply line, or a stream of data lines that ends with one.
pub enum Answer {
    Reply(Reply),
    /// Data lines `{"id":ID,"data":...}` from the channel's `Data` items, then the `End` as a
    /// reply line. A channel that closes without an end gets an `internal` error reply.
    Stream {
        id: u64,
        rx: Receiver<StreamItem>,
    },
}

impl From<Reply> for Answer {
    fn from(r: Reply) -> Answer {
        Answer::Reply(r)
    }
}

/// Answers one request (implemented by the daemon).
pub trait Handler: Send + 'static {
    fn handle(&mut self, req: &Request) -> Answer;

    /// A stream that outlives requests (`monitor`): the client's connection is handed over with
    /// the request and leaves the control server; the handler answers on it (or says why not
    /// and closes it).
    fn subscribe(&mut self, req: &Request, stream: std::os::unix::net::UnixStream);
}

/// Owns the control thread and its socket file.
pub struct ControlServer {
    path: PathBuf,
    waker: Arc<Waker>,
    stop: Arc<AtomicBool>,
    join: Option<JoinHandle<()>>,
}

impl ControlServer {
    /// Bind `path` (mode 0660) and start serving. A stale socket (nobody answers) is replaced;
    /// a live one, or any other kind of file, is an error and is left alone.
    pub fn start(path: &Path, handler: Box<dyn Handler>) -> io::Result<ControlServer> {
        prepare_path(path)?;
        let mut listener = UnixListener::bind(path)
            .map_err(|e| io::Error::new(e.kind(), format!("cannot bind control socket {}: {e}", path.display())))?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o660))?;
        let poll = Poll::new()?;
        poll.registry().register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = stop.clone();
        let join = std::thread::Builder::new().name("control".into()).spawn(move || {
            Server { poll, listener, clients: HashMap::new(), next: 2, handler, stop: thread_stop, tick: STREAM_TICK }
                .run()
        })?;
        info!("control socket {}", path.display());
        Ok(ControlServer { path: path.to_path_buf(), waker, stop, join: Some(join) })
    }

    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.waker.wake();
        if let Some(j) = self.join.take() {
            let _ = j.join();
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Make room for the socket: nothing there, or a stale socket we may remove.
fn prepare_path(path: &Path) -> io::Result<()> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if !meta.file_type().is_socket() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a socket; choose another control_socket or remove it", path.display()),
        ));
    }
    if std::os::unix::net::UnixStream::connect(path).is_ok() {
        return Err(io::Error::new(
            io::ErrorKind::AddrInUse,
            format!("another focld is listening on {}", path.display()),
        ));
    }
    std::fs::remove_file(path)
}

struct Client {
    stream: UnixStream,
    input: Vec<u8>,
    /// Discarding the rest of an over-long line.
    skipping: bool,
    output: Vec<u8>,
    written: usize,
    /// The streamed answer being sent, with its request id.
    streaming: Option<(u64, Receiver<StreamItem>)>,
}

struct Server {
    poll: Poll,
    listener: UnixListener,
    clients: HashMap<Token, Client>,
    next: usize,
    handler: Box<dyn Handler>,
    stop: Arc<AtomicBool>,
    /// The poll timeout while a stream is open (see `STREAM_FIRST_TICK`).
    tick: Duration,
}

impl Server {
    fn run(mut self) {
        let mut events = Events::with_capacity(64);
        while !self.stop.load(Ordering::SeqCst) {
            let streaming = self.clients.values().any(|c| c.streaming.is_some());
            if let Err(e) = self.poll.poll(&mut events, streaming.then_some(self.tick)) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                error!("control: poll failed: {e}");
                return;
            }
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept(),
                    WAKER => {}
                    t => {
                        if !self.serve(t) {
                            self.drop_client(t);
                        }
                    }
                }
            }
            if streaming {
                self.tick = (self.tick * 2).min(STREAM_TICK);
                let open: Vec<Token> =
                    self.clients.iter().filter(|(_, c)| c.streaming.is_some()).map(|(t, _)| *t).collect();
                for t in open {
                    if !self.process(t) {
                        self.drop_client(t);
                    }
                }
            }
        }
        debug!("control: stopped");
    }

    fn accept(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((mut stream, _)) => {
                    if self.clients.len() >= MAX_CLIENTS {
                        warn!("control: too many clients, refusing one");
                        continue;
                    }
                    let t = Token(self.next);
                    self.next += 1;
                    if self.poll.registry().register(&mut stream, t, Interest::READABLE | Interest::WRITABLE).is_ok() {
                        let c = Client {
                            stream,
                            input: Vec::new(),
                            skipping: false,
                            output: Vec::new(),
                            written: 0,
                            streaming: None,
                        };
                        self.clients.insert(t, c);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    warn!("control: accept failed: {e}");
                    return;
                }
            }
        }
    }

    /// Read what the client sent, answer every whole line, write what fits. False: drop it.
    fn serve(&mut self, t: Token) -> bool {
        let Some(c) = self.clients.get_mut(&t) else { return false };
        let Ok(open) = read_input(c) else { return false };
        if !self.process(t) {
            return false;
        }
        // A client that hung up is dropped once its replies are out (or cannot go out).
        open || self.clients.get(&t).is_some_and(|c| c.streaming.is_some())
    }

    fn drop_client(&mut self, t: Token) {
        if let Some(mut c) = self.clients.remove(&t) {
            let _ = self.poll.registry().deregister(&mut c.stream);
        }
    }

    /// Move the client's stream on, answer its waiting lines (while no stream is open), write
    /// what fits. False: drop it.
    fn process(&mut self, t: Token) -> bool {
        loop {
            let Some(c) = self.clients.get_mut(&t) else { return false };
            let was_streaming = c.streaming.is_some();
            if pump_stream(c) {
                self.tick = STREAM_FIRST_TICK;
            }
            let Some(c) = self.clients.get_mut(&t) else { return false };
            if c.streaming.is_some() {
                break;
            }
            // Reading stopped while the stream ran (see `read_input`): catch up.
            if was_streaming && read_input(c).is_err() {
                return false;
            }
            let Some(line) = take_line(c) else { break };
            let answer = match line {
                Line::TooLong => Reply::err(
                    0,
                    CtlError::new(code::REQUEST_TOO_LARGE, format!("request longer than {MAX_REQUEST_BYTES} bytes")),
                )
                .into(),
                Line::Text(text) => match Request::decode(&text) {
                    Ok(req) if req.command.is_stream() => {
                        self.hand_over(t, req);
                        // The rest of what it sent after a stream request is not read.
                        return true;
                    }
                    Ok(req) => {
                        debug!("control: {:?}", req.command);
                        self.handler.handle(&req)
                    }
                    Err((id, e)) => Reply::err(id, e).into(),
                },
            };
            let Some(c) = self.clients.get_mut(&t) else { return false };
            match answer {
                Answer::Reply(reply) => push_reply(c, &reply),
                Answer::Stream { id, rx } => {
                    c.streaming = Some((id, rx));
                    self.tick = STREAM_FIRST_TICK;
                }
            }
        }
        let Some(c) = self.clients.get_mut(&t) else { return false };
        if flush(c).is_err() || c.output.len() - c.written > MAX_CLIENT_OUTPUT {
            return false;
        }
        true
    }

    /// Give a stream request's connection to the handler: replies still waiting are written
    /// first (briefly blocking), then the socket leaves the poll loop.
    fn hand_over(&mut self, t: Token, req: Request) {
        let Some(mut c) = self.clients.remove(&t) else { return };
        let _ = self.poll.registry().deregister(&mut c.stream);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
        while c.written < c.output.len() && std::time::Instant::now() < deadline {
            if flush(&mut c).is_err() {
                return;
            }
            if c.written < c.output.len() {
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
        }
        use std::os::fd::{FromRawFd, IntoRawFd};
        // SAFETY: the descriptor comes out of the mio stream, which gives up its ownership.
        let stream = unsafe { std::os::unix::net::UnixStream::from_raw_fd(c.stream.into_raw_fd()) };
        debug!("control: {:?} (a stream)", req.command);
        self.handler.subscribe(&req, stream);
    }
}

/// Read what the socket holds into the client's input; Ok(false) when the client hung up.
/// While a stream is being sent, at most about one request's worth is read ahead, so a client
/// that keeps sending cannot grow the buffer without bound.
fn read_input(c: &mut Client) -> Result<bool, ()> {
    let mut buf = [0u8; 8192];
    loop {
        if c.input.len() > MAX_REQUEST_BYTES && (c.streaming.is_some() || !c.input.contains(&b'\n')) {
            return Ok(true); // handled as an over-long line, or read once the stream ends
        }
        match c.stream.read(&mut buf) {
            Ok(0) => return Ok(false),
            Ok(n) => c.input.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(true),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Err(()),
        }
    }
}

/// Queue one reply line; an answer too large for the socket becomes an error, never a
/// truncated reply.
fn push_reply(c: &mut Client, reply: &Reply) {
    match serde_json::to_vec(reply) {
        Ok(v) if v.len() > MAX_CLIENT_OUTPUT => {
            let e = CtlError::new(
                code::BAD_ARGUMENT,
                format!(
                    "the answer would be {} MB, more than the control socket sends; narrow the question",
                    v.len() / 1_000_000
                ),
            );
            let mut v = serde_json::to_vec(&Reply::err(reply.id, e)).unwrap_or_default();
            v.push(b'\n');
            c.output.extend_from_slice(&v);
        }
        Ok(mut v) => {
            v.push(b'\n');
            c.output.extend_from_slice(&v);
        }
        Err(e) => error!("control: cannot encode reply: {e}"),
    }
}

/// Pull what the client's stream has ready while its pending output is small; the end of the
/// stream becomes its closing reply line. True when anything was pulled.
fn pump_stream(c: &mut Client) -> bool {
    let mut moved = false;
    while let Some((id, rx)) = &c.streaming {
        let id = *id;
        if c.output.len() - c.written >= STREAM_PENDING {
            return moved;
        }
        let end = match rx.try_recv() {
            Ok(StreamItem::Data(values)) => {
                for data in values {
                    if let Ok(mut v) = serde_json::to_vec(&StreamLine { id, data }) {
                        v.push(b'\n');
                        c.output.extend_from_slice(&v);
                    }
                }
                moved = true;
                continue;
            }
            Ok(StreamItem::End(Ok(v))) => Reply::ok(id, v),
            Ok(StreamItem::End(Err(e))) => Reply::err(id, e),
            Err(TryRecvError::Empty) => return moved,
            Err(TryRecvError::Disconnected) => {
                Reply::err(id, CtlError::new(code::INTERNAL, "the answer ended early (focld is stopping?)"))
            }
        };
        c.streaming = None;
        push_reply(c, &end);
        moved = true;
    }
    moved
}

enum Line {
    Text(Vec<u8>),
    TooLong,
}

/// Split off the next complete line; an over-long line becomes one `TooLong` and is skipped to
/// its end. Blank lines are passed over.
fn take_line(c: &mut Client) -> Option<Line> {
    loop {
        match c.input.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let rest = c.input.split_off(i + 1);
                let mut line = std::mem::replace(&mut c.input, rest);
                line.pop();
                if c.skipping {
                    c.skipping = false;
                } else if line.len() > MAX_REQUEST_BYTES {
                    return Some(Line::TooLong);
                } else if !line.iter().all(u8::is_ascii_whitespace) {
                    return Some(Line::Text(line));
                }
            }
            None => {
                if c.input.len() > MAX_REQUEST_BYTES {
                    c.input.clear();
                    if !c.skipping {
                        c.skipping = true;
                        return Some(Line::TooLong);
                    }
                }
                return None;
            }
        }
    }
}

fn flush(c: &mut Client) -> io::Result<()> {
    while c.written < c.output.len() {
        match c.stream.write(&c.output[c.written..]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => c.written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        }
    }
    c.output.clear();
    c.written = 0;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::control::proto::Command;
    use std::io::{BufRead, BufReader};
    use std::os::unix::net::UnixStream as StdStream;
    use std::time::Duration;

    /// Answers `peer_show` with the peer argument it was given.
    struct Echo;
    impl Handler for Echo {
        fn handle(&mut self, req: &Request) -> Answer {
            match &req.command {
                Command::PeerShow { peer } => Reply::ok(req.id, serde_json::json!(peer)).into(),
                // A stream of `peer` numbers 0..N from a producer thread, N = the peer's length.
                Command::PeerReset { peer } => {
                    let (tx, rx) = crossbeam_channel::bounded(2);
                    let n = peer.len();
                    std::thread::spawn(move || {
                        for i in 0..n {
                            if tx.send(StreamItem::Data(vec![serde_json::json!(i)])).is_err() {
                                return;
                            }
                        }
                        let _ = tx.send(StreamItem::End(Ok(serde_json::json!({ "count": n }))));
                    });
                    Answer::Stream { id: req.id, rx }
                }
                other => Reply::err(req.id, CtlError::new(code::NOT_SUPPORTED, other.name())).into(),
            }
        }

        fn subscribe(&mut self, req: &Request, mut stream: std::os::unix::net::UnixStream) {
            let _ = writeln!(stream, "{{\"id\":{},\"data\":\"streamed\"}}", req.id);
        }
    }

    fn temp_path(tag: &str) -> PathBuf {
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        std::env::temp_dir().join(format!("focl-ctl-{tag}-{}-{nanos}.sock", std::process::id()))
    }

    fn client(path: &Path) -> (StdStream, BufReader<StdStream>) {
        let s = StdStream::connect(path).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let r = BufReader::new(s.try_clone().unwrap());
        (s, r)
    }

    fn ask(s: &mut StdStream, r: &mut BufReader<StdStream>, line: &str) -> Reply {
        s.write_all(line.as_bytes()).unwrap();
        s.write_all(b"\n").unwrap();
        let mut out = String::new();
        r.read_line(&mut out).unwrap();
        serde_json::from_str(&out).unwrap()
    }

    #[test]
    fn replies_in_order_and_survives_bad_input_and_silent_clients() {
        let path = temp_path("basic");
        let server = ControlServer::start(&path, Box::new(Echo)).unwrap();
        assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o660);
        let (_silent, _) = client(&path); // connects and says nothing
        let (mut s, mut r) = client(&path);
        let rep = ask(&mut s, &mut r, r#"{"id":1,"cmd":"peer_show","args":{"peer":"x1"}}"#);
        assert_eq!((rep.id, rep.ok, rep.result), (1, true, Some(serde_json::json!("x1"))));
        let rep = ask(&mut s, &mut r, "this is not json");
        assert_eq!(rep.error.map(|e| e.code), Some("bad_request".to_string()));
        let rep = ask(&mut s, &mut r, r#"{"id":5,"command":"oops"}"#);
        assert_eq!((rep.id, rep.error.map(|e| e.code)), (5, Some("bad_request".to_string())));
        let rep = ask(&mut s, &mut r, r#"{"id":2,"cmd":"nope"}"#);
        assert_eq!(rep.error.map(|e| e.code), Some("unknown_command".to_string()));
        let big = format!(r#"{{"id":3,"cmd":"peer_show","args":{{"peer":"{}"}}}}"#, "x".repeat(MAX_REQUEST_BYTES + 10));
        let rep = ask(&mut s, &mut r, &big);
        assert_eq!(rep.error.map(|e| e.code), Some("request_too_large".to_string()));
        let rep = ask(&mut s, &mut r, r#"{"id":4,"cmd":"peer_show","args":{"peer":"still here"}}"#);
        assert_eq!(rep.result, Some(serde_json::json!("still here")));
        // A second client at the same time.
        let (mut s2, mut r2) = client(&path);
        assert!(ask(&mut s2, &mut r2, r#"{"id":9,"cmd":"peer_show","args":{"peer":"y"}}"#).ok);
        server.stop();
        assert!(!path.exists(), "stop removes the socket");
    }

    #[test]
    fn a_stream_sends_its_data_lines_in_order_then_one_closing_reply_then_the_next_answer() {
        let path = temp_path("stream");
        let server = ControlServer::start(&path, Box::new(Echo)).unwrap();
        let (mut s, mut r) = client(&path);
        // Two requests at once: the second is answered after the stream ends.
        let n = 3000;
        let first = format!(r#"{{"id":3,"cmd":"peer_reset","args":{{"peer":"{}"}}}}"#, "x".repeat(n));
        s.write_all(
            format!("{first}\n{{\"id\":4,\"cmd\":\"peer_show\",\"args\":{{\"peer\":\"after\"}}}}\n").as_bytes(),
        )
        .unwrap();
        for i in 0..n {
            let mut line = String::new();
            r.read_line(&mut line).unwrap();
            let v: StreamLine = serde_json::from_str(&line).unwrap_or_else(|e| panic!("line {i}: {e}: {line}"));
            assert_eq!((v.id, v.data), (3, serde_json::json!(i)));
        }
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        let end: Reply = serde_json::from_str(&line).unwrap();
        assert_eq!((end.id, end.ok, end.result), (3, true, Some(serde_json::json!({ "count": n }))));
        line.clear();
        r.read_line(&mut line).unwrap();
        let next: Reply = serde_json::from_str(&line).unwrap();
        assert_eq!((next.id, next.result), (4, Some(serde_json::json!("after"))));
        server.stop();
    }

    #[test]
    fn stale_socket_is_replaced_other_files_are_not() {
        let path = temp_path("stale");
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap()); // leaves a dead socket file
        let server = ControlServer::start(&path, Box::new(Echo)).unwrap();
        let err = ControlServer::start(&path, Box::new(Echo)).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("another focld"), "{err}");
        server.stop();
        let file = temp_path("file");
        std::fs::write(&file, b"keep me").unwrap();
        let err = ControlServer::start(&file, Box::new(Echo)).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(err.contains("not a socket"), "{err}");
        assert_eq!(std::fs::read(&file).unwrap(), b"keep me");
        let _ = std::fs::remove_file(&file);
    }
}
