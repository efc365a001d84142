#![no_main]
//! Identifier parsers: never panic; nothing accepted can split a DynamoDB key.
use hatched::domain::{BuddyId, CustomerId, GateKey, SessionId, TokenKey, UserId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let accepted = [
        CustomerId::parse(text).is_ok(),
        BuddyId::parse(text).is_ok(),
        UserId::parse(text).is_ok(),
        GateKey::parse(text).is_ok(),
        TokenKey::parse(text).is_ok(),
        SessionId::parse(text).is_ok(),
    ];
    if accepted.iter().any(|a| *a) {
        assert!(!text.contains('#') && !text.is_empty() && text.len() <= 128);
    }
});
