use std::fmt;

use super::is_invisible_format;

/// A display name: trimmed, 1–100 characters (Unicode scalar values), no control characters and
/// no invisible or text-reordering characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DisplayName(String);

pub const MAX_NAME_CHARS: usize = 100;

impl DisplayName {
    pub fn parse(raw: &str) -> Result<Self, String> {
        let name = raw.trim();
        if name.is_empty() {
            return Err("must not be empty or only whitespace".into());
        }
        if name.chars().count() > MAX_NAME_CHARS {
            return Err(format!("must be at most {MAX_NAME_CHARS} characters"));
        }
        if name.chars().any(|c| c.is_control() || is_invisible_format(c)) {
            return Err("must not contain control or invisible characters".into());
        }
        Ok(Self(name.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DisplayName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_padded_unicode_name_when_parsing_then_it_is_trimmed_and_kept() {
        assert_eq!(DisplayName::parse("  Zoë 山田 ").unwrap().as_str(), "Zoë 山田");
    }

    #[test]
    fn given_names_at_the_limits_when_parsing_then_boundaries_hold() {
        assert!(DisplayName::parse(&"é".repeat(100)).is_ok());
        assert!(DisplayName::parse(&"é".repeat(101)).is_err());
        assert!(DisplayName::parse("x").is_ok());
    }

    #[test]
    fn given_empty_whitespace_or_control_characters_when_parsing_then_refused() {
        for raw in
            ["", " \t\n ", "\u{3000}", "a\u{0}b", "tab\there", "bell\u{7}", "rtl\u{202E}x", "zw\u{200B}j", "del\u{7f}"]
        {
            assert!(DisplayName::parse(raw).is_err(), "{raw:?} should be refused");
        }
    }
}
