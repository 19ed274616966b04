//! Whom the client trusts over TLS: the servers it dials (`wss://`) and the internal APIs
//! it calls (`https://`), with the same roots for both.
//!
//! Built once at start from `cafile` and `insecure`, then shared by every connection:
//! - by default, the system's roots (`rustls-native-certs`: the distribution's bundle,
//!   or `SSL_CERT_FILE` / `SSL_CERT_DIR` when set), as curl and Go do, so a CA the
//!   operator installed on the machine is trusted by wsp too. A machine with no roots at
//!   all (a `scratch` container) falls back to Mozilla's roots compiled into the binary
//!   (`webpki-roots`), and says so at start;
//! - with `cafile`, only the certificates of that PEM file (a private CA);
//! - with `insecure`, no verification at all: for tests, and announced at warn.
//!
//! Opening the TLS stream itself is [`super::dial`]'s; the stream type, [`super::stream`].

use std::sync::Arc;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{self, CryptoProvider};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, RootCertStore, SignatureScheme};
use ureq::tls::{RootCerts, TlsConfig};
use ureq::unversioned::transport::{ConnectionDetails, Connector, RustlsConnector, Transport};

use super::Error;

/// The TLS settings of a client, ready for each connection.
#[derive(Clone)]
pub struct Tls {
    /// For `wss://` targets.
    pub dial: Arc<rustls::ClientConfig>,
    /// For `https://` internal APIs (ureq).
    pub upstream: TlsConfig,
    /// ureq's TLS step, shared by every connection's agent: see [`SharedTls`].
    pub connector: SharedTls,
}

/// ureq's rustls step for all the client's agents at once. ureq builds its rustls
/// configuration, root store included, once per connector, and each agent would have a
/// connector of its own: with the system's ~150 roots that is 87 KiB of heap for every
/// WebSocket connection that ever called an `https://` API (8 KiB with the built-in
/// roots, which rustls borrows). Shared, the store is built once.
#[derive(Debug, Clone, Default)]
pub struct SharedTls(Arc<RustlsConnector>);

impl<In: Transport> Connector<In> for SharedTls {
    type Out = <RustlsConnector as Connector<In>>::Out;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        self.0.connect(details, chained)
    }
}

/// Where trust comes from, chosen once at start.
enum Roots {
    /// `cafile`'s certificates, or the system's: at least one.
    Certificates(Vec<CertificateDer<'static>>),
    /// Mozilla's roots compiled in: the fallback of a machine that has none.
    BuiltIn,
}

impl Tls {
    /// Loads the roots: those of `ca_file` (PEM) if given, else the system's (or the
    /// built-in ones when the system has none); none at all when `insecure`.
    ///
    /// # Errors
    /// An unreadable `ca_file`, one holding no certificate or an unusable one.
    pub fn new(ca_file: Option<&str>, insecure: bool) -> Result<Tls, Error> {
        let provider = Arc::new(crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| tls_error(format!("no usable TLS version: {e}")))?;
        if insecure {
            log::warn!(
                "insecure: TLS certificates are NOT verified (servers and internal APIs); \
                 anyone on the path can read and change the traffic. For tests only."
            );
            let dial = builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerification(provider)))
                .with_no_client_auth();
            let upstream = TlsConfig::builder().disable_verification(true).build();
            return Ok(Tls {
                dial: Arc::new(dial),
                upstream,
                connector: SharedTls::default(),
            });
        }
        let roots = match ca_file {
            Some(path) => Roots::Certificates(load_pem(path)?),
            None => system_roots(),
        };
        let dial = builder
            .with_root_certificates(root_store(&roots)?)
            .with_no_client_auth();
        let upstream = match roots {
            Roots::Certificates(certs) => certs
                .iter()
                .map(|c| ureq::tls::Certificate::from_der(c.as_ref()).to_owned())
                .into(),
            Roots::BuiltIn => RootCerts::WebPki,
        };
        let upstream = TlsConfig::builder().root_certs(upstream).build();
        Ok(Tls {
            dial: Arc::new(dial),
            upstream,
            connector: SharedTls::default(),
        })
    }
}

fn tls_error(why: String) -> Error {
    Error::Tls { why }
}

/// Every certificate of a PEM file; at least one, and each usable as a root (the
/// operator named them: one that cannot be used is a mistake to report, not to skip).
fn load_pem(path: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = crate::pem::certificates(path, path).map_err(tls_error)?;
    for (n, cert) in certs.iter().enumerate() {
        RootCertStore::empty().add(cert.clone()).map_err(|e| {
            tls_error(format!(
                "{path}: certificate {}: unusable as a CA: {e}",
                n + 1
            ))
        })?;
    }
    Ok(certs)
}

/// The system's roots, or the built-in ones when it has none. Certificates the system
/// store holds but that cannot be read are skipped (a distribution's bundle may carry a
/// few), which is worth a line at debug, not a refusal to start.
fn system_roots() -> Roots {
    let found = rustls_native_certs::load_native_certs();
    for e in &found.errors {
        log::debug!("system CA certificates: {e}");
    }
    if found.certs.is_empty() {
        log::warn!(
            "no system CA certificates found (install ca-certificates, or set \
             SSL_CERT_FILE); trusting the built-in Mozilla roots"
        );
        return Roots::BuiltIn;
    }
    log::debug!("trusting {} system CA certificates", found.certs.len());
    Roots::Certificates(found.certs)
}

/// The trust store for dialing servers: `roots` as rustls holds them. Every `cafile`
/// certificate must be usable; system ones that are not are skipped.
fn root_store(roots: &Roots) -> Result<RootCertStore, Error> {
    let Roots::Certificates(certs) = roots else {
        return Ok(RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
        });
    };
    let mut store = RootCertStore::empty();
    let (added, _) = store.add_parsable_certificates(certs.iter().cloned());
    if added == 0 {
        return Err(tls_error("no usable CA certificate".into()));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::TempFile;

    fn error(ca_file: &str) -> String {
        match Tls::new(Some(ca_file), false) {
            Ok(_) => panic!("{ca_file} accepted"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn a_bad_ca_file_is_refused_with_its_name_and_the_problem() {
        let missing = error("/nonexistent/ca.pem");
        assert!(missing.contains("reading /nonexistent/ca.pem"), "{missing}");
        let empty = TempFile::new("empty.pem", "no PEM here\n");
        let text = error(empty.path());
        assert!(text.contains("no CERTIFICATE in it"), "{text}");
        let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let garbage = TempFile::new("garbage.pem", garbage);
        let text = error(garbage.path());
        assert!(text.contains("unusable as a CA"), "{text}");
    }
}
