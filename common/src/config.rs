//! The configuration file (`/etc/sasl-xoauth2.conf`), compatible with the C++
//! sasl-xoauth2: a JSON object whose values may be strings, numbers or booleans.

use crate::error::{FileError, FileKind, Problem};
use crate::secret::Secret;
use crate::value::{self, Bad};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// How strictly the refresh helper confines itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SandboxMode {
    /// Enforce what the kernel offers; log once what it does not.
    #[default]
    BestEffort,
    /// Refuse to run unless every layer is fully enforced.
    Required,
}

/// Every key the config file may hold, with a one-line meaning (used by
/// `--check` to flag typos).
pub const KNOWN_KEYS: &[(&str, &str)] = &[
    ("client_id", "OAuth client ID"),
    (
        "client_secret",
        "OAuth client secret (may be empty for public clients)",
    ),
    (
        "client_secret_file",
        "file holding only the client secret, read by the refresh helper (instead of client_secret)",
    ),
    ("token_endpoint", "OAuth token endpoint URL"),
    (
        "allowed_token_endpoints",
        "further token endpoints a token file may name (list of URLs)",
    ),
    (
        "allow_token_file_proxy",
        "let token files set \"proxy\" (default no)",
    ),
    (
        "allow_token_file_ca",
        "let token files set \"ca_bundle_file\" / \"ca_certs_dir\" (default no)",
    ),
    ("scope", "scope sent with a refresh (optional)"),
    ("proxy", "HTTP(S) proxy URL for the refresh"),
    (
        "ca_bundle_file",
        "PEM bundle of trusted CAs instead of the built-in roots",
    ),
    (
        "ca_certs_dir",
        "directory of PEM CA certificates instead of the built-in roots",
    ),
    (
        "refresh_window",
        "seconds before expiry at which a token counts as expired",
    ),
    (
        "prefetch_window",
        "seconds before expiry at which a background refresh starts",
    ),
    (
        "refresh_timeout",
        "seconds an authentication waits for a refresh",
    ),
    ("refresh_helper", "path of sasl-xoauth2-refresh"),
    ("sandbox", "best-effort or required"),
    ("always_log_to_syslog", "log every step"),
    (
        "log_to_syslog_on_failure",
        "log a summary when authentication fails",
    ),
    (
        "log_full_trace_on_failure",
        "log the full trace when authentication fails",
    ),
];

pub const DEFAULT_TOKEN_ENDPOINT: &str = crate::providers::GOOGLE_TOKEN_ENDPOINT;
pub const DEFAULT_REFRESH_WINDOW: i64 = 10;
pub const DEFAULT_PREFETCH_WINDOW: i64 = 600;
pub const DEFAULT_REFRESH_TIMEOUT: u64 = 20;
pub const DEFAULT_REFRESH_HELPER: &str = "/usr/libexec/sasl-xoauth2/sasl-xoauth2-refresh";

/// A parsed configuration file. Absent keys are `None`; [`crate::Settings`]
/// applies the defaults and the per-token overrides.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub path: PathBuf,
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    /// Path (as smtp sees it) of a file holding only the client secret; the
    /// refresh helper reads it, so smtp never holds the secret. Excludes
    /// `client_secret`.
    pub client_secret_file: Option<PathBuf>,
    pub token_endpoint: Option<String>,
    /// Token endpoints a token file may name besides the config's own and
    /// the built-in provider ones (see [`crate::settings`]).
    pub allowed_token_endpoints: Vec<String>,
    /// Whether a token file may set `proxy`.
    pub allow_token_file_proxy: bool,
    /// Whether a token file may set `ca_bundle_file` / `ca_certs_dir`.
    pub allow_token_file_ca: bool,
    pub scope: Option<String>,
    pub proxy: Option<String>,
    pub ca_bundle_file: Option<String>,
    pub ca_certs_dir: Option<String>,
    pub refresh_window: Option<i64>,
    pub prefetch_window: Option<i64>,
    pub refresh_timeout: Option<u64>,
    pub refresh_helper: Option<String>,
    pub sandbox: SandboxMode,
    pub always_log_to_syslog: bool,
    pub log_to_syslog_on_failure: bool,
    pub log_full_trace_on_failure: bool,
    /// Keys we do not know (kept for `--check`, otherwise ignored as the C++
    /// version does).
    pub unknown_keys: Vec<String>,
}

