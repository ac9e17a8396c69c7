//! The split-secrets layout: an account's refresh token (and any per-account
//! client secret) live in `D/secrets/N`, beside the token file `D/N`, where
//! a MAC policy lets the refresh helper in and keeps smtp out.
//!
//! * The path is derived from the token file's, never named inside it
//!   (smtp can write the token file under DAC).
//! * A regular file at [`secrets_path`] means the split layout: its
//!   `refresh_token` wins over one a token file may still hold after an
//!   interrupted conversion. No such file means the single-file layout of
//!   the C++ tool, unchanged.
//! * Writers write the secrets file first, then the token file, so a crash
//!   between the two never leaves an access token whose refresh token is lost.
//!
//! Also the content of the config's `client_secret_file`: the secret alone.

use crate::config::{parse_object, Fields};
use crate::error::{FileError, FileKind, Problem};
use crate::secret::Secret;
use crate::token::file_bytes;
use crate::value::{wipe, wipe_map};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Name of the directory beside the token files that holds their secrets.
pub const SECRETS_DIR: &str = "secrets";

/// Longest client secret accepted from a `client_secret_file` (real ones are
/// under 100 characters).
pub const MAX_CLIENT_SECRET_LEN: usize = 1024;

/// The secrets directory for the token file `D/N`: `D/secrets`.
pub fn secrets_dir(token: &Path) -> PathBuf {
    match token.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.join(SECRETS_DIR),
        _ => PathBuf::from(SECRETS_DIR),
    }
}

/// The secrets file for the token file `D/N`: `D/secrets/N`.
pub fn secrets_path(token: &Path) -> PathBuf {
    let dir = secrets_dir(token);
    match token.file_name() {
        Some(name) => dir.join(name),
        None => dir,
    }
}

/// The token file fields that belong in the secrets file.
pub const SECRET_FIELDS: [&str; 2] = ["refresh_token", "client_secret"];

/// A parsed secrets file. `Debug` shows fingerprints only; there is no
/// `Display`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretsFile {
    pub refresh_token: Secret,
    /// A per-account client secret, overriding the config's.
    pub client_secret: Option<Secret>,
}

impl SecretsFile {
    /// Read and parse the secrets file at `path` (no symlinks, regular file,
    /// at most [`crate::MAX_FILE_SIZE`] bytes).
    pub fn load(path: &Path) -> Result<SecretsFile, FileError> {
        let bytes = crate::fsread::read_file(path, FileKind::Secrets)?;
        SecretsFile::parse(&bytes, path)
    }

    /// Parse secrets bytes; `path` is only used in messages.
    pub fn parse(bytes: &[u8], path: &Path) -> Result<SecretsFile, FileError> {
        let mut obj = parse_object(bytes, path, FileKind::Secrets)?;
        let parsed = from_object(&obj, path, FileKind::Secrets);
        wipe_map(&mut obj);
        match parsed? {
            (Some(refresh_token), client_secret) => Ok(SecretsFile {
                refresh_token,
                client_secret,
            }),
            (None, _) => Err(FileError::new(
                FileKind::Secrets,
                path,
                Problem::MissingField("refresh_token"),
            )),
        }
    }

    /// The file's bytes: a JSON object with `refresh_token` and, when set,
    /// `client_secret`.
    pub fn to_json(&self) -> Zeroizing<Vec<u8>> {
        let mut m = Map::new();
        m.insert(
            "refresh_token".into(),
            self.refresh_token.expose().to_owned().into(),
        );
        if let Some(c) = &self.client_secret {
            m.insert("client_secret".into(), c.expose().to_owned().into());
        }
        file_bytes(Value::Object(m))
    }
}

/// The two secret fields of a parsed object: a non-empty refresh token and
/// a client secret (`""` is kept: it marks a public client).
fn from_object(
    obj: &Map<String, Value>,
    path: &Path,
    kind: FileKind,
) -> Result<(Option<Secret>, Option<Secret>), FileError> {
    let f = Fields { obj, path, kind };
    let refresh_token = f
        .string("refresh_token")?
        .filter(|s| !s.is_empty())
        .map(Secret::new);
    let client_secret = f.string("client_secret")?.map(Secret::new);
    Ok((refresh_token, client_secret))
}

/// A single-file token file taken apart for the split layout. `Debug`
/// shows fingerprints and the token file's length only: `token` still
/// holds the access token.
pub struct Split {
    /// The token file without `refresh_token` and `client_secret`, every
    /// other field kept as it was, in its order.
    pub token: Zeroizing<Vec<u8>>,
    /// The token file's refresh token, if it had a non-empty one.
    pub refresh_token: Option<Secret>,
    /// The token file's per-account client secret, if any.
    pub client_secret: Option<Secret>,
}

impl std::fmt::Debug for Split {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Split")
            .field("token_len", &self.token.len())
            .field("refresh_token", &self.refresh_token)
            .field("client_secret", &self.client_secret)
            .finish()
    }
}

