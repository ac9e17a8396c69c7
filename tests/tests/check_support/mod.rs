//! Harness for tests/check*.rs: a whole setup in a scratch directory (a
//! private Postfix config dir for `postconf -c`, its queue directory, a
//! plugin directory, a helper, the plugin's config, a token file owned by
//! `postfix`) and runs of the real `sasl-xoauth2-refresh --check` against
//! it, in text and in JSON, every output scanned for secrets.
#![allow(dead_code)]

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU64, Ordering};
use testkit::provider::FakeProvider;

/// `ok`, `warn` or `FAIL`, as printed.
pub const OK: &str = "ok";
pub const WARN: &str = "warn";
pub const FAIL: &str = "FAIL";

/// uid/gid of a local user, from /etc/passwd (fails loudly if absent).
pub fn ids_of(name: &str) -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    passwd
        .lines()
        .find_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            (f.len() > 3 && f[0] == name).then(|| (f[2].parse().unwrap(), f[3].parse().unwrap()))
        })
        .unwrap_or_else(|| panic!("no user {name:?}: install Postfix (scripts/deps)"))
}

pub fn postfix_ids() -> (u32, u32) {
    ids_of("postfix")
}

fn require_root() {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "the --check tests must run as root (they chown files to postfix)"
    );
}

pub fn mkdir(p: &Path, mode: u32, owner: (u32, u32)) {
    std::fs::create_dir_all(p).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    std::os::unix::fs::chown(p, Some(owner.0), Some(owner.1)).unwrap();
}

pub fn write(p: &Path, body: &[u8], mode: u32, owner: (u32, u32)) {
    let _ = std::fs::remove_file(p);
    std::fs::write(p, body).unwrap();
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    std::os::unix::fs::chown(p, Some(owner.0), Some(owner.1)).unwrap();
}