impl Config {
    /// Read and parse the config file at `path`.
    pub fn load(path: &Path) -> Result<Config, FileError> {
        let bytes = crate::fsread::read_file(path, FileKind::Config)?;
        Config::parse(&bytes, path)
    }

    /// Parse config bytes; `path` is only used in messages.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<Config, FileError> {
        let obj = parse_object(bytes, path, FileKind::Config)?;
        let f = Fields {
            obj: &obj,
            path,
            kind: FileKind::Config,
        };
        let sandbox = match f.string("sandbox")?.as_deref() {
            None | Some("best-effort") => SandboxMode::BestEffort,
            Some("required") => SandboxMode::Required,
            Some(_) => return Err(f.bad("sandbox", "\"best-effort\" or \"required\"")),
        };
        let client_secret = f.string("client_secret")?.map(Secret::new);
        let client_secret_file = f.string("client_secret_file")?.filter(|s| !s.is_empty());
        if client_secret.is_some() && client_secret_file.is_some() {
            return Err(FileError::new(
                FileKind::Config,
                path,
                Problem::Conflict {
                    field: "client_secret_file",
                    with: "client_secret",
                },
            ));
        }
        Ok(Config {
            path: path.to_path_buf(),
            client_id: f.string("client_id")?,
            client_secret,
            client_secret_file: client_secret_file.map(PathBuf::from),
            token_endpoint: f.string("token_endpoint")?,
            allowed_token_endpoints: f.string_list("allowed_token_endpoints")?,
            allow_token_file_proxy: f.boolean("allow_token_file_proxy")?.unwrap_or(false),
            allow_token_file_ca: f.boolean("allow_token_file_ca")?.unwrap_or(false),
            scope: f.string("scope")?,
            proxy: f.string("proxy")?,
            ca_bundle_file: f.string("ca_bundle_file")?,
            ca_certs_dir: f.string("ca_certs_dir")?,
            refresh_window: f.non_negative("refresh_window")?,
            prefetch_window: f.non_negative("prefetch_window")?,
            refresh_timeout: f.non_negative("refresh_timeout")?.map(|t| t.unsigned_abs()),
            refresh_helper: f.string("refresh_helper")?,
            sandbox,
            always_log_to_syslog: f.boolean("always_log_to_syslog")?.unwrap_or(false),
            log_to_syslog_on_failure: f.boolean("log_to_syslog_on_failure")?.unwrap_or(true),
            log_full_trace_on_failure: f.boolean("log_full_trace_on_failure")?.unwrap_or(false),
            unknown_keys: obj
                .keys()
                .filter(|k| !KNOWN_KEYS.iter().any(|(known, _)| known == k))
                .cloned()
                .collect(),
        })
    }

    pub fn refresh_helper(&self) -> &str {
        self.refresh_helper
            .as_deref()
            .unwrap_or(DEFAULT_REFRESH_HELPER)
    }

    pub fn refresh_timeout(&self) -> u64 {
        self.refresh_timeout.unwrap_or(DEFAULT_REFRESH_TIMEOUT)
    }

    pub fn prefetch_window(&self) -> i64 {
        self.prefetch_window.unwrap_or(DEFAULT_PREFETCH_WINDOW)
    }
}

/// Where the config is read from: `$SASL_XOAUTH2_CONFIG` when set and
/// non-empty, except in secure-execution mode (`secure`, from AT_SECURE),
/// where the environment must not choose it, like libsasl2's `SASL_PATH`.
pub fn config_path(secure: bool, env: Option<std::ffi::OsString>) -> PathBuf {
    match env {
        Some(p) if !secure && !p.is_empty() => PathBuf::from(p),
        _ => PathBuf::from(crate::DEFAULT_CONFIG_PATH),
    }
}

/// The known key closest to `key` in edit distance, if close enough to be a
/// likely typo.
pub fn nearest_known_key(key: &str) -> Option<&'static str> {
    nearest(key, KNOWN_KEYS.iter().map(|(k, _)| *k), 3)
}

/// The candidate closest to `key` (case-insensitively) within `max_edits`.
pub fn nearest<'a>(
    key: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    max_edits: usize,
) -> Option<&'a str> {
    let key = key.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|c| (c, edit_distance(&key, c)))
        .filter(|(_, d)| *d <= max_edits)
        .min_by_key(|(_, d)| *d)
        .map(|(c, _)| c)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

