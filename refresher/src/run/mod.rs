//! One refresh, start to finish.
//!
//! 1. Load the config (handoff pipe or file) and the token file.
//! 2. Not forced and the token is fresh: done, no lock, no network.
//! 3. Take the token's lock (see [`crate::lock`]); remove temp files a
//!    killed helper left; re-read the token under the lock and decide again
//!    ([`decide`]): another process may have refreshed it meanwhile.
//! 4. Decide the layout (lstat of `D/secrets/N`, see common::secrets)
//!    and, split, read the secrets file; read the config's
//!    client_secret_file; build the request, load the trust roots,
//!    resolve the endpoint (or proxy) address, create the temp file for
//!    the new token (split: and for the secrets file, in `D/secrets`).
//! 5. [`locked::after_lock_down`], the only code that runs in the
//!    sandbox: [`crate::sandbox::lock_down`], then the HTTPS POST, retried
//!    on 5xx/network errors with jittered backoff while refresh_timeout
//!    allows, going on from where an earlier helper gave up (see
//!    [`crate::retry`]); then the new file is written atomically, still
//!    under the lock. `main` prints the one status line.
//!
//! Rotation safety: the refresh token we send is the one read under the
//! lock, and the file holding its successor is durably renamed into place
//! before the lock is released, so no other helper can ever send a refresh
//! token the provider has already replaced. The one unavoidable window: a
//! SIGKILL (or power loss) after the provider answered and before the
//! rename loses the rotated token, and the file keeps the old, now dead one
//! (the next refresh then fails with invalid_grant and says to re-run
//! get-token). Once the rename happened, the file holds the new token.
//! In the split layout the rotated token goes to the secrets file first,
//! then the token file: a kill between the two renames leaves the new
//! refresh token stored and the old, still valid access token.
//! SIGTERM, SIGHUP and SIGINT (`systemctl restart postfix`, a terminal)
//! are blocked from just before each POST until after the rename(s), and
//! take effect right after it.
//!
//! The jobs, one file each: [`load`] (config, handoff, token file), this
//! file (the orchestration above, up to the lock-down), [`request`] (the
//! token request the tool's test-token-refresh and `--check --online` reuse)
//! and [`locked`] (everything after the lock-down).

mod load;
mod locked;
mod request;

pub use load::{load_config, ConfigSource, Loaded};
pub use request::{prepare_request, request_without_storing, resolve, Prepared};

use crate::diag;
use crate::error::Failure;
use crate::http::Client;
use crate::lock;
use crate::store::{self, PendingFile};
use common::clock::{unix_now, unix_now_ms};
use common::policy::{freshness, Freshness};
use common::secret::Secret;
use common::{Settings, TokenFile};
use load::{check_token_mode, merge_secrets, read_client_secret_file, read_secrets, read_token};
use locked::{ctx, Ready, Retry};
use request::sandbox_policy;
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The parsed command line.
#[derive(Debug, Clone)]
pub struct Request {
    pub config: ConfigSource,
    pub force: bool,
    /// Fingerprint of the access token a forced refresh is about.
    pub if_access_token: Option<String>,
    pub token_path: PathBuf,
}

impl Request {
    /// Descriptors `harden_process` must leave open.
    pub fn keep_fds(&self) -> Vec<RawFd> {
        match self.config {
            ConfigSource::Fd(fd) => vec![fd],
            _ => Vec::new(),
        }
    }
}

/// Exit code and the one status line for stdout.
#[derive(Debug)]
pub struct Outcome {
    pub code: i32,
    pub status: String,
}

/// Whether to ask the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Refresh,
    /// Valid and outside the prefetch window.
    NotDueFresh,
    /// Another process put a new, still valid access token in the file
    /// since this refresh was decided.
    NotDueReplaced,
}

