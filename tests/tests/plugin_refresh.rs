//! The plugin, loaded by the real libsasl2, running the real refresh helper
//! against the local fake token endpoint.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use testkit::provider::{FakeProvider, Mode};
use testkit::sasl::{hex, run_client, ClientRun};

const SASL_CONTINUE: i32 = 1;

struct Setup {
    dir: PathBuf,
    provider: FakeProvider,
    refresh_token: String,
}

impl Setup {
    fn new(name: &str, extra_config: &str) -> Setup {
        let dir = std::env::temp_dir().join(format!("sx2-prefresh-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("tokens")).unwrap();
        let provider = FakeProvider::start();
        provider.write_ca(&dir.join("ca.pem")).unwrap();
        let refresh_token = provider.issue_refresh_token();
        let s = Setup {
            dir,
            provider,
            refresh_token,
        };
        s.config(extra_config);
        s
    }

    fn config(&self, extra: &str) {
        self.config_with_helper(&testkit::bins::refresh_helper(), extra)
    }

    fn config_with_helper(&self, helper: &Path, extra: &str) {
        std::fs::write(
            self.dir.join("sasl-xoauth2.conf"),
            format!(
                r#"{{"client_id":"{}","client_secret":"{}","token_endpoint":"{}","ca_bundle_file":"{}","refresh_helper":"{}"{extra}}}"#,
                self.provider.client_id(),
                self.provider.client_secret(),
                self.provider.url(),
                self.dir.join("ca.pem").display(),
                helper.display(),
            ),
        )
        .unwrap();
    }

    /// A token file whose access token expires at `now + expires_in`.
    fn token(&self, expires_in: i64) -> (PathBuf, String) {
        let access = self.provider.issue_access_token(expires_in.max(1));
        let path = self.dir.join("tokens/user@example.com");
        let expiry = now() + expires_in;
        std::fs::write(
            &path,
            format!(
                r#"{{"access_token":"{access}","refresh_token":"{}","expiry":"{expiry}","x-kept":"yes"}}"#,
                self.refresh_token
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        (path, access)
    }

    fn auth(&self, token: &Path, extra: &[&str]) -> ClientRun {
        let mut args = vec![
            "--mech",
            "XOAUTH2",
            "--user",
            "user@example.com",
            "--pass",
            token.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        let run = run_client(&self.dir.join("sasl-xoauth2.conf"), &args);
        let secrets = self.provider.secrets();
        run.assert_no_secret(&secrets.iter().map(String::as_str).collect::<Vec<_>>());
        run
    }

    fn file_access_token(&self, token: &Path) -> String {
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(token).unwrap()).unwrap();
        v["access_token"].as_str().unwrap().to_string()
    }
}

impl Drop for Setup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// The access token the client sent in its XOAUTH2 initial response.
fn sent_token(run: &ClientRun) -> String {
    let out = run.out("start", 0).unwrap_or_default();
    let text = String::from_utf8(out).unwrap();
    text.split("auth=Bearer ")
        .nth(1)
        .unwrap_or("")
        .trim_end_matches('\x01')
        .to_string()
}

fn counter(run: &ClientRun, name: &str) -> i64 {
    run.stdout
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} line: {run:?}"))
}

/// Processes running the helper on files below `dir`.
fn helpers_running(dir: &Path) -> usize {
    let needle = dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read(e.path().join("cmdline")).ok())
        .filter(|c| {
            let c = String::from_utf8_lossy(c);
            c.contains("sasl-xoauth2-refresh") && c.contains(&needle)
        })
        .count()
}

fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let start = Instant::now();
    while !f() {
        assert!(start.elapsed() < limit, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn expired_token_is_refreshed_once_and_auth_succeeds() {
    let s = Setup::new("expired", "");
    let (token, old) = s.token(-100);
    let baseline = s.auth(&s.token(3600).0, &[]);
    let (token2, _) = s.token(-100);
    assert_eq!(token, token2);
    let before = s.provider.requests();

    let run = s.auth(&token, &[]);
    assert_eq!(run.rc("start", 0), Some(SASL_CONTINUE), "{run:?}");
    assert_eq!(s.provider.requests(), before + 1, "exactly one refresh");
    let sent = sent_token(&run);
    assert_ne!(sent, old);
    assert!(
        s.provider.is_valid_access_token(&sent),
        "the new token is sent"
    );
    assert_eq!(
        s.file_access_token(&token),
        sent,
        "the file holds the new token"
    );
    let meta = std::fs::metadata(&token).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o600, "mode kept");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&token).unwrap()).unwrap();
    assert_eq!(v["x-kept"], "yes");
    assert!(v["expiry"].as_str().unwrap().parse::<i64>().unwrap() > now() + 3000);
    assert_eq!(counter(&run, "children"), 0, "no zombie or stray child");
    assert_eq!(
        counter(&run, "fds"),
        counter(&baseline, "fds"),
        "no leaked descriptor"
    );
}

#[test]
fn works_when_the_host_ignores_sigchld() {
    let s = Setup::new("sigchld", "");
    let (token, _) = s.token(-100);
    let run = s.auth(&token, &["--ignore-sigchld"]);
    assert_eq!(run.rc("start", 0), Some(SASL_CONTINUE), "{run:?}");
    assert!(s.provider.is_valid_access_token(&sent_token(&run)));
    assert_eq!(counter(&run, "children"), 0);
}

#[test]
fn fifty_concurrent_auths_cause_one_refresh() {
    let s = Setup::new("fifty", "");
    let (token, _) = s.token(-100);
    let before = s.provider.requests();
    let runs: Vec<ClientRun> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..50)
            .map(|_| scope.spawn(|| s.auth(&token, &[])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = runs
        .iter()
        .filter(|r| r.rc("start", 0) == Some(SASL_CONTINUE))
        .count();
    assert_eq!(
        ok,
        50,
        "all succeed: {:?}",
        runs.iter()
            .find(|r| r.rc("start", 0) != Some(SASL_CONTINUE))
    );
    assert_eq!(
        s.provider.requests() - before,
        1,
        "exactly one HTTP refresh"
    );
    let sent: std::collections::HashSet<String> = runs.iter().map(sent_token).collect();
    assert_eq!(sent.len(), 1, "everyone sent the one new token");
}

#[test]
fn hung_endpoint_fails_within_refresh_timeout_and_leaves_no_process() {
    let s = Setup::new("hung", r#","refresh_timeout":2"#);
    let (token, _) = s.token(-100);
    let original = std::fs::read(&token).unwrap();
    s.provider.set_mode(Mode::Hung);
    let start = Instant::now();
    let run = s.auth(&token, &[]);
    let took = start.elapsed();
    assert!(run.rc("start", 0).unwrap() < 0, "{run:?}");
    assert!(
        took < Duration::from_secs(3),
        "took {took:?}, refresh_timeout is 2 s"
    );
    assert!(run.log().iter().any(|l| l.contains("refresh")), "{run:?}");
    assert_eq!(std::fs::read(&token).unwrap(), original, "file untouched");
    assert_eq!(counter(&run, "children"), 0);
    // The helper bounds itself by refresh_timeout; nobody kills it early.
    wait_for("the helper to give up", Duration::from_secs(5), || {
        helpers_running(&s.dir) == 0
    });
}

#[test]
fn token_in_prefetch_window_is_used_and_refreshed_in_the_background() {
    let s = Setup::new("prefetch", "");
    let (token, old) = s.token(300); // valid, but within the 600 s prefetch window
    let run = s.auth(&token, &[]);
    assert_eq!(run.rc("start", 0), Some(SASL_CONTINUE), "{run:?}");
    assert_eq!(
        sent_token(&run),
        old,
        "the still-valid token is used at once"
    );
    assert_eq!(
        counter(&run, "children"),
        0,
        "the background refresh is not our child"
    );
    wait_for("background refresh", Duration::from_secs(15), || {
        s.file_access_token(&token) != old
    });
    assert!(s
        .provider
        .is_valid_access_token(&s.file_access_token(&token)));
    wait_for("helper exit", Duration::from_secs(10), || {
        helpers_running(&s.dir) == 0
    });
}

#[test]
fn rejected_token_triggers_a_forced_refresh() {
    let s = Setup::new("forced", "");
    let (token, old) = s.token(3600);
    s.provider.revoke_access_token(&old);
    let challenge =
        hex(br#"{"status":"401","schemes":"Bearer","scope":"https://mail.google.com/"}"#);
    let run = s.auth(&token, &["--step", &challenge]);
    assert_eq!(run.rc("step", 0), Some(SASL_CONTINUE), "{run:?}");
    assert!(
        run.log()
            .iter()
            .any(|l| l.contains("forced refresh started")),
        "{run:?}"
    );
    wait_for("forced refresh", Duration::from_secs(15), || {
        s.file_access_token(&token) != old
    });
    let run = s.auth(&token, &[]);
    assert!(
        s.provider.is_valid_access_token(&sent_token(&run)),
        "the next attempt has a good token"
    );
}

#[test]
fn invalid_grant_says_to_reauthorise_and_leaves_the_file() {
    let s = Setup::new("invalidgrant", "");
    let (token, _) = s.token(-100);
    let original = std::fs::read(&token).unwrap();
    s.provider.set_mode(Mode::InvalidGrant);
    let run = s.auth(&token, &[]);
    assert!(run.rc("start", 0).unwrap() < 0, "{run:?}");
    assert!(
        run.log()
            .iter()
            .any(|l| l.contains("get-token") && l.contains(&token.display().to_string())),
        "{run:?}"
    );
    assert_eq!(std::fs::read(&token).unwrap(), original);
}

#[test]
fn refresh_works_when_the_host_has_fd_0_closed() {
    let s = Setup::new("nostdin", "");
    let (token, old) = s.token(-100);
    let run = s.auth(&token, &["--close-stdin"]);
    assert_eq!(run.rc("start", 0), Some(SASL_CONTINUE), "{run:?}");
    let sent = sent_token(&run);
    assert_ne!(sent, old);
    assert!(s.provider.is_valid_access_token(&sent), "{run:?}");
    assert_eq!(counter(&run, "children"), 0);
}

#[test]
fn the_helpers_exit_status_is_known_when_the_host_ignores_sigchld() {
    let s = Setup::new("sigchld-status", "");
    let (token, _) = s.token(-100);
    s.provider.set_mode(Mode::InvalidGrant);
    let run = s.auth(&token, &["--hostile-signals"]);
    assert!(run.rc("start", 0).unwrap() < 0, "{run:?}");
    // The supervisor resets SIGCHLD, so it reaps the helper itself and the
    // plugin learns exit code and status line, not "status unavailable".
    assert!(
        run.log().iter().any(|l| l.contains("helper exit")),
        "{run:?}"
    );
    assert!(!run.stderr.contains("status unavailable"), "{run:?}");
}

/// The supervisor of a background refresh, while the helper waits for a
/// slow endpoint: `(supervisor pid, helper pid)`.
fn supervisor_of_helper(dir: &Path) -> Option<(i32, i32)> {
    let needle = dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let cmd = std::fs::read(e.path().join("cmdline")).ok()?;
        let cmd = String::from_utf8_lossy(&cmd);
        if !(cmd.contains("sasl-xoauth2-refresh") && cmd.contains(&needle)) {
            return None;
        }
        let stat = std::fs::read_to_string(e.path().join("stat")).ok()?;
        let ppid = stat.rsplit(')').next()?.split_whitespace().nth(1)?;
        Some((ppid.parse().ok()?, e.file_name().to_str()?.parse().ok()?))
    })
}

fn proc_field(pid: i32, name: &str) -> String {
    let st = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    st.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("{name} in /proc/{pid}/status"))
        .trim()
        .to_string()
}

/// A host that blocks every signal, ignores SIGCHLD, catches SIGTERM, has
/// a descriptor open without O_CLOEXEC and a kernel without close_range:
/// the supervisor still starts clean (default signal actions, empty mask,
/// none of the host's descriptors), holds a pidfd of the helper and sleeps
/// in poll instead of waking up every 50 ms.
#[test]
fn supervisor_is_clean_and_waits_on_a_pidfd_without_polling() {
    let s = Setup::new("supervisor", "");
    let (token, _) = s.token(300); // prefetch window: background refresh
    s.provider.set_mode(Mode::Slow(Duration::from_millis(4000)));
    let marker = s.dir.join("host-only-descriptor");
    std::fs::write(&marker, b"").unwrap();
    let run = s.auth(
        &token,
        &[
            "--hostile-signals",
            "--no-close-range",
            "--leak-fd",
            marker.to_str().unwrap(),
        ],
    );
    assert_eq!(run.rc("start", 0), Some(SASL_CONTINUE), "{run:?}");
    let mut found = None;
    wait_for("the helper", Duration::from_secs(5), || {
        found = supervisor_of_helper(&s.dir);
        found.is_some()
    });
    let (sup, helper) = found.unwrap();
    assert_eq!(proc_field(sup, "SigBlk"), "0000000000000000");
    assert_eq!(
        proc_field(sup, "SigIgn"),
        "0000000000001000",
        "only SIGPIPE"
    );
    assert_eq!(proc_field(sup, "SigCgt"), "0000000000000000");
    let links: Vec<String> = std::fs::read_dir(format!("/proc/{sup}/fd"))
        .unwrap()
        .flatten()
        .filter_map(|e| std::fs::read_link(e.path()).ok())
        .map(|l| l.to_string_lossy().into_owned())
        .collect();
    assert!(
        links.iter().any(|l| l == "anon_inode:[pidfd]"),
        "no pidfd: {links:?}"
    );
    for pid in [sup, helper] {
        let fds: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
            .unwrap()
            .flatten()
            .filter_map(|e| std::fs::read_link(e.path()).ok())
            .map(|l| l.to_string_lossy().into_owned())
            .collect();
        assert!(
            !fds.iter().any(|l| l.contains("host-only-descriptor")),
            "pid {pid} kept the host's descriptor: {fds:?}"
        );
    }
    let switches = || {
        proc_field(sup, "voluntary_ctxt_switches")
            .parse::<u64>()
            .unwrap()
    };
    let before = switches();
    std::thread::sleep(Duration::from_millis(1000));
    let woke = switches() - before;
    assert!(
        woke <= 3,
        "the supervisor woke {woke} times in 1 s while the helper waited"
    );
    wait_for("background refresh", Duration::from_secs(20), || {
        helpers_running(&s.dir) == 0
    });
}

/// OpenSSH safe_path: the plugin runs the helper only when it and every
/// directory above it belong to root and nobody else can write them, and
/// only through the descriptor it opened (never by path); otherwise the
/// log says what to fix and the token file is left alone.
#[test]
fn unsafe_helper_binary_is_refused_with_a_clear_log() {
    use std::os::unix::fs::PermissionsExt;
    let s = Setup::new("safepath", "");
    let (token, _) = s.token(-100);
    let original = std::fs::read(&token).unwrap();
    let mode =
        |p: &Path, m| std::fs::set_permissions(p, std::fs::Permissions::from_mode(m)).unwrap();
    let open_dir = s.dir.join("open-dir");
    std::fs::create_dir(&open_dir).unwrap();
    mode(&open_dir, 0o777);
    let in_open_dir = open_dir.join("sasl-xoauth2-refresh");
    std::fs::copy(testkit::bins::refresh_helper(), &in_open_dir).unwrap();
    let safe_dir = s.dir.join("safe-dir");
    std::fs::create_dir(&safe_dir).unwrap();
    mode(&safe_dir, 0o755);
    let writable = safe_dir.join("writable-helper");
    std::fs::copy(testkit::bins::refresh_helper(), &writable).unwrap();
    mode(&writable, 0o775);
    let foreign = safe_dir.join("foreign-helper");
    std::fs::copy(testkit::bins::refresh_helper(), &foreign).unwrap();
    std::os::unix::fs::chown(&foreign, Some(4242), None).unwrap();
    let cases: [(&Path, &str); 4] = [
        (&in_open_dir, "open-dir is owned by uid 0 with mode 0777"),
        (&writable, "owned by uid 0 with mode 0775"),
        (&foreign, "owned by uid 4242"),
        (Path::new("/nonexistent/helper"), "cannot be opened"),
    ];
    for (helper, why) in cases {
        s.config_with_helper(helper, "");
        let before = s.provider.requests();
        let run = s.auth(&token, &[]);
        assert!(run.rc("start", 0).unwrap() < 0, "{helper:?}: {run:?}");
        assert!(
            run.log()
                .iter()
                .any(|l| l.contains("refresh helper") && l.contains(why)),
            "{helper:?}: log must say {why:?}: {run:?}"
        );
        assert_eq!(s.provider.requests(), before, "{helper:?} must not run");
        assert_eq!(std::fs::read(&token).unwrap(), original);
    }
    // The same binary in a safe place runs.
    let good = safe_dir.join("good-helper");
    std::fs::copy(testkit::bins::refresh_helper(), &good).unwrap();
    mode(&good, 0o755);
    s.config_with_helper(&good, "");
    let run = s.auth(&token, &[]);
    assert_eq!(run.rc("start", 0), Some(SASL_CONTINUE), "{run:?}");
}

/// A provider answering 5xx to its first five requests and twenty logins
/// with an expired token at once: the helper holding the lock retries with
/// backoff within refresh_timeout, the others find the new token under the
/// lock. Every login succeeds and the endpoint sees 5 + 1 requests.
#[test]
fn twenty_logins_survive_five_server_errors_with_one_refresh() {
    let s = Setup::new("herd", "");
    let (token, _) = s.token(-100);
    s.provider.set_mode(Mode::ServerErrorsThenOk(5));
    let before = s.provider.requests();
    let runs: Vec<ClientRun> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..20)
            .map(|_| scope.spawn(|| s.auth(&token, &[])))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let failed: Vec<&ClientRun> = runs
        .iter()
        .filter(|r| r.rc("start", 0) != Some(SASL_CONTINUE))
        .collect();
    assert!(
        failed.is_empty(),
        "{} of 20 failed: {:?}",
        failed.len(),
        failed.first()
    );
    assert_eq!(
        s.provider.requests() - before,
        6,
        "5 errors, then 1 success"
    );
    let sent: std::collections::HashSet<String> = runs.iter().map(sent_token).collect();
    assert_eq!(sent.len(), 1, "everyone sent the one new token");
}

