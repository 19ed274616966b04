//! `wsp_client`: the private side. Thin: flags, config, logging, run.

use std::process::ExitCode;

use wsp::cli;
use wsp::client::Client;
use wsp::config::{ClientConfig, ClientFlags};

fn main() -> ExitCode {
    let flags: ClientFlags = match cli::flags() {
        Ok(flags) => flags,
        Err(code) => return code,
    };
    if let Err(code) = cli::init_logging(flags.log_level.as_deref()) {
        return code;
    }
    let config = match ClientConfig::from_flags(&flags) {
        Ok(config) => config,
        Err(e) => return cli::fail(e, cli::EXIT_USAGE),
    };
    log::set_max_level(config.log_level);
    log::info!("client id {}, targets {:?}", config.id, config.targets);
    let client = match Client::new(config) {
        Ok(client) => client,
        Err(e) => return cli::fail(e, cli::EXIT_USAGE),
    };
    let reload = client.reload_handle();
    cli::on_hangup(move || {
        let loaded = ClientConfig::from_flags(&flags).map_err(|e| e.to_string());
        reload.reload(loaded);
    });
    let handle = client.shutdown_handle();
    cli::on_termination(move || handle.shutdown());
    client.run();
    ExitCode::SUCCESS
}
