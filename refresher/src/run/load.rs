//! Loading what a refresh starts from: the configuration (a file, or the
//! plugin's handoff on a descriptor), the token file and, in the split
//! layout, its secrets file; the config's client_secret_file.

use crate::diag;
use crate::error::Failure;
use crate::store::FileMeta;
use common::config::Config;
use common::error::{FileError, FileKind};
use common::handoff::{Handoff, MAX_HANDOFF_SIZE};
use common::secrets::SecretsFile;
use common::TokenFile;
use std::os::fd::{IntoRawFd, RawFd};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

#[derive(Debug, Clone)]
pub enum ConfigSource {
    /// `$SASL_XOAUTH2_CONFIG` (unless secure-execution) or the default path.
    Default,
    Path(PathBuf),
    /// A [`Handoff`] on this descriptor.
    Fd(RawFd),
}

/// The configuration and, from a handoff, the CA certificates the plugin
/// read for us.
pub struct Loaded {
    pub(super) config: Config,
    pub(super) ca_pem: Option<Zeroizing<String>>,
}

impl Loaded {
    /// A configuration read from a file by the caller; CA files it names are
    /// read when a request is prepared.
    pub fn from_config(config: Config) -> Loaded {
        Loaded {
            config,
            ca_pem: None,
        }
    }

    /// The parsed configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("config", &self.config.path)
            .field("ca_pem_bytes", &self.ca_pem.as_ref().map(|p| p.len()))
            .finish()
    }
}

/// Load the configuration from where the command line says. (`main` calls
/// it early, as root, before dropping to the token owner, when the config
/// is a file root may read and the owner may not.)
pub fn load_config(src: &ConfigSource) -> Result<Loaded, Failure> {
    let path = match src {
        ConfigSource::Fd(fd) => return load_handoff(*fd),
        ConfigSource::Path(p) => p.clone(),
        ConfigSource::Default => common::config::config_path(
            crate::sys::secure_execution(),
            std::env::var_os(common::CONFIG_ENV),
        ),
    };
    let config = Config::load(&path).map_err(Failure::ConfigFile)?;
    Ok(Loaded {
        config,
        ca_pem: None,
    })
}

fn load_handoff(fd: RawFd) -> Result<Loaded, Failure> {
    let owned = crate::sys::take_inherited_fd(fd).map_err(|e| {
        Failure::config(
            format!("--config-fd {fd}: {e}"),
            "the descriptor must carry the plugin's config handoff",
        )
    })?;
    let mut file = std::fs::File::from(owned);
    let bytes = common::fsread::read_all_capped(&mut file, MAX_HANDOFF_SIZE);
    if fd <= 2 {
        // Keep 0-2 occupied so no file we open later becomes "stdout".
        let _ = file.into_raw_fd();
    }
    let bytes = Zeroizing::new(bytes.map_err(|p| Failure::Config {
        what: format!("config handoff on descriptor {fd} {p}"),
        fix: None,
    })?);
    let h = Handoff::decode(&bytes).map_err(|e| Failure::Config {
        what: format!("{e} (descriptor {fd})"),
        fix: None,
    })?;
    let config = Config::parse(h.config.as_bytes(), Path::new(&h.config_path))
        .map_err(Failure::ConfigFile)?;
    let ca_pem = if h.ca_pem.trim().is_empty() {
        None
    } else {
        Some(Zeroizing::new(h.ca_pem.clone()))
    };
    Ok(Loaded { config, ca_pem })
}

/// A token file as read, with the owner and mode of the very file read.
pub(super) struct TokenRead {
    pub token: TokenFile,
    pub meta: FileMeta,
}

pub(super) fn read_token(path: &Path) -> Result<TokenRead, Failure> {
    let file = common::fsread::open_regular(path, FileKind::Token).map_err(Failure::Token)?;
    let meta = file
        .metadata()
        .map_err(|e| Failure::Token(unreadable(path, e)))?;
    let bytes = Zeroizing::new(
        common::fsread::read_all_capped(file, common::MAX_FILE_SIZE)
            .map_err(|p| Failure::Token(FileError::new(FileKind::Token, path, p)))?,
    );
    let token = TokenFile::parse(&bytes, path).map_err(Failure::Token)?;
    Ok(TokenRead {
        token,
        meta: FileMeta::of(&meta),
    })
}

