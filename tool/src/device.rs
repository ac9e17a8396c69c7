//! The device authorisation grant (RFC 8628): show a code, poll the token
//! endpoint at the pace the provider asks for, count down to the code's
//! expiry.

use crate::error::ToolError;
use crate::explain::Stage;
use crate::http::Http;
use crate::oauth::{self, Poll, Tokens, SLOW_DOWN_STEP};
use crate::providers::{Endpoints, Provider};
use common::urlenc;
use common::Secret;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

pub const GRANT_TYPE: &str = "urn:ietf:params:oauth:grant-type:device_code";
/// Consecutive network failures tolerated while polling.
const MAX_NETWORK_RETRIES: u32 = 3;

/// What to poll with.
#[derive(Debug)]
pub struct DeviceRequest<'a> {
    pub provider: Provider,
    pub endpoints: &'a Endpoints,
    pub client_id: &'a str,
    pub client_secret: Option<&'a Secret>,
    pub scope: &'a str,
}

/// `mm:ss`, or `h:mm:ss` past an hour.
pub fn clock(secs: u64) -> String {
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m:02}:{s:02}")
    }
}

/// The visible countdown: a line rewritten every second on a terminal, a
/// line a minute otherwise (so logs stay short).
struct Countdown {
    deadline: Instant,
    tty: bool,
    last_minute: Option<u64>,
}

impl Countdown {
    fn new(deadline: Instant) -> Countdown {
        Countdown {
            deadline,
            tty: std::io::stderr().is_terminal(),
            last_minute: None,
        }
    }

    fn remaining(&self) -> u64 {
        self.deadline
            .saturating_duration_since(Instant::now())
            .as_secs()
    }

    fn tick(&mut self) {
        let left = self.remaining();
        let mut err = std::io::stderr().lock();
        if self.tty {
            let _ = write!(
                err,
                "\r\x1b[KWaiting for the sign-in; the code expires in {}",
                clock(left)
            );
        } else if self.last_minute != Some(left / 60) {
            self.last_minute = Some(left / 60);
            let _ = writeln!(
                err,
                "Waiting for the sign-in; the code expires in {}",
                clock(left)
            );
        }
        let _ = err.flush();
    }

    fn clear(&self) {
        if self.tty {
            eprint!("\r\x1b[K");
        }
    }
}

/// Start a device sign-in and wait for it to finish.
pub fn run(http: &Http, req: &DeviceRequest<'_>) -> Result<Tokens, ToolError> {
    let device_url = req
        .endpoints
        .device
        .as_deref()
        .ok_or_else(|| ToolError::Usage("this provider has no device flow".into()))?;
    let answer = http.post_form(
        device_url,
        urlenc::form(&[("client_id", req.client_id), ("scope", req.scope)]).as_bytes(),
    )?;
    let auth = oauth::parse_device_authorization(answer.status, &answer.body)
        .map_err(|e| ToolError::from_response(e, device_url, req.provider, Stage::DeviceCode))?;

    eprintln!(
        "\nTo sign in, open {} in a browser on any device and enter the code {}",
        auth.verification_uri, auth.user_code
    );
    if let Some(complete) = &auth.verification_uri_complete {
        eprintln!("(or open {complete}, which has the code filled in)");
    }
    eprintln!();

    let deadline = Instant::now() + Duration::from_secs(auth.expires_in);
    let mut countdown = Countdown::new(deadline);
    let mut interval = auth.interval.max(1);
    let mut network_failures = 0;
    let mut form_pairs: Vec<(&str, &str)> = vec![
        ("grant_type", GRANT_TYPE),
        ("client_id", req.client_id),
        ("device_code", auth.device_code.expose()),
    ];
    if let Some(s) = req.client_secret.filter(|s| !s.is_empty()) {
        form_pairs.push(("client_secret", s.expose()));
    }
    let form = urlenc::form(&form_pairs);
    let mut sent = vec![&auth.device_code];
    sent.extend(req.client_secret);
    loop {
        let next = Instant::now() + Duration::from_secs(interval);
        loop {
            let now = Instant::now();
            if now >= deadline {
                countdown.clear();
                return Err(ToolError::Expired);
            }
            if now >= next {
                break;
            }
            countdown.tick();
            let step = (next - now).min(deadline - now).min(Duration::from_secs(1));
            std::thread::sleep(step);
        }
        let answer = match http.post_form(&req.endpoints.token, form.as_bytes()) {
            Ok(a) => {
                network_failures = 0;
                a
            }
            Err(e) if network_failures < MAX_NETWORK_RETRIES => {
                network_failures += 1;
                countdown.clear();
                eprintln!("warning: {e}; retrying");
                continue;
            }
            Err(e) => {
                countdown.clear();
                return Err(e);
            }
        };
        let poll = oauth::classify_poll(answer.status, &answer.body, &sent).map_err(|e| {
            countdown.clear();
            ToolError::from_response(e, &req.endpoints.token, req.provider, Stage::Token)
        })?;
        let finished = match poll {
            Poll::Pending => None,
            Poll::SlowDown => {
                interval += SLOW_DOWN_STEP;
                countdown.clear();
                eprintln!("The provider asked to poll less often; now every {interval} s.");
                None
            }
            Poll::Done(tokens) => Some(Ok(tokens)),
            Poll::Declined => Some(Err(ToolError::Declined)),
            Poll::Expired => Some(Err(ToolError::Expired)),
            Poll::BadCode => Some(Err(ToolError::BadVerificationCode)),
            Poll::Failed(error) => Some(Err(ToolError::Provider {
                provider: req.provider,
                stage: Stage::Token,
                error,
            })),
        };
        if let Some(result) = finished {
            countdown.clear();
            return result;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clocks() {
        assert_eq!(clock(0), "00:00");
        assert_eq!(clock(899), "14:59");
        assert_eq!(clock(3600 + 61), "1:01:01");
    }
}
