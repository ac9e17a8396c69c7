//! The helper's process between `fork` and `exec`: forked by the
//! supervisor, it wires up the standard streams, closes everything else and
//! executes the helper through its descriptor. Async-signal-safe calls
//! only, no allocation.

use std::ffi::c_char;
use std::os::fd::RawFd;

/// Never returns: the helper runs, or we `_exit(126)` (descriptors) /
/// `_exit(127)` (exec failed, reason on the helper's stderr).
///
/// # Safety
/// Must only be called in a freshly forked child. All pointers stay valid
/// (they point into memory prepared before the fork, copied by it).
pub(super) unsafe fn exec(
    std_fds: [RawFd; 3],
    exe_fd: RawFd,
    argv: *const *const c_char,
    envp: *const *const c_char,
) -> ! {
    // SAFETY: only async-signal-safe syscalls follow (fcntl, dup2, close,
    // close_range, sigprocmask, execveat, write, _exit), all on
    // descriptors and memory valid in this child.
    unsafe {
        // Move every descriptor we need above 2 first: when the host had
        // fd 0 (or 1, 2) closed, a pipe end may sit on 0..2, where dup2
        // would either be a no-op that keeps close-on-exec or overwrite
        // another end.
        let high = |fd: RawFd| {
            let d = libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 10);
            if d < 0 {
                libc::_exit(126);
            }
            d
        };
        let (moved, exe) = (
            [high(std_fds[0]), high(std_fds[1]), high(std_fds[2])],
            high(exe_fd),
        );
        for (target, fd) in moved.iter().enumerate() {
            // dup2 onto another number clears close-on-exec on the copy.
            if libc::dup2(*fd, target as RawFd) < 0 {
                libc::_exit(126);
            }
        }
        // The executable on 3, close-on-exec: execveat needs it only until
        // the new image is loaded.
        if libc::dup2(exe, 3) < 0 {
            libc::_exit(126);
        }
        libc::fcntl(3, libc::F_SETFD, libc::FD_CLOEXEC);
        super::close_from(4);
        // The supervisor unblocked every signal, but a mask is inherited
        // across exec: set it empty here too rather than rely on that.
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
        libc::syscall(
            libc::SYS_execveat,
            3,
            c"".as_ptr(),
            argv,
            envp,
            libc::AT_EMPTY_PATH,
        );
        // Never by path (see spawn::Exec): say why on the helper's stderr.
        let errno = *libc::__errno_location();
        let mut msg = *b"sasl-xoauth2: execveat of the refresh helper failed: errno 000\n";
        let n = msg.len();
        for (i, d) in [errno / 100 % 10, errno / 10 % 10, errno % 10]
            .iter()
            .enumerate()
        {
            msg[n - 4 + i] = b'0' + *d as u8;
        }
        libc::write(2, msg.as_ptr().cast(), n);
        libc::_exit(127)
    }
}
