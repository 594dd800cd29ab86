//! TLS for listeners: rustls server configurations (TLS 1.3 and 1.2, ring), client
//! certificate verification against the CA with the CRL, the [`RevocationWatch`] that reloads
//! the CRL and the device keys when their files change, and the identity of a peer.
//!
//! Revocation reaches new handshakes as soon as the watch has reloaded the CRL (each
//! handshake uses the newest verifier), and live connections through
//! [`RevocationWatch::revoked`], a future that resolves when a serial number is revoked.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use parking_lot::{Mutex, RwLock};
use rustls::client::danger::HandshakeSignatureValid;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, CertificateRevocationListDer, PrivateKeyDer, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, RootCertStore, SignatureScheme};

use crate::PkiError;
use crate::ca::{Inventory, Kind, PkiPaths, serial_hex};
use crate::sign::SigningKeys;

/// Default interval at which a [`RevocationWatch`] looks at its files.
pub const DEFAULT_POLL: Duration = Duration::from_secs(5);

/// Whether a listener asks for client certificates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// A certificate from the CA, not revoked, is required.
    #[default]
    Required,
    /// A certificate is asked for and verified if given; clients without one get in too.
    Optional,
    /// No client certificate is asked for.
    None,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, PkiError> {
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
        .map_err(|e| PkiError::Invalid(format!("{}: {e}", path.display())))?
        .collect::<Result<_, _>>()
        .map_err(|e| PkiError::Invalid(format!("{}: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(PkiError::Invalid(format!(
            "{}: no certificate in the file",
            path.display()
        )));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, PkiError> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| PkiError::Invalid(format!("{}: {e}", path.display())))
}

/// The serial numbers in `crl` (PEM or DER), after checking that one of `cas` (DER
/// certificates) issued and signed it. The signature is checked once per reload here, so
/// handshakes only look serial numbers up.
pub fn verified_crl_serials(
    crl: &[u8],
    cas: &[CertificateDer<'static>],
) -> Result<HashSet<String>, PkiError> {
    let der = parse_crl(crl)?;
    let (_, parsed) = x509_parser::parse_x509_crl(der.as_ref())
        .map_err(|e| PkiError::Invalid(format!("CRL: {e}")))?;
    let signed_by_a_ca = cas.iter().any(|ca| {
        x509_parser::parse_x509_certificate(ca.as_ref()).is_ok_and(|(_, ca)| {
            ca.subject().as_raw() == parsed.issuer().as_raw()
                && x509_parser::verify::verify_signature(
                    ca.public_key(),
                    &parsed.signature_algorithm,
                    &parsed.signature_value,
                    parsed.tbs_cert_list.as_ref(),
                )
                .is_ok()
        })
    });
    if !signed_by_a_ca {
        return Err(PkiError::Invalid(
            "CRL: not signed by the CA (wrong issuer or bad signature)".into(),
        ));
    }
    Ok(parsed
        .iter_revoked_certificates()
        .map(|r| serial_hex(r.raw_serial()))
        .collect())
}

/// The serial numbers (lower-case hex) in a PEM or DER CRL (not verified).
pub fn crl_serials(crl: &[u8]) -> Result<HashSet<String>, PkiError> {
    let der = parse_crl(crl)?;
    let (_, parsed) = x509_parser::parse_x509_crl(der.as_ref())
        .map_err(|e| PkiError::Invalid(format!("CRL: {e}")))?;
    Ok(parsed
        .iter_revoked_certificates()
        .map(|r| serial_hex(r.raw_serial()))
        .collect())
}

fn parse_crl(crl: &[u8]) -> Result<CertificateRevocationListDer<'static>, PkiError> {
    if crl.starts_with(b"-----") {
        CertificateRevocationListDer::from_pem_slice(crl)
            .map_err(|e| PkiError::Invalid(format!("CRL: {e}")))
    } else {
        Ok(CertificateRevocationListDer::from(crl.to_vec()))
    }
}

/// Who is at the other end of a connection, from its client certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
    /// The subject's common name: the name the certificate was issued to.
    pub subject_cn: String,
    /// The whole subject, RFC 4514 style.
    pub subject: String,
    /// Serial number, lower-case hex.
    pub serial: String,
    /// The kind from the subject's OU (`server`, `device`, `user`), if it is one of ours.
    pub kind: Option<Kind>,
}

