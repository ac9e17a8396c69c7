//! The supervisor: **the no-allocation zone.** It runs in a copy of the
//! (possibly multi-threaded) host made by `fork`, so until it `_exit`s it
//! makes only async-signal-safe system calls on memory prepared before the
//! first fork ([`Plan`]) or on its own stack: no allocation, no locks, no
//! drop glue.
//!
//! It is an orphan in its own session (init reaps it), holds no descriptor
//! of the host but its pipes, the handoff socket and the helper's
//! executable, and ignores SIGPIPE. It forks the helper
//! ([`super::child`]), hands it the config over the socket once the helper
//! says it is non-dumpable, drains its output, reaps it (killing it only at
//! the safety deadline), and writes one [`report`](crate::spawn::report) to
//! the host.

use super::{close, close_all_except, readable, reap};
use crate::spawn::report::{self, Termination, CAPTURE};
use common::errno::{cerr, retry_eintr};
use common::handoff::READY;
use std::ffi::c_char;
use std::io;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

/// What the processes after the host's `fork` use, built before it.
pub(super) struct Plan<'a> {
    /// stdin (the handoff socket), stdout, stderr (pipes) as the helper
    /// gets them.
    pub helper_ends: [RawFd; 3],
    /// The supervisor's ends of those.
    pub own_ends: [RawFd; 3],
    /// The write end of the report pipe.
    pub report: RawFd,
    /// The helper executable (`O_PATH`).
    pub exe: RawFd,
    pub argv: *const *const c_char,
    pub envp: *const *const c_char,
    /// The handoff for the helper's stdin.
    pub input: &'a [u8],
    /// When to kill a helper that is still running.
    pub safety: Duration,
}

/// # Safety
/// Only in the freshly forked supervisor, with `plan` built before the
/// host's fork.
pub(super) unsafe fn run(plan: &Plan) -> ! {
    let mut keep = [
        plan.helper_ends[0],
        plan.helper_ends[1],
        plan.helper_ends[2],
        plan.own_ends[0],
        plan.own_ends[1],
        plan.own_ends[2],
        plan.report,
        plan.exe,
    ];
    close_all_except(&mut keep);
    reset_signals();
    // SAFETY: fork has no preconditions; the child branch only calls
    // child::exec, which keeps to the same rules as this module.
    let pid = unsafe { libc::fork() };
    if pid == 0 {
        // SAFETY: the freshly forked child; argv/envp point into memory
        // prepared before the host's fork, copied by both forks.
        unsafe { super::child::exec(plan.helper_ends, plan.exe, plan.argv, plan.envp) }
    }
    for mut fd in plan.helper_ends {
        close(&mut fd);
    }
    if pid > 0 {
        let child = Child {
            pid,
            pidfd: pidfd_open(pid),
            stdin: plan.own_ends[0],
            stdout: plan.own_ends[1],
            stderr: plan.own_ends[2],
        };
        let mut cap = Capture {
            out: [0; CAPTURE],
            out_len: 0,
            err: [0; CAPTURE],
            err_len: 0,
        };
        let how = wait_child(&child, plan.input, plan.safety, &mut cap);
        report::encode(
            how,
            &cap.out[..cap.out_len],
            &cap.err[..cap.err_len],
            |piece| write_all(plan.report, piece),
        );
    }
    // SAFETY: _exit is async-signal-safe and ends only this process.
    unsafe { libc::_exit(0) }
}

/// The running helper. Raw descriptors, closed by `wait_child`.
struct Child {
    pid: libc::pid_t,
    /// -1 without pidfd_open (kernel < 5.3).
    pidfd: RawFd,
    stdin: RawFd,
    stdout: RawFd,
    stderr: RawFd,
}

/// Output captured into fixed buffers (no allocation).
struct Capture {
    out: [u8; CAPTURE],
    out_len: usize,
    err: [u8; CAPTURE],
    err_len: usize,
}

