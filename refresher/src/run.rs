//! One refresh, start to finish.
//!
//! 1. Load the config (handoff pipe or file) and the token file.
//! 2. Not forced and the token is fresh: done, no lock, no network.
//! 3. Take the token's lock (see [`crate::lock`]); remove temp files a
//!    killed helper left; re-read the token under the lock and decide again
//!    ([`decide`]): another process may have refreshed it meanwhile.
//! 4. Build the request, load the trust roots, resolve the endpoint (or
//!    proxy) address, create the temp file for the new token.
//! 5. [`crate::sandbox::lock_down`], then the HTTPS POST, retried on
//!    5xx/network errors with jittered backoff while refresh_timeout
//!    allows, going on from where an earlier helper gave up (see
//!    [`crate::retry`]).
//! 6. Write the new file atomically, still under the lock, then print one
//!    status line.
//!
//! Rotation safety: the refresh token we send is the one read under the
//! lock, and the file holding its successor is durably renamed into place
//! before the lock is released, so no other helper can ever send a refresh
//! token the provider has already replaced. The one unavoidable window: a
//! SIGKILL (or power loss) after the provider answered and before the
//! rename loses the rotated token, and the file keeps the old, now dead one
//! (the next refresh then fails with invalid_grant and says to re-run
//! get-token). Once the rename happened, the file holds the new token.
//! SIGTERM, SIGHUP and SIGINT (`systemctl restart postfix`, a terminal)
//! are blocked from just before each POST until after the rename, and
//! take effect right after it.

use crate::error::{Failure, ProviderFailure};
use crate::http::{Client, Endpoint, ProxySpec, Resolved, Route, TransportError, Trust};
use crate::oauth::{self, Granted, Reaction};
use crate::retry::{self, Marker};
use crate::sandbox::{self, Policy};
use crate::store::{FileMeta, PendingFile};
use crate::sys::StopSignalsHeld;
use crate::{lock, store};
use common::config::{Config, SandboxMode};
use common::error::{FileError, FileKind};
use common::handoff::{Handoff, MAX_HANDOFF_SIZE};
use common::policy::{freshness, Freshness};
use common::secret::Secret;
use common::token::Grant;
use common::{Settings, TokenFile};
use std::os::fd::{IntoRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use zeroize::Zeroizing;

#[derive(Debug, Clone)]
pub enum ConfigSource {
    /// `$SASL_XOAUTH2_CONFIG` (unless secure-execution) or the default path.
    Default,
    Path(PathBuf),
    /// A [`Handoff`] on this descriptor.
    Fd(RawFd),
}

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

/// The sandbox policy for one refresh: write access to the token's
/// directory, TCP connect to the one port we talk to (the proxy's when
/// there is one), nothing to read (the config, token and CA certificates
/// are all read before the lock-down). The sandbox's own pure builder, so
/// tests can enter exactly this policy.
pub fn sandbox_policy(token_path: &Path, connect_port: u16, mode: SandboxMode) -> Policy {
    Policy::for_token(token_path, connect_port, mode)
}

/// Run one refresh and say how it went.
pub fn run(req: &Request) -> Outcome {
    run_with(req, None)
}

/// [`run`] with the configuration already loaded (or failed to load).
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

fn diag(msg: impl std::fmt::Display) {
    eprintln!("sasl-xoauth2-refresh: {msg}");
}

fn unix_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

fn unix_now() -> i64 {
    unix_now_ms() / 1000
}

/// The configuration and, from a handoff, the CA certificates the plugin
/// read for us.
pub struct Loaded {
    config: Config,
    ca_pem: Option<Zeroizing<String>>,
}

impl Loaded {
    /// A configuration read from a file by the caller; CA files it names are
    /// read when a request is prepared.
    pub fn from_config(config: Config) -> Loaded {
        Loaded {
            config,
            ca_pem: None,
        }
    }

    /// The parsed configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("config", &self.config.path)
            .field("ca_pem_bytes", &self.ca_pem.as_ref().map(|p| p.len()))
            .finish()
    }
}

/// Load the configuration from where the command line says. (`main` calls
/// it early, as root, before dropping to the token owner, when the config
/// is a file root may read and the owner may not.)
pub fn load_config(src: &ConfigSource) -> Result<Loaded, Failure> {
    let path = match src {
        ConfigSource::Fd(fd) => return load_handoff(*fd),
        ConfigSource::Path(p) => p.clone(),
        ConfigSource::Default => common::config::config_path(
            crate::sys::secure_execution(),
            std::env::var_os(common::CONFIG_ENV),
        ),
    };
    let config = Config::load(&path).map_err(Failure::ConfigFile)?;
    Ok(Loaded {
        config,
        ca_pem: None,
    })
}

