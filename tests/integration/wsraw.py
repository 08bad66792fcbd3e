"""A small raw-socket WebSocket client (RFC 6455) for the black-box tests of
/api/v1/ws: it performs the opening handshake byte by byte, builds any frame
a test wants (masked or not, RSV bits, reserved opcodes, lying 64-bit
lengths, fragments), and reads the server's frames exactly as sent, so a
test can see which close code the server chose and when the TCP connection
ended. Nothing is hidden: pings are not answered unless the caller asks.

Built on httpio.Conn (plain or TLS socket plus a receive buffer), so a
refused handshake is read as an ordinary HTTP response."""
import base64
import hashlib
import json
import os
import socket
import struct
import time

from httpio import Conn, ResponseError

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
WS_PATH = "/api/v1/ws"

OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA
CONTROL_OPCODES = (OP_CLOSE, OP_PING, OP_PONG)


def accept_key(key):
    """Sec-WebSocket-Accept for a Sec-WebSocket-Key (RFC 6455 4.2.2)."""
    digest = hashlib.sha1((key + WS_GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


def new_key():
    return base64.b64encode(os.urandom(16)).decode("ascii")


def frame(opcode, payload=b"", fin=True, mask=True, rsv=0, length=None, mask_key=None):
    """One frame's bytes. `rsv` is the 3-bit RSV1..RSV3 field (4 = RSV1);
    `length` overrides the announced payload length (to lie about it);
    mask=False sends the payload in the clear (a protocol error from a
    client)."""
    if isinstance(payload, str):
        payload = payload.encode("utf-8")
    announced = len(payload) if length is None else length
    head = bytearray([(0x80 if fin else 0) | ((rsv & 7) << 4) | (opcode & 0x0F)])
    mask_bit = 0x80 if mask else 0
    if announced < 126:
        head.append(mask_bit | announced)
    elif announced < 1 << 16:
        head.append(mask_bit | 126)
        head += struct.pack("!H", announced)
    else:
        head.append(mask_bit | 127)
        head += struct.pack("!Q", announced)
    if not mask:
        return bytes(head) + payload
    mask_key = mask_key if mask_key is not None else os.urandom(4)
    masked = bytes(byte ^ mask_key[index % 4] for index, byte in enumerate(payload))
    return bytes(head) + mask_key + masked


def close_payload(code=None, reason=b""):
    """A close frame body: 2-byte code then the reason (bytes or str)."""
    if code is None:
        return b""
    if isinstance(reason, str):
        reason = reason.encode("utf-8")
    return struct.pack("!H", code) + reason


class Frame:
    """One frame as the server sent it."""

    def __init__(self, fin, rsv, opcode, masked, payload):
        self.fin = fin            # FIN bit
        self.rsv = rsv            # RSV1..RSV3 as 3 bits
        self.opcode = opcode      # 4-bit opcode
        self.masked = masked      # MASK bit (a server must never set it)
        self.payload = payload    # unmasked payload bytes

    @property
    def close_code(self):
        """(code, reason) of a close frame; code None for an empty body."""
        if len(self.payload) < 2:
            return None
        return struct.unpack("!H", self.payload[:2])[0]

    @property
    def close_reason(self):
        return self.payload[2:].decode("utf-8")

    def json(self):
        return json.loads(self.payload.decode("utf-8"))

    def __repr__(self):
        return "<Frame op=%#x fin=%d rsv=%d len=%d %r>" % (self.opcode, self.fin, self.rsv,
                                                            len(self.payload),
                                                            self.payload[:120])


class Closed(Exception):
    """The server closed the WebSocket; `code` is its close code (None when the
    TCP connection ended without a close frame)."""

    def __init__(self, code, reason="", frames=()):
        super().__init__("closed with %r %r" % (code, reason))
        self.code = code
        self.reason = reason
        self.frames = list(frames)


def build_handshake(path=WS_PATH, headers=None, key=None, host=None, method="GET",
                    version="13"):
    """The upgrade request's header list; a header given as None in `headers`
    is left out (to test its absence)."""
    base = [("Host", host or "127.0.0.1"), ("Upgrade", "websocket"), ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", key or new_key()), ("Sec-WebSocket-Version", version)]
    extra = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    names = {name.lower() for name, _ in extra}
    merged = [(name, value) for name, value in base if name.lower() not in names]
    merged += [(name, value) for name, value in extra if value is not None]
    lines = ["%s %s HTTP/1.1" % (method, path)] + ["%s: %s" % pair for pair in merged]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


class WsConn:
    """One client connection. `response` is the handshake's HTTP response;
    when it is 101 the connection speaks WebSocket from then on."""

    def __init__(self, conn, response, key):
        self.conn = conn          # httpio.Conn (its buffer holds bytes after the 101)
        self.response = response  # httpio.Response of the handshake
        self.key = key            # the Sec-WebSocket-Key sent

    @property
    def sock(self):
        return self.conn.sock

    @property
    def upgraded(self):
        return self.response.status == 101

    def close(self):
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # ---- sending ----

    def send_raw(self, data):
        self.conn.send(data)

    def send_frame(self, opcode, payload=b"", **kw):
        self.conn.send(frame(opcode, payload, **kw))

    def send_text(self, text, **kw):
        self.send_frame(OP_TEXT, text, **kw)

    def send_json(self, document):
        self.send_text(json.dumps(document))

    def send_close(self, code=1000, reason=b""):
        self.send_frame(OP_CLOSE, close_payload(code, reason))

    # ---- receiving ----

    def _need(self, count, deadline):
        while len(self.conn.buffer) < count:
            self.conn._recv_more(deadline)

    def read_frame(self, timeout=5.0):
        """The next frame. Raises EOFError when the TCP connection ends first,
        socket.timeout when nothing complete arrives in time."""
        deadline = time.monotonic() + timeout
        self._need(2, deadline)
        first, second = self.conn.buffer[0], self.conn.buffer[1]
        length, offset = second & 0x7F, 2
        if length == 126:
            self._need(4, deadline)
            length, offset = struct.unpack("!H", self.conn.buffer[2:4])[0], 4
        elif length == 127:
            self._need(10, deadline)
            length, offset = struct.unpack("!Q", self.conn.buffer[2:10])[0], 10
        masked = bool(second & 0x80)
        mask_key = b""
        if masked:
            self._need(offset + 4, deadline)
            mask_key, offset = self.conn.buffer[offset:offset + 4], offset + 4
        self._need(offset + length, deadline)
        payload = self.conn.buffer[offset:offset + length]
        self.conn.buffer = self.conn.buffer[offset + length:]
        if masked:
            payload = bytes(byte ^ mask_key[index % 4] for index, byte in enumerate(payload))
        return Frame(bool(first & 0x80), (first >> 4) & 7, first & 0x0F, masked, payload)

    def read_message(self, timeout=5.0, answer_pings=True):
        """The next complete data message as (opcode, bytes), reassembling
        fragments and answering pings on the way. Raises Closed on a close
        frame (after echoing it) or on EOF."""
        deadline = time.monotonic() + timeout
        parts, opcode = [], None
        while True:
            try:
                got = self.read_frame(max(0.0, deadline - time.monotonic()))
            except EOFError:
                raise Closed(None)
            assert not got.masked, "the server masked a frame: %r" % got
            if got.opcode == OP_CLOSE:
                try:
                    self.send_frame(OP_CLOSE, got.payload[:2])
                except OSError:
                    pass
                raise Closed(got.close_code, got.close_reason, [got])
            if got.opcode == OP_PING:
                if answer_pings:
                    self.send_frame(OP_PONG, got.payload)
                continue
            if got.opcode == OP_PONG:
                continue
            if opcode is None:
                assert got.opcode in (OP_TEXT, OP_BINARY), "unexpected frame %r" % got
                opcode = got.opcode
            else:
                assert got.opcode == OP_CONT, "new data frame inside a message: %r" % got
            parts.append(got.payload)
            if got.fin:
                return opcode, b"".join(parts)

    def recv_json(self, timeout=5.0):
        opcode, data = self.read_message(timeout)
        assert opcode == OP_TEXT, "the server sent a binary message: %r" % data[:200]
        return json.loads(data.decode("utf-8"))

    def expect_close(self, timeout=1.0):
        """Reads until the server's close frame; returns (code, reason, frames
        before it, seconds it took). Echoes the close. Fails on EOF without
        a close frame or on a timeout."""
        started = time.monotonic()
        before = []
        while True:
            remaining = timeout - (time.monotonic() - started)
            try:
                got = self.read_frame(max(0.0, remaining))
            except socket.timeout:
                raise AssertionError("no close frame within %.2fs (frames: %r)"
                                     % (timeout, before[:10]))
            except EOFError:
                raise AssertionError("TCP closed without a close frame (frames: %r)"
                                     % before[:10])
            assert not got.masked, "the server masked a frame: %r" % got
            if got.opcode == OP_CLOSE:
                elapsed = time.monotonic() - started
                assert got.fin and got.rsv == 0, got
                assert len(got.payload) != 1 and len(got.payload) <= 125, got
                reason = got.close_reason  # must be UTF-8 (raises otherwise)
                try:
                    self.send_frame(OP_CLOSE, got.payload[:2])
                except OSError:
                    pass
                return got.close_code, reason, before, elapsed
            before.append(got)

    def wait_eof(self, timeout=2.0):
        """Waits for the TCP connection to end; returns the frames read meanwhile."""
        deadline = time.monotonic() + timeout
        frames = []
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("connection still open after %.1fs (frames %r)"
                                     % (timeout, frames[:10]))
            try:
                frames.append(self.read_frame(remaining))
            except EOFError:
                return frames
            except (ConnectionResetError, BrokenPipeError):
                return frames
            except socket.timeout:
                continue

    def ping_pong(self, timeout=5.0):
        """Sends {"type":"ping"} and returns the messages that arrived before
        {"type":"pong"} (events, errors)."""
        self.send_json({"type": "ping"})
        before = []
        deadline = time.monotonic() + timeout
        while True:
            message = self.recv_json(max(0.0, deadline - time.monotonic()))
            if message.get("type") == "pong":
                return before
            before.append(message)


def connect(port, path=WS_PATH, headers=None, key=None, host=None, method="GET",
            version="13", timeout=10.0, sock=None, rcvbuf=None):
    """Opens a TCP connection (or uses `sock`, e.g. TLS-wrapped), sends the
    upgrade request and reads the response. Returns a WsConn whether or not
    the server upgraded (check .response.status). `rcvbuf` sets SO_RCVBUF
    before connecting (a slow consumer)."""
    key = key or new_key()
    if sock is None and rcvbuf is not None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.settimeout(timeout)
        sock.connect(("127.0.0.1", port))
    conn = Conn(port, timeout=timeout, sock=sock)
    conn.send(build_handshake(path, headers, key, host or "127.0.0.1:%d" % port, method,
                              version))
    try:
        response = conn.read_response(timeout=timeout)
    except (EOFError, ResponseError):
        conn.close()
        raise
    return WsConn(conn, response, key)


def bearer(token):
    return {"Authorization": "Bearer " + token}


def open_ws(port, token, path=WS_PATH, headers=None, timeout=10.0, **kw):
    """An upgraded connection with the token in the Authorization header;
    fails the test on any other answer."""
    merged = dict(bearer(token))
    merged.update(headers or {})
    ws = connect(port, path, merged, timeout=timeout, **kw)
    assert ws.response.status == 101, ws.response
    return ws


# ---- A device's view of its user's stream -----------------------------------------

class Stream:
    """What one client device has seen of its user's event stream, checked
    against the contract as it arrives: every event is last+1, except that
    after the client asked to resume from M (a gap request, or a reconnect
    without ?since followed by a resume message) the server may re-send
    M+1.. (each identical to what was seen before) and, on a fresh
    connection, may first send live events ahead of last+1 (kept aside and
    required to match what the catch-up delivers). Anything else (a gap, a
    duplicate, a reorder, a changed event) is recorded in `errors`."""

    def __init__(self, start=0):
        self.events = {}        # sequence -> CloudEvent, dense from start+1 to last
        self.start = start      # the sequence before the first one this stream holds
        self.last = start       # highest dense sequence
        self.pending = None     # M of a resume sent whose replay has not been seen
        self.cursor = None      # while a replay re-sends seen events: the last one re-sent
        self.ahead = {}         # sequence -> event seen ahead of last+1 during a pending resume
        self.errors = []        # contract violations, as text
        self.replays = 0        # replays seen (for reports)

    def resume_sent(self, since):
        """The client sent {"type":"resume","since":since} (since <= last)."""
        assert since <= self.last
        self.pending = since
        self.cursor = None
        self.ahead = {}

    def connected_live(self):
        """A new connection without ?since: a resume message must follow."""
        self.cursor = None

    def connected_since(self):
        """A new connection with ?since=last: the stream continues exactly."""
        self.pending = None
        self.cursor = None
        self.ahead = {}

    def _same(self, event, seen):
        if event["id"] != seen["id"] or event != seen:
            self.errors.append("sequence %d re-sent differently: %r vs %r"
                               % (event["sequence"], event, seen))

    def add(self, event):
        sequence = event["sequence"]
        if self.cursor is not None:
            if sequence == self.cursor + 1 and sequence <= self.last:
                self._same(event, self.events[sequence])
                self.cursor = sequence if sequence < self.last else None
                return
            if sequence != self.cursor + 1:
                self.errors.append("replay jumped from %d to %d" % (self.cursor, sequence))
            self.cursor = None
        if self.pending is not None and sequence == self.pending + 1 and \
                (sequence <= self.last or self.ahead):
            self.pending = None
            self.replays += 1
            if sequence <= self.last:
                self._same(event, self.events[sequence])
                self.cursor = sequence if sequence < self.last else None
                return
        if sequence == self.last + 1:
            if sequence in self.ahead:
                self._same(event, self.ahead.pop(sequence))
            self.events[sequence] = event
            self.last = sequence
            return
        if self.pending is not None and sequence > self.last + 1:
            if self.ahead and sequence != max(self.ahead) + 1:
                self.errors.append("live events ahead not dense: %d after %d"
                                   % (sequence, max(self.ahead)))
            self.ahead[sequence] = event
            return
        self.errors.append("sequence %d after %d (pending resume %r)"
                           % (sequence, self.last, self.pending))

    def sequences(self):
        return sorted(self.events)

    def ordered(self):
        return [self.events[sequence] for sequence in sorted(self.events)]


# ---- The websockets library, set up the same way everywhere ---------------------

def ws_url(base_url, since=None, token=None):
    """ws(s)://host:port/api/v1/ws with optional since and token parameters."""
    scheme = "wss" if base_url.startswith("https") else "ws"
    url = scheme + base_url[base_url.index("://"):] + WS_PATH
    query = []
    if token is not None:
        query.append("token=" + token)
    if since is not None:
        query.append("since=%d" % since)
    return url + ("?" + "&".join(query) if query else "")


def lib_connect(base_url, token, since=None, via="header", timeout=10.0, **kw):
    """A websockets (sync) client: no proxy, no compression, no client-side
    pings (it still answers the server's), big enough for any event."""
    from websockets.sync.client import connect as ws_connect
    headers, subprotocols, query_token = {}, None, None
    if via == "header":
        headers["Authorization"] = "Bearer " + token
    elif via == "subprotocol":
        subprotocols = ["bearer", "bearer." + token]
    else:
        query_token = token
    options = dict(additional_headers=headers, subprotocols=subprotocols, compression=None,
                   proxy=None, open_timeout=timeout, ping_interval=None,
                   close_timeout=timeout, max_size=8 * 1024 * 1024, legacy=True)
    options.update(kw)
    return ws_connect(ws_url(base_url, since, query_token), **options)


def lib_recv_json(ws, timeout=5.0):
    return json.loads(ws.recv(timeout=timeout))
