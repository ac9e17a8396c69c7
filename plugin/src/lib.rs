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
