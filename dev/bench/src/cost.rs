//! What an invocation costs once deployed, from a measured point and `docs/prices.yaml`; the
//! memory size the rule picks from a function's points; the monthly cost of a usage profile
//! against Amazon Cognito's tiers.

use std::path::Path;

use serde::Deserialize;

use crate::driver::FunctionResult;
use crate::report::percentile;

/// One published price, with where and when it was read.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub usd: f64,
    pub per: String,
    pub source: String,
    pub read: String,
}

/// A per-MAU price from `above_mau` up to the next tier's `above_mau`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tier {
    pub above_mau: u64,
    pub usd_per_mau: f64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tiered {
    /// Ascending by `above_mau`; the first starts where the free tier ends.
    pub tiers: Vec<Tier>,
    pub source: String,
    pub read: String,
}

impl Tiered {
    /// The monthly charge for `mau` monthly active users.
    pub fn monthly(&self, mau: u64) -> f64 {
        let mut usd = 0.0;
        for (i, tier) in self.tiers.iter().enumerate() {
            let end = self.tiers.get(i + 1).map_or(u64::MAX, |next| next.above_mau);
            let users = mau.min(end).saturating_sub(tier.above_mau);
            usd += users as f64 * tier.usd_per_mau;
        }
        usd
    }
}

/// `docs/prices.yaml`: on-demand prices of one region, no free tier applied (except Cognito's,
/// which is part of its tiers).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Prices {
    pub region: String,
    pub lambda_arm64_gb_second: Price,
    pub lambda_x86_64_gb_second: Price,
    pub lambda_requests_per_million: Price,
    pub dynamodb_write_units_per_million: Price,
    pub dynamodb_read_units_per_million: Price,
    pub dynamodb_storage_gb_month: Price,
    pub secrets_manager_secret_month: Price,
    pub secrets_manager_calls_per_10k: Price,
    pub ses_emails_per_1000: Price,
    pub api_gateway_rest_per_million: Price,
    pub waf_web_acl_month: Price,
    pub waf_rule_month: Price,
    pub waf_requests_per_million: Price,
    pub cloudwatch_logs_ingested_gb: Price,
    pub cloudwatch_logs_stored_gb_month: Price,
    pub cognito_lite: Tiered,
    pub cognito_essentials: Tiered,
}

impl Prices {
    pub fn load(path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let prices: Self = serde_norway::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(prices)
    }

    /// Every price with its name, for the report's list of sources.
    pub fn listed(&self) -> Vec<(&'static str, &Price)> {
        vec![
            ("Lambda arm64, GB-second", &self.lambda_arm64_gb_second),
            ("Lambda x86_64, GB-second", &self.lambda_x86_64_gb_second),
            ("Lambda requests", &self.lambda_requests_per_million),
            ("DynamoDB on-demand writes", &self.dynamodb_write_units_per_million),
            ("DynamoDB on-demand reads", &self.dynamodb_read_units_per_million),
            ("DynamoDB storage", &self.dynamodb_storage_gb_month),
            ("Secrets Manager, secret", &self.secrets_manager_secret_month),
            ("Secrets Manager, API calls", &self.secrets_manager_calls_per_10k),
            ("SES, outbound mail", &self.ses_emails_per_1000),
            ("API Gateway REST requests", &self.api_gateway_rest_per_million),
            ("WAF web ACL", &self.waf_web_acl_month),
            ("WAF rule", &self.waf_rule_month),
            ("WAF requests", &self.waf_requests_per_million),
            ("CloudWatch Logs ingestion", &self.cloudwatch_logs_ingested_gb),
            ("CloudWatch Logs storage", &self.cloudwatch_logs_stored_gb_month),
        ]
    }
}

/// Lambda's platform lines per invocation (`platform.start`, `platform.report` in JSON), which
/// CloudWatch Logs ingests besides the function's own: an estimate of their size.
pub const PLATFORM_LOG_BYTES: f64 = 600.0;

/// USD per million invocations of one function at one memory size, by what is billed.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Cost {
    pub lambda_duration: f64,
    pub lambda_requests: f64,
    pub dynamodb: f64,
    pub secrets_manager: f64,
    pub ses: f64,
    pub logs: f64,
}

impl Cost {
    pub fn total(&self) -> f64 {
        self.lambda_duration + self.lambda_requests + self.dynamodb + self.secrets_manager + self.ses + self.logs
    }
}

/// Lambda bills duration rounded up to the next millisecond.
fn billed_ms(ms: &[f64]) -> f64 {
    if ms.is_empty() {
        return 0.0;
    }
    ms.iter().map(|ms| ms.ceil()).sum::<f64>() / ms.len() as f64
}

