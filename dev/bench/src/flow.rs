//! What the functions are given: the cases in run order, the events of each invocation, and the
//! state they need, prepared before the clock starts.
//!
//! register, login, refresh and get-user chain (each uses what the one before produced). Every
//! other function gets events prepared ahead, one piece of fresh state per invocation where its
//! work uses state up (a token works once, a session ends once, a mail is sent once), through the
//! system's own paths: accounts are signed up by the register binary, mail reaches the outside
//! only through the mailer binary fed the table's stream (as the event source mapping feeds it)
//! and SES (the IAM check keeps what SES accepted), and the links' tokens are read from there.
//! Logins require a verified email (the template's default): accounts are verified by following
//! their sign-up link.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{json, Value};
use shared::mail::OutboxId;
use shared::store::Store;

use crate::baseline::{Input, Op};
use crate::driver::{Harness, Launcher, Local, Process};
use localdev::stream::StreamFeed;

pub const PASSWORD: &str = "correct horse battery staple";
/// A new password for the routes that set one (long enough, unrelated to the address or name).
const NEW_PASSWORD: &str = "another long passphrase of mine";
const NAME: &str = "Ada Lovelace";
const VERIFY_LINK: &str = "/verify-email#token=";
const RESET_LINK: &str = "/reset-password#token=";
/// How long prepared mail may take to reach the stream and the outbox.
const MAIL_PATIENCE: Duration = Duration::from_secs(30);

/// One function as the benchmark runs it.
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// The report's name: the binary, or the binary and the kind of work.
    pub label: &'static str,
    pub binary: &'static str,
    /// Fewer warm invocations: each costs an argon2id computation, or a new account to prepare.
    pub heavy: bool,
    pub reference: Option<Op>,
}

const fn case(label: &'static str, binary: &'static str, heavy: bool, reference: Option<Op>) -> Case {
    Case { label, binary, heavy, reference }
}

/// In run order: each may use what the ones before left (register's sign-ups are the mailer's
/// mail, whose links email-verify follows; login's user is verified by then).
pub const CASES: [Case; 18] = [
    case("floor", "floor", false, None),
    case("register", "register", true, Some(Op::Argon2)),
    case("mailer (sign-up)", "mailer", false, Some(Op::SendMail)),
    case("email-verify", "email-verify", false, Some(Op::VerifyEmail)),
    case("login", "login", true, Some(Op::Argon2)),
    case("refresh", "refresh", false, Some(Op::RotateSession)),
    case("get-user", "get-user", false, Some(Op::GetUser)),
    case("health", "health", false, None),
    case("jwks", "jwks", false, None),
    case("logout", "logout", false, Some(Op::EndSession)),
    case("logout-all", "logout-all", false, Some(Op::RevokeAllSessions)),
    case("email-verify-resend", "email-verify-resend", false, Some(Op::RequestVerification)),
    case("password-forgot", "password-forgot", false, Some(Op::RequestReset)),
    case("mailer (reset)", "mailer", true, Some(Op::SendResetMail)),
    case("password-reset", "password-reset", true, Some(Op::Argon2)),
    case("password-change", "password-change", true, Some(Op::Argon2)),
    case("email-change", "email-change", true, Some(Op::Argon2)),
    case("delete-user", "delete-user", true, Some(Op::Argon2)),
];

