//! The config handoff the helper reads from the plugin on its stdin, as
//! `run::load_handoff` handles it: `Handoff::decode`, then `Config::parse`
//! of the config inside, then the CA bundle (`http::Trust::from_pem`).
//!
//! Invariants: no panic; errors never quote the message (it holds the
//! client secret); a decoded handoff re-encodes to one that decodes to the
//! same values.
#![no_main]

use common::handoff::Handoff;
use common::Config;
use fuzzkit::assert_no_mark;
use libfuzzer_sys::fuzz_target;
use refresher::Trust;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let h = match Handoff::decode(data) {
        Ok(h) => h,
        Err(e) => {
            assert_no_mark("handoff error", &e);
            return;
        }
    };
    // Debug shows the path (not secret) and only the sizes of the rest.
    let path = format!("{:?}", h.config_path);
    assert_no_mark("handoff Debug", &format!("{h:?}").replace(&path, ""));
    let again = Handoff::decode(&h.encode()).expect("an encoded handoff decodes");
    assert_eq!(
        (&again.config_path, &again.config, &again.ca_pem),
        (&h.config_path, &h.config, &h.ca_pem)
    );
    match Config::parse(h.config.as_bytes(), Path::new(&h.config_path)) {
        Ok(c) => assert_eq!(c.path, Path::new(&h.config_path)),
        Err(e) => assert_no_mark("config error", &e.to_string().replace(&h.config_path, "")),
    }
    if !h.ca_pem.trim().is_empty() {
        match Trust::from_pem(h.ca_pem.as_bytes(), "the plugin's handoff") {
            Ok(t) => {
                let _ = t.describe();
            }
            Err(e) => assert_no_mark("CA error", &e),
        }
    }
});
