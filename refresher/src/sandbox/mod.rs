//! The helper's confinement, in two numbered sequences an auditor can read
//! top to bottom:
//!
//! * [`harden_process`], first thing in main: descriptors, signals, core
//!   dumps, no_new_privs, capabilities.
//! * [`lock_down`], after the config and token are read and the endpoint
//!   address is resolved, right before the HTTPS request: rlimits, landlock,
//!   seccomp. From then on the helper can touch only the token directory,
//!   connect only to the endpoint's port, and make only the listed syscalls.
//!
//! The walls are proven on the running kernel by tests/sandbox_walls.rs.

mod landlock_rules;
mod policy;
mod seccomp_filter;
mod support;

use crate::sys::sandbox as sys;

pub use policy::Policy;
pub use seccomp_filter::allow_list;
pub use support::{decide, kernel_support, Support, Wall};

use common::config::SandboxMode;
use std::os::fd::RawFd;

/// What was actually enforced, for the status line and `--check`.
#[derive(Debug, Clone, Default)]
pub struct Report {
    pub summary: String,
    /// Landlock ABI the kernel offered (None: no landlock).
    pub landlock_abi: Option<i32>,
    pub seccomp: bool,
    /// Walls this kernel could not enforce (only ever non-empty in best-effort).
    pub missing: Vec<Wall>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.summary)
    }
}

/// A sandbox step failed; the message says what to do. Exit with
/// `common::exit::OSERR`.
#[derive(Debug)]
pub struct SandboxError(pub String);

impl std::fmt::Display for SandboxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for SandboxError {}

fn fail(e: String) -> SandboxError {
    SandboxError(e)
}

/// Steps run first thing in main, before any file is read. `keep` lists the
/// inherited descriptors to keep open besides 0-2 (e.g. the --config-fd).
pub fn harden_process(keep: &[RawFd]) -> Result<(), SandboxError> {
    // 1. Close every inherited descriptor but 0-2 and `keep`: nothing the
    //    parent leaked (smtp's sockets, files) is reachable from here on.
    let mut keep: Vec<u32> = keep
        .iter()
        .filter(|&&fd| fd > 2)
        .map(|&fd| fd as u32)
        .collect();
    keep.sort_unstable();
    let mut first = 3u32;
    for &k in keep.iter().chain([&u32::MAX]) {
        if k > first && sys::close_range(first, k - 1).is_err() {
            (first..k.min(65536)).for_each(|fd| sys::close(fd as RawFd)); // kernel < 5.9
        }
        first = k.saturating_add(1);
    }

    // 2. Signals: undo dispositions and mask inherited from the parent, so a
    //    timeout's SIGTERM or SIGALRM is never ignored or blocked. SIGPIPE
    //    stays ignored (Rust's default) so a closed pipe is an error, not death.
    for sig in 1..=64 {
        if sig != libc::SIGPIPE && sys::signal_is_ignored(sig) {
            sys::set_signal(sig, libc::SIG_DFL).map_err(fail)?;
        }
    }
    sys::set_signal(libc::SIGPIPE, libc::SIG_IGN).map_err(fail)?;
    sys::unblock_all_signals().map_err(fail)?;

    // 3. No core dumps and no ptrace/proc access by same-uid processes:
    //    secrets in memory never land on disk or in another process.
    sys::prctl("PR_SET_DUMPABLE", libc::PR_SET_DUMPABLE, 0, 0).map_err(fail)?;
    sys::lower_rlimit(libc::RLIMIT_CORE, 0).map_err(fail)?;

    // 4. no_new_privs: no exec (were it allowed) can ever gain privileges.
    sys::prctl("PR_SET_NO_NEW_PRIVS", libc::PR_SET_NO_NEW_PRIVS, 1, 0).map_err(fail)?;

    // 5. Drop every capability from every set we may change: bounding first
    //    (only possible with CAP_SETPCAP), then ambient, inheritable,
    //    effective, permitted.
    use caps::CapSet::*;
    let setpcap = caps::has_cap(None, Effective, caps::Capability::CAP_SETPCAP).unwrap_or(false);
    if setpcap {
        caps::clear(None, Bounding).map_err(|e| fail(format!("dropping bounding caps: {e}")))?;
    }
    for set in [Ambient, Inheritable, Effective, Permitted] {
        caps::clear(None, set).map_err(|e| fail(format!("dropping {set:?} caps: {e}")))?;
    }

    // 6. Verify with raw syscalls, which also see capabilities newer than
    //    the caps crate: any capability left means refuse to run. (Without
    //    CAP_SETPCAP the bounding set cannot be changed; with an empty
    //    permitted set, no_new_privs and no execve it grants nothing.)
    let [eff, prm, inh] = sys::capget().map_err(fail)?;
    let is_set = |opt, a2, a3| sys::prctl("reading capabilities", opt, a2, a3) == Ok(1);
    let ambient_get = libc::PR_CAP_AMBIENT_IS_SET as u64;
    let amb = (0..64)
        .filter(|&c| is_set(libc::PR_CAP_AMBIENT, ambient_get, c))
        .count();
    let bnd = (0..64)
        .filter(|&c| setpcap && is_set(libc::PR_CAPBSET_READ, c, 0))
        .count();
    if eff | prm | inh != 0 || amb + bnd > 0 {
        return Err(fail(format!(
            "capabilities remain after dropping them (effective {eff:#x}, permitted {prm:#x}, \
             inheritable {inh:#x}, {amb} ambient, {bnd} bounding); refusing to run: \
             remove file capabilities from the helper (setcap -r)"
        )));
    }
    Ok(())
}