fn pidfd_open(pid: libc::pid_t) -> RawFd {
    // Flags must be 0 (or PIDFD_NONBLOCK): pidfds are close-on-exec anyway,
    // and O_CLOEXEC is EINVAL.
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor
    // (or -1, which callers treat as "no pidfd").
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    fd as RawFd
}

/// SIGKILL the child: through its pidfd when there is one (no pid reuse
/// race), else by pid (our unreaped child, so the pid is still ours).
fn kill_child(child: &Child) {
    // SAFETY: signalling our own child; a null siginfo is allowed.
    unsafe {
        if child.pidfd < 0
            || libc::syscall(
                libc::SYS_pidfd_send_signal,
                child.pidfd,
                libc::SIGKILL,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            ) < 0
        {
            libc::kill(child.pid, libc::SIGKILL);
        }
    }
}

/// Feed `input` to the child's stdin, drain stdout/stderr, reap it, and
/// close its descriptors; kill it at `timeout`.
fn wait_child(child: &Child, input: &[u8], timeout: Duration, cap: &mut Capture) -> Termination {
    let start = Instant::now();
    let mut written = 0usize;
    let mut fds = [
        libc::pollfd {
            fd: child.stdin,
            events: libc::POLLOUT,
            revents: 0,
        },
        libc::pollfd {
            fd: child.stdout,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: child.stderr,
            events: libc::POLLIN,
            revents: 0,
        },
        libc::pollfd {
            fd: child.pidfd,
            events: libc::POLLIN,
            revents: 0,
        },
    ];
    if input.is_empty() {
        close(&mut fds[0].fd);
    }
    // The handshake: write nothing until the helper said it is non-dumpable.
    let mut ready = false;
    fds[0].events = 0;
    let how = loop {
        let left = timeout.saturating_sub(start.elapsed());
        if left.is_zero() {
            kill_child(child);
            reap(child.pid, true);
            break Termination::TimedOut;
        }
        // The pidfd wakes us when the child ends. Without one (kernel < 5.3)
        // the closing of both outputs does; only then, while the child is
        // exiting, do we look every few ms.
        let outputs_closed = fds[1].fd < 0 && fds[2].fd < 0;
        let wait = if fds[3].fd < 0 && outputs_closed {
            left.min(Duration::from_millis(5))
        } else {
            left
        };
        // SAFETY: fds is a valid array of pollfd; negative fds are ignored.
        let polled = cerr(unsafe {
            libc::poll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                super::poll_ms(wait),
            )
        });
        if matches!(&polled, Err(e) if e.kind() != io::ErrorKind::Interrupted) {
            kill_child(child);
            reap(child.pid, true);
            break Termination::Unknown;
        }
        if !ready && fds[0].fd >= 0 && fds[0].revents != 0 {
            close(&mut fds[0].fd); // the helper is gone or closed its stdin
        }
        if ready && fds[0].fd >= 0 && fds[0].revents != 0 {
            let rest = &input[written..];
            // Never blocks (so the deadline and the outputs stay watched)
            // and never raises SIGPIPE; a full buffer is EAGAIN, tried again.
            // SAFETY: sending from a valid slice on our socket end.
            let w = cerr(unsafe {
                libc::send(
                    fds[0].fd,
                    rest.as_ptr().cast(),
                    rest.len(),
                    libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
                )
            });
            if let Ok(n) = w {
                written += n as usize;
            }
            if written == input.len()
                || (w.is_err() && fds[0].revents & (libc::POLLERR | libc::POLLHUP) != 0)
            {
                close(&mut fds[0].fd); // EOF for the child: its input is complete
            }
        }
        if fds[1].fd >= 0 && fds[1].revents != 0 {
            read_some(&mut fds[1].fd, &mut cap.out, &mut cap.out_len);
        }
        if !ready && fds[0].fd >= 0 {
            match ready_marker(cap) {
                Some(true) => {
                    ready = true;
                    fds[0].events = libc::POLLOUT;
                }
                // Anything else first (an early error), or no output: the
                // helper gets EOF instead of the handoff.
                Some(false) => close(&mut fds[0].fd),
                None if fds[1].fd < 0 => close(&mut fds[0].fd),
                None => {}
            }
        }
        if fds[2].fd >= 0 && fds[2].revents != 0 {
            read_some(&mut fds[2].fd, &mut cap.err, &mut cap.err_len);
        }
        let pidfd_ready = fds[3].fd >= 0 && fds[3].revents != 0;
        let outputs_closed = fds[1].fd < 0 && fds[2].fd < 0;
        if pidfd_ready || outputs_closed {
            if let Some(t) = reap(child.pid, false) {
                break t;
            }
        }
    };
    // What the child wrote just before it ended is still in the pipes.
    while fds[1].fd >= 0 && readable(fds[1].fd, 0) {
        read_some(&mut fds[1].fd, &mut cap.out, &mut cap.out_len);
    }
    while fds[2].fd >= 0 && readable(fds[2].fd, 0) {
        read_some(&mut fds[2].fd, &mut cap.err, &mut cap.err_len);
    }
    for p in &mut fds {
        close(&mut p.fd);
    }
    how
}

