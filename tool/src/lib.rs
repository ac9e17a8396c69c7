//! `sasl-xoauth2-tool`: get the first OAuth tokens for sasl-xoauth2 and test
//! its configuration. One binary, no Python: the device flow (RFC 8628),
//! PKCE (RFC 7636) and the loopback redirect (RFC 8252) are implemented here.
#![forbid(unsafe_code)]

mod checks;
mod cli;
mod device;
mod error;
mod explain;
mod flows;
mod http;
mod loopback;
mod oauth;
mod output;
mod pkce;
mod prompt;
mod providers;
mod split;

use clap::{CommandFactory, Parser};
use cli::{Cli, Command, Shell};
use std::process::ExitCode;

/// The whole command line tool; `main.rs` only calls this, so that the
/// parsers below are also reachable from the fuzz targets in `fuzz/`.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::GetToken(a) => match flows::get_token(&a) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("sasl-xoauth2-tool: error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::SplitSecrets(a) => match split::run(&a.token_file) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("sasl-xoauth2-tool: error: {e}");
                ExitCode::FAILURE
            }
        },
        Command::TestConfig(a) => checks::test_config(a.config_file.as_deref()),
        Command::TestTokenRefresh(a) => {
            checks::test_token_refresh(&a.token_file, a.config_file.as_deref())
        }
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            let out = &mut std::io::stdout();
            match shell {
                Shell::Bash => clap_complete::generate(
                    clap_complete::Shell::Bash,
                    &mut cmd,
                    "sasl-xoauth2-tool",
                    out,
                ),
                Shell::Zsh => clap_complete::generate(
                    clap_complete::Shell::Zsh,
                    &mut cmd,
                    "sasl-xoauth2-tool",
                    out,
                ),
                Shell::Fish => clap_complete::generate(
                    clap_complete::Shell::Fish,
                    &mut cmd,
                    "sasl-xoauth2-tool",
                    out,
                ),
            }
            ExitCode::SUCCESS
        }
    }
}

/// The pure parsers of attacker-reachable input (a redirect request, the
/// provider's replies), for the fuzz targets in `fuzz/` only.
#[cfg(feature = "fuzzing")]
#[doc(hidden)]
pub mod fuzzing {
    pub use crate::explain::{render, Stage};
    pub use crate::loopback::{evaluate, request_target, route, Outcome, Route};
    pub use crate::oauth::{
        classify_poll, parse_device_authorization, parse_token_response, Poll, ResponseError,
    };
    pub use crate::providers::Provider;
    pub use common::aadsts::code_in as aadsts_in;
}
