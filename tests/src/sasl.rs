//! Driving the real libsasl2 with the built plugin: the C test client
//! (`c/saslclient.c`) and `saslpluginviewer`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// Directory of the cargo profile the tests were built in (`target/debug`).
pub fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    // target/<profile>/deps/<test-binary>
    exe.parent()
        .and_then(Path::parent)
        .expect("test binary lives in target/<profile>/deps")
        .to_path_buf()
}

/// A directory holding only `libsasl-xoauth2.so` (the freshly built plugin
/// under its installed name, as a symlink), for `SASL_PATH`. One fixed
/// directory per profile: the link is replaced atomically, so concurrent
/// test processes can share it and nothing piles up.
pub fn plugin_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let profile = profile_dir();
        let built = [
            profile.join("libsasl_xoauth2.so"),
            profile.join("deps/libsasl_xoauth2.so"),
        ]
        .into_iter()
        .filter(|p| p.exists())
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
        .expect("libsasl_xoauth2.so not built: run `cargo build -p sasl-xoauth2-plugin`");
        let dir = profile.join("sasl-plugin-dir");
        std::fs::create_dir_all(&dir).unwrap();
        let tmp = dir.join(format!(".link-{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&built, &tmp).unwrap();
        std::fs::rename(&tmp, dir.join("libsasl-xoauth2.so")).unwrap();
        dir
    })
}

/// What one run of the C client printed.
#[derive(Debug)]
pub struct ClientRun {
    pub stdout: String,
    pub stderr: String,
}

impl ClientRun {
    /// The `rc=` of the line starting with `prefix` (`start` or `step`),
    /// nth occurrence.
    pub fn rc(&self, prefix: &str, nth: usize) -> Option<i32> {
        self.lines(prefix)
            .nth(nth)
            .and_then(|l| l.split_whitespace().find_map(|w| w.strip_prefix("rc=")))
            .and_then(|v| v.parse().ok())
    }

    /// The bytes of `out=` on the nth line starting with `prefix`; `None`
    /// when the client printed `(null)`.
    pub fn out(&self, prefix: &str, nth: usize) -> Option<Vec<u8>> {
        let line = self.lines(prefix).nth(nth)?;
        let hex = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("out="))?;
        if hex.ends_with("(null)") {
            return None;
        }
        Some(
            (0..hex.len() / 2)
                .map(|i| u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).unwrap())
                .collect(),
        )
    }

    fn lines<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.stdout
            .lines()
            .filter(move |l| l.split_whitespace().next() == Some(prefix))
    }

    /// Log lines libsasl2 passed to the client's log callback.
    pub fn log(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.starts_with("log["))
            .collect()
    }

    /// Panics if any of `secrets` appears in anything the client printed
    /// other than the hex dumps of the exchanged bytes.
    pub fn assert_no_secret(&self, secrets: &[&str]) {
        for s in secrets {
            assert!(
                !self.stderr.contains(s),
                "secret {s:?} in stderr:\n{}",
                self.stderr
            );
            assert!(
                !self.stdout.contains(s),
                "secret {s:?} in stdout:\n{}",
                self.stdout
            );
        }
    }
}

/// The C test client (`c/saslclient.c`), e.g. to run it under strace the
/// way [`run_client`] runs it.
pub fn client_bin() -> &'static Path {
    Path::new(env!("SASLCLIENT_BIN"))
}

/// Run the C client against the built plugin with `config` as the config
/// file path.
pub fn run_client(config: &Path, args: &[&str]) -> ClientRun {
    run_client_with(plugin_dir(), config, args)
}

/// [`run_client`] with the plugin loaded from `sasl_path` (e.g. an
/// installed copy).
pub fn run_client_with(sasl_path: &Path, config: &Path, args: &[&str]) -> ClientRun {
    let out = Command::new(client_bin())
        .args(args)
        .env_clear()
        .env("SASL_PATH", sasl_path)
        .env("SASL_XOAUTH2_CONFIG", config)
        .output()
        .expect("run saslclient");
    assert!(out.status.success(), "saslclient failed: {out:?}");
    ClientRun {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Hex of `bytes`, for `--step`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
