//! Verdicts about the split-secrets layout (common::secrets): which layout
//! an account uses, its secrets file and directory, the config's
//! `client_secret_file`, and whether a MAC policy keeps smtp out of the
//! secrets. Pure, like verdict.rs; lib.rs probes.

use super::accounts::Accounts;
use super::report::Check;
use super::verdict::{
    may, owner_of, q, Perm, SmtpUser, APPARMOR_PROFILE_FILE, APPARMOR_PROFILE_NAME,
};
use common::error::FileError;
use common::secret::Secret;
use common::secrets::SecretsFile;
use std::path::Path;

/// The SELinux type of secrets files and directories (selinux/sasl_xoauth2.fc).
pub const SELINUX_SECRET_TYPE: &str = "sasl_xoauth2_secret_t";

/// The client_secret_file paths the SELinux module labels.
pub const SECRET_FILES: &[&str] = &[
    "/etc/sasl-xoauth2.secret",
    "/var/spool/postfix/etc/sasl-xoauth2.secret",
];

/// The secrets directories the SELinux module and the AppArmor snippet name.
pub const SECRET_DIRS: &[&str] = &[
    "/etc/tokens/secrets",
    "/var/spool/postfix/etc/tokens/secrets",
];

/// The smtp profile snippet (apparmor/local/) as installed.
pub const APPARMOR_SNIPPET: &str = "/etc/apparmor.d/local/postfix-smtp-sasl-xoauth2";

/// The Postfix smtp profile the snippet belongs in.
pub const APPARMOR_SMTP_PROFILE: &str = "/etc/apparmor.d/postfix-smtp";

/// What is at `D/secrets/N` (lstat, never followed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    Absent,
    File(Perm),
    Symlink,
    /// A directory or a special file.
    Other(&'static str),
    Unreadable(String),
}

impl Entry {
    /// Anything there means the split layout was meant (the helper takes a
    /// regular file as the split layout and refuses anything else).
    pub fn is_split(&self) -> bool {
        *self != Entry::Absent
    }
}

// ----------------------------------------------------------------- layout

/// Which layout the account uses. `token_has_refresh`: whether the token
/// file itself holds a refresh token (or needs none: client_credentials);
/// `None` when the token file could not be read. `leftover`: secret fields
/// still in the token file of a split account.
pub fn layout(
    token: &Path,
    secrets: &Path,
    entry: &Entry,
    token_has_refresh: Option<bool>,
    leftover: &[&str],
) -> Check {
    const N: &str = "layout";
    if entry.is_split() {
        if leftover.is_empty() {
            return Check::ok(N, format!("split (secrets in {})", q(secrets)));
        }
        return Check::warn(
            N,
            format!(
                "split (secrets in {}), but {} still holds {}, left by an interrupted split-secrets: smtp can read it there (the helper ignores it and drops it at its next write)",
                q(secrets),
                q(token),
                leftover.join(" and ")
            ),
            format!(
                "finish the conversion: sasl-xoauth2-tool split-secrets {}",
                q(token)
            ),
        );
    }
    if token_has_refresh == Some(false) {
        return Check::fail(
            N,
            format!(
                "{} holds no refresh_token and there is no secrets file {}: refreshes fail (the secrets file was removed, or the token file was edited)",
                q(token),
                q(secrets)
            ),
            format!(
                "restore {} from a backup, or get a new token: sasl-xoauth2-tool get-token {{gmail|outlook}} --split --overwrite-existing-token {}",
                q(secrets),
                q(token)
            ),
        );
    }
    Check::ok(
        N,
        format!("single file (the refresh token is in {})", q(token)),
    )
}

// ------------------------------------------------------------ secrets file

