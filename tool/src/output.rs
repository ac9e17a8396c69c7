//! Writing the token file: checked before the sign-in starts, written
//! atomically (a new file in the same directory, created 0600 with O_EXCL,
//! fsync, then link or rename, then fsync of the directory), never
//! replacing an existing file unless asked.

use crate::error::ToolError;
use common::error::FileKind;
use common::Secret;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
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
        Output { target, overwrite }
    }

    /// Fail now, before the user signs in, if the write cannot work.
    pub fn precheck(&self) -> Result<(), ToolError> {
        let Target::File(path) = &self.target else {
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
            Target::File(path) => write_file(path, self.overwrite, t),
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

/// The file being replaced: its bytes, owner and mode.
struct Old {
    bytes: zeroize::Zeroizing<Vec<u8>>,
    uid: u32,
    gid: u32,
    mode: u32,
}

fn read_old(path: &Path) -> Result<Option<Old>, ToolError> {
    let file = match common::fsread::open_regular(path, FileKind::Token) {
        Ok(f) => f,
        Err(e) if e.problem == common::error::Problem::Missing => return Ok(None),
        Err(e) => {
            return Err(ToolError::Output {
                path: path.into(),
                problem: e.problem.to_string(),
                fix: "run as a user who may read and replace it".into(),
            })
        }
    };
    let meta = file.metadata().map_err(|e| ToolError::Output {
        path: path.into(),
        problem: e.to_string(),
        fix: "check the file".into(),
    })?;
    let bytes = common::fsread::read_all_capped(&file, common::MAX_FILE_SIZE).map_err(|p| {
        ToolError::Output {
            path: path.into(),
            problem: p.to_string(),
            fix: "check that this is the right file".into(),
        }
    })?;
    Ok(Some(Old {
        bytes: zeroize::Zeroizing::new(bytes),
        uid: meta.uid(),
        gid: meta.gid(),
        mode: meta.mode() & 0o7777,
    }))
}

fn write_file(path: &Path, overwrite: bool, t: &NewTokens) -> Result<Written, ToolError> {
    let io_err = |what: &str, e: io::Error| ToolError::Output {
        path: path.into(),
        problem: format!("{what}: {e}"),
        fix: "check the directory's permissions and free space".into(),
    };
    let mut written = Written::default();
    // Replacing a file the refresh helper may be rewriting right now: take
    // its lock, so neither write is lost. The lock file gets the token's
    // owner, so the helper (running as that user) can still take it later.
    let _lock = match fs::symlink_metadata(path) {
        Ok(m) if overwrite => {
            let owner = refresher::lock::LockOwner {
                uid: m.uid(),
                gid: m.gid(),
                mode: m.mode(),
            };
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            Some(
                refresher::lock::acquire(path, Some(owner), deadline).map_err(|e| {
                    ToolError::Output {
                        path: path.into(),
                        problem: e.to_string(),
                        fix: "wait for the running refresh to finish, then try again".into(),
                    }
                })?,
            )
        }
        _ => None,
    };
    let old = if overwrite { read_old(path)? } else { None };
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
    .map_err(|e| io_err("encoding", io::Error::other(e.to_string())))?;

    // Never world- or group-writable; a replaced file keeps its owner and
    // its read bits for owner and group.
    let mode = old.as_ref().map_or(0o600, |o| (o.mode & 0o640) | 0o600);
    let dir = parent_dir(path);
    let name = path
        .file_name()
        .ok_or_else(|| ToolError::Usage(format!("{} is not a file path", path.display())))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        crate::pkce::random_urlsafe(6)?
    ));
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(&tmp)
        .map_err(|e| io_err("cannot create a temporary file beside it", e))?;
    let result = (|| {
        file.set_permissions(fs::Permissions::from_mode(mode))
            .map_err(|e| io_err("chmod", e))?;
        if let Some(o) = &old {
            if let Err(e) = std::os::unix::fs::fchown(&file, Some(o.uid), Some(o.gid)) {
                written.notes.push(format!(
                    "could not keep the old owner {}:{} ({e}); give the file back to the \
                     mail system's user (e.g. chown postfix: {})",
                    o.uid,
                    o.gid,
                    path.display()
                ));
            }
        }
        file.write_all(&bytes).map_err(|e| io_err("write", e))?;
        file.sync_all().map_err(|e| io_err("fsync", e))?;
        if old.is_some() {
            fs::rename(&tmp, path).map_err(|e| io_err("rename", e))?;
            written.replaced = true;
        } else {
            publish_new(&tmp, path).map_err(|e| {
                if e.kind() == io::ErrorKind::AlreadyExists {
                    ToolError::OutputExists(path.into())
                } else {
                    io_err("link", e)
                }
            })?;
        }
        File::open(&dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| io_err("fsync of the directory", e))
    })();
    // After a rename the temporary name is gone; otherwise remove it.
    let _ = fs::remove_file(&tmp);
    result?;
    if old.is_none() && nix::unistd::geteuid().is_root() {
        written.notes.push(format!(
            "{} belongs to root; the refresh helper runs as the mail system's user and must \
             be able to rewrite it: chown postfix: {} (inside the chroot if Postfix's smtp is \
             chrooted)",
            path.display(),
            path.display()
        ));
    }
    Ok(written)
}

/// Give `tmp` the name `path` unless `path` exists: a hard link fails with
/// EEXIST atomically; where links are not supported, renameat2 with
/// RENAME_NOREPLACE does the same.
fn publish_new(tmp: &Path, path: &Path) -> io::Result<()> {
    match fs::hard_link(tmp, path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Err(e),
        Err(_) => nix::fcntl::renameat2(
            nix::fcntl::AT_FDCWD,
            tmp,
            nix::fcntl::AT_FDCWD,
            path,
            nix::fcntl::RenameFlags::RENAME_NOREPLACE,
        )
        .map_err(io::Error::from),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