/// The event fixtures of `events/`, by route.
struct Events(BTreeMap<&'static str, Value>);

impl Events {
    const FILES: [(&'static str, &'static str); 15] = [
        ("register", "register.json"),
        ("login", "login.json"),
        ("refresh", "refresh.json"),
        ("get-user", "get-user.me.json"),
        ("health", "health.json"),
        ("jwks", "jwks.json"),
        ("logout", "logout.json"),
        ("logout-all", "logout-all.json"),
        ("email-verify", "email-verify.json"),
        ("email-verify-resend", "email-verify-resend.json"),
        ("password-forgot", "password-forgot.json"),
        ("password-reset", "password-reset.json"),
        ("password-change", "password-change.json"),
        ("email-change", "email-change.json"),
        ("delete-user", "delete-user.json"),
    ];

    fn load(dir: &Path) -> Result<Self, String> {
        let mut events = BTreeMap::new();
        for (route, file) in Self::FILES {
            let path = dir.join(file);
            let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
            events.insert(route, serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?);
        }
        Ok(Self(events))
    }

    /// The route's fixture with `{{placeholder}}`s filled and, if given, this body.
    fn build(&self, route: &str, fill: &[(&str, &str)], body: Option<Value>) -> Result<Value, String> {
        let fixture = self.0.get(route).ok_or_else(|| format!("no event fixture for {route}"))?;
        let mut text = fixture.to_string();
        for (name, value) in fill {
            // JSON-escaped, though tokens and addresses never need it.
            let value = Value::String((*value).to_owned()).to_string();
            text = text.replace(&format!("{{{{{name}}}}}"), value.trim_matches('"'));
        }
        let mut event: Value = serde_json::from_str(&text).map_err(|e| format!("{route}: {e}"))?;
        if let Some(body) = body {
            event["body"] = Value::String(body.to_string());
        }
        Ok(event)
    }

    /// The fixture's body as JSON (the fixtures hold realistic values to keep).
    fn body(&self, route: &str) -> Value {
        self.0
            .get(route)
            .and_then(|e| e["body"].as_str())
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null)
    }
}

/// What an invocation must answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    Status(u64),
    /// A stream batch: no record reported failed.
    NoBatchFailures,
}

/// One invocation's event, prepared or chained.
#[derive(Debug, Clone)]
pub struct Invocation {
    pub event: Bytes,
    pub expect: Expect,
}

/// What the functions produce for each other.
#[derive(Default)]
pub struct Flow {
    run: String,
    registered: usize,
    /// The addresses register signed up, in order (the first is login's user).
    signups: Vec<String>,
    /// Login's user, and whether its email is verified (login answers 403 until it is).
    email: Option<String>,
    email_verified: bool,
    user_id: Option<String>,
    access_token: Option<String>,
    refresh_token: Option<String>,
    /// How many of `signups` the mailer has sent their mail to.
    mailed: usize,
    /// Whose sign-up mails the mailer sent (email-verify follows their links, oldest first).
    verify_pending: Vec<String>,
    /// Whose reset mails the mailer sent (password-reset follows their links, oldest first).
    reset_pending: Vec<String>,
    /// The last number given to an address of each tag: each point gets accounts of its own.
    issued: BTreeMap<String, usize>,
    /// The events of the case being run, when they do not chain.
    prepared: VecDeque<Invocation>,
    events: Option<Events>,
}

fn chains(case: &Case) -> bool {
    matches!(case.label, "floor" | "register" | "login" | "refresh" | "get-user" | "health" | "jwks")
}

impl Flow {
    fn events(&self) -> Result<&Events, String> {
        self.events.as_ref().ok_or_else(|| "no event fixtures".to_owned())
    }

    /// The event of the case's next invocation.
    pub fn next(&mut self, case: &Case) -> Result<Invocation, String> {
        if !chains(case) {
            return self.prepared.pop_front().ok_or_else(|| format!("{}: no prepared invocation left", case.label));
        }
        let events = self.events()?;
        let (event, status) = match case.label {
            "register" => {
                let mut body = events.body("register");
                body["email"] = format!("bench-{}-{}@example.com", self.run, self.registered + 1).into();
                body["password"] = PASSWORD.into();
                (events.build("register", &[], Some(body))?, 201)
            }
            "login" => {
                let mut body = events.body("login");
                body["email"] = self.email.clone().ok_or("no registered user")?.into();
                body["password"] = PASSWORD.into();
                (events.build("login", &[], Some(body))?, 200)
            }
            "refresh" => {
                let token = self.refresh_token.as_deref().ok_or("no refresh token")?;
                (events.build("refresh", &[], Some(json!({"refresh_token": token})))?, 200)
            }
            "get-user" => {
                let token = self.access_token.as_deref().ok_or("no access token")?;
                (events.build("get-user", &[("access_token", token)], None)?, 200)
            }
            // Any event will do: the floor answers 200 to all.
            "floor" => (events.build("health", &[], None)?, 200),
            // The fixtures as they are.
            route => (events.build(route, &[], None)?, 200),
        };
        Ok(Invocation { event: Bytes::from(event.to_string()), expect: Expect::Status(status) })
    }

