//! A private Postfix instance for the end-to-end tests: its own config,
//! queue and data directories under a temporary directory, loopback only,
//! logging to a file, started and stopped with the system's `postfix`
//! (`postfix -c DIR start`). It never touches `/etc/postfix` or the
//! system's queue, and several instances can run at once.
//!
//! Postfix clears the environment of its daemons, so the plugin directory
//! and the plugin's config reach `smtp(8)` through `import_environment`
//! (`SASL_PATH=...`, `SASL_XOAUTH2_CONFIG=...`), which works chrooted or
//! not: smtp initialises libsasl2, and so loads the plugin and its config,
//! before it chroots. Only token files live inside the chroot.
//!
//! Needs root (Postfix's master starts as root) and the Debian `postfix`
//! package; both are checked loudly.

use std::collections::BTreeMap;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// Set to keep an instance's directory after the test (for debugging).
pub const KEEP_ENV: &str = "SASL_XOAUTH2_KEEP_POSTFIX";

/// The default of `import_environment`, which we extend.
const IMPORT_ENVIRONMENT: &str =
    "MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ XAUTHORITY DISPLAY LANG=C POSTLOG_SERVICE POSTLOG_HOSTNAME";

/// Services of the instance's master.cf: name, type, private, chroot-able,
/// wakeup, maxproc, command. Chroot-able ones follow the instance's mode.
const SERVICES: &[(&str, &str, &str, bool, &str, &str, &str)] = &[
    ("pickup", "unix", "n", true, "60", "1", "pickup"),
    ("cleanup", "unix", "n", true, "-", "0", "cleanup"),
    ("qmgr", "unix", "n", false, "300", "1", "qmgr"),
    ("tlsmgr", "unix", "-", true, "1000?", "1", "tlsmgr"),
    ("rewrite", "unix", "-", true, "-", "-", "trivial-rewrite"),
    ("bounce", "unix", "-", true, "-", "0", "bounce"),
    ("defer", "unix", "-", true, "-", "0", "bounce"),
    ("trace", "unix", "-", true, "-", "0", "bounce"),
    ("verify", "unix", "-", true, "-", "1", "verify"),
    ("flush", "unix", "n", true, "1000?", "0", "flush"),
    ("proxymap", "unix", "-", false, "-", "-", "proxymap"),
    ("smtp", "unix", "-", true, "-", "-", "smtp"),
    ("relay", "unix", "-", true, "-", "-", "smtp"),
    ("showq", "unix", "n", true, "-", "-", "showq"),
    ("error", "unix", "-", true, "-", "-", "error"),
    ("retry", "unix", "-", true, "-", "-", "error"),
    ("discard", "unix", "-", true, "-", "-", "discard"),
    ("anvil", "unix", "-", true, "-", "1", "anvil"),
    ("scache", "unix", "-", true, "-", "1", "scache"),
    ("postlog", "unix-dgram", "n", false, "-", "1", "postlogd"),
];

/// uid and gid of the `postfix` user.
pub fn postfix_ids() -> (u32, u32) {
    // SAFETY: getpwnam with a NUL-terminated name; the result is read at
    // once, before any other call that could overwrite the static buffer
    // (tests only call this from here).
    let pw = unsafe { libc::getpwnam(c"postfix".as_ptr()) };
    assert!(
        !pw.is_null(),
        "no `postfix` user: install Postfix (Debian: scripts/deps, or apt-get install postfix)"
    );
    // SAFETY: pw is non-NULL and points to a valid passwd entry.
    unsafe { ((*pw).pw_uid, (*pw).pw_gid) }
}

