//! What both binaries do around the library: parse flags, set up logging once, print an
//! error once with its context, and map the outcome to an exit code.

use std::fmt::Display;
use std::process::ExitCode;

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

/// Logs to stderr at `level` (`error`, `warn`, `info`, `debug`, `trace` or `off`).
pub fn init_logging(level: &str) -> Result<(), ExitCode> {
    let Ok(filter) = level.parse::<LevelFilter>() else {
        eprintln!("invalid --log-level {level:?}: use error, warn, info, debug, trace or off");
        return Err(ExitCode::from(EXIT_USAGE));
    };
    let config = ConfigBuilder::new()
        .set_target_level(LevelFilter::Off)
        .set_thread_level(LevelFilter::Off)
        .add_filter_allow_str("wsp")
        .build();
    // Only fails when a logger is already set, which cannot happen in our binaries.
    let _ = TermLogger::init(filter, config, TerminalMode::Stderr, ColorChoice::Never);
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
