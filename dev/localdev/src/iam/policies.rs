//! Each function's identity policy: the inline policies of its role in the transformed template,
//! resolved against a stack's resources.

use std::collections::BTreeMap;

use iam_rs::{
    Arn, Context, Decision, EvaluationOptions, IAMPolicy, IAMRequest, PolicyEvaluator, Principal, PrincipalId,
};
use serde_json::Value as Json;
use serde_norway::Value;

use super::requests::Authorization;
use crate::error::{template_error, Result};
use crate::intrinsics::Resolver;
use crate::stack::StackResources;
use crate::template::Template;

/// One statement as written, for coverage checks and documentation.
#[derive(Debug, Clone, PartialEq)]
pub struct StatementInfo {
    pub policy_name: String,
    pub allow: bool,
    /// `Action` patterns (`NotAction` statements list none: they cannot be covered one by one).
    pub actions: Vec<String>,
    pub resources: Vec<String>,
    /// The statement's `Condition` block, as JSON (`null` when it has none).
    pub condition: Json,
    /// Granted for Lambda's own use of the role, not for the function's code: sending an event
    /// source mapping's discarded records to its on-failure destination (SAM adds it).
    pub for_event_source: bool,
}

impl StatementInfo {
    /// The values of one condition key in this statement, whatever the operator.
    pub fn condition_values(&self, key: &str) -> Vec<String> {
        let Some(operators) = self.condition.as_object() else { return Vec::new() };
        operators
            .values()
            .filter_map(|keys| keys.as_object()?.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
            .flat_map(|v| match v {
                Json::Array(items) => items.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect(),
                Json::String(s) => vec![s.clone()],
                _ => Vec::new(),
            })
            .collect()
    }
}

/// The identity policy of one function.
#[derive(Debug, Clone)]
pub struct FunctionPolicy {
    pub function: String,
    pub role: String,
    /// `ManagedPolicyArns` of the role: not evaluated locally (see [`Policies::load`]).
    pub managed_policy_arns: Vec<String>,
    pub statements: Vec<StatementInfo>,
    /// One per inline policy: each keeps its own `Version`.
    documents: Vec<IAMPolicy>,
}

/// A decision, and which statements allowed the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub decision: Decision,
    /// Indexes into [`FunctionPolicy::statements`] of the `Allow` statements that matched.
    pub allowed_by: Vec<usize>,
}

impl FunctionPolicy {
    /// Evaluates one authorization as AWS does for an identity policy alone: an explicit deny
    /// wins, else an allow, else the implicit deny.
    pub fn evaluate(&self, principal_arn: &str, authorization: &Authorization) -> Result<Verdict> {
        let resource = Arn::parse(&authorization.resource)
            .map_err(|e| template_error(format!("resource {}: {e:?}", authorization.resource)))?;
        let mut context = Context::new();
        for (key, value) in &authorization.context {
            context.insert(key.clone(), value.clone());
        }
        let request = IAMRequest::new_with_context(
            Principal::Aws(PrincipalId::String(principal_arn.to_owned())),
            authorization.action.clone(),
            resource,
            context,
        );
        let options =
            EvaluationOptions { stop_on_explicit_deny: false, collect_match_details: true, ..Default::default() };
        // Statement details come in order, document after document, as `statements` does.
        let result = PolicyEvaluator::with_policies(self.documents.clone())
            .with_options(options)
            .evaluate(&request)
            .map_err(|e| template_error(format!("evaluating {}: {e}", authorization.action)))?;
        let allowed_by = result
            .statement_details
            .iter()
            .enumerate()
            .filter(|(i, detail)| detail.conditions_satisfied && self.statements.get(*i).is_some_and(|s| s.allow))
            .map(|(i, _)| i)
            .collect();
        Ok(Verdict { decision: result.decision, allowed_by })
    }

