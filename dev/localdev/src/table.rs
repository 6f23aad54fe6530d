//! The DynamoDB table as declared in the template, and creating it locally.

use std::collections::BTreeMap;
use std::time::Duration;

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{
    AttributeDefinition as SdkAttribute, BillingMode, GlobalSecondaryIndex, IndexStatus, KeySchemaElement, KeyType,
    LocalSecondaryIndex, Projection, ProjectionType, ProvisionedThroughput, ScalarAttributeType, StreamSpecification,
    StreamViewType, TableStatus, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;
use serde_norway::Value;

use crate::error::{template_error, Error, Result};
use crate::params::scalar_string;
use crate::template::Template;

/// One `AttributeDefinitions` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttributeDefinition {
    /// Attribute name.
    pub name: String,
    /// `S`, `N` or `B`.
    pub attribute_type: String,
}

/// One `KeySchema` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyElement {
    /// Attribute name.
    pub name: String,
    /// `HASH` or `RANGE`.
    pub key_type: String,
}

/// A global or local secondary index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexDefinition {
    /// Index name.
    pub name: String,
    /// Index key schema.
    pub key_schema: Vec<KeyElement>,
    /// `ALL`, `KEYS_ONLY` or `INCLUDE`.
    pub projection_type: String,
    /// Projected attributes for `INCLUDE`.
    pub non_key_attributes: Vec<String>,
    /// `(read, write)` capacity units for a provisioned GSI.
    pub provisioned_throughput: Option<(i64, i64)>,
}

/// Everything needed to create the template's table with `CreateTable` + `UpdateTimeToLive`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableDefinition {
    /// Logical id of the `AWS::DynamoDB::Table` resource.
    pub logical_id: String,
    /// `AttributeDefinitions`.
    pub attribute_definitions: Vec<AttributeDefinition>,
    /// `KeySchema`.
    pub key_schema: Vec<KeyElement>,
    /// `GlobalSecondaryIndexes`.
    pub global_secondary_indexes: Vec<IndexDefinition>,
    /// `LocalSecondaryIndexes`.
    pub local_secondary_indexes: Vec<IndexDefinition>,
    /// `PAY_PER_REQUEST` or `PROVISIONED` (the CloudFormation default).
    pub billing_mode: String,
    /// `(read, write)` capacity units when provisioned.
    pub provisioned_throughput: Option<(i64, i64)>,
    /// TTL attribute when `TimeToLiveSpecification.Enabled` is true.
    pub ttl_attribute: Option<String>,
    /// `StreamSpecification.StreamViewType`, if streams are on.
    pub stream_view_type: Option<String>,
    /// `PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled` (informational: not applied locally).
    pub point_in_time_recovery: bool,
}

impl Template {
    /// The definition of the template's only `AWS::DynamoDB::Table`.
    pub fn table_definition(&self) -> Result<TableDefinition> {
        self.table_definition_of(&self.single_resource_of_type(crate::stack::TABLE_TYPE)?)
    }

    /// The definition of the `AWS::DynamoDB::Table` named `id`.
    pub fn table_definition_of(&self, id: &str) -> Result<TableDefinition> {
        let names = BTreeMap::new();
        let resolver = self.resolver(&names);
        let raw = self
            .resource(id)
            .and_then(|r| r.get("Properties"))
            .ok_or_else(|| template_error(format!("{id} has no Properties")))?;
        let props =
            resolver.resolve(raw)?.ok_or_else(|| template_error(format!("{id} Properties resolved to nothing")))?;
        TableDefinition::from_properties(id.to_owned(), &props)
    }

    /// Creates the template's table as `table_name`, waits until it is `ACTIVE` and enables TTL.
    /// Fails if the table already exists (see [`TableDefinition::ensure`]).
    pub async fn create_table(&self, client: &Client, table_name: &str) -> Result<()> {
        self.table_definition()?.create(client, table_name).await
    }
}

fn text(value: Option<&Value>) -> Option<String> {
    value.and_then(scalar_string)
}

fn required(props: &Value, key: &str) -> Result<String> {
    text(props.get(key)).ok_or_else(|| template_error(format!("table {key} missing")))
}

fn key_schema(value: Option<&Value>) -> Result<Vec<KeyElement>> {
    let items = value.and_then(Value::as_sequence).ok_or_else(|| template_error("KeySchema missing"))?;
    items
        .iter()
        .map(|k| Ok(KeyElement { name: required(k, "AttributeName")?, key_type: required(k, "KeyType")? }))
        .collect()
}

fn throughput(value: Option<&Value>) -> Result<Option<(i64, i64)>> {
    let Some(value) = value else { return Ok(None) };
    let units = |key| -> Result<i64> {
        required(value, key)?.parse().map_err(|_| template_error(format!("{key} must be an integer")))
    };
    Ok(Some((units("ReadCapacityUnits")?, units("WriteCapacityUnits")?)))
}

