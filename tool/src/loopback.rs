//! The loopback redirect listener (RFC 8252 section 7.3): a tiny HTTP
//! server on 127.0.0.1 only, which
//! * redirects `/auth` to the authorisation URL (handy through
//!   `ssh -L PORT:127.0.0.1:PORT`: open http://127.0.0.1:PORT/auth),
//! * takes the browser's return at the redirect path, checks `state`, and
//!   hands the code to the caller for the exchange.
//!
//! Pages are static text; nothing from the request is reflected into them.

use crate::error::ToolError;
use crate::explain::Stage;
use crate::oauth::ProviderError;
use crate::pkce::constant_time_eq;
use crate::providers::Provider;
use common::oauth::{sanitise_code, sanitise_summary};
use common::urlenc;
use common::Secret;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

const READ_TIMEOUT: Duration = Duration::from_secs(10);
const MAX_LINE: u64 = 8 * 1024;
const MAX_HEADERS: usize = 100;

#[derive(Debug)]
pub struct Loopback {
    listener: TcpListener,
    pub port: u16,
}

/// What the listener expects.
#[derive(Debug)]
pub struct Expect<'a> {
    /// Path of the redirect URI (`/oauth2_result` for Google, `/` for Microsoft).
    pub path: &'a str,
    pub state: &'a str,
    pub auth_url: &'a str,
    pub provider: Provider,
}

/// What a request to the listener is.
#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    /// `/auth`: redirect to the authorisation URL.
    Auth,
    /// The redirect path, with its query pairs.
    Callback(Vec<(String, String)>),
    NotFound,
}

/// What the browser brought back.
#[derive(Debug)]
pub enum Outcome {
    Code(Secret),
    /// The provider sent `error=...` (with our state).
    Refused(ProviderError),
    /// The state is missing or not ours: a stale tab or a forged request.
    WrongState,
    /// Neither a code nor an error.
    Incomplete,
}

/// `GET /path?query HTTP/1.1` -> the target, for GET and HEAD only.
pub fn request_target(line: &str) -> Option<&str> {
    let mut parts = line.split_ascii_whitespace();
    let method = parts.next()?;
    let target = parts.next()?;
    let version = parts.next()?;
    (matches!(method, "GET" | "HEAD") && version.starts_with("HTTP/") && target.starts_with('/'))
        .then_some(target)
}

pub fn route(target: &str, callback_path: &str) -> Route {
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    if path == "/auth" {
        Route::Auth
    } else if path == callback_path {
        Route::Callback(urlenc::parse_query(query))
    } else {
        Route::NotFound
    }
}

/// Judge the query of a redirect (also used for the pasted URL).
pub fn evaluate(pairs: &[(String, String)], expected_state: &str) -> Outcome {
    let Ok(state) = urlenc::single(pairs, "state") else {
        return Outcome::WrongState;
    };
    if !state.is_some_and(|s| constant_time_eq(s, expected_state)) {
        return Outcome::WrongState;
    }
    let (Ok(code), Ok(error)) = (
        urlenc::single(pairs, "code"),
        urlenc::single(pairs, "error"),
    ) else {
        return Outcome::Incomplete;
    };
    if let Some(error) = error.filter(|e| !e.is_empty()) {
        let description = urlenc::single(pairs, "error_description").ok().flatten();
        return Outcome::Refused(ProviderError {
            status: 0,
            error: sanitise_code(error, &[]),
            description: description.and_then(|d| sanitise_summary(d, &[])),
            aadsts: description.and_then(common::aadsts::code_in),
        });
    }
    match code.filter(|c| !c.is_empty()) {
        Some(c) => Outcome::Code(Secret::new(c)),
        None => Outcome::Incomplete,
    }
}

const PAGE_DONE: &str =
    "<!doctype html><html><head><meta charset=\"utf-8\"><title>sasl-xoauth2</title></head>\
<body><h1>Done</h1><p>The token was obtained. You may close this window.</p></body></html>";
const PAGE_FAILED: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>sasl-xoauth2</title></head>\
<body><h1>Failed</h1><p>The sign-in did not succeed; the terminal running sasl-xoauth2-tool says why. You may close this window.</p></body></html>";
const PAGE_WRONG_STATE: &str = "<!doctype html><html><head><meta charset=\"utf-8\"><title>sasl-xoauth2</title></head>\
<body><h1>Not accepted</h1><p>This answer does not belong to the sign-in the tool is waiting for (stale or forged). Start from the URL the tool printed.</p></body></html>";
const PAGE_INCOMPLETE: &str =
    "<!doctype html><html><head><meta charset=\"utf-8\"><title>sasl-xoauth2</title></head>\
<body><h1>No authorisation code</h1><p>Start from the URL the tool printed.</p></body></html>";
const PAGE_NOT_FOUND: &str =
    "<!doctype html><html><head><meta charset=\"utf-8\"><title>sasl-xoauth2</title></head>\
<body><h1>Not found</h1><p>Open <a href=\"/auth\">/auth</a> to sign in.</p></body></html>";

