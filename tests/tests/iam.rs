//! IAM as AWS enforces it: each function may make exactly the calls its statements in
//! template.yaml allow, on the items they allow (`dynamodb:LeadingKeys`), and a refused call
//! looks as it does on AWS. The last test of `make test` proves, from the suite's record of
//! decisions, that nothing was denied and that every action granted was exercised.

use aws_sdk_dynamodb::error::ProvideErrorMetadata;
use aws_sdk_dynamodb::types::AttributeValue;
use iam_rs::{ContextValue, Decision};
use localdev::iam::{record, Authorization, Policies};
use tests::{assert_problem, dynamodb_as, private_iam_check, repo_root, Stack, PASSWORD};

fn policies() -> Policies {
    let transformed = localdev::iam::transformed(&repo_root().join("template.yaml")).expect("the SAM transform");
    let cfn = localdev::Template::load(transformed).expect("transformed template");
    Policies::placeholder(&cfn).expect("policies").0
}

fn decide(policies: &Policies, function: &str, action: &str, key: &str) -> Decision {
    let authorization = Authorization {
        action: action.into(),
        resource: "arn:aws:dynamodb:us-east-1:123456789012:table/stack-AuthTable".into(),
        leading_keys: vec![key.into()],
        context: vec![("dynamodb:LeadingKeys".into(), ContextValue::StringList(vec![key.into()]))],
    };
    let policy = policies.function(function).expect("function in template");
    policy.evaluate("arn:aws:sts::123456789012:assumed-role/r/s", &authorization).expect("evaluates").decision
}

#[test]
fn given_the_template_then_only_register_and_login_can_touch_credentials() {
    let policies = policies();
    for (function, action) in [
        ("GetUserFunction", "dynamodb:GetItem"),
        ("RefreshFunction", "dynamodb:UpdateItem"),
        ("GetUserFunction", "dynamodb:UpdateItem"),
        ("RefreshFunction", "dynamodb:GetItem"),
    ] {
        assert_ne!(
            decide(&policies, function, action, "EMAIL#ada@example.com"),
            Decision::Allow,
            "{function} {action}"
        );
    }
    assert_eq!(decide(&policies, "GetUserFunction", "dynamodb:GetItem", "USER#1"), Decision::Allow);
    assert_eq!(decide(&policies, "RefreshFunction", "dynamodb:UpdateItem", "SESSION#f"), Decision::Allow);
    assert_ne!(decide(&policies, "RefreshFunction", "dynamodb:UpdateItem", "USER#1"), Decision::Allow);
    assert_eq!(decide(&policies, "RegisterFunction", "dynamodb:PutItem", "EMAIL#ada@example.com"), Decision::Allow);
    assert_eq!(decide(&policies, "LoginFunction", "dynamodb:UpdateItem", "EMAIL#ada@example.com"), Decision::Allow);
    assert_ne!(decide(&policies, "RegisterFunction", "dynamodb:PutItem", "SESSION#f"), Decision::Allow);
    assert_eq!(decide(&policies, "LoginFunction", "dynamodb:GetItem", "EMAIL#ada@example.com"), Decision::Allow);
    assert_ne!(decide(&policies, "LoginFunction", "dynamodb:GetItem", "USER#1"), Decision::Allow);
    assert_ne!(decide(&policies, "LoginFunction", "dynamodb:DeleteItem", "FAILURES#x"), Decision::Allow);
}

