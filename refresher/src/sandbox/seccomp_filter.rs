//! Seccomp: the syscall allow-list of the locked-down phase. Any syscall
//! not listed (execve, fork/clone, ptrace, bind, listen, prctl, seccomp,
//! ...) kills the whole process with SIGSYS.
//!
//! Derived with `strace -f` of a real refresh and over the probe
//! (tests/sandbox_walls.rs): a real HTTPS POST with ureq + rustls, the
//! token update (write, fsync, rename, fsync dir on descriptors opened
//! before lock-down), a failed connect, the retry sleep, a panic and an
//! abort, in debug and static release builds. No file can be opened.

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen as Len, SeccompCmpOp as Op, SeccompCondition,
    SeccompFilter, SeccompRule, TargetArch,
};
use std::collections::BTreeMap;

/// Argument rule of one allowed syscall (conditions in one rule are ANDed,
/// rules are ORed).
enum Args {
    Any,
    /// arg `n` (mmap/mprotect prot) has no PROT_EXEC: no new executable code.
    NoExec(u8),
    /// arg0 AF_INET or AF_INET6, arg1 & type mask == SOCK_STREAM (flags
    /// such as SOCK_CLOEXEC allowed), arg2 0 or IPPROTO_TCP: TCP only, no
    /// unix/netlink/raw/UDP, and no MPTCP or SCTP, which landlock's port
    /// rules do not cover.
    InetStream,
    /// sendto with a NULL address (arg4) and without MSG_FASTOPEN in the
    /// flags (arg3): sending on the connected socket only. A TCP Fast Open
    /// sendto connects without connect(2), past landlock's port rule.
    ConnectedSend,
    /// arg1 == value: ioctl request, fcntl command.
    Arg1(u64),
    /// (arg1, arg2) is one of the pairs: socket option level and name.
    Opts(&'static [(i32, i32)]),
    /// tgkill(own pid, any tid, SIGABRT) only: abort() of this process.
    AbortSelf,
    /// openat whose flags (arg2) have no write access and no O_CREAT/O_TRUNC.
    ReadOnlyOpen,
}

use libc::*;
/// The allow-list. `reads`: the policy keeps `read_paths` readable, so
/// read-only opens (no O_CREAT, no write access) and what reading a file
/// needs are added; the helper itself has no read paths.
#[rustfmt::skip]
fn allowed(reads: bool) -> Vec<(i64, &'static str, Args, &'static str)> {
    // Derived with `strace -f` of a real refresh (the static release helper
    // and the debug build, `sandbox: required`, against tests' fake
    // provider), plus the failure paths the tests drive: everything the
    // locked phase does is write the temp file, fsync, rename, fsync the
    // directory, and one HTTPS POST. The lock, the token, the temp file and
    // the directory are opened before lock-down; no file is opened after.
    let mut v = vec![
        // files: only descriptors opened before lock-down
        (SYS_write, "write", Args::Any, "the new token into the temp file; status line on stdout/stderr"),
        (SYS_close, "close", Args::Any, "close the temp file, directory, lock and socket"),
        (SYS_fsync, "fsync", Args::Any, "temp file and directory reach the disk"),
        (SYS_fcntl, "fcntl", Args::Arg1(F_GETFD as u64), "debug builds check an fd is open before close"),
        // network (landlock limits the port)
        (SYS_socket, "socket", Args::InetStream, "the TCP socket to the endpoint or proxy"),
        (SYS_connect, "connect", Args::Any, "connect to the resolved endpoint address"),
        (SYS_ioctl, "ioctl", Args::Arg1(FIONBIO), "non-blocking connect for the connect timeout"),
        (SYS_getsockopt, "getsockopt", Args::Opts(&[(SOL_SOCKET, SO_ERROR)]), "why a connect failed"),
        (SYS_setsockopt, "setsockopt",
         Args::Opts(&[(SOL_SOCKET, SO_RCVTIMEO), (SOL_SOCKET, SO_SNDTIMEO), (IPPROTO_TCP, TCP_NODELAY)]),
         "read/write timeouts, no Nagle delay"),
        (SYS_sendto, "sendto", Args::ConnectedSend, "send TLS records on the connected socket (MSG_NOSIGNAL)"),
        (SYS_recvfrom, "recvfrom", Args::Any, "receive TLS records"),
        // memory (glibc malloc)
        (SYS_mmap, "mmap", Args::NoExec(2), "allocations of 128 KiB and more (never executable)"),
        (SYS_munmap, "munmap", Args::Any, "free large allocations"),
        (SYS_mremap, "mremap", Args::Any, "grow large allocations (realloc)"),
        (SYS_brk, "brk", Args::Any, "grow and shrink the heap"),
        // runtime
        (SYS_getrandom, "getrandom", Args::Any, "TLS keys and nonces (ring); retry jitter"),
        (SYS_futex, "futex", Args::Any, "std Once/Mutex wake-ups"),
        (SYS_clock_gettime, "clock_gettime", Args::Any, "timeouts, when the vDSO is not used"),
        (SYS_clock_nanosleep, "clock_nanosleep", Args::Any, "pause before a retry (thread::sleep)"),
        (SYS_restart_syscall, "restart_syscall", Args::Any, "the kernel resumes that pause after SIGSTOP/SIGCONT or a ptrace attach"),
        (SYS_rt_sigprocmask, "rt_sigprocmask", Args::Any, "block TERM/HUP/INT from the POST to the rename; abort() unblocks SIGABRT"),
        (SYS_gettid, "gettid", Args::Any, "panic message names the thread; abort()"),
        (SYS_getpid, "getpid", Args::Any, "abort() signals its own process"),
        (SYS_tgkill, "tgkill", Args::AbortSelf, "abort() ends with SIGABRT, not a misleading SIGSYS"),
        (SYS_sigaltstack, "sigaltstack", Args::Any, "std removes the main thread's signal stack at exit"),
        (SYS_exit_group, "exit_group", Args::Any, "end the process with its exit code"),
    ];
    #[cfg(target_arch = "x86_64")]
    v.extend([
        (SYS_rename, "rename", Args::Any, "atomically replace the token (same directory)"),
        (SYS_unlink, "unlink", Args::Any, "remove the temp file when writing it failed"),
        (SYS_poll, "poll", Args::Any, "wait for the non-blocking connect"),
    ]);
    #[cfg(not(target_arch = "x86_64"))]
    v.extend([
        (SYS_renameat2, "renameat2", Args::Any, "atomically replace the token (same directory)"),
        (SYS_unlinkat, "unlinkat", Args::Any, "remove the temp file when writing it failed"),
        (SYS_ppoll, "ppoll", Args::Any, "wait for the non-blocking connect"),
    ]);
    if reads {
        v.extend([
            (SYS_openat, "openat", Args::ReadOnlyOpen, "open a read path (read-only, never creating)"),
            (SYS_read, "read", Args::Any, "read a read path"),
            (SYS_statx, "statx", Args::Any, "std asks a file's size before reading it"),
            (SYS_lseek, "lseek", Args::Any, "std's read_to_end asks the file position"),
        ]);
    }
    v
}

/// Names of the helper's allowed syscalls with their reasons (for docs and
/// tests): the list for a policy without read paths.
pub fn allow_list() -> Vec<(&'static str, &'static str)> {
    allowed(false)
        .into_iter()
        .map(|(_, name, _, why)| (name, why))
        .collect()
}

pub fn target_arch() -> Option<TargetArch> {
    TargetArch::try_from(std::env::consts::ARCH).ok()
}

fn rules(args: Args) -> Result<Vec<SeccompRule>, seccompiler::BackendError> {
    let c = |arg, op, val: u64| SeccompCondition::new(arg, Len::Dword, op, val);
    let set = |conds: Vec<_>| SeccompRule::new(conds);
    Ok(match args {
        Args::Any => vec![],
        Args::NoExec(n) => vec![set(vec![c(n, Op::MaskedEq(PROT_EXEC as u64), 0)?])?],
        Args::InetStream => [AF_INET, AF_INET6]
            .iter()
            .flat_map(|&af| [(af, 0), (af, IPPROTO_TCP)])
            .map(|(af, proto)| {
                set(vec![
                    c(0, Op::Eq, af as u64)?,
                    c(1, Op::MaskedEq(0xf), SOCK_STREAM as u64)?,
                    c(2, Op::Eq, proto as u64)?,
                ])
            })
            .collect::<Result<_, _>>()?,
        Args::ConnectedSend => vec![set(vec![
            SeccompCondition::new(4, Len::Qword, Op::Eq, 0)?,
            c(3, Op::MaskedEq(MSG_FASTOPEN as u64), 0)?,
        ])?],
        Args::Arg1(v) => vec![set(vec![c(1, Op::Eq, v)?])?],
        Args::Opts(pairs) => pairs
            .iter()
            .map(|&(l, n)| set(vec![c(1, Op::Eq, l as u64)?, c(2, Op::Eq, n as u64)?]))
            .collect::<Result<_, _>>()?,
        Args::ReadOnlyOpen => vec![set(vec![c(
            2,
            Op::MaskedEq((O_ACCMODE | O_CREAT | O_TRUNC) as u64),
            O_RDONLY as u64,
        )?])?],
        Args::AbortSelf => {
            let pid = crate::sys::getpid() as u64;
            vec![set(vec![
                c(0, Op::Eq, pid)?,
                c(2, Op::Eq, SIGABRT as u64)?,
            ])?]
        }
    })
}

/// Compile the allow-list: allowed syscalls pass, everything else
/// (including other architectures' and x32 numbers) kills the process.
pub fn compile(reads: bool) -> Result<BpfProgram, String> {
    let arch =
        target_arch().ok_or_else(|| format!("no seccomp filter for {}", std::env::consts::ARCH))?;
    let mut map = BTreeMap::new();
    for (nr, name, args, _) in allowed(reads) {
        map.insert(
            nr,
            rules(args).map_err(|e| format!("seccomp rule for {name}: {e}"))?,
        );
    }
    let filter = SeccompFilter::new(map, SeccompAction::KillProcess, SeccompAction::Allow, arch)
        .map_err(|e| format!("seccomp filter: {e}"))?;
    filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| format!("seccomp compile: {e}"))
}

/// Install the filter on every thread of the process (TSYNC).
pub fn apply(program: &BpfProgram) -> Result<(), String> {
    seccompiler::apply_filter_all_threads(program).map_err(|e| format!("seccomp: {e}"))
}
