//! API key format: `hatch_live_` / `hatch_test_` / `hatch_pk_` + 32 base62 chars + 6-char
//! CRC-32 checksum. Parsing decides validity offline, so a malformed key costs no database read.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{Environment, KeyType};

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const RANDOM_LEN: usize = 32;
const CHECKSUM_LEN: usize = 6;
const BODY_LEN: usize = RANDOM_LEN + CHECKSUM_LEN;
/// Body chars shown in the display prefix.
const PREFIX_BODY_CHARS: usize = 6;

/// Which of the three key families a string claims to be, from its leading text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    SecretLive,
    SecretTest,
    Publishable,
}

impl KeyKind {
    const ALL: [KeyKind; 3] = [KeyKind::SecretLive, KeyKind::SecretTest, KeyKind::Publishable];

    pub fn type_prefix(self) -> &'static str {
        match self {
            KeyKind::SecretLive => "hatch_live_",
            KeyKind::SecretTest => "hatch_test_",
            KeyKind::Publishable => "hatch_pk_",
        }
    }

    pub fn key_type(self) -> KeyType {
        match self {
            KeyKind::Publishable => KeyType::Publishable,
            _ => KeyType::Secret,
        }
    }

    /// The environment a secret key carries in its text; publishable keys carry it on record.
    pub fn environment(self) -> Option<Environment> {
        match self {
            KeyKind::SecretLive => Some(Environment::Live),
            KeyKind::SecretTest => Some(Environment::Test),
            KeyKind::Publishable => None,
        }
    }

    pub fn for_issue(key_type: KeyType, env: Environment) -> KeyKind {
        match (key_type, env) {
            (KeyType::Publishable, _) => KeyKind::Publishable,
            (KeyType::Secret, Environment::Live) => KeyKind::SecretLive,
            (KeyType::Secret, Environment::Test) => KeyKind::SecretTest,
        }
    }
}

/// Why a presented string is not a key. All of these answer `invalid_key_format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum KeyFormatError {
    #[error("unknown key prefix")]
    UnknownPrefix,
    #[error("wrong key length")]
    Length,
    #[error("key contains characters outside base62")]
    Charset,
    #[error("key checksum does not match")]
    Checksum,
}

/// A syntactically valid API key (checksum verified). Holds the plaintext, so its `Debug`
/// shows only the display prefix.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey {
    kind: KeyKind,
    text: String,
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ApiKey({}…)", self.prefix())
    }
}

impl ApiKey {
    pub fn parse(text: &str) -> Result<ApiKey, KeyFormatError> {
        let kind = KeyKind::ALL
            .into_iter()
            .find(|k| text.starts_with(k.type_prefix()))
            .ok_or(KeyFormatError::UnknownPrefix)?;
        let body = &text.as_bytes()[kind.type_prefix().len()..];
        if body.len() != BODY_LEN {
            return Err(KeyFormatError::Length);
        }
        if !body.iter().all(u8::is_ascii_alphanumeric) {
            return Err(KeyFormatError::Charset);
        }
        let (random, checksum) = body.split_at(RANDOM_LEN);
        if checksum != checksum_of(random) {
            return Err(KeyFormatError::Checksum);
        }
        Ok(ApiKey { kind, text: text.to_owned() })
    }

    /// A fresh key: 32 chars from the OS CSPRNG plus its checksum.
    pub fn generate(kind: KeyKind) -> ApiKey {
        let random = random_base62(RANDOM_LEN);
        let mut text = String::with_capacity(kind.type_prefix().len() + BODY_LEN);
        text.push_str(kind.type_prefix());
        text.push_str(&random);
        text.push_str(std::str::from_utf8(&checksum_of(random.as_bytes())).expect("base62 is ASCII"));
        ApiKey { kind, text }
    }

    pub fn kind(&self) -> KeyKind {
        self.kind
    }

    pub fn prefix(&self) -> KeyPrefix {
        KeyPrefix(self.text[..self.kind.type_prefix().len() + PREFIX_BODY_CHARS].to_owned())
    }

    pub fn hash(&self) -> KeyHash {
        KeyHash(hex::encode(Sha256::digest(self.text.as_bytes())))
    }

    /// The plaintext, for showing once at issuance. Never log it.
    pub fn expose(&self) -> &str {
        &self.text
    }
}

/// The best display prefix of a string that failed to parse, if it is recognisably a key.
pub fn display_prefix_of(text: &str) -> Option<KeyPrefix> {
    let kind = KeyKind::ALL.into_iter().find(|k| text.starts_with(k.type_prefix()))?;
    let end = kind.type_prefix().len() + PREFIX_BODY_CHARS;
    let candidate = text.get(..end)?;
    candidate[kind.type_prefix().len()..]
        .bytes()
        .all(|b| b.is_ascii_alphanumeric())
        .then(|| KeyPrefix(candidate.to_owned()))
}

/// Type prefix + first six body chars, e.g. `hatch_live_Ab12Cd`: safe to show and log.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct KeyPrefix(String);

impl KeyPrefix {
    /// Accepts only the exact shape of a display prefix (operators type these).
    pub fn parse(text: &str) -> Option<KeyPrefix> {
        let kind = KeyKind::ALL.into_iter().find(|k| text.starts_with(k.type_prefix()))?;
        let rest = &text[kind.type_prefix().len()..];
        (rest.len() == PREFIX_BODY_CHARS && rest.bytes().all(|b| b.is_ascii_alphanumeric()))
            .then(|| KeyPrefix(text.to_owned()))
    }

