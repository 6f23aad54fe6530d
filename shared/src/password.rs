//! Password hashing with argon2id at OWASP's parameters (m = 19456 KiB, t = 2, p = 1).
//!
//! Hashing is CPU-bound (about 19 ms on a modern core), so it runs on tokio's blocking pool and
//! never stalls the runtime. Verification of an unknown account still runs a full verification,
//! against a fixed dummy hash, so that response time does not reveal whether an email is
//! registered.
//!
//! The 19 MiB of argon2 memory is allocated once per process and reused by every hash (see
//! [`ReusedMemory`]): a fresh allocation per hash costs thousands of page faults each time, and
//! with glibc's allocator the freed blocks fragment so that resident memory grew by 19 MiB per
//! hash, past a 128 MB function's limit within a few invocations.

use std::sync::{Mutex, PoisonError};

use argon2::password_hash::{
    self, rand_core::OsRng, Decimal, Ident, Output, ParamsString, PasswordHash, PasswordHasher, PasswordVerifier, Salt,
    SaltString,
};
use argon2::{Algorithm, Argon2, Block, Params, Version};
use secrecy::{ExposeSecret, SecretString};

use crate::domain::{NewPassword, PasswordHash as StoredHash, SubmittedPassword};
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

/// The process's argon2 working memory, kept between hashes.
static MEMORY: Mutex<Vec<Block>> = Mutex::new(Vec::new());

/// argon2 with the process's reused working memory: the same hashes as [`Argon2`]'s own
/// `PasswordHasher` (whose `verify_password`, a constant-time comparison, comes with the trait),
/// without allocating 19 MiB per hash. Argon2 overwrites every block on its first pass, so what a
/// previous hash left in the memory cannot affect the result. A hash that finds the memory in
/// use by another (concurrent hashes in one process, as in tests) allocates its own instead of
/// waiting.
struct ReusedMemory;

impl PasswordHasher for ReusedMemory {
    type Params = Params;

    fn hash_password<'a>(&self, password: &[u8], salt: impl Into<Salt<'a>>) -> password_hash::Result<PasswordHash<'a>> {
        let live = hasher();
        self.hash_password_customized(password, None, None, live.params().clone(), salt)
    }

    fn hash_password_customized<'a>(
        &self,
        password: &[u8],
        algorithm: Option<Ident<'a>>,
        version: Option<Decimal>,
        params: Params,
        salt: impl Into<Salt<'a>>,
    ) -> password_hash::Result<PasswordHash<'a>> {
        let algorithm = algorithm.map(Algorithm::try_from).transpose()?.unwrap_or_default();
        let version = version.map(Version::try_from).transpose()?.unwrap_or_default();
        let salt = salt.into();
        let mut salt_bytes = [0u8; 64];
        let salt_bytes = salt.decode_b64(&mut salt_bytes)?;
        let argon2 = Argon2::new(algorithm, version, params.clone());
        let blocks = params.block_count();
        let output = Output::init_with(params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN), |out| {
            let mut own = Vec::new();
            let mut shared = MEMORY.try_lock().ok();
            let memory = shared.as_deref_mut().unwrap_or(&mut own);
            grow(memory, blocks);
            Ok(argon2.hash_password_into_with_memory(password, salt_bytes, out, &mut memory[..blocks])?)
        })?;
        Ok(PasswordHash {
            algorithm: algorithm.ident(),
            version: Some(version.into()),
            params: ParamsString::try_from(&params)?,
            salt: Some(salt),
            hash: Some(output),
        })
    }
}

/// Grows `memory` to `blocks` blocks, writing every one: the pages are faulted in here.
fn grow(memory: &mut Vec<Block>, blocks: usize) {
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
}

/// Allocates and writes the process's argon2 working memory on a blocking thread: the 19 MiB
/// cost about 4,900 page faults (3–10 ms of CPU on a whole core, with the memory cgroup's
/// charging; 14 times as long in wall time at 128 MB's share). Called during init, which Lambda
/// runs without the memory-size throttle, so that the first password request does not pay for
/// them. It waits for a hash holding the memory (none does during init, tests aside).
pub async fn reserve_memory() {
    let _ = tokio::task::spawn_blocking(|| {
        let mut memory = MEMORY.lock().unwrap_or_else(PoisonError::into_inner);
        grow(&mut memory, hasher().params().block_count());
    })
    .await;
}

fn hash_blocking(password: &SecretString) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut OsRng);
    ReusedMemory
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
pub async fn hash(password: NewPassword) -> Result<StoredHash, ApiError> {
    blocking(move || hash_blocking(password.secret()).map(StoredHash::new)).await
}

/// The outcome of checking a submitted password.
#[derive(Debug, PartialEq, Eq)]
pub enum Verification {
    /// Wrong password, or no such account.
    Mismatch,
    /// Right password. `rehashed` holds a new hash when the stored one used weaker parameters.
    Match { rehashed: Option<StoredHash> },
}

