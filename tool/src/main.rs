//! `sasl-xoauth2-tool`: the command line lives in the library (`lib.rs`).
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    sasl_xoauth2_tool::run()
}