    /// [`KeyPrefix::parse`] as an identifier of a request (path, body): outside its pattern
    /// it is `invalid_request` and never reaches a database key.
    pub fn parse_id(text: &str) -> Result<KeyPrefix, super::InvalidId> {
        KeyPrefix::parse(text)
            .ok_or(super::InvalidId { field: "prefix", pattern: "a key prefix such as hatch_live_Ab12Cd" })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KeyPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// SHA-256 hex of the whole key: the only form in which a key is stored.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct KeyHash(String);

impl KeyHash {
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Only for hashes read back from our own records (64 lowercase hex chars).
    pub fn from_stored(text: &str) -> Option<KeyHash> {
        (text.len() == 64 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')))
            .then(|| KeyHash(text.to_owned()))
    }
}

/// CRC-32 (IEEE) of the random part, as a 6-digit base62 number, most significant first.
fn checksum_of(random: &[u8]) -> [u8; CHECKSUM_LEN] {
    let mut n = crc32fast::hash(random) as u64;
    let mut out = [b'0'; CHECKSUM_LEN];
    for slot in out.iter_mut().rev() {
        *slot = BASE62[(n % 62) as usize];
        n /= 62;
    }
    out
}

/// `len` uniformly random base62 chars from the OS CSPRNG (rejection sampling, no modulo bias).
pub fn random_base62(len: usize) -> String {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        aws_lc_rs::rand::fill(&mut buf).expect("the OS CSPRNG is available");
        for &b in &buf {
            // 248 = 4 * 62: bytes at or above it would bias the first chars.
            if b < 248 && out.len() < len {
                out.push(BASE62[(b % 62) as usize] as char);
            }
        }
    }
    out
}

/// A publishable key's HMAC secret for signed user ids: shown once at issuance, held by the
/// customer's backend, stored only sealed ([`SealedSecret`]). `Debug` prints nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct HmacSecret(String);

impl HmacSecret {
    pub fn generate() -> HmacSecret {
        HmacSecret(random_base62(40))
    }

    pub fn new(text: String) -> Option<HmacSecret> {
        (!text.is_empty()).then_some(HmacSecret(text))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for HmacSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HmacSecret(..)")
    }
}

/// An [`HmacSecret`] sealed under the data key (`crate::sealing`), as stored on the key record.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SealedSecret(String);

impl SealedSecret {
    pub fn from_stored(text: String) -> SealedSecret {
        SealedSecret(text)
    }

    pub fn as_stored(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SealedSecret(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_parse_back_with_their_kind() {
        for kind in KeyKind::ALL {
            let key = ApiKey::generate(kind);
            assert!(key.expose().starts_with(kind.type_prefix()));
            assert_eq!(key.expose().len(), kind.type_prefix().len() + 38);
            assert_eq!(ApiKey::parse(key.expose()), Ok(key.clone()));
        }
    }

    #[test]
    fn checksum_matches_zlib_crc32_in_base62() {
        // Vectors from Python: zlib.crc32(body) written in base62 (0-9A-Za-z), 6 digits.
        assert_eq!(&checksum_of(&[b'A'; 32]), b"3Ae0o2");
        assert_eq!(&checksum_of(&[b'0'; 32]), b"2wjyrI");
        assert_eq!(&checksum_of(b"abcdefghijklmnopqrstuvwxyzABCDEF"), b"1mVgZW");
        let key = "hatch_live_abcdefghijklmnopqrstuvwxyzABCDEF1mVgZW";
        assert_eq!(ApiKey::parse(key).map(|k| k.kind()), Ok(KeyKind::SecretLive));
    }

    #[test]
    fn malformed_keys_are_told_apart() {
        let good = ApiKey::generate(KeyKind::SecretLive).expose().to_owned();
        assert_eq!(ApiKey::parse("sk_live_abc"), Err(KeyFormatError::UnknownPrefix));
        assert_eq!(ApiKey::parse(&good[..good.len() - 1]), Err(KeyFormatError::Length));
        assert_eq!(ApiKey::parse(&format!("{good}0")), Err(KeyFormatError::Length));
        let mut charset = good.clone().into_bytes();
        charset[12] = b'-';
        assert_eq!(ApiKey::parse(std::str::from_utf8(&charset).unwrap()), Err(KeyFormatError::Charset));
        let mut flipped = good.clone().into_bytes();
        flipped[12] = if flipped[12] == b'a' { b'b' } else { b'a' };
        assert_eq!(ApiKey::parse(std::str::from_utf8(&flipped).unwrap()), Err(KeyFormatError::Checksum));
    }

    #[test]
    fn prefix_is_type_plus_six_body_chars() {
        let key = ApiKey::generate(KeyKind::Publishable);
        let prefix = key.prefix();
        assert_eq!(prefix.as_str(), &key.expose()[..15]);
        assert_eq!(KeyPrefix::parse(prefix.as_str()), Some(prefix));
        assert_eq!(KeyPrefix::parse("hatch_pk_abc"), None);
        assert!(!format!("{key:?}").contains(key.expose()));
    }

    #[test]
    fn hash_is_sha256_hex_of_the_whole_key() {
        let key = ApiKey::generate(KeyKind::SecretTest);
        let expected = hex::encode(Sha256::digest(key.expose().as_bytes()));
        assert_eq!(key.hash().as_str(), expected);
        assert!(KeyHash::from_stored(&expected).is_some());
    }
}
