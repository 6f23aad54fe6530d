//! A DynamoDB stream feeding a function, as Lambda's event source mapping does it, for the
//! template's `Type: DynamoDB` events.
//!
//! [`Mapping`] reads the event's settings from the template and refuses any it does not
//! emulate. [`StreamFeed`] reads every shard of the stack's table stream (DynamoDB Local serves
//! the Streams API on its own endpoint) from the starting position on, keeps each shard's
//! iterator to go on from there, keeps the records the `FilterCriteria` patterns match, and cuts
//! them into batches of `BatchSize`, each shard's in order; [`Batch::event`] is the Lambda event.
//! [`deliver`] hands one batch to the function and retries as Lambda does
//! (`ReportBatchItemFailures`, `BisectBatchOnFunctionError`, `MaximumRetryAttempts`); what it
//! gives up on goes to the on-failure destination, locally a JSON-lines file ([`OnFailure`]).
//! [`run`] polls and invokes through `cargo lambda watch`, for `localdev stream`.
//!
//! DynamoDB Local 3.3.0, as seen on this machine (and relied on here): `LatestStreamArn` is
//! `arn:aws:dynamodb:ddblocal:000000000000:table/<name>/stream/<label>` and records say
//! `awsRegion: ddblocal`, so both are rewritten to the stack's region and account; a new table's
//! stream has one open shard; `TRIM_HORIZON` and `AFTER_SEQUENCE_NUMBER` work; a write is
//! readable within ~60 ms; a read at the end returns no records and a next iterator; an iterator
//! expires after 15 minutes (`ExpiredIteratorException`: it embeds its creation time); sequence
//! numbers are counted across all tables, so an iterator taken on a shard with no record yet
//! points at the shard's starting number and, once other tables' writes have used that number
//! up, reading it raises `TrimmedDataAccessException` (a new `TRIM_HORIZON` iterator reads the
//! records; after one record has been read, iterators follow the gaps);
//! `ApproximateCreationDateTime` is epoch seconds rounded down to the minute; transaction writes
//! give one record per item; event ids are UUIDs.

use std::collections::{BTreeMap, VecDeque};
use std::future::Future;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use aws_sdk_dynamodbstreams::error::DisplayErrorContext;
use aws_sdk_dynamodbstreams::types::{AttributeValue, Record, ShardIteratorType};
use base64::Engine as _;
use bytes::Bytes;
use serde_json::{json, Value};
use serde_norway::Value as Yaml;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::error::{template_error, Error, Result};
use crate::gateway::invoke::{InvokeError, Invoker};
use crate::intrinsics::get_att;
use crate::params::scalar_string;
use crate::stack::LocalStack;
use crate::template::Template;

/// How often `localdev stream` reads the stream.
pub const POLL: Duration = Duration::from_millis(250);

/// The event properties emulated; any other is refused rather than ignored.
const EMULATED: &[&str] = &[
    "Stream",
    "StartingPosition",
    "BatchSize",
    "MaximumBatchingWindowInSeconds",
    "MaximumRetryAttempts",
    "BisectBatchOnFunctionError",
    "FunctionResponseTypes",
    "DestinationConfig",
    "FilterCriteria",
];

/// A function's `Type: DynamoDB` event, as its event source mapping applies it.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapping {
    /// The function's logical id.
    pub function: String,
    /// Its cargo binary (the name `cargo lambda watch` invokes it by).
    pub binary: String,
    pub timeout: Duration,
    /// The table's logical id.
    pub table: String,
    pub batch_size: usize,
    /// `None`: until the record expires (`-1`, the default).
    pub maximum_retry_attempts: Option<u32>,
    pub bisect_batch_on_function_error: bool,
    pub report_batch_item_failures: bool,
    /// The on-failure destination's logical id.
    pub on_failure: Option<String>,
    /// A record goes to the function when any pattern matches it (all, when there are none).
    pub filters: Vec<Pattern>,
}

fn number(props: &Yaml, key: &str, default: i64) -> Result<i64> {
    props
        .get(key)
        .and_then(scalar_string)
        .map_or(Ok(default), |v| v.parse().map_err(|_| template_error(format!("{key} must be a whole number"))))
}

impl Mapping {
    /// Every `Type: DynamoDB` event of the template's functions.
    pub fn all(template: &Template) -> Result<Vec<Self>> {
        let mut mappings = Vec::new();
        for function in template.functions()? {
            let events = template.resource(&function.logical_id).and_then(|r| r.get("Properties")?.get("Events"));
            for (name, event) in events.and_then(Yaml::as_mapping).into_iter().flatten() {
                if event.get("Type").and_then(Yaml::as_str) == Some("DynamoDB") {
                    let name = name.as_str().unwrap_or_default();
                    let props = event.get("Properties").cloned().unwrap_or_default();
                    mappings.push(
                        Self::from_properties(template, &function.logical_id, &props)
                            .map_err(|e| template_error(format!("{}.Events.{name}: {e}", function.logical_id)))?,
                    );
                }
            }
        }
        Ok(mappings)
    }

    /// The one `Type: DynamoDB` event of `function`.
    pub fn of(template: &Template, function: &str) -> Result<Self> {
        let mut found: Vec<_> = Self::all(template)?.into_iter().filter(|m| m.function == function).collect();
        match found.len() {
            1 => Ok(found.remove(0)),
            n => Err(template_error(format!("{function} has {n} DynamoDB events; the stream feed needs one"))),
        }
    }

