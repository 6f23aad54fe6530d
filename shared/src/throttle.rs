//! Login throttling: the rules and the keys. The state lives in one DynamoDB item per email
//! (`store::failures`); this module decides what that state allows.
//!
//! - Per (email, client network) — an IPv4 /24 or IPv6 /64, from the gateway's `sourceIp` —
//!   [`FREE_FAILURES_PER_NETWORK`] failures are free, then each attempt waits 1 s, 2 s, 4 s …
//!   at most [`MAX_DELAY_SECONDS`] after the previous one. A stranger elsewhere cannot slow the
//!   owner's own network down.
//! - Per email, across all networks, at most [`ACCOUNT_FAILURE_LIMIT`] consecutive failures
//!   (NIST SP 800-63B rev 4, 3.2.2). At the limit only networks where the account logged in
//!   successfully within the refresh-token lifetime may still try (with their own delays); any
//!   other network gets "account locked" until such a login (or a password reset) clears it.
//! - An attempt is counted before the password is checked, by one conditional write that also
//!   checks both rules, so concurrent guesses cannot slip between a check and a count; a success
//!   clears the count in the same transaction that creates its session.
//!
//! Emails and networks are stored only as HMAC-SHA256 under a key of their own (a bare hash of
//! an email is reversed by a dictionary), and unknown emails are counted exactly like known ones.

use std::net::IpAddr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;

use crate::domain::Email;

pub const FREE_FAILURES_PER_NETWORK: u32 = 5;
pub const MAX_DELAY_SECONDS: i64 = 15 * 60;
pub const ACCOUNT_FAILURE_LIMIT: u32 = 100;
/// A failure record with no attempt for this long expires (DynamoDB TTL).
pub const RECORD_LIFETIME_SECONDS: i64 = 365 * 24 * 3600;
/// The failure count from which [`MAX_DELAY_SECONDS`] applies.
pub const MAX_DELAY_FROM: u32 = FREE_FAILURES_PER_NETWORK + 10;

/// Seconds a network must wait after its `failures`-th consecutive failure before its next
/// attempt: none for the first [`FREE_FAILURES_PER_NETWORK`], then 1, 2, 4 … at most
/// [`MAX_DELAY_SECONDS`].
pub fn delay_after(failures: u32) -> i64 {
    if failures < FREE_FAILURES_PER_NETWORK {
        return 0;
    }
    let exponent = (failures - FREE_FAILURES_PER_NETWORK).min(MAX_DELAY_FROM - FREE_FAILURES_PER_NETWORK);
    (1i64 << exponent).min(MAX_DELAY_SECONDS)
}

/// The client's network as the throttle sees it: the /24 of an IPv4 address, the /64 of an IPv6
/// one (an IPv4-mapped IPv6 address counts as IPv4). API Gateway's `sourceIp` is the address of
/// the connection it accepted; `X-Forwarded-For` is never consulted, since any client can set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Network(String);

