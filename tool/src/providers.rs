//! Where each provider's endpoints are, and what scope to ask for. Pure.

use crate::cli::CloudArg;
use common::providers::{MICROSOFT_LOGIN_CHINA, MICROSOFT_LOGIN_PUBLIC, MICROSOFT_LOGIN_USGOV};

pub const GOOGLE_AUTH_ENDPOINT: &str = "https://accounts.google.com/o/oauth2/auth";
/// Same endpoint as the C++ tool and the config default, so a token file
/// made here refreshes with an unchanged `/etc/sasl-xoauth2.conf`.
pub const GOOGLE_TOKEN_ENDPOINT: &str = common::providers::GOOGLE_TOKEN_ENDPOINT;
pub const GOOGLE_DEFAULT_SCOPE: &str = "https://mail.google.com/";
/// Path of the loopback redirect for Google, as in the C++ tool.
pub const GOOGLE_REDIRECT_PATH: &str = "/oauth2_result";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Google,
    Microsoft,
}

/// A Microsoft cloud: its login host (from `common::providers`, the list
/// the refresh's trust rule accepts in token files) and the resource that
/// owns SMTP.Send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cloud {
    pub login_base: &'static str,
    pub smtp_resource: &'static str,
}

impl Cloud {
    pub fn of(arg: CloudArg) -> Cloud {
        match arg {
            CloudArg::Public => Cloud {
                login_base: MICROSOFT_LOGIN_PUBLIC,
                smtp_resource: "https://outlook.office.com",
            },
            CloudArg::Usgov => Cloud {
                login_base: MICROSOFT_LOGIN_USGOV,
                smtp_resource: "https://outlook.office365.us",
            },
            // DoD tenants sign in at the same .us login host as GCC High;
            // only the Exchange resource differs.
            CloudArg::UsgovDod => Cloud {
                login_base: MICROSOFT_LOGIN_USGOV,
                smtp_resource: "https://outlook-dod.office365.us",
            },
            CloudArg::China => Cloud {
                login_base: MICROSOFT_LOGIN_CHINA,
                smtp_resource: "https://partner.outlook.cn",
            },
        }
    }

    /// `<resource>/SMTP.Send offline_access`: offline_access is what makes
    /// Microsoft return a refresh token.
    pub fn default_scope(&self) -> String {
        format!("{}/SMTP.Send offline_access", self.smtp_resource)
    }
}

/// The endpoints of one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub authorize: String,
    pub token: String,
    /// Device authorisation endpoint (Microsoft only).
    pub device: Option<String>,
    /// The page the legacy paste flow redirects to (Microsoft only).
    pub native_client_redirect: Option<String>,
}

/// Overrides from the command line (`--auth-endpoint`, ...).
#[derive(Debug, Clone, Default)]
pub struct EndpointOverrides {
    pub authorize: Option<String>,
    pub token: Option<String>,
    pub device: Option<String>,
}

/// A command-line option this module refused: the message names the flag
/// and says what is expected. (Its own type, not `ToolError`, so that this
/// module stays below `error`, which uses `Provider`.)
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadOption(pub String);

impl Endpoints {
    pub fn google(o: &EndpointOverrides) -> Result<Endpoints, BadOption> {
        Ok(Endpoints {
            authorize: https_url(
                "--auth-endpoint",
                o.authorize.as_deref().unwrap_or(GOOGLE_AUTH_ENDPOINT),
            )?,
            token: https_url(
                "--token-endpoint",
                o.token.as_deref().unwrap_or(GOOGLE_TOKEN_ENDPOINT),
            )?,
            device: None,
            native_client_redirect: None,
        })
    }

    pub fn microsoft(
        login_base: &str,
        tenant: &str,
        o: &EndpointOverrides,
    ) -> Result<Endpoints, BadOption> {
        let base = https_url("--login-base", login_base)?;
        let base = base.trim_end_matches('/');
        check_tenant(tenant)?;
        let at = |leaf: &str| format!("{base}/{tenant}/oauth2/v2.0/{leaf}");
        let pick = |flag, over: &Option<String>, default: String| match over {
            Some(u) => https_url(flag, u),
            None => Ok(default),
        };
        Ok(Endpoints {
            authorize: pick("--auth-endpoint", &o.authorize, at("authorize"))?,
            token: pick("--token-endpoint", &o.token, at("token"))?,
            device: Some(pick("--device-endpoint", &o.device, at("devicecode"))?),
            native_client_redirect: Some(format!("{base}/common/oauth2/nativeclient")),
        })
    }
}

/// The tenant goes into a URL path: allow only what tenant names, IDs and
/// domains are made of.
fn check_tenant(tenant: &str) -> Result<(), BadOption> {
    if common::providers::is_tenant(tenant) {
        Ok(())
    } else {
        Err(BadOption(format!(
            "--tenant {tenant:?} is not a tenant name: use consumers, organizations, common, \
             your tenant ID (a GUID) or your tenant's domain (contoso.onmicrosoft.com)"
        )))
    }
}

