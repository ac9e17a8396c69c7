//! `get-token gmail`: the loopback redirect with PKCE and state, end to end
//! against the local fake provider, with the test acting as the browser.

mod support;

use std::path::Path;
use support::*;

struct Run {
    tool: Tool,
    auth_url: String,
    port: u16,
}

fn start(fake: &Fake, out: &Path, extra: &[&str]) -> Run {
    let mut args: Vec<String> = vec![
        "get-token".into(),
        "gmail".into(),
        out.display().to_string(),
    ];
    args.extend(fake.gmail_args());
    args.extend(extra.iter().map(|s| s.to_string()));
    let mut tool = Tool::spawn_umask0(&args);
    let prefix = format!("{}/o/oauth2/auth?", fake.base);
    let auth_url = tool.wait_stderr("the authorisation URL", |e| url_starting(e, &prefix));
    let port = tool.wait_stderr("the listener port", listener_port);
    Run {
        tool,
        auth_url,
        port,
    }
}

fn param(url: &str, key: &str) -> Option<String> {
    let q = url.split_once('?')?.1;
    parse_pairs(q)
        .into_iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

#[test]
fn happy_path_writes_a_0600_token_file() {
    let fake = Fake::start(Behaviour::default());
    let out = fake.dir.path().join("user@example.com");
    let secret_arg = format!("--client-secret={CLIENT_SECRET}");
    let Run {
        tool,
        auth_url,
        port,
    } = start(&fake, &out, &[&secret_arg]);

    assert_eq!(
        param(&auth_url, "redirect_uri").unwrap(),
        format!("http://127.0.0.1:{port}/oauth2_result")
    );
    assert_eq!(
        param(&auth_url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(
        param(&auth_url, "scope").as_deref(),
        Some("https://mail.google.com/")
    );
    assert_eq!(param(&auth_url, "access_type").as_deref(), Some("offline"));
    assert!(param(&auth_url, "state").unwrap().len() >= 22);
    assert_eq!(param(&auth_url, "code_challenge").unwrap().len(), 43);

    let browser = fake.browser();
    let (status, loc, _) = get(&browser, &auth_url);
    assert_eq!(status, 302);
    let loc = loc.unwrap();
    assert!(loc.starts_with(&format!("http://127.0.0.1:{port}/oauth2_result?")));
    let (status, _, page) = get(&browser, &loc);
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("You may close this window"), "{page}");

    let fin = tool.finish();
    assert!(fin.status.success(), "{}", fin.all());
    assert!(fake.violations().is_empty(), "{:?}", fake.violations());
    assert_eq!(fake.state.lock().unwrap().verifiers.len(), 1);
    assert_no_secrets(&fin.all(), &fake.secrets());
    assert!(fin.stderr.contains("Tokens written to"), "{}", fin.all());
    assert!(fin.stderr.contains("In production"), "{}", fin.all());

    // 0600 although the tool ran with umask 000; readable by our parser.
    assert_eq!(mode(&out), 0o600);
    let raw: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    let keys: Vec<_> = raw.as_object().unwrap().keys().cloned().collect();
    assert_eq!(keys, ["access_token", "refresh_token", "expiry"]);
    assert_eq!(raw["access_token"], ACCESS_TOKEN);
    assert_eq!(raw["refresh_token"], REFRESH_TOKEN);
    let expiry: i64 = raw["expiry"]
        .as_str()
        .expect("expiry is a string")
        .parse()
        .unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (now + 3500..=now + 3600).contains(&expiry),
        "{expiry} vs {now}"
    );
    let t = common::TokenFile::load(&out).unwrap();
    assert_eq!(t.refresh_token.as_ref().unwrap().expose(), REFRESH_TOKEN);
    // No temporary file left in the directory.
    let names: Vec<_> = std::fs::read_dir(fake.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert!(names.iter().all(|n| !n.ends_with(".tmp")), "{names:?}");
}

#[test]
fn secret_is_prompted_and_auth_shortcut_redirects() {
    let fake = Fake::start(Behaviour::default());
    let out = fake.dir.path().join("tok");
    // A fixed port, as one would forward with ssh -L.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let mut args: Vec<String> = vec![
        "get-token".into(),
        "gmail".into(),
        out.display().to_string(),
    ];
    args.extend(fake.gmail_args());
    args.push(format!("--local-listen-port={port}"));
    let mut tool = Tool::spawn(&args);
    tool.wait_stderr("the secret prompt", |e| {
        e.contains("OAuth client secret: ").then_some(())
    });
    tool.write_stdin(&format!("{CLIENT_SECRET}\n"));
    let prefix = format!("{}/o/oauth2/auth?", fake.base);
    let auth_url = tool.wait_stderr("the authorisation URL", |e| url_starting(e, &prefix));
    assert_eq!(tool.wait_stderr("the listener port", listener_port), port);

    let browser = fake.browser();
    let (status, loc, _) = get(&browser, &format!("http://127.0.0.1:{port}/auth"));
    assert_eq!(status, 302);
    assert_eq!(loc.as_deref(), Some(auth_url.as_str()));
    // Unknown paths are 404 and do not end the wait.
    assert_eq!(
        get(&browser, &format!("http://127.0.0.1:{port}/favicon.ico")).0,
        404
    );
    let (_, loc, _) = get(&browser, &auth_url);
    let (status, _, _) = get(&browser, &loc.unwrap());
    assert_eq!(status, 200);
    let fin = tool.finish();
    assert!(fin.status.success(), "{}", fin.all());
    assert_no_secrets(&fin.all(), &fake.secrets());
}

#[test]
fn wrong_state_is_rejected_and_its_code_never_exchanged() {
    let fake = Fake::start(Behaviour::default());
    let out = fake.dir.path().join("tok");
    let secret_arg = format!("--client-secret={CLIENT_SECRET}");
    let Run {
        mut tool,
        auth_url,
        port,
    } = start(&fake, &out, &[&secret_arg]);
    let browser = fake.browser();
    let (_, loc, _) = get(&browser, &auth_url);
    let loc = loc.unwrap();
    let state = param(&loc, "state").unwrap();
    let forged = loc.replace(&format!("state={}", enc(&state)), "state=forged-state");
    assert_ne!(forged, loc);
    let (status, _, page) = get(&browser, &forged);
    assert_eq!(status, 400);
    assert!(page.contains("Not accepted"), "{page}");
    // No state at all.
    let code = param(&loc, "code").unwrap();
    let (status, _, _) = get(
        &browser,
        &format!("http://127.0.0.1:{port}/oauth2_result?code={}", enc(&code)),
    );
    assert_eq!(status, 400);
    tool.wait_stderr("the warning", |e| {
        e.contains("ignored a redirect whose state").then_some(())
    });
    assert_eq!(
        fake.token_requests(),
        0,
        "a code with a wrong state was exchanged"
    );
    // The real redirect still works afterwards.
    let (status, _, _) = get(&browser, &loc);
    assert_eq!(status, 200);
    let fin = tool.finish();
    assert!(fin.status.success(), "{}", fin.all());
    assert_eq!(fake.token_requests(), 1);
    assert_no_secrets(&fin.all(), &fake.secrets());
}

#[test]
fn pkce_verifier_is_checked_by_the_provider() {
    let fake = Fake::start(Behaviour::default());
    let out = fake.dir.path().join("tok");
    let secret_arg = format!("--client-secret={CLIENT_SECRET}");
    let Run { tool, auth_url, .. } = start(&fake, &out, &[&secret_arg]);
    // Someone swaps the challenge on the way to the provider: the tool's
    // verifier no longer matches and the exchange must fail.
    let challenge = param(&auth_url, "code_challenge").unwrap();
    let other = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
    let tampered = auth_url.replace(&challenge, other);
    let browser = fake.browser();
    let (_, loc, _) = get(&browser, &tampered);
    let (status, _, page) = get(&browser, &loc.unwrap());
    assert_eq!(status, 400);
    assert!(page.contains("Failed"), "{page}");
    let fin = tool.finish();
    assert!(!fin.status.success());
    assert!(fin.stderr.contains("invalid_grant"), "{}", fin.all());
    assert!(fin.stderr.contains("PKCE verifier"), "{}", fin.all());
    assert_eq!(fake.violations(), ["PKCE verification failed"]);
    assert!(!out.exists());
    assert_no_secrets(&fin.all(), &fake.secrets());
}

#[test]
fn fake_refuses_an_exchange_without_verifier() {
    // The fake's PKCE check itself: a code exchanged without code_verifier
    // is refused, so the happy paths above prove the tool sends it.
    let fake = Fake::start(Behaviour::default());
    let browser = fake.browser();
    let auth = format!(
        "{}/o/oauth2/auth?client_id={}&response_type=code&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&state=s&code_challenge=abc&code_challenge_method=S256",
        fake.base,
        enc(CLIENT_ID)
    );
    let (_, loc, _) = get(&browser, &auth);
    let code = param(&loc.unwrap(), "code").unwrap();
    let body = format!(
        "grant_type=authorization_code&code={}&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&client_id={}&client_secret={}",
        enc(&code),
        enc(CLIENT_ID),
        enc(CLIENT_SECRET)
    );
    let mut r = browser
        .post(format!("{}/o/oauth2/token", fake.base))
        .content_type("application/x-www-form-urlencoded")
        .send(body.as_bytes())
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r
        .body_mut()
        .read_to_string()
        .unwrap()
        .contains("invalid_grant"));
    assert_eq!(fake.violations(), ["no code_verifier"]);
}

