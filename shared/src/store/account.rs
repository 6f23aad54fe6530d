//! The account's life after sign-up, each change one transaction: using a mailed link (verify an
//! email, confirm a new one, reset the password), changing the password, asking for an email
//! change, and deleting the account.
//!
//! Every change that must end the user's sessions moves the session epoch on the `USER#` and
//! `EMAIL#` items together (see `sessions.rs`); every use of a mailed token deletes it and moves
//! the user's generation for its purpose, so no other token of that purpose works any more.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, ConditionCheck, Delete, Put, TransactWriteItem, Update};

use super::outbox::{token_key, MailTokenItem, NewMail, NewMailToken};
use super::sessions::NewSession;
use super::users::Generations;
use super::{
    cancellation_reasons, email_key, key, number, transaction_failed, user_key, ReservedAttempt, Store, SERVICE,
};
use crate::domain::{Email, PasswordHash, TokenHash, UserId};
use crate::error::DependencyError;
use crate::mail::Purpose;
use crate::throttle::FailureKey;

/// The outcome of using a mailed token.
#[derive(Debug, PartialEq, Eq)]
pub enum TokenUse {
    Done,
    /// Used meanwhile, superseded by the use of another token of its purpose, or no longer about
    /// the account's address: a `401` like an unknown token.
    Stale,
    /// An email change whose new address was registered meanwhile.
    EmailTaken,
}

/// A transaction being put together: its items in order, so a cancellation reason names one.
#[derive(Default)]
struct Tx(Vec<TransactWriteItem>);

impl Tx {
    fn put(mut self, put: Put) -> Self {
        self.0.push(TransactWriteItem::builder().put(put).build());
        self
    }
    fn update(mut self, update: Update) -> Self {
        self.0.push(TransactWriteItem::builder().update(update).build());
        self
    }
    fn delete(mut self, delete: Delete) -> Self {
        self.0.push(TransactWriteItem::builder().delete(delete).build());
        self
    }
    fn check(mut self, check: ConditionCheck) -> Self {
        self.0.push(TransactWriteItem::builder().condition_check(check).build());
        self
    }
}

/// The codes of a cancelled transaction, one per item (`None` for an item that was fine).
enum Sent {
    Ok,
    Cancelled(Vec<String>),
}

fn built<T>(result: Result<T, aws_sdk_dynamodb::error::BuildError>) -> Result<T, DependencyError> {
    result.map_err(|e| DependencyError::failed(SERVICE, e))
}

fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

/// `name = :value`, or for generation 0 also an item written before the attribute existed.
fn generation_condition(attribute: &str, generation: u32) -> String {
    if generation == 0 {
        format!("(attribute_not_exists({attribute}) OR {attribute} = :gen)")
    } else {
        format!("{attribute} = :gen")
    }
}

impl Store {
    async fn send(&self, tx: Tx) -> Result<Sent, DependencyError> {
        match self.client.transact_write_items().set_transact_items(Some(tx.0)).send().await {
            Ok(_) => Ok(Sent::Ok),
            Err(error) => {
                let reasons = cancellation_reasons(&error);
                if reasons.iter().any(|r| r == "ConditionalCheckFailed") {
                    Ok(Sent::Cancelled(reasons))
                } else {
                    Err(transaction_failed(error))
                }
            }
        }
    }

    fn delete_token(&self, hash: &TokenHash) -> Result<Delete, DependencyError> {
        built(
            Delete::builder()
                .table_name(&self.table)
                .set_key(Some(key(token_key(hash))))
                .condition_expression("attribute_exists(pk)")
                .build(),
        )
    }