    fn from_properties(template: &Template, function: &str, raw: &Yaml) -> Result<Self> {
        for key in raw.as_mapping().into_iter().flatten().filter_map(|(k, _)| k.as_str()) {
            if !EMULATED.contains(&key) {
                return Err(template_error(format!("{key} is not emulated locally")));
            }
        }
        let table = match raw.get("Stream").and_then(get_att) {
            Some((table, attribute)) if attribute == "StreamArn" => table,
            _ => return Err(template_error("Stream must be a !GetAtt <Table>.StreamArn of the template")),
        };
        let on_failure_raw = raw.get("DestinationConfig").and_then(|d| d.get("OnFailure")?.get("Destination"));
        let on_failure = match on_failure_raw {
            None => None,
            Some(destination) => Some(get_att(destination).map(|(id, _)| id).ok_or_else(|| {
                template_error("DestinationConfig.OnFailure.Destination must be a !GetAtt of the template")
            })?),
        };
        let props = template.resolver(&BTreeMap::new()).resolve(raw)?.unwrap_or_default();
        // LATEST would need to know which records came after the mapping, which DynamoDB Local's
        // first iterator on a shard cannot tell (see the module's notes).
        let starting_position = props.get("StartingPosition").and_then(scalar_string);
        if starting_position.as_deref() != Some("TRIM_HORIZON") {
            return Err(template_error(format!(
                "StartingPosition {starting_position:?}: only TRIM_HORIZON is emulated"
            )));
        }
        if number(&props, "MaximumBatchingWindowInSeconds", 0)? != 0 {
            // Batches go out at each poll; a window would hold them longer on AWS.
            return Err(template_error("MaximumBatchingWindowInSeconds other than 0 is not emulated"));
        }
        let batch_size = number(&props, "BatchSize", 100)?;
        let batch_size = usize::try_from(batch_size)
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| template_error("BatchSize must be 1 to 10000"))?;
        let maximum_retry_attempts = match number(&props, "MaximumRetryAttempts", -1)? {
            -1 => None,
            n => Some(
                u32::try_from(n)
                    .ok()
                    .filter(|n| *n <= 10_000)
                    .ok_or_else(|| template_error("MaximumRetryAttempts must be -1 to 10000"))?,
            ),
        };
        let response_types: Vec<String> = props
            .get("FunctionResponseTypes")
            .and_then(Yaml::as_sequence)
            .map(|types| types.iter().filter_map(scalar_string).collect())
            .unwrap_or_default();
        if let Some(other) = response_types.iter().find(|t| *t != "ReportBatchItemFailures") {
            return Err(template_error(format!("FunctionResponseTypes {other} is not emulated")));
        }
        let patterns = props.get("FilterCriteria").and_then(|c| c.get("Filters")).and_then(Yaml::as_sequence);
        let filters = patterns
            .into_iter()
            .flatten()
            .map(|filter| {
                let text = filter
                    .get("Pattern")
                    .and_then(scalar_string)
                    .ok_or_else(|| template_error("a filter has no Pattern"))?;
                Pattern::parse(&text)
            })
            .collect::<Result<_>>()?;
        let spec = template.function(function)?;
        Ok(Self {
            function: function.to_owned(),
            binary: spec.binary,
            timeout: Duration::from_secs(spec.timeout_seconds),
            table,
            batch_size,
            maximum_retry_attempts,
            bisect_batch_on_function_error: props
                .get("BisectBatchOnFunctionError")
                .and_then(scalar_string)
                .is_some_and(|v| v == "true"),
            report_batch_item_failures: !response_types.is_empty(),
            on_failure,
            filters,
        })
    }
}

/// One `FilterCriteria` pattern, with the operators the template uses: lists of exact values
/// and `prefix`. Any other operator is refused when the pattern is read: ignoring it would send
/// the function records Lambda would not.
#[derive(Debug, Clone, PartialEq)]
pub struct Pattern(serde_json::Map<String, Value>);

impl Pattern {
    pub fn parse(text: &str) -> Result<Self> {
        fn check(pattern: &serde_json::Map<String, Value>) -> Result<()> {
            for (key, value) in pattern {
                match value {
                    Value::Object(nested) => check(nested)?,
                    Value::Array(matchers) if !matchers.is_empty() => {
                        for matcher in matchers {
                            match matcher {
                                Value::Object(operator) => match operator.iter().next() {
                                    Some((name, Value::String(_))) if name == "prefix" && operator.len() == 1 => {}
                                    _ => {
                                        return Err(template_error(format!(
                                            "filter operator {matcher} is not emulated"
                                        )))
                                    }
                                },
                                Value::Array(_) => {
                                    return Err(template_error(format!("{key}: nested list in a filter")))
                                }
                                _ => {}
                            }
                        }
                    }
                    _ => return Err(template_error(format!("{key}: a filter's values must be a non-empty list"))),
                }
            }
            Ok(())
        }
        match serde_json::from_str(text) {
            Ok(Value::Object(pattern)) => check(&pattern).map(|()| Self(pattern)),
            _ => Err(template_error(format!("filter pattern {text:?} is not a JSON object"))),
        }
    }

