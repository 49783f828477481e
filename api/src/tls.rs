//! TLS for Lookout's own listeners and the clients that call them, from PEM files (rustls with
//! ring, as the rest of the workspace). A server serves its certificate chain; a client trusts
//! the public roots and, where Lookout's parts carry certificates of a private CA, that CA too.

use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// A client that never finishes its handshake is dropped after this long.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Handshakes done and waiting for the server to take them.
const READY_QUEUE: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("{cert} and {key}: {message}")]
    Pair {
        cert: String,
        key: String,
        message: String,
    },
}

fn file_error(path: &Path, message: impl std::fmt::Display) -> TlsError {
    TlsError::File {
        path: path.display().to_string(),
        message: message.to_string(),
    }
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|e| file_error(path, format!("cannot read it: {e}")))
}

/// What a listener serves: a certificate chain and its key.
#[derive(Clone)]
pub struct ServerTls {
    config: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ServerTls")
    }
}

impl ServerTls {
    /// Reads `cert` (PEM: the certificate, then any intermediates) and `key` (PEM, PKCS#8,
    /// PKCS#1 or SEC1), and checks that they belong together.
    pub fn from_pem_files(cert: &Path, key: &Path) -> Result<ServerTls, TlsError> {
        Self::from_pem(cert, &read(cert)?, key, &read(key)?)
    }

    /// The same from PEM already read; `cert` and `key` name them in errors.
    pub fn from_pem(
        cert: &Path,
        cert_pem: &[u8],
        key: &Path,
        key_pem: &[u8],
    ) -> Result<ServerTls, TlsError> {
        let chain: Vec<_> = rustls_pemfile::certs(&mut &cert_pem[..])
            .collect::<Result<_, _>>()
            .map_err(|e| file_error(cert, format!("not PEM certificates: {e}")))?;
        if chain.is_empty() {
            return Err(file_error(cert, "holds no PEM certificate"));
        }
        let private = rustls_pemfile::private_key(&mut &key_pem[..])
            .map_err(|e| file_error(key, format!("not a PEM private key: {e}")))?
            .ok_or_else(|| file_error(key, "holds no PEM private key"))?;
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| file_error(cert, e))?
        .with_no_client_auth()
        .with_single_cert(chain, private)
        .map_err(|e| TlsError::Pair {
            cert: cert.display().to_string(),
            key: key.display().to_string(),
            message: e.to_string(),
        })?;
        Ok(ServerTls {
            config: Arc::new(config),
        })
    }
}

/// The roots a client trusts beyond the public ones: the CA of Lookout's own certificates.
#[derive(Clone, Debug, Default)]
pub struct Trust {
    roots: Vec<reqwest::Certificate>,
}

impl Trust {
    /// Every certificate in `ca` (PEM).
    pub fn from_pem_file(ca: &Path) -> Result<Trust, TlsError> {
        let pem = read(ca)?;
        let roots = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| file_error(ca, format!("not PEM certificates: {e}")))?;
        if roots.is_empty() {
            return Err(file_error(ca, "holds no PEM certificate"));
        }
        Ok(Trust { roots })
    }

    /// `builder`, trusting these roots too.
    pub fn apply(&self, builder: reqwest::ClientBuilder) -> reqwest::ClientBuilder {
        self.roots
            .iter()
            .fold(builder, |b, root| b.add_root_certificate(root.clone()))
    }
}

/// A connection, plain or TLS: one type for the server either way.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A listener for `axum::serve`: plain TCP, or TLS with each handshake on its own task, so
/// that a client slow to finish one holds up nobody else.
pub struct Listener {
    local: SocketAddr,
    inner: Inner,
}

enum Inner {
    Plain(TcpListener),
    Tls(mpsc::Receiver<(Box<dyn Io>, SocketAddr)>),
}

impl Listener {
    pub fn new(tcp: TcpListener, tls: Option<ServerTls>) -> io::Result<Listener> {
        let local = tcp.local_addr()?;
        let Some(tls) = tls else {
            return Ok(Listener {
                local,
                inner: Inner::Plain(tcp),
            });
        };
        let (ready, incoming) = mpsc::channel(READY_QUEUE);
        let acceptor = tokio_rustls::TlsAcceptor::from(tls.config);
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    a = tcp.accept() => a,
                    // The server is gone: so is the port.
                    _ = ready.closed() => return,
                };
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of descriptors, mostly: wait rather than spin.
                        tracing::warn!(error = %e, "cannot accept a connection");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let (acceptor, ready) = (acceptor.clone(), ready.clone());
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(tls)) => {
                            let io: Box<dyn Io> = Box::new(tls);
                            let _ = ready.send((io, peer)).await;
                        }
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake refused")
                        }
                        Err(_) => tracing::debug!(%peer, "TLS handshake not finished in time"),
                    }
                });
            }
        });
        Ok(Listener {
            local,
            inner: Inner::Tls(incoming),
        })
    }
}

impl axum::serve::Listener for Listener {
    type Io = Box<dyn Io>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match &mut self.inner {
            // axum's own accept for TCP: it waits out errors such as a lack of descriptors.
            Inner::Plain(tcp) => {
                let (stream, peer) = axum::serve::Listener::accept(tcp).await;
                let io: Box<dyn Io> = Box::new(stream);
                (io, peer)
            }
            Inner::Tls(incoming) => match incoming.recv().await {
                Some(connection) => connection,
                // The acceptor ended: nothing more will come.
                None => std::future::pending().await,
            },
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.local)
    }
}
