//! When a token must be refreshed: pure decisions, unit-tested here and used
//! by the plugin (to decide whether to wait) and the helper (to skip a
//! refresh another process already did).

/// How usable an access token is at a given instant.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freshness {
    /// Usable and not near expiry.
    Fresh,
    /// Usable, but within the prefetch window: refresh in the background.
    Prefetch,
    /// Unusable (absent, or `now + refresh_window >= expiry`): an
    /// authentication must wait for a refresh.
    Expired,
}

/// Classify a token. `has_access_token` is false when the file holds none.
pub fn freshness(
    has_access_token: bool,
    expiry: i64,
    now: i64,
    refresh_window: i64,
    prefetch_window: i64,
) -> Freshness {
    if !has_access_token || now.saturating_add(refresh_window) >= expiry {
        Freshness::Expired
    } else if now.saturating_add(prefetch_window.max(refresh_window)) >= expiry {
        Freshness::Prefetch
    } else {
        Freshness::Fresh
    }
}

/// Minimum seconds between two background refreshes of one token file
/// started by one process (prefetch, or forced after the server rejected
/// the access token), so neither can make us hammer the provider.
pub const BACKGROUND_REFRESH_INTERVAL: i64 = 60;

/// Whether a background refresh may start now, given when the last one started.
pub fn background_refresh_allowed(last_started: Option<i64>, now: i64) -> bool {
    match last_started {
        None => true,
        Some(t) => now < t || now - t >= BACKGROUND_REFRESH_INTERVAL,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use Freshness::*;

    #[test]
    fn windows() {
        let now = 1_000_000;
        // refresh_window 10, prefetch 600
        assert_eq!(freshness(true, now + 3600, now, 10, 600), Fresh);
        assert_eq!(freshness(true, now + 600, now, 10, 600), Prefetch);
        assert_eq!(freshness(true, now + 11, now, 10, 600), Prefetch);
        assert_eq!(freshness(true, now + 10, now, 10, 600), Expired);
        assert_eq!(freshness(true, 0, now, 10, 600), Expired);
        assert_eq!(freshness(false, now + 3600, now, 10, 600), Expired);
        // refresh_window larger than prefetch: prefetch never below it
        assert_eq!(freshness(true, now + 700, now, 900, 600), Expired);
        // far future and overflow-safe
        assert_eq!(freshness(true, 9_999_999_999, now, 10, 600), Fresh);
        assert_eq!(
            freshness(true, i64::MAX, i64::MAX - 1, i64::MAX, 0),
            Expired
        );
    }

    #[test]
    fn background_refresh_rate_limit() {
        assert!(background_refresh_allowed(None, 100));
        assert!(!background_refresh_allowed(Some(100), 159));
        assert!(background_refresh_allowed(Some(100), 160));
        assert!(background_refresh_allowed(Some(200), 100)); // clock went back
    }
}
