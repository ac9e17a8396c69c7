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

/// The certificates of `--ca-bundle-file`, read by the same rules as the
/// plugin's and the helper's `ca_bundle_file` (common::ca: no symlink, a
/// regular file, at most 2 MiB).
fn load_pem_certs(path: &Path) -> Result<Vec<Certificate<'static>>, ToolError> {
    let bad = |problem: String| {
        ToolError::Usage(format!("--ca-bundle-file {}: {problem}", path.display()))
    };
    let pem = common::ca::read_bundle(path).map_err(bad)?;
    let mut certs = Vec::new();
    for item in ureq::tls::parse_pem(pem.as_bytes()) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn err(p: &Path) -> String {
        match load_pem_certs(p) {
            Err(ToolError::Usage(m)) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn ca_bundle_file_is_read_by_the_strict_rules() {
        let d = tempfile::tempdir().unwrap();
        let pem = rcgen::generate_simple_self_signed(vec!["localhost".into()])
            .unwrap()
            .cert
            .pem();
        let file = d.path().join("ca.pem");
        std::fs::write(&file, &pem).unwrap();
        assert_eq!(load_pem_certs(&file).unwrap().len(), 1);

        // A symlink to it is refused, not followed.
        let link = d.path().join("link.pem");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        let m = err(&link);
        assert!(
            m.starts_with(&format!("--ca-bundle-file {}: ", link.display())),
            "{m}"
        );
        assert!(m.contains("symlink") || m.contains("symbolic link"), "{m}");

        // Not a regular file; too large; no certificate in it.
        assert!(err(d.path()).contains("--ca-bundle-file"));
        let big = d.path().join("big.pem");
        std::fs::write(&big, vec![b'a'; common::ca::MAX_CA_BYTES as usize + 1]).unwrap();
        let m = err(&big);
        assert!(m.contains("--ca-bundle-file"), "{m}");
        let none = d.path().join("none.pem");
        std::fs::write(&none, "no certificate here\n").unwrap();
        assert!(err(&none).ends_with("no PEM certificate in the file"));
    }
}
