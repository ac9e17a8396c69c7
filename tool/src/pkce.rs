//! PKCE (RFC 7636, method S256) and the `state` value: random strings from
//! the OS generator.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use common::Secret;
use sha2::{Digest, Sha256};

/// `n` random bytes from the OS, base64url without padding.
pub fn random_urlsafe(n: usize) -> Result<String, getrandom::Error> {
    let mut buf = zeroize::Zeroizing::new(vec![0u8; n]);
    getrandom::fill(&mut buf)?;
    Ok(URL_SAFE_NO_PAD.encode(&*buf))
}

/// A code verifier and its S256 challenge.
#[derive(Debug)]
pub struct Pkce {
    /// Sent only to the token endpoint, never printed.
    pub verifier: Secret,
    /// Sent in the authorisation URL.
    pub challenge: String,
}

impl Pkce {
    /// 32 random bytes give a 43-character verifier, the RFC's minimum
    /// length and its recommended construction (section 4.1).
    pub fn generate() -> Result<Pkce, getrandom::Error> {
        let verifier = Secret::new(random_urlsafe(32)?);
        let challenge = challenge_s256(verifier.expose());
        Ok(Pkce {
            verifier,
            challenge,
        })
    }
}

/// `BASE64URL(SHA256(ASCII(verifier)))`.
pub fn challenge_s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// A fresh `state` value (128 bits) binding the redirect to this run.
pub fn new_state() -> Result<String, getrandom::Error> {
    random_urlsafe(16)
}

/// Compare without an early exit, so the time taken does not tell how much
/// of a guessed state was right.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc7636_appendix_b_example() {
        assert_eq!(
            challenge_s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn generated_values_are_valid_and_differ() {
        let a = Pkce::generate().unwrap();
        let b = Pkce::generate().unwrap();
        assert_eq!(a.verifier.expose().len(), 43);
        assert!(a
            .verifier
            .expose()
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
        assert_ne!(a.verifier, b.verifier);
        assert_eq!(a.challenge, challenge_s256(a.verifier.expose()));
        assert_ne!(new_state().unwrap(), new_state().unwrap());
        assert_eq!(new_state().unwrap().len(), 22);
    }

    #[test]
    fn eq() {
        assert!(constant_time_eq("abc", "abc"));
        assert!(!constant_time_eq("abc", "abd"));
        assert!(!constant_time_eq("abc", "ab"));
    }
}
