//! Harness shared by tests/refresher*.rs: a scratch directory with a config
//! and a token file, the fake provider, and runs of the real helper binary
//! the way the plugin runs it (empty environment, `--config-fd 0`, the
//! handoff on a stdin pipe), each run's output scanned for secrets.
#![allow(dead_code)]

use common::handoff::Handoff;
use serde_json::{json, Value};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use testkit::provider::{FakeProvider, Mode};

pub use common::exit;

/// A scratch directory removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        static N: AtomicU64 = AtomicU64::new(0);
        let d = std::env::temp_dir().join(format!(
            "sx2-refresher-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::set_permissions(&d, std::fs::Permissions::from_mode(0o755)).unwrap();
        Scratch(d)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// One finished run of the helper.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// The one status line.
    pub fn status(&self) -> &str {
        let lines: Vec<&str> = self.stdout.lines().collect();
        assert_eq!(
            lines.len(),
            1,
            "stdout must be exactly one status line: {self:?}"
        );
        lines[0]
    }

    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "unexpected exit code: {self:#?}");
        self
    }

    pub fn expect_status(&self, needles: &[&str]) -> &Self {
        let s = self.status();
        for n in needles {
            assert!(s.contains(n), "status line lacks {n:?}: {self:#?}");
        }
        self
    }
}

pub struct Env {
    pub scratch: Scratch,
    pub provider: FakeProvider,
    /// Directory holding the token (a subdirectory of scratch).
    pub dir: PathBuf,
    pub token: PathBuf,
    pub config_path: PathBuf,
    /// The config JSON the handoff carries (and that is written to config_path).
    pub config: Value,
    /// CA PEM put in the handoff (the fake's CA unless changed).
    pub ca_pem: String,
    /// Extra values that must never show up in output.
    pub extra_secrets: Vec<String>,
    /// Run the helper as this uid/gid (the token owner) instead of ours.
    pub as_uid: Option<u32>,
}

impl Env {
    pub fn new(name: &str) -> Env {
        Self::with_mode(name, Mode::Normal)
    }

    pub fn with_mode(name: &str, mode: Mode) -> Env {
        let provider = FakeProvider::start();
        provider.set_mode(mode);
        Self::with_provider(name, provider)
    }

    /// An Env around `provider` (config, handoff CA and tokens are its).
    pub fn with_provider(name: &str, provider: FakeProvider) -> Env {
        let scratch = Scratch::new(name);
        let dir = scratch.0.join("tokens");
        std::fs::create_dir(&dir).unwrap();
        let config = json!({
            "client_id": provider.client_id(),
            "client_secret": provider.client_secret(),
            "token_endpoint": provider.url(),
            "refresh_timeout": 15,
        });
        let config_path = scratch.0.join("sasl-xoauth2.conf");
        let ca_pem = provider.ca_pem().to_string();
        let env = Env {
            token: dir.join("user@example.com.json"),
            dir,
            config_path,
            config,
            ca_pem,
            scratch,
            provider,
            extra_secrets: Vec::new(),
            as_uid: None,
        };
        env.write_config();
        env
    }

    /// Set a config key (and rewrite the config file).
    pub fn set_config(&mut self, key: &str, v: Value) {
        self.config[key] = v;
        self.write_config();
    }

    pub fn write_config(&self) {
        std::fs::write(&self.config_path, self.config.to_string()).unwrap();
    }

    /// An expired token file holding a refresh token the provider accepts.
    pub fn expired_token(&self) -> Value {
        json!({
            "refresh_token": self.provider.issue_refresh_token(),
            "access_token": self.provider.issue_access_token(-100),
            "expiry": "0",
        })
    }

    /// A token file valid for `secs` more seconds.
    pub fn fresh_token(&self, secs: i64) -> Value {
        json!({
            "refresh_token": self.provider.issue_refresh_token(),
            "access_token": self.provider.issue_access_token(secs),
            "expiry": (now() + secs).to_string(),
        })
    }

    pub fn write_token(&self, v: &Value) {
        self.write_token_bytes(serde_json::to_string_pretty(v).unwrap().as_bytes());
    }

