//! Template parameters: defaults, `--parameter-overrides` style strings and constraint checks.

use std::collections::BTreeMap;

use serde_norway::{Mapping, Value};

use crate::error::{Error, Result};

/// Parses a `sam deploy --parameter-overrides` style string into `(name, value)` pairs.
///
/// Accepts `Name=Value Name2=Value2` (values may be quoted with `'` or `"` to contain spaces) and
/// the long form `ParameterKey=Name,ParameterValue=Value`. Later pairs win over earlier ones.
pub fn parse_overrides(input: &str) -> Result<Vec<(String, String)>> {
    let mut pairs = Vec::new();
    for token in split_words(input)? {
        let pair = if let Some(rest) = token.strip_prefix("ParameterKey=") {
            let (name, value) = rest.split_once(",ParameterValue=").ok_or_else(|| {
                Error::Override(format!("expected ParameterKey=NAME,ParameterValue=VALUE in {rest:?}"))
            })?;
            (name.to_owned(), value.to_owned())
        } else {
            let (name, value) =
                token.split_once('=').ok_or_else(|| Error::Override(format!("expected NAME=VALUE, got {token:?}")))?;
            (name.to_owned(), value.to_owned())
        };
        if pair.0.is_empty() {
            return Err(Error::Override(format!("empty parameter name in {token:?}")));
        }
        pairs.push(pair);
    }
    Ok(pairs)
}

/// Splits on unquoted whitespace, removing the quotes (a minimal shell-like word splitter).
fn split_words(input: &str) -> Result<Vec<String>> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in input.chars() {
        match quote {
            Some(q) if c == q => quote = None,
            Some(_) => current.push(c),
            None if c == '\'' || c == '"' => {
                quote = Some(c);
                in_word = true;
            }
            None if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            None => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(Error::Override("unterminated quote".into()));
    }
    if in_word {
        words.push(current);
    }
    Ok(words)
}

/// Renders a YAML scalar the way CloudFormation passes it around: as a string.
pub(crate) fn scalar_string(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Tagged(t) => scalar_string(&t.value),
        _ => None,
    }
}

/// Resolves every declared parameter: default, overridden by `overrides`, then validated.
pub(crate) fn resolve_parameters(
    declared: Option<&Mapping>,
    overrides: &[(String, String)],
) -> Result<BTreeMap<String, String>> {
    let empty = Mapping::new();
    let declared = declared.unwrap_or(&empty);
    let mut values = BTreeMap::new();
    for (name, spec) in declared {
        let name = name.as_str().ok_or_else(|| Error::Template("parameter names must be strings".into()))?;
        if let Some(default) = spec.get("Default") {
            let default = scalar_string(default)
                .ok_or_else(|| Error::Parameter { name: name.into(), reason: "Default must be a scalar".into() })?;
            values.insert(name.to_owned(), default);
        }
    }
    for (name, value) in overrides {
        if !declared.contains_key(name.as_str()) {
            return Err(Error::Override(format!("unknown parameter {name:?}")));
        }
        values.insert(name.clone(), value.clone());
    }
    for (name, spec) in declared {
        let name = name.as_str().unwrap_or_default();
        let value = values
            .get(name)
            .ok_or_else(|| Error::Parameter { name: name.into(), reason: "no Default and no override".into() })?;
        validate(name, spec, value)?;
    }
    Ok(values)
}

