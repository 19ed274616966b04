//! Caller authentication (`auth`): the bearer tokens and basic-auth users a caller may
//! present, and the one check of a presented credential against them.
//!
//! Off by default, as in wsp, where `/request` is open to anyone who reaches it. This file
//! knows nothing of HTTP status codes or header names: [`Auth::check`] takes the value of
//! the credentials header and [`Auth::challenges`] gives the challenges, so `/request`
//! (401, `Authorization`, `WWW-Authenticate`) and a proxy mode (407,
//! `Proxy-Authorization`, `Proxy-Authenticate`) share it. Where the secrets come from is
//! [`crate::config::auth`]'s job.
//!
//! Every secret is compared in constant time ([`Secret::matches`]), and every token and
//! user is compared whatever the earlier ones gave, so the time taken does not tell which
//! entry nearly matched.

use std::fmt;

use base64::Engine;

use crate::secret::Secret;

/// The realm of the challenges.
pub const REALM: &str = "wsp";

/// One basic-auth user.
#[derive(Clone, Debug)]
pub struct User {
    /// The user name (no `:`), a [`Secret`] so that it is compared in constant time too.
    pub name: Secret,
    pub password: Secret,
}

/// The credentials callers may present; none means authentication is off.
#[derive(Clone, Debug, Default)]
pub struct Auth {
    /// Accepted as `Authorization: Bearer <token>`.
    pub tokens: Vec<Secret>,
    /// Accepted as `Authorization: Basic base64(<user>:<password>)`.
    pub users: Vec<User>,
}

/// Why a caller was refused. The text never quotes what the caller sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// No credentials header.
    Missing,
    /// A scheme the server does not accept, or a value that cannot be decoded.
    Malformed,
    /// Well-formed credentials that match no token or user.
    Invalid,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refused::Missing => f.write_str("Authentication required"),
            Refused::Malformed => f.write_str("Unsupported or malformed credentials"),
            Refused::Invalid => f.write_str("Invalid credentials"),
        }
    }
}

impl Auth {
    /// True when callers must authenticate.
    pub fn is_enabled(&self) -> bool {
        !self.tokens.is_empty() || !self.users.is_empty()
    }

    /// Checks the value of the caller's credentials header (`Authorization` or
    /// `Proxy-Authorization`); always passes when authentication is off.
    ///
    /// # Errors
    ///
    /// [`Refused`] saying whether credentials were missing, unusable or wrong.
    pub fn check(&self, credentials: Option<&str>) -> Result<(), Refused> {
        if !self.is_enabled() {
            return Ok(());
        }
        let credentials = credentials.ok_or(Refused::Missing)?.trim();
        let (scheme, value) = credentials.split_once(' ').ok_or(Refused::Malformed)?;
        let value = value.trim();
        let accepted = if scheme.eq_ignore_ascii_case("Bearer") && !self.tokens.is_empty() {
            self.token_matches(value)
        } else if scheme.eq_ignore_ascii_case("Basic") && !self.users.is_empty() {
            self.user_matches(&decode_basic(value).ok_or(Refused::Malformed)?)
        } else {
            return Err(Refused::Malformed);
        };
        accepted.then_some(()).ok_or(Refused::Invalid)
    }

    /// The challenges to send with a refusal, one header value per accepted scheme.
    pub fn challenges(&self) -> Vec<String> {
        let mut challenges = Vec::new();
        if !self.tokens.is_empty() {
            challenges.push(format!("Bearer realm=\"{REALM}\""));
        }
        if !self.users.is_empty() {
            challenges.push(format!("Basic realm=\"{REALM}\", charset=\"UTF-8\""));
        }
        challenges
    }

    fn token_matches(&self, token: &str) -> bool {
        self.tokens
            .iter()
            .fold(false, |found, t| t.matches(token) | found)
    }

    fn user_matches(&self, (name, password): &(String, String)) -> bool {
        self.users.iter().fold(false, |found, user| {
            (user.name.matches(name) & user.password.matches(password)) | found
        })
    }
}

/// `user` and `password` from a basic-auth value (RFC 7617: base64 of `user:password`).
fn decode_basic(value: &str) -> Option<(String, String)> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(value)
        .ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (name, password) = text.split_once(':')?;
    Some((name.to_string(), password.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, password: &str) -> String {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Basic {encoded}")
    }

    fn auth() -> Auth {
        Auth {
            tokens: vec![Secret::new("t1"), Secret::new("t2")],
            users: vec![User {
                name: Secret::new("alice"),
                password: Secret::new("pa:ss"),
            }],
        }
    }

    #[test]
    fn off_by_default() {
        let off = Auth::default();
        assert!(!off.is_enabled());
        assert_eq!(off.check(None), Ok(()));
        assert!(off.challenges().is_empty());
    }

    #[test]
    fn accepts_any_configured_token_or_user() {
        let auth = auth();
        assert_eq!(auth.check(Some("Bearer t1")), Ok(()));
        assert_eq!(auth.check(Some("bearer t2")), Ok(()));
        assert_eq!(auth.check(Some(&basic("alice", "pa:ss"))), Ok(()));
    }

    #[test]
    fn refuses_missing_malformed_and_wrong() {
        let auth = auth();
        assert_eq!(auth.check(None), Err(Refused::Missing));
        assert_eq!(auth.check(Some("t1")), Err(Refused::Malformed));
        assert_eq!(auth.check(Some("Digest x")), Err(Refused::Malformed));
        assert_eq!(auth.check(Some("Basic !!!")), Err(Refused::Malformed));
        assert_eq!(auth.check(Some("Bearer t3")), Err(Refused::Invalid));
        assert_eq!(auth.check(Some("Bearer ")), Err(Refused::Malformed));
        let wrong = [basic("alice", "pa"), basic("bob", "pa:ss"), basic("", "")];
        for value in wrong {
            assert_eq!(auth.check(Some(&value)), Err(Refused::Invalid), "{value}");
        }
    }

    #[test]
    fn challenges_name_the_accepted_schemes() {
        let only_tokens = Auth {
            users: Vec::new(),
            ..auth()
        };
        assert_eq!(only_tokens.challenges(), ["Bearer realm=\"wsp\""]);
        assert_eq!(
            only_tokens.check(Some(&basic("alice", "pa:ss"))),
            Err(Refused::Malformed)
        );
        assert_eq!(auth().challenges().len(), 2);
        assert!(auth().challenges()[1].starts_with("Basic realm=\"wsp\""));
    }
}
