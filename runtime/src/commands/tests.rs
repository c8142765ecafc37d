use std::collections::BTreeMap;

use agents::alert::{ActiveAlert, Alert, AlertStatus, Severity, active_key};
use agents::validators::round::{REWARD_SERIES, validator_series};
use agents::validators::{balance_key, disk_key, in_set_key, sync_lag_key};
use chrono::Utc;
use policies::{Operation, Proposal, Proposer, Risk};

use super::*;
use crate::executors::{CommandExecutorConfig, ExecutorsConfig};

/// `check(input, expected)`: `Ok(command)` or `Err(words the error must contain)`.
fn check(input: &str, expected: Result<Command, &[&str]>) {
    let parsed = parse(input);
    match (&parsed, expected) {
        (Ok(command), Ok(expected)) => assert_eq!(command, &expected, "input {input:?}"),
        (Err(error), Err(words)) => {
            let message = error.to_string();
            for word in words {
                assert!(
                    message.contains(word),
                    "input {input:?}: error {message:?} lacks {word:?}"
                );
            }
        }
        (got, _) => panic!("input {input:?}: got {got:?}"),
    }
}

#[test]
fn parse_accepts_commands_with_or_without_slash_bot_suffix_and_case() {
    check("/validators", Ok(Command::Validators));
    check("validators", Ok(Command::Validators));
    check("/validators@CommandCenterBot", Ok(Command::Validators));
    check("  /VALIDATORS  ", Ok(Command::Validators));
    check("/Status", Ok(Command::Status));
    check("/start", Ok(Command::Start));
    check("help", Ok(Command::Help));
    check("/ranking", Ok(Command::Ranking));
    check("/finance", Ok(Command::Finance));
    check(
        "/expense 49,90 eur infrastructure/Servers Hetzner Online: CX22 for monitoring",
        Ok(Command::Expense(ExpenseRequest {
            amount: "49.90".into(),
            currency: "EUR".into(),
            category: "infrastructure".into(),
            subcategory: Some("servers".into()),
            counterparty: "Hetzner Online".into(),
            description: "CX22 for monitoring".into(),
        })),
    );
    check(
        "expense 12000 USD personnel Dana",
        Ok(Command::Expense(ExpenseRequest {
            amount: "12000".into(),
            currency: "USD".into(),
            category: "personnel".into(),
            subcategory: None,
            counterparty: "Dana".into(),
            description: String::new(),
        })),
    );
    check(
        "/income 1200,50 usd services Acme Corp: November consulting",
        Ok(Command::Income(IncomeRequest {
            amount: "1200.50".into(),
            currency: "USD".into(),
            stream: "services".into(),
            counterparty: "Acme Corp".into(),
            description: "November consulting".into(),
        })),
    );
    check("/market", Ok(Command::Market));
    check("/alerts", Ok(Command::Alerts));
    check("/approvals@cc_bot", Ok(Command::Approvals));
    check(
        "/validator validator-1",
        Ok(Command::Validator {
            name: "validator-1".into(),
        }),
    );
    check("validator v1", Ok(Command::Validator { name: "v1".into() }));
    check(
        "/earnings",
        Ok(Command::Earnings {
            period: Period::Week,
        }),
    );
    check(
        "/earnings MONTH",
        Ok(Command::Earnings {
            period: Period::Month,
        }),
    );
    check(
        "earnings day",
        Ok(Command::Earnings {
            period: Period::Day,
        }),
    );
    check(
        "/audit",
        Ok(Command::Audit {
            limit: DEFAULT_AUDIT_ENTRIES,
        }),
    );
    check("/audit 5", Ok(Command::Audit { limit: 5 }));
    check(
        "/pause",
        Ok(Command::Pause {
            agent: None,
            reason: String::new(),
        }),
    );
    check(
        "/pause all disk swap tonight",
        Ok(Command::Pause {
            agent: None,
            reason: "disk swap tonight".into(),
        }),
    );
    check(
        "/pause validators maintenance",
        Ok(Command::Pause {
            agent: Some("validators".into()),
            reason: "maintenance".into(),
        }),
    );
    check("/resume", Ok(Command::Resume { agent: None }));
    check(
        "/resume market",
        Ok(Command::Resume {
            agent: Some("market".into()),
        }),
    );
    check(
        "/silence validator=v1 2h",
        Ok(Command::Silence {
            arguments: "validator=v1 2h".into(),
        }),
    );
    check(
        "/ack validators.disk_usage/v1",
        Ok(Command::Ack {
            arguments: "validators.disk_usage/v1".into(),
        }),
    );
    check(
        "how much did we earn this week?",
        Ok(Command::Ask("how much did we earn this week?".into())),
    );
    check("привет", Ok(Command::Ask("привет".into())));
}

