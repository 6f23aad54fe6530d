//! AWS WAF in front of the stage: the template's web ACL of rate-based rules per client IP
//! ([`crate::Template::web_acl`]), evaluated before API Gateway does anything else.
//!
//! How this follows AWS, and where it deliberately differs:
//! - Rules run in priority order; the first one that blocks ends the evaluation, so later rules
//!   neither see nor count that request (as in a web ACL). The default action is Allow.
//! - A rule counts every request that matches its scope-down statement, the ones it blocks
//!   included: AWS documents that a rate-based rule "aggregates, counts, and rate limits" the
//!   requests matching its scope-down statement, with no exception for blocked ones. A client that
//!   keeps sending while blocked therefore stays blocked until its rate falls below the limit.
//! - The window is exact: a request is blocked when, counting it, more than `Limit` requests from
//!   its IP matched within the last `EvaluationWindowSec`. AWS only estimates the rate (weighting
//!   recent requests more), updates it periodically and takes up to tens of seconds to start or
//!   stop blocking, so it blocks near the limit, not at it; the exact local count is what lets
//!   tests assert the limit.
//! - The client IP is the TCP peer address (`AggregateKeyType: IP`), never `X-Forwarded-For`.
//! - WAF inspects the path as clients send it to API Gateway, stage included (`/v1/login`), while
//!   the local gateway serves stage-less paths (`/login`, like `sam local start-api`). Rather
//!   than strip `/<stage>` from the search strings, the rules are matched against
//!   `/<stage><path>`: the same outcome for a search string starting with the stage, and also
//!   right for `ENDS_WITH`/`CONTAINS` strings and for a stage name that `LOWERCASE` would alter.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Instant;

use crate::api::{ByteMatch, PositionalConstraint, RateRule, TextTransformation, WebAcl};

/// The web ACL and, per rule and client IP, the times of its last `Limit + 1` matching requests.
#[derive(Debug)]
pub struct Waf {
    acl: WebAcl,
    recent: Mutex<HashMap<(usize, String), VecDeque<Instant>>>,
}

/// Whether `m` matches `value` (the URI path as WAF sees it).
pub fn byte_match(m: &ByteMatch, value: &str) -> bool {
    let value = m.text_transformations.iter().fold(value.to_owned(), |v, t| match t {
        TextTransformation::None => v,
        TextTransformation::Lowercase => v.to_ascii_lowercase(),
    });
    let search = m.search_string.as_str();
    match m.positional_constraint {
        PositionalConstraint::Exactly => value == search,
        PositionalConstraint::StartsWith => value.starts_with(search),
        PositionalConstraint::EndsWith => value.ends_with(search),
        PositionalConstraint::Contains => value.contains(search),
    }
}

/// Records a matching request at `now` in `times` and tells whether, counting it, more than
/// `rule.limit` requests matched within the window. Only the last `limit + 1` times are kept: the
/// count is over the limit exactly when the oldest of them is still inside the window.
fn over_limit(times: &mut VecDeque<Instant>, rule: &RateRule, now: Instant) -> bool {
    let keep = usize::try_from(rule.limit).unwrap_or(usize::MAX).saturating_add(1);
    times.push_back(now);
    while times.len() > keep {
        times.pop_front();
    }
    times.len() == keep && times.front().is_some_and(|t| now.saturating_duration_since(*t) < rule.window)
}

impl Waf {
    /// Enforces `acl`, with no request counted yet.
    pub fn new(acl: WebAcl) -> Self {
        Self { acl, recent: Mutex::default() }
    }

