//! Stand-alone sandbox launcher, used by the crate's tests as the
//! `exe` of the runtime.
//!
//! - `evershell-sandbox sandbox-init --workspace <id>`: the init entry.
//! - `evershell-sandbox hold <root> <workspace id> <uid> <command>...`:
//!   starts one sandbox, prints its pid, and waits for it; tests kill this
//!   process to play a crashing server.
#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::process::ExitCode;

use evershell_runtime::{sandbox_init_main, LocalRuntime, LocalRuntimeConfig, SandboxSpec};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    match args.get(1).map(String::as_str) {
        Some("sandbox-init") => {
            let code = sandbox_init_main(args);
            ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
        Some("hold") if args.len() > 5 => hold(&args[2..]),
        _ => {
            eprintln!(
                "usage: evershell-sandbox (sandbox-init --workspace ID | hold ROOT ID UID CMD...)"
            );
            ExitCode::from(2)
        }
    }
}

fn hold(args: &[String]) -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("evershell-sandbox: current exe: {e}");
            return ExitCode::FAILURE;
        }
    };
    let Ok(uid) = args[2].parse() else {
        eprintln!("evershell-sandbox: uid is not a number");
        return ExitCode::from(2);
    };
    let cfg = LocalRuntimeConfig {
        root: PathBuf::from(&args[0]),
        exe,
        ca_pem: String::new(),
    };
    let spec = SandboxSpec {
        workspace_id: args[1].clone(),
        uid,
        hostname: "held".into(),
        extra_tcp_ports: vec![],
        env: vec![],
        command: args[3..].to_vec(),
    };
    let mut sandbox = match LocalRuntime::new(cfg).start(&spec) {
        Ok(sandbox) => sandbox,
        Err(e) => {
            eprintln!("evershell-sandbox: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", sandbox.pid());
    let exit = sandbox.exit_watch();
    while exit.borrow().is_none() {
        if exit.has_changed().is_err() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    sandbox.kill();
    ExitCode::SUCCESS
}
