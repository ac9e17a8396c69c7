//! A refresh started by root runs as the token file's owner.
//!
//! The plugin normally starts the helper as the mail system's user (postfix)
//! and nothing here happens. When root runs it (an admin, a cron job, the
//! tool's test-token-refresh), the helper first becomes the owner of the
//! token file, before `harden_process`: so the code that talks to the
//! network never runs as root, the rewritten file and its lock file keep
//! their owner and group without needing CAP_CHOWN (all capabilities are
//! dropped by the sandbox), and root's run needs exactly the permissions
//! the plugin's run needs (a token directory the owner can write).
//!
//! A token owned by root, missing, or not a regular file: nothing changes
//! (the refresh then reports the problem as usual). Switching is a one-way
//! drop, never a gain: whoever controls the token path can at most make
//! root's refresh run as some other unprivileged user.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Whom to become: the owner of `token_path`, if it is a regular file
/// owned by someone other than root. Pure apart from one `lstat`.
pub fn target_user(token_path: &Path) -> Option<(u32, u32)> {
    let m = std::fs::symlink_metadata(token_path).ok()?;
    if !m.file_type().is_file() || m.uid() == 0 {
        return None;
    }
    Some((m.uid(), m.gid()))
}

/// Whether we run as root (effective uid 0).
pub fn is_root() -> bool {
    crate::sys::euid() == 0
}

/// When running as root, become the token file's owner. Returns the ids
/// switched to, if any.
pub fn drop_to_token_owner(token_path: &Path) -> Result<Option<(u32, u32)>, String> {
    if crate::sys::euid() != 0 {
        return Ok(None);
    }
    let Some((uid, gid)) = target_user(token_path) else {
        return Ok(None);
    };
    crate::sys::become_user(uid, gid).map_err(|e| {
        format!(
            "cannot switch to the owner (uid {uid}, gid {gid}) of {}: {e}",
            token_path.display()
        )
    })?;
    Ok(Some((uid, gid)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whom_to_become() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let f = d.join("tok");
        std::fs::write(&f, b"{}").unwrap();
        let me = std::fs::metadata(&f).unwrap();
        let expected = (me.uid() != 0).then(|| (me.uid(), me.gid()));
        assert_eq!(target_user(&f), expected);
        if crate::sys::euid() == 0 {
            std::os::unix::fs::chown(&f, Some(4242), Some(4343)).unwrap();
            assert_eq!(target_user(&f), Some((4242, 4343)));
            // A symlink to it is not followed.
            std::os::unix::fs::symlink(&f, d.join("link")).unwrap();
            assert_eq!(target_user(&d.join("link")), None);
        }
        assert_eq!(target_user(d), None, "a directory");
        assert_eq!(target_user(&d.join("missing")), None);
    }
}
