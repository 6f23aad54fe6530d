//! The table's stream fed to the mailer as Lambda's event source mapping feeds it, against
//! DynamoDB Local. Needs the emulators:
//! `dev/scripts/emulators.sh start && eval "$(dev/scripts/emulators.sh env)" && cargo test -p localdev --test stream`

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_dynamodb::types::AttributeValue;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use localdev::stream::{run, Batch, StreamFeed};
use localdev::{LocalStack, Template};
use serde_json::{json, Value};

fn template() -> Template {
    Template::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml")).unwrap()
}

fn dynamodb_url() -> String {
    std::env::var("AWS_ENDPOINT_URL_DYNAMODB")
        .expect("AWS_ENDPOINT_URL_DYNAMODB is not set: run `eval \"$(dev/scripts/emulators.sh env)\"` first")
}

/// A stack with only its table, and a client to write to it.
async fn new_table() -> (LocalStack, String, aws_sdk_dynamodb::Client) {
    let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
    let client = aws_sdk_dynamodb::Client::new(&config);
    let stack = LocalStack::new(&format!("stream-{}", uuid::Uuid::new_v4().simple())).unwrap();
    let name = stack.physical_name("AuthTable");
    template().table_definition_of("AuthTable").unwrap().ensure(&client, &name).await.unwrap();
    (stack, name, client)
}

async fn put(client: &aws_sdk_dynamodb::Client, table: &str, pk: &str) {
    client.put_item().table_name(table).item("pk", AttributeValue::S(pk.into())).send().await.unwrap();
}

fn keys(batch: &Batch) -> Vec<&str> {
    batch.records.iter().map(|r| r["dynamodb"]["Keys"]["pk"]["S"].as_str().unwrap()).collect()
}

/// Batches until they hold `count` records (stream records take a moment to appear).
async fn batches(feed: &mut StreamFeed, count: usize) -> Vec<Batch> {
    let mut batches = Vec::new();
    for _ in 0..100 {
        batches.extend(feed.next_record_batches().await.unwrap());
        if batches.iter().map(|b| b.records.len()).sum::<usize>() >= count {
            return batches;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("only {batches:?} after 5 s");
}

#[tokio::test]
async fn given_table_writes_then_the_feed_gives_inserted_outbox_items_in_order_in_batches_of_ten() {
    // GIVEN a stack's table where twelve mails, a user and changes were written before the feed started
    let (stack, table, client) = new_table().await;
    let outbox: Vec<String> = (0..12).map(|i| format!("OUTBOX#{i:02}")).collect();
    put(&client, &table, &outbox[0]).await;
    put(&client, &table, "USER#1").await;
    put(&client, &table, &outbox[0]).await;
    client.delete_item().table_name(&table).key("pk", AttributeValue::S("USER#1".into())).send().await.unwrap();
    for pk in &outbox[1..] {
        put(&client, &table, pk).await;
    }
    // WHEN the mailer's feed reads the stream
    let mut feed = StreamFeed::new(&template(), &stack, "MailerFunction", &dynamodb_url()).await.unwrap();
    let read = batches(&mut feed, 12).await;
    // THEN from the trim horizon, only the inserts of OUTBOX# items, in order, ten at most a batch
    assert_eq!(read.iter().map(|b| b.records.len()).collect::<Vec<_>>(), [10, 2]);
    let all: Vec<&str> = read.iter().flat_map(keys).collect();
    assert_eq!(all, outbox.iter().map(String::as_str).collect::<Vec<_>>());
    // AND each event is the DynamoDB event Lambda sends, naming the stack's stream
    let event: aws_lambda_events::event::dynamodb::Event = serde_json::from_value(read[1].event()).unwrap();
    let prefix = format!("arn:aws:dynamodb:us-east-1:123456789012:table/{table}/stream/");
    for record in &event.records {
        assert_eq!((record.event_name.as_str(), record.aws_region.as_str()), ("INSERT", "us-east-1"));
        assert!(record.event_source_arn.as_deref().is_some_and(|arn| arn.starts_with(&prefix)), "{record:?}");
        assert!(record.change.sequence_number.is_some());
    }
    // WHEN another mail is written THEN the next read gives it alone: the feed goes on from where it was
    put(&client, &table, "OUTBOX#new").await;
    let next = batches(&mut feed, 1).await;
    assert_eq!(next.iter().flat_map(keys).collect::<Vec<_>>(), ["OUTBOX#new"]);
    assert!(feed.next_batches().await.unwrap().is_empty());
}

/// A stand-in for `cargo lambda watch` whose mailer reports `OUTBOX#bad` failed, always.
async fn fake_lambda(events: Arc<Mutex<Vec<Value>>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let events = events.clone();
            let service = service_fn(move |request: http::Request<hyper::body::Incoming>| {
                let events = events.clone();
                async move {
                    assert_eq!(request.uri().path(), "/2015-03-31/functions/mailer/invocations");
                    let body = request.into_body().collect().await.unwrap().to_bytes();
                    let event: Value = serde_json::from_slice(&body).unwrap();
                    let failed: Vec<Value> = event["Records"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter(|r| r["dynamodb"]["Keys"]["pk"]["S"] == "OUTBOX#bad")
                        .map(|r| json!({"itemIdentifier": r["dynamodb"]["SequenceNumber"]}))
                        .collect();
                    events.lock().unwrap().push(event);
                    let answer = json!({"batchItemFailures": failed}).to_string();
                    Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(answer))))
                }
            });
            tokio::spawn(http1::Builder::new().serve_connection(TokioIo::new(stream), service));
        }
    });
    url
}