    /// Checks the answer is the one expected and keeps what later invocations need; returns the
    /// status (or what the mailer reported).
    pub fn accept(&mut self, case: &Case, invocation: &Invocation, response: &[u8]) -> Result<String, String> {
        let label = case.label;
        let response: Value = serde_json::from_slice(response).map_err(|e| format!("{label}: {e}"))?;
        let expected = match invocation.expect {
            Expect::NoBatchFailures => {
                let failures = &response["batchItemFailures"];
                if !(failures.is_null() || failures.as_array().is_some_and(Vec::is_empty)) {
                    return Err(format!("{label}: records reported failed: {response}"));
                }
                return Ok("no batch item failures".to_owned());
            }
            Expect::Status(status) => status,
        };
        let status = response["statusCode"].as_u64().unwrap_or(0);
        let body: Value = response["body"].as_str().and_then(|b| serde_json::from_str(b).ok()).unwrap_or(Value::Null);
        if status != expected {
            return Err(format!("{label}: status {status}, expected {expected}: {body}"));
        }
        match label {
            "register" => {
                self.registered += 1;
                let email = body["email"].as_str().ok_or("register: no email in the answer")?.to_owned();
                if self.user_id.is_none() {
                    self.user_id = body["id"].as_str().map(str::to_owned);
                    self.email = Some(email.clone());
                }
                self.signups.push(email);
            }
            "login" | "refresh" => {
                self.access_token = body["access_token"].as_str().map(str::to_owned);
                self.refresh_token = body["refresh_token"].as_str().map(str::to_owned);
            }
            _ => {}
        }
        Ok(format!("status {status}"))
    }

    /// The reference inputs the chain holds only once the function ran: get-user's user, the
    /// refresh token refresh left (its reference rotates that family on; only get-user, an
    /// access token, and the cases that use their own accounts come after it).
    pub fn complete_input(&self, case: &Case, input: &mut Input) {
        match case.label {
            "get-user" => input.user_id = self.user_id.clone(),
            "refresh" => input.refresh_token = self.refresh_token.clone(),
            _ => {}
        }
    }

    fn address(&self, tag: &str, i: usize) -> String {
        format!("bench-{}-{tag}{i}@example.com", self.run)
    }

    /// `n` addresses of `tag` no earlier call gave out.
    fn addresses(&mut self, tag: &str, n: usize) -> Vec<String> {
        let issued = self.issued.entry(tag.to_owned()).or_default();
        let first = *issued + 1;
        *issued += n;
        (first..first + n).map(|i| self.address(tag, i)).collect()
    }
}

/// A signed-up, verified and logged-in account.
struct Account {
    email: String,
    user_id: String,
    access_token: String,
}

/// Mail in the table's stream: the record, and from its `OUTBOX#` item what and to whom.
struct Mail {
    record: Value,
    kind: String,
    to: String,
}

/// The table's stream, read as the mailer's event source mapping reads it, with each mail
/// looked up (the stream holds keys only) so that a step can take the mail it caused.
struct MailPump {
    feed: StreamFeed,
    /// The stack's table, straight at DynamoDB Local (no function's permissions, no proxy).
    store: Store,
    /// Read and not taken yet (most never are: mail for addresses with no account).
    backlog: Vec<Mail>,
}

