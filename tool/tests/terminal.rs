//! Behaviour on a real terminal (a pty from util-linux `script`): the
//! client secret is read without echo, and the device-flow countdown is a
//! line rewritten in place.

mod support;

use std::process::Command;
use support::*;

/// Run the tool on a pseudo-terminal; its terminal output arrives on the
/// harness's stdout.
fn on_pty(args: &[String]) -> Tool {
    assert!(
        std::path::Path::new("/usr/bin/script").exists(),
        "these tests need util-linux's script(1) (Debian package bsdutils)"
    );
    let mut line = bin().to_string();
    for a in args {
        assert!(!a.contains('\''));
        line.push_str(&format!(" '{a}'"));
    }
    Tool::spawn_cmd(
        Command::new("/usr/bin/script")
            .args(["-q", "-f", "-e", "-c", &line, "/dev/null"])
            .env("SHELL", "/bin/sh"),
    )
}

#[test]
fn client_secret_is_not_echoed() {
    let fake = Fake::start(Behaviour::default());
    let mut args: Vec<String> = vec!["get-token".into(), "gmail".into(), "-".into()];
    args.extend(fake.gmail_args());
    let mut tool = on_pty(&args);
    tool.wait_stdout("the secret prompt", |o| {
        o.contains("OAuth client secret: ").then_some(())
    });
    tool.write_stdin(&format!("{CLIENT_SECRET}\n"));
    let prefix = format!("{}/o/oauth2/auth?", fake.base);
    let auth_url = tool.wait_stdout("the authorisation URL", |o| url_starting(o, &prefix));
    let browser = fake.browser();
    let (_, loc, _) = get(&browser, &auth_url);
    let (status, _, _) = get(&browser, &loc.unwrap());
    assert_eq!(status, 200);
    let fin = tool.finish();
    assert!(fin.status.success(), "{}", fin.all());
    // The token JSON went to the terminal too (OUTPUT is -), so look only
    // for the client secret, which must not have been echoed.
    assert_no_secrets(&fin.all(), &[CLIENT_SECRET.to_string()]);
    assert!(fin.stdout.contains(REFRESH_TOKEN), "{}", fin.all());
}

#[test]
fn device_countdown_rewrites_one_line() {
    let fake = Fake::start(Behaviour {
        client_secret: None,
        device: DeviceScript::NeverApprove,
        device_expires_in: 3,
        ..Default::default()
    });
    let mut args: Vec<String> = vec!["get-token".into(), "outlook".into(), "-".into()];
    args.extend(fake.outlook_args());
    let fin = on_pty(&args).finish();
    assert!(!fin.status.success());
    assert!(
        fin.stdout
            .contains("\r\x1b[KWaiting for the sign-in; the code expires in 00:0"),
        "{:?}",
        fin.stdout
    );
    assert!(fin.stdout.contains("the code expired"), "{}", fin.all());
}
