//! Writing the token file: checked before the sign-in starts, written
//! through the refresh helper's own writer (`refresher::store`: a temp file
//! created 0600 with O_EXCL beside it, fsync, link or rename, fsync of the
//! directory, the temp file removed on every error), never replacing an
//! existing file unless asked. In the split layout the secrets file
//! (`secrets/NAME` beside it) is written first, then the token file.

use crate::error::ToolError;
use common::error::FileKind;
use common::secrets::{secrets_dir, secrets_path, SecretsFile};
use common::Secret;
use refresher::store::{FileMeta, PendingFile};
use std::fs;
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::{Path, PathBuf};

/// Where the tokens go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Stdout,
    File(PathBuf),
}

/// What a new authorisation produced.
#[derive(Debug)]
pub struct NewTokens {
    pub access_token: Secret,
    pub refresh_token: Secret,
    /// Unix seconds (0 = unknown, treated as expired).
    pub expiry: i64,
}

#[derive(Debug)]
pub struct Output {
    pub target: Target,
    pub overwrite: bool,
    /// Write the split layout (refresh token in `secrets/NAME`).
    pub split: bool,
}

/// What happened, for the messages after the write.
#[derive(Debug, Default)]
pub struct Written {
    /// Things the admin should know (ownership, a replaced broken file).
    pub notes: Vec<String>,
    /// True when an existing file was replaced.
    pub replaced: bool,
}

impl Output {
    pub fn new(path: &Path, overwrite: bool) -> Output {
        let target = if path.as_os_str() == "-" {
            Target::Stdout
        } else {
            Target::File(path.to_path_buf())
        };
        Output {
            target,
            overwrite,
            split: false,
        }
    }

    /// [`Output::new`] writing the split layout.
    pub fn split(path: &Path, overwrite: bool) -> Output {
        Output {
            split: true,
            ..Output::new(path, overwrite)
        }
    }

    /// Fail now, before the user signs in, if the write cannot work.
    pub fn precheck(&self) -> Result<(), ToolError> {
        let Target::File(path) = &self.target else {
            if self.split {
                return Err(ToolError::Usage(
                    "--split needs a token file path, not - (standard output)".into(),
                ));
            }
            return Ok(());
        };
        let err = |problem: String, fix: String| ToolError::Output {
            path: path.clone(),
            problem,
            fix,
        };
        let dir = parent_dir(path);
        match fs::metadata(&dir) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(err(
                    format!("{} is not a directory", dir.display()),
                    "give a path inside a directory".into(),
                ))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Err(err(
                    format!("the directory {} does not exist", dir.display()),
                    format!(
                        "create it first (mkdir -p {}; chmod 700 it if only the mail system \
                         should read it)",
                        dir.display()
                    ),
                ))
            }
            Err(e) => {
                return Err(err(
                    format!("cannot look at {}: {e}", dir.display()),
                    "check the path".into(),
                ))
            }
        }
        match fs::symlink_metadata(path) {
            Ok(m) if m.file_type().is_symlink() => {
                return Err(err(
                    "it is a symbolic link".into(),
                    "give the path of the real file (links are refused, like the plugin \
                     and the refresh helper do)"
                        .into(),
                ))
            }
            Ok(m) if !m.is_file() => {
                return Err(err(
                    "it exists and is not a regular file".into(),
                    "choose another path".into(),
                ))
            }
            Ok(_) if !self.overwrite => return Err(ToolError::OutputExists(path.clone())),
            Ok(_) => {
                // Will be read to keep its fields: find out now if we can't.
                common::fsread::open_regular(path, FileKind::Token).map_err(|e| {
                    err(
                        e.problem.to_string(),
                        "run as a user who may read it".into(),
                    )
                })?;
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(err(e.to_string(), "check the path".into())),
        }
        // A secrets file left without its token file would win over the
        // new refresh token: replace it only when asked.
        let secrets = secrets_path(path);
        if !self.overwrite && fs::symlink_metadata(&secrets).is_ok() {
            return Err(ToolError::OutputExists(secrets));
        }
        if self.split {
            if let Ok(m) = fs::symlink_metadata(secrets_dir(path)) {
                if m.file_type().is_symlink() || !m.is_dir() {
                    return Err(err(
                        format!(
                            "{} is a symbolic link or not a directory",
                            secrets_dir(path).display()
                        ),
                        "it must be the real directory of the secrets files (mode 0700)".into(),
                    ));
                }
            }
        }
        if nix::unistd::access(&dir, nix::unistd::AccessFlags::W_OK).is_err() {
            return Err(err(
                format!("the directory {} is not writable", dir.display()),
                "run the tool as a user who may write there (e.g. with sudo)".into(),
            ));
        }
        Ok(())
    }

    /// Write the token file (or print it for `-`).
    pub fn write(&self, t: &NewTokens) -> Result<Written, ToolError> {
        match &self.target {
            Target::Stdout => {
                let bytes = authorised(None, Path::new("-"), t).map_err(|e| ToolError::Output {
                    path: "-".into(),
                    problem: e.to_string(),
                    fix: "report this bug".into(),
                })?;
                let mut out = io::stdout().lock();
                out.write_all(&bytes)
                    .and_then(|()| out.flush())
                    .map_err(|e| ToolError::Output {
                        path: "-".into(),
                        problem: e.to_string(),
                        fix: "check where standard output goes".into(),
                    })?;
                Ok(Written::default())
            }
            Target::File(path) => write_file(path, self.overwrite, self.split, t),
        }
    }
}