/// The secrets file: a regular file (not a symlink) that parses with a
/// refresh token. `loaded` is `None` when it was not read (not a file).
pub fn secrets(
    path: &Path,
    entry: &Entry,
    loaded: Option<Result<&SecretsFile, &FileError>>,
) -> Check {
    const N: &str = "secrets";
    // D/secrets/N belongs to the token file D/N.
    let token = match (path.parent().and_then(Path::parent), path.file_name()) {
        (Some(d), Some(n)) => q(&d.join(n)),
        _ => "TOKEN_FILE".into(),
    };
    let restore = format!(
        "replace it with the secrets file itself, mode 0600 (restore it from a backup, or: sasl-xoauth2-tool get-token {{gmail|outlook}} --split --overwrite-existing-token {token})"
    );
    match (entry, loaded) {
        (Entry::Symlink, _) => Check::fail(
            N,
            format!(
                "{} is a symbolic link: the helper refuses it (a link could redirect its reads and writes), so refreshes fail",
                q(path)
            ),
            restore,
        ),
        (Entry::Other(what), _) => Check::fail(
            N,
            format!("{} is {what}, not a regular file: refreshes fail", q(path)),
            restore,
        ),
        (Entry::Unreadable(e), _) => Check::fail(
            N,
            format!("{} cannot be inspected: {e}", q(path)),
            format!("run --check as root, or make {} a regular file owned by the token file's owner", q(path)),
        ),
        (_, Some(Err(e))) => Check::fail(N, format!("{} {}", q(path), e.problem), e.fix()),
        (_, Some(Ok(s))) => {
            let mut msg = format!(
                "{}: valid, refresh token {}",
                q(path),
                s.refresh_token.fingerprint()
            );
            if let Some(c) = &s.client_secret {
                msg.push_str(&format!(", client_secret {} (this account's own)", c.fingerprint()));
            }
            Check::ok(N, msg)
        }
        (_, None) => Check::fail(N, format!("{} was not read", q(path)), restore),
    }
}

/// Owner and mode of the secrets file: the token file's owner (the helper
/// runs as it and rewrites both), 0600.
pub fn secrets_mode(
    path: &Path,
    p: &Perm,
    token_owner: Option<&Perm>,
    accounts: &Accounts,
) -> Check {
    const N: &str = "secrets-mode";
    let owner = owner_of(accounts, p);
    let mut wrong = Vec::new();
    let mut fixes = Vec::new();
    if let Some(t) = token_owner.filter(|t| t.uid != p.uid) {
        wrong.push(format!(
            "owner {owner}, not {} (the token file's owner, as whom the helper reads and rewrites it)",
            accounts.user_name(t.uid)
        ));
        fixes.push(format!("chown {} {}", owner_of(accounts, t), q(path)));
    }
    if p.mode & 0o077 != 0 {
        let who = if p.mode & 0o007 != 0 {
            "every user"
        } else {
            "its group"
        };
        wrong.push(format!(
            "accessible to {who} (mode {:04o}): it holds the refresh token",
            p.mode
        ));
        fixes.push(format!("chmod 600 {}", q(path)));
    }
    if wrong.is_empty() {
        return Check::ok(
            N,
            format!("{}: owner {owner}, mode {:04o}", q(path), p.mode),
        );
    }
    Check::fail(
        N,
        format!("{} is {}", q(path), wrong.join("; ")),
        fixes.join(" && "),
    )
}

/// The secrets directory: a real directory of the token file's owner,
/// 0700 (nobody else may add, replace or list secrets files).
pub fn secrets_dir(
    dir: &Path,
    p: Option<&Perm>,
    token_owner: Option<&Perm>,
    accounts: &Accounts,
) -> Check {
    const N: &str = "secrets-dir";
    let Some(p) = p else {
        return Check::fail(
            N,
            format!("{} is a symbolic link or not a directory: the helper refuses it", q(dir)),
            format!(
                "make it a real directory: install -d -o OWNER -m 700 {} (OWNER: the token file's owner), then restore the secrets files into it",
                q(dir)
            ),
        );
    };
    let owner = owner_of(accounts, p);
    let fix = |t: &Perm| {
        format!(
            "chown {} {} && chmod 700 {}",
            owner_of(accounts, t),
            q(dir),
            q(dir)
        )
    };
    let want = token_owner.copied().unwrap_or(*p);
    if want.uid != p.uid {
        return Check::fail(
            N,
            format!(
                "{} (owner {owner}, mode {:04o}) is not owned by {}, the token file's owner: the helper cannot write the secrets there",
                q(dir),
                p.mode,
                accounts.user_name(want.uid)
            ),
            fix(&want),
        );
    }
    if p.mode & 0o022 != 0 {
        return Check::fail(
            N,
            format!(
                "{} is writable by {} (owner {owner}, mode {:04o}): others can replace the secrets files",
                q(dir),
                if p.mode & 0o002 != 0 { "every user" } else { "its group" },
                p.mode
            ),
            fix(&want),
        );
    }
    if p.mode & 0o077 != 0 {
        return Check::warn(
            N,
            format!(
                "{} (owner {owner}) has mode {:04o}, not 0700: others can list the accounts",
                q(dir),
                p.mode
            ),
            format!("chmod 700 {}", q(dir)),
        );
    }
    Check::ok(
        N,
        format!("{} (owner {owner}, mode {:04o})", q(dir), p.mode),
    )
}

