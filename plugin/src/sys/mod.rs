//! The plugin's raw system calls. With `ffi` (the libsasl2 ABI) the only
//! code allowed `unsafe` (`#![deny(unsafe_code)]` at the crate root); every
//! block says just above it why it is sound.
//!
//! Most of it is the code of the processes that run the refresh helper (see
//! the diagram in [`crate::spawn`]), one module per process:
//!
//! - this file: what the host (smtp) calls: the first `fork`, reaping the
//!   intermediate child, the helper's pipes and handoff socket, and small
//!   wrappers;
//! - [`intermediate`]: the intermediate child, gone at once;
//! - [`supervisor`]: the supervisor, **the no-allocation zone**;
//! - [`child`]: the helper's process between `fork` and `exec`.
//!
//! Everything between `fork` and `exec`/`_exit` uses only
//! async-signal-safe system calls on memory prepared before the first fork,
//! because the host may be multi-threaded: a lock held by another host
//! thread (malloc's, for one) stays locked forever in the copy.

mod child;
mod intermediate;
mod supervisor;

use crate::spawn::report::Termination;
use common::errno::{cerr, retry_eintr};
use std::ffi::{c_char, c_int, CString};
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::time::Duration;

/// Whether we run in secure-execution mode (setuid/setgid/capabilities
/// gained at exec), where the environment must not choose our config.
pub(crate) fn secure_execution() -> bool {
    // SAFETY: getauxval has no preconditions; it reads the auxiliary vector.
    unsafe { libc::getauxval(libc::AT_SECURE) != 0 }
}

pub(crate) fn geteuid() -> u32 {
    // SAFETY: geteuid cannot fail.
    unsafe { libc::geteuid() }
}

/// `flock(LOCK_SH | LOCK_NB)` on `file`: never blocks; released when the
/// file is closed.
pub(crate) fn try_lock_shared(file: &std::fs::File) -> io::Result<()> {
    // SAFETY: the descriptor stays open for the call (borrowed from `file`).
    cerr(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_SH | libc::LOCK_NB) }).map(drop)
}

/// `flock(LOCK_EX | LOCK_NB)`, as the helper locks: for tests of the probe.
#[cfg(test)]
pub(crate) fn try_lock_exclusive(file: &std::fs::File) -> io::Result<()> {
    // SAFETY: the descriptor stays open for the call (borrowed from `file`).
    cerr(unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) }).map(drop)
}

/// Whether `fd` is readable (or at EOF/error) within `timeout_ms`. False
/// on timeout and on EINTR. Async-signal-safe.
pub(crate) fn readable(fd: RawFd, timeout_ms: c_int) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: a single valid pollfd; poll only reports on the descriptor.
    unsafe { libc::poll(&mut p, 1, timeout_ms) > 0 }
}

/// A poll(2) timeout: `d` in milliseconds, rounded up (no busy loop in the
/// last millisecond) and capped. No allocation.
pub(crate) fn poll_ms(d: Duration) -> c_int {
    d.as_nanos().div_ceil(1_000_000).min(c_int::MAX as u128) as c_int
}

/// A one-way channel: a pipe, or the handoff socket used as one.
struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
}

fn pipe() -> io::Result<Pipe> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: fds is a valid array of two ints for pipe2 to fill.
    cerr(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) })?;
    // SAFETY: both descriptors were just created and are owned by nothing else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    Ok(Pipe { read, write })
}

/// The helper's stdin, which carries the handoff: a connected pair of unix
/// stream sockets made one-way (the helper's end cannot send), used like a
/// pipe. Unlike a pipe, a socket cannot be reopened through
/// `/proc/PID/fd/0` (ENXIO), so no other process of the helper's uid can
/// get a descriptor for it that way, even while the helper is dumpable.
fn handoff_socket() -> io::Result<Pipe> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: fds is a valid array of two ints for socketpair to fill.
    cerr(unsafe {
        libc::socketpair(
            libc::AF_UNIX,
            libc::SOCK_STREAM | libc::SOCK_CLOEXEC,
            0,
            fds.as_mut_ptr(),
        )
    })?;
    // SAFETY: both descriptors were just created and are owned by nothing else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    // SAFETY: shutdown on a socket we own; for a stream pair this also ends
    // reading on the other end.
    cerr(unsafe { libc::shutdown(read.as_raw_fd(), libc::SHUT_WR) })?;
    Ok(Pipe { read, write })
}

/// argv and envp as C arrays, built before fork.
struct Argv {
    _args: Vec<CString>,
    ptrs: Vec<*const c_char>,
}

impl Argv {
    fn new(args: &[CString]) -> Argv {
        let args = args.to_vec();
        let mut ptrs: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
        ptrs.push(std::ptr::null());
        Argv { _args: args, ptrs }
    }
}

