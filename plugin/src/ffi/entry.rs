//! The functions libsasl2 calls: `sasl_client_plug_init` and the mechanism
//! table's `mech_new` / `mech_step` / `mech_dispose` / `mech_free`.

use super::glue::{self, Ask, Prompts, SaslLog};
use super::types::*;
use crate::mech::{Mechanism, ServerInfo, State};
use crate::session::{Credentials, Failure, Global, Outcome, Session};
use std::ffi::{c_char, c_int, c_uint, c_ulong, c_void, CStr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Mutex};
use zeroize::{Zeroize, Zeroizing};

/// The config and helper loaded at init; replaced by a later init.
static GLOBAL: Mutex<Option<Arc<Global>>> = Mutex::new(None);

const XOAUTH2: *mut c_void = std::ptr::without_provenance_mut(1);
const OAUTHBEARER: *mut c_void = std::ptr::without_provenance_mut(2);

const fn plug(name: &'static CStr, glob_context: *mut c_void) -> sasl_client_plug_t {
    sasl_client_plug_t {
        mech_name: name.as_ptr(),
        // Above LOGIN/PLAIN's 0 so that with `xoauth2,login` allowed,
        // libsasl2 deterministically prefers us.
        max_ssf: 60,
        // No SASL_SEC_NOPLAINTEXT: a bearer token is as good as a password
        // to whoever sees it, and this plugin cannot see whether the
        // connection is encrypted (Postfix never sets SASL_SSF_EXTERNAL), so
        // `smtp_sasl_security_options = noplaintext` must keep us off
        // unencrypted connections as it does PLAIN and LOGIN.
        security_flags: SASL_SEC_NOANONYMOUS | SASL_SEC_PASS_CREDENTIALS,
        features: SASL_FEAT_WANT_CLIENT_FIRST | SASL_FEAT_ALLOWS_PROXY,
        required_prompts: std::ptr::null(),
        glob_context,
        mech_new: Some(mech_new),
        mech_step: Some(mech_step),
        mech_dispose: Some(mech_dispose),
        mech_free: Some(mech_free),
        idle: None,
        spare_fptr1: None,
        spare_fptr2: None,
    }
}

static MECHS: [sasl_client_plug_t; 2] =
    [plug(c"XOAUTH2", XOAUTH2), plug(c"OAUTHBEARER", OAUTHBEARER)];

/// Run `f`, turning a panic into `SASL_FAIL`: nothing may unwind into C.
fn guard(f: impl FnOnce() -> c_int) -> c_int {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(SASL_FAIL)
}

/// libsasl2's entry point for client plugins.
///
/// Loads the config (or remembers why it could not) and offers XOAUTH2 and
/// OAUTHBEARER. It never fails because of our own config: libsasl2 loads
/// every plugin into every client on the host, and a failed init only shows
/// up later as an opaque "no worthy mechs found".
///
/// # Safety
/// Called by libsasl2 with valid out-pointers.
#[no_mangle]
pub unsafe extern "C" fn sasl_client_plug_init(
    _utils: *const sasl_utils_t,
    max_version: c_int,
    out_version: *mut c_int,
    pluglist: *mut *mut sasl_client_plug_t,
    plugcount: *mut c_int,
) -> c_int {
    guard(|| {
        if out_version.is_null() || pluglist.is_null() || plugcount.is_null() {
            return SASL_BADPARAM;
        }
        if max_version < SASL_CLIENT_PLUG_VERSION {
            return SASL_BADVERS;
        }
        let global = Arc::new(super::load_global());
        *GLOBAL.lock().unwrap_or_else(|p| p.into_inner()) = Some(global);
        // SAFETY: all three out-pointers were checked non-NULL above.
        // libsasl2 only reads the table, so handing out a *mut to the
        // immutable static is sound.
        unsafe {
            *out_version = SASL_CLIENT_PLUG_VERSION;
            *pluglist = MECHS.as_ptr().cast_mut();
            *plugcount = MECHS.len() as c_int;
        }
        SASL_OK
    })
}

/// Per-connection state behind libsasl2's `conn_context`.
struct Conn {
    session: Session,
    /// The last response; libsasl2 reads it after mech_step returns.
    out: Zeroizing<Vec<u8>>,
    prompts: Option<Prompts>,
}

