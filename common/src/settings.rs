//! The values one refresh uses: config defaults, then the config file, then
//! the token file's overrides.

use crate::config::{Config, DEFAULT_REFRESH_WINDOW, DEFAULT_TOKEN_ENDPOINT};
use crate::secret::Secret;
use crate::token::{Grant, TokenFile};

/// Effective settings for one token file.
#[derive(Debug, Clone)]
pub struct Settings {
    pub client_id: String,
    /// Empty for public clients (Microsoft device flow); then not sent.
    pub client_secret: Secret,
    pub token_endpoint: String,
    pub scope: Option<String>,
    pub proxy: Option<String>,
    pub ca_bundle_file: Option<String>,
    pub ca_certs_dir: Option<String>,
    pub refresh_window: i64,
    pub grant: Grant,
}

impl Settings {
    /// Just the effective `refresh_window`, without building the rest
    /// (the plugin needs only this, on every authentication).
    pub fn refresh_window(config: &Config, token: &TokenFile) -> i64 {
        token
            .overrides
            .refresh_window
            .or(config.refresh_window)
            .unwrap_or(DEFAULT_REFRESH_WINDOW)
    }

    pub fn resolve(config: &Config, token: &TokenFile) -> Settings {
        let o = &token.overrides;
        fn pick<T: Clone>(over: &Option<T>, base: &Option<T>) -> Option<T> {
            over.clone().or_else(|| base.clone())
        }
        Settings {
            client_id: pick(&o.client_id, &config.client_id).unwrap_or_default(),
            client_secret: pick(&o.client_secret, &config.client_secret)
                .unwrap_or_else(|| Secret::new("")),
            token_endpoint: pick(&o.token_endpoint, &config.token_endpoint)
                .unwrap_or_else(|| DEFAULT_TOKEN_ENDPOINT.to_string()),
            scope: pick(&o.scope, &config.scope),
            proxy: pick(&o.proxy, &config.proxy),
            ca_bundle_file: pick(&o.ca_bundle_file, &config.ca_bundle_file),
            ca_certs_dir: pick(&o.ca_certs_dir, &config.ca_certs_dir),
            refresh_window: pick(&o.refresh_window, &config.refresh_window)
                .unwrap_or(DEFAULT_REFRESH_WINDOW),
            grant: token.grant,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn token_overrides_win_and_defaults_apply() {
        let c = Config::parse(
            br#"{"client_id":"cfg-id","client_secret":"cfg-s","refresh_window":30}"#,
            Path::new("/c"),
        )
        .unwrap();
        let t = TokenFile::parse(
            br#"{"refresh_token":"r","client_id":"tok-id"}"#,
            Path::new("/t"),
        )
        .unwrap();
        let s = Settings::resolve(&c, &t);
        assert_eq!(s.client_id, "tok-id");
        assert_eq!(s.client_secret.expose(), "cfg-s");
        assert_eq!(s.refresh_window, 30);
        assert_eq!(s.token_endpoint, DEFAULT_TOKEN_ENDPOINT);
        let s = Settings::resolve(&Config::default(), &t);
        assert_eq!(s.refresh_window, 10);
        assert!(s.client_secret.is_empty());
    }
}
