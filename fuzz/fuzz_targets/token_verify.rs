#![no_main]
//! Token verification: arbitrary text never panics and never verifies.
use hatched::signing::{KeyRing, SigningKey};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let ring = KeyRing { current: SigningKey::from_secret("fuzz").unwrap(), previous: None };
    assert!(ring.verify(text, "hatched-auth-edge").is_none());
});
