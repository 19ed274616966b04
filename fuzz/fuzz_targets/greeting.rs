//! The greeting `<id>_<size>`, the first message a registering client sends:
//! any text parses or is refused with a reason, and what parses is within the limits and
//! survives a round trip through its `Display`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsp::protocol::limits::{MAX_ID_LEN, MAX_POOL_SIZE};
use wsp::protocol::Greeting;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match Greeting::parse(&text) {
        Ok(greeting) => {
            assert!(!greeting.id.is_empty(), "empty id from {text:?}");
            assert!(greeting.id.len() <= MAX_ID_LEN, "id too long from {text:?}");
            assert!(
                !greeting.id.chars().any(char::is_control),
                "control char in id"
            );
            assert!(greeting.size <= MAX_POOL_SIZE, "size {}", greeting.size);
            let shown = greeting.to_string();
            let again = Greeting::parse(&shown)
                .unwrap_or_else(|e| panic!("{shown:?} from {text:?} does not parse: {e}"));
            assert_eq!(again, greeting, "round trip of {text:?}");
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
