//! `budgets:` of a capability: counter → `{limit, per, ceiling}`.

use std::collections::BTreeMap;

use crate::budget::{Budget, BudgetScope, Ceiling, Counter};

use super::scalar;
use super::tree::{Mark, Node};
use super::{expect_map, unknown_key, Errors};

const BUDGET_KEYS: &str = "limit, per, ceiling";

/// Loads `budgets:` (a mapping, possibly empty).
pub(super) fn load_budgets(
    node: &Node,
    path: &str,
    errs: &mut Errors,
) -> BTreeMap<Counter, Budget> {
    let what = "a mapping of counter to budget (e.g. requests: {limit: 500, per: task})";
    let Some(entries) = expect_map(node, path, what, errs) else {
        return BTreeMap::new();
    };
    let mut out = BTreeMap::new();
    for e in entries {
        let field = format!("{path}.{}", e.key);
        let Some(counter) = Counter::parse(&e.key) else {
            let all: Vec<&str> = Counter::ALL.iter().map(|c| c.as_str()).collect();
            let msg = format!(
                "unknown counter {:?} (expected one of: {})",
                e.key,
                all.join(", ")
            );
            errs.push(&field, e.key_mark, msg);
            continue;
        };
        if let Some(budget) = load_budget(&e.value, &field, counter, errs) {
            out.insert(counter, budget);
        }
    }
    out
}

fn load_budget(node: &Node, path: &str, counter: Counter, errs: &mut Errors) -> Option<Budget> {
    let entries = expect_map(node, path, "a budget (a mapping with limit and per)", errs)?;
    let (mut limit, mut per, mut ceiling) = (None, None, Some(Ceiling::Deny));
    let (mut saw_limit, mut saw_per) = (false, false);
    for e in entries {
        let field = format!("{path}.{}", e.key);
        match e.key.as_str() {
            "limit" => {
                saw_limit = true;
                limit = scalar::unsigned(&e.value, &field, u64::MAX, errs);
                if limit == Some(0) {
                    errs.push(&field, e.value.mark(), "limit must be a positive integer");
                    limit = None;
                }
            }
            "per" => {
                saw_per = true;
                per = load_scope(&e.value, &field, errs);
            }
            "ceiling" => ceiling = load_ceiling(&e.value, &field, counter, errs),
            k => unknown_key(errs, &field, k, e.key_mark, BUDGET_KEYS),
        }
    }
    let mark = node.mark();
    missing(
        saw_limit,
        path,
        mark,
        "missing \"limit\" (a positive integer)",
        errs,
    );
    missing(
        saw_per,
        path,
        mark,
        "missing \"per\" (task or workspace)",
        errs,
    );
    Some(Budget {
        limit: limit?,
        per: per?,
        ceiling: ceiling?,
    })
}

fn missing(seen: bool, path: &str, mark: Mark, msg: &str, errs: &mut Errors) {
    if !seen {
        errs.push(path, mark, msg);
    }
}

fn load_scope(node: &Node, path: &str, errs: &mut Errors) -> Option<BudgetScope> {
    match scalar::string(node, path, errs)? {
        "task" => Some(BudgetScope::Task),
        "workspace" => Some(BudgetScope::Workspace),
        other => {
            let msg = format!("unknown per {other:?} (expected task or workspace)");
            errs.push(path, node.mark(), msg);
            None
        }
    }
}

fn load_ceiling(node: &Node, path: &str, counter: Counter, errs: &mut Errors) -> Option<Ceiling> {
    match scalar::string(node, path, errs)? {
        "deny" => Some(Ceiling::Deny),
        // Clamping lowers the request's output-token cap; nothing a request
        // carries caps its input tokens.
        "clamp" if counter == Counter::OutputTokens => Some(Ceiling::Clamp),
        "clamp" => {
            let msg = format!("ceiling clamp lowers the output-token cap, so it applies to output_tokens only, not {counter}");
            errs.push(path, node.mark(), msg);
            None
        }
        other => {
            let msg = format!("unknown ceiling {other:?} (expected deny or clamp)");
            errs.push(path, node.mark(), msg);
            None
        }
    }
}
