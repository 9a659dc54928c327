//! TLS over the lab's loopback streams, with rustls through tokio-rustls:
//! a certificate for `localhost` made at run time, a server and a client
//! that trust it, and the handshake on a connected pair.

use std::io;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};
use tokio::net::TcpStream;
use tokio_rustls::{client, server, TlsAcceptor, TlsConnector};

/// A server's and a client's configuration: the server holds a
/// self-signed certificate for `localhost`, the client trusts only it.
pub struct Configs {
    pub server: Arc<rustls::ServerConfig>,
    pub client: Arc<rustls::ClientConfig>,
    /// The server's certificate, in DER.
    pub certificate: CertificateDer<'static>,
}

impl Configs {
    /// New configurations around a certificate made now. Its key is
    /// Ed25519 and its serial number fixed, so that the handshake has the
    /// same size on every run (an ECDSA signature's does not); the server
    /// sends no session tickets.
    pub fn new() -> io::Result<Configs> {
        let signing_key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).map_err(io::Error::other)?;
        let mut params = rcgen::CertificateParams::new(vec!["localhost".into()]).map_err(io::Error::other)?;
        params.serial_number = Some(rcgen::SerialNumber::from(1u64));
        let cert = params
            .self_signed(&signing_key)
            .map_err(io::Error::other)?
            .der()
            .clone();
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(signing_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut server = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_no_client_auth()
            .with_single_cert(vec![cert.clone()], key)
            .map_err(io::Error::other)?;
        // No session tickets: a TLS 1.3 server sends them after the
        // handshake, and whether the kernel's delayed ACK of the client's
        // Finished left alone or with them depended on the machine's load.
        server.send_tls13_tickets = 0;
        Ok(Configs {
            server: Arc::new(server),
            client: client_trusting(cert.clone())?,
            certificate: cert,
        })
    }

    /// The TLS handshake on a connected pair, both sides at once:
    /// `(client, server)`.
    pub async fn handshake(
        &self,
        client: TcpStream,
        server: TcpStream,
    ) -> io::Result<(client::TlsStream<TcpStream>, server::TlsStream<TcpStream>)> {
        let connecting = connect(self.client.clone(), client);
        let accepting = TlsAcceptor::from(self.server.clone()).accept(server);
        tokio::try_join!(connecting, accepting)
    }
}

/// A client configuration that trusts only `certificate`.
pub fn client_trusting(certificate: CertificateDer<'static>) -> io::Result<Arc<rustls::ClientConfig>> {
    let mut roots = rustls::RootCertStore::empty();
    roots.add(certificate).map_err(io::Error::other)?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(client))
}

/// The TLS handshake of a client on `stream`, for the server `localhost`.
pub async fn connect(config: Arc<rustls::ClientConfig>, stream: TcpStream) -> io::Result<client::TlsStream<TcpStream>> {
    let name = ServerName::try_from("localhost").map_err(io::Error::other)?;
    TlsConnector::from(config).connect(name, stream).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    /// The two configurations agree: bytes written on one side of the
    /// handshaken pair are read on the other.
    #[test]
    fn the_client_trusts_the_server_and_bytes_cross() -> io::Result<()> {
        crate::runtime::block_on(async {
            let (client, server) = crate::pair()?;
            let configs = Configs::new()?;
            let (client, server) = (crate::runtime::to_tokio(client)?, crate::runtime::to_tokio(server)?);
            let (mut client, mut server) = configs.handshake(client, server).await?;
            server.write_all(b"hello").await?;
            server.flush().await?;
            let mut got = [0u8; 5];
            client.read_exact(&mut got).await?;
            assert_eq!(&got, b"hello");
            Ok(())
        })?
    }
}
