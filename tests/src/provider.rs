//! A local fake of an OAuth 2.0 token endpoint (Google / Microsoft style),
//! for the tests and the demo: HTTPS on 127.0.0.1 with a throwaway CA.
//!
//! ```no_run
//! use testkit::provider::{FakeProvider, Mode};
//! let p = FakeProvider::start();                 // Mode::Normal
//! let rt = p.issue_refresh_token();              // put it in a token file
//! let url = p.url();                             // https://127.0.0.1:PORT/token
//! let ca = p.ca_pem();                           // trust this (handoff ca_pem or a file)
//! p.set_mode(Mode::Rotating);                    // switch at run time
//! assert_eq!(p.requests(), 0);
//! // after a refresh: p.is_valid_access_token(&token_from_file)
//! ```
//!
//! Behaviour, per [`Mode`]: client_id/client_secret are checked (401
//! `invalid_client`), the refresh token must be one this provider issued
//! (400 `invalid_grant` with an AADSTS-style description otherwise), each
//! success issues a new access token valid for `expires_in` seconds.

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use std::collections::{HashMap, HashSet};
use std::io::{self, BufRead, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// How the endpoint answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Mode {
    /// Valid requests get a new access token; the refresh token stays valid.
    Normal,
    /// Like Normal, but every success also issues a new refresh token and
    /// invalidates the one used, at once (as some providers do).
    Rotating,
    /// Like Normal, after a delay.
    Slow(Duration),
    /// Like Rotating, after a delay (the old refresh token dies when the
    /// answer is sent, whether or not the client is still there).
    SlowRotating(Duration),
    /// Rotation with a grace period, as providers that rotate do in practice
    /// (reuse detection): each success issues a new refresh token, and
    /// afterwards only the token just presented and that new one are
    /// accepted. The presented one dies once its successor is presented, so
    /// a client killed before it stored the new token can still refresh,
    /// while a client that stored the new token must use it.
    RotatingWithGrace,
    /// Accepts the connection and reads the request, never answers.
    Hung,
    /// The next `n` requests get HTTP 503, then Normal.
    ServerErrorsThenOk(u32),
    /// Every request gets 400 invalid_grant with an AADSTS description.
    InvalidGrant,
    /// HTTP 200 with a body that is not JSON.
    GarbageJson,
    /// HTTP 200 with a 1 MiB JSON body.
    HugeBody,
    /// HTTP 200, valid JSON, no access_token.
    MissingAccessToken,
}

impl Mode {
    /// Parse the names used by the `fake-provider` binary: normal, rotating,
    /// rotating-grace, slow:MS, slow-rotating:MS, hung, 5xx:N (N errors then ok), invalid_grant, garbage,
    /// huge, no_access_token.
    pub fn parse(s: &str) -> Option<Mode> {
        Some(match s {
            "normal" => Mode::Normal,
            "rotating" => Mode::Rotating,
            "rotating-grace" => Mode::RotatingWithGrace,
            "hung" => Mode::Hung,
            "invalid_grant" => Mode::InvalidGrant,
            "garbage" => Mode::GarbageJson,
            "huge" => Mode::HugeBody,
            "no_access_token" => Mode::MissingAccessToken,
            _ => {
                if let Some(ms) = s.strip_prefix("slow-rotating:") {
                    Mode::SlowRotating(Duration::from_millis(ms.parse().ok()?))
                } else if let Some(ms) = s.strip_prefix("slow:") {
                    Mode::Slow(Duration::from_millis(ms.parse().ok()?))
                } else if let Some(n) = s.strip_prefix("5xx:") {
                    Mode::ServerErrorsThenOk(n.parse().ok()?)
                } else {
                    return None;
                }
            }
        })
    }
}

/// One request the endpoint received.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub content_type: Option<String>,
    /// The raw (url-encoded) body.
    pub body: String,
    /// The decoded form fields, in order.
    pub form: Vec<(String, String)>,
}

