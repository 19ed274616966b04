use std::io::Error as IoError;
use std::io::Result as IoResult;
use std::io::{BufReader, BufWriter, ErrorKind, Read};

use std::net::SocketAddr;
use std::sync::Arc;
use std::str::FromStr;
use std::time::{Duration, Instant};

use crate::common::{HTTPVersion, Method};
use crate::connection::Connection;
use crate::head::{is_timeout, Head};
use crate::limits::{
    BODY_READ_TIMEOUT, HEADER_TIMEOUT, MAX_HEADER_COUNT, MAX_HEADER_LINE_LEN, MAX_HEAD_LEN,
    MAX_REQUEST_LINE_LEN, WRITE_TIMEOUT,
};
use crate::util::{Admission, RefinedTcpStream, Slot};
use crate::util::{SequentialReader, SequentialReaderBuilder, SequentialWriterBuilder};
use crate::Request;

/// A ClientConnection is an object that will store a socket to a client
/// and return Request objects.
pub struct ClientConnection {
    // address of the client
    remote_addr: IoResult<Option<SocketAddr>>,

    // sequence of Readers to the stream, so that the data is not read in
    //  the wrong order
    source: SequentialReaderBuilder<BufReader<RefinedTcpStream>>,

    // sequence of Writers to the stream, to avoid writing response #2 before
    //  response #1
    sink: SequentialWriterBuilder<BufWriter<RefinedTcpStream>>,

    // Reader to read the next header from
    next_header_source: SequentialReader<BufReader<RefinedTcpStream>>,

    // set to true if we know that the previous request is the last one
    no_more_requests: bool,

    // true if the connection goes through SSL
    secure: bool,

    // wsp patch: the accepted socket, shared with the reader and writer halves, to set
    // its time-outs
    socket: Arc<Connection>,

    // wsp patch: when the connection was accepted; taken by the first request's head,
    // whose deadline counts from it
    accepted_at: Option<Instant>,

    // wsp patch: this connection's place among those allowed open at once, shared with
    // its requests (None: no cap)
    slot: Option<Arc<Slot>>,

    // wsp patch: accepted past the cap: its one request is to be refused
    over_capacity: bool,

    // wsp patch: the buffer each line of a head is read into, kept between lines
    line: Vec<u8>,

    // wsp patch: the read time-out last set on `socket`, so that setting the same one
    // again costs no system call (the keep-alive and body time-outs are equal)
    read_timeout: Option<Duration>,
}

/// Error that can happen when reading a request.
#[derive(Debug)]
pub(crate) enum ReadError {
    WrongRequestLine,
    WrongHeader(HTTPVersion),
    /// the client sent an unrecognized `Expect` header
    ExpectationFailed(HTTPVersion),
    ReadIoError(IoError),
    /// wsp patch: the head broke a limit or a rule of syntax: answered with this status
    /// and this text, then the connection is closed
    Rejected(u16, String),
    /// wsp patch: the head started but did not arrive within `HEADER_TIMEOUT`
    HeadTimedOut,
    /// wsp patch: no byte of a request came in time: closed without an answer
    Idle,
}

impl ClientConnection {
    /// Creates a new `ClientConnection` that takes ownership of the `TcpStream`.
    pub fn new(
        write_socket: RefinedTcpStream,
        mut read_socket: RefinedTcpStream,
        socket: Arc<Connection>,
        admission: Admission,
    ) -> ClientConnection {
        // wsp patch: a client that reads nothing of its response is dropped in time
        socket.set_write_timeout(Some(WRITE_TIMEOUT)).ok();
        let remote_addr = read_socket.peer_addr();
        let secure = read_socket.secure();

        let mut source = SequentialReaderBuilder::new(BufReader::with_capacity(1024, read_socket));
        let first_header = source.next().unwrap();

        ClientConnection {
            source,
            sink: SequentialWriterBuilder::new(BufWriter::with_capacity(1024, write_socket)),
            remote_addr,
            next_header_source: first_header,
            no_more_requests: false,
            secure,
            socket,
            over_capacity: matches!(admission, Admission::OverCapacity),
            slot: match admission {
                Admission::Counted(slot) => Some(slot),
                Admission::Uncounted | Admission::OverCapacity => None,
            },
            accepted_at: Some(Instant::now()),
            line: Vec::with_capacity(256),
            read_timeout: None,
        }
    }

