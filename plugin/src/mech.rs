//! The XOAUTH2 and OAUTHBEARER client exchanges as pure state machines.
//!
//! No FFI and no I/O here: the C glue in `ffi` feeds server bytes in and sends
//! the bytes that come out.

use common::Secret;
use zeroize::Zeroizing;

/// Which SASL mechanism a connection uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    /// Google's `XOAUTH2`, also accepted by Microsoft.
    XOAuth2,
    /// RFC 7628 `OAUTHBEARER`.
    OAuthBearer,
}

impl Mechanism {
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::XOAuth2 => "XOAUTH2",
            Mechanism::OAuthBearer => "OAUTHBEARER",
        }
    }

    /// The client's first message.
    pub fn initial_response(
        self,
        user: &str,
        token: &Secret,
        server: &ServerInfo,
    ) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(Vec::with_capacity(64 + user.len() + token.expose().len()));
        match self {
            Mechanism::XOAuth2 => {
                out.extend_from_slice(b"user=");
                out.extend_from_slice(user.as_bytes());
                out.extend_from_slice(b"\x01auth=Bearer ");
                out.extend_from_slice(token.expose().as_bytes());
                out.extend_from_slice(b"\x01\x01");
            }
            Mechanism::OAuthBearer => {
                out.extend_from_slice(b"n,a=");
                out.extend_from_slice(gs2_escape(user).as_bytes());
                out.extend_from_slice(b",\x01");
                if let Some(host) = &server.host {
                    out.extend_from_slice(format!("host={host}\x01").as_bytes());
                }
                if let Some(port) = server.port {
                    out.extend_from_slice(format!("port={port}\x01").as_bytes());
                }
                out.extend_from_slice(b"auth=Bearer ");
                out.extend_from_slice(token.expose().as_bytes());
                out.extend_from_slice(b"\x01\x01");
            }
        }
        out
    }

    /// What the client sends after the server's error challenge: an empty
    /// response for XOAUTH2, a single `\x01` for OAUTHBEARER (RFC 7628 3.2.3).
    pub fn error_ack(self) -> &'static [u8] {
        match self {
            Mechanism::XOAuth2 => b"",
            Mechanism::OAuthBearer => b"\x01",
        }
    }
}

/// What the plugin knows of the server, for OAUTHBEARER's host/port fields.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ServerInfo {
    pub host: Option<String>,
    pub port: Option<u16>,
}

impl ServerInfo {
    /// From libsasl2's `serverFQDN` and `ipremoteport` (`addr;port`).
    pub fn new(fqdn: Option<&str>, ipremoteport: Option<&str>) -> ServerInfo {
        let clean = |s: &str| !s.is_empty() && !s.bytes().any(|b| b == 1 || b < 0x20);
        ServerInfo {
            host: fqdn.filter(|h| clean(h)).map(str::to_owned),
            port: ipremoteport
                .and_then(|p| p.rsplit_once(';'))
                .and_then(|(_, port)| port.parse().ok()),
        }
    }
}

/// RFC 5801 saslname escaping for the gs2 authzid.
fn gs2_escape(user: &str) -> String {
    user.replace('=', "=3D").replace(',', "=2C")
}

/// A server challenge after the initial response, which for both mechanisms
/// only ever carries an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerError {
    /// `status` from the JSON (`"401"`, `"invalid_token"`, ...), if any.
    pub status: Option<String>,
    /// `scope` or `schemes`, to help diagnose a wrong-scope token.
    pub detail: Option<String>,
    /// True when the challenge was not the JSON a provider sends.
    pub garbled: bool,
}

impl ServerError {
    /// Read an error challenge (already base64-decoded by the application).
    /// Never fails: anything unreadable is reported as garbled.
    pub fn parse(challenge: &[u8]) -> ServerError {
        let Ok(serde_json::Value::Object(obj)) = serde_json::from_slice(challenge) else {
            return ServerError {
                status: None,
                detail: None,
                garbled: true,
            };
        };
        let text = |k: &str| {
            obj.get(k).and_then(|v| match v {
                serde_json::Value::String(s) => Some(printable(s)),
                serde_json::Value::Number(n) => Some(n.to_string()),
                _ => None,
            })
        };
        ServerError {
            status: text("status"),
            detail: text("scope").or_else(|| text("schemes")),
            garbled: false,
        }
    }

