//! A child process that dies with the test, however the test ends, and whose log is shown when
//! the test fails.

use std::fs::File;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// How much of a failed test's child log is printed.
const TAIL_LINES: usize = 40;

pub struct Guard {
    name: String,
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Guard {
    /// Starts `command` with its stdout and stderr in a log file; `name` and `install` say
    /// what it is and how to get it, should it not start.
    pub fn spawn(name: &str, mut command: Command, install: &str) -> Guard {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join(format!("{name}.log"));
        let out = File::create(&log).unwrap();
        let err = out.try_clone().unwrap();
        let child = command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({e}): {install}"));
        Guard {
            name: name.to_owned(),
            child,
            log,
            _dir: dir,
        }
    }

    /// Everything it wrote so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The last lines it wrote, for a failure message.
    pub fn tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(TAIL_LINES)..].join("\n")
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `Some` once it has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGKILL now, and reap it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("--- the last of {}'s log ---\n{}", self.name, self.tail());
        }
    }
}
