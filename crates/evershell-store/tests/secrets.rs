#[macro_use]
mod support;

use evershell_store::secrets::MasterKey;
use support::TestDb;

on_both_engines!(
    secrets_round_trip_and_never_rest_in_plaintext,
    secrets_keep_every_byte_value_and_the_empty_value,
    named_secrets_list_names_only_and_refuse_silent_overwrite,
);

async fn secrets_round_trip_and_never_rest_in_plaintext(db: TestDb) {
    let (store, dir) = (&db.store, db.dir.path());
    let master = MasterKey::load_or_create(&dir.join("master.key")).expect("key");
    let mode = std::fs::metadata(dir.join("master.key")).expect("meta");
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
        0o600
    );

    store
        .put_secret(&master, "db:cred_1", b"sk-canary-value")
        .await
        .expect("put");
    let back = store
        .get_secret(&master, "db:cred_1")
        .await
        .expect("get")
        .expect("present");
    assert_eq!(back.as_slice(), b"sk-canary-value");

    let raw: (Vec<u8>,) = sqlx::query_as("SELECT ciphertext FROM secret_values WHERE ref = $1")
        .bind("db:cred_1")
        .fetch_one(store.pool())
        .await
        .expect("row");
    assert!(
        !raw.0.windows(9).any(|w| w == b"sk-canary"),
        "ciphertext holds the plaintext"
    );

    let other = MasterKey::load_or_create(&dir.join("other.key")).expect("other key");
    assert!(
        store.get_secret(&other, "db:cred_1").await.is_err(),
        "wrong key must not decrypt"
    );
}

/// BLOB and BYTEA must hand back exactly the bytes stored: a text column or
/// an encoding step on the way would corrupt NUL and non-UTF-8 bytes.
async fn secrets_keep_every_byte_value_and_the_empty_value(db: TestDb) {
    let master = MasterKey::load_or_create(&db.dir.path().join("master.key")).expect("key");
    let every_byte: Vec<u8> = (0..=255).collect();
    for (reference, value) in [("bytes:all", every_byte.as_slice()), ("bytes:empty", b"")] {
        db.store
            .put_secret(&master, reference, value)
            .await
            .expect("put");
        let back = db
            .store
            .get_secret(&master, reference)
            .await
            .expect("get")
            .expect("present");
        assert_eq!(back.as_slice(), value, "{reference}");
    }
    // nonce (12) + sealed value + tag (16)
    let (len,): (i64,) = sqlx::query_as(
        "SELECT CAST(LENGTH(ciphertext) AS BIGINT) FROM secret_values WHERE ref = $1",
    )
    .bind("bytes:all")
    .fetch_one(db.store.pool())
    .await
    .expect("row");
    assert_eq!(len, 12 + 256 + 16);
}

async fn named_secrets_list_names_only_and_refuse_silent_overwrite(db: TestDb) {
    let store = &db.store;
    let master = MasterKey::load_or_create(&db.dir.path().join("master.key")).expect("key");
    let org = store.ensure_org("acme", "Acme").await.expect("org");
    store
        .put_named_secret(&master, secret(&org, b"t-42", false), &[])
        .await
        .expect("put");
    let again = store
        .put_named_secret(&master, secret(&org, b"t-43", false), &[])
        .await;
    assert!(again.is_err_and(|e| e.is_unique_violation()));
    store
        .put_named_secret(&master, secret(&org, b"t-43", true), &[])
        .await
        .expect("replace");
    let value = store
        .named_secret(&master, &org, "tenant-id")
        .await
        .expect("get")
        .expect("present");
    assert_eq!(value.as_slice(), b"t-43");
    let listed =
        serde_json::to_string(&store.list_secrets(&org).await.expect("list")).expect("json");
    assert!(listed.contains("tenant-id") && !listed.contains("t-43"));
    let other = store.ensure_org("other", "Other").await.expect("org");
    assert!(store
        .named_secret(&master, &other, "tenant-id")
        .await
        .expect("get")
        .is_none());
    assert!(store
        .delete_named_secret(&org, "tenant-id", &[])
        .await
        .expect("delete"));
    assert!(store
        .named_secret(&master, &org, "tenant-id")
        .await
        .expect("get")
        .is_none());
}

fn secret<'a>(org: &'a str, value: &'a [u8], replace: bool) -> evershell_store::NewSecret<'a> {
    evershell_store::NewSecret {
        org_id: org,
        name: "tenant-id",
        value,
        created_by: "system",
        replace,
    }
}
