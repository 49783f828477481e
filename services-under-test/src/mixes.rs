//! mixes: "Play Me" personal radio. Each user's taste profile picks their next tracks;
//! thumbs change the profile, and two thumbs down on an artist drop it from their radio.
//! Profiles live in memory, per instance, seeded for the demo users.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};

use axum::Router;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::catalogue::{CACHE_CONTROL, TrackBody, track_body};
use crate::data::{Dataset, GENRES};
use crate::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};

/// Thumbs down on one artist this many times drops the artist from the user's radio.
pub const DOWNS_TO_BAN: u8 = 2;
const MAX_PROFILES: usize = 100_000;
const MAX_RADIO: usize = 50;
const DEFAULT_RADIO: usize = 10;

/// Users that exist from the start, with their tastes: (user, genres they like).
pub const DEMO_USERS: &[(&str, &[&str])] = &[
    ("demo", &["rock", "pop"]),
    ("alice", &["jazz", "soul", "blues"]),
    ("bob", &["electronic", "hip-hop"]),
    ("carol", &["classical", "folk"]),
];

#[derive(Debug, Clone, Default)]
pub struct Profile {
    genres: HashMap<&'static str, f64>,
    /// Artists the user has shown a liking for, with a weight.
    artists: HashMap<u32, i32>,
    downs: HashMap<u32, u8>,
    banned: HashSet<u32>,
    /// How many tracks the radio has played; the cursor of a deterministic stream.
    played: u64,
}

impl Profile {
    fn new(data: &Dataset, liked_genres: &[&str]) -> Self {
        let mut p = Profile::default();
        for g in GENRES {
            let liked = liked_genres.contains(g);
            p.genres.insert(g, if liked { 5.0 } else { 0.5 });
            if liked {
                // Each demo user starts with a few favourites, so their radio has a shape.
                for a in data.genre_artists(g).iter().take(3) {
                    p.artists.insert(*a, 3);
                }
            }
        }
        p
    }

    pub fn is_banned(&self, artist: u32) -> bool {
        self.banned.contains(&artist)
    }

    fn thumb(&mut self, data: &Dataset, artist: u32, up: bool) {
        let Some(a) = data.artist(artist) else { return };
        let genre = self.genres.entry(a.genre).or_insert(1.0);
        if up {
            *genre = (*genre * 1.25).min(50.0);
            *self.artists.entry(artist).or_insert(0) += 1;
            self.downs.remove(&artist);
            self.banned.remove(&artist);
        } else {
            *genre = (*genre * 0.8).max(0.05);
            let affinity = self.artists.entry(artist).or_insert(0);
            *affinity -= 1;
            if *affinity <= 0 {
                self.artists.remove(&artist);
            }
            let downs = self.downs.entry(artist).or_insert(0);
            *downs = downs.saturating_add(1);
            if *downs >= DOWNS_TO_BAN {
                self.banned.insert(artist);
            }
        }
    }

    /// The next `count` tracks, advancing the cursor.
    fn next_tracks(&mut self, data: &Dataset, user: &str, count: usize) -> Vec<u32> {
        // xxh3, not DefaultHasher: a user's radio must not change with the Rust toolchain.
        let user_hash = xxhash_rust::xxh3::xxh3_64(user.as_bytes());
        let mut rng =
            ChaCha8Rng::seed_from_u64(user_hash ^ self.played.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let liked: Vec<u32> = self
            .artists
            .iter()
            .filter(|(a, w)| **w > 0 && !self.banned.contains(a))
            .map(|(a, _)| *a)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let total: f64 = GENRES
            .iter()
            .map(|g| self.genres.get(g).copied().unwrap_or(0.0))
            .sum();
        let mut tracks = Vec::with_capacity(count);
        let mut attempts = 0;
        while tracks.len() < count && attempts < count * 20 {
            attempts += 1;
            let artist = if !liked.is_empty() && rng.random_bool(0.4) {
                liked[rng.random_range(0..liked.len())]
            } else {
                let mut pick = rng.random::<f64>() * total;
                let mut genre = GENRES[0];
                for g in GENRES {
                    pick -= self.genres.get(g).copied().unwrap_or(0.0);
                    genre = g;
                    if pick <= 0.0 {
                        break;
                    }
                }
                let artists = data.genre_artists(genre);
                if artists.is_empty() {
                    continue;
                }
                artists[rng.random_range(0..artists.len())]
            };
            if self.banned.contains(&artist) {
                continue;
            }
            let Some(a) = data.artist(artist) else {
                continue;
            };
            if a.top_tracks.is_empty() {
                continue;
            }
            let track = a.top_tracks[rng.random_range(0..a.top_tracks.len())];
            if !tracks.contains(&track) {
                tracks.push(track);
            }
        }
        self.played += tracks.len() as u64;
        tracks
    }
}

pub struct Mixes {
    data: Arc<Dataset>,
    profiles: Mutex<HashMap<String, Profile>>,
}

impl Mixes {
    pub fn new(data: Arc<Dataset>) -> Arc<Self> {
        let profiles = DEMO_USERS
            .iter()
            .map(|(user, genres)| (user.to_string(), Profile::new(&data, genres)))
            .collect();
        Arc::new(Mixes {
            data,
            profiles: Mutex::new(profiles),
        })
    }

