//! Widget sessions (`WS#<session id>` / `SESSION`), kept until a day after they expire
//! (DynamoDB TTL is lazy, so every read checks `expires_at` itself).

use super::customers::buddy_pk;
use super::items::{MarkerItem, SessionItem};
use super::retry::{self, Attempt};
use super::{Store, StoreError, TxError, build_err, classify, from_item, is_condition_failure, n, s, to_item};
use crate::domain::audit::AuditEvent;
use crate::domain::token::{SessionSubject, WidgetSession};
use crate::domain::{CustomerId, Environment, SessionId, UnixTime};
use aws_sdk_dynamodb::types::{ConditionCheck, Put, ReturnValue};

/// How long a session item outlives its expiry, so a late revoke still finds it.
const KEEP_AFTER_EXPIRY_SECS: i64 = 86_400;

impl From<retry::Exhausted> for CreateSessionError {
    fn from(e: retry::Exhausted) -> CreateSessionError {
        CreateSessionError::Store(e.into())
    }
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
        let item = to_item(&SessionItem::new(
            session_pk(&session.session_id),
            "SESSION".into(),
            session.expires_at.secs() + KEEP_AFTER_EXPIRY_SECS,
            session,
        ))?;
        // Every mint for one buddy condition-checks the same buddy item: concurrent mints meet
        // as `TransactionConflict` on DynamoDB, and are sent again after a pause.
        retry::attempts("create_session", |_| async {
            let mut tx = self.transaction();
            let buddy = tx.check(
                ConditionCheck::builder()
                    .table_name(&self.table)
                    .key("pk", s(buddy_pk(&session.customer_id, session.environment, &session.buddy_id)))
                    .key("sk", s("BUDDY"))
                    .condition_expression("attribute_exists(pk)")
                    .build()
                    .map_err(build_err("create_session"))?,
            );
            let claim = self.put_new_in("create_session", &mut tx, item.clone())?;
            match self.commit("create_session", tx).await {
                Ok(()) => Ok(Attempt::Done(())),
                Err(TxError::Cancelled(failed)) if failed.at(buddy) => Err(CreateSessionError::BuddyNotFound),
                // The id is fresh (~107 random bits): an item already under it is this very
                // session, written by an attempt whose answer was lost and then retried by the
                // SDK. The write landed once; that is success, not a conflict.
                Err(TxError::Cancelled(failed)) if failed.at(claim) => Ok(Attempt::Done(())),
                Err(TxError::Cancelled(failed)) => {
                    Err(super::internal("create_session", format!("unexpected cancellation {failed:?}")).into())
                }
                Err(TxError::Store(e)) => e.retry().map_err(CreateSessionError::from),
            }
        })
        .await
    }

    pub async fn get_session(&self, id: &SessionId) -> Result<Option<WidgetSession>, StoreError> {
        let item: Option<SessionItem> = self.get_consistent("get_session", session_pk(id), "SESSION").await?;
        Ok(item.map(SessionItem::session))
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
            Ok(out) => from_item::<SessionItem>(out.attributes.unwrap_or_default()).map(SessionItem::session),
            Err(e) if is_condition_failure(&e) => Err(StoreError::NotFound),
            Err(e) => Err(classify("revoke_session", e)),
        }
    }
}

/// A bulk revocation marker (every matching session issued at or before `revoked_before` is
/// inactive) is kept two days past it (a session lives at most an hour).
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
    /// The standing bulk revocation of `subject`: sessions issued at or before it are inactive.
    pub async fn revocation_marker(
        &self,
        customer: &CustomerId,
        env: Environment,
        subject: &SessionSubject,
    ) -> Result<Option<UnixTime>, StoreError> {
        let pk = marker_pk(customer, env, subject);
        let marker: Option<MarkerItem> = self.get_consistent("revocation_marker", pk, "REV").await?;
        Ok(marker.map(|m| m.revoked_before))
    }

    /// Moves the marker of `subject` forward to `at`, with its audit event, in one transaction.
    /// `Conflict`: an equal or later marker landed meanwhile (read again and decide again).
    pub async fn put_revocation_marker(
        &self,
        customer: &CustomerId,
        env: Environment,
        subject: &SessionSubject,
        at: UnixTime,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        let op = "put_revocation_marker";
        let item = to_item(&MarkerItem {
            pk: marker_pk(customer, env, subject),
            sk: "REV".into(),
            ttl: at.secs().saturating_add(MARKER_KEEP_SECS),
            revoked_before: at,
        })?;
        let mut tx = self.transaction();
        let marker = tx.put(
            Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression("attribute_not_exists(pk) OR #before < :now")
                .expression_attribute_names("#before", "revoked_before")
                .expression_attribute_values(":now", n(at.secs()))
                .build()
                .map_err(build_err(op))?,
        );
        for put in super::audit::audit_puts(self, event)? {
            tx.push(put);
        }
        match self.commit(op, tx).await {
            Ok(()) => Ok(()),
            Err(TxError::Cancelled(failed)) if failed.at(marker) => Err(StoreError::Conflict),
            Err(TxError::Cancelled(failed)) => Err(super::internal(op, format!("unexpected cancellation {failed:?}"))),
            Err(TxError::Store(e)) => Err(e),
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
                session = Some(from_item::<SessionItem>(item)?.session());
            } else {
                markers.push(from_item::<MarkerItem>(item)?.revoked_before);
            }
        }
        Ok((session, markers))
    }
}
