//! The command line, compatible with the C++ `sasl-xoauth2-tool`.

use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "sasl-xoauth2-tool",
    version,
    about = "Obtain and test OAuth 2.0 tokens for the sasl-xoauth2 SASL plugin",
    long_about = "Obtain the initial refresh token for a Gmail or Microsoft 365 account \
                  (get-token), and check a sasl-xoauth2 configuration (test-config) or \
                  token file (test-token-refresh)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Authorise an account and write its initial token file.
    GetToken(Box<GetToken>),
    /// Check a sasl-xoauth2 configuration file.
    TestConfig(TestConfig),
    /// Check that a token file can be refreshed (the file is not changed).
    TestTokenRefresh(TestTokenRefresh),
    /// Move an account's refresh token and client secret out of its token
    /// file into secrets/NAME beside it (the split layout).
    SplitSecrets(SplitSecrets),
    /// Print a shell completion script.
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Service {
    /// Google (Gmail, Google Workspace): authorisation code flow, loopback redirect.
    Gmail,
    /// Microsoft (Outlook.com, Microsoft 365): device code flow by default.
    Outlook,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum CloudArg {
    /// Microsoft's worldwide cloud.
    #[default]
    Public,
    /// US Government (GCC High).
    Usgov,
    /// US Government DoD.
    #[value(name = "usgov-dod")]
    UsgovDod,
    /// China, operated by 21Vianet.
    China,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Args)]
pub struct GetToken {
    /// Which provider the account belongs to.
    #[arg(value_enum)]
    pub service: Service,

    /// Token file to write, or `-` for standard output.
    #[arg(value_name = "OUTPUT", default_value = "-")]
    pub output: PathBuf,

    /// OAuth client ID of your app registration.
    #[arg(long, value_name = "ID")]
    pub client_id: String,

    /// OAuth client secret. Asked for (without echo) when needed and not
    /// given; prefer the prompt, command lines are visible to other users.
    #[arg(long, value_name = "SECRET")]
    pub client_secret: Option<String>,

    /// Scope to request [gmail: https://mail.google.com/; outlook: the SMTP.Send
    /// scope of the chosen cloud, plus offline_access].
    #[arg(long)]
    pub scope: Option<String>,

    /// Microsoft tenant: consumers, organizations, common, or a tenant ID or domain.
    #[arg(long, default_value = "consumers")]
    pub tenant: String,

    /// Microsoft cloud; selects the login host and the SMTP scope.
    #[arg(long, value_enum, default_value_t = CloudArg::Public)]
    pub cloud: CloudArg,

    /// Microsoft login base URL, overriding the one of --cloud
    /// (e.g. https://login.microsoftonline.us).
    #[arg(long, value_name = "URL")]
    pub login_base: Option<String>,

    /// Outlook: device code flow (RFC 8628): sign in on any device with a code.
    /// This is the default.
    #[arg(long, overrides_with = "no_use_device_flow")]
    pub use_device_flow: bool,

    /// Outlook: the legacy paste-the-URL flow (same as --use-paste-flow).
    #[arg(long, hide = true)]
    pub no_use_device_flow: bool,

    /// Outlook: authorisation code flow with PKCE and a redirect to a local
    /// listener; needs the redirect URI http://localhost registered as a
    /// "Mobile and desktop applications" platform.
    #[arg(long, conflicts_with_all = ["use_device_flow", "use_paste_flow"])]
    pub use_loopback_flow: bool,

    /// Outlook: the legacy flow of the C++ tool: open a URL, then paste the
    /// address of the blank page you land on.
    #[arg(long, conflicts_with = "use_device_flow")]
    pub use_paste_flow: bool,

    /// Replace an existing token file, keeping all its other fields (user,
    /// per-token overrides, unknown fields).
    #[arg(long)]
    pub overwrite_existing_token: bool,

    /// Write the split layout: the refresh token goes to secrets/NAME beside
    /// the token file (created mode 0700), which SELinux/AppArmor keep smtp out of.
    #[arg(long)]
    pub split: bool,

    /// Port of the local listener for the loopback redirect (bound to
    /// 127.0.0.1 only); 0 picks a free port.
    #[arg(long, value_name = "PORT", default_value_t = 0)]
    pub local_listen_port: u16,

