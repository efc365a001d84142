//! API keys, stored twice and always changed together in one transaction:
//! - `KEY#<sha256>` / `KEY`: the record every authentication reads (by the presented key's hash);
//! - `PREFIX#<display prefix>` / `PREFIX`: the prefix claim (prefixes are unique: both items are
//!   created with `attribute_not_exists`), carrying a copy of the record for key management,
//!   which knows keys only by prefix, and the index entry `gsi1` lists them by.
//!
//! Every change writes both over the version it was decided on, and its audit event, in one
//! `TransactWriteItems`: a change and its event land together or not at all.

use std::collections::HashMap;

use super::audit::audit_puts;
use super::items::{KeyItem, PrefixItem};
use super::{Item, Store, StoreError, TxError, classify, from_item, is_condition_failure, n, partition, s, to_item};
use crate::domain::audit::AuditEvent;
use crate::domain::page::{encode_cursor, timed_sort_key};
use crate::domain::role::RoleCount;
use crate::domain::{CustomerId, Environment, KeyHash, KeyPrefix, KeyRecord, UnixTime};

fn key_pk(hash: &KeyHash) -> String {
    format!("{}{}", partition::KEY, hash.as_str())
}

fn prefix_pk(prefix: &KeyPrefix) -> String {
    format!("{}{}", partition::PREFIX, prefix.as_str())
}

/// The index partition of a customer's keys in one environment.
fn keys_index_pk(customer: &CustomerId, env: Environment) -> String {
    format!("{}{}#KEYS#{}", partition::CUSTOMER, customer.as_str(), env.as_str())
}

/// How keys sort in the index: by creation, then prefix (unique).
fn keys_index_sk(record: &KeyRecord) -> String {
    format!("{:012}#{}", record.created_at.secs().max(0), record.prefix)
}

/// Is `sort_key` one of ours (a page cursor resumes after it)?
pub fn is_keys_sort_key(sort_key: &str) -> bool {
    timed_sort_key(sort_key, |rest| KeyPrefix::parse(rest).is_some())
}

/// One page of a customer's keys in one environment, newest first.
#[derive(Debug)]
pub struct KeyPage {
    pub keys: Vec<KeyRecord>,
    pub next_cursor: Option<String>,
}

impl Store {
    /// Consistent read, so a revocation is seen by the very next request.
    pub async fn get_key(&self, hash: &KeyHash) -> Result<Option<KeyRecord>, StoreError> {
        let item: Option<KeyItem> = self.get_consistent("get_key", key_pk(hash), "KEY").await?;
        Ok(item.map(|k| k.fields.into()))
    }

    /// The keys on record among `hashes`, by hash (consistent batch reads): the usage roll-up's
    /// keys of a batch.
    pub async fn keys_by_hash(&self, hashes: &[KeyHash]) -> Result<HashMap<String, KeyRecord>, StoreError> {
        let keys: Vec<Item> = hashes
            .iter()
            .map(|h| HashMap::from([("pk".to_owned(), s(key_pk(h))), ("sk".to_owned(), s("KEY"))]))
            .collect();
        let mut found = HashMap::new();
        for item in self.batch_get_consistent("keys_by_hash", keys).await? {
            let record: KeyRecord = from_item::<KeyItem>(item)?.fields.into();
            found.insert(record.key_hash.as_str().to_owned(), record);
        }
        Ok(found)
    }

    /// The key with this display prefix (consistent), for key management.
    pub async fn key_by_prefix(&self, prefix: &KeyPrefix) -> Result<Option<KeyRecord>, StoreError> {
        let item: Option<PrefixItem> = self.get_consistent("key_by_prefix", prefix_pk(prefix), "PREFIX").await?;
        Ok(item.map(|p| p.fields.into()))
    }

    /// Writes a new key (both items, its prefix claimed) and its audit event, if any, in one
    /// transaction. `AlreadyExists` means the prefix (or, impossibly, the hash) is taken.
    pub async fn create_key(&self, record: &KeyRecord, event: Option<&AuditEvent>) -> Result<(), StoreError> {
        self.commit_keys("create_key", &[record], &[], &[], event).await
    }

