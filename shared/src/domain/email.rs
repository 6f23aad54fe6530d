use std::fmt;

use email_address::EmailAddress;

/// An email address, trimmed and lower-cased: the one spelling used for uniqueness, lookup and
/// responses, so `Alice@Example.com ` and `alice@example.com` are one account.
///
/// Policy on top of RFC 5322 syntax (checked by `email_address`): ASCII only (internationalised
/// domains must be sent in their `xn--` form, which rules out look-alike Unicode spellings), a
/// dotted domain name (no IP literals), no quoted local part, at most 254 characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Email(String);

pub const MAX_EMAIL_LEN: usize = 254;

impl Email {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let email = raw.trim().to_ascii_lowercase();
        if email.is_empty() {
            return Err("must not be empty".into());
        }
        if email.len() > MAX_EMAIL_LEN {
            return Err(format!("must be at most {MAX_EMAIL_LEN} characters"));
        }
        if !email.is_ascii() {
            return Err("must contain only ASCII characters (use the xn-- form for international domains)".into());
        }
        let invalid = || "must be a valid email address".to_string();
        // No display text: `Eve <victim@example.com>` names one address and delivers to another.
        let options = email_address::Options::default().without_display_text();
        let parsed = EmailAddress::parse_with_options(&email, options).map_err(|_| invalid())?;
        // `email_address` already refuses spaces, control characters, empty or over-long labels
        // and labels that start or end with a hyphen; the policy adds a dotted host name of
        // letters, digits and hyphens (no IP literal, no `_` or `!`) whose top label is not all
        // digits (RFC 1123 §2.1: so `127.0.0.1` is not one), and no quoted local part.
        let domain = parsed.domain();
        let top_label_ok = domain.rsplit('.').next().is_some_and(|top| !top.bytes().all(|b| b.is_ascii_digit()));
        let domain_ok = domain.contains('.')
            && top_label_ok
            && domain.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');

        if parsed.local_part().starts_with('"') || !domain_ok {
            return Err(invalid());
        }
        Ok(Self(email))
    }

    /// An address read back from the store, where only parsed addresses are written.
    pub(crate) fn stored(text: &str) -> Self {
        Self(text.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the `@`, used to refuse passwords that contain it.
    pub fn local_part(&self) -> &str {
        self.0.rsplit_once('@').map_or(&self.0, |(local, _)| local)
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_mixed_case_and_spaces_when_parsing_then_the_address_is_normalised() {
        let email = Email::parse("  Alice.Smith+tag@Example.COM \n").unwrap();
        assert_eq!(email.as_str(), "alice.smith+tag@example.com");
        assert_eq!(email.local_part(), "alice.smith+tag");
    }

    #[test]
    fn given_invalid_addresses_when_parsing_then_each_is_refused() {
        for raw in [
            "",
            "   ",
            "plainaddress",
            "@example.com",
            "alice@",
            "alice@localhost",
            "alice@[127.0.0.1]",
            "\"quoted\"@example.com",
            "alice@exa mple.com",
            "alice@-example.com",
            "alice@example..com",
            "alice@exa_mple.com",
            "alice@ex!ample.com",
            "alice@еxample.com", // Cyrillic "е"
            "аlice@example.com", // Cyrillic "а"
            "alice\u{0}@example.com",
            "a@b@example.com",
            // A display name: reads as one address, delivers to another.
            "Eve <alice@example.com>",
            "alice@example.com <eve@example.com>",
            // A bare IPv4 address, or any all-digit top label, is no host name.
            "alice@127.0.0.1",
            "alice@example.123",
        ] {
            assert!(Email::parse(raw).is_err(), "{raw:?} should be refused");
        }
    }

    #[test]
    fn given_addresses_around_254_characters_when_parsing_then_254_is_the_limit() {
        // The longest local part (64) and labels of at most 63 characters.
        let domain = format!("{}.{}.{}", "b".repeat(63), "c".repeat(63), "d".repeat(61));
        let longest = format!("{}@{domain}", "a".repeat(64));
        assert_eq!(longest.len(), 254);
        assert_eq!(Email::parse(&longest).unwrap().as_str(), longest);

        let long = format!("{}@example.com", "a".repeat(243));
        assert_eq!(long.len(), 255);
        assert_eq!(Email::parse(&long).unwrap_err(), "must be at most 254 characters");
    }

    #[test]
    fn given_punycode_domain_when_parsing_then_it_is_accepted() {
        assert!(Email::parse("bob@xn--bcher-kva.example").is_ok());
    }
}
