//! The high-level entry point: [`Decoder::decode`] turns an MQTT topic name and payload into
//! a [`Message`] whose metrics carry resolved names and typed values, keeping the alias book
//! and `seq` continuity of every edge node between calls.

use crate::error::{Error, MetricError, MetricErrorKind};
use crate::payload::{self, DataType, Limits, PayloadError, Value};
use crate::proto;
use crate::state::{AliasBook, BookLimits, Scope, SeqGap};
use crate::topic::{self, MessageType, Topic};

/// The name of the birth/death sequence metric of NBIRTH and NDEATH.
pub const BD_SEQ: &str = "bdSeq";

/// One metric of a message, its name resolved.
#[derive(Clone, Debug, PartialEq)]
pub struct MetricUpdate {
    /// The metric name (sent, or resolved from the alias registered at birth).
    pub name: String,
    /// The alias, when sent.
    pub alias: Option<u64>,
    /// The data type (sent, else registered at birth, else inferred from the value field).
    pub datatype: DataType,
    /// The value.
    pub value: Value,
    /// The metric's timestamp, else the payload's; ms since the epoch.
    pub timestamp: Option<u64>,
    /// A historical value, not the current state.
    pub is_historical: bool,
    /// A transient value, not to be stored.
    pub is_transient: bool,
}

/// A host application's state (`spBv1.0/STATE/{host_id}`, JSON payload).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HostState {
    /// Whether the host application is online.
    pub online: bool,
    /// The payload timestamp, ms since the epoch.
    pub timestamp: Option<u64>,
}

/// A decoded Sparkplug B message.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    /// The parsed topic.
    pub topic: Topic,
    /// Its message type.
    pub kind: MessageType,
    /// The payload's `seq`.
    pub seq: Option<u8>,
    /// The payload's timestamp, ms since the epoch.
    pub timestamp: Option<u64>,
    /// The payload's `uuid`.
    pub uuid: Option<String>,
    /// The metrics that decoded.
    pub metrics: Vec<MetricUpdate>,
    /// Metrics left out (unknown alias, bad value, …) and birth metrics that could not be
    /// registered (those are still in `metrics`). The rest of the message is unaffected.
    pub metric_errors: Vec<MetricError>,
    /// A break in the edge node's `seq` sequence (messages lost or reordered).
    pub seq_gap: Option<SeqGap>,
    /// The `bdSeq` metric of an NBIRTH or NDEATH.
    pub bd_seq: Option<u64>,
    /// Whether the node/device had a birth on record when this message came: for a DBIRTH,
    /// whether its edge node had; always true for NBIRTH and STATE. Data without a birth
    /// should make the host ask for a rebirth (NCMD `Node Control/Rebirth`).
    pub birth_seen: bool,
    /// An NDEATH whose `bdSeq` is not the current session's: it was ignored, as the
    /// specification requires (the node's aliases are kept).
    pub stale_death: bool,
    /// The scope evicted from the alias book to make room for this birth.
    pub evicted: Option<Scope>,
    /// The host state of a STATE message.
    pub host_state: Option<HostState>,
}

/// Decodes Sparkplug B messages, remembering aliases and sessions. Sans-IO: feed it what the
/// MQTT client received.
#[derive(Debug)]
pub struct Decoder {
    limits: Limits,
    book: AliasBook,
}

impl Default for Decoder {
    fn default() -> Self {
        Decoder::new(Limits::default(), BookLimits::default())
    }
}

impl Decoder {
    /// A decoder with the given bounds.
    pub fn new(limits: Limits, book: BookLimits) -> Self {
        Decoder {
            limits,
            book: AliasBook::new(book),
        }
    }

    /// The payload limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The alias book (sizes, evictions).
    pub fn book(&self) -> &AliasBook {
        &self.book
    }

