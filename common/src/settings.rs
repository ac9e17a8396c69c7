//! The values one refresh uses: config defaults, then the config file, then
//! the token file's overrides, as far as the trust rule allows them.
//!
//! The trust rule. A token file is writable by the mail system's user; the
//! config is root's. So the config decides where secrets may go:
//! * `token_endpoint` from a token file is honoured only if it is the
//!   config's own (or the default), a built-in provider endpoint
//!   ([`crate::providers::is_builtin_token_endpoint`]), or listed in the
//!   config's `allowed_token_endpoints`.
//! * The config's `client_secret` goes only to the config's endpoint or a
//!   built-in one: an endpoint that only `allowed_token_endpoints` admits
//!   needs the token file's own `client_secret` (`""` for public clients).
//! * `proxy` from a token file needs `allow_token_file_proxy`;
//!   `ca_bundle_file` / `ca_certs_dir` need `allow_token_file_ca`.
//!
//! Anything else refuses the whole refresh ([`Refused`]) before a byte is
//! sent. [`overrides`] lists each override and its verdict for `--check`.

use crate::config::{Config, DEFAULT_REFRESH_WINDOW, DEFAULT_TOKEN_ENDPOINT};
use crate::providers::is_builtin_token_endpoint;
use crate::secret::Secret;
use crate::token::{Grant, TokenFile};
use std::fmt;

/// Effective settings for one token file.
#[derive(Debug, Clone)]
pub struct Settings {
    pub client_id: String,
    /// Empty for public clients (Microsoft device flow); then not sent.
    pub client_secret: Secret,
    pub token_endpoint: String,
    pub scope: Option<String>,
    pub proxy: Option<String>,
    pub ca_bundle_file: Option<String>,
    pub ca_certs_dir: Option<String>,
    /// The CA settings come from the token file (allowed by
    /// `allow_token_file_ca`), not from the config.
    pub ca_from_token: bool,
    pub refresh_window: i64,
    pub grant: Grant,
}

/// Why a token-file override is honoured, or that it is not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The same value as the config's: nothing is overridden.
    SameAsConfig,
    /// A built-in provider token endpoint.
    BuiltIn,
    /// Listed in the config's `allowed_token_endpoints`.
    AllowListed,
    /// The config opts in (`allow_token_file_proxy` / `allow_token_file_ca`).
    OptedIn,
    /// Refused; the config key that would allow it.
    Refused(&'static str),
    /// An allow-listed endpoint, but the token file has no client_secret of
    /// its own and the config's may not go there.
    NeedsOwnSecret,
}

impl Verdict {
    pub fn allowed(self) -> bool {
        matches!(
            self,
            Verdict::SameAsConfig | Verdict::BuiltIn | Verdict::AllowListed | Verdict::OptedIn
        )
    }
}

/// One trust-relevant token-file override and its verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    pub key: &'static str,
    /// The value, safe to print (a proxy's user info removed).
    pub shown: String,
    pub verdict: Verdict,
}

impl fmt::Display for Override {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Override {
            key,
            shown,
            verdict,
        } = self;
        match verdict {
            Verdict::SameAsConfig => write!(f, "\"{key}\" {shown}: allowed (same as the config's)"),
            Verdict::BuiltIn => write!(
                f,
                "\"{key}\" {shown}: allowed (a built-in provider endpoint)"
            ),
            Verdict::AllowListed => {
                write!(
                    f,
                    "\"{key}\" {shown}: allowed (listed in allowed_token_endpoints)"
                )
            }
            Verdict::OptedIn => {
                let by = if *key == "proxy" {
                    "allow_token_file_proxy"
                } else {
                    "allow_token_file_ca"
                };
                write!(f, "\"{key}\" {shown}: allowed ({by} is set)")
            }
            Verdict::Refused("allowed_token_endpoints") => write!(
                f,
                "\"{key}\" {shown} is refused: it is neither the config's token_endpoint nor a \
                 built-in provider endpoint; to allow it, add it to \"allowed_token_endpoints\" \
                 in the config (with the token file's own client_id/client_secret)"
            ),
            Verdict::Refused(allow) => write!(
                f,
                "\"{key}\" {shown} is refused: a token file may set it only when the config \
                 sets \"{allow}\": true"
            ),
            Verdict::NeedsOwnSecret => write!(
                f,
                "\"{key}\" {shown} is listed in allowed_token_endpoints, but the token file has \
                 no \"client_secret\" of its own and the config's is only sent to the config's \
                 token_endpoint or a built-in provider endpoint; refused: add the account's own \
                 \"client_id\" and \"client_secret\" (\"\" for a public client) to the token file"
            ),
        }
    }
}

