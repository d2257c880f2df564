//! Users, memberships, API key listing and revocation, and replaceable
//! settings, on both engines.

#[macro_use]
mod support;

use evershell_store::NewApiKey;
use support::TestDb;

on_both_engines!(
    memberships_resolve_with_org_slug_and_email_and_disappear_when_removed,
    revoked_keys_leave_the_list_and_stop_authenticating,
    set_setting_replaces_the_stored_value,
);

async fn memberships_resolve_with_org_slug_and_email_and_disappear_when_removed(db: TestDb) {
    let store = &db.store;
    let acme = store.ensure_org("acme", "Acme").await.unwrap();
    let beta = store.ensure_org("beta", "Beta").await.unwrap();
    let user = store
        .ensure_member(&acme, "a@acme.test", "member")
        .await
        .unwrap();
    assert_eq!(
        store
            .ensure_member(&beta, "a@acme.test", "owner")
            .await
            .unwrap(),
        user
    );

    let login = store
        .user_login("a@acme.test")
        .await
        .unwrap()
        .expect("user");
    assert_eq!(
        (login.user_id.as_str(), login.password_hash),
        (user.as_str(), None)
    );
    store.set_password_hash(&user, "$argon2id$x").await.unwrap();
    let login = store
        .user_login("a@acme.test")
        .await
        .unwrap()
        .expect("user");
    assert_eq!(login.password_hash.as_deref(), Some("$argon2id$x"));
    assert!(store.user_login("b@acme.test").await.unwrap().is_none());

    let m = store
        .membership(&beta, &user)
        .await
        .unwrap()
        .expect("member");
    assert_eq!(
        (m.org_slug.as_str(), m.email.as_str(), m.role.as_str()),
        ("beta", "a@acme.test", "owner")
    );
    let all = store.memberships_of(&user).await.unwrap();
    let slugs: Vec<&str> = all.iter().map(|m| m.org_slug.as_str()).collect();
    assert_eq!(slugs.len(), 2, "{all:?}");
    assert!(
        slugs.contains(&"acme") && slugs.contains(&"beta"),
        "{all:?}"
    );

    assert!(store.remove_membership(&acme, &user).await.unwrap());
    assert!(!store.remove_membership(&acme, &user).await.unwrap());
    assert!(store.membership(&acme, &user).await.unwrap().is_none());
}

async fn revoked_keys_leave_the_list_and_stop_authenticating(db: TestDb) {
    let store = &db.store;
    let acme = store.ensure_org("acme", "Acme").await.unwrap();
    let other = store.ensure_org("other", "Other").await.unwrap();
    let id = store
        .insert_api_key(NewApiKey {
            org_id: &acme,
            label: "ci",
            prefix: "sk_live_...abcd",
            secret_hash: "hash-1",
            permission_set: "read_only",
            created_by: "usr_1",
            expires_at: None,
        })
        .await
        .unwrap();
    let listed = store.list_api_keys(&acme).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].id.as_str(), listed[0].label.as_str()),
        (id.as_str(), "ci")
    );
    assert!(store.list_api_keys(&other).await.unwrap().is_empty());

    // Another org cannot revoke it.
    assert!(!store.revoke_api_key(&other, &id).await.unwrap());
    assert!(store
        .authenticate_api_key("hash-1")
        .await
        .unwrap()
        .is_some());
    assert!(store.revoke_api_key(&acme, &id).await.unwrap());
    assert!(!store.revoke_api_key(&acme, &id).await.unwrap());
    assert!(store
        .authenticate_api_key("hash-1")
        .await
        .unwrap()
        .is_none());
    assert!(store.list_api_keys(&acme).await.unwrap().is_empty());
}

async fn set_setting_replaces_the_stored_value(db: TestDb) {
    let store = &db.store;
    store.set_setting("k", "one").await.unwrap();
    store.set_setting("k", "two").await.unwrap();
    assert_eq!(store.setting("k").await.unwrap().as_deref(), Some("two"));
    assert_eq!(store.setting_or_insert("k", "three").await.unwrap(), "two");
}
