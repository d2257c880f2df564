//! Authorization: the compiled policy's decision on a request's facts. The
//! policy owns host normalisation, path canonicalisation and rule order;
//! this stage only asks, so that `evershell caps explain` and enforcement
//! can never disagree.

use evershell_caps::{Decision, Policy, RequestFacts};

use crate::classify::Facts;

/// The decision on `method` and `facts`.
pub(crate) fn decide(policy: &Policy, method: &str, facts: &Facts) -> Decision {
    policy.decide(&RequestFacts {
        method,
        scheme: facts.scheme,
        host: &facts.host,
        port: facts.port,
        target: &facts.target,
    })
}
