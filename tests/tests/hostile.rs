//! Hostile requests against every route, table-driven: malformed, truncated, oversized and
//! deeply nested bodies, wrong types, NUL and control characters, invalid UTF-8 and bad base64,
//! wrong media types and methods, duplicated and huge headers, path ids that are not ids, query
//! strings, forged and malformed credentials.
//!
//! Each row is a complete API Gateway event (a fixture from `events/`, mutated) with the status
//! it must get. Every answer must be a `4xx` `application/problem+json` document (never a `2xx`,
//! never a `5xx`, never a panic), and the run must leave the table as the setup left it.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Instant;

use aws_sdk_dynamodb::types::AttributeValue;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};
use tests::{event_json, parts, Stack, PASSWORD};

const MIB: usize = 1024 * 1024;
/// `shared::http::MAX_BODY_BYTES`.
const BODY_LIMIT: usize = 16 * 1024;
const POST_ROUTES: [&str; 3] = ["register", "login", "refresh"];

/// One hostile request and the statuses it may get (one, unless genuinely ambiguous).
struct Case {
    name: String,
    event: Value,
    expected: Vec<u16>,
}

fn case(name: impl Into<String>, event: Value, expected: &[u16]) -> Case {
    Case { name: name.into(), event, expected: expected.to_vec() }
}

// ---- Building events ------------------------------------------------------------------------

/// `POST /<route>` from the route's success fixture, with this raw body.
fn post(route: &str, body: impl Into<String>) -> Value {
    let mut event = event_json(&format!("{route}.json"));
    event["body"] = Value::String(body.into());
    event
}

/// `GET /users/{id}` with this `Authorization` header (none when `None`).
fn get_user(id: &str, authorization: Option<&str>) -> Value {
    let mut event = event_json("get-user.json");
    event["path"] = format!("/users/{id}").into();
    event["requestContext"]["path"] = format!("/v1/users/{id}").into();
    event["pathParameters"] = json!({ "id": id });
    match authorization {
        Some(value) => header(event, "Authorization", &[value]),
        None => without_header(event, "Authorization"),
    }
}

/// Sets a header as API Gateway does: every value in `multiValueHeaders`, the last in `headers`.
fn header(event: Value, name: &str, values: &[&str]) -> Value {
    let mut event = without_header(event, name);
    if let Some(last) = values.last() {
        event["headers"][name] = (*last).into();
    }
    event["multiValueHeaders"][name] = json!(values);
    event
}

/// A header present only in `multiValueHeaders`, as a direct invocation may send it.
fn multi_value_only_header(event: Value, name: &str, values: &[&str]) -> Value {
    let mut event = without_header(event, name);
    event["multiValueHeaders"][name] = json!(values);
    event
}

fn without_header(mut event: Value, name: &str) -> Value {
    for map in ["headers", "multiValueHeaders"] {
        if let Some(headers) = event[map].as_object_mut() {
            headers.retain(|key, _| !key.eq_ignore_ascii_case(name));
        }
    }
    event
}

fn content_type(event: Value, value: &str) -> Value {
    header(event, "Content-Type", &[value])
}

fn method(mut event: Value, method: &str) -> Value {
    event["httpMethod"] = method.into();
    event["requestContext"]["httpMethod"] = method.into();
    event
}

/// Sets both query maps consistently; repeated names collect in `multiValueQueryStringParameters`.
fn query(mut event: Value, pairs: &[(&str, &str)]) -> Value {
    let (mut single, mut multi) = (serde_json::Map::new(), serde_json::Map::new());
    for (name, value) in pairs {
        single.insert((*name).into(), (*value).into());
        multi.entry(*name).or_insert_with(|| json!([])).as_array_mut().unwrap().push((*value).into());
    }
    event["queryStringParameters"] = single.into();
    event["multiValueQueryStringParameters"] = multi.into();
    event
}

/// A body API Gateway base64-encoded (`isBase64Encoded: true`).
fn base64_body(mut event: Value, bytes: &[u8]) -> Value {
    event["body"] = STANDARD.encode(bytes).into();
    event["isBase64Encoded"] = true.into();
    event
}

/// The base64 flag set on a body that is not standard padded base64.
fn flagged_as_base64(mut event: Value, body: &str) -> Value {
    event["body"] = body.into();
    event["isBase64Encoded"] = true.into();
    event
}

/// A JSON object body of exactly `len` bytes (spaces after the opening brace).
fn padded(body: &str, len: usize) -> String {
    assert!(body.starts_with('{') && body.len() <= len, "cannot pad {} bytes to {len}", body.len());
    format!("{{{}{}", " ".repeat(len - body.len()), &body[1..])
}

/// `n` characters of a password that passes every rule but the length ones.
fn password(n: usize) -> String {
    "qz7#Lm2$Vr9&Xw4*Tp6@Ny8!Kd3%".chars().cycle().take(n).collect()
}

fn register_body(email: &str, password: &str, name: &str) -> String {
    json!({"email": email, "password": password, "name": name}).to_string()
}

fn login_body(email: &str, password: &str) -> String {
    json!({"email": email, "password": password}).to_string()
}

