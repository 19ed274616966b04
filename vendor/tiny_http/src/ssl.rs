//! SSL/TLS support.
//!
//! wsp patch: rustls 0.23 only (upstream also had OpenSSL, and targeted rustls 0.20). The
//! implementation is re-exported as [`SslContextImpl`] and [`SslStream`].

#[cfg(feature = "ssl-rustls")]
pub(crate) mod rustls;
#[cfg(feature = "ssl-rustls")]
pub(crate) use self::rustls::RustlsContext as SslContextImpl;
#[cfg(feature = "ssl-rustls")]
pub(crate) use self::rustls::RustlsStream as SslStream;
#[cfg(feature = "ssl-rustls")]
pub use self::rustls::TlsStream;
