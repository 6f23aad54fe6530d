//! SES through the local IAM check, against moto, and the local outbox. Needs the emulators:
//! `dev/scripts/emulators.sh start && eval "$(dev/scripts/emulators.sh env)" && cargo test -p localdev --test mail`

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use aws_sdk_sesv2::error::ProvideErrorMetadata;
use aws_sdk_sesv2::types::{Body, Content, Destination, EmailContent, Message as SesMessage};
use bytes::Bytes;
use http_body_util::Empty;
use localdev::gateway::{Gateway, GatewayOptions};
use localdev::iam::{IamProxy, IamProxyOptions};
use localdev::{outbox, LocalStack, StackResources, Template};

fn template_path() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml"))
}

fn endpoint(var: &str) -> String {
    std::env::var(var)
        .unwrap_or_else(|_| panic!("{var} is not set: run `eval \"$(dev/scripts/emulators.sh env)\"` first"))
}

fn sdk(access_key_id: &str) -> aws_config::SdkConfig {
    aws_config::SdkConfig::builder()
        .behavior_version(aws_config::BehaviorVersion::latest())
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sesv2::config::SharedCredentialsProvider::new(
            aws_sdk_sesv2::config::Credentials::new(access_key_id, "local", None, None, "test"),
        ))
        .build()
}

/// A fresh stack whose sender is an address of its own, and an IAM check for the same template.
async fn stack_and_check(template: &Path, sender: &str) -> (LocalStack, IamProxy) {
    let overrides = format!("SenderEmail={sender}");
    let loaded = Template::load_with_overrides(template_path(), &overrides).unwrap();
    let admin = sdk("local");
    let dynamodb = aws_sdk_dynamodb::Client::from_conf(
        aws_sdk_dynamodb::config::Builder::from(&admin).endpoint_url(endpoint("AWS_ENDPOINT_URL_DYNAMODB")).build(),
    );
    let secrets = aws_sdk_secretsmanager::Client::from_conf(
        aws_sdk_secretsmanager::config::Builder::from(&admin)
            .endpoint_url(endpoint("AWS_ENDPOINT_URL_SECRETS_MANAGER"))
            .build(),
    );
    let stack = LocalStack::new(&format!("mail-{}", uuid::Uuid::new_v4().simple())).unwrap();
    StackResources::create(&loaded, stack.clone(), &dynamodb, &secrets).await.unwrap();
    let options = IamProxyOptions {
        template: template.to_owned(),
        parameter_overrides: overrides,
        region: "us-east-1".into(),
        dynamodb: endpoint("AWS_ENDPOINT_URL_DYNAMODB"),
        secrets_manager: endpoint("AWS_ENDPOINT_URL_SECRETS_MANAGER"),
        record: None,
        log_denials: false,
    };
    (stack, IamProxy::start(options, "127.0.0.1:0".parse().unwrap()).await.unwrap())
}

/// SESv2 as a function of `stack` signs it, through the check.
fn ses_as(stack: &LocalStack, function: &str, check: &IamProxy) -> aws_sdk_sesv2::Client {
    let config =
        aws_sdk_sesv2::config::Builder::from(&sdk(&stack.access_key_id(function))).endpoint_url(check.url()).build();
    aws_sdk_sesv2::Client::from_conf(config)
}

async fn send(
    client: &aws_sdk_sesv2::Client,
    from: &str,
    to: &str,
) -> Result<String, aws_sdk_sesv2::error::SdkError<aws_sdk_sesv2::operation::send_email::SendEmailError>> {
    let text = "Open https://app.example.com/verify-email#token=abc to verify.";
    let body = Body::builder()
        .text(Content::builder().data(text).build().unwrap())
        .html(
            Content::builder()
                .data("<p><a href=\"https://app.example.com/verify-email#token=abc\">Verify</a></p>")
                .build()
                .unwrap(),
        )
        .build();
    let message = SesMessage::builder()
        .subject(Content::builder().data("Verify your email address").build().unwrap())
        .body(body)
        .build();
    client
        .send_email()
        .from_email_address(from)
        .destination(Destination::builder().to_addresses(to).build())
        .content(EmailContent::builder().simple(message).build())
        .send()
        .await
        .map(|sent| sent.message_id().unwrap_or_default().to_owned())
}

fn unique_sender() -> String {
    format!("sender-{}@example.org", uuid::Uuid::new_v4().simple())
}

