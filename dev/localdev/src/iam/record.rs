//! The record of every decision the check made, one JSON line each, and what it proves: that no
//! call was denied, and that every action a statement grants was exercised by some call.
//!
//! Leading keys are recorded by their prefix only (`EMAIL#`, `SESSION#`, …): the policies scope
//! items by prefix, and the rest of a key is user data.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use super::policies::Policies;

/// One decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub function: String,
    pub action: String,
    /// The resource's logical id in the template, or its ARN when it is not one of the stack's.
    pub resource: String,
    pub leading_keys: Vec<String>,
    pub allowed: bool,
    /// Indexes of the function's `Allow` statements that matched.
    pub statements: Vec<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The prefix of a key that the policies scope on: up to and including the first `#`.
pub fn key_prefix(key: &str) -> String {
    key.find('#').map_or_else(String::new, |at| key[..=at].to_owned())
}

/// Appends entries to a file (several processes may append to the same one).
pub struct Recorder(Mutex<File>);

impl Recorder {
    pub fn open(path: &Path) -> std::io::Result<Self> {
        Ok(Self(Mutex::new(OpenOptions::new().create(true).append(true).open(path)?)))
    }

    pub fn record(&self, entry: &Entry) {
        if let Ok(mut line) = serde_json::to_vec(entry) {
            line.push(b'\n');
            let mut file = self.0.lock().unwrap_or_else(|e| e.into_inner());
            // One write per line: appends of a line are not interleaved with other writers'.
            if let Err(error) = file.write_all(&line) {
                eprintln!("iam: cannot record a decision: {error}");
            }
        }
    }
}

/// Every entry of a record file.
pub fn read(path: &Path) -> std::io::Result<Vec<Entry>> {
    let file = File::open(path)?;
    let mut entries = Vec::new();
    for line in BufReader::new(file).lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        entries.push(
            serde_json::from_str(&line)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, format!("{line}: {e}")))?,
        );
    }
    Ok(entries)
}

/// IAM's wildcard match: `*` any run of characters, `?` any one, case-insensitive for actions.
pub fn glob(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let fold = |s: &str| if ignore_case { s.to_ascii_lowercase() } else { s.to_owned() };
    let (pattern, text): (Vec<char>, Vec<char>) = (fold(pattern).chars().collect(), fold(text).chars().collect());
    let (mut p, mut t, mut star, mut mark) = (0, 0, None, 0);
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == '?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == '*' {
            star = Some(p);
            mark = t;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == '*')
}

/// Everything the record fails to prove: denied or unreadable calls, and every (function,
/// statement, action) and every `dynamodb:LeadingKeys` pattern granted to the function's code
/// that no allowed call used.
pub fn problems(policies: &Policies, entries: &[Entry]) -> Vec<String> {
    let mut problems: Vec<String> = entries
        .iter()
        .filter(|e| !e.allowed)
        .map(|e| {
            format!(
                "{} was denied {} on {} (leading keys {:?}): {}",
                e.function,
                e.action,
                e.resource,
                e.leading_keys,
                e.reason.as_deref().unwrap_or("no statement allows it")
            )
        })
        .collect();
    problems.sort();
    problems.dedup();
    for policy in policies.functions() {
        let used: Vec<&Entry> = entries.iter().filter(|e| e.allowed && e.function == policy.function).collect();
        // Lambda, not the function, uses an on-failure destination's statement; locally the
        // destination is a file (see crate::stream), so no call can exercise it.
        let granted = policy.statements.iter().enumerate().filter(|(_, s)| s.allow && !s.for_event_source);
        for (index, statement) in granted {
            let by_statement: Vec<&&Entry> = used.iter().filter(|e| e.statements.contains(&index)).collect();
            for action in &statement.actions {
                if !by_statement.iter().any(|e| glob(action, &e.action, true)) {
                    problems.push(format!(
                        "{} statement {index} ({}) grants {action}, which no call exercised",
                        policy.function, statement.policy_name
                    ));
                }
            }
            for pattern in statement.condition_values("dynamodb:LeadingKeys") {
                let hit = by_statement.iter().any(|e| e.leading_keys.iter().any(|k| glob(&pattern, k, false)));
                if !hit {
                    problems.push(format!(
                        "{} statement {index} ({}) allows leading keys {pattern}, which no call used",
                        policy.function, statement.policy_name
                    ));
                }
            }
        }
    }
    problems
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn given_iam_wildcards_when_matching_then_star_and_question_mark_work() {
        assert!(glob("dynamodb:*Item", "dynamodb:GetItem", true));
        assert!(glob("DynamoDB:getitem", "dynamodb:GetItem", true));
        assert!(!glob("dynamodb:Get*", "dynamodb:PutItem", true));
        assert!(glob("EMAIL#*", "EMAIL#", false));
        assert!(!glob("email#*", "EMAIL#", false));
        assert!(glob("a?c", "abc", false) && !glob("a?c", "ac", false));
        assert!(glob("*", "", false));
    }

    #[test]
    fn given_keys_when_recording_then_only_prefixes_are_kept() {
        assert_eq!(key_prefix("EMAIL#ada@example.com"), "EMAIL#");
        assert_eq!(key_prefix("no-prefix"), "");
    }
}
