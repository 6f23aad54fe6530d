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

use aws_lc_rs::encoding::{AsBigEndian, AsDer, Pkcs8V1Der};
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{EcdsaKeyPair, KeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::{
    AlgorithmParameters, CommonParameters, EllipticCurve, EllipticCurveKeyParameters, EllipticCurveKeyType, Jwk,
    JwkSet, KeyAlgorithm, PublicKeyUse, RSAKeyParameters, RSAKeyType, ThumbprintHash,
};
use jsonwebtoken::{Algorithm, EncodingKey};
use pkcs1::der::Encode;
use pkcs1::UintRef;
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

/// The algorithm access tokens are signed with: ES256 (P-256) by default; RS256 (RSA 2048) for
/// verifiers that accept RSA only, such as API Gateway's HTTP API JWT authorizers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SigningAlgorithm {
    Es256,
    Rs256,
}

impl SigningAlgorithm {
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "ES256" => Some(Self::Es256),
            "RS256" => Some(Self::Rs256),
            _ => None,
        }
    }

    /// Its JOSE name (`alg`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Es256 => "ES256",
            Self::Rs256 => "RS256",
        }
    }

    pub fn jose(self) -> Algorithm {
        match self {
            Self::Es256 => Algorithm::ES256,
            Self::Rs256 => Algorithm::RS256,
        }
    }

    /// The algorithm a published public key is for: its `alg` and a key of that type (P-256
    /// for ES256, RSA for RS256); `None` for any other key.
    pub fn of_public_jwk(jwk: &Jwk) -> Option<Self> {
        match (&jwk.common.key_algorithm, &jwk.algorithm) {
            (Some(KeyAlgorithm::ES256), AlgorithmParameters::EllipticCurve(ec)) if ec.curve == EllipticCurve::P256 => {
                Some(Self::Es256)
            }
            (Some(KeyAlgorithm::RS256), AlgorithmParameters::RSA(_)) => Some(Self::Rs256),
            _ => None,
        }
    }
}

/// RSA keys the ring makes, and the shortest it accepts.
const RSA_BITS: usize = 2048;

/// A private key as a JWK (RFC 7517/7518): what an operator can import elsewhere.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kty")]
pub enum PrivateJwk {
    /// An elliptic-curve key: the curve, the public point and the private scalar `d`.
    #[serde(rename = "EC")]
    Ec { crv: String, x: String, y: String, d: String },
    /// An RSA key: modulus and public exponent, private exponent `d`, the primes and the CRT
    /// values.
    #[serde(rename = "RSA")]
    Rsa { n: String, e: String, d: String, p: String, q: String, dp: String, dq: String, qi: String },
}

impl PrivateJwk {
    /// The private exponent or scalar (every private part is derived from it or with it).
    pub fn d(&self) -> &str {
        match self {
            Self::Ec { d, .. } | Self::Rsa { d, .. } => d,
        }
    }

    /// The public half, without `kid`, `alg` or `use`.
    fn public(&self) -> AlgorithmParameters {
        match self {
            Self::Ec { x, y, .. } => AlgorithmParameters::EllipticCurve(EllipticCurveKeyParameters {
                key_type: EllipticCurveKeyType::EC,
                curve: EllipticCurve::P256,
                x: x.clone(),
                y: y.clone(),
            }),
            Self::Rsa { n, e, .. } => {
                AlgorithmParameters::RSA(RSAKeyParameters { key_type: RSAKeyType::RSA, n: n.clone(), e: e.clone() })
            }
        }
    }
}

impl std::fmt::Debug for PrivateJwk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Ec { crv, x, .. } => f.debug_struct("Ec").field("crv", crv).field("x", x).finish_non_exhaustive(),
            Self::Rsa { e, .. } => f.debug_struct("Rsa").field("e", e).finish_non_exhaustive(),
        }
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

/// A key ready to sign, with its `kid` and algorithm.
pub struct Signer {
    pub kid: String,
    pub algorithm: SigningAlgorithm,
    pub encoding: EncodingKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer").field("kid", &self.kid).field("algorithm", &self.algorithm).finish_non_exhaustive()
    }
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

