//! `test-config` and `test-token-refresh`, with the C++ tool's output
//! contract: diagnostics on stderr prefixed `sasl-xoauth2: `, then one
//! verdict line on stdout ("Config check passed." / "Config check failed.",
//! "Token refresh succeeded." / "Token refresh failed."), exit status 0 or 1.

use crate::explain::{self, Stage};
use crate::oauth::ProviderError;
use crate::providers::Provider;
use common::config::nearest_known_key;
use common::{Config, Secret, Settings, TokenFile};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// `--config-file`, else `$SASL_XOAUTH2_CONFIG`, else the default path.
/// (The tool is not setuid, so the environment may choose.)
pub fn config_path(arg: Option<&Path>) -> PathBuf {
    if let Some(p) = arg {
        return p.to_path_buf();
    }
    match std::env::var_os(common::CONFIG_ENV) {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(common::DEFAULT_CONFIG_PATH),
    }
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
    match refresh_once(&config, &token, token_path) {
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

/// One refresh with the token file's settings, through the helper's own
/// code (the `refresher` library: request body, HTTPS transport, response
/// parsing); the file is never written and no secret is returned. `Ok`
/// holds a one-line summary (fingerprints only), `Err` the reason with its
/// fix.
//
// CALL SITE: the refresher library exposes its building blocks but not yet
// one "refresh without storing" function; the few lines of orchestration
// below (no lock, no sandbox, no retry, nothing written) should become a
// single call to it once it exists.
fn refresh_once(config: &Config, token: &TokenFile, path: &Path) -> Result<String, String> {
    use refresher::http::{Client, Endpoint, ProxySpec, Route};
    use refresher::oauth::{self, ResponseError};

    let settings = Settings::resolve(config, token);
    let body = oauth::form_body(&settings, token.refresh_token.as_ref())
        .map_err(|e| format!("{e} (in {} or {})", config.path.display(), path.display()))?;
    let endpoint = Endpoint::parse(&settings.token_endpoint).map_err(|e| {
        format!(
            "{e} (set in {} or {})",
            config.path.display(),
            path.display()
        )
    })?;
    let proxy = match settings.proxy.as_deref().filter(|p| !p.is_empty()) {
        Some(p) => Some(ProxySpec::parse(p)?),
        None => None,
    };
    let route = Route { endpoint, proxy };
    let trust = trust(&settings)?;
    let host = route.endpoint.display_host();
    let resolved = route
        .resolve()
        .map_err(|e| format!("cannot resolve {}: {e}", route.connect_host().0))?;
    let client = Client::new(&route, resolved, &trust);
    let budget = Duration::from_secs(config.refresh_timeout().max(1));
    let reply = client
        .post_form(&route.endpoint.url, body.as_bytes(), budget)
        .map_err(|e| format!("{host}: {e} (trusting {})", trust.describe()))?;
    let secrets: Vec<&Secret> = [
        token.refresh_token.as_ref(),
        Some(&settings.client_secret),
        token.access_token.as_ref(),
    ]
    .into_iter()
    .flatten()
    .collect();
    match oauth::parse_response(reply.status, &reply.body, &secrets) {
        Ok(g) => {
            let mut s = format!(
                "{host} issued a new access token ({}, expires in {} s); {} was not changed",
                g.access_token.fingerprint(),
                g.expires_in,
                path.display()
            );
            if g.refresh_token.is_some() {
                s.push_str(
                    "; the provider also sent a new refresh token, which this test does not \
                     keep (the helper will store its own on the next refresh)",
                );
            }
            Ok(s)
        }
        Err(ResponseError::OAuth {
            status,
            error,
            description,
        }) => {
            let provider = if settings.token_endpoint.contains("google") {
                Provider::Google
            } else {
                Provider::Microsoft
            };
            let e = ProviderError {
                status,
                aadsts: description.as_deref().and_then(crate::oauth::aadsts_in),
                error,
                description,
            };
            Err(format!(
                "{host}: {}",
                explain::render(provider, Stage::Refresh, &e)
            ))
        }
        Err(other) => Err(format!("{host}: {other}")),
    }
}

/// The CAs the helper would trust: the token file's or config's
/// ca_bundle_file / ca_certs_dir, else the built-in roots.
fn trust(settings: &Settings) -> Result<refresher::http::Trust, String> {
    use refresher::http::Trust;
    let file = settings.ca_bundle_file.as_deref().filter(|f| !f.is_empty());
    let dir = settings.ca_certs_dir.as_deref().filter(|d| !d.is_empty());
    if file.is_none() && dir.is_none() {
        return Ok(Trust::BuiltIn);
    }
    let mut pem = Vec::new();
    let mut sources = Vec::new();
    if let Some(f) = file {
        pem.extend(std::fs::read(f).map_err(|e| format!("ca_bundle_file {f}: {e}"))?);
        sources.push(f.to_string());
    }
    if let Some(d) = dir {
        let mut names: Vec<PathBuf> = std::fs::read_dir(d)
            .map_err(|e| format!("ca_certs_dir {d}: {e}"))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file())
            .collect();
        names.sort();
        for p in names {
            if let Ok(b) = std::fs::read(&p) {
                pem.extend(b);
                pem.push(b'\n');
            }
        }
        sources.push(d.to_string());
    }
    Trust::from_pem(&pem, &sources.join(" + "))
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
