//! The RTR CLIENT THREAD (RPKI): one thread for every RTR cache (RFC 8210 / RFC 6810) and VRP
//! file, and route origin validation (RFC 6811) against the VRPs in use.
//!
//! Fed by: the caches' sockets (a mio `Poll`, one token each; `Token(0)` is the waker) and its
//! inbox (`RpkiMsg`: status and lookups from the control thread, reload and stop from the main
//! thread). Emits: RTR queries and Error Reports to the caches; answers to focl.
//!
//! The VRPs in use are the files' plus those of the most preferred caches that are connected
//! and synchronized (RFC 8210 §10); when none is connected, the most preferred caches whose
//! data has not expired. A response is used only once its End of Data arrives. A dead or slow
//! cache stalls nothing else: every socket is nonblocking, a cache's input is bounded by the
//! PDU size limit and its data by `cache::MAX_VRPS`.
//!
//! Pure cores: `pdu.rs` (the RTR PDUs both ways), `cache.rs` (one cache session: queries,
//! responses committed at End of Data, timers, version downgrade), `vrp.rs` (VRPs, the table
//! and RFC 6811 validation).

pub mod aspa;
pub mod cache;
pub mod packed;
pub mod pdu;
pub mod vrp;

use crate::config::{RpkiConfig, RtrCacheConfig, VrpFileConfig};
use crate::control::proto::{RpkiLookup, RpkiStatus, RtrCacheStatus, VrpEntry, VrpFileStatus};
use crate::msg::{RibMsg, RpkiLink, RpkiMsg};
use crate::prefix::Prefix;
use crate::session::sock;
use crate::utc::unix_secs;
use aspa::{AspaRecords, AspaTable};
use cache::{CacheSession, Out, Phase, TimerOverrides};
use crossbeam_channel::{Receiver, SendTimeoutError, Sender};
use log::{info, warn};
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token, Waker};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};
use vrp::{VrpSet, VrpSource, VrpTable};

const WAKER: Token = Token(0);
/// How long a connection attempt may take before it counts as failed.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Requests queued for the thread.
const INBOX_CAPACITY: usize = 64;
/// Changed VRP prefixes that make it worth giving freed memory back.
const GIVE_BACK_AFTER_CHANGES: usize = 10_000;
/// How long the RTR thread waits for the RIB to take a new VRP table.
const RIB_SEND_BOUND: Duration = Duration::from_secs(1);

/// Owns the RTR thread.
pub struct RpkiHandle {
    pub link: RpkiLink,
    join: Option<JoinHandle<()>>,
}

impl RpkiHandle {
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(j) = self.join.take() {
            self.link.send(RpkiMsg::Stop);
            let _ = j.join();
        }
    }
}

