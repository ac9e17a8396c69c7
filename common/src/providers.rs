//! The token endpoints of the providers sasl-xoauth2 knows: the one list
//! the tool builds its URLs from and the trust rule ([`crate::settings`])
//! accepts in a token file without the config naming them. Pure.

/// Google's token endpoint as the C++ tool and the config default spell it.
pub const GOOGLE_TOKEN_ENDPOINT: &str = "https://accounts.google.com/o/oauth2/token";

/// Every spelling of Google's token endpoint Google documents.
pub const GOOGLE_TOKEN_ENDPOINTS: &[&str] = &[
    GOOGLE_TOKEN_ENDPOINT,
    "https://oauth2.googleapis.com/token",
    "https://www.googleapis.com/oauth2/v4/token",
];

/// Microsoft's public cloud login host.
pub const MICROSOFT_LOGIN_PUBLIC: &str = "https://login.microsoftonline.com";
/// US Government (GCC High and DoD share it).
pub const MICROSOFT_LOGIN_USGOV: &str = "https://login.microsoftonline.us";
/// Azure China (21Vianet).
pub const MICROSOFT_LOGIN_CHINA: &str = "https://login.chinacloudapi.cn";

/// The Microsoft clouds' login hosts.
pub const MICROSOFT_LOGIN_BASES: &[&str] = &[
    MICROSOFT_LOGIN_PUBLIC,
    MICROSOFT_LOGIN_USGOV,
    MICROSOFT_LOGIN_CHINA,
];

/// Whether `tenant` may stand in a Microsoft URL path: tenant names, GUIDs
/// and domains only (no `/`, `@`, `?`, `#`, `..`).
pub fn is_tenant(tenant: &str) -> bool {
    !tenant.is_empty()
        && tenant.len() <= 256
        && !tenant.starts_with('.')
        && tenant
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b))
}

/// Whether `url` is a built-in provider token endpoint: one of Google's, or
/// `<Microsoft login host>/<tenant>/oauth2/v2.0/token` (or the v1
/// `/<tenant>/oauth2/token`) in one of the clouds above. Exact match: no
/// port, user info, query or other spelling of the host.
pub fn is_builtin_token_endpoint(url: &str) -> bool {
    if GOOGLE_TOKEN_ENDPOINTS.contains(&url) {
        return true;
    }
    MICROSOFT_LOGIN_BASES.iter().any(|base| {
        let Some(rest) = url.strip_prefix(base).and_then(|r| r.strip_prefix('/')) else {
            return false;
        };
        let Some((tenant, path)) = rest.split_once('/') else {
            return false;
        };
        is_tenant(tenant) && matches!(path, "oauth2/v2.0/token" | "oauth2/token")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_endpoints() {
        for ok in [
            "https://accounts.google.com/o/oauth2/token",
            "https://oauth2.googleapis.com/token",
            "https://login.microsoftonline.com/common/oauth2/v2.0/token",
            "https://login.microsoftonline.com/consumers/oauth2/v2.0/token",
            "https://login.microsoftonline.com/0d1e2f3a-aaaa-bbbb-cccc-1234567890ab/oauth2/v2.0/token",
            "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/token",
            "https://login.microsoftonline.us/contoso.com/oauth2/v2.0/token",
            "https://login.chinacloudapi.cn/organizations/oauth2/v2.0/token",
        ] {
            assert!(is_builtin_token_endpoint(ok), "{ok}");
        }
        for bad in [
            "https://login.microsoftonline.com.evil.example/common/oauth2/v2.0/token",
            "https://login.microsoftonline.com@evil.example/common/oauth2/v2.0/token",
            "https://login.microsoftonline.com:8443/common/oauth2/v2.0/token",
            "https://login.microsoftonline.com/common/oauth2/v2.0/token?x=1",
            "https://login.microsoftonline.com/common/oauth2/v2.0/token/",
            "https://login.microsoftonline.com/../oauth2/v2.0/token",
            "https://login.microsoftonline.com//oauth2/v2.0/token",
            "https://login.microsoftonline.com/a@b/oauth2/v2.0/token",
            "http://login.microsoftonline.com/common/oauth2/v2.0/token",
            "https://accounts.google.com/o/oauth2/token#x",
            "https://accounts.google.com.evil.example/o/oauth2/token",
            "https://127.0.0.1:4443/token",
        ] {
            assert!(!is_builtin_token_endpoint(bad), "{bad}");
        }
    }
}
