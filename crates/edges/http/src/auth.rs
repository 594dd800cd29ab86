//! Operators: user accounts with roles, API tokens, console sessions, CSRF protection,
//! rate-limited logins, and the one table that says which role each API route needs.
//!
//! - Roles are ordered: `viewer` < `operator` < `admin`. A route needing `operator` admits
//!   operators and admins.
//! - Passwords and API tokens are stored only as argon2id hashes in `<data>/users/users.json`
//!   (written atomically, mode 0600).
//! - API tokens travel as `Authorization: Bearer rmp_<id>_<secret>`; the id finds the record,
//!   the 256-bit secret is verified against its hash. Tokens need no CSRF token (a browser never
//!   adds them by itself).
//! - `POST /api/v1/auth/login` sets an `HttpOnly`, `SameSite=Strict` session cookie (`Secure`
//!   over HTTPS) holding a random 256-bit id, and returns a CSRF token. A state-changing request
//!   authenticated by that cookie must carry the CSRF token in `X-CSRF-Token`.
//! - Failed logins are counted per user and per source address in bounded maps; past
//!   `max_login_failures` in `failure_window_secs` the answer is 429 until the window ends.
//! - [`ROUTES`] maps every (method, route pattern) to what it needs; a route missing from it
//!   is refused when authentication is required (default deny), and a unit test checks that
//!   every route the router registers is listed.

use rampart_labels::ClearanceSpec;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use axum::Json;
use axum::extract::{ConnectInfo, MatchedPath, Path as UrlPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use parking_lot::Mutex;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use rampart_engine::{Metrics, ReasonLabel};
use ring::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::{AppState, PeerAddr};

/// Name of the session cookie.
pub const SESSION_COOKIE: &str = "rampart_session";
/// Header carrying the CSRF token of a cookie-authenticated request.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A role. Ordered: each role can do what the roles below it can.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads the picture, history, alerts, rules, devices and metrics.
    Viewer,
    /// Also submits reports, acknowledges and clears alerts, and sends device commands.
    Operator,
    /// Also manages devices, rules, geofences, policies and users.
    Admin,
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            other => Err(format!(
                "unknown role {other:?}: expected viewer, operator or admin"
            )),
        }
    }
}

/// What a route needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, without credentials.
    Public,
    /// At least this role.
    Role(Role),
}

use Access::Public;
const VIEWER: Access = Access::Role(Role::Viewer);
const OPERATOR: Access = Access::Role(Role::Operator);
const ADMIN: Access = Access::Role(Role::Admin);

/// Every API route, by method and axum route pattern, with what it needs. The single source
/// of truth of authorization: the guard looks routes up here, and a test checks that every
/// route of [`crate::router`] is listed.
pub const ROUTES: &[(&str, &str, Access)] = &[
    // Public: liveness, the console's static files, login.
    ("GET", "/healthz", Public),
    ("GET", "/", Public),
    ("GET", "/favicon.svg", Public),
    ("GET", "/assets/{*path}", Public),
    ("POST", "/api/v1/auth/login", Public),
    // Viewers read.
    ("POST", "/api/v1/auth/logout", VIEWER),
    ("GET", "/api/v1/auth/me", VIEWER),
    ("GET", "/live", VIEWER),
    ("GET", "/metrics", VIEWER),
    ("GET", "/api/v1/openapi.json", VIEWER),
    ("GET", "/api/v1/entities", VIEWER),
    ("GET", "/api/v1/entities/{uid}", VIEWER),
    ("GET", "/api/v1/entities/{uid}/track", VIEWER),
    ("GET", "/api/v1/stream", VIEWER),
    ("GET", "/api/v1/history", VIEWER),
    ("GET", "/api/v1/console/config", VIEWER),
    ("GET", "/api/v1/console/tiles.pmtiles", VIEWER),
    ("GET", "/api/v1/console/tiles/{z}/{x}/{y}", VIEWER),
    ("GET", "/api/v1/devices", VIEWER),
    ("GET", "/api/v1/devices/{id}", VIEWER),
    ("GET", "/api/v1/devices/{id}/commands", VIEWER),
    ("GET", "/api/v1/commands/{id}", VIEWER),
    ("GET", "/api/v1/geofences", VIEWER),
    ("GET", "/api/v1/geofences/{id}", VIEWER),
    ("GET", "/api/v1/rules", VIEWER),
    ("GET", "/api/v1/rules/{id}", VIEWER),
    ("GET", "/api/v1/alerts", VIEWER),
    ("GET", "/api/v1/alerts/deadletters", VIEWER),
    ("GET", "/api/v1/alerts/{id}", VIEWER),
    // Operators act.
    ("POST", "/api/v1/reports", OPERATOR),
    ("POST", "/api/v1/alerts/{id}/ack", OPERATOR),
    ("POST", "/api/v1/alerts/{id}/clear", OPERATOR),
    // Quarantined reports may be hostile content: operators review them.
    ("GET", "/api/v1/quarantine", OPERATOR),
    ("POST", "/api/v1/devices/{id}/commands", OPERATOR),
    // Admins manage.
    ("POST", "/api/v1/devices", ADMIN),
    ("DELETE", "/api/v1/devices/{id}", ADMIN),
    ("PUT", "/api/v1/devices/{id}/policy", ADMIN),
    ("POST", "/api/v1/geofences", ADMIN),
    ("POST", "/api/v1/geofences/import", ADMIN),
    ("PUT", "/api/v1/geofences/{id}", ADMIN),
    ("DELETE", "/api/v1/geofences/{id}", ADMIN),
    ("POST", "/api/v1/rules", ADMIN),
    ("PUT", "/api/v1/rules/{id}", ADMIN),
    ("DELETE", "/api/v1/rules/{id}", ADMIN),
    ("GET", "/api/v1/audit/tail", ADMIN),
    ("GET", "/api/v1/users", ADMIN),
    ("POST", "/api/v1/users", ADMIN),
    ("DELETE", "/api/v1/users/{name}", ADMIN),
    ("POST", "/api/v1/users/{name}/tokens", ADMIN),
    ("PUT", "/api/v1/users/{name}/clearance", ADMIN),
    ("PUT", "/api/v1/entities/{uid}/label", ADMIN),
];