fn unreadable(path: &Path, e: std::io::Error) -> FileError {
    FileError::new(
        FileKind::Token,
        path,
        common::error::Problem::Unreadable(e.to_string()),
    )
}

/// Refuse a token file anybody could rewrite (they could point its
/// token_endpoint elsewhere and collect the refresh token); warn about one
/// anybody can read.
pub(super) fn check_token_mode(path: &Path, meta: &FileMeta) -> Result<(), Failure> {
    if meta.mode & 0o002 != 0 {
        return Err(Failure::TokenUnsafe {
            path: path.to_path_buf(),
            why: format!("is writable by every user (mode {:04o})", meta.mode),
            fix: Some(format!("run `chmod 600 {}`", path.display())),
        });
    }
    if meta.mode & 0o004 != 0 {
        diag(format_args!(
            "warning: token file {} is readable by every user (mode {:04o}); run `chmod 600 {}`",
            path.display(),
            meta.mode,
            path.display()
        ));
    }
    Ok(())
}

/// Which layout an account uses (common::secrets): decided by `lstat` of
/// `D/secrets` and `D/secrets/N`, before anything is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Layout {
    /// The C++ tool's: everything in the token file.
    Single,
    /// The refresh token (and any per-account client secret) in `D/secrets/N`.
    Split,
}

/// What `lstat` found at a path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Entry {
    Missing,
    File,
    Dir,
    Symlink,
    Other,
}

impl Entry {
    fn of(path: &Path) -> Result<Entry, std::io::Error> {
        match std::fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => Ok(Entry::Symlink),
            Ok(m) if m.is_file() => Ok(Entry::File),
            Ok(m) if m.is_dir() => Ok(Entry::Dir),
            Ok(_) => Ok(Entry::Other),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
                ) =>
            {
                Ok(Entry::Missing)
            }
            Err(e) => Err(e),
        }
    }
}

/// The layout for what `lstat` found at `D/secrets` (`dir`) and
/// `D/secrets/N` (`file`). A symlink at either, or something other than a
/// regular file at `D/secrets/N`, is refused (the reason is returned): the
/// helper never follows a link to the refresh token it sends or rewrites.
/// No `D/secrets` directory (even a token file named `secrets`): single.
pub(super) fn layout(dir: Entry, file: Entry) -> Result<Layout, &'static str> {
    match (dir, file) {
        (Entry::Symlink, _) => Err("its directory is a symbolic link"),
        (Entry::Dir, Entry::File) => Ok(Layout::Split),
        (Entry::Dir, Entry::Missing) => Ok(Layout::Single),
        (Entry::Dir, Entry::Symlink) => Err("is a symbolic link"),
        (Entry::Dir, _) => Err("is not a regular file"),
        _ => Ok(Layout::Single),
    }
}

/// A secrets file as read, with the owner and mode of the very file read.
pub(super) struct SecretsRead {
    pub path: PathBuf,
    pub secrets: SecretsFile,
    pub meta: FileMeta,
}

/// The secrets file must belong to the token file's owner and be closed to
/// group and others: whoever else could read it holds the mailbox.
pub(super) fn check_secrets_meta(
    path: &Path,
    token: &FileMeta,
    secrets: &FileMeta,
) -> Result<(), (String, String)> {
    if secrets.uid != token.uid {
        return Err((
            format!(
                "belongs to uid {}, but the token file to uid {}",
                secrets.uid, token.uid
            ),
            format!("run `chown {} {}`", token.uid, path.display()),
        ));
    }
    if secrets.mode & 0o077 != 0 {
        return Err((
            format!("is open to group or others (mode {:04o})", secrets.mode),
            format!("run `chmod 600 {}`", path.display()),
        ));
    }
    Ok(())
}

