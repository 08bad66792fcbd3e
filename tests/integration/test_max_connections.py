"""Proves max_connections: with 5 connections open, the 6th is answered 503
problem+json and closed, and once some close, new connections are served."""
import time

from conftest import scaled
from httpio import Conn, assert_problem


def test_sixth_connection_gets_503_then_capacity_returns(start_server):
    server = start_server("--max-connections", 5)
    held = []
    for _ in range(5):
        conn = Conn(server.port)
        assert conn.request("GET", "/healthz").status == 200  # accepted and counted
        held.append(conn)
    try:
        with Conn(server.port) as extra:
            response = extra.read_response()  # answered without sending anything
            document = assert_problem(response, 503)
            assert "connection" in document["detail"]
            assert response.closes
            assert extra.wait_closed(5) == b""
        with Conn(server.port) as extra:
            extra.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert_problem(extra.read_response(), 503)
        # The held connections still work.
        for conn in held:
            assert conn.request("GET", "/healthz").status == 200
        # Close two; the server notices the EOF and frees their slots.
        for conn in held[:2]:
            conn.close()
        deadline = time.monotonic() + scaled(5)
        served = 0
        while served < 2 and time.monotonic() < deadline:
            conn = Conn(server.port)
            response = conn.request("GET", "/healthz")
            if response.status == 200:
                held.append(conn)
                served += 1
            else:
                conn.close()
                time.sleep(0.05)
        assert served == 2
        # Full again.
        with Conn(server.port) as extra:
            assert_problem(extra.read_response(), 503)
    finally:
        for conn in held:
            conn.close()


def test_rejected_connections_do_not_use_up_slots(start_server):
    server = start_server("--max-connections", 2)
    with Conn(server.port) as first, Conn(server.port) as second:
        assert first.request("GET", "/healthz").status == 200
        assert second.request("GET", "/healthz").status == 200
        for _ in range(20):
            with Conn(server.port) as extra:
                assert extra.read_response().status == 503
    deadline = time.monotonic() + scaled(5)
    while True:
        with Conn(server.port) as conn:
            response = conn.request("GET", "/healthz")
        if response.status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert response.status == 200
