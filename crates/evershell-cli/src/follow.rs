//! `--follow`: a live view of one task. It prints what already happened
//! (from the audit log), then streams the workspace's activity (SSE),
//! reconnecting with `Last-Event-ID` so nothing is printed twice or missed.

use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;
use serde_json::Value;

use crate::client::Client;

/// Follows task `task_id` of workspace `ws_id` until it ends; returns the
/// final task object.
pub async fn follow(
    client: &Client,
    ws_id: &str,
    task_id: &str,
    print: &mut dyn FnMut(&Value),
) -> anyhow::Result<Value> {
    let mut last_id = replay_history(client, ws_id, print).await?;
    if let Some(task) = finished_task(client, ws_id, task_id).await? {
        return Ok(task);
    }
    loop {
        match stream_once(client, ws_id, task_id, &mut last_id, print).await {
            Ok(true) => {}
            Ok(false) => tokio::time::sleep(Duration::from_millis(300)).await,
            Err(e) => {
                tracing::debug!(error = %e, "activity stream interrupted; reconnecting");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        }
        if let Some(task) = finished_task(client, ws_id, task_id).await? {
            return Ok(task);
        }
    }
}

/// Prints every row already in the workspace's audit log, oldest first;
/// returns the id of the last one.
async fn replay_history(
    client: &Client,
    ws_id: &str,
    print: &mut dyn FnMut(&Value),
) -> anyhow::Result<Option<String>> {
    let mut last = None;
    let mut cursor: Option<String> = None;
    loop {
        let mut path = format!("/v1/workspaces/{ws_id}/audit?order=asc&limit=1000");
        if let Some(c) = &cursor {
            path.push_str(&format!("&cursor={c}"));
        }
        let page: Value = client.get(&path).await?;
        for row in page["events"].as_array().into_iter().flatten() {
            print(row);
            last = row["id"].as_str().map(str::to_string);
        }
        match page["cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => return Ok(last),
        }
    }
}

async fn finished_task(
    client: &Client,
    ws_id: &str,
    task_id: &str,
) -> anyhow::Result<Option<Value>> {
    let task: Value = client
        .get(&format!("/v1/workspaces/{ws_id}/tasks/{task_id}"))
        .await?;
    let terminal = matches!(
        task["status"].as_str(),
        Some("completed" | "failed" | "cancelled" | "delivery_failed")
    );
    Ok(terminal.then_some(task))
}

/// One SSE connection. Returns `Ok(true)` when the followed task ended.
async fn stream_once(
    client: &Client,
    ws_id: &str,
    task_id: &str,
    last_id: &mut Option<String>,
    print: &mut dyn FnMut(&Value),
) -> anyhow::Result<bool> {
    let mut request = client
        .request(
            reqwest::Method::GET,
            &format!("/v1/workspaces/{ws_id}/activity/stream"),
        )
        .header("accept", "text/event-stream");
    if let Some(id) = last_id.as_deref() {
        request = request.header("last-event-id", id);
    }
    let response = request
        .send()
        .await
        .context("cannot reach the Evershell API")?;
    if !response.status().is_success() {
        return crate::client::decode::<Value>(response)
            .await
            .map(|_| false);
    }
    let mut body = response.bytes_stream();
    let mut buffer = String::new();
    while let Some(chunk) = body.next().await {
        buffer.push_str(&String::from_utf8_lossy(&chunk?).replace("\r\n", "\n"));
        while let Some(end) = buffer.find("\n\n") {
            let frame: String = buffer.drain(..end + 2).collect();
            let Some((event, id, data)) = parse_frame(&frame) else {
                continue;
            };
            if event != "activity" {
                continue;
            }
            let row: Value = serde_json::from_str(&data).context("malformed activity frame")?;
            *last_id = id.or_else(|| row["id"].as_str().map(str::to_string));
            print(&row);
            let ends = matches!(
                row["event_type"].as_str(),
                Some("task_completed" | "task_delivery_failed" | "workspace_failed")
            );
            if ends
                && (row["task_id"].as_str() == Some(task_id)
                    || row["event_type"] == "workspace_failed")
            {
                return Ok(true);
            }
        }
    }
    Ok(false)
}

/// `(event, id, data)` of one SSE frame; `None` for comments only.
fn parse_frame(frame: &str) -> Option<(String, Option<String>, String)> {
    let mut event = "message".to_string();
    let mut id = None;
    let mut data: Vec<&str> = Vec::new();
    let mut any = false;
    for line in frame.lines() {
        if line.starts_with(':') || line.is_empty() {
            continue;
        }
        let (field, value) = line.split_once(':').unwrap_or((line, ""));
        let value = value.strip_prefix(' ').unwrap_or(value);
        any = true;
        match field {
            "event" => event = value.to_string(),
            "id" => id = Some(value.to_string()),
            "data" => data.push(value),
            _ => {}
        }
    }
    any.then(|| (event, id, data.join("\n")))
}

/// The live view's line for one row, or `None` for rows it does not show
/// (allowed requests are counted in the summary instead).
pub fn describe(row: &Value) -> Option<String> {
    let s = |key: &str| row[key].as_str().unwrap_or_default().to_string();
    let d = &row["detail"];
    let n = |key: &str| d[key].as_u64().unwrap_or(0);
    let line = match row["event_type"].as_str()? {
        "workspace_created" => format!("workspace {} created", s("workspace_id")),
        "workspace_provisioned" => "workspace ready (sandbox up, egress proxy bound)".to_string(),
        "workspace_failed" => format!("workspace failed: {}", s("reason")),
        "task_submitted" => format!("task {} submitted", s("task_id")),
        "task_delivered" => "task delivered to the agent".to_string(),
        "task_delivery_failed" => format!("task delivery failed: {}", s("reason")),
        "task_started" => "task running".to_string(),
        "iteration_completed" => {
            let tools: Vec<&str> = d["tool_names"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            format!(
                "  iteration {} · {} · {} tokens in / {} out{}",
                n("iteration"),
                d["stop_reason"].as_str().unwrap_or("-"),
                n("input_tokens"),
                n("output_tokens"),
                if tools.is_empty() {
                    String::new()
                } else {
                    format!(" · tools: {}", tools.join(", "))
                }
            )
        }
        "tool_executed" => format!(
            "    tool {} exited {} ({} ms)",
            d["tool"].as_str().unwrap_or("?"),
            d["exit_code"]
                .as_i64()
                .map(|c| c.to_string())
                .unwrap_or_else(|| "-".into()),
            n("duration_ms")
        ),
        "policy_decision" if row["decision"] == "deny" => format!(
            "  DENIED {} {}{} ({})",
            if s("method").is_empty() {
                "DNS".to_string()
            } else {
                s("method")
            },
            s("destination"),
            s("path"),
            s("reason")
        ),
        "task_cancel_requested" => "task cancel requested".to_string(),
        "task_completed" => format!(
            "task {}{}{}",
            d["status"].as_str().unwrap_or("ended"),
            d["reason"]
                .as_str()
                .filter(|r| !r.is_empty())
                .map(|r| format!(" ({r})"))
                .unwrap_or_default(),
            d["result"]
                .as_str()
                .map(|r| format!("\n  result: {r}"))
                .unwrap_or_default()
        ),
        _ => return None,
    };
    Some(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_parse_event_id_and_multiline_data() {
        let (event, id, data) =
            parse_frame("event: activity\nid: 01\ndata: {\"a\":\ndata: 1}\n\n").unwrap();
        assert_eq!(
            (event.as_str(), id.as_deref(), data.as_str()),
            ("activity", Some("01"), "{\"a\":\n1}")
        );
        assert!(parse_frame(": heartbeat\n\n").is_none());
    }
}