fn load_handoff(fd: RawFd) -> Result<Loaded, Failure> {
    let owned = crate::sys::take_inherited_fd(fd).map_err(|e| {
        Failure::Config(format!(
            "--config-fd {fd}: {e}; the descriptor must carry the plugin's config handoff"
        ))
    })?;
    let mut file = std::fs::File::from(owned);
    let bytes = common::fsread::read_all_capped(&mut file, MAX_HANDOFF_SIZE);
    if fd <= 2 {
        // Keep 0-2 occupied so no file we open later becomes "stdout".
        let _ = file.into_raw_fd();
    }
    let bytes = Zeroizing::new(
        bytes.map_err(|p| Failure::Config(format!("config handoff on descriptor {fd} {p}")))?,
    );
    let h =
        Handoff::decode(&bytes).map_err(|e| Failure::Config(format!("{e} (descriptor {fd})")))?;
    let config = Config::parse(h.config.as_bytes(), Path::new(&h.config_path))
        .map_err(Failure::ConfigFile)?;
    let ca_pem = if h.ca_pem.trim().is_empty() {
        None
    } else {
        Some(Zeroizing::new(h.ca_pem.clone()))
    };
    Ok(Loaded { config, ca_pem })
}

/// A token file as read, with the owner and mode of the very file read.
struct TokenRead {
    token: TokenFile,
    meta: FileMeta,
}

fn read_token(path: &Path) -> Result<TokenRead, Failure> {
    let file = common::fsread::open_regular(path, FileKind::Token).map_err(Failure::Token)?;
    let meta = file
        .metadata()
        .map_err(|e| Failure::Token(unreadable(path, e)))?;
    let bytes = Zeroizing::new(
        common::fsread::read_all_capped(file, common::MAX_FILE_SIZE)
            .map_err(|p| Failure::Token(FileError::new(FileKind::Token, path, p)))?,
    );
    let token = TokenFile::parse(&bytes, path).map_err(Failure::Token)?;
    Ok(TokenRead {
        token,
        meta: FileMeta::of(&meta),
    })
}

fn unreadable(path: &Path, e: std::io::Error) -> FileError {
    FileError::new(
        FileKind::Token,
        path,
        common::error::Problem::Unreadable(e.to_string()),
    )
}

/// Refuse a token file anybody could rewrite (they could point its
/// token_endpoint elsewhere and collect the refresh token); warn about one
/// anybody can read.
fn check_token_mode(path: &Path, meta: &FileMeta) -> Result<(), Failure> {
    if meta.mode & 0o002 != 0 {
        return Err(Failure::TokenUnsafe {
            path: path.to_path_buf(),
            why: format!(
                "is writable by every user (mode {:04o}); run `chmod 600 {}`",
                meta.mode,
                path.display()
            ),
        });
    }
    if meta.mode & 0o004 != 0 {
        diag(format_args!(
            "warning: token file {} is readable by every user (mode {:04o}); run `chmod 600 {}`",
            path.display(),
            meta.mode,
            path.display()
        ));
    }
    Ok(())
}

/// The settings for `token` under the trust rule (common::settings): a
/// refused override fails the refresh, naming the file, the key and the
/// config key that would allow it, before anything is sent.
pub fn resolve(config: &Config, token: &TokenFile, token_path: &Path) -> Result<Settings, Failure> {
    Settings::resolve(config, token).map_err(|e| Failure::TokenUnsafe {
        path: token_path.to_path_buf(),
        why: e.to_string(),
    })
}

/// Trust roots, in this order: a CA file/dir named in the token file (only
/// when the config's allow_token_file_ca let it through [`resolve`]); the
/// CA certificates handed over by the plugin; a CA file/dir named in the
/// config; the built-in roots.
fn load_trust(loaded: &Loaded, settings: &Settings) -> Result<Trust, Failure> {
    if settings.ca_from_token {
        return trust_from_paths(
            settings.ca_bundle_file.as_deref(),
            settings.ca_certs_dir.as_deref(),
            "token file",
        );
    }
    if let Some(pem) = &loaded.ca_pem {
        return Trust::from_pem(pem.as_bytes(), "the plugin's handoff").map_err(|e| {
            Failure::Config(format!(
                "{e}; check ca_bundle_file / ca_certs_dir in {}",
                loaded.config.path.display()
            ))
        });
    }
    if settings.ca_bundle_file.is_some() || settings.ca_certs_dir.is_some() {
        return trust_from_paths(
            settings.ca_bundle_file.as_deref(),
            settings.ca_certs_dir.as_deref(),
            "config file",
        );
    }
    Ok(Trust::BuiltIn)
}

