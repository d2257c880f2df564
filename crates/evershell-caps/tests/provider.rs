//! The platform `_provider` capability per provider kind.

use evershell_caps::{
    provider_capability, try_provider_capability, AuthStep, Policy, ProviderError, RequestFacts,
    Scheme, PROVIDER_CAPABILITY,
};

fn allowed(policy: &Policy, method: &str, host: &str, target: &str) -> bool {
    let facts = RequestFacts::new(method, Scheme::Https, host, 443, target);
    policy.decide(&facts).allowed
}

#[test]
fn admits_anthropic_api_paths_with_its_credential() {
    let cap = provider_capability("anthropic", "api.anthropic.com", None, "anthropic-key");
    assert_eq!(cap.name, PROVIDER_CAPABILITY);
    let p = Policy::compile(vec![cap], Vec::new());

    let host = "api.anthropic.com";
    assert!(allowed(&p, "POST", host, "/v1/messages"));
    assert!(allowed(&p, "POST", host, "/v1/messages/count_tokens"));
    assert!(allowed(&p, "GET", host, "/v1/models"));
    assert!(allowed(&p, "GET", host, "/v1/models/claude-sonnet-4-5"));
    assert!(!allowed(&p, "GET", host, "/v1/messages"));
    assert!(!allowed(&p, "POST", host, "/v1/messages/batches"));
    assert!(!allowed(&p, "POST", host, "/v1/files"));
    assert!(!allowed(&p, "POST", "anthropic.com", "/v1/messages"));

    let facts = RequestFacts::new("POST", Scheme::Https, host, 443, "/v1/messages");
    let d = p.decide(&facts);
    assert_eq!(d.capability.as_deref(), Some("_provider"));
    assert_eq!(
        d.auth,
        [AuthStep {
            transform: "provider-auth".into(),
            credential: "anthropic-key".into()
        }]
    );
}

#[test]
fn admits_openai_api_paths_under_the_default_and_a_custom_base_path() {
    let p = Policy::compile(
        vec![provider_capability("openai", "api.openai.com", None, "oai")],
        vec![],
    );
    let host = "api.openai.com";
    assert!(allowed(&p, "POST", host, "/v1/chat/completions"));
    assert!(allowed(&p, "POST", host, "/v1/responses"));
    assert!(allowed(&p, "GET", host, "/v1/models"));
    assert!(!allowed(&p, "POST", host, "/v1/images/generations"));
    assert!(!allowed(&p, "POST", host, "/chat/completions"));

    let cap = provider_capability("openai", "vllm.internal:8000", Some("/openai/v1/"), "vllm");
    let p = Policy::compile(vec![cap], vec![]);
    let facts = |target| RequestFacts::new("POST", Scheme::Https, "vllm.internal", 8000, target);
    assert!(p.decide(&facts("/openai/v1/chat/completions")).allowed);
    assert!(!p.decide(&facts("/v1/chat/completions")).allowed);
}

#[test]
fn admits_other_kinds_per_their_public_apis() {
    let gemini = Policy::compile(
        vec![provider_capability(
            "gemini",
            "generativelanguage.googleapis.com",
            None,
            "g",
        )],
        vec![],
    );
    let host = "generativelanguage.googleapis.com";
    assert!(allowed(
        &gemini,
        "POST",
        host,
        "/v1beta/models/gemini-2.0-flash:generateContent"
    ));
    assert!(!allowed(&gemini, "POST", host, "/v1beta/tunedModels/x"));

    let vertex = Policy::compile(
        vec![provider_capability(
            "vertex",
            "us-central1-aiplatform.googleapis.com",
            None,
            "v",
        )],
        vec![],
    );
    let target = "/v1/projects/p/locations/us-central1/publishers/google/models/gemini-2.0-flash:streamGenerateContent";
    assert!(allowed(
        &vertex,
        "POST",
        "us-central1-aiplatform.googleapis.com",
        target
    ));

    let azure = Policy::compile(
        vec![provider_capability(
            "azure-openai",
            "x.openai.azure.com",
            None,
            "az",
        )],
        vec![],
    );
    assert!(allowed(
        &azure,
        "POST",
        "x.openai.azure.com",
        "/openai/deployments/gpt/chat/completions?api-version=2024-10-21"
    ));
    assert!(allowed(
        &azure,
        "POST",
        "x.openai.azure.com",
        "/openai/v1/responses"
    ));
}

#[test]
fn reports_unusable_provider_inputs_and_admits_nothing_for_them() {
    assert!(matches!(
        try_provider_capability("cohere", "api.cohere.ai", None, "c"),
        Err(ProviderError::UnknownKind { .. })
    ));
    assert!(matches!(
        try_provider_capability("openai", "*", None, "c"),
        Err(ProviderError::Domain { .. })
    ));
    assert!(matches!(
        try_provider_capability("openai", "api.openai.com", Some("v1"), "c"),
        Err(ProviderError::BasePath { .. })
    ));
    let cap = provider_capability("cohere", "api.cohere.ai", None, "c");
    assert!(cap.allow.is_empty());
    let p = Policy::compile(vec![cap], vec![]);
    assert!(!p.admits_name("api.cohere.ai"));
}
