//! The built plugin (`libsasl_xoauth2.so`, as libsasl2 loads it into every
//! SASL client on the host) driven through the real system libsasl2:
//! `sasl_client_new`, `sasl_client_start` (credentials from callbacks or
//! from interaction prompts) and `sasl_client_step` with fuzzed server data,
//! over a fuzzed token file or a bearer token given as the password.
//!
//! libsasl2 finds the plugin through `SASL_PATH`, a private directory
//! holding only a link to the `.so` that `cargo fuzz build` made from
//! `plugin/` with the same instrumentation as this harness (or the file
//! `$SX2_PLUGIN_SO` names). The config names a `refresh_helper` that does
//! not exist, so the plugin has no helper and never spawns one: a token
//! that needs refreshing fails the exchange, as it would with the helper
//! missing, and nothing touches the network.
//!
//! Input: one flags byte, the token file (or the bearer token), NUL, then
//! server messages separated by NUL.
//!
//! Invariants: no crash, no sanitizer report, no panic (libFuzzer's panic
//! hook aborts even where the plugin would catch it); no child process
//! left behind; no log line libsasl2 receives repeats a
//! secret; the first response is framed (ends in `\x01\x01`).
#![no_main]

use fuzzkit::{planted_values, split, CLIENT_SECRET, MARK};
use libfuzzer_sys::fuzz_target;
use std::ffi::{c_char, c_int, c_uint, c_ulong, c_void, CStr, CString};
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

#[allow(non_camel_case_types)]
type sasl_conn_t = c_void;

#[repr(C)]
#[allow(non_camel_case_types)]
struct sasl_callback_t {
    id: c_ulong,
    proc_: Option<unsafe extern "C" fn() -> c_int>,
    context: *mut c_void,
}

#[repr(C)]
#[allow(non_camel_case_types)]
struct sasl_interact_t {
    id: c_ulong,
    challenge: *const c_char,
    prompt: *const c_char,
    defresult: *const c_char,
    result: *const c_void,
    len: c_uint,
}

#[repr(C)]
#[allow(non_camel_case_types)]
struct sasl_security_properties_t {
    min_ssf: c_uint,
    max_ssf: c_uint,
    maxbufsize: c_uint,
    security_flags: c_uint,
    property_names: *const *const c_char,
    property_values: *const *const c_char,
}

#[repr(C)]
#[allow(non_camel_case_types)]
struct sasl_secret_t {
    len: c_ulong,
    data: [u8; 1],
}

const SASL_OK: c_int = 0;
const SASL_CONTINUE: c_int = 1;
const SASL_INTERACT: c_int = 2;
const SASL_CB_LIST_END: c_ulong = 0;
const SASL_CB_LOG: c_ulong = 2;
const SASL_CB_USER: c_ulong = 0x4001;
const SASL_CB_AUTHNAME: c_ulong = 0x4002;
const SASL_CB_PASS: c_ulong = 0x4004;
const SASL_SEC_PROPS: c_int = 101;

#[link(name = "sasl2")]
extern "C" {
    fn sasl_client_init(callbacks: *const sasl_callback_t) -> c_int;
    fn sasl_client_new(
        service: *const c_char,
        server_fqdn: *const c_char,
        iplocalport: *const c_char,
        ipremoteport: *const c_char,
        prompt_supp: *const sasl_callback_t,
        flags: c_uint,
        pconn: *mut *mut sasl_conn_t,
    ) -> c_int;
    fn sasl_setprop(conn: *mut sasl_conn_t, propnum: c_int, value: *const c_void) -> c_int;
    fn sasl_client_start(
        conn: *mut sasl_conn_t,
        mechlist: *const c_char,
        prompt_need: *mut *mut sasl_interact_t,
        clientout: *mut *const c_char,
        clientoutlen: *mut c_uint,
        mech: *mut *const c_char,
    ) -> c_int;
    fn sasl_client_step(
        conn: *mut sasl_conn_t,
        serverin: *const c_char,
        serverinlen: c_uint,
        prompt_need: *mut *mut sasl_interact_t,
        clientout: *mut *const c_char,
        clientoutlen: *mut c_uint,
    ) -> c_int;
    fn sasl_dispose(pconn: *mut *mut sasl_conn_t);
}