    /// wsp patch: sets the socket's read time-out, unless it is already that.
    fn set_read_timeout(&mut self, timeout: Duration) -> Result<(), ReadError> {
        if self.read_timeout == Some(timeout) {
            return Ok(());
        }
        self.socket
            .set_read_timeout(Some(timeout))
            .map_err(ReadError::ReadIoError)?;
        self.read_timeout = Some(timeout);
        Ok(())
    }

    /// wsp patch: true once the last request was handed out (`Connection: close` or
    /// `upgrade`, HTTP/1.0, `CONNECT`): the caller may drop the connection before handling
    /// it, so that the request alone holds the socket (`Request::upgrade` and `tunnel`
    /// need that).
    pub fn is_done(&self) -> bool {
        self.no_more_requests
    }

    /// true if the connection is HTTPS
    pub fn secure(&self) -> bool {
        self.secure
    }

    /// Reads the next line from self.next_header_source.
    ///
    /// Reads until `CRLF` is reached. The next read will start
    ///  at the first byte of the new line.
    ///
    /// wsp patch: at most `max_len` bytes (`what` names the line in the error), and
    /// every line ends with CRLF: a bare CR or LF is refused, not kept in the line. The
    /// line is read into a buffer the connection keeps (upstream allocated and grew a
    /// new one for every line of every head).
    fn read_next_line(
        &mut self,
        head: &mut Head,
        max_len: usize,
        what: &str,
    ) -> Result<&str, ReadError> {
        let mut buf = std::mem::take(&mut self.line);
        buf.clear();
        let read = self.read_line_into(&mut buf, head, max_len, what);
        self.line = buf;
        read?;
        std::str::from_utf8(&self.line)
            .ok()
            .filter(|line| line.is_ascii())
            .ok_or_else(|| ReadError::Rejected(400, format!("{} is not ASCII", what)))
    }

    /// The bytes of the next line, CRLF left out, into `buf`.
    fn read_line_into(
        &mut self,
        buf: &mut Vec<u8>,
        head: &mut Head,
        max_len: usize,
        what: &str,
    ) -> Result<(), ReadError> {
        let mut prev_byte_was_cr = false;

        loop {
            let byte = self.next_head_byte(head)?;

            if prev_byte_was_cr {
                if byte != b'\n' {
                    let why = format!("bare CR in {}: lines must end with CRLF", what);
                    return Err(ReadError::Rejected(400, why));
                }
                return Ok(());
            }

            match byte {
                b'\r' => prev_byte_was_cr = true,
                b'\n' => {
                    let why = format!("bare LF in {}: lines must end with CRLF", what);
                    return Err(ReadError::Rejected(400, why));
                }
                _ if buf.len() == max_len => {
                    let why = format!("{} longer than {} bytes", what, max_len);
                    return Err(ReadError::Rejected(431, why));
                }
                _ => buf.push(byte),
            }
        }
    }

    /// wsp patch: the next byte of the head, within `MAX_HEAD_LEN` and the head's time.
    fn next_head_byte(&mut self, head: &mut Head) -> Result<u8, ReadError> {
        if head.len == MAX_HEAD_LEN {
            let why = format!("request head longer than {} bytes", MAX_HEAD_LEN);
            return Err(ReadError::Rejected(431, why));
        }
        loop {
            // Only a read that may wait on the socket needs the deadline checked and the
            // time-out set; bytes already buffered are taken at once.
            if !self.next_header_source.has_buffered() {
                if let Some(timeout) = head.arm()? {
                    self.set_read_timeout(timeout)?;
                }
            }
            match self.next_header_source.by_ref().bytes().next() {
                Some(Ok(byte)) => {
                    head.received();
                    return Ok(byte);
                }
                // still writing a response: the connection is busy, not idle
                Some(Err(ref e))
                    if is_timeout(e) && head.is_idle() && self.sink.responses_pending() =>
                {
                    continue
                }
                Some(Err(ref e)) if is_timeout(e) => return Err(head.expired()),
                Some(Err(e)) => return Err(ReadError::ReadIoError(e)),
                None => {
                    let err = IoError::new(ErrorKind::ConnectionAborted, "Unexpected EOF");
                    return Err(ReadError::ReadIoError(err));
                }
            }
        }
    }

