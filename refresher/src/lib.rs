//! `sasl-xoauth2-refresh`: the one sasl-xoauth2 process that talks to the
//! network or writes token files. A library: the binary (package refresh/)
//! parses the command line and calls it; `--check` (the `check` crate) and
//! the tool reuse its loading and request code.
//!
//! * [`oauth`]: request body and response parsing (pure).
//! * [`http`]: ureq + rustls transport with pre-resolved addresses.
//! * [`lock`]: single-flight flock beside the token file.
//! * [`store`]: crash-safe atomic rewrite.
//! * [`privdrop`]: a root-started refresh becomes the token's owner.
//! * [`run`]: the orchestration, exit codes and status line.
//! * [`sandbox`]: confinement (no_new_privs, capabilities, landlock, seccomp).

pub mod error;
pub mod http;
pub mod lock;
pub mod oauth;
pub mod privdrop;
pub mod retry;
pub mod run;
pub mod sandbox;
pub mod store;
mod sys;

pub use sys::dumpable;