impl Network {
    /// The network of `source_ip`; clients whose address is missing or unreadable share one.
    pub fn of(source_ip: Option<&str>) -> Self {
        let Some(ip) = source_ip.and_then(|ip| ip.trim().parse::<IpAddr>().ok()) else {
            return Self("unknown".to_owned());
        };
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
            v4 => v4,
        };
        Self(match ip {
            IpAddr::V4(v4) => {
                let [a, b, c, _] = v4.octets();
                format!("{a}.{b}.{c}.0/24")
            }
            IpAddr::V6(v6) => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        })
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The key of an email's failure record: `FAILURES#` and an HMAC of the email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FailureKey(String);

impl FailureKey {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A network's name inside a failure record: an HMAC of the network, 16 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NetworkId(String);

impl NetworkId {
    /// A stored name, as read back from a record.
    pub fn from_stored(id: &str) -> Option<Self> {
        (id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit())).then(|| Self(id.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The throttle's HMAC key (from its own secret), and the keys derived from it.
pub struct ThrottleKey(SecretBox<[u8]>);

type HmacSha256 = Hmac<Sha256>;

impl ThrottleKey {
    pub fn new(secret: &[u8]) -> Self {
        Self(SecretBox::new(secret.into()))
    }

    fn mac(&self, label: &str, data: &[u8]) -> [u8; 32] {
        // HMAC accepts keys of any length.
        let mut mac = HmacSha256::new_from_slice(self.0.expose_secret()).expect("HMAC takes any key length");
        mac.update(label.as_bytes());
        mac.update(&[0]);
        mac.update(data);
        mac.finalize().into_bytes().into()
    }

    pub fn failure_key(&self, email: &Email) -> FailureKey {
        FailureKey(format!("FAILURES#{}", URL_SAFE_NO_PAD.encode(self.mac("email", email.as_str().as_bytes()))))
    }

    pub fn network_id(&self, network: &Network) -> NetworkId {
        let mac = self.mac("network", network.as_str().as_bytes());
        NetworkId(mac[..8].iter().map(|b| format!("{b:02x}")).collect())
    }

    /// An independent key for another purpose, named by `label`.
    pub fn subkey(&self, label: &str) -> [u8; 32] {
        self.mac("subkey", label.as_bytes())
    }
}

/// What the failure record allowed when an attempt was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// This network must wait this many seconds.
    Delayed(u64),
    /// The account reached [`ACCOUNT_FAILURE_LIMIT`] and this network is not one it is known on.
    Locked,
}

/// One network's counters in a failure record.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NetworkFailures {
    pub failures: u32,
    /// Milliseconds since the Unix epoch: a one-second delay must not shrink to a few
    /// milliseconds because the clock's second changed in between.
    pub last_attempt_ms: i64,
}

/// Why the record refused an attempt at `now_ms` (milliseconds), given the account's consecutive
/// failures, this network's counters and when the account last logged in from this network (if
/// ever; seconds, like `known_since`). A delay is given in whole seconds, rounded up.
pub fn refusal(
    account_failures: u32,
    network: NetworkFailures,
    last_success_here: Option<i64>,
    known_since: i64,
    now_ms: i64,
) -> Option<Refusal> {
    let known = last_success_here.is_some_and(|at| at >= known_since);
    if account_failures >= ACCOUNT_FAILURE_LIMIT && !known {
        return Some(Refusal::Locked);
    }
    let until = network.last_attempt_ms + delay_after(network.failures) * 1000;
    let waiting = network.failures >= FREE_FAILURES_PER_NETWORK && now_ms < until;
    waiting.then(|| Refusal::Delayed(((until - now_ms + 999) / 1000) as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> ThrottleKey {
        ThrottleKey::new(b"throttle-key-for-tests-throttle-key-for-tests")
    }

    #[test]
    fn given_failures_on_a_network_then_five_are_free_and_delays_double_to_fifteen_minutes() {
        let delays: Vec<_> = (0..=17).map(delay_after).collect();
        assert_eq!(delays, [0, 0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 900, 900, 900]);
        assert_eq!(delay_after(u32::MAX), 900);
    }

    #[test]
    fn given_addresses_then_networks_are_ipv4_24_and_ipv6_64() {
        assert_eq!(Network::of(Some("198.51.100.7")).as_str(), "198.51.100.0/24");
        assert_eq!(Network::of(Some("198.51.100.250")), Network::of(Some("198.51.100.7")));
        assert_ne!(Network::of(Some("198.51.101.7")), Network::of(Some("198.51.100.7")));
        assert_eq!(Network::of(Some("2001:db8:1:2:3:4:5:6")).as_str(), "2001:db8:1:2::/64");
        assert_eq!(Network::of(Some("2001:db8:1:2:ffff::1")), Network::of(Some("2001:db8:1:2::9")));
        assert_eq!(Network::of(Some("::ffff:198.51.100.7")), Network::of(Some("198.51.100.9")));
        assert_eq!(Network::of(None), Network::of(Some("not an address")));
    }

    #[test]
    fn given_the_key_then_emails_and_networks_are_stored_keyed_not_in_clear() {
        let email = Email::parse("ada@example.com").unwrap();
        let record = key().failure_key(&email);
        assert!(record.as_str().starts_with("FAILURES#") && !record.as_str().contains("ada"));
        assert_eq!(record, key().failure_key(&email));
        assert_ne!(record, ThrottleKey::new(b"another key entirely, just as long...").failure_key(&email));
        let network = key().network_id(&Network::of(Some("198.51.100.7")));
        assert_eq!(NetworkId::from_stored(network.as_str()), Some(network.clone()));
        assert_ne!(network, key().network_id(&Network::of(Some("198.51.101.7"))));
        assert_ne!(key().subkey("a"), key().subkey("b"));
    }

    #[test]
    fn given_a_network_past_its_free_failures_then_it_waits_its_delay() {
        let net = |failures, last_attempt_ms| NetworkFailures { failures, last_attempt_ms };
        assert_eq!(refusal(4, net(4, 1_000_000), None, 0, 1_000_000), None);
        assert_eq!(refusal(5, net(5, 1_000_000), None, 0, 1_000_000), Some(Refusal::Delayed(1)));
        assert_eq!(refusal(5, net(5, 1_000_000), None, 0, 1_000_999), Some(Refusal::Delayed(1)));
        assert_eq!(refusal(5, net(5, 1_000_000), None, 0, 1_001_000), None);
        assert_eq!(refusal(20, net(20, 1_000_000), None, 0, 1_001_500), Some(Refusal::Delayed(899)));
    }

    #[test]
    fn given_the_account_limit_then_only_recently_known_networks_may_try() {
        let fresh = NetworkFailures::default();
        assert_eq!(refusal(99, fresh, None, 500, 1_000_000), None);
        assert_eq!(refusal(100, fresh, None, 500, 1_000_000), Some(Refusal::Locked));
        assert_eq!(refusal(100, fresh, Some(400), 500, 1_000_000), Some(Refusal::Locked), "known too long ago");
        assert_eq!(refusal(100, fresh, Some(600), 500, 1_000_000), None);
        let delayed = NetworkFailures { failures: 6, last_attempt_ms: 1_000_000 };
        assert_eq!(refusal(150, delayed, Some(600), 500, 1_000_000), Some(Refusal::Delayed(2)));
    }
}