const USER: &CStr = c"someone@example.com";

/// Log lines libsasl2 handed to the application in this iteration.
static LOG: Mutex<Vec<String>> = Mutex::new(Vec::new());
/// The password of this iteration (`sasl_secret_t`, malloc'd layout).
static SECRET: Mutex<Vec<u64>> = Mutex::new(Vec::new());

unsafe extern "C" fn log_cb(_ctx: *mut c_void, _level: c_int, msg: *const c_char) -> c_int {
    if !msg.is_null() {
        // SAFETY: libsasl2 passes a NUL-terminated message.
        let m = unsafe { CStr::from_ptr(msg) }
            .to_string_lossy()
            .into_owned();
        LOG.lock().unwrap().push(m);
    }
    SASL_OK
}

unsafe extern "C" fn user_cb(
    _ctx: *mut c_void,
    _id: c_int,
    result: *mut *const c_char,
    len: *mut c_uint,
) -> c_int {
    // SAFETY: libsasl2 passes a valid out-pointer; len may be NULL.
    unsafe {
        *result = USER.as_ptr();
        if !len.is_null() {
            *len = USER.to_bytes().len() as c_uint;
        }
    }
    SASL_OK
}

unsafe extern "C" fn pass_cb(
    _conn: *mut sasl_conn_t,
    _ctx: *mut c_void,
    _id: c_int,
    psecret: *mut *mut sasl_secret_t,
) -> c_int {
    // The buffer lives in SECRET until the next iteration replaces it.
    let p = SECRET.lock().unwrap().as_mut_ptr().cast::<sasl_secret_t>();
    // SAFETY: valid out-pointer from libsasl2.
    unsafe { *psecret = p };
    SASL_OK
}

fn cb(id: c_ulong, f: Option<unsafe extern "C" fn() -> c_int>) -> sasl_callback_t {
    sasl_callback_t {
        id,
        proc_: f,
        context: std::ptr::null_mut(),
    }
}

fn as_proc<T>(f: T) -> Option<unsafe extern "C" fn() -> c_int> {
    assert_eq!(std::mem::size_of::<T>(), std::mem::size_of::<usize>());
    // SAFETY: f is an extern "C" fn pointer; libsasl2 casts it back to the
    // type its id calls for, as C clients do.
    Some(unsafe { std::mem::transmute_copy(&f) })
}

struct Setup {
    token: PathBuf,
}

/// The built plugin: `$SX2_PLUGIN_SO`, else the `.so` cargo built beside
/// this harness.
fn plugin_so() -> PathBuf {
    if let Some(p) = std::env::var_os("SX2_PLUGIN_SO") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().expect("exe dir");
    [
        dir.join("libsasl_xoauth2.so"),
        dir.join("deps/libsasl_xoauth2.so"),
    ]
    .into_iter()
    .find(|p| p.exists())
    .unwrap_or_else(|| {
        panic!(
            "no libsasl_xoauth2.so beside {}; set SX2_PLUGIN_SO",
            exe.display()
        )
    })
}

