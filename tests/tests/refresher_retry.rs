//! The real helper against a failing or slow fake endpoint: retries bounded
//! by refresh_timeout, the retry marker shared through the lock file, and
//! TERM held back between the POST and the rename.

mod refresher_support;

use refresher_support::*;
use serde_json::json;
use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};
use testkit::provider::Mode;

fn lock_content(env: &Env) -> String {
    std::fs::read_to_string(common::token::lock_path(&env.token)).unwrap()
}

#[test]
fn retries_fill_the_budget_and_the_next_helper_goes_on_with_the_backoff() {
    let mut env = Env::with_mode("retry-marker", Mode::ServerErrorsThenOk(1000));
    env.set_config("refresh_timeout", json!(3));
    env.write_token(&env.expired_token());
    let original = env.token_bytes();

    let start = Instant::now();
    let a = env.run(&[]);
    a.expect_code(exit::TEMPFAIL)
        .expect_status(&["HTTP 503", "attempt(s)"]);
    assert!(start.elapsed() < Duration::from_secs(4), "{a:?}");
    let first = env.provider.requests();
    assert!(
        (3..=6).contains(&first),
        "backoff within 3 s: {first} requests; {a:?}"
    );
    assert!(
        lock_content(&env).starts_with(&format!("failed {first} ")),
        "marker: {:?}",
        lock_content(&env)
    );

    // The next helper does not start from zero: it waits out the pause the
    // first one would have taken, and gets one attempt at most.
    let b = env.run(&[]);
    b.expect_code(exit::TEMPFAIL);
    assert!(
        b.stderr
            .contains(&format!("failed the last {first} attempt(s) in a row")),
        "{b:?}"
    );
    let second = env.provider.requests() - first;
    assert!(second <= 1, "{second} requests from the second helper");
    assert_eq!(env.token_bytes(), original, "nothing written");

    // The endpoint recovers: the next refresh, with a budget that covers
    // the pause the marker asks for (up to 4 s), succeeds and clears it.
    env.provider.set_mode(Mode::Normal);
    env.set_config("refresh_timeout", json!(10));
    env.run(&[])
        .expect_code(exit::OK)
        .expect_status(&["ok: refreshed"]);
    assert_eq!(lock_content(&env), "");
}

#[test]
fn passing_server_errors_are_retried_and_the_refresh_succeeds() {
    let env = Env::with_mode("retry-ok", Mode::ServerErrorsThenOk(2));
    env.write_token(&env.expired_token());
    let run = env.run(&[]);
    run.expect_code(exit::OK).expect_status(&["ok: refreshed"]);
    assert_eq!(run.stderr.matches("HTTP 503").count(), 2, "{run:?}");
    assert_eq!(env.provider.requests(), 3);
    assert_eq!(lock_content(&env), "");
}

#[test]
fn a_stale_or_garbled_marker_is_ignored() {
    let env = Env::new("retry-stale");
    env.write_token(&env.expired_token());
    let lock = common::token::lock_path(&env.token);
    for marker in [
        "failed 9 1000\n",
        "garbage",
        "failed 99999 99999999999999\n",
    ] {
        std::fs::write(&lock, marker).unwrap();
        env.write_token(&env.expired_token());
        let run = env.run(&[]);
        run.expect_code(exit::OK);
        assert!(!run.stderr.contains("in a row"), "{marker}: {run:?}");
        assert_eq!(lock_content(&env), "");
    }
}

/// `systemctl restart postfix` sends SIGTERM; landing after the POST and
/// before the rename it used to lose the token a rotating provider had
/// just issued (the file kept the old, now dead refresh token).
#[test]
fn sigterm_between_the_post_and_the_rename_keeps_the_rotated_token() {
    let env = Env::with_mode(
        "sigterm-window",
        Mode::SlowRotating(Duration::from_millis(1500)),
    );
    let tok = env.expired_token();
    env.write_token(&tok);
    let old = tok["refresh_token"].as_str().unwrap().to_string();
    let child = env.spawn(&[]);
    let start = Instant::now();
    while env.provider.requests() == 0 {
        assert!(start.elapsed() < Duration::from_secs(10), "no request");
        std::thread::sleep(Duration::from_millis(10));
    }
    // The request is in; the provider answers (and rotates) in 1.5 s.
    // SAFETY: signalling our own child, not yet reaped.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0);
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        out.status.signal(),
        Some(libc::SIGTERM),
        "SIGTERM takes effect after the rename: {out:?}"
    );
    let stored = env.token_json()["refresh_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(stored, old, "the rotated refresh token must be stored");
    assert!(env.provider.is_valid_refresh_token(&stored));
    assert!(!env.provider.is_valid_refresh_token(&old));
    assert!(env.temp_files().is_empty());
}

/// A DNS server that never answers (a UDP socket on 127.0.0.2:53 that
/// only receives) and resolv.conf asking for 30 s per try: the lookup
/// before the sandbox must still end with refresh_timeout. The helper runs
/// in its own mount namespace with that resolv.conf bound over the real one.
#[test]
fn dns_lookup_before_the_sandbox_is_bounded_by_refresh_timeout() {
    let blackhole = std::net::UdpSocket::bind("127.0.0.2:53")
        .expect("this test needs 127.0.0.2:53/udp free (it runs as root)");
    let mut env = Env::new("dns-timeout");
    let resolv = env.scratch.0.join("resolv.conf");
    std::fs::write(
        &resolv,
        "nameserver 127.0.0.2\noptions timeout:30 attempts:1\n",
    )
    .unwrap();
    env.set_config("refresh_timeout", json!(2));
    env.set_config(
        "token_endpoint",
        json!("https://oauth2.sasl-xoauth2.example.test/token"),
    );
    env.write_token(&env.expired_token());
    let original = env.token_bytes();
    let mut cmd = env.command(&[]);
    let src = std::ffi::CString::new(resolv.to_str().unwrap()).unwrap();
    // SAFETY: between fork and exec only unshare and mount, on memory
    // prepared before the fork.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(move || {
            let none = std::ptr::null();
            if libc::unshare(libc::CLONE_NEWNS) != 0
                || libc::mount(
                    none,
                    c"/".as_ptr(),
                    none,
                    libc::MS_REC | libc::MS_PRIVATE,
                    none.cast(),
                ) != 0
                || libc::mount(
                    src.as_ptr(),
                    c"/etc/resolv.conf".as_ptr(),
                    none,
                    libc::MS_BIND,
                    none.cast(),
                ) != 0
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    };
    let start = Instant::now();
    let mut child = cmd.spawn().unwrap();
    {
        use std::io::Write;
        let _ = child.stdin.take().unwrap().write_all(&env.handoff());
    }
    let run = wait_limited(&env, child, Duration::from_secs(20));
    let took = start.elapsed();
    let mut buf = [0u8; 512];
    blackhole.set_nonblocking(true).unwrap();
    assert!(
        blackhole.recv(&mut buf).is_ok(),
        "the lookup must have asked our DNS server: {run:?}"
    );
    run.expect_code(exit::TEMPFAIL).expect_status(&[
        "cannot resolve oauth2.sasl-xoauth2.example.test",
        "no answer within",
    ]);
    assert!(took < Duration::from_secs(4), "took {took:?}: {run:?}");
    assert_eq!(env.token_bytes(), original);
    assert_eq!(env.provider.requests(), 0);
}