    /// Reads a request from the stream.
    /// Blocks until the header has been read.
    fn read(&mut self) -> Result<Request, ReadError> {
        // wsp patch: the previous request's body shares the socket: wait until it is read
        // before setting the socket's time-outs for this head
        self.next_header_source
            .wait_turn()
            .map_err(ReadError::ReadIoError)?;
        let mut head = Head::new(self.accepted_at.take());

        let (method, path, version, headers) = {
            // reading the request line
            let (method, path, version) = {
                let line = self.read_next_line(&mut head, MAX_REQUEST_LINE_LEN, "request line")?;

                parse_request_line(line.trim())?
            };

            // getting all headers
            let headers = {
                // wsp patch: room for a usual head's fields without growing
                let mut headers = Vec::with_capacity(16);
                loop {
                    let line =
                        self.read_next_line(&mut head, MAX_HEADER_LINE_LEN, "header line")?;

                    if line.is_empty() {
                        break;
                    };
                    if headers.len() == MAX_HEADER_COUNT {
                        let why = format!("more than {} header fields", MAX_HEADER_COUNT);
                        return Err(ReadError::Rejected(431, why));
                    }
                    headers.push(match FromStr::from_str(line.trim()) {
                        Ok(h) => h,
                        _ => return Err(ReadError::WrongHeader(version)),
                    });
                }

                headers
            };

            (method, path, version, headers)
        };

        // wsp patch: from here on, the socket is read for the body
        self.set_read_timeout(BODY_READ_TIMEOUT)?;

        // wsp patch: upstream unwrapped this, panicking for a client gone before it was
        // asked
        let remote_addr = match self.remote_addr {
            Ok(addr) => addr,
            Err(ref e) => {
                return Err(ReadError::ReadIoError(IoError::new(
                    e.kind(),
                    e.to_string(),
                )))
            }
        };

        // building the writer for the request
        let writer = self.sink.next().unwrap();

        // follow-up for next potential request
        let mut data_source = self.source.next().unwrap();
        std::mem::swap(&mut self.next_header_source, &mut data_source);

        // building the next reader
        let request = crate::request::new_request(
            self.secure,
            method,
            path,
            version.clone(),
            headers,
            remote_addr,
            data_source,
            writer,
            Some(crate::request::Link {
                socket: self.socket.clone(),
                sink: self.sink.shared(),
                slot: self.slot.clone(),
                over_capacity: self.over_capacity,
            }),
        )
        .map_err(|e| {
            use crate::request;
            match e {
                request::RequestCreationError::CreationIoError(e) => ReadError::ReadIoError(e),
                request::RequestCreationError::ExpectationFailed => {
                    ReadError::ExpectationFailed(version)
                }
            }
        })?;

        // return the request
        Ok(request)
    }

    /// wsp patch: answers an error the connection does not recover from.
    fn answer_error(&mut self, status: u16, version: HTTPVersion, why: &str) {
        let writer = self.sink.next().unwrap();
        print_error(writer, status, version, why);
    }
}

/// wsp patch: writes an error answer: `why` as a one-line text body, and
/// `Connection: close`, as the connection is closed after it.
fn print_error<W: std::io::Write>(mut writer: W, status: u16, version: HTTPVersion, why: &str) {
    use crate::{Response, StatusCode};

    let response = Response::from_string(format!("{}\n", why))
        .with_status_code(StatusCode(status))
        .with_connection_close();
    response
        .raw_print(&mut writer, version, &[], false, None)
        .ok();
    writer.flush().ok();
}

impl Iterator for ClientConnection {
    type Item = Request;

