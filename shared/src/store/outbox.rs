//! Mail waiting to be sent (`OUTBOX#<id>`) and the hashes of mailed links' tokens (`TOKEN#<hash>`).
//!
//! A request writes its mail as an `OUTBOX#` item in the same transaction as the state change the
//! mail is about, so a mail is never lost nor sent for a change that did not happen. The mailer,
//! fed by the table's stream, marks each item `sent`, `skipped` (nothing to send: an unknown
//! address, an address already verified) or `failed` (SES refused it, or every attempt failed);
//! a failed item stays in the table, with no expiry, for an operator.

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem};
use serde::{Deserialize, Serialize};

use super::{from_item, key, number, to_item, transaction_failed, unless_condition_failed, Store, SERVICE};
use crate::domain::{Email, TokenHash, UserId};
use crate::error::DependencyError;
use crate::mail::{MailKind, OutboxId, Purpose};

/// How long a sent or skipped mail's item is kept, for support questions ("did it go out?").
pub const SENT_RETENTION_SECONDS: i64 = 30 * 24 * 3600;

fn outbox_key(id: OutboxId) -> String {
    format!("OUTBOX#{id}")
}

pub(super) fn token_key(hash: &TokenHash) -> String {
    format!("TOKEN#{}", hash.as_str())
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutboxStatus {
    Pending,
    Sent,
    Skipped,
    Failed,
}

/// A mail as stored.
#[derive(Debug, Serialize, Deserialize)]
pub struct OutboxItem {
    pk: String,
    pub kind: MailKind,
    /// The recipient, as parsed by the request.
    pub to: String,
    /// The account the mail is about, when the request knew it (not for resend and forgot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<UserId>,
    pub created_at: i64,
    pub status: OutboxStatus,
    /// Sending attempts so far (the mailer gives up, marking the item failed, after a bound).
    #[serde(default)]
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
}

/// A mail for a request to write in its transaction.
pub struct NewMail<'a> {
    pub id: OutboxId,
    pub kind: MailKind,
    pub to: &'a Email,
    pub user_id: Option<UserId>,
    pub now: i64,
}

/// The stored side of a mailed link's token: only its hash, what it is for, whose it is and
/// until when.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MailTokenItem {
    pk: String,
    pub purpose: Purpose,
    pub user_id: UserId,
    /// The address the token was mailed to: the account's (verification, reset) or the new one
    /// (email change).
    pub email: String,
    /// For an email change: the account's address when the change was asked for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_email: Option<String>,
    /// The user's generation for this purpose when the token was made: using any token of the
    /// purpose moves it, which invalidates every other.
    pub generation: u32,
    /// Also the table's TTL attribute; checked on use, since TTL deletion is lazy.
    pub expires_at: i64,
}

/// A token's hash and what it will prove.
pub struct NewMailToken<'a> {
    pub hash: &'a TokenHash,
    pub purpose: Purpose,
    pub user_id: UserId,
    pub email: &'a Email,
    pub previous_email: Option<&'a Email>,
    pub generation: u32,
    pub expires_at: i64,
}

impl Store {
    /// The conditional `Put` of a new mail, for a request's transaction.
    pub(super) fn outbox_put(&self, mail: &NewMail<'_>) -> Result<Put, DependencyError> {
        let item = to_item(&OutboxItem {
            pk: outbox_key(mail.id),
            kind: mail.kind,
            to: mail.to.to_string(),
            user_id: mail.user_id,
            created_at: mail.now,
            status: OutboxStatus::Pending,
            attempts: 0,
            expires_at: None,
        })?;
        self.new_item(item)
    }

    /// The conditional `Put` of a token's hash.
    pub(super) fn token_put(&self, token: &NewMailToken<'_>) -> Result<Put, DependencyError> {
        let item = to_item(&MailTokenItem {
            pk: token_key(token.hash),
            purpose: token.purpose,
            user_id: token.user_id,
            email: token.email.to_string(),
            previous_email: token.previous_email.map(Email::to_string),
            generation: token.generation,
            expires_at: token.expires_at,
        })?;
        self.new_item(item)
    }