fn setup() -> &'static Setup {
    static S: OnceLock<Setup> = OnceLock::new();
    S.get_or_init(|| {
        // scripts/fuzz points TMPDIR at a tmpfs directory it removes after.
        let base = std::env::temp_dir();
        let dir = base.join(format!("sx2-fuzz-abi-{}", std::process::id()));
        let plugins = dir.join("plugins");
        std::fs::create_dir_all(&plugins).expect("create the plugin dir");
        let link = plugins.join("libsasl-xoauth2.so");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(plugin_so(), &link).expect("link the plugin");
        let config = dir.join("sasl-xoauth2.conf");
        std::fs::write(
            &config,
            format!(
                r#"{{"client_id":"fuzz","client_secret":"{CLIENT_SECRET}",
                    "refresh_helper":"{}/no-such-helper",
                    "always_log_to_syslog":true}}"#,
                dir.display()
            ),
        )
        .expect("write the config");
        std::env::set_var("SASL_PATH", &plugins);
        std::env::set_var("SASL_XOAUTH2_CONFIG", &config);
        let global = [
            cb(
                SASL_CB_LOG,
                as_proc(log_cb as unsafe extern "C" fn(_, _, _) -> _),
            ),
            cb(SASL_CB_LIST_END, None),
        ];
        // libsasl2 keeps the pointer: leak the table.
        let global = Box::leak(Box::new(global));
        // SAFETY: a valid, terminated callback table that outlives the process.
        let rc = unsafe { sasl_client_init(global.as_ptr()) };
        assert_eq!(rc, SASL_OK, "sasl_client_init");
        Setup {
            token: dir.join("token.json"),
        }
    })
}

