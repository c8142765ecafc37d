//! Where people talk to Command Center besides the CLI and the API: Slack and Telegram.
//! Every channel parses through the shared command layer ([`crate::commands`]) and decides
//! approvals through the gate as the person its user id maps to.

pub mod slack;
pub mod telegram;