/// What `method` on `pattern` needs, or `None` when the route is not listed. `HEAD` is
/// treated as `GET`, as axum answers it with the `GET` handler.
pub fn required_access(method: &Method, pattern: &str) -> Option<Access> {
    let m = if method == Method::HEAD {
        "GET"
    } else {
        method.as_str()
    };
    ROUTES
        .iter()
        .find(|(rm, rp, _)| *rm == m && *rp == pattern)
        .map(|r| r.2)
}

/// Adds to an OpenAPI document the operations of this module and, on every operation, the
/// role it needs as `x-rampart-role` (`public`, `viewer`, `operator` or `admin`).
pub fn annotate_openapi(doc: &mut serde_json::Value) {
    let summaries = [
        (
            "post",
            "/api/v1/auth/login",
            "Log in: `{user, password}` → session cookie and `csrf_token`",
        ),
        (
            "post",
            "/api/v1/auth/logout",
            "End the session of the cookie",
        ),
        (
            "get",
            "/api/v1/auth/me",
            "Who the caller is, and the session's CSRF token",
        ),
        ("get", "/api/v1/users", "List users (no hashes)"),
        (
            "post",
            "/api/v1/users",
            "Create a user: `{name, role, password?}`",
        ),
        (
            "delete",
            "/api/v1/users/{name}",
            "Remove a user (not the last admin)",
        ),
        (
            "post",
            "/api/v1/users/{name}/tokens",
            "Issue an API token, returned once",
        ),
        (
            "put",
            "/api/v1/users/{name}/clearance",
            "Set what a user may see: `{level, groups}` (audited)",
        ),
    ];
    let Some(paths) = doc.get_mut("paths").and_then(|p| p.as_object_mut()) else {
        return;
    };
    for (method, path, summary) in summaries {
        let item = paths
            .entry(path.to_string())
            .or_insert_with(|| serde_json::json!({}));
        if let Some(item) = item.as_object_mut() {
            item.entry(method.to_string()).or_insert_with(|| {
                serde_json::json!({
                    "tags": ["auth"],
                    "summary": summary,
                    "responses": {"200": {"description": "OK"}},
                })
            });
        }
    }
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for (method, op) in item.iter_mut() {
            let Ok(m) = Method::from_bytes(method.to_uppercase().as_bytes()) else {
                continue;
            };
            let role = match required_access(&m, path) {
                Some(Access::Public) => "public",
                Some(Access::Role(Role::Viewer)) => "viewer",
                Some(Access::Role(Role::Operator)) => "operator",
                Some(Access::Role(Role::Admin)) => "admin",
                None => "unlisted (refused)",
            };
            if let Some(op) = op.as_object_mut() {
                op.insert("x-rampart-role".into(), role.into());
            }
        }
    }
}

/// User management is always enforced, even when `[auth] required = false`: an open API
/// must not let anyone mint the admin that a later secure start would trust.
fn always_enforced(pattern: &str) -> bool {
    pattern.starts_with("/api/v1/users")
}

/// `[auth]`: operators, sessions and login limits.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// Require credentials on every route but the public ones. `false` by default so a plain
    /// `serve` and the demo stay open on loopback; `--secure` forces it on.
    pub required: bool,
    /// A console session ends this many seconds after login.
    pub session_ttl_secs: u64,
    /// Most live sessions; the oldest is dropped to make room.
    pub max_sessions: usize,
    /// Most user accounts.
    pub max_users: usize,
    /// Most API tokens per user.
    pub max_tokens_per_user: usize,
    /// Failed logins allowed per user and per source address within the window.
    pub max_login_failures: u32,
    /// Length of the failed-login window in seconds.
    pub failure_window_secs: u64,
    /// Most users and addresses tracked for failed logins; when full, logins are refused
    /// (429) until entries expire, rather than forgetting failures.
    pub max_tracked_failures: usize,
    /// Shortest password accepted.
    pub min_password_len: usize,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            required: false,
            session_ttl_secs: 8 * 3600,
            max_sessions: 10_000,
            max_users: 1_000,
            max_tokens_per_user: 16,
            max_login_failures: 5,
            failure_window_secs: 60,
            max_tracked_failures: 10_000,
            min_password_len: 10,
        }
    }
}