#[test]
fn access_denied_is_explained() {
    let fake = Fake::start(Behaviour {
        authorize_error: Some(("access_denied".into(), "The user denied access".into())),
        ..Default::default()
    });
    let out = fake.dir.path().join("tok");
    let secret_arg = format!("--client-secret={CLIENT_SECRET}");
    let Run { tool, auth_url, .. } = start(&fake, &out, &[&secret_arg]);
    let browser = fake.browser();
    let (_, loc, _) = get(&browser, &auth_url);
    let (status, _, _) = get(&browser, &loc.unwrap());
    assert_eq!(status, 400);
    let fin = tool.finish();
    assert!(!fin.status.success());
    assert!(fin.stderr.contains("access_denied"), "{}", fin.all());
    assert!(fin.stderr.contains("Test users"), "{}", fin.all());
    assert!(fin.stderr.contains("7 days"), "{}", fin.all());
    assert_eq!(fake.token_requests(), 0);
    assert!(!out.exists());
}

#[test]
fn wrong_client_secret_is_explained_and_not_printed() {
    let fake = Fake::start(Behaviour::default());
    let out = fake.dir.path().join("tok");
    let Run { tool, auth_url, .. } = start(&fake, &out, &["--client-secret=wrong-secret-zz91"]);
    let browser = fake.browser();
    let (_, loc, _) = get(&browser, &auth_url);
    get(&browser, &loc.unwrap());
    let fin = tool.finish();
    assert!(!fin.status.success());
    assert!(fin.stderr.contains("invalid_client"), "{}", fin.all());
    assert!(fin.stderr.contains("Desktop app"), "{}", fin.all());
    let mut secrets = fake.secrets();
    secrets.push("wrong-secret-zz91".into());
    assert_no_secrets(&fin.all(), &secrets);
    assert!(!out.exists());
}

