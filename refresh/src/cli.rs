//! The command line: `sasl-xoauth2-refresh [--config PATH | --config-fd N]
//! [--force] [--if-access-token sha256:XXXXXXXX] TOKEN_PATH`, or
//! `sasl-xoauth2-refresh --check TOKEN_PATH [--config PATH] [--online]
//! [--json] [--postfix-config DIR]`.

use check::CheckRequest;
use clap::Parser;
use refresher::{ConfigSource, Request};
use std::ffi::OsString;
use std::os::fd::RawFd;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "sasl-xoauth2-refresh",
    version,
    about = "Refresh the OAuth access token in a sasl-xoauth2 token file (normally run by the sasl-xoauth2 plugin)"
)]
struct Cli {
    /// Read the configuration from PATH (default: /etc/sasl-xoauth2.conf or $SASL_XOAUTH2_CONFIG).
    #[arg(long, value_name = "PATH", conflicts_with = "config_fd")]
    config: Option<PathBuf>,

    /// Read the configuration handoff (JSON sent by the plugin) from descriptor N until EOF.
    #[arg(long, value_name = "N")]
    config_fd: Option<RawFd>,

    /// Refresh even if the access token has not expired (the server rejected it),
    /// unless another process replaced it since.
    #[arg(long)]
    force: bool,

    /// With --force: the fingerprint of the access token the server rejected;
    /// the refresh is skipped if the file already holds another, unexpired one.
    /// Default: the access token in the file when the helper starts.
    #[arg(long, value_name = "sha256:XXXXXXXX")]
    if_access_token: Option<String>,

    /// Diagnose the setup for TOKEN_PATH instead of refreshing it: config,
    /// token file, owner and mode, Postfix (chroot, plugin, mechanisms),
    /// SELinux/AppArmor, sandbox, helper. Writes nothing. Exit 0 all ok,
    /// 1 warnings, 2 failures.
    #[arg(long, conflicts_with_all = ["config_fd", "force", "if_access_token"])]
    check: bool,

    /// With --check: also make one real token request (nothing is written).
    #[arg(long, requires = "check")]
    online: bool,

    /// With --check: print one JSON object instead of text lines.
    #[arg(long, requires = "check")]
    json: bool,

    /// With --check: the Postfix configuration directory (postconf -c DIR).
    #[arg(long, value_name = "DIR", requires = "check")]
    postfix_config: Option<PathBuf>,

    /// The token file to refresh (or to check).
    #[arg(value_name = "TOKEN_PATH")]
    token_path: PathBuf,
}

/// What the command line asks for.
#[derive(Debug)]
pub enum Command {
    Refresh(Request),
    Check(CheckRequest),
}

/// What to do when the command line cannot be used: text for stdout and
/// stderr, and the exit code.
#[derive(Debug)]
pub struct Early {
    pub stdout: String,
    pub stderr: String,
    pub code: i32,
}

/// Parse a refresh command line (`--check` is a usage error here; see
/// [`parse_command`]). The unit tests' shorthand.
#[cfg(test)]
fn parse<I, T>(args: I) -> Result<Request, Early>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    match parse_command(args)? {
        Command::Refresh(r) => Ok(r),
        Command::Check(_) => Err(Early {
            stdout: "error: --check is not a refresh\n".to_string(),
            stderr: String::new(),
            code: common::exit::USAGE,
        }),
    }
}

