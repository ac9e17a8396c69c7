//! Single-flight: one refresh per token file at a time.
//!
//! The lock is an exclusive `flock(2)` on a lock file beside the token,
//! `.<token file name>.lock` in the token's directory:
//!
//! * never on the token file itself, because the refresh replaces it by
//!   `rename(2)`: a process waiting on the old inode would get a lock on a
//!   file nobody else uses any more;
//! * never on the directory, so that two token files in one directory do
//!   not wait for each other;
//! * the lock file is created on first use and never removed (removing it
//!   would let two processes lock two different inodes of the same name).
//!   It is empty; it gets the token file's owner (when we run as root) and
//!   its mode, so whoever may read the token may also take its lock, and
//!   nobody else can;
//! * `flock` locks die with the process, so a killed helper never leaves
//!   the token locked;
//! * waiting polls `LOCK_NB` until a deadline instead of blocking, so a
//!   stuck holder cannot hang us beyond the refresh timeout and no signal or
//!   thread is needed to time out.
//!
//! Everything that changes the token file happens under this lock: the
//! re-read, the request (which may consume a refresh token the provider
//! rotates), the atomic rewrite and the clean-up of stale temp files.
//!
//! The file's content, when not empty, is the retry marker of the last
//! helper that gave up on a failing endpoint ([`crate::retry::Marker`]),
//! read and cleared by the next holder before lock-down and written,
//! through the descriptor already open, after a failure.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

pub use common::token::lock_path;

/// A held lock; released when dropped (or when the process dies).
#[derive(Debug)]
pub struct TokenLock {
    file: File,
    /// Opened for writing too (always, unless the file belongs to someone
    /// else): then it carries the retry marker.
    writable: bool,
    pub path: PathBuf,
}

impl TokenLock {
    /// Read the retry marker and empty the file, leaving the descriptor at
    /// offset 0 for [`TokenLock::store_marker`]. Call before lock-down.
    pub fn take_marker(&mut self, now_ms: i64) -> Option<crate::retry::Marker> {
        use std::io::{Read, Seek};
        let mut buf = [0u8; 64];
        let n = (&self.file)
            .take(buf.len() as u64)
            .read(&mut buf)
            .unwrap_or(0);
        if self.writable && (self.file.set_len(0).is_err() || self.file.rewind().is_err()) {
            self.writable = false;
        }
        crate::retry::Marker::parse(&buf[..n], now_ms)
    }

    /// Leave `marker` for the next holder: one write(2) on the open
    /// descriptor, so it works after lock-down. Best effort: a marker that
    /// cannot be written only costs the next helper its head start.
    pub fn store_marker(&mut self, marker: &crate::retry::Marker) {
        use std::io::Write;
        if self.writable {
            let _ = self.file.write_all(marker.encode().as_bytes());
        }
    }
}

#[derive(Debug)]
pub enum LockError {
    /// Another process held the lock until the deadline.
    Timeout { path: PathBuf, waited: Duration },
    /// The lock file could not be opened or created.
    Open { path: PathBuf, source: io::Error },
    /// The lock path exists but is not a regular file.
    NotRegular { path: PathBuf },
}

impl LockError {
    /// What went wrong.
    pub fn what(&self) -> String {
        match self {
            LockError::Timeout { path, waited } => format!(
                "another refresh of this token still holds {} after {} s",
                path.display(),
                waited.as_secs()
            ),
            LockError::Open { path, source } => {
                format!("cannot open the lock file {}: {source}", path.display())
            }
            LockError::NotRegular { path } => format!("{} is not a regular file", path.display()),
        }
    }

    /// What to do next.
    pub fn fix(&self) -> String {
        match self {
            LockError::Timeout { .. } => "try again later",
            LockError::Open { .. } => {
                "the token's directory must be writable by the user running the refresh"
            }
            LockError::NotRegular { .. } => "remove it (it is recreated as an empty lock file)",
        }
        .into()
    }
}

impl std::fmt::Display for LockError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}; {}", self.what(), self.fix())
    }
}

/// Owner and mode the lock file should get when we create it.
#[derive(Debug, Clone, Copy)]
pub struct LockOwner {
    pub uid: u32,
    pub gid: u32,
    pub mode: u32,
}

