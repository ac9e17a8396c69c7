//! The system interfaces `--check` needs beyond std: extended attributes
//! (the SELinux label), secure-execution mode, and whether a lock is held,
//! read from `/proc/locks` so that `--check` itself never takes the lock.
//! The only module of this crate allowed `unsafe` (lib.rs denies it
//! elsewhere).

use common::errno::{cerr, retry_eintr};
use std::ffi::{CStr, CString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// The SELinux label xattr.
pub const SELINUX_XATTR: &CStr = c"security.selinux";

/// The value of extended attribute `name` of `path` (not following a final
/// symlink); `None` when the file has none or the file system keeps none.
pub fn get_xattr(path: &Path, name: &CStr) -> io::Result<Option<Vec<u8>>> {
    let c_path = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let mut buf = vec![0u8; 256];
    loop {
        let n = retry_eintr(|| {
            // SAFETY: both strings are NUL-terminated and outlive the call;
            // the kernel writes at most `buf.len()` bytes into `buf`, which
            // is a live, writable allocation of exactly that length.
            cerr(unsafe {
                libc::lgetxattr(
                    c_path.as_ptr(),
                    name.as_ptr(),
                    buf.as_mut_ptr().cast(),
                    buf.len(),
                )
            })
        });
        match n {
            Ok(len) => {
                buf.truncate(len.unsigned_abs());
                return Ok(Some(buf));
            }
            Err(e) => match e.raw_os_error() {
                Some(libc::ENODATA) | Some(libc::EOPNOTSUPP) => return Ok(None),
                Some(libc::ERANGE) if buf.len() < 64 * 1024 => buf.resize(buf.len() * 4, 0),
                _ => return Err(e),
            },
        }
    }
}

/// Whether this process runs in secure-execution mode (setuid/setgid or
/// file capabilities), in which `$SASL_XOAUTH2_CONFIG` is ignored, as the
/// plugin and the helper ignore it.
pub fn secure_execution() -> bool {
    // SAFETY: getauxval only reads the auxiliary vector the kernel placed
    // in this process; it has no preconditions.
    unsafe { libc::getauxval(libc::AT_SECURE) != 0 }
}

/// `major` and `minor` of a `st_dev` (glibc's encoding).
pub fn dev_major_minor(dev: u64) -> (u64, u64) {
    let major = ((dev >> 8) & 0xfff) | ((dev >> 32) & 0xffff_f000);
    let minor = (dev & 0xff) | ((dev >> 12) & 0xffff_ff00);
    (major, minor)
}

/// Whether `/proc/locks` (text in `proc_locks`) shows a FLOCK lock on the
/// file with device `dev` and inode `ino`, and whether it is exclusive
/// (`WRITE`). The kernel prints `MAJ:MIN:INODE` with major and minor in hex.
pub fn flock_in_proc_locks(proc_locks: &str, dev: u64, ino: u64) -> Option<bool> {
    let (major, minor) = dev_major_minor(dev);
    let mut found = None;
    for line in proc_locks.lines() {
        let f: Vec<&str> = line.split_whitespace().collect();
        // "1: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF"; blocked waiters
        // have "->" after the number.
        let f: Vec<&str> = f.into_iter().filter(|w| *w != "->").collect();
        if f.len() < 6 || f[1] != "FLOCK" {
            continue;
        }
        let id: Vec<&str> = f[5].split(':').collect();
        let [ma, mi, ino_s] = id[..] else { continue };
        let same = u64::from_str_radix(ma, 16) == Ok(major)
            && u64::from_str_radix(mi, 16) == Ok(minor)
            && ino_s.parse::<u64>() == Ok(ino);
        if same {
            let exclusive = f[3] == "WRITE";
            found = Some(found.unwrap_or(false) || exclusive);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proc_locks_lines() {
        let text = "1: POSIX  ADVISORY  WRITE 77 fd:01:42 0 EOF\n\
                    2: FLOCK  ADVISORY  WRITE 1234 fd:01:5678 0 EOF\n\
                    2: -> FLOCK  ADVISORY  WRITE 1240 fd:01:5678 0 EOF\n\
                    3: FLOCK  ADVISORY  READ 99 08:11:9 0 EOF\n";
        // fd:01 = major 253, minor 1 -> glibc dev encoding
        let dev = (253u64 << 8) | 1;
        assert_eq!(dev_major_minor(dev), (253, 1));
        assert_eq!(flock_in_proc_locks(text, dev, 5678), Some(true));
        assert_eq!(flock_in_proc_locks(text, dev, 42), None, "POSIX lock");
        let dev2 = (8u64 << 8) | 0x11;
        assert_eq!(flock_in_proc_locks(text, dev2, 9), Some(false));
        assert_eq!(flock_in_proc_locks("", dev, 5678), None);
        // Large major/minor numbers use the high bits (glibc's makedev).
        let makedev = |ma: u64, mi: u64| {
            ((ma & 0xfff) << 8) | ((ma & !0xfff) << 32) | (mi & 0xff) | ((mi & !0xff) << 12)
        };
        assert_eq!(dev_major_minor(makedev(0x6123, 0x78945)), (0x6123, 0x78945));
        assert_eq!(dev_major_minor(makedev(253, 1)), (253, 1));
    }

    #[test]
    fn xattr_absent_is_none_and_set_one_is_read() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let f = d.join("f");
        std::fs::write(&f, b"x").unwrap();
        let name = c"user.sasl_xoauth2_test";
        assert_eq!(get_xattr(&f, name).unwrap(), None);
        let c_path = CString::new(f.as_os_str().as_bytes()).unwrap();
        let value = b"hello";
        // SAFETY: NUL-terminated strings and a buffer of the given length,
        // all alive for the call.
        let r = unsafe {
            libc::lsetxattr(
                c_path.as_ptr(),
                name.as_ptr(),
                value.as_ptr().cast(),
                value.len(),
                0,
            )
        };
        if r == 0 {
            assert_eq!(get_xattr(&f, name).unwrap().as_deref(), Some(&value[..]));
        } else {
            // user.* xattrs need file system support; the SELinux label
            // path is exercised by tests/tests/check.rs on this host.
            let e = io::Error::last_os_error();
            assert_eq!(e.raw_os_error(), Some(libc::EOPNOTSUPP), "{e}");
        }
        assert!(get_xattr(&d.join("missing"), name).is_err());
    }
}
