use std::io::Error as IoError;
use std::io::{self, Cursor, ErrorKind, Read, Write};

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;

use std::any::Any;
use std::io::{BufReader, BufWriter};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex};

use crate::connection::Connection;
use crate::upgrade::{ConnectionHandle, Upgraded, UpgradedStream};
use crate::util::{ConnectionSlot, EqualReader, FusedReader, RefinedTcpStream, SequentialReader, Slot};
use crate::{HTTPVersion, Header, Method, Response, StatusCode};
use chunked_transfer::Decoder;

/// Represents an HTTP request made by a client.
///
/// A `Request` object is what is produced by the server, and is your what
/// your code must analyse and answer.
///
/// This object implements the `Send` trait, therefore you can dispatch your requests to
/// worker threads.
///
/// # Pipelining
///
/// If a client sends multiple requests in a row (without waiting for the response), then you will
/// get multiple `Request` objects simultaneously. This is called *requests pipelining*.
/// Tiny-http automatically reorders the responses so that you don't need to worry about the order
/// in which you call `respond` or `into_writer`.
///
/// This mechanic is disabled if:
///
///  - The body of a request is large enough (handling requires pipelining requires storing the
///    body of the request in a buffer ; if the body is too big, tiny-http will avoid doing that)
///  - A request sends a `Expect: 100-continue` header (which means that the client waits to
///    know whether its body will be processed before sending it)
///  - A request sends a `Connection: close` header or `Connection: upgrade` header (used for
///    websockets), which indicates that this is the last request that will be received on this
///    connection
///
/// # Automatic cleanup
///
/// If a `Request` object is destroyed without `into_writer` or `respond` being called,
/// an empty response with a 500 status code (internal server error) will automatically be
/// sent back to the client.
/// This means that if your code fails during the handling of a request, this "internal server
/// error" response will automatically be sent during the stack unwinding.
///
/// # Testing
///
/// If you want to build fake requests to test your server, use [`TestRequest`](crate::test::TestRequest).
pub struct Request {
    // where to read the body from
    data_reader: Option<Box<dyn Read + Send + 'static>>,

    // if this writer is empty, then the request has been answered
    response_writer: Option<Box<dyn Write + Send + 'static>>,

    remote_addr: Option<SocketAddr>,

    // true if HTTPS, false if HTTP
    secure: bool,

    method: Method,

    path: String,

    http_version: HTTPVersion,

    headers: Vec<Header>,

    body_length: Option<usize>,

    // true if a `100 Continue` response must be sent when `as_reader()` is called
    must_send_continue: bool,

    // If Some, a message must be sent after responding
    notify_when_responded: Option<Sender<()>>,

    // wsp patch: the connection's socket, shared, for `connection_handle` (None for a
    // test request)
    socket: Option<Arc<Connection>>,

    // wsp patch: for a request that may switch protocols or open a tunnel, what `upgrade`
    // or `tunnel` takes whole
    upgrade: Option<UpgradeParts>,

    // wsp patch: the connection's place among those allowed open at once
    slot: Option<Arc<Slot>>,

    // wsp patch: the connection came past the cap
    over_capacity: bool,
}

/// wsp patch: what a `ClientConnection` gives a request besides its reader and writer.
pub(crate) struct Link {
    /// The connection's one socket.
    pub(crate) socket: Arc<Connection>,
    /// The writer all the connection's responses share.
    pub(crate) sink: Arc<Mutex<BufWriter<RefinedTcpStream>>>,
    /// The connection's place among those allowed open at once.
    pub(crate) slot: Option<Arc<Slot>>,
    /// The connection came past the cap.
    pub(crate) over_capacity: bool,
}

/// The connection's reader and writer, kept by a request that asks to switch protocols
/// (`Connection: upgrade`, no body) or to open a tunnel (`CONNECT`, no body), for
/// [`Request::upgrade`] or [`Request::tunnel`] to take them apart.
struct UpgradeParts {
    /// wsp patch: which of the two hand-overs the request may make: a WebSocket upgrade
    /// answered as a tunnel (or a CONNECT as an upgrade) would be a broken exchange.
    kind: HandOver,
    /// The request's reader, positioned after its head: a
    /// `SequentialReader<BufReader<RefinedTcpStream>>` (typed `Any` because
    /// `new_request` is generic over its reader).
    source: Box<dyn Any + Send>,
    sink: Arc<Mutex<BufWriter<RefinedTcpStream>>>,
}

