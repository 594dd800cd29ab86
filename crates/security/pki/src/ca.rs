//! The certificate authority: creating it once, issuing server, device and user certificates
//! (PEM files and a password-protected PKCS#12 bundle), revoking them into a signed CRL, and
//! the inventory of everything issued.
//!
//! Layout of a PKI directory (normally `<data>/pki`, mode 0700):
//!
//! ```text
//! ca.crt  ca.key (0600)  crl.pem  inventory.json
//! issued/<name>/<name>.crt  <name>.key (0600)  <name>.p12 (0600)  ca.crt
//!               <name>.sign.key (0600)  <name>.sign.pub      (devices: Ed25519 report signing)
//! ```
//!
//! The CA is never overwritten: its files are created with `O_EXCL`, and `init` on a
//! directory that already holds a CA only loads it.

use std::io::Write;
use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateRevocationListParams, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyIdMethod, KeyPair, KeyUsagePurpose,
    RevokedCertParams, SerialNumber,
};
use ring::rand::SecureRandom;
use serde::{Deserialize, Serialize};

use crate::PkiError;
use crate::sign::{DeviceSigningKey, public_key_pem};

/// Longest certificate name (subject CN and file stem).
pub const MAX_NAME_LEN: usize = 64;
/// Most certificates an inventory holds (issued, revoked and expired together).
pub const MAX_INVENTORY: usize = 100_000;
/// Validity of the CA certificate, in days.
pub const CA_DAYS: i64 = 3650;
/// Default validity of an issued certificate, in days.
pub const DEFAULT_DAYS: u32 = 365;
/// Longest validity that may be asked for, in days.
pub const MAX_DAYS: u32 = 3650;
/// How far in the future a CRL announces its successor, in days. rustls does not enforce the
/// CRL's `nextUpdate` (see SECURITY.md); the CRL is re-signed on every revocation.
pub const CRL_DAYS: i64 = 365;

/// What a certificate is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A server (TLS listener): serverAuth, with DNS/IP subject alternative names.
    Server,
    /// A device (sensor, radio gateway, TAK client device): clientAuth, and an Ed25519 key
    /// for signed reports.
    Device,
    /// A person (TAK end-user, operator): clientAuth.
    User,
}

impl Kind {
    /// The lower-case name (`server`, `device`, `user`), also the certificate's OU.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Server => "server",
            Kind::Device => "device",
            Kind::User => "user",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Kind {
    type Err = PkiError;
    fn from_str(s: &str) -> Result<Self, PkiError> {
        match s {
            "server" => Ok(Kind::Server),
            "device" => Ok(Kind::Device),
            "user" => Ok(Kind::User),
            other => Err(PkiError::Invalid(format!(
                "certificate kind {other:?}: expected server, device or user"
            ))),
        }
    }
}

/// Options of [`Pki::issue`].
#[derive(Clone, Debug)]
pub struct IssueOptions {
    /// Subject alternative names of a server certificate (DNS names or IP addresses).
    /// Empty: `localhost` and `127.0.0.1`. Ignored for devices and users.
    pub sans: Vec<String>,
    /// Validity in days from now (1..=[`MAX_DAYS`]).
    pub days: u32,
    /// Password of the PKCS#12 bundle; `None` generates one (returned in [`Issued`]).
    pub p12_password: Option<String>,
    /// Overrides the start of validity (Unix seconds). For tests and clock-skewed fleets.
    pub not_before_unix: Option<i64>,
    /// Overrides the end of validity (Unix seconds). A time in the past issues an already
    /// expired certificate, which tests use to prove expired certificates are refused.
    pub not_after_unix: Option<i64>,
}

impl Default for IssueOptions {
    fn default() -> Self {
        IssueOptions {
            sans: Vec::new(),
            days: DEFAULT_DAYS,
            p12_password: None,
            not_before_unix: None,
            not_after_unix: None,
        }
    }
}

/// One issued certificate in the inventory.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CertRecord {
    /// Subject CN and file stem.
    pub name: String,
    /// What it is for.
    pub kind: Kind,
    /// Serial number, lower-case hex without leading zero bytes.
    pub serial: String,
    /// Start of validity (RFC 3339).
    pub not_before: String,
    /// End of validity (RFC 3339).
    pub not_after: String,
    /// Subject alternative names (servers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sans: Vec<String>,
    /// When it was revoked (RFC 3339), if it was.
    #[serde(default)]
    pub revoked_at: Option<String>,
    /// The device's Ed25519 report-signing public key, hex (devices only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signing_public_key: Option<String>,
}

