//! `sasl-xoauth2-refresh --check` (offline): each broken setup built on
//! purpose, with the exact verdict it must get, and the setup that passes.
//! The Postfix view comes from a private config dir (`postconf -c DIR`).
//! Every run is made twice, text and `--json`, which must agree, and all
//! output is scanned for the secrets the fake provider issued.

mod check_support;

use check_support::*;
use serde_json::json;
use std::path::Path;

const ALL_CHECKS: &[&str] = &[
    "config",
    "config-keys",
    "postfix",
    "postfix-sasl",
    "postfix-tls",
    "plugin",
    "helper",
    "sandbox",
    "token",
    "token-keys",
    "token-expiry",
    "overrides",
    "settings",
    "token-mode",
    "token-owner",
    "token-dir",
    "temp-files",
    "lock",
    "selinux",
    "apparmor",
    "layout",
    "secrets-mac",
];

/// The checks a split account adds after `layout`.
const SPLIT_CHECKS: &[&str] = &["secrets", "secrets-mode", "secrets-dir"];

/// Why this host keeps nothing from smtp: the CI kernel enforces neither
/// SELinux nor AppArmor. `None` on a host with either (then only "not
/// protected" is asserted: these scratch setups are never labeled or
/// covered by a loaded smtp profile).
fn no_mac_reason() -> Option<&'static str> {
    (!Path::new("/sys/fs/selinux/enforce").exists()
        && !Path::new("/sys/kernel/security/apparmor").exists())
    .then_some("neither SELinux nor AppArmor is enforcing on this kernel")
}

fn names(run: &Run) -> Vec<&str> {
    run.lines.iter().map(|l| l.name.as_str()).collect()
}

#[test]
fn a_correct_setup_passes_every_check() {
    let env = CheckEnv::new("good", false);
    // Hours, not minutes: the expiry line must not depend on how long a
    // loaded machine takes between writing the token and the check.
    env.write_token(&env.fresh_token(4 * 3600 + 1800));
    let before = env.token_bytes();
    let entries = env.dir_entries();
    let run = env.run(&[]);
    assert_eq!(names(&run), ALL_CHECKS, "{}", run.stdout);
    run.all_ok_except(&["apparmor"])
        .expect("apparmor", apparmor_expected(), &[]);
    if apparmor_expected() == OK {
        run.expect_code(0);
        assert!(run
            .stdout
            .ends_with("result: 0 FAIL, 0 warn, 22 ok (exit 0)\n"));
    }
    let dir = env.token_dir().display().to_string();
    let token = env.token.display().to_string();
    run.expect(
        "config",
        OK,
        &[
            &env.config_path.display().to_string(),
            "(from --config): valid",
            "client_secret sha256:",
        ],
    )
    .expect("config-keys", OK, &["every key is known"])
    .expect(
        "postfix",
        OK,
        &[
            "Postfix 3.",
            &format!("postconf -c {}", env.pf_dir.display()),
            &format!("smtp/unix runs as postfix, not chrooted, and opens {token} (exists)"),
        ],
    )
    .expect(
        "postfix-sasl",
        OK,
        &["smtp_sasl_auth_enable = yes (smtp/unix), smtp_sasl_mechanism_filter = xoauth2"],
    )
    .expect(
        "plugin",
        OK,
        &[
            &env.plugin_dir
                .join("libsasl-xoauth2.so")
                .display()
                .to_string(),
            "SASL_PATH in Postfix's import_environment",
        ],
    )
    .expect(
        "helper",
        OK,
        &["refresh_helper in the config", "static executable"],
    )
    .expect("sandbox", OK, &["landlock ABI", "all 7 walls enforced"])
    .expect(
        "token",
        OK,
        &[&token, "refresh token sha256:", "no user override"],
    )
    .expect("token-expiry", OK, &["expires in 4 h"])
    .expect(
        "settings",
        OK,
        &[
            &format!("client_id \"{}\" (config)", env.provider.client_id()),
            &format!("token_endpoint {} (config)", env.provider.url()),
            "trusting 1 CA(s) from",
            "the token file overrides nothing",
        ],
    )
    .expect("token-mode", OK, &["mode 0600"])
    .expect(
        "token-owner",
        OK,
        &["owner postfix:postfix, the user smtp runs as (mail_owner in postconf -c"],
    )
    .expect(
        "token-dir",
        OK,
        &[
            &dir,
            "(owner postfix:postfix, mode 0700) is writable by postfix",
        ],
    )
    .expect("temp-files", OK, &["no leftover temp files"])
    .expect("lock", OK, &["does not exist yet"])
    .expect("selinux", OK, &["no SELinux labels"])
    .expect(
        "layout",
        OK,
        &[&format!("single file (the refresh token is in {token})")],
    )
    .expect(
        "secrets-mac",
        OK,
        &[
            &format!("single file: the refresh token in {token} is readable by smtp; not protected from smtp: "),
            no_mac_reason().unwrap_or(""),
            &format!("`sasl-xoauth2-tool split-secrets {token}` keeps it out of smtp's reach"),
        ],
    );
    // Nothing written, nothing created, no request.
    assert_eq!(env.token_bytes(), before);
    assert_eq!(env.dir_entries(), entries);
    assert_eq!(env.provider.requests(), 0);
}

#[test]
fn a_correct_chrooted_setup_passes_every_check() {
    let env = CheckEnv::new("good-chroot", true);
    let run = env.run(&[]);
    assert_eq!(names(&run), ALL_CHECKS, "{}", run.stdout);
    run.all_ok_except(&["apparmor"]).expect(
        "postfix",
        OK,
        &[&format!(
            "smtp/unix runs as postfix chrooted in {} and opens {} (exists)",
            env.queue.display(),
            env.token.display()
        )],
    );
    run.expect("token", OK, &[&env.token.display().to_string()]);
    // The file's real path inside the queue directory works too, and says
    // what sasl_passwd must hold.
    let mut env = env;
    env.token_arg = env.token.clone();
    env.run(&[]).all_ok_except(&["apparmor"]).expect(
        "postfix",
        OK,
        &["(sasl_passwd must name /etc/tokens/user@example.com.json, the path inside the chroot)"],
    );
}

