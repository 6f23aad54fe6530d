//! `POST /password/forgot` `{"email"}` → `202`: a password reset link, if the address has an account (decided by the
//! mailer, off this path; see `shared::mail_requests`). `429` with `Retry-After` within a minute
//! of the previous request for the address, or after five in 24 hours.

use lambda_http::{Body, Request, Response};
use shared::aws::Clients;
use shared::config::{Config, ConfigError};
use shared::keys::MailKeys;
use shared::lambda::{Function, RequestLog};
use shared::mail::MailKind;
use shared::store::Store;
use shared::ApiError;

/// What the handler needs; built once per cold start.
pub struct Deps {
    pub store: Store,
    pub mail_keys: MailKeys,
}

impl Function for Deps {
    fn build(config: &Config, aws: &Clients) -> Result<Self, ConfigError> {
        Ok(Self {
            store: Store::new(aws.dynamodb.clone(), &config.table_name),
            mail_keys: MailKeys::from_secrets_manager(aws.secrets.clone(), config.mail.key_secret_id()?),
        })
    }

    /// Reads the mail key during init.
    async fn warm(&self) {
        self.mail_keys.prefetch().await;
    }

    async fn handle(&self, req: &Request, log: &mut RequestLog) -> Result<Response<Body>, ApiError> {
        shared::mail_requests::handle(req, &self.store, &self.mail_keys, MailKind::ResetRequested, log).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::lambda::Service;
    use shared::mail::MailKey;
    use shared::testing::{assert_problem, error_fields, event, event_json, request_from, unreachable_aws};

    fn deps() -> Service<Deps> {
        let config = Config::from_lookup(|name| {
            ["TABLE_NAME", "MAIL_KEY_SECRET_ID"].contains(&name).then(|| "offline".to_owned())
        })
        .unwrap();
        let mut deps = Deps::build(&config, &Clients::new(&unreachable_aws())).unwrap();
        deps.mail_keys = MailKeys::fixed(MailKey::new(&[5; 32]));
        Service::new(deps, &config)
    }

    #[tokio::test]
    async fn given_an_invalid_email_when_asking_then_422_names_it() {
        let (_, problem) = assert_problem(deps().call(event("password-forgot.invalid.json")).await, 422);
        assert_eq!(error_fields(&problem), ["email"]);
    }

    #[tokio::test]
    async fn given_an_unknown_field_when_asking_then_422_names_it() {
        let mut event = event_json("password-forgot.json");
        event["body"] = r#"{"email":"ada@example.com","admin":true}"#.into();
        let (_, problem) = assert_problem(deps().call(request_from(&event)).await, 422);
        assert_eq!(error_fields(&problem), ["admin"]);
    }

    #[tokio::test]
    async fn given_the_store_down_when_asking_then_503_with_retry_after() {
        let (headers, _) = assert_problem(deps().call(event("password-forgot.json")).await, 503);
        assert_eq!(headers["retry-after"], "2");
    }

    #[tokio::test]
    async fn given_the_wrong_method_when_asking_then_405() {
        let mut event = event_json("password-forgot.json");
        event["httpMethod"] = "GET".into();
        let (headers, _) = assert_problem(deps().call(request_from(&event)).await, 405);
        assert_eq!(headers["allow"], "POST");
    }
}
