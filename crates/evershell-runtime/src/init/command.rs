//! The agent's command: its environment and resolved program, prepared
//! before `ready` is reported so that a missing program fails the start.

use std::ffi::CString;
use std::io;
use std::path::{Path, PathBuf};

use nix::unistd::{access, AccessFlags};

use super::etc::CA_BUNDLE;
use super::{step, SetupError};
use crate::plan::InitPlan;

/// `PATH` of the command unless the spec sets one.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Variables that tell common clients (OpenSSL, Python requests, curl,
/// Node, git, pip) where the trust bundle is.
const CA_VARIABLES: [&str; 6] = [
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "GIT_SSL_CAINFO",
    "PIP_CERT",
];

/// A command ready for `execve`.
pub(super) struct Prepared {
    pub program: CString,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
}

/// Builds the environment and resolves the program in its `PATH` (as the
/// agent, so the check is the one `execve` will make).
pub(super) fn prepare(plan: &InitPlan) -> Result<Prepared, SetupError> {
    let env = environment(&plan.env);
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map_or(DEFAULT_PATH, |(_, v)| v);
    let program = resolve(&plan.command[0], path).ok_or_else(|| {
        let msg = format!("{}: not found or not executable", plan.command[0]);
        step("resolve command")(io::Error::new(io::ErrorKind::NotFound, msg))
    })?;

    let cstring = |s: String| CString::new(s).map_err(step("encode command"));
    Ok(Prepared {
        program: cstring(program.into_os_string().into_string().unwrap_or_default())?,
        argv: plan
            .command
            .iter()
            .cloned()
            .map(cstring)
            .collect::<Result<_, _>>()?,
        envp: env
            .into_iter()
            .map(|(k, v)| cstring(format!("{k}={v}")))
            .collect::<Result<_, _>>()?,
    })
}

/// The defaults, then the spec's entries; a spec entry replaces a default
/// of the same name. Order is stable (defaults first).
pub(super) fn environment(extra: &[(String, String)]) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("HOME", "/home/agent"),
        ("USER", "agent"),
        ("LOGNAME", "agent"),
        ("PATH", DEFAULT_PATH),
        ("LANG", "C.UTF-8"),
    ]
    .into_iter()
    .chain(CA_VARIABLES.map(|name| (name, CA_BUNDLE)))
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();

    for (key, value) in extra {
        match env.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value.clone(),
            None => env.push((key.clone(), value.clone())),
        }
    }
    env
}

/// `program` itself if it contains a slash, else the first executable
/// `dir/program` along `path`.
fn resolve(program: &str, path: &str) -> Option<PathBuf> {
    let executable = |p: &Path| p.is_file() && access(p, AccessFlags::X_OK).is_ok();
    if program.contains('/') {
        let p = PathBuf::from(program);
        return executable(&p).then_some(p);
    }
    path.split(':')
        .filter(|dir| !dir.is_empty())
        .map(|dir| Path::new(dir).join(program))
        .find(|p| executable(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_points_every_ca_variable_at_the_bundle() {
        let env = environment(&[]);
        for name in CA_VARIABLES {
            assert!(
                env.contains(&(name.to_owned(), CA_BUNDLE.to_owned())),
                "{name}"
            );
        }
        assert!(env.contains(&("HOME".to_owned(), "/home/agent".to_owned())));
    }

    #[test]
    fn spec_entries_replace_defaults_and_add_new_names() {
        let extra = [
            ("PATH".to_owned(), "/x".to_owned()),
            ("A".to_owned(), "b".to_owned()),
        ];
        let env = environment(&extra);
        let paths: Vec<_> = env.iter().filter(|(k, _)| k == "PATH").collect();
        assert_eq!(paths, [&("PATH".to_owned(), "/x".to_owned())]);
        assert_eq!(env.last(), Some(&("A".to_owned(), "b".to_owned())));
    }

    #[test]
    fn resolves_programs_along_path_and_keeps_explicit_paths() {
        assert_eq!(
            resolve("sh", "/nonexistent:/bin"),
            Some(PathBuf::from("/bin/sh"))
        );
        assert_eq!(resolve("/bin/sh", ""), Some(PathBuf::from("/bin/sh")));
        assert_eq!(resolve("no-such-program-here", DEFAULT_PATH), None);
    }
}
