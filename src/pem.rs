//! Certificates from PEM files, for the two places that read them: the client's `cafile`
//! (the roots it trusts) and the server's `certfile` (the chain it shows).
//!
//! Errors are plain text naming the file as its caller calls it (`certfile /etc/x.pem`,
//! or only the path), for the caller's error type to carry.

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// Reads `path`; a failure names it as `label` does.
pub fn read(path: &str, label: &str) -> Result<Vec<u8>, String> {
    std::fs::read(path).map_err(|e| format!("reading {label}: {e}"))
}

/// Every certificate of the PEM file at `path`, in order; at least one.
pub fn certificates(path: &str, label: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let pem = read(path, label)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{label}: bad PEM: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{label}: no CERTIFICATE in it (expected PEM)"));
    }
    Ok(certs)
}
