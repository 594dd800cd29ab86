//! `rampart pki init | issue | revoke | list`, and the node's security setup: the PKI under
//! the data directory, the server certificate of TLS listeners, the revocation watch, the
//! verifier of signed datagrams, and what `--secure` turns on.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, Subcommand, ValueEnum};
use rampart_pki::{
    ClientAuth, IssueOptions, Kind, Pki, PkiPaths, RevocationWatch, SignatureVerifier,
    VerifierConfig,
};
use serde::{Deserialize, Serialize};

use crate::config::{Config, ListenSpec};

/// `[security]`: the PKI, HTTPS client certificates and `--secure`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecuritySection {
    /// Secure defaults (what `--secure` sets): TLS listeners only, client certificates
    /// required, signatures required on UDP bearers. See SECURITY.md.
    pub secure: bool,
    /// PKI directory (default `<data>/pki`).
    pub pki_dir: Option<PathBuf>,
    /// Seconds between looks at the CRL and inventory (revocations reach live connections
    /// within this time; default 5).
    pub revocation_poll_secs: u64,
    /// Name of the server certificate TLS listeners use, issued on first start if absent.
    pub server_name: String,
    /// Subject alternative names of that certificate when it is issued (default
    /// `localhost`, `127.0.0.1`).
    pub server_sans: Vec<String>,
    /// Client certificates on `https`: `optional` (default), `required` or `none`.
    pub https_client_auth: ClientAuth,
    /// Client certificates on `mqtts` (default required; `optional` lets devices in with a
    /// token instead).
    pub mqtts_client_auth: ClientAuth,
    /// HTTPS server certificate (PEM) instead of the PKI's.
    pub https_cert: Option<PathBuf>,
    /// HTTPS server key (PEM).
    pub https_key: Option<PathBuf>,
    /// Refuse unsigned datagrams on the feeds' UDP listeners (`nmea-udp`, `ais-udp`). Signed
    /// ones are verified whenever a PKI exists; the skew window is `cot.max_clock_skew_secs`.
    pub feeds_require_signatures: bool,
}

impl Default for SecuritySection {
    fn default() -> Self {
        SecuritySection {
            secure: false,
            pki_dir: None,
            revocation_poll_secs: 5,
            server_name: "rampart-server".to_string(),
            server_sans: Vec::new(),
            https_client_auth: ClientAuth::Optional,
            mqtts_client_auth: ClientAuth::Required,
            https_cert: None,
            https_key: None,
            feeds_require_signatures: false,
        }
    }
}

impl SecuritySection {
    /// The PKI directory of a node with data directory `data`.
    pub fn pki_dir(&self, data: &std::path::Path) -> PathBuf {
        self.pki_dir.clone().unwrap_or_else(|| data.join("pki"))
    }
}

/// The listener `--secure` uses when none is given.
pub const SECURE_DEFAULT_LISTEN: &str = "https=127.0.0.1:8443";

/// Applies `security.secure`: client certificates required on every TLS listener, signatures
/// required on CoT UDP, and plaintext listeners refused.
pub fn apply_secure(cfg: &mut Config) -> anyhow::Result<()> {
    if !cfg.security.secure {
        return Ok(());
    }
    cfg.cot.tls_client_auth = ClientAuth::Required;
    cfg.cot.require_signatures = true;
    cfg.security.feeds_require_signatures = true;
    cfg.security.https_client_auth = ClientAuth::Required;
    // Every API route then needs an operator account or API token (see SECURITY.md).
    cfg.auth.required = true;
    cfg.security.mqtts_client_auth = ClientAuth::Required;
    for l in cfg.listeners()? {
        let udp_feed = rampart_edge_feeds::adapters::LISTENER_KINDS
            .iter()
            .any(|k| k.0 == l.kind && k.2);
        match l.kind.as_str() {
            "https" | "cot-tls" | "cot-udp" | "cot-mesh" | "mqtts" => {}
            _ if udp_feed => {}
            kind => bail!(
                "--secure: listener {kind}={} is plaintext and unauthenticated; use https, \
                 cot-tls, mqtts, or signed UDP (cot-udp, cot-mesh, nmea-udp, ais-udp)",
                l.addr
            ),
        }
    }
    Ok(())
}

