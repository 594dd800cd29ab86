//! Webhooks: alert events POSTed as JSON to configured URLs, with retries, exponential
//! backoff with a cap, a bounded queue per webhook and a bounded dead-letter list.
//!
//! The dispatcher reads the alert broadcast channel, so a webhook that is down never slows
//! ingest: its queue fills, and events that do not fit (or that exhaust their attempts) go to
//! the dead-letter list, visible at `/api/v1/alerts/deadletters`.
//!
//! Labels: each webhook has a `clearance` (default: the lowest level, no groups). When the
//! node enforces labels it receives only the alerts that clearance permits; the others are
//! withheld and counted (`rampart_webhook_withheld`). On an open node every webhook gets every
//! alert, as every other reader does.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use rampart_labels::{Clearance, ClearanceSpec, Policy};
use rampart_model::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::sync::{broadcast, mpsc};

use crate::alert::{AlertEvent, AlertState};
use crate::def::Priority;

/// One webhook.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// `http://host:port/path` (this build has no TLS client; put a TLS proxy in front).
    pub url: String,
    /// Only alerts of at least this priority.
    #[serde(default)]
    pub min_priority: Priority,
    /// Only these events (`raised`, `acknowledged`, `cleared`); empty means all.
    #[serde(default)]
    pub events: Vec<AlertState>,
    /// What the receiver may see: only alerts whose label this clearance permits are sent
    /// (when the node enforces labels). Default: the lowest level, no groups.
    #[serde(default)]
    pub clearance: ClearanceSpec,
}

impl WebhookConfig {
    /// Checks the URL.
    pub fn validate(&self) -> Result<(), String> {
        let rest = self
            .url
            .strip_prefix("http://")
            .ok_or_else(|| format!("webhook url {:?} must start with http://", self.url))?;
        if rest.is_empty() || rest.starts_with('/') {
            return Err(format!("webhook url {:?} has no host", self.url));
        }
        Ok(())
    }

    /// Checks the clearance against the node's levels (an unknown level is an error, not a
    /// webhook that silently receives nothing).
    pub fn validate_clearance(&self, policy: &Policy) -> Result<(), String> {
        self.clearance
            .resolve(&policy.levels)
            .map(|_| ())
            .map_err(|e| format!("webhook {:?} clearance: {e}", self.url))
    }

    fn wants(&self, ev: &AlertEvent) -> bool {
        ev.alert.priority >= self.min_priority
            && (self.events.is_empty() || self.events.contains(&ev.event))
    }
}

/// Delivery settings shared by every webhook.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookSettings {
    /// Events queued per webhook; further events are dead-lettered at once.
    pub queue_capacity: usize,
    /// Attempts per event before it is dead-lettered.
    pub max_attempts: u32,
    /// Wait before the first retry, in milliseconds; doubled after each failure …
    pub initial_backoff_ms: u64,
    /// … up to this cap.
    pub max_backoff_ms: u64,
    /// Timeout of one POST, in milliseconds.
    pub timeout_ms: u64,
    /// Dead letters kept (oldest dropped first).
    pub max_dead_letters: usize,
}

impl Default for WebhookSettings {
    fn default() -> Self {
        WebhookSettings {
            queue_capacity: 1024,
            max_attempts: 8,
            initial_backoff_ms: 500,
            max_backoff_ms: 60_000,
            timeout_ms: 5_000,
            max_dead_letters: 1_000,
        }
    }
}

/// An event a webhook never took.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DeadLetter {
    /// The webhook.
    pub url: String,
    /// The event.
    pub event: AlertEvent,
    /// Attempts made.
    pub attempts: u32,
    /// The last error.
    pub error: String,
    /// When it was given up on.
    pub at: Timestamp,
}

/// The bounded dead-letter list.
#[derive(Default)]
pub struct DeadLetters {
    max: usize,
    list: Mutex<VecDeque<DeadLetter>>,
}

impl DeadLetters {
    /// A list keeping at most `max`.
    pub fn new(max: usize) -> Self {
        DeadLetters {
            max,
            list: Mutex::new(VecDeque::new()),
        }
    }

