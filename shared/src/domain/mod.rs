//! Parsed request values ("parse, don't validate"): a handler only ever sees an [`Email`],
//! a [`NewPassword`] or a [`DisplayName`] that already passed every rule, so no code path can
//! forget a check. Each constructor returns a message fit for a problem+json `errors` entry.

mod email;
mod ids;
mod name;
mod password;

pub use email::Email;
pub use ids::{FamilyId, PasswordHash, TokenHash, UserId};
pub use name::DisplayName;
pub use password::{NewPassword, PasswordPolicy, SubmittedPassword, MAX_PASSWORD_CHARS};

/// Characters that are invisible or reorder text; names and passwords shown to people must not
/// hide their content behind them.
pub(crate) fn is_invisible_format(c: char) -> bool {
    matches!(c, '\u{200B}'..='\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2060}'..='\u{2069}' | '\u{FEFF}')
}
