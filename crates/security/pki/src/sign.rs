//! Signed reports for untrusted bearers (UDP, mesh multicast, radio links that cannot run
//! TLS): the signed envelope, the device's Ed25519 key, and the verifier with its per-device
//! replay window and clock-skew window. Sans-IO: bytes in, verdict out.
//!
//! # The envelope (`RSG1`)
//!
//! Any datagram is wrapped, unchanged, as:
//!
//! ```text
//! offset   size  field
//! 0        4     magic "RSG1" (52 53 47 31)
//! 4        1     L: key id length, 1..=64
//! 5        L     key id: the device's certificate name (A-Z a-z 0-9 . _ -)
//! 5+L      8     seq: u64 big-endian, increasing per device (any start value)
//! 13+L     8     ts: i64 big-endian, Unix milliseconds at signing
//! 21+L     N     payload: the datagram as it would travel unsigned (CoT XML, mesh frame, NMEA …)
//! end-64   64    Ed25519 signature over bytes [0, end-64): magic, key id, seq, ts and payload
//! ```
//!
//! The signature covers the exact bytes on the wire, so there is no re-serialisation to get
//! wrong: a radio gateway signs what it sends. The magic is part of the signed bytes, which
//! separates these signatures from any other use of the key.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use ring::signature::{ED25519, Ed25519KeyPair, KeyPair as _, UnparsedPublicKey};

use crate::PkiError;
use crate::ca::random_bytes;

/// First bytes of a signed envelope.
pub const MAGIC: &[u8; 4] = b"RSG1";
/// Longest key id.
pub const MAX_KEY_ID: usize = 64;
/// Size of an Ed25519 signature.
pub const SIGNATURE_LEN: usize = 64;
/// Sequence numbers remembered behind the highest one seen, per device. Reordering deeper
/// than this on a bearer is refused as a replay.
pub const REPLAY_WINDOW: u64 = 128;

/// PKCS#8 v1 prefix of an Ed25519 private key (RFC 8410), followed by the 32-byte seed.
const PKCS8_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];
/// SubjectPublicKeyInfo prefix of an Ed25519 public key, followed by the 32-byte key.
const SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(&String::from_utf8_lossy(chunk));
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// An Ed25519 public key as a PEM `PUBLIC KEY` (SubjectPublicKeyInfo).
pub fn public_key_pem(key: &[u8; 32]) -> String {
    let mut der = SPKI_PREFIX.to_vec();
    der.extend_from_slice(key);
    pem("PUBLIC KEY", &der)
}

/// A device's report-signing key (Ed25519).
pub struct DeviceSigningKey {
    seed: [u8; 32],
    pair: Ed25519KeyPair,
}

impl std::fmt::Debug for DeviceSigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceSigningKey(..)")
    }
}

impl DeviceSigningKey {
    /// A new random key.
    pub fn generate() -> Result<Self, PkiError> {
        Self::from_seed(random_bytes::<32>()?)
    }

    /// The key of a 32-byte seed.
    pub fn from_seed(seed: [u8; 32]) -> Result<Self, PkiError> {
        let pair = Ed25519KeyPair::from_seed_unchecked(&seed)
            .map_err(|e| PkiError::Crypto(format!("Ed25519 key: {e}")))?;
        Ok(DeviceSigningKey { seed, pair })
    }

    /// Reads a PEM PKCS#8 Ed25519 private key (as `rampart pki issue device` writes it).
    pub fn from_pkcs8_pem(text: &str) -> Result<Self, PkiError> {
        use rustls::pki_types::PrivatePkcs8KeyDer;
        use rustls::pki_types::pem::PemObject;
        let der = PrivatePkcs8KeyDer::from_pem_slice(text.as_bytes())
            .map_err(|e| PkiError::Invalid(format!("Ed25519 private key: {e}")))?;
        let der = der.secret_pkcs8_der();
        match der.strip_prefix(&PKCS8_PREFIX[..]) {
            Some(seed) if seed.len() == 32 => {
                let mut s = [0u8; 32];
                s.copy_from_slice(seed);
                Self::from_seed(s)
            }
            _ => Err(PkiError::Invalid(
                "not an Ed25519 PKCS#8 v1 private key".into(),
            )),
        }
    }

    /// The key as PEM PKCS#8 (v1, readable by OpenSSL and Python `cryptography`).
    pub fn to_pkcs8_pem(&self) -> String {
        let mut der = PKCS8_PREFIX.to_vec();
        der.extend_from_slice(&self.seed);
        pem("PRIVATE KEY", &der)
    }

    /// The 32-byte public key.
    pub fn public_key(&self) -> [u8; 32] {
        let mut k = [0u8; 32];
        k.copy_from_slice(self.pair.public_key().as_ref());
        k
    }

