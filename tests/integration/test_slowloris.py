"""Proves a slowloris attack is bounded: 500 loopback connections trickling
header bytes every 100 ms are all answered 408 and closed at the header
deadline, the server's memory stays small, its sockets are released, and
a normal client keeps getting /healthz promptly throughout."""
import socket
import threading
import time

from conftest import SANITIZED, raise_fd_limit, scaled
from httpio import Conn

CONNECTIONS = 500
HEADER_TIMEOUT_MS = 2000
TICK = 0.1


def probe_health(port, stop, latencies, failures):
    while not stop.is_set():
        started = time.monotonic()
        try:
            with Conn(port, timeout=scaled(5)) as conn:
                response = conn.request("GET", "/healthz", {"Connection": "close"})
                if response.status != 200:
                    failures.append(repr(response))
        except Exception as error:  # noqa: BLE001 - any failure is reported
            failures.append(repr(error))
        latencies.append(time.monotonic() - started)
        stop.wait(0.2)


def test_slowloris_is_bounded(start_server):
    limit = raise_fd_limit(CONNECTIONS * 2 + 512)
    assert limit >= CONNECTIONS + 256, "RLIMIT_NOFILE too low for the test: %d" % limit
    server = start_server("--http-header-timeout-ms", HEADER_TIMEOUT_MS)
    baseline_sockets = server.socket_count()
    baseline_rss = server.rss_kib()

    payload = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + b"s" * 1000
    sockets = []
    for _ in range(CONNECTIONS):
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        sock.setblocking(False)
        sockets.append(sock)
    state = [{"sent": 0, "first": None, "closed": None, "received": b""} for _ in sockets]

    stop = threading.Event()
    latencies, failures = [], []
    prober = threading.Thread(target=probe_health, args=(server.port, stop, latencies, failures),
                              daemon=True)
    prober.start()

    peak_rss = baseline_rss
    started = time.monotonic()
    give_up = started + HEADER_TIMEOUT_MS / 1000 + scaled(4)
    try:
        while time.monotonic() < give_up and any(s["closed"] is None for s in state):
            tick = time.monotonic()
            for sock, entry in zip(sockets, state):
                if entry["closed"] is not None:
                    continue
                try:
                    while True:
                        data = sock.recv(65536)
                        if not data:
                            entry["closed"] = time.monotonic()
                            break
                        entry["received"] += data
                except BlockingIOError:
                    pass
                except OSError:
                    entry["closed"] = time.monotonic()
                if entry["closed"] is not None or entry["sent"] >= len(payload):
                    continue
                try:
                    sock.send(payload[entry["sent"]:entry["sent"] + 1])
                    entry["sent"] += 1
                    if entry["first"] is None:
                        entry["first"] = time.monotonic()
                except BlockingIOError:
                    pass
                except OSError:
                    entry["closed"] = time.monotonic()
            peak_rss = max(peak_rss, server.rss_kib())
            time.sleep(max(0.0, TICK - (time.monotonic() - tick)))
    finally:
        stop.set()
        prober.join(10)
        for sock in sockets:
            sock.close()

    still_open = sum(1 for s in state if s["closed"] is None)
    assert still_open == 0, "%d connections outlived the header deadline" % still_open
    deadline = HEADER_TIMEOUT_MS / 1000
    lifetimes = [s["closed"] - s["first"] for s in state]
    assert max(lifetimes) <= deadline + scaled(1.5), max(lifetimes)
    assert min(lifetimes) >= deadline - 0.2, min(lifetimes)
    without_408 = [s["received"][:80] for s in state
                   if not s["received"].startswith(b"HTTP/1.1 408 ")]
    assert not without_408, "%d connections closed without a 408, e.g. %r" % (
        len(without_408), without_408[:3])
    assert max(s["sent"] for s in state) <= deadline / TICK + 10  # they really trickled

    assert not failures, failures[:5]
    assert len(latencies) >= 5
    assert max(latencies) < scaled(1.0), latencies

    growth_mib = (peak_rss - baseline_rss) / 1024
    assert growth_mib < 48, "RSS grew by %.1f MiB" % growth_mib
    if not SANITIZED:
        assert peak_rss / 1024 < 64, "RSS peaked at %.1f MiB" % (peak_rss / 1024)

    # Lingering closes end once the clients are gone: the sockets are released.
    settle = time.monotonic() + scaled(5)
    while server.socket_count() > baseline_sockets and time.monotonic() < settle:
        time.sleep(0.1)
    assert server.socket_count() <= baseline_sockets, (server.socket_count(), baseline_sockets)
    with Conn(server.port) as conn:
        assert conn.request("GET", "/healthz").status == 200
