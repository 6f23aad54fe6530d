//! Users and their credentials.

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};

use super::outbox::{NewMail, NewMailToken};
use super::{
    cancellation_reasons, email_key, key, to_item, transaction_failed, unless_condition_failed, user_key, Store,
    SERVICE,
};
use crate::domain::{Email, PasswordHash, UserId};
use crate::error::DependencyError;
use crate::mail::Purpose;

/// Attempts at a registration transaction that DynamoDB cancelled because a concurrent
/// transaction touched the same email (`TransactionConflict`).
const TRANSACTION_ATTEMPTS: u32 = 3;

/// A user's public profile, as stored and as returned by `/register` and `/users/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: UserId,
    pub email: String,
    pub name: String,
    pub created_at: String,
    /// Whether the owner of `email` proved it by following a link mailed to it. Accounts stored
    /// before the flag existed read as unverified.
    #[serde(default)]
    pub email_verified: bool,
}

#[derive(Serialize, Deserialize)]
struct UserItem {
    pk: String,
    #[serde(flatten)]
    user: User,
    /// Moves whenever every refresh-token family of the user is revoked (see `sessions.rs`).
    #[serde(default)]
    session_epoch: u32,
    /// Per purpose, moves whenever a mailed token of that purpose is used (see `outbox.rs`).
    #[serde(flatten)]
    generations: Generations,
}

/// The user's generation of each mail-token purpose.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
pub struct Generations {
    #[serde(default, rename = "gen_verify_email")]
    pub verify_email: u32,
    #[serde(default, rename = "gen_change_email")]
    pub change_email: u32,
    #[serde(default, rename = "gen_reset_password")]
    pub reset_password: u32,
}

impl Generations {
    pub fn of(&self, purpose: Purpose) -> u32 {
        match purpose {
            Purpose::VerifyEmail => self.verify_email,
            Purpose::ChangeEmail => self.change_email,
            Purpose::ResetPassword => self.reset_password,
        }
    }

    /// The attribute holding a purpose's generation.
    pub fn attribute(purpose: Purpose) -> &'static str {
        match purpose {
            Purpose::VerifyEmail => "gen_verify_email",
            Purpose::ChangeEmail => "gen_change_email",
            Purpose::ResetPassword => "gen_reset_password",
        }
    }
}

/// The `EMAIL#` item: what login needs, in the one item it can find by email. `email_verified`
/// and `session_epoch` repeat the `USER#` item's and are always written with them.
#[derive(Serialize, Deserialize)]
struct CredentialsItem {
    pk: String,
    user_id: UserId,
    password_hash: String,
    #[serde(default)]
    email_verified: bool,
    #[serde(default)]
    session_epoch: u32,
}

/// What login needs to check a password and start a session.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user_id: UserId,
    pub password_hash: PasswordHash,
    pub email_verified: bool,
    pub session_epoch: u32,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Registration {
    Created,
    EmailTaken,
}

impl Store {
    /// Writes the profile, the credentials item, the verification mail and its token's hash in
    /// one transaction; the email item's `attribute_not_exists` condition makes the email unique
    /// even under concurrent sign-ups.
    pub async fn register(
        &self,
        user: &User,
        email: &Email,
        password_hash: &PasswordHash,
        verification: (&NewMail<'_>, &NewMailToken<'_>),
    ) -> Result<Registration, DependencyError> {
        let put = |item, what| {
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map(|put| TransactWriteItem::builder().put(put).build())
                .map_err(|e| DependencyError::failed(SERVICE, format!("building {what} put: {e}")))
        };
        let user_item = UserItem {
            pk: user_key(user.id),
            user: user.clone(),
            session_epoch: 0,
            generations: Generations::default(),
        };
        let user_put = put(to_item(&user_item)?, "user")?;
        let email_put = put(
            to_item(&CredentialsItem {
                pk: email_key(email),
                user_id: user.id,
                password_hash: password_hash.as_str().to_owned(),
                email_verified: user.email_verified,
                session_epoch: 0,
            })?,
            "credentials",
        )?;

        for attempt in 1..=TRANSACTION_ATTEMPTS {
            let result = self
                .client
                .transact_write_items()
                .transact_items(user_put.clone())
                .transact_items(email_put.clone())
                .transact_items(TransactWriteItem::builder().put(self.outbox_put(verification.0)?).build())
                .transact_items(TransactWriteItem::builder().put(self.token_put(verification.1)?).build())
                .send()
                .await;
            let Err(error) = result else { return Ok(Registration::Created) };
            let reasons = cancellation_reasons(&error);
            match reasons.get(1).map(String::as_str) {
                Some("ConditionalCheckFailed") => return Ok(Registration::EmailTaken),
                _ if reasons.iter().any(|r| r == "TransactionConflict") && attempt < TRANSACTION_ATTEMPTS => {
                    tokio::time::sleep(std::time::Duration::from_millis(25 * u64::from(attempt))).await;
                }
                _ => return Err(transaction_failed(error)),
            }
        }
        unreachable!("the last attempt always returns")
    }

