"""Proves the WebSocket endpoint's protocol contract (issue 5: handshake,
auth, Origin, framing, close codes) over raw sockets against the real binary: the accept key, 400/426 for bad
handshakes and bad query parameters, 401 for every bad token on every auth
path (Authorization header, `bearer.<JWT>` subprotocol, ?token=), the
subprotocol echo rule, the Origin allow rules (403 before any upgrade), and
Autobahn-style framing cases, each closed with its documented code within
one second, after which the server keeps serving other clients."""
import os
import time
import uuid

import pytest

from api import ApiServer, claims_for, forge, server_fixture, signup, unsigned
from conftest import scaled
from httpio import assert_problem
import wsraw
from wsraw import OP_BINARY, OP_CLOSE, OP_CONT, OP_PING, OP_PONG, OP_TEXT, close_payload

ALLOWED = "https://app.example.com,http://localhost:5173"
MAX_MESSAGE = 4096
RATE = 20
# Every refusal of a bad frame must come within this (the contract's 1 s);
# the sanitizer build gets its usual stretch.
CLOSE_WITHIN_S = scaled(1.0)

api_server = server_fixture("--ws-allowed-origins", ALLOWED,
                            "--ws-max-message-bytes", MAX_MESSAGE,
                            "--ws-messages-per-second", RATE)


@pytest.fixture(scope="module")
def user(api_server):
    return signup(api_server, "wsproto")


@pytest.fixture(scope="module")
def port(api_server):
    return api_server.process.port


def problem_fields(response):
    document = response.json()
    return [error.get("field") for error in document.get("errors") or []], document


def refused(response, status, field=None):
    """A plain-HTTP refusal: problem+json `status`, no upgrade; with `field`,
    the parameter is named in errors[].field."""
    assert response.status == status, response
    assert response.header("Sec-WebSocket-Accept") is None, response
    document = assert_problem(response, status)
    if field is not None:
        fields, _ = problem_fields(response)
        assert field in fields, document
    return document


def connected(port, token, **kw):
    """An upgraded connection that answers a ping: the session is attached."""
    ws = wsraw.open_ws(port, token, **kw)
    assert ws.ping_pong(timeout=scaled(5)) == []
    return ws


def assert_closes_with(ws, codes, within=CLOSE_WITHIN_S):
    """The server's next close frame carries one of `codes`, within `within`
    seconds; then the TCP connection ends. Returns the code."""
    codes = codes if isinstance(codes, (tuple, list, set)) else (codes,)
    code, reason, before, elapsed = ws.expect_close(timeout=within)
    assert code in codes, "close code %r (%r), wanted %r; frames before: %r" % (
        code, reason, codes, before[:5])
    assert elapsed <= within, elapsed
    ws.wait_eof(timeout=scaled(3))
    return code


# ---- Handshake ---------------------------------------------------------------

def test_accept_key_rfc_example():
    """The accept key helper reproduces RFC 6455's worked example (guards the tests)."""
    assert wsraw.accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


def test_handshake_accept_key(port, user):
    """A valid upgrade is answered 101 with Upgrade/Connection and the
    Sec-WebSocket-Accept derived from our key, and the socket then speaks JSON."""
    for key in ("dGhlIHNhbXBsZSBub25jZQ==", wsraw.new_key()):
        with wsraw.connect(port, headers=wsraw.bearer(user.token), key=key) as ws:
            response = ws.response
            assert response.status == 101, response
            assert response.header("Upgrade", "").lower() == "websocket", response
            connection = [t.strip().lower() for t in response.header("Connection", "").split(",")]
            assert "upgrade" in connection, response
            assert response.header("Sec-WebSocket-Accept") == wsraw.accept_key(key), response
            assert response.header("Sec-WebSocket-Protocol") is None, response
            assert ws.ping_pong() == []


