//! Running the refresh helper: fork + exec under a detached supervisor,
//! with pipes, a deadline, and no zombies. Raw syscalls only.
//!
//! ```text
//!   host (smtp) ── fork ──► intermediate ── fork ──► supervisor ── fork+exec ──► helper
//!        │  reaps it at once ◄──┘ (_exit)              │ feeds the config on stdin,
//!        │                                              │ drains stdout/stderr, reaps,
//!        └──────────── report pipe ◄────────────────────┘ writes one report, exits
//! ```
//!
//! The host never waits for the helper itself and never kills it: when its
//! deadline passes it only stops reading the report. A helper killed between
//! the provider's answer and its rename could lose a rotated refresh token;
//! the helper bounds its own run by `refresh_timeout`, and the supervisor
//! kills it only at a much later safety deadline. The supervisor is an
//! orphan in its own session (init reaps it), holds no descriptor of the
//! host but its pipes, and ignores SIGPIPE.
//!
//! Everything between `fork` and `exec`/`_exit` (the intermediate child and
//! the supervisor) uses only async-signal-safe system calls on memory
//! prepared before the fork, because the host may be multi-threaded:
//! `supervise` does not allocate.

use common::handoff::READY;
use std::ffi::{c_char, CString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::Path;
use std::time::Duration;

/// The helper executable: an `O_PATH` descriptor opened and checked at init
/// (before Postfix chroots). It is executed only through the descriptor
/// (`execveat`), never by path, which inside the chroot would name another
/// file or none; without the descriptor there is no refresh, and the log
/// says why ([`Exec::open`]'s error).
#[derive(Debug)]
pub struct Exec {
    fd: OwnedFd,
}

impl Exec {
    /// Open `path` with `O_PATH | O_CLOEXEC` and check it OpenSSH
    /// `safe_path` style ([`safe_exec_path`]); the error says what to fix.
    pub fn open(path: &Path) -> Result<Exec, String> {
        use std::os::unix::ffi::OsStrExt;
        let cpath = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| format!("{} contains a NUL byte", path.display()))?;
        // SAFETY: cpath is a valid NUL-terminated string; open has no other
        // preconditions.
        let fd = unsafe { libc::open(cpath.as_ptr(), libc::O_PATH | libc::O_CLOEXEC) };
        if fd < 0 {
            return Err(format!(
                "{} cannot be opened: {}",
                path.display(),
                io::Error::last_os_error()
            ));
        }
        // SAFETY: fd was just returned by open and is owned by nothing else.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: geteuid cannot fail.
        let euid = unsafe { libc::geteuid() };
        safe_exec_path(path, &fd, euid)?;
        Ok(Exec { fd })
    }
}

