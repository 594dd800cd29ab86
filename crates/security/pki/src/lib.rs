//! # rampart-pki
//!
//! Rampart's built-in PKI. It owns:
//!
//! - `ca`: the certificate authority under `<data>/pki` (created once, never overwritten),
//!   issuing server, device and user certificates as PEM files and PKCS#12 bundles, revoking
//!   them into a signed CRL, and the inventory of everything issued;
//! - `tls`: rustls server configurations (TLS 1.3 and 1.2, ring) with client certificates
//!   verified against the CA and its CRL, the [`RevocationWatch`] that reloads the CRL when it
//!   changes and tells live connections their peer was revoked, and [`peer_identity`];
//! - `sign`: the signed envelope for untrusted bearers (Ed25519, sequence number, timestamp)
//!   and its verifier with a per-device replay window and a clock-skew window.

pub mod ca;
pub mod sign;
pub mod tls;

use std::path::{Path, PathBuf};

pub use ca::{CertRecord, Inventory, IssueOptions, Issued, Kind, Pki, PkiPaths};
pub use sign::{DeviceSigningKey, Refusal, SignatureVerifier, VerifierConfig};
pub use tls::{
    ClientAuth, Identity, RevocationWatch, TrustState, client_config, identity_of, peer_identity,
    server_config,
};

/// Why a PKI operation failed.
#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// No CA in the directory.
    #[error("no certificate authority under {0}: run `rampart pki init` first")]
    NotInitialized(PathBuf),
    /// Bad input or a bad file, with what is wrong.
    #[error("{0}")]
    Invalid(String),
    /// A cryptographic operation failed.
    #[error("crypto: {0}")]
    Crypto(String),
}

impl PkiError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Self {
        PkiError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
