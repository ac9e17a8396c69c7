//! The real `sasl-xoauth2-refresh` against the fake token endpoint: the
//! refresh itself, what it writes, and every way it must refuse.

mod refresher_support;

use refresher_support::*;
use serde_json::json;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use testkit::provider::Mode;

#[test]
fn expired_token_is_refreshed_once_keeping_fields_owner_and_mode() {
    let env = Env::new("expired");
    let mut tok = env.expired_token();
    tok["user"] = json!("someone@example.com");
    tok["x-unknown"] = json!({"nested": [1, 2, 3]});
    tok["expiry"] = json!(0); // numeric in, string out
    env.write_token(&tok);
    // An owner other than ours and a non-default mode: root's run becomes
    // the owner, so both stay (the directory is the owner's, as it must be
    // for the plugin's runs too).
    std::os::unix::fs::chown(&env.dir, Some(12345), Some(12346)).unwrap();
    std::os::unix::fs::chown(&env.token, Some(12345), Some(12346)).unwrap();
    std::fs::set_permissions(&env.token, std::fs::Permissions::from_mode(0o640)).unwrap();

    let before = now();
    let run = env.run(&[]);
    run.expect_code(exit::OK).expect_status(&[
        "ok: refreshed ",
        &env.token.display().to_string(),
        "expires in 3599 s",
    ]);
    assert!(run.status().contains("access token sha256:"), "{run:?}");
    assert_eq!(env.provider.requests(), 1);

    let rec = &env.provider.recorded()[0];
    assert_eq!(rec.method, "POST");
    assert_eq!(
        rec.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(rec.field("grant_type"), Some("refresh_token"));
    assert_eq!(rec.field("client_id"), Some(env.provider.client_id()));
    assert_eq!(
        rec.field("client_secret"),
        Some(env.provider.client_secret())
    );
    assert_eq!(rec.field("refresh_token"), tok["refresh_token"].as_str());
    assert_eq!(rec.field("scope"), None);

    let new = env.token_json();
    let at = new["access_token"].as_str().unwrap();
    assert_ne!(at, tok["access_token"].as_str().unwrap());
    assert!(env.provider.is_valid_access_token(at));
    let expiry: i64 = new["expiry"]
        .as_str()
        .expect("expiry written as a string")
        .parse()
        .unwrap();
    assert!((before + 3599..=now() + 3599).contains(&expiry), "{expiry}");
    assert_eq!(new["refresh_token"], tok["refresh_token"]);
    assert_eq!(new["user"], "someone@example.com");
    assert_eq!(new["x-unknown"], json!({"nested": [1, 2, 3]}));
    assert_eq!(env.token_meta(), (12345, 12346, 0o640));
    assert!(env.temp_files().is_empty());
    let lock = std::fs::metadata(env.dir.join(".user@example.com.json.lock")).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!(
        (lock.uid(), lock.gid(), lock.mode() & 0o777),
        (12345, 12346, 0o640)
    );
}

#[test]
fn root_run_on_a_directory_the_owner_cannot_write() {
    let env = Env::new("root-dir");
    env.write_token(&env.expired_token());
    std::os::unix::fs::chown(&env.token, Some(12345), Some(12345)).unwrap();
    let before = env.token_bytes();
    // The directory stays root's 0755: the owner (whom root becomes) cannot
    // create the lock file there, exactly as the plugin's run could not.
    env.run(&[]).expect_code(exit::CANTCREAT).expect_status(&[
        "error: ",
        "lock file",
        "directory must be writable",
    ]);
    assert_eq!(env.token_bytes(), before);
    assert_eq!(env.provider.requests(), 0);
}

#[test]
fn fresh_token_is_not_due_and_costs_no_request() {
    let env = Env::new("fresh");
    env.write_token(&env.fresh_token(3000));
    let before = env.token_bytes();
    let run = env.run(&[]);
    run.expect_code(exit::OK).expect_status(&["ok: not due "]);
    assert_eq!(env.provider.requests(), 0);
    assert_eq!(env.token_bytes(), before);
    // No lock file either: the shortcut needs nothing but a read.
    assert_eq!(std::fs::read_dir(&env.dir).unwrap().count(), 1);
}

#[test]
fn token_in_prefetch_window_is_refreshed() {
    let mut env = Env::new("prefetch");
    env.set_config("prefetch_window", json!(600));
    env.write_token(&env.fresh_token(300));
    env.run(&[])
        .expect_code(exit::OK)
        .expect_status(&["ok: refreshed "]);
    assert_eq!(env.provider.requests(), 1);
}

#[test]
fn force_refreshes_a_fresh_token_but_not_one_already_replaced() {
    let env = Env::new("force");
    let tok = env.fresh_token(3000);
    env.write_token(&tok);
    env.run(&["--force"])
        .expect_code(exit::OK)
        .expect_status(&["ok: refreshed "]);
    assert_eq!(env.provider.requests(), 1);
    // The server rejected the token we had before: the file already holds
    // another, unexpired one, so a forced refresh about the old one is moot.
    let old_fp = fingerprint(tok["access_token"].as_str().unwrap());
    env.run(&["--force", "--if-access-token", &old_fp])
        .expect_code(exit::OK)
        .expect_status(&["ok: not due ", "refreshed by another process"]);
    assert_eq!(env.provider.requests(), 1);
    // About the current one: refresh.
    let cur_fp = fingerprint(env.token_json()["access_token"].as_str().unwrap());
    env.run(&["--force", "--if-access-token", &cur_fp])
        .expect_code(exit::OK)
        .expect_status(&["ok: refreshed "]);
    assert_eq!(env.provider.requests(), 2);
}

fn fingerprint(s: &str) -> String {
    common::secret::fingerprint(s.as_bytes())
}

#[test]
fn far_future_expiry_9999999999() {
    let env = Env::new("far");
    let mut tok = env.fresh_token(3000);
    tok["expiry"] = json!("9999999999");
    env.write_token(&tok);
    let run = env.run(&[]);
    run.expect_code(exit::OK).expect_status(&["ok: not due "]);
    let secs = 9_999_999_999 - now();
    assert!(
        run.status().contains(&format!("expires in {secs} s"))
            || run.status().contains(&format!("expires in {} s", secs - 1)),
        "{run:?}"
    );
    assert_eq!(env.provider.requests(), 0);
    // A forced refresh replaces it with the provider's expiry...
    env.run(&["--force"]).expect_code(exit::OK);
    let e: i64 = env.token_json()["expiry"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((now() + 3590..=now() + 3599).contains(&e), "{e}");
    // ... and an absurd expires_in from the provider is capped at one day.
    env.provider.set_expires_in(9_999_999_999 - now(), true);
    let run = env.run(&["--force"]);
    run.expect_code(exit::OK)
        .expect_status(&["expires in 86400 s"]);
    assert!(run.stderr.contains("honoured up to 86400 s"), "{run:?}");
    let e: i64 = env.token_json()["expiry"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let day = 24 * 3600;
    assert!((now() + day - 10..=now() + day).contains(&e), "{e}");
}

#[test]
fn rotated_refresh_token_is_stored() {
    let env = Env::with_mode("rotate1", Mode::Rotating);
    let tok = env.expired_token();
    env.write_token(&tok);
    env.run(&[]).expect_code(exit::OK);
    let new = env.token_json();
    let rt = new["refresh_token"].as_str().unwrap();
    assert_ne!(rt, tok["refresh_token"].as_str().unwrap());
    assert_eq!(env.provider.valid_refresh_tokens(), vec![rt.to_string()]);
}

#[test]
fn expires_in_as_string_and_scope_and_public_client() {
    let mut env = Env::new("string-expiry");
    env.provider.set_expires_in(1234, true);
    env.set_config(
        "scope",
        json!("https://outlook.office.com/SMTP.Send offline_access"),
    );
    env.write_token(&env.expired_token());
    env.run(&[])
        .expect_code(exit::OK)
        .expect_status(&["expires in 1234 s"]);
    let rec = env.provider.recorded().pop().unwrap();
    assert_eq!(
        rec.field("scope"),
        Some("https://outlook.office.com/SMTP.Send offline_access")
    );
    assert!(
        rec.body
            .contains("scope=https%3A%2F%2Foutlook.office.com%2FSMTP.Send+offline_access"),
        "{}",
        rec.body
    );
}

#[test]
fn client_credentials_grant_needs_no_refresh_token() {
    let env = Env::new("client-creds");
    env.write_token(&json!({"grant_type": "client_credentials", "user": "app@example.com"}));
    env.run(&[])
        .expect_code(exit::OK)
        .expect_status(&["ok: refreshed "]);
    let rec = env.provider.recorded().pop().unwrap();
    assert_eq!(rec.field("grant_type"), Some("client_credentials"));
    assert_eq!(rec.field("refresh_token"), None);
    let new = env.token_json();
    assert!(env
        .provider
        .is_valid_access_token(new["access_token"].as_str().unwrap()));
    assert_eq!(new["grant_type"], "client_credentials");
}

#[test]
fn per_token_overrides_win() {
    let mut env = Env::new("overrides");
    // The config points elsewhere; the token file names the real endpoint
    // (allow-listed by the config) and its own client.
    env.set_config("client_id", json!("wrong-client"));
    env.set_config("client_secret", json!("wrong-secret"));
    env.set_config("token_endpoint", json!("https://127.0.0.1:1/nowhere"));
    env.set_config("allowed_token_endpoints", json!([env.provider.url()]));
    let mut tok = env.expired_token();
    tok["client_id"] = json!(env.provider.client_id());
    tok["client_secret"] = json!(env.provider.client_secret());
    tok["token_endpoint"] = json!(env.provider.url());
    env.write_token(&tok);
    env.run(&[]).expect_code(exit::OK);
    assert_eq!(env.provider.requests(), 1);
}

#[test]
fn config_file_and_environment_variable() {
    let env = Env::new("config-file");
    // --config PATH: the CA must then come from a file named in the config.
    let ca = env.scratch.0.join("ca.pem");
    env.provider.write_ca(&ca).unwrap();
    let mut config = env.config.clone();
    config["ca_bundle_file"] = json!(ca.display().to_string());
    std::fs::write(&env.config_path, config.to_string()).unwrap();
    env.write_token(&env.expired_token());
    env.run_with_config_file(&[]).expect_code(exit::OK);
    // $SASL_XOAUTH2_CONFIG instead of the default path.
    env.write_token(&env.expired_token());
    let out = std::process::Command::new(testkit::bins::refresh_helper())
        .env_clear()
        .env("SASL_XOAUTH2_CONFIG", &env.config_path)
        .arg(&env.token)
        .output()
        .unwrap();
    env.check(out).expect_code(exit::OK);
    assert_eq!(env.provider.requests(), 2);
}

#[test]
fn root_reads_its_config_then_becomes_the_token_owner() {
    let env = Env::new("root-config");
    // A config only root may read, a token (and directory) of another user.
    let ca = env.scratch.0.join("ca.pem");
    env.provider.write_ca(&ca).unwrap();
    let mut config = env.config.clone();
    config["ca_bundle_file"] = json!(ca.display().to_string());
    std::fs::write(&env.config_path, config.to_string()).unwrap();
    std::fs::set_permissions(&env.config_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::chown(&env.dir, Some(23456), Some(23456)).unwrap();
    env.write_token(&env.expired_token());
    std::os::unix::fs::chown(&env.token, Some(23456), Some(23456)).unwrap();
    env.run_with_config_file(&[]).expect_code(exit::OK);
    assert_eq!(env.token_meta(), (23456, 23456, 0o600));
    assert_eq!(env.provider.requests(), 1);
}

#[test]
fn localhost_name_is_resolved_before_the_sandbox() {
    let mut env = Env::new("localhost");
    env.set_config("token_endpoint", json!(env.provider.url_localhost()));
    env.write_token(&env.expired_token());
    env.run(&[]).expect_code(exit::OK);
    assert_eq!(env.provider.requests(), 1);
}

#[test]
fn unprivileged_user_refreshes_its_own_file() {
    let env = Env::new("nobody");
    let nobody = 65534;
    std::os::unix::fs::chown(&env.dir, Some(nobody), Some(nobody)).unwrap();
    env.write_token(&env.expired_token());
    std::os::unix::fs::chown(&env.token, Some(nobody), Some(nobody)).unwrap();
    let mut c = env.command(&[]);
    c.uid(nobody).gid(nobody);
    let mut child = c.spawn().unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&env.handoff())
            .unwrap();
    }
    env.finish(child).expect_code(exit::OK);
    assert_eq!(env.token_meta(), (nobody, nobody, 0o600));
    assert_eq!(env.provider.requests(), 1);
}

#[test]
fn unreadable_token_file_for_an_unprivileged_user() {
    let env = Env::new("unreadable");
    env.write_token(&env.expired_token()); // root:root 0600
    let before = env.token_bytes();
    let mut c = env.command(&[]);
    c.uid(65534).gid(65534);
    let mut child = c.spawn().unwrap();
    {
        use std::io::Write;
        child
            .stdin
            .take()
            .unwrap()
            .write_all(&env.handoff())
            .unwrap();
    }
    env.finish(child)
        .expect_code(exit::NOINPUT)
        .expect_status(&["error: token file ", "cannot be read", "chown"]);
    assert_eq!(env.token_bytes(), before);
    assert_eq!(env.provider.requests(), 0);
}

/// A bad-input case: name, how to break the file, exit code, status words.
type Case = (&'static str, Box<dyn Fn(&Env)>, i32, Vec<&'static str>);

/// Each bad input: the exit code, words the status line must hold, and
/// nothing written, no request made.
#[test]
fn bad_token_files_are_refused_untouched() {
    let env = Env::new("bad-inputs");
    let path = env.token.display().to_string();
    let cases: Vec<Case> = vec![
        (
            "missing",
            Box::new(|e: &Env| {
                let _ = std::fs::remove_file(&e.token);
            }),
            exit::NOINPUT,
            vec!["does not exist", "get-token"],
        ),
        (
            "broken JSON",
            Box::new(|e: &Env| e.write_token_bytes(b"{\"refresh_token\": \"1//abc\", ")),
            exit::DATAERR,
            vec!["not valid JSON", "line 1"],
        ),
        (
            "not an object",
            Box::new(|e: &Env| e.write_token_bytes(b"[\"refresh_token\"]")),
            exit::DATAERR,
            vec!["not a JSON object"],
        ),
        (
            "huge",
            Box::new(|e: &Env| {
                let mut v = e.expired_token();
                v["padding"] = json!("x".repeat(70_000));
                e.write_token(&v)
            }),
            exit::DATAERR,
            vec!["too large"],
        ),
        (
            "symlink",
            Box::new(|e: &Env| {
                let real = e.scratch.0.join("real.json");
                std::fs::write(&real, e.expired_token().to_string()).unwrap();
                let _ = std::fs::remove_file(&e.token);
                std::os::unix::fs::symlink(&real, &e.token).unwrap();
            }),
            exit::NOINPUT,
            vec!["symbolic link"],
        ),
        (
            "directory",
            Box::new(|e: &Env| {
                let _ = std::fs::remove_file(&e.token);
                std::fs::create_dir(&e.token).unwrap();
            }),
            exit::NOINPUT,
            vec!["not a regular file"],
        ),
        (
            "no refresh_token",
            Box::new(|e: &Env| e.write_token(&json!({"access_token": "", "expiry": "0"}))),
            exit::DATAERR,
            vec!["refresh_token missing", "get-token"],
        ),
        (
            "bad expiry",
            Box::new(|e: &Env| {
                let mut v = e.expired_token();
                v["expiry"] = json!("tomorrow");
                e.write_token(&v)
            }),
            exit::DATAERR,
            vec!["expiry"],
        ),
        (
            "bad grant_type",
            Box::new(|e: &Env| {
                let mut v = e.expired_token();
                v["grant_type"] = json!("password");
                e.write_token(&v)
            }),
            exit::DATAERR,
            vec!["grant_type"],
        ),
        (
            "world-writable",
            Box::new(|e: &Env| {
                e.write_token(&e.expired_token());
                std::fs::set_permissions(&e.token, std::fs::Permissions::from_mode(0o666)).unwrap();
            }),
            exit::DATAERR,
            vec!["writable by every user", "chmod 600"],
        ),
    ];
    for (name, setup, code, words) in cases {
        let _ = std::fs::remove_dir(&env.token);
        setup(&env);
        let before = std::fs::symlink_metadata(&env.token)
            .ok()
            .filter(|m| m.is_file())
            .map(|_| env.token_bytes());
        let run = env.run(&[]);
        assert_eq!(run.code, code, "{name}: {run:#?}");
        let status = run.status();
        assert!(status.starts_with("error: "), "{name}: {status}");
        assert!(
            status.contains(&path),
            "{name}: status must name the file: {status}"
        );
        for w in words {
            assert!(status.contains(w), "{name}: status lacks {w:?}: {status}");
        }
        if let Some(b) = before {
            assert_eq!(env.token_bytes(), b, "{name}: file changed");
        }
        assert_eq!(env.provider.requests(), 0, "{name}");
        assert!(env.temp_files().is_empty(), "{name}");
    }
}

#[test]
fn bad_configs_are_refused() {
    let cases: Vec<(&str, serde_json::Value, i32, Vec<&str>)> = vec![
        (
            "client_id",
            json!(null),
            exit::CONFIG,
            vec!["client_id is not set"],
        ),
        (
            "token_endpoint",
            json!("http://127.0.0.1:1/token"),
            exit::CONFIG,
            vec!["token_endpoint", "https://"],
        ),
        (
            "proxy",
            json!("socks5://127.0.0.1:1080"),
            exit::CONFIG,
            vec!["SOCKS"],
        ),
        (
            "refresh_window",
            json!("soon"),
            exit::CONFIG,
            vec!["refresh_window", "whole number"],
        ),
        ("sandbox", json!("strict"), exit::CONFIG, vec!["sandbox"]),
        (
            "ca_bundle_file",
            json!("/nonexistent/ca.pem"),
            exit::CONFIG,
            vec!["ca_bundle_file /nonexistent/ca.pem"],
        ),
    ];
    for (key, value, code, words) in cases {
        let mut env = Env::new("bad-config");
        if key == "ca_bundle_file" {
            env.ca_pem.clear();
        }
        env.set_config(key, value);
        env.write_token(&env.expired_token());
        let before = env.token_bytes();
        let run = env.run(&[]);
        assert_eq!(run.code, code, "{key}: {run:#?}");
        let status = run.status();
        assert!(status.starts_with("error: "), "{key}: {status}");
        for w in words {
            assert!(status.contains(w), "{key}: status lacks {w:?}: {status}");
        }
        assert_eq!(env.token_bytes(), before, "{key}");
        assert_eq!(env.provider.requests(), 0, "{key}");
        assert!(env.temp_files().is_empty(), "{key}");
    }
}

#[test]
fn broken_handoff_and_usage_errors() {
    let env = Env::new("handoff");
    env.write_token(&env.expired_token());
    // Not JSON on the pipe.
    let mut child = env.command(&[]).spawn().unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(b"garbage").unwrap();
    }
    env.finish(child)
        .expect_code(exit::CONFIG)
        .expect_status(&["error: ", "handoff"]);
    // A descriptor that is not open.
    let out = std::process::Command::new(testkit::bins::refresh_helper())
        .args(["--config-fd", "9"])
        .arg(&env.token)
        .output()
        .unwrap();
    env.check(out)
        .expect_code(exit::CONFIG)
        .expect_status(&["--config-fd 9"]);
    // Usage.
    let out = std::process::Command::new(testkit::bins::refresh_helper())
        .arg("--frobnicate")
        .output()
        .unwrap();
    env.check(out)
        .expect_code(exit::USAGE)
        .expect_status(&["error: ", "usage: sasl-xoauth2-refresh"]);
    assert_eq!(env.provider.requests(), 0);
}