    /// The `USER#` update of a token's use: its purpose's generation moves, if it is still the
    /// token's and the account's address is still `email`; plus `set` (more `SET` clauses).
    fn use_on_user(
        &self,
        token: &MailTokenItem,
        email: &str,
        set: &str,
        values: HashMap<String, AttributeValue>,
    ) -> Result<Update, DependencyError> {
        let attribute = Generations::attribute(token.purpose);
        let mut values = values;
        values.insert(":gen".into(), number(i64::from(token.generation)));
        values.insert(":next".into(), number(i64::from(token.generation) + 1));
        values.insert(":email".into(), s(email));
        built(
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(user_key(token.user_id))))
                .update_expression(format!("SET {attribute} = :next{set}"))
                .condition_expression(format!(
                    "email = :email AND {}",
                    generation_condition(attribute, token.generation)
                ))
                .set_expression_attribute_values(Some(values))
                .build(),
        )
    }

    /// Marks the account's email verified (a sign-up link, or one sent again).
    pub async fn verify_email(&self, hash: &TokenHash, token: &MailTokenItem) -> Result<TokenUse, DependencyError> {
        let verified = HashMap::from([(":yes".to_owned(), AttributeValue::Bool(true))]);
        let tx = Tx::default()
            .delete(self.delete_token(hash)?)
            .update(self.use_on_user(token, &token.email, ", email_verified = :yes", verified.clone())?)
            .update(self.on_email(
                &Email::stored(&token.email),
                token.user_id,
                "SET email_verified = :yes",
                verified,
            )?);
        Ok(match self.send(tx).await? {
            Sent::Ok => TokenUse::Done,
            Sent::Cancelled(_) => TokenUse::Stale,
        })
    }

    /// An update of the `EMAIL#` item of `email`, if it is still `user_id`'s.
    fn on_email(
        &self,
        email: &Email,
        user_id: UserId,
        expression: &str,
        values: HashMap<String, AttributeValue>,
    ) -> Result<Update, DependencyError> {
        let mut values = values;
        values.insert(":user".into(), s(user_id.to_string()));
        built(
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(email_key(email))))
                .update_expression(expression)
                .condition_expression("user_id = :user")
                .set_expression_attribute_values(Some(values))
                .build(),
        )
    }

    /// Moves the account to the token's new address: the new `EMAIL#` item (unique, atomically),
    /// the old one deleted, the profile updated, the address verified. Sessions go on.
    pub async fn change_email(&self, hash: &TokenHash, token: &MailTokenItem) -> Result<TokenUse, DependencyError> {
        let Some(previous) = token.previous_email.as_deref().map(Email::stored) else { return Ok(TokenUse::Stale) };
        #[derive(serde::Deserialize)]
        struct Old {
            user_id: UserId,
            password_hash: String,
            #[serde(default)]
            session_epoch: u32,
        }
        let Some(old): Option<Old> = self.get(email_key(&previous)).await? else { return Ok(TokenUse::Stale) };
        if old.user_id != token.user_id {
            return Ok(TokenUse::Stale);
        }
        let new = Email::stored(&token.email);
        let moved = HashMap::from([
            ("pk".to_owned(), s(email_key(&new))),
            ("user_id".to_owned(), s(token.user_id.to_string())),
            ("password_hash".to_owned(), s(old.password_hash.clone())),
            ("email_verified".to_owned(), AttributeValue::Bool(true)),
            ("session_epoch".to_owned(), number(i64::from(old.session_epoch))),
        ]);
        let values =
            HashMap::from([(":yes".to_owned(), AttributeValue::Bool(true)), (":new".to_owned(), s(new.as_str()))]);
        let tx = Tx::default()
            .delete(self.delete_token(hash)?)
            .update(self.use_on_user(token, previous.as_str(), ", email = :new, email_verified = :yes", values)?)
            .put(built(
                Put::builder()
                    .table_name(&self.table)
                    .set_item(Some(moved))
                    .condition_expression("attribute_not_exists(pk)")
                    .build(),
            )?)
            .delete(built(
                Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(email_key(&previous))))
                    // Nothing changed meanwhile (a password change or reset, a logout everywhere).
                    .condition_expression("user_id = :user AND password_hash = :hash AND session_epoch = :epoch")
                    .expression_attribute_values(":user", s(token.user_id.to_string()))
                    .expression_attribute_values(":hash", s(old.password_hash))
                    .expression_attribute_values(":epoch", number(i64::from(old.session_epoch)))
                    .build(),
            )?);
        Ok(match self.send(tx).await? {
            Sent::Ok => TokenUse::Done,
            Sent::Cancelled(reasons) if reasons.get(2).map(String::as_str) == Some("ConditionalCheckFailed") => {
                TokenUse::EmailTaken
            }
            Sent::Cancelled(_) => TokenUse::Stale,
        })
    }

    /// Sets a new password with a reset token: the password, the email verified (the link proved
    /// it), every session ended, the login throttle's record of the email cleared, and a notice
    /// mailed; in one transaction.
    pub async fn reset_password(
        &self,
        hash: &TokenHash,
        token: &MailTokenItem,
        new_hash: &PasswordHash,
        failures: &FailureKey,
        notice: &NewMail<'_>,
    ) -> Result<TokenUse, DependencyError> {
        let email = Email::stored(&token.email);
        let values = HashMap::from([(":yes".to_owned(), AttributeValue::Bool(true)), (":one".to_owned(), number(1))]);
        let mut credentials = values.clone();
        credentials.insert(":hash".into(), s(new_hash.as_str()));
        let tx = Tx::default()
            .delete(self.delete_token(hash)?)
            .update(self.use_on_user(
                token,
                email.as_str(),
                ", email_verified = :yes ADD session_epoch :one",
                values,
            )?)
            .update(self.on_email(
                &email,
                token.user_id,
                "SET password_hash = :hash, email_verified = :yes ADD session_epoch :one",
                credentials,
            )?)
            .delete(built(
                Delete::builder().table_name(&self.table).set_key(Some(key(failures.as_str().to_owned()))).build(),
            )?)
            .put(self.outbox_put(notice)?);
        Ok(match self.send(tx).await? {
            Sent::Ok => TokenUse::Done,
            Sent::Cancelled(_) => TokenUse::Stale,
        })
    }

    /// Replaces the password of a signed-in user who gave the current one: every earlier session
    /// ends (the epoch moves), `session` (of the new epoch) begins, the attempt is cleared and a
    /// notice mailed; in one transaction. `false` when the password or the sessions changed
    /// meanwhile (a concurrent change): nothing was written.
    pub async fn change_password(
        &self,
        change: PasswordChange<'_>,
        session: NewSession<'_>,
        notice: &NewMail<'_>,
    ) -> Result<bool, DependencyError> {
        let epoch = change.session_epoch;
        let epoch_condition = if epoch == 0 {
            "(attribute_not_exists(session_epoch) OR session_epoch = :epoch)"
        } else {
            "session_epoch = :epoch"
        };
        let credentials = built(
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(email_key(change.email))))
                .update_expression("SET password_hash = :new ADD session_epoch :one")
                .condition_expression(format!("user_id = :user AND password_hash = :old AND {epoch_condition}"))
                .expression_attribute_values(":new", s(change.new_hash.as_str()))
                .expression_attribute_values(":old", s(change.old_hash.as_str()))
                .expression_attribute_values(":user", s(change.user_id.to_string()))
                .expression_attribute_values(":epoch", number(i64::from(epoch)))
                .expression_attribute_values(":one", number(1))
                .build(),
        )?;
        let user = built(
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(user_key(change.user_id))))
                .update_expression("ADD session_epoch :one")
                .condition_expression(format!("attribute_exists(pk) AND {epoch_condition}"))
                .expression_attribute_values(":epoch", number(i64::from(epoch)))
                .expression_attribute_values(":one", number(1))
                .build(),
        )?;
        let tx = Tx::default()
            .update(credentials)
            .update(user)
            .put(self.session_put(&session)?)
            .update(self.clear_failures(change.attempt, session.now)?)
            .put(self.outbox_put(notice)?);
        Ok(matches!(self.send(tx).await?, Sent::Ok))
    }

    /// Writes an email change's request: the new address's token and both mails, and clears the
    /// attempt; the change itself waits for the link. `false` when the account's address is no
    /// longer `current` (nothing written).
    pub async fn request_email_change(
        &self,
        current: &Email,
        token: &NewMailToken<'_>,
        mails: [&NewMail<'_>; 2],
        attempt: &ReservedAttempt,
        now: i64,
    ) -> Result<bool, DependencyError> {
        let still = built(
            ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(key(user_key(token.user_id))))
                .condition_expression("email = :email")
                .expression_attribute_values(":email", s(current.as_str()))
                .build(),
        )?;
        let tx = Tx::default()
            .check(still)
            .put(self.token_put(token)?)
            .put(self.outbox_put(mails[0])?)
            .put(self.outbox_put(mails[1])?)
            .update(self.clear_failures(attempt, now)?);
        Ok(matches!(self.send(tx).await?, Sent::Ok))
    }

    /// Whether an address has an account (a strongly consistent read).
    pub async fn email_taken(&self, email: &Email) -> Result<bool, DependencyError> {
        #[derive(serde::Deserialize)]
        struct Exists {}
        Ok(self.get::<Exists>(email_key(email)).await?.is_some())
    }

    /// Deletes the account: the profile and the email item in one transaction (from then on no
    /// token of the user works and the address can register again), then every item the user
    /// owns that the `ByUser` index lists (sessions, mailed tokens, mail), and the email's login
    /// throttle record. `false` when the account's address is no longer `email`.
    pub async fn delete_account(
        &self,
        user_id: UserId,
        email: &Email,
        failures: &FailureKey,
    ) -> Result<bool, DependencyError> {
        let tx = Tx::default()
            .delete(built(
                Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(user_key(user_id))))
                    .condition_expression("email = :email")
                    .expression_attribute_values(":email", s(email.as_str()))
                    .build(),
            )?)
            .delete(built(
                Delete::builder()
                    .table_name(&self.table)
                    .set_key(Some(key(email_key(email))))
                    .condition_expression("user_id = :user")
                    .expression_attribute_values(":user", s(user_id.to_string()))
                    .build(),
            )?)
            .delete(built(
                Delete::builder().table_name(&self.table).set_key(Some(key(failures.as_str().to_owned()))).build(),
            )?);
        if !matches!(self.send(tx).await?, Sent::Ok) {
            return Ok(false);
        }
        self.delete_owned(user_id).await?;
        Ok(true)
    }

    /// Deletes the sessions, tokens and mail of a deleted user, found through the `ByUser` index
    /// (eventually consistent: an item written a moment before may be missed; it can do nothing
    /// without the `USER#` item, and its TTL removes it).
    async fn delete_owned(&self, user_id: UserId) -> Result<(), DependencyError> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .index_name(BY_USER_INDEX)
            .key_condition_expression("user_id = :user")
            .expression_attribute_values(":user", s(user_id.to_string()))
            .into_paginator()
            .items()
            .send();
        let mut keys = Vec::new();
        while let Some(item) = pages.next().await {
            let item = item.map_err(|e| DependencyError::from_sdk(SERVICE, e))?;
            if let Some(AttributeValue::S(pk)) = item.get("pk") {
                if ["SESSION#", "TOKEN#", "OUTBOX#"].iter().any(|prefix| pk.starts_with(prefix)) {
                    keys.push(pk.clone());
                }
            }
        }
        for chunk in keys.chunks(25) {
            let mut requests: Vec<_> = chunk
                .iter()
                .map(|pk| {
                    let delete = aws_sdk_dynamodb::types::DeleteRequest::builder().set_key(Some(key(pk.clone())));
                    built(delete.build())
                        .map(|d| aws_sdk_dynamodb::types::WriteRequest::builder().delete_request(d).build())
                })
                .collect::<Result<_, _>>()?;
            // BatchWriteItem may leave some writes unprocessed under load: send those again.
            for _ in 0..5 {
                let output = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(|e| DependencyError::from_sdk(SERVICE, e))?;
                requests = output.unprocessed_items.and_then(|mut left| left.remove(&self.table)).unwrap_or_default();
                if requests.is_empty() {
                    break;
                }
            }
        }
        Ok(())
    }
}

/// The global secondary index listing each user's items by `user_id` (keys only).
pub const BY_USER_INDEX: &str = "ByUser";

/// A password change: whose, from which hash (and session epoch) to which.
pub struct PasswordChange<'a> {
    pub user_id: UserId,
    pub email: &'a Email,
    pub old_hash: &'a PasswordHash,
    pub new_hash: &'a PasswordHash,
    pub session_epoch: u32,
    pub attempt: &'a ReservedAttempt,
}

/// Which purposes a token may be used for at `POST /email/verify`.
pub fn verifies_email(purpose: Purpose) -> bool {
    matches!(purpose, Purpose::VerifyEmail | Purpose::ChangeEmail)
}
