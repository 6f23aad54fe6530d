//! `POST /password/forgot` `{"email"}` → `202`: a password reset link, if the address has an
//! account (decided by the mailer, off this path; see `shared::mail_requests`). `429` with `Retry-After` within a minute
//! of the previous request for the address, or after five in 24 hours.

/// What the handler needs; built once per cold start (see `shared::mail_requests`).
pub type Deps = shared::mail_requests::Deps<shared::mail_requests::Reset>;

#[cfg(test)]
mod tests {
    use super::*;
    use shared::aws::Clients;
    use shared::config::Config;
    use shared::keys::MailKeys;
    use shared::lambda::{Function, Service};
    use shared::mail::MailKey;
    use shared::testing::{assert_problem, error_fields, event, event_json, request_from, unreachable_aws};

    fn deps() -> Service<Deps> {
        let config = Config::from_lookup(|name| {
            ["TABLE_NAME", "MAIL_KEY_SECRET_ID"].contains(&name).then(|| "offline".to_owned())
        })
        .unwrap();
        let store = Deps::build(&config, &Clients::new(&unreachable_aws())).unwrap().store;
        Service::new(Deps::new(store, MailKeys::fixed(MailKey::new(&[5; 32]))), &config)
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
