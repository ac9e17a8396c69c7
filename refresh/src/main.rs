//! `sasl-xoauth2-refresh [--config PATH | --config-fd N] [--force] TOKEN_PATH`
//!
//! Prints exactly one status line on stdout (`ok: ...` or `error: ...`),
//! diagnostics on stderr, and exits with a code from `common::exit`.
//!
//! `sasl-xoauth2-refresh --check TOKEN_PATH ...` diagnoses instead (the
//! `check` crate, check/src/lib.rs): one line per check, exit 0/1/2. It runs
//! with the caller's privileges and skips `harden_process`: it writes nothing.
//!
//! This package is the command line, the dispatch, and a refresh's process
//! setup (privilege drop, hardening, the handshake) around the `refresher`
//! crate (refresher/). The diagnosis is the `check` crate (check/), the only
//! code that runs another program (`postconf`); the command line is parsed
//! first and a refresh never calls into it.

#![forbid(unsafe_code)]

mod cli;

use std::io::Write;
use std::process::ExitCode;

/// Exit code for a bug (a panic): sysexits' EX_SOFTWARE.
const SOFTWARE: u8 = common::exit::SOFTWARE as u8;

fn main() -> ExitCode {
    let request = match cli::parse_command(std::env::args_os()) {
        Ok(cli::Command::Refresh(r)) => r,
        Ok(cli::Command::Check(c)) => {
            let report = check::run(&c);
            print!("{}", check::render(&c, &report));
            let _ = std::io::stdout().flush();
            return code(report.exit_code());
        }
        Err(early) => {
            print!("{}", early.stdout);
            eprint!("{}", early.stderr);
            return code(early.code);
        }
    };
    // Root runs as the token file's owner (see privdrop.rs); a config file
    // root may read is read first.
    let mut preloaded = None;
    if refresher::is_root() && refresher::target_user(&request.token_path).is_some() {
        if !matches!(request.config, refresher::ConfigSource::Fd(_)) {
            preloaded = Some(refresher::load_config(&request.config));
        }
        if let Err(e) = refresher::drop_to_token_owner(&request.token_path) {
            println!("error: {e}");
            return code(common::exit::OSERR);
        }
    }
    if let Err(e) = refresher::harden_process(&request.keep_fds()) {
        println!("error: sandbox setup failed: {e}");
        return code(common::exit::OSERR);
    }
    // The handshake: the plugin writes the config handoff only after this
    // line, so it never sits in the pipe of a dumpable process.
    if matches!(request.config, refresher::ConfigSource::Fd(_)) {
        match refresher::dumpable() {
            Ok(false) => {
                let mut out = std::io::stdout();
                let _ = out
                    .write_all(common::handoff::READY)
                    .and_then(|_| out.flush());
            }
            Ok(true) => {
                println!("error: still dumpable after hardening; refusing to read the config handoff (a bug: please report it)");
                return code(common::exit::OSERR);
            }
            Err(e) => {
                println!("error: cannot read the dumpable flag ({e}); refusing to read the config handoff");
                return code(common::exit::OSERR);
            }
        }
    }
    let outcome = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        refresher::run_with(&request, preloaded)
    })) {
        Ok(o) => o,
        Err(_) => {
            println!("error: internal error in sasl-xoauth2-refresh (a bug: please report it with the stderr output)");
            return ExitCode::from(SOFTWARE);
        }
    };
    println!("{}", outcome.status);
    let _ = std::io::stdout().flush();
    code(outcome.code)
}

fn code(c: i32) -> ExitCode {
    ExitCode::from(u8::try_from(c).unwrap_or(SOFTWARE))
}