/// A refresh refused by the trust rule. Nothing may be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    pub refused: Override,
    /// The config file, for the message.
    pub config: String,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}); nothing was sent", self.refused, self.config)
    }
}

impl std::error::Error for Refused {}

/// A value safe to print: a proxy URL's `user:password@` removed.
fn shown(key: &str, v: &str) -> String {
    if key != "proxy" {
        return v.to_string();
    }
    match v.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((_, host)) => format!("{scheme}://…@{host}"),
            None => v.to_string(),
        },
        None => v
            .rsplit_once('@')
            .map_or(v.to_string(), |(_, h)| format!("…@{h}")),
    }
}

/// The trust-relevant overrides of `token` and whether each is allowed
/// (pure; see the module docs for the rule).
pub fn overrides(config: &Config, token: &TokenFile) -> Vec<Override> {
    let o = &token.overrides;
    let mut out = Vec::new();
    if let Some(ep) = &o.token_endpoint {
        let own = config
            .token_endpoint
            .as_deref()
            .unwrap_or(DEFAULT_TOKEN_ENDPOINT);
        let own_secret =
            o.client_secret.is_some() || config.client_secret.as_ref().is_none_or(Secret::is_empty);
        let verdict = if ep == own {
            Verdict::SameAsConfig
        } else if is_builtin_token_endpoint(ep) {
            Verdict::BuiltIn
        } else if !config.allowed_token_endpoints.iter().any(|a| a == ep) {
            Verdict::Refused("allowed_token_endpoints")
        } else if own_secret {
            Verdict::AllowListed
        } else {
            Verdict::NeedsOwnSecret
        };
        out.push(Override {
            key: "token_endpoint",
            shown: shown("token_endpoint", ep),
            verdict,
        });
    }
    let opt_in = |key: &'static str,
                  over: &Option<String>,
                  base: &Option<String>,
                  allow: bool,
                  allow_key| {
        over.as_ref().map(|v| Override {
            key,
            shown: shown(key, v),
            verdict: if Some(v) == base.as_ref() {
                Verdict::SameAsConfig
            } else if allow {
                Verdict::OptedIn
            } else {
                Verdict::Refused(allow_key)
            },
        })
    };
    let ca = config.allow_token_file_ca;
    out.extend(opt_in(
        "proxy",
        &o.proxy,
        &config.proxy,
        config.allow_token_file_proxy,
        "allow_token_file_proxy",
    ));
    out.extend(opt_in(
        "ca_bundle_file",
        &o.ca_bundle_file,
        &config.ca_bundle_file,
        ca,
        "allow_token_file_ca",
    ));
    out.extend(opt_in(
        "ca_certs_dir",
        &o.ca_certs_dir,
        &config.ca_certs_dir,
        ca,
        "allow_token_file_ca",
    ));
    out
}

impl Settings {
    /// Just the effective `refresh_window`, without building the rest
    /// (the plugin needs only this, on every authentication).
    pub fn refresh_window(config: &Config, token: &TokenFile) -> i64 {
        token
            .overrides
            .refresh_window
            .or(config.refresh_window)
            .unwrap_or(DEFAULT_REFRESH_WINDOW)
    }

