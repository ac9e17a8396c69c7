//! A standalone fake OAuth token endpoint for the demo and the Postfix tests.
//!
//! ```text
//! fake-provider --ca-out PATH [--mode MODE] [--port N] [--expires-in SECS]
//!               [--client-id ID] [--client-secret SECRET]
//!               [--refresh-token TOKEN]... [--issue-refresh-token]
//! ```
//!
//! Prints the endpoint URL (`https://127.0.0.1:PORT/token`) as the first
//! line on stdout, then one line per `--issue-refresh-token`
//! (`refresh_token <token>`), then `ready`. It then reads commands on stdin,
//! one per line, and answers each with one line:
//!
//! * `mode NAME` → `ok` (NAME: normal, rotating, slow:MS, hung, 5xx:N,
//!   invalid_grant, garbage, huge, no_access_token)
//! * `issue-refresh-token` → `refresh_token <token>`
//! * `valid ACCESS_TOKEN` → `yes` / `no`
//! * `revoke ACCESS_TOKEN` / `revoke-all` → `ok`
//! * `requests` → the number of requests so far
//! * `refresh-tokens` → the currently accepted refresh tokens, space separated
//! * `quit` (or EOF on stdin) → exits.

use std::io::Write;
use std::path::PathBuf;
use testkit::provider::{FakeProvider, Mode, Options};

fn usage(msg: &str) -> ! {
    eprintln!("fake-provider: {msg}");
    eprintln!("usage: fake-provider --ca-out PATH [--mode MODE] [--port N] [--expires-in SECS] [--client-id ID] [--client-secret SECRET] [--refresh-token TOKEN]... [--issue-refresh-token]");
    std::process::exit(64);
}

fn main() {
    let mut opts = Options::default();
    let mut ca_out: Option<PathBuf> = None;
    let mut preset = Vec::new();
    let mut issue = 0;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || {
            args.next()
                .unwrap_or_else(|| usage(&format!("{a} needs a value")))
        };
        match a.as_str() {
            "--ca-out" => ca_out = Some(PathBuf::from(val())),
            "--mode" => {
                let m = val();
                opts.mode = Mode::parse(&m).unwrap_or_else(|| usage(&format!("unknown mode {m}")));
            }
            "--port" => {
                let p: u16 = val()
                    .parse()
                    .unwrap_or_else(|_| usage("--port needs a number"));
                opts.bind.set_port(p);
            }
            "--expires-in" => {
                opts.expires_in = val()
                    .parse()
                    .unwrap_or_else(|_| usage("--expires-in needs a number"))
            }
            "--client-id" => opts.client_id = val(),
            "--client-secret" => opts.client_secret = val(),
            "--refresh-token" => preset.push(val()),
            "--issue-refresh-token" => issue += 1,
            "--help" | "-h" => usage("help"),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    let Some(ca_out) = ca_out else {
        usage("--ca-out PATH is required")
    };
    let p = FakeProvider::start_with(opts);
    p.write_ca(&ca_out)
        .unwrap_or_else(|e| usage(&format!("cannot write {}: {e}", ca_out.display())));
    for t in preset {
        p.accept_refresh_token(&t);
    }
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let _ = writeln!(out, "{}", p.url());
    for _ in 0..issue {
        let _ = writeln!(out, "refresh_token {}", p.issue_refresh_token());
    }
    let _ = writeln!(out, "ready");
    let _ = out.flush();
    drop(out);
    p.serve_commands();
}
