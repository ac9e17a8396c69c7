//! `sasl-xoauth2-refresh --check --online`: one real request against the
//! local fake token endpoint, through the refresher's own request code,
//! with nothing written; every answer turned into a verdict.

mod check_support;

use check_support::*;
use serde_json::json;
use testkit::provider::Mode;

/// The token file, its directory listing and the provider's valid refresh
/// tokens are what they were: --online wrote nothing.
fn assert_nothing_written(env: &CheckEnv, bytes: &[u8], entries: &[String]) {
    assert_eq!(env.token_bytes(), bytes, "the token file was changed");
    assert_eq!(
        env.dir_entries(),
        entries,
        "a file was created beside the token"
    );
}

#[test]
fn online_refresh_succeeds_and_writes_nothing() {
    let env = CheckEnv::new("online-ok", true);
    env.write_token(&env.expired_token());
    let (bytes, entries) = (env.token_bytes(), env.dir_entries());
    let run = env.run_text(&["--online"]);
    let host = env.provider.addr().to_string();
    run.expect_code(0).all_ok_except(&["apparmor"]).expect(
        "online",
        OK,
        &[
            &format!("{host} answered in "),
            "access token sha256:",
            "expires_in 3599 s",
            "refresh token not rotated",
            &format!("{} was not changed", env.token.display()),
        ],
    );
    assert_eq!(env.provider.requests(), 1);
    let rec = &env.provider.recorded()[0];
    assert_eq!(rec.field("grant_type"), Some("refresh_token"));
    assert_eq!(rec.field("client_id"), Some(env.provider.client_id()));
    assert_nothing_written(&env, &bytes, &entries);
    // The same in JSON.
    let out = env.command(&["--online", "--json"]).output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let online = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "online")
        .unwrap()
        .clone();
    assert_eq!(online["status"], "ok", "{v}");
    assert_eq!(online["fix"], serde_json::Value::Null);
    for s in env.provider.secrets() {
        assert!(!String::from_utf8_lossy(&out.stdout).contains(&s));
    }
    assert_eq!(env.provider.requests(), 2);
    assert_nothing_written(&env, &bytes, &entries);
}

#[test]
fn online_with_a_rotating_provider_warns_that_the_file_may_be_stale() {
    let env = CheckEnv::new("online-rotate", false);
    env.provider.set_mode(Mode::Rotating);
    let tok = env.expired_token();
    env.write_token(&tok);
    let (bytes, entries) = (env.token_bytes(), env.dir_entries());
    let t = env.token.display().to_string();
    env.run_text(&["--online"]).expect_code(1).expect(
        "online",
        WARN,
        &[
            "and a new refresh token: this provider rotates refresh tokens and --check writes nothing",
            &format!("the refresh token in {t} may now be invalid"),
            &format!("fix: run `sasl-xoauth2-refresh --force {t}` now"),
            "--overwrite-existing-token",
        ],
    );
    assert_nothing_written(&env, &bytes, &entries);
    // It was: this fake invalidates the used refresh token at once.
    assert!(!env
        .provider
        .is_valid_refresh_token(tok["refresh_token"].as_str().unwrap()));
}

#[test]
fn online_invalid_grant_is_explained() {
    let env = CheckEnv::new("online-grant", false);
    env.provider.set_mode(Mode::InvalidGrant);
    let (bytes, entries) = (env.token_bytes(), env.dir_entries());
    let t = env.token.display().to_string();
    env.run_text(&["--online"]).expect_code(2).expect(
        "online",
        FAIL,
        &[
            &format!("refused the refresh token in {t} (invalid_grant: AADSTS70000:"),
            "likely cause: the refresh token is not valid (revoked, malformed, or issued to another client ID)",
            &format!("fix: re-authorise: run `sasl-xoauth2-tool get-token {{gmail|outlook}} --overwrite-existing-token {t}`"),
        ],
    );
    assert_eq!(env.provider.requests(), 1, "a refusal is not retried");
    assert_nothing_written(&env, &bytes, &entries);
}

#[test]
fn online_invalid_client_is_explained() {
    let mut env = CheckEnv::new("online-client", false);
    env.set_config("client_secret", json!("wrong-secret-value"));
    env.extra_secrets.push("wrong-secret-value".into());
    env.run_text(&["--online"]).expect_code(2).expect(
        "online",
        FAIL,
        &[
            "refused the client (invalid_client: AADSTS7000215",
            "likely cause: the client_secret is wrong",
            "fix: check client_id, client_secret and scope",
        ],
    );
}