impl CertRecord {
    /// `revoked`, `expired` or `valid` at `now_unix`.
    pub fn status(&self, now_unix: i64) -> &'static str {
        if self.revoked_at.is_some() {
            return "revoked";
        }
        match chrono::DateTime::parse_from_rfc3339(&self.not_after) {
            Ok(t) if t.timestamp() < now_unix => "expired",
            _ => "valid",
        }
    }
}

/// The inventory file (`inventory.json`).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Inventory {
    /// Format version (1).
    pub version: u32,
    /// Number of the last CRL written (CRL numbers only grow).
    pub crl_number: u64,
    /// Every certificate issued, oldest first.
    pub certs: Vec<CertRecord>,
}

impl Inventory {
    /// Reads `path`; a missing file is an empty inventory.
    pub fn load(path: &Path) -> Result<Inventory, PkiError> {
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| PkiError::Invalid(format!("{}: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Inventory {
                version: 1,
                ..Inventory::default()
            }),
            Err(e) => Err(PkiError::io(path, e)),
        }
    }
}

/// What [`Pki::issue`] wrote.
#[derive(Clone, Debug)]
pub struct Issued {
    /// The inventory record.
    pub record: CertRecord,
    /// Certificate (PEM).
    pub cert: PathBuf,
    /// Private key (PEM, PKCS#8, mode 0600).
    pub key: PathBuf,
    /// PKCS#12 bundle: key, certificate and CA certificate (mode 0600).
    pub p12: PathBuf,
    /// The bundle's password.
    pub p12_password: String,
    /// Whether the password was generated (and must be shown to the operator once).
    pub password_generated: bool,
    /// The device's Ed25519 report-signing key (PEM PKCS#8, mode 0600), devices only.
    pub signing_key: Option<PathBuf>,
}

/// A certificate authority in a directory.
pub struct Pki {
    dir: PathBuf,
    ca_cert_pem: String,
    ca_key: KeyPair,
}

impl std::fmt::Debug for Pki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pki")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// The files of a PKI directory, for servers that only need the public parts.
#[derive(Clone, Debug)]
pub struct PkiPaths {
    /// The directory.
    pub dir: PathBuf,
}

impl PkiPaths {
    /// The files under `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        PkiPaths { dir: dir.into() }
    }
    /// The CA certificate.
    pub fn ca_cert(&self) -> PathBuf {
        self.dir.join("ca.crt")
    }
    /// The CA private key.
    pub fn ca_key(&self) -> PathBuf {
        self.dir.join("ca.key")
    }
    /// The certificate revocation list.
    pub fn crl(&self) -> PathBuf {
        self.dir.join("crl.pem")
    }
    /// The inventory.
    pub fn inventory(&self) -> PathBuf {
        self.dir.join("inventory.json")
    }
    /// The directory of the files issued to `name`.
    pub fn issued_dir(&self, name: &str) -> PathBuf {
        self.dir.join("issued").join(name)
    }
    /// The certificate issued to `name`.
    pub fn issued_cert(&self, name: &str) -> PathBuf {
        self.issued_dir(name).join(format!("{name}.crt"))
    }
    /// The private key issued to `name`.
    pub fn issued_key(&self, name: &str) -> PathBuf {
        self.issued_dir(name).join(format!("{name}.key"))
    }
}

/// Checks a certificate name: 1..=64 of `A-Z a-z 0-9 . _ -`, not starting with `.` or `-`
/// (it becomes a file name and a subject CN).
pub fn validate_name(name: &str) -> Result<(), PkiError> {
    let ok = !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.starts_with(['.', '-'])
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(PkiError::Invalid(format!(
            "name {name:?}: use 1 to {MAX_NAME_LEN} of A-Z a-z 0-9 . _ - (not starting with . or -)"
        )))
    }
}