#[test]
fn parse_rejects_bad_input_with_a_message_that_says_what_to_send() {
    check(
        "/frobnicate",
        Err(&["unknown command /frobnicate", "/validators", "/help"]),
    );
    check(
        "/earnings year",
        Err(&["unknown period \"year\"", "day, week and month"]),
    );
    check("/earnings day week", Err(&["day, week or month"]));
    check(
        "/validator",
        Err(&["needs a validator NAME", "/validator NAME"]),
    );
    check("/validator a b", Err(&["one validator name"]));
    check("/validator <script>", Err(&["is not a name"]));
    check("/status now", Err(&["takes no arguments"]));
    check("/audit 0", Err(&["1 to 50"]));
    check("/audit 1000", Err(&["1 to 50"]));
    check("/audit many", Err(&["\"many\""]));
    check("/resume a b", Err(&["at most one agent"]));
    check("/pause ../../etc reason", Err(&["is not a name"]));
    check("", Err(&["empty"]));
    check("   \n\t ", Err(&["empty"]));
    check("/", Err(&["unknown command"]));
    check("/@bot", Err(&["unknown command"]));
}

#[test]
fn parse_refuses_oversize_input_without_panicking() {
    let long = "a".repeat(MAX_INPUT_BYTES + 1);
    assert_eq!(
        parse(&long),
        Err(ParseError::TooLong {
            bytes: MAX_INPUT_BYTES + 1,
            max: MAX_INPUT_BYTES
        })
    );
    let multibyte = format!("/validator {}", "я".repeat(MAX_INPUT_BYTES));
    assert!(matches!(parse(&multibyte), Err(ParseError::TooLong { .. })));
    // Just under the limit parses (as a question).
    let fits = "a ".repeat(MAX_INPUT_BYTES / 2);
    assert!(matches!(parse(&fits), Ok(Command::Ask(_))));
    // Odd bytes and control characters are words like any other.
    for odd in [
        "/\u{0}",
        "/validator \u{202e}x",
        "\u{feff}/help",
        "/earnings \u{0}",
    ] {
        let _ = parse(odd);
    }
}

#[test]
fn every_listed_command_parses_from_its_own_usage_line() {
    for spec in COMMANDS {
        let example = spec
            .usage
            .replace("NAME", "v1")
            .replace("[day|week|month]", "day")
            .replace("[all|AGENT]", "all")
            .replace(" [reason]", "")
            .replace("[N]", "3")
            .replace("MATCHERS DURATION", "validator=v1 1h")
            .replace("ALERT", "x")
            .replace(
                "AMOUNT CURRENCY CATEGORY[/SUB] COUNTERPARTY[: DESCRIPTION]",
                "5 USD infrastructure Hetzner",
            )
            .replace(
                "AMOUNT CURRENCY STREAM PAYER[: DESCRIPTION]",
                "5 USD services Acme",
            );
        let parsed = parse(&example);
        assert!(parsed.is_ok(), "{example}: {parsed:?}");
        assert!(!matches!(parsed, Ok(Command::Ask(_))), "{example}");
    }
}

struct Harness {
    context: Context,
    _dir: tempfile::TempDir,
}

fn user(name: &str, roles: &[&str]) -> crate::config::UserConfig {
    crate::config::UserConfig {
        name: name.into(),
        roles: roles.iter().map(|role| role.to_string()).collect(),
        token_sha256: None,
        telegram_id: None,
        slack_id: None,
    }
}

async fn harness(caller: &str, roles: &[&str]) -> Harness {
    let fixture = crate::test_support::gate_fixture(
        |_| ExecutorsConfig {
            command: CommandExecutorConfig {
                programs: BTreeMap::from([(
                    "mark".to_owned(),
                    crate::test_support::program("/usr/bin/touch", vec!["{path}".into()]),
                )]),
            },
            ..ExecutorsConfig::default()
        },
        vec![
            user("alice", &["operator"]),
            user("bob", &["treasurer"]),
            user("carol", &["cfo"]),
        ],
    )
    .await;
    Harness {
        context: Context {
            store: fixture.store,
            finance: Arc::new(agents::finance::FinanceConfig::default()),
            gate: Arc::new(fixture.gate),
            health: HealthRegistry::default(),
            caller: Caller {
                name: caller.into(),
                roles: roles.iter().map(|role| role.to_string()).collect(),
            },
            app: None,
        },
        _dir: fixture.dir,
    }
}