/// Take the token file `bytes` apart: what stays in the token file, and the
/// secrets it held. `path` is only used in messages. Also right for a token
/// file that is already split (nothing to take out).
pub fn split_token(bytes: &[u8], path: &Path) -> Result<Split, FileError> {
    let mut obj = parse_object(bytes, path, FileKind::Token)?;
    let secrets = from_object(&obj, path, FileKind::Token);
    for field in SECRET_FIELDS {
        if let Some(mut v) = obj.shift_remove(field) {
            wipe(&mut v);
        }
    }
    let (refresh_token, client_secret) = match secrets {
        Ok(s) => s,
        Err(e) => {
            wipe_map(&mut obj);
            return Err(e);
        }
    };
    Ok(Split {
        token: file_bytes(Value::Object(obj)),
        refresh_token,
        client_secret,
    })
}

/// The secret held in a `client_secret_file`: its content with surrounding
/// whitespace (a trailing newline) stripped; non-empty, at most
/// [`MAX_CLIENT_SECRET_LEN`] bytes, no control characters. `path` is only
/// used in messages.
pub fn parse_client_secret(bytes: &[u8], path: &Path) -> Result<Secret, FileError> {
    let bad = || {
        FileError::new(
            FileKind::ClientSecret,
            path,
            Problem::BadField {
                field: "client_secret",
                expected: "one line of printable UTF-8 text of at most 1024 bytes",
            },
        )
    };
    let text = std::str::from_utf8(bytes).map_err(|_| bad())?.trim();
    if text.is_empty() {
        return Err(FileError::new(
            FileKind::ClientSecret,
            path,
            Problem::MissingField("client_secret"),
        ));
    }
    if text.len() > MAX_CLIENT_SECRET_LEN || text.chars().any(char::is_control) {
        return Err(bad());
    }
    Ok(Secret::new(text))
}

