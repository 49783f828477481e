//! moto's server: AWS's APIs (Auto Scaling, EC2, IAM) on loopback.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const INSTALL: &str = "these tests need python3 with moto's server and boto3; install them with\n    \
                       python3 -m pip install 'moto[server]' boto3\n(add --break-system-packages on \
                       Debian's own python3), or run ./scripts/test, which does";

pub struct Moto {
    pub endpoint: String,
    child: Child,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Moto {
    pub async fn start() -> Moto {
        let check = Command::new("python3")
            .args(["-c", "import moto.server, boto3"])
            .output();
        match check {
            Ok(out) if out.status.success() => {}
            _ => panic!("{INSTALL}"),
        }
        let mut child = Command::new("python3")
            .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start python3 -m moto.server ({e}): {INSTALL}"));
        let stderr = child.stderr.take().expect("moto's stderr");
        let (tx, rx) = mpsc::channel();
        // Werkzeug says where it listens on stderr, then logs every request there: keep
        // reading, so that a full pipe never stalls the server.
        std::thread::spawn(move || {
            let mut told = false;
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if !told && let Some(at) = line.find("Running on http://") {
                    let url = line[at + "Running on ".len()..].trim().to_owned();
                    told = tx.send(url).is_ok();
                }
            }
        });
        let mut moto = Moto {
            endpoint: String::new(),
            child,
        };
        moto.endpoint =
            tokio::task::spawn_blocking(move || rx.recv_timeout(Duration::from_secs(60)))
                .await
                .expect("join")
                .expect("moto did not say where it listens within 60 s");
        let http = reqwest::Client::new();
        let answers = crate::eventually(Duration::from_secs(20), || async {
            http.get(format!("{}/moto-api/", moto.endpoint))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok()
        })
        .await;
        assert!(answers, "moto at {} never answered", moto.endpoint);
        moto
    }
}