/// Decide the layout of the account whose token file is `path` (owner and
/// mode `token_meta`) and, in the split layout, read its secrets file
/// (no symlinks, regular file, size cap) and check its owner and mode.
pub(super) fn read_secrets(
    path: &Path,
    token_meta: &FileMeta,
) -> Result<Option<SecretsRead>, Failure> {
    let spath = common::secrets::secrets_path(path);
    let dir = common::secrets::secrets_dir(path);
    let unsafe_ = |(why, fix): (String, String)| Failure::TokenUnsafe {
        path: path.to_path_buf(),
        why: format!("its secrets file {} {why}", spath.display()),
        fix: Some(fix),
    };
    let lstat = |p: &Path| {
        Entry::of(p).map_err(|e| {
            Failure::Token(FileError::new(
                FileKind::Secrets,
                &spath,
                common::error::Problem::Unreadable(format!("{}: {e}", p.display())),
            ))
        })
    };
    let found = layout(lstat(&dir)?, lstat(&spath)?).map_err(|why| {
        unsafe_((
            format!("{why}, refused (nothing was sent)"),
            format!(
                "make {} a regular file (mode 0600) in the directory {} (mode 0700), or remove it to use the single-file layout",
                spath.display(),
                dir.display()
            ),
        ))
    })?;
    if found == Layout::Single {
        return Ok(None);
    }
    let file = common::fsread::open_regular(&spath, FileKind::Secrets).map_err(Failure::Token)?;
    let meta = file.metadata().map_err(|e| {
        Failure::Token(FileError::new(
            FileKind::Secrets,
            &spath,
            common::error::Problem::Unreadable(e.to_string()),
        ))
    })?;
    let meta = FileMeta::of(&meta);
    check_secrets_meta(&spath, token_meta, &meta).map_err(unsafe_)?;
    let bytes = Zeroizing::new(
        common::fsread::read_all_capped(file, common::MAX_FILE_SIZE)
            .map_err(|p| Failure::Token(FileError::new(FileKind::Secrets, &spath, p)))?,
    );
    let secrets = SecretsFile::parse(&bytes, &spath).map_err(Failure::Token)?;
    Ok(Some(SecretsRead {
        path: spath,
        secrets,
        meta,
    }))
}

/// The token as the request uses it: in the split layout the secrets
/// file's refresh token and client secret replace the token file's (one
/// left there by an interrupted conversion is ignored). Then the
/// refresh_token grant must have a refresh token.
pub(super) fn merge_secrets(
    token: &mut TokenFile,
    secrets: Option<&SecretsFile>,
    path: &Path,
) -> Result<(), Failure> {
    if let Some(s) = secrets {
        token.refresh_token = Some(s.refresh_token.clone());
        token.overrides.client_secret = s.client_secret.clone();
    }
    token.require_refresh_token(path).map_err(Failure::Token)
}

