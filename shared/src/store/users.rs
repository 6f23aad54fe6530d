//! Users and their credentials.

use aws_sdk_dynamodb::types::{AttributeValue, Put, TransactWriteItem};
use serde::{Deserialize, Serialize};

use super::{
    cancellation_reasons, email_key, key, to_item, transaction_failed, unless_condition_failed, user_key, Store,
    SERVICE,
};
use crate::domain::Email;
use crate::error::DependencyError;

/// Attempts at a registration transaction that DynamoDB cancelled because a concurrent
/// transaction touched the same email (`TransactionConflict`).
const TRANSACTION_ATTEMPTS: u32 = 3;

/// A user's public profile, as stored and as returned by `/register` and `/users/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: String,
    pub created_at: String,
}

#[derive(Serialize, Deserialize)]
struct UserItem {
    pk: String,
    #[serde(flatten)]
    user: User,
}

#[derive(Serialize, Deserialize)]
struct CredentialsItem {
    pk: String,
    user_id: String,
    password_hash: String,
}

/// What login needs to check a password.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user_id: String,
    pub password_hash: String,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Registration {
    Created,
    EmailTaken,
}

impl Store {
    /// Writes the profile and the credentials item in one transaction; the email item's
    /// `attribute_not_exists` condition makes the email unique even under concurrent sign-ups.
    pub async fn register(
        &self,
        user: &User,
        email: &Email,
        password_hash: &str,
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
        let user_put = put(to_item(&UserItem { pk: user_key(&user.id), user: user.clone() })?, "user")?;
        let email_put = put(
            to_item(&CredentialsItem {
                pk: email_key(email),
                user_id: user.id.clone(),
                password_hash: password_hash.to_owned(),
            })?,
            "credentials",
        )?;

        for attempt in 1..=TRANSACTION_ATTEMPTS {
            let result = self
                .client
                .transact_write_items()
                .transact_items(user_put.clone())
                .transact_items(email_put.clone())
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
        old_hash: &str,
        new_hash: &str,
    ) -> Result<(), DependencyError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(email_key(email))))
            .update_expression("SET password_hash = :new")
            .condition_expression("password_hash = :old")
            .expression_attribute_values(":new", AttributeValue::S(new_hash.to_owned()))
            .expression_attribute_values(":old", AttributeValue::S(old_hash.to_owned()))
            .send()
            .await;
        unless_condition_failed(result)
    }

    /// The credentials of an email, if it is registered (a strongly consistent read).
    pub async fn credentials(&self, email: &Email) -> Result<Option<Credentials>, DependencyError> {
        let item: Option<CredentialsItem> = self.get(email_key(email)).await?;
        Ok(item.map(|item| Credentials { user_id: item.user_id, password_hash: item.password_hash }))
    }

    pub async fn user(&self, id: &str) -> Result<Option<User>, DependencyError> {
        let item: Option<UserItem> = self.get(user_key(id)).await?;
        Ok(item.map(|item| item.user))
    }
}
