//! OAuth 2.0 responses: token responses (RFC 6749 section 5), device
//! authorisation responses and polling results (RFC 8628 section 3.2, 3.5),
//! and error responses. Pure: bytes in, typed values out.

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
    /// First line of `error_description`, printable characters only, capped.
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

/// Overwrite every string in a parsed response: it held tokens.
fn scrub(v: &mut Value) {
    use zeroize::Zeroize;
    match v {
        Value::String(s) => s.zeroize(),
        Value::Array(a) => a.iter_mut().for_each(scrub),
        Value::Object(o) => o.values_mut().for_each(scrub),
        _ => {}
    }
}

/// A parsed JSON object that is scrubbed when dropped.
struct Scrubbed(Value);

impl Drop for Scrubbed {
    fn drop(&mut self) {
        scrub(&mut self.0);
    }
}

impl Scrubbed {
    fn obj(&self) -> &Map<String, Value> {
        self.0.as_object().expect("checked in parse_object")
    }
}

fn parse_object(status: u16, body: &[u8]) -> Result<Scrubbed, ResponseError> {
    match serde_json::from_slice::<Value>(body) {
        Ok(v @ Value::Object(_)) => Ok(Scrubbed(v)),
        Ok(mut v) => {
            scrub(&mut v);
            Err(ResponseError::Malformed(format!(
                "HTTP {status} with a JSON body that is not an object"
            )))
        }
        // The body is not quoted: it may be an HTML error page or worse.
        Err(_) => Err(ResponseError::Malformed(format!(
            "HTTP {status} with a body that is not JSON ({} bytes){}",
            body.len(),
            if body.starts_with(b"<") {
                "; an HTML page usually means a wrong endpoint URL or a proxy in the way"
            } else {
                ""
            }
        ))),
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

/// First line, printable, at most 300 characters.
fn clean_description(s: &str) -> Option<String> {
    let line = s.lines().next().unwrap_or("").trim();
    let cleaned: String = line.chars().filter(|c| !c.is_control()).take(300).collect();
    (!cleaned.is_empty()).then_some(cleaned)
}

/// `AADSTS7000218: ...` -> 7000218.
pub fn aadsts_in(s: &str) -> Option<u32> {
    let at = s.find("AADSTS")?;
    let digits: String = s[at + 6..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

/// The `error` code as shown on the terminal: no control characters (an
/// escape sequence from the provider must not reach the terminal), capped.
pub fn clean_error(s: &str) -> String {
    let c: String = s.chars().filter(|c| !c.is_control()).take(100).collect();
    if c.is_empty() {
        "unknown_error".into()
    } else {
        c
    }
}

fn provider_error(status: u16, o: &Map<String, Value>) -> Option<ProviderError> {
    let error = clean_error(string(o, "error")?);
    let raw_description = string(o, "error_description");
    let aadsts = o
        .get("error_codes")
        .and_then(Value::as_array)
        .and_then(|a| a.first())
        .and_then(Value::as_u64)
        .and_then(|n| u32::try_from(n).ok())
        .or_else(|| raw_description.and_then(aadsts_in));
    Some(ProviderError {
        status,
        error,
        description: raw_description.and_then(clean_description),
        aadsts,
    })
}

/// Parse a token endpoint response.
pub fn parse_token_response(status: u16, body: &[u8]) -> Result<Tokens, ResponseError> {
    let v = parse_object(status, body)?;
    let o = v.obj();
    if let Some(e) = provider_error(status, o) {
        return Err(ResponseError::Provider(e));
    }
    if status != 200 {
        return Err(ResponseError::Malformed(format!(
            "HTTP {status} without an OAuth error code"
        )));
    }
    if let Some(t) = string(o, "token_type") {
        if !t.eq_ignore_ascii_case("bearer") {
            return Err(ResponseError::Malformed(format!(
                "token_type is {t:?}, not Bearer"
            )));
        }
    }
    let access_token = string(o, "access_token")
        .map(Secret::new)
        .ok_or_else(|| ResponseError::Malformed("no access_token in the response".into()))?;
    Ok(Tokens {
        access_token,
        refresh_token: string(o, "refresh_token").map(Secret::new),
        expires_in: number(o, "expires_in").filter(|n| *n > 0),
    })
}

/// Parse a device authorisation response.
pub fn parse_device_authorization(
    status: u16,
    body: &[u8],
) -> Result<DeviceAuthorization, ResponseError> {
    let v = parse_object(status, body)?;
    let o = v.obj();
    if let Some(e) = provider_error(status, o) {
        return Err(ResponseError::Provider(e));
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
pub fn classify_poll(status: u16, body: &[u8]) -> Result<Poll, ResponseError> {
    match parse_token_response(status, body) {
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
        // `error` went to the terminal as it was.
        let body = b"{\"error\":\"invalid_grant\\u001b[31m\",\"error_description\":\"line1\\nline2\\u0007\"}";
        let ResponseError::Provider(e) = parse_token_response(400, body).unwrap_err() else {
            panic!()
        };
        assert_eq!(e.error, "invalid_grant[31m");
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
}
