//! The real `template.yaml` as localdev reads it.

use std::collections::BTreeMap;

use localdev::{LocalStack, QuotaPeriod, StackResources, Template, Throttle};

fn template_path() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../template.yaml")
}

fn load(overrides: &str) -> localdev::Result<Template> {
    Template::load_with_overrides(template_path(), overrides)
}

#[test]
fn routes_match_the_spec() {
    let routes = load("").unwrap().routes().unwrap();
    let summary: Vec<_> = routes
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str(), r.binary.as_str(), r.api_key_required, r.throttle))
        .collect();
    let t = |rate: f64, burst: i64| Some(Throttle { rate_limit: rate, burst_limit: burst });
    assert_eq!(
        summary,
        vec![
            ("POST", "/register", "register", true, t(50.0, 100)),
            ("POST", "/login", "login", true, t(120.0, 240)),
            ("POST", "/refresh", "refresh", true, t(120.0, 240)),
            ("GET", "/users/{id}", "get-user", true, t(120.0, 240)),
            ("GET", "/health", "health", true, t(10.0, 20)),
            // Public: verifiers send no API key.
            ("GET", "/.well-known/jwks.json", "jwks", false, t(20.0, 40)),
            ("GET", "/.well-known/openid-configuration", "jwks", false, t(20.0, 40)),
            ("POST", "/logout", "logout", true, t(50.0, 100)),
            ("POST", "/logout/all", "logout-all", true, t(50.0, 100)),
            ("POST", "/email/verify", "email-verify", true, t(50.0, 100)),
            ("POST", "/email/verify/resend", "email-verify-resend", true, t(10.0, 20)),
            ("POST", "/password/forgot", "password-forgot", true, t(10.0, 20)),
            ("POST", "/password/reset", "password-reset", true, t(50.0, 100)),
            ("POST", "/password/change", "password-change", true, t(50.0, 100)),
            ("POST", "/email/change", "email-change", true, t(50.0, 100)),
            ("DELETE", "/users/{id}", "delete-user", true, t(50.0, 100)),
        ]
    );
}

#[test]
fn api_settings() {
    let api = load("").unwrap().api().unwrap();
    assert_eq!(api.logical_id, "AuthApi");
    assert_eq!(api.stage_name, "v1");
    assert!(api.api_key_required);
    assert!(!api.api_key_required_on_preflight);
    let plan = api.usage_plan.as_ref().unwrap();
    assert_eq!(plan.throttle, Some(Throttle { rate_limit: 780.0, burst_limit: 1560 }));
    let quota = plan.quota.unwrap();
    assert_eq!((quota.limit, quota.period), (10_000_000, QuotaPeriod::Day));
    let cors = api.cors.as_ref().unwrap();
    assert_eq!(cors.allow_origin, "*");
    assert_eq!(cors.allow_headers.as_deref(), Some("Content-Type,Authorization,X-Api-Key"));
    assert_eq!(cors.allow_methods.as_deref(), Some("GET,POST,DELETE,OPTIONS"));
    let kinds = ["THROTTLED", "QUOTA_EXCEEDED", "INVALID_API_KEY", "MISSING_AUTHENTICATION_TOKEN", "WAF_FILTERED"];
    for kind in kinds.into_iter().chain(["DEFAULT_4XX", "DEFAULT_5XX"]) {
        let response = &api.gateway_responses[kind];
        assert!(response.templates.contains_key("application/json"), "{kind}");
        assert!(response.headers.iter().any(|(h, _)| h == "X-Request-Id"), "{kind}");
    }
    // Every gateway response carries the functions' Strict-Transport-Security.
    for (kind, response) in &api.gateway_responses {
        let hsts = response.headers.iter().find(|(h, _)| h == "Strict-Transport-Security");
        assert!(hsts.is_some_and(|(_, v)| format!("{v:?}").contains("max-age=31536000")), "{kind}: {hsts:?}");
    }
    assert_eq!(api.gateway_responses["MISSING_AUTHENTICATION_TOKEN"].status_code, Some(404));
    assert_eq!(api.gateway_responses["THROTTLED"].status_code, Some(429));
}

#[test]
fn overrides_apply_and_are_validated() {
    let t = load("StageName=dev LoginRateLimit=5 LoginBurstLimit=7 CorsAllowedOrigin=https://app.example.com").unwrap();
    let api = t.api().unwrap();
    assert_eq!(api.stage_name, "dev");
    assert_eq!(api.cors.unwrap().allow_origin, "https://app.example.com");
    let login = t.routes().unwrap().into_iter().find(|r| r.binary == "login").unwrap();
    assert_eq!(login.throttle, Some(Throttle { rate_limit: 5.0, burst_limit: 7 }));
    for bad in [
        "Unknown=1",
        "LogLevel=LOUD",
        "PasswordMinLength=7",
        "AccessTokenTtlSeconds=3601",
        "ApiQuotaPeriod=YEAR",
        "CorsAllowedOrigin=ftp://x",
        "StageName=bad/stage",
    ] {
        assert!(load(bad).is_err(), "{bad} should be rejected");
    }
}

