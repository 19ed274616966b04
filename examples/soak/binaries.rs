//! Where a tool run from `target/release/examples/` finds the release binaries, and the
//! directory its logs go to. Shared by the soak and the benchmark (`#[path]`).

use std::path::{Path, PathBuf};

/// Where the release binaries are.
pub struct Binaries {
    pub server: PathBuf,
    pub client: PathBuf,
    pub test_api: PathBuf,
}

impl Binaries {
    /// The binaries in `release_dir`.
    pub fn beside(release_dir: &Path) -> Result<Binaries, String> {
        let bins = Binaries {
            server: release_dir.join("wsp_server"),
            client: release_dir.join("wsp_client"),
            test_api: release_dir.join("examples").join("test_api"),
        };
        for path in [&bins.server, &bins.client, &bins.test_api] {
            if !path.is_file() {
                return Err(format!(
                    "{} not found: run `cargo build --release --bins --examples`",
                    path.display()
                ));
            }
        }
        Ok(bins)
    }
}

/// `target/release/`: this program runs from its `examples/` directory.
pub fn release_dir() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("finding this program: {e}"))?;
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .ok_or_else(|| format!("{} is not in target/release/examples/", exe.display()))
}

/// `dir`, emptied of the logs of an earlier run.
pub fn fresh_dir(dir: &Path) -> Result<PathBuf, String> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(|e| format!("emptying {}: {e}", dir.display()))?;
    }
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    Ok(dir.to_path_buf())
}
