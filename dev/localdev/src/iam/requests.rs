//! What AWS authorises a request with: one or more (action, resource, condition keys).
//!
//! From AWS's documentation ("Using IAM with DynamoDB", "DynamoDB transactions", "Actions,
//! resources and condition keys for AWS Secrets Manager"):
//! - single-item and batch operations are authorised by their own action (`dynamodb:GetItem`,
//!   `dynamodb:BatchGetItem`, …) on the table, once per table for a batch;
//! - `TransactWriteItems` and `TransactGetItems` have no action of their own: each item is
//!   authorised by its own action (Put → `PutItem`, Update → `UpdateItem`, Delete → `DeleteItem`,
//!   ConditionCheck → `ConditionCheckItem`, Get → `GetItem`) for its own key;
//! - a `Query` or `Scan` on an index is authorised on the index's ARN;
//! - `dynamodb:LeadingKeys` holds the partition key values the request touches;
//! - Secrets Manager actions are authorised on the secret's full ARN, with
//!   `secretsmanager:SecretId`, `secretsmanager:VersionStage` and `secretsmanager:VersionId`;
//! - SES's (v2) `SendEmail` is `ses:SendEmail` on the sending identity's ARN, with
//!   `ses:FromAddress` and `ses:Recipients` (see [`SendEmail`]).

use iam_rs::ContextValue;
use serde_json::{Map, Value};

/// The AWS services the local stack emulates, from a request's SigV4 credential scope.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Service {
    DynamoDb,
    SecretsManager,
    /// SES's v2 API (REST JSON; the v1 API signs with the same scope and is refused).
    Ses,
}

impl Service {
    /// The service of a SigV4 credential scope (`dynamodb`, `secretsmanager`).
    pub fn from_scope(scope: &str) -> Option<Self> {
        match scope {
            "dynamodb" => Some(Self::DynamoDb),
            "secretsmanager" => Some(Self::SecretsManager),
            "ses" => Some(Self::Ses),
            _ => None,
        }
    }

    pub fn prefix(self) -> &'static str {
        match self {
            Self::DynamoDb => "dynamodb",
            Self::SecretsManager => "secretsmanager",
            Self::Ses => "ses",
        }
    }
}

/// One action on one resource, with the condition keys of the request.
#[derive(Debug, Clone, PartialEq)]
pub struct Authorization {
    /// `service:Action`.
    pub action: String,
    /// The resource's ARN.
    pub resource: String,
    /// `dynamodb:LeadingKeys` values, also in [`Authorization::context`].
    pub leading_keys: Vec<String>,
    pub context: Vec<(String, ContextValue)>,
}

/// A request the check cannot read: it is refused, never forwarded unchecked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Malformed(pub String);

/// What the check needs to know about the stack's tables.
pub trait TableKeys {
    /// The table's ARN for a `TableName` (a name or an ARN).
    fn table_arn(&self, table: &str) -> String;
    /// The partition key attribute of a table, or of one of its indexes.
    fn partition_key(&self, table: &str, index: Option<&str>) -> Option<String>;
    /// A secret's full ARN for a `SecretId` (a name, a partial or a full ARN).
    fn secret_arn(&self, secret_id: &str) -> String;
    /// An SES identity's ARN (an address or a domain) in the stack's account and region.
    fn identity_arn(&self, identity: &str) -> String;
}

fn object<'a>(value: &'a Value, what: &str) -> Result<&'a Map<String, Value>, Malformed> {
    value.as_object().ok_or_else(|| Malformed(format!("{what} is not an object")))
}

fn string<'a>(value: &'a Value, key: &str) -> Result<&'a str, Malformed> {
    value.get(key).and_then(Value::as_str).ok_or_else(|| Malformed(format!("{key} missing")))
}

/// The partition key's value in a DynamoDB `Key` or `Item` map, as a string (`S`, `N` or `B`).
fn key_value(key: &Value, attribute: &str) -> Result<String, Malformed> {
    let typed =
        key.get(attribute).and_then(Value::as_object).ok_or_else(|| Malformed(format!("no {attribute} in key")))?;
    typed
        .values()
        .next()
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| Malformed(format!("{attribute} is not a scalar")))
}

