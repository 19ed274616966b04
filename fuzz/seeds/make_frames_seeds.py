#!/usr/bin/env python3
"""Writes the seed inputs of the `frames` fuzz target into seeds/frames/.

Each seed is two bytes that choose how the target reads (see fuzz_targets/frames.rs),
then RFC 6455 frames as a peer sends them: masked from a client (we read as the server:
greeting, response head, response body) or unmasked from a server (we read as the
client: request head, request body). Run it from anywhere; it rewrites the files.
"""

import os
import struct

TEXT, BINARY, CONTINUE, PING, PONG, CLOSE = 0x1, 0x2, 0x0, 0x9, 0xA, 0x8
KEY = bytes([0x37, 0xFA, 0x21, 0x3D])


def frame(opcode, payload, fin=True, masked=False):
    out = bytearray([(0x80 if fin else 0) | opcode])
    bit = 0x80 if masked else 0
    n = len(payload)
    if n < 126:
        out.append(bit | n)
    elif n < 65536:
        out += bytes([bit | 126]) + struct.pack(">H", n)
    else:
        out += bytes([bit | 127]) + struct.pack(">Q", n)
    if masked:
        out += KEY
        payload = bytes(b ^ KEY[i % 4] for i, b in enumerate(payload))
    return bytes(out) + payload


REQUEST = (b'{"Method":"POST","URL":"http://localhost:8081/post",'
           b'"Header":{"Accept":["*/*"]},"ContentLength":11}')
RESPONSE = b'{"StatusCode":200,"Header":{"Content-Length":["12"]},"ContentLength":12}'

# how: bit 0 role (0 server, 1 client), bit 1 check_idle first, bits 2-3 text limit
# (index 3: 1 MiB). sizes: bits 0-1 chunk (2: 64), bits 2-3 body budget (3: all),
# bits 4-5 skip limit (2: 1000).
SERVER_SIDE, CLIENT_SIDE, SIZES = 0x0C, 0x0D, 0x2E


def from_client():
    m = dict(masked=True)
    return (bytes([SERVER_SIDE, SIZES])
            + frame(TEXT, b"abc_10", **m)
            + frame(PING, b"", **m)
            + frame(TEXT, RESPONSE, **m)
            + frame(BINARY, b"hello", fin=False, **m)
            + frame(PING, b"x", **m)
            + frame(CONTINUE, b" worl", fin=False, **m)
            + frame(CONTINUE, b"d\n", **m)
            + frame(TEXT, RESPONSE, **m)
            + frame(BINARY, b"", **m)
            + frame(CLOSE, struct.pack(">H", 1000), **m))


def from_server():
    return (bytes([CLIENT_SIDE, SIZES])
            + frame(TEXT, REQUEST)
            + frame(BINARY, b"hello", fin=False)
            + frame(PONG, b"")
            + frame(CONTINUE, b" world")
            + frame(PING, b"keepalive")
            + frame(TEXT, REQUEST)
            + frame(BINARY, bytes(range(256)) * 16))


def idle_then_greeting():
    return (bytes([SERVER_SIDE | 0x02, 0x00])
            + frame(PING, b"", masked=True)
            + frame(TEXT, b"4b98d5a0-6794-421c-6a66-20f3edd81174_", fin=False, masked=True)
            + frame(CONTINUE, b"10", masked=True))


def main():
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "frames")
    os.makedirs(out, exist_ok=True)
    seeds = {
        "masked-from-client": from_client(),
        "unmasked-from-server": from_server(),
        "idle-ping-then-fragmented-greeting": idle_then_greeting(),
    }
    for name, data in seeds.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
