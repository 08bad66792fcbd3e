"""Proves the connection deadlines: headers not complete within
http.header_timeout_ms -> 408 and close (a byte-at-a-time client does not extend
the deadline), a stalled body -> 408 after http.body_timeout_ms, and an idle
keep-alive connection is closed silently after http.idle_timeout_ms, as is one
whose client stops reading its responses."""
import socket
import threading
import time

import pytest

from conftest import scaled
from httpio import Conn, build_request, assert_problem

TIMEOUT_MS = 500


@pytest.fixture
def quick(start_server):
    return start_server("--http-header-timeout-ms", TIMEOUT_MS, "--http-body-timeout-ms",
                        TIMEOUT_MS, "--http-idle-timeout-ms", TIMEOUT_MS)


def expect_408_then_close(conn, started, earliest=0.4, latest=3.0):
    response = conn.read_response(timeout=scaled(latest) + 1)
    elapsed = time.monotonic() - started
    document = assert_problem(response, 408)
    assert document["title"] == "Request Timeout"
    assert response.closes
    assert earliest <= elapsed <= scaled(latest), elapsed
    conn.wait_closed(scaled(3))
    return elapsed


def test_partial_headers_get_408(quick):
    with Conn(quick.port) as conn:
        conn.send(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Half: ")
        expect_408_then_close(conn, time.monotonic())


def test_partial_request_line_gets_408(quick):
    with Conn(quick.port) as conn:
        conn.send(b"GE")
        expect_408_then_close(conn, time.monotonic())


def test_header_deadline_not_extended_by_slow_bytes(quick):
    """One byte every 200 ms: the deadline is fixed at the first byte."""
    request = build_request("GET", "/healthz", {"X-Padding": "p" * 200})
    with Conn(quick.port) as conn:
        started = time.monotonic()
        cut_off_at = None
        for byte in request:
            try:
                conn.send(bytes([byte]))
            except OSError:
                break
            if not conn.is_open_after(0.2):
                cut_off_at = time.monotonic() - started
                break
        assert cut_off_at is not None, "a trickling client kept its connection"
        assert cut_off_at <= scaled(1.5), cut_off_at
        response = conn.read_response(timeout=5)
        assert_problem(response, 408)


def test_header_deadline_spans_the_whole_head_after_keep_alive(quick):
    """After a response, the next request's headers get a fresh deadline."""
    with Conn(quick.port) as conn:
        assert conn.request("GET", "/healthz").status == 200
        time.sleep(0.3)
        assert conn.request("GET", "/healthz").status == 200
        conn.send(b"GET /healthz HTTP/1.1\r\n")
        expect_408_then_close(conn, time.monotonic())


def test_stalled_body_gets_408(quick):
    with Conn(quick.port) as conn:
        conn.send(build_request("POST", "/healthz", {"Content-Length": "10"}) + b"12345")
        expect_408_then_close(conn, time.monotonic())


def test_stalled_chunked_body_gets_408(quick):
    with Conn(quick.port) as conn:
        conn.send(build_request("POST", "/healthz", {"Transfer-Encoding": "chunked"}) +
                  b"5\r\nabc")
        expect_408_then_close(conn, time.monotonic())


def test_body_deadline_is_between_reads(quick):
    """A body that keeps arriving (every 250 ms < 500 ms) is not cut off even
    though it takes longer than the body timeout overall."""
    with Conn(quick.port) as conn:
        conn.send(build_request("GET", "/healthz", {"Content-Length": "6"}))
        for byte in b"abcdef":
            time.sleep(0.25)
            conn.send(bytes([byte]))
        assert conn.read_response().status == 200


def test_idle_keep_alive_closed_silently(quick):
    with Conn(quick.port) as conn:
        assert conn.request("GET", "/healthz").status == 200
        started = time.monotonic()
        assert conn.wait_closed(scaled(3)) == b""  # no 408, no bytes at all
        elapsed = time.monotonic() - started
        assert 0.4 <= elapsed <= scaled(3), elapsed


def test_connection_that_never_sends_closed_silently(quick):
    with Conn(quick.port) as conn:
        started = time.monotonic()
        assert conn.wait_closed(scaled(3)) == b""
        assert 0.4 <= time.monotonic() - started <= scaled(3)


def test_activity_keeps_a_connection_alive(quick):
    with Conn(quick.port) as conn:
        for _ in range(6):
            assert conn.request("GET", "/healthz").status == 200
            time.sleep(0.25)
        assert conn.request("GET", "/healthz").status == 200


def test_empty_lines_do_not_extend_the_idle_deadline(quick):
    """Regression (found by this suite, fixed in src/): bytes that do not start a request (the empty lines llhttp skips before a
    request line) re-arm the idle timer on every read, so a client sending "\\r\\n"
    every 200 ms holds a connection forever past both the idle and the header
    timeout (slowloris without ever sending a header byte).
    Cause: src/http/server.c conn_process() calls conn_set_phase(IDLE) on each
    REQUEST_NEED_MORE while the parser is still idle, and conn_set_phase() restarts
    the timer for any phase but HEAD. Fix: do not re-arm when the phase is
    unchanged (IDLE too), or switch to the HEAD deadline on the first byte read."""
    with Conn(quick.port) as conn:
        started = time.monotonic()
        closed = False
        while time.monotonic() - started < scaled(3):
            try:
                conn.send(b"\r\n")
            except OSError:
                closed = True
                break
            if not conn.is_open_after(0.2):
                closed = True
                break
        assert closed, "connection still open after %.1fs of empty lines" % (
            time.monotonic() - started)


def metric(server, name):
    with Conn(server.port) as conn:
        text = conn.request("GET", "/metrics").body.decode()
    for line in text.splitlines():
        if line.startswith(name + " "):
            return int(line.split()[1])
    raise AssertionError("no %s in /metrics:\n%s" % (name, text))


def test_client_that_never_reads_is_cut_off(quick):
    """A client pipelining requests without reading the responses stalls the
    server's writes; the connection is closed after the idle timeout instead of
    being kept (and its responses buffered) forever."""
    baseline_sockets = quick.socket_count()
    before = metric(quick, "docket_http_timeouts_total")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", quick.port))
    burst = build_request("GET", "/") * 20000

    def send():
        try:
            sock.sendall(burst)
        except OSError:
            pass

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    try:
        time.sleep(0.3)
        assert quick.socket_count() > baseline_sockets  # the stalled connection is open
        deadline = time.monotonic() + scaled(6)
        while quick.socket_count() > baseline_sockets and time.monotonic() < deadline:
            time.sleep(0.05)
        # (metric() opens a connection of its own: count the sockets first.)
        assert quick.socket_count() <= baseline_sockets
        assert metric(quick, "docket_http_timeouts_total") > before
    finally:
        sock.close()
        sender.join(5)
