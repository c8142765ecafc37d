//! Email receivers against the simulated SMTP server (tools::sim::smtp) on 127.0.0.1: the
//! whole daemon mails a firing alert and its recovery over STARTTLS with AUTH, trusting the
//! sim's private CA through `ca_file`; the notifier alone shows implicit TLS, a temporary
//! failure retried, a rejection and a refused login journaled as failed, and an untrusted
//! certificate refused. Backoff is configured in milliseconds, so nothing sleeps.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use agents::{Alert, AlertStatus, Severity};
use chrono::{DateTime, Utc};
use memory::{JournalEntry, JournalQuery};
use runtime::config::{
    AlertReceiverConfig, AlertingConfig, EmailConfig, NotifyConfig, ReceiverKind, RouteConfig,
    SmtpSecurity,
};
use runtime::daemon::{Daemon, RunOptions};
use runtime::notifier::Notifier;
use runtime::router::{Dispatch, DispatchKind};
use tools::secret::Secret;
use tools::sim::{SimCertificates, SmtpFault, SmtpSim, SmtpSimOptions, SmtpSimSecurity, SmtpStage};

use crate::support::{config_for, system};

const USER: &str = "alerts@example.com";
const PASSWORD: &str = "s3cret-smtp-pa55word";

/// The sim with TLS (`implicit` or STARTTLS) and a login, and the CA to trust written to a
/// file in `dir`.
async fn tls_sim(dir: &Path, implicit: bool) -> (SmtpSim, std::path::PathBuf) {
    let certificates = SimCertificates::generate(&["localhost", "127.0.0.1"]).unwrap();
    let ca_file = dir.join("smtp-ca.pem");
    std::fs::write(&ca_file, &certificates.ca_pem).unwrap();
    let security = if implicit {
        SmtpSimSecurity::ImplicitTls(certificates)
    } else {
        SmtpSimSecurity::Starttls(certificates)
    };
    let sim = SmtpSim::start(SmtpSimOptions {
        security,
        login: Some((USER.to_owned(), PASSWORD.to_owned())),
    })
    .await
    .unwrap();
    (sim, ca_file)
}

fn email_config(sim: &SmtpSim, security: SmtpSecurity, ca_file: Option<&Path>) -> EmailConfig {
    EmailConfig {
        host: "127.0.0.1".into(),
        port: Some(sim.port()),
        security,
        allow_insecure: false,
        username: Some(USER.into()),
        password: Some(Secret::new(PASSWORD)),
        password_file: None,
        from: format!("Command Center <{USER}>"),
        ca_file: ca_file.map(Path::to_path_buf),
        timeout: Duration::from_secs(10),
        max_attempts: 3,
        backoff_initial: Duration::from_millis(1),
        backoff_max: Duration::from_millis(5),
    }
}

fn pager() -> AlertReceiverConfig {
    AlertReceiverConfig {
        name: "pager".into(),
        kind: ReceiverKind::Email,
        webhook: None,
        chat: None,
        channel: None,
        to: vec!["oncall@example.com".into(), "Ops <ops@example.com>".into()],
    }
}

fn at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-24T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn alert(status: AlertStatus, summary: &str) -> Alert {
    Alert {
        key: "validators.out_of_sync/alpha".into(),
        rule: "out_of_sync".into(),
        status,
        severity: Severity::Critical,
        summary: summary.into(),
        labels: BTreeMap::from([
            ("domain".into(), "validators".into()),
            ("validator".into(), "alpha".into()),
        ]),
        evidence: serde_json::json!({"lag_seconds": 266, "limit_seconds": 120}),
        starts_at: at(),
        at: at(),
        observed_at: at(),
    }
}

fn firing_dispatch() -> Dispatch {
    let alert = alert(
        AlertStatus::Firing,
        "alpha: node is 266s behind the masterchain (limit 120s)",
    );
    Dispatch {
        id: 0,
        kind: DispatchKind::Notification,
        receiver: "pager".into(),
        group_key: "0:{validator=\"alpha\"}".into(),
        group_labels: BTreeMap::from([("validator".into(), "alpha".into())]),
        status: AlertStatus::Firing,
        changed: vec![alert.key.clone()],
        alerts: vec![alert],
        silence: None,
        at: at(),
    }
}

fn journaled(store: &memory::Store, kind: &str) -> Vec<JournalEntry> {
    store
        .journal()
        .query(&JournalQuery {
            kind: Some(kind.into()),
            ..Default::default()
        })
        .unwrap()
}