/// A node's PKI: where it is, the revocation watch, and the server certificate.
pub struct NodeSecurity {
    /// The PKI's files (for listeners that build their own TLS configuration, e.g. `mqtts`).
    #[allow(dead_code)]
    pub paths: PkiPaths,
    /// Reloads the CRL and device keys every `revocation_poll_secs`.
    pub watch: Arc<RevocationWatch>,
    /// Server certificate and key of TLS listeners.
    pub server_cert: PathBuf,
    /// Its key.
    pub server_key: PathBuf,
    /// The signature check of the feeds' UDP listeners, built once.
    feed_gate: std::sync::OnceLock<rampart_edge_feeds::DatagramGate>,
}

impl NodeSecurity {
    /// Sets up the PKI when a listener needs it: creates the CA if absent (never overwriting
    /// one) and issues the server certificate if absent, then starts the revocation watch.
    /// `None` when no listener needs a PKI and none exists.
    pub fn setup(cfg: &Config, listeners: &[ListenSpec]) -> anyhow::Result<Option<NodeSecurity>> {
        let dir = cfg.security.pki_dir(&cfg.data);
        let paths = PkiPaths::new(&dir);
        let tls = listeners
            .iter()
            .any(|l| matches!(l.kind.as_str(), "https" | "cot-tls" | "mqtts"));
        let needed = tls
            || cfg.security.secure
            || cfg.cot.require_signatures
            || cfg.security.feeds_require_signatures;
        if !needed && !paths.ca_cert().exists() {
            return Ok(None);
        }
        let name = &cfg.security.server_name;
        let (server_cert, server_key) = (paths.issued_cert(name), paths.issued_key(name));
        if !paths.ca_cert().exists() || (tls && !server_cert.exists()) {
            let (pki, created) = Pki::init(&dir).with_context(|| {
                format!("creating the certificate authority in {}", dir.display())
            })?;
            if created {
                println!(
                    "rampart: created a certificate authority in {}",
                    dir.display()
                );
            }
            if tls && !server_cert.exists() {
                let issued = pki
                    .issue(
                        Kind::Server,
                        name,
                        &IssueOptions {
                            sans: cfg.security.server_sans.clone(),
                            ..IssueOptions::default()
                        },
                    )
                    .with_context(|| format!("issuing the server certificate {name}"))?;
                println!(
                    "rampart: issued server certificate {} for {}",
                    issued.cert.display(),
                    issued.record.sans.join(", ")
                );
            }
        }
        let watch = RevocationWatch::for_pki(
            &paths,
            Duration::from_secs(cfg.security.revocation_poll_secs.max(1)),
        )
        .with_context(|| format!("loading the PKI in {}", dir.display()))?;
        watch.spawn();
        Ok(Some(NodeSecurity {
            paths,
            watch,
            server_cert,
            server_key,
            feed_gate: std::sync::OnceLock::new(),
        }))
    }

    /// What the TAK edge needs: the watch and a signature verifier following it.
    pub fn cot(&self, cfg: &Config) -> rampart_edge_cot::CotSecurity {
        rampart_edge_cot::CotSecurity {
            watch: Some(self.watch.clone()),
            verifier: Some(Arc::new(SignatureVerifier::from_watch(
                VerifierConfig {
                    max_skew_ms: cfg.cot.max_clock_skew_secs as i64 * 1000,
                },
                self.watch.clone(),
            ))),
        }
    }
}

impl NodeSecurity {
    /// The signature check of the feeds' UDP listeners: signed datagrams are verified and
    /// unwrapped, unsigned ones pass unless `security.feeds_require_signatures`. Refusals are
    /// counted in `rampart_feed_signature_refusals_total{reason}`.
    pub fn feed_gate(
        &self,
        cfg: &Config,
        metrics: &rampart_engine::Metrics,
    ) -> rampart_edge_feeds::DatagramGate {
        self.feed_gate
            .get_or_init(|| {
                let refusals = metrics.register_reason_counter(
                    "feed_signature_refusals",
                    "Feed datagrams refused by signature checks, by reason",
                );
                let verifier = SignatureVerifier::from_watch(
                    VerifierConfig {
                        max_skew_ms: cfg.cot.max_clock_skew_secs as i64 * 1000,
                    },
                    self.watch.clone(),
                );
                let require = cfg.security.feeds_require_signatures;
                Arc::new(move |d: &[u8]| {
                    let verdict = if rampart_pki::sign::is_signed(d) {
                        verifier.verify_range(d, rampart_model::Timestamp::now().0)
                    } else if require {
                        Err(rampart_pki::Refusal::Unsigned)
                    } else {
                        Ok(0..d.len())
                    };
                    verdict.map_err(|r| {
                        refusals
                            .get_or_create(&rampart_engine::ReasonLabel {
                                reason: r.reason().to_string(),
                            })
                            .inc();
                        r.reason()
                    })
                })
            })
            .clone()
    }
}

