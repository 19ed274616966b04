//! The TCP connections of the client's ureq agents, to the internal APIs.
//!
//! ureq's own TCP transport checks that a pooled connection is still usable by switching
//! the socket to non-blocking mode, reading, and switching back: three system calls, and
//! ureq checks twice per request (when the connection returns to its pool and when it is
//! taken again). On the client's hot path that was six of eleven system calls per relayed
//! request. This transport does the same check with one `recv(MSG_PEEK | MSG_DONTWAIT)`
//! ([`crate::sys::poll::open_and_quiet`]), and is otherwise what ureq's is: a socket, ureq's
//! buffers, and the read and write time-outs set only when they change.
//!
//! ureq also resolves the URL's host for every request, before it looks for a pooled
//! connection: for an internal API named by host name that was a `getaddrinfo` per
//! request (`/etc/hosts` opened and read, eight system calls, or a DNS query). The agents'
//! resolver ([`ResolveOnDial`]) resolves nothing; the connector resolves the host when it
//! opens a connection, as Go's HTTP client does.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs, Resolver};
use ureq::unversioned::transport::{
    time, Buffers, ConnectionDetails, Connector, Either, LazyBuffers, NextTimeout, Transport,
};
use ureq::{Error, Timeout};

use crate::sys::poll::open_and_quiet;

/// The shortest connect attempt given to one of a host's addresses.
const MIN_CONNECT_ATTEMPT: Duration = Duration::from_millis(10);

/// The agents' resolver: resolves nothing, so that a request on a pooled connection costs
/// no look-up; [`UpstreamConnector`] resolves when it has to connect. (Only connectors read
/// the addresses ureq passes on, and this connector is the agents' only TCP one.)
#[derive(Debug, Default)]
pub(crate) struct ResolveOnDial;

impl Resolver for ResolveOnDial {
    fn resolve(
        &self,
        _uri: &Uri,
        _config: &Config,
        _timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, Error> {
        Ok(self.empty())
    }
}

/// Opens [`UpstreamTcp`] connections; first in the agent's chain (TLS wraps them).
#[derive(Debug, Default)]
pub(crate) struct UpstreamConnector {
    /// ureq's own resolver, used when a connection is opened.
    resolver: DefaultResolver,
}

impl<In: Transport> Connector<In> for UpstreamConnector {
    type Out = Either<In, UpstreamTcp>;

    fn connect(
        &self,
        details: &ConnectionDetails,
        chained: Option<In>,
    ) -> Result<Option<Self::Out>, Error> {
        if let Some(chained) = chained {
            return Ok(Some(Either::A(chained)));
        }
        let config = details.config;
        let addrs = self
            .resolver
            .resolve(details.uri, config, details.timeout)?;
        let stream = connect(&addrs, details.timeout)?;
        if config.no_delay() {
            stream.set_nodelay(true)?;
        }
        let buffers = LazyBuffers::new(config.input_buffer_size(), config.output_buffer_size());
        Ok(Some(Either::B(UpstreamTcp {
            stream,
            buffers,
            read_timeout: None,
            write_timeout: None,
        })))
    }
}

/// Tries each address in turn, sharing the connect time-out evenly between them.
fn connect(addrs: &[SocketAddr], timeout: NextTimeout) -> Result<TcpStream, Error> {
    let share = u32::try_from(addrs.len().max(1)).unwrap_or(u32::MAX);
    let attempt = timeout
        .not_zero()
        .map(|t| (*t / share).max(MIN_CONNECT_ATTEMPT));
    let mut last = None;
    for addr in addrs {
        let connected = match attempt {
            Some(t) => TcpStream::connect_timeout(addr, t),
            None => TcpStream::connect(addr),
        };
        match connected {
            Ok(stream) => return Ok(stream),
            Err(e) if is_timeout(&e) => last = Some(Error::Timeout(Timeout::Connect)),
            Err(e) => last = Some(Error::Io(e)),
        }
    }
    let none = || {
        Error::Io(io::Error::new(
            io::ErrorKind::NotFound,
            "no address to connect to",
        ))
    };
    Err(last.unwrap_or_else(none))
}

/// One connection to an internal API.
pub(crate) struct UpstreamTcp {
    stream: TcpStream,
    buffers: LazyBuffers,
    /// The time-outs last set on the socket, so that the same ones cost no system call.
    read_timeout: Option<time::Duration>,
    write_timeout: Option<time::Duration>,
}

impl Transport for UpstreamTcp {
    fn buffers(&mut self) -> &mut dyn Buffers {
        &mut self.buffers
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), Error> {
        let timeout = checked(timeout.for_write())?;
        let wanted = timeout.not_zero();
        if wanted != self.write_timeout {
            self.stream.set_write_timeout(wanted.map(|t| *t))?;
            self.write_timeout = wanted;
        }
        let output = &self.buffers.output()[..amount];
        (&self.stream)
            .write_all(output)
            .map_err(|e| io_error(e, timeout.reason))
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, Error> {
        let timeout = checked(timeout.for_read())?;
        let wanted = timeout.not_zero();
        if wanted != self.read_timeout {
            self.stream.set_read_timeout(wanted.map(|t| *t))?;
            self.read_timeout = wanted;
        }
        let input = self.buffers.input_append_buf();
        let read = loop {
            match (&self.stream).read(input) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        let amount = read.map_err(|e| io_error(e, timeout.reason))?;
        self.buffers.input_appended(amount);
        Ok(amount > 0)
    }

    /// Open, with nothing unasked for to read: a pooled connection may be used again.
    fn is_open(&mut self) -> bool {
        open_and_quiet(&self.stream)
    }
}

impl std::fmt::Debug for UpstreamTcp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamTcp")
            .field("peer", &self.stream.peer_addr().ok())
            .finish()
    }
}

/// The time-out's own error once its time is used up, as ureq's transports do.
fn checked(timeout: NextTimeout) -> Result<NextTimeout, Error> {
    match timeout.after.is_zero() {
        true => Err(Error::Timeout(timeout.reason)),
        false => Ok(timeout),
    }
}

/// A socket time-out (Linux reports `WouldBlock`) as ureq's time-out error for `reason`.
fn io_error(e: io::Error, reason: Timeout) -> Error {
    match is_timeout(&e) {
        true => Error::Timeout(reason),
        false => Error::Io(e),
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}
