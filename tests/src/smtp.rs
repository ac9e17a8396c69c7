//! A local fake of a Gmail-style SMTP submission relay, for the Postfix
//! tests and the demo: plain SMTP on 127.0.0.1 with optional STARTTLS
//! (throwaway CA), `AUTH XOAUTH2 OAUTHBEARER` checked against the fake
//! token endpoints' currently valid access tokens.
//!
//! ```no_run
//! use std::sync::Arc;
//! use testkit::provider::FakeProvider;
//! use testkit::smtp::{Account, FakeRelay, RelayOptions};
//! let p = Arc::new(FakeProvider::start());
//! let relay = FakeRelay::start(RelayOptions::default(), vec![Account::any_user(p.clone())]);
//! // Postfix: relayhost = [127.0.0.1]:<relay.port()>, smtp_tls_CAfile = relay CA
//! let msgs = relay.wait_for_messages(1, std::time::Duration::from_secs(60)).unwrap();
//! assert_eq!(msgs[0].mechanism, "XOAUTH2");
//! ```
//!
//! Failures are answered the way Gmail answers them: a bad XOAUTH2 token
//! gets `334 <base64 {"status":"401","schemes":"Bearer","scope":...}>`, and
//! after the client's (empty) reply `535-5.7.8 Username and Password not
//! accepted...`; a bad OAUTHBEARER token gets the RFC 7628 error
//! (`{"status":"invalid_token",...}`) and, after the client's `\x01`, 535.
//! With STARTTLS on, AUTH is only offered (and MAIL only accepted) after
//! the TLS handshake, as Gmail does. `LOGIN` can be advertised too (it
//! always fails), to check that clients prefer the OAuth mechanisms.
//!
//! The relay never records or prints a token: attempts carry the token's
//! fingerprint only.

use crate::provider::FakeProvider;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The JSON Gmail sends (base64) in its XOAUTH2 failure challenge.
pub const GMAIL_XOAUTH2_ERROR: &str =
    r#"{"status":"401","schemes":"Bearer","scope":"https://mail.google.com/"}"#;
/// The RFC 7628 error challenge for OAUTHBEARER.
pub const OAUTHBEARER_ERROR: &str =
    r#"{"status":"invalid_token","schemes":"bearer","scope":"https://mail.google.com/"}"#;
/// Gmail's final answer to a failed authentication.
pub const GMAIL_535: &str = "535-5.7.8 Username and Password not accepted. For more information, go to\r\n535 5.7.8  https://support.google.com/mail/?p=BadCredentials fake-relay - gsmtp";

/// One account the relay knows: tokens issued by `provider` are accepted,
/// for `user` only when it is set (as Gmail ties a token to its account).
#[derive(Debug, Clone)]
pub struct Account {
    pub provider: Arc<FakeProvider>,
    pub user: Option<String>,
}

impl Account {
    pub fn new(provider: Arc<FakeProvider>, user: &str) -> Account {
        Account {
            provider,
            user: Some(user.to_string()),
        }
    }

    pub fn any_user(provider: Arc<FakeProvider>) -> Account {
        Account {
            provider,
            user: None,
        }
    }
}

/// Options for [`FakeRelay::start`].
#[derive(Debug, Clone)]
pub struct RelayOptions {
    /// Bind address; port 0 picks a free one. Loopback only.
    pub bind: SocketAddr,
    /// Offer STARTTLS (certificate from a throwaway CA, see
    /// [`FakeRelay::ca_pem`]) and require it before AUTH and MAIL.
    pub starttls: bool,
    /// Also advertise `AUTH LOGIN` (every LOGIN attempt fails).
    pub login: bool,
    /// The name in the greeting and EHLO reply.
    pub hostname: String,
    /// Append one JSON line per accepted message to this file.
    pub messages_file: Option<PathBuf>,
    /// Where one human-readable line per event goes (connection, TLS,
    /// AUTH outcome with the token's fingerprint, message).
    pub events: Option<EventSink>,
}

/// Receives the relay's event lines (never holding a secret).
#[derive(Clone)]
pub struct EventSink(pub Arc<dyn Fn(&str) + Send + Sync>);

