//! Reference costs measured in a child process of the driver, built with the same release
//! profile and SDK set-up as the functions: a function's DynamoDB calls made alone, through
//! `shared::store` exactly as the handler makes them, on state prepared like the function's; or
//! one argon2id hash at the configured parameters. The function's CPU per invocation minus these
//! is what the handler, the runtime loop and the event and response (de)serialisation cost (and,
//! for the mailer, its SES call: the SDK's SES types would be a dependency of this crate).
//!
//! What a call needs that the handler computes (HMACs, token hashes) is computed before the
//! clock starts: the reference is the calls alone.

use std::time::Instant;

use serde::{Deserialize, Serialize};
use shared::domain::{Email, NewPassword, PasswordPolicy, TokenHash, UserId};
use shared::mail::{MailKey, MailKind, MailToken, OutboxId, Purpose};
use shared::store::{LoggingOut, MailRequest, NewMail, NewMailToken, OutboxStatus, Store, TokenUse};
use shared::tokens::RefreshToken;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Op {
    /// `Store::user`: one consistent `GetItem`, as get-user makes it.
    GetUser,
    /// `Store::rotate_session`: one `TransactWriteItems` (the family's update and the user's
    /// check), as refresh makes it.
    RotateSession,
    /// `shared::password::hash`: one argon2id hash on the blocking pool, as register makes it.
    Argon2,
    /// `Store::end_session` on a family of its own each time (one conditional `UpdateItem`), as
    /// logout makes it.
    EndSession,
    /// `Store::revoke_all_sessions` (`GetItem`, then `TransactWriteItems`), as logout-all makes it.
    RevokeAllSessions,
    /// A sign-up link's token used: `Store::mail_token` (`GetItem`), `Store::verify_email`
    /// (`TransactWriteItems`), `Store::user` (`GetItem`), as email-verify makes them.
    VerifyEmail,
    /// `Store::request_mail` for a new address (one `TransactWriteItems`), as
    /// email-verify-resend makes it.
    RequestVerification,
    /// The same for a reset mail, as password-forgot makes it.
    RequestReset,
    /// A pending mail's DynamoDB calls: `Store::mail` (`GetItem`), `Store::start_sending`
    /// (`UpdateItem`), `Store::finish_mail` (`UpdateItem`), as the mailer makes them around a
    /// sign-up's mail (not its SES call).
    SendMail,
    /// The same with the reset link's token stored before the mail goes out:
    /// `Store::credentials` and `Store::generations` (`GetItem` each), `Store::store_mail_token`
    /// (`PutItem`), as the mailer makes them for a `password/forgot` mail to an account.
    SendResetMail,
}

impl Op {
    pub fn name(self) -> &'static str {
        match self {
            Self::GetUser => "get-user",
            Self::RotateSession => "rotate-session",
            Self::Argon2 => "argon2",
            Self::EndSession => "end-session",
            Self::RevokeAllSessions => "revoke-all-sessions",
            Self::VerifyEmail => "verify-email",
            Self::RequestVerification => "request-verification",
            Self::RequestReset => "request-reset",
            Self::SendMail => "send-mail",
            Self::SendResetMail => "send-reset-mail",
        }
    }
}

/// What a reference operation works on, prepared by the driver (on the child's stdin, as JSON).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Input {
    /// get-user's user; logout-all's.
    pub user_id: Option<String>,
    /// The refresh token the benchmark's flow holds (refresh).
    pub refresh_token: Option<String>,
    /// One current refresh token per logout.
    #[serde(default)]
    pub refresh_tokens: Vec<String>,
    /// One unused sign-up link token per verification.
    #[serde(default)]
    pub mail_tokens: Vec<String>,
    /// One address with no request yet per resend or forgot request.
    #[serde(default)]
    pub emails: Vec<String>,
    /// One pending mail (`OUTBOX#` key) per send.
    #[serde(default)]
    pub outbox_ids: Vec<String>,
    /// The account a reset mail is for (its credentials and generations are read).
    pub account_email: Option<String>,
}

#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct Measurement {
    pub n: usize,
    /// Process CPU (user + system) per operation, ms.
    pub cpu_ms: f64,
    /// Wall time per operation, ms.
    pub wall_ms: f64,
}

/// Runs up to `n` operations after one untimed warm-up (fewer when the input holds less state)
/// and prints a [`Measurement`] as JSON.
pub fn run(op: Op, n: usize) -> Result<(), String> {
    let mut text = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut text).map_err(|e| format!("stdin: {e}"))?;
    let input: Input = if text.trim().is_empty() {
        Input::default()
    } else {
        serde_json::from_str(&text).map_err(|e| format!("input: {e}"))?
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
    let measurement = runtime.block_on(measure(op, n.max(1), input))?;
    println!("{}", serde_json::to_string(&measurement).map_err(|e| e.to_string())?);
    Ok(())
}

