//! `wsp_server`: the public side. Thin: flags, config, logging, run.

use std::process::ExitCode;

use wsp::cli;
use wsp::config::{ServerConfig, ServerFlags};
use wsp::server::Server;

fn main() -> ExitCode {
    let flags: ServerFlags = match cli::flags() {
        Ok(flags) => flags,
        Err(code) => return code,
    };
    if let Err(code) = cli::init_logging(flags.log_level.as_deref()) {
        return code;
    }
    let config = match ServerConfig::from_flags(&flags) {
        Ok(config) => config,
        Err(e) => return cli::fail(e, cli::EXIT_USAGE),
    };
    log::set_max_level(config.log_level);
    let server = match Server::bind(config) {
        Ok(server) => server,
        Err(e) => return cli::fail(e, 1),
    };
    log::info!("listening on {}://{}", server.scheme(), server.local_addr());
    if let Some(admin) = server.admin_addr() {
        log::info!("console on http://{admin}/");
    }
    let reload = server.reload_handle();
    cli::on_hangup(move || {
        let loaded = ServerConfig::from_flags(&flags).map_err(|e| e.to_string());
        reload.reload(loaded);
    });
    let handle = server.shutdown_handle();
    cli::on_termination(move || handle.shutdown());
    server.run();
    ExitCode::SUCCESS
}
