//! The verdict of every check, as pure functions of what was found (the
//! probing is in lib.rs). Each returns one [`Check`]; the unit tests
//! below cover every branch, including the ones this host cannot produce
//! (AppArmor enabled, SELinux enforcing, a kernel without landlock).

use super::accounts::{Accounts, User};
use super::elf::Elf;
use super::postfix::{Place, Probe, View};
use super::report::Check;
use common::config::{nearest_known_key, SandboxMode, KNOWN_KEYS};
use common::error::FileError;
use common::policy::{freshness, Freshness};
use common::settings::{Override, Verdict};
use common::token::Grant;
use common::{Config, Settings, TokenFile};
use refresher::Failure;
use refresher::Granted;
use refresher::Prepared;
use refresher::{decide_sandbox as decide, Support, Wall};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The SELinux type of token files (selinux/sasl_xoauth2.fc).
pub const SELINUX_TOKEN_TYPE: &str = "sasl_xoauth2_token_t";

/// Directories the SELinux module labels as token directories.
pub const SELINUX_TOKEN_DIRS: &[&str] = &["/etc/tokens", "/var/spool/postfix/etc/tokens"];

/// The AppArmor profile of the helper, as installed, and its name.
pub const APPARMOR_PROFILE_FILE: &str =
    "/etc/apparmor.d/usr.libexec.sasl-xoauth2.sasl-xoauth2-refresh";
pub const APPARMOR_PROFILE_NAME: &str = "sasl-xoauth2-refresh";

/// Owner, group and permission bits of a file or directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Perm {
    pub uid: u32,
    pub gid: u32,
    /// `st_mode & 0o7777`
    pub mode: u32,
}

/// The user Postfix's smtp (and so the plugin and the helper) runs as, and
/// how we know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SmtpUser {
    pub user: User,
    pub source: String,
}

/// Read (4), write (2), search/execute (1) permission of `user` on `p`,
/// by the owner/group/other bits (root may read and write anything, and
/// search any directory).
pub fn may(user: &User, p: &Perm, want: u32) -> bool {
    if user.uid == 0 {
        return true;
    }
    let bits = if user.uid == p.uid {
        (p.mode >> 6) & 7
    } else if user.gids.contains(&p.gid) {
        (p.mode >> 3) & 7
    } else {
        p.mode & 7
    };
    bits & want == want
}

/// "45 s", "41 min", "3 h", "2 d", "12 years" (rounded down).
pub fn human_span(secs: i64) -> String {
    let s = secs.unsigned_abs();
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        7200..=172_799 => format!("{} h", s / 3600),
        172_800..=63_071_999 => format!("{} d", s / 86_400),
        _ => format!("{} years", s / 31_536_000),
    }
}

pub(crate) fn q(p: &Path) -> String {
    p.display().to_string()
}

pub(crate) fn owner_of(accounts: &Accounts, p: &Perm) -> String {
    format!(
        "{}:{}",
        accounts.user_name(p.uid),
        accounts.group_name(p.gid)
    )
}

fn chown_arg(accounts: &Accounts, user: &User) -> String {
    let group = user
        .gids
        .first()
        .map_or_else(String::new, |g| accounts.group_name(*g));
    format!("{}:{group}", user.name)
}

// ---------------------------------------------------------------- config

/// Where the config came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigOrigin {
    /// `--config`
    Option,
    /// `$SASL_XOAUTH2_CONFIG` of the shell running `--check`.
    Env,
    /// `SASL_XOAUTH2_CONFIG=...` in Postfix's import_environment.
    PostfixImport,
    Default,
}

impl ConfigOrigin {
    pub fn describe(&self) -> &'static str {
        match self {
            ConfigOrigin::Option => "from --config",
            ConfigOrigin::Env => "from $SASL_XOAUTH2_CONFIG",
            ConfigOrigin::PostfixImport => "from Postfix's import_environment",
            ConfigOrigin::Default => "the default path",
        }
    }
}

/// The config file: found, valid JSON, values typed right; and whether it
/// is the file Postfix's smtp will read (`postfix_reads`, when known).
pub fn config(
    path: &Path,
    origin: &ConfigOrigin,
    loaded: Result<&Config, &FileError>,
    postfix_reads: Option<(&Path, &str)>,
) -> Check {
    const N: &str = "config";
    let c = match loaded {
        Ok(c) => c,
        Err(e) => {
            return Check::fail(
                N,
                format!("{} ({}) {}", q(path), origin.describe(), e.problem),
                e.fix(),
            )
        }
    };
    let mut msg = format!("{} ({}): valid", q(path), origin.describe());
    if let Some(s) = &c.client_secret {
        msg.push_str(&format!(", client_secret {}", s.fingerprint()));
    }
    if let Some((reads, why)) = postfix_reads {
        if reads != path {
            return Check::warn(
                N,
                format!(
                    "{msg}, but Postfix's smtp reads {} ({why}): its daemons get no environment but import_environment",
                    q(reads)
                ),
                format!(
                    "check that file with `sasl-xoauth2-refresh --check PATH --config {}`, or add SASL_XOAUTH2_CONFIG={} to import_environment in main.cf",
                    q(reads),
                    q(path)
                ),
            );
        }
    }
    Check::ok(N, msg)
}

/// Unknown keys in the config (ignored, as the C++ version does), with the
/// known key each is most likely a typo of.
pub fn config_keys(c: &Config) -> Check {
    const N: &str = "config-keys";
    if c.unknown_keys.is_empty() {
        return Check::ok(N, "every key is known");
    }
    let mut found = Vec::new();
    let mut fixes = Vec::new();
    for k in &c.unknown_keys {
        match nearest_known_key(k) {
            Some(near) => {
                found.push(format!("\"{k}\" (did you mean \"{near}\"?)"));
                fixes.push(format!("rename \"{k}\" to \"{near}\""));
            }
            None => {
                found.push(format!("\"{k}\""));
                fixes.push(format!("remove \"{k}\""));
            }
        }
    }
    Check::warn(
        N,
        format!(
            "{}: unknown key(s) {}, ignored",
            q(&c.path),
            found.join(", ")
        ),
        format!("{} in {}", fixes.join(", "), q(&c.path)),
    )
}

// ----------------------------------------------------------------- token

/// The token file: exists, regular, not a symlink, size, JSON, fields.
/// `placed`: `path` is where Postfix's smtp opens it (so the generic
/// chroot hint of a missing file does not apply; the postfix check says
/// where it must be).
pub fn token(path: &Path, loaded: Result<(&TokenFile, u64), &FileError>, placed: bool) -> Check {
    const N: &str = "token";
    let (t, len) = match loaded {
        Ok(x) => x,
        Err(e) if placed && e.problem == common::error::Problem::Missing => {
            return Check::fail(
                N,
                format!("{} {}", q(path), e.problem),
                format!(
                    "create it with `sasl-xoauth2-tool get-token {{gmail|outlook}} {}` (see the postfix check)",
                    q(path)
                ),
            )
        }
        Err(e) => return Check::fail(N, format!("{} {}", q(path), e.problem), e.fix()),
    };
    let mut parts = vec![format!("{}: valid, {len} bytes", q(path))];
    match (t.grant, &t.refresh_token) {
        (Grant::ClientCredentials, _) => {
            parts.push("grant client_credentials (no refresh token needed)".into())
        }
        (Grant::RefreshToken, Some(r)) => parts.push(format!("refresh token {}", r.fingerprint())),
        (Grant::RefreshToken, None) => {}
    }
    match &t.user {
        Some(u) => parts.push(format!("user \"{u}\" (sent instead of the SASL user name)")),
        None => parts.push("no user override (the SASL user name is sent)".into()),
    }
    Check::ok(N, parts.join(", "))
}

/// Fields a token file may hold.
const TOKEN_FIELDS: &[&str] = &[
    "refresh_token",
    "access_token",
    "expiry",
    "user",
    "grant_type",
    "client_id",
    "client_secret",
    "token_endpoint",
    "scope",
    "proxy",
    "ca_bundle_file",
    "ca_certs_dir",
    "refresh_window",
];

/// Fields that look like typos of token fields, and config-only keys that
/// have no effect in a token file. Other unknown fields are kept as they
/// are by every rewrite, so they are fine.
pub fn token_keys<'a>(path: &Path, names: impl Iterator<Item = &'a str>) -> Check {
    const N: &str = "token-keys";
    let mut found = Vec::new();
    let mut fixes = Vec::new();
    for n in names {
        if TOKEN_FIELDS.contains(&n) {
            continue;
        }
        if KNOWN_KEYS.iter().any(|(k, _)| *k == n) {
            found.push(format!("\"{n}\" has no effect in a token file"));
            fixes.push(format!("move \"{n}\" to the config file"));
            continue;
        }
        if let Some(f) = common::config::nearest(n, TOKEN_FIELDS.iter().copied(), 2) {
            found.push(format!("\"{n}\" is ignored (did you mean \"{f}\"?)"));
            fixes.push(format!("rename \"{n}\" to \"{f}\""));
        }
    }
    if found.is_empty() {
        return Check::ok(N, "no misspelt fields");
    }
    Check::warn(
        N,
        format!("{}: {}", q(path), found.join("; ")),
        format!("{} in {}", fixes.join(", "), q(path)),
    )
}

