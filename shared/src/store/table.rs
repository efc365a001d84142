//! Table creation for operators and local stacks (production uses template.yaml).

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection, ProjectionType,
    ScalarAttributeType, StreamSpecification, StreamViewType, TimeToLiveSpecification,
};

use super::{Store, StoreError, classify, internal};

/// What `create_table` made or found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableSpec {
    Created,
    AlreadyExisted,
}

impl Store {
    /// Creates the table (pk/sk, GSI `gsi1`, TTL on `ttl`, a stream of new images) if absent;
    /// idempotent.
    pub async fn create_table(&self) -> Result<TableSpec, StoreError> {
        let key = |name: &str, kt: KeyType| KeySchemaElement::builder().attribute_name(name).key_type(kt).build();
        let attr = |name: &str| {
            AttributeDefinition::builder().attribute_name(name).attribute_type(ScalarAttributeType::S).build()
        };
        let built = (|| {
            Ok::<_, aws_sdk_dynamodb::error::BuildError>((
                [attr("pk")?, attr("sk")?, attr("gsi1pk")?, attr("gsi1sk")?],
                [key("pk", KeyType::Hash)?, key("sk", KeyType::Range)?],
                GlobalSecondaryIndex::builder()
                    .index_name("gsi1")
                    .key_schema(key("gsi1pk", KeyType::Hash)?)
                    .key_schema(key("gsi1sk", KeyType::Range)?)
                    .projection(Projection::builder().projection_type(ProjectionType::All).build())
                    .build()?,
                TimeToLiveSpecification::builder().attribute_name("ttl").enabled(true).build()?,
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewImage)
                    .build()?,
            ))
        })()
        .map_err(|e| internal("create_table", e.to_string()))?;
        let (attrs, schema, gsi, ttl, stream) = built;

        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .set_attribute_definitions(Some(attrs.to_vec()))
            .set_key_schema(Some(schema.to_vec()))
            .global_secondary_indexes(gsi)
            // The usage roll-up reads the rate windows' counts from it (`crate::usage`).
            .stream_specification(stream)
            .billing_mode(BillingMode::PayPerRequest)
            .send()
            .await;
        let outcome = match created {
            Ok(_) => TableSpec::Created,
            Err(e) if e.as_service_error().is_some_and(|se| se.is_resource_in_use_exception()) => {
                TableSpec::AlreadyExisted
            }
            Err(e) => return Err(classify("create_table", e)),
        };
        // Setting TTL again on an existing table is harmless on emulators but an error on AWS.
        if outcome == TableSpec::Created {
            self.client
                .update_time_to_live()
                .table_name(&self.table)
                .time_to_live_specification(ttl)
                .send()
                .await
                .map_err(|e| classify("update_time_to_live", e))?;
        }
        Ok(outcome)
    }

    /// The table's stream (local stacks: their consumer reads it; deployed, Lambda does).
    pub async fn stream_arn(&self) -> Result<Option<String>, StoreError> {
        let out = self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| classify("describe_table", e))?;
        Ok(out.table.and_then(|t| t.latest_stream_arn))
    }

    /// Deletes the table (local stacks and tests only).
    pub async fn delete_table(&self) -> Result<(), StoreError> {
        match self.client.delete_table().table_name(&self.table).send().await {
            Ok(_) => Ok(()),
            Err(e) if e.as_service_error().is_some_and(|se| se.is_resource_not_found_exception()) => Ok(()),
            Err(e) => Err(classify("delete_table", e)),
        }
    }
}
