//! What Postfix will do with a token path, asked from `postconf(1)`
//! (`postconf [-c DIR]` for main.cf values, `-M` for master.cf services,
//! `-P` for their `-o` overrides). Running postconf is the only I/O here;
//! the parsing is pure and unit-tested.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// main.cf parameters we read.
pub const PARAMS: &[&str] = &[
    "mail_version",
    "mail_owner",
    "queue_directory",
    "import_environment",
    "smtp_sasl_auth_enable",
    "smtp_sasl_mechanism_filter",
    "smtp_sasl_security_options",
    "smtp_sasl_tls_security_options",
    "smtp_tls_security_level",
    "smtp_tls_policy_maps",
];

/// A master.cf service that runs the smtp(8) client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// `smtp/unix`
    pub name: String,
    /// The chroot column as written (`y`, `n` or `-`).
    pub chroot_field: String,
    /// Whether it runs chrooted (with `-` resolved for this version).
    pub chroot: bool,
    /// The unprivileged column: `n` means the service runs as root.
    pub unprivileged: bool,
}

/// Everything `--check` needs from Postfix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View {
    /// How postconf was run, for messages: `postconf -c DIR` or `postconf`.
    pub command: String,
    pub params: BTreeMap<String, String>,
    pub services: Vec<Service>,
    /// `service/type` -> parameter -> value, from `-o` in master.cf.
    pub overrides: BTreeMap<String, BTreeMap<String, String>>,
}

/// The outcome of asking Postfix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Probe {
    /// No postconf on this host.
    NotInstalled,
    /// postconf ran but failed (no main.cf, say).
    Failed {
        command: String,
        error: String,
    },
    View(View),
}

impl View {
    pub fn param(&self, name: &str) -> &str {
        self.params.get(name).map_or("", String::as_str)
    }

    /// A parameter as `service` sees it: its `-o` override, else main.cf.
    pub fn param_for(&self, service: &str, name: &str) -> &str {
        self.overrides
            .get(service)
            .and_then(|o| o.get(name))
            .map_or_else(|| self.param(name), String::as_str)
    }

    pub fn queue_directory(&self) -> PathBuf {
        PathBuf::from(self.param("queue_directory"))
    }

    /// The user smtp runs as: root if a service has the unprivileged column
    /// set to `n`, else mail_owner.
    pub fn smtp_user(&self) -> String {
        if self.services.iter().any(|s| !s.unprivileged) {
            "root".into()
        } else {
            self.param("mail_owner").to_string()
        }
    }

    /// The value `import_environment` gives `name` in Postfix's daemons:
    /// `Some(Some(v))` for `name=v`, `Some(None)` when imported from the
    /// environment Postfix was started with (unknown here), `None` when
    /// not imported (daemons then do not have it at all).
    pub fn imported(&self, name: &str) -> Option<Option<String>> {
        import_environment(self.param("import_environment"))
            .into_iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    }
}

/// Postfix 3.0 changed the default of master.cf's chroot column (`-`) from
/// `y` to `n` (master(5)); Debian's master.cf writes `y` explicitly.
pub fn chroot_default(mail_version: &str) -> bool {
    let major: u32 = mail_version
        .split('.')
        .next()
        .and_then(|m| m.trim().parse().ok())
        .unwrap_or(3);
    major < 3
}

/// `name = value` lines (postconf without -h).
pub fn parse_params(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| {
            let (k, v) = l.split_once('=')?;
            Some((k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

/// `postconf -M` lines: the unix services whose command is smtp(8).
pub fn parse_master(text: &str, mail_version: &str) -> Vec<Service> {
    let default = chroot_default(mail_version);
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() < 8 || f[1] != "unix" || f[7] != "smtp" {
                return None;
            }
            let chroot = match f[4] {
                "y" => true,
                "n" => false,
                _ => default,
            };
            // Columns: service type private unpriv chroot wakeup maxproc command.
            Some(Service {
                name: format!("{}/{}", f[0], f[1]),
                chroot_field: f[4].to_string(),
                chroot,
                unprivileged: f[3] != "n",
            })
        })
        .collect()
}

/// `postconf -P` lines: `service/type/parameter = value`.
pub fn parse_overrides(text: &str) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut out: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
    for (key, value) in parse_params(text) {
        let parts: Vec<&str> = key.splitn(3, '/').collect();
        if let [name, kind, param] = parts[..] {
            out.entry(format!("{name}/{kind}"))
                .or_default()
                .insert(param.to_string(), value);
        }
    }
    out
}

/// `import_environment` entries: `NAME` or `NAME=value`, separated by
/// blanks or commas; `{ NAME = value with spaces }` as in Postfix 3.
pub fn import_environment(value: &str) -> Vec<(String, Option<String>)> {
    let mut out = Vec::new();
    let mut rest = value.trim();
    while !rest.is_empty() {
        rest = rest.trim_start_matches(|c: char| c.is_whitespace() || c == ',');
        if rest.is_empty() {
            break;
        }
        let item;
        if let Some(inner) = rest.strip_prefix('{') {
            let end = inner.find('}').unwrap_or(inner.len());
            item = inner[..end].trim().to_string();
            rest = inner.get(end + 1..).unwrap_or("");
        } else {
            let end = rest
                .find(|c: char| c.is_whitespace() || c == ',')
                .unwrap_or(rest.len());
            item = rest[..end].to_string();
            rest = &rest[end..];
        }
        match item.split_once('=') {
            Some((k, v)) => out.push((k.trim().to_string(), Some(v.trim().to_string()))),
            None if !item.is_empty() => out.push((item, None)),
            None => {}
        }
    }
    out
}

/// Where postconf is: `$PATH`, then the sbin directories (cron and sudo
/// often leave them out of PATH).
pub fn find_postconf() -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join("postconf"))
        .find(|p| p.is_file())
}