fn authorised(
    existing: Option<&[u8]>,
    path: &Path,
    t: &NewTokens,
) -> Result<zeroize::Zeroizing<Vec<u8>>, common::FileError> {
    common::token::authorised(existing, path, &t.access_token, t.expiry, &t.refresh_token)
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

pub(crate) fn output_err(
    path: &Path,
    problem: impl Into<String>,
    fix: impl Into<String>,
) -> ToolError {
    ToolError::Output {
        path: path.into(),
        problem: problem.into(),
        fix: fix.into(),
    }
}

/// A file we must rewrite but cannot parse: its problem and fix.
pub(crate) fn unparsable(e: common::error::FileError) -> ToolError {
    output_err(&e.path, e.problem.to_string(), e.fix())
}

/// A file being replaced: its bytes, owner and mode.
pub(crate) struct Old {
    pub bytes: zeroize::Zeroizing<Vec<u8>>,
    pub meta: FileMeta,
}

/// Read the file at `path` (no symlinks, regular, capped); None if absent.
pub(crate) fn read_old(path: &Path, kind: FileKind) -> Result<Option<Old>, ToolError> {
    let file = match common::fsread::open_regular(path, kind) {
        Ok(f) => f,
        Err(e) if e.problem == common::error::Problem::Missing => return Ok(None),
        Err(e) => {
            return Err(output_err(
                path,
                e.problem.to_string(),
                "run as a user who may read and replace it (links are refused, like the \
                 plugin and the refresh helper do)",
            ))
        }
    };
    let meta = file
        .metadata()
        .map_err(|e| output_err(path, e.to_string(), "check the file"))?;
    let bytes = common::fsread::read_all_capped(&file, common::MAX_FILE_SIZE)
        .map_err(|p| output_err(path, p.to_string(), "check that this is the right file"))?;
    Ok(Some(Old {
        bytes: zeroize::Zeroizing::new(bytes),
        meta: FileMeta::of(&meta),
    }))
}

/// Take the refresh lock of `token` (as the helper does), so that no
/// refresh rewrites the files between our read and our write. The lock
/// file gets the token's owner, so the helper (running as that user) can
/// still take it later.
pub(crate) fn lock(
    token: &Path,
    owner: Option<FileMeta>,
) -> Result<refresher::TokenLock, ToolError> {
    let owner = owner.map(|m| refresher::LockOwner {
        uid: m.uid,
        gid: m.gid,
        mode: m.mode,
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    refresher::lock_token(token, owner, deadline).map_err(|e| {
        output_err(
            token,
            e.to_string(),
            "wait for the running refresh to finish, then try again",
        )
    })
}

/// Owner and mode for a file the tool creates: ours, 0600.
fn new_file_meta() -> FileMeta {
    FileMeta {
        uid: nix::unistd::geteuid().as_raw(),
        gid: nix::unistd::getegid().as_raw(),
        mode: 0o600,
        len: 0,
    }
}

/// Write `bytes` to `path` through the helper's writer, with `meta`'s
/// owner and mode; replace an existing file only when `replace`.
pub(crate) fn store(
    path: &Path,
    meta: FileMeta,
    bytes: &[u8],
    replace: bool,
    notes: &mut Vec<String>,
) -> Result<(), ToolError> {
    let io_err = |e: refresher::store::StoreError| {
        if e.source.kind() == io::ErrorKind::AlreadyExists && !replace {
            ToolError::OutputExists(path.into())
        } else {
            output_err(
                path,
                e.to_string(),
                "check the directory's permissions and free space",
            )
        }
    };
    let pending = PendingFile::create(path, meta, bytes.len() as u64).map_err(io_err)?;
    if pending.owner_changed {
        notes.push(format!(
            "could not keep the old owner {}:{}; give the file back to the mail system's \
             user (e.g. chown postfix: {})",
            meta.uid,
            meta.gid,
            path.display()
        ));
    }
    if replace {
        pending.commit(bytes)
    } else {
        pending.commit_new(bytes)
    }
    .map_err(io_err)
}

/// The owner a secrets directory or file must have: the token file's.
fn check_owner(path: &Path, uid: u32, owner: &FileMeta) -> Result<(), ToolError> {
    if uid != owner.uid {
        return Err(output_err(
            path,
            format!(
                "it belongs to uid {uid}, the token file to uid {}",
                owner.uid
            ),
            format!(
                "check who made it; if it is right, chown {}:{} it",
                owner.uid, owner.gid
            ),
        ));
    }
    Ok(())
}

/// What is at the secrets directory's path.
#[derive(Debug, PartialEq, Eq)]
enum DirState {
    Missing,
    /// Something else than a directory: no account beside it is split.
    NotDir,
    /// A directory of the token file's owner that nobody else may write to.
    Dir,
}

/// Look at the secrets directory beside `token`, refusing a symbolic link
/// (it could point the secrets anywhere), another owner, or group/other
/// write permission.
fn secrets_dir_state(token: &Path, owner: &FileMeta) -> Result<DirState, ToolError> {
    let dir = secrets_dir(token);
    let m = match fs::symlink_metadata(&dir) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(DirState::Missing),
        Err(e) => return Err(output_err(&dir, e.to_string(), "check the path")),
    };
    if m.file_type().is_symlink() {
        return Err(output_err(
            &dir,
            "the secrets directory is a symbolic link",
            "replace it with a real directory (mode 0700, owned like the token file); links \
             are refused so that nobody can redirect the secrets",
        ));
    }
    if !m.is_dir() {
        return Ok(DirState::NotDir);
    }
    check_owner(&dir, m.uid(), owner)?;
    if m.mode() & 0o022 != 0 {
        return Err(output_err(
            &dir,
            format!(
                "the secrets directory is writable by others (mode {:o})",
                m.mode() & 0o7777
            ),
            format!("chmod 700 {}", dir.display()),
        ));
    }
    Ok(DirState::Dir)
}

/// Make sure the secrets directory beside `token` exists: created 0700 with
/// `owner`'s owner when missing, else checked as [`secrets_dir_state`] does.
fn ensure_secrets_dir(token: &Path, owner: &FileMeta) -> Result<(), ToolError> {
    let dir = secrets_dir(token);
    match secrets_dir_state(token, owner)? {
        DirState::Dir => return Ok(()),
        DirState::NotDir => {
            return Err(output_err(
                &dir,
                "it exists and is not a directory",
                "move it away: this path is where the secrets files of the tokens beside \
                 it go",
            ))
        }
        DirState::Missing => {}
    }
    fs::DirBuilder::new()
        .mode(0o700)
        .create(&dir)
        .map_err(|e| {
            output_err(
                &dir,
                format!("cannot create the secrets directory: {e}"),
                "run as a user who may write to the token file's directory",
            )
        })?;
    if nix::unistd::geteuid().is_root() {
        nix::unistd::fchownat(
            nix::fcntl::AT_FDCWD,
            &dir,
            Some(owner.uid.into()),
            Some(owner.gid.into()),
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        )
        .map_err(|e| output_err(&dir, format!("chown: {e}"), "check the directory"))?;
    }
    fs::File::open(parent_dir(token))
        .and_then(|d| d.sync_all())
        .map_err(|e| {
            output_err(
                &dir,
                format!("fsync of the directory: {e}"),
                "check the file system",
            )
        })
}

/// The account's secrets file, if it has one (the split layout); refused
/// when it or its directory is a link, when it is not a regular file, is
/// unreadable, or belongs to someone else than `owner`.
pub(crate) fn read_secrets(
    token: &Path,
    owner: &FileMeta,
) -> Result<Option<SecretsFile>, ToolError> {
    if secrets_dir_state(token, owner)? != DirState::Dir {
        return Ok(None);
    }
    let path = secrets_path(token);
    let Some(old) = read_old(&path, FileKind::Secrets)? else {
        return Ok(None);
    };
    check_owner(&path, old.meta.uid, owner)?;
    SecretsFile::parse(&old.bytes, &path)
        .map(Some)
        .map_err(unparsable)
}

/// Write the secrets file of `token` (first), creating `secrets/` if needed.
pub(crate) fn store_secrets(
    token: &Path,
    owner: &FileMeta,
    secrets: &SecretsFile,
    replace: bool,
    notes: &mut Vec<String>,
) -> Result<(), ToolError> {
    ensure_secrets_dir(token, owner)?;
    let meta = FileMeta {
        mode: 0o600,
        ..*owner
    };
    store(
        &secrets_path(token),
        meta,
        &secrets.to_json(),
        replace,
        notes,
    )
}

/// Which of two client secrets the split layout keeps: the secrets file's
/// (it is written first, so it is the newer one), else the token file's.
pub(crate) fn keep_client_secret(
    in_secrets: Option<&common::Secret>,
    in_token: Option<&common::Secret>,
    notes: &mut Vec<String>,
) -> Option<common::Secret> {
    if let (Some(s), Some(t)) = (in_secrets, in_token) {
        if s != t {
            notes.push(format!(
                "the token file's client_secret ({}) differed from the secrets file's ({}); \
                 the secrets file's is kept",
                t.fingerprint(),
                s.fingerprint()
            ));
        }
    }
    in_secrets.or(in_token).cloned()
}

fn write_file(
    path: &Path,
    overwrite: bool,
    split: bool,
    t: &NewTokens,
) -> Result<Written, ToolError> {
    let mut written = Written::default();
    let existing = fs::symlink_metadata(path).ok();
    if existing.is_some() && !overwrite {
        // Appeared since the precheck: nothing may be written, not even a
        // secrets file that would then take over that account.
        return Err(ToolError::OutputExists(path.into()));
    }
    // Replacing a file the refresh helper may be rewriting right now, or
    // writing two files: take its lock, so neither write is lost.
    let _lock = match &existing {
        Some(m) if overwrite => Some(lock(path, Some(FileMeta::of(m)))?),
        None if split || overwrite => Some(lock(path, None)?),
        _ => None,
    };
    let old = if overwrite {
        read_old(path, FileKind::Token)?
    } else {
        None
    };
    let encode_err =
        |e: common::FileError| output_err(path, format!("encoding: {e}"), "report this bug");
    let bytes = match &old {
        None => authorised(None, path, t),
        Some(o) => match authorised(Some(&o.bytes), path, t) {
            Ok(b) => Ok(b),
            Err(e) => {
                written.notes.push(format!(
                    "the old file was not a JSON object ({}), so it had no fields to keep; \
                     it was replaced whole",
                    e.problem
                ));
                authorised(None, path, t)
            }
        },
    }
    .map_err(encode_err)?;

    // Never world- or group-writable; a replaced file keeps its owner and
    // its read bits for owner and group.
    let meta = match &old {
        Some(o) => FileMeta {
            mode: (o.meta.mode & 0o640) | 0o600,
            ..o.meta
        },
        None => new_file_meta(),
    };
    // The secrets belong to the token file's owner; a new account's go to
    // the owner of an existing secrets directory (root adding an account
    // beside the mail system's others), else to us.
    let owner = match (&old, fs::symlink_metadata(secrets_dir(path))) {
        (None, Ok(m)) if m.is_dir() => FileMeta {
            uid: m.uid(),
            gid: m.gid(),
            mode: 0o600,
            len: 0,
        },
        _ => FileMeta {
            mode: 0o600,
            ..meta
        },
    };
    // An account already in the split layout stays in it: a refresh token
    // written only to the token file would be ignored by the helper.
    let old_secrets = read_secrets(path, &owner)?;
    if old_secrets.is_some() && !overwrite {
        return Err(ToolError::OutputExists(secrets_path(path)));
    }
    if old_secrets.is_some() && !split {
        written.notes.push(format!(
            "{} exists, so this account uses the split layout: the refresh token went there",
            secrets_path(path).display()
        ));
    }
    if split || old_secrets.is_some() {
        let parts = common::secrets::split_token(&bytes, path).map_err(encode_err)?;
        let secrets = SecretsFile {
            refresh_token: t.refresh_token.clone(),
            client_secret: keep_client_secret(
                old_secrets.as_ref().and_then(|s| s.client_secret.as_ref()),
                parts.client_secret.as_ref(),
                &mut written.notes,
            ),
        };
        store_secrets(
            path,
            &owner,
            &secrets,
            old_secrets.is_some(),
            &mut written.notes,
        )?;
        store(path, meta, &parts.token, old.is_some(), &mut written.notes)?;
    } else {
        store(path, meta, &bytes, old.is_some(), &mut written.notes)?;
    }
    written.replaced = old.is_some();
    if old.is_none() && nix::unistd::geteuid().is_root() {
        let also = if split {
            format!(" and chown -R postfix: {}", secrets_dir(path).display())
        } else {
            String::new()
        };
        written.notes.push(format!(
            "{} belongs to root; the refresh helper runs as the mail system's user and must \
             be able to rewrite it: chown postfix: {}{also} (inside the chroot if Postfix's \
             smtp is chrooted)",
            path.display(),
            path.display()
        ));
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn tokens() -> NewTokens {
        NewTokens {
            access_token: Secret::new("at"),
            refresh_token: Secret::new("rt"),
            expiry: 123,
        }
    }

    fn tmpdir() -> tempfile::TempDir {
        tempfile::tempdir().unwrap()
    }

    #[test]
    fn new_file_is_0600_and_parseable() {
        let d = tmpdir();
        let p = d.path().join("tok");
        let o = Output::new(&p, false);
        o.precheck().unwrap();
        let w = o.write(&tokens()).unwrap();
        assert!(!w.replaced);
        let m = fs::metadata(&p).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o600);
        let t = common::TokenFile::load(&p).unwrap();
        assert_eq!(t.expiry, 123);
        let raw = fs::read_to_string(&p).unwrap();
        assert!(raw.contains("\"expiry\": \"123\""), "{raw}");
        // No temporary file left behind.
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn existing_file_refused_without_flag() {
        let d = tmpdir();
        let p = d.path().join("tok");
        fs::write(&p, "keep me").unwrap();
        let o = Output::new(&p, false);
        assert!(matches!(o.precheck(), Err(ToolError::OutputExists(_))));
        // Even if it appears between precheck and write.
        assert!(matches!(
            o.write(&tokens()),
            Err(ToolError::OutputExists(_))
        ));
        assert_eq!(fs::read_to_string(&p).unwrap(), "keep me");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }

    #[test]
    fn overwrite_keeps_fields_and_mode_but_drops_world_bits() {
        let d = tmpdir();
        let p = d.path().join("tok");
        fs::write(&p, r#"{"refresh_token":"old","user":"u","x":1}"#).unwrap();
        fs::set_permissions(&p, fs::Permissions::from_mode(0o646)).unwrap();
        let o = Output::new(&p, true);
        o.precheck().unwrap();
        let w = o.write(&tokens()).unwrap();
        assert!(w.replaced);
        assert_eq!(fs::metadata(&p).unwrap().mode() & 0o7777, 0o640);
        let v: serde_json::Value = serde_json::from_slice(&fs::read(&p).unwrap()).unwrap();
        assert_eq!(v["user"], "u");
        assert_eq!(v["x"], 1);
        assert_eq!(v["refresh_token"], "rt");
    }

    #[test]
    fn overwrite_of_broken_file_replaces_it_with_a_note() {
        let d = tmpdir();
        let p = d.path().join("tok");
        fs::write(&p, "not json").unwrap();
        let w = Output::new(&p, true).write(&tokens()).unwrap();
        assert!(
            w.notes.iter().any(|n| n.contains("not a JSON object")),
            "{:?}",
            w.notes
        );
        common::TokenFile::load(&p).unwrap();
    }

    #[test]
    fn prechecks() {
        let d = tmpdir();
        let missing = d.path().join("nodir/tok");
        let e = Output::new(&missing, false).precheck().unwrap_err();
        assert!(e.to_string().contains("mkdir -p"), "{e}");
        let link = d.path().join("link");
        std::os::unix::fs::symlink("/etc/passwd", &link).unwrap();
        let e = Output::new(&link, true).precheck().unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        let e = Output::new(d.path(), true).precheck().unwrap_err();
        assert!(e.to_string().contains("not a regular file"), "{e}");
        assert!(Output::new(Path::new("-"), false).precheck().is_ok());
        assert_eq!(Output::new(Path::new("-"), false).target, Target::Stdout);
    }
}
