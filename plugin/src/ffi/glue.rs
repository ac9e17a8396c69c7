//! Safe wrappers over the libsasl2 utility table and client params.

use super::types::*;
use crate::log::{Level, Sink};
use common::Secret;
use std::ffi::{c_char, c_int, c_uint, c_ulong, c_void, CStr, CString};
use zeroize::Zeroizing;

/// Copy a C string that may be NULL.
///
/// # Safety
/// `p` is NULL or points to a NUL-terminated string valid for this call.
pub(super) unsafe fn opt_str(p: *const c_char) -> Option<String> {
    if p.is_null() {
        return None;
    }
    // SAFETY: non-NULL and NUL-terminated per this function's contract.
    let s = unsafe { CStr::from_ptr(p) };
    Some(s.to_string_lossy().into_owned())
}

/// Copy `len` bytes (or up to NUL when `len` is 0) from C memory.
///
/// # Safety
/// `p` is NULL or valid for `len` bytes (NUL-terminated when `len` is 0).
unsafe fn bytes_or_cstr(p: *const c_char, len: c_uint) -> Option<Zeroizing<Vec<u8>>> {
    if p.is_null() {
        return None;
    }
    if len == 0 {
        // SAFETY: NUL-terminated per contract when len is 0.
        let s = unsafe { CStr::from_ptr(p) };
        return Some(Zeroizing::new(s.to_bytes().to_vec()));
    }
    // SAFETY: valid for `len` bytes per contract.
    let s = unsafe { std::slice::from_raw_parts(p.cast::<u8>(), len as usize) };
    Some(Zeroizing::new(s.to_vec()))
}

/// Sends log lines to libsasl2's log callback (`utils->log`).
pub(super) struct SaslLog {
    pub utils: *const sasl_utils_t,
}

impl Sink for SaslLog {
    fn emit(&mut self, level: Level, msg: &str) {
        if self.utils.is_null() {
            return;
        }
        // SAFETY: non-NULL, and libsasl2 keeps utils valid until mech_free.
        let utils = unsafe { &*self.utils };
        let Some(log) = utils.log else { return };
        // Trace notes are only emitted when the admin asked for them
        // (always_log_to_syslog, log_full_trace_on_failure), and Postfix
        // shows nothing below SASL_LOG_WARN unless smtp runs verbose, which
        // would also log the AUTH line with the token. So notes go out as
        // warnings.
        let level = match level {
            Level::Error => SASL_LOG_ERR,
            Level::Warn | Level::Note => SASL_LOG_WARN,
        };
        let msg = CString::new(format!("sasl-xoauth2: {msg}").replace('\0', "\\0"))
            .expect("NULs were replaced");
        // SAFETY: a constant "%s" format with one C string argument, so no
        // format string from us or the server is ever interpreted.
        unsafe { log(utils.conn, level, c"%s".as_ptr(), msg.as_ptr()) };
    }
}

/// Result of asking the application for one credential.
pub(super) enum Ask {
    Got(Zeroizing<Vec<u8>>),
    /// The application wants to be prompted (no callback registered).
    Prompt,
    Failed(c_int),
}

/// Look up an answered interaction prompt.
///
/// # Safety
/// `prompts` is NULL or an array terminated by an entry with id
/// `SASL_CB_LIST_END`, with `result` valid for `len` bytes where set.
pub(super) unsafe fn prompt_result(prompts: *const sasl_interact_t, id: c_ulong) -> Option<Ask> {
    let mut p = prompts;
    if p.is_null() {
        return None;
    }
    loop {
        // SAFETY: p stays within the terminated array (contract above).
        let entry = unsafe { &*p };
        if entry.id == SASL_CB_LIST_END {
            return None;
        }
        if entry.id == id {
            // SAFETY: result is NULL or valid for len bytes (contract above).
            let value = unsafe { bytes_or_cstr(entry.result.cast(), entry.len) };
            return Some(match value {
                Some(v) => Ask::Got(v),
                None => Ask::Failed(SASL_BADPARAM),
            });
        }
        // SAFETY: not yet at the terminator, so the next entry exists.
        p = unsafe { p.add(1) };
    }
}

fn callback(
    utils: &sasl_utils_t,
    id: c_ulong,
) -> Result<(unsafe extern "C" fn() -> c_int, *mut c_void), Ask> {
    let Some(getcallback) = utils.getcallback else {
        return Err(Ask::Prompt);
    };
    let mut proc_: Option<unsafe extern "C" fn() -> c_int> = None;
    let mut context: *mut c_void = std::ptr::null_mut();
    // SAFETY: libsasl2's own lookup; both out-pointers are valid locals.
    let rc = unsafe { getcallback(utils.conn, id, &mut proc_, &mut context) };
    match (rc, proc_) {
        (SASL_OK, Some(p)) => Ok((p, context)),
        (SASL_INTERACT, _) | (SASL_OK, None) => Err(Ask::Prompt),
        (rc, _) => Err(Ask::Failed(rc)),
    }
}