/// The access token's expiry, in words.
pub fn token_expiry(t: &TokenFile, now: i64, refresh_window: i64, prefetch_window: i64) -> Check {
    const N: &str = "token-expiry";
    let Some(at) = &t.access_token else {
        return Check::ok(
            N,
            "no access token yet: the first authentication waits for a refresh",
        );
    };
    let left = t.expiry.saturating_sub(now);
    let fp = at.fingerprint();
    if t.expiry == 0 {
        return Check::ok(
            N,
            format!("access token {fp} has expiry 0 (marked expired): the next authentication waits for a refresh"),
        );
    }
    if left > 10 * 365 * 86_400 {
        return Check::warn(
            N,
            format!(
                "access token {fp} expires in {} (expiry {}): the plugin uses it until then unless the server rejects it",
                human_span(left),
                t.expiry
            ),
            "set \"expiry\" to \"0\" to have it refreshed at the next authentication",
        );
    }
    match freshness(true, t.expiry, now, refresh_window, prefetch_window) {
        Freshness::Fresh => Check::ok(
            N,
            format!("access token {fp} expires in {}", human_span(left)),
        ),
        Freshness::Prefetch => Check::ok(
            N,
            format!(
                "access token {fp} expires in {}: still used, and refreshed in the background at the next authentication",
                human_span(left)
            ),
        ),
        Freshness::Expired if left >= 0 => Check::ok(
            N,
            format!(
                "access token {fp} expires in {} (within refresh_window {refresh_window} s): the next authentication waits for a refresh",
                human_span(left)
            ),
        ),
        Freshness::Expired => Check::ok(
            N,
            format!(
                "access token {fp} expired {} ago: the next authentication waits for a refresh",
                human_span(left)
            ),
        ),
    }
}

/// Each token-file override of where the request goes or whom it trusts
/// (token_endpoint, proxy, ca_bundle_file, ca_certs_dir) and whether the
/// trust rule (common::settings) allows it.
pub fn overrides(token_path: &Path, config_path: &Path, list: &[Override]) -> Check {
    const N: &str = "overrides";
    if list.is_empty() {
        return Check::ok(
            N,
            "the token file sets no token_endpoint, proxy, ca_bundle_file or ca_certs_dir of its own",
        );
    }
    let what = format!(
        "{}: {}",
        q(token_path),
        list.iter()
            .map(|o| o.to_string())
            .collect::<Vec<_>>()
            .join("; ")
    );
    let fixes: Vec<String> = list
        .iter()
        .filter_map(|o| match o.verdict {
            Verdict::Refused("allowed_token_endpoints") => Some(format!(
                "if {} is yours, add it to \"allowed_token_endpoints\" in {} and give {} its own \"client_id\"/\"client_secret\"; otherwise remove \"token_endpoint\" from it",
                o.shown,
                q(config_path),
                q(token_path)
            )),
            Verdict::Refused(allow) => Some(format!(
                "set \"{allow}\": true in {} if you trust whoever can write {}, or remove \"{}\" from it",
                q(config_path),
                q(token_path),
                o.key
            )),
            Verdict::NeedsOwnSecret => Some(format!(
                "add the account's own \"client_id\" and \"client_secret\" to {}",
                q(token_path)
            )),
            _ => None,
        })
        .collect();
    if fixes.is_empty() {
        Check::ok(N, what)
    } else {
        Check::fail(
            N,
            format!("refresh refused, nothing would be sent: {what}"),
            fixes.join("; "),
        )
    }
}

/// The settings a refresh would use (config, then the token's overrides)
/// and whether the request can be built: client_id, endpoint, proxy, CAs.
pub fn settings(
    config: &Config,
    token: &TokenFile,
    token_path: &Path,
    s: &Settings,
    prepared: Result<&Prepared, &Failure>,
) -> Check {
    const N: &str = "settings";
    let prepared = match prepared {
        Ok(p) => p,
        Err(f) => return Check::fail(N, f.what(), f.fix()),
    };
    let o = &token.overrides;
    let from = |over: bool, base: bool| {
        if over {
            "token file"
        } else if base {
            "config"
        } else {
            "default"
        }
    };
    let mut parts = vec![format!(
        "client_id \"{}\" ({})",
        s.client_id,
        from(o.client_id.is_some(), config.client_id.is_some())
    )];
    if let (Some(f), true, None) = (
        &config.client_secret_file,
        s.client_secret.is_empty(),
        &o.client_secret,
    ) {
        parts.push(format!(
            "client_secret from client_secret_file {} (see the client-secret-file check)",
            q(f)
        ));
    } else if s.client_secret.is_empty() {
        parts.push("no client_secret (a public client)".into());
    } else {
        parts.push(format!(
            "client_secret {} ({})",
            s.client_secret.fingerprint(),
            from(o.client_secret.is_some(), config.client_secret.is_some())
        ));
    }
    let ep = &prepared.route.endpoint;
    parts.push(format!(
        "token_endpoint {} ({})",
        if ep.url.contains('@') {
            ep.display_host()
        } else {
            ep.url.clone()
        },
        from(o.token_endpoint.is_some(), config.token_endpoint.is_some())
    ));
    if let Some(p) = &prepared.route.proxy {
        parts.push(format!("proxy {}:{}", p.host, p.port));
    }
    parts.push(format!("trusting {}", prepared.trust.describe()));
    parts.push(format!("refresh_window {} s", s.refresh_window));
    let overridden: Vec<&str> = [
        ("client_id", o.client_id.is_some()),
        ("client_secret", o.client_secret.is_some()),
        ("token_endpoint", o.token_endpoint.is_some()),
        ("scope", o.scope.is_some()),
        ("proxy", o.proxy.is_some()),
        ("ca_bundle_file", o.ca_bundle_file.is_some()),
        ("ca_certs_dir", o.ca_certs_dir.is_some()),
        ("refresh_window", o.refresh_window.is_some()),
    ]
    .into_iter()
    .filter(|(_, set)| *set)
    .map(|(k, _)| k)
    .collect();
    if overridden.is_empty() {
        parts.push("the token file overrides nothing".into());
    } else {
        parts.push(format!(
            "{} overrides {}",
            q(token_path),
            overridden.join(", ")
        ));
    }
    Check::ok(N, parts.join(", "))
}

// ----------------------------------------------------------- permissions

/// Mode of the token file: only its owner may read it.
pub fn token_mode(path: &Path, p: &Perm) -> Check {
    const N: &str = "token-mode";
    let fix = format!("chmod 600 {}", q(path));
    if p.mode & 0o002 != 0 {
        return Check::fail(
            N,
            format!(
                "{} is writable by every user (mode {:04o}): anyone could point its token_endpoint elsewhere; the helper refuses it",
                q(path),
                p.mode
            ),
            fix,
        );
    }
    if p.mode & 0o077 != 0 {
        let who = if p.mode & 0o007 != 0 {
            "every user"
        } else {
            "its group"
        };
        return Check::fail(
            N,
            format!(
                "{} is accessible to {who} (mode {:04o}): it holds the refresh token",
                q(path),
                p.mode
            ),
            fix,
        );
    }
    Check::ok(N, format!("mode {:04o}", p.mode))
}

/// Owner of the token file versus the user smtp runs as.
pub fn token_owner(path: &Path, p: &Perm, user: Option<&SmtpUser>, accounts: &Accounts) -> Check {
    const N: &str = "token-owner";
    let owner = owner_of(accounts, p);
    let Some(su) = user else {
        return Check::ok(
            N,
            format!(
                "owner {owner}; smtp's user is unknown (no postconf and no postfix user), so not compared"
            ),
        );
    };
    let u = &su.user;
    if u.uid == p.uid {
        return Check::ok(
            N,
            format!("owner {owner}, the user smtp runs as ({})", su.source),
        );
    }
    let fix = format!("chown {} {}", chown_arg(accounts, u), q(path));
    if !may(u, p, 4) {
        return Check::fail(
            N,
            format!(
                "owner {owner}, mode {:04o}: smtp runs as {} ({}) and cannot read it",
                p.mode, u.name, su.source
            ),
            fix,
        );
    }
    Check::warn(
        N,
        format!(
            "owner {owner}, not {} ({}): smtp can read it, but a refresh run by the plugin rewrites it as {}",
            u.name, su.source, u.name
        ),
        fix,
    )
}

