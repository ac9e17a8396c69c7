//! `sasl-xoauth2-refresh --check PATH [--config F] [--online] [--json]
//! [--postfix-config DIR]`: tell the admin what is wrong before Postfix's
//! opaque "SASL authentication failed" or "no worthy mechs found" does.
//!
//! One line per check (`ok` / `warn` / `FAIL`, the reason and the fix), or
//! one JSON object; exit 0 (all ok), 1 (warnings), 2 (failures).
//!
//! What `--check` never does: write or create anything (not the token, not
//! its lock file, not a temp file), take the token's lock (whether a
//! refresh holds it is read from `/proc/locks`), or print a secret (tokens
//! and the client secret appear as `sha256:` fingerprints). It contacts the
//! token endpoint only with `--online`, through the refresher's own request
//! code ([`refresher::request_without_storing`]); run as root, it first
//! becomes the token file's owner for that request and enters the
//! helper's sandbox, as a refresh does.
//! It runs as root with capabilities (it must read what root reads), so it
//! skips the helper's `harden_process` until that last request.
//!
//! Layout: this file probes (files, postconf, xattrs, /proc, the kernel);
//! [`verdict`] turns what was found into verdicts (pure, unit-tested);
//! [`report`] prints them.

#![deny(unsafe_code)]

mod accounts;
mod elf;
mod explain;
pub mod postfix;
pub mod report;
#[allow(unsafe_code)]
mod sys;
mod verdict;

use accounts::Accounts;
use common::config::{SandboxMode, DEFAULT_REFRESH_HELPER};
use common::error::{FileError, FileKind, Problem};
use common::{Settings, TokenFile};
use postfix::{Place, Probe, View};
use refresher::Failure;
use refresher::{ConfigSource, Loaded};
use report::{Check, Report};
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Instant;
use verdict::{ConfigOrigin, Held, HelperFound, LockState, Perm, SmtpUser};

/// The parsed `--check` command line.
#[derive(Debug, Clone, Default)]
pub struct CheckRequest {
    /// The token path as sasl_passwd names it (or its real path).
    pub token_path: PathBuf,
    /// `--config`
    pub config: Option<PathBuf>,
    pub online: bool,
    pub json: bool,
    /// `--postfix-config DIR`: run `postconf -c DIR`.
    pub postfix_config: Option<PathBuf>,
}

/// Plugin file names libsasl2 would load (cargo builds the underscore one).
const PLUGIN_NAMES: &[&str] = &["libsasl-xoauth2.so", "libsasl_xoauth2.so"];