BAD_HANDSHAKES = {
    "no-key": dict(headers={"Sec-WebSocket-Key": None}),
    "short-key": dict(key="c2hvcnQ="),
    "key-not-base64": dict(key="!!!!!!!!!!!!!!!!!!!!!!=="),
    "key-17-bytes": dict(key="AAAAAAAAAAAAAAAAAAAAAAA="),
    "no-upgrade": dict(headers={"Upgrade": None}),
    "upgrade-h2c": dict(headers={"Upgrade": "h2c"}),
    "no-connection": dict(headers={"Connection": None}),
    "connection-keep-alive": dict(headers={"Connection": "keep-alive"}),
}


@pytest.mark.parametrize("case", sorted(BAD_HANDSHAKES))
def test_bad_handshake_is_400(port, user, case):
    """A request that is not a valid WebSocket handshake is refused with 400
    problem+json, before any upgrade."""
    kw = dict(BAD_HANDSHAKES[case])
    headers = dict(wsraw.bearer(user.token))
    headers.update(kw.pop("headers", {}))
    with wsraw.connect(port, headers=headers, **kw) as ws:
        refused(ws.response, 400)


def test_not_get_is_refused(port, user):
    """An upgrade request with another method is refused before any upgrade:
    400 per the contract, or 405 (RFC 9110's answer for a known path)."""
    for method in ("POST", "PUT", "DELETE"):
        with wsraw.connect(port, headers=wsraw.bearer(user.token), method=method) as ws:
            assert ws.response.status in (400, 405), (method, ws.response)
            refused(ws.response, ws.response.status)


@pytest.mark.parametrize("version", ["8", "12", "14", "abc"])
def test_wrong_version_is_426(port, user, version):
    """Sec-WebSocket-Version other than 13 is answered 426 naming version 13."""
    with wsraw.connect(port, headers=wsraw.bearer(user.token), version=version) as ws:
        refused(ws.response, 426)
        assert ws.response.header("Sec-WebSocket-Version") == "13", ws.response


def test_missing_version_is_refused(port, user):
    """No Sec-WebSocket-Version at all is not a handshake: 400 or 426, never 101."""
    headers = dict(wsraw.bearer(user.token), **{"Sec-WebSocket-Version": None})
    with wsraw.connect(port, headers=headers) as ws:
        assert ws.response.status in (400, 426), ws.response


@pytest.mark.parametrize("query,field", [
    ("?token=a&token=b", "token"),
    ("?foo=1", "foo"),
    ("?since=1&since=2", "since"),
    ("?since=-1", "since"),
    ("?since=abc", "since"),
    ("?since=1.5", "since"),
    ("?since=", "since"),
    ("?since=99999999999999999999999", "since"),
])
def test_bad_query_is_400_naming_it(port, user, query, field):
    """Unknown, repeated or malformed query parameters are 400 naming the parameter."""
    with wsraw.connect(port, path=wsraw.WS_PATH + query,
                       headers=wsraw.bearer(user.token)) as ws:
        refused(ws.response, 400, field)


# ---- Auth ----------------------------------------------------------------------

def bad_tokens(api_server, user):
    secret = api_server.secret()
    now = int(time.time())
    return {
        "garbage": "not-a-jwt",
        "bad-signature": forge(os.urandom(32), claims_for(user.id)),
        "expired": forge(secret, claims_for(user.id, exp=now - 3600, iat=now - 7200)),
        "alg-none": unsigned(claims_for(user.id)),
        "alg-None": unsigned(claims_for(user.id), alg="None"),
        "unknown-user": forge(secret, claims_for(str(uuid.uuid4()))),
        "wrong-audience": forge(secret, claims_for(user.id, aud="someone-else")),
    }


def auth_request(path_kind, token):
    """(path, headers) carrying `token` the given way."""
    if path_kind == "header":
        return wsraw.WS_PATH, {"Authorization": "Bearer " + token}
    if path_kind == "subprotocol":
        return wsraw.WS_PATH, {"Sec-WebSocket-Protocol": "bearer, bearer." + token}
    return wsraw.WS_PATH + "?token=" + token, {}


