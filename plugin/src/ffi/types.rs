//! `#[repr(C)]` mirrors of the parts of `<sasl/sasl.h>` and
//! `<sasl/saslplug.h>` the plugin touches. Sizes and field offsets are
//! checked against the real headers by `tests/abi.rs` (via `abi_probe.c`).
#![allow(non_camel_case_types, missing_debug_implementations)]

use std::ffi::{c_char, c_int, c_uint, c_ulong, c_void};

pub type sasl_conn_t = c_void;
pub type sasl_ssf_t = c_uint;

pub const SASL_CONTINUE: c_int = 1;
pub const SASL_OK: c_int = 0;
pub const SASL_FAIL: c_int = -1;
pub const SASL_BADPROT: c_int = -5;
pub const SASL_BADPARAM: c_int = -7;
pub const SASL_INTERACT: c_int = 2;
pub const SASL_BADVERS: c_int = -23;

pub const SASL_CB_AUTHNAME: c_ulong = 0x4002;
pub const SASL_CB_PASS: c_ulong = 0x4004;
pub const SASL_CB_LIST_END: c_ulong = 0;

pub const SASL_LOG_ERR: c_int = 1;
pub const SASL_LOG_WARN: c_int = 3;

pub const SASL_SEC_NOPLAINTEXT: c_uint = 0x0001;
pub const SASL_SEC_NOANONYMOUS: c_uint = 0x0010;
pub const SASL_SEC_PASS_CREDENTIALS: c_uint = 0x0020;
pub const SASL_FEAT_WANT_CLIENT_FIRST: c_uint = 0x0002;
pub const SASL_FEAT_ALLOWS_PROXY: c_uint = 0x0020;
pub const SASL_CU_AUTHID: c_uint = 0x01;
pub const SASL_CU_AUTHZID: c_uint = 0x02;

pub const SASL_CLIENT_PLUG_VERSION: c_int = 4;

type Spare = Option<unsafe extern "C" fn() -> c_int>;
type AnyFn = Option<unsafe extern "C" fn()>;

pub type LogFn =
    unsafe extern "C" fn(conn: *mut sasl_conn_t, level: c_int, fmt: *const c_char, ...);
pub type GetCallbackFn = unsafe extern "C" fn(
    conn: *mut sasl_conn_t,
    id: c_ulong,
    pproc: *mut Option<unsafe extern "C" fn() -> c_int>,
    pcontext: *mut *mut c_void,
) -> c_int;
pub type GetSimpleFn = unsafe extern "C" fn(
    context: *mut c_void,
    id: c_int,
    result: *mut *const c_char,
    len: *mut c_uint,
) -> c_int;
pub type GetSecretFn = unsafe extern "C" fn(
    conn: *mut sasl_conn_t,
    context: *mut c_void,
    id: c_int,
    psecret: *mut *mut sasl_secret_t,
) -> c_int;
pub type CanonUserFn = unsafe extern "C" fn(
    conn: *mut sasl_conn_t,
    input: *const c_char,
    len: c_uint,
    flags: c_uint,
    oparams: *mut sasl_out_params_t,
) -> c_int;

#[repr(C)]
pub struct sasl_secret_t {
    pub len: c_ulong,
    pub data: [u8; 1],
}

#[repr(C)]
pub struct sasl_interact_t {
    pub id: c_ulong,
    pub challenge: *const c_char,
    pub prompt: *const c_char,
    pub defresult: *const c_char,
    pub result: *const c_void,
    pub len: c_uint,
}

#[repr(C)]
pub struct sasl_callback_t {
    pub id: c_ulong,
    pub proc_: Option<unsafe extern "C" fn() -> c_int>,
    pub context: *mut c_void,
}

#[repr(C)]
pub struct sasl_security_properties_t {
    pub min_ssf: sasl_ssf_t,
    pub max_ssf: sasl_ssf_t,
    pub maxbufsize: c_uint,
    pub security_flags: c_uint,
    pub property_names: *const *const c_char,
    pub property_values: *const *const c_char,
}

