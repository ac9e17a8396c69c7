//! `get-token outlook`: device code flow (the default), loopback flow with
//! PKCE, and the legacy paste flow, against the local fake Microsoft
//! endpoints (reached through --login-base).

mod support;

use std::time::{Duration, Instant};
use support::*;

fn public_client(device: DeviceScript) -> Behaviour {
    Behaviour {
        client_secret: None,
        device,
        ..Default::default()
    }
}

fn outlook(fake: &Fake, out: &str, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = vec!["get-token".into(), "outlook".into(), out.into()];
    args.extend(fake.outlook_args());
    args.extend(extra.iter().map(|s| s.to_string()));
    args
}

fn ms_error(code: u32, error: &str, text: &str) -> String {
    serde_json::json!({
        "error": error,
        "error_description": format!("AADSTS{code}: {text}\r\nTrace ID: 0000\r\nCorrelation ID: 1111\r\nTimestamp: 2026-01-01 00:00:00Z"),
        "error_codes": [code],
    })
    .to_string()
}

#[test]
fn device_flow_is_the_default_and_writes_the_token() {
    let fake = Fake::start(public_client(DeviceScript::ApproveAfter(2)));
    let out = fake.dir.path().join("user@outlook.example");
    let fin = run(&outlook(&fake, out.to_str().unwrap(), &[]), "");
    assert!(fin.status.success(), "{}", fin.all());
    assert!(fin.stderr.contains(USER_CODE), "{}", fin.all());
    assert!(
        fin.stderr.contains("https://microsoft.example/devicelogin"),
        "{}",
        fin.all()
    );
    assert!(
        fin.stderr.contains("the code expires in 00:"),
        "{}",
        fin.all()
    );
    assert!(
        fin.stderr.contains(&format!(
            "\"token_endpoint\": \"{}/consumers/oauth2/v2.0/token\"",
            fake.base
        )),
        "{}",
        fin.all()
    );
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
    let seen = fake.seen();
    let dc = seen
        .iter()
        .find(|s| s.path.ends_with("/devicecode"))
        .unwrap();
    assert_eq!(dc.path, "/consumers/oauth2/v2.0/devicecode");
    assert_eq!(
        dc.get("scope"),
        Some("https://outlook.office.com/SMTP.Send offline_access")
    );
    let polls: Vec<_> = seen.iter().filter(|s| s.path.ends_with("/token")).collect();
    assert_eq!(polls.len(), 3);
    assert!(polls.iter().all(|p| p.get("client_secret").is_none()));
    assert_eq!(mode(&out), 0o600);
    let t = common::TokenFile::load(&out).unwrap();
    assert_eq!(t.refresh_token.as_ref().unwrap().expose(), REFRESH_TOKEN);
    assert_eq!(t.access_token.as_ref().unwrap().expose(), ACCESS_TOKEN);
    assert_no_secrets(&fin.all(), &fake.secrets());
}

#[test]
fn cloud_and_tenant_choose_path_and_scope() {
    let fake = Fake::start(public_client(DeviceScript::ApproveAfter(0)));
    let fin = run(
        &outlook(
            &fake,
            "-",
            &[
                "--use-device-flow",
                "--cloud=usgov-dod",
                "--tenant=contoso.onmicrosoft.com",
            ],
        ),
        "",
    );
    assert!(fin.status.success(), "{}", fin.all());
    let seen = fake.seen();
    let dc = seen
        .iter()
        .find(|s| s.path.ends_with("/devicecode"))
        .unwrap();
    assert_eq!(dc.path, "/contoso.onmicrosoft.com/oauth2/v2.0/devicecode");
    assert_eq!(
        dc.get("scope"),
        Some("https://outlook-dod.office365.us/SMTP.Send offline_access")
    );
    // A custom scope gets offline_access added.
    let fake = Fake::start(public_client(DeviceScript::ApproveAfter(0)));
    let fin = run(
        &outlook(
            &fake,
            "-",
            &["--scope=https://outlook.office.com/SMTP.Send"],
        ),
        "",
    );
    assert!(fin.status.success(), "{}", fin.all());
    let seen = fake.seen();
    assert_eq!(
        seen[0].get("scope"),
        Some("https://outlook.office.com/SMTP.Send offline_access")
    );
}

#[test]
fn slow_down_makes_the_tool_poll_less_often() {
    let fake = Fake::start(public_client(DeviceScript::SlowDownThenApprove));
    let fin = run(&outlook(&fake, "-", &[]), "");
    assert!(fin.status.success(), "{}", fin.all());
    assert!(fin.stderr.contains("now every 6 s"), "{}", fin.all());
    // The fake answers any poll within the (raised) interval with another
    // slow_down and records it: none may have happened.
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
    assert_no_secrets(&fin.stderr, &fake.secrets());
}

