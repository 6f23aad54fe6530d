//! A verifier that works as API Gateway's JWT authorizers do (AWS documentation, "Control access
//! to REST APIs using JWT authorizers"): configured from the issuer's discovery document, it
//! fetches the key set from `jwks_uri`, keeps it for the lifetime the response allows, finds the
//! key by the token's `kid` (fetching the set again once when the `kid` is unknown), and checks
//! the algorithm, the signature, `iss`, `aud` and `exp`. It reads the stack only through its two
//! public routes, with a clock of the test's choosing.

use jsonwebtoken::jwk::JwkSet;
use jsonwebtoken::{DecodingKey, Validation};
use serde_json::Value;

use crate::{event_json, parts, Stack};

pub struct GatewayVerifier {
    pub issuer: String,
    audience: String,
    algorithms: Vec<String>,
    /// The key set and until when it may be used (the test's clock).
    keys: Option<(JwkSet, i64)>,
    /// How many times the key set was fetched.
    pub fetches: usize,
}

impl GatewayVerifier {
    /// Configured as an operator configures an authorizer: the issuer's discovery document.
    pub async fn discover(stack: &Stack, audience: &str) -> Self {
        let (status, _, discovery) = parts(stack.send(&event_json("openid-configuration.json")).await);
        assert_eq!(status, 200, "{discovery}");
        let issuer = discovery["issuer"].as_str().expect("an issuer").to_owned();
        assert_eq!(discovery["jwks_uri"], format!("{issuer}/.well-known/jwks.json"), "the JWKS is where it says");
        let algorithms = discovery["id_token_signing_alg_values_supported"].as_array().expect("algorithms");
        let algorithms = algorithms.iter().map(|a| a.as_str().expect("a name").to_owned()).collect();
        Self { issuer, audience: audience.to_owned(), algorithms, keys: None, fetches: 0 }
    }

    async fn fetch(&mut self, stack: &Stack, now: i64) -> Result<(), String> {
        self.fetches += 1;
        let (status, headers, body) = parts(stack.send(&event_json("jwks.json")).await);
        if status != 200 {
            return Err(format!("the JWKS answered {status}"));
        }
        let cache_control = headers["cache-control"].to_str().map_err(|e| e.to_string())?;
        let max_age: i64 = cache_control
            .split(',')
            .find_map(|part| part.trim().strip_prefix("max-age="))
            .and_then(|age| age.parse().ok())
            .ok_or_else(|| format!("no max-age in {cache_control:?}"))?;
        let set: JwkSet = serde_json::from_value(body).map_err(|e| e.to_string())?;
        self.keys = Some((set, now + max_age));
        Ok(())
    }

    /// The token's claims, or why it is refused, at `now`.
    pub async fn verify(&mut self, stack: &Stack, token: &str, now: i64) -> Result<Value, String> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| e.to_string())?;
        let alg = serde_json::to_value(header.alg).map_err(|e| e.to_string())?;
        if !self.algorithms.iter().any(|a| alg == a.as_str()) {
            return Err(format!("algorithm {alg} not allowed"));
        }
        let kid = header.kid.ok_or("no kid")?;
        if self.keys.as_ref().is_none_or(|(_, until)| now >= *until) {
            self.fetch(stack, now).await?;
        }
        let find = |keys: &Option<(JwkSet, i64)>| keys.as_ref().and_then(|(set, _)| set.find(&kid).cloned());
        let jwk = match find(&self.keys) {
            Some(jwk) => jwk,
            None => {
                self.fetch(stack, now).await?;
                find(&self.keys).ok_or("unknown kid")?
            }
        };
        let mut validation = Validation::new(header.alg);
        validation.set_issuer(&[&self.issuer]);
        validation.set_audience(&[&self.audience]);
        // `exp` against the test's clock, not the machine's.
        validation.validate_exp = false;
        let key = DecodingKey::from_jwk(&jwk).map_err(|e| e.to_string())?;
        let claims = jsonwebtoken::decode::<Value>(token, &key, &validation).map_err(|e| e.to_string())?.claims;
        match claims["exp"].as_i64() {
            Some(exp) if now < exp => Ok(claims),
            _ => Err("expired".into()),
        }
    }
}
