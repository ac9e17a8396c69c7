//! The token file: never replaced without --overwrite-existing-token;
//! replaced with it, keeping every other field, the owner and the mode.

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use support::*;

const OLD: &str = r#"{
    "refresh_token": "old-dead-refresh-token",
    "access_token": "old-access-token",
    "expiry": "5",
    "user": "alice@example.com",
    "client_id": "per-token-client-id",
    "token_endpoint": "https://login.microsoftonline.com/contoso/oauth2/v2.0/token",
    "x-unknown": {"kept": [1, 2]}
}"#;

fn device_args(fake: &Fake, out: &std::path::Path, overwrite: bool) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "get-token".into(),
        "outlook".into(),
        out.display().to_string(),
    ];
    args.extend(fake.outlook_args());
    if overwrite {
        args.push("--overwrite-existing-token".into());
    }
    args
}

fn public() -> Behaviour {
    Behaviour {
        client_secret: None,
        device: DeviceScript::ApproveAfter(0),
        ..Default::default()
    }
}

#[test]
fn existing_file_is_never_replaced_without_the_flag() {
    let fake = Fake::start(public());
    let out = fake.dir.path().join("tok");
    std::fs::write(&out, OLD).unwrap();
    let fin = run(&device_args(&fake, &out, false), "");
    assert!(!fin.status.success());
    assert!(fin.stderr.contains("already exists"), "{}", fin.all());
    assert!(
        fin.stderr.contains("--overwrite-existing-token"),
        "{}",
        fin.all()
    );
    assert_eq!(std::fs::read_to_string(&out).unwrap(), OLD);
    // Refused before anything was asked of the provider.
    assert!(fake.seen().is_empty());
}

#[test]
fn overwrite_keeps_other_fields_owner_and_mode() {
    let fake = Fake::start(public());
    let out = fake.dir.path().join("tok");
    std::fs::write(&out, OLD).unwrap();
    std::fs::set_permissions(&out, std::fs::Permissions::from_mode(0o644)).unwrap();
    // As root, give the file to another user: the replacement must keep it.
    let root = nix::unistd::geteuid().is_root();
    if root {
        std::os::unix::fs::chown(&out, Some(65534), Some(65534)).unwrap();
    }
    let before = std::fs::metadata(&out).unwrap();
    let fin = run(&device_args(&fake, &out, true), "");
    assert!(fin.status.success(), "{}", fin.all());
    assert!(fin.stderr.contains("Tokens replaced in"), "{}", fin.all());

    let after = std::fs::metadata(&out).unwrap();
    assert_ne!(
        before.ino(),
        after.ino(),
        "not replaced atomically by a new file"
    );
    assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
    if root {
        assert_eq!(after.uid(), 65534);
    }
    // Group read kept, world read dropped.
    assert_eq!(after.mode() & 0o7777, 0o640);

    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&out).unwrap()).unwrap();
    assert_eq!(v["refresh_token"], REFRESH_TOKEN);
    assert_eq!(v["access_token"], ACCESS_TOKEN);
    assert!(v["expiry"].as_str().unwrap().parse::<i64>().unwrap() > 5);
    assert_eq!(v["user"], "alice@example.com");
    assert_eq!(v["client_id"], "per-token-client-id");
    assert_eq!(
        v["token_endpoint"],
        "https://login.microsoftonline.com/contoso/oauth2/v2.0/token"
    );
    assert_eq!(v["x-unknown"]["kept"][1], 2);
    let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
    assert_eq!(
        keys,
        [
            "refresh_token",
            "access_token",
            "expiry",
            "user",
            "client_id",
            "token_endpoint",
            "x-unknown"
        ],
        "field order changed"
    );
    let mut secrets = fake.secrets();
    secrets.push("old-dead-refresh-token".into());
    secrets.push("old-access-token".into());
    assert_no_secrets(&fin.all(), &secrets);
}

#[test]
fn overwrite_of_a_missing_file_creates_it() {
    let fake = Fake::start(public());
    let out = fake.dir.path().join("new");
    let fin = run(&device_args(&fake, &out, true), "");
    assert!(fin.status.success(), "{}", fin.all());
    assert!(fin.stderr.contains("Tokens written to"), "{}", fin.all());
    assert_eq!(mode(&out), 0o600);
}

#[test]
fn missing_directory_fails_before_sign_in() {
    let fake = Fake::start(public());
    let out = fake.dir.path().join("no/such/dir/tok");
    let fin = run(&device_args(&fake, &out, false), "");
    assert!(!fin.status.success());
    assert!(fin.stderr.contains("does not exist"), "{}", fin.all());
    assert!(fin.stderr.contains("mkdir -p"), "{}", fin.all());
    assert!(fake.seen().is_empty());
}

#[test]
fn symlink_output_is_refused() {
    let fake = Fake::start(public());
    let target = fake.dir.path().join("real");
    std::fs::write(&target, OLD).unwrap();
    let link = fake.dir.path().join("link");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let fin = run(&device_args(&fake, &link, true), "");
    assert!(!fin.status.success());
    assert!(fin.stderr.contains("symbolic link"), "{}", fin.all());
    assert_eq!(std::fs::read_to_string(&target).unwrap(), OLD);
    assert!(fake.seen().is_empty());
}
