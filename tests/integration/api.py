"""Shared helpers for the black-box tests of the tasks API (issue 4): a
module-scoped server (signups cost a PBKDF2 hash each, so one server and a
handful of users serve a whole module), a small JSON client over `requests`,
JWT forging with the server's own secret file, problem+json checks, list and
event pagination, the CloudEvent envelope check, and the Python fold of a
task's events that must reproduce GET /api/v1/tasks/{id}.

Nothing here knows the server's internals: only API.md, PRODUCT.md and the
documented files of the data directory (jwt-secret)."""
import base64
import copy
import hashlib
import hmac
import json
import re
import subprocess
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest
import requests

from conftest import DOCKET_BIN, Server, clean_environment, run_cli, sanitizer_reports, scaled

API = "/api/v1"
PASSWORD = "correct horse battery"
UUID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
TIME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$")
TASK_FIELDS = {"id", "title", "description", "completed", "completed_at", "priority", "tags",
               "due", "timezone", "recurrence", "reminders", "parent_id", "created_at",
               "updated_at", "version"}
USER_FIELDS = {"id", "username", "role", "timezone", "settings", "created_at"}
TASK_EVENT_TYPES = {"task.created", "task.updated", "task.due_changed", "task.completed",
                    "task.uncompleted", "task.deleted", "recurrence.spawned"}
PRIORITY_RANK = {"low": 0, "medium": 1, "high": 2, "urgent": 3}
# Every request gets this long; a sanitizer build is several times slower.
TIMEOUT = scaled(30)
_UNSET = object()


# ---- Server ---------------------------------------------------------------

class ApiServer:
    """One docket data directory served by at most one process at a time;
    start/stop/kill/restart keep the data directory (and so the users, the
    JWT secret and every token). Every stop checks exit status 0 and the
    absence of sanitizer reports."""

    def __init__(self, root, flags=()):
        self.root = Path(root)
        self.data_dir = self.root / "data"
        self.flags = [str(flag) for flag in flags]
        self.process = None
        self.history = []  # every Server started, for sanitizer checks at close

    def start(self, *extra):
        assert self.process is None or self.process.stopped, "already running"
        args = ["serve", "--listen", "127.0.0.1:0", "--data-dir", str(self.data_dir),
                *self.flags, *[str(flag) for flag in extra]]
        self.process = Server(args, clean_environment(), cwd=str(self.root))
        self.history.append(self.process)
        return self

    @property
    def base_url(self):
        return self.process.base_url

    @property
    def running(self):
        return self.process is not None and not self.process.stopped and self.process.alive()

    def stop(self):
        """SIGTERM; the exit status must be 0."""
        status = self.process.stop(timeout=scaled(15))
        assert status == 0, "docket exited %s after SIGTERM:\n%s" % (status,
                                                                    self.process.stderr[-4000:])
        self.check_sanitizers()

    def kill(self):
        self.process.kill()

    def restart(self, *extra):
        self.stop()
        return self.start(*extra)

    def check_sanitizers(self):
        for server in self.history:
            reports = sanitizer_reports(server.stderr)
            assert not reports, "sanitizer report from pid %d:\n%s" % (server.pid, server.stderr)

    def close(self):
        if self.running:
            self.stop()
        self.check_sanitizers()

    def cli(self, *args, stdin=None, timeout=None):
        """Runs `docket ARGS --data-dir DATA` to completion."""
        return cli(list(args) + ["--data-dir", str(self.data_dir)], stdin=stdin,
                   timeout=timeout)

    def secret(self):
        return read_secret(self.data_dir)


def cli(args, stdin=None, timeout=None):
    """Runs the binary with `stdin` text; fails on sanitizer reports."""
    if stdin is None:
        return run_cli(args, timeout=timeout)
    result = subprocess.run([str(DOCKET_BIN), *args], input=stdin, capture_output=True,
                            text=True, env=clean_environment(), timeout=timeout or scaled(60))
    assert not sanitizer_reports(result.stderr), result.stderr
    return result


def server_fixture(*flags):
    """A module-scoped fixture: one running ApiServer for the module."""

    @pytest.fixture(scope="module")
    def fixture(tmp_path_factory):
        server = ApiServer(tmp_path_factory.mktemp("api"), flags).start()
        yield server
        server.close()

    return fixture


# ---- Client ----------------------------------------------------------------