fn item(keys: &dyn TableKeys, action: &str, table: &str, leading_keys: Vec<String>) -> Authorization {
    let context = vec![("dynamodb:LeadingKeys".to_owned(), ContextValue::StringList(leading_keys.clone()))];
    Authorization { action: format!("dynamodb:{action}"), resource: keys.table_arn(table), leading_keys, context }
}

fn partition_key(keys: &dyn TableKeys, table: &str) -> Result<String, Malformed> {
    keys.partition_key(table, None).ok_or_else(|| Malformed(format!("unknown table {table}")))
}

/// One item operation (`Key` or `Item` holds the key), alone or inside a transaction.
fn keyed(keys: &dyn TableKeys, action: &str, body: &Value, key_field: &str) -> Result<Authorization, Malformed> {
    let table = string(body, "TableName")?;
    let attribute = partition_key(keys, table)?;
    let key = body.get(key_field).ok_or_else(|| Malformed(format!("{key_field} missing")))?;
    Ok(item(keys, action, table, vec![key_value(key, &attribute)?]))
}

/// The partition key value a `KeyConditionExpression` fixes (`#pk = :v`, `pk = :v`).
fn query_partition_value(body: &Value, attribute: &str) -> Result<String, Malformed> {
    let expression = string(body, "KeyConditionExpression")?;
    let names = body.get("ExpressionAttributeNames").and_then(Value::as_object);
    let values = body.get("ExpressionAttributeValues").ok_or_else(|| Malformed("no expression values".into()))?;
    for clause in expression.split(|c: char| c.is_whitespace()).collect::<Vec<_>>().join(" ").split(" AND ") {
        let clause = clause.trim().trim_start_matches('(').trim_end_matches(')');
        let Some((left, right)) = clause.split_once('=') else { continue };
        let (left, right) = (left.trim(), right.trim());
        let name = names.and_then(|n| n.get(left)).and_then(Value::as_str).unwrap_or(left);
        if name == attribute && right.starts_with(':') {
            let value = values.get(right).ok_or_else(|| Malformed(format!("{right} has no value")))?;
            return object(value, right)?
                .values()
                .next()
                .and_then(Value::as_str)
                .map(str::to_owned)
                .ok_or_else(|| Malformed(format!("{right} is not a scalar")));
        }
    }
    Err(Malformed("KeyConditionExpression fixes no partition key".into()))
}

fn dynamodb(operation: &str, body: &Value, keys: &dyn TableKeys) -> Result<Vec<Authorization>, Malformed> {
    match operation {
        "GetItem" | "DeleteItem" | "UpdateItem" => Ok(vec![keyed(keys, operation, body, "Key")?]),
        "PutItem" => Ok(vec![keyed(keys, operation, body, "Item")?]),
        "BatchGetItem" | "BatchWriteItem" => {
            let mut out = Vec::new();
            for (table, request) in object(body.get("RequestItems").unwrap_or(&Value::Null), "RequestItems")? {
                let attribute = partition_key(keys, table)?;
                let mut leading = Vec::new();
                if operation == "BatchGetItem" {
                    for key in request.get("Keys").and_then(Value::as_array).into_iter().flatten() {
                        leading.push(key_value(key, &attribute)?);
                    }
                } else {
                    for write in request.as_array().into_iter().flatten() {
                        let key = write
                            .get("PutRequest")
                            .and_then(|p| p.get("Item"))
                            .or_else(|| write.get("DeleteRequest").and_then(|d| d.get("Key")))
                            .ok_or_else(|| Malformed("write request without a key".into()))?;
                        leading.push(key_value(key, &attribute)?);
                    }
                }
                leading.sort();
                leading.dedup();
                out.push(item(keys, operation, table, leading));
            }
            Ok(out)
        }
        "TransactWriteItems" | "TransactGetItems" => {
            let mut out = Vec::new();
            for entry in body.get("TransactItems").and_then(Value::as_array).into_iter().flatten() {
                let (kind, inner) = object(entry, "TransactItem")?
                    .iter()
                    .next()
                    .ok_or_else(|| Malformed("empty TransactItem".into()))?;
                let (action, key_field) = match kind.as_str() {
                    "Put" => ("PutItem", "Item"),
                    "Update" => ("UpdateItem", "Key"),
                    "Delete" => ("DeleteItem", "Key"),
                    "ConditionCheck" => ("ConditionCheckItem", "Key"),
                    "Get" => ("GetItem", "Key"),
                    other => return Err(Malformed(format!("unknown transaction item {other}"))),
                };
                out.push(keyed(keys, action, inner, key_field)?);
            }
            Ok(out)
        }
        "Query" | "Scan" => {
            let table = string(body, "TableName")?;
            let index = body.get("IndexName").and_then(Value::as_str);
            let arn = keys.table_arn(table);
            let resource = index.map_or(arn.clone(), |index| format!("{arn}/index/{index}"));
            let mut authorization = Authorization {
                action: format!("dynamodb:{operation}"),
                resource,
                leading_keys: Vec::new(),
                context: Vec::new(),
            };
            if operation == "Query" {
                let attribute =
                    keys.partition_key(table, index).ok_or_else(|| Malformed(format!("unknown table {table}")))?;
                let value = query_partition_value(body, &attribute)?;
                authorization.leading_keys = vec![value.clone()];
                authorization.context = vec![("dynamodb:LeadingKeys".into(), ContextValue::StringList(vec![value]))];
            }
            Ok(vec![authorization])
        }
        // Table-level operations (DescribeTable, UpdateTimeToLive, …) on the named table.
        other => {
            let table = string(body, "TableName")?;
            Ok(vec![Authorization {
                action: format!("dynamodb:{other}"),
                resource: keys.table_arn(table),
                leading_keys: Vec::new(),
                context: Vec::new(),
            }])
        }
    }
}

