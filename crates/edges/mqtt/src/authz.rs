//! Who a client is, and what it may publish and subscribe to.
//!
//! A device authenticates with its id as the MQTT user name and its token as the
//! password, or with a client certificate bound to it (mutual TLS). Its policy's topic
//! filters are expanded once, at CONNECT; a policy change applies from the next connection.
//! Anonymous clients, when allowed, get ordinary application topics only: nothing under
//! `rampart/` or `spBv1.0/`, and no filter starting with a wildcard (which would reach them).
//!
//! Each identity also gets its clearance at CONNECT (see [`crate::labels`]): the device's
//! registered clearance, or the anonymous one; the broker withholds labelled messages
//! (entity updates, alerts) it does not permit.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use rampart_devices::{Devices, Policy};
use rampart_mqtt_broker::topic;
use rampart_mqtt_broker::{Authorizer, Clearance, Credentials, Refusal};

use crate::server::Counters;

/// Topic prefixes reserved for devices.
const RESERVED: [&str; 2] = ["rampart", "spBv1.0"];

/// A connected client's identity.
#[derive(Clone, Debug)]
pub(crate) struct Identity {
    /// Device id, or `None` for an anonymous client.
    pub device: Option<Arc<str>>,
    /// The device's policy.
    pub policy: Option<Arc<Policy>>,
    publish: Arc<[String]>,
    subscribe: Arc<[String]>,
    /// What it may receive; `None`: unrestricted (labels not enforced).
    clearance: Option<Clearance>,
}

impl Identity {
    fn anonymous(clearance: Option<Clearance>) -> Identity {
        // One shared empty list for every anonymous client: they are checked by prefix.
        static EMPTY: std::sync::OnceLock<Arc<[String]>> = std::sync::OnceLock::new();
        let empty = EMPTY.get_or_init(|| Arc::from(Vec::new())).clone();
        Identity {
            device: None,
            policy: None,
            publish: empty.clone(),
            subscribe: empty,
            clearance,
        }
    }

    fn device(id: &str, policy: Arc<Policy>, clearance: Option<Clearance>) -> Identity {
        Identity {
            clearance,
            device: Some(Arc::from(id)),
            publish: Arc::from(policy.publish_filters(id)),
            subscribe: Arc::from(policy.subscribe_filters(id)),
            policy: Some(policy),
        }
    }
}

/// State shared by the broker task and the authorizer it owns.
#[derive(Default)]
pub(crate) struct AuthState {
    /// The TLS client-certificate subject of the connection whose CONNECT is being handled.
    pub pending_tls: Option<String>,
    /// Identity of each client id that authenticated.
    pub clients: HashMap<Arc<str>, Identity>,
    /// Device of the last successful authentication (read by the broker task right after).
    pub last_device: Option<Arc<str>>,
}

/// Bound on remembered client identities, as a multiple of `max_sessions`.
const CLIENTS_PER_SESSION: usize = 2;

/// The broker's [`Authorizer`], backed by the device registry.
pub(crate) struct DeviceAuthorizer {
    pub devices: Arc<Devices>,
    pub allow_anonymous: bool,
    pub state: Arc<Mutex<AuthState>>,
    pub counters: Arc<Counters>,
    pub max_clients: usize,
    /// The node's label policy: clearances of devices and anonymous clients.
    pub labels: Arc<rampart_labels::Policy>,
}

impl DeviceAuthorizer {
    pub(crate) fn new(
        devices: Arc<Devices>,
        allow_anonymous: bool,
        state: Arc<Mutex<AuthState>>,
        counters: Arc<Counters>,
        max_sessions: usize,
        labels: Arc<rampart_labels::Policy>,
    ) -> Self {
        DeviceAuthorizer {
            devices,
            allow_anonymous,
            state,
            counters,
            max_clients: max_sessions.saturating_mul(CLIENTS_PER_SESSION).max(1),
            labels,
        }
    }

    /// The clearance of device `id` (a device removed meanwhile gets the anonymous one).
    fn device_clearance(&self, id: &str) -> Option<Clearance> {
        let spec = self.devices.clearance(id);
        crate::labels::clearance(&self.labels, spec.as_ref())
    }
}

fn reserved(first_level: &str) -> bool {
    RESERVED.contains(&first_level)
}

/// True if every topic `requested` can match is matched by `allowed`.
pub(crate) fn covers(allowed: &str, requested: &str) -> bool {
    let mut a = allowed.split('/');
    let mut r = requested.split('/');
    loop {
        match (a.next(), r.next()) {
            (Some("#"), _) => return true,
            (None, None) => return true,
            (Some("+"), Some(x)) if x != "#" => {}
            (Some(x), Some(y)) if x == y && x != "+" && x != "#" => {}
            _ => return false,
        }
    }
}