    pub fn write_token_bytes(&self, b: &[u8]) {
        let _ = std::fs::remove_file(&self.token);
        std::fs::write(&self.token, b).unwrap();
        std::fs::set_permissions(&self.token, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    pub fn token_bytes(&self) -> Vec<u8> {
        std::fs::read(&self.token).unwrap()
    }

    pub fn token_json(&self) -> Value {
        serde_json::from_slice(&self.token_bytes()).expect("token file is valid JSON")
    }

    pub fn handoff(&self) -> Vec<u8> {
        Handoff {
            config_path: self.config_path.display().to_string(),
            config: self.config.to_string(),
            ca_pem: self.ca_pem.clone(),
        }
        .encode()
        .to_vec()
    }

    /// The helper as the plugin starts it: empty environment,
    /// `--config-fd 0 [args] TOKEN`, handoff on stdin.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(testkit::bins::refresh_helper());
        c.env_clear()
            .arg("--config-fd")
            .arg("0")
            .args(args)
            .arg(&self.token)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(u) = self.as_uid {
            use std::os::unix::process::CommandExt;
            c.uid(u).gid(u);
        }
        c
    }

    /// Start the helper as the plugin does and write the handoff.
    pub fn spawn(&self, args: &[&str]) -> Child {
        let mut child = self.command(args).spawn().expect("spawn the helper");
        let mut stdin = child.stdin.take().unwrap();
        // The helper may exit before reading everything (e.g. killed).
        let _ = stdin.write_all(&self.handoff());
        drop(stdin);
        child
    }

    /// Run the helper as the plugin does and wait for it.
    pub fn run(&self, args: &[&str]) -> Run {
        let child = self.spawn(args);
        self.finish(child)
    }

    /// Run with `--config PATH` from a normal environment (the admin's way).
    pub fn run_with_config_file(&self, args: &[&str]) -> Run {
        let out = Command::new(testkit::bins::refresh_helper())
            .arg("--config")
            .arg(&self.config_path)
            .args(args)
            .arg(&self.token)
            .stdin(Stdio::null())
            .output()
            .unwrap();
        self.check(out)
    }

    pub fn finish(&self, child: Child) -> Run {
        let out = child.wait_with_output().unwrap();
        self.check(out)
    }

    /// Turn output into a Run and fail on any secret in it. The helper's
    /// handshake line (common::handoff::READY), which the plugin strips, is
    /// stripped here too.
    pub fn check(&self, out: std::process::Output) -> Run {
        let stdout = out
            .stdout
            .strip_prefix(common::handoff::READY)
            .unwrap_or(&out.stdout);
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        };
        self.assert_no_secrets(&run.stdout);
        self.assert_no_secrets(&run.stderr);
        run
    }

    pub fn assert_no_secrets(&self, text: &str) {
        let mut secrets = self.provider.secrets();
        secrets.extend(self.extra_secrets.iter().cloned());
        for s in secrets {
            assert!(
                !text.contains(&s),
                "secret {s:?} leaked into output:\n{text}"
            );
        }
    }

    /// Our temp files beside the token.
    pub fn temp_files(&self) -> Vec<String> {
        let name = self
            .token
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        let prefix = format!(".{name}.tmp-");
        std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(&prefix))
            .collect()
    }

    pub fn token_meta(&self) -> (u32, u32, u32) {
        let m = std::fs::metadata(&self.token).unwrap();
        (m.uid(), m.gid(), m.mode() & 0o7777)
    }
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Wait for `child` at most `limit`; kill it and fail if it is still running.
pub fn wait_limited(env: &Env, mut child: Child, limit: Duration) -> Run {
    let start = std::time::Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return env.finish(child);
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("helper still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A tiny deterministic PRNG for random kill instants (xorshift).
pub struct Rng(u64);

impl Rng {
    pub fn seeded() -> Rng {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1;
        eprintln!("rng seed {seed}");
        Rng(seed)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n.max(1)
    }
}

/// Path of a file in `dir` as a string.
pub fn p(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

/// A minimal HTTP CONNECT proxy on 127.0.0.1 that records the targets.
pub struct ConnectProxy {
    pub port: u16,
    pub seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl ConnectProxy {
    pub fn start() -> ConnectProxy {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = seen.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut client) = conn else { continue };
                let s = s.clone();
                std::thread::spawn(move || {
                    let mut head = Vec::new();
                    let mut b = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
                        if client.read(&mut b).unwrap_or(0) == 0 {
                            return;
                        }
                        head.push(b[0]);
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let line = head.lines().next().unwrap_or("").to_string();
                    s.lock().unwrap().push(line.clone());
                    let mut parts = line.split(' ');
                    let (Some("CONNECT"), Some(target)) = (parts.next(), parts.next()) else {
                        let _ = client.write_all(b"HTTP/1.1 405 Method Not Allowed\r\n\r\n");
                        return;
                    };
                    let Ok(upstream) = std::net::TcpStream::connect(target) else {
                        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n");
                        return;
                    };
                    client
                        .write_all(b"HTTP/1.1 200 Connection established\r\n\r\n")
                        .unwrap();
                    let (mut c2, mut u2) =
                        (client.try_clone().unwrap(), upstream.try_clone().unwrap());
                    let (mut c1, mut u1) = (client, upstream);
                    let t = std::thread::spawn(move || {
                        let _ = std::io::copy(&mut c2, &mut u2);
                        let _ = u2.shutdown(std::net::Shutdown::Write);
                    });
                    let _ = std::io::copy(&mut u1, &mut c1);
                    let _ = c1.shutdown(std::net::Shutdown::Write);
                    let _ = t.join();
                });
            }
        });
        ConnectProxy { port, seen }
    }
}
