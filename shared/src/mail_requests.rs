//! `POST /email/verify/resend` and `POST /password/forgot`: `{"email"}` → `202`, for every
//! well-formed address outside its cooldown, whether or not it has an account.
//!
//! Both do the same work for every address: one mail request written to the outbox, keyed by
//! the address's HMAC (which is also the cooldown and the daily cap). Whether anything is sent
//! (an account exists; for a verification, it is not verified yet) is decided by the mailer, off
//! the request's path, so the status, the body and the time say nothing about the account.

use std::marker::PhantomData;

use http::Method;
use lambda_http::{Body, Request, Response};

use crate::aws::Clients;
use crate::config::{Config, ConfigError};
use crate::domain::Email;
use crate::error::ApiError;
use crate::http::{accepted, require_method, JsonFields};
use crate::keys::MailKeys;
use crate::lambda::{Function, RequestLog};
use crate::mail::{MailKind, OutboxId};
use crate::store::{MailRequest, NewMail, Store};

/// Which mail a route asks for.
pub trait Requested: Send + Sync + 'static {
    const KIND: MailKind;
}

/// `POST /email/verify/resend`.
pub struct Verification;
impl Requested for Verification {
    const KIND: MailKind = MailKind::VerificationRequested;
}

/// `POST /password/forgot`.
pub struct Reset;
impl Requested for Reset {
    const KIND: MailKind = MailKind::ResetRequested;
}

/// What either route needs; built once per cold start.
pub struct Deps<K> {
    pub store: Store,
    pub mail_keys: MailKeys,
    kind: PhantomData<K>,
}

impl<K> Deps<K> {
    pub fn new(store: Store, mail_keys: MailKeys) -> Self {
        Self { store, mail_keys, kind: PhantomData }
    }
}

impl<K: Requested> Function for Deps<K> {
    fn build(config: &Config, aws: &Clients) -> Result<Self, ConfigError> {
        Ok(Self::new(
            Store::new(aws.dynamodb(), &config.table_name),
            MailKeys::from_secrets_manager(aws.secrets(), config.mail.key_secret_id()?),
        ))
    }

    /// Reads the mail key and opens the DynamoDB connection during init.
    async fn warm(&self) {
        tokio::join!(self.mail_keys.prefetch(), self.store.connect(1));
    }

    async fn handle(&self, req: &Request, log: &mut RequestLog) -> Result<Response<Body>, ApiError> {
        handle(req, &self.store, &self.mail_keys, K::KIND, log).await
    }
}

/// Reads the body: a `400`/`413`/`415` for an unreadable one, a `422` for a missing, unknown or
/// invalid field. Public for the fuzz targets.
pub fn parse(req: &Request) -> Result<Email, ApiError> {
    let mut fields = JsonFields::from_request(req, &["email"])?;
    let email = fields.parse("email", |raw| Email::parse(&raw));
    fields.finish()?;
    email.ok_or_else(|| ApiError::Internal("a field parsed without error yet has no value".into()))
}

/// Handles a mail request of `kind` (`VerificationRequested` or `ResetRequested`).
pub async fn handle(
    req: &Request,
    store: &Store,
    keys: &MailKeys,
    kind: MailKind,
    log: &mut RequestLog,
) -> Result<Response<Body>, ApiError> {
    require_method(req, &Method::POST)?;
    let email = parse(req)?;
    let key = keys.key().await?;
    let mail = NewMail { id: OutboxId::generate(), kind, to: &email, user_id: None, now: crate::now_epoch() };
    match store.request_mail(&key.request_record(kind, &email), &mail).await? {
        MailRequest::Accepted => {
            log.outcome("requested");
            accepted()
        }
        MailRequest::Limited(seconds) => {
            log.outcome("limited");
            Err(ApiError::TooManyMailRequests(seconds))
        }
    }
}
