use std::collections::HashSet;
use std::sync::LazyLock;

use secrecy::{ExposeSecret, SecretString};

use super::{DisplayName, Email};

/// Upper bound on password length, in Unicode scalar values. NIST SP 800-63B asks that at least
/// 64 be allowed; a cap keeps hashing cost bounded.
pub const MAX_PASSWORD_CHARS: usize = 256;

/// Passwords refused because they are among the most common ones (about 20,000 entries, lower
/// case, sorted; see `shared/data/README.md` for provenance).
static COMMON_PASSWORDS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| include_str!("../../data/common-passwords.txt").lines().collect());

/// The list in the form padded and repeated passwords are compared to: each entry's [`core`],
/// so that `p@ssw0rd` also stands for `pssw0rd` and `1qaz2wsx` for `qaz2wsx`.
static COMMON_CORES: LazyLock<HashSet<String>> = LazyLock::new(|| {
    COMMON_PASSWORDS.iter().map(|p| core(&skeleton(p)).to_owned()).filter(|c| !c.is_empty()).collect()
});

/// Longest unit whose repetition is refused: up to 4 characters repeated is at most four
/// characters' worth of guessing, however long the password.
const MAX_REPEATED_UNIT: usize = 4;
/// Shortest stretch counted as a keyboard or alphabet run; two neighbours happen in ordinary words.
const MIN_RUN: usize = 3;
/// Most characters a skeleton may have outside runs and still be refused: beyond that, those
/// characters carry enough strength of their own.
const MAX_OUTSIDE_RUNS: usize = 4;
/// Shorter context words (`ada`, `bob`) are too common in ordinary text to refuse.
const MIN_CONTEXT_WORD: usize = 4;
/// The service's name, as an attacker targeting it would try first (`serverless` also covers
/// `serverless-auth`, whose skeleton contains it).
const SERVICE_WORDS: [&str; 1] = ["serverless"];
/// Orders along which consecutive characters make a run: the alphabet, the digits with 9
/// followed by 0, and the keyboard's rows read one after another (so `0`→`q`, `p`→`a`, `l`→`z`).
const SEQUENCES: [&str; 3] = ["abcdefghijklmnopqrstuvwxyz", "01234567890", "1234567890qwertyuiopasdfghjklzxcvbnm"];

