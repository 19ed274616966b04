//! Helpers for the configuration unit tests: files in the temporary directory that
//! remove themselves, for key files and configuration files.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

/// A file in the temporary directory, unique to this process and call, removed on drop.
pub(crate) struct TempFile {
    path: PathBuf,
}

impl TempFile {
    /// Writes `bytes` to a new file whose name ends with `name`.
    pub(crate) fn new(name: &str, bytes: impl AsRef<[u8]>) -> TempFile {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let file = format!("wsp-unit-{}-{n}-{name}", std::process::id());
        let path = std::env::temp_dir().join(file);
        std::fs::write(&path, bytes).unwrap_or_else(|e| panic!("writing {path:?}: {e}"));
        TempFile { path }
    }

    pub(crate) fn path(&self) -> &str {
        self.path.to_str().expect("temporary paths are UTF-8")
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// A path that does not exist, for "cannot read" errors.
pub(crate) const MISSING: &str = "/nonexistent/wsp-unit/key";

/// `text` with the commented-out `# key : value` lines made live, except `skip`, and the
/// keys so uncommented: checks that an example file's commented keys parse.
pub(crate) fn uncomment_keys(text: &str, skip: &str) -> (String, Vec<String>) {
    let mut keys = Vec::new();
    let lines: Vec<&str> = text
        .lines()
        .map(|line| {
            let Some(rest) = line.strip_prefix("# ") else {
                return line;
            };
            match rest.split_once(" : ") {
                Some((key, _)) if key != skip && key.chars().all(|c| c.is_ascii_lowercase()) => {
                    keys.push(key.to_string());
                    rest
                }
                _ => line,
            }
        })
        .collect();
    (lines.join("\n"), keys)
}
