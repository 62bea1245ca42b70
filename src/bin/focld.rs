//! focld: the BGP speaker and route collector daemon.
//!
//! Reads and checks the configuration, starts the daemon's threads (see the library docs for
//! the thread diagram) and waits for SIGTERM/SIGINT. Signal handlers only set flags; the main
//! thread polls them.

use argh::FromArgs;
use focl::config;
use focl::daemon::Daemon;
use log::{error, info};
use simplelog::{ColorChoice, ConfigBuilder, TermLogger, TerminalMode};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// focld: a BGP speaker and MRT route collector. See focld(8).
#[derive(FromArgs)]
struct Args {
    /// configuration file (TOML, see focl.toml(5))
    #[argh(option, short = 'c')]
    config: PathBuf,
    /// check the configuration and exit: 0 if valid, 1 with every error otherwise
    #[argh(switch, short = 'n')]
    check: bool,
}

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

fn install_signal_handlers() {
    let handler = on_stop_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
    unsafe {
        libc::signal(libc::SIGTERM, handler);
        libc::signal(libc::SIGINT, handler);
        // A peer closing its end must not kill the daemon: writes return EPIPE instead.
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

fn main() -> ExitCode {
    let args: Args = argh::from_env();
    let cfg = match config::load(&args.config) {
        Ok(c) => c,
        Err(errors) => {
            for e in &errors {
                eprintln!("{e}");
            }
            eprintln!("focld: {} error(s) in {}, not started", errors.len(), args.config.display());
            return ExitCode::from(1);
        }
    };
    for w in &cfg.warnings {
        eprintln!("focld: warning: {w}");
    }
    if args.check {
        return ExitCode::SUCCESS;
    }
    if !focl::sock::md5::SUPPORTED {
        if let Some(p) = cfg.peers.iter().find(|p| p.password.is_some()) {
            eprintln!(
                "focld: neighbor {} has a password, but TCP-MD5 (RFC 2385) is not supported on this platform; remove the password or run focld on Linux",
                p.label()
            );
            return ExitCode::from(1);
        }
    }
    let log_cfg = ConfigBuilder::new()
        .set_target_level(log::LevelFilter::Off)
        .set_thread_level(log::LevelFilter::Off)
        .set_time_format_rfc3339()
        .build();
    let _ = TermLogger::init(cfg.global.log_level, log_cfg, TerminalMode::Stderr, ColorChoice::Never);
    install_signal_handlers();
    let daemon = match Daemon::start(&cfg) {
        Ok(d) => d,
        Err(e) => {
            error!("cannot start: {e}");
            eprintln!("focld: cannot start: {e}");
            return ExitCode::from(1);
        }
    };
    while !STOP.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
    }
    info!("signal received, shutting down");
    daemon.stop("focld shutting down");
    ExitCode::SUCCESS
}
