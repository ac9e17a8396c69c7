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

    pub fn decode(bytes: &[u8]) -> Result<Handoff, String> {
        serde_json::from_slice(bytes).map_err(|e| format!("invalid config handoff: {e}"))
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
}
