//! The only code that speaks DynamoDB. Items are mapped with `serde_dynamo`; every
//! attribute name in an expression goes through `#placeholders` (AWS rejects reserved
//! words such as `ttl` unescaped, even where a local emulator does not).

mod audit;
mod counting;
mod customers;
mod gates;
pub(crate) mod items;
mod keys;
pub mod retry;
mod roles;
mod sessions;
mod signing;
mod table;
mod transaction;
mod usage;

use std::collections::HashMap;

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types::AttributeValue;

use crate::aws::AwsFailure;
use retry::Attempt;

pub use audit::{AuditPage, is_audit_sort_key};
pub use counting::{Mark, STALE_MARKS_SWEPT_AT, Tally, WRITTEN_MINUTE, minute_of_month};
pub(crate) use counting::{key_window_pk, month_pk};
pub use gates::SpendOutcome;
pub use keys::{KeyPage, is_keys_sort_key};
pub use sessions::CreateSessionError;
pub use table::TableSpec;
pub(crate) use transaction::TxError;
pub use usage::{Claim, Numbers, held_in, window_pk_of, windows_of};

pub type Item = HashMap<String, AttributeValue>;

/// The table's partitions, by the prefix of `pk`. IAM limits each function to the ones it
/// touches (`dynamodb:LeadingKeys`), so no function can write, say, a balance it never spends.
pub mod partition {
    /// API keys by hash.
    pub const KEY: &str = "KEY#";
    /// Prefix claims (prefix → hash).
    pub const PREFIX: &str = "PREFIX#";
    /// A customer, its gates (and, in the index, its keys).
    pub const CUSTOMER: &str = "CUS#";
    /// A buddy in one environment: existence, balances, unlocks, ledger.
    pub const BUDDY: &str = "BDY#";
    /// Widget sessions.
    pub const SESSION: &str = "WS#";
    /// Rate-limit windows.
    pub const RATE_WINDOW: &str = "RL#";
    /// Audit events of a customer's environment (and, per target, a second copy).
    pub const AUDIT: &str = "AUD#";
    /// Bulk session revocation markers.
    pub const REVOCATION: &str = "REV#";
    /// The published public signing keys (no private material).
    pub const SIGNING: &str = "SIGNING#";
    /// Roles of a customer's environment (custom roles, and every role's holder counts).
    pub const ROLE: &str = "ROLE#";
    /// Usage roll-ups per key prefix (written from the stream, never on the request path).
    pub const USAGE: &str = "USE#";
}