fn trust_from_paths(file: Option<&str>, dir: Option<&str>, from: &str) -> Result<Trust, Failure> {
    let mut pem = Zeroizing::new(String::new());
    let mut sources = Vec::new();
    let cfg = |what: &str, p: &str, e: String| {
        Failure::Config(format!(
            "{what} {p} (set in the {from}) {e}; fix the path or remove the setting to use the built-in roots"
        ))
    };
    if let Some(f) = file.filter(|f| !f.is_empty()) {
        let text =
            common::ca::read_bundle(Path::new(f)).map_err(|e| cfg("ca_bundle_file", f, e))?;
        pem.push_str(&text);
        pem.push('\n');
        sources.push(f.to_string());
    }
    if let Some(d) = dir.filter(|d| !d.is_empty()) {
        let found = common::ca::read_dir(Path::new(d)).map_err(|e| cfg("ca_certs_dir", d, e))?;
        for note in &found.skipped {
            diag(format_args!("ca_certs_dir: {note}"));
        }
        if found.pem.is_empty() {
            return Err(cfg(
                "ca_certs_dir",
                d,
                format!(
                    "holds no CA certificate in a hash-named file (XXXXXXXX.N, as `openssl rehash {d}` creates them; {} hash-named entr(y|ies) refused, see above)",
                    found.skipped.len()
                ),
            ));
        }
        pem.push_str(&found.pem);
        sources.push(format!("the CA certificates of {d}"));
    }
    Trust::from_pem(pem.as_bytes(), &sources.join(" + ")).map_err(Failure::Config)
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
    let loaded = match preloaded {
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
    match store::remove_stale_temps(path) {
        Ok(0) => {}
        Ok(n) => diag(format_args!(
            "removed {n} temp file(s) left by an interrupted refresh of {}",
            path.display()
        )),
        Err(e) => diag(format_args!(
            "warning: cannot clean up old temp files beside {}: {e}",
            path.display()
        )),
    }
    let cur = read_token(path)?;
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
    // provider consumes (and possibly rotates) the refresh token.
    let settings = resolve(config, &cur.token, path)?;
    let prepared = prepare_request(&loaded, &cur.token, &settings, path)?;
    let resolved = prepared.resolve(deadline)?;
    let pending =
        PendingFile::create(path, cur.meta, cur.meta.len + 8192).map_err(|err| Failure::Store {
            err,
            rotated: false,
        })?;
    if pending.owner_changed {
        diag(format_args!(
            "warning: {} belongs to uid {}; the refreshed file will belong to uid {} (run the refresh as root or as the file's owner to keep it)",
            path.display(),
            cur.meta.uid,
            crate::sys::euid()
        ));
    }
    let client = Client::new(&prepared.route, resolved, &prepared.trust);
    let mut retry = Retry::after(lock.take_marker(unix_now_ms()));
    let policy = sandbox_policy(path, prepared.route.connect_host().1, config.sandbox);
    let mac = crate::sys::mac_label();
    let report = sandbox::lock_down(&policy).map_err(Failure::Sandbox)?;
    diag(format_args!(
        "{report}; trusting {}",
        prepared.trust.describe()
    ));

    let sent = prepared.send(
        &client,
        &cur.token,
        &settings,
        deadline,
        budget,
        &ctx(path, config, &settings),
        &mut retry,
    );
    if let Some(m) = &retry.leave {
        lock.store_marker(m);
    }
    let (granted, held) = sent?;
    drop(prepared);

    let expiry = unix_now().saturating_add(granted.expires_in);
    let bytes = cur.token.refreshed(
        &granted.access_token,
        expiry,
        granted.refresh_token.as_ref(),
    );
    pending.commit(&bytes).map_err(|err| Failure::Store {
        err,
        rotated: granted.refresh_token.is_some(),
    })?;
    drop(held); // a TERM that came meanwhile ends us now, after the rename
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

/// The token request, built from the config and the token file without
/// touching the network: the form body, where to send it and whom to
/// trust. Everything that can fail before the provider is asked fails while
/// building it. Shared by the refresh, `--check` (offline: build only;
/// `--online`: build and send) and the tool's test-token-refresh, so all
/// of them send exactly the same request.
pub struct Prepared {
    body: Zeroizing<String>,
    pub route: Route,
    pub trust: Trust,
}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Prepared")
            .field("route", &self.route)
            .field("trust", &self.trust.describe())
            .finish_non_exhaustive()
    }
}

