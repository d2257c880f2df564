//! Installation-level administration, run on the server host against its
//! data directory (no API key involved): what an operator does before any
//! person can sign in, such as storing the provider's API key.

use std::path::Path;
use std::sync::Arc;

use evershell_core::model::Credential;
use evershell_store::secrets::MasterKey;
use evershell_store::Store;

pub use crate::api::handlers::credentials::CreateCredential;

/// The data directory's store and master key, opened without starting the
/// server. SQLite's WAL mode lets this run beside a live server.
pub struct Admin {
    pub store: Store,
    pub master: Arc<MasterKey>,
}

impl Admin {
    pub async fn open(data_dir: &Path) -> anyhow::Result<Admin> {
        Admin::open_at(data_dir, None).await
    }

    /// Like [`Admin::open`], with the database at `database_url` when the
    /// installation runs on PostgreSQL (`evershell up --database-url`).
    pub async fn open_at(data_dir: &Path, database_url: Option<&str>) -> anyhow::Result<Admin> {
        let store = match database_url {
            Some(url) => Store::open(url).await?,
            None => {
                let db = data_dir.join("evershell.db");
                anyhow::ensure!(
                    db.exists(),
                    "{} holds no Evershell database (run `evershell up` first)",
                    data_dir.display()
                );
                Store::open_sqlite(&db).await?
            }
        };
        let key = data_dir.join("master.key");
        anyhow::ensure!(
            key.exists(),
            "{} is missing: the installation's secrets cannot be read",
            key.display()
        );
        let master = Arc::new(MasterKey::load_or_create(&key)?);
        Ok(Admin { store, master })
    }

    /// Creates a credential in org `org_slug`, attributed to `system`.
    pub async fn create_credential(
        &self,
        org_slug: &str,
        body: CreateCredential,
    ) -> anyhow::Result<Credential> {
        create_credential(&self.store, &self.master, org_slug, body).await
    }
}

/// Creates a credential in org `org_slug` as the installation admin.
pub async fn create_credential(
    store: &Store,
    master: &MasterKey,
    org_slug: &str,
    body: CreateCredential,
) -> anyhow::Result<Credential> {
    let org_id = store
        .org_id_by_slug(org_slug)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no org {org_slug:?}"))?;
    let created = crate::api::handlers::credentials::create_credential(
        store,
        master,
        &org_id,
        "system",
        "installation admin",
        body,
    )
    .await;
    match created {
        Ok((credential, _)) => Ok(credential),
        Err(e) => Err(anyhow::anyhow!(
            "{}: {}{}",
            e.slug.unwrap_or(e.code.as_str()),
            e.message,
            e.details
                .and_then(|d| serde_json::to_string(&d).ok())
                .map(|d| format!(" {d}"))
                .unwrap_or_default()
        )),
    }
}

/// Stores secret `name` in org `org_slug` as the installation admin;
/// `replace` allows overwriting an existing value.
pub async fn set_secret(
    store: &Store,
    master: &MasterKey,
    org_slug: &str,
    name: &str,
    value: &str,
    replace: bool,
) -> anyhow::Result<()> {
    let org_id = store
        .org_id_by_slug(org_slug)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no org {org_slug:?}"))?;
    crate::api::handlers::secrets::put_secret(
        store, master, &org_id, "system", name, value, replace,
    )
    .await
    .map(drop)
    .map_err(|e| anyhow::anyhow!("{}: {}", e.slug.unwrap_or(e.code.as_str()), e.message))
}

/// Member roles `evershell admin create-user` accepts.
pub const MEMBER_ROLES: [&str; 3] = ["owner", "operator", "member"];

