//! `promtool check metrics`: Prometheus's own lint of an exposition.

use std::io::Write;
use std::process::{Command, Stdio};

/// Lints one exposition; the lint's complaints when there are any.
pub fn promtool_check(text: &str) -> Result<(), String> {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| {
            format!("promtool not runnable ({e}); ./scripts/test installs Debian's prometheus package, which has it")
        })?;
    let mut stdin = child.stdin.take().ok_or("promtool has no stdin")?;
    stdin
        .write_all(text.as_bytes())
        .map_err(|e| e.to_string())?;
    drop(stdin);
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}
