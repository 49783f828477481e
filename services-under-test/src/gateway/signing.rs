//! Play URLs: short-lived links to a track's audio, signed so a player can fetch them with no
//! credentials of its own (as a CDN link would be), and useless once expired or altered.

use hmac::{Hmac, Mac};
use lookout_model::secret::{Secret, constant_time_eq};
use sha2::Sha256;

pub const VALID_FOR_SECS: u64 = 3600;

pub fn sign(key: &Secret, track: u32, expires: u64) -> String {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here; an empty
    // signature on the impossible path would simply never verify.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key.expose().as_bytes()) else {
        return String::new();
    };
    mac.update(format!("{track}:{expires}").as_bytes());
    mac.finalize()
        .into_bytes()
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn verify(key: &Secret, track: u32, expires: u64, signature: &str, now: u64) -> bool {
    let expected = sign(key, track, expires);
    !expected.is_empty()
        && expires >= now
        && constant_time_eq(expected.as_bytes(), signature.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_bind_track_and_expiry() {
        let key = Secret::new("k");
        let sig = sign(&key, 5, 1000);
        assert!(verify(&key, 5, 1000, &sig, 999));
        assert!(!verify(&key, 5, 1000, &sig, 1001), "expired");
        assert!(!verify(&key, 6, 1000, &sig, 999), "other track");
        assert!(!verify(&key, 5, 2000, &sig, 999), "other expiry");
        assert!(!verify(&Secret::new("j"), 5, 1000, &sig, 999), "other key");
    }
}
