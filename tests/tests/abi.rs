//! The plugin's `#[repr(C)]` mirrors match the real <sasl/saslplug.h>.

use sasl_xoauth2::ffi::types::*;
use std::collections::HashMap;
use std::mem::{offset_of, size_of};

fn probe() -> HashMap<String, usize> {
    let out = std::process::Command::new(env!("ABI_PROBE_BIN"))
        .output()
        .unwrap();
    assert!(out.status.success());
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let mut w = l.split_whitespace();
            let (_, name, v) = (w.next(), w.next().unwrap(), w.next().unwrap());
            (name.to_string(), v.parse().unwrap())
        })
        .collect()
}

#[test]
fn layouts_match_the_c_headers() {
    let c = probe();
    let mut checked = 0;
    let mut check = |name: &str, rust: usize| {
        assert_eq!(c.get(name).copied(), Some(rust), "{name}");
        checked += 1;
    };
    check("sasl_secret_t", size_of::<sasl_secret_t>());
    check("sasl_secret_t.data", offset_of!(sasl_secret_t, data));
    check("sasl_interact_t", size_of::<sasl_interact_t>());
    check(
        "sasl_interact_t.result",
        offset_of!(sasl_interact_t, result),
    );
    check("sasl_interact_t.len", offset_of!(sasl_interact_t, len));
    check("sasl_callback_t", size_of::<sasl_callback_t>());
    check(
        "sasl_callback_t.context",
        offset_of!(sasl_callback_t, context),
    );
    check(
        "sasl_security_properties_t",
        size_of::<sasl_security_properties_t>(),
    );
    check("sasl_utils_t", size_of::<sasl_utils_t>());
    check("sasl_utils_t.conn", offset_of!(sasl_utils_t, conn));
    check("sasl_utils_t.malloc", offset_of!(sasl_utils_t, malloc));
    check("sasl_utils_t.free", offset_of!(sasl_utils_t, free));
    check(
        "sasl_utils_t.getcallback",
        offset_of!(sasl_utils_t, getcallback),
    );
    check("sasl_utils_t.log", offset_of!(sasl_utils_t, log));
    check(
        "sasl_utils_t.spare_fptr2",
        offset_of!(sasl_utils_t, spare_fptr2),
    );
    check("sasl_out_params_t", size_of::<sasl_out_params_t>());
    check(
        "sasl_out_params_t.doneflag",
        offset_of!(sasl_out_params_t, doneflag),
    );
    check(
        "sasl_out_params_t.maxoutbuf",
        offset_of!(sasl_out_params_t, maxoutbuf),
    );
    check(
        "sasl_out_params_t.mech_ssf",
        offset_of!(sasl_out_params_t, mech_ssf),
    );
    check(
        "sasl_out_params_t.encode",
        offset_of!(sasl_out_params_t, encode),
    );
    check(
        "sasl_out_params_t.decode",
        offset_of!(sasl_out_params_t, decode),
    );
    check(
        "sasl_out_params_t.param_version",
        offset_of!(sasl_out_params_t, param_version),
    );
    check("sasl_client_params_t", size_of::<sasl_client_params_t>());
    check(
        "sasl_client_params_t.utils",
        offset_of!(sasl_client_params_t, utils),
    );
    check(
        "sasl_client_params_t.ipremoteport",
        offset_of!(sasl_client_params_t, ipremoteport),
    );
    check(
        "sasl_client_params_t.props",
        offset_of!(sasl_client_params_t, props),
    );
    check(
        "sasl_client_params_t.canon_user",
        offset_of!(sasl_client_params_t, canon_user),
    );
    check(
        "sasl_client_params_t.flags",
        offset_of!(sasl_client_params_t, flags),
    );
    check(
        "sasl_client_params_t.param_version",
        offset_of!(sasl_client_params_t, param_version),
    );
    check("sasl_client_plug_t", size_of::<sasl_client_plug_t>());
    check(
        "sasl_client_plug_t.max_ssf",
        offset_of!(sasl_client_plug_t, max_ssf),
    );
    check(
        "sasl_client_plug_t.features",
        offset_of!(sasl_client_plug_t, features),
    );
    check(
        "sasl_client_plug_t.glob_context",
        offset_of!(sasl_client_plug_t, glob_context),
    );
    check(
        "sasl_client_plug_t.mech_step",
        offset_of!(sasl_client_plug_t, mech_step),
    );
    check(
        "sasl_client_plug_t.mech_free",
        offset_of!(sasl_client_plug_t, mech_free),
    );
    check(
        "sasl_client_plug_t.idle",
        offset_of!(sasl_client_plug_t, idle),
    );
    check(
        "sasl_client_plug_t.spare_fptr2",
        offset_of!(sasl_client_plug_t, spare_fptr2),
    );
    assert_eq!(checked, c.len(), "every probed value is compared");
}
