//! Crash-safe replacement of a token file.
//!
//! The new content goes to a temp file created with `O_EXCL` in the token's
//! own directory (`.<name>.tmp-<pid>-<n>`, so `rename(2)` is atomic and
//! never crosses a file system), gets the old file's owner (when we are
//! root) and mode, is written and `fsync`ed, renamed over the token, and
//! then the directory is `fsync`ed so the rename itself is durable.
//!
//! A kill at any instant leaves either the old or the new complete file.
//! A temp file left by a killed helper is removed by the next helper, which
//! does it under the token's lock ([`remove_stale_temps`]), when no live
//! helper can be writing one. On every error path the temp file is removed
//! ([`PendingFile`]'s `Drop`).
//!
//! The temp file is created, and disk space reserved, *before* the token
//! request: a rotating provider invalidates the old refresh token as soon as
//! it answers, so everything that can fail should fail before we ask it.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Owner and permissions of the file being replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMeta {
    pub uid: u32,
    pub gid: u32,
    /// Permission bits (`& 0o777`).
    pub mode: u32,
    pub len: u64,
}

impl FileMeta {
    pub fn of(meta: &std::fs::Metadata) -> FileMeta {
        FileMeta {
            uid: meta.uid(),
            gid: meta.gid(),
            mode: meta.mode() & 0o777,
            len: meta.len(),
        }
    }
}

/// Prefix of our temp files for `target`: `.<name>.tmp-`.
pub fn temp_prefix(target: &Path) -> String {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!(".{name}.tmp-")
}

fn dir_of(target: &Path) -> PathBuf {
    match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// Whether `name` is exactly one of our temp file names for the token
/// whose [`temp_prefix`] is `prefix`: `<prefix><pid>-<n>`. A prefix match
/// alone is not enough: token `a`'s prefix `.a.tmp-` also starts the live
/// temp files of a token named `a.tmp-5` (`.a.tmp-5.tmp-<pid>-<n>`).
fn is_temp_of(name: &str, prefix: &str) -> bool {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    name.strip_prefix(prefix)
        .and_then(|rest| rest.split_once('-'))
        .is_some_and(|(pid, n)| digits(pid) && digits(n))
}

/// Remove temp files a killed helper left beside `target`. Call only while
/// holding the token's lock. Returns how many were removed.
pub fn remove_stale_temps(target: &Path) -> io::Result<usize> {
    let prefix = temp_prefix(target);
    let mut removed = 0;
    for entry in std::fs::read_dir(dir_of(target))? {
        let entry = entry?;
        if is_temp_of(&entry.file_name().to_string_lossy(), &prefix) && entry.file_type()?.is_file()
        {
            match std::fs::remove_file(entry.path()) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
    }
    Ok(removed)
}

/// What went wrong while replacing the file, and at which step.
#[derive(Debug)]
pub struct StoreError {
    pub step: &'static str,
    pub path: PathBuf,
    pub source: io::Error,
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cannot {} {}: {}",
            self.step,
            self.path.display(),
            self.source
        )
    }
}

/// A temp file ready to become the new token file. Dropping it without
/// [`PendingFile::commit`] removes it.
#[derive(Debug)]
pub struct PendingFile {
    target: PathBuf,
    tmp: PathBuf,
    file: Option<File>,
    dir: File,
    /// Whether the old owner could not be kept (we are not root and the file
    /// belonged to someone else).
    pub owner_changed: bool,
}

