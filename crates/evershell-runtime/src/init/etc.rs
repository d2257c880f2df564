//! The sandbox's generated `/etc`: identity files naming the agent user,
//! name resolution pointed at the workspace resolver, and a trust store of
//! the host's public roots plus the platform CA. A few public, static host
//! files are copied (the dynamic linker cache, service and protocol tables,
//! the alternatives links into `/usr`); nothing else of the host `/etc`.

use std::fs;
use std::io;
use std::os::unix::fs::symlink;
use std::path::Path;

use super::{step, SetupError};
use crate::config::AGENT_ID;
use crate::plan::InitPlan;

/// The trust bundle inside; every CA variable of the command points here.
pub(crate) const CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// The host's bundle of public roots (Debian layout).
const HOST_CA_BUNDLE: &str = "/etc/ssl/certs/ca-certificates.crt";

/// Host files copied as they are: links are recreated, regular files
/// copied. All are public and contain nothing about this host's users.
const HOST_COPIES: [&str; 6] = [
    "ld.so.cache",
    "protocols",
    "services",
    "ssl/openssl.cnf",
    "os-release",
    "localtime",
];

/// Host directories whose symbolic links are recreated (their targets lie
/// under `/usr`): hashed certificate links, and Debian's alternatives.
const HOST_LINK_DIRS: [&str; 2] = ["ssl/certs", "alternatives"];

/// Writes the whole `/etc` under `etc` (host path of the new root's /etc).
pub(super) fn write(etc: &Path, plan: &InitPlan) -> Result<(), SetupError> {
    fs::create_dir_all(etc.join("ssl/certs")).map_err(step("create /etc"))?;
    let shell = if Path::new("/usr/bin/bash").exists() {
        "/bin/bash"
    } else {
        "/bin/sh"
    };
    for (name, contents) in generated(&plan.hostname, shell) {
        fs::write(etc.join(name), contents).map_err(step(format!("write /etc/{name}")))?;
    }

    let host_bundle = match fs::read_to_string(HOST_CA_BUNDLE) {
        Ok(bundle) => Some(bundle),
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(step("read host ca bundle")(e)),
    };
    let bundle = trust_bundle(host_bundle.as_deref(), &plan.ca_pem);
    let inside = CA_BUNDLE.trim_start_matches("/etc/");
    fs::write(etc.join(inside), bundle).map_err(step("write ca bundle"))?;
    fs::write(
        etc.join("ssl/certs/evershell-platform-ca.pem"),
        &plan.ca_pem,
    )
    .map_err(step("write platform ca"))?;

    for dir in HOST_LINK_DIRS {
        copy_links(&Path::new("/etc").join(dir), &etc.join(dir))
            .map_err(step(format!("copy /etc/{dir} links")))?;
    }
    for name in HOST_COPIES {
        copy_entry(&Path::new("/etc").join(name), &etc.join(name))
            .map_err(step(format!("copy /etc/{name}")))?;
    }
    Ok(())
}

/// The generated identity and resolution files, by name under /etc.
pub(super) fn generated(hostname: &str, shell: &str) -> Vec<(&'static str, String)> {
    let id = AGENT_ID;
    vec![
        (
            "passwd",
            format!(
                "root:x:0:0:root:/root:/usr/sbin/nologin\n\
                 agent:x:{id}:{id}:agent:/home/agent:{shell}\n\
                 nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
            ),
        ),
        (
            "group",
            format!("root:x:0:\nagent:x:{id}:\nnogroup:x:65534:\n"),
        ),
        ("hostname", format!("{hostname}\n")),
        (
            "hosts",
            format!(
                "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n\
                 127.0.1.1\t{hostname}\n"
            ),
        ),
        // The workspace resolver: any address reaches it, see netns.
        ("resolv.conf", "nameserver 127.0.0.1\n".to_owned()),
        (
            "nsswitch.conf",
            "passwd: files\ngroup: files\nshadow: files\nhosts: files dns\n\
             networks: files\nprotocols: files\nservices: files\n"
                .to_owned(),
        ),
    ]
}

/// The host's public roots (if any) followed by the platform CA, each
/// ending with a newline.
pub(super) fn trust_bundle(host: Option<&str>, platform_ca_pem: &str) -> String {
    let mut bundle = String::new();
    for part in host.into_iter().chain([platform_ca_pem]) {
        bundle.push_str(part);
        if !part.ends_with('\n') {
            bundle.push('\n');
        }
    }
    bundle
}

/// Recreates every symbolic link of `host_dir` in `dir`, skipping names
/// already written. A missing host directory is not an error.
fn copy_links(host_dir: &Path, dir: &Path) -> io::Result<()> {
    let entries = match fs::read_dir(host_dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    fs::create_dir_all(dir)?;
    for entry in entries {
        let entry = entry?;
        let to = dir.join(entry.file_name());
        if entry.file_type()?.is_symlink() && fs::symlink_metadata(&to).is_err() {
            symlink(fs::read_link(entry.path())?, to)?;
        }
    }
    Ok(())
}

/// Copies one host file or link; a missing one is not an error.
fn copy_entry(host: &Path, to: &Path) -> io::Result<()> {
    let meta = match fs::symlink_metadata(host) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)?;
    }
    if meta.is_symlink() {
        symlink(fs::read_link(host)?, to)
    } else if meta.is_file() {
        fs::copy(host, to).map(drop)
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwd_names_the_agent_with_its_home_and_shell() {
        let files = generated("ws-1", "/bin/bash");
        let passwd = &files
            .iter()
            .find(|(n, _)| *n == "passwd")
            .expect("passwd")
            .1;
        assert!(passwd.contains("agent:x:1000:1000:agent:/home/agent:/bin/bash\n"));
    }

    #[test]
    fn resolver_and_hosts_point_inside_the_namespace() {
        let files = generated("ws-1", "/bin/sh");
        let get = |name| &files.iter().find(|(n, _)| *n == name).expect("file").1;
        assert_eq!(get("resolv.conf"), "nameserver 127.0.0.1\n");
        assert!(get("hosts").contains("127.0.1.1\tws-1\n"));
        assert!(get("nsswitch.conf").contains("hosts: files dns\n"));
    }

    #[test]
    fn trust_bundle_appends_the_platform_ca_after_host_roots() {
        let bundle = trust_bundle(Some("HOST"), "PLATFORM\n");
        assert_eq!(bundle, "HOST\nPLATFORM\n");
        assert_eq!(trust_bundle(None, "PLATFORM"), "PLATFORM\n");
    }
}