/// Two validators written through the agents' own series keys, and one firing alert.
fn seed_validators(store: &memory::Store) {
    let now = Utc::now();
    let hour = chrono::Duration::hours(1);
    let series = store.series();
    series
        .append(&balance_key("validator-1"), now - hour * 20, 1000.0)
        .unwrap();
    series
        .append(&balance_key("validator-1"), now - hour, 970.5)
        .unwrap();
    series
        .append(&in_set_key("validator-1"), now - hour, 1.0)
        .unwrap();
    series
        .append(&sync_lag_key("validator-1"), now - hour, 3.0)
        .unwrap();
    series
        .append(&disk_key("validator-1", "/var/ton-work"), now - hour, 82.5)
        .unwrap();
    series
        .append(
            &validator_series(REWARD_SERIES, "validator-1"),
            now - hour * 2,
            400.0,
        )
        .unwrap();
    series
        .append(&balance_key("validator-2"), now - hour, 5.0)
        .unwrap();
    series
        .append(&in_set_key("validator-2"), now - hour, 0.0)
        .unwrap();
    let alert = Alert {
        key: "validators.disk_usage/validator-1:/var/ton-work".into(),
        rule: "disk_usage".into(),
        status: AlertStatus::Firing,
        severity: Severity::Warning,
        summary: "disk 82.5% on /var/ton-work".into(),
        labels: [("validator".to_owned(), "validator-1".to_owned())]
            .into_iter()
            .collect(),
        evidence: serde_json::Value::Null,
        starts_at: now - hour,
        at: now - hour,
        observed_at: now - hour,
    };
    store
        .state()
        .put(
            &active_key(&alert.key),
            &ActiveAlert {
                alert,
                reference: None,
            },
        )
        .unwrap();
}

async fn run(context: &Context, text: &str) -> Answer {
    respond(text, context).await
}

#[tokio::test]
async fn validators_answer_reads_what_the_agent_stored() {
    let h = harness("alice", &["operator"]).await;
    seed_validators(&h.context.store);
    let answer = run(&h.context, "/validators").await;
    assert_eq!(answer.outcome, Outcome::Ok);
    assert_eq!(answer.title, "Validators");
    let table = &answer.tables[0];
    assert_eq!(table.headers[0], "NAME");
    assert_eq!(table.rows.len(), 2);
    assert_eq!(
        table.rows[0][..4],
        ["validator-1", "970.50", "yes", "3s"].map(String::from)
    );
    assert_eq!(table.rows[1][2], "NO");
    assert_eq!(answer.alerts.len(), 1);
    assert!(
        answer.alerts[0]
            .summary
            .starts_with("validator-1: disk 82.5%")
    );
    assert!(answer.facts.iter().any(|f| f.value == "1 of 2"));
    // The same numbers the API serves.
    let api = agents::validators_report::summaries(&h.context.store, Utc::now()).unwrap();
    assert_eq!(api[0].balance_ton.unwrap().value, 970.5);

    let plain = render::plain::render(&answer);
    assert!(plain.contains("validator-1"), "{plain}");
    let json = serde_json::to_value(&answer).unwrap();
    assert_eq!(json["outcome"], "ok");
    assert_eq!(json["tables"][0]["rows"][0][0], "validator-1");
    let back: Answer = serde_json::from_value(json).unwrap();
    assert_eq!(back, answer);
}

