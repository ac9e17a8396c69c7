//! What a provider's error most likely means, and what to do about it
//! (Microsoft's codes: the table in `common::aadsts`). Pure.

use crate::oauth::ProviderError;
use crate::providers::Provider;
use common::aadsts::{self, PUBLIC_CLIENT_FIX};

/// Where in the exchange the error came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The browser came back to us with `error=...`.
    Authorize,
    /// Asking for a device code.
    DeviceCode,
    /// Exchanging the authorisation code, or polling with the device code.
    Token,
    /// Refreshing an existing token (test-token-refresh).
    Refresh,
}

impl Stage {
    pub fn describe(self) -> &'static str {
        match self {
            Stage::Authorize => "the authorisation was refused",
            Stage::DeviceCode => "the provider refused to start the device sign-in",
            Stage::Token => "the token endpoint refused to issue tokens",
            Stage::Refresh => "the token endpoint refused the refresh",
        }
    }
}

/// Advice for a standard OAuth error code.
fn generic_fix(provider: Provider, stage: Stage, error: &str) -> Option<String> {
    let g = provider == Provider::Google;
    Some(match error {
        "invalid_client" if g => "Google does not know this client ID and secret: copy both from \
             Google Cloud Console > APIs & Services > Credentials (an OAuth client of type \
             \"Desktop app\")"
            .into(),
        "invalid_client" => "the client ID or secret is wrong: check --client-id (Application \
             (client) ID) and --client-secret; a public client needs \"Allow public client \
             flows\" set to Yes"
            .into(),
        "unauthorized_client" if g => "this OAuth client may not use this flow: create an OAuth \
             client of type \"Desktop app\" in Google Cloud Console"
            .into(),
        "unauthorized_client" => PUBLIC_CLIENT_FIX.into(),
        "access_denied" if g => "the sign-in was declined. If you did not decline it: while the \
             OAuth consent screen is in \"Testing\", only the listed test users may sign in \
             (add the account under OAuth consent screen > Test users), and their refresh \
             tokens expire after 7 days; set the publishing status to \"In production\" to avoid \
             that"
            .into(),
        "access_denied" => "the sign-in was declined, or the account may not use this app: \
             sign in again and accept the permissions; an admin may have to grant consent"
            .into(),
        "invalid_grant" if stage == Stage::Refresh && g => "the refresh token was revoked or \
             has expired. Apps whose consent screen is in \"Testing\" get refresh tokens that \
             expire after 7 days: set the publishing status to \"In production\", then get a \
             new token with `sasl-xoauth2-tool get-token gmail --overwrite-existing-token FILE`"
            .into(),
        "invalid_grant" if stage == Stage::Refresh => "the refresh token is no longer valid \
             (revoked, password changed, or unused for 90 days): get a new one with \
             `sasl-xoauth2-tool get-token outlook --overwrite-existing-token FILE`"
            .into(),
        "invalid_grant" => "the authorisation code was rejected (expired, already used, or \
             issued for another redirect URI or PKCE verifier): run the tool again"
            .into(),
        "invalid_scope" => "the provider rejected the scope: check --scope".into(),
        "invalid_request" => "the provider rejected the request as malformed; check the \
             endpoint URLs (--login-base, --tenant) and --client-id"
            .into(),
        "temporarily_unavailable" | "server_error" => {
            "the provider had a temporary problem: try again in a few minutes".into()
        }
        _ => return None,
    })
}

/// The advice for `e`, best guess first.
pub fn fixes(provider: Provider, stage: Stage, e: &ProviderError) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(f) = e.aadsts.and_then(aadsts::on_sign_in) {
        out.push(f.to_string());
    }
    if let Some(f) = generic_fix(provider, stage, &e.error) {
        if out.is_empty() {
            out.push(f);
        }
    }
    if out.is_empty() {
        out.push(match provider {
            Provider::Google => "check the app's settings in Google Cloud Console".into(),
            Provider::Microsoft => {
                "look the AADSTS code up on https://login.microsoftonline.com/error".into()
            }
        });
    }
    out
}

/// One paragraph for the terminal.
pub fn render(provider: Provider, stage: Stage, e: &ProviderError) -> String {
    let mut s = format!("{}: {}", stage.describe(), e.error);
    if e.status != 0 {
        s.push_str(&format!(" (HTTP {})", e.status));
    }
    if let Some(d) = &e.description {
        s.push_str(&format!("\n  provider says: {d}"));
    }
    for f in fixes(provider, stage, e) {
        s.push_str(&format!("\n  fix: {f}"));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(error: &str, aadsts: Option<u32>) -> ProviderError {
        ProviderError {
            status: 400,
            error: error.into(),
            description: None,
            aadsts,
        }
    }

    fn first(p: Provider, s: Stage, e: &ProviderError) -> String {
        fixes(p, s, e).remove(0)
    }

    #[test]
    fn aadsts_codes() {
        let m = Provider::Microsoft;
        assert!(
            first(m, Stage::Token, &err("invalid_client", Some(7000218)))
                .contains("Allow public client flows")
        );
        assert!(
            first(m, Stage::DeviceCode, &err("invalid_client", Some(70002)))
                .contains("Allow public client flows")
        );
        for c in [50020, 90072] {
            assert!(first(m, Stage::Token, &err("invalid_grant", Some(c))).contains("--tenant"));
        }
        assert!(
            first(m, Stage::Authorize, &err("consent_required", Some(65001)))
                .contains("Grant admin consent")
        );
        assert!(first(
            m,
            Stage::DeviceCode,
            &err("unauthorized_client", Some(700016))
        )
        .contains("--client-id"));
        assert!(
            first(m, Stage::Authorize, &err("invalid_request", Some(50011)))
                .contains("http://localhost")
        );
    }

    #[test]
    fn generic_codes() {
        let g = Provider::Google;
        assert!(first(g, Stage::Authorize, &err("access_denied", None)).contains("Testing"));
        assert!(first(g, Stage::Refresh, &err("invalid_grant", None)).contains("7 days"));
        assert!(first(g, Stage::Token, &err("invalid_grant", None)).contains("PKCE"));
        assert!(first(g, Stage::Token, &err("invalid_client", None)).contains("Desktop app"));
        assert!(first(g, Stage::Token, &err("unauthorized_client", None)).contains("Desktop app"));
        let m = Provider::Microsoft;
        assert!(first(m, Stage::Token, &err("unauthorized_client", None))
            .contains("Allow public client flows"));
        assert!(first(m, Stage::Token, &err("whatever", None)).contains("AADSTS"));
    }

    #[test]
    fn rendering() {
        let mut e = err("invalid_client", Some(7000218));
        e.description = Some("AADSTS7000218: body must contain client_secret".into());
        let r = render(Provider::Microsoft, Stage::Token, &e);
        assert!(
            r.starts_with("the token endpoint refused to issue tokens: invalid_client (HTTP 400)")
        );
        assert!(r.contains("provider says: AADSTS7000218"));
        assert!(r.contains("fix: in the Microsoft Entra admin center"));
    }
}