/// Verifies `password` against `stored`, or against the dummy hash when there is no account,
/// so both paths cost one argon2id computation.
pub async fn verify(password: SubmittedPassword, stored: Option<StoredHash>) -> Result<Verification, ApiError> {
    blocking(move || {
        let known = stored.is_some();
        let stored = stored.as_ref().map_or(DUMMY_HASH, StoredHash::as_str);
        let parsed = match PasswordHash::new(stored) {
            Ok(parsed) => parsed,
            Err(e) => {
                // A corrupt stored hash must not let anyone in, nor reveal itself to the client.
                tracing::error!(error = %e, "stored password hash is not a valid PHC string");
                return Ok(Verification::Mismatch);
            }
        };
        let matches = ReusedMemory.verify_password(password.secret().expose_secret().as_bytes(), &parsed).is_ok();
        if !(known && matches) {
            return Ok(Verification::Mismatch);
        }
        let rehashed = if is_weaker_than_current(&parsed) {
            Some(StoredHash::new(hash_blocking(password.secret())?))
        } else {
            None
        };
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

    #[test]
    fn given_empty_memory_when_growing_then_it_holds_every_block_of_the_live_parameters() {
        // GIVEN no working memory yet
        let mut memory = Vec::new();
        let blocks = hasher().params().block_count();
        // WHEN it is grown for the live parameters, twice
        grow(&mut memory, blocks);
        grow(&mut memory, blocks);
        // THEN it holds exactly the 19 MiB a hash needs
        assert_eq!(memory.len(), blocks);
        assert_eq!(memory.len() * std::mem::size_of::<Block>(), MEMORY_KIB as usize * 1024);
    }

    #[tokio::test]
    async fn given_init_when_reserving_then_the_process_memory_is_ready_for_a_hash() {
        reserve_memory().await;
        assert!(MEMORY.lock().unwrap_or_else(PoisonError::into_inner).len() >= hasher().params().block_count());
    }

    fn new_password(raw: &str) -> NewPassword {
        NewPassword::parse(raw.into(), &PasswordPolicy::default(), None, None).unwrap()
    }

    fn submitted(raw: &str) -> SubmittedPassword {
        SubmittedPassword::parse(raw.into()).unwrap()
    }

    #[tokio::test]
    async fn given_a_hashed_password_when_verifying_then_only_the_same_password_matches() {
        let stored = hash(new_password("tangerine submarine 42")).await.unwrap();
        assert!(stored.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{stored:?}");
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

    #[test]
    fn given_stored_hashes_when_compared_then_only_an_older_algorithm_version_or_lower_cost_is_weaker() {
        let salt_and_digest = "c2VydmVybGVzcy1hdXRoLWR1bW15$Nq9mo6yjSLdtuH8B0JdzwqT3LaWSbqbd4ZHmJrDlhmk";
        let cases = [
            ("argon2id$v=19$m=19456,t=2,p=1", false),
            ("argon2id$v=19$m=65536,t=2,p=1", false),
            ("argon2id$v=19$m=19456,t=3,p=1", false),
            ("argon2id$v=19$m=19456,t=2,p=2", false),
            ("argon2id$v=19$m=19455,t=2,p=1", true),
            ("argon2id$v=19$m=65536,t=1,p=4", true),
            ("argon2id$v=16$m=19456,t=2,p=1", true),
            ("argon2i$v=19$m=19456,t=2,p=1", true),
        ];
        for (prefix, weaker) in cases {
            let stored = format!("${prefix}${salt_and_digest}");
            assert_eq!(is_weaker_than_current(&PasswordHash::new(&stored).unwrap()), weaker, "{stored}");
        }
    }

    #[tokio::test]
    async fn given_a_weaker_stored_hash_when_logging_in_then_a_current_hash_is_returned() {
        let weak = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(4096, 1, 1, None).unwrap())
            .hash_password(b"tangerine submarine 42", &SaltString::generate(&mut OsRng))
            .unwrap()
            .to_string();
        let Verification::Match { rehashed: Some(new_hash) } =
            verify(submitted("tangerine submarine 42"), Some(StoredHash::new(weak))).await.unwrap()
        else {
            panic!("expected a rehash");
        };
        assert!(new_hash.as_str().starts_with("$argon2id$v=19$m=19456,t=2,p=1$"));
    }

    #[test]
    fn given_reused_memory_when_hashing_then_results_match_the_argon2_crate() {
        let salt = SaltString::encode_b64(b"sixteen byte salt").unwrap();
        // Twice, so that the second hash runs on memory the first one left dirty.
        for password in [&b"tangerine submarine 42"[..], b"another password entirely"] {
            let ours = ReusedMemory.hash_password(password, &salt).unwrap().to_string();
            let reference = hasher().hash_password(password, &salt).unwrap().to_string();
            assert_eq!(ours, reference);
            assert!(hasher().verify_password(password, &PasswordHash::new(&ours).unwrap()).is_ok());
        }
        // Other parameters (a stored hash from before a parameter change) verify too.
        let weak = Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::new(8192, 3, 1, None).unwrap())
            .hash_password(b"tangerine submarine 42", &salt)
            .unwrap()
            .to_string();
        let parsed = PasswordHash::new(&weak).unwrap();
        assert!(ReusedMemory.verify_password(b"tangerine submarine 42", &parsed).is_ok());
        assert!(ReusedMemory.verify_password(b"tangerine submarine 43", &parsed).is_err());
    }

    #[tokio::test]
    async fn given_a_corrupt_stored_hash_when_verifying_then_mismatch() {
        let corrupt = StoredHash::new("not a hash".into());
        assert_eq!(verify(submitted("whatever"), Some(corrupt)).await.unwrap(), Verification::Mismatch);
    }
}
