//! What the plugin hands the refresh helper over a pipe.
//!
//! The plugin reads the config file and any CA certificates it names while
//! libsasl2 initialises it, before Postfix chroots; the helper, exec'd later
//! inside the chroot, gets them from this message instead of from files it
//! could no longer see.

use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// What the helper writes first on its stdout, once it has verified that it
/// is no longer dumpable (so no other process of its user can open its
/// `/proc/PID/fd/0` or ptrace it): only then does the plugin write the
/// handoff. The plugin strips it from the output it keeps.
pub const READY: &[u8] = b"sasl-xoauth2-refresh: non-dumpable, ready for the handoff\n";

/// Largest handoff message: the config plus a CA bundle.
pub const MAX_HANDOFF_SIZE: u64 = 4 * 1024 * 1024;

#[derive(Serialize, Deserialize)]
pub struct Handoff {
    /// Where the config was read from (for messages only).
    pub config_path: String,
    /// The config file's bytes, as read.
    pub config: String,
    /// PEM certificates from `ca_bundle_file` / `ca_certs_dir`, if the config
    /// names them; empty otherwise.
    #[serde(default)]
    pub ca_pem: String,
}

impl std::fmt::Debug for Handoff {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Handoff")
            .field("config_path", &self.config_path)
            .field("config_bytes", &self.config.len())
            .field("ca_pem_bytes", &self.ca_pem.len())
            .finish()
    }
}

impl Drop for Handoff {
    fn drop(&mut self) {
        use zeroize::Zeroize;
        self.config.zeroize();
    }
}

impl Handoff {
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        Zeroizing::new(serde_json::to_vec(self).expect("strings always serialize"))
    }

    /// The error names the position only: serde's own message may quote
    /// the input, which holds the config and its client secret.
    pub fn decode(bytes: &[u8]) -> Result<Handoff, String> {
        use serde_json::error::Category;
        serde_json::from_slice(bytes).map_err(|e| {
            let what = match e.classify() {
                Category::Syntax | Category::Eof | Category::Io => "is not valid JSON",
                Category::Data => {
                    "lacks config_path or config, or has a field that is not a string"
                }
            };
            format!(
                "invalid config handoff: {what} (line {}, column {})",
                e.line(),
                e.column()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roundtrip() {
        let h = Handoff {
            config_path: "/etc/sasl-xoauth2.conf".into(),
            config: r#"{"client_id":"x"}"#.into(),
            ca_pem: "-----BEGIN CERTIFICATE-----\n".into(),
        };
        let back = Handoff::decode(&h.encode()).unwrap();
        assert_eq!(back.config, h.config);
        assert_eq!(back.ca_pem, h.ca_pem);
        assert!(!format!("{back:?}").contains("client_id"));
    }

    #[test]
    fn errors_never_quote_the_message() {
        // Found by fuzz/fuzz_targets/handoff.rs: serde's "invalid type:
        // string ..." repeated the whole message, client secret included.
        for bad in [
            &br#""{"client_secret":"GOCSPX-secret"}""#[..],
            br#"{"config_path":"/c","config":{"client_secret":"GOCSPX-secret"}}"#,
            br#"{"config_path":"/c","config":"GOCSPX-secret"#,
            br#"["GOCSPX-secret"]"#,
        ] {
            let e = Handoff::decode(bad).unwrap_err();
            assert!(e.starts_with("invalid config handoff: "), "{e}");
            assert!(!e.contains("GOCSPX"), "{e}");
        }
    }
}
