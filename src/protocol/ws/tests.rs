//! In-memory tests: one side writes into a `Vec`, the other reads it back.

use super::frame::apply_mask;
use super::*;

/// A stream that reads from a fixed input and records what is written.
struct Duplex {
    input: Cursor<Vec<u8>>,
    output: Vec<u8>,
}

impl Read for Duplex {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.input.read(buf)
    }
}

impl Write for Duplex {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn conn(input: Vec<u8>, role: Role) -> WsConn<Duplex> {
    WsConn::new(
        Duplex {
            input: Cursor::new(input),
            output: Vec::new(),
        },
        role,
    )
}

/// What `role` writes when `f` runs on a connection with no input.
fn written_by(role: Role, f: impl FnOnce(&mut WsConn<Duplex>)) -> Vec<u8> {
    let mut ws = conn(Vec::new(), role);
    f(&mut ws);
    ws.flush().unwrap();
    ws.io.into_inner().output
}

/// A raw frame, masked with a fixed key when `masked`.
fn frame(first_byte: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut out = vec![first_byte];
    let mask_bit = if masked { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n < 65536 => {
            out.push(mask_bit | 126);
            out.extend((n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend((n as u64).to_be_bytes());
        }
    }
    let key = [1, 2, 3, 4];
    if masked {
        out.extend(key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        out.extend(payload);
    }
    out
}

fn pattern(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8).collect()
}

#[test]
fn client_body_reaches_server_byte_equal() {
    let body = pattern(3 * crate::buffer::MAX_PIECE + 17);
    let wire = written_by(Role::Client, |ws| {
        ws.write_text("head").unwrap();
        ws.write_body(&mut &body[..], None).unwrap();
    });
    let mut server = conn(wire, Role::Server);
    assert_eq!(server.read_text(100, "a head").unwrap(), "head");
    let mut got = Vec::new();
    let mut reader = server.body_reader();
    // Small reads cross frame and mask-word boundaries at odd offsets.
    let mut buf = [0u8; 7];
    loop {
        let n = reader.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        got.extend_from_slice(&buf[..n]);
    }
    assert!(reader.is_done());
    assert_eq!(got, body);
}

#[test]
fn known_length_ends_on_last_data_frame() {
    let body = pattern(100);
    let wire = written_by(Role::Server, |ws| {
        ws.write_body(&mut &body[..], Some(100)).unwrap();
    });
    assert_eq!(wire, frame(0x82, &body, false));
}

#[test]
fn body_frames_of_every_length_form_go_out_whole_after_the_queued_head() {
    // 125, 126 and 65536 bytes need the 7-bit, 16-bit and 64-bit length forms: the header
    // written in front of the payload varies from 2 to 10 bytes.
    for len in [1usize, 125, 126, 65535, 65536] {
        let body = pattern(len);
        let mut ws = conn(Vec::new(), Role::Server);
        ws.write_text("head").unwrap();
        ws.write_body(&mut &body[..], Some(len as u64)).unwrap();
        let mut expected = frame(0x81, b"head", false);
        expected.extend(frame(0x82, &body, false));
        assert_eq!(ws.io.get_ref().output, expected, "body of {len} bytes");
    }
}

/// A stream that hands out at most `step` bytes per read and counts the writes.
struct Dribble {
    input: Cursor<Vec<u8>>,
    step: usize,
    writes: usize,
}

impl Read for Dribble {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min(self.step);
        self.input.read(&mut buf[..n])
    }
}

impl Write for Dribble {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writes += 1;
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_trickling_frame_payload_is_passed_on_as_it_arrives() {
    let body = pattern(5000);
    let wire = frame(0x82, &body, true);
    let stream = Dribble {
        input: Cursor::new(wire),
        step: 700,
        writes: 0,
    };
    let mut server = WsConn::new(stream, Role::Server);
    let mut reader = server.body_reader();
    let mut buf = vec![0u8; 8000];
    let mut got = Vec::new();
    let mut reads = 0;
    loop {
        let n = reader.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        // No read waits for more than the stream has handed out.
        assert!(n <= 700, "read {n} bytes at once");
        got.extend_from_slice(&buf[..n]);
        reads += 1;
    }
    assert_eq!(got, body);
    assert!(reads >= 5000 / 700);
    assert!(reader.is_done());
}

#[test]
fn each_body_piece_leaves_in_one_write() {
    let body = pattern(3 * crate::buffer::MAX_PIECE);
    let stream = Dribble {
        input: Cursor::new(Vec::new()),
        step: usize::MAX,
        writes: 0,
    };
    let mut client = WsConn::new(stream, Role::Client);
    // The source hands out MAX_PIECE bytes per read: three frames, three writes.
    let mut src = Dribble {
        input: Cursor::new(body.clone()),
        step: crate::buffer::MAX_PIECE,
        writes: 0,
    };
    client
        .write_body(&mut src, Some(body.len() as u64))
        .unwrap();
    assert_eq!(client.io.get_ref().writes, 3);
}

#[test]
fn empty_body_is_one_empty_final_frame() {
    let wire = written_by(Role::Server, |ws| {
        ws.write_body(&mut io::empty(), Some(0)).unwrap();
    });
    assert_eq!(wire, vec![0x82, 0x00]);
    let mut client = conn(wire, Role::Client);
    let mut got = Vec::new();
    client.body_reader().read_to_end(&mut got).unwrap();
    assert!(got.is_empty());
}

#[test]
fn go_style_small_frames_with_pings_between() {
    let mut wire = frame(0x02, b"hel", true);
    wire.extend(frame(0x89, b"p1", true)); // ping
    wire.extend(frame(0x00, b"lo ", true));
    wire.extend(frame(0x8A, b"", true)); // pong
    wire.extend(frame(0x00, b"", true));
    wire.extend(frame(0x80, b"world", true));
    let mut server = conn(wire, Role::Server);
    let mut got = String::new();
    server.body_reader().read_to_string(&mut got).unwrap();
    assert_eq!(got, "hello world");
    // The ping was answered with an unmasked pong carrying its payload.
    assert_eq!(server.io.get_ref().output, frame(0x8A, b"p1", false));
}

#[test]
fn fragmented_text_head_is_reassembled() {
    let mut wire = frame(0x01, b"{\"a\"", false);
    wire.extend(frame(0x80, b":1}", false));
    let mut client = conn(wire, Role::Client);
    assert_eq!(client.read_text(100, "a head").unwrap(), "{\"a\":1}");
}

fn read_error(wire: Vec<u8>, role: Role, body: bool) -> String {
    let mut ws = conn(wire, role);
    if body {
        let mut sink = Vec::new();
        ws.body_reader()
            .read_to_end(&mut sink)
            .unwrap_err()
            .to_string()
    } else {
        ws.read_text(16, "a head").unwrap_err().to_string()
    }
}

#[test]
fn refuses_protocol_violations_with_reason() {
    let cases = [
        (
            frame(0x81, b"x", false),
            Role::Server,
            false,
            "unmasked frame",
        ),
        (frame(0x81, b"x", true), Role::Client, false, "masked frame"),
        (
            frame(0xC1, b"x", true),
            Role::Server,
            false,
            "reserved bits",
        ),
        (
            frame(0x82, b"x", true),
            Role::Server,
            false,
            "expected a head",
        ),
        (
            frame(0x81, b"x", true),
            Role::Server,
            true,
            "expected a binary body",
        ),
        (
            frame(0x81, &[0xff, 0xfe], true),
            Role::Server,
            false,
            "not valid UTF-8",
        ),
        (
            frame(0x81, &[b'a'; 17], true),
            Role::Server,
            false,
            "larger than",
        ),
        (frame(0x09, b"", true), Role::Server, false, "control frame"),
        (frame(0x83, b"", true), Role::Server, false, "framing"),
        (
            frame(0x80, b"x", true),
            Role::Server,
            true,
            "out of sequence",
        ),
        (frame(0x88, &[3, 232], true), Role::Server, true, "closed"),
        (Vec::new(), Role::Server, false, "closed"),
    ];
    for (wire, role, body, why) in cases {
        let err = read_error(wire, role, body);
        assert!(err.contains(why), "{why}: {err}");
    }
}

#[test]
fn huge_frame_length_is_refused_without_allocating() {
    let mut wire = vec![0x82, 0x80 | 127];
    wire.extend((1u64 << 63).to_be_bytes());
    wire.extend([0, 0, 0, 0]);
    assert!(read_error(wire.clone(), Role::Server, true).contains("most significant bit"));
    // Just under the bit: a text head of that size is refused by the limit, unread.
    wire[2] = 0x7f;
    wire[0] = 0x81;
    assert!(read_error(wire, Role::Server, false).contains("larger than"));
}

#[test]
fn truncated_body_is_an_error_not_a_short_success() {
    let mut wire = frame(0x82, b"abcdef", true);
    wire.truncate(wire.len() - 2);
    let err = read_error(wire, Role::Server, true);
    assert!(err.contains("closed"), "{err}");
}

#[test]
fn mask_is_applied_at_any_offset() {
    let data = pattern(37);
    let key = [9, 8, 7, 6];
    for split in 0..data.len() {
        let mut buf = data.clone();
        apply_mask(&mut buf[..split], key, 0);
        apply_mask(&mut buf[split..], key, split);
        let expected: Vec<u8> = data
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ key[i % 4])
            .collect();
        assert_eq!(buf, expected, "split at {split}");
    }
}

/// A stream that has some bytes ready, then would block (a non-blocking idle socket).
struct IdleStream {
    ready: Cursor<Vec<u8>>,
    eof: bool,
    output: Vec<u8>,
}

impl Read for IdleStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self.ready.read(buf)? {
            0 if !self.eof => Err(io::ErrorKind::WouldBlock.into()),
            n => Ok(n),
        }
    }
}

