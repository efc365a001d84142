//! Gates, balances, unlocks and the ledger: the rules of spending a buddy's primary token.

use serde_json::Value;

use super::{BuddyId, CustomerId, Environment, GateKey, TokenKey, UnixTime};

/// Largest accepted gate metadata, serialized (DynamoDB items are capped at 400 KB; gates
/// are read on every unlock, so keep them small).
pub const MAX_METADATA_BYTES: usize = 4096;

/// A buddy in one environment of a customer: everything it owns (balances, unlocks, ledger)
/// is addressed through it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuddyRef {
    pub customer: CustomerId,
    pub env: Environment,
    pub buddy: BuddyId,
}

/// A customer and its two token keys: primary (spendable) and progression (never spendable).
#[derive(Debug, Clone, PartialEq)]
pub struct Customer {
    pub customer_id: CustomerId,
    pub primary_token: TokenKey,
    pub progression_token: TokenKey,
    pub created_at: UnixTime,
}

/// A gate: pay `cost` of `token_key` (the customer's primary token) to unlock it.
#[derive(Debug, Clone, PartialEq)]
pub struct Gate {
    pub customer_id: CustomerId,
    pub gate_key: GateKey,
    pub token_key: TokenKey,
    pub cost: i64,
    pub metadata: Option<Value>,
}

/// Why a gate definition is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GateError {
    #[error("cost must be a positive integer")]
    NonPositiveCost,
    #[error("{0} is the progression token: progression is monotonic and never spendable; use the primary token {1}")]
    ProgressionToken(TokenKey, TokenKey),
    #[error("{0} is not this customer's primary token ({1})")]
    NotPrimary(TokenKey, TokenKey),
    #[error("metadata must be a JSON object of at most {MAX_METADATA_BYTES} bytes")]
    Metadata,
}

/// The two token slots of a customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSlots {
    pub primary: TokenKey,
    pub progression: TokenKey,
}

impl Gate {
    pub fn new(
        customer_id: CustomerId,
        gate_key: GateKey,
        token_key: TokenKey,
        cost: i64,
        metadata: Option<Value>,
        slots: &TokenSlots,
    ) -> Result<Gate, GateError> {
        if token_key == slots.progression {
            return Err(GateError::ProgressionToken(token_key, slots.primary.clone()));
        }
        if token_key != slots.primary {
            return Err(GateError::NotPrimary(token_key, slots.primary.clone()));
        }
        if cost <= 0 {
            return Err(GateError::NonPositiveCost);
        }
        let metadata = metadata.filter(|m| !m.is_null());
        if metadata.as_ref().is_some_and(|m| !m.is_object() || m.to_string().len() > MAX_METADATA_BYTES) {
            return Err(GateError::Metadata);
        }
        Ok(Gate { customer_id, gate_key, token_key, cost, metadata })
    }
}

/// A recorded unlock: when, what it cost, the gate's metadata at that moment, and which
/// request spent for it (so a retried request can recognise its own unlock).
#[derive(Debug, Clone, PartialEq)]
pub struct Unlock {
    pub gate_key: GateKey,
    pub token_key: TokenKey,
    pub cost: i64,
    pub unlocked_at: UnixTime,
    pub metadata: Option<Value>,
    pub request_id: String,
}

impl Unlock {
    /// The unlock of `gate` a request makes at `now`, snapshotting the gate's metadata.
    pub fn of(gate: &Gate, now: UnixTime, request_id: &str) -> Unlock {
        Unlock {
            gate_key: gate.gate_key.clone(),
            token_key: gate.token_key.clone(),
            cost: gate.cost,
            unlocked_at: now,
            metadata: gate.metadata.clone(),
            request_id: request_id.to_owned(),
        }
    }

    /// The ledger entry recording this unlock's spend by `buddy` (the ledger sums to the total
    /// spent: one entry per unlock, written in its transaction).
    pub fn ledger_entry(&self, buddy: &BuddyRef) -> LedgerEntry {
        LedgerEntry {
            customer_id: buddy.customer.clone(),
            environment: buddy.env,
            buddy_id: buddy.buddy.clone(),
            gate_key: self.gate_key.clone(),
            token_key: self.token_key.clone(),
            amount: self.cost,
            at: self.unlocked_at,
            request_id: self.request_id.clone(),
        }
    }
}