    /// PEM file of CA certificates to trust instead of the built-in roots
    /// (e.g. behind a TLS-inspecting proxy).
    #[arg(long, value_name = "FILE")]
    pub ca_bundle_file: Option<PathBuf>,

    /// Override the authorisation endpoint URL.
    #[arg(long, value_name = "URL", hide = true)]
    pub auth_endpoint: Option<String>,

    /// Override the token endpoint URL.
    #[arg(long, value_name = "URL", hide = true)]
    pub token_endpoint: Option<String>,

    /// Override the device authorisation endpoint URL.
    #[arg(long, value_name = "URL", hide = true)]
    pub device_endpoint: Option<String>,
}

#[derive(Debug, Args)]
pub struct SplitSecrets {
    /// Token file of the account to convert.
    #[arg(value_name = "TOKEN_FILE")]
    pub token_file: PathBuf,
}

#[derive(Debug, Args)]
pub struct TestConfig {
    /// Configuration file [default: $SASL_XOAUTH2_CONFIG or /etc/sasl-xoauth2.conf].
    #[arg(long, value_name = "FILE")]
    pub config_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct TestTokenRefresh {
    /// Token file to test.
    #[arg(value_name = "TOKEN")]
    pub token_file: PathBuf,

    /// Configuration file [default: $SASL_XOAUTH2_CONFIG or /etc/sasl-xoauth2.conf].
    #[arg(long, value_name = "FILE")]
    pub config_file: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn cxx_style_command_lines_parse() {
        let c = Cli::try_parse_from([
            "t",
            "get-token",
            "outlook",
            "/etc/tokens/a",
            "--client-id=abc",
            "--use-device-flow",
            "--tenant=common",
        ])
        .unwrap();
        let Command::GetToken(g) = c.command else {
            panic!()
        };
        assert_eq!(g.service, Service::Outlook);
        assert!(g.use_device_flow);
        assert_eq!(g.tenant, "common");
        assert_eq!(g.local_listen_port, 0);
        // Options after the positional, and the default output "-".
        let c = Cli::try_parse_from(["t", "get-token", "gmail", "--client-id", "x"]).unwrap();
        let Command::GetToken(g) = c.command else {
            panic!()
        };
        assert_eq!(g.output, PathBuf::from("-"));
        assert_eq!(g.cloud, CloudArg::Public);
        let e = Cli::try_parse_from([
            "t",
            "get-token",
            "outlook",
            "--client-id=x",
            "--use-device-flow",
            "--use-loopback-flow",
        ]);
        assert!(e.is_err());
        let c = Cli::try_parse_from([
            "t",
            "test-token-refresh",
            "/etc/tokens/a",
            "--config-file",
            "/c",
        ])
        .unwrap();
        assert!(matches!(c.command, Command::TestTokenRefresh(_)));
        let c = Cli::try_parse_from(["t", "split-secrets", "/etc/tokens/a"]).unwrap();
        let Command::SplitSecrets(s) = c.command else {
            panic!()
        };
        assert_eq!(s.token_file, PathBuf::from("/etc/tokens/a"));
        let c = Cli::try_parse_from(["t", "get-token", "gmail", "/t", "--client-id=x", "--split"])
            .unwrap();
        let Command::GetToken(g) = c.command else {
            panic!()
        };
        assert!(g.split);
    }

    /// Every visible subcommand and long option is documented in the man page.
    #[test]
    fn man_page_covers_every_option() {
        let man = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../docs/sasl-xoauth2-tool.1"
        ))
        .expect("docs/sasl-xoauth2-tool.1");
        let roff = |s: &str| s.replace('-', "\\-");
        let cmd = Cli::command();
        for sub in cmd.get_subcommands() {
            assert!(man.contains(&roff(sub.get_name())), "{}", sub.get_name());
            for arg in sub.get_arguments().filter(|a| !a.is_hide_set()) {
                if let Some(long) = arg.get_long() {
                    let flag = roff(&format!("--{long}"));
                    assert!(man.contains(&flag), "man page lacks {flag}");
                }
            }
        }
    }
}