    /// The verdict on a request that needs any one of `alternatives`: an explicit deny of any of
    /// them, else the first allowed, else the first; with the index of the one decided on.
    pub fn evaluate_any(&self, principal_arn: &str, alternatives: &[Authorization]) -> Result<(usize, Verdict)> {
        let verdicts = alternatives.iter().map(|a| self.evaluate(principal_arn, a)).collect::<Result<Vec<_>>>()?;
        let decided = |decision| verdicts.iter().position(|v: &Verdict| v.decision == decision);
        let index = decided(Decision::Deny).or_else(|| decided(Decision::Allow)).unwrap_or(0);
        let verdict = verdicts.get(index).cloned().ok_or_else(|| template_error("nothing to authorise"))?;
        Ok((index, verdict))
    }
}

/// Every function's policy in one stack.
#[derive(Debug, Clone)]
pub struct Policies {
    by_function: BTreeMap<String, FunctionPolicy>,
}

fn to_json(value: &Value) -> Result<Json> {
    serde_json::to_value(value).map_err(|e| template_error(format!("policy is not JSON: {e}")))
}

fn strings(value: Option<&Json>) -> Vec<String> {
    match value {
        Some(Json::String(s)) => vec![s.clone()],
        Some(Json::Array(items)) => items.iter().filter_map(|i| i.as_str().map(str::to_owned)).collect(),
        _ => Vec::new(),
    }
}

/// The on-failure destinations of the event source mappings that invoke the function whose `!Ref`
/// is `target`.
fn on_failure_destinations(cfn: &Template, resolver: &Resolver<'_>, target: &str) -> Result<Vec<String>> {
    let mut destinations = Vec::new();
    for id in cfn.resources_of_type("AWS::Lambda::EventSourceMapping")? {
        let Some(props) = cfn.resource(&id).and_then(|r| r.get("Properties")) else { continue };
        let invokes = props.get("FunctionName").map(|name| resolver.string(name)).transpose()?;
        let destination = props.get("DestinationConfig").and_then(|d| d.get("OnFailure")?.get("Destination"));
        if let (Some(name), Some(destination)) = (invokes, destination) {
            if name == target {
                destinations.push(resolver.string(destination)?);
            }
        }
    }
    Ok(destinations)
}

impl Policies {
    /// The inline policies of each `AWS::Lambda::Function`'s role in `cfn` (a transformed template,
    /// see [`super::transformed`]), resolved against `resources`. A policy document without
    /// `Version` is read as IAM does, as version 2008-10-17 (SAM writes the on-failure
    /// destination's policy so). Managed policies are listed but not
    /// evaluated: the ones SAM attaches (`AWSLambdaBasicExecutionRole`, `AWSXrayWriteOnlyAccess`)
    /// cover only what the Lambda service itself does with the role, so locally a managed policy
    /// can only ever deny more than AWS would, never less.
    pub fn load(cfn: &Template, resources: &StackResources) -> Result<Self> {
        let resolver = cfn.resolver(resources.refs());
        let mut by_function = BTreeMap::new();
        for function in cfn.resources_of_type("AWS::Lambda::Function")? {
            let role_ref = cfn
                .resource(&function)
                .and_then(|r| r.get("Properties"))
                .and_then(|p| p.get("Role"))
                .ok_or_else(|| template_error(format!("{function} has no Role")))?;
            let role = role_ref
                .get("Fn::GetAtt")
                .and_then(|g| g.as_sequence())
                .and_then(|parts| parts.first())
                .and_then(Value::as_str)
                .ok_or_else(|| template_error(format!("{function}: Role is not a !GetAtt of a role in the template")))?
                .to_owned();
            let props = cfn
                .resource(&role)
                .and_then(|r| r.get("Properties"))
                .cloned()
                .ok_or_else(|| template_error(format!("{function}: role {role} not found")))?;
            let props = to_json(&resolver.resolve(&props)?.unwrap_or_default())?;
            let target = resources.reference(&function).unwrap_or(&function);
            let destinations = on_failure_destinations(cfn, &resolver, target)?;
            let mut statements = Vec::new();
            let mut documents = Vec::new();
            for policy in props.get("Policies").and_then(Json::as_array).into_iter().flatten() {
                let name = policy.get("PolicyName").and_then(Json::as_str).unwrap_or_default().to_owned();
                let document = policy.get("PolicyDocument").cloned().unwrap_or(Json::Null);
                let listed = match document.get("Statement") {
                    Some(Json::Array(items)) => items.clone(),
                    Some(single @ Json::Object(_)) => vec![single.clone()],
                    _ => Vec::new(),
                };
                for statement in &listed {
                    let actions = strings(statement.get("Action"));
                    let resources = strings(statement.get("Resource"));
                    let for_event_source = !actions.is_empty()
                        && actions.iter().all(|a| a == "sqs:SendMessage" || a == "sns:Publish")
                        && !resources.is_empty()
                        && resources.iter().all(|r| destinations.contains(r));
                    statements.push(StatementInfo {
                        policy_name: name.clone(),
                        allow: statement.get("Effect").and_then(Json::as_str) == Some("Allow"),
                        actions,
                        resources,
                        condition: statement.get("Condition").cloned().unwrap_or(Json::Null),
                        for_event_source,
                    });
                }
                let version = document.get("Version").and_then(Json::as_str).unwrap_or("2008-10-17");
                let document = serde_json::json!({"Version": version, "Statement": listed});
                documents.push(
                    IAMPolicy::from_json(&document.to_string())
                        .map_err(|e| template_error(format!("{role} {name}: policy not understood: {e}")))?,
                );
            }
            let managed_policy_arns = strings(props.get("ManagedPolicyArns"));
            by_function.insert(
                function.clone(),
                FunctionPolicy { function, role, managed_policy_arns, statements, documents },
            );
        }
        Ok(Self { by_function })
    }

