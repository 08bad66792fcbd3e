"""Proves the server survives hostile and broken clients: a few hundred random and
mutated byte buffers on fresh connections, clients that vanish mid-request,
mid-body or mid-response (including with a reset), and it still answers
/healthz afterwards with the process alive (the harness then checks a clean exit
and no sanitizer report)."""
import random
import socket
import struct
import threading

from conftest import scaled
from httpio import Conn, build_request

SEED = 20261123

TEMPLATES = [
    build_request("GET", "/healthz"),
    build_request("POST", "/healthz", {"Transfer-Encoding": "chunked"}) + b"5\r\nhello\r\n0\r\n\r\n",
    build_request("POST", "/readyz", {"Expect": "100-continue"}, body=b"0123456789"),
    build_request("GET", "/app.js", {"If-None-Match": '"abc"', "Connection": "close"}),
    b"GET /healthz HTTP/1.0\r\n\r\n" + build_request("HEAD", "/"),
]


def mutate(rng, data):
    data = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        choice = rng.random()
        position = rng.randrange(len(data) + 1)
        if choice < 0.4 and data:
            data[min(position, len(data) - 1)] = rng.randrange(256)
        elif choice < 0.6:
            data[position:position] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        elif choice < 0.8 and data:
            del data[position:position + rng.randint(1, 8)]
        else:
            data[position:position] = rng.choice([b"\r\n", b"\n", b":", b" ", b"\x00",
                                                  b"Content-Length: 9999999999999\r\n",
                                                  b"Transfer-Encoding: chunked\r\n",
                                                  b"ffffffff\r\n", b"%", b"\xff" * 64])
    return bytes(data)


def buffers(rng, count):
    for index in range(count):
        if index % 3 == 0:
            yield bytes(rng.randrange(256) for _ in range(rng.randint(1, 2048)))
        else:
            yield mutate(rng, rng.choice(TEMPLATES))


def fire(port, data, rng):
    """Sends `data` on a fresh connection, then half-closes, reads to the end or
    resets; never waits on the server's timeouts."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=scaled(5))
    try:
        sock.sendall(data)
        if rng.random() < 0.25:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return  # reset right away
        sock.shutdown(socket.SHUT_WR)
        while sock.recv(65536):
            pass
    except socket.timeout:
        raise AssertionError("no close within %.0fs after the client's EOF for %r"
                             % (scaled(5), data[:100]))
    except OSError:
        pass
    finally:
        sock.close()


def test_random_and_mutated_garbage(start_server):
    server = start_server("--http-max-body-bytes", 4096, "--http-header-timeout-ms", 1000,
                          "--http-body-timeout-ms", 1000)
    rng = random.Random(SEED)
    items = list(buffers(rng, 400))
    errors = []

    def worker(offset):
        local = random.Random(SEED + offset)
        for data in items[offset::4]:
            try:
                fire(server.port, data, local)
            except Exception as error:  # noqa: BLE001
                errors.append(repr(error))

    threads = [threading.Thread(target=worker, args=(offset,), daemon=True)
               for offset in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(scaled(60))
        assert not thread.is_alive()
    assert not errors, errors[:5]
    assert server.alive()
    with Conn(server.port) as conn:
        assert conn.request("GET", "/healthz").status == 200


def test_garbage_on_a_keep_alive_connection_after_good_requests(server):
    rng = random.Random(SEED + 1)
    for _ in range(30):
        with Conn(server.port) as conn:
            assert conn.request("GET", "/healthz").status == 200
            conn.send(bytes(rng.randrange(256) for _ in range(rng.randint(1, 512))))
            try:
                conn.wait_closed(scaled(3))
            except AssertionError:
                pass  # a prefix of a valid request may wait for more bytes
    with Conn(server.port) as conn:
        assert conn.request("GET", "/healthz").status == 200


def reset_close(conn):
    conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    conn.close()


def test_clients_vanishing_mid_request_and_mid_response(server):
    partials = [
        b"GET /heal",
        b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: ",
        build_request("POST", "/healthz", {"Content-Length": "1000"}) + b"x" * 10,
        build_request("POST", "/healthz", {"Transfer-Encoding": "chunked"}) + b"10\r\nabc",
        build_request("POST", "/healthz", {"Expect": "100-continue", "Content-Length": "5"}),
    ]
    for round_ in range(10):
        for data in partials:
            conn = Conn(server.port)
            conn.send(data)
            if round_ % 2:
                reset_close(conn)
            else:
                conn.close()
    # Mid-response: pipeline many requests for the UI and go away unread.
    burst = build_request("GET", "/") * 2000
    for round_ in range(10):
        conn = Conn(server.port)
        try:
            conn.send(burst)
        except OSError:
            pass
        if round_ % 2:
            reset_close(conn)
        else:
            conn.close()
    # Read part of a response, then reset.
    for _ in range(10):
        conn = Conn(server.port)
        conn.send(build_request("GET", "/app.js") * 50)
        conn.sock.recv(100)
        reset_close(conn)
    assert server.alive()
    with Conn(server.port) as conn:
        for _ in range(5):
            assert conn.request("GET", "/healthz").status == 200


def test_many_short_connections(server):
    for _ in range(300):
        with Conn(server.port) as conn:
            conn.send(build_request("GET", "/healthz", {"Connection": "close"}))
            assert conn.read_response().status == 200
    with Conn(server.port) as conn:
        assert conn.request("GET", "/healthz").status == 200
