//! The HTTPS transport: ureq + rustls (ring), one POST, no redirects, no
//! connection reuse, capped response, connect and total timeouts.
//!
//! Name resolution is split from the request: [`Route::resolve`] runs
//! before the sandbox closes (a static glibc resolves through /etc/hosts and
//! DNS), and the request then uses a resolver that only hands back those
//! addresses. So the locked-down phase needs no DNS files, no UDP socket and
//! no resolver thread (ureq's default resolver spawns one when a timeout is
//! set; ours never does, and nothing else here creates threads).

use crate::oauth::MAX_RESPONSE_SIZE;
use std::fmt;
use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;
use ureq::http::Uri;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig, TlsProvider};
use ureq::unversioned::resolver::{ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{DefaultConnector, NextTimeout};

/// Longest we wait for a TCP + TLS connection within the total budget.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The token endpoint, parsed and checked.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub url: String,
    pub host: String,
    pub port: u16,
}

/// A token endpoint or proxy URL we refuse: what is wrong and, where there
/// is one, the fix. Displays as "what; fix".
///
/// A proxy error is always borrowed static text: a proxy URL may hold a
/// password, so its errors never repeat it. An endpoint is repeated only
/// when it has no `@`.
#[derive(Debug)]
pub struct UrlError {
    pub what: std::borrow::Cow<'static, str>,
    pub fix: Option<&'static str>,
}

impl std::fmt::Display for UrlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.fix {
            Some(fix) => write!(f, "{}; {fix}", self.what),
            None => f.write_str(&self.what),
        }
    }
}

impl Endpoint {
    /// Accept only `https://host[:port]/path` URLs without credentials.
    pub fn parse(url: &str) -> Result<Endpoint, UrlError> {
        // The URL is repeated only when it cannot hold a password.
        let shown = if url.contains('@') {
            String::new()
        } else {
            format!(" {url:?}")
        };
        let bad = |why: &str, fix| UrlError {
            what: format!("token_endpoint{shown} {why}").into(),
            fix,
        };
        const USE_HTTPS: Option<&str> = Some("use https://host/path");
        let uri: Uri = url
            .parse()
            .map_err(|_| bad("is not a valid URL", USE_HTTPS))?;
        match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("https") => {}
            _ => return Err(bad("must start with https://", None)),
        }
        let authority = uri
            .authority()
            .ok_or_else(|| bad("has no host", USE_HTTPS))?;
        if authority.as_str().contains('@') {
            return Err(bad(
                "must not contain user:password@",
                Some("put client credentials in client_id/client_secret"),
            ));
        }
        let host = strip_brackets(authority.host());
        if host.is_empty() {
            return Err(bad("has no host", USE_HTTPS));
        }
        Ok(Endpoint {
            url: url.to_string(),
            host: host.to_string(),
            port: authority.port_u16().unwrap_or(443),
        })
    }

    /// `host` or `host:port` for messages (never the path or query).
    pub fn display_host(&self) -> String {
        if self.port == 443 {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

fn strip_brackets(host: &str) -> &str {
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// An HTTP(S) proxy that we reach with `CONNECT`.
#[derive(Debug, Clone)]
pub struct ProxySpec {
    proxy: ureq::Proxy,
    pub host: String,
    pub port: u16,
}

impl ProxySpec {
    pub fn parse(spec: &str) -> Result<ProxySpec, UrlError> {
        let proxy = ureq::Proxy::new(spec).map_err(|_| UrlError {
            what: "proxy is not a valid URL".into(),
            fix: Some("use http://host:port (optionally http://user:password@host:port)"),
        })?;
        match proxy.protocol() {
            ureq::ProxyProtocol::Http | ureq::ProxyProtocol::Https => {}
            _ => return Err(UrlError {
                what: "proxy: only http:// and https:// (CONNECT) proxies are supported, not SOCKS"
                    .into(),
                fix: None,
            }),
        }
        Ok(ProxySpec {
            host: strip_brackets(proxy.host()).to_string(),
            port: proxy.port(),
            proxy,
        })
    }
}

/// Where the TCP connection goes: the endpoint, or the proxy if one is set.
#[derive(Debug, Clone)]
pub struct Route {
    pub endpoint: Endpoint,
    pub proxy: Option<ProxySpec>,
}

impl Route {
    pub fn connect_host(&self) -> (&str, u16) {
        match &self.proxy {
            Some(p) => (&p.host, p.port),
            None => (&self.endpoint.host, self.endpoint.port),
        }
    }

    /// Resolve the host we connect to (the proxy's when there is one; the
    /// proxy resolves the endpoint's name itself). IP literals need no
    /// lookup at all.
    pub fn resolve(&self) -> io::Result<Resolved> {
        self.resolve_within(Duration::MAX)
    }

    /// [`Route::resolve`], giving up after `limit`: getaddrinfo has no
    /// timeout of its own (resolv.conf's can add up to minutes), so a
    /// lookup runs on a short-lived thread. On success that thread has
    /// ended and is joined, so lock-down still finds one thread; after a
    /// timeout the helper fails and exits.
    pub fn resolve_within(&self, limit: Duration) -> io::Result<Resolved> {
        let (host, port) = self.connect_host();
        let addrs = if host.parse::<std::net::IpAddr>().is_ok() || limit == Duration::MAX {
            (host, port).to_socket_addrs()?.take(16).collect()
        } else {
            let (tx, rx) = std::sync::mpsc::channel();
            let name = host.to_string();
            let lookup = std::thread::Builder::new()
                .name("resolve".into())
                .spawn(move || {
                    let r = (name.as_str(), port)
                        .to_socket_addrs()
                        .map(|a| a.take(16).collect::<Vec<SocketAddr>>());
                    let _ = tx.send(r);
                })?;
            match rx.recv_timeout(limit) {
                Ok(r) => {
                    let _ = lookup.join();
                    r?
                }
                Err(_) => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("no answer within {} ms", limit.as_millis()),
                    ))
                }
            }
        };
        let addrs: Vec<SocketAddr> = addrs;
        if addrs.is_empty() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!("{host} has no address"),
            ));
        }
        Ok(Resolved {
            host: host.to_ascii_lowercase(),
            addrs,
        })
    }
}