#[test]
fn missing_refresh_token_is_an_error() {
    let fake = Fake::start(Behaviour {
        omit_refresh_token: true,
        ..Default::default()
    });
    let out = fake.dir.path().join("tok");
    let secret_arg = format!("--client-secret={CLIENT_SECRET}");
    let Run { tool, auth_url, .. } = start(&fake, &out, &[&secret_arg]);
    let browser = fake.browser();
    let (_, loc, _) = get(&browser, &auth_url);
    get(&browser, &loc.unwrap());
    let fin = tool.finish();
    assert!(!fin.status.success());
    assert!(fin.stderr.contains("no refresh token"), "{}", fin.all());
    assert!(
        fin.stderr.contains("myaccount.google.com/permissions"),
        "{}",
        fin.all()
    );
    assert!(!out.exists());
    assert_no_secrets(&fin.all(), &fake.secrets());
}

#[test]
fn port_in_use_is_a_clear_error() {
    let fake = Fake::start(Behaviour::default());
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port();
    let out = fake.dir.path().join("tok");
    let mut args: Vec<String> = vec![
        "get-token".into(),
        "gmail".into(),
        out.display().to_string(),
    ];
    args.extend(fake.gmail_args());
    args.push(format!("--client-secret={CLIENT_SECRET}"));
    args.push(format!("--local-listen-port={port}"));
    let fin = run(&args, "");
    assert!(!fin.status.success());
    assert!(
        fin.stderr
            .contains(&format!("127.0.0.1:{port}: the port is already in use")),
        "{}",
        fin.all()
    );
    assert!(fin.stderr.contains("--local-listen-port"), "{}", fin.all());
    assert!(fake.seen().is_empty());
}

