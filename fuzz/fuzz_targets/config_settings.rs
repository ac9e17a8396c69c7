//! The config file and its merge with a token file's overrides, as the
//! helper does before a refresh: `Config::parse`, `TokenFile::parse`,
//! `Settings::resolve` (with the trust rule), the token request body
//! (`oauth::form_body`), the endpoint and proxy URLs
//! (`http::Endpoint::parse`, `ProxySpec::parse`) and the refresh decision
//! (`policy::freshness`).
//!
//! Input: config bytes, a NUL, token file bytes.
//!
//! Invariants: no panic; errors never quote the files' secrets (values
//! shown on purpose, such as an endpoint, may hold anything); Debug shows
//! no secret; a proxy error is static text; the form body decodes back to
//! exactly the merged settings; the plugin's shortcut
//! `Settings::refresh_window` agrees with the full merge.
#![no_main]

use common::policy::{freshness, Freshness};
use common::{urlenc, Config, Settings, TokenFile};
use fuzzkit::{assert_no_mark, assert_no_secret, planted_values, split};
use libfuzzer_sys::fuzz_target;
use refresher::{form_body, Endpoint, ProxySpec};
use std::path::Path;

const SECRET_KEYS: &[&str] = &["refresh_token", "access_token", "client_secret"];

fuzz_target!(|data: &[u8]| {
    let (config_bytes, token_bytes) = split(data, 0);
    let config = match Config::parse(config_bytes, Path::new("/etc/sasl-xoauth2.conf")) {
        Ok(c) => c,
        Err(e) => {
            assert_no_mark("config error", &e.to_string());
            assert_no_mark("config error (Debug)", &format!("{e:?}"));
            return;
        }
    };
    let mut secrets = planted_values(config_bytes, SECRET_KEYS);
    secrets.extend(planted_values(token_bytes, SECRET_KEYS));
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    let _ = (
        config.refresh_helper(),
        config.refresh_timeout(),
        config.prefetch_window(),
    );
    for k in &config.unknown_keys {
        let _ = common::config::nearest_known_key(k);
    }
    let token = match TokenFile::parse(token_bytes, Path::new("/etc/tokens/t")) {
        Ok(t) => t,
        Err(e) => {
            assert_no_mark("token file error", &e.to_string());
            return;
        }
    };
    // Values shown on purpose (not secrets): a secret planted in one of
    // them is not a leak.
    let o = &token.overrides;
    let public: Vec<&String> = [
        &token.user,
        &o.client_id,
        &o.token_endpoint,
        &o.scope,
        &o.proxy,
    ]
    .into_iter()
    .chain([&o.ca_bundle_file, &o.ca_certs_dir])
    .chain([
        &config.client_id,
        &config.token_endpoint,
        &config.scope,
        &config.proxy,
    ])
    .chain([
        &config.ca_bundle_file,
        &config.ca_certs_dir,
        &config.refresh_helper,
    ])
    .flatten()
    .chain(config.unknown_keys.iter())
    .filter(|v| !v.is_empty())
    .collect();
    let check = |what: &str, text: &str| {
        let mut text = text.to_string();
        for v in &public {
            text = text.replace(&format!("{v:?}"), "").replace(v.as_str(), "");
        }
        assert_no_secret(what, &text, &secrets);
    };
    let s = match Settings::resolve(&config, &token) {
        Ok(s) => s,
        Err(refused) => {
            check("trust-rule refusal", &refused.to_string());
            return;
        }
    };
    assert_eq!(Settings::refresh_window(&config, &token), s.refresh_window);
    check("Config/Settings Debug", &format!("{config:?} {s:?}"));

    for now in [0, 1_700_000_000, i64::MAX] {
        let f = freshness(
            token.access_token.is_some(),
            token.expiry,
            now,
            s.refresh_window,
            config.prefetch_window(),
        );
        if token.access_token.is_none() {
            assert_eq!(f, Freshness::Expired);
        }
    }

    match form_body(&s, token.refresh_token.as_ref()) {
        Err(e) => check("request error", &e.to_string()),
        Ok(body) => {
            let pairs = urlenc::parse_query(&body);
            let get = |k: &str| urlenc::single(&pairs, k).expect("no repeated field");
            assert_eq!(get("client_id"), Some(s.client_id.as_str()));
            let secret = s.client_secret.expose();
            assert_eq!(get("client_secret"), (!secret.is_empty()).then_some(secret));
            assert_eq!(get("scope"), s.scope.as_deref().filter(|x| !x.is_empty()));
            match s.grant {
                common::token::Grant::RefreshToken => {
                    assert_eq!(get("grant_type"), Some("refresh_token"));
                    assert_eq!(
                        get("refresh_token"),
                        token.refresh_token.as_ref().map(|r| r.expose())
                    );
                }
                common::token::Grant::ClientCredentials => {
                    assert_eq!(get("grant_type"), Some("client_credentials"));
                    assert_eq!(get("refresh_token"), None);
                }
            }
            let n = 2
                + usize::from(!secret.is_empty())
                + usize::from(s.grant == common::token::Grant::RefreshToken)
                + usize::from(s.scope.as_deref().is_some_and(|x| !x.is_empty()));
            assert_eq!(pairs.len(), n, "unexpected fields in {pairs:?}");
        }
    }

    if let Err(e) = Endpoint::parse(&s.token_endpoint).map_err(|e| e.to_string()) {
        check("endpoint error", &e);
        if s.token_endpoint.contains('@') {
            assert!(
                !e.contains(&s.token_endpoint),
                "endpoint error repeats userinfo: {e}"
            );
        }
    }
    if let Some(p) = &s.proxy {
        if let Err(e) = ProxySpec::parse(p) {
            check("proxy error", &e.to_string());
            // Static text cannot repeat the URL (or its password); a
            // substring test could not tell "http://" from the fix text.
            assert!(
                matches!(e.what, std::borrow::Cow::Borrowed(_)),
                "proxy error is built from the input: {e}"
            );
        }
    }
});
