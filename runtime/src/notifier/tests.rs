use super::*;

#[test]
fn signature_matches_a_known_vector() {
    // RFC 4231 test case 2.
    let secret = Secret::new("Jefe");
    assert_eq!(
        sign(&secret, b"what do ya want for nothing?"),
        "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    );
}

#[test]
fn a_webhook_body_keeps_the_first_alert_on_top_and_carries_the_group() {
    let at = chrono::DateTime::parse_from_rfc3339("2026-11-24T10:00:00Z")
        .unwrap()
        .with_timezone(&Utc);
    let alert = |key: &str| Alert {
        key: key.to_owned(),
        rule: "out_of_sync".to_owned(),
        status: AlertStatus::Firing,
        severity: Severity::Critical,
        summary: format!("{key} is behind"),
        labels: BTreeMap::from([("validator".to_owned(), "v1".to_owned())]),
        evidence: serde_json::Value::Null,
        starts_at: at,
        at,
        observed_at: at,
    };
    let dispatch = Dispatch {
        id: 7,
        kind: DispatchKind::Notification,
        receiver: "ops".to_owned(),
        group_key: "0:{validator=\"v1\"}".to_owned(),
        group_labels: BTreeMap::from([("validator".to_owned(), "v1".to_owned())]),
        status: AlertStatus::Firing,
        alerts: vec![alert("validators.a/v1"), alert("validators.b/v1")],
        silence: None,
        changed: vec!["validators.b/v1".to_owned()],
        at,
    };
    let body = serde_json::to_value(WebhookPayload {
        version: 1,
        event: event_kind(&dispatch),
        alert: dispatch.alerts.first(),
        group: GroupPayload {
            key: &dispatch.group_key,
            receiver: &dispatch.receiver,
            kind: dispatch.kind,
            status: dispatch.status,
            labels: &dispatch.group_labels,
            alerts: &dispatch.alerts,
            changed: &dispatch.changed,
        },
        silence: None,
    })
    .unwrap();
    assert_eq!(body["event"], "alert.firing");
    assert_eq!(body["key"], "validators.a/v1");
    assert_eq!(body["group"]["kind"], "notification");
    assert_eq!(body["group"]["labels"]["validator"], "v1");
    assert_eq!(body["group"]["alerts"].as_array().unwrap().len(), 2);
    assert_eq!(body["group"]["changed"][0], "validators.b/v1");
    assert!(body.get("silence").is_none());
}
