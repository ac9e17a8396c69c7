//! `split-secrets TOKEN_FILE`: move an account's refresh token and
//! per-account client secret out of its token file into `secrets/NAME`.
//!
//! Under the account's refresh lock (no helper refresh can interleave): the
//! secrets file is written first, then the token file without them. A run
//! after a crash between the two, or a second run, finds the secrets file
//! and only finishes the token file; nothing is ever dropped that is not
//! already in the secrets file.

use crate::error::ToolError;
use crate::output::{
    keep_client_secret, lock, output_err, read_old, read_secrets, store, store_secrets, unparsable,
};
use common::error::FileKind;
use common::secrets::{secrets_path, split_token, SecretsFile};
use refresher::store::FileMeta;
use std::path::Path;

/// What a conversion did, for the messages.
#[derive(Debug, Default)]
pub struct Converted {
    pub wrote_secrets: bool,
    pub rewrote_token: bool,
    pub notes: Vec<String>,
}

/// Convert the account whose token file is `path`.
pub fn split_secrets(path: &Path) -> Result<Converted, ToolError> {
    let missing = || {
        output_err(
            path,
            "it does not exist",
            "give the path of an existing token file",
        )
    };
    // Refuses a symlink or a non-regular file before the lock file is made.
    let meta = read_old(path, FileKind::Token)?.ok_or_else(missing)?.meta;
    let _lock = lock(path, Some(meta))?;
    // Read again under the lock: a refresh may have replaced it meanwhile.
    let old = read_old(path, FileKind::Token)?.ok_or_else(missing)?;
    let parts = split_token(&old.bytes, path).map_err(unparsable)?;
    let owner = FileMeta {
        mode: 0o600,
        ..old.meta
    };
    let mut done = Converted::default();
    let existing = read_secrets(path, &owner)?;
    let new_secrets = match (&existing, &parts.refresh_token) {
        (Some(s), token_rt) => {
            if let Some(t) = token_rt.as_ref().filter(|t| **t != s.refresh_token) {
                done.notes.push(format!(
                    "the token file's refresh_token ({}) differed from the secrets file's ({}); \
                     the secrets file's is kept (it is written first, so it is the newer one)",
                    t.fingerprint(),
                    s.refresh_token.fingerprint()
                ));
            }
            let client_secret = keep_client_secret(
                s.client_secret.as_ref(),
                parts.client_secret.as_ref(),
                &mut done.notes,
            );
            // Only a client secret the secrets file lacks needs writing.
            (client_secret != s.client_secret).then(|| SecretsFile {
                refresh_token: s.refresh_token.clone(),
                client_secret,
            })
        }
        (None, Some(rt)) => Some(SecretsFile {
            refresh_token: rt.clone(),
            client_secret: parts.client_secret.clone(),
        }),
        (None, None) => {
            return Err(output_err(
                path,
                format!(
                    "it has no refresh_token to move, and {} does not exist",
                    secrets_path(path).display()
                ),
                format!(
                    "get a new token in the split layout with `sasl-xoauth2-tool get-token \
                     {{gmail|outlook}} --split --overwrite-existing-token {}` (accounts \
                     with grant_type client_credentials have no refresh token; put their \
                     client secret into the config's client_secret_file instead)",
                    path.display()
                ),
            ))
        }
    };
    if let Some(s) = &new_secrets {
        store_secrets(path, &owner, s, existing.is_some(), &mut done.notes)?;
        done.wrote_secrets = true;
    }
    if parts.refresh_token.is_some() || parts.client_secret.is_some() {
        // Owner and mode exactly as they were.
        store(path, old.meta, &parts.token, true, &mut done.notes)?;
        done.rewrote_token = true;
    }
    Ok(done)
}

/// Run `split-secrets` and print what happened.
pub fn run(path: &Path) -> Result<(), ToolError> {
    let done = split_secrets(path)?;
    let secrets = secrets_path(path);
    match (done.wrote_secrets, done.rewrote_token) {
        (false, false) => eprintln!(
            "{} already uses the split layout ({} holds its secrets); nothing to do.",
            path.display(),
            secrets.display()
        ),
        (_, true) => eprintln!(
            "Secrets of {} are now in {}; the token file holds no refresh token or client \
             secret any more.",
            path.display(),
            secrets.display()
        ),
        (true, false) => eprintln!("Client secret added to {}.", secrets.display()),
    }
    for n in &done.notes {
        eprintln!("note: {n}");
    }
    Ok(())
}
