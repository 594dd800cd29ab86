//! WebSocket `/api/v1/stream`: the live picture as a snapshot, then deltas.
//!
//! Server → client messages (JSON text frames):
//!
//! - `{"type":"snapshot","features":[…],"truncated":false,"resync":false}` — everything in the
//!   filter; sent on connect, after each subscription change, and after falling behind;
//! - `{"type":"update","features":[…]}` — entities created or updated;
//! - `{"type":"stale","features":[…]}` — entities that went past their stale time;
//! - `{"type":"removed","uids":[…]}` — entities dropped from the picture or leaving the filter;
//! - `{"type":"error","error":"…"}` — a bad client message; the connection stays open;
//! - `{"type":"alerts","alerts":[…]}` — the active alerts (newest first, at most
//!   `STREAM_ALERT_SNAPSHOT`), sent after the first snapshot when there are any;
//! - `{"type":"alert","event":"raised|acknowledged|cleared","alert":{…}}` — an alert changed.
//!   Alerts are not filtered by the subscription: a watch officer sees every alert that
//!   the caller's clearance permits (alerts above it are never sent, in either message).
//!
//! Client → server: `{"type":"subscribe","bbox":[minLon,minLat,maxLon,maxLat],"type_prefix":"a-f"}`
//! (both optional; absent means no restriction). The same filter can be given on connect as
//! the query parameters `bbox` and `type`.
//!
//! A slow client never slows ingest: deltas come from a bounded broadcast channel. A client
//! that falls behind gets a fresh snapshot instead of the missed deltas (the latest state per
//! entity), and a client whose socket accepts nothing for `ws_send_timeout_ms` is disconnected.

use std::time::Duration;

use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::Response;
use rampart_codec_json::EntityFeature;
use rampart_engine::{Delta, Subscription};
use rampart_model::Entity;
use rampart_picture::{BBox, type_matches};
use tokio::sync::broadcast::error::RecvError;

/// Most active alerts sent to a client when it connects.
const STREAM_ALERT_SNAPSHOT: usize = 1_000;

/// How often the stream pings its client: keeps an idle stream within the connection idle
/// timeout (`[http] idle_timeout_secs`) and notices a dead peer.
const STREAM_PING: Duration = Duration::from_secs(30);

type AlertRx = tokio::sync::broadcast::Receiver<std::sync::Arc<rampart_rules::AlertEvent>>;

/// The next alert event, or never when the node runs no rules engine.
async fn next_alert(
    rx: &mut Option<AlertRx>,
) -> Result<std::sync::Arc<rampart_rules::AlertEvent>, RecvError> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

fn alert_message(ev: &rampart_rules::AlertEvent) -> String {
    serde_json::json!({ "type": "alert", "event": ev.event, "alert": ev.alert }).to_string()
}

use crate::AppState;
use crate::error::ApiError;

/// Query parameters of the stream: its initial filter.
#[derive(serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct StreamParams {
    /// `minLon,minLat,maxLon,maxLat`.
    bbox: Option<String>,
    /// CoT type prefix.
    #[serde(rename = "type")]
    #[param(rename = "type")]
    type_prefix: Option<String>,
}

/// What one subscriber may see, and (for a restricted caller) which uids it has been sent.
///
/// A restricted caller must never learn the uid of an entity it may not see, not even from a
/// `removed` message. So the connection remembers the uids it sent (bounded by the picture's
/// `max_entities`), announces a removal only for those, and turns an entity whose label rose
/// above the clearance into a removal. Unrestricted callers keep no set.
pub(crate) struct Sight {
    /// The caller's policy and clearance.
    pub(crate) caller: crate::labels::Caller,
    /// Uids sent to a restricted caller; `None` when the caller is unrestricted.
    seen: Option<std::collections::HashSet<rampart_model::Uid>>,
}

impl Sight {
    fn new(caller: crate::labels::Caller) -> Self {
        let seen = (!caller.clearance.is_unrestricted()).then(Default::default);
        Sight { caller, seen }
    }

