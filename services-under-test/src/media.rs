//! media: each track's audio, a short generated WAV tone, served with HTTP Range requests so a
//! journey can time the first audio bytes, the figure a listener feels.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::data::Dataset;
use crate::error::{ApiError, ApiPath, ApiResult};

pub const SAMPLE_RATE: u32 = 22_050;
pub const SECONDS: u32 = 3;
const HEADER_LEN: u64 = 44;
const SAMPLES: u64 = (SAMPLE_RATE * SECONDS) as u64;
/// The size of every track's file.
pub const FILE_LEN: u64 = HEADER_LEN + SAMPLES * 2;

/// The tone of a track: a note of the chromatic scale from A3, chosen by its id.
fn frequency(track: u32) -> f64 {
    220.0 * 2f64.powf(f64::from(track % 36) / 12.0)
}

fn header_bytes() -> [u8; HEADER_LEN as usize] {
    let data_len = (SAMPLES * 2) as u32;
    let mut h = [0u8; HEADER_LEN as usize];
    let mut put = |at: usize, bytes: &[u8]| h[at..at + bytes.len()].copy_from_slice(bytes);
    put(0, b"RIFF");
    put(4, &(36 + data_len).to_le_bytes());
    put(8, b"WAVEfmt ");
    put(16, &16u32.to_le_bytes());
    put(20, &1u16.to_le_bytes()); // PCM
    put(22, &1u16.to_le_bytes()); // mono
    put(24, &SAMPLE_RATE.to_le_bytes());
    put(28, &(SAMPLE_RATE * 2).to_le_bytes());
    put(32, &2u16.to_le_bytes());
    put(34, &16u16.to_le_bytes());
    put(36, b"data");
    put(40, &data_len.to_le_bytes());
    h
}

fn sample(track: u32, i: u64) -> i16 {
    let t = i as f64 / f64::from(SAMPLE_RATE);
    // A 50 ms fade at each end, so the tone starts and stops without a click.
    let fade = (t / 0.05).min((SECONDS as f64 - t) / 0.05).clamp(0.0, 1.0);
    let v = (2.0 * std::f64::consts::PI * frequency(track) * t).sin() * 0.4 * fade;
    (v * f64::from(i16::MAX)) as i16
}

/// The bytes `[start, end]` (inclusive) of a track's WAV file, made on the fly.
pub fn wav_range(track: u32, start: u64, end: u64) -> Vec<u8> {
    let header = header_bytes();
    let mut out = Vec::with_capacity((end - start + 1) as usize);
    let mut offset = start;
    while offset <= end && offset < HEADER_LEN {
        out.push(header[offset as usize]);
        offset += 1;
    }
    while offset <= end {
        let pos = offset - HEADER_LEN;
        let bytes = sample(track, pos / 2).to_le_bytes();
        out.push(bytes[(pos % 2) as usize]);
        offset += 1;
    }
    out
}

#[derive(Debug, PartialEq)]
pub enum RangeRequest {
    /// No usable Range: send the whole file.
    Full,
    /// One satisfiable range, inclusive.
    Partial(u64, u64),
    Unsatisfiable,
}

/// Parses a single byte range against a file of `len` bytes (RFC 9110 §14.1.2). Several
/// ranges, or a Range in another unit, are answered with the whole file, which the RFC allows.
pub fn parse_range(value: &str, len: u64) -> RangeRequest {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeRequest::Full;
    };
    if spec.contains(',') {
        return RangeRequest::Full;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeRequest::Unsatisfiable;
    };
    let (a, b) = (a.trim(), b.trim());
    let parsed = match (a.is_empty(), b.is_empty()) {
        (true, true) => None,
        (true, false) => b
            .parse::<u64>()
            .ok()
            .filter(|n| *n > 0)
            .map(|n| (len.saturating_sub(n), len - 1)),
        (false, true) => a.parse::<u64>().ok().map(|s| (s, len - 1)),
        (false, false) => match (a.parse::<u64>(), b.parse::<u64>()) {
            (Ok(s), Ok(e)) if s <= e => Some((s, e.min(len - 1))),
            _ => None,
        },
    };
    match parsed {
        Some((s, e)) if s < len && s <= e => RangeRequest::Partial(s, e),
        _ => RangeRequest::Unsatisfiable,
    }
}