/// The single-flight rule, applied to the file as read under the lock.
///
/// * An expired (or absent) access token is always refreshed.
/// * Not forced: a fresh token is left alone; a token in the prefetch
///   window is refreshed unless it differs from the one `seen` before the
///   lock (then another helper just did it, even if the provider's
///   expires_in is shorter than our prefetch window).
/// * Forced (the server rejected `seen`): refreshed, unless the file now
///   holds a different, unexpired access token: someone refreshed since
///   the rejection, and the new token deserves its chance.
pub fn decide(
    force: bool,
    seen: Option<&str>,
    current: &TokenFile,
    now: i64,
    refresh_window: i64,
    prefetch_window: i64,
) -> Decision {
    let f = freshness(
        current.access_token.is_some(),
        current.expiry,
        now,
        refresh_window,
        prefetch_window,
    );
    if f == Freshness::Expired {
        return Decision::Refresh;
    }
    if !force && f == Freshness::Fresh {
        return Decision::NotDueFresh;
    }
    let fp = current.access_token.as_ref().map(Secret::fingerprint);
    if fp.as_deref() != seen {
        return Decision::NotDueReplaced;
    }
    Decision::Refresh
}

/// Run one refresh and say how it went; `preloaded`: the configuration
/// `main` already loaded (or failed to load) as root, if it did.
pub fn run_with(req: &Request, preloaded: Option<Result<Loaded, Failure>>) -> Outcome {
    match refresh(req, preloaded) {
        Ok(status) => Outcome {
            code: common::exit::OK,
            status: format!("ok: {status}"),
        },
        Err(f) => Outcome {
            code: f.exit_code(),
            status: format!("error: {f}"),
        },
    }
}

fn status_tail(token: &TokenFile, now: i64) -> String {
    match &token.access_token {
        Some(a) => format!(
            "access token {}, expires in {} s",
            a.fingerprint(),
            token.expiry.saturating_sub(now)
        ),
        None => "no access token".into(),
    }
}