fn set_secret(bytes: &[u8]) {
    let words = (std::mem::size_of::<c_ulong>() + bytes.len() + 1).div_ceil(8);
    let mut buf = vec![0u64; words];
    // SAFETY: buf holds a c_ulong followed by bytes.len() + 1 bytes.
    unsafe {
        let p = buf.as_mut_ptr().cast::<sasl_secret_t>();
        (*p).len = bytes.len() as c_ulong;
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), (*p).data.as_mut_ptr(), bytes.len());
    }
    *SECRET.lock().unwrap() = buf;
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, rest)) = data.split_first() else {
        return;
    };
    let s = setup();
    let (token, mut rest) = split(rest, 0);
    let mech = if flags & 1 == 0 {
        c"XOAUTH2"
    } else {
        c"OAUTHBEARER"
    };
    let bearer = flags & 2 != 0;
    let by_prompt = flags & 4 != 0;
    let remote = if flags & 8 != 0 {
        c"192.0.2.1;587"
    } else {
        c"127.0.0.1;25"
    };
    let mut secrets = planted_values(token, &["access_token", "refresh_token", "client_secret"]);
    secrets.push(CLIENT_SECRET.to_string());
    let password: Vec<u8> = if bearer {
        if token.first() == Some(&b'/') || token.is_empty() {
            return;
        }
        let p = String::from_utf8_lossy(token);
        if p.contains(MARK) {
            secrets.push(p.into_owned());
        }
        token.to_vec()
    } else {
        std::fs::write(&s.token, token).expect("write the token file");
        s.token.to_string_lossy().into_owned().into_bytes()
    };
    set_secret(&password);
    LOG.lock().unwrap().clear();

    let with_creds = [
        cb(
            SASL_CB_AUTHNAME,
            as_proc(user_cb as unsafe extern "C" fn(_, _, _, _) -> _),
        ),
        cb(
            SASL_CB_USER,
            as_proc(user_cb as unsafe extern "C" fn(_, _, _, _) -> _),
        ),
        cb(
            SASL_CB_PASS,
            as_proc(pass_cb as unsafe extern "C" fn(_, _, _, _) -> _),
        ),
        cb(SASL_CB_LIST_END, None),
    ];
    // A NULL proc asks for the value through an interaction prompt.
    let by_prompts = [
        cb(SASL_CB_AUTHNAME, None),
        cb(SASL_CB_PASS, None),
        cb(SASL_CB_LIST_END, None),
    ];
    let cbs = if by_prompt {
        by_prompts.as_ptr()
    } else {
        with_creds.as_ptr()
    };
    let mut conn: *mut sasl_conn_t = std::ptr::null_mut();
    // SAFETY: valid strings and callback table (alive until sasl_dispose).
    let rc = unsafe {
        sasl_client_new(
            c"smtp".as_ptr(),
            c"smtp.example.com".as_ptr(),
            std::ptr::null(),
            remote.as_ptr(),
            cbs,
            0,
            &mut conn,
        )
    };
    assert_eq!(rc, SASL_OK, "sasl_client_new");
    let props = sasl_security_properties_t {
        min_ssf: 0,
        max_ssf: 256,
        maxbufsize: 0,
        security_flags: 0,
        property_names: std::ptr::null(),
        property_values: std::ptr::null(),
    };
    // SAFETY: conn from sasl_client_new; props copied by libsasl2.
    unsafe {
        sasl_setprop(
            conn,
            SASL_SEC_PROPS,
            (&props as *const sasl_security_properties_t).cast(),
        )
    };

    let mut interact: *mut sasl_interact_t = std::ptr::null_mut();
    let mut out: *const c_char = std::ptr::null();
    let mut outlen: c_uint = 0;
    let mut chosen: *const c_char = std::ptr::null();
    let answer_pw = CString::new(password.clone()).ok();
    let mut rc;
    let mut rounds = 0;
    loop {
        // SAFETY: all out-pointers are valid locals.
        rc = unsafe {
            sasl_client_start(
                conn,
                mech.as_ptr(),
                &mut interact,
                &mut out,
                &mut outlen,
                &mut chosen,
            )
        };
        if rc != SASL_INTERACT || rounds == 2 {
            break;
        }
        rounds += 1;
        // Answer the prompts (the password only if it has no NUL; else
        // leave it unanswered, which the plugin must refuse cleanly).
        let mut p = interact;
        // SAFETY: libsasl2/the plugin hand us a terminated prompt array.
        unsafe {
            while !p.is_null() && (*p).id != SASL_CB_LIST_END {
                let (ptr, len) = match (*p).id {
                    SASL_CB_PASS => match &answer_pw {
                        Some(c) => (c.as_ptr(), c.as_bytes().len()),
                        None => (std::ptr::null(), 0),
                    },
                    _ => (USER.as_ptr(), USER.to_bytes().len()),
                };
                (*p).result = ptr.cast();
                (*p).len = len as c_uint;
                p = p.add(1);
            }
        }
    }
    if rc == SASL_OK || rc == SASL_CONTINUE {
        assert!(!out.is_null() && outlen > 0, "no initial response");
        // SAFETY: libsasl2 returns outlen bytes at out.
        let first = unsafe { std::slice::from_raw_parts(out.cast::<u8>(), outlen as usize) };
        assert!(first.ends_with(b"\x01\x01"), "{first:?}");
        let mut steps = 0;
        while rc == SASL_CONTINUE && steps < 4 {
            let (msg, r) = split(rest, 0);
            rest = r;
            steps += 1;
            // SAFETY: msg is valid for its length for the call.
            rc = unsafe {
                sasl_client_step(
                    conn,
                    if msg.is_empty() {
                        std::ptr::null()
                    } else {
                        msg.as_ptr().cast()
                    },
                    msg.len() as c_uint,
                    &mut interact,
                    &mut out,
                    &mut outlen,
                )
            };
        }
    }
    // SAFETY: conn from sasl_client_new, disposed once.
    unsafe { sasl_dispose(&mut conn) };
    if std::env::var_os("SX2_FUZZ_DEBUG").is_some() {
        eprintln!("rc={rc} log={:?}", LOG.lock().unwrap());
    }

    // The config leaves the plugin without a refresher, so it cannot start
    // the helper; and no child of any kind is left behind. This counts every
    // child of the fuzzer, so run with -print_funcs=0 (as scripts/fuzz
    // does): libFuzzer's NEW_FUNC lines start llvm-symbolizer as a child.
    // SAFETY: waitpid with a NULL status pointer only queries children.
    let w = unsafe { libc::waitpid(-1, std::ptr::null_mut(), libc::WNOHANG) };
    assert!(
        w == -1 && std::io::Error::last_os_error().raw_os_error() == Some(libc::ECHILD),
        "a child process is left behind"
    );
    fuzzkit::assert_no_secret_in_lines("libsasl2 log line", &LOG.lock().unwrap(), &secrets);
});
