//! The gate: a validated policy set and the pure, total evaluation of proposals against it.
//!
//! Cedar says allow or deny; annotations on the policies say what a denial means:
//! - `@id("...")` names a policy in decisions and the audit log;
//! - `@reason("...")` is the sentence people read;
//! - `@never` on a `forbid`: the operation never runs, not even with approvals;
//! - `@approvals("2")` on a `forbid` of `execute`: how many distinct people must approve;
//! - `@expires("4h")`: how long the approval request stays open (default 24h).
//!
//! A proposal whose `execute` is allowed runs on its own; one whose `execute` is denied needs
//! approval, unless a determining policy says `@never`. Any evaluation error denies.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use cedar_policy::{
    Authorizer, Context, Decision as CedarDecision, Effect, Entities, Entity, EntityUid, PolicyId,
    PolicySet, Request, RestrictedExpression, Schema, ValidationMode, Validator,
};

use crate::proposal::{ApprovalCheck, Decision, DecisionContext, Proposal, Proposer};
use crate::{PolicyProblem, PolicySummary, SCHEMA_FILE, diagnostic_problems};

/// How long an approval request stays open when no policy says otherwise.
pub const DEFAULT_APPROVAL_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// What the annotations of one policy say.
#[derive(Clone, Debug, PartialEq)]
pub struct PolicyMeta {
    pub id: String,
    pub file: PathBuf,
    /// `permit` or `forbid`.
    pub effect: &'static str,
    pub reason: Option<String>,
    pub never: bool,
    pub approvals: Option<u32>,
    pub expires: Option<Duration>,
}

/// A validated policy set, ready to decide.
#[derive(Clone, Debug)]
pub struct PolicyEngine {
    schema: Schema,
    set: PolicySet,
    meta: BTreeMap<String, PolicyMeta>,
    summary: PolicySummary,
}

fn uid(kind: &str, id: &str) -> Result<EntityUid, String> {
    let literal = format!("{kind}::{}", serde_json::Value::String(id.to_owned()));
    EntityUid::from_str(&literal).map_err(|error| format!("entity {literal}: {error}"))
}

fn long(value: u64) -> RestrictedExpression {
    RestrictedExpression::new_long(i64::try_from(value).unwrap_or(i64::MAX))
}

fn annotations(
    policy: &cedar_policy::Policy,
    id: &str,
    file: &Path,
    problems: &mut Vec<PolicyProblem>,
) -> PolicyMeta {
    let mut problem = |message: String| {
        problems.push(PolicyProblem {
            file: file.to_path_buf(),
            line: None,
            message: format!("policy {id:?}: {message}"),
        })
    };
    let approvals =
        policy
            .annotation("approvals")
            .and_then(|text| match text.trim().parse::<u32>() {
                Ok(n) if (1..=20).contains(&n) => Some(n),
                _ => {
                    problem(format!(
                        "@approvals({text:?}) must be a whole number of people from 1 to 20"
                    ));
                    None
                }
            });
    let expires = policy.annotation("expires").and_then(|text| {
        match humantime::parse_duration(text.trim()) {
            Ok(duration) if !duration.is_zero() => Some(duration),
            _ => {
                problem(format!(
                    "@expires({text:?}) must be a duration such as \"30m\" or \"4h\""
                ));
                None
            }
        }
    });
    let never = policy.annotation("never").is_some();
    if (never || approvals.is_some()) && policy.effect() != Effect::Forbid {
        problem("@never and @approvals only mean something on a `forbid` policy".to_owned());
    }
    PolicyMeta {
        id: id.to_owned(),
        file: file.to_path_buf(),
        effect: match policy.effect() {
            Effect::Permit => "permit",
            Effect::Forbid => "forbid",
        },
        reason: policy.annotation("reason").map(str::to_owned),
        never,
        approvals,
        expires,
    }
}

struct Evaluation {
    allowed: bool,
    by: Vec<String>,
    errors: Vec<String>,
}