// --------------------------------------------------- client_secret_file

/// What was found at the config's `client_secret_file`.
#[derive(Debug)]
pub enum ClientSecretFound<'a> {
    Entry(&'a Entry),
    Loaded(Perm, Result<&'a Secret, &'a FileError>),
}

/// The config's `client_secret_file`: `named` as the config names it (as
/// smtp sees it), `path` where this host has it (inside the chroot). It
/// must be a regular file readable by the helper's user (smtp's), mode
/// 0600, holding the secret. `enforced_type`: its SELinux type, when
/// SELinux enforces.
pub fn client_secret_file(
    named: &Path,
    path: &Path,
    found: &ClientSecretFound,
    user: Option<&SmtpUser>,
    accounts: &Accounts,
    enforced_type: Option<&str>,
) -> Check {
    const N: &str = "client-secret-file";
    let shown = if named == path {
        q(path)
    } else {
        format!("{} ({} as smtp sees it)", q(path), q(named))
    };
    let remove = "or remove client_secret_file from the config";
    let (p, loaded) = match found {
        ClientSecretFound::Entry(Entry::Absent) => {
            return Check::fail(
                N,
                format!("{shown} does not exist: refreshes have no client secret"),
                format!(
                    "create {} holding only the client secret (chmod 600, owned by the user smtp runs as), {remove}",
                    q(path)
                ),
            )
        }
        ClientSecretFound::Entry(Entry::Symlink) => {
            return Check::fail(
                N,
                format!("{shown} is a symbolic link: the helper refuses it"),
                format!("replace the symlink {} with the file itself", q(path)),
            )
        }
        ClientSecretFound::Entry(Entry::Other(what)) => {
            return Check::fail(
                N,
                format!("{shown} is {what}, not a regular file"),
                format!("{} must be a regular file holding the client secret", q(path)),
            )
        }
        ClientSecretFound::Entry(Entry::Unreadable(e)) => {
            return Check::fail(
                N,
                format!("{shown} cannot be inspected: {e}"),
                "run --check as root",
            )
        }
        ClientSecretFound::Entry(Entry::File(_)) => {
            return Check::fail(N, format!("{shown} was not read"), "run --check as root")
        }
        ClientSecretFound::Loaded(p, l) => (p, l),
    };
    let owner = owner_of(accounts, p);
    if let Some(su) = user {
        if !may(&su.user, p, 4) {
            return Check::fail(
                N,
                format!(
                    "{shown} (owner {owner}, mode {:04o}) cannot be read by {}, the user smtp and the helper run as ({}): refreshes fail",
                    p.mode, su.user.name, su.source
                ),
                format!("chown {} {} && chmod 600 {}", su.user.name, q(path), q(path)),
            );
        }
    }
    if p.mode & 0o077 != 0 {
        return Check::fail(
            N,
            format!(
                "{shown} is accessible to {} (mode {:04o}): it holds the client secret",
                if p.mode & 0o007 != 0 {
                    "every user"
                } else {
                    "its group"
                },
                p.mode
            ),
            format!("chmod 600 {}", q(path)),
        );
    }
    if let Some(t) = enforced_type.filter(|t| *t != SELINUX_SECRET_TYPE) {
        let fix = if SECRET_FILES.iter().any(|f| path == Path::new(f)) {
            format!("restorecon -v {}", q(path))
        } else {
            format!(
                "semanage fcontext -a -t {SELINUX_SECRET_TYPE} '{}' && restorecon -v {}",
                q(path),
                q(path)
            )
        };
        return Check::warn(
            N,
            format!(
                "SELinux is enforcing and {shown} has type {t}, not {SELINUX_SECRET_TYPE}: the policy lets the helper read it, and keeps smtp out, only with that type"
            ),
            fix,
        );
    }
    match loaded {
        Err(e) => Check::fail(N, format!("{shown} {}", e.problem), e.fix()),
        Ok(s) => Check::ok(
            N,
            format!(
                "{shown}: client secret {}, owner {owner}, mode {:04o}",
                s.fingerprint(),
                p.mode
            ),
        ),
    }
}

// ------------------------------------------------------------------- MAC

