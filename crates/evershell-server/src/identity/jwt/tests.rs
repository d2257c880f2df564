use super::*;

async fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open_sqlite(&dir.path().join("db"))
        .await
        .expect("store opens");
    (dir, store)
}

fn key_ring(dir: &tempfile::TempDir) -> SessionKeys {
    let master = MasterKey::load_or_create(&dir.path().join("master.key")).expect("master key");
    SessionKeys::new(Arc::new(master))
}

#[tokio::test]
async fn signed_tokens_verify_until_they_expire() {
    let (dir, store) = store().await;
    let keys = key_ring(&dir);
    let (token, claims) = keys.sign(&store, "usr_1", "org_1", 1000).await.unwrap();
    assert!(token.starts_with("eyJ"), "{token}");
    assert_eq!(claims.exp, 1000 + SESSION_LIFETIME_SECONDS);
    let got = keys.verify(&store, &token, 1001).await.unwrap();
    assert_eq!(got, claims);
    let expired = keys.verify(&store, &token, claims.exp).await;
    assert!(matches!(expired, Err(TokenError::Expired)), "{expired:?}");
}

#[tokio::test]
async fn tampered_claims_and_foreign_algorithms_are_refused() {
    let (dir, store) = store().await;
    let keys = key_ring(&dir);
    let (token, _) = keys.sign(&store, "usr_1", "org_1", 1000).await.unwrap();
    let parts: Vec<&str> = token.split('.').collect();
    let forged = Claims {
        sub: "usr_2".into(),
        org: "org_1".into(),
        iat: 1000,
        exp: 99_999,
        kid: "x".into(),
    };
    let tampered = format!("{}.{}.{}", parts[0], encode_json(&forged), parts[2]);
    assert!(keys.verify(&store, &tampered, 1001).await.is_err());
    let none = Header {
        alg: "none".into(),
        typ: "JWT".into(),
        kid: "x".into(),
    };
    let unsigned = format!("{}.{}.", encode_json(&none), parts[1]);
    assert!(keys.verify(&store, &unsigned, 1001).await.is_err());
}

#[tokio::test]
async fn old_keys_keep_verifying_after_rotation_and_other_replicas_see_new_keys() {
    let (dir, store) = store().await;
    let keys = key_ring(&dir);
    let (old, old_claims) = keys.sign(&store, "usr_1", "org_1", 1000).await.unwrap();
    let new_kid = keys.rotate(&store).await.unwrap();
    let (new, new_claims) = keys.sign(&store, "usr_1", "org_1", 1000).await.unwrap();
    assert_eq!(new_claims.kid, new_kid);
    assert_ne!(old_claims.kid, new_kid);

    // A replica that started before the rotation learns the key on demand.
    let other = key_ring(&dir);
    assert!(other.verify(&store, &old, 1001).await.is_ok());
    assert!(other.verify(&store, &new, 1001).await.is_ok());
}

#[tokio::test]
async fn signing_keys_are_not_readable_from_the_settings_table() {
    let (dir, store) = store().await;
    let keys = key_ring(&dir);
    let (_, claims) = keys.sign(&store, "usr_1", "org_1", 1000).await.unwrap();
    let recorded = store
        .setting(&format!("session_key.{}", claims.kid))
        .await
        .unwrap();
    let secret = keys.read().get(&claims.kid).cloned().expect("cached key");
    let recorded = recorded.expect("the key is recorded");
    assert!(!recorded.contains(&B64.encode(&secret)), "{recorded}");
    assert!(store
        .get_secret(&keys.master, &format!("session_key/{}", claims.kid))
        .await
        .unwrap()
        .is_some());
}
