//! Sparkplug B topic names: `spBv1.0/{group_id}/{message_type}/{edge_node_id}[/{device_id}]`
//! and the v3.0 host application state topic `spBv1.0/STATE/{host_id}`.
//!
//! Parsing checks what the specification requires of a topic name: the `spBv1.0` namespace,
//! a known message type, non-empty ids without the MQTT wildcards `+` and `#`, a device id on
//! exactly the `D*` message types, and no extra levels.

use std::fmt;

/// The namespace every Sparkplug B topic starts with.
pub const NAMESPACE: &str = "spBv1.0";

/// The message type, the third topic level (`STATE` is the second in a state topic).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageType {
    /// Edge node birth certificate.
    NBirth,
    /// Edge node death certificate (the MQTT will).
    NDeath,
    /// Device birth certificate.
    DBirth,
    /// Device death certificate.
    DDeath,
    /// Edge node data.
    NData,
    /// Device data.
    DData,
    /// Command to an edge node.
    NCmd,
    /// Command to a device.
    DCmd,
    /// Host application state (JSON payload, not protobuf).
    State,
}

impl MessageType {
    /// Every message type, in specification order.
    pub const ALL: [MessageType; 9] = [
        MessageType::NBirth,
        MessageType::NDeath,
        MessageType::DBirth,
        MessageType::DDeath,
        MessageType::NData,
        MessageType::DData,
        MessageType::NCmd,
        MessageType::DCmd,
        MessageType::State,
    ];

    /// The name as written in a topic, e.g. `NBIRTH`.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::NBirth => "NBIRTH",
            MessageType::NDeath => "NDEATH",
            MessageType::DBirth => "DBIRTH",
            MessageType::DDeath => "DDEATH",
            MessageType::NData => "NDATA",
            MessageType::DData => "DDATA",
            MessageType::NCmd => "NCMD",
            MessageType::DCmd => "DCMD",
            MessageType::State => "STATE",
        }
    }

    /// Parses a topic level (case-sensitive, as the specification writes it).
    pub fn parse(s: &str) -> Option<MessageType> {
        MessageType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// True for the `D*` types, whose topic must name a device.
    pub fn is_device(self) -> bool {
        matches!(
            self,
            MessageType::DBirth | MessageType::DDeath | MessageType::DData | MessageType::DCmd
        )
    }

    /// True for the types an edge node publishes with a `seq` (NBIRTH starts the sequence;
    /// NDEATH and the commands carry none).
    pub fn carries_seq(self) -> bool {
        matches!(
            self,
            MessageType::NBirth
                | MessageType::NData
                | MessageType::DBirth
                | MessageType::DData
                | MessageType::DDeath
        )
    }
}

impl fmt::Display for MessageType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A parsed topic name.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Topic {
    /// An edge node or device topic (every type but STATE).
    Edge(EdgeTopic),
    /// `spBv1.0/STATE/{host_id}`.
    State {
        /// The host application id.
        host_id: String,
    },
}

/// `spBv1.0/{group_id}/{message_type}/{edge_node_id}[/{device_id}]`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EdgeTopic {
    /// Group id.
    pub group_id: String,
    /// Message type (never [`MessageType::State`]).
    pub message_type: MessageType,
    /// Edge node id.
    pub edge_node_id: String,
    /// Device id: present exactly for the `D*` types.
    pub device_id: Option<String>,
}

impl Topic {
    /// The message type.
    pub fn message_type(&self) -> MessageType {
        match self {
            Topic::Edge(t) => t.message_type,
            Topic::State { .. } => MessageType::State,
        }
    }

    /// The edge node/device part, `None` for STATE.
    pub fn edge(&self) -> Option<&EdgeTopic> {
        match self {
            Topic::Edge(t) => Some(t),
            Topic::State { .. } => None,
        }
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Topic::State { host_id } => write!(f, "{NAMESPACE}/STATE/{host_id}"),
            Topic::Edge(t) => {
                write!(
                    f,
                    "{NAMESPACE}/{}/{}/{}",
                    t.group_id, t.message_type, t.edge_node_id
                )?;
                if let Some(d) = &t.device_id {
                    write!(f, "/{d}")?;
                }
                Ok(())
            }
        }
    }
}

