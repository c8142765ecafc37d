use super::*;

fn test_mnemonic() -> String {
    std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/test_wallet.mnemonic"
    ))
    .unwrap()
}

const DESTINATION_RAW: &str = "0:1111111111111111111111111111111111111111111111111111111111111111";

#[test]
fn addresses_parse_in_raw_and_user_friendly_forms() {
    let raw = parse_address(DESTINATION_RAW).unwrap();
    assert_eq!(raw.raw, DESTINATION_RAW);
    assert!(raw.bounceable);
    let friendly = parse_address(&raw.friendly).unwrap();
    assert_eq!(friendly.raw, DESTINATION_RAW);
    // The elector's address from the toncenter docs, in both forms.
    let elector = parse_address("Ef8zMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzM0vF").unwrap();
    assert_eq!(
        elector.raw,
        "-1:3333333333333333333333333333333333333333333333333333333333333333"
    );
    for bad in [
        "",
        "0:12",
        "7:1111111111111111111111111111111111111111111111111111111111111111",
        "EQ-not-an-address",
        "Ef8zMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzMzM0vG",
    ] {
        assert!(
            matches!(parse_address(bad), Err(TonError::InvalidAddress { .. })),
            "{bad:?} parsed"
        );
    }
}

#[test]
fn mnemonic_errors_never_quote_a_word() {
    let words = test_mnemonic();
    let mut swapped: Vec<&str> = words.split_whitespace().collect();
    swapped.swap(0, 1);
    let short: Vec<&str> = words.split_whitespace().take(12).collect();
    let mut typo: Vec<String> = words.split_whitespace().map(str::to_owned).collect();
    typo[3] = "zzzzqq".to_owned();
    for (input, expected) in [
        (short.join(" "), "expected 24 words"),
        (typo.join(" "), "word list"),
        (swapped.join(" "), "checksum"),
    ] {
        let error = WalletSigner::from_mnemonic(&input, WalletKind::V4r2).unwrap_err();
        let text = error.to_string();
        assert!(text.contains(expected), "{text}");
        for word in words.split_whitespace() {
            assert!(!text.contains(word), "{text} quotes {word}");
        }
    }
}

#[test]
fn signed_transfers_read_back_for_both_wallet_versions() {
    let comment = "rent for node 7 ".repeat(12); // 192 bytes: a snake chain of two cells
    for kind in [WalletKind::V4r2, WalletKind::V5r1] {
        let signer = WalletSigner::from_mnemonic(&test_mnemonic(), kind).unwrap();
        assert!(!format!("{signer:?}").contains("secret"));
        let signed = signer
            .sign_transfer(&TransferRequest {
                destination: DESTINATION_RAW,
                amount_nanoton: 1_500_000_000,
                comment: Some(&comment),
                seqno: 7,
                valid_until: 1_900_000_000,
                with_state_init: false,
            })
            .unwrap();
        let parsed = parse_transfer(&signed.boc_base64).unwrap();
        assert_eq!(parsed.wallet_kind, kind);
        assert_eq!(parsed.wallet_raw, signer.address().raw);
        assert_eq!(parsed.seqno, 7);
        assert_eq!(parsed.valid_until, 1_900_000_000);
        assert_eq!(parsed.message_hash, signed.message_hash);
        assert!(!parsed.with_state_init);
        assert_eq!(parsed.internal.len(), 1);
        let internal = &parsed.internal[0];
        assert_eq!(internal.destination_raw, DESTINATION_RAW);
        assert_eq!(internal.amount_nanoton, 1_500_000_000);
        assert!(internal.bounce);
        assert_eq!(internal.comment.as_deref(), Some(comment.as_str()));
        assert_eq!(internal.body_hash, signed.body_hash);
        assert_eq!(comment_body_hash(Some(&comment)).unwrap(), signed.body_hash);
    }
}

#[test]
fn the_two_versions_have_different_addresses_and_deploy_with_state_init() {
    let v4 = WalletSigner::from_mnemonic(&test_mnemonic(), WalletKind::V4r2).unwrap();
    let v5 = WalletSigner::from_mnemonic(&test_mnemonic(), WalletKind::V5r1).unwrap();
    assert_ne!(v4.address().raw, v5.address().raw);
    let signed = v4
        .sign_transfer(&TransferRequest {
            destination: &v5.address().friendly,
            amount_nanoton: 1,
            comment: None,
            seqno: 0,
            valid_until: 1_900_000_000,
            with_state_init: true,
        })
        .unwrap();
    let parsed = parse_transfer(&signed.boc_base64).unwrap();
    assert!(parsed.with_state_init);
    assert_eq!(parsed.internal[0].comment, None);
    assert_eq!(parsed.internal[0].destination_raw, v5.address().raw);
}

#[test]
fn garbage_is_not_a_transfer() {
    assert!(matches!(
        parse_transfer("%%%"),
        Err(TonError::InvalidBoc { .. })
    ));
    assert!(matches!(
        parse_transfer("aGVsbG8="),
        Err(TonError::InvalidBoc { .. })
    ));
    let empty_cell = BASE64.encode(
        BagOfCells::from_root(Cell::default())
            .serialize(true)
            .unwrap(),
    );
    assert!(matches!(
        parse_transfer(&empty_cell),
        Err(TonError::NotATransfer { .. })
    ));
}