/// The token's directory: reachable and writable by smtp's user (the
/// helper creates its lock and temp files there and renames), and not
/// writable by anybody else.
pub fn token_dir(
    dir: &Path,
    p: &Perm,
    ancestors: &[(PathBuf, Perm)],
    user: Option<&SmtpUser>,
    accounts: &Accounts,
) -> Check {
    const N: &str = "token-dir";
    let owner = owner_of(accounts, p);
    if p.mode & 0o002 != 0 && p.mode & 0o1000 == 0 {
        return Check::fail(
            N,
            format!(
                "{} is writable by every user (owner {owner}, mode {:04o}): anyone can replace the token files",
                q(dir),
                p.mode
            ),
            format!("chmod 700 {}", q(dir)),
        );
    }
    if let Some(su) = user {
        let u = &su.user;
        if let Some((a, ap)) = ancestors.iter().find(|(_, ap)| !may(u, ap, 1)) {
            return Check::fail(
                N,
                format!(
                    "smtp runs as {} and cannot reach {}: {} (owner {}, mode {:04o}) is not searchable by it",
                    u.name,
                    q(dir),
                    q(a),
                    owner_of(accounts, ap),
                    ap.mode
                ),
                format!("chmod o+x {} (or give it to {})", q(a), u.name),
            );
        }
        if !may(u, p, 3) {
            return Check::fail(
                N,
                format!(
                    "{} (owner {owner}, mode {:04o}) is not writable by {}, the user smtp runs as: the helper cannot create its lock and temp files there, so refreshes fail",
                    q(dir),
                    p.mode,
                    u.name
                ),
                format!(
                    "chown {} {} && chmod 700 {}",
                    chown_arg(accounts, u),
                    q(dir),
                    q(dir)
                ),
            );
        }
    }
    if p.mode & 0o022 != 0 {
        let who = if p.mode & 0o002 != 0 {
            "every user (sticky)"
        } else {
            "its group"
        };
        return Check::warn(
            N,
            format!(
                "{} is writable by {who} (owner {owner}, mode {:04o}): others may add or remove files beside the token",
                q(dir),
                p.mode
            ),
            format!("chmod 700 {}", q(dir)),
        );
    }
    match user {
        Some(su) => Check::ok(
            N,
            format!(
                "{} (owner {owner}, mode {:04o}) is writable by {}",
                q(dir),
                p.mode,
                su.user.name
            ),
        ),
        None => Check::ok(
            N,
            format!(
                "{} (owner {owner}, mode {:04o}); smtp's user is unknown, so not compared",
                q(dir),
                p.mode
            ),
        ),
    }
}

/// Whether the token's lock is held right now (from `/proc/locks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    /// A refresh holds it.
    Exclusive,
    /// A reader (such as the plugin's "is a refresh running?" probe).
    Shared,
    Free,
    /// `/proc/locks` could not be read.
    Unknown,
}

