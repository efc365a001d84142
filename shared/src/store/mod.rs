//! The only code that speaks DynamoDB. Items are mapped with `serde_dynamo`; every
//! attribute name in an expression goes through `#placeholders` (AWS rejects reserved
//! words such as `ttl` unescaped, even where a local emulator does not).

mod customers;
mod gates;
mod keys;
mod sessions;
mod table;

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;

use crate::domain::UnixTime;
use crate::error::ApiError;

pub use customers::Customer;
pub use gates::{BuddyRef, SpendOutcome};
pub use sessions::CreateSessionError;
pub use table::TableSpec;

pub type Item = HashMap<String, AttributeValue>;

/// The DynamoDB table every function shares.
#[derive(Clone, Debug)]
pub struct Store {
    client: Client,
    table: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Unreachable, timing out or throttling after the SDK's retries.
    #[error("dependency unavailable during {op}: {cause}")]
    Unavailable { op: &'static str, cause: String },
    #[error("dependency error during {op}: {cause}")]
    Internal { op: &'static str, cause: String },
    /// A conditional write found the item already there.
    #[error("item already exists")]
    AlreadyExists,
    /// A conditional update found no item.
    #[error("item not found")]
    NotFound,
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        match e {
            StoreError::Unavailable { .. } => ApiError::Unavailable(e.to_string()),
            _ => ApiError::Internal(e.to_string()),
        }
    }
}

/// Error codes DynamoDB uses for "try again later".
const RETRYABLE_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionConflictException",
    "TransactionInProgressException",
];

pub(crate) fn classify<E, R>(op: &'static str, err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    let cause = DisplayErrorContext(&err).to_string();
    match &err {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            StoreError::Unavailable { op, cause }
        }
        SdkError::ServiceError(se) if se.err().code().is_some_and(|c| RETRYABLE_CODES.contains(&c)) => {
            StoreError::Unavailable { op, cause }
        }
        _ => StoreError::Internal { op, cause },
    }
}

pub(crate) fn is_condition_failure<E: ProvideErrorMetadata, R>(err: &SdkError<E, R>) -> bool {
    matches!(err, SdkError::ServiceError(se) if se.err().code() == Some("ConditionalCheckFailedException"))
}

pub(crate) fn s(text: impl Into<String>) -> AttributeValue {
    AttributeValue::S(text.into())
}

pub(crate) fn n(value: i64) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(crate) fn to_item<T: serde::Serialize>(value: &T) -> Result<Item, StoreError> {
    serde_dynamo::to_item(value).map_err(|e| StoreError::Internal { op: "to_item", cause: e.to_string() })
}

pub(crate) fn from_item<T: serde::de::DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| StoreError::Internal { op: "from_item", cause: e.to_string() })
}

impl Store {
    pub fn new(client: Client, table: impl Into<String>) -> Store {
        Store { client, table: table.into() }
    }

    pub fn client(&self) -> &Client {
        &self.client
    }

    pub fn table(&self) -> &str {
        &self.table
    }

    /// One consistent `GetItem` (a revocation or a fresh write must be seen at once), decoded.
    pub(crate) async fn get_consistent<T: serde::de::DeserializeOwned>(
        &self,
        op: &'static str,
        pk: String,
        sk: &str,
    ) -> Result<Option<T>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key("pk", s(pk))
            .key("sk", s(sk))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify(op, e))?;
        out.item.map(from_item).transpose()
    }

    /// Counts one request in its rate window and returns the window's new count.
    /// `ADD` is atomic, so concurrent requests get distinct counts.
    pub async fn count_request(&self, window_id: &str, expires: UnixTime) -> Result<u64, StoreError> {
        let out = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(window_id))
            .key("sk", s("RL"))
            .update_expression("ADD #count :one SET #ttl = if_not_exists(#ttl, :ttl)")
            .expression_attribute_names("#count", "count")
            .expression_attribute_names("#ttl", "ttl")
            .expression_attribute_values(":one", n(1))
            .expression_attribute_values(":ttl", n(expires.secs()))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| classify("count_request", e))?;
        out.attributes()
            .and_then(|a| a.get("count"))
            .and_then(|v| v.as_n().ok())
            .and_then(|v| v.parse().ok())
            .ok_or(StoreError::Internal { op: "count_request", cause: "no count returned".into() })
    }
}
