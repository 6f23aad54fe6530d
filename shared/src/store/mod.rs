//! The DynamoDB store: one table, keyed by `pk` alone, holding these kinds of item.
//!
//! | `pk`               | item | written by |
//! |--------------------|------|------------|
//! | `USER#<id>`        | profile | register |
//! | `EMAIL#<email>`    | credentials: user id + password hash; makes the email unique | register, login (rehash) |
//! | `SESSION#<family>` | one refresh-token family: current token hash, owner, absolute expiry (TTL) | login, refresh |
//! | `FAILURES#<hmac>`  | the login throttle's counters for an email, known or not (TTL) | login |
//! | `OUTBOX#<id>`      | a mail to send and its status; the table's stream feeds it to the mailer | the routes that mail, the mailer |
//! | `TOKEN#<hash>`     | a mailed link's token: only its hash, its purpose, whose it is, until when (TTL) | the routes that mail, the mailer |
//! | `MAILREQ#<hmac>`   | when an address's last mails of a kind were asked for (cooldown, daily cap) | email-verify-resend, password-forgot |
//! | `WARM-UP#`         | never written (the kind alone, no id): read once per cold start to open the connection ([`Store::connect`]) | – |
//!
//! Each operation is the fewest sequential calls that keep it atomic: register is one
//! transaction; login reserves its attempt while it reads the credentials (two calls, one round
//! trip), then one transaction; refresh one conditional update.

mod account;
mod failures;
mod outbox;
mod sessions;
mod users;

use std::collections::HashMap;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::config::retry::RetryConfig;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use serde::{Deserialize, Serialize};

use crate::domain::{Email, FamilyId, UserId};
use crate::error::DependencyError;

pub use account::{verifies_email, PasswordChange, TokenUse, BY_USER_INDEX};
pub use failures::{Attempt, ReservedAttempt};
pub use outbox::{
    MailRequest, MailTokenItem, NewMail, NewMailToken, OutboxItem, OutboxStatus, MAIL_REQUESTS_PER_DAY,
    MAIL_REQUEST_COOLDOWN_SECONDS, SENT_RETENTION_SECONDS,
};
pub use sessions::{LoggingOut, NewSession, PresentedToken, Rotation};
pub use users::{Credentials, Generations, Registration, User};

const SERVICE: &str = "DynamoDB";

/// The key [`Store::connect`] reads. Nothing writes it; each function's policy allows a
/// `GetItem` on it alone (`dynamodb:LeadingKeys`), so the read reveals nothing. It ends in `#`
/// like every kind of key here: the local IAM check records keys up to their `#`, never an id.
const WARM_UP_KEY: &str = "WARM-UP#";

#[derive(Clone)]
pub struct Store {
    client: Client,
    table: String,
}

fn user_key(id: UserId) -> String {
    format!("USER#{id}")
}
fn email_key(email: &Email) -> String {
    format!("EMAIL#{email}")
}
fn session_key(family_id: &FamilyId) -> String {
    format!("SESSION#{family_id}")
}

fn to_item<T: Serialize>(value: &T) -> Result<HashMap<String, AttributeValue>, DependencyError> {
    serde_dynamo::to_item(value).map_err(|e| DependencyError::failed(SERVICE, e))
}
fn from_item<T: for<'de> Deserialize<'de>>(item: HashMap<String, AttributeValue>) -> Result<T, DependencyError> {
    serde_dynamo::from_item(item).map_err(|e| DependencyError::failed(SERVICE, e))
}
fn key(pk: String) -> HashMap<String, AttributeValue> {
    HashMap::from([("pk".to_owned(), AttributeValue::S(pk))])
}
fn number(n: i64) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

/// A conditional update whose condition did not hold has nothing left to do.
fn unless_condition_failed<T>(
    result: Result<T, SdkError<UpdateItemError, HttpResponse>>,
) -> Result<(), DependencyError> {
    match result {
        Ok(_) => Ok(()),
        Err(e) if e.as_service_error().is_some_and(UpdateItemError::is_conditional_check_failed_exception) => Ok(()),
        Err(e) => Err(DependencyError::from_sdk(SERVICE, e)),
    }
}

type TransactionError = SdkError<TransactWriteItemsError, HttpResponse>;

/// A cancelled transaction's reasons, one code per item in order (`None` for an item that was
/// fine); empty for any other error.
fn cancellation_reasons(error: &TransactionError) -> Vec<String> {
    match error.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(e)) => {
            e.cancellation_reasons().iter().map(|r| r.code().unwrap_or_default().to_owned()).collect()
        }
        _ => Vec::new(),
    }
}

/// A failed transaction as a dependency error. A conflict with another request writing one of
/// its items is contention, not a fault: transient (503 with `Retry-After`), like a throttle.
fn transaction_failed(error: TransactionError) -> DependencyError {
    if cancellation_reasons(&error).iter().any(|code| code == "TransactionConflict") {
        DependencyError::Unavailable { service: SERVICE, source: Box::new(error) }
    } else {
        DependencyError::from_sdk(SERVICE, error)
    }
}

impl Store {
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

    /// Opens `connections` connections to DynamoDB (as many as the function's requests make calls
    /// at once: the HTTP/1.1 pool holds one call per connection), so that init pays their TCP
    /// and TLS handshakes instead of the first request: Lambda is reported to run init without
    /// the memory-proportional CPU share, while a 128 MB invocation gets a fourteenth of a core
    /// for a handshake's key exchange and certificate checks. The cheapest data-plane call does
    /// it: eventually consistent reads, in flight together, of a key nothing writes, 0.5 read
    /// request unit each (a control-plane call such as `DescribeTable` is throttled per account
    /// and AWS advises against it in request paths). Best effort and without retries: init does
    /// not wait out an outage the first request would meet anyway; that request connects.
    pub async fn connect(&self, connections: usize) {
        let mut reads = tokio::task::JoinSet::new();
        for _ in 0..connections {
            let read = self
                .client
                .get_item()
                .table_name(&self.table)
                .set_key(Some(key(WARM_UP_KEY.to_owned())))
                .projection_expression("pk")
                .customize()
                .config_override(aws_sdk_dynamodb::Config::builder().retry_config(RetryConfig::disabled()))
                .send();
            reads.spawn(read);
        }
        let mut failed = None;
        while let Some(read) = reads.join_next().await {
            if let Ok(Err(error)) = read {
                failed = Some(DependencyError::from_sdk(SERVICE, error));
            }
        }
        if let Some(error) = failed {
            tracing::warn!(error = %crate::error::Chain(&error), "DynamoDB connection not opened during init; the first request will open it");
        }
    }

    /// A strongly consistent read of one item (a read right after a write must see it).
    async fn get<T: for<'de> Deserialize<'de>>(&self, pk: String) -> Result<Option<T>, DependencyError> {
        let output = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| DependencyError::from_sdk(SERVICE, e))?;
        output.item.map(from_item).transpose()
    }
}
