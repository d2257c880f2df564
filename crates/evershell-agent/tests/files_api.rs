//! `GET /files*` read the live filesystem, refuse `..`, and tell text from
//! binary.

mod support;

use support::{model, Agent};

#[tokio::test]
async fn lists_reads_and_streams_files_and_refuses_parent_components() {
    let dir = tempfile::tempdir().expect("tempdir");
    let model = model(dir.path(), Vec::new(), None).await;
    let agent = Agent::start(dir.path(), &model.ca_file).await;
    std::fs::write(agent.workdir.join("a.txt"), "hello").expect("write");
    std::fs::write(agent.workdir.join("bin.dat"), [0u8, 159, 146, 150]).expect("write");
    std::fs::create_dir(agent.workdir.join("sub")).expect("mkdir");

    let (status, listing) = agent.get("/files").await;
    assert_eq!(status, 200);
    let entries: Vec<(&str, &str)> = listing["entries"]
        .as_array()
        .expect("entries")
        .iter()
        .map(|e| {
            (
                e["name"].as_str().expect("name"),
                e["kind"].as_str().expect("kind"),
            )
        })
        .collect();
    assert_eq!(
        entries,
        [("a.txt", "file"), ("bin.dat", "file"), ("sub", "dir")]
    );
    assert_eq!(listing["entries"][0]["size"], 5);

    let (_, text) = agent.get("/files/content?path=a.txt").await;
    assert_eq!(
        (text["content"].as_str(), text["binary"].as_bool()),
        (Some("hello"), Some(false))
    );
    let (_, cut) = agent.get("/files/content?path=a.txt&max_bytes=2").await;
    assert_eq!(
        (
            cut["content"].as_str(),
            cut["truncated"].as_bool(),
            cut["size"].as_u64()
        ),
        (Some("he"), Some(true), Some(5))
    );
    let (_, binary) = agent.get("/files/content?path=bin.dat").await;
    assert_eq!(
        (binary["content"].is_null(), binary["binary"].as_bool()),
        (true, Some(true))
    );
    let absolute = agent.workdir.join("a.txt");
    let (status, _) = agent
        .get(&format!("/files/content?path={}", absolute.display()))
        .await;
    assert_eq!(status, 200);

    let (status, raw) = agent.get_bytes("/files/raw?path=bin.dat").await;
    assert_eq!((status, raw), (200, vec![0u8, 159, 146, 150]));

    for path in ["../etc/passwd", "sub/../a.txt", "/workspace/../etc"] {
        let (status, body) = agent.get(&format!("/files/content?path={path}")).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("validation_error")),
            "{path}"
        );
    }
    let (status, body) = agent.get("/files/raw?path=missing").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    let (status, _) = agent.get("/files/content?path=sub").await;
    assert_eq!(status, 400);
    let (status, body) = agent.get("/nope").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("not_found"))
    );
    agent.stop().await;
}
