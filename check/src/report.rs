//! The verdicts of `--check` and how they are printed: one line per check
//! (`ok` / `warn` / `FAIL`, the reason, the fix), or one JSON object. Pure.

use serde_json::{json, Value};
use std::fmt::Write as _;

/// Exit status of `--check`: every check ok.
pub const EXIT_OK: i32 = 0;
/// Exit status of `--check`: at least one warning, no failure.
pub const EXIT_WARN: i32 = 1;
/// Exit status of `--check`: at least one failure.
pub const EXIT_FAIL: i32 = 2;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Status {
    Ok,
    Warn,
    Fail,
}

impl Status {
    /// The word in the text output.
    pub fn word(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "FAIL",
        }
    }

    /// The value in the JSON output.
    pub fn json(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warn => "warn",
            Status::Fail => "fail",
        }
    }
}

/// One verdict. `message` says what was found (never a secret: tokens only
/// as fingerprints); `fix` what to do, when there is something to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub name: &'static str,
    pub status: Status,
    pub message: String,
    pub fix: Option<String>,
}

impl Check {
    pub fn ok(name: &'static str, message: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Ok,
            message: message.into(),
            fix: None,
        }
    }

    pub fn warn(name: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Warn,
            message: message.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn fail(name: &'static str, message: impl Into<String>, fix: impl Into<String>) -> Check {
        Check {
            name,
            status: Status::Fail,
            message: message.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Every verdict of one `--check` run, in order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub checks: Vec<Check>,
}

impl Report {
    pub fn push(&mut self, c: Check) {
        self.checks.push(c);
    }

    /// The worst status, `Ok` for an empty report.
    pub fn worst(&self) -> Status {
        self.checks
            .iter()
            .map(|c| c.status)
            .max()
            .unwrap_or(Status::Ok)
    }

    /// 0 all ok, 1 warnings, 2 failures.
    pub fn exit_code(&self) -> i32 {
        match self.worst() {
            Status::Ok => EXIT_OK,
            Status::Warn => EXIT_WARN,
            Status::Fail => EXIT_FAIL,
        }
    }

    /// One line per check, then a summary line.
    pub fn to_text(&self) -> String {
        let mut out = String::new();
        for c in &self.checks {
            let _ = write!(
                out,
                "{:<4} {}: {}",
                c.status.word(),
                c.name,
                one_line(&c.message)
            );
            if let Some(f) = &c.fix {
                let _ = write!(out, "; fix: {}", one_line(f));
            }
            out.push('\n');
        }
        let count = |s| self.checks.iter().filter(|c| c.status == s).count();
        let _ = writeln!(
            out,
            "result: {} FAIL, {} warn, {} ok (exit {})",
            count(Status::Fail),
            count(Status::Warn),
            count(Status::Ok),
            self.exit_code()
        );
        out
    }

    /// `{"checks":[{"name","status","message","fix"}...],"exit":N}`; `fix`
    /// is null when there is nothing to do.
    pub fn to_json(&self) -> Value {
        let checks: Vec<Value> = self
            .checks
            .iter()
            .map(|c| {
                json!({
                    "name": c.name,
                    "status": c.status.json(),
                    "message": c.message,
                    "fix": c.fix,
                })
            })
            .collect();
        json!({ "checks": checks, "exit": self.exit_code() })
    }
}

/// Control characters (a newline in a path, say) would break the one line
/// per check; show them escaped.
fn one_line(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_default().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_worst_status() {
        let mut r = Report::default();
        assert_eq!(r.exit_code(), 0);
        r.push(Check::ok("a", "fine"));
        assert_eq!(r.exit_code(), 0);
        r.push(Check::warn("b", "hmm", "do x"));
        assert_eq!(r.exit_code(), 1);
        r.push(Check::fail("c", "bad", "do y"));
        r.push(Check::ok("d", "fine"));
        assert_eq!(r.exit_code(), 2);
    }

    #[test]
    fn text_is_one_line_per_check_and_json_matches() {
        let mut r = Report::default();
        r.push(Check::ok("config", "valid"));
        r.push(Check::fail("token", "/t\nx missing", "create it"));
        let t = r.to_text();
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(
            lines,
            [
                "ok   config: valid",
                "FAIL token: /t\\nx missing; fix: create it",
                "result: 1 FAIL, 0 warn, 1 ok (exit 2)"
            ]
        );
        let j = r.to_json();
        assert_eq!(j["exit"], 2);
        assert_eq!(j["checks"][0]["status"], "ok");
        assert_eq!(j["checks"][0]["fix"], Value::Null);
        assert_eq!(j["checks"][1]["name"], "token");
        assert_eq!(j["checks"][1]["status"], "fail");
        assert_eq!(j["checks"][1]["message"], "/t\nx missing");
        assert_eq!(j["checks"][1]["fix"], "create it");
    }
}
