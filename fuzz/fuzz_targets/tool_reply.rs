//! The provider's replies as `sasl-xoauth2-tool get-token` reads them: the
//! token response, the device authorisation response and a device-code
//! poll (`oauth::parse_token_response` over `common::oauth`, `parse_device_authorization`,
//! `classify_poll`), and the terminal paragraph made from an OAuth error
//! (`explain::render`).
//!
//! Input: two bytes of HTTP status (folded into 100..=599), the body.
//!
//! Invariants: no panic; an error message never repeats a token from the
//! body; what reaches the terminal has no control characters other than
//! the newlines we put there.
#![no_main]

use fuzzkit::{assert_no_secret, planted_values};
use libfuzzer_sys::fuzz_target;
use sasl_xoauth2_tool::fuzzing::{
    aadsts_in, classify_poll, parse_device_authorization, parse_token_response, render, Poll,
    Provider, ResponseError, Stage,
};

fn check(e: &ResponseError, secrets: &[&str]) {
    match e {
        ResponseError::Malformed(m) => {
            assert_no_secret("malformed-response message", m, secrets);
            assert!(
                !m.chars().any(char::is_control),
                "control character in {m:?}"
            );
        }
        ResponseError::Provider(p) => {
            assert!(!p.error.is_empty());
            for provider in [Provider::Google, Provider::Microsoft] {
                let text = render(provider, Stage::Token, p);
                assert!(
                    !text.chars().any(|c| c.is_control() && c != '\n'),
                    "control character on the terminal: {text:?}"
                );
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let status = 100 + u16::from_be_bytes([data[0], data[1]]) % 500;
    let body = &data[2..];
    // Tokens in the body; ignore those the provider also put in a field we
    // show on purpose.
    let shown = planted_values(body, &["error", "error_description", "token_type"]);
    let secrets = planted_values(body, &["access_token", "refresh_token", "device_code"]);
    let secrets: Vec<&str> = secrets
        .iter()
        .map(String::as_str)
        .filter(|s| !shown.iter().any(|v| v.contains(s)))
        .collect();
    match parse_token_response(status, body, &[]) {
        Ok(t) => {
            assert_eq!(status, 200);
            assert!(!t.access_token.is_empty());
            assert!(t.expires_in.is_none_or(|n| n > 0));
        }
        Err(e) => check(&e, &secrets),
    }
    match parse_device_authorization(status, body) {
        Ok(d) => {
            assert!(d.interval > 0 && d.expires_in > 0);
            // Printed on the terminal: never an escape sequence.
            let shown = [&d.user_code, &d.verification_uri];
            for s in shown
                .into_iter()
                .chain(d.verification_uri_complete.as_ref())
            {
                assert!(!s.chars().any(char::is_control), "{s:?}");
            }
        }
        Err(e) => check(&e, &secrets),
    }
    match classify_poll(status, body, &[]) {
        Ok(Poll::Failed(p)) => check(&ResponseError::Provider(p), &secrets),
        Ok(_) => {}
        Err(e) => check(&e, &secrets),
    }
    if let Ok(text) = std::str::from_utf8(body) {
        let _ = aadsts_in(text);
    }
});