impl EventSink {
    /// Append each line to `path`.
    pub fn file(path: PathBuf) -> EventSink {
        EventSink(Arc::new(move |line: &str| append_line(&path, line)))
    }
}

impl std::fmt::Debug for EventSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EventSink")
    }
}

impl Default for RelayOptions {
    fn default() -> Self {
        RelayOptions {
            bind: "127.0.0.1:0".parse().unwrap(),
            starttls: true,
            login: false,
            hostname: "smtp.fake-gmail.test".into(),
            messages_file: None,
            events: None,
        }
    }
}

/// A message the relay accepted.
#[derive(Debug, Clone)]
pub struct Message {
    /// The authenticated user (from the SASL exchange).
    pub user: String,
    pub mechanism: String,
    /// Index into the relay's accounts of the one whose token was used.
    pub account: usize,
    /// Fingerprint (`sha256:xxxxxxxx`) of the access token used.
    pub token_fingerprint: String,
    pub tls: bool,
    pub mail_from: String,
    pub rcpt_to: Vec<String>,
    /// The message as received (dot-unstuffed, CRLF line ends).
    pub data: String,
}

impl Message {
    /// The value of the first `Subject:` header.
    pub fn subject(&self) -> Option<&str> {
        self.data
            .split("\r\n\r\n")
            .next()
            .unwrap_or("")
            .lines()
            .find_map(|l| l.strip_prefix("Subject: "))
    }

    /// One JSON object (as the standalone binary writes it).
    pub fn to_json(&self) -> String {
        serde_json::json!({
            "user": self.user,
            "mechanism": self.mechanism,
            "account": self.account,
            "token": self.token_fingerprint,
            "tls": self.tls,
            "mail_from": self.mail_from,
            "rcpt_to": self.rcpt_to,
            "subject": self.subject(),
            "size": self.data.len(),
        })
        .to_string()
    }
}

/// How an AUTH command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthOutcome {
    /// Token valid for this account (index into the relay's accounts).
    Accepted(usize),
    /// Token unknown, expired, revoked or for another user: the error
    /// challenge was sent, then 535.
    Rejected,
    /// The client's data could not be parsed.
    Malformed,
    /// The client cancelled with `*`.
    Aborted,
    /// A mechanism the relay does not accept (LOGIN).
    Refused,
}

/// One AUTH command.
#[derive(Debug, Clone)]
pub struct AuthAttempt {
    pub mechanism: String,
    pub user: Option<String>,
    pub token_fingerprint: Option<String>,
    pub tls: bool,
    /// Whether the client sent its first response with the AUTH command.
    pub initial_response: bool,
    /// What the client answered to the error challenge (decoded), if one
    /// was sent: empty for XOAUTH2, `\x01` for OAUTHBEARER.
    pub error_ack: Option<Vec<u8>>,
    pub outcome: AuthOutcome,
}

struct Shared {
    accounts: Vec<Account>,
    opts: RelayOptions,
    tls: Option<Arc<ServerConfig>>,
    messages: Mutex<Vec<Message>>,
    auths: Mutex<Vec<AuthAttempt>>,
    changed: Condvar,
    connections: AtomicUsize,
    shutdown: AtomicBool,
}

