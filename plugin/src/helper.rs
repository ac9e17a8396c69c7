//! The plugin's side of the refresh helper: what it loads at init (before
//! Postfix chroots), how it calls the helper, how it reads the result.

use crate::session::Refresher;
use crate::spawn::{self, Exec, Termination};
use common::handoff::Handoff;
use common::{exit, Config};
use std::ffi::CString;
use std::path::Path;
use std::time::Duration;
use zeroize::Zeroizing;

/// Runs `sasl-xoauth2-refresh` with the config handed over on its stdin.
#[derive(Debug)]
pub struct Helper {
    exec: Exec,
    handoff: Zeroizing<Vec<u8>>,
    timeout: Duration,
}

impl Helper {
    /// Prepare everything the helper will need later, while the files are
    /// still visible: its executable (as a descriptor), the config bytes and
    /// any CA certificates the config names.
    pub fn load(config: &Config, config_bytes: &[u8]) -> Result<Helper, String> {
        let path = Path::new(config.refresh_helper());
        // Opened now, before any chroot, and only ever run through this
        // descriptor: without it there is no refresh (no exec by path).
        let exec = Exec::open(path).map_err(|e| {
            format!(
                "refresh helper: {e}; install it or set refresh_helper in {}",
                config.path.display()
            )
        })?;
        let handoff = Handoff {
            config_path: config.path.display().to_string(),
            config: String::from_utf8_lossy(config_bytes).into_owned(),
            ca_pem: read_ca(config),
        };
        Ok(Helper {
            exec,
            handoff: handoff.encode(),
            timeout: Duration::from_secs(config.refresh_timeout()),
        })
    }

    fn args(token: &Path, rejected: Option<&str>) -> Vec<CString> {
        use std::os::unix::ffi::OsStrExt;
        let mut args = vec![
            c"sasl-xoauth2-refresh".to_owned(),
            c"--config-fd".to_owned(),
            c"0".to_owned(),
        ];
        if let Some(fp) = rejected.and_then(|fp| CString::new(fp).ok()) {
            args.extend([c"--force".to_owned(), c"--if-access-token".to_owned(), fp]);
        }
        args.push(c"--".to_owned());
        args.push(CString::new(token.as_os_str().as_bytes()).unwrap_or_default());
        args
    }
}

impl Refresher for Helper {
    fn refresh_now(&self, token: &Path) -> Result<String, String> {
        // A little past refresh_timeout, which the helper enforces on itself,
        // so that we normally get its own explanation rather than silence.
        let wait = self.timeout + Duration::from_millis(500);
        let done = spawn::run(&self.exec, &Self::args(token, None), &self.handoff, wait)
            .map_err(|e| format!("cannot start the refresh helper: {e}"))?;
        let status = status_line(&done.stdout, &done.stderr);
        match done.how {
            Termination::Exited(0) => Ok(status),
            Termination::Exited(code) => Err(format!(
                "helper exit {code} ({}): {status}",
                exit::describe(code)
            )),
            Termination::Signaled(libc::SIGSYS) => Err(
                "helper killed by its seccomp filter (SIGSYS); please report this as a bug".into(),
            ),
            Termination::Signaled(sig) => Err(format!("helper killed by signal {sig}")),
            Termination::TimedOut => Err(format!(
                "no result within refresh_timeout ({} s); the refresh goes on in the background",
                self.timeout.as_secs()
            )),
            Termination::Unknown => {
                Ok("helper finished (exit status unavailable: the host ignores SIGCHLD)".into())
            }
        }
    }

    fn refresh_in_background(&self, token: &Path, rejected: Option<&str>) -> Result<(), String> {
        if lock_held(&common::token::lock_path(token)) {
            return Ok(()); // a refresh of this token is already running
        }
        spawn::run_detached(
            &self.exec,
            &Self::args(token, rejected),
            &self.handoff,
            self.timeout,
        )
        .map_err(|e| format!("cannot start the refresh helper: {e}"))
    }
}

