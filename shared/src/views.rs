//! Response shapes shared by several endpoints (gates and unlocks appear in three).

use serde::Serialize;
use serde_json::Value;

use crate::domain::gate::{Gate, Unlock};
use crate::domain::time::rfc3339;
use crate::domain::{GateKey, TokenKey, UnixTime};

#[derive(Debug, Serialize)]
pub struct GateView {
    pub gate_key: GateKey,
    pub token_key: TokenKey,
    pub cost: i64,
    pub metadata: Option<Value>,
}

impl From<Gate> for GateView {
    fn from(g: Gate) -> GateView {
        GateView { gate_key: g.gate_key, token_key: g.token_key, cost: g.cost, metadata: g.metadata }
    }
}

#[derive(Debug, Serialize)]
pub struct UnlockView {
    pub gate_key: GateKey,
    #[serde(with = "rfc3339")]
    pub unlocked_at: UnixTime,
    pub metadata: Option<Value>,
}

impl From<Unlock> for UnlockView {
    fn from(u: Unlock) -> UnlockView {
        UnlockView { gate_key: u.gate_key, unlocked_at: u.unlocked_at, metadata: u.metadata }
    }
}
