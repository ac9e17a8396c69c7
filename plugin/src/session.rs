//! One authentication exchange, independent of the C ABI: where the token
//! comes from, whether it must be refreshed first, and what to send.

use crate::log::{Mode, Sink, Trace};
use crate::mech::{on_server_data, Mechanism, Reply, ServerInfo, State};
use common::policy::{self, Freshness};
use common::{Config, FileError, Secret, Settings, TokenFile};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use zeroize::Zeroizing;

/// Runs the refresh helper. The real one forks and execs
/// `sasl-xoauth2-refresh` (see `crate::spawn`); tests substitute their own.
pub trait Refresher: Send + Sync {
    /// Refresh and wait (bounded by the config's `refresh_timeout`).
    /// Returns the helper's status line.
    fn refresh_now(&self, token: &Path) -> Result<String, String>;
    /// Start a refresh that runs on after this call returns. With
    /// `rejected`, the fingerprint of an access token the server refused:
    /// refresh even if not due, unless the file already holds another one.
    fn refresh_in_background(&self, token: &Path, rejected: Option<&str>) -> Result<(), String>;
}

/// What `sasl_client_plug_init` loaded, shared by all connections.
pub struct Global {
    /// The config, or why it could not be loaded (reported at login time).
    pub config: Result<Config, FileError>,
    pub refresher: Option<Box<dyn Refresher>>,
    /// Why there is no refresher, for the log.
    pub refresher_missing: Option<String>,
    /// Last background refresh per token file (unix seconds), for rate limiting.
    last_background: Mutex<HashMap<PathBuf, i64>>,
}

impl std::fmt::Debug for Global {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Global")
            .field("config", &self.config.as_ref().map(|c| &c.path))
            .field("refresher", &self.refresher.is_some())
            .finish_non_exhaustive()
    }
}

impl Global {
    pub fn new(
        config: Result<Config, FileError>,
        refresher: Result<Box<dyn Refresher>, String>,
    ) -> Global {
        let (refresher, refresher_missing) = match refresher {
            Ok(r) => (Some(r), None),
            Err(e) => (None, Some(e)),
        };
        Global {
            config,
            refresher,
            refresher_missing,
            last_background: Mutex::new(HashMap::new()),
        }
    }

    fn log_mode(&self) -> Mode {
        self.config
            .as_ref()
            .map(Mode::from_config)
            .unwrap_or_default()
    }
}

/// How an exchange failed, which decides the SASL result code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// No usable token here (config, token file, refresh): logged with the
    /// reason and the fix; the mail client retries later (Postfix defers).
    Local,
    /// The server did something out of protocol.
    Protocol,
}

/// The result of one step.
#[derive(Debug)]
pub enum Outcome {
    /// Send these bytes and expect another step.
    Send(Zeroizing<Vec<u8>>),
    /// The exchange completed successfully.
    Done,
    Failed(Failure),
}

/// Inputs for the first step, gathered by the glue from callbacks/prompts.
#[derive(Debug)]
pub struct Credentials {
    pub user: String,
    pub password: Secret,
}

#[derive(Debug)]
pub struct Session {
    pub mech: Mechanism,
    pub state: State,
    pub trace: Trace,
    server: ServerInfo,
    token_path: Option<PathBuf>,
    /// Fingerprint of the access token sent from the token file.
    sent: Option<String>,
    global: Arc<Global>,
}

impl Session {
    pub fn new(mech: Mechanism, global: Arc<Global>, server: ServerInfo) -> Session {
        let mut trace = Trace::new(global.log_mode());
        // Server text reaches the log; it must not be able to show the
        // config's client secret either.
        if let Ok(Config {
            client_secret: Some(s),
            ..
        }) = &global.config
        {
            trace.protect(s);
        }
        Session {
            mech,
            state: State::Start,
            trace,
            server,
            token_path: None,
            sent: None,
            global,
        }
    }