    /// Whether the record (in its Lambda event shape) matches: every field the pattern names is
    /// there and equals one of its values or starts with one of its prefixes.
    pub fn matches(&self, record: &Value) -> bool {
        fn matches(pattern: &serde_json::Map<String, Value>, value: &Value) -> bool {
            pattern.iter().all(|(key, expected)| match (expected, value.get(key)) {
                (Value::Object(nested), Some(actual)) => matches(nested, actual),
                (Value::Array(matchers), Some(actual)) => matchers.iter().any(|matcher| match matcher {
                    Value::Object(operator) => {
                        let prefix = operator.get("prefix").and_then(Value::as_str);
                        prefix.is_some_and(|p| actual.as_str().is_some_and(|a| a.starts_with(p)))
                    }
                    exact => exact == actual,
                }),
                _ => false,
            })
        }
        matches(&self.0, record)
    }
}

fn attribute(value: &AttributeValue) -> Value {
    let base64 = |blob: &aws_sdk_dynamodbstreams::primitives::Blob| {
        Value::String(base64::engine::general_purpose::STANDARD.encode(blob.as_ref()))
    };
    match value {
        AttributeValue::S(s) => json!({"S": s}),
        AttributeValue::N(n) => json!({"N": n}),
        AttributeValue::B(b) => json!({"B": base64(b)}),
        AttributeValue::Ss(items) => json!({"SS": items}),
        AttributeValue::Ns(items) => json!({"NS": items}),
        AttributeValue::Bs(items) => json!({"BS": items.iter().map(base64).collect::<Vec<_>>()}),
        AttributeValue::M(map) => json!({"M": item(map)}),
        AttributeValue::L(items) => json!({"L": items.iter().map(attribute).collect::<Vec<_>>()}),
        AttributeValue::Null(is_null) => json!({"NULL": is_null}),
        AttributeValue::Bool(b) => json!({"BOOL": b}),
        _ => Value::Null,
    }
}

fn item(map: &std::collections::HashMap<String, AttributeValue>) -> Value {
    Value::Object(map.iter().map(|(k, v)| (k.clone(), attribute(v))).collect())
}