impl Recorded {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

struct Shared {
    mode: Mutex<Mode>,
    /// Remaining 503s in ServerErrorsThenOk.
    errors_left: Mutex<u32>,
    requests: AtomicUsize,
    expires_in: AtomicI64,
    expires_in_as_string: AtomicBool,
    client_id: String,
    client_secret: String,
    refresh_tokens: Mutex<HashSet<String>>,
    /// Rotation lineage: refresh token -> the refresh token it replaced.
    rotated_from: Mutex<HashMap<String, String>>,
    /// Access token -> the refresh token issued with it (rotating modes).
    issued_with: Mutex<HashMap<String, String>>,
    /// access token -> unix expiry
    access_tokens: Mutex<HashMap<String, i64>>,
    serial: AtomicU64,
    nonce: String,
    /// Every token value this provider ever issued or accepted.
    every_token: Mutex<Vec<String>>,
    log: Mutex<Vec<Recorded>>,
    shutdown: AtomicBool,
}

/// A running fake token endpoint; stops when dropped.
pub struct FakeProvider {
    shared: Arc<Shared>,
    addr: SocketAddr,
    ca_pem: String,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FakeProvider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeProvider")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn nonce() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!(
        "{:x}{:x}{:x}",
        std::process::id(),
        t & 0xffff_ffff,
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A throwaway CA and a server certificate it signed for `localhost`,
/// `127.0.0.1` and `::1`.
struct Pki {
    ca_pem: String,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

/// A self-signed server certificate that is not a CA (basicConstraints
/// CA:FALSE), like Debian's `ssl-cert-snakeoil.pem`; `ca_pem` is the
/// certificate itself.
fn make_self_signed() -> Pki {
    use rcgen::{CertificateParams, DnType, IsCa, KeyPair};
    let key = KeyPair::generate().expect("server key");
    let mut p = CertificateParams::new(vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ])
    .expect("server params");
    p.distinguished_name
        .push(DnType::CommonName, "self-signed fake token endpoint");
    p.is_ca = IsCa::ExplicitNoCa;
    let cert = p.self_signed(&key).expect("self-signed cert");
    Pki {
        ca_pem: cert.pem(),
        chain: vec![cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    }
}

fn make_pki() -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "sasl-xoauth2 test CA (throwaway)");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).expect("CA cert");
    let issuer = Issuer::new(ca_params, ca_key);

    let leaf_key = KeyPair::generate().expect("server key");
    let mut leaf = CertificateParams::new(vec![
        "localhost".to_string(),
        "127.0.0.1".to_string(),
        "::1".to_string(),
    ])
    .expect("server params");
    leaf.distinguished_name
        .push(DnType::CommonName, "fake token endpoint");
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).expect("server cert");
    Pki {
        ca_pem: ca_cert.pem(),
        chain: vec![leaf_cert.der().clone()],
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
    }
}

/// Options for [`FakeProvider::start_with`].
#[derive(Debug, Clone)]
pub struct Options {
    pub mode: Mode,
    pub client_id: String,
    /// Empty: a public client (no secret expected).
    pub client_secret: String,
    pub expires_in: i64,
    /// Bind address; port 0 picks a free one.
    pub bind: SocketAddr,
    /// Serve a self-signed non-CA certificate (then [`FakeProvider::ca_pem`]
    /// is that certificate) instead of one from a throwaway CA.
    pub self_signed: bool,
}

impl Default for Options {
    fn default() -> Self {
        let n = nonce();
        Options {
            mode: Mode::Normal,
            client_id: format!("fake-client-{n}.apps.example"),
            client_secret: format!("fake-client-secret-{n}"),
            expires_in: 3599,
            bind: "127.0.0.1:0".parse().unwrap(),
            self_signed: false,
        }
    }
}

impl FakeProvider {
    /// Start in [`Mode::Normal`] on 127.0.0.1 with a fresh client id/secret.
    pub fn start() -> FakeProvider {
        Self::start_with(Options::default())
    }

