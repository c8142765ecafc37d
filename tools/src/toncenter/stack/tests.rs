use super::*;

/// The shape toncenter's legacy encoding gives `participant_list_extended` (one
/// participant, values from the real testnet lite-client capture in mytonctrl's tests).
fn participant_list_extended_json() -> Value {
    json!([
        ["num", "0x6a04961a"],
        ["num", "0x6a0494ee"],
        ["num", "0x9184e72a000"],
        ["num", "0xb5f998f4a9af40"],
        ["list", {"@type": "tvm.list", "elements": [
            {"@type": "tvm.stackEntryTuple", "tuple": {"@type": "tvm.tuple", "elements": [
                {"@type": "tvm.stackEntryNumber", "number": {"@type": "tvm.numberDecimal",
                    "number": "10743477883002327560592773392341290171061187876444373186850664676168338721644"}},
                {"@type": "tvm.stackEntryTuple", "tuple": {"@type": "tvm.tuple", "elements": [
                    {"@type": "tvm.stackEntryNumber", "number": {"@type": "tvm.numberDecimal", "number": "2999999000000000"}},
                    {"@type": "tvm.stackEntryNumber", "number": {"@type": "tvm.numberDecimal", "number": "1966080"}},
                    {"@type": "tvm.stackEntryNumber", "number": {"@type": "tvm.numberDecimal",
                        "number": "46380847851331389346192593528088801463489191509714008388713972619274278797534"}},
                    {"@type": "tvm.stackEntryNumber", "number": {"@type": "tvm.numberDecimal",
                        "number": "103649671866818220423634975646397416993429323170411193682744267370984259350392"}}
                ]}}
            ]}}
        ]}],
        ["num", "0x0"],
        ["num", "-0x1"]
    ])
}

#[test]
fn legacy_stack_parses_top_level_hex_and_nested_decimal_numbers() {
    let stack = parse_legacy_stack(
        "participant_list_extended",
        &participant_list_extended_json(),
    )
    .unwrap();
    assert_eq!(stack.len(), 7);
    assert_eq!(stack[0], TvmValue::number(0x6a04961a_u64));
    assert_eq!(stack[6], TvmValue::number(-1));
    let TvmValue::List(participants) = &stack[4] else {
        unreachable!("{:?}", stack[4])
    };
    let TvmValue::Tuple(entry) = &participants[0] else {
        unreachable!()
    };
    let TvmValue::Tuple(details) = &entry[1] else {
        unreachable!()
    };
    assert_eq!(details[1], TvmValue::number(1_966_080));
}

#[test]
fn encoding_then_parsing_gives_the_same_stack() {
    let stack = vec![
        TvmValue::number(-5),
        TvmValue::Cell("te6cckEBAQEAAgAAAEysuc0=".to_owned()),
        TvmValue::Tuple(vec![
            TvmValue::number(1),
            TvmValue::List(Vec::new()),
            TvmValue::Slice("abc".to_owned()),
            TvmValue::Cell("def".to_owned()),
        ]),
        TvmValue::List(vec![TvmValue::Tuple(vec![TvmValue::number(2)])]),
    ];
    let encoded = encode_legacy_stack(&stack);
    assert_eq!(encoded[0], json!(["num", "-0x5"]));
    assert_eq!(parse_legacy_stack("m", &encoded).unwrap(), stack);
}

#[test]
fn malformed_entries_name_their_path() {
    let check = |stack: Value, expected: &str| {
        let error = parse_legacy_stack("m", &stack).unwrap_err();
        assert_eq!(error.to_string(), expected);
    };
    check(json!({"a": 1}), "m stack: expected an array, got an object");
    check(
        json!([["num", "0xZZ"]]),
        "m[0]: expected a number, got the text \"0xZZ\"",
    );
    check(
        json!([["num"]]),
        "m[0]: expected a [type, value] pair, got an array",
    );
    check(
        json!([["tuple", {"@type": "tvm.tuple", "elements": [{"@type": "tvm.stackEntryWeird"}]}]]),
        "m[0][0]: unknown stack entry type \"tvm.stackEntryWeird\"",
    );
    check(
        json!([["list", {"@type": "tvm.list", "elements": [1]}]]),
        "m[0][0]: expected a tonlib stack entry with `@type`, got a JSON number",
    );
    check(json!([["cell", {}]]), "m[0]: a cell without `bytes`");
}