pub fn chmod(p: &Path, mode: u32) {
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

pub fn chown(p: &Path, owner: (u32, u32)) {
    std::os::unix::fs::lchown(p, Some(owner.0), Some(owner.1)).unwrap();
}

/// Set the SELinux label xattr (works as root on this kernel even without
/// SELinux: the security namespace stores it).
pub fn set_selinux_label(p: &Path, label: &str) {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(p.as_os_str().as_bytes()).unwrap();
    let value = format!("{label}\0");
    // SAFETY: NUL-terminated path and name, and a value buffer of the given
    // length, all alive for the duration of the call.
    let r = unsafe {
        libc::lsetxattr(
            path.as_ptr(),
            c"security.selinux".as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(
        r,
        0,
        "setting security.selinux on {} failed: {}",
        p.display(),
        std::io::Error::last_os_error()
    );
}

/// ELF machine number of this host.
pub fn host_machine() -> u16 {
    match std::env::consts::ARCH {
        "x86" => 3,
        "arm" => 40,
        "x86_64" => 62,
        "aarch64" => 183,
        "riscv64" => 243,
        "powerpc64" => 21,
        "s390x" => 22,
        other => panic!("add the ELF machine number of {other}"),
    }
}

/// A minimal ELF64 little-endian executable image (header, PT_LOAD, and
/// PT_INTERP naming `interp` when given): what `--check` inspects.
pub fn elf_image(machine: u16, interp: Option<&str>) -> Vec<u8> {
    let phnum: u16 = if interp.is_some() { 2 } else { 1 };
    let mut b = vec![0u8; 64];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = 2;
    b[5] = 1;
    b[6] = 1;
    b[16..18].copy_from_slice(&3u16.to_le_bytes()); // ET_DYN (static-pie)
    b[18..20].copy_from_slice(&machine.to_le_bytes());
    b[20..24].copy_from_slice(&1u32.to_le_bytes());
    b[32..40].copy_from_slice(&64u64.to_le_bytes());
    b[52..54].copy_from_slice(&64u16.to_le_bytes());
    b[54..56].copy_from_slice(&56u16.to_le_bytes());
    b[56..58].copy_from_slice(&phnum.to_le_bytes());
    let interp_off = 64 + 56 * u64::from(phnum);
    if let Some(i) = interp {
        let mut ph = vec![0u8; 56];
        ph[..4].copy_from_slice(&3u32.to_le_bytes());
        ph[8..16].copy_from_slice(&interp_off.to_le_bytes());
        ph[32..40].copy_from_slice(&(i.len() as u64 + 1).to_le_bytes());
        b.extend_from_slice(&ph);
    }
    let mut load = vec![0u8; 56];
    load[..4].copy_from_slice(&1u32.to_le_bytes());
    b.extend_from_slice(&load);
    if let Some(i) = interp {
        b.extend_from_slice(i.as_bytes());
        b.push(0);
    }
    b
}

pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// One printed check.
#[derive(Debug, Clone)]
pub struct Line {
    pub status: String,
    pub name: String,
    /// Everything after `name: `, message and fix.
    pub text: String,
}

/// One `--check` run, in text; `json` is the same setup checked with `--json`.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
    pub lines: Vec<Line>,
    pub json: Option<Value>,
}

impl Run {
    pub fn line(&self, name: &str) -> &Line {
        self.lines
            .iter()
            .find(|l| l.name == name)
            .unwrap_or_else(|| panic!("no `{name}` check in the output:\n{}", self.stdout))
    }

    pub fn has(&self, name: &str) -> bool {
        self.lines.iter().any(|l| l.name == name)
    }

    /// Assert the verdict of check `name` and words in its line.
    pub fn expect(&self, name: &str, status: &str, needles: &[&str]) -> &Self {
        let l = self.line(name);
        assert_eq!(
            l.status, status,
            "check `{name}`: expected {status}, got:\n{}",
            self.stdout
        );
        for n in needles {
            assert!(
                l.text.contains(n),
                "check `{name}` lacks {n:?}:\n{}\n(full output:\n{})",
                l.text,
                self.stdout
            );
        }
        self
    }

    pub fn expect_code(&self, code: i32) -> &Self {
        assert_eq!(self.code, code, "exit code:\n{}", self.stdout);
        self
    }

    /// Every check but those in `except` is ok.
    pub fn all_ok_except(&self, except: &[&str]) -> &Self {
        for l in &self.lines {
            if !except.contains(&l.name.as_str()) {
                assert_eq!(
                    l.status, OK,
                    "check `{}` is not ok:\n{}",
                    l.name, self.stdout
                );
            }
        }
        self
    }
}

/// Parse the text output: `STATUS name: text` lines and the result line.
pub fn parse_text(stdout: &str) -> Vec<Line> {
    let mut lines = Vec::new();
    let all: Vec<&str> = stdout.lines().collect();
    assert!(
        all.last().is_some_and(|l| l.starts_with("result: ")),
        "no result line:\n{stdout}"
    );
    for l in &all[..all.len() - 1] {
        let (status, rest) = l.split_at(4);
        let status = status.trim().to_string();
        assert!(
            [OK, WARN, FAIL].contains(&status.as_str()),
            "bad status in {l:?}"
        );
        let rest = rest.strip_prefix(' ').unwrap_or_else(|| panic!("{l:?}"));
        let (name, text) = rest.split_once(": ").unwrap_or_else(|| panic!("{l:?}"));
        lines.push(Line {
            status,
            name: name.to_string(),
            text: text.to_string(),
        });
    }
    lines
}

/// Scratch directory removed on drop.
pub struct Scratch(pub PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub struct CheckEnv {
    pub scratch: Scratch,
    pub provider: FakeProvider,
    pub root: PathBuf,
    pub pf_dir: PathBuf,
    pub queue: PathBuf,
    pub plugin_dir: PathBuf,
    pub helper: PathBuf,
    pub ca: PathBuf,
    pub config_path: PathBuf,
    /// What --config names (None: no --config).
    pub config_arg: Option<PathBuf>,
    pub config: Value,
    pub main: BTreeMap<String, String>,
    pub master: String,
    /// The token file as this process sees it.
    pub token: PathBuf,
    /// The path given to --check (as sasl_passwd would name it).
    pub token_arg: PathBuf,
    pub chroot: bool,
    /// Extra arguments for every run.
    pub args: Vec<String>,
    pub extra_secrets: Vec<String>,
}

impl CheckEnv {
    /// A setup every check passes: `chroot` decides whether master.cf's
    /// smtp runs chrooted (then the token lives in queue/etc/tokens).
    pub fn new(name: &str, chroot: bool) -> CheckEnv {
        require_root();
        static N: AtomicU64 = AtomicU64::new(0);
        let root = std::env::temp_dir().join(format!(
            "sx2-check-{name}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&root);
        mkdir(&root, 0o755, (0, 0));
        let scratch = Scratch(root.clone());
        let pfx = postfix_ids();
        let provider = FakeProvider::start();
        let ca = root.join("ca.pem");
        write(&ca, provider.ca_pem().as_bytes(), 0o644, (0, 0));
        let plugin_dir = root.join("sasl2");
        mkdir(&plugin_dir, 0o755, (0, 0));
        write(
            &plugin_dir.join("libsasl-xoauth2.so"),
            &elf_image(host_machine(), None),
            0o644,
            (0, 0),
        );
        let helper = root.join("libexec/sasl-xoauth2-refresh");
        mkdir(helper.parent().unwrap(), 0o755, (0, 0));
        write(&helper, &elf_image(host_machine(), None), 0o711, (0, 0));
        let queue = root.join("queue");
        mkdir(&queue, 0o755, (0, 0));
        let (token, token_arg) = if chroot {
            mkdir(&queue.join("etc"), 0o755, (0, 0));
            mkdir(&queue.join("etc/tokens"), 0o700, pfx);
            let t = queue.join("etc/tokens/user@example.com.json");
            (t, PathBuf::from("/etc/tokens/user@example.com.json"))
        } else {
            mkdir(&root.join("tokens"), 0o700, pfx);
            let t = root.join("tokens/user@example.com.json");
            (t.clone(), t)
        };
        let pf_dir = root.join("postfix");
        mkdir(&pf_dir, 0o755, (0, 0));
        let config_path = root.join("sasl-xoauth2.conf");
        let config = json!({
            "client_id": provider.client_id(),
            "client_secret": provider.client_secret(),
            "token_endpoint": provider.url(),
            "ca_bundle_file": ca.display().to_string(),
            "refresh_helper": helper.display().to_string(),
            "refresh_timeout": 15,
        });
        let main: BTreeMap<String, String> = [
            ("queue_directory", queue.display().to_string()),
            ("mail_owner", "postfix".into()),
            ("smtp_sasl_auth_enable", "yes".into()),
            ("smtp_sasl_mechanism_filter", "xoauth2".into()),
            // README's recipe: the token only over verified TLS.
            ("smtp_tls_security_level", "secure".into()),
            ("smtp_sasl_security_options", "noanonymous, noplaintext".into()),
            ("smtp_sasl_tls_security_options", "noanonymous".into()),
            (
                "import_environment",
                format!(
                    "MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C SASL_PATH={} SASL_XOAUTH2_CONFIG={}",
                    plugin_dir.display(),
                    config_path.display()
                ),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let master = format!(
            "smtp unix - - {} - - smtp\n",
            if chroot { "y" } else { "n" }
        );
        let env = CheckEnv {
            scratch,
            provider,
            root,
            pf_dir,
            queue,
            plugin_dir,
            helper,
            ca,
            config_arg: Some(config_path.clone()),
            config_path,
            config,
            main,
            master,
            token,
            token_arg,
            chroot,
            args: Vec::new(),
            extra_secrets: Vec::new(),
        };
        env.write_config();
        env.write_postfix();
        env.write_token(&env.fresh_token(3030));
        env
    }

    pub fn write_config(&self) {
        write(
            &self.config_path,
            self.config.to_string().as_bytes(),
            0o600,
            (0, 0),
        );
    }

    pub fn set_config(&mut self, key: &str, v: Value) {
        self.config[key] = v;
        self.write_config();
    }

    pub fn remove_config(&mut self, key: &str) {
        self.config.as_object_mut().unwrap().remove(key);
        self.write_config();
    }

    pub fn write_postfix(&self) {
        let main: String = self
            .main
            .iter()
            .map(|(k, v)| format!("{k} = {v}\n"))
            .collect();
        write(&self.pf_dir.join("main.cf"), main.as_bytes(), 0o644, (0, 0));
        write(
            &self.pf_dir.join("master.cf"),
            self.master.as_bytes(),
            0o644,
            (0, 0),
        );
        // Postfix waits (up to ~2 s) before reading a config file modified
        // in the last second, in case it is still being written: date both
        // back so every postconf run is immediate.
        let past = std::time::SystemTime::now() - std::time::Duration::from_secs(60);
        for f in ["main.cf", "master.cf"] {
            let file = std::fs::File::options()
                .write(true)
                .open(self.pf_dir.join(f))
                .unwrap();
            file.set_modified(past).unwrap();
        }
    }

    pub fn set_main(&mut self, key: &str, value: &str) {
        self.main.insert(key.into(), value.into());
        self.write_postfix();
    }

    pub fn set_master(&mut self, master: &str) {
        self.master = master.into();
        self.write_postfix();
    }

    pub fn token_dir(&self) -> PathBuf {
        self.token.parent().unwrap().to_path_buf()
    }

    /// A token valid for `secs` more seconds (issued by the fake).
    pub fn fresh_token(&self, secs: i64) -> Value {
        json!({
            "refresh_token": self.provider.issue_refresh_token(),
            "access_token": self.provider.issue_access_token(secs),
            "expiry": (now() + secs).to_string(),
        })
    }

    pub fn expired_token(&self) -> Value {
        json!({
            "refresh_token": self.provider.issue_refresh_token(),
            "access_token": self.provider.issue_access_token(-100),
            "expiry": "0",
        })
    }

    /// Write the token file: mode 0600, owner postfix.
    pub fn write_token(&self, v: &Value) {
        self.write_token_bytes(serde_json::to_string_pretty(v).unwrap().as_bytes());
    }

    pub fn write_token_bytes(&self, b: &[u8]) {
        let _ = std::fs::remove_file(&self.token);
        write(&self.token, b, 0o600, postfix_ids());
    }

    /// The split layout's secrets directory and file of the token.
    pub fn secrets_dir(&self) -> PathBuf {
        self.token_dir().join("secrets")
    }

    pub fn secrets_file(&self) -> PathBuf {
        self.secrets_dir().join(self.token.file_name().unwrap())
    }

    /// Convert the account to the split layout by hand, as
    /// `sasl-xoauth2-tool split-secrets` lays it out: `secrets/` 0700 and
    /// the secrets file 0600, both postfix's; the token file keeps the rest.
    pub fn split(&self) {
        let mut t: Value = serde_json::from_slice(&self.token_bytes()).unwrap();
        let rt = t.as_object_mut().unwrap().remove("refresh_token").unwrap();
        mkdir(&self.secrets_dir(), 0o700, postfix_ids());
        self.write_secrets(&json!({ "refresh_token": rt }));
        self.write_token(&t);
    }

    /// Write the secrets file: mode 0600, owner postfix.
    pub fn write_secrets(&self, v: &Value) {
        write(
            &self.secrets_file(),
            v.to_string().as_bytes(),
            0o600,
            postfix_ids(),
        );
    }

    pub fn token_bytes(&self) -> Vec<u8> {
        std::fs::read(&self.token).unwrap()
    }

    pub fn dir_entries(&self) -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(self.token_dir())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    pub fn command(&self, extra: &[&str]) -> Command {
        let mut c = Command::new(testkit::bins::refresh_helper());
        c.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .arg("--check")
            .arg(&self.token_arg);
        if let Some(path) = &self.config_arg {
            c.arg("--config").arg(path);
        }
        c.arg("--postfix-config")
            .arg(&self.pf_dir)
            .args(&self.args)
            .args(extra);
        c
    }

    fn scan(&self, out: &Output) -> (String, String) {
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        let mut secrets = self.provider.secrets();
        secrets.extend(self.extra_secrets.iter().cloned());
        for s in secrets {
            for text in [&stdout, &stderr] {
                assert!(!text.contains(&s), "secret {s:?} leaked:\n{text}");
            }
        }
        (stdout, stderr)
    }

    /// Run `--check` once in text (no JSON run: for `--online`, where a
    /// second run would make a second request).
    pub fn run_text(&self, extra: &[&str]) -> Run {
        let out = self.command(extra).output().expect("run --check");
        let (stdout, stderr) = self.scan(&out);
        let lines = parse_text(&stdout);
        let code = out.status.code().unwrap_or(-1);
        // Offline, nothing goes to stderr; online, the request code may
        // report a retry there (scanned for secrets like stdout).
        assert!(
            stderr.is_empty() || extra.contains(&"--online"),
            "--check prints nothing on stderr:\n{stderr}"
        );
        Run {
            code,
            stdout,
            stderr,
            lines,
            json: None,
        }
    }

    /// Run `--check` in text and with `--json`, and assert they agree.
    pub fn run(&self, extra: &[&str]) -> Run {
        let mut run = self.run_text(extra);
        let mut args = extra.to_vec();
        args.push("--json");
        let out = self.command(&args).output().expect("run --check --json");
        let (stdout, _) = self.scan(&out);
        let v: Value = serde_json::from_str(&stdout)
            .unwrap_or_else(|e| panic!("--json output is not JSON ({e}):\n{stdout}"));
        assert_eq!(stdout.lines().count(), 1, "one JSON object:\n{stdout}");
        assert_eq!(v["exit"], run.code, "{stdout}");
        assert_eq!(out.status.code(), Some(run.code));
        let checks = v["checks"].as_array().expect("checks array");
        assert_eq!(checks.len(), run.lines.len(), "{stdout}\n{}", run.stdout);
        for (c, l) in checks.iter().zip(&run.lines) {
            assert_eq!(c["name"], l.name.as_str());
            let st = match l.status.as_str() {
                OK => "ok",
                WARN => "warn",
                _ => "fail",
            };
            assert_eq!(c["status"], st, "{c}");
            let msg = c["message"].as_str().unwrap();
            // Expiry readings may tick between the two runs.
            if l.name != "token-expiry" {
                assert!(l.text.starts_with(msg), "{c} vs {}", l.text);
            }
            match c["fix"].as_str() {
                Some(f) => assert!(l.text.ends_with(&format!("; fix: {f}")), "{c}"),
                None => assert_eq!(c["fix"], Value::Null),
            }
            assert_eq!(c["fix"].is_null(), l.status == OK, "{c}");
        }
        run.json = Some(v);
        run
    }
}

/// Expected `apparmor` verdict on this host. AppArmor is not active on the
/// CI kernel (ok). Where it is active, these setups always warn: either the
/// helper's profile is not installed or loaded, or it does not attach to
/// the scratch helper path the config names.
pub fn apparmor_expected() -> &'static str {
    if Path::new("/sys/kernel/security/apparmor").exists() {
        WARN
    } else {
        OK
    }
}
