//! The readers of Postfix's configuration that `sasl-xoauth2-refresh
//! --check` uses (`check::postfix`): `postconf` (main.cf) output,
//! `postconf -M` (master.cf services), `postconf -P` (their `-o`
//! overrides), `import_environment`, and where the token file is opened
//! from inside or outside the chroot.
//!
//! Input: main.cf text, NUL, master.cf text, NUL, overrides text, NUL,
//! token path.
//!
//! Invariants: no panic; every smtp service appears in exactly one place;
//! a chrooted place lies inside the queue directory.
#![no_main]

use check::postfix::{
    chroot_default, import_environment, parse_master, parse_overrides, parse_params, places, View,
};
use fuzzkit::split;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let (main, rest) = split(data, 0);
    let (master, rest) = split(rest, 0);
    let (overrides, given) = split(rest, 0);
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    let params = parse_params(&text(main));
    let version = params.get("mail_version").cloned().unwrap_or_default();
    let _ = chroot_default(&version);
    let services = parse_master(&text(master), &version);
    for s in &services {
        assert!(s.name.ends_with("/unix"), "{s:?}");
    }
    let view = View {
        command: "postconf".into(),
        params,
        services,
        overrides: parse_overrides(&text(overrides)),
    };
    let _ = view.smtp_user();
    for name in ["SASL_PATH", "SASL_XOAUTH2_CONFIG", "MAIL_CONFIG"] {
        let _ = view.imported(name);
    }
    for (k, _) in import_environment(view.param("import_environment")) {
        assert!(!k.is_empty() || view.param("import_environment").contains('='));
    }
    for s in &view.services {
        let _ = view.param_for(&s.name, "smtp_sasl_mechanism_filter");
    }
    let given = text(given);
    let given = if given.starts_with('/') {
        given
    } else {
        format!("/etc/tokens/{given}")
    };
    let found = places(Path::new(&given), &view);
    let mut seen = 0;
    for p in &found {
        seen += p.services.len();
        if let Some(root) = &p.chroot {
            assert!(p.path.starts_with(root), "{p:?}");
        }
    }
    assert_eq!(seen, view.services.len());
});