/// Bytes that are neither UTF-8 nor JSON.
fn garbage(len: usize) -> Vec<u8> {
    let mut state: u32 = 0x9e37_79b9;
    let mut bytes = vec![0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a];
    bytes.extend((0..len).map(|_| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state >> 24) as u8 | 0x80
    }));
    bytes
}

fn utf16le(text: &str) -> Vec<u8> {
    let mut bytes = vec![0xff, 0xfe];
    bytes.extend(text.encode_utf16().flat_map(u16::to_le_bytes));
    bytes
}

// ---- The setup ------------------------------------------------------------------------------

/// Two registered, logged-in users, and the material a hostile client could hold.
struct Setup {
    alice_id: String,
    bob_id: String,
    /// Alice's access and refresh tokens: hostile requests carrying them must not use them.
    access: String,
    refresh: String,
    bob_access: String,
    /// The real signing key and its `kid`, for forged tokens.
    key: Vec<u8>,
    kid: String,
}

const ALICE: &str = "alice@example.com";
const BOB: &str = "bob@example.com";
const BOB_PASSWORD: &str = "another fine passphrase";

async fn setup(stack: &Stack) -> Setup {
    let alice = stack.register_user(ALICE, PASSWORD, "Alice").await;
    let bob = stack.register_user(BOB, BOB_PASSWORD, "Bob").await;
    let alice_tokens = stack.login_user(ALICE, PASSWORD).await;
    let bob_tokens = stack.login_user(BOB, BOB_PASSWORD).await;
    let secret = stack.secrets.get_secret_value().secret_id(&stack.secret_id).send().await.unwrap();
    let text = |value: &Value| value.as_str().unwrap().to_owned();
    Setup {
        alice_id: text(&alice["id"]),
        bob_id: text(&bob["id"]),
        access: text(&alice_tokens["access_token"]),
        refresh: text(&alice_tokens["refresh_token"]),
        bob_access: text(&bob_tokens["access_token"]),
        key: secret.secret_string().unwrap().as_bytes().to_vec(),
        kid: secret.version_id().unwrap().to_owned(),
    }
}

impl Setup {
    /// A request to `route` that would succeed as it is: each row changes one thing about it.
    fn valid_body(&self, route: &str) -> String {
        match route {
            "register" => register_body("newcomer@example.com", &password(20), "Newcomer"),
            "login" => login_body(ALICE, PASSWORD),
            "refresh" => json!({ "refresh_token": self.refresh }).to_string(),
            other => panic!("no POST route {other}"),
        }
    }

    /// A well-formed request to `route` that fails without writing anything but a login-failure
    /// count: a taken email, unknown credentials, an unknown refresh token.
    fn refused_body(&self, route: &str, stranger: &str) -> String {
        match route {
            "register" => register_body("ALICE@example.com", &password(20), "Imposter"),
            "login" => login_body(stranger, &password(20)),
            "refresh" => json!({ "refresh_token": "A".repeat(64) }).to_string(),
            other => panic!("no POST route {other}"),
        }
    }

    fn claims(&self, sub: &str) -> Value {
        let now = shared::now_epoch();
        json!({"iss": "serverless-auth", "aud": "serverless-auth", "sub": sub, "iat": now, "exp": now + 600, "jti": "hostile"})
    }

    fn sign(&self, claims: &Value, key: &[u8]) -> String {
        let mut header = Header::new(Algorithm::HS256);
        header.typ = Some("at+jwt".into());
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(key)).unwrap()
    }
}

// ---- The table ------------------------------------------------------------------------------

fn cases(setup: &Setup) -> Vec<Case> {
    let mut cases = Vec::new();
    let mut strangers = 0;
    let mut stranger = move || {
        strangers += 1;
        format!("stranger{strangers}@example.com")
    };
    for route in POST_ROUTES {
        let stranger = stranger();
        post_route_cases(&mut cases, setup, route, &stranger);
    }
    register_cases(&mut cases);
    login_cases(&mut cases, &mut stranger);
    refresh_cases(&mut cases, setup);
    get_user_cases(&mut cases, setup);
    cases
}