    fn may_see(&self, e: &Entity) -> bool {
        self.seen.is_none() || self.caller.may_see(&e.label)
    }
}

/// A subscriber's filter.
#[derive(Clone, Debug, Default)]
struct Filter {
    bbox: Option<BBox>,
    type_prefix: Option<String>,
}

impl Filter {
    fn query(&self, limit: usize, sight: &Sight) -> rampart_picture::Query {
        rampart_picture::Query {
            bbox: self.bbox,
            type_prefix: self.type_prefix.clone(),
            limit: Some(limit),
            clearance: Some(sight.caller.clearance.clone()),
            ..Default::default()
        }
    }

    fn contains_point(&self, lat: f64, lon: f64) -> bool {
        self.bbox.is_none_or(|b| b.contains(lat, lon))
    }

    fn matches(&self, e: &Entity) -> bool {
        self.contains_point(e.lat, e.lon)
            && self
                .type_prefix
                .as_deref()
                .is_none_or(|p| type_matches(&e.cot_type, p))
    }
}

#[derive(serde::Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum ClientMessage {
    Subscribe {
        #[serde(default)]
        bbox: Option<[f64; 4]>,
        #[serde(default)]
        type_prefix: Option<String>,
    },
}

fn parse_client_message(text: &str) -> Result<Filter, String> {
    let msg: ClientMessage = serde_json::from_str(text).map_err(|e| {
        format!("expected {{\"type\":\"subscribe\",\"bbox\":[minLon,minLat,maxLon,maxLat],\"type_prefix\":\"a-f\"}}: {e}")
    })?;
    let ClientMessage::Subscribe { bbox, type_prefix } = msg;
    let bbox = match bbox {
        Some([a, b, c, d]) => Some(BBox::parse(&format!("{a},{b},{c},{d}"))?),
        None => None,
    };
    Ok(Filter {
        bbox,
        type_prefix: type_prefix.filter(|t| !t.is_empty()),
    })
}

/// Opens the live stream.
#[utoipa::path(
    get,
    path = "/api/v1/stream",
    tag = "stream",
    params(StreamParams),
    responses((status = 101, description = "WebSocket upgrade; see the module docs for messages"),
              (status = 400, description = "A parameter is invalid", body = crate::openapi::ErrorDoc))
)]
pub(crate) async fn upgrade(
    State(st): State<AppState>,
    caller: crate::labels::Caller,
    params: Result<Query<StreamParams>, axum::extract::rejection::QueryRejection>,
    ws: WebSocketUpgrade,
) -> Result<Response, ApiError> {
    let Query(p) = params.map_err(|e| {
        ApiError::new(
            axum::http::StatusCode::BAD_REQUEST,
            format!("invalid query parameters: {}", e.body_text()),
        )
    })?;
    let filter = Filter {
        bbox: p
            .bbox
            .as_deref()
            .map(BBox::parse)
            .transpose()
            .map_err(|e| ApiError::bad_param("bbox", e))?,
        type_prefix: p.type_prefix.filter(|t| !t.is_empty()),
    };
    let max = st.cfg.max_ws_message_bytes;
    Ok(ws
        .max_message_size(max)
        .max_frame_size(max)
        .on_upgrade(move |socket| run(socket, st, filter, Sight::new(caller))))
}

fn features_message(kind: &str, entities: &[&Entity], extra: Option<(bool, bool)>) -> String {
    #[derive(serde::Serialize)]
    struct Msg<'a> {
        #[serde(rename = "type")]
        kind: &'a str,
        features: Vec<EntityFeature<'a>>,
        #[serde(skip_serializing_if = "Option::is_none")]
        truncated: Option<bool>,
        #[serde(skip_serializing_if = "Option::is_none")]
        resync: Option<bool>,
    }
    let msg = Msg {
        kind,
        features: entities.iter().map(|e| EntityFeature(e)).collect(),
        truncated: extra.map(|x| x.0),
        resync: extra.map(|x| x.1),
    };
    serde_json::to_string(&msg).unwrap_or_default()
}