#[test]
fn config_failures_and_typos() {
    let mut env = CheckEnv::new("config", false);
    std::fs::remove_file(&env.config_path).unwrap();
    let run = env.run(&[]);
    run.expect_code(2).expect(
        "config",
        FAIL,
        &["(from --config) does not exist; fix: create", "client_id"],
    );
    // The checks that need the config are not made; the others still are.
    assert!(!run.has("config-keys") && !run.has("settings"));
    run.expect("token", OK, &[]).expect("token-mode", OK, &[]);

    write(&env.config_path, br#"{"client_id": "x", "#, 0o600, (0, 0));
    env.run(&[]).expect(
        "config",
        FAIL,
        &["is not valid JSON (line 1, column", "python3 -m json.tool"],
    );
    write(&env.config_path, b"[1, 2]", 0o600, (0, 0));
    env.run(&[])
        .expect("config", FAIL, &["is not a JSON object"]);

    env.set_config("refresh_window", json!("soon"));
    env.run(&[]).expect(
        "config",
        FAIL,
        &[
            "field refresh_window must be a whole number",
            "fix: set \"refresh_window\"",
        ],
    );
    env.set_config("refresh_window", json!(30));
    env.set_config("sandbox", json!("strict"));
    env.run(&[]).expect(
        "config",
        FAIL,
        &["field sandbox must be \"best-effort\" or \"required\""],
    );
    env.remove_config("sandbox");

    // Typos: warned with the nearest known key; the rest still checked.
    env.set_config("client_secrets", json!("x"));
    env.set_config("refresh_windw", json!(60));
    env.set_config("my_comment", json!("hello"));
    let run = env.run(&[]);
    run.expect_code(1).expect(
        "config-keys",
        WARN,
        &[
            "\"client_secrets\" (did you mean \"client_secret\"?)",
            "\"refresh_windw\" (did you mean \"refresh_window\"?)",
            "\"my_comment\"",
            "fix: rename \"client_secrets\" to \"client_secret\", rename \"refresh_windw\" to \"refresh_window\", remove \"my_comment\"",
        ],
    );
    run.expect("config", OK, &[]);
}

#[test]
fn config_path_is_the_one_postfix_reads() {
    let mut env = CheckEnv::new("config-path", false);
    // No --config: the file Postfix's import_environment names.
    env.config_arg = None;
    env.run(&[]).expect(
        "config",
        OK,
        &[&format!(
            "{} (from Postfix's import_environment): valid",
            env.config_path.display()
        )],
    );
    // --config names another file than Postfix reads.
    let other = env.root.join("other.conf");
    std::fs::copy(&env.config_path, &other).unwrap();
    env.config_arg = Some(other.clone());
    env.run(&[]).expect(
        "config",
        WARN,
        &[
            &format!(
                "{} (from --config): valid, client_secret sha256:",
                other.display()
            ),
            &format!(
                "but Postfix's smtp reads {} (SASL_XOAUTH2_CONFIG in import_environment)",
                env.config_path.display()
            ),
            "fix: check that file with `sasl-xoauth2-refresh --check PATH --config",
        ],
    );
    // Postfix imports no SASL_XOAUTH2_CONFIG: its smtp reads the default,
    // whatever the admin's shell has.
    env.config_arg = Some(env.config_path.clone());
    env.set_main("import_environment", "MAIL_CONFIG LANG=C");
    env.run(&[]).expect(
        "config",
        WARN,
        &[
            "Postfix's smtp reads /etc/sasl-xoauth2.conf (the default: import_environment does not set SASL_XOAUTH2_CONFIG)",
            &format!("add SASL_XOAUTH2_CONFIG={} to import_environment", env.config_path.display()),
        ],
    );
}

#[test]
fn settings_failures_and_token_overrides() {
    let mut env = CheckEnv::new("settings", false);
    env.remove_config("client_id");
    env.run(&[]).expect_code(2).expect(
        "settings",
        FAIL,
        &[
            "client_id is not set",
            "fix: set \"client_id\" in the config file",
        ],
    );
    // ... which the token file may supply.
    let mut tok = env.fresh_token(3000);
    tok["client_id"] = json!(env.provider.client_id());
    tok["user"] = json!("someone@example.com");
    env.write_token(&tok);
    env.run(&[])
        .expect(
            "settings",
            OK,
            &[
                "(token file)",
                &format!("{} overrides client_id", env.token.display()),
            ],
        )
        .expect(
            "token",
            OK,
            &["user \"someone@example.com\" (sent instead of the SASL user name)"],
        );

    env.set_config("client_id", json!(env.provider.client_id()));
    env.set_config("token_endpoint", json!("http://127.0.0.1:9/token"));
    env.run(&[]).expect(
        "settings",
        FAIL,
        &["token_endpoint \"http://127.0.0.1:9/token\" must start with https://"],
    );
    env.set_config("token_endpoint", json!(env.provider.url()));
    env.set_config("proxy", json!("socks5://127.0.0.1:1080"));
    env.run(&[]).expect("settings", FAIL, &["not SOCKS"]);
    env.remove_config("proxy");
    env.set_config("ca_bundle_file", json!("/nonexistent/ca.pem"));
    env.run(&[]).expect(
        "settings",
        FAIL,
        &[
            "ca_bundle_file /nonexistent/ca.pem (set in the config file) does not exist",
            "fix: fix the path",
        ],
    );
}

#[test]
fn token_file_failures() {
    let env = CheckEnv::new("token", false);
    let t = env.token.display().to_string();
    std::fs::remove_file(&env.token).unwrap();
    let run = env.run(&[]);
    run.expect_code(2)
        .expect(
            "token",
            FAIL,
            &[&format!(
                "{t} does not exist; fix: create it with `sasl-xoauth2-tool get-token"
            )],
        )
        .expect(
            "postfix",
            FAIL,
            &[&format!("opens {t}, which does not exist")],
        );
    assert!(!run.has("token-mode") && !run.has("token-expiry"));
    run.expect("token-dir", OK, &[]);

    let real = env.token_dir().join("real.json");
    write(
        &real,
        serde_json::to_string(&env.fresh_token(100))
            .unwrap()
            .as_bytes(),
        0o600,
        postfix_ids(),
    );
    std::os::unix::fs::symlink(&real, &env.token).unwrap();
    env.run(&[]).expect(
        "token",
        FAIL,
        &["is a symbolic link", "replace the symlink"],
    );
    std::fs::remove_file(&env.token).unwrap();

    std::fs::create_dir(&env.token).unwrap();
    env.run(&[])
        .expect("token", FAIL, &["is a directory, not a regular file"]);
    std::fs::remove_dir(&env.token).unwrap();

    env.write_token_bytes(&vec![b' '; 70_000]);
    env.run(&[])
        .expect("token", FAIL, &["is too large (over 64 KiB)"]);
    env.write_token_bytes(b"");
    env.run(&[]).expect(
        "token",
        FAIL,
        &["is not valid JSON", "--overwrite-existing-token"],
    );
    env.write_token_bytes(br#"{"refresh_token": "1//abc", "#);
    env.run(&[])
        .expect("token", FAIL, &["is not valid JSON (line 1"]);
    env.write_token(&json!({"access_token": "ya29.x", "expiry": "0"}));
    env.run(&[]).expect(
        "token",
        FAIL,
        &[
            "field refresh_token missing",
            "sasl-xoauth2-tool get-token {gmail|outlook} --overwrite-existing-token",
        ],
    );
    env.write_token(&json!({"refresh_token": "r", "expiry": "tomorrow"}));
    env.run(&[])
        .expect("token", FAIL, &["field expiry must be a whole number"]);
    // App-only grant: no refresh token needed.
    env.write_token(&json!({"grant_type": "client_credentials"}));
    env.run(&[])
        .expect(
            "token",
            OK,
            &["grant client_credentials (no refresh token needed)"],
        )
        .expect("token-expiry", OK, &["no access token yet"]);
}

#[test]
fn token_expiry_in_words_and_misspelt_fields() {
    let env = CheckEnv::new("expiry", false);
    let mut tok = env.fresh_token(41 * 60 + 55);
    env.write_token(&tok);
    env.run(&[])
        .expect("token-expiry", OK, &["expires in 41 min"]);
    tok["expiry"] = json!((now() - 3 * 3600 - 100).to_string());
    env.write_token(&tok);
    env.run(&[]).expect(
        "token-expiry",
        OK,
        &["expired 3 h ago: the next authentication waits for a refresh"],
    );
    tok["expiry"] = json!(now() + 355);
    env.write_token(&tok);
    env.run(&[]).expect(
        "token-expiry",
        OK,
        &["expires in 5 min: still used, and refreshed in the background"],
    );
    tok["expiry"] = json!("9999999999");
    env.write_token(&tok);
    env.run(&[]).expect_code(1).expect(
        "token-expiry",
        WARN,
        &["years (expiry 9999999999)", "fix: set \"expiry\" to \"0\""],
    );

    let mut tok = env.fresh_token(3000);
    tok["refresh_tokne"] = json!("x");
    tok["usr"] = json!("a@b");
    tok["sandbox"] = json!("required");
    tok["x-comment"] = json!("kept as is");
    env.write_token(&tok);
    let run = env.run(&[]);
    run.expect(
        "token-keys",
        WARN,
        &[
            "\"refresh_tokne\" is ignored (did you mean \"refresh_token\"?)",
            "\"usr\" is ignored (did you mean \"user\"?)",
            "\"sandbox\" has no effect in a token file",
            "fix: rename \"refresh_tokne\" to \"refresh_token\"",
            "move \"sandbox\" to the config file",
        ],
    );
    assert!(!run.line("token-keys").text.contains("x-comment"));
}

#[test]
fn token_mode_and_owner() {
    let mut env = CheckEnv::new("mode", false);
    let t = env.token.display().to_string();
    for (mode, words) in [
        (0o644, "accessible to every user (mode 0644)"),
        (0o604, "accessible to every user (mode 0604)"),
        (0o640, "accessible to its group (mode 0640)"),
        (0o660, "accessible to its group (mode 0660)"),
        (0o666, "writable by every user (mode 0666)"),
        (0o602, "writable by every user (mode 0602)"),
    ] {
        chmod(&env.token, mode);
        env.run(&[]).expect_code(2).expect(
            "token-mode",
            FAIL,
            &[words, &format!("fix: chmod 600 {t}")],
        );
    }
    chmod(&env.token, 0o400);
    env.run(&[]).expect("token-mode", OK, &["mode 0400"]);
    chmod(&env.token, 0o600);

    // Owned by root: smtp (postfix) cannot read it.
    chown(&env.token, (0, 0));
    env.run(&[]).expect_code(2).expect(
        "token-owner",
        FAIL,
        &[
            "owner root:root, mode 0600: smtp runs as postfix (mail_owner in postconf -c",
            "cannot read it",
            &format!("fix: chown postfix:postfix {t}"),
        ],
    );
    // root:postfix 0640: readable through the group (the mode fails), but
    // not owned by postfix.
    let (_, pgid) = postfix_ids();
    chown(&env.token, (0, pgid));
    chmod(&env.token, 0o640);
    env.run(&[])
        .expect(
            "token-owner",
            WARN,
            &["owner root:postfix, not postfix", "smtp can read it"],
        )
        .expect("token-mode", FAIL, &[]);
    chmod(&env.token, 0o600);
    chown(&env.token, postfix_ids());
    env.run(&[]).expect("token-owner", OK, &[]);

    // Another mail_owner than the file's owner.
    env.set_main("mail_owner", "nobody");
    env.run(&[]).expect(
        "token-owner",
        FAIL,
        &["smtp runs as nobody", "fix: chown nobody:"],
    );
    // A service with unprivileged = n runs as root: it can read anything.
    env.set_main("mail_owner", "postfix");
    env.set_master("smtp unix - n n - - smtp\n");
    env.run(&[]).expect(
        "token-owner",
        WARN,
        &["not root (a master.cf smtp service with unprivileged = n)"],
    );
}

#[test]
fn token_directory() {
    let env = CheckEnv::new("dir", false);
    let dir = env.token_dir();
    let d = dir.display().to_string();
    chown(&dir, (0, 0));
    chmod(&dir, 0o755);
    env.run(&[]).expect_code(2).expect(
        "token-dir",
        FAIL,
        &[
            &format!("{d} (owner root:root, mode 0755) is not writable by postfix, the user smtp runs as"),
            "the helper cannot create its lock and temp files",
            &format!("fix: chown postfix:postfix {d} && chmod 700 {d}"),
        ],
    );
    chmod(&dir, 0o777);
    env.run(&[]).expect(
        "token-dir",
        FAIL,
        &["is writable by every user", "anyone can replace"],
    );
    chmod(&dir, 0o1777);
    env.run(&[])
        .expect_code(1)
        .expect("token-dir", WARN, &["writable by every user (sticky)"]);
    chown(&dir, postfix_ids());
    chmod(&dir, 0o770);
    env.run(&[]).expect_code(1).expect(
        "token-dir",
        WARN,
        &["writable by its group", &format!("fix: chmod 700 {d}")],
    );
    chmod(&dir, 0o700);
    env.run(&[]).expect_code(0);
    // A parent postfix cannot search.
    chmod(&env.root, 0o700);
    env.run(&[]).expect_code(2).expect(
        "token-dir",
        FAIL,
        &[
            &format!(
                "{} (owner root:root, mode 0700) is not searchable by it",
                env.root.display()
            ),
            &format!("fix: chmod o+x {}", env.root.display()),
        ],
    );
    chmod(&env.root, 0o755);
}

#[test]
fn leftover_temp_files_and_the_lock_file() {
    let env = CheckEnv::new("lock", false);
    let dir = env.token_dir();
    let pf = postfix_ids();
    let name = "user@example.com.json";
    let tmp = dir.join(format!(".{name}.tmp-4242-0"));
    write(&tmp, b"{partial", 0o600, pf);
    env.run(&[]).expect_code(1).expect(
        "temp-files",
        WARN,
        &[
            &format!(
                "1 temp file(s) left by an interrupted refresh in {}: .{name}.tmp-4242-0",
                dir.display()
            ),
            &format!(
                "the next refresh removes them, or now (no refresh is running): rm {}",
                tmp.display()
            ),
        ],
    );
    // Another token's temp files are not ours.
    std::fs::remove_file(&tmp).unwrap();
    write(&dir.join(".other.json.tmp-1-0"), b"", 0o600, pf);
    env.run(&[]).expect("temp-files", OK, &[]);

    let lock = dir.join(format!(".{name}.lock"));
    write(&lock, b"", 0o600, pf);
    env.run(&[]).expect(
        "lock",
        OK,
        &["(owner postfix:postfix, mode 0600), not held"],
    );
    // A refresh is running: it holds the lock, and the temp file is its own.
    write(&tmp, b"{partial", 0o600, pf);
    let held = std::fs::File::open(&lock).unwrap();
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor `held` keeps open for this test.
    assert_eq!(unsafe { libc::flock(held.as_raw_fd(), libc::LOCK_EX) }, 0);
    env.run(&[])
        .expect("lock", OK, &["held by a refresh right now"])
        .expect("temp-files", OK, &["a refresh is running right now"]);
    drop(held);
    std::fs::remove_file(&tmp).unwrap();
    // --check itself never took it: a refresh could lock it meanwhile.

    chown(&lock, (0, 0));
    env.run(&[]).expect_code(2).expect(
        "lock",
        FAIL,
        &[
            "(owner root:root, mode 0600) cannot be opened by postfix",
            "fix: rm ",
        ],
    );
    std::fs::remove_file(&lock).unwrap();
    std::os::unix::fs::symlink("/etc/passwd", &lock).unwrap();
    env.run(&[]).expect(
        "lock",
        FAIL,
        &["is a symbolic link: the helper refuses to lock it"],
    );
    std::fs::remove_file(&lock).unwrap();
    std::fs::create_dir(&lock).unwrap();
    env.run(&[]).expect("lock", FAIL, &["is a directory"]);
    // The symlink target was never touched, nothing was created.
    std::fs::remove_dir(&lock).unwrap();
    env.run(&[]).expect("lock", OK, &["does not exist yet"]);
}

#[test]
fn postfix_chroot_and_where_smtp_opens_the_token() {
    let mut env = CheckEnv::new("chroot", true);
    // The token exists only outside the chroot, under the path sasl_passwd
    // names: smtp, chrooted, opens queue_directory + path.
    let outside = env.root.join("outside/tok.json");
    mkdir(outside.parent().unwrap(), 0o700, postfix_ids());
    write(
        &outside,
        serde_json::to_string(&env.fresh_token(3000))
            .unwrap()
            .as_bytes(),
        0o600,
        postfix_ids(),
    );
    env.token_arg = outside.clone();
    let inside = env.queue.join(outside.strip_prefix("/").unwrap());
    let run = env.run(&[]);
    run.expect_code(2).expect(
        "postfix",
        FAIL,
        &[
            &format!(
                "smtp/unix runs as postfix chrooted in {} and opens {}, which does not exist ({} exists, outside the chroot)",
                env.queue.display(),
                inside.display(),
                outside.display()
            ),
            &format!(
                "fix: install -d -o postfix -m 700 {} && install -o postfix -m 600 {} {}",
                inside.parent().unwrap().display(),
                outside.display(),
                inside.display()
            ),
        ],
    );
    run.expect(
        "token",
        FAIL,
        &[&format!("{} does not exist", inside.display())],
    );

    // `-` in the chroot column: not chrooted since Postfix 3.0 (Debian's
    // packaged master.cf writes y explicitly).
    env.set_master("smtp unix - - - - - smtp\n");
    env.run(&[]).expect(
        "postfix",
        OK,
        &[&format!(
            "smtp/unix runs as postfix, not chrooted, and opens {} (exists)",
            outside.display()
        )],
    );
    // Two smtp services, one chrooted: both places must hold the file.
    env.set_master("smtp unix - - n - - smtp\nrelay unix - - y - - smtp\n");
    env.run(&[]).expect(
        "postfix",
        FAIL,
        &[&format!(
            "relay/unix runs as postfix chrooted in {} and opens {}, which does not exist",
            env.queue.display(),
            inside.display()
        )],
    );
    // master.cf without an smtp(8) service.
    env.set_master("pickup unix n - y 60 1 pickup\n");
    env.run(&[]).expect(
        "postfix",
        WARN,
        &["master.cf has no unix service running smtp(8)"],
    );
    // A config dir postconf cannot read.
    std::fs::remove_file(env.pf_dir.join("main.cf")).unwrap();
    let run = env.run(&[]);
    run.expect(
        "postfix",
        FAIL,
        &[
            &format!("`postconf -c {}` failed:", env.pf_dir.display()),
            "main.cf",
        ],
    );
    assert!(!run.has("postfix-sasl"));
}

#[test]
fn postfix_tls_warns_when_the_token_could_leave_unprotected() {
    let mut env = CheckEnv::new("pf-tls", false);
    let pc = format!("postconf -e -c {}", env.pf_dir.display());
    env.run(&[]).expect(
        "postfix-tls",
        OK,
        &["the token only leaves over verified TLS"],
    );
    // The C++ README's settings: TLS, but not verified.
    env.set_main("smtp_tls_security_level", "encrypt");
    env.set_main("smtp_sasl_security_options", "");
    env.run(&[]).expect_code(1).expect(
        "postfix-tls",
        WARN,
        &[
            "does not verify the relay's certificate",
            "smtp/unix (smtp_tls_security_level = encrypt)",
            &format!("fix: {pc} 'smtp_tls_security_level = secure'"),
        ],
    );
    env.set_main("smtp_tls_security_level", "may");
    env.run(&[]).expect_code(1).expect(
        "postfix-tls",
        WARN,
        &[
            "the token may be sent without TLS",
            "'smtp_sasl_security_options = noanonymous, noplaintext'",
        ],
    );
}

#[test]
fn postfix_sasl_mechanisms() {
    let mut env = CheckEnv::new("mechs", false);
    let pc = format!("postconf -e -c {}", env.pf_dir.display());
    env.set_main("smtp_sasl_mechanism_filter", "login, plain");
    env.run(&[]).expect_code(2).expect(
        "postfix-sasl",
        FAIL,
        &[
            "smtp/unix: smtp_sasl_mechanism_filter = login, plain excludes XOAUTH2 and OAUTHBEARER: Postfix will log \"no worthy mechs found\"",
            &format!("fix: {pc} 'smtp_sasl_mechanism_filter = xoauth2'"),
        ],
    );
    env.set_main("smtp_sasl_mechanism_filter", "oauthbearer, login");
    env.run(&[]).expect("postfix-sasl", OK, &[]);
    env.set_main("smtp_sasl_mechanism_filter", "");
    env.run(&[]).expect(
        "postfix-sasl",
        OK,
        &["smtp_sasl_mechanism_filter = (empty: libsasl2 prefers XOAUTH2 by its SSF)"],
    );
    env.set_main("smtp_sasl_mechanism_filter", "hash:/etc/postfix/mechs");
    env.run(&[]).expect_code(1).expect(
        "postfix-sasl",
        WARN,
        &["uses a lookup table for smtp/unix"],
    );
    // A master.cf -o override for the service.
    env.set_main("smtp_sasl_mechanism_filter", "xoauth2");
    env.set_master("smtp unix - - n - - smtp -o smtp_sasl_mechanism_filter=plain\n");
    env.run(&[]).expect(
        "postfix-sasl",
        FAIL,
        &[
            "smtp_sasl_mechanism_filter = plain excludes",
            "`-o smtp_sasl_mechanism_filter=plain` of smtp/unix in master.cf",
        ],
    );
    env.set_master("smtp unix - - n - - smtp\n");
    env.set_main("smtp_sasl_auth_enable", "no");
    env.run(&[]).expect_code(1).expect(
        "postfix-sasl",
        WARN,
        &[
            "smtp_sasl_auth_enable is not yes",
            &format!("fix: {pc} 'smtp_sasl_auth_enable = yes'"),
        ],
    );
}

#[test]
fn plugin_directory() {
    let mut env = CheckEnv::new("plugin", false);
    std::fs::remove_file(env.plugin_dir.join("libsasl-xoauth2.so")).unwrap();
    let run = env.run(&[]);
    run.expect_code(2).expect(
        "plugin",
        FAIL,
        &[
            &env.plugin_dir.display().to_string(),
            "(SASL_PATH in Postfix's import_environment)",
            "no worthy mechs found",
        ],
    );
    // cargo's file name works as well: libsasl2 loads any lib*.so.
    write(
        &env.plugin_dir.join("libsasl_xoauth2.so"),
        b"\x7fELF",
        0o644,
        (0, 0),
    );
    env.run(&[]).expect("plugin", OK, &["libsasl_xoauth2.so"]);
    // Two directories in SASL_PATH; the plugin in the second.
    let first = env.root.join("sasl2-first");
    mkdir(&first, 0o755, (0, 0));
    env.set_main(
        "import_environment",
        &format!(
            "LANG=C SASL_PATH={}:{} SASL_XOAUTH2_CONFIG={}",
            first.display(),
            env.plugin_dir.display(),
            env.config_path.display()
        ),
    );
    env.run(&[]).expect("plugin", OK, &["libsasl_xoauth2.so"]);
}

#[test]
fn helper_binary() {
    let mut env = CheckEnv::new("helper", false);
    let h = env.helper.display().to_string();
    let dynamic = elf_image(host_machine(), Some("/lib64/ld-linux-x86-64.so.2"));
    write(&env.helper, &dynamic, 0o755, (0, 0));
    env.run(&[]).expect_code(1).expect(
        "helper",
        WARN,
        &[&format!("{h} is dynamically linked (needs /lib64/ld-linux-x86-64.so.2): it works only while smtp is not chrooted"), "make helper"],
    );
    env.set_master("smtp unix - - y - - smtp\n");
    env.run(&[]).expect(
        "helper",
        FAIL,
        &[
            "dynamically linked",
            "which does not exist inside smtp's chroot",
        ],
    );
    write(&env.helper, &elf_image(host_machine(), None), 0o755, (0, 0));
    env.run(&[]).expect(
        "helper",
        WARN,
        &[
            &format!("{h} is readable by others (mode 0755)"),
            &format!("fix: chmod 711 {h}"),
        ],
    );
    write(&env.helper, &elf_image(host_machine(), None), 0o711, (0, 0));
    env.run(&[]).expect(
        "helper",
        OK,
        &["static executable, mode 0711, runs inside the chroot"],
    );
    env.set_master("smtp unix - - n - - smtp\n");

    let other_machine = if host_machine() == 62 { 183 } else { 62 };
    write(&env.helper, &elf_image(other_machine, None), 0o755, (0, 0));
    env.run(&[])
        .expect("helper", FAIL, &["built for another architecture"]);
    write(&env.helper, b"#!/bin/sh\nexec true\n", 0o755, (0, 0));
    env.run(&[])
        .expect("helper", FAIL, &["is not an ELF executable (a script?)"]);
    write(&env.helper, &elf_image(host_machine(), None), 0o644, (0, 0));
    env.run(&[]).expect(
        "helper",
        FAIL,
        &[
            "is not executable (mode 0644)",
            &format!("fix: chmod 755 {h}"),
        ],
    );
    chmod(&env.helper, 0o777);
    env.run(&[])
        .expect("helper", FAIL, &["is writable by others (mode 0777)"]);
    std::fs::remove_file(&env.helper).unwrap();
    env.run(&[]).expect(
        "helper",
        FAIL,
        &[&format!(
            "{h} (refresh_helper in the config) does not exist: expired tokens cannot be refreshed"
        )],
    );
    env.set_config("refresh_helper", json!("libexec/helper"));
    env.run(&[])
        .expect("helper", FAIL, &["is not an absolute path"]);
    // Without the setting: the default path.
    env.remove_config("refresh_helper");
    let default = Path::new("/usr/libexec/sasl-xoauth2/sasl-xoauth2-refresh");
    let run = env.run(&[]);
    let line = run.line("helper");
    assert!(
        line.text
            .starts_with("/usr/libexec/sasl-xoauth2/sasl-xoauth2-refresh (the default)"),
        "{}",
        run.stdout
    );
    if !default.exists() {
        run.expect("helper", FAIL, &["does not exist"]);
    }
}

#[test]
fn selinux_labels() {
    let env = CheckEnv::new("selinux", false);
    let dir = env.token_dir();
    let good = "system_u:object_r:sasl_xoauth2_token_t:s0";
    set_selinux_label(&env.token, good);
    set_selinux_label(&dir, good);
    env.run(&[])
        .expect("selinux", OK, &["labelled sasl_xoauth2_token_t"]);
    set_selinux_label(&env.token, "system_u:object_r:etc_t:s0");
    // This kernel does not enforce SELinux: a warning (enforcing with the
    // module installed is a failure: unit-tested in check/verdict.rs).
    let d = dir.display().to_string();
    env.run(&[]).expect_code(1).expect(
        "selinux",
        WARN,
        &[
            &format!(
                "{} has type etc_t, not sasl_xoauth2_token_t",
                env.token.display()
            ),
            &format!(
                "semanage fcontext -a -t sasl_xoauth2_token_t '{d}(/.*)?' && restorecon -Rv {d}"
            ),
        ],
    );
    set_selinux_label(&env.token, good);
    set_selinux_label(&dir, "unconfined_u:object_r:user_tmp_t:s0");
    env.run(&[])
        .expect("selinux", WARN, &[&format!("{d} has type user_tmp_t")]);
}

#[test]
fn sandbox_and_apparmor_on_this_kernel() {
    let mut env = CheckEnv::new("sandbox", false);
    // The CI kernel enforces every wall, so even "required" passes.
    env.set_config("sandbox", json!("required"));
    env.run(&[])
        .expect(
            "sandbox",
            OK,
            &[
                "landlock ABI",
                "seccomp kill-process filters",
                "all 7 walls enforced (sandbox \"required\")",
            ],
        )
        .expect("apparmor", apparmor_expected(), &[]);
}

#[test]
fn check_never_contacts_the_provider_or_writes() {
    let env = CheckEnv::new("offline", false);
    env.write_token(&env.expired_token());
    let before = env.token_bytes();
    let entries = env.dir_entries();
    let mtime = std::fs::metadata(env.token_dir())
        .unwrap()
        .modified()
        .unwrap();
    env.run(&[]).expect("token-expiry", OK, &["expired"]);
    assert_eq!(env.provider.requests(), 0, "no --online, no request");
    assert_eq!(env.token_bytes(), before);
    assert_eq!(env.dir_entries(), entries, "no lock or temp file created");
    assert_eq!(
        std::fs::metadata(env.token_dir())
            .unwrap()
            .modified()
            .unwrap(),
        mtime
    );
}

#[test]
fn check_usage_errors() {
    let helper = testkit::bins::refresh_helper();
    for args in [
        vec!["--online", "/t"],
        vec!["--json", "/t"],
        vec!["--postfix-config", "/etc/postfix", "/t"],
        vec!["--check", "--force", "/t"],
        vec!["--check", "--config-fd", "0", "/t"],
        vec!["--check"],
    ] {
        let out = std::process::Command::new(&helper)
            .args(&args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(64), "{args:?}");
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            stdout.starts_with("error: ") && stdout.lines().count() == 1,
            "{stdout}"
        );
    }
}

#[test]
fn relative_token_path_is_taken_from_the_working_directory() {
    let env = CheckEnv::new("relative", false);
    let out = std::process::Command::new(testkit::bins::refresh_helper())
        .env_clear()
        .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
        .current_dir(env.token_dir())
        .args(["--check", "user@example.com.json", "--config"])
        .arg(&env.config_path)
        .arg("--postfix-config")
        .arg(&env.pf_dir)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lines = parse_text(&stdout);
    let token = lines.iter().find(|l| l.name == "token").unwrap();
    assert_eq!(token.status, OK, "{stdout}");
    assert!(
        token
            .text
            .starts_with(&format!("{}: valid", env.token.display())),
        "{stdout}"
    );
}

#[test]
fn run_as_another_user_it_says_to_run_it_as_root() {
    use std::os::unix::process::CommandExt;
    let env = CheckEnv::new("nonroot", false);
    let (uid, gid) = ids_of("nobody");
    let out = env.command(&[]).uid(uid).gid(gid).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stdout}");
    let lines = parse_text(&stdout);
    let config = lines.iter().find(|l| l.name == "config").unwrap();
    assert_eq!(config.status, FAIL, "{stdout}");
    assert!(
        config.text.contains("cannot be read: Permission denied")
            && config
                .text
                .contains("fix: run sasl-xoauth2-refresh --check as root (sudo)"),
        "{stdout}"
    );
    for s in env.provider.secrets() {
        assert!(!stdout.contains(&s));
    }
}

