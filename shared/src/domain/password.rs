use std::sync::LazyLock;

use secrecy::{ExposeSecret, SecretString};

use super::Email;

/// Upper bound on password length, in Unicode scalar values. NIST SP 800-63B asks that at least
/// 64 be allowed; a cap keeps hashing cost bounded.
pub const MAX_PASSWORD_CHARS: usize = 256;

/// Passwords refused because they are among the most common ones (about 20,000 entries, lower
/// case, sorted; see `shared/data/README.md` for provenance).
static COMMON_PASSWORDS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| include_str!("../../data/common-passwords.txt").lines().collect());

/// NIST SP 800-63B rev 4 rules for a new password: a minimum length (15 by default), no
/// composition rules, any Unicode, never truncated or normalised, not a common password, and not
/// containing the email's local part when that has 4 or more characters. Control characters are
/// refused because no keyboard can reliably type them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordPolicy {
    min_length: usize,
}

impl PasswordPolicy {
    pub fn new(min_length: usize) -> Self {
        Self { min_length }
    }

    pub fn min_length(&self) -> usize {
        self.min_length
    }
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self::new(15)
    }
}

/// A password that satisfies the policy, ready to be hashed. Kept in a [`SecretString`] so that
/// it cannot be printed or logged by accident.
#[derive(Debug)]
pub struct NewPassword(SecretString);

impl NewPassword {
    pub fn parse(raw: String, policy: &PasswordPolicy, email: Option<&Email>) -> Result<Self, String> {
        let raw = SecretString::from(raw);
        let password = raw.expose_secret();
        let length = password.chars().count();
        if length < policy.min_length {
            return Err(format!("must be at least {} characters", policy.min_length));
        }
        if length > MAX_PASSWORD_CHARS {
            return Err(format!("must be at most {MAX_PASSWORD_CHARS} characters"));
        }
        if password.chars().any(char::is_control) {
            return Err("must not contain control characters".into());
        }
        let lowered = password.to_lowercase();
        if COMMON_PASSWORDS.binary_search(&lowered.as_str()).is_ok() {
            return Err("is too common; choose a less predictable password".into());
        }
        if let Some(local) = email.map(Email::local_part).filter(|local| local.chars().count() >= 4) {
            if lowered.contains(local) {
                return Err("must not contain the email address".into());
            }
        }
        Ok(Self(raw))
    }

    pub fn secret(&self) -> &SecretString {
        &self.0
    }
}

/// A password presented at login. Only its shape is checked (a non-empty string within the
/// length cap): the policy applies to new passwords, and may have changed since an account was
/// created.
#[derive(Debug)]
pub struct SubmittedPassword(SecretString);

impl SubmittedPassword {
    pub fn parse(raw: String) -> Result<Self, String> {
        if raw.is_empty() {
            return Err("must not be empty".into());
        }
        if raw.chars().count() > MAX_PASSWORD_CHARS {
            return Err(format!("must be at most {MAX_PASSWORD_CHARS} characters"));
        }
        Ok(Self(SecretString::from(raw)))
    }

    pub fn secret(&self) -> &SecretString {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(raw: &str) -> Result<NewPassword, String> {
        NewPassword::parse(
            raw.to_owned(),
            &PasswordPolicy::default(),
            Some(&Email::parse("jdoe-1980@example.com").unwrap()),
        )
    }

    #[test]
    fn the_common_password_list_is_sorted_lower_case_and_large_enough() {
        assert!(COMMON_PASSWORDS.len() >= 10_000, "only {} entries", COMMON_PASSWORDS.len());
        assert!(COMMON_PASSWORDS.windows(2).all(|w| w[0] < w[1]), "list must be sorted and unique");
        assert!(COMMON_PASSWORDS.iter().all(|p| *p == p.to_lowercase()));
    }

    #[test]
    fn given_lengths_around_the_limits_when_parsing_then_boundaries_hold() {
        assert!(parse(&"x7Lq".repeat(3)).unwrap_err().contains("at least 15"));
        assert!(parse("correct horse b").is_ok(), "15 characters");
        assert!(parse("correct horse ").is_err(), "14 characters");
        assert!(parse(&"ab9!".repeat(64)).is_ok(), "256 characters");
        assert!(parse(&format!("{}z", "ab9!".repeat(64))).unwrap_err().contains("at most 256"));
    }

    #[test]
    fn given_unicode_when_counting_then_characters_not_bytes_are_counted() {
        // 15 characters, 45 bytes: accepted; nothing is normalised or truncated.
        let raw = "ÅngströmÅngströ";
        assert_eq!(raw.chars().count(), 15);
        let password = parse(raw).unwrap();
        assert_eq!(password.secret().expose_secret(), raw);
    }

    #[test]
    fn given_a_common_password_in_any_case_when_parsing_then_it_is_refused() {
        let common = COMMON_PASSWORDS.iter().find(|p| p.chars().count() >= 8).unwrap();
        let policy = PasswordPolicy::new(8);
        assert!(NewPassword::parse(common.to_uppercase(), &policy, None).unwrap_err().contains("too common"));
    }

    #[test]
    fn given_the_email_local_part_inside_when_parsing_then_it_is_refused() {
        assert!(parse("my name is JDOE-1980 ok?").unwrap_err().contains("email"));
        // Local parts shorter than 4 characters are not checked.
        let short = Email::parse("bob@example.com").unwrap();
        assert!(NewPassword::parse("bob bob bob bob bob".into(), &PasswordPolicy::default(), Some(&short)).is_ok());
    }

    #[test]
    fn given_control_characters_when_parsing_then_refused() {
        assert!(parse("abcdefgh\u{0}ijklmnopq").is_err());
        assert!(parse("abcdefgh\tijklmnopq").is_err());
    }

    #[test]
    fn given_login_passwords_when_parsing_then_only_shape_is_checked() {
        assert!(SubmittedPassword::parse("short".into()).is_ok());
        assert!(SubmittedPassword::parse(String::new()).is_err());
        assert!(SubmittedPassword::parse("x".repeat(257)).is_err());
    }
}
