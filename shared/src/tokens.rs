//! Access tokens (short-lived JWTs) and refresh tokens (opaque, single-use, rotated).

use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use jsonwebtoken::{Header, Validation};
use lambda_http::request::RequestContext;
use lambda_http::{Request, RequestExt};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{ConfigError, Issuer, TokenSettings};
use crate::domain::{FamilyId, TokenHash, UserId};
use crate::error::ApiError;
use crate::token_keys::TokenKeys;

/// The JOSE `typ` of access tokens (RFC 9068), which keeps other JWTs from passing as one.
pub const ACCESS_TOKEN_TYPE: &str = "at+jwt";
/// Tokens longer than this are refused before any parsing.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;
/// Tolerated clock skew for `exp`, `nbf` and `iat`.
pub const LEEWAY_SECONDS: u64 = 30;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub aud: String,
    pub sub: UserId,
    pub iat: i64,
    pub exp: i64,
    pub jti: String,
    /// Whether the user's email was verified when the session began (at login). Tokens issued
    /// before the claim existed read as `false`.
    #[serde(default)]
    pub email_verified: bool,
}

/// What `/login` and `/refresh` answer.
#[derive(Serialize)]
pub struct TokenPair {
    pub access_token: String,
    pub token_type: &'static str,
    pub expires_in: u64,
    pub refresh_token: String,
    pub refresh_expires_in: u64,
}

impl Issuer {
    /// The `iss` of tokens issued or verified for `req`: `TOKEN_ISSUER`, or the URL of the API
    /// and stage the request came through (no trailing slash).
    pub fn of(&self, req: &Request) -> Result<String, ApiError> {
        let (region, url_suffix) = match self {
            Issuer::Fixed(url) => return Ok(url.clone()),
            Issuer::ExecuteApi { region, url_suffix } => (region, url_suffix),
        };
        let RequestContext::ApiGatewayV1(context) = req.request_context() else {
            return Err(ApiError::Internal("not an API Gateway REST request".into()));
        };
        // Both come from API Gateway; checked anyway, since they become part of every token.
        let plain = |part: &Option<String>| {
            part.clone()
                .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'))
        };
        match (plain(&context.apiid), plain(&context.stage)) {
            (Some(api), Some(stage)) => Ok(format!("https://{api}.execute-api.{region}.{url_suffix}/{stage}")),
            _ => Err(ApiError::Internal("the request context has no API id or stage".into())),
        }
    }
}

/// Issues and verifies access tokens with the keys from Secrets Manager.
pub struct AccessTokens {
    keys: Arc<TokenKeys>,
    issuer: Issuer,
    settings: TokenSettings,
}

impl AccessTokens {
    /// Fails, naming the variable, when the settings do not say who issues tokens.
    pub fn new(keys: Arc<TokenKeys>, settings: TokenSettings) -> Result<Self, ConfigError> {
        Ok(Self { keys, issuer: settings.issuer()?.clone(), settings })
    }

    pub fn settings(&self) -> &TokenSettings {
        &self.settings
    }

    pub fn keys(&self) -> &TokenKeys {
        &self.keys
    }

    /// The `iss` of tokens issued or verified for `req` (see [`Issuer::of`]).
    pub fn issuer(&self, req: &Request) -> Result<String, ApiError> {
        self.issuer.of(req)
    }

    /// A signed access token from `issuer` for `user_id`, valid for the configured lifetime
    /// from `now`.
    pub async fn issue(
        &self,
        issuer: &str,
        user_id: UserId,
        email_verified: bool,
        now: i64,
    ) -> Result<String, ApiError> {
        let signer = self.keys.signer(now).await?;
        let claims = AccessClaims {
            iss: issuer.to_owned(),
            aud: self.settings.audience.clone(),
            sub: user_id,
            iat: now,
            exp: now + self.settings.access_ttl.as_secs() as i64,
            jti: uuid::Uuid::new_v4().to_string(),
            email_verified,
        };
        let mut header = Header::new(signer.algorithm.jose());
        header.typ = Some(ACCESS_TOKEN_TYPE.to_owned());
        header.kid = Some(signer.kid.clone());
        jsonwebtoken::encode(&header, &claims, &signer.encoding).map_err(|e| ApiError::Internal(e.into()))
    }

