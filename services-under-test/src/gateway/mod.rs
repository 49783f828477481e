//! gateway: the platform's public API (the seeds' "External API auth layer"). It checks
//! credentials, tells upstreams who is calling, balances across healthy instances of each
//! upstream (retrying idempotent requests), composes the artist view, signs play URLs, and
//! gzips and caches what it can.

mod auth;
mod pool;
mod signing;
mod upstream;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Router, middleware};
use bytes::Bytes;
use lookout_model::health::Dependency;
use lookout_model::secret::Secret;
use prometheus::{IntCounterVec, IntGaugeVec, Opts, Registry};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::{DefaultPredicate, NotForContentType, Predicate};

use auth::Credentials;
pub use auth::{Caller, UserToken};
use pool::Pool;
use upstream::{
    FORWARDED_REQUEST_HEADERS, FORWARDED_RESPONSE_HEADERS, UpstreamResponse, Upstreams,
};

use crate::catalogue::{COUNTRY_HEADER, LANGUAGE_HEADER, USER_HEADER};
use crate::error::{ApiBytes, ApiError, ApiJson, ApiPath, ApiQuery, ApiResult};
use crate::metrics::register;

/// How the gateway is set up; built by the `lookout` binary from its config.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GatewaySettings {
    /// Base URLs of each upstream's instances, by service name.
    pub upstreams: BTreeMap<String, Vec<String>>,
    pub api_keys: Vec<Secret>,
    pub users: Vec<UserToken>,
    pub default_country: String,
    pub health_interval: Duration,
    pub health_timeout: Duration,
    /// Per attempt; a GET may make up to three attempts on different instances.
    pub upstream_timeout: Duration,
    /// Key for play-URL signatures; random per process when not configured.
    pub signing_key: Option<Secret>,
    /// The gateway's address as clients see it, for play URLs; else the request's `Host`.
    pub public_url: Option<String>,
    /// Answer DNS for the gateway's own name (`crate::dns`).
    #[serde(default)]
    pub dns: Option<crate::dns::DnsSettings>,
    /// Also serve the API over TLS here, with the platform's demo certificate
    /// ([`DEMO_CERT`], for `gateway.platform.test` and 127.0.0.1, issued by [`DEMO_CA`]).
    #[serde(default)]
    pub tls_listen: Option<std::net::SocketAddr>,
}

/// The demo platform's CA (public: TLS checks trust it). Its key was thrown away once it had
/// signed [`DEMO_CERT`]; the certificates are valid until 2046.
pub const DEMO_CA: &str = include_str!("../demo_pki/ca.pem");
pub const DEMO_CERT: &str = include_str!("../demo_pki/gateway.pem");
/// Demo material only: a key everyone has, for a platform that is itself a stand-in.
pub const DEMO_KEY: &str = include_str!("../demo_pki/gateway.key");

/// The gateway's TLS: the demo certificate and key.
pub fn demo_tls() -> Result<lookout_api::tls::ServerTls, lookout_api::tls::TlsError> {
    lookout_api::tls::ServerTls::from_pem(
        std::path::Path::new("demo_pki/gateway.pem"),
        DEMO_CERT.as_bytes(),
        std::path::Path::new("demo_pki/gateway.key"),
        DEMO_KEY.as_bytes(),
    )
}

/// The upstream services, by the name used in URLs and config.
pub const UPSTREAMS: [&str; 4] = ["catalogue", "mixes", "media", "analytics"];

pub struct Gateway {
    pools: BTreeMap<&'static str, Arc<Pool>>,
    upstreams: Upstreams,
    signing_key: Secret,
    public_url: Option<String>,
}

