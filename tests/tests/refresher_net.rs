//! The helper's network behaviour: timeouts, retries, every provider error,
//! certificate verification and the proxy.

mod refresher_support;

use refresher_support::*;
use serde_json::json;
use std::net::TcpListener;
use std::time::{Duration, Instant};
use testkit::provider::{FakeProvider, Mode, Options};

#[test]
fn hung_endpoint_is_a_temporary_failure_within_the_timeout() {
    let mut env = Env::with_mode("hung", Mode::Hung);
    env.set_config("refresh_timeout", json!(2));
    env.write_token(&env.expired_token());
    let before = env.token_bytes();
    let start = Instant::now();
    let child = env.spawn(&[]);
    let pid = child.id();
    // Generous deadline: 2 s budget; fail only if it hangs.
    let run = wait_limited(&env, child, Duration::from_secs(20));
    let took = start.elapsed();
    run.expect_code(exit::TEMPFAIL).expect_status(&[
        "error: ",
        "no answer from token endpoint",
        "within 2 s",
        "refresh_timeout",
    ]);
    assert!(took < Duration::from_secs(10), "took {took:?}");
    // Waited for: no helper process is left.
    assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists());
    assert_eq!(env.token_bytes(), before);
    assert!(env.temp_files().is_empty());
    assert_eq!(env.provider.requests(), 1, "a timeout is not retried");
}

#[test]
fn one_server_error_is_retried() {
    let env = Env::with_mode("5xx-once", Mode::ServerErrorsThenOk(1));
    env.write_token(&env.expired_token());
    let run = env.run(&[]);
    run.expect_code(exit::OK).expect_status(&["ok: refreshed "]);
    assert!(run.stderr.contains("retrying"), "{run:?}");
    assert_eq!(env.provider.requests(), 2);
}

/// Every way the provider can fail: exit code, status words, and the file
/// byte-for-byte as it was, no temp file.
#[test]
fn provider_errors_leave_the_file_untouched() {
    let cases: Vec<(Mode, i32, Vec<&str>, usize)> = vec![
        (
            Mode::InvalidGrant,
            exit::UNAVAILABLE,
            vec![
                "refused the refresh token",
                "invalid_grant: AADSTS70000:",
                "re-authorise: run `sasl-xoauth2-tool get-token",
                "--overwrite-existing-token",
            ],
            1,
        ),
        (
            Mode::GarbageJson,
            exit::PROTOCOL,
            vec!["unusable answer", "not a JSON object", "token_endpoint"],
            1,
        ),
        (
            Mode::HugeBody,
            exit::PROTOCOL,
            vec!["larger than 64 KiB"],
            1,
        ),
        (
            Mode::MissingAccessToken,
            exit::PROTOCOL,
            vec!["no access_token"],
            1,
        ),
    ];
    for (mode, code, words, requests) in cases {
        let env = Env::with_mode("provider-errors", mode.clone());
        env.write_token(&env.expired_token());
        let before = env.token_bytes();
        let run = env.run(&[]);
        assert_eq!(run.code, code, "{mode:?}: {run:#?}");
        let status = run.status();
        assert!(status.starts_with("error: "), "{mode:?}: {status}");
        for w in words {
            assert!(status.contains(w), "{mode:?}: status lacks {w:?}: {status}");
        }
        assert!(
            status.chars().count() < 600,
            "{mode:?}: status too long: {status}"
        );
        assert_eq!(env.token_bytes(), before, "{mode:?}: file changed");
        assert!(env.temp_files().is_empty(), "{mode:?}");
        assert_eq!(env.provider.requests(), requests, "{mode:?}");
    }
}

#[test]
fn unknown_refresh_token_and_wrong_client_secret() {
    let env = Env::new("refused");
    let mut tok = env.expired_token();
    tok["refresh_token"] = json!("1//not-issued-by-this-provider");
    env.write_token(&tok);
    let mut env = env;
    env.extra_secrets
        .push("1//not-issued-by-this-provider".into());
    env.run(&[])
        .expect_code(exit::UNAVAILABLE)
        .expect_status(&["invalid_grant", "re-authorise"]);
    env.write_token(&env.expired_token());
    env.set_config("client_secret", json!("wrong-secret-value-123"));
    env.extra_secrets.push("wrong-secret-value-123".into());
    env.run(&[]).expect_code(exit::UNAVAILABLE).expect_status(&[
        "refused the client",
        "invalid_client",
        "client_secret",
    ]);
}

