//! Broker configuration: named limits, durable topic filters, and the authorization hook.
//!
//! Every collection the broker owns is bounded by one of [`Limits`]. What happens when a
//! bound is reached is fixed here and counted in [`crate::Metrics`], never silent:
//!
//! | limit | when reached |
//! | --- | --- |
//! | `max_sessions` | CONNACK refused: 3.1.1 *Server unavailable*, 5.0 *Quota exceeded* |
//! | `max_subscriptions_per_session` | that filter refused in SUBACK (*Failure* / *Quota exceeded*) |
//! | `max_inflight_out` | further deliveries wait in the session queue |
//! | `receive_maximum` | the client broke its promise: DISCONNECT *Receive Maximum exceeded*, close |
//! | `max_queued_per_session` | the new delivery is dropped and counted (`queue_full_drops`) |
//! | `max_retained` | a retained message on a new topic is not stored, counted (`retained_refused`) |
//! | `topic_alias_maximum` | an alias above it is a protocol error: DISCONNECT *Topic Alias invalid* |

use std::time::Duration;

use crate::topic;

/// Bounds on everything the broker holds. See the module documentation for what happens
/// when each is reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Sessions, connected or not.
    pub max_sessions: usize,
    /// Subscriptions (filters) per session.
    pub max_subscriptions_per_session: usize,
    /// Outbound QoS 1/2 messages awaiting acknowledgement, per session. The client's own
    /// MQTT 5 Receive Maximum lowers it further.
    pub max_inflight_out: u16,
    /// Inbound QoS 1/2 publishes not yet acknowledged (durability pending, or QoS 2 until
    /// PUBREL), per connection; advertised as the MQTT 5 Receive Maximum.
    pub receive_maximum: u16,
    /// Messages waiting for an offline session or for inflight room, per session.
    pub max_queued_per_session: usize,
    /// Retained messages, broker-wide.
    pub max_retained: usize,
    /// Inbound topic aliases per MQTT 5 connection (0 disables aliases).
    pub topic_alias_maximum: u16,
    /// Largest packet the broker accepts, advertised in the MQTT 5 CONNACK. The listener's
    /// decoder enforces it.
    pub max_packet_size: u32,
    /// Upper bound on any session expiry interval, and the expiry of MQTT 3.1.1 sessions
    /// with `clean_session = 0`.
    pub max_session_expiry: Duration,
    /// Upper bound on keepalive: a client asking for 0 (none) or more gets this, told
    /// through the MQTT 5 Server Keep Alive. `None` accepts the client's value.
    pub max_keepalive: Option<u16>,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_sessions: 100_000,
            max_subscriptions_per_session: 256,
            max_inflight_out: 64,
            receive_maximum: 64,
            max_queued_per_session: 10_000,
            max_retained: 100_000,
            topic_alias_maximum: 32,
            max_packet_size: 1024 * 1024,
            max_session_expiry: Duration::from_secs(7 * 24 * 3600),
            max_keepalive: Some(3600),
        }
    }
}

/// What the broker needs to know to start.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// Bounds; see [`Limits`].
    pub limits: Limits,
    /// Topic filters whose publishes are durable: the broker emits
    /// [`crate::Action::Persist`] and holds the PUBACK/PUBREC (and the delivery) until
    /// [`crate::Broker::persisted`]. Typically `rampart/#` and `spBv1.0/#`.
    pub durable: Vec<String>,
    /// Topic filters whose routed messages the embedder wants to see (bridges forwarding
    /// local traffic out): each routed message matching one yields [`crate::Action::Observed`],
    /// unless it was injected with `observe = false` (what came in over a bridge).
    pub observe: Vec<String>,
}

impl Config {
    /// A configuration with default limits and the given durable filters.
    pub fn with_durable<I, S>(filters: I) -> Result<Config, topic::TopicError>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let durable: Vec<String> = filters.into_iter().map(Into::into).collect();
        for f in &durable {
            topic::validate_filter(f)?;
        }
        Ok(Config {
            limits: Limits::default(),
            durable,
            observe: Vec::new(),
        })
    }
}

/// What a connecting client presented, for [`Authorizer::authenticate`].
#[derive(Debug, Clone, Copy)]
pub struct Credentials<'a> {
    /// The client identifier (possibly assigned by the broker).
    pub client_id: &'a str,
    /// The user name, if any.
    pub username: Option<&'a str>,
    /// The password, if any.
    pub password: Option<&'a [u8]>,
}

/// Why a connection is refused; mapped to the CONNACK code of each protocol version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Bad user name or password.
    BadCredentials,
    /// Not authorized.
    NotAuthorized,
}

/// The embedder's authentication and authorization policy. The default methods allow
/// everything; the device registry of the wiring step implements this.
pub trait Authorizer: Send {
    /// Decides whether a client may connect.
    fn authenticate(&mut self, creds: &Credentials<'_>) -> Result<(), Refusal> {
        let _ = creds;
        Ok(())
    }
    /// Decides whether `client_id` may publish to `topic`.
    fn may_publish(&mut self, client_id: &str, topic: &str) -> bool {
        let _ = (client_id, topic);
        true
    }
    /// Decides whether `client_id` may subscribe to `filter` (the full filter, with any
    /// `$share/` prefix).
    fn may_subscribe(&mut self, client_id: &str, filter: &str) -> bool {
        let _ = (client_id, filter);
        true
    }
    /// The clearance of `client_id`, asked right after a successful
    /// [`Authorizer::authenticate`] on every CONNECT: which marked messages
    /// ([`crate::Broker::inject_marked`]) its session may receive. `None` (the default)
    /// means unrestricted; an embedder that marks messages must implement this.
    fn clearance(&mut self, client_id: &str) -> Option<crate::Clearance> {
        let _ = client_id;
        None
    }
}

/// An [`Authorizer`] that allows everything.
#[derive(Debug, Clone, Copy, Default)]
pub struct AllowAll;

impl Authorizer for AllowAll {}
