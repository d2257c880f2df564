//! The host index: normalised host → the rules whose domain patterns match
//! it, without walking every rule.
//!
//! Exact names and IP literals live in one hash map. Wildcard patterns are
//! bucketed by their suffix (`*.example.com` under `example.com`); a host
//! `a.b.example.com` looks up each of its proper label suffixes, so a
//! lookup costs one probe per label.

use std::collections::HashMap;

use crate::host::{is_ip, HostPattern, Shape};

/// One domain pattern of one rule, as the index stores it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Slot {
    /// Index into the policy's flattened rules (document order).
    pub rule: u32,
    /// The pattern's explicit port, `None` for the scheme default.
    pub port: Option<u16>,
}

#[derive(Debug, Default)]
pub(super) struct HostIndex {
    exact: HashMap<String, Vec<Slot>>,
    one_label: HashMap<String, Vec<Slot>>,
    many_labels: HashMap<String, Vec<Slot>>,
}

impl HostIndex {
    pub(super) fn insert(&mut self, pattern: &HostPattern, rule: u32) {
        let map = match pattern.shape() {
            Shape::Exact => &mut self.exact,
            Shape::OneLabel => &mut self.one_label,
            Shape::ManyLabels => &mut self.many_labels,
        };
        let slot = Slot {
            rule,
            port: pattern.port(),
        };
        map.entry(pattern.host_part().to_owned())
            .or_default()
            .push(slot);
    }

    /// Every slot whose pattern matches the normalised `host`, sorted by
    /// rule (document order), then port.
    pub(super) fn candidates(&self, host: &str) -> Vec<Slot> {
        let mut out: Vec<Slot> = Vec::new();
        if let Some(slots) = self.exact.get(host) {
            out.extend_from_slice(slots);
        }

        if !is_ip(host) {
            let mut rest = host;
            let mut depth = 0;
            while let Some((_, suffix)) = rest.split_once('.') {
                depth += 1;
                if depth == 1 {
                    if let Some(slots) = self.one_label.get(suffix) {
                        out.extend_from_slice(slots);
                    }
                }
                if let Some(slots) = self.many_labels.get(suffix) {
                    out.extend_from_slice(slots);
                }
                rest = suffix;
            }
        }

        out.sort_unstable();
        out.dedup();
        out
    }
}