    /// Replaces a password hash that used weaker parameters, unless it changed meanwhile.
    pub async fn upgrade_password_hash(
        &self,
        email: &Email,
        old_hash: &PasswordHash,
        new_hash: &PasswordHash,
    ) -> Result<(), DependencyError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(email_key(email))))
            .update_expression("SET password_hash = :new")
            .condition_expression("password_hash = :old")
            .expression_attribute_values(":new", AttributeValue::S(new_hash.as_str().to_owned()))
            .expression_attribute_values(":old", AttributeValue::S(old_hash.as_str().to_owned()))
            .send()
            .await;
        unless_condition_failed(result)
    }

    /// The credentials of an email, if it is registered (a strongly consistent read).
    pub async fn credentials(&self, email: &Email) -> Result<Option<Credentials>, DependencyError> {
        let item: Option<CredentialsItem> = self.get(email_key(email)).await?;
        Ok(item.map(|item| Credentials {
            user_id: item.user_id,
            password_hash: PasswordHash::new(item.password_hash),
            email_verified: item.email_verified,
            session_epoch: item.session_epoch,
        }))
    }

    pub async fn user(&self, id: UserId) -> Result<Option<User>, DependencyError> {
        let item: Option<UserItem> = self.get(user_key(id)).await?;
        Ok(item.map(|item| item.user))
    }

    /// Revokes every refresh-token family of the user at once, however many there are: moves
    /// the session epoch on the `USER#` and `EMAIL#` items together (refresh requires a family's
    /// epoch to be the user's). `false` when there is no such user.
    pub async fn revoke_all_sessions(&self, user_id: UserId) -> Result<bool, DependencyError> {
        for attempt in 1..=TRANSACTION_ATTEMPTS {
            let Some(user) = self.user(user_id).await? else { return Ok(false) };
            let email = Email::stored(&user.email);
            let result = self
                .client
                .transact_write_items()
                .transact_items(self.epoch_bump(user_key(user_id), "email = :email", ":email", &user.email)?)
                .transact_items(self.epoch_bump(email_key(&email), "user_id = :user", ":user", &user_id.to_string())?)
                .send()
                .await;
            let Err(error) = result else { return Ok(true) };
            let reasons = cancellation_reasons(&error);
            let changed = reasons.iter().any(|r| r == "ConditionalCheckFailed");
            let conflict = reasons.iter().any(|r| r == "TransactionConflict");
            // A changed email (or a deleted user) is read again; a conflict is retried.
            if !(changed || conflict) || attempt == TRANSACTION_ATTEMPTS {
                return Err(transaction_failed(error));
            }
            tokio::time::sleep(std::time::Duration::from_millis(25 * u64::from(attempt))).await;
        }
        unreachable!("the last attempt always returns")
    }

    /// `ADD session_epoch 1` on `pk`, if `condition` (naming `placeholder` = `value`) holds.
    fn epoch_bump(
        &self,
        pk: String,
        condition: &str,
        placeholder: &str,
        value: &str,
    ) -> Result<TransactWriteItem, DependencyError> {
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(pk)))
            .update_expression("ADD session_epoch :one")
            .condition_expression(condition)
            .expression_attribute_values(":one", AttributeValue::N("1".into()))
            .expression_attribute_values(placeholder, AttributeValue::S(value.to_owned()))
            .build()
            .map_err(|e| DependencyError::failed(SERVICE, e))?;
        Ok(TransactWriteItem::builder().update(update).build())
    }

    /// The user's mail-token generations, `None` when there is no such user.
    pub async fn generations(&self, id: UserId) -> Result<Option<Generations>, DependencyError> {
        let item: Option<UserItem> = self.get(user_key(id)).await?;
        Ok(item.map(|item| item.generations))
    }
}