#[test]
fn online_server_errors() {
    let mut env = CheckEnv::new("online-5xx", false);
    // One 503, then the retry succeeds, as in a refresh.
    env.provider.set_mode(Mode::ServerErrorsThenOk(1));
    let run = env.run_text(&["--online"]);
    run.expect("online", OK, &["expires_in 3599 s"]);
    assert!(
        run.stderr.contains("HTTP 503 (server error); retrying in "),
        "{run:?}"
    );
    assert_eq!(env.provider.requests(), 2);
    // 503s that last: retried with backoff while refresh_timeout allows,
    // then a temporary failure, a warning.
    env.set_config("refresh_timeout", serde_json::json!(3));
    env.provider.set_mode(Mode::ServerErrorsThenOk(100));
    let (bytes, entries) = (env.token_bytes(), env.dir_entries());
    env.run_text(&["--online"]).expect_code(1).expect(
        "online",
        WARN,
        &[
            "failed (HTTP 503 (server error)) after ",
            "a temporary failure",
            "fix: the refresh will be tried again later",
        ],
    );
    let retried = env.provider.requests() - 2;
    assert!((3..=6).contains(&retried), "{retried} attempts in 3 s");
    assert_nothing_written(&env, &bytes, &entries);
    // An answer that is not JSON: the endpoint is wrong.
    env.provider.set_mode(Mode::GarbageJson);
    env.run_text(&["--online"]).expect(
        "online",
        FAIL,
        &["sent an unusable answer: the response is not a JSON object"],
    );
}

#[test]
fn online_is_not_attempted_on_a_broken_setup() {
    let mut env = CheckEnv::new("online-refused", false);
    // A token file anybody may rewrite could point the request anywhere.
    chmod(&env.token, 0o666);
    env.run_text(&["--online"]).expect(
        "online",
        FAIL,
        &["not attempted", "is writable by every user"],
    );
    chmod(&env.token, 0o600);
    env.remove_config("client_id");
    env.run_text(&["--online"]).expect(
        "online",
        FAIL,
        &["not attempted: the config, the token file or the settings failed above"],
    );
    assert_eq!(env.provider.requests(), 0);
}

/// uid of the client socket connected to 127.0.0.1:`port`, from /proc/net/tcp.
fn client_socket_uid(port: u16) -> Option<u32> {
    let text = std::fs::read_to_string("/proc/net/tcp").ok()?;
    text.lines().skip(1).find_map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        let rem_port = u16::from_str_radix(f.get(2)?.split(':').nth(1)?, 16).ok()?;
        // st 01 = ESTABLISHED
        (rem_port == port && f.get(3) == Some(&"01")).then(|| f.get(7)?.parse().ok())?
    })
}

