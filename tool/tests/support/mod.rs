//! A local fake of Google's and Microsoft's OAuth endpoints (HTTPS on
//! 127.0.0.1 with a throwaway CA), a "browser" that follows what the tool
//! prints, and a harness that runs the real `sasl-xoauth2-tool` binary.
//!
//! The fake behaves like the providers where it matters to the tool: it
//! checks client ID and secret, redirect URI, `state` echo, the PKCE
//! verifier against the challenge, one-time codes, and the device-flow
//! polling pace (a too-early poll is answered with slow_down and recorded
//! as a violation).
#![allow(dead_code)]

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

pub const CLIENT_ID: &str = "test-client-id.apps.example";
pub const CLIENT_SECRET: &str = "test-client-secret-9f8e7d6c";
pub const ACCESS_TOKEN: &str = "ya29.fake-access-token-1a2b3c4d5e";
pub const REFRESH_TOKEN: &str = "1//fake-refresh-token-6f7a8b9c0d";
pub const REFRESHED_ACCESS_TOKEN: &str = "ya29.fake-refreshed-access-token-77";
pub const DEVICE_CODE: &str = "fake-device-code-GMMhmHCXhWEzkobqIHGG";
pub const USER_CODE: &str = "WDJB-MJHT";

/// How the fake device endpoint answers polls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceScript {
    /// authorization_pending for `n` polls, then tokens.
    ApproveAfter(u32),
    /// slow_down on the first poll, then tokens.
    SlowDownThenApprove,
    /// authorization_pending once, then authorization_declined.
    Decline,
    /// authorization_pending until the code expires, then expired_token.
    NeverApprove,
    /// expired_token on the first poll.
    ServerExpired,
    /// bad_verification_code on the first poll.
    BadCode,
}

#[derive(Debug, Clone)]
pub struct Behaviour {
    /// None: a public client (no secret expected).
    pub client_secret: Option<String>,
    /// Redirect back with this `error=` instead of a code.
    pub authorize_error: Option<(String, String)>,
    /// Answer the code exchange / refresh with this (status, JSON body).
    pub token_error: Option<(u16, String)>,
    /// Answer the device authorisation request with this (status, JSON body).
    pub devicecode_error: Option<(u16, String)>,
    /// Answer every device-code poll with this (status, JSON body).
    pub poll_error: Option<(u16, String)>,
    pub device: DeviceScript,
    pub device_expires_in: u64,
    pub device_interval: u64,
    /// Leave refresh_token out of token answers.
    pub omit_refresh_token: bool,
}

impl Default for Behaviour {
    fn default() -> Self {
        Behaviour {
            client_secret: Some(CLIENT_SECRET.into()),
            authorize_error: None,
            token_error: None,
            devicecode_error: None,
            poll_error: None,
            device: DeviceScript::ApproveAfter(1),
            device_expires_in: 30,
            device_interval: 1,
            omit_refresh_token: false,
        }
    }
}

/// One request the fake saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub params: Vec<(String, String)>,
}

impl Seen {
    pub fn get(&self, k: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug)]
struct IssuedCode {
    challenge: String,
    method: String,
    redirect_uri: String,
}

#[derive(Debug)]
struct DeviceSession {
    expires: Instant,
    interval: u64,
    polls: u32,
    last_poll: Option<Instant>,
}

#[derive(Debug, Default)]
pub struct FakeState {
    pub behaviour: Behaviour,
    pub seen: Vec<Seen>,
    codes: HashMap<String, IssuedCode>,
    device: Option<DeviceSession>,
    /// Protocol rules the client broke (polling too fast, bad PKCE, ...).
    pub violations: Vec<String>,
    /// Codes handed out, and code verifiers received (to scan output for).
    pub issued_codes: Vec<String>,
    pub verifiers: Vec<String>,
}

