//! `libsasl-xoauth2.so`: a Cyrus SASL client plugin offering XOAUTH2 and
//! OAUTHBEARER with OAuth 2.0 bearer tokens.
//!
//! This half of the privilege split runs inside the mail client (Postfix's
//! smtp). It reads the config and token files and builds the SASL
//! responses; it never opens a socket and never writes a file. When a token
//! must be refreshed it runs the separate, confined `sasl-xoauth2-refresh`.
//!
//! Layout: [`mech`] (wire formats, pure), [`session`] (one exchange, pure
//! apart from reading the token file), [`log`] (log policy, pure), and
//! `ffi` (all `unsafe`: the C ABI and process spawning).

pub mod ffi;
pub mod helper;
pub mod log;
pub mod mech;
pub mod session;

use std::ffi::OsString;
use std::path::PathBuf;

/// The config path: `$SASL_XOAUTH2_CONFIG` if set (and not in secure
/// execution mode, like libsasl2's own `SASL_PATH`), else the default.
pub fn config_path(secure: bool, env: Option<OsString>) -> PathBuf {
    match env {
        Some(p) if !secure && !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(common::DEFAULT_CONFIG_PATH),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_override_ignored_when_secure() {
        let env = Some(OsString::from("/tmp/x.conf"));
        assert_eq!(
            config_path(false, env.clone()),
            PathBuf::from("/tmp/x.conf")
        );
        assert_eq!(
            config_path(true, env),
            PathBuf::from(common::DEFAULT_CONFIG_PATH)
        );
        assert_eq!(
            config_path(false, Some(OsString::new())),
            PathBuf::from(common::DEFAULT_CONFIG_PATH)
        );
    }
}
