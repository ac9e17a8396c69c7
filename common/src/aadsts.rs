//! Microsoft Entra ID error codes (`AADSTS<n>` in `error_description`, and
//! `error_codes` in the JSON): the one table of what each means, used by
//! the helper's `--check --online`, and by the tool for get-token and
//! test-token-refresh. Pure.
//!
//! A code can mean different things depending on what was asked: AADSTS70008
//! is an expired refresh token on a refresh, but an expired authorisation
//! code on sign-in. So each row says both.

/// `AADSTS7000218: ...` -> 7000218 (the first `AADSTS` in `s`, digits after it).
pub fn code_in(s: &str) -> Option<u32> {
    let at = s.find("AADSTS")? + "AADSTS".len();
    let digits: String = s[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

/// The fix for a client that Microsoft treats as confidential but that was
/// used as a public one (also the tool's advice for `unauthorized_client`).
pub const PUBLIC_CLIENT_FIX: &str =
    "in the Microsoft Entra admin center open App registrations > your app > \
     Authentication > Advanced settings and set \"Allow public client flows\" to Yes \
     (or pass the app's --client-secret if it is a confidential client)";

const WRONG_TENANT_FIX: &str = "the account does not belong to the tenant the app was asked for: \
     pass --tenant organizations (work or school accounts), --tenant consumers \
     (Outlook.com / Hotmail), --tenant common (both, if the app allows), or your \
     tenant's ID; and check the app registration's \"Supported account types\"";

const CODE_USED_FIX: &str =
    "the authorisation code was already used or has expired: run the tool again \
     and finish the sign-in promptly";

const SECRET_FIX: &str = "the client secret is wrong or expired: create a new one under \
     Certificates & secrets, or leave --client-secret out for a public client";

/// One row: the codes, what they most likely mean when a stored refresh
/// token is used, and what to do when they come back during a sign-in
/// (get-token).
struct Row {
    codes: &'static [u32],
    on_refresh: Option<&'static str>,
    on_sign_in: Option<&'static str>,
}

const TABLE: &[Row] = &[
    Row {
        codes: &[70000],
        on_refresh: Some(
            "the refresh token is not valid (revoked, malformed, or issued to another client ID)",
        ),
        on_sign_in: Some(CODE_USED_FIX),
    },
    Row {
        codes: &[70008],
        on_refresh: Some("the refresh token expired because it was not used for 90 days"),
        on_sign_in: Some(CODE_USED_FIX),
    },
    Row {
        codes: &[700082],
        on_refresh: Some("the refresh token expired because it was not used for 90 days"),
        on_sign_in: None,
    },
    Row {
        codes: &[54005],
        on_refresh: None,
        on_sign_in: Some(CODE_USED_FIX),
    },
    Row {
        codes: &[50173, 50133],
        on_refresh: Some(
            "the grant was revoked, usually because the account's password was changed or reset",
        ),
        on_sign_in: None,
    },
    Row {
        codes: &[50076, 50079, 50158],
        on_refresh: Some(
            "the tenant now requires multi-factor authentication for this sign-in",
        ),
        on_sign_in: Some(
            "the sign-in needs multi-factor authentication: finish it in the browser \
             and run the tool again",
        ),
    },
    Row {
        codes: &[53003],
        on_refresh: Some("a Conditional Access policy blocks the sign-in (ask the tenant admin)"),
        on_sign_in: Some("a Conditional Access policy blocked the sign-in: ask your tenant admin"),
    },
    Row {
        codes: &[65001],
        on_refresh: Some(
            "consent for the app was revoked or never granted (SMTP.Send, offline_access)",
        ),
        on_sign_in: Some(
            "the app has no consent for SMTP.Send: in App registrations > your app > \
             API permissions add Microsoft Graph > Delegated > SMTP.Send, then \"Grant \
             admin consent\" (or sign in as a user allowed to consent)",
        ),
    },
    Row {
        codes: &[700016],
        on_refresh: Some(
            "no application with this client_id exists in the tenant of token_endpoint",
        ),
        on_sign_in: Some(
            "no app with this client ID exists in that tenant: check --client-id \
             (the \"Application (client) ID\" on the app's Overview page) and --tenant; \
             an app for personal accounts needs --tenant consumers or common",
        ),
    },
    Row {
        codes: &[7000215],
        on_refresh: Some("the client_secret is wrong"),
        on_sign_in: Some(SECRET_FIX),
    },
    Row {
        codes: &[7000222],
        on_refresh: Some(
            "the client_secret has expired: create a new one under Certificates & secrets",
        ),
        on_sign_in: Some(SECRET_FIX),
    },
    Row {
        codes: &[7000218],
        on_refresh: Some(
            "the app is a confidential client: set client_secret, or set \"Allow public client flows\" to Yes",
        ),
        on_sign_in: Some(PUBLIC_CLIENT_FIX),
    },
    Row {
        codes: &[70002],
        on_refresh: None,
        on_sign_in: Some(PUBLIC_CLIENT_FIX),
    },
    Row {
        codes: &[90002],
        on_refresh: Some("the tenant in token_endpoint does not exist"),
        on_sign_in: None,
    },
    Row {
        codes: &[50020],
        on_refresh: Some("the account belongs to a tenant the app does not accept"),
        on_sign_in: Some(WRONG_TENANT_FIX),
    },
    Row {
        codes: &[90072, 500200],
        on_refresh: None,
        on_sign_in: Some(WRONG_TENANT_FIX),
    },
    Row {
        codes: &[50011, 500113],
        on_refresh: None,
        on_sign_in: Some(
            "the redirect URI is not registered: under Authentication add the platform \
             \"Mobile and desktop applications\" with the redirect URI http://localhost \
             (for --use-loopback-flow) or https://login.microsoftonline.com/common/oauth2/nativeclient \
             (for --use-paste-flow); or use the device flow, which needs none",
        ),
    },
    Row {
        codes: &[70011],
        on_refresh: Some("the scope is not valid for this app"),
        on_sign_in: Some(
            "the scope is not valid for this app: check --scope (default \
             https://outlook.office.com/SMTP.Send offline_access) and --cloud",
        ),
    },
    Row {
        codes: &[50126],
        on_refresh: None,
        on_sign_in: Some("wrong user name or password in the browser sign-in: try again"),
    },
];

fn row(code: u32) -> Option<&'static Row> {
    TABLE.iter().find(|r| r.codes.contains(&code))
}

/// What `code` most likely means when a stored refresh token was refused.
pub fn on_refresh(code: u32) -> Option<&'static str> {
    row(code)?.on_refresh
}

/// What to do when `code` comes back while getting a token (the tool).
pub fn on_sign_in(code: u32) -> Option<&'static str> {
    row(code)?.on_sign_in
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes() {
        assert_eq!(
            code_in("AADSTS70008: The refresh token has expired"),
            Some(70008)
        );
        assert_eq!(code_in("x AADSTS7000222: y"), Some(7000222));
        assert_eq!(code_in("no code"), None);
        assert_eq!(code_in("no code here"), None);
        assert_eq!(code_in("AADSTS: none"), None);
    }

    #[test]
    fn every_code_once_and_something_to_say() {
        let mut seen = std::collections::HashSet::new();
        for r in TABLE {
            assert!(r.on_refresh.is_some() || r.on_sign_in.is_some());
            for c in r.codes {
                assert!(seen.insert(*c), "AADSTS{c} is in two rows");
            }
        }
        assert!(on_refresh(700082).unwrap().contains("90 days"));
        assert!(on_sign_in(70008).unwrap().contains("authorisation code"));
        assert_eq!(on_refresh(1), None);
        assert_eq!(on_sign_in(1), None);
    }
}
