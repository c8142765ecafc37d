use std::collections::BTreeMap;

use agents::Severity;

use super::*;

fn at() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-11-24T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn alert(key: &str, status: AlertStatus, summary: &str) -> Alert {
    Alert {
        key: key.to_owned(),
        rule: key.split('/').next().unwrap_or(key).to_owned(),
        status,
        severity: Severity::Critical,
        summary: summary.to_owned(),
        labels: BTreeMap::from([
            ("domain".to_owned(), "validators".to_owned()),
            ("validator".to_owned(), "bravo".to_owned()),
        ]),
        evidence: serde_json::json!({"balance_ton": 1000.0, "release": {"url": "https://github.com/ton-blockchain/ton/releases/tag/v2025.03"}}),
        starts_at: at(),
        at: at(),
        observed_at: at(),
    }
}

fn dispatch(status: AlertStatus, kind: DispatchKind, alerts: Vec<Alert>) -> Dispatch {
    Dispatch {
        id: 0,
        kind,
        receiver: "pager".to_owned(),
        group_key: "0:{validator=\"bravo\"}".to_owned(),
        group_labels: BTreeMap::from([("validator".to_owned(), "bravo".to_owned())]),
        status,
        changed: alerts
            .iter()
            .take(1)
            .map(|alert| alert.key.clone())
            .collect(),
        alerts,
        silence: None,
        at: at(),
    }
}

fn firing_pair() -> Dispatch {
    dispatch(
        AlertStatus::Firing,
        DispatchKind::Notification,
        vec![
            alert(
                "validators.low_balance/bravo",
                AlertStatus::Firing,
                "bravo: wallet holds 1000 TON",
            ),
            alert(
                "validators.not_in_set/bravo",
                AlertStatus::Firing,
                "bravo is not in the validator set",
            ),
        ],
    )
}

#[test]
fn subjects_say_status_count_group_and_headline() {
    let check = |dispatch: &Dispatch, expected: &str| assert_eq!(subject(dispatch), expected);
    check(
        &firing_pair(),
        "[FIRING:2] validator=bravo: bravo: wallet holds 1000 TON",
    );
    let mut repeat = firing_pair();
    repeat.kind = DispatchKind::Repeat;
    check(
        &repeat,
        "[FIRING:2, repeat] validator=bravo: bravo: wallet holds 1000 TON",
    );
    let mut escalated = firing_pair();
    escalated.kind = DispatchKind::Escalation;
    escalated.alerts.truncate(1);
    check(
        &escalated,
        "[FIRING:1, escalated] validator=bravo: bravo: wallet holds 1000 TON",
    );
    let resolved = dispatch(
        AlertStatus::Resolved,
        DispatchKind::Notification,
        vec![alert(
            "validators.low_balance/bravo",
            AlertStatus::Resolved,
            "bravo: balance back to 400000 TON",
        )],
    );
    check(
        &resolved,
        "[RESOLVED] validator=bravo: bravo: balance back to 400000 TON",
    );
    // No group labels: the key names the group; a newline cannot break the header.
    let mut alone = dispatch(
        AlertStatus::Firing,
        DispatchKind::Notification,
        vec![alert(
            "market.price_move/ton",
            AlertStatus::Firing,
            "TON fell\n10%",
        )],
    );
    alone.group_labels.clear();
    check(&alone, "[FIRING:1] market.price_move/ton: TON fell 10%");
    let mut long = firing_pair();
    long.alerts[0].summary = "x".repeat(500);
    assert_eq!(subject(&long).chars().count(), MAX_SUBJECT_CHARS);
    assert!(subject(&long).ends_with("..."));
}