impl Gateway {
    pub async fn start(
        settings: GatewaySettings,
        registry: &Registry,
    ) -> Result<(Arc<Self>, Arc<Credentials>), prometheus::Error> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .tcp_nodelay(true)
            .pool_max_idle_per_host(256)
            .pool_idle_timeout(Duration::from_secs(30))
            .build()
            .unwrap_or_else(|_| reqwest::Client::new());
        let up_gauge = register(
            registry,
            IntGaugeVec::new(
                Opts::new(
                    "platform_gateway_upstream_up",
                    "Whether the gateway considers an upstream instance healthy (1) or not (0).",
                ),
                &["service", "instance"],
            )?,
        );
        let requests = register(
            registry,
            IntCounterVec::new(
                Opts::new(
                    "platform_gateway_upstream_requests_total",
                    "Requests to upstream instances, by service and outcome.",
                ),
                &["service", "outcome"],
            )?,
        );
        let retries = register(
            registry,
            IntCounterVec::new(
                Opts::new(
                    "platform_gateway_retries_total",
                    "Requests retried on another instance, by service.",
                ),
                &["service"],
            )?,
        );
        let mut pools = BTreeMap::new();
        for name in UPSTREAMS {
            // At zero from the start: a dashboard's rate then counts the first retry too.
            retries.with_label_values(&[name]);
            let urls = settings.upstreams.get(name).cloned().unwrap_or_default();
            let pool = Pool::new(name, urls, up_gauge.clone());
            // Know who is healthy before the first request arrives.
            pool.check(&client, settings.health_timeout).await;
            pool.spawn_poller(
                client.clone(),
                settings.health_interval,
                settings.health_timeout,
            );
            pools.insert(name, pool);
        }
        let signing_key = settings.signing_key.clone().unwrap_or_else(|| {
            use rand::Rng;
            let bytes: [u8; 16] = rand::rng().random();
            Secret::new(bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
        });
        let gateway = Arc::new(Gateway {
            pools,
            upstreams: Upstreams {
                client,
                timeout: settings.upstream_timeout,
                requests,
                retries,
            },
            signing_key,
            public_url: settings.public_url.clone(),
        });
        let credentials = Arc::new(Credentials {
            api_keys: settings.api_keys,
            users: settings.users,
            default_country: settings.default_country,
        });
        Ok((gateway, credentials))
    }

    fn pool(&self, name: &str) -> ApiResult<&Arc<Pool>> {
        self.pools
            .get(name)
            .ok_or_else(|| ApiError::Internal(format!("no pool for {name}")))
    }

    pub fn dependencies(&self) -> Vec<Dependency> {
        self.pools.values().map(|p| p.dependency()).collect()
    }

    async fn call(
        &self,
        service: &str,
        method: Method,
        path_and_query: &str,
        caller: &Caller,
        incoming: &HeaderMap,
        body: Option<Bytes>,
    ) -> ApiResult<UpstreamResponse> {
        let mut headers = HeaderMap::new();
        for name in FORWARDED_REQUEST_HEADERS {
            for v in incoming.get_all(name) {
                headers.append(name, v.clone());
            }
        }
        // Always set, empty for apps: upstreams must never trust a user named in a body.
        let user = caller
            .user
            .as_deref()
            .and_then(|u| HeaderValue::from_str(u).ok());
        headers.insert(
            USER_HEADER,
            user.unwrap_or_else(|| HeaderValue::from_static("")),
        );
        if let Ok(v) = HeaderValue::from_str(&caller.country) {
            headers.insert(COUNTRY_HEADER, v);
        }
        if let Ok(v) = HeaderValue::from_str(&caller.language) {
            headers.insert(LANGUAGE_HEADER, v);
        }
        let sticky = caller
            .user
            .as_deref()
            .map(|u| xxhash_rust::xxh3::xxh3_64(u.as_bytes()));
        self.upstreams
            .send(
                self.pool(service)?,
                method,
                path_and_query,
                headers,
                body,
                sticky,
            )
            .await
    }
}

fn relay(r: UpstreamResponse) -> Response {
    let mut response = Response::new(Body::from(r.body));
    *response.status_mut() = r.status;
    for name in FORWARDED_RESPONSE_HEADERS {
        for v in r.headers.get_all(name) {
            response.headers_mut().append(name, v.clone());
        }
    }
    response
}

/// The path and query to send upstream, without the caller's `client_id` (a credential).
fn path_and_query(uri: &Uri) -> String {
    let path = uri.path();
    let kept: Vec<&str> = uri
        .query()
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty() && !p.starts_with("client_id="))
        .collect();
    if kept.is_empty() {
        path.to_owned()
    } else {
        format!("{path}?{}", kept.join("&"))
    }
}

/// A GET passed on to `service` under the same path and query.
async fn forward(
    gw: &Gateway,
    service: &str,
    caller: &Caller,
    uri: &Uri,
    headers: &HeaderMap,
) -> ApiResult<Response> {
    let target = path_and_query(uri);
    Ok(relay(
        gw.call(service, Method::GET, &target, caller, headers, None)
            .await?,
    ))
}

async fn to_catalogue(
    State(gw): State<Arc<Gateway>>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    forward(&gw, "catalogue", &caller, &uri, &headers).await
}

async fn to_mixes(
    State(gw): State<Arc<Gateway>>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    forward(&gw, "mixes", &caller, &uri, &headers).await
}

