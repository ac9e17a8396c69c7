//! Token files: JSON written by `sasl-xoauth2-tool get-token` and rewritten by
//! the refresh helper. Compatible with the C++ sasl-xoauth2.

use crate::config::{parse_object, Fields};
use crate::error::{FileError, FileKind, Problem};
use crate::secret::Secret;
use crate::value::{wipe, wipe_map};
use serde_json::{Map, Value};
use std::path::Path;
use zeroize::Zeroizing;

/// How the helper obtains a new access token.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Grant {
    /// `grant_type=refresh_token` with the file's refresh token (the usual case).
    #[default]
    RefreshToken,
    /// `grant_type=client_credentials`: app-only access (e.g. Microsoft
    /// `SMTP.SendAsApp`); the file needs no refresh token.
    ClientCredentials,
}

/// Per-token values that win over the config file.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub client_id: Option<String>,
    pub client_secret: Option<Secret>,
    pub token_endpoint: Option<String>,
    pub scope: Option<String>,
    pub proxy: Option<String>,
    pub ca_bundle_file: Option<String>,
    pub ca_certs_dir: Option<String>,
    pub refresh_window: Option<i64>,
}

/// A parsed token file.
///
/// It keeps every field it read (including unknown ones) so that a rewrite
/// changes only what the refresh owns: `access_token`, `expiry` and, when the
/// provider rotates it, `refresh_token`.
#[derive(Clone)]
pub struct TokenFile {
    pub refresh_token: Option<Secret>,
    pub access_token: Option<Secret>,
    /// Unix seconds; 0 when absent (expired).
    pub expiry: i64,
    pub user: Option<String>,
    pub grant: Grant,
    pub overrides: Overrides,
    fields: Map<String, Value>,
}

/// The lock file that serialises refreshes of `token`: `.<name>.lock` in
/// the same directory (never the token itself, which a refresh replaces by
/// rename). The helper takes it exclusively; the plugin only probes it.
pub fn lock_path(token: &Path) -> std::path::PathBuf {
    let name = token
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    token.with_file_name(format!(".{name}.lock"))
}

impl std::fmt::Debug for TokenFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenFile")
            .field("refresh_token", &self.refresh_token)
            .field("access_token", &self.access_token)
            .field("expiry", &self.expiry)
            .field("user", &self.user)
            .field("grant", &self.grant)
            .finish_non_exhaustive()
    }
}

impl Drop for TokenFile {
    fn drop(&mut self) {
        // The raw map holds the same secrets as plain Strings.
        wipe_map(&mut self.fields);
    }
}

impl TokenFile {
    /// Read and parse the token file at `path` (no symlinks, regular file,
    /// at most [`crate::MAX_FILE_SIZE`] bytes).
    pub fn load(path: &Path) -> Result<TokenFile, FileError> {
        let bytes = crate::fsread::read_file(path, FileKind::Token)?;
        TokenFile::parse(&bytes, path)
    }