/// Whether another process holds the refresh lock file `lock` (an
/// exclusive `flock`, as the helper takes it), probed with a shared lock
/// (AppArmor counts an exclusive one as a write). Opens it read-only
/// without following links: the plugin never creates or writes files. A
/// missing file means "not held".
fn lock_held(lock: &Path) -> bool {
    use std::os::unix::fs::OpenOptionsExt;
    let Ok(file) = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(lock)
    else {
        return false;
    };
    // Closing the file releases the shared lock if we got it.
    matches!(crate::sys::try_lock_shared(&file),
        Err(e) if e.raw_os_error() == Some(libc::EWOULDBLOCK))
}

/// The helper's one-line status (stdout), or the last stderr line.
fn status_line(stdout: &[u8], stderr: &[u8]) -> String {
    let pick = |b: &[u8]| {
        String::from_utf8_lossy(b)
            .lines()
            .map(str::trim)
            .rfind(|l| !l.is_empty())
            .map(str::to_owned)
    };
    let line = pick(stdout)
        .or_else(|| pick(stderr))
        .unwrap_or_else(|| "(no output)".into());
    line.chars().filter(|c| !c.is_control()).take(400).collect()
}

/// PEM text from `ca_bundle_file` and the CA certificates of
/// `ca_certs_dir` (common::ca: CApath rules); empty when the config names
/// neither or nothing usable is there (the helper then tries the paths
/// itself, and says what is wrong).
fn read_ca(config: &Config) -> String {
    let mut pem = String::new();
    if let Some(f) = config.ca_bundle_file.as_deref().filter(|f| !f.is_empty()) {
        if let Ok(text) = common::ca::read_bundle(Path::new(f)) {
            pem.push_str(&text);
            pem.push('\n');
        }
    }
    if let Some(d) = config.ca_certs_dir.as_deref().filter(|d| !d.is_empty()) {
        if let Ok(found) = common::ca::read_dir(Path::new(d)) {
            pem.push_str(&found.pem);
        }
    }
    pem
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_line_prefers_stdout_and_strips_controls() {
        assert_eq!(
            status_line(b"ok: refreshed x\n", b"noise\n"),
            "ok: refreshed x"
        );
        assert_eq!(
            status_line(b"", b"first\nerror: \x1b[1mbad\n"),
            "error: [1mbad"
        );
        assert_eq!(status_line(b"", b""), "(no output)");
    }

    #[test]
    fn lock_held_sees_only_another_holder_of_the_real_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path();
        let lock = dir.join("token.lock");
        assert!(!lock_held(&lock), "a missing file is not held");
        std::fs::write(&lock, b"").unwrap();
        assert!(!lock_held(&lock), "nobody holds it");
        // flock is per open file: this one stands for the helper's.
        let helper = std::fs::File::open(&lock).unwrap();
        crate::sys::try_lock_exclusive(&helper).unwrap();
        assert!(lock_held(&lock), "the helper holds it");
        let link = dir.join("link.lock");
        std::os::unix::fs::symlink(&lock, &link).unwrap();
        assert!(!lock_held(&link), "a symlink is not followed");
        assert!(
            !lock_held(Path::new("/tmp/nul\0byte")),
            "a NUL byte is no path"
        );
        drop(helper);
        assert!(!lock_held(&lock), "released when the helper's file closes");
        // The probe never created, wrote or truncated anything.
        assert_eq!(std::fs::read(&lock).unwrap(), b"");
    }

    #[test]
    fn args_end_options_before_the_path() {
        let args = |rejected| {
            Helper::args(Path::new("/t/-x"), rejected)
                .iter()
                .map(|c| c.to_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            args(None),
            ["sasl-xoauth2-refresh", "--config-fd", "0", "--", "/t/-x"]
        );
        let forced = args(Some("sha256:0123abcd"));
        assert_eq!(
            forced[3..6],
            ["--force", "--if-access-token", "sha256:0123abcd"]
        );
        assert_eq!(forced[6..], ["--", "/t/-x"]);
    }
}
