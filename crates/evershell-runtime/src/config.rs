//! What a caller tells the runtime: where workspaces live on the host, what
//! one sandbox runs, and the resource limits every sandbox gets.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::RuntimeError;

/// Host-side settings shared by every sandbox of one runtime.
#[derive(Debug, Clone)]
pub struct LocalRuntimeConfig {
    /// Host directory holding one subdirectory per workspace.
    pub root: PathBuf,
    /// The multi-call `evershell` binary. It provides the `sandbox-init`
    /// entry and is bind-mounted read-only inside at
    /// `/.evershell/bin/evershell`.
    pub exe: PathBuf,
    /// PEM of the platform CA, appended to the sandbox trust store.
    pub ca_pem: String,
}

/// One sandbox run of a workspace.
#[derive(Clone)]
pub struct SandboxSpec {
    /// Workspace id; also the name of its directory under the runtime root,
    /// so it must be a plain file name (`[A-Za-z0-9._-]`, at most 128 bytes).
    pub workspace_id: String,
    /// Unprivileged host uid, and gid, the agent runs as (never 0). Inside,
    /// it appears as uid and gid 1000 (`agent`).
    pub uid: u32,
    /// Host name inside the sandbox (RFC 1123, at most 64 bytes).
    pub hostname: String,
    /// TCP ports besides 443 and 80 that get a plain-HTTP listener.
    pub extra_tcp_ports: Vec<u16>,
    /// Extra environment of the command; an entry overrides the defaults
    /// (`HOME`, `USER`, `PATH`, the CA bundle variables) of the same name.
    pub env: Vec<(String, String)>,
    /// Argument vector run inside as the agent user, cwd `/workspace`. A
    /// program name without `/` is looked up in the command's `PATH`.
    pub command: Vec<String>,
}

/// Resource limits applied to every process of a sandbox, as rlimits (this
/// host has no cgroup v2). Each limit is per process except
/// `max_processes`, which counts every process and thread of the agent uid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Limits {
    /// `RLIMIT_NPROC`: processes and threads of the agent uid.
    pub max_processes: u64,
    /// `RLIMIT_NOFILE`: open file descriptors per process.
    pub max_open_files: u64,
    /// `RLIMIT_AS`: virtual memory per process, in bytes.
    pub max_address_space_bytes: u64,
}

/// Host directories of one workspace. They persist across sandbox restarts;
/// each subdirectory is owned by the workspace's host uid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WorkspacePaths {
    /// `<runtime root>/<workspace id>`, owned by root, mode 0700.
    pub root: PathBuf,
    /// Mounted at `/workspace`.
    pub workspace: PathBuf,
    /// Mounted at `/data`.
    pub data: PathBuf,
    /// Mounted at `/home/agent`.
    pub home: PathBuf,
    /// Mounted at `/tmp`.
    pub tmp: PathBuf,
    /// Mounted at `/run/evershell`; holds the agent socket.
    pub run: PathBuf,
}

/// Uid and gid of the agent user inside the sandbox.
pub(crate) const AGENT_ID: u32 = 1000;

impl fmt::Debug for SandboxSpec {
    /// Environment values may carry credentials: only their names print.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let env_names: Vec<&str> = self.env.iter().map(|(k, _)| k.as_str()).collect();
        f.debug_struct("SandboxSpec")
            .field("workspace_id", &self.workspace_id)
            .field("uid", &self.uid)
            .field("hostname", &self.hostname)
            .field("extra_tcp_ports", &self.extra_tcp_ports)
            .field("env", &env_names)
            .field("command", &self.command)
            .finish()
    }
}

impl SandboxSpec {
    /// Rejects a spec that could escape its directory, run as root or not
    /// survive the trip to `execve`.
    pub(crate) fn validate(&self) -> Result<(), RuntimeError> {
        let invalid = |reason| RuntimeError::InvalidSpec {
            workspace: self.workspace_id.clone(),
            reason,
        };
        if !is_file_name(&self.workspace_id) {
            return Err(invalid("workspace id is not a plain file name"));
        }
        if self.uid == 0 || self.uid == u32::MAX {
            return Err(invalid("uid must be an unprivileged host uid"));
        }
        if !is_hostname(&self.hostname) {
            return Err(invalid("hostname is not an RFC 1123 host name"));
        }
        if self.extra_tcp_ports.iter().any(|&p| p == 0 || p == 53) {
            return Err(invalid("extra tcp ports cannot be 0 or 53"));
        }
        if self.command.is_empty() || self.command[0].is_empty() {
            return Err(invalid("command is empty"));
        }
        if self.command.iter().any(|a| a.contains('\0')) {
            return Err(invalid("command contains a nul byte"));
        }
        let bad_env =
            |(k, v): &(String, String)| k.is_empty() || k.contains(['=', '\0']) || v.contains('\0');
        if self.env.iter().any(bad_env) {
            return Err(invalid("environment entry is malformed"));
        }
        Ok(())
    }
}

