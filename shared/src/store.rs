//! The DynamoDB store: one table, keyed by `pk` alone, holding three kinds of item.
//!
//! | `pk`               | item          | written by            |
//! |--------------------|---------------|-----------------------|
//! | `USER#<id>`        | profile       | register              |
//! | `EMAIL#<email>`    | credentials: user id + password hash; makes the email unique | register, login (rehash) |
//! | `SESSION#<family>` | one refresh-token family: current token hash, owner, absolute expiry (TTL) | login, refresh |
//!
//! Each operation is the fewest sequential calls that keep it atomic: register is one
//! transaction, login one read and one conditional put, refresh one conditional update.

use std::collections::HashMap;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use aws_sdk_dynamodb::Client;
use serde::{Deserialize, Serialize};

use crate::domain::Email;
use crate::error::DependencyError;

const SERVICE: &str = "DynamoDB";
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

#[derive(Serialize, Deserialize)]
struct SessionItem {
    pk: String,
    user_id: String,
    token_hash: String,
    created_at: i64,
    /// Absolute end of the family's life; also the table's TTL attribute.
    expires_at: i64,
    generation: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revoked_at: Option<i64>,
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

/// A new refresh-token family, created at login.
pub struct NewSession<'a> {
    pub family_id: &'a str,
    pub user_id: &'a str,
    pub token_hash: &'a str,
    pub now: i64,
    pub expires_at: i64,
}

/// The outcome of presenting a refresh token.
#[derive(Debug, PartialEq, Eq)]
pub enum Rotation {
    Rotated {
        user_id: String,
        expires_at: i64,
    },
    /// No such family.
    Unknown,
    Expired,
    Revoked,
    /// The family exists but the token is not its current one: an earlier token was replayed.
    Reused,
}

#[derive(Clone)]
pub struct Store {
    client: Client,
    table: String,
}

fn user_key(id: &str) -> String {
    format!("USER#{id}")
}
fn email_key(email: &Email) -> String {
    format!("EMAIL#{email}")
}
fn session_key(family_id: &str) -> String {
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

impl Store {
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

    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self { client, table: table.into() }
    }

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
            let reasons: Vec<String> = error
                .as_service_error()
                .and_then(|e| match e {
                    TransactWriteItemsError::TransactionCanceledException(e) => Some(e),
                    _ => None,
                })
                .map(|e| e.cancellation_reasons().iter().map(|r| r.code().unwrap_or_default().to_owned()).collect())
                .unwrap_or_default();
            match reasons.get(1).map(String::as_str) {
                Some("ConditionalCheckFailed") => return Ok(Registration::EmailTaken),
                _ if reasons.iter().any(|r| r == "TransactionConflict") && attempt < TRANSACTION_ATTEMPTS => {
                    tokio::time::sleep(std::time::Duration::from_millis(25 * u64::from(attempt))).await;
                }
                _ => return Err(DependencyError::from_sdk(SERVICE, error)),
            }
        }
        unreachable!("the last attempt always returns")
    }

    /// The user id and password hash for an email, if registered (strongly consistent, so a
    /// login right after sign-up works).
    pub async fn credentials(&self, email: &Email) -> Result<Option<Credentials>, DependencyError> {
        let item: Option<CredentialsItem> = self.get(email_key(email)).await?;
        Ok(item.map(|item| Credentials { user_id: item.user_id, password_hash: item.password_hash }))
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

    pub async fn user(&self, id: &str) -> Result<Option<User>, DependencyError> {
        let item: Option<UserItem> = self.get(user_key(id)).await?;
        Ok(item.map(|item| item.user))
    }

    /// Starts a refresh-token family.
    pub async fn create_session(&self, session: NewSession<'_>) -> Result<(), DependencyError> {
        let item = to_item(&SessionItem {
            pk: session_key(session.family_id),
            user_id: session.user_id.to_owned(),
            token_hash: session.token_hash.to_owned(),
            created_at: session.now,
            expires_at: session.expires_at,
            generation: 0,
            revoked_at: None,
        })?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map(|_| ())
            .map_err(|e| DependencyError::from_sdk(SERVICE, e))
    }

    /// Replaces the family's current token hash `presented` by `replacement` in one conditional
    /// update, so that of any number of concurrent presentations exactly one succeeds. Expiry is
    /// checked here too, since DynamoDB deletes expired items lazily.
    pub async fn rotate_session(
        &self,
        family_id: &str,
        presented: &str,
        replacement: &str,
        now: i64,
    ) -> Result<Rotation, DependencyError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(session_key(family_id))))
            .update_expression("SET token_hash = :new, generation = generation + :one, rotated_at = :now")
            .condition_expression("token_hash = :presented AND expires_at > :now AND attribute_not_exists(revoked_at)")
            .expression_attribute_values(":new", AttributeValue::S(replacement.to_owned()))
            .expression_attribute_values(":presented", AttributeValue::S(presented.to_owned()))
            .expression_attribute_values(":now", number(now))
            .expression_attribute_values(":one", number(1))
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(output) => {
                let item: SessionItem = from_item(output.attributes.unwrap_or_default())?;
                Ok(Rotation::Rotated { user_id: item.user_id, expires_at: item.expires_at })
            }
            Err(error) => {
                let Some(UpdateItemError::ConditionalCheckFailedException(failed)) = error.as_service_error() else {
                    return Err(DependencyError::from_sdk(SERVICE, error));
                };
                let Some(old) = failed.item().cloned() else { return Ok(Rotation::Unknown) };
                let old: SessionItem = from_item(old)?;
                Ok(if old.revoked_at.is_some() {
                    Rotation::Revoked
                } else if old.expires_at <= now {
                    Rotation::Expired
                } else {
                    Rotation::Reused
                })
            }
        }
    }

    /// Revokes a whole family (reuse detected): no token of it will rotate again.
    pub async fn revoke_session(&self, family_id: &str, now: i64) -> Result<(), DependencyError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(session_key(family_id))))
            .update_expression("SET revoked_at = :now")
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(revoked_at)")
            .expression_attribute_values(":now", number(now))
            .send()
            .await;
        unless_condition_failed(result)
    }
}
