//! Gates (`CUS#<id>` / `GATE#<gate>`), balances (`BAL#<token>`), unlocks (`UNLOCK#<gate>`) and
//! ledger entries (`LEDGER#<time>#<id>`) under the buddy's partition.
//!
//! The unlock is one read (BatchGetItem, consistent) and one TransactWriteItems that debits
//! the balance if it covers the cost, creates the unlock if none exists, writes the ledger
//! entry and checks the gate is unchanged: all four or none.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{ConditionCheck, ReturnValuesOnConditionCheckFailure, Update};
use sha2::{Digest, Sha256};

use super::customers::{buddy_pk, customer_pk};
use super::items::{BalanceItem, GateItem, LedgerItem, UnlockItem};
use super::{Item, Store, StoreError, TxError, build_err, from_item, n, s, to_item};
use crate::domain::gate::{BuddyRef, Gate, LedgerEntry, Unlock, UnlockReading};
use crate::domain::{CustomerId, GateKey, TokenKey};

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
#[derive(Debug, PartialEq, Eq)]
pub enum SpendOutcome {
    Spent,
    /// Another request created the unlock first (possibly this one, on an SDK retry): read
    /// again and answer from what is there.
    AlreadyUnlocked,
    /// The balance no longer covers the cost.
    Insufficient {
        available: i64,
    },
    /// The gate changed (or vanished) between the read and the write: read again.
    GateChanged,
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
        let item = to_item(&GateItem::new(customer_pk(&gate.customer_id), gate_sk(&gate.gate_key), gate))?;
        self.put_new("create_gate", item).await
    }

    /// All gates of a customer, sorted by gate key (the sort key order).
    pub async fn list_gates(&self, customer: &CustomerId) -> Result<Vec<Gate>, StoreError> {
        let items = self.query_prefix("list_gates", customer_pk(customer), "GATE#").await?;
        items.into_iter().map(|i| from_item::<GateItem>(i).map(GateItem::gate)).collect()
    }

    /// All unlocks of a buddy, sorted by gate key.
    pub async fn list_unlocks(&self, buddy: &BuddyRef) -> Result<Vec<Unlock>, StoreError> {
        let items = self.query_prefix("list_unlocks", buddy_partition(buddy), "UNLOCK#").await?;
        items.into_iter().map(|i| from_item::<UnlockItem>(i).map(UnlockItem::unlock)).collect()
    }

    /// All ledger entries of a buddy, oldest first.
    pub async fn list_ledger(&self, buddy: &BuddyRef) -> Result<Vec<LedgerEntry>, StoreError> {
        let items = self.query_prefix("list_ledger", buddy_partition(buddy), "LEDGER#").await?;
        items.into_iter().map(|i| from_item::<LedgerItem>(i).map(LedgerItem::entry)).collect()
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
        let mut tx = self.transaction();
        let buddy_exists = tx.check(check);
        tx.update(update);
        match self.commit("credit", tx).await {
            Ok(()) => Ok(()),
            Err(TxError::Cancelled(failed)) if failed.at(buddy_exists) => Err(StoreError::NotFound),
            Err(TxError::Cancelled(failed)) => {
                Err(super::internal("credit", format!("unexpected cancellation {failed:?}")))
            }
            Err(TxError::Store(e)) => Err(e),
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
        unlock_reading(found, &customer_pk, gate)
    }

    /// The spend transaction: debit, unlock, ledger entry and gate check, all or nothing.
    /// `ClientRequestToken` makes an SDK retry of the same request idempotent on DynamoDB; the
    /// unlock's `request_id` lets us recognise our own write if a retry reaches an emulator
    /// that does not honour the token. `attempt` numbers the caller's tries: each is its own
    /// transaction (fresh timestamp, maybe a changed gate), and reusing a token with other
    /// parameters is an `IdempotentParameterMismatch`. A conflicting transaction in flight is
    /// [`StoreError::Contended`].
    pub async fn spend(
        &self,
        buddy: &BuddyRef,
        gate: &Gate,
        unlock: &Unlock,
        entry: &LedgerEntry,
        attempt: u32,
    ) -> Result<SpendOutcome, StoreError> {
        let token = self.spend_token(&unlock.request_id, buddy, &gate.gate_key, attempt);
        let err = build_err("spend");
        let mut tx = self.transaction();
        let debit = tx.update(
            Update::builder()
                .table_name(&self.table)
                .set_key(Some(key(buddy_partition(buddy), balance_sk(&gate.token_key))))
                .update_expression("SET #amount = #amount - :cost")
                .condition_expression("#amount >= :cost")
                .expression_attribute_names("#amount", "amount")
                .expression_attribute_values(":cost", n(gate.cost))
                .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
                .build()
                .map_err(&err)?,
        );
        let unlock_item = to_item(&UnlockItem::new(buddy_partition(buddy), unlock_sk(&gate.gate_key), unlock))?;
        let claim = self.put_new_in("spend", &mut tx, unlock_item)?;
        let ledger_sk = format!("LEDGER#{:012}#{}", entry.at.secs(), &token[..16]);
        self.put_new_in("spend", &mut tx, to_item(&LedgerItem::new(buddy_partition(buddy), ledger_sk, entry))?)?;
        let gate_unchanged = tx.check(
            ConditionCheck::builder()
                .table_name(&self.table)
                .set_key(Some(key(customer_pk(&buddy.customer), gate_sk(&gate.gate_key))))
                .condition_expression("#cost = :cost AND #token = :token")
                .expression_attribute_names("#cost", "cost")
                .expression_attribute_names("#token", "token_key")
                .expression_attribute_values(":cost", n(gate.cost))
                .expression_attribute_values(":token", s(gate.token_key.as_str()))
                .build()
                .map_err(&err)?,
        );
        tx.idempotency_token(token);
        let failed = match self.commit("spend", tx).await {
            Ok(()) => return Ok(SpendOutcome::Spent),
            Err(TxError::Store(e)) => return Err(e),
            Err(TxError::Cancelled(failed)) => failed,
        };
        // An existing unlock wins over everything: concurrent identical calls never 402.
        if failed.at(claim) {
            return Ok(SpendOutcome::AlreadyUnlocked);
        }
        if failed.at(gate_unchanged) {
            return Ok(SpendOutcome::GateChanged);
        }
        if failed.at(debit) {
            // No balance item at all is a balance of zero.
            let available =
                failed.found(debit).and_then(|i| from_item::<BalanceItem>(i.clone()).ok()).map(|b| b.amount);
            return Ok(SpendOutcome::Insufficient { available: available.unwrap_or(0) });
        }
        Err(super::internal("spend", format!("unexpected cancellation {failed:?}")))
    }
}

/// What the unlock read found, by item.
fn unlock_reading(items: Vec<Item>, customer_pk: &str, gate: &GateKey) -> Result<UnlockReading, StoreError> {
    let mut view = UnlockReading { gate: None, buddy_exists: false, balance: 0, unlock: None };
    for item in items {
        let sk = item.get("sk").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        let pk = item.get("pk").and_then(|v| v.as_s().ok()).cloned().unwrap_or_default();
        if pk == customer_pk && sk == gate_sk(gate) {
            view.gate = Some(from_item::<GateItem>(item)?.gate());
        } else if sk == "BUDDY" {
            view.buddy_exists = true;
        } else if sk.starts_with("BAL#") {
            view.balance = from_item::<BalanceItem>(item)?.amount;
        } else if sk.starts_with("UNLOCK#") {
            view.unlock = Some(from_item::<UnlockItem>(item)?.unlock());
        }
    }
    Ok(view)
}
