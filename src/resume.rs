//! Resume tokens: what a client presents on reconnect to get its peer id and rooms back. A
//! token is an HMAC-SHA256 under a server key over the peer id and an expiry, so nodes that
//! share the key check it without storing anything.

use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as BASE64URL;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::config::ResumeConfig;
use crate::protocol::{PeerId, resume};

/// The token's format version, its first byte.
const VERSION: u8 = 1;
/// Bytes of a peer id (its ids are ASCII).
const PEER_LEN: usize = 16;
/// Version, expiry (seconds since 1970, big-endian), peer id, MAC.
const TOKEN_LEN: usize = 1 + 8 + PEER_LEN + 32;
/// Bound into every MAC, so a key shared with another use never signs a valid token.
const DOMAIN: &[u8] = b"meshchat-resume";

/// Mints and checks resume tokens. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Resume {
    /// `None` until known: in a cluster without `RESUME_SECRET`, until the first heartbeat
    /// read the key the nodes share from Redis.
    key: Arc<RwLock<Option<Arc<[u8]>>>>,
    /// The key is `RESUME_SECRET`'s.
    from_setting: bool,
    ttl: Duration,
    grace: Duration,
}

impl std::fmt::Debug for Resume {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resume")
            .field("ttl", &self.ttl)
            .field("grace", &self.grace)
            .finish_non_exhaustive()
    }
}

impl Resume {
    /// With `RESUME_SECRET`, its key; else, when `shared` (a cluster), none until
    /// [`Resume::set_key`], and otherwise a random key of this process's own.
    pub(crate) fn new(config: &ResumeConfig, shared: bool) -> Self {
        let key: Option<Arc<[u8]>> = match &config.resume_secret {
            Some(secret) => Some(secret.expose().as_bytes().into()),
            None if shared => None,
            None => Some(random_key().into_bytes().into()),
        };
        Self {
            key: Arc::new(RwLock::new(key)),
            from_setting: config.resume_secret.is_some(),
            ttl: config.ttl(),
            grace: config.grace(),
        }
    }

    /// How long a departed client's rooms are held for it; zero: resume is off.
    pub(crate) fn grace(&self) -> Duration {
        self.grace
    }

    /// Whether a key is set (from `RESUME_SECRET`, or shared through Redis).
    pub(crate) fn has_key(&self) -> bool {
        self.key().is_some()
    }

    /// Uses `key` from now on (the one the cluster's nodes share).
    pub(crate) fn set_key(&self, key: &str) {
        *self.key.write().unwrap_or_else(|p| p.into_inner()) = Some(key.as_bytes().into());
    }

    /// The key to write back to Redis after it lost it: the shared one this node read
    /// (none with `RESUME_SECRET`, which every node has anyway).
    pub(crate) fn shared_key_to_keep(&self) -> Option<String> {
        if self.from_setting {
            return None;
        }
        let key = self.key()?;
        String::from_utf8(key.to_vec()).ok()
    }

    fn key(&self) -> Option<Arc<[u8]>> {
        self.key.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// A token for `peer`, valid for the configured TTL; `None` while resume is off or the
    /// key is not known yet.
    pub(crate) fn issue(&self, peer: &PeerId) -> Option<String> {
        if self.grace.is_zero() {
            return None;
        }
        let expiry = now_secs().saturating_add(self.ttl.as_secs());
        Some(mint(&self.key()?, peer, expiry))
    }

    /// The peer a token names, or the `resume_*` reason it is refused for.
    pub(crate) fn check(&self, token: &str) -> Result<PeerId, &'static str> {
        if self.grace.is_zero() {
            return Err(resume::UNAVAILABLE);
        }
        let key = self.key().ok_or(resume::UNAVAILABLE)?;
        verify(&key, token, now_secs())
    }
}