impl MailPump {
    /// The mail of `kind` to each of `to`, in that order, once the stream has it.
    async fn take(&mut self, kind: &str, to: &[String]) -> Result<Vec<Value>, String> {
        let started = Instant::now();
        let wanted: HashMap<&str, usize> = to.iter().enumerate().map(|(i, a)| (a.as_str(), i)).collect();
        let mut found: Vec<Option<Value>> = vec![None; to.len()];
        loop {
            let mut rest = Vec::new();
            for mail in std::mem::take(&mut self.backlog) {
                match wanted.get(mail.to.as_str()) {
                    Some(&i) if mail.kind == kind && found[i].is_none() => found[i] = Some(mail.record),
                    _ => rest.push(mail),
                }
            }
            self.backlog = rest;
            let missing = found.iter().filter(|f| f.is_none()).count();
            if missing == 0 {
                return Ok(found.into_iter().flatten().collect());
            }
            if started.elapsed() > MAIL_PATIENCE {
                return Err(format!("{missing} of {} {kind} mail(s) did not reach the table's stream", to.len()));
            }
            let batches = self.feed.next_record_batches().await.map_err(|e| e.to_string())?;
            let records: Vec<Value> = batches.into_iter().flat_map(|b| b.records).collect();
            if records.is_empty() {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            self.classify(records).await?;
        }
    }

    /// Reads the `OUTBOX#` items of `records` (50 at a time) into the backlog; a record whose
    /// item is gone (its user was deleted) is dropped.
    async fn classify(&mut self, records: Vec<Value>) -> Result<(), String> {
        for chunk in records.chunks(50) {
            let mut reads = tokio::task::JoinSet::new();
            for (i, record) in chunk.iter().enumerate() {
                let pk = record["dynamodb"]["Keys"]["pk"]["S"].as_str().unwrap_or_default();
                let id = OutboxId::from_key(pk).ok_or_else(|| format!("a stream record of no mail: {pk:?}"))?;
                let store = self.store.clone();
                reads.spawn(async move { (i, store.mail(id).await) });
            }
            let mut items = vec![None; chunk.len()];
            while let Some(read) = reads.join_next().await {
                let (i, mail) = read.map_err(|e| e.to_string())?;
                items[i] = mail.map_err(|e| format!("reading a mail: {e}"))?.map(|m| (m.kind.as_str(), m.to));
            }
            for (record, item) in chunk.iter().zip(items) {
                if let Some((kind, to)) = item {
                    self.backlog.push(Mail { record: record.clone(), kind: kind.to_owned(), to });
                }
            }
        }
        Ok(())
    }
}

/// One run of the functions: the harness, the flow between them, and the processes that
/// prepare state (helpers: the functions' own binaries, not measured, stopped before a
/// function is).
pub struct Session {
    pub harness: Harness,
    pub launcher: Launcher,
    pub flow: Flow,
    helpers: BTreeMap<&'static str, Process>,
    pump: MailPump,
    prep_log: PathBuf,
}

impl Session {
    pub async fn new(harness: Harness, launcher: Launcher, local: &Local) -> Result<Self, String> {
        let events = Events::load(&local.events_dir)?;
        let feed = StreamFeed::new(&harness.template, &harness.stack, "MailerFunction", &local.dynamodb_upstream)
            .await
            .map_err(|e| format!("the table's stream: {e}"))?;
        let table = harness.spec("mailer")?.env.get("TABLE_NAME").cloned().ok_or("the mailer has no TABLE_NAME")?;
        let admin = aws_config::SdkConfig::builder()
            .behavior_version(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(harness.template.region().to_owned()))
            .endpoint_url(&local.dynamodb_upstream)
            .credentials_provider(aws_sdk_secretsmanager::config::SharedCredentialsProvider::new(
                aws_sdk_secretsmanager::config::Credentials::new("local", "local", None, None, "bench"),
            ))
            .build();
        let store = Store::new(shared::aws::dynamodb(&admin), table);
        let pump = MailPump { feed, store, backlog: Vec::new() };
        let prep_log = local.log_dir.join("prep.log");
        std::fs::write(&prep_log, "").map_err(|e| format!("{}: {e}", prep_log.display()))?;
        let run = uuid::Uuid::new_v4().simple().to_string()[..8].to_owned();
        let flow = Flow { run, events: Some(events), ..Flow::default() };
        Ok(Self { harness, launcher, flow, helpers: BTreeMap::new(), pump, prep_log })
    }

