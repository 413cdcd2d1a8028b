//! A TLS endpoint in front of DynamoDB Local, so that a cold start measured here includes
//! the TLS handshake every first DynamoDB call makes in AWS. Its certificate (for
//! `localhost`, made with the `openssl` command, valid one day) is self-signed; a function
//! trusts it only through `SSL_CERT_FILE`, the variable the SDK's root store reads
//! (rustls-native-certs), set for the benchmark's child processes alone.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

pub struct Endpoint {
    /// `https://127.0.0.1:<port>` (the certificate names it).
    pub url: String,
    /// The certificate to trust (PEM).
    pub ca_file: PathBuf,
}

/// Starts the endpoint, forwarding each connection's bytes to `upstream` (host:port),
/// or `None` with the reason (no `openssl`).
pub async fn start(dir: &Path, upstream: String) -> Result<Endpoint, String> {
    std::fs::create_dir_all(dir).map_err(|e| e.to_string())?;
    let (cert, key) = (dir.join("localhost.pem"), dir.join("localhost.key"));
    let made = std::process::Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
        ])
        .args(["-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"])
        // A server certificate, not a CA (the default of `req -x509`): webpki refuses a CA
        // certificate as the server's own.
        .args(["-addext", "basicConstraints=critical,CA:FALSE", "-addext", "extendedKeyUsage=serverAuth"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stderr(std::process::Stdio::null())
        .status();
    if !made.is_ok_and(|s| s.success()) {
        return Err("the openssl command could not make a certificate".into());
    }
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&cert)
        .map_err(|e| e.to_string())?
        .collect::<Result<_, _>>()
        .map_err(|e| e.to_string())?;
    let key = PrivateKeyDer::from_pem_file(&key).map_err(|e| e.to_string())?;
    let config =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| e.to_string())?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| e.to_string())?;
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.map_err(|e| e.to_string())?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (acceptor, upstream) = (acceptor.clone(), upstream.clone());
            tokio::spawn(async move {
                // Without these, Nagle's algorithm meets the peers' delayed ACKs on each
                // request split over two segments: 40 ms a request that AWS never adds.
                let _ = socket.set_nodelay(true);
                let Ok(mut tls) = acceptor.accept(socket).await else { return };
                let Ok(mut plain) = TcpStream::connect(&upstream).await else { return };
                let _ = plain.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    Ok(Endpoint { url: format!("https://127.0.0.1:{port}"), ca_file: cert })
}