/// A stream record as Lambda puts it in a DynamoDB event.
fn lambda_record(record: &Record, region: &str, event_source_arn: &str) -> Value {
    let mut change = serde_json::Map::new();
    if let Some(stream) = record.dynamodb() {
        if let Some(at) = stream.approximate_creation_date_time() {
            change.insert("ApproximateCreationDateTime".into(), json!(at.as_secs_f64()));
        }
        for (name, image) in
            [("Keys", stream.keys()), ("NewImage", stream.new_image()), ("OldImage", stream.old_image())]
        {
            if let Some(image) = image {
                change.insert(name.into(), item(image));
            }
        }
        change.insert("SequenceNumber".into(), json!(stream.sequence_number()));
        change.insert("SizeBytes".into(), json!(stream.size_bytes()));
        change.insert("StreamViewType".into(), json!(stream.stream_view_type().map(|v| v.as_str())));
    }
    let mut event = json!({
        "eventID": record.event_id(),
        "eventName": record.event_name().map(|name| name.as_str()),
        "eventVersion": record.event_version(),
        "eventSource": record.event_source(),
        "awsRegion": region,
        "dynamodb": change,
        "eventSourceARN": event_source_arn,
    });
    // Only TTL deletions carry one.
    if let Some(identity) = record.user_identity() {
        event["userIdentity"] = json!({"type": identity.r#type(), "principalId": identity.principal_id()});
    }
    event
}

fn sequence_number(record: &Value) -> Option<&str> {
    record.get("dynamodb")?.get("SequenceNumber")?.as_str()
}

/// Up to `BatchSize` records of one shard, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
    pub shard_id: String,
    pub records: Vec<Value>,
}

/// The Lambda DynamoDB event of `records`.
pub fn event(records: &[Value]) -> Value {
    json!({"Records": records})
}

impl Batch {
    pub fn event(&self) -> Value {
        event(&self.records)
    }
}

/// Where one shard is read from next.
#[derive(Debug, Default)]
struct Shard {
    iterator: Option<String>,
    last_sequence: Option<String>,
    /// Closed and read to its end.
    done: bool,
}

/// A stack's table stream, read for one function's event source mapping.
pub struct StreamFeed {
    mapping: Mapping,
    streams: aws_sdk_dynamodbstreams::Client,
    /// DynamoDB Local's name for the stream.
    stream_arn: String,
    /// The stream's ARN as AWS writes it in events: the stack's region and account.
    event_source_arn: String,
    function_arn: String,
    region: String,
    stack: LocalStack,
    shards: BTreeMap<String, Shard>,
}

impl StreamFeed {
    /// The stream of `stack`'s table for `function`'s DynamoDB event, at DynamoDB Local's
    /// `dynamodb_endpoint`, with nothing read yet.
    pub async fn new(template: &Template, stack: &LocalStack, function: &str, dynamodb_endpoint: &str) -> Result<Self> {
        let mapping = Mapping::of(template, function)?;
        let config = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(template.region().to_owned()))
            .endpoint_url(dynamodb_endpoint)
            .credentials_provider(aws_sdk_dynamodbstreams::config::SharedCredentialsProvider::new(
                aws_sdk_dynamodbstreams::config::Credentials::new("local", "local", None, None, "localdev"),
            ))
            .build();
        let table = stack.physical_name(&mapping.table);
        let described = aws_sdk_dynamodb::Client::new(&config)
            .describe_table()
            .table_name(&table)
            .send()
            .await
            .map_err(|e| Error::Aws(format!("DescribeTable {table}: {}", DisplayErrorContext(e))))?;
        let stream_arn = described
            .table()
            .and_then(|t| t.latest_stream_arn())
            .ok_or_else(|| Error::Aws(format!("table {table} has no stream (StreamSpecification)")))?
            .to_owned();
        let label = stream_arn.rsplit_once("/stream/").map_or("local", |(_, label)| label);
        let (region, account) = (template.region(), template.account_id());
        Ok(Self {
            event_source_arn: format!("arn:aws:dynamodb:{region}:{account}:table/{table}/stream/{label}"),
            function_arn: format!("arn:aws:lambda:{region}:{account}:function:{}", stack.physical_name(function)),
            region: region.to_owned(),
            stack: stack.clone(),
            streams: aws_sdk_dynamodbstreams::Client::new(&config),
            stream_arn,
            mapping,
            shards: BTreeMap::new(),
        })
    }

    pub fn mapping(&self) -> &Mapping {
        &self.mapping
    }

    /// The ARN events name the stream by.
    pub fn event_source_arn(&self) -> &str {
        &self.event_source_arn
    }

    /// Learns the stream's new shards; a child shard waits until its parent is read to its end.
    async fn discover(&mut self) -> Result<()> {
        let mut start: Option<String> = None;
        loop {
            let described = self
                .streams
                .describe_stream()
                .stream_arn(&self.stream_arn)
                .set_exclusive_start_shard_id(start.take())
                .send()
                .await
                .map_err(|e| Error::Aws(format!("DescribeStream: {}", DisplayErrorContext(e))))?;
            let Some(description) = described.stream_description() else { break };
            for shard in description.shards() {
                let Some(id) = shard.shard_id() else { continue };
                let parent_unread = shard.parent_shard_id().and_then(|p| self.shards.get(p)).is_some_and(|p| !p.done);
                if !self.shards.contains_key(id) && !parent_unread {
                    self.shards.insert(id.to_owned(), Shard::default());
                }
            }
            match description.last_evaluated_shard_id() {
                Some(last) => start = Some(last.to_owned()),
                None => break,
            }
        }
        Ok(())
    }

    /// Every record of one shard from where it was left to its current end.
    async fn read(&mut self, id: &str) -> Result<Vec<Value>> {
        let (streams, stream_arn) = (&self.streams, &self.stream_arn);
        let Some(shard) = self.shards.get_mut(id) else { return Ok(Vec::new()) };
        let mut records = Vec::new();
        let mut trimmed_once = false;
        while !shard.done {
            let iterator = match shard.iterator.take() {
                Some(iterator) => iterator,
                None => {
                    let request = streams.get_shard_iterator().stream_arn(stream_arn).shard_id(id);
                    let request = match &shard.last_sequence {
                        Some(sequence) => request
                            .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
                            .sequence_number(sequence),
                        None => request.shard_iterator_type(ShardIteratorType::TrimHorizon),
                    };
                    let got = request
                        .send()
                        .await
                        .map_err(|e| Error::Aws(format!("GetShardIterator {id}: {}", DisplayErrorContext(e))))?;
                    got.shard_iterator().ok_or_else(|| Error::Aws(format!("no iterator for shard {id}")))?.to_owned()
                }
            };
            let page = match streams.get_records().shard_iterator(iterator).send().await {
                Ok(page) => page,
                // A fresh iterator from where the last record left off.
                Err(e) if e.as_service_error().is_some_and(|e| e.is_expired_iterator_exception()) => continue,
                // The first iterator of a shard that had no record yet (see the module's notes).
                Err(e)
                    if shard.last_sequence.is_none()
                        && !trimmed_once
                        && e.as_service_error().is_some_and(|e| e.is_trimmed_data_access_exception()) =>
                {
                    trimmed_once = true;
                    continue;
                }
                Err(e) => return Err(Error::Aws(format!("GetRecords {id}: {}", DisplayErrorContext(e)))),
            };
            for record in page.records() {
                let record = lambda_record(record, &self.region, &self.event_source_arn);
                shard.last_sequence = sequence_number(&record).map(str::to_owned);
                records.push(record);
            }
            shard.iterator = page.next_shard_iterator().map(str::to_owned);
            shard.done = shard.iterator.is_none();
            if page.records().is_empty() {
                break;
            }
        }
        Ok(records)
    }

    /// What the stream holds since the last call, from the trim horizon on the first: the records
    /// the filters match, each shard's cut into batches of `BatchSize`.
    pub async fn next_record_batches(&mut self) -> Result<Vec<Batch>> {
        self.discover().await?;
        let mut batches = Vec::new();
        let ids: Vec<String> = self.shards.iter().filter(|(_, s)| !s.done).map(|(id, _)| id.clone()).collect();
        for id in ids {
            let records: Vec<Value> = self
                .read(&id)
                .await?
                .into_iter()
                .filter(|r| self.mapping.filters.is_empty() || self.mapping.filters.iter().any(|p| p.matches(r)))
                .collect();
            for chunk in records.chunks(self.mapping.batch_size) {
                batches.push(Batch { shard_id: id.clone(), records: chunk.to_vec() });
            }
        }
        Ok(batches)
    }

    /// [`StreamFeed::next_record_batches`] as the events Lambda would invoke the function with.
    pub async fn next_batches(&mut self) -> Result<Vec<Value>> {
        Ok(self.next_record_batches().await?.iter().map(Batch::event).collect())
    }

    /// The on-failure destination, as a file in `dir`, if the mapping has one.
    pub fn on_failure(&self, dir: &Path) -> Option<OnFailure> {
        let destination = self.mapping.on_failure.as_ref()?;
        Some(OnFailure {
            path: dir.join(format!("{}.jsonl", self.stack.physical_name(destination))),
            function_arn: self.function_arn.clone(),
            stream_arn: self.event_source_arn.clone(),
        })
    }
}