/// Build the request for `token` (read from `token_path`) with `settings`
/// (from [`Settings::resolve`]): body, endpoint, proxy, trust roots.
pub fn prepare_request(
    loaded: &Loaded,
    token: &TokenFile,
    settings: &Settings,
    token_path: &Path,
) -> Result<Prepared, Failure> {
    let config = &loaded.config;
    let body = oauth::form_body(settings, token.refresh_token.as_ref()).map_err(|err| {
        Failure::Request {
            err,
            token: token_path.to_path_buf(),
            config: config.path.clone(),
        }
    })?;
    let in_config = |e: String| {
        Failure::Config(format!(
            "{e} (in {} or {})",
            config.path.display(),
            token_path.display()
        ))
    };
    let endpoint = Endpoint::parse(&settings.token_endpoint).map_err(in_config)?;
    let proxy = match settings.proxy.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => Some(ProxySpec::parse(p).map_err(in_config)?),
        None => None,
    };
    let route = Route { endpoint, proxy };
    let trust = load_trust(loaded, settings)?;
    Ok(Prepared { body, route, trust })
}

impl Prepared {
    /// Resolve the host we connect to (the endpoint's, or the proxy's),
    /// giving up at `deadline` (refresh_timeout's end).
    pub fn resolve(&self, deadline: Instant) -> Result<Resolved, Failure> {
        let limit = deadline.saturating_duration_since(Instant::now());
        self.route
            .resolve_within(limit)
            .map_err(|e| Failure::Resolve {
                host: self.route.connect_host().0.to_string(),
                err: e.to_string(),
            })
    }

    /// POST the request, retrying 5xx/network errors within the budget.
    #[allow(clippy::too_many_arguments)]
    fn send(
        &self,
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
            &self.route,
            &self.body,
            deadline,
            budget,
            &secrets,
            ctx,
            retry,
        )
    }
}

/// One token request for `token` exactly as a refresh sends it (same body,
/// trust, route, retry and time budget, same trust rule), but without the
/// lock or writing anything: the caller gets the provider's answer and
/// decides what to tell. Right before the request the process confines
/// itself as the helper does ([`confine_like_the_helper`]), so
/// `--check --online` and the tool's test-token-refresh, run as root,
/// never talk to the network as root or unsandboxed. Irreversible: the
/// caller may only print afterwards.
///
/// A provider that rotates refresh tokens may invalidate the one in the file
/// when it answers ([`Granted::refresh_token`] is then `Some`): the caller
/// must say so, since the new one is not stored.
pub fn request_without_storing(
    loaded: &Loaded,
    token_path: &Path,
    token: &TokenFile,
) -> Result<Granted, Failure> {
    let config = &loaded.config;
    let budget = Duration::from_secs(config.refresh_timeout().max(1));
    let deadline = Instant::now() + budget;
    let settings = resolve(config, token, token_path)?;
    let prepared = prepare_request(loaded, token, &settings, token_path)?;
    let resolved = prepared.resolve(deadline)?;
    let client = Client::new(&prepared.route, resolved, &prepared.trust);
    confine_like_the_helper(token_path, &prepared.route, config.sandbox)?;
    prepared
        .send(
            &client,
            token,
            &settings,
            deadline,
            budget,
            &ctx(token_path, config, &settings),
            &mut Retry::after(None),
        )
        .map(|(granted, _held)| granted)
}

/// The helper's own confinement, for a one-off request made by another
/// program: as root, become the token file's owner (as `main` does for the
/// helper); then [`sandbox::harden_process`] (no descriptors beyond 0-2, no
/// capabilities, not dumpable, no_new_privs) and [`sandbox::lock_down`]
/// with the refresh's policy for this token. Fails, and nothing is sent,
/// if any step fails.
pub fn confine_like_the_helper(
    token_path: &Path,
    route: &Route,
    mode: SandboxMode,
) -> Result<(), Failure> {
    crate::privdrop::drop_to_token_owner(token_path).map_err(|e| {
        Failure::Config(format!(
            "{e}; refusing to contact the token endpoint as root"
        ))
    })?;
    sandbox::harden_process(&[]).map_err(Failure::Sandbox)?;
    sandbox::lock_down(&sandbox_policy(token_path, route.connect_host().1, mode))
        .map_err(Failure::Sandbox)?;
    Ok(())
}

/// What error messages need to know about this refresh.
struct Ctx {
    token: PathBuf,
    config: PathBuf,
    client_credentials: bool,
}

fn ctx(token_path: &Path, config: &Config, settings: &Settings) -> Ctx {
    Ctx {
        token: token_path.to_path_buf(),
        config: config.path.clone(),
        client_credentials: settings.grant == Grant::ClientCredentials,
    }
}

/// Where the retry schedule stands: failures in a row so far (counting an
/// earlier helper's, from its marker), the pause before the next attempt,
/// and the marker to leave when this helper gives up.
struct Retry {
    prior: Option<Marker>,
    failures: u32,
    pause: Duration,
    leave: Option<Marker>,
}

impl Retry {
    fn after(marker: Option<Marker>) -> Retry {
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

#[cfg(test)]
mod tests {
    use super::*;

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
