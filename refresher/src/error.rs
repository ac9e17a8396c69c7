//! Every way a refresh can fail, its exit code (common::exit) and the one
//! status line that tells the admin what to do. No variant holds a secret.

use crate::http::TransportError;
use crate::lock::LockError;
use crate::oauth::{Reaction, RequestError, ResponseError};
use crate::sandbox::SandboxError;
use crate::store::StoreError;
use common::error::{FileError, Problem};
use common::exit;
use std::fmt;
use std::path::PathBuf;

const GET_TOKEN: &str = "sasl-xoauth2-tool get-token {gmail|outlook}";

#[derive(Debug)]
pub enum Failure {
    /// Bad command line.
    Usage(String),
    /// The configuration (file, handoff or a value in it) is unusable; the
    /// message names the file/field and the fix.
    Config(String),
    /// The config file itself is broken.
    ConfigFile(FileError),
    /// The token file is missing, unreadable or invalid.
    Token(FileError),
    /// The token file is unsafe to use (e.g. writable by everyone).
    TokenUnsafe {
        path: PathBuf,
        why: String,
    },
    /// The request cannot be built (missing client_id, ...).
    Request {
        err: RequestError,
        token: PathBuf,
        config: PathBuf,
    },
    Lock(LockError),
    /// The new token file could not be written. `rotated`: the provider had
    /// issued a new refresh token, which is now lost.
    Store {
        err: StoreError,
        rotated: bool,
    },
    Sandbox(SandboxError),
    /// The endpoint (or proxy) host could not be resolved.
    Resolve {
        host: String,
        err: String,
    },
    /// No usable HTTP answer.
    Transport {
        host: String,
        err: TransportError,
        budget_secs: u64,
        attempts: u32,
        config: PathBuf,
    },
    /// The provider answered, but not with a token.
    Provider(Box<ProviderFailure>),
    /// Earlier helpers found the endpoint failing and this one's budget
    /// cannot cover the pause they asked for: no request was sent.
    ProviderDown {
        host: String,
        failures: u32,
        wait_ms: u128,
    },
}

/// Details of [`Failure::Provider`].
#[derive(Debug)]
pub struct ProviderFailure {
    pub host: String,
    pub err: ResponseError,
    pub attempts: u32,
    pub token: PathBuf,
    pub config: PathBuf,
    pub client_credentials: bool,
}

