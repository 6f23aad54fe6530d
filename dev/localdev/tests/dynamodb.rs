//! `create_table` against DynamoDB Local. Needs the emulators, as `make test` provides:
//! `dev/scripts/emulators.sh start && eval "$(dev/scripts/emulators.sh env)" && cargo test -p localdev --test dynamodb`

use aws_sdk_dynamodb::types::{BillingModeSummary, TimeToLiveStatus};
use localdev::Template;

async fn client() -> aws_sdk_dynamodb::Client {
    assert!(
        std::env::var("AWS_ENDPOINT_URL_DYNAMODB").is_ok() || std::env::var("AWS_ENDPOINT_URL").is_ok(),
        "AWS_ENDPOINT_URL_DYNAMODB is not set: run `eval \"$(dev/scripts/emulators.sh env)\"` first"
    );
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    aws_sdk_dynamodb::Client::new(&config)
}

#[tokio::test]
async fn creates_the_template_table_with_ttl() {
    let client = client().await;
    let template = Template::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml")).unwrap();
    let name = format!("localdev-test-{}", uuid::Uuid::new_v4());
    template
        .create_table(&client, &name)
        .await
        .unwrap_or_else(|e| panic!("create_table failed (is DynamoDB Local running?): {e}"));
    let table = client.describe_table().table_name(&name).send().await.unwrap().table.unwrap();
    assert_eq!(table.key_schema().len(), 1);
    assert_eq!(table.key_schema()[0].attribute_name(), "pk");
    let billing =
        table.billing_mode_summary().and_then(BillingModeSummary::billing_mode).map(|b| b.as_str().to_owned());
    assert_eq!(billing.as_deref(), Some("PAY_PER_REQUEST"));
    let ttl = client.describe_time_to_live().table_name(&name).send().await.unwrap();
    let ttl = ttl.time_to_live_description().unwrap();
    assert_eq!(ttl.attribute_name(), Some("expires_at"));
    assert_eq!(ttl.time_to_live_status(), Some(&TimeToLiveStatus::Enabled));
    // A second create fails; ensure() reports the existing table.
    assert!(template.create_table(&client, &name).await.is_err());
    assert!(!template.table_definition().unwrap().ensure(&client, &name).await.unwrap());
    client.delete_table().table_name(&name).send().await.unwrap();
}
