//! VictoriaMetrics: a server that speaks InfluxDB v2's write API and answers PromQL.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use crate::Guard;

const INSTALL: &str = "./scripts/test installs Debian's victoria-metrics package";

pub struct Victoria {
    pub port: u16,
    guard: Option<Guard>,
    data: PathBuf,
    _dir: tempfile::TempDir,
}

impl Victoria {
    pub async fn start() -> Victoria {
        Self::start_on(crate::free_port()).await
    }

    /// On a given port: a test that stops it starts it again where its clients look.
    pub async fn start_on(port: u16) -> Victoria {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut vm = Victoria {
            port,
            guard: None,
            data,
            _dir: dir,
        };
        vm.restart().await;
        vm
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Kills it (SIGKILL): its writers see refused connections until [`Self::restart`].
    pub fn kill(&mut self) {
        self.guard = None;
    }

    /// Starts it again on the same port and data.
    pub async fn restart(&mut self) {
        self.guard = None;
        let mut command = Command::new("victoria-metrics");
        command
            .arg(format!("-httpListenAddr=127.0.0.1:{}", self.port))
            .arg(format!("-storageDataPath={}", self.data.display()))
            // Fresh points are readable at once rather than after the default 30 s.
            .arg("-search.latencyOffset=0s")
            .arg("-loggerLevel=ERROR");
        let mut guard = Guard::spawn("victoria-metrics", command, INSTALL);
        super::ready(
            &mut guard,
            &format!("{}/health", self.url()),
            Duration::from_secs(20),
        )
        .await;
        self.guard = Some(guard);
    }
}