@pytest.mark.parametrize("path_kind", ["header", "subprotocol", "query"])
def test_bad_tokens_are_401_on_every_path(api_server, port, user, path_kind):
    """Garbage, wrongly signed, expired, alg-none, unknown-user and wrong-audience
    tokens are 401 problem+json (with a Bearer challenge) whichever way they come."""
    for name, token in bad_tokens(api_server, user).items():
        path, headers = auth_request(path_kind, token)
        with wsraw.connect(port, path=path, headers=headers) as ws:
            assert ws.response.status == 401, (name, ws.response)
            refused(ws.response, 401)
            challenge = ws.response.header("WWW-Authenticate", "")
            assert challenge.split(" ")[0].lower() == "bearer", (name, ws.response)


def test_no_token_is_401(port):
    """A handshake without any token is 401; so is an empty ?token= and a bare
    `bearer` subprotocol."""
    for path, headers in ((wsraw.WS_PATH, {}), (wsraw.WS_PATH + "?token=", {}),
                          (wsraw.WS_PATH, {"Sec-WebSocket-Protocol": "bearer"}),
                          (wsraw.WS_PATH, {"Authorization": "Bearer "}),
                          (wsraw.WS_PATH, {"Authorization": "Basic dXNlcjpwYXNz"})):
        with wsraw.connect(port, path=path, headers=headers) as ws:
            refused(ws.response, 401)


@pytest.mark.parametrize("path_kind", ["header", "subprotocol", "query"])
def test_good_token_on_every_path(port, user, path_kind):
    """A valid token is accepted on each of the three auth paths."""
    path, headers = auth_request(path_kind, user.token)
    with wsraw.connect(port, path=path, headers=headers) as ws:
        assert ws.response.status == 101, ws.response
        assert ws.ping_pong() == []


def test_first_auth_path_wins(api_server, port, user):
    """The header is used before the subprotocol, which is used before ?token=:
    a bad token in an earlier path is 401 even with a good one later."""
    bad = forge(os.urandom(32), claims_for(user.id))
    cases = [
        (wsraw.WS_PATH, {"Authorization": "Bearer " + bad,
                         "Sec-WebSocket-Protocol": "bearer, bearer." + user.token}),
        (wsraw.WS_PATH + "?token=" + user.token,
         {"Sec-WebSocket-Protocol": "bearer, bearer." + bad}),
        (wsraw.WS_PATH + "?token=" + user.token, {"Authorization": "Bearer " + bad}),
    ]
    for path, headers in cases:
        with wsraw.connect(port, path=path, headers=headers) as ws:
            refused(ws.response, 401)
    with wsraw.connect(port, path=wsraw.WS_PATH + "?token=" + bad,
                       headers={"Authorization": "Bearer " + user.token}) as ws:
        assert ws.response.status == 101, ws.response


def test_subprotocol_echo_rule(port, user):
    """The server answers `bearer` when the client offered it, else echoes the
    exact `bearer.<JWT>` entry, and never names a protocol with header auth
    and no offer."""
    entry = "bearer." + user.token
    expectations = [
        ("bearer, " + entry, "bearer"),
        (entry + ", bearer", "bearer"),
        (entry, entry),
        ("chat, " + entry, entry),
    ]
    for offered, answered in expectations:
        with wsraw.connect(port, headers={"Sec-WebSocket-Protocol": offered}) as ws:
            assert ws.response.status == 101, (offered, ws.response)
            assert ws.response.header("Sec-WebSocket-Protocol") == answered, (offered,
                                                                           ws.response)
            assert ws.ping_pong() == []
    with wsraw.connect(port, headers=wsraw.bearer(user.token)) as ws:
        assert ws.response.status == 101
        assert ws.response.header("Sec-WebSocket-Protocol") is None, ws.response
    # Header auth plus an offer: whatever is answered must be one of the offers.
    with wsraw.connect(port, headers=dict(wsraw.bearer(user.token),
                                          **{"Sec-WebSocket-Protocol": "bearer"})) as ws:
        assert ws.response.status == 101
        assert ws.response.header("Sec-WebSocket-Protocol") in (None, "bearer"), ws.response


