//! The asymmetric signing key ring kept in the signing secret, and the public JWKS derived from it.
//!
//! Each key carries its private JWK, its `kid` (the RFC 7638 thumbprint of the public key), when
//! it was published (written to the public JWKS) and, once a newer key was added, when it stops
//! signing. Signers use the newest key published at least `delay` ago (the JWKS's max-age, plus
//! how long the JWKS route may serve an older copy), so a verifier that caches the JWKS for its
//! max-age already knows every key that can sign; a fresh ring's only key signs at once (no JWKS
//! listed a key before it). A key leaves the ring once no token it signed can be alive in
//! anyone's cache: `access_ttl` + `delay` after it stopped signing.

use std::time::Duration;

use aws_lc_rs::encoding::AsBigEndian;
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters, EllipticCurveKeyType, Jwk,
    JwkSet, KeyAlgorithm, PublicKeyUse, ThumbprintHash,
};
use jsonwebtoken::{Algorithm, EncodingKey};
use serde::{Deserialize, Serialize};

/// Why a ring (or a key in it) cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyRingError {
    #[error("the key ring is not valid JSON of the expected shape: {0}")]
    Malformed(String),
    #[error("key {kid}: {reason}")]
    InvalidKey { kid: String, reason: &'static str },
    #[error("the key ring holds no key")]
    Empty,
}

/// An EC P-256 private key as a JWK (RFC 7517/7518): what an operator can import elsewhere.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrivateJwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub y: String,
    /// The private scalar.
    pub d: String,
}

impl std::fmt::Debug for PrivateJwk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrivateJwk").field("crv", &self.crv).field("x", &self.x).finish_non_exhaustive()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RingKey {
    pub kid: String,
    pub private_jwk: PrivateJwk,
    /// Unix seconds: when the key was first written to the public JWKS.
    pub published_at: i64,
    /// Unix seconds: when a newer key takes over signing (set by the rotation that adds it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retired_at: Option<i64>,
}

/// A key ready to sign, with its `kid`.
pub struct Signer {
    pub kid: String,
    pub encoding: EncodingKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("kid", &self.kid).finish_non_exhaustive()
    }
}

impl RingKey {
    /// A new ES256 key, published at `now`.
    pub fn generate(now: i64) -> Self {
        let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("P-256 key generation");
        let d = pair.private_key().as_be_bytes().expect("a P-256 private scalar");
        // Uncompressed SEC1 point: 0x04 || x || y.
        let point = pair.public_key().as_ref();
        let private_jwk = PrivateJwk {
            kty: "EC".into(),
            crv: "P-256".into(),
            x: URL_SAFE_NO_PAD.encode(&point[1..33]),
            y: URL_SAFE_NO_PAD.encode(&point[33..65]),
            d: URL_SAFE_NO_PAD.encode(d.as_ref()),
        };
        let kid = thumbprint(&private_jwk.x, &private_jwk.y);
        Self { kid, private_jwk, published_at: now, retired_at: None }
    }

    fn invalid(&self, reason: &'static str) -> KeyRingError {
        KeyRingError::InvalidKey { kid: self.kid.clone(), reason }
    }

