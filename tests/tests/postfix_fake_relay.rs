//! The fake relay answers like Gmail (checked here with a raw SMTP
//! client, so the Postfix tests can rely on it), and the standalone
//! `fake-gmail` binary the demo runs starts, writes its files and stops.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;
use testkit::provider::FakeProvider;
use testkit::smtp::{Account, AuthOutcome, FakeRelay, RelayOptions, GMAIL_XOAUTH2_ERROR};

struct Client {
    r: BufReader<TcpStream>,
    w: TcpStream,
}

impl Client {
    fn connect(relay: &FakeRelay) -> Client {
        let s = TcpStream::connect(relay.addr()).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut c = Client {
            r: BufReader::new(s.try_clone().unwrap()),
            w: s,
        };
        assert!(c.reply().starts_with("220 "));
        c
    }

    /// A whole (possibly multi-line) reply.
    fn reply(&mut self) -> String {
        let mut all = String::new();
        loop {
            let mut l = String::new();
            self.r.read_line(&mut l).unwrap();
            assert!(l.len() >= 4, "short reply {l:?}");
            all.push_str(&l);
            if l.as_bytes()[3] == b' ' {
                return all;
            }
        }
    }

    fn cmd(&mut self, line: &str) -> String {
        self.w.write_all(format!("{line}\r\n").as_bytes()).unwrap();
        self.reply()
    }
}

fn plain_relay(provider: &Arc<FakeProvider>) -> FakeRelay {
    FakeRelay::start(
        RelayOptions {
            starttls: false,
            ..RelayOptions::default()
        },
        vec![Account::new(provider.clone(), "a@gmail.test")],
    )
}

#[test]
fn relay_accepts_issued_tokens_and_answers_bad_ones_like_gmail() {
    let p = Arc::new(FakeProvider::start());
    let relay = plain_relay(&p);
    let good = p.issue_access_token(3600);
    let mut c = Client::connect(&relay);
    let ehlo = c.cmd("EHLO client.test");
    assert!(ehlo.contains("250-AUTH XOAUTH2 OAUTHBEARER\r\n"), "{ehlo}");
    assert!(ehlo.contains("PIPELINING") && ehlo.contains("8BITMIME"));
    assert!(c.cmd("MAIL FROM:<s@x>").starts_with("530-5.7.0"));

    // Unknown token: the Gmail challenge, then 535 after the empty reply.
    let bad = B64.encode("user=a@gmail.test\x01auth=Bearer ya29.unknown\x01\x01");
    let ch = c.cmd(&format!("AUTH XOAUTH2 {bad}"));
    assert_eq!(ch, format!("334 {}\r\n", B64.encode(GMAIL_XOAUTH2_ERROR)));
    let fail = c.cmd("");
    assert!(
        fail.starts_with("535-5.7.8 Username and Password not accepted"),
        "{fail}"
    );
    assert!(fail.contains("\r\n535 5.7.8 "), "{fail}");

    // A valid token, but for another user: rejected too.
    let other = B64.encode(format!("user=b@gmail.test\x01auth=Bearer {good}\x01\x01"));
    assert!(c.cmd(&format!("AUTH XOAUTH2 {other}")).starts_with("334 "));
    assert!(c.cmd("").starts_with("535"));

    // OAUTHBEARER, no initial response: empty challenge first.
    assert_eq!(c.cmd("AUTH OAUTHBEARER"), "334 \r\n");
    let ob = B64.encode(format!(
        "n,a=a@gmail.test,\x01host=x\x01port=1\x01auth=Bearer {good}\x01\x01"
    ));
    assert!(c.cmd(&ob).starts_with("235 "));
    assert!(c.cmd("MAIL FROM:<s@x> BODY=8BITMIME").starts_with("250 "));
    assert!(c.cmd("RCPT TO:<r@y>").starts_with("250 "));
    assert!(c.cmd("DATA").starts_with("354 "));
    let done = c.cmd("Subject: hi\r\n\r\n..dot\r\n.");
    assert!(done.starts_with("250 "), "{done}");
    assert!(c.cmd("QUIT").starts_with("221 "));

    let m = relay.wait_for_messages(1, Duration::from_secs(10)).unwrap();
    assert_eq!(m[0].user, "a@gmail.test");
    assert_eq!(m[0].mechanism, "OAUTHBEARER");
    assert_eq!(m[0].subject(), Some("hi"));
    assert!(
        m[0].data.ends_with("\r\n.dot\r\n"),
        "dot-unstuffed: {:?}",
        m[0].data
    );
    assert!(!m[0].tls);
    let a = relay.auth_attempts();
    let outcomes: Vec<_> = a.iter().map(|a| a.outcome.clone()).collect();
    assert_eq!(
        outcomes,
        vec![
            AuthOutcome::Rejected,
            AuthOutcome::Rejected,
            AuthOutcome::Accepted(0)
        ]
    );
    assert_eq!(a[0].error_ack.as_deref(), Some(&b""[..]));
    assert!(!a[2].initial_response);
    // Fingerprints only, never the token.
    assert!(!format!("{a:?}{m:?}").contains(&good));
}

