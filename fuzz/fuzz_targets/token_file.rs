//! Token files (written by the mail user, read by the plugin inside smtp and
//! by the helper): `TokenFile::parse`, the helper's rewrite after a refresh
//! (`refreshed`) and the tool's rewrite after get-token (`authorised`);
//! the split-secrets layout's `split_token`, secrets file and
//! `client_secret_file` parsers.
//!
//! Invariants: no panic; errors never quote the file; Debug shows no
//! secret; a file that parses is rewritten to one that parses to the same
//! values, keeps every other field as it was, and writes expiry as a string.
#![no_main]

use common::secret::Secret;
use common::secrets::{parse_client_secret, split_token, SecretsFile};
use common::token::{authorised, TokenFile};
use fuzzkit::{assert_no_mark, assert_no_secret, planted_values, ACCESS, REFRESH};
use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use std::path::Path;

const PATH: &str = "/etc/tokens/fuzz@example.com";
const SECRET_KEYS: &[&str] = &["refresh_token", "access_token", "client_secret"];

fn object(bytes: &[u8]) -> Map<String, Value> {
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(m)) => m,
        other => panic!("rewrite is not a JSON object: {other:?}"),
    }
}

/// `m` without the keys a rewrite replaces.
fn others(mut m: Map<String, Value>) -> Map<String, Value> {
    for k in ["access_token", "expiry", "refresh_token"] {
        m.remove(k);
    }
    m
}

fuzz_target!(|data: &[u8]| {
    let path = Path::new(PATH);
    let secrets = planted_values(data, SECRET_KEYS);
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    // Both rewrites must also hold for a large expiry and a rotation.
    let expiry = if data.len().is_multiple_of(2) {
        i64::MAX
    } else {
        data.len() as i64 * 1_000_003
    };
    let rotated = Secret::new(REFRESH);
    let rotate = data.len().is_multiple_of(3);

    // split-secrets: the token file minus its two secret fields, nothing
    // else changed; errors and Debug never show a secret.
    match split_token(data, path) {
        Ok(split) => {
            let mut want = object(data);
            for k in ["refresh_token", "client_secret"] {
                want.remove(k);
            }
            assert_eq!(object(&split.token), want, "split_token changed a field");
            let dbg = format!("{:?} {:?}", split.refresh_token, split.client_secret);
            assert_no_secret("split_token Debug", &dbg, &secrets);
        }
        Err(e) => assert_no_mark("split_token error", &e.to_string()),
    }
    match SecretsFile::parse(data, path) {
        Ok(s) => {
            assert_no_secret("SecretsFile Debug", &format!("{s:?}"), &secrets);
            assert_eq!(SecretsFile::parse(&s.to_json(), path).as_ref(), Ok(&s));
        }
        Err(e) => {
            assert_no_mark("secrets file error", &e.to_string());
            assert_no_mark("secrets file error (Debug)", &format!("{e:?}"));
        }
    }
    if let Err(e) = parse_client_secret(data, path) {
        assert_no_mark("client secret file error", &format!("{e} {e:?}"));
    }

    let t = match TokenFile::parse(data, path) {
        Ok(t) => t,
        Err(e) => {
            assert_no_mark("token file error", &e.to_string());
            assert_no_mark("token file error (Debug)", &format!("{e:?}"));
            // get-token replaces a broken file; the result must be usable
            // as far as the fields it wrote are concerned.
            if let Ok(out) = authorised(Some(data), path, &Secret::new(ACCESS), expiry, &rotated) {
                if let Err(e) = TokenFile::parse(&out, path) {
                    assert!(
                        !matches!(e.field(), Some("refresh_token" | "access_token" | "expiry")),
                        "authorised() wrote a bad {:?}: {e}",
                        e.field()
                    );
                }
            }
            return;
        }
    };
    let dbg = format!("{t:?}");
    let user = t.user.clone().unwrap_or_default();
    for s in &secrets {
        if !user.contains(s) {
            assert_no_secret("TokenFile Debug", &dbg, &[s]);
        }
    }
    let names: Vec<String> = t.field_names().map(str::to_owned).collect();

    let out = t.refreshed(&Secret::new(ACCESS), expiry, rotate.then_some(&rotated));
    let again = TokenFile::parse(&out, path)
        .unwrap_or_else(|e| panic!("refreshed() wrote a file that does not parse: {e}"));
    assert_eq!(
        again.access_token.as_ref().map(Secret::expose),
        Some(ACCESS)
    );
    assert_eq!(again.expiry, expiry);
    let want_rt = if rotate {
        Some(REFRESH)
    } else {
        t.refresh_token.as_ref().map(Secret::expose)
    };
    assert_eq!(again.refresh_token.as_ref().map(Secret::expose), want_rt);
    assert_eq!(again.user, t.user);
    assert_eq!(again.grant, t.grant);
    assert_eq!(
        format!("{:?}", again.overrides),
        format!("{:?}", t.overrides)
    );
    // Field order kept; new fields appended.
    let new_names: Vec<String> = again.field_names().map(str::to_owned).collect();
    assert_eq!(&new_names[..names.len()], &names[..]);
    let written = object(&out);
    assert_eq!(written["expiry"], Value::String(expiry.to_string()));
    assert_eq!(others(written), others(object(data)), "a field was changed");

    // get-token's rewrite of a good file is a good file too.
    let out = authorised(Some(data), path, &Secret::new(ACCESS), expiry, &rotated)
        .unwrap_or_else(|e| panic!("authorised() refused a parseable file: {e}"));
    let again = TokenFile::parse(&out, path)
        .unwrap_or_else(|e| panic!("authorised() wrote a file that does not parse: {e}"));
    assert_eq!(again.expiry, expiry);
    assert_eq!(
        again.refresh_token.as_ref().map(Secret::expose),
        Some(REFRESH)
    );
    assert_eq!(others(object(&out)), others(object(data)));
});
