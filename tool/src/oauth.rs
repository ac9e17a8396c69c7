//! OAuth 2.0 responses as the tool reads them: token responses (RFC 6749
//! section 5), device authorisation responses and polling results
//! (RFC 8628 section 3.2, 3.5). The token response and every OAuth error go
//! through `common::oauth`, the helper's reader; this adds the device flow
//! and the tool's wording. Pure: bytes in, typed values out.

use common::oauth::{self as core, JsonReply};
use common::Secret;
use serde_json::{Map, Value};

/// What a successful token request returned.
#[derive(Debug)]
pub struct Tokens {
    pub access_token: Secret,
    pub refresh_token: Option<Secret>,
    /// Lifetime of the access token in seconds, if the provider said.
    pub expires_in: Option<i64>,
}

/// An OAuth error response (`{"error": ..., "error_description": ...}`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderError {
    pub status: u16,
    pub error: String,
    /// First line of `error_description` by `common::oauth`'s rules: no
    /// control characters, secrets we sent redacted, capped.
    pub description: Option<String>,
    /// Microsoft's AADSTS number (from `error_codes` or the description).
    pub aadsts: Option<u32>,
}

/// Why a response could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseError {
    Provider(ProviderError),
    /// Not JSON, or JSON without the fields a response must have.
    Malformed(String),
}

/// A device authorisation response.
#[derive(Debug)]
pub struct DeviceAuthorization {
    pub device_code: Secret,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    pub expires_in: u64,
    pub interval: u64,
}

/// RFC 8628 section 3.5: default polling interval when none is given.
pub const DEFAULT_INTERVAL: u64 = 5;
/// RFC 8628 section 3.5: a slow_down adds 5 seconds to the interval.
pub const SLOW_DOWN_STEP: u64 = 5;

/// One answer to a device-code poll.
#[derive(Debug)]
pub enum Poll {
    Done(Tokens),
    Pending,
    SlowDown,
    Declined,
    Expired,
    BadCode,
    Failed(ProviderError),
}

/// The tool's form of an error the common reader found.
fn from_core(status: u16, body: &[u8], e: core::ResponseError) -> ResponseError {
    match e {
        core::ResponseError::OAuth {
            status,
            error,
            summary,
            aadsts,
            ..
        } => ResponseError::Provider(ProviderError {
            status,
            error,
            description: summary,
            aadsts,
        }),
        core::ResponseError::NotJson => malformed(status, body),
        other => ResponseError::Malformed(format!("{other}{}", html_hint(body))),
    }
}

/// A body that is not a JSON object. It is not quoted: it may be an HTML
/// error page or worse.
fn malformed(status: u16, body: &[u8]) -> ResponseError {
    ResponseError::Malformed(format!(
        "HTTP {status} with a body that is not a JSON object ({} bytes){}",
        body.len(),
        html_hint(body)
    ))
}

fn html_hint(body: &[u8]) -> &'static str {
    if body.trim_ascii_start().starts_with(b"<") {
        "; an HTML page usually means a wrong endpoint URL or a proxy in the way"
    } else {
        ""
    }
}

fn string<'a>(o: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    o.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

