"""A FastCGI responder that records what nginx sends it, for black-box tests.

The security tests point nginx's upstream at this instead of the worker to see
exactly which FastCGI params a client's request turned into (the httpoxy
check: a `Proxy:` header must not arrive as HTTP_PROXY) and which requests
reached the upstream at all. It answers every request 200 with a JSON body.

It speaks just enough of FastCGI 1.0 for nginx: BEGIN_REQUEST, PARAMS, STDIN,
ABORT_REQUEST, kept connections (FCGI_KEEP_CONN), one thread per connection.
Run as a script (`python3 fcgi_recorder.py SOCKET LOG`) it appends one JSON
object of params per request to LOG, flushed, so a test can read it at once.
"""

import json
import os
import socket
import struct
import sys
import threading

FCGI_VERSION = 1
BEGIN_REQUEST, ABORT_REQUEST, END_REQUEST, PARAMS, STDIN, STDOUT = 1, 2, 3, 4, 5, 6
KEEP_CONN = 1
HEADER = struct.Struct("!BBHHBx")


def _read_exact(conn, n):
    data = b""
    while len(data) < n:
        chunk = conn.recv(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def _read_record(conn):
    version, rtype, rid, length, padding = HEADER.unpack(_read_exact(conn, HEADER.size))
    if version != FCGI_VERSION:
        raise ValueError(f"FastCGI version {version}")
    body = _read_exact(conn, length + padding)[:length]
    return rtype, rid, body


def _record(rtype, rid, body=b""):
    return HEADER.pack(FCGI_VERSION, rtype, rid, len(body), 0) + body


def _pair_length(data, pos):
    if data[pos] < 128:
        return data[pos], pos + 1
    return struct.unpack("!I", data[pos:pos + 4])[0] & 0x7FFFFFFF, pos + 4


def parse_params(data):
    """Decodes FastCGI name-value pairs into a dict of str."""
    params, pos = {}, 0
    while pos < len(data):
        name_len, pos = _pair_length(data, pos)
        value_len, pos = _pair_length(data, pos)
        name = data[pos:pos + name_len].decode("latin-1")
        pos += name_len
        params[name] = data[pos:pos + value_len].decode("latin-1")
        pos += value_len
    return params


class Recorder:
    """Serves FastCGI on a unix socket; `requests` holds each request's params."""

    def __init__(self, path, log_path=None):
        self.path = path
        self.log_path = log_path
        self.requests = []
        self._lock = threading.Lock()
        if os.path.exists(path):
            os.unlink(path)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(path)
        os.chmod(path, 0o666)  # nginx's workers run as www-data
        self._sock.listen(16)

    def serve_forever(self):
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def start(self):
        threading.Thread(target=self.serve_forever, daemon=True).start()
        return self

    def close(self):
        self._sock.close()

    stop = close

    def _serve(self, conn):
        with conn:
            try:
                while self._one_request(conn):
                    pass
            except (EOFError, OSError, ValueError):
                pass

    # Returns whether the connection stays open for another request.
    def _one_request(self, conn):
        params_raw, keep, rid = b"", False, 0
        while True:
            rtype, rid, body = _read_record(conn)
            if rtype == BEGIN_REQUEST:
                keep = bool(body[2] & KEEP_CONN)
            elif rtype == PARAMS:
                params_raw += body
            elif rtype == ABORT_REQUEST:
                break
            elif rtype == STDIN and not body:
                break
        self._remember(parse_params(params_raw))
        payload = b'{"recorded":true}\n'
        head = b"Status: 200 OK\r\nContent-Type: application/json\r\n\r\n"
        conn.sendall(_record(STDOUT, rid, head + payload) + _record(STDOUT, rid)
                     + _record(END_REQUEST, rid, struct.pack("!IB3x", 0, 0)))
        return keep

    def _remember(self, params):
        with self._lock:
            self.requests.append(params)
            if self.log_path:
                with open(self.log_path, "a", encoding="utf-8") as log:
                    log.write(json.dumps(params) + "\n")


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: fcgi_recorder.py SOCKET LOG")
    Recorder(sys.argv[1], sys.argv[2]).serve_forever()


if __name__ == "__main__":
    main()
