//! Durable device topics → reports → the engine.
//!
//! The broker holds every publish on a durable topic (see [`DURABLE_FILTERS`]) until this
//! module answers: stored (the reports are durable: PUBACK may go out), refused (bad
//! payload or policy: MQTT 5 gets the reason code, nothing is routed), or failed (storage
//! error). One task takes the held publishes in batches, decodes them in order (Sparkplug
//! aliases are stateful), checks each report against the device's policy, and submits the
//! whole batch to the engine at once so one group commit covers it.
//!
//! | topic | payload |
//! | --- | --- |
//! | `rampart/v1/{device}/report` | one report object, or an array, as in `POST /api/v1/reports` |
//! | `rampart/v1/{device}/telemetry` | `{"uid"?, "time"?, "lat"?, "lon"?, "<name>": number, ...}` |
//! | `rampart/v1/{device}/cmd/ack` | `{"id": "cmd-N", "status": "ok"\|"error", "message"?}` |
//! | `spBv1.0/{group}/{NBIRTH,NDATA,DBIRTH,DDATA,...}/{node}[/{device}]` | Sparkplug B protobuf |

use std::sync::Arc;

use rampart_codec_json::{DecodeOptions, decode_reports};
use rampart_codec_sparkplug as spb;
use rampart_devices::Devices;
use rampart_engine::ReportSink;
use rampart_model::{AttrValue, Attributes, Limits, Provenance, Report, Text, Timestamp};
use rampart_mqtt_broker::PersistToken;
use rampart_mqtt_broker::codec::types::Publish;
use rampart_mqtt_broker::codec::v5::PublishAckReason;
use tokio::sync::mpsc;

use crate::authz::Identity;
use crate::config::MqttConfig;
use crate::server::Counters;

/// Topic filters whose publishes are durable before they are acknowledged.
pub const DURABLE_FILTERS: [&str; 4] = [
    "rampart/v1/+/report",
    "rampart/v1/+/telemetry",
    "rampart/v1/+/cmd/ack",
    "spBv1.0/#",
];

/// The source name of MQTT reports in provenance and metrics.
pub const SOURCE: &str = "mqtt";

/// Looks up an entity's current position, for telemetry without one.
pub type PositionLookup = Arc<dyn Fn(&str) -> Option<(f64, f64)> + Send + Sync>;

/// A publish held by the broker for durability.
pub(crate) struct Job {
    pub token: PersistToken,
    pub identity: Option<Identity>,
    pub publish: Publish,
}

/// What became of a held publish.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Durable.
    Stored,
    /// Refused with this reason; not routed.
    Refused(PublishAckReason),
    /// Storage failed.
    Failed,
}

/// A refusal: the reason code for MQTT 5 and the label it is counted under.
struct Refuse {
    code: PublishAckReason,
    label: &'static str,
    detail: String,
}

fn bad_payload(label: &'static str, detail: impl Into<String>) -> Refuse {
    Refuse {
        code: PublishAckReason::PayloadFormatInvalid,
        label,
        detail: detail.into(),
    }
}

fn forbidden(label: &'static str, detail: impl Into<String>) -> Refuse {
    Refuse {
        code: PublishAckReason::NotAuthorized,
        label,
        detail: detail.into(),
    }
}

/// What the ingest task needs.
pub(crate) struct Ingest {
    pub cfg: MqttConfig,
    pub sink: Arc<dyn ReportSink>,
    pub devices: Arc<Devices>,
    pub positions: PositionLookup,
    pub counters: Arc<Counters>,
    /// Outcomes back to the broker task. Unbounded in type, bounded in fact: at most
    /// `MAX_BATCHES_IN_FLIGHT` batches are awaited, and the broker task takes outcomes
    /// whenever it is not itself waiting for this task to take jobs.
    pub persisted: mpsc::UnboundedSender<Outcomes>,
    pub limits: Limits,
    pub sparkplug: spb::Decoder,
}

/// Batches whose durability is awaited at once; beyond it the task stops taking jobs
/// (and the broker task, then the publishers, wait).
const MAX_BATCHES_IN_FLIGHT: usize = 64;

/// Durability outcomes of one batch, in publish order.
pub(crate) type Outcomes = Vec<(PersistToken, Outcome)>;