#[tokio::test]
async fn given_the_mailer_when_it_sends_from_its_sender_then_ses_accepts_and_the_outbox_keeps_the_mail() {
    // GIVEN a stack whose sender identity only `StackResources::create` made
    let sender = unique_sender();
    let (stack, check) = stack_and_check(&template_path(), &sender).await;
    // WHEN the mailer sends from it through the check
    let id = send(&ses_as(&stack, "MailerFunction", &check), &sender, "ada@example.com").await.expect("mail sent");
    // THEN the check kept the mail as it was asked to send it, under moto's id
    let kept = check.outbox();
    assert_eq!(kept.len(), 1);
    let mail = &kept[0];
    assert_eq!(mail.id, id);
    assert_eq!((mail.from.as_str(), mail.to.as_slice()), (sender.as_str(), &["ada@example.com".to_owned()][..]));
    assert_eq!(mail.subject, "Verify your email address");
    assert_eq!(mail.text, "Open https://app.example.com/verify-email#token=abc to verify.");
    assert!(mail.html.contains("<a href="), "{}", mail.html);
    assert_eq!(mail.links(), ["https://app.example.com/verify-email#token=abc"]);
    // AND it serves the same over HTTP, and the local gateway does too
    assert_eq!(outbox::fetch(&check.url()).await.unwrap(), kept);
    let template = Template::load(template_path()).unwrap();
    let options = GatewayOptions { iam_endpoint: Some(check.url()), ..GatewayOptions::default() };
    let gateway = Gateway::new(&template, options).unwrap();
    let remote: SocketAddr = "127.0.0.1:9".parse().unwrap();
    let request = http::Request::get(outbox::PATH).body(Empty::<Bytes>::new()).unwrap();
    let response = gateway.respond(request, remote).await;
    assert_eq!(response.status(), 200);
    let served: Vec<outbox::Message> = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(served, kept);
    assert_eq!(check.denials(), 0);
}

#[tokio::test]
async fn given_any_other_sender_or_function_then_aws_access_denied_and_nothing_is_sent() {
    // GIVEN a stack and its check
    let sender = unique_sender();
    let (stack, check) = stack_and_check(&template_path(), &sender).await;
    let mailer = ses_as(&stack, "MailerFunction", &check);
    // WHEN the mailer sends from an address of another domain
    let error = send(&mailer, "someone@example.net", "ada@example.com").await.expect_err("another sender");
    // THEN it is refused as SES refuses it, on that address's identity
    assert_eq!(error.raw_response().map(|r| r.status().as_u16()), Some(403));
    assert_eq!(error.code(), Some("AccessDeniedException"));
    let expected = format!(
        "User: arn:aws:sts::123456789012:assumed-role/{stack}-MailerFunctionRole/{stack}-MailerFunction is not \
         authorized to perform: ses:SendEmail on resource: arn:aws:ses:us-east-1:123456789012:identity/someone@example.net \
         because no identity-based policy allows the ses:SendEmail action"
    );
    assert_eq!(error.message(), Some(expected.as_str()));
    // AND a function without the grant may not send from the sender either
    let register = ses_as(&stack, "RegisterFunction", &check);
    let error = send(&register, &sender, "ada@example.com").await.expect_err("register sends no mail");
    assert_eq!(error.code(), Some("AccessDeniedException"));
    // AND an SES call the check cannot read is refused, not forwarded
    let error = mailer.create_email_identity().email_identity("x@example.net").send().await.expect_err("unread");
    assert_eq!(error.code(), Some("ValidationException"));
    assert_eq!(check.denials(), 3);
    assert!(check.outbox().is_empty());
}

#[tokio::test]
async fn given_a_statement_on_the_domain_identity_only_then_its_addresses_may_send() {
    // GIVEN the template with the sender's own identity taken out of the mailer's statement
    let template = std::fs::read_to_string(template_path()).unwrap();
    let address = "                - !Sub \"arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/${SenderEmail}\"\n";
    assert_eq!(template.matches(address).count(), 1, "the test expects the mailer's SES statement in template.yaml");
    let path = std::env::temp_dir().join(format!("mail-test-{}.yaml", uuid::Uuid::new_v4().simple()));
    std::fs::write(&path, template.replace(address, "")).unwrap();
    let sender = unique_sender();
    let (stack, check) = stack_and_check(&path, &sender).await;
    // WHEN the mailer sends from the sender
    let sent = send(&ses_as(&stack, "MailerFunction", &check), &sender, "ada@example.com").await;
    // THEN the domain's identity grants it
    sent.expect("the domain identity allows its addresses");
    assert_eq!(check.outbox().len(), 1);
    let _ = std::fs::remove_file(path);
}
