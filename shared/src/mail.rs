//! Mail: what is sent, the tokens its links carry, and the messages themselves.
//!
//! A request never sends mail. It writes an `OUTBOX#<id>` item in the same transaction as its
//! state change; the `mailer` function, fed by the table's stream, sends it through SES. No item
//! or stream record holds a usable token: a link's token is HMAC(mail key, outbox id), computed
//! by the request (to store its SHA-256 in a `TOKEN#` item) and again by the mailer (to build the
//! link). The token travels in the link's fragment (`#token=`), so it reaches no server log or
//! `Referer` header, and a mail scanner following the link consumes nothing: the app posts it.

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretBox, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::domain::{Email, TokenHash};

/// A mail's id: the `OUTBOX#` item's key part and the input of its link's token.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct OutboxId(uuid::Uuid);

impl OutboxId {
    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4())
    }

    /// The id in an `OUTBOX#<id>` key, else `None`.
    pub fn from_key(pk: &str) -> Option<Self> {
        let id = pk.strip_prefix("OUTBOX#")?;
        // Only the form `Display` writes: one spelling per mail.
        uuid::Uuid::try_parse(id).ok().filter(|uuid| uuid.simple().to_string() == id).map(Self)
    }
}

impl fmt::Display for OutboxId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.simple().fmt(f)
    }
}

/// What a mail token proves when it is used.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Purpose {
    /// The account's address is its owner's (sign-up, or a verification link sent again).
    VerifyEmail,
    /// The new address of an email change is its owner's: using the link makes the change.
    ChangeEmail,
    /// Whoever reads the account's mail may set a new password.
    ResetPassword,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::ChangeEmail => "change_email",
            Self::ResetPassword => "reset_password",
        }
    }
}

/// The mails this API sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailKind {
    /// After sign-up: a link to verify the address (its token was stored by the request).
    VerifyEmail,
    /// An email change: a link to the new address (its token was stored by the request).
    VerifyNewEmail,
    /// An email change: a notice to the old address, no link.
    EmailChangeRequested,
    /// A password change or reset: a notice, no link.
    PasswordChanged,
    /// `POST /email/verify/resend`: a verification link, if the address has an unverified
    /// account (decided by the mailer, off the request path).
    VerificationRequested,
    /// `POST /password/forgot`: a reset link, if the address has an account (decided by the
    /// mailer).
    ResetRequested,
}

impl MailKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::VerifyEmail => "verify_email",
            Self::VerifyNewEmail => "verify_new_email",
            Self::EmailChangeRequested => "email_change_requested",
            Self::PasswordChanged => "password_changed",
            Self::VerificationRequested => "verification_requested",
            Self::ResetRequested => "reset_requested",
        }
    }
}

/// The key mail-link tokens (and the request records' names) are derived with; from a secret of
/// its own.
pub struct MailKey(SecretBox<[u8]>);

impl MailKey {
    pub fn new(secret: &[u8]) -> Self {
        Self(SecretBox::new(secret.into()))
    }

    fn mac(&self, label: &str, data: &[u8]) -> [u8; 32] {
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(self.0.expose_secret()).expect("any key length");
        mac.update(label.as_bytes());
        mac.update(&[0]);
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    /// The token of the mail `id`'s link: 256 bits nobody can compute without the key.
    pub fn token(&self, id: OutboxId) -> MailToken {
        MailToken(self.mac("mail-link-token", id.to_string().as_bytes()))
    }

    /// The name of the record that limits `resend`/`forgot` requests for `email` (the cooldown
    /// and the daily cap): keyed by HMAC, so a stranger's typed address is not stored in the clear.
    pub fn request_record(&self, kind: MailKind, email: &Email) -> String {
        let mac = self.mac(kind.as_str(), email.as_str().as_bytes());
        format!("MAILREQ#{}", URL_SAFE_NO_PAD.encode(mac))
    }
}

/// A mail link's token, as the link carries it and as the app posts it back.
pub struct MailToken([u8; 32]);

/// A token's text: 32 bytes, base64url without padding.
pub const MAIL_TOKEN_CHARS: usize = 43;

impl MailToken {
    /// A presented token; anything that is not exactly one of ours in shape is `None`.
    pub fn parse(presented: &str) -> Option<Self> {
        if presented.len() != MAIL_TOKEN_CHARS {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(presented).ok()?;
        Some(Self(bytes.try_into().ok()?))
    }

    /// The stored form: SHA-256 of the token's bytes.
    pub fn hash(&self) -> TokenHash {
        TokenHash::new(URL_SAFE_NO_PAD.encode(Sha256::digest(self.0)))
    }

    pub fn expose(&self) -> SecretString {
        SecretString::from(URL_SAFE_NO_PAD.encode(self.0))
    }
}

/// Where links send people: the client app (`AppBaseUrl`), which posts the token to the API.
#[derive(Clone, Debug)]
pub struct Links {
    base: String,
}

impl Links {
    pub fn new(app_base_url: &str) -> Self {
        Self { base: app_base_url.trim_end_matches('/').to_owned() }
    }

    /// `{AppBaseUrl}/verify-email#token=<token>` (sign-up and email change alike).
    pub fn verify_email(&self, token: &MailToken) -> SecretString {
        SecretString::from(format!("{}/verify-email#token={}", self.base, token.expose().expose_secret()))
    }

