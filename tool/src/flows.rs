//! `get-token`: pick the flow, run it, write the token file.

use crate::cli::{GetToken, Service};
use crate::device::{self, DeviceRequest};
use crate::error::ToolError;
use crate::explain::Stage;
use crate::http::Http;
use crate::loopback::{self, Expect, Loopback, Outcome};
use crate::oauth::{self, Tokens};
use crate::output::{NewTokens, Output, Target};
use crate::pkce::{self, Pkce};
use crate::prompt;
use crate::providers::{self, Cloud, EndpointOverrides, Endpoints, Provider};
use common::urlenc;
use common::Secret;
use std::time::Duration;

/// How long the loopback listener waits for the browser.
const LOOPBACK_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Which way the user authorises.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Loopback,
    Device,
    Paste,
}

/// The flow the options ask for, or why they make no sense.
pub fn choose_flow(a: &GetToken) -> Result<Flow, ToolError> {
    match a.service {
        Service::Gmail => {
            if a.use_device_flow {
                Err(ToolError::Usage(
                    "Google's device flow does not allow the Gmail scope; gmail uses the \
                     loopback redirect (drop --use-device-flow)"
                        .into(),
                ))
            } else if a.use_paste_flow || a.no_use_device_flow {
                Err(ToolError::Usage(
                    "Google has retired the copy-and-paste (out-of-band) flow; gmail uses the \
                     loopback redirect (drop --use-paste-flow)"
                        .into(),
                ))
            } else {
                Ok(Flow::Loopback)
            }
        }
        Service::Outlook => Ok(if a.use_loopback_flow {
            Flow::Loopback
        } else if a.use_paste_flow || a.no_use_device_flow {
            Flow::Paste
        } else {
            Flow::Device
        }),
    }
}

/// An authorisation code grant with PKCE, whatever brings the code back.
#[derive(Debug)]
struct CodeGrant<'a> {
    http: &'a Http,
    provider: Provider,
    endpoints: &'a Endpoints,
    client_id: &'a str,
    client_secret: Option<&'a Secret>,
    scope: &'a str,
    pkce: Pkce,
    state: String,
}

impl CodeGrant<'_> {
    fn authorization_url(&self, redirect_uri: &str) -> String {
        let mut q: Vec<(&str, &str)> = vec![
            ("client_id", self.client_id),
            ("redirect_uri", redirect_uri),
            ("response_type", "code"),
            ("scope", self.scope),
            ("state", &self.state),
            ("code_challenge", &self.pkce.challenge),
            ("code_challenge_method", "S256"),
        ];
        match self.provider {
            // offline + consent: a refresh token every time, also when the
            // account authorised this client before.
            Provider::Google => {
                q.push(("access_type", "offline"));
                q.push(("prompt", "consent"));
            }
            Provider::Microsoft => q.push(("response_mode", "query")),
        }
        urlenc::with_query(&self.endpoints.authorize, &q)
    }

    fn exchange(&self, code: &Secret, redirect_uri: &str) -> Result<Tokens, ToolError> {
        let mut form: Vec<(&str, &str)> = vec![
            ("grant_type", "authorization_code"),
            ("code", code.expose()),
            ("redirect_uri", redirect_uri),
            ("client_id", self.client_id),
            ("code_verifier", self.pkce.verifier.expose()),
        ];
        if let Some(s) = self.client_secret.filter(|s| !s.is_empty()) {
            form.push(("client_secret", s.expose()));
        }
        if self.provider == Provider::Microsoft {
            form.push(("scope", self.scope));
        }
        let http_body = urlenc::form(&form);
        let answer = self
            .http
            .post_form(&self.endpoints.token, http_body.as_bytes())?;
        let mut sent = vec![code, &self.pkce.verifier];
        sent.extend(self.client_secret);
        oauth::parse_token_response(answer.status, &answer.body, &sent).map_err(|e| {
            ToolError::from_response(e, &self.endpoints.token, self.provider, Stage::Token)
        })
    }
}

/// RFC 8252: the browser brings the code to a listener on this host.
fn run_loopback(grant: &CodeGrant<'_>, port: u16) -> Result<Tokens, ToolError> {
    let listener = Loopback::bind(port)?;
    let port = listener.port;
    // Google documents 127.0.0.1 with any path; Microsoft matches a
    // registered http://localhost with any port.
    let (redirect_uri, path) = match grant.provider {
        Provider::Google => (
            format!("http://127.0.0.1:{port}{}", providers::GOOGLE_REDIRECT_PATH),
            providers::GOOGLE_REDIRECT_PATH,
        ),
        Provider::Microsoft => (format!("http://localhost:{port}"), "/"),
    };
    let url = grant.authorization_url(&redirect_uri);
    eprintln!(
        "\nOpen this URL in a browser on this machine:\n\n    {url}\n\n\
         If the browser runs on another machine, forward the port there first:\n    \
         ssh -L {port}:127.0.0.1:{port} <this host>\n\
         and open http://127.0.0.1:{port}/auth in that browser; it leads to the URL above.\n\n\
         Listening on http://127.0.0.1:{port}/ ; waiting for the browser (up to {} minutes, \
         Ctrl-C to give up)...",
        LOOPBACK_TIMEOUT.as_secs() / 60
    );
    let expect = Expect {
        path,
        state: &grant.state,
        auth_url: &url,
        provider: grant.provider,
    };
    listener.serve(&expect, LOOPBACK_TIMEOUT, |code| {
        grant.exchange(code, &redirect_uri)
    })
}

