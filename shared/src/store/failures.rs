//! An email's failure record: every counter of the login throttle (see [`crate::throttle`]) in
//! one item, `FAILURES#<HMAC(email)>`, so that one conditional write can check and count an
//! attempt, and one write in a success's transaction can clear it.
//!
//! | attribute       | meaning |
//! |-----------------|---------|
//! | `total`         | consecutive failures of the account, all networks together |
//! | `c_<network>`   | consecutive failures from one network |
//! | `t_<network>`   | when that network last attempted (milliseconds) |
//! | `k_<network>`   | when the account last logged in successfully from that network |
//! | `expires_at`    | TTL: a year after the last attempt |
//!
//! Networks are top-level attributes, not a map, because DynamoDB cannot set a member of a map
//! that does not exist yet in the same write that creates the item.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{AttributeValue, ReturnValue, ReturnValuesOnConditionCheckFailure, Update};

use super::{key, number, Store, SERVICE};
use crate::error::DependencyError;
use crate::throttle::{
    delay_after, refusal, FailureKey, NetworkFailures, NetworkId, Refusal, ACCOUNT_FAILURE_LIMIT,
    FREE_FAILURES_PER_NETWORK, MAX_DELAY_FROM, RECORD_LIFETIME_SECONDS,
};

const TOTAL: &str = "total";

fn count_name(network: &NetworkId) -> String {
    format!("c_{}", network.as_str())
}
fn time_name(network: &NetworkId) -> String {
    format!("t_{}", network.as_str())
}
fn known_name(network: &NetworkId) -> String {
    format!("k_{}", network.as_str())
}

/// The networks named in a record by one kind of attribute (`c_`, `t_` or `k_`), with the values.
fn networks(item: &HashMap<String, AttributeValue>, prefix: &str) -> Vec<(NetworkId, i64)> {
    item.iter()
        .filter_map(|(name, value)| {
            let id = NetworkId::from_stored(name.strip_prefix(prefix)?)?;
            Some((id, value.as_n().ok()?.parse().ok()?))
        })
        .collect()
}

fn read_number(item: &HashMap<String, AttributeValue>, name: &str) -> i64 {
    item.get(name).and_then(|v| v.as_n().ok()).and_then(|n| n.parse().ok()).unwrap_or(0)
}

/// A reserved attempt: what a success must clear.
#[derive(Debug, Clone)]
pub struct ReservedAttempt {
    key: FailureKey,
    network: NetworkId,
    /// The account's consecutive failures, this attempt included.
    pub account_failures: u32,
    /// This network's consecutive failures, this attempt included.
    pub network_failures: u32,
    /// Networks with failure counters in the record.
    failed_networks: Vec<NetworkId>,
    /// Networks last successful before the known-network window: forgotten at the next success.
    stale_known: Vec<NetworkId>,
}

/// The outcome of asking to attempt a login.
#[derive(Debug, Clone)]
pub enum Attempt {
    /// Counted as a failure until a success clears it.
    Reserved(ReservedAttempt),
    Refused(Refusal),
}

