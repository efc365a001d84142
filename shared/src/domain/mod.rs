//! Pure domain logic: knows nothing of HTTP or DynamoDB.

/// A closed set of words with `parse`/`as_str`/serde (defined before the submodules use it).
macro_rules! word_enum {
    ($(#[$doc:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        pub enum $name { $(#[serde(rename = $text)] $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
            pub fn parse(text: &str) -> Option<$name> {
                match text { $($text => Some($name::$variant),)+ _ => None }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(self.as_str()) }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                $name::parse(s).ok_or_else(|| {
                    let all: Vec<&str> = $name::ALL.iter().map(|v| v.as_str()).collect();
                    format!("expected one of {}", all.join(", "))
                })
            }
        }
    };
}

pub mod audit;
pub mod gate;
pub mod ids;
pub mod key;
mod key_record;
pub mod origin;
pub mod page;
pub mod portal;
pub mod quota;
pub mod ratelimit;
pub mod role;
pub mod signing_keys;
pub mod time;
pub mod token;
pub mod usage;

pub use ids::{BuddyId, CustomerId, GateKey, InvalidId, Label, SessionId, TokenKey, UserId};
pub use key::{ApiKey, HmacSecret, KeyFormatError, KeyHash, KeyKind, KeyPrefix, SealedSecret};
pub use key_record::*;
pub use time::UnixTime;