/// Lower-case hex of a serial number, without leading zero bytes.
pub fn serial_hex(bytes: &[u8]) -> String {
    let start = bytes
        .iter()
        .position(|b| *b != 0)
        .unwrap_or(bytes.len().saturating_sub(1));
    bytes[start..].iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    if s.len() % 2 != 0 {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

pub(crate) fn random_bytes<const N: usize>() -> Result<[u8; N], PkiError> {
    let mut b = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut b)
        .map_err(|_| PkiError::Crypto("the system random generator failed".into()))?;
    Ok(b)
}

/// A random password of 20 characters from an alphabet without look-alikes (about 114 bits).
pub fn generate_password() -> Result<String, PkiError> {
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789";
    let raw = random_bytes::<40>()?;
    // Rejection sampling keeps the distribution uniform.
    let limit = 256 - (256 % ALPHABET.len());
    let mut out = String::new();
    for b in raw {
        if (b as usize) < limit && out.len() < 20 {
            out.push(ALPHABET[b as usize % ALPHABET.len()] as char);
        }
    }
    if out.len() < 20 {
        return generate_password();
    }
    Ok(out)
}

fn rfc3339(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

fn now_unix() -> i64 {
    chrono::Utc::now().timestamp()
}

fn odt(unix: i64) -> Result<time::OffsetDateTime, PkiError> {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .map_err(|e| PkiError::Invalid(format!("time {unix}: {e}")))
}

fn crypto(e: impl std::fmt::Display) -> PkiError {
    PkiError::Crypto(e.to_string())
}

/// Creates `path` exclusively (never overwrites) with `mode`, and writes `data`.
fn write_new(path: &Path, data: &[u8], mode: u32) -> Result<(), PkiError> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        o.mode(mode);
    }
    #[cfg(not(unix))]
    let _ = mode;
    let mut f = o.open(path).map_err(|e| PkiError::io(path, e))?;
    f.write_all(data).map_err(|e| PkiError::io(path, e))?;
    f.sync_all().map_err(|e| PkiError::io(path, e))
}

/// Replaces `path` atomically (temporary file + rename) with `data` and `mode`.
pub(crate) fn write_replace(path: &Path, data: &[u8], mode: u32) -> Result<(), PkiError> {
    let tmp = path.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    write_new(&tmp, data, mode)?;
    std::fs::rename(&tmp, path).map_err(|e| PkiError::io(path, e))
}

fn create_private_dir(dir: &Path) -> Result<(), PkiError> {
    std::fs::create_dir_all(dir).map_err(|e| PkiError::io(dir, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| PkiError::io(dir, e))?;
    }
    Ok(())
}

