//! Python's aiosmtpd, storing each message as JSON in a directory. It refuses any recipient
//! named `refuse@...` with a 550 and accepts AUTH as `lookout` / `right-password`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::Guard;

const SERVER: &str = include_str!("../../support/smtp_server.py");
const INSTALL: &str = "the email tests need python3 with aiosmtpd: install python3, then \
                       `python3 -m pip install aiosmtpd` (./scripts/test does both)";

pub struct Smtp {
    pub port: u16,
    mail: PathBuf,
    guard: Guard,
    _dir: tempfile::TempDir,
}

impl Smtp {
    pub async fn start() -> Smtp {
        let probe = Command::new("python3")
            .args(["-c", "import aiosmtpd"])
            .output()
            .unwrap_or_else(|e| panic!("cannot run python3 ({e}): {INSTALL}"));
        assert!(probe.status.success(), "aiosmtpd is missing: {INSTALL}");
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("smtp_server.py");
        let mail = dir.path().join("mail");
        std::fs::write(&script, SERVER).unwrap();
        std::fs::create_dir(&mail).unwrap();
        let mut command = Command::new("python3");
        command.arg(&script).arg(&mail);
        let mut guard = Guard::spawn("aiosmtpd", command, INSTALL);
        let port_file = mail.join("port");
        let up = crate::eventually(Duration::from_secs(20), || {
            let up = port_file.exists();
            async move { up }
        })
        .await;
        if !up {
            panic!(
                "the SMTP server did not start ({:?}):\n{}",
                guard.exited(),
                guard.tail()
            );
        }
        let port = std::fs::read_to_string(&port_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        Smtp {
            port,
            mail,
            guard,
            _dir: dir,
        }
    }

    pub fn log(&self) -> String {
        self.guard.log()
    }

    /// Where the messages are stored.
    pub fn mail_dir(&self) -> &Path {
        &self.mail
    }

    /// The messages stored so far, oldest first.
    pub fn messages(&self) -> Vec<Value> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(&self.mail)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }
}
