//! TLS for probes: certificates are verified against the public roots (webpki-roots, so the
//! result does not depend on the machine's store) or against a check's own CA, and the server
//! certificate's expiry is read so that checks can assert on the days left.

use std::sync::Arc;

use rustls::ClientConfig;
use rustls::pki_types::CertificateDer;

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("cannot read CA file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("CA file {path} holds no PEM certificate")]
    Empty { path: String },
    #[error("CA file {path}: {message}")]
    Invalid { path: String, message: String },
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    use rustls::crypto::ring::cipher_suite as suite;
    // ring: pure Rust and C with no cmake, so it builds on a bare machine.
    let mut provider = rustls::crypto::ring::default_provider();
    // Offered in the order browsers offer them (AES-128 first), so that a probe negotiates
    // what a service's users negotiate; ring's own order puts AES-256 with SHA-384 first.
    provider.cipher_suites = vec![
        suite::TLS13_AES_128_GCM_SHA256,
        suite::TLS13_AES_256_GCM_SHA384,
        suite::TLS13_CHACHA20_POLY1305_SHA256,
        suite::TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
        suite::TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        suite::TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
        suite::TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        suite::TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
        suite::TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ];
    Arc::new(provider)
}

fn config(roots: rustls::RootCertStore) -> Result<Arc<ClientConfig>, rustls::Error> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // Every run makes a full handshake: a resumed session would skip verifying the chain and
    // report the certificate of the session it resumed, not the one the server holds now.
    config.resumption = rustls::client::Resumption::disabled();
    Ok(Arc::new(config))
}

/// Verifies against the public web PKI.
pub fn public_roots() -> Arc<ClientConfig> {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    match config(roots) {
        Ok(c) => c,
        // The ring provider supports the default versions; this cannot fail in practice, and
        // an empty-root config would fail every handshake loudly rather than pass silently.
        Err(_) => Arc::new(
            ClientConfig::builder()
                .with_root_certificates(rustls::RootCertStore::empty())
                .with_no_client_auth(),
        ),
    }
}

/// Verifies against the CAs in a PEM file only (as blackbox_exporter's `ca_file`).
pub fn from_ca_pem(path: &str, pem: &[u8]) -> Result<Arc<ClientConfig>, TlsSetupError> {
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut &pem[..])
        .collect::<Result<_, _>>()
        .map_err(|e| TlsSetupError::Invalid {
            path: path.into(),
            message: e.to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsSetupError::Empty { path: path.into() });
    }
    let mut roots = rustls::RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|e| TlsSetupError::Invalid {
            path: path.into(),
            message: e.to_string(),
        })?;
    }
    config(roots).map_err(|e| TlsSetupError::Invalid {
        path: path.into(),
        message: e.to_string(),
    })
}

pub fn load_ca(path: &str) -> Result<Arc<ClientConfig>, TlsSetupError> {
    let pem = std::fs::read(path).map_err(|source| TlsSetupError::Read {
        path: path.into(),
        source,
    })?;
    from_ca_pem(path, &pem)
}

/// Whole days until the certificate's `notAfter`, negative once expired.
pub fn days_left(cert: &CertificateDer<'_>, now_unix: i64) -> Option<i64> {
    use x509_parser::nom::Parser;
    // Every handshake reads this: the extensions' contents are left unparsed, as only the
    // validity is wanted (parsing them costs a TLS probe a few per cent of its CPU).
    let (_, parsed) = x509_parser::certificate::X509CertificateParser::new()
        .with_deep_parse_extensions(false)
        .parse(cert.as_ref())
        .ok()?;
    let not_after = parsed.validity().not_after.timestamp();
    Some((not_after - now_unix).div_euclid(86_400))
}