/// Run every check.
pub fn run(req: &CheckRequest) -> Report {
    let mut r = Report::default();
    let now = common::clock::unix_now();
    let accounts = Accounts::load();
    let given = std::path::absolute(&req.token_path).unwrap_or_else(|_| req.token_path.clone());

    let probe = postfix::probe(req.postfix_config.as_deref());
    let view = match &probe {
        Probe::View(v) => Some(v),
        _ => None,
    };
    let smtp_user = smtp_user(view, &accounts);

    // The config, from where the plugin inside Postfix will read it.
    let postfix_reads: Option<(PathBuf, &str)> = view.and_then(|v| {
        match v.imported(common::CONFIG_ENV) {
            Some(Some(p)) => Some((
                PathBuf::from(p),
                "SASL_XOAUTH2_CONFIG in import_environment",
            )),
            Some(None) => None, // from Postfix's start environment: unknown here
            None => Some((
                PathBuf::from(common::DEFAULT_CONFIG_PATH),
                "the default: import_environment does not set SASL_XOAUTH2_CONFIG",
            )),
        }
    });
    // --config, else what Postfix's import_environment sets, else the
    // plugin's own rule ($SASL_XOAUTH2_CONFIG, else the default).
    let imported = view
        .and_then(|v| v.imported(common::CONFIG_ENV))
        .flatten()
        .map(PathBuf::from);
    let own = common::config::config_path(
        sys::secure_execution(),
        std::env::var_os(common::CONFIG_ENV),
    );
    let (config_path, origin) = match (&req.config, imported) {
        (Some(p), _) => (p.clone(), ConfigOrigin::Option),
        (None, Some(p)) => (p, ConfigOrigin::PostfixImport),
        (None, None) if own != Path::new(common::DEFAULT_CONFIG_PATH) => (own, ConfigOrigin::Env),
        (None, None) => (own, ConfigOrigin::Default),
    };
    let loaded = refresher::load_config(&ConfigSource::Path(config_path.clone()));
    let reads = postfix_reads.as_ref().map(|(p, w)| (p.as_path(), *w));
    r.push(match &loaded {
        Ok(l) => verdict::config(&config_path, &origin, Ok(l.config()), reads),
        Err(Failure::ConfigFile(e)) => verdict::config(&config_path, &origin, Err(e), reads),
        Err(f) => Check::fail("config", f.what(), f.fix()),
    });
    let loaded = loaded.ok();
    let config = loaded.as_ref().map(Loaded::config);
    if let Some(c) = config {
        r.push(verdict::config_keys(c));
    }

    // Postfix: where smtp opens the token, and its SASL settings.
    let places: Vec<Place> = view.map(|v| postfix::places(&given, v)).unwrap_or_default();
    let exists: Vec<bool> = places
        .iter()
        .map(|p| p.path.symlink_metadata().is_ok())
        .collect();
    r.push(verdict::postfix(
        &probe,
        req.postfix_config.is_some(),
        &given,
        &places,
        &exists,
        given.symlink_metadata().is_ok(),
    ));
    if let Some(v) = view {
        r.push(verdict::postfix_sasl(v));
        r.push(verdict::postfix_tls(v));
    }
    r.push(plugin_check(view));

    // The helper and its sandbox.
    let chrooted = view.map(|v| v.services.iter().any(|s| s.chroot));
    let (helper_path, helper_origin) = match config.and_then(|c| c.refresh_helper.clone()) {
        Some(h) => (h, "refresh_helper in the config"),
        None => (DEFAULT_REFRESH_HELPER.to_string(), "the default"),
    };
    r.push(verdict::helper(
        &helper_path,
        helper_origin,
        &probe_helper(Path::new(&helper_path)),
        chrooted,
        elf::host_machine(),
    ));
    let mode = config.map_or(SandboxMode::default(), |c| c.sandbox);
    r.push(verdict::sandbox(mode, &refresher::kernel_support()));

    // The token file, as smtp opens it.
    let place = places
        .iter()
        .find(|p| p.services.iter().any(|s| s == "smtp/unix"))
        .or(places.first());
    let path = place.map_or(given.clone(), |p| p.path.clone());
    let token = read_token(&path);
    r.push(verdict::token(
        &path,
        token.as_ref().map(|(t, len)| (t, *len)),
        place.is_some(),
    ));
    let token = token.ok().map(|(t, _)| t);
    let mut prepared_ok = false;
    if let Some(t) = &token {
        r.push(verdict::token_keys(&path, t.field_names()));
        let window = config.map_or_else(
            || t.overrides.refresh_window.unwrap_or(10),
            |c| Settings::refresh_window(c, t),
        );
        let prefetch = config.map_or(600, |c| c.prefetch_window());
        r.push(verdict::token_expiry(t, now, window, prefetch));
        if let Some(l) = &loaded {
            let list = common::settings::overrides(l.config(), t);
            r.push(verdict::overrides(&path, &l.config().path, &list));
            // A refused override already failed above, with its fix.
            if let Ok(settings) = Settings::resolve(l.config(), t) {
                let prepared = refresher::prepare_request(l, t, &settings, &path);
                prepared_ok = prepared.is_ok();
                r.push(verdict::settings(
                    l.config(),
                    t,
                    &path,
                    &settings,
                    prepared.as_ref(),
                ));
            }
        }
    }

    // Owner, mode, directory, leftovers, lock.
    let su = smtp_user.as_ref();
    let meta = path.symlink_metadata().ok();
    let world_writable = meta.as_ref().is_some_and(|m| m.mode() & 0o002 != 0);
    if let Some(m) = meta.as_ref().filter(|m| m.file_type().is_file()) {
        let p = perm(m);
        r.push(verdict::token_mode(&path, &p));
        r.push(verdict::token_owner(&path, &p, su, &accounts));
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("/"),
    };
    if let Ok(dm) = std::fs::metadata(&dir) {
        let root = place
            .and_then(|p| p.chroot.clone())
            .unwrap_or_else(|| "/".into());
        r.push(verdict::token_dir(
            &dir,
            &perm(&dm),
            &ancestors(&dir, &root),
            su,
            &accounts,
        ));
        let lock_path = refresher::lock_path(&path);
        let (lock_state, held) = probe_lock(&lock_path);
        r.push(verdict::temp_files(&dir, &temp_files(&path, &dir), held));
        r.push(verdict::lock(&lock_path, &lock_state, held, su, &accounts));
        r.push(selinux_check(&path, &dir));
    }
    r.push(apparmor_check(&helper_path));

    if !refresher::is_root() {
        for c in &mut r.checks {
            hint_root(c);
        }
    }

    if req.online {
        r.push(online_check(
            &path,
            loaded.as_ref(),
            token.as_ref(),
            prepared_ok,
            world_writable,
        ));
    }
    r
}

