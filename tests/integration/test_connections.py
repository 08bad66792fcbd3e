"""Proves connection handling: keep-alive, pipelining answered in order (including
past the write back-pressure limit), HTTP/1.0 close and keep-alive, Connection:
close honoured, chunked request bodies parsed, and Expect: 100-continue."""
import threading

from httpio import Conn, build_request, assert_problem


def test_keep_alive_many_requests_one_socket(server):
    with Conn(server.port) as conn:
        for index in range(200):
            response = conn.request("GET", "/healthz" if index % 2 else "/readyz")
            assert response.status == 200
            assert not response.closes
        assert conn.is_open_after(0.1)


def test_pipelining_50_requests_in_one_write(server):
    paths = ["/healthz" if index % 2 == 0 else "/nope-%d" % index for index in range(50)]
    with Conn(server.port) as conn:
        conn.send(b"".join(build_request("GET", path) for path in paths))
        for index, path in enumerate(paths):
            response = conn.read_response()
            if path == "/healthz":
                assert response.status == 200, (index, response)
                assert response.json()["status"] == "ok"
            else:
                assert_problem(response, 404)
        assert conn.is_open_after(0.2) and conn.buffer == b""
        assert conn.request("GET", "/healthz").status == 200


def test_pipelining_mixed_methods_in_order(server):
    requests_ = [("GET", "/healthz"), ("HEAD", "/"), ("POST", "/healthz"), ("GET", "/app.js"),
                 ("HEAD", "/nope"), ("GET", "/readyz")]
    with Conn(server.port) as conn:
        conn.send(b"".join(build_request(m, p) for m, p in requests_))
        statuses = [conn.read_response(head_request=(m == "HEAD")).status for m, p in requests_]
        assert statuses == [200, 200, 405, 200, 404, 200]


def test_deep_pipeline_with_backpressure(server):
    """3000 pipelined GET / (> 2 MiB of responses, > 64 KiB of requests) while the
    client reads slowly at first: all answered, in order, nothing lost."""
    count = 3000
    request = build_request("GET", "/")
    with Conn(server.port, timeout=30) as conn:
        sender = threading.Thread(target=lambda: conn.send(request * count), daemon=True)
        sender.start()
        sender.join(1.0)  # the server must stop reading rather than buffer everything
        first = conn.read_response(timeout=30)
        assert first.status == 200
        for index in range(1, count):
            response = conn.read_response(timeout=30)
            assert response.status == 200 and response.body == first.body, index
        sender.join(30)
        assert not sender.is_alive()
        assert conn.request("GET", "/healthz").status == 200


def test_http10_closes_after_response(server):
    with Conn(server.port) as conn:
        conn.send(b"GET /healthz HTTP/1.0\r\n\r\n")
        response = conn.read_response()
        assert response.version == "HTTP/1.0" and response.status == 200
        assert response.closes
        assert conn.wait_closed(5) == b""


def test_http10_keep_alive_when_asked(server):
    with Conn(server.port) as conn:
        for _ in range(3):
            conn.send(b"GET /healthz HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            response = conn.read_response()
            assert response.version == "HTTP/1.0" and response.status == 200
            assert response.header("connection").lower() == "keep-alive"
        assert conn.is_open_after(0.2)


def test_connection_close_honoured(server):
    with Conn(server.port) as conn:
        assert conn.request("GET", "/healthz").status == 200
        # A request pipelined behind "Connection: close" must not be answered.
        conn.send(build_request("GET", "/healthz", {"Connection": "close"}) +
                  build_request("GET", "/readyz"))
        response = conn.read_response()
        assert response.status == 200 and response.closes
        assert conn.wait_closed(5) == b""


def test_keep_alive_survives_client_errors_in_routing(server):
    with Conn(server.port) as conn:
        assert conn.request("GET", "/nope").status == 404
        assert conn.request("DELETE", "/healthz").status == 405
        assert conn.request("GET", "/healthz").status == 200


def test_chunked_request_body_then_pipelined_request(server):
    body = b"5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n"
    with Conn(server.port) as conn:
        conn.send(build_request("POST", "/healthz", {"Transfer-Encoding": "chunked"}) + body +
                  build_request("GET", "/healthz") +
                  build_request("GET", "/readyz", {"Transfer-Encoding": "chunked"}) +
                  b"3\r\nabc\r\n0\r\n\r\n" +
                  build_request("GET", "/nope"))
        assert_problem(conn.read_response(), 405)
        assert conn.read_response().json()["status"] == "ok"
        assert conn.read_response().json()["status"] == "ready"
        assert_problem(conn.read_response(), 404)


def test_chunked_body_sent_in_pieces(server):
    with Conn(server.port) as conn:
        conn.send(build_request("GET", "/healthz", {"Transfer-Encoding": "chunked"}))
        for piece in (b"4\r\n", b"ab", b"cd\r\n", b"0\r\n", b"\r\n"):
            assert conn.is_open_after(0.05) and conn.buffer == b""
            conn.send(piece)
        assert conn.read_response().status == 200


def test_content_length_body_then_pipelined_request(server):
    with Conn(server.port) as conn:
        conn.send(build_request("GET", "/healthz", body=b"x" * 5000) +
                  build_request("GET", "/readyz"))
        assert conn.read_response().status == 200
        assert conn.read_response().json()["status"] == "ready"


def test_expect_100_continue(server):
    with Conn(server.port) as conn:
        conn.send(build_request("POST", "/healthz", {"Expect": "100-continue",
                                                      "Content-Length": "11"}))
        interim = conn.read_response()
        assert interim.status == 100 and interim.raw_head == b"HTTP/1.1 100 Continue\r\n\r\n"
        assert conn.is_open_after(0.2) and conn.buffer == b""  # nothing more until the body
        conn.send(b"hello world")
        assert_problem(conn.read_response(), 405)
        # Keep-alive continues; a request without Expect gets no 100.
        response = conn.request("GET", "/healthz")
        assert response.status == 200


def test_expect_100_continue_chunked(server):
    with Conn(server.port) as conn:
        conn.send(build_request("GET", "/healthz", {"Expect": "100-Continue",
                                                     "Transfer-Encoding": "chunked"}))
        assert conn.read_response().status == 100
        conn.send(b"2\r\nhi\r\n0\r\n\r\n")
        assert conn.read_response().status == 200


def test_upgrade_request_is_answered_and_closed(server):
    with Conn(server.port) as conn:
        conn.send(build_request("GET", "/healthz", {"Connection": "Upgrade",
                                                     "Upgrade": "websocket"}))
        response = conn.read_response()
        assert response.status == 200 and response.closes
        conn.wait_closed(5)