    /// Verifies signature, algorithm, `typ`, `kid`, `iss`, `aud`, `exp`, `nbf` and `iat`, all of
    /// `exp`, `iss`, `aud` and `sub` being required, and returns the claims. Only the configured
    /// algorithm and a key of ours named by `kid` are used: no key or algorithm the token brings
    /// (`jwk`, `jku`, `x5u`, `x5c`) is looked at.
    pub async fn verify(&self, issuer: &str, token: &str, now: i64) -> Result<AccessClaims, ApiError> {
        if token.len() > MAX_TOKEN_BYTES {
            return Err(ApiError::InvalidAccessToken("token too long"));
        }
        let header =
            jsonwebtoken::decode_header(token).map_err(|_| ApiError::InvalidAccessToken("malformed header"))?;
        let algorithm = self.keys.algorithm().jose();
        if header.alg != algorithm {
            return Err(ApiError::InvalidAccessToken("unexpected algorithm"));
        }
        if header.typ.as_deref().is_none_or(|typ| !typ.eq_ignore_ascii_case(ACCESS_TOKEN_TYPE)) {
            return Err(ApiError::InvalidAccessToken("not an access token"));
        }
        let kid = header.kid.ok_or(ApiError::InvalidAccessToken("no kid"))?;
        let key = self.keys.verifier(&kid).await?.ok_or(ApiError::InvalidAccessToken("unknown kid"))?;

        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[&self.settings.audience]);
        // `AccessClaims` already requires these (jsonwebtoken deserializes the claims before it
        // checks this list); the list keeps them required should a field ever become optional.
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        let claims = jsonwebtoken::decode::<AccessClaims>(token, &key, &validation)
            .map_err(|e| ApiError::InvalidAccessToken(reason(&e)))?
            .claims;
        if claims.iat > now + LEEWAY_SECONDS as i64 {
            return Err(ApiError::InvalidAccessToken("issued in the future"));
        }
        Ok(claims)
    }
}

fn reason(error: &jsonwebtoken::errors::Error) -> &'static str {
    use jsonwebtoken::errors::ErrorKind;
    match error.kind() {
        ErrorKind::ExpiredSignature => "expired",
        ErrorKind::ImmatureSignature => "not yet valid",
        ErrorKind::InvalidSignature => "bad signature",
        ErrorKind::InvalidIssuer => "wrong issuer",
        ErrorKind::InvalidAudience => "wrong audience",
        // Neither `InvalidAlgorithm` (the header's `alg` is checked before decoding) nor
        // `MissingRequiredClaim` (the claims type requires them first): both are "malformed".
        _ => "malformed",
    }
}

/// What a refresh-token family's name says about it. The name is the session item's key, so a
/// client that changes any of it names a family that does not exist: refresh can trust these
/// values without reading them first, and check them in its one transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Family {
    pub user_id: UserId,
    /// The user's session epoch when the family began. Revoking every family of a user moves the
    /// epoch on the `USER#` item, and refresh requires the family's epoch to be the current one.
    pub epoch: u32,
    /// Whether the email was verified at login: the `email_verified` claim of every access token
    /// the family issues.
    pub email_verified: bool,
    /// The family's absolute end (seconds since the epoch).
    pub expires_at: i64,
    nonce: [u8; 16],
}

const FAMILY_VERSION: u8 = 1;
const FAMILY_BYTES: usize = 1 + 1 + 16 + 4 + 8 + 16;
const SECRET_BYTES: usize = 32;
const REFRESH_TOKEN_BYTES: usize = FAMILY_BYTES + SECRET_BYTES;
/// The length of a refresh token's text (base64url, no padding).
pub const REFRESH_TOKEN_CHARS: usize = (REFRESH_TOKEN_BYTES * 4).div_ceil(3);

impl Family {
    /// A new family of `user_id`'s, with a random nonce.
    pub fn new(user_id: UserId, epoch: u32, email_verified: bool, expires_at: i64) -> Result<Self, ApiError> {
        let mut nonce = [0u8; 16];
        getrandom::getrandom(&mut nonce).map_err(|e| ApiError::Internal(e.into()))?;
        Ok(Self { user_id, epoch, email_verified, expires_at, nonce })
    }

