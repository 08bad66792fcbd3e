"""Raw-socket HTTP/1.1 client helpers shared by the integration tests: they let a
test see exactly what bytes the server sends and when it closes."""
import json
import socket
import time


class ResponseError(AssertionError):
    """The server sent something that is not a complete, valid HTTP response."""


class Response:
    def __init__(self, version, status, reason, headers, body, raw_head):
        self.version = version          # "HTTP/1.1"
        self.status = status            # int
        self.reason = reason            # "OK"
        self.header_list = headers      # [(name, value)] in order received
        self.body = body                # bytes
        self.raw_head = raw_head        # bytes, status line + headers + CRLFCRLF

    def header(self, name, default=None):
        name = name.lower()
        for key, value in self.header_list:
            if key.lower() == name:
                return value
        return default

    @property
    def closes(self):
        """True when the response announces that the connection will close."""
        value = self.header("connection", "")
        return "close" in [token.strip().lower() for token in value.split(",")]

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    def __repr__(self):
        return "<Response %s %d %r body=%r>" % (self.version, self.status, self.header_list,
                                                self.body[:200])


def assert_problem(response, status):
    """The response is an RFC 9457 problem document with the given status."""
    assert response.status == status, response
    assert response.header("content-type") == "application/problem+json", response
    document = response.json()
    assert document["status"] == status, document
    assert isinstance(document.get("type"), str) and document["type"], document
    assert isinstance(document.get("title"), str) and document["title"], document
    assert isinstance(document.get("detail"), str) and document["detail"], document
    return document


class Conn:
    """One TCP (or already-wrapped TLS) connection with a receive buffer."""

    def __init__(self, port=None, host="127.0.0.1", timeout=10.0, sock=None):
        if sock is None:
            sock = socket.create_connection((host, port), timeout=timeout)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.settimeout(timeout)
        self.sock = sock
        self.buffer = b""
        self.timeout = timeout

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def send(self, data):
        if isinstance(data, str):
            data = data.encode("latin-1")
        self.sock.sendall(data)

    def _recv_more(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise socket.timeout("deadline passed")
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            raise EOFError("connection closed by the server")
        self.buffer += chunk

    def read_response(self, head_request=False, timeout=None):
        """Reads exactly one response (a 1xx interim response counts as one).
        Raises EOFError if the connection closes before any byte of it, and
        ResponseError if it closes part-way."""
        deadline = time.monotonic() + (timeout if timeout is not None else self.timeout)
        while b"\r\n\r\n" not in self.buffer:
            try:
                self._recv_more(deadline)
            except EOFError:
                if self.buffer:
                    raise ResponseError("connection closed inside a response head: %r"
                                        % self.buffer[:300])
                raise
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        lines = head.split(b"\r\n")
        parts = lines[0].decode("latin-1").split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1.") or not parts[1].isdigit():
            raise ResponseError("bad status line %r" % lines[0])
        version, status = parts[0], int(parts[1])
        reason = parts[2] if len(parts) > 2 else ""
        headers = []
        for line in lines[1:]:
            name, colon, value = line.decode("latin-1").partition(":")
            if not colon or name != name.strip() or not name:
                raise ResponseError("bad header line %r" % line)
            headers.append((name, value.strip()))
        response = Response(version, status, reason, headers, b"", head + b"\r\n\r\n")
        if 100 <= status < 200 or status in (204, 304) or head_request:
            return response
        length = response.header("content-length")
        if length is None:
            raise ResponseError("response without Content-Length: %r" % response)
        length = int(length)
        while len(self.buffer) < length:
            try:
                self._recv_more(deadline)
            except EOFError:
                raise ResponseError("connection closed inside a body (%d of %d bytes)"
                                    % (len(self.buffer), length))
        response.body, self.buffer = self.buffer[:length], self.buffer[length:]
        return response

    def request(self, method="GET", path="/healthz", headers=None, body=b"", version="HTTP/1.1",
                timeout=None):
        self.send(build_request(method, path, headers, body, version))
        return self.read_response(head_request=(method == "HEAD"), timeout=timeout)

    def wait_closed(self, timeout=5.0):
        """Waits for EOF (or a reset). Returns the bytes received meanwhile; raises
        AssertionError if the connection is still open after `timeout`."""
        deadline = time.monotonic() + timeout
        received = self.buffer
        self.buffer = b""
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("connection still open after %.1fs (received %r)"
                                     % (timeout, received[:300]))
            self.sock.settimeout(remaining)
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                continue
            except (ConnectionResetError, BrokenPipeError):
                return received
            if not chunk:
                return received
            received += chunk

    def is_open_after(self, seconds):
        """True if nothing (no byte, no EOF) arrives for `seconds`."""
        self.sock.settimeout(seconds)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return True
        except (ConnectionResetError, BrokenPipeError):
            return False
        if chunk:
            self.buffer += chunk
        return False


def build_request(method="GET", path="/healthz", headers=None, body=b"", version="HTTP/1.1"):
    if isinstance(body, str):
        body = body.encode()
    lines = ["%s %s %s" % (method, path, version)]
    header_items = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    names = {name.lower() for name, _ in header_items}
    if "host" not in names and version == "HTTP/1.1":
        header_items.insert(0, ("Host", "127.0.0.1"))
    if body and "content-length" not in names and "transfer-encoding" not in names:
        header_items.append(("Content-Length", str(len(body))))
    for name, value in header_items:
        lines.append("%s: %s" % (name, value))
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body