/// Ask postconf (with `-c dir` when given).
pub fn probe(config_dir: Option<&Path>) -> Probe {
    let Some(postconf) = find_postconf() else {
        return Probe::NotInstalled;
    };
    let command = match config_dir {
        Some(d) => format!("postconf -c {}", d.display()),
        None => "postconf".to_string(),
    };
    let run = |extra: &[&str]| -> Result<String, String> {
        let mut c = Command::new(&postconf);
        if let Some(d) = config_dir {
            c.arg("-c").arg(d);
        }
        let out = c
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("cannot run {}: {e}", postconf.display()))?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let first = err
                .lines()
                .find(|l| l.contains("fatal"))
                .or_else(|| err.lines().next())
                .unwrap_or("failed without a message");
            return Err(first.trim().to_string());
        }
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    };
    let result = (|| {
        let params = parse_params(&run(PARAMS)?);
        let version = params.get("mail_version").cloned().unwrap_or_default();
        let services = parse_master(&run(&["-M"])?, &version);
        let overrides = parse_overrides(&run(&["-P"])?);
        Ok::<_, String>(View {
            command: command.clone(),
            params,
            services,
            overrides,
        })
    })();
    match result {
        Ok(v) => Probe::View(v),
        Err(error) => Probe::Failed { command, error },
    }
}

/// Where one group of smtp services opens the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    /// The services (`smtp/unix`, ...).
    pub services: Vec<String>,
    /// The chroot directory, when they run chrooted.
    pub chroot: Option<PathBuf>,
    /// The file they open, as seen from outside the chroot.
    pub path: PathBuf,
    /// The path sasl_passwd must hold for them.
    pub passwd_path: PathBuf,
}

