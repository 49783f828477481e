//! Streaming playback: an HTTP step that plays what it fetches (`playback:` beside its `url`).
//! It reads the audio until it holds `seconds` of it and judges what a listener feels: the
//! time to the first audio byte, which is what the journey's latency counts, and whether the
//! audio arrived faster than it plays. Delivered under `degraded_below` times real time (1.5
//! by default) the run is degraded: it plays, but one slower day stutters. Under real time it
//! fails: the player would stall.
//!
//! The bitrate is the step's `bitrate`, or read from the stream when it is a WAV file (its
//! `fmt ` chunk says the bytes a second); any other format needs `bitrate`.

use std::time::{Duration, Instant};

use lookout_conf::{Report, Spanned, number_in};
use lookout_model::probe::{Degradation, FailureKind, Outcome};
use serde::Deserialize;

use crate::http::{self, BodyWatch};

/// `playback:` in an HTTP step, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawPlayback {
    /// Seconds of audio to fetch, from the start of what the request asks for.
    pub seconds: Option<Spanned<f64>>,
    /// The audio's bitrate, as `320kbps`, `1.4Mbps` or `44100B/s`; read from a WAV stream's
    /// header when not given.
    pub bitrate: Option<Spanned<String>>,
    /// Delivered slower than this many times real time, the run is degraded.
    pub degraded_below: Option<Spanned<f64>>,
}

#[derive(Debug, Clone)]
pub struct Playback {
    pub seconds: f64,
    /// Bytes a second; `None` to read it from the stream.
    pub byte_rate: Option<f64>,
    pub degraded_below: f64,
}

/// The longest playback a step may fetch.
const MAX_SECONDS: f64 = 3600.0;
const DEFAULT_SECONDS: f64 = 10.0;
const DEFAULT_DEGRADED_BELOW: f64 = 1.5;

/// `text` as bytes a second.
pub fn parse_bitrate(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let units: [(&str, f64); 5] = [
        ("Mbps", 1e6 / 8.0),
        ("kbps", 1e3 / 8.0),
        ("bps", 1.0 / 8.0),
        ("kB/s", 1e3),
        ("B/s", 1.0),
    ];
    let bad =
        || format!("{text:?} is not a bitrate: write e.g. `320kbps`, `1.4Mbps` or `44100B/s`");
    let (number, factor) = units
        .iter()
        .find_map(|(unit, f)| t.strip_suffix(unit).map(|n| (n.trim(), *f)))
        .ok_or_else(bad)?;
    let n: f64 = number.parse().map_err(|_| bad())?;
    if !(n.is_finite() && n > 0.0) {
        return Err(format!("{text:?}: a bitrate must be more than zero"));
    }
    Ok(n * factor)
}

impl RawPlayback {
    /// Validated once, at load; each error reported where it was written.
    pub fn build(self, at: &str, report: &mut Report) -> Option<Playback> {
        let mut ok = true;
        let seconds = match &self.seconds {
            None => DEFAULT_SECONDS,
            Some(s) if s.value.is_finite() && s.value > 0.0 && s.value <= MAX_SECONDS => s.value,
            Some(s) => {
                report(
                    s.loc(),
                    &format!("{at}.playback.seconds"),
                    format!(
                        "{} seconds of playback: must be more than 0 and at most {MAX_SECONDS}",
                        s.value
                    ),
                );
                ok = false;
                DEFAULT_SECONDS
            }
        };
        let byte_rate = match &self.bitrate {
            None => None,
            Some(b) => match parse_bitrate(&b.value) {
                Ok(r) => Some(r),
                Err(e) => {
                    report(b.loc(), &format!("{at}.playback.bitrate"), e);
                    ok = false;
                    None
                }
            },
        };
        let path = format!("{at}.playback.degraded_below");
        let degraded_below = match &self.degraded_below {
            Some(d) if !d.value.is_finite() || d.value < 1.0 => {
                report(
                    d.loc(),
                    &path,
                    format!(
                        "{}: the ratio to real time under which a run is degraded must be at least 1 (under 1x real time a run fails)",
                        d.value
                    ),
                );
                ok = false;
                DEFAULT_DEGRADED_BELOW
            }
            d => number_in(
                report,
                d.as_ref(),
                &path,
                DEFAULT_DEGRADED_BELOW,
                1.0,
                100.0,
            ),
        };
        ok.then_some(Playback {
            seconds,
            byte_rate,
            degraded_below,
        })
    }
}

/// What a playback saw of the body as it arrived.
#[derive(Debug, Default)]
pub struct Listening {
    seconds: f64,
    configured_rate: Option<f64>,
    /// The first bytes, until the WAV header is read (or known not to be one).
    head: Vec<u8>,
    wav: Option<Wav>,
    not_wav: bool,
    received: u64,
    first_byte: Option<Instant>,
    enough_at: Option<Instant>,
    last_byte: Option<Instant>,
}

