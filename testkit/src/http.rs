//! The reads every test makes of a server it started: a body as text or JSON, failing the
//! test with the address when the server does not answer.

use serde_json::Value;

/// GET `url`; the body as text, whatever the status.
pub async fn get_text(http: &reqwest::Client, url: impl reqwest::IntoUrl) -> String {
    let url = url.into_url().unwrap();
    let r = http
        .get(url.clone())
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    r.text().await.unwrap()
}

/// GET `url` with a bearer token; the body as JSON, whatever the status.
pub async fn get_json(http: &reqwest::Client, url: impl reqwest::IntoUrl, token: &str) -> Value {
    let url = url.into_url().unwrap();
    let r = http
        .get(url.clone())
        .bearer_auth(token)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    r.json().await.unwrap()
}

/// GET `url`, which must answer 200; the body as text.
pub async fn get_ok(http: &reqwest::Client, url: impl reqwest::IntoUrl) -> String {
    let url = url.into_url().unwrap();
    let r = http
        .get(url.clone())
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    assert_eq!(r.status(), 200, "GET {url}");
    r.text().await.unwrap()
}
