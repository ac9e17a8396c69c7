//! Where the binaries under test are.
//!
//! `env!("CARGO_BIN_EXE_<name>")` only works for binaries of the package
//! whose tests are running, and `cargo test -p sasl-xoauth2-tests` does not
//! build the other packages' binaries. So [`binary`] does, once per test
//! process:
//!
//! 1. If `SASL_XOAUTH2_BIN_DIR` is set, the binary is taken from there as is
//!    (e.g. to test the static release build: `SASL_XOAUTH2_BIN_DIR=
//!    target/x86_64-unknown-linux-gnu/release`); it must exist.
//! 2. Otherwise it runs `cargo build -p <package> --bin <name>` with the
//!    same profile, target directory (and `--target`, if any) as the
//!    running test binary, so the tests always run the current code, and
//!    returns `<target>/<profile>/<name>`. A failed build fails the test,
//!    loudly, with cargo's output.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

/// Environment variable naming a directory of prebuilt binaries.
pub const BIN_DIR_ENV: &str = "SASL_XOAUTH2_BIN_DIR";

/// The refresh helper (`sasl-xoauth2-refresh`).
pub fn refresh_helper() -> PathBuf {
    binary("sasl-xoauth2-refresh", "sasl-xoauth2-refresh")
}

/// The tool (`sasl-xoauth2-tool`).
pub fn tool() -> PathBuf {
    binary("sasl-xoauth2-tool", "sasl-xoauth2-tool")
}

/// The fake provider binary of this crate.
pub fn fake_provider() -> PathBuf {
    binary("sasl-xoauth2-tests", "fake-provider")
}

/// Layout of the running test binary: `<target>/[<triple>/]<profile>/deps/<exe>`.
struct Layout {
    target_dir: PathBuf,
    triple: Option<String>,
    profile: String,
    profile_dir: PathBuf,
}

fn layout() -> Layout {
    let exe = std::env::current_exe().expect("current_exe");
    let mut dir = exe.parent().expect("exe dir").to_path_buf();
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.pop();
    }
    let profile_dir = dir;
    let profile = profile_dir
        .file_name()
        .expect("profile dir")
        .to_string_lossy()
        .into_owned();
    let up = profile_dir.parent().expect("target dir").to_path_buf();
    let is_target_root =
        |d: &Path| d.join("CACHEDIR.TAG").exists() || d.join(".rustc_info.json").exists();
    let (target_dir, triple) = if is_target_root(&up) {
        (up, None)
    } else {
        let triple = up.file_name().map(|n| n.to_string_lossy().into_owned());
        (up.parent().expect("target dir").to_path_buf(), triple)
    };
    Layout {
        target_dir,
        triple,
        profile,
        profile_dir,
    }
}

/// The workspace root (parent of this crate's manifest directory).
pub fn workspace_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
}

/// Path of binary `name` of `package`, built if needed (see module docs).
pub fn binary(package: &str, name: &str) -> PathBuf {
    if let Some(dir) = std::env::var_os(BIN_DIR_ENV) {
        let p = PathBuf::from(dir).join(name);
        assert!(
            p.is_file(),
            "{BIN_DIR_ENV} is set but {} does not exist",
            p.display()
        );
        return p;
    }
    static BUILT: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let built = BUILT.get_or_init(Default::default);
    let mut built = built.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(p) = built.get(name) {
        return p.clone();
    }
    let l = layout();
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    without_test_env(&mut cmd);
    cmd.current_dir(workspace_root())
        .args(["build", "--quiet", "-p", package, "--bin", name])
        .env("CARGO_TARGET_DIR", &l.target_dir);
    match l.profile.as_str() {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    if let Some(t) = &l.triple {
        cmd.args(["--target", t]);
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo to build {name}: {e}"));
    assert!(
        out.status.success(),
        "building {name} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let p = l.profile_dir.join(name);
    assert!(p.is_file(), "{} missing after the build", p.display());
    built.insert(name.to_string(), p.clone());
    p
}

/// Drop what cargo set for this test process (package name, OUT_DIR...)
/// from a nested build: build scripts that watch those variables (ring's
/// does) would see a change and rebuild, here and again in the next outer
/// `cargo test`.
pub fn without_test_env(cmd: &mut Command) -> &mut Command {
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        if k == "OUT_DIR"
            || k.starts_with("CARGO_PKG_")
            || k.starts_with("CARGO_BIN_")
            || k.starts_with("CARGO_MANIFEST_")
            || k.starts_with("CARGO_CRATE_")
            || k.starts_with("CARGO_CFG_")
            || k == "CARGO_PRIMARY_PACKAGE"
            || k == "CARGO_TARGET_TMPDIR"
            || k == "CARGO_RUSTC_CURRENT_DIR"
        {
            cmd.env_remove(k.as_ref());
        }
    }
    cmd
}