fn indexes(value: Option<&Value>) -> Result<Vec<IndexDefinition>> {
    let items = value.and_then(Value::as_sequence).map(Vec::as_slice).unwrap_or_default();
    items
        .iter()
        .map(|ix| {
            let projection = ix.get("Projection");
            Ok(IndexDefinition {
                name: required(ix, "IndexName")?,
                key_schema: key_schema(ix.get("KeySchema"))?,
                projection_type: text(projection.and_then(|p| p.get("ProjectionType"))).unwrap_or_else(|| "ALL".into()),
                non_key_attributes: projection
                    .and_then(|p| p.get("NonKeyAttributes"))
                    .and_then(Value::as_sequence)
                    .map(|attrs| attrs.iter().filter_map(scalar_string).collect())
                    .unwrap_or_default(),
                provisioned_throughput: throughput(ix.get("ProvisionedThroughput"))?,
            })
        })
        .collect()
}

fn is_true(value: Option<&Value>) -> bool {
    text(value).is_some_and(|v| v == "true")
}

fn build_err(e: impl std::fmt::Display) -> Error {
    Error::Aws(format!("invalid table definition: {e}"))
}

fn sdk_keys(keys: &[KeyElement]) -> Result<Vec<KeySchemaElement>> {
    keys.iter()
        .map(|k| {
            KeySchemaElement::builder()
                .attribute_name(&k.name)
                .key_type(KeyType::from(k.key_type.as_str()))
                .build()
                .map_err(build_err)
        })
        .collect()
}

fn sdk_throughput(units: Option<(i64, i64)>) -> Result<Option<ProvisionedThroughput>> {
    units
        .map(|(read, write)| {
            ProvisionedThroughput::builder()
                .read_capacity_units(read)
                .write_capacity_units(write)
                .build()
                .map_err(build_err)
        })
        .transpose()
}

fn projection(ix: &IndexDefinition) -> Projection {
    let attrs = (!ix.non_key_attributes.is_empty()).then(|| ix.non_key_attributes.clone());
    Projection::builder()
        .projection_type(ProjectionType::from(ix.projection_type.as_str()))
        .set_non_key_attributes(attrs)
        .build()
}

impl TableDefinition {
    /// Builds a definition from resolved `AWS::DynamoDB::Table` properties.
    pub fn from_properties(logical_id: String, props: &Value) -> Result<Self> {
        let attribute_definitions = props
            .get("AttributeDefinitions")
            .and_then(Value::as_sequence)
            .ok_or_else(|| template_error("AttributeDefinitions missing"))?
            .iter()
            .map(|a| {
                Ok(AttributeDefinition {
                    name: required(a, "AttributeName")?,
                    attribute_type: required(a, "AttributeType")?,
                })
            })
            .collect::<Result<_>>()?;
        let ttl = props.get("TimeToLiveSpecification");
        let stream = props.get("StreamSpecification");
        Ok(Self {
            logical_id,
            attribute_definitions,
            key_schema: key_schema(props.get("KeySchema"))?,
            global_secondary_indexes: indexes(props.get("GlobalSecondaryIndexes"))?,
            local_secondary_indexes: indexes(props.get("LocalSecondaryIndexes"))?,
            billing_mode: text(props.get("BillingMode")).unwrap_or_else(|| "PROVISIONED".into()),
            provisioned_throughput: throughput(props.get("ProvisionedThroughput"))?,
            ttl_attribute: ttl.filter(|t| is_true(t.get("Enabled"))).and_then(|t| text(t.get("AttributeName"))),
            stream_view_type: stream.and_then(|s| text(s.get("StreamViewType"))),
            point_in_time_recovery: is_true(
                props.get("PointInTimeRecoverySpecification").and_then(|p| p.get("PointInTimeRecoveryEnabled")),
            ),
        })
    }