unsafe extern "C" fn mech_new(
    glob_context: *mut c_void,
    cparams: *mut sasl_client_params_t,
    conn_context: *mut *mut c_void,
) -> c_int {
    guard(|| {
        if cparams.is_null() || conn_context.is_null() {
            return SASL_BADPARAM;
        }
        let mech = if glob_context == OAUTHBEARER {
            Mechanism::OAuthBearer
        } else {
            Mechanism::XOAuth2
        };
        let Some(global) = GLOBAL.lock().unwrap_or_else(|p| p.into_inner()).clone() else {
            return SASL_FAIL;
        };
        // SAFETY: cparams checked non-NULL; libsasl2 keeps it valid for the call.
        let params = unsafe { &*cparams };
        // SAFETY: libsasl2 passes NUL-terminated strings or NULL.
        let (fqdn, remote) = unsafe {
            (
                glue::opt_str(params.server_fqdn),
                glue::opt_str(params.ipremoteport),
            )
        };
        let conn = Box::new(Conn {
            session: Session::new(
                mech,
                global,
                ServerInfo::new(fqdn.as_deref(), remote.as_deref()),
            ),
            out: Zeroizing::new(Vec::new()),
            prompts: None,
        });
        // SAFETY: conn_context checked non-NULL; ownership of the box passes
        // to libsasl2 until mech_dispose.
        unsafe { *conn_context = Box::into_raw(conn).cast() };
        SASL_OK
    })
}

#[allow(clippy::too_many_arguments)]
unsafe extern "C" fn mech_step(
    conn_context: *mut c_void,
    cparams: *mut sasl_client_params_t,
    serverin: *const c_char,
    serverinlen: c_uint,
    prompt_need: *mut *mut sasl_interact_t,
    clientout: *mut *const c_char,
    clientoutlen: *mut c_uint,
    oparams: *mut sasl_out_params_t,
) -> c_int {
    guard(|| {
        if conn_context.is_null()
            || cparams.is_null()
            || clientout.is_null()
            || clientoutlen.is_null()
            || oparams.is_null()
        {
            return SASL_BADPARAM;
        }
        // SAFETY: conn_context is the Box<Conn> from mech_new (libsasl2 never
        // shares it between threads); the other pointers were checked
        // non-NULL and are valid for this call.
        let (conn, params, clientout, clientoutlen, oparams) = unsafe {
            (
                &mut *conn_context.cast::<Conn>(),
                &*cparams,
                &mut *clientout,
                &mut *clientoutlen,
                &mut *oparams,
            )
        };
        if params.utils.is_null() {
            return SASL_BADPARAM;
        }
        // SAFETY: checked non-NULL; valid until mech_free.
        let utils = unsafe { &*params.utils };
        *clientout = std::ptr::null();
        *clientoutlen = 0;
        conn.out.zeroize();
        let mut log = SaslLog { utils };
        let now = common::clock::unix_now();

        let outcome = if conn.session.state == State::Start {
            // SAFETY: prompt_need is NULL or points to the prompt array
            // pointer, which is ours (from a previous SASL_INTERACT) or NULL.
            let creds = match unsafe { gather(conn, utils, prompt_need) } {
                Ok(c) => c,
                Err(rc) => return rc,
            };
            let rc = canon_user(params, utils, &creds.user, oparams);
            if rc != SASL_OK {
                return rc;
            }
            conn.session.start(&creds, now, &mut log)
        } else {
            let data: &[u8] = if serverin.is_null() || serverinlen == 0 {
                &[]
            } else {
                // SAFETY: libsasl2 passes serverinlen valid bytes at serverin.
                unsafe { std::slice::from_raw_parts(serverin.cast::<u8>(), serverinlen as usize) }
            };
            conn.session.step(data, now, &mut log)
        };

        match outcome {
            Outcome::Send(bytes) => {
                conn.out = bytes;
                conn.out.reserve(1); // a valid, non-NULL pointer even when empty
                *clientout = conn.out.as_ptr().cast();
                *clientoutlen = conn.out.len() as c_uint;
                SASL_CONTINUE
            }
            Outcome::Done => {
                oparams.doneflag = 1;
                oparams.mech_ssf = 0;
                oparams.maxoutbuf = 0;
                oparams.encode_context = std::ptr::null_mut();
                oparams.encode = None;
                oparams.decode_context = std::ptr::null_mut();
                oparams.decode = None;
                oparams.param_version = 0;
                SASL_OK
            }
            // Not SASL_TRYAGAIN: Postfix would report its text "transient
            // failure (e.g., weak key)"; our log line has the real reason.
            Outcome::Failed(Failure::Local) => SASL_FAIL,
            Outcome::Failed(Failure::Protocol) => SASL_BADPROT,
        }
    })
}

