//! Whom the client trusts over TLS: the servers it dials (`wss://`) and the internal APIs
//! it calls (`https://`), with the same roots for both.
//!
//! Built once at start from `cafile` and `insecure`, then shared by every connection:
//! - by default, Mozilla's roots compiled into the binary (`webpki-roots`, as ureq uses),
//!   so a certificate from a public CA is accepted the same on every machine;
//! - with `cafile`, only the certificates of that PEM file (a private CA);
//! - with `insecure`, no verification at all: for tests, and announced at warn.
//!
//! Opening the TLS stream itself is [`super::dial`]'s; the stream type, [`super::stream`].

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{self, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use ureq::tls::{RootCerts, TlsConfig};

use super::Error;

/// The TLS settings of a client, ready for each connection.
#[derive(Clone)]
pub struct Tls {
    /// For `wss://` targets.
    pub dial: Arc<rustls::ClientConfig>,
    /// For `https://` internal APIs (ureq).
    pub upstream: TlsConfig,
}

impl Tls {
    /// Loads the roots: those of `ca_file` (PEM) if given, else the built-in ones; or none
    /// at all when `insecure`.
    ///
    /// # Errors
    /// An unreadable `ca_file`, or one holding no certificate.
    pub fn new(ca_file: Option<&str>, insecure: bool) -> Result<Tls, Error> {
        let provider = Arc::new(crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error(format!("no usable TLS version: {e}")))?;
        let ca = ca_file.map(load_pem).transpose()?;
        let dial = if insecure {
            log::warn!(
                "insecure: TLS certificates are NOT verified (servers and internal APIs); \
                 anyone on the path can read and change the traffic. For tests only."
            );
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
                .with_no_client_auth()
        } else {
            builder
                .with_root_certificates(root_store(ca.as_deref())?)
                .with_no_client_auth()
        };
        let roots = match &ca {
            Some(certs) => certs
                .iter()
                .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
                .into(),
            None => RootCerts::WebPki,
        };
        let upstream = TlsConfig::builder()
            .root_certs(roots)
            .disable_verification(insecure)
            .build();
        Ok(Tls {
            dial: Arc::new(dial),
            upstream,
        })
    }
}

fn tls_error(why: String) -> Error {
    Error::Tls { why }
}

/// Every certificate of a PEM file; at least one.
fn load_pem(path: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let pem = std::fs::read(path).map_err(|e| tls_error(format!("reading {path}: {e}")))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| tls_error(format!("{path}: bad PEM: {e}")))?;
    if certs.is_empty() {
        return Err(tls_error(format!("{path}: no CERTIFICATE in it")));
    }
    Ok(certs)
}

/// The CA file's certificates, or the built-in roots.
fn root_store(ca: Option<&[CertificateDer<'static>]>) -> Result<RootCertStore, Error> {
    let Some(certs) = ca else {
        return Ok(RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        });
    };
    let mut store = RootCertStore::empty();
    for cert in certs {
        store
            .add(cert.clone())
            .map_err(|e| tls_error(format!("unusable CA certificate: {e}")))?;
    }
    Ok(store)
}

/// `insecure`: accepts any certificate for any name. The handshake signatures are still
/// checked, which costs nothing and proves only that the peer holds the key of the
/// certificate it showed.
#[derive(Debug)]
struct NoVerification(Arc<CryptoProvider>);

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