    /// The key as a signer; refused unless it is a P-256 key whose public half matches its
    /// private scalar and whose `kid` is its thumbprint.
    pub fn signer(&self) -> Result<Signer, KeyRingError> {
        let jwk = &self.private_jwk;
        if jwk.kty != "EC" || jwk.crv != "P-256" {
            return Err(self.invalid("not an EC P-256 key"));
        }
        if self.kid != thumbprint(&jwk.x, &jwk.y) {
            return Err(self.invalid("the kid is not the key's RFC 7638 thumbprint"));
        }
        let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|_| self.invalid("not base64url"));
        let (x, y, d) = (decode(&jwk.x)?, decode(&jwk.y)?, decode(&jwk.d)?);
        let point = [&[0x04][..], &x, &y].concat();
        let pair = EcdsaKeyPair::from_private_key_and_public_key(&ECDSA_P256_SHA256_FIXED_SIGNING, &d, &point)
            .map_err(|_| self.invalid("the private and public halves do not match"))?;
        let pkcs8 = pair.to_pkcs8v1().map_err(|_| self.invalid("cannot be encoded as PKCS #8"))?;
        Ok(Signer { kid: self.kid.clone(), encoding: EncodingKey::from_ec_der(pkcs8.as_ref()) })
    }

    /// The public JWK, as published: `kid`, `alg`, `use: sig`, no private part.
    pub fn public_jwk(&self) -> Jwk {
        Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(KeyAlgorithm::ES256),
                key_id: Some(self.kid.clone()),
                ..CommonParameters::default()
            },
            algorithm: AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
                key_type: EllipticCurveKeyType::EC,
                curve: EllipticCurve::P256,
                x: self.private_jwk.x.clone(),
                y: self.private_jwk.y.clone(),
            }),
        }
    }

    /// Whether tokens it signed may still be alive, or cached JWKS copies may still be needed.
    fn needed(&self, now: i64, access_ttl: Duration, delay: Duration) -> bool {
        self.retired_at.is_none_or(|retired| now < retired + access_ttl.as_secs() as i64 + delay.as_secs() as i64)
    }
}

/// The RFC 7638 SHA-256 thumbprint of a P-256 public key.
pub fn thumbprint(x: &str, y: &str) -> String {
    let jwk = Jwk {
        common: CommonParameters::default(),
        algorithm: AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
            key_type: EllipticCurveKeyType::EC,
            curve: EllipticCurve::P256,
            x: x.to_owned(),
            y: y.to_owned(),
        }),
    };
    jwk.thumbprint(ThumbprintHash::SHA256).expect("an EC key has a thumbprint")
}

/// The algorithm of every key in the ring.
pub const ALGORITHM: Algorithm = Algorithm::ES256;
/// Its JOSE name (`alg`), as published.
pub const ALGORITHM_NAME: &str = "ES256";

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRing {
    pub keys: Vec<RingKey>,
}

impl KeyRing {
    /// The ring stored in the signing secret; every key must be usable.
    pub fn parse(json: &str) -> Result<Self, KeyRingError> {
        let ring: Self = serde_json::from_str(json).map_err(|e| KeyRingError::Malformed(e.to_string()))?;
        for key in &ring.keys {
            key.signer()?;
        }
        Ok(ring)
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a key ring serializes")
    }

    /// The key new tokens are signed with at `now`: the newest published at least
    /// `delay` ago, else (a ring whose keys are all newer: the first key, or what is left
    /// after an emergency removal) the oldest.
    pub fn signing_key(&self, now: i64, delay: Duration) -> Result<&RingKey, KeyRingError> {
        let published_by = now - delay.as_secs() as i64;
        self.keys
            .iter()
            .filter(|key| key.published_at <= published_by)
            .max_by_key(|key| key.published_at)
            .or_else(|| self.keys.iter().min_by_key(|key| key.published_at))
            .ok_or(KeyRingError::Empty)
    }

    /// The ring with `new` added: every key that had no successor stops signing once `new` may
    /// sign (`delay` after it is published), and keys no longer needed are dropped.
    pub fn rotated(&self, new: RingKey, now: i64, access_ttl: Duration, delay: Duration) -> Self {
        let takes_over = new.published_at + delay.as_secs() as i64;
        let mut keys: Vec<RingKey> = self
            .keys
            .iter()
            .filter(|key| key.needed(now, access_ttl, delay))
            .cloned()
            .map(|mut key| {
                key.retired_at.get_or_insert(takes_over);
                key
            })
            .collect();
        keys.push(new);
        Self { keys }
    }

