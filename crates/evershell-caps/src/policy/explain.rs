//! Explain: a decision with the verdict of every candidate rule and the
//! transforms that would fire, produced by the decision code itself so that
//! `evershell caps explain` never disagrees with enforcement.

use super::decide::BodyInput;
use super::decision::Decision;
use super::facts::RequestFacts;
use super::Policy;

/// The answer of [`Policy::explain`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Explanation {
    pub decision: Decision,
    /// Every candidate rule the decision looked at, in order: the refusals,
    /// then the admitting rule or the one that waits for the body.
    pub candidates: Vec<Candidate>,
    /// One line per transform that would fire ([`crate::TransformStep::describe`]).
    pub transforms: Vec<String>,
}

/// One candidate rule's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub capability: String,
    pub rule: String,
    pub admitted: bool,
    /// Why it refused; `admitted`, or `needs the request body (up to N
    /// bytes)`.
    pub why: String,
}

impl Policy {
    /// Decides `req` as [`Policy::decide`] (`body: None`) or
    /// [`Policy::decide_with_body`] would, and says why.
    pub fn explain(&self, req: &RequestFacts<'_>, body: Option<&[u8]>) -> Explanation {
        let input = match body {
            Some(bytes) => BodyInput::Given(bytes),
            None => BodyInput::Unknown,
        };
        let outcome = self.run(req, input);
        let d = outcome.decision;

        let mut candidates: Vec<Candidate> = d
            .refusals
            .iter()
            .map(|r| Candidate {
                capability: r.capability.clone(),
                rule: r.rule.clone(),
                admitted: false,
                why: r.why.clone(),
            })
            .collect();
        if let (Some(capability), Some(rule)) = (&d.capability, &d.rule) {
            candidates.push(Candidate {
                capability: capability.clone(),
                rule: rule.clone(),
                admitted: true,
                why: "admitted".to_owned(),
            });
        }
        if let Some(i) = outcome.pending {
            let rule = &self.rules[i];
            candidates.push(Candidate {
                capability: rule.capability.clone(),
                rule: rule.label.clone(),
                admitted: false,
                why: format!(
                    "needs the request body (up to {} bytes)",
                    d.needs_body.unwrap_or(rule.body_limit)
                ),
            });
        }

        let transforms = d.transforms.iter().map(|s| s.describe()).collect();
        Explanation {
            decision: d,
            candidates,
            transforms,
        }
    }
}
