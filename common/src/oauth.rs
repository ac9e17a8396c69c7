//! The token endpoint's answer (RFC 6749 section 5.1 and 5.2), read the
//! same way by the helper and by the tool: the one implementation, with the
//! strictest rules of both. Pure: status and body in, granted tokens or a
//! typed error out.
//!
//! * The body must be a JSON object; once parsed, every string in it is
//!   wiped when we are done (it held tokens).
//! * Tokens are printable ASCII without spaces (they go into
//!   `auth=Bearer <token>\x01` and into files); `token_type`, if present,
//!   is Bearer.
//! * `expires_in` is clamped to `0..=MAX_EXPIRES_IN`.
//! * An `error` member makes it an error whatever the status; its code and
//!   description are capped, control characters never pass, and secrets we
//!   sent are replaced by `[redacted]`.
//!
//! The tool's device authorisation (RFC 8628) builds on [`JsonReply`] and
//! [`oauth_error`].

use crate::secret::Secret;
use crate::value::wipe;
use serde_json::{Map, Value};
use std::fmt;

/// Largest response body we read from the token endpoint. Real answers are
/// 1 to 4 KiB; a bigger one is a misbehaving or hostile server.
pub const MAX_RESPONSE_SIZE: u64 = 64 * 1024;

/// Longest provider error description we repeat in a status line.
pub const MAX_DESCRIPTION_CHARS: usize = 200;

/// `expires_in` we assume when the provider sends none (RFC 6749 says it is
/// only RECOMMENDED; Google and Microsoft always send it).
pub const DEFAULT_EXPIRES_IN: i64 = 3600;

/// Upper bound on `expires_in` we honour: one day. Google issues 1 h and
/// Microsoft at most 1 day; a longer (or absurd, or hostile) value is
/// clamped, so the token is asked again after a day at the latest instead
/// of being trusted for years after it was revoked.
pub const MAX_EXPIRES_IN: i64 = 24 * 3600;

/// Longest `error` code we repeat.
pub const MAX_CODE_CHARS: usize = 64;

/// What a successful token response gave us.
#[derive(Debug)]
pub struct Granted {
    pub access_token: Secret,
    /// Seconds from now, clamped to `0..=MAX_EXPIRES_IN`.
    pub expires_in: i64,
    /// Whether `expires_in` was absent and [`DEFAULT_EXPIRES_IN`] assumed.
    pub expires_in_assumed: bool,
    /// A new refresh token when the provider rotates them.
    pub refresh_token: Option<Secret>,
}

/// Why a token response is not usable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseError {
    /// The provider answered with an OAuth error (RFC 6749 section 5.2).
    /// `error` and `description` are already sanitised.
    OAuth {
        status: u16,
        error: String,
        /// The whole description on one line, capped (for logs).
        description: Option<String>,
        /// Its first line alone, by the same rules (for the terminal:
        /// Microsoft's next lines are trace and correlation IDs).
        summary: Option<String>,
        /// Microsoft's AADSTS number (`error_codes`, else the description).
        aadsts: Option<u32>,
    },
    /// HTTP 5xx, or 429, without a usable OAuth error: try again later.
    Server { status: u16 },
    /// A redirect: the URL is wrong (we never follow redirects, so a token
    /// request cannot be bounced to another host).
    Redirect { status: u16 },
    /// 404/405/410: this URL is not a token endpoint.
    NotTokenEndpoint { status: u16 },
    /// Any other status without an OAuth error body (a success is 200).
    UnexpectedStatus { status: u16 },
    /// A 200 whose body is not a JSON object.
    NotJson,
    /// A 200 without `access_token`.
    MissingAccessToken,
    /// A field with the wrong type or form (e.g. `expires_in: "soon"`,
    /// `token_type: "mac"`).
    BadField(&'static str),
    /// The body is larger than [`MAX_RESPONSE_SIZE`].
    TooLarge,
}
/// How the helper should react to a [`ResponseError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reaction {
    /// Someone has to re-run `get-token` (invalid_grant).
    Reauthorise,
    /// The client registration or config is wrong (invalid_client, ...).
    FixClient,
    /// The config points at the wrong URL.
    FixEndpoint,
    /// Transient: retry once, then report a temporary failure.
    Retry,
    /// Transient, but an immediate retry would not help.
    Later,
    /// The provider's answer made no sense.
    Protocol,
}

