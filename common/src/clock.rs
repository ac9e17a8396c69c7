//! The wall clock, read in one place so that every process agrees on what
//! "now" means for token expiry (seconds since the Unix epoch, UTC).

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch; 0 if the clock is before 1970.
pub fn unix_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Seconds since the Unix epoch; 0 if the clock is before 1970.
pub fn unix_now() -> i64 {
    unix_now_ms() / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_follow_milliseconds() {
        let ms = unix_now_ms();
        let s = unix_now();
        assert!(ms > 1_600_000_000_000, "clock reads {ms} ms");
        assert!((s - ms / 1000).abs() <= 1);
    }
}
