//! Tokens: minting widget sessions (scoped, revocable, tracked) and embed tokens (stateless),
//! revoking a session, introspecting a token, publishing the public keys. Signing keys come
//! from [`Signer`] (the minting functions), verification keys from [`Verifier`] (the table).

use std::sync::Arc;

use serde_json::Value;

use crate::domain::audit::{Actor, AuditAction, AuditEvent, Changes};
use crate::domain::key::random_base62;
use crate::domain::portal::{PortalClaims, PortalLabel};
use crate::domain::time::Clock;
use crate::domain::token::{
    EmbedClaims, SessionClaims, SessionSubject, Subject, TokenClaims, WidgetScope, WidgetSession,
};
use crate::domain::{CustomerId, Environment, KeyPrefix, KeyRecord, SessionId};
use crate::signing::{Signer, SigningError, Verifier};
use crate::store::{CreateSessionError, Store, StoreError};

/// Why a token could not be minted, revoked or checked.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("no such buddy")]
    BuddyNotFound,
    #[error("no such widget session")]
    SessionNotFound,
    #[error(transparent)]
    Signing(#[from] SigningError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A token just minted, with what it was minted for.
#[derive(Debug)]
pub struct Minted<T> {
    pub token: String,
    pub minted: T,
}

/// The tokens service.
#[derive(Debug, Clone)]
pub struct Tokens {
    store: Store,
    clock: Clock,
    signer: Arc<Signer>,
    verifier: Arc<Verifier>,
    issuer: String,
}

impl Tokens {
    pub fn new(store: Store, clock: Clock, signer: Arc<Signer>, verifier: Arc<Verifier>, issuer: String) -> Tokens {
        Tokens { store, clock, signer, verifier, issuer }
    }

    /// A widget session for `who`, recorded (with a TTL) so it can be revoked. The id names
    /// the minting key, so a bulk revocation by key finds its sessions. Signed before it is
    /// written: a signing failure leaves no session behind.
    pub async fn mint_session(
        &self,
        who: Subject,
        scopes: Vec<WidgetScope>,
        ttl: i64,
        minted_by: &KeyPrefix,
    ) -> Result<Minted<WidgetSession>, TokenError> {
        let (now, session_id) = (self.clock.now(), SessionId::minted_by(minted_by));
        let claims = SessionClaims::new(&self.issuer, &who, &session_id, &scopes, now, ttl);
        let token = self.signer.ring().await?.current.sign(&claims)?;
        let session = WidgetSession {
            session_id,
            customer_id: who.customer,
            environment: who.env,
            buddy_id: who.buddy,
            user_id: who.user,
            scopes,
            created_at: now,
            expires_at: now.plus_secs(ttl),
            revoked_at: None,
            minted_by: Some(minted_by.clone()),
        };
        self.store.create_session(&session).await.map_err(|e| match e {
            CreateSessionError::BuddyNotFound => TokenError::BuddyNotFound,
            CreateSessionError::Store(e) => e.into(),
        })?;
        Ok(Minted { token, minted: session })
    }

    /// A read-only embed token for `who` (nothing is written); the buddy must exist.
    pub async fn mint_embed(&self, who: Subject, ttl: i64) -> Result<Minted<EmbedClaims>, TokenError> {
        if !self.store.buddy_exists(&who.customer, who.env, &who.buddy).await? {
            return Err(TokenError::BuddyNotFound);
        }
        let claims = EmbedClaims::new(&self.issuer, &who, random_base62(24), self.clock.now(), ttl);
        let token = self.signer.ring().await?.current.sign(&claims)?;
        Ok(Minted { token, minted: claims })
    }

    /// Revokes a session of this customer and environment; anyone else's is not found.
    /// Revoking again keeps the first `revoked_at`.
    pub async fn revoke_session(
        &self,
        id: &SessionId,
        customer: &CustomerId,
        env: Environment,
    ) -> Result<WidgetSession, TokenError> {
        match self.store.revoke_session(id, customer, env, self.clock.now()).await {
            Ok(session) if session.revoked_at.is_some() => Ok(session),
            Ok(_) => Err(StoreError::Aws(crate::aws::AwsFailure::Internal {
                op: "revoke_session",
                cause: "revoked_at missing after revoke".into(),
            })
            .into()),
            Err(StoreError::NotFound) => Err(TokenError::SessionNotFound),
            Err(e) => Err(e.into()),
        }
    }

    /// The claims of a token that is valid now, or `None` whatever failed: signature, kid,
    /// audience, issuer, time — and for a session token, its session (revoked one by one or
    /// in bulk, missing, expired or not matching its claims). One read for all of the latter.
    pub async fn introspect(&self, token: &str) -> Result<Option<TokenClaims>, TokenError> {
        let now = self.clock.now();
        let claims = match self.verifier.verify(token, &self.issuer).await? {
            Some(claims) if claims.current_at(now) => claims,
            _ => return Ok(None),
        };
        if let TokenClaims::Session(c) = &claims {
            let subjects = [SessionSubject::User(c.sub.clone()), SessionSubject::Buddy(c.bid.clone())]
                .into_iter()
                .chain(c.sid.minting_key(c.env).map(SessionSubject::Key))
                .collect::<Vec<_>>();
            let (session, markers) = self.store.session_with_markers(&c.sid, &c.cid, c.env, &subjects).await?;
            let live = |s: &WidgetSession| s.active_at(now) && s.matches(c) && s.survives(&markers);
            if !session.as_ref().is_some_and(live) {
                return Ok(None);
            }
        }
        Ok(Some(claims))
    }

    /// A key portal session acting as `key` (API.md "The key portal"), with its audit event
    /// `portal.session_created` by `by`. Signed before the event is written: a signing failure
    /// leaves no event; a failed write leaves a token nobody was given.
    pub async fn mint_portal(
        &self,
        key: &KeyRecord,
        label: &PortalLabel,
        ttl: i64,
        by: &Actor,
    ) -> Result<Minted<PortalClaims>, TokenError> {
        let now = self.clock.now();
        let claims = PortalClaims::new(&self.issuer, key, label, random_base62(24), now, ttl);
        let token = self.signer.ring().await?.current.sign(&claims)?;
        let expires_at = crate::domain::UnixTime::from_secs(claims.exp).rfc3339();
        let changes = Changes::default().field("user_label", None, Some(label.as_str())).field(
            "expires_at",
            None,
            Some(expires_at.as_str()),
        );
        let event = AuditEvent::new(
            by,
            &key.customer_id,
            key.environment,
            AuditAction::PortalSessionCreated,
            key.prefix.as_str(),
            changes,
            self.clock.now_millis(),
        );
        self.store.record_event(&event).await?;
        Ok(Minted { token, minted: claims })
    }

    /// The claims of a portal token whose signature, audience and issuer hold, or `None`;
    /// whether it is still current is the caller's to decide (an ended session is told apart).
    pub async fn portal_claims(&self, token: &str) -> Result<Option<PortalClaims>, TokenError> {
        Ok(self.verifier.verify_portal(token, &self.issuer).await?)
    }

    /// The published public keys as a JWKS document.
    pub async fn jwks(&self) -> Result<Value, TokenError> {
        Ok(self.verifier.keys().await?.jwks())
    }
}
