//! `sasl-xoauth2-refresh`: the one sasl-xoauth2 process that talks to the
//! network or writes token files. A library: the binary (package refresh/)
//! parses the command line and calls it; `--check` (the `check` crate) and
//! the tool's test-token-refresh reuse its loading and request code.
//!
//! Modules are private, except [`store`] (the tool writes token files
//! through it); what other crates use is re-exported below, grouped by user. An auditor reads `run` (the refresh, in order) and its
//! `run/locked.rs` (everything after the lock-down), then what they call:
//!
//! * `oauth`: request body and response parsing (pure).
//! * `http`: ureq + rustls transport with pre-resolved addresses.
//! * `lock`: single-flight flock beside the token file.
//! * `store`: crash-safe atomic rewrite, the one token writer.
//! * `privdrop`: a root-started refresh becomes the token's owner.
//! * `sandbox`: confinement (no_new_privs, capabilities, landlock, seccomp).
//! * `sys`: the crate's only `unsafe` (raw system calls).
#![deny(unsafe_code)]

mod error;
mod http;
mod lock;
mod oauth;
mod privdrop;
mod retry;
mod run;
mod sandbox;
pub mod store;
#[allow(unsafe_code)]
mod sys;

// For `main`.
pub use privdrop::{drop_to_token_owner, is_root, target_user};
pub use run::{load_config, run_with, ConfigSource, Outcome, Request};
pub use sandbox::harden_process;
pub use sys::{dumpable, secure_execution};

// For the tool's test-token-refresh and get-token, and `--check`: the
// helper's own token request, lock and errors.
pub use error::{Failure, ProviderFailure};
pub use lock::{acquire as lock_token, lock_path, LockOwner, TokenLock};
pub use oauth::{Granted, ResponseError};
pub use run::{prepare_request, request_without_storing, resolve, Loaded, Prepared};

// For `--check`'s sandbox verdict, refresher/tests/sandbox_decision.rs and
// the sandbox-probe test binary: the sandbox as the helper enters it.
pub use http::{Client, Endpoint, ProxySpec, Route, Trust};
pub use sandbox::{
    allow_list, decide as decide_sandbox, kernel_support, lock_down, Policy, Support, Wall,
};

// For fuzz/fuzz_targets/config_settings.rs: the request body builder.
pub use oauth::form_body;

/// One diagnostic line on stderr.
pub(crate) fn diag(msg: impl std::fmt::Display) {
    eprintln!("sasl-xoauth2-refresh: {msg}");
}