    /// Whether the error says the token itself was refused (so a refresh
    /// may help), as opposed to something like a wrong scope.
    pub fn token_rejected(&self) -> bool {
        matches!(
            self.status.as_deref(),
            Some("401") | Some("400") | Some("invalid_token")
        ) || self.garbled
    }
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.garbled {
            return f.write_str("server sent an unreadable challenge");
        }
        write!(
            f,
            "server rejected the token (status {})",
            self.status.as_deref().unwrap_or("unknown")
        )?;
        if let Some(d) = &self.detail {
            write!(f, ", scope/schemes {d}")?;
        }
        Ok(())
    }
}

/// Keep server-supplied text printable and short before it reaches a log.
fn printable(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(120).collect()
}

/// Where a connection's exchange stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Nothing sent yet (possibly waiting for interaction results).
    Start,
    /// Initial response sent; the server either accepts or challenges.
    Sent,
    /// The server challenged with an error and we acknowledged it; the
    /// server now fails the exchange.
    Rejected,
    /// The server accepted.
    Done,
}

/// The outcome of feeding a server message to a connection in [`State::Sent`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Empty server data: authentication succeeded.
    Success,
    /// Error challenge: send [`Mechanism::error_ack`], expect failure.
    Error(ServerError),
}

/// Interpret server data after the initial response.
pub fn on_server_data(data: &[u8]) -> Reply {
    if data.is_empty() {
        Reply::Success
    } else {
        Reply::Error(ServerError::parse(data))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xoauth2_bytes() {
        let r = Mechanism::XOAuth2.initial_response(
            "someone@example.com",
            &Secret::new("ya29.tok"),
            &ServerInfo::default(),
        );
        assert_eq!(
            &r[..],
            b"user=someone@example.com\x01auth=Bearer ya29.tok\x01\x01"
        );
    }

    #[test]
    fn oauthbearer_bytes_with_escaping() {
        let server = ServerInfo::new(Some("smtp.example.com"), Some("192.0.2.1;587"));
        let r = Mechanism::OAuthBearer.initial_response("a,b=c@x", &Secret::new("T"), &server);
        assert_eq!(
            &r[..],
            b"n,a=a=2Cb=3Dc@x,\x01host=smtp.example.com\x01port=587\x01auth=Bearer T\x01\x01"
        );
        let r =
            Mechanism::OAuthBearer.initial_response("u", &Secret::new("T"), &ServerInfo::default());
        assert_eq!(&r[..], b"n,a=u,\x01auth=Bearer T\x01\x01");
    }

    #[test]
    fn server_info_ignores_bad_values() {
        let s = ServerInfo::new(Some("evil\x01host"), Some("::1;notaport"));
        assert_eq!(s, ServerInfo::default());
        assert_eq!(ServerInfo::new(None, Some("[::1];25")).port, Some(25));
    }

    #[test]
    fn gmail_and_rfc7628_errors() {
        let e = ServerError::parse(
            br#"{"status":"401","schemes":"Bearer","scope":"https://mail.google.com/"}"#,
        );
        assert_eq!(e.status.as_deref(), Some("401"));
        assert!(e.token_rejected());
        assert!(e.to_string().contains("status 401"));
        let e = ServerError::parse(
            br#"{"status":"invalid_token","scope":"x","openid-configuration":"y"}"#,
        );
        assert!(e.token_rejected());
        let e = ServerError::parse(br#"{"status":"insufficient_scope"}"#);
        assert!(!e.token_rejected());
        assert_eq!(on_server_data(b""), Reply::Success);
    }

    #[test]
    fn garbage_never_panics() {
        for g in [
            &b"\xff\xfe"[..],
            b"null",
            b"[1,2]",
            b"{\"status\":{}}",
            b"{",
            &[0u8; 300],
        ] {
            let e = ServerError::parse(g);
            let _ = e.to_string();
        }
        assert!(ServerError::parse(b"not json").garbled);
        let long = format!("{{\"status\":\"{}\"}}", "\\u0007x".repeat(500));
        assert!(ServerError::parse(long.as_bytes()).status.unwrap().len() <= 120);
    }

    #[test]
    fn error_acks() {
        assert_eq!(Mechanism::XOAuth2.error_ack(), b"");
        assert_eq!(Mechanism::OAuthBearer.error_ack(), b"\x01");
    }
}
