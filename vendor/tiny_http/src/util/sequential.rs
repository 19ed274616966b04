use std::io::Result as IoResult;
use std::io::{Error as IoError, ErrorKind, Read, Write};

use std::sync::mpsc::channel;
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};

use std::mem;

pub struct SequentialReaderBuilder<R>
where
    R: Read + Send,
{
    inner: SequentialReaderBuilderInner<R>,
}

enum SequentialReaderBuilderInner<R>
where
    R: Read + Send,
{
    First(R),
    NotFirst(Receiver<R>),
}

pub struct SequentialReader<R>
where
    R: Read + Send,
{
    inner: SequentialReaderInner<R>,
    next: Sender<R>,
}

enum SequentialReaderInner<R>
where
    R: Read + Send,
{
    MyTurn(R),
    Waiting(Receiver<R>),
    Empty,
}

pub struct SequentialWriterBuilder<W>
where
    W: Write + Send,
{
    writer: Arc<Mutex<W>>,
    next_trigger: Option<Receiver<()>>,
}

pub struct SequentialWriter<W>
where
    W: Write + Send,
{
    trigger: Option<Receiver<()>>,
    writer: Arc<Mutex<W>>,
    on_finish: Sender<()>,
}

impl<R: Read + Send> SequentialReaderBuilder<R> {
    pub fn new(reader: R) -> SequentialReaderBuilder<R> {
        SequentialReaderBuilder {
            inner: SequentialReaderBuilderInner::First(reader),
        }
    }
}

impl<W: Write + Send> SequentialWriterBuilder<W> {
    pub fn new(writer: W) -> SequentialWriterBuilder<W> {
        SequentialWriterBuilder {
            writer: Arc::new(Mutex::new(writer)),
            next_trigger: None,
        }
    }
}

impl<R: Read + Send> Iterator for SequentialReaderBuilder<R> {
    type Item = SequentialReader<R>;

    fn next(&mut self) -> Option<SequentialReader<R>> {
        let (tx, rx) = channel();

        let inner = mem::replace(&mut self.inner, SequentialReaderBuilderInner::NotFirst(rx));

        match inner {
            SequentialReaderBuilderInner::First(reader) => Some(SequentialReader {
                inner: SequentialReaderInner::MyTurn(reader),
                next: tx,
            }),

            SequentialReaderBuilderInner::NotFirst(previous) => Some(SequentialReader {
                inner: SequentialReaderInner::Waiting(previous),
                next: tx,
            }),
        }
    }
}

impl<R: Read + Send> SequentialReader<std::io::BufReader<R>> {
    /// wsp patch: whether bytes are buffered, so that the next read takes them without
    /// reading the stream (false while it is not this reader's turn).
    pub fn has_buffered(&self) -> bool {
        match self.inner {
            SequentialReaderInner::MyTurn(ref reader) => !reader.buffer().is_empty(),
            _ => false,
        }
    }
}

impl<R: Read + Send> SequentialReader<R> {
    /// wsp patch: blocks until the readers before this one are dropped, so that this one
    /// alone reads the stream from now on. Its owner may then change the socket (set its
    /// time-outs) without disturbing a request body still being read.
    pub fn wait_turn(&mut self) -> IoResult<()> {
        if let SequentialReaderInner::Waiting(ref recv) = self.inner {
            let reader = recv.recv().map_err(|_| {
                let why = "the previous reader was dropped without passing the stream on";
                IoError::new(ErrorKind::ConnectionAborted, why)
            })?;
            self.inner = SequentialReaderInner::MyTurn(reader);
        }
        Ok(())
    }
}

impl<R: Read + Send> SequentialReader<R> {
    /// wsp patch: the stream itself, once the readers before this one are done with it;
    /// no reader after this one gets it. For a protocol upgrade.
    pub fn into_inner(mut self) -> IoResult<R> {
        self.wait_turn()?;
        match mem::replace(&mut self.inner, SequentialReaderInner::Empty) {
            SequentialReaderInner::MyTurn(reader) => Ok(reader),
            _ => Err(IoError::other("the stream was already taken")),
        }
    }
}

impl<W: Write + Send> SequentialWriterBuilder<W> {
    /// wsp patch: the writer every response of the connection shares: a request that may
    /// be upgraded keeps it, to take it whole once the connection has let go.
    pub fn shared(&self) -> Arc<Mutex<W>> {
        self.writer.clone()
    }

    /// wsp patch: true while a writer handed out is alive, i.e. a response is still being
    /// written: the connection is busy, not idle.
    pub fn responses_pending(&self) -> bool {
        Arc::strong_count(&self.writer) > 1
    }
}

impl<W: Write + Send> Iterator for SequentialWriterBuilder<W> {
    type Item = SequentialWriter<W>;
    fn next(&mut self) -> Option<SequentialWriter<W>> {
        let (tx, rx) = channel();
        let mut next_next_trigger = Some(rx);
        ::std::mem::swap(&mut next_next_trigger, &mut self.next_trigger);

        Some(SequentialWriter {
            trigger: next_next_trigger,
            writer: self.writer.clone(),
            on_finish: tx,
        })
    }
}

impl<R: Read + Send> Read for SequentialReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> IoResult<usize> {
        self.wait_turn()?;
        match self.inner {
            SequentialReaderInner::MyTurn(ref mut reader) => reader.read(buf),
            SequentialReaderInner::Waiting(_) | SequentialReaderInner::Empty => unreachable!(),
        }
    }
}

impl<W: Write + Send> Write for SequentialWriter<W> {
    fn write(&mut self, buf: &[u8]) -> IoResult<usize> {
        if let Some(v) = self.trigger.as_mut() {
            v.recv().unwrap()
        }
        self.trigger = None;

        self.writer.lock().unwrap().write(buf)
    }

    fn flush(&mut self) -> IoResult<()> {
        if let Some(v) = self.trigger.as_mut() {
            v.recv().unwrap()
        }
        self.trigger = None;

        self.writer.lock().unwrap().flush()
    }
}

impl<R> Drop for SequentialReader<R>
where
    R: Read + Send,
{
    fn drop(&mut self) {
        let inner = mem::replace(&mut self.inner, SequentialReaderInner::Empty);

        match inner {
            SequentialReaderInner::MyTurn(reader) => {
                self.next.send(reader).ok();
            }
            // wsp patch: upstream waited here for the previous reader to pass the stream
            // on, only to pass it to the next. A reader still waiting is only ever dropped
            // with its `ClientConnection`, whose builder is already gone, so no next
            // reader exists; and the previous one is the body of the last request: for a
            // protocol upgrade, the upgraded stream, alive for the whole WebSocket. The
            // wait held a thread of the pool for that long. The stream is now dropped by
            // the previous reader, when its send finds no receiver.
            SequentialReaderInner::Waiting(_) => (),
            SequentialReaderInner::Empty => (),
        }
    }
}

impl<W> Drop for SequentialWriter<W>
where
    W: Write + Send,
{
    fn drop(&mut self) {
        // wsp patch: a response ends when its writer is dropped, so whatever it left in
        // the connection's buffer goes out now. Upstream flushed only when the next
        // response wrote, or the connection closed: a handler that wrote a whole response
        // through `Request::into_writer` without a last `flush` (a `Content-Length: 0`
        // answer is all head) left a keep-alive caller waiting for it forever. A writer
        // whose turn never came wrote nothing, and has nothing to flush.
        if self.trigger.is_none() {
            if let Ok(mut writer) = self.writer.lock() {
                let _ = writer.flush();
            }
        }
        self.on_finish.send(()).ok();
    }
}