impl PendingFile {
    /// Create the temp file beside `target` with `old`'s owner and mode and
    /// reserve `reserve` bytes for it.
    pub fn create(target: &Path, old: FileMeta, reserve: u64) -> Result<PendingFile, StoreError> {
        let dir_path = dir_of(target);
        let err = |step, path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError { step, path, source }
        };
        let dir = OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(&dir_path)
            .map_err(err("open the directory", &dir_path))?;
        let prefix = temp_prefix(target);
        let pid = std::process::id();
        let mut n = 0u32;
        let (tmp, file) = loop {
            let tmp = dir_path.join(format!("{prefix}{pid}-{n}"));
            match OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
                .open(&tmp)
            {
                Ok(f) => break (tmp, f),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && n < 100 => n += 1,
                Err(e) => return Err(err("create a temp file in", &dir_path)(e)),
            }
        };
        let mut pending = PendingFile {
            target: target.to_path_buf(),
            tmp,
            file: Some(file),
            dir,
            owner_changed: false,
        };
        pending.set_owner_and_mode(old)?;
        let f = pending.file.as_ref().expect("just created");
        crate::sys::reserve_space(f, reserve).map_err(err("reserve disk space for", target))?;
        Ok(pending)
    }

    fn set_owner_and_mode(&mut self, old: FileMeta) -> Result<(), StoreError> {
        let f = self.file.as_ref().expect("open until commit");
        let meta = f.metadata().map_err(|source| StoreError {
            step: "inspect",
            path: self.tmp.clone(),
            source,
        })?;
        if (meta.uid(), meta.gid()) != (old.uid, old.gid) {
            // Root keeps the owner; anyone else may still keep the group if
            // they belong to it. A changed owner is reported, not fatal: the
            // new owner is the user the refresh runs as, who could read the
            // file anyway.
            let full = std::os::unix::fs::fchown(f, Some(old.uid), Some(old.gid));
            if full.is_err() {
                let _ = std::os::unix::fs::fchown(f, None, Some(old.gid));
                self.owner_changed = meta.uid() != old.uid;
            }
        }
        f.set_permissions(std::fs::Permissions::from_mode(old.mode & 0o777))
            .map_err(|source| StoreError {
                step: "set the mode of",
                path: self.tmp.clone(),
                source,
            })
    }

    /// Write `bytes`, make them durable and atomically replace the target.
    pub fn commit(self, bytes: &[u8]) -> Result<(), StoreError> {
        self.publish(bytes, false)
    }

    /// Like [`PendingFile::commit`], but never replaces an existing target:
    /// then the error's `source` is `AlreadyExists` and nothing changed.
    pub fn commit_new(self, bytes: &[u8]) -> Result<(), StoreError> {
        self.publish(bytes, true)
    }

    fn publish(mut self, bytes: &[u8], new: bool) -> Result<(), StoreError> {
        let mut f = self.file.take().expect("commit runs once");
        let tmp = self.tmp.clone();
        let at = |step: &'static str, path: &Path| {
            let path = path.to_path_buf();
            move |source| StoreError { step, path, source }
        };
        f.write_all(bytes).map_err(at("write", &tmp))?;
        f.sync_all().map_err(at("flush to disk", &tmp))?;
        drop(f);
        if new {
            // A hard link fails with EEXIST atomically; where links are not
            // supported, renameat2(RENAME_NOREPLACE) does the same.
            match std::fs::hard_link(&tmp, &self.target) {
                Ok(()) => {
                    let _ = std::fs::remove_file(&tmp);
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    return Err(at("create", &self.target)(e))
                }
                Err(_) => crate::sys::rename_noreplace(&tmp, &self.target)
                    .map_err(at("create", &self.target))?,
            }
        } else {
            std::fs::rename(&tmp, &self.target).map_err(at("replace", &self.target))?;
        }
        // From here on the new file is in place: nothing to clean up.
        self.tmp = PathBuf::new();
        self.dir
            .sync_all()
            .map_err(at("flush the directory entry of", &self.target))
    }
}

/// Replace `target` atomically with `doc` as a token file's bytes
/// ([`common::token::file_bytes`]: a buffer that never grew, wiped on drop,
/// and every string of `doc` wiped), keeping `old`'s owner (when we may)
/// and mode, as [`PendingFile`] does. Returns whether the owner could not
/// be kept.
pub fn write_json(
    target: &Path,
    doc: serde_json::Value,
    old: FileMeta,
) -> Result<bool, StoreError> {
    let bytes = common::token::file_bytes(doc);
    let pending = PendingFile::create(target, old, bytes.len() as u64)?;
    let owner_changed = pending.owner_changed;
    pending.commit(&bytes)?;
    Ok(owner_changed)
}

impl Drop for PendingFile {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(d: &Path) -> Vec<String> {
        let mut v: Vec<_> = std::fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    }

