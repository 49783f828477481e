//! The `lookout` binary's parts as a library: the config, `lookout up`'s supervisor and wiring,
//! and each part run alone. The binary (`main.rs`) is its command line; the benchmarks
//! (`lookout-bench`) start the suite through the same code.
#![forbid(unsafe_code)]

pub mod cluster_up;
pub mod config;
pub mod launcher;
pub mod logging;
pub mod monitor;
pub mod probe;
pub mod reload;
pub mod service;
pub mod supervisor;

use std::path::PathBuf;

/// Failures that are the user's to fix (bad config, an address in use): exit code 2.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// The `lookout` executable, which every child process of the suite runs: this program when it
/// is `lookout`, else the `lookout` beside it (`lookout-bench` starts the suite from there).
pub fn lookout_exe() -> std::io::Result<PathBuf> {
    let me = std::env::current_exe()?;
    if me.file_stem().is_some_and(|s| s == "lookout") {
        return Ok(me);
    }
    let beside = me.with_file_name(format!("lookout{}", std::env::consts::EXE_SUFFIX));
    if beside.exists() {
        Ok(beside)
    } else {
        Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!(
                "no lookout executable beside {} (build it: cargo build --release -p lookout)",
                me.display()
            ),
        ))
    }
}