/// Runs the ingest task until the broker task goes away.
///
/// Each batch is appended to the engine at once, in arrival order (so history and the
/// picture see publishes in the order they came), and its durability is awaited in a
/// `FuturesOrdered`, so outcomes reach the broker in the same order: QoS 1 messages on a
/// topic are routed in the order they were published, as MQTT requires.
pub(crate) async fn run(mut ing: Ingest, mut jobs: mpsc::Receiver<Vec<Job>>) {
    use futures_util::StreamExt;
    use futures_util::stream::FuturesOrdered;
    let mut waiting: FuturesOrdered<
        std::pin::Pin<Box<dyn std::future::Future<Output = Outcomes> + Send>>,
    > = FuturesOrdered::new();
    loop {
        tokio::select! {
            batch = jobs.recv(), if waiting.len() < MAX_BATCHES_IN_FLIGHT => {
                let Some(batch) = batch else { break };
                waiting.push_back(ing.submit(batch));
            }
            Some(outcomes) = waiting.next(), if !waiting.is_empty() => {
                if ing.persisted.send(outcomes).is_err() {
                    return;
                }
            }
        }
    }
    while let Some(outcomes) = waiting.next().await {
        let _ = ing.persisted.send(outcomes);
    }
}

impl Ingest {
    /// Decodes a batch, appends its reports, and returns the future of its outcomes.
    fn submit(
        &mut self,
        batch: Vec<Job>,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Outcomes> + Send>> {
        let mut reports: Vec<Report> = Vec::new();
        // Per job: (token, first report index, report count, outcome if already decided).
        let mut spans: Vec<(PersistToken, usize, usize, Option<Outcome>)> = Vec::new();
        for job in batch {
            let start = reports.len();
            match self.decode(&job, &mut reports) {
                Ok(()) => spans.push((job.token, start, reports.len() - start, None)),
                Err(r) => {
                    reports.truncate(start);
                    self.counters.publish_refused(r.label);
                    tracing::debug!(topic = %job.publish.topic, reason = r.label, detail = %r.detail, "MQTT publish refused");
                    spans.push((job.token, start, 0, Some(Outcome::Refused(r.code))));
                }
            }
        }
        let appended = if reports.is_empty() {
            Ok((Vec::new(), None))
        } else {
            self.sink.submit_unacked(reports).map(|r| {
                (
                    r.rejected.iter().map(|x| x.index).collect::<Vec<_>>(),
                    Some(r.ticket),
                )
            })
        };
        let sink = self.sink.clone();
        Box::pin(async move {
            let result = match appended {
                Ok((rejected, Some(ticket))) => sink.wait_durable(ticket).await.map(|()| rejected),
                Ok((rejected, None)) => Ok(rejected),
                Err(e) => Err(e),
            };
            spans
                .into_iter()
                .map(|(token, start, n, decided)| {
                    let o = match (decided, &result) {
                        (Some(o), _) => o,
                        (None, Err(_)) => Outcome::Failed,
                        (None, Ok(rejected)) => {
                            let refused = rejected
                                .iter()
                                .filter(|&&i| i >= start && i < start + n)
                                .count();
                            if n > 0 && refused == n {
                                Outcome::Refused(PublishAckReason::PayloadFormatInvalid)
                            } else {
                                Outcome::Stored
                            }
                        }
                    };
                    (token, o)
                })
                .collect()
        })
    }

    fn decode(&mut self, job: &Job, out: &mut Vec<Report>) -> Result<(), Refuse> {
        let topic: &str = &job.publish.topic;
        if topic.starts_with("spBv1.0/") {
            return self.sparkplug(job, out);
        }
        let mut parts = topic.splitn(4, '/');
        let (Some("rampart"), Some("v1"), Some(device), Some(kind)) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(bad_payload(
                "unknown_topic",
                format!("no handler for {topic}"),
            ));
        };
        let device = device.to_string();
        let identity = self.identity(job, &device)?;
        match kind {
            "report" => self.reports(&job.publish.payload, &device, &identity, out),
            "telemetry" => self.telemetry(&job.publish.payload, &device, &identity, out),
            "cmd/ack" => match self.devices.answer(&device, &job.publish.payload) {
                Ok(_) => Ok(()),
                Err(rampart_devices::DeviceError::Storage(e)) => {
                    Err(bad_payload("storage", e.to_string()))
                }
                Err(e) => Err(bad_payload("bad_command_ack", e.to_string())),
            },
            _ => Err(bad_payload(
                "unknown_topic",
                format!("no handler for {topic}"),
            )),
        }
    }

