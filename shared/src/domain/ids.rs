//! Identifier newtypes. Each constructor checks the API.md pattern, so an id that
//! reaches a database key has been validated by construction.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

/// The identifier was outside its pattern.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field} does not match {pattern}")]
pub struct InvalidId {
    pub field: &'static str,
    pub pattern: &'static str,
}

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident, $field:literal, $pattern:literal, $check:expr) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const FIELD: &'static str = $field;
            pub const PATTERN: &'static str = $pattern;

            pub fn parse(text: &str) -> Result<Self, InvalidId> {
                let check: fn(&str) -> bool = $check;
                if check(text) {
                    Ok(Self(text.to_owned()))
                } else {
                    Err(InvalidId { field: $field, pattern: $pattern })
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $name {
            type Err = InvalidId;
            fn from_str(s: &str) -> Result<Self, InvalidId> {
                Self::parse(s)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                Self::parse(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

fn lower_alnum(b: u8) -> bool {
    b.is_ascii_lowercase() || b.is_ascii_digit()
}

id_type!(
    /// `^[a-z0-9][a-z0-9_-]{0,63}$`
    CustomerId, "customer_id", "^[a-z0-9][a-z0-9_-]{0,63}$",
    |s| {
        let b = s.as_bytes();
        (1..=64).contains(&b.len())
            && lower_alnum(b[0])
            && b[1..].iter().all(|&c| lower_alnum(c) || c == b'_' || c == b'-')
    }
);

fn user_chars(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b':' | b'@' | b'-'))
}

id_type!(
    /// 1–128 chars of `[A-Za-z0-9_.:@-]`
    BuddyId, "buddy_id", "1-128 chars of [A-Za-z0-9_.:@-]", user_chars
);
id_type!(
    /// 1–128 chars of `[A-Za-z0-9_.:@-]`
    UserId, "user_id", "1-128 chars of [A-Za-z0-9_.:@-]", user_chars
);

fn snake_key(s: &str) -> bool {
    let b = s.as_bytes();
    (1..=64).contains(&b.len()) && b[0].is_ascii_lowercase() && b[1..].iter().all(|&c| lower_alnum(c) || c == b'_')
}

id_type!(
    /// `^[a-z][a-z0-9_]{0,63}$`
    GateKey, "gate_key", "^[a-z][a-z0-9_]{0,63}$", snake_key
);
id_type!(
    /// `^[a-z][a-z0-9_]{0,63}$`
    TokenKey, "token_key", "^[a-z][a-z0-9_]{0,63}$", snake_key
);
id_type!(
    /// `ws_` + 24 base62 chars
    SessionId, "session_id", "ws_ + 24 base62 chars",
    |s| s.len() == 27 && s.starts_with("ws_") && s[3..].bytes().all(|c| c.is_ascii_alphanumeric())
);

id_type!(
    /// A key's label: 1–100 characters, none of them a control character.
    Label, "label", "1-100 characters without control characters",
    |s| !s.is_empty() && s.chars().count() <= 100 && !s.chars().any(char::is_control)
);

impl Label {
    pub fn into_inner(self) -> String {
        self.0
    }
}

impl SessionId {
    pub fn generate() -> SessionId {
        SessionId(format!("ws_{}", super::key::random_base62(24)))
    }

    /// An id for a session minted by `key`: its first six characters are the key prefix's
    /// body (the rest, 18 base62 characters, ~107 bits, is random), so introspection can find
    /// the key's revocation marker from the token alone, in the same read as the session.
    /// A display prefix is no secret (it identifies keys in dashboards and logs).
    pub fn minted_by(key: &super::KeyPrefix) -> SessionId {
        let body = key.as_str().rsplit('_').next().unwrap_or_default();
        SessionId(format!("ws_{body}{}", super::key::random_base62(24 - body.len())))
    }

    /// The prefix of the secret key that minted this session (sessions are minted by secret
    /// keys only), as [`SessionId::minted_by`] encoded it.
    pub fn minting_key(&self, env: super::Environment) -> Option<super::KeyPrefix> {
        super::KeyPrefix::parse(&format!("hatch_{}_{}", env.as_str(), self.0.get(3..9)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn customer_ids() {
        for ok in ["a", "acme", "0x", "a_b-c", &"a".repeat(64)] {
            assert!(CustomerId::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "_a", "-a", "Acme", "a b", "a#b", &"a".repeat(65), "é"] {
            assert!(CustomerId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn buddy_and_user_ids() {
        for ok in ["b", "user@example.com", "a:b.c-d_e", &"Z".repeat(128)] {
            assert!(BuddyId::parse(ok).is_ok(), "{ok}");
            assert!(UserId::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["", "a#b", "a/b", "a b", &"Z".repeat(129), "ü"] {
            assert!(BuddyId::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn gate_and_token_keys() {
        assert!(GateKey::parse("hat_1").is_ok());
        assert!(GateKey::parse("1hat").is_err());
        assert!(TokenKey::parse("Coins").is_err());
        assert!(TokenKey::parse(&format!("c{}", "0".repeat(63))).is_ok());
        assert!(TokenKey::parse(&format!("c{}", "0".repeat(64))).is_err());
    }

    #[test]
    fn session_ids() {
        let id = SessionId::generate();
        assert_eq!(SessionId::parse(id.as_str()), Ok(id));
        let key = super::super::KeyPrefix::parse("hatch_live_Ab12Cd").unwrap();
        let minted = SessionId::minted_by(&key);
        assert_eq!(SessionId::parse(minted.as_str()), Ok(minted.clone()));
        assert!(minted.as_str().starts_with("ws_Ab12Cd"));
        assert_eq!(minted.minting_key(super::super::Environment::Live), Some(key));
        assert!(SessionId::parse("ws_short").is_err());
        assert!(SessionId::parse("xx_abcdefghijklmnopqrstuvwx").is_err());
    }

    #[test]
    fn ids_deserialize_through_their_parser() {
        let ok: Result<BuddyId, _> = serde_json::from_str("\"b1\"");
        assert!(ok.is_ok());
        let bad: Result<BuddyId, _> = serde_json::from_str("\"b#1\"");
        assert!(bad.is_err());
    }
}