/// A profile's mode in /sys/kernel/security/apparmor/profiles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AaMode {
    NotLoaded,
    Enforce,
    Complain,
    Other(String),
}

impl AaMode {
    /// The mode of the first profile in `profiles` (the file's text) that
    /// `is_it` accepts by name.
    pub fn find(profiles: &str, is_it: impl Fn(&str) -> bool) -> AaMode {
        for line in profiles.lines() {
            let Some((name, mode)) = line.trim_end().rsplit_once(" (") else {
                continue;
            };
            if is_it(name) {
                return match mode.trim_end_matches(')') {
                    "enforce" => AaMode::Enforce,
                    "complain" => AaMode::Complain,
                    m => AaMode::Other(m.to_string()),
                };
            }
        }
        AaMode::NotLoaded
    }
}

/// Whether `name` is Postfix's smtp profile (`postfix-smtp`, or one named
/// by the binary's path).
pub fn is_smtp_profile(name: &str) -> bool {
    name == "postfix-smtp"
        || name.ends_with("/postfix/smtp")
        || name.ends_with("/postfix/sbin/smtp")
}

/// What the MAC layers look like, as far as they decide whether smtp can
/// read the secrets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacState {
    /// /sys/fs/selinux/enforce: `None` without SELinux.
    pub selinux_enforcing: Option<bool>,
    /// Whether the sasl_xoauth2 module is installed (`None`: unknown).
    pub selinux_module: Option<bool>,
    /// Types of the secrets directory's and file's labels (`None`: none).
    pub dir_type: Option<String>,
    pub file_type: Option<String>,
    /// AppArmor is enabled on this kernel.
    pub apparmor: bool,
    pub aa_smtp: AaMode,
    pub aa_helper: AaMode,
    /// Whether the installed smtp snippet denies the secrets (`None`: not
    /// readable or not installed).
    pub aa_snippet_deny: Option<bool>,
}

/// Whether smtp is kept out of the secrets, and why (not).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Protection {
    Protected(String),
    NotProtected { why: String, fix: String },
}

/// Decide from `m` whether a MAC policy keeps smtp out of the secrets in
/// `dir` (the secrets directory).
pub fn mac_protection(m: &MacState, dir: &Path) -> Protection {
    let relabel = if SECRET_DIRS.iter().any(|d| dir.starts_with(d)) {
        format!("restorecon -Rv {}", q(dir))
    } else {
        format!(
            "semanage fcontext -a -t {SELINUX_SECRET_TYPE} '{}(/.*)?' && restorecon -Rv {}",
            q(dir),
            q(dir)
        )
    };
    let not = |why: String, fix: String| Protection::NotProtected { why, fix };
    if m.selinux_enforcing == Some(true) {
        if m.selinux_module == Some(false) {
            return not(
                "SELinux is enforcing, but the sasl_xoauth2 module is not installed".into(),
                format!("semodule -i sasl_xoauth2.pp && {relabel}"),
            );
        }
        let wrong: Vec<String> = [
            ("the secrets directory", &m.dir_type),
            ("the secrets file", &m.file_type),
        ]
        .into_iter()
        .filter_map(|(what, t)| match t.as_deref() {
            Some(SELINUX_SECRET_TYPE) => None,
            Some(t) => Some(format!("{what} has type {t}")),
            None => Some(format!("{what} has no label")),
        })
        .collect();
        if !wrong.is_empty() {
            return not(
                format!(
                    "SELinux is enforcing, but {}, not {SELINUX_SECRET_TYPE}",
                    wrong.join(" and ")
                ),
                relabel,
            );
        }
        return Protection::Protected(format!(
            "SELinux enforcing, secrets labeled {SELINUX_SECRET_TYPE}"
        ));
    }
    if m.apparmor {
        let smtp = match &m.aa_smtp {
            AaMode::Enforce => None,
            AaMode::NotLoaded => {
                Some("no AppArmor profile for Postfix's smtp is loaded: smtp runs unconfined")
            }
            AaMode::Complain => {
                Some("Postfix's smtp profile is in complain mode (it logs, it denies nothing)")
            }
            AaMode::Other(_) => Some("Postfix's smtp profile is not in enforce mode"),
        };
        if let Some(why) = smtp {
            return not(
                why.into(),
                format!(
                    "include <local/postfix-smtp-sasl-xoauth2> in {APPARMOR_SMTP_PROFILE}, then aa-enforce {APPARMOR_SMTP_PROFILE}"
                ),
            );
        }
        if m.aa_snippet_deny == Some(false) {
            return not(
                format!("{APPARMOR_SNIPPET} lacks the deny rule for the secrets"),
                format!(
                    "cp apparmor/local/postfix-smtp-sasl-xoauth2 {APPARMOR_SNIPPET} && apparmor_parser -r {APPARMOR_SMTP_PROFILE}"
                ),
            );
        }
        match &m.aa_helper {
            AaMode::Enforce => {}
            AaMode::NotLoaded => {
                return not(
                    format!("the helper's profile {APPARMOR_PROFILE_NAME} is not loaded"),
                    format!("apparmor_parser -r {APPARMOR_PROFILE_FILE} && aa-enforce {APPARMOR_PROFILE_FILE}"),
                )
            }
            _ => {
                return not(
                    format!("the helper's profile {APPARMOR_PROFILE_NAME} is not in enforce mode"),
                    format!("aa-enforce {APPARMOR_PROFILE_FILE}"),
                )
            }
        }
        return Protection::Protected(format!(
            "AppArmor: smtp's profile enforced{}, helper profile {APPARMOR_PROFILE_NAME} enforced",
            if m.aa_snippet_deny == Some(true) {
                " with the secrets denied"
            } else {
                ""
            }
        ));
    }
    let how = format!(
        "with SELinux enforcing: semodule -i sasl_xoauth2.pp && {relabel}; or with AppArmor: the profiles in apparmor/ loaded and aa-enforce'd (docs/policies.md)"
    );
    match m.selinux_enforcing {
        Some(false) => not(
            "SELinux is permissive (it logs, it denies nothing) and AppArmor is not enabled".into(),
            format!("setenforce 1 (and SELINUX=enforcing in /etc/selinux/config); {how}"),
        ),
        _ => not(
            "neither SELinux nor AppArmor is enforcing on this kernel".into(),
            how,
        ),
    }
}

