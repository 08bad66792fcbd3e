"""Harness for the black-box tests: starts the real `docket` binary (DOCKET_BIN,
default zig-out/bin/docket) on a free port with a fresh data directory, learns
the port from its log, keeps reading its stderr, and on teardown stops it with
SIGTERM, requires exit status 0 and fails on any sanitizer report."""
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

REPO = Path(__file__).resolve().parents[2]
DOCKET_BIN = Path(os.environ.get("DOCKET_BIN") or REPO / "zig-out" / "bin" / "docket")
if not DOCKET_BIN.is_absolute():
    DOCKET_BIN = (Path.cwd() / DOCKET_BIN).resolve()

SANITIZER_PATTERNS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                      "SUMMARY: UndefinedBehaviorSanitizer", "SUMMARY: AddressSanitizer")

LISTENING_RE = re.compile(
    r"^time=\S+ level=info component=server msg=listening address=(\S+):(\d+) scheme=(https?)$")


def _binary_is_sanitized():
    try:
        with open(DOCKET_BIN, "rb") as binary:
            return b"AddressSanitizer" in binary.read()
    except OSError:
        return False


SANITIZED = _binary_is_sanitized()
# Sanitizer builds are several times slower: stretch the patience (never the
# server's own timeouts, which the tests set explicitly).
SLOW = 3.0 if SANITIZED else 1.0


def scaled(seconds):
    return seconds * SLOW


def sanitizer_reports(text):
    return [line for line in text.splitlines() if any(p in line for p in SANITIZER_PATTERNS)]


def clean_environment(extra=None):
    """The caller's environment minus DOCKET_* (the binary rejects unknown
    ones, and CI sets DOCKET_BIN) and NOTIFY_SOCKET, plus `extra`."""
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("DOCKET_") and key != "NOTIFY_SOCKET"}
    env.update(extra or {})
    return env


def raise_fd_limit(wanted=4096):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def run_cli(args, env=None, timeout=None, cwd=None):
    """Runs the binary to completion (for commands that exit by themselves)."""
    result = subprocess.run([str(DOCKET_BIN), *args], capture_output=True, text=True,
                            env=clean_environment(env), timeout=timeout or scaled(20), cwd=cwd)
    reports = sanitizer_reports(result.stderr)
    assert not reports, "sanitizer report from %r:\n%s" % (args, result.stderr)
    return result