    pub async fn stop_helpers(&mut self) {
        for (_, helper) in std::mem::take(&mut self.helpers) {
            helper.stop().await;
        }
    }

    /// Invokes a helper process of `binary` (started on first use) and returns its answer.
    async fn call(&mut self, binary: &'static str, event: &Value) -> Result<Value, String> {
        if !self.helpers.contains_key(binary) {
            let spec = self.harness.spec(binary)?;
            let mut process = Process::spawn(&self.launcher, spec, &self.harness.proxies, &self.prep_log, None).await?;
            process.idle().await.map_err(|e| format!("{binary} (preparing): {e}"))?;
            self.helpers.insert(binary, process);
        }
        let helper = self.helpers.get_mut(binary).ok_or("no helper")?;
        let (_, response) = helper.invoke(Bytes::from(event.to_string())).await?;
        helper.idle().await?;
        serde_json::from_slice(&response).map_err(|e| format!("{binary} (preparing): {e}"))
    }

    /// An HTTP invocation of a helper that must answer `status`; returns the answer's body.
    async fn http(&mut self, binary: &'static str, event: Value, status: u64) -> Result<Value, String> {
        let response = self.call(binary, &event).await?;
        let body: Value = response["body"].as_str().and_then(|b| serde_json::from_str(b).ok()).unwrap_or(Value::Null);
        match response["statusCode"].as_u64() {
            Some(s) if s == status => Ok(body),
            other => Err(format!("{binary} (preparing): status {other:?}, expected {status}: {body}")),
        }
    }

    fn event(&self, route: &str, fill: &[(&str, &str)], body: Option<Value>) -> Result<Value, String> {
        self.flow.events()?.build(route, fill, body)
    }

    /// Signs `addresses` up (register, with [`PASSWORD`]); returns their user ids.
    async fn sign_up(&mut self, addresses: &[String]) -> Result<Vec<String>, String> {
        let mut ids = Vec::new();
        for address in addresses {
            let body = json!({"email": address, "password": PASSWORD, "name": NAME});
            let event = self.event("register", &[], Some(body))?;
            let answer = self.http("register", event, 201).await?;
            ids.push(answer["id"].as_str().ok_or("register: no id in the answer")?.to_owned());
        }
        Ok(ids)
    }

    /// Hands stream records to a helper mailer, in batches of the mapping's size.
    async fn deliver(&mut self, records: &[Value]) -> Result<(), String> {
        for batch in records.chunks(10) {
            let answer = self.call("mailer", &localdev::stream::event(batch)).await?;
            let failures = &answer["batchItemFailures"];
            if !(failures.is_null() || failures.as_array().is_some_and(Vec::is_empty)) {
                return Err(format!("mailer (preparing): records reported failed: {answer}"));
            }
        }
        Ok(())
    }

    /// The token of the newest link (`marker` in it) mailed to each address, from what SES
    /// accepted; mail not sent yet is taken from the stream (of `kind`) and sent first.
    async fn mail_tokens(&mut self, kind: &str, marker: &str, addresses: &[String]) -> Result<Vec<String>, String> {
        let missing: Vec<String> = {
            let tokens = self.outbox_tokens(marker, addresses);
            addresses.iter().zip(&tokens).filter(|(_, t)| t.is_none()).map(|(a, _)| a.clone()).collect()
        };
        if !missing.is_empty() {
            let records = self.pump.take(kind, &missing).await?;
            self.deliver(&records).await?;
        }
        let tokens = self.outbox_tokens(marker, addresses);
        let missing = tokens.iter().filter(|t| t.is_none()).count();
        if missing > 0 {
            return Err(format!("{missing} {kind} mail(s) with a {marker} link were not sent"));
        }
        Ok(tokens.into_iter().flatten().collect())
    }