#[test]
fn dash_prints_the_token_file_on_stdout_only() {
    let fake = Fake::start(Behaviour::default());
    let secret_arg = format!("--client-secret={CLIENT_SECRET}");
    let Run { tool, auth_url, .. } = start(&fake, Path::new("-"), &[&secret_arg]);
    let browser = fake.browser();
    let (_, loc, _) = get(&browser, &auth_url);
    get(&browser, &loc.unwrap());
    let fin = tool.finish();
    assert!(fin.status.success(), "{}", fin.all());
    let v: serde_json::Value = serde_json::from_str(&fin.stdout).unwrap();
    assert_eq!(v["refresh_token"], REFRESH_TOKEN);
    assert!(v["expiry"].is_string());
    assert_no_secrets(&fin.stderr, &fake.secrets());
}

#[test]
fn device_flow_is_refused_for_gmail() {
    let fin = run(
        &[
            "get-token",
            "gmail",
            "-",
            "--client-id=x",
            "--client-secret=y",
            "--use-device-flow",
        ],
        "",
    );
    assert!(!fin.status.success());
    assert!(
        fin.stderr
            .contains("device flow does not allow the Gmail scope"),
        "{}",
        fin.all()
    );
}

#[test]
fn plain_http_endpoints_are_refused() {
    let fin = run(
        &[
            "get-token",
            "gmail",
            "-",
            "--client-id=x",
            "--client-secret=y",
            "--token-endpoint=http://127.0.0.1:1/token",
        ],
        "",
    );
    assert!(!fin.status.success());
    assert!(
        fin.stderr.contains("must be an https:// URL"),
        "{}",
        fin.all()
    );
}

#[test]
fn idle_browser_connections_do_not_block_the_redirect() {
    // Browsers open connections ahead of use and may leave them idle. Four
    // idle ones would hold a one-at-a-time listener for 4 x its 10 s read
    // timeout, past the browser's 20 s patience below.
    let fake = Fake::start(Behaviour::default());
    let secret_arg = format!("--client-secret={CLIENT_SECRET}");
    let Run {
        tool,
        auth_url,
        port,
    } = start(&fake, std::path::Path::new("-"), &[&secret_arg]);
    let idle: Vec<_> = (0..4)
        .map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).unwrap())
        .collect();
    let browser = fake.browser();
    let (_, loc, _) = get(&browser, &auth_url);
    let (status, _, _) = get(&browser, &loc.unwrap());
    assert_eq!(status, 200);
    let fin = tool.finish();
    assert!(fin.status.success(), "{}", fin.all());
    drop(idle);
}
