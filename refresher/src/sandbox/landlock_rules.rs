//! Landlock: the file and network walls (see `Policy`). Everything the
//! pinned ABI can restrict is handled, so anything not granted below is
//! denied (EACCES): other files, other TCP ports, TCP bind, abstract unix
//! sockets and signals leaving the sandbox.

use super::{Policy, SandboxError};
use landlock::{
    path_beneath_rules, Access, AccessFs, AccessNet, CompatLevel, Compatible, NetPort, Ruleset,
    RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope, ABI,
};

/// The newest ABI this code was tested with (Linux 6.18 here reports 7).
/// Raise it only after testing on a kernel that has the new ABI.
pub const PINNED_ABI: i32 = 7;
const ABI_PINNED: ABI = ABI::V7;

/// Rights beneath the token directory, only what the locked phase does:
/// rename the temp file over the token (landlock asks MakeReg for the new
/// name and RemoveFile for the old name and the replaced file) and unlink
/// the temp file after a failed write. The lock, token, temp file and the
/// directory are opened before lock-down, so no file there can be opened,
/// read, written or listed: not the other accounts' tokens either. The rule
/// holds beneath the directory, so in the split layout it also covers the
/// secrets file's rename and temp file in `D/secrets` (opened before
/// lock-down too).
fn token_dir_access() -> landlock::BitFlags<AccessFs> {
    AccessFs::MakeReg | AccessFs::RemoveFile
}

/// Build the ruleset from `policy` and restrict this thread.
pub fn restrict(policy: &Policy) -> Result<RulesetStatus, SandboxError> {
    let err = |e: &dyn std::fmt::Display| SandboxError(format!("landlock: {e}"));
    let dir = &policy.token_dir;
    let status = Ruleset::default()
        .set_compatibility(CompatLevel::BestEffort) // `required` is decided by support::decide
        .handle_access(AccessFs::from_all(ABI_PINNED))
        .map_err(|e| err(&e))?
        .handle_access(AccessNet::from_all(ABI_PINNED))
        .map_err(|e| err(&e))?
        .scope(Scope::from_all(ABI_PINNED))
        .map_err(|e| err(&e))?
        .create()
        .map_err(|e| err(&e))?
        .add_rules(path_beneath_rules([dir], token_dir_access()))
        .map_err(|e| {
            SandboxError(format!(
                "landlock: cannot open the token directory {}: {e}; check that it exists",
                dir.display()
            ))
        })?
        .add_rules(path_beneath_rules(
            &policy.read_paths,
            AccessFs::ReadFile | AccessFs::ReadDir,
        ))
        .map_err(|e| err(&e))?
        .add_rules(
            policy
                .connect_ports
                .iter()
                .map(|&p| Ok::<_, landlock::RulesetError>(NetPort::new(p, AccessNet::ConnectTcp))),
        )
        .map_err(|e| err(&e))?
        .restrict_self()
        .map_err(|e| err(&e))?;
    Ok(status.ruleset)
}
