//! HTTPS, as the real services speak it. Each sandbox makes its own certificate authority at start
//! (nothing is kept on disk) and a certificate for its listener, for `127.0.0.1`, `::1`, `localhost`
//! and the address it is bound to. Clients trust the CA explicitly: [`crate::Sandbox::tls_ca_pem`],
//! or `GET /_control/tls/ca` over plain HTTP for a sandbox running on its own.
//!
//! One port speaks both: a connection whose first byte is a TLS handshake record (`0x16`) is served
//! over TLS, any other over plain HTTP. The emulated APIs answer only over TLS (a plain request is
//! redirected, see [`require_tls`]); the control API answers over both, so that scripts can `curl` it,
//! and fetch the CA, without the CA.

use axum::extract::ConnectInfo;
use axum::extract::connect_info::Connected;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::serve::{IncomingStream, Listener};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// The first byte of a TLS record carrying a handshake (RFC 8446 §5.1, `ContentType.handshake`).
const TLS_HANDSHAKE: u8 = 0x16;
/// How long a new connection may take to send its first byte, then to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// The sandbox's CA and the acceptor presenting its listener's certificate.
pub(crate) struct SandboxTls {
    ca_pem: String,
    acceptor: TlsAcceptor,
}

impl SandboxTls {
    /// A new CA, and a certificate it issues for `addr` (plus the loopback names).
    pub(crate) fn generate(addr: SocketAddr) -> SandboxTls {
        let ca_key = KeyPair::generate().expect("CA key");
        let mut ca = CertificateParams::default();
        ca.distinguished_name
            .push(DnType::CommonName, "cosell sandbox TLS CA");
        ca.distinguished_name
            .push(DnType::OrganizationName, "cosell sandbox");
        ca.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = CertifiedIssuer::self_signed(ca, ca_key).expect("CA certificate");

        let leaf_key = KeyPair::generate().expect("listener key");
        let mut leaf = CertificateParams::default();
        leaf.distinguished_name
            .push(DnType::CommonName, "cosell sandbox");
        let mut ips = vec![
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ];
        if !ips.contains(&addr.ip()) && !addr.ip().is_unspecified() {
            ips.push(addr.ip());
        }
        leaf.subject_alt_names = std::iter::once(SanType::DnsName(
            "localhost".try_into().expect("a DNS name"),
        ))
        .chain(ips.into_iter().map(SanType::IpAddress))
        .collect();
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        // Strict verifiers (OpenSSL's X509_STRICT, Python 3.13's default) want the issuer's key id.
        leaf.use_authority_key_identifier_extension = true;
        let leaf_cert = leaf
            .signed_by(&leaf_key, &ca)
            .expect("listener certificate");

        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(
                vec![
                    CertificateDer::from(leaf_cert.der().to_vec()),
                    CertificateDer::from(ca.der().to_vec()),
                ],
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der())),
            )
            .expect("TLS server configuration");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        SandboxTls {
            ca_pem: ca.pem(),
            acceptor: TlsAcceptor::from(Arc::new(config)),
        }
    }

    pub(crate) fn ca_pem(&self) -> &str {
        &self.ca_pem
    }
}

/// How a connection reached the sandbox, for handlers and middleware (`ConnectInfo<Transport>`).
#[derive(Debug, Clone, Copy)]
pub struct Transport {
    pub remote: SocketAddr,
    pub tls: bool,
}

/// A connection, over TLS or not.
pub enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// The sandbox's listener for `axum::serve`: connections are told apart and TLS handshakes done in
/// tasks of their own (a slow or silent client holds up no other), and handed over ready.
pub(crate) struct DualListener {
    addr: SocketAddr,
    ready: mpsc::Receiver<(Stream, Transport)>,
}

impl DualListener {
    /// Accepts on `listener` until `stopped` turns true (the port is then released).
    pub(crate) fn new(
        listener: TcpListener,
        tls: &SandboxTls,
        mut stopped: watch::Receiver<bool>,
    ) -> io::Result<DualListener> {
        let addr = listener.local_addr()?;
        let (tx, ready) = mpsc::channel(64);
        let acceptor = tls.acceptor.clone();
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = stopped.wait_for(|s| *s) => break,
                    accepted = listener.accept() => accepted,
                };
                let (tcp, remote) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // As axum's own listener: such errors pass; back off a little.
                        tracing::debug!(error = %e, "sandbox accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _ = tcp.set_nodelay(true);
                    let mut first = [0u8; 1];
                    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, tcp.peek(&mut first))
                        .await
                    {
                        Ok(Ok(1)) if first[0] == TLS_HANDSHAKE => {
                            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp))
                                .await
                            {
                                Ok(Ok(tls)) => Stream::Tls(Box::new(tls)),
                                Ok(Err(e)) => {
                                    tracing::debug!(error = %e, %remote, "TLS handshake refused");
                                    return;
                                }
                                Err(_) => return,
                            }
                        }
                        Ok(Ok(1)) => Stream::Plain(tcp),
                        // Closed before a byte, or silent: nothing to serve.
                        _ => return,
                    };
                    let tls = matches!(stream, Stream::Tls(_));
                    let _ = tx.send((stream, Transport { remote, tls })).await;
                });
            }
        });
        Ok(DualListener { addr, ready })
    }
}

impl Listener for DualListener {
    type Io = Stream;
    type Addr = Transport;

    async fn accept(&mut self) -> (Stream, Transport) {
        match self.ready.recv().await {
            Some(ready) => ready,
            // The accept loop stopped: so does serving (graceful shutdown is under way).
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> io::Result<Transport> {
        Ok(Transport {
            remote: self.addr,
            tls: true,
        })
    }
}

impl Connected<IncomingStream<'_, DualListener>> for Transport {
    fn connect_info(stream: IncomingStream<'_, DualListener>) -> Transport {
        *stream.remote_addr()
    }
}

/// The emulated APIs answer only over TLS, as the real ones do: a plain-HTTP request is sent to the
/// same URL over HTTPS with `308 Permanent Redirect` (what the services' front doors do; the method
/// and body are kept by a client that follows it), and never reaches an emulator, its faults or the
/// journal. Requests without connection information (a router driven in-process) pass.
pub(crate) async fn require_tls(request: Request<axum::body::Body>, next: Next) -> Response {
    let plain = request
        .extensions()
        .get::<ConnectInfo<Transport>>()
        .is_some_and(|c| !c.0.tls);
    // An unknown control path reaches the emulators' fallback: it is a control call all the same.
    let path = request.uri().path();
    let control = path == "/_control" || path.starts_with("/_control/");
    if !plain || control {
        return next.run(request).await;
    }
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let path = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let to = format!("https://{host}{path}");
    match HeaderValue::try_from(to.as_str()) {
        Ok(location) if !host.is_empty() => (
            StatusCode::PERMANENT_REDIRECT,
            [(header::LOCATION, location)],
            format!("This API is served over HTTPS only: {to}\n"),
        )
            .into_response(),
        _ => (
            StatusCode::BAD_REQUEST,
            "This API is served over HTTPS only.\n",
        )
            .into_response(),
    }
}