    /// The settings for `token`, or the first override the trust rule
    /// refuses.
    pub fn resolve(config: &Config, token: &TokenFile) -> Result<Settings, Refused> {
        if let Some(refused) = overrides(config, token)
            .into_iter()
            .find(|o| !o.verdict.allowed())
        {
            return Err(Refused {
                refused,
                config: config.path.display().to_string(),
            });
        }
        let o = &token.overrides;
        fn pick<T: Clone>(over: &Option<T>, base: &Option<T>) -> Option<T> {
            over.clone().or_else(|| base.clone())
        }
        // Past the rule, a token-file CA setting is allowed; it replaces
        // the config's pair as a whole.
        let ca_from_token = o.ca_bundle_file.is_some() || o.ca_certs_dir.is_some();
        let (ca_bundle_file, ca_certs_dir) = if ca_from_token {
            (o.ca_bundle_file.clone(), o.ca_certs_dir.clone())
        } else {
            (config.ca_bundle_file.clone(), config.ca_certs_dir.clone())
        };
        Ok(Settings {
            client_id: pick(&o.client_id, &config.client_id).unwrap_or_default(),
            client_secret: pick(&o.client_secret, &config.client_secret)
                .unwrap_or_else(|| Secret::new("")),
            token_endpoint: pick(&o.token_endpoint, &config.token_endpoint)
                .unwrap_or_else(|| DEFAULT_TOKEN_ENDPOINT.to_string()),
            scope: pick(&o.scope, &config.scope),
            proxy: pick(&o.proxy, &config.proxy),
            ca_bundle_file,
            ca_certs_dir,
            ca_from_token,
            refresh_window: pick(&o.refresh_window, &config.refresh_window)
                .unwrap_or(DEFAULT_REFRESH_WINDOW),
            grant: token.grant,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn cfg(s: &str) -> Config {
        Config::parse(s.as_bytes(), Path::new("/etc/sasl-xoauth2.conf")).unwrap()
    }

    fn tok(s: &str) -> TokenFile {
        TokenFile::parse(s.as_bytes(), Path::new("/t")).unwrap()
    }

    #[test]
    fn token_overrides_win_and_defaults_apply() {
        let c = cfg(r#"{"client_id":"cfg-id","client_secret":"cfg-s","refresh_window":30}"#);
        let t = tok(r#"{"refresh_token":"r","client_id":"tok-id"}"#);
        let s = Settings::resolve(&c, &t).unwrap();
        assert_eq!(s.client_id, "tok-id");
        assert_eq!(s.client_secret.expose(), "cfg-s");
        assert_eq!(s.refresh_window, 30);
        assert_eq!(s.token_endpoint, DEFAULT_TOKEN_ENDPOINT);
        let s = Settings::resolve(&Config::default(), &t).unwrap();
        assert_eq!(s.refresh_window, 10);
        assert!(s.client_secret.is_empty());
    }

    const EVIL: &str = "https://evil.example/token";

    #[test]
    fn foreign_endpoint_refused_naming_key_and_fix() {
        let c = cfg(r#"{"client_id":"id","client_secret":"cfg-s"}"#);
        let t = tok(&format!(
            r#"{{"refresh_token":"r","token_endpoint":"{EVIL}","client_secret":"tok-sec-9"}}"#
        ));
        let e = Settings::resolve(&c, &t).unwrap_err();
        assert_eq!(e.refused.key, "token_endpoint");
        assert_eq!(
            e.refused.verdict,
            Verdict::Refused("allowed_token_endpoints")
        );
        let m = e.to_string();
        for want in [
            EVIL,
            "\"token_endpoint\"",
            "allowed_token_endpoints",
            "/etc/sasl-xoauth2.conf",
            "nothing was sent",
        ] {
            assert!(m.contains(want), "{want:?} missing in {m}");
        }
        assert!(!m.contains("cfg-s") && !m.contains("tok-sec-9"), "{m}");
    }

    #[test]
    fn allow_listed_endpoint_needs_the_tokens_own_secret() {
        let c = cfg(&format!(
            r#"{{"client_id":"id","client_secret":"cfg-s","allowed_token_endpoints":["{EVIL}"]}}"#
        ));
        let bare = tok(&format!(
            r#"{{"refresh_token":"r","token_endpoint":"{EVIL}"}}"#
        ));
        let e = Settings::resolve(&c, &bare).unwrap_err();
        assert_eq!(e.refused.verdict, Verdict::NeedsOwnSecret);
        assert!(e.to_string().contains("client_secret"), "{e}");
        let own = tok(&format!(
            r#"{{"refresh_token":"r","token_endpoint":"{EVIL}","client_id":"tid","client_secret":"tok-s"}}"#
        ));
        let s = Settings::resolve(&c, &own).unwrap();
        assert_eq!(s.token_endpoint, EVIL);
        assert_eq!(s.client_secret.expose(), "tok-s");
        // A public client (explicitly empty secret) is fine too.
        let public = tok(&format!(
            r#"{{"refresh_token":"r","token_endpoint":"{EVIL}","client_secret":""}}"#
        ));
        assert!(Settings::resolve(&c, &public)
            .unwrap()
            .client_secret
            .is_empty());
        // ... as is a config without a secret to protect.
        let c = cfg(&format!(
            r#"{{"client_id":"id","allowed_token_endpoints":"{EVIL}"}}"#
        ));
        assert!(Settings::resolve(&c, &bare).is_ok());
    }

    #[test]
    fn builtin_and_same_endpoints_need_no_config_change() {
        // The C++ README's Gmail and Microsoft setups.
        let c = cfg(r#"{"client_id":"id","client_secret":"cfg-s"}"#);
        for ep in [
            "https://accounts.google.com/o/oauth2/token",
            "https://login.microsoftonline.com/consumers/oauth2/v2.0/token",
            "https://login.microsoftonline.com/0d1e2f3a-1111-2222-3333-444455556666/oauth2/v2.0/token",
            "https://login.microsoftonline.us/contoso.com/oauth2/v2.0/token",
        ] {
            let t = tok(&format!(r#"{{"refresh_token":"r","token_endpoint":"{ep}"}}"#));
            let s = Settings::resolve(&c, &t).unwrap_or_else(|e| panic!("{ep}: {e}"));
            assert_eq!(s.client_secret.expose(), "cfg-s");
        }
        let c = cfg(&format!(
            r#"{{"client_secret":"s","token_endpoint":"{EVIL}"}}"#
        ));
        let t = tok(&format!(
            r#"{{"refresh_token":"r","token_endpoint":"{EVIL}"}}"#
        ));
        assert_eq!(overrides(&c, &t)[0].verdict, Verdict::SameAsConfig);
        assert!(Settings::resolve(&c, &t).is_ok());
    }

    #[test]
    fn proxy_and_ca_need_opt_in() {
        let c = cfg(r#"{"client_secret":"s","proxy":"http://p:3128"}"#);
        for (key, allow) in [
            ("proxy", "allow_token_file_proxy"),
            ("ca_bundle_file", "allow_token_file_ca"),
            ("ca_certs_dir", "allow_token_file_ca"),
        ] {
            let t = tok(&format!(
                r#"{{"refresh_token":"r","{key}":"http://u:pw@x:1/"}}"#
            ));
            let e = Settings::resolve(&c, &t).unwrap_err();
            assert_eq!(e.refused.key, key);
            assert_eq!(e.refused.verdict, Verdict::Refused(allow));
            assert!(e.to_string().contains(allow), "{e}");
        }
        let t = tok(r#"{"refresh_token":"r","proxy":"http://u:pw@x:1"}"#);
        let m = Settings::resolve(&c, &t).unwrap_err().to_string();
        assert!(!m.contains("pw"), "proxy password shown: {m}");
        // The config's own value is no override.
        let t = tok(r#"{"refresh_token":"r","proxy":"http://p:3128"}"#);
        assert!(Settings::resolve(&c, &t).is_ok());
        let c = cfg(
            r#"{"allow_token_file_proxy":true,"allow_token_file_ca":true,"ca_bundle_file":"/etc/c.pem"}"#,
        );
        let t = tok(r#"{"refresh_token":"r","proxy":"http://q:1","ca_certs_dir":"/d"}"#);
        let s = Settings::resolve(&c, &t).unwrap();
        assert_eq!(s.proxy.as_deref(), Some("http://q:1"));
        assert!(s.ca_from_token);
        assert_eq!(
            (s.ca_bundle_file, s.ca_certs_dir.as_deref()),
            (None, Some("/d"))
        );
        let listed: Vec<_> = overrides(&c, &t)
            .iter()
            .map(|o| (o.key, o.verdict))
            .collect();
        assert_eq!(
            listed,
            [
                ("proxy", Verdict::OptedIn),
                ("ca_certs_dir", Verdict::OptedIn)
            ]
        );
    }
}
