//! Gates (`CUS#<id>` / `GATE#<gate>`), balances (`BAL#<token>`), unlocks (`UNLOCK#<gate>`) and
//! ledger entries (`LEDGER#<time>#<id>`) under the buddy's partition.
//!
//! The unlock is one read (BatchGetItem, consistent) and one TransactWriteItems that debits
//! the balance if it covers the cost, creates the unlock if none exists, writes the ledger
//! entry and checks the gate is unchanged: all four or none.

use std::collections::HashMap;

use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{ConditionCheck, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem, Update};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::customers::{buddy_pk, customer_pk};
use super::{
    Item, Store, StoreError, build_err, cancellation_reasons, classify, condition_failed, from_item, n, s, to_item,
};
use crate::domain::gate::{BuddyRef, Gate, LedgerEntry, Unlock, UnlockReading};
use crate::domain::{CustomerId, GateKey, TokenKey};

#[derive(Serialize, Deserialize)]
struct GateItem {
    pk: String,
    sk: String,
    #[serde(flatten)]
    gate: Gate,
}

#[derive(Serialize, Deserialize)]
struct BalanceItem {
    pk: String,
    sk: String,
    token_key: TokenKey,
    amount: i64,
}

#[derive(Serialize, Deserialize)]
struct UnlockItem {
    pk: String,
    sk: String,
    #[serde(flatten)]
    unlock: Unlock,
}

#[derive(Serialize, Deserialize)]
struct LedgerItem {
    pk: String,
    sk: String,
    #[serde(flatten)]
    entry: LedgerEntry,
}

/// The partition everything a buddy owns lives in.
fn buddy_partition(buddy: &BuddyRef) -> String {
    buddy_pk(&buddy.customer, buddy.env, &buddy.buddy)
}

fn gate_sk(gate: &GateKey) -> String {
    format!("GATE#{}", gate.as_str())
}
fn balance_sk(token: &TokenKey) -> String {
    format!("BAL#{}", token.as_str())
}
fn unlock_sk(gate: &GateKey) -> String {
    format!("UNLOCK#{}", gate.as_str())
}

/// How the spend transaction ended.
#[derive(Debug)]
pub enum SpendOutcome {
    Spent,
    /// Another request created the unlock first (possibly this one, on an SDK retry).
    AlreadyUnlocked(Option<Unlock>),
    /// The balance no longer covers the cost.
    Insufficient {
        available: Option<i64>,
    },
    /// The gate changed (or vanished) between the read and the write: read again.
    GateChanged,
    /// DynamoDB reported a conflicting transaction: retry.
    Conflict,
}

fn key(pk: String, sk: String) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

impl Store {
    /// The spend's idempotency token: one per table, request, buddy, gate and attempt
    /// (DynamoDB scopes tokens to the account, not the table).
    fn spend_token(&self, request_id: &str, buddy: &BuddyRef, gate: &GateKey, attempt: u32) -> String {
        let digest = Sha256::digest(format!(
            "{}|{request_id}|{}|{}|{attempt}",
            self.table,
            buddy_partition(buddy),
            gate.as_str()
        ));
        hex::encode(digest)[..36].to_owned()
    }

    pub async fn create_gate(&self, gate: &Gate) -> Result<(), StoreError> {
        let item =
            to_item(&GateItem { pk: customer_pk(&gate.customer_id), sk: gate_sk(&gate.gate_key), gate: gate.clone() })?;
        self.put_new("create_gate", item).await
    }

    /// All gates of a customer, sorted by gate key (the sort key order).
    pub async fn list_gates(&self, customer: &CustomerId) -> Result<Vec<Gate>, StoreError> {
        let items = self.query_prefix("list_gates", customer_pk(customer), "GATE#").await?;
        items.into_iter().map(|i| from_item::<GateItem>(i).map(|g| g.gate)).collect()
    }