    /// The publisher's identity: its own, or for a will (published by the broker after the
    /// client is gone; its topic was authorized at CONNECT) the device the topic names.
    fn identity(
        &self,
        job: &Job,
        device: &str,
    ) -> Result<(Arc<str>, Arc<rampart_devices::Policy>), Refuse> {
        match &job.identity {
            Some(Identity {
                device: Some(d),
                policy: Some(p),
                ..
            }) => Ok((d.clone(), p.clone())),
            Some(_) => Err(forbidden(
                "anonymous",
                "anonymous clients may not publish device topics",
            )),
            None => match self.devices.policy(device) {
                Some(p) => Ok((Arc::from(device), p)),
                None => Err(forbidden("unknown_device", format!("no device {device:?}"))),
            },
        }
    }

    fn check(
        &self,
        who: &(Arc<str>, Arc<rampart_devices::Policy>),
        r: &Report,
    ) -> Result<(), Refuse> {
        let (device, policy) = who;
        if !policy.may_report_uid(device, &r.uid) {
            return Err(forbidden(
                "uid_not_allowed",
                format!("device {device:?} may not report uid {:?}", r.uid.as_str()),
            ));
        }
        if let Some(t) = &r.cot_type
            && !policy.may_report_type(t)
        {
            return Err(forbidden(
                "type_not_allowed",
                format!("device {device:?} may not report type {t:?}"),
            ));
        }
        Ok(())
    }

    fn reports(
        &self,
        payload: &[u8],
        _topic_device: &str,
        who: &(Arc<str>, Arc<rampart_devices::Policy>),
        out: &mut Vec<Report>,
    ) -> Result<(), Refuse> {
        let opts = DecodeOptions {
            limits: self.limits.clone(),
            max_items: self.cfg.max_reports_per_publish,
            allow_single_object: true,
        };
        let items =
            decode_reports(payload, &opts).map_err(|e| bad_payload(e.reason(), e.to_string()))?;
        for item in items {
            let mut r = item.map_err(|e| {
                bad_payload(
                    e.reason_class(),
                    format!("report {}: {}: {}", e.index, e.field, e.reason),
                )
            })?;
            self.check(who, &r)?;
            r.provenance = Provenance::new(SOURCE, &who.0);
            out.push(r);
        }
        Ok(())
    }