fn secrets_manager(operation: &str, body: &Value, keys: &dyn TableKeys) -> Result<Vec<Authorization>, Malformed> {
    let secret_id = string(body, "SecretId")?;
    let arn = keys.secret_arn(secret_id);
    let mut context = vec![("secretsmanager:SecretId".to_owned(), ContextValue::String(arn.clone()))];
    for (field, key) in [("VersionStage", "secretsmanager:VersionStage"), ("VersionId", "secretsmanager:VersionId")] {
        if let Some(value) = body.get(field).and_then(Value::as_str) {
            context.push((key.to_owned(), ContextValue::String(value.to_owned())));
        }
    }
    Ok(vec![Authorization {
        action: format!("secretsmanager:{operation}"),
        resource: arn,
        leading_keys: Vec::new(),
        context,
    }])
}

/// The authorizations of one JSON-protocol request (`X-Amz-Target: <prefix>.<Operation>`).
pub fn authorizations(
    service: Service,
    target: &str,
    body: &[u8],
    keys: &dyn TableKeys,
) -> Result<Vec<Authorization>, Malformed> {
    let operation = target.rsplit_once('.').map(|(_, op)| op).ok_or_else(|| Malformed("no X-Amz-Target".into()))?;
    let body: Value = serde_json::from_slice(body).map_err(|e| Malformed(format!("body is not JSON: {e}")))?;
    match service {
        Service::DynamoDb => dynamodb(operation, &body, keys),
        Service::SecretsManager => secrets_manager(operation, &body, keys),
        Service::Ses => Err(Malformed("SES is not a JSON-protocol service: see SendEmail::parse".into())),
    }
}

/// A SESv2 `SendEmail` (`POST /v2/email/outbound-emails`) with simple content, as the check and
/// the local outbox read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendEmail {
    /// The address of `FromEmailAddress` (without its display name).
    pub from: String,
    pub to: Vec<String>,
    /// To, Cc and Bcc together (`ses:Recipients`).
    pub recipients: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
}