pub struct Fake {
    pub base: String,
    pub ca_file: PathBuf,
    pub state: Arc<Mutex<FakeState>>,
    pub dir: tempfile::TempDir,
    ca_pem: String,
    stop: Arc<AtomicBool>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn s256(v: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(v.as_bytes()))
}

pub fn enc(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

pub fn dec(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' if i + 3 <= b.len() => {
                let h = std::str::from_utf8(&b[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(h, 16).unwrap());
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

pub fn parse_pairs(q: &str) -> Vec<(String, String)> {
    q.split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (dec(k), dec(v))
        })
        .collect()
}

fn json_response(status: u16, body: &str) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Error",
    };
    format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn redirect(location: &str) -> Vec<u8> {
    format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .into_bytes()
}

fn oauth_error(status: u16, error: &str, description: &str) -> Vec<u8> {
    json_response(
        status,
        &serde_json::json!({"error": error, "error_description": description}).to_string(),
    )
}

fn tokens_json(access: &str, refresh: Option<&str>) -> String {
    let mut v = serde_json::json!({
        "access_token": access,
        "expires_in": 3599,
        "token_type": "Bearer",
        "scope": "granted",
    });
    if let Some(r) = refresh {
        v["refresh_token"] = r.into();
    }
    v.to_string()
}

static CODE_COUNTER: AtomicU32 = AtomicU32::new(0);

impl FakeState {
    fn handle(&mut self, method: &str, target: &str, body: &str) -> Vec<u8> {
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let params = if method == "POST" {
            parse_pairs(body)
        } else {
            parse_pairs(query)
        };
        let seen = Seen {
            method: method.into(),
            path: path.into(),
            params,
        };
        self.seen.push(seen.clone());
        let p = |k: &str| seen.get(k).map(str::to_string);
        if method == "GET" && (path.ends_with("/authorize") || path == "/o/oauth2/auth") {
            return self.authorize(&seen);
        }
        if method == "POST" && path.ends_with("/devicecode") {
            if let Some((status, body)) = &self.behaviour.devicecode_error {
                return json_response(*status, body);
            }
            if p("client_id").as_deref() != Some(CLIENT_ID) {
                return oauth_error(400, "invalid_client", "AADSTS700016: Application not found");
            }
            self.device = Some(DeviceSession {
                expires: Instant::now() + Duration::from_secs(self.behaviour.device_expires_in),
                interval: self.behaviour.device_interval,
                polls: 0,
                last_poll: None,
            });
            return json_response(
                200,
                &serde_json::json!({
                    "device_code": DEVICE_CODE,
                    "user_code": USER_CODE,
                    "verification_uri": "https://microsoft.example/devicelogin",
                    "expires_in": self.behaviour.device_expires_in,
                    "interval": self.behaviour.device_interval,
                    "message": "To sign in, ...",
                })
                .to_string(),
            );
        }
        if method == "POST" && (path.ends_with("/token")) {
            return self.token(&seen);
        }
        json_response(404, "{}")
    }

