//! The system calls std does not wrap (or wraps only in newer Rust than our
//! MSRV): the only module of this crate allowed `unsafe` (lib.rs denies it
//! everywhere else). Raw calls are checked with `common::errno::cerr` and
//! retried on EINTR with `common::errno::retry_eintr`.
//!
//! * this file: locking, disk reservation, the inherited handoff
//!   descriptor, dumpable/secure-execution flags, user ids, held signals;
//! * [`sandbox`]: the calls behind `crate::sandbox` (descriptors, signal
//!   dispositions, prctl, rlimits, capabilities, landlock/seccomp probes).

pub mod sandbox;

use common::errno::{cerr, retry_eintr};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};

/// `flock(fd, LOCK_EX | LOCK_NB)`: Ok(true) when we got the lock, Ok(false)
/// when another process holds it.
pub fn try_lock_exclusive(file: &File) -> io::Result<bool> {
    let r = retry_eintr(|| {
        // SAFETY: flock only reads the descriptor number and flags; `file`
        // keeps the descriptor open for the duration of the call.
        cerr(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) })
    });
    match r {
        Ok(_) => Ok(true),
        Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK) => Ok(false),
        Err(e) => Err(e),
    }
}

/// `renameat2(from, to, RENAME_NOREPLACE)`: fails with `AlreadyExists`
/// instead of replacing `to`.
pub fn rename_noreplace(from: &std::path::Path, to: &std::path::Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &std::path::Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
    };
    let (from, to) = (c(from)?, c(to)?);
    retry_eintr(|| {
        // SAFETY: both pointers are NUL-terminated strings that outlive the
        // call; renameat2 only reads them.
        cerr(unsafe {
            libc::renameat2(
                libc::AT_FDCWD,
                from.as_ptr(),
                libc::AT_FDCWD,
                to.as_ptr(),
                libc::RENAME_NOREPLACE,
            )
        })
    })
    .map(drop)
}

/// Reserve `len` bytes of disk for `file` without changing its size
/// (`fallocate(FALLOC_FL_KEEP_SIZE)`), so that "disk full" shows before the
/// token request rather than after it. Ok(()) also when the file system
/// cannot reserve space (then nothing is gained, nothing lost).
pub fn reserve_space(file: &File, len: u64) -> io::Result<()> {
    let len = libc::off_t::try_from(len).unwrap_or(libc::off_t::MAX);
    let r = retry_eintr(|| {
        // SAFETY: fallocate only reads its integer arguments; `file` keeps
        // the descriptor open for the duration of the call.
        cerr(unsafe { libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, 0, len) })
    });
    match r {
        Ok(_) => Ok(()),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EOPNOTSUPP | libc::ENOSYS | libc::EINVAL)
            ) =>
        {
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Take ownership of an inherited descriptor named on the command line.
/// Fails (without taking it) when `fd` is not open.
pub fn take_inherited_fd(fd: RawFd) -> io::Result<OwnedFd> {
    if fd < 0 {
        return Err(io::Error::from_raw_os_error(libc::EBADF));
    }
    // SAFETY: F_GETFD only queries the descriptor's flags; an unknown
    // descriptor makes it fail with EBADF, nothing else happens.
    cerr(unsafe { libc::fcntl(fd, libc::F_GETFD) })?;
    // SAFETY: the descriptor is open (checked just above) and was handed to
    // this process by its parent for exactly this use; nothing else in the
    // helper refers to it, so the OwnedFd is its only owner and closes it.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Whether the process is dumpable (`PR_GET_DUMPABLE`): while it is, other
/// processes of its user may open its `/proc/PID/fd/*` and ptrace it.
pub fn dumpable() -> io::Result<bool> {
    // SAFETY: PR_GET_DUMPABLE takes no pointer arguments and only reads a
    // flag of this process.
    let r = cerr(unsafe { libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0) })?;
    Ok(r != 0)
}

/// Whether the process runs in secure-execution mode (setuid/setgid or
/// file capabilities), in which environment overrides must be ignored.
pub fn secure_execution() -> bool {
    // SAFETY: getauxval only reads the auxiliary vector the kernel placed
    // in this process; it has no preconditions.
    unsafe { libc::getauxval(libc::AT_SECURE) != 0 }
}

/// This process's id, as the kernel's `getpid` returns it (std has only
/// `process::id`, a u32).
pub fn getpid() -> libc::pid_t {
    // SAFETY: getpid has no preconditions and cannot fail.
    unsafe { libc::getpid() }
}

/// The effective user id.
pub fn euid() -> u32 {
    // SAFETY: geteuid cannot fail and has no preconditions.
    unsafe { libc::geteuid() }
}

/// Become `uid`/`gid` for good: no supplementary groups, real, effective
/// and saved ids all set (so there is no way back), then verified.
pub fn become_user(uid: u32, gid: u32) -> io::Result<()> {
    // SAFETY: setgroups with a count of 0 does not read the list pointer.
    cerr(unsafe { libc::setgroups(0, std::ptr::null()) })?;
    // SAFETY: setresgid only reads its integer arguments.
    cerr(unsafe { libc::setresgid(gid, gid, gid) })?;
    // SAFETY: setresuid only reads its integer arguments.
    cerr(unsafe { libc::setresuid(uid, uid, uid) })?;
    let (mut r, mut e, mut s) = (0, 0, 0);
    // SAFETY: getresuid writes three u32 values through pointers to locals
    // that live for the duration of the call.
    cerr(unsafe { libc::getresuid(&mut r, &mut e, &mut s) })?;
    if (r, e, s) != (uid, uid, uid) {
        return Err(io::Error::other("user ids did not change"));
    }
    Ok(())
}

/// SIGTERM, SIGHUP and SIGINT held back while a rotated refresh token
/// exists only in memory (from just before the POST until after the
/// rename); dropping it unblocks them, and one that arrived meanwhile then
/// takes its default action.
#[derive(Debug)]
pub struct StopSignalsHeld(libc::sigset_t);

pub fn hold_stop_signals() -> StopSignalsHeld {
    // SAFETY: sigemptyset/sigaddset fill the local set; sigprocmask only
    // reads it. Blocking signals cannot fail with valid arguments.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for sig in [libc::SIGTERM, libc::SIGHUP, libc::SIGINT] {
            libc::sigaddset(&mut set, sig);
        }
        libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
        StopSignalsHeld(set)
    }
}

impl Drop for StopSignalsHeld {
    fn drop(&mut self) {
        // SAFETY: unblocks the set blocked in hold_stop_signals.
        unsafe { libc::sigprocmask(libc::SIG_UNBLOCK, &self.0, std::ptr::null_mut()) };
    }
}

/// The label the kernel's LSM gives this process (an SELinux context, or an
/// AppArmor profile and its mode), for the status line: proof of the domain
/// the helper ran in. None when /proc is not visible (inside Postfix's
/// chroot) or no LSM labels processes. Read before the sandbox closes /proc.
pub fn mac_label() -> Option<String> {
    let raw = std::fs::read("/proc/thread-self/attr/current").ok()?;
    let label = String::from_utf8_lossy(&raw);
    let label = label.trim_matches(|c: char| c == '\0' || c.is_whitespace());
    (!label.is_empty()).then(|| {
        label
            .chars()
            .filter(|c| !c.is_control())
            .take(200)
            .collect()
    })
}
