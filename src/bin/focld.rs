//! focld: the BGP speaker and route collector daemon.
//!
//! Reads and checks the configuration, optionally detaches (`-d`), takes the pidfile, starts
//! the daemon's threads (see the library docs for the thread diagram) and then serves signals
//! and reload requests from the main thread: SIGTERM/SIGINT stop, SIGHUP reopens the log file
//! and reloads the configuration. Signal handlers only set flags; the main thread polls them.

use argh::FromArgs;
use focl::config::{self, Config};
use focl::control::proto::{code, CtlError};
use focl::daemon::Daemon;
use focl::privs;
use log::{error, info, warn, LevelFilter};
use simplelog::{ColorChoice, ConfigBuilder, TermLogger, TerminalMode, WriteLogger};
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Where focld looks for its configuration without -c.
const DEFAULT_CONFIG: &str = "/etc/focl.toml";

/// focld: a BGP speaker and MRT route collector. See focld(8).
#[derive(FromArgs)]
struct Args {
    /// configuration file (TOML, see focl.toml(5)); default /etc/focl.toml
    #[argh(option, short = 'c')]
    config: Option<PathBuf>,
    /// check the configuration and exit: 0 if valid, 1 with every error otherwise
    #[argh(switch, short = 'n')]
    check: bool,
    /// with -n: print the effective configuration, defaults filled in
    #[argh(switch, short = 'v')]
    verbose: bool,
    /// detach: run in the background, logging to global.log_file
    #[argh(switch, short = 'd')]
    daemon: bool,
    /// write the process id to this file once started; refuse to start if another focld holds it
    #[argh(option, short = 'p')]
    pidfile: Option<PathBuf>,
    /// print the version and exit
    #[argh(switch, short = 'V')]
    version: bool,
    /// started after a planned restart (SIGUSR2): tell peers with graceful_restart = "on"
    /// (RFC 4724 restart and forwarding bits) so they keep focld's routes until End-of-RIB
    #[argh(switch, short = 'R')]
    graceful_restart: bool,
}

static STOP: AtomicBool = AtomicBool::new(false);
static HUP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// SIGUSR2: stop for a planned restart (graceful restart, RFC 4724 §4.1).
static GRACEFUL: AtomicBool = AtomicBool::new(false);

extern "C" fn on_graceful_signal(_: libc::c_int) {
    GRACEFUL.store(true, Ordering::SeqCst);
    STOP.store(true, Ordering::SeqCst);
}

extern "C" fn on_hup_signal(_: libc::c_int) {
    HUP.store(true, Ordering::SeqCst);
}

fn install_signal_handlers() {
    let stop = on_stop_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    let hup = on_hup_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handlers only store to atomics, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGTERM, stop);
        libc::signal(libc::SIGINT, stop);
        libc::signal(libc::SIGHUP, hup);
        libc::signal(libc::SIGUSR2, on_graceful_signal as extern "C" fn(libc::c_int) as libc::sighandler_t);
        // A peer closing its end must not kill the daemon: writes return EPIPE instead.
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// The log file, reopened by path on SIGHUP (so logrotate and newsyslog can move it away).
#[derive(Clone)]
struct LogFile {
    inner: Arc<Mutex<(PathBuf, File)>>,
}

impl LogFile {
    fn open(path: &Path) -> io::Result<LogFile> {
        let f = open_log(path)?;
        Ok(LogFile { inner: Arc::new(Mutex::new((path.to_path_buf(), f))) })
    }

    /// Open `path` (the same or a new one) and write there from now on; on failure keep the old.
    fn reopen(&self, path: &Path) -> io::Result<()> {
        let f = open_log(path)?;
        let mut g = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        *g = (path.to_path_buf(), f);
        Ok(())
    }

    fn path(&self) -> PathBuf {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).0.clone()
    }
}

fn open_log(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)
        .map_err(|e| io::Error::new(e.kind(), format!("cannot open log file {}: {e}", path.display())))
}

impl Write for LogFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).1.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner()).1.flush()
    }
}

/// The pidfile, locked (flock) for as long as focld runs.
struct PidFile {
    path: PathBuf,
    file: File,
}