/// The report as the command prints it: text lines, or one JSON object.
pub fn render(req: &CheckRequest, report: &Report) -> String {
    if req.json {
        let mut s = report.to_json().to_string();
        s.push('\n');
        s
    } else {
        report.to_text()
    }
}

/// Run by another user than root, `--check` cannot read what root (the
/// plugin's init) or the mail system's user can: say so instead of
/// suggesting to change the files.
fn hint_root(c: &mut Check) {
    if c.status != report::Status::Ok && c.message.contains("Permission denied") {
        c.fix = Some(format!(
            "run sasl-xoauth2-refresh --check as root (sudo) to see these files as Postfix does; {}",
            c.fix.as_deref().unwrap_or_default()
        ));
    }
}

fn perm(m: &std::fs::Metadata) -> Perm {
    Perm {
        uid: m.uid(),
        gid: m.gid(),
        mode: m.mode() & 0o7777,
    }
}

/// The user smtp runs as: from Postfix (mail_owner, or root for a service
/// with the unprivileged column `n`), else the `postfix` user if any.
fn smtp_user(view: Option<&View>, accounts: &Accounts) -> Option<SmtpUser> {
    match view {
        Some(v) => {
            let name = v.smtp_user();
            let source = if name == "root" && v.param("mail_owner") != "root" {
                "a master.cf smtp service with unprivileged = n".to_string()
            } else {
                format!("mail_owner in {}", v.command)
            };
            accounts.user(&name).map(|user| SmtpUser { user, source })
        }
        None => accounts.user("postfix").map(|user| SmtpUser {
            user,
            source: "the postfix user; Postfix's settings unknown".into(),
        }),
    }
}

/// The token file, read the way the helper reads it (no symlinks, regular
/// file, size cap), with its size.
fn read_token(path: &Path) -> Result<(TokenFile, u64), FileError> {
    let file = common::fsread::open_regular(path, FileKind::Token)?;
    let len = file
        .metadata()
        .map_err(|e| FileError::new(FileKind::Token, path, Problem::Unreadable(e.to_string())))?
        .len();
    let bytes = zeroize::Zeroizing::new(
        common::fsread::read_all_capped(file, common::MAX_FILE_SIZE)
            .map_err(|p| FileError::new(FileKind::Token, path, p))?,
    );
    let token = TokenFile::parse(&bytes, path)?;
    // Without a secrets file (split layout) the token file must hold the
    // refresh token, as the helper requires.
    let secrets = common::secrets::secrets_path(path);
    if !secrets.symlink_metadata().is_ok_and(|m| m.is_file()) {
        token.require_refresh_token(path)?;
    }
    Ok((token, len))
}