    fn push(&self, d: DeadLetter) {
        tracing::warn!(url = %d.url, alert = d.event.alert.id, error = %d.error, "webhook delivery failed; dead-lettered");
        let mut l = self.list.lock();
        l.push_back(d);
        while l.len() > self.max.max(1) {
            l.pop_front();
        }
    }

    /// Every dead letter, oldest first.
    pub fn list(&self) -> Vec<DeadLetter> {
        self.list.lock().iter().cloned().collect()
    }
}

/// Whether a webhook with clearance `clearance` may receive `ev` under `policy`.
pub fn permitted(policy: &Policy, clearance: &Clearance, ev: &AlertEvent) -> bool {
    policy.permits(clearance, &ev.alert.label)
}

/// Starts delivery to `hooks`: one dispatcher reading `events`, one worker per webhook.
/// Alerts a webhook's clearance does not permit under `policy` are not sent (`withheld`
/// counts them).
pub fn spawn(
    hooks: Vec<WebhookConfig>,
    settings: WebhookSettings,
    mut events: broadcast::Receiver<Arc<AlertEvent>>,
    dead: Arc<DeadLetters>,
    policy: Arc<Policy>,
    withheld: Counter,
) -> tokio::task::JoinHandle<()> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(settings.timeout_ms))
        .build()
        .unwrap_or_default();
    let mut queues = Vec::new();
    for h in hooks {
        let (tx, rx) = mpsc::channel::<Arc<AlertEvent>>(settings.queue_capacity.max(1));
        tokio::spawn(worker(
            h.clone(),
            settings.clone(),
            client.clone(),
            rx,
            dead.clone(),
        ));
        // Unrestricted when labels are not enforced; a spec that does not resolve gets the
        // anonymous clearance (the service refuses such a configuration up front).
        let clearance = policy.clearance_of(Some(&h.clearance));
        queues.push((h, clearance, tx));
    }
    tokio::spawn(async move {
        loop {
            match events.recv().await {
                Ok(ev) => {
                    for (h, clearance, tx) in &queues {
                        if !h.wants(&ev) {
                            continue;
                        }
                        if !permitted(&policy, clearance, &ev) {
                            withheld.inc();
                            continue;
                        }
                        if tx.try_send(ev.clone()).is_err() {
                            dead.push(DeadLetter {
                                url: h.url.clone(),
                                event: (*ev).clone(),
                                attempts: 0,
                                error: format!("queue full ({} events)", settings.queue_capacity),
                                at: Timestamp::now(),
                            });
                        }
                    }
                }
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(
                        missed = n,
                        "webhook dispatcher fell behind the alert channel"
                    );
                }
                Err(broadcast::error::RecvError::Closed) => return,
            }
        }
    })
}

async fn worker(
    hook: WebhookConfig,
    settings: WebhookSettings,
    client: reqwest::Client,
    mut rx: mpsc::Receiver<Arc<AlertEvent>>,
    dead: Arc<DeadLetters>,
) {
    while let Some(ev) = rx.recv().await {
        let mut backoff = settings.initial_backoff_ms.max(1);
        let mut attempts = 0;
        let mut last_error = String::new();
        while attempts < settings.max_attempts.max(1) {
            attempts += 1;
            let sent = client
                .post(&hook.url)
                .header("content-type", "application/json")
                .header("x-rampart-event", ev.event.as_str())
                .body(serde_json::to_vec(&*ev).unwrap_or_default())
                .send()
                .await;
            match sent {
                Ok(resp) if resp.status().is_success() => {
                    last_error.clear();
                    break;
                }
                Ok(resp) => last_error = format!("HTTP {}", resp.status()),
                Err(e) => last_error = format!("{e}"),
            }
            if attempts < settings.max_attempts {
                tokio::time::sleep(Duration::from_millis(backoff)).await;
                backoff = (backoff.saturating_mul(2)).min(settings.max_backoff_ms.max(1));
            }
        }
        if !last_error.is_empty() {
            dead.push(DeadLetter {
                url: hook.url.clone(),
                event: (*ev).clone(),
                attempts,
                error: last_error,
                at: Timestamp::now(),
            });
        }
    }
}