/// What one invocation came to, read as Lambda reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Success,
    /// Retry the batch from this record on (the lowest sequence number reported failed).
    RetryFrom(usize),
    /// The invocation failed: the whole batch failed.
    FunctionError,
}

/// The outcome of invoking the function with `records`: its error, or its answer.
pub fn outcome(mapping: &Mapping, records: &[Value], answer: &Result<Value, String>) -> Outcome {
    let Ok(answer) = answer else { return Outcome::FunctionError };
    if !mapping.report_batch_item_failures {
        return Outcome::Success;
    }
    // AWS: an empty or null list or response is a success; an item without a valid
    // itemIdentifier fails the whole batch (an identifier of no record of the batch too, here).
    let failures = match answer.get("batchItemFailures") {
        None | Some(Value::Null) => return Outcome::Success,
        Some(Value::Array(failures)) => failures,
        Some(_) => return Outcome::RetryFrom(0),
    };
    let mut first: Option<usize> = None;
    for failure in failures {
        let identifier = failure.get("itemIdentifier").and_then(Value::as_str).filter(|id| !id.is_empty());
        match identifier.and_then(|id| records.iter().position(|r| sequence_number(r) == Some(id))) {
            Some(index) => first = Some(first.map_or(index, |f| f.min(index))),
            None => return Outcome::RetryFrom(0),
        }
    }
    first.map_or(Outcome::Success, Outcome::RetryFrom)
}

/// Records given up on, with the invocations they had.
#[derive(Debug, Clone, PartialEq)]
pub struct Discarded {
    pub records: Vec<Value>,
    pub invocations: u32,
}

/// Invokes the function with one batch until it succeeds, as Lambda does: a partial failure
/// retries from the first failed record; a function error splits the batch in two first when
/// `BisectBatchOnFunctionError` is on (which uses up no retry, as AWS documents), else retries
/// it whole; after `MaximumRetryAttempts` retries the records left are given up on. `invoke`
/// gets the event and answers the function's response, or its error.
pub async fn deliver<F, Fut>(mapping: &Mapping, records: Vec<Value>, mut invoke: F) -> Vec<Discarded>
where
    F: FnMut(Value) -> Fut,
    Fut: Future<Output = Result<Value, String>>,
{
    // (records, retries so far)
    let mut pending = VecDeque::from([(records, 0u32)]);
    let mut discarded = Vec::new();
    while let Some((records, retries)) = pending.pop_front() {
        let answer = invoke(event(&records)).await;
        let retry = match outcome(mapping, &records, &answer) {
            Outcome::Success => continue,
            Outcome::FunctionError if mapping.bisect_batch_on_function_error && records.len() > 1 => {
                let mut first = records;
                let second = first.split_off(first.len().div_ceil(2));
                pending.push_front((second, retries));
                pending.push_front((first, retries));
                continue;
            }
            Outcome::FunctionError => records,
            Outcome::RetryFrom(index) => records[index..].to_vec(),
        };
        if mapping.maximum_retry_attempts.is_some_and(|max| retries >= max) {
            discarded.push(Discarded { records: retry, invocations: retries + 1 });
        } else {
            pending.push_front((retry, retries + 1));
        }
    }
    discarded
}

/// An on-failure destination, locally: one JSON line per batch given up on, in the shape of the
/// invocation record Lambda sends to SQS, with the records themselves added.
#[derive(Debug, Clone)]
pub struct OnFailure {
    pub path: PathBuf,
    function_arn: String,
    stream_arn: String,
}

impl OnFailure {
    pub fn record(&self, shard_id: &str, discarded: &Discarded) -> Value {
        let sequence = |record: Option<&Value>| record.and_then(sequence_number).map(str::to_owned);
        json!({
            "version": "1.0",
            "timestamp": OffsetDateTime::now_utc().format(&Rfc3339).unwrap_or_default(),
            "requestContext": {
                "functionArn": self.function_arn,
                "condition": "RetryAttemptsExhausted",
                "approximateInvokeCount": discarded.invocations,
            },
            "DDBStreamBatchInfo": {
                "shardId": shard_id,
                "startSequenceNumber": sequence(discarded.records.first()),
                "endSequenceNumber": sequence(discarded.records.last()),
                "batchSize": discarded.records.len(),
                "streamArn": self.stream_arn,
            },
            "Records": discarded.records,
        })
    }

    /// Appends the record of `discarded` to the file and says so on stderr.
    pub fn send(&self, shard_id: &str, discarded: &Discarded) -> std::io::Result<()> {
        let record = self.record(shard_id, discarded);
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut line = record.to_string().into_bytes();
        line.push(b'\n');
        std::fs::OpenOptions::new().create(true).append(true).open(&self.path)?.write_all(&line)?;
        eprintln!(
            "stream: gave up on {} record(s) after {} invocation(s); written to {}",
            discarded.records.len(),
            discarded.invocations,
            self.path.display()
        );
        Ok(())
    }
}