    /// First step: produce the initial response.
    pub fn start(&mut self, creds: &Credentials, now: i64, sink: &mut dyn Sink) -> Outcome {
        if !creds.password.expose().starts_with('/') {
            self.trace.protect(&creds.password);
        }
        match self.initial_response(creds, now, sink) {
            Ok(bytes) => {
                self.state = State::Sent;
                Outcome::Send(bytes)
            }
            Err((failure, msg)) => {
                self.trace
                    .fail(sink, &format!("{}: {msg}", self.mech.name()));
                Outcome::Failed(failure)
            }
        }
    }

    fn initial_response(
        &mut self,
        creds: &Credentials,
        now: i64,
        sink: &mut dyn Sink,
    ) -> Result<Zeroizing<Vec<u8>>, (Failure, String)> {
        let name = self.mech.name();
        let pw = creds.password.expose();
        if !pw.starts_with('/') {
            // Not a path: the password is the bearer token itself.
            if pw.is_empty() {
                return Err((
                    Failure::Local,
                    "empty password: give a token file path (starting with /) or a bearer token"
                        .into(),
                ));
            }
            self.trace.note(sink, || {
                format!(
                    "{name}: user {}: using the password as bearer token {}",
                    creds.user,
                    creds.password.fingerprint()
                )
            });
            return Ok(self
                .mech
                .initial_response(&creds.user, &creds.password, &self.server));
        }
        let path = PathBuf::from(pw);
        self.token_path = Some(path.clone());
        let global = Arc::clone(&self.global);
        let config = global
            .config
            .as_ref()
            .map_err(|e| (Failure::Local, e.to_string()))?;
        let mut token = TokenFile::load(&path).map_err(|e| (Failure::Local, e.to_string()))?;
        self.protect_token(&token);
        let state = |t: &TokenFile| {
            policy::freshness(
                t.access_token.is_some(),
                t.expiry,
                now,
                Settings::refresh_window(config, t),
                config.prefetch_window(),
            )
        };
        let fresh = state(&token);
        self.trace.note(sink, || {
            let left = token.expiry.saturating_sub(now);
            let when = match (fresh, token.access_token.is_some()) {
                (_, false) => "holds no access token".to_string(),
                (Freshness::Expired, _) if left <= 0 => format!("expired {} s ago", -left),
                (Freshness::Expired, _) => format!("expires in {left} s, within refresh_window"),
                (Freshness::Prefetch, _) => format!("expires in {left} s, within prefetch_window"),
                (Freshness::Fresh, _) => format!("expires in {left} s"),
            };
            format!("{name}: token file {}: {when}", path.display())
        });
        match fresh {
            Freshness::Fresh => {}
            Freshness::Prefetch => {
                let started = self.background_refresh(&path, None, now);
                self.trace
                    .note(sink, || format!("{name}: token near expiry{started}"));
            }
            Freshness::Expired => {
                let Some(r) = &global.refresher else {
                    return Err((
                        Failure::Local,
                        format!(
                            "token file {}: access token expired and {}",
                            path.display(),
                            self.no_refresher()
                        ),
                    ));
                };
                self.trace
                    .note(sink, || format!("{name}: token expired; refreshing"));
                let status = r.refresh_now(&path).map_err(|e| {
                    (
                        Failure::Local,
                        format!("token file {}: refresh failed: {e}", path.display()),
                    )
                })?;
                self.trace
                    .note(sink, || format!("{name}: helper: {status}"));
                token = TokenFile::load(&path).map_err(|e| (Failure::Local, e.to_string()))?;
                self.protect_token(&token);
                if state(&token) == Freshness::Expired {
                    return Err((
                        Failure::Local,
                        format!(
                            "token file {}: still expired after the refresh helper ran",
                            path.display()
                        ),
                    ));
                }
            }
        }
        let access = token
            .access_token
            .as_ref()
            .expect("a non-expired token has an access token");
        self.sent = Some(access.fingerprint());
        let user = token.user.as_deref().unwrap_or(&creds.user);
        self.trace.note(sink, || {
            format!(
                "{name}: user {user}: sending access token {}",
                self.sent.as_deref().unwrap_or_default()
            )
        });
        Ok(self.mech.initial_response(user, access, &self.server))
    }

