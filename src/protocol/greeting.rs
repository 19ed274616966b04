//! The greeting: the first message of every connection, `<id>_<size>`.
//!
//! `id` names the client (opaque text: the Go client's default UUID has non-standard
//! variant bits, so it is never validated as a UUID); `size` is the client's
//! `poolidlesize`, the number of idle connections the server should keep for it.
//! Go splits at the first `_`, which breaks ids containing `_`; we split at the last.

use std::fmt;

use super::limits::{MAX_ID_LEN, MAX_POOL_SIZE};
use super::Error;

/// Longest greeting message read, in bytes: an id, `_` and a size with room to spare.
pub(crate) const MAX_GREETING_LEN: usize = MAX_ID_LEN + 32;

/// A parsed greeting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Greeting {
    /// The client's id, shared by all its connections.
    pub id: String,
    /// The client's `poolidlesize`.
    pub size: usize,
}

impl Greeting {
    /// Parses `<id>_<size>`, splitting at the last `_`.
    ///
    /// # Errors
    /// [`Error::Greeting`] naming what is wrong: no `_`, an empty, too long or
    /// control-character id, a size that is not a number or is above [`MAX_POOL_SIZE`].
    pub fn parse(text: &str) -> Result<Greeting, Error> {
        let bad = |why: String| Err(Error::Greeting(why));
        let Some((id, size)) = text.rsplit_once('_') else {
            return bad(format!("{:?} has no '_' between id and size", clip(text)));
        };
        if id.is_empty() {
            return bad("empty client id".into());
        }
        if id.len() > MAX_ID_LEN {
            return bad(format!("client id longer than {MAX_ID_LEN} bytes"));
        }
        if id.chars().any(char::is_control) {
            return bad(format!("client id {:?} has control characters", clip(id)));
        }
        let size: usize = match size.parse() {
            Ok(n) if n <= MAX_POOL_SIZE => n,
            Ok(_) => return bad(format!("pool size {size} is above {MAX_POOL_SIZE}")),
            // All digits yet unparsable: too big for any integer type.
            Err(_) if !size.is_empty() && size.bytes().all(|b| b.is_ascii_digit()) => {
                return bad(format!("pool size {} is above {MAX_POOL_SIZE}", clip(size)))
            }
            Err(_) => return bad(format!("pool size {:?} is not a number", clip(size))),
        };
        Ok(Greeting {
            id: id.to_string(),
            size,
        })
    }
}

impl fmt::Display for Greeting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.id, self.size)
    }
}

/// At most 64 characters of untrusted text, for error messages.
fn clip(text: &str) -> String {
    text.chars().take(64).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_go_client_greeting() {
        let g = Greeting::parse("4b98d5a0-6794-421c-6a66-20f3edd81174_10").unwrap();
        assert_eq!(g.id, "4b98d5a0-6794-421c-6a66-20f3edd81174");
        assert_eq!(g.size, 10);
        assert_eq!(g.to_string(), "4b98d5a0-6794-421c-6a66-20f3edd81174_10");
    }

    #[test]
    fn splits_at_last_underscore() {
        let g = Greeting::parse("my_client_id_3").unwrap();
        assert_eq!((g.id.as_str(), g.size), ("my_client_id", 3));
    }

    #[test]
    fn rejects_bad_greetings_with_reason() {
        let cases = [
            ("nounderscore", "no '_'"),
            ("_10", "empty client id"),
            ("id_ten", "not a number"),
            ("id_-1", "not a number"),
            ("id_99999999999999999999999", "is above 10000"),
            ("id_10001", "above"),
            ("a\u{7}b_1", "control"),
        ];
        for (text, why) in cases {
            let err = Greeting::parse(text).unwrap_err().to_string();
            assert!(err.contains(why), "{text:?}: {err}");
        }
        let long = format!("{}_1", "x".repeat(MAX_ID_LEN + 1));
        assert!(Greeting::parse(&long).is_err());
        let longest = format!("{}_1", "x".repeat(MAX_ID_LEN));
        assert!(Greeting::parse(&longest).is_ok());
    }
}