    /// Wraps `payload` in a signed envelope.
    pub fn seal(&self, key_id: &str, seq: u64, ts_ms: i64, payload: &[u8]) -> Vec<u8> {
        let id = key_id.as_bytes();
        let id = &id[..id.len().min(MAX_KEY_ID)];
        let mut out = Vec::with_capacity(21 + id.len() + payload.len() + SIGNATURE_LEN);
        out.extend_from_slice(MAGIC);
        out.push(id.len() as u8);
        out.extend_from_slice(id);
        out.extend_from_slice(&seq.to_be_bytes());
        out.extend_from_slice(&ts_ms.to_be_bytes());
        out.extend_from_slice(payload);
        let sig = self.pair.sign(&out);
        out.extend_from_slice(sig.as_ref());
        out
    }
}

/// An envelope's fields, borrowed from the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Envelope<'a> {
    /// Key id (device name).
    pub key_id: &'a str,
    /// Sequence number.
    pub seq: u64,
    /// Signing time, Unix milliseconds.
    pub ts_ms: i64,
    /// The wrapped datagram.
    pub payload: &'a [u8],
    /// The signed bytes (everything before the signature).
    pub signed: &'a [u8],
    /// The signature.
    pub signature: &'a [u8],
}

/// Whether `datagram` starts like a signed envelope.
pub fn is_signed(datagram: &[u8]) -> bool {
    datagram.starts_with(MAGIC)
}

/// Splits a signed envelope into its fields (no verification).
pub fn parse_envelope(d: &[u8]) -> Result<Envelope<'_>, Refusal> {
    if !is_signed(d) {
        return Err(Refusal::Unsigned);
    }
    let l = *d.get(4).ok_or(Refusal::Malformed)? as usize;
    if l == 0 || l > MAX_KEY_ID || d.len() < 5 + l + 16 + SIGNATURE_LEN {
        return Err(Refusal::Malformed);
    }
    let key_id = std::str::from_utf8(&d[5..5 + l]).map_err(|_| Refusal::Malformed)?;
    let mut n = [0u8; 8];
    n.copy_from_slice(&d[5 + l..13 + l]);
    let seq = u64::from_be_bytes(n);
    n.copy_from_slice(&d[13 + l..21 + l]);
    let ts_ms = i64::from_be_bytes(n);
    let split = d.len() - SIGNATURE_LEN;
    Ok(Envelope {
        key_id,
        seq,
        ts_ms,
        payload: &d[21 + l..split],
        signed: &d[..split],
        signature: &d[split..],
    })
}

/// Why a datagram was refused. [`Refusal::reason`] is the metrics label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Refusal {
    /// No envelope where one is required.
    Unsigned,
    /// An envelope too short, or with a bad key id.
    Malformed,
    /// The key id is not a known, unrevoked device.
    UnknownKey,
    /// The signature does not verify.
    BadSignature,
    /// A sequence number already seen, or too far behind the newest.
    Replay,
    /// Signed longer ago than the skew window.
    Stale,
    /// Signed further in the future than the skew window.
    Future,
}

impl Refusal {
    /// The metrics label: `unsigned`, `malformed`, `unknown_key`, `bad_signature`, `replay`,
    /// `stale` or `future`.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::Unsigned => "unsigned",
            Refusal::Malformed => "malformed",
            Refusal::UnknownKey => "unknown_key",
            Refusal::BadSignature => "bad_signature",
            Refusal::Replay => "replay",
            Refusal::Stale => "stale",
            Refusal::Future => "future",
        }
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Refusal::Unsigned => "unsigned datagram where a signature is required",
            Refusal::Malformed => "malformed signed envelope",
            Refusal::UnknownKey => "unknown or revoked signing key",
            Refusal::BadSignature => "the signature does not verify",
            Refusal::Replay => "sequence number replayed or too old",
            Refusal::Stale => "signed too long ago (outside the clock-skew window)",
            Refusal::Future => "signed in the future (outside the clock-skew window)",
        })
    }
}

/// Settings of a [`SignatureVerifier`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifierConfig {
    /// Largest difference between the envelope's time and the receiver's clock, in ms.
    pub max_skew_ms: i64,
}

impl Default for VerifierConfig {
    fn default() -> Self {
        VerifierConfig {
            max_skew_ms: 30_000,
        }
    }
}

/// The verification keys: device name → Ed25519 public key. Shared so a PKI watch can swap
/// in a new set (after an issue or a revocation) without touching the replay windows.
pub type SigningKeys = Arc<HashMap<String, [u8; 32]>>;

#[derive(Debug, Default, Clone, Copy)]
struct Window {
    highest: u64,
    /// Bit i: `highest - i` was seen.
    seen: u128,
}