/// The cost of a million invocations of `f` at its memory size on arm64, `cold_rate` of them
/// cold starts (each billed its init, unthrottled where measured so, and its first invocation
/// instead of a warm one). `None`
/// without a memory size (the point without a quota).
pub fn per_million(f: &FunctionResult, prices: &Prices, cold_rate: f64) -> Option<Cost> {
    let mb = f.limits.memory_mb?;
    let warm = billed_ms(&f.warm_ms);
    // Lambda is reported to run init without the share: the unthrottled inits where measured.
    let init = if f.init_unthrottled_ms.is_empty() { &f.init_ms } else { &f.init_unthrottled_ms };
    let cold = billed_ms(init) + billed_ms(&f.first_invocation_ms);
    let ms = (1.0 - cold_rate) * warm + cold_rate * cold;
    let gb_seconds = mb as f64 / 1024.0 * ms / 1000.0;
    // A cold start's first invocation makes the calls a warm one makes, and those it caches.
    let blend = |warm: f64, cold: f64| (1.0 - cold_rate) * warm + cold_rate * cold;
    let (warm, cold) = (f.warm_billed, f.cold_billed);
    // Init's calls, as a mean over the cold starts measured, once per cold start.
    let init = f.init_billed;
    let read = blend(warm.dynamodb.read, cold.dynamodb.read) + cold_rate * init.dynamodb.read;
    let write = blend(warm.dynamodb.write, cold.dynamodb.write) + cold_rate * init.dynamodb.write;
    let secrets_calls =
        blend(warm.secrets_manager_calls, cold.secrets_manager_calls) + cold_rate * init.secrets_manager_calls;
    let mails = blend(warm.ses_mails, cold.ses_mails) + cold_rate * init.ses_mails;
    // Log sizes in GB of 10^9 bytes, as AWS bills them.
    let log_gb = (f.warm_log_bytes + PLATFORM_LOG_BYTES) / 1e9;
    Some(Cost {
        lambda_duration: 1e6 * gb_seconds * prices.lambda_arm64_gb_second.usd,
        lambda_requests: prices.lambda_requests_per_million.usd,
        dynamodb: read * prices.dynamodb_read_units_per_million.usd
            + write * prices.dynamodb_write_units_per_million.usd,
        secrets_manager: 1e6 / 1e4 * secrets_calls * prices.secrets_manager_calls_per_10k.usd,
        ses: 1e6 / 1e3 * mails * prices.ses_emails_per_1000.usd,
        logs: 1e6 * log_gb * prices.cloudwatch_logs_ingested_gb.usd,
    })
}

/// A size within this fraction of the cheapest size's cost per million is affordable.
pub const COST_SLACK: f64 = 0.05;
/// Warm p95s within this fraction, or within [`SPEED_SLACK_MS`], of the fastest affordable
/// size's are as fast (the example rule: "within 20 % of the fastest").
pub const SPEED_SLACK: f64 = 0.20;
/// No user tells two milliseconds apart, and a few-millisecond p95 moves by that much from run to
/// run here (refresh at 512 MB: 3.0 and 5.4 ms in two runs of the same code; health: 0.1 to
/// 0.4 ms across sizes that cannot differ): a narrower band let noise pick the size.
pub const SPEED_SLACK_MS: f64 = 2.0;

/// The memory sizes the rule accepts from `points` (one case's results at the Lambda sizes of
/// the default period), smallest first: of the sizes costing at most 105 % of the cheapest,
/// those whose warm p95 is within 20 % or 2 ms of the fastest of them. So a user gets the speed
/// money cannot buy more cheaply, and a million invocations cost at most 5 % more than they could.
pub fn acceptable(points: &[(&FunctionResult, Cost)]) -> Vec<u64> {
    let cheapest = points.iter().map(|(_, c)| c.total()).fold(f64::INFINITY, f64::min);
    let affordable: Vec<(u64, f64)> = points
        .iter()
        .filter(|(_, c)| c.total() <= cheapest * (1.0 + COST_SLACK))
        .filter_map(|(f, _)| Some((f.limits.memory_mb?, percentile(&f.warm_ms, 95.0))))
        .collect();
    let fastest = affordable.iter().map(|(_, p95)| *p95).fold(f64::INFINITY, f64::min);
    let as_fast = (fastest * (1.0 + SPEED_SLACK)).max(fastest + SPEED_SLACK_MS);
    let mut sizes: Vec<u64> = affordable.iter().filter(|(_, p95)| *p95 <= as_fast).map(|(mb, _)| *mb).collect();
    sizes.sort_unstable();
    sizes
}