#[test]
fn code_expiring_unused_ends_the_wait() {
    let fake = Fake::start(Behaviour {
        device_expires_in: 3,
        ..public_client(DeviceScript::NeverApprove)
    });
    let out = fake.dir.path().join("tok");
    let started = Instant::now();
    let fin = run(&outlook(&fake, out.to_str().unwrap(), &[]), "");
    assert!(!fin.status.success());
    assert!(
        fin.stderr
            .contains("the code expired before the sign-in finished"),
        "{}",
        fin.all()
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
    assert!(!out.exists());
}

#[test]
fn expired_token_from_the_provider() {
    let fake = Fake::start(public_client(DeviceScript::ServerExpired));
    let fin = run(&outlook(&fake, "-", &[]), "");
    assert!(!fin.status.success());
    assert!(fin.stderr.contains("(expired_token)"), "{}", fin.all());
    assert!(fin.stdout.is_empty());
}

#[test]
fn declined_sign_in() {
    let fake = Fake::start(public_client(DeviceScript::Decline));
    let fin = run(&outlook(&fake, "-", &[]), "");
    assert!(!fin.status.success());
    assert!(
        fin.stderr
            .contains("the sign-in was declined (authorization_declined)"),
        "{}",
        fin.all()
    );
}

#[test]
fn bad_verification_code() {
    let fake = Fake::start(public_client(DeviceScript::BadCode));
    let fin = run(&outlook(&fake, "-", &[]), "");
    assert!(!fin.status.success());
    assert!(
        fin.stderr.contains("bad_verification_code"),
        "{}",
        fin.all()
    );
}

#[test]
fn public_client_flows_disabled_is_explained() {
    let fake = Fake::start(Behaviour {
        poll_error: Some((
            401,
            ms_error(
                7000218,
                "invalid_client",
                "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            ),
        )),
        ..public_client(DeviceScript::ApproveAfter(0))
    });
    let fin = run(&outlook(&fake, "-", &[]), "");
    assert!(!fin.status.success());
    assert!(fin.stderr.contains("AADSTS7000218"), "{}", fin.all());
    assert!(
        fin.stderr.contains("Allow public client flows"),
        "{}",
        fin.all()
    );
    assert!(!fin.stderr.contains("Trace ID"), "{}", fin.all());
}

#[test]
fn unknown_app_is_explained() {
    let fake = Fake::start(Behaviour {
        devicecode_error: Some((
            400,
            ms_error(
                700016,
                "unauthorized_client",
                "Application with identifier 'x' was not found in the directory 'Contoso'.",
            ),
        )),
        ..public_client(DeviceScript::ApproveAfter(0))
    });
    let fin = run(&outlook(&fake, "-", &["--tenant=organizations"]), "");
    assert!(!fin.status.success());
    assert!(
        fin.stderr.contains("refused to start the device sign-in"),
        "{}",
        fin.all()
    );
    assert!(
        fin.stderr.contains("Application (client) ID"),
        "{}",
        fin.all()
    );
    assert_eq!(fake.token_requests(), 0);
}

/// Run the loopback flow up to the browser's return; gives the tool and
/// the redirect the fake sent the browser to.
fn loopback_start(fake: &Fake, out: &str, extra: &[&str]) -> (Tool, String, u16) {
    let mut args = outlook(fake, out, &["--use-loopback-flow"]);
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut tool = Tool::spawn(&args);
    let prefix = format!("{}/consumers/oauth2/v2.0/authorize?", fake.base);
    let auth_url = tool.wait_stderr("the authorisation URL", |e| url_starting(e, &prefix));
    let port = tool.wait_stderr("the listener port", listener_port);
    let (status, loc, _) = get(&fake.browser(), &auth_url);
    assert_eq!(status, 302);
    let loc = loc.unwrap();
    assert!(
        loc.starts_with(&format!("http://localhost:{port}?")),
        "{loc}"
    );
    (tool, loc, port)
}

#[test]
fn loopback_flow_with_pkce() {
    let fake = Fake::start(public_client(DeviceScript::ApproveAfter(0)));
    let out = fake.dir.path().join("tok");
    let (tool, loc, _) = loopback_start(&fake, out.to_str().unwrap(), &[]);
    // The listener is on 127.0.0.1; a browser falls back there for localhost.
    let (status, _, page) = get(
        &fake.browser(),
        &loc.replace("//localhost:", "//127.0.0.1:"),
    );
    assert_eq!(status, 200, "{page}");
    let fin = tool.finish();
    assert!(fin.status.success(), "{}", fin.all());
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
    let seen = fake.seen();
    let exchange = seen.iter().find(|s| s.path.ends_with("/token")).unwrap();
    assert_eq!(exchange.get("grant_type"), Some("authorization_code"));
    assert_eq!(
        exchange.get("scope"),
        Some("https://outlook.office.com/SMTP.Send offline_access")
    );
    assert!(exchange.get("code_verifier").is_some());
    let t = common::TokenFile::load(&out).unwrap();
    assert_eq!(t.refresh_token.as_ref().unwrap().expose(), REFRESH_TOKEN);
    assert_no_secrets(&fin.all(), &fake.secrets());
}

#[test]
fn wrong_tenant_is_explained() {
    let fake = Fake::start(Behaviour {
        token_error: Some((
            400,
            ms_error(
                50020,
                "invalid_grant",
                "User account 'a@b' from identity provider 'live.com' does not exist in tenant 'Contoso'.",
            ),
        )),
        ..public_client(DeviceScript::ApproveAfter(0))
    });
    let (tool, loc, _) = loopback_start(&fake, "-", &[]);
    get(
        &fake.browser(),
        &loc.replace("//localhost:", "//127.0.0.1:"),
    );
    let fin = tool.finish();
    assert!(!fin.status.success());
    assert!(fin.stderr.contains("AADSTS50020"), "{}", fin.all());
    assert!(
        fin.stderr.contains("--tenant organizations"),
        "{}",
        fin.all()
    );
}

#[test]
fn missing_consent_is_explained() {
    let fake = Fake::start(Behaviour {
        authorize_error: Some((
            "consent_required".into(),
            "AADSTS65001: The user or administrator has not consented to use the application"
                .into(),
        )),
        ..public_client(DeviceScript::ApproveAfter(0))
    });
    let (tool, loc, _) = loopback_start(&fake, "-", &[]);
    let (status, _, _) = get(
        &fake.browser(),
        &loc.replace("//localhost:", "//127.0.0.1:"),
    );
    assert_eq!(status, 400);
    let fin = tool.finish();
    assert!(!fin.status.success());
    assert!(
        fin.stderr
            .contains("the authorisation was refused: consent_required"),
        "{}",
        fin.all()
    );
    assert!(fin.stderr.contains("Grant admin consent"), "{}", fin.all());
    assert_eq!(fake.token_requests(), 0);
}

/// The paste flow up to the moment the user pastes.
fn paste_start(fake: &Fake, out: &str) -> (Tool, String) {
    let mut tool = Tool::spawn(&outlook(
        fake,
        out,
        &["--use-paste-flow", "--client-secret="],
    ));
    let prefix = format!("{}/consumers/oauth2/v2.0/authorize?", fake.base);
    let auth_url = tool.wait_stderr("the authorisation URL", |e| url_starting(e, &prefix));
    tool.wait_stderr("the prompt", |e| {
        e.contains("Resulting URL: ").then_some(())
    });
    let (status, loc, _) = get(&fake.browser(), &auth_url);
    assert_eq!(status, 302);
    let loc = loc.unwrap();
    assert!(
        loc.starts_with(&format!("{}/common/oauth2/nativeclient?code=", fake.base)),
        "{loc}"
    );
    (tool, loc)
}

#[test]
fn paste_flow_still_works() {
    let fake = Fake::start(public_client(DeviceScript::ApproveAfter(0)));
    let out = fake.dir.path().join("tok");
    let (mut tool, loc) = paste_start(&fake, out.to_str().unwrap());
    tool.write_stdin(&format!("{loc}\n"));
    let fin = tool.finish();
    assert!(fin.status.success(), "{}", fin.all());
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
    common::TokenFile::load(&out).unwrap();
    assert_no_secrets(&fin.all(), &fake.secrets());
}

#[test]
fn paste_flow_checks_state() {
    let fake = Fake::start(public_client(DeviceScript::ApproveAfter(0)));
    let (mut tool, loc) = paste_start(&fake, "-");
    let at = loc.find("state=").unwrap();
    let forged = format!("{}state=someone-elses", &loc[..at]);
    tool.write_stdin(&format!("{forged}\n"));
    let fin = tool.finish();
    assert!(!fin.status.success());
    assert!(fin.stderr.contains("state does not match"), "{}", fin.all());
    assert_eq!(fake.token_requests(), 0);
    // And an address from elsewhere is refused outright.
    let (mut tool, _) = paste_start(&fake, "-");
    tool.write_stdin("https://evil.example/?code=x&state=y\n");
    let fin = tool.finish();
    assert!(!fin.status.success());
    assert!(fin.stderr.contains("it should start with"), "{}", fin.all());
    assert_eq!(fake.token_requests(), 0);
}

#[test]
fn untrusted_certificate_is_refused() {
    let fake = Fake::start(public_client(DeviceScript::ApproveAfter(0)));
    let args: Vec<String> = vec![
        "get-token".into(),
        "outlook".into(),
        "-".into(),
        format!("--login-base={}", fake.base),
        format!("--client-id={CLIENT_ID}"),
    ];
    let fin = run(&args, "");
    assert!(!fin.status.success());
    assert!(fin.stderr.contains("--ca-bundle-file"), "{}", fin.all());
    assert!(fake.seen().is_empty());
}
