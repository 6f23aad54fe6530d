//! `POST /register` `{"email","password","name"}` → `201` with the new user and a `Location`.

use http::Method;
use lambda_http::{Body, Request, Response};
use shared::domain::{DisplayName, Email, NewPassword, PasswordPolicy};
use shared::http::{json_response, require_method, respond, JsonFields, RequestMeta};
use shared::store::{Registration, Store, User};
use shared::{password, ApiError, Config};
use time::format_description::well_known::Rfc3339;

pub struct Deps {
    pub store: Store,
    pub policy: PasswordPolicy,
    pub cors_allowed_origin: Option<String>,
}

impl Deps {
    pub fn new(config: &Config, dynamodb: aws_sdk_dynamodb::Client) -> Self {
        Self {
            store: Store::new(dynamodb, &config.table_name),
            policy: config.password_policy,
            cors_allowed_origin: config.cors_allowed_origin.clone(),
        }
    }
}

pub async fn handle(req: Request, deps: &Deps) -> Response<Body> {
    let meta = RequestMeta::new(&req, deps.cors_allowed_origin.as_deref());
    respond(&meta, register(&req, deps).await)
}

struct Registrant {
    email: Email,
    name: DisplayName,
    password: NewPassword,
}

fn parse(req: &Request, policy: &PasswordPolicy) -> Result<Registrant, ApiError> {
    let mut fields = JsonFields::from_request(req, &["email", "password", "name"])?;
    let email = fields.parse("email", |raw| Email::parse(&raw));
    let name = fields.parse("name", |raw| DisplayName::parse(&raw));
    let password = fields.parse("password", |raw| NewPassword::parse(raw, policy, email.as_ref()));
    fields.finish()?;
    match (email, name, password) {
        (Some(email), Some(name), Some(password)) => Ok(Registrant { email, name, password }),
        _ => Err(ApiError::Internal("a field parsed without error yet has no value".into())),
    }
}

async fn register(req: &Request, deps: &Deps) -> Result<Response<Body>, ApiError> {
    require_method(req, &Method::POST)?;
    let Registrant { email, name, password } = parse(req, &deps.policy)?;

    // Hash before the write, also when the email turns out to be taken, so that a `409` costs
    // the same time as a `201`.
    let password_hash = password::hash(password).await?;
    let now = time::OffsetDateTime::now_utc().replace_nanosecond(0).unwrap_or_else(|_| time::OffsetDateTime::now_utc());
    let user = User {
        id: uuid::Uuid::new_v4().to_string(),
        email: email.to_string(),
        name: name.to_string(),
        created_at: now.format(&Rfc3339).map_err(|e| ApiError::Internal(e.into()))?,
    };
    match deps.store.register(&user, &email, &password_hash).await? {
        Registration::Created => {
            tracing::info!(event = "register", outcome = "created", user_id = %user.id, "user registered");
            let mut response = json_response(http::StatusCode::CREATED, &user)?;
            let location = http::HeaderValue::from_str(&format!("/users/{}", user.id)).map_err(|e| ApiError::Internal(e.into()))?;
            response.headers_mut().insert(http::header::LOCATION, location);
            Ok(response)
        }
        Registration::EmailTaken => {
            tracing::info!(event = "register", outcome = "email_taken", "registration refused");
            Err(ApiError::EmailTaken)
        }
    }
}