/// The size a case runs at: the template's `current` default while the rule accepts it (so noise
/// between runs does not move a default between sizes the rule finds equal), else the smallest
/// size the rule accepts.
pub fn choose(acceptable: &[u64], current: u64) -> Option<u64> {
    if acceptable.contains(&current) {
        Some(current)
    } else {
        acceptable.first().copied()
    }
}

/// Where the repository's `docs/prices.yaml` is, for the tests.
#[cfg(test)]
fn repository_prices_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/prices.yaml")
}

/// The repository's `docs/prices.yaml`, for the tests of every module that prices.
#[cfg(test)]
pub fn repository_prices() -> Prices {
    Prices::load(&repository_prices_path()).expect("docs/prices.yaml parses")
}

/// A measured point for the tests: `name` at `mb` (`None`: no quota), every warm invocation and
/// the first one `warm_ms`, one init of `init_ms`.
#[cfg(test)]
pub fn point(name: &str, mb: Option<u64>, warm_ms: f64, init_ms: f64) -> FunctionResult {
    use crate::sandbox::Limits;
    FunctionResult {
        name: name.to_owned(),
        binary: name.split(' ').next().unwrap_or(name).to_owned(),
        memory_mb: 128,
        limits: mb.map_or(Limits::NO_QUOTA, |mb| Limits::lambda(mb, crate::driver::DEFAULT_PERIOD_MS)),
        warm_ms: vec![warm_ms; 20],
        init_ms: vec![init_ms],
        first_invocation_ms: vec![warm_ms],
        ..FunctionResult::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::Limits;

    fn prices() -> Prices {
        repository_prices()
    }

    fn at(mb: u64, warm_ms: f64) -> FunctionResult {
        point("login", Some(mb), warm_ms, 100.0)
    }

    #[test]
    fn given_the_prices_file_then_the_report_lists_each_of_its_prices_once() {
        // GIVEN docs/prices.yaml read as a plain mapping: every entry with a `usd` is a price
        let text = std::fs::read_to_string(repository_prices_path()).expect("docs/prices.yaml");
        let file: serde_norway::Mapping = serde_norway::from_str(&text).expect("a mapping");
        let in_file = file.values().filter(|v| v.get("usd").is_some()).count();
        // WHEN the report lists them
        let prices = prices();
        let listed = prices.listed();
        // THEN none is left out and none listed twice (`listed` names the fields by hand)
        assert_eq!(listed.len(), in_file);
        let mut names: Vec<&str> = listed.iter().map(|(name, _)| *name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), in_file);
        let mut sources: Vec<*const Price> = listed.iter().map(|(_, price)| *price as *const Price).collect();
        sources.sort_unstable();
        sources.dedup();
        assert_eq!(sources.len(), in_file, "a price listed under two names");
    }

    #[test]
    fn given_a_point_when_pricing_then_duration_is_rounded_up_and_init_billed_at_the_cold_rate() {
        // GIVEN 128 MB, every warm invocation 9.2 ms (billed 10), a 100 ms init
        let prices = prices();
        let f = at(128, 9.2);
        // WHEN no invocation is cold, THEN a million cost 10,000 s × 0.125 GB of duration
        let warm = per_million(&f, &prices, 0.0).expect("a Lambda size");
        let gb_second = prices.lambda_arm64_gb_second.usd;
        assert!((warm.lambda_duration - 1e6 * 0.125 * 0.010 * gb_second).abs() < 1e-9);
        assert_eq!(warm.lambda_requests, prices.lambda_requests_per_million.usd);
        // WHEN 1 % are cold, THEN each of those also pays its 100 ms init
        let cold = per_million(&f, &prices, 0.01).expect("a Lambda size");
        assert!((cold.lambda_duration - 1e6 * 0.125 * (0.010 + 0.01 * 0.100) * gb_second).abs() < 1e-9);
        // WHEN the point had no quota, THEN it has no price
        let unlimited = FunctionResult { limits: Limits::NO_QUOTA, ..at(128, 9.2) };
        assert!(per_million(&unlimited, &prices, 0.01).is_none());
    }

    #[test]
    fn given_calls_during_init_when_pricing_then_each_cold_start_pays_them_once() {
        use crate::driver::Billed;
        use crate::proxy::Units;
        // GIVEN invocations that call nothing, and an init that reads two keys and warms two
        // DynamoDB connections (half a read unit each)
        let prices = prices();
        let init_billed =
            Billed { dynamodb: Units { read: 1.0, write: 0.0 }, secrets_manager_calls: 2.0, ses_mails: 0.0 };
        let f = FunctionResult { init_billed, ..at(128, 9.2) };
        // WHEN no invocation is cold, THEN init's calls cost nothing
        let warm = per_million(&f, &prices, 0.0).expect("a Lambda size");
        assert_eq!((warm.dynamodb, warm.secrets_manager), (0.0, 0.0));
        // WHEN 1 % are cold, THEN 10,000 inits pay 10,000 read units and 20,000 Secrets Manager calls
        let cold = per_million(&f, &prices, 0.01).expect("a Lambda size");
        assert!((cold.dynamodb - 0.01 * prices.dynamodb_read_units_per_million.usd).abs() < 1e-12);
        assert!((cold.secrets_manager - 2.0 * prices.secrets_manager_calls_per_10k.usd).abs() < 1e-12);
    }

    #[test]
    fn given_points_when_judging_then_the_affordable_sizes_as_fast_as_the_fastest_are_accepted() {
        let prices = prices();
        let accepted = |points: &[FunctionResult]| -> Vec<u64> {
            let costs: Vec<(&FunctionResult, Cost)> =
                points.iter().map(|f| (f, per_million(f, &prices, 0.01).expect("sized"))).collect();
            acceptable(&costs)
        };
        // GIVEN CPU-bound work whose time halves as memory doubles (cost flat), THEN the largest
        let cpu_bound = [at(128, 400.0), at(256, 200.0), at(512, 100.0)];
        assert_eq!(accepted(&cpu_bound), [512]);
        // GIVEN a wait that memory does not shorten, THEN the smallest alone (the others cost more)
        let waiting = [at(512, 19.8), at(128, 20.0), at(256, 19.9)];
        assert_eq!(accepted(&waiting), [128]);
        // GIVEN a function whose cost is mostly a mail, so that every size is affordable
        let mailing = |f: FunctionResult| FunctionResult {
            warm_billed: crate::driver::Billed { ses_mails: 1.0, ..Default::default() },
            ..f
        };
        // THEN p95s 19 % apart are as fast; 21 % and over 2 ms apart are not
        assert_eq!(accepted(&[mailing(at(512, 100.0)), mailing(at(1024, 119.0))]), [512, 1024]);
        assert_eq!(accepted(&[mailing(at(512, 121.0)), mailing(at(1024, 100.0))]), [1024]);
        // THEN p95s over 20 % but under 2 ms apart are as fast
        assert_eq!(accepted(&[mailing(at(128, 3.9)), mailing(at(256, 2.0))]), [128, 256]);
        // GIVEN a size 20 % faster but over 5 % dearer than the cheapest, THEN not that one
        let dear = [at(1769, 50.0), at(3008, 40.0)];
        let costs: Vec<f64> = dear.iter().map(|f| per_million(f, &prices, 0.01).expect("sized").total()).collect();
        assert!(costs[1] > costs[0] * (1.0 + COST_SLACK), "the test's premise: 3008 MB is dearer");
        assert_eq!(accepted(&dear), [1769]);
        // GIVEN nothing, THEN nothing
        assert!(accepted(&[]).is_empty());
    }

    #[test]
    fn given_the_accepted_sizes_when_choosing_then_the_template_default_stays_while_accepted() {
        // GIVEN a default the rule accepts, THEN it stays, though a smaller size is accepted too
        assert_eq!(choose(&[256, 512, 1024], 512), Some(512));
        // GIVEN a default the rule does not accept, THEN the smallest size it does
        assert_eq!(choose(&[1024, 1769], 128), Some(1024));
        // GIVEN no accepted size, THEN no choice
        assert_eq!(choose(&[], 128), None);
    }

    #[test]
    fn given_tiers_when_pricing_users_then_each_tier_bills_its_own_users() {
        let prices = prices();
        // GIVEN Cognito's free tier, THEN 10,000 users cost nothing
        assert_eq!(prices.cognito_essentials.monthly(10_000), 0.0);
        let tiers = Tiered {
            tiers: vec![Tier { above_mau: 10, usd_per_mau: 1.0 }, Tier { above_mau: 100, usd_per_mau: 0.5 }],
            source: String::new(),
            read: String::new(),
        };
        assert_eq!(tiers.monthly(5), 0.0);
        assert_eq!(tiers.monthly(50), 40.0);
        assert_eq!(tiers.monthly(200), 90.0 + 50.0);
    }
}
