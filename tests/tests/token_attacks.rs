//! One test per attack on access tokens: each is answered `401` with
//! `WWW-Authenticate: Bearer error="invalid_token"`, and never reaches the user's data.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use shared::keyring::{KeyRing, PrivateJwk, RingKey, SigningAlgorithm};
use shared::testing::TEST_ISSUER;
use tests::{assert_problem, parts, Stack, PASSWORD};

/// A registered user, a genuine access token and the material an attacker would try to abuse
/// (and, to build control tokens, the real signing key, read from the private ring).
struct Target {
    stack: Stack,
    user_id: String,
    genuine: String,
    refresh: String,
    key: RingKey,
    kid: String,
    /// The published JWKS, as any client can fetch it.
    jwks: String,
}

async fn target() -> Target {
    let stack = Stack::new().await;
    let user = stack.register_user("ada@example.com", PASSWORD, "Ada").await;
    let tokens = stack.login_user("ada@example.com", PASSWORD).await;
    let ring = KeyRing::parse(&stack.current_secret("KeyRingSecret").await).unwrap();
    let key = ring.keys[0].clone();
    Target {
        user_id: user["id"].as_str().unwrap().to_owned(),
        genuine: tokens["access_token"].as_str().unwrap().to_owned(),
        refresh: tokens["refresh_token"].as_str().unwrap().to_owned(),
        kid: key.kid.clone(),
        key,
        jwks: stack.current_secret("JwksSecret").await,
        stack,
    }
}

impl Target {
    fn claims(&self) -> Value {
        let now = shared::now_epoch();
        json!({"iss": TEST_ISSUER, "aud": "serverless-auth", "sub": self.user_id, "iat": now, "exp": now + 600, "jti": "attack"})
    }

    fn header(&self) -> Header {
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("at+jwt".into());
        header.kid = Some(self.kid.clone());
        header
    }

    /// Signs with the real key: only the mutated part can make it invalid.
    fn sign(&self, header: &Header, claims: &Value) -> String {
        jsonwebtoken::encode(header, claims, &self.key.signer().unwrap().encoding).unwrap()
    }

    /// Signs with HMAC-SHA-256 under `key`, claiming `alg: HS256` and our kid.
    fn hmac(&self, key: &[u8]) -> String {
        let mut header = self.header();
        header.alg = Algorithm::HS256;
        jsonwebtoken::encode(&header, &self.claims(), &EncodingKey::from_secret(key)).unwrap()
    }

    fn with_claims(&self, edit: impl FnOnce(&mut serde_json::Map<String, Value>)) -> String {
        let mut claims = self.claims();
        edit(claims.as_object_mut().unwrap());
        self.sign(&self.header(), &claims)
    }

    fn with_header(&self, edit: impl FnOnce(&mut Header)) -> String {
        let mut header = self.header();
        edit(&mut header);
        self.sign(&header, &self.claims())
    }

    async fn assert_refused(&self, token: &str) {
        let (headers, _) = assert_problem(self.stack.get_user("me", Some(token)).await, 401);
        assert_eq!(headers["www-authenticate"], r#"Bearer error="invalid_token""#, "token: {token}");
    }
}

fn raw_token(header: &Value, claims: &Value, signature: &[u8]) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(claims.to_string()),
        URL_SAFE_NO_PAD.encode(signature)
    )
}

#[tokio::test]
async fn the_genuine_token_and_a_fresh_forgery_with_the_real_key_pass() {
    // Control: the forging helpers produce acceptable tokens, so every refusal below is caused
    // by the one thing each attack changes.
    let t = target().await;
    assert_eq!(parts(t.stack.get_user("me", Some(&t.genuine)).await).0, 200);
    assert_eq!(parts(t.stack.get_user("me", Some(&t.sign(&t.header(), &t.claims()))).await).0, 200);
}