impl ResponseError {
    pub fn reaction(&self) -> Reaction {
        match self {
            ResponseError::OAuth { error, status, .. } => match error.as_str() {
                "invalid_grant" => Reaction::Reauthorise,
                "invalid_client"
                | "unauthorized_client"
                | "invalid_scope"
                | "unsupported_grant_type"
                | "invalid_request"
                | "access_denied" => Reaction::FixClient,
                "temporarily_unavailable" | "server_error" => Reaction::Retry,
                _ if *status >= 500 => Reaction::Retry,
                _ => Reaction::FixClient,
            },
            ResponseError::Server { status: 429 } => Reaction::Later,
            ResponseError::Server { .. } => Reaction::Retry,
            ResponseError::Redirect { .. } | ResponseError::NotTokenEndpoint { .. } => {
                Reaction::FixEndpoint
            }
            ResponseError::UnexpectedStatus { .. }
            | ResponseError::NotJson
            | ResponseError::MissingAccessToken
            | ResponseError::BadField(_)
            | ResponseError::TooLarge => Reaction::Protocol,
        }
    }
}

impl fmt::Display for ResponseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResponseError::OAuth {
                status,
                error,
                description,
                ..
            } => {
                write!(f, "HTTP {status}, {error}")?;
                if let Some(d) = description {
                    write!(f, ": {d}")?;
                }
                Ok(())
            }
            ResponseError::Server { status } => write!(f, "HTTP {status} (server error)"),
            ResponseError::Redirect { status } => write!(f, "HTTP {status} (redirect)"),
            ResponseError::NotTokenEndpoint { status } => {
                write!(f, "HTTP {status} (no token endpoint at this URL)")
            }
            ResponseError::UnexpectedStatus { status } => {
                write!(f, "HTTP {status} without an OAuth error")
            }
            ResponseError::NotJson => f.write_str("the response is not a JSON object"),
            ResponseError::MissingAccessToken => f.write_str("the response has no access_token"),
            ResponseError::BadField(field) => write!(f, "the response's {field} is invalid"),
            ResponseError::TooLarge => write!(
                f,
                "the response is larger than {} KiB",
                MAX_RESPONSE_SIZE / 1024
            ),
        }
    }
}

/// A parsed JSON object reply whose strings are wiped when it is dropped
/// (it held tokens).
#[derive(Debug)]
pub struct JsonReply(Value);

impl JsonReply {
    /// `body` as a JSON object, or `None` (not JSON, or not an object).
    pub fn parse(body: &[u8]) -> Option<JsonReply> {
        match serde_json::from_slice::<Value>(body) {
            Ok(v @ Value::Object(_)) => Some(JsonReply(v)),
            Ok(mut other) => {
                wipe(&mut other);
                None
            }
            Err(_) => None,
        }
    }

    pub fn obj(&self) -> &Map<String, Value> {
        match &self.0 {
            Value::Object(m) => m,
            _ => unreachable!("JsonReply::parse keeps objects only"),
        }
    }
}