#[tokio::test]
async fn given_a_call_outside_the_functions_statements_then_aws_access_denied() {
    // GIVEN a stack and a check of the test's own (its denials stay out of the suite's record)
    let stack = Stack::new().await;
    let check = private_iam_check(&repo_root().join("template.yaml")).await;
    // WHEN get-user's role reads a credentials item
    let client = dynamodb_as(&stack, "GetUserFunction", &check.url());
    let result = client
        .get_item()
        .table_name(&stack.table)
        .key("pk", AttributeValue::S("EMAIL#ada@example.com".into()))
        .send()
        .await;
    // THEN it is refused as AWS refuses it, and nothing reached the table
    let error = result.expect_err("get-user may not read EMAIL# items");
    assert_eq!(error.raw_response().map(|r| r.status().as_u16()), Some(400));
    assert_eq!(error.code(), Some("AccessDeniedException"));
    let expected = format!(
        "User: arn:aws:sts::123456789012:assumed-role/{stack}-GetUserFunctionRole/{stack}-GetUserFunction is not \
         authorized to perform: dynamodb:GetItem on resource: arn:aws:dynamodb:us-east-1:123456789012:table/{table} \
         because no identity-based policy allows the dynamodb:GetItem action",
        stack = stack.stack,
        table = stack.table
    );
    assert_eq!(error.message(), Some(expected.as_str()));
    assert_eq!(check.denials(), 1);
    // AND an unknown identity is not a function of any stack
    let stranger = tests::dynamodb_at(&check.url(), None);
    let error = stranger.describe_table().table_name(&stack.table).send().await.expect_err("unknown caller");
    assert_eq!(error.code(), Some("UnrecognizedClientException"));
}

#[tokio::test]
async fn given_a_role_without_an_action_its_code_calls_then_the_function_answers_500() {
    // GIVEN the template with get-user's GetItem taken away
    let template = std::fs::read_to_string(repo_root().join("template.yaml")).unwrap();
    let granted = "# The user's profile, never the credentials.\n            - Effect: Allow\n              Action: dynamodb:GetItem";
    assert_eq!(template.matches(granted).count(), 1, "the test expects get-user's statement in template.yaml");
    let path = std::env::temp_dir().join(format!("iam-test-{}.yaml", uuid::Uuid::new_v4().simple()));
    std::fs::write(&path, template.replace(granted, &granted.replace("GetItem", "DescribeTable"))).unwrap();
    let check = private_iam_check(&path).await;
    let stack = Stack::with_iam_endpoint(&check.url(), &[]).await;
    stack.register_user("ada@example.com", PASSWORD, "Ada").await;
    let tokens = stack.login_user("ada@example.com", PASSWORD).await;
    // WHEN the user reads their profile
    let response = stack.get_user("me", tokens["access_token"].as_str()).await;
    // THEN the refused read is the function's internal error, with nothing internal in the body
    let (_, problem) = assert_problem(response, 500);
    assert!(!problem.to_string().contains("AccessDenied"), "{problem}");
    assert_eq!(check.denials(), 1);
    let _ = std::fs::remove_file(path);
}

#[test]
fn security_md_shows_the_statements_of_the_template() {
    let transformed = localdev::iam::transformed(&repo_root().join("template.yaml")).expect("the SAM transform");
    let cfn = localdev::Template::load(transformed).expect("transformed template");
    let table = Policies::markdown(&cfn).expect("table");
    let security = std::fs::read_to_string(repo_root().join("SECURITY.md")).unwrap();
    let (begin, end) = ("<!-- iam-table: begin -->\n", "<!-- iam-table: end -->");
    let start = security.find(begin).expect("SECURITY.md has the IAM table markers") + begin.len();
    let stop = security[start..].find(end).expect("end marker") + start;
    assert_eq!(
        &security[start..stop],
        table,
        "SECURITY.md is out of date: replace the table with the output of `target/debug/localdev iam-table`"
    );
}

/// Run last by `make test`, with `IAM_RECORD` naming the record of the suite's IAM check.
#[test]
#[ignore = "reads the record of a whole `make test` run"]
fn every_call_of_the_suite_was_allowed_and_every_granted_action_was_exercised() {
    let path = std::env::var("IAM_RECORD").expect("IAM_RECORD names the suite's record");
    let entries = record::read(std::path::Path::new(&path)).expect("the record");
    assert!(entries.len() > 100, "only {} decisions recorded: did the suite use the check?", entries.len());
    let problems = record::problems(&policies(), &entries);
    assert!(problems.is_empty(), "{} problem(s):\n{}", problems.len(), problems.join("\n"));
}