#[tokio::test]
async fn validator_detail_earnings_and_ranking_read_the_store() {
    let h = harness("alice", &["operator"]).await;
    seed_validators(&h.context.store);
    let detail = run(&h.context, "/validator validator-1").await;
    assert_eq!(detail.outcome, Outcome::Ok);
    assert_eq!(detail.title, "Validator validator-1");
    let fact = |label: &str| {
        detail
            .facts
            .iter()
            .find(|fact| fact.label == label)
            .map(|fact| fact.value.clone())
    };
    assert_eq!(fact("24h change").as_deref(), Some("-29.50 TON"));
    assert_eq!(fact("Sync lag").as_deref(), Some("3 s"));
    assert_eq!(fact("Disk /var/ton-work").as_deref(), Some("82.5% used"));
    assert_eq!(detail.alerts.len(), 1);
    assert!(!detail.tables[0].rows.is_empty(), "hourly balance");

    let missing = run(&h.context, "/validator nobody").await;
    assert_eq!(missing.outcome, Outcome::NotFound);
    assert!(missing.paragraphs[0].contains("validator-1, validator-2"));

    let earnings = run(&h.context, "/earnings day").await;
    assert_eq!(earnings.title, "Earnings, last day");
    let total = earnings.tables[0].rows.last().unwrap();
    assert_eq!(total[0], "total");
    assert_eq!(total[1], "400.00");

    let ranking = run(&h.context, "/ranking").await;
    assert_eq!(ranking.tables[0].rows.len(), 2);
    assert_eq!(ranking.tables[0].rows[1][1], "out");
}

#[tokio::test]
async fn market_shows_the_latest_price_of_each_coin() {
    let h = harness("alice", &[]).await;
    let empty = run(&h.context, "/market").await;
    assert!(empty.paragraphs[0].contains("No prices yet"));
    let now = Utc::now();
    let series = h.context.store.series();
    let ton = agents::market::price_key("the-open-network", "usd");
    series
        .append(&ton, now - chrono::Duration::hours(20), 5.0)
        .unwrap();
    series
        .append(&ton, now - chrono::Duration::minutes(1), 5.5)
        .unwrap();
    series
        .append(&agents::market::price_key("bitcoin", "usd"), now, 97_000.0)
        .unwrap();
    let answer = run(&h.context, "market").await;
    let rows = &answer.tables[0].rows;
    assert_eq!(rows.len(), 2);
    let ton_row = rows.iter().find(|row| row[0] == "TON").unwrap();
    assert_eq!(ton_row[1], "5.50 USD");
    assert_eq!(ton_row[2], "+10.0%");
    let btc_row = rows.iter().find(|row| row[0] == "BTC").unwrap();
    assert_eq!(btc_row[1], "97000 USD");
    assert_eq!(btc_row[2], "-");
}

#[tokio::test]
async fn status_alerts_and_audit_answer_from_health_alerts_and_journal() {
    let h = harness("alice", &["operator"]).await;
    seed_validators(&h.context.store);
    h.context.health.actor_starting("market");
    h.context.health.actor_running("market");
    let status = run(&h.context, "/status").await;
    assert_eq!(status.outcome, Outcome::Ok);
    assert!(
        status
            .facts
            .iter()
            .any(|f| f.label == "Firing alerts" && f.value == "1")
    );
    assert!(status.tables[0].rows.iter().any(|row| row[0] == "market"));

    let alerts = run(&h.context, "/alerts").await;
    assert_eq!(alerts.alerts.len(), 1);
    assert_eq!(alerts.alerts[0].severity, "warning");

    for text in ["one", "two", "three"] {
        h.context.gate.pause(None, "alice", text).await.unwrap();
    }
    let audit = run(&h.context, "/audit 2").await;
    assert_eq!(audit.title, "Audit log, last 2");
    let rows = &audit.tables[0].rows;
    assert_eq!(rows.len(), 2);
    assert!(rows[0][0].parse::<u64>().unwrap() < rows[1][0].parse::<u64>().unwrap());
    assert_eq!(rows[1][2], "autonomy.paused");
}

#[tokio::test]
async fn pause_and_resume_need_the_operator_role() {
    let refused = harness("bob", &["treasurer"]).await;
    let answer = run(&refused.context, "/pause all maintenance").await;
    assert_eq!(answer.outcome, Outcome::Refused);
    assert!(answer.paragraphs[0].contains("bob needs the operator role"));
    assert!(
        refused.context.gate.pauses().unwrap().is_empty(),
        "nothing changed"
    );
    let answer = run(&refused.context, "/resume").await;
    assert_eq!(answer.outcome, Outcome::Refused);

    let h = harness("alice", &["operator"]).await;
    let answer = run(&h.context, "/pause validators disk swap").await;
    assert_eq!(answer.outcome, Outcome::Ok, "{answer:?}");
    let pauses = h.context.gate.pauses().unwrap();
    assert_eq!(pauses.len(), 1);
    assert_eq!(pauses[0].0, "validators");
    assert_eq!(pauses[0].1.by, "alice");
    assert_eq!(pauses[0].1.reason, "disk swap");
    let answer = run(&h.context, "/resume validators").await;
    assert_eq!(answer.outcome, Outcome::Ok);
    assert!(h.context.gate.pauses().unwrap().is_empty());
}

