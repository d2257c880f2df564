//! `evershell`: runs the platform (`up`, `demo`) and is the client of its
//! `/v1` API. The same binary is mounted into every sandbox, where it runs
//! the sandbox init (`sandbox-init`) and the agent service (`agent`).
#![forbid(unsafe_code)]

use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().collect();
    // The sandbox init must run before any thread exists: it creates
    // namespaces that a multi-threaded process may not enter.
    if args.get(1).map(String::as_str) == Some("sandbox-init") {
        let code = evershell_runtime::sandbox_init_main(args[2..].to_vec());
        return ExitCode::from(u8::try_from(code).unwrap_or(1));
    }
    evershell_cli::main(args)
}
