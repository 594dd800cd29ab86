//! Per-device policy: topic filters and the entities a device may report.
//!
//! Patterns may contain `{device}`, replaced by the device's id. Uid patterns are exact or
//! end in `*` (prefix match); type patterns are CoT type prefixes (`a-f-G` allows
//! `a-f-G-U-C`). Topic patterns are MQTT filters, matched with the broker's matcher by the
//! caller through [`Policy::publish_filters`] / [`Policy::subscribe_filters`].

use serde::{Deserialize, Serialize};

/// What one device may do. The defaults confine a device to its own topics and to entity
/// uids named after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// Topic filters the device may publish to.
    #[serde(default = "default_publish")]
    pub publish: Vec<String>,
    /// Topic filters the device may subscribe to (its subscription filter must be covered
    /// by one of these: equal, or narrower).
    #[serde(default = "default_subscribe")]
    pub subscribe: Vec<String>,
    /// Entity uids the device may report: exact, or a prefix ending in `*`.
    #[serde(default = "default_uids")]
    pub uids: Vec<String>,
    /// CoT type prefixes the device may report; empty allows every type.
    #[serde(default)]
    pub types: Vec<String>,
}

fn default_publish() -> Vec<String> {
    vec!["rampart/v1/{device}/#".into()]
}

fn default_subscribe() -> Vec<String> {
    vec![
        "rampart/v1/{device}/#".into(),
        "rampart/v1/entities/#".into(),
        "rampart/v1/alerts".into(),
    ]
}

fn default_uids() -> Vec<String> {
    vec!["{device}".into(), "{device}.*".into()]
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            publish: default_publish(),
            subscribe: default_subscribe(),
            uids: default_uids(),
            types: Vec::new(),
        }
    }
}

/// Most patterns of each kind in one policy.
pub const MAX_PATTERNS: usize = 64;
/// Longest pattern.
pub const MAX_PATTERN_LEN: usize = 256;

impl Policy {
    /// Checks the policy's size and patterns; the error names the bad entry.
    pub fn validate(&self) -> Result<(), String> {
        for (name, list) in [
            ("publish", &self.publish),
            ("subscribe", &self.subscribe),
            ("uids", &self.uids),
            ("types", &self.types),
        ] {
            if list.len() > MAX_PATTERNS {
                return Err(format!(
                    "policy.{name} has {} entries, the limit is {MAX_PATTERNS}",
                    list.len()
                ));
            }
            for (i, p) in list.iter().enumerate() {
                if p.is_empty() || p.len() > MAX_PATTERN_LEN {
                    return Err(format!(
                        "policy.{name}[{i}] must be 1 to {MAX_PATTERN_LEN} characters"
                    ));
                }
                if (name == "uids" || name == "types") && p[..p.len() - 1].contains('*') {
                    return Err(format!(
                        "policy.{name}[{i}] {p:?}: `*` is only allowed at the end"
                    ));
                }
            }
        }
        Ok(())
    }

    /// The publish filters with `{device}` replaced.
    pub fn publish_filters(&self, device: &str) -> Vec<String> {
        expand(&self.publish, device)
    }

    /// The subscribe filters with `{device}` replaced.
    pub fn subscribe_filters(&self, device: &str) -> Vec<String> {
        expand(&self.subscribe, device)
    }

    /// True if `device` may report entity `uid`.
    pub fn may_report_uid(&self, device: &str, uid: &str) -> bool {
        self.uids.iter().any(|p| {
            let p = p.replace("{device}", device);
            match p.strip_suffix('*') {
                Some(prefix) => uid.starts_with(prefix),
                None => uid == p,
            }
        })
    }

    /// True if `device` may report entities of CoT type `cot_type`.
    pub fn may_report_type(&self, cot_type: &str) -> bool {
        self.types.is_empty()
            || self.types.iter().any(|p| {
                let p = p.strip_suffix('*').unwrap_or(p);
                cot_type.starts_with(p)
            })
    }
}

fn expand(list: &[String], device: &str) -> Vec<String> {
    list.iter().map(|p| p.replace("{device}", device)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_policy_confines_uids_to_the_device() {
        let p = Policy::default();
        assert!(p.may_report_uid("truck-1", "truck-1"));
        assert!(p.may_report_uid("truck-1", "truck-1.trailer"));
        assert!(!p.may_report_uid("truck-1", "truck-2"));
        assert!(!p.may_report_uid("truck-1", "truck-10"));
        assert!(p.may_report_type("a-h-G"));
        assert_eq!(p.publish_filters("d"), ["rampart/v1/d/#"]);
    }

    #[test]
    fn prefixes_and_types() {
        let p = Policy {
            uids: vec!["unit-*".into()],
            types: vec!["a-f-G".into()],
            ..Policy::default()
        };
        assert!(p.may_report_uid("x", "unit-7"));
        assert!(!p.may_report_uid("x", "x"));
        assert!(p.may_report_type("a-f-G-U-C"));
        assert!(!p.may_report_type("a-h-G"));
        assert!(p.validate().is_ok());
        let bad = Policy {
            uids: vec!["a*b".into()],
            ..Policy::default()
        };
        assert!(bad.validate().unwrap_err().contains("policy.uids[0]"));
    }
}