/// Addresses found for a host before the sandbox closed.
#[derive(Debug, Clone)]
pub struct Resolved {
    host: String,
    pub addrs: Vec<SocketAddr>,
}

impl Resolver for Resolved {
    fn resolve(
        &self,
        uri: &Uri,
        _config: &ureq::config::Config,
        _timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        let host = uri.host().map(strip_brackets).unwrap_or_default();
        if !host.eq_ignore_ascii_case(&self.host) {
            // Only the host resolved in advance is reachable: this is what
            // keeps a redirect or a confused proxy setting from making us
            // look anything up after the sandbox closed.
            return Err(ureq::Error::HostNotFound);
        }
        let mut out = self.empty();
        for a in &self.addrs {
            out.push(*a);
        }
        Ok(out)
    }
}

/// Which certificates we trust for the endpoint (or HTTPS proxy).
#[derive(Debug, Clone)]
pub enum Trust {
    /// The webpki-roots set compiled into the binary (Mozilla's roots).
    BuiltIn,
    /// Certificates from a PEM bundle; `source` says where from (messages).
    Custom {
        source: String,
        certs: Vec<Certificate<'static>>,
    },
}

impl Trust {
    /// Parse every certificate in PEM text. Other PEM items (keys) are
    /// ignored; no certificate at all is an error.
    pub fn from_pem(pem: &[u8], source: &str) -> Result<Trust, String> {
        let mut certs = Vec::new();
        for item in ureq::tls::parse_pem(pem) {
            match item {
                Ok(PemItem::Certificate(c)) => certs.push(c),
                Ok(_) => {}
                Err(_) => return Err(format!("{source}: cannot parse the PEM certificates")),
            }
        }
        if certs.is_empty() {
            return Err(format!("{source}: holds no PEM certificate"));
        }
        Ok(Trust::Custom {
            source: source.to_string(),
            certs,
        })
    }

    pub fn describe(&self) -> String {
        match self {
            Trust::BuiltIn => "built-in roots".into(),
            Trust::Custom { source, certs } => format!("{} CA(s) from {source}", certs.len()),
        }
    }

    fn root_certs(&self) -> RootCerts {
        match self {
            Trust::BuiltIn => RootCerts::WebPki,
            Trust::Custom { certs, .. } => RootCerts::Specific(Arc::new(certs.clone())),
        }
    }
}

/// What the endpoint answered: status and (capped) body.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

/// A failed exchange, before any HTTP status was received (or the body
/// could not be read).
#[derive(Debug)]
pub enum TransportError {
    /// The time budget ran out.
    Timeout,
    /// The server's certificate was not accepted, or TLS failed otherwise.
    Tls(String),
    /// The proxy refused or failed the CONNECT.
    Proxy(String),
    /// Connection refused, reset, unreachable, closed early...
    Network(String),
    /// The response body exceeded [`MAX_RESPONSE_SIZE`].
    TooLarge,
}

impl TransportError {
    /// Whether a second attempt might succeed.
    pub fn retryable(&self) -> bool {
        matches!(self, TransportError::Network(_) | TransportError::Proxy(_))
    }
}

impl fmt::Display for TransportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TransportError::Timeout => f.write_str("timed out"),
            TransportError::Tls(e) => write!(f, "TLS failed: {e}"),
            TransportError::Proxy(e) => write!(f, "proxy failed: {e}"),
            TransportError::Network(e) => f.write_str(e),
            TransportError::TooLarge => {
                write!(f, "response larger than {} KiB", MAX_RESPONSE_SIZE / 1024)
            }
        }
    }
}

