//! Label enforcement on the HTTP read paths: who the caller is, what they may see.
//!
//! Every handler that returns entities, history points or alerts takes a [`Caller`] and asks
//! [`Caller::may_see`] for each item. The clearance comes from the authenticated user's record
//! (`[labels]` levels; absent means the lowest level), or the policy's anonymous clearance for
//! callers without credentials. On an open node (no `[auth] required`, no `--secure`) the
//! policy is not enforced and every caller is unrestricted.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use rampart_labels::{Clearance, Policy};
use rampart_model::Label;

use crate::AppState;
use crate::auth::Identity;

/// The caller of a request, as far as labels are concerned.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The node's policy.
    pub policy: Arc<Policy>,
    /// What the caller may see.
    pub clearance: Clearance,
    /// The user name, or `None` for an anonymous caller.
    pub user: Option<String>,
}

impl Caller {
    /// Whether the caller may see data labelled `label`.
    pub fn may_see(&self, label: &Label) -> bool {
        self.policy.permits(&self.clearance, label)
    }

    /// Whether the caller may see a stored report (a history point). A report stored before
    /// labels were filled in at ingest has none: it counts as the policy's default label.
    pub fn may_see_report(&self, r: &rampart_model::Report) -> bool {
        self.clearance.is_unrestricted()
            || self.may_see(r.label.as_ref().unwrap_or(&self.policy.default_label))
    }

    /// The caller of a request carrying `identity` (if authenticated).
    pub fn of(state: &AppState, identity: Option<&Identity>) -> Caller {
        let policy = Arc::clone(&state.engine.config().labels);
        let clearance = policy.clearance_of(identity.map(|i| &i.clearance));
        Caller {
            policy,
            clearance,
            user: identity.map(|i| i.user.clone()),
        }
    }
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        Ok(Caller::of(state, parts.extensions.get::<Identity>()))
    }
}

/// Most explicit label overrides kept (`PUT /api/v1/entities/{uid}/label`).
pub const MAX_LABEL_OVERRIDES: usize = 10_000;

/// Labels set explicitly by an admin (downgrades, usually), persisted in
/// `<data>/labels/overrides.json` so that they survive a restart: the picture is rebuilt from
/// history by joining each entity's reports, and the overrides are applied after that.
///
/// Limit: a report folded after a downgrade and before a restart joins the downgraded label
/// again at runtime, but after the restart the override is applied on top of the rebuilt
/// label. Re-downgrading is then the admin's explicit act again (and audited again).
pub struct LabelOverrides {
    path: std::path::PathBuf,
    map: parking_lot::Mutex<std::collections::BTreeMap<String, Label>>,
}

impl LabelOverrides {
    /// Opens (or starts) the overrides of the node whose data directory is `data`.
    pub fn open(data: &std::path::Path) -> Result<Self, String> {
        let path = data.join("labels").join("overrides.json");
        let map = match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display()))?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Default::default(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        Ok(LabelOverrides {
            path,
            map: parking_lot::Mutex::new(map),
        })
    }

    /// Applies every override to the live picture (after it was rebuilt from history).
    pub fn apply(&self, engine: &rampart_engine::Engine) -> usize {
        let map = self.map.lock();
        map.iter()
            .filter(|(uid, label)| matches!(engine.set_label(uid, label), Ok(Some(_))))
            .count()
    }

    /// Records an override and writes the file (atomically: temporary file, fsync, rename).
    pub fn set(&self, uid: &str, label: &Label) -> Result<(), String> {
        let mut map = self.map.lock();
        if !map.contains_key(uid) && map.len() >= MAX_LABEL_OVERRIDES {
            return Err(format!(
                "at most {MAX_LABEL_OVERRIDES} label overrides are kept"
            ));
        }
        let mut next = map.clone();
        next.insert(uid.to_string(), label.clone());
        let body = serde_json::to_vec_pretty(&next).map_err(|e| e.to_string())?;
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let dir = self.path.parent().unwrap_or(std::path::Path::new("."));
            std::fs::create_dir_all(dir)?;
            let tmp = self.path.with_extension("json.tmp");
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&body)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            std::fs::File::open(dir)?.sync_all()
        };
        write().map_err(|e| format!("{}: {e}", self.path.display()))?;
        *map = next;
        Ok(())
    }
}