/// The TLS acceptor of `cot-tls`: the configured certificate or the PKI's server certificate,
/// with client certificates as `cot.tls_client_auth` says.
pub fn cot_tls_acceptor(
    cfg: &Config,
    sec: Option<&NodeSecurity>,
) -> anyhow::Result<tokio_rustls::TlsAcceptor> {
    let Some(sec) = sec else {
        bail!("cot-tls needs the PKI, which did not start");
    };
    let (cert, key) = match (&cfg.cot.tls_cert, &cfg.cot.tls_key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        _ => (sec.server_cert.clone(), sec.server_key.clone()),
    };
    let config = rampart_pki::server_config(&cert, &key, cfg.cot.tls_client_auth, Some(&sec.watch))
        .context("cot-tls")?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// The TLS configuration of `https`.
pub fn https_config(
    cfg: &Config,
    sec: Option<&NodeSecurity>,
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    let Some(sec) = sec else {
        bail!("https needs the PKI, which did not start");
    };
    let (cert, key) = match (&cfg.security.https_cert, &cfg.security.https_key) {
        (Some(c), Some(k)) => (c.clone(), k.clone()),
        _ => (sec.server_cert.clone(), sec.server_key.clone()),
    };
    let mut config = rampart_pki::server_config(
        &cert,
        &key,
        cfg.security.https_client_auth,
        Some(&sec.watch),
    )
    .context("https")?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// `rampart pki …`
#[derive(Args)]
pub struct PkiArgs {
    #[command(subcommand)]
    command: PkiCommand,
    /// TOML configuration file (for `data` and `security.pki_dir`).
    #[arg(
        long,
        short = 'c',
        env = "RAMPART_CONFIG",
        value_name = "FILE",
        global = true
    )]
    config: Option<PathBuf>,
    /// Data directory: the PKI lives in DIR/pki.
    #[arg(long, env = "RAMPART_DATA", value_name = "DIR", global = true)]
    data: Option<PathBuf>,
    /// PKI directory, instead of DATA/pki.
    #[arg(long, value_name = "DIR", global = true)]
    pki_dir: Option<PathBuf>,
}