#[tokio::test]
async fn given_a_mail_the_function_keeps_failing_then_it_is_retried_then_written_to_the_on_failure_file() {
    // GIVEN a good mail and a bad one, and a mailer that keeps reporting the bad one failed
    let (stack, table, client) = new_table().await;
    put(&client, &table, "OUTBOX#good").await;
    put(&client, &table, "OUTBOX#bad").await;
    let events = Arc::new(Mutex::new(Vec::new()));
    let url = fake_lambda(events.clone()).await;
    let dir = std::env::temp_dir().join(format!("stream-test-{}", uuid::Uuid::new_v4().simple()));
    let file: PathBuf = dir.join(format!("{}.jsonl", stack.physical_name("MailerFailures")));
    // WHEN `localdev stream` runs until the bad mail is given up on
    let feed = StreamFeed::new(&template(), &stack, "MailerFunction", &dynamodb_url()).await.unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn({
        let dir = dir.clone();
        async move {
            run(feed, &url, &dir, async {
                let _ = stopped.await;
            })
            .await
        }
    });
    for _ in 0..200 {
        if file.exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = stop.send(());
    running.await.unwrap().unwrap();
    // THEN the batch went once, then the bad mail alone for each of the three retries
    let keys = |event: &Value| -> Vec<String> {
        event["Records"].as_array().unwrap().iter().map(|r| r["dynamodb"]["Keys"]["pk"]["S"].to_string()).collect()
    };
    let sent: Vec<Vec<String>> = events.lock().unwrap().iter().map(keys).collect();
    let (good, bad) = ("\"OUTBOX#good\"".to_owned(), "\"OUTBOX#bad\"".to_owned());
    assert_eq!(sent, [vec![good, bad.clone()], vec![bad.clone()], vec![bad.clone()], vec![bad]]);
    // AND the destination holds one line with the bad mail's record
    let text = std::fs::read_to_string(&file).expect("the on-failure destination's file");
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["Records"][0]["dynamodb"]["Keys"]["pk"]["S"], "OUTBOX#bad");
    assert_eq!(lines[0]["requestContext"]["approximateInvokeCount"], 4);
    assert_eq!(
        lines[0]["requestContext"]["functionArn"],
        format!("arn:aws:lambda:us-east-1:123456789012:function:{}", stack.physical_name("MailerFunction"))
    );
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn given_a_feed_started_on_an_empty_table_when_other_tables_are_written_first_then_its_first_mail_still_comes() {
    // GIVEN a feed that has read its table's empty stream
    let (stack, table, client) = new_table().await;
    let mut feed = StreamFeed::new(&template(), &stack, "MailerFunction", &dynamodb_url()).await.unwrap();
    assert!(feed.next_batches().await.unwrap().is_empty());
    // AND another stack's table written since (DynamoDB Local numbers records across tables)
    let (_, other, _) = new_table().await;
    put(&client, &other, "OUTBOX#other").await;
    // WHEN the table gets its first mail
    put(&client, &table, "OUTBOX#1").await;
    // THEN the feed reads it
    let read = batches(&mut feed, 1).await;
    assert_eq!(read.iter().flat_map(keys).collect::<Vec<_>>(), ["OUTBOX#1"]);
}
