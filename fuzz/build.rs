//! `plugin_abi` dlopens (through libsasl2) the plugin `.so` built with the
//! same sanitizer and coverage instrumentation; that `.so` calls into the
//! ASan runtime and libFuzzer linked into the harness, so the harness must
//! export their symbols.
fn main() {
    println!("cargo:rustc-link-arg-bin=plugin_abi=-Wl,--export-dynamic");
}