/// OpenSSH `safe_path` for the helper: the file we opened is a regular,
/// executable file owned by root (or by us) and not writable by group or
/// others, and so is every directory from its real location up to `/`;
/// otherwise someone else could replace what runs with our privileges.
/// One relaxation: a root-owned sticky directory (like /tmp) is allowed,
/// because others cannot rename or remove root's entries in it.
fn safe_exec_path(path: &Path, fd: &OwnedFd, euid: u32) -> Result<(), String> {
    use std::os::unix::fs::MetadataExt;
    let file = std::fs::File::from(fd.try_clone().map_err(|e| e.to_string())?);
    let meta = file
        .metadata()
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let real = std::fs::canonicalize(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let bad_owner = |uid: u32| uid != 0 && uid != euid;
    let fix = "make it and every directory above it owned by root and not writable by group or others (chown root; chmod go-w)";
    if !meta.is_file() || meta.mode() & 0o111 == 0 {
        return Err(format!(
            "{} is not an executable regular file",
            real.display()
        ));
    }
    if bad_owner(meta.uid()) || meta.mode() & 0o022 != 0 {
        return Err(format!(
            "refusing to run {}: owned by uid {} with mode {:04o}; {fix}",
            real.display(),
            meta.uid(),
            meta.mode() & 0o7777
        ));
    }
    let same = std::fs::metadata(&real).map(|m| (m.dev(), m.ino()));
    if same.ok() != Some((meta.dev(), meta.ino())) {
        return Err(format!("{} changed while it was checked", path.display()));
    }
    for dir in real.ancestors().skip(1) {
        let m = std::fs::metadata(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let sticky_root = m.uid() == 0 && m.mode() & libc::S_ISVTX != 0;
        if bad_owner(m.uid()) || (m.mode() & 0o022 != 0 && !sticky_root) {
            return Err(format!(
                "refusing to run {}: its directory {} is owned by uid {} with mode {:04o}; {fix}",
                real.display(),
                dir.display(),
                m.uid(),
                m.mode() & 0o7777
            ));
        }
    }
    Ok(())
}

/// How the child ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Termination {
    Exited(i32),
    Signaled(i32),
    /// No result in time (the host stopped waiting; the supervisor kills
    /// the helper only at its much later safety deadline).
    TimedOut,
    /// Reaped by someone else (the host ignores SIGCHLD): status unknown.
    Unknown,
}

/// The child's end and the first bytes of its output.
#[derive(Debug)]
pub struct Finished {
    pub how: Termination,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Bytes of each output stream kept; the rest is read and dropped.
const CAPTURE: usize = 4096;

struct Pipe {
    read: OwnedFd,
    write: OwnedFd,
}

fn pipe() -> io::Result<Pipe> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: fds is a valid array of two ints for pipe2 to fill.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors were just created and are owned by nothing else.
    let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
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

/// A running helper. Raw descriptors, closed by `wait_child`, which must
/// stay free of allocation and drop glue (see module docs).
struct Child {
    pid: libc::pid_t,
    pidfd: RawFd,
    stdin: RawFd,
    stdout: RawFd,
    stderr: RawFd,
}

/// In the forked child: wire up the standard streams, close everything
/// else, exec. Never returns.
///
/// # Safety
/// Must only be called in a freshly forked child. All pointers stay valid
/// (they point into the parent's memory, copied by fork).
unsafe fn child_exec(
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
        if libc::dup2(exe, 3) < 0 {
            libc::_exit(126);
        }
        libc::fcntl(3, libc::F_SETFD, libc::FD_CLOEXEC);
        close_from(4);
        // The host's blocked signals are inherited across exec; undo that.
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
        // Never by path (see Exec): say why on the helper's stderr.
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

fn monotonic_ms() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec for clock_gettime to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec * 1000 + ts.tv_nsec / 1_000_000
}

/// Output captured into fixed buffers (no allocation: see module docs).
struct Capture {
    out: [u8; CAPTURE],
    out_len: usize,
    err: [u8; CAPTURE],
    err_len: usize,
}

/// Feed `input` to the child's stdin, drain stdout/stderr, reap it, and
/// close its descriptors; kill it at `timeout`. Async-signal-safe: only
/// system calls, no allocation.
fn wait_child(child: &Child, input: &[u8], timeout: Duration, cap: &mut Capture) -> Termination {
    let deadline = monotonic_ms() + timeout.as_millis() as i64;
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
        let left = deadline - monotonic_ms();
        if left <= 0 {
            kill_child(child);
            reap(child.pid, true);
            break Termination::TimedOut;
        }
        // The pidfd wakes us when the child ends. Without one (kernel < 5.3)
        // the closing of both outputs does; only then, while the child is
        // exiting, do we look every few ms.
        let outputs_closed = fds[1].fd < 0 && fds[2].fd < 0;
        let wait = if fds[3].fd < 0 && outputs_closed {
            left.min(5)
        } else {
            left
        };
        // SAFETY: fds is a valid array of pollfd; negative fds are ignored.
        let n = unsafe {
            libc::poll(
                fds.as_mut_ptr(),
                fds.len() as libc::nfds_t,
                wait as libc::c_int,
            )
        };
        if n < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            kill_child(child);
            reap(child.pid, true);
            break Termination::Unknown;
        }
        if !ready && fds[0].fd >= 0 && fds[0].revents != 0 {
            close(&mut fds[0].fd); // the helper is gone or closed its stdin
        }
        if ready && fds[0].fd >= 0 && fds[0].revents != 0 {
            let rest = &input[written..];
            // SAFETY: writing from a valid slice to our pipe end.
            let w = unsafe { libc::write(fds[0].fd, rest.as_ptr().cast(), rest.len()) };
            if w > 0 {
                written += w as usize;
            }
            if written == input.len()
                || (w < 0 && fds[0].revents & (libc::POLLERR | libc::POLLHUP) != 0)
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
    while fds[1].fd >= 0 && readable(fds[1].fd) {
        read_some(&mut fds[1].fd, &mut cap.out, &mut cap.out_len);
    }
    while fds[2].fd >= 0 && readable(fds[2].fd) {
        read_some(&mut fds[2].fd, &mut cap.err, &mut cap.err_len);
    }
    for p in &mut fds {
        close(&mut p.fd);
    }
    how
}

/// Whether the captured stdout starts with the helper's [`READY`] line:
/// `Some(true)` (then the line is removed from the capture), `Some(false)`
/// when it cannot, `None` while too little has arrived to tell. No
/// allocation.
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

fn close(fd: &mut RawFd) {
    if *fd >= 0 {
        // SAFETY: closing a descriptor we own, once (then marked -1).
        unsafe { libc::close(*fd) };
        *fd = -1;
    }
}

fn readable(fd: RawFd) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: a single valid pollfd, zero timeout.
    unsafe { libc::poll(&mut p, 1, 0) > 0 }
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
    let r = unsafe { libc::read(*fd, dst.as_mut_ptr().cast(), dst.len()) };
    if r > 0 {
        if *len < CAPTURE {
            *len += r as usize;
        }
    } else if r == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
        close(fd);
    }
}