/// The identity in a DER certificate.
pub fn identity_of(cert: &[u8]) -> Result<Identity, PkiError> {
    let (_, c) = x509_parser::parse_x509_certificate(cert)
        .map_err(|e| PkiError::Invalid(format!("peer certificate: {e}")))?;
    let subject = c.subject();
    let cn = subject
        .iter_common_name()
        .next()
        .and_then(|a| a.as_str().ok())
        .unwrap_or_default()
        .to_string();
    let kind = subject
        .iter_organizational_unit()
        .next()
        .and_then(|a| a.as_str().ok())
        .and_then(|ou| ou.parse().ok());
    Ok(Identity {
        subject_cn: cn,
        subject: subject.to_string(),
        serial: serial_hex(c.raw_serial()),
        kind,
    })
}

/// The verified client certificate's identity of a server-side connection (`None` if the
/// client sent none).
pub fn peer_identity(conn: &rustls::ServerConnection) -> Option<Identity> {
    conn.peer_certificates()
        .and_then(|c| c.first())
        .and_then(|c| identity_of(c.as_ref()).ok())
}

/// What a [`RevocationWatch`] last loaded.
#[derive(Debug, Default)]
pub struct TrustState {
    /// Increases with every reload that changed something.
    pub generation: u64,
    /// Revoked serial numbers (lower-case hex).
    pub revoked: HashSet<String>,
    /// The CRLs given to rustls.
    pub crls: Vec<CertificateRevocationListDer<'static>>,
    /// Report-signing keys of the devices that are neither revoked nor expired.
    pub signing_keys: SigningKeys,
}

/// Keeps the CA certificate, the CRL and the device keys of a PKI current: a task polls the
/// files' modification times every `interval` and reloads what changed. A reload that fails
/// (e.g. a damaged file) keeps the previous state, with an error in the log.
pub struct RevocationWatch {
    roots: Arc<RootCertStore>,
    ca_certs: Vec<CertificateDer<'static>>,
    crl: Option<PathBuf>,
    inventory: Option<PathBuf>,
    interval: Duration,
    seen: Mutex<(Option<SystemTime>, Option<SystemTime>)>,
    tx: tokio::sync::watch::Sender<Arc<TrustState>>,
}

impl std::fmt::Debug for RevocationWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RevocationWatch")
            .field("crl", &self.crl)
            .field("interval", &self.interval)
            .finish_non_exhaustive()
    }
}

fn mtime(p: &Option<PathBuf>) -> Option<SystemTime> {
    p.as_ref()
        .and_then(|p| std::fs::metadata(p).ok())
        .and_then(|m| m.modified().ok())
}

impl RevocationWatch {
    /// A watch over a PKI directory: its `ca.crt`, `crl.pem` and `inventory.json`.
    pub fn for_pki(paths: &PkiPaths, interval: Duration) -> Result<Arc<Self>, PkiError> {
        Self::new(
            &paths.ca_cert(),
            Some(paths.crl()),
            Some(paths.inventory()),
            interval,
        )
    }

    /// A watch over explicit files: the CA certificate(s) that client certificates must
    /// chain to, and optionally a CRL (PEM or DER) and a Rampart inventory (device keys).
    /// Loads them once now; [`RevocationWatch::spawn`] keeps them current.
    pub fn new(
        ca: &Path,
        crl: Option<PathBuf>,
        inventory: Option<PathBuf>,
        interval: Duration,
    ) -> Result<Arc<Self>, PkiError> {
        let mut roots = RootCertStore::empty();
        let ca_certs = read_certs(ca)?;
        for c in &ca_certs {
            roots
                .add(c.clone())
                .map_err(|e| PkiError::Invalid(format!("{}: {e}", ca.display())))?;
        }
        let (tx, _) = tokio::sync::watch::channel(Arc::new(TrustState::default()));
        let w = Arc::new(RevocationWatch {
            roots: Arc::new(roots),
            ca_certs,
            crl,
            inventory,
            interval: interval.max(Duration::from_millis(10)),
            seen: Mutex::new((None, None)),
            tx,
        });
        w.reload()?;
        Ok(w)
    }