/// The envelope and body attacks that apply alike to every `POST` route.
fn post_route_cases(cases: &mut Vec<Case>, setup: &Setup, route: &str, stranger: &str) {
    let valid = setup.valid_body(route);
    let valid_value: Value = serde_json::from_str(&valid).unwrap();
    let first_field = valid_value.as_object().unwrap().keys().next().unwrap().clone();
    let mut push = |name: &str, event: Value, expected: &[u16]| {
        cases.push(case(format!("{route}: {name}"), event, expected));
    };

    // Malformed, truncated and non-object JSON: 400.
    let deep_arrays = format!("{{\"{first_field}\":{}{}}}", "[".repeat(8000), "]".repeat(8000));
    let deep_objects = format!("{}1{}", "{\"a\":".repeat(2500), "}".repeat(2500));
    let malformed: [(&str, String); 27] = [
        ("empty body", String::new()),
        ("whitespace-only body", " \r\n\t ".into()),
        ("lone opening brace", "{".into()),
        ("truncated in the middle", valid[..valid.len() / 2].into()),
        ("truncated before the closing brace", valid[..valid.len() - 1].into()),
        ("trailing comma", valid.replacen('}', ",}", 1)),
        ("single-quoted strings", valid.replace('"', "'")),
        ("unquoted member names", valid.replace(&format!("\"{first_field}\""), &first_field)),
        ("a comment before the object", format!("/* hi */{valid}")),
        ("NaN value", format!("{{\"{first_field}\":NaN}}")),
        ("an array", "[]".into()),
        ("an array holding the object", format!("[{valid}]")),
        ("a string", "\"text\"".into()),
        ("null", "null".into()),
        ("a number", "42".into()),
        ("true", "true".into()),
        ("two objects", format!("{valid}{valid}")),
        ("trailing garbage", format!("{valid} garbage")),
        ("a byte-order mark", format!("\u{feff}{valid}")),
        ("a leading NUL", format!("\u{0}{valid}")),
        ("a raw control character inside a string", format!("{{\"{first_field}\":\"a\u{1}b\"}}")),
        ("a raw NUL inside a string", format!("{{\"{first_field}\":\"a\u{0}b\"}}")),
        ("an invalid escape", format!("{{\"{first_field}\":\"\\x41\"}}")),
        ("a lone surrogate escape", format!("{{\"{first_field}\":\"\\ud800\"}}")),
        ("arrays nested 8000 deep", deep_arrays),
        ("objects nested 2500 deep", deep_objects),
        ("form-encoded text sent as JSON", format!("{first_field}=x&other=y")),
    ];
    for (name, body) in malformed {
        push(name, post(route, body), &[400]);
    }
    let mut null_body = post(route, "");
    null_body["body"] = Value::Null;
    push("null body", null_body, &[400]);

    // Duplicate members: 400 (serde would silently keep the last).
    let duplicated = valid.replacen('{', &format!("{{\"{first_field}\":\"decoy\","), 1);
    push("duplicate member", post(route, duplicated), &[400]);
    let escaped_name: String = first_field.replacen('e', "\\u0065", 1).replacen('r', "\\u0072", 1);
    let duplicated_escaped = valid.replacen('{', &format!("{{\"{escaped_name}\":\"decoy\","), 1);
    push("duplicate member spelt with escapes", post(route, duplicated_escaped), &[400]);

    // Media types: 415, before the body is looked at.
    for value in [
        "text/plain",
        "text/json",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=xyz",
        "application/json; charset=latin1",
        "application/json; charset=utf-16",
        "application/jsonp",
        "application/xml",
        "json",
        "",
        "application/json, text/plain",
        "*/*",
    ] {
        push(&format!("Content-Type {value:?}"), content_type(post(route, &valid), value), &[415]);
    }
    push("no Content-Type", without_header(post(route, &valid), "Content-Type"), &[415]);

    // Content-Type sent twice: refused with 400 whatever the values, since proxies and
    // frameworks disagree on which one counts.
    let refused = setup.refused_body(route, stranger);
    let twice = |values: &[&str]| header(post(route, &refused), "Content-Type", values);
    push("two Content-Type values, JSON last", twice(&["text/plain", "application/json"]), &[400]);
    push("two Content-Type values, JSON first", twice(&["application/json", "text/plain"]), &[400]);
    push("two identical Content-Type values", twice(&["application/json", "application/json"]), &[400]);
    push(
        "two Content-Type values only in multiValueHeaders",
        multi_value_only_header(post(route, &refused), "Content-Type", &["text/plain", "application/json"]),
        &[400],
    );

    // Methods: 405.
    for verb in ["GET", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "post"] {
        push(&format!("method {verb}"), method(post(route, &valid), verb), &[405]);
    }
    let overridden = header(method(post(route, &valid), "GET"), "X-HTTP-Method-Override", &["POST"]);
    push("GET with X-HTTP-Method-Override: POST", overridden, &[405]);
    let mut mismatched = method(post(route, &valid), "DELETE");
    mismatched["requestContext"]["httpMethod"] = "POST".into();
    push("DELETE with a requestContext claiming POST", mismatched, &[405]);

    // Sizes: 413, before the media type and the body are looked at.
    push("one byte over 16 KiB", post(route, padded(&valid, BODY_LIMIT + 1)), &[413]);
    push("1 MiB of JSON", post(route, padded(&valid, MIB)), &[413]);
    push("1 MiB of text/plain", content_type(post(route, "x".repeat(MIB)), "text/plain"), &[413]);
    push("1 MiB base64-encoded", base64_body(post(route, ""), padded(&valid, MIB).as_bytes()), &[413]);

    // Base64 bodies (legitimately decoded by lambda_http): only hostile variants.
    push("base64 of invalid UTF-8", base64_body(post(route, ""), b"\xff\xfe\xfd\xc3\x28\xa0\xa1"), &[400]);
    let mut invalid_utf8_inside = valid.clone().into_bytes();
    let quote = invalid_utf8_inside.iter().rposition(|b| *b == b'"').unwrap();
    invalid_utf8_inside.splice(quote..quote, [0xc3, 0x28, 0xff]);
    push(
        "base64 of JSON with invalid UTF-8 inside a string",
        base64_body(post(route, ""), &invalid_utf8_inside),
        &[400],
    );
    push("base64 of binary garbage", base64_body(post(route, ""), &garbage(512)), &[400]);
    push("base64 of UTF-16 JSON", base64_body(post(route, ""), &utf16le(&valid)), &[400]);
    push("base64 of nothing", base64_body(post(route, ""), b""), &[400]);
    push(
        "base64 of a valid body sent as text/plain",
        content_type(base64_body(post(route, ""), valid.as_bytes()), "text/plain"),
        &[415],
    );
    push("base64 flag on plain JSON text", flagged_as_base64(post(route, ""), &valid), &[400]);

    // Query strings are ignored: credentials there are never read.
    let fields: Vec<(&str, &str)> =
        valid_value.as_object().unwrap().iter().map(|(k, v)| (k.as_str(), v.as_str().unwrap())).collect();
    push("the fields in the query string and an empty object", query(post(route, "{}"), &fields), &[422]);
    push("the fields in the query string and no body", query(post(route, ""), &fields), &[400]);
    let many: Vec<(&str, &str)> = (0..500).map(|_| ("x", "%00'; DROP TABLE users;--")).collect();
    push("500 repeated query parameters and a malformed body", query(post(route, "{"), &many), &[400]);

    // Huge and numerous headers change nothing.
    let huge = "a".repeat(64 * 1024);
    push("a 64 KiB header and a malformed body", header(post(route, "{"), "X-Padding", &[&huge]), &[400]);
    let mut crowded = post(route, "{");
    for i in 0..200 {
        crowded = header(crowded, &format!("X-Extra-{i}"), &["value"]);
    }
    push("200 extra headers and a malformed body", crowded, &[400]);
    let bearer = format!("Bearer {}", setup.access);
    push("an access token and an empty object", header(post(route, "{}"), "Authorization", &[&bearer]), &[422]);
    let mut odd_context = post(route, "{");
    odd_context["requestContext"]["requestId"] = "\r\nX-Injected: yes".into();
    odd_context["requestContext"]["identity"]["sourceIp"] = "999.999.999.999; DROP".into();
    push("a hostile requestContext and a malformed body", odd_context, &[400]);
}