const MAX_PASSWORD_LEN: usize = 1024;
const MAX_NAME_LEN: usize = 64;

#[derive(Clone, Debug, Serialize, Deserialize)]
struct StoredToken {
    id: String,
    hash: String,
    created_ms: u64,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
struct StoredUser {
    name: String,
    role: Role,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    tokens: Vec<StoredToken>,
    /// What the user may see (`[labels]`); absent means the lowest level and no groups.
    #[serde(default)]
    clearance: ClearanceSpec,
}

#[derive(Default, Serialize, Deserialize)]
struct UsersFile {
    users: Vec<StoredUser>,
}

/// A user as listed by the API (no hashes).
#[derive(Clone, Debug, Serialize, utoipa::ToSchema)]
pub struct UserInfo {
    /// Login name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Whether the user can log in with a password.
    pub has_password: bool,
    /// Number of API tokens.
    pub tokens: usize,
    /// Clearance: `{"level": "SECRET", "groups": ["NATO"]}`; `{}` is the lowest level.
    #[schema(value_type = Object)]
    pub clearance: ClearanceSpec,
}

/// The user accounts, persisted under `<data>/users/users.json`.
pub struct UserStore {
    path: PathBuf,
    max_users: usize,
    max_tokens: usize,
    min_password_len: usize,
    users: Mutex<Vec<StoredUser>>,
}

fn random_hex(bytes: usize) -> Result<String, String> {
    let mut buf = vec![0u8; bytes];
    SystemRandom::new()
        .fill(&mut buf)
        .map_err(|_| "the system random generator failed".to_string())?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}

fn hash_with(argon: &Argon2<'_>, secret: &str) -> Result<String, String> {
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| "the system random generator failed".to_string())?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| format!("salt: {e}"))?;
    argon
        .hash_password(secret.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing: {e}"))
}

/// Passwords: argon2id with the crate's defaults (19 MiB, 2 passes), slow on purpose.
fn password_hasher() -> Argon2<'static> {
    Argon2::default()
}

/// API-token secrets are 256 random bits, so guessing is hopeless whatever the cost: a light
/// argon2id keeps per-request verification around a millisecond.
fn token_hasher() -> Argon2<'static> {
    let params = Params::new(1024, 1, 1, None).unwrap_or_default();
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

fn verify(argon: &Argon2<'_>, secret: &str, phc: &str) -> bool {
    PasswordHash::new(phc)
        .map(|h| argon.verify_password(secret.as_bytes(), &h).is_ok())
        .unwrap_or(false)
}

fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.len() > MAX_NAME_LEN
        || !name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(format!(
            "user name {name:?}: 1 to {MAX_NAME_LEN} characters among A-Z a-z 0-9 . _ -"
        ));
    }
    Ok(())
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl UserStore {
    /// Opens (or starts empty) the store of the data directory `data`.
    pub fn open(data: &Path, cfg: &AuthConfig) -> Result<Self, String> {
        let path = data.join("users").join("users.json");
        let users = match std::fs::read(&path) {
            Ok(bytes) => {
                serde_json::from_slice::<UsersFile>(&bytes)
                    .map_err(|e| format!("{}: {e}", path.display()))?
                    .users
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(format!("{}: {e}", path.display())),
        };
        Ok(UserStore {
            path,
            max_users: cfg.max_users,
            max_tokens: cfg.max_tokens_per_user,
            min_password_len: cfg.min_password_len,
            users: Mutex::new(users),
        })
    }

    /// Where the store lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn save(&self, users: &[StoredUser]) -> Result<(), String> {
        let dir = self
            .path
            .parent()
            .ok_or_else(|| "users store has no directory".to_string())?;
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let body = serde_json::to_vec_pretty(&UsersFile {
            users: users.to_vec(),
        })
        .map_err(|e| format!("encoding users: {e}"))?;
        let tmp = self.path.with_extension("json.tmp");
        let write = || -> std::io::Result<()> {
            use std::io::Write;
            let mut opts = std::fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            let mut f = opts.open(&tmp)?;
            f.write_all(&body)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            std::fs::File::open(dir)?.sync_all()
        };
        write().map_err(|e| format!("{}: {e}", self.path.display()))
    }

    /// Whether there is no user at all.
    pub fn is_empty(&self) -> bool {
        self.users.lock().is_empty()
    }

    /// The users, without hashes.
    pub fn list(&self) -> Vec<UserInfo> {
        self.users
            .lock()
            .iter()
            .map(|u| UserInfo {
                name: u.name.clone(),
                role: u.role,
                has_password: u.password.is_some(),
                tokens: u.tokens.len(),
                clearance: u.clearance.clone(),
            })
            .collect()
    }

    /// Adds a user. Fails if the name is taken or invalid, the password too short, or the
    /// store full.
    pub fn add(&self, name: &str, role: Role, password: Option<&str>) -> Result<(), String> {
        check_name(name)?;
        let hash = match password {
            Some(p) if p.chars().count() < self.min_password_len => {
                return Err(format!(
                    "password: at least {} characters",
                    self.min_password_len
                ));
            }
            Some(p) if p.len() > MAX_PASSWORD_LEN => {
                return Err(format!("password: at most {MAX_PASSWORD_LEN} bytes"));
            }
            Some(p) => Some(hash_with(&password_hasher(), p)?),
            None => None,
        };
        let mut users = self.users.lock();
        if users.iter().any(|u| u.name == name) {
            return Err(format!("user {name:?} already exists"));
        }
        if users.len() >= self.max_users {
            return Err(format!("users: at most {} (max_users)", self.max_users));
        }
        let mut next = users.clone();
        next.push(StoredUser {
            name: name.to_string(),
            role,
            password: hash,
            tokens: Vec::new(),
            clearance: ClearanceSpec::default(),
        });
        self.save(&next)?;
        *users = next;
        Ok(())
    }

    /// Removes a user; `Ok(false)` if there was none. Refuses to remove the last admin.
    pub fn remove(&self, name: &str) -> Result<bool, String> {
        let mut users = self.users.lock();
        let Some(i) = users.iter().position(|u| u.name == name) else {
            return Ok(false);
        };
        if users[i].role == Role::Admin
            && users.iter().filter(|u| u.role == Role::Admin).count() == 1
        {
            return Err(format!("user {name:?} is the last admin"));
        }
        let mut next = users.clone();
        next.remove(i);
        self.save(&next)?;
        *users = next;
        Ok(true)
    }

    /// Sets what `name` may see. The caller checks the spec against the node's levels.
    pub fn set_clearance(&self, name: &str, clearance: ClearanceSpec) -> Result<(), String> {
        let mut users = self.users.lock();
        let mut next = users.clone();
        let Some(u) = next.iter_mut().find(|u| u.name == name) else {
            return Err(format!("no user {name:?}"));
        };
        u.clearance = clearance;
        self.save(&next)?;
        *users = next;
        Ok(())
    }

    /// The clearance of `name`, if there is such a user.
    pub fn clearance(&self, name: &str) -> Option<ClearanceSpec> {
        self.users
            .lock()
            .iter()
            .find(|u| u.name == name)
            .map(|u| u.clearance.clone())
    }

    /// Issues a new API token for `name` and returns it; only its hash is kept.
    pub fn issue_token(&self, name: &str) -> Result<String, String> {
        let id = random_hex(8)?;
        let secret = random_hex(32)?;
        let hash = hash_with(&token_hasher(), &secret)?;
        let mut users = self.users.lock();
        let mut next = users.clone();
        let Some(u) = next.iter_mut().find(|u| u.name == name) else {
            return Err(format!("no user {name:?}"));
        };
        if u.tokens.len() >= self.max_tokens {
            return Err(format!(
                "user {name:?} has {} tokens (max_tokens_per_user)",
                u.tokens.len()
            ));
        }
        u.tokens.push(StoredToken {
            id: id.clone(),
            hash,
            created_ms: now_ms(),
        });
        self.save(&next)?;
        *users = next;
        Ok(format!("rmp_{id}_{secret}"))
    }

    /// The user and role a password logs in as. Slow (argon2id): call off the async threads.
    pub fn verify_password(&self, name: &str, password: &str) -> Option<(String, Role)> {
        let found = self
            .users
            .lock()
            .iter()
            .find(|u| u.name == name)
            .map(|u| (u.password.clone(), u.role));
        match found {
            Some((Some(hash), role)) if password.len() <= MAX_PASSWORD_LEN => {
                verify(&password_hasher(), password, &hash).then(|| (name.to_string(), role))
            }
            _ => {
                // Same cost whether or not the user exists, so timing does not reveal names.
                let _ = hash_with(&password_hasher(), "timing-equaliser");
                None
            }
        }
    }

    /// The user and role an API token belongs to.
    pub fn verify_token(&self, token: &str) -> Option<(String, Role)> {
        let rest = token.strip_prefix("rmp_")?;
        let (id, secret) = rest.split_once('_')?;
        if id.len() != 16 || secret.len() != 64 {
            return None;
        }
        let found = self.users.lock().iter().find_map(|u| {
            u.tokens
                .iter()
                .find(|t| t.id == id)
                .map(|t| (u.name.clone(), u.role, t.hash.clone()))
        })?;
        verify(&token_hasher(), secret, &found.2).then_some((found.0, found.1))
    }
}

