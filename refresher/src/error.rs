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
const LATER: &str = "the refresh will be tried again later";

#[derive(Debug)]
pub enum Failure {
    /// Bad command line.
    Usage(String),
    /// The configuration (file, handoff or a value in it) is unusable:
    /// `what` names the file/field, `fix` (if known) what to do.
    Config {
        what: String,
        fix: Option<String>,
    },
    /// The config file itself is broken.
    ConfigFile(FileError),
    /// The token file is missing, unreadable or invalid.
    Token(FileError),
    /// The token file (or its secrets file) is unsafe to use (e.g.
    /// writable by everyone), or an override in it is refused.
    TokenUnsafe {
        path: PathBuf,
        why: String,
        fix: Option<String>,
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
    /// A config problem and what to do about it.
    pub(crate) fn config(what: impl Into<String>, fix: impl Into<String>) -> Failure {
        Failure::Config {
            what: what.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            Failure::Usage(_) => exit::USAGE,
            Failure::Config { .. } | Failure::ConfigFile(_) => exit::CONFIG,
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

    /// What went wrong: the status line before its fix. For a config or
    /// token file, the path and its problem.
    pub fn what(&self) -> String {
        self.parts().0
    }

    /// What to do next: the end of the status line.
    pub fn fix(&self) -> String {
        self.parts().1
    }

    /// (what, fix); the status line of most variants is "what; fix".
    fn parts(&self) -> (String, String) {
        match self {
            Failure::ConfigFile(e) | Failure::Token(e) => {
                (format!("{} {}", e.path.display(), e.problem), e.fix())
            }
            Failure::Config { what, fix } => (what.clone(), fix_or_see(fix)),
            Failure::TokenUnsafe { path, why, fix } => (
                format!("token file {}: {why}", path.display()),
                fix_or_see(fix),
            ),
            Failure::Lock(e) => (e.what(), e.fix()),
            Failure::Usage(m) => (
                m.clone(),
                "usage: sasl-xoauth2-refresh [--config PATH | --config-fd N] [--force] TOKEN_PATH".into(),
            ),
            Failure::Request { err, token, config } => {
                let (token, config) = (token.display(), config.display());
                match err {
                    RequestError::MissingRefreshToken => (
                        format!("token file {token}: field refresh_token missing"),
                        format!("get one with `{GET_TOKEN} --overwrite-existing-token {token}`"),
                    ),
                    RequestError::MissingClientId => (
                        "client_id is not set".into(),
                        format!("set \"client_id\" in the config file {config} (or in the token file {token})"),
                    ),
                    RequestError::MissingClientSecret => (
                        format!("token file {token}: the client_credentials grant needs a client secret"),
                        format!("set \"client_secret\" in {config} or in the token file"),
                    ),
                }
            }
            Failure::Store { err, rotated } => {
                let mut what = format!("{err}; the token file was left as it was");
                if *rotated {
                    what.push_str(&format!(
                        "; the provider issued a new refresh token that could not be saved: if the next refresh fails with invalid_grant, run `{GET_TOKEN} --overwrite-existing-token` again"
                    ));
                }
                (
                    what,
                    "make the token's directory writable by the user running the refresh and check free space".into(),
                )
            }
            Failure::Sandbox(e) => (
                format!("sandbox setup failed: {e}"),
                "set \"sandbox\": \"best-effort\" in the config file if this kernel cannot enforce it".into(),
            ),
            Failure::ProviderDown { host, failures, wait_ms } => (
                format!(
                    "token endpoint {host} failed the last {failures} attempt(s) in a row; not asking it again for {wait_ms} ms, which this refresh's budget (refresh_timeout) does not cover"
                ),
                LATER.into(),
            ),
            Failure::Resolve { host, err } => (
                format!("cannot resolve {host}: {err}"),
                "check DNS (inside a chroot: /etc/resolv.conf and /etc/hosts of the chroot) or the token_endpoint/proxy setting".into(),
            ),
            Failure::Transport {
                host,
                err,
                budget_secs,
                attempts,
                config,
            } => {
                let config = config.display();
                match err {
                    TransportError::Timeout => (
                        format!("no answer from token endpoint {host} within {budget_secs} s"),
                        format!("check network access to it (firewall, proxy), or raise refresh_timeout in {config}"),
                    ),
                    TransportError::Tls(e) => (
                        format!("TLS with token endpoint {host} failed: {e}"),
                        format!("if it uses a private CA, set ca_bundle_file in {config}"),
                    ),
                    TransportError::TooLarge => (
                        format!(
                            "token endpoint {host} sent a response larger than {} KiB",
                            crate::oauth::MAX_RESPONSE_SIZE / 1024
                        ),
                        format!("check token_endpoint in {config}"),
                    ),
                    _ => (
                        format!("cannot reach token endpoint {host} ({err}; {attempts} attempt(s))"),
                        format!("check network access (firewall, proxy setting in {config})"),
                    ),
                }
            }
            Failure::Provider(p) => {
                let ProviderFailure {
                    host,
                    err,
                    attempts,
                    token,
                    config,
                    client_credentials,
                } = &**p;
                let (token, config) = (token.display(), config.display());
                match err.reaction() {
                    Reaction::Reauthorise if !client_credentials => (
                        format!(
                            "token endpoint {host} refused the refresh token in {token} ({})",
                            oauth_detail(err)
                        ),
                        format!("re-authorise: run `{GET_TOKEN} --overwrite-existing-token {token}`"),
                    ),
                    Reaction::Reauthorise | Reaction::FixClient => (
                        format!("token endpoint {host} refused the client ({})", oauth_detail(err)),
                        format!("check client_id, client_secret and scope in {config} (or their overrides in {token})"),
                    ),
                    Reaction::FixEndpoint => (
                        format!("token endpoint {host} answered {err}"),
                        format!("set token_endpoint in {config} to the provider's token URL (redirects are not followed)"),
                    ),
                    Reaction::Retry => (
                        format!("token endpoint {host} failed ({err}) after {attempts} attempt(s)"),
                        LATER.into(),
                    ),
                    Reaction::Later => (
                        format!("token endpoint {host} is rate limiting ({err})"),
                        LATER.into(),
                    ),
                    Reaction::Protocol => (
                        format!("token endpoint {host} sent an unusable answer: {err}"),
                        format!("check token_endpoint in {config}"),
                    ),
                }
            }
        }
    }
}

fn fix_or_see(fix: &Option<String>) -> String {
    fix.clone().unwrap_or_else(|| "see the message".into())
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::ConfigFile(e) | Failure::Token(e) => write!(f, "{e}"),
            Failure::Config { what, fix: None } => f.write_str(what),
            Failure::TokenUnsafe {
                path,
                why,
                fix: None,
            } => write!(f, "token file {}: {why}", path.display()),
            _ => {
                let (what, fix) = self.parts();
                write!(f, "{what}; {fix}")
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

#[cfg(test)]
mod tests {
    use super::*;
    use common::error::FileKind;

    #[test]
    fn what_and_fix_are_the_status_line_halves() {
        let t = PathBuf::from("/etc/tokens/a");
        let f = Failure::Request {
            err: RequestError::MissingRefreshToken,
            token: t.clone(),
            config: "/etc/sasl-xoauth2.conf".into(),
        };
        assert_eq!(
            f.what(),
            "token file /etc/tokens/a: field refresh_token missing"
        );
        assert_eq!(
            f.fix(),
            "get one with `sasl-xoauth2-tool get-token {gmail|outlook} --overwrite-existing-token /etc/tokens/a`"
        );
        assert_eq!(f.to_string(), format!("{}; {}", f.what(), f.fix()));
        // A lost rotated token is part of what happened, not of the fix.
        let f = Failure::Store {
            err: StoreError {
                step: "rename",
                path: t.clone(),
                source: std::io::Error::from_raw_os_error(libc::ENOSPC),
            },
            rotated: true,
        };
        assert!(
            f.what().ends_with("--overwrite-existing-token` again"),
            "{}",
            f.what()
        );
        assert!(f.fix().starts_with("make the token's directory writable"));
        // A file's what is its path and problem; the check line names the kind.
        let f = Failure::Token(FileError::new(FileKind::Token, &t, Problem::Missing));
        assert_eq!(f.what(), "/etc/tokens/a does not exist");
        assert!(f.to_string().starts_with("token file /etc/tokens/a: "));
        // Typed halves: a "; " inside either stays where it is.
        let f = Failure::config("bad thing; fix a", "fix b");
        assert_eq!(
            (f.what(), f.fix()),
            ("bad thing; fix a".into(), "fix b".into())
        );
        assert_eq!(f.to_string(), "bad thing; fix a; fix b");
        let f = Failure::Config {
            what: "no fix given".into(),
            fix: None,
        };
        assert_eq!(
            (f.what(), f.fix()),
            ("no fix given".into(), "see the message".into())
        );
        assert_eq!(f.to_string(), "no fix given");
    }
}