fn map_error(e: ureq::Error) -> TransportError {
    use ureq::Error as E;
    match e {
        E::Timeout(_) => TransportError::Timeout,
        E::BodyExceedsLimit(_) => TransportError::TooLarge,
        E::Tls(m) => TransportError::Tls(m.to_string()),
        E::Rustls(e) => TransportError::Tls(e.to_string()),
        E::Pem(_) => TransportError::Tls("bad certificate data".into()),
        E::ConnectProxyFailed(m) => TransportError::Proxy(m),
        E::InvalidProxyUrl => TransportError::Proxy("invalid proxy URL".into()),
        E::Io(e) => match e.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => TransportError::Timeout,
            // rustls reports handshake and certificate failures as
            // InvalidData I/O errors wrapping its own error.
            io::ErrorKind::InvalidData => TransportError::Tls(e.to_string()),
            _ => TransportError::Network(e.to_string()),
        },
        E::HostNotFound => TransportError::Network("host not found".into()),
        E::ConnectionFailed => TransportError::Network("connection failed".into()),
        other => TransportError::Network(other.to_string()),
    }
}

/// One configured HTTPS client.
#[derive(Debug)]
pub struct Client {
    agent: ureq::Agent,
}

impl Client {
    pub fn new(route: &Route, resolved: Resolved, trust: &Trust) -> Client {
        let tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .root_certs(trust.root_certs())
            .build();
        let config = ureq::Agent::config_builder()
            .tls_config(tls)
            .proxy(route.proxy.as_ref().map(|p| p.proxy.clone()))
            .https_only(true)
            .max_redirects(0)
            .save_redirect_history(false)
            .http_status_as_error(false)
            .max_idle_connections(0)
            .max_idle_connections_per_host(0)
            .user_agent(concat!("sasl-xoauth2-refresh/", env!("CARGO_PKG_VERSION")))
            .accept("application/json")
            .build();
        Client {
            agent: ureq::Agent::with_parts(config, DefaultConnector::default(), resolved),
        }
    }

    /// POST a form body; at most `budget` for everything (connect, TLS,
    /// request, response).
    pub fn post_form(
        &self,
        url: &str,
        body: &[u8],
        budget: Duration,
    ) -> Result<Reply, TransportError> {
        if budget.is_zero() {
            return Err(TransportError::Timeout);
        }
        let mut resp = self
            .agent
            .post(url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .config()
            .timeout_global(Some(budget))
            .timeout_connect(Some(budget.min(CONNECT_TIMEOUT)))
            .build()
            .send(body)
            .map_err(map_error)?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_RESPONSE_SIZE)
            .read_to_vec()
            .map_err(map_error)?;
        Ok(Reply { status, body })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_urls() {
        let e =
            Endpoint::parse("https://login.microsoftonline.com/common/oauth2/v2.0/token").unwrap();
        assert_eq!(
            (e.host.as_str(), e.port),
            ("login.microsoftonline.com", 443)
        );
        assert_eq!(e.display_host(), "login.microsoftonline.com");
        let e = Endpoint::parse("https://127.0.0.1:8443/token").unwrap();
        assert_eq!(e.display_host(), "127.0.0.1:8443");
        let e = Endpoint::parse("https://[::1]:9/t").unwrap();
        assert_eq!((e.host.as_str(), e.port), ("::1", 9));
        for bad in [
            "http://accounts.google.com/o/oauth2/token",
            "accounts.google.com/token",
            "https://user:pw@host/token",
            "https:///token",
            "not a url",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
        assert!(!Endpoint::parse("https://u:hunter2@h/t")
            .unwrap_err()
            .to_string()
            .contains("hunter2"));
        assert!(Endpoint::parse("ftp://h/t")
            .unwrap_err()
            .to_string()
            .contains("\"ftp://h/t\""));
    }

    #[test]
    fn proxies() {
        let p = ProxySpec::parse("http://proxy.example:3128").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("proxy.example", 3128));
        assert!(ProxySpec::parse("socks5://127.0.0.1:1080").is_err());
        for bad in ["http://user:hunter2pw@[::1", "socks5://user:hunter2pw@h:1"] {
            let e = ProxySpec::parse(bad).unwrap_err();
            assert!(matches!(e.what, std::borrow::Cow::Borrowed(_)), "{e}");
            assert!(!e.to_string().contains("hunter2pw"), "{e}");
        }
    }

    #[test]
    fn resolves_literals_without_lookup_and_only_that_host() {
        let route = Route {
            endpoint: Endpoint::parse("https://127.0.0.1:4443/token").unwrap(),
            proxy: None,
        };
        let r = route.resolve().unwrap();
        assert_eq!(r.addrs, vec!["127.0.0.1:4443".parse().unwrap()]);
        let cfg = ureq::config::Config::default();
        let t = NextTimeout::default();
        let ok: Uri = "https://127.0.0.1:4443/token".parse().unwrap();
        assert_eq!(r.resolve(&ok, &cfg, t).unwrap().len(), 1);
        let other: Uri = "https://evil.example/".parse().unwrap();
        assert!(r.resolve(&other, &cfg, t).is_err());
    }

    #[test]
    fn pem_trust() {
        assert!(Trust::from_pem(b"", "x").is_err());
        assert!(Trust::from_pem(b"-----BEGIN CERTIFICATE-----\nnot base64!\n", "x").is_err());
    }
}
