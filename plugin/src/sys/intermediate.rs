//! The intermediate child: forked by the host, it starts the supervisor in
//! a new session and exits at once, so that the host reaps it without
//! waiting and the supervisor, an orphan, is reaped by init, never by smtp.
//! Runs in a copy of the host between `fork` and `_exit`: async-signal-safe
//! calls only, no allocation.

use super::supervisor::{self, Plan};

/// # Safety
/// Only in the child of the host's `fork`, with `plan` built before it.
pub(super) unsafe fn run(plan: &Plan) -> ! {
    // SAFETY: setsid, fork and _exit are async-signal-safe and act on
    // this process only; the supervisor branch is the fresh child that
    // supervisor::run requires.
    unsafe {
        libc::setsid();
        if libc::fork() != 0 {
            // Gone at once. If that fork failed, the host reads EOF on the
            // report pipe: status unknown.
            libc::_exit(0);
        }
        supervisor::run(plan)
    }
}