/// Read a `client_secret_file` (no symlinks, regular file) and parse it
/// with [`parse_client_secret`].
pub fn load_client_secret(path: &Path) -> Result<Secret, FileError> {
    let bytes = crate::fsread::read_file(path, FileKind::ClientSecret)?;
    parse_client_secret(&bytes, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: &str = "/etc/tokens/secrets/a@b";
    const RT: &str = "1//refresh-plaintext-91ab";
    const CS: &str = "client-secret-plaintext-7c";

    fn no_secret_in(text: &str) {
        for s in [RT, CS, "refresh-plaintext", "client-secret-plaintext"] {
            assert!(!text.contains(s), "secret leaked: {text}");
        }
    }

    #[test]
    fn paths_are_derived_beside_the_token() {
        let t = Path::new("/etc/tokens/a@b.json");
        assert_eq!(secrets_dir(t), Path::new("/etc/tokens/secrets"));
        assert_eq!(secrets_path(t), Path::new("/etc/tokens/secrets/a@b.json"));
        let chrooted = Path::new("/var/spool/postfix/etc/tokens/u");
        assert_eq!(
            secrets_path(chrooted),
            Path::new("/var/spool/postfix/etc/tokens/secrets/u")
        );
        assert_eq!(secrets_path(Path::new("tok")), Path::new("secrets/tok"));
    }

    #[test]
    fn parse_and_serialize_round_trip() {
        let s = SecretsFile::parse(
            format!(r#"{{"refresh_token":"{RT}","client_secret":"{CS}"}}"#).as_bytes(),
            Path::new(P),
        )
        .unwrap();
        assert_eq!(s.refresh_token.expose(), RT);
        assert_eq!(s.client_secret.as_ref().unwrap().expose(), CS);
        let again = SecretsFile::parse(&s.to_json(), Path::new(P)).unwrap();
        assert_eq!(again, s);
        let only = SecretsFile {
            refresh_token: Secret::new(RT),
            client_secret: None,
        };
        let v: Value = serde_json::from_slice(&only.to_json()).unwrap();
        assert_eq!(v, serde_json::json!({ "refresh_token": RT }));
        // A public client's empty client secret is kept as such.
        let s = SecretsFile::parse(br#"{"refresh_token":"r","client_secret":""}"#, Path::new(P))
            .unwrap();
        assert!(s.client_secret.unwrap().is_empty());
    }

    #[test]
    fn bad_secrets_files_name_the_file_and_the_fix() {
        let p = Path::new(P);
        for bad in [
            r#"{"client_secret":"x"}"#,
            r#"{"refresh_token":""}"#,
            r#"{"refresh_token":{"a":1}}"#,
            "[1]",
            "{",
        ] {
            let e = SecretsFile::parse(bad.as_bytes(), p).unwrap_err();
            assert_eq!(e.kind, FileKind::Secrets);
            let msg = e.to_string();
            assert!(msg.starts_with(&format!("secrets file {P}: ")), "{msg}");
            assert!(
                msg.contains("get-token") && msg.contains("--split"),
                "{msg}"
            );
        }
        let e = SecretsFile::parse(br#"{"client_secret":"x"}"#, p).unwrap_err();
        assert_eq!(e.problem, Problem::MissingField("refresh_token"));
        let e = SecretsFile::load(Path::new("/nonexistent/secrets/x")).unwrap_err();
        assert_eq!(e.problem, Problem::Missing);
        assert!(e.to_string().contains("--split"), "{e}");
    }

    #[test]
    fn no_secret_in_debug_or_errors() {
        let s = SecretsFile::parse(
            format!(r#"{{"refresh_token":"{RT}","client_secret":"{CS}"}}"#).as_bytes(),
            Path::new(P),
        )
        .unwrap();
        no_secret_in(&format!("{s:?}"));
        let split = split_token(
            format!(r#"{{"refresh_token":"{RT}","client_secret":"{CS}","access_token":"access-plaintext"}}"#).as_bytes(),
            Path::new("/t"),
        )
        .unwrap();
        let dbg = format!("{split:?}");
        no_secret_in(&dbg);
        assert!(!dbg.contains("access-plaintext"), "{dbg}");
        // Errors about files holding secrets never quote them.
        for bad in [
            format!(r#"{{"refresh_token":"{RT}","client_secret":["{CS}"]}}"#),
            format!(r#"{{"refresh_token":"{RT}" "client_secret":"{CS}"}}"#),
        ] {
            let e = SecretsFile::parse(bad.as_bytes(), Path::new(P)).unwrap_err();
            no_secret_in(&e.to_string());
            no_secret_in(&format!("{e:?}"));
            let e = split_token(bad.as_bytes(), Path::new("/t")).unwrap_err();
            no_secret_in(&e.to_string());
        }
        let e = parse_client_secret(format!("{CS}\u{7}").as_bytes(), Path::new("/s")).unwrap_err();
        no_secret_in(&e.to_string());
        no_secret_in(&format!("{e:?}"));
    }

    #[test]
    fn split_token_keeps_a_number_beyond_i64_exactly() {
        // Found by fuzz/token_file: without serde_json's float_roundtrip the
        // rewrite changed this expiry in its last digits.
        let input = br#"{"refresh_token":"r","expiry":999999999998999999998,"ken":null}"#;
        let split = split_token(input, Path::new("/t")).unwrap();
        let want: Value =
            serde_json::from_slice(br#"{"expiry":999999999998999999998,"ken":null}"#).unwrap();
        let got: Value = serde_json::from_slice(&split.token).unwrap();
        assert_eq!(got, want);
    }

    #[test]
    fn split_token_keeps_every_other_field_in_order() {
        let t = format!(
            r#"{{"access_token":"at","refresh_token":"{RT}","user":"u@x","client_id":"c",
                "client_secret":"{CS}","x-custom":{{"a":[1,2]}},"expiry":"42"}}"#
        );
        let s = split_token(t.as_bytes(), Path::new("/t")).unwrap();
        assert_eq!(s.refresh_token.as_ref().unwrap().expose(), RT);
        assert_eq!(s.client_secret.as_ref().unwrap().expose(), CS);
        no_secret_in(std::str::from_utf8(&s.token).unwrap());
        let v: Value = serde_json::from_slice(&s.token).unwrap();
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(
            keys,
            ["access_token", "user", "client_id", "x-custom", "expiry"]
        );
        assert_eq!(v["x-custom"]["a"][1], 2);
        assert_eq!(v["expiry"], "42");
        // An already split file splits into itself.
        let again = split_token(&s.token, Path::new("/t")).unwrap();
        assert_eq!(*again.token, *s.token);
        assert!(again.refresh_token.is_none() && again.client_secret.is_none());
        // Not an object: the token file's own error.
        let e = split_token(b"[]", Path::new("/t")).unwrap_err();
        assert_eq!((e.kind, e.problem), (FileKind::Token, Problem::NotObject));
    }

    #[test]
    fn client_secret_file_content() {
        let p = Path::new("/etc/sasl-xoauth2.secret");
        assert_eq!(
            parse_client_secret(b"  s3cret\n", p).unwrap().expose(),
            "s3cret"
        );
        assert_eq!(
            parse_client_secret(b"a b~c\r\n", p).unwrap().expose(),
            "a b~c"
        );
        let e = parse_client_secret(b" \n\t", p).unwrap_err();
        assert_eq!(e.problem, Problem::MissingField("client_secret"));
        assert!(e
            .to_string()
            .starts_with("client secret file /etc/sasl-xoauth2.secret: "));
        assert!(e.to_string().contains("client_secret_file"), "{e}");
        for bad in [
            &b"two\nlines"[..],
            b"nul\0inside",
            b"\xff\xfe",
            &[b'x'; MAX_CLIENT_SECRET_LEN + 1],
        ] {
            let e = parse_client_secret(bad, p).unwrap_err();
            assert_eq!(e.kind, FileKind::ClientSecret);
            assert!(matches!(e.problem, Problem::BadField { .. }), "{e}");
            assert!(e.to_string().contains("alone"), "{e}");
        }
        assert!(parse_client_secret(&[b'x'; MAX_CLIENT_SECRET_LEN], p).is_ok());
        let e = load_client_secret(Path::new("/nonexistent.secret")).unwrap_err();
        assert_eq!(e.problem, Problem::Missing);
    }
}