// ------------------------------------------------------------ split layout

/// The split layout: said so, its secrets checked, and on this host (no
/// MAC enforcing) a warning that smtp is not kept out, with the reason.
#[test]
fn split_layout_is_reported_with_its_secrets_and_mac_protection() {
    for chroot in [false, true] {
        let env = CheckEnv::new("split", chroot);
        env.split();
        let token_before = env.token_bytes();
        let secrets_before = std::fs::read(env.secrets_file()).unwrap();
        let entries = env.dir_entries();
        let run = env.run(&[]);
        let mut want = ALL_CHECKS.to_vec();
        let at = want.iter().position(|n| *n == "layout").unwrap() + 1;
        want.splice(at..at, SPLIT_CHECKS.iter().copied());
        assert_eq!(names(&run), want, "{}", run.stdout);
        let s = env.secrets_file().display().to_string();
        let d = env.secrets_dir().display().to_string();
        run.all_ok_except(&["apparmor", "secrets-mac"])
            .expect_code(1)
            .expect("layout", OK, &[&format!("split (secrets in {s})")])
            .expect(
                "secrets",
                OK,
                &[&format!("{s}: valid, refresh token sha256:")],
            )
            .expect(
                "secrets-mode",
                OK,
                &[&format!("{s}: owner postfix:postfix, mode 0600")],
            )
            .expect(
                "secrets-dir",
                OK,
                &[&format!("{d} (owner postfix:postfix, mode 0700)")],
            )
            // The refresh token comes from the secrets file, as in a refresh.
            .expect("token", OK, &["refresh token sha256:"])
            .expect("settings", OK, &["client_secret sha256:"])
            .expect(
                "secrets-mac",
                WARN,
                &[
                    &format!("{s}: not protected from smtp: "),
                    no_mac_reason().unwrap_or(""),
                    "without an enforcing MAC policy a compromised smtp (same uid) can still read the secrets",
                    "; fix: ",
                    "semodule -i sasl_xoauth2.pp",
                    &format!("restorecon -Rv {d}"),
                    "aa-enforce",
                ],
            );
        // The token check's fingerprint is the secrets file's refresh token.
        let sec: serde_json::Value = serde_json::from_slice(&secrets_before).unwrap();
        let fp = common::secret::Secret::new(sec["refresh_token"].as_str().unwrap()).fingerprint();
        run.expect("secrets", OK, &[&fp])
            .expect("token", OK, &[&fp]);
        // Labels alone protect nothing: SELinux must enforce them.
        if !chroot {
            let label = "system_u:object_r:sasl_xoauth2_secret_t:s0";
            set_selinux_label(&env.secrets_dir(), label);
            set_selinux_label(&env.secrets_file(), label);
            env.run(&[]).expect(
                "secrets-mac",
                WARN,
                &["not protected from smtp: ", no_mac_reason().unwrap_or("")],
            );
        }
        // Nothing written or created, no request.
        assert_eq!(env.token_bytes(), token_before);
        assert_eq!(std::fs::read(env.secrets_file()).unwrap(), secrets_before);
        assert_eq!(env.dir_entries(), entries);
        assert_eq!(env.provider.requests(), 0);
    }
}