/// A running fake relay; stops accepting when dropped.
pub struct FakeRelay {
    shared: Arc<Shared>,
    addr: SocketAddr,
    ca_pem: Option<String>,
    accept: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for FakeRelay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeRelay")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

/// A throwaway CA and a certificate it signed for `localhost`, `127.0.0.1`.
fn relay_pki(hostname: &str) -> (String, Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    // A name of its own: OpenSSL (Postfix's verification) picks the issuer
    // by name, so two relays' CAs in one CA file must not share one.
    static N: AtomicUsize = AtomicUsize::new(0);
    ca.distinguished_name.push(
        DnType::CommonName,
        format!(
            "sasl-xoauth2 test relay CA {}-{} (throwaway)",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ),
    );
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca.self_signed(&ca_key).expect("CA cert");
    let issuer = Issuer::new(ca, ca_key);
    let key = KeyPair::generate().expect("relay key");
    let mut leaf = CertificateParams::new(vec![
        hostname.to_string(),
        "localhost".to_string(),
        "127.0.0.1".to_string(),
    ])
    .expect("relay params");
    leaf.distinguished_name.push(DnType::CommonName, hostname);
    let cert = leaf.signed_by(&key, &issuer).expect("relay cert");
    (
        ca_cert.pem(),
        vec![cert.der().clone()],
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    )
}

impl FakeRelay {
    /// Start a relay accepting the tokens of `accounts`.
    pub fn start(opts: RelayOptions, accounts: Vec<Account>) -> FakeRelay {
        assert!(
            opts.bind.ip().is_loopback(),
            "the fake relay binds loopback addresses only"
        );
        let (tls, ca_pem) = if opts.starttls {
            let _ = rustls::crypto::ring::default_provider().install_default();
            let (ca, chain, key) = relay_pki(&opts.hostname);
            let config = ServerConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(chain, key)
            .expect("relay certificate");
            (Some(Arc::new(config)), Some(ca))
        } else {
            (None, None)
        };
        let listener = TcpListener::bind(opts.bind).expect("bind the fake relay");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            accounts,
            opts,
            tls,
            messages: Mutex::new(Vec::new()),
            auths: Mutex::new(Vec::new()),
            changed: Condvar::new(),
            connections: AtomicUsize::new(0),
            shutdown: AtomicBool::new(false),
        });
        let s = shared.clone();
        let accept = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.shutdown.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                s.connections.fetch_add(1, Ordering::SeqCst);
                let s = s.clone();
                std::thread::spawn(move || {
                    let peer = stream
                        .peer_addr()
                        .map(|a| a.to_string())
                        .unwrap_or_default();
                    s.event(&format!("connection from {peer}"));
                    let mut session = Session::new(stream, &s);
                    if let Err(e) = session.run() {
                        s.event(&format!("connection from {peer} ended: {e}"));
                    }
                });
            }
        });
        FakeRelay {
            shared,
            addr,
            ca_pem,
            accept: Some(accept),
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The CA that signed the STARTTLS certificate (PEM), if STARTTLS is on.
    pub fn ca_pem(&self) -> Option<&str> {
        self.ca_pem.as_deref()
    }

    /// Write [`FakeRelay::ca_pem`] to `path`.
    pub fn write_ca(&self, path: &Path) -> io::Result<()> {
        std::fs::write(
            path,
            self.ca_pem
                .as_deref()
                .ok_or_else(|| io::Error::other("STARTTLS is off: no CA"))?,
        )
    }

    /// Messages accepted so far, oldest first.
    pub fn messages(&self) -> Vec<Message> {
        self.shared.messages.lock().unwrap().clone()
    }

    /// AUTH commands so far, oldest first.
    pub fn auth_attempts(&self) -> Vec<AuthAttempt> {
        self.shared.auths.lock().unwrap().clone()
    }

    /// TCP connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Wait until at least `n` messages arrived; `Err` with what did arrive
    /// (and the AUTH attempts) after `timeout`.
    pub fn wait_for_messages(&self, n: usize, timeout: Duration) -> Result<Vec<Message>, String> {
        self.wait(timeout, |s| s.messages.lock().unwrap().len() >= n)
            .map(|()| self.messages())
            .map_err(|()| {
                format!(
                    "the relay got {} of {n} messages within {timeout:?}; auth attempts: {:?}",
                    self.messages().len(),
                    self.auth_attempts()
                )
            })
    }

    /// Wait until at least `n` AUTH commands completed.
    pub fn wait_for_auth_attempts(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<Vec<AuthAttempt>, String> {
        self.wait(timeout, |s| s.auths.lock().unwrap().len() >= n)
            .map(|()| self.auth_attempts())
            .map_err(|()| {
                format!(
                    "the relay saw {} of {n} AUTH commands within {timeout:?}",
                    self.auth_attempts().len()
                )
            })
    }

    fn wait(&self, timeout: Duration, done: impl Fn(&Shared) -> bool) -> Result<(), ()> {
        let end = Instant::now() + timeout;
        let mut guard = self.shared.messages.lock().unwrap();
        loop {
            drop(guard);
            if done(&self.shared) {
                return Ok(());
            }
            guard = self.shared.messages.lock().unwrap();
            let now = Instant::now();
            if now >= end {
                return Err(());
            }
            // Woken on every message and AUTH; the timeout covers a race
            // between the check above and this wait.
            guard = self
                .shared
                .changed
                .wait_timeout(guard, (end - now).min(Duration::from_millis(200)))
                .unwrap()
                .0;
        }
    }
}

impl Drop for FakeRelay {
    fn drop(&mut self) {
        self.shared.shutdown.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(h) = self.accept.take() {
            let _ = h.join();
        }
    }
}

impl Shared {
    fn event(&self, line: &str) {
        if let Some(sink) = &self.opts.events {
            (sink.0)(line);
        }
    }

    fn record_auth(&self, a: AuthAttempt) {
        let what = match &a.outcome {
            AuthOutcome::Accepted(i) => format!("accepted (account {i})"),
            AuthOutcome::Rejected => "rejected: 401 challenge, then 535".into(),
            AuthOutcome::Malformed => "malformed".into(),
            AuthOutcome::Aborted => "aborted by the client".into(),
            AuthOutcome::Refused => "refused (mechanism not accepted)".into(),
        };
        self.event(&format!(
            "AUTH {} user={} token {}{}: {what}",
            a.mechanism,
            a.user.as_deref().unwrap_or("-"),
            a.token_fingerprint.as_deref().unwrap_or("-"),
            if a.tls { " over TLS" } else { "" },
        ));
        self.auths.lock().unwrap().push(a);
        let _guard = self.messages.lock().unwrap();
        self.changed.notify_all();
    }

    fn record_message(&self, m: Message) {
        self.event(&format!(
            "message from <{}> to {} accepted for {} via {} (subject {:?})",
            m.mail_from,
            m.rcpt_to
                .iter()
                .map(|r| format!("<{r}>"))
                .collect::<Vec<_>>()
                .join(","),
            m.user,
            m.mechanism,
            m.subject().unwrap_or("")
        ));
        if let Some(p) = &self.opts.messages_file {
            append_line(p, &m.to_json());
        }
        self.messages.lock().unwrap().push(m);
        self.changed.notify_all();
    }

    /// Which account accepts `token` for `user`.
    fn check(&self, user: &str, token: &str) -> Option<usize> {
        self.accounts.iter().position(|a| {
            !matches!(a.user.as_deref(), Some(u) if u != user)
                && a.provider.is_valid_access_token(token)
        })
    }
}

/// Append `line` and a newline to the file at `path` (created if needed).
pub fn append_line(path: &Path, line: &str) {
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path);
    if let Ok(mut f) = f {
        let _ = writeln!(f, "{line}");
    }
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
    Gone,
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
            Stream::Gone => Ok(0),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
            Stream::Gone => Err(io::ErrorKind::BrokenPipe.into()),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
            Stream::Gone => Ok(()),
        }
    }
}

