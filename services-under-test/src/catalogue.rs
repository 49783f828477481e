//! catalogue: artists, albums and tracks; search by name with paging; lookups; similar artists.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};

use crate::data::{Album, Artist, Category, Dataset, Track};
use crate::error::{ApiError, ApiPath, ApiQuery, ApiResult};
use crate::paging::{PageInfo, Paging, PagingQuery};

/// Catalogue data changes only with a new seed, so clients may cache for a while.
pub const CACHE_CONTROL: &str = "public, max-age=300";
/// Headers the gateway passes downstream.
pub const COUNTRY_HEADER: &str = "x-country";
pub const LANGUAGE_HEADER: &str = "x-language";
pub const USER_HEADER: &str = "x-user-id";

#[derive(Serialize)]
pub struct ArtistRef<'a> {
    pub id: u32,
    pub name: &'a str,
}

#[derive(Serialize)]
pub struct ArtistBody<'a> {
    pub id: u32,
    pub name: &'a str,
    pub genre: &'a str,
    pub country: &'a str,
    pub city: &'a str,
    pub formed: u16,
    pub bio: String,
}

#[derive(Serialize)]
pub struct AlbumBody<'a> {
    pub id: u32,
    pub title: &'a str,
    pub year: u16,
    pub artist: ArtistRef<'a>,
    pub trackcount: usize,
}

#[derive(Serialize)]
pub struct TrackBody<'a> {
    pub id: u32,
    pub title: &'a str,
    pub number: u8,
    pub duration: u16,
    pub artist: ArtistRef<'a>,
    pub album: AlbumRef<'a>,
}

#[derive(Serialize)]
pub struct AlbumRef<'a> {
    pub id: u32,
    pub title: &'a str,
}

/// Everything the gateway's artist view needs from the catalogue, in one response.
#[derive(Serialize)]
struct ProfileBody<'a> {
    artist: ArtistBody<'a>,
    toptracks: Vec<TrackBody<'a>>,
    albums: Vec<AlbumBody<'a>>,
    similar: Vec<ArtistRef<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    territory: Option<&'a str>,
}