fn removed_message(uids: &[&str]) -> String {
    serde_json::json!({ "type": "removed", "uids": uids }).to_string()
}

/// Sends one text frame, failing if the client does not take it within the timeout.
async fn send(socket: &mut WebSocket, text: String, timeout: Duration) -> Result<(), &'static str> {
    match tokio::time::timeout(timeout, socket.send(Message::Text(Utf8Bytes::from(text)))).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(_)) => Err("closed"),
        Err(_) => Err("slow"),
    }
}

/// Subscribes with `filter` and sends the snapshot.
async fn resubscribe(
    socket: &mut WebSocket,
    st: &AppState,
    filter: &Filter,
    sight: &mut Sight,
    resync: bool,
) -> Result<Subscription, &'static str> {
    let max = st.cfg.max_snapshot_entities;
    let mut sub = st
        .engine
        .subscribe(&filter.query(max.saturating_add(1), sight));
    let truncated = sub.snapshot.len() > max;
    sub.snapshot.truncate(max);
    if let Some(seen) = &mut sight.seen {
        seen.clear();
        seen.extend(sub.snapshot.iter().map(|e| e.uid.clone()));
    }
    let refs: Vec<&Entity> = sub.snapshot.iter().collect();
    let text = features_message("snapshot", &refs, Some((truncated, resync)));
    sub.snapshot = Vec::new();
    send(socket, text, st.send_timeout()).await?;
    Ok(sub)
}

/// Encodes a delta for this filter; `None` when nothing in it concerns the subscriber.
fn encode_delta(delta: &Delta, filter: &Filter, sight: &mut Sight) -> Vec<String> {
    let mut out = Vec::new();
    match delta {
        Delta::Updated(updates) => {
            let mut inside = Vec::new();
            let mut left = Vec::new();
            for u in updates {
                let visible = sight.may_see(&u.entity);
                if visible && filter.matches(&u.entity) {
                    inside.push(&u.entity);
                    if let Some(seen) = &mut sight.seen {
                        seen.insert(u.entity.uid.clone());
                    }
                } else if let Some(seen) = &mut sight.seen {
                    // Restricted: announce only what this caller was shown.
                    if seen.remove(&u.entity.uid) {
                        left.push(u.entity.uid.as_str());
                    }
                } else if u
                    .prev
                    .is_some_and(|(lat, lon)| filter.contains_point(lat, lon))
                {
                    left.push(u.entity.uid.as_str());
                }
            }
            if !inside.is_empty() {
                out.push(features_message("update", &inside, None));
            }
            if !left.is_empty() {
                out.push(removed_message(&left));
            }
        }
        Delta::Stale(entities) => {
            let inside: Vec<&Entity> = entities
                .iter()
                .filter(|e| sight.may_see(e) && filter.matches(e))
                .collect();
            if !inside.is_empty() {
                out.push(features_message("stale", &inside, None));
            }
        }
        Delta::Removed(uids) => {
            let uids: Vec<&str> = match &mut sight.seen {
                None => uids.iter().map(|u| u.as_str()).collect(),
                Some(seen) => uids
                    .iter()
                    .filter(|u| seen.remove(*u))
                    .map(|u| u.as_str())
                    .collect(),
            };
            if !uids.is_empty() {
                out.push(removed_message(&uids));
            }
        }
    }
    out
}

async fn run(mut socket: WebSocket, st: AppState, mut filter: Filter, mut sight: Sight) {
    let metrics = st.engine.metrics().clone();
    let gauge = metrics.connection_gauge("websocket");
    gauge.inc();
    let outcome = serve(&mut socket, &st, &mut filter, &mut sight).await;
    gauge.dec();
    match outcome {
        Err("slow") => {
            metrics.stream_slow_disconnects.inc();
            tracing::warn!(
                "stream client disconnected: it accepted nothing within the send timeout"
            );
        }
        Err(reason) => tracing::debug!(reason, "stream client gone"),
        Ok(()) => {}
    }
}

