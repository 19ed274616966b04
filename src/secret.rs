//! The shared secret (`secretkey`, `X-SECRET-KEY`) in a newtype that keeps it out of logs.
//!
//! [`Secret`] owns the value and the one comparison that matters, [`Secret::matches`], done
//! in constant time. `Debug` and `Display` print `***`, so a config or a flag struct that
//! holds a `Secret` can be logged whole. Sending the value on the wire is the caller's job,
//! through the deliberately named [`Secret::expose`].

use std::convert::Infallible;
use std::fmt;
use std::str::FromStr;

use serde::Deserialize;
use subtle::ConstantTimeEq;

/// What `Debug` and `Display` print instead of the value.
const REDACTED: &str = "***";

/// A secret key. An unset key is the empty string, as in wsp (both sides unset match).
#[derive(Clone, Default, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// True when `candidate` equals the secret. The bytes are compared in constant time;
    /// only the length can leak through timing (a mismatched length answers at once).
    pub fn matches(&self, candidate: &str) -> bool {
        self.0.as_bytes().ct_eq(candidate.as_bytes()).into()
    }

    /// The value itself, to put it on the wire (`X-SECRET-KEY`). Never log it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// True when no key is set.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// Lets a command-line flag (`--secret-key`) parse straight into a `Secret`.
impl FromStr for Secret {
    type Err = Infallible;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        Ok(Secret::new(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_only_the_same_value() {
        let secret = Secret::new("ThisIsASecret");
        assert!(secret.matches("ThisIsASecret"));
        assert!(!secret.matches("ThisIsASecreT"));
        assert!(!secret.matches("ThisIsASecret2"));
        assert!(!secret.matches(""));
    }

    #[test]
    fn empty_matches_empty() {
        let secret = Secret::default();
        assert!(secret.is_empty());
        assert!(secret.matches(""));
        assert!(!secret.matches("x"));
    }

    #[test]
    fn never_printed() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret:?}"), "***");
        assert_eq!(format!("{secret}"), "***");
        assert_eq!(format!("{:?}", Some(secret.clone())), "Some(***)");
        assert_eq!(secret.expose(), "hunter2");
    }

    #[test]
    fn parses_from_a_flag_value() {
        let secret: Secret = "abc".parse().unwrap_or_default();
        assert!(secret.matches("abc"));
    }
}
