//! Widget sessions (`WS#<session id>` / `SESSION`), kept until a day after they expire
//! (DynamoDB TTL is lazy, so every read checks `expires_at` itself).

use aws_sdk_dynamodb::types::{ConditionCheck, Put, ReturnValue, TransactWriteItem};
use serde::{Deserialize, Serialize};

use super::customers::buddy_pk;
use super::{
    Store, StoreError, build_err, cancellation_reasons, classify, condition_failed, from_item, is_condition_failure, n,
    s, to_item,
};
use crate::domain::audit::AuditEvent;
use crate::domain::token::{SessionSubject, WidgetSession};
use crate::domain::{CustomerId, Environment, SessionId, UnixTime};

/// How long a session item outlives its expiry, so a late revoke still finds it.
const KEEP_AFTER_EXPIRY_SECS: i64 = 86_400;

#[derive(Serialize, Deserialize)]
struct SessionItem {
    pk: String,
    sk: String,
    ttl: i64,
    #[serde(flatten)]
    session: WidgetSession,
}

/// Why a session could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateSessionError {
    #[error("buddy not found")]
    BuddyNotFound,
    #[error(transparent)]
    Store(#[from] StoreError),
}

fn session_pk(id: &SessionId) -> String {
    format!("{}{}", super::partition::SESSION, id.as_str())
}

impl Store {
    /// One transaction: the buddy must exist in the session's customer and environment, and
    /// the session id must be new (an id is never overwritten).
    pub async fn create_session(&self, session: &WidgetSession) -> Result<(), CreateSessionError> {
        let item = to_item(&SessionItem {
            pk: session_pk(&session.session_id),
            sk: "SESSION".into(),
            ttl: session.expires_at.secs() + KEEP_AFTER_EXPIRY_SECS,
            session: session.clone(),
        })?;
        let build = build_err("create_session");
        let buddy = ConditionCheck::builder()
            .table_name(&self.table)
            .key("pk", s(buddy_pk(&session.customer_id, session.environment, &session.buddy_id)))
            .key("sk", s("BUDDY"))
            .condition_expression("attribute_exists(pk)")
            .build()
            .map_err(&build)?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .build()
            .map_err(&build)?;
        let result = self
            .client
            .transact_write_items()
            .transact_items(TransactWriteItem::builder().condition_check(buddy).build())
            .transact_items(TransactWriteItem::builder().put(put).build())
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match cancellation_reasons(&e) {
                Some(r) if condition_failed(r, 0) => Err(CreateSessionError::BuddyNotFound),
                // The id is fresh (~107 random bits): an item already under it is this very
                // session, written by an attempt whose answer was lost and then retried by the
                // SDK. The write landed once; that is success, not a conflict.
                Some(r) if condition_failed(r, 1) => Ok(()),
                _ => Err(classify("create_session", e).into()),
            },
        }
    }

    pub async fn get_session(&self, id: &SessionId) -> Result<Option<WidgetSession>, StoreError> {
        let item: Option<SessionItem> = self.get_consistent("get_session", session_pk(id), "SESSION").await?;
        Ok(item.map(|i| i.session))
    }

    /// Sets `revoked_at` once (a second revoke returns the first time). The condition
    /// scopes the write to the caller's customer and environment: anyone else's session
    /// is `NotFound`, indistinguishable from none.
    pub async fn revoke_session(
        &self,
        id: &SessionId,
        customer: &CustomerId,
        env: Environment,
        now: UnixTime,
    ) -> Result<WidgetSession, StoreError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .key("pk", s(session_pk(id)))
            .key("sk", s("SESSION"))
            .update_expression("SET #revoked = if_not_exists(#revoked, :now)")
            .condition_expression("attribute_exists(pk) AND #cid = :cid AND #env = :env")
            .expression_attribute_names("#revoked", "revoked_at")
            .expression_attribute_names("#cid", "customer_id")
            .expression_attribute_names("#env", "environment")
            .expression_attribute_values(":now", n(now.secs()))
            .expression_attribute_values(":cid", s(customer.as_str()))
            .expression_attribute_values(":env", s(env.as_str()))
            .return_values(ReturnValue::AllNew)
            .send()
            .await;
        match result {
            Ok(out) => from_item::<SessionItem>(out.attributes.unwrap_or_default()).map(|i| i.session),
            Err(e) if is_condition_failure(&e) => Err(StoreError::NotFound),
            Err(e) => Err(classify("revoke_session", e)),
        }
    }
}

