//! `test_api`: the test API of `routes.rs` as a program, for `make demo`, manual tries with
//! curl and the benchmark. It only parses flags, binds and serves; every endpoint is
//! documented in `routes.rs`, which the integration tests run in-process instead.

mod routes;

use std::net::TcpListener;
use std::process::ExitCode;

use argh::FromArgs;
use simplelog::{ColorChoice, ConfigBuilder, LevelFilter, TermLogger, TerminalMode};

/// An HTTP API with known answers, to put behind the wsp client.
#[derive(FromArgs)]
struct Flags {
    /// address to bind (default 127.0.0.1)
    #[argh(option, default = "String::from(\"127.0.0.1\")")]
    host: String,
    /// port to bind (default 8081)
    #[argh(option, default = "8081")]
    port: u16,
    /// log every request (debug level)
    #[argh(switch, short = 'v')]
    verbose: bool,
}

fn main() -> ExitCode {
    let flags: Flags = argh::from_env();
    let level = if flags.verbose {
        LevelFilter::Debug
    } else {
        LevelFilter::Info
    };
    // tiny_http's own debug lines (every accept) would drown the request lines.
    let config = ConfigBuilder::new()
        .add_filter_ignore_str("tiny_http")
        .build();
    // Only fails when a logger is already set, which cannot happen here.
    let _ = TermLogger::init(level, config, TerminalMode::Stderr, ColorChoice::Auto);
    match run(&flags) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("test_api: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(flags: &Flags) -> Result<(), String> {
    let wanted = format!("{}:{}", flags.host, flags.port);
    let listener = TcpListener::bind((flags.host.as_str(), flags.port))
        .map_err(|err| format!("binding {wanted}: {err}"))?;
    let addr = listener
        .local_addr()
        .map_err(|err| format!("reading the address bound for {wanted}: {err}"))?;
    eprintln!("test API listening on http://{addr}");
    routes::serve_forever(listener).map_err(|err| format!("serving on {addr}: {err}"))
}
