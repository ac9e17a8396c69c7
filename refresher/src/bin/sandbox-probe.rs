//! TEST ONLY, never installed: enters the helper's sandbox through the same
//! code and policy function as sasl-xoauth2-refresh, then tries ONE action
//! named on the command line and prints `result: ok ...` or
//! `result: errno N`. Walls that kill (seccomp, rlimits) show as the exit
//! signal. The `https` action uses the helper's own client (`refresher::Client`).
//! Driven by tests/sandbox_walls.rs.
//!
//! sandbox-probe --token PATH --port N [--mode required|best-effort]
//!               [--keep-fd N] [--read PATH] [--ca PEM] [--thread] ACTION [ARG]

use common::config::SandboxMode;
use refresher::{harden_process, lock_down, Client, Endpoint, Policy, Route, Trust};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

fn main() {
    let mut args = std::env::args().skip(1);
    let (mut token, mut port, mut mode) = (PathBuf::new(), 0u16, SandboxMode::BestEffort);
    let (mut keep, mut read, mut ca, mut thread) = (vec![], vec![], None, false);
    let mut action = vec![];
    while let Some(a) = args.next() {
        let mut val = || args.next().expect("option needs a value");
        match a.as_str() {
            "--token" => token = val().into(),
            "--port" => port = val().parse().expect("port number"),
            "--mode" => {
                mode = if val() == "required" {
                    SandboxMode::Required
                } else {
                    SandboxMode::BestEffort
                }
            }
            "--keep-fd" => keep.push(val().parse().expect("fd number")),
            "--read" => read.push(PathBuf::from(val())),
            "--ca" => ca = Some(std::fs::read(val()).expect("CA file")),
            "--thread" => thread = true,
            _ => action.push(a),
        }
    }
    if let Err(e) = harden_process(&keep) {
        println!("harden: {e}");
        std::process::exit(common::exit::OSERR);
    }
    if action[0] == "status" {
        return status();
    }
    let client = ca.map(|pem| https_client(&pem, action.get(1).expect("https URL")));
    if thread {
        std::thread::spawn(std::thread::park);
    }
    let mut policy = Policy::for_token(&token, port, mode);
    policy.read_paths = read;
    // What the helper opens before lock-down (lock, token, temp file, dir).
    let opened = match action[0].as_str() {
        "token-ops" => Some(open_token_files(&policy.token_dir).expect("token files")),
        "fsize" => Some(Opened::just(
            std::fs::File::create(policy.token_dir.join("big")).expect("big"),
        )),
        _ => None,
    };
    match lock_down(&policy) {
        Ok(report) => eprintln!("{report}"),
        Err(e) => {
            println!("lockdown: {e}");
            std::process::exit(common::exit::OSERR);
        }
    }
    let arg = action.get(1).cloned().unwrap_or_default();
    let result = run(&action[0], &arg, opened, client);
    match result {
        Ok(what) => println!("result: ok {what}"),
        Err(e) => println!("result: errno {} ({e})", e.raw_os_error().unwrap_or(0)),
    }
}

fn run(
    action: &str,
    arg: &str,
    opened: Option<Opened>,
    client: Option<(Client, String)>,
) -> std::io::Result<String> {
    use std::fs::{File, OpenOptions};
    let opened = || opened.expect("opened before lock-down");
    match action {
        "read" => std::fs::read(arg).map(|b| format!("{} bytes", b.len())),
        "write" => OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(arg)?
            .write_all(b"x")
            .map(|_| String::new()),
        "create" => File::create_new(arg).map(|_| String::new()),
        "connect" => std::net::TcpStream::connect(("127.0.0.1", arg.parse::<u16>().unwrap()))
            .map(|_| String::new()),
        "token-ops" => token_ops(opened()),
        "https" => {
            let (client, url) = client.expect("--ca");
            let budget = std::time::Duration::from_secs(20);
            let reply = client
                .post_form(&url, b"grant_type=refresh_token", budget)
                .map_err(|e| std::io::Error::other(e.to_string()))?;
            Ok(format!(
                "{} {}",
                reply.status,
                String::from_utf8_lossy(&reply.body)
            ))
        }
        "alloc" => {
            let mut v: Vec<Vec<u8>> = (0..20_000).map(|i| vec![i as u8; 100 + i % 900]).collect();
            let mut big = Vec::new();
            (0..8 << 20).for_each(|i| big.push(i as u8)); // realloc up to 8 MiB
            v.truncate(10);
            Ok(format!("{} {}", v.len(), big.len()))
        }
        "fsize" => opened()
            .temp
            .write_all(&vec![0; 2 << 20])
            .map(|_| String::new()),
        "nofile" => (0..64)
            .map(|_| tcp_socket())
            .collect::<Result<Vec<_>, _>>()
            .map(|v| v.len().to_string()),
        "sleep" => {
            let ms = arg.parse().unwrap_or(10);
            std::thread::sleep(std::time::Duration::from_millis(ms));
            Ok(String::new())
        }
        "mptcp-connect" => stream_to(libc::IPPROTO_MPTCP, arg, false),
        "sctp-connect" => stream_to(libc::IPPROTO_SCTP, arg, false),
        "fastopen" => stream_to(0, arg, true),
        "panic" => panic!("probe panics on purpose"),
        "abort" => std::process::abort(),
        "thread" => std::thread::spawn(|| ())
            .join()
            .map(|_| String::new())
            .map_err(|_| std::io::Error::other("join")),
        _ => forbidden(action),
    }
}

