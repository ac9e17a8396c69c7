//! What the locked-down phase may touch. Pure: the helper and the tests
//! build the policy through the same function, [`Policy::for_token`].

use common::config::SandboxMode;
use std::path::{Path, PathBuf};

/// What the locked-down phase may touch. Built from config + token path by a
/// pure function so tests can enter exactly the policy the binary uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    /// Directory holding the token file: create/remove regular files
    /// beneath it (temp file, rename), including the split layout's
    /// `secrets` directory.
    pub token_dir: PathBuf,
    /// TCP ports the helper may connect to (token endpoint, proxy).
    pub connect_ports: Vec<u16>,
    /// Files or directories that stay readable (CA bundle/dir not handed over).
    pub read_paths: Vec<PathBuf>,
    pub mode: SandboxMode,
}

impl Policy {
    /// The policy for refreshing `token_path` over one TCP port (the
    /// endpoint's, or the proxy's when there is one: then the helper
    /// connects to the proxy only). Nothing else stays readable: config,
    /// token and CA certificates are read before the lock-down.
    pub fn for_token(token_path: &Path, connect_port: u16, mode: SandboxMode) -> Policy {
        let token_dir = match token_path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Policy {
            token_dir,
            connect_ports: vec![connect_port],
            read_paths: Vec::new(),
            mode,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_from_token_path() {
        let m = SandboxMode::Required;
        let pol = Policy::for_token(Path::new("/etc/tokens/a.json"), 443, m);
        assert_eq!(pol.token_dir, Path::new("/etc/tokens"));
        assert_eq!(pol.connect_ports, vec![443]);
        assert!(pol.read_paths.is_empty());
        assert_eq!(pol.mode, m);
        let pol = Policy::for_token(Path::new("tok.json"), 3128, SandboxMode::BestEffort);
        assert_eq!(
            (pol.token_dir.as_path(), pol.connect_ports),
            (Path::new("."), vec![3128])
        );
    }
}