/// Start the helper under a supervisor; returns the read end of the
/// supervisor's report pipe. Runs in the host: everything the processes
/// after `fork` need is prepared here, before it.
pub(crate) fn spawn_supervised(
    exe: BorrowedFd<'_>,
    args: &[CString],
    input: &[u8],
    safety: Duration,
) -> io::Result<OwnedFd> {
    let (stdin, stdout, stderr, report) = (handoff_socket()?, pipe()?, pipe()?, pipe()?);
    let argv = Argv::new(args);
    let envp: [*const c_char; 1] = [std::ptr::null()];
    let plan = supervisor::Plan {
        helper_ends: [
            stdin.read.as_raw_fd(),
            stdout.write.as_raw_fd(),
            stderr.write.as_raw_fd(),
        ],
        own_ends: [
            stdin.write.as_raw_fd(),
            stdout.read.as_raw_fd(),
            stderr.read.as_raw_fd(),
        ],
        report: report.write.as_raw_fd(),
        exe: exe.as_raw_fd(),
        argv: argv.ptrs.as_ptr(),
        envp: envp.as_ptr(),
        input,
        safety,
    };
    // SAFETY: fork has no preconditions. The intermediate child and the
    // supervisor make only async-signal-safe calls on `plan` (built above)
    // and end in exec or _exit (see the module docs).
    let first = cerr(unsafe { libc::fork() })?;
    if first == 0 {
        // SAFETY: this is the freshly forked child; `plan` and what it
        // points to were copied with the host's memory.
        unsafe { intermediate::run(&plan) }
    }
    drop((stdin, stdout, stderr));
    // The intermediate child exits at once; reap it so it is no zombie.
    reap(first, true);
    Ok(report.read)
}

/// Reap our child `pid`: `Some` once it has ended. `block` waits for it.
/// Async-signal-safe (the supervisor uses it too).
fn reap(pid: libc::pid_t, block: bool) -> Option<Termination> {
    let flags = if block { 0 } else { libc::WNOHANG };
    let mut status = 0;
    loop {
        // SAFETY: status is a valid int for waitpid to fill.
        match retry_eintr(|| cerr(unsafe { libc::waitpid(pid, &mut status, flags) })) {
            Ok(0) => return None,
            Ok(_) if libc::WIFEXITED(status) => {
                return Some(Termination::Exited(libc::WEXITSTATUS(status)))
            }
            Ok(_) if libc::WIFSIGNALED(status) => {
                return Some(Termination::Signaled(libc::WTERMSIG(status)))
            }
            Ok(_) => continue, // stopped/continued: keep waiting
            // The host ignores SIGCHLD: the kernel reaped it already.
            Err(_) => return Some(Termination::Unknown),
        }
    }
}

/// Close `fd` if open, once (then marked -1). Async-signal-safe.
fn close(fd: &mut RawFd) {
    if *fd >= 0 {
        // SAFETY: closing a descriptor this process owns; -1 afterwards
        // so it is never closed twice.
        unsafe { libc::close(*fd) };
        *fd = -1;
    }
}

/// Close every descriptor not in `keep` (negative entries ignored).
/// Async-signal-safe: sorts in place, no allocation.
fn close_all_except(keep: &mut [RawFd]) {
    keep.sort_unstable();
    let mut from: RawFd = 0;
    for &fd in keep.iter().filter(|fd| **fd >= 0) {
        close_range(from, fd - 1);
        from = fd + 1;
    }
    close_from(from);
}

/// Close `first..=last`. Without close_range(2) (kernels before 5.9, such
/// as RHEL 8 and Ubuntu 20.04), one close per descriptor. Async-signal-safe.
fn close_range(first: RawFd, last: RawFd) {
    if first > last {
        return;
    }
    // SAFETY: closes a range of descriptors in this (forked) process, none
    // of which anything here uses afterwards.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            last as libc::c_uint,
            0 as libc::c_uint,
        )
    };
    if rc < 0 {
        close_range_by_loop(first, last + 1);
    }
}

/// Close every descriptor from `first` up. The fallback loop ends at the
/// highest descriptor the process may have: the larger of the soft and
/// hard RLIMIT_NOFILE (capped at 2^20; a descriptor opened before a limit
/// was lowered can sit above the soft one). Async-signal-safe.
fn close_from(first: RawFd) {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit fills the local `lim`.
    let top = if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } == 0 {
        lim.rlim_cur.max(lim.rlim_max).min(1 << 20) as RawFd
    } else {
        1 << 20
    };
    // SAFETY: closes a range of descriptors in this (forked) process, none
    // of which anything here uses afterwards.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first as libc::c_uint,
            libc::c_uint::MAX,
            0 as libc::c_uint,
        )
    };
    if rc < 0 {
        close_range_by_loop(first, top);
    }
}

fn close_range_by_loop(first: RawFd, end: RawFd) {
    for fd in first..end {
        // SAFETY: closing a descriptor number; EBADF for unused ones.
        unsafe { libc::close(fd) };
    }
}