/// Parse the command line.
pub fn parse_command<I, T>(args: I) -> Result<Command, Early>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            let text = e.render().to_string();
            return Err(match e.kind() {
                ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => Early {
                    stdout: text,
                    stderr: String::new(),
                    code: common::exit::OK,
                },
                _ => {
                    let first = text
                        .lines()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or("invalid command line")
                        .trim()
                        .trim_start_matches("error: ")
                        .to_string();
                    Early {
                        stdout: format!(
                            "error: {first}; usage: sasl-xoauth2-refresh [--config PATH | --config-fd N] [--force] TOKEN_PATH, or sasl-xoauth2-refresh --check TOKEN_PATH [--config PATH] [--online] [--json] [--postfix-config DIR]\n"
                        ),
                        stderr: text,
                        code: common::exit::USAGE,
                    }
                }
            });
        }
    };
    if cli.check {
        return Ok(Command::Check(CheckRequest {
            token_path: cli.token_path,
            config: cli.config,
            online: cli.online,
            json: cli.json,
            postfix_config: cli.postfix_config,
        }));
    }
    if let Some(fp) = &cli.if_access_token {
        if !is_fingerprint(fp) {
            return Err(Early {
                // The value is not repeated: it might be a token pasted by mistake.
                stdout: "error: --if-access-token must be a fingerprint such as sha256:0123abcd (as logged by the plugin)\n".to_string(),
                stderr: String::new(),
                code: common::exit::USAGE,
            });
        }
    }
    let config = match (cli.config, cli.config_fd) {
        (Some(p), _) => ConfigSource::Path(p),
        (None, Some(fd)) => ConfigSource::Fd(fd),
        (None, None) => ConfigSource::Default,
    };
    Ok(Command::Refresh(Request {
        config,
        force: cli.force,
        if_access_token: cli.if_access_token,
        token_path: cli.token_path,
    }))
}

fn is_fingerprint(s: &str) -> bool {
    s.strip_prefix("sha256:").is_some_and(|h| {
        h.len() == 8
            && h.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_command_line() {
        let r = parse(["x", "--config-fd", "0", "--force", "/etc/tokens/a"]).unwrap();
        assert!(matches!(r.config, ConfigSource::Fd(0)));
        assert!(r.force);
        assert_eq!(r.token_path, PathBuf::from("/etc/tokens/a"));
        let r = parse(["x", "--config", "/c", "/t"]).unwrap();
        assert!(matches!(r.config, ConfigSource::Path(_)));
        let r = parse(["x", "/t"]).unwrap();
        assert!(matches!(r.config, ConfigSource::Default));
        assert!(!r.force);
        let r = parse(["x", "--force", "--if-access-token", "sha256:0123abcd", "/t"]).unwrap();
        assert_eq!(r.if_access_token.as_deref(), Some("sha256:0123abcd"));
    }

    #[test]
    fn usage_errors_are_one_line_on_stdout() {
        for bad in [
            vec!["x"],
            vec!["x", "--config", "/c", "--config-fd", "3", "/t"],
            vec!["x", "--bogus", "/t"],
            vec!["x", "--config-fd", "three", "/t"],
            vec!["x", "--if-access-token", "ya29.secret", "/t"],
        ] {
            let e = parse(bad.clone()).unwrap_err();
            assert_eq!(e.code, common::exit::USAGE, "{bad:?}");
            assert!(e.stdout.starts_with("error: "), "{}", e.stdout);
            assert_eq!(e.stdout.lines().count(), 1, "{}", e.stdout);
        }
        let e = parse(["x", "--help"]).unwrap_err();
        assert_eq!(e.code, 0);
        assert!(e.stdout.contains("--config-fd"));
        assert!(e.stdout.contains("--check"));
    }

    #[test]
    fn check_command_line() {
        let Command::Check(c) = parse_command([
            "x",
            "--check",
            "/t",
            "--config",
            "/c",
            "--online",
            "--json",
            "--postfix-config",
            "/p",
        ])
        .unwrap() else {
            panic!("not a check")
        };
        assert_eq!(c.token_path, PathBuf::from("/t"));
        assert_eq!(c.config.as_deref(), Some(std::path::Path::new("/c")));
        assert!(c.online && c.json);
        assert_eq!(
            c.postfix_config.as_deref(),
            Some(std::path::Path::new("/p"))
        );
        let Command::Check(c) = parse_command(["x", "/t", "--check"]).unwrap() else {
            panic!("not a check")
        };
        assert!(!c.online && !c.json && c.config.is_none());
        for bad in [
            vec!["x", "--online", "/t"],
            vec!["x", "--json", "/t"],
            vec!["x", "--postfix-config", "/p", "/t"],
            vec!["x", "--check", "--force", "/t"],
            vec!["x", "--check", "--config-fd", "0", "/t"],
            vec!["x", "--check"],
        ] {
            let e = parse_command(bad.clone()).unwrap_err();
            assert_eq!(e.code, common::exit::USAGE, "{bad:?}");
            assert_eq!(e.stdout.lines().count(), 1, "{}", e.stdout);
        }
        assert_eq!(
            parse(["x", "--check", "/t"]).unwrap_err().code,
            common::exit::USAGE
        );
    }
}
