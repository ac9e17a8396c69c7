//! The split-secrets layout from the tool's side: `split-secrets` converts
//! a real single-file account (crash-safe, idempotent, owner and mode
//! kept, links refused, under the refresh lock), and `get-token --split`
//! writes the layout from the start, for both providers' flows.

mod support;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use support::*;

const OLD_RT: &str = "1//single-file-refresh-token-a1b2c3";
const OLD_AT: &str = "ya29.single-file-access-token-d4e5";
const TOKEN_CS: &str = "per-account-client-secret-f6a7";

fn single_file() -> String {
    format!(
        r#"{{
    "access_token": "{OLD_AT}",
    "refresh_token": "{OLD_RT}",
    "expiry": "1700000000",
    "user": "alice@example.com",
    "client_id": "per-token-client-id",
    "client_secret": "{TOKEN_CS}",
    "x-unknown": {{"kept": [1, 2]}}
}}"#
    )
}

fn old_secrets() -> Vec<String> {
    vec![OLD_RT.into(), OLD_AT.into(), TOKEN_CS.into()]
}

fn secrets_dir(token: &Path) -> PathBuf {
    token.parent().unwrap().join("secrets")
}

fn secrets_file(token: &Path) -> PathBuf {
    secrets_dir(token).join(token.file_name().unwrap())
}

fn json(p: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()
}

fn keys(v: &serde_json::Value) -> Vec<String> {
    v.as_object().unwrap().keys().cloned().collect()
}

fn names(d: &Path) -> Vec<String> {
    let mut v: Vec<_> = std::fs::read_dir(d)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    v.sort();
    v
}

fn split(token: &Path) -> Finished {
    run(
        &["split-secrets".to_string(), token.display().to_string()],
        "",
    )
}

/// A single-file account in a fresh directory; as root, owned by nobody
/// (65534) so that "owner kept" means something.
fn account(dir: &Path) -> PathBuf {
    let tok = dir.join("alice@example.com");
    std::fs::write(&tok, single_file()).unwrap();
    std::fs::set_permissions(&tok, std::fs::Permissions::from_mode(0o640)).unwrap();
    if nix::unistd::geteuid().is_root() {
        std::os::unix::fs::chown(&tok, Some(65534), Some(65534)).unwrap();
    }
    tok
}

/// The token file after the split: no secret field, every other field as
/// it was, in its order.
fn assert_split_token(tok: &Path) {
    let raw = std::fs::read_to_string(tok).unwrap();
    assert!(!raw.contains(OLD_RT) && !raw.contains(TOKEN_CS), "{raw}");
    let v = json(tok);
    assert_eq!(
        keys(&v),
        ["access_token", "expiry", "user", "client_id", "x-unknown"]
    );
    assert_eq!(v["access_token"], OLD_AT);
    assert_eq!(v["expiry"], "1700000000");
    assert_eq!(v["user"], "alice@example.com");
    assert_eq!(v["x-unknown"]["kept"][1], 2);
}