    fn authorize(&mut self, s: &Seen) -> Vec<u8> {
        let redirect_uri = s.get("redirect_uri").unwrap_or("").to_string();
        let state = s.get("state").unwrap_or("").to_string();
        let sep = if redirect_uri.contains('?') { '&' } else { '?' };
        if s.get("client_id") != Some(CLIENT_ID) || s.get("response_type") != Some("code") {
            return json_response(400, r#"{"error":"invalid_request"}"#);
        }
        if let Some((e, d)) = &self.behaviour.authorize_error {
            return redirect(&format!(
                "{redirect_uri}{sep}error={}&error_description={}&state={}",
                enc(e),
                enc(d),
                enc(&state)
            ));
        }
        let n = CODE_COUNTER.fetch_add(1, Ordering::SeqCst);
        let code = format!("4/fake-auth-code-{n}-{}", std::process::id());
        self.issued_codes.push(code.clone());
        self.codes.insert(
            code.clone(),
            IssuedCode {
                challenge: s.get("code_challenge").unwrap_or("").into(),
                method: s.get("code_challenge_method").unwrap_or("plain").into(),
                redirect_uri: redirect_uri.clone(),
            },
        );
        redirect(&format!(
            "{redirect_uri}{sep}code={}&state={}&scope=granted",
            enc(&code),
            enc(&state)
        ))
    }

    fn client_ok(&self, s: &Seen) -> bool {
        s.get("client_id") == Some(CLIENT_ID)
            && match &self.behaviour.client_secret {
                Some(sec) => s.get("client_secret") == Some(sec.as_str()),
                None => s.get("client_secret").is_none(),
            }
    }

    fn token(&mut self, s: &Seen) -> Vec<u8> {
        let refresh = (!self.behaviour.omit_refresh_token).then_some(REFRESH_TOKEN);
        match s.get("grant_type") {
            Some("authorization_code") => {
                if let Some((status, body)) = &self.behaviour.token_error {
                    return json_response(*status, body);
                }
                if !self.client_ok(s) {
                    return oauth_error(401, "invalid_client", "Unauthorized");
                }
                let code = s.get("code").unwrap_or("");
                let Some(issued) = self.codes.remove(code) else {
                    return oauth_error(400, "invalid_grant", "Malformed auth code.");
                };
                if s.get("redirect_uri") != Some(issued.redirect_uri.as_str()) {
                    self.violations.push("redirect_uri differs".into());
                    return oauth_error(400, "invalid_grant", "redirect_uri mismatch");
                }
                let Some(verifier) = s.get("code_verifier") else {
                    self.violations.push("no code_verifier".into());
                    return oauth_error(400, "invalid_grant", "Missing code verifier.");
                };
                self.verifiers.push(verifier.to_string());
                if issued.method != "S256" || s256(verifier) != issued.challenge {
                    self.violations.push("PKCE verification failed".into());
                    return oauth_error(400, "invalid_grant", "Invalid code verifier.");
                }
                json_response(200, &tokens_json(ACCESS_TOKEN, refresh))
            }
            Some("urn:ietf:params:oauth:grant-type:device_code") => self.poll(s),
            Some("refresh_token") => {
                if let Some((status, body)) = &self.behaviour.token_error {
                    return json_response(*status, body);
                }
                if !self.client_ok(s) {
                    return oauth_error(401, "invalid_client", "Unauthorized");
                }
                if s.get("refresh_token") != Some(REFRESH_TOKEN) {
                    return oauth_error(400, "invalid_grant", "Token has been expired or revoked.");
                }
                json_response(200, &tokens_json(REFRESHED_ACCESS_TOKEN, None))
            }
            _ => oauth_error(400, "unsupported_grant_type", "?"),
        }
    }

    fn poll(&mut self, s: &Seen) -> Vec<u8> {
        if s.get("client_id") != Some(CLIENT_ID) || s.get("device_code") != Some(DEVICE_CODE) {
            return oauth_error(400, "bad_verification_code", "unknown device code");
        }
        if let Some((status, body)) = &self.behaviour.poll_error {
            return json_response(*status, body);
        }
        let script = self.behaviour.device;
        let refresh = (!self.behaviour.omit_refresh_token).then_some(REFRESH_TOKEN);
        let Some(d) = self.device.as_mut() else {
            return oauth_error(400, "bad_verification_code", "no session");
        };
        let now = Instant::now();
        if let Some(last) = d.last_poll {
            if now.duration_since(last) < Duration::from_secs(d.interval) {
                self.violations.push(format!(
                    "polled after {:?}, interval is {} s",
                    now.duration_since(last),
                    d.interval
                ));
                d.last_poll = Some(now);
                d.interval += 5;
                return oauth_error(400, "slow_down", "too fast");
            }
        }
        d.last_poll = Some(now);
        d.polls += 1;
        if now >= d.expires {
            return oauth_error(400, "expired_token", "AADSTS70020: The provided value for the input parameter 'device_code' is not valid. This device code has expired.");
        }
        let pending = || {
            oauth_error(
                400,
                "authorization_pending",
                "AADSTS70016: OAuth 2.0 device flow error. Authorization is pending.",
            )
        };
        match script {
            DeviceScript::ApproveAfter(n) if d.polls <= n => pending(),
            DeviceScript::ApproveAfter(_) => {
                json_response(200, &tokens_json(ACCESS_TOKEN, refresh))
            }
            DeviceScript::SlowDownThenApprove if d.polls == 1 => {
                d.interval += 5;
                oauth_error(400, "slow_down", "slow down")
            }
            DeviceScript::SlowDownThenApprove => {
                json_response(200, &tokens_json(ACCESS_TOKEN, refresh))
            }
            DeviceScript::Decline if d.polls == 1 => pending(),
            DeviceScript::Decline => oauth_error(
                400,
                "authorization_declined",
                "AADSTS70000: the user declined",
            ),
            DeviceScript::NeverApprove => pending(),
            DeviceScript::ServerExpired => {
                oauth_error(400, "expired_token", "AADSTS70020: expired")
            }
            DeviceScript::BadCode => {
                oauth_error(400, "bad_verification_code", "AADSTS70019: bad code")
            }
        }
    }
}

fn serve_conn(tcp: TcpStream, tls: Arc<rustls::ServerConfig>, state: Arc<Mutex<FakeState>>) {
    tcp.set_read_timeout(Some(Duration::from_secs(10))).ok();
    let Ok(conn) = rustls::ServerConnection::new(tls) else {
        return;
    };
    let mut stream = rustls::StreamOwned::new(conn, tcp);
    let mut reader = BufReader::new(&mut stream);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let mut parts = line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return;
    };
    let (method, target) = (method.to_string(), target.to_string());
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).is_err() || h.is_empty() {
            return;
        }
        if h == "\r\n" {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().unwrap_or(0);
            }
        }
    }
    let mut body = vec![0u8; len];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let resp = state
        .lock()
        .unwrap()
        .handle(&method, &target, &String::from_utf8_lossy(&body));
    let _ = stream.write_all(&resp);
    let _ = stream.flush();
    stream.conn.send_close_notify();
    let _ = stream.flush();
}

