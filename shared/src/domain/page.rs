//! Opaque page cursors. A cursor only says where in the caller's own list to resume (the
//! store scopes every listing to the caller's customer and environment), so a forged one can
//! at most skip within that list; anything not minted here is refused (400).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

const VERSION: &str = "c1.";

/// Page sizes: 1–100, default 50.
pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the cursor is not one this API returned")]
pub struct InvalidCursor;

/// The cursor for resuming after the item whose sort key is `after`.
pub fn encode_cursor(after: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{VERSION}{after}"))
}

/// The sort key a cursor resumes after, if it is well formed for `shape`.
pub fn decode_cursor(cursor: &str, shape: impl Fn(&str) -> bool) -> Result<String, InvalidCursor> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| InvalidCursor)?;
    let text = String::from_utf8(bytes).map_err(|_| InvalidCursor)?;
    let after = text.strip_prefix(VERSION).ok_or(InvalidCursor)?;
    if shape(after) { Ok(after.to_owned()) } else { Err(InvalidCursor) }
}

/// `limit` as a query parameter gives it: absent → default, else 1–100.
pub fn parse_limit(text: Option<&str>) -> Option<u32> {
    match text {
        None => Some(DEFAULT_LIMIT),
        Some(t) => t.parse().ok().filter(|n| (1..=MAX_LIMIT).contains(n)),
    }
}

/// `{time:012}#{rest}` with `rest` accepted by `rest_ok`: how our listings sort.
pub fn timed_sort_key(key: &str, rest_ok: impl Fn(&str) -> bool) -> bool {
    key.split_once('#')
        .is_some_and(|(time, rest)| time.len() == 12 && time.bytes().all(|b| b.is_ascii_digit()) && rest_ok(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_anything_else() {
        let shape = |k: &str| timed_sort_key(k, |rest| rest.len() == 3);
        let cursor = encode_cursor("000000000042#abc");
        assert_eq!(decode_cursor(&cursor, shape), Ok("000000000042#abc".to_owned()));
        for bad in [
            "",
            "!!",
            &encode_cursor("42#abc"),
            &URL_SAFE_NO_PAD.encode("000000000042#abc"),
            &encode_cursor("000000000042#abcd"),
        ] {
            assert_eq!(decode_cursor(bad, shape), Err(InvalidCursor), "{bad}");
        }
    }

    #[test]
    fn limits() {
        assert_eq!(parse_limit(None), Some(50));
        assert_eq!(parse_limit(Some("1")), Some(1));
        assert_eq!(parse_limit(Some("100")), Some(100));
        for bad in ["0", "101", "-1", "x", ""] {
            assert_eq!(parse_limit(Some(bad)), None, "{bad}");
        }
    }
}
