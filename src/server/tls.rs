//! The server's own TLS: the certificate chain and key of `certfile` / `keyfile`, loaded
//! once at start into the rustls configuration every connection is accepted with.
//!
//! The files are parsed here (PEM, with `rustls-pki-types`, as the client's `cafile`),
//! so that a bad one stops the server with a message naming it; the vendored tiny_http
//! gets the finished `rustls::ServerConfig` and only runs connections over it (see
//! `vendor/tiny_http/src/ssl/rustls.rs` for the handshake's time limit and the stream).
//! rustls with the ring provider, as on the client: no OpenSSL.

use std::fmt;
use std::sync::Arc;

use parking_lot::RwLock;
use rustls::crypto;
use rustls::pki_types::pem::{self as pem_types, PemObject};
use rustls::pki_types::PrivateKeyDer;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

use crate::pem;

pub use crate::config::TlsFiles;

/// Why the TLS files could not be used; the message names the file.
#[derive(Debug)]
pub struct TlsError(String);

impl fmt::Display for TlsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TlsError {}

/// Reads both files and builds the rustls configuration: TLS 1.2 and 1.3, no client
/// certificates.
///
/// # Errors
/// A file unreadable, without a certificate (or key), or bad PEM; a key rustls cannot
/// use; a key that is not the certificate's.
pub fn load(files: &TlsFiles) -> Result<(Arc<rustls::ServerConfig>, Arc<Certificate>), TlsError> {
    let certificate = Arc::new(Certificate(RwLock::new(Arc::new(certified(files)?))));
    let provider = Arc::new(crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError(format!("no usable TLS version: {e}")))?
        .with_no_client_auth()
        .with_cert_resolver(certificate.clone());
    Ok((Arc::new(config), certificate))
}

/// The server's certificate chain and key, which a reload may replace: each new
/// handshake takes the pair in force; sessions already set up keep theirs.
#[derive(Debug)]
pub struct Certificate(RwLock<Arc<CertifiedKey>>);

impl Certificate {
    /// Reads `files` again and puts the pair in force for new handshakes.
    ///
    /// # Errors
    /// As [`load`]: the running pair then stays.
    pub fn replace(&self, files: &TlsFiles) -> Result<(), TlsError> {
        let pair = certified(files)?;
        *self.0.write() = Arc::new(pair);
        Ok(())
    }
}

impl ResolvesServerCert for Certificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().clone())
    }
}

/// The chain and key of `files`, checked to belong together.
fn certified(files: &TlsFiles) -> Result<CertifiedKey, TlsError> {
    let path = &files.cert_file;
    let chain = pem::certificates(path, &format!("certfile {path}")).map_err(TlsError)?;
    let key = load_key(&files.key_file)?;
    let provider = crypto::ring::default_provider();
    CertifiedKey::from_der(chain, key, &provider).map_err(|e| {
        TlsError(format!(
            "certfile {} and keyfile {} cannot be used together: {e}",
            files.cert_file, files.key_file
        ))
    })
}

fn load_key(path: &str) -> Result<PrivateKeyDer<'static>, TlsError> {
    let bytes = pem::read(path, &format!("keyfile {path}")).map_err(TlsError)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|e| match e {
        pem_types::Error::NoItemsFound => TlsError(format!(
            "keyfile {path}: no private key in it (expected PEM: PRIVATE KEY, \
             RSA PRIVATE KEY or EC PRIVATE KEY; an encrypted key is not supported)"
        )),
        e => TlsError(format!("keyfile {path}: bad PEM: {e}")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::testing::TempFile;

    fn cert_and_key() -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let params = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        let cert = params.self_signed(&key).unwrap();
        (cert.pem(), key.serialize_pem())
    }

    fn load(cert: &str, key: &str) -> Result<Arc<rustls::ServerConfig>, String> {
        let (cert, key) = (
            TempFile::new("cert.pem", cert),
            TempFile::new("key.pem", key),
        );
        let files = TlsFiles {
            cert_file: cert.path().to_string(),
            key_file: key.path().to_string(),
        };
        super::load(&files)
            .map(|(config, _)| config)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn a_matching_certificate_and_key_load() {
        let (cert, key) = cert_and_key();
        assert!(load(&cert, &key).is_ok());
    }

    #[test]
    fn each_bad_file_is_named_with_its_problem() {
        let (cert, key) = cert_and_key();
        let (_, other_key) = cert_and_key();
        let msg = load("garbage\n", &key).unwrap_err();
        assert!(
            msg.starts_with("certfile ") && msg.contains("no CERTIFICATE"),
            "{msg}"
        );
        let msg = load(&cert, "garbage\n").unwrap_err();
        assert!(
            msg.starts_with("keyfile ") && msg.contains("no private key"),
            "{msg}"
        );
        // The certificate where the key should be: no key in it.
        let msg = load(&cert, &cert).unwrap_err();
        assert!(msg.contains("no private key"), "{msg}");
        let msg = load(&cert, &other_key).unwrap_err();
        assert!(
            msg.contains("cannot be used together") && msg.contains("KeyMismatch"),
            "{msg}"
        );
        let truncated = &cert[..cert.len() / 2];
        let msg = load(truncated, &key).unwrap_err();
        assert!(msg.contains("bad PEM"), "{msg}");
        let files = TlsFiles {
            cert_file: "/nonexistent/cert.pem".into(),
            key_file: "/nonexistent/key.pem".into(),
        };
        let msg = super::load(&files).unwrap_err().to_string();
        assert!(
            msg.starts_with("reading certfile /nonexistent/cert.pem: "),
            "{msg}"
        );
    }
}
