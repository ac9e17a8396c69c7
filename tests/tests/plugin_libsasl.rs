//! The plugin loaded by the real libsasl2, driven through the C client.

use std::path::{Path, PathBuf};
use testkit::sasl::{hex, plugin_dir, run_client, ClientRun};

const ACCESS: &str = "ya29.ACCESS-secret-value";
const REFRESH: &str = "1//REFRESH-secret-value";
const CLIENT_SECRET: &str = "GOCSPX-client-secret-value";
const SECRETS: &[&str] = &[ACCESS, REFRESH, CLIENT_SECRET];

const SASL_CONTINUE: i32 = 1;
const SASL_OK: i32 = 0;
const SASL_INTERACT_LINE: &str = "interact";

struct Env {
    dir: PathBuf,
}

impl Env {
    fn new(name: &str) -> Env {
        let dir = std::env::temp_dir().join(format!("sx2-plugin-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let env = Env { dir };
        env.write(
            "sasl-xoauth2.conf",
            &format!(r#"{{"client_id":"cid","client_secret":"{CLIENT_SECRET}"}}"#),
        );
        env
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn write(&self, name: &str, body: &str) -> PathBuf {
        let p = self.path(name);
        std::fs::write(&p, body).unwrap();
        p
    }

    fn token(&self, name: &str, expiry: &str, extra: &str) -> PathBuf {
        self.write(
            name,
            &format!(r#"{{"access_token":"{ACCESS}","refresh_token":"{REFRESH}","expiry":{expiry}{extra}}}"#),
        )
    }

    fn config(&self) -> PathBuf {
        self.path("sasl-xoauth2.conf")
    }

    fn run(&self, args: &[&str]) -> ClientRun {
        let run = run_client(&self.config(), args);
        run.assert_no_secret(SECRETS);
        run
    }

    /// One XOAUTH2 login as user "u" with `pass` as the token file.
    fn xoauth2(&self, pass: &Path) -> ClientRun {
        self.run(&[
            "--mech",
            "XOAUTH2",
            "--user",
            "u",
            "--pass",
            pass.to_str().unwrap(),
        ])
    }
}

impl Drop for Env {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn far_future() -> String {
    "\"9999999999\"".into()
}

fn xoauth2_bytes(user: &str) -> Vec<u8> {
    format!("user={user}\x01auth=Bearer {ACCESS}\x01\x01").into_bytes()
}

#[test]
fn pluginviewer_lists_both_mechanisms_with_ssf_60() {
    let out = std::process::Command::new("saslpluginviewer")
        .arg("-c")
        .env("SASL_PATH", plugin_dir())
        // A missing config must not make init fail.
        .env("SASL_XOAUTH2_CONFIG", "/nonexistent/sasl-xoauth2.conf")
        .output()
        .expect("saslpluginviewer (Debian package sasl2-bin) must be installed");
    let text = String::from_utf8_lossy(&out.stdout);
    for mech in ["XOAUTH2", "OAUTHBEARER"] {
        let block = text
            .split("Plugin ")
            .find(|b| b.contains(&format!("SASL mechanism: {mech},")))
            .unwrap_or_else(|| panic!("{mech} not listed:\n{text}"));
        assert!(block.contains("best SSF: 60"), "{block}");
        assert!(
            block.contains("security flags: NO_ANONYMOUS|PASS_CREDENTIALS\n"),
            "{block}"
        );
        // A bearer token is plaintext-equivalent: the plugin must not claim
        // otherwise, or `noplaintext` would let it onto cleartext links.
        assert!(!block.contains("NO_PLAINTEXT"), "{block}");
        assert!(
            block.contains("features: WANT_CLIENT_FIRST|PROXY_AUTHENTICATION"),
            "{block}"
        );
    }
}

#[test]
fn xoauth2_with_callbacks_sends_exact_bytes_and_completes() {
    let env = Env::new("xoauth2");
    let token = env.token("tok.json", &far_future(), "");
    let run = env.run(&[
        "--mech",
        "XOAUTH2",
        "--user",
        "me@example.com",
        "--pass",
        token.to_str().unwrap(),
        "--step",
        "",
    ]);
    assert_eq!(run.rc("start", 0), Some(SASL_CONTINUE), "{run:?}");
    assert_eq!(
        run.out("start", 0).unwrap(),
        xoauth2_bytes("me@example.com")
    );
    assert_eq!(run.rc("step", 0), Some(SASL_OK), "{run:?}");
}

#[test]
fn oauthbearer_sends_gs2_header_host_and_port() {
    let env = Env::new("oauthbearer");
    let token = env.token("tok.json", &far_future(), "");
    let run = env.run(&[
        "--mech",
        "OAUTHBEARER",
        "--user",
        "a,b=c@example.com",
        "--pass",
        token.to_str().unwrap(),
        "--fqdn",
        "smtp.example.com",
        "--remote",
        "127.0.0.1;587",
        "--step",
        "",
    ]);
    assert_eq!(run.rc("start", 0), Some(SASL_CONTINUE), "{run:?}");
    let want = format!("n,a=a=2Cb=3Dc@example.com,\x01host=smtp.example.com\x01port=587\x01auth=Bearer {ACCESS}\x01\x01");
    assert_eq!(run.out("start", 0).unwrap(), want.into_bytes());
    assert_eq!(run.rc("step", 0), Some(SASL_OK));
}

#[test]
fn interaction_prompts_are_used_when_there_are_no_callbacks() {
    let env = Env::new("prompts");
    let token = env.token("tok.json", &far_future(), "");
    let run = env.run(&[
        "--prompt",
        "--mech",
        "XOAUTH2",
        "--user",
        "p@example.com",
        "--pass",
        token.to_str().unwrap(),
    ]);
    assert!(
        run.stdout.lines().any(|l| l == SASL_INTERACT_LINE),
        "{run:?}"
    );
    assert_eq!(run.rc("start", 0), Some(SASL_CONTINUE), "{run:?}");
    assert_eq!(run.out("start", 0).unwrap(), xoauth2_bytes("p@example.com"));
}

#[test]
fn unanswered_prompts_fail_cleanly() {
    let env = Env::new("noanswer");
    let run = env.run(&["--prompt", "--no-answer", "--mech", "XOAUTH2"]);
    let rc = run.rc("start", 0).unwrap();
    assert!(rc < 0, "{run:?}");
    assert!(
        run.log().iter().any(|l| l.contains("gave no user name")),
        "{run:?}"
    );
}

#[test]
fn password_that_is_not_a_path_is_the_bearer_token() {
    let env = Env::new("bearer");
    std::fs::remove_file(env.config()).unwrap(); // no config needed for this
    let run = env.run(&[
        "--mech",
        "XOAUTH2",
        "--user",
        "m@example.com",
        "--pass",
        ACCESS,
    ]);
    assert_eq!(run.rc("start", 0), Some(SASL_CONTINUE), "{run:?}");
    assert_eq!(run.out("start", 0).unwrap(), xoauth2_bytes("m@example.com"));
}

#[test]
fn user_field_in_token_file_overrides_sasl_user() {
    let env = Env::new("useroverride");
    let token = env.token("tok.json", &far_future(), r#","user":"real@example.com""#);
    let run = env.run(&[
        "--mech",
        "XOAUTH2",
        "--user",
        "alias",
        "--pass",
        token.to_str().unwrap(),
    ]);
    assert_eq!(
        run.out("start", 0).unwrap(),
        xoauth2_bytes("real@example.com")
    );
}

#[test]
fn gmail_401_challenge_gets_empty_answer_then_fails() {
    let env = Env::new("401");
    let token = env.token("tok.json", &far_future(), "");
    let challenge =
        hex(br#"{"status":"401","schemes":"Bearer","scope":"https://mail.google.com/"}"#);
    let run = env.run(&[
        "--mech",
        "XOAUTH2",
        "--user",
        "u",
        "--pass",
        token.to_str().unwrap(),
        "--step",
        &challenge,
        "--step",
        "",
    ]);
    assert_eq!(run.rc("step", 0), Some(SASL_CONTINUE), "{run:?}");
    assert_eq!(run.out("step", 0).unwrap(), b"");
    assert!(
        run.rc("step", 1).unwrap() < 0,
        "a further step fails: {run:?}"
    );
    assert!(
        run.log()
            .iter()
            .any(|l| l.contains("server rejected the token (status 401")),
        "{run:?}"
    );
}

#[test]
fn oauthbearer_error_challenge_gets_0x01() {
    let env = Env::new("bearer401");
    let token = env.token("tok.json", &far_future(), "");
    let challenge = hex(br#"{"status":"invalid_token","scope":"x"}"#);
    let run = env.run(&[
        "--mech",
        "OAUTHBEARER",
        "--user",
        "u",
        "--pass",
        token.to_str().unwrap(),
        "--step",
        &challenge,
    ]);
    assert_eq!(run.rc("step", 0), Some(SASL_CONTINUE), "{run:?}");
    assert_eq!(run.out("step", 0).unwrap(), b"\x01");
}

#[test]
fn garbage_challenge_is_handled_like_an_error() {
    let env = Env::new("garbage");
    let token = env.token("tok.json", &far_future(), "");
    let run = env.run(&[
        "--mech",
        "XOAUTH2",
        "--user",
        "u",
        "--pass",
        token.to_str().unwrap(),
        "--step",
        "fffe00017b7b",
    ]);
    assert_eq!(run.rc("step", 0), Some(SASL_CONTINUE), "{run:?}");
    assert_eq!(run.out("step", 0).unwrap(), b"");
    assert!(
        run.log().iter().any(|l| l.contains("unreadable challenge")),
        "{run:?}"
    );
}

/// Start an exchange that must fail; return the log.
fn failing(env: &Env, pass: &Path) -> Vec<String> {
    let run = env.xoauth2(pass);
    let rc = run.rc("start", 0).unwrap();
    assert!(rc < 0, "expected failure: {run:?}");
    let log: Vec<String> = run.log().into_iter().map(String::from).collect();
    assert!(!log.is_empty(), "a failure must be logged: {run:?}");
    log
}

fn assert_logged(log: &[String], parts: &[&str]) {
    assert!(
        log.iter().any(|l| parts.iter().all(|p| l.contains(p))),
        "no log line with all of {parts:?}:\n{log:#?}"
    );
}

#[test]
fn bad_token_files_fail_with_file_and_field_named() {
    let env = Env::new("badtokens");
    let p = |n: &str| env.path(n).display().to_string();

    assert_logged(
        &failing(&env, &env.path("missing.json")),
        &[&p("missing.json"), "does not exist", "get-token"],
    );
    let broken = env.write("broken.json", r#"{"refresh_token": "#);
    assert_logged(
        &failing(&env, &broken),
        &[&p("broken.json"), "not valid JSON"],
    );
    let huge = env.write("huge.json", &" ".repeat(100_000));
    assert_logged(&failing(&env, &huge), &[&p("huge.json"), "too large"]);
    let real = env.token("real.json", &far_future(), "");
    std::os::unix::fs::symlink(&real, env.path("link.json")).unwrap();
    assert_logged(
        &failing(&env, &env.path("link.json")),
        &[&p("link.json"), "symbolic link"],
    );
    std::fs::create_dir(env.path("dir.json")).unwrap();
    assert_logged(
        &failing(&env, &env.path("dir.json")),
        &[&p("dir.json"), "a directory"],
    );
    // No refresh token: the plugin cannot know (it never looks at the
    // secrets file of the split layout); the helper it starts for an
    // expired token says what is missing. A fresh one is served.
    let split = env.write(
        "split.json",
        &format!(r#"{{"access_token":"{ACCESS}","expiry":"9999999999"}}"#),
    );
    let run = env.xoauth2(&split);
    assert_eq!(run.rc("start", 0), Some(SASL_CONTINUE), "{run:?}");
    env.write(
        "sasl-xoauth2.conf",
        &format!(
            r#"{{"client_id":"cid","client_secret":"{CLIENT_SECRET}","refresh_helper":"{}"}}"#,
            testkit::bins::refresh_helper().display()
        ),
    );
    let norefresh = env.write(
        "norefresh.json",
        &format!(r#"{{"access_token":"{ACCESS}","expiry":"0"}}"#),
    );
    assert_logged(
        &failing(&env, &norefresh),
        &[
            &p("norefresh.json"),
            "field refresh_token missing",
            "get-token",
        ],
    );
    let nonnum = env.token("nonnum.json", "\"soon\"", "");
    assert_logged(
        &failing(&env, &nonnum),
        &[&p("nonnum.json"), "field expiry"],
    );
    let negative = env.token("negative.json", "\"-5\"", "");
    assert_logged(
        &failing(&env, &negative),
        &[&p("negative.json"), "field expiry"],
    );
}

#[test]
fn expiry_past_2038_is_fine() {
    let env = Env::new("y2038");
    let token = env.token("tok.json", "9999999999", "");
    let run = env.xoauth2(&token);
    assert_eq!(run.rc("start", 0), Some(SASL_CONTINUE), "{run:?}");
}

#[test]
fn missing_or_broken_config_is_reported_at_login() {
    let env = Env::new("badconfig");
    let token = env.token("tok.json", &far_future(), "");
    std::fs::remove_file(env.config()).unwrap();
    let cfg = env.config().display().to_string();
    assert_logged(
        &failing(&env, &token),
        &[&cfg, "does not exist", "SASL_XOAUTH2_CONFIG"],
    );
    env.write(
        "sasl-xoauth2.conf",
        r#"{"client_id": "x", "client_secret": "#,
    );
    assert_logged(&failing(&env, &token), &[&cfg, "not valid JSON"]);
    env.write("sasl-xoauth2.conf", r#"{"refresh_window": "ten"}"#);
    assert_logged(&failing(&env, &token), &[&cfg, "field refresh_window"]);
}

#[test]
fn log_modes_follow_the_config() {
    let env = Env::new("logmodes");
    let missing = env.path("missing.json");
    let conf = |extra: &str| {
        env.write(
            "sasl-xoauth2.conf",
            &format!(r#"{{"client_id":"c","client_secret":"{CLIENT_SECRET}"{extra}}}"#),
        )
    };

    conf(r#","log_to_syslog_on_failure":"no""#);
    let run = env.xoauth2(&missing);
    assert!(run.rc("start", 0).unwrap() < 0);
    assert!(
        run.log().iter().all(|l| !l.contains("sasl-xoauth2")),
        "{run:?}"
    );

    let token = env.token("tok.json", &far_future(), "");
    conf(r#","always_log_to_syslog":"yes""#);
    let run = env.xoauth2(&token);
    assert_eq!(run.rc("start", 0), Some(SASL_CONTINUE));
    assert!(
        run.log()
            .iter()
            .any(|l| l.contains("sending access token sha256:")),
        "{run:?}"
    );

    conf(r#","log_full_trace_on_failure":"yes""#);
    let challenge = hex(br#"{"status":"401"}"#);
    let run = env.run(&[
        "--mech",
        "XOAUTH2",
        "--user",
        "u",
        "--pass",
        token.to_str().unwrap(),
        "--step",
        &challenge,
    ]);
    let log = run.log();
    assert!(
        log.iter()
            .any(|l| l.contains("sending access token sha256:")),
        "{run:?}"
    );
    assert!(log.iter().any(|l| l.contains("status 401")), "{run:?}");
}
