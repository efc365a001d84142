//! API key items: `KEY#<sha256>` with the record, and `PREFIX#<display prefix>` claims
//! that make prefixes unique and map a prefix back to its hash for operators.

use serde::{Deserialize, Serialize};

use super::{
    Item, Store, StoreError, build_err, cancellation_reasons, classify, condition_failed, from_item,
    is_condition_failure, n, s, to_item,
};
use crate::domain::{CustomerId, KeyHash, KeyPrefix, KeyRecord, UnixTime};

#[derive(Serialize, Deserialize)]
struct KeyItem {
    pk: String,
    sk: String,
    gsi1pk: String,
    gsi1sk: String,
    #[serde(flatten)]
    record: KeyRecord,
}

#[derive(Serialize, Deserialize)]
struct PrefixItem {
    pk: String,
    sk: String,
    key_hash: KeyHash,
}

fn key_pk(hash: &KeyHash) -> String {
    format!("{}{}", super::partition::KEY, hash.as_str())
}

fn prefix_pk(prefix: &KeyPrefix) -> String {
    format!("{}{}", super::partition::PREFIX, prefix.as_str())
}

fn customer_keys_pk(customer: &CustomerId) -> String {
    format!("{}{}#KEYS", super::partition::CUSTOMER, customer.as_str())
}

impl Store {
    /// Consistent read, so a revocation is seen by the very next request.
    pub async fn get_key(&self, hash: &KeyHash) -> Result<Option<KeyRecord>, StoreError> {
        let item: Option<KeyItem> = self.get_consistent("get_key", key_pk(hash), "KEY").await?;
        Ok(item.map(|k| k.record))
    }

    /// Writes the key and claims its prefix in one transaction: both or neither.
    /// `AlreadyExists` means the prefix (or, impossibly, the hash) is taken: draw a new key.
    pub async fn create_key(&self, record: &KeyRecord) -> Result<(), StoreError> {
        let key_item = to_item(&KeyItem {
            pk: key_pk(&record.key_hash),
            sk: "KEY".into(),
            gsi1pk: customer_keys_pk(&record.customer_id),
            gsi1sk: format!("{:012}#{}", record.created_at.secs(), record.prefix),
            record: record.clone(),
        })?;
        let prefix_item = to_item(&PrefixItem {
            pk: prefix_pk(&record.prefix),
            sk: "PREFIX".into(),
            key_hash: record.key_hash.clone(),
        })?;
        let put = |item: Item| {
            aws_sdk_dynamodb::types::Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map(|p| aws_sdk_dynamodb::types::TransactWriteItem::builder().put(p).build())
                .map_err(build_err("create_key"))
        };
        let result = self
            .client
            .transact_write_items()
            .transact_items(put(key_item)?)
            .transact_items(put(prefix_item)?)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if cancellation_reasons(&e).is_some_and(|r| condition_failed(r, 0) || condition_failed(r, 1)) => {
                Err(StoreError::AlreadyExists)
            }
            Err(e) => Err(classify("create_key", e)),
        }
    }

    pub async fn key_hash_by_prefix(&self, prefix: &KeyPrefix) -> Result<Option<KeyHash>, StoreError> {
        let item: Option<PrefixItem> = self.get_consistent("key_hash_by_prefix", prefix_pk(prefix), "PREFIX").await?;
        Ok(item.map(|p| p.key_hash))
    }

    /// Sets `revoked_at` once; revoking again keeps the first time. Returns the record.
    pub async fn revoke_key(&self, hash: &KeyHash, now: UnixTime) -> Result<KeyRecord, StoreError> {
        self.update_key(
            hash,
            "revoke_key",
            "SET #revoked = if_not_exists(#revoked, :now)",
            &[("#revoked", "revoked_at")],
            &[(":now", n(now.secs()))],
        )
        .await
    }

    /// Sets (or shortens to) an expiry, for rotation grace periods.
    pub async fn set_key_expiry(&self, hash: &KeyHash, expires_at: UnixTime) -> Result<KeyRecord, StoreError> {
        self.update_key(
            hash,
            "set_key_expiry",
            "SET #expires = :at",
            &[("#expires", "expires_at")],
            &[(":at", n(expires_at.secs()))],
        )
        .await
    }

    /// Records use at most once per resolution: the condition makes concurrent
    /// writers in the same minute a no-op rather than a race.
    pub async fn touch_key_last_used(
        &self,
        hash: &KeyHash,
        now: UnixTime,
        resolution_secs: i64,
    ) -> Result<(), StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(key_pk(hash)))
            .key("sk", s("KEY"))
            .update_expression("SET #used = :now")
            .condition_expression("attribute_exists(pk) AND (attribute_not_exists(#used) OR #used <= :cutoff)")
            .expression_attribute_names("#used", "last_used_at")
            .expression_attribute_values(":now", n(now.secs()))
            .expression_attribute_values(":cutoff", n(now.secs() - resolution_secs))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) if is_condition_failure(&e) => Ok(()),
            Err(e) => Err(classify("touch_key_last_used", e)),
        }
    }

    /// Every key of a customer, oldest first (GSI query, paginated to the end).
    pub async fn list_keys(&self, customer: &CustomerId) -> Result<Vec<KeyRecord>, StoreError> {
        let mut keys = Vec::new();
        let mut pages = self
            .client
            .query()
            .table_name(&self.table)
            .index_name("gsi1")
            .key_condition_expression("gsi1pk = :pk")
            .expression_attribute_values(":pk", s(customer_keys_pk(customer)))
            .into_paginator()
            .items()
            .send();
        while let Some(item) = pages.next().await {
            let item = item.map_err(|e| classify("list_keys", e))?;
            keys.push(from_item::<KeyItem>(item)?.record);
        }
        Ok(keys)
    }

    async fn update_key(
        &self,
        hash: &KeyHash,
        op: &'static str,
        expression: &str,
        names: &[(&str, &str)],
        values: &[(&str, aws_sdk_dynamodb::types::AttributeValue)],
    ) -> Result<KeyRecord, StoreError> {
        let mut req = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(key_pk(hash)))
            .key("sk", s("KEY"))
            .update_expression(expression)
            .condition_expression("attribute_exists(pk)")
            .return_values(aws_sdk_dynamodb::types::ReturnValue::AllNew);
        for (k, v) in names {
            req = req.expression_attribute_names(*k, *v);
        }
        for (k, v) in values {
            req = req.expression_attribute_values(*k, v.clone());
        }
        match req.send().await {
            Ok(out) => from_item::<KeyItem>(out.attributes.unwrap_or_default()).map(|k| k.record),
            Err(e) if is_condition_failure(&e) => Err(StoreError::NotFound),
            Err(e) => Err(classify(op, e)),
        }
    }
}
