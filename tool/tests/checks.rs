//! `test-config`, `test-token-refresh` and `completions`: the C++ tool's
//! output contract (diagnostics on stderr, one verdict line on stdout,
//! non-zero exit on failure).

mod support;

use std::process::Command;
use support::*;

fn tool(args: &[&str], env: &[(&str, &str)]) -> Finished {
    let out = Command::new(bin())
        .args(args)
        .env_clear()
        .envs(env.iter().copied())
        .output()
        .unwrap();
    Finished {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn test_config_passes_a_good_config() {
    let d = tempfile::tempdir().unwrap();
    let c = d.path().join("good.conf");
    std::fs::write(
        &c,
        format!(r#"{{"client_id":"{CLIENT_ID}","client_secret":"{CLIENT_SECRET}","log_to_syslog_on_failure":"no"}}"#),
    )
    .unwrap();
    let fin = tool(&["test-config", "--config-file", c.to_str().unwrap()], &[]);
    assert!(fin.status.success(), "{}", fin.all());
    assert_eq!(fin.stdout, "Config check passed.\n");
    assert_eq!(fin.stderr, "");
    // Found through $SASL_XOAUTH2_CONFIG as well.
    let fin = tool(
        &["test-config"],
        &[("SASL_XOAUTH2_CONFIG", c.to_str().unwrap())],
    );
    assert_eq!(fin.stdout, "Config check passed.\n", "{}", fin.all());
}

#[test]
fn test_config_fails_with_the_reason() {
    let d = tempfile::tempdir().unwrap();
    let c = d.path().join("bad.conf");
    std::fs::write(
        &c,
        format!(r#"{{"client_secret": "{CLIENT_SECRET}", "refresh_window": "soon"}}"#),
    )
    .unwrap();
    let fin = tool(&["test-config", "--config-file", c.to_str().unwrap()], &[]);
    assert_eq!(fin.status.code(), Some(1), "{}", fin.all());
    assert_eq!(fin.stdout, "Config check failed.\n");
    assert!(
        fin.stderr.starts_with("sasl-xoauth2: config file "),
        "{}",
        fin.all()
    );
    assert!(fin.stderr.contains("refresh_window"), "{}", fin.all());
    assert_no_secrets(&fin.all(), &[CLIENT_SECRET.to_string()]);

    std::fs::write(&c, format!(r#"{{"client_secret": "{CLIENT_SECRET}" "#)).unwrap();
    let fin = tool(&["test-config", "--config-file", c.to_str().unwrap()], &[]);
    assert_eq!(fin.stdout, "Config check failed.\n");
    assert!(fin.stderr.contains("not valid JSON"), "{}", fin.all());
    assert_no_secrets(&fin.all(), &[CLIENT_SECRET.to_string()]);

    let missing = d.path().join("nope.conf");
    let fin = tool(
        &["test-config", "--config-file", missing.to_str().unwrap()],
        &[],
    );
    assert_eq!(fin.status.code(), Some(1));
    assert_eq!(fin.stdout, "Config check failed.\n");
    assert!(fin.stderr.contains("does not exist"), "{}", fin.all());
}

#[test]
fn test_config_warns_about_typos_but_passes() {
    let d = tempfile::tempdir().unwrap();
    let c = d.path().join("typo.conf");
    std::fs::write(
        &c,
        r#"{"client_id":"a","client_secret":"b","refresh_windw":600}"#,
    )
    .unwrap();
    let fin = tool(&["test-config", "--config-file", c.to_str().unwrap()], &[]);
    assert!(fin.status.success());
    assert_eq!(fin.stdout, "Config check passed.\n");
    assert!(
        fin.stderr.contains("did you mean \"refresh_window\""),
        "{}",
        fin.all()
    );
}

#[test]
fn test_token_refresh_reports_an_unreadable_token() {
    let d = tempfile::tempdir().unwrap();
    let c = d.path().join("c.conf");
    std::fs::write(&c, r#"{"client_id":"a","client_secret":"b"}"#).unwrap();
    let t = d.path().join("missing-token");
    let fin = tool(
        &[
            "test-token-refresh",
            t.to_str().unwrap(),
            "--config-file",
            c.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(fin.status.code(), Some(1));
    assert_eq!(fin.stdout, "Config check passed.\nFailed to read token.\n");
    assert!(fin.stderr.contains("get-token"), "{}", fin.all());
    // A bad config stops before the token is looked at.
    std::fs::write(&c, "nonsense").unwrap();
    let fin = tool(
        &[
            "test-token-refresh",
            t.to_str().unwrap(),
            "--config-file",
            c.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(fin.stdout, "Config check failed.\n");
}

#[test]
fn completions_for_each_shell() {
    for shell in ["bash", "zsh", "fish"] {
        let fin = tool(&["completions", shell], &[]);
        assert!(fin.status.success(), "{shell}: {}", fin.all());
        assert!(fin.stdout.contains("get-token"), "{shell}");
        assert!(fin.stdout.contains("overwrite-existing-token"), "{shell}");
    }
    let fin = tool(&["completions", "tcsh"], &[]);
    assert_eq!(fin.status.code(), Some(2));
}

#[test]
fn help_lists_the_compatible_options() {
    let fin = tool(&["get-token", "--help"], &[]);
    assert!(fin.status.success());
    for opt in [
        "--client-id",
        "--client-secret",
        "--scope",
        "--tenant",
        "--cloud",
        "--login-base",
        "--use-device-flow",
        "--overwrite-existing-token",
        "--local-listen-port",
        "usgov-dod",
    ] {
        assert!(
            fin.stdout.contains(opt),
            "{opt} missing from:\n{}",
            fin.stdout
        );
    }
}

fn refresh_setup(
    fake: &Fake,
    refresh_token: &str,
) -> (std::path::PathBuf, std::path::PathBuf, String) {
    let c = fake.dir.path().join("sasl-xoauth2.conf");
    std::fs::write(
        &c,
        serde_json::json!({
            "client_id": CLIENT_ID,
            "client_secret": CLIENT_SECRET,
            "token_endpoint": format!("{}/o/oauth2/token", fake.base),
            "ca_bundle_file": fake.ca_file,
        })
        .to_string(),
    )
    .unwrap();
    let t = fake.dir.path().join("token");
    let content = serde_json::json!({
        "access_token": "stale-access-token-4242",
        "refresh_token": refresh_token,
        "expiry": "0",
        "user": "someone@example.com",
    })
    .to_string();
    std::fs::write(&t, &content).unwrap();
    (c, t, content)
}

#[test]
fn test_token_refresh_succeeds_without_touching_the_file() {
    let fake = Fake::start(Behaviour::default());
    let (c, t, content) = refresh_setup(&fake, REFRESH_TOKEN);
    let fin = tool(
        &[
            "test-token-refresh",
            t.to_str().unwrap(),
            "--config-file",
            c.to_str().unwrap(),
        ],
        &[],
    );
    assert!(fin.status.success(), "{}", fin.all());
    assert_eq!(
        fin.stdout,
        "Config check passed.\nToken refresh succeeded.\n"
    );
    assert!(fin.stderr.contains("was not changed"), "{}", fin.all());
    assert_eq!(std::fs::read_to_string(&t).unwrap(), content);
    let refreshes: Vec<_> = fake
        .seen()
        .into_iter()
        .filter(|s| s.get("grant_type") == Some("refresh_token"))
        .collect();
    assert_eq!(refreshes.len(), 1);
    let mut secrets = fake.secrets();
    secrets.push("stale-access-token-4242".into());
    assert_no_secrets(&fin.all(), &secrets);
}

#[test]
fn test_token_refresh_explains_a_revoked_token() {
    let fake = Fake::start(Behaviour::default());
    let (c, t, content) = refresh_setup(&fake, "revoked-refresh-token-5151");
    let fin = tool(
        &[
            "test-token-refresh",
            t.to_str().unwrap(),
            "--config-file",
            c.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(fin.status.code(), Some(1), "{}", fin.all());
    assert_eq!(fin.stdout, "Config check passed.\nToken refresh failed.\n");
    assert!(fin.stderr.contains("invalid_grant"), "{}", fin.all());
    assert!(
        fin.stderr.contains("--overwrite-existing-token"),
        "{}",
        fin.all()
    );
    assert_eq!(std::fs::read_to_string(&t).unwrap(), content);
    let mut secrets = fake.secrets();
    secrets.push("revoked-refresh-token-5151".into());
    secrets.push("stale-access-token-4242".into());
    assert_no_secrets(&fin.all(), &secrets);
}

#[test]
fn test_token_refresh_checks_the_certificate() {
    // Without the test CA the fake's certificate must be refused.
    let fake = Fake::start(Behaviour::default());
    let (c, t, _) = refresh_setup(&fake, REFRESH_TOKEN);
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&c).unwrap()).unwrap();
    v.as_object_mut().unwrap().remove("ca_bundle_file");
    std::fs::write(&c, v.to_string()).unwrap();
    let fin = tool(
        &[
            "test-token-refresh",
            t.to_str().unwrap(),
            "--config-file",
            c.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(fin.status.code(), Some(1), "{}", fin.all());
    assert_eq!(fin.stdout, "Config check passed.\nToken refresh failed.\n");
    assert!(fake.seen().is_empty());
}

#[test]
fn test_token_refresh_refuses_a_token_file_endpoint_the_config_does_not_allow() {
    let fake = Fake::start(Behaviour::default());
    let evil = Fake::start(Behaviour::default());
    let (c, t, _) = refresh_setup(&fake, REFRESH_TOKEN);
    let mut v: serde_json::Value = serde_json::from_slice(&std::fs::read(&t).unwrap()).unwrap();
    v["token_endpoint"] = format!("{}/o/oauth2/token", evil.base).into();
    let content = v.to_string();
    std::fs::write(&t, &content).unwrap();
    let fin = tool(
        &[
            "test-token-refresh",
            t.to_str().unwrap(),
            "--config-file",
            c.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(fin.status.code(), Some(1), "{}", fin.all());
    assert_eq!(fin.stdout, "Config check passed.\nToken refresh failed.\n");
    for want in [
        t.to_str().unwrap(),
        "\"token_endpoint\"",
        "allowed_token_endpoints",
        "nothing was sent",
    ] {
        assert!(fin.stderr.contains(want), "{want:?}: {}", fin.all());
    }
    assert!(
        evil.seen().is_empty(),
        "the token file's endpoint was asked"
    );
    assert!(fake.seen().is_empty());
    assert_eq!(std::fs::read_to_string(&t).unwrap(), content);
    assert_no_secrets(&fin.all(), &fake.secrets());
}
