//! The one error type at the edge and its mapping to a status code and an RFC 9457
//! `application/problem+json` body.
//!
//! Expected failures (bad input, wrong password, taken email…) are values of [`ApiError`] and
//! become ordinary responses; they are never Lambda invocation errors. Dependency and internal
//! failures are logged once, with their cause chain, where the response is built, and the client
//! only sees a generic message.

use std::error::Error as StdError;
use std::fmt;

use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use http::StatusCode;
use serde::Serialize;

pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// Seconds a client should wait before retrying after a `503`.
pub const RETRY_AFTER_SECONDS: u32 = 2;

/// A failed call to DynamoDB or Secrets Manager.
#[derive(Debug, thiserror::Error)]
pub enum DependencyError {
    /// Throttling, a 5xx, a timeout or a connection failure that outlived the SDK's retries:
    /// worth retrying later, answered `503` with `Retry-After`.
    #[error("{service} is unavailable")]
    Unavailable {
        service: &'static str,
        #[source]
        source: BoxError,
    },
    /// Anything else (a misconfigured table or secret, a malformed item): a bug or an operator
    /// error, answered `500`.
    #[error("{service} call failed")]
    Failed {
        service: &'static str,
        #[source]
        source: BoxError,
    },
}

/// Service error codes that mean "try again later" in DynamoDB and Secrets Manager.
const TRANSIENT_CODES: &[&str] = &[
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "InternalServiceError",
    "InternalFailure",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "TransactionInProgressException",
    "LimitExceededException",
];

