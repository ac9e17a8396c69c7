//! Running the refresh helper, as the host (Postfix's smtp) does it:
//! checking the executable at init, starting the helper under a detached
//! supervisor, and reading the supervisor's [`report`].
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
//! kills it only at a much later safety deadline.
//!
//! The code of the processes after `fork` (intermediate, supervisor, the
//! helper's process before exec) is in [`crate::sys`], with the raw system
//! calls; this module is safe code.

pub(crate) mod report;

use crate::sys;
use common::errno::retry_eintr;
use report::{Finished, CAPTURE};
use std::ffi::CString;
use std::io::{self, Read};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

pub(crate) use report::Termination;

/// The helper executable: an `O_PATH` descriptor opened and checked at init
/// (before Postfix chroots). It is executed only through the descriptor
/// (`execveat`), never by path, which inside the chroot would name another
/// file or none; without the descriptor there is no refresh, and the log
/// says why ([`Exec::open`]'s error).
#[derive(Debug)]
pub(crate) struct Exec {
    fd: OwnedFd,
}

impl Exec {
    /// Open `path` with `O_PATH | O_CLOEXEC` and check it OpenSSH
    /// `safe_path` style ([`safe_exec_path`]); the error says what to fix.
    pub(crate) fn open(path: &Path) -> Result<Exec, String> {
        use std::os::unix::ffi::OsStrExt;
        if path.as_os_str().as_bytes().contains(&0) {
            return Err(format!("{} contains a NUL byte", path.display()));
        }
        // std adds O_CLOEXEC; O_RDONLY is 0, so this is O_PATH alone.
        let fd: OwnedFd = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_PATH)
            .open(path)
            .map_err(|e| format!("{} cannot be opened: {e}", path.display()))?
            .into();
        safe_exec_path(path, &fd, sys::geteuid())?;
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

/// How long the supervisor lets a helper run before it kills it: far past
/// the helper's own `refresh_timeout` limit, so only a wedged helper dies.
fn safety_deadline(timeout: Duration) -> Duration {
    timeout * 3 + Duration::from_secs(30)
}

/// Run the helper and wait for its result, at most `timeout`. On timeout
/// the helper is left to finish (or give up) by itself.
pub(crate) fn run(
    exec: &Exec,
    args: &[CString],
    input: &[u8],
    timeout: Duration,
) -> io::Result<Finished> {
    let report = sys::spawn_supervised(exec.fd.as_fd(), args, input, safety_deadline(timeout))?;
    let mut report = std::fs::File::from(report);
    let start = Instant::now();
    let mut buf = Vec::with_capacity(16 + 2 * CAPTURE);
    let mut chunk = [0u8; 4096];
    loop {
        let left = timeout.saturating_sub(start.elapsed());
        if left.is_zero() {
            return Ok(Finished::without_output(Termination::TimedOut));
        }
        if !sys::readable(report.as_raw_fd(), sys::poll_ms(left)) {
            continue; // timeout (checked above) or EINTR
        }
        match retry_eintr(|| report.read(&mut chunk)) {
            Ok(n) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => break, // EOF: the supervisor is done (or died)
        }
    }
    Ok(report::decode(&buf).unwrap_or(Finished::without_output(Termination::Unknown)))
}

/// Start the helper and return at once; the supervisor sees it through.
pub(crate) fn run_detached(
    exec: &Exec,
    args: &[CString],
    input: &[u8],
    timeout: Duration,
) -> io::Result<()> {
    sys::spawn_supervised(exec.fd.as_fd(), args, input, safety_deadline(timeout)).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::handoff::READY;

    /// The helper's stdin, as the real spawn path (host, supervisor, child,
    /// `execveat`) sets it up, seen from inside the helper's process: a
    /// socket, which a same-uid process cannot reopen through
    /// `/proc/PID/fd/0` (ENXIO, where a pipe would open), one-way like a
    /// pipe, carrying the whole handoff and then EOF.
    #[test]
    fn the_helpers_stdin_is_a_socket_that_proc_cannot_reopen() {
        let exec = Exec::open(Path::new("/bin/sh")).expect("/bin/sh");
        let script = r#"printf '%s' "$1"
stat -L -c 'type: %F' /proc/self/fd/0
if cat /proc/self/fd/0 >/dev/null 2>&1; then echo 'reopen: ok'; else echo 'reopen: failed'; fi
cat /proc/self/fd/0 2>&1 >/dev/null | sed 's/^.*: /reopen error: /'
if (printf x >&0) 2>/dev/null; then echo 'send: ok'; else echo 'send: failed'; fi
echo "bytes: $(wc -c)""#;
        let ready = std::str::from_utf8(READY).unwrap();
        let args = [
            c"sh".to_owned(),
            c"-c".to_owned(),
            CString::new(script).unwrap(),
            c"sh".to_owned(),
            CString::new(ready).unwrap(),
        ];
        let input = vec![b'x'; 300_000]; // more than a socket buffer holds
        let done = run(&exec, &args, &input, Duration::from_secs(30)).unwrap();
        let out = String::from_utf8_lossy(&done.stdout);
        assert_eq!(done.how, Termination::Exited(0), "{out}");
        assert!(out.contains("type: socket\n"), "{out}");
        assert!(out.contains("reopen: failed\n"), "{out}");
        assert!(
            out.contains("reopen error: No such device or address\n"),
            "{out}"
        );
        assert!(out.contains("send: failed\n"), "one-way: {out}");
        assert!(out.contains(&format!("bytes: {}\n", input.len())), "{out}");
    }
}