#[test]
fn the_body_carries_chat_text_labels_evidence_links_and_how_to_ack() {
    let text = body(&firing_pair());
    assert!(
        text.starts_with("🔴 CRITICAL: bravo: wallet holds 1000 TON [validators.low_balance/bravo]\n🔴 CRITICAL: bravo is not in the validator set"),
        "{text}"
    );
    for expected in [
        "Group: validator=bravo\nReceiver: pager\n",
        "-- validators.low_balance/bravo --\nStatus:   FIRING (new), critical\nRule:     validators.low_balance\n",
        "Status:   FIRING, critical",
        "Since:    2026-11-24 10:00:00 UTC\n",
        "Labels:\n  domain = validators\n  validator = bravo\n",
        "Evidence:\n  {\n    \"balance_ton\": 1000.0,",
        "Links:\n  https://github.com/ton-blockchain/ton/releases/tag/v2025.03\n",
        "command-center alerts ack validators.low_balance/bravo",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
}

#[test]
fn mails_of_one_group_share_a_thread_and_get_their_own_ids() {
    let first = firing_pair();
    let mut later = firing_pair();
    later.status = AlertStatus::Resolved;
    let mut other = firing_pair();
    other.group_key = "0:{validator=\"alpha\"}".to_owned();
    let thread = thread_id(&first, "example.com");
    assert_eq!(thread, thread_id(&later, "example.com"));
    assert_ne!(thread, thread_id(&other, "example.com"));
    assert!(thread.starts_with("<cc.") && thread.ends_with("@example.com>"));
    let one = message_id(&first, "example.com", at());
    let two = message_id(&first, "example.com", at());
    assert_ne!(one, two);
    assert!(one.starts_with(&thread[..thread.len() - "@example.com>".len()]));
}

#[test]
fn a_rendered_mail_is_plain_text_threaded_and_marked_automatic() {
    let from: Mailbox = "Command Center <alerts@example.com>".parse().unwrap();
    let to = parse_recipients(&[
        "oncall@example.com".to_owned(),
        "Ops <ops@example.com>".to_owned(),
    ])
    .unwrap();
    let dispatch = firing_pair();
    let message = render(&dispatch, &from, &to, "<id.1@example.com>").unwrap();
    let text = String::from_utf8(message.formatted()).unwrap();
    let thread = thread_id(&dispatch, "example.com");
    for expected in [
        "From: \"Command Center\" <alerts@example.com>\r\n".to_owned(),
        "To: oncall@example.com, Ops <ops@example.com>\r\n".to_owned(),
        "Subject: [FIRING:2] validator=bravo: bravo: wallet holds 1000 TON\r\n".to_owned(),
        "Message-ID: <id.1@example.com>\r\n".to_owned(),
        format!("In-Reply-To: {thread}\r\n"),
        format!("References: {thread}\r\n"),
        "Content-Type: text/plain; charset=utf-8\r\n".to_owned(),
        "Auto-Submitted: auto-generated\r\n".to_owned(),
        "X-Command-Center-Event: alert.firing\r\n".to_owned(),
    ] {
        assert!(text.contains(&expected), "missing {expected:?} in\n{text}");
    }
    assert_eq!(
        message.envelope().to().len(),
        2,
        "both recipients are in the envelope"
    );
}

#[test]
fn recipients_that_do_not_parse_are_named_by_position() {
    let problems = parse_recipients(&[
        "ok@example.com".to_owned(),
        "not an address".to_owned(),
        "@example.com".to_owned(),
    ])
    .unwrap_err();
    let positions: Vec<usize> = problems.iter().map(|(index, _)| *index).collect();
    assert_eq!(positions, [1, 2]);
    assert!(
        problems[0]
            .1
            .starts_with("\"not an address\" is not an email address"),
        "{problems:?}"
    );
}

fn config(security: SmtpSecurity) -> EmailConfig {
    EmailConfig {
        host: "127.0.0.1".to_owned(),
        port: Some(2525),
        security,
        allow_insecure: false,
        username: Some("alerts".to_owned()),
        password: Some(tools::secret::Secret::new("hunter2-secret")),
        password_file: None,
        from: "alerts@example.com".to_owned(),
        ca_file: None,
        timeout: std::time::Duration::from_secs(5),
        max_attempts: 3,
        backoff_initial: std::time::Duration::from_millis(1),
        backoff_max: std::time::Duration::from_millis(2),
    }
}

#[test]
fn the_sender_never_shows_its_password() {
    let sender = EmailSender::new(&config(SmtpSecurity::Starttls)).unwrap();
    let shown = format!("{sender:?}");
    assert!(!shown.contains("hunter2"), "{shown}");
    assert!(shown.contains("127.0.0.1:2525"), "{shown}");
    // A server that echoes the AUTH PLAIN payload gets it scrubbed.
    let echoed = BASE64.encode("\0alerts\0hunter2-secret");
    assert_eq!(
        sender.clean(&format!("535 bad {echoed} / hunter2-secret")),
        "535 bad *** / ***"
    );
}

#[test]
fn a_ca_file_without_certificates_is_refused_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ca.pem");
    std::fs::write(&path, "not a certificate").unwrap();
    let mut config = config(SmtpSecurity::Tls);
    config.ca_file = Some(path.clone());
    let error = tls_parameters(&config).err().unwrap();
    let EmailError::InvalidInput { key, message } = &error else {
        panic!("{error:?}");
    };
    assert_eq!(key, "notify.email.ca_file");
    assert!(message.contains("holds no PEM certificate"), "{message}");
    config.ca_file = Some(dir.path().join("missing.pem"));
    assert!(
        tls_parameters(&config)
            .err()
            .unwrap()
            .to_string()
            .starts_with("notify.email.ca_file: cannot read ")
    );
    assert!(
        tls_parameters(&self::config(SmtpSecurity::None))
            .unwrap()
            .is_none()
    );
}

#[test]
fn default_ports_follow_security() {
    let mut config = config(SmtpSecurity::Starttls);
    config.port = None;
    assert_eq!(config.port(), 587);
    config.security = SmtpSecurity::Tls;
    assert_eq!(config.port(), 465);
    config.security = SmtpSecurity::None;
    assert_eq!(config.port(), 25);
    for (host, loopback) in [
        ("localhost", true),
        ("127.0.0.1", true),
        ("127.1.2.3", true),
        ("[::1]", true),
        ("::1", true),
        ("smtp.example.com", false),
        ("10.0.0.1", false),
    ] {
        config.host = host.to_owned();
        assert_eq!(config.is_loopback(), loopback, "{host}");
    }
}