fn register_cases(cases: &mut Vec<Case>) {
    let fresh = "newcomer@example.com";
    let good = password(20);
    let mut push = |name: &str, body: String, expected: &[u16]| {
        cases.push(case(format!("register: {name}"), post("register", body), expected));
    };

    // Wrong types, missing and unknown members: 422.
    for (name, body) in [
        ("email as a number", json!({"email": 42, "password": good, "name": "N"})),
        ("email as an array", json!({"email": [fresh], "password": good, "name": "N"})),
        ("email as an object", json!({"email": {"$ne": null}, "password": good, "name": "N"})),
        ("email as a boolean", json!({"email": true, "password": good, "name": "N"})),
        ("email null", json!({"email": null, "password": good, "name": "N"})),
        ("password as a number", json!({"email": fresh, "password": 123_456_789_012_345_u64, "name": "N"})),
        ("name null", json!({"email": fresh, "password": good, "name": null})),
        ("every member null", json!({"email": null, "password": null, "name": null})),
        ("an empty object", json!({})),
        (
            "email nested 100 arrays deep",
            json!({"email": (0..100).fold(json!(fresh), |v, _| json!([v])), "password": good, "name": "N"}),
        ),
        ("an extra admin member", json!({"email": fresh, "password": good, "name": "N", "admin": true})),
        ("a __proto__ member", json!({"email": fresh, "password": good, "name": "N", "__proto__": {"admin": true}})),
        (
            "an id member",
            json!({"email": fresh, "password": good, "name": "N", "id": "00000000-0000-0000-0000-000000000000"}),
        ),
        (
            "a capitalised Email next to email",
            json!({"email": fresh, "Email": "x@example.com", "password": good, "name": "N"}),
        ),
        (
            "a member name with control characters",
            json!({"email": fresh, "password": good, "name": "N", "\u{7}\u{1b}[2J": 1}),
        ),
    ] {
        push(name, body.to_string(), &[422]);
    }

    // Emails: the taken one in any spelling is 409; look-alikes and junk are 422.
    let email_255 = format!("{}@{}.com", "a".repeat(64), "b".repeat(186));
    let email_10k = format!("{}@example.com", "a".repeat(10_000));
    for (name, email, expected) in [
        ("taken email in mixed case", "AlIcE@ExAmPlE.CoM", 409),
        ("taken email padded with whitespace", " \tALICE@example.com\n ", 409),
        ("taken email with a trailing no-break space", "alice@example.com\u{a0}", 409),
        ("Cyrillic look-alike of the taken email", "\u{430}lice@example.com", 422),
        ("fullwidth look-alike of the taken email", "\u{ff41}lice@example.com", 422),
        ("Greek look-alike domain", "alice@ex\u{3b1}mple.com", 422),
        ("dotted capital I", "AL\u{130}CE@example.com", 422),
        ("zero-width space inside the taken email", "ali\u{200b}ce@example.com", 422),
        ("NUL inside the email", "alice\u{0}@example.com", 422),
        ("newline inside the email", "ali\nce@example.com", 422),
        ("255-character email", email_255.as_str(), 422),
        ("10,000-character email", email_10k.as_str(), 422),
        ("IP-literal domain", "alice@[127.0.0.1]", 422),
        ("quoted local part", "\"alice\"@example.com", 422),
        ("SQL in the local part", "' OR '1'='1' --@example.com", 422),
        ("two addresses", "alice@example.com, bob@example.com", 422),
        ("empty email", "", 422),
    ] {
        push(name, register_body(email, &good, "Someone"), &[expected]);
    }

    // Names: 422.
    for (name, value) in [
        ("space-only name", "   ".to_owned()),
        ("tab and newline name", "\t\n\r".into()),
        ("ideographic-space name", "\u{3000}\u{3000}".into()),
        ("no-break and em space name", "\u{a0}\u{2003}".into()),
        ("zero-width-space name", "\u{200b}".into()),
        ("right-to-left override in the name", "Ada\u{202e}ecalevoL".into()),
        ("NUL in the name", "Ada\u{0}".into()),
        ("escape sequence in the name", "Ada\u{1b}[31m".into()),
        ("101-character name", "n".repeat(101)),
        ("10,000-character name", "n".repeat(10_000)),
        ("empty name", String::new()),
    ] {
        push(name, register_body(fresh, &good, &value), &[422]);
    }

    // Passwords at and around every limit (default minimum 15, maximum 256). Those that pass are
    // sent with the taken email, so the answer is 409 and nothing is written.
    let taken = "ALICE@example.com";
    for (name, email, value, expected) in [
        ("empty password", fresh, String::new(), 422),
        ("14-character password", fresh, password(14), 422),
        ("14 emoji password", fresh, "\u{1f510}".repeat(14), 422),
        ("15-character password and the taken email", taken, password(15), 409),
        ("15 different emoji as the password and the taken email", taken, "🔐🔑🗝🛡🔒🔓🧩🎲🎯🧭🪐🌋🦉🐙🍄".into(), 409),
        ("16-character password and the taken email", taken, password(16), 409),
        ("15 spaces as the password", taken, " ".repeat(15), 422),
        ("256-character password and the taken email", taken, password(256), 409),
        ("257-character password", fresh, password(257), 422),
        ("257 emoji password", fresh, "\u{1f510}".repeat(257), 422),
        ("10,000-character password", fresh, password(10_000), 422),
        ("NUL in the password", fresh, format!("{}\u{0}", password(20)), 422),
        ("newline in the password", fresh, format!("{}\n", password(20)), 422),
        ("common password", fresh, "1234567890qwertyuiop".into(), 422),
        ("common password in upper case", fresh, "1234567890QWERTYUIOP".into(), 422),
        ("password containing the email's local part", fresh, format!("my NEWCOMER {}", password(10)), 422),
    ] {
        push(name, register_body(email, &value, "Someone"), &[expected]);
    }

    // At the size limit: read, parsed and refused for the taken email.
    let at_limit = padded(&register_body(taken, &good, "Someone"), BODY_LIMIT);
    push("exactly 16 KiB for the taken email", at_limit, &[409]);
}

