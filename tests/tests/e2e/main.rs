//! End-to-end tests against the DynamoDB-compatible server `scripts/test` starts.
//! One binary, so the SDK and the emulator connection are shared; each test has its own table.

mod authorizer;
mod browser;
mod cold_paths;
mod error_mapping;
mod events;
mod faults;
mod gates;
mod hardening;
mod hostile;
mod keymgmt;
mod keys;
mod load;
mod local_api;
mod model;
mod portal;
mod portal_browser;
mod quotas;
mod roles;
mod rotation;
mod routes;
mod strict_input;
mod token_attacks;
mod tokens;
mod usage;
mod validate;