/// Where the smtp services open the token whose path (as the admin gave
/// it) is `given`: `queue_directory` + path when chrooted. A `given` path
/// already inside the queue directory is taken as the file itself, and
/// sasl_passwd must then name it without the queue directory.
pub fn places(given: &Path, view: &View) -> Vec<Place> {
    let queue = view.queue_directory();
    let mut out: Vec<Place> = Vec::new();
    for s in &view.services {
        let place = if s.chroot && !queue.as_os_str().is_empty() {
            match given.strip_prefix(&queue) {
                Ok(inside) => Place {
                    services: vec![],
                    chroot: Some(queue.clone()),
                    path: given.to_path_buf(),
                    passwd_path: Path::new("/").join(inside),
                },
                Err(_) => Place {
                    services: vec![],
                    chroot: Some(queue.clone()),
                    path: queue.join(given.strip_prefix("/").unwrap_or(given)),
                    passwd_path: given.to_path_buf(),
                },
            }
        } else {
            Place {
                services: vec![],
                chroot: None,
                path: given.to_path_buf(),
                passwd_path: given.to_path_buf(),
            }
        };
        match out.iter_mut().find(|p| p.path == place.path) {
            Some(p) => p.services.push(s.name.clone()),
            None => out.push(Place {
                services: vec![s.name.clone()],
                ..place
            }),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MASTER: &str = "\
smtp       inet  n       -       y       -       -       smtpd
pickup     unix  n       -       y       60      1       pickup
smtp       unix  -       -       y       -       -       smtp
relay      unix  -       -       -       -       -       smtp -o syslog_name=postfix/$service_name
lmtp       unix  -       -       y       -       -       lmtp
rootsmtp   unix  -       n       n       -       -       smtp
";

    fn view(master: &str, version: &str, queue: &str) -> View {
        View {
            command: "postconf".into(),
            params: [
                ("mail_version", version),
                ("queue_directory", queue),
                ("mail_owner", "postfix"),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
            services: parse_master(master, version),
            overrides: BTreeMap::new(),
        }
    }

    #[test]
    fn master_services_and_chroot_default() {
        let s = parse_master(MASTER, "3.7.11");
        let names: Vec<_> = s.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["smtp/unix", "relay/unix", "rootsmtp/unix"]);
        assert!(s[0].chroot && s[0].unprivileged);
        assert!(!s[1].chroot, "`-` is n since Postfix 3.0");
        assert_eq!(s[1].chroot_field, "-");
        assert!(!s[2].unprivileged && !s[2].chroot);
        let old = parse_master(MASTER, "2.11.3");
        assert!(old[1].chroot, "`-` was y before Postfix 3.0");
        assert!(chroot_default("2.9") && !chroot_default("3.0.0") && !chroot_default("10.1"));
    }

    #[test]
    fn params_overrides_and_environment() {
        let p = parse_params("mail_owner = postfix\nsmtp_sasl_mechanism_filter =\nqueue_directory = /var/spool/postfix\n");
        assert_eq!(p["mail_owner"], "postfix");
        assert_eq!(p["smtp_sasl_mechanism_filter"], "");
        let o = parse_overrides(
            "relay/unix/smtp_sasl_mechanism_filter = login\nrelay/unix/syslog_name = postfix/relay\n",
        );
        assert_eq!(o["relay/unix"]["smtp_sasl_mechanism_filter"], "login");
        let e = import_environment(
            "MAIL_CONFIG MAIL_DEBUG LANG=C, SASL_PATH=/opt/sasl2:/usr/lib/sasl2 { SASL_XOAUTH2_CONFIG = /etc/my conf }",
        );
        assert_eq!(e[0], ("MAIL_CONFIG".into(), None));
        assert_eq!(e[2], ("LANG".into(), Some("C".into())));
        assert_eq!(
            e[3],
            ("SASL_PATH".into(), Some("/opt/sasl2:/usr/lib/sasl2".into()))
        );
        assert_eq!(
            e[4],
            ("SASL_XOAUTH2_CONFIG".into(), Some("/etc/my conf".into()))
        );
        assert_eq!(e.len(), 5);
        let mut v = view(MASTER, "3.7", "/q");
        v.params.insert(
            "import_environment".into(),
            "MAIL_CONFIG SASL_PATH=/x".into(),
        );
        assert_eq!(v.imported("SASL_PATH"), Some(Some("/x".into())));
        assert_eq!(v.imported("MAIL_CONFIG"), Some(None));
        assert_eq!(v.imported("SASL_XOAUTH2_CONFIG"), None);
        v.overrides = o;
        assert_eq!(
            v.param_for("relay/unix", "smtp_sasl_mechanism_filter"),
            "login"
        );
        assert_eq!(v.param_for("smtp/unix", "mail_owner"), "postfix");
        assert_eq!(v.smtp_user(), "root", "rootsmtp runs as root");
    }

    #[test]
    fn token_places_inside_and_outside_the_chroot() {
        let v = view(
            "smtp unix - - y - - smtp\nrelay unix - - n - - smtp\n",
            "3.7",
            "/var/spool/postfix",
        );
        assert_eq!(v.smtp_user(), "postfix");
        let p = places(Path::new("/etc/tokens/a"), &v);
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].services, ["smtp/unix"]);
        assert_eq!(
            p[0].chroot.as_deref(),
            Some(Path::new("/var/spool/postfix"))
        );
        assert_eq!(p[0].path, Path::new("/var/spool/postfix/etc/tokens/a"));
        assert_eq!(p[0].passwd_path, Path::new("/etc/tokens/a"));
        assert_eq!(p[1].chroot, None);
        assert_eq!(p[1].path, Path::new("/etc/tokens/a"));
        // The admin gave the file's real path inside the queue directory.
        let p = places(Path::new("/var/spool/postfix/etc/tokens/a"), &v);
        assert_eq!(p[0].path, Path::new("/var/spool/postfix/etc/tokens/a"));
        assert_eq!(p[0].passwd_path, Path::new("/etc/tokens/a"));
        // Two chrooted services share one place.
        let v = view(
            "smtp unix - - y - - smtp\nrelay unix - - y - - smtp\n",
            "3.7",
            "/q",
        );
        let p = places(Path::new("/t"), &v);
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].services, ["smtp/unix", "relay/unix"]);
        assert_eq!(p[0].path, Path::new("/q/t"));
    }
}