    /// All unlocks of a buddy, sorted by gate key.
    pub async fn list_unlocks(&self, buddy: &BuddyRef) -> Result<Vec<Unlock>, StoreError> {
        let items = self.query_prefix("list_unlocks", buddy_partition(buddy), "UNLOCK#").await?;
        items.into_iter().map(|i| from_item::<UnlockItem>(i).map(|u| u.unlock)).collect()
    }

    /// All ledger entries of a buddy, oldest first.
    pub async fn list_ledger(&self, buddy: &BuddyRef) -> Result<Vec<LedgerEntry>, StoreError> {
        let items = self.query_prefix("list_ledger", buddy_partition(buddy), "LEDGER#").await?;
        items.into_iter().map(|i| from_item::<LedgerItem>(i).map(|l| l.entry)).collect()
    }

    /// Every balance of a buddy, by token key.
    pub async fn list_balances(&self, buddy: &BuddyRef) -> Result<Vec<(TokenKey, i64)>, StoreError> {
        let items = self.query_prefix("list_balances", buddy_partition(buddy), "BAL#").await?;
        items.into_iter().map(|i| from_item::<BalanceItem>(i).map(|b| (b.token_key, b.amount))).collect()
    }

    /// Adds to a balance; the buddy must exist (checked in the same transaction).
    pub async fn credit(&self, buddy: &BuddyRef, token: &TokenKey, amount: i64) -> Result<(), StoreError> {
        let err = build_err("credit");
        let check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(buddy_partition(buddy), "BUDDY".into())))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(&err)?;
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(buddy_partition(buddy), balance_sk(token))))
            .update_expression("ADD #amount :amount SET #token = :token")
            .expression_attribute_names("#amount", "amount")
            .expression_attribute_names("#token", "token_key")
            .expression_attribute_values(":amount", n(amount))
            .expression_attribute_values(":token", s(token.as_str()))
            .build()
            .map_err(&err)?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().condition_check(check).build())
            .transact_items(TransactWriteItem::builder().update(update).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if cancellation_reasons(&e).is_some_and(|r| condition_failed(r, 0)) => Err(StoreError::NotFound),
            Err(e) => Err(classify("credit", e)),
        }
    }

    /// The unlock read: gate, buddy, balance and any existing unlock in one consistent batch.
    pub async fn read_for_unlock(
        &self,
        buddy: &BuddyRef,
        gate: &GateKey,
        token: &TokenKey,
    ) -> Result<UnlockReading, StoreError> {
        let customer_pk = customer_pk(&buddy.customer);
        let keys = vec![
            key(customer_pk.clone(), gate_sk(gate)),
            key(buddy_partition(buddy), "BUDDY".into()),
            key(buddy_partition(buddy), balance_sk(token)),
            key(buddy_partition(buddy), unlock_sk(gate)),
        ];
        let found = self.batch_get_consistent("read_for_unlock", keys).await?;
        view_of(found, &customer_pk, gate)
    }

    /// The spend transaction. `ClientRequestToken` makes an SDK retry of the same request
    /// idempotent on DynamoDB; the unlock's `request_id` lets us recognise our own write
    /// if a retry reaches an emulator that does not honour the token. `attempt` numbers the
    /// caller's tries: each is its own transaction (fresh timestamp, maybe a changed gate),
    /// and reusing a token with other parameters is an `IdempotentParameterMismatch`.
    pub async fn spend(
        &self,
        buddy: &BuddyRef,
        gate: &Gate,
        unlock: &Unlock,
        attempt: u32,
    ) -> Result<SpendOutcome, StoreError> {
        let token = self.spend_token(&unlock.request_id, buddy, &gate.gate_key, attempt);
        let err = build_err("spend");
        let debit = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(buddy_partition(buddy), balance_sk(&gate.token_key))))
            .update_expression("SET #amount = #amount - :cost")
            .condition_expression("#amount >= :cost")
            .expression_attribute_names("#amount", "amount")
            .expression_attribute_values(":cost", n(gate.cost))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(&err)?;
        let unlock_put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(&UnlockItem {
                pk: buddy_partition(buddy),
                sk: unlock_sk(&gate.gate_key),
                unlock: unlock.clone(),
            })?))
            .condition_expression("attribute_not_exists(pk)")
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(&err)?;
        let entry = LedgerEntry {
            customer_id: buddy.customer.clone(),
            environment: buddy.env,
            buddy_id: buddy.buddy.clone(),
            gate_key: gate.gate_key.clone(),
            token_key: gate.token_key.clone(),
            amount: gate.cost,
            at: unlock.unlocked_at,
            request_id: unlock.request_id.clone(),
        };
        let ledger_sk = format!("LEDGER#{:012}#{}", unlock.unlocked_at.secs(), &token[..16]);
        let ledger_put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(to_item(&LedgerItem { pk: buddy_partition(buddy), sk: ledger_sk, entry })?))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(&err)?;
        let gate_check = ConditionCheck::builder()
            .table_name(&self.table)
            .set_key(Some(key(customer_pk(&buddy.customer), gate_sk(&gate.gate_key))))
            .condition_expression("#cost = :cost AND #token = :token")
            .expression_attribute_names("#cost", "cost")
            .expression_attribute_names("#token", "token_key")
            .expression_attribute_values(":cost", n(gate.cost))
            .expression_attribute_values(":token", s(gate.token_key.as_str()))
            .build()
            .map_err(&err)?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().update(debit).build())
            .transact_items(TransactWriteItem::builder().put(unlock_put).build())
            .transact_items(TransactWriteItem::builder().put(ledger_put).build())
            .transact_items(TransactWriteItem::builder().condition_check(gate_check).build())
            .client_request_token(&token)
            .send()
            .await;
        let e = match result {
            Ok(_) => return Ok(SpendOutcome::Spent),
            Err(e) => e,
        };
        let Some(reasons) = cancellation_reasons(&e) else {
            return match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionInProgressException(_)) => Ok(SpendOutcome::Conflict),
                _ => Err(classify("spend", e)),
            };
        };
        // An existing unlock wins over everything: concurrent identical calls never 402.
        if condition_failed(reasons, 1) {
            let existing =
                reasons[1].item().cloned().map(from_item::<UnlockItem>).transpose().ok().flatten().map(|u| u.unlock);
            return Ok(SpendOutcome::AlreadyUnlocked(existing));
        }
        if condition_failed(reasons, 3) {
            return Ok(SpendOutcome::GateChanged);
        }
        if condition_failed(reasons, 0) {
            let available = reasons[0]
                .item()
                .and_then(|i| i.get("amount"))
                .and_then(|v| v.as_n().ok())
                .and_then(|v| v.parse().ok());
            return Ok(SpendOutcome::Insufficient { available: available.or(Some(0)) });
        }
        if reasons.iter().any(|r| r.code() == Some("TransactionConflict")) {
            return Ok(SpendOutcome::Conflict);
        }
        Err(classify("spend", e))
    }

    /// The unlock of a gate, if any (consistent), for answering after a lost race.
    pub async fn get_unlock(&self, buddy: &BuddyRef, gate: &GateKey) -> Result<Option<Unlock>, StoreError> {
        let item: Option<UnlockItem> =
            self.get_consistent("get_unlock", buddy_partition(buddy), &unlock_sk(gate)).await?;
        Ok(item.map(|u| u.unlock))
    }
}

fn view_of(items: Vec<Item>, customer_pk: &str, gate: &GateKey) -> Result<UnlockReading, StoreError> {
    let mut view = UnlockReading { gate: None, buddy_exists: false, balance: 0, unlock: None };
    for item in items {
        let sk = item.get("sk").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        let pk = item.get("pk").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        if pk == customer_pk && sk == gate_sk(gate) {
            view.gate = Some(from_item::<GateItem>(item)?.gate);
        } else if sk == "BUDDY" {
            view.buddy_exists = true;
        } else if sk.starts_with("BAL#") {
            view.balance = from_item::<BalanceItem>(item)?.amount;
        } else if sk.starts_with("UNLOCK#") {
            view.unlock = Some(from_item::<UnlockItem>(item)?.unlock);
        }
    }
    Ok(view)
}