/// Whether the captured stdout starts with the helper's [`READY`] line:
/// `Some(true)` (then the line is removed from the capture), `Some(false)`
/// when it cannot, `None` while too little has arrived to tell.
fn ready_marker(cap: &mut Capture) -> Option<bool> {
    let got = &cap.out[..cap.out_len];
    let n = got.len().min(READY.len());
    if got[..n] != READY[..n] {
        return Some(false);
    }
    if n < READY.len() {
        return None;
    }
    cap.out.copy_within(READY.len()..cap.out_len, 0);
    cap.out_len -= READY.len();
    Some(true)
}

/// One read into the capture buffer (or a scratch buffer once it is full);
/// closes `fd` at EOF or error.
fn read_some(fd: &mut RawFd, buf: &mut [u8; CAPTURE], len: &mut usize) {
    let mut scratch = [0u8; 512];
    let dst: &mut [u8] = if *len < CAPTURE {
        &mut buf[*len..]
    } else {
        &mut scratch
    };
    // SAFETY: reading into a valid buffer of dst.len() bytes.
    match retry_eintr(|| cerr(unsafe { libc::read(*fd, dst.as_mut_ptr().cast(), dst.len()) })) {
        Ok(n) if n > 0 => {
            if *len < CAPTURE {
                *len += n as usize;
            }
        }
        _ => close(fd), // EOF or error
    }
}

/// Write all of `buf` to `fd`; stop quietly when the host stopped
/// listening (SIGPIPE is ignored here, so that is EPIPE).
fn write_all(fd: RawFd, mut buf: &[u8]) {
    while !buf.is_empty() {
        // SAFETY: writing from a valid slice to our pipe end.
        match retry_eintr(|| cerr(unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) })) {
            Ok(n) if n > 0 => buf = &buf[n as usize..],
            _ => return,
        }
    }
}

/// The supervisor's signal state, whatever the host's: default actions
/// (so SIGCHLD is not ignored, which would reap the helper behind our back,
/// and no host handler runs in the supervisor), SIGPIPE ignored (a closed
/// report pipe is an error, not death), nothing blocked.
fn reset_signals() {
    // The raw syscall reaches glibc's reserved signals (32, 33) too. An
    // all-zero kernel sigaction is SIG_DFL with no flags and an empty mask,
    // whatever the architecture's field order.
    let dfl = [0u64; 4];
    // SAFETY: rt_sigaction/sigprocmask on this (forked) process with local,
    // zero-initialised structures of at least the kernel's size.
    unsafe {
        for sig in 1..=64 {
            if sig != libc::SIGKILL && sig != libc::SIGSTOP {
                libc::syscall(libc::SYS_rt_sigaction, sig, dfl.as_ptr(), 0usize, 8usize);
            }
        }
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
        let mut none: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut none);
        libc::sigprocmask(libc::SIG_SETMASK, &none, std::ptr::null_mut());
    }
}
