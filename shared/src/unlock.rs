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
//! 4. **Read the outcome** ([`SpendOutcome`], from the per-item cancellation reasons): the
//!    unlock put lost or the gate changed → read again (a lost race is `already_unlocked: true`,
//!    never a 402); the debit failed → 402; a conflicting transaction → back off and retry, at
//!    most [`MAX_ATTEMPTS`] times, then 503.

use std::time::Duration;

use crate::App;
use crate::domain::gate::BuddyRef;
use crate::domain::gate::{Gate, Unlock, UnlockPlan};
use crate::domain::{GateKey, TokenKey};
use crate::error::ApiError;
use crate::store::SpendOutcome;

/// Reads and transactions per request before giving up with 503 (conflicts are retried).
pub const MAX_ATTEMPTS: u32 = 5;

/// The answer to an unlock request.
#[derive(Debug, Clone, PartialEq)]
pub struct UnlockResult {
    pub already_unlocked: bool,
    pub unlock: Unlock,
    pub gate: Gate,
    pub balance: i64,
}

impl App {
    /// Spends the gate's cost of `primary` from the buddy's balance and records the unlock,
    /// exactly once. `request_id` identifies this request's own spend across retries.
    pub async fn unlock_gate(
        &self,
        buddy: &BuddyRef,
        gate_key: &GateKey,
        primary: &TokenKey,
        request_id: &str,
    ) -> Result<UnlockResult, ApiError> {
        for attempt in 0..MAX_ATTEMPTS {
            // 1. Read.
            let reading = self.store.read_for_unlock(buddy, gate_key, primary).await?;
            // 2. Decide.
            let (gate, balance) = match reading.plan() {
                UnlockPlan::GateNotFound => return Err(ApiError::GateNotFound),
                UnlockPlan::BuddyNotFound => return Err(ApiError::BuddyNotFound),
                UnlockPlan::AlreadyUnlocked { gate, unlock, balance } => {
                    // Our own earlier attempt (an SDK or client retry of this request) is still a first unlock.
                    let already_unlocked = unlock.request_id != request_id;
                    return Ok(UnlockResult { already_unlocked, unlock, gate, balance });
                }
                UnlockPlan::Insufficient { gate, available } => return Err(insufficient(&gate, available)),
                UnlockPlan::Spend { gate, balance } => (gate, balance),
            };
            if gate.token_key != *primary {
                return Err(ApiError::Internal(format!(
                    "gate {} spends {} but the primary token is {primary}",
                    gate.gate_key, gate.token_key
                )));
            }
            let unlock = Unlock {
                gate_key: gate.gate_key.clone(),
                token_key: gate.token_key.clone(),
                cost: gate.cost,
                unlocked_at: self.clock.now(),
                metadata: gate.metadata.clone(),
                request_id: request_id.to_owned(),
            };
            // 3. Spend, 4. and read the outcome.
            match self.store.spend(buddy, &gate, &unlock, attempt).await? {
                SpendOutcome::Spent => {
                    let balance = balance - gate.cost;
                    return Ok(UnlockResult { already_unlocked: false, unlock, gate, balance });
                }
                SpendOutcome::Insufficient { available } => return Err(insufficient(&gate, available.unwrap_or(0))),
                // Someone else's unlock landed first, or the gate changed: read again and answer from that.
                SpendOutcome::AlreadyUnlocked(_) | SpendOutcome::GateChanged => continue,
                SpendOutcome::Conflict => tokio::time::sleep(backoff(attempt)).await,
            }
        }
        Err(ApiError::Unavailable(format!("unlock of {gate_key} still contended after {MAX_ATTEMPTS} attempts")))
    }
}

fn insufficient(gate: &Gate, available: i64) -> ApiError {
    ApiError::InsufficientBalance { token_key: gate.token_key.to_string(), required: gate.cost, available }
}

/// Jittered exponential backoff for transaction conflicts (10–20 ms, doubling).
fn backoff(attempt: u32) -> Duration {
    let mut byte = [0u8; 1];
    let jitter = aws_lc_rs::rand::fill(&mut byte).map_or(0, |_| u64::from(byte[0]) % 10);
    Duration::from_millis((10 + jitter) << attempt.min(4))
}
