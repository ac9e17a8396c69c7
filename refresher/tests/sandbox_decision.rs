//! The pure parts of the sandbox: the `required` / `best-effort` decision
//! from an injected kernel answer, what this kernel offers, and the shape
//! of the syscall allow-list.

use common::config::SandboxMode::{BestEffort, Required};
use refresher::{allow_list, decide_sandbox as decide, kernel_support, Support, Wall};

fn kernel(landlock: Result<i32, &str>, seccomp: bool) -> Support {
    Support {
        landlock: landlock.map_err(String::from),
        seccomp,
    }
}

#[test]
fn required_fails_clearly_when_landlock_is_unsupported() {
    let no_landlock = kernel(
        Err("not in this kernel (Linux 5.13 or later with CONFIG_SECURITY_LANDLOCK)"),
        true,
    );
    let msg = decide(Required, &no_landlock).unwrap_err().to_string();
    for part in [
        "sandbox: required",
        "files: access only beneath the token directory",
        "network: TCP connect only to the endpoint's port",
        "landlock not in this kernel",
        "set \"sandbox\": \"best-effort\"",
    ] {
        assert!(msg.contains(part), "{part:?} missing in: {msg}");
    }
}

#[test]
fn required_fails_on_an_old_abi_and_without_seccomp() {
    let debian12 = decide(Required, &kernel(Ok(2), true))
        .unwrap_err()
        .to_string();
    assert!(
        debian12.contains("landlock ABI 2") && debian12.contains("network: TCP"),
        "{debian12}"
    );
    assert!(
        !debian12.contains("files: access only beneath"),
        "ABI 2 has that wall: {debian12}"
    );
    let no_seccomp = decide(Required, &kernel(Ok(7), false))
        .unwrap_err()
        .to_string();
    assert!(
        no_seccomp.contains("syscalls: allow-list") && no_seccomp.contains("seccomp unavailable"),
        "{no_seccomp}"
    );
}

#[test]
fn best_effort_goes_on_and_names_what_is_missing() {
    assert_eq!(
        decide(BestEffort, &kernel(Err("disabled"), false)).unwrap(),
        Wall::ALL
    );
    assert_eq!(
        decide(BestEffort, &kernel(Ok(4), true)).unwrap(),
        [Wall::DevIoctl, Wall::IpcScopes]
    );
    assert!(decide(Required, &kernel(Ok(6), true)).unwrap().is_empty());
}

#[test]
fn this_kernel_enforces_every_wall() {
    let s = kernel_support();
    assert!(
        s.missing().is_empty(),
        "tests expect landlock ABI >= 6 and seccomp here:\n{s}"
    );
    let text = s.to_string();
    assert!(
        text.starts_with("landlock: ABI ") && text.contains("seccomp: filters with kill-process"),
        "{text}"
    );
    assert_eq!(text.matches("[x]").count(), Wall::ALL.len() + 1, "{text}");
}

#[test]
fn allow_list_has_reasons_and_no_dangerous_syscall() {
    let list = allow_list();
    assert!(
        list.iter().all(|(_, why)| why.len() > 10),
        "every syscall needs a reason"
    );
    let names: Vec<&str> = list.iter().map(|(n, _)| *n).collect();
    for bad in [
        "execve",
        "execveat",
        "fork",
        "vfork",
        "clone",
        "clone3",
        "ptrace",
        "bind",
        "listen",
        "accept",
        "accept4",
        "prctl",
        "seccomp",
        "kill",
        "mprotect",
        "socketpair",
        "setuid",
        "chroot",
        "unshare",
        "mount",
        "open_by_handle_at",
        "process_vm_writev",
        "landlock_restrict_self",
    ] {
        assert!(!names.contains(&bad), "{bad} must not be allowed");
    }
    let mut sorted = names.clone();
    sorted.sort_unstable();
    sorted.dedup();
    assert_eq!(sorted.len(), names.len(), "duplicate entries");
}