# ---- Origin --------------------------------------------------------------------

def origin_cases(port):
    same = "http://127.0.0.1:%d" % port
    allowed = [None, same, "https://app.example.com", "http://localhost:5173",
               "HTTPS://APP.EXAMPLE.COM", "http://LOCALHOST:5173"]
    denied = ["https://evil.example.com", "null", "", "http://127.0.0.1:%d" % (port + 1),
              "https://127.0.0.1:%d" % port, "http://127.0.0.1", "http://localhost:%d" % port,
              same + ".evil.com", same + "/", "https://app.example.com:443",
              "http://app.example.com", "https://app.example.com.evil.com",
              "https://evilapp.example.com", "https://app.example.co", "xhttps://app.example.com",
              "https://app.example.com/", "http://localhost:5174", "http://localhost:51730",
              "https://app.example.com,http://localhost:5173", "*"]
    return allowed, denied


def test_origin_matrix(port, user):
    """No Origin, same-origin and allow-listed origins (case-insensitive) are
    upgraded; evil, "null", empty, port/scheme/host variants and prefix/suffix
    tricks are 403 before the upgrade."""
    allowed, denied = origin_cases(port)
    for origin in allowed:
        headers = dict(wsraw.bearer(user.token))
        if origin is not None:
            headers["Origin"] = origin
        with wsraw.connect(port, headers=headers) as ws:
            assert ws.response.status == 101, (origin, ws.response)
    for origin in denied:
        headers = dict(wsraw.bearer(user.token), Origin=origin)
        with wsraw.connect(port, headers=headers) as ws:
            assert ws.response.status == 403, (origin, ws.response)
            refused(ws.response, 403)


def test_same_origin_follows_host_header(port, user):
    """Same-origin means http + the request's Host exactly: Host localhost:P with
    Origin http://localhost:P is allowed, Origin http://127.0.0.1:P then is not."""
    host = "localhost:%d" % port
    with wsraw.connect(port, host=host, headers=dict(wsraw.bearer(user.token),
                                                     Origin="http://" + host)) as ws:
        assert ws.response.status == 101, ws.response
    with wsraw.connect(port, host=host, headers=dict(
            wsraw.bearer(user.token), Origin="http://127.0.0.1:%d" % port)) as ws:
        refused(ws.response, 403)


def test_origin_star_and_default(tmp_path_factory):
    """With ws.allowed_origins "*" any Origin is upgraded; with the default
    (empty) list only same-origin (and no Origin) is."""
    star = ApiServer(tmp_path_factory.mktemp("wsstar"), ["--ws-allowed-origins", "*"]).start()
    plain = ApiServer(tmp_path_factory.mktemp("wsplain")).start()
    try:
        owners = {id(star): signup(star, "starry"), id(plain): signup(plain, "plain")}
        for server, origin, status in ((star, "https://evil.example.com", 101),
                                       (star, "null", 101),
                                       (plain, "https://app.example.com", 403),
                                       (plain, "http://127.0.0.1:%d" % plain.process.port, 101),
                                       (plain, None, 101)):
            headers = dict(wsraw.bearer(owners[id(server)].token))
            if origin is not None:
                headers["Origin"] = origin
            with wsraw.connect(server.process.port, headers=headers) as ws:
                assert ws.response.status == status, (origin, ws.response)
    finally:
        star.close()
        plain.close()


# ---- Framing (Autobahn-style) ----------------------------------------------------

