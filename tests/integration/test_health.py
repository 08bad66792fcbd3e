"""Proves the health endpoints: /healthz is 200 JSON with the version, /readyz is
200 while the data directory is writable and 503 problem+json when it is not
(made read-only for an unprivileged server, removed, or replaced by a file)."""
import os
import shutil
import tempfile

import pytest
import requests

from conftest import run_cli
from httpio import assert_problem

NOBODY = 65534


class _Reply:
    """Adapts a requests response to httpio.assert_problem."""

    def __init__(self, response):
        self.status = response.status_code
        self._response = response

    def header(self, name, default=None):
        return self._response.headers.get(name, default)

    def json(self):
        return self._response.json()


def get(server, path):
    return requests.get(server.base_url + path, timeout=10)


def test_healthz(server):
    version = run_cli(["--version"]).stdout.split()[1]
    response = get(server, "/healthz")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json() == {"status": "ok", "version": version}
    assert response.headers["Cache-Control"] == "no-store"
    assert int(response.headers["Content-Length"]) == len(response.content)
    # A query string does not change the route.
    assert get(server, "/healthz?verbose=1").json()["status"] == "ok"


def test_readyz_ready(server):
    response = get(server, "/readyz")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    body = response.json()
    assert body["status"] == "ready"
    assert body["checks"]["data_dir"] == "ok"


def test_readyz_503_when_data_dir_is_removed_then_recovers(server):
    shutil.rmtree(server.data_dir)
    response = get(server, "/readyz")
    document = assert_problem(_Reply(response), 503)
    assert "data directory" in document["detail"]
    assert get(server, "/healthz").status_code == 200  # liveness is unaffected
    server.data_dir.mkdir(mode=0o700)
    assert get(server, "/readyz").status_code == 200


def test_readyz_503_when_data_dir_is_read_only(start_server):
    """chmod 0500 on the data directory. root bypasses permission bits, so when the
    suite runs as root the server runs as the unprivileged user nobody."""
    popen = {}
    base = tempfile.mkdtemp(prefix="docket-readyz-")
    try:
        os.chmod(base, 0o755)
        data = os.path.join(base, "data")
        os.mkdir(data, 0o700)
        if os.geteuid() == 0:
            os.chown(data, NOBODY, NOBODY)
            popen = {"user": NOBODY, "group": NOBODY, "extra_groups": []}
        server = start_server(data_dir=data, **popen)
        assert get(server, "/readyz").status_code == 200
        os.chmod(data, 0o500)
        response = get(server, "/readyz")
        document = assert_problem(_Reply(response), 503)
        assert "not writable" in document["detail"]
        assert response.headers["Cache-Control"] == "no-store"
        os.chmod(data, 0o700)
        assert get(server, "/readyz").status_code == 200
    finally:
        os.chmod(base, 0o700)
        shutil.rmtree(base, ignore_errors=True)


def test_readyz_503_when_data_dir_is_replaced_by_a_file(server):
    """Regression (found by this suite, fixed in src/): /readyz checks access(data_dir, W_OK) only, which is true for a writable
    regular file (and for root, whatever the permission bits), so a data
    directory replaced by a file still reports ready. Fix in src/server/server.c
    server_data_dir_writable(): stat() that it is a directory, and better, create
    and remove a probe file in it."""
    shutil.rmtree(server.data_dir)
    server.data_dir.write_text("not a directory")
    response = get(server, "/readyz")
    assert response.status_code == 503, response.text


def test_metrics_exposes_counters(server):
    before = get(server, "/metrics")
    assert before.status_code == 200
    assert before.headers["Content-Type"].startswith("text/plain")
    def counter(text, name):
        for line in text.splitlines():
            if line.startswith(name + " "):
                return int(line.split()[1])
        raise AssertionError("no %s in %r" % (name, text))
    requests_before = counter(before.text, "docket_http_requests_total")
    for _ in range(3):
        get(server, "/healthz")
    after = get(server, "/metrics").text
    assert counter(after, "docket_http_requests_total") >= requests_before + 4