    fn new_item(&self, item: std::collections::HashMap<String, AttributeValue>) -> Result<Put, DependencyError> {
        Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| DependencyError::failed(SERVICE, e))
    }

    /// A mail, as the mailer reads it (strongly consistent: it was just written).
    pub async fn mail(&self, id: OutboxId) -> Result<Option<OutboxItem>, DependencyError> {
        self.get(outbox_key(id)).await
    }

    /// Counts a sending attempt of a pending mail; `None` when the mail is no longer pending (a
    /// retried stream record whose mail was already dealt with).
    pub async fn start_sending(&self, id: OutboxId) -> Result<Option<u32>, DependencyError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(outbox_key(id))))
            .update_expression("ADD attempts :one")
            .condition_expression("#status = :pending")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":one", number(1))
            .expression_attribute_values(":pending", AttributeValue::S("pending".into()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await;
        match result {
            Ok(output) => {
                let attempts = output.attributes().and_then(|a| a.get("attempts")).and_then(|v| v.as_n().ok());
                Ok(Some(attempts.and_then(|n| n.parse().ok()).unwrap_or(1)))
            }
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(None),
            Err(e) => Err(DependencyError::from_sdk(SERVICE, e)),
        }
    }

    /// Marks a pending mail `sent`, `skipped` or `failed`, with a word saying why (an SES message
    /// id, `unknown_address`, an SES error code). Sent and skipped mails expire after
    /// [`SENT_RETENTION_SECONDS`]; a failed one stays until an operator removes it.
    pub async fn finish_mail(
        &self,
        id: OutboxId,
        status: OutboxStatus,
        detail: &str,
        now: i64,
    ) -> Result<(), DependencyError> {
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(outbox_key(id))))
            .condition_expression("#status = :pending")
            .expression_attribute_names("#status", "status")
            .expression_attribute_values(":pending", AttributeValue::S("pending".into()))
            .expression_attribute_values(":status", to_status(status))
            .expression_attribute_values(":detail", AttributeValue::S(detail.to_owned()))
            .expression_attribute_values(":now", number(now));
        request = if status == OutboxStatus::Failed {
            request.update_expression("SET #status = :status, detail = :detail, finished_at = :now")
        } else {
            request
                .update_expression("SET #status = :status, detail = :detail, finished_at = :now, expires_at = :expires")
                .expression_attribute_values(":expires", number(now + SENT_RETENTION_SECONDS))
        };
        unless_condition_failed(request.send().await)
    }

    /// Stores a token's hash made by the mailer (resend, forgot). A retry that finds its own
    /// token already there has nothing left to do.
    pub async fn store_mail_token(&self, token: NewMailToken<'_>) -> Result<(), DependencyError> {
        let put = self.token_put(&token)?;
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(put.item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(()),
            Err(e) => Err(DependencyError::from_sdk(SERVICE, e)),
        }
    }

    /// A token's stored side, if it exists and has not expired at `now`.
    pub async fn mail_token(&self, hash: &TokenHash, now: i64) -> Result<Option<MailTokenItem>, DependencyError> {
        let item: Option<MailTokenItem> = self.get(token_key(hash)).await?;
        Ok(item.filter(|item| item.expires_at > now))
    }
}

fn to_status(status: OutboxStatus) -> AttributeValue {
    let word = match status {
        OutboxStatus::Pending => "pending",
        OutboxStatus::Sent => "sent",
        OutboxStatus::Skipped => "skipped",
        OutboxStatus::Failed => "failed",
    };
    AttributeValue::S(word.to_owned())
}

/// How often and how many `resend`/`forgot` mails one address may ask for.
pub const MAIL_REQUEST_COOLDOWN_SECONDS: i64 = 60;
pub const MAIL_REQUESTS_PER_DAY: usize = 5;
const DAY_SECONDS: i64 = 24 * 3600;

/// The answer to a `resend` or `forgot` request.
#[derive(Debug, PartialEq, Eq)]
pub enum MailRequest {
    /// The mail request is in the outbox.
    Accepted,
    /// Within the cooldown or over the daily cap: retry after this many seconds.
    Limited(u64),
}

/// The `MAILREQ#` record of an address and kind: when its last mails were asked for.
#[derive(Debug, Default, Serialize, Deserialize)]
struct RequestRecord {
    pk: String,
    /// The times (seconds) of the requests accepted in the last 24 hours, oldest first.
    #[serde(default)]
    requested: Vec<i64>,
    #[serde(default)]
    version: u64,
    expires_at: i64,
}

