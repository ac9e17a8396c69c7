//! Every wall of the helper's sandbox, proven on this kernel. The probe
//! (src/bin/sandbox-probe.rs) runs `harden_process` and `lock_down` with
//! `Policy::for_token`, as the helper does, then tries ONE action; we check
//! how it ended: `result: ok`, `result: errno N`, or killed by a signal.

use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

const PROBE: &str = env!("CARGO_BIN_EXE_sandbox-probe");
const EACCES: &str = "result: errno 13 ";

/// A token directory with a token, and a sibling directory outside it.
struct Dirs {
    _tmp: tempfile::TempDir,
    token: PathBuf,
    sibling: PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let (tok, sibling) = (tmp.path().join("tokens"), tmp.path().join("sibling"));
    std::fs::create_dir(&tok).unwrap();
    std::fs::create_dir(&sibling).unwrap();
    std::fs::write(tok.join("token.json"), br#"{"refresh_token":"r"}"#).unwrap();
    std::fs::write(sibling.join("other.json"), b"{}").unwrap();
    Dirs {
        token: tok.join("token.json"),
        sibling,
        _tmp: tmp,
    }
}

/// Run the probe as the plugin runs the helper: empty environment.
fn probe_cmd(token: &Path, port: u16, args: &[&str]) -> Command {
    let mut c = Command::new(PROBE);
    c.env_clear()
        .stdin(Stdio::null())
        .arg("--token")
        .arg(token)
        .arg("--port")
        .arg(port.to_string());
    c.args(args);
    c
}

fn probe(d: &Dirs, port: u16, args: &[&str]) -> Output {
    probe_cmd(&d.token, port, args).output().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn assert_result(o: &Output, want: &str) {
    let out = stdout(o);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        o.status.success() && out.contains(want),
        "want {want:?}; {:?}\nstdout: {out}\nstderr: {err}",
        o.status
    );
}

fn assert_killed(o: &Output, sig: i32, action: &str) {
    assert_eq!(
        o.status.signal(),
        Some(sig),
        "{action}: {:?}, stdout: {}",
        o.status,
        stdout(o)
    );
}

#[test]
fn files_outside_the_token_dir_are_denied() {
    let d = dirs();
    let other = d.sibling.join("other.json");
    let new = d.sibling.join("new");
    for (action, path) in [
        ("read", Path::new("/etc/passwd")),
        ("read", &other),
        ("write", &other),
        ("create", &new),
    ] {
        let o = probe(&d, 443, &[action, path.to_str().unwrap()]);
        assert_denied(&o, &format!("{action} {}", path.display()));
    }
    assert_eq!(std::fs::read(&other).unwrap(), b"{}");
    assert!(!new.exists());
}

#[test]
fn token_dir_allows_temp_write_fsync_rename() {
    let d = dirs();
    assert_result(&probe(&d, 443, &["token-ops"]), "result: ok 22 bytes");
    assert_eq!(
        std::fs::read(&d.token).unwrap(),
        br#"{"refresh_token":"r"} "#
    );
    assert!(d.token.with_file_name(".token.json.lock").exists());
    assert!(!d.token.with_file_name(".token.json.tmp").exists());
}

/// Everything is opened before lock-down, so the locked phase opens no
/// file: seccomp has no openat (SIGSYS), and landlock grants no read,
/// write or listing in the token directory, which the second half proves
/// with a policy whose read path makes seccomp allow read-only opens.
#[test]
fn the_locked_helper_cannot_open_another_token_in_its_directory() {
    let d = dirs();
    let other = d.token.with_file_name("other@example.com.json");
    std::fs::write(&other, br#"{"refresh_token":"someone-else"}"#).unwrap();
    let other_s = other.to_str().unwrap();
    let created = d.token.with_file_name("created");
    for args in [
        vec!["read", other_s],
        vec!["read", d.token.to_str().unwrap()],
        vec!["write", other_s],
        vec!["create", created.to_str().unwrap()],
        vec!["--mode", "required", "read", other_s],
    ] {
        assert_killed(&probe(&d, 443, &args), libc::SIGSYS, &args.join(" "));
    }
    let unrelated = d.sibling.join("other.json");
    let with_reads = |a| {
        probe(
            &d,
            443,
            &["--read", unrelated.to_str().unwrap(), a, other_s],
        )
    };
    assert_result(&with_reads("read"), EACCES);
    assert_denied(&with_reads("write"), "write another token");
    assert_eq!(
        std::fs::read(&other).unwrap(),
        br#"{"refresh_token":"someone-else"}"#
    );
    assert!(!created.exists());
}

#[test]
fn read_paths_are_readable_not_writable() {
    let d = dirs();
    let other = d.sibling.join("other.json");
    let args = |a| {
        [
            "--read",
            other.to_str().unwrap(),
            a,
            other.to_str().unwrap(),
        ]
    };
    assert_result(&probe(&d, 443, &args("read")), "result: ok 2 bytes");
    assert_denied(&probe(&d, 443, &args("write")), "write a read path");
    assert_eq!(std::fs::read(&other).unwrap(), b"{}");
}

#[test]
fn tcp_connect_only_to_the_allowed_port() {
    let d = dirs();
    let allowed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let (a, o) = (
        allowed.local_addr().unwrap().port(),
        other.local_addr().unwrap().port(),
    );
    assert_result(&probe(&d, a, &["connect", &a.to_string()]), "result: ok");
    assert_result(&probe(&d, a, &["connect", &o.to_string()]), EACCES);
}

/// A listener on a port the sandbox does not allow: after the probe ran,
/// nothing may have connected to it, and so nothing was received.
fn assert_listener_untouched(l: &std::net::TcpListener, what: &str) {
    l.set_nonblocking(true).unwrap();
    match l.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Ok((mut s, peer)) => {
            s.set_nonblocking(false).unwrap();
            s.set_read_timeout(Some(std::time::Duration::from_secs(2)))
                .unwrap();
            let mut got = Vec::new();
            let _ = s.read_to_end(&mut got);
            panic!(
                "{what}: the forbidden port got a connection from {peer} and {:?}",
                String::from_utf8_lossy(&got)
            )
        }
        Err(e) => panic!("{what}: accept: {e}"),
    }
}

/// Denied means killed by seccomp or refused by landlock; either way the
/// probe must not report bytes sent.
fn assert_denied(o: &Output, what: &str) {
    let denied = o.status.signal() == Some(libc::SIGSYS)
        || (o.status.success() && stdout(o).contains(EACCES));
    assert!(
        denied,
        "{what} must be killed by SIGSYS or get EACCES: {:?}, stdout: {}",
        o.status,
        stdout(o)
    );
}

/// Landlock's port rule covers only TCP connect(2); an MPTCP socket
/// (IPPROTO_MPTCP) connects anywhere. The filter allows protocol 0 or
/// IPPROTO_TCP only.
#[test]
fn mptcp_socket_cannot_reach_another_port() {
    let d = dirs();
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = other.local_addr().unwrap().port().to_string();
    let o = probe(&d, 443, &["mptcp-connect", &port]);
    assert_denied(&o, "mptcp connect");
    assert_listener_untouched(&other, "mptcp");
}

/// TCP Fast Open: sendto(MSG_FASTOPEN, addr) connects without connect(2),
/// so landlock never sees it. The filter allows sendto only with a NULL
/// address and without MSG_FASTOPEN.
#[test]
fn fastopen_sendto_cannot_reach_another_port() {
    let d = dirs();
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = other.local_addr().unwrap().port().to_string();
    let o = probe(&d, 443, &["fastopen", &port]);
    assert_denied(&o, "fastopen sendto");
    assert_listener_untouched(&other, "fastopen");
}

/// SCTP is the same class as MPTCP. This kernel has no SCTP (socket gives
/// EPROTONOSUPPORT), so the proof is the SIGSYS: seccomp kills the call
/// before the kernel looks at the protocol, on any kernel.
#[test]
fn sctp_socket_is_killed_by_sigsys() {
    let d = dirs();
    let other = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = other.local_addr().unwrap().port().to_string();
    let o = probe(&d, 443, &["sctp-connect", &port]);
    assert_killed(&o, libc::SIGSYS, "sctp socket");
    assert_listener_untouched(&other, "sctp");
}

/// SIGSTOP/SIGCONT (or `strace -p`) during the retry sleep makes the
/// kernel resume the sleep with restart_syscall, which must be allowed.
#[test]
fn sigstop_sigcont_during_the_sleep_is_survived() {
    let d = dirs();
    let child = probe_cmd(&d.token, 443, &["sleep", "1500"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id() as libc::pid_t;
    std::thread::sleep(std::time::Duration::from_millis(500));
    // SAFETY: signalling our own child, which has not been reaped yet.
    unsafe {
        assert_eq!(libc::kill(pid, libc::SIGSTOP), 0);
        std::thread::sleep(std::time::Duration::from_millis(200));
        assert_eq!(libc::kill(pid, libc::SIGCONT), 0);
    }
    let o = child.wait_with_output().unwrap();
    assert_result(&o, "result: ok");
}

#[test]
fn exec_fork_thread_ptrace_are_killed_by_sigsys() {
    let d = dirs();
    for action in ["exec", "fork", "thread", "ptrace"] {
        assert_killed(&probe(&d, 443, &[action]), libc::SIGSYS, action);
    }
}

#[test]
fn bind_and_non_tcp_sockets_are_killed_by_sigsys() {
    let d = dirs();
    for action in ["bind", "unix-socket", "udp-socket"] {
        assert_killed(&probe(&d, 443, &[action]), libc::SIGSYS, action);
    }
}

#[test]
fn executable_memory_prctl_and_signals_are_killed_by_sigsys() {
    let d = dirs();
    for action in ["mmap-exec", "prctl", "kill-parent"] {
        assert_killed(&probe(&d, 443, &[action]), libc::SIGSYS, action);
    }
}

#[test]
fn rlimits_stop_big_files_and_many_descriptors() {
    let d = dirs();
    assert_killed(&probe(&d, 443, &["fsize"]), libc::SIGXFSZ, "fsize");
    assert_result(&probe(&d, 443, &["nofile"]), "result: errno 24 ");
}

#[test]
fn allocator_sleep_panic_and_abort_paths_are_allowed() {
    let d = dirs();
    assert_result(&probe(&d, 443, &["alloc"]), "result: ok 10 8388608");
    assert_result(&probe(&d, 443, &["sleep"]), "result: ok");
    let panic = probe(&d, 443, &["panic"]);
    assert_eq!(
        panic.status.code(),
        Some(101),
        "a panic must exit 101, not die by SIGSYS: {:?}",
        panic.status
    );
    assert_killed(&probe(&d, 443, &["abort"]), libc::SIGABRT, "abort");
}

#[test]
fn required_mode_locks_down_on_this_kernel() {
    let d = dirs();
    let o = probe(&d, 443, &["--mode", "required", "token-ops"]);
    assert_result(&o, "result: ok");
    let report = String::from_utf8_lossy(&o.stderr);
    assert!(
        report.contains("sandbox: landlock ABI") && report.contains("seccomp allow-list"),
        "{report}"
    );
}

#[test]
fn lock_down_refuses_a_second_thread() {
    let d = dirs();
    let o = probe(&d, 443, &["--thread", "read", "/etc/passwd"]);
    assert_eq!(o.status.code(), Some(common::exit::OSERR), "{:?}", o.status);
    assert!(
        stdout(&o).contains("lockdown: sandbox: 2 threads at lock-down"),
        "{}",
        stdout(&o)
    );
}

fn status_field<'a>(out: &'a str, name: &str) -> &'a str {
    let line = out
        .lines()
        .find(|l| l.starts_with(&format!("{name}:")))
        .unwrap_or_else(|| panic!("{name} in {out}"));
    line.split_once(':').unwrap().1.trim()
}

#[test]
fn root_with_capabilities_ends_with_none() {
    let own = std::fs::read_to_string("/proc/self/status").unwrap();
    let eff = u64::from_str_radix(status_field(&own, "CapEff"), 16).unwrap();
    assert!(
        eff & (1 << 21) != 0,
        "this test must run as root with CAP_SYS_ADMIN (21), as CI does: CapEff {eff:#x}"
    );
    let d = dirs();
    let leaked = std::fs::File::open(&d.token).unwrap();
    let kept = std::fs::File::open(&d.token).unwrap();
    let (leaked_fd, kept_fd) = (
        std::os::fd::AsRawFd::as_raw_fd(&leaked),
        std::os::fd::AsRawFd::as_raw_fd(&kept),
    );
    let mut cmd = probe_cmd(
        &d.token,
        443,
        &["--keep-fd", &kept_fd.to_string(), "status"],
    );
    // SAFETY: between fork and exec the closure only makes async-signal-safe
    // calls (fcntl, signal, sigprocmask) on the child's own state.
    unsafe {
        cmd.pre_exec(move || {
            libc::fcntl(leaked_fd, libc::F_SETFD, 0); // inherit both descriptors
            libc::fcntl(kept_fd, libc::F_SETFD, 0);
            libc::signal(libc::SIGTERM, libc::SIG_IGN); // a careless parent's state
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigaddset(&mut set, libc::SIGUSR1);
            libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            Ok(())
        })
    };
    let o = cmd.output().unwrap();
    let out = stdout(&o);
    assert!(o.status.success(), "{:?} {out}", o.status);
    for set in ["CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"] {
        assert_eq!(status_field(&out, set), "0000000000000000", "{set}");
    }
    assert_eq!(status_field(&out, "NoNewPrivs"), "1");
    assert_eq!(status_field(&out, "Dumpable"), "0");
    assert_eq!(status_field(&out, "CoreLimit"), "0 0");
    assert_eq!(status_field(&out, "SigBlk"), "0000000000000000");
    assert_eq!(
        status_field(&out, "SigIgn"),
        "0000000000001000",
        "only SIGPIPE stays ignored"
    );
    assert_eq!(
        status_field(&out, "OpenFds"),
        format!("0,1,2,{kept_fd}"),
        "leaked fd {leaked_fd} must be closed"
    );
}

/// A local HTTPS token endpoint with a throwaway CA; answers one POST.
fn https_endpoint() -> (u16, String, std::thread::JoinHandle<String>) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = rcgen::CertifiedIssuer::self_signed(ca_params, ca_key).unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()])
        .unwrap()
        .signed_by(&key, &ca)
        .unwrap();
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(
            vec![leaf.der().clone()],
            rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
        )
        .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        let (mut tcp, _) = listener.accept().unwrap();
        tcp.set_read_timeout(Some(std::time::Duration::from_secs(30)))
            .unwrap();
        let mut conn = rustls::ServerConnection::new(std::sync::Arc::new(config)).unwrap();
        let mut tls = rustls::Stream::new(&mut conn, &mut tcp);
        let (mut req, mut buf) = (Vec::new(), [0u8; 4096]);
        while !String::from_utf8_lossy(&req).ends_with("grant_type=refresh_token") {
            let n = tls.read(&mut buf).unwrap();
            assert!(n > 0, "client closed early");
            req.extend_from_slice(&buf[..n]);
        }
        let body = r#"{"access_token":"at-1","expires_in":3599}"#;
        write!(
            tls,
            "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        tls.flush().unwrap();
        conn.send_close_notify();
        let _ = conn.complete_io(&mut tcp);
        String::from_utf8_lossy(&req).into_owned()
    });
    (port, ca.pem(), server)
}

#[test]
fn https_request_works_inside_the_sandbox() {
    let d = dirs();
    let (port, ca_pem, server) = https_endpoint();
    let ca = d.token.with_file_name("ca.pem");
    std::fs::write(&ca, ca_pem).unwrap();
    let url = format!("https://localhost:{port}/token");
    let o = probe(
        &d,
        port,
        &[
            "--mode",
            "required",
            "--ca",
            ca.to_str().unwrap(),
            "https",
            &url,
        ],
    );
    assert_result(
        &o,
        r#"result: ok 200 {"access_token":"at-1","expires_in":3599}"#,
    );
    assert!(server.join().unwrap().starts_with("POST /token HTTP/1.1"));
}