impl Fake {
    pub fn start(behaviour: Behaviour) -> Fake {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        ca_params
            .distinguished_name
            .push(rcgen::DnType::CommonName, "sasl-xoauth2 tool test CA");
        ca_params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::CrlSign,
        ];
        let ca_cert = ca_params.self_signed(&ca_key).unwrap();
        let issuer = rcgen::Issuer::new(ca_params, ca_key);
        let mut leaf = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        leaf.subject_alt_names
            .push(rcgen::SanType::IpAddress("127.0.0.1".parse().unwrap()));
        let leaf_key = rcgen::KeyPair::generate().unwrap();
        let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
        let ca_pem = ca_cert.pem();
        let ca_file = dir.path().join("ca.pem");
        std::fs::write(&ca_file, &ca_pem).unwrap();

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(
                vec![leaf_cert.der().clone()],
                rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
            )
            .unwrap();
        let tls = Arc::new(tls);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let state = Arc::new(Mutex::new(FakeState {
            behaviour,
            ..Default::default()
        }));
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (state, stop) = (state.clone(), stop.clone());
            thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((tcp, _)) => {
                            tcp.set_nonblocking(false).unwrap();
                            let (tls, state) = (tls.clone(), state.clone());
                            thread::spawn(move || serve_conn(tcp, tls, state));
                        }
                        Err(_) => thread::sleep(Duration::from_millis(20)),
                    }
                }
            });
        }
        Fake {
            base: format!("https://127.0.0.1:{port}"),
            ca_file,
            state,
            dir,
            ca_pem,
            stop,
        }
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().unwrap().seen.clone()
    }

    pub fn violations(&self) -> Vec<String> {
        self.state.lock().unwrap().violations.clone()
    }

    pub fn token_requests(&self) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.method == "POST" && s.path.ends_with("/token"))
            .count()
    }

    /// Options that point get-token gmail at this fake.
    pub fn gmail_args(&self) -> Vec<String> {
        vec![
            format!("--auth-endpoint={}/o/oauth2/auth", self.base),
            format!("--token-endpoint={}/o/oauth2/token", self.base),
            format!("--ca-bundle-file={}", self.ca_file.display()),
            format!("--client-id={CLIENT_ID}"),
        ]
    }

    /// Options that point get-token outlook at this fake.
    pub fn outlook_args(&self) -> Vec<String> {
        vec![
            format!("--login-base={}", self.base),
            format!("--ca-bundle-file={}", self.ca_file.display()),
            format!("--client-id={CLIENT_ID}"),
        ]
    }

    /// Everything secret that must never be printed (besides a `-` output).
    pub fn secrets(&self) -> Vec<String> {
        let st = self.state.lock().unwrap();
        let mut v = vec![
            CLIENT_SECRET.to_string(),
            ACCESS_TOKEN.to_string(),
            REFRESH_TOKEN.to_string(),
            REFRESHED_ACCESS_TOKEN.to_string(),
            DEVICE_CODE.to_string(),
        ];
        v.extend(st.issued_codes.iter().cloned());
        v.extend(st.issued_codes.iter().map(|c| enc(c)));
        v.extend(st.verifiers.iter().cloned());
        v
    }

    /// A client trusting the fake's CA that does not follow redirects: the
    /// test's "browser".
    pub fn browser(&self) -> ureq::Agent {
        let mut certs = Vec::new();
        for item in ureq::tls::parse_pem(self.ca_pem.as_bytes()) {
            if let ureq::tls::PemItem::Certificate(c) = item.unwrap() {
                certs.push(c);
            }
        }
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(ureq::tls::RootCerts::Specific(Arc::new(certs)))
            .build();
        ureq::Agent::config_builder()
            .tls_config(tls)
            .max_redirects(0)
            .http_status_as_error(false)
            .proxy(None)
            .timeout_global(Some(Duration::from_secs(20)))
            .build()
            .into()
    }
}