#[test]
fn oauthbearer_failure_is_the_rfc7628_error_and_starttls_gates_auth() {
    let p = Arc::new(FakeProvider::start());
    let relay = plain_relay(&p);
    let mut c = Client::connect(&relay);
    c.cmd("EHLO client.test");
    let ob = B64.encode("n,a=a@gmail.test,\x01auth=Bearer ya29.expired\x01\x01");
    let ch = c.cmd(&format!("AUTH OAUTHBEARER {ob}"));
    let json = B64
        .decode(ch.trim_end().strip_prefix("334 ").unwrap())
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(v["status"], "invalid_token");
    assert!(c.cmd(&B64.encode("\x01")).starts_with("535-5.7.8"));
    assert_eq!(
        relay.auth_attempts()[0].error_ack.as_deref(),
        Some(&b"\x01"[..])
    );

    // With STARTTLS on, AUTH is neither offered nor accepted before TLS.
    let tls_relay = FakeRelay::start(RelayOptions::default(), vec![Account::any_user(p)]);
    assert!(tls_relay.ca_pem().unwrap().contains("BEGIN CERTIFICATE"));
    let mut c = Client::connect(&tls_relay);
    let ehlo = c.cmd("EHLO client.test");
    assert!(
        ehlo.contains("STARTTLS") && !ehlo.contains("AUTH"),
        "{ehlo}"
    );
    assert!(c.cmd("AUTH XOAUTH2 =").starts_with("530 5.7.0"));
    // Plaintext pipelined behind STARTTLS is refused.
    let r = c.cmd("STARTTLS\r\nEHLO injected");
    assert!(r.starts_with("554 "), "{r}");
}

#[test]
fn fake_gmail_binary_starts_writes_its_files_and_stops() {
    use std::os::unix::fs::PermissionsExt;
    use std::process::{Command, Stdio};
    let dir = std::env::temp_dir().join(format!("sx2-fake-gmail-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let token = dir.join("alice.json");
    let mut child = Command::new(testkit::bins::binary("sasl-xoauth2-tests", "fake-gmail"))
        .args([
            "--dir",
            dir.to_str().unwrap(),
            "--client-secret",
            "demo-secret-value",
        ])
        .args([
            "--token-file",
            token.to_str().unwrap(),
            "--user",
            "alice@gmail.test",
        ])
        .args(["--access-valid-for", "-60"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut lines = Vec::new();
    loop {
        let mut l = String::new();
        assert!(
            out.read_line(&mut l).unwrap() > 0,
            "exited early: {lines:?}"
        );
        if l.trim() == "ready" {
            break;
        }
        lines.push(l.trim().to_string());
    }
    assert!(
        lines[0].starts_with("token_endpoint https://127.0.0.1:"),
        "{lines:?}"
    );
    let relay: std::net::SocketAddr = lines[1].strip_prefix("relay ").unwrap().parse().unwrap();
    assert!(relay.ip().is_loopback());
    let mut s = TcpStream::connect(relay).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let mut greeting = String::new();
    BufReader::new(s.try_clone().unwrap())
        .read_line(&mut greeting)
        .unwrap();
    assert!(greeting.starts_with("220 "), "{greeting}");
    write!(s, "QUIT\r\n").unwrap();

    for f in ["provider-ca.pem", "relay-ca.pem"] {
        assert!(std::fs::read_to_string(dir.join(f))
            .unwrap()
            .contains("BEGIN CERTIFICATE"));
    }
    let meta = std::fs::metadata(&token).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    let t: serde_json::Value = serde_json::from_slice(&std::fs::read(&token).unwrap()).unwrap();
    assert_eq!(t["user"], "alice@gmail.test");
    let expiry: i64 = t["expiry"].as_str().unwrap().parse().unwrap();
    assert!(
        expiry < testkit::postfix::unix_now(),
        "expired token asked for"
    );

    writeln!(child.stdin.as_mut().unwrap(), "quit").unwrap();
    let status = child.wait().unwrap();
    assert!(status.success());
    // Its logs hold fingerprints, never the token values or the secret.
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    let events = std::fs::read_to_string(dir.join("events.log")).unwrap();
    assert!(events.contains("sha256:"), "{events}");
    let secrets = vec![
        t["access_token"].as_str().unwrap().to_string(),
        t["refresh_token"].as_str().unwrap().to_string(),
        "demo-secret-value".to_string(),
    ];
    testkit::postfix::assert_no_secrets(
        &[
            ("events.log", &events),
            ("stdout", &lines.join("\n")),
            ("stderr", &stderr),
        ],
        &secrets,
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
