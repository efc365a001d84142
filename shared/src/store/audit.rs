//! Audit events: `AUD#<customer>#<env>` / `<time>#<id>`, and a copy under
//! `AUD#<customer>#<env>#T#<target>` so a target's history is one query too. Both are written
//! inside the transaction of the change they record, with a TTL past the 400 days kept.

use super::items::AuditItem;
use super::{Item, Store, StoreError, build_err, from_item, partition, to_item};
use crate::domain::audit::{AuditEvent, RETENTION_SECS};
use crate::domain::page::{encode_cursor, timed_sort_key};
use crate::domain::{CustomerId, Environment};
use aws_sdk_dynamodb::types::{Put, TransactWriteItem};

fn audit_pk(customer: &CustomerId, env: Environment, target: Option<&str>) -> String {
    let all = format!("{}{}#{}", partition::AUDIT, customer.as_str(), env.as_str());
    match target {
        Some(target) => format!("{all}#T#{target}"),
        None => all,
    }
}

fn audit_sk(event: &AuditEvent) -> String {
    format!("{:012}#{}", event.time.secs().max(0), event.id)
}

/// Is `sort_key` one of ours (a page cursor resumes after it)?
pub fn is_audit_sort_key(sort_key: &str) -> bool {
    timed_sort_key(sort_key, |id| {
        id.len() == 23 && id.starts_with("ev_") && id[3..].bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

/// The puts that record `event`, for the transaction of its change.
pub(crate) fn audit_puts(store: &Store, event: &AuditEvent) -> Result<Vec<TransactWriteItem>, StoreError> {
    let ttl = event.time.secs().saturating_add(RETENTION_SECS);
    [None, Some(event.target.as_str())]
        .into_iter()
        .map(|target| {
            let pk = audit_pk(&event.customer_id, event.environment, target);
            let item: Item = to_item(&AuditItem::new(pk, audit_sk(event), ttl, event))?;
            let put = Put::builder()
                .table_name(store.table())
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk)")
                .build()
                .map_err(build_err("audit"))?;
            Ok(TransactWriteItem::builder().put(put).build())
        })
        .collect()
}

/// One page of audit events, newest first.
#[derive(Debug)]
pub struct AuditPage {
    pub events: Vec<AuditEvent>,
    pub next_cursor: Option<String>,
}

impl Store {
    /// An event that goes with no other write (a portal session minted): its two copies in
    /// one transaction, so the trail and the target's history never disagree.
    pub async fn record_event(&self, event: &AuditEvent) -> Result<(), StoreError> {
        let mut tx = self.transaction();
        for put in audit_puts(self, event)? {
            tx.push(put);
        }
        match self.commit("record_event", tx).await {
            Ok(()) => Ok(()),
            Err(super::TxError::Cancelled(failed)) => {
                Err(super::internal("record_event", format!("an event id taken twice {failed:?}")))
            }
            Err(super::TxError::Store(e)) => Err(e),
        }
    }

    /// A customer environment's events (or one target's), newest first: one query, or more
    /// when DynamoDB cuts it at 1 MB ([`Store::newest_first_page`]).
    pub async fn list_audit(
        &self,
        customer: &CustomerId,
        env: Environment,
        target: Option<&str>,
        limit: u32,
        after: Option<&str>,
    ) -> Result<AuditPage, StoreError> {
        let (items, more) =
            self.newest_first_page("list_audit", None, audit_pk(customer, env, target), limit, after).await?;
        let events: Vec<AuditEvent> =
            items.into_iter().map(|i| from_item::<AuditItem>(i).map(AuditItem::event)).collect::<Result<_, _>>()?;
        let next_cursor = events.last().filter(|_| more).map(|e| encode_cursor(&audit_sk(e)));
        Ok(AuditPage { events, next_cursor })
    }
}
