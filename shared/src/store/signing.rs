//! The published public signing keys (`SIGNING#JWKS` / `JWKS`): written by the rotation's
//! `setSecret` (and `hatchctl signing-key create`), read by `jwks` and `introspect-token`,
//! which thereby never need the signing secret. And the platform's own audit trail of the
//! signing key (`SIGNING#AUDIT` / `<time>#<id>`): operator events that are no customer's.

use aws_sdk_dynamodb::types::AttributeValue;

use super::items::{AuditItem, PublishedItem};
use super::{Store, StoreError, classify, from_item, to_item};
use crate::domain::audit::{AuditEvent, RETENTION_SECS};
use crate::domain::signing_keys::PublishedKeys;

fn audit_pk() -> String {
    format!("{}AUDIT", super::partition::SIGNING)
}

const SK: &str = "JWKS";

fn published_pk() -> String {
    format!("{}JWKS", super::partition::SIGNING)
}

impl Store {
    /// The published key set, if any (one consistent `GetItem`).
    pub async fn published_keys(&self) -> Result<Option<PublishedKeys>, StoreError> {
        let item: Option<PublishedItem> = self.get_consistent("published_keys", published_pk(), SK).await?;
        Ok(item.map(PublishedItem::keys))
    }

    /// Replaces the published key set (one `PutItem`).
    pub async fn publish_keys(&self, keys: &PublishedKeys) -> Result<(), StoreError> {
        let item = to_item(&PublishedItem::new(published_pk(), SK.to_owned(), keys))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| classify("publish_keys", e))?;
        Ok(())
    }

    /// Records a platform signing-key event (one conditional `PutItem`: an id is never
    /// overwritten), kept as long as customers' events.
    pub async fn record_signing_event(&self, event: &AuditEvent) -> Result<(), StoreError> {
        let sk = format!("{:012}#{}", event.time.secs().max(0), event.id);
        let ttl = event.time.secs().saturating_add(RETENTION_SECS);
        let item = to_item(&AuditItem::new(audit_pk(), sk, ttl, event))?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(|e| classify("record_signing_event", e))?;
        Ok(())
    }

    /// The newest `limit` platform signing-key events, newest first (one `Query`).
    pub async fn signing_events(&self, limit: i32) -> Result<Vec<AuditEvent>, StoreError> {
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(audit_pk()))
            .scan_index_forward(false)
            .limit(limit)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| classify("signing_events", e))?;
        out.items.unwrap_or_default().into_iter().map(|i| from_item::<AuditItem>(i).map(AuditItem::event)).collect()
    }
}