    /// The session item's key part.
    pub fn id(&self) -> FamilyId {
        FamilyId::new(URL_SAFE_NO_PAD.encode(self.to_bytes()))
    }

    fn to_bytes(&self) -> [u8; FAMILY_BYTES] {
        let mut bytes = [0u8; FAMILY_BYTES];
        bytes[0] = FAMILY_VERSION;
        bytes[1] = u8::from(self.email_verified);
        bytes[2..18].copy_from_slice(self.user_id.as_bytes());
        bytes[18..22].copy_from_slice(&self.epoch.to_be_bytes());
        bytes[22..30].copy_from_slice(&self.expires_at.to_be_bytes());
        bytes[30..].copy_from_slice(&self.nonce);
        bytes
    }

    fn from_bytes(bytes: &[u8; FAMILY_BYTES]) -> Option<Self> {
        let email_verified = match (bytes[0], bytes[1]) {
            (FAMILY_VERSION, 0) => false,
            (FAMILY_VERSION, 1) => true,
            _ => return None,
        };
        let expires_at = i64::from_be_bytes(bytes[22..30].try_into().ok()?);
        (expires_at >= 0).then_some(())?;
        Some(Self {
            user_id: UserId::from_bytes(bytes[2..18].try_into().ok()?),
            epoch: u32::from_be_bytes(bytes[18..22].try_into().ok()?),
            email_verified,
            expires_at,
            nonce: bytes[30..].try_into().ok()?,
        })
    }
}

/// A refresh token: its family's name (see [`Family`]) followed by 32 bytes of secret,
/// base64url-encoded. Clients treat it as opaque; the store keeps only its SHA-256, keyed by
/// family, so one conditional write can rotate it.
///
/// A family's first secret is random; each next one is derived from the one before,
/// HMAC-SHA256(k′, family ‖ secret), with a key k′ the clients never see. Only hashes are stored,
/// yet the function that is shown a token can tell what its successor is: so a client that
/// presents the token just replaced (two tabs refreshing at once, a retry after a lost answer)
/// can be given the family's current token again within a short grace window, instead of
/// losing the session. The successor cannot be guessed without k′, and secrets never repeat, so
/// the family and the secret are enough input (no generation counter is needed).
pub struct RefreshToken {
    family: Family,
    secret: [u8; SECRET_BYTES],
}

impl RefreshToken {
    /// The first token of a new family.
    pub fn generate(family: Family) -> Result<Self, ApiError> {
        let mut secret = [0u8; SECRET_BYTES];
        getrandom::getrandom(&mut secret).map_err(|e| ApiError::Internal(e.into()))?;
        Ok(Self { family, secret })
    }

    /// The token that replaces this one in its family, derived with `key` (k′).
    pub fn successor(&self, key: &[u8; 32]) -> Self {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("HMAC takes any key length");
        mac.update(&self.family.to_bytes());
        mac.update(&self.secret);
        Self { family: self.family.clone(), secret: mac.finalize().into_bytes().into() }
    }

