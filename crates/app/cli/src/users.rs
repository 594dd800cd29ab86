//! Operator accounts from the command line (`rampart user add | token | list | remove`) and
//! the node's side of them at start: opening `<data>/users/users.json` and creating the first
//! admin from `RAMPART_ADMIN_PASSWORD` when there is no user yet.
//!
//! The running node reads the store once at start; edit it with the node stopped, or use the
//! API (`/api/v1/users`) while it runs.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, anyhow, bail};
use clap::{Args, Subcommand};
use rampart_engine::Metrics;
use rampart_http::auth::{Auth, Role, UserStore};

use crate::config::Config;

/// Environment variable holding the first admin's password on a first start.
pub const ADMIN_PASSWORD_ENV: &str = "RAMPART_ADMIN_PASSWORD";

/// `rampart user`.
#[derive(Args)]
pub struct UserArgs {
    #[command(subcommand)]
    command: UserCommand,
    /// TOML configuration file (for `data` and `[auth]`).
    #[arg(
        long,
        short = 'c',
        env = "RAMPART_CONFIG",
        value_name = "FILE",
        global = true
    )]
    config: Option<PathBuf>,
    /// Data directory: users live in DIR/users/users.json.
    #[arg(long, env = "RAMPART_DATA", value_name = "DIR", global = true)]
    data: Option<PathBuf>,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create a user (run it with the node stopped).
    Add {
        /// Login name (A-Z a-z 0-9 . _ -).
        name: String,
        /// viewer, operator or admin.
        #[arg(long, default_value = "viewer")]
        role: String,
        /// Read the password from the first line of standard input (otherwise the user can
        /// only use API tokens).
        #[arg(long)]
        password_stdin: bool,
        /// Also issue an API token and print it (shown once; only its hash is stored).
        #[arg(long)]
        token: bool,
        /// Clearance level (one of `[labels] levels`); default: the lowest level.
        #[arg(long)]
        clearance: Option<String>,
        /// Releasability groups the user belongs to, comma-separated (e.g. `NATO,FVEY`).
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
    },
    /// Set what a user may see: a clearance level and releasability groups.
    Clearance {
        /// Login name.
        name: String,
        /// Clearance level (one of `[labels] levels`).
        level: String,
        /// Releasability groups, comma-separated.
        #[arg(long, value_delimiter = ',')]
        groups: Vec<String>,
    },
    /// Issue an API token for a user and print it (shown once).
    Token {
        /// Login name.
        name: String,
    },
    /// List users and their roles.
    List,
    /// Remove a user (the last admin cannot be removed).
    Remove {
        /// Login name.
        name: String,
    },
}

/// Refuses a clearance that names a level or group the node's `[labels]` does not allow.
fn check_clearance(cfg: &Config, spec: &rampart_labels::ClearanceSpec) -> anyhow::Result<()> {
    let policy = cfg.label_policy()?;
    spec.resolve(&policy.levels)
        .map(|_| ())
        .map_err(|e| anyhow!("clearance: {e}"))
}

/// Records a change made from the command line in the node's audit log. The actor is
/// `cli:<login>` (see [`crate::pki::cli_actor`]). A log that cannot be opened or written stops
/// nothing that already happened, but is reported loudly.
fn audit_cli(cfg: &Config, action: &str, target: &str, detail: serde_json::Value) {
    let actor = crate::pki::cli_actor();
    match crate::audit::open(&cfg.data) {
        Ok(log) => {
            if let Err(e) = log.append(&actor, action, target, detail) {
                eprintln!("warning: could not write the audit record: {e}");
            }
        }
        Err(e) => eprintln!("warning: could not open the audit log: {e:#}"),
    }
}

fn store(cfg: &Config) -> anyhow::Result<UserStore> {
    UserStore::open(&cfg.data, &cfg.auth).map_err(|e| anyhow!(e))
}