    /// A stand-in stack for reading the policies without one (documentation, coverage).
    pub fn placeholder(cfn: &Template) -> Result<(Self, StackResources)> {
        let stack = crate::stack::LocalStack::new("stack")?;
        let arns = cfn
            .resources_of_type(crate::stack::SECRET_TYPE)?
            .into_iter()
            .map(|id| {
                let arn = format!(
                    "arn:aws:secretsmanager:{}:{}:secret:{}-AbCdEf",
                    cfn.region(),
                    cfn.account_id(),
                    stack.physical_name(&id)
                );
                (id, arn)
            })
            .collect();
        let resources = StackResources::new(cfn, stack, arns)?;
        Ok((Self::load(cfn, &resources)?, resources))
    }

    /// Per function, its statements as a Markdown table: actions, resources (by logical id) and
    /// conditions.
    pub fn markdown(cfn: &Template) -> Result<String> {
        let (policies, resources) = Self::placeholder(cfn)?;
        let name_of = |resource: &str| -> String {
            if resource == "*" {
                return "`*`".to_owned();
            }
            for id in resources.refs().keys() {
                let Ok(Some(arn)) = cfn.resource_arn(id, &resources) else { continue };
                if let Some(rest) = resource.strip_prefix(&arn) {
                    return format!("`{id}`{rest}");
                }
            }
            format!("`{resource}`")
        };
        let mut out = String::from("| function | effect | actions | resources | condition |\n|---|---|---|---|---|\n");
        for policy in policies.functions() {
            for statement in &policy.statements {
                let conditions: Vec<String> = statement
                    .condition
                    .as_object()
                    .into_iter()
                    .flatten()
                    .flat_map(|(operator, keys)| {
                        keys.as_object().into_iter().flatten().map(move |(key, values)| {
                            let values = strings(Some(values)).join(", ");
                            format!("`{key}` {operator} {values}")
                        })
                    })
                    .collect();
                out.push_str(&format!(
                    "| {} | {} | {} | {} | {} |\n",
                    policy.function,
                    if statement.allow { "Allow" } else { "Deny" },
                    statement.actions.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", "),
                    statement.resources.iter().map(|r| name_of(r)).collect::<Vec<_>>().join(", "),
                    if conditions.is_empty() { "none".to_owned() } else { conditions.join("; ") },
                ));
            }
        }
        Ok(out)
    }

    pub fn function(&self, logical_id: &str) -> Option<&FunctionPolicy> {
        self.by_function.get(logical_id)
    }

    pub fn functions(&self) -> impl Iterator<Item = &FunctionPolicy> {
        self.by_function.values()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stack::LocalStack;
    use iam_rs::ContextValue;

    /// A transformed template in miniature: one function, its role, a table and a secret.
    const CFN: &str = r#"
Resources:
  T: {Type: AWS::DynamoDB::Table}
  S: {Type: AWS::SecretsManager::Secret}
  F:
    Type: AWS::Lambda::Function
    Properties: {Role: {"Fn::GetAtt": [FRole, Arn]}}
  FRole:
    Type: AWS::IAM::Role
    Properties:
      ManagedPolicyArns: [arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole]
      Policies:
        - PolicyName: FRolePolicy0
          PolicyDocument:
            Version: "2012-10-17"
            Statement:
              - Effect: Allow
                Action: ["dynamodb:*Item", "dynamodb:Query"]
                Resource: [{"Fn::GetAtt": [T, Arn]}, {"Fn::Sub": "${T.Arn}/index/*"}]
                Condition:
                  ForAllValues:StringLike:
                    dynamodb:LeadingKeys: ["USER#*", "SESSION#*"]
              - Effect: Deny
                Action: dynamodb:DeleteItem
                Resource: "*"
              - Effect: Allow
                Action: secretsmanager:GetSecretValue
                Resource: {Ref: S}
"#;

    const TABLE: &str = "arn:aws:dynamodb:us-east-1:123456789012:table/st-T";
    const SECRET: &str = "arn:aws:secretsmanager:us-east-1:123456789012:secret:st-S-AbCdEf";

    fn policy() -> FunctionPolicy {
        let cfn = Template::from_yaml(CFN, "").unwrap();
        let arns = BTreeMap::from([("S".to_owned(), SECRET.to_owned())]);
        let resources = StackResources::new(&cfn, LocalStack::new("st").unwrap(), arns).unwrap();
        Policies::load(&cfn, &resources).unwrap().function("F").unwrap().clone()
    }

    fn decide(action: &str, resource: &str, leading_keys: &[&str]) -> Verdict {
        let leading_keys: Vec<String> = leading_keys.iter().map(|k| (*k).to_owned()).collect();
        let context = if leading_keys.is_empty() {
            Vec::new()
        } else {
            vec![("dynamodb:LeadingKeys".to_owned(), ContextValue::StringList(leading_keys.clone()))]
        };
        let authorization = Authorization { action: action.into(), resource: resource.into(), leading_keys, context };
        policy().evaluate("arn:aws:sts::123456789012:assumed-role/st-FRole/st-F", &authorization).unwrap()
    }

    #[test]
    fn given_the_role_when_loading_then_statements_resolve_against_the_stack() {
        let policy = policy();
        assert_eq!(policy.role, "FRole");
        assert_eq!(policy.statements.len(), 3);
        assert_eq!(policy.statements[0].resources, [TABLE.to_owned(), format!("{TABLE}/index/*")]);
        assert_eq!(policy.statements[2].resources, [SECRET]);
        assert_eq!(policy.statements[0].condition_values("dynamodb:LeadingKeys"), ["USER#*", "SESSION#*"]);
        assert_eq!(policy.managed_policy_arns.len(), 1);
    }

    #[test]
    fn given_an_action_a_statement_allows_then_allow_naming_that_statement() {
        let verdict = decide("dynamodb:GetItem", TABLE, &["USER#1"]);
        assert_eq!(verdict, Verdict { decision: Decision::Allow, allowed_by: vec![0] });
        assert_eq!(decide("secretsmanager:GetSecretValue", SECRET, &[]).decision, Decision::Allow);
    }

    #[test]
    fn given_no_matching_statement_then_the_implicit_deny() {
        assert_eq!(decide("dynamodb:Scan", TABLE, &[]).decision, Decision::NotApplicable);
        assert_eq!(decide("secretsmanager:PutSecretValue", SECRET, &[]).decision, Decision::NotApplicable);
        let other_secret = SECRET.replace("st-S", "other-S");
        assert_eq!(decide("secretsmanager:GetSecretValue", &other_secret, &[]).decision, Decision::NotApplicable);
    }

    #[test]
    fn given_an_explicit_deny_then_it_wins_over_an_allow() {
        assert_eq!(decide("dynamodb:DeleteItem", TABLE, &["USER#1"]).decision, Decision::Deny);
    }

    #[test]
    fn given_wildcards_then_actions_match_case_insensitively_and_arns_by_pattern() {
        assert_eq!(decide("dynamodb:putitem", TABLE, &["SESSION#x"]).decision, Decision::Allow);
        assert_eq!(decide("dynamodb:Query", &format!("{TABLE}/index/by-user"), &["USER#1"]).decision, Decision::Allow);
        assert_eq!(decide("dynamodb:GetItem", &format!("{TABLE}-copy"), &["USER#1"]).decision, Decision::NotApplicable);
        // `*Item` is any run of characters before "Item", BatchGetItem included.
        assert_eq!(decide("dynamodb:BatchGetItem", TABLE, &["USER#1"]).decision, Decision::Allow);
        assert_eq!(decide("dynamodb:Scan", TABLE, &[]).decision, Decision::NotApplicable);
    }

    #[test]
    fn given_leading_keys_then_every_key_must_match_a_pattern() {
        assert_eq!(decide("dynamodb:GetItem", TABLE, &["EMAIL#a@example.com"]).decision, Decision::NotApplicable);
        assert_eq!(decide("dynamodb:UpdateItem", TABLE, &["USER#1", "EMAIL#a"]).decision, Decision::NotApplicable);
        assert_eq!(decide("dynamodb:UpdateItem", TABLE, &["USER#1", "SESSION#2"]).decision, Decision::Allow);
        assert_eq!(decide("dynamodb:GetItem", TABLE, &["user#1"]).decision, Decision::NotApplicable);
    }

    /// A mailer in miniature: SES on its sender's identities (`!Sub` with a variable map), and
    /// the policy SAM adds, without `Version`, for its event source's on-failure queue.
    const MAILER: &str = r#"
Parameters:
  SenderEmail: {Type: String, Default: no-reply@example.com}
Resources:
  Failures: {Type: AWS::SQS::Queue}
  M:
    Type: AWS::Lambda::Function
    Properties: {Role: {"Fn::GetAtt": [MRole, Arn]}}
  MOutbox:
    Type: AWS::Lambda::EventSourceMapping
    Properties:
      FunctionName: {Ref: M}
      DestinationConfig: {OnFailure: {Destination: {"Fn::GetAtt": [Failures, Arn]}}}
  MRole:
    Type: AWS::IAM::Role
    Properties:
      Policies:
        - PolicyName: MRolePolicy0
          PolicyDocument:
            Version: "2012-10-17"
            Statement:
              - Effect: Allow
                Action: ses:SendEmail
                Resource:
                  - {"Fn::Sub": "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/${SenderEmail}"}
                  - "Fn::Sub":
                      - "arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/${Domain}"
                      - Domain: {"Fn::Select": [1, {"Fn::Split": ["@", {Ref: SenderEmail}]}]}
              - Effect: Deny
                Action: ses:SendEmail
                Resource: arn:aws:ses:us-east-1:123456789012:identity/blocked@example.com
        - PolicyName: MOutboxSQSPolicy
          PolicyDocument:
            Statement:
              - {Action: sqs:SendMessage, Effect: Allow, Resource: {"Fn::GetAtt": [Failures, Arn]}}
"#;

    const ADDRESS: &str = "arn:aws:ses:us-east-1:123456789012:identity/no-reply@example.com";
    const DOMAIN: &str = "arn:aws:ses:us-east-1:123456789012:identity/example.com";

    fn mailer() -> (Policies, FunctionPolicy) {
        let cfn = Template::from_yaml(MAILER, "").unwrap();
        let resources = StackResources::new(&cfn, LocalStack::new("st").unwrap(), BTreeMap::new()).unwrap();
        let policies = Policies::load(&cfn, &resources).unwrap();
        let policy = policies.function("M").unwrap().clone();
        (policies, policy)
    }

    fn send(resource: &str) -> Authorization {
        Authorization {
            action: "ses:SendEmail".into(),
            resource: resource.into(),
            leading_keys: vec![],
            context: vec![],
        }
    }

    #[test]
    fn given_policies_of_two_versions_and_a_sub_with_variables_then_each_statement_resolves_and_evaluates() {
        // GIVEN the mailer's role WHEN its policies load
        let (_, policy) = mailer();
        // THEN the sender's identity and its domain's, and SAM's queue statement kept apart
        assert_eq!(policy.statements[0].resources, [ADDRESS, DOMAIN]);
        assert_eq!(policy.statements[2].resources, ["arn:aws:sqs:us-east-1:123456789012:st-Failures"]);
        let for_event_source: Vec<bool> = policy.statements.iter().map(|s| s.for_event_source).collect();
        assert_eq!(for_event_source, [false, false, true]);
        // AND both documents are evaluated, each statement by its index
        let principal = "arn:aws:sts::123456789012:assumed-role/st-MRole/st-M";
        assert_eq!(policy.evaluate(principal, &send(DOMAIN)).unwrap().allowed_by, [0]);
        let queue = Authorization { action: "sqs:SendMessage".into(), ..send(&policy.statements[2].resources[0]) };
        assert_eq!(policy.evaluate(principal, &queue).unwrap().allowed_by, [2]);
    }

    #[test]
    fn given_alternatives_then_any_allowed_one_allows_and_an_explicit_deny_of_any_refuses() {
        let (_, policy) = mailer();
        let principal = "arn:aws:sts::123456789012:assumed-role/st-MRole/st-M";
        let other = "arn:aws:ses:us-east-1:123456789012:identity/other@example.net";
        let blocked = "arn:aws:ses:us-east-1:123456789012:identity/blocked@example.com";
        let decide = |resources: &[&str]| {
            let alternatives: Vec<_> = resources.iter().map(|r| send(r)).collect();
            let (index, verdict) = policy.evaluate_any(principal, &alternatives).unwrap();
            (index, verdict.decision)
        };
        assert_eq!(decide(&[ADDRESS, DOMAIN]), (0, Decision::Allow));
        assert_eq!(
            decide(&["arn:aws:ses:us-east-1:123456789012:identity/x@example.com", DOMAIN]),
            (1, Decision::Allow)
        );
        assert_eq!(
            decide(&[other, "arn:aws:ses:us-east-1:123456789012:identity/example.net"]),
            (0, Decision::NotApplicable)
        );
        assert_eq!(decide(&[blocked, DOMAIN]), (0, Decision::Deny));
    }

    #[test]
    fn given_an_on_failure_destination_statement_then_coverage_never_asks_the_code_to_use_it() {
        // GIVEN a record where the mailer sent mail and never wrote to its queue
        let (policies, _) = mailer();
        let sent = super::super::record::Entry {
            function: "M".into(),
            action: "ses:SendEmail".into(),
            resource: ADDRESS.into(),
            leading_keys: vec![],
            allowed: true,
            statements: vec![0],
            reason: None,
        };
        // WHEN the record is checked THEN nothing is missing
        assert_eq!(super::super::record::problems(&policies, &[sent]), Vec::<String>::new());
        // AND without the mail, the SES grant is reported unused, the queue's still not
        let problems = super::super::record::problems(&policies, &[]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("ses:SendEmail"), "{problems:?}");
    }
}