def test_fragments_with_interleaved_ping(port, user):
    """A text message in three fragments with a ping between them: the ping is
    answered with a pong carrying its payload, and the message is handled."""
    with connected(port, user.token) as ws:
        ws.send_frame(OP_TEXT, b'{"ty', fin=False)
        ws.send_frame(OP_PING, b"keep")
        ws.send_frame(OP_CONT, b'pe":"pi', fin=False)
        ws.send_frame(OP_CONT, b'ng"}', fin=True)
        seen = []
        deadline = time.monotonic() + scaled(2)
        while not (any(f.opcode == OP_PONG for f in seen) and
                   any(f.opcode == OP_TEXT for f in seen)):
            seen.append(ws.read_frame(deadline - time.monotonic()))
        pong = next(f for f in seen if f.opcode == OP_PONG)
        assert pong.payload == b"keep", seen
        text = next(f for f in seen if f.opcode == OP_TEXT)
        assert text.json() == {"type": "pong"}, seen
        assert seen.index(pong) < seen.index(text), seen


def test_utf8_split_across_fragments_is_accepted(port, user):
    """A valid multi-byte character split between two fragments is fine: the
    message is handled (unknown type -> an error message) and the socket stays."""
    with connected(port, user.token) as ws:
        body = '{"type":"caf\u00e9\U0001F600"}'.encode("utf-8")
        cut = body.index(b"\xf0") + 2  # inside the 4-byte emoji
        ws.send_frame(OP_TEXT, body[:cut], fin=False)
        ws.send_frame(OP_CONT, body[cut:], fin=True)
        message = ws.recv_json(timeout=scaled(2))
        assert message["type"] == "error" and message["code"] == "unknown_type", message
        assert ws.ping_pong() == []


INVALID_UTF8 = {
    "ff": [b'{"type":"\xff"}'],
    "overlong": [b'{"type":"\xc0\xaf"}'],
    "surrogate": [b'{"type":"\xed\xa0\x80"}'],
    "above-max": [b'{"type":"\xf4\x90\x80\x80"}'],
    "truncated-at-end": [b'{"type":"x"}\xe2\x82'],
    "split-bad-continuation": [b'{"type":"\xc3', b'\x28"}'],
    "split-truncated": [b'{"type":"\xe2\x82', b'"}'],
    "bad-in-middle-fragment": [b'{"type":', b'"\xfe', b'"}'],
}


@pytest.mark.parametrize("case", sorted(INVALID_UTF8))
def test_invalid_utf8_is_1007(port, user, case):
    """Text that is not valid UTF-8, in one frame or split across fragments,
    closes the connection with 1007."""
    with connected(port, user.token) as ws:
        parts = INVALID_UTF8[case]
        for index, part in enumerate(parts):
            opcode = OP_TEXT if index == 0 else OP_CONT
            ws.send_frame(opcode, part, fin=index == len(parts) - 1)
        assert_closes_with(ws, 1007)


def test_binary_is_1003(port, user):
    """A binary message closes with 1003 (also when fragmented)."""
    with connected(port, user.token) as ws:
        ws.send_frame(OP_BINARY, b'{"type":"ping"}')
        assert_closes_with(ws, 1003)
    with connected(port, user.token) as ws:
        ws.send_frame(OP_BINARY, b"ab", fin=False)
        ws.send_frame(OP_CONT, b"cd", fin=True)
        assert_closes_with(ws, 1003)


