//! Entities from other sources (HTTP, feeds, MQTT) reach TAK clients as CoT.
//!
//! The bridge follows the engine's delta bus and turns every entity update whose source is not
//! a CoT listener into a CoT event for the clients cleared for the entity's label (the join of
//! its reports' labels; CoT-originated events were already routed, verbatim, by the sessions,
//! with their own report's label). On start it also fills the late-joiner cache from the picture,
//! so clients connecting after a restart see the picture rebuilt from history.
//!
//! It subscribes with an interest that excludes CoT sources, so when it is the engine's only
//! subscriber, CoT ingest builds no deltas at all.

use std::sync::Arc;

use rampart_codec_cot::CotEvent;
use rampart_engine::{Delta, Interest};
use rampart_model::Entity;
use rampart_picture::Query;
use tokio::sync::broadcast::error::RecvError;

use crate::CotEdge;
use crate::frame;

/// Source names of the CoT listeners start with this.
const COT_SOURCE_PREFIX: &str = "cot-";

fn from_cot(e: &Entity) -> bool {
    e.provenance.source.starts_with(COT_SOURCE_PREFIX)
}

fn publish(edge: &CotEdge, e: &Entity) {
    let event = CotEvent::from_entity(e);
    let f = frame::build(
        &event,
        None,
        None,
        Arc::from(Vec::new()),
        edge.route_label_arc(&e.label),
        edge.router.has_proto_clients(),
    );
    edge.router.publish(f, true);
    edge.cot_metrics.bridged.inc();
}

/// Runs until the engine goes away.
pub async fn run_bridge(edge: Arc<CotEdge>) {
    let mut sub = edge.engine.subscribe_with(
        &Query {
            stale: Some(false),
            limit: Some(edge.cfg.max_cached_events),
            ..Query::default()
        },
        Interest {
            exclude_source_prefixes: vec![COT_SOURCE_PREFIX.to_owned()],
        },
    );
    for e in std::mem::take(&mut sub.snapshot) {
        publish(&edge, &e);
    }
    loop {
        match sub.deltas.recv().await {
            Ok(delta) => {
                if let Delta::Updated(updates) = &*delta {
                    for u in updates.iter().filter(|u| !from_cot(&u.entity)) {
                        publish(&edge, &u.entity);
                    }
                }
            }
            Err(RecvError::Lagged(n)) => {
                edge.cot_metrics.bridge_lagged.inc_by(n);
            }
            Err(RecvError::Closed) => return,
        }
    }
}