fn respond(stream: &mut TcpStream, status: &str, location: Option<&str>, body: &str) {
    let mut head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nReferrer-Policy: no-referrer\r\nX-Content-Type-Options: nosniff\r\n\
         Connection: close\r\n",
        body.len()
    );
    if let Some(l) = location {
        head.push_str(&format!("Location: {l}\r\n"));
    }
    head.push_str("\r\n");
    // The browser may already be gone; nothing to do about it.
    let _ = stream
        .write_all(head.as_bytes())
        .and_then(|()| stream.write_all(body.as_bytes()))
        .and_then(|()| stream.flush());
}

/// Read the request line and skip the headers. `None` for anything that is
/// not a well-formed GET/HEAD within the limits.
fn read_request(stream: &TcpStream) -> Option<String> {
    let mut r = BufReader::new(stream.take(MAX_LINE * 4));
    let mut first = String::new();
    r.by_ref().take(MAX_LINE).read_line(&mut first).ok()?;
    let target = request_target(first.trim_end())?.to_string();
    for _ in 0..MAX_HEADERS {
        let mut h = String::new();
        match r.by_ref().take(MAX_LINE).read_line(&mut h) {
            Ok(0) | Err(_) => return None,
            Ok(_) if h == "\r\n" || h == "\n" => return Some(target),
            Ok(_) => {}
        }
    }
    None
}

/// Connections being read at once; more are closed unanswered (a browser
/// opens a few; anything beyond that is not a browser).
const MAX_CONNECTIONS: usize = 16;

/// A redirect to the callback path, handed from a connection's thread to
/// the waiting caller.
struct Arrival {
    stream: TcpStream,
    pairs: Vec<(String, String)>,
}

/// Read one request and answer it, unless it is the callback: that goes to
/// the caller, which answers after the exchange.
fn handle_connection(mut stream: TcpStream, path: &str, auth_url: &str) -> Option<Arrival> {
    if stream.set_nonblocking(false).is_err()
        || stream.set_read_timeout(Some(READ_TIMEOUT)).is_err()
        || stream.set_write_timeout(Some(READ_TIMEOUT)).is_err()
    {
        return None;
    }
    // Browsers open idle connections ahead of use; each is read in its own
    // thread so none of them delays the real request.
    let Some(target) = read_request(&stream) else {
        respond(&mut stream, "400 Bad Request", None, PAGE_INCOMPLETE);
        return None;
    };
    match route(&target, path) {
        Route::Auth => respond(&mut stream, "302 Found", Some(auth_url), ""),
        Route::NotFound => respond(&mut stream, "404 Not Found", None, PAGE_NOT_FOUND),
        Route::Callback(pairs) => return Some(Arrival { stream, pairs }),
    }
    None
}

impl Loopback {
    /// Listen on 127.0.0.1:`port` (0 = any free port). Never on another
    /// interface: the code must not be reachable from the network.
    pub fn bind(port: u16) -> Result<Loopback, ToolError> {
        let listener = TcpListener::bind(SocketAddrV4::new(Ipv4Addr::LOCALHOST, port))
            .map_err(|source| ToolError::Listen { port, source })?;
        let port = listener
            .local_addr()
            .map_err(|source| ToolError::Listen { port, source })?
            .port();
        Ok(Loopback { listener, port })
    }