/// The CPU and wall clocks of this process.
struct Clock {
    pid: String,
    cpu0: f64,
    wall0: Instant,
}

impl Clock {
    fn start() -> Result<Self, String> {
        let pid = std::process::id().to_string();
        let cpu0 = crate::procfs::cpu_ms(&pid).ok_or("cannot read /proc/self/stat")?;
        Ok(Self { pid, cpu0, wall0: Instant::now() })
    }

    fn stop(self, n: usize) -> Result<Measurement, String> {
        let cpu1 = crate::procfs::cpu_ms(&self.pid).ok_or("cannot read /proc/self/stat")?;
        let wall = self.wall0.elapsed().as_secs_f64() * 1000.0;
        Ok(Measurement { n, cpu_ms: (cpu1 - self.cpu0) / n as f64, wall_ms: wall / n as f64 })
    }
}

/// `n`, or fewer when only `available` pieces of state are left after the warm-up's.
fn bounded(n: usize, available: usize, what: &str) -> Result<usize, String> {
    match available.saturating_sub(1).min(n) {
        0 => Err(format!("no {what} to measure with (the warm-up uses one)")),
        n => Ok(n),
    }
}

fn err(e: impl std::fmt::Display) -> String {
    e.to_string()
}

async fn measure(op: Op, n: usize, input: Input) -> Result<Measurement, String> {
    let config = || shared::Config::from_env().map_err(err);
    match op {
        Op::Argon2 => {
            let password = || {
                NewPassword::parse("correct horse battery staple".into(), &PasswordPolicy::default(), None, None)
                    .map_err(|e| format!("password: {e}"))
            };
            shared::password::hash(password()?).await.map_err(err)?;
            let clock = Clock::start()?;
            for _ in 0..n {
                shared::password::hash(password()?).await.map_err(err)?;
            }
            clock.stop(n)
        }
        Op::GetUser => {
            let (store, _) = clients().await?;
            let id = input.user_id.as_deref().and_then(UserId::parse).ok_or("a user id is required")?;
            store.user(id).await.map_err(err)?.ok_or("no such user")?;
            let clock = Clock::start()?;
            for _ in 0..n {
                store.user(id).await.map_err(err)?;
            }
            clock.stop(n)
        }
        Op::RotateSession => {
            // The family of the refresh token the benchmark's flow holds: rotating it needs only
            // what the refresh function may do.
            let (store, _) = clients().await?;
            let token = input.refresh_token.as_deref().ok_or("a refresh token is required")?;
            let token = RefreshToken::parse(token).ok_or("not a refresh token")?;
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
            rotate(0).await.map_err(err)?;
            let clock = Clock::start()?;
            for i in 1..=n {
                let rotation = rotate(i).await.map_err(err)?;
                if rotation != shared::store::Rotation::Rotated {
                    return Err(format!("rotation {i}: {rotation:?}"));
                }
            }
            clock.stop(n)
        }
        Op::EndSession => {
            let (store, _) = clients().await?;
            let grace = config()?.refresh_reuse_grace.as_secs() as i64;
            let n = bounded(n, input.refresh_tokens.len(), "refresh tokens")?;
            let tokens: Vec<RefreshToken> = input
                .refresh_tokens
                .iter()
                .map(|t| RefreshToken::parse(t).ok_or("not a refresh token"))
                .collect::<Result<_, _>>()?;
            let hashes: Vec<TokenHash> = tokens.iter().map(RefreshToken::hash).collect();
            let end = |i: usize| {
                let presented = LoggingOut { family: tokens[i].family(), hash: &hashes[i] };
                store.end_session(presented, grace, shared::now_epoch())
            };
            end(0).await.map_err(err)?;
            let clock = Clock::start()?;
            for i in 1..=n {
                if !end(i).await.map_err(err)? {
                    return Err(format!("logout {i}: nothing revoked"));
                }
            }
            clock.stop(n)
        }
        Op::RevokeAllSessions => {
            let (store, _) = clients().await?;
            let id = input.user_id.as_deref().and_then(UserId::parse).ok_or("a user id is required")?;
            store.revoke_all_sessions(id).await.map_err(err)?;
            let clock = Clock::start()?;
            for _ in 0..n {
                if !store.revoke_all_sessions(id).await.map_err(err)? {
                    return Err("no such user".into());
                }
            }
            clock.stop(n)
        }
        Op::VerifyEmail => {
            let (store, _) = clients().await?;
            let n = bounded(n, input.mail_tokens.len(), "sign-up tokens")?;
            let hashes: Vec<TokenHash> = input
                .mail_tokens
                .iter()
                .map(|t| MailToken::parse(t).map(|t| t.hash()).ok_or("not a mail token"))
                .collect::<Result<_, _>>()?;
            let verify = |i: usize| {
                let (store, hash) = (&store, &hashes[i]);
                async move {
                    let token = store.mail_token(hash, shared::now_epoch()).await.map_err(err)?;
                    let token = token.ok_or_else(|| format!("token {i}: unknown or expired"))?;
                    if store.verify_email(hash, &token).await.map_err(err)? != TokenUse::Done {
                        return Err(format!("token {i}: stale"));
                    }
                    store.user(token.user_id).await.map_err(err)?.ok_or_else(|| format!("token {i}: no user"))?;
                    Ok::<(), String>(())
                }
            };
            verify(0).await?;
            let clock = Clock::start()?;
            for i in 1..=n {
                verify(i).await?;
            }
            clock.stop(n)
        }
        Op::RequestVerification | Op::RequestReset => {
            let (store, clients) = clients().await?;
            let config = config()?;
            let kind = if op == Op::RequestReset { MailKind::ResetRequested } else { MailKind::VerificationRequested };
            let keys = shared::keys::MailKeys::from_secrets_manager(
                clients.secrets(),
                config.mail.key_secret_id().map_err(err)?,
            );
            let key = keys.key().await.map_err(err)?;
            let n = bounded(n, input.emails.len(), "addresses")?;
            let emails: Vec<Email> =
                input.emails.iter().map(|e| Email::parse(e).map_err(err)).collect::<Result<_, _>>()?;
            let records: Vec<String> = emails.iter().map(|e| key.request_record(kind, e)).collect();
            let ids: Vec<OutboxId> = emails.iter().map(|_| OutboxId::generate()).collect();
            let request = |i: usize| {
                let mail = NewMail { id: ids[i], kind, to: &emails[i], user_id: None, now: shared::now_epoch() };
                let (store, record) = (&store, &records[i]);
                async move { store.request_mail(record, &mail).await.map_err(err) }
            };
            request(0).await?;
            let clock = Clock::start()?;
            for i in 1..=n {
                if request(i).await? != MailRequest::Accepted {
                    return Err(format!("request {i}: limited"));
                }
            }
            clock.stop(n)
        }
        Op::SendMail | Op::SendResetMail => {
            let (store, _) = clients().await?;
            let n = bounded(n, input.outbox_ids.len(), "pending mails")?;
            let ids: Vec<OutboxId> = input
                .outbox_ids
                .iter()
                .map(|pk| OutboxId::from_key(pk).ok_or("not an OUTBOX# key"))
                .collect::<Result<_, _>>()?;
            let account = match (op, &input.account_email) {
                (Op::SendResetMail, Some(email)) => Some(Email::parse(email).map_err(err)?),
                (Op::SendResetMail, None) => return Err("an account's address is required".into()),
                _ => None,
            };
            // An arbitrary key: the tokens are never presented, only their hashes stored.
            let key = MailKey::new(&[9; 32]);
            let hashes: Vec<TokenHash> = ids.iter().map(|id| key.token(*id).hash()).collect();
            // What SES answers, as the mailer stores it.
            let message_ids: Vec<String> = ids.iter().map(|_| uuid::Uuid::new_v4().to_string()).collect();
            let send = |i: usize| {
                let (store, id, hash, message_id, account) =
                    (&store, ids[i], &hashes[i], &message_ids[i], account.as_ref());
                async move {
                    let now = shared::now_epoch();
                    store.mail(id).await.map_err(err)?.ok_or_else(|| format!("mail {i}: gone"))?;
                    store.start_sending(id).await.map_err(err)?.ok_or_else(|| format!("mail {i}: not pending"))?;
                    if let Some(account) = account {
                        let credentials =
                            store.credentials(account).await.map_err(err)?.ok_or("the account is gone")?;
                        let generations =
                            store.generations(credentials.user_id).await.map_err(err)?.ok_or("the user is gone")?;
                        let token = NewMailToken {
                            hash,
                            purpose: Purpose::ResetPassword,
                            user_id: credentials.user_id,
                            email: account,
                            previous_email: None,
                            generation: generations.of(Purpose::ResetPassword),
                            expires_at: now + 3600,
                        };
                        store.store_mail_token(token).await.map_err(err)?;
                    }
                    store.finish_mail(id, OutboxStatus::Sent, message_id, now).await.map_err(err)
                }
            };
            send(0).await?;
            let clock = Clock::start()?;
            for i in 1..=n {
                send(i).await?;
            }
            clock.stop(n)
        }
    }
}

/// The store and the clients, set up as the functions set them up.
async fn clients() -> Result<(Store, shared::aws::Clients), String> {
    let config = shared::Config::from_env().map_err(err)?;
    let aws = shared::aws::sdk_config().await;
    let clients = shared::aws::Clients::new(&aws);
    Ok((Store::new(clients.dynamodb(), &config.table_name), clients))
}