/// Why a topic name is not a Sparkplug B topic.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum TopicError {
    /// Longer than [`crate::Limits::max_topic_bytes`].
    #[error("topic is {size} bytes, the limit max_topic_bytes is {max}")]
    TooLong {
        /// Topic length in bytes.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// The first level is not `spBv1.0`.
    #[error("topic namespace is {found:?}, expected \"spBv1.0\"")]
    Namespace {
        /// The first level as found.
        found: String,
    },
    /// Fewer levels than the message type needs.
    #[error("topic has {levels} levels, {what} needs {min}")]
    TooFewLevels {
        /// Levels found.
        levels: usize,
        /// What was being parsed, e.g. `an edge node topic`.
        what: &'static str,
        /// Levels required.
        min: usize,
    },
    /// More levels than the message type allows.
    #[error("topic has {levels} levels, a {message_type} topic has at most {max}")]
    TooManyLevels {
        /// Levels found.
        levels: usize,
        /// The message type.
        message_type: MessageType,
        /// Levels allowed.
        max: usize,
    },
    /// The message type level is not one of the nine types.
    #[error("unknown message type {found:?}")]
    UnknownMessageType {
        /// The level as found.
        found: String,
    },
    /// A `D*` topic without a device id.
    #[error("{message_type} topic has no device_id")]
    MissingDevice {
        /// The message type.
        message_type: MessageType,
    },
    /// An id level is empty or holds an MQTT wildcard.
    #[error("{level} {value:?} is invalid: {reason}")]
    InvalidId {
        /// Which level, e.g. `group_id`.
        level: &'static str,
        /// The value as found.
        value: String,
        /// Why, e.g. `empty`.
        reason: &'static str,
    },
}

impl TopicError {
    /// A short machine-readable reason, for a metrics label.
    pub fn reason(&self) -> &'static str {
        match self {
            TopicError::TooLong { .. } => "topic_too_long",
            TopicError::Namespace { .. } => "topic_namespace",
            TopicError::TooFewLevels { .. } => "topic_too_few_levels",
            TopicError::TooManyLevels { .. } => "topic_too_many_levels",
            TopicError::UnknownMessageType { .. } => "topic_unknown_type",
            TopicError::MissingDevice { .. } => "topic_missing_device",
            TopicError::InvalidId { .. } => "topic_invalid_id",
        }
    }
}

fn check_id(level: &'static str, value: &str) -> Result<(), TopicError> {
    let reason = if value.is_empty() {
        "empty"
    } else if value.contains(['+', '#']) {
        "contains an MQTT wildcard (+ or #)"
    } else {
        return Ok(());
    };
    Err(TopicError::InvalidId {
        level,
        value: value.to_owned(),
        reason,
    })
}