/// The helper is run only through the descriptor opened at init. When
/// execveat fails (here: a script, which the kernel cannot run from a
/// close-on-exec descriptor), there is no fallback to exec by path; the
/// log says what happened.
#[test]
fn a_failed_execveat_is_reported_not_retried_by_path() {
    use std::os::unix::fs::PermissionsExt;
    let s = Setup::new("execveat", "");
    let (token, _) = s.token(-100);
    let original = std::fs::read(&token).unwrap();
    let bin = s.dir.join("bin");
    std::fs::create_dir(&bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let script = bin.join("helper.sh");
    let ran = s.dir.join("script-ran");
    std::fs::write(&script, format!("#!/bin/sh\ntouch {}\n", ran.display())).unwrap();
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    s.config_with_helper(&script, "");
    let run = s.auth(&token, &[]);
    assert!(run.rc("start", 0).unwrap() < 0, "{run:?}");
    assert!(
        run.log().iter().any(|l| l.contains("helper exit 127")
            && l.contains("execveat of the refresh helper failed: errno 002")),
        "{run:?}"
    );
    assert!(!ran.exists(), "the script must not have run by path");
    assert_eq!(std::fs::read(&token).unwrap(), original);
}

/// A helper that never finishes (stopped with SIGSTOP) is killed by its
/// supervisor, through the pidfd, at the safety deadline
/// (3 × refresh_timeout + 30 s), and the supervisor then exits too.
#[test]
fn a_wedged_helper_is_killed_at_the_safety_deadline() {
    let s = Setup::new("wedged", r#","refresh_timeout":1"#);
    let (token, _) = s.token(300); // prefetch window: background refresh
    s.provider.set_mode(Mode::Hung);
    let run = s.auth(&token, &[]);
    assert_eq!(run.rc("start", 0), Some(SASL_CONTINUE), "{run:?}");
    let mut found = None;
    wait_for("the helper", Duration::from_secs(5), || {
        found = supervisor_of_helper(&s.dir);
        found.is_some()
    });
    let (sup, helper) = found.unwrap();
    let started = Instant::now();
    // SAFETY: stopping the helper we found; a stale pid only fails.
    assert_eq!(unsafe { libc::kill(helper, libc::SIGSTOP) }, 0);
    wait_for(
        "the supervisor to kill the helper",
        Duration::from_secs(45),
        || helpers_running(&s.dir) == 0,
    );
    let took = started.elapsed();
    assert!(
        took > Duration::from_secs(25),
        "killed after {took:?}: only at the safety deadline (33 s from its start)"
    );
    wait_for("the supervisor to exit", Duration::from_secs(5), || {
        // Gone, or a zombie waiting for init.
        std::fs::read_to_string(format!("/proc/{sup}/stat")).map_or(true, |st| {
            st.rsplit(')')
                .next()
                .unwrap_or("")
                .trim_start()
                .starts_with('Z')
        })
    });
}

#[test]
fn token_file_pointing_at_another_endpoint_is_refused_and_nothing_sent() {
    // The attack of issue 11 through the real plugin: whoever can write
    // the token file names their own endpoint, and a CA for it in the
    // token directory, and expires the token.
    let s = Setup::new("trust-rule", "");
    let evil = FakeProvider::start();
    let ca = s.dir.join("tokens/evil-ca.pem");
    evil.write_ca(&ca).unwrap();
    let path = s.dir.join("tokens/user@example.com");
    std::fs::write(
        &path,
        format!(
            r#"{{"refresh_token":"{}","expiry":"0","token_endpoint":"{}","ca_bundle_file":"{}"}}"#,
            s.refresh_token,
            evil.url(),
            ca.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
    let before = std::fs::read(&path).unwrap();
    let run = s.auth(&path, &[]);
    assert!(run.rc("start", 0).unwrap() < 0, "{run:?}");
    assert_eq!(
        evil.requests(),
        0,
        "the token file's endpoint was contacted"
    );
    assert_eq!(s.provider.requests(), 0);
    assert_eq!(std::fs::read(&path).unwrap(), before);
    let log = run.log().join("\n");
    for want in [
        "\"token_endpoint\"",
        "allowed_token_endpoints",
        "nothing was sent",
    ] {
        assert!(log.contains(want), "log lacks {want:?}:\n{log}");
    }
    assert!(!log.contains(evil.client_secret()) && !log.contains(s.provider.client_secret()));
}
