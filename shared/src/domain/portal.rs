//! Key portal sessions (API.md "The key portal"): a short-lived token that lets a customer's
//! admin manage keys from a page, acting with the powers its minting key has at each request.
//! The token carries only who minted it; it grants nothing by itself.

use serde::{Deserialize, Serialize};

use super::token::TtlRange;
use super::{CustomerId, Environment, KeyPrefix, KeyRecord, UnixTime};

pub const PORTAL_AUDIENCE: &str = "hatched:portal";

/// 1 minute to 1 hour, 15 minutes unless asked.
pub const PORTAL_TTL: TtlRange = TtlRange { min: 60, max: 3600, default: 900 };

/// Who uses the portal, as the minting backend names them: 1–64 printable characters (no
/// control characters; it lands in the audit trail's `actor`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct PortalLabel(String);

impl PortalLabel {
    pub fn parse(text: &str) -> Option<PortalLabel> {
        let chars = text.chars().count();
        let printable = text.chars().all(printable);
        ((1..=64).contains(&chars) && printable && text.trim() == text).then(|| PortalLabel(text.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for PortalLabel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        PortalLabel::parse(&text).ok_or_else(|| {
            serde::de::Error::custom(
                "user_label must be 1 to 64 printable characters without leading or trailing spaces",
            )
        })
    }
}

/// Shown as itself in the audit trail: no control character, no whitespace but the space, and
/// none of the characters that draw nothing or reorder text: the format characters
/// (bidirectional overrides and isolates, zero-width characters, the soft hyphen, the
/// byte-order mark, the Egyptian and musical format controls, the tag characters), variation
/// selectors, the combining grapheme joiner, and the Hangul fillers that render blank.
fn printable(c: char) -> bool {
    let invisible = matches!(c,
        '\u{00AD}' | '\u{034F}' | '\u{061C}' | '\u{115F}' | '\u{1160}' | '\u{17B4}' | '\u{17B5}'
        | '\u{180B}'..='\u{180F}' | '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}'
        | '\u{2060}'..='\u{206F}' | '\u{3164}' | '\u{FE00}'..='\u{FE0F}' | '\u{FEFF}' | '\u{FFA0}'
        | '\u{FFF9}'..='\u{FFFB}' | '\u{13430}'..='\u{1343F}' | '\u{1BCA0}'..='\u{1BCA3}'
        | '\u{1D173}'..='\u{1D17A}' | '\u{E0000}'..='\u{E007F}' | '\u{E0100}'..='\u{E01EF}');
    !c.is_control() && (c == ' ' || !c.is_whitespace()) && !invisible
}

/// Claims of a portal JWT, exactly as API.md lists them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PortalClaims {
    pub iss: String,
    pub aud: String,
    pub cid: CustomerId,
    pub env: Environment,
    /// The minting key's prefix: each request acts as that key does now.
    pub kpx: String,
    /// The audit trail's actor for changes made through the portal.
    pub act: String,
    pub jti: String,
    pub iat: i64,
    pub exp: i64,
}

impl PortalClaims {
    pub fn new(issuer: &str, key: &KeyRecord, label: &PortalLabel, jti: String, now: UnixTime, ttl: i64) -> Self {
        PortalClaims {
            iss: issuer.to_owned(),
            aud: PORTAL_AUDIENCE.to_owned(),
            cid: key.customer_id.clone(),
            env: key.environment,
            kpx: key.prefix.as_str().to_owned(),
            act: actor(&key.prefix, label),
            jti,
            iat: now.secs(),
            exp: now.secs().saturating_add(ttl),
        }
    }

    /// Claims a verified token must also satisfy: its own audience, a well-formed key prefix
    /// and an actor that names that prefix.
    pub fn from_json(value: serde_json::Value) -> Option<PortalClaims> {
        let claims: PortalClaims = serde_json::from_value(value).ok()?;
        let prefix = KeyPrefix::parse(&claims.kpx)?;
        let named = claims.act.strip_prefix(&format!("portal:{}:", prefix.as_str())).and_then(PortalLabel::parse);
        (claims.aud == PORTAL_AUDIENCE && named.is_some() && claims.iat <= claims.exp).then_some(claims)
    }

    pub fn prefix(&self) -> Option<KeyPrefix> {
        KeyPrefix::parse(&self.kpx)
    }

    /// Usable at `now`: no leeway past `exp` (the page asks for a new session).
    pub fn current_at(&self, now: UnixTime) -> bool {
        now.secs() < self.exp
    }

    /// The token stands for this key: the same prefix, customer and environment.
    pub fn names(&self, key: &KeyRecord) -> bool {
        key.prefix.as_str() == self.kpx && key.customer_id == self.cid && key.environment == self.env
    }
}

/// `portal:<minting prefix>:<user_label>`.
pub fn actor(prefix: &KeyPrefix, label: &PortalLabel) -> String {
    format!("portal:{}:{}", prefix.as_str(), label.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_one_to_sixty_four_printable_characters() {
        for good in ["a", "Ada Lovelace", "ü", &"x".repeat(64), "admin@example.com"] {
            assert!(PortalLabel::parse(good).is_some(), "{good:?}");
        }
        for bad in [
            "",
            " a",
            "a ",
            &"x".repeat(65),
            "a\nb",
            "tab\there",
            "\u{7}",
            "Ada\u{202E}nimda",
            "A\u{200B}da",
            "a\u{2028}b",
            "a\u{00A0}b",
            "\u{3164}",
            "Ada\u{E0001}",
            "Ada\u{FE0F}",
            "A\u{034F}da",
            "\u{115F}\u{1160}",
            "Ada\u{1D173}",
            "Ada\u{E0100}",
        ] {
            assert!(PortalLabel::parse(bad).is_none(), "{bad:?}");
        }
    }

    #[test]
    fn claims_must_name_their_prefix_in_the_actor() {
        let good = serde_json::json!({
            "iss": "i", "aud": PORTAL_AUDIENCE, "cid": "acme", "env": "live", "kpx": "hatch_live_Ab12Cd",
            "act": "portal:hatch_live_Ab12Cd:Ada", "jti": "j", "iat": 10, "exp": 20,
        });
        let claims = PortalClaims::from_json(good.clone()).unwrap();
        assert!(claims.current_at(UnixTime::from_secs(19)) && !claims.current_at(UnixTime::from_secs(20)));
        let tweak = |field: &str, value: serde_json::Value| {
            let mut v = good.clone();
            v[field] = value;
            PortalClaims::from_json(v)
        };
        assert!(tweak("act", "portal:hatch_live_Zz99Zz:Ada".into()).is_none());
        assert!(tweak("act", "operator".into()).is_none());
        assert!(tweak("kpx", "nope".into()).is_none());
        assert!(tweak("aud", "hatched:embed".into()).is_none());
        assert!(tweak("exp", 5.into()).is_none());
        assert!(tweak("scope", "keys:write".into()).is_none(), "no claim beyond the list");
    }
}
