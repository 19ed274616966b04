//! Each side's keys defined once. [`config_keys!`] takes one entry per key (its YAML
//! name, its flag, its type, its check or default, its `--help` text and its README
//! meaning) and writes from them the raw YAML struct, the argh flags struct, the flags'
//! application over the file's values, the defaults of the validated configuration, the
//! checks that need nothing but the key's own value, and the rows of the README's tables.
//!
//! What it leaves to `server.rs` and `client.rs`: the validated types themselves (other
//! code reads their fields), and the checks that involve more than one key or more than a
//! range (pairs with [`super::at_least`], pool sizes, TLS files, the secret key's sources,
//! rules, the console). The checks it can write are those of [`super::checks`].

#[cfg(test)]
use super::checks::Check;

/// Defines one side's configuration keys: see the module documentation, and
/// `server.rs` for a use. The header names the types to write; each entry is one of:
///
/// - `key / flag: T = CHECK, help "..", row "..";` a key and a flag of the same
///   meaning (the flag's value replaces the file's), validated by `CHECK` (a [`super::checks::Check`])
///   into the config field named like the flag, with the check's default;
/// - `key / flag: T, default "..", help "..", row "..";` the same, validated by hand
///   (`default` is the README's default column);
/// - `key / flag: T, default "..", by hand, help "..", row "..";` a flag that does not
///   simply replace the key (the secret key's sources), applied by hand too;
/// - `key / switch flag = CHECK` or `key / switch flag, default ".."`: a `bool` flag;
/// - `key / list flag: T, default ".."`: a repeatable flag whose values replace the
///   file's list;
/// - `key / _: T, default "..", row "..";` a key without a flag;
/// - `_ / flag: T, help "..";` and `_ / list flag: T, default "..", help "..", row "..";`
///   a flag without a key (applied by hand), the first without a README row;
/// - `env NAME, default "..", row "..";` a README row for an environment variable;
/// - `use shutdowntimeout;` (or `secretkeyfile`, `loglevel`, `secretkeyenv`): an entry
///   both sides share, written once below.
///
/// A flag's name is its field's with `-` for `_`, as argh makes it; errors and the README
/// name it the same way ([`flag_name`]).
macro_rules! config_keys {
    // The entries both sides share, spelled once.
    (@munch $h:tt $d:tt use shutdowntimeout; $($rest:tt)*) => {
        $crate::config::keys::config_keys!(@munch $h $d
            shutdowntimeout / shutdown_timeout: u64 = $crate::config::checks::MsOrZero(30000),
                help "ms that in-flight requests may take to finish on SIGTERM; 0 stops at \
                    once (default 30000)",
                row "ms in-flight requests may take to finish on SIGTERM (`0`: stop at once)";
            $($rest)*);
    };
    (@munch $h:tt $d:tt use secretkeyfile; $($rest:tt)*) => {
        $crate::config::keys::config_keys!(@munch $h $d
            secretkeyfile / secret_key_file: String, default "none", by hand,
                help "file holding the secret key (one trailing newline ignored); overrides \
                    WSP_SECRET_KEY and the configuration file's key",
                row "file holding the secret key, instead of `secretkey` / `--secret-key`";
            $($rest)*);
    };
    (@munch $h:tt $d:tt use secretkeyenv; $($rest:tt)*) => {
        $crate::config::keys::config_keys!(@munch $h $d
            env $crate::config::SECRET_KEY_ENV, default "unset",
                row "the secret key, from the environment";
            $($rest)*);
    };
    (@munch $h:tt $d:tt use loglevel; $($rest:tt)*) => {
        $crate::config::keys::config_keys!(@munch $h $d
            loglevel / log_level: String = $crate::config::checks::Level(::log::LevelFilter::Info),
                help "log level: error, warn, info, debug, trace or off (default info)",
                row "`error`, `warn`, `info`, `debug`, `trace` or `off`; a reload applies it";
            $($rest)*);
    };
    // Each form of entry becomes a record of five groups, any of them empty: the raw
    // field, the flag field, the application of the flag, the check, the README row.
    // The flag's type travels as plain tokens, not as a `ty` fragment: argh tells an
    // option, a repeatable flag and a switch apart by reading `Option<..>`, `Vec<..>` or
    // `bool` in the field's type, which a `ty` fragment would hide from it.
    (@munch $h:tt [$($d:tt)*]
        $key:ident / $flag:ident: $ty:ty = $check:expr, help $help:literal, row $row:literal;
        $($rest:tt)*
    ) => {
        $crate::config::keys::config_keys!(@munch $h [$($d)* {
            [$key: $ty, $row] [$flag [Option<$ty>] option $help] [$key $flag]
            [$key $flag: $ty = $check]
            [Row::checked::<$ty, _>(stringify!($key), stringify!($flag), "", &$check, $row)]
        }] $($rest)*);
    };
    (@munch $h:tt [$($d:tt)*]
        $key:ident / $flag:ident: $ty:ty, default $default:literal, help $help:literal,
            row $row:literal;
        $($rest:tt)*
    ) => {
        $crate::config::keys::config_keys!(@munch $h [$($d)* {
            [$key: $ty, $row] [$flag [Option<$ty>] option $help] [$key $flag] []
            [Row::new(stringify!($key), stringify!($flag), "", $default, $row)]
        }] $($rest)*);
    };
    (@munch $h:tt [$($d:tt)*]
        $key:ident / $flag:ident: $ty:ty, default $default:literal, by hand,
            help $help:literal, row $row:literal;
        $($rest:tt)*
    ) => {
        $crate::config::keys::config_keys!(@munch $h [$($d)* {
            [$key: $ty, $row] [$flag [Option<$ty>] option $help] [] []
            [Row::new(stringify!($key), stringify!($flag), "", $default, $row)]
        }] $($rest)*);
    };
    (@munch $h:tt [$($d:tt)*]
        $key:ident / switch $flag:ident = $check:expr, help $help:literal, row $row:literal;
        $($rest:tt)*
    ) => {
        $crate::config::keys::config_keys!(@munch $h [$($d)* {
            [$key: bool, $row] [$flag [bool] switch $help] [$key $flag]
            [$key $flag: bool = $check]
            [Row::checked::<bool, _>(stringify!($key), stringify!($flag), "", &$check, $row)]
        }] $($rest)*);
    };
    (@munch $h:tt [$($d:tt)*]
        $key:ident / switch $flag:ident, default $default:literal, help $help:literal,
            row $row:literal;
        $($rest:tt)*
    ) => {
        $crate::config::keys::config_keys!(@munch $h [$($d)* {
            [$key: bool, $row] [$flag [bool] switch $help] [$key $flag] []
            [Row::new(stringify!($key), stringify!($flag), "", $default, $row)]
        }] $($rest)*);
    };
    (@munch $h:tt [$($d:tt)*]
        $key:ident / list $flag:ident: $ty:ty, default $default:literal, help $help:literal,
            row $row:literal;
        $($rest:tt)*
    ) => {
        $crate::config::keys::config_keys!(@munch $h [$($d)* {
            [$key: Vec<$ty>, $row] [$flag [Vec<$ty>] option $help] [$key $flag] []
            [Row::new(stringify!($key), stringify!($flag),
                " (repeatable, replaces the file's)", $default, $row)]
        }] $($rest)*);
    };
    (@munch $h:tt [$($d:tt)*]
        $key:ident / _: $ty:ty, default $default:literal, row $row:literal;
        $($rest:tt)*
    ) => {
        $crate::config::keys::config_keys!(@munch $h [$($d)* {
            [$key: $ty, $row] [] [] []
            [Row::new(stringify!($key), "", "", $default, $row)]
        }] $($rest)*);
    };
    (@munch $h:tt [$($d:tt)*]
        _ / $flag:ident: $ty:ty, help $help:literal;
        $($rest:tt)*
    ) => {
        $crate::config::keys::config_keys!(@munch $h [$($d)* {
            [] [$flag [Option<$ty>] option $help] [] [] []
        }] $($rest)*);
    };
    (@munch $h:tt [$($d:tt)*]
        _ / list $flag:ident: $ty:ty, default $default:literal, help $help:literal,
            row $row:literal;
        $($rest:tt)*
    ) => {
        $crate::config::keys::config_keys!(@munch $h [$($d)* {
            [] [$flag [Vec<$ty>] option $help] [] []
            [Row::new("", stringify!($flag), " (repeatable)", $default, $row)]
        }] $($rest)*);
    };
    (@munch $h:tt [$($d:tt)*]
        env $env:path, default $default:literal, row $row:literal;
        $($rest:tt)*
    ) => {
        $crate::config::keys::config_keys!(@munch $h [$($d)* {
            [] [] [] [] [Row::env($env, $default, $row)]
        }] $($rest)*);
    };
    (@munch [$($h:tt)*] [$($d:tt)*]) => {
        $crate::config::keys::config_keys!(@emit $($h)* $($d)*);
    };
    (@emit
        [$(#[$raw_meta:meta])*] $Raw:ident
        [$(#[$flags_meta:meta])*] $Flags:ident
        $Config:ident { $($field:ident: $value:expr),* $(,)? }
        $rows:ident
        $({
            [$($key:ident: $raw_ty:ty, $doc:literal)?]
            [$($flag:ident [$($flag_ty:tt)*] $argh:ident $help:literal)?]
            [$($apply_key:ident $apply_flag:ident)?]
            [$($checked_raw:ident $checked:ident: $checked_ty:ty = $check:expr)?]
            [$($row:expr)?]
        })*
    ) => {
        $(#[$raw_meta])*
        #[derive(Debug, Default, ::serde::Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $Raw {
            $($(#[doc = $doc] pub $key: Option<$raw_ty>,)?)*
        }

        $(#[$flags_meta])*
        #[derive(Debug, ::argh::FromArgs)]
        #[argh(help_triggers("-h", "--help", "help"))]
        pub struct $Flags {
            $($(#[doc = $help] #[argh($argh)] pub $flag: $($flag_ty)*,)?)*
        }

        /// No flag set: the values argh gives for an empty command line.
        impl Default for $Flags {
            fn default() -> Self {
                $Flags { $($($flag: Default::default(),)?)* }
            }
        }

        /// The defaults of the keys the table checks, then those of the other fields.
        impl Default for $Config {
            fn default() -> Self {
                use $crate::config::checks::Check;
                $Config {
                    $($($checked: Check::<$checked_ty>::default_value(&$check),)?)*
                    $($field: $value,)*
                }
            }
        }

        impl $Raw {
            /// Puts each flag that is set over the file's value of its key, recording it
            /// in `sources` so that errors name the flag.
            fn apply_flags(&mut self, flags: &$Flags, sources: &mut $crate::config::Sources) {
                $($(
                    let given = $crate::config::keys::Given::given(&flags.$apply_flag);
                    let names = (stringify!($apply_key), stringify!($apply_flag));
                    sources.apply(&mut self.$apply_key, given, names);
                )?)*
            }

            /// Checks the keys that the table checks, taking their values into `config`
            /// (the default when unset).
            fn check_into(
                &mut self,
                config: &mut $Config,
                sources: &$crate::config::Sources,
            ) -> Result<(), $crate::config::ConfigError> {
                use $crate::config::checks::Check;
                $($(
                    config.$checked = Check::<$checked_ty>::check(
                        &$check,
                        self.$checked_raw.take(),
                        sources,
                        stringify!($checked_raw),
                    )?;
                )?)*
                Ok(())
            }
        }

        /// The README's table of these keys, row by row.
        #[cfg(test)]
        pub(crate) fn $rows() -> Vec<$crate::config::keys::Row> {
            use $crate::config::keys::Row;
            vec![$($($row,)?)*]
        }
    };
    // The entry point: the header, then the entries.
    (
        $(#[$raw_meta:meta])* raw $Raw:ident;
        $(#[$flags_meta:meta])* flags $Flags:ident;
        defaults $Config:ident { $($other:tt)* }
        rows $rows:ident;
        $($entries:tt)*
    ) => {
        $crate::config::keys::config_keys!(@munch
            [[$(#[$raw_meta])*] $Raw [$(#[$flags_meta])*] $Flags $Config { $($other)* } $rows]
            [] $($entries)*);
    };
}
pub(crate) use config_keys;

/// A flag's value in the form its key holds it, when the flag was given: what
/// [`super::Sources::apply`] puts over the file's value. argh leaves a switch `false` and a
/// repeatable flag empty when they are not given, so those count as not given.
pub(crate) trait Given {
    /// The key's value.
    type Value: Clone;
    /// The value, if the flag was given.
    fn given(&self) -> Option<&Self::Value>;
}

impl<T: Clone> Given for Option<T> {
    type Value = T;
    fn given(&self) -> Option<&T> {
        self.as_ref()
    }
}

impl Given for bool {
    type Value = bool;
    fn given(&self) -> Option<&bool> {
        self.then_some(&true)
    }
}

impl<T: Clone> Given for Vec<T> {
    type Value = Vec<T>;
    fn given(&self) -> Option<&Vec<T>> {
        (!self.is_empty()).then_some(self)
    }
}

/// The flag argh makes of a field: `ping_interval` is `--ping-interval`.
pub(crate) fn flag_name(field: &str) -> String {
    format!("--{}", field.replace('_', "-"))
}

/// One row of a README table: key, flag, default, meaning.
#[cfg(test)]
pub(crate) struct Row {
    key: String,
    flag: String,
    default: String,
    meaning: &'static str,
}

#[cfg(test)]
impl Row {
    /// A row for `key` (empty: none) and the flag of `field` (empty: none) followed by
    /// `note`, with the default as the README says it.
    pub(crate) fn new(
        key: &str,
        field: &str,
        note: &str,
        default: &str,
        meaning: &'static str,
    ) -> Row {
        let cell = |name: &str| match name {
            "" => String::new(),
            name => format!("`{name}`"),
        };
        let flag = match field {
            "" => String::new(),
            field => format!("{}{note}", cell(&flag_name(field))),
        };
        Row {
            key: cell(key),
            flag,
            default: default.to_string(),
            meaning,
        }
    }

    /// A row whose default is the check's.
    pub(crate) fn checked<T, C: Check<T>>(
        key: &str,
        field: &str,
        note: &str,
        check: &C,
        meaning: &'static str,
    ) -> Row {
        Row::new(key, field, note, &check.readme(), meaning)
    }

    /// A row for an environment variable.
    pub(crate) fn env(name: &str, default: &str, meaning: &'static str) -> Row {
        Row {
            key: String::new(),
            flag: format!("env `{name}`"),
            default: default.to_string(),
            meaning,
        }
    }
}

/// The markdown table of `rows`, as the README holds it.
#[cfg(test)]
pub(crate) fn table(rows: &[Row]) -> String {
    let mut text = String::from("| key | flag | default | meaning |\n|---|---|---|---|\n");
    for Row {
        key,
        flag,
        default,
        meaning,
    } in rows
    {
        // An empty cell is `| |`, as the tables were written by hand.
        for cell in [key.as_str(), flag, default, meaning] {
            match cell {
                "" => text.push_str("| "),
                cell => text.push_str(&format!("| {cell} ")),
            }
        }
        text.push_str("|\n");
    }
    text
}

#[cfg(test)]
mod tests;