    /// Replaces keys with their new versions (each only over the version it was read at),
    /// creates new ones, moves the holder counts of their roles, and writes the event — all or
    /// nothing. `Conflict`: someone changed a key or a role in between (read again and decide
    /// again); `AlreadyExists`: a new prefix is taken.
    pub async fn commit_keys(
        &self,
        op: &'static str,
        created: &[&KeyRecord],
        changed: &[(&KeyRecord, &KeyRecord)],
        roles: &[RoleCount],
        event: Option<&AuditEvent>,
    ) -> Result<(), StoreError> {
        let mut tx = self.transaction();
        if let Some(any) = created.first().copied().or(changed.first().map(|c| c.1)) {
            self.role_counts_in(op, &mut tx, &any.customer_id, any.environment, roles)?;
        }
        let mut claims = Vec::new();
        for record in created {
            for item in self.key_items(record)? {
                claims.push(self.put_new_in(op, &mut tx, item)?);
            }
        }
        for (old, new) in changed {
            for item in self.key_items(new)? {
                self.put_over_version_in(op, &mut tx, item, old.version)?;
            }
        }
        for put in event.map(|e| audit_puts(self, e)).transpose()?.into_iter().flatten() {
            tx.push(put);
        }
        match self.commit(op, tx).await {
            Ok(()) => Ok(()),
            Err(TxError::Cancelled(failed)) if claims.iter().any(|c| failed.at(*c)) => Err(StoreError::AlreadyExists),
            Err(TxError::Cancelled(_)) => Err(StoreError::Conflict),
            Err(TxError::Store(e)) => Err(e),
        }
    }

    fn key_items(&self, record: &KeyRecord) -> Result<[Item; 2], StoreError> {
        let key = to_item(&KeyItem { pk: key_pk(&record.key_hash), sk: "KEY".into(), fields: record.into() })?;
        let prefix = to_item(&PrefixItem {
            pk: prefix_pk(&record.prefix),
            sk: "PREFIX".into(),
            gsi1pk: keys_index_pk(&record.customer_id, record.environment),
            gsi1sk: keys_index_sk(record),
            fields: record.into(),
        })?;
        Ok([key, prefix])
    }

    /// Records use at most once per resolution, on both copies of the record: the
    /// condition makes concurrent writers in the same minute a no-op rather than a race.
    pub async fn touch_key_last_used(
        &self,
        record: &KeyRecord,
        now: UnixTime,
        resolution_secs: i64,
    ) -> Result<(), StoreError> {
        let touch = |pk: String, sk: &'static str| {
            self.client
                .update_item()
                .table_name(&self.table)
                .key("pk", s(pk))
                .key("sk", s(sk))
                .update_expression("SET #used = :now")
                .condition_expression("attribute_exists(pk) AND (attribute_not_exists(#used) OR #used <= :cutoff)")
                .expression_attribute_names("#used", "last_used_at")
                .expression_attribute_values(":now", n(now.secs()))
                .expression_attribute_values(":cutoff", n(now.secs().saturating_sub(resolution_secs)))
                .send()
        };
        let (key, prefix) =
            futures::join!(touch(key_pk(&record.key_hash), "KEY"), touch(prefix_pk(&record.prefix), "PREFIX"));
        for result in [key.map(drop), prefix.map(drop)] {
            match result {
                Ok(()) => {}
                Err(e) if is_condition_failure(&e) => {}
                Err(e) => return Err(classify("touch_key_last_used", e)),
            }
        }
        Ok(())
    }

    /// One page of a customer's keys in one environment, newest first, resuming after the sort
    /// key a cursor carries. One query (one more item than asked tells whether more follow), or more
    /// when DynamoDB cuts it at 1 MB.
    pub async fn list_keys_page(
        &self,
        customer: &CustomerId,
        env: Environment,
        limit: u32,
        after: Option<&str>,
    ) -> Result<KeyPage, StoreError> {
        let index = Some(("gsi1", "gsi1pk", "gsi1sk"));
        let (items, more) =
            self.newest_first_page("list_keys_page", index, keys_index_pk(customer, env), limit, after).await?;
        let keys: Vec<KeyRecord> =
            items.into_iter().map(|i| from_item::<PrefixItem>(i).map(|p| p.fields.into())).collect::<Result<_, _>>()?;
        let next_cursor = keys.last().filter(|_| more).map(|k| encode_cursor(&keys_index_sk(k)));
        Ok(KeyPage { keys, next_cursor })
    }

    /// Every key of a customer in both environments, oldest first (operators).
    pub async fn list_keys(&self, customer: &CustomerId) -> Result<Vec<KeyRecord>, StoreError> {
        let mut keys = Vec::new();
        for env in Environment::ALL {
            let mut pages = self
                .client
                .query()
                .table_name(&self.table)
                .index_name("gsi1")
                .key_condition_expression("gsi1pk = :pk")
                .expression_attribute_values(":pk", s(keys_index_pk(customer, *env)))
                .into_paginator()
                .items()
                .send();
            while let Some(item) = pages.next().await {
                let item = item.map_err(|e| classify("list_keys", e))?;
                keys.push(KeyRecord::from(from_item::<PrefixItem>(item)?.fields));
            }
        }
        keys.sort_by_key(|k| (k.created_at, k.prefix.as_str().to_owned()));
        Ok(keys)
    }
}