/// wsp patch: how a request may hand its connection over.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum HandOver {
    /// `Connection: upgrade`: [`Request::upgrade`].
    Upgrade,
    /// `CONNECT`: [`Request::tunnel`].
    Tunnel,
}

impl HandOver {
    /// The error for a request that cannot make this hand-over.
    fn refused(self) -> IoError {
        let why = match self {
            HandOver::Upgrade => "this request cannot switch protocols",
            HandOver::Tunnel => "this request cannot be tunneled (not a CONNECT without a body)",
        };
        IoError::new(ErrorKind::InvalidInput, why)
    }
}

/// The reader `ClientConnection` gives a request.
type ConnectionReader = SequentialReader<BufReader<RefinedTcpStream>>;

impl UpgradeParts {
    /// The connection's socket by value, and the bytes already read past the head. Fails
    /// if anything else still holds the connection (its `ClientConnection` must be gone:
    /// the accept loop drops it before handing over a request after which no other can
    /// come) or if the response could not be written out.
    fn into_upgraded(self) -> io::Result<Upgraded> {
        let in_use = || IoError::other("the connection is still in use");
        let source = self
            .source
            .downcast::<ConnectionReader>()
            .map_err(|_| IoError::other("not a connection's reader"))?;
        let reader = source.into_inner()?;
        let leftover = reader.buffer().to_vec();
        let read_half = reader.into_inner();
        let writer = Arc::try_unwrap(self.sink)
            .map_err(|_| in_use())?
            .into_inner()
            .map_err(|_| in_use())?;
        let write_half = writer.into_inner().map_err(|e| e.into_error())?;
        drop(write_half.into_stream());
        let stream = UpgradedStream::take(read_half.into_stream()).ok_or_else(in_use)?;
        Ok(Upgraded {
            stream,
            leftover,
            slot: ConnectionSlot::default(),
        })
    }
}

struct NotifyOnDrop<R> {
    sender: Sender<()>,
    inner: R,
}

impl<R: Read> Read for NotifyOnDrop<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf)
    }
}
impl<R: Write> Write for NotifyOnDrop<R> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.inner.write(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}
impl<R> Drop for NotifyOnDrop<R> {
    fn drop(&mut self) {
        self.sender.send(()).unwrap();
    }
}

/// Error that can happen when building a `Request` object.
#[derive(Debug)]
pub enum RequestCreationError {
    /// The client sent an `Expect` header that was not recognized by tiny-http.
    ExpectationFailed,

    /// Error while reading data from the socket during the creation of the `Request`.
    CreationIoError(IoError),
}

impl From<IoError> for RequestCreationError {
    fn from(err: IoError) -> RequestCreationError {
        RequestCreationError::CreationIoError(err)
    }
}

