//! The server's `auth` key and `--auth-token-file` flag, validated into [`Auth`].
//!
//! Each secret (a bearer token, a user's password) is given in exactly one of three ways,
//! like the secret key: in the file (`token`, `password`), in a file of its own
//! (`tokenfile`, `passwordfile`, read as a secret key file is: see
//! [`super::secret_key`]), or in an environment variable named in the file (`tokenenv`,
//! `passwordenv`), so that the configuration file itself need hold no secret. Errors name
//! the entry (`auth.users[1].passwordfile`), never the secret.

use serde::Deserialize;

use super::secret_key::{check_key, invalid, read_key_file, Environment};
use super::{ConfigError, Sources, COMMAND_LINE};
use crate::auth::{Auth, User};
use crate::secret::Secret;

/// `auth` as written.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuth {
    /// Bearer tokens a caller may present.
    pub tokens: Option<Vec<RawToken>>,
    /// Basic-auth users a caller may present.
    pub users: Option<Vec<RawUser>>,
}

/// One bearer token: exactly one of the three keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawToken {
    pub token: Option<Secret>,
    pub tokenfile: Option<String>,
    pub tokenenv: Option<String>,
}

/// One basic-auth user: a name and exactly one of the three password keys.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawUser {
    pub user: String,
    pub password: Option<Secret>,
    pub passwordfile: Option<String>,
    pub passwordenv: Option<String>,
}

/// One secret's three possible sources, and the YAML key prefix naming them in errors.
struct SecretSources<'a> {
    value: Option<&'a Secret>,
    file: Option<&'a str>,
    env: Option<&'a str>,
    /// `auth.tokens[0].token`-style names for the three keys.
    names: [String; 3],
}

/// The credentials callers must present: the file's `auth` plus one bearer token per
/// `--auth-token-file`. No `auth` and no flag: authentication off.
///
/// # Errors
///
/// An `auth` that accepts nothing, an entry giving its secret in none or several ways,
/// an unreadable or invalid secret file, an unset variable, a bad user name, a user
/// listed twice.
pub(crate) fn compile(
    raw: Option<RawAuth>,
    token_files: &[String],
    sources: &Sources,
    env: &Environment,
) -> Result<Auth, ConfigError> {
    let origin = sources.file();
    let mut auth = Auth::default();
    if let Some(raw) = raw {
        for (i, token) in raw.tokens.iter().flatten().enumerate() {
            auth.tokens.push(token_secret(token, i, origin, env)?);
        }
        for (i, user) in raw.users.iter().flatten().enumerate() {
            auth.users
                .push(user_entry(user, i, &auth.users, origin, env)?);
        }
        if !auth.is_enabled() {
            return Err(invalid(origin, "auth", "lists no tokens and no users"));
        }
    }
    for path in token_files {
        let name = "--auth-token-file";
        let token = read_key_file(path).map_err(|e| e.at(COMMAND_LINE, name, path))?;
        auth.tokens.push(token);
    }
    Ok(auth)
}

fn token_secret(
    raw: &RawToken,
    i: usize,
    origin: &str,
    env: &Environment,
) -> Result<Secret, ConfigError> {
    let at = |key| format!("auth.tokens[{i}].{key}");
    let sources = SecretSources {
        value: raw.token.as_ref(),
        file: raw.tokenfile.as_deref(),
        env: raw.tokenenv.as_deref(),
        names: [at("token"), at("tokenfile"), at("tokenenv")],
    };
    resolve(&sources, origin, env)
}

fn user_entry(
    raw: &RawUser,
    i: usize,
    earlier: &[User],
    origin: &str,
    env: &Environment,
) -> Result<User, ConfigError> {
    let at = |key| format!("auth.users[{i}].{key}");
    check_user_name(&raw.user).map_err(|reason| invalid(origin, &at("user"), reason))?;
    if earlier.iter().any(|u| u.name.expose() == raw.user) {
        let reason = format!("{:?} is listed twice", raw.user);
        return Err(invalid(origin, &at("user"), reason));
    }
    let sources = SecretSources {
        value: raw.password.as_ref(),
        file: raw.passwordfile.as_deref(),
        env: raw.passwordenv.as_deref(),
        names: [at("password"), at("passwordfile"), at("passwordenv")],
    };
    let password = resolve(&sources, origin, env)?;
    Ok(User {
        name: Secret::new(raw.user.clone()),
        password,
    })
}

/// The secret from the one source given, checked like a secret key: not empty, no
/// control character, no space at either end.
fn resolve(s: &SecretSources<'_>, origin: &str, env: &Environment) -> Result<Secret, ConfigError> {
    let [value_key, file_key, env_key] = &s.names;
    let given = [s.value.is_some(), s.file.is_some(), s.env.is_some()];
    let count = given.iter().filter(|g| **g).count();
    if count != 1 {
        let reason = format!("give exactly one of {value_key}, {file_key} and {env_key}");
        return Err(invalid(origin, value_key, reason));
    }
    let (secret, key) = if let Some(path) = s.file {
        let secret = read_key_file(path).map_err(|e| e.at(origin, file_key, path))?;
        return Ok(secret);
    } else if let Some(name) = s.env {
        (
            from_env(env, name).map_err(|r| invalid(origin, env_key, r))?,
            env_key,
        )
    } else {
        (s.value.cloned().unwrap_or_default(), value_key)
    };
    if secret.is_empty() {
        return Err(invalid(origin, key, "must not be empty"));
    }
    check_key(secret.expose()).map_err(|reason| invalid(origin, key, reason))?;
    Ok(secret)
}

/// The value of the variable `name`: set, not empty, UTF-8.
fn from_env(env: &Environment, name: &str) -> Result<Secret, String> {
    match env.vars.get(name) {
        None => Err(format!("environment variable {name} is not set")),
        Some(value) if value.is_empty() => Err(format!("environment variable {name} is empty")),
        Some(value) => value
            .to_str()
            .map(Secret::new)
            .ok_or_else(|| format!("environment variable {name} is not UTF-8")),
    }
}

/// A basic-auth user name: not empty, no `:` (RFC 7617 splits at the first one), nothing
/// a header could not carry.
fn check_user_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("must not be empty".to_string());
    }
    if name.contains(':') {
        return Err("must not contain ':'".to_string());
    }
    check_key(name)
}

#[cfg(test)]
mod tests;