#[test]
fn online_request_runs_as_the_token_owner_not_root() {
    let env = CheckEnv::new("online-privdrop", false);
    // Slow answers leave time to look at the open connection.
    env.provider
        .set_mode(Mode::Slow(std::time::Duration::from_millis(1500)));
    let child = env
        .command(&["--online"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let uid = loop {
        if let Some(uid) = client_socket_uid(env.provider.addr().port()) {
            break uid;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no connection to the provider seen"
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        uid,
        postfix_ids().0,
        "the request ran as uid {uid}:\n{stdout}"
    );
    assert!(
        parse_text(&stdout)
            .iter()
            .any(|l| l.name == "online" && l.status == OK),
        "{stdout}"
    );
    for s in env.provider.secrets() {
        assert!(!stdout.contains(&s));
    }
}

#[test]
fn token_file_overrides_are_listed_and_refused_ones_never_sent() {
    let mut env = CheckEnv::new("online-trust", false);
    let evil = testkit::provider::FakeProvider::start();
    let mut tok = env.expired_token();
    tok["token_endpoint"] = json!(evil.url());
    tok["proxy"] = json!("http://user:pw-xyz@127.0.0.1:1");
    env.write_token(&tok);
    let run = env.run_text(&["--online"]);
    run.expect_code(2)
        .expect(
            "overrides",
            "FAIL",
            &[
                &format!("\"token_endpoint\" {} is refused", evil.url()),
                "allowed_token_endpoints",
                "\"proxy\" http://…@127.0.0.1:1 is refused",
                "allow_token_file_proxy",
            ],
        )
        .expect("online", "FAIL", &["not attempted"]);
    assert!(!run.stdout.contains("pw-xyz"), "{}", run.stdout);
    assert_eq!(evil.requests(), 0);
    assert_eq!(env.provider.requests(), 0);

    // Allowed: listed, with the token's own client; the check shows why.
    env.set_config("allowed_token_endpoints", json!([env.provider.url()]));
    let mut tok = env.expired_token();
    tok["token_endpoint"] = json!(env.provider.url());
    tok["client_secret"] = json!(env.provider.client_secret());
    env.set_config("token_endpoint", json!("https://127.0.0.1:1/elsewhere"));
    env.write_token(&tok);
    env.run_text(&["--online"])
        .expect(
            "overrides",
            "ok",
            &["allowed (listed in allowed_token_endpoints)"],
        )
        .expect("online", "ok", &[]);
    assert_eq!(env.provider.requests(), 1);
}

/// Status fields of `pid` once it is inside the seccomp filter (or `None`
/// if it never gets there within 10 s): Uid, NoNewPrivs, CapEff, Seccomp.
fn confined_status(pid: u32) -> Option<String> {
    let end = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < end {
        let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        if s.lines().any(|l| l == "Seccomp:\t2") {
            return Some(s);
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    None
}

fn field<'a>(status: &'a str, name: &str) -> &'a str {
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .map(str::trim)
        .unwrap_or_else(|| panic!("no {name} in {status}"))
}

/// Run as root, `--check --online` and the tool's test-token-refresh make
/// their request as the token file's owner, inside the helper's sandbox:
/// caught while the (hung) provider keeps them waiting.
#[test]
fn online_requests_run_as_the_token_owner_in_the_helpers_sandbox() {
    let mut env = CheckEnv::new("online-confined", false);
    env.set_config("refresh_timeout", json!(3));
    env.write_token(&env.expired_token());
    let owner = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(&env.token).unwrap().uid()
    };
    assert_ne!(owner, 0, "the test needs a token owned by a non-root user");
    env.provider.set_mode(Mode::Hung);
    let check = env
        .command(&["--online"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let tool = std::process::Command::new(testkit::bins::tool())
        .args(["test-token-refresh"])
        .arg(&env.token)
        .arg("--config-file")
        .arg(&env.config_path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    for (what, child) in [("--check --online", check), ("tool", tool)] {
        let st = confined_status(child.id())
            .unwrap_or_else(|| panic!("{what} never entered the seccomp filter"));
        let uid = field(&st, "Uid:");
        assert!(
            uid.split_whitespace().all(|u| u == owner.to_string()),
            "{what}: {uid}"
        );
        assert_eq!(field(&st, "NoNewPrivs:"), "1", "{what}");
        assert_eq!(field(&st, "CapEff:"), "0000000000000000", "{what}");
        assert_eq!(field(&st, "CapPrm:"), "0000000000000000", "{what}");
        let out = child.wait_with_output().unwrap();
        assert!(!out.status.success(), "{what}: the provider hung: {out:?}");
    }
}

/// A split account: `--check --online` and the tool's test-token-refresh
/// send the refresh token of the secrets file (the token file has none)
/// and write neither file.
#[test]
fn online_and_test_token_refresh_read_the_secrets_file() {
    let env = CheckEnv::new("online-split", false);
    let mut tok = env.expired_token();
    let rt = tok
        .as_object_mut()
        .unwrap()
        .remove("refresh_token")
        .unwrap();
    env.write_token(&tok);
    let dir = common::secrets::secrets_dir(&env.token);
    let secrets = common::secrets::secrets_path(&env.token);
    mkdir(&dir, 0o700, postfix_ids());
    let body = serde_json::to_vec(&json!({ "refresh_token": rt })).unwrap();
    write(&secrets, &body, 0o600, postfix_ids());
    let (bytes, entries) = (env.token_bytes(), env.dir_entries());
    env.run_text(&["--online"])
        .expect("online", OK, &["access token sha256:"]);
    let out = std::process::Command::new(testkit::bins::tool())
        .args(["test-token-refresh"])
        .arg(&env.token)
        .arg("--config-file")
        .arg(&env.config_path)
        .output()
        .unwrap();
    let text = format!("{out:?}");
    assert!(out.status.success(), "{text}");
    assert!(text.contains("Token refresh succeeded."), "{text}");
    for s in env.provider.secrets() {
        assert!(!text.contains(&s), "secret in the tool's output: {text}");
    }
    let sent: Vec<_> = env
        .provider
        .recorded()
        .iter()
        .map(|r| r.field("refresh_token").map(str::to_owned))
        .collect();
    assert_eq!(sent, vec![rt.as_str().map(str::to_owned); 2]);
    assert_nothing_written(&env, &bytes, &entries);
    assert_eq!(std::fs::read(&secrets).unwrap(), body);
}
