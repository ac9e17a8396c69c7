//! The tool's loopback redirect listener (RFC 8252): the request line
//! (`loopback::request_target`), the route, and the judgement of the
//! query (`loopback::evaluate`: state, code, error parameters).
//!
//! Input: one request line (anything a local process or a browser can
//! send to 127.0.0.1:PORT).
//!
//! Invariants: no panic; a code is accepted only with exactly one state
//! equal to ours and is exactly the single `code` value; a refusal's error
//! and description are printable and capped.
#![no_main]

use common::urlenc::{parse_query, single};
use libfuzzer_sys::fuzz_target;
use sasl_xoauth2_tool::fuzzing::{evaluate, request_target, route, Outcome, Route};

const STATE: &str = "Zq3-PLANTED-state_value";

fuzz_target!(|data: &[u8]| {
    let line = String::from_utf8_lossy(data);
    for callback in ["/oauth2_result", "/"] {
        // The whole input as a query too, so the judgement is reached even
        // without a well-formed request line.
        let direct = parse_query(&line);
        judge(&direct);
        let Some(target) = request_target(&line) else {
            continue;
        };
        assert!(target.starts_with('/'));
        if let Route::Callback(pairs) = route(target, callback) {
            judge(&pairs);
        }
    }
});

fn judge(pairs: &[(String, String)]) {
    match evaluate(pairs, STATE) {
        Outcome::Code(c) => {
            assert_eq!(single(pairs, "state"), Ok(Some(STATE)));
            assert_eq!(single(pairs, "code"), Ok(Some(c.expose())));
            assert!(!c.is_empty());
        }
        Outcome::Refused(e) => {
            assert_eq!(single(pairs, "state"), Ok(Some(STATE)));
            assert!(!e.error.is_empty() && e.error.chars().count() <= 100);
            assert!(!e.error.chars().any(char::is_control));
            if let Some(d) = &e.description {
                assert!(d.chars().count() <= 300 && !d.chars().any(char::is_control));
            }
        }
        Outcome::WrongState => {
            assert_ne!(single(pairs, "state"), Ok(Some(STATE)));
        }
        Outcome::Incomplete => {}
    }
}