/// `dir`'s ancestors from `root` down (the ones smtp must be able to
/// search; above a chroot it never looks).
fn ancestors(dir: &Path, root: &Path) -> Vec<(PathBuf, Perm)> {
    let mut v: Vec<PathBuf> = dir
        .ancestors()
        .skip(1)
        .filter(|a| a.starts_with(root))
        .map(Path::to_path_buf)
        .collect();
    v.reverse();
    v.into_iter()
        .filter_map(|a| std::fs::metadata(&a).ok().map(|m| (a, perm(&m))))
        .collect()
}

fn temp_files(token: &Path, dir: &Path) -> Vec<String> {
    let prefix = refresher::store::temp_prefix(token);
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with(&prefix))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn probe_lock(lock: &Path) -> (LockState, Held) {
    let m = match lock.symlink_metadata() {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return (LockState::Absent, Held::Free)
        }
        Err(e) => return (LockState::Unreadable(e.to_string()), Held::Unknown),
    };
    let ft = m.file_type();
    if ft.is_symlink() {
        return (LockState::NotRegular("a symbolic link"), Held::Free);
    }
    if ft.is_dir() {
        return (LockState::NotRegular("a directory"), Held::Free);
    }
    if !ft.is_file() {
        return (LockState::NotRegular("a special file"), Held::Free);
    }
    let held = match std::fs::read_to_string("/proc/locks") {
        Ok(text) => match sys::flock_in_proc_locks(&text, m.dev(), m.ino()) {
            Some(true) => Held::Exclusive,
            Some(false) => Held::Shared,
            None => Held::Free,
        },
        Err(_) => Held::Unknown,
    };
    (LockState::File(perm(&m)), held)
}

/// The helper at `path`: what kind of file it is.
fn probe_helper(path: &Path) -> HelperFound {
    let m = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return HelperFound::Missing,
        Err(e) => return HelperFound::Unreadable(e.to_string()),
    };
    if !m.is_file() {
        return HelperFound::NotRegular;
    }
    let mut head = Vec::new();
    match std::fs::File::open(path)
        .and_then(|f| f.take(elf::READ_LIMIT as u64).read_to_end(&mut head))
    {
        Ok(_) => HelperFound::File {
            mode: m.mode() & 0o7777,
            elf: elf::inspect(&head),
        },
        Err(e) => HelperFound::Unreadable(e.to_string()),
    }
}

/// libsasl2's plugin directories on this distribution, most likely first
/// (the order of scripts/sasl-plugin-dir).
fn system_plugin_dirs() -> Vec<PathBuf> {
    let triplet = match std::env::consts::ARCH {
        "x86" => "i386-linux-gnu".to_string(),
        "arm" => "arm-linux-gnueabihf".to_string(),
        "powerpc64" => "powerpc64le-linux-gnu".to_string(),
        arch => format!("{arch}-linux-gnu"),
    };
    vec![
        PathBuf::from(format!("/usr/lib/{triplet}/sasl2")),
        PathBuf::from("/usr/lib64/sasl2"),
        PathBuf::from("/usr/lib/sasl2"),
    ]
}