#[test]
fn split_secrets_converts_a_single_file_account() {
    let d = tempfile::tempdir().unwrap();
    let tok = account(d.path());
    let before = std::fs::metadata(&tok).unwrap();

    let fin = split(&tok);
    assert!(fin.status.success(), "{}", fin.all());
    assert!(fin.stderr.contains("now in"), "{}", fin.all());
    assert_no_secrets(&fin.all(), &old_secrets());

    // The secrets directory and file: 0700 / 0600, the token file's owner.
    let sd = secrets_dir(&tok);
    let sm = std::fs::symlink_metadata(&sd).unwrap();
    assert!(sm.is_dir());
    assert_eq!(sm.mode() & 0o7777, 0o700);
    let sf = secrets_file(&tok);
    let fm = std::fs::symlink_metadata(&sf).unwrap();
    assert!(fm.is_file());
    assert_eq!(fm.mode() & 0o7777, 0o600);
    for m in [&sm, &fm] {
        assert_eq!((m.uid(), m.gid()), (before.uid(), before.gid()));
    }
    let s = json(&sf);
    assert_eq!(keys(&s), ["refresh_token", "client_secret"]);
    assert_eq!(s["refresh_token"], OLD_RT);
    assert_eq!(s["client_secret"], TOKEN_CS);
    let parsed = common::secrets::SecretsFile::load(&sf).unwrap();
    assert_eq!(parsed.refresh_token.expose(), OLD_RT);

    // The token file: replaced (new inode), owner and mode exactly kept.
    assert_split_token(&tok);
    let after = std::fs::metadata(&tok).unwrap();
    assert_ne!(before.ino(), after.ino());
    assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
    assert_eq!(after.mode() & 0o7777, 0o640);

    // No temporary file left, only the refresh lock beside the token.
    assert_eq!(
        names(d.path()),
        [".alice@example.com.lock", "alice@example.com", "secrets"]
    );
    assert_eq!(names(&sd), ["alice@example.com"]);
}

#[test]
fn a_second_run_changes_nothing() {
    let d = tempfile::tempdir().unwrap();
    let tok = account(d.path());
    assert!(split(&tok).status.success());
    let (t1, s1) = (
        std::fs::read(&tok).unwrap(),
        std::fs::read(secrets_file(&tok)).unwrap(),
    );
    let inodes = |p: &Path| std::fs::metadata(p).unwrap().ino();
    let (ti, si) = (inodes(&tok), inodes(&secrets_file(&tok)));

    let fin = split(&tok);
    assert!(fin.status.success(), "{}", fin.all());
    assert!(fin.stderr.contains("nothing to do"), "{}", fin.all());
    assert_eq!(std::fs::read(&tok).unwrap(), t1);
    assert_eq!(std::fs::read(secrets_file(&tok)).unwrap(), s1);
    assert_eq!((inodes(&tok), inodes(&secrets_file(&tok))), (ti, si));
}

#[test]
fn a_run_after_a_crash_between_the_writes_completes() {
    let d = tempfile::tempdir().unwrap();
    let tok = account(d.path());
    let original = std::fs::read(&tok).unwrap();
    let meta = std::fs::metadata(&tok).unwrap();
    // The crash: the secrets file was written, the token file not yet.
    assert!(split(&tok).status.success());
    let secrets = std::fs::read(secrets_file(&tok)).unwrap();
    std::fs::write(&tok, &original).unwrap();
    std::os::unix::fs::chown(&tok, Some(meta.uid()), Some(meta.gid())).unwrap();

    let fin = split(&tok);
    assert!(fin.status.success(), "{}", fin.all());
    assert!(fin.stderr.contains("now in"), "{}", fin.all());
    assert!(!fin.stderr.contains("differed"), "{}", fin.all());
    assert_split_token(&tok);
    assert_eq!(std::fs::read(secrets_file(&tok)).unwrap(), secrets);
    assert_eq!(std::fs::metadata(&tok).unwrap().uid(), meta.uid());
    assert_eq!(mode(&tok), 0o640);
}

#[test]
fn the_secrets_file_refresh_token_wins_over_a_stale_one_in_the_token_file() {
    // A helper rotated the token in the split layout (secrets file first)
    // and was killed before rewriting a token file that an interrupted
    // conversion had left with the old refresh token.
    let d = tempfile::tempdir().unwrap();
    let tok = account(d.path());
    let original = std::fs::read(&tok).unwrap();
    assert!(split(&tok).status.success());
    let rotated = r#"{"refresh_token":"1//rotated-by-the-helper-0099","client_secret":"per-account-client-secret-f6a7"}"#;
    std::fs::write(secrets_file(&tok), rotated).unwrap();
    std::fs::write(&tok, &original).unwrap();
    if nix::unistd::geteuid().is_root() {
        std::os::unix::fs::chown(&tok, Some(65534), Some(65534)).unwrap();
        std::os::unix::fs::chown(secrets_file(&tok), Some(65534), Some(65534)).unwrap();
    }

    let fin = split(&tok);
    assert!(fin.status.success(), "{}", fin.all());
    assert!(fin.stderr.contains("differed"), "{}", fin.all());
    assert_no_secrets(&fin.all(), &old_secrets());
    assert_split_token(&tok);
    assert_eq!(
        std::fs::read_to_string(secrets_file(&tok)).unwrap(),
        rotated
    );
}