    /// Creates the table as `table_name`, waits until it and its indexes are `ACTIVE`, then
    /// enables TTL. Fails if the table already exists.
    pub async fn create(&self, client: &Client, table_name: &str) -> Result<()> {
        let attributes = self
            .attribute_definitions
            .iter()
            .map(|a| {
                SdkAttribute::builder()
                    .attribute_name(&a.name)
                    .attribute_type(ScalarAttributeType::from(a.attribute_type.as_str()))
                    .build()
                    .map_err(build_err)
            })
            .collect::<Result<Vec<_>>>()?;
        let mut gsis = Vec::new();
        for ix in &self.global_secondary_indexes {
            gsis.push(
                GlobalSecondaryIndex::builder()
                    .index_name(&ix.name)
                    .set_key_schema(Some(sdk_keys(&ix.key_schema)?))
                    .projection(projection(ix))
                    .set_provisioned_throughput(sdk_throughput(ix.provisioned_throughput)?)
                    .build()
                    .map_err(build_err)?,
            );
        }
        let mut lsis = Vec::new();
        for ix in &self.local_secondary_indexes {
            lsis.push(
                LocalSecondaryIndex::builder()
                    .index_name(&ix.name)
                    .set_key_schema(Some(sdk_keys(&ix.key_schema)?))
                    .projection(projection(ix))
                    .build()
                    .map_err(build_err)?,
            );
        }
        let stream = self
            .stream_view_type
            .as_deref()
            .map(|view| {
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::from(view))
                    .build()
                    .map_err(build_err)
            })
            .transpose()?;
        client
            .create_table()
            .table_name(table_name)
            .set_attribute_definitions(Some(attributes))
            .set_key_schema(Some(sdk_keys(&self.key_schema)?))
            .set_global_secondary_indexes((!gsis.is_empty()).then_some(gsis))
            .set_local_secondary_indexes((!lsis.is_empty()).then_some(lsis))
            .billing_mode(BillingMode::from(self.billing_mode.as_str()))
            .set_provisioned_throughput(sdk_throughput(self.provisioned_throughput)?)
            .set_stream_specification(stream)
            .send()
            .await
            .map_err(|e| Error::Aws(format!("CreateTable {table_name}: {}", DisplayErrorContext(e))))?;
        wait_active(client, table_name).await?;
        if let Some(attribute) = &self.ttl_attribute {
            let spec = TimeToLiveSpecification::builder()
                .attribute_name(attribute)
                .enabled(true)
                .build()
                .map_err(build_err)?;
            client
                .update_time_to_live()
                .table_name(table_name)
                .time_to_live_specification(spec)
                .send()
                .await
                .map_err(|e| Error::Aws(format!("UpdateTimeToLive {table_name}: {}", DisplayErrorContext(e))))?;
        }
        Ok(())
    }

    /// Creates the table unless one named `table_name` already exists. Returns whether it created it.
    pub async fn ensure(&self, client: &Client, table_name: &str) -> Result<bool> {
        match client.describe_table().table_name(table_name).send().await {
            Ok(_) => Ok(false),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_resource_not_found_exception()) => {
                self.create(client, table_name).await.map(|()| true)
            }
            Err(e) => Err(Error::Aws(format!("DescribeTable {table_name}: {}", DisplayErrorContext(e)))),
        }
    }
}

/// Polls `DescribeTable` until the table and all its GSIs are `ACTIVE` (60 s at most).
async fn wait_active(client: &Client, table_name: &str) -> Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        let out = client
            .describe_table()
            .table_name(table_name)
            .send()
            .await
            .map_err(|e| Error::Aws(format!("DescribeTable {table_name}: {}", DisplayErrorContext(e))))?;
        if let Some(table) = out.table() {
            let gsis_active =
                table.global_secondary_indexes().iter().all(|g| g.index_status() == Some(&IndexStatus::Active));
            if table.table_status() == Some(&TableStatus::Active) && gsis_active {
                return Ok(());
            }
        }
        if tokio::time::Instant::now() > deadline {
            return Err(Error::Aws(format!("table {table_name} not ACTIVE after 60 s")));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_keys_indexes_billing_and_ttl() {
        let t = Template::from_yaml(
            r#"
Parameters: {Mode: {Type: String, Default: PAY_PER_REQUEST}}
Resources:
  T:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: !Ref Mode
      AttributeDefinitions: [{AttributeName: pk, AttributeType: S}, {AttributeName: g, AttributeType: N}]
      KeySchema: [{AttributeName: pk, KeyType: HASH}]
      GlobalSecondaryIndexes:
        - IndexName: by-g
          KeySchema: [{AttributeName: g, KeyType: HASH}]
          Projection: {ProjectionType: INCLUDE, NonKeyAttributes: [a]}
      TimeToLiveSpecification: {AttributeName: expires_at, Enabled: true}
      PointInTimeRecoverySpecification: {PointInTimeRecoveryEnabled: true}
"#,
            "",
        )
        .unwrap();
        let d = t.table_definition().unwrap();
        assert_eq!(d.logical_id, "T");
        assert_eq!(d.billing_mode, "PAY_PER_REQUEST");
        assert_eq!(d.key_schema, vec![KeyElement { name: "pk".into(), key_type: "HASH".into() }]);
        assert_eq!(d.attribute_definitions.len(), 2);
        assert_eq!(d.global_secondary_indexes[0].name, "by-g");
        assert_eq!(d.global_secondary_indexes[0].non_key_attributes, vec!["a"]);
        assert!(d.local_secondary_indexes.is_empty());
        assert_eq!(d.ttl_attribute.as_deref(), Some("expires_at"));
        assert!(d.point_in_time_recovery);
        assert_eq!(d.provisioned_throughput, None);
    }

    #[test]
    fn ttl_disabled_and_missing_table() {
        let t = Template::from_yaml(
            "Resources:\n  T:\n    Type: AWS::DynamoDB::Table\n    Properties:\n      \
             AttributeDefinitions: [{AttributeName: pk, AttributeType: S}]\n      \
             KeySchema: [{AttributeName: pk, KeyType: HASH}]\n      \
             ProvisionedThroughput: {ReadCapacityUnits: 1, WriteCapacityUnits: 2}\n      \
             TimeToLiveSpecification: {AttributeName: x, Enabled: false}\n",
            "",
        )
        .unwrap();
        let d = t.table_definition().unwrap();
        assert_eq!(d.ttl_attribute, None);
        assert_eq!(d.billing_mode, "PROVISIONED");
        assert_eq!(d.provisioned_throughput, Some((1, 2)));
        assert!(Template::from_yaml("Resources: {}", "").unwrap().table_definition().is_err());
    }
}
