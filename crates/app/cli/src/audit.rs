//! `rampart audit verify|export`, and opening a node's audit log (`<data>/audit`) for the
//! node and for CLI commands that change security state (`rampart pki issue|revoke`).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Args, Subcommand};
use rampart_audit::AuditLog;

use crate::config::Config;

/// `rampart audit …`
#[derive(Args)]
pub struct AuditArgs {
    #[command(subcommand)]
    command: AuditCommand,
    /// TOML configuration file (for `data`).
    #[arg(
        long,
        short = 'c',
        env = "RAMPART_CONFIG",
        value_name = "FILE",
        global = true
    )]
    config: Option<PathBuf>,
    /// Data directory: the log lives in DIR/audit/audit.log.
    #[arg(long, env = "RAMPART_DATA", value_name = "DIR", global = true)]
    data: Option<PathBuf>,
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the whole chain and its head: exits non-zero naming the first bad record if any
    /// record was changed, deleted, reordered or cut off.
    Verify,
    /// Write the log as JSON lines (to stdout, or FILE).
    Export {
        /// Write to FILE instead of stdout.
        #[arg(long, short = 'o', value_name = "FILE")]
        out: Option<PathBuf>,
    },
}

/// Opens the audit log of the node whose data directory is `data` (verifying it).
pub fn open(data: &std::path::Path) -> anyhow::Result<Arc<AuditLog>> {
    let dir = AuditLog::dir_in(data);
    AuditLog::open(&dir)
        .map(Arc::new)
        .with_context(|| format!("opening the audit log in {}", dir.display()))
}

/// Records the node's start and, when the effective configuration differs from the one the
/// last start recorded, a `config.change` record with both digests: configuration is changed
/// by editing a file, so the change is caught at the next start. The digest is SHA-256 of the
/// effective configuration as JSON (secrets are not part of it: the configuration holds paths
/// to keys, never keys).
pub fn record_start(log: &AuditLog, cfg: &Config) {
    let json = serde_json::to_vec(cfg).unwrap_or_default();
    let digest = ring::digest::digest(&ring::digest::SHA256, &json);
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    let marker = AuditLog::dir_in(&cfg.data).join("config.sha256");
    let before = std::fs::read_to_string(&marker).ok();
    let actor = "node";
    let detail = serde_json::json!({
        "config_sha256": hex,
        "listen": cfg.listen,
        "auth_required": cfg.auth.required,
        "version": env!("CARGO_PKG_VERSION"),
    });
    if let Err(e) = log.append(actor, "node.start", "node", detail) {
        tracing::error!(error = %e, "could not write the audit record");
    }
    if before.as_deref().map(str::trim) != Some(hex.as_str()) {
        let detail =
            serde_json::json!({"before": before.map(|b| b.trim().to_string()), "after": hex});
        if let Err(e) = log.append(actor, "config.change", "config", detail) {
            tracing::error!(error = %e, "could not write the audit record");
        }
        if let Err(e) = std::fs::write(&marker, &hex) {
            tracing::error!(error = %e, path = %marker.display(), "could not write the config digest");
        }
    }
}

/// Runs `rampart audit …`.
pub fn run(a: AuditArgs) -> anyhow::Result<()> {
    let mut cfg = match &a.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(d) = a.data {
        cfg.data = d;
    }
    let log = AuditLog::log_in(&cfg.data);
    match a.command {
        AuditCommand::Verify => {
            let report = rampart_audit::verify(&log)
                .with_context(|| format!("audit log {} does not verify", log.display()))?;
            println!("ok: {} records, tail {}", report.records, report.tail.hash);
            if report.head_lagged {
                eprintln!("note: the head sidecar was one record behind (a crash between writes)");
            }
        }
        AuditCommand::Export { out } => {
            let mut w: Box<dyn Write> = match &out {
                Some(p) => Box::new(std::io::BufWriter::new(
                    std::fs::File::create(p)
                        .with_context(|| format!("creating {}", p.display()))?,
                )),
                None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
            };
            let n = rampart_audit::export(&log, &mut w)
                .with_context(|| format!("exporting {}", log.display()))?;
            w.flush()?;
            eprintln!("exported {n} records");
            // Export is for reading, not proof: say whether the chain holds.
            if let Err(e) = rampart_audit::verify(&log) {
                eprintln!("warning: the audit log does not verify: {e}");
            }
        }
    }
    Ok(())
}
