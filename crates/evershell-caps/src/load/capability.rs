//! Capabilities: the document list, canonical entries and the one-rule
//! shorthand, and the checks that span fields (unique names, `applies_to`
//! targets).

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::budget::{Budget, Counter};
use crate::model::{AllowRule, Capability, CapabilityType, TransformAction};

use super::budget::load_budgets;
use super::rule::{load_rules, RuleDraft, RULE_KEYS};
use super::scalar;
use super::transform::{load_transforms, LoadedTransform};
use super::tree::{Entry, Mark, Node};
use super::{expect_map, unknown_key, Errors};

const CAP_KEYS: &str = "name, type, allow, transforms, budgets";

/// A loaded capability with what the cross-field checks need.
struct Loaded {
    cap: Capability,
    path: String,
    name_mark: Mark,
}

/// Loads the document root: a list of capabilities with unique names.
pub(super) fn load_document(root: &Node, errs: &mut Errors) -> Vec<Capability> {
    let Some(items) = scalar::list(
        root,
        "capabilities",
        "[{name: ..., type: http, allow: [...]}]",
        errs,
    ) else {
        return Vec::new();
    };
    let loaded: Vec<Loaded> = items
        .iter()
        .enumerate()
        .filter_map(|(i, item)| load_capability(item, format!("capabilities[{i}]"), errs))
        .collect();

    let mut seen: HashMap<&str, Mark> = HashMap::with_capacity(loaded.len());
    for l in &loaded {
        match seen.get(l.cap.name.as_str()) {
            Some(first) => {
                let msg = format!(
                    "duplicate capability name {:?} (first at line {})",
                    l.cap.name, first.line
                );
                errs.push(&format!("{}.name", l.path), l.name_mark, msg);
            }
            None => {
                seen.insert(&l.cap.name, l.name_mark);
            }
        }
    }
    loaded.into_iter().map(|l| l.cap).collect()
}

/// The fields of one capability entry as they are read.
#[derive(Default)]
struct Draft {
    name: Option<(String, Mark)>,
    saw_type: bool,
    allow: Option<Vec<AllowRule>>,
    transforms: Vec<LoadedTransform>,
    budgets: BTreeMap<Counter, Budget>,
    rule: RuleDraft,
}

fn load_capability(node: &Node, path: String, errs: &mut Errors) -> Option<Loaded> {
    let what = "a capability (a mapping with name, type, allow)";
    let entries = expect_map(node, &path, what, errs)?;
    let has_allow = entries.iter().any(|e| e.key == "allow");
    let shorthand = !has_allow
        && entries
            .iter()
            .any(|e| e.key == "domains" || e.key == "methods");

    let mut draft = Draft::default();
    for e in &entries {
        take_field(&mut draft, e, &path, shorthand, errs);
    }

    let mark = node.mark();
    if draft.name.is_none() && !entries.iter().any(|e| e.key == "name") {
        errs.push(&path, mark, "missing \"name\"");
    }
    if !shorthand && !draft.saw_type {
        errs.push(&path, mark, "missing \"type\" (the only type is http)");
    }
    if !shorthand && !has_allow {
        errs.push(
            &path,
            mark,
            "missing \"allow\" (a list of allow rules, or domains/methods for the one-rule form)",
        );
    }

    let (name, name_mark) = draft.name?;
    let allow = if shorthand {
        vec![draft.rule.finish(Some(name.clone()), &path, mark, errs)?]
    } else {
        draft.allow?
    };
    check_names(&allow, &draft.transforms, &path, &name, errs);
    check_auth_transport(&allow, &draft.transforms, &path, errs);

    let transforms = draft.transforms.into_iter().map(|t| t.transform).collect();
    let cap = Capability {
        name,
        kind: CapabilityType::Http,
        allow,
        transforms,
        budgets: draft.budgets,
    };
    Some(Loaded {
        cap,
        path,
        name_mark,
    })
}