fn login_cases(cases: &mut Vec<Case>, stranger: &mut impl FnMut() -> String) {
    let mut push = |name: &str, body: String, expected: &[u16]| {
        cases.push(case(format!("login: {name}"), post("login", body), expected));
    };

    // Wrong types, missing and unknown members: 422.
    for (name, body) in [
        ("email as a number", json!({"email": 1, "password": PASSWORD})),
        ("email as an object", json!({"email": {"$gt": ""}, "password": PASSWORD})),
        ("password as a number", json!({"email": ALICE, "password": 0})),
        ("password null", json!({"email": ALICE, "password": null})),
        ("password as an array", json!({"email": ALICE, "password": [PASSWORD]})),
        ("password as an object", json!({"email": ALICE, "password": {"$ne": ""}})),
        ("password as true", json!({"email": ALICE, "password": true})),
        ("an empty object", json!({})),
        ("an extra remember_me member", json!({"email": ALICE, "password": PASSWORD, "remember_me": true})),
        ("an extra name member", json!({"email": ALICE, "password": PASSWORD, "name": "Alice"})),
    ] {
        push(name, body.to_string(), &[422]);
    }

    // Emails that are not emails: 422, not 401.
    for (name, email) in [
        ("Cyrillic look-alike of a registered email", "\u{430}lice@example.com".to_owned()),
        ("fullwidth look-alike of a registered email", "\u{ff41}lice@example.com".into()),
        ("NUL in the email", "alice@example.com\u{0}x".into()),
        ("SQL after the email", "alice@example.com' OR '1'='1".into()),
        ("300-character email", format!("{}@example.com", "a".repeat(288))),
        ("empty email", String::new()),
        ("whitespace-only email", " \t ".into()),
    ] {
        push(name, login_body(&email, PASSWORD), &[422]);
    }

    // Passwords: only the shape is checked (1–256 characters).
    push("empty password", login_body(ALICE, ""), &[422]);
    push("257-character password", login_body(ALICE, &password(257)), &[422]);
    push("257 emoji password", login_body(ALICE, &"\u{1f510}".repeat(257)), &[422]);
    push("10,000-character password", login_body(ALICE, &password(10_000)), &[422]);
    // Well-shaped wrong credentials: 401. One email each (no throttling); four against Alice,
    // below the five consecutive failures after which logins get 429.
    for (name, value) in [
        ("1-character password, unknown email", password(1)),
        ("14-character password, unknown email", password(14)),
        ("15-character password, unknown email", password(15)),
        ("256-character password, unknown email", password(256)),
        ("NUL-only password, unknown email", "\u{0}".into()),
    ] {
        push(name, login_body(&stranger(), &value), &[401]);
    }
    push("unknown email in mixed case", login_body(&stranger().to_uppercase(), PASSWORD), &[401]);
    for (name, value) in [
        ("the password with a trailing space, mixed-case email", format!("{PASSWORD} ")),
        ("the password with a leading space", format!(" {PASSWORD}")),
        ("the password in upper case", PASSWORD.to_uppercase()),
        ("the password and a NUL", format!("{PASSWORD}\u{0}")),
    ] {
        let email = if name.contains("mixed-case") { "ALICE@Example.COM" } else { ALICE };
        push(name, login_body(email, &value), &[401]);
    }
}

