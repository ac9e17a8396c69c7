//! Log policy, compatible with the C++ plugin's three config keys.
//!
//! Every step is recorded in a per-connection trace. What reaches libsasl2's
//! log callback depends on the mode: everything as it happens
//! (`always_log_to_syslog`), the whole trace when authentication fails
//! (`log_full_trace_on_failure`), or just a one-line summary on failure
//! (`log_to_syslog_on_failure`, the default). Every line passes through
//! [`redact`] first, so a secret that slipped into a message would reach the
//! log only as its fingerprint.

use common::Secret;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Error,
    Warn,
    Note,
}

/// Where log lines go (libsasl2's log callback in production).
pub trait Sink {
    fn emit(&mut self, level: Level, msg: &str);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Mode {
    pub always: bool,
    pub on_failure: bool,
    pub full_trace: bool,
}

impl Default for Mode {
    /// The C++ defaults: a summary on failure, nothing else.
    fn default() -> Self {
        Mode {
            always: false,
            on_failure: true,
            full_trace: false,
        }
    }
}

impl Mode {
    pub fn from_config(c: &common::Config) -> Mode {
        Mode {
            always: c.always_log_to_syslog,
            on_failure: c.log_to_syslog_on_failure,
            full_trace: c.log_full_trace_on_failure,
        }
    }
}

/// One connection's trace.
#[derive(Debug, Default)]
pub struct Trace {
    pub mode: Mode,
    lines: Vec<String>,
    secrets: Vec<Secret>,
}

const MAX_TRACE_LINES: usize = 64;

impl Trace {
    pub fn new(mode: Mode) -> Trace {
        Trace {
            mode,
            ..Trace::default()
        }
    }

    /// Register a value that must never appear in a log line.
    pub fn protect(&mut self, secret: &Secret) {
        if secret.expose().len() >= 4 && !self.secrets.contains(secret) {
            self.secrets.push(secret.clone());
        }
    }

    /// Record a step. The message is only built when some mode can show it
    /// (this is on every authentication's path).
    pub fn note(&mut self, sink: &mut dyn Sink, msg: impl FnOnce() -> String) {
        if !(self.mode.always || self.mode.full_trace) {
            return;
        }
        let line = redact(&msg(), &self.secrets);
        if self.mode.always {
            sink.emit(Level::Note, &line);
        }
        if self.lines.len() < MAX_TRACE_LINES {
            self.lines.push(line);
        }
    }

    /// A warning an admin should see whatever the mode (e.g. a background
    /// refresh that could not start), unless failure logging is off too.
    pub fn warn(&mut self, sink: &mut dyn Sink, msg: &str) {
        let line = redact(msg, &self.secrets);
        if self.mode.always || self.mode.on_failure || self.mode.full_trace {
            sink.emit(Level::Warn, &line);
        }
        if self.lines.len() < MAX_TRACE_LINES {
            self.lines.push(line);
        }
    }

    /// Authentication failed: emit what the mode asks for.
    pub fn fail(&mut self, sink: &mut dyn Sink, summary: &str) {
        let summary = redact(summary, &self.secrets);
        if self.mode.full_trace && !self.mode.always {
            for l in &self.lines {
                sink.emit(Level::Note, l);
            }
        }
        if self.mode.always || self.mode.on_failure || self.mode.full_trace {
            sink.emit(Level::Error, &summary);
        }
        self.lines.clear();
    }
}

/// Replace every occurrence of a protected secret with its fingerprint.
pub fn redact(msg: &str, secrets: &[Secret]) -> String {
    let mut out = msg.to_string();
    for s in secrets {
        if out.contains(s.expose()) {
            out = out.replace(s.expose(), &format!("<{}>", s.fingerprint()));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Vec_(Vec<(Level, String)>);
    impl Sink for Vec_ {
        fn emit(&mut self, level: Level, msg: &str) {
            self.0.push((level, msg.to_string()));
        }
    }

    fn run(mode: Mode) -> Vec<(Level, String)> {
        let mut sink = Vec_::default();
        let mut t = Trace::new(mode);
        t.protect(&Secret::new("tok-SECRET"));
        t.note(&mut sink, || "step one with tok-SECRET inside".into());
        t.note(&mut sink, || "step two".into());
        t.fail(&mut sink, "failed");
        sink.0
    }

    #[test]
    fn default_logs_summary_only() {
        let out = run(Mode::default());
        assert_eq!(out, vec![(Level::Error, "failed".to_string())]);
    }

    #[test]
    fn full_trace_on_failure() {
        let out = run(Mode {
            full_trace: true,
            ..Mode::default()
        });
        assert_eq!(out.len(), 3);
        assert!(out[0].1.contains("<sha256:"), "{:?}", out[0]);
        assert!(!out.iter().any(|(_, l)| l.contains("tok-SECRET")));
    }

    #[test]
    fn always_logs_as_it_goes() {
        let out = run(Mode {
            always: true,
            on_failure: false,
            full_trace: false,
        });
        assert_eq!(out.len(), 3);
        assert_eq!(out[2].0, Level::Error);
    }

    #[test]
    fn silent_when_all_off() {
        let out = run(Mode {
            always: false,
            on_failure: false,
            full_trace: false,
        });
        assert!(out.is_empty());
    }
}