fn refresh(req: &Request, preloaded: Option<Result<Loaded, Failure>>) -> Result<String, Failure> {
    let start = Instant::now();
    let path = req.token_path.as_path();
    let mut loaded = match preloaded {
        Some(l) => l?,
        None => load_config(&req.config)?,
    };
    let config = &loaded.config;
    let budget = Duration::from_secs(config.refresh_timeout().max(1));
    let deadline = start + budget;

    // First look, without the lock: the common "nothing to do" case costs
    // no lock file and no network.
    let first = read_token(path)?;
    check_token_mode(path, &first.meta)?;
    let now = unix_now();
    if !req.force
        && decide(
            false,
            None,
            &first.token,
            now,
            Settings::refresh_window(config, &first.token),
            config.prefetch_window(),
        ) == Decision::NotDueFresh
    {
        return Ok(format!(
            "not due {} ({})",
            path.display(),
            status_tail(&first.token, now)
        ));
    }
    let seen = req
        .if_access_token
        .clone()
        .or_else(|| first.token.access_token.as_ref().map(Secret::fingerprint));

    // Single flight.
    let owner = lock::LockOwner {
        uid: first.meta.uid,
        gid: first.meta.gid,
        mode: first.meta.mode,
    };
    let mut lock = lock::acquire(path, Some(owner), deadline).map_err(Failure::Lock)?;
    // The token's and (split layout) its secrets file's.
    for target in [path.to_path_buf(), common::secrets::secrets_path(path)] {
        match store::remove_stale_temps(&target) {
            Ok(0) => {}
            Ok(n) => diag(format_args!(
                "removed {n} temp file(s) left by an interrupted refresh of {}",
                target.display()
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {} // no secrets dir
            Err(e) => diag(format_args!(
                "warning: cannot clean up old temp files beside {}: {e}",
                target.display()
            )),
        }
    }
    let mut cur = read_token(path)?;
    check_token_mode(path, &cur.meta)?;
    let now = unix_now();
    match decide(
        req.force,
        seen.as_deref(),
        &cur.token,
        now,
        Settings::refresh_window(config, &cur.token),
        config.prefetch_window(),
    ) {
        Decision::Refresh => {}
        Decision::NotDueFresh => {
            return Ok(format!(
                "not due {} ({})",
                path.display(),
                status_tail(&cur.token, now)
            ))
        }
        Decision::NotDueReplaced => {
            return Ok(format!(
                "not due {} (refreshed by another process; {})",
                path.display(),
                status_tail(&cur.token, now)
            ))
        }
    }

    // Everything that can fail without the network fails here, before the
    // provider consumes (and possibly rotates) the refresh token: the
    // layout and secrets, the config's client_secret_file, the request,
    // the address, both temp files.
    let secrets = read_secrets(path, &cur.meta)?;
    merge_secrets(&mut cur.token, secrets.as_ref().map(|s| &s.secrets), path)?;
    read_client_secret_file(&mut loaded.config)?;
    let config = &loaded.config;
    let settings = resolve(config, &cur.token, path)?;
    let prepared = prepare_request(&loaded, &cur.token, &settings, path)?;
    let resolved = prepared.resolve(deadline)?;
    let secrets_pending = match &secrets {
        Some(s) => Some(create_pending(&s.path, s.meta)?),
        None => None,
    };
    let pending = create_pending(path, cur.meta)?;
    let client = Client::new(&prepared.route, resolved, &prepared.trust);
    let retry = Retry::after(lock.take_marker(unix_now_ms()));
    let policy = sandbox_policy(path, prepared.route.connect_host().1, config.sandbox);
    locked::after_lock_down(Ready {
        path,
        ctx: ctx(path, config, &settings),
        token: cur.token,
        settings,
        prepared,
        client,
        policy,
        lock,
        pending,
        secrets_pending,
        retry,
        deadline,
        budget,
        mac: crate::sys::mac_label(),
    })
}

/// The temp file that will replace `target` (owner and mode `meta`).
fn create_pending(target: &std::path::Path, meta: store::FileMeta) -> Result<PendingFile, Failure> {
    let pending =
        PendingFile::create(target, meta, meta.len + 8192).map_err(|err| Failure::Store {
            err,
            rotated: false,
        })?;
    if pending.owner_changed {
        diag(format_args!(
            "warning: {} belongs to uid {}; the refreshed file will belong to uid {} (run the refresh as root or as the file's owner to keep it)",
            target.display(),
            meta.uid,
            crate::sys::euid()
        ));
    }
    Ok(pending)
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::config::SandboxMode;
    use std::path::Path;

    fn tok(json: &str) -> TokenFile {
        TokenFile::parse(json.as_bytes(), Path::new("/t")).unwrap()
    }

    #[test]
    fn decisions() {
        let now = 1_000_000;
        let fresh = tok(&format!(
            r#"{{"refresh_token":"r","access_token":"a1","expiry":"{}"}}"#,
            now + 3600
        ));
        let near = tok(&format!(
            r#"{{"refresh_token":"r","access_token":"a1","expiry":"{}"}}"#,
            now + 100
        ));
        let expired = tok(r#"{"refresh_token":"r","access_token":"a1","expiry":"5"}"#);
        let none = tok(r#"{"refresh_token":"r"}"#);
        let a1 = Secret::new("a1").fingerprint();
        let other = Secret::new("a0").fingerprint();
        let d = |force, seen: Option<&str>, t: &TokenFile| decide(force, seen, t, now, 10, 600);

        assert_eq!(d(false, Some(&a1), &fresh), Decision::NotDueFresh);
        assert_eq!(d(false, Some(&a1), &near), Decision::Refresh);
        assert_eq!(d(false, Some(&other), &near), Decision::NotDueReplaced);
        assert_eq!(d(false, Some(&a1), &expired), Decision::Refresh);
        assert_eq!(d(false, None, &none), Decision::Refresh);
        // forced: the rejected token is still there -> refresh, even if fresh
        assert_eq!(d(true, Some(&a1), &fresh), Decision::Refresh);
        // forced, but someone already replaced the rejected token
        assert_eq!(d(true, Some(&other), &fresh), Decision::NotDueReplaced);
        assert_eq!(d(true, None, &fresh), Decision::NotDueReplaced);
        // ... unless the replacement is expired too
        assert_eq!(d(true, Some(&other), &expired), Decision::Refresh);
    }

    #[test]
    fn policy_is_token_dir_and_one_port() {
        let p = sandbox_policy(
            Path::new("/var/spool/postfix/etc/tokens/a.json"),
            443,
            SandboxMode::Required,
        );
        assert_eq!(p.token_dir, Path::new("/var/spool/postfix/etc/tokens"));
        assert_eq!(p.connect_ports, vec![443]);
        assert!(p.read_paths.is_empty());
        assert_eq!(p.mode, SandboxMode::Required);
        assert_eq!(
            sandbox_policy(Path::new("tok.json"), 1, SandboxMode::BestEffort).token_dir,
            Path::new(".")
        );
    }
}
