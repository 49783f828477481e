//! One-click acknowledge links, for emails and Slack messages: a person stops the reminders
//! from a phone without signing in. A link is bound to one problem and one receiver, expires,
//! and works once. It is signed with HMAC-SHA256 under a key derived from the alerter's API
//! token, so every alerter replica (which share the token) accepts the links of the others,
//! and changing the token revokes every link in flight. "Once" holds on every replica: the
//! acknowledgement carries the link's nonce through the replicated log, and applying it records
//! the nonce as used.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use lookout_model::secret::Secret;
use rand::Rng;
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::time::Duration;

type HmacSha256 = Hmac<Sha256>;

/// What a link says, once its signature holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AckClaim {
    #[serde(rename = "p")]
    pub problem_id: String,
    /// Who the link was sent to (the receiver key, e.g. `mail>oncall@example.com`): the
    /// acknowledgement names them.
    #[serde(rename = "r")]
    pub receiver: String,
    #[serde(rename = "e")]
    pub expires_us: i64,
    /// Makes each link its own, and is what "used" records.
    #[serde(rename = "n")]
    pub nonce: String,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum LinkError {
    #[error("this acknowledge link is not one the alerter made: it was changed or cut short")]
    Forged,
    #[error("this acknowledge link expired at {0}: acknowledge from the console instead")]
    Expired(String),
}

impl LinkError {
    /// The label of the refusal in `lookout_alerting_console_refusals_total`.
    pub fn reason(&self) -> &'static str {
        match self {
            LinkError::Forged => "ack_link_forged",
            LinkError::Expired(_) => "ack_link_expired",
        }
    }
}

/// A receiver key (`notifier>target`) as people read it: `oncall@example.com (mail)`.
pub fn receiver_name(key: &str) -> String {
    match key.split_once('>') {
        Some((n, t)) if !t.is_empty() => format!("{t} ({n})"),
        Some((n, _)) => format!("the {n} channel"),
        None => format!("the {key} channel"),
    }
}

#[derive(Clone)]
pub struct AckLinks {
    /// Keyed once; each signature starts from a clone.
    mac: HmacSha256,
    ttl: Duration,
}

/// HMAC takes keys of any length, so keying never fails.
fn keyed(key: &[u8]) -> HmacSha256 {
    match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => unreachable!("HMAC takes keys of any length"),
    }
}

impl std::fmt::Debug for AckLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AckLinks")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl AckLinks {
    pub fn new(token: &Secret, ttl: Duration) -> AckLinks {
        // A key of its own, not the token itself: a link never carries anything that opens
        // the API.
        let mut derive = keyed(token.expose().as_bytes());
        derive.update(b"lookout acknowledge links v1");
        AckLinks {
            mac: keyed(&derive.finalize().into_bytes()),
            ttl,
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn mac(&self, payload: &str) -> HmacSha256 {
        let mut mac = self.mac.clone();
        mac.update(payload.as_bytes());
        mac
    }

    /// A new link's token for `receiver` to acknowledge `problem_id`.
    pub fn sign(&self, problem_id: &str, receiver: &str, now_us: i64) -> String {
        let nonce: [u8; 12] = rand::rng().random();
        let claim = AckClaim {
            problem_id: problem_id.to_owned(),
            receiver: receiver.to_owned(),
            expires_us: now_us
                .saturating_add(i64::try_from(self.ttl.as_micros()).unwrap_or(i64::MAX)),
            nonce: URL_SAFE_NO_PAD.encode(nonce),
        };
        let body = serde_json::to_vec(&claim).unwrap_or_default();
        let payload = URL_SAFE_NO_PAD.encode(body);
        let sig = URL_SAFE_NO_PAD.encode(self.mac(&payload).finalize().into_bytes());
        format!("{payload}.{sig}")
    }

    /// The claim of a link's token, if the alerter made it and it has not expired.
    pub fn verify(&self, token: &str, now_us: i64) -> Result<AckClaim, LinkError> {
        let (payload, sig) = token.split_once('.').ok_or(LinkError::Forged)?;
        let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| LinkError::Forged)?;
        self.mac(payload)
            .verify_slice(&sig)
            .map_err(|_| LinkError::Forged)?;
        let body = URL_SAFE_NO_PAD
            .decode(payload)
            .map_err(|_| LinkError::Forged)?;
        let claim: AckClaim = serde_json::from_slice(&body).map_err(|_| LinkError::Forged)?;
        if now_us >= claim.expires_us {
            return Err(LinkError::Expired(crate::store::rfc3339(claim.expires_us)));
        }
        Ok(claim)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links() -> AckLinks {
        AckLinks::new(&Secret::new("api-token"), Duration::from_secs(3600))
    }

    #[test]
    fn a_link_verifies_with_its_problem_and_receiver() {
        let l = links();
        let t = l.sign("check-down@1", "mail>oncall@example.com", 1_000);
        let c = l.verify(&t, 2_000).expect("valid");
        assert_eq!(c.problem_id, "check-down@1");
        assert_eq!(c.receiver, "mail>oncall@example.com");
        assert_eq!(c.expires_us, 1_000 + 3_600_000_000);
        assert_ne!(
            l.sign("check-down@1", "mail>oncall@example.com", 1_000),
            t,
            "each link has its own nonce"
        );
    }

    #[test]
    fn tampered_cut_or_foreign_links_are_forged_and_old_ones_expired() {
        let l = links();
        let t = l.sign("p@1", "r", 0);
        let (payload, sig) = t.split_once('.').expect("two parts");
        let other = URL_SAFE_NO_PAD.encode(
            serde_json::to_vec(&AckClaim {
                problem_id: "other@2".into(),
                receiver: "r".into(),
                expires_us: i64::MAX,
                nonce: "x".into(),
            })
            .expect("json"),
        );
        for bad in [
            format!("{other}.{sig}"),
            payload.to_owned(),
            format!("{payload}.{}", &sig[..sig.len() - 2]),
            format!("{payload}x.{sig}"),
            String::new(),
        ] {
            assert_eq!(l.verify(&bad, 1), Err(LinkError::Forged), "{bad}");
        }
        let foreign = AckLinks::new(&Secret::new("another-token"), Duration::from_secs(3600));
        assert_eq!(foreign.verify(&t, 1), Err(LinkError::Forged));
        assert!(matches!(
            l.verify(&t, 3_600_000_000),
            Err(LinkError::Expired(_))
        ));
    }
}