impl Window {
    /// Records `seq`; `false` if it was seen or is too far behind.
    fn accept(&mut self, seq: u64) -> bool {
        if self.seen == 0 {
            self.highest = seq;
            self.seen = 1;
            return true;
        }
        if seq > self.highest {
            let shift = seq - self.highest;
            self.seen = if shift >= REPLAY_WINDOW {
                0
            } else {
                self.seen << shift
            };
            self.seen |= 1;
            self.highest = seq;
            return true;
        }
        let behind = self.highest - seq;
        if behind >= REPLAY_WINDOW || self.seen & (1u128 << behind) != 0 {
            return false;
        }
        self.seen |= 1u128 << behind;
        true
    }
}

/// Verifies signed envelopes: known key, valid signature, inside the clock-skew window, and
/// not a replay. One replay window per known device, so its memory is bounded by the number
/// of devices in the key set.
pub struct SignatureVerifier {
    cfg: VerifierConfig,
    /// The key set and the watch generation it came from.
    keys: Mutex<(u64, SigningKeys)>,
    windows: Mutex<HashMap<String, Window>>,
    source: Option<Arc<crate::tls::RevocationWatch>>,
}

impl std::fmt::Debug for SignatureVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SignatureVerifier")
            .field("cfg", &self.cfg)
            .finish_non_exhaustive()
    }
}

impl SignatureVerifier {
    /// A verifier over `keys`.
    pub fn new(cfg: VerifierConfig, keys: SigningKeys) -> Self {
        SignatureVerifier {
            cfg,
            keys: Mutex::new((0, keys)),
            windows: Mutex::new(HashMap::new()),
            source: None,
        }
    }

    /// A verifier whose keys follow `watch`: devices issued or revoked since are picked up
    /// when the watch reloads the inventory.
    pub fn from_watch(cfg: VerifierConfig, watch: Arc<crate::tls::RevocationWatch>) -> Self {
        let state = watch.state();
        SignatureVerifier {
            cfg,
            keys: Mutex::new((state.generation, state.signing_keys.clone())),
            windows: Mutex::new(HashMap::new()),
            source: Some(watch),
        }
    }

    /// Replaces the key set; windows of devices no longer present are dropped.
    pub fn set_keys(&self, keys: SigningKeys) {
        self.windows.lock().retain(|k, _| keys.contains_key(k));
        self.keys.lock().1 = keys;
    }

    fn key(&self, id: &str) -> Option<[u8; 32]> {
        if let Some(w) = &self.source {
            let state = w.state();
            let stale = self.keys.lock().0 != state.generation;
            if stale {
                self.set_keys(state.signing_keys.clone());
                self.keys.lock().0 = state.generation;
            }
        }
        self.keys.lock().1.get(id).copied()
    }

    /// [`SignatureVerifier::verify`], returning where the payload lies in `datagram`.
    pub fn verify_range(
        &self,
        datagram: &[u8],
        now_ms: i64,
    ) -> Result<std::ops::Range<usize>, Refusal> {
        let (_, payload) = self.verify(datagram, now_ms)?;
        let start = datagram.len() - SIGNATURE_LEN - payload.len();
        Ok(start..start + payload.len())
    }

