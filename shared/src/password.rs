//! Password hashing with argon2id at OWASP's parameters (m = 19456 KiB, t = 2, p = 1).
//!
//! Hashing is CPU-bound (about 19 ms on a modern core), so it runs on tokio's blocking pool and
//! never stalls the runtime. Verification of an unknown account still runs a full verification,
//! against a fixed dummy hash, so that response time does not reveal whether an email is
//! registered.

use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use secrecy::{ExposeSecret, SecretString};

use crate::domain::{NewPassword, SubmittedPassword};
use crate::error::ApiError;

pub const MEMORY_KIB: u32 = 19_456;
pub const ITERATIONS: u32 = 2;
pub const PARALLELISM: u32 = 1;

/// A well-formed argon2id hash at the live parameters whose digest is random bytes, so that no
/// password matches it. Verified against when the email is unknown; a unit test checks that its
/// parameters track the live ones.
const DUMMY_HASH: &str =
    "$argon2id$v=19$m=19456,t=2,p=1$c2VydmVybGVzcy1hdXRoLWR1bW15$Nq9mo6yjSLdtuH8B0JdzwqT3LaWSbqbd4ZHmJrDlhmk";

fn hasher() -> Argon2<'static> {
    let params = Params::new(MEMORY_KIB, ITERATIONS, PARALLELISM, None).expect("constant argon2 parameters are valid");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn hash_blocking(password: &SecretString) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut OsRng);
    hasher()
        .hash_password(password.expose_secret().as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| ApiError::Internal(format!("argon2 hashing failed: {e}").into()))
}

async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work).await.map_err(|e| ApiError::Internal(e.into()))?
}

/// Hashes a new password into a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`).
pub async fn hash(password: NewPassword) -> Result<String, ApiError> {
    blocking(move || hash_blocking(password.secret())).await
}

/// The outcome of checking a submitted password.
#[derive(Debug, PartialEq, Eq)]
pub enum Verification {
    /// Wrong password, or no such account.
    Mismatch,
    /// Right password. `rehashed` holds a new hash when the stored one used weaker parameters.
    Match { rehashed: Option<String> },
}

/// Verifies `password` against `stored`, or against the dummy hash when there is no account,
/// so both paths cost one argon2id computation.
pub async fn verify(password: SubmittedPassword, stored: Option<String>) -> Result<Verification, ApiError> {
    blocking(move || {
        let known = stored.is_some();
        let stored = stored.unwrap_or_else(|| DUMMY_HASH.to_owned());
        let parsed = match PasswordHash::new(&stored) {
            Ok(parsed) => parsed,
            Err(e) => {
                // A corrupt stored hash must not let anyone in, nor reveal itself to the client.
                tracing::error!(error = %e, "stored password hash is not a valid PHC string");
                return Ok(Verification::Mismatch);
            }
        };
        let matches = hasher().verify_password(password.secret().expose_secret().as_bytes(), &parsed).is_ok();
        if !(known && matches) {
            return Ok(Verification::Mismatch);
        }
        let rehashed = if is_weaker_than_current(&parsed) { Some(hash_blocking(password.secret())?) } else { None };
        Ok(Verification::Match { rehashed })
    })
    .await
}

/// Whether a stored hash predates the current parameters (another algorithm or version, or less
/// memory, iterations or parallelism) and should be replaced on the next successful login.
pub fn is_weaker_than_current(hash: &PasswordHash<'_>) -> bool {
    let current = hasher();
    let current = current.params();
    if hash.algorithm != Algorithm::Argon2id.ident() || hash.version != Some(Version::V0x13.into()) {
        return true;
    }
    match Params::try_from(hash) {
        Ok(params) => {
            params.m_cost() < current.m_cost()
                || params.t_cost() < current.t_cost()
                || params.p_cost() < current.p_cost()
        }
        Err(_) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::PasswordPolicy;

    fn new_password(raw: &str) -> NewPassword {
        NewPassword::parse(raw.into(), &PasswordPolicy::default(), None).unwrap()
    }

    fn submitted(raw: &str) -> SubmittedPassword {
        SubmittedPassword::parse(raw.into()).unwrap()
    }

    #[tokio::test]
    async fn given_a_hashed_password_when_verifying_then_only_the_same_password_matches() {
        let stored = hash(new_password("tangerine submarine 42")).await.unwrap();
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored}");
        assert_eq!(
            verify(submitted("tangerine submarine 42"), Some(stored.clone())).await.unwrap(),
            Verification::Match { rehashed: None }
        );
        assert_eq!(verify(submitted("tangerine submarine 43"), Some(stored)).await.unwrap(), Verification::Mismatch);
    }

    #[tokio::test]
    async fn given_no_account_when_verifying_then_mismatch_after_a_real_verification() {
        assert_eq!(verify(submitted("anything at all, really"), None).await.unwrap(), Verification::Mismatch);
    }

    #[test]
    fn the_dummy_hash_uses_the_live_parameters() {
        let parsed = PasswordHash::new(DUMMY_HASH).unwrap();
        assert!(!is_weaker_than_current(&parsed));
        let (dummy, live) = (Params::try_from(&parsed).unwrap(), hasher().params().clone());
        assert_eq!((dummy.m_cost(), dummy.t_cost(), dummy.p_cost()), (live.m_cost(), live.t_cost(), live.p_cost()));
    }

    #[tokio::test]
    async fn given_a_weaker_stored_hash_when_logging_in_then_a_current_hash_is_returned() {
        let weak = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(4096, 1, 1, None).unwrap())
            .hash_password(b"tangerine submarine 42", &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string();
        let Verification::Match { rehashed: Some(new_hash) } =
            verify(submitted("tangerine submarine 42"), Some(weak)).await.unwrap()
        else {
            panic!("expected a rehash");
        };
        assert!(new_hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    }

    #[tokio::test]
    async fn given_a_corrupt_stored_hash_when_verifying_then_mismatch() {
        assert_eq!(verify(submitted("whatever"), Some("not a hash".into())).await.unwrap(), Verification::Mismatch);
    }
}
