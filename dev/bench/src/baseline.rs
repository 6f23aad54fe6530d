//! Reference costs measured in a child process of the driver, built with the same release
//! profile and SDK set-up as the functions: the DynamoDB call of a warm get-user or refresh made
//! alone (through `shared::store`, exactly as the handler makes it), and one argon2id hash at the
//! configured parameters. The function's CPU per invocation minus these is what the handler, the
//! runtime loop and the event and response (de)serialisation cost.

use std::time::Instant;

use serde::Serialize;
use shared::domain::{NewPassword, PasswordPolicy, UserId};
use shared::store::Store;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Op {
    /// `Store::user`: one consistent `GetItem`, as get-user makes it.
    GetUser,
    /// `Store::rotate_session`: one conditional `UpdateItem`, as refresh makes it.
    RotateSession,
    /// `shared::password::hash`: one argon2id hash on the blocking pool, as register makes it.
    Argon2,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Measurement {
    pub n: usize,
    /// Process CPU (user + system) per operation, ms.
    pub cpu_ms: f64,
    /// Wall time per operation, ms.
    pub wall_ms: f64,
}

/// Runs `n` operations after one untimed warm-up and prints a [`Measurement`] as JSON.
pub fn run(op: Op, n: usize, user_id: Option<String>) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let measurement = runtime.block_on(measure(op, n.max(1), user_id))?;
    println!("{}", serde_json::to_string(&measurement).map_err(|e| e.to_string())?);
    Ok(())
}

async fn measure(op: Op, n: usize, user_id: Option<String>) -> Result<Measurement, String> {
    let pid = std::process::id().to_string();
    let clock = || crate::procfs::cpu_ms(&pid).ok_or("cannot read /proc/self/stat");
    match op {
        Op::Argon2 => {
            let password = || {
                NewPassword::parse("correct horse battery staple".into(), &PasswordPolicy::default(), None, None)
                    .map_err(|e| format!("password: {e}"))
            };
            shared::password::hash(password()?).await.map_err(|e| e.to_string())?;
            let (cpu0, wall0) = (clock()?, Instant::now());
            for _ in 0..n {
                shared::password::hash(password()?).await.map_err(|e| e.to_string())?;
            }
            finish(n, cpu0, clock()?, wall0)
        }
        Op::GetUser => {
            let store = store().await?;
            let id = user_id.as_deref().and_then(UserId::parse).ok_or("--user-id (a user id) is required")?;
            store.user(id).await.map_err(|e| e.to_string())?.ok_or("no such user")?;
            let (cpu0, wall0) = (clock()?, Instant::now());
            for _ in 0..n {
                store.user(id).await.map_err(|e| e.to_string())?;
            }
            finish(n, cpu0, clock()?, wall0)
        }
        Op::RotateSession => {
            // The family of the refresh token the benchmark's flow holds: rotating it needs only
            // what the refresh function may do (UpdateItem on SESSION# items).
            let store = store().await?;
            let token = std::env::var("BENCH_REFRESH_TOKEN").map_err(|_| "BENCH_REFRESH_TOKEN is required")?;
            let token =
                shared::tokens::RefreshToken::parse(&token).ok_or("BENCH_REFRESH_TOKEN is not a refresh token")?;
            let now = shared::now_epoch();
            // The hashes of a chain of successors (under an arbitrary key), computed before the
            // clock starts.
            let mut chain = vec![token];
            for i in 0..=n {
                let next = chain[i].successor(&[7; 32]);
                chain.push(next);
            }
            let hashes: Vec<_> = chain.iter().map(|token| token.hash()).collect();
            let family = chain[0].family();
            // No reuse grace: every rotation presents the current hash, so none is a repeat.
            let rotate = |i: usize| {
                let token = shared::store::PresentedToken { family, hash: &hashes[i], successor_hash: &hashes[i + 1] };
                store.rotate_session(token, 0, now)
            };
            rotate(0).await.map_err(|e| e.to_string())?;
            let (cpu0, wall0) = (clock()?, Instant::now());
            for i in 1..=n {
                let rotation = rotate(i).await.map_err(|e| e.to_string())?;
                if rotation != shared::store::Rotation::Rotated {
                    return Err(format!("rotation {i}: {rotation:?}"));
                }
            }
            finish(n, cpu0, clock()?, wall0)
        }
    }
}

async fn store() -> Result<Store, String> {
    let config = shared::Config::from_env().map_err(|e| e.to_string())?;
    let aws = shared::aws::sdk_config().await;
    Ok(Store::new(shared::aws::dynamodb(&aws), &config.table_name))
}

fn finish(n: usize, cpu0: f64, cpu1: f64, wall0: Instant) -> Result<Measurement, String> {
    Ok(Measurement { n, cpu_ms: (cpu1 - cpu0) / n as f64, wall_ms: wall0.elapsed().as_secs_f64() * 1000.0 / n as f64 })
}
