//! The raw system calls behind the sandbox steps (`crate::sandbox` itself
//! has no `unsafe`). Each wrapper is one call, checked, with a plain error
//! string.

use common::errno::{cerr, MinusOne};
use std::os::fd::RawFd;

fn check<T: MinusOne>(what: &str, rc: T) -> Result<T, String> {
    cerr(rc).map_err(|e| format!("{what}: {e}"))
}

/// Close every descriptor from `first` to `last` (inclusive).
pub fn close_range(first: u32, last: u32) -> Result<(), String> {
    // SAFETY: close_range only closes descriptors; it takes no pointers.
    let rc = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
    check("close_range", rc).map(drop)
}

/// Close `fd`, ignoring errors (fallback for kernels without close_range).
pub fn close(fd: RawFd) {
    // SAFETY: closing a descriptor number; callers only pass ones they own.
    unsafe { libc::close(fd) };
}

/// The kernel's `struct sigaction` (x86_64 and aarch64 layout). We use the
/// raw syscall because glibc refuses signals 32 and 33, which a parent can
/// still leave ignored.
#[repr(C)]
struct KernelSigaction {
    handler: libc::sighandler_t,
    flags: libc::c_ulong,
    restorer: usize,
    mask: u64,
}

fn rt_sigaction(sig: i32, new: Option<libc::sighandler_t>) -> Result<libc::sighandler_t, String> {
    let act = new.map(|handler| KernelSigaction {
        handler,
        flags: 0,
        restorer: 0,
        mask: 0,
    });
    let act_ptr = act
        .as_ref()
        .map_or(std::ptr::null(), |a| a as *const KernelSigaction);
    let mut old = KernelSigaction {
        handler: 0,
        flags: 0,
        restorer: 0,
        mask: 0,
    };
    // SAFETY: both pointers are to live KernelSigaction values (or null for
    // "no change"); the handler is SIG_DFL or SIG_IGN, never code to run.
    let rc = unsafe { libc::syscall(libc::SYS_rt_sigaction, sig, act_ptr, &mut old, 8usize) };
    check(&format!("rt_sigaction({sig})"), rc).map(|_| old.handler)
}

/// Current disposition of `sig` is "ignore".
pub fn signal_is_ignored(sig: i32) -> bool {
    rt_sigaction(sig, None).is_ok_and(|h| h == libc::SIG_IGN)
}

/// Set the disposition of `sig` to `handler` (SIG_DFL or SIG_IGN only).
pub fn set_signal(sig: i32, handler: libc::sighandler_t) -> Result<(), String> {
    rt_sigaction(sig, Some(handler)).map(drop)
}

/// Unblock every signal.
pub fn unblock_all_signals() -> Result<(), String> {
    // The kernel's sigset_t: 64 bits, including signals 32 and 33.
    let empty: u64 = 0;
    // SAFETY: `empty` outlives the call; the old mask is not requested.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &empty,
            std::ptr::null_mut::<u64>(),
            8usize,
        )
    };
    check("rt_sigprocmask", rc).map(drop)
}

/// prctl with integer arguments only.
pub fn prctl(what: &str, option: i32, arg2: u64, arg3: u64) -> Result<i32, String> {
    let (a2, a3) = (arg2 as libc::c_ulong, arg3 as libc::c_ulong);
    // SAFETY: every option used here (DUMPABLE, NO_NEW_PRIVS, CAPBSET_READ,
    // CAP_AMBIENT) takes plain integers, no pointers.
    let rc = unsafe { libc::prctl(option, a2, a3, 0 as libc::c_ulong, 0 as libc::c_ulong) };
    check(what, rc)
}

/// Lower a resource limit to `value` (never raise the hard limit).
pub fn lower_rlimit(resource: libc::__rlimit_resource_t, value: u64) -> Result<(), String> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the local `lim` only.
    let rc = unsafe { libc::getrlimit(resource, &mut lim) };
    check(&format!("getrlimit({resource})"), rc)?;
    let v = value.min(lim.rlim_max);
    let lim = libc::rlimit {
        rlim_cur: v,
        rlim_max: v,
    };
    // SAFETY: setrlimit reads the local `lim` only.
    let rc = unsafe { libc::setrlimit(resource, &lim) };
    check(&format!("setrlimit({resource})"), rc).map(drop)
}

/// The effective, permitted and inheritable capability sets, as raw 64-bit
/// masks (capget, so it also sees capabilities newer than the caps crate).
pub fn capget() -> Result<[u64; 3], String> {
    #[repr(C)]
    struct Header {
        version: u32,
        pid: i32,
    }
    #[repr(C)]
    #[derive(Clone, Copy, Default)]
    struct Data {
        effective: u32,
        permitted: u32,
        inheritable: u32,
    }
    let mut header = Header {
        version: 0x2008_0522,
        pid: 0,
    }; // _LINUX_CAPABILITY_VERSION_3
    let mut data = [Data::default(); 2];
    // SAFETY: header and a two-element data array, as version 3 requires,
    // both live for the duration of the call.
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    check("capget", rc)?;
    let join = |lo: u32, hi: u32| u64::from(lo) | (u64::from(hi) << 32);
    Ok([
        join(data[0].effective, data[1].effective),
        join(data[0].permitted, data[1].permitted),
        join(data[0].inheritable, data[1].inheritable),
    ])
}

/// Landlock ABI version of this kernel, or the errno saying why there is none.
pub fn landlock_abi() -> Result<i32, i32> {
    // SAFETY: LANDLOCK_CREATE_RULESET_VERSION (1) with a null attr and size 0
    // only returns the ABI version; nothing is created.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32,
        )
    };
    cerr(rc)
        .map(|v| v as i32)
        .map_err(|e| e.raw_os_error().unwrap_or(0))
}

/// Whether seccomp filters with the kill-process action are available.
pub fn seccomp_kill_process_available() -> bool {
    let action: u32 = libc::SECCOMP_RET_KILL_PROCESS;
    // SAFETY: SECCOMP_GET_ACTION_AVAIL reads one u32 from `action`, which
    // outlives the call; it changes nothing.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_GET_ACTION_AVAIL,
            0u32,
            &action,
        )
    };
    rc == 0
}

/// Number of threads of this process, if /proc is visible (not in a chroot).
pub fn thread_count() -> Option<usize> {
    std::fs::read_dir("/proc/self/task").ok().map(|d| d.count())
}