/// Runs `rampart user ...`.
pub fn run(a: UserArgs) -> anyhow::Result<()> {
    let mut cfg = match &a.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(d) = a.data {
        cfg.data = d;
    }
    let users = store(&cfg)?;
    match a.command {
        UserCommand::Add {
            name,
            role,
            password_stdin,
            token,
            clearance,
            groups,
        } => {
            let spec = rampart_labels::ClearanceSpec {
                level: clearance,
                groups,
            };
            check_clearance(&cfg, &spec)?;
            let role: Role = role.parse().map_err(|e: String| anyhow!(e))?;
            let password = if password_stdin {
                let mut text = String::new();
                std::io::stdin()
                    .take(4096)
                    .read_to_string(&mut text)
                    .context("reading the password from standard input")?;
                let line = text.lines().next().unwrap_or_default().to_string();
                if line.is_empty() {
                    bail!("--password-stdin: standard input held no password");
                }
                Some(line)
            } else {
                None
            };
            users
                .add(&name, role, password.as_deref())
                .map_err(|e| anyhow!(e))?;
            users
                .set_clearance(&name, spec.clone())
                .map_err(|e| anyhow!(e))?;
            audit_cli(
                &cfg,
                "user.create",
                &name,
                serde_json::json!({"role": role, "clearance": spec}),
            );
            eprintln!("added user {name} ({role:?}) in {}", users.path().display());
            if token {
                println!("{}", users.issue_token(&name).map_err(|e| anyhow!(e))?);
            }
        }
        UserCommand::Token { name } => {
            println!("{}", users.issue_token(&name).map_err(|e| anyhow!(e))?);
            audit_cli(&cfg, "user.token_issue", &name, serde_json::json!({}));
        }
        UserCommand::Clearance {
            name,
            level,
            groups,
        } => {
            let spec = rampart_labels::ClearanceSpec {
                level: Some(level),
                groups,
            };
            check_clearance(&cfg, &spec)?;
            let before = users
                .clearance(&name)
                .ok_or_else(|| anyhow!("no user {name:?}"))?;
            users
                .set_clearance(&name, spec.clone())
                .map_err(|e| anyhow!(e))?;
            audit_cli(
                &cfg,
                "user.clearance",
                &name,
                serde_json::json!({"before": before, "after": spec}),
            );
            eprintln!("user {name}: clearance set");
        }
        UserCommand::List => {
            for u in users.list() {
                println!(
                    "{}\t{:?}\tpassword={}\ttokens={}\tclearance={}",
                    u.name,
                    u.role,
                    u.has_password,
                    u.tokens,
                    serde_json::to_string(&u.clearance).unwrap_or_default()
                );
            }
        }
        UserCommand::Remove { name } => {
            if !users.remove(&name).map_err(|e| anyhow!(e))? {
                bail!("no user {name:?}");
            }
            audit_cli(&cfg, "user.remove", &name, serde_json::json!({}));
            eprintln!("removed user {name}");
        }
    }
    Ok(())
}

/// The node's accounts: opens the store and, when it is empty and `RAMPART_ADMIN_PASSWORD`
/// is set, creates the user `admin` with that password.
pub fn open_auth(cfg: &Config, metrics: &Metrics) -> anyhow::Result<Arc<Auth>> {
    let users = store(cfg)?;
    if users.is_empty()
        && let Ok(pw) = std::env::var(ADMIN_PASSWORD_ENV)
        && !pw.is_empty()
    {
        users
            .add("admin", Role::Admin, Some(&pw))
            .map_err(|e| anyhow!("{ADMIN_PASSWORD_ENV}: {e}"))?;
        tracing::warn!(
            "created the first admin user `admin` from {ADMIN_PASSWORD_ENV}; unset it now"
        );
    }
    if cfg.auth.required && users.is_empty() {
        tracing::warn!(
            "[auth] required = true but there is no user: create one with `rampart user add NAME \
             --role admin --password-stdin` or {ADMIN_PASSWORD_ENV}"
        );
    }
    Ok(Arc::new(Auth::new(cfg.auth.clone(), users, metrics)))
}