    fn telemetry(
        &self,
        payload: &[u8],
        _topic_device: &str,
        who: &(Arc<str>, Arc<rampart_devices::Policy>),
        out: &mut Vec<Report>,
    ) -> Result<(), Refuse> {
        let v: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(payload)
            .map_err(|e| {
                bad_payload(
                    "malformed_json",
                    format!("telemetry must be a JSON object: {e}"),
                )
            })?;
        let uid = match v.get("uid") {
            None => who.0.to_string(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(_) => {
                return Err(bad_payload(
                    "invalid_type",
                    "telemetry.uid must be a string",
                ));
            }
        };
        let time = match v.get("time") {
            None => Timestamp::now(),
            Some(serde_json::Value::String(s)) => Timestamp::parse_rfc3339(s)
                .map_err(|e| bad_payload("invalid_value", format!("telemetry.time: {e}")))?,
            Some(serde_json::Value::Number(n)) => Timestamp(n.as_i64().ok_or_else(|| {
                bad_payload(
                    "invalid_value",
                    "telemetry.time must be RFC 3339 or integer milliseconds",
                )
            })?),
            Some(_) => {
                return Err(bad_payload(
                    "invalid_type",
                    "telemetry.time must be a string or a number",
                ));
            }
        };
        let num = |k: &str| v.get(k).and_then(serde_json::Value::as_f64);
        let (lat, lon) = match (num("lat"), num("lon")) {
            (Some(a), Some(b)) => (a, b),
            _ => (self.positions)(&uid).ok_or_else(|| {
                bad_payload(
                    "no_position",
                    format!("no position known for entity {uid:?}: send a report first, or include lat and lon"),
                )
            })?,
        };
        let mut attributes = Attributes::new();
        for (k, val) in &v {
            if matches!(k.as_str(), "uid" | "time" | "lat" | "lon") {
                continue;
            }
            let a = match val {
                serde_json::Value::Number(n) => AttrValue::Num(n.as_f64().unwrap_or(f64::NAN)),
                serde_json::Value::Bool(b) => AttrValue::Num(if *b { 1.0 } else { 0.0 }),
                serde_json::Value::String(s) => AttrValue::Text(Text::from(s.as_str())),
                _ => {
                    return Err(bad_payload(
                        "invalid_type",
                        format!("telemetry.{k} must be a number, a boolean or a string"),
                    ));
                }
            };
            attributes.insert(Text::from(k.as_str()), a);
        }
        let mut r = Report::new(&uid, lat, lon, time);
        r.hae = num("hae");
        r.attributes = attributes;
        self.limits.validate(&r).map_err(|e| {
            bad_payload(
                "invalid_value",
                format!("telemetry.{}: {}", e.field, e.reason),
            )
        })?;
        self.check(who, &r)?;
        r.provenance = Provenance::new(SOURCE, &who.0);
        out.push(r);
        Ok(())
    }

    /// Sparkplug B: the edge node (or device) is the entity `spb/{group}/{node}[/{device}]`;
    /// BIRTH metrics become its attributes and DATA updates them. Its position comes from
    /// metrics named in `sparkplug_lat_metrics`/`sparkplug_lon_metrics`, else from its
    /// current state in the picture. STATE, DEATH and CMD messages carry no report.
    fn sparkplug(&mut self, job: &Job, out: &mut Vec<Report>) -> Result<(), Refuse> {
        let topic: &str = &job.publish.topic;
        let msg = self
            .sparkplug
            .decode(topic, &job.publish.payload)
            .map_err(|e| bad_payload("sparkplug", e.to_string()))?;
        for e in &msg.metric_errors {
            tracing::debug!(%topic, error = %e, "Sparkplug metric skipped");
            self.counters.publish_refused("sparkplug_metric");
        }
        if msg.seq_gap.is_some() {
            self.counters.publish_refused("sparkplug_seq_gap");
        }
        let spb::Topic::Edge(t) = &msg.topic else {
            return Ok(());
        };
        use spb::MessageType as M;
        if !matches!(t.message_type, M::NBirth | M::NData | M::DBirth | M::DData) {
            return Ok(());
        }
        let uid = match &t.device_id {
            Some(d) => format!("spb/{}/{}/{d}", t.group_id, t.edge_node_id),
            None => format!("spb/{}/{}", t.group_id, t.edge_node_id),
        };
        let who = match &job.identity {
            Some(Identity {
                device: Some(d),
                policy: Some(p),
                ..
            }) => (d.clone(), p.clone()),
            _ => {
                return Err(forbidden(
                    "anonymous",
                    "Sparkplug topics need a device identity",
                ));
            }
        };
        let mut attributes = Attributes::new();
        let (mut lat, mut lon) = (None, None);
        for m in &msg.metrics {
            let name = m.name.as_str();
            if self.cfg.sparkplug_lat_metrics.iter().any(|n| n == name) {
                lat = m.value.as_f64();
                continue;
            }
            if self.cfg.sparkplug_lon_metrics.iter().any(|n| n == name) {
                lon = m.value.as_f64();
                continue;
            }
            let v = match (&m.value, m.value.as_f64()) {
                (_, Some(x)) => AttrValue::Num(x),
                (spb::Value::Boolean(b), _) => AttrValue::Num(if *b { 1.0 } else { 0.0 }),
                (spb::Value::String(s) | spb::Value::Text(s) | spb::Value::Uuid(s), _) => {
                    AttrValue::Text(Text::from(s.as_str()))
                }
                _ => continue,
            };
            if attributes.len() < self.limits.max_attributes {
                attributes.insert(Text::from(name), v);
            }
        }
        let (lat, lon) = match (lat, lon) {
            (Some(a), Some(b)) => (a, b),
            _ => (self.positions)(&uid).ok_or_else(|| {
                bad_payload(
                    "no_position",
                    format!(
                        "no position known for {uid:?}: publish Latitude and Longitude metrics"
                    ),
                )
            })?,
        };
        let time = msg
            .timestamp
            .and_then(|t| i64::try_from(t).ok())
            .map_or_else(Timestamp::now, Timestamp);
        let mut r = Report::new(&uid, lat, lon, time);
        r.attributes = attributes;
        self.limits
            .validate(&r)
            .map_err(|e| bad_payload("invalid_value", format!("{}: {}", e.field, e.reason)))?;
        self.check(&who, &r)?;
        r.provenance = Provenance::new("sparkplug", &who.0);
        out.push(r);
        Ok(())
    }
}