    /// Parse token bytes; `path` is only used in messages.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<TokenFile, FileError> {
        let fields = parse_object(bytes, path, FileKind::Token)?;
        let f = Fields {
            obj: &fields,
            path,
            kind: FileKind::Token,
        };
        let grant = match f.string("grant_type")?.as_deref() {
            None | Some("refresh_token") => Grant::RefreshToken,
            Some("client_credentials") => Grant::ClientCredentials,
            Some(_) => {
                return Err(f.bad("grant_type", "\"refresh_token\" or \"client_credentials\""))
            }
        };
        let nonempty = |field| -> Result<Option<Secret>, FileError> {
            Ok(f.string(field)?.filter(|s| !s.is_empty()).map(Secret::new))
        };
        // May be absent even for the refresh_token grant: in the split
        // layout it lives in the secrets file, which only the helper reads
        // (see `require_refresh_token`).
        let refresh_token = nonempty("refresh_token")?;
        let expiry = f.int("expiry")?.unwrap_or(0);
        if expiry < 0 {
            return Err(f.bad("expiry", "unix seconds (\"0\" means expired)"));
        }
        let overrides = Overrides {
            client_id: f.string("client_id")?,
            client_secret: f.string("client_secret")?.map(Secret::new),
            token_endpoint: f.string("token_endpoint")?,
            scope: f.string("scope")?,
            proxy: f.string("proxy")?,
            ca_bundle_file: f.string("ca_bundle_file")?,
            ca_certs_dir: f.string("ca_certs_dir")?,
            refresh_window: f.non_negative("refresh_window")?,
        };
        let access_token = nonempty("access_token")?;
        let user = f.string("user")?.filter(|u| !u.is_empty());
        Ok(TokenFile {
            refresh_token,
            access_token,
            expiry,
            user,
            grant,
            overrides,
            fields,
        })
    }

    /// Fails, telling to run get-token, when the refresh_token grant has no
    /// refresh token: for the helper, once the secrets file (split layout)
    /// had its say.
    pub fn require_refresh_token(&self, path: &Path) -> Result<(), FileError> {
        if self.refresh_token.is_none() && self.grant == Grant::RefreshToken {
            return Err(FileError::new(
                FileKind::Token,
                path,
                Problem::MissingField("refresh_token"),
            ));
        }
        Ok(())
    }

    /// Names of all fields in the file, in file order.
    pub fn field_names(&self) -> impl Iterator<Item = &str> {
        self.fields.keys().map(String::as_str)
    }

    /// The file's bytes after a refresh: the new access token and expiry, the
    /// rotated refresh token if the provider sent one, and every other field
    /// exactly as it was. `expiry` is written as a string, as the C++ version
    /// does.
    pub fn refreshed(
        &self,
        access_token: &Secret,
        expiry: i64,
        rotated_refresh_token: Option<&Secret>,
    ) -> Zeroizing<Vec<u8>> {
        let mut out = self.fields.clone();
        out.insert("access_token".into(), access_token.expose().into());
        out.insert("expiry".into(), expiry.to_string().into());
        if let Some(r) = rotated_refresh_token {
            out.insert("refresh_token".into(), r.expose().into());
        }
        file_bytes(Value::Object(out))
    }

    /// The token file's bytes after a refresh in the split layout: as
    /// [`TokenFile::refreshed`] without a rotated token, and without
    /// `refresh_token` and `client_secret` (they belong in the secrets
    /// file; one left by an interrupted conversion is dropped here).
    pub fn refreshed_split(&self, access_token: &Secret, expiry: i64) -> Zeroizing<Vec<u8>> {
        let mut out = self.fields.clone();
        for field in crate::secrets::SECRET_FIELDS {
            if let Some(mut v) = out.shift_remove(field) {
                wipe(&mut v);
            }
        }
        out.insert("access_token".into(), access_token.expose().into());
        out.insert("expiry".into(), expiry.to_string().into());
        file_bytes(Value::Object(out))
    }
}

/// `doc` as a token file's bytes (pretty JSON and a newline): the one
/// serializer of token files. The buffer is sized before anything is
/// written into it (a growing Vec would leave unwiped copies of the
/// secrets behind) and wiped on drop; every string in `doc` is wiped
/// before this returns.
pub fn file_bytes(mut doc: Value) -> Zeroizing<Vec<u8>> {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0 += b.len();
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut n = Count(0);
    serde_json::to_writer_pretty(&mut n, &doc).expect("a JSON value always serializes");
    let mut out = Zeroizing::new(Vec::with_capacity(n.0 + 1));
    serde_json::to_writer_pretty(&mut *out, &doc).expect("a JSON value always serializes");
    out.push(b'\n');
    wipe(&mut doc);
    out
}

