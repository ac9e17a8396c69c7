//! A real Postfix relays through the plugin to the fake Gmail relay, with
//! smtp chrooted and not. Each scenario runs a private Postfix instance
//! (tests/src/postfix.rs) against a fake token endpoint and a fake relay
//! sharing state in this process; the plugin, the static refresh helper,
//! libsasl2 and Postfix are the real ones.
//!
//! Every scenario ends by scanning the maillog and every command's output
//! for the tokens and client secrets in play.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};
use testkit::postfix::{self, file_meta, postfix_ids, unix_now, Instance};
use testkit::provider::{FakeProvider, Mode, Options};
use testkit::smtp::{Account, AuthOutcome, FakeRelay, RelayOptions};

/// Deadline for anything Postfix does (polling, never a fixed sleep).
const DEADLINE: Duration = Duration::from_secs(60);
const USER: &str = "alice@gmail.test";
const SENDER: &str = "alice-sender@postfix.test";
const RCPT: &str = "friend@example.com";
const TOKEN: &str = "alice.json";

fn fp(s: &str) -> String {
    common::secret::fingerprint(s.as_bytes())
}

/// One provider, one relay, one Postfix instance, one account.
/// (Fields drop in order: Postfix stops before the fakes do.)
struct World {
    pf: Instance,
    provider: Arc<FakeProvider>,
    relay: FakeRelay,
    /// The account's token file as this process sees it.
    token_host: PathBuf,
    /// Its path as smtp sees it (inside the chroot when chrooted).
    token_postfix: String,
}

struct Setup {
    relay: RelayOptions,
    /// Extra keys for the plugin's config.
    config: Value,
    /// Extra main.cf parameters.
    main: Vec<(&'static str, &'static str)>,
    /// Seconds until the access token in the file expires (<= 0: expired).
    valid_for: i64,
}

impl Default for Setup {
    fn default() -> Self {
        Setup {
            relay: RelayOptions::default(),
            config: json!({}),
            main: Vec::new(),
            valid_for: 3600,
        }
    }
}

fn plugin_config(provider: &FakeProvider, ca_file: &Path, extra: &Value) -> Value {
    let mut c = json!({
        "client_id": provider.client_id(),
        "client_secret": provider.client_secret(),
        "token_endpoint": provider.url(),
        "ca_bundle_file": ca_file,
        "refresh_helper": postfix::static_helper(),
        "refresh_timeout": 15,
        "always_log_to_syslog": "yes",
    });
    for (k, v) in extra.as_object().unwrap() {
        c[k] = v.clone();
    }
    c
}

fn token_json(provider: &FakeProvider, valid_for: i64) -> Value {
    let at = provider.issue_access_token(valid_for.max(1));
    if valid_for <= 0 {
        // Issued, then expired: the relay would refuse it too.
        provider.revoke_access_token(&at);
    }
    json!({
        "refresh_token": provider.issue_refresh_token(),
        "access_token": at,
        "expiry": if valid_for <= 0 { "0".to_string() } else { (unix_now() + valid_for).to_string() },
    })
}

impl World {
    fn new(name: &str, chroot: bool, setup: Setup) -> World {
        let provider = Arc::new(FakeProvider::start());
        let relay = FakeRelay::start(setup.relay, vec![Account::new(provider.clone(), USER)]);
        let mut pf = Instance::new(name, chroot, relay.port());
        match relay.ca_pem() {
            Some(ca) => pf.relay_tls(ca),
            // A relay without STARTTLS: README's recipe all the same.
            None => pf.set("smtp_tls_security_level", "secure"),
        };
        let ca = pf.base.join("provider-ca.pem");
        provider.write_ca(&ca).unwrap();
        let config = plugin_config(&provider, &ca, &setup.config);
        pf.plugin_config(&config);
        for (k, v) in setup.main {
            pf.set(k, v);
        }
        let token_postfix = pf.write_token(TOKEN, &token_json(&provider, setup.valid_for));
        pf.sasl_passwd(&[(
            &format!("[127.0.0.1]:{}", relay.port()),
            &format!("{USER}:{token_postfix}"),
        )]);
        let token_host = pf.token_dir.join(TOKEN);
        World {
            pf,
            provider,
            relay,
            token_host,
            token_postfix,
        }
    }

