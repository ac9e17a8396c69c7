//! Errors that name the file, the field and the fix.

use std::fmt;
use std::path::PathBuf;

/// Which of our two file formats an error is about; decides the advice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Config,
    Token,
    /// A split account's secrets file, `D/secrets/N` (see [`crate::secrets`]).
    Secrets,
    /// The file named by the config key `client_secret_file`.
    ClientSecret,
}

/// What is wrong with a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The file does not exist.
    Missing,
    /// The file exists but could not be opened or read (reason from the OS).
    Unreadable(String),
    /// The path is a symbolic link; we refuse to follow it.
    Symlink,
    /// The path names something other than a regular file.
    NotRegular(&'static str),
    /// The file is larger than the cap (in bytes) its reader allows.
    TooLarge(u64),
    /// The file is not valid JSON.
    Json {
        line: usize,
        column: usize,
        reason: String,
    },
    /// The JSON is valid but not an object.
    NotObject,
    /// A required field is absent or empty.
    MissingField(&'static str),
    /// A field has a value of the wrong type or form.
    BadField {
        field: &'static str,
        expected: &'static str,
    },
    /// Two fields that exclude each other are both set.
    Conflict {
        field: &'static str,
        with: &'static str,
    },
}

/// A config or token file that cannot be used, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileError {
    pub kind: FileKind,
    pub path: PathBuf,
    pub problem: Problem,
}

/// An error in the configuration file.
pub type ConfigError = FileError;
/// An error in a token file.
pub type TokenError = FileError;

const GET_TOKEN: &str = "sasl-xoauth2-tool get-token {gmail|outlook}";

impl FileError {
    pub fn new(kind: FileKind, path: impl Into<PathBuf>, problem: Problem) -> Self {
        FileError {
            kind,
            path: path.into(),
            problem,
        }
    }

    /// The field the error is about, if any.
    pub fn field(&self) -> Option<&'static str> {
        match self.problem {
            Problem::MissingField(f)
            | Problem::BadField { field: f, .. }
            | Problem::Conflict { field: f, .. } => Some(f),
            _ => None,
        }
    }

    /// What the admin should do about it.
    pub fn fix(&self) -> String {
        let path = self.path.display();
        match (&self.problem, self.kind) {
            (Problem::Missing, FileKind::Config) => format!(
                "create {path} (JSON with at least client_id and client_secret) or point SASL_XOAUTH2_CONFIG at your config"
            ),
            (Problem::Missing, FileKind::Token) => format!(
                "create it with `{GET_TOKEN} {path}`; if Postfix's smtp runs chrooted, the file must exist inside the chroot (usually /var/spool/postfix{path})"
            ),
            (Problem::Unreadable(_), _) => format!(
                "make {path} readable by the user that runs the mail client (for Postfix: chown postfix {path})"
            ),
            (Problem::Symlink, _) => format!(
                "replace the symlink {path} with the file itself (links are refused so that nobody can redirect the plugin to another file)"
            ),
            (Problem::NotRegular(_), _) => format!("{path} must be a regular file"),
            (Problem::TooLarge(cap), _) => format!(
                "{path} is larger than {} and cannot be a sasl-xoauth2 file; check that the right path is configured",
                Size(*cap)
            ),
            (Problem::Json { .. } | Problem::NotObject, FileKind::Config) => format!(
                "fix the JSON syntax (`python3 -m json.tool {path}` shows where it breaks)"
            ),
            (Problem::Json { .. } | Problem::NotObject, FileKind::Token) => format!(
                "restore the file from a backup, or get a new token with `{GET_TOKEN} --overwrite-existing-token {path}`"
            ),
            (Problem::MissingField("refresh_token"), FileKind::Token) => {
                format!("get a refresh token with `{GET_TOKEN} --overwrite-existing-token {path}`")
            }
            (Problem::Missing, FileKind::Secrets) => format!(
                "restore {path} from a backup, or get a new token with `{GET_TOKEN} --split \
                 --overwrite-existing-token TOKEN_FILE` (TOKEN_FILE is the file beside the secrets directory)"
            ),
            (
                Problem::Json { .. }
                | Problem::NotObject
                | Problem::MissingField(_)
                | Problem::BadField { .. },
                FileKind::Secrets,
            ) => format!(
                "restore {path} from a backup, or get a new token with `{GET_TOKEN} --split \
                 --overwrite-existing-token TOKEN_FILE`"
            ),
            (Problem::Missing, FileKind::ClientSecret) => format!(
                "create {path} holding only the client secret (chmod 600), or remove \
                 client_secret_file from the config"
            ),
            (Problem::MissingField(_), FileKind::ClientSecret) => format!(
                "put the client secret (and nothing else) into {path}, or remove \
                 client_secret_file from the config"
            ),
            (Problem::Json { .. } | Problem::NotObject, FileKind::ClientSecret) => {
                format!("put the client secret alone into {path}")
            }
            (Problem::BadField { expected, .. }, FileKind::ClientSecret) => format!(
                "{path} must hold {expected}; put the client secret alone into it"
            ),
            (Problem::Conflict { field, with }, _) => {
                format!("keep only one of \"{with}\" and \"{field}\" in {path}")
            }
            (Problem::MissingField(f), _) => format!("add the field \"{f}\" to {path}"),
            (Problem::BadField { field, expected }, _) => {
                format!("set \"{field}\" in {path} to {expected}")
            }
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Missing => f.write_str("does not exist"),
            Problem::Unreadable(r) => write!(f, "cannot be read: {r}"),
            Problem::Symlink => f.write_str("is a symbolic link"),
            Problem::NotRegular(what) => write!(f, "is {what}, not a regular file"),
            Problem::TooLarge(cap) => write!(f, "is too large (over {})", Size(*cap)),
            Problem::Json {
                line,
                column,
                reason,
            } => write!(
                f,
                "is not valid JSON (line {line}, column {column}: {reason})"
            ),
            Problem::NotObject => f.write_str("is not a JSON object"),
            Problem::MissingField(field) => write!(f, "field {field} missing"),
            Problem::BadField { field, expected } => {
                write!(f, "field {field} must be {expected}")
            }
            Problem::Conflict { field, with } => {
                write!(f, "fields {with} and {field} are both set")
            }
        }
    }
}

impl fmt::Display for FileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            FileKind::Config => "config file",
            FileKind::Token => "token file",
            FileKind::Secrets => "secrets file",
            FileKind::ClientSecret => "client secret file",
        };
        write!(
            f,
            "{kind} {}: {}; {}",
            self.path.display(),
            self.problem,
            self.fix()
        )
    }
}

impl std::error::Error for FileError {}

/// A byte cap as people write it: "64 KiB", "4 MiB", else bytes.
struct Size(u64);

impl fmt::Display for Size {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            n if n >= 1 << 20 && n % (1 << 20) == 0 => write!(f, "{} MiB", n >> 20),
            n if n >= 1 << 10 && n % (1 << 10) == 0 => write!(f, "{} KiB", n >> 10),
            n => write!(f, "{n} bytes"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_names_file_field_and_fix() {
        let e = FileError::new(
            FileKind::Token,
            "/etc/tokens/a.json",
            Problem::MissingField("refresh_token"),
        );
        let msg = e.to_string();
        assert!(msg.starts_with("token file /etc/tokens/a.json: field refresh_token missing; "));
        assert!(msg.contains("sasl-xoauth2-tool get-token"), "{msg}");
        assert_eq!(e.field(), Some("refresh_token"));
    }
}
