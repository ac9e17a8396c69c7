//! Builds the C programs the tests drive through the system libsasl2: a
//! SASL client and the ABI probe. They need <sasl/sasl.h> (Debian:
//! libsasl2-dev); without it the build fails here, loudly.

use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    for (src, exe, libs, env) in [
        (
            "c/saslclient.c",
            "saslclient",
            &["-lsasl2"][..],
            "SASLCLIENT_BIN",
        ),
        ("c/abi_probe.c", "abi_probe", &[][..], "ABI_PROBE_BIN"),
    ] {
        println!("cargo:rerun-if-changed={src}");
        let compiler = cc::Build::new().get_compiler();
        let bin = out.join(exe);
        let status = compiler
            .to_command()
            .args(["-Wall", "-O1", "-o"])
            .arg(&bin)
            .arg(src)
            .args(libs)
            .status()
            .expect("run the C compiler");
        assert!(
            status.success(),
            "building {src} failed: install the libsasl2 headers (Debian: apt-get install libsasl2-dev)"
        );
        println!("cargo:rustc-env={env}={}", bin.display());
    }
}