/// Parses a topic name, refusing names longer than `max_bytes`.
pub fn parse(topic: &str, max_bytes: usize) -> Result<Topic, TopicError> {
    if topic.len() > max_bytes {
        return Err(TopicError::TooLong {
            size: topic.len(),
            max: max_bytes,
        });
    }
    let levels: Vec<&str> = topic.split('/').collect();
    let n = levels.len();
    let ns = levels.first().copied().unwrap_or_default();
    if ns != NAMESPACE {
        return Err(TopicError::Namespace {
            found: ns.to_owned(),
        });
    }
    if levels.get(1) == Some(&"STATE") {
        return match levels.as_slice() {
            [_, _, host] => {
                check_id("host_id", host)?;
                Ok(Topic::State {
                    host_id: (*host).to_owned(),
                })
            }
            [_, _] => Err(TopicError::TooFewLevels {
                levels: n,
                what: "a STATE topic",
                min: 3,
            }),
            _ => Err(TopicError::TooManyLevels {
                levels: n,
                message_type: MessageType::State,
                max: 3,
            }),
        };
    }
    let (group, kind, node, device) = match levels.as_slice() {
        [_, g, k, e] => (*g, *k, *e, None),
        [_, g, k, e, d] => (*g, *k, *e, Some(*d)),
        [_, _, k, ..] if n > 5 => {
            // Name the type when it is known: "a DDATA topic has at most 5 levels".
            return Err(match MessageType::parse(k) {
                Some(t) => TopicError::TooManyLevels {
                    levels: n,
                    message_type: t,
                    max: if t.is_device() { 5 } else { 4 },
                },
                None => TopicError::UnknownMessageType {
                    found: (*k).to_owned(),
                },
            });
        }
        _ => {
            return Err(TopicError::TooFewLevels {
                levels: n,
                what: "an edge node topic",
                min: 4,
            });
        }
    };
    let message_type = match MessageType::parse(kind) {
        Some(MessageType::State) | None => {
            return Err(TopicError::UnknownMessageType {
                found: kind.to_owned(),
            });
        }
        Some(t) => t,
    };
    check_id("group_id", group)?;
    check_id("edge_node_id", node)?;
    match (message_type.is_device(), device) {
        (true, None) => return Err(TopicError::MissingDevice { message_type }),
        (false, Some(_)) => {
            return Err(TopicError::TooManyLevels {
                levels: n,
                message_type,
                max: 4,
            });
        }
        (true, Some(d)) => check_id("device_id", d)?,
        (false, None) => {}
    }
    Ok(Topic::Edge(EdgeTopic {
        group_id: group.to_owned(),
        message_type,
        edge_node_id: node.to_owned(),
        device_id: device.map(str::to_owned),
    }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn p(s: &str) -> Result<Topic, TopicError> {
        parse(s, 1024)
    }

    #[test]
    fn every_edge_type_parses_and_prints_back() {
        for t in MessageType::ALL {
            if t == MessageType::State {
                continue;
            }
            let s = if t.is_device() {
                format!("spBv1.0/G1/{t}/E1/D1")
            } else {
                format!("spBv1.0/G1/{t}/E1")
            };
            let topic = p(&s).unwrap();
            assert_eq!(topic.message_type(), t);
            let e = topic.edge().unwrap();
            assert_eq!(e.group_id, "G1");
            assert_eq!(e.edge_node_id, "E1");
            assert_eq!(e.device_id.as_deref(), t.is_device().then_some("D1"));
            assert_eq!(topic.to_string(), s);
        }
    }

    #[test]
    fn state_topic() {
        let t = p("spBv1.0/STATE/scada-1").unwrap();
        assert_eq!(
            t,
            Topic::State {
                host_id: "scada-1".into()
            }
        );
        assert_eq!(t.to_string(), "spBv1.0/STATE/scada-1");
        assert!(matches!(
            p("spBv1.0/STATE/a/b"),
            Err(TopicError::TooManyLevels { max: 3, .. })
        ));
        assert!(matches!(
            p("spBv1.0/STATE"),
            Err(TopicError::TooFewLevels { .. })
        ));
        assert!(matches!(
            p("spBv1.0/STATE/"),
            Err(TopicError::InvalidId {
                level: "host_id",
                ..
            })
        ));
    }

    #[test]
    fn errors_name_the_problem() {
        let e = p("spAv1.0/G/NDATA/E").unwrap_err();
        assert_eq!(
            e.to_string(),
            "topic namespace is \"spAv1.0\", expected \"spBv1.0\""
        );
        let e = p("spBv1.0/G/DDATA/E").unwrap_err();
        assert_eq!(
            e,
            TopicError::MissingDevice {
                message_type: MessageType::DData
            }
        );
        assert_eq!(e.to_string(), "DDATA topic has no device_id");
        let e = p("spBv1.0/G/NDATA/E/D").unwrap_err();
        assert!(e.to_string().contains("NDATA topic has at most 4"), "{e}");
        let e = p("spBv1.0/G/DDATA/E/D/X").unwrap_err();
        assert!(e.to_string().contains("DDATA topic has at most 5"), "{e}");
        let e = p("spBv1.0/G/ndata/E").unwrap_err();
        assert_eq!(e.to_string(), "unknown message type \"ndata\"");
        let e = p("spBv1.0/G/NDATA").unwrap_err();
        assert_eq!(e.reason(), "topic_too_few_levels");
        let e = p("spBv1.0//NDATA/E").unwrap_err();
        assert_eq!(e.to_string(), "group_id \"\" is invalid: empty");
        let e = p("spBv1.0/G/NDATA/+").unwrap_err();
        assert!(
            e.to_string().starts_with("edge_node_id \"+\" is invalid"),
            "{e}"
        );
        let e = p("spBv1.0/G/DCMD/E/#").unwrap_err();
        assert!(e.to_string().starts_with("device_id"), "{e}");
        assert!(matches!(
            p("spBv1.0/G/STATE/E"),
            Err(TopicError::UnknownMessageType { .. })
        ));
        assert!(matches!(p(""), Err(TopicError::Namespace { .. })));
        assert_eq!(
            parse("spBv1.0/G/NDATA/E", 5).unwrap_err().to_string(),
            "topic is 17 bytes, the limit max_topic_bytes is 5"
        );
    }
}