class Api:
    """A JSON client for one base URL and (optionally) one bearer token. Each
    instance owns a requests.Session: make one per thread."""

    def __init__(self, base_url, token=None):
        self.base_url = base_url
        self.token = token
        self.session = requests.Session()

    def with_token(self, token):
        return Api(self.base_url, token)

    def request(self, method, path, body=_UNSET, raw=None, headers=None, token=_UNSET,
                params=None, content_type="application/json"):
        """`body` is sent as JSON; `raw` (bytes/str) as is with `content_type`
        (None: no Content-Type). `token` overrides the client's (None: no
        Authorization header)."""
        sent = {}
        token = self.token if token is _UNSET else token
        if token is not None:
            sent["Authorization"] = "Bearer " + token
        data = None
        if body is not _UNSET:
            data = json.dumps(body).encode()
        elif raw is not None:
            data = raw.encode() if isinstance(raw, str) else raw
        if data is not None and content_type is not None:
            sent["Content-Type"] = content_type
        sent.update(headers or {})
        url = path if path.startswith("http") else self.base_url + path
        return self.session.request(method, url, data=data, headers=sent, params=params,
                                    timeout=TIMEOUT, allow_redirects=False)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, body=_UNSET, **kw):
        return self.request("POST", path, body=body, **kw)

    def patch(self, path, body=_UNSET, **kw):
        return self.request("PATCH", path, body=body, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)

    # Task shortcuts that insist on success.
    def create_task(self, body, **kw):
        response = self.post(API + "/tasks", body, **kw)
        assert response.status_code == 201, describe(response)
        return response.json()

    def get_task(self, task_id):
        response = self.get(API + "/tasks/" + task_id)
        assert response.status_code == 200, describe(response)
        return response.json()

    def patch_task(self, task_id, body, **kw):
        response = self.patch(API + "/tasks/" + task_id, body, **kw)
        assert response.status_code == 200, describe(response)
        return response.json()

    def task_events(self, task_id):
        """Every event of the task, oldest first (following next_cursor)."""
        items, _ = list_all(self, API + "/tasks/%s/events" % task_id, limit=500)
        return items


class User:
    """A signed-up account: its user object, password, token and client."""

    def __init__(self, server, user, token, password):
        self.server = server
        self.user = user
        self.id = user["id"]
        self.username = user["username"]
        self.role = user["role"]
        self.password = password
        self.token = token

    @property
    def api(self):
        """A fresh client on the server's current address (it changes on restart)."""
        return Api(self.server.base_url, self.token)


def signup(server, username, password=PASSWORD, timezone_name=None):
    body = {"username": username, "password": password}
    if timezone_name is not None:
        body["timezone"] = timezone_name
    response = Api(server.base_url).post(API + "/auth/signup", body)
    assert response.status_code == 201, describe(response)
    document = response.json()
    return User(server, document["user"], document["token"], password)


def login(server, username, password):
    return Api(server.base_url).post(API + "/auth/login",
                                     {"username": username, "password": password})


def describe(response):
    """A failing response in one string, for assertion messages."""
    request = response.request
    body = request.body if request.body is None or len(request.body) < 500 else \
        request.body[:500] + b"..."
    return "%s %s body=%r -> %d %s %r" % (request.method, request.url, body,
                                          response.status_code, dict(response.headers),
                                          response.text[:1000])


def problem(response, status, field=None, first_field=None):
    """The response is RFC 9457 problem+json with `status`; `field` (if given)
    is one of errors[].field, `first_field` is errors[0].field. Returns the
    document."""
    assert response.status_code == status, describe(response)
    content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
    assert content_type == "application/problem+json", describe(response)
    document = response.json()
    assert document.get("status") == status, document
    for member in ("type", "title", "detail"):
        assert isinstance(document.get(member), str) and document[member], document
    if field is not None or first_field is not None:
        errors = document.get("errors")
        assert isinstance(errors, list) and errors, document
        for error in errors:
            assert isinstance(error.get("field"), str), document
            assert isinstance(error.get("message"), str) and error["message"], document
        if field is not None:
            assert field in [error["field"] for error in errors], document
        if first_field is not None:
            assert errors[0]["field"] == first_field, document
    return document


def unauthorized(response):
    """Every bad token: 401 problem+json with a Bearer challenge."""
    problem(response, 401)
    challenge = response.headers.get("WWW-Authenticate", "")
    assert challenge.split(" ")[0].lower() == "bearer", describe(response)


def etag_version(response):
    """The version a strong ETag names ("\"3\"" -> 3)."""
    tag = response.headers.get("ETag")
    assert tag is not None and re.fullmatch(r'"\d+"', tag), describe(response)
    return int(tag.strip('"'))