impl DependencyError {
    pub fn from_sdk<E>(service: &'static str, err: SdkError<E, HttpResponse>) -> Self
    where
        E: ProvideErrorMetadata + StdError + Send + Sync + 'static,
    {
        let transient = match &err {
            SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => true,
            SdkError::ServiceError(service_err) => {
                service_err.raw().status().is_server_error()
                    || service_err.err().code().is_some_and(|code| TRANSIENT_CODES.contains(&code))
            }
            _ => false,
        };
        let source: BoxError = Box::new(err);
        if transient {
            Self::Unavailable { service, source }
        } else {
            Self::Failed { service, source }
        }
    }

    pub fn failed(service: &'static str, source: impl Into<BoxError>) -> Self {
        Self::Failed { service, source: source.into() }
    }
}

/// The problem type of [`ApiError::AccountLocked`]: a tag URI (RFC 4151), which RFC 9457 allows
/// for types that are identifiers rather than documentation pages.
pub const ACCOUNT_LOCKED_TYPE: &str = "tag:serverless-auth,2026:problems:account-locked";
/// The problem type of a login refused because the account's email is not verified yet.
pub const EMAIL_NOT_VERIFIED_TYPE: &str = "tag:serverless-auth,2026:problems:email-not-verified";

/// One entry of a `422` problem's `errors` array.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self { field: field.into(), message: message.into() }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("bad request: {0}")]
    BadRequest(&'static str),
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("request body too large")]
    PayloadTooLarge,
    #[error("invalid fields")]
    Validation(Vec<FieldError>),
    #[error("email already registered")]
    EmailTaken,
    #[error("invalid credentials")]
    InvalidCredentials,
    /// Too many consecutive failed logins for one email from this network; retry after this
    /// many seconds.
    #[error("login throttled for {0} s")]
    TooManyAttempts(u64),
    /// The account reached its limit of consecutive failures and this network is not one it
    /// logged in from recently: no retry helps until a login from such a network (or a reset).
    #[error("account locked for this network")]
    AccountLocked,
    #[error("invalid refresh token: {0}")]
    InvalidRefreshToken(&'static str),
    /// The right password, for an account whose email is not verified (`RequireVerifiedEmail`).
    #[error("email not verified")]
    EmailNotVerified,
    /// A mailed link's token that is unknown, expired, used or superseded.
    #[error("invalid mail token: {0}")]
    InvalidMailToken(&'static str),
    /// A `resend` or `forgot` request within the email's cooldown, or over its daily cap; retry
    /// after this many seconds.
    #[error("mail request limited for {0} s")]
    TooManyMailRequests(u64),
    /// No bearer token at all: RFC 6750 §3.1 says to send a bare challenge.
    #[error("missing access token")]
    MissingAccessToken,
    /// The reason is for logs only; clients get one generic answer.
    #[error("invalid access token: {0}")]
    InvalidAccessToken(&'static str),
    #[error("access to another user's resource")]
    Forbidden,
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed(&'static str),
    /// `GET /health` found a dependency unusable; the report marks which.
    #[error("unhealthy")]
    Unhealthy(crate::health::Report),
    #[error(transparent)]
    Dependency(#[from] DependencyError),
    #[error("internal error")]
    Internal(#[source] BoxError),
}

/// An RFC 9457 problem details body.
#[derive(Debug, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub title: &'static str,
    pub status: u16,
    pub detail: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors: Option<Vec<FieldError>>,
    /// `GET /health`'s checks, the failing ones marked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<std::collections::BTreeMap<&'static str, crate::health::Check>>,
}

impl ApiError {
    /// A `422` about one field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        Self::Validation(vec![FieldError::new(field, message)])
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Validation(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::EmailTaken => StatusCode::CONFLICT,
            Self::InvalidCredentials
            | Self::InvalidRefreshToken(_)
            | Self::MissingAccessToken
            | Self::InvalidAccessToken(_)
            | Self::InvalidMailToken(_) => StatusCode::UNAUTHORIZED,
            Self::TooManyAttempts(_) | Self::AccountLocked | Self::TooManyMailRequests(_) => {
                StatusCode::TOO_MANY_REQUESTS
            }
            Self::Forbidden | Self::EmailNotVerified => StatusCode::FORBIDDEN,
            Self::NotFound => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
            Self::Dependency(DependencyError::Unavailable { .. }) | Self::Unhealthy(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::Dependency(DependencyError::Failed { .. }) | Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Headers that belong to this error: challenges, `Allow`, `Retry-After`.
    pub fn headers(&self) -> Vec<(http::HeaderName, String)> {
        use http::header::{ALLOW, RETRY_AFTER, WWW_AUTHENTICATE};
        match self {
            Self::MissingAccessToken => vec![(WWW_AUTHENTICATE, "Bearer".into())],
            Self::InvalidAccessToken(_) => vec![(WWW_AUTHENTICATE, r#"Bearer error="invalid_token""#.into())],
            Self::MethodNotAllowed(allow) => vec![(ALLOW, (*allow).into())],
            Self::TooManyAttempts(seconds) | Self::TooManyMailRequests(seconds) => {
                vec![(RETRY_AFTER, seconds.to_string())]
            }
            Self::Dependency(DependencyError::Unavailable { .. }) => {
                vec![(RETRY_AFTER, RETRY_AFTER_SECONDS.to_string())]
            }
            Self::Unhealthy(_) => vec![(RETRY_AFTER, crate::health::CACHE_FOR.as_secs().to_string())],
            _ => Vec::new(),
        }
    }

    /// Whether this is our fault rather than the client's: logged as an error with its causes.
    pub fn is_server_error(&self) -> bool {
        self.status().is_server_error()
    }

    pub fn problem(&self) -> Problem {
        let status = self.status();
        let detail: String = match self {
            Self::BadRequest(reason) => (*reason).into(),
            Self::UnsupportedMediaType => "The request body must be sent as application/json.".into(),
            Self::PayloadTooLarge => {
                format!("The request body must not exceed {} bytes.", crate::http::MAX_BODY_BYTES)
            }
            Self::Validation(_) => "One or more fields are invalid; see errors.".into(),
            Self::EmailTaken => "An account with this email address already exists.".into(),
            Self::InvalidCredentials => "The email address or password is incorrect.".into(),
            Self::TooManyAttempts(_) => {
                "Too many failed sign-in attempts for this account. Retry after the number of seconds in Retry-After."
                    .into()
            }
            Self::AccountLocked => "Too many failed sign-in attempts for this account. Sign in from a device you used \
                 recently, or reset the password."
                .into(),
            Self::InvalidRefreshToken(_) => "The refresh token is invalid, expired, revoked or already used.".into(),
            Self::EmailNotVerified => "The email address of this account is not verified yet. Follow the link mailed \
                 to it, or ask for a new one."
                .into(),
            Self::InvalidMailToken(_) => "The link is invalid, expired or already used. Ask for a new one.".into(),
            Self::TooManyMailRequests(_) => {
                "A mail was requested for this address too recently or too often. Retry after the number of \
                 seconds in Retry-After."
                    .into()
            }
            Self::MissingAccessToken | Self::InvalidAccessToken(_) => "A valid bearer access token is required.".into(),
            Self::Forbidden => "An access token only grants access to its own user.".into(),
            Self::NotFound => "The requested resource does not exist.".into(),
            Self::MethodNotAllowed(allow) => format!("This resource only supports {allow}."),
            Self::Dependency(DependencyError::Unavailable { .. }) => {
                "The service is temporarily unavailable. Please retry later.".into()
            }
            Self::Unhealthy(_) => "A dependency of the service is unavailable; see checks.".into(),
            Self::Dependency(DependencyError::Failed { .. }) | Self::Internal(_) => {
                "The request could not be processed.".into()
            }
        };
        Problem {
            kind: match self {
                Self::AccountLocked => ACCOUNT_LOCKED_TYPE,
                Self::EmailNotVerified => EMAIL_NOT_VERIFIED_TYPE,
                _ => "about:blank",
            },
            title: match self {
                Self::AccountLocked => "Account Locked",
                Self::EmailNotVerified => "Email Not Verified",
                _ => status.canonical_reason().unwrap_or("Error"),
            },
            status: status.as_u16(),
            detail,
            errors: match self {
                Self::Validation(errors) => Some(errors.clone()),
                _ => None,
            },
            checks: match self {
                Self::Unhealthy(report) => Some(report.checks.clone()),
                _ => None,
            },
        }
    }
}

/// Displays an error with its whole `source()` chain: `a: b: c`.
pub struct Chain<'a>(pub &'a (dyn StdError + 'static));

impl fmt::Display for Chain<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(cause) = source {
            write!(f, ": {cause}")?;
            source = cause.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_each_error_when_mapped_then_status_and_problem_agree() {
        let cases = [
            (ApiError::BadRequest("x"), 400),
            (ApiError::UnsupportedMediaType, 415),
            (ApiError::PayloadTooLarge, 413),
            (ApiError::Validation(vec![FieldError::new("email", "bad")]), 422),
            (ApiError::EmailTaken, 409),
            (ApiError::InvalidCredentials, 401),
            (ApiError::InvalidRefreshToken("unknown"), 401),
            (ApiError::InvalidAccessToken("expired"), 401),
            (ApiError::TooManyAttempts(4), 429),
            (ApiError::AccountLocked, 429),
            (ApiError::Forbidden, 403),
            (ApiError::NotFound, 404),
            (ApiError::MethodNotAllowed("POST"), 405),
            (ApiError::Dependency(DependencyError::Unavailable { service: "DynamoDB", source: "boom".into() }), 503),
            (ApiError::Internal("boom".into()), 500),
        ];
        for (error, status) in cases {
            let problem = error.problem();
            assert_eq!(problem.status, status);
            assert_eq!(error.status().as_u16(), status);
            assert!(!problem.title.is_empty() && !problem.detail.is_empty());
        }
    }

    #[test]
    fn given_internal_failures_when_mapped_then_nothing_internal_leaks() {
        let error = ApiError::Dependency(DependencyError::Failed {
            service: "DynamoDB",
            source: "ResourceNotFoundException: table auth-prod not found".into(),
        });
        let body = serde_json::to_string(&error.problem()).unwrap();
        assert!(!body.contains("auth-prod") && !body.contains("DynamoDB"), "{body}");
    }

    #[test]
    fn given_an_unavailable_dependency_when_mapped_then_retry_after_is_sent() {
        let error =
            ApiError::Dependency(DependencyError::Unavailable { service: "Secrets Manager", source: "timeout".into() });
        assert!(error.headers().iter().any(|(name, _)| name == http::header::RETRY_AFTER));
    }

    #[test]
    fn given_a_nested_error_when_displayed_then_the_chain_is_shown() {
        let error = DependencyError::Unavailable { service: "DynamoDB", source: "connection refused".into() };
        assert_eq!(Chain(&error).to_string(), "DynamoDB is unavailable: connection refused");
    }
}