/// GET `url`: (status, Location header, body).
pub fn get(agent: &ureq::Agent, url: &str) -> (u16, Option<String>, String) {
    let mut r = agent
        .get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let loc = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string());
    let status = r.status().as_u16();
    let body = r.body_mut().read_to_string().unwrap_or_default();
    (status, loc, body)
}

/// The running tool, with its output collected as it comes.
pub struct Tool {
    child: Child,
    out: Arc<Mutex<Vec<u8>>>,
    err: Arc<Mutex<Vec<u8>>>,
    readers: Vec<thread::JoinHandle<()>>,
}

pub struct Finished {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    pub fn all(&self) -> String {
        format!("--- stdout\n{}\n--- stderr\n{}", self.stdout, self.stderr)
    }
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_sasl-xoauth2-tool")
}

fn pump(mut r: impl Read + Send + 'static, buf: Arc<Mutex<Vec<u8>>>) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        loop {
            match r.read(&mut chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.lock().unwrap().extend_from_slice(&chunk[..n]),
            }
        }
    })
}

impl Tool {
    /// Run the tool with `args` in an empty environment (no proxy, no
    /// config override) and piped standard streams.
    pub fn spawn<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Tool {
        Tool::spawn_cmd(Command::new(bin()).args(args))
    }

    /// Same, with a umask of 000 (to show the token file is 0600 anyway).
    pub fn spawn_umask0<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> Tool {
        Tool::spawn_cmd(
            Command::new("/bin/sh")
                .arg("-c")
                .arg("umask 000 && exec \"$0\" \"$@\"")
                .arg(bin())
                .args(args),
        )
    }

