#![no_main]
//! Key parsing: never panics; anything accepted has the exact key shape.
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(key) = hatched::domain::ApiKey::parse(text) {
        assert_eq!(key.expose(), text);
        assert!(key.prefix().as_str().len() < text.len());
    }
    let _ = hatched::domain::key::display_prefix_of(text);
    let _ = hatched::domain::KeyPrefix::parse(text);
});