    fn outbox_tokens(&self, marker: &str, addresses: &[String]) -> Vec<Option<String>> {
        let mut newest: HashMap<String, String> = HashMap::new();
        // Newest first: the first link seen for an address is its newest.
        for message in self.harness.iam.outbox() {
            let Some(token) = message.links().iter().find_map(|l| l.split_once(marker).map(|(_, t)| t.to_owned()))
            else {
                continue;
            };
            for to in &message.to {
                newest.entry(to.clone()).or_insert_with(|| token.clone());
            }
        }
        addresses.iter().map(|a| newest.get(a).cloned()).collect()
    }

    async fn verify(&mut self, addresses: &[String]) -> Result<(), String> {
        for token in self.mail_tokens("verify_email", VERIFY_LINK, addresses).await? {
            let event = self.event("email-verify", &[], Some(json!({"token": token})))?;
            self.http("email-verify", event, 200).await?;
        }
        Ok(())
    }

    /// A login's access and refresh tokens.
    async fn login(&mut self, address: &str) -> Result<(String, String), String> {
        let event = self.event("login", &[], Some(json!({"email": address, "password": PASSWORD})))?;
        let answer = self.http("login", event, 200).await?;
        let token = |name: &str| answer[name].as_str().map(str::to_owned).ok_or(format!("login: no {name}"));
        Ok((token("access_token")?, token("refresh_token")?))
    }

    /// Login's user, verified: register's first sign-up (verified here when email-verify did
    /// not run), or one signed up and verified here when register did not run.
    async fn ensure_user(&mut self) -> Result<(), String> {
        let address = match self.flow.email.clone() {
            Some(address) => address,
            None => {
                let address = self.flow.address("u", 1);
                let id = self.sign_up(std::slice::from_ref(&address)).await?.remove(0);
                self.flow.email = Some(address.clone());
                self.flow.user_id = Some(id);
                address
            }
        };
        if !self.flow.email_verified {
            self.verify(std::slice::from_ref(&address)).await?;
            self.flow.email_verified = true;
        }
        Ok(())
    }

    /// `n` new accounts, signed up, verified and logged in.
    async fn accounts(&mut self, tag: &str, n: usize) -> Result<Vec<Account>, String> {
        let addresses = self.flow.addresses(tag, n);
        let ids = self.sign_up(&addresses).await?;
        self.verify(&addresses).await?;
        let mut accounts = Vec::new();
        for (email, user_id) in addresses.into_iter().zip(ids) {
            let (access_token, _) = self.login(&email).await?;
            accounts.push(Account { email, user_id, access_token });
        }
        Ok(accounts)
    }

    /// `n` pending mails (resend requests for addresses with no account), for the mailer's
    /// reference: their `OUTBOX#` keys.
    async fn pending_mail(&mut self, tag: &str, n: usize) -> Result<Vec<String>, String> {
        let addresses = self.flow.addresses(tag, n);
        for address in &addresses {
            let event = self.event("email-verify-resend", &[], Some(json!({"email": address})))?;
            self.http("email-verify-resend", event, 202).await?;
        }
        let records = self.pump.take("verification_requested", &addresses).await?;
        let pk = |r: &Value| r["dynamodb"]["Keys"]["pk"]["S"].as_str().map(str::to_owned);
        records.iter().map(|r| pk(r).ok_or_else(|| "a stream record without pk".to_owned())).collect()
    }

    fn prepare_events(&mut self, events: Vec<Value>, expect: Expect) {
        self.flow.prepared =
            events.into_iter().map(|e| Invocation { event: Bytes::from(e.to_string()), expect }).collect();
    }

