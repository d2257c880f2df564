//! Identifiers: prefixed ULIDs for resources, UUIDv7 for audit rows.

/// The prefix of every resource kind, as documented (`ws_`, `task_`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Workspace,
    Task,
    Role,
    Provider,
    Pack,
    Credential,
    ApiKey,
    Membership,
    Org,
    User,
}

impl Kind {
    pub fn prefix(self) -> &'static str {
        match self {
            Kind::Workspace => "ws_",
            Kind::Task => "task_",
            Kind::Role => "role_",
            Kind::Provider => "prov_",
            Kind::Pack => "pack_",
            Kind::Credential => "cred_",
            Kind::ApiKey => "key_",
            Kind::Membership => "mem_",
            Kind::Org => "org_",
            Kind::User => "usr_",
        }
    }
}

/// A new identifier of `kind`: its prefix followed by a ULID, so ids sort by
/// creation time.
pub fn new_id(kind: Kind) -> String {
    format!("{}{}", kind.prefix(), ulid::Ulid::new())
}

/// A new audit row id (UUIDv7, time-ordered).
pub fn new_audit_id() -> uuid::Uuid {
    uuid::Uuid::now_v7()
}

/// A random request id, carried in `x-request-id` and in error bodies.
pub fn new_request_id() -> String {
    format!("req_{}", ulid::Ulid::new())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_carry_their_kind_prefix_and_sort_by_time() {
        let a = new_id(Kind::Workspace);
        let b = new_id(Kind::Workspace);
        assert!(a.starts_with("ws_") && a.len() == 3 + 26);
        assert!(a < b || a[..13] == b[..13]);
    }
}
