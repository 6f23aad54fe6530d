//! Sends the mail requests wrote to `OUTBOX#` items. Lambda invokes it with batches of the
//! table's stream records (keys only), filtered to inserted `OUTBOX#` items.
//!
//! Each record is handled at least once and its mail sent at most once per successful attempt:
//! the item's status says whether it is still pending, so a retried record whose mail went out
//! does nothing. A mail SES refuses for good (an unverified sender, a rejected message) is marked
//! `failed` at once; a transient failure (throttling, an outage) is reported as the batch's
//! failed item, which Lambda retries, and after [`MAX_ATTEMPTS`] the mail is marked `failed`.
//! A failed mail stays in the table (no expiry) for an operator; nothing is lost silently.
//!
//! For `resend` and `forgot` the request did not look the account up (so every address gets the
//! same answer, in the same time): here an unknown address gets nothing, an already verified
//! one no verification link, and the others a fresh token whose hash is stored before sending.

use std::time::Duration;

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use aws_lambda_events::event::streams::{DynamoDbBatchItemFailure, DynamoDbEventResponse};
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message as SesMessage};
use secrecy::ExposeSecret;
use shared::aws::Clients;
use shared::config::{Config, ConfigError};
use shared::domain::Email;
use shared::error::{Chain, DependencyError};
use shared::keys::MailKeys;
use shared::lambda::EventFunction;
use shared::mail::{compose, Links, MailKind, OutboxId, Purpose};
use shared::store::{NewMailToken, OutboxItem, OutboxStatus, Store};
use shared::{now_epoch, ApiError};

/// Sending attempts of one mail before it is marked `failed`.
pub const MAX_ATTEMPTS: u32 = 3;

/// What the handler needs; built once per cold start.
pub struct Deps {
    pub store: Store,
    pub keys: MailKeys,
    pub ses: aws_sdk_sesv2::Client,
    pub sender: String,
    pub links: Links,
    pub verify_ttl: Duration,
    pub change_ttl: Duration,
    pub reset_ttl: Duration,
}

impl EventFunction for Deps {
    type Event = Event;
    type Output = DynamoDbEventResponse;

    fn build(config: &Config, aws: &Clients) -> Result<Self, ConfigError> {
        Ok(Self {
            store: Store::new(aws.dynamodb(), &config.table_name),
            keys: MailKeys::from_secrets_manager(aws.secrets(), config.mail.key_secret_id()?),
            ses: aws.ses(),
            sender: config.mail.sender()?.to_owned(),
            links: Links::new(config.mail.app_base_url()?),
            verify_ttl: config.mail.verify_email_ttl,
            change_ttl: config.mail.change_email_ttl,
            reset_ttl: config.mail.reset_password_ttl,
        })
    }

    /// Reads the mail key during init. The DynamoDB and SES connections are opened by the first
    /// batch: no user waits for a mail.
    async fn warm(&self) {
        self.keys.prefetch().await;
    }

    async fn handle(&self, event: Event) -> Result<DynamoDbEventResponse, lambda_runtime::Error> {
        Ok(handle(self, event).await)
    }
}

/// What happened to one record's mail.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// Nothing to send (an unknown address, a verified one), or nothing left to do.
    Skipped(&'static str),
    /// SES refused it for good, or every attempt failed: marked `failed`.
    Failed(String),
    /// Worth another attempt: the record is reported as failed, and Lambda retries it.
    Retry,
}

/// Handles a batch in order. At the first record that must be retried it stops: Lambda retries
/// from that record (`ReportBatchItemFailures`), so the ones after it are delivered again.
pub async fn handle(deps: &Deps, event: Event) -> DynamoDbEventResponse {
    let mut response = DynamoDbEventResponse::default();
    for record in event.records {
        if process(deps, &record).await == Outcome::Retry {
            let mut failure = DynamoDbBatchItemFailure::default();
            failure.item_identifier = record.change.sequence_number.clone();
            response.batch_item_failures.push(failure);
            break;
        }
    }
    response
}

