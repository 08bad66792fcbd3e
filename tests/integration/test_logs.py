"""Proves that port 0 binds a free port which is logged, and that every log line
on stderr is logfmt with time=, level=, component= and msg= first."""
import re
import socket

import requests

from conftest import run_cli

LOGFMT_RE = re.compile(
    r'^time=\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z level=(debug|info|warn|error) '
    r'component=[a-z_]+ msg=("(?:[^"\\]|\\.)*"|[^\s"=]+)'
    r'( [a-z_.]+=("(?:[^"\\]|\\.)*"|[^\s"]*))*$')


def test_port_zero_picks_a_free_port_and_logs_it(start_server):
    first = start_server()
    second = start_server()
    assert first.port != 0 and second.port != 0 and first.port != second.port
    assert first.host == "127.0.0.1" and first.scheme == "http"
    for server in (first, second):
        # The logged port is really the one being served.
        assert requests.get(server.base_url + "/healthz", timeout=10).status_code == 200
        with socket.create_connection(("127.0.0.1", server.port), timeout=5):
            pass


def test_log_lines_are_logfmt(start_server):
    server = start_server()
    version = run_cli(["--version"]).stdout.split()[1]
    ready = server.wait_for_log(r"msg=ready ")
    line = ready.string
    assert "version=%s" % version in line
    assert "pid=%d" % server.pid in line
    assert "data_dir=%s" % server.data_dir in line
    requests.get(server.base_url + "/nope", timeout=10)
    assert server.stop() == 0
    lines = server.stderr.splitlines()
    assert len(lines) >= 4
    for line in lines:
        assert LOGFMT_RE.match(line), "not logfmt: %r" % line
    assert any(" msg=stopping " in line and "signal=SIGTERM" in line for line in lines)
    assert any(" msg=stopped" in line for line in lines)


def test_debug_log_level_still_logfmt(start_server):
    server = start_server("--log-level", "debug")
    requests.get(server.base_url + "/healthz", timeout=10)
    assert server.stop() == 0
    for line in server.stderr.splitlines():
        assert LOGFMT_RE.match(line), "not logfmt: %r" % line