class Server:
    """One running docket process."""

    def __init__(self, args, env, cwd, expect_start=True, **popen):
        self.args = [str(DOCKET_BIN), *args]
        self.lines = []
        self.stdout_lines = []
        self.changed = threading.Condition()
        self.returncode = None
        self.stopped = False
        self.process = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        env=env, cwd=cwd, **popen)
        self.pid = self.process.pid
        self._readers = [
            threading.Thread(target=self._pump, args=(self.process.stderr, self.lines),
                             daemon=True),
            threading.Thread(target=self._pump, args=(self.process.stdout, self.stdout_lines),
                             daemon=True),
        ]
        for reader in self._readers:
            reader.start()
        self.host = self.port = self.scheme = None
        if expect_start:
            match = self.wait_for_log(LISTENING_RE, timeout=scaled(15))
            self.host, self.port, self.scheme = match.group(1), int(match.group(2)), match.group(3)
            self.wait_for_log(r"msg=ready ", timeout=scaled(15))

    def _pump(self, stream, sink):
        for raw in iter(stream.readline, b""):
            with self.changed:
                sink.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self.changed.notify_all()
        with self.changed:
            self.changed.notify_all()

    @property
    def base_url(self):
        return "%s://127.0.0.1:%d" % (self.scheme or "http", self.port)

    @property
    def stderr(self):
        with self.changed:
            return "\n".join(self.lines)

    def wait_for_log(self, pattern, timeout=None, start=0):
        """Waits for a stderr line matching `pattern` (from line index `start`);
        returns the match. Fails if the process exits first."""
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
        deadline = time.monotonic() + (timeout if timeout is not None else scaled(10))
        index = start
        with self.changed:
            while True:
                while index < len(self.lines):
                    match = regex.search(self.lines[index])
                    index += 1
                    if match:
                        return match
                remaining = deadline - time.monotonic()
                exited = self.process.poll() is not None
                if exited and all(not reader.is_alive() for reader in self._readers) \
                        and index >= len(self.lines):
                    raise AssertionError("docket exited (status %s) before logging %r:\n%s"
                                         % (self.process.returncode, regex.pattern,
                                            "\n".join(self.lines)))
                if remaining <= 0:
                    raise AssertionError("docket did not log %r within the time; stderr:\n%s"
                                         % (regex.pattern, "\n".join(self.lines)))
                self.changed.wait(min(remaining, 0.1))

    def alive(self):
        return self.process.poll() is None

    def signal(self, number):
        self.process.send_signal(number)

    def wait(self, timeout):
        """Waits for exit; returns the status (raises on timeout)."""
        self.returncode = self.process.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=5)
        self.stopped = True
        return self.returncode

    def stop(self, timeout=None):
        """SIGTERM and wait; returns the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.wait(timeout if timeout is not None else scaled(10))

    def kill(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=10)
        self.stopped = True

    def rss_kib(self):
        with open("/proc/%d/status" % self.pid) as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise AssertionError("no VmRSS for pid %d" % self.pid)

    def socket_count(self):
        """Open sockets of the process (the listener plus its connections)."""
        count = 0
        for name in os.listdir("/proc/%d/fd" % self.pid):
            try:
                if os.readlink("/proc/%d/fd/%s" % (self.pid, name)).startswith("socket:"):
                    count += 1
            except FileNotFoundError:
                pass
        return count

    def connect(self, timeout=None):
        from httpio import Conn
        return Conn(self.port, timeout=timeout or scaled(10))


@pytest.fixture
def start_server(tmp_path):
    """start_server(*flags, env={}, config=None, data_dir=None, listen=..., **popen)
    -> Server. `config` is the text of a config file passed with --config; `popen`
    goes to subprocess.Popen (e.g. user=, group=). Teardown: SIGTERM (if still
    running), exit status 0, no sanitizer text."""
    servers = []
    counter = [0]

    def start(*flags, env=None, config=None, data_dir=None, listen="127.0.0.1:0",
              expect_start=True, **popen):
        counter[0] += 1
        if data_dir is None:
            data_dir = tmp_path / ("data%d" % counter[0] if counter[0] > 1 else "data")
        args = ["serve"]
        if listen is not None:
            args += ["--listen", listen]
        if data_dir is not False:
            args += ["--data-dir", str(data_dir)]
        if config is not None:
            config_path = tmp_path / ("docket%d.conf" % counter[0])
            config_path.write_text(config)
            args += ["--config", str(config_path)]
        args += [str(flag) for flag in flags]
        server = Server(args, clean_environment(env), cwd=str(tmp_path),
                        expect_start=expect_start, **popen)
        server.data_dir = data_dir
        servers.append(server)
        return server

    yield start

    problems = []
    for server in servers:
        if not server.stopped:
            try:
                status = server.stop(timeout=scaled(10))
            except subprocess.TimeoutExpired:
                server.kill()
                problems.append("pid %d did not exit within %.0fs of SIGTERM"
                                % (server.pid, scaled(10)))
                status = None
            if status is not None and status != 0:
                problems.append("pid %d exited with status %d after SIGTERM"
                                % (server.pid, status))
        reports = sanitizer_reports(server.stderr)
        if reports:
            problems.append("sanitizer report from pid %d:\n%s" % (server.pid, server.stderr))
        if problems:
            problems.append("stderr of pid %d:\n%s" % (server.pid, server.stderr[-5000:]))
    assert not problems, "\n".join(problems)


@pytest.fixture
def server(start_server):
    """A server on defaults (plus a free port and a fresh data directory)."""
    return start_server()


def pytest_configure(config):
    config.addinivalue_line(
        "markers", "server_bug: the test exposes a known, reported server bug and fails "
        "until src/ is fixed (deselect with -m 'not server_bug')")
    if not DOCKET_BIN.is_file():
        raise pytest.UsageError("DOCKET_BIN %s does not exist; build it first (zig build)"
                                % DOCKET_BIN)


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
