//! One test per attack on access tokens: each is answered `401` with
//! `WWW-Authenticate: Bearer error="invalid_token"`, and never reaches the user's data.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tests::{assert_problem, parts, Stack, PASSWORD};

/// A registered user, a genuine access token and the material an attacker would try to abuse.
struct Target {
    stack: Stack,
    user_id: String,
    genuine: String,
    refresh: String,
    key: Vec<u8>,
    kid: String,
}

async fn target() -> Target {
    let stack = Stack::new().await;
    let user = stack.register_user("ada@example.com", PASSWORD, "Ada").await;
    let tokens = stack.login_user("ada@example.com", PASSWORD).await;
    let secret = stack.secrets.get_secret_value().secret_id(&stack.secret_id).send().await.unwrap();
    Target {
        user_id: user["id"].as_str().unwrap().to_owned(),
        genuine: tokens["access_token"].as_str().unwrap().to_owned(),
        refresh: tokens["refresh_token"].as_str().unwrap().to_owned(),
        key: secret.secret_string().unwrap().as_bytes().to_vec(),
        kid: secret.version_id().unwrap().to_owned(),
        stack,
    }
}

impl Target {
    fn claims(&self) -> Value {
        let now = shared::now_epoch();
        json!({"iss": "serverless-auth", "aud": "serverless-auth", "sub": self.user_id, "iat": now, "exp": now + 600, "jti": "attack"})
    }

    fn header(&self) -> Header {
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some("at+jwt".into());
        header.kid = Some(self.kid.clone());
        header
    }

    /// Signs with the real key: only the mutated part can make it invalid.
    fn sign(&self, header: &Header, claims: &Value) -> String {
        jsonwebtoken::encode(header, claims, &EncodingKey::from_secret(&self.key)).unwrap()
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
async fn hs256_signed_with_a_public_value_or_an_empty_key_is_refused() {
    let t = target().await;
    for key in [b"".as_slice(), t.kid.as_bytes(), b"serverless-auth", t.user_id.as_bytes()] {
        let token = jsonwebtoken::encode(&t.header(), &t.claims(), &EncodingKey::from_secret(key)).unwrap();
        t.assert_refused(&token).await;
    }
}

#[tokio::test]
async fn rs_es_and_other_algorithm_claims_are_refused() {
    let t = target().await;
    for alg in ["RS256", "ES256", "PS256", "EdDSA", "HS384", "HS512"] {
        let header = json!({"alg": alg, "typ": "at+jwt", "kid": t.kid});
        t.assert_refused(&raw_token(&header, &t.claims(), &[7u8; 64])).await;
    }
    let hs512 = t.with_header(|h| h.alg = Algorithm::HS512);
    t.assert_refused(&hs512).await;
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
async fn a_token_signed_with_a_key_rotated_out_beyond_awsprevious_is_refused() {
    let stack = Stack::with_env(&[("KEY_CACHE_TTL_SECONDS", "0")]).await;
    stack.register_user("ada@example.com", PASSWORD, "Ada").await;
    let old = stack.login_user("ada@example.com", PASSWORD).await["access_token"].as_str().unwrap().to_owned();
    for i in 0..2 {
        let value = format!("{:0>64}", format!("rotated{i}{}", uuid::Uuid::new_v4().simple()));
        stack.secrets.put_secret_value().secret_id(&stack.secret_id).secret_string(value).send().await.unwrap();
    }
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
    for alg in ["none", "RS256", "ES256", "HS512"] {
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
    // THEN the first looked for a rotation (the versions AWSPREVIOUS and AWSCURRENT name), and
    // the flood within the next 5 s made no call at all
    assert!((1..=3).contains(&first), "{first} Secrets Manager calls for the first unknown kid");
    assert_eq!(t.stack.secrets_calls.take(), 0, "calls for 19 more unknown kids within 5 s");
    assert_eq!(parts(t.stack.get_user("me", Some(&t.genuine)).await).0, 200);
}