fn refresh_cases(cases: &mut Vec<Case>, setup: &Setup) {
    let genuine = &setup.refresh;
    let mut push = |name: &str, body: String, expected: &[u16]| {
        cases.push(case(format!("refresh: {name}"), post("refresh", body), expected));
    };

    for (name, body) in [
        ("token as a number", json!({"refresh_token": 7})),
        ("token null", json!({"refresh_token": null})),
        ("token in an array", json!({"refresh_token": [genuine]})),
        ("token as an operator object", json!({"refresh_token": {"$ne": null}})),
        ("token as true", json!({"refresh_token": true})),
        ("an empty object", json!({})),
        ("the token under another name", json!({"token": genuine})),
        ("the token and an extra member", json!({"refresh_token": genuine, "user_id": setup.bob_id})),
    ] {
        push(name, body.to_string(), &[422]);
    }

    // Tokens of the wrong shape, or of no family: 401 without a write. (Mutating only the secret
    // part of a genuine token would name a real family: that is reuse detection, and revokes it.)
    let other_first = if genuine.starts_with('A') { "B" } else { "A" };
    let other_family = format!("{other_first}{}", &genuine[1..]);
    for (name, token) in [
        ("empty token", String::new()),
        ("the token truncated by one character", genuine[..63].to_owned()),
        ("the token and one more character", format!("{genuine}A")),
        ("the token with a leading space", format!(" {genuine}")),
        ("the token with a trailing newline", format!("{genuine}\n")),
        ("the token with padding", format!("{genuine}==")),
        ("the token in the standard base64 alphabet", format!("+{}", &genuine[1..])),
        ("the token with a NUL", format!("{}\u{0}", &genuine[..63])),
        ("the token with a fullwidth first character", format!("\u{ff21}{}", &genuine[1..])),
        ("another family's id", other_family),
        ("a token of zero bytes", "A".repeat(64)),
        ("the access token", setup.access.clone()),
        ("10,000 characters", "A".repeat(10_000)),
        ("SQL", "' OR '1'='1".into()),
        ("a key name", "SESSION#AAAAAAAAAAAAAAAAAAAAAA".into()),
    ] {
        push(name, json!({ "refresh_token": token }).to_string(), &[401]);
    }

    // The genuine token where a client must not put it.
    let cookie = format!("refresh_token={genuine}");
    cases.push(case(
        "refresh: the token in a Cookie and an empty object",
        header(post("refresh", "{}"), "Cookie", &[&cookie]),
        &[422],
    ));
    cases.push(case(
        "refresh: the token as a bearer credential and an empty object",
        header(post("refresh", "{}"), "Authorization", &[&format!("Bearer {genuine}")]),
        &[422],
    ));
}