    /// Blocks until the next Request is available.
    /// Returns None when no new Requests will come from the client.
    fn next(&mut self) -> Option<Request> {
        // the client sent a "connection: close" header in this previous request
        //  or is using HTTP 1.0, meaning that no new request will come
        if self.no_more_requests {
            return None;
        }

        loop {
            // wsp patch: every error answer says in its body what was wrong, and the
            // connection is closed after it
            let rq = match self.read() {
                Err(ReadError::WrongRequestLine) => {
                    let why = "malformed request line: expected `METHOD /target HTTP/1.1`";
                    self.answer_error(400, HTTPVersion(1, 1), why);
                    return None; // we don't know where the next request would start,
                                 // se we have to close
                }

                Err(ReadError::WrongHeader(ver)) => {
                    let why = "malformed header line: expected `Name: value`";
                    self.answer_error(400, ver, why);
                    return None; // we don't know where the next request would start,
                                 // se we have to close
                }

                Err(ReadError::Rejected(status, why)) => {
                    self.answer_error(status, HTTPVersion(1, 1), &why);
                    return None;
                }

                Err(ReadError::HeadTimedOut) => {
                    let why = format!(
                        "request head not received within {} s",
                        HEADER_TIMEOUT.as_secs()
                    );
                    self.answer_error(408, HTTPVersion(1, 1), &why);
                    return None; // closing the connection
                }

                Err(ReadError::ReadIoError(ref err)) if is_timeout(err) => {
                    // request timeout: reading a small body, buffered with its head
                    let why = format!("request body stalled for {} s", BODY_READ_TIMEOUT.as_secs());
                    self.answer_error(408, HTTPVersion(1, 1), &why);
                    return None; // closing the connection
                }

                Err(ReadError::ExpectationFailed(ver)) => {
                    let why = "unsupported Expect header: only 100-continue is supported";
                    self.answer_error(417, ver, why);
                    return None; // TODO: should be recoverable, but needs handling in case of body
                }

                Err(ReadError::ReadIoError(_)) | Err(ReadError::Idle) => return None,

                Ok(rq) => rq,
            };

            // checking HTTP version
            if *rq.http_version() > (1, 1) {
                // wsp patch: answered with the request's own writer (upstream took the
                // sink's next one, which waits for this request's writer to be dropped:
                // never, as the request lives on here), then closed
                let why = "this server only supports HTTP versions 1.0 and 1.1";
                print_error(rq.into_writer(), 505, HTTPVersion(1, 1), why);
                return None;
            }

            // updating the status of the connection
            let connection_header = rq
                .headers()
                .iter()
                .find(|h| h.field.equiv("Connection"))
                .map(|h| h.value.as_str());

            let lowercase = connection_header.map(|h| h.to_ascii_lowercase());

            match lowercase {
                // wsp patch: a connection past the cap serves its one refusal
                _ if self.over_capacity => self.no_more_requests = true,
                // wsp patch: a CONNECT is the last request, tunneled or not: what follows
                // its head is tunnel data, or the client's bytes for a tunnel refused
                _ if *rq.method() == Method::Connect => self.no_more_requests = true,
                Some(ref val) if val.contains("close") => self.no_more_requests = true,
                Some(ref val) if val.contains("upgrade") => self.no_more_requests = true,
                Some(ref val)
                    if !val.contains("keep-alive") && *rq.http_version() == HTTPVersion(1, 0) =>
                {
                    self.no_more_requests = true
                }
                None if *rq.http_version() == HTTPVersion(1, 0) => self.no_more_requests = true,
                _ => (),
            };

            // returning the request
            return Some(rq);
        }
    }
}

/// Parses a "HTTP/1.1" string.
fn parse_http_version(version: &str) -> Result<HTTPVersion, ReadError> {
    let (major, minor) = match version {
        "HTTP/0.9" => (0, 9),
        "HTTP/1.0" => (1, 0),
        "HTTP/1.1" => (1, 1),
        "HTTP/2.0" => (2, 0),
        "HTTP/3.0" => (3, 0),
        _ => return Err(ReadError::WrongRequestLine),
    };

    Ok(HTTPVersion(major, minor))
}

/// Parses the request line of the request.
/// eg. GET / HTTP/1.1
fn parse_request_line(line: &str) -> Result<(Method, String, HTTPVersion), ReadError> {
    let mut parts = line.split(' ');

    let method = parts.next().and_then(|w| w.parse().ok());
    let path = parts.next().map(ToOwned::to_owned);
    let version = parts.next().and_then(|w| parse_http_version(w).ok());

    method
        .and_then(|method| Some((method, path?, version?)))
        .ok_or(ReadError::WrongRequestLine)
}

#[cfg(test)]
mod test {
    #[test]
    fn test_parse_request_line() {
        let (method, path, ver) = super::parse_request_line("GET /hello HTTP/1.1").unwrap();

        assert!(method == crate::Method::Get);
        assert!(path == "/hello");
        assert!(ver == crate::common::HTTPVersion(1, 1));

        assert!(super::parse_request_line("GET /hello").is_err());
        assert!(super::parse_request_line("qsd qsd qsd").is_err());
    }
}
