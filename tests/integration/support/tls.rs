//! TLS for the tests: a private CA made at run time (rcgen) with a certificate for
//! `127.0.0.1` and `localhost`, and [`TlsFront`], a TLS-terminating forwarder that puts
//! that certificate in front of a plain TCP service (the wsp server, the test API).

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, IsCa, Issuer, KeyPair,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::{ServerConfig, ServerConnection, StreamOwned};

use crate::config::ConfigFile;

/// How long a forwarding thread waits on one side before looking at the other.
const TURN: Duration = Duration::from_millis(5);

/// A CA, as a PEM file clients can be pointed at, and a server certificate it signed, in
/// memory and as PEM files (`certfile`, `keyfile`) for servers that load their own.
pub struct Pki {
    pub ca_file: ConfigFile,
    pub cert_file: ConfigFile,
    pub key_file: ConfigFile,
    cert: CertificateDer<'static>,
    key: PrivatePkcs8KeyDer<'static>,
}

impl Pki {
    /// A new CA and a certificate for `127.0.0.1` and `localhost`, valid now.
    pub fn new() -> Pki {
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        // A name of its own: with rcgen's default for both, OpenSSL (curl) takes the
        // server's certificate, whose issuer then equals its subject, for self-signed.
        let mut ca_name = DistinguishedName::new();
        ca_name.push(DnType::CommonName, "wsp test CA");
        ca_params.distinguished_name = ca_name;
        let ca_key = KeyPair::generate().expect("CA key");
        let ca_cert = ca_params.self_signed(&ca_key).expect("CA certificate");
        let issuer = Issuer::new(ca_params, ca_key);
        let names = vec!["127.0.0.1".to_string(), "localhost".to_string()];
        let params = CertificateParams::new(names).expect("server params");
        let key = KeyPair::generate().expect("server key");
        let cert = params.signed_by(&key, &issuer).expect("server certificate");
        Pki {
            ca_file: ConfigFile::new("ca.pem", &ca_cert.pem()),
            cert_file: ConfigFile::new("cert.pem", &cert.pem()),
            key_file: ConfigFile::new("key.pem", &key.serialize_pem()),
            cert: cert.der().clone(),
            key: PrivatePkcs8KeyDer::from(key.serialize_der()),
        }
    }

    /// The CA file's path.
    pub fn ca_path(&self) -> &str {
        self.ca_file.path()
    }

    /// The server certificate's PEM file (the certificate alone; the CA is the root).
    pub fn cert_path(&self) -> &str {
        self.cert_file.path()
    }

    /// The server key's PEM file (PKCS #8).
    pub fn key_path(&self) -> &str {
        self.key_file.path()
    }

    pub fn server_config(&self) -> Arc<ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key = PrivateKeyDer::Pkcs8(self.key.clone_key());
        let config = ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![self.cert.clone()], key)
            .expect("server certificate and key");
        Arc::new(config)
    }
}

/// Accepts TLS on `127.0.0.1:0` and forwards the plaintext to `backend`, a thread per
/// connection. Stops accepting when dropped.
pub struct TlsFront {
    pub addr: SocketAddr,
    stopped: Arc<AtomicBool>,
}

impl TlsFront {
    pub fn start(pki: &Pki, backend: SocketAddr) -> TlsFront {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind TLS front");
        let addr = listener.local_addr().expect("address");
        let config = pki.server_config();
        let stopped = Arc::new(AtomicBool::new(false));
        let stop = stopped.clone();
        thread::spawn(move || {
            for socket in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let Ok(socket) = socket else { continue };
                let config = config.clone();
                thread::spawn(move || {
                    // A refused handshake (the wrong-CA tests) ends here: not a failure.
                    let _ = forward(config, socket, backend);
                });
            }
        });
        TlsFront { addr, stopped }
    }
}

impl Drop for TlsFront {
    fn drop(&mut self) {
        self.stopped.store(true, Ordering::Relaxed);
        // Wakes the accepting thread so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Relays one connection both ways until either side ends it. One thread takes turns at
/// each side, [`TURN`] at a time: a rustls stream cannot be split between two threads.
fn forward(config: Arc<ServerConfig>, socket: TcpStream, backend: SocketAddr) -> io::Result<()> {
    let conn = ServerConnection::new(config).map_err(io::Error::other)?;
    socket.set_read_timeout(Some(TURN))?;
    let mut tls = StreamOwned::new(conn, socket);
    let mut plain = TcpStream::connect(backend)?;
    plain.set_read_timeout(Some(TURN))?;
    let mut buf = vec![0u8; 64 * 1024];
    let result = loop {
        match pass(&mut tls, &mut plain, &mut buf) {
            Ok(true) => {}
            Ok(false) => break Ok(()),
            Err(e) => break Err(e),
        }
        match pass(&mut plain, &mut tls, &mut buf) {
            Ok(true) => {}
            Ok(false) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    let _ = plain.shutdown(Shutdown::Both);
    let _ = tls.sock.shutdown(Shutdown::Both);
    result
}

/// Copies what `from` has within one turn to `to`; `false` once `from` has ended.
fn pass(from: &mut impl Read, to: &mut impl Write, buf: &mut [u8]) -> io::Result<bool> {
    match from.read(buf) {
        Ok(0) => Ok(false),
        Ok(n) => {
            to.write_all(&buf[..n])?;
            to.flush()?;
            Ok(true)
        }
        Err(e)
            if matches!(
                e.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) =>
        {
            Ok(true)
        }
        Err(e) => Err(e),
    }
}
