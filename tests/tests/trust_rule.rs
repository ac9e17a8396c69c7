//! The trust rule (common::settings) against the real helper, run as a
//! non-root token owner the way the plugin runs it: what the token file
//! says about where the request goes (token_endpoint, proxy) and whom it
//! trusts (ca_bundle_file, ca_certs_dir) is honoured only as far as the
//! root-owned config allows. A refused override sends nothing.

mod refresher_support;

use refresher_support::*;
use serde_json::{json, Value};
use std::path::Path;
use testkit::provider::FakeProvider;

/// A non-root uid owning the token directory, its files and the helper run.
const OWNER: u32 = 23456;

fn chown(p: &Path) {
    std::os::unix::fs::chown(p, Some(OWNER), Some(OWNER)).unwrap();
}

/// An Env whose token directory belongs to a non-root user who runs the helper.
fn owned_env(name: &str) -> Env {
    let mut env = Env::new(name);
    chown(&env.dir);
    env.as_uid = Some(OWNER);
    env
}

fn write_owned_token(env: &Env, v: &Value) {
    env.write_token(v);
    chown(&env.token);
}

/// Run as the owner; the run must fail with DATAERR, name the file, the key
/// and the config key that would allow it, and leave the file as it was.
fn expect_refused(env: &Env, key: &str, allow: &str) {
    let before = env.token_bytes();
    let run = env.run(&[]);
    run.expect_code(exit::DATAERR).expect_status(&[
        "error: token file ",
        &env.token.display().to_string(),
        &format!("\"{key}\""),
        allow,
        "nothing was sent",
    ]);
    assert_eq!(env.token_bytes(), before, "token file changed: {run:#?}");
    assert!(env.temp_files().is_empty());
    assert_eq!(
        env.provider.requests(),
        0,
        "the config's provider was asked"
    );
}

#[test]
fn token_file_cannot_send_the_secrets_to_another_endpoint() {
    let mut env = owned_env("trust-endpoint");
    // The attacker's endpoint, with its own CA dropped in the token dir.
    let evil = FakeProvider::start();
    let ca = env.dir.join("evil-ca.pem");
    evil.write_ca(&ca).unwrap();
    chown(&ca);
    env.extra_secrets.push(evil.client_secret().to_string());

    let mut tok = env.expired_token();
    tok["token_endpoint"] = json!(evil.url());
    tok["ca_bundle_file"] = json!(ca.display().to_string());
    write_owned_token(&env, &tok);
    expect_refused(&env, "token_endpoint", "allowed_token_endpoints");
    assert_eq!(
        evil.requests(),
        0,
        "the token file's endpoint was contacted"
    );

    // Its CA alone is refused too (the endpoint would be the config's).
    let mut tok = env.expired_token();
    tok["ca_bundle_file"] = json!(ca.display().to_string());
    write_owned_token(&env, &tok);
    expect_refused(&env, "ca_bundle_file", "allow_token_file_ca");
    assert_eq!(evil.requests(), 0);

    // Allow-listed, with the config's client_secret only: still refused.
    env.set_config("allowed_token_endpoints", json!([evil.url()]));
    env.set_config("allow_token_file_ca", json!(true));
    let mut tok = env.expired_token();
    tok["token_endpoint"] = json!(evil.url());
    tok["ca_bundle_file"] = json!(ca.display().to_string());
    write_owned_token(&env, &tok);
    expect_refused(&env, "token_endpoint", "client_secret");
    assert_eq!(evil.requests(), 0);

    // Allow-listed with the account's own client: works, against that endpoint.
    let tok = json!({
        "refresh_token": evil.issue_refresh_token(),
        "expiry": "0",
        "client_id": evil.client_id(),
        "client_secret": evil.client_secret(),
        "token_endpoint": evil.url(),
        "ca_bundle_file": ca.display().to_string(),
    });
    write_owned_token(&env, &tok);
    env.run(&[])
        .expect_code(exit::OK)
        .expect_status(&["ok: refreshed "]);
    assert_eq!(evil.requests(), 1);
    assert_eq!(env.provider.requests(), 0);
    let rec = evil.recorded();
    assert_eq!(rec[0].field("client_secret"), Some(evil.client_secret()));
    assert_eq!(env.token_meta().0, OWNER);
}

#[test]
fn builtin_provider_endpoints_need_no_config_change() {
    // Microsoft tenant endpoints and Google pass the rule; nothing is
    // reachable here, so the run gets as far as name resolution or the
    // network, i.e. past the rule.
    let env = owned_env("trust-builtin");
    for ep in [
        "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token",
        "https://accounts.google.com/o/oauth2/token",
    ] {
        let mut tok = env.expired_token();
        tok["token_endpoint"] = json!(ep);
        write_owned_token(&env, &tok);
        let run = env.run(&[]);
        assert!(
            !run.stdout.contains("refused") && run.code != exit::DATAERR,
            "{ep}: {run:#?}"
        );
    }
}

#[test]
fn token_file_proxy_needs_the_config_opt_in() {
    let proxy = ConnectProxy::start();
    let mut env = owned_env("trust-proxy");
    let mut tok = env.expired_token();
    tok["proxy"] = json!(format!("http://127.0.0.1:{}", proxy.port));
    write_owned_token(&env, &tok);
    expect_refused(&env, "proxy", "allow_token_file_proxy");
    assert!(proxy.seen.lock().unwrap().is_empty(), "the proxy was used");

    env.set_config("allow_token_file_proxy", json!(true));
    env.run(&[]).expect_code(exit::OK);
    assert_eq!(proxy.seen.lock().unwrap().len(), 1);
    assert_eq!(env.provider.requests(), 1);
}

#[test]
fn token_file_ca_dir_needs_the_config_opt_in() {
    let mut env = owned_env("trust-cadir");
    let dir = env.dir.join("cas");
    std::fs::create_dir(&dir).unwrap();
    // Hash-named, as ca_certs_dir requires; the hash value itself is not
    // checked by the lookup.
    env.provider.write_ca(&dir.join("0badc0de.0")).unwrap();
    chown(&dir);
    let mut tok = env.expired_token();
    tok["ca_certs_dir"] = json!(dir.display().to_string());
    write_owned_token(&env, &tok);
    expect_refused(&env, "ca_certs_dir", "allow_token_file_ca");

    env.set_config("allow_token_file_ca", json!(true));
    env.ca_pem.clear(); // the token's directory must be what is trusted
    env.run(&[]).expect_code(exit::OK);
    assert_eq!(env.provider.requests(), 1);
}
