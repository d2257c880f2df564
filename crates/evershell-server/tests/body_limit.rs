//! The request body limit: every body over it, JSON or multipart, sent
//! with a `content-length` or chunked, is `413 payload_too_large` naming
//! the limit; a body within it is read. Sent over loopback, so that the
//! framing is the wire's.

mod common;

use std::net::SocketAddr;

use common::TestServer;
use evershell_server::{ApiFile, ServerConfig, ServerFile};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LIMIT: usize = 4096;

enum Framing {
    ContentLength,
    Chunked,
}

/// Sends one HTTP/1.1 request and returns its status and JSON body. The
/// server may close the connection as soon as it has answered, so a reset
/// after the answer is not an error.
async fn send(
    addr: SocketAddr,
    token: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
    framing: Framing,
) -> (u16, Value) {
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("server listens");
    let mut request = format!(
        "POST {path} HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\
         content-type: {content_type}\r\nconnection: close\r\n"
    )
    .into_bytes();
    match framing {
        Framing::ContentLength => {
            request.extend(format!("content-length: {}\r\n\r\n", body.len()).bytes());
            request.extend(body);
        }
        Framing::Chunked => {
            request.extend(b"transfer-encoding: chunked\r\n\r\n");
            for chunk in body.chunks(1000) {
                request.extend(format!("{:x}\r\n", chunk.len()).bytes());
                request.extend(chunk);
                request.extend(b"\r\n");
            }
            request.extend(b"0\r\n\r\n");
        }
    }
    // The server may stop reading once the limit is passed.
    let _ = stream.write_all(&request).await;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf).await {
        if n == 0 {
            break;
        }
        answer.extend(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body)
        .unwrap_or_default();
    // Answers without a content-length come chunked: keep the JSON line.
    let json = body
        .lines()
        .find(|line| line.starts_with('{'))
        .and_then(|line| serde_json::from_str(line).ok())
        .unwrap_or(Value::Null);
    (status, json)
}

fn assert_too_large(status: u16, body: &Value, what: &str) {
    assert_eq!(status, 413, "{what}: {body}");
    let error = &body["error"];
    assert_eq!(error["code"], "payload_too_large", "{what}: {body}");
    assert_eq!(error["details"]["limit_bytes"], LIMIT, "{what}: {body}");
    assert!(
        error["details"]["fields"]["body"]
            .as_str()
            .is_some_and(|m| m.contains(&LIMIT.to_string())),
        "{what}: {body}"
    );
    assert!(
        error["request_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("req_")),
        "{what}: {body}"
    );
}

fn multipart(file: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    body.extend(b"--XBOUNDARY\r\ncontent-disposition: form-data; name=\"role_name\"\r\n\r\n");
    body.extend(b"no-such-role\r\n");
    body.extend(b"--XBOUNDARY\r\ncontent-disposition: form-data; name=\"description\"\r\n\r\n");
    body.extend(b"read the file\r\n");
    body.extend(b"--XBOUNDARY\r\ncontent-disposition: form-data; name=\"file\"; ");
    body.extend(b"filename=\"a.bin\"\r\ncontent-type: application/octet-stream\r\n\r\n");
    body.extend(file);
    body.extend(b"\r\n--XBOUNDARY--\r\n");
    body
}

async fn small_limit_server() -> TestServer {
    TestServer::start_with(|config| {
        let file = ServerFile {
            api: ApiFile {
                max_body_bytes: Some(LIMIT),
            },
            ..ServerFile::default()
        };
        file.apply(config).expect("the limit is valid");
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn json_bodies_over_the_limit_are_413_with_and_without_content_length() {
    let server = small_limit_server().await;
    let addr = server.server.addr;
    let big = json!({ "name": "big", "value": "v".repeat(LIMIT) }).to_string();
    let routes = [("/v1/secrets", big.clone()), ("/v1/tasks", big.clone())];
    for (path, body) in routes {
        for (framing, label) in [
            (Framing::ContentLength, "content-length"),
            (Framing::Chunked, "chunked"),
        ] {
            let (status, answer) = send(
                addr,
                &server.token,
                path,
                "application/json",
                body.as_bytes(),
                framing,
            )
            .await;
            assert_too_large(status, &answer, &format!("{path} {label}"));
        }
    }

    // Within the limit, the body is read and the route answers.
    let small = json!({ "name": "small", "value": "v".repeat(LIMIT - 100) }).to_string();
    for (framing, name) in [(Framing::ContentLength, "a"), (Framing::Chunked, "b")] {
        let small = small.replace("small", &format!("small-{name}"));
        let (status, answer) = send(
            addr,
            &server.token,
            "/v1/secrets",
            "application/json",
            small.as_bytes(),
            framing,
        )
        .await;
        assert_eq!(status, 201, "{answer}");
    }
    server.shutdown().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn multipart_bodies_over_the_limit_are_413_with_and_without_content_length() {
    let server = small_limit_server().await;
    let addr = server.server.addr;
    let content_type = "multipart/form-data; boundary=XBOUNDARY";
    for (framing, label) in [
        (Framing::ContentLength, "content-length"),
        (Framing::Chunked, "chunked"),
    ] {
        let body = multipart(&vec![b'x'; LIMIT]);
        let (status, answer) = send(
            addr,
            &server.token,
            "/v1/tasks",
            content_type,
            &body,
            framing,
        )
        .await;
        assert_too_large(status, &answer, &format!("multipart {label}"));
    }

    // Within the limit the form is read; the role does not exist.
    let body = multipart(&[b'x'; 100]);
    let (status, answer) = send(
        addr,
        &server.token,
        "/v1/tasks",
        content_type,
        &body,
        Framing::Chunked,
    )
    .await;
    assert_eq!(status, 404, "{answer}");
    assert_eq!(answer["error"]["code"], "role_not_found", "{answer}");
    server.shutdown().await;
}

#[test]
fn a_body_limit_below_the_minimum_is_refused() {
    let dir = std::path::PathBuf::from("/nonexistent");
    let listen = "127.0.0.1:0".parse().expect("literal address");
    let mut config = ServerConfig::new(dir.clone(), listen, dir);
    assert_eq!(
        config.body_limit_bytes,
        evershell_server::DEFAULT_BODY_LIMIT_BYTES
    );
    let file = ServerFile {
        api: ApiFile {
            max_body_bytes: Some(evershell_server::MIN_BODY_LIMIT_BYTES - 1),
        },
        ..ServerFile::default()
    };
    let error = file.apply(&mut config).expect_err("too small");
    assert!(error.to_string().contains("max_body_bytes"), "{error}");
    assert_eq!(
        config.body_limit_bytes,
        evershell_server::DEFAULT_BODY_LIMIT_BYTES
    );
    config.set_body_limit(2048).expect("large enough");
    assert_eq!(config.body_limit_bytes, 2048);
}
