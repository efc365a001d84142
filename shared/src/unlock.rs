//! The exactly-once gate unlock: read everything once, decide, spend in one transaction,
//! and turn a lost race into `already_unlocked: true` (never a 402, never a 5xx).

use std::time::Duration;

use crate::App;
use crate::domain::gate::{Gate, Unlock, UnlockPlan};
use crate::domain::{GateKey, TokenKey};
use crate::error::ApiError;
use crate::store::{BuddyRef, SpendOutcome};

/// Reads and transactions per request before giving up with 503 (conflicts are retried).
const MAX_ATTEMPTS: u32 = 5;

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
            let view = self.store.read_for_unlock(buddy, gate_key, primary).await?;
            let (gate, balance) = match view.plan() {
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