/// A number, or a string holding one (some providers send `"3599"`).
fn number(o: &Map<String, Value>, key: &str) -> Option<i64> {
    match o.get(key)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Parse a token endpoint response. `sent` are the secrets of the request
/// (client secret, code, verifier, device code): never repeated.
pub fn parse_token_response(
    status: u16,
    body: &[u8],
    sent: &[&Secret],
) -> Result<Tokens, ResponseError> {
    match core::parse_response(status, body, sent) {
        Ok(g) => Ok(Tokens {
            access_token: g.access_token,
            refresh_token: g.refresh_token,
            expires_in: Some(g.expires_in).filter(|n| !g.expires_in_assumed && *n > 0),
        }),
        Err(e) => Err(from_core(status, body, e)),
    }
}

/// Parse a device authorisation response.
pub fn parse_device_authorization(
    status: u16,
    body: &[u8],
) -> Result<DeviceAuthorization, ResponseError> {
    if body.len() as u64 > core::MAX_RESPONSE_SIZE {
        return Err(from_core(status, body, core::ResponseError::TooLarge));
    }
    let Some(v) = JsonReply::parse(body) else {
        return Err(malformed(status, body));
    };
    let o = v.obj();
    if let Some(e) = core::oauth_error(status, o, &[]) {
        return Err(from_core(status, body, e));
    }
    if status != 200 {
        return Err(ResponseError::Malformed(format!(
            "HTTP {status} without an OAuth error code"
        )));
    }
    let need = |k: &str| {
        string(o, k).ok_or_else(|| ResponseError::Malformed(format!("no {k} in the response")))
    };
    // These are printed for the user: an escape sequence from the provider
    // must not reach the terminal, so such an answer is refused whole.
    let printable = |k: &str, v: &str| {
        if v.chars().any(char::is_control) {
            Err(ResponseError::Malformed(format!(
                "{k} in the response holds control characters"
            )))
        } else {
            Ok(v.to_string())
        }
    };
    let device_code = Secret::new(need("device_code")?);
    let user_code = printable("user_code", need("user_code")?)?;
    // Microsoft's v1 endpoint said verification_url.
    let verification_uri = string(o, "verification_uri")
        .or_else(|| string(o, "verification_url"))
        .ok_or_else(|| ResponseError::Malformed("no verification_uri in the response".into()))?;
    let verification_uri = printable("verification_uri", verification_uri)?;
    let verification_uri_complete = string(o, "verification_uri_complete")
        .map(|v| printable("verification_uri_complete", v))
        .transpose()?;
    let expires_in = number(o, "expires_in")
        .filter(|n| *n > 0)
        .ok_or_else(|| ResponseError::Malformed("no valid expires_in in the response".into()))?
        .unsigned_abs();
    let interval = number(o, "interval")
        .filter(|n| *n > 0)
        .map_or(DEFAULT_INTERVAL, i64::unsigned_abs);
    Ok(DeviceAuthorization {
        device_code,
        user_code,
        verification_uri,
        verification_uri_complete,
        expires_in,
        interval,
    })
}

/// Classify the answer to one device-code poll.
pub fn classify_poll(status: u16, body: &[u8], sent: &[&Secret]) -> Result<Poll, ResponseError> {
    match parse_token_response(status, body, sent) {
        Ok(t) => Ok(Poll::Done(t)),
        Err(ResponseError::Provider(e)) => Ok(match e.error.as_str() {
            "authorization_pending" => Poll::Pending,
            "slow_down" => Poll::SlowDown,
            // Microsoft says authorization_declined; RFC 8628 access_denied.
            "authorization_declined" | "access_denied" => Poll::Declined,
            "expired_token" => Poll::Expired,
            "bad_verification_code" => Poll::BadCode,
            _ => Poll::Failed(e),
        }),
        Err(m) => Err(m),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::aadsts::code_in as aadsts_in;

    fn parse_token_response(status: u16, body: &[u8]) -> Result<Tokens, ResponseError> {
        super::parse_token_response(status, body, &[])
    }

    fn classify_poll(status: u16, body: &[u8]) -> Result<Poll, ResponseError> {
        super::classify_poll(status, body, &[])
    }

    #[test]
    fn token_response() {
        let t = parse_token_response(
            200,
            br#"{"access_token":"ya29.a","expires_in":3599,"refresh_token":"1//r","scope":"https://mail.google.com/","token_type":"Bearer"}"#,
        )
        .unwrap();
        assert_eq!(t.access_token.expose(), "ya29.a");
        assert_eq!(t.refresh_token.unwrap().expose(), "1//r");
        assert_eq!(t.expires_in, Some(3599));
        let t = parse_token_response(200, br#"{"access_token":"a","expires_in":"60"}"#).unwrap();
        assert_eq!(t.expires_in, Some(60));
        assert!(t.refresh_token.is_none());
    }

    #[test]
    fn token_response_problems() {
        assert!(matches!(
            parse_token_response(200, br#"{"refresh_token":"r"}"#),
            Err(ResponseError::Malformed(_))
        ));
        assert!(matches!(
            parse_token_response(200, br#"{"access_token":"a","token_type":"mac"}"#),
            Err(ResponseError::Malformed(_))
        ));
        let e = parse_token_response(502, b"<html>bad gateway</html>").unwrap_err();
        let ResponseError::Malformed(m) = e else {
            panic!()
        };
        assert!(m.contains("HTML") && !m.contains("bad gateway"), "{m}");
        assert!(matches!(
            parse_token_response(500, br#"{"oops":1}"#),
            Err(ResponseError::Malformed(_))
        ));
    }

    #[test]
    fn error_code_reaches_the_terminal_without_control_characters() {
        // Found by fuzz/fuzz_targets/tool_reply.rs: an escape sequence in
        // `error` went to the terminal as it was. (Since the common reader:
        // the helper's stricter code alphabet, so `[` goes too.)
        let body = b"{\"error\":\"invalid_grant\\u001b[31m\",\"error_description\":\"line1\\nline2\\u0007\"}";
        let ResponseError::Provider(e) = parse_token_response(400, body).unwrap_err() else {
            panic!()
        };
        assert_eq!(e.error, "invalid_grant31m");
        assert_eq!(e.description.as_deref(), Some("line1"));
        let e = parse_token_response(400, br#"{"error":"\u0001\u0002"}"#).unwrap_err();
        assert!(matches!(e, ResponseError::Provider(p) if p.error == "unknown_error"));
    }

    #[test]
    fn microsoft_error() {
        let body = br#"{"error":"invalid_client","error_description":"AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'.\r\nTrace ID: 1\r\nCorrelation ID: 2","error_codes":[7000218]}"#;
        let ResponseError::Provider(e) = parse_token_response(401, body).unwrap_err() else {
            panic!()
        };
        assert_eq!(e.error, "invalid_client");
        assert_eq!(e.aadsts, Some(7000218));
        assert_eq!(e.status, 401);
        let d = e.description.unwrap();
        assert!(d.starts_with("AADSTS7000218: The request body"));
        assert!(!d.contains("Trace ID"));
        // Code only in the description.
        let body = br#"{"error":"invalid_grant","error_description":"AADSTS50020: User account from identity provider does not exist in tenant"}"#;
        let ResponseError::Provider(e) = parse_token_response(400, body).unwrap_err() else {
            panic!()
        };
        assert_eq!(e.aadsts, Some(50020));
        assert_eq!(aadsts_in("no code here"), None);
    }

    #[test]
    fn device_authorization() {
        let d = parse_device_authorization(
            200,
            br#"{"user_code":"ABCD-EFGH","device_code":"dc","verification_uri":"https://microsoft.com/devicelogin","expires_in":900,"interval":5,"message":"To sign in..."}"#,
        )
        .unwrap();
        assert_eq!(d.user_code, "ABCD-EFGH");
        assert_eq!(d.device_code.expose(), "dc");
        assert_eq!(d.expires_in, 900);
        assert_eq!(d.interval, 5);
        let d = parse_device_authorization(
            200,
            br#"{"user_code":"X","device_code":"dc","verification_url":"https://v","expires_in":"60"}"#,
        )
        .unwrap();
        assert_eq!(d.verification_uri, "https://v");
        assert_eq!(d.interval, DEFAULT_INTERVAL);
        assert!(
            parse_device_authorization(200, br#"{"user_code":"X","device_code":"d"}"#).is_err()
        );
        // An escape sequence meant for the terminal is refused, not printed.
        for body in [
            &br#"{"user_code":"AB\u001b]0;pwned\u0007","device_code":"d","verification_uri":"https://v","expires_in":60}"#[..],
            br#"{"user_code":"X","device_code":"d","verification_uri":"https://v\u001b[2J","expires_in":60}"#,
            br#"{"user_code":"X","device_code":"d","verification_uri":"https://v","verification_uri_complete":"https://v?\r\u001b[K","expires_in":60}"#,
        ] {
            let e = parse_device_authorization(200, body).unwrap_err();
            assert!(
                matches!(&e, ResponseError::Malformed(m) if m.contains("control characters")),
                "{e:?}"
            );
        }
        let e =
            parse_device_authorization(400, br#"{"error":"invalid_client","error_codes":[70002]}"#)
                .unwrap_err();
        assert!(matches!(
            e,
            ResponseError::Provider(ProviderError {
                aadsts: Some(70002),
                ..
            })
        ));
    }

    #[test]
    fn polls() {
        let p = |e: &str| classify_poll(400, format!(r#"{{"error":"{e}"}}"#).as_bytes()).unwrap();
        assert!(matches!(p("authorization_pending"), Poll::Pending));
        assert!(matches!(p("slow_down"), Poll::SlowDown));
        assert!(matches!(p("authorization_declined"), Poll::Declined));
        assert!(matches!(p("access_denied"), Poll::Declined));
        assert!(matches!(p("expired_token"), Poll::Expired));
        assert!(matches!(p("bad_verification_code"), Poll::BadCode));
        assert!(matches!(p("invalid_client"), Poll::Failed(_)));
        assert!(matches!(
            classify_poll(200, br#"{"access_token":"a","refresh_token":"r"}"#).unwrap(),
            Poll::Done(_)
        ));
        assert!(classify_poll(200, b"nonsense").is_err());
    }

    #[test]
    fn secrets_we_sent_are_never_repeated() {
        let cs = Secret::new("GOCSPX-client-secret");
        let body = br#"{"error":"invalid_client","error_description":"bad GOCSPX-client-secret"}"#;
        let ResponseError::Provider(e) =
            super::parse_token_response(401, body, &[&cs]).unwrap_err()
        else {
            panic!()
        };
        assert_eq!(e.description.as_deref(), Some("bad [redacted]"));
        // Tokens go into files and SASL lines: printable ASCII only.
        assert!(matches!(
            parse_token_response(200, br#"{"access_token":"a b"}"#),
            Err(ResponseError::Malformed(_))
        ));
    }
}
