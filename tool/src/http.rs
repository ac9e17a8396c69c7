//! HTTPS POSTs of form bodies to the provider (ureq + rustls, built-in
//! webpki roots, or the CAs of `--ca-bundle-file`).

use crate::error::ToolError;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig};
use zeroize::Zeroizing;

/// Largest provider answer we read; real ones are a few KiB.
const MAX_BODY: u64 = 256 * 1024;
const TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug)]
pub struct Http {
    agent: ureq::Agent,
}

/// An HTTP answer: status and body (zeroized on drop, it holds tokens).
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub body: Zeroizing<Vec<u8>>,
}

impl Http {
    pub fn new(ca_bundle_file: Option<&Path>) -> Result<Http, ToolError> {
        let roots = match ca_bundle_file {
            None => RootCerts::WebPki,
            Some(p) => RootCerts::Specific(Arc::new(load_pem_certs(p)?)),
        };
        let tls = TlsConfig::builder().root_certs(roots).build();
        let agent = ureq::Agent::config_builder()
            .tls_config(tls)
            .http_status_as_error(false)
            .timeout_global(Some(TIMEOUT))
            .https_only(true)
            .max_redirects(0)
            .user_agent(concat!("sasl-xoauth2-tool/", env!("CARGO_PKG_VERSION")))
            .build()
            .into();
        Ok(Http { agent })
    }

    /// POST `body` (application/x-www-form-urlencoded) to `url`.
    pub fn post_form(&self, url: &str, body: &[u8]) -> Result<Answer, ToolError> {
        let net = |e: ureq::Error| ToolError::Network {
            url: url.to_string(),
            reason: e.to_string(),
        };
        let mut resp = self
            .agent
            .post(url)
            .header("Accept", "application/json")
            .content_type("application/x-www-form-urlencoded")
            .send(body)
            .map_err(net)?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(MAX_BODY)
            .read_to_vec()
            .map_err(net)?;
        Ok(Answer {
            status,
            body: Zeroizing::new(body),
        })
    }
}

fn load_pem_certs(path: &Path) -> Result<Vec<Certificate<'static>>, ToolError> {
    let bad = |problem: String| {
        ToolError::Usage(format!("--ca-bundle-file {}: {problem}", path.display()))
    };
    let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(&pem) {
        match item.map_err(|e| bad(e.to_string()))? {
            PemItem::Certificate(c) => certs.push(c),
            _ => continue,
        }
    }
    if certs.is_empty() {
        return Err(bad("no PEM certificate in the file".into()));
    }
    Ok(certs)
}
