//! What the model is told: the system prompt (platform preamble and the
//! role's environment description) and each task's opening message.

use std::path::Path;

use evershell_core::agent::TaskDelivery;

/// Where uploaded files land (`<root>/<task_id>/<name>`), fixed by the
/// workspace layout.
const UPLOADS_ROOT: &str = "/data/uploads";

/// The system prompt of every call of a task.
pub fn system_prompt(workdir: &Path, environment: &str) -> String {
    let mut prompt = format!(
        "You are an autonomous software engineering agent working inside an isolated Evershell \
         workspace: a Linux machine of your own with a shell and a filesystem. Your working \
         directory is {workdir}. Work on the task until it is done, then answer with a short \
         summary of what you did and anything the user should know.\n\n\
         Tools: `bash` runs shell commands; `read_file`, `write_file`, `edit_file` and \
         `list_files` work on files. Prefer `edit_file` for small changes to existing files.\n\n\
         Network access passes through an egress policy that adds credentials on the way out, so \
         never look for or ask for secrets. A request the policy does not allow fails with HTTP \
         403 and a JSON body whose error code is `egress_denied`; do not retry it unchanged — say \
         what you needed instead.\n\n\
         The workspace persists between tasks: the files you leave and this conversation carry \
         over to the next task.",
        workdir = workdir.display()
    );
    let environment = environment.trim();
    if !environment.is_empty() {
        prompt.push_str("\n\n# Environment\n\n");
        prompt.push_str(environment);
    }
    prompt
}

/// The user message that opens a task: its description, and where its
/// uploaded files are.
pub fn task_message(task: &TaskDelivery) -> String {
    let mut text = task.description.clone();
    if !task.uploads.is_empty() {
        let dir = format!("{UPLOADS_ROOT}/{}", task.task_id);
        text.push_str(&format!("\n\nFiles uploaded with this task are in {dir}/:"));
        for name in &task.uploads {
            text.push_str(&format!("\n- {name}"));
        }
    }
    text
}