/// What a WAV header says.
#[derive(Debug, Clone, Copy)]
struct Wav {
    byte_rate: f64,
    data_start: u64,
}

/// A header longer than this is not looked into.
const HEAD_MAX: usize = 64 * 1024;

impl Playback {
    pub fn listening(&self) -> Listening {
        Listening {
            seconds: self.seconds,
            configured_rate: self.byte_rate,
            ..Listening::default()
        }
    }
}

impl Listening {
    /// The bytes a second and where the audio starts, once known.
    fn rate(&self) -> Option<(f64, u64)> {
        match (self.configured_rate, self.wav) {
            (Some(r), wav) => Some((r, wav.map_or(0, |w| w.data_start))),
            (None, Some(w)) => Some((w.byte_rate, w.data_start)),
            (None, None) => None,
        }
    }

    fn needed(&self) -> Option<u64> {
        self.rate()
            .map(|(rate, start)| start + (self.seconds * rate).ceil() as u64)
    }
}

impl BodyWatch for Listening {
    fn begin(&mut self) {
        *self = Listening {
            seconds: self.seconds,
            configured_rate: self.configured_rate,
            ..Listening::default()
        };
    }

    fn chunk(&mut self, data: &[u8], at: Instant) -> bool {
        if data.is_empty() {
            return true;
        }
        self.first_byte.get_or_insert(at);
        self.last_byte = Some(at);
        self.received += data.len() as u64;
        if self.wav.is_none() && !self.not_wav && self.head.len() < HEAD_MAX {
            self.head.extend_from_slice(data);
            match wav_header(&self.head) {
                Header::Wav(w) => self.wav = Some(w),
                Header::NotWav => self.not_wav = true,
                Header::NeedMore => {}
            }
        }
        match self.needed() {
            Some(n) if self.received >= n => {
                self.enough_at = Some(at);
                false
            }
            _ => true,
        }
    }
}

enum Header {
    Wav(Wav),
    NotWav,
    NeedMore,
}

/// Reads a RIFF/WAVE header's chunks up to `data`: the byte rate from `fmt `, and where the
/// samples begin.
fn wav_header(b: &[u8]) -> Header {
    if b.len() < 12 {
        return if b"RIFF".starts_with(&b[..b.len().min(4)]) {
            Header::NeedMore
        } else {
            Header::NotWav
        };
    }
    if &b[..4] != b"RIFF" || &b[8..12] != b"WAVE" {
        return Header::NotWav;
    }
    let mut at = 12usize;
    let mut byte_rate = None;
    loop {
        let Some(chunk) = b.get(at..at + 8) else {
            return Header::NeedMore;
        };
        let id = &chunk[..4];
        let size = u32::from_le_bytes([chunk[4], chunk[5], chunk[6], chunk[7]]) as usize;
        let body = at + 8;
        if id == b"data" {
            return match byte_rate {
                Some(r) if r > 0 => Header::Wav(Wav {
                    byte_rate: f64::from(r),
                    data_start: body as u64,
                }),
                _ => Header::NotWav,
            };
        }
        if id == b"fmt " {
            let Some(fmt) = b.get(body..body + 12) else {
                return Header::NeedMore;
            };
            byte_rate = Some(u32::from_le_bytes([fmt[8], fmt[9], fmt[10], fmt[11]]));
        }
        // Chunks are padded to an even size.
        at = body + size + (size & 1);
        if at > HEAD_MAX {
            return Header::NotWav;
        }
    }
}

/// How a playback went, once the body has been read.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// From the request's first byte to the first audio byte.
    pub first_audio: Duration,
    /// Audio seconds delivered over the time they took to arrive.
    pub ratio: f64,
    pub seconds: f64,
}

impl Listening {
    /// The step's outcome: degraded or failed by the delivery rate, failed when the stream
    /// ended short or its bitrate cannot be told. `sent` is when the request was written.
    pub fn judge(&self, playback: &Playback, sent: Instant) -> (Option<Verdict>, Outcome) {
        let Some(first) = self.first_byte else {
            return (
                None,
                fail(
                    FailureKind::Protocol,
                    "the response had no audio: an empty body".into(),
                ),
            );
        };
        let Some((rate, start)) = self.rate() else {
            return (
                None,
                fail(
                    FailureKind::Protocol,
                    "cannot tell the stream's bitrate: it is not a WAV file; give `playback.bitrate`"
                        .into(),
                ),
            );
        };
        let audio_bytes = self.received.saturating_sub(start);
        let seconds = audio_bytes as f64 / rate;
        let end = self.enough_at.or(self.last_byte).unwrap_or(first);
        let took = end.saturating_duration_since(first).as_secs_f64();
        // All of it in one read (a fast link, a short track): as fast as it can be measured.
        let ratio = if took > 0.0 {
            seconds / took
        } else {
            f64::INFINITY
        };
        let verdict = Verdict {
            first_audio: first.saturating_duration_since(sent),
            ratio,
            seconds,
        };
        let wanted = playback.seconds;
        let delivered = format!(
            "{} of audio in {} ({}x real time)",
            secs(seconds),
            secs(took),
            shown_ratio(ratio)
        );
        let outcome = if self.enough_at.is_none() && seconds + 1e-6 < wanted {
            fail(
                FailureKind::Protocol,
                format!(
                    "the stream ended after {} of the {} of playback asked for ({delivered})",
                    secs(seconds),
                    secs(wanted)
                ),
            )
        } else if ratio < 1.0 {
            fail(
                FailureKind::Assertion,
                format!("delivered slower than it plays: {delivered}; a player would stall"),
            )
        } else if ratio < playback.degraded_below {
            Outcome::Degraded(Degradation {
                message: format!(
                    "delivered at {}x real time, under {}x: {delivered}; it would stutter on a worse day",
                    shown_ratio(ratio),
                    playback.degraded_below
                ),
                step: None,
            })
        } else {
            Outcome::Ok
        };
        (Some(verdict), outcome)
    }
}

