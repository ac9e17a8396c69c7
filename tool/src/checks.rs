//! `test-config` and `test-token-refresh`, with the C++ tool's output
//! contract: diagnostics on stderr prefixed `sasl-xoauth2: `, then one
//! verdict line on stdout ("Config check passed." / "Config check failed.",
//! "Token refresh succeeded." / "Token refresh failed."), exit status 0 or 1.

use crate::explain::{self, Stage};
use crate::oauth::ProviderError;
use crate::providers::Provider;
use common::config::nearest_known_key;
use common::{Config, Settings, TokenFile};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// `--config-file`, else `$SASL_XOAUTH2_CONFIG`, else the default path.
/// (The tool is not setuid, so the environment may choose.)
pub fn config_path(arg: Option<&Path>) -> PathBuf {
    arg.map(Path::to_path_buf)
        .unwrap_or_else(|| common::config::config_path(false, std::env::var_os(common::CONFIG_ENV)))
}

/// Things worth knowing about a config that loads. Pure.
pub fn config_warnings(c: &Config) -> Vec<String> {
    let mut w = Vec::new();
    for k in &c.unknown_keys {
        match nearest_known_key(k) {
            Some(near) => w.push(format!(
                "unknown key \"{k}\" is ignored; did you mean \"{near}\"?"
            )),
            None => w.push(format!("unknown key \"{k}\" is ignored")),
        }
    }
    if c.client_id.as_deref().is_none_or(str::is_empty) {
        w.push("no client_id: every token file must then set its own \"client_id\"".to_string());
    }
    if let Some(e) = &c.token_endpoint {
        if !e.starts_with("https://") {
            w.push(format!(
                "token_endpoint {e:?} is not an https:// URL; the refresh will refuse it"
            ));
        }
    }
    if c.ca_bundle_file.is_some() && c.ca_certs_dir.is_some() {
        w.push("both ca_bundle_file and ca_certs_dir are set; set only one".to_string());
    }
    w
}

/// Load the config and print the C++-style verdict line. `None` on failure
/// (already reported).
fn checked_config(arg: Option<&Path>) -> Option<Config> {
    let path = config_path(arg);
    match Config::load(&path) {
        Ok(c) => {
            for w in config_warnings(&c) {
                eprintln!("sasl-xoauth2: warning: {w}");
            }
            println!("Config check passed.");
            Some(c)
        }
        Err(e) => {
            eprintln!("sasl-xoauth2: {e}");
            println!("Config check failed.");
            None
        }
    }
}

pub fn test_config(arg: Option<&Path>) -> ExitCode {
    match checked_config(arg) {
        Some(_) => ExitCode::SUCCESS,
        None => ExitCode::FAILURE,
    }
}

pub fn test_token_refresh(token_path: &Path, config_arg: Option<&Path>) -> ExitCode {
    let Some(config) = checked_config(config_arg) else {
        return ExitCode::FAILURE;
    };
    let token = match TokenFile::load(token_path) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("sasl-xoauth2: {e}");
            println!("Failed to read token.");
            return ExitCode::FAILURE;
        }
    };
    match refresh_once(config, &token, token_path) {
        Ok(detail) => {
            eprintln!("sasl-xoauth2: {detail}");
            println!("Token refresh succeeded.");
            ExitCode::SUCCESS
        }
        Err(reason) => {
            eprintln!("sasl-xoauth2: {reason}");
            println!("Token refresh failed.");
            ExitCode::FAILURE
        }
    }
}

/// One refresh request with the token file's settings, made by the
/// helper's own code (`refresher::request_without_storing`: same body,
/// trust, route, retry, time budget and trust rule, as the token file's
/// owner and in the helper's sandbox), without the lock, and never writing
/// the file. `Ok` holds a one-line summary (fingerprints
/// only), `Err` the reason with its fix.
fn refresh_once(config: Config, token: &TokenFile, path: &Path) -> Result<String, String> {
    use refresher::{Failure, ResponseError};

    // The trust rule refuses (inside request_without_storing) before
    // anything is sent; the endpoint here only picks the wording.
    let endpoint = Settings::resolve(&config, token)
        .map(|s| s.token_endpoint)
        .unwrap_or_default();
    let loaded = refresher::Loaded::from_config(config);
    match refresher::request_without_storing(&loaded, path, token) {
        Ok(g) => {
            let mut s = format!(
                "the endpoint issued a new access token ({}, expires in {} s); {} was not changed",
                g.access_token.fingerprint(),
                g.expires_in,
                path.display()
            );
            if g.refresh_token.is_some() {
                s.push_str(
                    "; the provider also sent a new refresh token, which this test does not \
                     keep: run `sasl-xoauth2-refresh --force` on the file now, in case the \
                     provider has invalidated the old one",
                );
            }
            Ok(s)
        }
        Err(Failure::Provider(p)) => match &p.err {
            ResponseError::OAuth {
                status,
                error,
                description,
                aadsts,
                ..
            } => {
                let provider = if endpoint.contains("google") {
                    Provider::Google
                } else {
                    Provider::Microsoft
                };
                let e = ProviderError {
                    status: *status,
                    aadsts: *aadsts,
                    error: error.clone(),
                    description: description.clone(),
                };
                Err(format!(
                    "{}: {}",
                    p.host,
                    explain::render(provider, Stage::Refresh, &e)
                ))
            }
            _ => Err(Failure::Provider(p).to_string()),
        },
        Err(other) => Err(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warnings() {
        let c = Config::parse(
            br#"{"client_secrets":"x","token_endpoint":"http://plain","ca_bundle_file":"/a","ca_certs_dir":"/b"}"#,
            Path::new("/c"),
        )
        .unwrap();
        let w = config_warnings(&c).join("\n");
        assert!(w.contains("did you mean \"client_secret\""), "{w}");
        assert!(w.contains("no client_id"), "{w}");
        assert!(w.contains("not an https"), "{w}");
        assert!(w.contains("set only one"), "{w}");
        let c =
            Config::parse(br#"{"client_id":"a","client_secret":"b"}"#, Path::new("/c")).unwrap();
        assert!(config_warnings(&c).is_empty());
    }

    #[test]
    fn path_choice() {
        assert_eq!(config_path(Some(Path::new("/x"))), PathBuf::from("/x"));
    }
}
