//! The JSON heads: the same text is tried as a request head and as a response head. What
//! parses must be something an HTTP stack accepts, and must come back equal from its own
//! JSON.
#![no_main]

use libfuzzer_sys::fuzz_target;
use wsp::protocol::head::to_json;
use wsp::protocol::{RequestHead, ResponseHead};
use wsp_fuzz::http_rules;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match RequestHead::parse(&text) {
        Ok(head) => {
            http_rules::check_request(&head);
            let json = to_json(&head);
            let again = RequestHead::parse(&json)
                .unwrap_or_else(|e| panic!("own JSON {json:?} refused: {e}"));
            assert_eq!(again, head, "request head round trip");
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
    match ResponseHead::parse(&text) {
        Ok(head) => {
            http_rules::check_response(&head);
            let json = to_json(&head);
            let again = ResponseHead::parse(&json)
                .unwrap_or_else(|e| panic!("own JSON {json:?} refused: {e}"));
            assert_eq!(again, head, "response head round trip");
        }
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