impl Write for IdleStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.output.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn idle(ready: Vec<u8>, eof: bool) -> WsConn<IdleStream> {
    let stream = IdleStream {
        ready: Cursor::new(ready),
        eof,
        output: Vec::new(),
    };
    WsConn::new(stream, Role::Server)
}

#[test]
fn idle_check_answers_pings_and_spots_dead_peers() {
    let mut pings = frame(0x89, b"a", true);
    pings.extend(frame(0x89, b"b", true));
    let mut ws = idle(pings.clone(), false);
    assert_eq!(ws.check_idle(), Idle::Heard, "pings only: alive");
    let mut pongs = frame(0x8A, b"a", false);
    pongs.extend(frame(0x8A, b"b", false));
    assert_eq!(ws.io.get_ref().output, pongs);
    assert_eq!(ws.check_idle(), Idle::Quiet, "nothing new since");

    let cases = [
        (Vec::new(), false, Idle::Quiet, "nothing pending"),
        (Vec::new(), true, Idle::Gone, "end of stream"),
        (pings, true, Idle::Gone, "pings then end of stream"),
        (frame(0x88, &[3, 232], true), false, Idle::Gone, "close"),
        (frame(0x82, b"x", true), false, Idle::Gone, "unasked data"),
    ];
    for (ready, eof, want, what) in cases {
        assert_eq!(idle(ready, eof).check_idle(), want, "{what}");
    }
    let mut partial = frame(0x89, b"abc", true);
    partial.truncate(3);
    assert_eq!(idle(partial, false).check_idle(), Idle::Quiet, "partial");
    // Found by the fuzzer: a ping announcing u64::MAX bytes overflowed the sum.
    let huge = [
        0x89, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4,
    ];
    assert_eq!(
        idle(huge.to_vec(), false).check_idle(),
        Idle::Gone,
        "huge ping"
    );
    let long = frame(0x89, &[0; 126], true);
    assert_eq!(
        idle(long, false).check_idle(),
        Idle::Gone,
        "ping over 125 bytes"
    );
}

