"""A small keep-alive JSON client over http.client, for setup and checks around a measurement
(sign-up, log-in, counting rows, fetching a cursor, verifying answers) - never for the load
itself, which wrk generates."""

import http.client
import json
import time


class Client:
    def __init__(self, host, port, token=None, timeout=60.0):
        self.host, self.port, self.timeout = host, port, timeout
        self.token = token
        self._conn = None

    def _connection(self):
        if self._conn is None:
            self._conn = http.client.HTTPConnection(self.host, self.port, timeout=self.timeout)
        return self._conn

    def close(self):
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def request(self, method, path, body=None, headers=None):
        """Returns (status, header dict with lower-case names, parsed JSON or raw bytes, seconds)."""
        h = {"Accept": "application/json"}
        if self.token:
            h["Authorization"] = f"Bearer {self.token}"
        data = None
        if body is not None:
            data = body if isinstance(body, (bytes, str)) else json.dumps(body)
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        for attempt in (1, 2):  # one retry on a connection the server closed while idle
            conn = self._connection()
            t0 = time.monotonic()
            try:
                conn.request(method, path, body=data, headers=h)
                resp = conn.getresponse()
                raw = resp.read()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.close()
                if attempt == 2:
                    raise
                continue
            seconds = time.monotonic() - t0
            hdrs = {k.lower(): v for k, v in resp.getheaders()}
            if hdrs.get("connection", "").lower() == "close":
                self.close()
            parsed = raw
            if raw and "json" in hdrs.get("content-type", ""):
                try:
                    parsed = json.loads(raw)
                except ValueError:
                    pass
            return resp.status, hdrs, parsed, seconds
        raise RuntimeError("unreachable")

    def json(self, method, path, body=None, expect=(200, 201), headers=None):
        """Like request() but fails loudly unless the status is in `expect`; returns the JSON."""
        status, _, parsed, _ = self.request(method, path, body, headers)
        if status not in expect:
            shown = parsed if not isinstance(parsed, bytes) else parsed[:500]
            raise RuntimeError(f"{method} {path} on {self.host}:{self.port}: status {status}, body {shown!r}")
        return parsed
