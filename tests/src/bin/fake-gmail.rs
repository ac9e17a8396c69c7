//! A fake Gmail in one process, for the demo: the OAuth token endpoint
//! (HTTPS) and the SMTP relay (STARTTLS, XOAUTH2/OAUTHBEARER) on 127.0.0.1,
//! sharing state, so the relay accepts exactly the access tokens the
//! endpoint has issued and not yet seen expire.
//!
//! ```text
//! fake-gmail --dir DIR [--client-id ID] [--client-secret SECRET]
//!            [--expires-in SECS] [--login]
//!            [--token-file PATH --user USER --access-valid-for SECS]
//!            [--token-port PORT] [--relay-port PORT]
//! ```
//!
//! Writes into DIR: `provider-ca.pem` (trust for the helper),
//! `relay-ca.pem` (trust for Postfix), `messages.jsonl` (one JSON line per
//! accepted message), `events.log` (one line per token request, issued
//! token, connection and AUTH, with fingerprints only, never a token).
//! With `--token-file` it writes a token file (mode 0600) for USER holding
//! a fresh refresh token and an access token valid for SECS seconds
//! (SECS <= 0: one that expired -SECS seconds ago). The ports default to
//! free ones; fixed ones matter where a MAC policy labels ports (tests/mac:
//! the token endpoint on 443, an `http_port_t` port).
//!
//! Prints `token_endpoint URL`, `relay 127.0.0.1:PORT`, then `ready`, and
//! reads commands on stdin: `mode NAME` (as fake-provider), `revoke-all`,
//! `quit`. Exits at `quit` or end of input.

use std::collections::HashSet;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use testkit::provider::{FakeProvider, Options};
use testkit::smtp::{append_line, Account, EventSink, FakeRelay, RelayOptions};