impl Drop for JsonReply {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

/// The OAuth error in a reply object, if it has an `error` string
/// (RFC 6749 section 5.2; RFC 8628 uses the same form), sanitised and with
/// every secret in `secrets` replaced by `[redacted]`.
pub fn oauth_error(
    status: u16,
    m: &Map<String, Value>,
    secrets: &[&Secret],
) -> Option<ResponseError> {
    let Some(Value::String(error)) = m.get("error") else {
        return None;
    };
    let raw = match m.get("error_description") {
        Some(Value::String(d)) => Some(d.as_str()),
        _ => None,
    };
    let aadsts = m
        .get("error_codes")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .or_else(|| raw.and_then(crate::aadsts::code_in));
    Some(ResponseError::OAuth {
        status,
        error: sanitise_code(error, secrets),
        description: raw.and_then(|d| sanitise_description(d, secrets)),
        summary: raw.and_then(|d| sanitise_summary(d, secrets)),
        aadsts,
    })
}

/// Read the token endpoint's answer. `secrets` are values that must never be
/// repeated (the refresh token, client secret, code or verifier we sent): a
/// provider that echoes them in its error gets them replaced by `[redacted]`.
pub fn parse_response(
    status: u16,
    body: &[u8],
    secrets: &[&Secret],
) -> Result<Granted, ResponseError> {
    if body.len() as u64 > MAX_RESPONSE_SIZE {
        return Err(ResponseError::TooLarge);
    }
    let json = JsonReply::parse(body);
    if let Some(e) = json
        .as_ref()
        .and_then(|j| oauth_error(status, j.obj(), secrets))
    {
        return Err(e);
    }
    if status != 200 {
        return Err(match status {
            429 | 500..=599 => ResponseError::Server { status },
            300..=399 => ResponseError::Redirect { status },
            404 | 405 | 410 => ResponseError::NotTokenEndpoint { status },
            _ => ResponseError::UnexpectedStatus { status },
        });
    }
    let json = json.ok_or(ResponseError::NotJson)?;
    let m = json.obj();
    match m.get("token_type") {
        None | Some(Value::Null) => {}
        Some(Value::String(t)) if t.is_empty() || t.eq_ignore_ascii_case("bearer") => {}
        Some(_) => return Err(ResponseError::BadField("token_type")),
    }
    let access_token = match m.get("access_token") {
        None | Some(Value::Null) => return Err(ResponseError::MissingAccessToken),
        Some(Value::String(s)) if s.is_empty() => return Err(ResponseError::MissingAccessToken),
        Some(Value::String(s)) if is_token_text(s) => Secret::new(s.as_str()),
        Some(_) => return Err(ResponseError::BadField("access_token")),
    };
    let (expires_in, expires_in_assumed) = match m.get("expires_in") {
        None | Some(Value::Null) => (DEFAULT_EXPIRES_IN, true),
        Some(Value::Number(n)) => (
            n.as_i64()
                .or_else(|| n.as_f64().filter(|f| f.is_finite()).map(|f| f as i64))
                .ok_or(ResponseError::BadField("expires_in"))?,
            false,
        ),
        Some(Value::String(s)) => (
            s.trim()
                .parse::<i64>()
                .map_err(|_| ResponseError::BadField("expires_in"))?,
            false,
        ),
        Some(_) => return Err(ResponseError::BadField("expires_in")),
    };
    let refresh_token = match m.get("refresh_token") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.is_empty() => None,
        Some(Value::String(s)) if is_token_text(s) => Some(Secret::new(s.as_str())),
        Some(_) => return Err(ResponseError::BadField("refresh_token")),
    };
    Ok(Granted {
        access_token,
        expires_in: expires_in.clamp(0, MAX_EXPIRES_IN),
        expires_in_assumed,
        refresh_token,
    })
}

/// A token we will later put into `auth=Bearer <token>\x01`: printable ASCII
/// without spaces, so it cannot break the SASL framing or a log line.
pub fn is_token_text(s: &str) -> bool {
    s.bytes().all(|b| b.is_ascii_graphic())
}

/// The `error` code: RFC 6749 restricts it to printable ASCII; we keep the
/// safe subset, cap the length and, like the description, never repeat a
/// secret we sent (checked after filtering, which could join one together).
pub fn sanitise_code(code: &str, secrets: &[&Secret]) -> String {
    let c: String = code
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'))
        .take(MAX_CODE_CHARS)
        .collect();
    let c = redact(c, secrets);
    if c.is_empty() {
        "unknown_error".into()
    } else {
        c
    }
}