fn etag(track: u32) -> String {
    format!("\"track-{track}-{SAMPLE_RATE}-{SECONDS}\"")
}

async fn audio(
    State(data): State<Arc<Dataset>>,
    headers: HeaderMap,
    ApiPath(id): ApiPath<u32>,
) -> ApiResult<Response> {
    if data.track(id).is_none() {
        return Err(ApiError::NotFound(format!("no track with id {id}")));
    }
    let tag = etag(id);
    let mut response_headers = HeaderMap::new();
    response_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("audio/wav"));
    response_headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    response_headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    if let Ok(v) = HeaderValue::from_str(&tag) {
        response_headers.insert(header::ETAG, v);
    }
    if crate::etag::none_match(&headers, &tag) {
        return Ok((StatusCode::NOT_MODIFIED, response_headers).into_response());
    }
    // If-Range: a range of a different version of the file would be garbage; send it whole.
    let if_range_ok = headers
        .get(header::IF_RANGE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.trim() == tag);
    let range = match headers.get(header::RANGE).and_then(|v| v.to_str().ok()) {
        Some(r) if if_range_ok => parse_range(r, FILE_LEN),
        _ => RangeRequest::Full,
    };
    Ok(match range {
        RangeRequest::Full => (
            StatusCode::OK,
            response_headers,
            Body::from(wav_range(id, 0, FILE_LEN - 1)),
        )
            .into_response(),
        RangeRequest::Partial(s, e) => {
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {s}-{e}/{FILE_LEN}")) {
                response_headers.insert(header::CONTENT_RANGE, v);
            }
            (
                StatusCode::PARTIAL_CONTENT,
                response_headers,
                Body::from(wav_range(id, s, e)),
            )
                .into_response()
        }
        RangeRequest::Unsatisfiable => {
            let mut response = ApiError::RangeNotSatisfiable(format!(
                "the Range asked for is outside the file's {FILE_LEN} bytes"
            ))
            .into_response();
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{FILE_LEN}")) {
                response.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            response
        }
    })
}

pub fn router(data: Arc<Dataset>) -> Router {
    Router::new()
        .route("/1.x/tracks/{id}/audio.wav", get(audio))
        .with_state(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_follow_the_rfc() {
        use RangeRequest::*;
        let len = 1000;
        let cases = [
            ("bytes=0-99", Partial(0, 99)),
            ("bytes=900-", Partial(900, 999)),
            ("bytes=-100", Partial(900, 999)),
            ("bytes=-5000", Partial(0, 999)),
            ("bytes=990-2000", Partial(990, 999)),
            ("bytes=1000-", Unsatisfiable),
            ("bytes=5-1", Unsatisfiable),
            ("bytes=-0", Unsatisfiable),
            ("bytes=x-y", Unsatisfiable),
            ("bytes=0-1,5-6", Full),
            ("items=0-1", Full),
        ];
        for (header, want) in cases {
            assert_eq!(parse_range(header, len), want, "{header}");
        }
    }

    #[test]
    fn any_range_equals_the_same_slice_of_the_whole_file() {
        let whole = wav_range(7, 0, FILE_LEN - 1);
        assert_eq!(whole.len() as u64, FILE_LEN);
        assert_eq!(&whole[0..4], b"RIFF");
        assert_eq!(&whole[8..12], b"WAVE");
        for (s, e) in [
            (0, 10),
            (40, 50),
            (43, 44),
            (1000, 5001),
            (FILE_LEN - 3, FILE_LEN - 1),
        ] {
            assert_eq!(wav_range(7, s, e), whole[s as usize..=e as usize].to_vec());
        }
        assert_ne!(wav_range(7, 1000, 1100), wav_range(8, 1000, 1100));
    }
}