/// Who made a request, attached by the guard as a request extension.
#[derive(Clone, Debug)]
pub struct Identity {
    /// User name.
    pub user: String,
    /// Role.
    pub role: Role,
    /// What the user may see, as recorded in the user store when the request arrived (so a
    /// changed clearance applies to live sessions at once).
    pub clearance: ClearanceSpec,
    /// The session id and its CSRF token, when authenticated by the session cookie.
    session: Option<(String, String)>,
}

struct Session {
    user: String,
    role: Role,
    csrf: String,
    created: Instant,
    expires: Instant,
}

/// Users, sessions and failed-login tracking of a node, shared by its HTTP listeners.
pub struct Auth {
    cfg: AuthConfig,
    users: UserStore,
    sessions: Mutex<HashMap<String, Session>>,
    failures: Mutex<HashMap<String, (Instant, u32)>>,
    refused: Family<ReasonLabel, Counter>,
    logins: Counter,
}

impl Auth {
    /// Builds it over `users`, registering its counters in `metrics`.
    pub fn new(cfg: AuthConfig, users: UserStore, metrics: &Metrics) -> Self {
        let refused = metrics.register_reason_counter(
            "auth_refusals",
            "Requests and logins refused by authentication or authorization, by reason",
        );
        let logins = metrics.register_counter("auth_logins", "Successful console logins");
        Auth {
            cfg,
            users,
            sessions: Mutex::new(HashMap::new()),
            failures: Mutex::new(HashMap::new()),
            refused,
            logins,
        }
    }

    /// The user accounts.
    pub fn users(&self) -> &UserStore {
        &self.users
    }

    /// Whether credentials are required.
    pub fn required(&self) -> bool {
        self.cfg.required
    }

    fn count(&self, reason: &str) {
        self.refused
            .get_or_create(&ReasonLabel {
                reason: reason.to_string(),
            })
            .inc();
    }

    fn window(&self) -> Duration {
        Duration::from_secs(self.cfg.failure_window_secs)
    }

    /// Whether `keys` may try a login now; `false` if any is over its limit or the table is
    /// full.
    fn login_allowed(&self, keys: &[String]) -> bool {
        let now = Instant::now();
        let window = self.window();
        let mut f = self.failures.lock();
        f.retain(|_, (start, _)| now.duration_since(*start) < window);
        if f.len() + keys.len() > self.cfg.max_tracked_failures {
            return false;
        }
        keys.iter().all(|k| {
            f.get(k)
                .is_none_or(|(_, n)| *n < self.cfg.max_login_failures)
        })
    }

    fn login_failed(&self, keys: &[String]) {
        let now = Instant::now();
        let mut f = self.failures.lock();
        for k in keys {
            if f.len() >= self.cfg.max_tracked_failures && !f.contains_key(k) {
                continue;
            }
            f.entry(k.clone()).or_insert((now, 0)).1 += 1;
        }
    }

    fn new_session(&self, user: String, role: Role) -> Result<(String, String), String> {
        let id = random_hex(32)?;
        let csrf = random_hex(32)?;
        let now = Instant::now();
        let mut s = self.sessions.lock();
        s.retain(|_, v| v.expires > now);
        while s.len() >= self.cfg.max_sessions.max(1) {
            let oldest = s
                .iter()
                .min_by_key(|(_, v)| v.created)
                .map(|(k, _)| k.clone());
            match oldest {
                Some(k) => s.remove(&k),
                None => break,
            };
        }
        s.insert(
            id.clone(),
            Session {
                user,
                role,
                csrf: csrf.clone(),
                created: now,
                expires: now + Duration::from_secs(self.cfg.session_ttl_secs),
            },
        );
        Ok((id, csrf))
    }

    fn drop_user_sessions(&self, user: &str) {
        self.sessions.lock().retain(|_, v| v.user != user);
    }

    /// Resolves the credentials of a request: `Ok(None)` when there are none, `Err` (with
    /// the refusal reason) when they are wrong.
    fn identify(&self, headers: &HeaderMap) -> Result<Option<Identity>, &'static str> {
        if let Some(v) = headers.get(header::AUTHORIZATION) {
            let token = v
                .to_str()
                .ok()
                .and_then(|s| s.strip_prefix("Bearer "))
                .ok_or("bad_authorization_header")?;
            let (user, role) = self.users.verify_token(token.trim()).ok_or("bad_token")?;
            let clearance = self.users.clearance(&user).unwrap_or_default();
            return Ok(Some(Identity {
                user,
                role,
                clearance,
                session: None,
            }));
        }
        let Some(id) = session_cookie(headers) else {
            return Ok(None);
        };
        let now = Instant::now();
        let found = {
            let s = self.sessions.lock();
            match s.get(&id) {
                Some(sess) if sess.expires > now => {
                    Some((sess.user.clone(), sess.role, sess.csrf.clone()))
                }
                _ => None,
            }
        };
        let (user, role, csrf) = found.ok_or("bad_session")?;
        let clearance = self.users.clearance(&user).unwrap_or_default();
        Ok(Some(Identity {
            user,
            role,
            clearance,
            session: Some((id, csrf)),
        }))
    }
}

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == SESSION_COOKIE)
        .map(|(_, v)| v.to_string())
}