impl SendEmail {
    /// The request, if it is a `SendEmail` the check can read; anything else of SES is refused.
    pub fn parse(method: &str, path: &str, body: &[u8]) -> Result<Self, Malformed> {
        if method != "POST" || path != "/v2/email/outbound-emails" {
            return Err(Malformed(format!("SES {method} {path} is not emulated (only SESv2 SendEmail)")));
        }
        let body: Value = serde_json::from_slice(body).map_err(|e| Malformed(format!("body is not JSON: {e}")))?;
        // Sending authorization (another account's identity) and configuration sets are
        // authorised on resources of their own, which no statement of the template names.
        for field in ["FromEmailAddressIdentityArn", "ConfigurationSetName"] {
            if body.get(field).is_some() {
                return Err(Malformed(format!("{field} is not emulated")));
            }
        }
        let from = string(&body, "FromEmailAddress")?;
        // `Name <address>` is how SES takes a display name.
        let from = from.rsplit_once('<').and_then(|(_, rest)| rest.strip_suffix('>')).unwrap_or(from).trim();
        if from.split_once('@').is_none_or(|(local, domain)| local.is_empty() || domain.is_empty()) {
            return Err(Malformed(format!("FromEmailAddress {from:?} is not an address")));
        }
        let destination = body.get("Destination");
        let addresses = |field: &str| -> Vec<String> {
            let listed = destination.and_then(|d| d.get(field)).and_then(Value::as_array);
            listed.into_iter().flatten().filter_map(Value::as_str).map(str::to_owned).collect()
        };
        let to = addresses("ToAddresses");
        let recipients = [to.clone(), addresses("CcAddresses"), addresses("BccAddresses")].concat();
        let simple = body
            .get("Content")
            .and_then(|c| c.get("Simple"))
            .ok_or_else(|| Malformed("only Content.Simple is emulated".into()))?;
        let data = |part: &Value| part.get("Data").and_then(Value::as_str).unwrap_or_default().to_owned();
        let part = |name: &str| simple.get("Body").and_then(|b| b.get(name)).map(data).unwrap_or_default();
        Ok(Self {
            from: from.to_owned(),
            to,
            recipients,
            subject: simple.get("Subject").map(data).unwrap_or_default(),
            text: part("Text"),
            html: part("Html"),
        })
    }

