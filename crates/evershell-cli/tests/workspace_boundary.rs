//! What a workspace can and cannot reach, probed from inside by the agent's
//! own bash tool (the scripted model asks for each probe; the probe's output
//! comes back to the model server as the tool result).

mod common;

use evershell_cli::demo::{tool_results, DEMO_API_KEY, DEMO_CAPS};
use evershell_testkit::model::ScriptStep;

/// `(name, command)`: each command ends by printing `exit=<status>`.
fn probes(data_dir: &str, api_port: u16) -> Vec<(&'static str, String)> {
    // The key is searched for with a regular expression that matches it but
    // is not it (one character in brackets), so that the probe's own
    // command line and grep's arguments do not contain the key.
    let (a, b) = DEMO_API_KEY.split_at(DEMO_API_KEY.len() / 2);
    let (c, rest) = b.split_at(1);
    let pattern = format!("{a}[{c}]{rest}");
    vec![
        ("tls_allowed", "env -i /usr/bin/curl -sS -o /dev/null -w 'status=%{http_code} verify=%{ssl_verify_result}' \
            'https://git.evershell.test/demo.git/info/refs?service=git-upload-pack'; echo \" exit=$?\"".to_string()),
        ("http_denied", "curl -sS -D - -X DELETE https://git.evershell.test/demo.git/info/refs; echo \" exit=$?\"".to_string()),
        ("dns_denied", "curl -sS https://paste.evershell.test/; echo \" exit=$?\"".to_string()),
        ("tls_host_denied", "curl -sS --resolve paste.evershell.test:443:198.18.0.7 https://paste.evershell.test/; echo \" exit=$?\"".to_string()),
        ("raw_tcp", format!(
            "python3 -c \"
import socket
for host, port in [('198.18.0.1', 22), ('127.0.0.1', {api_port}), ('169.254.169.254', 8080), ('10.0.0.1', 5432)]:
    s = socket.socket(); s.settimeout(3)
    try:
        s.connect((host, port)); print(host, port, 'connected')
    except ConnectionRefusedError:
        print(host, port, 'refused')
    except Exception as e:
        print(host, port, 'error', type(e).__name__)
\"; echo exit=$?"
        )),
        ("host_files", format!(
            "cat {data_dir}/master.key; echo \"exit=$?\"; ls {data_dir}; echo \"exit=$?\"; cat {data_dir}/evershell.db >/dev/null; echo \"exit=$?\"; \
             ls /root; echo \"exit=$?\"; cat /etc/shadow; echo \"exit=$?\""
        )),
        ("getent", "getent hosts paste.evershell.test; echo \"denied exit=$?\"; getent hosts git.evershell.test; echo \"allowed exit=$?\"".to_string()),
        ("key_hunt", format!(
            "K='{pattern}'; \
             echo env=$(env | grep -c \"$K\"); \
             echo files=$(grep -rIl \"$K\" /workspace /data /tmp /home /etc /run /.evershell 2>/dev/null | wc -l); \
             echo procs=$(cat /proc/[0-9]*/environ /proc/[0-9]*/cmdline 2>/dev/null | grep -ac \"$K\"); \
             echo ps=$(ps auxeww | grep -c \"$K\"); echo exit=0"
        )),
        ("identity", "id -u; id -un; cat /proc/1/cmdline | tr '\\0' ' '; echo; ls /proc | grep -c '^[0-9]'; echo exit=0".to_string()),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn a_workspace_reaches_only_what_its_policy_allows_and_never_sees_the_key() {
    // The probes name the data directory and the API port, so both are
    // fixed before the world starts.
    let dir = tempfile::tempdir().expect("tempdir");
    let data_dir = dir.path().join("data").display().to_string();
    let api_port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port();
    let probes = probes(&data_dir, api_port);
    let mut script: Vec<ScriptStep> = probes.iter().map(|(_, cmd)| common::bash(cmd)).collect();
    script.push(ScriptStep::Text("probes done".into()));
    let listen = std::net::SocketAddr::from(([127, 0, 0, 1], api_port));
    let world = evershell_cli::demo::DemoWorld::start_in(dir, listen, script, common::exe())
        .await
        .expect("world");
    world
        .configure("prober", DEMO_CAPS)
        .await
        .expect("configure");
    let (ws, task) = common::submit(&world, "prober", "probe the boundary").await;
    let done = common::wait_task(
        &world.client,
        &ws,
        &task,
        std::time::Duration::from_secs(120),
    )
    .await;
    assert_eq!(done["status"], "completed", "{done}");
    let results = tool_results(&world.model);
    assert_eq!(results.len(), probes.len(), "{results:#?}");
    let out = |name: &str| -> &str {
        let i = probes
            .iter()
            .position(|(n, _)| *n == name)
            .expect("probe exists");
        &results[i]
    };

    assert!(
        out("tls_allowed").contains("status=200 verify=0 exit=0"),
        "{}",
        out("tls_allowed")
    );

    let denied = out("http_denied");
    assert!(
        denied.contains("HTTP/1.1 403") || denied.contains("HTTP/2 403"),
        "{denied}"
    );
    assert!(denied.contains("x-evershell-decision: deny"), "{denied}");
    assert!(denied.contains("\"code\":\"egress_denied\""), "{denied}");
    assert!(
        denied.contains("\"reason\":\"method_not_allowed\""),
        "{denied}"
    );

    assert!(
        out("dns_denied").contains("Could not resolve host"),
        "{}",
        out("dns_denied")
    );
    assert!(
        !out("tls_host_denied").contains("exit=0"),
        "{}",
        out("tls_host_denied")
    );

    let raw = out("raw_tcp");
    assert_eq!(raw.matches("refused").count(), 4, "{raw}");
    assert!(!raw.contains("connected"), "{raw}");

    let files = out("host_files");
    assert_eq!(
        files.matches("exit=0").count(),
        0,
        "a host file was readable: {files}"
    );

    let getent = out("getent");
    assert!(getent.contains("denied exit=2"), "{getent}");
    assert!(
        getent.contains("allowed exit=0") && getent.contains("git.evershell.test"),
        "{getent}"
    );

    let hunt = out("key_hunt");
    for probe in ["env=0", "files=0", "procs=0", "ps=0"] {
        assert!(hunt.contains(probe), "{probe} expected: {hunt}");
    }

    let identity = out("identity");
    assert!(identity.starts_with("1000\nagent\n"), "{identity}");

    let rows = common::audit_rows(&world.client, &ws).await;
    let all = serde_json::to_string(&rows).expect("rows serialise");
    assert!(!all.contains(DEMO_API_KEY), "the key is in an audit row");
    assert!(rows.iter().any(|r| r["method"] == "DELETE"
        && r["decision"] == "deny"
        && r["reason"] == "method_not_allowed"));
    assert!(rows
        .iter()
        .any(|r| r["destination"] == "paste.evershell.test" && r["phase"] == "dns"));
    world.shutdown().await;
}
