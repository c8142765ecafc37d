use super::*;

fn shipped() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn shipped_policies_validate() {
    let summary = check_dir(&shipped()).unwrap();
    assert_eq!(summary.files, 1);
    assert_eq!(summary.policies, 13);
}

fn dir_with(policy: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(shipped().join(SCHEMA_FILE), dir.path().join(SCHEMA_FILE)).unwrap();
    std::fs::write(dir.path().join("a.cedar"), policy).unwrap();
    dir
}

#[test]
fn syntax_errors_name_file_and_line() {
    let dir = dir_with(
        "// ok\npermit (principal, action, resource);\n\nforbid (principal action, resource);\n",
    );
    let problems = check_dir(dir.path()).unwrap_err();
    assert!(!problems.is_empty());
    assert_eq!(problems[0].line, Some(4), "{problems:?}");
    assert!(
        problems[0].to_string().contains("a.cedar:4:"),
        "{problems:?}"
    );
}

#[test]
fn schema_violations_are_reported() {
    let dir = dir_with(
        "permit (principal is Agent, action == Action::\"execute\", resource)\nwhen { resource.colour == \"red\" };\n",
    );
    let problems = check_dir(dir.path()).unwrap_err();
    assert!(
        problems
            .iter()
            .any(|p| p.line == Some(2) && p.message.contains("colour")),
        "{problems:?}"
    );
}

#[test]
fn a_missing_schema_is_a_problem() {
    let dir = tempfile::tempdir().unwrap();
    let problems = check_dir(dir.path()).unwrap_err();
    assert!(problems[0].message.contains("cannot read"), "{problems:?}");
}

fn engine() -> PolicyEngine {
    PolicyEngine::load(&shipped()).unwrap()
}

#[test]
fn shipped_cases_pass() {
    let engine = engine();
    let dir = shipped().join("tests");
    let mut ran = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        for outcome in run_cases(&engine, &path, &text).unwrap() {
            assert!(
                outcome.passed(),
                "{}: {:?}",
                outcome.name,
                outcome.mismatches
            );
            ran += 1;
        }
    }
    assert_eq!(ran, 10);
}

fn proposal(kind: &str, amount: u64) -> Proposal {
    Proposal {
        id: "p-1".into(),
        proposer: Proposer::Agent {
            name: "market".into(),
            domain: "market".into(),
        },
        operation: Operation {
            kind: kind.into(),
            domain: "market".into(),
            risk: Risk::Low,
            amount_nanoton: amount,
            amount_cents: 0,
            target: "ops".into(),
            parameters: serde_json::Value::Null,
        },
        rationale: String::new(),
        evidence: serde_json::Value::Null,
    }
}

#[test]
fn a_failing_case_says_what_differs() {
    let engine = engine();
    let text = r#"
roles = ["operator"]
[[case]]
name = "wrong on purpose"
expect = "auto"
[case.proposal]
id = "x"
proposer = { type = "agent", name = "market", domain = "market" }
operation = { kind = "command", domain = "validators", risk = "high" }
"#;
    let outcomes = run_cases(&engine, Path::new("x.toml"), text).unwrap();
    assert!(!outcomes[0].passed());
    assert!(outcomes[0].mismatches[0].starts_with("expected auto, got needs_approval"));
}

#[test]
fn a_malformed_case_file_names_the_line() {
    let problem = run_cases(&engine(), Path::new("x.toml"), "[[case]]\nname = 1\n").unwrap_err();
    assert_eq!(problem.line, Some(2), "{problem}");
}

#[test]
fn decisions_are_deterministic_and_name_their_policies() {
    let engine = engine();
    let context = DecisionContext::default();
    let roles = vec!["operator".to_owned(), "treasurer".to_owned()];
    let first = engine.decide(&proposal("notify", 0), &context, &roles);
    for _ in 0..10 {
        assert_eq!(
            engine.decide(&proposal("notify", 0), &context, &roles),
            first
        );
    }
    assert_eq!(
        first,
        Decision::Auto {
            by: vec!["auto-notify".into()]
        }
    );
}

#[test]
fn no_eligible_approver_is_a_denial() {
    let decision = engine().decide(&proposal("command", 0), &DecisionContext::default(), &[]);
    match decision {
        Decision::Deny { reason, .. } => {
            assert!(
                reason.contains("no configured role may approve it"),
                "{reason}"
            )
        }
        other => panic!("expected a denial, got {other:?}"),
    }
}

#[test]
fn an_id_that_cedar_cannot_take_is_a_denial_not_a_panic() {
    let mut odd = proposal("notify", 0);
    odd.id = "quote \" and \\ backslash".into();
    odd.proposer = Proposer::User {
        name: "ünïcode \"name\"".into(),
        roles: vec!["operator".into()],
    };
    let decision = engine().decide(&odd, &DecisionContext::default(), &["operator".into()]);
    // Whatever it is, it is a value; a person proposing a notification needs approval.
    assert_eq!(decision.kind(), "needs_approval", "{decision:?}");
}

fn engine_with(policy: &str) -> Result<PolicyEngine, Vec<PolicyProblem>> {
    let schema = std::fs::read_to_string(shipped().join(SCHEMA_FILE)).unwrap();
    PolicyEngine::from_sources(
        &shipped().join(SCHEMA_FILE),
        &schema,
        &[(PathBuf::from("extra.cedar"), policy.to_owned())],
    )
}

#[test]
fn bad_annotations_and_duplicate_ids_are_reported() {
    let problems = engine_with(
        r#"@id("a") @approvals("many") forbid (principal, action, resource);
@id("a") permit (principal, action, resource);
@id("b") @never permit (principal, action, resource);
@id("c") @expires("soon") forbid (principal, action, resource);"#,
    )
    .unwrap_err();
    let text: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(text.len(), 4, "{text:#?}");
    assert!(text[0].contains("@approvals(\"many\")"), "{text:#?}");
    assert!(
        text[1].contains("policy id \"a\" is also used"),
        "{text:#?}"
    );
    assert!(
        text[2].contains("only mean something on a `forbid`"),
        "{text:#?}"
    );
    assert!(text[3].contains("@expires(\"soon\")"), "{text:#?}");
}

#[test]
fn wrong_attribute_types_and_unknown_entity_types_are_reported() {
    let problems = engine_with(
        r#"permit (principal is Agent, action == Action::"execute", resource) when { resource.amount_nanoton == "lots" };
permit (principal is Robot, action == Action::"execute", resource);"#,
    )
    .unwrap_err();
    let text = problems
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n");
    assert!(text.contains("extra.cedar:1:"), "{text}");
    assert!(text.contains("extra.cedar:2:"), "{text}");
    assert!(text.contains("Robot"), "{text}");
}
