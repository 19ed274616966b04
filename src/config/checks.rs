//! The checks a key's own value is enough for (a duration in range, one of a few
//! statuses, a count of at least 1, a log level's name), each with the key's default:
//! what the key table ([`super::keys`]) names for a key, and the validated value it
//! yields. Errors name the key, or the flag that set it, through [`Sources`]; their
//! messages are the ones the hand-written checks gave before the table.

use std::fmt::Display;
use std::time::Duration;

use super::{millis_or, ConfigError, Sources};

/// A check that needs nothing but the key's own value (of type `T`), with the default
/// taken when the key is unset.
pub(crate) trait Check<T> {
    /// What the validated configuration holds.
    type Value;
    /// The value when the key is unset.
    fn default_value(&self) -> Self::Value;
    /// The key's value checked, or the default; errors name `key` as `sources` says.
    fn check(
        &self,
        raw: Option<T>,
        sources: &Sources,
        key: &'static str,
    ) -> Result<Self::Value, ConfigError>;
    /// The default as the README's table shows it (only the README's test renders it).
    #[cfg_attr(not(test), allow(dead_code))]
    fn readme(&self) -> String;
}

/// A duration in ms above 0 and at most [`super::MAX_TIMEOUT_MS`]; the default in ms.
pub(crate) struct Ms(pub u64);

/// [`Ms`] where 0 is allowed (and means "at once" or "never", as the key says).
pub(crate) struct MsOrZero(pub u64);

/// What tells [`Ms`] and [`MsOrZero`] apart, so that one [`Check`] serves both.
pub(crate) trait Millis {
    /// Whether 0 is a valid value.
    const ZERO_OK: bool;
    /// The default, in ms.
    fn default_ms(&self) -> u64;
}

impl Millis for Ms {
    const ZERO_OK: bool = false;
    fn default_ms(&self) -> u64 {
        self.0
    }
}

impl Millis for MsOrZero {
    const ZERO_OK: bool = true;
    fn default_ms(&self) -> u64 {
        self.0
    }
}

impl<M: Millis> Check<u64> for M {
    type Value = Duration;
    fn default_value(&self) -> Duration {
        Duration::from_millis(self.default_ms())
    }
    fn check(
        &self,
        raw: Option<u64>,
        sources: &Sources,
        key: &'static str,
    ) -> Result<Duration, ConfigError> {
        millis_or(sources, key, raw, M::ZERO_OK, self.default_value())
    }
    fn readme(&self) -> String {
        format!("`{}`", self.default_ms())
    }
}

/// Any value of the type; the default.
pub(crate) struct Plain<T>(pub T);

impl<T: Copy + Display> Check<T> for Plain<T> {
    type Value = T;
    fn default_value(&self) -> T {
        self.0
    }
    fn check(&self, raw: Option<T>, _: &Sources, _: &'static str) -> Result<T, ConfigError> {
        Ok(raw.unwrap_or(self.0))
    }
    fn readme(&self) -> String {
        format!("`{}`", self.0)
    }
}

/// Any string; the default.
impl Check<String> for Plain<&'static str> {
    type Value = String;
    fn default_value(&self) -> String {
        self.0.to_string()
    }
    fn check(
        &self,
        raw: Option<String>,
        _: &Sources,
        _: &'static str,
    ) -> Result<String, ConfigError> {
        Ok(raw.unwrap_or_else(|| Check::<String>::default_value(self)))
    }
    fn readme(&self) -> String {
        format!("`{}`", self.0)
    }
}

/// One of a few values (HTTP statuses); the default, then the values allowed.
pub(crate) struct OneOf(pub u16, pub &'static [u16]);

impl Check<u16> for OneOf {
    type Value = u16;
    fn default_value(&self) -> u16 {
        self.0
    }
    fn check(
        &self,
        raw: Option<u16>,
        sources: &Sources,
        key: &'static str,
    ) -> Result<u16, ConfigError> {
        match raw {
            None => Ok(self.0),
            Some(value) if self.1.contains(&value) => Ok(value),
            Some(other) => {
                let allowed: Vec<String> = self.1.iter().map(u16::to_string).collect();
                let reason = format!("{other}: must be {}", allowed.join(" or "));
                Err(sources.invalid(key, reason))
            }
        }
    }
    fn readme(&self) -> String {
        format!("`{}`", self.0)
    }
}

/// A count of at least 1; the default.
pub(crate) struct AtLeastOne(pub usize);

impl Check<usize> for AtLeastOne {
    type Value = usize;
    fn default_value(&self) -> usize {
        self.0
    }
    fn check(
        &self,
        raw: Option<usize>,
        sources: &Sources,
        key: &'static str,
    ) -> Result<usize, ConfigError> {
        match raw.unwrap_or(self.0) {
            0 => Err(sources.invalid(key, "must be at least 1")),
            n => Ok(n),
        }
    }
    fn readme(&self) -> String {
        format!("`{}`", self.0)
    }
}

/// A limit where 0, the default, means none: `None` in the validated configuration.
pub(crate) struct ZeroIsNoLimit;

impl Check<usize> for ZeroIsNoLimit {
    type Value = Option<usize>;
    fn default_value(&self) -> Option<usize> {
        None
    }
    fn check(
        &self,
        raw: Option<usize>,
        _: &Sources,
        _: &'static str,
    ) -> Result<Option<usize>, ConfigError> {
        Ok(raw.filter(|&n| n > 0))
    }
    fn readme(&self) -> String {
        "`0` (no limit)".to_string()
    }
}

/// A log level by name (`error` ... `trace`, `off`); the default.
pub(crate) struct Level(pub log::LevelFilter);

impl Check<String> for Level {
    type Value = log::LevelFilter;
    fn default_value(&self) -> log::LevelFilter {
        self.0
    }
    fn check(
        &self,
        raw: Option<String>,
        sources: &Sources,
        key: &'static str,
    ) -> Result<log::LevelFilter, ConfigError> {
        let Some(name) = raw else {
            return Ok(self.0);
        };
        name.parse().map_err(|_| {
            let reason = format!("{name:?}: use error, warn, info, debug, trace or off");
            sources.invalid(key, reason)
        })
    }
    fn readme(&self) -> String {
        format!("`{}`", self.0.as_str().to_lowercase())
    }
}