impl Pki {
    /// Creates a CA under `dir` unless one exists there, and loads it. Returns the CA and
    /// whether it was created now. Never overwrites a CA: half a CA (certificate without key
    /// or the reverse) is an error, not something to repair.
    pub fn init(dir: &Path) -> Result<(Pki, bool), PkiError> {
        let paths = PkiPaths::new(dir);
        let (cert, key) = (paths.ca_cert(), paths.ca_key());
        match (cert.exists(), key.exists()) {
            (true, true) => return Ok((Pki::open(dir)?, false)),
            (false, false) => {}
            _ => {
                return Err(PkiError::Invalid(format!(
                    "{}: holds only part of a CA (ca.crt or ca.key is missing); refusing to overwrite it",
                    dir.display()
                )));
            }
        }
        create_private_dir(dir)?;
        let ca_key = KeyPair::generate().map_err(crypto)?;
        let mut params = CertificateParams::default();
        let id = serial_hex(&random_bytes::<4>()?);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("Rampart CA {id}"));
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Rampart");
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.key_identifier_method = KeyIdMethod::Sha256;
        let now = now_unix();
        params.not_before = odt(now - 300)?;
        params.not_after = odt(now + CA_DAYS * 86_400)?;
        params.serial_number = Some(new_serial()?);
        let cert_pem = params.self_signed(&ca_key).map_err(crypto)?.pem();
        // Key first: a crash in between leaves "key without certificate", which init refuses
        // to touch rather than silently minting a second CA key.
        write_new(&key, ca_key.serialize_pem().as_bytes(), 0o600)?;
        write_new(&cert, cert_pem.as_bytes(), 0o644)?;
        let pki = Pki {
            dir: dir.to_path_buf(),
            ca_cert_pem: cert_pem,
            ca_key,
        };
        let inv = Inventory {
            version: 1,
            ..Inventory::default()
        };
        pki.write_crl_and_inventory(inv)?;
        Ok((pki, true))
    }

    /// Loads the CA under `dir`.
    pub fn open(dir: &Path) -> Result<Pki, PkiError> {
        let paths = PkiPaths::new(dir);
        let (cert, key) = (paths.ca_cert(), paths.ca_key());
        if !cert.exists() {
            return Err(PkiError::NotInitialized(dir.to_path_buf()));
        }
        let ca_cert_pem = std::fs::read_to_string(&cert).map_err(|e| PkiError::io(&cert, e))?;
        let key_pem = std::fs::read_to_string(&key).map_err(|e| PkiError::io(&key, e))?;
        let ca_key = KeyPair::from_pem(&key_pem)
            .map_err(|e| PkiError::Invalid(format!("{}: {e}", key.display())))?;
        Ok(Pki {
            dir: dir.to_path_buf(),
            ca_cert_pem,
            ca_key,
        })
    }

    /// The files of this PKI.
    pub fn paths(&self) -> PkiPaths {
        PkiPaths::new(&self.dir)
    }

    /// The CA certificate (PEM).
    pub fn ca_cert_pem(&self) -> &str {
        &self.ca_cert_pem
    }

    fn issuer(&self) -> Result<Issuer<'static, &KeyPair>, PkiError> {
        Issuer::from_ca_cert_pem(&self.ca_cert_pem, &self.ca_key)
            .map_err(|e| PkiError::Invalid(format!("CA certificate: {e}")))
    }

    /// Every certificate issued, oldest first.
    pub fn list(&self) -> Result<Vec<CertRecord>, PkiError> {
        Ok(Inventory::load(&self.paths().inventory())?.certs)
    }

    /// Issues a certificate of `kind` to `name`. Refuses a name that has a certificate that
    /// is neither revoked nor expired (revoke it first to re-issue).
    pub fn issue(&self, kind: Kind, name: &str, opts: &IssueOptions) -> Result<Issued, PkiError> {
        validate_name(name)?;
        if opts.days == 0 || opts.days > MAX_DAYS {
            return Err(PkiError::Invalid(format!(
                "validity of {} days: use 1 to {MAX_DAYS}",
                opts.days
            )));
        }
        let paths = self.paths();
        let mut inv = Inventory::load(&paths.inventory())?;
        let now = now_unix();
        if let Some(r) = inv
            .certs
            .iter()
            .find(|r| r.name == name && r.status(now) == "valid")
        {
            return Err(PkiError::Invalid(format!(
                "{name} already has a valid {} certificate (serial {}); revoke it first",
                r.kind, r.serial
            )));
        }
        if inv.certs.len() >= MAX_INVENTORY {
            return Err(PkiError::Invalid(format!(
                "the inventory holds {MAX_INVENTORY} certificates, its limit"
            )));
        }
        let sans: Vec<String> = match kind {
            Kind::Server if opts.sans.is_empty() => {
                vec!["localhost".to_string(), "127.0.0.1".to_string()]
            }
            Kind::Server => opts.sans.clone(),
            _ => Vec::new(),
        };
        let mut params = CertificateParams::new(sans.clone())
            .map_err(|e| PkiError::Invalid(format!("subject alternative names: {e}")))?;
        params.distinguished_name = rcgen::DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, name);
        params
            .distinguished_name
            .push(DnType::OrganizationName, "Rampart");
        params
            .distinguished_name
            .push(DnType::OrganizationalUnitName, kind.as_str());
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = match kind {
            Kind::Server => vec![ExtendedKeyUsagePurpose::ServerAuth],
            _ => vec![ExtendedKeyUsagePurpose::ClientAuth],
        };
        params.use_authority_key_identifier_extension = true;
        let not_before = opts.not_before_unix.unwrap_or(now - 300);
        let not_after = opts
            .not_after_unix
            .unwrap_or(now + i64::from(opts.days) * 86_400);
        if not_after <= not_before {
            return Err(PkiError::Invalid(
                "the end of validity is before its start".into(),
            ));
        }
        params.not_before = odt(not_before)?;
        params.not_after = odt(not_after)?;
        let serial = new_serial()?;
        let serial_str = serial_hex(serial.as_ref());
        params.serial_number = Some(serial.clone());
        let key = KeyPair::generate().map_err(crypto)?;
        let cert = params.signed_by(&key, &self.issuer()?).map_err(crypto)?;

        let dir = paths.issued_dir(name);
        create_private_dir(&dir)?;
        let cert_path = paths.issued_cert(name);
        let key_path = paths.issued_key(name);
        write_replace(&cert_path, cert.pem().as_bytes(), 0o644)?;
        write_replace(&key_path, key.serialize_pem().as_bytes(), 0o600)?;
        write_replace(&dir.join("ca.crt"), self.ca_cert_pem.as_bytes(), 0o644)?;
        let (password, generated) = match &opts.p12_password {
            Some(p) if p.is_empty() => {
                return Err(PkiError::Invalid(
                    "an empty PKCS#12 password: give one or let one be generated".into(),
                ));
            }
            Some(p) => (p.clone(), false),
            None => (generate_password()?, true),
        };
        let p12 = pkcs12(
            name,
            &key.serialize_der(),
            cert.der(),
            &self.ca_der()?,
            serial.as_ref(),
            &password,
        )?;
        let p12_path = dir.join(format!("{name}.p12"));
        write_replace(&p12_path, &p12, 0o600)?;
        let mut signing_public_key = None;
        let mut signing_key = None;
        if kind == Kind::Device {
            let sk = DeviceSigningKey::generate()?;
            let path = dir.join(format!("{name}.sign.key"));
            write_replace(&path, sk.to_pkcs8_pem().as_bytes(), 0o600)?;
            write_replace(
                &dir.join(format!("{name}.sign.pub")),
                public_key_pem(&sk.public_key()).as_bytes(),
                0o644,
            )?;
            signing_public_key = Some(sk.public_key().iter().map(|b| format!("{b:02x}")).collect());
            signing_key = Some(path);
        }
        let record = CertRecord {
            name: name.to_string(),
            kind,
            serial: serial_str,
            not_before: rfc3339(not_before),
            not_after: rfc3339(not_after),
            sans: if kind == Kind::Server {
                sans
            } else {
                Vec::new()
            },
            revoked_at: None,
            signing_public_key,
        };
        inv.certs.push(record.clone());
        write_replace(
            &paths.inventory(),
            &serde_json::to_vec_pretty(&inv).map_err(crypto)?,
            0o644,
        )?;
        Ok(Issued {
            record,
            cert: cert_path,
            key: key_path,
            p12: p12_path,
            p12_password: password,
            password_generated: generated,
            signing_key,
        })
    }

    fn ca_der(&self) -> Result<Vec<u8>, PkiError> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;
        CertificateDer::from_pem_slice(self.ca_cert_pem.as_bytes())
            .map(|c| c.to_vec())
            .map_err(|e| PkiError::Invalid(format!("CA certificate: {e}")))
    }

    /// Revokes every unrevoked certificate of `name` and re-signs the CRL. Returns the
    /// records revoked now (empty if all were already revoked).
    pub fn revoke(&self, name: &str) -> Result<Vec<CertRecord>, PkiError> {
        validate_name(name)?;
        let paths = self.paths();
        let mut inv = Inventory::load(&paths.inventory())?;
        if !inv.certs.iter().any(|r| r.name == name) {
            return Err(PkiError::Invalid(format!(
                "no certificate was issued to {name}"
            )));
        }
        let now = rfc3339(now_unix());
        let mut revoked = Vec::new();
        for r in inv.certs.iter_mut().filter(|r| r.name == name) {
            if r.revoked_at.is_none() {
                r.revoked_at = Some(now.clone());
                revoked.push(r.clone());
            }
        }
        self.write_crl_and_inventory(inv)?;
        Ok(revoked)
    }

    /// Signs a CRL of every revoked certificate, then saves the inventory. The CRL goes
    /// first: a revocation is in force once the CRL holds it.
    fn write_crl_and_inventory(&self, mut inv: Inventory) -> Result<(), PkiError> {
        let paths = self.paths();
        inv.crl_number += 1;
        let now = now_unix();
        let mut revoked_certs = Vec::new();
        for r in inv.certs.iter().filter(|r| r.revoked_at.is_some()) {
            let serial = hex_decode(&r.serial).ok_or_else(|| {
                PkiError::Invalid(format!("inventory: bad serial {:?}", r.serial))
            })?;
            let at = r
                .revoked_at
                .as_deref()
                .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.timestamp())
                .unwrap_or(now);
            revoked_certs.push(RevokedCertParams {
                serial_number: SerialNumber::from_slice(&serial),
                revocation_time: odt(at)?,
                reason_code: None,
                invalidity_date: None,
            });
        }
        let params = CertificateRevocationListParams {
            this_update: odt(now - 60)?,
            next_update: odt(now + CRL_DAYS * 86_400)?,
            crl_number: SerialNumber::from_slice(&inv.crl_number.to_be_bytes()),
            issuing_distribution_point: None,
            revoked_certs,
            key_identifier_method: KeyIdMethod::Sha256,
        };
        let crl = params.signed_by(&self.issuer()?).map_err(crypto)?;
        write_replace(&paths.crl(), crl.pem().map_err(crypto)?.as_bytes(), 0o644)?;
        write_replace(
            &paths.inventory(),
            &serde_json::to_vec_pretty(&inv).map_err(crypto)?,
            0o644,
        )
    }
}