#[test]
fn split_layout_leftover_and_missing_secrets() {
    let env = CheckEnv::new("split-leftover", false);
    let t = env.token.display().to_string();
    let s = env.secrets_file().display().to_string();
    // An interrupted split-secrets: secrets written, token file not yet.
    let full = env.fresh_token(3600);
    let rt = full["refresh_token"].clone();
    mkdir(&env.secrets_dir(), 0o700, postfix_ids());
    env.write_secrets(&json!({ "refresh_token": rt, "client_secret": "acct-secret-93xq" }));
    let mut with_cs = full.clone();
    with_cs["client_secret"] = json!("acct-secret-93xq");
    env.write_token(&with_cs);
    let mut env = env;
    env.extra_secrets.push("acct-secret-93xq".into());
    env.run(&[])
        .expect(
            "layout",
            WARN,
            &[
                &format!("split (secrets in {s}), but {t} still holds refresh_token and client_secret, left by an interrupted split-secrets"),
                "smtp can read it there",
                &format!("; fix: finish the conversion: sasl-xoauth2-tool split-secrets {t}"),
            ],
        )
        .expect("secrets", OK, &["client_secret sha256:", "(this account's own)"]);

    // No refresh token anywhere: the secrets file is gone.
    std::fs::remove_file(env.secrets_file()).unwrap();
    let mut bare = full.clone();
    bare.as_object_mut().unwrap().remove("refresh_token");
    env.write_token(&bare);
    let run = env.run(&[]);
    run.expect_code(2).expect(
        "layout",
        FAIL,
        &[
            &format!("{t} holds no refresh_token and there is no secrets file {s}: refreshes fail"),
            &format!("; fix: restore {s} from a backup, or get a new token: sasl-xoauth2-tool get-token {{gmail|outlook}} --split --overwrite-existing-token {t}"),
        ],
    );
    assert!(!run.has("secrets"), "single layout: {}", run.stdout);
}

