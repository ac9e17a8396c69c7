//! Everything that touches the C ABI or raw syscalls. All `unsafe` in the
//! plugin lives below this module, each block with its justification.
//!
//! Rules kept here: every exported function catches panics (nothing unwinds
//! into libsasl2 or Postfix); every pointer from C is checked for NULL before
//! use; the response buffer stays alive until the next step or dispose and is
//! zeroized then.

mod entry;
mod glue;
pub mod spawn;
pub mod types;

pub use entry::sasl_client_plug_init;

use crate::session::{Global, Refresher};
use common::Config;

/// Whether we run in secure-execution mode (setuid/setgid/capabilities
/// gained at exec), where the environment must not choose our config.
fn secure_execution() -> bool {
    // SAFETY: getauxval has no preconditions; it reads the auxiliary vector.
    unsafe { libc::getauxval(libc::AT_SECURE) != 0 }
}

/// Everything `sasl_client_plug_init` loads. Reads files only; never fails.
pub(crate) fn load_global() -> Global {
    let path =
        common::config::config_path(secure_execution(), std::env::var_os(common::CONFIG_ENV));
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
