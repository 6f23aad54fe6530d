//! Identities and stored secrets as types of their own, so that no function takes two strings
//! that could be swapped: a user id, a refresh-token family, a token's hash and a password's
//! hash are four different things to the compiler.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A user's id: a random (v4) UUID, stored and shown in its hyphenated lowercase form.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct UserId(uuid::Uuid);

impl UserId {
    /// A new, random id.
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4())
    }

    /// The id in any form `uuid` reads (hyphenated, simple, braced, URN), else `None`.
    pub fn parse(text: &str) -> Option<Self> {
        uuid::Uuid::parse_str(text).ok().map(Self)
    }

    pub fn from_bytes(bytes: [u8; 16]) -> Self {
        Self(uuid::Uuid::from_bytes(bytes))
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl fmt::Debug for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "UserId({self})")
    }
}

impl Serialize for UserId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for UserId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).ok_or_else(|| serde::de::Error::custom("a user id is a UUID"))
    }
}

/// The name of a refresh-token family, as the session item's key holds it. Only a parsed or
/// freshly generated refresh token makes one (see `crate::tokens::Family`).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct FamilyId(String);

impl FamilyId {
    pub(crate) fn new(encoded: String) -> Self {
        Self(encoded)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for FamilyId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The stored form of a high-entropy token (a refresh token, a mail link's token): its SHA-256,
/// base64url. Only the token types make one.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(String);

impl TokenHash {
    pub(crate) fn new(encoded: String) -> Self {
        Self(encoded)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("TokenHash(..)")
    }
}

/// A password's argon2id hash, as a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`).
/// Never logged: `Debug` hides it.
#[derive(Clone, PartialEq, Eq)]
pub struct PasswordHash(String);

impl PasswordHash {
    /// Made by `crate::password` or read back from the store.
    pub(crate) fn new(phc: String) -> Self {
        Self(phc)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PasswordHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PasswordHash(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_a_user_id_when_shown_and_read_back_then_it_is_the_same_hyphenated_lowercase_id() {
        let id = UserId::parse("0D9A4C1E8F7B4A6D9C3E2B1A0F9E8D7C").unwrap();
        assert_eq!(id.to_string(), "0d9a4c1e-8f7b-4a6d-9c3e-2b1a0f9e8d7c");
        assert_eq!(serde_json::to_value(id).unwrap(), "0d9a4c1e-8f7b-4a6d-9c3e-2b1a0f9e8d7c");
        assert_eq!(serde_json::from_value::<UserId>("0d9a4c1e-8f7b-4a6d-9c3e-2b1a0f9e8d7c".into()).unwrap(), id);
        assert!(UserId::parse("../../etc").is_none());
        assert!(serde_json::from_value::<UserId>("me".into()).is_err());
        assert_eq!(UserId::from_bytes(*id.as_bytes()), id);
    }

    #[test]
    fn given_secrets_when_debug_printed_then_nothing_of_them_shows() {
        let hash = PasswordHash::new("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into());
        assert_eq!(format!("{hash:?}"), "PasswordHash(..)");
        assert_eq!(format!("{:?}", TokenHash::new("abc".into())), "TokenHash(..)");
    }
}
