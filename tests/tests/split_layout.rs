//! Issue 16, end to end: the split-secrets layout (refresh token in
//! `D/secrets/N`, beside the token file `D/N`) and `client_secret_file`,
//! with the real plugin loaded by the real libsasl2, the real helper and the
//! fake token endpoint. Refresh, herd and client_secret_file tests run in
//! both layouts; the kill and strace tests in the split layout.

mod refresher_support;

use common::secrets::{secrets_dir, secrets_path};
use refresher_support::{exit, Env, Rng, Scratch};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use testkit::provider::{FakeProvider, Mode};
use testkit::sasl::{run_client, ClientRun};

const SASL_CONTINUE: i32 = 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Layout {
    /// The C++ tool's: everything in the token file.
    Single,
    /// The refresh token in `secrets/N`.
    Split,
}

/// One account, used through the C client (real libsasl2 + built plugin)
/// with the real helper as `refresh_helper`.
struct Account {
    scratch: Scratch,
    provider: FakeProvider,
    layout: Layout,
    token: PathBuf,
    config: Value,
    /// Values that must never appear in any output besides the provider's.
    extra_secrets: Vec<String>,
}

impl Account {
    fn new(name: &str, layout: Layout, mode: Mode) -> Account {
        let scratch = Scratch::new(&format!("split-{name}"));
        let provider = FakeProvider::start();
        provider.set_mode(mode);
        provider.write_ca(&scratch.0.join("ca.pem")).unwrap();
        std::fs::create_dir(scratch.0.join("tokens")).unwrap();
        let config = json!({
            "client_id": provider.client_id(),
            "client_secret": provider.client_secret(),
            "token_endpoint": provider.url(),
            "ca_bundle_file": scratch.0.join("ca.pem"),
            "refresh_helper": testkit::bins::refresh_helper(),
            "refresh_timeout": 15,
        });
        let a = Account {
            token: scratch.0.join("tokens/user@example.com"),
            scratch,
            provider,
            layout,
            config,
            extra_secrets: Vec::new(),
        };
        a.write_config();
        a
    }

    fn config_path(&self) -> PathBuf {
        self.scratch.0.join("sasl-xoauth2.conf")
    }

    fn write_config(&self) {
        std::fs::write(self.config_path(), self.config.to_string()).unwrap();
    }

