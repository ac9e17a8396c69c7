//! One XOAUTH2 or OAUTHBEARER exchange through the plugin's own state
//! machine (`session::Session::start` and `step`, which parse the server's
//! challenges with `mech::ServerError`), with a fuzzed token file (or a
//! bearer token as the password) and fuzzed server data.
//!
//! Input: one flags byte, the token file, NUL, the server's first
//! challenge, NUL, a second one. The token file is written to a private
//! tmpfs directory; the refresh helper is a stand-in that only counts calls
//! (no process, no network).
//!
//! Invariants: no panic; no log line repeats a secret (the access and
//! refresh tokens, the client secret, a bearer password); the state machine
//! goes Start -> Sent -> Done or Rejected and refuses anything after that.
#![no_main]

use common::Config;
use fuzzkit::{planted_values, split, CLIENT_SECRET};
use libfuzzer_sys::fuzz_target;
use sasl_xoauth2::log::{Level, Sink};
use sasl_xoauth2::mech::{Mechanism, ServerError, ServerInfo, State};
use sasl_xoauth2::session::{Credentials, Global, Outcome, Refresher, Session};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

struct Lines(Vec<String>);

impl Sink for Lines {
    fn emit(&mut self, _level: Level, msg: &str) {
        self.0.push(msg.to_string());
    }
}

/// Counts refreshes; never runs anything.
struct StandIn {
    calls: Arc<AtomicUsize>,
    fail: bool,
}

impl Refresher for StandIn {
    fn refresh_now(&self, _token: &Path) -> Result<String, String> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        if self.fail {
            Err("stand-in helper failed".into())
        } else {
            Ok("stand-in helper: nothing done".into())
        }
    }
    fn refresh_in_background(&self, _token: &Path, _rejected: Option<&str>) -> Result<(), String> {
        self.calls.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }
}

fn token_path() -> &'static Path {
    static P: OnceLock<PathBuf> = OnceLock::new();
    P.get_or_init(|| {
        // scripts/fuzz points TMPDIR at a tmpfs directory it removes after.
        let base = std::env::temp_dir();
        let dir = base.join(format!("sx2-fuzz-session-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create the token directory");
        dir.join("token.json")
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let (token, rest) = split(rest, 0);
    let (first, second) = split(rest, 0);
    let mech = if flags & 1 == 0 {
        Mechanism::XOAuth2
    } else {
        Mechanism::OAuthBearer
    };
    let bearer = flags & 2 != 0;
    let config = Config::parse(
        format!(
            r#"{{"client_id":"fuzz","client_secret":"{CLIENT_SECRET}","refresh_window":{},
                "always_log_to_syslog":{},"log_full_trace_on_failure":{}}}"#,
            u8::from(flags & 4 != 0) * 60,
            flags & 8 != 0,
            flags & 16 != 0
        )
        .as_bytes(),
        Path::new("/etc/sasl-xoauth2.conf"),
    )
    .expect("the fixed config parses");
    let calls = Arc::new(AtomicUsize::new(0));
    let refresher: Result<Box<dyn Refresher>, String> = if flags & 32 == 0 {
        Ok(Box::new(StandIn {
            calls: calls.clone(),
            fail: flags & 64 != 0,
        }))
    } else {
        Err("no helper in this fuzz run".into())
    };
    let global = Arc::new(Global::new(Ok(config), refresher));
    let server = ServerInfo::new(Some("smtp.example.com"), Some("192.0.2.1;587"));
    let mut session = Session::new(mech, global, server);

    let mut secrets = planted_values(token, &["access_token", "refresh_token", "client_secret"]);
    secrets.push(CLIENT_SECRET.to_string());
    let password = if bearer {
        let p = String::from_utf8_lossy(token).into_owned();
        if p.starts_with('/') {
            return;
        }
        if p.contains(fuzzkit::MARK) {
            secrets.push(p.clone());
        }
        p
    } else {
        std::fs::write(token_path(), token).expect("write the token file");
        token_path().to_string_lossy().into_owned()
    };
    let creds = Credentials {
        user: "someone@example.com".into(),
        password: common::Secret::new(password),
    };
    let now = 1_700_000_000;
    let mut log = Lines(Vec::new());

    match session.start(&creds, now, &mut log) {
        Outcome::Send(bytes) => {
            assert_eq!(session.state, State::Sent);
            assert!(bytes.ends_with(b"\x01\x01"));
        }
        Outcome::Failed(_) => assert_eq!(session.state, State::Start),
        Outcome::Done => panic!("done before the server answered"),
    }
    if session.state == State::Sent {
        let e = ServerError::parse(first);
        let _ = (e.token_rejected(), e.to_string());
        match session.step(first, now, &mut log) {
            Outcome::Done => assert!(first.is_empty() && session.state == State::Done),
            Outcome::Send(ack) => {
                assert!(!first.is_empty() && session.state == State::Rejected);
                assert_eq!(&ack[..], mech.error_ack());
            }
            Outcome::Failed(_) => panic!("a challenge after the initial response failed the step"),
        }
        // Nothing is expected after success or the error acknowledgement.
        assert!(matches!(
            session.step(second, now, &mut log),
            Outcome::Failed(_)
        ));
    }
    assert!(calls.load(Ordering::Relaxed) <= 2);
    fuzzkit::assert_no_secret_in_lines("log line", &log.0, &secrets);
});