    pub fn start_with(opts: Options) -> FakeProvider {
        assert!(
            opts.bind.ip().is_loopback(),
            "the fake provider binds loopback addresses only"
        );
        let _ = rustls::crypto::ring::default_provider().install_default();
        let pki = if opts.self_signed {
            make_self_signed()
        } else {
            make_pki()
        };
        let config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .expect("TLS versions")
                .with_no_client_auth()
                .with_single_cert(pki.chain, pki.key)
                .expect("server certificate");
        let config = Arc::new(config);
        let listener = TcpListener::bind(opts.bind).expect("bind the fake provider");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            errors_left: Mutex::new(match opts.mode {
                Mode::ServerErrorsThenOk(n) => n,
                _ => 0,
            }),
            mode: Mutex::new(opts.mode),
            requests: AtomicUsize::new(0),
            expires_in: AtomicI64::new(opts.expires_in),
            expires_in_as_string: AtomicBool::new(false),
            client_id: opts.client_id,
            client_secret: opts.client_secret,
            refresh_tokens: Mutex::new(HashSet::new()),
            rotated_from: Mutex::new(HashMap::new()),
            issued_with: Mutex::new(HashMap::new()),
            access_tokens: Mutex::new(HashMap::new()),
            serial: AtomicU64::new(0),
            nonce: nonce(),
            every_token: Mutex::new(Vec::new()),
            log: Mutex::new(Vec::new()),
            shutdown: AtomicBool::new(false),
        });
        let s = shared.clone();
        let accept = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.shutdown.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let s = s.clone();
                let config = config.clone();
                std::thread::spawn(move || {
                    let _ = serve(stream, config, &s);
                });
            }
        });
        FakeProvider {
            shared,
            addr,
            ca_pem: pki.ca_pem,
            accept: Some(accept),
        }
    }

    /// `https://127.0.0.1:PORT/token`
    pub fn url(&self) -> String {
        format!("https://{}/token", self.addr)
    }

    /// `https://localhost:PORT/token` (needs name resolution).
    pub fn url_localhost(&self) -> String {
        format!("https://localhost:{}/token", self.addr.port())
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The throwaway CA that signed the server certificate, PEM.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// Write the CA PEM to `path`.
    pub fn write_ca(&self, path: &Path) -> io::Result<()> {
        std::fs::write(path, &self.ca_pem)
    }

    pub fn client_id(&self) -> &str {
        &self.shared.client_id
    }

    pub fn client_secret(&self) -> &str {
        &self.shared.client_secret
    }

    pub fn set_mode(&self, mode: Mode) {
        if let Mode::ServerErrorsThenOk(n) = mode {
            *self.shared.errors_left.lock().unwrap() = n;
        }
        *self.shared.mode.lock().unwrap() = mode;
    }

    pub fn mode(&self) -> Mode {
        self.shared.mode.lock().unwrap().clone()
    }

    /// `expires_in` of the next tokens; `as_string` sends it as a JSON string.
    pub fn set_expires_in(&self, secs: i64, as_string: bool) {
        self.shared.expires_in.store(secs, Ordering::SeqCst);
        self.shared
            .expires_in_as_string
            .store(as_string, Ordering::SeqCst);
    }

    /// HTTP requests received so far (any mode, any outcome).
    pub fn requests(&self) -> usize {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// Every request received, oldest first.
    pub fn recorded(&self) -> Vec<Recorded> {
        self.shared.log.lock().unwrap().clone()
    }

    /// A new refresh token this provider accepts.
    pub fn issue_refresh_token(&self) -> String {
        let t = self.shared.new_token("1//fake-refresh");
        self.shared.refresh_tokens.lock().unwrap().insert(t.clone());
        t
    }

    /// Accept `t` as a refresh token (e.g. one given on a command line).
    pub fn accept_refresh_token(&self, t: &str) {
        self.shared.every_token.lock().unwrap().push(t.to_string());
        self.shared
            .refresh_tokens
            .lock()
            .unwrap()
            .insert(t.to_string());
    }

    /// Every secret this provider knows: the client secret and every
    /// refresh and access token it ever issued or accepted (also rotated
    /// and revoked ones, and the fixed ones of the broken modes). Tests
    /// scan all captured output for these.
    pub fn secrets(&self) -> Vec<String> {
        let mut v = self.shared.every_token.lock().unwrap().clone();
        if !self.shared.client_secret.is_empty() {
            v.push(self.shared.client_secret.clone());
        }
        v.extend(FIXED_TOKENS.iter().map(|t| t.to_string()));
        v
    }

    /// Refresh tokens currently accepted.
    pub fn valid_refresh_tokens(&self) -> Vec<String> {
        self.shared
            .refresh_tokens
            .lock()
            .unwrap()
            .iter()
            .cloned()
            .collect()
    }

    pub fn is_valid_refresh_token(&self, t: &str) -> bool {
        self.shared.refresh_tokens.lock().unwrap().contains(t)
    }

    /// The refresh token issued in the same answer as access token `at`
    /// (rotating modes only).
    pub fn refresh_token_issued_with(&self, at: &str) -> Option<String> {
        self.shared.issued_with.lock().unwrap().get(at).cloned()
    }

    /// Whether refresh token `t` is `ancestor` or was issued, directly or
    /// down a chain of rotations, in exchange for it.
    pub fn rotated_from(&self, t: &str, ancestor: &str) -> bool {
        let lineage = self.shared.rotated_from.lock().unwrap();
        let mut cur = t;
        loop {
            if cur == ancestor {
                return true;
            }
            match lineage.get(cur) {
                Some(parent) => cur = parent,
                None => return false,
            }
        }
    }

    pub fn revoke_refresh_token(&self, t: &str) {
        self.shared.refresh_tokens.lock().unwrap().remove(t);
    }

    /// Every access token issued so far and not revoked (expired or not).
    pub fn issued_access_tokens(&self) -> Vec<String> {
        self.shared
            .access_tokens
            .lock()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    }

    /// Whether an SMTP server should accept `t` as a bearer token now:
    /// issued by this provider, not revoked, not expired.
    pub fn is_valid_access_token(&self, t: &str) -> bool {
        self.shared
            .access_tokens
            .lock()
            .unwrap()
            .get(t)
            .is_some_and(|&exp| exp > unix_now())
    }

    pub fn revoke_access_token(&self, t: &str) {
        self.shared.access_tokens.lock().unwrap().remove(t);
    }

    pub fn revoke_all_access_tokens(&self) {
        self.shared.access_tokens.lock().unwrap().clear();
    }

    /// An access token issued by this provider directly (as if by an earlier
    /// refresh), valid for `secs` seconds.
    pub fn issue_access_token(&self, secs: i64) -> String {
        let t = self.shared.new_token("ya29.fake-access");
        self.shared
            .access_tokens
            .lock()
            .unwrap()
            .insert(t.clone(), unix_now() + secs);
        t
    }
}

impl FakeProvider {
    /// Answer control commands on stdin, one line each, until `quit` or
    /// end of input (the standalone fakes' protocol): `mode NAME`,
    /// `issue-refresh-token`, `valid TOKEN`, `revoke TOKEN`, `revoke-all`,
    /// `requests`, `refresh-tokens`.
    pub fn serve_commands(&self) {
        let mut out = io::stdout().lock();
        for line in io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            let mut w = line.split_whitespace();
            let answer = match (w.next(), w.next()) {
                (Some("mode"), Some(m)) => match Mode::parse(m) {
                    Some(m) => {
                        self.set_mode(m);
                        "ok".to_string()
                    }
                    None => format!("error: unknown mode {m}"),
                },
                (Some("issue-refresh-token"), None) => {
                    format!("refresh_token {}", self.issue_refresh_token())
                }
                (Some("valid"), Some(t)) => if self.is_valid_access_token(t) {
                    "yes"
                } else {
                    "no"
                }
                .into(),
                (Some("revoke"), Some(t)) => {
                    self.revoke_access_token(t);
                    "ok".into()
                }
                (Some("revoke-all"), None) => {
                    self.revoke_all_access_tokens();
                    "ok".into()
                }
                (Some("requests"), None) => self.requests().to_string(),
                (Some("refresh-tokens"), None) => self.valid_refresh_tokens().join(" "),
                (Some("quit"), None) => break,
                _ => format!("error: unknown command {line:?}"),
            };
            let _ = writeln!(out, "{answer}");
            let _ = out.flush();
        }
    }
}

