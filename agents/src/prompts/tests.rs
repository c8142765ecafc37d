use super::*;

#[test]
fn shipped_prompts_parse() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../prompts");
    let prompts = check_dir(&dir).unwrap();
    assert!(prompts.iter().any(|prompt| prompt.name == "market"));
}

#[test]
fn undeclared_and_unused_variables_are_reported_with_lines() {
    let text = "---\nname: x\nvariables: a, b\n---\nHello {{a}}\nand {{c}}\n";
    let problems = parse(Path::new("x.md"), text).unwrap_err();
    let rendered: Vec<String> = problems.iter().map(ToString::to_string).collect();
    assert_eq!(
        rendered,
        vec![
            "x.md:6: variable {{c}} is not declared in `variables:` (a, b)".to_owned(),
            "x.md: variable \"b\" is declared but never used".to_owned(),
        ]
    );
}

#[test]
fn render_fills_variables() {
    let prompt = parse(
        Path::new("x.md"),
        "---\nname: x\nvariables: who\n---\nHi {{who}}!",
    )
    .unwrap();
    assert_eq!(prompt.render(&[("who", "ops")]).unwrap(), "Hi ops!");
    assert!(prompt.render(&[]).unwrap_err().contains("{{who}}"));
}