    /// Re-reads the files if their modification time changed. `Ok(true)` if the state changed.
    pub fn reload(&self) -> Result<bool, PkiError> {
        let now = (mtime(&self.crl), mtime(&self.inventory));
        let mut seen = self.seen.lock();
        if *seen == now && self.tx.borrow().generation > 0 {
            return Ok(false);
        }
        let mut state = TrustState {
            generation: self.tx.borrow().generation + 1,
            ..TrustState::default()
        };
        if let Some(p) = &self.crl {
            match std::fs::read(p) {
                Ok(bytes) => {
                    state.revoked = verified_crl_serials(&bytes, &self.ca_certs)
                        .map_err(|e| PkiError::Invalid(format!("{}: {e}", p.display())))?;
                    state.crls.push(parse_crl(&bytes)?);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(PkiError::io(p, e)),
            }
        }
        if let Some(p) = &self.inventory {
            let inv = Inventory::load(p)?;
            let now_unix = chrono::Utc::now().timestamp();
            let mut keys = HashMap::new();
            for r in inv.certs.iter().filter(|r| r.status(now_unix) == "valid") {
                if let Some(k) = r.signing_public_key.as_deref().and_then(decode_key) {
                    keys.insert(r.name.clone(), k);
                }
            }
            state.signing_keys = Arc::new(keys);
        }
        *seen = now;
        self.tx.send_replace(Arc::new(state));
        Ok(true)
    }

    /// Starts the polling task on the current tokio runtime. It ends when the watch is
    /// dropped.
    pub fn spawn(self: &Arc<Self>) {
        let weak: Weak<Self> = Arc::downgrade(self);
        let interval = self.interval;
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(w) = weak.upgrade() else { return };
                match w.reload() {
                    Ok(true) => tracing::info!(
                        revoked = w.state().revoked.len(),
                        "PKI revocation list and device keys reloaded"
                    ),
                    Ok(false) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "PKI reload failed; keeping the previous revocation list")
                    }
                }
            }
        });
    }

    /// The polling interval.
    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// The current state.
    pub fn state(&self) -> Arc<TrustState> {
        self.tx.borrow().clone()
    }

    /// Changes to the state.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<Arc<TrustState>> {
        self.tx.subscribe()
    }

    /// Whether `serial` (lower-case hex) is revoked now.
    pub fn is_revoked(&self, serial: &str) -> bool {
        self.tx.borrow().revoked.contains(serial)
    }

    /// Resolves once `serial` is revoked (at once if it already is). Live connections select
    /// on it to close within the polling interval of a revocation.
    pub fn revoked(&self, serial: String) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.tx.subscribe();
        async move {
            loop {
                if rx.borrow_and_update().revoked.contains(&serial) {
                    return;
                }
                if rx.changed().await.is_err() {
                    // The watch is gone: nothing will ever be revoked again.
                    std::future::pending::<()>().await;
                }
            }
        }
    }

    /// A rustls client-certificate verifier against this watch's CA and newest CRL.
    pub fn client_verifier(self: &Arc<Self>, auth: ClientAuth) -> Arc<dyn ClientCertVerifier> {
        if auth == ClientAuth::None {
            return WebPkiClientVerifier::no_client_auth();
        }
        Arc::new(CrlClientVerifier {
            watch: self.clone(),
            auth,
            hints: self.roots.subjects(),
            inner: RwLock::new((0, None)),
            provider: provider(),
        })
    }
}

fn decode_key(hex: &str) -> Option<[u8; 32]> {
    if hex.len() != 64 {
        return None;
    }
    let mut k = [0u8; 32];
    for (i, b) in k.iter_mut().enumerate() {
        *b = u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(k)
}

/// A client verifier that rebuilds rustls' WebPKI verifier whenever the watch's state
/// changes, so the next handshake after a reload sees the new CRL.
struct CrlClientVerifier {
    watch: Arc<RevocationWatch>,
    auth: ClientAuth,
    hints: Vec<DistinguishedName>,
    inner: RwLock<(u64, Option<Arc<dyn ClientCertVerifier>>)>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl std::fmt::Debug for CrlClientVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CrlClientVerifier")
            .field("auth", &self.auth)
            .finish_non_exhaustive()
    }
}

impl CrlClientVerifier {
    fn current(&self) -> Result<Arc<dyn ClientCertVerifier>, rustls::Error> {
        let state = self.watch.state();
        {
            let inner = self.inner.read();
            if inner.0 == state.generation
                && let Some(v) = &inner.1
            {
                return Ok(v.clone());
            }
        }
        let mut b = WebPkiClientVerifier::builder_with_provider(
            self.watch.roots.clone(),
            self.provider.clone(),
        );
        // Revocation is checked by serial number in `verify_client_cert` against the CRL
        // verified at reload: handing rustls the CRL would re-verify its signature on every
        // handshake.
        if self.auth == ClientAuth::Optional {
            b = b.allow_unauthenticated();
        }
        let v = b
            .build()
            .map_err(|e| rustls::Error::General(format!("client verifier: {e}")))?;
        *self.inner.write() = (state.generation, Some(v.clone()));
        Ok(v)
    }
}

impl ClientCertVerifier for CrlClientVerifier {
    fn offer_client_auth(&self) -> bool {
        true
    }