/// Longest command line accepted (RFC 5321 allows 512; AUTH lines with a
/// token are longer, as on Gmail).
const MAX_LINE: usize = 16 * 1024;
/// Largest message accepted.
const MAX_DATA: usize = 4 * 1024 * 1024;

struct Authed {
    user: String,
    mechanism: String,
    account: usize,
    token_fingerprint: String,
}

struct Session<'a> {
    s: &'a Shared,
    stream: Stream,
    buf: Vec<u8>,
    tls: bool,
    ehlo: bool,
    authed: Option<Authed>,
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
}

impl<'a> Session<'a> {
    fn new(tcp: TcpStream, s: &'a Shared) -> Session<'a> {
        let _ = tcp.set_read_timeout(Some(Duration::from_secs(120)));
        let _ = tcp.set_write_timeout(Some(Duration::from_secs(30)));
        Session {
            s,
            stream: Stream::Plain(tcp),
            buf: Vec::new(),
            tls: false,
            ehlo: false,
            authed: None,
            mail_from: None,
            rcpt_to: Vec::new(),
        }
    }

    fn reply(&mut self, text: &str) -> io::Result<()> {
        self.stream.write_all(text.as_bytes())?;
        self.stream.write_all(b"\r\n")?;
        self.stream.flush()
    }

    /// One line without its CRLF; `None` at EOF.
    fn line(&mut self, max: usize) -> io::Result<Option<Vec<u8>>> {
        loop {
            if let Some(i) = self.buf.iter().position(|&b| b == b'\n') {
                let mut l: Vec<u8> = self.buf.drain(..=i).collect();
                l.pop();
                if l.last() == Some(&b'\r') {
                    l.pop();
                }
                return Ok(Some(l));
            }
            if self.buf.len() > max {
                return Err(io::Error::other("line too long"));
            }
            let mut chunk = [0u8; 4096];
            let n = self.stream.read(&mut chunk)?;
            if n == 0 {
                return Ok(None);
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn advertised_auth(&self) -> Option<String> {
        if self.s.tls.is_some() && !self.tls {
            return None;
        }
        let mut m = String::from("XOAUTH2 OAUTHBEARER");
        if self.s.opts.login {
            m.push_str(" LOGIN");
        }
        Some(m)
    }

    fn run(&mut self) -> io::Result<()> {
        let greeting = format!("220 {} ESMTP fake-relay - gsmtp", self.s.opts.hostname);
        self.reply(&greeting)?;
        while let Some(raw) = self.line(MAX_LINE)? {
            let line = String::from_utf8_lossy(&raw).into_owned();
            let (verb, arg) = match line.split_once(' ') {
                Some((v, a)) => (v.to_ascii_uppercase(), a.trim().to_string()),
                None => (line.trim().to_ascii_uppercase(), String::new()),
            };
            match verb.as_str() {
                "EHLO" | "HELO" => self.ehlo(&verb)?,
                "STARTTLS" => {
                    if !self.starttls()? {
                        return Ok(());
                    }
                }
                "AUTH" => self.auth(&arg)?,
                "MAIL" => self.mail(&arg)?,
                "RCPT" => self.rcpt(&arg)?,
                "DATA" => self.data()?,
                "RSET" => {
                    self.mail_from = None;
                    self.rcpt_to.clear();
                    self.reply("250 2.1.5 Flushed")?;
                }
                "NOOP" => self.reply("250 2.0.0 OK")?,
                "QUIT" => {
                    self.reply("221 2.0.0 closing connection - gsmtp")?;
                    return Ok(());
                }
                _ => self.reply("502 5.5.1 Unrecognized command. - gsmtp")?,
            }
        }
        Ok(())
    }

    fn ehlo(&mut self, verb: &str) -> io::Result<()> {
        self.ehlo = true;
        self.mail_from = None;
        self.rcpt_to.clear();
        let host = self.s.opts.hostname.clone();
        if verb == "HELO" {
            return self.reply(&format!("250 {host} at your service"));
        }
        let mut lines = vec![format!("{host} at your service"), "SIZE 35882577".into()];
        lines.push("8BITMIME".into());
        if self.s.tls.is_some() && !self.tls {
            lines.push("STARTTLS".into());
        }
        if let Some(m) = self.advertised_auth() {
            lines.push(format!("AUTH {m}"));
        }
        lines.push("ENHANCEDSTATUSCODES".into());
        lines.push("PIPELINING".into());
        let n = lines.len();
        let text: Vec<String> = lines
            .iter()
            .enumerate()
            .map(|(i, l)| format!("250{}{l}", if i + 1 == n { ' ' } else { '-' }))
            .collect();
        self.reply(&text.join("\r\n"))
    }

    /// Returns false when the connection must close.
    fn starttls(&mut self) -> io::Result<bool> {
        let Some(config) = self.s.tls.clone().filter(|_| !self.tls) else {
            self.reply("502 5.5.1 Unrecognized command. - gsmtp")?;
            return Ok(true);
        };
        if !self.buf.is_empty() {
            // Plaintext pipelined after STARTTLS: an injection attempt.
            self.reply("554 5.5.1 Error: commands pipelined after STARTTLS")?;
            return Ok(false);
        }
        self.reply("220 2.0.0 Ready to start TLS")?;
        let Stream::Plain(tcp) = std::mem::replace(&mut self.stream, Stream::Gone) else {
            return Ok(false);
        };
        let conn = ServerConnection::new(config).map_err(io::Error::other)?;
        self.stream = Stream::Tls(Box::new(StreamOwned::new(conn, tcp)));
        self.tls = true;
        self.ehlo = false;
        self.authed = None;
        self.mail_from = None;
        self.rcpt_to.clear();
        self.s.event("STARTTLS: TLS handshake started");
        Ok(true)
    }

    /// Read the client's next SASL response (base64 line), decoded.
    /// `Ok(None)`: the client cancelled (`*`) or sent bad base64, already
    /// answered.
    fn sasl_response(&mut self) -> io::Result<Option<Vec<u8>>> {
        let Some(l) = self.line(MAX_LINE)? else {
            return Err(io::ErrorKind::UnexpectedEof.into());
        };
        if l == b"*" {
            self.reply("501 5.7.0 Authentication aborted")?;
            return Ok(None);
        }
        match B64.decode(&l) {
            Ok(d) => Ok(Some(d)),
            Err(_) => {
                self.reply("501 5.5.2 Cannot Decode response - gsmtp")?;
                Ok(None)
            }
        }
    }

    fn auth(&mut self, arg: &str) -> io::Result<()> {
        if !self.ehlo {
            return self.reply("503 5.5.1 EHLO/HELO first. - gsmtp");
        }
        let Some(offered) = self.advertised_auth() else {
            return self.reply("530 5.7.0 Must issue a STARTTLS command first. - gsmtp");
        };
        if self.authed.is_some() {
            return self.reply("503 5.5.1 Already authenticated. - gsmtp");
        }
        let (mech, ir) = match arg.split_once(' ') {
            Some((m, ir)) => (m.to_ascii_uppercase(), Some(ir.trim().to_string())),
            None => (arg.to_ascii_uppercase(), None),
        };
        if !offered.split(' ').any(|m| m == mech) {
            return self.reply("504 5.7.4 Unrecognized authentication type. - gsmtp");
        }
        let mut attempt = AuthAttempt {
            mechanism: mech.clone(),
            user: None,
            token_fingerprint: None,
            tls: self.tls,
            initial_response: ir.is_some(),
            error_ack: None,
            outcome: AuthOutcome::Malformed,
        };
        if mech == "LOGIN" {
            return self.login(ir, attempt);
        }
        // The client's first response: with the command (SASL-IR, "=" for
        // empty) or after an empty challenge.
        let first = match ir.as_deref() {
            Some("=") => Some(Vec::new()),
            Some(b64) => match B64.decode(b64) {
                Ok(d) => Some(d),
                Err(_) => {
                    self.s.record_auth(attempt);
                    return self.reply("501 5.5.2 Cannot Decode response - gsmtp");
                }
            },
            None => {
                self.reply("334 ")?;
                match self.sasl_response()? {
                    Some(d) => Some(d),
                    None => {
                        attempt.outcome = AuthOutcome::Aborted;
                        self.s.record_auth(attempt);
                        return Ok(());
                    }
                }
            }
        };
        let first = first.unwrap_or_default();
        let parsed = if mech == "XOAUTH2" {
            parse_xoauth2(&first)
        } else {
            parse_oauthbearer(&first)
        };
        let Some((user, token)) = parsed else {
            self.s.record_auth(attempt);
            return self.reply("501 5.5.2 Cannot Decode response - gsmtp");
        };
        attempt.user = Some(user.clone());
        attempt.token_fingerprint = Some(common::secret::fingerprint(token.as_bytes()));
        if let Some(account) = self.s.check(&user, &token) {
            attempt.outcome = AuthOutcome::Accepted(account);
            self.authed = Some(Authed {
                user,
                mechanism: mech,
                account,
                token_fingerprint: attempt.token_fingerprint.clone().unwrap_or_default(),
            });
            self.s.record_auth(attempt);
            return self.reply("235 2.7.0 Accepted");
        }
        let challenge = if mech == "XOAUTH2" {
            GMAIL_XOAUTH2_ERROR
        } else {
            OAUTHBEARER_ERROR
        };
        self.reply(&format!("334 {}", B64.encode(challenge)))?;
        let ack = self.line(MAX_LINE)?;
        attempt.error_ack = ack.map(|l| {
            if l == b"*" {
                b"*".to_vec()
            } else {
                B64.decode(&l).unwrap_or_else(|_| b"<bad base64>".to_vec())
            }
        });
        attempt.outcome = AuthOutcome::Rejected;
        self.s.record_auth(attempt);
        self.reply(GMAIL_535)
    }

    fn login(&mut self, ir: Option<String>, mut attempt: AuthAttempt) -> io::Result<()> {
        let user = match ir {
            Some(b64) => B64.decode(b64).ok(),
            None => {
                self.reply("334 VXNlcm5hbWU6")?;
                self.sasl_response()?
            }
        };
        let Some(user) = user else {
            attempt.outcome = AuthOutcome::Aborted;
            self.s.record_auth(attempt);
            return Ok(());
        };
        attempt.user = Some(String::from_utf8_lossy(&user).into_owned());
        self.reply("334 UGFzc3dvcmQ6")?;
        // The password is read and dropped, never recorded.
        if self.sasl_response()?.is_none() {
            attempt.outcome = AuthOutcome::Aborted;
            self.s.record_auth(attempt);
            return Ok(());
        }
        attempt.outcome = AuthOutcome::Refused;
        self.s.record_auth(attempt);
        self.reply(GMAIL_535)
    }

    fn mail(&mut self, arg: &str) -> io::Result<()> {
        if !self.ehlo {
            return self.reply("503 5.5.1 EHLO/HELO first. - gsmtp");
        }
        if self.authed.is_none() {
            return self.reply(
                "530-5.7.0 Authentication Required. For more information, go to\r\n530 5.7.0  https://support.google.com/mail/?p=WantAuthError - gsmtp",
            );
        }
        let Some(addr) = angle_addr(arg, "FROM:") else {
            return self.reply("555 5.5.2 Syntax error. - gsmtp");
        };
        self.mail_from = Some(addr);
        self.rcpt_to.clear();
        self.reply("250 2.1.0 OK - gsmtp")
    }

    fn rcpt(&mut self, arg: &str) -> io::Result<()> {
        if self.mail_from.is_none() {
            return self.reply("503 5.5.1 bad sequence of commands - gsmtp");
        }
        let Some(addr) = angle_addr(arg, "TO:") else {
            return self.reply("555 5.5.2 Syntax error. - gsmtp");
        };
        self.rcpt_to.push(addr);
        self.reply("250 2.1.5 OK - gsmtp")
    }

    fn data(&mut self) -> io::Result<()> {
        if self.mail_from.is_none() || self.rcpt_to.is_empty() {
            return self.reply("503 5.5.1 RCPT first. - gsmtp");
        }
        self.reply("354 Go ahead - gsmtp")?;
        let mut data = String::new();
        loop {
            let Some(l) = self.line(MAX_LINE)? else {
                return Err(io::ErrorKind::UnexpectedEof.into());
            };
            if l == b"." {
                break;
            }
            let l = l.strip_prefix(b".").unwrap_or(&l);
            data.push_str(&String::from_utf8_lossy(l));
            data.push_str("\r\n");
            if data.len() > MAX_DATA {
                return self.reply("552 5.3.4 Message too big - gsmtp");
            }
        }
        let a = self.authed.as_ref().expect("MAIL requires AUTH");
        let m = Message {
            user: a.user.clone(),
            mechanism: a.mechanism.clone(),
            account: a.account,
            token_fingerprint: a.token_fingerprint.clone(),
            tls: self.tls,
            mail_from: self.mail_from.take().unwrap_or_default(),
            rcpt_to: std::mem::take(&mut self.rcpt_to),
            data,
        };
        self.s.record_message(m);
        self.reply("250 2.0.0 OK fake-relay - gsmtp")
    }
}

/// `FROM:<addr> PARAMS` → `addr`.
fn angle_addr(arg: &str, prefix: &str) -> Option<String> {
    let rest = arg
        .get(..prefix.len())
        .filter(|p| p.eq_ignore_ascii_case(prefix))
        .map(|_| arg[prefix.len()..].trim_start())?;
    let rest = rest.strip_prefix('<')?;
    let end = rest.find('>')?;
    Some(rest[..end].to_string())
}

/// `user=<user>\x01auth=Bearer <token>\x01\x01` → (user, token).
pub fn parse_xoauth2(data: &[u8]) -> Option<(String, String)> {
    let s = std::str::from_utf8(data).ok()?;
    let body = s.strip_suffix("\x01\x01")?;
    let mut user = None;
    let mut token = None;
    for field in body.split('\x01') {
        if let Some(u) = field.strip_prefix("user=") {
            user = Some(u.to_string());
        } else if let Some(a) = field.strip_prefix("auth=") {
            token = Some(bearer(a)?);
        } else {
            return None;
        }
    }
    Some((user?, token?))
}

/// RFC 7628: `n,a=<user>,\x01host=..\x01port=..\x01auth=Bearer <token>\x01\x01`
/// → (user, token).
pub fn parse_oauthbearer(data: &[u8]) -> Option<(String, String)> {
    let s = std::str::from_utf8(data).ok()?;
    let (gs2, rest) = s.split_once('\x01')?;
    let mut parts = gs2.splitn(3, ',');
    let cb = parts.next()?;
    if cb != "n" && cb != "y" {
        return None;
    }
    let authzid = parts.next()?;
    if !parts.next()?.is_empty() {
        return None;
    }
    let user = authzid
        .strip_prefix("a=")?
        .replace("=2C", ",")
        .replace("=3D", "=");
    let body = rest.strip_suffix("\x01\x01")?;
    let mut token = None;
    for kv in body.split('\x01') {
        let (k, v) = kv.split_once('=')?;
        if k == "auth" {
            token = Some(bearer(v)?);
        }
    }
    Some((user, token?))
}

fn bearer(v: &str) -> Option<String> {
    let (scheme, token) = v.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_mechanisms() {
        assert_eq!(
            parse_xoauth2(b"user=a@b.c\x01auth=Bearer ya29.x\x01\x01"),
            Some(("a@b.c".into(), "ya29.x".into()))
        );
        assert_eq!(parse_xoauth2(b"user=a\x01auth=Bearer ya29.x\x01"), None);
        assert_eq!(parse_xoauth2(b"user=a\x01auth=Basic x\x01\x01"), None);
        assert_eq!(
            parse_oauthbearer(b"n,a=a=2Cb=3D@c,\x01host=h\x01port=587\x01auth=Bearer t0k\x01\x01"),
            Some(("a,b=@c".into(), "t0k".into()))
        );
        assert_eq!(parse_oauthbearer(b"n,a=a,\x01auth=Bearer t\x01"), None);
        assert_eq!(parse_oauthbearer(b"x,a=a,\x01auth=Bearer t\x01\x01"), None);
    }

    #[test]
    fn addresses() {
        assert_eq!(
            angle_addr("FROM:<a@b> BODY=8BITMIME", "FROM:"),
            Some("a@b".into())
        );
        assert_eq!(angle_addr("to: <x@y>", "TO:"), Some("x@y".into()));
        assert_eq!(angle_addr("FROM:<>", "FROM:"), Some(String::new()));
        assert_eq!(angle_addr("FROM:a@b", "FROM:"), None);
    }

    #[test]
    fn gmail_challenge_is_the_documented_json() {
        assert_eq!(
            B64.encode(GMAIL_XOAUTH2_ERROR),
            "eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiQmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ=="
        );
    }
}
