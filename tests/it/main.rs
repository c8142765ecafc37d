//! The one integration-test binary: whole flows against the simulated world (in-process, over
//! real loopback HTTP) and the real `command-center` binary run as a child process.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

mod alerting;
mod assistant_tools;
mod audit_cli;
mod binary;
mod chat_flow;
mod commands;
mod conversation;
mod email;
mod faults;
mod finance;
mod gate_api;
mod injection;
mod market_flow;
mod memory;
mod policy_reload;
mod slack;
mod telegram;
mod validators;