/// Temp files an interrupted refresh left (`.<name>.tmp-*`). `held`:
/// whether a refresh holds the lock right now (then they are its own).
pub fn temp_files(dir: &Path, names: &[String], held: Held) -> Check {
    const N: &str = "temp-files";
    if names.is_empty() {
        return Check::ok(N, "no leftover temp files");
    }
    let list = names.join(", ");
    if held == Held::Exclusive {
        return Check::ok(
            N,
            format!("{list} in {}: a refresh is running right now", q(dir)),
        );
    }
    Check::warn(
        N,
        format!(
            "{} temp file(s) left by an interrupted refresh in {}: {list}",
            names.len(),
            q(dir)
        ),
        format!(
            "the next refresh removes them, or now (no refresh is running): rm {}; if this recurs, raise refresh_timeout",
            names
                .iter()
                .map(|n| q(&dir.join(n)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    )
}

/// The lock file as found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LockState {
    Absent,
    /// A symlink, directory or other non-regular file.
    NotRegular(&'static str),
    File(Perm),
    Unreadable(String),
}

/// The lock file beside the token (see [`refresher::lock_path`]).
pub fn lock(
    path: &Path,
    state: &LockState,
    held: Held,
    user: Option<&SmtpUser>,
    accounts: &Accounts,
) -> Check {
    const N: &str = "lock";
    match state {
        LockState::Absent => Check::ok(
            N,
            format!(
                "{} does not exist yet (the first refresh creates it)",
                q(path)
            ),
        ),
        LockState::NotRegular(what) => Check::fail(
            N,
            format!(
                "{} is {what}: the helper refuses to lock it, so refreshes fail",
                q(path)
            ),
            format!("rm {} (it is recreated as an empty file)", q(path)),
        ),
        LockState::Unreadable(e) => Check::fail(
            N,
            format!("{} cannot be inspected: {e}", q(path)),
            format!("rm {} (it is recreated as an empty file)", q(path)),
        ),
        LockState::File(p) => {
            if let Some(su) = user {
                if !may(&su.user, p, 4) {
                    return Check::fail(
                        N,
                        format!(
                            "{} (owner {}, mode {:04o}) cannot be opened by {}, the user smtp runs as: refreshes fail",
                            q(path),
                            owner_of(accounts, p),
                            p.mode,
                            su.user.name
                        ),
                        format!("rm {} (the next refresh recreates it with the token's owner)", q(path)),
                    );
                }
            }
            let state = match held {
                Held::Exclusive => "held by a refresh right now",
                Held::Shared => "held right now by a reader",
                Held::Free => "not held",
                Held::Unknown => "lock state unknown (/proc/locks unreadable)",
            };
            Check::ok(
                N,
                format!(
                    "{} (owner {}, mode {:04o}), {state}",
                    q(path),
                    owner_of(accounts, p),
                    p.mode
                ),
            )
        }
    }
}

// --------------------------------------------------------------- postfix

/// Where Postfix's smtp services open the token, and whether it is there.
/// `exists[i]` is for `places[i]`.
pub fn postfix(
    probe: &Probe,
    explicit_dir: bool,
    given: &Path,
    places: &[Place],
    exists: &[bool],
    given_exists: bool,
) -> Check {
    const N: &str = "postfix";
    let view = match probe {
        Probe::NotInstalled if explicit_dir => {
            return Check::fail(
                N,
                "--postfix-config was given but postconf is not installed",
                "install Postfix, or leave out --postfix-config",
            )
        }
        Probe::NotInstalled => {
            return Check::ok(N, "postconf not found: not a Postfix host, Postfix checks skipped")
        }
        Probe::Failed { command, error } => {
            return Check::fail(
                N,
                format!("`{command}` failed: {error}"),
                "fix the Postfix configuration (postfix check), or name its directory with --postfix-config",
            )
        }
        Probe::View(v) => v,
    };
    let head = format!("Postfix {} ({})", view.param("mail_version"), view.command);
    if view.services.is_empty() {
        return Check::warn(
            N,
            format!("{head}: master.cf has no unix service running smtp(8)"),
            "add the standard line `smtp unix - - y - - smtp` to master.cf",
        );
    }
    let user = view.smtp_user();
    let mut parts = Vec::new();
    let mut missing = Vec::new();
    let mut fixes = Vec::new();
    for (place, ok) in places.iter().zip(exists) {
        let who = place.services.join(", ");
        let (runs, opens) = if place.services.len() > 1 {
            ("run", "open")
        } else {
            ("runs", "opens")
        };
        let text = match &place.chroot {
            Some(root) => {
                let mut t = format!(
                    "{who} {runs} as {user} chrooted in {} and {opens} {}",
                    q(root),
                    q(&place.path)
                );
                if place.passwd_path != given {
                    t.push_str(&format!(
                        " (sasl_passwd must name {}, the path inside the chroot)",
                        q(&place.passwd_path)
                    ));
                }
                t
            }
            None => format!(
                "{who} {runs} as {user}, not chrooted, and {opens} {}",
                q(&place.path)
            ),
        };
        if *ok {
            parts.push(format!("{text} (exists)"));
        } else {
            missing.push(format!("{text}, which does not exist"));
            if place.chroot.is_some() && given_exists && place.path != given {
                let dir = place.path.parent().unwrap_or(Path::new("/"));
                fixes.push(format!(
                    "install -d -o {user} -m 700 {} && install -o {user} -m 600 {} {}",
                    q(dir),
                    q(given),
                    q(&place.path)
                ));
            } else {
                fixes.push(format!(
                    "create {} with `sasl-xoauth2-tool get-token {{gmail|outlook}} {}` and chown it to {user}",
                    q(&place.path),
                    q(&place.path)
                ));
            }
        }
    }
    if !missing.is_empty() {
        let mut msg = format!("{head}: {}", missing.join("; "));
        if given_exists && places.iter().all(|p| p.path != given) {
            msg.push_str(&format!(" ({} exists, outside the chroot)", q(given)));
        }
        return Check::fail(N, msg, fixes.join("; "));
    }
    Check::ok(N, format!("{head}: {}", parts.join("; ")))
}

/// Whether `filter` (smtp_sasl_mechanism_filter) lets XOAUTH2 or
/// OAUTHBEARER through: `Some(true/false)`, `None` when it uses a lookup
/// table we cannot evaluate.
pub fn filter_allows_oauth(filter: &str) -> Option<bool> {
    let items: Vec<String> = filter
        .split(|c: char| c.is_whitespace() || c == ',')
        .filter(|s| !s.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    if items.is_empty() {
        return Some(true);
    }
    // Postfix match lists: the first matching pattern decides; "!x" excludes.
    for mech in ["xoauth2", "oauthbearer"] {
        for i in &items {
            if i.contains(':') || i.starts_with('/') {
                return None;
            }
            if *i == mech {
                return Some(true);
            }
            if i.strip_prefix('!') == Some(mech) {
                break;
            }
        }
    }
    Some(false)
}

/// smtp_sasl_auth_enable and smtp_sasl_mechanism_filter as each smtp
/// service sees them (with master.cf `-o` overrides).
pub fn postfix_sasl(view: &View) -> Check {
    const N: &str = "postfix-sasl";
    let pc = view.command.replacen("postconf", "postconf -e", 1);
    let mut unknown = Vec::new();
    let mut enabled = Vec::new();
    for s in &view.services {
        let filter = view.param_for(&s.name, "smtp_sasl_mechanism_filter");
        match filter_allows_oauth(filter) {
            Some(false) => {
                let fix = if view
                    .overrides
                    .get(&s.name)
                    .is_some_and(|o| o.contains_key("smtp_sasl_mechanism_filter"))
                {
                    format!("change `-o smtp_sasl_mechanism_filter={filter}` of {} in master.cf to include xoauth2", s.name)
                } else {
                    format!("{pc} 'smtp_sasl_mechanism_filter = xoauth2' (or add xoauth2 to the list), then postfix reload")
                };
                return Check::fail(
                    N,
                    format!(
                        "{}: smtp_sasl_mechanism_filter = {filter} excludes XOAUTH2 and OAUTHBEARER: Postfix will log \"no worthy mechs found\"",
                        s.name
                    ),
                    fix,
                );
            }
            None => unknown.push(format!("{} ({filter})", s.name)),
            Some(true) => {}
        }
        if view
            .param_for(&s.name, "smtp_sasl_auth_enable")
            .eq_ignore_ascii_case("yes")
        {
            enabled.push(s.name.clone());
        }
    }
    if enabled.is_empty() {
        return Check::warn(
            N,
            "smtp_sasl_auth_enable is not yes for any smtp service: Postfix will not authenticate at all",
            format!("{pc} 'smtp_sasl_auth_enable = yes', then postfix reload"),
        );
    }
    if !unknown.is_empty() {
        return Check::warn(
            N,
            format!(
                "smtp_sasl_mechanism_filter uses a lookup table for {}: cannot tell whether it allows XOAUTH2",
                unknown.join(", ")
            ),
            "make sure the table's result includes xoauth2 (or oauthbearer)",
        );
    }
    let filter = view.param("smtp_sasl_mechanism_filter");
    Check::ok(
        N,
        format!(
            "smtp_sasl_auth_enable = yes ({}), smtp_sasl_mechanism_filter = {}",
            enabled.join(", "),
            if filter.is_empty() {
                "(empty: libsasl2 prefers XOAUTH2 by its SSF)"
            } else {
                filter
            }
        ),
    )
}

/// Whether the bearer token can leave over a connection without TLS, or
/// with TLS that does not verify the relay. The plugin cannot tell (Postfix
/// gives libsasl2 no TLS state), so Postfix must: `smtp_tls_security_level
/// = secure` (or verify, dane-only, fingerprint) and `noplaintext` in
/// `smtp_sasl_security_options` (only consulted without TLS).
pub fn postfix_tls(view: &View) -> Check {
    const N: &str = "postfix-tls";
    let pc = view.command.replacen("postconf", "postconf -e", 1);
    let fix = format!(
        "{pc} 'smtp_tls_security_level = secure' 'smtp_tls_CAfile = /etc/ssl/certs/ca-certificates.crt' \
         'smtp_sasl_security_options = noanonymous, noplaintext' 'smtp_sasl_tls_security_options = noanonymous', then postfix reload"
    );
    let mut cleartext = Vec::new();
    let mut unverified = Vec::new();
    for s in &view.services {
        let sv = |k| view.param_for(&s.name, k);
        if !sv("smtp_sasl_auth_enable").eq_ignore_ascii_case("yes") {
            continue;
        }
        let level = sv("smtp_tls_security_level").trim().to_ascii_lowercase();
        let noplaintext = sv("smtp_sasl_security_options")
            .split(|c: char| c == ',' || c.is_whitespace())
            .any(|o| o.eq_ignore_ascii_case("noplaintext"));
        let name = format!("{} (smtp_tls_security_level = {level})", s.name);
        match level.as_str() {
            "secure" | "verify" | "dane-only" | "fingerprint" => {}
            "encrypt" => unverified.push(name),
            // none, may, dane (falls back to may), empty: TLS is optional.
            _ if noplaintext => unverified.push(name),
            _ => cleartext.push(name),
        }
    }
    let maps = view.param("smtp_tls_policy_maps").trim();
    let maps_note = if maps.is_empty() {
        String::new()
    } else {
        format!(" (smtp_tls_policy_maps = {maps} may set other levels per destination; not read)")
    };
    if !cleartext.is_empty() {
        return Check::warn(
            N,
            format!(
                "the token may be sent without TLS: {} without \"noplaintext\" in smtp_sasl_security_options (a bearer token is plaintext-equivalent){maps_note}",
                cleartext.join(", ")
            ),
            fix,
        );
    }
    if !unverified.is_empty() {
        return Check::warn(
            N,
            format!(
                "the token may be sent over TLS that does not verify the relay's certificate (a man in the middle gets it): {}{maps_note}",
                unverified.join(", ")
            ),
            fix,
        );
    }
    Check::ok(
        N,
        format!("the token only leaves over verified TLS{maps_note}"),
    )
}

/// The plugin in the directories libsasl2 loads plugins from.
pub fn plugin(
    dirs: &[PathBuf],
    source: &str,
    found: Option<&Path>,
    elsewhere: &[PathBuf],
) -> Check {
    const N: &str = "plugin";
    let list = dirs.iter().map(|d| q(d)).collect::<Vec<_>>().join(":");
    if let Some(f) = found {
        return Check::ok(N, format!("{} ({source}: {list})", q(f)));
    }
    let target = dirs.first().cloned().unwrap_or_default();
    if let Some(e) = elsewhere.first() {
        return Check::fail(
            N,
            format!(
                "{} is in the wrong directory: libsasl2 loads plugins from {list} ({source}); Postfix will log \"no worthy mechs found\"",
                q(e)
            ),
            format!("mv {} {}/", q(e), q(&target)),
        );
    }
    Check::fail(
        N,
        format!(
            "libsasl-xoauth2.so is not in {list} ({source}): Postfix will log \"no worthy mechs found\""
        ),
        format!(
            "install it: make install SASL_PLUGIN_DIR={} (then `saslpluginviewer -c` lists XOAUTH2)",
            q(&target)
        ),
    )
}

/// What was found at the helper's path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HelperFound {
    Missing,
    NotRegular,
    Unreadable(String),
    File { mode: u32, elf: Elf },
}

/// The refresh helper: present, executable, static (so it runs inside the
/// chroot), for this machine, not writable by others.
pub fn helper(
    path: &str,
    origin: &str,
    found: &HelperFound,
    chrooted: Option<bool>,
    machine: Option<u16>,
) -> Check {
    const N: &str = "helper";
    let install = "install the static helper: make helper && make install (or set refresh_helper in the config)";
    if !path.starts_with('/') {
        return Check::fail(
            N,
            format!("refresh_helper {path:?} ({origin}) is not an absolute path"),
            "set refresh_helper to the absolute path of sasl-xoauth2-refresh",
        );
    }
    let (mode, elf) = match found {
        HelperFound::Missing => {
            return Check::fail(
                N,
                format!("{path} ({origin}) does not exist: expired tokens cannot be refreshed"),
                install,
            )
        }
        HelperFound::NotRegular => {
            return Check::fail(
                N,
                format!("{path} ({origin}) is not a regular file"),
                install,
            )
        }
        HelperFound::Unreadable(e) => {
            return Check::fail(N, format!("{path} ({origin}) cannot be read: {e}"), install)
        }
        HelperFound::File { mode, elf } => (*mode, elf),
    };
    if mode & 0o022 != 0 {
        return Check::fail(
            N,
            format!("{path} is writable by others (mode {mode:04o}): they could replace the code smtp runs"),
            format!("chmod 755 {path}"),
        );
    }
    if mode & 0o111 == 0 {
        return Check::fail(
            N,
            format!("{path} is not executable (mode {mode:04o})"),
            format!("chmod 755 {path}"),
        );
    }
    let m = match elf {
        Elf::NotElf => {
            return Check::fail(
                N,
                format!("{path} is not an ELF executable (a script?): the plugin runs it by descriptor, inside the chroot"),
                install,
            )
        }
        Elf::Unusable(why) => return Check::fail(N, format!("{path}: {why}"), install),
        Elf::Static { machine, .. } | Elf::Dynamic { machine, .. } => *machine,
    };
    if machine.is_some_and(|h| h != m) {
        return Check::fail(
            N,
            format!("{path} is built for another architecture (ELF machine {m})"),
            install,
        );
    }
    match (elf, chrooted) {
        (Elf::Dynamic { interpreter, .. }, Some(true)) => Check::fail(
            N,
            format!("{path} is dynamically linked (needs {interpreter}), which does not exist inside smtp's chroot: refreshes fail there"),
            install,
        ),
        (Elf::Dynamic { interpreter, .. }, _) => Check::warn(
            N,
            format!("{path} is dynamically linked (needs {interpreter}): it works only while smtp is not chrooted"),
            install,
        ),
        _ if mode & 0o044 != 0 => Check::warn(
            N,
            format!(
                "{path} is readable by others (mode {mode:04o}): the kernel then lets it run dumpable until it hardens itself, \
                 a window in which another process of the mail user could attach to it"
            ),
            format!("chmod 711 {path} (as make install does)"),
        ),
        _ => Check::ok(
            N,
            format!("{path} ({origin}): static executable, mode {mode:04o}, runs inside the chroot"),
        ),
    }
}

/// What the helper's sandbox would enforce on this kernel with the
/// configured `sandbox` mode.
pub fn sandbox(mode: SandboxMode, support: &Support) -> Check {
    const N: &str = "sandbox";
    let mode_name = match mode {
        SandboxMode::BestEffort => "best-effort",
        SandboxMode::Required => "required",
    };
    let kernel = match &support.landlock {
        Ok(abi) => format!("landlock ABI {abi}"),
        Err(why) => format!("landlock {why}"),
    };
    let seccomp = if support.seccomp {
        "seccomp kill-process filters"
    } else {
        "no seccomp"
    };
    match decide(mode, support) {
        Err(e) => {
            let list: Vec<&str> = support.missing().iter().map(|w| w.describe()).collect();
            Check::fail(
                N,
                format!(
                    "sandbox \"required\", but this kernel ({kernel}, {seccomp}) cannot enforce: {}; the helper refuses to refresh",
                    list.join("; ")
                ),
                e.0.split_once(". ")
                    .map_or(e.0.as_str(), |(_, fix)| fix)
                    .to_string(),
            )
        }
        Ok(missing) if missing.is_empty() => Check::ok(
            N,
            format!(
                "{kernel}, {seccomp}: all {} walls enforced (sandbox \"{mode_name}\")",
                Wall::ALL.len()
            ),
        ),
        Ok(missing) => {
            let list: Vec<&str> = missing.iter().map(|w| w.describe()).collect();
            let msg = format!(
                "{kernel}, {seccomp}, sandbox \"{mode_name}\": not enforced on this kernel: {}",
                list.join("; ")
            );
            if missing.contains(&Wall::FsBeneathTokenDir) || missing.contains(&Wall::Syscalls) {
                Check::warn(
                    N,
                    msg,
                    "enable landlock (Linux 5.13+, lsm= boot parameter) and seccomp, or rely on SELinux/AppArmor to confine the helper",
                )
            } else {
                Check::ok(N, msg)
            }
        }
    }
}

// -------------------------------------------------------------- MAC layers

/// The type field of an SELinux context `user:role:type:level`.
pub fn selinux_type(label: &str) -> Option<&str> {
    label.trim_end_matches('\0').split(':').nth(2)
}

/// SELinux labels of the token file and its directory versus the
/// module's token type. `enforcing`: /sys/fs/selinux/enforce; `module`:
/// whether the sasl_xoauth2 module is installed.
pub fn selinux(
    file: &Path,
    file_label: Option<&str>,
    dir: &Path,
    dir_label: Option<&str>,
    enforcing: Option<bool>,
    module: Option<bool>,
) -> Check {
    const N: &str = "selinux";
    if file_label.is_none() && dir_label.is_none() {
        return Check::ok(N, "no SELinux labels (SELinux not in use here)");
    }
    let wrong: Vec<String> = [(file, file_label), (dir, dir_label)]
        .into_iter()
        .filter_map(|(p, l)| {
            let l = l?;
            let t = selinux_type(l).unwrap_or("(none)");
            (t != SELINUX_TOKEN_TYPE).then(|| format!("{} has type {t}", q(p)))
        })
        .collect();
    if wrong.is_empty() {
        return Check::ok(N, format!("labelled {SELINUX_TOKEN_TYPE}"));
    }
    let in_known_dir = SELINUX_TOKEN_DIRS.iter().any(|d| dir.starts_with(d));
    let mut fix = if in_known_dir {
        format!("restorecon -Rv {}", q(dir))
    } else {
        format!(
            "semanage fcontext -a -t {SELINUX_TOKEN_TYPE} '{}(/.*)?' && restorecon -Rv {}",
            q(dir),
            q(dir)
        )
    };
    if module == Some(false) {
        fix = format!("install the module first (semodule -i sasl_xoauth2.pp), then {fix}");
    }
    let msg = format!("{}, not {SELINUX_TOKEN_TYPE}", wrong.join(", "));
    if enforcing == Some(true) && module == Some(true) {
        Check::fail(
            N,
            format!("{msg}: SELinux is enforcing, so smtp or the helper is denied access"),
            fix,
        )
    } else {
        Check::warn(N, msg, fix)
    }
}

/// The helper's AppArmor profile, where AppArmor is active.
pub fn apparmor(
    active: bool,
    profile_file: bool,
    loaded: Option<bool>,
    helper_path: &str,
) -> Check {
    const N: &str = "apparmor";
    if !active {
        return Check::ok(N, "AppArmor is not active on this kernel");
    }
    let install = format!(
        "cp apparmor/usr.libexec.sasl-xoauth2.sasl-xoauth2-refresh /etc/apparmor.d/ && apparmor_parser -r {APPARMOR_PROFILE_FILE}"
    );
    if !profile_file {
        return Check::warn(
            N,
            format!("AppArmor is active but {APPARMOR_PROFILE_FILE} is not installed: the helper runs unconfined by AppArmor"),
            install,
        );
    }
    if loaded == Some(false) {
        return Check::warn(
            N,
            format!("{APPARMOR_PROFILE_FILE} is installed but the profile {APPARMOR_PROFILE_NAME} is not loaded"),
            format!("apparmor_parser -r {APPARMOR_PROFILE_FILE}"),
        );
    }
    let attached = ["/usr/lib/", "/usr/libexec/", "/usr/local/libexec/"]
        .iter()
        .any(|p| helper_path == format!("{p}sasl-xoauth2/sasl-xoauth2-refresh"));
    if !attached {
        return Check::warn(
            N,
            format!("the profile {APPARMOR_PROFILE_NAME} attaches to /usr/{{lib,libexec,local/libexec}}/sasl-xoauth2/sasl-xoauth2-refresh, not to {helper_path}"),
            "install the helper at /usr/libexec/sasl-xoauth2/sasl-xoauth2-refresh, or add its path to the profile",
        );
    }
    Check::ok(
        N,
        format!(
            "profile {APPARMOR_PROFILE_NAME} installed{}",
            if loaded == Some(true) {
                " and loaded"
            } else {
                ""
            }
        ),
    )
}

// ---------------------------------------------------------------- online

/// One real request (`--online`), as the refresher sends it, nothing
/// written. `google`: whether the endpoint is Google's (for the advice).
pub fn online(
    token_path: &Path,
    host: &str,
    result: Result<&Granted, &Failure>,
    elapsed: Duration,
    google: bool,
) -> Check {
    const N: &str = "online";
    let took = format!("{:.2} s", elapsed.as_secs_f64());
    match result {
        Ok(g) => {
            let mut msg = format!(
                "{host} answered in {took}: access token {}, expires_in {} s{}",
                g.access_token.fingerprint(),
                g.expires_in,
                if g.expires_in_assumed {
                    " (none sent; 3600 assumed)"
                } else {
                    ""
                }
            );
            if g.refresh_token.is_some() {
                msg.push_str(&format!(
                    ", and a new refresh token: this provider rotates refresh tokens and --check writes nothing, so the refresh token in {} may now be invalid",
                    q(token_path)
                ));
                return Check::warn(
                    N,
                    msg,
                    format!(
                        "run `sasl-xoauth2-refresh --force {}` now to store a fresh token; if it fails with invalid_grant, run `sasl-xoauth2-tool get-token {{gmail|outlook}} --overwrite-existing-token {}`",
                        q(token_path),
                        q(token_path)
                    ),
                );
            }
            msg.push_str(&format!(
                "; refresh token not rotated; {} was not changed",
                q(token_path)
            ));
            Check::ok(N, msg)
        }
        Err(f) => {
            let (what, fix) = (f.what(), f.fix());
            let cause = match f {
                Failure::Provider(p) => super::explain::likely_cause(&p.err, google),
                _ => None,
            };
            let what = match cause {
                Some(c) => format!("{what} ({c}); after {took}"),
                None => format!("{what}; after {took}"),
            };
            // Network trouble, 5xx, 429, DNS: likely to pass by itself. An
            // answer that makes no sense (exit::PROTOCOL, which the plugin
            // also retries) points at a wrong token_endpoint: a failure.
            if f.exit_code() == common::exit::TEMPFAIL {
                Check::warn(N, format!("{what}: a temporary failure"), fix)
            } else {
                Check::fail(N, what, fix)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::report::Status;
    use super::*;
    use common::secret::Secret;
    use refresher::Support;

    fn user(name: &str, uid: u32, gids: &[u32]) -> SmtpUser {
        SmtpUser {
            user: User {
                name: name.into(),
                uid,
                gids: gids.to_vec(),
            },
            source: "mail_owner".into(),
        }
    }

    fn accounts() -> Accounts {
        Accounts::parse(
            "root:x:0:0::/:/bin/sh\npostfix:x:107:113::/:/bin/false\nnobody:x:65534:65534::/:/bin/false\n",
            "root:x:0:\npostfix:x:113:\nnogroup:x:65534:\n",
        )
    }

    fn perm(uid: u32, gid: u32, mode: u32) -> Perm {
        Perm { uid, gid, mode }
    }

    fn tok(json: &str) -> TokenFile {
        TokenFile::parse(json.as_bytes(), Path::new("/t")).unwrap()
    }

    #[test]
    fn permission_bits() {
        let pf = user("postfix", 107, &[113]).user;
        assert!(may(&pf, &perm(107, 0, 0o600), 6));
        assert!(!may(&pf, &perm(0, 0, 0o600), 4));
        assert!(may(&pf, &perm(0, 113, 0o640), 4));
        assert!(!may(&pf, &perm(0, 113, 0o640), 2));
        assert!(may(&pf, &perm(0, 0, 0o755), 5));
        assert!(!may(&pf, &perm(0, 0, 0o755), 3));
        assert!(may(&user("root", 0, &[0]).user, &perm(5, 5, 0), 7));
    }

    #[test]
    fn spans_in_words() {
        assert_eq!(human_span(45), "45 s");
        assert_eq!(human_span(41 * 60 + 59), "41 min");
        assert_eq!(human_span(-3 * 3600 - 5), "3 h");
        assert_eq!(human_span(3 * 86_400), "3 d");
        assert_eq!(human_span(300 * 31_536_000), "300 years");
    }

    #[test]
    fn config_verdicts() {
        let c = Config::parse(
            br#"{"client_id":"a","client_secret":"s3cr3t-value"}"#,
            Path::new("/c"),
        )
        .unwrap();
        let ok = config(Path::new("/c"), &ConfigOrigin::Option, Ok(&c), None);
        assert_eq!(ok.status, Status::Ok, "{ok:?}");
        assert!(!ok.message.contains("s3cr3t"));
        assert!(ok.message.contains("client_secret sha256:"));
        let same = config(
            Path::new("/c"),
            &ConfigOrigin::Option,
            Ok(&c),
            Some((Path::new("/c"), "x")),
        );
        assert_eq!(same.status, Status::Ok);
        let other = config(
            Path::new("/c"),
            &ConfigOrigin::Env,
            Ok(&c),
            Some((Path::new("/etc/sasl-xoauth2.conf"), "default")),
        );
        assert_eq!(other.status, Status::Warn);
        assert!(other
            .message
            .contains("Postfix's smtp reads /etc/sasl-xoauth2.conf"));
        let e = Config::parse(b"{", Path::new("/c")).unwrap_err();
        let bad = config(Path::new("/c"), &ConfigOrigin::Default, Err(&e), None);
        assert_eq!(bad.status, Status::Fail);
        assert!(bad.message.contains("not valid JSON"), "{bad:?}");

        let c =
            Config::parse(br#"{"client_secrets":"x","zzzzzzzzzz":1}"#, Path::new("/c")).unwrap();
        let k = config_keys(&c);
        assert_eq!(k.status, Status::Warn);
        assert!(
            k.message
                .contains("\"client_secrets\" (did you mean \"client_secret\"?)"),
            "{k:?}"
        );
        assert!(k.fix.as_deref().unwrap().contains("remove \"zzzzzzzzzz\""));
        assert_eq!(config_keys(&Config::default()).status, Status::Ok);
    }

    #[test]
    fn token_verdicts() {
        use Status::{Ok as Good, Warn};
        let t = tok(r#"{"refresh_token":"rt-secret","user":"u@x"}"#);
        let c = token(Path::new("/t"), Ok((&t, 40)), false);
        assert_eq!(c.status, Good);
        assert!(c.message.contains("user \"u@x\"") && !c.message.contains("rt-secret"));
        let cc = tok(r#"{"grant_type":"client_credentials"}"#);
        assert!(token(Path::new("/t"), Ok((&cc, 9)), false)
            .message
            .contains("client_credentials"));
        let k = token_keys(
            Path::new("/t"),
            [
                "refresh_token",
                "refresh_tokn",
                "x-note",
                "sandbox",
                "Client_ID",
            ]
            .into_iter(),
        );
        assert_eq!(k.status, Warn);
        assert!(
            k.message
                .contains("\"refresh_tokn\" is ignored (did you mean \"refresh_token\"?)"),
            "{k:?}"
        );
        assert!(k.message.contains("\"sandbox\" has no effect"), "{k:?}");
        assert!(
            k.message
                .contains("\"Client_ID\" is ignored (did you mean \"client_id\"?)"),
            "{k:?}"
        );
        assert!(!k.message.contains("x-note"));
        assert_eq!(
            token_keys(Path::new("/t"), ["user", "x-note"].into_iter()).status,
            Good
        );
    }

    #[test]
    fn expiry_in_words() {
        use Status::{Ok as Good, Warn};
        let now = 1_000_000;
        let at = |exp: i64| {
            tok(&format!(
                r#"{{"refresh_token":"r","access_token":"a","expiry":"{exp}"}}"#
            ))
        };
        let c = token_expiry(&at(now + 41 * 60 + 30), now, 10, 600);
        assert_eq!(
            (c.status, c.message.ends_with("expires in 41 min")),
            (Good, true),
            "{c:?}"
        );
        let c = token_expiry(&at(now - 3 * 3600 - 100), now, 10, 600);
        assert!(c.message.contains("expired 3 h ago"), "{c:?}");
        assert_eq!(c.status, Good);
        let c = token_expiry(&at(now + 300), now, 10, 600);
        assert!(c.message.contains("refreshed in the background"), "{c:?}");
        let c = token_expiry(&at(now + 5), now, 10, 600);
        assert!(c.message.contains("within refresh_window"), "{c:?}");
        let c = token_expiry(&at(9_999_999_999), now, 10, 600);
        assert_eq!(c.status, Warn);
        assert!(c.message.contains("years"));
        let c = token_expiry(&tok(r#"{"refresh_token":"r"}"#), now, 10, 600);
        assert!(c.message.starts_with("no access token"));
        let c = token_expiry(&at(0), now, 10, 600);
        assert!(c.message.contains("expiry 0 (marked expired)"), "{c:?}");
    }

    #[test]
    fn mode_owner_dir_lock_verdicts() {
        use Status::{Fail, Ok as Good, Warn};
        let a = accounts();
        let pf = user("postfix", 107, &[113]);
        let t = Path::new("/d/t");
        assert_eq!(token_mode(t, &perm(107, 113, 0o600)).status, Good);
        assert_eq!(token_mode(t, &perm(107, 113, 0o400)).status, Good);
        for m in [0o640, 0o644, 0o604, 0o660, 0o602] {
            assert_eq!(token_mode(t, &perm(107, 113, m)).status, Fail, "{m:o}");
        }
        assert!(token_mode(t, &perm(107, 113, 0o666))
            .message
            .contains("writable by every user"));
        assert!(token_mode(t, &perm(107, 113, 0o640))
            .message
            .contains("its group"));

        assert_eq!(
            token_owner(t, &perm(107, 113, 0o600), Some(&pf), &a).status,
            Good
        );
        let c = token_owner(t, &perm(0, 0, 0o600), Some(&pf), &a);
        assert_eq!(c.status, Fail);
        assert_eq!(c.fix.as_deref(), Some("chown postfix:postfix /d/t"));
        assert_eq!(
            token_owner(t, &perm(0, 113, 0o640), Some(&pf), &a).status,
            Warn
        );
        assert_eq!(token_owner(t, &perm(0, 0, 0o600), None, &a).status, Good);

        let dir = Path::new("/d");
        let root_x = vec![(PathBuf::from("/"), perm(0, 0, 0o755))];
        assert_eq!(
            token_dir(dir, &perm(107, 113, 0o700), &root_x, Some(&pf), &a).status,
            Good
        );
        let c = token_dir(dir, &perm(0, 0, 0o755), &root_x, Some(&pf), &a);
        assert_eq!(c.status, Fail);
        assert!(c.message.contains("not writable by postfix"), "{c:?}");
        assert_eq!(
            token_dir(dir, &perm(0, 0, 0o777), &root_x, Some(&pf), &a).status,
            Fail
        );
        assert_eq!(
            token_dir(dir, &perm(0, 0, 0o1777), &root_x, Some(&pf), &a).status,
            Warn
        );
        assert_eq!(
            token_dir(dir, &perm(107, 113, 0o770), &root_x, Some(&pf), &a).status,
            Warn
        );
        let closed = vec![(PathBuf::from("/"), perm(0, 0, 0o700))];
        let c = token_dir(dir, &perm(107, 113, 0o700), &closed, Some(&pf), &a);
        assert_eq!(c.status, Fail);
        assert!(c.message.contains("not searchable"), "{c:?}");
        assert_eq!(
            token_dir(dir, &perm(0, 0, 0o755), &root_x, None, &a).status,
            Good
        );

        assert_eq!(temp_files(dir, &[], Held::Free).status, Good);
        let names = vec![".t.tmp-1-0".to_string()];
        assert_eq!(temp_files(dir, &names, Held::Free).status, Warn);
        assert_eq!(temp_files(dir, &names, Held::Shared).status, Warn);
        assert_eq!(temp_files(dir, &names, Held::Unknown).status, Warn);
        assert_eq!(temp_files(dir, &names, Held::Exclusive).status, Good);

        let l = Path::new("/d/.t.lock");
        assert_eq!(
            lock(l, &LockState::Absent, Held::Free, Some(&pf), &a).status,
            Good
        );
        let sym = LockState::NotRegular("a symbolic link");
        assert_eq!(lock(l, &sym, Held::Free, Some(&pf), &a).status, Fail);
        let rooty = LockState::File(perm(0, 0, 0o600));
        assert_eq!(lock(l, &rooty, Held::Free, Some(&pf), &a).status, Fail);
        let c = lock(
            l,
            &LockState::File(perm(107, 113, 0o600)),
            Held::Exclusive,
            Some(&pf),
            &a,
        );
        assert_eq!(c.status, Good);
        assert!(c.message.contains("held by a refresh"));
    }

    fn pf_view(master: &str, extra: &[(&str, &str)]) -> View {
        let mut params: std::collections::BTreeMap<String, String> = [
            ("mail_version", "3.7.11"),
            ("queue_directory", "/q"),
            ("mail_owner", "postfix"),
            ("smtp_sasl_auth_enable", "yes"),
            ("smtp_sasl_mechanism_filter", ""),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            params.insert(k.to_string(), v.to_string());
        }
        View {
            command: "postconf -c /etc/pf".into(),
            params,
            services: super::super::postfix::parse_master(master, "3.7.11"),
            overrides: Default::default(),
        }
    }

    #[test]
    fn postfix_verdicts() {
        use super::super::postfix::places;
        use Status::{Fail, Ok as Good, Warn};
        let given = Path::new("/etc/tokens/a");
        assert_eq!(
            postfix(&Probe::NotInstalled, false, given, &[], &[], true).status,
            Good
        );
        assert_eq!(
            postfix(&Probe::NotInstalled, true, given, &[], &[], true).status,
            Fail
        );
        let failed = Probe::Failed {
            command: "postconf".into(),
            error: "fatal: no main.cf".into(),
        };
        assert_eq!(postfix(&failed, false, given, &[], &[], true).status, Fail);
        let none = pf_view("", &[]);
        assert_eq!(
            postfix(&Probe::View(none), false, given, &[], &[], true).status,
            Warn
        );

        let v = pf_view("smtp unix - - y - - smtp\n", &[]);
        let p = places(given, &v);
        let c = postfix(&Probe::View(v.clone()), false, given, &p, &[true], false);
        assert_eq!(c.status, Good);
        assert!(
            c.message.contains(
                "smtp/unix runs as postfix chrooted in /q and opens /q/etc/tokens/a (exists)"
            ),
            "{c:?}"
        );
        let c = postfix(&Probe::View(v.clone()), false, given, &p, &[false], true);
        assert_eq!(c.status, Fail);
        assert!(
            c.message
                .contains("(/etc/tokens/a exists, outside the chroot)"),
            "{c:?}"
        );
        assert_eq!(
            c.fix.as_deref(),
            Some("install -d -o postfix -m 700 /q/etc/tokens && install -o postfix -m 600 /etc/tokens/a /q/etc/tokens/a")
        );
        let c = postfix(&Probe::View(v.clone()), false, given, &p, &[false], false);
        assert!(c.fix.as_deref().unwrap().contains("get-token"), "{c:?}");
        let inside = Path::new("/q/etc/tokens/a");
        let p = places(inside, &v);
        let c = postfix(&Probe::View(v), false, inside, &p, &[true], true);
        assert!(
            c.message.contains("sasl_passwd must name /etc/tokens/a"),
            "{c:?}"
        );
    }

    #[test]
    fn postfix_sasl_verdicts() {
        use Status::{Fail, Ok as Good, Warn};
        let m = "smtp unix - - n - - smtp\nrelay unix - - n - - smtp\n";
        assert_eq!(postfix_sasl(&pf_view(m, &[])).status, Good);
        let c = postfix_sasl(&pf_view(
            m,
            &[("smtp_sasl_mechanism_filter", "login, plain")],
        ));
        assert_eq!(c.status, Fail);
        assert!(c.message.contains("no worthy mechs found"));
        assert!(
            c.fix
                .as_deref()
                .unwrap()
                .starts_with("postconf -e -c /etc/pf 'smtp_sasl_mechanism_filter = xoauth2'"),
            "{c:?}"
        );
        let mut v = pf_view(m, &[("smtp_sasl_mechanism_filter", "xoauth2")]);
        v.overrides.insert(
            "relay/unix".into(),
            [(
                "smtp_sasl_mechanism_filter".to_string(),
                "login".to_string(),
            )]
            .into_iter()
            .collect(),
        );
        let c = postfix_sasl(&v);
        assert_eq!(c.status, Fail);
        assert!(c.message.starts_with("relay/unix:"), "{c:?}");
        assert!(c.fix.as_deref().unwrap().contains("master.cf"));
        assert_eq!(
            postfix_sasl(&pf_view(m, &[("smtp_sasl_auth_enable", "no")])).status,
            Warn
        );
        assert_eq!(
            postfix_sasl(&pf_view(m, &[("smtp_sasl_mechanism_filter", "hash:/x")])).status,
            Warn
        );
    }

    #[test]
    fn postfix_tls_verdicts() {
        use Status::{Ok as Good, Warn};
        let m = "smtp unix - - n - - smtp\nrelay unix - - n - - smtp\n";
        let recipe = [
            ("smtp_tls_security_level", "secure"),
            ("smtp_sasl_security_options", "noanonymous, noplaintext"),
        ];
        assert_eq!(postfix_tls(&pf_view(m, &recipe)).status, Good);
        // The C++ README's settings: encrypted, not verified.
        let c = postfix_tls(&pf_view(
            m,
            &[
                ("smtp_tls_security_level", "encrypt"),
                ("smtp_sasl_security_options", ""),
            ],
        ));
        assert_eq!(c.status, Warn);
        assert!(c.message.contains("does not verify"), "{c:?}");
        assert!(
            c.fix.as_deref().unwrap().starts_with(
                "postconf -e -c /etc/pf 'smtp_tls_security_level = secure' 'smtp_tls_CAfile = "
            ),
            "{c:?}"
        );
        // Opportunistic TLS without noplaintext: cleartext possible.
        let c = postfix_tls(&pf_view(
            m,
            &[
                ("smtp_tls_security_level", "may"),
                ("smtp_sasl_security_options", "noanonymous"),
            ],
        ));
        assert_eq!(c.status, Warn);
        assert!(c.message.contains("without TLS"), "{c:?}");
        assert!(c.fix.as_deref().unwrap().contains("noplaintext"));
        // noplaintext keeps it off cleartext, but TLS stays unverified.
        let c = postfix_tls(&pf_view(
            m,
            &[
                ("smtp_tls_security_level", "may"),
                ("smtp_sasl_security_options", "noplaintext"),
            ],
        ));
        assert!(c.message.contains("does not verify"), "{c:?}");
        // A master.cf override for one service counts.
        let mut v = pf_view(m, &recipe);
        v.overrides.insert(
            "relay/unix".into(),
            [
                ("smtp_tls_security_level".to_string(), "none".to_string()),
                ("smtp_sasl_security_options".to_string(), String::new()),
            ]
            .into_iter()
            .collect(),
        );
        let c = postfix_tls(&v);
        assert_eq!(c.status, Warn);
        assert!(
            c.message
                .contains("relay/unix (smtp_tls_security_level = none)"),
            "{c:?}"
        );
        assert!(!c.message.contains("smtp/unix"), "{c:?}");
    }

    #[test]
    fn mechanism_filters() {
        assert_eq!(filter_allows_oauth(""), Some(true));
        assert_eq!(filter_allows_oauth("xoauth2"), Some(true));
        assert_eq!(filter_allows_oauth("XOAUTH2, login"), Some(true));
        assert_eq!(filter_allows_oauth("login plain oauthbearer"), Some(true));
        assert_eq!(filter_allows_oauth("login, plain"), Some(false));
        assert_eq!(
            filter_allows_oauth("!xoauth2, !oauthbearer, login"),
            Some(false)
        );
        assert_eq!(filter_allows_oauth("hash:/etc/postfix/mechs"), None);
        assert_eq!(filter_allows_oauth("/etc/postfix/mechs"), None);
    }

    #[test]
    fn plugin_and_helper_verdicts() {
        use Status::{Fail, Ok as Good, Warn};
        let dirs = vec![PathBuf::from("/usr/lib/x86_64-linux-gnu/sasl2")];
        let f = PathBuf::from("/usr/lib/x86_64-linux-gnu/sasl2/libsasl-xoauth2.so");
        assert_eq!(plugin(&dirs, "default", Some(&f), &[]).status, Good);
        let wrong = vec![PathBuf::from("/usr/lib/sasl2/libsasl-xoauth2.so")];
        let c = plugin(&dirs, "default", None, &wrong);
        assert_eq!(c.status, Fail);
        assert!(c.message.contains("wrong directory"), "{c:?}");
        assert_eq!(
            c.fix.as_deref(),
            Some("mv /usr/lib/sasl2/libsasl-xoauth2.so /usr/lib/x86_64-linux-gnu/sasl2/")
        );
        assert!(plugin(&dirs, "default", None, &[])
            .message
            .contains("is not in"));

        let stat = HelperFound::File {
            mode: 0o755,
            elf: Elf::Static {
                machine: 62,
                pie: true,
            },
        };
        let dynamic = HelperFound::File {
            mode: 0o755,
            elf: Elf::Dynamic {
                machine: 62,
                interpreter: "/lib64/ld-linux-x86-64.so.2".into(),
            },
        };
        let h = "/usr/libexec/sasl-xoauth2/sasl-xoauth2-refresh";
        let c = helper(h, "default", &stat, Some(true), Some(62));
        assert_eq!(c.status, Warn, "0755 is readable: {c:?}");
        assert_eq!(
            c.fix.as_deref(),
            Some("chmod 711 /usr/libexec/sasl-xoauth2/sasl-xoauth2-refresh (as make install does)")
        );
        let installed = HelperFound::File {
            mode: 0o711,
            elf: Elf::Static {
                machine: 62,
                pie: true,
            },
        };
        assert_eq!(
            helper(h, "default", &installed, Some(true), Some(62)).status,
            Good
        );
        assert_eq!(
            helper(h, "default", &dynamic, Some(true), Some(62)).status,
            Fail
        );
        assert_eq!(
            helper(h, "default", &dynamic, Some(false), Some(62)).status,
            Warn
        );
        assert_eq!(helper(h, "default", &dynamic, None, Some(62)).status, Warn);
        assert_eq!(helper(h, "default", &stat, None, Some(183)).status, Fail);
        assert_eq!(
            helper(h, "default", &HelperFound::Missing, None, None).status,
            Fail
        );
        assert_eq!(helper("relative", "config", &stat, None, None).status, Fail);
        let ww = HelperFound::File {
            mode: 0o777,
            elf: Elf::Static {
                machine: 62,
                pie: false,
            },
        };
        assert_eq!(helper(h, "default", &ww, None, Some(62)).status, Fail);
        let noexec = HelperFound::File {
            mode: 0o644,
            elf: Elf::Static {
                machine: 62,
                pie: false,
            },
        };
        assert_eq!(helper(h, "default", &noexec, None, Some(62)).status, Fail);
        let script = HelperFound::File {
            mode: 0o755,
            elf: Elf::NotElf,
        };
        assert_eq!(helper(h, "default", &script, None, Some(62)).status, Fail);
    }

    #[test]
    fn sandbox_verdicts() {
        use Status::{Fail, Ok as Good, Warn};
        let k = |l: Result<i32, &str>, s| Support {
            landlock: l.map_err(String::from),
            seccomp: s,
        };
        let c = sandbox(SandboxMode::BestEffort, &k(Ok(7), true));
        assert_eq!(c.status, Good);
        assert!(c.message.contains("all 7 walls enforced"), "{c:?}");
        let c = sandbox(SandboxMode::BestEffort, &k(Ok(2), true));
        assert_eq!(c.status, Good, "Debian 12: only newer walls missing");
        assert!(c.message.contains("not enforced on this kernel"));
        assert_eq!(
            sandbox(SandboxMode::BestEffort, &k(Err("disabled"), true)).status,
            Warn
        );
        assert_eq!(
            sandbox(SandboxMode::BestEffort, &k(Ok(7), false)).status,
            Warn
        );
        let c = sandbox(SandboxMode::Required, &k(Ok(2), true));
        assert_eq!(c.status, Fail);
        assert!(c.fix.as_deref().unwrap().contains("best-effort"), "{c:?}");
        assert_eq!(sandbox(SandboxMode::Required, &k(Ok(6), true)).status, Good);
    }

    #[test]
    fn selinux_and_apparmor_verdicts() {
        use Status::{Fail, Ok as Good, Warn};
        let good = "system_u:object_r:sasl_xoauth2_token_t:s0";
        let bad = "system_u:object_r:etc_t:s0\0";
        assert_eq!(selinux_type(bad), Some("etc_t"));
        let f = Path::new("/etc/tokens/a");
        let d = Path::new("/etc/tokens");
        assert_eq!(selinux(f, None, d, None, None, None).status, Good);
        assert_eq!(
            selinux(f, Some(good), d, Some(good), Some(true), Some(true)).status,
            Good
        );
        let c = selinux(f, Some(bad), d, Some(good), Some(false), Some(true));
        assert_eq!(c.status, Warn);
        assert_eq!(c.fix.as_deref(), Some("restorecon -Rv /etc/tokens"));
        let c = selinux(f, Some(bad), d, Some(good), Some(true), Some(true));
        assert_eq!(c.status, Fail);
        let o = Path::new("/srv/tok/a");
        let c = selinux(
            o,
            Some(bad),
            Path::new("/srv/tok"),
            None,
            Some(true),
            Some(false),
        );
        assert_eq!(c.status, Warn);
        let fix = c.fix.unwrap();
        assert!(fix.contains("semodule -i"), "{fix}");
        assert!(
            fix.contains("semanage fcontext -a -t sasl_xoauth2_token_t '/srv/tok(/.*)?'"),
            "{fix}"
        );

        let h = "/usr/libexec/sasl-xoauth2/sasl-xoauth2-refresh";
        assert_eq!(apparmor(false, false, None, h).status, Good);
        assert_eq!(apparmor(true, false, None, h).status, Warn);
        assert_eq!(apparmor(true, true, Some(false), h).status, Warn);
        assert_eq!(apparmor(true, true, Some(true), h).status, Good);
        assert_eq!(apparmor(true, true, None, "/opt/x/helper").status, Warn);
    }

    #[test]
    fn online_verdicts() {
        use refresher::ProviderFailure;
        use refresher::ResponseError;
        use Status::{Fail, Ok as Good, Warn};
        let t = Path::new("/t");
        let g = Granted {
            access_token: Secret::new("ya29.secret-access"),
            expires_in: 3599,
            expires_in_assumed: false,
            refresh_token: None,
        };
        let c = online(t, "h", Ok(&g), Duration::from_millis(120), false);
        assert_eq!(c.status, Good);
        assert!(
            c.message.contains("expires_in 3599 s") && c.message.contains("0.12 s"),
            "{c:?}"
        );
        assert!(!c.message.contains("secret-access"));
        let rotated = Granted {
            refresh_token: Some(Secret::new("1//new-secret")),
            ..g
        };
        let c = online(t, "h", Ok(&rotated), Duration::ZERO, false);
        assert_eq!(c.status, Warn);
        assert!(c.message.contains("rotates refresh tokens") && !c.message.contains("new-secret"));
        let provider = |err, attempts| {
            Failure::Provider(Box::new(ProviderFailure {
                host: "h".into(),
                err,
                attempts,
                token: t.into(),
                config: "/c".into(),
                client_credentials: false,
            }))
        };
        let f = provider(
            ResponseError::OAuth {
                status: 400,
                error: "invalid_grant".into(),
                description: Some("AADSTS70008: expired".into()),
                summary: None,
                aadsts: None,
            },
            1,
        );
        let c = online(t, "h", Err(&f), Duration::ZERO, false);
        assert_eq!(c.status, Fail);
        assert!(c.message.contains("90 days"), "{c:?}");
        assert!(c.fix.as_deref().unwrap().contains("get-token"), "{c:?}");
        let f = provider(ResponseError::Server { status: 503 }, 2);
        let c = online(t, "h", Err(&f), Duration::ZERO, false);
        assert_eq!(c.status, Warn);
        assert!(c.message.contains("after 2 attempt(s)"), "{c:?}");
    }
}
