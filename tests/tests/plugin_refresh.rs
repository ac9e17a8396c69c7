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
        let helper = testkit::bins::refresh_helper();
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