impl Drop for FakeProvider {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        // Wake the accept loop.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

impl Shared {
    fn new_token(&self, prefix: &str) -> String {
        let t = format!(
            "{prefix}-{}-{}",
            self.nonce,
            self.serial.fetch_add(1, Ordering::SeqCst)
        );
        self.every_token.lock().unwrap().push(t.clone());
        t
    }

    fn sleep_unless_shutdown(&self, d: Duration) {
        let end = Instant::now() + d;
        while Instant::now() < end && !self.shutdown.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(10).min(end - Instant::now()));
        }
    }
}

/// Token values sent by the broken modes.
const FIXED_TOKENS: &[&str] = &["ya29.garbage-token-value", "ya29.huge-token-value"];

const AADSTS_INVALID_GRANT: &str = "AADSTS70000: The provided value for the input parameter 'refresh_token' or 'assertion' is not valid. Trace ID: 6a1d7a3c-0000-4f00-9c55-000000000000 Correlation ID: 0f0f0f0f-1111-2222-3333-444444444444 Timestamp: 2024-01-01 00:00:00Z";

fn serve(tcp: TcpStream, config: Arc<ServerConfig>, s: &Shared) -> io::Result<()> {
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    tcp.set_write_timeout(Some(Duration::from_secs(10)))?;
    let conn = ServerConnection::new(config).map_err(io::Error::other)?;
    let mut tls = StreamOwned::new(conn, tcp);
    let Some(req) = read_request(&mut tls)? else {
        return Ok(());
    };
    if s.shutdown.load(Ordering::SeqCst) {
        return Ok(());
    }
    s.requests.fetch_add(1, Ordering::SeqCst);
    s.log.lock().unwrap().push(req.clone());
    let mode = s.mode.lock().unwrap().clone();
    let (status, body) = match mode {
        Mode::Hung => {
            s.sleep_unless_shutdown(Duration::from_secs(120));
            return Ok(());
        }
        Mode::Slow(d) => {
            s.sleep_unless_shutdown(d);
            grant(s, &req, false)
        }
        Mode::SlowRotating(d) => {
            s.sleep_unless_shutdown(d);
            grant(s, &req, true)
        }
        Mode::Normal => grant(s, &req, false),
        Mode::Rotating | Mode::RotatingWithGrace => grant(s, &req, true),
        Mode::ServerErrorsThenOk(_) => {
            let mut left = s.errors_left.lock().unwrap();
            if *left > 0 {
                *left -= 1;
                (
                    503,
                    "<html><body>503 Service Unavailable</body></html>".to_string(),
                )
            } else {
                drop(left);
                grant(s, &req, false)
            }
        }
        Mode::InvalidGrant => invalid_grant(),
        Mode::GarbageJson => (
            200,
            r#"{"access_token": "ya29.garbage-token-value", "expires_in": 3599, ]]"#.to_string(),
        ),
        Mode::HugeBody => {
            let pad = "x".repeat(1024 * 1024);
            (
                200,
                format!(
                    r#"{{"access_token":"ya29.huge-token-value","expires_in":3599,"padding":"{pad}"}}"#
                ),
            )
        }
        Mode::MissingAccessToken => (
            200,
            r#"{"token_type":"Bearer","expires_in":3599,"scope":"https://mail.google.com/"}"#
                .to_string(),
        ),
    };
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        503 => "Service Unavailable",
        _ => "Status",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    tls.write_all(head.as_bytes())?;
    tls.write_all(body.as_bytes())?;
    tls.conn.send_close_notify();
    tls.flush()?;
    Ok(())
}

