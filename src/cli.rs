//! What both binaries do around the library: parse flags, set up logging once, print an
//! error once with its context, and map the outcome to an exit code.

use std::fmt::Display;
use std::process::ExitCode;
use std::thread;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use log::LevelFilter;
use simplelog::{ColorChoice, ConfigBuilder, TermLogger, TerminalMode};

/// Exit code for a bad command line or configuration.
pub const EXIT_USAGE: u8 = 2;

/// Parses the flags (Go-style `-config` accepted), or returns the exit code of `--help`
/// or of a usage error, after printing it.
pub fn flags<T: argh::FromArgs>() -> Result<T, ExitCode> {
    crate::config::parse_flags(std::env::args()).map_err(|early| match early.status {
        Ok(()) => {
            println!("{}", early.output);
            ExitCode::SUCCESS
        }
        Err(()) => {
            eprintln!("{}", early.output);
            ExitCode::from(EXIT_USAGE)
        }
    })
}

/// Logs to stderr at `level` (`error`, `warn`, `info`, `debug`, `trace` or `off`; info
/// when `None`) until the configuration's `loglevel` says otherwise (the binaries, then
/// each reload, set `log::set_max_level`).
pub fn init_logging(level: Option<&str>) -> Result<(), ExitCode> {
    let level = level.unwrap_or("info");
    let Ok(filter) = level.parse::<LevelFilter>() else {
        eprintln!("invalid --log-level {level:?}: use error, warn, info, debug, trace or off");
        return Err(ExitCode::from(EXIT_USAGE));
    };
    let config = ConfigBuilder::new()
        .set_target_level(LevelFilter::Off)
        .set_thread_level(LevelFilter::Off)
        .add_filter_allow_str("wsp")
        // The vendored HTTP server's few lines: accept failures, threads it cannot start.
        .add_filter_allow_str("tiny_http")
        .build();
    // The logger itself lets everything through; the `log` crate's maximum level, which
    // every macro checks first, is the level in force, and a reload may change it.
    // Only fails when a logger is already set, which cannot happen in our binaries.
    let _ = TermLogger::init(
        LevelFilter::Trace,
        config,
        TerminalMode::Stderr,
        ColorChoice::Never,
    );
    log::set_max_level(filter);
    Ok(())
}

/// Logs a fatal error once and returns the exit code for it.
pub fn fail(error: impl Display, code: u8) -> ExitCode {
    log::error!("{error}");
    if !log::log_enabled!(log::Level::Error) {
        eprintln!("error: {error}");
    }
    ExitCode::from(code)
}

/// Exit code when a second SIGTERM/SIGINT cuts a graceful shutdown short.
pub const EXIT_INTERRUPTED: i32 = 130;

/// Calls `stop` on the first SIGTERM or SIGINT, from a thread of its own, so that the
/// program can finish what is in flight and return normally (exit code 0). A second
/// signal ends the process at once: an operator who presses Ctrl-C twice means it.
pub fn on_termination(stop: impl Fn() + Send + 'static) {
    let mut signals = match Signals::new([SIGTERM, SIGINT]) {
        Ok(signals) => signals,
        Err(e) => {
            log::warn!("cannot handle SIGTERM/SIGINT, they will kill at once: {e}");
            return;
        }
    };
    let spawned = thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            let mut signals = signals.forever();
            if let Some(signal) = signals.next() {
                let name = if signal == SIGTERM {
                    "SIGTERM"
                } else {
                    "SIGINT"
                };
                log::info!("{name}: finishing in-flight requests (send it again to exit now)");
                stop();
            }
            if signals.next().is_some() {
                log::warn!("second signal: exiting now");
                std::process::exit(EXIT_INTERRUPTED);
            }
        });
    if let Err(e) = spawned {
        log::warn!("cannot handle SIGTERM/SIGINT, they will kill at once: {e}");
    }
}

/// Runs `reload` on a thread of its own at every SIGHUP (the operators' "read your
/// configuration again"), until the process ends.
pub fn on_hangup(reload: impl Fn() + Send + 'static) {
    let mut signals = match Signals::new([signal_hook::consts::SIGHUP]) {
        Ok(signals) => signals,
        Err(e) => {
            log::warn!("cannot handle SIGHUP, the configuration cannot be reloaded: {e}");
            return;
        }
    };
    let spawned = thread::Builder::new().name("sighup".into()).spawn(move || {
        for _ in signals.forever() {
            reload();
        }
    });
    if let Err(e) = spawned {
        log::warn!("cannot handle SIGHUP: {e}");
    }
}
