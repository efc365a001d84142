//! Hatched auth edge: the crate every function shares.
//!
//! Layers: [`domain`] (pure rules: keys, ids, scopes, origins, time) knows nothing of
//! HTTP or DynamoDB; [`store`] is the only code that speaks DynamoDB; [`http`] and
//! [`error`] turn requests and domain outcomes into the API.md wire format; [`app`] holds
//! the per-cold-start state; [`lambda`] adapts API Gateway events.

pub mod app;
pub mod auth;
pub mod aws;
pub mod domain;

pub mod endpoint;
pub mod error;
pub mod handler;
pub mod http;
pub mod keys;
pub mod lambda;
pub mod roles;
pub mod rotation;
pub mod sealing;
pub mod secrets;
pub mod signing;
pub mod store;
pub mod telemetry;
pub mod tokens;
pub mod unlock;
pub mod usage;
pub mod views;

pub use app::App;
pub use auth::{Access, Caller, Rejected};
pub use domain::time::Clock;
pub use error::ApiError;
pub use http::{Reply, RequestCtx};
pub use lambda_http;