/// The C++ tool's legacy Microsoft flow: the user pastes the address of the
/// blank "nativeclient" page. State and PKCE are checked here too.
fn run_paste(grant: &CodeGrant<'_>) -> Result<Tokens, ToolError> {
    let redirect_uri = grant
        .endpoints
        .native_client_redirect
        .clone()
        .ok_or_else(|| ToolError::Usage("this provider has no paste flow".into()))?;
    let url = grant.authorization_url(&redirect_uri);
    eprintln!(
        "\nOpen this URL in a browser and sign in:\n\n    {url}\n\n\
         You will land on a blank page; copy its whole address from the address bar and \
         paste it here."
    );
    let pasted = prompt::line("Resulting URL: ")?;
    let pasted = pasted.trim();
    let rest = pasted
        .strip_prefix(redirect_uri.as_str())
        .ok_or_else(|| ToolError::Paste(format!("it should start with {redirect_uri}")))?;
    let query = rest
        .strip_prefix('?')
        .ok_or_else(|| ToolError::Paste("it has no ?code=... part".into()))?;
    let query = query.split('#').next().unwrap_or("");
    match loopback::evaluate(&urlenc::parse_query(query), &grant.state) {
        Outcome::Code(code) => grant.exchange(&code, &redirect_uri),
        Outcome::Refused(error) => Err(ToolError::Provider {
            provider: grant.provider,
            stage: Stage::Authorize,
            error,
        }),
        Outcome::WrongState => Err(ToolError::Paste(
            "its state does not match this run; paste the address reached from the URL \
             printed above"
                .into(),
        )),
        Outcome::Incomplete => Err(ToolError::Paste("it has no code=... parameter".into())),
    }
}

fn client_secret(a: &GetToken, flow: Flow) -> Result<Option<Secret>, ToolError> {
    if let Some(s) = &a.client_secret {
        return Ok(Some(Secret::new(s.as_str())));
    }
    match (a.service, flow) {
        (Service::Gmail, _) => {
            let s = prompt::secret("OAuth client secret: ")?;
            if s.is_empty() {
                return Err(ToolError::Usage(
                    "Google requires the client secret of your Desktop app client \
                     (Google Cloud Console > Credentials)"
                        .into(),
                ));
            }
            Ok(Some(Secret::new(s.as_str())))
        }
        (Service::Outlook, Flow::Paste) => {
            let s = prompt::secret(
                "OAuth client secret (press Enter if the app has none, as public clients do): ",
            )?;
            Ok((!s.is_empty()).then(|| Secret::new(s.as_str())))
        }
        (Service::Outlook, _) => Ok(None),
    }
}