/// A notifier with the `pager` email receiver, journaling into a store in `dir`.
fn notifier(email: EmailConfig, dir: &Path) -> (Notifier, memory::Store) {
    let store = memory::Store::open(&dir.join("store")).unwrap();
    let telemetry = agents::telemetry::Telemetry::default();
    let auditor = agents::audit::Auditor::new(store.clone(), telemetry.clone());
    let notify = NotifyConfig {
        log: false,
        webhooks: Vec::new(),
        email: Some(email),
    };
    let alerting = AlertingConfig {
        receivers: vec![pager()],
        ..AlertingConfig::default()
    };
    (Notifier::new(&notify, &alerting, auditor, telemetry), store)
}

/// The one failure journaled, after asserting nothing was journaled as sent.
fn only_failure(store: &memory::Store) -> serde_json::Value {
    assert!(journaled(store, "notification.sent").is_empty());
    let failed = journaled(store, "notification.failed");
    assert_eq!(failed.len(), 1, "{failed:?}");
    let body = failed[0].body.clone();
    assert!(
        !body.to_string().contains(PASSWORD),
        "the password leaked: {body}"
    );
    body
}

#[test]
fn a_firing_alert_and_its_recovery_are_mailed_over_starttls_in_one_thread() {
    system().block_on(async {
        let dir = tempfile::tempdir().unwrap();
        let (sim, ca_file) = tls_sim(dir.path(), false).await;
        let mut config = config_for("http://127.0.0.1:9/unused", &dir.path().join("data"));
        config.agents.market.enabled = false;
        config.notify.log = false;
        config.notify.email = Some(email_config(&sim, SmtpSecurity::Starttls, Some(&ca_file)));
        config.alerting.receivers.push(pager());
        config.alerting.route = RouteConfig {
            receiver: Some("pager".into()),
            group_by: Some(vec!["validator".into()]),
            ..RouteConfig::default()
        };
        config.alerting.evaluation_interval = Duration::from_secs(24 * 3600);
        let daemon = Daemon::start(config, RunOptions::default()).await.unwrap();
        let router = daemon.state.router.clone();
        let store = daemon.state.store.clone();

        let now = Utc::now();
        router
            .ingest(
                alert(
                    AlertStatus::Firing,
                    "alpha: node is 266s behind the masterchain (limit 120s)",
                ),
                now,
            )
            .await
            .unwrap();
        let firing = sim.wait_for_messages(1, Duration::from_secs(30)).await;
        assert_eq!(firing.len(), 1);
        let mut resolved = alert(AlertStatus::Resolved, "alpha: back in sync (lag 3s)");
        resolved.at = at() + chrono::Duration::minutes(7);
        router
            .ingest(resolved, now + chrono::Duration::seconds(1))
            .await
            .unwrap();
        router
            .tick(now + chrono::Duration::seconds(2))
            .await
            .unwrap();
        // Shutdown drains the notifier: both mails are out and journaled when it returns.
        daemon.shutdown("test").await.unwrap();
        let mails = sim.wait_for_messages(2, Duration::from_secs(30)).await;
        assert_eq!(mails.len(), 2, "{:?}", sim.commands());

        let first = &mails[0];
        assert!(first.tls, "delivered after STARTTLS");
        assert_eq!(first.authenticated_as.as_deref(), Some(USER));
        assert_eq!(first.mail_from, USER);
        assert_eq!(first.rcpt_to, ["oncall@example.com", "ops@example.com"]);
        assert_eq!(
            first.header("Subject").as_deref(),
            Some("[FIRING:1] validator=alpha: alpha: node is 266s behind the masterchain (limit 120s)")
        );
        assert_eq!(
            first.header("From").as_deref(),
            Some("\"Command Center\" <alerts@example.com>")
        );
        assert_eq!(
            first.header("Auto-Submitted").as_deref(),
            Some("auto-generated")
        );
        let body = first.text_body();
        for expected in [
            "🔴 CRITICAL: alpha: node is 266s behind the masterchain (limit 120s) [validators.out_of_sync/alpha]",
            "Group: validator=alpha\r\nReceiver: pager\r\n",
            "  validator = alpha\r\n",
            "    \"lag_seconds\": 266,",
            "command-center alerts ack validators.out_of_sync/alpha",
        ] {
            assert!(body.contains(expected), "missing {expected:?} in\n{body}");
        }
        let second = &mails[1];
        assert_eq!(
            second.header("Subject").as_deref(),
            Some("[RESOLVED] validator=alpha: alpha: back in sync (lag 3s)")
        );
        assert!(second.text_body().starts_with("✅ RESOLVED: alpha: back in sync"));
        // One thread: both refer to the group's id; each has its own Message-ID.
        let references = first.header("References").unwrap();
        assert_eq!(second.header("References").as_deref(), Some(references.as_str()));
        assert_eq!(first.header("In-Reply-To").as_deref(), Some(references.as_str()));
        assert_ne!(first.header("Message-ID"), second.header("Message-ID"));

        let sent = journaled(&store, "notification.sent");
        assert_eq!(sent.len(), 2, "{sent:?}");
        let record = &sent[0].body;
        assert_eq!(record["receiver"], "pager");
        assert_eq!(record["channel"], "email");
        assert_eq!(
            record["recipients"],
            serde_json::json!(["oncall@example.com", "ops@example.com"])
        );
        assert_eq!(record["smtp_code"], 250);
        assert_eq!(record["attempts"], 1);
        assert_eq!(
            record["message_id"].as_str(),
            first.header("Message-ID").as_deref()
        );
        let everything = store
            .journal()
            .query(&JournalQuery::default())
            .unwrap()
            .iter()
            .map(|entry| entry.body.to_string())
            .collect::<String>();
        assert!(!everything.contains(PASSWORD), "the password was journaled");
    });
}

