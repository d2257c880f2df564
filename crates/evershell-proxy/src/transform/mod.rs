//! Transforms: what the proxy changes on an allowed request before it
//! leaves. The policy's engine ([`evershell_caps::apply_transforms`]) runs
//! the rewrite steps (headers, query, path, JSON body) purely; this stage
//! fetches what they need first (secrets, credentials), applies the
//! engine's result to the request, and stamps each `auth` step's
//! credential where its kind puts it. A step that cannot complete turns
//! the request into a deny: nothing is forwarded half-transformed or
//! without the auth it was configured to carry.

mod stamp;

use std::collections::{BTreeMap, BTreeSet};

use bytes::Bytes;
use evershell_caps::{
    apply_transforms, RequestFacts, RequestParts, TransformContext, TransformStep,
};
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH};
use http::HeaderMap;
use zeroize::Zeroizing;

use crate::credentials::{CredentialSource, ResolvedCredential};
use crate::refusal::Denial;
use crate::secrets::SecretSource;

/// The reason a step records when what it needs cannot be had.
const AUTH_UNAVAILABLE: &str = "auth_unavailable";

/// An allowed request as the transforms change it.
#[derive(Debug)]
pub(crate) struct Draft {
    pub headers: HeaderMap,
    /// The canonical path.
    pub path: String,
    /// The raw query string without `?`.
    pub query: Option<String>,
    /// The whole body, when it was read ahead; `None` while it streams.
    pub body: Option<Bytes>,
    /// Set when a transform changed `body`.
    pub body_changed: bool,
}

/// Where transforms get what they need.
pub(crate) struct Sources<'a> {
    pub org_id: &'a str,
    pub credentials: &'a dyn CredentialSource,
    pub secrets: &'a dyn SecretSource,
}

/// What the transforms did to a request.
#[derive(Debug, Default)]
pub(crate) struct Applied {
    /// Names of the credentials stamped, in order; never their values.
    pub minted: Vec<String>,
    /// Names of the secrets the steps placed on the request.
    pub secrets: Vec<String>,
    /// Steps that completed.
    pub count: i64,
}

/// What the steps need, fetched before they run.
#[derive(Default)]
struct Fetched {
    secrets: BTreeMap<String, Zeroizing<String>>,
    /// `None` for a credential that could not be resolved.
    credentials: BTreeMap<String, Option<ResolvedCredential>>,
}

/// Runs `steps` on `draft`, the request decided from `facts`.
pub(crate) async fn apply(
    sources: &Sources<'_>,
    steps: &[TransformStep],
    facts: &RequestFacts<'_>,
    draft: &mut Draft,
) -> Result<Applied, Denial> {
    if steps.is_empty() {
        return Ok(Applied::default());
    }
    let fetched = fetch(sources, steps).await;
    run(steps, facts, &fetched, draft)
}

/// The header fields as the policy reads them: lower-case names (as
/// `http` holds them) and values decoded lossily.
pub(crate) fn header_pairs(headers: &HeaderMap) -> Vec<(String, String)> {
    headers
        .iter()
        .map(|(name, value)| {
            let value = String::from_utf8_lossy(value.as_bytes()).into_owned();
            (name.as_str().to_owned(), value)
        })
        .collect()
}

/// Resolves every secret and credential the steps name, once each. A
/// failure is remembered as an absence; the step that needed it fails.
async fn fetch(sources: &Sources<'_>, steps: &[TransformStep]) -> Fetched {
    let mut fetched = Fetched::default();
    let names: BTreeSet<String> = steps.iter().flat_map(|s| s.secrets_needed()).collect();
    for name in names {
        match sources.secrets.secret(sources.org_id, &name).await {
            Ok(value) => {
                fetched.secrets.insert(name, value);
            }
            Err(error) => tracing::debug!(%error, "secret unavailable"),
        }
    }

    for name in steps.iter().filter_map(TransformStep::credential) {
        if fetched.credentials.contains_key(name) {
            continue;
        }
        let credential = match sources.credentials.resolve(sources.org_id, name).await {
            Ok(credential) => Some(credential),
            Err(error) => {
                tracing::debug!(%error, "credential unavailable");
                None
            }
        };
        fetched.credentials.insert(name.to_owned(), credential);
    }
    fetched
}

/// The synchronous part: the engine's rewrites, then the credentials.
fn run(
    steps: &[TransformStep],
    facts: &RequestFacts<'_>,
    fetched: &Fetched,
    draft: &mut Draft,
) -> Result<Applied, Denial> {
    let reads_body = steps.iter().any(TransformStep::reads_body);
    let before = RequestParts {
        headers: header_pairs(&draft.headers),
        path: draft.path.clone(),
        query: draft.query.clone(),
        body: draft
            .body
            .as_ref()
            .filter(|_| reads_body)
            .and_then(|b| serde_json::from_slice(b).ok()),
    };
    let mut after = before.clone();
    let context = TransformContext {
        facts,
        secrets: &fetched.secrets,
    };
    let outcome = apply_transforms(steps, &mut after, &context);

    let mut failures = Failures::default();
    for (transform, reason) in &outcome.failed {
        failures.step(transform, reason);
    }
    let mut stamped = Vec::with_capacity(outcome.auth.len());
    for step in &outcome.auth {
        match fetched.credentials.get(&step.credential) {
            Some(Some(credential)) => stamped.push((step, credential)),
            _ => failures.credential(&step.transform, &step.credential),
        }
    }
    failures.check()?;

    merge(steps, &before, after, draft, &mut failures);
    let mut applied = Applied {
        minted: Vec::with_capacity(stamped.len()),
        secrets: fetched.secrets.keys().cloned().collect(),
        count: i64::from(outcome.applied),
    };
    for (step, credential) in stamped {
        if let Err(problem) = stamp::stamp(credential, &mut draft.headers, &mut draft.query) {
            tracing::debug!(
                credential = %step.credential,
                kind = %credential.kind,
                problem,
                "credential cannot be stamped"
            );
            failures.credential(&step.transform, &step.credential);
            continue;
        }
        applied.minted.push(step.credential.clone());
    }
    failures.check()?;
    Ok(applied)
}

