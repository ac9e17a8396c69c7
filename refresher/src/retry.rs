//! Retries against a failing token endpoint, bounded by time, not a count,
//! and shared between helpers. Pure: no I/O.
//!
//! The helper holding a token's lock retries 5xx and network errors with
//! jittered exponential backoff ([`delay`]) for as long as its
//! `refresh_timeout` allows an attempt ([`MIN_ATTEMPT`]) after the pause.
//! When it gives up it leaves a [`Marker`] in the lock file
//! (`.<token>.lock`): how many attempts in a row failed, and when. The next
//! helper to take the lock goes on with that schedule instead of starting
//! from zero: it waits the pause the previous one would have waited (or
//! gives up at once when its own budget cannot cover the pause), so a herd
//! of logins against a provider that is down sends one request per backoff
//! step, not one per login. A success leaves the file empty again.

use std::time::Duration;

/// Pause after the first failure; doubled after each further one.
pub const FIRST_DELAY: Duration = Duration::from_millis(250);
/// Longest pause between two attempts.
pub const MAX_DELAY: Duration = Duration::from_secs(4);
/// An attempt is only started with at least this much of the budget left.
pub const MIN_ATTEMPT: Duration = Duration::from_secs(1);
/// A marker older than this is ignored: the provider gets a fresh start.
pub const MARKER_TTL_MS: i64 = 300_000;

/// Failures in a row, and when the last one happened (Unix ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    pub failures: u32,
    pub at_ms: i64,
}

impl Marker {
    /// `failed <failures> <at_ms>`; anything else, a stale marker or one
    /// from the future (clock change) reads as none.
    pub fn parse(bytes: &[u8], now_ms: i64) -> Option<Marker> {
        let text = std::str::from_utf8(bytes).ok()?;
        let mut words = text.split_whitespace();
        if words.next()? != "failed" {
            return None;
        }
        let failures: u32 = words.next()?.parse().ok()?;
        let at_ms: i64 = words.next()?.parse().ok()?;
        let age = now_ms.checked_sub(at_ms)?;
        (failures > 0 && (0..MARKER_TTL_MS).contains(&age)).then_some(Marker { failures, at_ms })
    }

    pub fn encode(&self) -> String {
        format!("failed {} {}\n", self.failures, self.at_ms)
    }

    /// How long after now the next attempt may start (zero: at once).
    pub fn wait(&self, now_ms: i64, jitter: f64) -> Duration {
        let until = self
            .at_ms
            .saturating_add(delay(self.failures, jitter).as_millis() as i64);
        Duration::from_millis(until.saturating_sub(now_ms).max(0) as u64)
    }
}

/// Pause after `failures` failures in a row: FIRST_DELAY doubled per
/// further failure, at most MAX_DELAY, then scaled into [1/2, 1] by
/// `jitter` (0..1) so that helpers do not retry in lockstep.
pub fn delay(failures: u32, jitter: f64) -> Duration {
    let doublings = failures.saturating_sub(1).min(16);
    let base = FIRST_DELAY.saturating_mul(1 << doublings).min(MAX_DELAY);
    base.mul_f64(0.5 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// Whether an attempt after `pause` still fits in `left`.
pub fn fits(pause: Duration, left: Duration) -> bool {
    pause + MIN_ATTEMPT <= left
}

/// A number in [0, 1) from the OS's randomness (through std's hasher keys).
pub fn jitter() -> f64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u8(0); // the hasher's keys are the randomness
    (h.finish() >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_with_jitter_and_a_cap() {
        assert_eq!(delay(1, 1.0), Duration::from_millis(250));
        assert_eq!(delay(1, 0.0), Duration::from_millis(125));
        assert_eq!(delay(3, 1.0), Duration::from_millis(1000));
        assert_eq!(delay(10, 1.0), MAX_DELAY);
        assert_eq!(delay(u32::MAX, 0.0), MAX_DELAY / 2);
        let j = jitter();
        assert!((0.0..1.0).contains(&j));
    }

    #[test]
    fn markers_round_trip_and_expire() {
        let m = Marker {
            failures: 3,
            at_ms: 1_000_000,
        };
        assert_eq!(Marker::parse(m.encode().as_bytes(), 1_000_500), Some(m));
        assert_eq!(
            Marker::parse(m.encode().as_bytes(), 1_000_000 + MARKER_TTL_MS),
            None
        );
        assert_eq!(
            Marker::parse(m.encode().as_bytes(), 999_000),
            None,
            "future"
        );
        assert_eq!(Marker::parse(b"", 1), None);
        assert_eq!(Marker::parse(b"failed x 1", 1), None);
        assert_eq!(Marker::parse(b"failed 0 1", 1), None);
        // 3 failures: pause 1 s (jitter 1.0); 500 ms of it have passed.
        assert_eq!(m.wait(1_000_500, 1.0), Duration::from_millis(500));
        assert_eq!(m.wait(1_002_000, 1.0), Duration::ZERO);
    }

    #[test]
    fn an_attempt_needs_its_minimum_after_the_pause() {
        assert!(fits(
            Duration::from_millis(500),
            Duration::from_millis(1500)
        ));
        assert!(!fits(
            Duration::from_millis(501),
            Duration::from_millis(1500)
        ));
    }
}