    /// Parses a presented token; anything that is not exactly one of ours in shape is `None`.
    pub fn parse(presented: &str) -> Option<Self> {
        if presented.len() != REFRESH_TOKEN_CHARS {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(presented).ok()?;
        let bytes: [u8; REFRESH_TOKEN_BYTES] = bytes.try_into().ok()?;
        let (family, secret) = bytes.split_at(FAMILY_BYTES);
        Some(Self { family: Family::from_bytes(family.try_into().ok()?)?, secret: secret.try_into().ok()? })
    }

    pub fn family(&self) -> &Family {
        &self.family
    }

    /// The stored form: SHA-256 of the whole token. A fast hash is enough for 256 secret bits.
    pub fn hash(&self) -> TokenHash {
        let mut digest = Sha256::new();
        digest.update(self.family.to_bytes());
        digest.update(self.secret);
        TokenHash::new(URL_SAFE_NO_PAD.encode(digest.finalize()))
    }

    /// The string handed to the client.
    pub fn expose(&self) -> SecretString {
        let mut bytes = [0u8; REFRESH_TOKEN_BYTES];
        bytes[..FAMILY_BYTES].copy_from_slice(&self.family.to_bytes());
        bytes[FAMILY_BYTES..].copy_from_slice(&self.secret);
        SecretString::from(URL_SAFE_NO_PAD.encode(bytes))
    }
}

/// Builds the `/login` and `/refresh` response body.
pub fn token_pair(access_token: String, settings: &TokenSettings, refresh: &RefreshToken, now: i64) -> TokenPair {
    TokenPair {
        access_token,
        token_type: "Bearer",
        expires_in: settings.access_ttl.as_secs(),
        refresh_token: refresh.expose().expose_secret().to_owned(),
        refresh_expires_in: (refresh.family().expires_at - now).max(0) as u64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keyring::{KeyRing, RingKey, SigningAlgorithm};
    use crate::token_keys::TokenKeys;
    use jsonwebtoken::{Algorithm, EncodingKey};
    use std::sync::LazyLock;
    use std::time::Duration;

    const ISS: &str = "https://issuer.test";
    const USER: &str = "0d9a4c1e-8f7b-4a6d-9c3e-2b1a0f9e8d7c";
    static KEY: LazyLock<RingKey> = LazyLock::new(|| RingKey::generate(SigningAlgorithm::Es256, 0));

    fn settings() -> TokenSettings {
        let issuer = Issuer::Fixed(ISS.into());
        TokenSettings::new(issuer, "clients".into(), Duration::from_secs(900), Duration::from_secs(604_800))
    }

    fn tokens() -> AccessTokens {
        let keys = TokenKeys::fixed(KeyRing { keys: vec![KEY.clone()] }, Duration::from_secs(3600));
        AccessTokens::new(Arc::new(keys), settings()).unwrap()
    }

    /// The signing key itself: only what a test changes can make a token invalid.
    fn ours() -> EncodingKey {
        KEY.signer().unwrap().encoding
    }

    fn forge(header: &Header, claims: &serde_json::Value, key: &EncodingKey) -> String {
        jsonwebtoken::encode(header, claims, key).unwrap()
    }

    fn header() -> Header {
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("at+jwt".into());
        header.kid = Some(KEY.kid.clone());
        header
    }

    fn claims(now: i64) -> serde_json::Value {
        serde_json::json!({"iss": "https://issuer.test", "aud": "clients", "sub": USER, "iat": now, "exp": now + 60, "jti": "j"})
    }

    #[tokio::test]
    async fn given_an_issued_token_when_verifying_then_claims_round_trip() {
        let now = crate::now_epoch();
        let user = UserId::parse(USER).unwrap();
        let token = tokens().issue(ISS, user, true, now).await.unwrap();
        let claims = tokens().verify(ISS, &token, now).await.unwrap();
        assert_eq!((claims.sub, claims.exp - claims.iat, claims.email_verified), (user, 900, true));
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(
            (header.alg, header.typ.as_deref(), header.kid.as_ref()),
            (Algorithm::ES256, Some("at+jwt"), Some(&KEY.kid))
        );
    }

    #[tokio::test]
    async fn given_tampered_or_incomplete_tokens_when_verifying_then_each_is_invalid_for_its_own_reason() {
        let now = crate::now_epoch();
        let mut cases = Vec::new();
        for missing in ["iss", "aud", "sub", "exp"] {
            let mut c = claims(now);
            c.as_object_mut().unwrap().remove(missing);
            // `AccessClaims` requires all four, and jsonwebtoken deserializes the claims before it
            // checks the required-claims list: the type refuses them first.
            cases.push((format!("missing {missing}"), forge(&header(), &c, &ours()), "malformed"));
        }
        let mut other_alg = header();
        other_alg.alg = Algorithm::HS384;
        let hmac = EncodingKey::from_secret(b"any-secret-any-secret-any-secret-any-secret");
        cases.push(("HS384".into(), forge(&other_alg, &claims(now), &hmac), "unexpected algorithm"));
        // Algorithm confusion: the published public key (its JWK, as a verifier fetches it) as
        // an HMAC secret.
        let mut confused = header();
        confused.alg = Algorithm::HS256;
        let public = serde_json::to_vec(&KEY.public_jwk()).unwrap();
        cases.push((
            "HS256, public key".into(),
            forge(&confused, &claims(now), &EncodingKey::from_secret(&public)),
            "unexpected algorithm",
        ));
        // A key of the attacker's own, embedded in the header, under our kid or its own.
        let attacker = RingKey::generate(SigningAlgorithm::Es256, 0);
        let mut embedded = header();
        embedded.jwk = Some(attacker.public_jwk());
        let theirs = attacker.signer().unwrap().encoding;
        cases.push(("embedded jwk, our kid".into(), forge(&embedded, &claims(now), &theirs), "bad signature"));
        embedded.kid = Some(attacker.kid.clone());
        cases.push(("embedded jwk, its kid".into(), forge(&embedded, &claims(now), &theirs), "unknown kid"));
        let mut wrong_typ = header();
        wrong_typ.typ = Some("JWT".into());
        cases.push(("typ JWT".into(), forge(&wrong_typ, &claims(now), &ours()), "not an access token"));
        let mut no_kid = header();
        no_kid.kid = None;
        cases.push(("no kid".into(), forge(&no_kid, &claims(now), &ours()), "no kid"));
        let mut unknown_kid = header();
        unknown_kid.kid = Some("v1".into());
        cases.push(("unknown kid".into(), forge(&unknown_kid, &claims(now), &ours()), "unknown kid"));
        let other_key = RingKey::generate(SigningAlgorithm::Es256, 0).signer().unwrap().encoding;
        cases.push(("other key".into(), forge(&header(), &claims(now), &other_key), "bad signature"));
        let mut expired = claims(now - 3600);
        expired["iat"] = (now - 3600).into();
        cases.push(("expired".into(), forge(&header(), &expired, &ours()), "expired"));
        let mut not_yet = claims(now);
        not_yet["nbf"] = (now + 600).into();
        cases.push(("nbf in future".into(), forge(&header(), &not_yet, &ours()), "not yet valid"));
        let mut future = claims(now);
        future["iat"] = (now + 600).into();
        cases.push(("iat in future".into(), forge(&header(), &future, &ours()), "issued in the future"));
        let mut wrong_iss = claims(now);
        wrong_iss["iss"] = "https://elsewhere.test".into();
        cases.push(("wrong iss".into(), forge(&header(), &wrong_iss, &ours()), "wrong issuer"));
        let mut wrong_aud = claims(now);
        wrong_aud["aud"] = "someone-else".into();
        cases.push(("wrong aud".into(), forge(&header(), &wrong_aud, &ours()), "wrong audience"));
        let mut empty_sub = claims(now);
        empty_sub["sub"] = "".into();
        cases.push(("empty sub".into(), forge(&header(), &empty_sub, &ours()), "malformed"));
        let mut not_a_user = claims(now);
        not_a_user["sub"] = "user-1".into();
        cases.push(("sub not a user id".into(), forge(&header(), &not_a_user, &ours()), "malformed"));
        let mut sub_number = claims(now);
        sub_number["sub"] = 7.into();
        cases.push(("sub a number".into(), forge(&header(), &sub_number, &ours()), "malformed"));
        cases.push(("garbage".into(), "not.a.jwt".into(), "malformed header"));
        cases.push(("huge".into(), "a".repeat(MAX_TOKEN_BYTES + 1), "token too long"));
        for (name, token, reason) in cases {
            let result = tokens().verify(ISS, &token, now).await;
            assert!(matches!(result, Err(ApiError::InvalidAccessToken(r)) if r == reason), "{name}: {result:?}");
        }
    }

    #[tokio::test]
    async fn given_iat_at_the_leeway_and_one_second_beyond_when_verifying_then_only_the_first_is_accepted() {
        // GIVEN two tokens issued by a clock ahead of ours, by the leeway and by one second more
        let now = crate::now_epoch();
        let ahead = |seconds: i64| {
            let mut c = claims(now);
            c["iat"] = (now + seconds).into();
            forge(&header(), &c, &ours())
        };
        let leeway = LEEWAY_SECONDS as i64;

        // WHEN verified now
        let at_leeway = tokens().verify(ISS, &ahead(leeway), now).await;
        let beyond = tokens().verify(ISS, &ahead(leeway + 1), now).await;

        // THEN the skew the leeway allows passes, one second more is refused
        assert!(at_leeway.is_ok(), "{at_leeway:?}");
        assert!(matches!(beyond, Err(ApiError::InvalidAccessToken("issued in the future"))), "{beyond:?}");
    }

    /// A token that verifies, of exactly `len` bytes: padded with a claim the verifier ignores,
    /// and a `cty` header of 0 to 3 bytes (base64url has no encoding of 4k + 1 characters).
    fn valid_token_of(len: usize, now: i64) -> String {
        for cty in ["", "a", "ab", "abc"] {
            let mut header = header();
            header.cty = (!cty.is_empty()).then(|| cty.to_owned());
            for pad in (len * 3 / 4).saturating_sub(300).. {
                let mut padded = claims(now);
                padded["pad"] = "p".repeat(pad).into();
                let token = forge(&header, &padded, &ours());
                match token.len().cmp(&len) {
                    std::cmp::Ordering::Less => continue,
                    std::cmp::Ordering::Equal => return token,
                    std::cmp::Ordering::Greater => break,
                }
            }
        }
        panic!("no token of {len} bytes");
    }

    #[tokio::test]
    async fn given_valid_tokens_around_8_kib_when_verifying_then_the_limit_is_exactly_8192_bytes() {
        let now = crate::now_epoch();
        let at_limit = valid_token_of(8192, now);
        let over = valid_token_of(8193, now);

        assert_eq!(tokens().verify(ISS, &at_limit, now).await.unwrap().sub.to_string(), USER);
        let refused = tokens().verify(ISS, &over, now).await;
        assert!(matches!(refused, Err(ApiError::InvalidAccessToken("token too long"))), "{refused:?}");
    }

    #[test]
    fn given_a_refresh_token_when_encoded_and_parsed_then_it_round_trips() {
        let user = UserId::generate();
        let family = || Family::new(user, 7, true, 1_900_000_000).unwrap();
        let token = RefreshToken::generate(family()).unwrap();
        let text = token.expose();
        assert_eq!(text.expose_secret().len(), REFRESH_TOKEN_CHARS);
        let parsed = RefreshToken::parse(text.expose_secret()).unwrap();
        assert_eq!(parsed.hash(), token.hash());
        assert_eq!(parsed.family(), token.family());
        assert_eq!((parsed.family().user_id, parsed.family().epoch), (user, 7));
        assert_eq!((parsed.family().email_verified, parsed.family().expires_at), (true, 1_900_000_000));
        let next = token.successor(&[1; 32]);
        assert_eq!(next.family().id(), token.family().id());
        assert_ne!(next.hash(), token.hash());
        assert_eq!(parsed.successor(&[1; 32]).hash(), next.hash(), "successors are derived, not drawn");
        assert_ne!(token.successor(&[2; 32]).hash(), next.hash(), "and depend on the key");
        assert_ne!(RefreshToken::generate(family()).unwrap().family().id(), token.family().id(), "nonces differ");
        assert!(RefreshToken::parse("short").is_none());
        assert!(RefreshToken::parse(&"*".repeat(REFRESH_TOKEN_CHARS)).is_none());
        // A token of the first format (48 bytes, no owner) is not one any more.
        assert!(RefreshToken::parse(&"A".repeat(64)).is_none());
    }

    #[test]
    fn given_a_family_name_with_an_unknown_version_or_flag_when_parsing_then_none() {
        let token = RefreshToken::generate(Family::new(UserId::generate(), 0, false, 1).unwrap()).unwrap();
        let bytes = URL_SAFE_NO_PAD.decode(token.expose().expose_secret()).unwrap();
        for (index, value) in [(0, 2), (1, 2), (1, 0x81), (22, 0x80)] {
            let mut changed = bytes.clone();
            changed[index] = value;
            assert!(RefreshToken::parse(&URL_SAFE_NO_PAD.encode(&changed)).is_none(), "byte {index} = {value}");
        }
    }
}
