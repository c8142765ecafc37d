use super::Secret;

#[test]
fn debug_and_display_hide_the_value() {
    let secret = Secret::new("SECRET-KEY-123");
    assert_eq!(format!("{secret}"), "***");
    assert_eq!(format!("{secret:?}"), "***");
    assert_eq!(secret.expose(), "SECRET-KEY-123");
}

#[test]
fn deserializes_from_a_plain_string_and_stays_hidden_in_parent_debug() {
    #[derive(serde::Deserialize, Debug)]
    struct Config {
        #[allow(dead_code)]
        api_key: Secret,
    }
    let config: Config = serde_json::from_str(r#"{"api_key":"SECRET-KEY-123"}"#).unwrap();
    assert_eq!(config.api_key.expose(), "SECRET-KEY-123");
    assert!(!format!("{config:?}").contains("SECRET-KEY-123"));
}