/// Compares without an early exit, so timing does not reveal a matching prefix.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn refuse(status: StatusCode, message: &str) -> Response {
    let mut r = ApiError::new(status, message).into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"rampart\""),
        );
    }
    r
}

/// The middleware of [`crate::router`]: identifies the caller, checks CSRF on
/// cookie-authenticated state changes, and checks the route's role in [`ROUTES`].
pub(crate) async fn guard(State(st): State<AppState>, mut req: Request, next: Next) -> Response {
    let Some(auth) = st.auth.clone() else {
        return next.run(req).await;
    };
    let pattern = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let enforce = auth.cfg.required || always_enforced(&pattern);
    let identity = match auth.identify(req.headers()) {
        Ok(i) => i,
        Err(reason) if enforce => {
            auth.count(reason);
            return refuse(StatusCode::UNAUTHORIZED, "invalid credentials");
        }
        Err(_) => None,
    };
    if let Some(Identity {
        session: Some((_, csrf)),
        ..
    }) = &identity
    {
        let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
        let given = req
            .headers()
            .get(CSRF_HEADER)
            .map(|v| v.as_bytes())
            .unwrap_or_default();
        if !safe && !same(given, csrf.as_bytes()) {
            auth.count("csrf");
            return refuse(
                StatusCode::FORBIDDEN,
                "missing or wrong X-CSRF-Token for a cookie-authenticated request",
            );
        }
    }
    if enforce {
        match required_access(req.method(), &pattern) {
            Some(Access::Public) => {}
            Some(Access::Role(need)) => match &identity {
                None => {
                    auth.count("no_credentials");
                    return refuse(StatusCode::UNAUTHORIZED, "credentials required");
                }
                Some(id) if id.role < need => {
                    auth.count("forbidden");
                    return refuse(
                        StatusCode::FORBIDDEN,
                        &format!("this route needs the {need:?} role").to_lowercase(),
                    );
                }
                Some(_) => {}
            },
            None => {
                auth.count("unlisted_route");
                return refuse(
                    StatusCode::FORBIDDEN,
                    "route not in the authorization table",
                );
            }
        }
    }
    if let Some(id) = identity {
        req.extensions_mut().insert(id);
    }
    next.run(req).await
}

/// The routes of this module.
pub(crate) fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/api/v1/auth/login", post(login))
        .route("/api/v1/auth/logout", post(logout))
        .route("/api/v1/auth/me", get(me))
        .route("/api/v1/users", get(list_users).post(create_user))
        .route("/api/v1/users/{name}", delete(remove_user))
        .route("/api/v1/users/{name}/tokens", post(create_token))
        .route("/api/v1/users/{name}/clearance", put(set_clearance))
}

fn service(st: &AppState) -> Result<Arc<Auth>, ApiError> {
    st.auth.clone().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "this node has no user accounts",
        )
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginBody {
    user: String,
    password: String,
}

/// `POST /api/v1/auth/login`: `{user, password}` → session cookie and CSRF token.
async fn login(State(st): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let auth = service(&st)?;
    let ip = req
        .extensions()
        .get::<ConnectInfo<PeerAddr>>()
        .map(|c| c.0.0.ip().to_string())
        .unwrap_or_else(|| "unknown".into());
    let body = axum::body::to_bytes(req.into_body(), 64 * 1024)
        .await
        .map_err(|e| ApiError::bad_param("body", e.to_string()))?;
    let body: LoginBody =
        serde_json::from_slice(&body).map_err(|e| ApiError::bad_param("body", e.to_string()))?;
    // Keys stay small whatever the body holds: names longer than this never exist anyway.
    let user_key: String = body.user.chars().take(MAX_NAME_LEN).collect();
    let keys = [format!("user:{user_key}"), format!("ip:{ip}")];
    let actor = format!("{user_key}@{ip}");
    if !auth.login_allowed(&keys) {
        auth.count("login_rate_limited");
        crate::audit::record(
            &st,
            &actor,
            "auth.login_refused",
            &user_key,
            serde_json::json!({"reason": "rate limited"}),
        );
        let mut r = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too many failed logins; try again later",
        )
        .into_response();
        r.headers_mut().insert(
            header::RETRY_AFTER,
            HeaderValue::from(auth.cfg.failure_window_secs),
        );
        return Ok(r);
    }
    let a = auth.clone();
    let (user, password) = (body.user.clone(), body.password);
    let verified = tokio::task::spawn_blocking(move || a.users.verify_password(&user, &password))
        .await
        .ok()
        .flatten();
    let Some((user, role)) = verified else {
        auth.login_failed(&keys);
        auth.count("bad_login");
        crate::audit::record(
            &st,
            &actor,
            "auth.login_failed",
            &user_key,
            serde_json::json!({}),
        );
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "wrong user name or password",
        ));
    };
    let (id, csrf) = auth
        .new_session(user.clone(), role)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    auth.logins.inc();
    crate::audit::record(
        &st,
        &actor,
        "auth.login",
        &user,
        serde_json::json!({"role": role}),
    );
    let cookie = format!(
        "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}{}",
        auth.cfg.session_ttl_secs,
        if st.https { "; Secure" } else { "" }
    );
    let mut r = Json(serde_json::json!({
        "user": user,
        "role": role,
        "csrf_token": csrf,
        "expires_in_secs": auth.cfg.session_ttl_secs,
    }))
    .into_response();
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(r)
}