impl Authorizer for DeviceAuthorizer {
    fn authenticate(&mut self, creds: &Credentials<'_>) -> Result<(), Refusal> {
        let mut st = self.state.lock();
        st.last_device = None;
        let identity = if let Some(subject) = st.pending_tls.clone() {
            match self.devices.by_cert_subject(&subject) {
                Some((id, policy)) => {
                    let c = self.device_clearance(&id);
                    Identity::device(&id, policy, c)
                }
                None => {
                    self.counters.auth_refused("unknown_certificate");
                    return Err(Refusal::NotAuthorized);
                }
            }
        } else if let Some(user) = creds.username {
            let password = creds.password.unwrap_or_default();
            match self.devices.authenticate(user, password) {
                Ok(policy) => Identity::device(user, policy, self.device_clearance(user)),
                Err(e) => {
                    self.counters.auth_refused(match e {
                        rampart_devices::AuthError::UnknownDevice => "unknown_device",
                        rampart_devices::AuthError::BadToken => "bad_token",
                    });
                    return Err(Refusal::BadCredentials);
                }
            }
        } else if self.allow_anonymous {
            Identity::anonymous(crate::labels::clearance(&self.labels, None))
        } else {
            self.counters.auth_refused("anonymous");
            return Err(Refusal::NotAuthorized);
        };
        if st.clients.len() >= self.max_clients {
            // Forget everyone else's cached identity; connected clients keep theirs
            // because the broker asks again only for new packets, and a miss below means
            // "not allowed" until they reconnect. Bounded memory wins over that corner.
            st.clients.clear();
            self.counters.auth_refused("identity_cache_reset");
        }
        st.last_device = identity.device.clone();
        st.clients.insert(Arc::from(creds.client_id), identity);
        Ok(())
    }

    fn may_publish(&mut self, client_id: &str, name: &str) -> bool {
        let st = self.state.lock();
        let Some(id) = st.clients.get(client_id) else {
            return false;
        };
        match &id.device {
            None => !reserved(name.split('/').next().unwrap_or_default()),
            Some(_) => id.publish.iter().any(|f| topic::matches(f, name)),
        }
    }

    fn clearance(&mut self, client_id: &str) -> Option<Clearance> {
        let st = self.state.lock();
        match st.clients.get(client_id) {
            Some(id) => id.clearance.clone(),
            // Asked right after `authenticate` stored it; if it is gone, the client is
            // treated as anonymous.
            None => crate::labels::clearance(&self.labels, None),
        }
    }

    fn may_subscribe(&mut self, client_id: &str, filter: &str) -> bool {
        let st = self.state.lock();
        let Some(id) = st.clients.get(client_id) else {
            return false;
        };
        let plain = match topic::parse_filter(filter) {
            Ok(f) => f.filter,
            Err(_) => return false,
        };
        match &id.device {
            None => {
                let first = plain.split('/').next().unwrap_or_default();
                first != "+" && first != "#" && !reserved(first)
            }
            Some(_) => id.subscribe.iter().any(|a| covers(a, plain)),
        }
    }
}

/// The identity of `client_id`, if it authenticated.
pub(crate) fn identity_of(state: &Mutex<AuthState>, client_id: &str) -> Option<Identity> {
    state.lock().clients.get(client_id).cloned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn authorizer(enforced: bool, anonymous: bool) -> (DeviceAuthorizer, String) {
        let devices = Devices::open(None, Default::default()).unwrap();
        let req: rampart_devices::NewDevice = serde_json::from_str(
            r#"{"id":"s1","cert_subject":"CN=s1","clearance":{"level":"SECRET","groups":["NATO"]}}"#,
        )
        .unwrap();
        let (_, token) = devices.register(req).unwrap();
        let labels = rampart_labels::Policy::new(
            &Default::default(),
            enforced,
            rampart_model::Label::unclassified(),
        )
        .unwrap();
        let counters = Arc::new(Counters::new(&rampart_engine::Metrics::new()));
        let state = Arc::new(Mutex::new(AuthState::default()));
        let a = DeviceAuthorizer::new(devices, anonymous, state, counters, 10, Arc::new(labels));
        (a, token.unwrap())
    }

    fn creds<'a>(client: &'a str, user: Option<&'a str>, pw: Option<&'a [u8]>) -> Credentials<'a> {
        Credentials {
            client_id: client,
            username: user,
            password: pw,
        }
    }

    #[test]
    fn sessions_get_their_device_or_anonymous_clearance() {
        let (mut a, token) = authorizer(true, true);
        a.authenticate(&creds("c1", Some("s1"), Some(token.as_bytes())))
            .unwrap();
        let c = a.clearance("c1").unwrap();
        assert_eq!((c.rank, c.groups.len()), (3, 1), "token-identified device");
        a.state.lock().pending_tls = Some("CN=s1".into());
        a.authenticate(&creds("c2", None, None)).unwrap();
        a.state.lock().pending_tls = None;
        assert_eq!(
            a.clearance("c2").unwrap().rank,
            3,
            "certificate-identified device"
        );
        a.authenticate(&creds("anon", None, None)).unwrap();
        let c = a.clearance("anon").unwrap();
        assert_eq!((c.rank, c.groups.len()), (0, 0), "anonymous: lowest level");
        // Not enforced (open node): unrestricted.
        let (mut open, token) = authorizer(false, true);
        open.authenticate(&creds("c1", Some("s1"), Some(token.as_bytes())))
            .unwrap();
        assert!(open.clearance("c1").is_none());
        open.authenticate(&creds("anon", None, None)).unwrap();
        assert!(open.clearance("anon").is_none());
    }

    #[test]
    fn filter_coverage() {
        assert!(covers("a/#", "a/b/c"));
        assert!(covers("a/#", "a/#"));
        assert!(covers("a/+/c", "a/x/c"));
        assert!(covers("a/+/c", "a/+/c"));
        assert!(!covers("a/+/c", "a/#"));
        assert!(!covers("a/b", "a/+"));
        assert!(!covers("a/b", "a/b/c"));
        assert!(covers("#", "x/y"));
        assert!(!covers("rampart/v1/d/#", "rampart/v1/+/cmd"));
    }
}