    fn client_auth_mandatory(&self) -> bool {
        self.auth == ClientAuth::Required
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &self.hints
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .current()?
            .verify_client_cert(end_entity, intermediates, now)?;
        // The chain is valid: now the revocation list (end-entity certificates only; the CA
        // has no intermediates).
        let (_, cert) = x509_parser::parse_x509_certificate(end_entity.as_ref()).map_err(|_| {
            rustls::Error::InvalidCertificate(rustls::CertificateError::BadEncoding)
        })?;
        if self
            .watch
            .state()
            .revoked
            .contains(&serial_hex(cert.raw_serial()))
        {
            return Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::Revoked,
            ));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// A server configuration (TLS 1.3 and 1.2) for the PEM certificate chain and key, with
/// client certificates verified against `trust` as `auth` says. `trust` is required unless
/// `auth` is [`ClientAuth::None`].
pub fn server_config(
    cert: &Path,
    key: &Path,
    auth: ClientAuth,
    trust: Option<&Arc<RevocationWatch>>,
) -> Result<rustls::ServerConfig, PkiError> {
    let certs = read_certs(cert)?;
    let key = read_key(key)?;
    let verifier = match (auth, trust) {
        (ClientAuth::None, _) => WebPkiClientVerifier::no_client_auth(),
        (_, Some(w)) => w.client_verifier(auth),
        (_, None) => {
            return Err(PkiError::Invalid(
                "client certificates are required or optional, but no CA was given to verify them"
                    .into(),
            ));
        }
    };
    rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| PkiError::Crypto(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(certs, key)
        .map_err(|e| PkiError::Crypto(format!("server certificate: {e}")))
}

/// A client configuration that trusts the CA in `ca` and presents `cert`/`key` if given.
/// For tests, benchmarks and Rampart-to-Rampart links.
pub fn client_config(
    ca: &Path,
    identity: Option<(&Path, &Path)>,
) -> Result<rustls::ClientConfig, PkiError> {
    let mut roots = RootCertStore::empty();
    for c in read_certs(ca)? {
        roots
            .add(c)
            .map_err(|e| PkiError::Invalid(format!("{}: {e}", ca.display())))?;
    }
    let b = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| PkiError::Crypto(e.to_string()))?
        .with_root_certificates(roots);
    match identity {
        Some((cert, key)) => b
            .with_client_auth_cert(read_certs(cert)?, read_key(key)?)
            .map_err(|e| PkiError::Crypto(format!("client certificate: {e}"))),
        None => Ok(b.with_no_client_auth()),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::ca::{IssueOptions, Pki};

    /// Runs a full handshake in memory; `Ok` with the server's view of the peer.
    fn handshake(
        server: Arc<rustls::ServerConfig>,
        client: Arc<rustls::ClientConfig>,
    ) -> Result<Option<Identity>, rustls::Error> {
        let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
        let mut c = rustls::ClientConnection::new(client, name)?;
        let mut s = rustls::ServerConnection::new(server)?;
        for _ in 0..20 {
            let mut buf = Vec::new();
            while c.wants_write() {
                c.write_tls(&mut buf).unwrap();
            }
            let mut rd = &buf[..];
            while !rd.is_empty() {
                s.read_tls(&mut rd).unwrap();
            }
            s.process_new_packets()?;
            let mut buf = Vec::new();
            while s.wants_write() {
                s.write_tls(&mut buf).unwrap();
            }
            let mut rd = &buf[..];
            while !rd.is_empty() {
                c.read_tls(&mut rd).unwrap();
            }
            c.process_new_packets()?;
            if !s.is_handshaking() && !c.is_handshaking() {
                return Ok(peer_identity(&s));
            }
        }
        Err(rustls::Error::General("handshake did not finish".into()))
    }

    #[test]
    fn mutual_tls_with_revocation_and_expiry() {
        let tmp = tempfile::tempdir().unwrap();
        let (pki, _) = Pki::init(tmp.path()).unwrap();
        let p = pki.paths();
        pki.issue(Kind::Server, "srv", &IssueOptions::default())
            .unwrap();
        let alice = pki
            .issue(Kind::User, "alice", &IssueOptions::default())
            .unwrap();
        let now = chrono::Utc::now().timestamp();
        let old = pki
            .issue(
                Kind::Device,
                "old",
                &IssueOptions {
                    not_before_unix: Some(now - 86_400 * 2),
                    not_after_unix: Some(now - 86_400),
                    ..IssueOptions::default()
                },
            )
            .unwrap();
        let watch = RevocationWatch::for_pki(&p, DEFAULT_POLL).unwrap();
        let server = Arc::new(
            server_config(
                &p.issued_cert("srv"),
                &p.issued_key("srv"),
                ClientAuth::Required,
                Some(&watch),
            )
            .unwrap(),
        );
        let ca = p.ca_cert();
        let client = |name: Option<&str>| {
            let paths = name.map(|n| (p.issued_cert(n), p.issued_key(n)));
            Arc::new(
                client_config(&ca, paths.as_ref().map(|(c, k)| (c.as_path(), k.as_path())))
                    .unwrap(),
            )
        };
        let id = handshake(server.clone(), client(Some("alice")))
            .unwrap()
            .unwrap();
        assert_eq!(id.subject_cn, "alice");
        assert_eq!(id.kind, Some(Kind::User));
        assert_eq!(id.serial, alice.record.serial);
        assert!(handshake(server.clone(), client(None)).is_err());
        assert!(handshake(server.clone(), client(Some("old"))).is_err());
        let _ = old;
        // A certificate from another CA.
        let other = tempfile::tempdir().unwrap();
        let (other_pki, _) = Pki::init(other.path()).unwrap();
        other_pki
            .issue(Kind::User, "alice", &IssueOptions::default())
            .unwrap();
        let op = other_pki.paths();
        let foreign = Arc::new(
            client_config(
                &ca,
                Some((&op.issued_cert("alice"), &op.issued_key("alice"))),
            )
            .unwrap(),
        );
        assert!(handshake(server.clone(), foreign).is_err());
        // Revocation: the live-connection future resolves and the next handshake fails.
        let fut = watch.revoked(alice.record.serial.clone());
        pki.revoke("alice").unwrap();
        // mtime granularity: force the reload rather than wait for a tick.
        *watch.seen.lock() = (None, None);
        assert!(watch.reload().unwrap());
        assert!(watch.is_revoked(&alice.record.serial));
        assert!(handshake(server.clone(), client(Some("alice"))).is_err());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            tokio::time::timeout(Duration::from_secs(1), fut)
                .await
                .unwrap()
        });
    }