impl PidFile {
    /// Create or open `path` and lock it; another live focld holding it is an error.
    fn acquire(path: &Path) -> Result<PidFile, String> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o644)
            .open(path)
            .map_err(|e| format!("cannot open pidfile {}: {e}", path.display()))?;
        // SAFETY: flock on a file descriptor we own.
        let locked = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } == 0;
        if !locked {
            // The holder of the lock is a running focld; its pid is in the file.
            let mut text = String::new();
            let _ = file.read_to_string(&mut text);
            let pid = text.trim();
            return Err(format!(
                "focld is already running (pid {}, pidfile {}); stop it first",
                if pid.is_empty() { "unknown" } else { pid },
                path.display()
            ));
        }
        Ok(PidFile { path: path.to_path_buf(), file })
    }

    fn write_pid(&mut self) -> io::Result<()> {
        self.file.set_len(0)?;
        let mut f = &self.file;
        std::io::Seek::rewind(&mut f)?;
        writeln!(f, "{}", std::process::id())?;
        self.file.sync_all()
    }

    /// Remove the file; without the right to (privileges dropped), leave it empty.
    fn remove(self) {
        if std::fs::remove_file(&self.path).is_err() {
            let _ = self.file.set_len(0);
        }
    }
}

/// Detach: fork, and in the child setsid, chdir /, stdio to /dev/null. The parent waits for
/// the child to report its start-up over a pipe and exits 0 or 1 (printing the error), so an
/// init script sees whether focld really started. Returns the child's end of the pipe.
fn daemonize() -> io::Result<OwnedFd> {
    let mut fds = [0 as libc::c_int; 2];
    // SAFETY: pipe writes two descriptors into the array.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: each descriptor is owned by exactly one OwnedFd from here on.
    let (read_end, write_end) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: no other thread exists yet (focld forks before starting any).
    match unsafe { libc::fork() } {
        -1 => Err(io::Error::last_os_error()),
        0 => {
            drop(read_end);
            // SAFETY: plain system calls in the child.
            unsafe {
                libc::setsid();
                libc::chdir(c"/".as_ptr());
                let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
                if null >= 0 {
                    libc::dup2(null, 0);
                    libc::dup2(null, 1);
                    libc::dup2(null, 2);
                    if null > 2 {
                        libc::close(null);
                    }
                }
            }
            Ok(write_end)
        }
        _ => {
            drop(write_end);
            let mut report = String::new();
            let _ = File::from(read_end).read_to_string(&mut report);
            if report.trim() == "ok" {
                std::process::exit(0);
            }
            let msg = if report.trim().is_empty() { "focld exited during start-up" } else { report.trim() };
            eprintln!("focld: cannot start: {msg}");
            std::process::exit(1);
        }
    }
}

/// Tell the waiting parent (with -d) how start-up went.
fn report_start(pipe: &mut Option<OwnedFd>, result: &str) {
    if let Some(fd) = pipe.take() {
        let mut f = File::from(fd);
        let _ = f.write_all(result.as_bytes());
    }
}

fn init_logging(cfg: &Config, detached: bool) -> io::Result<Option<LogFile>> {
    let log_cfg = ConfigBuilder::new()
        .set_target_level(LevelFilter::Off)
        .set_thread_level(LevelFilter::Off)
        .set_time_format_rfc3339()
        .build();
    // Loggers pass everything; the level is the global max level, which a reload can change.
    let file = match &cfg.global.log_file {
        Some(path) => {
            let lf = LogFile::open(path)?;
            let _ = WriteLogger::init(LevelFilter::Trace, log_cfg, lf.clone());
            Some(lf)
        }
        None if detached => None,
        None => {
            let _ = TermLogger::init(LevelFilter::Trace, log_cfg, TerminalMode::Stderr, ColorChoice::Never);
            None
        }
    };
    log::set_max_level(cfg.global.log_level);
    Ok(file)
}