PROTOCOL_ERRORS = {
    "unmasked-text": [dict(opcode=OP_TEXT, payload=b'{"type":"ping"}', mask=False)],
    "unmasked-ping": [dict(opcode=OP_PING, payload=b"x", mask=False)],
    "rsv1": [dict(opcode=OP_TEXT, payload=b'{"type":"ping"}', rsv=4)],
    "rsv2": [dict(opcode=OP_TEXT, payload=b'{"type":"ping"}', rsv=2)],
    "rsv3": [dict(opcode=OP_TEXT, payload=b'{"type":"ping"}', rsv=1)],
    "rsv-on-ping": [dict(opcode=OP_PING, payload=b"x", rsv=7)],
    "ping-126-bytes": [dict(opcode=OP_PING, payload=b"p" * 126)],
    "pong-200-bytes": [dict(opcode=OP_PONG, payload=b"p" * 200)],
    "close-126-bytes": [dict(opcode=OP_CLOSE, payload=close_payload(1000, b"r" * 124))],
    "fragmented-ping": [dict(opcode=OP_PING, payload=b"a", fin=False)],
    "fragmented-close": [dict(opcode=OP_CLOSE, payload=close_payload(1000), fin=False)],
    "continuation-without-start": [dict(opcode=OP_CONT, payload=b"x", fin=True)],
    "continuation-unfinished-without-start": [dict(opcode=OP_CONT, payload=b"x", fin=False)],
    "text-inside-fragmented": [dict(opcode=OP_TEXT, payload=b'{"type":', fin=False),
                               dict(opcode=OP_TEXT, payload=b'"ping"}', fin=True)],
    "binary-inside-fragmented": [dict(opcode=OP_TEXT, payload=b'{"type":', fin=False),
                                 dict(opcode=OP_BINARY, payload=b'"ping"}', fin=True)],
    "close-one-byte-body": [dict(opcode=OP_CLOSE, payload=b"\x03")],
}
for _opcode in (3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF):
    PROTOCOL_ERRORS["opcode-%#x" % _opcode] = [dict(opcode=_opcode, payload=b"x")]


@pytest.mark.parametrize("case", sorted(PROTOCOL_ERRORS))
def test_protocol_errors_are_1002(port, user, case):
    """Unmasked frames, RSV bits, reserved opcodes, oversized or fragmented
    control frames, bad continuations and a one-byte close body close with 1002
    within one second."""
    with connected(port, user.token) as ws:
        for spec in PROTOCOL_ERRORS[case]:
            spec = dict(spec)
            ws.send_frame(spec.pop("opcode"), spec.pop("payload"), **spec)
        assert_closes_with(ws, 1002)


@pytest.mark.parametrize("length", [1 << 63, (1 << 64) - 1])
def test_64bit_length_with_high_bit(port, user, length):
    """A 64-bit payload length with the most significant bit set (forbidden by
    RFC 6455 5.2) closes with 1002 or 1009, without waiting for the payload."""
    with connected(port, user.token) as ws:
        ws.send_raw(wsraw.frame(OP_TEXT, b"", length=length))
        assert_closes_with(ws, (1002, 1009))


def test_huge_announced_length_is_1009(port, user):
    """A frame announcing more than ws.max_message_bytes is refused with 1009
    as soon as its first payload byte arrives: the announced bytes are never
    waited for nor buffered. (wslay reports a frame's header together with
    its first payload bytes, so a header alone is answered by the dead-peer
    timeout instead.)"""
    for announced in (MAX_MESSAGE + 1, 1 << 40):
        with connected(port, user.token) as ws:
            head = wsraw.frame(OP_TEXT, b"", length=announced)
            ws.send_raw(head + b"x")
            assert_closes_with(ws, 1009)


def padded_ping(size):
    """{"type":"ping"} padded with JSON whitespace to exactly `size` bytes."""
    body = b'{"type":"ping"}'
    return body[:-1] + b" " * (size - len(body)) + b"}"


def test_message_size_limit(port, user):
    """A message of exactly ws.max_message_bytes is handled; one byte more closes
    with 1009, in one frame or as fragments that only add up past the limit."""
    with connected(port, user.token) as ws:
        ws.send_text(padded_ping(MAX_MESSAGE))
        assert ws.recv_json(timeout=scaled(2)) == {"type": "pong"}
    with connected(port, user.token) as ws:
        ws.send_text(padded_ping(MAX_MESSAGE + 1))
        assert_closes_with(ws, 1009)
    with connected(port, user.token) as ws:
        body = padded_ping(MAX_MESSAGE + 100)
        half = len(body) // 2
        ws.send_frame(OP_TEXT, body[:half], fin=False)
        ws.send_frame(OP_CONT, body[half:], fin=True)
        assert_closes_with(ws, 1009)


