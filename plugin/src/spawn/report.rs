//! The supervisor's report to the host: how the helper ended and the first
//! bytes of its stdout and stderr, sent once over a pipe. Fixed layout,
//! integers little-endian:
//!
//! ```text
//!   tag: u8 | code: i32 | out_len: u32 | out | err_len: u32 | err
//!   tag 1 exited (code = exit status), 2 killed (code = signal),
//!       3 timed out, 4 status unknown
//! ```
//!
//! [`encode`] runs in the supervisor and so does not allocate; [`decode`]
//! runs in the host.

/// Bytes of each output stream kept; the rest is read and dropped.
pub(crate) const CAPTURE: usize = 4096;

/// How the helper ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Termination {
    Exited(i32),
    Signaled(i32),
    /// No result in time (the host stopped waiting; the supervisor kills
    /// the helper only at its much later safety deadline).
    TimedOut,
    /// Status unknown: the supervisor's poll or waitpid failed, or no
    /// complete report arrived (the supervisor died or could not fork the
    /// helper).
    Unknown,
}

/// The helper's end and the first bytes of its output.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Finished {
    pub how: Termination,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Finished {
    /// An end the host saw without a report.
    pub(crate) fn without_output(how: Termination) -> Finished {
        Finished {
            how,
            stdout: Vec::new(),
            stderr: Vec::new(),
        }
    }
}

/// Hand the report to `emit` piece by piece, in order. No allocation.
/// `out` and `err` are at most [`CAPTURE`] bytes each.
pub(crate) fn encode(how: Termination, out: &[u8], err: &[u8], mut emit: impl FnMut(&[u8])) {
    let (tag, code): (u8, i32) = match how {
        Termination::Exited(c) => (1, c),
        Termination::Signaled(s) => (2, s),
        Termination::TimedOut => (3, 0),
        Termination::Unknown => (4, 0),
    };
    let mut head = [0u8; 9];
    head[0] = tag;
    head[1..5].copy_from_slice(&code.to_le_bytes());
    head[5..9].copy_from_slice(&(out.len() as u32).to_le_bytes());
    emit(&head);
    emit(out);
    emit(&(err.len() as u32).to_le_bytes());
    emit(err);
}

/// The report in `b`, or `None` when it is incomplete (the supervisor died
/// or the host stopped reading early). An unknown tag reads as
/// [`Termination::Unknown`].
pub(crate) fn decode(b: &[u8]) -> Option<Finished> {
    let (&tag, rest) = b.split_first()?;
    let (code, rest) = take4(rest)?;
    let code = i32::from_le_bytes(code);
    let how = match tag {
        1 => Termination::Exited(code),
        2 => Termination::Signaled(code),
        3 => Termination::TimedOut,
        _ => Termination::Unknown,
    };
    let (stdout, rest) = take_counted(rest)?;
    let (stderr, _) = take_counted(rest)?;
    Some(Finished {
        how,
        stdout: stdout.to_vec(),
        stderr: stderr.to_vec(),
    })
}

fn take4(b: &[u8]) -> Option<([u8; 4], &[u8])> {
    let (head, rest) = b.split_at_checked(4)?;
    Some((head.try_into().ok()?, rest))
}

/// A 4-byte length, then that many bytes.
fn take_counted(b: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = take4(b)?;
    rest.split_at_checked(usize::try_from(u32::from_le_bytes(len)).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encoded(how: Termination, out: &[u8], err: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        encode(how, out, err, |piece| v.extend_from_slice(piece));
        v
    }

    #[test]
    fn every_end_round_trips_with_its_output() {
        let full = [b'x'; CAPTURE];
        for how in [
            Termination::Exited(0),
            Termination::Exited(75),
            Termination::Exited(-1),
            Termination::Signaled(libc::SIGSYS),
            Termination::TimedOut,
            Termination::Unknown,
        ] {
            for (out, err) in [
                (&b""[..], &b""[..]),
                (b"ok: refreshed\n", b""),
                (b"", b"error: bad\n"),
                (&full[..], &full[..]),
            ] {
                let got = decode(&encoded(how, out, err)).expect("complete report");
                assert_eq!(
                    got,
                    Finished {
                        how,
                        stdout: out.to_vec(),
                        stderr: err.to_vec()
                    }
                );
            }
        }
    }

    #[test]
    fn layout_is_fixed_little_endian() {
        assert_eq!(
            encoded(Termination::Exited(75), b"ab", b"c"),
            [1, 75, 0, 0, 0, 2, 0, 0, 0, b'a', b'b', 1, 0, 0, 0, b'c']
        );
        assert_eq!(
            encoded(Termination::Signaled(9), b"", b""),
            [2, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(encoded(Termination::TimedOut, b"", b"")[0], 3);
        assert_eq!(encoded(Termination::Unknown, b"", b"")[0], 4);
    }

    #[test]
    fn every_truncated_report_is_none() {
        let whole = encoded(Termination::Exited(1), b"out", b"err");
        for cut in 0..whole.len() {
            assert_eq!(decode(&whole[..cut]), None, "cut at {cut}");
        }
    }

    #[test]
    fn lengths_past_the_end_are_none_not_a_panic() {
        let mut b = vec![1, 0, 0, 0, 0];
        b.extend_from_slice(&u32::MAX.to_le_bytes());
        b.extend_from_slice(b"short");
        assert_eq!(decode(&b), None);
        let mut b = encoded(Termination::Exited(0), b"out", b"");
        let n = b.len();
        b[n - 4..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode(&b), None);
    }

    #[test]
    fn an_unknown_tag_is_an_unknown_end() {
        let mut b = encoded(Termination::Exited(3), b"o", b"e");
        for tag in [0, 5, 255] {
            b[0] = tag;
            let got = decode(&b).unwrap();
            assert_eq!(got.how, Termination::Unknown);
            assert_eq!((&got.stdout[..], &got.stderr[..]), (&b"o"[..], &b"e"[..]));
        }
    }
}