/// NIST SP 800-63B rev 4 rules for a new password: a minimum length (15 by default), no
/// composition rules, any Unicode, never truncated or normalised, not a common or predictable
/// password, and not containing words from its context. Control characters are refused because
/// no keyboard can reliably type them.
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
    /// Checks `raw` against the policy. Past length, control characters and the exact blocklist,
    /// every rule compares the password's [`skeleton`], so case, spaces and punctuation change
    /// nothing. Refused, in this order:
    /// - a skeleton containing a context word of 4+ characters: the skeleton of the email's
    ///   local part or of the display name, any of their words (split at non-letters/digits), or
    ///   `serverless`. Containing is enough, not only consisting of it: anyone targeting the
    ///   account knows these words, so they add nothing to a password's strength;
    /// - a skeleton that is a unit of 1–4 characters repeated at least twice (the last copy may
    ///   be cut short): `aaaa…`, `abcabc…`, `x7Lq x7Lq x7Lq x7Lq`;
    /// - a skeleton with at most 4 characters outside runs, a run being 3+ consecutive
    ///   characters each following the previous one, always forwards or always backwards, along
    ///   one of [`SEQUENCES`];
    /// - a skeleton whose [`core`] (without leading and trailing digits) is the core of a common
    ///   password, or which, or whose core, is a unit repeated at least twice (the last copy may
    ///   be cut short) whose core is the core of a common password: `password2024!`,
    ///   `passwordpassword`, `password1password1`.
    pub fn parse(
        raw: String,
        policy: &PasswordPolicy,
        email: Option<&Email>,
        name: Option<&DisplayName>,
    ) -> Result<Self, String> {
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
        if COMMON_PASSWORDS.binary_search(&password.to_lowercase().as_str()).is_ok() {
            return Err("is too common; choose a less predictable password".into());
        }
        let skeleton = skeleton(password);
        let contains = |words: Vec<String>| words.iter().any(|word| skeleton.contains(word.as_str()));
        if email.is_some_and(|email| contains(context_words(email.local_part()))) {
            return Err("must not contain the email address or part of it".into());
        }
        if name.is_some_and(|name| contains(context_words(name.as_str()))) {
            return Err("must not contain the name or part of it".into());
        }
        if SERVICE_WORDS.iter().any(|word| skeleton.contains(word)) {
            return Err("must not contain the service's name".into());
        }
        let chars: Vec<char> = skeleton.chars().collect();
        if (1..=MAX_REPEATED_UNIT).any(|unit| repeats(&chars, unit)) {
            return Err("repeats a short pattern; choose a less predictable password".into());
        }
        let in_runs = chars_in_runs(&chars);
        if in_runs > 0 && chars.len() - in_runs <= MAX_OUTSIDE_RUNS {
            return Err("follows the keyboard or the alphabet; choose a less predictable password".into());
        }
        if is_common_padded_or_repeated(&skeleton) {
            return Err("is a common password padded or repeated; choose a less predictable password".into());
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

/// What the rules compare: lower case, letters and digits only, so that case, spaces and
/// punctuation cannot dress up a weak password. Letters and digits of every script are kept and
/// lower-cased but not folded (`ö` stays `ö`, so `pässwörd` is not `password`): dropping them
/// would leave nothing to check in a non-Latin password, and folding needs Unicode tables this
/// crate does not carry. A text without any letter or digit keeps its non-space characters
/// instead, so that `!!!!!!!!!!!!!!!` or one emoji typed fifteen times is still a repetition;
/// and a text of spaces only is kept whole, so that it is one too.
fn skeleton(text: &str) -> String {
    let kept: String = text.chars().flat_map(char::to_lowercase).filter(|c| c.is_alphanumeric()).collect();
    if !kept.is_empty() {
        return kept;
    }
    let visible: String = text.chars().filter(|c| !c.is_whitespace()).flat_map(char::to_lowercase).collect();
    if visible.is_empty() {
        text.to_owned()
    } else {
        visible
    }
}

/// A skeleton without its leading and trailing digits: the usual padding of a common password.
fn core(skeleton: &str) -> &str {
    skeleton.trim_matches(|c: char| c.is_ascii_digit())
}

/// The skeleton of `text` and of each of its words, when long enough to be refused.
fn context_words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .map(skeleton)
        .chain([skeleton(text)])
        .filter(|word| word.chars().count() >= MIN_CONTEXT_WORD)
        .collect()
}

/// Whether `s` is its first `unit` (≥ 1) characters repeated at least twice, the last copy
/// possibly cut short.
fn repeats(s: &[char], unit: usize) -> bool {
    s.len() >= 2 * unit && (unit..s.len()).all(|i| s[i] == s[i - unit])
}

/// How many characters of `s` lie in runs (see [`NewPassword::parse`]).
fn chars_in_runs(s: &[char]) -> usize {
    let next = |order: &str, c: char| order.find(c).and_then(|i| order[i + c.len_utf8()..].chars().next());
    let mut in_run = vec![false; s.len()];
    for order in SEQUENCES {
        for backwards in [false, true] {
            let step = |a, b| if backwards { next(order, b) == Some(a) } else { next(order, a) == Some(b) };
            let mut start = 0;
            for end in 1..=s.len() {
                if end == s.len() || !step(s[end - 1], s[end]) {
                    if end - start >= MIN_RUN {
                        in_run[start..end].fill(true);
                    }
                    start = end;
                }
            }
        }
    }
    in_run.iter().filter(|&&r| r).count()
}

/// Whether `skeleton`, digits around it aside, is a common password or one repeated. Both the
/// skeleton and its core are tried, so that the digits may pad the whole (`password2024!`) or
/// each copy (`password1password1`).
fn is_common_padded_or_repeated(skeleton: &str) -> bool {
    let is_common = |s: &str| COMMON_CORES.contains(core(s));
    [skeleton, core(skeleton)].into_iter().any(|s| {
        let chars: Vec<char> = s.chars().collect();
        is_common(s)
            || (1..=chars.len() / 2)
                .any(|unit| repeats(&chars, unit) && is_common(&chars[..unit].iter().collect::<String>()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A filler that passes every rule at any length: it repeats only every 28 characters.
    fn strong(n: usize) -> String {
        "qz7#Lm2$Vr9&Xw4*Tp6@Ny8!Kd3%".chars().cycle().take(n).collect()
    }

    fn parse_for(raw: &str, email: &str, name: &str) -> Result<NewPassword, String> {
        let (email, name) = (Email::parse(email).unwrap(), DisplayName::parse(name).unwrap());
        NewPassword::parse(raw.to_owned(), &PasswordPolicy::default(), Some(&email), Some(&name))
    }

    fn parse(raw: &str) -> Result<NewPassword, String> {
        parse_for(raw, "jdoe-1980@example.com", "Ada Lovelace")
    }

    /// The refusal message for `raw`, which must be refused.
    fn refusal(raw: &str) -> String {
        parse(raw).err().unwrap_or_else(|| panic!("{raw:?} was accepted"))
    }

    fn assert_accepted(raw: &str) {
        if let Err(e) = parse(raw) {
            panic!("{raw:?} was refused: {e}");
        }
    }

    #[test]
    fn the_common_password_list_is_sorted_lower_case_and_large_enough() {
        assert!(COMMON_PASSWORDS.len() >= 10_000, "only {} entries", COMMON_PASSWORDS.len());
        assert!(COMMON_PASSWORDS.windows(2).all(|w| w[0] < w[1]), "list must be sorted and unique");
        assert!(COMMON_PASSWORDS.iter().all(|p| *p == p.to_lowercase()));
    }

    #[test]
    fn given_lengths_around_the_limits_when_parsing_then_boundaries_hold() {
        assert!(refusal(&"x7Lq".repeat(3)).contains("at least 15"));
        assert!(parse("correct horse b").is_ok(), "15 characters");
        assert!(parse("correct horse ").is_err(), "14 characters");
        assert!(parse(&strong(256)).is_ok(), "256 characters");
        assert!(refusal(&strong(257)).contains("at most 256"));
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
        let refused = NewPassword::parse(common.to_uppercase(), &policy, None, None).unwrap_err();
        assert!(refused.contains("too common"), "{refused}");
    }

    #[test]
    fn given_control_characters_when_parsing_then_refused() {
        assert!(parse("abcdefgh\u{0}ijklmnopq").is_err());
        assert!(parse("abcdefgh\tijklmnopq").is_err());
    }

    #[test]
    fn given_text_when_making_its_skeleton_then_case_spaces_and_punctuation_are_dropped() {
        assert_eq!(skeleton("Pass-Word 1!"), "password1");
        assert_eq!(skeleton("ÅNGSTRÖM"), "ångström", "letters of any script kept, lower-cased, not folded");
        assert_eq!(skeleton("!! ?!"), "!!?!", "without letters or digits, the non-space characters");
        assert_eq!(core(&skeleton("2024 password1!")), "password", "digits around it removed");
    }

    #[test]
    fn given_strong_passwords_when_parsing_then_no_rule_refuses_them() {
        for raw in [
            "correct horse battery staple",
            "Correct-Horse-Battery-Staple!",
            "ÅngströmÅngströ",
            "my cat sleeps on the warm rug",
            "x7Lq 9vR2 kP4m wZ",
            "パスワードは長くて安全です🔐🔐🔐",
            "Ünïcödé pässwörd ünchänged",
            "tangerine submarine 42",
            "another fine passphrase",
            "🐈🌙🎻🍋🚲🦊🌵🎲🧊🪁🐙🍄🎈🧭🦉",
            // Random punctuation around a skeleton too short for any rule ("qx"), and around one
            // copy and a bit of a unit ("k9wk9": a repeat needs two whole copies).
            "q]%~'{;)`?<=,^x/",
            "k]9%w~k'{9;)`?<=",
        ] {
            assert_accepted(raw);
        }
        for n in 15..=MAX_PASSWORD_CHARS {
            assert_accepted(&strong(n));
        }
    }

    #[test]
    fn given_the_email_local_part_or_one_of_its_words_when_parsing_then_it_is_refused() {
        for raw in
            ["my name is JDOE-1980 ok?", "J.Doe.1980 is my login", "jdoe likes green tea", "born in 1980, not 1981"]
        {
            assert!(refusal(raw).contains("email"), "{raw}");
        }
        // Near misses: other words, and local parts or words shorter than 4 characters.
        assert_accepted("john doe walks home");
        assert!(parse_for("bob builds tall towers", "bob@example.com", "Someone").is_ok());
        assert!(parse_for("al and bo go to town", "al.bo@example.com", "Someone").is_ok());
    }

    #[test]
    fn given_the_display_name_or_one_of_its_words_when_parsing_then_it_is_refused() {
        for raw in ["ada LOVELACE wrote code", "Love-Lace and fine tea", "adalovelace was here"] {
            assert!(refusal(raw).contains("name"), "{raw}");
        }
        // Words under 4 characters are not checked on their own, but the whole name is.
        assert!(parse_for("li na sings every day", "someone@example.com", "Li Na").unwrap_err().contains("name"));
        assert!(parse_for("li sings, na dances", "someone@example.com", "Li Na").is_ok());
        assert_accepted("ada writes clean code");
        let anonymous = NewPassword::parse("lovelace wrote the code".into(), &PasswordPolicy::default(), None, None);
        assert!(anonymous.is_ok(), "no name given");
    }

    #[test]
    fn given_the_service_name_when_parsing_then_it_is_refused() {
        for raw in ["Serverless-Auth 2024 rocks!", "we love serverless apps", "SERVERLESS_AUTH_IS_GREAT"] {
            assert!(refusal(raw).contains("service"), "{raw}");
        }
        assert_accepted("my auth server is up");
        assert_accepted("serve the less fortunate");
    }

    #[test]
    fn given_a_short_unit_repeated_when_parsing_then_it_is_refused() {
        for raw in [
            "aaaaaaaaaaaaaaa",
            "abcabcabcabcabc",
            "abab abab abab abab",
            "ababababababababa",
            "x7Lq x7Lq x7Lq x7Lq",
            "ZZZZ-zzzz-ZZZZ-zzzz",
            "1212121212121212",
            "!!!!!!!!!!!!!!!",
            "🔐🔐🔐🔐🔐🔐🔐🔐🔐🔐🔐🔐🔐🔐🔐",
            &" ".repeat(15),
            &"ab9!".repeat(64),
        ] {
            assert!(refusal(raw).contains("repeats"), "{raw}");
        }
        // Units of 5 and more are beyond the bound.
        assert_accepted("x7Lq9 x7Lq9 x7Lq9");
        assert_accepted("ÅngströmÅngströ");
    }

    #[test]
    fn given_keyboard_or_alphabet_runs_when_parsing_then_they_are_refused() {
        for raw in [
            "abcdefghijklmnop",
            "ponmlkjihgfedcba",
            "1234567890123456",
            "6543210987654321",
            "7890123456789012",
            "qwertyuiopasdfgh",
            "hgfdsapoiuytrewq",
            "mnbvcxz lkjhgfdsa",
            "QWERTY 1234 asdf!zxcv",
            "abc xyz 123 qwe 987",
            "abc 901 xyz 109 abc",
            "opa lzx pas klz",
            "Abcdefghijk 2024", // four characters outside runs
        ] {
            assert!(refusal(raw).contains("keyboard"), "{raw}");
        }
        // Near misses: five characters outside runs, few runs, runs of two in ordinary words.
        assert_accepted("abcdefghij 7Qx9L");
        assert_accepted("qwerty is a keyboard");
        assert_accepted("first study of strings");
        assert_accepted("ed hi no stop ghost");
    }

    #[test]
    fn given_a_common_password_padded_or_repeated_when_parsing_then_it_is_refused() {
        for raw in [
            "passwordpassword",
            "password123456!!",
            "!!!password2024",
            "P@ssw0rd 2024!!!",
            "monkeymonkeymon",
            "2024 Dragon 2024!",
            "1qaz2wsx1qaz2wsx",
            "password1password1",
        ] {
            assert!(refusal(raw).contains("common password"), "{raw}");
        }
        assert_accepted("password manager 2024");
        assert_accepted("dragon boat race 2024");
        assert_accepted("2024 monkey island trip");
    }

    #[test]
    fn given_login_passwords_when_parsing_then_only_shape_is_checked() {
        assert!(SubmittedPassword::parse("short".into()).is_ok());
        assert!(SubmittedPassword::parse(String::new()).is_err());
        assert!(SubmittedPassword::parse("x".repeat(257)).is_err());
    }
}