    /// `ses:SendEmail` on the From address's identity, then on its domain's: granted when either
    /// is. AWS authorises the identity SES sends as, which is the address if it is verified and
    /// else its domain (an address of a verified domain needs no identity of its own). Which of
    /// the two a deployed account has verified is not in the template, so the check accepts a
    /// statement that grants either, as AWS would for some account.
    pub fn authorizations(&self, keys: &dyn TableKeys) -> Vec<Authorization> {
        let context = vec![
            ("ses:FromAddress".to_owned(), ContextValue::String(self.from.clone())),
            ("ses:Recipients".to_owned(), ContextValue::StringList(self.recipients.clone())),
        ];
        let domain = self.from.rsplit_once('@').map_or("", |(_, domain)| domain);
        [self.from.as_str(), domain]
            .into_iter()
            .map(|identity| Authorization {
                action: "ses:SendEmail".into(),
                resource: keys.identity_arn(identity),
                leading_keys: Vec::new(),
                context: context.clone(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Keys;

    impl TableKeys for Keys {
        fn table_arn(&self, table: &str) -> String {
            format!("arn:aws:dynamodb:us-east-1:123456789012:table/{table}")
        }
        fn partition_key(&self, table: &str, index: Option<&str>) -> Option<String> {
            (table == "t").then(|| if index.is_some() { "gpk".into() } else { "pk".into() })
        }
        fn secret_arn(&self, secret_id: &str) -> String {
            format!("arn:aws:secretsmanager:us-east-1:123456789012:secret:{secret_id}-AbCdEf")
        }
        fn identity_arn(&self, identity: &str) -> String {
            format!("arn:aws:ses:us-east-1:123456789012:identity/{identity}")
        }
    }

    fn auths(service: Service, op: &str, body: &str) -> Vec<(String, String, Vec<String>)> {
        authorizations(service, op, body.as_bytes(), &Keys)
            .unwrap()
            .into_iter()
            .map(|a| (a.action, a.resource, a.leading_keys))
            .collect()
    }

    const TABLE: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/t";

    #[test]
    fn given_single_item_operations_then_each_is_its_own_action_with_its_key() {
        let got =
            auths(Service::DynamoDb, "DynamoDB_20120810.GetItem", r#"{"TableName":"t","Key":{"pk":{"S":"USER#1"}}}"#);
        assert_eq!(got, [("dynamodb:GetItem".into(), TABLE.into(), vec!["USER#1".into()])]);
        let got = auths(
            Service::DynamoDb,
            "DynamoDB_20120810.PutItem",
            r#"{"TableName":"t","Item":{"pk":{"S":"A#"},"x":{"N":"1"}}}"#,
        );
        assert_eq!(got[0].0, "dynamodb:PutItem");
        assert_eq!(got[0].2, ["A#"]);
    }

    #[test]
    fn given_a_transaction_then_each_item_is_authorised_by_its_own_action() {
        let body = r#"{"TransactItems":[
            {"Put":{"TableName":"t","Item":{"pk":{"S":"SESSION#f"}}}},
            {"Delete":{"TableName":"t","Key":{"pk":{"S":"FAILURES#h"}}}},
            {"Update":{"TableName":"t","Key":{"pk":{"S":"U#1"}}}},
            {"ConditionCheck":{"TableName":"t","Key":{"pk":{"S":"C#1"}}}}]}"#;
        let got = auths(Service::DynamoDb, "DynamoDB_20120810.TransactWriteItems", body);
        let actions: Vec<_> = got.iter().map(|(a, _, k)| (a.as_str(), k[0].as_str())).collect();
        assert_eq!(
            actions,
            [
                ("dynamodb:PutItem", "SESSION#f"),
                ("dynamodb:DeleteItem", "FAILURES#h"),
                ("dynamodb:UpdateItem", "U#1"),
                ("dynamodb:ConditionCheckItem", "C#1")
            ]
        );
        let got = auths(
            Service::DynamoDb,
            "DynamoDB_20120810.TransactGetItems",
            r#"{"TransactItems":[{"Get":{"TableName":"t","Key":{"pk":{"S":"X#1"}}}}]}"#,
        );
        assert_eq!(got[0].0, "dynamodb:GetItem");
    }

    #[test]
    fn given_a_batch_then_one_authorization_per_table_holds_every_leading_key() {
        let body = r#"{"RequestItems":{"t":{"Keys":[{"pk":{"S":"EMAIL#a"}},{"pk":{"S":"FAILURES#b"}}],"ConsistentRead":true}}}"#;
        let got = auths(Service::DynamoDb, "DynamoDB_20120810.BatchGetItem", body);
        assert_eq!(got, [("dynamodb:BatchGetItem".into(), TABLE.into(), vec!["EMAIL#a".into(), "FAILURES#b".into()])]);
        let body = r#"{"RequestItems":{"t":[{"PutRequest":{"Item":{"pk":{"S":"A#"}}}},{"DeleteRequest":{"Key":{"pk":{"S":"B#"}}}}]}}"#;
        assert_eq!(auths(Service::DynamoDb, "DynamoDB_20120810.BatchWriteItem", body)[0].2, ["A#", "B#"]);
    }

    #[test]
    fn given_a_query_on_an_index_then_the_index_arn_and_its_partition_key() {
        let body = r##"{"TableName":"t","IndexName":"by-g","KeyConditionExpression":"#g = :v AND sk > :s",
            "ExpressionAttributeNames":{"#g":"gpk"},"ExpressionAttributeValues":{":v":{"S":"G#1"},":s":{"S":"0"}}}"##;
        let got = auths(Service::DynamoDb, "DynamoDB_20120810.Query", body);
        assert_eq!(got, [("dynamodb:Query".into(), format!("{TABLE}/index/by-g"), vec!["G#1".into()])]);
        let got = auths(Service::DynamoDb, "DynamoDB_20120810.DescribeTable", r#"{"TableName":"t"}"#);
        assert_eq!(got, [("dynamodb:DescribeTable".into(), TABLE.into(), vec![])]);
    }

    #[test]
    fn given_a_secret_by_name_then_its_full_arn_and_stage_are_used() {
        let got = authorizations(
            Service::SecretsManager,
            "secretsmanager.GetSecretValue",
            br#"{"SecretId":"s","VersionStage":"AWSPREVIOUS"}"#,
            &Keys,
        )
        .unwrap();
        assert_eq!(got[0].action, "secretsmanager:GetSecretValue");
        assert_eq!(got[0].resource, "arn:aws:secretsmanager:us-east-1:123456789012:secret:s-AbCdEf");
        assert!(got[0]
            .context
            .contains(&("secretsmanager:VersionStage".into(), ContextValue::String("AWSPREVIOUS".into()))));
    }

    #[test]
    fn given_unreadable_requests_then_they_are_malformed_not_allowed() {
        for (target, body) in [
            ("DynamoDB_20120810.GetItem", "not json"),
            ("DynamoDB_20120810.GetItem", r#"{"TableName":"t"}"#),
            ("DynamoDB_20120810.GetItem", r#"{"TableName":"unknown","Key":{"pk":{"S":"x"}}}"#),
            ("DynamoDB_20120810.TransactWriteItems", r#"{"TransactItems":[{"Frobnicate":{}}]}"#),
            (
                "DynamoDB_20120810.Query",
                r#"{"TableName":"t","KeyConditionExpression":"x > :a","ExpressionAttributeValues":{":a":{"S":"1"}}}"#,
            ),
            ("", "{}"),
        ] {
            assert!(authorizations(Service::DynamoDb, target, body.as_bytes(), &Keys).is_err(), "{target} {body}");
        }
    }

    const SEND: &str = "/v2/email/outbound-emails";

    fn send_email(body: &str) -> Result<SendEmail, Malformed> {
        SendEmail::parse("POST", SEND, body.as_bytes())
    }

    #[test]
    fn given_a_send_email_then_the_address_identity_then_the_domain_identity_with_sender_and_recipients() {
        // GIVEN the SendEmail the SESv2 SDK sends, with a display name
        let body = r#"{"FromEmailAddress":"Auth <no-reply@example.com>",
            "Destination":{"ToAddresses":["ada@example.org"],"BccAddresses":["audit@example.org"]},
            "Content":{"Simple":{"Subject":{"Data":"Verify"},"Body":{"Text":{"Data":"t"},"Html":{"Data":"<p>h</p>"}}}}}"#;
        // WHEN the check reads it
        let send = send_email(body).unwrap();
        let got = send.authorizations(&Keys);
        // THEN ses:SendEmail on the address's identity, else the domain's, and what the mail is
        let resources: Vec<_> = got.iter().map(|a| (a.action.as_str(), a.resource.as_str())).collect();
        assert_eq!(
            resources,
            [
                ("ses:SendEmail", "arn:aws:ses:us-east-1:123456789012:identity/no-reply@example.com"),
                ("ses:SendEmail", "arn:aws:ses:us-east-1:123456789012:identity/example.com")
            ]
        );
        assert!(got[0]
            .context
            .contains(&("ses:FromAddress".into(), ContextValue::String("no-reply@example.com".into()))));
        let recipients = ContextValue::StringList(vec!["ada@example.org".into(), "audit@example.org".into()]);
        assert!(got[1].context.contains(&("ses:Recipients".into(), recipients)));
        assert_eq!((send.to.as_slice(), send.subject.as_str()), (&["ada@example.org".to_owned()][..], "Verify"));
        assert_eq!((send.text.as_str(), send.html.as_str()), ("t", "<p>h</p>"));
    }

    #[test]
    fn given_ses_requests_the_check_cannot_read_then_they_are_malformed_not_allowed() {
        let simple = r#""Content":{"Simple":{"Subject":{"Data":"s"},"Body":{"Text":{"Data":"t"}}}}"#;
        for (method, path, body) in [
            ("POST", "/v2/email/identities", r#"{"EmailIdentity":"x@example.com"}"#.to_owned()),
            ("GET", SEND, String::new()),
            // SES v1 (query protocol) signs with the same scope.
            ("POST", "/", "Action=SendEmail&Source=a%40example.com".to_owned()),
            ("POST", SEND, "not json".to_owned()),
            ("POST", SEND, format!("{{{simple}}}")),
            ("POST", SEND, format!(r#"{{"FromEmailAddress":"nobody",{simple}}}"#)),
            ("POST", SEND, r#"{"FromEmailAddress":"a@example.com","Content":{"Raw":{"Data":"eA=="}}}"#.to_owned()),
            ("POST", SEND, format!(r#"{{"FromEmailAddress":"a@example.com","ConfigurationSetName":"c",{simple}}}"#)),
            (
                "POST",
                SEND,
                format!(
                    r#"{{"FromEmailAddress":"a@example.com","FromEmailAddressIdentityArn":"arn:aws:ses:us-east-1:1:identity/example.com",{simple}}}"#
                ),
            ),
        ] {
            assert!(SendEmail::parse(method, path, body.as_bytes()).is_err(), "{method} {path} {body}");
        }
        assert!(authorizations(Service::Ses, "", b"{}", &Keys).is_err());
    }
}