pub(crate) fn parse_object(
    bytes: &[u8],
    path: &Path,
    kind: FileKind,
) -> Result<Map<String, Value>, FileError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(FileError::new(kind, path, Problem::NotObject)),
        Err(e) => Err(FileError::new(
            kind,
            path,
            Problem::Json {
                line: e.line(),
                column: e.column(),
                reason: json_reason(&e),
            },
        )),
    }
}

/// serde_json's message without its " at line X column Y" tail (we print
/// those ourselves) and without quoting input, which may be a secret.
fn json_reason(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    match e.classify() {
        Category::Eof => "unexpected end of file".into(),
        Category::Syntax => "syntax error".into(),
        Category::Data => "unexpected data".into(),
        Category::Io => "read error".into(),
    }
}

/// Typed access to the fields of a parsed object, with errors naming the file.
pub(crate) struct Fields<'a> {
    pub obj: &'a Map<String, Value>,
    pub path: &'a Path,
    pub kind: FileKind,
}

impl Fields<'_> {
    pub fn bad(&self, field: &'static str, expected: &'static str) -> FileError {
        FileError::new(self.kind, self.path, Problem::BadField { field, expected })
    }

    fn get<T>(
        &self,
        field: &'static str,
        conv: fn(&Value) -> Result<T, Bad>,
    ) -> Result<Option<T>, FileError> {
        match self.obj.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => conv(v).map(Some).map_err(|b| self.bad(field, b.expected())),
        }
    }

    pub fn string(&self, field: &'static str) -> Result<Option<String>, FileError> {
        self.get(field, value::as_string)
    }

    pub fn int(&self, field: &'static str) -> Result<Option<i64>, FileError> {
        self.get(field, value::as_i64)
    }

    pub fn non_negative(&self, field: &'static str) -> Result<Option<i64>, FileError> {
        match self.int(field)? {
            Some(v) if v < 0 => Err(self.bad(field, "a number of seconds, 0 or more")),
            v => Ok(v),
        }
    }

    pub fn boolean(&self, field: &'static str) -> Result<Option<bool>, FileError> {
        self.get(field, value::as_bool)
    }

    /// A list of strings: a JSON array of strings, or one string holding
    /// space- or comma-separated items (the C++ config has flat values).
    pub fn string_list(&self, field: &'static str) -> Result<Vec<String>, FileError> {
        let bad = || self.bad(field, "a list of URLs ([\"https://...\", ...])");
        let items: Vec<String> = match self.obj.get(field) {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::String(s)) => s
                .split(|c: char| c == ',' || c.is_whitespace())
                .map(str::to_owned)
                .collect(),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| v.as_str().map(|s| s.trim().to_owned()).ok_or_else(bad))
                .collect::<Result<_, _>>()?,
            Some(_) => return Err(bad()),
        };
        Ok(items.into_iter().filter(|s| !s.is_empty()).collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<Config, FileError> {
        Config::parse(s.as_bytes(), Path::new("/etc/sasl-xoauth2.conf"))
    }

    #[test]
    fn cxx_style_config() {
        let c = parse(
            r#"{"client_id":"id","client_secret":"s3cret","refresh_window":"600",
                "log_to_syslog_on_failure":"no","log_full_trace_on_failure":"yes",
                "always_log_to_syslog": true, "future_key": 1}"#,
        )
        .unwrap();
        assert_eq!(c.client_id.as_deref(), Some("id"));
        assert_eq!(c.client_secret.as_ref().unwrap().expose(), "s3cret");
        assert_eq!(c.refresh_window, Some(600));
        assert!(!c.log_to_syslog_on_failure);
        assert!(c.log_full_trace_on_failure);
        assert!(c.always_log_to_syslog);
        assert_eq!(c.unknown_keys, vec!["future_key"]);
        assert_eq!(c.sandbox, SandboxMode::BestEffort);
    }

    #[test]
    fn defaults() {
        let c = parse("{}").unwrap();
        assert!(c.log_to_syslog_on_failure);
        assert!(!c.log_full_trace_on_failure);
        assert_eq!(c.refresh_timeout(), 20);
        assert_eq!(c.prefetch_window(), 600);
        assert_eq!(c.refresh_helper(), DEFAULT_REFRESH_HELPER);
    }

    #[test]
    fn errors_name_field() {
        let e = parse(r#"{"refresh_window":"soon"}"#).unwrap_err();
        assert_eq!(e.field(), Some("refresh_window"));
        assert!(e
            .to_string()
            .contains("refresh_window must be a whole number"));
        let e = parse(r#"{"refresh_window":-5}"#).unwrap_err();
        assert_eq!(e.field(), Some("refresh_window"));
        let e = parse(r#"{"sandbox":"strict"}"#).unwrap_err();
        assert_eq!(e.field(), Some("sandbox"));
        let e = parse(r#"{"log_to_syslog_on_failure":"perhaps"}"#).unwrap_err();
        assert!(e.to_string().contains("yes, no, true or false"));
        let e = parse(r#"{"client_id": "x", "#).unwrap_err();
        assert!(matches!(e.problem, Problem::Json { line: 1, .. }), "{e}");
        let e = parse("[1]").unwrap_err();
        assert_eq!(e.problem, Problem::NotObject);
        let e = parse(r#"{"allowed_token_endpoints":[1]}"#).unwrap_err();
        assert_eq!(e.field(), Some("allowed_token_endpoints"));
        let e = parse(r#"{"allowed_token_endpoints":{"a":1}}"#).unwrap_err();
        assert!(e.to_string().contains("a list of URLs"), "{e}");
        let e = parse(r#"{"allow_token_file_ca":"maybe"}"#).unwrap_err();
        assert_eq!(e.field(), Some("allow_token_file_ca"));
    }

    #[test]
    fn client_secret_file_is_a_path_and_excludes_client_secret() {
        let c =
            parse(r#"{"client_id":"id","client_secret_file":"/etc/sasl-xoauth2.secret"}"#).unwrap();
        assert_eq!(
            c.client_secret_file.as_deref(),
            Some(Path::new("/etc/sasl-xoauth2.secret"))
        );
        assert!(c.client_secret.is_none());
        assert!(c.unknown_keys.is_empty(), "{:?}", c.unknown_keys);
        assert!(parse(r#"{"client_secret_file":""}"#)
            .unwrap()
            .client_secret_file
            .is_none());
        let e = parse(r#"{"client_secret":"hunter2-cfg","client_secret_file":"/s"}"#).unwrap_err();
        assert_eq!(e.field(), Some("client_secret_file"));
        let msg = e.to_string();
        assert!(
            msg.contains("client_secret and client_secret_file are both set"),
            "{msg}"
        );
        assert!(msg.contains("keep only one"), "{msg}");
        assert!(!msg.contains("hunter2"), "{msg}");
        let e = parse(r#"{"client_secret_file":["/s"]}"#).unwrap_err();
        assert_eq!(e.field(), Some("client_secret_file"));
    }

    #[test]
    fn trust_keys() {
        let c = parse(
            r#"{"allowed_token_endpoints":["https://a/t", " https://b/t "],
                "allow_token_file_proxy":"yes"}"#,
        )
        .unwrap();
        assert_eq!(c.allowed_token_endpoints, ["https://a/t", "https://b/t"]);
        assert!(c.allow_token_file_proxy && !c.allow_token_file_ca);
        let c = parse(r#"{"allowed_token_endpoints":"https://a/t, https://b/t"}"#).unwrap();
        assert_eq!(c.allowed_token_endpoints, ["https://a/t", "https://b/t"]);
        let c = parse("{}").unwrap();
        assert!(c.allowed_token_endpoints.is_empty());
        assert!(!c.allow_token_file_proxy && !c.allow_token_file_ca);
    }

    #[test]
    fn json_error_does_not_quote_input() {
        let e = parse(r#"{"client_secret": "hunter2-secret" "#).unwrap_err();
        assert!(!e.to_string().contains("hunter2"), "{e}");
    }

    #[test]
    fn env_override_ignored_when_secure() {
        let env = Some(std::ffi::OsString::from("/tmp/x.conf"));
        assert_eq!(
            config_path(false, env.clone()),
            PathBuf::from("/tmp/x.conf")
        );
        assert_eq!(
            config_path(true, env),
            PathBuf::from(crate::DEFAULT_CONFIG_PATH)
        );
        let empty = Some(std::ffi::OsString::new());
        assert_eq!(
            config_path(false, empty),
            PathBuf::from(crate::DEFAULT_CONFIG_PATH)
        );
    }

    #[test]
    fn typo_suggestion() {
        assert_eq!(nearest_known_key("client_secrets"), Some("client_secret"));
        assert_eq!(nearest_known_key("refresh_windw"), Some("refresh_window"));
        assert_eq!(nearest_known_key("completely_else"), None);
    }
}
