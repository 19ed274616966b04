//! The YAML configuration files: any text is either a valid configuration or an error
//! that names the file, never a panic; what is accepted is within the documented limits.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsp::config::client::MAX_TARGETS;
use wsp::config::{ClientConfig, ServerConfig, MAX_TIMEOUT_MS};
use wsp::protocol::limits::{MAX_ID_LEN, MAX_POOL_SIZE};

const ORIGIN: &str = "fuzz.cfg";

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let max = std::time::Duration::from_millis(MAX_TIMEOUT_MS);
    match ServerConfig::from_yaml(&text, ORIGIN) {
        Ok(c) => {
            assert!(!c.timeout.is_zero() && c.timeout <= max);
            assert!(c.idle_timeout <= max);
        }
        Err(e) => assert!(e.to_string().starts_with(ORIGIN), "{e}"),
    }
    match ClientConfig::from_yaml(&text, ORIGIN) {
        Ok(c) => {
            assert!(
                !c.id.is_empty() && c.id.len() <= MAX_ID_LEN,
                "id {:?}",
                c.id
            );
            assert!((1..=MAX_TARGETS).contains(&c.targets.len()));
            assert!(c.pool_max_size >= 1 && c.pool_idle_size <= c.pool_max_size);
            assert!(c.pool_idle_size <= MAX_POOL_SIZE);
        }
        Err(e) => assert!(e.to_string().starts_with(ORIGIN), "{e}"),
    }
});
