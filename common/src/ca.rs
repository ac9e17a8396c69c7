//! Reading the CA certificates a config (or, when allowed, a token file)
//! names: the one implementation the plugin (for the handoff) and the
//! helper use.
//!
//! * `ca_bundle_file`: a PEM file, read as it is (at most [`MAX_CA_BYTES`],
//!   no symlink, regular file).
//! * `ca_certs_dir`: OpenSSL's CApath meaning. Only files named by subject
//!   hash (`XXXXXXXX.N`, as `openssl rehash` / `c_rehash` create them) are
//!   read, and of their certificates only CA certificates (basicConstraints
//!   CA:TRUE) are kept: a self-signed server certificate that happens to
//!   sit there (Debian's `ssl-cert-snakeoil.pem`, whose key group
//!   `ssl-cert` can read) never becomes a root. Hash names may be symlinks
//!   (that is how `c_rehash` lays out `/etc/ssl/certs`); what they point to
//!   must be a regular file.

use crate::error::{FileKind, Problem};
use std::path::Path;

/// Largest CA material read (one file, or one directory in total).
pub const MAX_CA_BYTES: u64 = 2 * 1024 * 1024;

/// PEM text of trusted certificates, and why anything was left out.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CaPem {
    pub pem: String,
    /// One line per file or certificate skipped (for logs and `--check`).
    pub skipped: Vec<String>,
}

/// `XXXXXXXX.N`: eight lowercase hex digits, a dot, a decimal counter.
pub fn is_hash_name(name: &str) -> bool {
    let Some((hash, n)) = name.split_once('.') else {
        return false;
    };
    hash.len() == 8
        && hash
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && !n.is_empty()
        && n.len() <= 4
        && n.bytes().all(|b| b.is_ascii_digit())
}

/// Whether DER `cert` is a CA certificate: basicConstraints present,
/// critical or not, with cA TRUE. (x509-parser: a maintained DER/X.509
/// parser; rustls/webpki take any certificate given as a root as an anchor
/// without looking at its extensions.)
pub fn is_ca_cert(der: &[u8]) -> Result<bool, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("not a parsable X.509 certificate ({e})"))?;
    match cert.basic_constraints() {
        Ok(Some(bc)) => Ok(bc.value.ca),
        Ok(None) => Ok(false),
        Err(e) => Err(format!("bad basicConstraints ({e})")),
    }
}

/// The CA certificates among the PEM blocks of `text` (their PEM text as
/// written); `from` names the source in the notes about the rest.
pub fn ca_certs_only(text: &str, from: &str, out: &mut CaPem) {
    const BEGIN: &str = "-----BEGIN CERTIFICATE-----";
    const END: &str = "-----END CERTIFICATE-----";
    let mut rest = text;
    let mut n = 0;
    while let Some(b) = rest.find(BEGIN) {
        let Some(e) = rest[b..].find(END) else { break };
        let block = &rest[b..b + e + END.len()];
        rest = &rest[b + e + END.len()..];
        n += 1;
        let verdict = x509_parser::pem::parse_x509_pem(block.as_bytes())
            .map_err(|e| format!("bad PEM ({e})"))
            .and_then(|(_, pem)| is_ca_cert(&pem.contents));
        match verdict {
            Ok(true) => {
                out.pem.push_str(block);
                out.pem.push('\n');
            }
            Ok(false) => out.skipped.push(format!(
                "{from}: certificate {n} is not a CA certificate (no basicConstraints CA:TRUE); not trusted"
            )),
            Err(why) => out.skipped.push(format!("{from}: certificate {n}: {why}; not trusted")),
        }
    }
    if n == 0 {
        out.skipped.push(format!("{from}: no PEM certificate"));
    }
}

/// Read `ca_bundle_file`: its PEM text, untouched.
pub fn read_bundle(path: &Path) -> Result<String, String> {
    let bytes = crate::fsread::read_capped(path, FileKind::Config, MAX_CA_BYTES)
        .map_err(|e| e.problem.to_string())?;
    String::from_utf8(bytes).map_err(|_| "is not PEM text".into())
}

/// Read `ca_certs_dir` with CApath meaning (see the module docs). Fails only
/// when the directory itself cannot be listed; files left out are noted.
pub fn read_dir(dir: &Path) -> Result<CaPem, String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot be listed: {e}"))?
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut out = CaPem::default();
    let mut total = 0u64;
    for name in names {
        if !is_hash_name(&name) {
            continue; // not a CApath entry: OpenSSL would never look at it
        }
        let p = dir.join(&name);
        let from = p.display().to_string();
        // Follow the c_rehash symlink to its file, then open that without
        // following anything further.
        let real = match std::fs::canonicalize(&p) {
            Ok(r) => r,
            Err(e) => {
                out.skipped.push(format!("{from}: {e}"));
                continue;
            }
        };
        match crate::fsread::read_capped(&real, FileKind::Config, MAX_CA_BYTES - total) {
            Ok(bytes) => {
                total += bytes.len() as u64;
                ca_certs_only(&String::from_utf8_lossy(&bytes), &from, &mut out);
            }
            // The cap is the directory's total, not this file's size.
            Err(e) if matches!(e.problem, Problem::TooLarge(_)) => out.skipped.push(format!(
                "{from}: the directory's CA files together are over {} MiB; not trusted",
                MAX_CA_BYTES >> 20
            )),
            Err(e) => out.skipped.push(format!("{from}: {}", e.problem)),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_names() {
        for ok in ["0badc0de.0", "5ad8a5d6.12", "ffffffff.0"] {
            assert!(is_hash_name(ok), "{ok}");
        }
        for bad in [
            "ssl-cert-snakeoil.pem",
            "0BADC0DE.0",
            "0badc0de",
            "0badc0de.",
            "0badc0d.0",
            "0badc0de0.0",
            "0badc0de.0.pem",
            "0badc0de.r0",
            "README",
        ] {
            assert!(!is_hash_name(bad), "{bad}");
        }
    }

    #[test]
    fn garbage_is_noted_not_trusted() {
        let mut out = CaPem::default();
        ca_certs_only(
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
            "x",
            &mut out,
        );
        assert!(out.pem.is_empty());
        assert_eq!(out.skipped.len(), 1, "{out:?}");
        let mut out = CaPem::default();
        ca_certs_only("not pem", "y", &mut out);
        assert_eq!(out.skipped, ["y: no PEM certificate"]);
    }

    #[test]
    fn directory_cap_is_the_total() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        std::fs::write(d.join("00000000.0"), vec![b' '; 1536 << 10]).unwrap();
        std::fs::write(d.join("00000000.1"), vec![b' '; 1 << 20]).unwrap();
        let out = read_dir(d).unwrap();
        assert_eq!(out.skipped.len(), 2, "{out:?}");
        assert!(out.skipped[0].ends_with("00000000.0: no PEM certificate"));
        assert!(
            out.skipped[1].ends_with("files together are over 2 MiB; not trusted"),
            "{out:?}"
        );
    }
}
