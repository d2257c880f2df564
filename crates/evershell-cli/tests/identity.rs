//! People sign in with an email and password and act with their member
//! role's scopes; session tokens are refused when expired, tampered with or
//! sent in a query string; sessions manage API keys.

#[macro_use]
mod common;

use std::io::Write;
use std::process::{Command, Stdio};

use evershell_cli::demo::{DemoWorld, DEMO_CAPS};
use serde_json::{json, Value};

const PASSWORD: &str = "correct horse battery staple";

async fn call(req: reqwest::RequestBuilder) -> (u16, Value) {
    let response = req.send().await.expect("api reachable");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn sign_in(
    world: &DemoWorld,
    email: &str,
    password: &str,
    org: Option<&str>,
) -> (u16, Value) {
    let mut body = json!({ "email": email, "password": password });
    if let Some(org) = org {
        body["org"] = json!(org);
    }
    let http = world.client.http();
    call(http.post(world.client.url("/auth/sign-in")).json(&body)).await
}

async fn token(world: &DemoWorld, email: &str) -> String {
    let (status, body) = sign_in(world, email, PASSWORD, None).await;
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().expect("token").to_string()
}

async fn add_user(world: &DemoWorld, org: &str, email: &str, role: &str) -> String {
    evershell_server::admin::create_user(&world.server.ctx.store, org, email, role, PASSWORD)
        .await
        .expect("user created")
}

async fn get(world: &DemoWorld, bearer: &str, path: &str) -> (u16, Value) {
    let http = world.client.http();
    call(http.get(world.client.url(path)).bearer_auth(bearer)).await
}

fn role_body(name: &str) -> Value {
    json!({ "name": name, "provider_id": "demo-anthropic", "capabilities": DEMO_CAPS })
}

/// Runs the `evershell` binary with `stdin` and `HOME` set for the child.
/// On PostgreSQL, `evershell admin` finds the database through
/// `EVERSHELL_DATABASE_URL`.
fn evershell(
    world: &DemoWorld,
    home: &std::path::Path,
    args: &[&str],
    stdin: &str,
) -> std::process::Output {
    let mut command = Command::new(common::exe());
    if let Some(db) = &world.database {
        command.env("EVERSHELL_DATABASE_URL", db.url());
    }
    let mut child = command
        .args(args)
        .env("HOME", home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("evershell runs");
    let mut input = child.stdin.take().expect("piped stdin");
    input.write_all(stdin.as_bytes()).expect("stdin written");
    drop(input);
    child.wait_with_output().expect("evershell exits")
}

async fn members_act_with_their_role_scopes_and_see_their_memberships(engine: common::Engine) {
    let world = common::world_on(engine, Vec::new(), "known", DEMO_CAPS).await;
    let slug = world.server.bootstrap.org_slug.clone();
    add_user(&world, &slug, "Olive@Acme.test", "operator").await;
    add_user(&world, &slug, "mia@acme.test", "member").await;
    world
        .server
        .ctx
        .store
        .ensure_org("other", "Other")
        .await
        .unwrap();
    add_user(&world, "other", "mia@acme.test", "owner").await;

    // The member's session: identity, role scopes and both memberships.
    let mia = token(&world, "mia@acme.test").await;
    assert!(mia.starts_with("eyJ"), "{mia}");
    let (status, me) = get(&world, &mia, "/v1/me/session").await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["email"], "mia@acme.test", "{me}");
    assert_eq!(me["role"], "member", "{me}");
    assert_eq!(me["org_slug"], slug.as_str(), "{me}");
    assert!(me["user_id"].as_str().unwrap().starts_with("usr_"), "{me}");
    let permissions = me["permissions"].to_string();
    assert!(permissions.contains("workspace:read:own"), "{me}");
    assert!(!permissions.contains("\"caps:write\""), "{me}");
    let orgs: Vec<&str> = me["memberships"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["slug"].as_str().unwrap())
        .collect();
    assert_eq!(orgs, vec![slug.as_str(), "other"], "{me}");

    // Members may not configure roles; operators may (emails are case-blind).
    let http = world.client.http().clone();
    let url = world.client.url("/v1/agent-roles");
    let (status, body) = call(http.post(&url).bearer_auth(&mia).json(&role_body("by-mia"))).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("permission_denied"))
    );
    let olive = token(&world, "olive@acme.test").await;
    let (status, body) = call(
        http.post(&url)
            .bearer_auth(&olive)
            .json(&role_body("by-olive")),
    )
    .await;
    assert_eq!(status, 201, "{body}");

    // Signing in to another org of the user acts there with that role.
    let (status, body) = sign_in(&world, "mia@acme.test", PASSWORD, Some("other")).await;
    assert_eq!(status, 200, "{body}");
    let (_, me) = get(&world, body["token"].as_str().unwrap(), "/v1/me/session").await;
    assert_eq!(
        (me["org_slug"].as_str(), me["role"].as_str()),
        (Some("other"), Some("owner"))
    );
    let (status, body) = sign_in(&world, "olive@acme.test", PASSWORD, Some("other")).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("permission_denied"))
    );

    // Evershell-Org switches a session to another org of its user only.
    let me_url = world.client.url("/v1/me/session");
    let named = |bearer: &str| {
        http.get(&me_url)
            .bearer_auth(bearer)
            .header("Evershell-Org", "other")
    };
    let (status, me) = call(named(&mia)).await;
    assert_eq!((status, me["role"].as_str()), (200, Some("owner")), "{me}");
    let (status, body) = call(named(&olive)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("permission_denied"))
    );

    // A wrong password and an unknown email are the same 401.
    let (s1, wrong) = sign_in(&world, "mia@acme.test", "nope", None).await;
    let (s2, unknown) = sign_in(&world, "nobody@acme.test", PASSWORD, None).await;
    assert_eq!((s1, s2), (401, 401));
    assert_eq!(wrong["error"]["code"], "unauthenticated");
    assert_eq!(wrong["error"]["message"], unknown["error"]["message"]);

    // A removed member's session stops working at once.
    let mia_id = me["user_id"].as_str().unwrap().to_string();
    let org_id = world
        .server
        .ctx
        .store
        .org_id_by_slug(&slug)
        .await
        .unwrap()
        .unwrap();
    assert!(world
        .server
        .ctx
        .store
        .remove_membership(&org_id, &mia_id)
        .await
        .unwrap());
    let (status, _) = get(&world, &mia, "/v1/me/session").await;
    assert_eq!(status, 401);
    world.shutdown().await;
}