impl RingKey {
    /// A new key for `algorithm`, published at `now`.
    pub fn generate(algorithm: SigningAlgorithm, now: i64) -> Self {
        let private_jwk = match algorithm {
            SigningAlgorithm::Es256 => {
                let pair = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).expect("P-256 key generation");
                let d = pair.private_key().as_be_bytes().expect("a P-256 private scalar");
                // Uncompressed SEC1 point: 0x04 || x || y.
                let point = pair.public_key().as_ref();
                PrivateJwk::Ec {
                    crv: "P-256".into(),
                    x: b64(&point[1..33]),
                    y: b64(&point[33..65]),
                    d: b64(d.as_ref()),
                }
            }
            SigningAlgorithm::Rs256 => {
                let pair = RsaKeyPair::generate(KeySize::Rsa2048).expect("RSA key generation");
                let pkcs8: Pkcs8V1Der<'_> = pair.as_der().expect("an RSA key in PKCS #8");
                let info = pkcs8::PrivateKeyInfo::try_from(pkcs8.as_ref()).expect("aws-lc-rs's PKCS #8");
                let rsa = pkcs1::RsaPrivateKey::try_from(info.private_key).expect("aws-lc-rs's PKCS #1");
                PrivateJwk::Rsa {
                    n: b64(rsa.modulus.as_bytes()),
                    e: b64(rsa.public_exponent.as_bytes()),
                    d: b64(rsa.private_exponent.as_bytes()),
                    p: b64(rsa.prime1.as_bytes()),
                    q: b64(rsa.prime2.as_bytes()),
                    dp: b64(rsa.exponent1.as_bytes()),
                    dq: b64(rsa.exponent2.as_bytes()),
                    qi: b64(rsa.coefficient.as_bytes()),
                }
            }
        };
        Self { kid: thumbprint(&private_jwk), private_jwk, published_at: now, retired_at: None }
    }

    pub fn algorithm(&self) -> SigningAlgorithm {
        match self.private_jwk {
            PrivateJwk::Ec { .. } => SigningAlgorithm::Es256,
            PrivateJwk::Rsa { .. } => SigningAlgorithm::Rs256,
        }
    }

    fn invalid(&self, reason: &'static str) -> KeyRingError {
        KeyRingError::InvalidKey { kid: self.kid.clone(), reason }
    }

    /// The key as a signer; refused unless it is a P-256 or a 2048-bit-or-more RSA key whose
    /// public half matches its private half and whose `kid` is its thumbprint.
    pub fn signer(&self) -> Result<Signer, KeyRingError> {
        if let PrivateJwk::Ec { crv, .. } = &self.private_jwk {
            if crv != "P-256" {
                return Err(self.invalid("not a P-256 key"));
            }
        }
        if self.kid != thumbprint(&self.private_jwk) {
            return Err(self.invalid("the kid is not the key's RFC 7638 thumbprint"));
        }
        let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|_| self.invalid("not base64url"));
        let mismatch = |_| self.invalid("the private and public halves do not match");
        let encoding = match &self.private_jwk {
            PrivateJwk::Ec { x, y, d, .. } => {
                let point = [vec![0x04], decode(x)?, decode(y)?].concat();
                let pair = EcdsaKeyPair::from_private_key_and_public_key(
                    &ECDSA_P256_SHA256_FIXED_SIGNING,
                    &decode(d)?,
                    &point,
                )
                .map_err(mismatch)?;
                let pkcs8 = pair.to_pkcs8v1().map_err(|_| self.invalid("cannot be encoded as PKCS #8"))?;
                EncodingKey::from_ec_der(pkcs8.as_ref())
            }
            PrivateJwk::Rsa { n, e, d, p, q, dp, dq, qi } => {
                let parts = [n, e, d, p, q, dp, dq, qi].map(|part| decode(part));
                let [n, e, d, p, q, dp, dq, qi] = parts;
                let (n, e, d, p, q, dp, dq, qi) = (n?, e?, d?, p?, q?, dp?, dq?, qi?);
                fn uint(bytes: &[u8]) -> Result<UintRef<'_>, ()> {
                    UintRef::new(bytes).map_err(|_| ())
                }
                let key = || -> Result<Vec<u8>, ()> {
                    let key = pkcs1::RsaPrivateKey {
                        modulus: uint(&n)?,
                        public_exponent: uint(&e)?,
                        private_exponent: uint(&d)?,
                        prime1: uint(&p)?,
                        prime2: uint(&q)?,
                        exponent1: uint(&dp)?,
                        exponent2: uint(&dq)?,
                        coefficient: uint(&qi)?,
                        other_prime_infos: None,
                    };
                    key.to_der().map_err(|_| ())
                };
                let der = key().map_err(|()| self.invalid("not an RSA key"))?;
                // aws-lc-rs checks that the parts make one key.
                let pair = RsaKeyPair::from_der(&der).map_err(mismatch)?;
                if pair.public_modulus_len() * 8 < RSA_BITS {
                    return Err(self.invalid("an RSA key shorter than 2048 bits"));
                }
                EncodingKey::from_rsa_der(&der)
            }
        };
        Ok(Signer { kid: self.kid.clone(), algorithm: self.algorithm(), encoding })
    }

    /// The public JWK, as published: `kid`, `alg`, `use: sig`, no private part.
    pub fn public_jwk(&self) -> Jwk {
        let key_algorithm = match self.algorithm() {
            SigningAlgorithm::Es256 => KeyAlgorithm::ES256,
            SigningAlgorithm::Rs256 => KeyAlgorithm::RS256,
        };
        Jwk {
            common: CommonParameters {
                public_key_use: Some(PublicKeyUse::Signature),
                key_algorithm: Some(key_algorithm),
                key_id: Some(self.kid.clone()),
                ..CommonParameters::default()
            },
            algorithm: self.private_jwk.public(),
        }
    }

    /// Whether tokens it signed may still be alive, or cached JWKS copies may still be needed.
    fn needed(&self, now: i64, access_ttl: Duration, delay: Duration) -> bool {
        self.retired_at.is_none_or(|retired| now < retired + access_ttl.as_secs() as i64 + delay.as_secs() as i64)
    }
}

