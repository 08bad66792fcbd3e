"""Proves the request limits answer with the exact status and a problem+json body
and then close the connection: URL > 8 KiB -> 414, headers > 16 KiB or > 100
fields -> 431, body over http.max_body_bytes -> 413 (Content-Length or chunked;
received even while the client keeps sending: lingering close), and malformed
requests -> 400. Values at the limits themselves are accepted."""
import threading
import time

import pytest

from httpio import Conn, build_request, assert_problem

BODY_LIMIT = 1000


@pytest.fixture
def limited(start_server):
    return start_server("--http-max-body-bytes", str(BODY_LIMIT))


def expect_error_and_close(server, data, status):
    with Conn(server.port) as conn:
        conn.send(data)
        response = conn.read_response()
        document = assert_problem(response, status)
        assert response.closes, response
        assert conn.wait_closed(5) == b""
        return document


def test_url_over_8k_is_414(limited):
    path = "/" + "a" * 8192  # 8193 bytes
    document = expect_error_and_close(limited, build_request("GET", path), 414)
    assert document["title"] == "URI Too Long"


def test_url_of_8k_is_accepted(limited):
    with Conn(limited.port) as conn:
        assert conn.request("GET", "/" + "a" * 8191).status == 404
        assert conn.request("GET", "/healthz?" + "q" * 8183).status == 200


def test_header_over_16k_is_431(limited):
    expect_error_and_close(limited, build_request("GET", "/healthz",
                                                  {"X-Big": "v" * (17 * 1024)}), 431)


def test_headers_totalling_over_16k_is_431(limited):
    headers = [("X-Part-%02d" % index, "v" * 1000) for index in range(17)]
    expect_error_and_close(limited, build_request("GET", "/healthz", headers), 431)


def test_large_header_under_16k_is_accepted(limited):
    with Conn(limited.port) as conn:
        assert conn.request("GET", "/healthz", {"X-Big": "v" * 15000}).status == 200


def test_101_header_fields_is_431(limited):
    headers = [("X-H%d" % index, "1") for index in range(100)]  # + Host = 101
    document = expect_error_and_close(limited, build_request("GET", "/healthz", headers), 431)
    assert "header" in document["detail"]


def test_100_header_fields_is_accepted(limited):
    headers = [("X-H%d" % index, "1") for index in range(99)]  # + Host = 100
    with Conn(limited.port) as conn:
        assert conn.request("GET", "/healthz", headers).status == 200


def test_content_length_at_limit_is_accepted(limited):
    with Conn(limited.port) as conn:
        assert conn.request("GET", "/healthz", body=b"x" * BODY_LIMIT).status == 200
        assert conn.request("POST", "/healthz", body=b"x" * BODY_LIMIT).status == 405


def test_content_length_over_limit_is_413(limited):
    data = build_request("POST", "/healthz", {"Content-Length": str(BODY_LIMIT + 1)})
    document = expect_error_and_close(limited, data, 413)
    assert document["title"] == "Content Too Large"


def test_413_arrives_while_client_keeps_sending_body(limited):
    """The client streams a 4 MiB body after an over-limit Content-Length; it must
    read the 413, not lose it to a connection reset."""
    total = 4 * 1024 * 1024
    with Conn(limited.port, timeout=15) as conn:
        conn.send(build_request("POST", "/healthz", {"Content-Length": str(total)}))
        sent = [0]

        def stream():
            chunk = b"x" * 65536
            try:
                while sent[0] < total:
                    conn.sock.sendall(chunk)
                    sent[0] += len(chunk)
            except OSError:
                pass

        sender = threading.Thread(target=stream, daemon=True)
        sender.start()
        time.sleep(0.3)  # the body is flowing before the client looks at the answer
        response = conn.read_response()
        assert_problem(response, 413)
        assert response.closes
        sender.join(15)
        assert sent[0] > 0


def test_chunked_body_over_limit_is_413(limited):
    chunk = b"%x\r\n%s\r\n" % (600, b"y" * 600)
    data = build_request("POST", "/healthz", {"Transfer-Encoding": "chunked"}) + chunk * 2 + \
        b"0\r\n\r\n"
    expect_error_and_close(limited, data, 413)


def test_chunked_body_at_limit_is_accepted(limited):
    chunk = b"%x\r\n%s\r\n" % (500, b"y" * 500)
    with Conn(limited.port) as conn:
        conn.send(build_request("GET", "/healthz", {"Transfer-Encoding": "chunked"}) +
                  chunk * 2 + b"0\r\n\r\n")
        assert conn.read_response().status == 200