    fn with_profile<T>(&self, user: &str, f: impl FnOnce(&mut Profile) -> T) -> T {
        let mut profiles = self.profiles.lock().unwrap_or_else(PoisonError::into_inner);
        if !profiles.contains_key(user) && profiles.len() >= MAX_PROFILES {
            // Bounded memory: forget some stranger rather than grow without end.
            if let Some(victim) = profiles
                .keys()
                .find(|k| !DEMO_USERS.iter().any(|(d, _)| d == *k))
                .cloned()
            {
                profiles.remove(&victim);
            }
        }
        let profile = profiles
            .entry(user.to_owned())
            .or_insert_with(|| Profile::new(&self.data, &[]));
        f(profile)
    }
}

/// User ids: what the gateway's config allows, and safe inside a URL path.
pub fn valid_user(user: &str) -> bool {
    !user.is_empty()
        && user.len() <= 64
        && user
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c))
        && user != "."
        && user != ".."
}

fn check_user(user: &str) -> ApiResult<()> {
    if valid_user(user) {
        Ok(())
    } else {
        Err(ApiError::BadRequest(format!(
            "user id must be 1 to 64 characters of letters, digits, `-`, `_`, `.` or `@`, got {user:?}"
        )))
    }
}

#[derive(Deserialize)]
struct RadioQuery {
    count: Option<String>,
}

#[derive(Serialize)]
struct RadioBody<'a> {
    user: &'a str,
    tracks: Vec<TrackBody<'a>>,
}

async fn radio(
    State(mixes): State<Arc<Mixes>>,
    ApiPath(user): ApiPath<String>,
    ApiQuery(q): ApiQuery<RadioQuery>,
) -> ApiResult<Response> {
    check_user(&user)?;
    let count = match q.count.as_deref() {
        None => DEFAULT_RADIO,
        Some(raw) => match raw.parse::<usize>() {
            Ok(n) if (1..=MAX_RADIO).contains(&n) => n,
            _ => {
                return Err(ApiError::BadRequest(format!(
                    "`count` must be a whole number from 1 to {MAX_RADIO}, got {raw:?}"
                )));
            }
        },
    };
    let data = &mixes.data;
    let ids = mixes.with_profile(&user, |p| p.next_tracks(data, &user, count));
    let tracks = ids
        .iter()
        .filter_map(|t| data.track(*t).and_then(|t| track_body(data, t)))
        .collect();
    Ok((
        [(header::CACHE_CONTROL, "private, no-store")],
        axum::Json(RadioBody {
            user: &user,
            tracks,
        }),
    )
        .into_response())
}

/// A thumbs up or down, on a track or directly on an artist.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Thumbs {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trackid: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artistid: Option<u32>,
    pub direction: Direction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Up,
    Down,
}

impl Thumbs {
    /// The artist the thumbs is about, checked against the catalogue.
    pub fn artist(&self, data: &Dataset) -> Result<u32, String> {
        match (self.trackid, self.artistid) {
            (Some(t), None) => data
                .track(t)
                .map(|t| t.artist)
                .ok_or_else(|| format!("no track with id {t}")),
            (None, Some(a)) => data
                .artist(a)
                .map(|a| a.id)
                .ok_or_else(|| format!("no artist with id {a}")),
            _ => Err("give exactly one of `trackid` or `artistid`".into()),
        }
    }
}

#[derive(Serialize)]
struct ProfileBody {
    user: String,
    genres: Vec<(String, f64)>,
    liked_artists: Vec<u32>,
    banned_artists: Vec<u32>,
    played: u64,
}