#[test]
fn split_layout_bad_secrets_file_and_directory() {
    let env = CheckEnv::new("split-bad", false);
    env.split();
    let s = env.secrets_file();
    let sd = s.display().to_string();
    let d = env.secrets_dir().display().to_string();
    let good = std::fs::read(&s).unwrap();

    // A symlink to a valid secrets file: refused, as the helper refuses it.
    let real = env.root.join("real-secrets");
    write(&real, &good, 0o600, postfix_ids());
    std::fs::remove_file(&s).unwrap();
    std::os::unix::fs::symlink(&real, &s).unwrap();
    let run = env.run(&[]);
    run.expect_code(2)
        .expect("layout", OK, &["split"])
        .expect(
            "secrets",
            FAIL,
            &[&format!("{sd} is a symbolic link"), "; fix: replace it"],
        )
        .expect(
            "token",
            FAIL,
            &[&format!(
                "no refresh token: the split layout keeps it in {sd}, which is unusable"
            )],
        );
    assert!(!run.has("secrets-mode"), "{}", run.stdout);
    std::fs::remove_file(&s).unwrap();

    // Loose mode, wrong owner.
    write(&s, &good, 0o644, postfix_ids());
    env.run(&[]).expect_code(2).expect(
        "secrets-mode",
        FAIL,
        &[
            "accessible to every user (mode 0644): it holds the refresh token",
            &format!("; fix: chmod 600 {sd}"),
        ],
    );
    write(&s, &good, 0o640, (0, 0));
    env.run(&[]).expect(
        "secrets-mode",
        FAIL,
        &[
            "owner root:root, not postfix (the token file's owner",
            "accessible to its group (mode 0640)",
            &format!("; fix: chown postfix:postfix {sd} && chmod 600 {sd}"),
        ],
    );
    write(&s, &good, 0o600, postfix_ids());

    // The directory: group-writable fails, group-searchable warns.
    chmod(&env.secrets_dir(), 0o770);
    env.run(&[]).expect_code(2).expect(
        "secrets-dir",
        FAIL,
        &["is writable by its group", &format!("chmod 700 {d}")],
    );
    chmod(&env.secrets_dir(), 0o755);
    env.run(&[]).expect(
        "secrets-dir",
        WARN,
        &["has mode 0755, not 0700", &format!("; fix: chmod 700 {d}")],
    );
    chmod(&env.secrets_dir(), 0o700);
    chown(&env.secrets_dir(), (0, 0));
    env.run(&[]).expect(
        "secrets-dir",
        FAIL,
        &[
            "is not owned by postfix, the token file's owner",
            &format!("chown postfix:postfix {d}"),
        ],
    );
    chown(&env.secrets_dir(), postfix_ids());

    // Content: no refresh token, not JSON.
    env.write_secrets(&json!({ "client_secret": "x" }));
    env.run(&[])
        .expect_code(2)
        .expect("secrets", FAIL, &[&sd, "refresh_token", "--split"]);
    write(&s, b"{", 0o600, postfix_ids());
    env.run(&[])
        .expect("secrets", FAIL, &["is not valid JSON", "--split"]);
}