/// `POST /api/v1/auth/logout`: ends the session of the cookie.
async fn logout(State(st): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let auth = service(&st)?;
    if let Some(Identity {
        session: Some((id, _)),
        ..
    }) = req.extensions().get::<Identity>()
    {
        auth.sessions.lock().remove(id);
    }
    let clear = format!(
        "{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0{}",
        if st.https { "; Secure" } else { "" }
    );
    let mut r = StatusCode::NO_CONTENT.into_response();
    if let Ok(v) = HeaderValue::from_str(&clear) {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(r)
}

/// `GET /api/v1/auth/me`: who the caller is (and the session's CSRF token, so a reloaded
/// console can recover it; the cookie itself is HttpOnly).
async fn me(State(st): State<AppState>, req: Request) -> Result<Response, ApiError> {
    let auth = service(&st)?;
    let Some(id) = req.extensions().get::<Identity>() else {
        if !auth.required() {
            // An open node: the console needs no login.
            return Ok(
                Json(serde_json::json!({"user": null, "auth_required": false})).into_response(),
            );
        }
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "not logged in"));
    };
    Ok(Json(serde_json::json!({
        "user": id.user,
        "role": id.role,
        "via": if id.session.is_some() { "session" } else { "token" },
        "csrf_token": id.session.as_ref().map(|s| s.1.clone()),
        "auth_required": auth.required(),
    }))
    .into_response())
}

async fn list_users(State(st): State<AppState>) -> Result<Json<Vec<UserInfo>>, ApiError> {
    Ok(Json(service(&st)?.users.list()))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    name: String,
    role: Role,
    #[serde(default)]
    password: Option<String>,
}

async fn create_user(
    State(st): State<AppState>,
    ext: axum::http::Extensions,
    Json(body): Json<NewUser>,
) -> Result<Response, ApiError> {
    let auth = service(&st)?;
    let a = auth.clone();
    let name = body.name.clone();
    tokio::task::spawn_blocking(move || {
        a.users.add(&body.name, body.role, body.password.as_deref())
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e))?;
    crate::audit::record(
        &st,
        &crate::audit::actor(&ext),
        "user.create",
        &name,
        serde_json::json!({"role": body.role}),
    );
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"name": name, "role": body.role})),
    )
        .into_response())
}

async fn remove_user(
    State(st): State<AppState>,
    ext: axum::http::Extensions,
    UrlPath(name): UrlPath<String>,
) -> Result<StatusCode, ApiError> {
    let auth = service(&st)?;
    match auth.users.remove(&name) {
        Ok(true) => {
            auth.drop_user_sessions(&name);
            crate::audit::record(
                &st,
                &crate::audit::actor(&ext),
                "user.remove",
                &name,
                serde_json::json!({}),
            );
            Ok(StatusCode::NO_CONTENT)
        }
        Ok(false) => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            format!("no user {name:?}"),
        )),
        Err(e) => Err(ApiError::new(StatusCode::CONFLICT, e)),
    }
}

async fn create_token(
    State(st): State<AppState>,
    ext: axum::http::Extensions,
    UrlPath(name): UrlPath<String>,
) -> Result<Response, ApiError> {
    let auth = service(&st)?;
    let token = auth
        .users
        .issue_token(&name)
        .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, e))?;
    crate::audit::record(
        &st,
        &crate::audit::actor(&ext),
        "user.token_issue",
        &name,
        serde_json::json!({}),
    );
    Ok((
        StatusCode::CREATED,
        Json(serde_json::json!({"user": name, "token": token})),
    )
        .into_response())
}

