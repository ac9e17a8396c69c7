//! The libsasl2 C ABI: the entry points, the types, the callbacks. With
//! `sys` (raw system calls) the only code allowed `unsafe`; each block says
//! just above it why it is sound.
//!
//! Rules kept here: every exported function catches panics (nothing unwinds
//! into libsasl2 or Postfix); every pointer from C is checked for NULL before
//! use; the response buffer stays alive until the next step or dispose and is
//! zeroized then.

mod entry;
mod glue;
pub mod types;

pub use entry::sasl_client_plug_init;

use crate::session::{Global, Refresher};
use common::Config;

/// Everything `sasl_client_plug_init` loads. Reads files only; never fails.
pub(crate) fn load_global() -> Global {
    let path = common::config::config_path(
        crate::sys::secure_execution(),
        std::env::var_os(common::CONFIG_ENV),
    );
    let bytes = common::fsread::read_file(&path, common::error::FileKind::Config);
    let config = bytes
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|b| Config::parse(b, &path));
    let refresher: Result<Box<dyn Refresher>, String> = match (&config, &bytes) {
        (Ok(c), Ok(b)) => {
            crate::helper::Helper::load(c, b).map(|h| Box::new(h) as Box<dyn Refresher>)
        }
        _ => Err("the config could not be loaded".into()),
    };
    Global::new(config, refresher)
}