#[tokio::test]
async fn approvals_come_with_buttons_that_carry_the_proposal_id() {
    let h = harness("alice", &["operator"]).await;
    let none = run(&h.context, "/approvals").await;
    assert_eq!(none.paragraphs[0], "Nothing is waiting for approval.");
    let proposal = Proposal {
        id: "p-20261124120000-1a2b3c".into(),
        proposer: Proposer::Agent {
            name: "validators".into(),
            domain: "validators".into(),
        },
        operation: Operation {
            kind: "command".into(),
            domain: "validators".into(),
            risk: Risk::Low,
            amount_nanoton: 0,
            amount_cents: 0,
            target: "validator-1".into(),
            parameters: serde_json::json!({ "command": "mark", "vars": { "path": "/nonexistent/x" } }),
        },
        rationale: "test".into(),
        evidence: serde_json::Value::Null,
    };
    let record = h.context.gate.submit(proposal).await.unwrap();
    assert_eq!(record.state, crate::gate::ProposalState::Pending);
    let answer = run(&h.context, "/approvals").await;
    assert_eq!(answer.tables[0].rows[0][0], "p-20261124120000-1a2b3c");
    let ids: Vec<&str> = answer
        .actions
        .iter()
        .map(|a| a.action_id.as_str())
        .collect();
    assert_eq!(
        ids,
        [
            "approve:p-20261124120000-1a2b3c",
            "reject:p-20261124120000-1a2b3c",
            "details:p-20261124120000-1a2b3c"
        ]
    );
    assert_eq!(answer.actions[0].style, ActionStyle::Primary);
    assert_eq!(answer.actions[1].style, ActionStyle::Danger);
}

#[tokio::test]
async fn unbuilt_or_daemon_only_commands_say_so_and_free_text_lists_matching_commands() {
    let h = harness("alice", &["operator"]).await;
    for (text, title) in [
        // Outside the daemon (no router at hand) they say where to send them.
        (
            "/silence validator=v1 2h why",
            "Silences need the running daemon",
        ),
        ("/ack x", "Acknowledgements need the running daemon"),
    ] {
        let answer = run(&h.context, text).await;
        assert_eq!(answer.outcome, Outcome::Unavailable, "{text}");
        assert_eq!(answer.title, title);
    }
    let answer = run(&h.context, "how much did the validators earn?").await;
    let listed: Vec<&str> = answer.tables[0]
        .rows
        .iter()
        .map(|row| row[0].as_str())
        .collect();
    assert!(listed.contains(&"/earnings [day|week|month]"), "{listed:?}");
    assert!(listed.contains(&"/validators"), "{listed:?}");
    assert!(
        !listed.contains(&"/pause [all|AGENT] [reason]"),
        "{listed:?}"
    );
    let nothing = run(&h.context, "zzz qqq").await;
    assert_eq!(nothing.tables[0].rows.len(), COMMANDS.len());
    assert_eq!(nothing.tables.len(), 1, "nothing remembered matches");

    // The best memory matches come with it: what the journal holds about the question's words.
    let journal = h.context.store.journal();
    for (kind, subject, summary) in [
        (
            "alert.firing",
            "validators.out_of_sync/validator-2",
            "validator-2: node is 266s behind the masterchain (limit 120s)",
        ),
        (
            "alert.firing",
            "market.price_move/the-open-network",
            "TON moved 6% in an hour",
        ),
        (
            "alert.resolved",
            "validators.out_of_sync/validator-2",
            "validator-2 is in sync again",
        ),
    ] {
        journal
            .append_blocking(memory::NewEntry {
                actor: "validators".into(),
                kind: kind.into(),
                subject: subject.into(),
                body: serde_json::json!({ "summary": summary }),
            })
            .unwrap();
    }
    let answer = run(&h.context, "why was validator-2 behind?").await;
    let remembered = &answer.tables[1];
    assert_eq!(remembered.rows.len(), 2, "{remembered:?}");
    assert_eq!(remembered.rows[0][1], "alert.firing");
    assert!(
        remembered.rows[0][2].contains("266s behind"),
        "{remembered:?}"
    );
    assert_eq!(remembered.rows[1][1], "alert.resolved");
    assert!(
        remembered
            .title
            .as_deref()
            .is_some_and(|title| title.starts_with("What I remember")),
        "{remembered:?}"
    );

    let help = run(&h.context, "/help").await;
    assert_eq!(help.tables[0].rows.len(), COMMANDS.len());
    let start = run(&h.context, "/start").await;
    assert!(start.paragraphs[0].starts_with("Hello alice"));

    let invalid = run(&h.context, "/earnings year").await;
    assert_eq!(invalid.outcome, Outcome::Invalid);
    assert!(invalid.paragraphs[0].contains("day, week and month"));
}