impl Store {
    /// Counts an attempt of `network` on the record `key`, if the record allows one at `now_ms`
    /// (milliseconds since the epoch): one
    /// conditional update that checks the account's limit (unless the account logged in from
    /// this network since `known_since`) and this network's delay, and counts the attempt. Of
    /// any number of concurrent attempts, exactly as many pass as the rules allow.
    pub async fn reserve_attempt(
        &self,
        key: &FailureKey,
        network: &NetworkId,
        known_since: i64,
        now_ms: i64,
    ) -> Result<Attempt, DependencyError> {
        let now = now_ms.div_euclid(1000);
        // The network's delay as a condition: its count is below the free failures, or for each
        // count the delay that count imposes has passed since its last attempt.
        let mut delay_clauses = vec!["attribute_not_exists(#c)".to_owned(), "#c < :free".to_owned()];
        let mut request = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key_of(key)))
            .update_expression(
                "SET #total = if_not_exists(#total, :zero) + :one, #c = if_not_exists(#c, :zero) + :one, \
                 #t = :now_ms, expires_at = :expires",
            )
            .expression_attribute_names("#total", TOTAL)
            .expression_attribute_names("#c", count_name(network))
            .expression_attribute_names("#t", time_name(network))
            .expression_attribute_names("#k", known_name(network))
            .expression_attribute_values(":zero", number(0))
            .expression_attribute_values(":one", number(1))
            .expression_attribute_values(":now_ms", number(now_ms))
            .expression_attribute_values(":expires", number(now + RECORD_LIFETIME_SECONDS))
            .expression_attribute_values(":limit", number(i64::from(ACCOUNT_FAILURE_LIMIT)))
            .expression_attribute_values(":known", number(known_since))
            .expression_attribute_values(":free", number(i64::from(FREE_FAILURES_PER_NETWORK)));
        for count in FREE_FAILURES_PER_NETWORK..=MAX_DELAY_FROM {
            let comparison = if count == MAX_DELAY_FROM { ">=" } else { "=" };
            delay_clauses.push(format!("(#c {comparison} :n{count} AND #t <= :w{count})"));
            request = request
                .expression_attribute_values(format!(":n{count}"), number(i64::from(count)))
                .expression_attribute_values(format!(":w{count}"), number(now_ms - delay_after(count) * 1000));
        }
        let condition = format!(
            "(attribute_not_exists(#total) OR #total < :limit OR #k >= :known) AND ({})",
            delay_clauses.join(" OR ")
        );
        let result = request
            .condition_expression(condition)
            .return_values(ReturnValue::AllNew)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        let item = match result {
            Ok(output) => output.attributes.unwrap_or_default(),
            Err(error) => {
                let Some(UpdateItemError::ConditionalCheckFailedException(failed)) = error.as_service_error() else {
                    return Err(DependencyError::from_sdk(SERVICE, error));
                };
                let old = failed.item().cloned().unwrap_or_default();
                let counters = NetworkFailures {
                    failures: read_number(&old, &count_name(network)) as u32,
                    last_attempt_ms: read_number(&old, &time_name(network)),
                };
                let last_success =
                    old.contains_key(&known_name(network)).then(|| read_number(&old, &known_name(network)));
                let why = refusal(read_number(&old, TOTAL) as u32, counters, last_success, known_since, now_ms)
                    // The record refused what its state allows: only a clock step between the
                    // condition's values and `now` can do that; one second settles it.
                    .unwrap_or(Refusal::Delayed(1));
                return Ok(Attempt::Refused(why));
            }
        };
        Ok(Attempt::Reserved(ReservedAttempt {
            key: key.clone(),
            network: network.clone(),
            account_failures: read_number(&item, TOTAL) as u32,
            network_failures: read_number(&item, &count_name(network)) as u32,
            failed_networks: networks(&item, "c_").into_iter().map(|(id, _)| id).collect(),
            stale_known: networks(&item, "k_")
                .into_iter()
                .filter(|(id, at)| *at < known_since && id != network)
                .map(|(id, _)| id)
                .collect(),
        }))
    }

    /// The update that clears a reserved attempt's record after a success, for the session's
    /// transaction: no more failures anywhere, this network known from `now` on.
    /// Clears the record after a right password that starts no session (an unverified email).
    pub async fn clear_attempt(&self, attempt: &ReservedAttempt, now: i64) -> Result<(), DependencyError> {
        let update = self.clear_failures(attempt, now)?;
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(update.key))
            .update_expression(update.update_expression)
            .set_expression_attribute_names(update.expression_attribute_names)
            .set_expression_attribute_values(update.expression_attribute_values)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| DependencyError::from_sdk(SERVICE, e))
    }

    pub(super) fn clear_failures(&self, attempt: &ReservedAttempt, now: i64) -> Result<Update, DependencyError> {
        let mut names = HashMap::from([("#total".to_owned(), TOTAL.to_owned())]);
        names.insert("#k".to_owned(), known_name(&attempt.network));
        let mut removed = Vec::new();
        let forgotten = attempt.failed_networks.iter().flat_map(|id| [count_name(id), time_name(id)]);
        for (i, name) in forgotten.chain(attempt.stale_known.iter().map(known_name)).enumerate() {
            names.insert(format!("#r{i}"), name);
            removed.push(format!("#r{i}"));
        }
        let mut expression = "SET #total = :zero, #k = :now, expires_at = :expires".to_owned();
        if !removed.is_empty() {
            expression.push_str(" REMOVE ");
            expression.push_str(&removed.join(", "));
        }
        Update::builder()
            .table_name(&self.table)
            .set_key(Some(key_of(&attempt.key)))
            .update_expression(expression)
            .set_expression_attribute_names(Some(names))
            .expression_attribute_values(":zero", number(0))
            .expression_attribute_values(":now", number(now))
            .expression_attribute_values(":expires", number(now + RECORD_LIFETIME_SECONDS))
            .build()
            .map_err(|e| DependencyError::failed(SERVICE, e))
    }
}

fn key_of(record: &FailureKey) -> HashMap<String, AttributeValue> {
    key(record.as_str().to_owned())
}