fn require_environment() {
    static CHECKED: OnceLock<()> = OnceLock::new();
    CHECKED.get_or_init(|| {
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        assert_eq!(
            euid, 0,
            "the Postfix tests must run as root (Postfix's master starts as root)"
        );
        for tool in ["postfix", "postconf", "postmap", "postqueue", "sendmail"] {
            let found = ["/usr/sbin", "/usr/bin", "/sbin", "/bin"]
                .iter()
                .any(|d| Path::new(d).join(tool).exists());
            assert!(
                found,
                "`{tool}` not found: install Postfix (Debian: scripts/deps, or apt-get install postfix)"
            );
        }
        postfix_ids();
    });
}

/// Mode 0755 root directory (Postfix refuses group/world-writable ones).
fn mkdir(p: &Path, mode: u32, owner: Option<(u32, u32)>) {
    std::fs::create_dir_all(p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    if let Some((u, g)) = owner {
        std::os::unix::fs::chown(p, Some(u), Some(g)).unwrap();
    }
}

/// Write `body` to `p` with `mode` (and owner).
pub fn write_file(p: &Path, body: &[u8], mode: u32, owner: Option<(u32, u32)>) {
    std::fs::write(p, body).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
    if let Some((u, g)) = owner {
        std::os::unix::fs::chown(p, Some(u), Some(g)).unwrap();
    }
}

/// A message in the queue, from `postqueue -j`.
#[derive(Debug, Clone)]
pub struct Queued {
    pub queue_name: String,
    pub queue_id: String,
    pub sender: String,
    pub recipients: Vec<String>,
    /// Why delivery was deferred, per recipient.
    pub delay_reasons: Vec<String>,
}

/// A private Postfix instance (see the module docs). Stopped and removed
/// when dropped; the maillog is printed if the test is failing.
#[derive(Debug)]
pub struct Instance {
    pub name: String,
    pub chroot: bool,
    pub base: PathBuf,
    pub conf: PathBuf,
    pub queue: PathBuf,
    pub data: PathBuf,
    pub maillog: PathBuf,
    /// Where token files are, as this process sees them.
    pub token_dir: PathBuf,
    /// The plugin's config file (`SASL_XOAUTH2_CONFIG`).
    pub plugin_config: PathBuf,
    main: BTreeMap<String, String>,
    sasl_path: Vec<PathBuf>,
    /// Everything the Postfix commands printed, for the secret scan.
    outputs: Mutex<String>,
    running: bool,
}

impl Instance {
    /// Create the directories and a base configuration: loopback only,
    /// log to `maillog`, no local delivery, every message relayed to
    /// `[127.0.0.1]:relay_port`, smtp/relay chrooted when `chroot`.
    pub fn new(name: &str, chroot: bool, relay_port: u16) -> Instance {
        require_environment();
        let (uid, gid) = postfix_ids();
        let base = std::env::temp_dir().join(format!(
            "sx2-postfix-{name}-{}-{}",
            if chroot { "chroot" } else { "nochroot" },
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&base);
        mkdir(&base, 0o755, Some((0, 0)));
        let conf = base.join("conf");
        let queue = base.join("queue");
        let data = base.join("data");
        mkdir(&conf, 0o755, Some((0, 0)));
        mkdir(&queue, 0o755, Some((0, 0)));
        mkdir(&data, 0o700, Some((uid, gid)));
        let token_dir = if chroot {
            mkdir(&queue.join("etc"), 0o755, Some((0, 0)));
            queue.join("etc/tokens")
        } else {
            base.join("tokens")
        };
        mkdir(&token_dir, 0o700, Some((uid, gid)));
        let maillog = base.join("maillog");
        let plugin_config = base.join("sasl-xoauth2.conf");
        let mut main = BTreeMap::new();
        let b = base.display().to_string();
        for (k, v) in [
            ("compatibility_level", "3.6".to_string()),
            ("queue_directory", queue.display().to_string()),
            ("data_directory", data.display().to_string()),
            ("mail_owner", "postfix".into()),
            ("setgid_group", "postdrop".into()),
            ("myhostname", "sender.postfix.test".into()),
            ("mydomain", "postfix.test".into()),
            ("myorigin", "$myhostname".into()),
            ("mydestination", String::new()),
            ("local_recipient_maps", String::new()),
            ("alias_maps", String::new()),
            ("alias_database", String::new()),
            ("inet_interfaces", "loopback-only".into()),
            ("inet_protocols", "ipv4".into()),
            ("maillog_file", maillog.display().to_string()),
            ("maillog_file_prefixes", format!("/var, /dev/stdout, {b}")),
            ("in_flow_delay", "0".into()),
            ("relayhost", format!("[127.0.0.1]:{relay_port}")),
            // One authentication per delivery: easier to reason about.
            ("smtp_connection_cache_on_demand", "no".into()),
            ("smtp_tls_loglevel", "1".into()),
            ("smtp_sasl_auth_enable", "yes".into()),
            (
                "smtp_sasl_password_maps",
                format!("hash:{}/sasl_passwd", conf.display()),
            ),
            // The recipe README recommends: a bearer token is
            // plaintext-equivalent, so no SASL without TLS ...
            (
                "smtp_sasl_security_options",
                "noanonymous, noplaintext".into(),
            ),
            // ... and with TLS (verified: see relay_tls) any mechanism.
            ("smtp_sasl_tls_security_options", "noanonymous".into()),
            // Nothing bounces in these tests: a failure must defer.
            ("smtp_sasl_auth_soft_bounce", "yes".into()),
        ] {
            main.insert(k.to_string(), v);
        }
        let inst = Instance {
            name: name.to_string(),
            chroot,
            base,
            conf,
            queue,
            data,
            maillog,
            token_dir,
            plugin_config,
            main,
            sasl_path: vec![crate::sasl::plugin_dir().to_path_buf()],
            outputs: Mutex::new(String::new()),
            running: false,
        };
        inst.write_master();
        inst.write_main();
        inst
    }

    fn write_master(&self) {
        let chroot = if self.chroot { "y" } else { "n" };
        let mut s =
            String::from("# service type  private unpriv  chroot  wakeup  maxproc command\n");
        for (name, ty, private, chrootable, wakeup, maxproc, cmd) in SERVICES {
            s.push_str(&format!(
                "{name:<9} {ty:<10} {private:<7} {:<7} {:<7} {wakeup:<7} {maxproc:<7} {cmd}\n",
                "-",
                if *chrootable { chroot } else { "n" },
            ));
        }
        write_file(
            &self.conf.join("master.cf"),
            s.as_bytes(),
            0o644,
            Some((0, 0)),
        );
    }

    fn write_main(&self) {
        let mut s = String::from("# private test instance, written by tests/src/postfix.rs\n");
        for (k, v) in &self.main {
            s.push_str(&format!("{k} = {v}\n"));
        }
        write_file(
            &self.conf.join("main.cf"),
            s.as_bytes(),
            0o644,
            Some((0, 0)),
        );
    }

    /// Set a `main.cf` parameter (takes effect at the next start/reload).
    pub fn set(&mut self, key: &str, value: &str) -> &mut Self {
        self.main.insert(key.to_string(), value.to_string());
        self.write_main();
        self
    }

    /// Require verified STARTTLS to the relay (README's recipe:
    /// `smtp_tls_security_level = secure` with a CA file), trusting
    /// `ca_pem`. The relay's certificate names `localhost` (the nexthop
    /// here is an IP literal), so that is the name matched.
    pub fn relay_tls(&mut self, ca_pem: &str) -> &mut Self {
        let ca = self.base.join("relay-ca.pem");
        write_file(&ca, ca_pem.as_bytes(), 0o644, Some((0, 0)));
        self.set("smtp_tls_security_level", "secure");
        self.set("smtp_tls_secure_cert_match", "localhost");
        self.set("smtp_tls_CAfile", &ca.display().to_string())
    }

    /// Also load the plugins of `dir` (e.g. the system's, for LOGIN).
    pub fn add_sasl_dir(&mut self, dir: &Path) -> &mut Self {
        self.sasl_path.push(dir.to_path_buf());
        self.write_environment()
    }

    /// Write the plugin's config file (mode 0600, read by smtp as root
    /// before it chroots) and point smtp at it and at the plugin.
    pub fn plugin_config(&mut self, config: &serde_json::Value) -> &mut Self {
        let body = serde_json::to_vec_pretty(config).unwrap();
        write_file(&self.plugin_config, &body, 0o600, Some((0, 0)));
        self.write_environment()
    }

    fn write_environment(&mut self) -> &mut Self {
        let sasl_path: Vec<String> = self
            .sasl_path
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        let v = format!(
            "{IMPORT_ENVIRONMENT} SASL_PATH={} SASL_XOAUTH2_CONFIG={}",
            sasl_path.join(":"),
            self.plugin_config.display()
        );
        self.set("import_environment", &v)
    }

    /// Write a token file owned by `postfix`, mode 0600, into the token
    /// directory; returns its path as smtp sees it (inside the chroot).
    pub fn write_token(&self, name: &str, token: &serde_json::Value) -> String {
        let p = self.token_dir.join(name);
        write_file(
            &p,
            &serde_json::to_vec_pretty(token).unwrap(),
            0o600,
            Some(postfix_ids()),
        );
        self.token_path_for_postfix(name)
    }

    /// Where smtp finds token `name`.
    pub fn token_path_for_postfix(&self, name: &str) -> String {
        if self.chroot {
            format!("/etc/tokens/{name}")
        } else {
            self.token_dir.join(name).display().to_string()
        }
    }

    /// The token file as JSON.
    pub fn read_token(&self, name: &str) -> serde_json::Value {
        let p = self.token_dir.join(name);
        let b = std::fs::read(&p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
        serde_json::from_slice(&b).unwrap_or_else(|e| panic!("{} is not JSON: {e}", p.display()))
    }

    /// Write a lookup table `CONF/<name>` and `postmap` it (hash:).
    pub fn map(&self, name: &str, entries: &[(&str, &str)]) -> String {
        let p = self.conf.join(name);
        let mut s = String::new();
        for (k, v) in entries {
            s.push_str(&format!("{k} {v}\n"));
        }
        write_file(&p, s.as_bytes(), 0o600, Some((0, 0)));
        let table = format!("hash:{}", p.display());
        self.run("postmap", &["-c", &self.conf.display().to_string(), &table]);
        table
    }

    /// `sasl_passwd`: relay (or sender) → `user:token-path`.
    pub fn sasl_passwd(&self, entries: &[(&str, &str)]) {
        self.map("sasl_passwd", entries);
    }

    fn conf_arg(&self) -> String {
        self.conf.display().to_string()
    }

    /// Run a Postfix command, record its output, panic unless it succeeds.
    pub fn run(&self, prog: &str, args: &[&str]) -> Output {
        let out = self.run_unchecked(prog, args, None);
        assert!(
            out.status.success(),
            "{prog} {args:?} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    fn run_unchecked(&self, prog: &str, args: &[&str], stdin: Option<&[u8]>) -> Output {
        use std::io::Write;
        let mut cmd = Command::new(prog);
        cmd.args(args)
            .env_remove("SASL_PATH")
            .env_remove("SASL_XOAUTH2_CONFIG")
            .env_remove("MAIL_CONFIG")
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {prog}: {e}"));
        if let Some(input) = stdin {
            child.stdin.take().unwrap().write_all(input).unwrap();
        }
        let out = child.wait_with_output().unwrap();
        let mut o = self.outputs.lock().unwrap();
        o.push_str(&format!("$ {prog} {}\n", args.join(" ")));
        o.push_str(&String::from_utf8_lossy(&out.stdout));
        o.push_str(&String::from_utf8_lossy(&out.stderr));
        out
    }

    /// Everything the Postfix commands printed so far.
    pub fn outputs(&self) -> String {
        self.outputs.lock().unwrap().clone()
    }

    /// `postfix start`: checks the configuration and directories (creating
    /// the queue's), starts the master and waits until it runs.
    pub fn start(&mut self) {
        let c = self.conf_arg();
        self.run("postfix", &["-c", &c, "start"]);
        self.running = true;
    }

    /// `postfix reload`: daemons restart with the new config (and, for
    /// smtp, a fresh plugin init).
    pub fn reload(&self) {
        self.run("postfix", &["-c", &self.conf_arg(), "reload"]);
    }

    /// `postfix stop`, then wait (up to 30 s) until the master is gone.
    pub fn stop(&mut self) {
        if !self.running {
            return;
        }
        self.running = false;
        let pid = self.master_pid();
        self.run_unchecked("postfix", &["-c", &self.conf_arg(), "stop"], None);
        if let Some(pid) = pid {
            let end = Instant::now() + Duration::from_secs(30);
            while alive(pid) && Instant::now() < end {
                std::thread::sleep(Duration::from_millis(50));
            }
            if alive(pid) {
                // SAFETY: kill with a pid we read from the master's pid file.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
    }

    fn master_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.queue.join("pid/master.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok())
    }

    /// Submit a message with `sendmail -C CONF` (no smtpd involved).
    pub fn send(&self, from: &str, to: &str, subject: &str) {
        let msg = format!(
            "From: <{from}>\nTo: <{to}>\nSubject: {subject}\n\nA test message for {subject}.\n"
        );
        let out = self.run_unchecked(
            "sendmail",
            &["-C", &self.conf_arg(), "-f", from, "--", to],
            Some(msg.as_bytes()),
        );
        assert!(out.status.success(), "sendmail failed: {out:?}");
    }

    /// `postqueue -f`: retry every queued message now.
    pub fn flush(&self) {
        self.run("postqueue", &["-c", &self.conf_arg(), "-f"]);
    }

    /// The queue (`postqueue -j`).
    pub fn queue(&self) -> Vec<Queued> {
        let out = self.run("postqueue", &["-c", &self.conf_arg(), "-j"]);
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .map(|v| {
                let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
                let rcpts = v["recipients"].as_array().cloned().unwrap_or_default();
                Queued {
                    queue_name: s("queue_name"),
                    queue_id: s("queue_id"),
                    sender: s("sender"),
                    recipients: rcpts
                        .iter()
                        .filter_map(|r| r["address"].as_str().map(str::to_owned))
                        .collect(),
                    delay_reasons: rcpts
                        .iter()
                        .filter_map(|r| r["delay_reason"].as_str().map(str::to_owned))
                        .collect(),
                }
            })
            .collect()
    }

    /// Wait until the message from `sender` sits in the `deferred` queue
    /// (a flush before that does not retry it).
    pub fn wait_deferred(&self, sender: &str, timeout: Duration) -> Queued {
        let end = Instant::now() + timeout;
        loop {
            let q = self.queue();
            if let Some(m) = q
                .iter()
                .find(|m| m.sender == sender && m.queue_name == "deferred")
            {
                return m.clone();
            }
            assert!(
                Instant::now() < end,
                "no deferred message from {sender} within {timeout:?}; queue: {q:?}\nmaillog:\n{}",
                self.maillog()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The maillog so far.
    pub fn maillog(&self) -> String {
        std::fs::read_to_string(&self.maillog).unwrap_or_default()
    }

    /// Wait until a maillog line contains every one of `parts`; returns it.
    pub fn wait_log(&self, parts: &[&str], timeout: Duration) -> String {
        let end = Instant::now() + timeout;
        loop {
            let log = self.maillog();
            if let Some(l) = log.lines().find(|l| parts.iter().all(|p| l.contains(p))) {
                return l.to_string();
            }
            assert!(
                Instant::now() < end,
                "no maillog line with {parts:?} within {timeout:?}; maillog:\n{log}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Wait until `n` maillog lines contain every one of `parts`.
    pub fn wait_log_count(&self, parts: &[&str], n: usize, timeout: Duration) -> Vec<String> {
        let end = Instant::now() + timeout;
        loop {
            let log = self.maillog();
            let hits: Vec<String> = log
                .lines()
                .filter(|l| parts.iter().all(|p| l.contains(p)))
                .map(str::to_owned)
                .collect();
            if hits.len() >= n {
                return hits;
            }
            assert!(
                Instant::now() < end,
                "{} of {n} maillog lines with {parts:?} within {timeout:?}; maillog:\n{log}",
                hits.len()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Fail if any secret appears in the maillog or any command output.
    pub fn assert_no_secrets(&self, secrets: &[String]) {
        assert_no_secrets(
            &[
                ("maillog", &self.maillog()),
                ("postfix command output", &self.outputs()),
            ],
            secrets,
        );
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.stop();
        if std::thread::panicking() {
            eprintln!(
                "---- maillog of Postfix instance {} ({}) ----\n{}",
                self.name,
                if self.chroot { "chroot" } else { "no chroot" },
                self.maillog()
            );
        }
        if std::env::var_os(KEEP_ENV).is_some() {
            eprintln!("kept {}", self.base.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.base);
        }
    }
}

/// Whether `pid` is running (a zombie counts as gone).
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// Whether some process runs `exe_name` with `arg` on its command line.
pub fn process_running(exe_name: &str, arg: &str) -> bool {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return false;
    };
    dir.flatten().any(|e| {
        let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
            return false;
        };
        let pid: i32 = e.file_name().to_string_lossy().parse().unwrap_or(0);
        let args: Vec<&[u8]> = cmd.split(|&b| b == 0).collect();
        pid > 0
            && alive(pid)
            && args
                .first()
                .is_some_and(|a| a.ends_with(exe_name.as_bytes()))
            && args.contains(&arg.as_bytes())
    })
}

/// The strings a secret can appear as in a log: itself, and its base64
/// encodings at each of the three alignments (an XOAUTH2 response logged
/// as sent on the wire would hold it so).
pub fn secret_patterns(secret: &str) -> Vec<String> {
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine as _;
    let mut v = vec![secret.to_string()];
    for pad in 0..3usize {
        let mut bytes = vec![0u8; pad];
        bytes.extend_from_slice(secret.as_bytes());
        let enc = B64.encode(&bytes);
        // Drop the groups that mix in padding or what precedes/follows.
        let skip = if pad == 0 { 0 } else { 4 };
        if enc.len() > skip + 8 {
            v.push(enc[skip..enc.len() - 4].to_string());
        }
    }
    v
}

/// Fail if any of `secrets` (or its base64 forms) appears in any of the
/// named texts.
pub fn assert_no_secrets(texts: &[(&str, &str)], secrets: &[String]) {
    assert!(!secrets.is_empty(), "no secrets to scan for");
    for secret in secrets.iter().filter(|s| s.len() >= 8) {
        for pat in secret_patterns(secret) {
            for (name, text) in texts {
                assert!(
                    !text.contains(&pat),
                    "a secret (or its base64 form) appears in the {name}:\n{text}"
                );
            }
        }
    }
}

/// The host's target triple (`rustc -vV`).
fn host_triple() -> String {
    let out = Command::new(std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into()))
        .arg("-vV")
        .output()
        .expect("run rustc -vV");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("host: "))
        .expect("rustc -vV prints host:")
        .trim()
        .to_string()
}

/// The cargo target directory the running test binary was built into.
fn target_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    exe.ancestors()
        .find(|d| d.join("CACHEDIR.TAG").exists() || d.join(".rustc_info.json").exists())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| panic!("no cargo target directory above {}", exe.display()))
}

/// The static helper (`make helper`), which runs inside the chroot with
/// nothing copied there. With `SASL_XOAUTH2_BIN_DIR` set it is taken from
/// there; otherwise `make helper` builds it into this test binary's target
/// directory. Either way it must be statically linked.
pub fn static_helper() -> PathBuf {
    static HELPER: OnceLock<PathBuf> = OnceLock::new();
    HELPER
        .get_or_init(|| {
            let p = if std::env::var_os(crate::bins::BIN_DIR_ENV).is_some() {
                crate::bins::refresh_helper()
            } else {
                build_static_helper()
            };
            assert!(
                !has_interpreter(&p),
                "{} is dynamically linked: the chrooted smtp could not run it; build it with `make helper`",
                p.display()
            );
            p
        })
        .clone()
}

fn build_static_helper() -> PathBuf {
    let target = target_dir();
    let triple = host_triple();
    let mut cmd = Command::new("make");
    crate::bins::without_test_env(&mut cmd);
    let out = cmd
        .current_dir(crate::bins::workspace_root())
        .args(["--no-print-directory", "helper"])
        .arg(format!("TARGET={triple}"))
        .env("CARGO_TARGET_DIR", &target)
        .env("CARGO_TERM_QUIET", "true")
        .output()
        .expect("run make helper");
    assert!(
        out.status.success(),
        "make helper failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let p = target.join(&triple).join("release/sasl-xoauth2-refresh");
    assert!(p.is_file(), "{} missing after make helper", p.display());
    p
}

/// Whether the ELF file at `p` names a program interpreter (is dynamic).
fn has_interpreter(p: &Path) -> bool {
    let b = std::fs::read(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()));
    assert!(
        b.len() > 64 && &b[..4] == b"\x7fELF" && b[4] == 2,
        "{} is not a 64-bit ELF file",
        p.display()
    );
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(b[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).any(|i| {
        let o = phoff + i * phentsize;
        o + 4 <= b.len() && u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) == 3
    })
}

/// The system's libsasl2 plugin directory (`scripts/sasl-plugin-dir`),
/// which holds LOGIN and PLAIN.
pub fn system_sasl_dir() -> PathBuf {
    let out = Command::new(crate::bins::workspace_root().join("scripts/sasl-plugin-dir"))
        .output()
        .expect("run scripts/sasl-plugin-dir");
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    assert!(
        dir.join("liblogin.so").exists() || dir.join("liblogin.so.2").exists(),
        "no LOGIN plugin in {}: install libsasl2-modules",
        dir.display()
    );
    dir
}

/// Unix time now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Mode bits, owner and inode of a file.
pub fn file_meta(p: &Path) -> (u32, u32, u32, u64) {
    let m = std::fs::metadata(p).unwrap_or_else(|e| panic!("stat {}: {e}", p.display()));
    (m.mode() & 0o7777, m.uid(), m.gid(), m.ino())
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::STANDARD as B64;
    use base64::Engine as _;

    #[test]
    fn secret_found_inside_base64_at_any_alignment() {
        let secret = "ya29.some-access-token-value-123";
        for user in ["a", "ab", "abc", "abcd"] {
            let wire = B64.encode(format!("user={user}\x01auth=Bearer {secret}\x01\x01"));
            let log = format!("smtp: > AUTH XOAUTH2 {wire}");
            assert!(
                secret_patterns(secret).iter().any(|p| log.contains(p)),
                "missed at user {user:?}"
            );
        }
        let clean = B64.encode("user=a\x01auth=Bearer ya29.other-token-value-9999\x01\x01");
        assert!(!secret_patterns(secret).iter().any(|p| clean.contains(p)));
    }

    #[test]
    #[should_panic(expected = "a secret")]
    fn scan_fails_on_a_plain_hit() {
        assert_no_secrets(
            &[("log", "x 1//refresh-value-abc y")],
            &["1//refresh-value-abc".into()],
        );
    }

    #[test]
    fn interpreter_detection() {
        // This test binary is dynamically linked (std, glibc).
        assert!(has_interpreter(&std::env::current_exe().unwrap()));
    }
}