/// Endpoints must be https: the code exchange carries the client secret and
/// returns the refresh token.
pub fn https_url(flag: &str, url: &str) -> Result<String, BadOption> {
    let rest = url.strip_prefix("https://").ok_or_else(|| {
        BadOption(format!(
            "{flag} must be an https:// URL (got {url:?}); tokens never travel over plain HTTP"
        ))
    })?;
    let host = rest.split(['/', '?', '#']).next().unwrap_or("");
    if host.is_empty() || url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(BadOption(format!("{flag}: {url:?} is not a valid URL")));
    }
    Ok(url.to_string())
}

/// Microsoft only returns a refresh token when offline_access is asked for;
/// without one the token file is useless, so add it when a custom scope
/// lacks it.
pub fn with_offline_access(scope: &str) -> String {
    if scope.split_whitespace().any(|s| s == "offline_access") {
        scope.to_string()
    } else {
        format!("{scope} offline_access")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clouds() {
        let p = Cloud::of(CloudArg::Public);
        assert_eq!(
            p.default_scope(),
            "https://outlook.office.com/SMTP.Send offline_access"
        );
        assert_eq!(
            Cloud::of(CloudArg::Usgov).default_scope(),
            "https://outlook.office365.us/SMTP.Send offline_access"
        );
        let dod = Cloud::of(CloudArg::UsgovDod);
        assert_eq!(dod.login_base, "https://login.microsoftonline.us");
        assert_eq!(
            dod.default_scope(),
            "https://outlook-dod.office365.us/SMTP.Send offline_access"
        );
        let cn = Cloud::of(CloudArg::China);
        assert_eq!(cn.login_base, "https://login.chinacloudapi.cn");
        assert_eq!(
            cn.default_scope(),
            "https://partner.outlook.cn/SMTP.Send offline_access"
        );
    }

    #[test]
    fn default_token_endpoints_pass_the_trust_rule() {
        use common::providers::is_builtin_token_endpoint;
        let d = EndpointOverrides::default();
        assert!(is_builtin_token_endpoint(
            &Endpoints::google(&d).unwrap().token
        ));
        for cloud in [
            CloudArg::Public,
            CloudArg::Usgov,
            CloudArg::UsgovDod,
            CloudArg::China,
        ] {
            for tenant in ["common", "consumers", "contoso.onmicrosoft.com"] {
                let e = Endpoints::microsoft(Cloud::of(cloud).login_base, tenant, &d).unwrap();
                assert!(is_builtin_token_endpoint(&e.token), "{}", e.token);
            }
        }
    }

    #[test]
    fn microsoft_endpoints() {
        let e = Endpoints::microsoft(
            "https://login.microsoftonline.com/",
            "consumers",
            &EndpointOverrides::default(),
        )
        .unwrap();
        assert_eq!(
            e.token,
            "https://login.microsoftonline.com/consumers/oauth2/v2.0/token"
        );
        assert_eq!(
            e.device.as_deref(),
            Some("https://login.microsoftonline.com/consumers/oauth2/v2.0/devicecode")
        );
        assert_eq!(
            e.authorize,
            "https://login.microsoftonline.com/consumers/oauth2/v2.0/authorize"
        );
        assert_eq!(
            e.native_client_redirect.as_deref(),
            Some("https://login.microsoftonline.com/common/oauth2/nativeclient")
        );
        let o = EndpointOverrides {
            token: Some("https://127.0.0.1:9/t".into()),
            ..Default::default()
        };
        let e =
            Endpoints::microsoft("https://login.microsoftonline.us", "contoso.com", &o).unwrap();
        assert_eq!(e.token, "https://127.0.0.1:9/t");
        assert!(e
            .authorize
            .starts_with("https://login.microsoftonline.us/contoso.com/"));
    }

    #[test]
    fn bad_inputs_refused() {
        let d = EndpointOverrides::default();
        assert!(Endpoints::microsoft("http://login.microsoftonline.com", "common", &d).is_err());
        assert!(Endpoints::microsoft("https://x", "../evil", &d).is_err());
        assert!(Endpoints::microsoft("https://x", "a/b", &d).is_err());
        assert!(Endpoints::microsoft("https://x", "", &d).is_err());
        assert!(Endpoints::microsoft("https:///path", "common", &d).is_err());
        let o = EndpointOverrides {
            authorize: Some("http://accounts.example/auth".into()),
            ..Default::default()
        };
        assert!(Endpoints::google(&o).is_err());
        let g = Endpoints::google(&d).unwrap();
        assert_eq!(g.token, "https://accounts.google.com/o/oauth2/token");
    }

    #[test]
    fn offline_access_added_once() {
        assert_eq!(
            with_offline_access("https://outlook.office.com/SMTP.Send"),
            "https://outlook.office.com/SMTP.Send offline_access"
        );
        assert_eq!(with_offline_access("a offline_access"), "a offline_access");
    }
}