/// Reap `pid`: `Some` once it has ended. `block` waits for it.
fn reap(pid: libc::pid_t, block: bool) -> Option<Termination> {
    let mut status = 0;
    loop {
        // SAFETY: status is a valid int for waitpid to fill.
        let r = unsafe { libc::waitpid(pid, &mut status, if block { 0 } else { libc::WNOHANG }) };
        if r == pid {
            return Some(if libc::WIFEXITED(status) {
                Termination::Exited(libc::WEXITSTATUS(status))
            } else if libc::WIFSIGNALED(status) {
                Termination::Signaled(libc::WTERMSIG(status))
            } else {
                continue; // stopped/continued: keep waiting
            });
        }
        if r == 0 {
            return None;
        }
        match io::Error::last_os_error().raw_os_error() {
            Some(libc::EINTR) => continue,
            // Host ignores SIGCHLD: the kernel reaped it already.
            _ => return Some(Termination::Unknown),
        }
    }
}

/// Start the helper under a supervisor; returns the read end of the
/// supervisor's report pipe.
fn spawn_supervised(
    exec: &Exec,
    args: &[CString],
    input: &[u8],
    safety: Duration,
) -> io::Result<OwnedFd> {
    let (stdin, stdout, stderr, report) = (pipe()?, pipe()?, pipe()?, pipe()?);
    let argv = Argv::new(args);
    let envp: [*const c_char; 1] = [std::ptr::null()];
    let exe_fd = exec.fd.as_raw_fd();
    let helper_ends = [
        stdin.read.as_raw_fd(),
        stdout.write.as_raw_fd(),
        stderr.write.as_raw_fd(),
    ];
    let sup_ends = [
        stdin.write.as_raw_fd(),
        stdout.read.as_raw_fd(),
        stderr.read.as_raw_fd(),
    ];
    let report_fd = report.write.as_raw_fd();
    // SAFETY: fork has no preconditions. Both children below make only
    // async-signal-safe system calls on memory prepared before this fork
    // and end in exec or _exit (see the module docs).
    let first = unsafe { libc::fork() };
    if first < 0 {
        return Err(io::Error::last_os_error());
    }
    if first == 0 {
        // SAFETY: see above.
        unsafe {
            libc::setsid();
            if libc::fork() != 0 {
                libc::_exit(0); // the intermediate child: gone at once
            }
            let mut keep = [
                helper_ends[0],
                helper_ends[1],
                helper_ends[2],
                sup_ends[0],
                sup_ends[1],
                sup_ends[2],
                report_fd,
                exe_fd,
            ];
            close_all_except(&mut keep);
            reset_signals();
            let pid = libc::fork();
            if pid == 0 {
                child_exec(helper_ends, exe_fd, argv.ptrs.as_ptr(), envp.as_ptr());
            }
            for fd in helper_ends {
                libc::close(fd);
            }
            if pid > 0 {
                let child = Child {
                    pid,
                    pidfd: pidfd_open(pid),
                    stdin: sup_ends[0],
                    stdout: sup_ends[1],
                    stderr: sup_ends[2],
                };
                let mut cap = Capture {
                    out: [0; CAPTURE],
                    out_len: 0,
                    err: [0; CAPTURE],
                    err_len: 0,
                };
                let how = wait_child(&child, input, safety, &mut cap);
                write_report(report_fd, how, &cap);
            }
            libc::_exit(0);
        }
    }
    drop((stdin, stdout, stderr));
    // The intermediate child exits at once; reap it so it is no zombie.
    reap(first, true);
    Ok(report.read)
}

/// The supervisor's report: tag, code, then stdout and stderr, each with a
/// 4-byte length. Fixed layout, written without allocation.
fn write_report(fd: RawFd, how: Termination, cap: &Capture) {
    let (tag, code): (u8, i32) = match how {
        Termination::Exited(c) => (1, c),
        Termination::Signaled(s) => (2, s),
        Termination::TimedOut => (3, 0),
        Termination::Unknown => (4, 0),
    };
    let mut head = [0u8; 9];
    head[0] = tag;
    head[1..5].copy_from_slice(&code.to_le_bytes());
    head[5..9].copy_from_slice(&(cap.out_len as u32).to_le_bytes());
    write_all(fd, &head);
    write_all(fd, &cap.out[..cap.out_len]);
    write_all(fd, &(cap.err_len as u32).to_le_bytes());
    write_all(fd, &cap.err[..cap.err_len]);
}