#[test]
fn each_function_gets_the_template_variables_resolved_for_its_stack() {
    // Each function's memory is a parameter of its own.
    let t = load("PasswordMinLength=20 LoginMemorySize=1024 GetUserMemorySize=256").unwrap();
    let arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:dev-KeyRingSecret-AbCdEf";
    let jwks = "arn:aws:secretsmanager:us-east-1:123456789012:secret:dev-JwksSecret-StUvWx";
    let throttle = "arn:aws:secretsmanager:us-east-1:123456789012:secret:dev-ThrottleKeySecret-GhIjKl";
    let mail = "arn:aws:secretsmanager:us-east-1:123456789012:secret:dev-MailKeySecret-MnOpQr";
    let arns = BTreeMap::from([
        ("ThrottleKeySecret".to_owned(), throttle.to_owned()),
        ("MailKeySecret".to_owned(), mail.to_owned()),
        ("KeyRingSecret".to_owned(), arn.to_owned()),
        ("JwksSecret".to_owned(), jwks.to_owned()),
    ]);
    let resources = StackResources::new(&t, LocalStack::new("dev").unwrap(), arns).unwrap();
    let expected = [
        ("TABLE_NAME", "dev-AuthTable"),
        ("TOKEN_ISSUER", ""),
        ("URL_SUFFIX", "amazonaws.com"),
        ("JWKS_SECRET_ID", jwks),
        ("JWKS_MAX_AGE_SECONDS", "3600"),
        ("SIGNING_ALGORITHM", "ES256"),
        ("TOKEN_AUDIENCE", "serverless-auth"),
        ("ACCESS_TOKEN_TTL_SECONDS", "900"),
        ("REFRESH_TOKEN_TTL_SECONDS", "604800"),
        ("PASSWORD_MIN_LENGTH", "20"),
        ("KEY_CACHE_TTL_SECONDS", "300"),
        ("CORS_ALLOWED_ORIGIN", "*"),
    ];
    let own: [(&str, &[(&str, &str)]); 4] = [
        ("RegisterFunction", &[("MAIL_KEY_SECRET_ID", mail), ("VERIFY_EMAIL_TTL_SECONDS", "86400")]),
        (
            "LoginFunction",
            &[("KEY_RING_SECRET_ID", arn), ("THROTTLE_KEY_SECRET_ID", throttle), ("REQUIRE_VERIFIED_EMAIL", "true")],
        ),
        (
            "RefreshFunction",
            &[("KEY_RING_SECRET_ID", arn), ("THROTTLE_KEY_SECRET_ID", throttle), ("REFRESH_REUSE_GRACE_SECONDS", "10")],
        ),
        ("GetUserFunction", &[]),
    ];
    for (function, own) in own {
        let vars = t.function_variables(function, &resources).unwrap();
        assert_eq!(vars.len(), expected.len() + own.len(), "{vars:?}");
        for (k, v) in expected.iter().chain(own) {
            assert_eq!(vars[*k], *v, "{function} {k}");
        }
        let env = t.lambda_environment(function, &resources, "http://127.0.0.1:4566").unwrap();
        assert_eq!(env["AWS_ACCESS_KEY_ID"], format!("dev.{function}"));
        assert_eq!(env["AWS_LAMBDA_LOG_LEVEL"], "INFO");
        assert_eq!(env["AWS_LAMBDA_LOG_FORMAT"], "JSON");
        let memory = match function {
            "LoginFunction" => "1024".to_owned(),
            "GetUserFunction" => "256".to_owned(),
            _ => t.function(function).unwrap().memory_mb.to_string(),
        };
        assert_eq!(env["AWS_LAMBDA_FUNCTION_MEMORY_SIZE"], memory, "{function}");
        let group = &env["AWS_LAMBDA_LOG_GROUP_NAME"];
        assert!(group.starts_with("dev-") && group.ends_with("Logs"), "its own log group: {group}");
        // No CA bundle by default: the functions trust the Amazon roots built into them.
        assert!(!vars.contains_key("SSL_CERT_FILE"), "{function}");
    }
    // GIVEN a CA bundle named, THEN every function is given it as SSL_CERT_FILE
    let t = load("CaBundlePath=/etc/pki/tls/certs/ca-bundle.crt").unwrap();
    let vars = t.function_variables("GetUserFunction", &resources).unwrap();
    assert_eq!(vars["SSL_CERT_FILE"], "/etc/pki/tls/certs/ca-bundle.crt");
}

#[test]
fn table_and_secret() {
    let t = load("").unwrap();
    let table = t.table_definition().unwrap();
    assert_eq!(table.logical_id, "AuthTable");
    assert_eq!(table.key_schema.len(), 1);
    assert_eq!((table.key_schema[0].name.as_str(), table.key_schema[0].key_type.as_str()), ("pk", "HASH"));
    assert_eq!(table.attribute_definitions.len(), 2);
    assert!(table.attribute_definitions.iter().all(|a| a.attribute_type == "S"));
    assert_eq!(table.billing_mode, "PAY_PER_REQUEST");
    assert_eq!(table.ttl_attribute.as_deref(), Some("expires_at"));
    assert!(table.point_in_time_recovery);
    let by_user: Vec<_> =
        table.global_secondary_indexes.iter().map(|ix| (ix.name.as_str(), ix.projection_type.as_str())).collect();
    assert_eq!(by_user, [("ByUser", "KEYS_ONLY")]);
    assert!(table.local_secondary_indexes.is_empty());
    assert_eq!(table.stream_view_type.as_deref(), Some("KEYS_ONLY"));
    let specs = t.secret_specs().unwrap();
    let ids: Vec<_> = specs.iter().map(|s| s.logical_id.as_str()).collect();
    assert_eq!(ids, ["ThrottleKeySecret", "MailKeySecret", "KeyRingSecret", "JwksSecret"]);
    for spec in &specs[..2] {
        let secret = spec.generate().unwrap();
        assert_eq!(secret.len(), 64);
        assert!(secret.chars().all(|c| c.is_ascii_alphanumeric()));
    }
    // The key ring and its JWKS start empty (a literal SecretString): the rotation makes the first key.
    for spec in &specs[2..] {
        assert_eq!(spec.generate().unwrap(), r#"{"keys":[]}"#);
    }
}