@pytest.mark.parametrize("code", [1000, 1001, 1003, 1008, 1011, 3000, 4000, 4999])
def test_close_is_echoed(port, user, code):
    """A client close with a valid code is answered with a close frame with the
    same code, then the server ends the TCP connection."""
    with connected(port, user.token) as ws:
        ws.send_close(code, "bye")
        started = time.monotonic()
        got = ws.read_frame(timeout=CLOSE_WITHIN_S)
        assert got.opcode == OP_CLOSE, got
        assert got.close_code == code, got
        assert time.monotonic() - started <= CLOSE_WITHIN_S
        ws.wait_eof(timeout=scaled(2))


def test_empty_close_is_answered(port, user):
    """A close frame without a body is answered with an empty close or 1000."""
    with connected(port, user.token) as ws:
        ws.send_frame(OP_CLOSE, b"")
        got = ws.read_frame(timeout=CLOSE_WITHIN_S)
        assert got.opcode == OP_CLOSE and got.close_code in (None, 1000), got
        ws.wait_eof(timeout=scaled(2))


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999,
                                  5000, 65535])
def test_invalid_close_codes_are_1002(port, user, code):
    """A close frame with a code that must not be sent (RFC 6455 7.4) is answered
    with 1002."""
    with connected(port, user.token) as ws:
        ws.send_close(code, "x")
        assert_closes_with(ws, 1002)


def test_close_reason_not_utf8(port, user):
    """A close reason that is not UTF-8 is a protocol failure (1007, or 1002)."""
    with connected(port, user.token) as ws:
        ws.send_frame(OP_CLOSE, close_payload(1000, b"\xff\xfe"))
        assert_closes_with(ws, (1007, 1002))


def test_message_rate_limit(port, user):
    """Up to ws.messages_per_second messages are answered; a burst far past it
    closes with 1008 within a second."""
    with connected(port, user.token) as ws:
        time.sleep(1.1)  # the bucket refills after the ping of connected()
        for _ in range(RATE // 2):
            ws.send_json({"type": "ping"})
        for _ in range(RATE // 2):
            assert ws.recv_json(timeout=scaled(2)) == {"type": "pong"}
    with connected(port, user.token) as ws:
        burst = b"".join(wsraw.frame(OP_TEXT, b'{"type":"ping"}') for _ in range(RATE * 5))
        ws.send_raw(burst)
        code, reason, before, elapsed = ws.expect_close(timeout=CLOSE_WITHIN_S)
        assert code == 1008, (code, reason)
        assert reason, "1008 without a reason"
        pongs = [f for f in before if f.opcode == OP_TEXT]
        assert RATE // 2 <= len(pongs) <= RATE + 2, len(pongs)
        ws.wait_eof(timeout=scaled(3))


def test_silent_client_after_close_is_cut(port, user):
    """A client that never answers the server's close frame is disconnected
    a bounded time later (WS_CLOSE_WAIT_MS, 2 s, plus slack)."""
    with connected(port, user.token) as ws:
        ws.send_frame(OP_BINARY, b"x")
        got = ws.read_frame(timeout=CLOSE_WITHIN_S)
        assert got.opcode == OP_CLOSE and got.close_code == 1003, got
        started = time.monotonic()
        ws.wait_eof(timeout=scaled(5))
        assert time.monotonic() - started <= scaled(4)


def test_server_keeps_serving_after_all_of_them(api_server, port, user):
    """After every protocol violation above, new clients still upgrade and get
    answers, an event written now reaches them, and /healthz is 200."""
    assert api_server.running
    with connected(port, user.token) as first, connected(port, user.token) as second:
        created = user.api.create_task({"title": "still serving"})
        for ws in (first, second):
            message = ws.recv_json(timeout=scaled(5))
            assert message["type"] == "event", message
            assert message["event"]["subject"] == created["id"], message
    response = user.api.get("/healthz")
    assert response.status_code == 200
    for name in ("docket_ws_connections", "docket_ws_messages_sent_total",
                 "docket_ws_catchups_total", "docket_ws_stalls_closed_total"):
        assert name in user.api.get("/metrics").text, name
