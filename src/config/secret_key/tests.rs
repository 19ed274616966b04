//! Unit tests of the secret key's sources: precedence, key files, the environment, and
//! that the key never shows in a message.

use super::*;
use crate::config::testing::{TempFile, MISSING};

/// The YAML file's name in messages.
const FILE: &str = "wsp.cfg";

/// The key chosen with these sources, or the error message.
fn choose(
    overrides: KeyOverrides<'_>,
    secretkey: Option<&str>,
    secretkeyfile: Option<&str>,
) -> Result<String, String> {
    let sources = Sources::new(FILE);
    let secretkey = secretkey.map(Secret::new);
    let secretkeyfile = secretkeyfile.map(String::from);
    match choose_key(overrides, secretkey, secretkeyfile, &sources) {
        Ok(key) => Ok(key.expose().to_string()),
        Err(e) => Err(e.to_string()),
    }
}

/// The key read from a key file holding `bytes`, given with `--secret-key-file`.
fn from_key_file(bytes: &[u8]) -> (Result<String, String>, TempFile) {
    let file = TempFile::new("key", bytes);
    let overrides = KeyOverrides {
        flag_file: Some(file.path()),
        ..KeyOverrides::default()
    };
    (choose(overrides, None, None), file)
}

#[test]
fn key_file_loses_one_trailing_newline_only() {
    for (bytes, want) in [
        (&b"s3cret"[..], "s3cret"),
        (b"s3cret\n", "s3cret"),
        (b"s3cret\r\n", "s3cret"),
        (b"with inner space\n", "with inner space"),
        (b"\xc3\xa9t\xc3\xa9\n", "\u{e9}t\u{e9}"),
    ] {
        let (key, _file) = from_key_file(bytes);
        assert_eq!(key.as_deref(), Ok(want), "{bytes:?}");
    }
}

#[test]
fn key_file_with_more_than_one_newline_or_spaces_is_refused() {
    for (bytes, reason) in [
        (&b"s3cret\n\n"[..], "must not contain control characters"),
        (b"s3cret\r", "must not contain control characters"),
        (b"s3\x00cret", "must not contain control characters"),
        (b"\ts3cret\n", "must not contain control characters"),
        (b"s3cret \n", "must not start or end with a space"),
        (b" s3cret", "must not start or end with a space"),
    ] {
        let (key, file) = from_key_file(bytes);
        let want = format!(
            "command line: --secret-key-file: {}: {reason} (only one trailing newline is removed)",
            file.path()
        );
        assert_eq!(key, Err(want), "{bytes:?}");
    }
}

#[test]
fn empty_key_file_is_refused() {
    for bytes in [&b""[..], b"\n", b"\r\n"] {
        let (key, file) = from_key_file(bytes);
        let want = format!(
            "command line: --secret-key-file: {}: empty (a key file holds the key, \
             optionally ending with a newline)",
            file.path()
        );
        assert_eq!(key, Err(want), "{bytes:?}");
    }
}

#[test]
fn key_file_over_the_cap_or_not_utf8_is_refused() {
    let (key, _file) = from_key_file(&[b'k'; MAX_KEY_FILE_BYTES]);
    assert_eq!(key.map(|k| k.len()), Ok(MAX_KEY_FILE_BYTES));
    let (key, file) = from_key_file(&[b'k'; MAX_KEY_FILE_BYTES + 1]);
    let want = format!(
        "command line: --secret-key-file: {}: larger than 4096 bytes",
        file.path()
    );
    assert_eq!(key, Err(want));
    let (key, file) = from_key_file(b"\xff\xfe\n");
    let want = format!(
        "command line: --secret-key-file: {}: not UTF-8 text",
        file.path()
    );
    assert_eq!(key, Err(want));
}

#[test]
fn unreadable_key_file_names_path_and_os_error() {
    let overrides = KeyOverrides {
        flag_file: Some(MISSING),
        ..KeyOverrides::default()
    };
    let msg = choose(overrides, None, None).err().unwrap_or_default();
    let want = format!("command line: --secret-key-file: cannot read {MISSING}: ");
    assert!(msg.starts_with(&want), "{msg}");
    assert!(msg.contains("No such file or directory"), "{msg}");

    let msg = choose(KeyOverrides::default(), None, Some(MISSING));
    let msg = msg.err().unwrap_or_default();
    let want = format!("{FILE}: secretkeyfile: cannot read {MISSING}: ");
    assert!(msg.starts_with(&want), "{msg}");

    let dir = std::env::temp_dir();
    let dir = dir.to_str().expect("UTF-8 temporary directory");
    let msg = choose(KeyOverrides::default(), None, Some(dir));
    let msg = msg.err().unwrap_or_default();
    assert!(msg.starts_with(&format!("{FILE}: secretkeyfile: cannot read {dir}: ")));
}

