//! Refresh-token families.

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, ConditionCheck, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update,
};
use serde::{Deserialize, Serialize};

use super::{
    cancellation_reasons, from_item, key, number, session_key, to_item, transaction_failed, unless_condition_failed,
    user_key, ReservedAttempt, Store, SERVICE,
};
use crate::domain::{TokenHash, UserId};
use crate::error::DependencyError;
use crate::tokens::Family;

/// Attempts at a rotation that DynamoDB cancelled because a concurrent transaction touched the
/// family (`TransactionConflict`).
const ROTATION_ATTEMPTS: u32 = 3;

#[derive(Serialize, Deserialize)]
struct SessionItem {
    pk: String,
    user_id: UserId,
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
    #[serde(default, skip_serializing_if = "Option::is_none")]
    revoked_at: Option<i64>,
}

/// A new refresh-token family, created at login.
pub struct NewSession<'a> {
    pub family: &'a Family,
    pub token_hash: &'a TokenHash,
    pub now: i64,
}

/// A refresh token as the store sees it: its family, its hash and its successor's hash.
pub struct PresentedToken<'a> {
    pub family: &'a Family,
    pub hash: &'a TokenHash,
    pub successor_hash: &'a TokenHash,
}

/// The outcome of presenting a refresh token.
#[derive(Debug, PartialEq, Eq)]
pub enum Rotation {
    /// The token was the family's current one; its successor is now.
    Rotated,
    /// The token is the one the current token replaced, within the grace window: the client
    /// gets the current token (the presented one's successor) again.
    Repeated,
    /// No such family.
    Unknown,
    Expired,
    /// The family was revoked, or every family of its user was (or the user is gone).
    Revoked,
    /// The family exists but the token is an older one, or the one just replaced after the
    /// grace window: a replay.
    Reused,
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
        let put = self.session_put(&session)?;
        self.client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().put(put).build())
            .transact_items(TransactWriteItem::builder().update(self.clear_failures(attempt, session.now)?).build())
            .send()
            .await
            .map(|_| ())
            .map_err(transaction_failed)
    }

    /// The `Put` of a new family's item, for a transaction.
    pub(super) fn session_put(&self, session: &NewSession<'_>) -> Result<Put, DependencyError> {
        let item = to_item(&SessionItem {
            pk: session_key(&session.family.id()),
            user_id: session.family.user_id,
            token_hash: session.token_hash.as_str().to_owned(),
            created_at: session.now,
            expires_at: session.family.expires_at,
            generation: 0,
            previous_hash: None,
            rotated_at: None,
            revoked_at: None,
        })?;
        Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(|e| DependencyError::failed(SERVICE, e))
    }

    /// Replaces the family's current token hash by the presented token's successor, in one
    /// transaction that also checks the family's user: still there, and with the session epoch
    /// the family began in (no "log out everywhere" since). Of any number of concurrent
    /// presentations exactly one rotates. Expiry is checked here too, since DynamoDB deletes
    /// expired items lazily.
    ///
    /// When the family's condition fails, the item as it was tells what happened, with no second
    /// call: the token just replaced, presented again within `grace` seconds (`Repeated`, after
    /// one read that makes sure the user's sessions still stand), or a replay. An SDK retry
    /// after a lost answer is recognised by DynamoDB itself (`ClientRequestToken`).
    pub async fn rotate_session(
        &self,
        token: PresentedToken<'_>,
        grace: i64,
        now: i64,
    ) -> Result<Rotation, DependencyError> {
        let family = token.family;
        let rotate = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(session_key(&family.id()))))
            .update_expression(
                "SET token_hash = :new, previous_hash = :presented, generation = generation + :one, rotated_at = :now",
            )
            .condition_expression("token_hash = :presented AND expires_at > :now AND attribute_not_exists(revoked_at)")
            .expression_attribute_values(":new", AttributeValue::S(token.successor_hash.as_str().to_owned()))
            .expression_attribute_values(":presented", AttributeValue::S(token.hash.as_str().to_owned()))
            .expression_attribute_values(":now", number(now))
            .expression_attribute_values(":one", number(1))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(|e| DependencyError::failed(SERVICE, e))?;
        let check = self.sessions_stand(family)?;
        // Concurrent refreshes of one family are concurrent transactions on its item: DynamoDB
        // cancels the losers with `TransactionConflict`. Tried again, they see the rotation
        // (a repeat within the grace window, else a replay), as single updates would have.
        let mut attempt = 1;
        let error = loop {
            let result = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().update(rotate.clone()).build())
                .transact_items(TransactWriteItem::builder().condition_check(check.clone()).build())
                .send()
                .await;
            let Err(error) = result else { return Ok(Rotation::Rotated) };
            let conflict = cancellation_reasons(&error).iter().any(|r| r == "TransactionConflict");
            if !conflict || attempt == ROTATION_ATTEMPTS {
                break error;
            }
            tokio::time::sleep(std::time::Duration::from_millis(25 * u64::from(attempt))).await;
            attempt += 1;
        };
        let reasons = match error.as_service_error() {
            Some(TransactWriteItemsError::TransactionCanceledException(e)) => e.cancellation_reasons().to_vec(),
            _ => Vec::new(),
        };
        let failed = |index: usize| reasons.get(index).and_then(|r| r.code()) == Some("ConditionalCheckFailed");
        if failed(1) {
            return Ok(Rotation::Revoked);
        }
        if !failed(0) {
            return Err(transaction_failed(error));
        }
        let Some(old) = reasons[0].item().cloned() else { return Ok(Rotation::Unknown) };
        let old: SessionItem = from_item(old)?;
        // `grace > 0` on its own: a rotation stamped with a later second than our `now` (a
        // concurrent request's clock) gives a negative age, which is below any window.
        let just_replaced = grace > 0
            && old.previous_hash.as_deref() == Some(token.hash.as_str())
            && old.token_hash == token.successor_hash.as_str()
            && old.rotated_at.is_some_and(|at| now - at < grace);
        Ok(if old.revoked_at.is_some() {
            Rotation::Revoked
        } else if old.expires_at <= now {
            Rotation::Expired
        } else if just_replaced {
            // The transaction stopped at the family's condition, so the user's may not have been
            // evaluated: read it before handing out the current token again.
            if self.epoch_of(family.user_id).await? == Some(family.epoch) {
                Rotation::Repeated
            } else {
                Rotation::Revoked
            }
        } else {
            Rotation::Reused
        })
    }

    /// A transaction's check that `family`'s user exists and has not revoked every family since
    /// it began. Accounts stored before the epoch existed have none: epoch 0.
    pub(super) fn sessions_stand(&self, family: &Family) -> Result<ConditionCheck, DependencyError> {
        let condition = if family.epoch == 0 {
            "attribute_exists(pk) AND (attribute_not_exists(session_epoch) OR session_epoch = :epoch)"
        } else {
            "session_epoch = :epoch"
        };
        ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(user_key(family.user_id))))
            .condition_expression(condition)
            .expression_attribute_values(":epoch", number(i64::from(family.epoch)))
            .build()
            .map_err(|e| DependencyError::failed(SERVICE, e))
    }

    /// The user's session epoch, `None` when there is no such user (a strongly consistent read).
    async fn epoch_of(&self, user_id: UserId) -> Result<Option<u32>, DependencyError> {
        #[derive(Deserialize)]
        struct Epoch {
            #[serde(default)]
            session_epoch: u32,
        }
        let item: Option<Epoch> = self.get(user_key(user_id)).await?;
        Ok(item.map(|item| item.session_epoch))
    }

    /// Revokes a whole family (reuse detected, logout): no token of it will rotate again.
    pub async fn revoke_session(&self, family: &Family, now: i64) -> Result<(), DependencyError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(session_key(&family.id()))))
            .update_expression("SET revoked_at = :now")
            .condition_expression("attribute_exists(pk) AND attribute_not_exists(revoked_at)")
            .expression_attribute_values(":now", number(now))
            .send()
            .await;
        unless_condition_failed(result)
    }
}