impl Failure {
    pub fn exit_code(&self) -> i32 {
        match self {
            Failure::Usage(_) => exit::USAGE,
            Failure::Config(_) | Failure::ConfigFile(_) => exit::CONFIG,
            Failure::Token(e) => match e.problem {
                Problem::Missing
                | Problem::Unreadable(_)
                | Problem::Symlink
                | Problem::NotRegular(_) => exit::NOINPUT,
                _ => exit::DATAERR,
            },
            Failure::TokenUnsafe { .. } => exit::DATAERR,
            Failure::Request { err, .. } => match err {
                RequestError::MissingRefreshToken => exit::DATAERR,
                _ => exit::CONFIG,
            },
            Failure::Lock(LockError::Timeout { .. }) => exit::TEMPFAIL,
            Failure::Lock(_) | Failure::Store { .. } => exit::CANTCREAT,
            Failure::Sandbox(_) => exit::OSERR,
            Failure::Resolve { .. } | Failure::ProviderDown { .. } => exit::TEMPFAIL,
            Failure::Transport { err, .. } => match err {
                TransportError::TooLarge => exit::PROTOCOL,
                _ => exit::TEMPFAIL,
            },
            Failure::Provider(p) => match p.err.reaction() {
                Reaction::Reauthorise | Reaction::FixClient => exit::UNAVAILABLE,
                Reaction::FixEndpoint => exit::CONFIG,
                Reaction::Retry | Reaction::Later => exit::TEMPFAIL,
                Reaction::Protocol => exit::PROTOCOL,
            },
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Usage(m) => write!(f, "{m}; usage: sasl-xoauth2-refresh [--config PATH | --config-fd N] [--force] TOKEN_PATH"),
            Failure::Config(m) => f.write_str(m),
            Failure::ConfigFile(e) | Failure::Token(e) => write!(f, "{e}"),
            Failure::TokenUnsafe { path, why } => write!(f, "token file {}: {why}", path.display()),
            Failure::Request { err, token, config } => match err {
                RequestError::MissingRefreshToken => write!(
                    f,
                    "token file {}: field refresh_token missing; get one with `{GET_TOKEN} --overwrite-existing-token {}`",
                    token.display(),
                    token.display()
                ),
                RequestError::MissingClientId => write!(
                    f,
                    "client_id is not set; set \"client_id\" in the config file {} (or in the token file {})",
                    config.display(),
                    token.display()
                ),
                RequestError::MissingClientSecret => write!(
                    f,
                    "token file {}: the client_credentials grant needs a client secret; set \"client_secret\" in {} or in the token file",
                    token.display(),
                    config.display()
                ),
            },
            Failure::Lock(e) => write!(f, "{e}"),
            Failure::Store { err, rotated } => {
                write!(f, "{err}; the token file was left as it was")?;
                if *rotated {
                    write!(
                        f,
                        "; the provider issued a new refresh token that could not be saved: if the next refresh fails with invalid_grant, run `{GET_TOKEN} --overwrite-existing-token` again"
                    )?;
                }
                f.write_str("; make the token's directory writable by the user running the refresh and check free space")
            }
            Failure::Sandbox(e) => write!(
                f,
                "sandbox setup failed: {e}; set \"sandbox\": \"best-effort\" in the config file if this kernel cannot enforce it"
            ),
            Failure::ProviderDown { host, failures, wait_ms } => write!(
                f,
                "token endpoint {host} failed the last {failures} attempt(s) in a row; not asking it again for {wait_ms} ms, which this refresh's budget (refresh_timeout) does not cover; the refresh will be tried again later"
            ),
            Failure::Resolve { host, err } => write!(
                f,
                "cannot resolve {host}: {err}; check DNS (inside a chroot: /etc/resolv.conf and /etc/hosts of the chroot) or the token_endpoint/proxy setting"
            ),
            Failure::Transport {
                host,
                err,
                budget_secs,
                attempts,
                config,
            } => match err {
                TransportError::Timeout => write!(
                    f,
                    "no answer from token endpoint {host} within {budget_secs} s; check network access to it (firewall, proxy), or raise refresh_timeout in {}",
                    config.display()
                ),
                TransportError::Tls(e) => write!(
                    f,
                    "TLS with token endpoint {host} failed: {e}; if it uses a private CA, set ca_bundle_file in {}",
                    config.display()
                ),
                TransportError::TooLarge => write!(
                    f,
                    "token endpoint {host} sent a response larger than {} KiB; check token_endpoint in {}",
                    crate::oauth::MAX_RESPONSE_SIZE / 1024,
                    config.display()
                ),
                _ => write!(
                    f,
                    "cannot reach token endpoint {host} ({err}; {attempts} attempt(s)); check network access (firewall, proxy setting in {})",
                    config.display()
                ),
            },
            Failure::Provider(p) => {
                let ProviderFailure {
                    host,
                    err,
                    attempts,
                    token,
                    config,
                    client_credentials,
                } = &**p;
                match err.reaction() {
                Reaction::Reauthorise if !client_credentials => write!(
                    f,
                    "token endpoint {host} refused the refresh token in {} ({}); re-authorise: run `{GET_TOKEN} --overwrite-existing-token {}`",
                    token.display(),
                    oauth_detail(err),
                    token.display()
                ),
                Reaction::Reauthorise | Reaction::FixClient => write!(
                    f,
                    "token endpoint {host} refused the client ({}); check client_id, client_secret and scope in {} (or their overrides in {})",
                    oauth_detail(err),
                    config.display(),
                    token.display()
                ),
                Reaction::FixEndpoint => write!(
                    f,
                    "token endpoint {host} answered {err}; set token_endpoint in {} to the provider's token URL (redirects are not followed)",
                    config.display()
                ),
                Reaction::Retry => write!(
                    f,
                    "token endpoint {host} failed ({err}) after {attempts} attempt(s); the refresh will be tried again later"
                ),
                Reaction::Later => write!(
                    f,
                    "token endpoint {host} is rate limiting ({err}); the refresh will be tried again later"
                ),
                Reaction::Protocol => write!(
                    f,
                    "token endpoint {host} sent an unusable answer: {err}; check token_endpoint in {}",
                    config.display()
                ),
            }
            }
        }
    }
}

/// `invalid_grant: AADSTS70008: ...` (error code first, as providers document it).
fn oauth_detail(err: &ResponseError) -> String {
    match err {
        ResponseError::OAuth {
            error, description, ..
        } => match description {
            Some(d) => format!("{error}: {d}"),
            None => error.clone(),
        },
        other => other.to_string(),
    }
}