    /// The ring without the key `kid` (an emergency: a compromised key).
    pub fn without(&self, kid: &str) -> Self {
        Self { keys: self.keys.iter().filter(|key| key.kid != kid).cloned().collect() }
    }

    /// The public JWKS: every key that may have signed a live token, and the next one.
    pub fn jwks(&self) -> JwkSet {
        JwkSet { keys: self.keys.iter().map(RingKey::public_jwk).collect() }
    }

    pub fn find(&self, kid: &str) -> Option<&RingKey> {
        self.keys.iter().find(|key| key.kid == kid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Header, Validation};
    use sha2::{Digest, Sha256};

    const HOUR: Duration = Duration::from_secs(3600);
    const TTL: Duration = Duration::from_secs(900);

    #[test]
    fn given_a_new_key_then_its_kid_is_the_rfc_7638_thumbprint_of_its_public_half() {
        // GIVEN a generated key
        let key = RingKey::generate(0);
        // WHEN the thumbprint is computed by hand (members in lexicographic order, no spaces)
        let canonical =
            format!(r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#, key.private_jwk.x, key.private_jwk.y);
        let expected = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
        // THEN it is the kid
        assert_eq!(key.kid, expected);
        assert_eq!(key.kid.len(), 43);
    }

    #[test]
    fn given_a_key_when_signing_then_its_published_jwk_alone_verifies_the_token() {
        // GIVEN a key and its JWKS
        let key = RingKey::generate(0);
        let ring = KeyRing { keys: vec![key.clone()] };
        let jwks = serde_json::to_value(ring.jwks()).unwrap();
        // WHEN a token is signed with it
        let signer = key.signer().unwrap();
        let mut header = Header::new(ALGORITHM);
        header.kid = Some(signer.kid.clone());
        let token = jsonwebtoken::encode(&header, &serde_json::json!({"sub": "x"}), &signer.encoding).unwrap();
        // THEN the JWKS, read as any verifier reads it, verifies it; and it holds no private part
        let set: JwkSet = serde_json::from_value(jwks.clone()).unwrap();
        let public = set.find(&key.kid).expect("the kid is published");
        let mut validation = Validation::new(ALGORITHM);
        validation.required_spec_claims.clear();
        validation.validate_exp = false;
        jsonwebtoken::decode::<serde_json::Value>(&token, &DecodingKey::from_jwk(public).unwrap(), &validation)
            .expect("verifies");
        assert_eq!(jwks["keys"][0]["alg"], ALGORITHM_NAME);
        assert_eq!(serde_json::to_value(ALGORITHM).unwrap(), ALGORITHM_NAME);
        assert_eq!(jwks["keys"][0]["use"], "sig");
        assert!(jwks["keys"][0].get("d").is_none(), "{jwks}");
        assert!(!format!("{key:?}").contains(&key.private_jwk.d), "Debug shows the private scalar");
    }

    #[test]
    fn given_a_tampered_key_when_loading_the_ring_then_it_is_refused() {
        let key = RingKey::generate(0);
        let other = RingKey::generate(0);
        let mut wrong_kid = key.clone();
        wrong_kid.kid = other.kid.clone();
        let mut mismatched = key.clone();
        mismatched.private_jwk.d = other.private_jwk.d.clone();
        let mut rsa = key.clone();
        rsa.private_jwk.kty = "RSA".into();
        for (bad, reason) in [
            (wrong_kid, "the kid is not the key's RFC 7638 thumbprint"),
            (mismatched, "the private and public halves do not match"),
            (rsa, "not an EC P-256 key"),
        ] {
            let json = KeyRing { keys: vec![bad.clone()] }.to_json();
            assert_eq!(KeyRing::parse(&json), Err(KeyRingError::InvalidKey { kid: bad.kid, reason }));
        }
        assert!(matches!(KeyRing::parse("{}"), Err(KeyRingError::Malformed(_))));
        assert_eq!(KeyRing::default().signing_key(0, HOUR).err(), Some(KeyRingError::Empty));
    }

    #[test]
    fn given_a_ring_round_tripped_through_json_then_it_is_unchanged() {
        let ring = KeyRing { keys: vec![RingKey::generate(5)] }.rotated(RingKey::generate(10), 10, TTL, HOUR);
        assert_eq!(KeyRing::parse(&ring.to_json()).unwrap(), ring);
    }

    #[test]
    fn given_two_rotations_in_quick_succession_then_no_key_signs_before_it_was_published_for_max_age() {
        // GIVEN a first key at t=0, then rotations at t=100 and t=200 (well within an hour)
        let a = RingKey::generate(0);
        let first = KeyRing { keys: vec![a.clone()] };
        let b = RingKey::generate(100);
        let second = first.rotated(b.clone(), 100, TTL, HOUR);
        let c = RingKey::generate(200);
        let third = second.rotated(c.clone(), 200, TTL, HOUR);
        let max_age = HOUR.as_secs() as i64;
        // THEN the first key signs at once and until b has been published for an hour
        assert_eq!(first.signing_key(0, HOUR).unwrap().kid, a.kid);
        assert_eq!(third.signing_key(100 + max_age - 1, HOUR).unwrap().kid, a.kid);
        assert_eq!(third.signing_key(100 + max_age, HOUR).unwrap().kid, b.kid);
        assert_eq!(third.signing_key(200 + max_age, HOUR).unwrap().kid, c.kid);
        // AND each key's end of signing is when its successor takes over
        assert_eq!(third.find(&a.kid).unwrap().retired_at, Some(100 + max_age));
        assert_eq!(third.find(&b.kid).unwrap().retired_at, Some(200 + max_age));
        assert_eq!(third.find(&c.kid).unwrap().retired_at, None);
        // AND every key is published while it may sign or its tokens live
        assert_eq!(third.jwks().keys.len(), 3);
    }

    #[test]
    fn given_a_retired_key_then_it_leaves_the_ring_only_after_its_last_token_and_cached_jwks_expired() {
        // GIVEN a key retired (b takes over) at 100 + max_age
        let a = RingKey::generate(0);
        let ring = KeyRing { keys: vec![a.clone()] }.rotated(RingKey::generate(100), 100, TTL, HOUR);
        let gone_at = 100 + (HOUR + TTL + HOUR).as_secs() as i64;
        // WHEN the next rotation happens just before, then at, the end of its need
        let kept = ring.rotated(RingKey::generate(gone_at - 1), gone_at - 1, TTL, HOUR);
        let dropped = ring.rotated(RingKey::generate(gone_at), gone_at, TTL, HOUR);
        // THEN it is kept, then dropped (from the ring and so from the JWKS)
        assert!(kept.find(&a.kid).is_some());
        assert!(dropped.find(&a.kid).is_none());
        assert!(dropped.jwks().find(&a.kid).is_none());
        assert_eq!(dropped.keys.len(), 2);
    }

    #[test]
    fn given_the_signing_key_removed_in_an_emergency_then_signers_move_at_once_to_the_newest_published() {
        // GIVEN a ring where a signs, b is published and eligible, c is brand new
        let (a, b, c) = (RingKey::generate(0), RingKey::generate(10), RingKey::generate(20_000));
        let ring = KeyRing { keys: vec![a.clone(), b.clone(), c.clone()] };
        assert_eq!(ring.signing_key(20_000, HOUR).unwrap().kid, b.kid);
        // WHEN b is removed
        let ring = ring.without(&b.kid);
        // THEN a, the newest key published for max-age, signs; c only when it has been
        assert_eq!(ring.signing_key(20_000, HOUR).unwrap().kid, a.kid);
        assert!(ring.jwks().find(&b.kid).is_none());
        // AND with only c left, c signs at once
        assert_eq!(ring.without(&a.kid).signing_key(20_000, HOUR).unwrap().kid, c.kid);
    }
}