    /// Verifies `datagram` at `now_ms` and returns the device name and the wrapped payload.
    pub fn verify<'a>(
        &self,
        datagram: &'a [u8],
        now_ms: i64,
    ) -> Result<(&'a str, &'a [u8]), Refusal> {
        let env = parse_envelope(datagram)?;
        let key = self.key(env.key_id).ok_or(Refusal::UnknownKey)?;
        UnparsedPublicKey::new(&ED25519, &key)
            .verify(env.signed, env.signature)
            .map_err(|_| Refusal::BadSignature)?;
        // Only authentic envelopes reach the window, so forgeries cannot advance it.
        if env.ts_ms < now_ms.saturating_sub(self.cfg.max_skew_ms) {
            return Err(Refusal::Stale);
        }
        if env.ts_ms > now_ms.saturating_add(self.cfg.max_skew_ms) {
            return Err(Refusal::Future);
        }
        let mut windows = self.windows.lock();
        let fresh = match windows.get_mut(env.key_id) {
            Some(w) => w.accept(env.seq),
            None => {
                let mut w = Window::default();
                w.accept(env.seq);
                windows.insert(env.key_id.to_string(), w);
                true
            }
        };
        if !fresh {
            return Err(Refusal::Replay);
        }
        Ok((env.key_id, env.payload))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn setup() -> (DeviceSigningKey, SignatureVerifier) {
        let sk = DeviceSigningKey::generate().unwrap();
        let mut keys = HashMap::new();
        keys.insert("radio-1".to_string(), sk.public_key());
        (
            sk,
            SignatureVerifier::new(VerifierConfig::default(), Arc::new(keys)),
        )
    }

    const NOW: i64 = 1_800_000_000_000;

    #[test]
    fn valid_signature_is_accepted() {
        let (sk, v) = setup();
        let env = sk.seal("radio-1", 1, NOW, b"<event/>");
        assert_eq!(v.verify(&env, NOW).unwrap(), ("radio-1", &b"<event/>"[..]));
    }

    #[test]
    fn wrong_key_is_refused() {
        let (_, v) = setup();
        let other = DeviceSigningKey::generate().unwrap();
        let env = other.seal("radio-1", 1, NOW, b"<event/>");
        assert_eq!(v.verify(&env, NOW), Err(Refusal::BadSignature));
        let env = other.seal("radio-2", 1, NOW, b"<event/>");
        assert_eq!(v.verify(&env, NOW), Err(Refusal::UnknownKey));
    }

    #[test]
    fn every_flipped_byte_is_refused() {
        let (sk, v) = setup();
        let env = sk.seal("radio-1", 5, NOW, b"<event uid='x'/>");
        for i in 0..env.len() {
            let mut bad = env.clone();
            bad[i] ^= 0x01;
            assert!(
                v.verify(&bad, NOW).is_err(),
                "byte {i} flipped was accepted"
            );
        }
        // The untouched envelope still passes: no flipped copy advanced the window.
        assert!(v.verify(&env, NOW).is_ok());
    }

    #[test]
    fn replay_and_window() {
        let (sk, v) = setup();
        let env = sk.seal("radio-1", 10, NOW, b"a");
        assert!(v.verify(&env, NOW).is_ok());
        assert_eq!(v.verify(&env, NOW), Err(Refusal::Replay));
        // Reordering inside the window is fine, once.
        assert!(v.verify(&sk.seal("radio-1", 12, NOW, b"b"), NOW).is_ok());
        assert!(v.verify(&sk.seal("radio-1", 11, NOW, b"c"), NOW).is_ok());
        assert_eq!(
            v.verify(&sk.seal("radio-1", 11, NOW, b"c"), NOW),
            Err(Refusal::Replay)
        );
        assert!(v.verify(&sk.seal("radio-1", 500, NOW, b"d"), NOW).is_ok());
        // Too far behind the newest.
        assert_eq!(
            v.verify(&sk.seal("radio-1", 300, NOW, b"e"), NOW),
            Err(Refusal::Replay)
        );
    }

    #[test]
    fn stale_and_future_are_refused() {
        let (sk, v) = setup();
        let env = sk.seal("radio-1", 1, NOW - 31_000, b"a");
        assert_eq!(v.verify(&env, NOW), Err(Refusal::Stale));
        let env = sk.seal("radio-1", 2, NOW + 31_000, b"a");
        assert_eq!(v.verify(&env, NOW), Err(Refusal::Future));
        let env = sk.seal("radio-1", 3, NOW - 29_000, b"a");
        assert!(v.verify(&env, NOW).is_ok());
    }

    #[test]
    fn unsigned_and_malformed() {
        let (_, v) = setup();
        assert_eq!(v.verify(b"<event/>", NOW), Err(Refusal::Unsigned));
        assert_eq!(v.verify(b"RSG1\x05abc", NOW), Err(Refusal::Malformed));
        assert_eq!(v.verify(b"RSG1", NOW), Err(Refusal::Malformed));
    }

    #[test]
    fn verify_range_points_at_the_payload() {
        let (sk, v) = setup();
        let env = sk.seal("radio-1", 1, NOW, b"$GPGGA,1*00\r\n");
        let r = v.verify_range(&env, NOW).unwrap();
        assert_eq!(&env[r], b"$GPGGA,1*00\r\n");
    }

    #[test]
    fn pkcs8_round_trip() {
        let sk = DeviceSigningKey::generate().unwrap();
        let back = DeviceSigningKey::from_pkcs8_pem(&sk.to_pkcs8_pem()).unwrap();
        assert_eq!(back.public_key(), sk.public_key());
        assert!(public_key_pem(&sk.public_key()).starts_with("-----BEGIN PUBLIC KEY-----"));
    }

    #[test]
    fn key_set_swap_drops_removed_devices() {
        let (sk, v) = setup();
        assert!(v.verify(&sk.seal("radio-1", 1, NOW, b"a"), NOW).is_ok());
        v.set_keys(Arc::new(HashMap::new()));
        assert_eq!(
            v.verify(&sk.seal("radio-1", 2, NOW, b"a"), NOW),
            Err(Refusal::UnknownKey)
        );
    }
}
