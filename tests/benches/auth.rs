//! One full client authentication through the real libsasl2 with a valid
//! token file, against the floor of reading and parsing that file.
//!
//! `cargo bench -p sasl-xoauth2-tests --bench auth`

use criterion::{criterion_group, criterion_main, Criterion};
use std::ffi::{c_char, c_int, c_uint, c_void, CString};
use std::path::PathBuf;

#[repr(C)]
struct Callback {
    id: std::ffi::c_ulong,
    proc_: Option<unsafe extern "C" fn() -> c_int>,
    context: *mut c_void,
}

#[repr(C)]
struct Secret {
    len: std::ffi::c_ulong,
    data: [u8; 256],
}

#[link(name = "sasl2")]
extern "C" {
    fn sasl_client_init(callbacks: *const Callback) -> c_int;
    fn sasl_client_new(
        service: *const c_char,
        fqdn: *const c_char,
        local: *const c_char,
        remote: *const c_char,
        callbacks: *const Callback,
        flags: c_uint,
        conn: *mut *mut c_void,
    ) -> c_int;
    fn sasl_client_start(
        conn: *mut c_void,
        mechlist: *const c_char,
        prompt: *mut *mut c_void,
        out: *mut *const c_char,
        outlen: *mut c_uint,
        mech: *mut *const c_char,
    ) -> c_int;
    fn sasl_dispose(conn: *mut *mut c_void);
}

type AnyProc = unsafe extern "C" fn() -> c_int;
type SimpleFn = unsafe extern "C" fn(*mut c_void, c_int, *mut *const c_char, *mut c_uint) -> c_int;
type SecretFn = unsafe extern "C" fn(*mut c_void, *mut c_void, c_int, *mut *mut Secret) -> c_int;

static mut SECRET: Secret = Secret {
    len: 0,
    data: [0; 256],
};

unsafe extern "C" fn authname(
    _: *mut c_void,
    _: c_int,
    result: *mut *const c_char,
    len: *mut c_uint,
) -> c_int {
    // SAFETY: libsasl2 passes valid out-pointers.
    unsafe {
        *result = c"bench@example.com".as_ptr();
        if !len.is_null() {
            *len = 17;
        }
    }
    0
}

unsafe extern "C" fn password(
    _: *mut c_void,
    _: *mut c_void,
    _: c_int,
    out: *mut *mut Secret,
) -> c_int {
    // SAFETY: libsasl2 passes a valid out-pointer; SECRET is written once
    // before any authentication starts.
    unsafe { *out = std::ptr::addr_of_mut!(SECRET) };
    0
}

fn setup() -> (PathBuf, Vec<Callback>) {
    let dir = std::env::temp_dir().join(format!("sx2-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let token = dir.join("token.json");
    std::fs::write(
        &token,
        r#"{"access_token":"ya29.bench-access-token-0123456789abcdef0123456789abcdef","refresh_token":"1//bench-refresh","expiry":"9999999999"}"#,
    )
    .unwrap();
    let config = dir.join("sasl-xoauth2.conf");
    std::fs::write(&config, r#"{"client_id":"c","client_secret":"s"}"#).unwrap();
    std::env::set_var("SASL_PATH", testkit::sasl::plugin_dir());
    std::env::set_var("SASL_XOAUTH2_CONFIG", &config);
    set_password(token.to_str().unwrap().as_bytes());
    // SAFETY: transmuting typed callbacks to libsasl2's generic
    // `int (*)(void)`, which it casts back by id.
    let cbs = unsafe {
        vec![
            Callback {
                id: 0x4002,
                proc_: Some(std::mem::transmute::<SimpleFn, AnyProc>(authname)),
                context: std::ptr::null_mut(),
            },
            Callback {
                id: 0x4004,
                proc_: Some(std::mem::transmute::<SecretFn, AnyProc>(password)),
                context: std::ptr::null_mut(),
            },
            Callback {
                id: 0,
                proc_: None,
                context: std::ptr::null_mut(),
            },
        ]
    };
    (token, cbs)
}

fn bench(c: &mut Criterion) {
    let (token, cbs) = setup();
    // SAFETY: a valid, terminated callback list that outlives every use.
    assert_eq!(unsafe { sasl_client_init(cbs.as_ptr()) }, 0);
    let mech = CString::new("XOAUTH2").unwrap();

    c.bench_function("floor: read + serde_json::from_slice", |b| {
        b.iter(|| {
            let bytes = std::fs::read(&token).unwrap();
            let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
            std::hint::black_box(v);
        })
    });

    let auth = |b: &mut criterion::Bencher| {
        b.iter(|| {
            let mut conn = std::ptr::null_mut();
            let (mut out, mut outlen, mut chosen) = (std::ptr::null(), 0, std::ptr::null());
            // SAFETY: valid arguments per the libsasl2 API; conn is disposed below.
            unsafe {
                let rc = sasl_client_new(
                    c"smtp".as_ptr(),
                    c"smtp.example.com".as_ptr(),
                    std::ptr::null(),
                    std::ptr::null(),
                    cbs.as_ptr(),
                    0,
                    &mut conn,
                );
                assert_eq!(rc, 0);
                let rc = sasl_client_start(
                    conn,
                    mech.as_ptr(),
                    std::ptr::null_mut(),
                    &mut out,
                    &mut outlen,
                    &mut chosen,
                );
                assert_eq!(rc, 1, "SASL_CONTINUE expected");
                assert!(outlen > 40);
                sasl_dispose(&mut conn);
            }
        })
    };
    c.bench_function(
        "full XOAUTH2 auth via libsasl2 (new + start + dispose)",
        auth,
    );

    // The same with a bearer token as password: libsasl2's own share, no file.
    set_password(b"ya29.bench-access-token-0123456789abcdef0123456789abcdef");
    c.bench_function(
        "libsasl2 share: same auth, bearer password, no token file",
        auth,
    );
}

fn set_password(p: &[u8]) {
    // SAFETY: called while libsasl2 is not reading SECRET (setup, between benchmarks).
    unsafe {
        SECRET.len = p.len() as _;
        SECRET.data[..p.len()].copy_from_slice(p);
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
