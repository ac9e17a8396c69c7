//! `libsasl-xoauth2.so`: a Cyrus SASL client plugin offering XOAUTH2 and
//! OAUTHBEARER with OAuth 2.0 bearer tokens.
//!
//! This half of the privilege split runs inside the mail client (Postfix's
//! smtp). It reads the config and token files and builds the SASL
//! responses; it never opens a socket and never writes a file. When a token
//! must be refreshed it runs the separate, confined `sasl-xoauth2-refresh`.
//!
//! Layout: [`mech`] (wire formats, pure), [`session`] (one exchange, pure
//! apart from reading the token file), [`log`] (log policy, pure),
//! [`helper`] (what the plugin loads for the helper and how it reads the
//! result), `spawn` (running the helper, as the host; its report format,
//! pure). `unsafe` is denied here and allowed in two modules only: [`ffi`]
//! (the libsasl2 C ABI) and `sys` (raw system calls: fork, exec, pidfd,
//! and the code of the processes between fork and exec).

#![deny(unsafe_code)]

#[allow(unsafe_code)]
pub mod ffi;
pub mod helper;
pub mod log;
pub mod mech;
pub mod session;
mod spawn;
#[allow(unsafe_code)]
mod sys;