fn usage(msg: &str) -> ! {
    eprintln!("fake-gmail: {msg}");
    eprintln!("usage: fake-gmail --dir DIR [--client-id ID] [--client-secret SECRET] [--expires-in SECS] [--login] [--token-file PATH --user USER --access-valid-for SECS] [--token-port PORT] [--relay-port PORT]");
    std::process::exit(64);
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn fp(s: &str) -> String {
    common::secret::fingerprint(s.as_bytes())
}

fn write_private(path: &Path, body: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(body)
}

/// The events log: token-endpoint activity (polled from the provider) and
/// relay events, in order. Before each relay event the provider's news is
/// written, so a refresh shows up before the AUTH that used its token.
struct Journal {
    path: PathBuf,
    provider: Arc<FakeProvider>,
    /// Requests already logged, and access tokens already known.
    state: Mutex<(usize, HashSet<String>)>,
}

impl Journal {
    fn new(path: PathBuf, provider: Arc<FakeProvider>) -> Journal {
        let known = provider.issued_access_tokens().into_iter().collect();
        Journal {
            path,
            provider,
            state: Mutex::new((0, known)),
        }
    }

    /// Log what reached the token endpoint and which access tokens it
    /// issued since the last call, as fingerprints.
    fn sync_locked(&self, state: &mut (usize, HashSet<String>)) {
        let recorded = self.provider.recorded();
        for r in recorded.iter().skip(state.0) {
            let secret = |k: &str| r.field(k).map(fp).unwrap_or_else(|| "-".into());
            append_line(
                &self.path,
                &format!(
                    "token endpoint: {} {} grant_type={} client_id={} client_secret {} refresh_token {}",
                    r.method,
                    r.path,
                    r.field("grant_type").unwrap_or("-"),
                    r.field("client_id").unwrap_or("-"),
                    secret("client_secret"),
                    secret("refresh_token"),
                ),
            );
        }
        state.0 = recorded.len();
        for t in self.provider.issued_access_tokens() {
            if state.1.insert(t.clone()) {
                append_line(
                    &self.path,
                    &format!("token endpoint: issued access token {}", fp(&t)),
                );
            }
        }
    }

    fn sync(&self) {
        let mut st = self.state.lock().unwrap();
        self.sync_locked(&mut st);
    }

    fn event(&self, line: &str) {
        let mut st = self.state.lock().unwrap();
        self.sync_locked(&mut st);
        append_line(&self.path, line);
    }
}

fn main() {
    let mut opts = Options::default();
    let mut dir: Option<PathBuf> = None;
    let mut login = false;
    let mut token_file: Option<PathBuf> = None;
    let mut user: Option<String> = None;
    let mut valid_for: i64 = 3600;
    let mut relay_port: u16 = 0;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--dir" => dir = Some(PathBuf::from(val())),
            "--client-id" => opts.client_id = val(),
            "--client-secret" => opts.client_secret = val(),
            "--expires-in" => {
                opts.expires_in = val()
                    .parse()
                    .unwrap_or_else(|_| usage("--expires-in needs a number"))
            }
            "--login" => login = true,
            "--token-file" => token_file = Some(PathBuf::from(val())),
            "--user" => user = Some(val()),
            "--access-valid-for" => {
                valid_for = val()
                    .parse()
                    .unwrap_or_else(|_| usage("--access-valid-for needs a number"))
            }
            "--token-port" => opts.bind.set_port(
                val()
                    .parse()
                    .unwrap_or_else(|_| usage("--token-port needs a port")),
            ),
            "--relay-port" => {
                relay_port = val()
                    .parse()
                    .unwrap_or_else(|_| usage("--relay-port needs a port"))
            }
            "--help" | "-h" => usage("help"),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    let Some(dir) = dir else {
        usage("--dir DIR is required")
    };
    let events = dir.join("events.log");
    let provider = Arc::new(FakeProvider::start_with(opts));
    let fail = |what: &str, e: std::io::Error| usage(&format!("cannot write {what}: {e}"));
    if let Some(path) = &token_file {
        let Some(user) = &user else {
            usage("--token-file needs --user")
        };
        let access = provider.issue_access_token(valid_for.max(1));
        let expiry = now() + valid_for;
        if valid_for <= 0 {
            provider.revoke_access_token(&access);
        }
        let token = serde_json::json!({
            "refresh_token": provider.issue_refresh_token(),
            "access_token": access,
            "expiry": expiry.to_string(),
            "user": user,
        });
        write_private(
            path,
            serde_json::to_string_pretty(&token).unwrap().as_bytes(),
        )
        .unwrap_or_else(|e| fail(&path.display().to_string(), e));
        append_line(
            &events,
            &format!(
                "token endpoint: issued refresh token and access token {} for {user} (expiry {expiry})",
                fp(&access)
            ),
        );
    }
    let journal = Arc::new(Journal::new(events, provider.clone()));
    let sink = {
        let j = journal.clone();
        EventSink(Arc::new(move |line: &str| j.event(line)))
    };
    let relay = FakeRelay::start(
        RelayOptions {
            login,
            messages_file: Some(dir.join("messages.jsonl")),
            events: Some(sink),
            bind: ([127, 0, 0, 1], relay_port).into(),
            ..RelayOptions::default()
        },
        vec![Account {
            provider: provider.clone(),
            user: user.clone(),
        }],
    );
    provider
        .write_ca(&dir.join("provider-ca.pem"))
        .unwrap_or_else(|e| fail("provider-ca.pem", e));
    relay
        .write_ca(&dir.join("relay-ca.pem"))
        .unwrap_or_else(|e| fail("relay-ca.pem", e));
    let stop = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (j, s) = (journal.clone(), stop.clone());
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                j.sync();
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };

    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let _ = writeln!(out, "token_endpoint {}", provider.url());
    let _ = writeln!(out, "relay {}", relay.addr());
    let _ = writeln!(out, "ready");
    let _ = out.flush();
    drop(out);
    provider.serve_commands();
    stop.store(true, Ordering::SeqCst);
    let _ = watcher.join();
}