/// Collect user name and password from answered prompts or callbacks;
/// `Err(SASL_INTERACT)` after setting up prompts when the application
/// wants to be asked.
///
/// # Safety
/// `prompt_need` is NULL or valid for reads and writes.
unsafe fn gather(
    conn: &mut Conn,
    utils: &sasl_utils_t,
    prompt_need: *mut *mut sasl_interact_t,
) -> Result<Credentials, c_int> {
    let answered = conn
        .prompts
        .as_ref()
        .map_or(std::ptr::null(), Prompts::as_ptr);
    // SAFETY: `answered` is NULL or our own terminated prompt array, whose
    // result fields the application filled in.
    let from_prompt = |id| unsafe { glue::prompt_result(answered, id) };
    let user = from_prompt(SASL_CB_AUTHNAME).unwrap_or_else(|| glue::ask_authname(utils));
    let pass = from_prompt(SASL_CB_PASS).unwrap_or_else(|| glue::ask_password(utils));
    conn.prompts = None;
    if !prompt_need.is_null() {
        // SAFETY: checked non-NULL; the array it pointed to (ours) is gone.
        unsafe { *prompt_need = std::ptr::null_mut() };
    }
    let mut log = SaslLog { utils };
    let mut need: Vec<c_ulong> = Vec::new();
    for (id, ask) in [(SASL_CB_AUTHNAME, &user), (SASL_CB_PASS, &pass)] {
        match ask {
            Ask::Prompt => need.push(id),
            Ask::Failed(rc) => {
                let what = if id == SASL_CB_PASS {
                    "password"
                } else {
                    "user name"
                };
                conn.session.trace.fail(
                    &mut log,
                    &format!(
                        "{}: the application gave no {what} (SASL code {rc})",
                        conn.session.mech.name()
                    ),
                );
                return Err(*rc);
            }
            Ask::Got(_) => {}
        }
    }
    if !need.is_empty() {
        if prompt_need.is_null() {
            conn.session.trace.fail(&mut log, &format!("{}: no user name or password callback, and the application does not take prompts", conn.session.mech.name()));
            return Err(SASL_BADPARAM);
        }
        let mut prompts = Prompts::new(&need);
        // SAFETY: checked non-NULL above; the array lives in `conn` until the
        // next step or dispose.
        unsafe { *prompt_need = prompts.as_mut_ptr() };
        conn.prompts = Some(prompts);
        return Err(SASL_INTERACT);
    }
    let (Ask::Got(user), Ask::Got(pass)) = (user, pass) else {
        unreachable!("all asks are Got here");
    };
    match (glue::text(&user), glue::secret(&pass)) {
        (Some(user), Some(password)) => Ok(Credentials { user, password }),
        _ => {
            conn.session.trace.fail(
                &mut log,
                &format!(
                    "{}: user name or password is not UTF-8",
                    conn.session.mech.name()
                ),
            );
            Err(SASL_BADPARAM)
        }
    }
}

fn canon_user(
    params: &sasl_client_params_t,
    utils: &sasl_utils_t,
    user: &str,
    oparams: &mut sasl_out_params_t,
) -> c_int {
    let Some(canon) = params.canon_user else {
        return SASL_BADPARAM;
    };
    let Ok(len) = c_uint::try_from(user.len()) else {
        return SASL_BADPARAM;
    };
    // SAFETY: libsasl2's canon_user copies `len` bytes from `user`; utils
    // and oparams are valid for this call.
    unsafe {
        canon(
            utils.conn,
            user.as_ptr().cast(),
            len,
            SASL_CU_AUTHID | SASL_CU_AUTHZID,
            oparams,
        )
    }
}

unsafe extern "C" fn mech_dispose(conn_context: *mut c_void, _utils: *const sasl_utils_t) {
    let _ = guard(|| {
        if !conn_context.is_null() {
            // SAFETY: the pointer came from Box::into_raw in mech_new and
            // libsasl2 disposes each connection once.
            drop(unsafe { Box::from_raw(conn_context.cast::<Conn>()) });
        }
        SASL_OK
    });
}

unsafe extern "C" fn mech_free(_glob_context: *mut c_void, _utils: *const sasl_utils_t) {
    let _ = guard(|| {
        GLOBAL.lock().unwrap_or_else(|p| p.into_inner()).take();
        SASL_OK
    });
}