/// Carries the engine's result over to `draft`. Header fields the steps
/// left alone keep their exact bytes; framing stays the proxy's business,
/// so `Content-Length` is never taken from a transform.
fn merge(
    steps: &[TransformStep],
    before: &RequestParts,
    after: RequestParts,
    draft: &mut Draft,
    failures: &mut Failures,
) {
    let length = draft.headers.get(CONTENT_LENGTH).cloned();
    if merge_headers(&mut draft.headers, &before.headers, &after.headers).is_err() {
        for step in steps.iter().filter(|s| s.credential().is_none()) {
            failures.step(step.name(), "invalid_header_value");
        }
    }
    draft.headers.remove(CONTENT_LENGTH);
    if let Some(length) = length {
        draft.headers.insert(CONTENT_LENGTH, length);
    }

    draft.path = after.path;
    draft.query = after.query;
    if after.body != before.body {
        if let Some(body) = after.body {
            let bytes = serde_json::to_vec(&body).expect("a JSON value serialises");
            draft.body = Some(Bytes::from(bytes));
            draft.body_changed = true;
        }
    }
}

/// Replaces the fields whose values the steps changed. The new values
/// may carry secrets: they are marked sensitive, so HTTP/2 never indexes
/// them (RFC 7541 §7.1.3).
fn merge_headers(
    headers: &mut HeaderMap,
    before: &[(String, String)],
    after: &[(String, String)],
) -> Result<(), http::Error> {
    let group = |pairs: &[(String, String)]| {
        let mut grouped: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (name, value) in pairs {
            let values = grouped.entry(name.to_ascii_lowercase()).or_default();
            values.push(value.clone());
        }
        grouped
    };
    let (old, new) = (group(before), group(after));
    let names: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    for name in names {
        if old.get(name) == new.get(name) {
            continue;
        }
        let header = HeaderName::from_bytes(name.as_bytes())?;
        headers.remove(&header);
        for value in new.get(name).into_iter().flatten() {
            let mut value = HeaderValue::from_bytes(value.as_bytes())?;
            value.set_sensitive(true);
            headers.append(header.clone(), value);
        }
    }
    Ok(())
}

/// The failed steps of one request, for the deny and its row.
#[derive(Debug, Default)]
struct Failures {
    /// Transform → reason.
    failed: BTreeMap<String, String>,
    /// Credential → reason.
    auth: BTreeMap<String, String>,
}

impl Failures {
    fn step(&mut self, transform: &str, reason: &str) {
        self.failed.insert(transform.to_owned(), reason.to_owned());
    }

    fn credential(&mut self, transform: &str, credential: &str) {
        self.step(transform, AUTH_UNAVAILABLE);
        self.auth
            .insert(credential.to_owned(), AUTH_UNAVAILABLE.to_owned());
    }

    fn check(&mut self) -> Result<(), Denial> {
        if self.failed.is_empty() {
            return Ok(());
        }
        Err(Denial::Transform {
            failed: std::mem::take(&mut self.failed),
            auth_failures: std::mem::take(&mut self.auth),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn only_the_fields_the_steps_changed_are_rewritten() {
        let mut headers = HeaderMap::new();
        let raw = HeaderValue::from_bytes(b"caf\xe9").expect("obs-text is a valid value");
        headers.insert("x-legacy", raw.clone());
        headers.insert("cookie", HeaderValue::from_static("a=b"));
        headers.insert("x-tenant-id", HeaderValue::from_static("forged"));
        let before = header_pairs(&headers);
        let mut after = before.clone();
        after.retain(|(n, _)| n != "cookie" && n != "x-tenant-id");
        after.extend(pairs(&[("X-Tenant-Id", "t-7"), ("x-new", "1")]));

        merge_headers(&mut headers, &before, &after).expect("valid values");
        assert_eq!(headers["x-legacy"], raw, "untouched bytes are kept exactly");
        assert!(headers.get("cookie").is_none());
        assert_eq!(headers["x-tenant-id"], "t-7");
        assert!(headers["x-tenant-id"].is_sensitive());
        assert_eq!(headers["x-new"], "1");
    }

    #[test]
    fn failures_name_the_transform_and_for_credentials_the_credential() {
        let mut failures = Failures::default();
        assert!(failures.check().is_ok());
        failures.step("tenant", "cel_error: no such key");
        failures.credential("gitlab-token", "gitlab-pat");
        let Err(Denial::Transform {
            failed,
            auth_failures,
        }) = failures.check()
        else {
            panic!("failures deny");
        };
        assert_eq!(failed["tenant"], "cel_error: no such key");
        assert_eq!(failed["gitlab-token"], AUTH_UNAVAILABLE);
        assert_eq!(auth_failures["gitlab-pat"], AUTH_UNAVAILABLE);
    }
}