    /// Drop `client_secret` from the config and name a `client_secret_file`
    /// holding `secret` (with the trailing newline editors add) instead.
    fn use_client_secret_file(&mut self, secret: &str) -> PathBuf {
        let path = self.scratch.0.join("sasl-xoauth2.secret");
        std::fs::write(&path, format!("{secret}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        let c = self.config.as_object_mut().unwrap();
        c.remove("client_secret");
        c.insert("client_secret_file".into(), json!(path));
        self.extra_secrets.push(secret.to_string());
        self.write_config();
        path
    }

    /// A new account whose access token expires at `now + expires_in`,
    /// written by hand in the single-file layout and, for [`Layout::Split`],
    /// converted by `sasl-xoauth2-tool split-secrets`. Returns the refresh
    /// and the access token.
    fn write_account(&self, expires_in: i64) -> (String, String) {
        let rt = self.provider.issue_refresh_token();
        let at = self.provider.issue_access_token(expires_in.max(1));
        let v = json!({
            "access_token": at,
            "refresh_token": rt,
            "expiry": (now() + expires_in).to_string(),
            "x-kept": "yes",
        });
        std::fs::write(&self.token, v.to_string()).unwrap();
        std::fs::set_permissions(&self.token, std::fs::Permissions::from_mode(0o600)).unwrap();
        if self.layout == Layout::Split {
            split_secrets(&self.token);
        }
        let (t, s) = self.files();
        assert_eq!(t["access_token"], at.as_str());
        assert_eq!(self.refresh_token_of(&t, s.as_ref()), rt);
        (rt, at)
    }

    /// Mark the token file expired, leaving everything else as it is.
    fn expire(&self) {
        let mut v = self.files().0;
        v["expiry"] = json!("0");
        std::fs::write(&self.token, v.to_string()).unwrap();
    }

    /// The token file and (split layout) the secrets file, checked: valid
    /// JSON, the split layout's token file free of secrets, the secrets file
    /// 0600 in a 0700 directory; the single-file layout never gains one.
    fn files(&self) -> (Value, Option<Value>) {
        let bytes = std::fs::read(&self.token).unwrap();
        let token: Value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|e| panic!("token file is not JSON ({e}): {bytes:?}"));
        assert!(token["access_token"].is_string(), "{token}");
        let sp = secrets_path(&self.token);
        match self.layout {
            Layout::Single => {
                assert!(!secrets_dir(&self.token).exists(), "no secrets directory");
                (token, None)
            }
            Layout::Split => {
                assert_split_token_file(&token);
                assert_eq!(mode(&sp), 0o600, "secrets file mode");
                assert_eq!(mode(&secrets_dir(&self.token)), 0o700, "secrets dir mode");
                let s: Value = serde_json::from_slice(&std::fs::read(&sp).unwrap())
                    .expect("secrets file is JSON");
                assert!(s["refresh_token"].is_string(), "secrets file: {s}");
                (token, Some(s))
            }
        }
    }

    fn refresh_token_of(&self, token: &Value, secrets: Option<&Value>) -> String {
        secrets.unwrap_or(token)["refresh_token"]
            .as_str()
            .expect("a refresh token")
            .to_string()
    }

    fn client_args(&self) -> Vec<String> {
        ["--mech", "XOAUTH2", "--user", "user@example.com", "--pass"]
            .iter()
            .map(|s| s.to_string())
            .chain([self.token.display().to_string()])
            .collect()
    }

    /// One SASL exchange by the C client; nothing secret in its output
    /// (which includes what the helper reported through the plugin).
    fn auth(&self) -> ClientRun {
        let args = self.client_args();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = run_client(&self.config_path(), &args);
        run.assert_no_secret(
            &self
                .secrets()
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
        );
        run
    }

    fn secrets(&self) -> Vec<String> {
        let mut v = self.provider.secrets();
        v.extend(self.extra_secrets.iter().cloned());
        v
    }

    /// Temp files left in the token's and the secrets directory.
    fn temp_files(&self) -> Vec<String> {
        temp_files(&self.token)
    }
}

/// `sasl-xoauth2-tool split-secrets TOKEN`, which must succeed.
fn split_secrets(token: &Path) {
    let out = Command::new(testkit::bins::tool())
        .arg("split-secrets")
        .arg(token)
        .output()
        .unwrap();
    assert!(out.status.success(), "split-secrets failed: {out:?}");
    assert!(secrets_path(token).is_file());
}

fn assert_split_token_file(token: &Value) {
    for k in ["refresh_token", "client_secret"] {
        assert!(
            token.get(k).is_none(),
            "split layout: the token file holds {k}: {token}"
        );
    }
}

/// Files named like temp files (`.N.tmp-…`) beside `token` and in its
/// secrets directory.
fn temp_files(token: &Path) -> Vec<String> {
    [token.parent().unwrap().to_path_buf(), secrets_dir(token)]
        .iter()
        .filter_map(|d| std::fs::read_dir(d).ok())
        .flatten()
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|p| p.contains(".tmp-"))
        .collect()
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
}

fn now() -> i64 {
    refresher_support::now()
}

/// The access token the client sent in its XOAUTH2 initial response.
fn sent_token(run: &ClientRun) -> String {
    let out = run.out("start", 0).unwrap_or_default();
    String::from_utf8(out)
        .unwrap()
        .split("auth=Bearer ")
        .nth(1)
        .unwrap_or("")
        .trim_end_matches('\x01')
        .to_string()
}

// ---------------------------------------------------------------------------
// 1. Expired token -> refreshed, with rotation, in both layouts.

fn expired_token_is_refreshed(layout: Layout) {
    let a = Account::new(&format!("expired-{layout:?}"), layout, Mode::Rotating);
    let (old_rt, old_at) = a.write_account(-100);

    let run = a.auth();
    assert_eq!(run.rc("start", 0), Some(SASL_CONTINUE), "{run:?}");
    assert_eq!(a.provider.requests(), 1, "exactly one refresh");
    let sent = sent_token(&run);
    assert_ne!(sent, old_at);
    assert!(
        a.provider.is_valid_access_token(&sent),
        "the new token is sent"
    );

    let (t, s) = a.files();
    assert_eq!(
        t["access_token"],
        sent.as_str(),
        "the file holds the new token"
    );
    assert_eq!(t["x-kept"], "yes", "other fields kept");
    assert_eq!(mode(&a.token), 0o600);
    let rt = a.refresh_token_of(&t, s.as_ref());
    assert_ne!(rt, old_rt, "the rotated refresh token is stored");
    assert_eq!(
        a.provider.valid_refresh_tokens(),
        vec![rt.clone()],
        "the stored refresh token is the one the provider accepts"
    );
    if layout == Layout::Split {
        let bytes = String::from_utf8(std::fs::read(&a.token).unwrap()).unwrap();
        for secret in [&old_rt, &rt, &a.provider.client_secret().to_string()] {
            assert!(!bytes.contains(secret.as_str()), "token file: {bytes}");
        }
    }
    assert!(a.temp_files().is_empty(), "{:?}", a.temp_files());

    // Fresh now: the next client uses it without a refresh.
    let run = a.auth();
    assert_eq!(run.rc("start", 0), Some(SASL_CONTINUE), "{run:?}");
    assert_eq!(sent_token(&run), sent);
    assert_eq!(a.provider.requests(), 1);
}

