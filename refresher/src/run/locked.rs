//! Everything the helper runs after [`sandbox::lock_down`], in one
//! function: [`after_lock_down`]. It is the only code of the helper that
//! handles the provider's answer, and it runs inside the sandbox: it may
//! only write to the temp file and lock file opened before, and connect to
//! the one port resolved before. What it calls: [`send`] and [`exchange`]
//! below, `http::Client::post_form`, `oauth::parse_response`, `retry`,
//! `lock::TokenLock::store_marker`, `store::PendingFile::commit`,
//! `common::token::TokenFile::refreshed` (`refreshed_split` and
//! `common::secrets::SecretsFile::to_json` in the split layout) and
//! `sys::hold_stop_signals`.
//! After it returns, `main` only prints the status line and exits.
//!
//! [`request_without_storing`](super::request_without_storing) (the tool's
//! test-token-refresh and `--check --online`) confines itself the same way
//! and then runs only [`send`].

use super::request::Prepared;
use crate::diag;
use crate::error::{Failure, ProviderFailure};
use crate::http::{Client, Route, TransportError};
use crate::lock::TokenLock;
use crate::oauth::{self, Granted, Reaction};
use crate::retry::{self, Marker};
use crate::sandbox::{self, Policy};
use crate::store::PendingFile;
use crate::sys::StopSignalsHeld;
use common::clock::{unix_now, unix_now_ms};
use common::config::Config;
use common::secret::Secret;
use common::secrets::SecretsFile;
use common::token::Grant;
use common::{Settings, TokenFile};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Everything [`after_lock_down`] needs, prepared before the lock-down:
/// the token as read under the lock, the request, the client with its
/// resolved addresses, the lock (for the retry marker) and the temp file.
pub(super) struct Ready<'a> {
    pub path: &'a Path,
    pub token: TokenFile,
    pub settings: Settings,
    pub prepared: Prepared,
    pub client: Client,
    pub policy: Policy,
    pub lock: TokenLock,
    pub pending: PendingFile,
    /// Split layout: the temp file for the secrets file, in `D/secrets`.
    pub secrets_pending: Option<PendingFile>,
    pub retry: Retry,
    pub deadline: Instant,
    pub budget: Duration,
    pub ctx: Ctx,
    /// The process's MAC label, read while /proc was still visible.
    pub mac: Option<String>,
}

/// Enter the sandbox, ask the provider, store its answer: the whole locked
/// phase of a refresh. Returns the status line's text.
pub(super) fn after_lock_down(ready: Ready<'_>) -> Result<String, Failure> {
    let Ready {
        path,
        token,
        settings,
        prepared,
        client,
        policy,
        mut lock,
        pending,
        secrets_pending,
        mut retry,
        deadline,
        budget,
        ctx,
        mac,
    } = ready;
    let report = sandbox::lock_down(&policy).map_err(Failure::Sandbox)?;
    diag(format_args!(
        "{report}; trusting {}",
        prepared.trust.describe()
    ));

    let sent = send(
        &prepared, &client, &token, &settings, deadline, budget, &ctx, &mut retry,
    );
    if let Some(m) = &retry.leave {
        lock.store_marker(m);
    }
    let (granted, held) = sent?;
    drop(prepared);

    let expiry = unix_now().saturating_add(granted.expires_in);
    let rotated = granted.refresh_token.as_ref();
    let store = |rotated| move |err| Failure::Store { err, rotated };
    match secrets_pending {
        None => {
            let bytes = token.refreshed(&granted.access_token, expiry, rotated);
            pending.commit(&bytes).map_err(store(rotated.is_some()))?;
        }
        Some(secrets_pending) => {
            // Split layout: a rotated refresh token goes to the secrets
            // file first, so a crash before the token file's rename loses
            // nothing (the old access token stays valid until it expires).
            if let Some(r) = rotated {
                let new = SecretsFile {
                    refresh_token: r.clone(),
                    client_secret: token.overrides.client_secret.clone(),
                };
                secrets_pending
                    .commit(&new.to_json())
                    .map_err(store(true))?;
            } else {
                drop(secrets_pending); // removes its temp file
            }
            let bytes = token.refreshed_split(&granted.access_token, expiry);
            pending.commit(&bytes).map_err(store(false))?;
        }
    }
    drop(held); // a TERM that came meanwhile ends us now, after the rename(s)
    if granted.expires_in_assumed {
        diag("the provider sent no expires_in; assumed 3600 s");
    }
    if granted.expires_in >= oauth::MAX_EXPIRES_IN {
        diag(format_args!(
            "expires_in is honoured up to {} s (1 day); the access token is refreshed by then",
            oauth::MAX_EXPIRES_IN
        ));
    }
    Ok(format!(
        "refreshed {} (access token {}, expires in {} s; {}{})",
        path.display(),
        granted.access_token.fingerprint(),
        granted.expires_in,
        report.summary,
        mac.map(|m| format!("; running as {m}")).unwrap_or_default()
    ))
}