/// One spend, written in the same transaction as the debit and the unlock.
#[derive(Debug, Clone, PartialEq)]
pub struct LedgerEntry {
    pub customer_id: CustomerId,
    pub environment: Environment,
    pub buddy_id: BuddyId,
    pub gate_key: GateKey,
    pub token_key: TokenKey,
    pub amount: i64,
    pub at: UnixTime,
    pub request_id: String,
}

/// What the unlock read finds, all at once.
#[derive(Debug, Clone, PartialEq)]
pub struct UnlockReading {
    pub gate: Option<Gate>,
    pub buddy_exists: bool,
    pub balance: i64,
    pub unlock: Option<Unlock>,
}

/// What to do about an unlock request, decided from the read alone.
#[derive(Debug, Clone, PartialEq)]
pub enum UnlockPlan {
    GateNotFound,
    BuddyNotFound,
    AlreadyUnlocked { gate: Gate, unlock: Unlock, balance: i64 },
    Insufficient { gate: Gate, available: i64 },
    Spend { gate: Gate, balance: i64 },
}

impl UnlockReading {
    pub fn plan(self) -> UnlockPlan {
        let Some(gate) = self.gate else { return UnlockPlan::GateNotFound };
        if !self.buddy_exists {
            return UnlockPlan::BuddyNotFound;
        }
        if let Some(unlock) = self.unlock {
            return UnlockPlan::AlreadyUnlocked { gate, unlock, balance: self.balance };
        }
        if self.balance < gate.cost {
            return UnlockPlan::Insufficient { gate, available: self.balance };
        }
        UnlockPlan::Spend { gate, balance: self.balance }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slots() -> TokenSlots {
        TokenSlots { primary: TokenKey::parse("coins").unwrap(), progression: TokenKey::parse("xp").unwrap() }
    }

    fn gate(token: &str, cost: i64, metadata: Option<Value>) -> Result<Gate, GateError> {
        Gate::new(
            CustomerId::parse("acme").unwrap(),
            GateKey::parse("hat").unwrap(),
            TokenKey::parse(token).unwrap(),
            cost,
            metadata,
            &slots(),
        )
    }

    #[test]
    fn gates_spend_only_the_primary_token_at_a_positive_cost() {
        assert!(gate("coins", 5, None).is_ok());
        assert!(matches!(gate("xp", 5, None), Err(GateError::ProgressionToken(..))));
        assert!(matches!(gate("gems", 5, None), Err(GateError::NotPrimary(..))));
        assert_eq!(gate("coins", 0, None), Err(GateError::NonPositiveCost));
        assert_eq!(gate("coins", -3, None), Err(GateError::NonPositiveCost));
        assert_eq!(gate("coins", 1, Some(serde_json::json!([1]))), Err(GateError::Metadata));
        let big = serde_json::json!({ "x": "a".repeat(MAX_METADATA_BYTES) });
        assert_eq!(gate("coins", 1, Some(big)), Err(GateError::Metadata));
        assert_eq!(gate("coins", 1, Some(Value::Null)).unwrap().metadata, None);
    }

    #[test]
    fn plan_order() {
        let g = gate("coins", 10, None).unwrap();
        let unlock = Unlock {
            gate_key: g.gate_key.clone(),
            token_key: g.token_key.clone(),
            cost: 10,
            unlocked_at: UnixTime::from_secs(5),
            metadata: None,
            request_id: "r".into(),
        };
        let view = |gate: Option<Gate>, buddy: bool, balance: i64, unlock: Option<Unlock>| UnlockReading {
            gate,
            buddy_exists: buddy,
            balance,
            unlock,
        };
        assert_eq!(view(None, false, 0, None).plan(), UnlockPlan::GateNotFound);
        assert_eq!(view(Some(g.clone()), false, 100, None).plan(), UnlockPlan::BuddyNotFound);
        assert!(
            matches!(view(Some(g.clone()), true, 0, Some(unlock)).plan(), UnlockPlan::AlreadyUnlocked { .. }),
            "a repeat never 402s"
        );
        assert!(matches!(view(Some(g.clone()), true, 9, None).plan(), UnlockPlan::Insufficient { available: 9, .. }));
        assert!(matches!(view(Some(g), true, 10, None).plan(), UnlockPlan::Spend { balance: 10, .. }));
    }
}