/// A refresh token presented to log out: its family and its hash.
pub struct LoggingOut<'a> {
    pub family: &'a Family,
    pub hash: &'a TokenHash,
}

impl Store {
    /// Revokes the family of a token presented to log out, if the token is the family's current
    /// one or the one it just replaced (within `grace` seconds, as refresh would repeat it): one
    /// conditional update. Any other token changes nothing (RFC 7009: the answer is the same).
    /// Returns whether a family was revoked.
    pub async fn end_session(&self, token: LoggingOut<'_>, grace: i64, now: i64) -> Result<bool, DependencyError> {
        let condition = if grace > 0 {
            "attribute_not_exists(revoked_at) AND (token_hash = :presented OR \
             (previous_hash = :presented AND rotated_at > :window))"
        } else {
            "attribute_not_exists(revoked_at) AND token_hash = :presented"
        };
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(session_key(&token.family.id()))))
            .update_expression("SET revoked_at = :now")
            .condition_expression(condition)
            .expression_attribute_values(":now", number(now))
            .expression_attribute_values(":presented", AttributeValue::S(token.hash.as_str().to_owned()));
        if grace > 0 {
            request = request.expression_attribute_values(":window", number(now - grace));
        }
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e) if e.as_service_error().is_some_and(|e| e.is_conditional_check_failed_exception()) => Ok(false),
            Err(e) => Err(DependencyError::from_sdk(SERVICE, e)),
        }
    }
}
