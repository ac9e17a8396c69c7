//! The OAuth 2.0 token request (RFC 6749 sections 4.4 and 6) as a pure
//! function. The answer is read by `common::oauth`, the one reader the tool
//! uses too; re-exported here for the helper's callers.
//!
//! Nothing here does I/O, so every branch is unit-tested below.

use common::secret::Secret;
use common::token::Grant;
use common::Settings;
use std::fmt;
use zeroize::Zeroizing;

pub use common::oauth::{
    parse_response, Granted, Reaction, ResponseError, MAX_EXPIRES_IN, MAX_RESPONSE_SIZE,
};

/// A request that cannot even be built from the settings: a config problem.
#[derive(Debug, Clone, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)] // each names the missing field
pub enum RequestError {
    /// No `client_id` anywhere.
    MissingClientId,
    /// `grant_type: client_credentials` needs a client secret.
    MissingClientSecret,
    /// `grant_type: refresh_token` but the file holds none.
    MissingRefreshToken,
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::MissingClientId => f.write_str(
                "client_id is not set; set \"client_id\" in the config file or in the token file",
            ),
            RequestError::MissingClientSecret => f.write_str(
                "the client_credentials grant needs a client secret; set \"client_secret\" in the config file or in the token file",
            ),
            RequestError::MissingRefreshToken => f.write_str("field refresh_token missing"),
        }
    }
}

/// The `application/x-www-form-urlencoded` body of the token request.
///
/// Fields: `grant_type`, `client_id`, `client_secret` (only when not empty:
/// public clients such as Microsoft's device-flow apps have none),
/// `refresh_token` (refresh grant only) and `scope` (only when configured).
pub fn form_body(
    settings: &Settings,
    refresh_token: Option<&Secret>,
) -> Result<Zeroizing<String>, RequestError> {
    if settings.client_id.is_empty() {
        return Err(RequestError::MissingClientId);
    }
    let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(5);
    match settings.grant {
        Grant::RefreshToken => {
            let rt = refresh_token
                .filter(|r| !r.is_empty())
                .ok_or(RequestError::MissingRefreshToken)?;
            pairs.push(("grant_type", "refresh_token"));
            pairs.push(("client_id", &settings.client_id));
            if !settings.client_secret.is_empty() {
                pairs.push(("client_secret", settings.client_secret.expose()));
            }
            pairs.push(("refresh_token", rt.expose()));
        }
        Grant::ClientCredentials => {
            if settings.client_secret.is_empty() {
                return Err(RequestError::MissingClientSecret);
            }
            pairs.push(("grant_type", "client_credentials"));
            pairs.push(("client_id", &settings.client_id));
            pairs.push(("client_secret", settings.client_secret.expose()));
        }
    }
    if let Some(scope) = settings.scope.as_deref().filter(|s| !s.is_empty()) {
        pairs.push(("scope", scope));
    }
    Ok(common::urlenc::form(&pairs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::{Config, TokenFile};
    use std::path::Path;

    fn settings(config: &str, token: &str) -> (Settings, TokenFile) {
        let c = Config::parse(config.as_bytes(), Path::new("/c")).unwrap();
        let t = TokenFile::parse(token.as_bytes(), Path::new("/t")).unwrap();
        (Settings::resolve(&c, &t).unwrap(), t)
    }

    #[test]
    fn refresh_grant_body() {
        let (s, t) = settings(
            r#"{"client_id":"id 1","client_secret":"s&cret"}"#,
            r#"{"refresh_token":"1//r+t"}"#,
        );
        let b = form_body(&s, t.refresh_token.as_ref()).unwrap();
        assert_eq!(
            b.as_str(),
            "grant_type=refresh_token&client_id=id+1&client_secret=s%26cret&refresh_token=1%2F%2Fr%2Bt"
        );
    }

    #[test]
    fn public_client_sends_no_secret_and_scope_when_set() {
        let (s, t) = settings(
            r#"{"client_id":"id","client_secret":"","scope":"https://outlook.office.com/SMTP.Send offline_access"}"#,
            r#"{"refresh_token":"r"}"#,
        );
        let b = form_body(&s, t.refresh_token.as_ref()).unwrap();
        assert_eq!(
            b.as_str(),
            "grant_type=refresh_token&client_id=id&refresh_token=r&scope=https%3A%2F%2Foutlook.office.com%2FSMTP.Send+offline_access"
        );
    }

    #[test]
    fn client_credentials_body() {
        let (s, t) = settings(
            r#"{"client_id":"app","client_secret":"sec","scope":"https://outlook.office365.com/.default"}"#,
            r#"{"grant_type":"client_credentials"}"#,
        );
        let b = form_body(&s, t.refresh_token.as_ref()).unwrap();
        assert_eq!(
            b.as_str(),
            "grant_type=client_credentials&client_id=app&client_secret=sec&scope=https%3A%2F%2Foutlook.office365.com%2F.default"
        );
        let (s, t) = settings(
            r#"{"client_id":"app"}"#,
            r#"{"grant_type":"client_credentials"}"#,
        );
        assert_eq!(
            form_body(&s, t.refresh_token.as_ref()).unwrap_err(),
            RequestError::MissingClientSecret
        );
    }

    #[test]
    fn missing_client_id_or_refresh_token() {
        let (s, t) = settings("{}", r#"{"refresh_token":"r"}"#);
        assert_eq!(
            form_body(&s, t.refresh_token.as_ref()).unwrap_err(),
            RequestError::MissingClientId
        );
        let (s, _) = settings(r#"{"client_id":"x"}"#, r#"{"refresh_token":"r"}"#);
        assert_eq!(
            form_body(&s, None).unwrap_err(),
            RequestError::MissingRefreshToken
        );
    }
}