fn main() -> ExitCode {
    let args: Args = argh::from_env();
    if args.version {
        println!("focld {}", env!("CARGO_PKG_VERSION"));
        return ExitCode::SUCCESS;
    }
    let path = args.config.clone().unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
    // Absolute, so a reload finds the file after -d has changed to /.
    let path = std::fs::canonicalize(&path).unwrap_or(path);
    let cfg = match config::load(&path) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            eprintln!("focld: {} error(s) in {}, not started", errors.len(), path.display());
            return ExitCode::from(1);
        }
    };
    for w in &cfg.warnings {
        eprintln!("focld: warning: {w}");
    }
    if args.check {
        if args.verbose {
            print!("{}", cfg.effective_toml());
        }
        return ExitCode::SUCCESS;
    }
    if !focl::session::sock::md5::SUPPORTED {
        if let Some(p) = cfg.peers.iter().find(|p| p.password.is_some()) {
            eprintln!(
                "focld: neighbor {} has a password, but TCP-MD5 (RFC 2385) is not supported on this platform; remove the password or run focld on Linux",
                p.label()
            );
            return ExitCode::from(1);
        }
    }
    let target = match privs::resolve(cfg.global.user.as_deref(), cfg.global.group.as_deref()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("focld: {}: {e}", path.display());
            return ExitCode::from(1);
        }
    };
    // As root: drop to the user. Not root: only "already that user" works.
    let target = match target {
        Some(t) if privs::is_root() => Some(t),
        // SAFETY: getuid cannot fail.
        Some(t) if t.uid == unsafe { libc::getuid() } => None,
        Some(t) => {
            eprintln!("focld: global.user = \"{}\": focld must be started as root to switch users", t.user);
            return ExitCode::from(1);
        }
        None => None,
    };
    if args.daemon && cfg.global.log_file.is_none() {
        eprintln!("focld: -d needs global.log_file in {} (stderr is closed when detached)", path.display());
        return ExitCode::from(1);
    }

    let mut pipe = if args.daemon {
        match daemonize() {
            Ok(fd) => Some(fd),
            Err(e) => {
                eprintln!("focld: cannot detach: {e}");
                return ExitCode::from(1);
            }
        }
    } else {
        None
    };
    let fail = |pipe: &mut Option<OwnedFd>, msg: String| {
        error!("cannot start: {msg}");
        if pipe.is_some() {
            report_start(pipe, &msg);
        } else {
            eprintln!("focld: cannot start: {msg}");
        }
        ExitCode::from(1)
    };
    let log_file = match init_logging(&cfg, args.daemon) {
        Ok(l) => l,
        Err(e) => return fail(&mut pipe, e.to_string()),
    };
    if let (Some(lf), Some(t)) = (&log_file, &target) {
        if let Err(e) = privs::chown(&lf.path(), t) {
            warn!("{e}; the log file cannot be reopened after privileges are dropped");
        }
    }
    // Taken from the directory focld was started in, like every path in the configuration:
    // `-d` runs from `/`.
    let mut pidfile = match args.pidfile.as_ref().map(|p| cfg.base_dir.join(p)) {
        Some(p) => match PidFile::acquire(&p) {
            Ok(pf) => Some(pf),
            Err(e) => return fail(&mut pipe, e),
        },
        None => None,
    };
    install_signal_handlers();
    let mut daemon = match Daemon::start_as(&cfg, target.as_ref(), args.graceful_restart) {
        Ok(d) => d,
        Err(e) => {
            if let Some(pf) = pidfile.take() {
                pf.remove();
            }
            return fail(&mut pipe, e.to_string());
        }
    };
    if let Some(pf) = &mut pidfile {
        if let Err(e) = pf.write_pid() {
            error!("cannot write pidfile {}: {e}", pf.path.display());
        }
    }
    report_start(&mut pipe, "ok");

    while !STOP.load(Ordering::SeqCst) {
        if HUP.swap(false, Ordering::SeqCst) {
            info!("SIGHUP: reopening the log file and reloading {}", daemon.config().file.display());
            if let Some(lf) = &log_file {
                if let Err(e) = lf.reopen(&lf.path()) {
                    error!("{e}");
                }
            }
            if let Err(errors) = reload(&mut daemon, log_file.as_ref()) {
                for e in &errors {
                    error!("reload: {e}");
                }
                error!("reload failed: the running configuration stays");
            }
        }
        if let Ok(reply) = daemon.reload_requests().recv_timeout(Duration::from_millis(100)) {
            let r = reload(&mut daemon, log_file.as_ref()).map_err(|errors| {
                for e in &errors {
                    error!("reload: {e}");
                }
                error!("reload failed: the running configuration stays");
                CtlError::new(code::BAD_CONFIG, errors.join("\n"))
            });
            let _ = reply.send(r);
        }
    }
    if GRACEFUL.load(Ordering::SeqCst) {
        info!("SIGUSR2: stopping for a graceful restart (start again with focld -R)");
        daemon.stop_for_restart();
    } else {
        info!("signal received, shutting down");
        daemon.stop("focld shutting down");
    }
    if let Some(pf) = pidfile.take() {
        pf.remove();
    }
    ExitCode::SUCCESS
}

/// Reload, then follow a changed `log_file`.
fn reload(daemon: &mut Daemon, log_file: Option<&LogFile>) -> Result<focl::control::proto::ReloadReport, Vec<String>> {
    let before = daemon.config().global.log_file.clone();
    let report = daemon.reload()?;
    let after = daemon.config().global.log_file.clone();
    if after != before {
        match (log_file, &after) {
            (Some(lf), Some(path)) => {
                if let Err(e) = lf.reopen(path) {
                    error!("{e}; still logging to {}", lf.path().display());
                }
            }
            _ => warn!("global.log_file changed between a file and standard error: restart focld to apply it"),
        }
    }
    Ok(report)
}
