//! Label matchers (`name=value`, `name!=value`, `name=~regex`, `name!~regex`), as in
//! Alertmanager: regexes are anchored at both ends.

use agents::Alert;
use regex::Regex;

/// How a matcher compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MatchOp {
    Equal,
    NotEqual,
    Regex,
    NotRegex,
}

/// One parsed matcher.
#[derive(Clone, Debug)]
pub struct Matcher {
    pub name: String,
    pub op: MatchOp,
    pub value: String,
    regex: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Matcher {
    /// Parses `rule=low_efficiency`, `severity!=info`, `validator=~"v[12]"`.
    pub fn parse(text: &str) -> Result<Matcher, String> {
        let text = text.trim();
        let position = text
            .find(['=', '!'])
            .ok_or_else(|| format!("{text:?} is not a matcher; write label=value, label!=value, label=~regex or label!~regex"))?;
        let name = text[..position].trim();
        let rest = &text[position..];
        let (op, value) = if let Some(value) = rest.strip_prefix("=~") {
            (MatchOp::Regex, value)
        } else if let Some(value) = rest.strip_prefix("!~") {
            (MatchOp::NotRegex, value)
        } else if let Some(value) = rest.strip_prefix("!=") {
            (MatchOp::NotEqual, value)
        } else if let Some(value) = rest.strip_prefix('=') {
            (MatchOp::Equal, value)
        } else {
            return Err(format!(
                "{text:?} is not a matcher; write label=value, label!=value, label=~regex or label!~regex"
            ));
        };
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-')
        {
            return Err(format!(
                "{text:?}: the label name must be letters, digits, '_', '.' or '-'"
            ));
        }
        let value = value.trim();
        let value = value
            .strip_prefix('"')
            .and_then(|inner| inner.strip_suffix('"'))
            .unwrap_or(value)
            .to_owned();
        let regex = match op {
            MatchOp::Regex | MatchOp::NotRegex => Some(
                Regex::new(&format!("^(?:{value})$"))
                    .map_err(|error| format!("{text:?}: invalid regex: {error}"))?,
            ),
            _ => None,
        };
        Ok(Matcher {
            name: name.to_owned(),
            op,
            value,
            regex,
        })
    }

    /// Parses every matcher; the first error names the bad one.
    pub fn parse_all(texts: &[String]) -> Result<Vec<Matcher>, String> {
        texts.iter().map(|text| Matcher::parse(text)).collect()
    }

    pub fn matches_value(&self, actual: &str) -> bool {
        match (self.op, &self.regex) {
            (MatchOp::Equal, _) => actual == self.value,
            (MatchOp::NotEqual, _) => actual != self.value,
            (MatchOp::Regex, Some(regex)) => regex.is_match(actual),
            (MatchOp::NotRegex, Some(regex)) => !regex.is_match(actual),
            // Regex matchers are only built with their regex.
            (MatchOp::Regex | MatchOp::NotRegex, None) => false,
        }
    }

    pub fn matches(&self, alert: &Alert) -> bool {
        self.matches_value(&label(alert, &self.name))
    }
}

impl std::fmt::Display for Matcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let op = match self.op {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::Regex => "=~",
            MatchOp::NotRegex => "!~",
        };
        write!(f, "{}{op}{}", self.name, self.value)
    }
}

/// All of `matchers` hold for `alert` (true when there are none).
pub fn all_match(matchers: &[Matcher], alert: &Alert) -> bool {
    matchers.iter().all(|matcher| matcher.matches(alert))
}

/// The value of `name` for routing: the alert's own label first, then `rule`, `severity`,
/// `key`, and `domain` (the key's prefix before the first '.'); "" when absent.
pub fn label(alert: &Alert, name: &str) -> String {
    if let Some(value) = alert.labels.get(name) {
        return value.clone();
    }
    match name {
        "rule" | "alertname" => alert.rule.clone(),
        "severity" => alert.severity.to_string(),
        "key" => alert.key.clone(),
        "domain" => alert
            .key
            .split_once('.')
            .map(|(domain, _)| domain.to_owned())
            .unwrap_or_default(),
        _ => String::new(),
    }
}