def parse_time(text):
    assert isinstance(text, str) and TIME_RE.match(text), text
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def rfc3339(moment):
    """A UTC datetime as the API writes it (whole seconds)."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def fresh_key():
    return "key-" + uuid.uuid4().hex


# ---- Lists and events -------------------------------------------------------

def list_all(api, path, params=None, limit=None, max_pages=1000):
    """Follows next_cursor to the end; returns every item and the page count."""
    params = list(params or [])
    # A cursor among `params` starts the walk; later pages use the server's.
    cursor = next((value for name, value in params if name == "cursor"), None)
    params = [(name, value) for name, value in params if name != "cursor"]
    if limit is not None:
        params.append(("limit", str(limit)))
    items, pages = [], 0
    while True:
        query = params + ([("cursor", cursor)] if cursor else [])
        response = api.get(path, params=query)
        assert response.status_code == 200, describe(response)
        page = response.json()
        assert set(page) >= {"items", "next_cursor"}, page
        items.extend(page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            return items, pages
        assert isinstance(cursor, str) and cursor, page
        assert pages < max_pages, "pagination does not end"


def tasks_all(api, status="all", extra=()):
    items, _ = list_all(api, API + "/tasks", [("status", status), *extra], limit=500)
    return items


def events_since(api, since=0, limit=500):
    """Every event of the caller with sequence > since, by repeated since=."""
    events = []
    while True:
        response = api.get(API + "/events", params={"since": since, "limit": limit})
        assert response.status_code == 200, describe(response)
        page = response.json()
        assert set(page) >= {"items", "next_cursor"}, page
        events.extend(page["items"])
        if not page["items"]:
            return events
        since = page["items"][-1]["sequence"]
        if len(page["items"]) < limit:
            assert page["next_cursor"] is None, page
            return events


def check_envelope(event, user_id=None):
    """CloudEvents 1.0 envelope of src/tasks/event.h."""
    for member in ("specversion", "id", "source", "type", "time", "subject", "datacontenttype",
                   "userid", "sequence", "correlationid", "actor", "data"):
        assert member in event, (member, event)
    assert event["specversion"] == "1.0", event
    assert UUID_RE.match(event["id"]), event
    assert event["source"] == "/docket", event
    assert isinstance(event["type"], str) and event["type"], event
    parse_time(event["time"])
    assert event["datacontenttype"] == "application/json", event
    assert UUID_RE.match(event["userid"]), event
    assert isinstance(event["sequence"], int) and event["sequence"] >= 1, event
    assert UUID_RE.match(event["correlationid"]), event
    assert isinstance(event["actor"], str) and event["actor"], event
    assert isinstance(event["data"], dict), event
    if "idempotencykey" in event:
        assert isinstance(event["idempotencykey"], str) and event["idempotencykey"], event
    if user_id is not None:
        assert event["userid"] == user_id, event


def check_dense(events, start=1):
    """Per-user sequences are 1, 2, 3, ... with no gap and no repeat."""
    sequences = [event["sequence"] for event in events]
    assert sequences == list(range(start, start + len(sequences))), sequences[:50]
    ids = [event["id"] for event in events]
    assert len(set(ids)) == len(ids), "an event id appears twice"


def check_task(task):
    """The task object has exactly the API.md members with their types."""
    assert set(task) == TASK_FIELDS, sorted(set(task) ^ TASK_FIELDS)
    assert UUID_RE.match(task["id"]), task
    assert isinstance(task["title"], str) and task["title"], task
    assert isinstance(task["description"], str), task
    assert isinstance(task["completed"], bool), task
    assert (task["completed_at"] is not None) == task["completed"], task
    if task["completed_at"] is not None:
        parse_time(task["completed_at"])
    assert task["priority"] in PRIORITY_RANK, task
    assert isinstance(task["tags"], list) and all(isinstance(t, str) for t in task["tags"]), task
    if task["due"] is not None:
        parse_time(task["due"])
    assert isinstance(task["timezone"], str) and task["timezone"], task
    assert task["recurrence"] is None or set(task["recurrence"]) == {
        "rule", "from", "series_start", "index"}, task
    assert isinstance(task["reminders"], list), task
    assert task["parent_id"] is None or UUID_RE.match(task["parent_id"]), task
    assert parse_time(task["created_at"]) <= parse_time(task["updated_at"]), task
    assert isinstance(task["version"], int) and task["version"] >= 1, task


def fold(events):
    """Folds one task's events (oldest first) into the task object, checking
    on the way that versions go 1, 2, 3, ... (task.due_changed repeats the
    version of the task.updated it follows) and that task.deleted's snapshot
    is the folded state. Returns (task or None, deleted)."""
    state, deleted, previous = None, False, None
    for event in events:
        kind, data = event["type"], event["data"]
        if kind not in TASK_EVENT_TYPES:
            continue  # reminder.*, recurrence.ended: not part of the task object
        # One request may produce several events (PATCH {"title", "completed"}):
        # those after the first may keep the request's version.
        same_request = previous is not None and \
            previous.get("correlationid") == event.get("correlationid")
        previous = event
        assert not deleted, "event %s after task.deleted" % kind
        if kind in ("task.created", "recurrence.spawned"):  # a spawned occurrence's first event
            assert state is None, "task.created twice"
            state = copy.deepcopy(data)
            assert state["version"] == 1, data
            continue
        assert state is not None, "%s before task.created" % kind
        if kind == "task.deleted":
            snapshot = {key: value for key, value in data.items() if key != "deleted_at"}
            assert snapshot == state, (snapshot, state)
            parse_time(data["deleted_at"])
            deleted = True
            continue
        if kind == "task.due_changed":
            assert data["version"] == state["version"], (data, state)
            assert data["old"] == state["due"] or data["new"] == state["due"], (data, state)
            state["due"] = data["new"]
        else:
            allowed = {state["version"] + 1} | ({state["version"]} if same_request else set())
            assert data["version"] in allowed, (kind, data, state)
            if kind == "task.updated":
                assert data["changes"], data
                for field, change in data["changes"].items():
                    assert set(change) == {"old", "new"}, change
                    assert change["old"] == state[field], (field, change, state)
                    assert change["new"] != change["old"], change
                    state[field] = copy.deepcopy(change["new"])
            elif kind == "task.completed":
                assert not state["completed"], "completed twice in a row"
                state["completed"] = True
                state["completed_at"] = data["completed_at"]
            elif kind == "task.uncompleted":
                assert state["completed"], "uncompleted an open task"
                state["completed"] = False
                state["completed_at"] = None
        state["version"] = data["version"]
        state["updated_at"] = data["updated_at"]
    return state, deleted


# ---- Tokens -----------------------------------------------------------------

def read_secret(data_dir):
    return (Path(data_dir) / "jwt-secret").read_bytes()


def b64url(data):
    if isinstance(data, str):
        data = data.encode()
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def token_claims(token):
    """The payload of a JWT (no verification)."""
    return json.loads(b64url_decode(token.split(".")[1]))


def token_header(token):
    return json.loads(b64url_decode(token.split(".")[0]))


def claims_for(user_id, role="user", ttl=3600, **overrides):
    now = int(time.time())
    claims = {"sub": user_id, "role": role, "iat": now, "exp": now + ttl, "iss": "docket",
              "aud": "docket"}
    for key, value in overrides.items():
        if value is None:
            claims.pop(key, None)
        else:
            claims[key] = value
    return claims


def forge(secret, claims, header=None, digest=hashlib.sha256):
    """An HMAC-signed JWT over exactly these header and claims."""
    header = header if header is not None else {"alg": "HS256", "typ": "JWT"}
    signing_input = b64url(json.dumps(header, separators=(",", ":"))) + "." + \
        b64url(json.dumps(claims, separators=(",", ":")))
    signature = hmac.new(secret, signing_input.encode(), digest).digest()
    return signing_input + "." + b64url(signature)


def unsigned(claims, alg="none"):
    """An `alg: none` token (empty signature)."""
    header = b64url(json.dumps({"alg": alg, "typ": "JWT"}, separators=(",", ":")))
    return header + "." + b64url(json.dumps(claims, separators=(",", ":"))) + "."


def wait_for(predicate, timeout=5.0, interval=0.05):
    deadline = time.monotonic() + scaled(timeout)
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


def run_threads(target, argument_lists, start_together=True):
    """Runs target(*args) in one thread per argument list, optionally released
    together by a barrier; returns the results in order and re-raises the
    first exception a thread raised."""
    count = len(argument_lists)
    barrier = threading.Barrier(count) if start_together else None
    results = [None] * count
    errors = []

    def run(index, args):
        try:
            if barrier is not None:
                barrier.wait(timeout=TIMEOUT)
            results[index] = target(*args)
        except BaseException as error:  # noqa: B902 - reported to the caller
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i, tuple(args)))
               for i, args in enumerate(argument_lists)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results
