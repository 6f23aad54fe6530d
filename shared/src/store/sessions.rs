//! Refresh-token families.

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValue, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use serde::{Deserialize, Serialize};

use super::{
    from_item, key, number, session_key, to_item, transaction_failed, unless_condition_failed, ReservedAttempt, Store,
    SERVICE,
};
use crate::error::DependencyError;

#[derive(Serialize, Deserialize)]
struct SessionItem {
    pk: String,
    user_id: String,
    token_hash: String,
    created_at: i64,
    /// Absolute end of the family's life; also the table's TTL attribute.
    expires_at: i64,
    generation: u64,
    /// The hash of the token the current one replaced, and when (for the reuse grace window).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    previous_hash: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rotated_at: Option<i64>,
    /// A random id of the call that made the last rotation: its own retry recognises it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rotation_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revoked_at: Option<i64>,
}

/// A new refresh-token family, created at login.
pub struct NewSession<'a> {
    pub family_id: &'a str,
    pub user_id: &'a str,
    pub token_hash: &'a str,
    pub now: i64,
    pub expires_at: i64,
}

/// A refresh token as the store sees it: its family, its hash and its successor's hash.
pub struct PresentedToken<'a> {
    pub family_id: &'a str,
    pub hash: &'a str,
    pub successor_hash: &'a str,
}

/// The outcome of presenting a refresh token.
#[derive(Debug, PartialEq, Eq)]
pub enum Rotation {
    /// The token was the family's current one; its successor is now.
    Rotated {
        user_id: String,
        expires_at: i64,
    },
    /// The token is the one the current token replaced, within the grace window: the client
    /// gets the current token (the presented one's successor) again.
    Repeated {
        user_id: String,
        expires_at: i64,
    },
    /// No such family.
    Unknown,
    Expired,
    Revoked,
    /// The family exists but the token is an older one, or the one just replaced after the
    /// grace window: a replay.
    Reused {
        user_id: String,
    },
}

impl Store {
    /// Starts a refresh-token family and, in the same transaction, clears the failure record of
    /// the attempt that earned it: a success resets the login throttle.
    ///
    /// Safe for the SDK to retry after a lost answer: the transaction carries an idempotency
    /// token (the SDK fills in `ClientRequestToken`).
    pub async fn create_session(
        &self,
        session: NewSession<'_>,
        attempt: &ReservedAttempt,
    ) -> Result<(), DependencyError> {
        let item = to_item(&SessionItem {
            pk: session_key(session.family_id),
            user_id: session.user_id.to_owned(),
            token_hash: session.token_hash.to_owned(),
            created_at: session.now,
            expires_at: session.expires_at,
            generation: 0,
            previous_hash: None,
            rotated_at: None,
            rotation_id: None,
            revoked_at: None,
        })?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| DependencyError::failed(SERVICE, e))?;
        self.client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(TransactWriteItem::builder().update(self.clear_failures(attempt, session.now)?).build())
            .send()
            .await
            .map(|_| ())
            .map_err(transaction_failed)
    }

    /// Replaces the family's current token hash by the presented token's successor in one
    /// conditional update, so that of any number of concurrent presentations exactly one
    /// rotates. Expiry is checked here too, since DynamoDB deletes expired items lazily.
    ///
    /// When the condition fails, the item as it was tells what happened, with no second call:
    /// this call's own rotation, seen by an SDK retry after a lost answer (`rotation_id`); the
    /// token just replaced, presented again within `grace` seconds (`Repeated`); or a replay.
    pub async fn rotate_session(
        &self,
        token: PresentedToken<'_>,
        grace: i64,
        now: i64,
    ) -> Result<Rotation, DependencyError> {
        let rotation_id = uuid::Uuid::new_v4().simple().to_string();
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(session_key(token.family_id))))
            .update_expression(
                "SET token_hash = :new, previous_hash = :presented, generation = generation + :one, \
                 rotated_at = :now, rotation_id = :rotation",
            )
            .condition_expression("token_hash = :presented AND expires_at > :now AND attribute_not_exists(revoked_at)")
            .expression_attribute_values(":new", AttributeValue::S(token.successor_hash.to_owned()))
            .expression_attribute_values(":presented", AttributeValue::S(token.hash.to_owned()))
            .expression_attribute_values(":now", number(now))
            .expression_attribute_values(":one", number(1))
            .expression_attribute_values(":rotation", AttributeValue::S(rotation_id.clone()))
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
                // `grace > 0` on its own: a rotation stamped with a later second than our `now`
                // (a concurrent request's clock) gives a negative age, which is below any window.
                let just_replaced = grace > 0
                    && old.previous_hash.as_deref() == Some(token.hash)
                    && old.token_hash == token.successor_hash
                    && old.rotated_at.is_some_and(|at| now - at < grace);
                Ok(if old.revoked_at.is_some() {
                    Rotation::Revoked
                } else if old.rotation_id.as_deref() == Some(rotation_id.as_str()) {
                    Rotation::Rotated { user_id: old.user_id, expires_at: old.expires_at }
                } else if old.expires_at <= now {
                    Rotation::Expired
                } else if just_replaced {
                    Rotation::Repeated { user_id: old.user_id, expires_at: old.expires_at }
                } else {
                    Rotation::Reused { user_id: old.user_id }
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
