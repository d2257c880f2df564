//! What the agent sees of the file system and of itself.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use evershell_runtime::Limits;

use crate::support::{Fixture, PLATFORM_CA};

#[test]
fn agent_runs_as_uid_1000_in_a_user_namespace_mapped_to_the_host_uid() {
    let fx = Fixture::new();
    let script = "id -u; id -g; id -un; cat /proc/self/uid_map; cat /proc/self/gid_map";
    let (code, out) = fx.run("ws-ident", 200_101, script);
    assert_eq!(code, 0, "{out}");
    let lines: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        lines[..3],
        [vec!["1000"], vec!["1000"], vec!["agent"]],
        "{out}"
    );
    assert_eq!(lines[3], ["1000", "200101", "1"], "{out}");
    assert_eq!(lines[4], ["1000", "200101", "1"], "{out}");
}

#[test]
fn configured_limits_apply_to_the_agent() {
    let mut fx = Fixture::new();
    let limits = Limits {
        max_processes: 300,
        max_open_files: 512,
        ..Limits::default()
    };
    fx.runtime = fx.runtime.clone().with_limits(limits);
    let script = "awk '/^Max (processes|open files|core)/ { print $(NF-2) }' /proc/self/limits";
    let (code, out) = fx.run("ws-limits", 200_107, script);
    assert_eq!((code, out.as_str()), (0, "0\n300\n512\n"));
}

#[test]
fn host_paths_outside_the_allowed_set_are_not_visible() {
    let fx = Fixture::new();
    fs::write(fx.dir.path().join("secret"), "host secret").expect("write secret");
    assert!(Path::new("/root").is_dir(), "the host has /root");

    let root = fx.root();
    let script = format!(
        "cat /root/x 2>/dev/null && exit 10
         cat {secret} 2>/dev/null && exit 11
         for p in /root /var /sys /srv /opt /mnt /boot /home/root {dir} {root}; do
           test -e \"$p\" && echo \"visible: $p\"
         done
         ls /home; ls /run; ls /etc | tr '\\n' ' '",
        secret = fx.dir.path().join("secret").display(),
        dir = fx.dir.path().display(),
        root = root.display(),
    );
    let (code, out) = fx.run("ws-hidden", 200_102, &script);
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("visible:"), "{out}");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("agent"), "{out}");
    assert_eq!(lines.next(), Some("evershell"), "{out}");
    let etc = lines.next().unwrap_or_default();
    for absent in ["shadow", "sudoers", "ssh", "machine-id"] {
        assert!(
            !etc.split(' ').any(|e| e == absent),
            "/etc/{absent} visible: {etc}"
        );
    }
}

#[test]
fn system_directories_are_read_only_and_agent_directories_writable() {
    let fx = Fixture::new();
    let script = "
        for p in /usr/x /etc/x /x /bin/x /.evershell/x /dev/x; do
          touch $p 2>/dev/null && echo \"wrote $p\"
        done
        for d in /workspace /data /tmp /home/agent /run/evershell /dev/shm; do
          touch $d/ok || echo \"cannot write $d\"
        done
        test -x /.evershell/bin/evershell || echo 'no evershell binary'
        exit 0";
    let (code, out) = fx.run("ws-rw", 200_103, script);
    assert_eq!(code, 0, "{out}");
    assert_eq!(out, "", "unexpected writes or failures");
}

#[test]
fn workspace_files_persist_into_the_next_sandbox_of_the_workspace() {
    let fx = Fixture::new();
    let (code, out) = fx.run("ws-persist", 200_104, "echo kept > /workspace/note");
    assert_eq!(code, 0, "{out}");

    let host_file = fx.runtime.paths("ws-persist").workspace.join("note");
    let meta = fs::metadata(&host_file).expect("note exists on the host");
    assert_eq!((meta.uid(), meta.gid()), (200_104, 200_104));

    let (code, out) = fx.run("ws-persist", 200_104, "cat /workspace/note");
    assert_eq!((code, out.as_str()), (0, "kept\n"));
}

#[test]
fn host_processes_are_not_visible() {
    let fx = Fixture::new();
    let script = "ls /proc | grep -c '^[0-9]*$'; tr '\\0' ' ' < /proc/1/cmdline";
    let (code, out) = fx.run("ws-procs", 200_105, script);
    assert_eq!(code, 0, "{out}");
    let mut lines = out.lines();
    let count: u32 = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .expect("a count");
    // init, sh, ls, grep (and nothing of the host).
    assert!(count <= 4, "{count} processes visible:\n{out}");
    assert!(
        lines.next().is_some_and(|l| l.contains("sandbox-init")),
        "{out}"
    );
}

#[test]
fn trust_store_and_environment_name_the_platform_ca() {
    let fx = Fixture::new();
    let script = "hostname; echo $HOME $USER $SSL_CERT_FILE $NODE_EXTRA_CA_CERTS $EVERSHELL_TEST
                  pwd; cat /etc/ssl/certs/ca-certificates.crt";
    let (code, out) = fx.run("ws-ca", 200_106, script);
    assert_eq!(code, 0, "{out}");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("sandbox-test"));
    let bundle = "/etc/ssl/certs/ca-certificates.crt";
    let expected_env = format!("/home/agent agent {bundle} {bundle} 1");
    assert_eq!(lines.next(), Some(expected_env.as_str()));
    assert_eq!(lines.next(), Some("/workspace"));
    assert!(
        out.ends_with(PLATFORM_CA),
        "platform CA is not last in the bundle"
    );
    if Path::new(bundle).exists() {
        assert!(
            out.matches("BEGIN CERTIFICATE").count() > 1,
            "host roots missing"
        );
    }
}