#[test]
fn precedence_flag_then_flag_file_then_env_then_yaml_file_then_yaml() {
    let flag = Secret::new("from-flag");
    let flag_file = TempFile::new("flag-key", "from-flag-file\n");
    let yaml_file = TempFile::new("yaml-key", "from-yaml-file\n");
    let env = OsStr::new("from-env");
    let all = KeyOverrides {
        flag: Some(&flag),
        flag_file: None,
        env: Some(env),
    };
    // Both flags at once are an error, so the flag and the flag file are tried apart.
    let yaml = (Some("from-yaml"), None);
    let yaml_file = (None, Some(yaml_file.path()));
    assert_eq!(choose(all, yaml.0, yaml.1), Ok("from-flag".into()));
    assert_eq!(
        choose(all, yaml_file.0, yaml_file.1),
        Ok("from-flag".into())
    );
    let files = KeyOverrides {
        flag: None,
        flag_file: Some(flag_file.path()),
        ..all
    };
    assert_eq!(choose(files, yaml.0, yaml.1), Ok("from-flag-file".into()));
    let env_only = KeyOverrides { flag: None, ..all };
    assert_eq!(choose(env_only, yaml.0, yaml.1), Ok("from-env".into()));
    assert_eq!(
        choose(env_only, yaml_file.0, yaml_file.1),
        Ok("from-env".into())
    );
    let none = KeyOverrides::default();
    assert_eq!(
        choose(none, yaml_file.0, yaml_file.1),
        Ok("from-yaml-file".into())
    );
    assert_eq!(choose(none, yaml.0, yaml.1), Ok("from-yaml".into()));
    assert_eq!(choose(none, None, None), Ok(String::new()));
}

#[test]
fn empty_environment_value_counts_as_unset() {
    let empty = KeyOverrides {
        env: Some(OsStr::new("")),
        ..KeyOverrides::default()
    };
    assert_eq!(
        choose(empty, Some("from-yaml"), None),
        Ok("from-yaml".into())
    );
    assert_eq!(choose(empty, None, None), Ok(String::new()));
}

#[test]
fn overridden_key_files_are_not_read() {
    let flag = Secret::new("from-flag");
    let overrides = KeyOverrides {
        flag: Some(&flag),
        ..KeyOverrides::default()
    };
    assert_eq!(
        choose(overrides, None, Some(MISSING)),
        Ok("from-flag".into())
    );
    let env = KeyOverrides {
        env: Some(OsStr::new("from-env")),
        ..KeyOverrides::default()
    };
    assert_eq!(choose(env, None, Some(MISSING)), Ok("from-env".into()));
}

#[test]
fn both_forms_in_one_place_are_refused() {
    let flag = Secret::new("from-flag");
    let file = TempFile::new("key", "from-flag-file");
    let both = KeyOverrides {
        flag: Some(&flag),
        flag_file: Some(file.path()),
        env: None,
    };
    let want = "command line: --secret-key-file: give either --secret-key or \
                --secret-key-file, not both";
    assert_eq!(choose(both, None, None), Err(want.to_string()));
    let want = format!("{FILE}: secretkeyfile: give either secretkey or secretkeyfile, not both");
    let msg = choose(KeyOverrides::default(), Some("a"), Some(file.path()));
    assert_eq!(msg, Err(want.clone()));
    // A file that says two things is wrong even when a flag overrides both.
    let flag_only = KeyOverrides {
        flag: Some(&flag),
        ..KeyOverrides::default()
    };
    assert_eq!(choose(flag_only, Some("a"), Some(file.path())), Err(want));
}

#[test]
fn keys_http_cannot_carry_are_refused_wherever_they_come_from() {
    let flag = Secret::new("hunter2\n");
    let overrides = KeyOverrides {
        flag: Some(&flag),
        ..KeyOverrides::default()
    };
    let want = "command line: --secret-key: must not contain control characters";
    assert_eq!(choose(overrides, None, None), Err(want.into()));
    let env = KeyOverrides {
        env: Some(OsStr::new(" hunter2")),
        ..KeyOverrides::default()
    };
    let want = "environment: WSP_SECRET_KEY: must not start or end with a space";
    assert_eq!(choose(env, None, None), Err(want.into()));
    let want = format!("{FILE}: secretkey: must not start or end with a space");
    assert_eq!(
        choose(KeyOverrides::default(), Some("hunter2 "), None),
        Err(want)
    );
}

#[cfg(unix)]
#[test]
fn non_utf8_environment_value_is_refused() {
    use std::os::unix::ffi::OsStrExt;
    let env = KeyOverrides {
        env: Some(OsStr::from_bytes(b"\xff")),
        ..KeyOverrides::default()
    };
    let want = "environment: WSP_SECRET_KEY: not UTF-8";
    assert_eq!(choose(env, Some("from-yaml"), None), Err(want.into()));
}

#[test]
fn the_key_never_shows_in_messages_or_debug() {
    let (key, _file) = from_key_file(b"hunter2\n\n");
    assert!(key.is_err_and(|msg| !msg.contains("hunter2")));
    let (key, _file) = from_key_file(b"hunter2 ");
    assert!(key.is_err_and(|msg| !msg.contains("hunter2")));
    let env = Environment {
        secret_key: Some("hunter2".into()),
        vars: [("TOKEN".to_string(), "hunter3".into())].into(),
    };
    assert_eq!(format!("{env:?}"), "Environment { secret_key: Some(***) }");
    let unset = Environment::default();
    assert_eq!(format!("{unset:?}"), "Environment { secret_key: None }");
}
