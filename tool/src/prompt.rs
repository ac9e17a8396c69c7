//! Reading a secret or a line from the terminal. On a terminal, echo is
//! turned off while the secret is typed (termios through nix's safe API)
//! and restored afterwards, also on error; without a terminal, one line is
//! read from standard input so scripts can pipe the secret in.

use crate::error::ToolError;
use nix::sys::termios::{self, LocalFlags, SetArg, Termios};
use std::io::{self, BufRead, Write};
use std::os::fd::AsFd;
use zeroize::Zeroizing;

/// Restores the saved terminal settings when dropped.
struct EchoOff {
    saved: Termios,
}

impl EchoOff {
    fn new() -> nix::Result<EchoOff> {
        let stdin = io::stdin();
        let saved = termios::tcgetattr(stdin.as_fd())?;
        let mut quiet = saved.clone();
        quiet.local_flags.remove(LocalFlags::ECHO);
        // Still echo the newline, so the next output starts on a new line.
        quiet.local_flags.insert(LocalFlags::ECHONL);
        termios::tcsetattr(stdin.as_fd(), SetArg::TCSAFLUSH, &quiet)?;
        Ok(EchoOff { saved })
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(io::stdin().as_fd(), SetArg::TCSAFLUSH, &self.saved);
    }
}

fn stdin_is_tty() -> bool {
    nix::unistd::isatty(io::stdin().as_fd()).unwrap_or(false)
}

/// Read one line from standard input, without its line ending.
fn read_line() -> Result<Zeroizing<String>, ToolError> {
    let mut line = Zeroizing::new(String::new());
    let n = io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| ToolError::Input(e.to_string()))?;
    if n == 0 {
        return Err(ToolError::Input("end of input".into()));
    }
    while line.ends_with(['\n', '\r']) {
        line.pop();
    }
    Ok(line)
}

/// Ask for a secret; nothing typed is shown.
pub fn secret(prompt: &str) -> Result<Zeroizing<String>, ToolError> {
    // Echo goes off before the prompt appears, so nothing typed in answer
    // to it can be echoed (or discarded by the TCSAFLUSH).
    let _guard = if stdin_is_tty() {
        Some(EchoOff::new().map_err(|e| ToolError::Input(e.to_string()))?)
    } else {
        None
    };
    eprint!("{prompt}");
    let _ = io::stderr().flush();
    read_line()
}

/// Ask for an ordinary line (echoed).
pub fn line(prompt: &str) -> Result<Zeroizing<String>, ToolError> {
    eprint!("{prompt}");
    let _ = io::stderr().flush();
    read_line()
}