/// The config's client secret read from its `client_secret_file` (path as
/// smtp sees it; the plugin never opens it), in the config from then on,
/// where the trust rule (common::settings) treats it as the config's.
pub(super) fn read_client_secret_file(config: &mut Config) -> Result<(), Failure> {
    if let Some(p) = &config.client_secret_file {
        if config.client_secret.is_none() {
            config.client_secret =
                Some(common::secrets::load_client_secret(p).map_err(Failure::ConfigFile)?);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::secret::Secret;

    #[test]
    fn layout_is_decided_by_lstat_alone() {
        use Entry::*;
        assert_eq!(layout(Dir, File), Ok(Layout::Split));
        assert_eq!(layout(Dir, Missing), Ok(Layout::Single));
        assert_eq!(layout(Missing, Missing), Ok(Layout::Single));
        // A token file (or anything) named `secrets`: no secrets directory.
        assert_eq!(layout(File, Missing), Ok(Layout::Single));
        assert_eq!(layout(Other, Missing), Ok(Layout::Single));
        for bad in [(Dir, Symlink), (Dir, Dir), (Dir, Other), (Symlink, Missing)] {
            assert!(layout(bad.0, bad.1).is_err(), "{bad:?}");
        }
        assert_eq!(
            layout(Symlink, File),
            Err("its directory is a symbolic link")
        );
        assert_eq!(layout(Dir, Symlink), Err("is a symbolic link"));
    }

    #[test]
    fn secrets_file_owner_and_mode() {
        let m = |uid, mode| FileMeta {
            uid,
            gid: 0,
            mode,
            len: 0,
        };
        let p = Path::new("/etc/tokens/secrets/a");
        assert!(check_secrets_meta(p, &m(8, 0o600), &m(8, 0o600)).is_ok());
        assert!(check_secrets_meta(p, &m(8, 0o644), &m(8, 0o400)).is_ok());
        let (why, fix) = check_secrets_meta(p, &m(8, 0o600), &m(9, 0o600)).unwrap_err();
        assert!(
            why.contains("uid 9") && fix == "run `chown 8 /etc/tokens/secrets/a`",
            "{why}; {fix}"
        );
        for mode in [0o640, 0o604, 0o620, 0o602, 0o610, 0o666] {
            let (why, fix) = check_secrets_meta(p, &m(8, 0o600), &m(8, mode)).unwrap_err();
            assert_eq!(fix, "run `chmod 600 /etc/tokens/secrets/a`", "{why}");
        }
    }

    #[test]
    fn secrets_file_wins_over_the_token_file() {
        let p = Path::new("/t");
        let tok = |j: &str| TokenFile::parse(j.as_bytes(), p).unwrap();
        let s = SecretsFile {
            refresh_token: Secret::new("rt-secrets"),
            client_secret: Some(Secret::new("cs-secrets")),
        };
        // Left by an interrupted conversion: ignored.
        let mut t = tok(r#"{"refresh_token":"rt-old","client_secret":"cs-old"}"#);
        merge_secrets(&mut t, Some(&s), p).unwrap();
        assert_eq!(t.refresh_token.as_ref().unwrap().expose(), "rt-secrets");
        assert_eq!(
            t.overrides.client_secret.as_ref().unwrap().expose(),
            "cs-secrets"
        );
        // A split token file; the secrets file has no client secret: the
        // token file's (smtp could have added one) is not used.
        let mut t = tok(r#"{"access_token":"a","client_secret":"cs-smtp"}"#);
        let s = SecretsFile {
            client_secret: None,
            ..s
        };
        merge_secrets(&mut t, Some(&s), p).unwrap();
        assert_eq!(t.refresh_token.as_ref().unwrap().expose(), "rt-secrets");
        assert!(t.overrides.client_secret.is_none());
        // Single file: unchanged; without a refresh token, the old message.
        let mut t = tok(r#"{"refresh_token":"rt","client_secret":"cs"}"#);
        merge_secrets(&mut t, None, p).unwrap();
        assert_eq!(t.refresh_token.as_ref().unwrap().expose(), "rt");
        assert_eq!(t.overrides.client_secret.as_ref().unwrap().expose(), "cs");
        let mut t = tok(r#"{"access_token":"a"}"#);
        let e = merge_secrets(&mut t, None, p).unwrap_err().to_string();
        assert!(
            e.starts_with("token file /t: field refresh_token missing; "),
            "{e}"
        );
        assert!(e.contains("get-token"), "{e}");
    }

    #[test]
    fn client_secret_file_becomes_the_configs_secret() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let f = d.join("secret");
        std::fs::write(&f, "cs-from-file\n").unwrap();
        let cfg = |j: String| Config::parse(j.as_bytes(), Path::new("/c")).unwrap();
        let mut c = cfg(format!(r#"{{"client_secret_file":"{}"}}"#, f.display()));
        read_client_secret_file(&mut c).unwrap();
        assert_eq!(c.client_secret.as_ref().unwrap().expose(), "cs-from-file");
        let mut c = cfg(format!(
            r#"{{"client_secret_file":"{}"}}"#,
            d.join("missing").display()
        ));
        let e = read_client_secret_file(&mut c).unwrap_err().to_string();
        assert!(
            e.contains("missing") && e.contains("client_secret_file"),
            "{e}"
        );
        let mut c = cfg(r#"{"client_secret":"s"}"#.into());
        read_client_secret_file(&mut c).unwrap();
        assert_eq!(c.client_secret.as_ref().unwrap().expose(), "s");
    }
}