#[tokio::test]
async fn implicit_tls_delivers_from_the_first_byte() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, ca_file) = tls_sim(dir.path(), true).await;
    let (notifier, store) = notifier(
        email_config(&sim, SmtpSecurity::Tls, Some(&ca_file)),
        dir.path(),
    );
    notifier.deliver(&firing_dispatch()).await;
    let mails = sim.wait_for_messages(1, Duration::from_secs(10)).await;
    assert_eq!(mails.len(), 1);
    assert!(mails[0].tls);
    assert_eq!(
        sim.commands()[0][0],
        "EHLO",
        "no STARTTLS: TLS from the start"
    );
    assert_eq!(journaled(&store, "notification.sent").len(), 1);
}

#[tokio::test]
async fn a_temporary_failure_is_retried_and_then_delivered() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, ca_file) = tls_sim(dir.path(), false).await;
    sim.inject(SmtpFault {
        stage: SmtpStage::Mail,
        code: 451,
        count: 1,
    });
    let (notifier, store) = notifier(
        email_config(&sim, SmtpSecurity::Starttls, Some(&ca_file)),
        dir.path(),
    );
    notifier.deliver(&firing_dispatch()).await;
    assert_eq!(sim.messages().len(), 1);
    assert_eq!(sim.transactions(), 2);
    assert_eq!(sim.sessions(), 2, "a new connection for the second attempt");
    let sent = journaled(&store, "notification.sent");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].body["attempts"], 2);
    assert_eq!(sent[0].body["smtp_code"], 250);
    assert!(journaled(&store, "notification.failed").is_empty());
}

#[tokio::test]
async fn a_lasting_temporary_failure_fails_after_max_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, ca_file) = tls_sim(dir.path(), false).await;
    sim.inject(SmtpFault {
        stage: SmtpStage::Mail,
        code: 421,
        count: 10,
    });
    let (notifier, store) = notifier(
        email_config(&sim, SmtpSecurity::Starttls, Some(&ca_file)),
        dir.path(),
    );
    notifier.deliver(&firing_dispatch()).await;
    assert!(sim.messages().is_empty());
    assert_eq!(sim.transactions(), 3, "max_attempts = 3");
    let body = only_failure(&store);
    assert_eq!(body["attempts"], 3);
    assert_eq!(body["smtp_code"], 421);
    assert_eq!(
        body["error"],
        "127.0.0.1:".to_owned()
            + &sim.port().to_string()
            + " is unavailable: 421 4.3.2 Service not available, closing transmission channel"
    );
}

#[tokio::test]
async fn a_rejection_is_not_retried_and_is_journaled_as_failed() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, ca_file) = tls_sim(dir.path(), false).await;
    sim.inject(SmtpFault {
        stage: SmtpStage::Data,
        code: 550,
        count: 1,
    });
    let (notifier, store) = notifier(
        email_config(&sim, SmtpSecurity::Starttls, Some(&ca_file)),
        dir.path(),
    );
    notifier.deliver(&firing_dispatch()).await;
    assert!(sim.messages().is_empty());
    assert_eq!(sim.transactions(), 1, "a 5xx is final");
    let body = only_failure(&store);
    assert_eq!(body["channel"], "email");
    assert_eq!(body["attempts"], 1);
    assert_eq!(body["smtp_code"], 550);
    assert_eq!(
        body["error"],
        format!(
            "127.0.0.1:{} rejected the mail (550 5.1.1 Mailbox unavailable)",
            sim.port()
        )
    );
}

