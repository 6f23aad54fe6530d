//! Consecutive failed logins per email, for per-account login throttling.
//!
//! API Gateway's usage plans count requests per API key and are best-effort: they cannot slow
//! down guessing against one account. After [`FAILURES_BEFORE_DELAY`] consecutive failures an
//! email's logins are delayed exponentially (1 s, 2 s, 4 s, … at most [`MAX_DELAY_SECONDS`]);
//! a success, or [`QUIET_RESET_SECONDS`] without failures, starts over. Unknown emails are
//! counted exactly like known ones, so the answers never tell them apart. The item is keyed by
//! a hash of the email, so attacker-chosen addresses are not stored in clear, and expires by TTL.

use aws_sdk_dynamodb::types::{AttributeValue, KeysAndAttributes};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{email_key, from_item, key, number, users::CredentialsItem, Credentials, Store, SERVICE};
use crate::domain::Email;
use crate::error::DependencyError;

pub const FAILURES_BEFORE_DELAY: u32 = 5;
pub const MAX_DELAY_SECONDS: i64 = 15 * 60;
pub const QUIET_RESET_SECONDS: i64 = 15 * 60;
/// Reads retried when DynamoDB returns unprocessed keys (it may, under load).
const BATCH_ATTEMPTS: u32 = 3;

/// The failure record of one email.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedLogins {
    pub failed: u32,
    pub last_failed_at: i64,
}

impl FailedLogins {
    /// The consecutive failures that still count at `now`.
    pub fn current(&self, now: i64) -> u32 {
        if now - self.last_failed_at >= QUIET_RESET_SECONDS {
            0
        } else {
            self.failed
        }
    }

    /// Seconds to wait before the next attempt is accepted, if one is not accepted at `now`.
    pub fn retry_after(&self, now: i64) -> Option<u64> {
        let failed = self.current(now);
        if failed < FAILURES_BEFORE_DELAY {
            return None;
        }
        let exponent = (failed - FAILURES_BEFORE_DELAY).min(20);
        let delay = (1i64 << exponent).min(MAX_DELAY_SECONDS);
        let until = self.last_failed_at + delay;
        (now < until).then(|| (until - now) as u64)
    }
}

#[derive(Serialize, Deserialize)]
struct FailuresItem {
    pk: String,
    #[serde(flatten)]
    record: FailedLogins,
    expires_at: i64,
}

fn failures_key(email: &Email) -> String {
    format!("FAILURES#{}", URL_SAFE_NO_PAD.encode(Sha256::digest(email.as_str().as_bytes())))
}

impl Store {
    /// The credentials (if the email is registered) and the failure record of an email, in one
    /// strongly consistent batch read.
    pub async fn login_state(&self, email: &Email) -> Result<(Option<Credentials>, FailedLogins), DependencyError> {
        let (credentials_pk, failures_pk) = (email_key(email), failures_key(email));
        let mut request = KeysAndAttributes::builder()
            .keys(key(credentials_pk.clone()))
            .keys(key(failures_pk))
            .consistent_read(true)
            .build()
            .map_err(|e| DependencyError::failed(SERVICE, e))?;
        let mut items = Vec::new();
        for attempt in 1..=BATCH_ATTEMPTS {
            let output = self
                .client
                .batch_get_item()
                .request_items(&self.table, request)
                .send()
                .await
                .map_err(|e| DependencyError::from_sdk(SERVICE, e))?;
            items.extend(output.responses.and_then(|mut r| r.remove(&self.table)).unwrap_or_default());
            match output.unprocessed_keys.and_then(|mut u| u.remove(&self.table)) {
                Some(left) if !left.keys().is_empty() => {
                    if attempt == BATCH_ATTEMPTS {
                        return Err(DependencyError::Unavailable {
                            service: SERVICE,
                            source: "batch read left keys unprocessed".into(),
                        });
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20 << attempt)).await;
                    request = left;
                }
                _ => break,
            }
        }
        let (mut credentials, mut failures) = (None, FailedLogins::default());
        for item in items {
            if item.get("pk").and_then(|pk| pk.as_s().ok()) == Some(&credentials_pk) {
                let item: CredentialsItem = from_item(item)?;
                credentials = Some(Credentials { user_id: item.user_id, password_hash: item.password_hash });
            } else {
                failures = from_item::<FailuresItem>(item)?.record;
            }
        }
        Ok((credentials, failures))
    }

    /// Counts one more failure for `email`, or starts counting again if `seen` has gone quiet.
    pub async fn record_failed_login(
        &self,
        email: &Email,
        seen: &FailedLogins,
        now: i64,
    ) -> Result<(), DependencyError> {
        let update = if seen.current(now) == 0 {
            "SET failed = :one, last_failed_at = :now, expires_at = :expires"
        } else {
            "SET failed = if_not_exists(failed, :zero) + :one, last_failed_at = :now, expires_at = :expires"
        };
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(failures_key(email))))
            .update_expression(update)
            .expression_attribute_values(":one", number(1))
            .expression_attribute_values(":now", number(now))
            .expression_attribute_values(":expires", number(now + QUIET_RESET_SECONDS + MAX_DELAY_SECONDS));
        if seen.current(now) != 0 {
            request = request.expression_attribute_values(":zero", number(0));
        }
        request.send().await.map(|_| ()).map_err(|e| DependencyError::from_sdk(SERVICE, e))
    }

    pub(super) fn failures_key_for(email: &Email) -> AttributeValue {
        AttributeValue::S(failures_key(email))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(failed: u32, last_failed_at: i64) -> FailedLogins {
        FailedLogins { failed, last_failed_at }
    }

    #[test]
    fn given_fewer_than_five_failures_then_no_delay() {
        assert_eq!(record(4, 1000).retry_after(1000), None);
    }

    #[test]
    fn given_five_or_more_failures_then_the_delay_doubles_up_to_fifteen_minutes() {
        let now = 10_000;
        let delays: Vec<_> = (5..=17).map(|n| record(n, now).retry_after(now).unwrap()).collect();
        assert_eq!(delays, [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900]);
        assert_eq!(record(u32::MAX, now).retry_after(now), Some(900));
    }

    #[test]
    fn given_the_delay_has_passed_then_an_attempt_is_accepted() {
        assert_eq!(record(6, 1000).retry_after(1001), Some(1));
        assert_eq!(record(6, 1000).retry_after(1002), None);
    }

    #[test]
    fn given_fifteen_quiet_minutes_then_the_count_starts_over() {
        assert_eq!(record(30, 1000).current(1000 + 899), 30);
        assert_eq!(record(30, 1000).current(1000 + 900), 0);
        assert_eq!(record(30, 1000).retry_after(1000 + 900), None);
    }
}
