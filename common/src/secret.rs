//! A string that must never reach a log.

use sha2::{Digest, Sha256};
use std::fmt;
use zeroize::Zeroizing;

/// A credential (refresh token, access token, client secret).
///
/// Guarantees: the bytes are zeroized when the value is dropped; `Debug`
/// shows only a fingerprint; there is no `Display` or `Serialize`, so the
/// only way to the plaintext is the explicit [`Secret::expose`].
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(Zeroizing::new(value.into()))
    }

    /// The plaintext. Call sites are the few places that put the secret on
    /// the wire or into the token file.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// A short, non-reversible tag that lets an admin tell two tokens apart
    /// in a log: the first 8 hex digits of SHA-256.
    pub fn fingerprint(&self) -> String {
        fingerprint(self.0.as_bytes())
    }
}

/// `sha256:` and the first 8 hex digits of the SHA-256 of `bytes`.
pub fn fingerprint(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let hex: String = digest[..4].iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Secret({})", self.fingerprint())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_plaintext() {
        let s = Secret::new("ya29.very-secret-value");
        let dbg = format!("{s:?}");
        assert!(!dbg.contains("very-secret"), "{dbg}");
        assert!(dbg.starts_with("Secret(sha256:"), "{dbg}");
        assert_eq!(s.fingerprint().len(), "sha256:".len() + 8);
    }

    #[test]
    fn fingerprint_is_stable_and_distinguishes() {
        assert_eq!(
            Secret::new("a").fingerprint(),
            Secret::new("a").fingerprint()
        );
        assert_ne!(
            Secret::new("a").fingerprint(),
            Secret::new("b").fingerprint()
        );
        // SHA-256("abc") starts with ba7816bf.
        assert_eq!(fingerprint(b"abc"), "sha256:ba7816bf");
    }
}
