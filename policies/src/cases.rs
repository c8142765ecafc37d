//! Example cases shipped beside the policies (`policies/tests/*.toml`): a proposal and a
//! context, and the decision the policies must give. `command-center policy test` and a cargo
//! test run them.

use std::path::Path;

use serde::Deserialize;

use crate::PolicyProblem;
use crate::engine::PolicyEngine;
use crate::proposal::{ApprovalCheck, Decision, DecisionContext, Proposal};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseFile {
    /// Roles configured for people, as the gate sees them.
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default, rename = "case")]
    cases: Vec<Case>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Approver {
    user: String,
    #[serde(default)]
    roles: Vec<String>,
    /// `allowed` or `refused`.
    expect: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    proposal: Proposal,
    #[serde(default)]
    context: DecisionContext,
    /// `auto`, `deny` or `needs_approval`.
    expect: String,
    /// When given, the determining policies must be exactly these.
    #[serde(default)]
    by: Option<Vec<String>>,
    #[serde(default)]
    approvals: Option<u32>,
    #[serde(default)]
    eligible_roles: Option<Vec<String>>,
    #[serde(default)]
    approver: Vec<Approver>,
}

/// The result of one case.
#[derive(Clone, Debug, PartialEq)]
pub struct CaseOutcome {
    pub name: String,
    pub decision: Decision,
    /// What differs from the expectation; empty when the case passes.
    pub mismatches: Vec<String>,
}

impl CaseOutcome {
    pub fn passed(&self) -> bool {
        self.mismatches.is_empty()
    }
}

/// Runs the cases of one file against `engine`.
pub fn run_cases(
    engine: &PolicyEngine,
    file: &Path,
    text: &str,
) -> Result<Vec<CaseOutcome>, PolicyProblem> {
    let parsed: CaseFile = toml::from_str(text).map_err(|error| PolicyProblem {
        file: file.to_path_buf(),
        line: error
            .span()
            .map(|span| text[..span.start.min(text.len())].matches('\n').count() + 1),
        message: error.message().to_owned(),
    })?;
    let mut outcomes = Vec::new();
    for case in parsed.cases {
        let decision = engine.decide(&case.proposal, &case.context, &parsed.roles);
        let mut mismatches = Vec::new();
        if decision.kind() != case.expect {
            mismatches.push(format!(
                "expected {}, got {} ({:?})",
                case.expect,
                decision.kind(),
                decision
            ));
        }
        if let Some(by) = &case.by
            && decision.by() != by.as_slice()
        {
            mismatches.push(format!(
                "expected it to be decided by {by:?}, it was by {:?}",
                decision.by()
            ));
        }
        if let Decision::NeedsApproval {
            approvals,
            eligible_roles,
            ..
        } = &decision
        {
            if let Some(expected) = case.approvals
                && expected != *approvals
            {
                mismatches.push(format!("expected {expected} approvals, got {approvals}"));
            }
            if let Some(expected) = &case.eligible_roles
                && expected != eligible_roles
            {
                mismatches.push(format!(
                    "expected eligible roles {expected:?}, got {eligible_roles:?}"
                ));
            }
        }
        for approver in &case.approver {
            let check = engine.may_approve(
                &approver.user,
                &approver.roles,
                &case.proposal,
                &case.context,
            );
            let got = match check {
                ApprovalCheck::Allowed { .. } => "allowed",
                ApprovalCheck::Refused { .. } => "refused",
            };
            if got != approver.expect {
                mismatches.push(format!(
                    "expected approval by {} to be {}, it was {got} ({check:?})",
                    approver.user, approver.expect
                ));
            }
        }
        outcomes.push(CaseOutcome {
            name: case.name,
            decision,
            mismatches,
        });
    }
    Ok(outcomes)
}