/// Run `get-token`.
pub fn get_token(a: &GetToken) -> Result<(), ToolError> {
    let flow = choose_flow(a)?;
    let output = if a.split {
        Output::split(&a.output, a.overwrite_existing_token)
    } else {
        Output::new(&a.output, a.overwrite_existing_token)
    };
    output.precheck()?;
    if a.client_id.trim().is_empty() {
        return Err(ToolError::Usage("--client-id must not be empty".into()));
    }
    let overrides = EndpointOverrides {
        authorize: a.auth_endpoint.clone(),
        token: a.token_endpoint.clone(),
        device: a.device_endpoint.clone(),
    };
    let (provider, endpoints, scope) = match a.service {
        Service::Gmail => {
            if a.login_base.is_some() || a.cloud != crate::cli::CloudArg::Public {
                eprintln!("note: --cloud and --login-base are for outlook; ignored for gmail");
            }
            let scope = a
                .scope
                .clone()
                .unwrap_or_else(|| providers::GOOGLE_DEFAULT_SCOPE.to_string());
            (Provider::Google, Endpoints::google(&overrides)?, scope)
        }
        Service::Outlook => {
            let cloud = Cloud::of(a.cloud);
            let base = a.login_base.as_deref().unwrap_or(cloud.login_base);
            let scope = match &a.scope {
                Some(s) => providers::with_offline_access(s),
                None => cloud.default_scope(),
            };
            (
                Provider::Microsoft,
                Endpoints::microsoft(base, &a.tenant, &overrides)?,
                scope,
            )
        }
    };
    if scope.trim().is_empty() {
        return Err(ToolError::Usage("--scope must not be empty".into()));
    }
    let secret = client_secret(a, flow)?;
    let http = Http::new(a.ca_bundle_file.as_deref())?;

    let tokens = match flow {
        Flow::Device => device::run(
            &http,
            &DeviceRequest {
                provider,
                endpoints: &endpoints,
                client_id: &a.client_id,
                client_secret: secret.as_ref(),
                scope: &scope,
            },
        )?,
        Flow::Loopback | Flow::Paste => {
            let grant = CodeGrant {
                http: &http,
                provider,
                endpoints: &endpoints,
                client_id: &a.client_id,
                client_secret: secret.as_ref(),
                scope: &scope,
                pkce: Pkce::generate()?,
                state: pkce::new_state()?,
            };
            if flow == Flow::Loopback {
                run_loopback(&grant, a.local_listen_port)?
            } else {
                run_paste(&grant)?
            }
        }
    };

    let refresh_token = tokens
        .refresh_token
        .ok_or(ToolError::NoRefreshToken(provider))?;
    let expires_in = tokens.expires_in.unwrap_or(0);
    let new = NewTokens {
        access_token: tokens.access_token,
        refresh_token,
        expiry: if expires_in > 0 {
            common::clock::unix_now().saturating_add(expires_in)
        } else {
            0
        },
    };
    let written = output.write(&new)?;

    eprintln!(
        "Acquired token (access token {}, valid for {} s; refresh token {}).",
        new.access_token.fingerprint(),
        expires_in,
        new.refresh_token.fingerprint()
    );
    if let Target::File(path) = &output.target {
        eprintln!(
            "Tokens {} {}.",
            if written.replaced {
                "replaced in"
            } else {
                "written to"
            },
            path.display()
        );
    }
    for n in &written.notes {
        eprintln!("note: {n}");
    }
    match provider {
        Provider::Google => eprintln!(
            "note: if the app's OAuth consent screen is in \"Testing\", Google revokes this \
             refresh token after 7 days; set its publishing status to \"In production\"."
        ),
        Provider::Microsoft if endpoints.token != common::config::DEFAULT_TOKEN_ENDPOINT => {
            eprintln!(
                "note: the refresh must go to Microsoft, not to the default (Google) endpoint: \
                 set \"token_endpoint\": \"{}\" in /etc/sasl-xoauth2.conf, or in this token \
                 file if other accounts use another provider.",
                endpoints.token
            )
        }
        Provider::Microsoft => {}
    }
    if let Target::File(path) = &output.target {
        eprintln!(
            "Check it with: sasl-xoauth2-tool test-token-refresh {}",
            path.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn args(extra: &[&str]) -> GetToken {
        let mut v = vec!["t", "get-token"];
        v.extend_from_slice(extra);
        match Cli::try_parse_from(v).unwrap().command {
            Command::GetToken(g) => *g,
            _ => unreachable!(),
        }
    }

    #[test]
    fn flow_choice() {
        assert_eq!(
            choose_flow(&args(&["outlook", "--client-id=x"])).unwrap(),
            Flow::Device
        );
        assert_eq!(
            choose_flow(&args(&["outlook", "--client-id=x", "--use-device-flow"])).unwrap(),
            Flow::Device
        );
        assert_eq!(
            choose_flow(&args(&["outlook", "--client-id=x", "--use-paste-flow"])).unwrap(),
            Flow::Paste
        );
        assert_eq!(
            choose_flow(&args(&["outlook", "--client-id=x", "--no-use-device-flow"])).unwrap(),
            Flow::Paste
        );
        assert_eq!(
            choose_flow(&args(&["outlook", "--client-id=x", "--use-loopback-flow"])).unwrap(),
            Flow::Loopback
        );
        assert_eq!(
            choose_flow(&args(&["gmail", "--client-id=x"])).unwrap(),
            Flow::Loopback
        );
        assert!(choose_flow(&args(&["gmail", "--client-id=x", "--use-device-flow"])).is_err());
        assert!(choose_flow(&args(&["gmail", "--client-id=x", "--use-paste-flow"])).is_err());
    }

    #[test]
    fn authorization_urls() {
        let e = Endpoints::google(&EndpointOverrides::default()).unwrap();
        let http = Http::new(None).unwrap();
        let g = CodeGrant {
            http: &http,
            provider: Provider::Google,
            endpoints: &e,
            client_id: "id.apps.googleusercontent.com",
            client_secret: None,
            scope: "https://mail.google.com/",
            pkce: Pkce::generate().unwrap(),
            state: "st".into(),
        };
        let u = g.authorization_url("http://127.0.0.1:5/oauth2_result");
        let (base, q) = u.split_once('?').unwrap();
        assert_eq!(base, "https://accounts.google.com/o/oauth2/auth");
        let q = urlenc::parse_query(q);
        let get = |k| urlenc::single(&q, k).unwrap().unwrap();
        assert_eq!(get("redirect_uri"), "http://127.0.0.1:5/oauth2_result");
        assert_eq!(get("scope"), "https://mail.google.com/");
        assert_eq!(get("code_challenge"), g.pkce.challenge);
        assert_eq!(get("code_challenge_method"), "S256");
        assert_eq!(get("state"), "st");
        assert_eq!(get("access_type"), "offline");
        assert!(!u.contains(g.pkce.verifier.expose()));
    }
}
