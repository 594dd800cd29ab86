//! Starting the rules engine of a node: open it under `DATA/rules/`, attach it to the engine
//! (after the picture was rebuilt from history, before any listener takes reports), start
//! webhook delivery, and deliver alerts to TAK clients when the TAK edge runs.

use std::sync::Arc;

use anyhow::Context;
use rampart_engine::Engine;
use rampart_rules::RulesService;

use crate::config::Config;

/// Opens and attaches the rules engine; alerts are then on `RulesService::subscribe`.
pub fn start(cfg: &Config, engine: &Arc<Engine>) -> anyhow::Result<Arc<RulesService>> {
    let dir = cfg.data.join("rules");
    let rules = RulesService::open(cfg.rules.clone(), Some(dir.clone()), engine.metrics())
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("opening the rules engine under {}", dir.display()))?;
    rules
        .attach(engine)
        .map_err(anyhow::Error::msg)
        .context("attaching the rules engine")?;
    let _ = rules.spawn_webhooks();
    Ok(rules)
}