/// Handles one record and logs one line about it (never an address, a link or a token).
pub async fn process(deps: &Deps, record: &EventRecord) -> Outcome {
    let id = match record.change.keys.get("pk") {
        Some(serde_dynamo::AttributeValue::S(pk)) => OutboxId::from_key(pk),
        _ => None,
    };
    let Some(id) = id else {
        tracing::warn!(event_id = %record.event_id, "stream record that is not a mail: ignored");
        return Outcome::Skipped("not_a_mail");
    };
    let (outcome, kind) = match send(deps, id).await {
        Ok(result) => result,
        Err(error) => {
            tracing::warn!(mail = %id, error = %Chain(&error), "mail not sent; the record will be retried");
            return Outcome::Retry;
        }
    };
    let kind = kind.map(MailKind::as_str);
    match &outcome {
        Outcome::Failed(reason) => {
            tracing::error!(mail = %id, kind, reason = %reason, outcome = "failed", "mail failed")
        }
        Outcome::Retry => {
            tracing::warn!(mail = %id, kind, outcome = "retry", "mail not sent; the record will be retried")
        }
        Outcome::Sent => tracing::info!(mail = %id, kind, outcome = "sent", "mail sent"),
        Outcome::Skipped(why) => tracing::info!(mail = %id, kind, outcome = "skipped", reason = *why, "mail not sent"),
    }
    outcome
}

async fn send(deps: &Deps, id: OutboxId) -> Result<(Outcome, Option<MailKind>), DependencyError> {
    let now = now_epoch();
    let Some(mail) = deps.store.mail(id).await? else { return Ok((Outcome::Skipped("no_such_mail"), None)) };
    if mail.status != OutboxStatus::Pending {
        return Ok((Outcome::Skipped("already_done"), Some(mail.kind)));
    }
    let Some(attempt) = deps.store.start_sending(id).await? else {
        return Ok((Outcome::Skipped("already_done"), Some(mail.kind)));
    };
    let link = match link(deps, id, &mail, now).await? {
        Ok(link) => link,
        Err(skip) => {
            deps.store.finish_mail(id, OutboxStatus::Skipped, skip, now).await?;
            return Ok((Outcome::Skipped(skip), Some(mail.kind)));
        }
    };
    let valid_for = match mail.kind {
        MailKind::VerifyNewEmail => hours(deps.change_ttl),
        MailKind::ResetRequested => hours(deps.reset_ttl),
        _ => hours(deps.verify_ttl),
    };
    let message = compose(mail.kind, link.as_ref().map(|l| l.expose_secret()), &valid_for);
    let outcome = match deliver(deps, &mail.to, message).await {
        Ok(message_id) => {
            deps.store.finish_mail(id, OutboxStatus::Sent, &message_id, now).await?;
            Outcome::Sent
        }
        Err(Delivery::Refused(code)) => {
            deps.store.finish_mail(id, OutboxStatus::Failed, &code, now).await?;
            Outcome::Failed(code)
        }
        Err(Delivery::Transient(code)) if attempt >= MAX_ATTEMPTS => {
            deps.store.finish_mail(id, OutboxStatus::Failed, &code, now).await?;
            Outcome::Failed(code)
        }
        Err(Delivery::Transient(_)) => Outcome::Retry,
    };
    Ok((outcome, Some(mail.kind)))
}

/// The link a mail carries (`None` for a notice), or why there is nothing to send.
async fn link(
    deps: &Deps,
    id: OutboxId,
    mail: &OutboxItem,
    now: i64,
) -> Result<Result<Option<secrecy::SecretString>, &'static str>, DependencyError> {
    let key = deps.keys.key().await?;
    let token = key.token(id);
    let (purpose, ttl) = match mail.kind {
        MailKind::VerifyEmail | MailKind::VerifyNewEmail => return Ok(Ok(Some(deps.links.verify_email(&token)))),
        MailKind::PasswordChanged | MailKind::EmailChangeRequested => return Ok(Ok(None)),
        MailKind::VerificationRequested => (Purpose::VerifyEmail, deps.verify_ttl),
        MailKind::ResetRequested => (Purpose::ResetPassword, deps.reset_ttl),
    };
    // Resend and forgot: the account decides, here, off the request's path.
    let Ok(email) = Email::parse(&mail.to) else { return Ok(Err("unknown_address")) };
    let Some(credentials) = deps.store.credentials(&email).await? else { return Ok(Err("unknown_address")) };
    if purpose == Purpose::VerifyEmail && credentials.email_verified {
        return Ok(Err("already_verified"));
    }
    let Some(generations) = deps.store.generations(credentials.user_id).await? else {
        return Ok(Err("unknown_address"));
    };
    let hash = token.hash();
    deps.store
        .store_mail_token(NewMailToken {
            hash: &hash,
            purpose,
            user_id: credentials.user_id,
            email: &email,
            previous_email: None,
            generation: generations.of(purpose),
            expires_at: now + ttl.as_secs() as i64,
        })
        .await?;
    Ok(Ok(Some(match purpose {
        Purpose::ResetPassword => deps.links.reset_password(&token),
        _ => deps.links.verify_email(&token),
    })))
}