#[tokio::test]
async fn a_wrong_password_fails_with_a_clear_message_that_does_not_contain_it() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, ca_file) = tls_sim(dir.path(), false).await;
    let mut config = email_config(&sim, SmtpSecurity::Starttls, Some(&ca_file));
    config.password = Some(Secret::new("wrong-pa55word-42"));
    let (notifier, store) = notifier(config, dir.path());
    notifier.deliver(&firing_dispatch()).await;
    assert!(sim.messages().is_empty());
    assert_eq!(sim.auth_failures(), 1, "a refused login is not retried");
    let body = only_failure(&store);
    assert_eq!(body["smtp_code"], 535);
    let error = body["error"].as_str().unwrap();
    assert_eq!(
        error,
        format!(
            "127.0.0.1:{} refused the login of \"alerts@example.com\" (535 5.7.8 Authentication credentials invalid); check notify.email.username and the password (COMMAND_CENTER__NOTIFY__EMAIL__PASSWORD or notify.email.password_file)",
            sim.port()
        )
    );
    assert!(!body.to_string().contains("wrong-pa55word-42"), "{body}");
}

#[tokio::test]
async fn a_certificate_from_an_untrusted_ca_is_refused_and_not_retried() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, _ca_file) = tls_sim(dir.path(), false).await;
    // No ca_file: only the public roots, which did not sign the sim's certificate.
    let (notifier, store) = notifier(email_config(&sim, SmtpSecurity::Starttls, None), dir.path());
    notifier.deliver(&firing_dispatch()).await;
    assert!(sim.messages().is_empty());
    assert_eq!(sim.sessions(), 1, "TLS failures are not retried");
    assert!(
        !sim.commands()[0].iter().any(|verb| verb == "AUTH"),
        "no credentials before TLS: {:?}",
        sim.commands()
    );
    let body = only_failure(&store);
    let error = body["error"].as_str().unwrap();
    assert!(
        error.starts_with(&format!("TLS with 127.0.0.1:{} failed: ", sim.port()))
            && error.contains("certificate")
            && error.ends_with("give that CA in notify.email.ca_file"),
        "{error}"
    );
}

#[test]
fn check_explains_bad_email_settings_without_echoing_the_password() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("mail.toml"),
        "[notify.email]\nhost = \"smtp.example.com\"\nsecurity = \"none\"\nusername = \"alerts\"\nfrom = \"alerts at example.com\"\n\n[[alerting.receivers]]\nname = \"pager\"\nkind = \"email\"\nto = [\"oncall@example.com\", \"oncall.example.com\"]\n\n[[alerting.receivers]]\nname = \"sms\"\nkind = \"email\"\n",
    )
    .unwrap();
    let (code, _, stderr) = crate::support::run_cli_env(
        dir.path(),
        &["--config", "mail.toml", "check"],
        &[("COMMAND_CENTER__NOTIFY__EMAIL__PASSWORD", PASSWORD)],
    );
    assert_eq!(code, 2, "{stderr}");
    for expected in [
        "mail.toml has 4 problems",
        "mail.toml:5: notify.email.from: \"alerts at example.com\" is not an email address",
        "mail.toml:3: notify.email.security: \"none\" sends mail (and the password) in clear text, so it is allowed only for a relay on this machine (localhost, 127.0.0.1, ::1), not \"smtp.example.com\"",
        "mail.toml:10: alerting.receivers[0].to[1]: \"oncall.example.com\" is not an email address",
        "mail.toml:12: alerting.receivers[1].to: an email receiver lists its recipients: to = [\"oncall@example.com\"]",
    ] {
        assert!(
            stderr.contains(expected),
            "{expected:?} missing from:\n{stderr}"
        );
    }
    assert!(!stderr.contains(PASSWORD), "{stderr}");

    // Without [notify.email] an email receiver says what to add.
    std::fs::write(
        dir.path().join("nosmtp.toml"),
        "[[alerting.receivers]]\nname = \"pager\"\nkind = \"email\"\nto = [\"oncall@example.com\"]\n",
    )
    .unwrap();
    let (code, _, stderr) =
        crate::support::run_cli(dir.path(), &["--config", "nosmtp.toml", "check"]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("nosmtp.toml:3: alerting.receivers[0].kind: email receivers send through an SMTP server: add [notify.email] with host and from"),
        "{stderr}"
    );
}