/// Creates user `email` with `password` (or sets the password of an
/// existing user) and makes it a member of org `org_slug` with `role`;
/// returns the user id. An existing membership keeps its role.
pub async fn create_user(
    store: &Store,
    org_slug: &str,
    email: &str,
    role: &str,
    password: &str,
) -> anyhow::Result<String> {
    anyhow::ensure!(
        MEMBER_ROLES.contains(&role),
        "role {role:?} is not one of owner, operator, member"
    );
    let email = email.trim().to_ascii_lowercase();
    anyhow::ensure!(
        email.contains('@') && !email.starts_with('@') && !email.ends_with('@'),
        "{email:?} is not an email address"
    );
    anyhow::ensure!(!password.is_empty(), "the password is empty");
    let org_id = store
        .org_id_by_slug(org_slug)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no org {org_slug:?}"))?;
    let password = password.to_string();
    let hash =
        tokio::task::spawn_blocking(move || crate::identity::password::hash(&password)).await??;
    let user_id = store.ensure_member(&org_id, &email, role).await?;
    store.set_password_hash(&user_id, &hash).await?;
    Ok(user_id)
}

/// Adds a session signing key and makes it current; returns its id. Tokens
/// signed by older keys keep verifying until they expire, and running
/// servers pick the new key up on the first token that names it.
pub async fn rotate_session_key(store: &Store, master: Arc<MasterKey>) -> anyhow::Result<String> {
    Ok(crate::identity::SessionKeys::new(master)
        .rotate(store)
        .await?)
}

/// A new org and its first owner.
#[derive(Debug, Clone)]
pub struct NewOrg {
    pub org_id: String,
    pub owner_user_id: String,
    /// A generated password when the owner had no account, returned only
    /// here. It stays the account's password until the installation admin
    /// sets another (`evershell admin create-user`); there is no password
    /// change through the API yet.
    pub owner_password: Option<zeroize::Zeroizing<String>>,
}

/// Creates org `slug` with `owner_email` as its owner. An owner who has no
/// account yet gets one with a generated password, returned once.
pub async fn create_org(store: &Store, slug: &str, owner_email: &str) -> anyhow::Result<NewOrg> {
    let slug_ok = (2..=39).contains(&slug.len())
        && slug.starts_with(|c: char| c.is_ascii_lowercase())
        && slug
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    anyhow::ensure!(
        slug_ok,
        "org slug {slug:?} must match ^[a-z][a-z0-9-]{{1,38}}$"
    );
    let email = owner_email.trim().to_ascii_lowercase();
    anyhow::ensure!(
        email.contains('@') && !email.starts_with('@') && !email.ends_with('@'),
        "{email:?} is not an email address"
    );
    let org_id = match store.create_org(slug, slug).await {
        Err(e) if e.is_unique_violation() => anyhow::bail!("org {slug:?} already exists"),
        other => other?,
    };
    let has_account = store.user_login(&email).await?.is_some();
    let owner_user_id = store.ensure_member(&org_id, &email, "owner").await?;
    let owner_password = if has_account {
        None
    } else {
        let password = zeroize::Zeroizing::new(crate::api::auth::random_base62());
        let secret = password.clone();
        let hash =
            tokio::task::spawn_blocking(move || crate::identity::password::hash(&secret)).await??;
        store.set_password_hash(&owner_user_id, &hash).await?;
        Some(password)
    };
    Ok(NewOrg {
        org_id,
        owner_user_id,
        owner_password,
    })
}

/// Billing postures an installation admin may set.
pub const POSTURES: [&str; 2] = ["active", "suspended"];

/// Sets the billing posture of org `slug`. A `suspended` org keeps reading
/// and winding down, but every create-class route answers
/// `423 billing_inactive`, from the next request on.
pub async fn set_posture(store: &Store, slug: &str, posture: &str) -> anyhow::Result<()> {
    anyhow::ensure!(
        POSTURES.contains(&posture),
        "posture {posture:?} is not one of active, suspended"
    );
    anyhow::ensure!(
        store.set_org_posture(slug, posture).await?,
        "no org {slug:?}"
    );
    Ok(())
}
