//! Exit codes of `sasl-xoauth2-refresh` (sysexits style), shared so the
//! plugin can tell a temporary failure from one that needs the admin.

pub const OK: i32 = 0;
/// Bad command line.
pub const USAGE: i32 = 64;
/// The token file is broken (bad JSON, missing field).
pub const DATAERR: i32 = 65;
/// The token file does not exist or cannot be read.
pub const NOINPUT: i32 = 66;
/// The provider refused for good (invalid_grant, invalid_client, ...):
/// someone has to re-authorise.
pub const UNAVAILABLE: i32 = 69;
/// An internal error (a panic); a bug to report.
pub const SOFTWARE: i32 = 70;
/// The sandbox could not be set up as the config requires.
pub const OSERR: i32 = 71;
/// The new token file could not be written.
pub const CANTCREAT: i32 = 73;
/// Network trouble, provider 5xx, timeout, lock contention: try later.
pub const TEMPFAIL: i32 = 75;
/// The provider's answer made no sense (not JSON, no access_token).
pub const PROTOCOL: i32 = 76;
/// The configuration is invalid.
pub const CONFIG: i32 = 78;

/// A short reading of an exit code, for logs.
pub fn describe(code: i32) -> &'static str {
    match code {
        OK => "ok",
        USAGE => "usage error",
        DATAERR => "token file invalid",
        NOINPUT => "token file unreadable",
        UNAVAILABLE => "provider refused; re-authorisation needed",
        SOFTWARE => "internal error (please report it)",
        OSERR => "sandbox setup failed",
        CANTCREAT => "cannot write token file",
        TEMPFAIL => "temporary failure",
        PROTOCOL => "provider response invalid",
        CONFIG => "configuration invalid",
        _ => "unexpected failure",
    }
}

/// Whether a later attempt may succeed without anyone changing anything.
pub fn is_temporary(code: i32) -> bool {
    matches!(code, TEMPFAIL | PROTOCOL)
}