fn get_user_cases(cases: &mut Vec<Case>, setup: &Setup) {
    let bearer = format!("Bearer {}", setup.access);
    let (alice, bob) = (setup.alice_id.as_str(), setup.bob_id.as_str());
    let mut push = |name: &str, event: Value, expected: &[u16]| {
        cases.push(case(format!("get-user: {name}"), event, expected));
    };

    for verb in ["POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "get"] {
        push(&format!("method {verb}"), method(get_user("me", Some(&bearer)), verb), &[405]);
    }

    // Credentials: 401.
    let forged_key = setup.sign(&setup.claims(alice), b"not-the-signing-key-not-the-signing-key");
    let mut expired_claims = setup.claims(alice);
    expired_claims["iat"] = (shared::now_epoch() - 7200).into();
    expired_claims["exp"] = (shared::now_epoch() - 3600).into();
    let expired = setup.sign(&expired_claims, &setup.key);
    let genuine: Vec<&str> = setup.access.split('.').collect();
    let swapped_sub =
        format!("{}.{}.{}", genuine[0], URL_SAFE_NO_PAD.encode(setup.claims(bob).to_string()), genuine[2]);
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "at+jwt", "kid": setup.kid}).to_string()),
        URL_SAFE_NO_PAD.encode(setup.claims(alice).to_string())
    );
    let huge_token = format!("Bearer {}", "A".repeat(10 * 1024));
    let refresh_bearer = format!("Bearer {}", setup.refresh);
    let trailing = format!("{bearer} extra");
    let comma = format!("{bearer},");
    let token_scheme = format!("Token {}", setup.access);
    let no_scheme = setup.access.clone();
    let forged_key = format!("Bearer {forged_key}");
    let expired = format!("Bearer {expired}");
    let swapped_sub = format!("Bearer {swapped_sub}");
    let unsigned = format!("Bearer {unsigned}");
    let truncated = format!("Bearer {}", &setup.access[..setup.access.len() - 1]);
    for (name, authorization) in [
        ("no Authorization", None),
        ("empty Authorization", Some("")),
        ("Basic credentials", Some("Basic YWxpY2VAZXhhbXBsZS5jb206Y29ycmVjdCBob3JzZQ==")),
        ("Digest credentials", Some("Digest username=\"alice\", response=\"x\"")),
        ("Negotiate credentials", Some("Negotiate YIIGhgYGKwYBBQUCoIIGejCCBnag")),
        ("the token under the Token scheme", Some(&token_scheme)),
        ("the token with no scheme", Some(&no_scheme)),
        ("Bearer with no token", Some("Bearer")),
        ("Bearer and a space", Some("Bearer ")),
        ("the token and a trailing word", Some(&trailing)),
        ("the token and a trailing comma", Some(&comma)),
        ("the token truncated", Some(&truncated)),
        ("a non-ASCII token", Some("Bearer t\u{f6}k\u{e9}n")),
        ("a 10 KiB token", Some(&huge_token)),
        ("the refresh token", Some(&refresh_bearer)),
        ("a token signed with another key", Some(&forged_key)),
        ("an expired token signed with the real key", Some(&expired)),
        ("a genuine token with Bob's claims pasted in", Some(&swapped_sub)),
        ("an unsigned alg none token", Some(&unsigned)),
    ] {
        push(name, get_user("me", authorization), &[401]);
    }
    let bob_bearer = format!("Bearer {}", setup.bob_access);
    push(
        "two Authorization values, Bob's then Alice's",
        header(get_user("me", None), "Authorization", &[&bob_bearer, &bearer]),
        &[401],
    );
    push(
        "two identical Authorization values",
        header(get_user("me", None), "Authorization", &[&bearer, &bearer]),
        &[401],
    );
    push(
        "two Authorization values only in multiValueHeaders",
        multi_value_only_header(get_user("me", None), "Authorization", &[&bob_bearer, &bearer]),
        &[401],
    );
    push("the token in the query string", query(get_user("me", None), &[("access_token", &setup.access)]), &[401]);
    push(
        "the token in a Cookie",
        header(get_user("me", None), "Cookie", &[&format!("token={}", setup.access)]),
        &[401],
    );
    let mut trusted_context = get_user("me", None);
    trusted_context["requestContext"]["authorizer"] = json!({"principalId": alice, "claims": {"sub": alice}});
    push("authorizer claims in the requestContext and no token", trusted_context, &[401]);
    push("a 64 KiB header and no token", header(get_user("me", None), "X-Padding", &[&"a".repeat(64 * 1024)]), &[401]);
    let mut with_body = get_user("me", None);
    with_body["body"] = "x".repeat(MIB).into();
    push("a 1 MiB body and no token", with_body, &[401]);
    push(
        "a body flagged as base64 that is not and no token",
        flagged_as_base64(get_user("me", None), "{not base64}"),
        &[401],
    );
    push("an id that is not an id and no token", get_user("../..", None), &[401]);

    // Ids that are not ids: 404. Another user's id in any spelling: 403.
    let long_id = "a".repeat(4096);
    let alice_padded = format!(" {alice}");
    let alice_nul = format!("{alice}\u{0}");
    let alice_traversal = format!("{alice}/../{bob}");
    let user_key = format!("USER#{alice}");
    let email_key = format!("EMAIL#{ALICE}");
    for (name, id) in [
        ("../..", "../.."),
        ("..%2F..%2Fetc%2Fpasswd", "..%2F..%2Fetc%2Fpasswd"),
        ("%00", "%00"),
        ("a NUL", "\u{0}"),
        ("a 4096-character id", long_id.as_str()),
        ("SQL", "' OR '1'='1"),
        ("SQL with a statement", "1; DROP TABLE users;--"),
        ("ME", "ME"),
        ("Me", "Me"),
        ("me with a leading space", " me"),
        ("me with a trailing slash", "me/"),
        ("a wildcard", "*"),
        ("an empty id", ""),
        ("Alice's id with a leading space", alice_padded.as_str()),
        ("Alice's id and a NUL", alice_nul.as_str()),
        ("Alice's id, a traversal and Bob's", alice_traversal.as_str()),
        ("a table key", user_key.as_str()),
        ("an email key", email_key.as_str()),
        ("an email", ALICE),
    ] {
        push(&format!("id {name}"), get_user(id, Some(&bearer)), &[404]);
    }
    let mut no_params = get_user("me", Some(&bearer));
    no_params["pathParameters"] = Value::Null;
    push("no path parameters", no_params, &[404]);
    let mut empty_params = get_user("me", Some(&bearer));
    empty_params["pathParameters"] = json!({});
    push("empty path parameters", empty_params, &[404]);

    let bob_upper = bob.to_uppercase();
    let bob_urn = format!("urn:uuid:{bob}");
    let bob_braced = format!("{{{bob}}}");
    let bob_simple = bob.replace('-', "");
    for (name, id) in [
        ("Bob's id", bob),
        ("Bob's id in upper case", bob_upper.as_str()),
        ("Bob's id as a URN", bob_urn.as_str()),
        ("Bob's id in braces", bob_braced.as_str()),
        ("Bob's id without hyphens", bob_simple.as_str()),
    ] {
        push(&format!("id {name}"), get_user(id, Some(&bearer)), &[403]);
    }
    push("Bob's id and ?id=me", query(get_user(bob, Some(&bearer)), &[("id", "me")]), &[403]);
    // A uuid that is nobody's: the contract's "not a user id" (404) or "another user's id" (403).
    for (name, id) in [
        ("the nil uuid", "00000000-0000-0000-0000-000000000000"),
        ("the max uuid", "ffffffff-ffff-ffff-ffff-ffffffffffff"),
    ] {
        push(&format!("id {name}"), get_user(id, Some(&bearer)), &[403, 404]);
    }
}

