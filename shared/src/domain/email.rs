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
        let parsed = EmailAddress::parse_with_options(&email, Default::default()).map_err(|_| invalid())?;
        let (local, domain) = (parsed.local_part(), parsed.domain());
        let domain_ok = !domain.starts_with('[')
            && domain.contains('.')
            && domain.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if local.starts_with('"') || !domain_ok || email.chars().any(|c| c.is_ascii_control() || c == ' ') {
            return Err(invalid());
        }
        Ok(Self(email))
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
            "alice@еxample.com", // Cyrillic "е"
            "аlice@example.com", // Cyrillic "а"
            "alice\u{0}@example.com",
            "a@b@example.com",
        ] {
            assert!(Email::parse(raw).is_err(), "{raw:?} should be refused");
        }
    }

    #[test]
    fn given_an_overlong_address_when_parsing_then_it_is_refused() {
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(Email::parse(&long).unwrap_err(), "must be at most 254 characters");
    }

    #[test]
    fn given_punycode_domain_when_parsing_then_it_is_accepted() {
        assert!(Email::parse("bob@xn--bcher-kva.example").is_ok());
    }
}
