//! Loading what a refresh starts from: the configuration (a file, or the
//! plugin's handoff on a descriptor) and the token file.

use crate::diag;
use crate::error::Failure;
use crate::store::FileMeta;
use common::config::Config;
use common::error::{FileError, FileKind};
use common::handoff::{Handoff, MAX_HANDOFF_SIZE};
use common::TokenFile;
use std::os::fd::{IntoRawFd, RawFd};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

#[derive(Debug, Clone)]
pub enum ConfigSource {
    /// `$SASL_XOAUTH2_CONFIG` (unless secure-execution) or the default path.
    Default,
    Path(PathBuf),
    /// A [`Handoff`] on this descriptor.
    Fd(RawFd),
}

/// The configuration and, from a handoff, the CA certificates the plugin
/// read for us.
pub struct Loaded {
    pub(super) config: Config,
    pub(super) ca_pem: Option<Zeroizing<String>>,
}

impl Loaded {
    /// A configuration read from a file by the caller; CA files it names are
    /// read when a request is prepared.
    pub fn from_config(config: Config) -> Loaded {
        Loaded {
            config,
            ca_pem: None,
        }
    }

    /// The parsed configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Loaded")
            .field("config", &self.config.path)
            .field("ca_pem_bytes", &self.ca_pem.as_ref().map(|p| p.len()))
            .finish()
    }
}

/// Load the configuration from where the command line says. (`main` calls
/// it early, as root, before dropping to the token owner, when the config
/// is a file root may read and the owner may not.)
pub fn load_config(src: &ConfigSource) -> Result<Loaded, Failure> {
    let path = match src {
        ConfigSource::Fd(fd) => return load_handoff(*fd),
        ConfigSource::Path(p) => p.clone(),
        ConfigSource::Default => common::config::config_path(
            crate::sys::secure_execution(),
            std::env::var_os(common::CONFIG_ENV),
        ),
    };
    let config = Config::load(&path).map_err(Failure::ConfigFile)?;
    Ok(Loaded {
        config,
        ca_pem: None,
    })
}

fn load_handoff(fd: RawFd) -> Result<Loaded, Failure> {
    let owned = crate::sys::take_inherited_fd(fd).map_err(|e| {
        Failure::Config(format!(
            "--config-fd {fd}: {e}; the descriptor must carry the plugin's config handoff"
        ))
    })?;
    let mut file = std::fs::File::from(owned);
    let bytes = common::fsread::read_all_capped(&mut file, MAX_HANDOFF_SIZE);
    if fd <= 2 {
        // Keep 0-2 occupied so no file we open later becomes "stdout".
        let _ = file.into_raw_fd();
    }
    let bytes = Zeroizing::new(
        bytes.map_err(|p| Failure::Config(format!("config handoff on descriptor {fd} {p}")))?,
    );
    let h =
        Handoff::decode(&bytes).map_err(|e| Failure::Config(format!("{e} (descriptor {fd})")))?;
    let config = Config::parse(h.config.as_bytes(), Path::new(&h.config_path))
        .map_err(Failure::ConfigFile)?;
    let ca_pem = if h.ca_pem.trim().is_empty() {
        None
    } else {
        Some(Zeroizing::new(h.ca_pem.clone()))
    };
    Ok(Loaded { config, ca_pem })
}

/// A token file as read, with the owner and mode of the very file read.
pub(super) struct TokenRead {
    pub token: TokenFile,
    pub meta: FileMeta,
}

pub(super) fn read_token(path: &Path) -> Result<TokenRead, Failure> {
    let file = common::fsread::open_regular(path, FileKind::Token).map_err(Failure::Token)?;
    let meta = file
        .metadata()
        .map_err(|e| Failure::Token(unreadable(path, e)))?;
    let bytes = Zeroizing::new(
        common::fsread::read_all_capped(file, common::MAX_FILE_SIZE)
            .map_err(|p| Failure::Token(FileError::new(FileKind::Token, path, p)))?,
    );
    let token = TokenFile::parse(&bytes, path).map_err(Failure::Token)?;
    Ok(TokenRead {
        token,
        meta: FileMeta::of(&meta),
    })
}

fn unreadable(path: &Path, e: std::io::Error) -> FileError {
    FileError::new(
        FileKind::Token,
        path,
        common::error::Problem::Unreadable(e.to_string()),
    )
}

/// Refuse a token file anybody could rewrite (they could point its
/// token_endpoint elsewhere and collect the refresh token); warn about one
/// anybody can read.
pub(super) fn check_token_mode(path: &Path, meta: &FileMeta) -> Result<(), Failure> {
    if meta.mode & 0o002 != 0 {
        return Err(Failure::TokenUnsafe {
            path: path.to_path_buf(),
            why: format!(
                "is writable by every user (mode {:04o}); run `chmod 600 {}`",
                meta.mode,
                path.display()
            ),
        });
    }
    if meta.mode & 0o004 != 0 {
        diag(format_args!(
            "warning: token file {} is readable by every user (mode {:04o}); run `chmod 600 {}`",
            path.display(),
            meta.mode,
            path.display()
        ));
    }
    Ok(())
}