fn write_all(fd: RawFd, mut buf: &[u8]) {
    while !buf.is_empty() {
        // SAFETY: writing from a valid slice to our pipe end.
        let w = unsafe { libc::write(fd, buf.as_ptr().cast(), buf.len()) };
        if w <= 0 {
            if w < 0 && io::Error::last_os_error().raw_os_error() == Some(libc::EINTR) {
                continue;
            }
            return; // the host stopped listening
        }
        buf = &buf[w as usize..];
    }
}

fn parse_report(b: &[u8]) -> Option<Finished> {
    let u32_at = |i: usize| Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?) as usize);
    let code = i32::from_le_bytes(b.get(1..5)?.try_into().ok()?);
    let how = match b.first()? {
        1 => Termination::Exited(code),
        2 => Termination::Signaled(code),
        3 => Termination::TimedOut,
        _ => Termination::Unknown,
    };
    let out_len = u32_at(5)?;
    let stdout = b.get(9..9 + out_len)?.to_vec();
    let err_len = u32_at(9 + out_len)?;
    let stderr = b.get(13 + out_len..13 + out_len + err_len)?.to_vec();
    Some(Finished {
        how,
        stdout,
        stderr,
    })
}

/// How long the supervisor lets a helper run before it kills it: far past
/// the helper's own `refresh_timeout` limit, so only a wedged helper dies.
fn safety_deadline(timeout: Duration) -> Duration {
    timeout * 3 + Duration::from_secs(30)
}

/// Run the helper and wait for its result, at most `timeout`. On timeout
/// the helper is left to finish (or give up) by itself.
pub fn run(exec: &Exec, args: &[CString], input: &[u8], timeout: Duration) -> io::Result<Finished> {
    let report = spawn_supervised(exec, args, input, safety_deadline(timeout))?;
    let deadline = monotonic_ms() + timeout.as_millis() as i64;
    let mut buf = Vec::with_capacity(16 + 2 * CAPTURE);
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline - monotonic_ms();
        if left <= 0 {
            return Ok(Finished {
                how: Termination::TimedOut,
                stdout: Vec::new(),
                stderr: Vec::new(),
            });
        }
        let mut p = libc::pollfd {
            fd: report.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: a single valid pollfd.
        let n = unsafe { libc::poll(&mut p, 1, left as libc::c_int) };
        if n <= 0 {
            continue; // timeout (checked above) or EINTR
        }
        // SAFETY: reading into a valid buffer.
        let r = unsafe { libc::read(report.as_raw_fd(), chunk.as_mut_ptr().cast(), chunk.len()) };
        if r > 0 {
            buf.extend_from_slice(&chunk[..r as usize]);
        } else if r == 0 || io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            break;
        }
    }
    Ok(parse_report(&buf).unwrap_or(Finished {
        how: Termination::Unknown,
        stdout: Vec::new(),
        stderr: Vec::new(),
    }))
}

/// Start the helper and return at once; the supervisor sees it through.
pub fn run_detached(
    exec: &Exec,
    args: &[CString],
    input: &[u8],
    timeout: Duration,
) -> io::Result<()> {
    spawn_supervised(exec, args, input, safety_deadline(timeout)).map(drop)
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
    // SAFETY: closes a range of descriptors in this (child) process.
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
/// was lowered can sit above the soft one).
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
    // SAFETY: closes a range of descriptors in this (child) process.
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

/// The supervisor's signal state, whatever the host's: default actions
/// (so SIGCHLD is not ignored, which would reap the helper behind our back,
/// and no host handler runs in the supervisor), SIGPIPE ignored (a closed
/// report pipe is an error, not death), nothing blocked. Async-signal-safe.
fn reset_signals() {
    // The raw syscall reaches glibc's reserved signals (32, 33) too. An
    // all-zero kernel sigaction is SIG_DFL with no flags and an empty mask,
    // whatever the architecture's field order.
    let dfl = [0u64; 4];
    // SAFETY: rt_sigaction/sigprocmask on this (child) process with local,
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

/// Whether another process holds the refresh lock file `lock` (an
/// exclusive `flock`, as the helper takes it), probed with a shared lock
/// (AppArmor counts an exclusive one as a write). Opens it read-only: the
/// plugin never creates or writes files. A missing file means "not held".
pub fn lock_held(lock: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(cpath) = CString::new(lock.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: cpath is NUL-terminated; read-only open without following links.
    let fd = unsafe {
        libc::open(
            cpath.as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NONBLOCK,
        )
    };
    if fd < 0 {
        return false;
    }
    // SAFETY: fd is ours; LOCK_NB never blocks. Unlocking and closing
    // release what we may have taken.
    unsafe {
        let held = libc::flock(fd, libc::LOCK_SH | libc::LOCK_NB) != 0
            && io::Error::last_os_error().raw_os_error() == Some(libc::EWOULDBLOCK);
        libc::close(fd);
        held
    }
}
