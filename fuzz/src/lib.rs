//! Helpers shared by the fuzz targets: splitting one input into parts and
//! the "no secret in any message" check.
//!
//! Secrets are planted in the seed corpora as values containing
//! [`MARK`] (`"PLANTED"`); no message of ours contains that word, so a
//! message that does repeats input it must not repeat.

/// The marker every planted secret in `seeds/` carries.
pub const MARK: &str = "PLANTED";

/// A secret the targets hand to the code under test themselves.
pub const ACCESS: &str = "ya29.PLANTED-new-access-token";
pub const REFRESH: &str = "1//0gPLANTED-rotated-refresh-token";
pub const CLIENT_SECRET: &str = "GOCSPX-PLANTED-client-secret";

/// Split `data` at the first `sep` byte: (before, after). Without one, all
/// of `data` is the first part.
pub fn split(data: &[u8], sep: u8) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == sep) {
        Some(i) => (&data[..i], &data[i + 1..]),
        None => (data, &[]),
    }
}

/// Panics if `text` (a message, a Debug rendering) contains any of
/// `secrets` that is long enough to be told apart from ordinary words.
pub fn assert_no_secret(what: &str, text: &str, secrets: &[&str]) {
    for s in secrets {
        if s.len() >= 8 && text.contains(s) {
            panic!("{what} repeats the secret {s:?}: {text:?}");
        }
    }
}

/// Panics if a log line repeats a secret. A secret that overlaps another
/// is skipped: redacting one may cut into the other.
pub fn assert_no_secret_in_lines(what: &str, lines: &[String], secrets: &[String]) {
    for s in secrets {
        if secrets
            .iter()
            .any(|o| o != s && (o.contains(s.as_str()) || s.contains(o.as_str())))
        {
            continue;
        }
        for line in lines {
            assert_no_secret(what, line, &[s]);
        }
    }
}

/// Panics if `text` contains the planted-secret marker.
pub fn assert_no_mark(what: &str, text: &str) {
    assert!(!text.contains(MARK), "{what} repeats input: {text:?}");
}

/// The string values of `keys` in a JSON object (the secrets a file holds),
/// those containing [`MARK`] only.
pub fn planted_values(json: &[u8], keys: &[&str]) -> Vec<String> {
    let Ok(serde_json::Value::Object(m)) = serde_json::from_slice(json) else {
        return Vec::new();
    };
    keys.iter()
        .filter_map(|k| m.get(*k))
        .filter_map(|v| v.as_str())
        .filter(|s| s.contains(MARK))
        .map(str::to_owned)
        .collect()
}