async fn session_tokens_are_refused_when_expired_tampered_or_in_a_query(engine: common::Engine) {
    let world = common::world_on(engine, Vec::new(), "known", DEMO_CAPS).await;
    let slug = world.server.bootstrap.org_slug.clone();
    let user_id = add_user(&world, &slug, "otto@acme.test", "owner").await;
    let ctx = &world.server.ctx;
    let org_id = ctx.store.org_id_by_slug(&slug).await.unwrap().unwrap();
    let good = token(&world, "otto@acme.test").await;
    assert_eq!(get(&world, &good, "/v1/me/session").await.0, 200);

    // Issued 13 hours ago: expired an hour ago.
    let then = chrono::Utc::now().timestamp() - 13 * 3600;
    let (expired, _) = ctx
        .sessions
        .sign(&ctx.store, &user_id, &org_id, then)
        .await
        .unwrap();
    assert_eq!(get(&world, &expired, "/v1/me/session").await.0, 401);

    // Another org id in the claims breaks the signature.
    let parts: Vec<&str> = good.split('.').collect();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: Value =
        serde_json::from_slice(&base64::Engine::decode(&b64, parts[1]).unwrap()).unwrap();
    claims["sub"] = json!("usr_someone_else");
    let forged = base64::Engine::encode(&b64, claims.to_string());
    let tampered = format!("{}.{forged}.{}", parts[0], parts[2]);
    assert_eq!(get(&world, &tampered, "/v1/me/session").await.0, 401);

    // SSE routes take API keys in the query string, never session tokens.
    let stream = |key: &str| {
        world.client.url(&format!(
            "/v1/workspaces/ws_none/activity/stream?api_key={key}"
        ))
    };
    let http = world.client.http().clone();
    let (status, _) = call(http.get(stream(&good))).await;
    assert_eq!(status, 401);
    let (status, _) = call(http.get(stream(&world.client.profile.api_key))).await;
    assert_ne!(status, 401);

    // After a key rotation (the admin verb, beside the live server), tokens
    // of the old key still verify and new tokens name the new key.
    let home = tempfile::tempdir().unwrap();
    let data_dir = world.dir.path().join("data");
    let args = [
        "admin",
        "rotate-session-key",
        "--data-dir",
        data_dir.to_str().unwrap(),
    ];
    let out = evershell(&world, home.path(), &args, "");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(get(&world, &good, "/v1/me/session").await.0, 200);
    let fresh = token(&world, "otto@acme.test").await;
    assert_ne!(
        fresh.split('.').next(),
        good.split('.').next(),
        "new kid in the header"
    );
    assert_eq!(get(&world, &fresh, "/v1/me/session").await.0, 200);
    world.shutdown().await;
}