#[test]
fn client_secret_file_from_the_config() {
    let mut env = CheckEnv::new("client-secret-file", false);
    let secret = env.provider.client_secret().to_string();
    let f = env.root.join("sasl-xoauth2.secret");
    let fd = f.display().to_string();
    write(&f, format!("{secret}\n").as_bytes(), 0o600, postfix_ids());
    env.remove_config("client_secret");
    env.set_config("client_secret_file", json!(fd));
    let fp = common::secret::Secret::new(&secret).fingerprint();
    let run = env.run(&[]);
    run.expect(
        "client-secret-file",
        OK,
        &[&format!(
            "{fd}: client secret {fp}, owner postfix:postfix, mode 0600"
        )],
    )
    .expect(
        "settings",
        OK,
        &[&format!("client_secret from client_secret_file {fd}")],
    );
    let at = names(&run).iter().position(|n| *n == "layout").unwrap();
    assert_eq!(names(&run)[at + 1], "client-secret-file");

    write(&f, secret.as_bytes(), 0o644, postfix_ids());
    env.run(&[]).expect_code(2).expect(
        "client-secret-file",
        FAIL,
        &[
            "is accessible to every user (mode 0644): it holds the client secret",
            &format!("; fix: chmod 600 {fd}"),
        ],
    );
    write(&f, secret.as_bytes(), 0o600, (0, 0));
    env.run(&[]).expect(
        "client-secret-file",
        FAIL,
        &[
            "(owner root:root, mode 0600) cannot be read by postfix, the user smtp and the helper run as",
            &format!("; fix: chown postfix {fd} && chmod 600 {fd}"),
        ],
    );
    write(&f, b"\n", 0o600, postfix_ids());
    env.run(&[]).expect(
        "client-secret-file",
        FAIL,
        &[&fd, "put the client secret (and nothing else) into"],
    );
    std::fs::remove_file(&f).unwrap();
    env.run(&[]).expect(
        "client-secret-file",
        FAIL,
        &[
            &format!("{fd} does not exist"),
            "or remove client_secret_file from the config",
        ],
    );
    let real = env.root.join("real.secret");
    write(&real, secret.as_bytes(), 0o600, postfix_ids());
    std::os::unix::fs::symlink(&real, &f).unwrap();
    env.run(&[]).expect(
        "client-secret-file",
        FAIL,
        &["is a symbolic link", &format!("replace the symlink {fd}")],
    );
}