    /// `{AppBaseUrl}/reset-password#token=<token>`.
    pub fn reset_password(&self, token: &MailToken) -> SecretString {
        SecretString::from(format!("{}/reset-password#token={}", self.base, token.expose().expose_secret()))
    }
}

/// A mail ready to send: a subject, a plain-text body and an HTML body saying the same.
pub struct Message {
    pub subject: String,
    pub text: String,
    pub html: String,
}

/// The message of a mail of `kind`, with its link (for the kinds that have one) valid for
/// `valid_for` (e.g. "24 hours").
pub fn compose(kind: MailKind, link: Option<&str>, valid_for: &str) -> Message {
    let link = link.unwrap_or_default();
    let (subject, lead, action, tail) = match kind {
        MailKind::VerifyEmail | MailKind::VerificationRequested => (
            "Verify your email address",
            "Please confirm that this address is yours by opening this link:",
            Some("Verify my email address"),
            format!("The link works once and expires in {valid_for}. If you did not sign up, ignore this mail."),
        ),
        MailKind::VerifyNewEmail => (
            "Confirm your new email address",
            "Someone (hopefully you) asked to use this address for their account. To confirm, open this link:",
            Some("Use this address"),
            format!("The link works once and expires in {valid_for}. If it was not you, ignore this mail."),
        ),
        MailKind::ResetRequested => (
            "Reset your password",
            "To choose a new password, open this link:",
            Some("Choose a new password"),
            format!(
                "The link works once and expires in {valid_for}. If you did not ask for it, ignore this mail: \
                 your password stays as it is."
            ),
        ),
        MailKind::EmailChangeRequested => (
            "Your email address is being changed",
            "A request was made to move your account to another email address. The change happens when \
             the new address is confirmed.",
            None,
            "If it was not you, change your password now.".to_owned(),
        ),
        MailKind::PasswordChanged => (
            "Your password was changed",
            "The password of your account was just changed, and every device was signed out.",
            None,
            "If it was not you, reset your password now.".to_owned(),
        ),
    };
    let text = match action {
        Some(_) => format!("{lead}\n\n{link}\n\n{tail}\n"),
        None => format!("{lead}\n\n{tail}\n"),
    };
    let button = match action {
        Some(action) => format!("<p><a href=\"{0}\">{1}</a></p><p>{0}</p>", escape(link), escape(action)),
        None => String::new(),
    };
    let html =
        format!("<!doctype html><html><body><p>{}</p>{button}<p>{}</p></body></html>", escape(lead), escape(&tail));
    Message { subject: subject.to_owned(), text, html }
}

/// Text as HTML content or attribute value.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MailKey {
        MailKey::new(&[9; 32])
    }

    #[test]
    fn given_an_outbox_id_when_deriving_its_token_then_it_is_stable_keyed_and_256_bits() {
        let id = OutboxId::generate();
        let token = key().token(id);
        assert_eq!(token.hash(), key().token(id).hash(), "the mailer derives what the request stored");
        assert_ne!(token.hash(), MailKey::new(&[8; 32]).token(id).hash(), "and needs the key");
        assert_ne!(token.hash(), key().token(OutboxId::generate()).hash());
        let text = token.expose();
        assert_eq!(text.expose_secret().len(), MAIL_TOKEN_CHARS);
        assert_eq!(MailToken::parse(text.expose_secret()).unwrap().hash(), token.hash());
        assert!(MailToken::parse(&text.expose_secret()[1..]).is_none());
        assert!(MailToken::parse(&"*".repeat(MAIL_TOKEN_CHARS)).is_none());
    }

    #[test]
    fn given_an_outbox_key_when_reading_its_id_then_only_the_written_form_is_one() {
        let id = OutboxId::generate();
        assert_eq!(OutboxId::from_key(&format!("OUTBOX#{id}")), Some(id));
        assert!(OutboxId::from_key(&format!("OUTBOX#{}", id.0.hyphenated())).is_none());
        assert!(OutboxId::from_key(&format!("USER#{id}")).is_none());
    }

    #[test]
    fn given_links_when_built_then_the_token_is_in_the_fragment_of_the_app_url() {
        let links = Links::new("https://app.example.com/");
        let token = key().token(OutboxId::generate());
        let verify = links.verify_email(&token);
        let expected = format!("https://app.example.com/verify-email#token={}", token.expose().expose_secret());
        assert_eq!(verify.expose_secret(), &expected);
        assert!(links
            .reset_password(&token)
            .expose_secret()
            .starts_with("https://app.example.com/reset-password#token="));
    }

    #[test]
    fn given_each_kind_when_composed_then_links_appear_only_where_they_act_and_html_is_escaped() {
        let link = "https://app.example.com/verify-email#token=a&b<c>";
        for kind in
            [MailKind::VerifyEmail, MailKind::VerifyNewEmail, MailKind::VerificationRequested, MailKind::ResetRequested]
        {
            let message = compose(kind, Some(link), "24 hours");
            assert!(message.text.contains(link), "{kind:?}");
            assert!(message.html.contains("token=a&amp;b&lt;c&gt;") && !message.html.contains("a&b<c>"), "{kind:?}");
            assert!(message.text.contains("24 hours"), "{kind:?}");
        }
        for kind in [MailKind::PasswordChanged, MailKind::EmailChangeRequested] {
            let message = compose(kind, Some(link), "24 hours");
            assert!(
                !message.text.contains("http") && !message.html.contains("href"),
                "{kind:?}: a notice acts on nothing"
            );
        }
    }

    #[test]
    fn given_two_kinds_and_two_emails_when_naming_request_records_then_all_differ() {
        let (a, b) = (Email::parse("a@example.com").unwrap(), Email::parse("b@example.com").unwrap());
        let names = [
            key().request_record(MailKind::VerificationRequested, &a),
            key().request_record(MailKind::ResetRequested, &a),
            key().request_record(MailKind::VerificationRequested, &b),
        ];
        assert!(names[0] != names[1] && names[0] != names[2] && names[1] != names[2]);
        assert!(names.iter().all(|n| n.starts_with("MAILREQ#") && !n.contains("example")));
    }
}
