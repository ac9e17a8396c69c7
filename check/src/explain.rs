//! The likely cause of a refused refresh, for `--check --online`: the
//! Microsoft AADSTS codes seen on refresh (the table is `common::aadsts`),
//! and Google's wording. Pure.

use common::aadsts;
use refresher::ResponseError;

/// One sentence: the likely cause of `err` and what to do, or `None` when
/// the refresher's own message says it all.
pub fn likely_cause(err: &ResponseError, google: bool) -> Option<String> {
    let ResponseError::OAuth {
        error,
        description,
        aadsts,
        ..
    } = err
    else {
        return None;
    };
    let code = aadsts.or_else(|| description.as_deref().and_then(aadsts::code_in));
    if let Some(cause) = code.and_then(aadsts::on_refresh) {
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
            summary: None,
            aadsts: None,
        }
    }

    #[test]
    fn codes_and_causes() {
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