/// POST the request, retrying 5xx/network errors within the budget.
#[allow(clippy::too_many_arguments)]
pub(super) fn send(
    prepared: &Prepared,
    client: &Client,
    token: &TokenFile,
    settings: &Settings,
    deadline: Instant,
    budget: Duration,
    ctx: &Ctx,
    retry: &mut Retry,
) -> Result<(Granted, StopSignalsHeld), Failure> {
    let secrets: Vec<&Secret> = [
        token.refresh_token.as_ref(),
        Some(&settings.client_secret),
        token.access_token.as_ref(),
    ]
    .into_iter()
    .flatten()
    .collect();
    exchange(
        client,
        &prepared.route,
        &prepared.body,
        deadline,
        budget,
        &secrets,
        ctx,
        retry,
    )
}

/// What error messages need to know about this refresh.
#[derive(Debug)]
pub(super) struct Ctx {
    token: PathBuf,
    config: PathBuf,
    client_credentials: bool,
}

pub(super) fn ctx(token_path: &Path, config: &Config, settings: &Settings) -> Ctx {
    Ctx {
        token: token_path.to_path_buf(),
        config: config.path.clone(),
        client_credentials: settings.grant == Grant::ClientCredentials,
    }
}

/// Where the retry schedule stands: failures in a row so far (counting an
/// earlier helper's, from its marker), the pause before the next attempt,
/// and the marker to leave when this helper gives up.
#[derive(Debug)]
pub(super) struct Retry {
    prior: Option<Marker>,
    failures: u32,
    pause: Duration,
    leave: Option<Marker>,
}

impl Retry {
    pub(super) fn after(marker: Option<Marker>) -> Retry {
        Retry {
            prior: marker,
            failures: marker.map_or(0, |m| m.failures),
            pause: marker.map_or(Duration::ZERO, |m| m.wait(unix_now_ms(), retry::jitter())),
            leave: None,
        }
    }
}

/// POST the request; on a 5xx or network error, pause ([`retry::delay`])
/// and try again while the budget leaves room for an attempt after the
/// pause. Each POST runs with TERM/HUP/INT held ([`StopSignalsHeld`]),
/// returned with the answer so the caller keeps them held until the rename.
#[allow(clippy::too_many_arguments)]
fn exchange(
    client: &Client,
    route: &Route,
    body: &str,
    deadline: Instant,
    budget: Duration,
    secrets: &[&Secret],
    ctx: &Ctx,
    state: &mut Retry,
) -> Result<(Granted, StopSignalsHeld), Failure> {
    let host = route.endpoint.display_host();
    let provider = |err, attempts| {
        Failure::Provider(Box::new(ProviderFailure {
            host: host.clone(),
            err,
            attempts,
            token: ctx.token.clone(),
            config: ctx.config.clone(),
            client_credentials: ctx.client_credentials,
        }))
    };
    let left = || deadline.saturating_duration_since(Instant::now());
    if !state.pause.is_zero() {
        if !retry::fits(state.pause, left()) {
            // Leave the marker as it was: the schedule is unchanged.
            state.leave = state.prior;
            return Err(Failure::ProviderDown {
                host,
                failures: state.failures,
                wait_ms: state.pause.as_millis(),
            });
        }
        diag(format_args!(
            "token endpoint {host} failed the last {} attempt(s) in a row; waiting {} ms before asking it again",
            state.failures,
            state.pause.as_millis()
        ));
        std::thread::sleep(state.pause);
    }
    let mut attempts = 0;
    loop {
        attempts += 1;
        let held = crate::sys::hold_stop_signals();
        let reply = client.post_form(&route.endpoint.url, body.as_bytes(), left());
        let (failure, reason, retry) = match reply {
            Ok(reply) => match oauth::parse_response(reply.status, &reply.body, secrets) {
                Ok(g) => return Ok((g, held)),
                Err(err) => {
                    let retry = err.reaction() == Reaction::Retry;
                    let reason = err.to_string();
                    (provider(err, attempts), reason, retry)
                }
            },
            Err(TransportError::TooLarge) => {
                return Err(provider(oauth::ResponseError::TooLarge, attempts))
            }
            Err(err) => {
                let retry = err.retryable();
                let reason = err.to_string();
                let f = Failure::Transport {
                    host: host.clone(),
                    err,
                    budget_secs: budget.as_secs(),
                    attempts,
                    config: ctx.config.clone(),
                };
                (f, reason, retry)
            }
        };
        drop(held); // nothing rotated: a TERM may end us during the pause
        if !retry {
            return Err(failure);
        }
        state.failures = state.failures.saturating_add(1);
        let pause = retry::delay(state.failures, retry::jitter());
        if !retry::fits(pause, left()) {
            state.leave = Some(Marker {
                failures: state.failures,
                at_ms: unix_now_ms(),
            });
            return Err(failure);
        }
        diag(format_args!(
            "token endpoint {host}: {reason}; retrying in {} ms",
            pause.as_millis()
        ));
        std::thread::sleep(pause);
    }
}
