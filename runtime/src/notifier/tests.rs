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
