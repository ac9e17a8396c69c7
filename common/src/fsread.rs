//! Reading a config or token file: the only I/O in this crate.
//!
//! The file is opened with `O_NOFOLLOW` (a symlink planted in a writable
//! directory cannot redirect us), `O_NONBLOCK` (a FIFO cannot hang the
//! caller), must be a regular file, and is read up to a cap.

use crate::error::{FileError, FileKind, Problem};
use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Open `path` for reading without following a final symlink, and check that
/// it is a regular file.
pub fn open_regular(path: &Path, kind: FileKind) -> Result<File, FileError> {
    open_sized(path, kind).map(|(file, _)| file)
}

/// [`open_regular`], also returning the file's size.
fn open_sized(path: &Path, kind: FileKind) -> Result<(File, u64), FileError> {
    let err = |p| FileError::new(kind, path, p);
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| err(open_problem(&e)))?;
    let meta = file
        .metadata()
        .map_err(|e| err(Problem::Unreadable(e.to_string())))?;
    let ft = meta.file_type();
    if !ft.is_file() {
        return Err(err(Problem::NotRegular(if ft.is_dir() {
            "a directory"
        } else {
            "a special file"
        })));
    }
    Ok((file, meta.len()))
}

/// Read the whole of a regular file of at most `cap` bytes.
pub fn read_capped(path: &Path, kind: FileKind, cap: u64) -> Result<Vec<u8>, FileError> {
    let (file, size) = open_sized(path, kind)?;
    let err = |p| FileError::new(kind, path, p);
    if size > cap {
        return Err(err(Problem::TooLarge(cap)));
    }
    // Sized once from fstat (this is on every authentication's path); the
    // cap still holds if the file grows meanwhile.
    let mut buf = Vec::with_capacity(size as usize + 1);
    file.take(cap + 1)
        .read_to_end(&mut buf)
        .map_err(|e| err(Problem::Unreadable(e.to_string())))?;
    if buf.len() as u64 > cap {
        return Err(err(Problem::TooLarge(cap)));
    }
    Ok(buf)
}

/// Read a config or token file (at most [`crate::MAX_FILE_SIZE`] bytes)
/// into memory that is wiped when dropped.
pub fn read_file(path: &Path, kind: FileKind) -> Result<zeroize::Zeroizing<Vec<u8>>, FileError> {
    read_capped(path, kind, crate::MAX_FILE_SIZE).map(zeroize::Zeroizing::new)
}

/// Read at most `cap` bytes from `r`; more is [`Problem::TooLarge`].
pub fn read_all_capped(r: impl Read, cap: u64) -> Result<Vec<u8>, Problem> {
    let mut buf = Vec::new();
    r.take(cap + 1)
        .read_to_end(&mut buf)
        .map_err(|e| Problem::Unreadable(e.to_string()))?;
    if buf.len() as u64 > cap {
        return Err(Problem::TooLarge(cap));
    }
    Ok(buf)
}

fn open_problem(e: &io::Error) -> Problem {
    match e.raw_os_error() {
        Some(libc::ENOENT) => Problem::Missing,
        Some(libc::ELOOP) => Problem::Symlink,
        _ => Problem::Unreadable(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_symlink_dir_fifo_and_huge() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        let real = d.join("real.json");
        std::fs::write(&real, b"{}").unwrap();
        std::os::unix::fs::symlink(&real, d.join("link.json")).unwrap();
        let big = d.join("big.json");
        std::fs::write(&big, vec![b' '; 70_000]).unwrap();
        let k = FileKind::Token;
        assert_eq!(read_capped(&real, k, 64).unwrap(), b"{}");
        assert_eq!(
            read_capped(&d.join("link.json"), k, 64)
                .unwrap_err()
                .problem,
            Problem::Symlink
        );
        assert_eq!(
            read_capped(d, k, 64).unwrap_err().problem,
            Problem::NotRegular("a directory")
        );
        assert_eq!(
            read_capped(&big, k, 65536).unwrap_err().problem,
            Problem::TooLarge(65536)
        );
        assert_eq!(
            Problem::TooLarge(4 << 20).to_string(),
            "is too large (over 4 MiB)"
        );
        assert_eq!(
            read_capped(&d.join("nope"), k, 64).unwrap_err().problem,
            Problem::Missing
        );
    }
}