#[test]
fn idle_check_handles_a_flood_in_bounded_bites() {
    let flood: Vec<u8> = (0..MAX_CONTROL_RUN * 2 + 5)
        .flat_map(|_| frame(0x89, b"", true))
        .collect();
    let mut ws = idle(flood, false);
    let pong_len = frame(0x8A, b"", false).len();
    // At most MAX_CONTROL_RUN steps per check, reads and frames together; frames cut
    // at the end of the buffer are read on.
    assert_eq!(ws.check_idle(), Idle::Heard);
    let first = ws.io.get_ref().output.len() / pong_len;
    assert!(
        (MAX_CONTROL_RUN / 2..MAX_CONTROL_RUN).contains(&first),
        "{first}"
    );
    let mut answered = first;
    while ws.check_idle() == Idle::Heard {
        answered = ws.io.get_ref().output.len() / pong_len;
    }
    assert_eq!(answered, MAX_CONTROL_RUN * 2 + 5, "every ping answered");
    assert_eq!(ws.check_idle(), Idle::Quiet);
}

#[test]
fn a_ping_flood_before_a_message_is_refused() {
    let mut wire: Vec<u8> = (0..=MAX_CONTROL_RUN)
        .flat_map(|_| frame(0x89, b"", true))
        .collect();
    wire.extend(frame(0x81, b"{}", true));
    let msg = read_error(wire, Role::Server, false);
    assert!(msg.contains("ping flood"), "{msg}");
    // One fewer and the message is read.
    let mut wire: Vec<u8> = (0..MAX_CONTROL_RUN)
        .flat_map(|_| frame(0x89, b"", true))
        .collect();
    wire.extend(frame(0x81, b"{}", true));
    let mut ws = conn(wire, Role::Server);
    assert_eq!(ws.read_text(10, "a head").unwrap(), "{}");
}

#[test]
fn await_message_handles_control_frames_one_at_a_time() {
    let mut wire = frame(0x89, b"p", false);
    wire.extend(frame(0x8A, b"", false));
    wire.extend(frame(0x81, b"{}", false));
    let mut ws = conn(wire, Role::Client);
    assert_eq!(ws.await_message().unwrap(), Awaited::Control);
    assert_eq!(ws.await_message().unwrap(), Awaited::Control);
    assert_eq!(ws.await_message().unwrap(), Awaited::Message);
    assert_eq!(
        ws.await_message().unwrap(),
        Awaited::Message,
        "not consumed"
    );
    assert_eq!(ws.read_text(10, "a head").unwrap(), "{}");
    assert_eq!(
        ws.await_message().unwrap(),
        Awaited::Closed,
        "end of stream"
    );
    let pong = written_by(Role::Client, |ws| {
        ws.write_frame(OpCode::Control(Control::Pong), true, b"p")
            .unwrap()
    });
    assert_eq!(ws.io.get_ref().output.len(), pong.len());

    let mut ws = conn(frame(0x88, &[3, 233], false), Role::Client);
    assert_eq!(ws.await_message().unwrap(), Awaited::Closed, "close frame");
    let mut ws = idle(Vec::new(), false);
    let err = ws.await_message().unwrap_err();
    assert!(err.is_timeout(), "{err}");
    let mut cut = frame(0x89, b"abc", true);
    cut.truncate(3);
    let err = idle(cut, false).await_message().unwrap_err();
    assert!(
        !err.is_timeout(),
        "a time-out mid-frame is no plain time-out"
    );
}
