//! The likely cause of a refused refresh, for `--check --online`: the
//! Microsoft AADSTS codes seen on refresh, and Google's wording. Pure.

use crate::oauth::ResponseError;

/// The AADSTS number at the start of (or anywhere in) a description.
pub fn aadsts_code(description: &str) -> Option<u32> {
    let at = description.find("AADSTS")? + "AADSTS".len();
    let digits: String = description[at..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// What a Microsoft error code on a refresh most likely means.
pub fn aadsts_cause(code: u32) -> Option<&'static str> {
    Some(match code {
        70000 => "the refresh token is not valid (revoked, malformed, or issued to another client ID)",
        70008 | 700082 => "the refresh token expired because it was not used for 90 days",
        50173 | 50133 => "the grant was revoked, usually because the account's password was changed or reset",
        50076 | 50079 | 50158 => "the tenant now requires multi-factor authentication for this sign-in",
        53003 => "a Conditional Access policy blocks the sign-in (ask the tenant admin)",
        65001 => "consent for the app was revoked or never granted (SMTP.Send, offline_access)",
        700016 => "no application with this client_id exists in the tenant of token_endpoint",
        7000215 => "the client_secret is wrong",
        7000222 => "the client_secret has expired: create a new one under Certificates & secrets",
        7000218 => "the app is a confidential client: set client_secret, or set \"Allow public client flows\" to Yes",
        90002 => "the tenant in token_endpoint does not exist",
        50020 => "the account belongs to a tenant the app does not accept",
        70011 => "the scope is not valid for this app",
        _ => return None,
    })
}

/// One sentence: the likely cause of `err` and what to do, or `None` when
/// the refresher's own message says it all.
pub fn likely_cause(err: &ResponseError, google: bool) -> Option<String> {
    let ResponseError::OAuth {
        error, description, ..
    } = err
    else {
        return None;
    };
    if let Some(cause) = description
        .as_deref()
        .and_then(aadsts_code)
        .and_then(aadsts_cause)
    {
        return Some(format!("likely cause: {cause}"));
    }
    let text = match error.as_str() {
        "invalid_grant" if google => {
            "likely cause: the refresh token was revoked or has expired; an OAuth client whose \
             consent screen is in \"Testing\" gets refresh tokens that expire after 7 days \
             (set it to \"In production\")"
        }
        "invalid_grant" => {
            "likely cause: the refresh token was revoked, expired, or belongs to another client ID"
        }
        "invalid_client" if google => {
            "likely cause: client_id/client_secret do not match an OAuth client in Google \
             Cloud Console (type \"Desktop app\")"
        }
        "invalid_client" => "likely cause: client_id or client_secret is wrong",
        "unauthorized_client" => "likely cause: this client may not use the refresh grant",
        "invalid_scope" => "likely cause: the scope setting is not valid for this client",
        _ => return None,
    };
    Some(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn oauth(error: &str, d: Option<&str>) -> ResponseError {
        ResponseError::OAuth {
            status: 400,
            error: error.into(),
            description: d.map(String::from),
        }
    }

    #[test]
    fn codes_and_causes() {
        assert_eq!(
            aadsts_code("AADSTS70008: The refresh token has expired"),
            Some(70008)
        );
        assert_eq!(aadsts_code("x AADSTS7000222: y"), Some(7000222));
        assert_eq!(aadsts_code("no code"), None);
        assert_eq!(aadsts_code("AADSTS: none"), None);
        let e = oauth(
            "invalid_grant",
            Some("AADSTS700082: The refresh token has expired due to inactivity."),
        );
        assert!(likely_cause(&e, false).unwrap().contains("90 days"));
        let e = oauth(
            "invalid_grant",
            Some("AADSTS50173: The provided grant has expired"),
        );
        assert!(likely_cause(&e, false).unwrap().contains("password"));
        let e = oauth(
            "invalid_client",
            Some("AADSTS7000215: Invalid client secret provided."),
        );
        assert!(likely_cause(&e, false)
            .unwrap()
            .contains("client_secret is wrong"));
        let e = oauth("invalid_grant", Some("Token has been expired or revoked."));
        assert!(likely_cause(&e, true).unwrap().contains("7 days"));
        assert!(likely_cause(&e, false).unwrap().contains("revoked"));
        assert_eq!(likely_cause(&oauth("server_error", None), false), None);
        assert_eq!(likely_cause(&ResponseError::NotJson, false), None);
    }
}