fn plugin_check(view: Option<&View>) -> Check {
    let split = |v: &str| -> Vec<PathBuf> {
        v.split(':')
            .filter(|d| !d.is_empty())
            .map(PathBuf::from)
            .collect()
    };
    let system = system_plugin_dirs();
    let default_dir = || {
        vec![system
            .iter()
            .find(|d| d.is_dir())
            .unwrap_or(&system[0])
            .clone()]
    };
    let env = std::env::var("SASL_PATH").ok().filter(|v| !v.is_empty());
    let (dirs, source) = match view.map(|v| v.imported("SASL_PATH")) {
        Some(Some(Some(p))) => (split(&p), "SASL_PATH in Postfix's import_environment"),
        Some(_) => (
            default_dir(),
            "libsasl2's default; Postfix passes smtp no SASL_PATH",
        ),
        None => match env {
            Some(p) => (split(&p), "$SASL_PATH"),
            None => (default_dir(), "libsasl2's default"),
        },
    };
    let in_dirs = |ds: &[PathBuf]| -> Vec<PathBuf> {
        ds.iter()
            .flat_map(|d| PLUGIN_NAMES.iter().map(move |n| d.join(n)))
            .filter(|p| p.is_file())
            .collect()
    };
    let found = in_dirs(&dirs).into_iter().next();
    let others: Vec<PathBuf> = system
        .iter()
        .chain(&[PathBuf::from("/usr/local/lib/sasl2")])
        .filter(|d| !dirs.contains(d))
        .cloned()
        .collect();
    let elsewhere = if found.is_none() {
        in_dirs(&others)
    } else {
        Vec::new()
    };
    verdict::plugin(&dirs, source, found.as_deref(), &elsewhere)
}

fn label(p: &Path) -> Option<String> {
    sys::get_xattr(p, sys::SELINUX_XATTR)
        .ok()
        .flatten()
        .map(|b| {
            String::from_utf8_lossy(&b)
                .trim_end_matches('\0')
                .to_string()
        })
}

fn selinux_check(path: &Path, dir: &Path) -> Check {
    let enforcing = std::fs::read_to_string("/sys/fs/selinux/enforce")
        .ok()
        .map(|s| s.trim() == "1");
    // semodule's store: /var/lib/selinux/<policy>/active/modules/<prio>/<name>
    let module = std::fs::read_dir("/var/lib/selinux").ok().map(|policies| {
        policies.filter_map(Result::ok).any(|p| {
            std::fs::read_dir(p.path().join("active/modules"))
                .map(|prios| {
                    prios
                        .filter_map(Result::ok)
                        .any(|prio| prio.path().join("sasl_xoauth2").exists())
                })
                .unwrap_or(false)
        })
    });
    let file_label = path.symlink_metadata().ok().and_then(|_| label(path));
    verdict::selinux(
        path,
        file_label.as_deref(),
        dir,
        label(dir).as_deref(),
        enforcing,
        module,
    )
}

fn apparmor_check(helper_path: &str) -> Check {
    let fs = Path::new("/sys/kernel/security/apparmor");
    let active = fs.exists();
    let loaded = std::fs::read_to_string(fs.join("profiles")).ok().map(|t| {
        t.lines()
            .any(|l| l.split_whitespace().next() == Some(verdict::APPARMOR_PROFILE_NAME))
    });
    verdict::apparmor(
        active,
        Path::new(verdict::APPARMOR_PROFILE_FILE).exists(),
        loaded,
        helper_path,
    )
}

fn online_check(
    path: &Path,
    loaded: Option<&Loaded>,
    token: Option<&TokenFile>,
    prepared_ok: bool,
    world_writable: bool,
) -> Check {
    const N: &str = "online";
    let (Some(l), Some(t), true) = (loaded, token, prepared_ok) else {
        return Check::fail(
            N,
            "not attempted: the config, the token file or the settings failed above",
            "fix those first",
        );
    };
    if world_writable {
        return Check::fail(
            N,
            format!(
                "not attempted: {} is writable by every user, so its token_endpoint may point anywhere",
                path.display()
            ),
            format!("chmod 600 {} and check its contents", path.display()),
        );
    }
    let settings = match refresher::resolve(l.config(), t, path) {
        Ok(s) => s,
        Err(f) => return Check::fail(N, format!("not attempted: {f}"), "see the overrides check"),
    };
    let host = refresher::Endpoint::parse(&settings.token_endpoint)
        .map(|e| e.display_host())
        .unwrap_or_default();
    let google = host.ends_with("google.com") || host.ends_with("googleapis.com");
    let start = Instant::now();
    // As a refresh does: as the token's owner, in the helper's sandbox.
    let result = refresher::request_without_storing(l, path, t);
    verdict::online(path, &host, result.as_ref(), start.elapsed(), google)
}