    /// Prepares `n` invocations of `case` and, when `runs` > 0, the input of its reference
    /// operation (one more piece of state than `runs`: the reference's untimed warm-up uses one).
    pub async fn prepare(&mut self, case: &Case, n: usize, runs: usize) -> Result<Input, String> {
        let mut input = Input::default();
        let spare = if runs > 0 { runs + 1 } else { 0 };
        match case.label {
            // A family of its own at each point: the reference rotated the last one on (and login
            // may not have run).
            "refresh" => {
                self.ensure_user().await?;
                let email = self.flow.email.clone().ok_or("no registered user")?;
                let (_, refresh_token) = self.login(&email).await?;
                self.flow.refresh_token = Some(refresh_token);
            }
            "mailer (sign-up)" => {
                // Register's sign-ups, and more when the mailer runs more often than register.
                let unmailed = self.flow.signups.len() - self.flow.mailed;
                let extra = self.flow.addresses("s", n.saturating_sub(unmailed));
                self.sign_up(&extra).await?;
                self.flow.signups.extend(extra);
                let to = self.flow.signups[self.flow.mailed..self.flow.mailed + n].to_vec();
                self.flow.mailed += n;
                let records = self.pump.take("verify_email", &to).await?;
                let events = records.iter().map(|r| localdev::stream::event(std::slice::from_ref(r))).collect();
                self.prepare_events(events, Expect::NoBatchFailures);
                self.flow.verify_pending.extend(to);
                if spare > 0 {
                    input.outbox_ids = self.pending_mail("mb", spare).await?;
                }
            }
            "email-verify" => {
                if self.flow.verify_pending.len() < n {
                    return Err("email-verify: fewer sign-up mails sent than needed".to_owned());
                }
                let to: Vec<String> = self.flow.verify_pending.drain(..n).collect();
                // These events run next: login's user, register's first sign-up, is among them.
                self.flow.email_verified |= self.flow.email.as_ref().is_some_and(|e| to.contains(e));
                let tokens = self.mail_tokens("verify_email", VERIFY_LINK, &to).await?;
                let events = tokens
                    .iter()
                    .map(|t| self.event("email-verify", &[], Some(json!({"token": t}))))
                    .collect::<Result<_, _>>()?;
                self.prepare_events(events, Expect::Status(200));
                if spare > 0 {
                    let addresses = self.flow.addresses("vb", spare);
                    self.sign_up(&addresses).await?;
                    input.mail_tokens = self.mail_tokens("verify_email", VERIFY_LINK, &addresses).await?;
                }
            }
            "logout" => {
                let account = self.accounts("lo", 1).await?.remove(0);
                let mut tokens = Vec::new();
                for _ in 0..n + spare {
                    tokens.push(self.login(&account.email).await?.1);
                }
                input.refresh_tokens = tokens.split_off(n);
                let events = tokens
                    .iter()
                    .map(|t| self.event("logout", &[], Some(json!({"refresh_token": t}))))
                    .collect::<Result<_, _>>()?;
                self.prepare_events(events, Expect::Status(204));
            }
            "logout-all" => {
                let account = self.accounts("la", 1).await?.remove(0);
                let event = self.event("logout-all", &[("access_token", &account.access_token)], None)?;
                self.prepare_events(vec![event; n], Expect::Status(204));
                input.user_id = Some(account.user_id);
            }
            "email-verify-resend" | "password-forgot" => {
                let (tag, route) = if case.binary == "password-forgot" {
                    ("fg", "password-forgot")
                } else {
                    ("rs", "email-verify-resend")
                };
                let events = self
                    .flow
                    .addresses(tag, n)
                    .into_iter()
                    .map(|a| self.event(route, &[], Some(json!({"email": a}))))
                    .collect::<Result<_, _>>()?;
                self.prepare_events(events, Expect::Status(202));
                input.emails = self.flow.addresses(&format!("{tag}b"), spare);
            }
            "mailer (reset)" => {
                let addresses = self.flow.addresses("rp", n);
                self.sign_up(&addresses).await?;
                for address in &addresses {
                    let event = self.event("password-forgot", &[], Some(json!({"email": address})))?;
                    self.http("password-forgot", event, 202).await?;
                }
                let records = self.pump.take("reset_requested", &addresses).await?;
                let events = records.iter().map(|r| localdev::stream::event(std::slice::from_ref(r))).collect();
                self.prepare_events(events, Expect::NoBatchFailures);
                if spare > 0 {
                    input.outbox_ids = self.pending_mail("mrb", spare).await?;
                    input.account_email = addresses.first().cloned();
                }
                self.flow.reset_pending.extend(addresses);
            }
            "password-reset" => {
                if self.flow.reset_pending.len() < n {
                    return Err("password-reset: fewer reset mails sent than needed (run it in the same part as \"mailer (reset)\")".to_owned());
                }
                let to: Vec<String> = self.flow.reset_pending.drain(..n).collect();
                let tokens = self.mail_tokens("reset_requested", RESET_LINK, &to).await?;
                let events = tokens
                    .iter()
                    .map(|t| self.event("password-reset", &[], Some(json!({"token": t, "password": NEW_PASSWORD}))))
                    .collect::<Result<_, _>>()?;
                self.prepare_events(events, Expect::Status(204));
            }
            "password-change" | "email-change" | "delete-user" => {
                let tag = match case.binary {
                    "password-change" => "pc",
                    "email-change" => "ec",
                    _ => "du",
                };
                let accounts = self.accounts(tag, n).await?;
                let mut events = Vec::new();
                for account in &accounts {
                    let body = match case.binary {
                        "password-change" => json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD}),
                        "email-change" => json!({"new_email": self.flow.addresses("ne", 1)[0], "password": PASSWORD}),
                        _ => json!({"password": PASSWORD}),
                    };
                    events.push(self.event(case.binary, &[("access_token", &account.access_token)], Some(body))?);
                }
                let status = match case.binary {
                    "password-change" => 200,
                    "email-change" => 202,
                    _ => 204,
                };
                self.prepare_events(events, Expect::Status(status));
            }
            // Login's user is the first one register signed up and email-verify verified; when
            // those did not run (a run of some cases only), one signed up and verified here.
            "login" => self.ensure_user().await?,
            // The tokens login left; logged in here when login did not run.
            "get-user" if self.flow.access_token.is_none() => {
                self.ensure_user().await?;
                let email = self.flow.email.clone().ok_or("no registered user")?;
                self.flow.access_token = Some(self.login(&email).await?.0);
            }
            // The chained cases prepare nothing.
            _ => {}
        }
        Ok(input)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events() -> Events {
        Events::load(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events")).unwrap()
    }

    #[test]
    fn given_a_bearer_fixture_when_building_then_the_token_fills_both_header_forms_and_the_body_is_replaced() {
        let event =
            events().build("delete-user", &[("access_token", "a.b.c")], Some(json!({"password": "p"}))).unwrap();
        assert_eq!(event["headers"]["Authorization"], "Bearer a.b.c");
        assert_eq!(event["multiValueHeaders"]["Authorization"], json!(["Bearer a.b.c"]));
        assert_eq!(event["body"], r#"{"password":"p"}"#);
        assert!(!event.to_string().contains("{{"), "{event}");
    }

    #[test]
    fn given_answers_when_accepting_then_only_the_expected_ones_pass() {
        let mut flow = Flow::default();
        let case = CASES[1];
        let batch = Invocation { event: Bytes::new(), expect: Expect::NoBatchFailures };
        assert!(flow.accept(&case, &batch, br#"{"batchItemFailures":[]}"#).is_ok());
        assert!(flow.accept(&case, &batch, br#"{"batchItemFailures":[{"itemIdentifier":"1"}]}"#).is_err());
        let logout = CASES.iter().find(|c| c.label == "logout").unwrap();
        let http = Invocation { event: Bytes::new(), expect: Expect::Status(204) };
        assert_eq!(flow.accept(logout, &http, br#"{"statusCode":204}"#).unwrap(), "status 204");
        assert!(flow.accept(logout, &http, br#"{"statusCode":401,"body":"{}"}"#).is_err());
    }
}