/// The bytes of a token file after a new authorisation (`sasl-xoauth2-tool
/// get-token`): the fields of `existing` (the file being replaced, if any)
/// kept as they are, with a new `access_token`, `expiry` (as a string) and
/// `refresh_token`. Unlike [`TokenFile::refreshed`] this accepts an old
/// file without a usable refresh token, which is why one re-authorises.
/// Fails if `existing` is not a JSON object; `path` is only for messages.
pub fn authorised(
    existing: Option<&[u8]>,
    path: &Path,
    access_token: &Secret,
    expiry: i64,
    refresh_token: &Secret,
) -> Result<Zeroizing<Vec<u8>>, FileError> {
    let mut out = match existing {
        Some(bytes) => parse_object(bytes, path, FileKind::Token)?,
        None => Map::new(),
    };
    out.insert("access_token".into(), access_token.expose().into());
    out.insert("refresh_token".into(), refresh_token.expose().into());
    out.insert("expiry".into(), expiry.to_string().into());
    Ok(file_bytes(Value::Object(out)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "/etc/tokens/user@example.com";

    fn parse(s: &str) -> Result<TokenFile, FileError> {
        TokenFile::parse(s.as_bytes(), Path::new(P))
    }

    #[test]
    fn file_bytes_fill_a_buffer_that_never_grew() {
        let doc = serde_json::json!({"refresh_token": "r", "n": [1, "two"], "o": {"k": "v"}});
        let bytes = file_bytes(doc.clone());
        assert_eq!(bytes.capacity(), bytes.len());
        assert!(bytes.ends_with(b"}\n"));
        assert_eq!(serde_json::from_slice::<Value>(&bytes).unwrap(), doc);
    }

    #[test]
    fn lock_file_sits_beside_the_token() {
        assert_eq!(
            lock_path(Path::new("/etc/tokens/a@b.json")),
            Path::new("/etc/tokens/.a@b.json.lock")
        );
    }

    #[test]
    fn cxx_token_file() {
        let t = parse(r#"{"access_token":"at","expiry":"0","refresh_token":"rt"}"#).unwrap();
        assert_eq!(t.refresh_token.as_ref().unwrap().expose(), "rt");
        assert_eq!(t.access_token.as_ref().unwrap().expose(), "at");
        assert_eq!(t.expiry, 0);
        assert_eq!(t.grant, Grant::RefreshToken);
    }

    #[test]
    fn expiry_past_2038_and_numeric() {
        assert_eq!(
            parse(r#"{"refresh_token":"r","expiry":"9999999999"}"#)
                .unwrap()
                .expiry,
            9_999_999_999
        );
        assert_eq!(
            parse(r#"{"refresh_token":"r","expiry":9999999999}"#)
                .unwrap()
                .expiry,
            9_999_999_999
        );
        assert_eq!(parse(r#"{"refresh_token":"r"}"#).unwrap().expiry, 0);
    }

    #[test]
    fn bad_inputs_name_field() {
        // No refresh token parses (split layout: it is in the secrets
        // file); the helper then requires one.
        let missing = |s| {
            parse(s)
                .unwrap()
                .require_refresh_token(Path::new(P))
                .unwrap_err()
        };
        let e = missing(r#"{"access_token":"a"}"#);
        assert_eq!(e.problem, Problem::MissingField("refresh_token"));
        assert!(e.to_string().contains("get-token"));
        let e = missing(r#"{"refresh_token":""}"#);
        assert_eq!(e.problem, Problem::MissingField("refresh_token"));
        assert!(parse(r#"{"refresh_token":"r"}"#)
            .unwrap()
            .require_refresh_token(Path::new(P))
            .is_ok());
        let e = parse(r#"{"refresh_token":"r","expiry":"tomorrow"}"#).unwrap_err();
        assert_eq!(e.field(), Some("expiry"));
        let e = parse(r#"{"refresh_token":"r","expiry":"-1"}"#).unwrap_err();
        assert_eq!(e.field(), Some("expiry"));
        let e = parse(r#"{"refresh_token":"r","grant_type":"password"}"#).unwrap_err();
        assert_eq!(e.field(), Some("grant_type"));
        let e = parse(r#"{"refresh_token": {"nested": 1}}"#).unwrap_err();
        assert_eq!(e.field(), Some("refresh_token"));
    }

    #[test]
    fn client_credentials_needs_no_refresh_token() {
        let t = parse(r#"{"grant_type":"client_credentials","client_id":"app"}"#).unwrap();
        assert_eq!(t.grant, Grant::ClientCredentials);
        assert!(t.refresh_token.is_none());
        assert!(t.require_refresh_token(Path::new(P)).is_ok());
    }

    #[test]
    fn overrides_and_user() {
        let t = parse(
            r#"{"refresh_token":"r","user":"u@x","client_id":"c","client_secret":"s",
                "token_endpoint":"https://e/t","refresh_window":600}"#,
        )
        .unwrap();
        assert_eq!(t.user.as_deref(), Some("u@x"));
        assert_eq!(t.overrides.client_id.as_deref(), Some("c"));
        assert_eq!(t.overrides.refresh_window, Some(600));
    }

    #[test]
    fn rewrite_keeps_unknown_fields_and_writes_expiry_as_string() {
        let t = parse(
            r#"{"refresh_token":"r1","user":"u","x-custom":{"a":[1,2]},"access_token":"old","expiry":"5"}"#,
        )
        .unwrap();
        let out = t.refreshed(&Secret::new("new"), 9_999_999_999, None);
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["access_token"], "new");
        assert_eq!(v["expiry"], "9999999999");
        assert_eq!(v["refresh_token"], "r1");
        assert_eq!(v["user"], "u");
        assert_eq!(v["x-custom"]["a"][1], 2);
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            [
                "refresh_token",
                "user",
                "x-custom",
                "access_token",
                "expiry"
            ]
        );
        let out = t.refreshed(&Secret::new("new"), 1, Some(&Secret::new("r2")));
        let again = TokenFile::parse(&out, Path::new(P)).unwrap();
        assert_eq!(again.refresh_token.as_ref().unwrap().expose(), "r2");
        assert_eq!(again.expiry, 1);
    }

    #[test]
    fn split_rewrite_never_holds_a_secret() {
        // A token file an interrupted conversion left with its secrets.
        let t = parse(
            r#"{"refresh_token":"rt-plain-9","user":"u","client_secret":"cs-plain-9","x":1,"access_token":"old","expiry":"5"}"#,
        )
        .unwrap();
        let out = t.refreshed_split(&Secret::new("new"), 77);
        let text = std::str::from_utf8(&out).unwrap();
        assert!(
            !text.contains("rt-plain-9") && !text.contains("cs-plain-9"),
            "{text}"
        );
        let v: Value = serde_json::from_slice(&out).unwrap();
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["user", "x", "access_token", "expiry"]);
        assert_eq!(v["access_token"], "new");
        assert_eq!(v["expiry"], "77");
        // A split token file stays split.
        let again = TokenFile::parse(&out, Path::new(P)).unwrap();
        assert!(again.refresh_token.is_none() && again.overrides.client_secret.is_none());
    }

    #[test]
    fn debug_is_redacted() {
        let t = parse(r#"{"refresh_token":"rt-plain","access_token":"at-plain"}"#).unwrap();
        let d = format!("{t:?}");
        assert!(!d.contains("rt-plain") && !d.contains("at-plain"), "{d}");
    }
}

#[cfg(test)]
mod authorised_tests {
    use super::*;

    #[test]
    fn keeps_other_fields_and_replaces_tokens() {
        let old =
            br#"{"refresh_token":"dead","user":"u@x","client_id":"c","x-custom":[1],"expiry":"5"}"#;
        let out = authorised(
            Some(old),
            Path::new("/t"),
            &Secret::new("at2"),
            42,
            &Secret::new("rt2"),
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["refresh_token"], "rt2");
        assert_eq!(v["access_token"], "at2");
        assert_eq!(v["expiry"], "42");
        assert_eq!(v["user"], "u@x");
        assert_eq!(v["client_id"], "c");
        assert_eq!(v["x-custom"][0], 1);
        // An old file without a refresh token is fine; a non-object is not.
        assert!(authorised(
            Some(b"{}"),
            Path::new("/t"),
            &Secret::new("a"),
            1,
            &Secret::new("r")
        )
        .is_ok());
        assert!(authorised(
            Some(b"[1]"),
            Path::new("/t"),
            &Secret::new("a"),
            1,
            &Secret::new("r")
        )
        .is_err());
        let fresh = authorised(
            None,
            Path::new("/t"),
            &Secret::new("a"),
            7,
            &Secret::new("r"),
        )
        .unwrap();
        let t = TokenFile::parse(&fresh, Path::new("/t")).unwrap();
        assert_eq!(t.expiry, 7);
        assert_eq!(t.refresh_token.as_ref().unwrap().expose(), "r");
    }
}
