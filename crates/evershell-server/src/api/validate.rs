//! Field validation shared by handlers. Each check adds `path → message` to
//! a [`Fields`] collector so a request reports every bad field at once.

use std::collections::BTreeMap;

use super::error::ApiError;

#[derive(Default)]
pub struct Fields(BTreeMap<String, String>);

impl Fields {
    pub fn add(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.0.entry(path.into()).or_insert_with(|| message.into());
    }

    /// A resource name: `^[a-z][a-z0-9-]{0,62}$`.
    pub fn slug(&mut self, path: &str, value: &str) {
        let ok = value.len() <= 63
            && value.starts_with(|c: char| c.is_ascii_lowercase())
            && value
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
        if !ok {
            self.add(path, "must match ^[a-z][a-z0-9-]{0,62}$");
        }
    }

    /// A plausible email address: one `@` with text on both sides, no
    /// spaces or control characters, at most 254 bytes.
    pub fn email(&mut self, path: &str, value: &str) {
        let ok = value.len() <= 254
            && value.split('@').count() == 2
            && !value.starts_with('@')
            && !value.ends_with('@')
            && !value.chars().any(|c| c.is_whitespace() || c.is_control());
        if !ok {
            self.add(path, "must be an email address");
        }
    }

    pub fn one_of(&mut self, path: &str, value: &str, allowed: &[&str]) {
        if !allowed.contains(&value) {
            self.add(path, format!("must be one of: {}", allowed.join(", ")));
        }
    }

    pub fn non_empty(&mut self, path: &str, value: &str) {
        if value.trim().is_empty() {
            self.add(path, "must not be empty");
        }
    }

    pub fn max_len(&mut self, path: &str, value: &str, max: usize) {
        if value.len() > max {
            self.add(path, format!("must be at most {max} bytes"));
        }
    }

    /// Caps YAML errors of a `capabilities` field, each at its path
    /// (`capabilities[1].allow[0].methods[0]`) with its line and column.
    pub fn caps(&mut self, yaml: &str) {
        if let Err(errors) = evershell_caps::parse(yaml) {
            for (path, message) in errors.fields() {
                self.add(path, message);
            }
        }
    }

    pub fn into_result(self) -> Result<(), ApiError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ApiError::fields(self.0))
        }
    }
}
