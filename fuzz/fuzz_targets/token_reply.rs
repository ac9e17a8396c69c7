//! The token endpoint's reply as the helper reads it
//! (`oauth::parse_response`, from `common::oauth`, which the tool uses too):
//! success and error bodies from any status, with
//! `expires_in` as a number, a string, huge or negative.
//!
//! Input: two bytes of HTTP status (big-endian, folded into 100..=599), the
//! body.
//!
//! Invariants: no panic; a success has a printable access token without
//! spaces and `expires_in` within `0..=MAX_EXPIRES_IN`; no message repeats
//! the refresh token or client secret we sent (the provider may echo them).
#![no_main]

use common::oauth::{parse_response, sanitise_description, MAX_DESCRIPTION_CHARS, MAX_EXPIRES_IN};
use common::Secret;
use fuzzkit::{assert_no_secret, CLIENT_SECRET, REFRESH};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let status = 100 + u16::from_be_bytes([data[0], data[1]]) % 500;
    let body = &data[2..];
    let (rt, cs) = (Secret::new(REFRESH), Secret::new(CLIENT_SECRET));
    let sent = [REFRESH, CLIENT_SECRET];
    match parse_response(status, body, &[&rt, &cs]) {
        Ok(g) => {
            assert_eq!(status, 200);
            let at = g.access_token.expose();
            assert!(!at.is_empty() && at.bytes().all(|b| b.is_ascii_graphic()));
            assert!(
                (0..=MAX_EXPIRES_IN).contains(&g.expires_in),
                "{}",
                g.expires_in
            );
            if let Some(r) = &g.refresh_token {
                assert!(!r.is_empty() && r.expose().bytes().all(|b| b.is_ascii_graphic()));
            }
            assert_no_secret("Granted Debug", &format!("{g:?}"), &[at]);
        }
        Err(e) => {
            let _ = e.reaction();
            let msg = e.to_string();
            assert_no_secret("response error", &msg, &sent);
            assert_no_secret("response error (Debug)", &format!("{e:?}"), &sent);
            assert!(
                !msg.chars().any(char::is_control),
                "control character in {msg:?}"
            );
            if let common::oauth::ResponseError::OAuth {
                error,
                description,
                summary,
                ..
            } = &e
            {
                assert!(!error.is_empty() && error.len() <= 64);
                for d in description.iter().chain(summary) {
                    assert!(d.chars().count() <= MAX_DESCRIPTION_CHARS + 3);
                    assert_no_secret("description", d, &sent);
                    assert!(!d.chars().any(char::is_control), "{d:?}");
                }
            }
        }
    }
    // The description filter on its own, with the whole body as text.
    if let Ok(text) = std::str::from_utf8(body) {
        if let Some(d) = sanitise_description(text, &[&rt, &cs]) {
            assert_no_secret("description", &d, &sent);
        }
    }
});