fn profile_body(user: &str, p: &Profile) -> ProfileBody {
    let mut genres: Vec<(String, f64)> =
        p.genres.iter().map(|(g, w)| (g.to_string(), *w)).collect();
    genres.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut liked: Vec<u32> = p
        .artists
        .iter()
        .filter(|(_, w)| **w > 0)
        .map(|(a, _)| *a)
        .collect();
    liked.sort_unstable();
    let mut banned: Vec<u32> = p.banned.iter().copied().collect();
    banned.sort_unstable();
    ProfileBody {
        user: user.to_owned(),
        genres,
        liked_artists: liked,
        banned_artists: banned,
        played: p.played,
    }
}

async fn thumbs(
    State(mixes): State<Arc<Mixes>>,
    ApiPath(user): ApiPath<String>,
    ApiJson(t): ApiJson<Thumbs>,
) -> ApiResult<Response> {
    check_user(&user)?;
    let artist = t.artist(&mixes.data).map_err(ApiError::BadRequest)?;
    let data = &mixes.data;
    let body = mixes.with_profile(&user, |p| {
        p.thumb(data, artist, t.direction == Direction::Up);
        profile_body(&user, p)
    });
    Ok(axum::Json(body).into_response())
}

async fn profile(
    State(mixes): State<Arc<Mixes>>,
    ApiPath(user): ApiPath<String>,
) -> ApiResult<Response> {
    check_user(&user)?;
    let body = mixes.with_profile(&user, |p| profile_body(&user, p));
    Ok((
        [(header::CACHE_CONTROL, "private, no-store")],
        axum::Json(body),
    )
        .into_response())
}

#[derive(Serialize)]
struct ArtistMix<'a> {
    id: String,
    name: String,
    tracks: Vec<TrackBody<'a>>,
}

async fn artist_mix(
    State(mixes): State<Arc<Mixes>>,
    ApiPath(id): ApiPath<u32>,
) -> ApiResult<Response> {
    let data = &mixes.data;
    let artist = data
        .artist(id)
        .ok_or_else(|| ApiError::NotFound(format!("no artist with id {id}")))?;
    let mut ids: Vec<u32> = artist.top_tracks.iter().take(4).copied().collect();
    for s in data.similar(id).into_iter().take(6) {
        if let Some(t) = data.artist(s).and_then(|a| a.top_tracks.first()) {
            ids.push(*t);
        }
    }
    let tracks = ids
        .iter()
        .filter_map(|t| data.track(*t).and_then(|t| track_body(data, t)))
        .collect();
    let body = ArtistMix {
        id: format!("artist-{id}"),
        name: format!("{} Radio", artist.name),
        tracks,
    };
    Ok(([(header::CACHE_CONTROL, CACHE_CONTROL)], axum::Json(body)).into_response())
}

pub fn router(mixes: Arc<Mixes>) -> Router {
    Router::new()
        .route("/1.x/users/{user}/radio", get(radio))
        .route("/1.x/users/{user}/thumbs", post(thumbs))
        .route("/1.x/users/{user}/profile", get(profile))
        .route("/1.x/mixes/artists/{id}", get(artist_mix))
        .with_state(mixes)
        .layer(axum::middleware::from_fn(crate::etag::middleware))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_thumbs_down_drop_an_artist_from_the_radio() {
        let data = Dataset::generate(5, 2000);
        let mut p = Profile::new(&data, &["rock"]);
        let favourite = *p.artists.keys().min().unwrap();
        let before: Vec<u32> = (0..10)
            .flat_map(|_| p.next_tracks(&data, "u", 20))
            .collect();
        let artist_of = |t: &u32| data.track(*t).unwrap().artist;
        assert!(before.iter().any(|t| artist_of(t) == favourite));
        p.thumb(&data, favourite, false);
        assert!(!p.is_banned(favourite));
        p.thumb(&data, favourite, false);
        assert!(p.is_banned(favourite));
        let after: Vec<u32> = (0..10)
            .flat_map(|_| p.next_tracks(&data, "u", 20))
            .collect();
        assert!(after.iter().all(|t| artist_of(t) != favourite));
        p.thumb(&data, favourite, true);
        assert!(!p.is_banned(favourite));
    }

    #[test]
    fn the_radio_moves_on_and_favours_liked_genres() {
        let data = Dataset::generate(5, 2000);
        let mut p = Profile::new(&data, &["jazz"]);
        let a = p.next_tracks(&data, "u", 30);
        let b = p.next_tracks(&data, "u", 30);
        assert_ne!(a, b);
        let jazz = a.iter().chain(&b).filter(|t| {
            let artist = data.track(**t).unwrap().artist;
            data.artist(artist).unwrap().genre == "jazz"
        });
        assert!(jazz.count() > 20);
    }
}
