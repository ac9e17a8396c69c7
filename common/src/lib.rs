//! The data model shared by every sasl-xoauth2 process: configuration,
//! token files, secrets, refresh decisions and the helper's exit codes.
//!
//! This crate has no `unsafe` and does no I/O beyond reading bytes from a
//! file (see [`fsread`]), so everything here is pure and unit-testable.
//! The plugin (inside Postfix), the refresh helper and the tool all parse
//! files through it, so they agree on every field and every error message.
#![forbid(unsafe_code)]

pub mod aadsts;
pub mod ca;
pub mod clock;
pub mod config;
pub mod errno;
pub mod error;
pub mod exit;
pub mod fsread;
pub mod handoff;
pub mod oauth;
pub mod policy;
pub mod providers;
pub mod secret;
pub mod secrets;
pub mod settings;
pub mod token;
pub mod urlenc;
mod value;

pub use config::Config;
pub use error::{ConfigError, FileError, TokenError};
pub use secret::Secret;
pub use settings::Settings;
pub use token::TokenFile;

/// Largest config or token file we accept. Real ones are well under 4 KiB;
/// the cap keeps a hostile or corrupted file from costing memory in smtp.
pub const MAX_FILE_SIZE: u64 = 64 * 1024;

/// Default location of the configuration file.
pub const DEFAULT_CONFIG_PATH: &str = "/etc/sasl-xoauth2.conf";

/// Environment variable that overrides [`DEFAULT_CONFIG_PATH`] (ignored in
/// secure-execution mode).
pub const CONFIG_ENV: &str = "SASL_XOAUTH2_CONFIG";