fn fail(kind: FailureKind, message: String) -> Outcome {
    Outcome::Fail(http::fail(kind, message))
}

fn secs(s: f64) -> String {
    format!("{s:.2} s")
}

fn shown_ratio(r: f64) -> String {
    if r.is_finite() {
        format!("{r:.2}")
    } else {
        "unmeasurably many".into()
    }
}

/// A failure as the HTTP step ties it to its step.
pub fn with_step(outcome: Outcome, step: usize) -> Outcome {
    match outcome {
        Outcome::Ok => Outcome::Ok,
        Outcome::Degraded(mut d) => {
            d.step = Some(step);
            Outcome::Degraded(d)
        }
        Outcome::Fail(mut f) => {
            f.step = Some(step);
            Outcome::Fail(f)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bitrates_are_read_with_their_unit() {
        assert_eq!(parse_bitrate("320kbps"), Ok(40_000.0));
        assert_eq!(parse_bitrate("1.4Mbps"), Ok(175_000.0));
        assert_eq!(parse_bitrate("44100B/s"), Ok(44_100.0));
        assert_eq!(parse_bitrate(" 8 kB/s "), Ok(8_000.0));
        for bad in ["320", "fast", "kbps", "-3kbps", "0kbps"] {
            assert!(parse_bitrate(bad).is_err(), "{bad}");
        }
    }

    fn wav(extra_chunk: bool) -> Vec<u8> {
        let mut h = b"RIFF\0\0\0\0WAVE".to_vec();
        if extra_chunk {
            h.extend_from_slice(b"LIST\x03\0\0\0abc\0");
        }
        h.extend_from_slice(b"fmt \x10\0\0\0");
        h.extend_from_slice(&[1, 0, 1, 0]);
        h.extend_from_slice(&22_050u32.to_le_bytes());
        h.extend_from_slice(&44_100u32.to_le_bytes());
        h.extend_from_slice(&[2, 0, 16, 0]);
        h.extend_from_slice(b"data\0\0\0\0");
        h
    }

    #[test]
    fn a_wav_header_says_its_byte_rate_and_where_the_audio_starts() {
        for (extra, start) in [(false, 44), (true, 56)] {
            let h = wav(extra);
            match wav_header(&h) {
                Header::Wav(w) => assert_eq!((w.byte_rate, w.data_start), (44_100.0, start)),
                _ => panic!("not read"),
            }
            assert!(matches!(wav_header(&h[..30]), Header::NeedMore));
        }
        assert!(matches!(
            wav_header(b"ID3\x04rest of an mp3"),
            Header::NotWav
        ));
        assert!(matches!(wav_header(b"RI"), Header::NeedMore));
    }

    #[test]
    fn enough_audio_stops_the_read_and_the_rate_is_judged() {
        let playback = Playback {
            seconds: 1.0,
            byte_rate: None,
            degraded_below: 1.5,
        };
        let sent = Instant::now();
        let t0 = sent + Duration::from_millis(20);
        let mut l = playback.listening();
        assert!(l.chunk(&wav(false), t0));
        // 1.2 s of audio arrives 1 s after the first byte: 1.2x real time, degraded.
        assert!(l.chunk(&vec![0; 30_000], t0 + Duration::from_millis(500)));
        assert!(!l.chunk(&vec![0; 22_920], t0 + Duration::from_millis(1_000)));
        let (v, outcome) = l.judge(&playback, sent);
        let v = v.unwrap();
        assert_eq!(v.first_audio, Duration::from_millis(20));
        assert!((v.ratio - 52_920.0 / 44_100.0).abs() < 1e-9, "{v:?}");
        match outcome {
            Outcome::Degraded(d) => assert!(d.message.contains("1.20x real time"), "{d:?}"),
            o => panic!("{o:?}"),
        }
    }
}