fn signed_in(caller: &Caller) -> ApiResult<&str> {
    caller.user.as_deref().ok_or_else(|| {
        ApiError::Unauthorized(
            "this resource is personal: sign in with a user's bearer token".into(),
        )
    })
}

async fn my(
    State(gw): State<Arc<Gateway>>,
    Extension(caller): Extension<Caller>,
    uri: Uri,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let user = signed_in(&caller)?;
    let rest = uri.path().trim_start_matches("/1.x/me/");
    let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
    let target = format!("/1.x/users/{user}/{rest}{query}");
    Ok(relay(
        gw.call("mixes", Method::GET, &target, &caller, &headers, None)
            .await?,
    ))
}

async fn events(
    State(gw): State<Arc<Gateway>>,
    Extension(caller): Extension<Caller>,
    headers: HeaderMap,
    ApiBytes(body): ApiBytes,
) -> ApiResult<Response> {
    Ok(relay(
        gw.call(
            "analytics",
            Method::POST,
            "/1.x/events",
            &caller,
            &headers,
            Some(body),
        )
        .await?,
    ))
}

/// The catalogue's part of the view, kept as raw JSON: the gateway composes, it does not
/// re-encode.
#[derive(Deserialize)]
struct ProfileParts<'a> {
    #[serde(borrow)]
    artist: &'a RawValue,
    #[serde(borrow)]
    toptracks: &'a RawValue,
    #[serde(borrow)]
    albums: &'a RawValue,
    #[serde(borrow)]
    similar: &'a RawValue,
}

#[derive(Serialize)]
struct View<'a> {
    artist: &'a RawValue,
    toptracks: &'a RawValue,
    albums: &'a RawValue,
    similar: &'a RawValue,
    mix: Option<&'a RawValue>,
    /// Parts left out because their service failed; empty when the view is whole.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    missing: Vec<&'static str>,
}