def test_expect_continue_over_limit_gets_413_without_100(limited):
    data = build_request("POST", "/healthz", {"Expect": "100-continue",
                                              "Content-Length": str(BODY_LIMIT + 1)})
    with Conn(limited.port) as conn:
        conn.send(data)
        response = conn.read_response()
        assert_problem(response, 413)  # not 100 Continue first
        assert conn.wait_closed(5) == b""


MALFORMED = {
    "request line without version or method": b"GARBAGE\r\n\r\n",
    "lowercase method": b"get /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    "bare LF line endings": b"GET /healthz HTTP/1.1\nHost: x\n\n",
    "bare LF after a header": b"GET /healthz HTTP/1.1\r\nHost: x\n\r\n",
    "space before colon": b"GET /healthz HTTP/1.1\r\nHost : x\r\n\r\n",
    "obsolete line folding": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-A: 1\r\n 2\r\n\r\n",
    "duplicate Content-Length": b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                                b"Content-Length: 1\r\n\r\nx",
    "Content-Length with Transfer-Encoding": b"POST /healthz HTTP/1.1\r\nHost: x\r\n"
                                             b"Content-Length: 5\r\nTransfer-Encoding: chunked"
                                             b"\r\n\r\n0\r\n\r\n",
    "non-numeric Content-Length": b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 1x"
                                  b"\r\n\r\n",
    "Transfer-Encoding without chunked": b"POST /healthz HTTP/1.1\r\nHost: x\r\n"
                                         b"Transfer-Encoding: gzip\r\n\r\n",
    "bad chunk size": b"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                      b"zz\r\n",
    "control byte in URL": b"GET /he\x01lthz HTTP/1.1\r\nHost: x\r\n\r\n",
    "NUL in header value": b"GET /healthz HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n",
    "unknown HTTP version": b"GET /healthz HTTP/1.2\r\nHost: x\r\n\r\n",
    "HTTP/2 preface": b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_request_is_400(limited, case):
    document = expect_error_and_close(limited, MALFORMED[case], 400)
    assert document["title"] == "Bad Request"


def test_400_after_good_pipelined_requests(limited):
    """Earlier pipelined requests are answered before the 400 for a bad one."""
    with Conn(limited.port) as conn:
        conn.send(build_request("GET", "/healthz") + build_request("GET", "/readyz") +
                  b"GET /x HTTP/1.1\r\nHost : x\r\n\r\n" + build_request("GET", "/healthz"))
        assert conn.read_response().status == 200
        assert conn.read_response().status == 200
        assert_problem(conn.read_response(), 400)
        assert conn.wait_closed(5) == b""


def test_http_2_0_request_line_is_505(limited):
    """Regression (found by this suite, fixed in src/): a request line claiming HTTP/2.0 is accepted and answered as if it were
    HTTP/1.0 (status line "HTTP/1.0 200 OK"). llhttp accepts major version 2, and
    src/http/request.c request_on_headers_complete() keeps only http_minor.
    Expected: 505 HTTP Version Not Supported (RFC 9110 15.6.6)."""
    with Conn(limited.port) as conn:
        conn.send(b"GET /healthz HTTP/2.0\r\nHost: x\r\n\r\n")
        response = conn.read_response()
        assert response.status == 505, response


HOST_RULES = {
    "HTTP/1.1 without Host": (b"GET /healthz HTTP/1.1\r\n\r\n", 400),
    "two Host headers": (b"GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    "no version (HTTP/0.9 shape)": (b"GET /healthz\r\n\r\n", 505),
}


@pytest.mark.parametrize("case", sorted(HOST_RULES))
def test_host_and_version_rules(limited, case):
    """RFC 9112 3.2: HTTP/1.1 needs exactly one Host; a request without a version is refused."""
    request, status = HOST_RULES[case]
    expect_error_and_close(limited, request, status)


def test_http_1_0_without_host_is_served(limited):
    with Conn(limited.port) as conn:
        conn.send(b"GET /healthz HTTP/1.0\r\n\r\n")
        assert conn.read_response().status == 200


def test_absolute_form_target_is_served(limited):
    """RFC 9112 3.2.2: servers accept the absolute form of the request target."""
    with Conn(limited.port) as conn:
        conn.send(b"GET http://example.test/healthz HTTP/1.1\r\nHost: example.test\r\n\r\n")
        response = conn.read_response()
        assert response.status == 200, response
