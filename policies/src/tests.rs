use super::*;

fn shipped() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn shipped_policies_validate() {
    let summary = check_dir(&shipped()).unwrap();
    assert_eq!(summary.files, 1);
    assert_eq!(summary.policies, 5);
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
