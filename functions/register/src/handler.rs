//! `POST /register` `{"email","password","name"}` → `201` with the new user (`email_verified:
//! false`) and a `Location`. The same transaction writes the verification mail to the outbox,
//! with its link's token's hash: one DynamoDB call, and the mailer sends it off this path.

use std::time::Duration;

use http::Method;
use lambda_http::{Body, Request, Response};
use shared::aws::Clients;
use shared::config::ConfigError;
use shared::domain::{DisplayName, Email, NewPassword, PasswordPolicy, UserId};
use shared::http::{json_response, require_method, JsonFields};
use shared::keys::MailKeys;
use shared::lambda::{Function, RequestLog};
use shared::mail::{MailKind, OutboxId, Purpose};
use shared::store::{NewMail, NewMailToken, Registration, Store, User};
use shared::{password, ApiError, Config};
use time::format_description::well_known::Rfc3339;

/// What the handler needs; built once per cold start.
pub struct Deps {
    pub store: Store,
    pub policy: PasswordPolicy,
    pub mail_keys: MailKeys,
    /// How long the verification link works.
    pub verify_ttl: Duration,
}

impl Function for Deps {
    fn build(config: &Config, aws: &Clients) -> Result<Self, ConfigError> {
        Ok(Self {
            store: Store::new(aws.dynamodb(), &config.table_name),
            policy: config.password_policy,
            mail_keys: MailKeys::from_secrets_manager(aws.secrets(), config.mail.key_secret_id()?),
            verify_ttl: config.mail.verify_email_ttl,
        })
    }

    /// Reads the mail key, opens the DynamoDB connection and reserves argon2's working memory
    /// during init.
    async fn warm(&self) {
        tokio::join!(self.mail_keys.prefetch(), self.store.connect(1), shared::password::reserve_memory());
    }

    async fn handle(&self, req: &Request, log: &mut RequestLog) -> Result<Response<Body>, ApiError> {
        register(req, self, log).await
    }
}

/// A registration whose every field passed its rules.
pub struct Registrant {
    email: Email,
    name: DisplayName,
    password: NewPassword,
}

/// Reads the body: a `400`/`413`/`415` for an unreadable one, one `422` for every invalid field.
/// Public for the fuzz targets.
pub fn parse(req: &Request, policy: &PasswordPolicy) -> Result<Registrant, ApiError> {
    let mut fields = JsonFields::from_request(req, &["email", "password", "name"])?;
    let email = fields.parse("email", |raw| Email::parse(&raw));
    let name = fields.parse("name", |raw| DisplayName::parse(&raw));
    let password = fields.parse("password", |raw| NewPassword::parse(raw, policy, email.as_ref(), name.as_ref()));
    fields.finish()?;
    match (email, name, password) {
        (Some(email), Some(name), Some(password)) => Ok(Registrant { email, name, password }),
        _ => Err(ApiError::Internal("a field parsed without error yet has no value".into())),
    }
}

async fn register(req: &Request, deps: &Deps, log: &mut RequestLog) -> Result<Response<Body>, ApiError> {
    require_method(req, &Method::POST)?;
    let Registrant { email, name, password } = parse(req, &deps.policy)?;

    // Hash before the write, also when the email turns out to be taken, so that a `409` costs
    // the same time as a `201`.
    let (password_hash, mail_key) = tokio::join!(password::hash(password), deps.mail_keys.key());
    let (password_hash, mail_key) = (password_hash?, mail_key?);
    let now = time::OffsetDateTime::now_utc().replace_nanosecond(0).unwrap_or_else(|_| time::OffsetDateTime::now_utc());
    let user = User {
        id: UserId::generate(),
        email: email.to_string(),
        name: name.to_string(),
        created_at: now.format(&Rfc3339).map_err(|e| ApiError::Internal(e.into()))?,
        email_verified: false,
    };
    let mail = NewMail {
        id: OutboxId::generate(),
        kind: MailKind::VerifyEmail,
        to: &email,
        user_id: Some(user.id),
        now: now.unix_timestamp(),
    };
    let token_hash = mail_key.token(mail.id).hash();
    let token = NewMailToken {
        hash: &token_hash,
        purpose: Purpose::VerifyEmail,
        user_id: user.id,
        email: &email,
        previous_email: None,
        generation: 0,
        expires_at: now.unix_timestamp() + deps.verify_ttl.as_secs() as i64,
    };
    match deps.store.register(&user, &email, &password_hash, (&mail, &token)).await? {
        Registration::Created => {
            log.user(user.id);
            log.outcome("created");
            let mut response = json_response(http::StatusCode::CREATED, &user)?;
            let location = http::HeaderValue::from_str(&format!("/users/{}", user.id))
                .map_err(|e| ApiError::Internal(e.into()))?;
            response.headers_mut().insert(http::header::LOCATION, location);
            Ok(response)
        }
        Registration::EmailTaken => {
            log.outcome("email_taken");
            Err(ApiError::EmailTaken)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::lambda::Service;
    use shared::testing::{assert_problem, error_fields, event, event_json, request_from, unreachable_aws};

    fn deps() -> Service<Deps> {
        let config = Config::from_lookup(|name| {
            ["TABLE_NAME", "MAIL_KEY_SECRET_ID"].contains(&name).then(|| "offline".to_owned())
        })
        .unwrap();
        Service::new(Deps::build(&config, &Clients::new(&unreachable_aws())).unwrap(), &config)
    }

    #[tokio::test]
    async fn given_invalid_fields_when_registering_then_422_names_each_field() {
        for (fixture, field) in [
            ("register.invalid-email.json", "email"),
            ("register.weak-password.json", "password"),
            ("register.invalid-name.json", "name"),
            ("register.unknown-field.json", "admin"),
        ] {
            let (_, problem) = assert_problem(deps().call(event(fixture)).await, 422);
            assert_eq!(error_fields(&problem), [field], "{fixture}");
        }
    }

    #[tokio::test]
    async fn given_unreadable_bodies_when_registering_then_400_415_413() {
        for (fixture, status) in
            [("register.malformed.json", 400), ("register.not-json.json", 415), ("register.too-large.json", 413)]
        {
            assert_problem(deps().call(event(fixture)).await, status);
        }
    }

    #[tokio::test]
    async fn given_a_fixture_when_answering_then_the_request_id_is_echoed() {
        let event = event_json("register.invalid-email.json");
        let (headers, _) = assert_problem(deps().call(request_from(&event)).await, 422);
        assert_eq!(headers["x-request-id"], event["requestContext"]["requestId"].as_str().unwrap());
        assert_eq!(headers["cache-control"], "no-store");
    }

    #[tokio::test]
    async fn given_the_wrong_method_when_registering_then_405_with_allow() {
        let mut event = event_json("register.json");
        event["httpMethod"] = "GET".into();
        let (headers, _) = assert_problem(deps().call(request_from(&event)).await, 405);
        assert_eq!(headers["allow"], "POST");
    }

    #[tokio::test]
    async fn given_all_fields_missing_when_registering_then_every_field_is_listed() {
        let mut event = event_json("register.json");
        event["body"] = "{}".into();
        let (_, problem) = assert_problem(deps().call(request_from(&event)).await, 422);
        assert_eq!(error_fields(&problem), ["email", "name", "password"]);
    }

    #[tokio::test]
    async fn given_the_store_is_down_when_registering_then_503_with_retry_after() {
        let (headers, problem) = assert_problem(deps().call(event("register.json")).await, 503);
        assert_eq!(headers["retry-after"], "2");
        assert!(!problem.to_string().contains("127.0.0.1"), "{problem}");
    }
}