#[test]
fn expense_arguments_are_checked_with_the_reason() {
    for (input, words) in [
        (
            "/expense 12 USD",
            &["needs an amount, a currency, a category", "usage"][..],
        ),
        (
            "/expense -5 USD infrastructure Hetzner",
            &["\"-5\" is not a positive number"][..],
        ),
        (
            "/expense 0 USD infrastructure Hetzner",
            &["not a positive number"][..],
        ),
        (
            "/expense 5 dollars infrastructure Hetzner",
            &["\"DOLLARS\" is not a currency code"][..],
        ),
        (
            "/expense 5 USD infra<x> Hetzner",
            &["is not a category name"][..],
        ),
        (
            "/expense 5 USD infrastructure : only a description",
            &["who is paid"][..],
        ),
        (
            "/expense 1,200 USD personnel Dana",
            &["\"1,200\" is ambiguous"][..],
        ),
        (
            "/income 5 USD",
            &["needs an amount, a currency, a stream and who paid"][..],
        ),
        (
            "/income 5 USD services/consulting Acme",
            &["a revenue stream has no sub-stream: give \"services\""][..],
        ),
        ("/income 5 USD serv!ces Acme", &["is not a stream name"][..]),
        ("/income 5 USD services : nobody", &["who paid"][..]),
    ] {
        match parse(input) {
            Err(error) => {
                let message = error.to_string();
                for word in words {
                    assert!(message.contains(word), "{input}: {message}");
                }
            }
            Ok(command) => panic!("{input}: parsed as {command:?}"),
        }
    }
}