    /// Decodes one message. Errors refuse the message as a whole; problems with single
    /// metrics are in [`Message::metric_errors`].
    pub fn decode(&mut self, topic: &str, payload: &[u8]) -> Result<Message, Error> {
        let topic = topic::parse(topic, self.limits.max_topic_bytes)?;
        let kind = topic.message_type();
        let mut msg = Message {
            topic,
            kind,
            seq: None,
            timestamp: None,
            uuid: None,
            metrics: Vec::new(),
            metric_errors: Vec::new(),
            seq_gap: None,
            bd_seq: None,
            birth_seen: true,
            stale_death: false,
            evicted: None,
            host_state: None,
        };
        let Topic::Edge(edge) = &msg.topic else {
            let state = host_state(payload, &self.limits)?;
            msg.timestamp = state.timestamp;
            msg.host_state = Some(state);
            return Ok(msg);
        };
        let scope = Scope {
            group_id: edge.group_id.clone(),
            edge_node_id: edge.edge_node_id.clone(),
            device_id: edge.device_id.clone(),
        };
        let node = scope.node();
        let p = payload::decode(payload, &self.limits)?;
        let seq = match p.seq {
            None => None,
            Some(s) => Some(u8::try_from(s).map_err(|_| Error::SeqOutOfRange { seq: s })?),
        };
        msg.seq = seq;
        msg.timestamp = p.timestamp;
        msg.uuid = p.uuid;
        let bd_seq = p
            .metrics
            .iter()
            .find(|m| m.name.as_deref() == Some(BD_SEQ))
            .and_then(|m| match m.value {
                Some(proto::metric::Value::LongValue(v)) => Some(v),
                Some(proto::metric::Value::IntValue(v)) => Some(u64::from(v)),
                _ => None,
            });
        match kind {
            MessageType::NBirth => {
                msg.evicted = self.book.begin_birth(&scope)?;
                self.book.start_seq(&node, seq);
                self.book.set_bd_seq(&node, bd_seq);
                msg.bd_seq = bd_seq;
            }
            MessageType::DBirth => {
                msg.birth_seen = self.book.is_born(&node);
                msg.seq_gap = self.book.observe_seq(&node, seq);
                self.book.touch(&node);
                msg.evicted = self.book.begin_birth(&scope)?;
            }
            MessageType::NData | MessageType::DData | MessageType::DDeath => {
                msg.birth_seen = self.book.is_born(&scope);
                msg.seq_gap = self.book.observe_seq(&node, seq);
                self.book.touch(&node);
                self.book.touch(&scope);
            }
            MessageType::NDeath => {
                msg.birth_seen = self.book.is_born(&scope);
                msg.bd_seq = bd_seq;
                msg.stale_death = matches!(
                    (self.book.bd_seq(&node), bd_seq),
                    (Some(current), Some(sent)) if current != sent
                );
            }
            MessageType::NCmd | MessageType::DCmd => {
                msg.birth_seen = self.book.is_born(&scope);
            }
            MessageType::State => {}
        }
        let birth = matches!(kind, MessageType::NBirth | MessageType::DBirth);
        for (index, m) in p.metrics.into_iter().enumerate() {
            match self.metric(&scope, birth, m, p.timestamp) {
                Ok((update, register_err)) => {
                    if let Some(kind) = register_err {
                        msg.metric_errors.push(MetricError {
                            index,
                            name: Some(update.name.clone()),
                            alias: update.alias,
                            kind,
                        });
                    }
                    msg.metrics.push(update);
                }
                Err((name, alias, kind)) => msg.metric_errors.push(MetricError {
                    index,
                    name,
                    alias,
                    kind,
                }),
            }
        }
        match kind {
            MessageType::DDeath => {
                self.book.remove(&scope);
            }
            MessageType::NDeath if !msg.stale_death => {
                self.book.clear_node(&scope.group_id, &scope.edge_node_id);
            }
            _ => {}
        }
        Ok(msg)
    }

    /// Decodes one metric; registers it when `birth`. A registration failure is returned
    /// beside the (good) update.
    #[allow(clippy::type_complexity)]
    fn metric(
        &mut self,
        scope: &Scope,
        birth: bool,
        m: proto::Metric,
        payload_ts: Option<u64>,
    ) -> Result<
        (MetricUpdate, Option<MetricErrorKind>),
        (Option<String>, Option<u64>, MetricErrorKind),
    > {
        let alias = m.alias;
        let sent_name = m.name.filter(|n| !n.is_empty());
        if let Some(n) = &sent_name
            && n.len() > self.limits.max_name_bytes
        {
            let kind = MetricErrorKind::NameTooLong {
                len: n.len(),
                max: self.limits.max_name_bytes,
            };
            return Err((None, alias, kind));
        }
        let sent_type = m
            .datatype
            .map(DataType::from_code)
            .filter(|t| *t != DataType::Unknown);
        let (name, known_type) = match (sent_name, alias) {
            (Some(n), _) if birth => (n, None),
            (Some(n), _) => {
                let t = self.book.datatype_of(scope, &n);
                (n, t)
            }
            (None, _) if birth => {
                return Err((None, alias, MetricErrorKind::NoName { birth: true }));
            }
            (None, None) => return Err((None, None, MetricErrorKind::NoName { birth: false })),
            (None, Some(a)) => match self.book.resolve(scope, a) {
                Some((n, t)) => (n.to_owned(), Some(t)),
                None => return Err((None, alias, MetricErrorKind::UnknownAlias(a))),
            },
        };
        let datatype = sent_type
            .or(known_type)
            .unwrap_or_else(|| DataType::inferred_from(m.value.as_ref()));
        let value = match payload::value_of(datatype, m.is_null == Some(true), m.value.as_ref()) {
            Ok(v) => v,
            Err(e) => return Err((Some(name), alias, e.into())),
        };
        let register_err = if birth {
            self.book
                .register(scope, &name, alias, datatype)
                .err()
                .map(MetricErrorKind::Register)
        } else {
            None
        };
        Ok((
            MetricUpdate {
                name,
                alias,
                datatype,
                value,
                timestamp: m.timestamp.or(payload_ts),
                is_historical: m.is_historical == Some(true),
                is_transient: m.is_transient == Some(true),
            },
            register_err,
        ))
    }
}

/// Parses a v3.0 STATE payload: `{"online": bool, "timestamp": ms}`.
fn host_state(payload: &[u8], limits: &Limits) -> Result<HostState, Error> {
    if payload.len() > limits.max_payload_bytes {
        return Err(PayloadError::TooLarge {
            size: payload.len(),
            max: limits.max_payload_bytes,
        }
        .into());
    }
    let bad = |reason: String| Error::HostState { reason };
    let v: serde_json::Value =
        serde_json::from_slice(payload).map_err(|e| bad(format!("not JSON: {e}")))?;
    let obj = v
        .as_object()
        .ok_or_else(|| bad("not a JSON object".into()))?;
    let online = obj
        .get("online")
        .ok_or_else(|| bad("no \"online\"".into()))?
        .as_bool()
        .ok_or_else(|| bad("\"online\" is not a boolean".into()))?;
    let timestamp = match obj.get("timestamp") {
        None => None,
        Some(t) => Some(
            t.as_u64()
                .ok_or_else(|| bad("\"timestamp\" is not a non-negative integer".into()))?,
        ),
    };
    Ok(HostState { online, timestamp })
}
