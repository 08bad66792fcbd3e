"""Proves graceful shutdown: SIGTERM/SIGINT when idle exit 0 promptly with
msg=stopping and msg=stopped; in-flight requests finish with Connection: close
while new connections are refused; a request that never completes is cut at
shutdown_grace_ms; a second signal closes everything at once; and under load
every response a client receives is complete and valid."""
import signal
import socket
import threading
import time

import pytest

from conftest import scaled
from httpio import Conn, ResponseError, assert_problem, build_request


def assert_refused(port):
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


def stop_logged(server, signal_name):
    lines = server.stderr.splitlines()
    stopping = [i for i, line in enumerate(lines) if " msg=stopping " in line]
    stopped = [i for i, line in enumerate(lines) if " msg=stopped" in line]
    assert stopping and stopped and stopping[0] < stopped[-1], server.stderr
    assert "signal=%s" % signal_name in lines[stopping[0]]


@pytest.mark.parametrize("signal_number,name", [(signal.SIGTERM, "SIGTERM"),
                                                (signal.SIGINT, "SIGINT")])
def test_signal_when_idle_exits_0_promptly(start_server, signal_number, name):
    server = start_server()
    with Conn(server.port) as conn:
        assert conn.request("GET", "/healthz").status == 200
        started = time.monotonic()
        server.signal(signal_number)
        assert server.wait(scaled(3)) == 0
        assert time.monotonic() - started < scaled(1.5)
        # The idle keep-alive connection was closed, not left to time out.
        assert conn.wait_closed(2) == b""
    stop_logged(server, name)
    assert_refused(server.port)


def test_in_flight_requests_finish_with_connection_close(start_server):
    server = start_server("--shutdown-grace-ms", 5000)
    health, ready, idle = Conn(server.port), Conn(server.port), Conn(server.port)
    try:
        assert idle.request("GET", "/healthz").status == 200
        health.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        ready.send(build_request("GET", "/readyz", {"Transfer-Encoding": "chunked"}) + b"1\r\n")
        time.sleep(0.2)  # the server has read the partial requests
        started = time.monotonic()
        server.signal(signal.SIGTERM)
        server.wait_for_log(r" msg=stopping ")
        assert_refused(server.port)          # no new connections
        assert idle.wait_closed(2) == b""     # idle ones close at once
        assert server.alive()                 # but it waits for the two in flight
        health.send(b"\r\n")
        response = health.read_response()
        assert response.status == 200 and response.closes
        assert health.wait_closed(3) == b""
        health.close()
        assert server.alive()
        ready.send(b"x\r\n0\r\n\r\n")
        response = ready.read_response()
        document = assert_problem(response, 503)  # not ready while stopping
        assert "shutting down" in document["detail"]
        assert response.closes
        assert ready.wait_closed(3) == b""
        ready.close()
        assert server.wait(scaled(3)) == 0
        assert time.monotonic() - started < scaled(1.5)  # did not wait for the 5 s grace
    finally:
        for conn in (health, ready, idle):
            conn.close()
    assert "grace period over" not in server.stderr
    stop_logged(server, "SIGTERM")


def test_stuck_request_is_cut_at_the_grace_period(start_server):
    server = start_server("--shutdown-grace-ms", 1000)
    with Conn(server.port) as conn:
        conn.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Never: end")
        time.sleep(0.2)
        started = time.monotonic()
        server.signal(signal.SIGTERM)
        assert server.wait(scaled(5)) == 0
        elapsed = time.monotonic() - started
        assert 0.9 <= elapsed <= scaled(2.5), elapsed
        conn.wait_closed(2)
    assert "grace period over" in server.stderr
    stop_logged(server, "SIGTERM")


def test_second_signal_closes_at_once(start_server):
    server = start_server("--shutdown-grace-ms", 60000)
    with Conn(server.port) as conn:
        conn.send(b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
        time.sleep(0.2)
        server.signal(signal.SIGTERM)
        server.wait_for_log(r" msg=stopping ")
        time.sleep(0.3)
        assert server.alive()
        started = time.monotonic()
        server.signal(signal.SIGTERM)
        assert server.wait(scaled(3)) == 0
        assert time.monotonic() - started < scaled(1.5)
        conn.wait_closed(2)
    assert "second stop signal" in server.stderr


def hammer(port, keep_alive, stop, results):
    """Sends GET /healthz until the server goes away; records every outcome."""
    conn = None
    while True:
        if conn is None:
            if stop.is_set():
                return
            try:
                conn = Conn(port, timeout=scaled(10))
            except OSError:
                results["refused"] += 1
                return
        headers = {} if keep_alive else {"Connection": "close"}
        try:
            conn.send(build_request("GET", "/healthz", headers))
            response = conn.read_response()
        except (EOFError, ConnectionResetError, BrokenPipeError):
            results["closed_between_requests"] += 1
            conn.close()
            conn = None
            continue
        except ResponseError as error:
            results["broken"].append(repr(error))
            return
        except socket.timeout:
            results["broken"].append("no response within the timeout")
            return
        if response.status != 200 or response.json().get("status") != "ok":
            results["broken"].append(repr(response))
            return
        results["ok"] += 1
        if stop.is_set():
            results["after_signal"] += 1
        if response.closes:
            results["with_close"] += 1
            try:
                leftover = conn.wait_closed(scaled(3))
            except AssertionError as error:
                results["broken"].append("open after Connection: close: %s" % error)
                return
            if leftover:
                results["broken"].append("bytes after Connection: close: %r" % leftover)
            conn.close()
            conn = None


def test_sigterm_under_load(start_server):
    server = start_server("--shutdown-grace-ms", 3000)
    stop = threading.Event()
    results = {"ok": 0, "after_signal": 0, "with_close": 0, "closed_between_requests": 0,
               "refused": 0, "broken": []}
    workers = [threading.Thread(target=hammer, args=(server.port, index < 6, stop, results),
                                daemon=True) for index in range(8)]
    for worker in workers:
        worker.start()
    time.sleep(0.8)
    before = results["ok"]
    stop.set()
    server.signal(signal.SIGTERM)
    assert server.wait(scaled(5)) == 0
    for worker in workers:
        worker.join(scaled(10))
        assert not worker.is_alive()
    assert not results["broken"], results["broken"][:5]
    assert before > 100, results
    assert_refused(server.port)
    stop_logged(server, "SIGTERM")