/// Take the exclusive lock for `token_path`, polling until `deadline`.
pub fn acquire(
    token_path: &Path,
    owner: Option<LockOwner>,
    deadline: Instant,
) -> Result<TokenLock, LockError> {
    let path = lock_path(token_path);
    let (file, writable) = open_lock_file(&path, owner)?;
    let start = Instant::now();
    let mut pause = Duration::from_millis(2);
    loop {
        match crate::sys::try_lock_exclusive(&file) {
            Ok(true) => {
                return Ok(TokenLock {
                    file,
                    writable,
                    path,
                })
            }
            Ok(false) => {}
            Err(source) => return Err(LockError::Open { path, source }),
        }
        let now = Instant::now();
        if now >= deadline {
            return Err(LockError::Timeout {
                path,
                waited: now - start,
            });
        }
        std::thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

fn open_lock_file(path: &Path, owner: Option<LockOwner>) -> Result<(File, bool), LockError> {
    let err = |source| LockError::Open {
        path: path.to_path_buf(),
        source,
    };
    let flags = libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY | libc::O_CLOEXEC;
    let mode = owner.map_or(0o600, |o| (o.mode & 0o666) | 0o600);
    // Create it if absent; O_EXCL tells us whether we created it, so we set
    // owner and mode only on a file of our own making.
    let opened = match OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(mode)
        .custom_flags(flags)
        .open(path)
    {
        Ok(f) => {
            if let Some(o) = owner {
                if crate::sys::euid() == 0 {
                    std::os::unix::fs::fchown(&f, Some(o.uid), Some(o.gid)).map_err(err)?;
                }
                use std::os::unix::fs::PermissionsExt;
                f.set_permissions(std::fs::Permissions::from_mode(mode))
                    .map_err(err)?;
            }
            (f, true)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            // flock works on a read-only descriptor too, which is all we
            // need when the file belongs to someone else but is readable
            // (there is then no retry marker).
            let open = |write| {
                OpenOptions::new()
                    .read(true)
                    .write(write)
                    .custom_flags(flags)
                    .open(path)
            };
            match open(true) {
                Ok(f) => (f, true),
                Err(_) => (
                    open(false).map_err(|e| {
                        if e.raw_os_error() == Some(libc::ELOOP) {
                            LockError::NotRegular {
                                path: path.to_path_buf(),
                            }
                        } else {
                            err(e)
                        }
                    })?,
                    false,
                ),
            }
        }
        Err(e) => return Err(err(e)),
    };
    let meta = opened.0.metadata().map_err(err)?;
    if !meta.file_type().is_file() {
        return Err(LockError::NotRegular {
            path: path.to_path_buf(),
        });
    }
    Ok(opened)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_file_name() {
        assert_eq!(
            lock_path(Path::new("/etc/tokens/a@b.json")),
            Path::new("/etc/tokens/.a@b.json.lock")
        );
    }

    #[test]
    fn exclusive_with_deadline() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let token = d.join("tok");
        let owner = LockOwner {
            uid: 0,
            gid: 0,
            mode: 0o640,
        };
        let held = acquire(&token, Some(owner), Instant::now() + Duration::from_secs(1)).unwrap();
        // flock locks belong to the open file description: a second open in
        // this process conflicts just as another process would.
        let e = acquire(&token, None, Instant::now() + Duration::from_millis(30)).unwrap_err();
        assert!(matches!(e, LockError::Timeout { .. }), "{e}");
        drop(held);
        acquire(&token, None, Instant::now()).unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(lock_path(&token))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o640);
    }

    #[test]
    fn refuses_symlink_and_directory() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let token = d.join("tok");
        std::os::unix::fs::symlink("/etc/passwd", lock_path(&token)).unwrap();
        let e = acquire(&token, None, Instant::now()).unwrap_err();
        assert!(matches!(e, LockError::NotRegular { .. }), "{e}");
        std::fs::remove_file(lock_path(&token)).unwrap();
        std::fs::create_dir(lock_path(&token)).unwrap();
        let e = acquire(&token, None, Instant::now()).unwrap_err();
        assert!(
            matches!(e, LockError::NotRegular { .. } | LockError::Open { .. }),
            "{e}"
        );
    }
}