    pub fn spawn_cmd(cmd: &mut Command) -> Tool {
        let mut child = cmd
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run sasl-xoauth2-tool");
        let out = Arc::new(Mutex::new(Vec::new()));
        let err = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            pump(child.stdout.take().unwrap(), out.clone()),
            pump(child.stderr.take().unwrap(), err.clone()),
        ];
        Tool {
            child,
            out,
            err,
            readers,
        }
    }

    pub fn stdout_now(&self) -> String {
        String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned()
    }

    pub fn stderr_now(&self) -> String {
        String::from_utf8_lossy(&self.err.lock().unwrap()).into_owned()
    }

    /// Wait until `f` finds something in stderr so far; panic with the
    /// output after a generous deadline.
    pub fn wait_stderr<T>(&mut self, what: &str, f: impl Fn(&str) -> Option<T>) -> T {
        self.wait_output(what, false, f)
    }

    /// Like [`Tool::wait_stderr`], on stdout (where `script` puts a pty's output).
    pub fn wait_stdout<T>(&mut self, what: &str, f: impl Fn(&str) -> Option<T>) -> T {
        self.wait_output(what, true, f)
    }

    fn wait_output<T>(&mut self, what: &str, stdout: bool, f: impl Fn(&str) -> Option<T>) -> T {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let e = if stdout {
                self.stdout_now()
            } else {
                self.stderr_now()
            };
            if let Some(t) = f(&e) {
                return t;
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                // Give the reader a moment to drain, then one more look.
                thread::sleep(Duration::from_millis(200));
                let e = if stdout {
                    self.stdout_now()
                } else {
                    self.stderr_now()
                };
                if let Some(t) = f(&e) {
                    return t;
                }
                panic!("tool exited ({st}) before {what}; stderr:\n{e}");
            }
            if Instant::now() > deadline {
                panic!("timed out waiting for {what}; stderr:\n{e}");
            }
            thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn write_stdin(&mut self, s: &str) {
        let stdin = self.child.stdin.as_mut().unwrap();
        stdin.write_all(s.as_bytes()).unwrap();
        stdin.flush().unwrap();
    }

    /// Wait for the exit (killing the tool after a generous deadline).
    pub fn finish(mut self) -> Finished {
        drop(self.child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(st) = self.child.try_wait().unwrap() {
                break st;
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!("tool did not exit in time; stderr:\n{}", self.stderr_now());
            }
            thread::sleep(Duration::from_millis(50));
        };
        for r in self.readers.drain(..) {
            r.join().unwrap();
        }
        Finished {
            status,
            stdout: String::from_utf8_lossy(&self.out.lock().unwrap()).into_owned(),
            stderr: String::from_utf8_lossy(&self.err.lock().unwrap()).into_owned(),
        }
    }

    pub fn kill(mut self) -> Finished {
        let _ = self.child.kill();
        self.finish()
    }
}

/// Run the tool to completion with `stdin` as its input.
pub fn run<S: AsRef<std::ffi::OsStr>>(args: &[S], stdin: &str) -> Finished {
    let mut t = Tool::spawn(args);
    t.write_stdin(stdin);
    t.finish()
}

/// Fail if any of `secrets` shows up in `text`.
pub fn assert_no_secrets(text: &str, secrets: &[String]) {
    for s in secrets {
        assert!(!s.is_empty());
        assert!(
            !text.contains(s.as_str()),
            "a secret ({}...) appeared in the output:\n{text}",
            &s[..s.len().min(8)]
        );
    }
}

/// The first URL in `text` that starts with `prefix`.
pub fn url_starting(text: &str, prefix: &str) -> Option<String> {
    let at = text.find(prefix)?;
    Some(text[at..].split_whitespace().next().unwrap().to_string())
}

/// The port the tool's loopback listener announced.
pub fn listener_port(stderr: &str) -> Option<u16> {
    let rest = stderr.split("Listening on http://127.0.0.1:").nth(1)?;
    rest.split('/').next()?.parse().ok()
}

pub fn mode(p: &Path) -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).unwrap().mode() & 0o7777
}
