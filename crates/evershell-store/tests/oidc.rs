//! OpenID Connect sign-in state on both engines: flows are used once and
//! not after they expire; a user keeps one subject per issuer.

#[macro_use]
mod support;

use chrono::{Duration, Utc};
use evershell_store::{OidcFlow, OidcLink};
use support::TestDb;

on_both_engines!(
    oidc_flows_are_taken_once_and_never_after_expiry,
    oidc_subjects_stay_bound_to_their_first_user,
);

fn flow(nonce: &str) -> OidcFlow {
    OidcFlow {
        org_slug: Some("acme".to_string()),
        return_to: "/workspaces?all=1".to_string(),
        nonce: nonce.to_string(),
        verifier: format!("verifier-{nonce}"),
    }
}

async fn oidc_flows_are_taken_once_and_never_after_expiry(db: TestDb) {
    let store = &db.store;
    let now = Utc::now();
    let later = now + Duration::minutes(10);
    store
        .insert_oidc_flow("hash-a", &flow("a"), now, later)
        .await
        .unwrap();
    let no_org = OidcFlow {
        org_slug: None,
        ..flow("b")
    };
    store
        .insert_oidc_flow("hash-b", &no_org, now, later)
        .await
        .unwrap();

    assert_eq!(
        store.take_oidc_flow("hash-a", now).await.unwrap(),
        Some(flow("a"))
    );
    assert_eq!(store.take_oidc_flow("hash-a", now).await.unwrap(), None);
    assert_eq!(store.take_oidc_flow("unknown", now).await.unwrap(), None);

    // Taken after its expiry: refused, and gone all the same.
    let expired = later + Duration::seconds(1);
    assert_eq!(store.take_oidc_flow("hash-b", expired).await.unwrap(), None);
    assert_eq!(store.take_oidc_flow("hash-b", now).await.unwrap(), None);

    // Starting a flow sweeps the expired ones.
    store
        .insert_oidc_flow("hash-c", &flow("c"), now - Duration::minutes(20), now)
        .await
        .unwrap();
    store
        .insert_oidc_flow("hash-d", &flow("d"), later, later + Duration::minutes(10))
        .await
        .unwrap();
    let (left,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM oidc_flows")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(left, 1, "only the live flow remains");
}

async fn oidc_subjects_stay_bound_to_their_first_user(db: TestDb) {
    let store = &db.store;
    let acme = store.ensure_org("acme", "Acme").await.unwrap();
    let ann = store
        .ensure_member(&acme, "ann@acme.test", "member")
        .await
        .unwrap();
    let bob = store
        .ensure_member(&acme, "bob@acme.test", "member")
        .await
        .unwrap();
    let idp = "https://idp.acme.test";
    // A password someone set before the first provider sign-in stops
    // working at it: the provider vouches for the account from then on.
    store
        .set_password_hash(&ann, "$argon2id$placeholder")
        .await
        .unwrap();

    let link = |subject: &'static str, user: String| async move {
        store.link_oidc_subject(idp, subject, &user).await.unwrap()
    };
    assert_eq!(link("sub-ann", ann.clone()).await, OidcLink::Recorded);
    let login = store.user_login("ann@acme.test").await.unwrap().unwrap();
    assert_eq!(login.password_hash, None);
    assert_eq!(link("sub-ann", ann.clone()).await, OidcLink::Known);
    assert_eq!(link("sub-other", ann.clone()).await, OidcLink::OtherSubject);
    assert_eq!(link("sub-ann", bob.clone()).await, OidcLink::OtherUser);

    // Another issuer is another namespace of subjects.
    let other = store
        .link_oidc_subject("https://other.acme.test", "sub-ann", &bob)
        .await
        .unwrap();
    assert_eq!(other, OidcLink::Recorded);
}