/// Why SES did not take a message: for good (its error code), or for now.
enum Delivery {
    Refused(String),
    Transient(String),
}

/// SES errors that another attempt cannot fix.
const REFUSALS: &[&str] = &[
    // The role may not send from this address: a deployment error no retry fixes.
    "AccessDeniedException",
    "MessageRejected",
    "MailFromDomainNotVerifiedException",
    "AccountSuspendedException",
    "SendingPausedException",
    "BadRequestException",
    "NotFoundException",
];

async fn deliver(deps: &Deps, to: &str, message: shared::mail::Message) -> Result<String, Delivery> {
    let text = |data: String| Content::builder().data(data).charset("UTF-8").build();
    let build = || -> Result<EmailContent, aws_sdk_sesv2::error::BuildError> {
        let body = Body::builder().text(text(message.text.clone())?).html(text(message.html.clone())?).build();
        let simple = SesMessage::builder().subject(text(message.subject.clone())?).body(body).build();
        Ok(EmailContent::builder().simple(simple).build())
    };
    let content = build().map_err(|e| Delivery::Refused(format!("unbuildable message: {e}")))?;
    let result = deps
        .ses
        .send_email()
        .from_email_address(&deps.sender)
        .destination(Destination::builder().to_addresses(to).build())
        .content(content)
        .send()
        .await;
    match result {
        Ok(output) => Ok(output.message_id().unwrap_or("sent").to_owned()),
        Err(error) => {
            use aws_sdk_sesv2::error::ProvideErrorMetadata;
            let code = error.code().unwrap_or("unknown").to_owned();
            if REFUSALS.contains(&code.as_str()) {
                Err(Delivery::Refused(code))
            } else {
                tracing::warn!(error = %Chain(&ApiError::Dependency(DependencyError::from_sdk("SES", error))), "SES call failed");
                Err(Delivery::Transient(code))
            }
        }
    }
}

/// A lifetime as mail text: "24 hours", "1 hour", "30 minutes".
fn hours(ttl: Duration) -> String {
    let minutes = ttl.as_secs() / 60;
    match (minutes / 60, minutes % 60) {
        (1, 0) => "1 hour".to_owned(),
        (h, 0) => format!("{h} hours"),
        _ => format!("{minutes} minutes"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_lifetimes_when_written_for_people_then_whole_hours_read_as_hours() {
        assert_eq!(hours(Duration::from_secs(86_400)), "24 hours");
        assert_eq!(hours(Duration::from_secs(3_600)), "1 hour");
        assert_eq!(hours(Duration::from_secs(5_400)), "90 minutes");
    }

    #[tokio::test]
    async fn given_a_record_that_is_not_a_mail_when_handling_then_it_is_skipped_not_retried() {
        let event: Event = serde_json::from_value(serde_json::json!({"Records": [{
            "eventID": "1", "eventName": "INSERT", "eventVersion": "1.1", "eventSource": "aws:dynamodb",
            "awsRegion": "us-east-1",
            "dynamodb": {"Keys": {"pk": {"S": "USER#x"}}, "SequenceNumber": "100", "SizeBytes": 10,
                         "StreamViewType": "KEYS_ONLY", "ApproximateCreationDateTime": 1795496400},
            "eventSourceARN": "arn:aws:dynamodb:us-east-1:123456789012:table/t/stream/x"
        }]}))
        .unwrap();
        let deps = offline();
        let response = handle(&deps, event).await;
        assert!(response.batch_item_failures.is_empty());
    }

    #[tokio::test]
    async fn given_the_store_down_when_handling_the_fixture_then_its_record_is_reported_for_a_retry() {
        let event: Event = serde_json::from_value(shared::testing::event_json("mailer.json")).unwrap();
        let response = handle(&offline(), event).await;
        assert_eq!(response.batch_item_failures.len(), 1);
        assert_eq!(response.batch_item_failures[0].item_identifier.as_deref(), Some("111100000000000000000001"));
    }

    fn offline() -> Deps {
        let config = Config::from_lookup(|name| match name {
            "TABLE_NAME" | "MAIL_KEY_SECRET_ID" => Some("offline".into()),
            "SENDER_EMAIL" => Some("no-reply@example.com".into()),
            "APP_BASE_URL" => Some("https://app.example.com".into()),
            _ => None,
        })
        .unwrap();
        Deps::build(&config, &Clients::new(&shared::testing::unreachable_aws())).unwrap()
    }
}