impl Drop for RpkiHandle {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// `rib` hears of every new VRP table, with the VRP prefixes that changed.
pub fn spawn(cfg: &RpkiConfig, rib: Sender<RibMsg>) -> io::Result<RpkiHandle> {
    let poll = Poll::new()?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
    let (tx, rx) = crossbeam_channel::bounded(INBOX_CAPACITY);
    let link = RpkiLink::new(tx, waker);
    let cfg = cfg.clone();
    let join = std::thread::Builder::new().name("rtr".into()).spawn(move || {
        let mut r = Rtr {
            poll,
            caches: Vec::new(),
            files: Vec::new(),
            table: Arc::new(VrpTable::default()),
            next_token: 1,
            rib,
            unsent: Vec::new(),
        };
        r.reconfigure(&cfg);
        r.run(rx);
    })?;
    Ok(RpkiHandle { link, join: Some(join) })
}

/// A connection to a cache.
struct Conn {
    stream: TcpStream,
    connected: bool,
    started: Instant,
    input: Vec<u8>,
    output: Vec<u8>,
}

struct Cache {
    cfg: RtrCacheConfig,
    token: Token,
    session: CacheSession,
    conn: Option<Conn>,
    /// When to connect next (while there is no connection).
    connect_at: Option<Instant>,
    last_update: Option<SystemTime>,
}

struct VrpFile {
    cfg: VrpFileConfig,
    vrps: VrpSet,
    aspas: AspaRecords,
    loaded_at: Option<SystemTime>,
    last_error: Option<String>,
}

impl VrpFile {
    fn load(&mut self) {
        let r = std::fs::read_to_string(&self.cfg.path).map_err(|e| e.to_string()).and_then(|t| vrp::parse_file(&t));
        match r {
            Ok((v, a)) => {
                info!("rpki: {} VRPs and {} ASPA records from {}", v.len(), a.len(), self.cfg.path.display());
                self.vrps = v;
                self.aspas = a;
                self.loaded_at = Some(SystemTime::now());
                self.last_error = None;
            }
            // The VRPs read before stay in use: a file being rewritten is no reason to drop them.
            Err(e) => {
                warn!(
                    "rpki: cannot read {}: {e}; keeping the {} VRPs read before",
                    self.cfg.path.display(),
                    self.vrps.len()
                );
                self.last_error = Some(e);
            }
        }
    }
}

struct Rtr {
    poll: Poll,
    caches: Vec<Cache>,
    files: Vec<VrpFile>,
    table: Arc<VrpTable>,
    next_token: usize,
    /// The RIB validates its routes against `table` (RFC 6811).
    rib: Sender<RibMsg>,
    /// Changed VRP prefixes the RIB has not been told of (it was too busy to take them).
    unsent: Vec<Prefix>,
}

impl Rtr {
    fn run(&mut self, rx: Receiver<RpkiMsg>) {
        let mut events = Events::with_capacity(64);
        loop {
            let now = Instant::now();
            let timeout = self.next_deadline().map(|d| d.saturating_duration_since(now));
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    warn!("rpki: poll failed: {e}");
                    return;
                }
            }
            let tokens: Vec<Token> = events.iter().map(|e| e.token()).collect();
            for t in tokens {
                if t == WAKER {
                    continue;
                }
                if let Some(i) = self.caches.iter().position(|c| c.token == t) {
                    self.on_ready(i);
                }
            }
            while let Ok(msg) = rx.try_recv() {
                match msg {
                    RpkiMsg::Status(reply) => {
                        let _ = reply.send(self.status());
                    }
                    RpkiMsg::Lookup { prefix, origin, reply } => {
                        let (state, vrps) = self.table.validate(&prefix, Some(origin));
                        let _ = reply.send(RpkiLookup {
                            prefix: prefix.to_string(),
                            origin,
                            state: state.name().to_string(),
                            vrps: vrps
                                .iter()
                                .map(|v| VrpEntry { prefix: v.prefix.to_string(), max_length: v.max_len, asn: v.asn })
                                .collect(),
                        });
                    }
                    RpkiMsg::Reconfigure(cfg) => self.reconfigure(&cfg),
                    RpkiMsg::Stop => {
                        for i in 0..self.caches.len() {
                            self.close(i);
                        }
                        return;
                    }
                }
            }
            self.fire_timers(Instant::now());
        }
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.caches
            .iter()
            .flat_map(|c| {
                let connecting = c.conn.as_ref().filter(|k| !k.connected).map(|k| k.started + CONNECT_TIMEOUT);
                [c.connect_at, connecting, c.session.next_refresh, c.session.expires_at()]
            })
            .flatten()
            .min()
    }

    /// Apply `[rpki]`: unchanged caches keep their sessions, files are read again.
    fn reconfigure(&mut self, cfg: &RpkiConfig) {
        let mut keep = Vec::new();
        for (i, c) in self.caches.iter().enumerate() {
            if cfg.caches.contains(&c.cfg) {
                keep.push(i);
            }
        }
        for i in (0..self.caches.len()).rev() {
            if !keep.contains(&i) {
                info!("rpki {}: removed from the configuration", self.caches[i].cfg.label());
                self.close(i);
                self.caches.remove(i);
            }
        }
        for c in &cfg.caches {
            if self.caches.iter().any(|k| k.cfg == *c) {
                continue;
            }
            let token = Token(self.next_token);
            self.next_token += 1;
            let overrides = TimerOverrides { refresh: c.refresh_secs, retry: c.retry_secs, expire: c.expire_secs };
            self.caches.push(Cache {
                cfg: c.clone(),
                token,
                session: CacheSession::new(&c.label(), c.min_version, c.max_version, overrides),
                conn: None,
                connect_at: Some(Instant::now()),
                last_update: None,
            });
        }
        let old = std::mem::take(&mut self.files);
        for f in &cfg.files {
            let mut file = old
                .iter()
                .find(|o| o.cfg == *f)
                .map(|o| VrpFile {
                    cfg: f.clone(),
                    vrps: o.vrps.clone(),
                    aspas: o.aspas.clone(),
                    loaded_at: o.loaded_at,
                    last_error: None,
                })
                .unwrap_or(VrpFile {
                    cfg: f.clone(),
                    vrps: VrpSet::default(),
                    aspas: AspaRecords::new(),
                    loaded_at: None,
                    last_error: None,
                });
            file.load();
            self.files.push(file);
        }
        self.rebuild();
    }

    /// The caches in use: the most preferred connected and synchronized ones; when none is
    /// connected, the most preferred ones whose data has not expired.
    fn in_use(&self, now: Instant) -> Vec<usize> {
        let pick = |usable: &dyn Fn(&Cache) -> bool| -> Vec<usize> {
            let best = self.caches.iter().filter(|c| usable(c)).map(|c| c.cfg.preference).min();
            match best {
                Some(p) => (0..self.caches.len())
                    .filter(|&i| usable(&self.caches[i]) && self.caches[i].cfg.preference == p)
                    .collect(),
                None => Vec::new(),
            }
        };
        let live = pick(&|c: &Cache| c.session.fresh(now) && c.conn.as_ref().is_some_and(|k| k.connected));
        if !live.is_empty() {
            return live;
        }
        pick(&|c: &Cache| c.session.fresh(now))
    }

    fn rebuild(&mut self) {
        let now = Instant::now();
        let used = self.in_use(now);
        let sets = self.files.iter().map(|f| &f.vrps).chain(used.iter().map(|&i| &self.caches[i].session.data));
        let mut table = VrpTable::from_sets(sets);
        table.aspas = AspaTable::from_sets(
            self.files.iter().map(|f| &f.aspas).chain(used.iter().map(|&i| &self.caches[i].session.aspas)),
        );
        table.sources = self.sources(&used);
        table.configured = !self.caches.is_empty() || !self.files.is_empty();
        if table.len() != self.table.len() {
            info!("rpki: {} VRPs in use", table.len());
        }
        let mut changed = table.changed_prefixes(&self.table);
        let same_sources = table.sources == self.table.sources
            && table.configured == self.table.configured
            && table.aspas == self.table.aspas;
        self.table = Arc::new(table);
        // A new serial or ASPA set with the same VRPs still goes to the RIB: ASPA verdicts
        // follow it, and the archive beside the next RIB snapshot names the serial in effect.
        if changed.is_empty() && self.unsent.is_empty() && same_sources {
            return;
        }
        // After a large change (a first table, a cache reset, a new file) the file's text,
        // its parse and the old table are freed: give the pages back. Not after every serial
        // update: trimming walks every arena and briefly holds up the threads that allocate.
        if changed.len() > GIVE_BACK_AFTER_CHANGES {
            crate::mem::give_back_memory();
        }
        changed.append(&mut self.unsent);
        // The RIB takes messages quickly; a RIB that does not within the bound gets these
        // changes with the next table instead (the RTR thread must not wait on it).
        let msg = RibMsg::Vrps { table: self.table.clone(), changed };
        match self.rib.send_timeout(msg, RIB_SEND_BOUND) {
            Ok(()) => {}
            Err(SendTimeoutError::Timeout(RibMsg::Vrps { changed, .. })) => {
                warn!("rpki: the RIB did not take the new VRPs within {RIB_SEND_BOUND:?}; sent with the next change");
                self.unsent = changed;
            }
            Err(_) => {}
        }
    }

    fn connect(&mut self, i: usize) {
        let c = &mut self.caches[i];
        c.connect_at = None;
        let addr = SocketAddr::new(c.cfg.address, c.cfg.port);
        let md5 = c.cfg.password.as_deref().map(str::as_bytes);
        match sock::connect(addr, None, md5) {
            Ok(std_stream) => {
                let mut stream = TcpStream::from_std(std_stream);
                if let Err(e) =
                    self.poll.registry().register(&mut stream, c.token, Interest::READABLE | Interest::WRITABLE)
                {
                    warn!("rpki {}: cannot watch the connection: {e}", c.cfg.label());
                    c.connect_at = Some(Instant::now() + c.session.retry_after());
                    return;
                }
                c.conn = Some(Conn {
                    stream,
                    connected: false,
                    started: Instant::now(),
                    input: Vec::new(),
                    output: Vec::new(),
                });
            }
            Err(e) => self.fail(i, format!("cannot connect: {e}")),
        }
    }

    /// The connection is gone or unusable: close it, try again after the retry interval.
    fn fail(&mut self, i: usize, reason: String) {
        let retry = self.caches[i].session.retry_after();
        self.reconnect(i, retry, reason);
    }

    fn reconnect(&mut self, i: usize, after: Duration, reason: String) {
        let was_connected = self.caches[i].conn.as_ref().is_some_and(|k| k.connected);
        self.close(i);
        let c = &mut self.caches[i];
        if c.session.last_error.as_deref() != Some(reason.as_str()) {
            warn!("rpki {}: {reason}; trying again in {} s", c.cfg.label(), after.as_secs_f32());
        }
        c.session.on_disconnected(&reason);
        c.session.last_error = Some(reason);
        c.connect_at = Some(Instant::now() + after);
        if was_connected {
            self.rebuild();
        }
    }

    fn close(&mut self, i: usize) {
        if let Some(mut k) = self.caches[i].conn.take() {
            let _ = self.poll.registry().deregister(&mut k.stream);
            let _ = k.stream.shutdown(std::net::Shutdown::Both);
        }
    }

    fn on_ready(&mut self, i: usize) {
        let Some(k) = self.caches[i].conn.as_mut() else { return };
        if !k.connected {
            match k.stream.take_error() {
                Ok(None) if k.stream.peer_addr().is_ok() => {}
                Ok(None) => return, // not yet
                Ok(Some(e)) | Err(e) => return self.fail(i, format!("cannot connect: {e}")),
            }
            k.connected = true;
            info!("rpki {}: connected (RTR version {})", self.caches[i].cfg.label(), self.caches[i].session.version);
            let outs = self.caches[i].session.on_connected();
            self.carry_out(i, outs);
        }
        // Read what there is, bounded: a PDU is at most `MAX_PDU` bytes.
        let mut buf = [0u8; 16 * 1024];
        loop {
            let Some(k) = self.caches[i].conn.as_mut() else { return };
            match k.stream.read(&mut buf) {
                Ok(0) => return self.fail(i, "the cache closed the connection".into()),
                Ok(n) => k.input.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return self.fail(i, format!("read: {e}")),
            }
            if !self.take_pdus(i) {
                return;
            }
        }
        if self.take_pdus(i) {
            self.flush(i);
        }
    }

    /// Decode and apply every whole PDU in the input; false when the connection went.
    fn take_pdus(&mut self, i: usize) -> bool {
        loop {
            let version = self.caches[i].session.version;
            let Some(k) = self.caches[i].conn.as_mut() else { return false };
            match pdu::decode(&k.input, version) {
                Ok(None) => return true,
                Ok(Some((used, p))) => {
                    k.input.drain(..used);
                    let outs = self.caches[i].session.on_pdu(p, Instant::now());
                    if !self.carry_out(i, outs) {
                        return false;
                    }
                }
                Err(e) => {
                    let raw = k.input.get(..k.input.len().min(64)).unwrap_or_default().to_vec();
                    let outs = self.caches[i].session.on_decode_error(&e, &raw);
                    self.carry_out(i, outs);
                    return false;
                }
            }
        }
    }

    /// Carry out a session's actions; false when the connection was closed.
    fn carry_out(&mut self, i: usize, outs: Vec<Out>) -> bool {
        let mut open = true;
        for o in outs {
            match o {
                Out::Send(bytes) => {
                    if let Some(k) = self.caches[i].conn.as_mut() {
                        k.output.extend_from_slice(&bytes);
                    }
                    self.flush(i);
                }
                Out::Reconnect { after, reason } => {
                    self.flush(i);
                    self.reconnect(i, after, reason);
                    open = false;
                }
                Out::DataChanged => {
                    let c = &mut self.caches[i];
                    c.last_update = Some(SystemTime::now());
                    info!(
                        "rpki {}: {} VRPs, serial {}",
                        c.cfg.label(),
                        c.session.data.len(),
                        c.session.serial.map(|s| s.to_string()).unwrap_or_else(|| "-".into())
                    );
                    self.rebuild();
                }
            }
        }
        open
    }

    fn flush(&mut self, i: usize) {
        let Some(k) = self.caches[i].conn.as_mut().filter(|k| k.connected) else { return };
        while !k.output.is_empty() {
            match k.stream.write(&k.output) {
                Ok(0) => break,
                Ok(n) => {
                    k.output.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return self.fail(i, format!("write: {e}")),
            }
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        for i in 0..self.caches.len() {
            let c = &self.caches[i];
            if c.conn.as_ref().is_some_and(|k| !k.connected && now >= k.started + CONNECT_TIMEOUT) {
                self.fail(i, "connection attempt timed out".into());
                continue;
            }
            if c.conn.is_none() && c.connect_at.is_some_and(|t| now >= t) {
                self.connect(i);
                continue;
            }
            if c.session.next_refresh.is_some_and(|t| now >= t) {
                let outs = self.caches[i].session.on_refresh(now);
                self.carry_out(i, outs);
            }
            if self.caches[i].session.expires_at().is_some_and(|t| now >= t) {
                let outs = self.caches[i].session.on_expire();
                self.carry_out(i, outs);
            }
        }
    }

    /// The files and the caches in use (`used`), as the table's sources.
    fn sources(&self, used: &[usize]) -> Vec<VrpSource> {
        let files = self.files.iter().map(|f| VrpSource {
            kind: "file".into(),
            name: f.cfg.path.display().to_string(),
            vrps: f.vrps.len() as u64,
            aspas: f.aspas.len() as u64,
            updated_at: f.loaded_at.map(unix_secs),
            ..VrpSource::default()
        });
        let caches = used.iter().map(|&i| &self.caches[i]).map(|c| VrpSource {
            kind: "cache".into(),
            name: c.cfg.label(),
            version: Some(c.session.version),
            session_id: c.session.session_id,
            serial: c.session.serial,
            vrps: c.session.data.len() as u64,
            aspas: c.session.aspas.len() as u64,
            updated_at: c.last_update.map(unix_secs),
        });
        files.chain(caches).collect()
    }

    fn status(&self) -> RpkiStatus {
        let now = Instant::now();
        let used = self.in_use(now);
        RpkiStatus {
            vrps_in_use: self.table.len() as u64,
            aspas_in_use: self.table.aspas.len() as u64,
            caches: self
                .caches
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let state = match (&c.conn, c.session.phase) {
                        (Some(k), _) if !k.connected => "connecting",
                        (None, _) => Phase::Down.name(),
                        (_, p) => p.name(),
                    };
                    RtrCacheStatus {
                        cache: c.cfg.label(),
                        preference: c.cfg.preference,
                        state: state.to_string(),
                        in_use: used.contains(&i),
                        version: c.session.version,
                        session_id: c.session.session_id,
                        serial: c.session.serial,
                        vrps: c.session.data.len() as u64,
                        aspas: c.session.aspas.len() as u64,
                        last_update: c.last_update.map(unix_secs),
                        refresh_secs: c.session.timers.refresh,
                        retry_secs: c.session.timers.retry,
                        expire_secs: c.session.timers.expire,
                        last_error: c.session.last_error.clone(),
                    }
                })
                .collect(),
            files: self
                .files
                .iter()
                .map(|f| VrpFileStatus {
                    path: f.cfg.path.display().to_string(),
                    vrps: f.vrps.len() as u64,
                    aspas: f.aspas.len() as u64,
                    loaded_at: f.loaded_at.map(unix_secs),
                    last_error: f.last_error.clone(),
                })
                .collect(),
        }
    }
}