/// Root without landlock could open any root-owned file in the network
/// phase (seccomp filters syscalls, not paths): refuse to go on.
pub fn refuse_root_without_landlock(euid: u32, landlock_on: bool) -> Result<(), SandboxError> {
    if euid == 0 && !landlock_on {
        return Err(fail(
            "sandbox: running as root and this kernel does not enforce landlock, so nothing \
             would keep the helper from root's files; refusing the network phase: make the \
             token file belong to an unprivileged user (the helper then runs as that user), \
             or use a kernel with landlock (Linux 5.13+, `lsm=landlock,...`)"
                .into(),
        ));
    }
    Ok(())
}

/// Steps run after config and token are read and the endpoint address is
/// resolved, right before the HTTPS request: rlimits, landlock, seccomp.
/// Call it while the process has a single thread.
pub fn lock_down(policy: &Policy) -> Result<Report, SandboxError> {
    // 1. Decide from what this kernel offers: `required` stops here, before
    //    anything is half done, when a wall is missing.
    let support = kernel_support();
    let missing = decide(policy.mode, &support)?;

    // 2. One thread only: landlock confines the calling thread (seccomp is
    //    installed on all threads). Checked when /proc is visible; a thread
    //    just joined (the bounded DNS lookup's) may take a moment to leave
    //    /proc/self/task, so a second look comes after a short pause.
    let extra_threads = || sys::thread_count().filter(|&n| n > 1);
    let mut threads = extra_threads();
    for _ in 0..20 {
        if threads.is_none() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
        threads = extra_threads();
    }
    if let Some(n) = threads {
        return Err(fail(format!(
            "sandbox: {n} threads at lock-down; the helper must lock down single-threaded"
        )));
    }

    // 3. Resource limits: no new processes, few descriptors, small files,
    //    bounded CPU time (SIGXCPU/SIGXFSZ end the process).
    sys::lower_rlimit(libc::RLIMIT_NPROC, 0).map_err(fail)?;
    sys::lower_rlimit(libc::RLIMIT_NOFILE, 32).map_err(fail)?;
    sys::lower_rlimit(libc::RLIMIT_FSIZE, 1 << 20).map_err(fail)?;
    sys::lower_rlimit(libc::RLIMIT_CPU, 30).map_err(fail)?;

    // 4. Compile the seccomp filter now, while allocating is still cheap.
    let filter = if support.seccomp {
        Some(seccomp_filter::compile(!policy.read_paths.is_empty()).map_err(fail)?)
    } else {
        None
    };

    // 5. Landlock: files only beneath the token dir (+ read_paths), TCP
    //    connect only to connect_ports, no bind, IPC scoped.
    let status = landlock_rules::restrict(policy)?;
    if policy.mode == SandboxMode::Required && status != landlock::RulesetStatus::FullyEnforced {
        return Err(fail("sandbox: required, but landlock was not fully enforced; set \"sandbox\": \"best-effort\" or use a kernel with landlock ABI 6".into()));
    }
    let landlock_on = status != landlock::RulesetStatus::NotEnforced;
    refuse_root_without_landlock(crate::sys::euid(), landlock_on)?;

    // 6. Seccomp last: from here only the allow-list runs; anything else is SIGSYS.
    if let Some(program) = &filter {
        seccomp_filter::apply(program).map_err(fail)?;
    }

    let landlock_abi = support.landlock.as_ref().ok().copied();
    let summary = match (&support.landlock, missing.is_empty()) {
        (Ok(abi), true) => {
            format!("sandbox: landlock ABI {abi}, seccomp allow-list, no capabilities")
        }
        _ => {
            let list: Vec<&str> = missing.iter().map(|w| w.describe()).collect();
            format!(
                "sandbox: best effort, not enforced on this kernel: {}",
                list.join("; ")
            )
        }
    };
    Ok(Report {
        summary,
        landlock_abi,
        seccomp: filter.is_some(),
        missing,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_needs_landlock_for_the_network_phase() {
        let e = refuse_root_without_landlock(0, false).unwrap_err();
        assert!(
            e.0.contains("running as root") && e.0.contains("landlock"),
            "{e}"
        );
        refuse_root_without_landlock(0, true).unwrap();
        refuse_root_without_landlock(1000, false).unwrap();
    }
}