/// Routes one capability key to its loader.
fn take_field(draft: &mut Draft, e: &Entry, path: &str, shorthand: bool, errs: &mut Errors) {
    let field = format!("{path}.{}", e.key);
    match e.key.as_str() {
        "name" => {
            draft.name =
                scalar::identifier(&e.value, &field, true, errs).map(|n| (n, e.value.mark()));
        }
        "type" => {
            draft.saw_type = true;
            load_type(&e.value, &field, errs);
        }
        "allow" => draft.allow = Some(load_rules(&e.value, &field, errs)),
        "transforms" => draft.transforms = load_transforms(&e.value, &field, errs),
        "budgets" => draft.budgets = load_budgets(&e.value, &field, errs),
        k if shorthand && RULE_KEYS.contains(&k) => {
            draft.rule.take(e, &field, errs);
        }
        k if RULE_KEYS.contains(&k) => {
            let msg = format!("{k:?} belongs inside an allow rule when \"allow\" is present");
            errs.push(&field, e.key_mark, msg);
        }
        k => unknown_key(errs, &field, k, e.key_mark, CAP_KEYS),
    }
}

fn load_type(node: &Node, path: &str, errs: &mut Errors) {
    if let Some(text) = scalar::string(node, path, errs) {
        if text != "http" {
            errs.push(
                path,
                node.mark(),
                format!("unknown type {text:?} (the only type is http)"),
            );
        }
    }
}

/// Neither a credential nor a secret is ever put on a request the policy
/// lets travel in clear text: an `auth` transform, or a rewrite whose
/// values read `secrets[…]`, may not apply to a rule with
/// `allow_insecure: true`.
fn check_auth_transport(
    rules: &[AllowRule],
    transforms: &[LoadedTransform],
    path: &str,
    errs: &mut Errors,
) {
    for (ti, t) in transforms.iter().enumerate() {
        let carries = match &t.transform.action {
            TransformAction::Auth { credential } => format!("credential {credential:?}"),
            TransformAction::Rewrite(rewrite) => {
                let exprs = rewrite
                    .set_headers
                    .iter()
                    .chain(&rewrite.set_query)
                    .chain(&rewrite.set_body);
                match exprs.flat_map(|(_, e)| e.secrets()).next() {
                    Some(secret) => format!("secret {secret:?}"),
                    None => continue,
                }
            }
        };
        let applies = |rule: &AllowRule| match &t.transform.applies_to {
            Some(names) => rule.name.as_ref().is_some_and(|n| names.contains(n)),
            None => true,
        };
        if let Some(rule) = rules.iter().find(|r| r.allow_insecure && applies(r)) {
            let rule = rule.name.as_deref().unwrap_or("(unnamed)");
            let msg = format!(
                "{carries} would be sent over plain HTTP: rule {rule:?} allows insecure requests \
                 (apply this transform only to TLS rules with applies_to)"
            );
            errs.push(&format!("{path}.transforms[{ti}]"), t.name_mark, msg);
        }
    }
}

/// Transform names are unique in their capability, and `applies_to` names
/// rules of this capability (rule names are checked by the rule loader).
fn check_names(
    rules: &[AllowRule],
    transforms: &[LoadedTransform],
    path: &str,
    cap: &str,
    errs: &mut Errors,
) {
    let rule_names: HashSet<&str> = rules.iter().filter_map(|r| r.name.as_deref()).collect();
    let mut transform_names: HashSet<&str> = HashSet::with_capacity(transforms.len());

    for (ti, t) in transforms.iter().enumerate() {
        let tpath = format!("{path}.transforms[{ti}]");
        if !transform_names.insert(&t.transform.name) {
            let msg = format!("duplicate transform name {:?}", t.transform.name);
            errs.push(&format!("{tpath}.name"), t.name_mark, msg);
        }
        let targets = t.transform.applies_to.iter().flatten();
        for (ai, (target, mark)) in targets.zip(&t.applies_marks).enumerate() {
            if !rule_names.contains(&target.as_str()) {
                let msg = format!("{target:?} is not an allow rule of capability {cap:?}");
                errs.push(&format!("{tpath}.applies_to[{ai}]"), *mark, msg);
            }
        }
    }
}
