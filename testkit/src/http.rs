//! The reads every test makes of a server it started: a body as text or JSON, failing the
//! test with the address when the server does not answer.

use serde_json::Value;

/// GET `url` (with a bearer token when given); the answer, whatever its status.
async fn get(
    http: &reqwest::Client,
    url: impl reqwest::IntoUrl,
    token: Option<&str>,
) -> (reqwest::Url, reqwest::Response) {
    let url = url.into_url().unwrap();
    let mut request = http.get(url.clone());
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let r = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    (url, r)
}

/// GET `url`; the body as text, whatever the status.
pub async fn get_text(http: &reqwest::Client, url: impl reqwest::IntoUrl) -> String {
    get(http, url, None).await.1.text().await.unwrap()
}

/// GET `url` with a bearer token; the body as JSON, whatever the status.
pub async fn get_json(http: &reqwest::Client, url: impl reqwest::IntoUrl, token: &str) -> Value {
    get(http, url, Some(token)).await.1.json().await.unwrap()
}

/// GET `url`, which must answer 200; the body as text.
pub async fn get_ok(http: &reqwest::Client, url: impl reqwest::IntoUrl) -> String {
    let (url, r) = get(http, url, None).await;
    assert_eq!(r.status(), 200, "GET {url}");
    r.text().await.unwrap()
}
