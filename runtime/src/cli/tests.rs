use chrono::{TimeZone, Utc};
use clap::CommandFactory;

use super::*;

#[test]
fn cli_definition_is_consistent() {
    Cli::command().debug_assert();
}

#[test]
fn every_command_has_help_with_an_example() {
    let mut command = Cli::command();
    let mut missing = Vec::new();
    fn walk(command: &mut clap::Command, path: String, missing: &mut Vec<String>) {
        let help = command.render_long_help().to_string();
        if !help.contains("Example") && !help.contains("example") {
            missing.push(path.clone());
        }
        for sub in command.get_subcommands_mut() {
            let name = format!("{path} {}", sub.get_name());
            walk(sub, name, missing);
        }
    }
    walk(&mut command, "command-center".into(), &mut missing);
    missing.retain(|path| !path.ends_with(" help"));
    assert!(missing.is_empty(), "no example in --help of: {missing:?}");
}

#[test]
fn time_bounds() {
    let now = Utc.with_ymd_and_hms(2026, 11, 24, 12, 0, 0).unwrap();
    assert_eq!(
        parse_time("2h", now).unwrap(),
        Utc.with_ymd_and_hms(2026, 11, 24, 10, 0, 0).unwrap()
    );
    assert_eq!(
        parse_time("7d", now).unwrap(),
        Utc.with_ymd_and_hms(2026, 11, 17, 12, 0, 0).unwrap()
    );
    assert_eq!(
        parse_time("2026-11-01", now).unwrap(),
        Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap()
    );
    assert_eq!(
        parse_time("2026-11-24T11:30:00+01:00", now).unwrap(),
        Utc.with_ymd_and_hms(2026, 11, 24, 10, 30, 0).unwrap()
    );
    assert!(
        parse_time("yesterday-ish", now)
            .unwrap_err()
            .contains("RFC 3339")
    );
}
