//! Single flight, rotation safety and crash safety of the real helper.

mod refresher_support;

use refresher_support::*;
use std::time::Duration;
use testkit::provider::Mode;

#[test]
fn fifty_concurrent_helpers_make_one_request() {
    let env = Env::new("fifty");
    env.write_token(&env.expired_token());
    let children: Vec<_> = (0..50).map(|_| env.spawn(&[])).collect();
    let runs: Vec<Run> = children.into_iter().map(|c| env.finish(c)).collect();
    for r in &runs {
        r.expect_code(exit::OK);
        assert!(r.status().starts_with("ok: "), "{r:?}");
    }
    assert_eq!(env.provider.requests(), 1, "single flight");
    let refreshed = runs
        .iter()
        .filter(|r| r.status().starts_with("ok: refreshed "))
        .count();
    assert_eq!(refreshed, 1);
    let at = env.token_json()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(env.provider.is_valid_access_token(&at));
    assert!(env.temp_files().is_empty());
}

/// 20 rounds of 20 concurrent refreshes against a provider that kills the
/// old refresh token the moment it issues a new one: every run succeeds and
/// the file always ends with the one refresh token the provider accepts.
#[test]
fn rotation_under_concurrency_never_loses_the_refresh_token() {
    let env = Env::with_mode("rotation", Mode::Rotating);
    env.write_token(&env.expired_token());
    for round in 0..20 {
        // Alternate: forced refreshes of a fresh token, and expired tokens.
        let force = round % 2 == 0;
        if !force {
            let mut v = env.token_json();
            v["expiry"] = serde_json::json!("0");
            env.write_token(&v);
        }
        let args: &[&str] = if force { &["--force"] } else { &[] };
        let children: Vec<_> = (0..20).map(|_| env.spawn(args)).collect();
        for c in children {
            env.finish(c).expect_code(exit::OK);
        }
        let rt = env.token_json()["refresh_token"]
            .as_str()
            .unwrap()
            .to_string();
        assert_eq!(
            env.provider.valid_refresh_tokens(),
            vec![rt],
            "round {round}: the file must hold the refresh token the provider accepts"
        );
        assert!(env.temp_files().is_empty(), "round {round}");
    }
    // At least one refresh per round; the rotating provider saw each one.
    assert!(env.provider.requests() >= 20, "{}", env.provider.requests());
}

/// SIGKILL the helper at random instants: the token file is always a
/// complete, valid token file (the old one or the new one) and temp files
/// never pile up.
#[test]
fn sigkill_at_random_instants_never_breaks_the_file() {
    let mut env = Env::new("crash");
    // expires_in 0: every run finds the token expired and goes all the way
    // to the rename, so kills land in every phase.
    env.provider.set_expires_in(0, false);
    env.set_config("refresh_timeout", serde_json::json!(5));
    env.write_token(&env.expired_token());
    let mut rng = Rng::seeded();
    let mut completed = 0;
    for i in 0..200 {
        let mut child = env.spawn(&[]);
        std::thread::sleep(Duration::from_micros(rng.below(30_000)));
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        if out.status.code() == Some(0) {
            completed += 1;
        }
        env.check(out);
        let v = env.token_json();
        assert!(
            v["refresh_token"].is_string() && v["access_token"].is_string(),
            "iteration {i}: {v}"
        );
        let t = common::TokenFile::parse(&env.token_bytes(), &env.token);
        assert!(t.is_ok(), "iteration {i}: {t:?}");
        let temps = env.temp_files();
        assert!(
            temps.len() <= 1,
            "iteration {i}: temp files pile up: {temps:?}"
        );
    }
    eprintln!(
        "{completed}/200 runs completed before the kill, {} requests",
        env.provider.requests()
    );
    // A run to completion cleans up what the last kill left.
    env.run(&[]).expect_code(exit::OK);
    assert!(env.temp_files().is_empty());
    let at = env.token_json()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(env.provider.issued_access_tokens().contains(&at));
}

/// A refresh that holds the lock past another helper's timeout: the waiter
/// gives up with a temporary failure, the holder finishes normally.
#[test]
fn lock_held_past_the_timeout_is_a_temporary_failure() {
    let mut env = Env::with_mode("lock-wait", Mode::Slow(Duration::from_secs(3)));
    env.write_token(&env.expired_token());
    let holder = env.spawn(&[]);
    // Let the holder take the lock and send its request.
    let start = std::time::Instant::now();
    while env.provider.requests() == 0 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "holder never asked"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    env.set_config("refresh_timeout", serde_json::json!(1));
    let waiter = env.run(&[]);
    waiter
        .expect_code(exit::TEMPFAIL)
        .expect_status(&["another refresh of this token still holds", ".lock"]);
    env.finish(holder)
        .expect_code(exit::OK)
        .expect_status(&["ok: refreshed "]);
    assert_eq!(env.provider.requests(), 1);
    // Once the holder is done, the next helper finds the token fresh.
    env.run(&[])
        .expect_code(exit::OK)
        .expect_status(&["ok: not due "]);
}