#[derive(Serialize)]
#[serde(untagged)]
enum Item<'a> {
    Artist(ArtistRef<'a>),
    Album(AlbumBody<'a>),
    Track(TrackBody<'a>),
}

#[derive(Serialize)]
struct Page<T> {
    paging: PageInfo,
    items: Vec<T>,
    #[serde(skip_serializing_if = "Option::is_none")]
    territory: Option<String>,
}

fn artist_ref(a: &Artist) -> ArtistRef<'_> {
    ArtistRef {
        id: a.id,
        name: &a.name,
    }
}

fn artist_body<'a>(data: &'a Dataset, a: &'a Artist) -> ArtistBody<'a> {
    ArtistBody {
        id: a.id,
        name: &a.name,
        genre: a.genre,
        country: a.country,
        city: a.city,
        formed: a.formed,
        bio: data.bio(a),
    }
}

fn album_body<'a>(data: &'a Dataset, album: &'a Album) -> Option<AlbumBody<'a>> {
    let artist = data.artist(album.artist)?;
    Some(AlbumBody {
        id: album.id,
        title: &album.title,
        year: album.year,
        artist: artist_ref(artist),
        trackcount: album.tracks.len(),
    })
}

pub fn track_body<'a>(data: &'a Dataset, t: &'a Track) -> Option<TrackBody<'a>> {
    let artist = data.artist(t.artist)?;
    let album = data.album(t.album)?;
    Some(TrackBody {
        id: t.id,
        title: &t.title,
        number: t.number,
        duration: t.duration_secs,
        artist: artist_ref(artist),
        album: AlbumRef {
            id: album.id,
            title: &album.title,
        },
    })
}

fn cacheable(body: impl Serialize) -> Response {
    ([(header::CACHE_CONTROL, CACHE_CONTROL)], axum::Json(body)).into_response()
}

fn territory(headers: &HeaderMap) -> Option<&str> {
    headers.get(COUNTRY_HEADER).and_then(|v| v.to_str().ok())
}

fn find_artist(data: &Dataset, id: u32) -> ApiResult<&Artist> {
    data.artist(id)
        .ok_or_else(|| ApiError::NotFound(format!("no artist with id {id}")))
}

#[derive(Debug, Deserialize)]
struct SearchQuery {
    q: Option<String>,
    category: Option<String>,
    #[serde(flatten)]
    paging: PagingQuery,
}

async fn search(
    State(data): State<Arc<Dataset>>,
    headers: HeaderMap,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> ApiResult<Response> {
    let paging = Paging::parse(&query.paging)?;
    let q = query.q.as_deref().map(str::trim).unwrap_or_default();
    if q.is_empty() {
        return Err(ApiError::BadRequest(
            "`q` is required: the name to search for".into(),
        ));
    }
    if q.chars().count() > 200 {
        return Err(ApiError::BadRequest(
            "`q` is too long: at most 200 characters".into(),
        ));
    }
    let category = match query.category.as_deref() {
        None => Category::Artist,
        Some(c) => Category::parse(c).ok_or_else(|| {
            ApiError::BadRequest(format!(
                "`category` must be artist, album or track, got {c:?}"
            ))
        })?,
    };
    let hits = data.search(q, category);
    let (page, info) = paging.page(&hits);
    let items = page
        .iter()
        .filter_map(|h| match h.category {
            Category::Artist => data.artist(h.id).map(|a| Item::Artist(artist_ref(a))),
            Category::Album => data
                .album(h.id)
                .and_then(|a| album_body(&data, a))
                .map(Item::Album),
            Category::Track => data
                .track(h.id)
                .and_then(|t| track_body(&data, t))
                .map(Item::Track),
        })
        .collect();
    Ok(cacheable(Page {
        paging: info,
        items,
        territory: territory(&headers).map(str::to_owned),
    }))
}

async fn artist(
    State(data): State<Arc<Dataset>>,
    ApiPath(id): ApiPath<u32>,
) -> ApiResult<Response> {
    let a = find_artist(&data, id)?;
    Ok(cacheable(artist_body(&data, a)))
}

async fn profile(
    State(data): State<Arc<Dataset>>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<u32>,
) -> ApiResult<Response> {
    let a = find_artist(&data, id)?;
    let body = ProfileBody {
        artist: artist_body(&data, a),
        toptracks: a
            .top_tracks
            .iter()
            .filter_map(|t| data.track(*t).and_then(|t| track_body(&data, t)))
            .collect(),
        albums: a
            .albums
            .iter()
            .filter_map(|x| data.album(*x).and_then(|x| album_body(&data, x)))
            .collect(),
        similar: data
            .similar(id)
            .into_iter()
            .filter_map(|s| data.artist(s).map(artist_ref))
            .collect(),
        territory: territory(&headers),
    };
    Ok(cacheable(body))
}

async fn artist_albums(
    State(data): State<Arc<Dataset>>,
    ApiPath(id): ApiPath<u32>,
    ApiQuery(q): ApiQuery<PagingQuery>,
) -> ApiResult<Response> {
    let paging = Paging::parse(&q)?;
    let a = find_artist(&data, id)?;
    let (page, paging) = paging.page(&a.albums);
    let items: Vec<_> = page
        .iter()
        .filter_map(|x| data.album(*x).and_then(|x| album_body(&data, x)))
        .collect();
    Ok(cacheable(Page {
        paging,
        items,
        territory: None,
    }))
}

async fn artist_tracks(
    State(data): State<Arc<Dataset>>,
    ApiPath(id): ApiPath<u32>,
    ApiQuery(q): ApiQuery<PagingQuery>,
) -> ApiResult<Response> {
    let paging = Paging::parse(&q)?;
    let a = find_artist(&data, id)?;
    let (page, paging) = paging.page(&a.top_tracks);
    let items: Vec<_> = page
        .iter()
        .filter_map(|t| data.track(*t).and_then(|t| track_body(&data, t)))
        .collect();
    Ok(cacheable(Page {
        paging,
        items,
        territory: None,
    }))
}

async fn similar(
    State(data): State<Arc<Dataset>>,
    ApiPath(id): ApiPath<u32>,
    ApiQuery(q): ApiQuery<PagingQuery>,
) -> ApiResult<Response> {
    let paging = Paging::parse(&q)?;
    find_artist(&data, id)?;
    let ids = data.similar(id);
    let (page, paging) = paging.page(&ids);
    let items: Vec<_> = page
        .iter()
        .filter_map(|s| data.artist(*s).map(artist_ref))
        .collect();
    Ok(cacheable(Page {
        paging,
        items,
        territory: None,
    }))
}

#[derive(Serialize)]
struct AlbumWithTracks<'a> {
    #[serde(flatten)]
    album: AlbumBody<'a>,
    tracks: Vec<TrackBody<'a>>,
}

async fn album(State(data): State<Arc<Dataset>>, ApiPath(id): ApiPath<u32>) -> ApiResult<Response> {
    let not_found = || ApiError::NotFound(format!("no album with id {id}"));
    let album = data.album(id).ok_or_else(not_found)?;
    let body = album_body(&data, album).ok_or_else(not_found)?;
    let tracks = album
        .tracks
        .iter()
        .filter_map(|t| data.track(*t).and_then(|t| track_body(&data, t)))
        .collect();
    Ok(cacheable(AlbumWithTracks {
        album: body,
        tracks,
    }))
}

async fn track(State(data): State<Arc<Dataset>>, ApiPath(id): ApiPath<u32>) -> ApiResult<Response> {
    let body = data
        .track(id)
        .and_then(|t| track_body(&data, t))
        .ok_or_else(|| ApiError::NotFound(format!("no track with id {id}")))?;
    Ok(cacheable(body))
}

async fn genres(State(data): State<Arc<Dataset>>) -> Response {
    #[derive(Serialize)]
    struct Genre<'a> {
        id: &'a str,
        artists: usize,
    }
    let items: Vec<_> = crate::data::GENRES
        .iter()
        .map(|g| Genre {
            id: g,
            artists: data.genre_artists(g).len(),
        })
        .collect();
    cacheable(serde_json::json!({ "items": items }))
}

pub fn router(data: Arc<Dataset>) -> Router {
    Router::new()
        .route("/1.x/search", get(search))
        .route("/1.x/genres", get(genres))
        .route("/1.x/artists/{id}", get(artist))
        .route("/1.x/artists/{id}/profile", get(profile))
        .route("/1.x/artists/{id}/albums", get(artist_albums))
        .route("/1.x/artists/{id}/tracks", get(artist_tracks))
        .route("/1.x/artists/{id}/similar", get(similar))
        .route("/1.x/albums/{id}", get(album))
        .route("/1.x/tracks/{id}", get(track))
        .with_state(data)
        .layer(axum::middleware::from_fn(crate::etag::middleware))
}