/// `PUT /api/v1/users/{name}/clearance`: `{level, groups}`; the level must be configured.
async fn set_clearance(
    State(st): State<AppState>,
    ext: axum::http::Extensions,
    UrlPath(name): UrlPath<String>,
    Json(body): Json<ClearanceSpec>,
) -> Result<StatusCode, ApiError> {
    let auth = service(&st)?;
    body.resolve(&st.engine.config().labels.levels)
        .map_err(|e| ApiError::bad_param("clearance", e.to_string()))?;
    let before = auth
        .users
        .clearance(&name)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no user {name:?}")))?;
    auth.users
        .set_clearance(&name, body.clone())
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e))?;
    crate::audit::record(
        &st,
        &crate::audit::actor(&ext),
        "user.clearance",
        &name,
        serde_json::json!({"before": before, "after": body}),
    );
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    /// Every `(METHOD, pattern)` that a `.route(...)` call in these sources registers.
    fn registered(src: &str) -> Vec<(String, String)> {
        let mut out = Vec::new();
        let mut rest = src;
        while let Some(i) = rest.find(".route(") {
            rest = &rest[i + ".route(".len()..];
            // The call's text up to its closing parenthesis.
            let mut depth = 1;
            let mut end = 0;
            for (j, c) in rest.char_indices() {
                match c {
                    '(' => depth += 1,
                    ')' => {
                        depth -= 1;
                        if depth == 0 {
                            end = j;
                            break;
                        }
                    }
                    _ => {}
                }
            }
            let call = &rest[..end];
            let (path_arg, methods) = call.split_once(',').expect("route(path, handler)");
            let path_arg = path_arg.trim();
            let path = if let Some(p) = path_arg.strip_prefix('"') {
                p.trim_end_matches('"').to_string()
            } else if path_arg.ends_with("PMTILES_PATH") {
                rampart_console::PMTILES_PATH.to_string()
            } else {
                panic!("unknown route path expression {path_arg}");
            };
            for m in ["get", "post", "put", "delete", "patch"] {
                let needle = format!("{m}(");
                let hit = methods.match_indices(&needle).any(|(k, _)| {
                    k == 0 || !methods[..k].ends_with(|c: char| c.is_alphanumeric() || c == '_')
                });
                if hit {
                    out.push((m.to_uppercase(), path.clone()));
                }
            }
        }
        out
    }

    #[test]
    fn every_registered_route_is_in_the_table() {
        let sources = [
            include_str!("lib.rs"),
            include_str!("rules.rs"),
            include_str!("auth.rs"),
            include_str!("audit.rs"),
            include_str!("../../console/src/lib.rs"),
        ];
        let mut all = Vec::new();
        for s in sources {
            // Only code before the tests of each file.
            let code = s.split("#[cfg(test)]").next().unwrap_or(s);
            all.extend(registered(code));
        }
        assert!(all.len() >= 40, "found only {} routes: {all:?}", all.len());
        for (m, p) in &all {
            let method = Method::from_bytes(m.as_bytes()).unwrap();
            assert!(
                required_access(&method, p).is_some(),
                "{m} {p} is registered but missing from auth::ROUTES"
            );
        }
        // And the table names no route that does not exist.
        for (m, p, _) in ROUTES {
            assert!(
                all.iter().any(|(rm, rp)| rm == m && rp == p),
                "{m} {p} is in auth::ROUTES but not registered"
            );
        }
    }

    #[test]
    fn openapi_states_each_operation_role() {
        let mut doc = serde_json::json!({"paths": {
            "/api/v1/reports": {"post": {}},
            "/api/v1/entities": {"get": {}},
        }});
        annotate_openapi(&mut doc);
        assert_eq!(
            doc["paths"]["/api/v1/reports"]["post"]["x-rampart-role"],
            "operator"
        );
        assert_eq!(
            doc["paths"]["/api/v1/entities"]["get"]["x-rampart-role"],
            "viewer"
        );
        assert_eq!(
            doc["paths"]["/api/v1/users"]["post"]["x-rampart-role"],
            "admin"
        );
        assert_eq!(
            doc["paths"]["/api/v1/auth/login"]["post"]["x-rampart-role"],
            "public"
        );
    }

    #[test]
    fn roles_are_ordered_and_unlisted_routes_have_no_access() {
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
        assert_eq!(required_access(&Method::GET, "/api/v1/nope"), None);
        assert_eq!(
            required_access(&Method::HEAD, "/api/v1/entities"),
            Some(VIEWER)
        );
    }

    #[test]
    fn store_hashes_and_verifies() {
        let dir = std::env::temp_dir().join(format!("rampart-auth-{}", std::process::id()));
        let cfg = AuthConfig::default();
        let store = UserStore::open(&dir, &cfg).unwrap();
        store
            .add("alice", Role::Operator, Some("correct horse battery"))
            .unwrap();
        assert!(store.add("alice", Role::Viewer, None).is_err());
        assert!(store.add("bob", Role::Viewer, Some("short")).is_err());
        assert!(store.add("bad name", Role::Viewer, None).is_err());
        let token = store.issue_token("alice").unwrap();
        let text = std::fs::read_to_string(store.path()).unwrap();
        assert!(!text.contains("correct horse"), "plain password on disk");
        assert!(!text.contains(&token[21..]), "plain token secret on disk");
        let again = UserStore::open(&dir, &cfg).unwrap();
        assert_eq!(
            again.verify_password("alice", "correct horse battery"),
            Some(("alice".into(), Role::Operator))
        );
        assert_eq!(again.verify_password("alice", "wrong password!"), None);
        assert_eq!(
            again.verify_token(&token),
            Some(("alice".into(), Role::Operator))
        );
        let mut flipped = token.clone();
        flipped.pop();
        flipped.push(if token.ends_with('0') { '1' } else { '0' });
        assert_eq!(again.verify_token(&flipped), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
