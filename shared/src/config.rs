//! Typed configuration read once from environment variables at cold start.
//!
//! A missing required variable or an unparsable value fails fast, naming the variable, so a
//! misconfigured deployment shows the cause in its first init log line.

use std::time::Duration;

use crate::domain::PasswordPolicy;
use crate::keyring::SigningAlgorithm;

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("environment variable {0} is required but not set")]
    Missing(&'static str),
    #[error("environment variable {name} has an invalid value: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// Who issues access tokens: the `iss` claim every token carries and every verifier requires.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Issuer {
    /// `TOKEN_ISSUER`: a custom domain's URL (locally, the local gateway's base URL).
    Fixed(String),
    /// The API's own URL, `https://{apiId}.execute-api.{region}.{URL suffix}/{stage}`, taken from
    /// each request's context: the functions cannot be told it by the template, which would make
    /// them depend on the API that depends on them.
    ExecuteApi { region: String, url_suffix: String },
}

/// What the token code needs: who issues tokens, for whom, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenSettings {
    /// An error when `TOKEN_ISSUER` is empty and the region or URL suffix to compute it is
    /// missing: only the functions that issue or verify tokens need it ([`TokenSettings::issuer`]).
    issuer: Result<Issuer, ConfigError>,
    pub audience: String,
    pub access_ttl: Duration,
    pub refresh_ttl: Duration,
}

impl TokenSettings {
    pub fn new(issuer: Issuer, audience: String, access_ttl: Duration, refresh_ttl: Duration) -> Self {
        Self { issuer: Ok(issuer), audience, access_ttl, refresh_ttl }
    }

    /// Who issues tokens; fails, naming the variable, when neither `TOKEN_ISSUER` nor the
    /// region and URL suffix that make the default are set.
    pub fn issuer(&self) -> Result<&Issuer, ConfigError> {
        self.issuer.as_ref().map_err(Clone::clone)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub table_name: String,
    throttle_key_secret_id: Option<String>,
    pub tokens: TokenSettings,
    pub password_policy: PasswordPolicy,
    pub key_cache_ttl: Duration,
    /// How long the refresh token just replaced may be presented again for the current one
    /// (0: never; any earlier token revokes the family).
    pub refresh_reuse_grace: Duration,
    /// `*` or one exact origin, echoed in `Access-Control-Allow-Origin`.
    pub cors_allowed_origin: Option<String>,
    pub mail: MailSettings,
    /// Whether login refuses an account whose email is not verified (`403`).
    pub require_verified_email: bool,
    pub key_ring: KeyRingSettings,
}

/// What the signing key ring's rotation needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRingSettings {
    key_ring_secret_id: Option<String>,
    jwks_secret_id: Option<String>,
    /// What tokens are signed with, what the rotation makes keys for, what verification accepts.
    pub algorithm: SigningAlgorithm,
    /// How long verifiers may cache the JWKS (its `Cache-Control: max-age`).
    pub jwks_max_age: Duration,
    /// How long after a key is written to the JWKS secret it may sign: `jwks_max_age`, plus
    /// `KEY_CACHE_TTL_SECONDS`, for which the JWKS route may still serve the set it read before.
    /// Every verifier that honours the max-age holds the key by then.
    pub signing_delay: Duration,
}

impl KeyRingSettings {
    /// The private key ring's secret.
    pub fn key_ring_secret_id(&self) -> Result<&str, ConfigError> {
        self.key_ring_secret_id.as_deref().ok_or(ConfigError::Missing("KEY_RING_SECRET_ID"))
    }

    /// The public-only secret holding the JWKS.
    pub fn jwks_secret_id(&self) -> Result<&str, ConfigError> {
        self.jwks_secret_id.as_deref().ok_or(ConfigError::Missing("JWKS_SECRET_ID"))
    }
}

/// What the functions that write or send mail need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailSettings {
    mail_key_secret_id: Option<String>,
    sender: Option<String>,
    app_base_url: Option<String>,
    /// How long a link of each purpose works.
    pub verify_email_ttl: Duration,
    pub change_email_ttl: Duration,
    pub reset_password_ttl: Duration,
}

impl MailSettings {
    /// The secret of the key mail-link tokens are derived with.
    pub fn key_secret_id(&self) -> Result<&str, ConfigError> {
        self.mail_key_secret_id.as_deref().ok_or(ConfigError::Missing("MAIL_KEY_SECRET_ID"))
    }

    /// The `From` address (an SES identity).
    pub fn sender(&self) -> Result<&str, ConfigError> {
        self.sender.as_deref().ok_or(ConfigError::Missing("SENDER_EMAIL"))
    }

    /// The client app links point at.
    pub fn app_base_url(&self) -> Result<&str, ConfigError> {
        self.app_base_url.as_deref().ok_or(ConfigError::Missing("APP_BASE_URL"))
    }
}

pub const DEFAULT_AUDIENCE: &str = "serverless-auth";