/// The RFC 7638 SHA-256 thumbprint of a key's public half.
pub fn thumbprint(jwk: &PrivateJwk) -> String {
    let public = Jwk { common: CommonParameters::default(), algorithm: jwk.public() };
    public.thumbprint(ThumbprintHash::SHA256).expect("EC and RSA keys have a thumbprint")
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRing {
    pub keys: Vec<RingKey>,
}

impl KeyRing {
    /// The ring stored in the signing secret; every key must be usable.
    pub fn parse(json: &str) -> Result<Self, KeyRingError> {
        // Not serde's message: it may quote a value, and a value here can be a private key.
        let ring: Self = serde_json::from_str(json).map_err(|e| {
            KeyRingError::Malformed(format!("{:?} error at line {} column {}", e.classify(), e.line(), e.column()))
        })?;
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
    pub fn signing_key(
        &self,
        now: i64,
        delay: Duration,
        algorithm: SigningAlgorithm,
    ) -> Result<&RingKey, KeyRingError> {
        let published_by = now - delay.as_secs() as i64;
        let keys = || self.keys.iter().filter(|key| key.algorithm() == algorithm);
        keys()
            .filter(|key| key.published_at <= published_by)
            .max_by_key(|key| key.published_at)
            .or_else(|| keys().min_by_key(|key| key.published_at))
            .ok_or(KeyRingError::Empty)
    }

    /// The ring with `new` added: every key that had no successor stops signing once `new` may
    /// sign (`delay` after it is published), and keys no longer needed are dropped.
    ///
    /// The key that signs now is always kept, and signs until `new` may: after an emergency
    /// removal it can be one that had already stopped.
    pub fn rotated(&self, new: RingKey, now: i64, access_ttl: Duration, delay: Duration) -> Self {
        let takes_over = new.published_at + delay.as_secs() as i64;
        let signing = self.signing_key(now, delay, new.algorithm()).ok().map(|key| key.kid.clone());
        let mut keys: Vec<RingKey> = self
            .keys
            .iter()
            .filter(|key| key.needed(now, access_ttl, delay) || signing.as_ref() == Some(&key.kid))
            .cloned()
            .map(|mut key| {
                if signing.as_ref() == Some(&key.kid) && key.retired_at.is_some_and(|retired| retired <= now) {
                    key.retired_at = Some(takes_over);
                }
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
    const ES: SigningAlgorithm = SigningAlgorithm::Es256;
    const TTL: Duration = Duration::from_secs(900);

    #[test]
    fn given_a_new_key_then_its_kid_is_the_rfc_7638_thumbprint_of_its_public_half() {
        // GIVEN a generated key
        let key = RingKey::generate(ES, 0);
        // WHEN the thumbprint is computed by hand (members in lexicographic order, no spaces)
        let PrivateJwk::Ec { x, y, .. } = &key.private_jwk else { panic!("an EC key") };
        let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
        let expected = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
        // THEN it is the kid
        assert_eq!(key.kid, expected);
        assert_eq!(key.kid.len(), 43);
    }

    #[test]
    fn given_a_key_of_either_algorithm_when_signing_then_its_published_jwk_alone_verifies_the_token() {
        for algorithm in [ES, SigningAlgorithm::Rs256] {
            // GIVEN a key and its JWKS
            let key = RingKey::generate(algorithm, 0);
            let ring = KeyRing { keys: vec![key.clone()] };
            let jwks = serde_json::to_value(ring.jwks()).unwrap();
            // WHEN a token is signed with it
            let signer = key.signer().unwrap();
            assert_eq!(signer.algorithm, algorithm);
            let mut header = Header::new(algorithm.jose());
            header.kid = Some(signer.kid.clone());
            let token = jsonwebtoken::encode(&header, &serde_json::json!({"sub": "x"}), &signer.encoding).unwrap();
            // THEN the JWKS, read as any verifier reads it, verifies it; and it holds no private part
            let set: JwkSet = serde_json::from_value(jwks.clone()).unwrap();
            let public = set.find(&key.kid).expect("the kid is published");
            let mut validation = Validation::new(algorithm.jose());
            validation.required_spec_claims.clear();
            validation.validate_exp = false;
            jsonwebtoken::decode::<serde_json::Value>(&token, &DecodingKey::from_jwk(public).unwrap(), &validation)
                .expect("verifies");
            assert_eq!(jwks["keys"][0]["alg"], algorithm.name());
            assert_eq!(serde_json::to_value(algorithm.jose()).unwrap(), algorithm.name());
            assert_eq!(jwks["keys"][0]["use"], "sig");
            for private in ["d", "p", "q", "dp", "dq", "qi"] {
                assert!(jwks["keys"][0].get(private).is_none(), "{jwks}");
            }
            assert!(!format!("{key:?}").contains(key.private_jwk.d()), "Debug shows the private part");
            assert_eq!(KeyRing::parse(&ring.to_json()).unwrap(), ring, "the ring round-trips");
        }
    }

    #[test]
    fn given_an_rsa_key_then_it_is_2048_bits_and_its_kid_is_the_thumbprint_of_e_kty_n() {
        let key = RingKey::generate(SigningAlgorithm::Rs256, 0);
        let PrivateJwk::Rsa { n, e, .. } = &key.private_jwk else { panic!("an RSA key") };
        assert_eq!(URL_SAFE_NO_PAD.decode(n).unwrap().len(), 256);
        let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
        assert_eq!(key.kid, URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes())));
    }

    #[test]
    fn given_a_tampered_key_when_loading_the_ring_then_it_is_refused() {
        for algorithm in [ES, SigningAlgorithm::Rs256] {
            let key = RingKey::generate(algorithm, 0);
            let other = RingKey::generate(algorithm, 0);
            let mut wrong_kid = key.clone();
            wrong_kid.kid = other.kid.clone();
            let mut mismatched = key.clone();
            match (&mut mismatched.private_jwk, &other.private_jwk) {
                (PrivateJwk::Ec { d, .. }, PrivateJwk::Ec { d: theirs, .. }) => d.clone_from(theirs),
                (PrivateJwk::Rsa { d, .. }, PrivateJwk::Rsa { d: theirs, .. }) => d.clone_from(theirs),
                _ => unreachable!(),
            }
            for (bad, reason) in [
                (wrong_kid, "the kid is not the key's RFC 7638 thumbprint"),
                (mismatched, "the private and public halves do not match"),
            ] {
                let json = KeyRing { keys: vec![bad.clone()] }.to_json();
                assert_eq!(
                    KeyRing::parse(&json),
                    Err(KeyRingError::InvalidKey { kid: bad.kid, reason }),
                    "{algorithm:?}"
                );
            }
        }
        let mut p384 = RingKey::generate(ES, 0);
        if let PrivateJwk::Ec { crv, .. } = &mut p384.private_jwk {
            *crv = "P-384".into();
        }
        let json = KeyRing { keys: vec![p384.clone()] }.to_json();
        assert_eq!(KeyRing::parse(&json), Err(KeyRingError::InvalidKey { kid: p384.kid, reason: "not a P-256 key" }));
        let symmetric = r#"{"keys":[{"kid":"x","published_at":0,"private_jwk":{"kty":"oct","k":"c2VjcmV0"}}]}"#;
        assert!(matches!(KeyRing::parse(symmetric), Err(KeyRingError::Malformed(_))));
        assert!(matches!(KeyRing::parse("{}"), Err(KeyRingError::Malformed(_))));
        assert_eq!(KeyRing::default().signing_key(0, HOUR, ES).err(), Some(KeyRingError::Empty));
    }

    #[test]
    fn given_keys_of_both_algorithms_then_only_the_configured_one_signs() {
        // GIVEN an ES256 key published long ago and an RS256 key just added (an algorithm switch)
        let (es, rs) = (RingKey::generate(ES, 0), RingKey::generate(SigningAlgorithm::Rs256, 20_000));
        let ring = KeyRing { keys: vec![es.clone(), rs.clone()] };
        // THEN each algorithm's signer is its own key, the new RSA key at once (the only one)
        assert_eq!(ring.signing_key(20_000, HOUR, ES).unwrap().kid, es.kid);
        assert_eq!(ring.signing_key(20_000, HOUR, SigningAlgorithm::Rs256).unwrap().kid, rs.kid);
        assert_eq!(
            ring.without(&rs.kid).signing_key(0, HOUR, SigningAlgorithm::Rs256).err(),
            Some(KeyRingError::Empty)
        );
    }

    #[test]
    fn given_a_ring_round_tripped_through_json_then_it_is_unchanged() {
        let ring = KeyRing { keys: vec![RingKey::generate(ES, 5)] }.rotated(RingKey::generate(ES, 10), 10, TTL, HOUR);
        assert_eq!(KeyRing::parse(&ring.to_json()).unwrap(), ring);
    }

    #[test]
    fn given_two_rotations_in_quick_succession_then_no_key_signs_before_it_was_published_for_max_age() {
        // GIVEN a first key at t=0, then rotations at t=100 and t=200 (well within an hour)
        let a = RingKey::generate(ES, 0);
        let first = KeyRing { keys: vec![a.clone()] };
        let b = RingKey::generate(ES, 100);
        let second = first.rotated(b.clone(), 100, TTL, HOUR);
        let c = RingKey::generate(ES, 200);
        let third = second.rotated(c.clone(), 200, TTL, HOUR);
        let max_age = HOUR.as_secs() as i64;
        // THEN the first key signs at once and until b has been published for an hour
        assert_eq!(first.signing_key(0, HOUR, ES).unwrap().kid, a.kid);
        assert_eq!(third.signing_key(100 + max_age - 1, HOUR, ES).unwrap().kid, a.kid);
        assert_eq!(third.signing_key(100 + max_age, HOUR, ES).unwrap().kid, b.kid);
        assert_eq!(third.signing_key(200 + max_age, HOUR, ES).unwrap().kid, c.kid);
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
        let a = RingKey::generate(ES, 0);
        let ring = KeyRing { keys: vec![a.clone()] }.rotated(RingKey::generate(ES, 100), 100, TTL, HOUR);
        let gone_at = 100 + (HOUR + TTL + HOUR).as_secs() as i64;
        // WHEN the next rotation happens just before, then at, the end of its need
        let kept = ring.rotated(RingKey::generate(ES, gone_at - 1), gone_at - 1, TTL, HOUR);
        let dropped = ring.rotated(RingKey::generate(ES, gone_at), gone_at, TTL, HOUR);
        // THEN it is kept, then dropped (from the ring and so from the JWKS)
        assert!(kept.find(&a.kid).is_some());
        assert!(dropped.find(&a.kid).is_none());
        assert!(dropped.jwks().find(&a.kid).is_none());
        assert_eq!(dropped.keys.len(), 2);
    }

    #[test]
    fn given_the_signing_key_removed_in_an_emergency_then_signers_move_at_once_to_the_newest_published() {
        // GIVEN a ring where a signs, b is published and eligible, c is brand new
        let (a, b, c) = (RingKey::generate(ES, 0), RingKey::generate(ES, 10), RingKey::generate(ES, 20_000));
        let ring = KeyRing { keys: vec![a.clone(), b.clone(), c.clone()] };
        assert_eq!(ring.signing_key(20_000, HOUR, ES).unwrap().kid, b.kid);
        // WHEN b is removed
        let ring = ring.without(&b.kid);
        // THEN a, the newest key published for max-age, signs; c only when it has been
        assert_eq!(ring.signing_key(20_000, HOUR, ES).unwrap().kid, a.kid);
        assert!(ring.jwks().find(&b.kid).is_none());
        // AND with only c left, c signs at once
        assert_eq!(ring.without(&a.kid).signing_key(20_000, HOUR, ES).unwrap().kid, c.kid);
    }

    #[test]
    fn given_an_emergency_removal_mid_cycle_when_rotating_then_the_key_signing_again_is_kept_until_the_new_one_may_sign(
    ) {
        // GIVEN b, long retired, signing again because c (its successor) was removed
        let (b, c) = (RingKey::generate(ES, 0), RingKey::generate(ES, 100));
        let ring = KeyRing { keys: vec![b.clone()] }.rotated(c.clone(), 100, TTL, HOUR).without(&c.kid);
        let now = 100_000;
        assert_eq!(ring.signing_key(now, HOUR, ES).unwrap().kid, b.kid);
        // WHEN the ring rotates (which would drop a key retired that long ago)
        let d = RingKey::generate(ES, now);
        let rotated = ring.rotated(d.clone(), now, TTL, HOUR);
        // THEN b stays, signing until d may, and d waits its delay
        assert_eq!(rotated.find(&b.kid).unwrap().retired_at, Some(now + HOUR.as_secs() as i64));
        assert_eq!(rotated.signing_key(now + 1, HOUR, ES).unwrap().kid, b.kid);
        assert_eq!(rotated.signing_key(now + HOUR.as_secs() as i64, HOUR, ES).unwrap().kid, d.kid);
    }

    #[test]
    fn given_a_ring_whose_value_is_not_a_ring_then_the_error_quotes_none_of_it() {
        let secret = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC";
        let json = format!(r#"{{"keys":[{{"kid":"x","published_at":0,"private_jwk":"{secret}"}}]}}"#);
        let error = KeyRing::parse(&json).unwrap_err().to_string();
        assert!(!error.contains(secret), "{error}");
    }
}
