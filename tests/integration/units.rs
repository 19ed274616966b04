//! The systemd units in `examples/systemd/` against the binaries they start: each unit's
//! `ExecStart=` is run as written, with only the installed paths (binary, configuration
//! file, credentials directory) swapped for the test's, and the server and client must
//! come up and register to each other with the key they read from the credential. Their
//! stop time-out must leave room for wsp's graceful drain.

use std::path::PathBuf;

use crate::config::ConfigFile;
use crate::support::*;

const UNITS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/systemd");

/// wsp's default `shutdowntimeout` in seconds, the drain systemd must wait for.
const SHUTDOWN_TIMEOUT_SECS: u64 = 30;

/// One unit file's text.
struct Unit {
    name: &'static str,
    text: String,
}

impl Unit {
    fn read(name: &'static str) -> Unit {
        let path = format!("{UNITS}/{name}.service");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        Unit { name, text }
    }

    /// The value of the one `key=` line.
    fn value(&self, key: &str) -> &str {
        let prefix = format!("{key}=");
        let values: Vec<&str> = self
            .text
            .lines()
            .filter_map(|line| line.strip_prefix(&prefix))
            .collect();
        match values.as_slice() {
            [value] => value.trim(),
            _ => panic!("{}: expected one {key}=, found {values:?}", self.name),
        }
    }

    /// `ExecStart=`'s arguments (wsp's units quote nothing), with the installed binary,
    /// configuration file and credentials directory replaced by the test's.
    fn exec_args(&self, config: &ConfigFile, credentials: &str) -> Vec<String> {
        let exec = self.value("ExecStart");
        let mut words = exec.split_whitespace();
        let binary = words.next().unwrap_or_default();
        assert_eq!(binary, format!("/usr/local/bin/{}", self.name), "{exec}");
        let installed_config = format!("/etc/wsp/{}.cfg", self.name);
        assert!(exec.contains(&installed_config), "{exec}");
        words
            .map(|word| {
                word.replace(&installed_config, config.path())
                    .replace("${CREDENTIALS_DIRECTORY}", credentials)
            })
            .collect()
    }

    /// The credential's name and the file systemd loads it from (`LoadCredential=`).
    fn credential(&self) -> (&str, &str) {
        let value = self.value("LoadCredential");
        value
            .split_once(':')
            .unwrap_or_else(|| panic!("{}: LoadCredential={value}", self.name))
    }
}

/// A directory standing for `$CREDENTIALS_DIRECTORY`, holding `name` with the test secret.
struct Credentials {
    dir: PathBuf,
}

impl Credentials {
    fn new(name: &str) -> Credentials {
        let dir = std::env::temp_dir().join(format!("wsp-it-{}-credentials", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {dir:?}: {e}"));
        let file = dir.join(name);
        std::fs::write(&file, format!("{SECRET}\n"))
            .unwrap_or_else(|e| panic!("writing {file:?}: {e}"));
        Credentials { dir }
    }

    fn path(&self) -> &str {
        self.dir.to_str().expect("temporary paths are UTF-8")
    }
}

impl Drop for Credentials {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// `TimeoutStopSec=` in seconds (`45s`, `45`, `2min`).
fn seconds(value: &str) -> u64 {
    let number = |digits: &str| digits.parse::<u64>().ok();
    let parsed = match value {
        v if v.ends_with("min") => number(&v[..v.len() - 3]).map(|m| m * 60),
        v if v.ends_with('s') => number(&v[..v.len() - 1]),
        v => number(v),
    };
    parsed.unwrap_or_else(|| panic!("TimeoutStopSec={value}: not a simple duration"))
}

#[test]
fn units_start_the_binaries_and_register_with_the_credential() {
    let (server_unit, client_unit) = (Unit::read("wsp_server"), Unit::read("wsp_client"));
    let (name, source) = server_unit.credential();
    assert_eq!(
        client_unit.credential(),
        (name, source),
        "same key, same file"
    );
    for unit in [&server_unit, &client_unit] {
        let exec = unit.value("ExecStart");
        let flag = format!("--secret-key-file ${{CREDENTIALS_DIRECTORY}}/{name}");
        assert!(exec.contains(&flag), "{}: {exec}", unit.name);
    }
    let credentials = Credentials::new(name);

    // The configuration files hold no key: it can only come from the credential.
    let server_config = ConfigFile::new("wsp_server.cfg", "host : 127.0.0.1\nport : 0\n");
    let args = server_unit.exec_args(&server_config, credentials.path());
    let server = Server::from_proc(Proc::spawn(env!("CARGO_BIN_EXE_wsp_server"), &args));

    let text = format!("id : unit\ntargets :\n - {}\n", server.register_url());
    let client_config = ConfigFile::new("wsp_client.cfg", &text);
    let args = client_unit.exec_args(&client_config, credentials.path());
    let client = Proc::spawn(env!("CARGO_BIN_EXE_wsp_client"), &args);

    let upstream = upstream();
    let hello = format!("http://{}/hello", upstream.addr());
    poll(READY, || {
        let reply = relay(&server, "GET", &hello, &[], None);
        (reply.status == 200).then_some(())
    })
    .unwrap_or_else(|| {
        panic!(
            "the client never relayed; client log:\n{}\nserver log:\n{}",
            client.log.lock(),
            server.proc.log.lock()
        )
    });
}

#[test]
fn units_wait_longer_than_the_graceful_drain() {
    for unit in [Unit::read("wsp_server"), Unit::read("wsp_client")] {
        let stop = seconds(unit.value("TimeoutStopSec"));
        assert!(stop > SHUTDOWN_TIMEOUT_SECS, "{}: {stop} s", unit.name);
        assert_eq!(unit.value("Restart"), "on-failure", "{}", unit.name);
        // The hardening that matters most, in case someone trims the list.
        for (key, value) in [
            ("DynamicUser", "yes"),
            ("NoNewPrivileges", "yes"),
            ("ProtectSystem", "strict"),
            ("CapabilityBoundingSet", ""),
            ("SystemCallFilter", "@system-service"),
        ] {
            let lines: Vec<&str> = unit.text.lines().collect();
            assert!(
                lines.contains(&format!("{key}={value}").as_str()),
                "{}: no {key}={value}",
                unit.name
            );
        }
    }
}
