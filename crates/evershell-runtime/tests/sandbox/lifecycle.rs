//! Starting, exiting and killing sandboxes.

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use evershell_runtime::RuntimeError;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::support::{exe, spec, wait_exit, wait_until, Fixture};

#[test]
fn exit_watch_reports_the_command_exit_code() {
    let fx = Fixture::new();
    let (code, _) = fx.run("ws-exit", 200_301, "exit 7");
    assert_eq!(code, 7);
}

#[test]
fn start_fails_with_the_reason_when_the_command_is_missing() {
    let fx = Fixture::new();
    let mut bad = spec("ws-missing", 200_302, "");
    bad.command = vec!["no-such-program".to_owned()];
    match fx.runtime.start(&bad) {
        Err(RuntimeError::Init { reason, .. }) => assert!(reason.contains("no-such-program")),
        other => panic!("expected an init failure, got {other:?}"),
    }
}

#[test]
fn kill_removes_every_process_of_the_sandbox() {
    let fx = Fixture::new();
    let script = "sleep 100 & sleep 100 & (sleep 100 &) ; touch /workspace/up; wait";
    let mut sandbox = fx.start(&spec("ws-kill", 200_303, script));
    let up = fx.runtime.paths("ws-kill").workspace.join("up");
    wait_until(
        "the sandbox to start its sleeps",
        Duration::from_secs(5),
        || up.exists(),
    );

    let members = pids_in_namespace_of(sandbox.pid());
    assert!(members.len() >= 5, "init, sh and three sleeps: {members:?}");
    sandbox.kill();
    sandbox.kill();

    assert_eq!(*sandbox.exit_watch().borrow(), Some(137));
    for pid in members {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "pid {pid} survived"
        );
    }
}

#[test]
fn sandboxes_die_when_the_server_process_is_killed() {
    let fx = Fixture::new();
    let mut server = Command::new(exe())
        .arg("hold")
        .arg(fx.root())
        .args(["ws-orphan", "200304", "sleep", "100"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn holder");
    let stdout = server.stdout.take().expect("piped stdout");
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("read pid");
    let pid: i32 = line.trim().parse().expect("holder prints the sandbox pid");
    assert!(Path::new(&format!("/proc/{pid}")).exists());

    kill(Pid::from_raw(server.id() as i32), Signal::SIGKILL).expect("kill holder");
    server.wait().expect("reap holder");
    let gone = || !Path::new(&format!("/proc/{pid}")).exists();
    wait_until("the orphaned sandbox to die", Duration::from_secs(5), gone);
}

#[test]
fn restarting_a_workspace_reuses_its_directories() {
    let fx = Fixture::new();
    for _ in 0..2 {
        let mut sandbox = fx.start(&spec("ws-restart", 200_305, "true"));
        assert_eq!(wait_exit(&sandbox, Duration::from_secs(10)), 0);
        sandbox.kill();
    }
}

/// Host pids whose PID namespace is that of `pid`.
fn pids_in_namespace_of(pid: u32) -> Vec<u32> {
    let ns = |p: &str| fs::read_link(format!("/proc/{p}/ns/pid")).ok();
    let target = ns(&pid.to_string()).expect("sandbox pid namespace");
    fs::read_dir("/proc")
        .expect("list /proc")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|name| name.parse::<u32>().is_ok())
        .filter(|name| ns(name).as_ref() == Some(&target))
        .filter_map(|name| name.parse().ok())
        .collect()
}