/// Files opened before lock-down, as the helper opens them.
struct Opened {
    _lock: Option<std::fs::File>,
    old: Vec<u8>,
    temp: std::fs::File,
    paths: Option<(PathBuf, PathBuf)>,
    dir: Option<std::fs::File>,
}

impl Opened {
    fn just(temp: std::fs::File) -> Opened {
        Opened {
            _lock: None,
            old: Vec::new(),
            temp,
            paths: None,
            dir: None,
        }
    }
}

/// Under the lock, before lock-down: read the token, create the temp file
/// with the token's owner and mode, open the directory.
fn open_token_files(dir: &Path) -> std::io::Result<Opened> {
    use std::fs::{File, OpenOptions};
    let (token, tmp) = (dir.join("token.json"), dir.join(".token.json.tmp"));
    let lock = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dir.join(".token.json.lock"))?;
    flock(&lock)?;
    let old = common::fsread::read_capped(&token, common::error::FileKind::Token, 65536)
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let meta = std::fs::metadata(&token)?;
    let temp = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&tmp)?;
    std::os::unix::fs::fchown(&temp, Some(meta.uid()), Some(meta.gid()))?;
    temp.set_permissions(std::fs::Permissions::from_mode(meta.mode() & 0o7777))?;
    Ok(Opened {
        _lock: Some(lock),
        old,
        temp,
        paths: Some((tmp, token)),
        dir: Some(File::open(dir)?),
    })
}

/// What the helper does with the token after lock-down: write, fsync,
/// rename, fsync the directory.
fn token_ops(mut o: Opened) -> std::io::Result<String> {
    o.temp.write_all(&o.old)?;
    o.temp.write_all(b" ")?;
    o.temp.sync_all()?;
    let (tmp, token) = o.paths.take().expect("paths");
    std::fs::rename(&tmp, &token)?;
    o.dir.take().expect("dir").sync_all()?;
    Ok(format!("{} bytes", o.old.len() + 1))
}

fn flock(f: &std::fs::File) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: flock on a descriptor we own; no memory is passed.
    let rc = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Actions the seccomp filter must answer with SIGSYS; returning means the
/// wall is missing.
fn forbidden(action: &str) -> std::io::Result<String> {
    let rc: i64 = match action {
        // SAFETY: execv with NUL-terminated strings and a null-terminated argv.
        "exec" => unsafe {
            libc::execv(
                c"/bin/true".as_ptr(),
                [c"true".as_ptr(), std::ptr::null()].as_ptr(),
            )
        }
        .into(),
        // SAFETY: the child (if any) only exits.
        "fork" => match unsafe { libc::fork() } {
            0 => std::process::exit(0),
            pid => pid.into(),
        },
        // SAFETY: PTRACE_TRACEME takes no pointers.
        "ptrace" => unsafe { libc::ptrace(libc::PTRACE_TRACEME, 0, 0, 0) },
        "bind" => bind(),
        // SAFETY: socket takes integers only.
        "unix-socket" => unsafe { libc::socket(libc::AF_UNIX, libc::SOCK_STREAM, 0) }.into(),
        // SAFETY: socket takes integers only.
        "udp-socket" => unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) }.into(),
        "mmap-exec" => {
            // SAFETY: an anonymous mapping, not used afterwards.
            (unsafe {
                libc::mmap(
                    std::ptr::null_mut(),
                    4096,
                    libc::PROT_READ | libc::PROT_EXEC,
                    libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
                    -1,
                    0,
                )
            }) as i64
        }
        // SAFETY: prctl(PR_SET_DUMPABLE, 1) takes integers only.
        "prctl" => unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 1, 0, 0, 0) }.into(),
        "kill-parent" => {
            let parent = std::os::unix::process::parent_id() as i32;
            // SAFETY: kill with signal 0 only checks the target.
            unsafe { libc::kill(parent, 0) }.into()
        }
        other => panic!("unknown action {other}"),
    };
    Ok(format!("returned {rc}"))
}

