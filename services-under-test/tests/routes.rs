//! Every public route of the platform, through the gateway, over real HTTP.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test may panic on what it did not expect

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};

#[tokio::test]
async fn search_pages_by_itemsperpage_and_startindex() {
    let p = Platform::start().await;
    let name = p.data.artist(7).unwrap().name.clone();
    let first_word = name
        .split(' ')
        .find(|w| w.len() > 3)
        .unwrap()
        .to_lowercase();
    let all = p
        .get_json(&format!("/1.x/search?q={first_word}&itemsperpage=100"))
        .await;
    let total = all["paging"]["total"].as_u64().unwrap();
    assert!(total >= 1);
    let page = p
        .get_json(&format!(
            "/1.x/search?q={first_word}&itemsperpage=2&startindex=1"
        ))
        .await;
    assert_eq!(page["paging"]["itemsperpage"], 2);
    assert_eq!(page["paging"]["startindex"], 1);
    assert_eq!(page["paging"]["total"], total);
    let items = page["items"].as_array().unwrap();
    assert!(items.len() <= 2);
    if total >= 3 {
        assert_eq!(
            items[0], all["items"][1],
            "startindex 1 starts at the second hit"
        );
    }
    for item in all["items"].as_array().unwrap() {
        assert!(
            item["name"]
                .as_str()
                .unwrap()
                .to_lowercase()
                .contains(&first_word)
        );
    }
    let exact = p
        .get_json(&format!(
            "/1.x/search?q={}",
            name.replace(' ', "%20").replace('&', "%26")
        ))
        .await;
    assert_eq!(exact["items"][0]["name"], name, "an exact name ranks first");
    assert_eq!(
        exact["territory"], "GB",
        "the gateway passes the caller's country downstream"
    );

    let tracks = p
        .get_json("/1.x/search?q=love&category=track&itemsperpage=3")
        .await;
    for t in tracks["items"].as_array().unwrap() {
        assert!(t["artist"]["name"].is_string() && t["album"]["title"].is_string());
    }
    let albums = p
        .get_json("/1.x/search?q=silver&category=album&itemsperpage=3")
        .await;
    assert!(
        albums["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["year"].is_u64())
    );
}

#[tokio::test]
async fn bad_search_input_gets_a_json_400_naming_the_parameter() {
    let p = Platform::start().await;
    for (query, needle) in [
        (
            "/1.x/search?q=a&itemsperpage=0",
            "`itemsperpage` must be a whole number from 1 to 100",
        ),
        ("/1.x/search?q=a&itemsperpage=abc", "got \"abc\""),
        ("/1.x/search?q=a&itemsperpage=101", "itemsperpage"),
        ("/1.x/search?q=a&startindex=-3", "`startindex`"),
        ("/1.x/search", "`q` is required"),
        ("/1.x/search?q=%20%20", "`q` is required"),
        (
            "/1.x/search?q=a&category=podcast",
            "`category` must be artist, album or track",
        ),
    ] {
        assert_error(p.get(query).await, 400, needle).await;
    }
    let long = "x".repeat(300);
    assert_error(
        p.get(&format!("/1.x/search?q={long}")).await,
        400,
        "too long",
    )
    .await;
}

#[tokio::test]
async fn lookups_by_id_and_their_404s() {
    let p = Platform::start().await;
    let a = p.data.artist(12).unwrap();
    let artist = p.get_json("/1.x/artists/12").await;
    assert_eq!(artist["name"], a.name.as_str());
    assert!(artist["bio"].as_str().unwrap().contains(&a.name));
    let albums = p.get_json("/1.x/artists/12/albums").await;
    assert_eq!(albums["paging"]["total"], a.albums.len());
    let tracks = p.get_json("/1.x/artists/12/tracks?itemsperpage=3").await;
    assert_eq!(tracks["items"].as_array().unwrap().len(), 3);
    assert_eq!(tracks["items"][0]["id"], a.top_tracks[0]);
    let similar = p.get_json("/1.x/artists/12/similar").await;
    assert_eq!(similar["items"].as_array().unwrap().len(), 10);
    let album = p.get_json(&format!("/1.x/albums/{}", a.albums[0])).await;
    assert_eq!(album["artist"]["id"], 12);
    assert_eq!(
        album["tracks"].as_array().unwrap().len(),
        album["trackcount"].as_u64().unwrap() as usize
    );
    let track = p
        .get_json(&format!("/1.x/tracks/{}", a.top_tracks[0]))
        .await;
    assert_eq!(track["artist"]["id"], 12);
    let genres = p.get_json("/1.x/genres").await;
    assert_eq!(genres["items"].as_array().unwrap().len(), 12);
    let mix = p.get_json("/1.x/mixes/artists/12").await;
    assert_eq!(mix["tracks"].as_array().unwrap().len(), 10);

    assert_error(
        p.get("/1.x/artists/999999").await,
        404,
        "no artist with id 999999",
    )
    .await;
    assert_error(p.get("/1.x/artists/0/similar").await, 404, "no artist").await;
    assert_error(p.get("/1.x/albums/99999999").await, 404, "no album").await;
    assert_error(p.get("/1.x/tracks/99999999").await, 404, "no track").await;
    assert_error(p.get("/1.x/artists/abc").await, 404, "no such resource").await;
    assert_error(
        p.get("/1.x/nowhere").await,
        404,
        "no route for GET /1.x/nowhere",
    )
    .await;
    let r = p
        .http
        .delete(p.url("/1.x/artists/1"))
        .header("x-api-key", API_KEY)
        .send()
        .await
        .unwrap();
    assert_error(r, 405, "DELETE is not allowed").await;
}

#[tokio::test]
async fn the_artist_view_fans_out_to_catalogue_and_mixes_in_about_5kb() {
    let p = Platform::start().await;
    let r = p.get("/1.x/artists/3/view").await;
    assert_eq!(r.status(), 200);
    let body = r.bytes().await.unwrap();
    assert!((3500..8000).contains(&body.len()), "{} bytes", body.len());
    let view: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(view["artist"]["id"], 3);
    assert!(view["artist"]["bio"].as_str().unwrap().len() > 200);
    assert_eq!(view["toptracks"].as_array().unwrap().len(), 10);
    assert!(!view["albums"].as_array().unwrap().is_empty());
    assert_eq!(view["similar"].as_array().unwrap().len(), 10);
    assert_eq!(view["mix"]["id"], "artist-3");
    assert!(view.get("missing").is_none());

    // Without mixes the view still renders, and says what it lacks.
    for m in &p.mixes {
        fault(&p.http, m, json!({"kind": "error", "rate": 1.0})).await;
    }
    let degraded = p.get_json("/1.x/artists/3/view").await;
    assert_eq!(degraded["artist"]["id"], 3);
    assert!(degraded["mix"].is_null());
    assert_eq!(degraded["missing"], json!(["mix"]));
}

#[tokio::test]
async fn radio_is_personal_and_a_thumbs_down_event_changes_it() {
    let p = Platform::start().await;
    assert_error(p.get("/1.x/me/radio").await, 401, "sign in").await;
    let radio: Value = p
        .as_user(DEMO_TOKEN, "/1.x/me/radio?count=50")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(radio["user"], "demo");
    let tracks = radio["tracks"].as_array().unwrap();
    assert_eq!(tracks.len(), 50);
    assert_error(
        p.as_user(DEMO_TOKEN, "/1.x/me/radio?count=500").await,
        400,
        "`count` must be",
    )
    .await;

    // The demo user's favourite artists recur; drop the most frequent one.
    let mut counts = std::collections::HashMap::new();
    for t in tracks {
        *counts
            .entry(t["artist"]["id"].as_u64().unwrap())
            .or_insert(0) += 1;
    }
    let (&victim, _) = counts.iter().max_by_key(|(id, n)| (**n, **id)).unwrap();
    let track = tracks.iter().find(|t| t["artist"]["id"] == victim).unwrap()["id"]
        .as_u64()
        .unwrap();
    let thumbs = json!([
        {"type": "thumbs", "trackid": track, "direction": "down"},
        {"type": "thumbs", "trackid": track, "direction": "down"},
    ]);
    let r = p
        .http
        .post(p.url("/1.x/events"))
        .bearer_auth(DEMO_TOKEN)
        .json(&thumbs)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 202);
    let accepted: Value = r.json().await.unwrap();
    assert_eq!(accepted, json!({"accepted": 2, "dropped": 0}));

    // Fire-and-forget: analytics forwards to every mixes instance shortly after.
    let banned = eventually(Duration::from_secs(5), || async {
        let profile: Value = p
            .as_user(DEMO_TOKEN, "/1.x/me/profile")
            .await
            .json()
            .await
            .unwrap();
        profile["banned_artists"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a == victim)
    })
    .await;
    assert!(banned, "the artist is dropped from the profile");
    for _ in 0..4 {
        let radio: Value = p
            .as_user(DEMO_TOKEN, "/1.x/me/radio?count=50")
            .await
            .json()
            .await
            .unwrap();
        assert!(
            radio["tracks"]
                .as_array()
                .unwrap()
                .iter()
                .all(|t| t["artist"]["id"] != victim)
        );
    }
    for m in &p.mixes {
        let profile: Value = p
            .http
            .get(format!("{}/1.x/users/demo/profile", m.url()))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(
            profile["banned_artists"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| a == victim),
            "every mixes instance heard"
        );
    }
    let stats: Value = p
        .http
        .get(format!("{}/1.x/events/stats", p.analytics[0].url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stats["accepted"], 2);
    assert_eq!(stats["forwarded"], 4);
    assert_eq!(stats["dropped"], 0);
}

#[tokio::test]
async fn events_are_validated_and_counted() {
    let p = Platform::start().await;
    let post = |body: Value| {
        p.http
            .post(p.url("/1.x/events"))
            .header("x-api-key", API_KEY)
            .json(&body)
            .send()
    };
    let r = post(json!([{"type": "playback", "trackid": 5, "position_ms": 1200}, {"type": "navigation", "screen": "home"}])).await.unwrap();
    assert_eq!(r.status(), 202);
    assert_error(
        post(json!([{"type": "playback"}])).await.unwrap(),
        400,
        "events[0]: a playback event needs `trackid`",
    )
    .await;
    assert_error(
        post(json!({"type": "thumbs", "trackid": 1, "direction": "up"}))
            .await
            .unwrap(),
        400,
        "needs a user",
    )
    .await;
    // An app cannot speak for a user by naming one in the body.
    let spoof = json!({"type": "thumbs", "user": "demo", "trackid": 1, "direction": "down"});
    assert_error(post(spoof).await.unwrap(), 400, "needs a user").await;
    let r = p
        .http
        .post(p.url("/1.x/events"))
        .header("x-api-key", API_KEY)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_error(r, 400, "invalid JSON body").await;
    let r = p
        .http
        .post(p.url("/1.x/events"))
        .header("x-api-key", API_KEY)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_error(r, 415, "Content-Type: application/json").await;
    let huge = format!(
        "[{}]",
        vec![r#"{"type":"navigation","screen":"home"}"#; 10_000].join(",")
    );
    let r = p
        .http
        .post(p.url("/1.x/events"))
        .header("x-api-key", API_KEY)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_error(r, 413, "too large").await;
    let stats: Value = p
        .http
        .get(format!("{}/1.x/events/stats", p.analytics[0].url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        stats["accepted"], 2,
        "nothing from a rejected request was accepted"
    );
}

#[tokio::test]
async fn a_full_analytics_queue_drops_and_counts_instead_of_blocking() {
    let http = client();
    let mut spec = spec(lookout_services::ServiceKind::Analytics);
    spec.analytics = Some(lookout_services::AnalyticsSettings {
        queue_capacity: 3,
        mixes: vec![],
    });
    let any = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    let a = lookout_services::Instance::start(spec, any, any, None)
        .await
        .unwrap();
    let many: Vec<Value> = (0..50)
        .map(|i| json!({"type": "playback", "trackid": i + 1}))
        .collect();
    let r: Value = http
        .post(format!("{}/1.x/events", a.url()))
        .json(&many)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let (accepted, dropped) = (
        r["accepted"].as_u64().unwrap(),
        r["dropped"].as_u64().unwrap(),
    );
    assert_eq!(accepted + dropped, 50);
    assert!(dropped > 0, "{r}");
    let metrics = lookout_testkit::http::get_text(&http, format!("{}/metrics", a.url())).await;
    assert!(
        metrics.contains(&format!(
            "platform_analytics_events_dropped_total {dropped}"
        )),
        "{metrics}"
    );
}

#[tokio::test]
async fn play_urls_lead_to_ranged_audio() {
    let p = Platform::start().await;
    let track = p.data.artist(2).unwrap().top_tracks[0];
    let play = p.get_json(&format!("/1.x/tracks/{track}/play")).await;
    let url = play["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&p.gateway.url()), "{url}");
    // The signed URL needs no credentials: a player fetches the first bytes.
    let first = p
        .http
        .get(&url)
        .header("range", "bytes=0-1023")
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 206);
    assert_eq!(
        first.headers()["content-range"],
        format!("bytes 0-1023/{}", lookout_services::media::FILE_LEN)
    );
    assert_eq!(first.headers()["content-type"], "audio/wav");
    assert!(
        first.headers().get("content-encoding").is_none(),
        "audio is never gzipped"
    );
    let bytes = first.bytes().await.unwrap();
    assert_eq!(bytes.len(), 1024);
    assert_eq!(&bytes[0..4], b"RIFF");
    let whole = p.http.get(&url).send().await.unwrap();
    assert_eq!(whole.status(), 200);
    assert_eq!(whole.headers()["accept-ranges"], "bytes");
    let whole = whole.bytes().await.unwrap();
    assert_eq!(whole.len() as u64, lookout_services::media::FILE_LEN);
    assert_eq!(&whole[..1024], &bytes[..]);
    let tail = p
        .http
        .get(&url)
        .header("range", "bytes=-100")
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&tail[..], &whole[whole.len() - 100..]);
    let r = p
        .http
        .get(&url)
        .header("range", "bytes=999999999-")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["content-range"],
        format!("bytes */{}", lookout_services::media::FILE_LEN)
    );
    assert_error(r, 416, "outside the file").await;

    let tampered = url.replace(&format!("/play/{track}/"), &format!("/play/{}/", track + 1));
    assert_error(
        p.http.get(&tampered).send().await.unwrap(),
        403,
        "not valid",
    )
    .await;
    let unsigned = url.split('?').next().unwrap();
    assert_error(
        p.http.get(unsigned).send().await.unwrap(),
        401,
        "needs `expires` and `sig`",
    )
    .await;
    assert_error(p.get("/1.x/tracks/99999999/play").await, 404, "no track").await;
}
