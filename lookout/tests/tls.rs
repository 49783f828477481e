//! Lookout's own listeners over TLS: a collector, agents and a status page as real processes
//! with a certificate from a test CA (rcgen). The agents push over https and the status page
//! reads the collector over https, each trusting the CA of `tls.ca`; a client without that CA,
//! and plain HTTP to a TLS port, are refused; the config's mistakes are named.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::disallowed_methods)] // a test may panic; process waits are synchronous

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use lookout_testkit::target::Target;
use lookout_testkit::{Guard, free_port, wait_until};
use serde_json::Value;

const LOOKOUT: &str = env!("CARGO_BIN_EXE_lookout");
const TOKEN: &str = "tls-test-token";

fn write_config(dir: &Path, tls: &str, target: u16) -> PathBuf {
    let text = format!(
        "data_dir: {}\nplatform:\n  admin_token: x\n  gateway:\n    api_keys: [k]\ncollector:\n  token: {TOKEN}\nprobes:\n  regions: [eu, us]\n  flush_interval: 200ms\nchecks:\n  - name: play\n    interval: 1s\n    timeout: 1s\n    steps:\n      - url: http://127.0.0.1:{target}/play\nstatus_page:\n  admin_token: page-token\n  refresh_every: 1s\n  groups:\n    - name: Music\n      components:\n        - {{ name: Playback, check: play }}\n{tls}",
        dir.join("data").display()
    );
    let path = dir.join("lookout.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

fn spawn(name: &str, args: &[&str], config: &Path) -> Guard {
    let mut command = Command::new(LOOKOUT);
    command
        .args(args)
        .arg("--config")
        .arg(config)
        .env("RUST_LOG", "warn");
    Guard::spawn(name, command, "cargo builds it")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_collector_and_status_page_serve_tls_and_their_clients_verify_it() {
    let dir = tempfile::tempdir().unwrap();
    let pki = lookout_testkit::pki::pki(&["127.0.0.1", "localhost"]);
    let [ca_file, cert_file, key_file] = pki.write(dir.path());
    let target = Target::start().await;
    let tls = format!(
        "tls:\n  cert: {}\n  key: {}\n  ca: {}\n",
        cert_file.display(),
        key_file.display(),
        ca_file.display()
    );
    let config = write_config(dir.path(), &tls, target.port);

    let (collector_port, page_port) = (free_port(), free_port());
    let collector = format!("https://127.0.0.1:{collector_port}");
    let _collector = spawn(
        "collector",
        &[
            "collector",
            "--listen",
            &format!("127.0.0.1:{collector_port}"),
        ],
        &config,
    );
    let _agents: Vec<Guard> = ["eu", "us"]
        .iter()
        .map(|region| {
            spawn(
                &format!("agent-{region}"),
                &["probe", "--region", region, "--collector", &collector],
                &config,
            )
        })
        .collect();
    let _page = spawn(
        "status-page",
        &[
            "status-page",
            "--collector",
            &collector,
            "--listen",
            &format!("127.0.0.1:{page_port}"),
        ],
        &config,
    );

    let trusting = reqwest::Client::builder()
        .no_proxy()
        .add_root_certificate(reqwest::Certificate::from_pem(pki.ca.as_bytes()).unwrap())
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let results_url = format!("{collector}/api/v1/results?check=play&limit=1000");
    wait_until(
        "both agents' results, pushed over https",
        Duration::from_secs(60),
        || {
            let (http, url) = (trusting.clone(), results_url.clone());
            async move {
                let Ok(r) = http.get(&url).bearer_auth(TOKEN).send().await else {
                    return false;
                };
                let body: Value = r.json().await.unwrap_or_default();
                let regions: std::collections::BTreeSet<String> = body["results"]
                    .as_array()
                    .map(|rs| {
                        rs.iter()
                            .filter_map(|r| r["region"].as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default();
                regions.len() == 2
            }
        },
    )
    .await;

    // The status page reads the collector over https, and serves its page over https.
    let summary = format!("https://127.0.0.1:{page_port}/api/v2/summary.json");
    wait_until(
        "the status page shows the collector's state",
        Duration::from_secs(30),
        || {
            let (http, url) = (trusting.clone(), summary.clone());
            async move {
                let Ok(r) = http.get(&url).send().await else {
                    return false;
                };
                let body: Value = r.json().await.unwrap_or_default();
                body["components"][0]["status"] == "operational"
            }
        },
    )
    .await;

    // Without the CA, the certificate is refused; plain HTTP gets no answer.
    let untrusting = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let refused = untrusting
        .get(&results_url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap_err();
    let chain = format!("{:?}", refused);
    assert!(
        chain.to_lowercase().contains("certificate") || chain.contains("UnknownIssuer"),
        "{chain}"
    );
    let plain = untrusting
        .get(format!("http://127.0.0.1:{collector_port}/api/v1/results"))
        .bearer_auth(TOKEN)
        .send()
        .await;
    assert!(plain.is_err(), "plain HTTP answered: {plain:?}");
}

#[test]
fn tls_mistakes_are_named_with_their_place() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nowhere.pem");
    let not_pem = dir.path().join("not.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let tls = format!(
        "tls:\n  cert: {}\n  ca: {}\n",
        missing.display(),
        not_pem.display()
    );
    let text = refused(dir.path(), &tls);
    assert!(
        text.contains("tls.cert: needs `tls.key` beside it"),
        "{text}"
    );
    assert!(text.contains("tls.ca:"), "{text}");
    assert!(text.contains("holds no PEM certificate"), "{text}");
    assert!(
        text.contains("lookout.yaml:25:9: tls.cert") && text.contains("lookout.yaml:26:7: tls.ca"),
        "names the line and column: {text}"
    );

    let tls = format!(
        "tls:\n  cert: {}\n  key: {}\n",
        missing.display(),
        missing.display()
    );
    let text = refused(dir.path(), &tls);
    assert!(text.contains("nowhere.pem: cannot read it"), "{text}");
}

/// What `lookout check-config` says of a config with `tls`, which it must refuse.
fn refused(dir: &Path, tls: &str) -> String {
    let config = write_config(dir, tls, 1);
    let out = Command::new(LOOKOUT)
        .arg("check-config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).to_string()
}
