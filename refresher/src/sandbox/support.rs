//! Which walls this kernel can enforce, and the pure decision `required` vs
//! `best-effort` takes from that (tested with injected kernel answers).

use super::{landlock_rules::PINNED_ABI, sys, SandboxError};
use common::config::SandboxMode;
use std::fmt;

/// One wall of the locked-down phase that depends on the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wall {
    /// landlock ABI 1: files only beneath the token directory (+ read_paths).
    FsBeneathTokenDir,
    /// landlock ABI 2: no link/rename of files into other directories.
    FsNoReparent,
    /// landlock ABI 3: no truncate outside the token directory.
    FsNoTruncate,
    /// landlock ABI 4: TCP connect only to the allowed ports, no TCP bind.
    TcpPorts,
    /// landlock ABI 5: no ioctl on device files.
    DevIoctl,
    /// landlock ABI 6: no abstract unix sockets, no signals, outside the sandbox.
    IpcScopes,
    /// seccomp: syscall allow-list, anything else kills the process.
    Syscalls,
}

impl Wall {
    pub const ALL: [Wall; 7] = [
        Wall::FsBeneathTokenDir,
        Wall::FsNoReparent,
        Wall::FsNoTruncate,
        Wall::TcpPorts,
        Wall::DevIoctl,
        Wall::IpcScopes,
        Wall::Syscalls,
    ];

    /// Landlock ABI the wall needs (None: needs seccomp instead).
    pub fn landlock_abi(self) -> Option<i32> {
        match self {
            Wall::FsBeneathTokenDir => Some(1),
            Wall::FsNoReparent => Some(2),
            Wall::FsNoTruncate => Some(3),
            Wall::TcpPorts => Some(4),
            Wall::DevIoctl => Some(5),
            Wall::IpcScopes => Some(6),
            Wall::Syscalls => None,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Wall::FsBeneathTokenDir => "files: access only beneath the token directory",
            Wall::FsNoReparent => "files: no link or rename into other directories",
            Wall::FsNoTruncate => "files: no truncate outside the token directory",
            Wall::TcpPorts => "network: TCP connect only to the endpoint's port, no bind",
            Wall::DevIoctl => "devices: no ioctl on device files",
            Wall::IpcScopes => "ipc: no abstract unix sockets or signals out of the sandbox",
            Wall::Syscalls => "syscalls: allow-list, anything else kills the helper",
        }
    }
}

/// What this kernel offers. `landlock` is the ABI version, or why none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Support {
    pub landlock: Result<i32, String>,
    pub seccomp: bool,
}

/// Ask the kernel (no side effects; used by lock_down and `--check`).
pub fn kernel_support() -> Support {
    let landlock = sys::landlock_abi().map_err(|errno| match errno {
        libc::EOPNOTSUPP => "built in but disabled at boot (add landlock to the lsm= list)".into(),
        libc::ENOSYS => {
            "not in this kernel (Linux 5.13 or later with CONFIG_SECURITY_LANDLOCK)".into()
        }
        e => format!("unavailable ({})", std::io::Error::from_raw_os_error(e)),
    });
    let seccomp =
        sys::seccomp_kill_process_available() && super::seccomp_filter::target_arch().is_some();
    Support { landlock, seccomp }
}

impl Support {
    pub fn enforces(&self, wall: Wall) -> bool {
        match wall.landlock_abi() {
            Some(need) => matches!(self.landlock, Ok(abi) if abi >= need),
            None => self.seccomp,
        }
    }

    pub fn missing(&self) -> Vec<Wall> {
        Wall::ALL
            .into_iter()
            .filter(|w| !self.enforces(*w))
            .collect()
    }
}

/// The decision: `required` refuses to run with any wall missing;
/// `best-effort` goes on and returns the missing walls for the report.
pub fn decide(mode: SandboxMode, support: &Support) -> Result<Vec<Wall>, SandboxError> {
    let missing = support.missing();
    if mode == SandboxMode::Required && !missing.is_empty() {
        let list: Vec<&str> = missing.iter().map(|w| w.describe()).collect();
        let landlock = match &support.landlock {
            Ok(abi) => format!("landlock ABI {abi}"),
            Err(why) => format!("landlock {why}"),
        };
        return Err(SandboxError(format!(
            "sandbox: required, but this kernel cannot enforce: {}; it has {landlock}, seccomp {}. \
             Run on Linux 6.12 or later with landlock enabled (landlock ABI 6), \
             or set \"sandbox\": \"best-effort\" in the config",
            list.join("; "),
            if support.seccomp { "available" } else { "unavailable" },
        )));
    }
    Ok(missing)
}

impl fmt::Display for Support {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.landlock {
            Ok(abi) => writeln!(
                f,
                "landlock: ABI {abi} (this build uses up to ABI {PINNED_ABI})"
            )?,
            Err(why) => writeln!(f, "landlock: {why}")?,
        }
        let seccomp = if self.seccomp {
            "filters with kill-process"
        } else {
            "unavailable"
        };
        writeln!(f, "seccomp: {seccomp}")?;
        writeln!(
            f,
            "[x] always: all capabilities dropped, no_new_privs, no core dumps, rlimits"
        )?;
        for w in Wall::ALL {
            let need = w
                .landlock_abi()
                .map_or("seccomp".into(), |a| format!("landlock ABI {a}"));
            let mark = if self.enforces(w) { "x" } else { " " };
            writeln!(f, "[{mark}] {} (needs {need})", w.describe())?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kernel(landlock: Result<i32, &str>, seccomp: bool) -> Support {
        Support {
            landlock: landlock.map_err(String::from),
            seccomp,
        }
    }

    #[test]
    fn walls_follow_the_abi() {
        assert!(kernel(Ok(7), true).missing().is_empty());
        assert!(kernel(Ok(6), true).missing().is_empty());
        let debian12 = kernel(Ok(2), true).missing();
        assert_eq!(
            debian12,
            [
                Wall::FsNoTruncate,
                Wall::TcpPorts,
                Wall::DevIoctl,
                Wall::IpcScopes
            ]
        );
        assert_eq!(kernel(Err("x"), false).missing(), Wall::ALL);
    }

    #[test]
    fn best_effort_runs_and_lists_what_is_missing() {
        let missing = decide(SandboxMode::BestEffort, &kernel(Err("disabled"), true)).unwrap();
        assert_eq!(missing.len(), 6);
        assert!(decide(SandboxMode::Required, &kernel(Ok(7), true))
            .unwrap()
            .is_empty());
    }
}