async fn artist_view(
    State(gw): State<Arc<Gateway>>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<u32>,
) -> ApiResult<Response> {
    let none = HeaderMap::new();
    let profile_path = format!("/1.x/artists/{id}/profile");
    let mix_path = format!("/1.x/mixes/artists/{id}");
    let (profile, mix) = tokio::join!(
        gw.call(
            "catalogue",
            Method::GET,
            &profile_path,
            &caller,
            &none,
            None
        ),
        gw.call("mixes", Method::GET, &mix_path, &caller, &none, None),
    );
    let profile = profile?;
    if profile.status != StatusCode::OK {
        return Ok(relay(profile));
    }
    let parts: ProfileParts = serde_json::from_slice(&profile.body).map_err(|e| {
        ApiError::BadGateway(format!("catalogue sent an unreadable artist profile: {e}"))
    })?;
    // The mix is garnish: the view still renders without it.
    let mix = match &mix {
        Ok(m) if m.status == StatusCode::OK => serde_json::from_slice::<&RawValue>(&m.body).ok(),
        _ => None,
    };
    let view = View {
        artist: parts.artist,
        toptracks: parts.toptracks,
        albums: parts.albums,
        similar: parts.similar,
        mix,
        missing: if mix.is_none() { vec!["mix"] } else { vec![] },
    };
    let cache = if mix.is_some() {
        "public, max-age=60"
    } else {
        "no-store"
    };
    Ok(([(header::CACHE_CONTROL, cache)], axum::Json(view)).into_response())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

#[derive(Serialize)]
struct PlayUrl {
    url: String,
    expires: u64,
}

async fn play_url(
    State(gw): State<Arc<Gateway>>,
    Extension(caller): Extension<Caller>,
    ApiPath(id): ApiPath<u32>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    // Ask the catalogue first, so a play URL is never handed out for a track that is not there.
    let track = gw
        .call(
            "catalogue",
            Method::GET,
            &format!("/1.x/tracks/{id}"),
            &caller,
            &HeaderMap::new(),
            None,
        )
        .await?;
    if track.status != StatusCode::OK {
        return Ok(relay(track));
    }
    let expires = unix_now() + signing::VALID_FOR_SECS;
    let sig = signing::sign(&gw.signing_key, id, expires);
    let base = match &gw.public_url {
        Some(u) => u.trim_end_matches('/').to_owned(),
        None => headers
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .filter(|h| {
                h.chars()
                    .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
            })
            .map(|h| format!("http://{h}"))
            .unwrap_or_default(),
    };
    let url = format!("{base}/1.x/play/{id}/audio.wav?expires={expires}&sig={sig}");
    Ok((
        [(header::CACHE_CONTROL, "private, no-store")],
        axum::Json(PlayUrl { url, expires }),
    )
        .into_response())
}

#[derive(Deserialize)]
struct PlayQuery {
    expires: Option<u64>,
    sig: Option<String>,
}

async fn play(
    State(gw): State<Arc<Gateway>>,
    ApiPath(id): ApiPath<u32>,
    ApiQuery(q): ApiQuery<PlayQuery>,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let (Some(expires), Some(sig)) = (q.expires, q.sig) else {
        return Err(ApiError::Unauthorized(
            "a play URL needs `expires` and `sig`; get one from /1.x/tracks/{id}/play".into(),
        ));
    };
    if !signing::verify(&gw.signing_key, id, expires, &sig, unix_now()) {
        return Err(ApiError::Forbidden(
            "play URL expired or not valid; get a new one from /1.x/tracks/{id}/play".into(),
        ));
    }
    let caller = Caller {
        user: None,
        country: auth::default_country(),
        language: auth::default_language(),
    };
    let path = format!("/1.x/tracks/{id}/audio.wav");
    Ok(relay(
        gw.call("media", Method::GET, &path, &caller, &headers, None)
            .await?,
    ))
}

#[derive(Serialize)]
struct UpstreamsBody {
    upstreams: Vec<Dependency>,
}

async fn list_upstreams(State(gw): State<Arc<Gateway>>) -> ApiJson<UpstreamsBody> {
    ApiJson(UpstreamsBody {
        upstreams: gw.dependencies(),
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReplaceUpstreams {
    instances: Vec<String>,
}

/// Replaces one upstream's instances (how the replacer swaps a sick instance for a new one).
async fn put_upstreams(
    State(gw): State<Arc<Gateway>>,
    ApiPath(service): ApiPath<String>,
    ApiJson(body): ApiJson<ReplaceUpstreams>,
) -> ApiResult<Response> {
    let pool = gw.pools.get(service.as_str()).ok_or_else(|| {
        ApiError::NotFound(format!(
            "no upstream service {service:?}; expected one of {}",
            UPSTREAMS.join(", ")
        ))
    })?;
    for (i, url) in body.instances.iter().enumerate() {
        let parsed = reqwest::Url::parse(url).map_err(|e| {
            ApiError::BadRequest(format!("instances[{i}]: {url:?} is not a URL: {e}"))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(ApiError::BadRequest(format!(
                "instances[{i}]: {url:?} must be an http(s) URL with a host"
            )));
        }
    }
    pool.replace(body.instances);
    pool.check(&gw.upstreams.client, Duration::from_secs(1))
        .await;
    Ok(ApiJson(pool.dependency()).into_response())
}

/// The public API (credentials required) plus the signed play route.
pub fn router(gw: Arc<Gateway>, credentials: Arc<Credentials>) -> Router {
    let authenticated = Router::new()
        .route("/1.x/search", get(to_catalogue))
        .route("/1.x/genres", get(to_catalogue))
        .route("/1.x/artists/{id}", get(to_catalogue))
        .route("/1.x/artists/{id}/albums", get(to_catalogue))
        .route("/1.x/artists/{id}/tracks", get(to_catalogue))
        .route("/1.x/artists/{id}/similar", get(to_catalogue))
        .route("/1.x/artists/{id}/view", get(artist_view))
        .route("/1.x/albums/{id}", get(to_catalogue))
        .route("/1.x/tracks/{id}", get(to_catalogue))
        .route("/1.x/tracks/{id}/play", get(play_url))
        .route("/1.x/mixes/artists/{id}", get(to_mixes))
        .route("/1.x/me/radio", get(my))
        .route("/1.x/me/profile", get(my))
        .route("/1.x/events", post(events))
        .route_layer(middleware::from_fn_with_state(
            credentials,
            auth::middleware,
        ));
    let compress = CompressionLayer::new()
        .gzip(true)
        .compress_when(DefaultPredicate::new().and(NotForContentType::new("audio/")));
    authenticated
        .route("/1.x/play/{id}/audio.wav", get(play))
        .with_state(gw)
        .layer(middleware::from_fn(crate::etag::middleware))
        .layer(compress)
}

/// Admin routes: inspect and replace upstream pools.
pub fn admin_router(gw: Arc<Gateway>) -> Router {
    Router::new()
        .route("/admin/upstreams", get(list_upstreams))
        .route("/admin/upstreams/{service}", put(put_upstreams))
        .with_state(gw)
}