fn invalid_grant() -> (u16, String) {
    (
        400,
        serde_json::json!({
            "error": "invalid_grant",
            "error_description": AADSTS_INVALID_GRANT,
            "error_codes": [70000],
        })
        .to_string(),
    )
}

fn grant(s: &Shared, req: &Recorded, rotating: bool) -> (u16, String) {
    if req.method != "POST" || req.path != "/token" {
        return (404, r#"{"error":"not_found"}"#.to_string());
    }
    let client_ok = req.field("client_id") == Some(s.client_id.as_str())
        && (s.client_secret.is_empty() || req.field("client_secret") == Some(&s.client_secret));
    if !client_ok {
        return (
            401,
            serde_json::json!({
                "error": "invalid_client",
                "error_description": "AADSTS7000215: Invalid client secret provided.",
            })
            .to_string(),
        );
    }
    let mut new_refresh = None;
    match req.field("grant_type") {
        Some("refresh_token") => {
            let Some(rt) = req.field("refresh_token") else {
                return (
                    400,
                    r#"{"error":"invalid_request","error_description":"refresh_token missing"}"#
                        .to_string(),
                );
            };
            let mut valid = s.refresh_tokens.lock().unwrap();
            if !valid.contains(rt) {
                return invalid_grant();
            }
            if rotating {
                let n = s.new_token("1//fake-refresh");
                if *s.mode.lock().unwrap() == Mode::RotatingWithGrace {
                    valid.retain(|t| t == rt);
                } else {
                    valid.remove(rt);
                }
                valid.insert(n.clone());
                s.rotated_from
                    .lock()
                    .unwrap()
                    .insert(n.clone(), rt.to_string());
                new_refresh = Some(n);
            }
        }
        Some("client_credentials") => {}
        _ => return (400, r#"{"error":"unsupported_grant_type"}"#.to_string()),
    }
    let expires_in = s.expires_in.load(Ordering::SeqCst);
    let at = s.new_token("ya29.fake-access");
    s.access_tokens
        .lock()
        .unwrap()
        .insert(at.clone(), unix_now() + expires_in);
    let mut body = serde_json::json!({
        "access_token": at,
        "token_type": "Bearer",
        "scope": req.field("scope").unwrap_or("https://mail.google.com/"),
    });
    body["expires_in"] = if s.expires_in_as_string.load(Ordering::SeqCst) {
        expires_in.to_string().into()
    } else {
        expires_in.into()
    };
    if let Some(r) = new_refresh {
        s.issued_with.lock().unwrap().insert(at.clone(), r.clone());
        body["refresh_token"] = r.into();
    }
    (200, body.to_string())
}

fn read_request<S: Read>(stream: &mut S) -> io::Result<Option<Recorded>> {
    const CAP: usize = 64 * 1024;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i;
        }
        if buf.len() > CAP {
            return Ok(None);
        }
        let n = match stream.read(&mut chunk) {
            Ok(0) => return Ok(None),
            Ok(n) => n,
            Err(e) => return Err(e),
        };
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_string();
    let path = first.next().unwrap_or("").to_string();
    let mut content_length = 0usize;
    let mut content_type = None;
    for l in lines {
        if let Some((k, v)) = l.split_once(':') {
            match k.trim().to_ascii_lowercase().as_str() {
                "content-length" => content_length = v.trim().parse().unwrap_or(0),
                "content-type" => content_type = Some(v.trim().to_string()),
                _ => {}
            }
        }
    }
    if content_length > CAP {
        return Ok(None);
    }
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < content_length {
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Ok(None);
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(content_length);
    let body = String::from_utf8_lossy(&body).into_owned();
    Ok(Some(Recorded {
        form: parse_form(&body),
        method,
        path,
        content_type,
        body,
    }))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// Decode `application/x-www-form-urlencoded` (malformed pairs dropped).
pub fn parse_form(body: &str) -> Vec<(String, String)> {
    common::urlenc::parse_query(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn form_decoding() {
        assert_eq!(
            parse_form("a+b=x%2By%2Fz%3D%26%25%C3%A9&k=A-z_0.9*%7E&e="),
            vec![
                ("a b".to_string(), "x+y/z=&%é".to_string()),
                ("k".to_string(), "A-z_0.9*~".to_string()),
                ("e".to_string(), String::new()),
            ]
        );
        assert_eq!(
            parse_form("a=%&b=%zz&c=ok"),
            vec![("c".to_string(), "ok".to_string())]
        );
    }

    #[test]
    fn mode_names() {
        assert_eq!(
            Mode::parse("slow:250"),
            Some(Mode::Slow(Duration::from_millis(250)))
        );
        assert_eq!(Mode::parse("5xx:2"), Some(Mode::ServerErrorsThenOk(2)));
        assert_eq!(Mode::parse("rotating"), Some(Mode::Rotating));
        assert_eq!(Mode::parse("rotating-grace"), Some(Mode::RotatingWithGrace));
        assert_eq!(Mode::parse("bogus"), None);
    }
}