/// Checks `AllowedValues`, `AllowedPattern`, `Type: Number` with `MinValue`/`MaxValue`, and
/// `MinLength`/`MaxLength`.
fn validate(name: &str, spec: &Value, value: &str) -> Result<()> {
    let fail = |reason: String| Err(Error::Parameter { name: name.into(), reason });
    let kind = spec.get("Type").and_then(Value::as_str).unwrap_or("String");
    if let Some(allowed) = spec.get("AllowedValues").and_then(Value::as_sequence) {
        let allowed: Vec<String> = allowed.iter().filter_map(scalar_string).collect();
        if !allowed.iter().any(|a| a == value) {
            return fail(format!("{value:?} is not one of {allowed:?}"));
        }
    }
    if let Some(pattern) = spec.get("AllowedPattern").and_then(scalar_string) {
        // CloudFormation matches the whole value.
        let regex = regex_lite::Regex::new(&format!("^(?:{pattern})$"))
            .map_err(|e| Error::Parameter { name: name.into(), reason: format!("bad AllowedPattern: {e}") })?;
        if !regex.is_match(value) {
            return fail(format!("{value:?} does not match AllowedPattern {pattern}"));
        }
    }
    if kind == "Number" {
        let number: f64 = match value.trim().parse() {
            Ok(n) => n,
            Err(_) => return fail(format!("{value:?} is not a number")),
        };
        if let Some(min) = spec.get("MinValue").and_then(bound) {
            if number < min {
                return fail(format!("{value} is below MinValue {min}"));
            }
        }
        if let Some(max) = spec.get("MaxValue").and_then(bound) {
            if number > max {
                return fail(format!("{value} is above MaxValue {max}"));
            }
        }
    }
    let length = value.chars().count() as f64;
    if let Some(min) = spec.get("MinLength").and_then(bound) {
        if length < min {
            return fail(format!("shorter than MinLength {min}"));
        }
    }
    if let Some(max) = spec.get("MaxLength").and_then(bound) {
        if length > max {
            return fail(format!("longer than MaxLength {max}"));
        }
    }
    Ok(())
}

fn bound(value: &Value) -> Option<f64> {
    scalar_string(value)?.trim().parse().ok()
}

/// Whether a parameter's `Ref` yields a list (`CommaDelimitedList`, `List<...>`).
pub(crate) fn is_list_type(spec: &Value) -> bool {
    spec.get("Type").and_then(Value::as_str).is_some_and(|t| t == "CommaDelimitedList" || t.starts_with("List<"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_short_and_long_forms_with_quotes() {
        let pairs = parse_overrides("A=1  B='x y' ParameterKey=C,ParameterValue=z \"D=q r\"").unwrap();
        assert_eq!(
            pairs,
            vec![
                ("A".into(), "1".into()),
                ("B".into(), "x y".into()),
                ("C".into(), "z".into()),
                ("D".into(), "q r".into()),
            ]
        );
        assert!(parse_overrides("").unwrap().is_empty());
        assert!(parse_overrides("novalue").is_err());
        assert!(parse_overrides("A='open").is_err());
        assert!(parse_overrides("=x").is_err());
    }

    fn declared() -> Mapping {
        serde_norway::from_str(
            "N: {Type: Number, Default: 15, MinValue: 8, MaxValue: 64}\n\
             L: {Type: String, Default: INFO, AllowedValues: [DEBUG, INFO]}\n\
             S: {Type: String, Default: abc, MaxLength: 4}\n\
             P: {Type: String, Default: '*', AllowedPattern: \"\\\\*|https?://[^\\\\s,]+\"}\n",
        )
        .unwrap()
    }

    #[test]
    fn defaults_overrides_and_constraints() {
        let d = declared();
        let v = resolve_parameters(Some(&d), &[]).unwrap();
        assert_eq!(v["N"], "15");
        assert_eq!(v["L"], "INFO");
        let v = resolve_parameters(Some(&d), &[("N".into(), "64".into())]).unwrap();
        assert_eq!(v["N"], "64");
        assert!(resolve_parameters(Some(&d), &[("P".into(), "https://app.example.com".into())]).is_ok());
        for bad in [
            ("N", "7"),
            ("N", "65"),
            ("N", "ten"),
            ("L", "TRACE"),
            ("S", "abcde"),
            ("P", "ftp://x"),
            ("P", "https://a b"),
        ] {
            let err = resolve_parameters(Some(&d), &[(bad.0.into(), bad.1.into())]).unwrap_err();
            assert!(matches!(err, Error::Parameter { .. }), "{bad:?}: {err}");
        }
        let err = resolve_parameters(Some(&d), &[("Nope".into(), "1".into())]).unwrap_err();
        assert!(matches!(err, Error::Override(_)));
    }

    #[test]
    fn missing_value_is_an_error() {
        let d: Mapping = serde_norway::from_str("X: {Type: String}").unwrap();
        assert!(resolve_parameters(Some(&d), &[]).is_err());
        assert!(resolve_parameters(Some(&d), &[("X".into(), "v".into())]).is_ok());
    }
}
