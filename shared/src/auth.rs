//! Who is calling: the bearer of an access token, and the holder of a password.
//!
//! Every route that checks a password does it through [`check_password`], exactly as login
//! does: the attempt is reserved on the email's failure record (the login throttle: same item,
//! same `429`) while the credentials are read, and a wrong password or an unknown email costs
//! the same argon2id work and gets the same `401`.

use std::time::Duration;

use lambda_http::Request;

use crate::domain::{Email, PasswordHash, SubmittedPassword, UserId};
use crate::error::ApiError;
use crate::http::{single_header, source_ip};
use crate::lambda::RequestLog;
use crate::password::{self, Verification};
use crate::store::{Attempt, Credentials, ReservedAttempt, Store};
use crate::throttle::{Network, Refusal, ThrottleKey};
use crate::tokens::{AccessClaims, AccessTokens};

/// The token of an `Authorization: Bearer <token>` header (scheme case-insensitive).
pub fn bearer_token(req: &Request) -> Result<&str, ApiError> {
    let header = single_header(req.headers(), &http::header::AUTHORIZATION)
        .map_err(|_| ApiError::InvalidAccessToken("duplicate authorization header"))?
        .ok_or(ApiError::MissingAccessToken)?;
    let value = header.to_str().map_err(|_| ApiError::InvalidAccessToken("non-ASCII authorization header"))?;
    let (scheme, token) = value.trim().split_once(' ').unwrap_or((value.trim(), ""));
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::MissingAccessToken);
    }
    let token = token.trim();
    if token.is_empty() || token.contains(' ') {
        return Err(ApiError::InvalidAccessToken("malformed bearer credentials"));
    }
    Ok(token)
}

/// The verified claims of the request's bearer token; the user goes into the log line.
pub async fn authenticate(
    req: &Request,
    tokens: &AccessTokens,
    now: i64,
    log: &mut RequestLog,
) -> Result<AccessClaims, ApiError> {
    let claims = tokens.verify(&tokens.issuer(req)?, bearer_token(req)?, now).await?;
    log.user(claims.sub);
    Ok(claims)
}

/// A password that matched, with the attempt it cost (a success's write must clear it).
#[derive(Debug)]
pub struct Checked {
    pub credentials: Credentials,
    pub attempt: ReservedAttempt,
    /// A new hash when the stored one used weaker parameters.
    pub rehashed: Option<PasswordHash>,
}

/// What a password check needs besides the request.
pub struct PasswordCheck<'a> {
    pub store: &'a Store,
    pub throttle: &'a ThrottleKey,
    /// A network the account logged in from within this long is "known" (the refresh-token
    /// lifetime).
    pub known_for: Duration,
    pub now_ms: i64,
}

impl PasswordCheck<'_> {
    /// Checks `password` for `email`: reserves the attempt while the credentials are read (one
    /// round trip), then one argon2id verification whether or not the email is registered.
    /// `expected_user`, for a signed-in caller, must own the email, or the password is wrong.
    pub async fn check(
        &self,
        req: &Request,
        email: &Email,
        password: SubmittedPassword,
        expected_user: Option<UserId>,
        log: &mut RequestLog,
    ) -> Result<Checked, ApiError> {
        let now = self.now_ms.div_euclid(1000);
        let record = self.throttle.failure_key(email);
        let network = self.throttle.network_id(&Network::of(source_ip(req).as_deref()));
        let known_since = now - self.known_for.as_secs() as i64;
        let (attempt, credentials) = tokio::join!(
            self.store.reserve_attempt(&record, &network, known_since, self.now_ms),
            self.store.credentials(email)
        );
        let attempt = match attempt? {
            Attempt::Reserved(attempt) => attempt,
            Attempt::Refused(refusal) => {
                let (outcome, error) = match refusal {
                    Refusal::Delayed(seconds) => ("throttled", ApiError::TooManyAttempts(seconds)),
                    Refusal::Locked => ("locked", ApiError::AccountLocked),
                };
                log.outcome(outcome);
                return Err(error);
            }
        };
        let credentials = credentials?.filter(|c| expected_user.is_none_or(|user| user == c.user_id));
        let stored_hash = credentials.as_ref().map(|c| c.password_hash.clone());
        match (password::verify(password, stored_hash).await?, credentials) {
            (Verification::Match { rehashed }, Some(credentials)) => {
                log.user(credentials.user_id);
                Ok(Checked { credentials, attempt, rehashed })
            }
            (_, credentials) => {
                // The attempt is already counted; unknown emails exactly like known ones.
                if let Some(credentials) = credentials {
                    log.user(credentials.user_id);
                }
                log.outcome("bad_credentials");
                log.detail("account_failures", attempt.account_failures);
                log.detail("network_failures", attempt.network_failures);
                Err(ApiError::InvalidCredentials)
            }
        }
    }
}

/// The signed-in user's profile; a valid token whose user is gone no longer authenticates anyone.
pub async fn current_user(store: &Store, claims: &AccessClaims) -> Result<crate::store::User, ApiError> {
    store.user(claims.sub).await?.ok_or(ApiError::InvalidAccessToken("user no longer exists"))
}

/// The address a stored profile holds (written only from a parsed one).
pub fn stored_email(user: &crate::store::User) -> Result<Email, ApiError> {
    Email::parse(&user.email).map_err(|_| ApiError::Internal("a stored email does not parse".into()))
}