/// The authentication name from the `SASL_CB_AUTHNAME` callback.
pub(super) fn ask_authname(utils: &sasl_utils_t) -> Ask {
    let (proc_, context) = match callback(utils, SASL_CB_AUTHNAME) {
        Ok(c) => c,
        Err(a) => return a,
    };
    // SAFETY: libsasl2 registered this proc for SASL_CB_AUTHNAME, whose
    // C type is sasl_getsimple_t.
    let getsimple: GetSimpleFn = unsafe { std::mem::transmute(proc_) };
    let mut result: *const c_char = std::ptr::null();
    let mut len: c_uint = 0;
    // SAFETY: calling the application's callback with valid out-pointers.
    let rc = unsafe { getsimple(context, SASL_CB_AUTHNAME as c_int, &mut result, &mut len) };
    if rc != SASL_OK {
        return Ask::Failed(rc);
    }
    // SAFETY: the callback returned SASL_OK, so result is NULL or valid
    // for len bytes (NUL-terminated when len is 0).
    match unsafe { bytes_or_cstr(result, len) } {
        Some(v) => Ask::Got(v),
        None => Ask::Failed(SASL_BADPARAM),
    }
}

/// The password from the `SASL_CB_PASS` callback.
pub(super) fn ask_password(utils: &sasl_utils_t) -> Ask {
    let (proc_, context) = match callback(utils, SASL_CB_PASS) {
        Ok(c) => c,
        Err(a) => return a,
    };
    // SAFETY: libsasl2 registered this proc for SASL_CB_PASS, whose C type
    // is sasl_getsecret_t.
    let getsecret: GetSecretFn = unsafe { std::mem::transmute(proc_) };
    let mut secret: *mut sasl_secret_t = std::ptr::null_mut();
    // SAFETY: calling the application's callback with valid out-pointers.
    let rc = unsafe { getsecret(utils.conn, context, SASL_CB_PASS as c_int, &mut secret) };
    if rc != SASL_OK || secret.is_null() {
        return Ask::Failed(if rc == SASL_OK { SASL_BADPARAM } else { rc });
    }
    // SAFETY: a sasl_secret_t holds `len` bytes in `data`; the application
    // keeps it alive for the duration of this step.
    let bytes = unsafe {
        let len = (*secret).len as usize;
        std::slice::from_raw_parts(std::ptr::addr_of!((*secret).data).cast::<u8>(), len)
    };
    Ask::Got(Zeroizing::new(bytes.to_vec()))
}

/// Interaction prompts we hand to the application; owned by the connection
/// until its next step or dispose.
pub(super) struct Prompts {
    entries: Box<[sasl_interact_t]>,
    _texts: Vec<CString>,
}

impl Prompts {
    pub fn new(ids: &[c_ulong]) -> Prompts {
        let texts: Vec<CString> = ids
            .iter()
            .map(|id| match *id {
                SASL_CB_AUTHNAME => c"Authentication name".to_owned(),
                _ => c"Password or token file path".to_owned(),
            })
            .collect();
        let entry = |id, prompt: *const c_char| sasl_interact_t {
            id,
            challenge: std::ptr::null(),
            prompt,
            defresult: std::ptr::null(),
            result: std::ptr::null(),
            len: 0,
        };
        let mut entries: Vec<sasl_interact_t> = ids
            .iter()
            .zip(&texts)
            .map(|(id, t)| entry(*id, t.as_ptr()))
            .collect();
        entries.push(entry(SASL_CB_LIST_END, std::ptr::null()));
        Prompts {
            entries: entries.into_boxed_slice(),
            _texts: texts,
        }
    }

    pub fn as_mut_ptr(&mut self) -> *mut sasl_interact_t {
        self.entries.as_mut_ptr()
    }

    pub fn as_ptr(&self) -> *const sasl_interact_t {
        self.entries.as_ptr()
    }
}

/// Decode gathered bytes as UTF-8 text.
pub(super) fn text(bytes: &[u8]) -> Option<String> {
    std::str::from_utf8(bytes).ok().map(str::to_owned)
}

pub(super) fn secret(bytes: &[u8]) -> Option<Secret> {
    std::str::from_utf8(bytes).ok().map(Secret::new)
}
