//! Archiving, unarchiving and deleting providers and roles: an archive
//! cascades from a provider to its roles, nothing live workspaces run on can
//! be archived or deleted, and every change is audited.

#[macro_use]
mod common;

use evershell_cli::demo::{DEMO_CAPS, MODEL_HOST};
use evershell_testkit::model::ScriptStep;
use serde_json::{json, Value};

async fn call(
    world: &evershell_cli::demo::DemoWorld,
    method: reqwest::Method,
    path: &str,
) -> (u16, Value) {
    let response = world
        .client
        .request(method, path)
        .json(&json!({}))
        .send()
        .await
        .expect("api reachable");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn archives_cascade_and_live_workspaces_block_archive_and_delete(engine: common::Engine) {
    use reqwest::Method;
    let world = common::world_on(
        engine,
        vec![ScriptStep::Text("done".into())],
        "busy-role",
        DEMO_CAPS,
    )
    .await;
    let (ws, task) = common::submit(&world, "busy-role", "nothing").await;
    common::wait_task(
        &world.client,
        &ws,
        &task,
        std::time::Duration::from_secs(60),
    )
    .await;

    // A live workspace runs on busy-role (and so on demo-anthropic).
    for path in [
        "/v1/agent-roles/busy-role/archive",
        "/v1/providers/demo-anthropic/archive",
    ] {
        let (status, body) = call(&world, Method::POST, path).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (409, Some("workspaces_active")),
            "{path}: {body}"
        );
    }
    let (status, body) = call(&world, Method::DELETE, "/v1/agent-roles/busy-role").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("workspaces_active"))
    );

    // A second provider with two roles and no workspaces.
    let _: Value = world
        .client
        .post(
            "/v1/providers",
            &json!({"name": "p2", "kind": "anthropic", "domain": MODEL_HOST,
            "credential_name": "demo-anthropic", "default_model": "m"}),
        )
        .await
        .expect("provider");
    for name in ["r2a", "r2b"] {
        let _: Value = world
            .client
            .post(
                "/v1/agent-roles",
                &json!({"name": name, "provider_id": "p2"}),
            )
            .await
            .expect("role");
    }
    let (status, body) = call(&world, Method::DELETE, "/v1/providers/p2").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("provider_in_use"))
    );

    let (status, body) = call(&world, Method::POST, "/v1/providers/p2/archive").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"status": "archived", "cascaded_roles": 2}));
    let active: Value = world.client.get("/v1/agent-roles").await.unwrap();
    let names: Vec<&str> = active["agent_roles"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(
        names,
        ["busy-role"],
        "archived roles leave the default list"
    );
    let all: Value = world
        .client
        .get("/v1/agent-roles?include_archived=true")
        .await
        .unwrap();
    assert_eq!(all["agent_roles"].as_array().unwrap().len(), 3);
    let (status, body) = call(&world, Method::POST, "/v1/tasks").await;
    assert_eq!(status, 400, "{body}");
    let refused = world
        .client
        .request(Method::POST, "/v1/tasks")
        .json(&json!({"role_name": "r2a", "description": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        refused.status().as_u16(),
        404,
        "an archived role takes no work"
    );

    let (status, body) = call(&world, Method::POST, "/v1/agent-roles/r2a/unarchive").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("provider_archived"))
    );
    let (status, _) = call(&world, Method::POST, "/v1/providers/p2/unarchive").await;
    assert_eq!(status, 200);
    let (status, body) = call(&world, Method::POST, "/v1/providers/p2/unarchive").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("not_archived"))
    );
    let role: Value = world.client.get("/v1/agent-roles/r2a").await.unwrap();
    assert!(
        role["archived_at"].is_string(),
        "roles stay archived when their provider comes back"
    );
    let (status, _) = call(&world, Method::POST, "/v1/agent-roles/r2a/unarchive").await;
    assert_eq!(status, 200);
    let (status, body) = call(&world, Method::POST, "/v1/agent-roles/r2a/unarchive").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (409, Some("not_archived"))
    );

    for path in [
        "/v1/agent-roles/r2a",
        "/v1/agent-roles/r2b",
        "/v1/providers/p2",
    ] {
        let (status, body) = call(&world, Method::DELETE, path).await;
        assert_eq!(status, 200, "{path}: {body}");
    }
    let (status, _) = call(&world, Method::GET, "/v1/providers/p2").await;
    assert_eq!(status, 404);

    let audit: Value = world.client.get("/v1/audit?limit=1000").await.unwrap();
    let events: Vec<&str> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["event_type"].as_str())
        .collect();
    for expected in [
        "provider_archived",
        "agent_role_archived",
        "provider_unarchived",
        "agent_role_unarchived",
        "agent_role_deleted",
        "provider_deleted",
    ] {
        assert!(
            events.contains(&expected),
            "{expected} missing from {events:?}"
        );
    }
    world.shutdown().await;
}

on_both_engines!(archives_cascade_and_live_workspaces_block_archive_and_delete,);