    fn protect_token(&mut self, t: &TokenFile) {
        for s in [
            &t.access_token,
            &t.refresh_token,
            &t.overrides.client_secret,
        ]
        .into_iter()
        .flatten()
        {
            self.trace.protect(s);
        }
    }

    fn no_refresher(&self) -> String {
        format!(
            "the refresh helper is unavailable ({})",
            self.global
                .refresher_missing
                .as_deref()
                .unwrap_or("unknown reason")
        )
    }

    /// A later step, with the server's (decoded) data.
    pub fn step(&mut self, data: &[u8], now: i64, sink: &mut dyn Sink) -> Outcome {
        let name = self.mech.name();
        match (self.state, on_server_data(data)) {
            (State::Sent, Reply::Success) => {
                self.state = State::Done;
                Outcome::Done
            }
            (State::Sent, Reply::Error(e)) => {
                self.state = State::Rejected;
                let mut msg = format!("{name}: {e}");
                if let Some(path) = self.token_path.clone().filter(|_| e.token_rejected()) {
                    let rejected = self.sent.clone();
                    msg.push_str(&self.background_refresh(&path, rejected.as_deref(), now));
                }
                self.trace.fail(sink, &msg);
                Outcome::Send(Zeroizing::new(self.mech.error_ack().to_vec()))
            }
            (state, _) => {
                self.trace.fail(
                    sink,
                    &format!("{name}: unexpected server data in state {state:?}"),
                );
                Outcome::Failed(Failure::Protocol)
            }
        }
    }

    /// Start a background refresh, at most once a minute per token file (per
    /// process), so that neither a token in its prefetch window nor a server
    /// rejecting tokens makes us hammer the provider. Returns a note for the log.
    fn background_refresh(&self, path: &Path, rejected: Option<&str>, now: i64) -> String {
        let Some(r) = &self.global.refresher else {
            return format!("; {}", self.no_refresher());
        };
        {
            let mut last = self
                .global
                .last_background
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            if !policy::background_refresh_allowed(last.get(path).copied(), now) {
                return "; a background refresh started less than a minute ago".into();
            }
            last.insert(path.to_path_buf(), now);
        }
        match r.refresh_in_background(path, rejected) {
            Ok(()) if rejected.is_some() => {
                "; forced refresh started, the next attempt will use a new token".into()
            }
            Ok(()) => "; background refresh started".into(),
            Err(e) => format!("; background refresh not started: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::Level;

    struct Lines(Vec<String>);
    impl Sink for Lines {
        fn emit(&mut self, _level: Level, msg: &str) {
            self.0.push(msg.to_string());
        }
    }

    #[test]
    fn server_text_cannot_show_the_config_client_secret() {
        // Found by fuzz/fuzz_targets/sasl_session.rs: a challenge whose
        // `scope` held the config's client secret reached the log as it was.
        let config = Config::parse(
            br#"{"client_id":"c","client_secret":"GOCSPX-config-secret"}"#,
            Path::new("/etc/sasl-xoauth2.conf"),
        );
        let global = Arc::new(Global::new(config, Err("none".into())));
        let mut s = Session::new(Mechanism::OAuthBearer, global, ServerInfo::default());
        let mut log = Lines(Vec::new());
        let creds = Credentials {
            user: "u@example.com".into(),
            password: Secret::new("ya29.bearer"),
        };
        assert!(matches!(s.start(&creds, 0, &mut log), Outcome::Send(_)));
        let challenge = br#"{"status":"400","scope":"x GOCSPX-config-secret y"}"#;
        assert!(matches!(s.step(challenge, 0, &mut log), Outcome::Send(_)));
        let all = log.0.join("\n");
        assert!(all.contains("status 400"), "{all}");
        assert!(!all.contains("GOCSPX-config-secret"), "{all}");
        assert!(all.contains("<sha256:"), "{all}");
    }
}
