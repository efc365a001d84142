//! The exactly-once gate unlock, top to bottom. Each attempt:
//!
//! 1. **Read** gate, buddy, primary balance and any existing unlock in one consistent
//!    `BatchGetItem` ([`crate::store::Store::read_for_unlock`]).
//! 2. **Decide** from that read alone ([`crate::domain::gate::UnlockReading::plan`]): no gate or
//!    buddy → 404; an unlock exists → answer it (`already_unlocked`, nothing written); the
//!    balance cannot pay → 402; otherwise spend.
//! 3. **Spend** in one `TransactWriteItems` ([`crate::store::Store::spend`]): debit with
//!    `amount >= cost`, put the unlock if absent, put the ledger entry, check the gate is
//!    unchanged — all or nothing, idempotent on a `ClientRequestToken` per attempt.
//! 4. **Read the outcome** ([`SpendOutcome`], from the cancellation reason of each named
//!    write): the unlock put lost or the gate changed → read again (a lost race is
//!    `already_unlocked: true`, never a 402); the debit failed → 402; a conflicting transaction →
//!    back off and retry. Attempts are bounded by the one retry helper ([`retry::attempts`]),
//!    then 503.

use crate::domain::CustomerId;
use crate::domain::gate::{BuddyRef, Gate, Unlock, UnlockPlan};
use crate::domain::time::Clock;
use crate::domain::{GateKey, TokenKey};
use crate::store::SpendOutcome;
use crate::store::Store;
use crate::store::StoreError;
use crate::store::retry::{self, Attempt, Exhausted};

/// The gates service: the exactly-once unlock, and what a buddy has unlocked.
#[derive(Debug, Clone)]
pub struct Unlocks {
    store: Store,
    clock: Clock,
}

impl Unlocks {
    pub fn new(store: Store, clock: Clock) -> Unlocks {
        Unlocks { store, clock }
    }

    /// The customer's gates, sorted by gate key.
    pub async fn gates(&self, customer: &CustomerId) -> Result<Vec<Gate>, UnlockError> {
        Ok(self.store.list_gates(customer).await?)
    }

    /// Every unlock of the buddy, sorted by gate key (the buddy must exist).
    pub async fn unlocks_of(&self, buddy: &BuddyRef) -> Result<Vec<Unlock>, UnlockError> {
        let (exists, unlocks) = tokio::join!(
            self.store.buddy_exists(&buddy.customer, buddy.env, &buddy.buddy),
            self.store.list_unlocks(buddy)
        );
        match exists? {
            true => Ok(unlocks?),
            false => Err(UnlockError::BuddyNotFound),
        }
    }
}

/// The answer to an unlock request.
#[derive(Debug, Clone, PartialEq)]
pub struct UnlockResult {
    pub already_unlocked: bool,
    pub unlock: Unlock,
    pub gate: Gate,
    pub balance: i64,
}

/// Why an unlock was refused (the web edge maps each to its API.md code).
#[derive(Debug, thiserror::Error)]
pub enum UnlockError {
    #[error("no such gate")]
    GateNotFound,
    #[error("no such buddy")]
    BuddyNotFound,
    #[error("the balance of {token_key} ({available}) cannot pay {required}")]
    Insufficient { token_key: TokenKey, required: i64, available: i64 },
    /// A gate whose token is not the caller's primary token: a bug in the data, never a 402.
    #[error("gate {gate} spends {spends} but the primary token is {primary}")]
    NotThePrimaryToken { gate: GateKey, spends: TokenKey, primary: TokenKey },
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<Exhausted> for UnlockError {
    fn from(e: Exhausted) -> UnlockError {
        UnlockError::Store(e.into())
    }
}

impl Unlocks {
    /// Spends the gate's cost of `primary` from the buddy's balance and records the unlock,
    /// exactly once. `request_id` identifies this request's own spend across retries.
    pub async fn unlock_gate(
        &self,
        buddy: &BuddyRef,
        gate_key: &GateKey,
        primary: &TokenKey,
        request_id: &str,
    ) -> Result<UnlockResult, UnlockError> {
        retry::attempts("unlock", |attempt| async move {
            // 1. Read.
            let reading = self.store.read_for_unlock(buddy, gate_key, primary).await?;
            // 2. Decide.
            let (gate, balance) = match reading.plan() {
                UnlockPlan::GateNotFound => return Err(UnlockError::GateNotFound),
                UnlockPlan::BuddyNotFound => return Err(UnlockError::BuddyNotFound),
                UnlockPlan::AlreadyUnlocked { gate, unlock, balance } => {
                    // Our own earlier attempt (an SDK or client retry of this request) is still a first unlock.
                    let already_unlocked = unlock.request_id != request_id;
                    return Ok(Attempt::Done(UnlockResult { already_unlocked, unlock, gate, balance }));
                }
                UnlockPlan::Insufficient { gate, available } => return Err(insufficient(&gate, available)),
                UnlockPlan::Spend { gate, balance } => (gate, balance),
            };
            if gate.token_key != *primary {
                let (gate, spends, primary) = (gate.gate_key, gate.token_key, primary.clone());
                return Err(UnlockError::NotThePrimaryToken { gate, spends, primary });
            }
            let unlock = Unlock::of(&gate, self.clock.now(), request_id);
            let entry = unlock.ledger_entry(buddy);
            // 3. Spend, 4. and read the outcome.
            match self.store.spend(buddy, &gate, &unlock, &entry, attempt).await {
                Ok(SpendOutcome::Spent) => {
                    let balance = balance - gate.cost;
                    Ok(Attempt::Done(UnlockResult { already_unlocked: false, unlock, gate, balance }))
                }
                Ok(SpendOutcome::Insufficient { available }) => Err(insufficient(&gate, available)),
                // Someone else's unlock landed first, or the gate changed: read again and answer from that.
                Ok(SpendOutcome::AlreadyUnlocked | SpendOutcome::GateChanged) => Ok(Attempt::Reread),
                Err(e) => e.retry().map_err(UnlockError::from),
            }
        })
        .await
    }
}

fn insufficient(gate: &Gate, available: i64) -> UnlockError {
    UnlockError::Insufficient { token_key: gate.token_key.clone(), required: gate.cost, available }
}
