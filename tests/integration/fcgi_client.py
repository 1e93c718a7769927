"""A FastCGI client that talks straight to the worker's unix socket,
bypassing nginx: for creating jobs faster than HTTPS allows and for writing
malformed records on purpose (test_faults.py).

Only what the tests need: encode records and name-value pairs (including
lengths that lie), send one request on a connection that may be kept
(FCGI_KEEP_CONN) and read records back, every read bounded by the socket's
timeout. Answers are parsed into (status, headers, body) from the STDOUT
stream as a web server would.
"""

import socket
import struct

VERSION = 1
BEGIN_REQUEST, ABORT_REQUEST, END_REQUEST, PARAMS, STDIN, STDOUT, STDERR = 1, 2, 3, 4, 5, 6, 7
GET_VALUES, GET_VALUES_RESULT, UNKNOWN_TYPE = 9, 10, 11
RESPONDER, AUTHORIZER, FILTER = 1, 2, 3
KEEP_CONN = 1
HEADER = struct.Struct("!BBHHBx")


class FcgiError(Exception):
    pass


def record(rtype, rid, body=b"", version=VERSION, padding=0, declared=None):
    """One record; `declared` overrides the content length in the header."""
    length = len(body) if declared is None else declared
    return HEADER.pack(version, rtype, rid, length, padding) + body + b"\0" * padding


def begin(rid=1, role=RESPONDER, flags=0):
    return record(BEGIN_REQUEST, rid, struct.pack("!HB5x", role, flags))


def length_bytes(n, long_form=None):
    """A pair length: one byte below 128, else four with the top bit set."""
    if long_form is None:
        long_form = n >= 128
    return struct.pack("!I", n | 0x80000000) if long_form else bytes([n])


def pair(name, value):
    name = name.encode() if isinstance(name, str) else name
    value = value.encode() if isinstance(value, str) else value
    return length_bytes(len(name)) + length_bytes(len(value)) + name + value


def params_records(params, rid=1):
    """PARAMS records (split at 65535 bytes) and the empty one ending them."""
    data = b"".join(pair(k, v) for k, v in params.items())
    out = b""
    for i in range(0, len(data), 65535):
        out += record(PARAMS, rid, data[i:i + 65535])
    return out + record(PARAMS, rid)


def http_params(method, uri, request_id="fcgi-test"):
    query = uri.partition("?")[2]
    return {"REQUEST_METHOD": method, "REQUEST_URI": uri, "QUERY_STRING": query,
            "CONTENT_LENGTH": "", "REQUEST_ID": request_id, "SERVER_PROTOCOL": "HTTP/1.1"}


def request_bytes(method, uri, rid=1, keep=False, params=None):
    p = http_params(method, uri)
    p.update(params or {})
    return (begin(rid, flags=KEEP_CONN if keep else 0) + params_records(p, rid)
            + record(STDIN, rid))


def connect(path, timeout=3.0):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s


def read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise EOFError("connection closed after %d of %d bytes" % (len(data), n))
        data += chunk
    return data


def read_record(sock):
    version, rtype, rid, length, padding = HEADER.unpack(read_exact(sock, HEADER.size))
    body = read_exact(sock, length + padding)[:length]
    return version, rtype, rid, body


def parse_answer(stdout):
    head, sep, body = stdout.partition(b"\r\n\r\n")
    if not sep:
        raise FcgiError("no header/body separator in %r" % stdout[:200])
    status, headers = 200, {}
    for line in head.decode("latin-1").split("\r\n"):
        k, _, v = line.partition(":")
        headers[k.strip().lower()] = v.strip()
    if "status" in headers:
        status = int(headers["status"].split()[0])
    return status, headers, body


def read_answer(sock, rid=1):
    """Reads records up to END_REQUEST for rid; returns (status, headers,
    body, other records seen). Raises on EOF, timeout or a bad record."""
    stdout, others = b"", []
    while True:
        version, rtype, got, body = read_record(sock)
        if version != VERSION:
            raise FcgiError("answer record with version %d" % version)
        if rtype == STDOUT and got == rid:
            stdout += body
        elif rtype == END_REQUEST and got == rid:
            status, headers, payload = parse_answer(stdout)
            return status, headers, payload, others
        else:
            others.append((rtype, got, body))


class Connection:
    """A kept connection for many sequential requests (no pipelining:
    libfcgi reads each request through a fresh buffer)."""

    def __init__(self, path, timeout=5.0):
        self.sock = connect(path, timeout)

    def request(self, method, uri):
        self.sock.sendall(request_bytes(method, uri, keep=True))
        status, headers, body, _ = read_answer(self.sock)
        return status, headers, body

    def close(self):
        self.sock.close()