/// A random key: 43 characters of a 64-letter alphabet, 258 bits.
pub(crate) fn random_key() -> String {
    nanoid::nanoid!(43)
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn mac(key: &[u8], body: &[u8]) -> Hmac<Sha256> {
    // Invariant: HMAC takes keys of any length (longer ones are hashed first).
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    mac.update(DOMAIN);
    mac.update(body);
    mac
}

/// The token of `peer` expiring at `expiry` (seconds since 1970): base64url of version,
/// expiry, peer id and the MAC over those.
fn mint(key: &[u8], peer: &PeerId, expiry: u64) -> String {
    let mut token = Vec::with_capacity(TOKEN_LEN);
    token.push(VERSION);
    token.extend_from_slice(&expiry.to_be_bytes());
    token.extend_from_slice(peer.as_str().as_bytes());
    let tag = mac(key, &token).finalize().into_bytes();
    token.extend_from_slice(&tag);
    BASE64URL.encode(token)
}

/// The peer of a token minted under `key`, if it is genuine and not expired at `now`.
fn verify(key: &[u8], token: &str, now: u64) -> Result<PeerId, &'static str> {
    // A token longer than any genuine one is not even decoded.
    if token.len() > TOKEN_LEN * 2 {
        return Err(resume::INVALID);
    }
    let bytes = BASE64URL.decode(token).map_err(|_| resume::INVALID)?;
    if bytes.len() != TOKEN_LEN || bytes[0] != VERSION {
        return Err(resume::INVALID);
    }
    let (body, tag) = bytes.split_at(TOKEN_LEN - 32);
    // Constant time: the comparison says nothing about how much of a forged tag was right.
    mac(key, body)
        .verify_slice(tag)
        .map_err(|_| resume::INVALID)?;
    let mut expiry = [0; 8];
    expiry.copy_from_slice(&body[1..9]);
    if u64::from_be_bytes(expiry) < now {
        return Err(resume::EXPIRED);
    }
    let peer = std::str::from_utf8(&body[9..]).map_err(|_| resume::INVALID)?;
    PeerId::parse(peer).ok_or(resume::INVALID)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_names_its_peer_until_it_expires() {
        let peer = PeerId::random();
        let token = mint(b"key", &peer, 1_000);
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(verify(b"key", &token, 1_000), Ok(peer));
        assert_eq!(verify(b"key", &token, 1_001), Err(resume::EXPIRED));
    }

    #[test]
    fn forged_and_malformed_tokens_are_invalid() {
        let peer = PeerId::random();
        let token = mint(b"key", &peer, 1_000);
        assert_eq!(verify(b"other key", &token, 0), Err(resume::INVALID));
        // Another peer id or a later expiry under the same MAC.
        let mut bytes = BASE64URL.decode(&token).unwrap();
        bytes[9] ^= 1;
        assert_eq!(
            verify(b"key", &BASE64URL.encode(&bytes), 0),
            Err(resume::INVALID)
        );
        let mut bytes = BASE64URL.decode(&token).unwrap();
        bytes[1] = 0xff;
        assert_eq!(
            verify(b"key", &BASE64URL.encode(&bytes), 0),
            Err(resume::INVALID)
        );
        for junk in [
            "",
            "abc",
            "!!!!",
            &"A".repeat(500),
            &token[..token.len() - 2],
        ] {
            assert_eq!(verify(b"key", junk, 0), Err(resume::INVALID), "{junk}");
        }
    }

    #[test]
    fn without_a_grace_window_no_token_is_issued_or_accepted() {
        let mut config = crate::config::Config::defaults().resume;
        config.resume_grace_ms = 0;
        let off = Resume::new(&config, false);
        let peer = PeerId::random();
        assert_eq!(off.issue(&peer), None);
        config.resume_grace_ms = 1;
        let on = Resume::new(&config, false);
        let token = on.issue(&peer).unwrap();
        assert_eq!(on.check(&token), Ok(peer));
        assert_eq!(off.check(&token), Err(resume::UNAVAILABLE));
        // A cluster node knows no key until the shared one is set.
        let node = Resume::new(&config, true);
        assert_eq!(node.check(&token), Err(resume::UNAVAILABLE));
        node.set_key("shared");
        assert_eq!(node.check(&token), Err(resume::INVALID));
    }
}
