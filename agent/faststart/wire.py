"""The byte protocol between the client and the server's supervisor, standard library only.

Request (client -> server), one message: a 4-byte big-endian length, then length-prefixed fields
`MAGIC, fingerprint, umask, sigmask, ignored, argc, argv..., environ...` (all bytes), with the
working directory and fds 0, 1, 2 attached as SCM_RIGHTS. Replies (supervisor -> client):
`P` + child pid once the child exists (the client then commits with `G`, or hangs up and the
child is killed before it ran), `T` + signal number when the child stops, `X` + raw wait status
at the end. The client sends `S` + signal number + group flag to relay a signal.
"""

from __future__ import annotations

import os
import socket

MAGIC = b"GODWIT-FS1"
MAX_REQUEST = 16 * 2**20  # argv + environ are bounded by ARG_MAX (~2 MiB) in practice
N_FDS = 4  # cwd, stdin, stdout, stderr

PID, STOPPED, EXITED, GO, SIGNAL = b"P", b"T", b"X", b"G", b"S"


class WireError(Exception):
    """The peer sent something that is not this protocol, or hung up mid-message."""


def pack(fields: list[bytes]) -> bytes:
    body = b"".join(len(f).to_bytes(4, "big") + f for f in fields)
    return len(body).to_bytes(4, "big") + body


def unpack(body: bytes) -> list[bytes]:
    fields, at = [], 0
    while at < len(body):
        if at + 4 > len(body):
            raise WireError("truncated field length")
        size = int.from_bytes(body[at : at + 4], "big")
        at += 4
        if at + size > len(body):
            raise WireError("truncated field")
        fields.append(body[at : at + size])
        at += size
    return fields


def recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks, got = [], 0
    while got < size:
        chunk = sock.recv(min(size - got, 1 << 20))
        if not chunk:
            raise WireError("peer hung up")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def recv_request(sock: socket.socket) -> tuple[list[bytes], list[int]]:
    """Read one request; returns its fields and the attached fds (the caller owns them)."""
    msg, fds, _flags, _addr = socket.recv_fds(sock, 4, N_FDS)
    try:
        if not msg or len(fds) != N_FDS:
            raise WireError("request without its header or file descriptors")
        size = int.from_bytes(msg + recv_exact(sock, 4 - len(msg)) if len(msg) < 4 else msg, "big")
        if size > MAX_REQUEST:
            raise WireError("request too large")
        body = recv_exact(sock, size)
        return unpack(body), fds
    except BaseException:
        for fd in fds:
            os.close(fd)
        raise


def encode_int(value: int) -> bytes:
    return str(value).encode()


def decode_int(raw: bytes) -> int:
    if not raw or len(raw) > 24 or not raw.lstrip(b"-").isdigit():
        raise WireError(f"not an integer: {raw[:30]!r}")
    return int(raw)


def encode_signals(signals: set[int]) -> bytes:
    return b",".join(encode_int(s) for s in sorted(signals))


def decode_signals(raw: bytes) -> set[int]:
    return {decode_int(s) for s in raw.split(b",")} if raw else set()