// ---- Running and checking -------------------------------------------------------------------

/// Every item except the `FAILURES#<hash>` login-throttle items, which failed logins create and
/// update by design (per-account throttling); all other items must be exactly as before.
async fn durable_items(stack: &Stack) -> BTreeMap<String, HashMap<String, AttributeValue>> {
    stack
        .items()
        .await
        .into_iter()
        .filter_map(|item| {
            let pk = item.get("pk")?.as_s().ok()?.clone();
            (!pk.starts_with("FAILURES#")).then_some((pk, item))
        })
        .collect()
}

fn check(case: &Case, status: u16, headers: &http::HeaderMap, body: &Value) -> Vec<String> {
    let name = &case.name;
    let mut failures = Vec::new();
    if !(400..500).contains(&status) {
        return vec![format!("{name}: status {status} is not a 4xx; body {body}")];
    }
    if !case.expected.contains(&status) {
        failures.push(format!("{name}: status {status}, expected {:?}; body {body}", case.expected));
    }
    let media_type = headers.get("content-type").and_then(|v| v.to_str().ok());
    if media_type != Some("application/problem+json") {
        failures.push(format!("{name}: Content-Type {media_type:?}, not application/problem+json"));
    }
    if body["status"] != status {
        failures.push(format!("{name}: problem status {} differs from HTTP {status}", body["status"]));
    }
    for member in ["type", "title", "detail"] {
        if body[member].as_str().is_none_or(str::is_empty) {
            failures.push(format!("{name}: problem lacks {member}: {body}"));
        }
    }
    failures
}

fn route_of(case: &Case) -> &str {
    case.event["resource"].as_str().unwrap_or("?")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn given_hostile_requests_on_every_route_when_sent_then_each_is_a_4xx_problem_and_the_table_is_unchanged() {
    let stack = Arc::new(Stack::new().await);
    let setup = setup(&stack).await;
    let cases = cases(&setup);
    assert!(cases.len() >= 150, "only {} cases", cases.len());
    let mut names: Vec<&str> = cases.iter().map(|c| c.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "case names must be unique");
    let mut by_route: BTreeMap<&str, usize> = BTreeMap::new();
    for case in &cases {
        *by_route.entry(route_of(case)).or_default() += 1;
    }

    let before = durable_items(&stack).await;
    let started = Instant::now();
    let mut failures = Vec::new();
    for case in &cases {
        let (stack, event) = (stack.clone(), case.event.clone());
        // A task per case, so that a panic fails that case and the run goes on.
        match tokio::spawn(async move { parts(stack.send(&event).await) }).await {
            Ok((status, headers, body)) => failures.extend(check(case, status, &headers, &body)),
            Err(error) => failures.push(format!("{}: panicked: {error}", case.name)),
        }
    }
    let after = durable_items(&stack).await;
    println!("{} hostile requests {by_route:?} in {:.1?}", cases.len(), started.elapsed());

    for (pk, item) in &after {
        match before.get(pk) {
            None => failures.push(format!("table: item {pk} was created: {item:?}")),
            Some(old) if old != item => failures.push(format!("table: item {pk} changed from {old:?} to {item:?}")),
            Some(_) => {}
        }
    }
    for pk in before.keys().filter(|pk| !after.contains_key(*pk)) {
        failures.push(format!("table: item {pk} was deleted"));
    }
    assert!(
        failures.is_empty(),
        "{} failure(s) over {} hostile requests:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
