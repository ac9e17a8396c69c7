//! Everything that can go wrong in the tool, each with what to do next.

use crate::explain::{self, Stage};
use crate::oauth::{ProviderError, ResponseError};
use crate::providers::{BadOption, Provider};
use std::fmt;
use std::path::PathBuf;

#[derive(Debug)]
pub enum ToolError {
    /// A bad combination of options.
    Usage(String),
    /// OUTPUT exists and --overwrite-existing-token was not given.
    OutputExists(PathBuf),
    /// OUTPUT cannot be written.
    Output {
        path: PathBuf,
        problem: String,
        fix: String,
    },
    /// The loopback listener could not be started.
    Listen { port: u16, source: std::io::Error },
    /// No HTTP answer from a provider endpoint.
    Network { url: String, reason: String },
    /// The provider answered with an OAuth error.
    Provider {
        provider: Provider,
        stage: Stage,
        error: ProviderError,
    },
    /// The provider's answer made no sense.
    BadResponse { url: String, what: String },
    /// Tokens were issued, but no refresh token.
    NoRefreshToken(Provider),
    /// Device flow: the user declined.
    Declined,
    /// Device flow: the code expired before the sign-in finished.
    Expired,
    /// Device flow: the provider does not know the device code.
    BadVerificationCode,
    /// Nobody came back to the loopback listener in time.
    Timeout(u64),
    /// The pasted redirect URL is not usable.
    Paste(String),
    /// Reading from the terminal failed.
    Input(String),
    /// The OS random generator failed.
    Random(String),
}

impl ToolError {
    /// A problem with the answer of `url`, the endpoint of `stage`. (Here,
    /// below both flows, so that the device flow and the code flows do not
    /// import each other.)
    pub fn from_response(e: ResponseError, url: &str, provider: Provider, stage: Stage) -> Self {
        match e {
            ResponseError::Provider(error) => ToolError::Provider {
                provider,
                stage,
                error,
            },
            ResponseError::Malformed(what) => ToolError::BadResponse {
                url: url.to_string(),
                what,
            },
        }
    }
}

impl From<BadOption> for ToolError {
    fn from(BadOption(m): BadOption) -> Self {
        ToolError::Usage(m)
    }
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ToolError::Usage(m) => f.write_str(m),
            ToolError::OutputExists(p) => write!(
                f,
                "{} already exists and was left unchanged; to replace its tokens while keeping \
                 its other fields, add --overwrite-existing-token (or choose another path)",
                p.display()
            ),
            ToolError::Output { path, problem, fix } => {
                write!(f, "cannot write {}: {problem}; {fix}", path.display())
            }
            ToolError::Listen { port, source } => {
                if source.kind() == std::io::ErrorKind::AddrInUse {
                    write!(
                        f,
                        "cannot listen on 127.0.0.1:{port}: the port is already in use; \
                         choose another with --local-listen-port, or 0 for any free port"
                    )
                } else {
                    write!(
                        f,
                        "cannot listen on 127.0.0.1:{port}: {source}; choose another port with \
                         --local-listen-port (ports below 1024 need root)"
                    )
                }
            }
            ToolError::Network { url, reason } => write!(
                f,
                "no answer from {url}: {reason}; check the network, proxy (HTTPS_PROXY) and, \
                 if a proxy inspects TLS, pass its CA with --ca-bundle-file"
            ),
            ToolError::Provider {
                provider,
                stage,
                error,
            } => f.write_str(&explain::render(*provider, *stage, error)),
            ToolError::BadResponse { url, what } => write!(
                f,
                "unexpected answer from {url}: {what}; check the endpoint (--login-base, \
                 --tenant) or try again later"
            ),
            ToolError::NoRefreshToken(Provider::Google) => f.write_str(
                "Google issued an access token but no refresh token; revoke the app's access at \
                 https://myaccount.google.com/permissions and run the tool again",
            ),
            ToolError::NoRefreshToken(Provider::Microsoft) => f.write_str(
                "Microsoft issued an access token but no refresh token; the scope must include \
                 offline_access (check --scope)",
            ),
            ToolError::Declined => f.write_str(
                "the sign-in was declined (authorization_declined); run the tool again and \
                 accept the permissions, or ask your admin if the consent is blocked",
            ),
            ToolError::Expired => f.write_str(
                "the code expired before the sign-in finished (expired_token); run the tool \
                 again and enter the new code within its lifetime",
            ),
            ToolError::BadVerificationCode => f.write_str(
                "the provider does not recognise the device code (bad_verification_code); run \
                 the tool again",
            ),
            ToolError::Timeout(secs) => write!(
                f,
                "no browser came back to the local listener within {} minutes; run the tool \
                 again (with ssh port forwarding if the browser is on another machine)",
                secs / 60
            ),
            ToolError::Paste(m) => write!(f, "the pasted URL is not usable: {m}"),
            ToolError::Input(m) => write!(f, "cannot read from the terminal: {m}"),
            ToolError::Random(m) => write!(f, "the system random generator failed: {m}"),
        }
    }
}

impl std::error::Error for ToolError {}

impl From<getrandom::Error> for ToolError {
    fn from(e: getrandom::Error) -> Self {
        ToolError::Random(e.to_string())
    }
}