async fn sessions_create_list_and_revoke_api_keys_and_the_cli_signs_in(engine: common::Engine) {
    let world = common::world_on(engine, Vec::new(), "known", DEMO_CAPS).await;
    let slug = world.server.bootstrap.org_slug.clone();
    let home = tempfile::tempdir().unwrap();
    let data_dir = world.dir.path().join("data");

    // The installation admin creates an owner; the CLI signs in as them.
    let out = evershell(
        &world,
        home.path(),
        &[
            "admin",
            "create-user",
            "owen@acme.test",
            "--org",
            &slug,
            "--role",
            "owner",
            "--data-dir",
            data_dir.to_str().unwrap(),
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let url = world.client.url("");
    let out = evershell(
        &world,
        home.path(),
        &[
            "login",
            "--email",
            "owen@acme.test",
            "--password-stdin",
            "--url",
            &url,
            "--slug",
            &slug,
        ],
        &format!("{PASSWORD}\n"),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let saved = std::fs::read_to_string(home.path().join(".config/evershell/credentials")).unwrap();
    let profile: toml::Table = saved.parse().unwrap();
    let owner = profile["default"]["token"]
        .as_str()
        .expect("token saved")
        .to_string();
    let (_, me) = get(&world, &owner, "/v1/me/session").await;
    assert_eq!(me["role"], "owner", "{me}");

    // Create: the value is shown once, the list never shows it.
    let http = world.client.http().clone();
    let keys_url = world.client.url("/v1/api-keys");
    let body = json!({ "label": "ci", "permission_set": "read_only" });
    let (status, created) = call(http.post(&keys_url).bearer_auth(&owner).json(&body)).await;
    assert_eq!(status, 201, "{created}");
    let value = created["value"].as_str().unwrap().to_string();
    assert!(value.starts_with("sk_live_"), "{created}");
    assert_eq!(
        created["prefix"],
        format!("sk_live_...{}", &value[value.len() - 4..])
    );
    let (status, list) = get(&world, &owner, "/v1/api-keys").await;
    assert_eq!(status, 200, "{list}");
    assert!(
        list.to_string().contains("\"ci\"") && !list.to_string().contains(&value),
        "{list}"
    );
    let bad = json!({ "label": "x", "permission_set": "everything" });
    let (status, _) = call(http.post(&keys_url).bearer_auth(&owner).json(&bad)).await;
    assert_eq!(status, 400);

    // Keys work but cannot manage keys; members cannot either.
    assert_eq!(get(&world, &value, "/v1/workspaces").await.0, 200);
    assert_eq!(get(&world, &value, "/v1/api-keys").await.0, 403);
    assert_eq!(
        get(&world, &world.client.profile.api_key, "/v1/api-keys")
            .await
            .0,
        403
    );
    add_user(&world, &slug, "max@acme.test", "member").await;
    let max = token(&world, "max@acme.test").await;
    assert_eq!(get(&world, &max, "/v1/api-keys").await.0, 403);

    // Revoked: the next request with the key is 401.
    let id = created["id"].as_str().unwrap();
    let revoke = world.client.url(&format!("/v1/api-keys/{id}"));
    let (status, body) = call(http.delete(&revoke).bearer_auth(&owner)).await;
    assert_eq!(
        (status, body["status"].as_str()),
        (200, Some("revoked")),
        "{body}"
    );
    assert_eq!(get(&world, &value, "/v1/workspaces").await.0, 401);
    let (status, body) = call(http.delete(&revoke).bearer_auth(&owner)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("api_key_not_found"))
    );
    world.shutdown().await;
}

on_both_engines!(
    members_act_with_their_role_scopes_and_see_their_memberships,
    session_tokens_are_refused_when_expired_tampered_or_in_a_query,
    sessions_create_list_and_revoke_api_keys_and_the_cli_signs_in,
);