async fn serve(
    socket: &mut WebSocket,
    st: &AppState,
    filter: &mut Filter,
    sight: &mut Sight,
) -> Result<(), &'static str> {
    let timeout = st.send_timeout();
    // Subscribe to alerts before reading the active ones, so none falls in between. The
    // active ones follow the first snapshot (only when there are any).
    let mut alerts = st.rules.as_ref().map(|r| r.subscribe());
    let mut sub = resubscribe(socket, st, filter, sight, false).await?;
    if let Some(r) = &st.rules {
        let active: Vec<_> = r.alerts_where(
            &rampart_rules::AlertQuery {
                limit: STREAM_ALERT_SNAPSHOT,
                ..Default::default()
            },
            |a| a.is_active() && sight.caller.may_see(&a.label),
        );
        if !active.is_empty() {
            send(
                socket,
                serde_json::json!({ "type": "alerts", "alerts": active }).to_string(),
                timeout,
            )
            .await?;
        }
    }
    // Pings keep an idle stream from the connection idle timeout, and find dead peers.
    let mut ping = tokio::time::interval(STREAM_PING);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ping.tick().await;
    loop {
        tokio::select! {
            _ = ping.tick() => {
                match tokio::time::timeout(timeout, socket.send(Message::Ping(Default::default()))).await {
                    Ok(Ok(())) => {}
                    Ok(Err(_)) => return Err("closed"),
                    Err(_) => return Err("slow"),
                }
            }
            alert = next_alert(&mut alerts) => match alert {
                // An alert's label is fixed when raised: its ack and clear are withheld too.
                Ok(ev) if sight.caller.may_see(&ev.alert.label) => send(socket, alert_message(&ev), timeout).await?,
                Ok(_) => {}
                Err(RecvError::Lagged(missed)) => {
                    st.engine.metrics().stream_resyncs.inc();
                    send(socket, serde_json::json!({"type": "error", "error": format!("{missed} alert events missed; re-read /api/v1/alerts")}).to_string(), timeout).await?;
                }
                Err(RecvError::Closed) => alerts = None,
            },
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Text(text))) => match parse_client_message(&text) {
                    Ok(f) => {
                        *filter = f;
                        sub = resubscribe(socket, st, filter, sight, false).await?;
                    }
                    Err(e) => {
                        st.engine.metrics().reject("websocket", "bad_subscription", 1);
                        send(socket, serde_json::json!({"type": "error", "error": e}).to_string(), timeout).await?;
                    }
                },
                Some(Ok(Message::Binary(_))) => {
                    st.engine.metrics().reject("websocket", "binary_message", 1);
                    send(socket, serde_json::json!({"type": "error", "error": "binary messages are not supported; send JSON text"}).to_string(), timeout).await?;
                }
                // Pings are answered by the WebSocket layer itself.
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
                Some(Ok(Message::Close(_))) | None => return Ok(()),
                Some(Err(_)) => return Err("closed"),
            },
            delta = sub.deltas.recv() => match delta {
                Ok(delta) => {
                    for text in encode_delta(&delta, filter, sight) {
                        send(socket, text, timeout).await?;
                    }
                }
                Err(RecvError::Lagged(missed)) => {
                    st.engine.metrics().stream_resyncs.inc();
                    tracing::debug!(missed, "stream client fell behind; resynchronising from a snapshot");
                    sub = resubscribe(socket, st, filter, sight, true).await?;
                }
                Err(RecvError::Closed) => return Ok(()),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_messages_are_checked() {
        let f =
            parse_client_message(r#"{"type":"subscribe","bbox":[0,0,10,10],"type_prefix":"a-h"}"#)
                .unwrap();
        assert!(f.bbox.is_some());
        assert_eq!(f.type_prefix.as_deref(), Some("a-h"));
        assert!(parse_client_message(r#"{"type":"subscribe","bbox":[0,95,10,10]}"#).is_err());
        assert!(parse_client_message(r#"{"type":"dance"}"#).is_err());
        assert!(parse_client_message("nope").is_err());
    }
}
