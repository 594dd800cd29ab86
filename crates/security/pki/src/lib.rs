//! Built-in PKI: certificate authority, issuing and revoking certificates, TLS configurations and signed reports.