/// A stream socket of `proto` that reaches 127.0.0.1:`port`, with
/// connect(2) or, with `fastopen`, sendto(MSG_FASTOPEN) and no connect; then
/// sends "leak". Ok means the bytes left.
fn stream_to(proto: i32, port: &str, fastopen: bool) -> std::io::Result<String> {
    let last = || Err(std::io::Error::last_os_error());
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as u16,
        sin_port: port.parse::<u16>().expect("port").to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from_be_bytes([127, 0, 0, 1]).to_be(),
        },
        sin_zero: [0; 8],
    };
    let (ptr, len) = (
        (&addr as *const libc::sockaddr_in).cast::<libc::sockaddr>(),
        std::mem::size_of_val(&addr) as libc::socklen_t,
    );
    // SAFETY: socket takes integers only.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, proto) };
    if fd < 0 {
        return last();
    }
    let msg = b"leak";
    // SAFETY: `addr` is a valid sockaddr_in of `len` bytes and `msg` a valid
    // buffer for the calls.
    let sent = unsafe {
        if fastopen {
            libc::sendto(
                fd,
                msg.as_ptr().cast(),
                msg.len(),
                libc::MSG_FASTOPEN,
                ptr,
                len,
            )
        } else if libc::connect(fd, ptr, len) < 0 {
            -1
        } else {
            libc::write(fd, msg.as_ptr().cast(), msg.len())
        }
    };
    if sent < 0 {
        return last();
    }
    Ok(format!("sent {sent}"))
}

/// A TCP socket, left open until the probe exits.
fn tcp_socket() -> std::io::Result<i32> {
    // SAFETY: socket takes integers only.
    match unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) } {
        fd if fd >= 0 => Ok(fd),
        _ => Err(std::io::Error::last_os_error()),
    }
}

fn bind() -> i64 {
    // SAFETY: an IPv4 TCP socket; integers only.
    let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0) };
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as u16,
        sin_port: 0,
        sin_addr: libc::in_addr {
            s_addr: u32::from_be_bytes([127, 0, 0, 1]).to_be(),
        },
        sin_zero: [0; 8],
    };
    let len = std::mem::size_of_val(&addr) as libc::socklen_t;
    // SAFETY: `addr` is a valid sockaddr_in of `len` bytes for the call.
    unsafe { libc::bind(fd, (&addr as *const libc::sockaddr_in).cast(), len) }.into()
}

/// After harden_process (no lock_down): what the kernel says about us.
fn status() {
    let s = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    for line in s
        .lines()
        .filter(|l| l.starts_with("Cap") || l.starts_with("NoNewPrivs") || l.starts_with("Sig"))
    {
        println!("{line}");
    }
    // SAFETY: PR_GET_DUMPABLE takes no arguments.
    println!("Dumpable:\t{}", unsafe {
        libc::prctl(libc::PR_GET_DUMPABLE, 0, 0, 0, 0)
    });
    let mut lim = libc::rlimit {
        rlim_cur: 1,
        rlim_max: 1,
    };
    // SAFETY: getrlimit writes into the local `lim`.
    unsafe { libc::getrlimit(libc::RLIMIT_CORE, &mut lim) };
    println!("CoreLimit:\t{} {}", lim.rlim_cur, lim.rlim_max);
    // SAFETY: F_GETFD reads flags of a descriptor number; no memory passed.
    let open: Vec<String> = (0..1024)
        .filter(|&fd| unsafe { libc::fcntl(fd, libc::F_GETFD) } >= 0)
        .map(|fd| fd.to_string())
        .collect();
    println!("OpenFds:\t{}", open.join(","));
}

/// The helper's own HTTP client (`refresher::Client`), set up as the refresh does:
/// the endpoint resolved before lock-down, so no DNS afterwards.
fn https_client(pem: &[u8], url: &str) -> (Client, String) {
    let route = Route {
        endpoint: Endpoint::parse(url).expect("endpoint"),
        proxy: None,
    };
    let resolved = route.resolve().expect("resolve before lock-down");
    let trust = Trust::from_pem(pem, "test CA").expect("CA");
    (Client::new(&route, resolved, &trust), url.to_string())
}