#[tokio::test]
async fn an_expense_from_chat_is_routed_by_the_policies_and_finance_shows_it() {
    let h = harness("alice", &["operator"]).await;
    // Under 500 USD of infrastructure: the policies let it run; it is booked at once.
    let booked = run(
        &h.context,
        "/expense 120 USD infrastructure/servers Hetzner Online: CX22 for monitoring",
    )
    .await;
    assert_eq!(booked.outcome, Outcome::Ok, "{booked:?}");
    assert_eq!(booked.title, "Expense booked");
    let id = booked
        .facts
        .iter()
        .find(|fact| fact.label == "Proposal")
        .map(|fact| fact.value.clone())
        .unwrap();
    let today = Utc::now().date_naive();
    let entries = h.context.store.ledger().entries(None, None).unwrap();
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = &entries[0];
    assert_eq!(entry.amount, rust_decimal::Decimal::new(-120, 0));
    assert_eq!(entry.category.as_deref(), Some("infrastructure"));
    assert_eq!(entry.subcategory.as_deref(), Some("servers"));
    assert_eq!(entry.counterparty, "Hetzner Online");
    assert_eq!(entry.date, today);
    assert_eq!(
        entry.source,
        memory::ledger::EntrySource::Approval { approval_id: id }
    );

    // Marketing needs a cfo or ceo: it waits, with the buttons.
    let waiting = run(
        &h.context,
        "/expense 2500 USD marketing/ads Acme Ads: launch",
    )
    .await;
    assert_eq!(waiting.title, "Expense awaiting approval", "{waiting:?}");
    assert_eq!(
        waiting.paragraphs[0],
        "It needs 1 approval(s) from a cfo; it is booked once approved."
    );
    let pending_id = waiting.facts[0].value.clone();
    assert!(pending_id.starts_with("expense-"), "{pending_id}");
    assert_eq!(
        waiting.actions[0].action_id,
        format!("approve:{pending_id}")
    );
    assert_eq!(
        h.context.store.ledger().len(),
        1,
        "nothing booked before approval"
    );

    // A category the books do not have: the gate refuses it with the reason, nothing booked.
    let unknown = run(&h.context, "/expense 30 USD catering Deli").await;
    assert_eq!(unknown.outcome, Outcome::Refused, "{unknown:?}");
    assert!(
        unknown.paragraphs[0].contains("unknown category \"catering\""),
        "{unknown:?}"
    );
    assert_eq!(h.context.store.ledger().len(), 1);

    // A 900 USD bill two months ago: the burn is the mean of the last three complete months,
    // as `finance report` says, though the table shows only the last two.
    let earlier = today.checked_sub_months(chrono::Months::new(2)).unwrap();
    let amount = rust_decimal::Decimal::new(-900, 0);
    h.context
        .store
        .ledger()
        .insert_batch(&[memory::ledger::LedgerEntry {
            id: memory::ledger::stable_id("test", earlier, amount, "USD", "Lawyers", "", 0),
            date: earlier,
            amount,
            currency: "USD".to_owned(),
            stream: None,
            category: Some("legal_and_compliance".to_owned()),
            subcategory: None,
            counterparty: "Lawyers".to_owned(),
            description: String::new(),
            source: memory::ledger::EntrySource::Manual {
                by: "test".to_owned(),
            },
            tags: Vec::new(),
            recorded_at: Utc::now(),
        }])
        .unwrap();

    // Income by hand: booked as the caller; the same line again is not a second entry; an
    // unknown stream is refused with the reason.
    let income = run(
        &h.context,
        "/income 300 USD services Acme Corp: audit support",
    )
    .await;
    assert_eq!(income.outcome, Outcome::Ok, "{income:?}");
    assert_eq!(income.title, "Income booked");
    let again = run(
        &h.context,
        "/income 300 USD services Acme Corp: audit support",
    )
    .await;
    assert_eq!(again.outcome, Outcome::Invalid, "{again:?}");
    assert!(
        again.paragraphs[0].contains("already in the ledger today"),
        "{again:?}"
    );
    // The same payer and amount to another stream is another entry.
    let other = run(
        &h.context,
        "/income 300 USD cocoon Acme Corp: audit support",
    )
    .await;
    assert_eq!(other.outcome, Outcome::Ok, "{other:?}");
    let unknown = run(&h.context, "/income 300 USD lemonade Acme Corp").await;
    assert_eq!(unknown.outcome, Outcome::Invalid, "{unknown:?}");
    assert!(unknown.paragraphs[0].contains("lemonade"), "{unknown:?}");
    let manual: Vec<_> = h
        .context
        .store
        .ledger()
        .entries(None, None)
        .unwrap()
        .into_iter()
        .filter(|entry| entry.stream.as_deref() == Some("services"))
        .collect();
    assert_eq!(manual.len(), 1, "{manual:?}");
    assert_eq!(manual[0].amount, rust_decimal::Decimal::new(300, 0));
    assert_eq!(manual[0].counterparty, "Acme Corp");
    assert_eq!(manual[0].description, "audit support");
    assert_eq!(
        manual[0].source,
        memory::ledger::EntrySource::Manual {
            by: "alice".to_owned()
        }
    );

    // /finance: this month's 120 USD of costs and 300 of income, and the marketing expense
    // waiting.
    let finance = run(&h.context, "/finance").await;
    assert_eq!(finance.outcome, Outcome::Ok, "{finance:?}");
    let fact = |label: &str| {
        finance
            .facts
            .iter()
            .find(|fact| fact.label == label)
            .map(|fact| fact.value.clone())
            .unwrap()
    };
    assert_eq!(
        fact("Net burn / month"),
        "300.00 USD (mean of the last 3 complete months)"
    );
    assert!(fact("Cash").starts_with("unknown"), "{finance:?}");
    let months = &finance.tables[0];
    assert_eq!(months.rows.len(), 2, "{months:?}");
    let this_month = months.rows.last().unwrap();
    assert_eq!(
        this_month[0],
        format!("{} (to date)", agents::finance::report::month_of(today))
    );
    assert_eq!(this_month[1], "600.00 USD");
    assert_eq!(this_month[2], "120.00 USD");
    assert_eq!(this_month[3], "480.00 USD");
    let waiting_table = &finance.tables[1];
    assert_eq!(
        waiting_table.rows,
        vec![vec![
            pending_id,
            "marketing".to_owned(),
            "2500 USD".to_owned(),
            "0/1".to_owned()
        ]]
    );
}