/// The provider's description on one line, secrets we sent replaced, at most
/// [`MAX_DESCRIPTION_CHARS`] characters. Microsoft's starts with the
/// AADSTS code, which is what support articles are indexed by, so we keep
/// the beginning.
pub fn sanitise_description(d: &str, secrets: &[&Secret]) -> Option<String> {
    let s = redact(d.to_string(), secrets);
    let one_line: String = s
        .split(|c: char| c.is_control() || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    // Again: folding whitespace may have joined a secret together.
    let one_line = redact(one_line, secrets);
    if one_line.is_empty() {
        return None;
    }
    let mut out: String = one_line.chars().take(MAX_DESCRIPTION_CHARS).collect();
    if one_line.chars().count() > MAX_DESCRIPTION_CHARS {
        out.push_str("...");
    }
    Some(out)
}

/// The description's first line alone, by [`sanitise_description`]'s rules.
pub fn sanitise_summary(d: &str, secrets: &[&Secret]) -> Option<String> {
    sanitise_description(d.lines().next().unwrap_or(""), secrets)
}

/// `s` with every secret of 4 or more characters replaced by `[redacted]`.
fn redact(mut s: String, secrets: &[&Secret]) -> String {
    for secret in secrets {
        let v = secret.expose();
        if v.len() >= 4 && s.contains(v) {
            s = s.replace(v, "[redacted]");
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_with_number_or_string_expiry_and_rotation() {
        let g = parse_response(
            200,
            br#"{"access_token":"ya29.a","expires_in":3599,"token_type":"Bearer"}"#,
            &[],
        )
        .unwrap();
        assert_eq!(g.access_token.expose(), "ya29.a");
        assert_eq!(g.expires_in, 3599);
        assert!(g.refresh_token.is_none());
        let g = parse_response(
            200,
            br#"{"access_token":"a","expires_in":"3600","refresh_token":"r2"}"#,
            &[],
        )
        .unwrap();
        assert_eq!(g.expires_in, 3600);
        assert_eq!(g.refresh_token.unwrap().expose(), "r2");
        let g = parse_response(200, br#"{"access_token":"a","refresh_token":""}"#, &[]).unwrap();
        assert!(g.expires_in_assumed && g.refresh_token.is_none());
        assert_eq!(g.expires_in, DEFAULT_EXPIRES_IN);
        let g = parse_response(200, br#"{"access_token":"a","expires_in":-5}"#, &[]).unwrap();
        assert_eq!(g.expires_in, 0);
        let g = parse_response(200, br#"{"access_token":"a","expires_in":1e300}"#, &[]).unwrap();
        assert_eq!(g.expires_in, MAX_EXPIRES_IN);
    }

    #[test]
    fn bad_successes() {
        use ResponseError::*;
        assert_eq!(parse_response(200, b"<html>", &[]).unwrap_err(), NotJson);
        assert_eq!(parse_response(200, b"[1]", &[]).unwrap_err(), NotJson);
        assert_eq!(
            parse_response(200, br#"{"expires_in":1}"#, &[]).unwrap_err(),
            MissingAccessToken
        );
        assert_eq!(
            parse_response(200, br#"{"access_token":""}"#, &[]).unwrap_err(),
            MissingAccessToken
        );
        assert_eq!(
            parse_response(200, br#"{"access_token":"a b"}"#, &[]).unwrap_err(),
            BadField("access_token")
        );
        assert_eq!(
            parse_response(200, b"{\"access_token\":\"a\\u0001\"}", &[]).unwrap_err(),
            BadField("access_token")
        );
        assert_eq!(
            parse_response(200, br#"{"access_token":"a","expires_in":"soon"}"#, &[]).unwrap_err(),
            BadField("expires_in")
        );
        assert_eq!(
            parse_response(200, br#"{"access_token":"a","refresh_token":7}"#, &[]).unwrap_err(),
            BadField("refresh_token")
        );
        assert_eq!(NotJson.reaction(), Reaction::Protocol);
    }

    #[test]
    fn oauth_errors_and_reactions() {
        let rt = Secret::new("1//refresh-secret");
        let e = parse_response(
            400,
            br#"{"error":"invalid_grant","error_description":"AADSTS70008: The provided authorization code or refresh token has expired due to inactivity. 1//refresh-secret Trace ID: x"}"#,
            &[&rt],
        )
        .unwrap_err();
        let ResponseError::OAuth {
            error, description, ..
        } = &e
        else {
            panic!("{e:?}")
        };
        assert_eq!(error, "invalid_grant");
        let d = description.as_deref().unwrap();
        assert!(d.starts_with("AADSTS70008:"), "{d}");
        assert!(
            !d.contains("refresh-secret") && d.contains("[redacted]"),
            "{d}"
        );
        assert_eq!(e.reaction(), Reaction::Reauthorise);

        let e = parse_response(401, br#"{"error":"invalid_client"}"#, &[]).unwrap_err();
        assert_eq!(e.reaction(), Reaction::FixClient);
        let e = parse_response(503, br#"{"error":"temporarily_unavailable"}"#, &[]).unwrap_err();
        assert_eq!(e.reaction(), Reaction::Retry);
        assert_eq!(
            parse_response(502, b"<html>bad gateway</html>", &[]).unwrap_err(),
            ResponseError::Server { status: 502 }
        );
        assert_eq!(
            parse_response(429, b"", &[]).unwrap_err().reaction(),
            Reaction::Later
        );
        assert_eq!(
            parse_response(302, b"", &[]).unwrap_err().reaction(),
            Reaction::FixEndpoint
        );
        assert_eq!(
            parse_response(404, b"not found", &[])
                .unwrap_err()
                .reaction(),
            Reaction::FixEndpoint
        );
        assert_eq!(
            parse_response(418, b"teapot", &[]).unwrap_err().reaction(),
            Reaction::Protocol
        );
    }

    #[test]
    fn error_code_and_description_never_repeat_a_secret_we_sent() {
        // Found by fuzz/fuzz_targets/token_reply.rs: the `error` code was
        // not redacted at all, and filtering it (or folding whitespace in
        // the description) could join a split secret together.
        let cs = Secret::new("GOCSPX-client-secret");
        let rt = Secret::new("1//0g refresh token");
        let body = br#"{"error":"invalid\u002b_GOCSPX+-client-secret","error_description":"saw 1//0g  refresh\ttoken and GOCSPX-client-secret"}"#;
        let e = parse_response(400, body, &[&rt, &cs]).unwrap_err();
        let msg = e.to_string();
        assert!(!msg.contains("GOCSPX-client-secret"), "{msg}");
        assert!(!msg.contains("1//0g refresh token"), "{msg}");
        assert_eq!(
            msg,
            "HTTP 400, invalid_[redacted]: saw [redacted] and [redacted]"
        );
    }

    #[test]
    fn description_is_one_line_and_truncated() {
        let long = format!("AADSTS50173: line1\nline2\t{}", "x".repeat(500));
        let d = sanitise_description(&long, &[]).unwrap();
        assert!(d.starts_with("AADSTS50173: line1 line2 x"));
        assert_eq!(d.chars().count(), MAX_DESCRIPTION_CHARS + 3);
        assert!(!d.contains('\n'));
        assert_eq!(sanitise_description(" \n ", &[]), None);
        assert_eq!(
            sanitise_code("invalid_grant\n\u{1b}[31m", &[]),
            "invalid_grant31m"
        );
        assert_eq!(sanitise_code("\n", &[]), "unknown_error");
    }

    #[test]
    fn strictest_rules_of_both_readers() {
        use ResponseError::*;
        // From the tool: a success is a 200 with a Bearer token; an `error`
        // member is an error whatever the status.
        assert_eq!(
            parse_response(200, br#"{"access_token":"a","token_type":"mac"}"#, &[]).unwrap_err(),
            BadField("token_type")
        );
        assert!(parse_response(200, br#"{"access_token":"a","token_type":"bearer"}"#, &[]).is_ok());
        assert_eq!(
            parse_response(201, br#"{"access_token":"a"}"#, &[]).unwrap_err(),
            UnexpectedStatus { status: 201 }
        );
        let e = parse_response(200, br#"{"access_token":"a","error":"invalid_grant"}"#, &[])
            .unwrap_err();
        assert!(
            matches!(e, OAuth { ref error, .. } if error == "invalid_grant"),
            "{e:?}"
        );
        assert_eq!(
            parse_response(200, &vec![b' '; MAX_RESPONSE_SIZE as usize + 1], &[]).unwrap_err(),
            TooLarge
        );
    }

    #[test]
    fn summary_and_aadsts() {
        let rt = Secret::new("1//refresh-secret");
        let body = br#"{"error":"invalid_client","error_description":"AADSTS7000218: The request body must contain 1//refresh-secret.\r\nTrace ID: 1\r\nCorrelation ID: 2","error_codes":[7000218]}"#;
        let ResponseError::OAuth {
            description,
            summary,
            aadsts,
            ..
        } = parse_response(401, body, &[&rt]).unwrap_err()
        else {
            panic!()
        };
        assert_eq!(aadsts, Some(7000218));
        assert!(description
            .unwrap()
            .contains("Trace ID: 1 Correlation ID: 2"));
        assert_eq!(
            summary.as_deref(),
            Some("AADSTS7000218: The request body must contain [redacted].")
        );
        // The code from the description when error_codes is absent.
        let body = br#"{"error":"invalid_grant","error_description":"AADSTS50020: User account"}"#;
        let e = parse_response(400, body, &[]).unwrap_err();
        assert!(matches!(
            e,
            ResponseError::OAuth {
                aadsts: Some(50020),
                ..
            }
        ));
    }
}