#[test]
fn provider_certificate_is_verified() {
    let mut env = Env::new("ca");
    env.write_token(&env.expired_token());
    let before = env.token_bytes();
    // Without the fake's CA the built-in roots reject its certificate.
    env.ca_pem.clear();
    env.run(&[])
        .expect_code(exit::TEMPFAIL)
        .expect_status(&["TLS with token endpoint", "ca_bundle_file"]);
    assert_eq!(env.provider.requests(), 0, "nothing was sent");
    assert_eq!(env.token_bytes(), before);
    // A different CA in the handoff: rejected as well.
    env.ca_pem = testkit::provider::FakeProvider::start()
        .ca_pem()
        .to_string();
    env.run(&[]).expect_code(exit::TEMPFAIL);
    assert_eq!(env.provider.requests(), 0);
    // The right CA in the handoff: works, no CA file needed anywhere.
    env.ca_pem = env.provider.ca_pem().to_string();
    env.run(&[]).expect_code(exit::OK);
    assert_eq!(env.provider.requests(), 1);
    // A CA directory named in the config works too, with OpenSSL's CApath
    // meaning: a file not named by hash is not looked at ...
    let cadir = env.scratch.0.join("certs");
    std::fs::create_dir(&cadir).unwrap();
    env.provider.write_ca(&cadir.join("fake.pem")).unwrap();
    std::fs::write(cadir.join("README"), b"not a certificate").unwrap();
    env.ca_pem.clear();
    env.set_config("ca_certs_dir", json!(cadir.display().to_string()));
    env.run(&["--force"])
        .expect_code(exit::CONFIG)
        .expect_status(&["ca_certs_dir", "no CA certificate in a hash-named file"]);
    assert_eq!(env.provider.requests(), 1);
    // ... a hash-named one (a c_rehash symlink, as in /etc/ssl/certs) is.
    std::os::unix::fs::symlink("fake.pem", cadir.join("0badc0de.0")).unwrap();
    env.run(&["--force"]).expect_code(exit::OK);
    assert_eq!(env.provider.requests(), 2);
}

#[test]
fn ca_certs_dir_trusts_ca_certificates_only() {
    // A server with a self-signed certificate that is no CA, as Debian's
    // ssl-cert-snakeoil.pem (whose key group ssl-cert may read).
    let snake = FakeProvider::start_with(Options {
        self_signed: true,
        ..Options::default()
    });
    let mut env = Env::with_provider("cadir-ca-only", snake);
    env.write_token(&env.expired_token());
    let before = env.token_bytes();
    // rustls itself takes any certificate it is given as a root: pinned in
    // ca_bundle_file (read as it is), the self-signed certificate works.
    let pinned = env.scratch.0.join("pinned.pem");
    env.provider.write_ca(&pinned).unwrap();
    env.ca_pem.clear();
    env.set_config("ca_bundle_file", json!(pinned.display().to_string()));
    env.run(&["--force"]).expect_code(exit::OK);
    assert_eq!(env.provider.requests(), 1);
    env.write_token_bytes(&before);
    // In ca_certs_dir, hash-named, beside a real (unrelated) CA: not a root.
    env.set_config("ca_bundle_file", json!(null));
    let cadir = env.scratch.0.join("certs");
    std::fs::create_dir(&cadir).unwrap();
    env.provider.write_ca(&cadir.join("5a1e0e11.0")).unwrap();
    FakeProvider::start()
        .write_ca(&cadir.join("0badc0de.0"))
        .unwrap();
    env.set_config("ca_certs_dir", json!(cadir.display().to_string()));
    let run = env.run(&[]);
    run.expect_code(exit::TEMPFAIL)
        .expect_status(&["TLS with token endpoint"]);
    assert!(
        run.stderr
            .contains("5a1e0e11.0: certificate 1 is not a CA certificate"),
        "{run:#?}"
    );
    assert_eq!(env.provider.requests(), 1, "nothing was sent");
    assert_eq!(env.token_bytes(), before);
    assert!(env.temp_files().is_empty());
}

#[test]
fn refresh_goes_through_the_configured_proxy() {
    let proxy = ConnectProxy::start();
    let mut env = Env::new("proxy");
    env.set_config("proxy", json!(format!("http://127.0.0.1:{}", proxy.port)));
    env.write_token(&env.expired_token());
    env.run(&[])
        .expect_code(exit::OK)
        .expect_status(&["ok: refreshed "]);
    assert_eq!(env.provider.requests(), 1);
    let seen = proxy.seen.lock().unwrap().clone();
    assert_eq!(
        seen,
        vec![format!(
            "CONNECT 127.0.0.1:{} HTTP/1.1",
            env.provider.addr().port()
        )]
    );
    // A dead proxy is a temporary failure, not a direct connection.
    env.set_config("proxy", json!("http://127.0.0.1:1"));
    env.write_token(&env.expired_token());
    env.run(&[])
        .expect_code(exit::TEMPFAIL)
        .expect_status(&["cannot reach token endpoint"]);
    assert_eq!(env.provider.requests(), 1);
}

#[test]
fn unreachable_endpoint_is_retried_within_the_budget_then_temporary() {
    let mut env = Env::new("unreachable");
    env.set_config("refresh_timeout", json!(3));
    // A port nothing listens on.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    env.set_config(
        "token_endpoint",
        json!(format!("https://127.0.0.1:{port}/token")),
    );
    env.write_token(&env.expired_token());
    let before = env.token_bytes();
    let run = env.run(&[]);
    run.expect_code(exit::TEMPFAIL)
        .expect_status(&["cannot reach token endpoint 127.0.0.1:", "attempt(s)"]);
    assert!(run.stderr.contains("retrying in "), "{run:?}");
    assert_eq!(env.token_bytes(), before);
}