impl PolicyEngine {
    /// Reads `dir/schema.cedarschema` and every `dir/*.cedar`.
    pub fn load(dir: &Path) -> Result<PolicyEngine, Vec<PolicyProblem>> {
        let schema_path = dir.join(SCHEMA_FILE);
        let schema_text = crate::read(&schema_path).map_err(|problem| vec![problem])?;
        let mut paths: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(entries) => entries
                .filter_map(Result::ok)
                .map(|entry| entry.path())
                .filter(|path| path.extension().is_some_and(|ext| ext == "cedar"))
                .collect(),
            Err(error) => {
                return Err(vec![PolicyProblem {
                    file: dir.to_path_buf(),
                    line: None,
                    message: format!("cannot list the policy directory: {error}"),
                }]);
            }
        };
        paths.sort();
        let mut files = Vec::new();
        let mut problems = Vec::new();
        for path in paths {
            match crate::read(&path) {
                Ok(text) => files.push((path, text)),
                Err(problem) => problems.push(problem),
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        Self::from_sources(&schema_path, &schema_text, &files)
    }

    /// Builds an engine from texts (pure). Every problem at once.
    pub fn from_sources(
        schema_path: &Path,
        schema_text: &str,
        files: &[(PathBuf, String)],
    ) -> Result<PolicyEngine, Vec<PolicyProblem>> {
        let schema = match Schema::from_cedarschema_str(schema_text) {
            Ok((schema, _warnings)) => schema,
            Err(error) => return Err(diagnostic_problems(schema_path, schema_text, &error, "")),
        };
        if files.is_empty() {
            return Err(vec![PolicyProblem {
                file: schema_path
                    .parent()
                    .map(Path::to_path_buf)
                    .unwrap_or_default(),
                line: None,
                message: "no *.cedar policy files; without policies nothing may run on its own"
                    .to_owned(),
            }]);
        }
        let validator = Validator::new(schema.clone());
        let mut set = PolicySet::new();
        let mut meta = BTreeMap::new();
        let mut problems = Vec::new();
        for (file, text) in files {
            let parsed = match PolicySet::from_str(text) {
                Ok(parsed) => parsed,
                Err(errors) => {
                    problems.extend(diagnostic_problems(file, text, &errors, ""));
                    continue;
                }
            };
            let result = validator.validate(&parsed, ValidationMode::Strict);
            for error in result.validation_errors() {
                problems.extend(diagnostic_problems(file, text, error, ""));
            }
            let stem = file
                .file_stem()
                .map(|stem| stem.to_string_lossy().into_owned())
                .unwrap_or_default();
            for (index, policy) in parsed.policies().enumerate() {
                let id = policy
                    .annotation("id")
                    .map(str::to_owned)
                    .unwrap_or_else(|| format!("{stem}#{index}"));
                if let Some(existing) = meta.get(&id) {
                    let existing: &PolicyMeta = existing;
                    problems.push(PolicyProblem {
                        file: file.clone(),
                        line: None,
                        message: format!(
                            "policy id {id:?} is also used in {}; ids must be unique",
                            existing.file.display()
                        ),
                    });
                    continue;
                }
                let info = annotations(policy, &id, file, &mut problems);
                if let Err(error) = set.add(policy.new_id(PolicyId::new(&id))) {
                    problems.push(PolicyProblem {
                        file: file.clone(),
                        line: None,
                        message: format!("policy {id:?}: {error}"),
                    });
                }
                meta.insert(id, info);
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let summary = PolicySummary {
            files: files.len(),
            policies: meta.len(),
            schema: schema_path.display().to_string(),
        };
        Ok(PolicyEngine {
            schema,
            set,
            meta,
            summary,
        })
    }

    pub fn summary(&self) -> &PolicySummary {
        &self.summary
    }

    /// What the annotations of a policy say, by id.
    pub fn policy(&self, id: &str) -> Option<&PolicyMeta> {
        self.meta.get(id)
    }

    fn proposer_entity(&self, proposer: &Proposer) -> Result<(EntityUid, Vec<Entity>), String> {
        match proposer {
            Proposer::Agent { name, domain } => {
                let principal = uid("Agent", name)?;
                let entity = Entity::new(
                    principal.clone(),
                    HashMap::from([(
                        "domain".to_owned(),
                        RestrictedExpression::new_string(domain.clone()),
                    )]),
                    HashSet::new(),
                )
                .map_err(|error| error.to_string())?;
                Ok((principal, vec![entity]))
            }
            Proposer::User { name, roles } => self.user_entity(name, roles),
        }
    }

    fn user_entity(
        &self,
        name: &str,
        roles: &[String],
    ) -> Result<(EntityUid, Vec<Entity>), String> {
        let principal = uid("User", name)?;
        let mut entities = Vec::new();
        let mut parents = HashSet::new();
        for role in roles {
            let role_uid = uid("Role", role)?;
            parents.insert(role_uid.clone());
            entities.push(Entity::new_no_attrs(role_uid, HashSet::new()));
        }
        entities.push(
            Entity::new(
                principal.clone(),
                HashMap::from([(
                    "name".to_owned(),
                    RestrictedExpression::new_string(name.to_owned()),
                )]),
                parents,
            )
            .map_err(|error| error.to_string())?,
        );
        Ok((principal, entities))
    }

    fn operation_entity(&self, proposal: &Proposal) -> Result<(EntityUid, Entity), String> {
        let operation = &proposal.operation;
        let resource = uid("Operation", &proposal.id)?;
        let entity = Entity::new(
            resource.clone(),
            HashMap::from([
                (
                    "kind".to_owned(),
                    RestrictedExpression::new_string(operation.kind.clone()),
                ),
                (
                    "domain".to_owned(),
                    RestrictedExpression::new_string(operation.domain.clone()),
                ),
                (
                    "risk".to_owned(),
                    RestrictedExpression::new_string(operation.risk.as_str().to_owned()),
                ),
                ("amount_nanoton".to_owned(), long(operation.amount_nanoton)),
                ("amount_cents".to_owned(), long(operation.amount_cents)),
                (
                    "target".to_owned(),
                    RestrictedExpression::new_string(operation.target.clone()),
                ),
            ]),
            HashSet::new(),
        )
        .map_err(|error| error.to_string())?;
        Ok((resource, entity))
    }

    fn context(&self, context: &DecisionContext) -> Result<Context, String> {
        Context::from_pairs([
            (
                "executions_last_hour".to_owned(),
                long(u64::from(context.executions_last_hour)),
            ),
            (
                "executions_last_day".to_owned(),
                long(u64::from(context.executions_last_day)),
            ),
            ("local_hour".to_owned(), long(u64::from(context.local_hour))),
            (
                "autonomy_paused".to_owned(),
                RestrictedExpression::new_bool(context.autonomy_paused),
            ),
        ])
        .map_err(|error| error.to_string())
    }

    fn evaluate(
        &self,
        principal: (EntityUid, Vec<Entity>),
        action: &str,
        proposal: &Proposal,
        context: &DecisionContext,
    ) -> Result<Evaluation, String> {
        let (resource, operation) = self.operation_entity(proposal)?;
        let (principal, mut entities) = principal;
        entities.push(operation);
        let entities = Entities::from_entities(entities, Some(&self.schema))
            .map_err(|error| error.to_string())?;
        let request = Request::new(
            principal,
            uid("Action", action)?,
            resource,
            self.context(context)?,
            Some(&self.schema),
        )
        .map_err(|error| error.to_string())?;
        let response = Authorizer::new().is_authorized(&request, &self.set, &entities);
        let mut by: Vec<String> = response
            .diagnostics()
            .reason()
            .map(|id| id.to_string())
            .collect();
        by.sort();
        Ok(Evaluation {
            allowed: response.decision() == CedarDecision::Allow,
            by,
            errors: response
                .diagnostics()
                .errors()
                .map(|error| error.to_string())
                .collect(),
        })
    }

    fn reasons(&self, ids: &[String]) -> String {
        ids.iter()
            .filter_map(|id| self.meta.get(id))
            .filter_map(|meta| meta.reason.clone())
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// The decision for `proposal`. Total: any evaluation failure is a denial that says why.
    /// `roles` are the roles configured for people; the ones whose holders may approve are
    /// named in a `NeedsApproval`.
    pub fn decide(
        &self,
        proposal: &Proposal,
        context: &DecisionContext,
        roles: &[String],
    ) -> Decision {
        self.try_decide(proposal, context, roles)
            .unwrap_or_else(|message| Decision::Deny {
                by: Vec::new(),
                reason: format!("the policies could not be evaluated, so nothing runs: {message}"),
            })
    }

    fn try_decide(
        &self,
        proposal: &Proposal,
        context: &DecisionContext,
        roles: &[String],
    ) -> Result<Decision, String> {
        let propose = self.evaluate(
            self.proposer_entity(&proposal.proposer)?,
            "propose",
            proposal,
            context,
        )?;
        if !propose.errors.is_empty() {
            return Err(propose.errors.join("; "));
        }
        if !propose.allowed {
            let reason = self.reasons(&propose.by);
            return Ok(Decision::Deny {
                reason: if reason.is_empty() {
                    format!(
                        "{} may not propose {} operations",
                        proposal.proposer.name(),
                        proposal.operation.kind
                    )
                } else {
                    reason
                },
                by: propose.by,
            });
        }
        let execute = self.evaluate(
            self.proposer_entity(&proposal.proposer)?,
            "execute",
            proposal,
            context,
        )?;
        if !execute.errors.is_empty() {
            return Err(execute.errors.join("; "));
        }
        if execute.allowed {
            return Ok(Decision::Auto { by: execute.by });
        }
        let never: Vec<String> = execute
            .by
            .iter()
            .filter(|id| self.meta.get(*id).is_some_and(|meta| meta.never))
            .cloned()
            .collect();
        if !never.is_empty() {
            let reason = self.reasons(&never);
            return Ok(Decision::Deny {
                reason: if reason.is_empty() {
                    "forbidden by policy".to_owned()
                } else {
                    reason
                },
                by: never,
            });
        }
        let determining: Vec<&PolicyMeta> = execute
            .by
            .iter()
            .filter_map(|id| self.meta.get(id))
            .collect();
        let approvals = determining
            .iter()
            .filter_map(|meta| meta.approvals)
            .max()
            .unwrap_or(1);
        let expires_in = determining
            .iter()
            .filter_map(|meta| meta.expires)
            .min()
            .unwrap_or(DEFAULT_APPROVAL_WINDOW);
        let mut eligible_roles = Vec::new();
        for role in roles {
            let probe = self.user_entity(&format!("role:{role}"), std::slice::from_ref(role))?;
            let approve = self.evaluate(probe, "approve", proposal, context)?;
            if approve.allowed {
                eligible_roles.push(role.clone());
            }
        }
        let reason = match self.reasons(&execute.by) {
            reason if reason.is_empty() => {
                "no policy lets this run on its own; a person decides".to_owned()
            }
            reason => reason,
        };
        if eligible_roles.is_empty() {
            return Ok(Decision::Deny {
                by: execute.by,
                reason: format!("{reason}; and no configured role may approve it"),
            });
        }
        Ok(Decision::NeedsApproval {
            approvals,
            eligible_roles,
            expires_in,
            by: execute.by,
            reason,
        })
    }

    /// May this person approve this proposal? A proposer never approves their own proposal;
    /// otherwise Cedar's `approve` decides.
    pub fn may_approve(
        &self,
        user: &str,
        roles: &[String],
        proposal: &Proposal,
        context: &DecisionContext,
    ) -> ApprovalCheck {
        if matches!(&proposal.proposer, Proposer::User { name, .. } if name == user) {
            return ApprovalCheck::Refused {
                by: Vec::new(),
                reason: format!("{user} proposed this operation and cannot also approve it"),
            };
        }
        let evaluation = self
            .user_entity(user, roles)
            .and_then(|principal| self.evaluate(principal, "approve", proposal, context));
        match evaluation {
            Ok(evaluation) if evaluation.allowed && evaluation.errors.is_empty() => {
                ApprovalCheck::Allowed { by: evaluation.by }
            }
            Ok(evaluation) => {
                let reason = self.reasons(&evaluation.by);
                ApprovalCheck::Refused {
                    reason: if reason.is_empty() {
                        format!(
                            "no policy lets {user} (roles: {}) approve {} operations",
                            if roles.is_empty() {
                                "none".to_owned()
                            } else {
                                roles.join(", ")
                            },
                            proposal.operation.kind
                        )
                    } else {
                        reason
                    },
                    by: evaluation.by,
                }
            }
            Err(message) => ApprovalCheck::Refused {
                by: Vec::new(),
                reason: format!("the policies could not be evaluated: {message}"),
            },
        }
    }
}
