"""Proves systemd readiness notification: with NOTIFY_SOCKET set (a path or an
abstract '@name'), docket sends READY=1 with STATUS after it listens and
STOPPING=1 on SIGTERM, one datagram each."""
import os
import signal
import socket

import pytest

from conftest import scaled


def receive(sock, timeout):
    sock.settimeout(timeout)
    return sock.recv(4096).decode()


def check_notifications(start_server, sock, address):
    server = start_server(env={"NOTIFY_SOCKET": address})
    ready = receive(sock, scaled(5))
    fields = ready.split("\n")
    assert "READY=1" in fields, ready
    assert any(field.startswith("STATUS=") and len(field) > 7 for field in fields), ready
    # READY=1 comes after the listener is up.
    assert "msg=listening" in server.stderr
    with pytest.raises(socket.timeout):
        receive(sock, 0.2)  # nothing else while running
    server.signal(signal.SIGTERM)
    stopping = receive(sock, scaled(5))
    assert stopping.split("\n")[0] == "STOPPING=1", stopping
    assert server.wait(scaled(5)) == 0


def test_notify_socket_path(start_server, tmp_path):
    path = str(tmp_path / "notify.sock")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        check_notifications(start_server, sock, path)


def test_notify_abstract_socket(start_server):
    name = "docket-test-notify-%d-%s" % (os.getpid(), os.urandom(4).hex())
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        check_notifications(start_server, sock, "@" + name)


def test_notify_socket_missing_is_harmless(start_server, tmp_path):
    server = start_server(env={"NOTIFY_SOCKET": str(tmp_path / "nobody-listens.sock")})
    assert server.alive()
    assert server.stop() == 0