#[test]
fn single_file_layout_expired_token_is_refreshed() {
    expired_token_is_refreshed(Layout::Single);
}

#[test]
fn split_layout_expired_token_is_refreshed() {
    expired_token_is_refreshed(Layout::Split);
}

// ---------------------------------------------------------------------------
// 2. Rotation under a herd of clients, in both layouts.

fn rotation_under_a_herd(layout: Layout) {
    const ROUNDS: usize = 4;
    const CLIENTS: usize = 16;
    let a = Account::new(&format!("herd-{layout:?}"), layout, Mode::Rotating);
    a.write_account(-100);
    for round in 0..ROUNDS {
        if round > 0 {
            a.expire();
        }
        let before = a.provider.requests();
        let runs: Vec<ClientRun> = std::thread::scope(|scope| {
            let hs: Vec<_> = (0..CLIENTS).map(|_| scope.spawn(|| a.auth())).collect();
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        assert_eq!(
            a.provider.requests() - before,
            1,
            "round {round}: one refresh for {CLIENTS} clients"
        );
        let (t, s) = a.files();
        let at = t["access_token"].as_str().unwrap();
        for r in &runs {
            assert_eq!(
                r.rc("start", 0),
                Some(SASL_CONTINUE),
                "round {round}: {r:?}"
            );
            assert_eq!(
                sent_token(r),
                at,
                "round {round}: every client sends the new token"
            );
        }
        assert!(a.provider.is_valid_access_token(at));
        assert_eq!(
            a.provider.valid_refresh_tokens(),
            vec![a.refresh_token_of(&t, s.as_ref())],
            "round {round}: the stored refresh token is the one the provider accepts"
        );
        assert!(
            a.temp_files().is_empty(),
            "round {round}: {:?}",
            a.temp_files()
        );
    }
    assert_eq!(a.provider.requests(), ROUNDS);
}

#[test]
fn single_file_layout_rotation_under_a_herd() {
    rotation_under_a_herd(Layout::Single);
}

#[test]
fn split_layout_rotation_under_a_herd() {
    rotation_under_a_herd(Layout::Split);
}

/// The helper-level herd of refresher_concurrency.rs in the split layout:
/// 10 rounds of 20 helpers started at once, alternately on an expired token
/// (exactly one request) and with `--force`; after each round the secrets
/// file holds the one refresh token the provider accepts and the token file
/// none.
#[test]
fn split_layout_rotation_under_concurrent_helpers() {
    let env = Env::with_mode("split-herd", Mode::Rotating);
    env.write_token(&env.expired_token());
    split_secrets(&env.token);
    let sp = secrets_path(&env.token);
    for round in 0..10 {
        let force = round % 2 == 1;
        if !force {
            let mut v = env.token_json();
            v["expiry"] = json!("0");
            env.write_token(&v);
        }
        let before = env.provider.requests();
        let args: &[&str] = if force { &["--force"] } else { &[] };
        let children: Vec<_> = (0..20).map(|_| env.spawn(args)).collect();
        for c in children {
            env.finish(c).expect_code(exit::OK);
        }
        if !force {
            assert_eq!(env.provider.requests() - before, 1, "round {round}");
        }
        let token = env.token_json();
        assert_split_token_file(&token);
        assert!(env
            .provider
            .is_valid_access_token(token["access_token"].as_str().unwrap()));
        let secrets: Value = serde_json::from_slice(&std::fs::read(&sp).unwrap()).unwrap();
        assert_eq!(
            env.provider.valid_refresh_tokens(),
            vec![secrets["refresh_token"].as_str().unwrap().to_string()],
            "round {round}: the secrets file must hold the refresh token the provider accepts"
        );
        assert!(temp_files(&env.token).is_empty(), "round {round}");
    }
}

// ---------------------------------------------------------------------------
// 3. SIGKILL at random instants, split layout, rotating provider.

/// The helper, started as the plugin starts it, killed at a random instant
/// of a refresh, 200 times. The provider rotates with a grace period (the
/// token presented stays valid until its successor is used; with strict
/// rotation a kill between the provider's answer and any write would lose
/// the account whatever the write order). After every kill: both files are
/// valid JSON, the token file holds no secret, the secrets file holds a
/// refresh token the provider accepts, and never an older one than the
/// access token in the token file came with (secrets first, then the token
/// file). The next run that completes leaves no temp file behind.
#[test]
fn split_layout_sigkill_at_random_instants_keeps_both_files_consistent() {
    const ITERATIONS: usize = 200;
    let mut env = Env::with_mode("split-kill", Mode::RotatingWithGrace);
    env.provider.set_expires_in(0, false);
    env.set_config("refresh_timeout", json!(5));
    env.write_token(&env.expired_token());
    split_secrets(&env.token);
    let sp = secrets_path(&env.token);
    // Kill instants spread over a whole run (and a bit past it): time a few
    // (the fastest: a slow first run would let most runs complete), then
    // adapt to the load so that about a quarter of the runs complete.
    let mut window = (0..3)
        .map(|_| {
            let start = std::time::Instant::now();
            env.run(&[]).expect_code(exit::OK);
            start.elapsed()
        })
        .min()
        .unwrap()
        .mul_f64(1.1);
    let mut rng = Rng::seeded();
    let (mut completed, mut between, mut last_between) = (0, 0, None);
    for i in 0..ITERATIONS {
        let mut child = env.spawn(&[]);
        std::thread::sleep(std::time::Duration::from_micros(
            rng.below(window.as_micros() as u64),
        ));
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        let code = out.status.code();
        env.check(out);

        let token = env.token_json();
        assert_split_token_file(&token);
        assert!(
            common::TokenFile::parse(&env.token_bytes(), &env.token).is_ok(),
            "iteration {i}: {token}"
        );
        let secrets: Value = serde_json::from_slice(&std::fs::read(&sp).unwrap())
            .unwrap_or_else(|e| panic!("iteration {i}: secrets file not JSON: {e}"));
        assert_eq!(mode(&sp), 0o600, "iteration {i}");
        let rt = secrets["refresh_token"].as_str().unwrap();
        assert!(
            env.provider.is_valid_refresh_token(rt),
            "iteration {i}: the secrets file's refresh token is no longer accepted"
        );
        let at = token["access_token"].as_str().unwrap();
        if let Some(issued_with) = env.provider.refresh_token_issued_with(at) {
            assert!(
                env.provider.rotated_from(rt, &issued_with),
                "iteration {i}: the token file holds an access token whose refresh token \
                 never reached the secrets file"
            );
            if rt != issued_with && last_between.as_ref() != Some(&(rt.to_string(), at.to_string()))
            {
                between += 1;
                last_between = Some((rt.to_string(), at.to_string()));
            }
        }
        let temps = temp_files(&env.token);
        window = window.mul_f64(if code == Some(exit::OK) { 0.9 } else { 1.03 });
        if code == Some(exit::OK) {
            completed += 1;
            assert!(
                temps.is_empty(),
                "iteration {i}: a completed run left {temps:?}"
            );
        } else {
            assert!(
                temps.len() <= 2,
                "iteration {i}: temp files pile up: {temps:?}"
            );
        }
    }
    eprintln!(
        "final kill window {window:?}: {completed}/{ITERATIONS} runs completed before the kill; \
         {between} kills between the two renames (secrets file found a rotation \
         ahead of the token file); {} requests",
        env.provider.requests()
    );
    assert!(completed < ITERATIONS, "no run was killed");
    // A run to completion refreshes with what the kills left.
    let before = env.provider.requests();
    env.run(&[])
        .expect_code(exit::OK)
        .expect_status(&["ok: refreshed "]);
    assert_eq!(env.provider.requests(), before + 1);
    assert!(
        temp_files(&env.token).is_empty(),
        "{:?}",
        temp_files(&env.token)
    );
    let at = env.token_json()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(env.provider.issued_access_tokens().contains(&at));
    let secrets: Value = serde_json::from_slice(&std::fs::read(&sp).unwrap()).unwrap();
    assert_eq!(
        env.provider.refresh_token_issued_with(&at).as_deref(),
        secrets["refresh_token"].as_str()
    );
}

// ---------------------------------------------------------------------------
// 4. strace: the client's processes never touch the secrets; the helper does.

/// One line of `strace -f -o` output: the pid and the rest.
fn strace_lines(text: &str) -> Vec<(u32, &str)> {
    text.lines()
        .filter_map(|l| {
            let (pid, rest) = l.split_once(' ')?;
            Some((pid.parse().ok()?, rest.trim_start()))
        })
        .collect()
}

/// The syscall of a line (`openat(...) = 3`, `<... clone resumed>...`) and
/// its result, if complete.
fn syscall_of(rest: &str) -> (&str, Option<&str>) {
    let name = match rest.strip_prefix("<... ") {
        Some(r) => r.split(' ').next().unwrap_or(""),
        None => rest.split('(').next().unwrap_or(""),
    };
    let ret = rest
        .rsplit_once(") = ")
        .map(|(_, r)| r.split(' ').next().unwrap_or(""));
    (name, ret)
}

/// Split a `strace -f` trace into the lines of the client's own processes
/// and those of the helper: a process becomes the helper when it execs
/// `sasl-xoauth2-refresh`; its later clones are the helper's too.
fn by_side(trace: &str) -> (Vec<&str>, Vec<&str>) {
    let mut helper: HashSet<u32> = HashSet::new();
    let (mut client_lines, mut helper_lines) = (Vec::new(), Vec::new());
    for (pid, rest) in strace_lines(trace) {
        let (name, ret) = syscall_of(rest);
        if name.starts_with("execve") && rest.contains("sasl-xoauth2-refresh\"") {
            helper.insert(pid);
        }
        if helper.contains(&pid) {
            helper_lines.push(rest);
        } else {
            client_lines.push(rest);
        }
        if matches!(name, "clone" | "clone3" | "fork" | "vfork") && helper.contains(&pid) {
            if let Some(child) = ret.and_then(|r| r.parse::<u32>().ok()) {
                helper.insert(child);
            }
        }
    }
    (client_lines, helper_lines)
}

/// The trace split on a hand-made trace: the fork child is the client's
/// until its exec of the helper; the helper's clone is the helper's.
#[test]
fn strace_trace_is_split_at_the_helpers_exec() {
    let trace = "\
100 openat(AT_FDCWD, \"/t/tokens/a\", O_RDONLY) = 3
100 clone(child_stack=NULL, flags=SIGCHLD) = 101
101 openat(AT_FDCWD, \"/dev/null\", O_RDWR <unfinished ...>
100 statx(AT_FDCWD, \"/t/tokens/secrets/a\", 0) = -1 ENOENT (No such file)
101 <... openat resumed>) = 0
101 execve(\"/bin/sasl-xoauth2-refresh\", [\"sasl-xoauth2-refresh\"], 0x0 /* 0 vars */) = 0
101 clone3({flags=CLONE_VM, exit_signal=0}, 88 <unfinished ...>
101 <... clone3 resumed>) = 102
102 openat(AT_FDCWD, \"/t/tokens/secrets/a\", O_RDONLY) = 4
";
    let (client, helper) = by_side(trace);
    assert_eq!(client.len(), 5, "{client:?}");
    assert!(client[3].contains("/t/tokens/secrets/a"), "{client:?}");
    assert_eq!(helper.len(), 4, "{helper:?}");
    assert!(helper[3].contains("/t/tokens/secrets/a"), "{helper:?}");
    assert_eq!(syscall_of(helper[2]), ("clone3", Some("102")));
}

#[test]
fn strace_client_never_opens_the_secrets_the_helper_does() {
    let strace = Command::new("strace").arg("-V").output();
    assert!(
        strace.is_ok_and(|o| o.status.success()),
        "strace is required (scripts/deps installs it: apt-get install strace)"
    );
    let mut a = Account::new("strace", Layout::Split, Mode::Rotating);
    let secret = a.provider.client_secret().to_string();
    let secret_file = a.use_client_secret_file(&secret);
    a.write_account(-100);
    let trace = a.scratch.0.join("strace.out");
    let out = Command::new("strace")
        .args(["-f", "-s", "4096", "-o"])
        .arg(&trace)
        .arg("-e")
        .arg(
            "trace=open,openat,openat2,stat,statx,newfstatat,lstat,access,faccessat,faccessat2,\
             readlink,readlinkat,execve,execveat,clone,clone3,fork,vfork",
        )
        .arg(testkit::sasl::client_bin())
        .args(a.client_args())
        .env_clear()
        .env("SASL_PATH", testkit::sasl::plugin_dir())
        .env("SASL_XOAUTH2_CONFIG", a.config_path())
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let run = ClientRun {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    run.assert_no_secret(&a.secrets().iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(run.rc("start", 0), Some(SASL_CONTINUE), "{run:?}");
    assert!(a.provider.is_valid_access_token(&sent_token(&run)));
    assert_eq!(a.provider.requests(), 1);

    let trace = std::fs::read_to_string(&trace).unwrap();
    let (client, helper) = by_side(&trace);
    assert!(!helper.is_empty(), "no exec of the helper in the trace");
    let token = a.token.display().to_string();
    assert!(
        client.iter().any(|l| l.contains(&token)),
        "sanity: the plugin reads the token file in the client process"
    );
    let dir = secrets_dir(&a.token).display().to_string();
    let secret_file = secret_file.display().to_string();
    for l in &client {
        assert!(
            !l.contains(&dir) && !l.contains(&secret_file),
            "the client process touched a secret: {l}"
        );
    }
    let opened = |path: &str| {
        helper.iter().any(|l| {
            let (name, ret) = syscall_of(l);
            name.starts_with("open")
                && l.contains(&format!("\"{path}\""))
                && ret.is_some_and(|r| !r.starts_with('-'))
        })
    };
    assert!(
        opened(&secret_file),
        "the helper never opened {secret_file}:\n{}",
        helper.join("\n")
    );
    let sp = secrets_path(&a.token).display().to_string();
    assert!(
        opened(&sp),
        "the helper never opened {sp}:\n{}",
        helper.join("\n")
    );
    // The refresh really went through the secrets file.
    let last = a.provider.recorded().pop().unwrap();
    assert_eq!(last.field("client_secret"), Some(secret.as_str()));
}

// ---------------------------------------------------------------------------
// 5. client_secret_file.

/// The config names a `client_secret_file` and no `client_secret`: the
/// refresh sends the file's secret (trailing newline stripped), and the
/// secret shows up in no output and in no token file.
fn client_secret_file_refreshes(layout: Layout) {
    let mut a = Account::new(&format!("csf-{layout:?}"), layout, Mode::Normal);
    let secret = a.provider.client_secret().to_string();
    a.use_client_secret_file(&secret);
    assert!(!std::fs::read_to_string(a.config_path())
        .unwrap()
        .contains(&secret));
    a.write_account(-100);
    let run = a.auth();
    assert_eq!(run.rc("start", 0), Some(SASL_CONTINUE), "{run:?}");
    assert!(a.provider.is_valid_access_token(&sent_token(&run)));
    let reqs = a.provider.recorded();
    assert_eq!(reqs.len(), 1);
    assert_eq!(reqs[0].field("client_secret"), Some(secret.as_str()));
    let token = std::fs::read_to_string(&a.token).unwrap();
    assert!(!token.contains(&secret), "{token}");
    a.files();
}

#[test]
fn single_file_layout_client_secret_file_refreshes() {
    client_secret_file_refreshes(Layout::Single);
}

#[test]
fn split_layout_client_secret_file_refreshes() {
    client_secret_file_refreshes(Layout::Split);
}

/// A wrong secret in the file: the provider refuses the client, the client
/// fails, the log says so, the files are untouched and the wrong secret is
/// printed nowhere.
#[test]
fn wrong_client_secret_file_fails_cleanly() {
    let mut a = Account::new("csf-wrong", Layout::Split, Mode::Normal);
    a.use_client_secret_file("wrong-secret-0123456789abcdef");
    a.write_account(-100);
    let before: HashMap<&str, Vec<u8>> = [
        ("token", std::fs::read(&a.token).unwrap()),
        ("secrets", std::fs::read(secrets_path(&a.token)).unwrap()),
    ]
    .into();
    let run = a.auth();
    assert!(run.rc("start", 0).unwrap() < 0, "{run:?}");
    assert_eq!(a.provider.requests(), 1);
    assert!(
        run.log().iter().any(|l| l.contains("invalid_client")),
        "the log names the client secret problem: {run:?}"
    );
    assert_eq!(std::fs::read(&a.token).unwrap(), before["token"]);
    assert_eq!(
        std::fs::read(secrets_path(&a.token)).unwrap(),
        before["secrets"]
    );
}