    #[test]
    fn replaces_keeping_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let t = d.join("tok.json");
        std::fs::write(&t, b"old").unwrap();
        std::fs::set_permissions(&t, std::fs::Permissions::from_mode(0o640)).unwrap();
        let meta = FileMeta::of(&std::fs::metadata(&t).unwrap());
        let p = PendingFile::create(&t, meta, 4096).unwrap();
        assert_eq!(entries(d).len(), 2);
        p.commit(b"new").unwrap();
        assert_eq!(std::fs::read(&t).unwrap(), b"new");
        let m = std::fs::metadata(&t).unwrap();
        assert_eq!(m.mode() & 0o777, 0o640);
        assert_eq!(m.len(), 3, "reserved space must not show as file size");
        assert_eq!(entries(d), ["tok.json"]);
    }

    #[test]
    fn commit_new_never_replaces() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let t = d.join("tok.json");
        let meta = FileMeta::of(&std::fs::metadata(d).unwrap());
        let meta = FileMeta {
            mode: 0o600,
            ..meta
        };
        PendingFile::create(&t, meta, 0)
            .unwrap()
            .commit_new(b"first")
            .unwrap();
        assert_eq!(std::fs::metadata(&t).unwrap().mode() & 0o777, 0o600);
        let e = PendingFile::create(&t, meta, 0)
            .unwrap()
            .commit_new(b"second")
            .unwrap_err();
        assert_eq!(e.source.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read(&t).unwrap(), b"first");
        assert_eq!(entries(d), ["tok.json"]);
        let other = d.join("other");
        crate::sys::rename_noreplace(&t, &other).unwrap();
        std::fs::write(&t, b"x").unwrap();
        let e = crate::sys::rename_noreplace(&t, &other).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::AlreadyExists);
    }

    #[test]
    fn json_document_replaces_keeping_mode() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let t = d.join("tok.json");
        std::fs::write(&t, b"{}").unwrap();
        std::fs::set_permissions(&t, std::fs::Permissions::from_mode(0o600)).unwrap();
        let meta = FileMeta::of(&std::fs::metadata(&t).unwrap());
        let doc = serde_json::json!({"refresh_token": "r", "n": [1, 2]});
        assert!(!write_json(&t, doc.clone(), meta).unwrap());
        let back: serde_json::Value = serde_json::from_slice(&std::fs::read(&t).unwrap()).unwrap();
        assert_eq!(back, doc);
        assert!(std::fs::read(&t).unwrap().ends_with(b"}\n"));
        assert_eq!(
            std::fs::metadata(&t).unwrap().mode() & 0o777,
            0o600,
            "mode kept"
        );
        assert_eq!(entries(d), ["tok.json"]);
    }

    #[test]
    fn dropped_pending_file_leaves_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let t = d.join("tok.json");
        std::fs::write(&t, b"old").unwrap();
        let meta = FileMeta::of(&std::fs::metadata(&t).unwrap());
        drop(PendingFile::create(&t, meta, 0).unwrap());
        assert_eq!(entries(d), ["tok.json"]);
        assert_eq!(std::fs::read(&t).unwrap(), b"old");
    }

    #[test]
    fn stale_temps_are_removed_others_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let t = d.join("tok.json");
        std::fs::write(&t, b"x").unwrap();
        std::fs::write(d.join(".tok.json.tmp-123-0"), b"partial").unwrap();
        std::fs::write(d.join(".tok.json.tmp-9-4"), b"").unwrap();
        std::fs::write(d.join(".other.json.tmp-1-0"), b"").unwrap();
        std::fs::write(d.join(".tok.json.lock"), b"").unwrap();
        // The live temp file of a token named `tok.json.tmp-5`, and names
        // that only look like ours.
        std::fs::write(d.join(".tok.json.tmp-5.tmp-77-0"), b"live").unwrap();
        std::fs::write(d.join(".tok.json.tmp-1-2-3"), b"").unwrap();
        std::fs::write(d.join(".tok.json.tmp--0"), b"").unwrap();
        assert_eq!(remove_stale_temps(&t).unwrap(), 2);
        assert_eq!(
            entries(d),
            [
                ".other.json.tmp-1-0",
                ".tok.json.lock",
                ".tok.json.tmp--0",
                ".tok.json.tmp-1-2-3",
                ".tok.json.tmp-5.tmp-77-0",
                "tok.json"
            ]
        );
    }

    #[test]
    fn unwritable_directory_fails_before_anything() {
        let e = PendingFile::create(
            Path::new("/proc/no-such-dir/tok.json"),
            FileMeta {
                uid: 0,
                gid: 0,
                mode: 0o600,
                len: 0,
            },
            0,
        )
        .unwrap_err();
        assert_eq!(e.step, "open the directory");
    }
}
