//! A target for checks to probe: an HTTP server on 127.0.0.1 that answers `200 ok` to any
//! request, or `503` while the test says it is failing (an outage every region sees).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub struct Target {
    pub port: u16,
    failing: Arc<AtomicBool>,
}

impl Target {
    pub async fn start() -> Target {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let failing = Arc::new(AtomicBool::new(false));
        let flag = failing.clone();
        tokio::spawn(async move {
            while let Ok((mut conn, _)) = listener.accept().await {
                let flag = flag.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut got = Vec::new();
                    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                        match conn.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    let status = if flag.load(Ordering::Relaxed) {
                        "503 Service Unavailable"
                    } else {
                        "200 OK"
                    };
                    let answer = format!(
                        "HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
                    );
                    let _ = conn.write_all(answer.as_bytes()).await;
                });
            }
        });
        Target { port, failing }
    }

    /// From now on every request fails (`true`) or succeeds again (`false`).
    pub fn fail(&self, failing: bool) {
        self.failing.store(failing, Ordering::Relaxed);
    }
}