    /// Evaluates a request from `source_ip` for `uri_path` (stage included) at `now`; returns the
    /// rule that blocks it, if any.
    pub fn check(&self, source_ip: &str, uri_path: &str, now: Instant) -> Option<&RateRule> {
        let mut recent = self.recent.lock().unwrap_or_else(|e| e.into_inner());
        self.acl.rules.iter().enumerate().find_map(|(i, rule)| {
            let matches = rule.scope_down.as_ref().is_none_or(|m| byte_match(m, uri_path));
            (matches && over_limit(recent.entry((i, source_ip.to_owned())).or_default(), rule, now)).then_some(rule)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Template;
    use std::time::Duration;

    fn rule(limit: u64, window: u64, scope_down: Option<ByteMatch>) -> RateRule {
        RateRule { name: "r".into(), priority: 0, limit, window: Duration::from_secs(window), scope_down }
    }

    fn starts_with(search: &str) -> ByteMatch {
        ByteMatch {
            search_string: search.into(),
            positional_constraint: PositionalConstraint::StartsWith,
            text_transformations: vec![TextTransformation::Lowercase],
        }
    }

    #[test]
    fn given_a_limit_when_requests_arrive_then_the_one_over_it_within_the_window_is_blocked() {
        let waf = Waf::new(WebAcl { logical_id: "A".into(), rules: vec![rule(3, 10, None)] });
        let t0 = Instant::now();
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        let blocked = |ip: &str, ms: u64| waf.check(ip, "/v1/login", at(ms)).is_some();
        assert!(!blocked("1.1.1.1", 0) && !blocked("1.1.1.1", 1_000) && !blocked("1.1.1.1", 2_000));
        assert!(blocked("1.1.1.1", 3_000), "the 4th within 10 s");
        assert!(!blocked("2.2.2.2", 3_000), "each IP has its own count");
        // At 10 s the first request has left the window, but the blocked one still counts.
        assert!(blocked("1.1.1.1", 10_000));
        // At 12.5 s only the requests of 3 s and 10 s remain: this one is the third.
        assert!(!blocked("1.1.1.1", 12_500));
    }

    #[test]
    fn given_blocked_requests_when_the_window_slides_then_they_still_count() {
        let r = rule(2, 10, None);
        let t0 = Instant::now();
        let mut times = VecDeque::new();
        let mut at = |s: u64| over_limit(&mut times, &r, t0 + Duration::from_secs(s));
        assert!(!at(0) && !at(0));
        assert!(at(9) && at(9), "over the limit");
        // At 10.5 s the two allowed requests are out of the window; the two blocked ones are not.
        assert!(over_limit(&mut times, &r, t0 + Duration::from_millis(10_500)));
    }

    #[test]
    fn given_a_scope_down_when_a_path_does_not_match_then_it_is_neither_counted_nor_blocked() {
        let waf = Waf::new(WebAcl { logical_id: "A".into(), rules: vec![rule(1, 60, Some(starts_with("/v1/login")))] });
        let now = Instant::now();
        for _ in 0..5 {
            assert!(waf.check("1.1.1.1", "/v1/users/x", now).is_none());
        }
        // Lower-cased, both match the scope-down statement: the first is counted, the second blocked.
        assert!(waf.check("1.1.1.1", "/v1/LOGIN", now).is_none());
        assert!(waf.check("1.1.1.1", "/v1/login/extra", now).is_some());
    }

    #[test]
    fn given_each_positional_constraint_when_matching_then_it_compares_the_transformed_path() {
        let mut m = starts_with("/v1/login");
        let cases = [
            (PositionalConstraint::Exactly, "/v1/Login", true),
            (PositionalConstraint::Exactly, "/v1/login/", false),
            (PositionalConstraint::StartsWith, "/v1/loginx", true),
            (PositionalConstraint::EndsWith, "/x/v1/login", true),
            (PositionalConstraint::Contains, "/a/v1/login/b", true),
            (PositionalConstraint::Contains, "/v1/logi", false),
        ];
        for (constraint, path, expected) in cases {
            m.positional_constraint = constraint;
            assert_eq!(byte_match(&m, path), expected, "{constraint:?} {path}");
        }
        m.text_transformations = vec![TextTransformation::None];
        assert!(!byte_match(&m, "/V1/login"));
        // The transformation applies to the path, not the search string: an upper-case search
        // string never matches a lower-cased path, locally as on AWS.
        m.search_string = "/V1/login".into();
        m.text_transformations = vec![TextTransformation::Lowercase];
        assert!(!byte_match(&m, "/V1/login"));
    }

    #[test]
    fn given_the_template_when_parsing_the_web_acl_then_each_auth_route_has_its_rule() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../template.yaml");
        let acl = Template::load_with_overrides(path, "WafLoginLimit=10 WafWindowSeconds=60 StageName=prod")
            .unwrap()
            .web_acl()
            .unwrap()
            .expect("WafEnabled defaults to true");
        let summary: Vec<_> = acl.rules.iter().map(|r| (r.name.as_str(), r.limit, r.window.as_secs())).collect();
        let expected = [
            ("register-per-ip", 50, 60),
            ("login-per-ip", 10, 60),
            ("refresh-per-ip", 300, 60),
            ("keys-per-ip", 100, 60),
        ];
        assert_eq!(summary, expected);
        assert_eq!(acl.rules[1].scope_down, Some(starts_with("/prod/login")));
        // The public keys need no API key: their per-IP limit covers both documents.
        assert_eq!(acl.rules[3].scope_down, Some(starts_with("/prod/.well-known/")));
        assert_eq!(Template::load_with_overrides(path, "EnableWaf=false").unwrap().web_acl().unwrap(), None);
    }

    const ACL: &str = r#"
Resources:
  Api: {Type: AWS::Serverless::Api, Properties: {StageName: v1}}
  Acl:
    Type: AWS::WAFv2::WebACL
    Properties:
      Scope: REGIONAL
      DefaultAction: {Allow: {}}
      Rules:
        - Name: r
          Priority: 1
          Action: {Block: {}}
          Statement:
            RateBasedStatement:
              Limit: 10
              AggregateKeyType: IP
              ScopeDownStatement:
                ByteMatchStatement:
                  FieldToMatch: {UriPath: {}}
                  PositionalConstraint: EXACTLY
                  SearchString: /v1/login
                  TextTransformations: [{Priority: 0, Type: NONE}]
  Assoc:
    Type: AWS::WAFv2::WebACLAssociation
    Properties:
      ResourceArn: !Sub "arn:aws:apigateway:${AWS::Region}::/restapis/${Api}/stages/v1"
      WebACLArn: !GetAtt Acl.Arn
"#;

    #[test]
    fn given_a_minimal_web_acl_when_parsing_then_defaults_apply() {
        let acl = Template::from_yaml(ACL, "").unwrap().web_acl().unwrap().unwrap();
        assert_eq!(acl.rules[0].window, Duration::from_secs(300), "EvaluationWindowSec defaults to 300");
        let unassociated = ACL.replace("${Api}", "other");
        assert_eq!(Template::from_yaml(&unassociated, "").unwrap().web_acl().unwrap(), None);
    }

    #[test]
    fn given_unsupported_waf_settings_when_parsing_then_the_error_names_them() {
        let cases = [
            ("AggregateKeyType: IP", "AggregateKeyType: FORWARDED_IP", "FORWARDED_IP"),
            ("Action: {Block: {}}", "Action: {Count: {}}", "Action Count"),
            ("Action: {Block: {}}", "Action: {Block: {CustomResponse: {ResponseCode: 429}}}", "Action Block"),
            ("PositionalConstraint: EXACTLY", "PositionalConstraint: CONTAINS_WORD", "CONTAINS_WORD"),
            ("Type: NONE", "Type: URL_DECODE", "URL_DECODE"),
            ("FieldToMatch: {UriPath: {}}", "FieldToMatch: {QueryString: {}}", "QueryString"),
            ("ByteMatchStatement:", "RegexMatchStatement:", "RegexMatchStatement"),
            ("Limit: 10", "Limit: 10\n              CustomKeys: []", "CustomKeys"),
            ("RateBasedStatement:", "GeoMatchStatement:", "GeoMatchStatement"),
            ("Priority: 1", "Priority: 1\n          RuleLabels: [{Name: x}]", "RuleLabels"),
            ("DefaultAction: {Allow: {}}", "DefaultAction: {Block: {}}", "DefaultAction Block"),
        ];
        for (from, to, named) in cases {
            let yaml = ACL.replacen(from, to, 1);
            let error = Template::from_yaml(&yaml, "").unwrap().web_acl().unwrap_err().to_string();
            assert!(error.contains(named), "{to}: {error}");
        }
    }
}