#[derive(Subcommand)]
enum PkiCommand {
    /// Create the certificate authority (idempotent: an existing CA is kept, never replaced).
    Init,
    /// Issue a certificate: PEM files and a password-protected PKCS#12 bundle.
    Issue(IssueArgs),
    /// Revoke every certificate issued to NAME and re-sign the CRL (servers see it within
    /// `security.revocation_poll_secs`).
    Revoke {
        /// The certificate's name.
        name: String,
    },
    /// List the certificates issued.
    List {
        /// As JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum KindArg {
    /// A TLS server (serverAuth, DNS/IP names).
    Server,
    /// A device (clientAuth) with an Ed25519 key for signed reports.
    Device,
    /// A person (clientAuth).
    User,
}

#[derive(Args)]
struct IssueArgs {
    /// server, device or user.
    #[arg(value_enum)]
    kind: KindArg,
    /// Name: the subject CN (1-64 of A-Z a-z 0-9 . _ -).
    name: String,
    /// Subject alternative name of a server certificate (DNS name or IP), repeatable.
    /// Default: localhost and 127.0.0.1.
    #[arg(long = "san", value_name = "NAME")]
    sans: Vec<String>,
    /// Validity in days.
    #[arg(long, default_value_t = rampart_pki::ca::DEFAULT_DAYS)]
    days: u32,
    /// Password of the PKCS#12 bundle (default: a generated one, printed once).
    #[arg(long, env = "RAMPART_P12_PASSWORD", value_name = "PASSWORD")]
    p12_password: Option<String>,
    /// Start of validity as Unix seconds (tests; default now minus 5 minutes).
    #[arg(long, hide = true)]
    not_before_unix: Option<i64>,
    /// End of validity as Unix seconds (tests: a past time issues an expired certificate).
    #[arg(long, hide = true)]
    not_after_unix: Option<i64>,
}

/// Who ran a CLI command, for the audit log: the local account as the environment names it
/// (not authenticated; operator accounts are the HTTP API's).
pub(crate) fn cli_actor() -> String {
    match std::env::var("USER") {
        Ok(u) if !u.is_empty() && u.len() <= 64 => format!("cli:{u}"),
        _ => "cli".to_string(),
    }
}

/// Runs `rampart pki …`.
pub fn run(a: PkiArgs) -> anyhow::Result<()> {
    let mut cfg = match &a.config {
        Some(path) => Config::load(path)?,
        None => Config::default(),
    };
    if let Some(d) = a.data {
        cfg.data = d;
    }
    let dir = a.pki_dir.unwrap_or_else(|| cfg.security.pki_dir(&cfg.data));
    match a.command {
        PkiCommand::Init => {
            let (pki, created) = Pki::init(&dir)?;
            if created {
                println!("created a certificate authority in {}", dir.display());
            } else {
                println!(
                    "a certificate authority already exists in {} (kept unchanged)",
                    dir.display()
                );
            }
            println!("CA certificate: {}", pki.paths().ca_cert().display());
        }
        PkiCommand::Issue(i) => {
            let pki = Pki::open(&dir)?;
            // Opened first: no certificate is issued that cannot be audited.
            let audit = crate::audit::open(&cfg.data)?;
            let kind = match i.kind {
                KindArg::Server => Kind::Server,
                KindArg::Device => Kind::Device,
                KindArg::User => Kind::User,
            };
            let issued = pki.issue(
                kind,
                &i.name,
                &IssueOptions {
                    sans: i.sans,
                    days: i.days,
                    p12_password: i.p12_password,
                    not_before_unix: i.not_before_unix,
                    not_after_unix: i.not_after_unix,
                },
            )?;
            let r = &issued.record;
            audit.append(
                &cli_actor(),
                "cert.issue",
                &r.name,
                serde_json::json!({
                    "kind": r.kind.to_string(), "serial": r.serial, "sans": r.sans,
                    "not_before": r.not_before, "not_after": r.not_after,
                }),
            )?;
            println!(
                "issued {} certificate {} (serial {})",
                r.kind, r.name, r.serial
            );
            println!("  valid:       {} to {}", r.not_before, r.not_after);
            if !r.sans.is_empty() {
                println!("  names:       {}", r.sans.join(", "));
            }
            println!("  certificate: {}", issued.cert.display());
            println!("  key:         {}", issued.key.display());
            println!("  PKCS#12:     {}", issued.p12.display());
            println!("  CA:          {}", pki.paths().ca_cert().display());
            if let Some(k) = &issued.signing_key {
                println!(
                    "  signing key: {} (Ed25519, for signed reports)",
                    k.display()
                );
            }
            if issued.password_generated {
                println!("  PKCS#12 password (shown once): {}", issued.p12_password);
            }
        }
        PkiCommand::Revoke { name } => {
            let pki = Pki::open(&dir)?;
            // A revocation is urgent: it goes ahead even when the audit log cannot be opened.
            let audit = crate::audit::open(&cfg.data)
                .inspect_err(|e| eprintln!("warning: the revocation is not audited: {e:#}"))
                .ok();
            let revoked = pki.revoke(&name)?;
            if let Some(a) = &audit {
                let serials: Vec<&str> = revoked.iter().map(|r| r.serial.as_str()).collect();
                a.append(
                    &cli_actor(),
                    "cert.revoke",
                    &name,
                    serde_json::json!({ "serials": serials }),
                )?;
            }
            if revoked.is_empty() {
                println!("{name}: already revoked; CRL re-signed");
            }
            for r in revoked {
                println!(
                    "revoked {} certificate {} (serial {})",
                    r.kind, r.name, r.serial
                );
            }
            println!("CRL: {}", pki.paths().crl().display());
        }
        PkiCommand::List { json } => {
            // Listing needs only the inventory, not the CA key.
            let paths = PkiPaths::new(&dir);
            if !paths.ca_cert().exists() {
                bail!(rampart_pki::PkiError::NotInitialized(dir));
            }
            let inv = rampart_pki::Inventory::load(&paths.inventory())?;
            if json {
                println!("{}", serde_json::to_string_pretty(&inv.certs)?);
                return Ok(());
            }
            let now = chrono::Utc::now().timestamp();
            println!(
                "{:<24} {:<7} {:<8} {:<34} {:<21} REVOKED",
                "NAME", "KIND", "STATUS", "SERIAL", "NOT AFTER"
            );
            for r in &inv.certs {
                println!(
                    "{:<24} {:<7} {:<8} {:<34} {:<21} {}",
                    r.name,
                    r.kind,
                    r.status(now),
                    r.serial,
                    r.not_after,
                    r.revoked_at.as_deref().unwrap_or("-")
                );
            }
        }
    }
    Ok(())
}
