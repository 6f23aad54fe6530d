//! Token buckets (per route from `MethodSettings`, per API key from the usage plan) and the
//! usage-plan quota, mirroring API Gateway's throttling model.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use time::OffsetDateTime;

use crate::api::{Quota, QuotaPeriod, Throttle, UsagePlan};

/// A token bucket: starts full with `burst` tokens, refills at `rate` tokens per second.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate: f64,
    capacity: f64,
    tokens: f64,
    last: Instant,
    unlimited: bool,
}

impl TokenBucket {
    /// A full bucket for `throttle` (a negative limit means no throttling, as in API Gateway).
    pub fn new(throttle: Throttle, now: Instant) -> Self {
        let unlimited = throttle.rate_limit < 0.0 || throttle.burst_limit < 0;
        let capacity = throttle.burst_limit.max(0) as f64;
        Self { rate: throttle.rate_limit.max(0.0), capacity, tokens: capacity, last: now, unlimited }
    }

    /// Takes one token if available at `now`.
    pub fn try_take(&mut self, now: Instant) -> bool {
        if self.unlimited {
            return true;
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Counts requests per quota period (calendar day, ISO week or month, UTC).
#[derive(Debug, Clone)]
pub struct QuotaCounter {
    quota: Quota,
    window: (i32, u32),
    used: u64,
}

fn window(period: QuotaPeriod, now: OffsetDateTime) -> (i32, u32) {
    match period {
        QuotaPeriod::Day => (now.year(), u32::from(now.ordinal())),
        QuotaPeriod::Week => {
            let (year, week, _) = now.to_iso_week_date();
            (year, u32::from(week))
        }
        QuotaPeriod::Month => (now.year(), u32::from(u8::from(now.month()))),
    }
}

impl QuotaCounter {
    /// A counter with nothing used yet.
    pub fn new(quota: Quota, now: OffsetDateTime) -> Self {
        Self { quota, window: window(quota.period, now), used: 0 }
    }

    /// Counts one request if the quota for the current period allows it.
    pub fn try_take(&mut self, now: OffsetDateTime) -> bool {
        let current = window(self.quota.period, now);
        if current != self.window {
            self.window = current;
            self.used = 0;
        }
        if self.used < self.quota.limit {
            self.used += 1;
            true
        } else {
            false
        }
    }
}

/// Why a request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// A token bucket was empty (`THROTTLED`).
    Throttled,
    /// The usage-plan quota is used up (`QUOTA_EXCEEDED`).
    QuotaExceeded,
}

#[derive(Debug)]
struct KeyState {
    bucket: Option<TokenBucket>,
    quota: Option<QuotaCounter>,
}

/// All throttling state of one gateway.
#[derive(Debug, Default)]
pub struct Limiter {
    routes: Mutex<HashMap<String, TokenBucket>>,
    keys: Mutex<HashMap<String, KeyState>>,
}

impl Limiter {
    /// Applies the method throttle of route `route_key` (shared by all clients).
    pub fn check_route(&self, route_key: &str, throttle: Option<Throttle>, now: Instant) -> Result<(), Refusal> {
        let Some(throttle) = throttle else {
            return Ok(());
        };
        let mut routes = self.routes.lock().unwrap_or_else(|e| e.into_inner());
        let bucket = routes.entry(route_key.to_owned()).or_insert_with(|| TokenBucket::new(throttle, now));
        if bucket.try_take(now) {
            Ok(())
        } else {
            Err(Refusal::Throttled)
        }
    }

    /// Applies the usage plan's per-key throttle, then its quota.
    pub fn check_key(
        &self,
        api_key: &str,
        plan: &UsagePlan,
        now: Instant,
        wall: OffsetDateTime,
    ) -> Result<(), Refusal> {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let state = keys.entry(api_key.to_owned()).or_insert_with(|| KeyState {
            bucket: plan.throttle.map(|t| TokenBucket::new(t, now)),
            quota: plan.quota.map(|q| QuotaCounter::new(q, wall)),
        });
        if let Some(bucket) = &mut state.bucket {
            if !bucket.try_take(now) {
                return Err(Refusal::Throttled);
            }
        }
        if let Some(quota) = &mut state.quota {
            if !quota.try_take(wall) {
                return Err(Refusal::QuotaExceeded);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use time::macros::datetime;

    #[test]
    fn bucket_allows_burst_then_refills_at_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(Throttle { rate_limit: 2.0, burst_limit: 3 }, t0);
        assert!((0..3).all(|_| b.try_take(t0)));
        assert!(!b.try_take(t0));
        assert!(!b.try_take(t0 + Duration::from_millis(400)));
        assert!(b.try_take(t0 + Duration::from_millis(500)));
        assert!(!b.try_take(t0 + Duration::from_millis(500)));
        // Refill is capped at the burst size.
        let later = t0 + Duration::from_secs(60);
        assert_eq!((0..10).filter(|_| b.try_take(later)).count(), 3);
    }

    #[test]
    fn zero_burst_blocks_and_negative_disables() {
        let t0 = Instant::now();
        let mut none = TokenBucket::new(Throttle { rate_limit: 10.0, burst_limit: 0 }, t0);
        assert!(!none.try_take(t0 + Duration::from_secs(1)));
        let mut all = TokenBucket::new(Throttle { rate_limit: -1.0, burst_limit: -1 }, t0);
        assert!((0..1000).all(|_| all.try_take(t0)));
    }

    #[test]
    fn quota_resets_each_period() {
        let quota = Quota { limit: 2, period: QuotaPeriod::Day };
        let day1 = datetime!(2026-11-24 23:59 UTC);
        let mut q = QuotaCounter::new(quota, day1);
        assert!(q.try_take(day1) && q.try_take(day1));
        assert!(!q.try_take(day1));
        assert!(q.try_take(datetime!(2026-11-25 00:00 UTC)));
        let mut m = QuotaCounter::new(Quota { limit: 1, period: QuotaPeriod::Month }, day1);
        assert!(m.try_take(day1));
        assert!(!m.try_take(datetime!(2026-11-30 12:00 UTC)));
        assert!(m.try_take(datetime!(2026-12-01 00:00 UTC)));
    }

    #[test]
    fn limiter_keeps_state_per_route_and_key() {
        let l = Limiter::default();
        let t0 = Instant::now();
        let wall = datetime!(2026-11-24 12:00 UTC);
        let one = Some(Throttle { rate_limit: 0.0, burst_limit: 1 });
        assert_eq!(l.check_route("POST /a", one, t0), Ok(()));
        assert_eq!(l.check_route("POST /a", one, t0), Err(Refusal::Throttled));
        assert_eq!(l.check_route("POST /b", one, t0), Ok(()));
        assert_eq!(l.check_route("POST /c", None, t0), Ok(()));
        let plan = UsagePlan {
            throttle: Some(Throttle { rate_limit: 100.0, burst_limit: 100 }),
            quota: Some(Quota { limit: 1, period: QuotaPeriod::Week }),
        };
        assert_eq!(l.check_key("k1", &plan, t0, wall), Ok(()));
        assert_eq!(l.check_key("k1", &plan, t0, wall), Err(Refusal::QuotaExceeded));
        assert_eq!(l.check_key("k2", &plan, t0, wall), Ok(()));
    }
}