/// The MAC verdict for the account. For the split layout, `p` is about its
/// secrets; for the single file, about what the split layout would get.
pub fn secrets_mac(token: &Path, secrets: &Path, split: bool, p: &Protection) -> Check {
    const N: &str = "secrets-mac";
    match (split, p) {
        (true, Protection::Protected(how)) => Check::ok(
            N,
            format!("{}: protected from smtp ({how})", q(secrets)),
        ),
        (true, Protection::NotProtected { why, fix }) => Check::warn(
            N,
            format!(
                "{}: not protected from smtp: {why}; without an enforcing MAC policy a compromised smtp (same uid) can still read the secrets",
                q(secrets)
            ),
            fix.clone(),
        ),
        (false, Protection::Protected(how)) => Check::warn(
            N,
            format!(
                "single file: the refresh token in {} is readable by smtp, although this host could keep it out ({how})",
                q(token)
            ),
            format!("sasl-xoauth2-tool split-secrets {}", q(token)),
        ),
        (false, Protection::NotProtected { why, .. }) => Check::ok(
            N,
            format!(
                "single file: the refresh token in {} is readable by smtp; not protected from smtp: {why} (note: `sasl-xoauth2-tool split-secrets {}` keeps it out of smtp's reach once SELinux or AppArmor enforces the shipped policy; without one a compromised smtp, same uid, reads it either way)",
                q(token),
                q(token)
            ),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::accounts::User;
    use super::*;
    use crate::report::Status::{Fail, Ok as Good, Warn};

    fn se(enforcing: Option<bool>, module: Option<bool>, t: Option<&str>) -> MacState {
        MacState {
            selinux_enforcing: enforcing,
            selinux_module: module,
            dir_type: t.map(String::from),
            file_type: t.map(String::from),
            apparmor: false,
            aa_smtp: AaMode::NotLoaded,
            aa_helper: AaMode::NotLoaded,
            aa_snippet_deny: None,
        }
    }

    fn aa(smtp: AaMode, helper: AaMode, deny: Option<bool>) -> MacState {
        MacState {
            apparmor: true,
            aa_smtp: smtp,
            aa_helper: helper,
            aa_snippet_deny: deny,
            ..se(None, None, None)
        }
    }

    const D: &str = "/etc/tokens/secrets";

    fn why(p: Protection) -> (String, String) {
        match p {
            Protection::NotProtected { why, fix } => (why, fix),
            Protection::Protected(h) => panic!("protected: {h}"),
        }
    }

    #[test]
    fn selinux_protection() {
        let d = Path::new(D);
        let p = mac_protection(&se(Some(true), Some(true), Some(SELINUX_SECRET_TYPE)), d);
        assert_eq!(
            p,
            Protection::Protected(
                "SELinux enforcing, secrets labeled sasl_xoauth2_secret_t".into()
            )
        );
        // Labels right, module presence unknown: the type exists, so it is.
        assert!(matches!(
            mac_protection(&se(Some(true), None, Some(SELINUX_SECRET_TYPE)), d),
            Protection::Protected(_)
        ));
        let p = mac_protection(&se(Some(true), Some(true), Some("sasl_xoauth2_token_t")), d);
        let (w, f) = why(p);
        assert!(
            w.contains("has type sasl_xoauth2_token_t, not sasl_xoauth2_secret_t"),
            "{w}"
        );
        assert_eq!(f, "restorecon -Rv /etc/tokens/secrets");
        let mut m = se(Some(true), Some(true), Some(SELINUX_SECRET_TYPE));
        m.file_type = None;
        assert!(why(mac_protection(&m, d))
            .0
            .contains("the secrets file has no label"));
        let p = mac_protection(
            &se(Some(true), Some(false), Some("etc_t")),
            Path::new("/srv/t/secrets"),
        );
        let (w, f) = why(p);
        assert!(w.contains("module is not installed"), "{w}");
        assert_eq!(
            f,
            "semodule -i sasl_xoauth2.pp && semanage fcontext -a -t sasl_xoauth2_secret_t '/srv/t/secrets(/.*)?' && restorecon -Rv /srv/t/secrets"
        );
        let p = mac_protection(&se(Some(false), Some(true), Some(SELINUX_SECRET_TYPE)), d);
        let (w, f) = why(p);
        assert!(w.starts_with("SELinux is permissive"), "{w}");
        assert!(f.starts_with("setenforce 1"), "{f}");
        let (w, f) = why(mac_protection(&se(None, None, None), d));
        assert_eq!(
            w,
            "neither SELinux nor AppArmor is enforcing on this kernel"
        );
        assert!(f.contains("semodule -i") && f.contains("aa-enforce"), "{f}");
    }

    #[test]
    fn apparmor_protection() {
        let d = Path::new(D);
        let p = mac_protection(&aa(AaMode::Enforce, AaMode::Enforce, Some(true)), d);
        assert!(
            matches!(&p, Protection::Protected(h) if h.contains("secrets denied")),
            "{p:?}"
        );
        let (w, f) = why(mac_protection(
            &aa(AaMode::Complain, AaMode::Enforce, Some(true)),
            d,
        ));
        assert!(w.contains("complain mode"), "{w}");
        assert!(f.contains("aa-enforce /etc/apparmor.d/postfix-smtp"), "{f}");
        let (w, _) = why(mac_protection(
            &aa(AaMode::NotLoaded, AaMode::Enforce, None),
            d,
        ));
        assert!(w.contains("unconfined"), "{w}");
        let (w, f) = why(mac_protection(
            &aa(AaMode::Enforce, AaMode::Complain, Some(true)),
            d,
        ));
        assert!(w.contains("not in enforce mode"), "{w}");
        assert_eq!(f, format!("aa-enforce {APPARMOR_PROFILE_FILE}"));
        let (w, _) = why(mac_protection(
            &aa(AaMode::Enforce, AaMode::NotLoaded, None),
            d,
        ));
        assert!(w.contains("is not loaded"), "{w}");
        let (w, f) = why(mac_protection(
            &aa(AaMode::Enforce, AaMode::Enforce, Some(false)),
            d,
        ));
        assert!(w.contains("lacks the deny rule"), "{w}");
        assert!(f.starts_with("cp apparmor/local/"), "{f}");
        // SELinux enforcing decides, whatever AppArmor says.
        let mut m = aa(AaMode::Complain, AaMode::NotLoaded, None);
        m.selinux_enforcing = Some(true);
        m.dir_type = Some(SELINUX_SECRET_TYPE.into());
        m.file_type = Some(SELINUX_SECRET_TYPE.into());
        assert!(matches!(mac_protection(&m, d), Protection::Protected(_)));
        // Permissive SELinux, AppArmor enforcing: AppArmor decides.
        let mut m = aa(AaMode::Enforce, AaMode::Enforce, None);
        m.selinux_enforcing = Some(false);
        assert!(matches!(mac_protection(&m, d), Protection::Protected(_)));
    }

    #[test]
    fn apparmor_profiles_file() {
        let text = "sasl-xoauth2-refresh (complain)\n\
                    /usr/sbin/ntpd (enforce)\n\
                    postfix-smtp (enforce)\n\
                    odd (kill)\n";
        assert_eq!(AaMode::find(text, is_smtp_profile), AaMode::Enforce);
        assert_eq!(
            AaMode::find(text, |n| n == APPARMOR_PROFILE_NAME),
            AaMode::Complain
        );
        assert_eq!(
            AaMode::find(text, |n| n == "odd"),
            AaMode::Other("kill".into())
        );
        assert_eq!(AaMode::find(text, |n| n == "none"), AaMode::NotLoaded);
        assert!(is_smtp_profile("/usr/lib/postfix/sbin/smtp"));
        assert!(!is_smtp_profile("/usr/lib/postfix/sbin/smtpd"));
    }

    #[test]
    fn mac_verdict_per_layout() {
        let t = Path::new("/etc/tokens/a");
        let s = Path::new("/etc/tokens/secrets/a");
        let yes = Protection::Protected("SELinux enforcing, secrets labeled x".into());
        let no = Protection::NotProtected {
            why: "neither SELinux nor AppArmor is enforcing on this kernel".into(),
            fix: "semodule -i".into(),
        };
        let c = secrets_mac(t, s, true, &yes);
        assert_eq!(c.status, Good);
        assert!(
            c.message.contains("protected from smtp (SELinux enforcing"),
            "{c:?}"
        );
        let c = secrets_mac(t, s, true, &no);
        assert_eq!(c.status, Warn);
        assert!(
            c.message.contains("not protected from smtp: neither")
                && c.message.contains("same uid"),
            "{c:?}"
        );
        // A single file never fails: a note without MAC, a warning where
        // the split layout would be protected.
        let c = secrets_mac(t, s, false, &no);
        assert_eq!(c.status, Good);
        assert!(
            c.message.contains("readable by smtp")
                && c.message.contains("split-secrets /etc/tokens/a"),
            "{c:?}"
        );
        let c = secrets_mac(t, s, false, &yes);
        assert_eq!(c.status, Warn);
        assert_eq!(
            c.fix.as_deref(),
            Some("sasl-xoauth2-tool split-secrets /etc/tokens/a")
        );
    }

    #[test]
    fn layout_verdicts() {
        let t = Path::new("/etc/tokens/a");
        let s = Path::new("/etc/tokens/secrets/a");
        let f = Entry::File(Perm {
            uid: 1,
            gid: 1,
            mode: 0o600,
        });
        assert_eq!(
            layout(t, s, &Entry::Absent, Some(true), &[]).message,
            "single file (the refresh token is in /etc/tokens/a)"
        );
        assert_eq!(layout(t, s, &Entry::Absent, None, &[]).status, Good);
        let c = layout(t, s, &Entry::Absent, Some(false), &[]);
        assert_eq!(c.status, Fail);
        assert!(
            c.fix
                .as_deref()
                .unwrap()
                .contains("--split --overwrite-existing-token /etc/tokens/a"),
            "{c:?}"
        );
        assert_eq!(
            layout(t, s, &f, Some(false), &[]).message,
            "split (secrets in /etc/tokens/secrets/a)"
        );
        assert_eq!(
            layout(t, s, &Entry::Symlink, None, &[]).status,
            Good,
            "the secrets check fails it"
        );
        let c = layout(t, s, &f, Some(true), &["refresh_token", "client_secret"]);
        assert_eq!(c.status, Warn);
        assert!(
            c.message
                .contains("still holds refresh_token and client_secret"),
            "{c:?}"
        );
        assert_eq!(
            c.fix.as_deref(),
            Some("finish the conversion: sasl-xoauth2-tool split-secrets /etc/tokens/a")
        );
    }

    #[test]
    fn secrets_file_and_dir_verdicts() {
        let a = Accounts::default();
        let s = Path::new("/etc/tokens/secrets/a");
        let own = Perm {
            uid: 7,
            gid: 7,
            mode: 0o600,
        };
        assert_eq!(secrets_mode(s, &own, Some(&own), &a).status, Good);
        let c = secrets_mode(
            s,
            &Perm {
                mode: 0o644,
                uid: 0,
                gid: 0,
            },
            Some(&own),
            &a,
        );
        assert_eq!(c.status, Fail);
        assert_eq!(
            c.fix.as_deref(),
            Some("chown 7:7 /etc/tokens/secrets/a && chmod 600 /etc/tokens/secrets/a")
        );
        assert!(
            c.message.contains("accessible to every user (mode 0644)"),
            "{c:?}"
        );
        let d = Path::new("/etc/tokens/secrets");
        let dir = Perm {
            uid: 7,
            gid: 7,
            mode: 0o700,
        };
        assert_eq!(secrets_dir(d, Some(&dir), Some(&own), &a).status, Good);
        assert_eq!(
            secrets_dir(d, Some(&Perm { mode: 0o770, ..dir }), Some(&own), &a).status,
            Fail
        );
        assert_eq!(
            secrets_dir(d, Some(&Perm { mode: 0o755, ..dir }), Some(&own), &a).status,
            Warn
        );
        assert_eq!(
            secrets_dir(d, Some(&Perm { uid: 0, ..dir }), Some(&own), &a).status,
            Fail
        );
        assert_eq!(secrets_dir(d, None, Some(&own), &a).status, Fail);
        let c = secrets(s, &Entry::Symlink, None);
        assert_eq!(c.status, Fail);
        assert!(c.message.contains("symbolic link"), "{c:?}");
    }

    #[test]
    fn client_secret_file_verdicts() {
        let a = Accounts::default();
        let su = SmtpUser {
            user: User {
                name: "postfix".into(),
                uid: 7,
                gids: vec![7],
            },
            source: "mail_owner".into(),
        };
        let p = Path::new("/etc/sasl-xoauth2.secret");
        let secret = Secret::new("cs-plaintext-42");
        let good = Perm {
            uid: 7,
            gid: 7,
            mode: 0o600,
        };
        let c = client_secret_file(
            p,
            p,
            &ClientSecretFound::Loaded(good, Ok(&secret)),
            Some(&su),
            &a,
            None,
        );
        assert_eq!(c.status, Good);
        assert!(
            c.message.contains("client secret sha256:") && !c.message.contains("plaintext"),
            "{c:?}"
        );
        let c = client_secret_file(
            p,
            p,
            &ClientSecretFound::Loaded(Perm { uid: 0, ..good }, Ok(&secret)),
            Some(&su),
            &a,
            None,
        );
        assert_eq!(c.status, Fail);
        assert!(c.message.contains("cannot be read by postfix"), "{c:?}");
        let c = client_secret_file(
            p,
            p,
            &ClientSecretFound::Loaded(
                Perm {
                    mode: 0o644,
                    ..good
                },
                Ok(&secret),
            ),
            Some(&su),
            &a,
            None,
        );
        assert_eq!(c.fix.as_deref(), Some("chmod 600 /etc/sasl-xoauth2.secret"));
        for e in [Entry::Absent, Entry::Symlink, Entry::Other("a directory")] {
            assert_eq!(
                client_secret_file(p, p, &ClientSecretFound::Entry(&e), None, &a, None).status,
                Fail
            );
        }
        // SELinux enforcing: the secret type, or a warning with the relabel.
        let loaded = ClientSecretFound::Loaded(good, Ok(&secret));
        let labeled = |t| client_secret_file(p, p, &loaded, Some(&su), &a, Some(t));
        assert_eq!(labeled(SELINUX_SECRET_TYPE).status, Good);
        let c = labeled("etc_t");
        assert_eq!(c.status, Warn);
        assert!(
            c.message
                .contains("has type etc_t, not sasl_xoauth2_secret_t"),
            "{c:?}"
        );
        assert_eq!(
            c.fix.as_deref(),
            Some("restorecon -v /etc/sasl-xoauth2.secret")
        );
        let o = Path::new("/srv/x.secret");
        let c = client_secret_file(o, o, &loaded, Some(&su), &a, Some("etc_t"));
        assert_eq!(
            c.fix.as_deref(),
            Some("semanage fcontext -a -t sasl_xoauth2_secret_t '/srv/x.secret' && restorecon -v /srv/x.secret")
        );
        let inside = Path::new("/var/spool/postfix/etc/sasl-xoauth2.secret");
        let c = client_secret_file(
            p,
            inside,
            &ClientSecretFound::Entry(&Entry::Absent),
            None,
            &a,
            None,
        );
        assert!(
            c.message
                .contains("(/etc/sasl-xoauth2.secret as smtp sees it)"),
            "{c:?}"
        );
    }
}