impl Config {
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads configuration through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &'static str| lookup(name).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());
        let number = |name: &'static str, default: u64, min: u64, max: u64| -> Result<u64, ConfigError> {
            match get(name) {
                None => Ok(default),
                Some(raw) => {
                    let value: u64 = raw.parse().map_err(|_| ConfigError::Invalid {
                        name,
                        reason: format!("expected a whole number, got {raw:?}"),
                    })?;
                    if (min..=max).contains(&value) {
                        Ok(value)
                    } else {
                        Err(ConfigError::Invalid {
                            name,
                            reason: format!("must be between {min} and {max}, got {value}"),
                        })
                    }
                }
            }
        };

        let min_length = number("PASSWORD_MIN_LENGTH", 15, 8, 64)?;
        let jwks_max_age = Duration::from_secs(number("JWKS_MAX_AGE_SECONDS", 3_600, 60, 86_400)?);
        let key_cache_ttl = Duration::from_secs(number("KEY_CACHE_TTL_SECONDS", 300, 0, 3600)?);
        Ok(Self {
            table_name: get("TABLE_NAME").ok_or(ConfigError::Missing("TABLE_NAME"))?,
            throttle_key_secret_id: get("THROTTLE_KEY_SECRET_ID"),
            tokens: TokenSettings {
                issuer: match get("TOKEN_ISSUER") {
                    Some(url) if !(url.starts_with("https://") || url.starts_with("http://")) || url.ends_with('/') => {
                        return Err(ConfigError::Invalid {
                            name: "TOKEN_ISSUER",
                            reason: "must be an http(s) URL without a trailing slash, or empty".into(),
                        })
                    }
                    Some(url) => Ok(Issuer::Fixed(url)),
                    None => match (get("AWS_REGION"), get("URL_SUFFIX")) {
                        (Some(region), Some(url_suffix)) => Ok(Issuer::ExecuteApi { region, url_suffix }),
                        (None, _) => Err(ConfigError::Missing("AWS_REGION")),
                        (_, None) => Err(ConfigError::Missing("URL_SUFFIX")),
                    },
                },
                audience: get("TOKEN_AUDIENCE").unwrap_or_else(|| DEFAULT_AUDIENCE.to_owned()),
                access_ttl: Duration::from_secs(number("ACCESS_TOKEN_TTL_SECONDS", 900, 60, 3600)?),
                refresh_ttl: Duration::from_secs(number("REFRESH_TOKEN_TTL_SECONDS", 604_800, 60, 2_592_000)?),
            },
            password_policy: PasswordPolicy::new(min_length as usize),
            key_cache_ttl,
            refresh_reuse_grace: Duration::from_secs(number("REFRESH_REUSE_GRACE_SECONDS", 10, 0, 300)?),
            cors_allowed_origin: get("CORS_ALLOWED_ORIGIN"),
            mail: MailSettings {
                mail_key_secret_id: get("MAIL_KEY_SECRET_ID"),
                sender: get("SENDER_EMAIL"),
                app_base_url: match get("APP_BASE_URL") {
                    Some(url) if !(url.starts_with("https://") || url.starts_with("http://")) => {
                        return Err(ConfigError::Invalid {
                            name: "APP_BASE_URL",
                            reason: "must be an http(s) URL".into(),
                        })
                    }
                    url => url,
                },
                verify_email_ttl: Duration::from_secs(number("VERIFY_EMAIL_TTL_SECONDS", 86_400, 300, 604_800)?),
                change_email_ttl: Duration::from_secs(number("CHANGE_EMAIL_TTL_SECONDS", 86_400, 300, 604_800)?),
                reset_password_ttl: Duration::from_secs(number("RESET_PASSWORD_TTL_SECONDS", 3_600, 300, 86_400)?),
            },
            require_verified_email: match get("REQUIRE_VERIFIED_EMAIL").as_deref() {
                None | Some("true") => true,
                Some("false") => false,
                Some(other) => {
                    return Err(ConfigError::Invalid {
                        name: "REQUIRE_VERIFIED_EMAIL",
                        reason: format!("expected true or false, got {other:?}"),
                    })
                }
            },
            key_ring: KeyRingSettings {
                key_ring_secret_id: get("KEY_RING_SECRET_ID"),
                jwks_secret_id: get("JWKS_SECRET_ID"),
                algorithm: match get("SIGNING_ALGORITHM") {
                    None => SigningAlgorithm::Es256,
                    Some(name) => SigningAlgorithm::parse(&name).ok_or_else(|| ConfigError::Invalid {
                        name: "SIGNING_ALGORITHM",
                        reason: format!("expected ES256 or RS256, got {name:?}"),
                    })?,
                },
                jwks_max_age,
                signing_delay: jwks_max_age + key_cache_ttl,
            },
        })
    }

    /// The throttle-key secret is only needed by the functions that derive keys from it.
    pub fn throttle_key_secret_id(&self) -> Result<&str, ConfigError> {
        self.throttle_key_secret_id.as_deref().ok_or(ConfigError::Missing("THROTTLE_KEY_SECRET_ID"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let vars: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn given_only_the_table_when_loading_then_documented_defaults_apply() {
        let config = config(&[("TABLE_NAME", "auth")]).unwrap();
        assert_eq!(config.table_name, "auth");
        assert_eq!(config.tokens.access_ttl, Duration::from_secs(900));
        assert_eq!(config.tokens.refresh_ttl, Duration::from_secs(7 * 24 * 3600));
        assert_eq!(config.password_policy.min_length(), 15);
        assert_eq!(config.key_cache_ttl, Duration::from_secs(300));
        assert_eq!(config.refresh_reuse_grace, Duration::from_secs(10));
        assert_eq!(config.key_ring.key_ring_secret_id(), Err(ConfigError::Missing("KEY_RING_SECRET_ID")));
        assert_eq!(config.key_ring.jwks_max_age, Duration::from_secs(3600));
        assert_eq!(config.key_ring.signing_delay, Duration::from_secs(3600 + 300));
        assert_eq!(config.key_ring.algorithm, SigningAlgorithm::Es256);
        assert_eq!(config.tokens.issuer(), Err(ConfigError::Missing("AWS_REGION")));
        assert_eq!(config.mail.verify_email_ttl, Duration::from_secs(24 * 3600));
        assert_eq!(config.mail.change_email_ttl, Duration::from_secs(24 * 3600));
        assert_eq!(config.mail.reset_password_ttl, Duration::from_secs(3600));
        assert!(config.require_verified_email);
        assert_eq!(config.mail.sender(), Err(ConfigError::Missing("SENDER_EMAIL")));
    }

    #[test]
    fn given_bad_mail_settings_when_loading_then_the_error_names_the_variable() {
        let err = config(&[("TABLE_NAME", "t"), ("REQUIRE_VERIFIED_EMAIL", "yes")]).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { name: "REQUIRE_VERIFIED_EMAIL", .. }));
        let err = config(&[("TABLE_NAME", "t"), ("APP_BASE_URL", "app.example.com")]).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { name: "APP_BASE_URL", .. }));
        let err = config(&[("TABLE_NAME", "t"), ("SIGNING_ALGORITHM", "HS256")]).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { name: "SIGNING_ALGORITHM", .. }));
        let rsa = config(&[("TABLE_NAME", "t"), ("SIGNING_ALGORITHM", "RS256")]).unwrap();
        assert_eq!(rsa.key_ring.algorithm, SigningAlgorithm::Rs256);
        let err = config(&[("TABLE_NAME", "t"), ("RESET_PASSWORD_TTL_SECONDS", "90000")]).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { name: "RESET_PASSWORD_TTL_SECONDS", .. }));
        let config = config(&[("TABLE_NAME", "t"), ("REQUIRE_VERIFIED_EMAIL", "false")]).unwrap();
        assert!(!config.require_verified_email);
    }

    #[test]
    fn given_no_table_when_loading_then_the_error_names_the_variable() {
        let err = config(&[]).unwrap_err();
        assert_eq!(err, ConfigError::Missing("TABLE_NAME"));
        assert!(err.to_string().contains("TABLE_NAME"));
    }

    #[test]
    fn given_out_of_range_or_garbage_numbers_when_loading_then_the_error_names_the_variable() {
        let err = config(&[("TABLE_NAME", "t"), ("PASSWORD_MIN_LENGTH", "7")]).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { name: "PASSWORD_MIN_LENGTH", .. }));
        let err = config(&[("TABLE_NAME", "t"), ("ACCESS_TOKEN_TTL_SECONDS", "soon")]).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid { name: "ACCESS_TOKEN_TTL_SECONDS", .. }));
    }

    #[test]
    fn given_overrides_when_loading_then_they_are_used() {
        let config = config(&[
            ("TABLE_NAME", "t"),
            ("KEY_RING_SECRET_ID", "ring"),
            ("PASSWORD_MIN_LENGTH", "8"),
            ("TOKEN_ISSUER", "https://auth.example.com"),
        ])
        .unwrap();
        assert_eq!(config.password_policy.min_length(), 8);
        assert_eq!(config.tokens.issuer(), Ok(&Issuer::Fixed("https://auth.example.com".into())));
        assert_eq!(config.key_ring.key_ring_secret_id(), Ok("ring"));
    }

    #[test]
    fn given_no_token_issuer_when_loading_then_the_api_url_is_made_from_the_region_and_url_suffix() {
        let config =
            config(&[("TABLE_NAME", "t"), ("AWS_REGION", "eu-west-1"), ("URL_SUFFIX", "amazonaws.com")]).unwrap();
        let expected = Issuer::ExecuteApi { region: "eu-west-1".into(), url_suffix: "amazonaws.com".into() };
        assert_eq!(config.tokens.issuer(), Ok(&expected));
        for bad in ["auth.example.com", "https://auth.example.com/"] {
            let err = self::config(&[("TABLE_NAME", "t"), ("TOKEN_ISSUER", bad)]).unwrap_err();
            assert!(matches!(err, ConfigError::Invalid { name: "TOKEN_ISSUER", .. }), "{bad}");
        }
    }
}
