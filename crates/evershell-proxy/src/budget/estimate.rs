//! Estimates: what a request will cost before it is sent, read from its
//! JSON body. The output-token estimate is the request's own cap, which the
//! provider honours, so a reservation of it is an upper bound; `clamp`
//! lowers that cap in the body.
//!
//! The caps, per provider API reference: `max_tokens` (Anthropic Messages,
//! OpenAI Chat Completions before `max_completion_tokens`),
//! `max_completion_tokens` (OpenAI Chat Completions), `max_output_tokens`
//! (OpenAI Responses), `generationConfig.maxOutputTokens` (Gemini).

use bytes::Bytes;
use serde_json::Value;

use super::json::JsonScan;

/// Where output-token caps live.
const CAP_PATHS: &[&[&str]] = &[
    &["max_tokens"],
    &["max_completion_tokens"],
    &["max_output_tokens"],
    &["generationConfig", "maxOutputTokens"],
];

/// Request bytes per input token assumed when reserving input tokens; the
/// provider's count replaces the estimate when the response reports it.
const BYTES_PER_INPUT_TOKEN: u64 = 4;

/// The largest output-token cap `body` sets, `None` when it sets none.
/// Every occurrence counts, so that a repeated key cannot hide a larger
/// value from the estimate whichever one the upstream keeps.
pub(crate) fn output_cap(body: &[u8]) -> Option<u64> {
    let mut scan = JsonScan::new(CAP_PATHS);
    scan.feed(body);
    scan.finish();
    scan.found().iter().map(|&(_, value)| value).max()
}

/// The output-token cap an output-token budget reserves for `body`: the
/// largest cap the body sets, whether spelled plainly (every repeated key
/// counts) or with escapes only a JSON parser sees (`"max\u005ftokens"`).
/// A request without a cap, or whose cap is not a non-negative integer, is
/// refused: its cost could not be bounded before it is sent.
pub(crate) fn checked_output_cap(body: Option<&[u8]>) -> Result<u64, &'static str> {
    let body = body.ok_or("output_cap_required")?;
    let json: Value = serde_json::from_slice(body).map_err(|_| "output_cap_required")?;
    let mut parsed: Option<u64> = None;
    for path in CAP_PATHS {
        let value = path.iter().try_fold(&json, |v, key| v.get(*key));
        if let Some(value) = value {
            let cap = value.as_u64().ok_or("invalid_output_cap")?;
            parsed = Some(parsed.map_or(cap, |p| p.max(cap)));
        }
    }
    let scanned = output_cap(body);
    match (parsed, scanned) {
        (None, None) => Err("output_cap_required"),
        (a, b) => Ok(a.unwrap_or(0).max(b.unwrap_or(0))),
    }
}

/// The input-token estimate of a request body of `len` bytes.
pub(crate) fn input_estimate(len: u64) -> u64 {
    len.div_ceil(BYTES_PER_INPUT_TOKEN)
}

/// `body` with every output-token cap above `to` lowered to `to`, or
/// `None` when the body is not a JSON object. The body is re-serialised,
/// which also drops repeated keys, so the cap the upstream reads is the
/// one the ledger holds.
pub(crate) fn clamp_output_cap(body: &[u8], to: u64) -> Option<Bytes> {
    let mut json: Value = serde_json::from_slice(body).ok()?;
    let object = json.as_object_mut()?;
    for path in CAP_PATHS {
        let mut parent = Some(&mut *object);
        for key in &path[..path.len() - 1] {
            parent = parent
                .and_then(|p| p.get_mut(*key))
                .and_then(Value::as_object_mut);
        }
        let field = parent.and_then(|p| p.get_mut(path[path.len() - 1]));
        if let Some(value) = field {
            if value.as_u64().is_some_and(|cap| cap > to) {
                *value = Value::from(to);
            }
        }
    }
    serde_json::to_vec(&json).ok().map(Bytes::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_output_budget_needs_a_cap_it_can_read_however_it_is_spelled() {
        assert_eq!(
            checked_output_cap(Some(br#"{"max_tokens":4000}"#)),
            Ok(4000)
        );
        assert_eq!(
            checked_output_cap(Some(br#"{"max\u005ftokens":4000}"#)),
            Ok(4000)
        );
        assert_eq!(
            checked_output_cap(Some(br#"{"max_tokens":10,"max_tokens":4000}"#)),
            Ok(4000)
        );
        assert_eq!(
            checked_output_cap(Some(br#"{"max_tokens":4000.0}"#)),
            Err("invalid_output_cap")
        );
        assert_eq!(
            checked_output_cap(Some(br#"{"max_tokens":"4000"}"#)),
            Err("invalid_output_cap")
        );
        assert_eq!(
            checked_output_cap(Some(br#"{"model":"m"}"#)),
            Err("output_cap_required")
        );
        assert_eq!(checked_output_cap(None), Err("output_cap_required"));
    }

    #[test]
    fn the_largest_cap_of_any_provider_is_the_estimate() {
        assert_eq!(
            output_cap(br#"{"model":"m","max_tokens":1024}"#),
            Some(1024)
        );
        assert_eq!(
            output_cap(br#"{"max_output_tokens":5,"max_output_tokens":50}"#),
            Some(50)
        );
        let gemini = br#"{"contents":[],"generationConfig":{"maxOutputTokens":300}}"#;
        assert_eq!(output_cap(gemini), Some(300));
        assert_eq!(output_cap(br#"{"metadata":{"max_tokens":9}}"#), None);
        assert_eq!(output_cap(b"not json"), None);
    }

    #[test]
    fn clamping_lowers_caps_above_the_allowance_only() {
        let body = br#"{"max_tokens":4096,"max_tokens":8,"messages":[{"max_tokens":1}],
                        "generationConfig":{"maxOutputTokens":10}}"#;
        let clamped = clamp_output_cap(body, 100).expect("an object");
        let json: Value = serde_json::from_slice(&clamped).expect("json");
        // serde keeps the last of repeated keys: 8 is under the allowance.
        assert_eq!(json["max_tokens"], 8);
        assert_eq!(json["generationConfig"]["maxOutputTokens"], 10);
        assert_eq!(json["messages"][0]["max_tokens"], 1);

        let clamped = clamp_output_cap(br#"{"max_completion_tokens":500}"#, 120).expect("object");
        assert_eq!(&clamped[..], br#"{"max_completion_tokens":120}"#);
        assert!(clamp_output_cap(b"[1]", 1).is_none());
    }

    #[test]
    fn input_estimates_round_up() {
        assert_eq!(input_estimate(0), 0);
        assert_eq!(input_estimate(9), 3);
    }
}