    #[test]
    fn a_crl_of_another_ca_is_refused() {
        let a = tempfile::tempdir().unwrap();
        let b = tempfile::tempdir().unwrap();
        let (pa, _) = Pki::init(a.path()).unwrap();
        let (pb, _) = Pki::init(b.path()).unwrap();
        let ca_a = read_certs(&pa.paths().ca_cert()).unwrap();
        let crl_a = std::fs::read(pa.paths().crl()).unwrap();
        let crl_b = std::fs::read(pb.paths().crl()).unwrap();
        assert!(verified_crl_serials(&crl_a, &ca_a).is_ok());
        assert!(verified_crl_serials(&crl_b, &ca_a).is_err());
        // A watch over CA a with CA b's CRL does not start.
        assert!(
            RevocationWatch::new(
                &pa.paths().ca_cert(),
                Some(pb.paths().crl()),
                None,
                DEFAULT_POLL
            )
            .is_err()
        );
    }

    #[test]
    fn optional_client_auth_and_tls12() {
        let tmp = tempfile::tempdir().unwrap();
        let (pki, _) = Pki::init(tmp.path()).unwrap();
        let p = pki.paths();
        pki.issue(Kind::Server, "srv", &IssueOptions::default())
            .unwrap();
        pki.issue(Kind::Device, "dev", &IssueOptions::default())
            .unwrap();
        let watch = RevocationWatch::for_pki(&p, DEFAULT_POLL).unwrap();
        assert!(watch.state().signing_keys.contains_key("dev"));
        let server = Arc::new(
            server_config(
                &p.issued_cert("srv"),
                &p.issued_key("srv"),
                ClientAuth::Optional,
                Some(&watch),
            )
            .unwrap(),
        );
        let anon = Arc::new(client_config(&p.ca_cert(), None).unwrap());
        assert_eq!(handshake(server.clone(), anon).unwrap(), None);
        let mut tls12 = client_config(
            &p.ca_cert(),
            Some((&p.issued_cert("dev"), &p.issued_key("dev"))),
        )
        .unwrap();
        let provider = provider();
        tls12 = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS12])
            .unwrap()
            .with_root_certificates({
                let mut r = RootCertStore::empty();
                r.add(read_certs(&p.ca_cert()).unwrap().remove(0)).unwrap();
                r
            })
            .with_client_auth_cert(
                read_certs(&p.issued_cert("dev")).unwrap(),
                read_key(&p.issued_key("dev")).unwrap(),
            )
            .unwrap_or(tls12);
        let id = handshake(server, Arc::new(tls12)).unwrap().unwrap();
        assert_eq!(id.kind, Some(Kind::Device));
    }
}
