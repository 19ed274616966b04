//! Where the secret key comes from. `secretkey` and `--secret-key` show the key to whoever
//! reads the file or runs `ps`, so it may also come from a file of its own (`secretkeyfile`,
//! `--secret-key-file`) or from the environment ([`SECRET_KEY_ENV`]).
//!
//! Precedence, highest first: `--secret-key`, `--secret-key-file`, `WSP_SECRET_KEY`,
//! `secretkeyfile`, `secretkey`. Only the source chosen is read: a key file that a higher
//! source overrides is never opened. Giving both forms on the command line, or both in one
//! YAML file, is an error. A key file path is used as given (relative to the working
//! directory, like `--config`).
//!
//! This file owns that precedence, the reading of a key file within [`MAX_KEY_FILE_BYTES`],
//! the checks on the key, and [`Environment`]: the process environment is read in
//! [`Environment::from_process`] only, so tests pass their own values instead of mutating
//! the environment of every thread. Errors name where the key came from, never what it is.

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fmt;
use std::io::Read;

use super::{ConfigError, Sources, COMMAND_LINE};
use crate::secret::Secret;

/// Largest secret key file accepted, in bytes: a key is one short line, and a path given by
/// mistake (a log, a device) must not be read whole.
pub const MAX_KEY_FILE_BYTES: usize = 4096;

/// The environment variable that may hold the secret key. Empty counts as unset.
pub const SECRET_KEY_ENV: &str = "WSP_SECRET_KEY";

/// The origin named in errors about a value from the environment.
const ENVIRONMENT: &str = "environment";

/// What the configuration reads from the process environment, taken once.
#[derive(Clone, Default)]
pub struct Environment {
    /// The value of [`SECRET_KEY_ENV`], if set (empty and non-UTF-8 values are dealt with
    /// when the key is chosen).
    pub secret_key: Option<OsString>,
    /// Every variable with a UTF-8 name, for the secrets of `auth` that name theirs
    /// (`tokenenv`, `passwordenv`). Never printed.
    pub vars: BTreeMap<String, OsString>,
}

impl Environment {
    /// The variables of this process. The only place configuration reads the environment.
    pub fn from_process() -> Self {
        Environment {
            secret_key: std::env::var_os(SECRET_KEY_ENV),
            vars: std::env::vars_os()
                .filter_map(|(name, value)| Some((name.into_string().ok()?, value)))
                .collect(),
        }
    }
}

/// Prints `***` for a set key, like [`Secret`], and nothing of the other variables.
impl fmt::Debug for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let key = self.secret_key.as_ref().map(|_| Secret::default());
        f.debug_struct("Environment")
            .field("secret_key", &key)
            .finish()
    }
}

/// The sources of the key outside the YAML file: the flags and the environment.
#[derive(Clone, Copy, Default)]
pub(crate) struct KeyOverrides<'a> {
    /// `--secret-key`.
    pub(crate) flag: Option<&'a Secret>,
    /// `--secret-key-file`.
    pub(crate) flag_file: Option<&'a str>,
    /// [`SECRET_KEY_ENV`], as set.
    pub(crate) env: Option<&'a OsStr>,
}

