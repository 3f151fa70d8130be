//! Time-limited TURN credentials in the TURN REST API format (what coturn checks with
//! `use-auth-secret`): derived from a shared secret, so nothing is stored on either side.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

use crate::config::{IceConfig, Secret};
use crate::ice::{IceServer, Urls};

/// Mints credentials from `TURN_SECRET`.
#[derive(Debug)]
pub struct TurnIssuer {
    secret: Secret,
    ttl: Duration,
}

impl TurnIssuer {
    /// `None` without `TURN_SECRET`.
    pub fn from_config(config: &IceConfig) -> Option<Self> {
        Some(Self {
            secret: config.turn_secret.clone()?,
            ttl: config.turn_ttl(),
        })
    }

    /// Fresh credentials for one client and the TURN servers at `urls`, valid for the
    /// configured lifetime from now.
    pub fn mint(&self, urls: Vec<String>) -> IceServer {
        self.mint_at(urls, SystemTime::now())
    }

    /// Credentials as if minted at `now`: they expire `ttl` after it.
    pub fn mint_at(&self, urls: Vec<String>, now: SystemTime) -> IceServer {
        let now = now.duration_since(UNIX_EPOCH).unwrap_or_default();
        let expiry = (now + self.ttl).as_secs();
        // A random part per client: the expiry alone would give everyone minted in the
        // same second the same username, and coturn's quotas count per username.
        let id = nanoid::nanoid!(16, &nanoid::alphabet::SAFE);
        let username = format!("{expiry}:{id}");
        let credential = credential(self.secret.expose().as_bytes(), &username);
        IceServer {
            urls: Urls::Many(urls),
            username: Some(username),
            credential: Some(credential),
        }
    }
}

/// When credentials whose username is `username` expire, or `None` if it is not one of ours.
pub fn expiry(username: &str) -> Option<SystemTime> {
    let (seconds, _id) = username.split_once(':')?;
    let seconds = seconds.parse::<u64>().ok()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
}

/// The TURN REST API password of `username`: base64 of HMAC-SHA1 keyed with the secret.
pub fn credential(secret: &[u8], username: &str) -> String {
    // Invariant: HMAC takes keys of any length (longer ones are hashed first).
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(username.as_bytes());
    BASE64.encode(mac.finalize().into_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, config_from};

    fn turn(ttl: &str) -> TurnIssuer {
        let config = config_from(&[
            "--turn-secret",
            "s3cret",
            "--turn-urls",
            "turn:t.example:3478",
            "--turn-ttl",
            ttl,
        ])
        .unwrap();
        TurnIssuer::from_config(&config.ice).unwrap()
    }

    fn urls() -> Vec<String> {
        vec!["turn:t.example:3478".into(), "turns:t.example:5349".into()]
    }

    #[test]
    fn credential_is_base64_hmac_sha1_of_the_username() {
        // RFC 2202, HMAC-SHA1 test case 2: effcdf6ae5eb2fa2d27416d5f184df9c259a7c79.
        assert_eq!(
            credential(b"Jefe", "what do ya want for nothing?"),
            "7/zfauXrL6LSdBbV8YTfnCWafHk="
        );
    }

    #[test]
    fn usernames_carry_the_expiry_and_a_fresh_id() {
        let t = turn("3600");
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let a = t.mint_at(urls(), now);
        let b = t.mint_at(urls(), now);
        let username = a.username.as_deref().unwrap();
        let (seconds, id) = username.split_once(':').unwrap();
        assert_eq!(seconds, "1800003600");
        assert_eq!(expiry(username), Some(now + Duration::from_secs(3600)));
        assert_eq!(id.len(), 16);
        assert_ne!(a.username, b.username);
        assert_eq!(a.credential.unwrap(), credential(b"s3cret", username));
        assert_eq!(a.urls, Urls::Many(urls()));
    }

    #[test]
    fn debug_output_hides_the_secret_and_the_credential() {
        let t = turn("60");
        let server = t.mint(urls());
        let shown = format!("{t:?} {server:?}");
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(
            !shown.contains(server.credential.as_deref().unwrap()),
            "{shown}"
        );
    }

    #[test]
    fn only_our_usernames_have_an_expiry() {
        for bad in [
            "",
            "1800003600",
            "x:abc",
            "-5:abc",
            ":abc",
            "99999999999999999999:a",
        ] {
            assert_eq!(expiry(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn no_turn_without_configuration() {
        assert!(TurnIssuer::from_config(&Config::defaults().ice).is_none());
    }
}