#[repr(C)]
pub struct sasl_utils_t {
    pub version: c_int,
    pub conn: *mut sasl_conn_t,
    pub rpool: *mut c_void,
    pub getopt_context: *mut c_void,
    pub getopt: AnyFn,
    pub malloc: Option<unsafe extern "C" fn(usize) -> *mut c_void>,
    pub calloc: AnyFn,
    pub realloc: AnyFn,
    pub free: Option<unsafe extern "C" fn(*mut c_void)>,
    pub mutex_alloc: AnyFn,
    pub mutex_lock: AnyFn,
    pub mutex_unlock: AnyFn,
    pub mutex_free: AnyFn,
    pub md5_init: AnyFn,
    pub md5_update: AnyFn,
    pub md5_final: AnyFn,
    pub hmac_md5: AnyFn,
    pub hmac_md5_init: AnyFn,
    pub hmac_md5_final: AnyFn,
    pub hmac_md5_precalc: AnyFn,
    pub hmac_md5_import: AnyFn,
    pub mkchal: AnyFn,
    pub utf8verify: AnyFn,
    pub rand: AnyFn,
    pub churn: AnyFn,
    pub checkpass: AnyFn,
    pub decode64: AnyFn,
    pub encode64: AnyFn,
    pub erasebuffer: AnyFn,
    pub getprop: AnyFn,
    pub setprop: AnyFn,
    pub getcallback: Option<GetCallbackFn>,
    pub log: Option<LogFn>,
    pub seterror: AnyFn,
    pub spare_fptr: AnyFn,
    pub prop_new: AnyFn,
    pub prop_dup: AnyFn,
    pub prop_request: AnyFn,
    pub prop_get: AnyFn,
    pub prop_getnames: AnyFn,
    pub prop_clear: AnyFn,
    pub prop_dispose: AnyFn,
    pub prop_format: AnyFn,
    pub prop_set: AnyFn,
    pub prop_setvals: AnyFn,
    pub prop_erase: AnyFn,
    pub auxprop_store: AnyFn,
    pub spare_fptr1: Spare,
    pub spare_fptr2: Spare,
}

#[repr(C)]
pub struct sasl_out_params_t {
    pub doneflag: c_uint,
    pub user: *const c_char,
    pub authid: *const c_char,
    pub ulen: c_uint,
    pub alen: c_uint,
    pub maxoutbuf: c_uint,
    pub mech_ssf: sasl_ssf_t,
    pub encode_context: *mut c_void,
    pub encode: AnyFn,
    pub decode_context: *mut c_void,
    pub decode: AnyFn,
    pub client_creds: *mut c_void,
    pub gss_peer_name: *const c_void,
    pub gss_local_name: *const c_void,
    pub cbindingname: *const c_char,
    pub spare_fptr1: Spare,
    pub spare_fptr2: Spare,
    pub cbindingdisp: c_uint,
    pub spare_int2: c_int,
    pub spare_int3: c_int,
    pub spare_int4: c_int,
    pub param_version: c_int,
}

#[repr(C)]
pub struct sasl_client_params_t {
    pub service: *const c_char,
    pub server_fqdn: *const c_char,
    pub client_fqdn: *const c_char,
    pub utils: *const sasl_utils_t,
    pub prompt_supp: *const sasl_callback_t,
    pub iplocalport: *const c_char,
    pub ipremoteport: *const c_char,
    pub servicelen: c_uint,
    pub slen: c_uint,
    pub clen: c_uint,
    pub iploclen: c_uint,
    pub ipremlen: c_uint,
    pub props: sasl_security_properties_t,
    pub external_ssf: sasl_ssf_t,
    pub gss_creds: *const c_void,
    pub cbinding: *const c_void,
    pub http_request: *const c_void,
    pub spare_ptr4: *mut c_void,
    pub canon_user: Option<CanonUserFn>,
    pub spare_fptr1: Spare,
    pub cbindingdisp: c_uint,
    pub log_level: c_int,
    pub spare_int3: c_int,
    pub flags: c_uint,
    pub param_version: c_int,
}

pub type MechNewFn = unsafe extern "C" fn(
    glob_context: *mut c_void,
    cparams: *mut sasl_client_params_t,
    conn_context: *mut *mut c_void,
) -> c_int;
pub type MechStepFn = unsafe extern "C" fn(
    conn_context: *mut c_void,
    cparams: *mut sasl_client_params_t,
    serverin: *const c_char,
    serverinlen: c_uint,
    prompt_need: *mut *mut sasl_interact_t,
    clientout: *mut *const c_char,
    clientoutlen: *mut c_uint,
    oparams: *mut sasl_out_params_t,
) -> c_int;
pub type MechDisposeFn =
    unsafe extern "C" fn(conn_context: *mut c_void, utils: *const sasl_utils_t);
pub type MechFreeFn = unsafe extern "C" fn(glob_context: *mut c_void, utils: *const sasl_utils_t);

#[repr(C)]
pub struct sasl_client_plug_t {
    pub mech_name: *const c_char,
    pub max_ssf: sasl_ssf_t,
    pub security_flags: c_uint,
    pub features: c_uint,
    pub required_prompts: *const c_ulong,
    pub glob_context: *mut c_void,
    pub mech_new: Option<MechNewFn>,
    pub mech_step: Option<MechStepFn>,
    pub mech_dispose: Option<MechDisposeFn>,
    pub mech_free: Option<MechFreeFn>,
    pub idle: AnyFn,
    pub spare_fptr1: Spare,
    pub spare_fptr2: Spare,
}

// SAFETY: the table holds only pointers to 'static C strings and function
// pointers; libsasl2 reads it and never writes through it.
unsafe impl Sync for sasl_client_plug_t {}
