//! First start of an installation: the platform CA, org `default`, its
//! owner and an owner API key, so a fresh machine can submit work at once.

use evershell_core::{AuditEvent, EventType};
use evershell_proxy::ca::CertificateAuthority;
use evershell_store::secrets::MasterKey;
use evershell_store::{NewApiKey, Store};

use crate::api::auth::{hash_key, key_prefix, new_key_secret};
use crate::Ctx;

/// The org every installation starts with.
pub const DEFAULT_ORG: &str = "default";
const OWNER_EMAIL: &str = "owner@localhost";
const CA_CERT_SETTING: &str = "platform_ca_cert";
const CA_KEY_REF: &str = "platform:ca_key";

/// What the first start created. The key's value exists only here: it is
/// stored as a hash.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub org_slug: String,
    /// Set on the first start only.
    pub api_key: Option<String>,
}

/// The installation's platform CA, created on first start. Its key is kept
/// encrypted in the secret store; its certificate in the settings.
pub async fn platform_ca(
    store: &Store,
    master: &MasterKey,
) -> anyhow::Result<CertificateAuthority> {
    if let Some(cert) = store.setting(CA_CERT_SETTING).await? {
        let key = store.get_secret(master, CA_KEY_REF).await?.ok_or_else(|| {
            anyhow::anyhow!("platform CA certificate present but its key is missing")
        })?;
        let key = std::str::from_utf8(&key)?;
        return Ok(CertificateAuthority::from_pem(&cert, key)?);
    }
    let ca = CertificateAuthority::generate("Evershell platform CA")?;
    store
        .put_secret(master, CA_KEY_REF, ca.key_pem().as_bytes())
        .await?;
    let stored = store
        .setting_or_insert(CA_CERT_SETTING, ca.cert_pem())
        .await?;
    anyhow::ensure!(
        stored == ca.cert_pem(),
        "another process created the platform CA concurrently"
    );
    Ok(ca)
}

/// Creates org `default`, its owner and a `full_access` key on the first
/// start; later starts return the org only.
pub async fn first_start(ctx: &Ctx) -> anyhow::Result<Bootstrap> {
    let org_id = ctx.store.ensure_org(DEFAULT_ORG, "Default").await?;
    let owner = ctx
        .store
        .ensure_member(&org_id, OWNER_EMAIL, "owner")
        .await?;
    if ctx.store.setting("bootstrap_key_id").await?.is_some() {
        return Ok(Bootstrap {
            org_slug: DEFAULT_ORG.to_string(),
            api_key: None,
        });
    }
    let secret = new_key_secret();
    let key_id = ctx
        .store
        .insert_api_key(NewApiKey {
            org_id: &org_id,
            label: "bootstrap",
            prefix: &key_prefix(&secret),
            secret_hash: &hash_key(&ctx.pepper, &secret),
            permission_set: "full_access",
            created_by: &owner,
            expires_at: None,
        })
        .await?;
    ctx.store
        .setting_or_insert("bootstrap_key_id", &key_id)
        .await?;
    let mut row = AuditEvent::new(EventType::ApiKeyCreated, &org_id, &owner);
    row.subject_type = Some("api_key".into());
    row.subject_id = Some(key_id);
    row.summary = Some(format!(
        "{OWNER_EMAIL} created api key \"bootstrap\" (full_access) on first start"
    ));
    ctx.audit.record_row(row).await?;
    Ok(Bootstrap {
        org_slug: DEFAULT_ORG.to_string(),
        api_key: Some(secret),
    })
}
