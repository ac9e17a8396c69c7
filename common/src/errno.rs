//! The C convention "-1 and errno" turned into `io::Result`, and the one
//! EINTR retry loop. Both are plain functions without `unsafe`; every crate's
//! `sys` module wraps its raw calls with them, so the error-checking style is
//! the same everywhere. Neither allocates (`io::Error::last_os_error` holds
//! the errno number inline), so the plugin's fork path may use them.

use std::io;

/// Return values of raw system calls that signal failure with -1.
pub trait MinusOne: Copy + PartialEq {
    const MINUS_ONE: Self;
}

macro_rules! minus_one {
    ($($t:ty)*) => { $(impl MinusOne for $t { const MINUS_ONE: Self = -1; })* };
}
minus_one!(i32 i64 isize);

/// `Err(errno)` when a raw call returned -1, else its value.
pub fn cerr<T: MinusOne>(r: T) -> io::Result<T> {
    if r == T::MINUS_ONE {
        Err(io::Error::last_os_error())
    } else {
        Ok(r)
    }
}

/// Run `call` until it fails with something other than EINTR.
pub fn retry_eintr<T>(mut call: impl FnMut() -> io::Result<T>) -> io::Result<T> {
    loop {
        match call() {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minus_one_is_an_error_and_others_pass() {
        assert_eq!(cerr(0i32).unwrap(), 0);
        assert_eq!(cerr(7isize).unwrap(), 7);
        assert_eq!(cerr(-2i64).unwrap(), -2);
        assert!(cerr(-1i32).is_err());
    }

    #[test]
    fn eintr_is_retried_other_errors_are_not() {
        let mut n = 0;
        let r = retry_eintr(|| {
            n += 1;
            if n < 3 {
                Err(io::Error::from(io::ErrorKind::Interrupted))
            } else {
                Ok(n)
            }
        });
        assert_eq!(r.unwrap(), 3);
        let mut m = 0;
        let r: io::Result<()> = retry_eintr(|| {
            m += 1;
            Err(io::Error::from(io::ErrorKind::WouldBlock))
        });
        assert!(r.is_err());
        assert_eq!(m, 1);
    }
}
