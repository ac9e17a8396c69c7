//! The token request, built without touching the network, and the one
//! request the tool's test-token-refresh and `--check --online` make
//! exactly as the helper would ([`request_without_storing`]).

use super::load::{merge_secrets, read_client_secret_file, read_secrets, Loaded};
use super::locked::{ctx, send, Retry};
use crate::diag;
use crate::error::Failure;
use crate::http::{Client, Endpoint, ProxySpec, Resolved, Route, Trust, UrlError};
use crate::oauth::{self, Granted};
use crate::sandbox::{self, Policy};
use crate::store::FileMeta;
use common::config::{Config, SandboxMode};
use common::error::{FileError, FileKind, Problem};
use common::{Settings, TokenFile};
use std::path::Path;
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// The sandbox policy for one refresh: write access to the token's
/// directory, TCP connect to the one port we talk to (the proxy's when
/// there is one), nothing to read (the config, token and CA certificates
/// are all read before the lock-down). The sandbox's own pure builder, so
/// tests can enter exactly this policy.
pub(super) fn sandbox_policy(token_path: &Path, connect_port: u16, mode: SandboxMode) -> Policy {
    Policy::for_token(token_path, connect_port, mode)
}

/// The settings for `token` under the trust rule (common::settings): a
/// refused override fails the refresh, naming the file, the key and the
/// config key that would allow it, before anything is sent.
pub fn resolve(config: &Config, token: &TokenFile, token_path: &Path) -> Result<Settings, Failure> {
    Settings::resolve(config, token).map_err(|e| Failure::TokenUnsafe {
        path: token_path.to_path_buf(),
        why: format!("{} ({})", e.refused, e.config),
        fix: Some("nothing was sent".into()),
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
            Failure::config(
                e.to_string(),
                format!(
                    "check ca_bundle_file / ca_certs_dir in {}",
                    loaded.config.path.display()
                ),
            )
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
        Failure::config(
            format!("{what} {p} (set in the {from}) {e}"),
            "fix the path or remove the setting to use the built-in roots",
        )
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
    Trust::from_pem(pem.as_bytes(), &sources.join(" + "))
        .map_err(|what| Failure::Config { what, fix: None })
}

/// The token request, built from the config and the token file without
/// touching the network: the form body, where to send it and whom to
/// trust. Everything that can fail before the provider is asked fails while
/// building it. Shared by the refresh, `--check` (offline: build only;
/// `--online`: build and send) and the tool's test-token-refresh, so all
/// of them send exactly the same request.
pub struct Prepared {
    pub(super) body: Zeroizing<String>,
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
    let in_config = |e: UrlError| {
        let files = format!("(in {} or {})", config.path.display(), token_path.display());
        match e.fix {
            Some(fix) => Failure::config(e.what, format!("{fix} {files}")),
            None => Failure::Config {
                what: format!("{} {files}", e.what),
                fix: None,
            },
        }
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
/// In the split layout the refresh token and any per-account client secret
/// come from the secrets file, as in a refresh; the config's
/// `client_secret_file` is read too.
///
/// A provider that rotates refresh tokens may invalidate the one in the file
/// when it answers ([`Granted::refresh_token`] is then `Some`): the caller
/// must say so, since the new one is not stored.
pub fn request_without_storing(
    loaded: &Loaded,
    token_path: &Path,
    token: &TokenFile,
) -> Result<Granted, Failure> {
    let budget = Duration::from_secs(loaded.config.refresh_timeout().max(1));
    let deadline = Instant::now() + budget;
    // As the helper does: the layout and secrets, client_secret_file.
    let meta = std::fs::symlink_metadata(token_path).map_err(|e| {
        Failure::Token(FileError::new(
            FileKind::Token,
            token_path,
            Problem::Unreadable(e.to_string()),
        ))
    })?;
    let secrets = read_secrets(token_path, &FileMeta::of(&meta))?;
    let mut token = token.clone();
    merge_secrets(&mut token, secrets.as_ref().map(|s| &s.secrets), token_path)?;
    drop(secrets);
    let mut config = loaded.config.clone();
    read_client_secret_file(&mut config)?;
    let loaded = &Loaded {
        config,
        ca_pem: loaded.ca_pem.clone(),
    };
    let config = &loaded.config;
    let token = &token;
    let settings = resolve(config, token, token_path)?;
    let prepared = prepare_request(loaded, token, &settings, token_path)?;
    let resolved = prepared.resolve(deadline)?;
    let client = Client::new(&prepared.route, resolved, &prepared.trust);
    confine_like_the_helper(token_path, &prepared.route, config.sandbox)?;
    send(
        &prepared,
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
fn confine_like_the_helper(
    token_path: &Path,
    route: &Route,
    mode: SandboxMode,
) -> Result<(), Failure> {
    crate::privdrop::drop_to_token_owner(token_path).map_err(|e| {
        Failure::config(
            e.to_string(),
            "refusing to contact the token endpoint as root",
        )
    })?;
    sandbox::harden_process(&[]).map_err(Failure::Sandbox)?;
    sandbox::lock_down(&sandbox_policy(token_path, route.connect_host().1, mode))
        .map_err(Failure::Sandbox)?;
    Ok(())
}
