//! One module per verb.

pub mod admin;
pub mod audit;
pub mod caps;
pub mod demo;
pub mod login;
pub mod run;
pub mod up;
pub mod ws;

/// How results are printed: human text by default, JSON with `-o json`.
#[derive(Debug, Clone, Copy)]
pub struct Output {
    pub json: bool,
}

impl Output {
    /// Prints `value` as pretty JSON, or `human` otherwise.
    pub fn print(
        &self,
        value: &serde_json::Value,
        human: impl FnOnce(&serde_json::Value) -> String,
    ) {
        if self.json {
            println!(
                "{}",
                serde_json::to_string_pretty(value).expect("json values print")
            );
        } else {
            println!("{}", human(value));
        }
    }
}
