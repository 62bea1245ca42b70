//! Test harness: focld processes with their own config and control socket, focl queries, and
//! a minimal raw BGP speaker for sending hand-made messages. Everything talks to loopback only.
#![allow(dead_code)]

use focl::prefix::Family;
use focl::wire::frame::{self, Framer, MsgType};
use focl::wire::open::{Capabilities, OpenMsg};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub fn focld_bin() -> &'static str {
    env!("CARGO_BIN_EXE_focld")
}

pub fn focl_bin() -> &'static str {
    env!("CARGO_BIN_EXE_focl")
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let nanos =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
        let p = std::env::temp_dir().join(format!("focl-test-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).expect("create temp dir");
        TempDir(p)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A free TCP port on `ip` (bound and released; good enough on loopback in tests).
pub fn free_port(ip: &str) -> u16 {
    let l = TcpListener::bind((ip, 0)).expect("bind to find a free port");
    l.local_addr().expect("local addr").port()
}

/// A focld child process; killed on drop.
pub struct Focld {
    pub child: Option<Child>,
    pub config: PathBuf,
    pub socket: PathBuf,
    pub log: PathBuf,
    /// Extra environment for the focld process.
    pub env: Vec<(String, String)>,
}

impl Focld {
    /// Write `config_text` to DIR/NAME.toml and start focld on it; wait for its control socket.
    pub fn start(dir: &Path, name: &str, config_text: &str) -> Focld {
        Focld::start_with_env(dir, name, config_text, &[])
    }

    /// `start` with extra environment variables (e.g. AWS credentials).
    pub fn start_with_env(dir: &Path, name: &str, config_text: &str, env: &[(&str, &str)]) -> Focld {
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(&config, config_text).expect("write config");
        let socket = dir.join(format!("{name}.sock"));
        let log = dir.join(format!("{name}.log"));
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut f = Focld { child: None, config, socket, log, env };
        f.spawn();
        f
    }

    /// Start several focld at the same instant (all launched before any is waited for).
    pub fn start_together(dir: &Path, configs: &[(&str, &str)]) -> Vec<Focld> {
        let mut all: Vec<Focld> = configs
            .iter()
            .map(|(name, text)| {
                let config = dir.join(format!("{name}.toml"));
                std::fs::write(&config, text).expect("write config");
                let (socket, log) = (dir.join(format!("{name}.sock")), dir.join(format!("{name}.log")));
                Focld { child: None, config, socket, log, env: Vec::new() }
            })
            .collect();
        for f in &mut all {
            f.launch();
        }
        for f in &all {
            f.wait_ready();
        }
        all
    }

    pub fn spawn(&mut self) {
        self.launch();
        self.wait_ready();
    }

    /// Start the process, without waiting for it.
    fn launch(&mut self) {
        let log = std::fs::OpenOptions::new().create(true).append(true).open(&self.log).expect("open log");
        let child = Command::new(focld_bin())
            .arg("--config")
            .arg(&self.config)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn focld");
        self.child = Some(child);
    }

    /// Wait until the control socket answers.
    fn wait_ready(&self) {
        let ok = wait_for(Duration::from_secs(10), || self.socket.exists() && self.query("peer_list").is_ok());
        assert!(ok, "focld did not come up; log:\n{}", self.log_text());
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait up to 10 s for a clean exit; returns the exit status code.
    pub fn terminate(&mut self) -> Option<i32> {
        let mut c = self.child.take()?;
        // SAFETY: plain kill(2) on our own child.
        unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(st)) = c.try_wait() {
                return st.code();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = c.kill();
        let _ = c.wait();
        None
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Run `focl -s SOCK -j ARGS...`; Ok(JSON) on exit 0, Err(stderr) otherwise.
    pub fn focl(&self, args: &[&str]) -> Result<Value, String> {
        let out = Command::new(focl_bin())
            .arg("-s")
            .arg(&self.socket)
            .arg("-j")
            .args(args)
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        serde_json::from_slice(&out.stdout)
            .map_err(|e| format!("bad JSON from focl: {e}: {}", String::from_utf8_lossy(&out.stdout)))
    }

    /// Ask the control socket directly (no focl process).
    pub fn query(&self, cmd: &str) -> Result<Value, String> {
        self.request(cmd, serde_json::json!({}))
    }

    pub fn request(&self, cmd: &str, args: Value) -> Result<Value, String> {
        use std::os::unix::net::UnixStream;
        let mut s = UnixStream::connect(&self.socket).map_err(|e| e.to_string())?;
        s.set_read_timeout(Some(Duration::from_secs(10))).map_err(|e| e.to_string())?;
        let line = serde_json::json!({"id": 7, "cmd": cmd, "args": args}).to_string() + "\n";
        s.write_all(line.as_bytes()).map_err(|e| e.to_string())?;
        let mut buf = Vec::new();
        let mut byte = [0u8; 1];
        while s.read(&mut byte).map_err(|e| e.to_string())? == 1 && byte[0] != b'\n' {
            buf.push(byte[0]);
        }
        let v: Value = serde_json::from_slice(&buf).map_err(|e| e.to_string())?;
        if v["ok"] == Value::Bool(true) {
            Ok(v["result"].clone())
        } else {
            Err(v["error"].to_string())
        }
    }

    /// The state of a peer as `peer show` reports it.
    pub fn peer_state(&self, peer: &str) -> String {
        self.request("peer_show", serde_json::json!({"peer": peer}))
            .map(|v| v["state"].as_str().unwrap_or("").to_string())
            .unwrap_or_default()
    }

    /// Wait until the peer is Established.
    pub fn wait_established(&self, peer: &str, within: Duration) {
        let ok = wait_for(within, || self.peer_state(peer) == "Established");
        assert!(ok, "neighbor {peer} not Established (state {}); log:\n{}", self.peer_state(peer), self.log_text());
    }

    /// Prefixes of `rib in PEER`.
    pub fn rib_in(&self, peer: &str) -> Vec<Value> {
        self.request("rib_in", serde_json::json!({"peer": peer}))
            .ok()
            .and_then(|v| v["routes"].as_array().cloned())
            .unwrap_or_default()
    }

    pub fn rib_in_prefixes(&self, peer: &str) -> Vec<String> {
        let mut v: Vec<String> =
            self.rib_in(peer).iter().filter_map(|r| r["prefix"].as_str().map(String::from)).collect();
        v.sort();
        v
    }
}

impl Drop for Focld {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Poll `f` every 100 ms until it is true or `within` has passed.
pub fn wait_for(within: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if f() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A hand-driven BGP speaker over a blocking TCP stream, for sending crafted messages.
pub struct RawSpeaker {
    pub stream: TcpStream,
    framer: Framer,
}

impl RawSpeaker {
    /// Connect from `local` to focld at `remote` and complete the OPEN/KEEPALIVE exchange.
    pub fn establish(local: &str, remote: SocketAddr, asn: u32, router_id: Ipv4Addr) -> RawSpeaker {
        let caps = Capabilities {
            families: Family::ALL.to_vec(),
            route_refresh: true,
            four_octet_as: Some(asn),
            ..Default::default()
        };
        RawSpeaker::establish_with(local, remote, &OpenMsg::new(asn, 90, router_id, caps))
    }

    /// `establish` with our own OPEN (e.g. a 2-octet AS speaker, without RFC 6793).
    pub fn establish_with(local: &str, remote: SocketAddr, open: &OpenMsg) -> RawSpeaker {
        let stream = connect_from(local, remote);
        stream.set_read_timeout(Some(Duration::from_secs(10))).expect("timeout");
        let mut s = RawSpeaker { stream, framer: Framer::new() };
        s.send(&open.encode());
        let (ty, _) = s.recv().expect("OPEN from focld");
        assert_eq!(ty, MsgType::Open);
        s.send(&frame::keepalive());
        // focld answers with KEEPALIVE; then UPDATEs (its announcements, End-of-RIB).
        let (ty, _) = s.recv().expect("KEEPALIVE from focld");
        assert_eq!(ty, MsgType::Keepalive);
        s
    }

    pub fn from_stream(stream: TcpStream) -> RawSpeaker {
        RawSpeaker { stream, framer: Framer::new() }
    }

    pub fn send(&mut self, msg: &[u8]) {
        self.stream.write_all(msg).expect("write to focld");
    }

    /// Next whole message, or None at end of stream / timeout.
    pub fn recv(&mut self) -> Option<(MsgType, Vec<u8>)> {
        let mut buf = [0u8; 4096];
        loop {
            if let Ok(Some((ty, raw))) = self.framer.next_message() {
                return Some((ty, raw.to_vec()));
            }
            match self.stream.read(&mut buf) {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.framer.feed(&buf[..n]),
            }
        }
    }
}

/// A blocking TCP connection from a chosen loopback source address.
pub fn connect_from(local: &str, remote: SocketAddr) -> TcpStream {
    let s = focl::session::sock::connect(remote, Some(local.parse().expect("local ip")), None).expect("connect");
    s.set_nonblocking(false).expect("blocking");
    let deadline = Instant::now() + Duration::from_secs(5);
    // The connect was started nonblocking: wait until it completes.
    while s.peer_addr().is_err() {
        assert!(Instant::now() < deadline, "connect to {remote} did not complete");
        std::thread::sleep(Duration::from_millis(10));
    }
    s
}

/// Open an MRT file, decompressing by its extension (.gz, .bz2, or none).
pub fn open_mrt(path: &Path) -> Box<dyn Read + Send> {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let name = path.to_string_lossy();
    if name.ends_with(".gz") {
        Box::new(flate2::read::MultiGzDecoder::new(f))
    } else if name.ends_with(".bz2") {
        Box::new(bzip2::read::MultiBzDecoder::new(f))
    } else {
        Box::new(f)
    }
}

/// Every record of an MRT file, raw (header parsed, body as bytes), via bgpkit-parser.
pub fn mrt_records(path: &Path) -> Vec<bgpkit_parser::parser::mrt::mrt_record::RawMrtRecord> {
    bgpkit_parser::BgpkitParser::from_reader(open_mrt(path)).into_raw_record_iter().collect()
}

/// The BGP message inside a BGP4MP MESSAGE/MESSAGE_AS4 body (RFC 6396 §4.4.2/§4.4.3):
/// (peer IP, message bytes).
pub fn bgp4mp_message(subtype: u16, body: &[u8]) -> Option<(std::net::IpAddr, Vec<u8>)> {
    let as_len = match subtype {
        1 => 2,
        4 => 4,
        _ => return None,
    };
    let afi_at = 2 * as_len + 2;
    let afi = u16::from_be_bytes([*body.get(afi_at)?, *body.get(afi_at + 1)?]);
    let ip_len = if afi == 1 { 4 } else { 16 };
    let peer = body.get(afi_at + 2..afi_at + 2 + ip_len)?;
    let ip = if afi == 1 {
        std::net::IpAddr::from(<[u8; 4]>::try_from(peer).ok()?)
    } else {
        std::net::IpAddr::from(<[u8; 16]>::try_from(peer).ok()?)
    };
    Some((ip, body.get(afi_at + 2 + 2 * ip_len..)?.to_vec()))
}

/// Finished archive files under `dir` whose name contains `kind` ("updates", "rib", "bview"),
/// manifests excluded, sorted.
pub fn archive_files(dir: &Path, kind: &str) -> Vec<PathBuf> {
    fn walk(d: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut all = Vec::new();
    walk(dir, &mut all);
    let mut v: Vec<PathBuf> = all
        .into_iter()
        .filter(|p| {
            let n = p.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            n.contains(kind) && !n.ends_with(".json") && !n.starts_with('.')
        })
        .collect();
    v.sort();
    v
}

/// Whether process `pid` is running: it exists and is not a zombie (a detached focld is
/// reparented to whatever reaps orphans here, which may be slow to).
pub fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/status")) {
        Ok(s) => !s.lines().any(|l| l.starts_with("State:") && l.contains('Z')),
        Err(_) => false,
    }
}

/// The `[global]` section of the loopback tests: AS 65001, router id 192.0.2.1, listening on
/// 127.0.0.1:PORT, the control socket DIR/f.sock, debug logging.
pub fn global_section(dir: &Path, port: u16) -> String {
    format!(
        "[global]\nasn = 65001\nrouter_id = \"192.0.2.1\"\nlisten_addr = \"127.0.0.1:{port}\"\n\
         control_socket = \"{}/f.sock\"\nlog_level = \"debug\"\n",
        dir.display()
    )
}

/// An UPDATE message from its parts (RFC 4271 §4.3).
pub fn update_msg(withdrawn: &[u8], attrs: &[u8], nlri: &[u8]) -> Vec<u8> {
    let mut m = vec![0xff; 16];
    m.extend_from_slice(&((19 + 4 + withdrawn.len() + attrs.len() + nlri.len()) as u16).to_be_bytes());
    m.push(2);
    m.extend_from_slice(&(withdrawn.len() as u16).to_be_bytes());
    m.extend_from_slice(withdrawn);
    m.extend_from_slice(&(attrs.len() as u16).to_be_bytes());
    m.extend_from_slice(attrs);
    m.extend_from_slice(nlri);
    m
}
