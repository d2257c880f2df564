//! People sign in through a real OpenID Provider (the `oidc-provider` npm
//! package, run by node on loopback from tests/oidc/): authorization code
//! with PKCE, the provider's own login and consent interactions, and the
//! console cookie that results.

mod common;
mod oidc;

use reqwest::header::ORIGIN;
use reqwest::{StatusCode, Url};
use serde_json::{json, Value};

use oidc::{error_of, location, query_param, set_cookies, Browser, World, CLIENT_ID, PASSWORD};

#[tokio::test(flavor = "multi_thread")]
async fn a_person_signs_in_through_the_provider_and_the_console_cookie_authenticates() {
    let world = World::start().await;
    let browser = Browser::new();

    // Start: a 303 to the provider's authorization endpoint with PKCE, and
    // the flow bound to this browser.
    let start = browser
        .start(&world, "?org=default&return_to=/workspaces%3Ftab%3Dall")
        .await;
    assert_eq!(start.status(), StatusCode::SEE_OTHER);
    let authorize = location(&start).to_string();
    assert!(
        authorize.starts_with(&format!("{}/auth?", world.provider.issuer)),
        "{authorize}"
    );
    for (name, value) in [
        ("response_type", "code"),
        ("client_id", CLIENT_ID),
        ("code_challenge_method", "S256"),
        ("redirect_uri", &world.url("/auth/oidc/callback")),
        ("scope", "openid email profile"),
    ] {
        assert_eq!(query_param(&authorize, name).as_deref(), Some(value));
    }
    let binding = set_cookies(&start).join("\n");
    assert!(binding.contains("evershell_oidc_state="), "{binding}");

    // The provider's login and consent pages, then the callback.
    let callback = browser.at_provider(&world, &authorize, "olive", true).await;
    let done = browser.http.get(&callback).send().await.unwrap();
    assert_eq!(done.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&done), "/workspaces?tab=all");
    let set = set_cookies(&done);
    let session = set
        .iter()
        .find(|c| c.starts_with("evershell_session=eyJ"))
        .unwrap_or_else(|| panic!("no session cookie in {set:?}"));
    for attribute in [
        "HttpOnly",
        "Secure",
        "SameSite=Lax",
        "Path=/",
        "Max-Age=43200",
    ] {
        assert!(
            session.split("; ").any(|a| a == attribute),
            "{attribute} missing: {session}"
        );
    }

    // The cookie alone authenticates: the user (email lowercased) in the
    // org asked for.
    let (status, me) = browser.me(&world).await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["email"], "olive@acme.test");
    assert_eq!(me["org_slug"], "default");
    assert_eq!(me["role"], "owner");
    let config: Value = browser
        .http
        .get(world.url("/v1/config"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(config["oidc"]["display_name"], "Acme SSO", "{config}");
    assert_eq!(
        config["defaults"]["oidc_redirect_uri"],
        world.url("/auth/oidc/callback")
    );

    // Changes through the cookie need this server's Origin; a Bearer
    // caller needs none.
    let keys = world.url("/v1/api-keys");
    let body = json!({ "label": "from-console", "permission_set": "read_only" });
    let post = || browser.http.post(&keys).json(&body);
    let (status, code, _) = error_of(post().send().await.unwrap()).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::FORBIDDEN, "permission_denied")
    );
    let cross = post()
        .header(ORIGIN, "http://evil.test")
        .send()
        .await
        .unwrap();
    assert_eq!(cross.status(), StatusCode::FORBIDDEN);
    let ours = post().header(ORIGIN, &world.url).send().await.unwrap();
    assert_eq!(ours.status(), StatusCode::CREATED);
    let bootstrap_key = world.server.bootstrap.api_key.clone().unwrap();
    let bearer = reqwest::Client::new()
        .get(&keys)
        .bearer_auth(&bootstrap_key)
        .send()
        .await
        .unwrap();
    assert_eq!(
        bearer.status(),
        StatusCode::FORBIDDEN,
        "keys never manage keys"
    );
    let bearer = reqwest::Client::new()
        .post(world.url("/v1/agent-roles"))
        .bearer_auth(&bootstrap_key)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(bearer.status(), StatusCode::BAD_REQUEST, "no Origin needed");

    // Sign-out removes the cookie; the browser is signed out.
    let out = browser
        .http
        .post(world.url("/auth/sign-out"))
        .send()
        .await
        .unwrap();
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    assert!(set_cookies(&out)
        .iter()
        .any(|c| c.starts_with("evershell_session=;") && c.contains("Max-Age=0")));
    assert!(browser
        .cookie(&world)
        .is_none_or(|c| !c.contains("evershell_session")));
    let (status, _) = browser.me(&world).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Password sign-in sets the same cookie, beside the unchanged body.
    let store = &world.server.ctx.store;
    evershell_server::admin::create_user(store, "default", "olive@acme.test", "owner", PASSWORD)
        .await
        .unwrap();
    let signed = browser
        .http
        .post(world.url("/auth/sign-in"))
        .json(&json!({ "email": "olive@acme.test", "password": PASSWORD }))
        .send()
        .await
        .unwrap();
    assert_eq!(signed.status(), StatusCode::OK);
    assert!(set_cookies(&signed)
        .iter()
        .any(|c| c.starts_with("evershell_session=eyJ")));
    let body: Value = signed.json().await.unwrap();
    assert!(body["token"].as_str().unwrap().starts_with("eyJ"), "{body}");
    assert_eq!(browser.me(&world).await.0, StatusCode::OK);
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn callbacks_are_refused_when_tampered_replayed_swapped_or_declined() {
    let world = World::start().await;
    let browser = Browser::new();
    // Each refusal is a 401 naming its cause.
    let refused = |(status, code, body): (StatusCode, String, Value), cause: &str| {
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::UNAUTHORIZED, "unauthenticated"),
            "{body}"
        );
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(cause), "{message}");
    };
    let elsewhere = "not started in this browser";
    let used = "unknown, used or expired";
    let provider_refused = "answer was refused";

    // A tampered state.
    let start = browser.start(&world, "").await;
    let authorize = location(&start).to_string();
    let callback = browser.at_provider(&world, &authorize, "olive", true).await;
    let state = query_param(&callback, "state").unwrap();
    let tampered = callback.replace(&state, &format!("{state}x"));
    refused(
        error_of(browser.http.get(&tampered).send().await.unwrap()).await,
        elsewhere,
    );

    // The genuine callback in another browser (no binding cookie).
    let stranger = Browser::new();
    refused(
        error_of(stranger.http.get(&callback).send().await.unwrap()).await,
        elsewhere,
    );

    // The state is used once: a replay with the binding cookie is refused.
    let first = browser.http.get(&callback).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::SEE_OTHER);
    let replay = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(&callback)
        .header("cookie", format!("evershell_oidc_state={state}"))
        .send()
        .await
        .unwrap();
    refused(error_of(replay).await, used);

    // A code from another flow of the same browser, redeemed with this
    // flow's PKCE verifier, is refused by the provider.
    let a = location(&browser.start(&world, "").await).to_string();
    let b = location(&browser.start(&world, "").await).to_string();
    let code_a = query_param(
        &browser.at_provider(&world, &a, "olive", true).await,
        "code",
    );
    let b_state = query_param(&b, "state").unwrap();
    let swapped = format!(
        "{}?code={}&state={b_state}",
        world.url("/auth/oidc/callback"),
        code_a.unwrap()
    );
    let answer = browser.http.get(&swapped).send().await.unwrap();
    refused(error_of(answer).await, provider_refused);

    // A code the provider issued to another client, brought back with a
    // genuine state of this browser.
    let genuine = location(&browser.start(&world, "").await).to_string();
    let mut other = Url::parse(&genuine).unwrap();
    let pairs: Vec<(String, String)> = other
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "client_id" {
                "other-app".into()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    other.query_pairs_mut().clear().extend_pairs(pairs);
    let foreign = browser
        .at_provider(&world, other.as_str(), "olive", true)
        .await;
    let answer = browser.http.get(&foreign).send().await.unwrap();
    refused(error_of(answer).await, provider_refused);

    // The person declines at the provider.
    let fresh = Browser::new();
    let start = location(&fresh.start(&world, "").await).to_string();
    let declined = fresh.at_provider(&world, &start, "olive", false).await;
    assert_eq!(
        query_param(&declined, "error").as_deref(),
        Some("access_denied")
    );
    let (status, code, body) = error_of(fresh.http.get(&declined).send().await.unwrap()).await;
    assert_eq!(
        (status, code.as_str()),
        (StatusCode::UNAUTHORIZED, "unauthenticated")
    );
    assert_eq!(
        body["error"]["details"]["provider_error"], "access_denied",
        "{body}"
    );
    assert!(fresh
        .cookie(&world)
        .is_none_or(|c| !c.contains("evershell_session")));
    world.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn sign_in_is_refused_for_unknown_unverified_or_rebound_accounts_and_non_members() {
    let world = World::start().await;
    let forbidden = |(status, code, body): (StatusCode, String, Value)| {
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::FORBIDDEN, "permission_denied"),
            "{body}"
        );
        body["error"]["message"].as_str().unwrap().to_string()
    };

    // No Evershell user has this email: no account is created.
    let response = Browser::new().sign_in(&world, "", "mallory").await;
    let message = forbidden(error_of(response).await);
    assert!(message.contains("invitation"), "{message}");
    let store = &world.server.ctx.store;
    assert!(store
        .user_login("mallory@elsewhere.test")
        .await
        .unwrap()
        .is_none());

    // The provider says the email is not verified.
    forbidden(error_of(Browser::new().sign_in(&world, "", "uma").await).await);

    // A member of `default` asking for `other`.
    forbidden(error_of(Browser::new().sign_in(&world, "?org=other", "olive").await).await);

    // Once olive signed in with her provider account, another account of
    // the same provider claiming her email is refused.
    let olive = Browser::new().sign_in(&world, "", "olive").await;
    assert_eq!(olive.status(), StatusCode::SEE_OTHER);
    let twin = Browser::new().sign_in(&world, "", "olive-twin").await;
    forbidden(error_of(twin).await);

    // A return_to that leaves the server is refused before the provider
    // is involved.
    for bad in ["?return_to=https://evil.test/", "?return_to=//evil.test"] {
        let response = Browser::new().start(&world, bad).await;
        let (status, code, _) = error_of(response).await;
        assert_eq!(
            (status, code.as_str()),
            (StatusCode::BAD_REQUEST, "validation_error")
        );
    }
    world.shutdown().await;
}
