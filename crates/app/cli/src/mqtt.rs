//! Starting the MQTT edge: the device registry, the broker task, and its listeners.

use std::sync::Arc;

use anyhow::Context;
use rampart_devices::Devices;
use rampart_edge_mqtt::{MqttDeps, MqttEdge};
use rampart_engine::{Engine, ReportSink};
use rampart_picture::Query;

use crate::config::{Config, ListenSpec};

/// Opens the device registry under `<data>/devices`.
pub fn open_devices(cfg: &Config) -> anyhow::Result<Arc<Devices>> {
    let dir = cfg.data.join("devices");
    Devices::open(Some(dir.clone()), cfg.devices.clone())
        .with_context(|| format!("opening the device registry under {}", dir.display()))
}

/// Starts the MQTT edge (restoring persistent sessions from `<data>/mqtt`).
pub fn start(
    cfg: &Config,
    engine: &Arc<Engine>,
    sink: &Arc<dyn ReportSink>,
    devices: &Arc<Devices>,
) -> anyhow::Result<Arc<MqttEdge>> {
    let picture_engine = engine.clone();
    let positions: rampart_edge_mqtt::PositionLookup =
        Arc::new(move |uid: &str| picture_engine.picture().get(uid).map(|e| (e.lat, e.lon)));
    // Only deltas are wanted: a zero-limit query makes the snapshot empty.
    let sub = engine.subscribe(&Query {
        limit: Some(0),
        ..Query::default()
    });
    MqttEdge::start(
        cfg.mqtt.clone(),
        MqttDeps {
            sink: sink.clone(),
            metrics: engine.metrics().clone(),
            devices: devices.clone(),
            positions,
            deltas: Some(sub.deltas),
            data_dir: Some(cfg.data.clone()),
            limits: cfg.limits.clone(),
            labels: Arc::clone(&engine.config().labels),
        },
    )
    .context("starting the MQTT edge")
}

/// Binds one `mqtt` or `mqtts` listener. `mqtts` uses the node's PKI: its server
/// certificate, client certificates verified against the CA and the CRL
/// (`[security] mqtts_client_auth`, required by default), the certificate's common name as
/// the device identity (`cert_subject` in the registry), and live connections closed when
/// their certificate is revoked.
pub async fn bind(
    cfg: &Config,
    edge: Arc<MqttEdge>,
    l: &ListenSpec,
    security: Option<&crate::pki::NodeSecurity>,
) -> anyhow::Result<()> {
    let kind = if l.kind == "mqtts" { "mqtts" } else { "mqtt" };
    let listener = tokio::net::TcpListener::bind(l.addr)
        .await
        .with_context(|| format!("binding {kind} listener on {}", l.addr))?;
    let bound = listener.local_addr()?;
    if kind == "mqtt" {
        tokio::spawn(edge.run_tcp_listener(listener));
    } else {
        let sec = security.context("mqtts needs the node's PKI")?;
        let (cert, key) = match (&cfg.mqtt.tls_cert, &cfg.mqtt.tls_key) {
            (Some(c), Some(k)) => (c.clone(), k.clone()),
            _ => (sec.server_cert.clone(), sec.server_key.clone()),
        };
        let tls = rampart_pki::server_config(
            &cert,
            &key,
            cfg.security.mqtts_client_auth,
            Some(&sec.watch),
        )
        .context("building the mqtts TLS configuration")?;
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        let watch = sec.watch.clone();
        let identity: rampart_edge_mqtt::CertIdentity = Arc::new(move |der: &[u8]| {
            let id = rampart_pki::identity_of(der).ok()?;
            Some(rampart_edge_mqtt::PeerCert {
                subject: id.subject_cn,
                revoked: Some(Box::pin(watch.revoked(id.serial))),
            })
        });
        tokio::spawn(edge.run_tls_listener(listener, acceptor, identity));
    }
    tracing::info!(kind, addr = %bound, "listening");
    println!("rampart: listening {kind} {bound}");
    Ok(())
}

/// The topic alerts are published on.
pub const ALERTS_TOPIC: &str = "rampart/v1/alerts";

/// Publishes every alert change (raised, acknowledged, cleared) on [`ALERTS_TOPIC`] as JSON,
/// QoS 1, so persistent subscribers get the alerts raised while they were away. Each carries
/// the alert's label: only subscribers (and bridges) cleared for it receive it.
pub fn publish_alerts(edge: &Arc<MqttEdge>, rules: &Arc<rampart_rules::RulesService>) {
    let mut events = rules.subscribe();
    let tx = edge.labelled_injector();
    tokio::spawn(async move {
        use tokio::sync::broadcast::error::RecvError;
        loop {
            let ev = match events.recv().await {
                Ok(ev) => ev,
                Err(RecvError::Lagged(n)) => {
                    tracing::warn!(missed = n, "MQTT alert publisher fell behind");
                    continue;
                }
                Err(RecvError::Closed) => return,
            };
            let Ok(payload) = serde_json::to_vec(&*ev) else {
                continue;
            };
            let p = rampart_mqtt_broker::codec::types::Publish {
                dup: false,
                retain: false,
                qos: rampart_mqtt_broker::codec::types::QoS::AtLeastOnce,
                topic: ALERTS_TOPIC.into(),
                packet_id: None,
                payload: payload.into(),
                properties: None,
            };
            if tx.send((p, ev.alert.label.clone())).await.is_err() {
                return;
            }
        }
    });
}