/// A random positive 128-bit serial (RFC 5280: at most 20 octets, positive).
fn new_serial() -> Result<SerialNumber, PkiError> {
    let mut b = random_bytes::<16>()?;
    b[0] = (b[0] & 0x7f) | 0x40;
    Ok(SerialNumber::from_slice(&b))
}

/// A PKCS#12 bundle (PBES2 AES-256-CBC, HMAC-SHA256 MAC) of the key and the chain.
fn pkcs12(
    alias: &str,
    key_pkcs8: &[u8],
    cert: &[u8],
    ca: &[u8],
    key_id: &[u8],
    password: &str,
) -> Result<Vec<u8>, PkiError> {
    use p12_keystore::{Certificate, KeyStore, KeyStoreEntry, PrivateKey, PrivateKeyChain};
    let key = PrivateKey::from_der(key_pkcs8).map_err(crypto)?;
    let chain = PrivateKeyChain::new(
        key_id.to_vec(),
        key,
        [
            Certificate::from_der(cert).map_err(crypto)?,
            Certificate::from_der(ca).map_err(crypto)?,
        ],
    );
    let mut ks = KeyStore::new();
    ks.add_entry(alias, KeyStoreEntry::PrivateKeyChain(chain));
    ks.writer(password).write().map_err(crypto)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn init_is_idempotent_and_never_overwrites() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("pki");
        let (_, created) = Pki::init(&dir).unwrap();
        assert!(created);
        let cert = std::fs::read(dir.join("ca.crt")).unwrap();
        let key = std::fs::read(dir.join("ca.key")).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join("ca.key"))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let (_, created) = Pki::init(&dir).unwrap();
        assert!(!created);
        assert_eq!(std::fs::read(dir.join("ca.crt")).unwrap(), cert);
        assert_eq!(std::fs::read(dir.join("ca.key")).unwrap(), key);
        // Half a CA is refused, not repaired.
        std::fs::remove_file(dir.join("ca.crt")).unwrap();
        assert!(Pki::init(&dir).is_err());
        assert_eq!(std::fs::read(dir.join("ca.key")).unwrap(), key);
    }

    #[test]
    fn issue_list_revoke() {
        let tmp = tempfile::tempdir().unwrap();
        let (pki, _) = Pki::init(tmp.path()).unwrap();
        let s = pki
            .issue(Kind::Server, "node1", &IssueOptions::default())
            .unwrap();
        assert_eq!(s.record.sans, vec!["localhost", "127.0.0.1"]);
        assert!(s.password_generated && s.p12_password.len() == 20);
        let d = pki
            .issue(
                Kind::Device,
                "radio-7",
                &IssueOptions {
                    p12_password: Some("secret".into()),
                    ..IssueOptions::default()
                },
            )
            .unwrap();
        assert!(d.signing_key.is_some());
        assert_eq!(
            d.record.signing_public_key.as_ref().map(|k| k.len()),
            Some(64)
        );
        // The bundle opens with its password and holds the key and both certificates.
        let ks = p12_keystore::KeyStore::from_pkcs12(
            &std::fs::read(&d.p12).unwrap(),
            "secret",
            p12_keystore::Pkcs12ImportPolicy::Strict,
        )
        .unwrap();
        let (_, chain) = ks.private_key_chain().unwrap();
        assert_eq!(chain.certs().len(), 2);
        assert!(chain.certs()[0].subject().contains("radio-7"));
        // A second valid certificate for the same name is refused.
        assert!(
            pki.issue(Kind::User, "radio-7", &IssueOptions::default())
                .is_err()
        );
        assert!(
            pki.issue(Kind::User, "../etc", &IssueOptions::default())
                .is_err()
        );
        let revoked = pki.revoke("radio-7").unwrap();
        assert_eq!(revoked.len(), 1);
        let list = pki.list().unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[1].status(now_unix()), "revoked");
        assert_eq!(list[0].status(now_unix()), "valid");
        let crl = std::fs::read(pki.paths().crl()).unwrap();
        let revoked = crate::tls::crl_serials(&crl).unwrap();
        assert!(revoked.contains(&d.record.serial));
        // After revocation the name can be issued again.
        pki.issue(Kind::Device, "radio-7", &IssueOptions::default())
            .unwrap();
        assert!(pki.revoke("nobody").is_err());
    }
}