/// The secret key from the highest source that is set; empty when none is.
/// `secretkey` and `secretkeyfile` are the YAML file's values (named after `sources`' file).
///
/// # Errors
///
/// Both forms given in one place, a key file that cannot be read or is empty, a
/// non-UTF-8 environment value, or a key that HTTP cannot carry intact.
pub(crate) fn choose_key(
    overrides: KeyOverrides<'_>,
    secretkey: Option<Secret>,
    secretkeyfile: Option<String>,
    sources: &Sources,
) -> Result<Secret, ConfigError> {
    let file = sources.file();
    if overrides.flag.is_some() && overrides.flag_file.is_some() {
        let reason = "give either --secret-key or --secret-key-file, not both";
        return Err(invalid(COMMAND_LINE, "--secret-key-file", reason));
    }
    if secretkey.is_some() && secretkeyfile.is_some() {
        let reason = "give either secretkey or secretkeyfile, not both";
        return Err(invalid(file, "secretkeyfile", reason));
    }
    let (key, origin, name) = if let Some(key) = overrides.flag {
        (key.clone(), COMMAND_LINE, "--secret-key")
    } else if let Some(path) = overrides.flag_file {
        let name = "--secret-key-file";
        return read_key_file(path).map_err(|e| e.at(COMMAND_LINE, name, path));
    } else if let Some(value) = overrides.env.filter(|value| !value.is_empty()) {
        let value = value.to_str().map(Secret::new);
        let value = value.ok_or_else(|| invalid(ENVIRONMENT, SECRET_KEY_ENV, "not UTF-8"))?;
        (value, ENVIRONMENT, SECRET_KEY_ENV)
    } else if let Some(path) = secretkeyfile {
        return read_key_file(&path).map_err(|e| e.at(file, "secretkeyfile", &path));
    } else if let Some(key) = secretkey {
        (key, file, "secretkey")
    } else {
        return Ok(Secret::default());
    };
    check_key(key.expose()).map_err(|reason| invalid(origin, name, reason))?;
    Ok(key)
}

/// Why a key file could not be used, before it is known who named it.
#[derive(Debug)]
pub(crate) enum KeyFileError {
    Read(std::io::Error),
    Invalid(String),
}

impl KeyFileError {
    /// The configuration error, naming the file or flag (`origin`, `name`) and the path.
    pub(crate) fn at(self, origin: &str, name: &str, path: &str) -> ConfigError {
        match self {
            KeyFileError::Read(source) => ConfigError::KeyFile {
                origin: origin.to_string(),
                key: name.to_string(),
                path: path.to_string(),
                source,
            },
            KeyFileError::Invalid(reason) => invalid(origin, name, format!("{path}: {reason}")),
        }
    }
}

/// Reads a key file: at most [`MAX_KEY_FILE_BYTES`], UTF-8, one trailing `\n` or `\r\n`
/// removed (editors add one), nothing else trimmed, then [`check_key`].
pub(crate) fn read_key_file(path: &str) -> Result<Secret, KeyFileError> {
    let file = std::fs::File::open(path).map_err(KeyFileError::Read)?;
    let limit = u64::try_from(MAX_KEY_FILE_BYTES).unwrap_or(u64::MAX);
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(KeyFileError::Read)?;
    let invalid = |reason: &str| Err(KeyFileError::Invalid(reason.to_string()));
    if bytes.len() > MAX_KEY_FILE_BYTES {
        return invalid(&format!("larger than {MAX_KEY_FILE_BYTES} bytes"));
    }
    let Ok(text) = String::from_utf8(bytes) else {
        return invalid("not UTF-8 text");
    };
    let key = strip_one_newline(&text);
    if key.is_empty() {
        return invalid("empty (a key file holds the key, optionally ending with a newline)");
    }
    check_key(key).map_err(|reason| {
        KeyFileError::Invalid(format!("{reason} (only one trailing newline is removed)"))
    })?;
    Ok(Secret::new(key))
}

/// `text` without one trailing `\r\n` or `\n`.
fn strip_one_newline(text: &str) -> &str {
    text.strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(text)
}

/// Refuses a key that cannot reach the server intact in `X-SECRET-KEY`: HTTP drops spaces
/// around a header value and cannot carry control characters, so such a key would never
/// match, and the refusal would say nothing about why. The reason never quotes the key.
pub(crate) fn check_key(key: &str) -> Result<(), String> {
    if key.chars().any(char::is_control) {
        return Err("must not contain control characters".to_string());
    }
    if key.starts_with(' ') || key.ends_with(' ') {
        return Err("must not start or end with a space".to_string());
    }
    Ok(())
}

pub(crate) fn invalid(origin: &str, key: &str, reason: impl fmt::Display) -> ConfigError {
    ConfigError::Invalid {
        origin: origin.to_string(),
        key: key.to_string(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests;