impl RequestRecord {
    /// Whether one more request may be accepted at `now`, else how long to wait.
    fn limit(&self, now: i64) -> Option<u64> {
        let recent: Vec<i64> = self.requested.iter().copied().filter(|t| *t > now - DAY_SECONDS).collect();
        let last = recent.iter().copied().max();
        if let Some(last) = last.filter(|last| now - last < MAIL_REQUEST_COOLDOWN_SECONDS) {
            return Some((MAIL_REQUEST_COOLDOWN_SECONDS - (now - last)).max(1) as u64);
        }
        if recent.len() >= MAIL_REQUESTS_PER_DAY {
            let oldest = recent.iter().copied().min().unwrap_or(now);
            return Some((oldest + DAY_SECONDS - now).max(1) as u64);
        }
        None
    }
}

impl Store {
    /// Accepts a `resend`/`forgot` mail request for `record` (an address's, by HMAC) if its
    /// cooldown and daily cap allow: the record and the mail in one transaction. The first
    /// request of an address is one call; later ones read the record from the first call's
    /// failed condition and write it with a version check (a second call). Of concurrent
    /// requests, one is accepted; the others are within its cooldown. The work is the same
    /// whether or not the address has an account: nothing here looks the account up.
    pub async fn request_mail(&self, record: &str, mail: &NewMail<'_>) -> Result<MailRequest, DependencyError> {
        let now = mail.now;
        let first =
            RequestRecord { pk: record.to_owned(), requested: vec![now], version: 0, expires_at: now + DAY_SECONDS };
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(&first)?))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(|e| DependencyError::failed(SERVICE, e))?;
        let old = match self.with_mail(put, mail).await? {
            None => return Ok(MailRequest::Accepted),
            Some(Some(old)) => from_item::<RequestRecord>(old)?,
            // Cancelled without the item: a concurrent request is being written.
            Some(None) => return Ok(MailRequest::Limited(MAIL_REQUEST_COOLDOWN_SECONDS as u64)),
        };
        if let Some(wait) = old.limit(now) {
            return Ok(MailRequest::Limited(wait));
        }
        let mut requested: Vec<i64> = old.requested.iter().copied().filter(|t| *t > now - DAY_SECONDS).collect();
        requested.push(now);
        let next =
            RequestRecord { pk: record.to_owned(), requested, version: old.version + 1, expires_at: now + DAY_SECONDS };
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(&next)?))
            .condition_expression("version = :version")
            .expression_attribute_values(":version", number(old.version as i64))
            .build()
            .map_err(|e| DependencyError::failed(SERVICE, e))?;
        Ok(match self.with_mail(put, mail).await? {
            None => MailRequest::Accepted,
            Some(_) => MailRequest::Limited(MAIL_REQUEST_COOLDOWN_SECONDS as u64),
        })
    }

    /// Writes `record` and the mail in one transaction: `None` when done, else the record's
    /// condition failed (with the item as it was, when DynamoDB returned it).
    async fn with_mail(
        &self,
        record: Put,
        mail: &NewMail<'_>,
    ) -> Result<Option<Option<std::collections::HashMap<String, AttributeValue>>>, DependencyError> {
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(record).build())
            .transact_items(TransactWriteItem::builder().put(self.outbox_put(mail)?).build())
            .send()
            .await;
        let Err(error) = result else { return Ok(None) };
        if let Some(TransactWriteItemsError::TransactionCanceledException(cancelled)) = error.as_service_error() {
            let first = cancelled.cancellation_reasons().first();
            if first.and_then(|r| r.code()) == Some("ConditionalCheckFailed") {
                return Ok(Some(first.and_then(|r| r.item().cloned())));
            }
        }
        Err(transaction_failed(error))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(requested: &[i64]) -> RequestRecord {
        RequestRecord { requested: requested.to_vec(), ..Default::default() }
    }

    #[test]
    fn given_a_request_within_60_seconds_when_asking_again_then_wait_the_rest_of_the_minute() {
        assert_eq!(record(&[1_000]).limit(1_010), Some(50));
        assert_eq!(record(&[1_000]).limit(1_059), Some(1));
        assert_eq!(record(&[1_000]).limit(1_060), None);
    }

    #[test]
    fn given_five_requests_in_a_day_when_asking_a_sixth_then_wait_until_the_oldest_is_a_day_old() {
        let day = [0, 3_600, 7_200, 10_800, 14_400];
        assert_eq!(record(&day).limit(20_000), Some(86_400 - 20_000));
        assert_eq!(record(&day).limit(86_400), None, "the oldest left the window");
        assert_eq!(record(&day[1..]).limit(20_000), None, "four are fine");
    }
}