#[test]
fn a_client_secret_only_in_the_token_file_is_moved_not_lost() {
    let d = tempfile::tempdir().unwrap();
    let tok = account(d.path());
    let original = std::fs::read(&tok).unwrap();
    assert!(split(&tok).status.success());
    // A secrets file without the client secret, the token file with it.
    std::fs::write(
        secrets_file(&tok),
        format!(r#"{{"refresh_token":"{OLD_RT}"}}"#),
    )
    .unwrap();
    std::fs::write(&tok, &original).unwrap();
    if nix::unistd::geteuid().is_root() {
        std::os::unix::fs::chown(&tok, Some(65534), Some(65534)).unwrap();
        std::os::unix::fs::chown(secrets_file(&tok), Some(65534), Some(65534)).unwrap();
    }
    let fin = split(&tok);
    assert!(fin.status.success(), "{}", fin.all());
    assert_split_token(&tok);
    let s = json(&secrets_file(&tok));
    assert_eq!(s["refresh_token"], OLD_RT);
    assert_eq!(s["client_secret"], TOKEN_CS);
    assert_eq!(mode(&secrets_file(&tok)), 0o600);
}

#[test]
fn links_are_refused_and_nothing_changes() {
    let d = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();

    // A symlinked token file.
    let real = account(d.path());
    let link = d.path().join("link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let fin = split(&link);
    assert!(!fin.status.success());
    assert!(fin.stderr.contains("symbolic link"), "{}", fin.all());
    assert_eq!(std::fs::read_to_string(&real).unwrap(), single_file());
    assert!(!secrets_dir(&real).exists());
    assert!(!d.path().join(".link.lock").exists());

    // A symlinked secrets directory: the secrets must not land elsewhere.
    std::os::unix::fs::symlink(elsewhere.path(), secrets_dir(&real)).unwrap();
    let fin = split(&real);
    assert!(!fin.status.success());
    assert!(fin.stderr.contains("symbolic link"), "{}", fin.all());
    assert_eq!(std::fs::read_to_string(&real).unwrap(), single_file());
    assert!(names(elsewhere.path()).is_empty());
    assert_no_secrets(&fin.all(), &old_secrets());

    // A symlinked secrets file.
    std::fs::remove_file(secrets_dir(&real)).unwrap();
    std::fs::create_dir(secrets_dir(&real)).unwrap();
    std::fs::set_permissions(secrets_dir(&real), std::fs::Permissions::from_mode(0o700)).unwrap();
    let target = elsewhere.path().join("target");
    std::fs::write(&target, format!(r#"{{"refresh_token":"{OLD_RT}"}}"#)).unwrap();
    std::os::unix::fs::symlink(&target, secrets_file(&real)).unwrap();
    if nix::unistd::geteuid().is_root() {
        nix::unistd::fchownat(
            nix::fcntl::AT_FDCWD,
            &secrets_dir(&real),
            Some(65534.into()),
            Some(65534.into()),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .unwrap();
    }
    let fin = split(&real);
    assert!(!fin.status.success());
    assert!(fin.stderr.contains("symbolic link"), "{}", fin.all());
    assert_eq!(std::fs::read_to_string(&real).unwrap(), single_file());
}

#[test]
fn a_secrets_directory_others_may_write_or_of_another_owner_is_refused() {
    let d = tempfile::tempdir().unwrap();
    let tok = account(d.path());
    std::fs::create_dir(secrets_dir(&tok)).unwrap();
    let owner = std::fs::metadata(&tok).unwrap();
    std::os::unix::fs::chown(secrets_dir(&tok), Some(owner.uid()), Some(owner.gid())).unwrap();
    std::fs::set_permissions(secrets_dir(&tok), std::fs::Permissions::from_mode(0o777)).unwrap();
    let fin = split(&tok);
    assert!(!fin.status.success());
    assert!(fin.stderr.contains("writable by others"), "{}", fin.all());
    assert!(fin.stderr.contains("chmod 700"), "{}", fin.all());
    assert_eq!(std::fs::read_to_string(&tok).unwrap(), single_file());
    assert!(names(&secrets_dir(&tok)).is_empty());

    if nix::unistd::geteuid().is_root() {
        // Root converting nobody's account into a directory root owns.
        std::fs::set_permissions(secrets_dir(&tok), std::fs::Permissions::from_mode(0o700))
            .unwrap();
        std::os::unix::fs::chown(secrets_dir(&tok), Some(0), Some(0)).unwrap();
        let fin = split(&tok);
        assert!(!fin.status.success());
        assert!(fin.stderr.contains("belongs to uid 0"), "{}", fin.all());
        assert_eq!(std::fs::read_to_string(&tok).unwrap(), single_file());
        assert!(names(&secrets_dir(&tok)).is_empty());
    }
}

#[test]
fn nothing_to_split_is_a_clear_error() {
    let d = tempfile::tempdir().unwrap();
    let tok = d.path().join("app");
    let body = r#"{"grant_type":"client_credentials","client_id":"app","access_token":"x"}"#;
    std::fs::write(&tok, body).unwrap();
    let fin = split(&tok);
    assert!(!fin.status.success());
    assert!(fin.stderr.contains("no refresh_token"), "{}", fin.all());
    assert!(fin.stderr.contains("--split"), "{}", fin.all());
    assert_eq!(std::fs::read_to_string(&tok).unwrap(), body);
    assert!(!secrets_dir(&tok).exists());

    let fin = split(&d.path().join("missing"));
    assert!(!fin.status.success());
    assert!(fin.stderr.contains("does not exist"), "{}", fin.all());
}

#[test]
fn split_waits_for_a_running_refresh() {
    let d = tempfile::tempdir().unwrap();
    let tok = account(d.path());
    // Hold the refresh lock as the helper does during a refresh.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let held = refresher::lock_token(&tok, None, deadline).unwrap();
    let t = Tool::spawn(&["split-secrets".to_string(), tok.display().to_string()]);
    std::thread::sleep(std::time::Duration::from_millis(700));
    assert!(!secrets_dir(&tok).exists(), "wrote while the lock was held");
    assert_eq!(std::fs::read_to_string(&tok).unwrap(), single_file());
    drop(held);
    let fin = t.finish();
    assert!(fin.status.success(), "{}", fin.all());
    assert_split_token(&tok);
    assert_eq!(json(&secrets_file(&tok))["refresh_token"], OLD_RT);
}

fn public() -> Behaviour {
    Behaviour {
        client_secret: None,
        device: DeviceScript::ApproveAfter(0),
        ..Default::default()
    }
}

fn outlook(fake: &Fake, out: &Path, extra: &[&str]) -> Finished {
    let mut args: Vec<String> = vec![
        "get-token".into(),
        "outlook".into(),
        out.display().to_string(),
    ];
    args.extend(fake.outlook_args());
    args.extend(extra.iter().map(|s| s.to_string()));
    run(&args, "")
}

/// The split layout as get-token writes it for a new account.
fn assert_new_split_account(out: &Path) {
    assert_eq!(mode(&secrets_dir(out)), 0o700);
    assert_eq!(mode(&secrets_file(out)), 0o600);
    let s = json(&secrets_file(out));
    assert_eq!(keys(&s), ["refresh_token"]);
    assert_eq!(s["refresh_token"], REFRESH_TOKEN);
    assert_eq!(mode(out), 0o600);
    let raw = std::fs::read_to_string(out).unwrap();
    assert!(!raw.contains(REFRESH_TOKEN), "{raw}");
    let v = json(out);
    assert_eq!(keys(&v), ["access_token", "expiry"]);
    assert_eq!(v["access_token"], ACCESS_TOKEN);
    assert!(v["expiry"].as_str().unwrap().parse::<i64>().unwrap() > 0);
    assert_eq!(
        names(&secrets_dir(out)),
        [out.file_name().unwrap().to_str().unwrap()]
    );
}

#[test]
fn get_token_split_outlook_device_flow() {
    let fake = Fake::start(public());
    let out = fake.dir.path().join("me@contoso.com");
    let fin = outlook(&fake, &out, &["--split"]);
    assert!(fin.status.success(), "{}", fin.all());
    assert!(fin.stderr.contains("Tokens written to"), "{}", fin.all());
    assert_no_secrets(&fin.all(), &fake.secrets());
    assert_new_split_account(&out);
    // Nothing but the account's files and lock beside it.
    let n = names(fake.dir.path());
    assert!(n.iter().all(|n| !n.contains(".tmp")), "{n:?}");
}

#[test]
fn get_token_split_gmail_loopback_flow() {
    let fake = Fake::start(Behaviour::default());
    let out = fake.dir.path().join("me@gmail.com");
    let mut args: Vec<String> = vec![
        "get-token".into(),
        "gmail".into(),
        out.display().to_string(),
        "--split".into(),
        format!("--client-secret={CLIENT_SECRET}"),
    ];
    args.extend(fake.gmail_args());
    let mut tool = Tool::spawn_umask0(&args);
    let prefix = format!("{}/o/oauth2/auth?", fake.base);
    let auth_url = tool.wait_stderr("the authorisation URL", |e| url_starting(e, &prefix));
    let browser = fake.browser();
    let (status, loc, _) = get(&browser, &auth_url);
    assert_eq!(status, 302);
    let (status, _, page) = get(&browser, &loc.unwrap());
    assert_eq!(status, 200, "{page}");
    let fin = tool.finish();
    assert!(fin.status.success(), "{}", fin.all());
    assert_no_secrets(&fin.all(), &fake.secrets());
    // The modes hold although the tool ran with umask 000.
    assert_new_split_account(&out);
}

#[test]
fn get_token_split_over_a_single_file_account_moves_its_secrets() {
    let fake = Fake::start(public());
    let tok = account(fake.dir.path());
    let before = std::fs::metadata(&tok).unwrap();
    let fin = outlook(&fake, &tok, &["--split", "--overwrite-existing-token"]);
    assert!(fin.status.success(), "{}", fin.all());
    assert!(fin.stderr.contains("Tokens replaced in"), "{}", fin.all());
    let mut secrets = fake.secrets();
    secrets.extend(old_secrets());
    assert_no_secrets(&fin.all(), &secrets);
    let s = json(&secrets_file(&tok));
    assert_eq!(s["refresh_token"], REFRESH_TOKEN);
    assert_eq!(s["client_secret"], TOKEN_CS);
    let v = json(&tok);
    assert_eq!(
        keys(&v),
        ["access_token", "expiry", "user", "client_id", "x-unknown"]
    );
    assert_eq!(v["access_token"], ACCESS_TOKEN);
    let after = std::fs::metadata(&tok).unwrap();
    assert_eq!((after.uid(), after.gid()), (before.uid(), before.gid()));
    let sm = std::fs::metadata(secrets_file(&tok)).unwrap();
    assert_eq!((sm.uid(), sm.gid()), (before.uid(), before.gid()));
}

#[test]
fn get_token_without_split_keeps_a_split_account_split() {
    // Otherwise the new refresh token would sit in the token file while
    // the helper keeps using the old one from the secrets file.
    let fake = Fake::start(public());
    let tok = account(fake.dir.path());
    assert!(split(&tok).status.success());
    let fin = outlook(&fake, &tok, &["--overwrite-existing-token"]);
    assert!(fin.status.success(), "{}", fin.all());
    assert!(fin.stderr.contains("split layout"), "{}", fin.all());
    assert_eq!(json(&secrets_file(&tok))["refresh_token"], REFRESH_TOKEN);
    assert_eq!(json(&secrets_file(&tok))["client_secret"], TOKEN_CS);
    let raw = std::fs::read_to_string(&tok).unwrap();
    assert!(!raw.contains("refresh_token"), "{raw}");
}

#[test]
fn a_leftover_secrets_file_is_not_replaced_without_the_flag() {
    let fake = Fake::start(public());
    let out = fake.dir.path().join("new@contoso.com");
    std::fs::create_dir(secrets_dir(&out)).unwrap();
    std::fs::set_permissions(secrets_dir(&out), std::fs::Permissions::from_mode(0o700)).unwrap();
    let keep = r#"{"refresh_token":"1//keep-me-0042"}"#;
    std::fs::write(secrets_file(&out), keep).unwrap();
    for extra in [&[][..], &["--split"][..]] {
        let fin = outlook(&fake, &out, extra);
        assert!(!fin.status.success());
        assert!(fin.stderr.contains("already exists"), "{}", fin.all());
        assert!(fin.stderr.contains("secrets"), "{}", fin.all());
        assert_eq!(std::fs::read_to_string(secrets_file(&out)).unwrap(), keep);
        assert!(!out.exists());
    }
    assert!(fake.seen().is_empty());
}

#[test]
fn split_to_standard_output_is_a_usage_error() {
    let fake = Fake::start(public());
    let fin = outlook(&fake, Path::new("-"), &["--split"]);
    assert!(!fin.status.success());
    assert!(
        fin.stderr.contains("--split needs a token file"),
        "{}",
        fin.all()
    );
    assert!(fake.seen().is_empty());
}

#[test]
fn a_new_account_beside_split_ones_of_another_owner() {
    // Root adds accounts in a directory whose secrets/ belongs to the mail
    // system's user (here nobody, 65534; as a plain user, ourselves).
    let fake = Fake::start(public());
    let sd = secrets_dir(&fake.dir.path().join("x"));
    std::fs::create_dir(&sd).unwrap();
    std::fs::set_permissions(&sd, std::fs::Permissions::from_mode(0o700)).unwrap();
    let root = nix::unistd::geteuid().is_root();
    if root {
        std::os::unix::fs::chown(&sd, Some(65534), Some(65534)).unwrap();
    }
    let owner = std::fs::metadata(&sd).unwrap().uid();

    // A single-file account is not hindered by it.
    let single = fake.dir.path().join("single@contoso.com");
    let fin = outlook(&fake, &single, &[]);
    assert!(fin.status.success(), "{}", fin.all());
    assert_eq!(json(&single)["refresh_token"], REFRESH_TOKEN);

    // A split one puts its secrets file there, owned like the directory.
    let new = fake.dir.path().join("split@contoso.com");
    let fin = outlook(&fake, &new, &["--split"]);
    assert!(fin.status.success(), "{}", fin.all());
    let m = std::fs::metadata(secrets_file(&new)).unwrap();
    assert_eq!(m.uid(), owner);
    assert_eq!(m.mode() & 0o7777, 0o600);
    assert_eq!(json(&secrets_file(&new))["refresh_token"], REFRESH_TOKEN);
    if root {
        assert!(fin.stderr.contains("chown -R postfix:"), "{}", fin.all());
    }
}