    /// Serve until the browser brings a code with our state, then run
    /// `exchange` on it and show the browser the outcome.
    pub fn serve<T>(
        &self,
        expect: &Expect<'_>,
        timeout: Duration,
        mut exchange: impl FnMut(&Secret) -> Result<T, ToolError>,
    ) -> Result<T, ToolError> {
        let deadline = Instant::now() + timeout;
        self.listener
            .set_nonblocking(true)
            .map_err(|source| ToolError::Listen {
                port: self.port,
                source,
            })?;
        let (tx, rx) = mpsc::channel::<Arrival>();
        let busy = Arc::new(AtomicUsize::new(0));
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if busy.load(Ordering::SeqCst) >= MAX_CONNECTIONS {
                        drop(stream);
                        continue;
                    }
                    busy.fetch_add(1, Ordering::SeqCst);
                    let (tx, busy) = (tx.clone(), busy.clone());
                    let (path, auth_url) = (expect.path.to_string(), expect.auth_url.to_string());
                    std::thread::spawn(move || {
                        if let Some(a) = handle_connection(stream, &path, &auth_url) {
                            let _ = tx.send(a);
                        }
                        busy.fetch_sub(1, Ordering::SeqCst);
                    });
                    continue;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                Err(_) => {}
            }
            match rx.recv_timeout(Duration::from_millis(50)) {
                Ok(Arrival { mut stream, pairs }) => match evaluate(&pairs, expect.state) {
                    Outcome::Code(code) => {
                        let result = exchange(&code);
                        let (status, page) = match result {
                            Ok(_) => ("200 OK", PAGE_DONE),
                            Err(_) => ("400 Bad Request", PAGE_FAILED),
                        };
                        respond(&mut stream, status, None, page);
                        return result;
                    }
                    Outcome::Refused(error) => {
                        respond(&mut stream, "400 Bad Request", None, PAGE_FAILED);
                        return Err(ToolError::Provider {
                            provider: expect.provider,
                            stage: Stage::Authorize,
                            error,
                        });
                    }
                    Outcome::WrongState => {
                        eprintln!(
                            "warning: ignored a redirect whose state does not match this run \
                             (a stale browser tab, or a forged request); still waiting"
                        );
                        respond(&mut stream, "400 Bad Request", None, PAGE_WRONG_STATE);
                    }
                    Outcome::Incomplete => {
                        respond(&mut stream, "400 Bad Request", None, PAGE_INCOMPLETE)
                    }
                },
                Err(mpsc::RecvTimeoutError::Timeout | mpsc::RecvTimeoutError::Disconnected) => {}
            }
            if Instant::now() >= deadline {
                return Err(ToolError::Timeout(timeout.as_secs()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(s: &str) -> Vec<(String, String)> {
        urlenc::parse_query(s)
    }

    #[test]
    fn request_lines() {
        assert_eq!(request_target("GET /auth HTTP/1.1"), Some("/auth"));
        assert_eq!(request_target("HEAD /x?y HTTP/1.0"), Some("/x?y"));
        assert_eq!(request_target("POST /auth HTTP/1.1"), None);
        assert_eq!(request_target("GET http://evil/ HTTP/1.1"), None);
        assert_eq!(request_target("GET /auth"), None);
    }

    #[test]
    fn routes() {
        assert_eq!(route("/auth", "/oauth2_result"), Route::Auth);
        assert_eq!(route("/auth?x=1", "/"), Route::Auth);
        assert_eq!(route("/favicon.ico", "/oauth2_result"), Route::NotFound);
        assert_eq!(
            route("/oauth2_result?code=a&state=b", "/oauth2_result"),
            Route::Callback(q("code=a&state=b"))
        );
        assert_eq!(route("/?code=a", "/"), Route::Callback(q("code=a")));
    }

    #[test]
    fn outcomes() {
        assert!(
            matches!(evaluate(&q("code=c1&state=s1"), "s1"), Outcome::Code(c) if c.expose() == "c1")
        );
        assert!(matches!(
            evaluate(&q("code=c1&state=s2"), "s1"),
            Outcome::WrongState
        ));
        assert!(matches!(evaluate(&q("code=c1"), "s1"), Outcome::WrongState));
        assert!(matches!(
            evaluate(&q("code=c&state=s1&state=s1"), "s1"),
            Outcome::WrongState
        ));
        assert!(matches!(
            evaluate(&q("state=s1"), "s1"),
            Outcome::Incomplete
        ));
        assert!(matches!(
            evaluate(&q("code=a&code=b&state=s1"), "s1"),
            Outcome::Incomplete
        ));
        // An error with a foreign state is ignored like any forged request.
        assert!(matches!(
            evaluate(&q("error=access_denied&state=zz"), "s1"),
            Outcome::WrongState
        ));
        let Outcome::Refused(e) = evaluate(
            &q("error=access_denied&error_description=AADSTS65001%3A+no+consent&state=s1"),
            "s1",
        ) else {
            panic!()
        };
        assert_eq!(e.error, "access_denied");
        assert_eq!(e.aadsts, Some(65001));
    }

    #[test]
    fn binds_loopback_only_and_reports_port_in_use() {
        let l = Loopback::bind(0).unwrap();
        assert_ne!(l.port, 0);
        assert!(l.listener.local_addr().unwrap().ip().is_loopback());
        let e = Loopback::bind(l.port).unwrap_err();
        assert!(e.to_string().contains("already in use"), "{e}");
    }
}