/// The DynamoDB table every function shares.
#[derive(Clone, Debug)]
pub struct Store {
    client: Client,
    table: String,
    /// Stale minute marks this instance saw on month items, removed by its next counting write
    /// to the same item (`counting.rs`).
    stale_marks: std::sync::Arc<counting::StaleMarks>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// DynamoDB unreachable, throttling, or answering something unexpected.
    #[error(transparent)]
    Aws(#[from] AwsFailure),
    /// A conditional write found the item already there.
    #[error("item already exists")]
    AlreadyExists,
    /// A conditional update found no item.
    #[error("item not found")]
    NotFound,
    /// A conditional write found the item changed since it was read: read and decide again.
    #[error("item changed concurrently")]
    Conflict,
    /// A transaction met another one in flight on one of its items (`TransactionConflict`):
    /// nothing was written; the same write may be sent again after a pause.
    #[error("a conflicting transaction was in flight")]
    Contended,
    /// Still conflicting (or keys still unprocessed) after every attempt.
    #[error(transparent)]
    Exhausted(#[from] retry::Exhausted),
}

impl StoreError {
    /// What a failed write means to a read → decide → commit loop: a changed item is read
    /// again at once, a conflicting transaction is retried after a pause, anything else ends it.
    pub fn retry<T>(self) -> Result<Attempt<T>, StoreError> {
        match self {
            StoreError::Conflict => Ok(Attempt::Reread),
            StoreError::Contended => Ok(Attempt::Backoff),
            other => Err(other),
        }
    }
}

/// The most keys one `BatchGetItem` takes.
const BATCH_GET_MAX_KEYS: usize = 100;

/// A store-side bug or an item that does not decode.
pub(crate) fn internal(op: &'static str, cause: impl Into<String>) -> StoreError {
    StoreError::Aws(AwsFailure::Internal { op, cause: cause.into() })
}

pub(crate) fn classify<E, R>(op: &'static str, err: SdkError<E, R>) -> StoreError
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
    R: std::fmt::Debug,
{
    crate::aws::classify(op, err).into()
}

/// A request builder's missing required field: a bug in the store.
pub(crate) fn build_err(op: &'static str) -> impl Fn(aws_sdk_dynamodb::error::BuildError) -> StoreError {
    move |e| internal(op, e.to_string())
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
    serde_dynamo::to_item(value).map_err(|e| internal("to_item", e.to_string()))
}

pub(crate) fn from_item<T: serde::de::DeserializeOwned>(item: Item) -> Result<T, StoreError> {
    serde_dynamo::from_item(item).map_err(|e| internal("from_item", e.to_string()))
}

impl Store {
    pub fn new(client: Client, table: impl Into<String>) -> Store {
        Store { client, table: table.into(), stale_marks: std::sync::Arc::default() }
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

    pub(crate) async fn put_new(&self, op: &'static str, item: Item) -> Result<(), StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Err(StoreError::AlreadyExists),
            Err(e) => Err(classify(op, e)),
        }
    }

    /// Items by key in consistent `BatchGetItem`s of at most 100 keys each (DynamoDB's limit
    /// per call), one after another.
    pub(crate) async fn batch_get_consistent(
        &self,
        op: &'static str,
        keys: Vec<Item>,
    ) -> Result<Vec<Item>, StoreError> {
        let mut found = Vec::new();
        for chunk in keys.chunks(BATCH_GET_MAX_KEYS) {
            found.extend(self.batch_get_one(op, chunk.to_vec()).await?);
        }
        Ok(found)
    }

    /// Items by key in one consistent `BatchGetItem`. DynamoDB may answer part of a batch and
    /// return the rest as `UnprocessedKeys` ("BatchGetItem", API reference: retry them with
    /// exponential backoff); those are asked again after a pause, and still unprocessed after
    /// the last attempt is a 503, never "not there".
    async fn batch_get_one(&self, op: &'static str, keys: Vec<Item>) -> Result<Vec<Item>, StoreError> {
        let request = aws_sdk_dynamodb::types::KeysAndAttributes::builder()
            .set_keys(Some(keys))
            .consistent_read(true)
            .build()
            .map_err(build_err(op))?;
        // Each attempt sends what the last one left unprocessed (attempts run one at a time).
        let state = std::sync::Mutex::new((Some(request), Vec::new()));
        retry::attempts::<_, StoreError, _, _>(op, |_| async {
            let Some(pending) = state.lock().map_err(|_| internal(op, "poisoned"))?.0.take() else {
                return Ok(Attempt::Done(()));
            };
            let out = self
                .client
                .batch_get_item()
                .request_items(&self.table, pending)
                .send()
                .await
                .map_err(|e| classify(op, e))?;
            let mut state = state.lock().map_err(|_| internal(op, "poisoned"))?;
            state.1.extend(out.responses.and_then(|mut r| r.remove(&self.table)).unwrap_or_default());
            match out.unprocessed_keys.and_then(|mut u| u.remove(&self.table)) {
                Some(rest) if !rest.keys().is_empty() => {
                    state.0 = Some(rest);
                    Ok(Attempt::Backoff)
                }
                _ => Ok(Attempt::Done(())),
            }
        })
        .await?;
        let (_, found) = state.into_inner().map_err(|_| internal(op, "poisoned"))?;
        Ok(found)
    }

    /// One page of a partition (of the table, or of `index` with its own key attributes),
    /// newest first, resuming after the sort key `after`, asking one item more than `limit` to
    /// learn whether more follow. Returns the items and whether there are more.
    ///
    /// DynamoDB stops a query after 1 MB read and says where with `LastEvaluatedKey` ("Query",
    /// API reference), whatever `Limit` asked: a page cut short is not the end of the
    /// partition. So the query is followed from its `LastEvaluatedKey` until it has `limit + 1`
    /// items or the partition ends (no `LastEvaluatedKey`). The caller's cursor stays the last
    /// returned item's sort key: `LastEvaluatedKey` never leaves the store.
    pub(crate) async fn newest_first_page(
        &self,
        op: &'static str,
        index: Option<(&str, &str, &str)>,
        pk: String,
        limit: u32,
        after: Option<&str>,
    ) -> Result<(Vec<Item>, bool), StoreError> {
        let (index, pk_attr, sk_attr) = match index {
            Some((name, pk_attr, sk_attr)) => (Some(name), pk_attr, sk_attr),
            None => (None, "pk", "sk"),
        };
        let wanted = limit as usize + 1;
        let mut items: Vec<Item> = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let mut query = self
                .client
                .query()
                .table_name(&self.table)
                .set_index_name(index.map(str::to_owned))
                // An index cannot be read consistently; the table can.
                .consistent_read(index.is_none())
                .scan_index_forward(false)
                .limit((wanted - items.len()) as i32)
                .set_exclusive_start_key(start.take())
                .expression_attribute_values(":pk", s(pk.clone()));
            query = match after {
                Some(after) => query
                    .key_condition_expression(format!("{pk_attr} = :pk AND {sk_attr} < :after"))
                    .expression_attribute_values(":after", s(after)),
                None => query.key_condition_expression(format!("{pk_attr} = :pk")),
            };
            let out = query.send().await.map_err(|e| classify(op, e))?;
            items.extend(out.items.unwrap_or_default());
            match out.last_evaluated_key {
                Some(key) if items.len() < wanted && !key.is_empty() => start = Some(key),
                _ => break,
            }
        }
        let more = items.len() > limit as usize;
        items.truncate(limit as usize);
        Ok((items, more))
    }

    /// Every item of a partition whose sort key starts with `prefix`, consistent, all pages.
    pub(crate) async fn query_prefix(
        &self,
        op: &'static str,
        pk: String,
        prefix: &str,
    ) -> Result<Vec<Item>, StoreError> {
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
            .expression_attribute_values(":pk", s(pk))
            .expression_attribute_values(":prefix", s(prefix))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send();
        let mut items = Vec::new();
        while let Some(item) = pages.next().await {
            items.push(item.map_err(|e| classify(op, e))?);
        }
        Ok(items)
    }
}
