//! The platform capability `_provider`: what a workspace may call on its
//! LLM provider, and the credential stamped on those calls.

use crate::error::PatternError;
use crate::host::HostPattern;
use crate::model::{AllowRule, Capability, CapabilityType, Method, Transform, TransformAction};
use crate::path::PathPattern;

/// Name of the platform capability built by [`provider_capability`]. Role
/// capabilities can never replace it.
pub const PROVIDER_CAPABILITY: &str = "_provider";

/// Why [`try_provider_capability`] could not build the capability.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    #[error("provider kind {kind:?}: unknown (expected anthropic, openai, gemini, vertex or azure-openai)")]
    UnknownKind { kind: String },
    #[error("provider domain {domain:?}: invalid")]
    Domain {
        domain: String,
        #[source]
        source: PatternError,
    },
    #[error("provider base_path {base_path:?}: invalid")]
    BasePath {
        base_path: String,
        #[source]
        source: PatternError,
    },
}

/// One endpoint family of a provider kind: a rule name, its method and the
/// path patterns below the base path.
struct Endpoint {
    rule: &'static str,
    method: Method,
    paths: &'static [&'static str],
}

/// The platform capability for a provider of `kind` at `domain`.
///
/// Admits (TLS only) the kind's API paths below `base_path` (default per
/// kind: `/v1` for anthropic, openai and vertex, `/v1beta` for gemini,
/// `/openai` for azure-openai) and carries one `auth` transform for
/// `credential_name` on every rule. Per kind, from the providers' public
/// API references:
///
/// - anthropic: `POST {bp}/messages`, `POST {bp}/messages/count_tokens`,
///   `GET {bp}/models/**`
/// - openai: `POST {bp}/chat/completions`, `POST {bp}/responses`,
///   `GET {bp}/models/**`
/// - gemini: `POST {bp}/models/*` (`model:generateContent`, one segment),
///   `GET {bp}/models/**`
/// - vertex: `POST {bp}/projects/*/locations/*/publishers/*/models/*`,
///   `GET` of the same prefix `/**`
/// - azure-openai: `POST {bp}/deployments/*/chat/completions`,
///   `POST {bp}/responses`, `POST {bp}/v1/chat/completions`,
///   `POST {bp}/v1/responses`, `GET {bp}/models/**`, `GET {bp}/v1/models/**`
///
/// An unknown kind or an invalid domain or base path yields a capability
/// with no allow rules, which admits nothing; use
/// [`try_provider_capability`] to see the reason.
pub fn provider_capability(
    kind: &str,
    domain: &str,
    base_path: Option<&str>,
    credential_name: &str,
) -> Capability {
    try_provider_capability(kind, domain, base_path, credential_name).unwrap_or_else(|_| {
        Capability {
            name: PROVIDER_CAPABILITY.to_owned(),
            kind: CapabilityType::Http,
            ..Capability::default()
        }
    })
}

/// [`provider_capability`], reporting why the inputs are unusable.
///
/// # Errors
/// An unknown `kind`, a `domain` that is not a valid host pattern, or a
/// `base_path` that is not a valid path.
pub fn try_provider_capability(
    kind: &str,
    domain: &str,
    base_path: Option<&str>,
    credential_name: &str,
) -> Result<Capability, ProviderError> {
    let (default_base, endpoints) = endpoints(kind)?;
    let host = HostPattern::parse(domain).map_err(|source| ProviderError::Domain {
        domain: domain.to_owned(),
        source,
    })?;
    let base = base_path.unwrap_or(default_base).trim_end_matches('/');

    let mut allow = Vec::with_capacity(endpoints.len());
    for ep in endpoints {
        let paths = ep
            .paths
            .iter()
            .map(|suffix| PathPattern::parse(&format!("{base}{suffix}")))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|source| ProviderError::BasePath {
                base_path: base_path.unwrap_or(default_base).to_owned(),
                source,
            })?;
        allow.push(AllowRule {
            name: Some(ep.rule.to_owned()),
            domains: vec![host.clone()],
            methods: vec![ep.method],
            paths,
            ..AllowRule::default()
        });
    }

    let auth = Transform {
        name: "provider-auth".to_owned(),
        applies_to: None,
        action: TransformAction::Auth {
            credential: credential_name.to_owned(),
        },
    };
    Ok(Capability {
        name: PROVIDER_CAPABILITY.to_owned(),
        kind: CapabilityType::Http,
        allow,
        transforms: vec![auth],
        ..Capability::default()
    })
}

/// Default base path and endpoint families of a provider kind.
fn endpoints(kind: &str) -> Result<(&'static str, &'static [Endpoint]), ProviderError> {
    const fn ep(rule: &'static str, method: Method, paths: &'static [&'static str]) -> Endpoint {
        Endpoint {
            rule,
            method,
            paths,
        }
    }
    const ANTHROPIC: &[Endpoint] = &[
        ep(
            "messages",
            Method::Post,
            &["/messages", "/messages/count_tokens"],
        ),
        ep("models", Method::Get, &["/models/**"]),
    ];
    const OPENAI: &[Endpoint] = &[
        ep(
            "generate",
            Method::Post,
            &["/chat/completions", "/responses"],
        ),
        ep("models", Method::Get, &["/models/**"]),
    ];
    const GEMINI: &[Endpoint] = &[
        ep("generate", Method::Post, &["/models/*"]),
        ep("models", Method::Get, &["/models/**"]),
    ];
    const VERTEX: &[Endpoint] = &[
        ep(
            "generate",
            Method::Post,
            &["/projects/*/locations/*/publishers/*/models/*"],
        ),
        ep(
            "models",
            Method::Get,
            &["/projects/*/locations/*/publishers/*/models/**"],
        ),
    ];
    const AZURE: &[Endpoint] = &[
        ep(
            "generate",
            Method::Post,
            &[
                "/deployments/*/chat/completions",
                "/responses",
                "/v1/chat/completions",
                "/v1/responses",
            ],
        ),
        ep("models", Method::Get, &["/models/**", "/v1/models/**"]),
    ];
    match kind {
        "anthropic" => Ok(("/v1", ANTHROPIC)),
        "openai" => Ok(("/v1", OPENAI)),
        "gemini" => Ok(("/v1beta", GEMINI)),
        "vertex" => Ok(("/v1", VERTEX)),
        "azure-openai" => Ok(("/openai", AZURE)),
        other => Err(ProviderError::UnknownKind {
            kind: other.to_owned(),
        }),
    }
}