/// A bulk revocation marker: every matching session issued at or before `revoked_before`
/// is inactive. Kept two days past it (a session lives at most an hour).
#[derive(Serialize, Deserialize)]
struct MarkerItem {
    pk: String,
    sk: String,
    ttl: i64,
    revoked_before: UnixTime,
}

const MARKER_KEEP_SECS: i64 = 2 * 86_400;

fn marker_pk(customer: &CustomerId, env: Environment, subject: &SessionSubject) -> String {
    format!(
        "{}{}#{}#{}#{}",
        super::partition::REVOCATION,
        customer.as_str(),
        env.as_str(),
        subject.field(),
        subject.value()
    )
}

impl Store {
    /// Revokes every session of `customer`/`env` matching `subject` issued at or before `now`,
    /// with its audit event, in one transaction. Returns the marker's previous time; `None`
    /// with nothing written when an equal or later marker already stands (idempotent).
    pub async fn revoke_sessions(
        &self,
        customer: &CustomerId,
        env: Environment,
        subject: &SessionSubject,
        now: UnixTime,
        event: impl FnOnce(Option<UnixTime>) -> AuditEvent,
    ) -> Result<Option<UnixTime>, StoreError> {
        let pk = marker_pk(customer, env, subject);
        let previous: Option<MarkerItem> = self.get_consistent("revoke_sessions", pk.clone(), "REV").await?;
        let previous = previous.map(|m| m.revoked_before);
        if previous.is_some_and(|p| p >= now) {
            return Ok(previous);
        }
        let item = to_item(&MarkerItem {
            pk,
            sk: "REV".into(),
            ttl: now.secs().saturating_add(MARKER_KEEP_SECS),
            revoked_before: now,
        })?;
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR #before < :now")
            .expression_attribute_names("#before", "revoked_before")
            .expression_attribute_values(":now", n(now.secs()))
            .build()
            .map_err(build_err("revoke_sessions"))?;
        let mut items = vec![TransactWriteItem::builder().put(put).build()];
        items.extend(super::audit::audit_puts(self, &event(previous))?);
        match self.client.transact_write_items().set_transact_items(Some(items)).send().await {
            Ok(_) => Ok(previous),
            // A concurrent revocation of the same subject got there first: in effect the same.
            Err(e) if cancellation_reasons(&e).is_some_and(|r| condition_failed(r, 0)) => Ok(Some(now)),
            Err(e) => Err(classify("revoke_sessions", e)),
        }
    }

    /// A session and the bulk revocation markers that could match it, in one consistent read.
    /// The markers' keys come from the token's claims (user, buddy, and the minting key
    /// encoded in the session id).
    pub async fn session_with_markers(
        &self,
        id: &SessionId,
        customer: &CustomerId,
        env: Environment,
        subjects: &[SessionSubject],
    ) -> Result<(Option<WidgetSession>, Vec<UnixTime>), StoreError> {
        let key = |pk: String, sk: &str| {
            std::collections::HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
        };
        let mut keys = vec![key(session_pk(id), "SESSION")];
        keys.extend(subjects.iter().map(|subject| key(marker_pk(customer, env, subject), "REV")));
        let (mut session, mut markers) = (None, Vec::new());
        for item in self.batch_get_consistent("session_with_markers", keys).await? {
            if item.get("sk").and_then(|v| v.as_s().ok()).map(String::as_str) == Some("SESSION") {
                session = Some(from_item::<SessionItem>(item)?.session);
            } else {
                markers.push(from_item::<MarkerItem>(item)?.revoked_before);
            }
        }
        Ok((session, markers))
    }
}