/// `localdev stream`: reads the stream every [`POLL`] and invokes the function through the
/// Lambda Invoke API at `invoke_url` (`cargo lambda watch`) until `shutdown` completes.
pub async fn run(
    mut feed: StreamFeed,
    invoke_url: &str,
    failures_dir: &Path,
    shutdown: impl Future<Output = ()>,
) -> Result<()> {
    let mapping = feed.mapping().clone();
    // `cargo lambda watch` may build the function before its first invocation.
    let invoker = Invoker::new(invoke_url, mapping.timeout + Duration::from_secs(120));
    let on_failure = feed.on_failure(failures_dir);
    let invoke = |event: Value| {
        let (invoker, binary) = (invoker.clone(), mapping.binary.clone());
        async move {
            let count = event["Records"].as_array().map_or(0, Vec::len);
            let answer = match invoker.invoke(&binary, Bytes::from(event.to_string())).await {
                Ok(payload) => serde_json::from_slice(&payload).map_err(|e| format!("answer is not JSON: {e}")),
                Err(InvokeError::Timeout) => Err("timed out".to_owned()),
                Err(InvokeError::Failed(reason)) => Err(reason),
            };
            match &answer {
                Ok(answer) => eprintln!("stream: {binary} <- {count} record(s): {answer}"),
                Err(error) => eprintln!("stream: {binary} <- {count} record(s): {error}"),
            }
            answer
        }
    };
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => return Ok(()),
            () = tokio::time::sleep(POLL) => {}
        }
        let batches = match feed.next_record_batches().await {
            Ok(batches) => batches,
            Err(error) => {
                eprintln!("stream: {error}");
                continue;
            }
        };
        for batch in batches {
            for discarded in deliver(&mapping, batch.records, invoke).await {
                match &on_failure {
                    Some(destination) => destination
                        .send(&batch.shard_id, &discarded)
                        .map_err(|source| Error::Io { path: destination.path.clone(), source })?,
                    None => {
                        eprintln!("stream: dropped {} record(s) (no on-failure destination)", discarded.records.len())
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;

    use aws_sdk_dynamodbstreams::types::{OperationType, StreamRecord, StreamViewType};

    use super::*;

    fn template_yaml() -> Template {
        Template::load(concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml")).unwrap()
    }

    /// A function with one DynamoDB event whose properties are `extra` after the two required.
    fn with_event(extra: &str) -> Result<Mapping> {
        let yaml = format!(
            r#"
Resources:
  T: {{Type: AWS::DynamoDB::Table}}
  Q: {{Type: AWS::SQS::Queue}}
  F:
    Type: AWS::Serverless::Function
    Metadata: {{BuildProperties: {{Binary: f}}}}
    Properties:
      Events:
        S:
          Type: DynamoDB
          Properties:
            Stream: !GetAtt T.StreamArn
            StartingPosition: TRIM_HORIZON
{extra}
"#
        );
        Mapping::of(&Template::from_yaml(&yaml, "").unwrap(), "F")
    }

    #[test]
    fn given_the_mailer_event_then_the_mapping_is_the_template_s() {
        // GIVEN template.yaml WHEN the mailer's event is read
        let mapping = Mapping::of(&template_yaml(), "MailerFunction").unwrap();
        // THEN every setting is the template's
        assert_eq!((mapping.binary.as_str(), mapping.table.as_str()), ("mailer", "AuthTable"));
        assert_eq!((mapping.batch_size, mapping.maximum_retry_attempts), (10, Some(3)));
        assert!(mapping.bisect_batch_on_function_error && mapping.report_batch_item_failures);
        assert_eq!(mapping.on_failure.as_deref(), Some("MailerFailures"));
        assert_eq!(mapping.filters.len(), 1);
        assert_eq!(Mapping::all(&template_yaml()).unwrap(), [mapping]);
    }

    #[test]
    fn given_defaults_then_lambda_s_and_given_what_is_not_emulated_then_refused() {
        let mapping = with_event("").unwrap();
        assert_eq!((mapping.batch_size, mapping.maximum_retry_attempts, mapping.on_failure), (100, None, None));
        assert!(!mapping.bisect_batch_on_function_error && !mapping.report_batch_item_failures);
        let latest = "Resources: {T: {Type: AWS::DynamoDB::Table}, F: {Type: AWS::Serverless::Function, \
            Metadata: {BuildProperties: {Binary: f}}, Properties: {Events: {S: {Type: DynamoDB, \
            Properties: {Stream: !GetAtt T.StreamArn, StartingPosition: LATEST}}}}}}";
        assert!(Mapping::of(&Template::from_yaml(latest, "").unwrap(), "F").is_err());
        for extra in [
            "            ParallelizationFactor: 2",
            "            MaximumBatchingWindowInSeconds: 5",
            "            MaximumRetryAttempts: -2",
            "            BatchSize: 0",
            "            FunctionResponseTypes: [Other]",
            "            FilterCriteria: {Filters: [{Pattern: '{\"eventName\": [{\"anything-but\": [\"REMOVE\"]}]}'}]}",
            "            FilterCriteria: {Filters: [{Pattern: '{\"dynamodb\": {\"SizeBytes\": [{\"numeric\": [\">\", 0]}]}}'}]}",
            "            FilterCriteria: {Filters: [{Pattern: '{\"eventName\": \"INSERT\"}'}]}",
            "            DestinationConfig: {OnFailure: {Destination: arn:aws:sqs:us-east-1:1:q}}",
        ] {
            assert!(with_event(extra).is_err(), "{extra}");
        }
    }

    fn record(name: &str, pk: &str, sequence: &str) -> Value {
        json!({"eventName": name, "dynamodb": {"Keys": {"pk": {"S": pk}}, "SequenceNumber": sequence}})
    }

    #[test]
    fn given_the_outbox_pattern_then_only_inserted_outbox_items_match() {
        // GIVEN the template's pattern
        let mapping = Mapping::of(&template_yaml(), "MailerFunction").unwrap();
        let matches = |r: &Value| mapping.filters.iter().any(|p| p.matches(r));
        // THEN an inserted OUTBOX# item matches, and nothing else does
        assert!(matches(&record("INSERT", "OUTBOX#1", "1")));
        assert!(!matches(&record("MODIFY", "OUTBOX#1", "1")));
        assert!(!matches(&record("REMOVE", "OUTBOX#1", "1")));
        assert!(!matches(&record("INSERT", "USER#1", "1")));
        assert!(!matches(&record("INSERT", "XOUTBOX#1", "1")));
        assert!(!matches(&json!({"eventName": "INSERT", "dynamodb": {"Keys": {"pk": {"N": "1"}}}})));
        assert!(!matches(&json!({"eventName": "INSERT"})));
        // AND exact values are compared whole
        let exact = Pattern::parse(r#"{"a": ["x", 1]}"#).unwrap();
        assert!(exact.matches(&json!({"a": 1})) && !exact.matches(&json!({"a": "xy"})));
    }

    #[test]
    fn given_a_stream_record_then_the_event_is_the_one_lambda_sends() {
        // GIVEN a KEYS_ONLY record as DynamoDB Local returns it
        let change = StreamRecord::builder()
            .approximate_creation_date_time(aws_sdk_dynamodbstreams::primitives::DateTime::from_secs(1_795_983_600))
            .keys("pk", AttributeValue::S("OUTBOX#1".into()))
            .sequence_number("000000000000000004372")
            .size_bytes(10)
            .stream_view_type(StreamViewType::KeysOnly)
            .build();
        let sdk = Record::builder()
            .event_id("9836eead-1777-4028-af31-443c5b30df8c")
            .event_name(OperationType::Insert)
            .event_version("1.1")
            .event_source("aws:dynamodb")
            .aws_region("ddblocal")
            .dynamodb(change)
            .build();
        let arn = "arn:aws:dynamodb:us-east-1:123456789012:table/st-AuthTable/stream/2026-11-29T20:20:10.801";
        // WHEN it becomes an event
        let event = event(&[lambda_record(&sdk, "us-east-1", arn)]);
        // THEN it has AWS's shape, in the stack's region
        assert_eq!(
            event,
            json!({"Records": [{
                "eventID": "9836eead-1777-4028-af31-443c5b30df8c",
                "eventName": "INSERT",
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "dynamodb": {
                    "ApproximateCreationDateTime": 1_795_983_600.0,
                    "Keys": {"pk": {"S": "OUTBOX#1"}},
                    "SequenceNumber": "000000000000000004372",
                    "SizeBytes": 10,
                    "StreamViewType": "KEYS_ONLY"
                },
                "eventSourceARN": arn
            }]})
        );
        // AND the mailer's event type reads it
        let typed: aws_lambda_events::event::dynamodb::Event = serde_json::from_value(event).unwrap();
        assert_eq!(typed.records[0].change.sequence_number.as_deref(), Some("000000000000000004372"));
        assert_eq!(typed.records[0].change.approximate_creation_date_time.timestamp(), 1_795_983_600);
        assert_eq!(typed.records[0].event_source_arn.as_deref(), Some(arn));
    }

    #[test]
    fn given_images_of_every_type_then_attributes_keep_dynamodb_s_json() {
        let map = std::collections::HashMap::from([("n".to_owned(), AttributeValue::N("1".into()))]);
        let value = AttributeValue::L(vec![
            AttributeValue::M(map),
            AttributeValue::B(aws_sdk_dynamodbstreams::primitives::Blob::new(b"hi".to_vec())),
            AttributeValue::Ss(vec!["a".into()]),
            AttributeValue::Null(true),
            AttributeValue::Bool(false),
        ]);
        assert_eq!(
            attribute(&value),
            json!({"L": [{"M": {"n": {"N": "1"}}}, {"B": "aGk="}, {"SS": ["a"]}, {"NULL": true}, {"BOOL": false}]})
        );
    }

    fn mailer() -> Mapping {
        Mapping::of(&template_yaml(), "MailerFunction").unwrap()
    }

    fn records(n: usize) -> Vec<Value> {
        (1..=n).map(|i| record("INSERT", &format!("OUTBOX#{i}"), &format!("{i:03}"))).collect()
    }

    fn failures(sequences: &[&str]) -> Result<Value, String> {
        Ok(json!({"batchItemFailures": sequences.iter().map(|s| json!({"itemIdentifier": s})).collect::<Vec<_>>()}))
    }

    #[test]
    fn given_answers_then_outcomes_as_lambda_reads_them() {
        let (mapping, batch) = (mailer(), records(3));
        for answer in [
            Ok(json!({"batchItemFailures": []})),
            Ok(json!({"batchItemFailures": null})),
            Ok(json!({})),
            Ok(Value::Null),
        ] {
            assert_eq!(outcome(&mapping, &batch, &answer), Outcome::Success, "{answer:?}");
        }
        assert_eq!(outcome(&mapping, &batch, &failures(&["003", "002"])), Outcome::RetryFrom(1));
        for bad in [failures(&[""]), failures(&["999"]), Ok(json!({"batchItemFailures": [{"id": "001"}]}))] {
            assert_eq!(outcome(&mapping, &batch, &bad), Outcome::RetryFrom(0), "{bad:?}");
        }
        assert_eq!(outcome(&mapping, &batch, &Err("Unhandled".into())), Outcome::FunctionError);
        // Without ReportBatchItemFailures, the answer is not read.
        let plain = Mapping { report_batch_item_failures: false, ..mapping };
        assert_eq!(outcome(&plain, &batch, &failures(&["002"])), Outcome::Success);
    }

    /// Delivers `batch`, answering each invocation with `answer(sequence numbers)`; returns the
    /// invocations' sequence numbers and what was discarded.
    async fn run_deliver(
        mapping: &Mapping,
        batch: Vec<Value>,
        answer: impl Fn(&[String]) -> Result<Value, String>,
    ) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
        let calls = RefCell::new(Vec::new());
        let discarded = deliver(mapping, batch, |event| {
            let sequences: Vec<String> =
                event["Records"].as_array().unwrap().iter().map(|r| sequence_number(r).unwrap().to_owned()).collect();
            let result = answer(&sequences);
            calls.borrow_mut().push(sequences);
            async move { result }
        })
        .await;
        let sequences = |records: &[Value]| records.iter().map(|r| sequence_number(r).unwrap().to_owned()).collect();
        (calls.into_inner(), discarded.iter().map(|d| sequences(&d.records)).collect())
    }

    fn seqs(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[tokio::test]
    async fn given_a_partial_failure_then_the_batch_is_retried_from_the_first_failed_record() {
        // GIVEN a function that fails record 002 once
        let failed_once = RefCell::new(false);
        let answer = |sequences: &[String]| {
            if sequences.contains(&"002".to_owned()) && !failed_once.replace(true) {
                failures(&["002"])
            } else {
                failures(&[])
            }
        };
        // WHEN a batch of three is delivered
        let (calls, discarded) = run_deliver(&mailer(), records(3), answer).await;
        // THEN 002 and what follows it are sent again, and nothing is given up on
        assert_eq!(calls, [seqs(&["001", "002", "003"]), seqs(&["002", "003"])]);
        assert!(discarded.is_empty());
    }

    #[tokio::test]
    async fn given_a_record_that_always_fails_then_retries_stop_at_the_maximum_and_it_is_discarded() {
        // GIVEN a function that always reports 002 failed
        let answer = |sequences: &[String]| {
            if sequences.contains(&"002".to_owned()) {
                failures(&["002"])
            } else {
                failures(&[])
            }
        };
        // WHEN a batch of three is delivered
        let (calls, discarded) = run_deliver(&mailer(), records(3), answer).await;
        // THEN one invocation and MaximumRetryAttempts (3) retries, then 002 and 003 go to the destination
        assert_eq!(calls.len(), 4);
        assert_eq!(calls[3], seqs(&["002", "003"]));
        assert_eq!(discarded, [seqs(&["002", "003"])]);
    }

    #[tokio::test]
    async fn given_a_function_error_then_bisection_isolates_the_poison_record_without_using_retries() {
        // GIVEN a function that errors on any batch holding 003
        let answer = |sequences: &[String]| {
            if sequences.contains(&"003".to_owned()) {
                Err("Unhandled".to_owned())
            } else {
                failures(&[])
            }
        };
        // WHEN a batch of four is delivered
        let (calls, discarded) = run_deliver(&mailer(), records(4), answer).await;
        // THEN halves until 003 is alone, then 003 alone with its three retries, then discarded
        assert_eq!(
            calls,
            [
                seqs(&["001", "002", "003", "004"]),
                seqs(&["001", "002"]),
                seqs(&["003", "004"]),
                seqs(&["003"]),
                seqs(&["003"]),
                seqs(&["003"]),
                seqs(&["003"]),
                seqs(&["004"]),
            ]
        );
        assert_eq!(discarded, [seqs(&["003"])]);
        // AND without bisection the whole batch is retried, then discarded whole
        let whole = Mapping { bisect_batch_on_function_error: false, ..mailer() };
        let (calls, discarded) = run_deliver(&whole, records(2), |_| Err("Unhandled".to_owned())).await;
        assert_eq!(calls, vec![seqs(&["001", "002"]); 4]);
        assert_eq!(discarded, [seqs(&["001", "002"])]);
    }

    #[test]
    fn given_discarded_records_then_the_destination_gets_one_line_with_lambda_s_batch_info() {
        // GIVEN a destination file
        let dir = std::env::temp_dir().join(format!("stream-test-{}", uuid::Uuid::new_v4().simple()));
        let destination = OnFailure {
            path: dir.join("st-MailerFailures.jsonl"),
            function_arn: "arn:aws:lambda:us-east-1:123456789012:function:st-MailerFunction".into(),
            stream_arn: "arn:aws:dynamodb:us-east-1:123456789012:table/st-AuthTable/stream/x".into(),
        };
        // WHEN two batches are given up on
        let discarded = Discarded { records: records(2), invocations: 4 };
        destination.send("shard-1", &discarded).unwrap();
        destination.send("shard-1", &discarded).unwrap();
        // THEN two lines, each with the batch's bounds and records
        let text = std::fs::read_to_string(&destination.path).unwrap();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0]["DDBStreamBatchInfo"],
            json!({"shardId": "shard-1", "startSequenceNumber": "001", "endSequenceNumber": "002", "batchSize": 2,
                   "streamArn": "arn:aws:dynamodb:us-east-1:123456789012:table/st-AuthTable/stream/x"})
        );
        assert_eq!(lines[0]["requestContext"]["condition"], "RetryAttemptsExhausted");
        assert_eq!(lines[0]["requestContext"]["approximateInvokeCount"], 4);
        assert_eq!(lines[0]["Records"], json!(records(2)));
        let _ = std::fs::remove_dir_all(dir);
    }
}