#[tokio::test]
async fn alg_none_is_refused() {
    let t = target().await;
    let header = json!({"alg": "none", "typ": "at+jwt", "kid": t.kid});
    t.assert_refused(&raw_token(&header, &t.claims(), b"")).await;
    t.assert_refused(raw_token(&header, &t.claims(), b"").trim_end_matches('.')).await;
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_or_another_public_value_is_refused() {
    // Algorithm confusion: a verifier that took `alg` from the token would check an HMAC made
    // with the published key as its secret. Every published form of it, and other public values.
    let t = target().await;
    let jwk = t.key.public_jwk();
    let jwk_json = serde_json::to_string(&jwk).unwrap();
    let PrivateJwk::Ec { x, y, .. } = &t.key.private_jwk else { panic!("an ES256 key") };
    let point = [vec![4u8], URL_SAFE_NO_PAD.decode(x).unwrap(), URL_SAFE_NO_PAD.decode(y).unwrap()].concat();
    let public_values: [&[u8]; 8] = [
        t.jwks.as_bytes(),
        jwk_json.as_bytes(),
        &point,
        x.as_bytes(),
        b"",
        t.kid.as_bytes(),
        TEST_ISSUER.as_bytes(),
        t.user_id.as_bytes(),
    ];
    for key in public_values {
        t.assert_refused(&t.hmac(key)).await;
    }
}

#[tokio::test]
async fn rs_es384_and_other_algorithm_claims_are_refused() {
    let t = target().await;
    for alg in ["RS256", "ES384", "PS256", "EdDSA", "HS256", "HS384", "HS512"] {
        let header = json!({"alg": alg, "typ": "at+jwt", "kid": t.kid});
        t.assert_refused(&raw_token(&header, &t.claims(), &[7u8; 64])).await;
    }
    // The real ES256 signature under another algorithm's name.
    let genuine = t.sign(&t.header(), &t.claims());
    let signature = genuine.rsplit('.').next().unwrap();
    let header = json!({"alg": "ES384", "typ": "at+jwt", "kid": t.kid});
    let payload = genuine.split('.').nth(1).unwrap();
    t.assert_refused(&format!("{}.{payload}.{signature}", URL_SAFE_NO_PAD.encode(header.to_string()))).await;
}

#[tokio::test]
async fn a_key_embedded_in_the_header_is_never_used() {
    // GIVEN an attacker's own key, offered in the header (`jwk`, RFC 7515 §4.1.3) and signing
    let t = target().await;
    let attacker = RingKey::generate(SigningAlgorithm::Es256, 0);
    let theirs = attacker.signer().unwrap().encoding;
    let mut header = t.header();
    header.jwk = Some(attacker.public_jwk());
    // WHEN it names our kid, its own, or none: THEN each is refused
    for kid in [Some(t.kid.clone()), Some(attacker.kid.clone()), None] {
        header.kid = kid;
        t.assert_refused(&jsonwebtoken::encode(&header, &t.claims(), &theirs).unwrap()).await;
    }
    // AND a `jku` pointing elsewhere changes nothing either
    let mut header = t.header();
    header.jku = Some("https://attacker.example/jwks.json".into());
    header.kid = Some(attacker.kid.clone());
    t.assert_refused(&jsonwebtoken::encode(&header, &t.claims(), &theirs).unwrap()).await;
}

#[tokio::test]
async fn an_unknown_or_missing_kid_is_refused() {
    let t = target().await;
    t.assert_refused(&t.with_header(|h| h.kid = Some("00000000-0000-0000-0000-000000000000".into()))).await;
    t.assert_refused(&t.with_header(|h| h.kid = None)).await;
}

#[tokio::test]
async fn an_expired_token_is_refused() {
    let t = target().await;
    let now = shared::now_epoch();
    t.assert_refused(&t.with_claims(|c| {
        c.insert("iat".into(), (now - 3600).into());
        c.insert("exp".into(), (now - 120).into());
    }))
    .await;
}

#[tokio::test]
async fn nbf_or_iat_in_the_future_beyond_the_leeway_is_refused() {
    let t = target().await;
    let now = shared::now_epoch();
    t.assert_refused(&t.with_claims(|c| {
        c.insert("nbf".into(), (now + 300).into());
    }))
    .await;
    t.assert_refused(&t.with_claims(|c| {
        c.insert("iat".into(), (now + 300).into());
    }))
    .await;
}

#[tokio::test]
async fn wrong_or_missing_iss_aud_sub_exp_are_refused() {
    let t = target().await;
    for (claim, wrong) in [("iss", json!("https://evil.example")), ("aud", json!("another-api")), ("sub", json!(""))] {
        t.assert_refused(&t.with_claims(|c| {
            c.insert(claim.into(), wrong.clone());
        }))
        .await;
    }
    for claim in ["iss", "aud", "sub", "exp"] {
        t.assert_refused(&t.with_claims(|c| {
            c.remove(claim);
        }))
        .await;
    }
}

#[tokio::test]
async fn a_typ_other_than_at_jwt_is_refused() {
    let t = target().await;
    t.assert_refused(&t.with_header(|h| h.typ = Some("JWT".into()))).await;
    t.assert_refused(&t.with_header(|h| h.typ = None)).await;
}

#[tokio::test]
async fn a_refresh_token_is_not_an_access_token_and_vice_versa() {
    let t = target().await;
    t.assert_refused(&t.refresh).await;
    assert_problem(t.stack.refresh_with(&t.genuine).await, 401);
    // Neither attempt spent the real refresh token.
    assert_eq!(parts(t.stack.refresh_with(&t.refresh).await).0, 200);
}

#[tokio::test]
async fn signature_bit_flips_are_refused() {
    let t = target().await;
    let (signed, signature) = t.genuine.rsplit_once('.').unwrap();
    let mut bytes = URL_SAFE_NO_PAD.decode(signature).unwrap();
    for bit in [0, 7, 100, 255] {
        bytes[bit / 8] ^= 1 << (bit % 8);
        t.assert_refused(&format!("{signed}.{}", URL_SAFE_NO_PAD.encode(&bytes))).await;
        bytes[bit / 8] ^= 1 << (bit % 8);
    }
    // Flipping a bit of the payload breaks the signature too.
    let (header, rest) = signed.split_once('.').unwrap();
    let mut payload = URL_SAFE_NO_PAD.decode(rest).unwrap();
    payload[3] ^= 1;
    t.assert_refused(&format!("{header}.{}.{signature}", URL_SAFE_NO_PAD.encode(&payload))).await;
}

#[tokio::test]
async fn tokens_over_8_kib_are_refused() {
    let t = target().await;
    let huge = t.with_claims(|c| {
        c.insert("pad".into(), "x".repeat(9 * 1024).into());
    });
    assert!(huge.len() > 8 * 1024);
    t.assert_refused(&huge).await;
}

#[tokio::test]
async fn a_token_whose_key_is_no_longer_published_is_refused() {
    // GIVEN a token, then a rotation, then its key taken out of the ring and the JWKS
    let stack = Stack::with_env(&[("KEY_CACHE_TTL_SECONDS", "0")]).await;
    stack.register_user("ada@example.com", PASSWORD, "Ada").await;
    let old = stack.login_user("ada@example.com", PASSWORD).await["access_token"].as_str().unwrap().to_owned();
    stack.rotate(shared::now_epoch()).await;
    let ring = KeyRing::parse(&stack.current_secret("KeyRingSecret").await).unwrap();
    let old_kid = jsonwebtoken::decode_header(&old).unwrap().kid.unwrap();
    let left = ring.without(&old_kid);
    assert_eq!(left.keys.len(), 1);
    for (id, value) in [("KeyRingSecret", left.to_json()), ("JwksSecret", serde_json::to_string(&left.jwks()).unwrap())]
    {
        stack.put_secret(id, &value).await;
    }
    // THEN it is refused
    let (headers, _) = assert_problem(stack.get_user("me", Some(&old)).await, 401);
    assert_eq!(headers["www-authenticate"], r#"Bearer error="invalid_token""#);
}

#[tokio::test]
async fn a_token_of_a_deleted_user_is_refused() {
    let t = target().await;
    let key = aws_sdk_dynamodb::types::AttributeValue::S(format!("USER#{}", t.user_id));
    t.stack.dynamodb.delete_item().table_name(&t.stack.table).key("pk", key).send().await.unwrap();
    t.assert_refused(&t.genuine).await;
}

#[tokio::test]
async fn an_empty_subject_is_refused() {
    let t = target().await;
    t.assert_refused(&t.with_claims(|c| {
        c.insert("sub".into(), "".into());
    }))
    .await;
}

#[tokio::test]
async fn a_foreign_algorithm_is_refused_before_any_key_is_looked_up() {
    // An unknown kid would make the function read Secrets Manager again (at most every 5 s);
    // a token whose algorithm is not ours must not even get that far.
    let t = target().await;
    t.stack.secrets_calls.take();
    for alg in ["none", "RS256", "ES384", "HS256", "HS512"] {
        let header = json!({"alg": alg, "typ": "at+jwt", "kid": "00000000-0000-0000-0000-000000000000"});
        t.assert_refused(&raw_token(&header, &t.claims(), b"sig")).await;
    }
    assert_eq!(t.stack.secrets_calls.take(), 0, "no Secrets Manager call for a foreign algorithm");
}

#[tokio::test]
async fn unknown_kids_make_at_most_one_secrets_manager_read_every_five_seconds() {
    // GIVEN a warm get-user (its key cache fresh)
    let t = target().await;
    assert_eq!(parts(t.stack.get_user("me", Some(&t.genuine)).await).0, 200);
    t.stack.secrets_calls.take();
    let forged = |i: usize| t.with_header(|h| h.kid = Some(format!("00000000-0000-0000-0000-{i:012}")));
    // WHEN a token with a made-up kid arrives, then a flood of them
    t.assert_refused(&forged(0)).await;
    let first = t.stack.secrets_calls.take();
    for i in 1..20 {
        t.assert_refused(&forged(i)).await;
    }
    // THEN the first looked for a rotation (one read of the JWKS), and the flood within the next
    // 5 s made no call at all
    assert_eq!(first, 1, "Secrets Manager calls for the first unknown kid");
    assert_eq!(t.stack.secrets_calls.take(), 0, "calls for 19 more unknown kids within 5 s");
    assert_eq!(parts(t.stack.get_user("me", Some(&t.genuine)).await).0, 200);
}

#[tokio::test]
async fn with_rs256_configured_tokens_are_rs256_and_es256_or_hmac_with_the_public_key_are_refused() {
    // GIVEN a stack configured for RS256, rotated (its first key is RSA) and a user's token
    let stack = Stack::with_env(&[("SIGNING_ALGORITHM", "RS256")]).await;
    let user = stack.register_user("ada@example.com", PASSWORD, "Ada").await;
    let access = stack.login_user("ada@example.com", PASSWORD).await["access_token"].as_str().unwrap().to_owned();
    let key = stack.signing_key().await;
    assert_eq!(key.algorithm(), SigningAlgorithm::Rs256);
    assert_eq!(jsonwebtoken::decode_header(&access).unwrap().alg, Algorithm::RS256);
    assert_eq!(parts(stack.get_user("me", Some(&access)).await).0, 200);
    let (_, _, discovery) = parts(stack.send(&tests::event_json("openid-configuration.json")).await);
    assert_eq!(discovery["id_token_signing_alg_values_supported"], json!(["RS256"]));

    // WHEN tokens come signed otherwise: ES256 under our kid and under its own; HS256 keyed with
    // the published RSA key; THEN each is refused
    let now = shared::now_epoch();
    let claims = json!({"iss": TEST_ISSUER, "aud": "serverless-auth", "sub": user["id"], "iat": now, "exp": now + 600, "jti": "x"});
    let ec = RingKey::generate(SigningAlgorithm::Es256, 0);
    let mut forged = Vec::new();
    for kid in [key.kid.clone(), ec.kid.clone()] {
        let mut header = Header::new(Algorithm::ES256);
        header.typ = Some("at+jwt".into());
        header.kid = Some(kid);
        forged.push(jsonwebtoken::encode(&header, &claims, &ec.signer().unwrap().encoding).unwrap());
    }
    let mut header = Header::new(Algorithm::HS256);
    header.typ = Some("at+jwt".into());
    header.kid = Some(key.kid.clone());
    let public = serde_json::to_vec(&key.public_jwk()).unwrap();
    forged.push(jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&public)).unwrap());
    for token in forged {
        let (headers, _) = assert_problem(stack.get_user("me", Some(&token)).await, 401);
        assert_eq!(headers["www-authenticate"], r#"Bearer error="invalid_token""#);
    }
    // AND the same claims signed with the stack's RSA key pass: only the algorithm was wrong
    assert_eq!(parts(stack.get_user("me", Some(&stack.sign(&claims).await)).await).0, 200);
}