impl Default for Limits {
    /// 2048 processes, 4096 files, 16 GiB of address space: room for
    /// compilers and language runtimes that reserve large virtual areas.
    fn default() -> Self {
        Limits {
            max_processes: 2048,
            max_open_files: 4096,
            max_address_space_bytes: 16 << 30,
        }
    }
}

impl WorkspacePaths {
    /// The layout under `<root>/<workspace id>`. Pure: creates nothing.
    pub(crate) fn under(root: &Path, workspace_id: &str) -> Self {
        let root = root.join(workspace_id);
        WorkspacePaths {
            workspace: root.join("workspace"),
            data: root.join("data"),
            home: root.join("home"),
            tmp: root.join("tmp"),
            run: root.join("run"),
            root,
        }
    }

    /// File receiving the sandbox's stdout and stderr, truncated at each
    /// start. Written by the agent user, so bounded only by the disk.
    pub fn console_log(&self) -> PathBuf {
        self.root.join("console.log")
    }

    /// Empty directory where sandbox-init mounts the new root before
    /// pivoting into it.
    pub(crate) fn rootfs(&self) -> PathBuf {
        self.root.join("rootfs")
    }

    /// The directories the agent owns, with their mount point inside.
    pub(crate) fn owned_dirs(&self) -> [(&Path, &'static str); 5] {
        [
            (&self.workspace, "workspace"),
            (&self.data, "data"),
            (&self.home, "home/agent"),
            (&self.tmp, "tmp"),
            (&self.run, "run/evershell"),
        ]
    }
}

fn is_file_name(s: &str) -> bool {
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-');
    !s.is_empty() && s.len() <= 128 && s != "." && s != ".." && s.chars().all(allowed)
}

fn is_hostname(s: &str) -> bool {
    let label_ok = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    };
    !s.is_empty() && s.len() <= 64 && s.split('.').all(label_ok)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> SandboxSpec {
        SandboxSpec {
            workspace_id: "ws_01".into(),
            uid: 200_001,
            hostname: "ws-01".into(),
            extra_tcp_ports: vec![8080],
            env: vec![("TOKEN".into(), "secret-value".into())],
            command: vec!["true".into()],
        }
    }

    #[test]
    fn accepts_a_plain_spec() {
        spec().validate().expect("valid");
    }

    #[test]
    fn rejects_workspace_ids_that_name_other_directories() {
        for id in ["", ".", "..", "a/b", "../x", "a b"] {
            let s = SandboxSpec {
                workspace_id: id.into(),
                ..spec()
            };
            assert!(s.validate().is_err(), "{id:?} accepted");
        }
    }

    #[test]
    fn rejects_root_uid_and_bad_hostnames() {
        assert!(SandboxSpec { uid: 0, ..spec() }.validate().is_err());
        for h in ["", "-a", "a_b", "a..b", &"x".repeat(65)] {
            let s = SandboxSpec {
                hostname: h.into(),
                ..spec()
            };
            assert!(s.validate().is_err(), "{h:?} accepted");
        }
    }

    #[test]
    fn rejects_port_53_and_malformed_environment() {
        assert!(SandboxSpec {
            extra_tcp_ports: vec![53],
            ..spec()
        }
        .validate()
        .is_err());
        let env = vec![("A=B".into(), "c".into())];
        assert!(SandboxSpec { env, ..spec() }.validate().is_err());
        assert!(SandboxSpec {
            command: vec![],
            ..spec()
        }
        .validate()
        .is_err());
    }

    #[test]
    fn debug_output_hides_environment_values() {
        let shown = format!("{:?}", spec());
        assert!(shown.contains("TOKEN"));
        assert!(!shown.contains("secret-value"));
    }
}
