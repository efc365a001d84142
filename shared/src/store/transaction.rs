//! One `TransactWriteItems`, built from named handles and read back by handle.
//!
//! DynamoDB answers a cancelled transaction with one reason per item, in the order the items
//! were sent ("CancellationReasons", TransactWriteItems API reference). Reading them by
//! position couples every caller to its push order; here each write returns a [`Handle`] and
//! the failure is asked about that handle (`failed.at(claim)`).

use aws_sdk_dynamodb::error::SdkError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{CancellationReason, ConditionCheck, Put, TransactWriteItem, Update};

use super::{Item, Store, StoreError, build_err, classify, n};
use crate::aws::AwsFailure;

/// One item of a [`Transaction`], to ask its fate by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Handle(usize);

/// The items of one transaction, in the order they will be sent.
#[derive(Debug, Default)]
pub(crate) struct Transaction {
    items: Vec<TransactWriteItem>,
    token: Option<String>,
}

/// Why a transaction did not commit, per item: which conditions failed (and the item a
/// failed condition found, where it was asked for).
#[derive(Debug)]
pub(crate) struct Cancelled {
    reasons: Vec<CancellationReason>,
}

/// How a commit failed.
#[derive(Debug)]
pub(crate) enum TxError {
    /// At least one condition failed: nothing was written. Ask [`Cancelled::at`] which.
    Cancelled(Cancelled),
    /// No condition failed; DynamoDB could not commit it now (a conflicting transaction,
    /// throttling) or the call failed: see the [`StoreError`].
    Store(StoreError),
}

impl From<StoreError> for TxError {
    fn from(e: StoreError) -> TxError {
        TxError::Store(e)
    }
}

impl Cancelled {
    /// Did this item's condition fail?
    pub fn at(&self, handle: Handle) -> bool {
        self.reasons.get(handle.0).and_then(|r| r.code()) == Some("ConditionalCheckFailed")
    }

    /// The item as the failed condition found it (`ReturnValuesOnConditionCheckFailure`).
    pub fn found(&self, handle: Handle) -> Option<&Item> {
        self.reasons.get(handle.0).filter(|_| self.at(handle)).and_then(|r| r.item())
    }
}

impl Transaction {
    /// Adds a prepared write and names it.
    pub fn push(&mut self, item: TransactWriteItem) -> Handle {
        self.items.push(item);
        Handle(self.items.len() - 1)
    }

    pub fn put(&mut self, put: Put) -> Handle {
        self.push(TransactWriteItem::builder().put(put).build())
    }

    pub fn update(&mut self, update: Update) -> Handle {
        self.push(TransactWriteItem::builder().update(update).build())
    }

    pub fn check(&mut self, check: ConditionCheck) -> Handle {
        self.push(TransactWriteItem::builder().condition_check(check).build())
    }

    /// `ClientRequestToken`: a retry of the same call within ten minutes commits at most once.
    pub fn idempotency_token(&mut self, token: String) {
        self.token = Some(token);
    }
}

impl Store {
    pub(crate) fn transaction(&self) -> Transaction {
        Transaction::default()
    }

    /// A put that must create its item (never overwrite one).
    pub(crate) fn put_new_in(&self, op: &'static str, tx: &mut Transaction, item: Item) -> Result<Handle, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(build_err(op))?;
        Ok(tx.put(put))
    }

    /// A put that replaces its item only over the version it was read at.
    pub(crate) fn put_over_version_in(
        &self,
        op: &'static str,
        tx: &mut Transaction,
        item: Item,
        version: u64,
    ) -> Result<Handle, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("#version = :version")
            .expression_attribute_names("#version", "version")
            .expression_attribute_values(":version", n(version as i64))
            .build()
            .map_err(build_err(op))?;
        Ok(tx.put(put))
    }

    /// Sends the transaction. A cancellation with a failed condition is [`TxError::Cancelled`];
    /// one whose items only conflicted with another transaction in flight is
    /// [`StoreError::Contended`] (DynamoDB: reason `TransactionConflict`; nothing was written,
    /// the same transaction may be sent again); throttling reasons are a 503.
    pub(crate) async fn commit(&self, op: &'static str, tx: Transaction) -> Result<(), TxError> {
        let result = self
            .client
            .transact_write_items()
            .set_transact_items(Some(tx.items))
            .set_client_request_token(tx.token)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => Err(cancellation(op, e)),
        }
    }
}

/// Reason codes DynamoDB documents for a cancelled transaction ("TransactionCanceledException",
/// TransactWriteItems API reference).
fn cancellation<R: std::fmt::Debug>(op: &'static str, e: SdkError<TransactWriteItemsError, R>) -> TxError {
    let reasons = match e.as_service_error() {
        Some(TransactWriteItemsError::TransactionCanceledException(t)) => t.cancellation_reasons().to_vec(),
        // Another transaction with the same token is still running: the same as a conflict.
        Some(TransactWriteItemsError::TransactionInProgressException(_)) => {
            return TxError::Store(StoreError::Contended);
        }
        _ => return TxError::Store(classify(op, e)),
    };
    let code = |c: &str| reasons.iter().any(|r| r.code() == Some(c));
    if code("ConditionalCheckFailed") {
        TxError::Cancelled(Cancelled { reasons })
    } else if code("TransactionConflict") {
        TxError::Store(StoreError::Contended)
    } else if code("ThrottlingError") || code("ProvisionedThroughputExceeded") || code("RequestLimitExceeded") {
        TxError::Store(StoreError::Aws(AwsFailure::Unavailable {
            op,
            cause: format!("transaction throttled: {reasons:?}"),
        }))
    } else {
        TxError::Store(classify(op, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cancelled(codes: &[&str]) -> Cancelled {
        Cancelled { reasons: codes.iter().map(|c| CancellationReason::builder().code(*c).build()).collect() }
    }

    #[test]
    fn outcomes_are_read_by_handle() {
        let mut tx = Transaction::default();
        let first = tx.check(check());
        let second = tx.check(check());
        let failed = cancelled(&["None", "ConditionalCheckFailed"]);
        assert!(!failed.at(first));
        assert!(failed.at(second));
        assert!(failed.found(first).is_none());
    }

    fn check() -> ConditionCheck {
        ConditionCheck::builder()
            .table_name("t")
            .key("pk", aws_sdk_dynamodb::types::AttributeValue::S("x".into()))
            .condition_expression("attribute_exists(pk)")
            .build()
            .unwrap()
    }
}
