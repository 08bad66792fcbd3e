"""Proves the embedded web UI and the generic HTTP answers: content types, ETag and
If-None-Match -> 304 without a body, HEAD with Content-Length but no body, 404
and 405 as application/problem+json (405 with Allow)."""
import requests

from httpio import Conn, assert_problem


def test_assets_with_content_types(server):
    expected = {"/": "text/html", "/index.html": "text/html", "/app.js": "text/javascript",
                "/app.css": "text/css"}
    bodies = {}
    for path, content_type in expected.items():
        response = requests.get(server.base_url + path, timeout=10)
        assert response.status_code == 200, path
        assert response.headers["Content-Type"].split(";")[0] == content_type, path
        assert response.headers["ETag"].startswith('"') and response.headers["ETag"].endswith('"')
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        assert int(response.headers["Content-Length"]) == len(response.content) > 0
        bodies[path] = response
    assert "Docket" in bodies["/"].text
    assert bodies["/"].content == bodies["/index.html"].content
    assert bodies["/"].headers["ETag"] == bodies["/index.html"].headers["ETag"]
    assert len({bodies[p].headers["ETag"] for p in ("/", "/app.js", "/app.css")}) == 3
    # The query string is not part of the asset path.
    assert requests.get(server.base_url + "/app.js?v=2", timeout=10).content == \
        bodies["/app.js"].content


def test_if_none_match_gives_304_without_body(server):
    with Conn(server.port) as conn:
        first = conn.request("GET", "/app.css")
        etag = first.header("etag")
        assert first.status == 200 and etag
        for value in (etag, "W/" + etag, '"other", ' + etag):
            cached = conn.request("GET", "/app.css", headers={"If-None-Match": value})
            assert cached.status == 304, value
            assert cached.body == b""
            assert cached.header("etag") == etag
            assert cached.header("content-length") in (None, "0")
        changed = conn.request("GET", "/app.css", headers={"If-None-Match": '"0000"'})
        assert changed.status == 200 and changed.body == first.body
        # Still in step after the bodiless 304s: the next response is intact.
        assert conn.request("GET", "/healthz").status == 200
        assert conn.buffer == b""


def test_head_has_length_but_no_body(server):
    with Conn(server.port) as conn:
        full = conn.request("GET", "/")
        head = conn.request("HEAD", "/")
        assert head.status == 200
        assert head.header("content-length") == str(len(full.body))
        assert head.header("content-type") == full.header("content-type")
        assert head.body == b""
        health = conn.request("HEAD", "/healthz")
        assert health.status == 200 and int(health.header("content-length")) > 0
        missing = conn.request("HEAD", "/nope")
        assert missing.status == 404 and int(missing.header("content-length")) > 0
        # Any body bytes after a HEAD answer would corrupt this next response.
        after = conn.request("GET", "/healthz")
        assert after.status == 200 and after.json()["status"] == "ok"
        assert conn.is_open_after(0.2), "stray bytes after the last response: %r" % conn.buffer


def test_unknown_path_404_problem(server):
    with Conn(server.port) as conn:
        for path in ("/nope", "/healthz/extra", "/../etc/passwd", "/app.js/", "/%2e%2e/x"):
            response = conn.request("GET", path)
            document = assert_problem(response, 404)
            assert document["title"] == "Not Found"
        # The connection survives a 404.
        assert conn.request("GET", "/healthz").status == 200


def test_wrong_method_405_with_allow(server):
    with Conn(server.port) as conn:
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            response = conn.request(method, "/healthz", body=b"{}")
            assert_problem(response, 405)
            assert response.header("allow") == "GET, HEAD"
        response = conn.request("POST", "/readyz")
        assert_problem(response, 405)
        assert response.header("allow") == "GET, HEAD"
        for path in ("/", "/app.js"):  # embedded assets are read-only too
            response = conn.request("DELETE", path)
            assert_problem(response, 405)
            assert response.header("allow") == "GET, HEAD"
        assert_problem(conn.request("POST", "/no-such-asset"), 404)
        assert conn.request("GET", "/healthz").status == 200