/// Builds a new request.
///
/// After the request line and headers have been read from the socket, a new `Request` object
/// is built.
///
/// You must pass a `Read` that will allow the `Request` object to read from the incoming data.
/// It is the responsibility of the `Request` to read only the data of the request and not further.
///
/// The `Write` object will be used by the `Request` to write the response.
#[allow(clippy::too_many_arguments)]
pub fn new_request<R, W>(
    secure: bool,
    method: Method,
    path: String,
    version: HTTPVersion,
    headers: Vec<Header>,
    remote_addr: Option<SocketAddr>,
    mut source_data: R,
    writer: W,
    link: Option<Link>,
) -> Result<Request, RequestCreationError>
where
    R: Read + Send + 'static,
    W: Write + Send + 'static,
{
    // finding the transfer-encoding header
    let transfer_encoding = headers
        .iter()
        .find(|h: &&Header| h.field.equiv("Transfer-Encoding"))
        .map(|h| h.value.clone());

    // finding the content-length header
    let content_length = if transfer_encoding.is_some() {
        // if transfer-encoding is specified, the Content-Length
        // header must be ignored (RFC2616 #4.4)
        None
    } else {
        headers
            .iter()
            .find(|h: &&Header| h.field.equiv("Content-Length"))
            .and_then(|h| FromStr::from_str(h.value.as_str()).ok())
    };

    // true if the client sent a `Expect: 100-continue` header
    let expects_continue = {
        match headers
            .iter()
            .find(|h: &&Header| h.field.equiv("Expect"))
            .map(|h| h.value.as_str())
        {
            None => false,
            Some(v) if v.eq_ignore_ascii_case("100-continue") => true,
            _ => return Err(RequestCreationError::ExpectationFailed),
        }
    };

    // true if the client sent a `Connection: upgrade` header
    let connection_upgrade = {
        match headers
            .iter()
            .find(|h: &&Header| h.field.equiv("Connection"))
            .map(|h| h.value.as_str())
        {
            Some(v) if v.to_ascii_lowercase().contains("upgrade") => true,
            _ => false,
        }
    };

    // wsp patch: a request that asks to switch protocols and has no body keeps the
    // connection's reader and writer for `upgrade`; its body reads as empty. Upstream gave
    // any request with `Connection: upgrade` the whole rest of the stream as its body,
    // whatever its framing said.
    // wsp patch: so does a CONNECT without a body, for `tunnel`; one with a
    // `Content-Length` at all (even one that does not parse) is an ordinary request, so
    // that no byte the client meant as a body is ever relayed as tunnel data.
    let hand_over = if method == Method::Connect {
        let content_length_sent = headers.iter().any(|h| h.field.equiv("Content-Length"));
        (transfer_encoding.is_none() && !content_length_sent).then_some(HandOver::Tunnel)
    } else {
        (connection_upgrade && transfer_encoding.is_none() && content_length.is_none())
            .then_some(HandOver::Upgrade)
    };
    let mut upgrade = None;
    let socket = link.as_ref().map(|l| l.socket.clone());
    let slot = link.as_ref().and_then(|l| l.slot.clone());
    let over_capacity = link.as_ref().is_some_and(|l| l.over_capacity);
    let reader = if let Some(kind) = hand_over {
        if let Some(link) = link {
            upgrade = Some(UpgradeParts {
                kind,
                source: Box::new(source_data),
                sink: link.sink,
            });
        }
        Box::new(io::empty()) as Box<dyn Read + Send + 'static>
    } else if let Some(content_length) = content_length {
        if content_length == 0 {
            Box::new(io::empty()) as Box<dyn Read + Send + 'static>
        } else if content_length <= 1024 && !expects_continue {
            // if the content-length is small enough, we just read everything into a buffer

            let mut buffer = vec![0; content_length];
            let mut offset = 0;

            while offset != content_length {
                let read = source_data.read(&mut buffer[offset..])?;
                if read == 0 {
                    // the socket returned EOF, but we were before the expected content-length
                    // aborting
                    let info = "Connection has been closed before we received enough data";
                    let err = IoError::new(ErrorKind::ConnectionAborted, info);
                    return Err(RequestCreationError::CreationIoError(err));
                }

                offset += read;
            }

            Box::new(Cursor::new(buffer)) as Box<dyn Read + Send + 'static>
        } else {
            let (data_reader, _) = EqualReader::new(source_data, content_length); // TODO:
            Box::new(FusedReader::new(data_reader)) as Box<dyn Read + Send + 'static>
        }
    } else if transfer_encoding.is_some() {
        // if a transfer-encoding was specified, then "chunked" is ALWAYS applied
        // over the message (RFC2616 #3.6)
        Box::new(FusedReader::new(Decoder::new(source_data))) as Box<dyn Read + Send + 'static>
    } else {
        // if we have neither a Content-Length nor a Transfer-Encoding,
        // assuming that we have no data
        // TODO: could also be multipart/byteranges
        Box::new(io::empty()) as Box<dyn Read + Send + 'static>
    };

    Ok(Request {
        data_reader: Some(reader),
        response_writer: Some(Box::new(writer) as Box<dyn Write + Send + 'static>),
        remote_addr,
        secure,
        method,
        path,
        http_version: version,
        headers,
        body_length: content_length,
        must_send_continue: expects_continue,
        notify_when_responded: None,
        socket,
        upgrade,
        slot,
        over_capacity,
    })
}

impl Request {
    /// Returns true if the request was made through HTTPS.
    #[inline]
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// Returns the method requested by the client (eg. `GET`, `POST`, etc.).
    #[inline]
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// Returns the resource requested by the client.
    #[inline]
    pub fn url(&self) -> &str {
        &self.path
    }

    /// Returns a list of all headers sent by the client.
    #[inline]
    pub fn headers(&self) -> &[Header] {
        &self.headers
    }

    /// Returns the HTTP version of the request.
    #[inline]
    pub fn http_version(&self) -> &HTTPVersion {
        &self.http_version
    }

    /// Returns the length of the body in bytes.
    ///
    /// Returns `None` if the length is unknown.
    #[inline]
    pub fn body_length(&self) -> Option<usize> {
        self.body_length
    }

    /// Returns the address of the client that sent this request.
    ///
    /// The address is always `Some` for TCP listeners, but always `None` for UNIX listeners
    /// (as the remote address of a UNIX client is almost always unnamed).
    ///
    /// Note that this is gathered from the socket. If you receive the request from a proxy,
    /// this function will return the address of the proxy and not the address of the actual
    /// user.
    #[inline]
    pub fn remote_addr(&self) -> Option<&SocketAddr> {
        self.remote_addr.as_ref()
    }

    /// Sends a response with a `Connection: upgrade` header, then hands the connection
    /// over: its socket (or TLS stream) by value, and the bytes the client sent after its
    /// head that were already read.
    ///
    /// wsp patch: upstream returned a `Box<dyn ReadWrite>` over the connection's reader
    /// and writer, which hid the socket; see `Upgraded`.
    ///
    /// # Errors
    /// The request did not ask to switch protocols (`Connection: upgrade`, no body), is a
    /// `CONNECT` (see [`Request::tunnel`]), or is not from a connection (a test request):
    /// `InvalidInput`, and it is answered 500. Writing the response failed: the
    /// connection is closed.
    pub fn upgrade<R: Read>(self, protocol: &str, response: Response<R>) -> io::Result<Upgraded> {
        // wsp patch: shares the hand-over with `tunnel`
        self.hand_over(HandOver::Upgrade, |writer, rq| {
            response.raw_print(
                writer,
                rq.http_version.clone(),
                &rq.headers,
                false,
                Some(protocol),
            )
        })
    }

    /// wsp patch: answers a `CONNECT` with `200 Connection Established`, then hands the
    /// connection over as [`Request::upgrade`] does: the socket (or TLS stream) by value,
    /// the bytes the client sent after its head that were already read (it may send its
    /// first bytes, e.g. a TLS ClientHello, without waiting for the answer), and the
    /// connection's slot.
    ///
    /// The answer is the status line alone, in the request's HTTP version: no
    /// `Content-Length` or `Transfer-Encoding`, which a 2xx answer to CONNECT must not
    /// have (RFC 9110, 9.3.6). To refuse the tunnel, `respond` instead: the connection
    /// is closed after that answer, as after any CONNECT.
    ///
    /// # Errors
    /// The request is not a `CONNECT` without a body (no `Content-Length`, no
    /// `Transfer-Encoding`), or is not from a connection (a test request): `InvalidInput`,
    /// and it is answered 500. Writing the answer failed: the connection is closed.
    pub fn tunnel(self) -> io::Result<Upgraded> {
        let established = format!(
            "HTTP/{} 200 Connection Established\r\n\r\n",
            self.http_version
        );
        self.hand_over(HandOver::Tunnel, |writer, _| {
            writer.write_all(established.as_bytes())
        })
    }

    /// wsp patch: what `upgrade` and `tunnel` share: refuses a request not eligible for
    /// `kind`, writes its answer with `answer`, flushes it, then takes the connection
    /// apart (`UpgradeParts::into_upgraded`) with its slot.
    fn hand_over(
        mut self,
        kind: HandOver,
        answer: impl FnOnce(&mut dyn Write, &Request) -> io::Result<()>,
    ) -> io::Result<Upgraded> {
        let parts = self
            .upgrade
            .take()
            .filter(|parts| parts.kind == kind)
            .ok_or_else(|| kind.refused())?;
        let mut writer = self.extract_writer_impl();
        let written = answer(&mut writer, &self).and_then(|()| writer.flush());
        drop(writer);
        self.socket = None;
        if let Some(sender) = self.notify_when_responded.take() {
            sender.send(()).ok();
        }
        written?;
        let mut upgraded = parts.into_upgraded()?;
        upgraded.slot = ConnectionSlot(self.slot.take());
        Ok(upgraded)
    }

    /// wsp patch: whether the connection was accepted while the server had as many open
    /// as it allows (`max_connections`): the handler should refuse the request (503). The
    /// connection is closed after it.
    pub fn over_capacity(&self) -> bool {
        self.over_capacity
    }

    /// wsp patch: a handle that can end this request's connection, e.g. after the
    /// response broke off mid-body; it stays usable after `into_writer`. `None` for a
    /// test request.
    pub fn connection_handle(&self) -> Option<ConnectionHandle> {
        self.socket.clone().map(ConnectionHandle)
    }

    /// Allows to read the body of the request.
    ///
    /// # Example
    ///
    /// ```no_run
    /// # extern crate rustc_serialize;
    /// # extern crate tiny_http;
    /// # use rustc_serialize::json::Json;
    /// # use std::io::Read;
    /// # fn get_content_type(_: &tiny_http::Request) -> &'static str { "" }
    /// # fn main() {
    /// # let server = tiny_http::Server::http("0.0.0.0:0").unwrap();
    /// let mut request = server.recv().unwrap();
    ///
    /// if get_content_type(&request) == "application/json" {
    ///     let mut content = String::new();
    ///     request.as_reader().read_to_string(&mut content).unwrap();
    ///     let json: Json = content.parse().unwrap();
    /// }
    /// # }
    /// ```
    ///
    /// If the client sent a `Expect: 100-continue` header with the request, calling this
    ///  function will send back a `100 Continue` response.
    #[inline]
    pub fn as_reader(&mut self) -> &mut dyn Read {
        if self.must_send_continue {
            let msg = Response::new_empty(StatusCode(100));
            msg.raw_print(
                self.response_writer.as_mut().unwrap().by_ref(),
                self.http_version.clone(),
                &self.headers,
                true,
                None,
            )
            .ok();
            self.response_writer.as_mut().unwrap().flush().ok();
            self.must_send_continue = false;
        }

        self.data_reader.as_mut().unwrap()
    }

    /// Turns the `Request` into a writer.
    ///
    /// The writer has a raw access to the stream to the user.
    /// This function is useful for things like CGI.
    ///
    /// Note that the destruction of the `Writer` object may trigger
    /// some events. For exemple if a client has sent multiple requests and the requests
    /// have been processed in parallel, the destruction of a writer will trigger
    /// the writing of the next response.
    /// Therefore you should always destroy the `Writer` as soon as possible.
    #[inline]
    pub fn into_writer(mut self) -> Box<dyn Write + Send + 'static> {
        let writer = self.extract_writer_impl();
        if let Some(sender) = self.notify_when_responded.take() {
            let writer = NotifyOnDrop {
                sender,
                inner: writer,
            };
            Box::new(writer) as Box<dyn Write + Send + 'static>
        } else {
            writer
        }
    }

    /// Extract the response `Writer` object from the Request, dropping this `Writer` has the same side effects
    /// as the object returned by `into_writer` above.
    ///
    /// This may only be called once on a single request.
    fn extract_writer_impl(&mut self) -> Box<dyn Write + Send + 'static> {
        use std::mem;

        assert!(self.response_writer.is_some());

        let mut writer = None;
        mem::swap(&mut self.response_writer, &mut writer);
        writer.unwrap()
    }

    /// Sends a response to this request.
    #[inline]
    pub fn respond<R>(mut self, response: Response<R>) -> Result<(), IoError>
    where
        R: Read,
    {
        let res = self.respond_impl(response);
        if let Some(sender) = self.notify_when_responded.take() {
            sender.send(()).unwrap();
        }
        res
    }

    fn respond_impl<R>(&mut self, response: Response<R>) -> Result<(), IoError>
    where
        R: Read,
    {
        let mut writer = self.extract_writer_impl();

        let do_not_send_body = self.method == Method::Head;

        Self::ignore_client_closing_errors(response.raw_print(
            writer.by_ref(),
            self.http_version.clone(),
            &self.headers,
            do_not_send_body,
            None,
        ))?;

        Self::ignore_client_closing_errors(writer.flush())
    }

    fn ignore_client_closing_errors(result: io::Result<()>) -> io::Result<()> {
        result.or_else(|err| match err.kind() {
            ErrorKind::BrokenPipe => Ok(()),
            ErrorKind::ConnectionAborted => Ok(()),
            ErrorKind::ConnectionRefused => Ok(()),
            ErrorKind::ConnectionReset => Ok(()),
            _ => Err(err),
        })
    }

    pub(crate) fn with_notify_sender(mut self, sender: Sender<()>) -> Self {
        self.notify_when_responded = Some(sender);
        self
    }
}

impl fmt::Debug for Request {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> Result<(), fmt::Error> {
        write!(
            formatter,
            "Request({} {} from {:?})",
            self.method, self.path, self.remote_addr
        )
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        if self.response_writer.is_some() {
            let response = Response::empty(500);
            let _ = self.respond_impl(response); // ignoring any potential error
            if let Some(sender) = self.notify_when_responded.take() {
                sender.send(()).unwrap();
            }
        }
    }
}

/// Dummy trait that regroups the `Read` and `Write` traits.
///
/// Automatically implemented on all types that implement both `Read` and `Write`.
pub trait ReadWrite: Read + Write {}
impl<T> ReadWrite for T where T: Read + Write {}

#[cfg(test)]
mod tests {
    use super::Request;

    #[test]
    fn must_be_send() {
        #![allow(dead_code)]
        fn f<T: Send>(_: &T) {}
        fn bar(rq: &Request) {
            f(rq);
        }
    }
}