    fn token(&self) -> Value {
        self.pf.read_token(TOKEN)
    }

    fn access_token(&self) -> String {
        self.token()["access_token"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// Wait until the token file holds a different access token than `old`.
    fn wait_token_replaced(&self, old: &str) -> String {
        let end = Instant::now() + DEADLINE;
        loop {
            let at = self.access_token();
            if at != old {
                return at;
            }
            assert!(
                Instant::now() < end,
                "token file not rewritten within {DEADLINE:?}; maillog:\n{}",
                self.pf.maillog()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The message arrived, as `mechanism`, for USER, with `token`.
    fn expect_delivered(&self, n: usize, mechanism: &str, token: &str) {
        let msgs = self
            .relay
            .wait_for_messages(n, DEADLINE)
            .unwrap_or_else(|e| {
                panic!("{e}\nmaillog:\n{}", self.pf.maillog());
            });
        let m = &msgs[n - 1];
        assert_eq!(m.user, USER);
        assert_eq!(m.mechanism, mechanism);
        assert_eq!(m.account, 0);
        assert!(m.tls, "AUTH and the message went over STARTTLS");
        assert_eq!(m.token_fingerprint, fp(token));
        assert_eq!(m.mail_from, SENDER);
        assert_eq!(m.rcpt_to, vec![RCPT.to_string()]);
        self.pf
            .wait_log_count(&[&format!("to=<{RCPT}>"), "status=sent"], n, DEADLINE);
        self.wait_queue_empty();
    }

    fn wait_queue_empty(&self) {
        let end = Instant::now() + DEADLINE;
        while !self.pf.queue().is_empty() {
            assert!(
                Instant::now() < end,
                "queue not empty: {:?}",
                self.pf.queue()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn send(&self, subject: &str) {
        self.pf.send(SENDER, RCPT, subject);
    }

    /// No secret in the maillog or command outputs; nothing bounced.
    fn finish(self) {
        let log = self.pf.maillog();
        assert!(!log.contains("status=bounced"), "a message bounced:\n{log}");
        assert!(
            !log.contains("fatal:") && !log.contains("panic:"),
            "Postfix reported a fatal error:\n{log}"
        );
        self.pf.assert_no_secrets(&self.provider.secrets());
        assert_chroot_holds_only_tokens(&self.pf);
    }
}

/// Nothing of ours in the chroot but the token directory: no CA
/// certificates, libraries or binaries were copied there.
fn assert_chroot_holds_only_tokens(pf: &Instance) {
    if !pf.chroot {
        return;
    }
    let names = |p: &Path| -> Vec<String> {
        let mut v: Vec<String> = std::fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        v.sort();
        v
    };
    const POSTFIX_DIRS: &[&str] = &[
        "active", "bounce", "corrupt", "defer", "deferred", "flush", "hold", "incoming",
        "maildrop", "pid", "private", "public", "saved", "trace",
    ];
    for n in names(&pf.queue) {
        assert!(
            n == "etc" || POSTFIX_DIRS.contains(&n.as_str()),
            "unexpected {n} in the chroot {}",
            pf.queue.display()
        );
    }
    assert_eq!(names(&pf.queue.join("etc")), vec!["tokens".to_string()]);
}

fn valid_token(chroot: bool) {
    let mut w = World::new("valid", chroot, Setup::default());
    let at = w.access_token();
    w.pf.start();
    w.send("valid token");
    w.expect_delivered(1, "XOAUTH2", &at);
    assert_eq!(w.provider.requests(), 0, "a valid token needs no refresh");
    w.pf.wait_log(
        &["Verified TLS connection established to 127.0.0.1"],
        DEADLINE,
    );
    let attempts = w.relay.auth_attempts();
    assert_eq!(attempts.len(), 1, "{attempts:?}");
    assert!(attempts[0].initial_response, "SASL-IR used: {attempts:?}");
    w.finish();
}

fn expired_token_is_refreshed(chroot: bool) {
    let mut w = World::new(
        "expired",
        chroot,
        Setup {
            valid_for: 0,
            ..Setup::default()
        },
    );
    let old = w.token();
    let (mode, uid, gid, ino) = file_meta(&w.token_host);
    w.pf.start();
    w.send("expired token");
    let msgs = w.relay.wait_for_messages(1, DEADLINE).unwrap_or_else(|e| {
        panic!("{e}\nmaillog:\n{}", w.pf.maillog());
    });
    let new = w.token();
    let at = new["access_token"].as_str().unwrap();
    assert_ne!(at, old["access_token"].as_str().unwrap());
    assert!(w.provider.is_valid_access_token(at));
    assert_eq!(
        msgs[0].token_fingerprint,
        fp(at),
        "the refreshed token was sent"
    );
    w.expect_delivered(1, "XOAUTH2", at);
    // One refresh, with this config's client, from inside the chroot.
    assert_eq!(w.provider.requests(), 1);
    let rec = &w.provider.recorded()[0];
    assert_eq!(rec.field("grant_type"), Some("refresh_token"));
    assert_eq!(rec.field("client_id"), Some(w.provider.client_id()));
    assert_eq!(rec.field("refresh_token"), old["refresh_token"].as_str());
    // Rewritten (a new inode: atomic rename), owner and mode kept.
    let (mode2, uid2, gid2, ino2) = file_meta(&w.token_host);
    assert_eq!((mode2, uid2, gid2), (mode, uid, gid));
    assert_eq!((uid2, gid2), postfix_ids());
    assert_eq!(mode2, 0o600);
    assert_ne!(ino2, ino, "the token file was replaced by rename");
    let expiry: i64 = new["expiry"].as_str().unwrap().parse().unwrap();
    assert!(expiry > unix_now() + 3000, "{new}");
    assert_eq!(new["refresh_token"], old["refresh_token"]);
    w.finish();
}

fn revoked_token_defers_then_delivers(chroot: bool) {
    let mut w = World::new("revoked", chroot, Setup::default());
    let at = w.access_token();
    w.provider.revoke_access_token(&at);
    w.pf.start();
    w.send("revoked token");
    let attempts = w.relay.wait_for_auth_attempts(1, DEADLINE).unwrap();
    assert_eq!(attempts[0].outcome, AuthOutcome::Rejected);
    assert_eq!(
        attempts[0].token_fingerprint.as_deref(),
        Some(fp(&at).as_str())
    );
    assert_eq!(
        attempts[0].error_ack.as_deref(),
        Some(&b""[..]),
        "XOAUTH2 answers the 401 challenge with an empty response"
    );
    let q = w.pf.wait_deferred(SENDER, DEADLINE);
    assert!(
        q.delay_reasons.iter().any(|r| r.contains("535")),
        "deferred because of the 535: {q:?}"
    );
    // The forced background refresh replaces the rejected token...
    let new = w.wait_token_replaced(&at);
    assert!(w.provider.is_valid_access_token(&new));
    assert!(w.relay.messages().is_empty());
    // ...so the next attempt goes through.
    w.pf.flush();
    w.expect_delivered(1, "XOAUTH2", &new);
    assert_eq!(w.provider.requests(), 1, "one forced refresh");
    let log = w.pf.maillog();
    assert!(log.contains("forced refresh started"), "{log}");
    w.finish();
}

fn invalid_grant_keeps_mail_queued(chroot: bool) {
    let mut w = World::new(
        "invalid-grant",
        chroot,
        Setup {
            valid_for: 0,
            ..Setup::default()
        },
    );
    w.provider.set_mode(Mode::InvalidGrant);
    let before = std::fs::read(&w.token_host).unwrap();
    w.pf.start();
    w.send("invalid grant");
    let q = w.pf.wait_deferred(SENDER, DEADLINE);
    let line =
        w.pf.wait_log(&["SASL authentication", "get-token"], DEADLINE);
    assert!(line.contains("re-authorise"), "{line}");
    assert!(
        line.contains(&w.token_postfix),
        "names the token file: {line}"
    );
    assert!(line.contains("invalid_grant"), "{line}");
    assert!(w.provider.requests() >= 1);
    assert!(
        w.relay.auth_attempts().is_empty(),
        "nothing sent to the relay"
    );
    assert!(w.relay.messages().is_empty());
    assert_eq!(
        std::fs::read(&w.token_host).unwrap(),
        before,
        "token file untouched"
    );
    // Still queued after the deferral, not bounced.
    assert!(w.pf.queue().iter().any(|m| m.queue_id == q.queue_id));
    w.finish();
}

fn hung_provider_defers_within_refresh_timeout(chroot: bool) {
    let mut w = World::new(
        "hung",
        chroot,
        Setup {
            valid_for: 0,
            config: json!({"refresh_timeout": 3}),
            ..Setup::default()
        },
    );
    w.provider.set_mode(Mode::Hung);
    w.pf.start();
    let sent = Instant::now();
    w.send("hung provider");
    let q = w.pf.wait_deferred(SENDER, DEADLINE);
    let took = sent.elapsed();
    // Generous: refresh_timeout is 3 s; a stuck smtp would take the
    // provider's 120 s hang or Postfix's own timeouts (minutes).
    assert!(took < Duration::from_secs(45), "deferral took {took:?}");
    // The helper gave up at its deadline, or the plugin stopped waiting.
    let line =
        w.pf.wait_log(&["SASL authentication", "refresh failed"], DEADLINE);
    assert!(
        line.contains("refresh_timeout (3 s)") || line.contains("within 3 s"),
        "{line}"
    );
    assert!(
        line.contains("refresh_timeout"),
        "says what to tune: {line}"
    );
    assert!(w.relay.messages().is_empty());
    assert!(w.pf.queue().iter().any(|m| m.queue_id == q.queue_id));
    // The helper ends at its own deadline (refresh_timeout): none is left
    // behind, hanging on the provider.
    let end = Instant::now() + Duration::from_secs(10);
    while postfix::process_running("sasl-xoauth2-refresh", &w.token_postfix) {
        assert!(Instant::now() < end, "a refresh helper is still running");
        std::thread::sleep(Duration::from_millis(100));
    }
    w.finish();
}

fn oauthbearer_filter(chroot: bool) {
    let mut w = World::new(
        "oauthbearer",
        chroot,
        Setup {
            main: vec![("smtp_sasl_mechanism_filter", "oauthbearer")],
            ..Setup::default()
        },
    );
    let at = w.access_token();
    w.pf.start();
    w.send("oauthbearer");
    w.expect_delivered(1, "OAUTHBEARER", &at);
    assert_eq!(w.relay.auth_attempts().len(), 1);
    // Rejected: the RFC 7628 error, answered with a single \x01; deferred,
    // then delivered with the force-refreshed token.
    w.provider.revoke_access_token(&at);
    w.send("oauthbearer after revocation");
    let attempts = w.relay.wait_for_auth_attempts(2, DEADLINE).unwrap();
    assert_eq!(attempts[1].mechanism, "OAUTHBEARER");
    assert_eq!(attempts[1].outcome, AuthOutcome::Rejected);
    assert_eq!(attempts[1].error_ack.as_deref(), Some(&b"\x01"[..]));
    w.pf.wait_deferred(SENDER, DEADLINE);
    let new = w.wait_token_replaced(&at);
    w.pf.flush();
    w.expect_delivered(2, "OAUTHBEARER", &new);
    w.finish();
}

fn xoauth2_preferred_over_login(chroot: bool) {
    let mut w = World::new(
        "xoauth2-login",
        chroot,
        Setup {
            relay: RelayOptions {
                login: true,
                ..RelayOptions::default()
            },
            main: vec![("smtp_sasl_mechanism_filter", "xoauth2,login")],
            ..Setup::default()
        },
    );
    // The system's plugins too, so that LOGIN is really available.
    w.pf.add_sasl_dir(&postfix::system_sasl_dir());
    let at = w.access_token();
    w.pf.start();
    w.send("xoauth2 or login");
    w.expect_delivered(1, "XOAUTH2", &at);
    let attempts = w.relay.auth_attempts();
    assert!(
        attempts.iter().all(|a| a.mechanism == "XOAUTH2"),
        "{attempts:?}"
    );
    // Control: LOGIN is loaded and offered, so the choice above was real.
    w.pf.set("smtp_sasl_mechanism_filter", "login");
    w.pf.reload();
    w.pf.wait_log(&["postfix/master", "reload"], DEADLINE);
    w.pf.send("control@postfix.test", RCPT, "login only");
    let attempts = w.relay.wait_for_auth_attempts(2, DEADLINE).unwrap();
    assert_eq!(attempts[1].mechanism, "LOGIN", "{attempts:?}");
    w.pf.wait_deferred("control@postfix.test", DEADLINE);
    w.finish();
}

fn two_accounts_two_providers(chroot: bool) {
    let a = Arc::new(FakeProvider::start());
    let b = Arc::new(FakeProvider::start_with(Options {
        client_id: "outlook-client-id".into(),
        client_secret: format!("outlook-secret-{}", std::process::id()),
        ..Options::default()
    }));
    const BOB: &str = "bob@outlook.test";
    let relay_a = FakeRelay::start(RelayOptions::default(), vec![Account::new(a.clone(), USER)]);
    let relay_b = FakeRelay::start(
        RelayOptions {
            hostname: "smtp.fake-outlook.test".into(),
            ..RelayOptions::default()
        },
        vec![Account::new(b.clone(), BOB)],
    );
    let mut pf = Instance::new("two-accounts", chroot, relay_a.port());
    pf.relay_tls(&format!(
        "{}{}",
        relay_a.ca_pem().unwrap(),
        relay_b.ca_pem().unwrap()
    ));
    // One CA bundle for both token endpoints (handed to the helper).
    let ca = pf.base.join("provider-ca.pem");
    std::fs::write(&ca, format!("{}{}", a.ca_pem(), b.ca_pem())).unwrap();
    // Bob's token file names its own endpoint (and client): the config must
    // allow it (the trust rule in common::settings).
    pf.plugin_config(&plugin_config(
        &a,
        &ca,
        &json!({ "allowed_token_endpoints": [b.url()] }),
    ));

    let alice = pf.write_token("alice.json", &token_json(&a, 0));
    let mut bob_token = token_json(&b, 0);
    bob_token["client_id"] = b.client_id().into();
    bob_token["client_secret"] = b.client_secret().into();
    bob_token["token_endpoint"] = b.url().into();
    bob_token["user"] = BOB.into();
    let bob = pf.write_token("bob.json", &bob_token);
    const BOB_SENDER: &str = "bob-sender@postfix.test";
    pf.sasl_passwd(&[
        (SENDER, &format!("{USER}:{alice}")),
        (BOB_SENDER, &format!("bob-login-name:{bob}")),
    ]);
    let relays = pf.map(
        "sender_relay",
        &[(BOB_SENDER, &format!("[127.0.0.1]:{}", relay_b.port()))],
    );
    pf.set("smtp_sender_dependent_authentication", "yes");
    pf.set("sender_dependent_relayhost_maps", &relays);
    pf.start();
    pf.send(SENDER, RCPT, "from alice");
    pf.send(BOB_SENDER, RCPT, "from bob");

    let ma = relay_a
        .wait_for_messages(1, DEADLINE)
        .unwrap_or_else(|e| panic!("{e}\nmaillog:\n{}", pf.maillog()));
    let mb = relay_b
        .wait_for_messages(1, DEADLINE)
        .unwrap_or_else(|e| panic!("{e}\nmaillog:\n{}", pf.maillog()));
    assert_eq!(
        (ma[0].user.as_str(), ma[0].mail_from.as_str()),
        (USER, SENDER)
    );
    assert_eq!(
        (mb[0].user.as_str(), mb[0].mail_from.as_str()),
        (BOB, BOB_SENDER)
    );
    assert_eq!(ma[0].mechanism, "XOAUTH2");
    assert_eq!(mb[0].mechanism, "XOAUTH2");
    // Each refresh went to its own provider with its own client.
    assert_eq!((a.requests(), b.requests()), (1, 1));
    let (ra, rb) = (&a.recorded()[0], &b.recorded()[0]);
    assert_eq!(ra.field("client_id"), Some(a.client_id()));
    assert_eq!(ra.field("client_secret"), Some(a.client_secret()));
    assert_eq!(rb.field("client_id"), Some("outlook-client-id"));
    assert_eq!(rb.field("client_secret"), Some(b.client_secret()));
    assert_eq!(
        mb[0].token_fingerprint,
        fp(pf.read_token("bob.json")["access_token"].as_str().unwrap())
    );
    assert_eq!(
        ma[0].token_fingerprint,
        fp(pf.read_token("alice.json")["access_token"]
            .as_str()
            .unwrap())
    );
    assert!(relay_a.messages().len() == 1 && relay_b.messages().len() == 1);
    pf.wait_log_count(&["status=sent"], 2, DEADLINE);
    let log = pf.maillog();
    assert!(!log.contains("status=bounced"), "{log}");
    assert_chroot_holds_only_tokens(&pf);
    let mut secrets = a.secrets();
    secrets.extend(b.secrets());
    pf.assert_no_secrets(&secrets);
}

/// README's recipe keeps the token off a relay that offers no STARTTLS:
/// `secure` refuses the session; and were TLS only opportunistic (`may`),
/// `noplaintext` still keeps XOAUTH2/OAUTHBEARER off the cleartext link,
/// now that the plugin no longer claims SASL_SEC_NOPLAINTEXT.
fn no_starttls_relay_never_sees_the_token(chroot: bool) {
    let mut w = World::new(
        "no-starttls",
        chroot,
        Setup {
            relay: RelayOptions {
                starttls: false,
                ..RelayOptions::default()
            },
            ..Setup::default()
        },
    );
    w.pf.start();
    w.send("over cleartext?");
    w.pf.wait_deferred(SENDER, DEADLINE);
    w.pf.wait_log(&["TLS is required, but was not offered"], DEADLINE);
    assert!(w.relay.auth_attempts().is_empty());

    w.pf.set("smtp_tls_security_level", "may");
    w.pf.reload();
    w.pf.wait_log(&["postfix/master", "reload"], DEADLINE);
    w.pf.flush();
    w.pf.wait_log(
        &["cannot authenticate to server", "no mechanism available"],
        DEADLINE,
    );
    let attempts = w.relay.auth_attempts();
    assert!(attempts.is_empty(), "token sent in cleartext: {attempts:?}");
    assert!(w.relay.messages().is_empty());
    assert_eq!(w.pf.queue().len(), 1, "the mail stays queued");
    w.finish();
}

/// The C++ README's settings (`smtp_sasl_security_options =` empty,
/// `smtp_sasl_mechanism_filter = xoauth2`, `smtp_tls_security_level =
/// encrypt`) still select the plugin.
fn cxx_readme_settings_still_select_the_plugin(chroot: bool) {
    let mut w = World::new(
        "cxx-settings",
        chroot,
        Setup {
            main: vec![
                ("smtp_sasl_security_options", ""),
                (
                    "smtp_sasl_tls_security_options",
                    "$smtp_sasl_security_options",
                ),
                ("smtp_sasl_mechanism_filter", "xoauth2"),
                ("smtp_tls_security_level", "encrypt"),
            ],
            ..Setup::default()
        },
    );
    let at = w.access_token();
    w.pf.start();
    w.send("c++ settings");
    w.expect_delivered(1, "XOAUTH2", &at);
    w.finish();
}

macro_rules! both_modes {
    ($($name:ident),* $(,)?) => {
        /// smtp and relay chrooted in the queue directory (Debian's default).
        mod chroot {
            $(#[test] fn $name() { super::$name(true) })*
        }
        /// smtp and relay not chrooted.
        mod no_chroot {
            $(#[test] fn $name() { super::$name(false) })*
        }
    };
}

both_modes!(
    valid_token,
    expired_token_is_refreshed,
    revoked_token_defers_then_delivers,
    invalid_grant_keeps_mail_queued,
    hung_provider_defers_within_refresh_timeout,
    oauthbearer_filter,
    xoauth2_preferred_over_login,
    two_accounts_two_providers,
    no_starttls_relay_never_sees_the_token,
    cxx_readme_settings_still_select_the_plugin,
);
