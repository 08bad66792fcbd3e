"""Proves that web/openapi.json describes the server: it is a valid OpenAPI 3.1
document, covers every route of API.md with the conventions API.md states, its
bounds equal src/base/limits.h and its examples match its own schemas; a live
server serves it byte for byte without auth; and requests that schemathesis
generates from it for the auth and task operations get no 5xx and only
documented responses whose status, content type, headers and bodies conform,
while requests that break it are refused with a documented 4xx.

The document is the contract for outside clients, so where the server and the
document disagree these tests fail instead of bending either one."""
import collections
import itertools
import json
import re
import tempfile
import time
from pathlib import Path

import hypothesis
import pytest
import requests
from hypothesis import HealthCheck, Phase

from conftest import REPO, SANITIZED, Server, clean_environment, sanitizer_reports, scaled

# Hypothesis caches Unicode tables in ./.hypothesis by default; keep the work tree clean.
hypothesis.configuration.set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "docket-hypothesis")

DOCUMENT_PATH = REPO / "web" / "openapi.json"
DOCUMENT_BYTES = DOCUMENT_PATH.read_bytes()
DOCUMENT = json.loads(DOCUMENT_BYTES)
SCHEMAS = DOCUMENT["components"]["schemas"]
PARAMETERS = DOCUMENT["components"]["parameters"]
METHODS = ("get", "put", "post", "patch", "delete", "head", "options", "trace")

# Every route of API.md and of the behaviour the server implements, as
# (method, path template). The document must describe exactly these.
ROUTES = {
    ("post", "/api/v1/auth/signup"), ("post", "/api/v1/auth/login"),
    ("get", "/api/v1/me"), ("patch", "/api/v1/me"),
    ("get", "/api/v1/tasks"), ("post", "/api/v1/tasks"),
    ("get", "/api/v1/tasks/{id}"), ("patch", "/api/v1/tasks/{id}"),
    ("delete", "/api/v1/tasks/{id}"),
    ("post", "/api/v1/tasks/{id}/complete"), ("post", "/api/v1/tasks/{id}/uncomplete"),
    ("get", "/api/v1/tasks/{id}/events"), ("get", "/api/v1/events"), ("get", "/api/v1/ws"),
    ("get", "/api/v1/audit"), ("get", "/api/v1/admin/users"), ("get", "/api/v1/admin/dlq"),
    ("post", "/api/v1/admin/dlq/{id}/redrive"), ("get", "/api/v1/admin/consumers"),
    ("get", "/api/v1/openapi.json"), ("get", "/healthz"), ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/api/v1/push/vapid"), ("get", "/api/v1/push/subscriptions"),
    ("post", "/api/v1/push/subscriptions"), ("delete", "/api/v1/push/subscriptions/{id}"),
}
PUBLIC = {("post", "/api/v1/auth/signup"), ("post", "/api/v1/auth/login"),
          ("get", "/api/v1/openapi.json"), ("get", "/healthz"), ("get", "/readyz"),
          ("get", "/metrics")}


def operations():
    """(method, path, operation, path-level parameters) for every operation."""
    for path, item in DOCUMENT["paths"].items():
        for method in METHODS:
            if method in item:
                yield method, path, item[method], item.get("parameters", [])


def resolve(node):
    """Follows a local $ref (one level is all the document uses at a time)."""
    while isinstance(node, dict) and "$ref" in node:
        target = DOCUMENT
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def limits():
    """The integer constants of src/base/limits.h (products of literals only)."""
    values = {}
    text = (REPO / "src" / "base" / "limits.h").read_text()
    for name, expression in re.findall(r"^#define (LIMIT_\w+) (.+)$", text, re.M):
        expression = re.sub(r"(\d+)LL", r"\1", expression)
        if re.fullmatch(r"[\d\s()*+]+", expression):
            values[name] = eval(expression)  # only digits, spaces, parentheses, * and +
    return values


# ---- The document ----------------------------------------------------------


def test_document_is_valid_openapi_3_1():
    from openapi_spec_validator import OpenAPIV31SpecValidator, validate

    assert re.fullmatch(r"3\.1\.\d+", DOCUMENT["openapi"]), DOCUMENT["openapi"]
    validate(DOCUMENT, cls=OpenAPIV31SpecValidator)


def test_document_describes_exactly_the_routes():
    described = {(method, path) for method, path, _, _ in operations()}
    assert described - ROUTES == set(), "described but not a route"
    assert ROUTES - described == set(), "a route the document does not describe"
    ids = [operation["operationId"] for _, _, operation, _ in operations()]
    assert len(ids) == len(set(ids)), "operationIds are not unique"


def test_every_operation_follows_the_conventions():
    for method, path, operation, _ in operations():
        label = "%s %s" % (method.upper(), path)
        responses = operation["responses"]
        secured = operation.get("security", DOCUMENT["security"]) != []
        assert secured == ((method, path) not in PUBLIC), label
        if secured:
            unauthorized = resolve(responses["401"])
            assert unauthorized["headers"]["WWW-Authenticate"], label
        if "/admin/" in path:
            assert "403" in responses, label
        if "requestBody" in operation:
            assert {"400", "413", "422"} <= set(responses), label
            assert list(operation["requestBody"]["content"]) == ["application/json"], label
        for status, response in responses.items():
            response = resolve(response)
            if status.startswith(("4", "5")):
                assert list(response["content"]) == ["application/problem+json"], (label, status)
        names = [resolve(parameter)["name"] for parameter in operation.get("parameters", [])]
        if "limit" in names:
            assert "400" in responses, label
        if "If-Match" in names:
            assert "412" in responses, label
    # Task writes take Idempotency-Key and If-Match (create only the former).
    for path, method in [("/api/v1/tasks/{id}", "patch"), ("/api/v1/tasks/{id}", "delete"),
                         ("/api/v1/tasks/{id}/complete", "post"),
                         ("/api/v1/tasks/{id}/uncomplete", "post")]:
        names = [resolve(p)["name"] for p in DOCUMENT["paths"][path][method]["parameters"]]
        assert {"Idempotency-Key", "If-Match"} <= set(names), (method, path)
    create = DOCUMENT["paths"]["/api/v1/tasks"]["post"]
    assert [resolve(p)["name"] for p in create["parameters"]] == ["Idempotency-Key"]
    created = create["responses"]["201"]["headers"]
    assert {"Location", "ETag", "Idempotent-Replayed"} <= set(created)
    login = DOCUMENT["paths"]["/api/v1/auth/login"]["post"]["responses"]
    assert "Retry-After" in resolve(login["429"])["headers"]


def test_bounds_equal_limits_h():
    limit = limits()
    task = SCHEMAS["Task"]["properties"]
    create = SCHEMAS["TaskCreate"]["properties"]
    # The numbers API.md and the server's validation promise.
    assert task["title"]["minLength"] == create["title"]["minLength"] == 1
    assert task["title"]["maxLength"] == create["title"]["maxLength"] == 500 \
        == limit["LIMIT_TASK_TITLE_CHARACTERS"]
    assert task["description"]["maxLength"] == create["description"]["maxLength"] == 65536 \
        == limit["LIMIT_TASK_DESCRIPTION_BYTES"]
    assert task["tags"]["maxItems"] == create["tags"]["maxItems"] == 50 \
        == limit["LIMIT_TASK_TAGS"]
    assert SCHEMAS["Tag"]["minLength"] == 1
    assert SCHEMAS["Tag"]["maxLength"] == 64 == limit["LIMIT_TASK_TAG_BYTES"]
    assert task["reminders"]["maxItems"] == create["reminders"]["maxItems"] == 20 \
        == limit["LIMIT_TASK_REMINDERS"]
    assert SCHEMAS["Recurrence"]["properties"]["rule"]["maxLength"] \
        == limit["LIMIT_TASK_RRULE_BYTES"]
    assert SCHEMAS["Recurrence"]["properties"]["from"]["enum"] == ["due", "completion",
                                                                   "schedule"]
    assert SCHEMAS["Priority"]["enum"] == ["low", "medium", "high", "urgent"]
    assert SCHEMAS["Timezone"]["maxLength"] == limit["LIMIT_TIMEZONE_NAME_BYTES"]
    assert SCHEMAS["Username"]["pattern"] == "^[A-Za-z0-9._-]{%d,%d}$" % (
        limit["LIMIT_USERNAME_BYTES_MIN"], limit["LIMIT_USERNAME_BYTES_MAX"])
    for schema in (SCHEMAS["Signup"], SCHEMAS["MePatch"]):
        password = schema["properties"]["password"]
        assert password["minLength"] == 8 == limit["LIMIT_PASSWORD_CHARACTERS_MIN"]
        assert password["maxLength"] == limit["LIMIT_PASSWORD_BYTES_MAX"]
    assert PARAMETERS["IdempotencyKey"]["schema"]["maxLength"] \
        == limit["LIMIT_IDEMPOTENCY_KEY_BYTES"]
    assert PARAMETERS["Q"]["schema"]["maxLength"] == limit["LIMIT_TASK_QUERY_BYTES"]
    for name in ("Tag", "PriorityFilter", "AuditType"):
        assert PARAMETERS[name]["explode"] is True
        assert PARAMETERS[name]["schema"]["type"] == "array"
        assert PARAMETERS[name]["schema"]["maxItems"] == limit["LIMIT_LIST_FILTER_VALUES"]
    page = PARAMETERS["Limit"]["schema"]
    assert (page["minimum"], page["maximum"], page["default"]) \
        == (1, 500, 50) == (1, limit["LIMIT_LIST_MAX"], limit["LIMIT_LIST_DEFAULT"])
    assert PARAMETERS["Cursor"]["schema"]["maxLength"] == limit["LIMIT_LIST_CURSOR_BYTES"]
    sort = PARAMETERS["Sort"]["schema"]["enum"]
    keys = ["due", "priority", "created", "updated", "title"]
    assert sorted(sort) == sorted(keys + ["-" + key for key in keys])
    assert PARAMETERS["Status"]["schema"]["enum"] == ["open", "completed", "all"]


def test_patterns_accept_what_the_server_accepts():
    # fullmatch: in ECMA-262 regexes (JSON Schema's) "$" is the very end of the text.
    duration = re.compile(SCHEMAS["Duration"]["pattern"])
    for good in ["PT15M", "P1D", "P1DT2H", "P2W", "PT0S", "PT90M", "P1DT2H3M4S", "PT1H30M"]:
        assert duration.fullmatch(good), good
    for bad in ["P", "PT", "P1Y", "P1M", "PT1.5S", "-PT1M", "pt15m", "P1W2D", "PT15M "]:
        assert not duration.fullmatch(bad), bad
    username = re.compile(SCHEMAS["Username"]["pattern"])
    for good in ["abc", "Alice.B_c-9", "a" * 64]:
        assert username.fullmatch(good), good
    for bad in ["ab", "a" * 65, "al ice", "alice!", "élise"]:
        assert not username.fullmatch(bad), bad
    written = re.compile(SCHEMAS["Time"]["pattern"])
    for good in ["2026-02-10T09:45:00Z", "2026-02-10T09:45:00.123Z"]:
        assert written.fullmatch(good), good
    for bad in ["2026-02-10T09:45:00+01:00", "2026-02-10T09:45Z", "2026-02-10T09:45:00.1Z"]:
        assert not written.fullmatch(bad), bad
    timezone = re.compile(SCHEMAS["Timezone"]["pattern"])
    for good in ["Europe/Berlin", "UTC", "Etc/GMT+5", "America/Argentina/Buenos_Aires"]:
        assert timezone.fullmatch(good), good
    for bad in ["/etc/passwd", "Europe Berlin", "Europe/Berlin\n", ""]:
        assert not timezone.fullmatch(bad), bad
    if_match = re.compile(PARAMETERS["IfMatch"]["schema"]["pattern"])
    for good in ['"3"', "*", '"3", "4"', '"3","12"']:
        assert if_match.fullmatch(good), good
    for bad in ['W/"3"', "3", '"0"', '"3",', '"x"']:
        assert not if_match.fullmatch(bad), bad


def test_text_rules_match_the_server():
    """Titles, descriptions and tags refuse what src/tasks/task.c refuses: control
    characters (descriptions allow tab and line breaks) and blank titles."""
    from jsonschema import Draft202012Validator

    title = Draft202012Validator(SCHEMAS["Task"]["properties"]["title"])
    for good in ["x", "Pay rent", "a\u3000b", "é" * 500, "\U0001F600"]:
        assert title.is_valid(good), good
    for bad in ["", "a\x00b", "tab\there", "line\n", " ", "\u3000\u00a0", "\ufeff", "x" * 501]:
        assert not title.is_valid(bad), bad
    description = Draft202012Validator(SCHEMAS["Task"]["properties"]["description"])
    for good in ["", "line one\nline two\r\n\tindented"]:
        assert description.is_valid(good), good
    for bad in ["\x00", "bell\x07", "\x1b[31m"]:
        assert not description.is_valid(bad), bad
    tag = Draft202012Validator(SCHEMAS["Tag"])
    assert tag.is_valid("home") and not tag.is_valid("a\tb") and not tag.is_valid("")


def test_examples_match_their_schemas():
    from jsonschema import Draft202012Validator
    from referencing import Registry
    from referencing.jsonschema import DRAFT202012

    uri = "urn:docket:openapi"
    registry = Registry().with_resource(uri, DRAFT202012.create_resource(DOCUMENT))
    checked = 0
    for name, schema in SCHEMAS.items():
        validator = Draft202012Validator({"$ref": uri + "#/components/schemas/" + name},
                                         registry=registry,
                                         format_checker=Draft202012Validator.FORMAT_CHECKER)
        for example in schema.get("examples", []):
            errors = [error.message for error in validator.iter_errors(example)]
            assert not errors, (name, example, errors)
            checked += 1
    assert checked >= 10
    # A few documents the server writes, shaped as event.h and task.h say.
    task = SCHEMAS["Task"]["examples"][0]
    event = {"specversion": "1.0", "id": "01937f4e-7a2b-7c3d-9e4f-5a6b7c8d9e10",
             "source": "/docket", "type": "task.created", "time": "2026-02-10T09:45:00.123Z",
             "subject": task["id"], "datacontenttype": "application/json",
             "userid": "01937f4e-0000-7c3d-9e4f-5a6b7c8d9e0f", "sequence": 2,
             "correlationid": "01937f4e-7a2b-7c3d-9e4f-5a6b7c8d9e11",
             "actor": "01937f4e-0000-7c3d-9e4f-5a6b7c8d9e0f", "idempotencykey": "k1",
             "data": task}
    event_validator = Draft202012Validator({"$ref": uri + "#/components/schemas/CloudEvent"},
                                           registry=registry)
    assert not list(event_validator.iter_errors(event))
    updated = dict(event, type="task.updated", sequence=3,
                   data={"changes": {"title": {"old": "Pay rent", "new": "Pay the rent"}},
                         "version": 2, "updated_at": "2026-02-10T10:00:00Z"})
    assert not list(event_validator.iter_errors(updated))
    # The conditional data schemas bite: a task.created whose data is not a task fails,
    # and a user event carrying a password hash fails.
    assert list(event_validator.iter_errors(dict(event, data={"title": "x"})))
    leaked = dict(event, type="user.password_changed",
                  data={"password_hash": "$pbkdf2-sha256$i=600000$..."})
    assert list(event_validator.iter_errors(leaked))


# ---- Against a live server -------------------------------------------------

# Operations schemathesis exercises, with how many examples each. Signup and
# login hash a password (PBKDF2, about a second of CPU each), so they get few.
FUZZED = {
    "signup": 4, "login": 4, "getMe": 10, "updateMe": 10,
    "listTasks": 20, "createTask": 20, "getTask": 20, "updateTask": 20, "deleteTask": 20,
    "completeTask": 20, "uncompleteTask": 20, "listTaskEvents": 20, "listEvents": 20,
    "getVapidKey": 4, "listPushSubscriptions": 10, "createPushSubscription": 20,
    "deletePushSubscription": 10,
}
# Statuses that valid generated requests must reach at least once (the
# operations on one task by id mostly meet unknown ids: the stateful test below
# reaches real ones).
SUCCESS = {"signup": 201, "getMe": 200, "updateMe": 200, "listTasks": 200, "createTask": 201,
           "listEvents": 200, "getVapidKey": 200, "listPushSubscriptions": 200}
# Scenarios of the stateful test; each costs a signup (about a second of CPU).
STATEFUL_SCENARIOS = 5
# Examples per operation of the negative (invalid input) pass.
NEGATIVE_EXAMPLES = 10
# Sanitizer builds are several times slower; keep the run inside its budget.
EXAMPLE_SCALE = 0.5 if SANITIZED else 1.0
# Wall-clock budget for all schemathesis tests together (< 2 minutes on a quiet machine;
# stretched for sanitizer builds). Past it the remaining ones skip: a loaded machine must
# not turn into a failure, and the example counts above keep a normal run far inside it.
FUZZ_BUDGET_S = scaled(110)


class Live:
    """The server the module's live tests share, and what they learned."""

    def __init__(self, server):
        self.server = server
        self.base_url = server.base_url
        self.session = requests.Session()
        self.token = None
        self.fuzz_started = None

    def api_present(self):
        """Whether the task API has landed (an unauthenticated /me is 401, not 404)."""
        return self.session.get(self.base_url + "/api/v1/me", timeout=scaled(10)).status_code \
            != 404

    def bearer(self):
        """A token of one account made for these tests (made once: signup is slow)."""
        if self.token is None:
            response = self.session.post(
                self.base_url + "/api/v1/auth/signup",
                json={"username": "openapi-fuzz", "password": "fuzzing-password-1"},
                timeout=scaled(30))
            assert response.status_code == 201, response.text
            self.token = response.json()["token"]
        return {"Authorization": "Bearer " + self.token}


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    directory = tmp_path_factory.mktemp("openapi")
    args = ["serve", "--listen", "127.0.0.1:0", "--data-dir", str(directory / "data")]
    server = Server(args, clean_environment(), cwd=str(directory))
    yield Live(server)
    status = server.stop(timeout=scaled(15))
    reports = sanitizer_reports(server.stderr)
    assert not reports, server.stderr
    assert status == 0, "docket exited %d after SIGTERM:\n%s" % (status, server.stderr[-5000:])


def require_api(live):
    if not live.api_present():
        pytest.skip("the server has no /api/v1 routes yet (the tasks API has not landed)")


def fuzz_budget_left(live):
    """Starts the fuzzing clock at the first call; skips once the budget is spent."""
    if live.fuzz_started is None:
        live.fuzz_started = time.monotonic()
    spent = time.monotonic() - live.fuzz_started
    if spent > FUZZ_BUDGET_S:
        pytest.skip("schemathesis budget of %.0f s spent (%.0f s so far)" % (FUZZ_BUDGET_S, spent))


def test_served_document_is_the_file(live):
    response = live.session.get(live.base_url + "/api/v1/openapi.json", timeout=scaled(10))
    if response.status_code == 404:
        require_api(live)
    assert response.status_code == 200, response.text[:500]
    assert response.headers["Content-Type"] == "application/json"
    assert response.content == DOCUMENT_BYTES
    assert response.json()["openapi"].startswith("3.1.")
    # No auth needed, and a token changes nothing.
    if live.api_present():
        again = live.session.get(live.base_url + "/api/v1/openapi.json",
                                 headers={"Authorization": "Bearer not-a-token"},
                                 timeout=scaled(10))
        assert again.status_code == 200 and again.content == DOCUMENT_BYTES


def response_validator(path, method="get", status="200"):
    """A JSON Schema validator for one documented response body."""
    from jsonschema import Draft202012Validator
    from referencing import Registry
    from referencing.jsonschema import DRAFT202012

    uri = "urn:docket:openapi"
    registry = Registry().with_resource(uri, DRAFT202012.create_resource(DOCUMENT))
    response = resolve(DOCUMENT["paths"][path][method]["responses"][status])
    (media, content), = response["content"].items()
    reference = content["schema"]["$ref"]  # every documented body is a component
    return media, Draft202012Validator({"$ref": uri + reference}, registry=registry)


def assert_documented(response, path, method="get"):
    """The response's status, content type and body are what the document says."""
    media, validator = response_validator(path, method, str(response.status_code))
    assert response.headers["Content-Type"] == media, (path, response.headers)
    errors = ["%s at %s" % (error.message, "/".join(map(str, error.absolute_path)))
              for error in validator.iter_errors(response.json())]
    assert not errors, (path, errors[:5], response.text[:2000])


def test_reads_match_the_document(live):
    """Event streams (every task.* data shape), audit, account and admin listings and the
    health endpoints as a client reads them after a task's whole life."""
    require_api(live)
    headers = live.bearer()
    url = live.base_url
    get = lambda path, **kw: live.session.get(url + path, headers=headers, timeout=scaled(10),
                                              **kw)
    created = live.session.post(url + "/api/v1/tasks", headers=headers, timeout=scaled(10), json={
        "title": "Read back", "due": "2030-01-01T09:00:00Z", "tags": ["a", "b"],
        "recurrence": {"rule": "FREQ=DAILY", "from": "completion"}})
    assert created.status_code == 201, created.text
    task = created.json()["id"]
    item = url + "/api/v1/tasks/" + task
    for method, suffix, body in [("PATCH", "", {"title": "Read it back", "due": None}),
                                 ("PATCH", "", {"due": "2030-01-02T09:00:00+01:00"}),
                                 ("POST", "/complete", None), ("POST", "/uncomplete", None),
                                 ("DELETE", "", None)]:
        response = live.session.request(method, item + suffix, headers=headers, json=body,
                                        timeout=scaled(10))
        assert response.status_code in (200, 204), (method, suffix, response.text)
    history = get("/api/v1/tasks/%s/events" % task)
    assert_documented(history, "/api/v1/tasks/{id}/events")
    types = [event["type"] for event in history.json()["items"]]
    for wanted in ["task.created", "task.updated", "task.due_changed", "task.completed",
                   "task.uncompleted", "task.deleted"]:
        assert wanted in types, types
    assert_documented(get("/api/v1/events", params={"since": 0, "limit": 500}), "/api/v1/events")
    assert_documented(get("/api/v1/audit", params={"limit": 500}), "/api/v1/audit")
    assert_documented(get("/api/v1/me"), "/api/v1/me")
    users = get("/api/v1/admin/users")
    if users.status_code == 200:  # the module's first account is the admin
        assert_documented(users, "/api/v1/admin/users")
        assert_documented(get("/api/v1/admin/consumers"), "/api/v1/admin/consumers")
    for path in ["/healthz", "/readyz"]:
        assert_documented(live.session.get(url + path, timeout=scaled(10)), path)
    metrics = live.session.get(url + "/metrics", timeout=scaled(10))
    assert metrics.headers["Content-Type"] in DOCUMENT["paths"]["/metrics"]["get"]["responses"][
        "200"]["content"]


def load_schema():
    import schemathesis

    schema = schemathesis.openapi.from_dict(json.loads(DOCUMENT_BYTES))
    # Invalid input may also be refused by the transport before any route
    # runs: a body over the limit (413), a request line over 8 KiB (414),
    # headers over 16 KiB (431). Each is a documented, correct rejection.
    rejection = schema.config.checks.negative_data_rejection
    rejection.expected_statuses = sorted(set(rejection.expected_statuses)
                                         | {"413", "414", "431"})
    return schema


def checks():
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (content_type_conformance, ignored_auth,
                                                   response_headers_conformance,
                                                   response_schema_conformance,
                                                   status_code_conformance)

    return [not_a_server_error, status_code_conformance, content_type_conformance,
            response_headers_conformance, response_schema_conformance, ignored_auth]


def fuzz_settings(examples):
    return hypothesis.settings(
        max_examples=max(1, int(examples * EXAMPLE_SCALE)), deadline=None, database=None,
        derandomize=True, phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck), report_multiple_bugs=False)


def check_echo(case, response):
    """A created task holds what was sent: validation never rewrites a value silently."""
    if case.operation.label != "POST /api/v1/tasks" or response.status_code != 201:
        return
    sent, task = case.body, response.json()
    assert task["title"] == sent["title"], (sent, task)
    assert task["description"] == sent.get("description", ""), (sent, task)
    assert task["priority"] == sent.get("priority", "medium"), (sent, task)
    assert task["tags"] == list(dict.fromkeys(sent.get("tags", []))), (sent, task)
    assert task["version"] == 1 and task["completed"] is False, task
    # (schemathesis keeps header names lowercase, each with a list of values)
    assert response.headers["location"] == ["/api/v1/tasks/" + task["id"]]
    assert response.headers["etag"] == ['"1"']


@pytest.mark.parametrize("operation_id", sorted(FUZZED))
def test_schemathesis_operation(live, operation_id):
    require_api(live)
    fuzz_budget_left(live)
    schema = load_schema()
    operation = schema.find_operation_by_id(operation_id)
    headers = live.bearer()
    check_functions = checks()

    statuses = collections.Counter()

    @fuzz_settings(FUZZED[operation_id])
    @hypothesis.given(case=operation.as_strategy())
    def run(case):
        response = case.call(base_url=live.base_url, headers=headers, timeout=scaled(30))
        statuses[response.status_code] += 1
        case.validate_response(response, checks=check_functions,
                               headers=dict(headers), transport_kwargs={"timeout": scaled(30)})
        check_echo(case, response)

    run()
    # The token was honoured: the requests reached the operation, not only the auth check.
    if operation_id not in ("signup", "login"):
        assert set(statuses) - {401}, statuses
    wanted = SUCCESS.get(operation_id)
    if wanted is not None:
        assert statuses[wanted] > 0, "no %d among %s" % (wanted, dict(statuses))


@pytest.mark.parametrize("operation_id", sorted(FUZZED))
def test_schemathesis_rejects_invalid_input(live, operation_id):
    """Requests that break the document (negative mode) get a documented 4xx problem, never
    a success: the document is not looser than the server, and bad input changes nothing."""
    require_api(live)
    fuzz_budget_left(live)
    from schemathesis import GenerationMode
    from schemathesis.specs.openapi.checks import negative_data_rejection

    operation = load_schema().find_operation_by_id(operation_id)
    headers = live.bearer()
    check_functions = checks() + [negative_data_rejection]

    @fuzz_settings(NEGATIVE_EXAMPLES)
    @hypothesis.given(case=operation.as_strategy(generation_mode=GenerationMode.NEGATIVE))
    def run(case):
        response = case.call(base_url=live.base_url, headers=headers, timeout=scaled(30))
        case.validate_response(response, checks=check_functions,
                               headers=dict(headers), transport_kwargs={"timeout": scaled(30)})

    run()


def test_schemathesis_stateful_task_lifecycle(live):
    """Follows the document's links (create -> get/patch/complete/delete/events by the
    new id), so generated requests reach real tasks, not only 404s. Each scenario runs as
    a new account: Hypothesis replays scenarios and requires the same requests to get
    the same answers, which tasks and Idempotency-Keys left by an earlier one would
    change (FlakyStrategyDefinition)."""
    require_api(live)
    fuzz_budget_left(live)
    schema = load_schema().include(path_regex="^/api/v1/tasks")
    base_url = live.base_url
    check_functions = checks()
    accounts = itertools.count(1)

    class Machine(schema.as_state_machine()):
        def setup(self):
            response = live.session.post(
                base_url + "/api/v1/auth/signup",
                json={"username": "openapi-scenario-%d" % next(accounts),
                      "password": "scenario-password-1"}, timeout=scaled(30))
            assert response.status_code == 201, response.text
            self.headers = {"Authorization": "Bearer " + response.json()["token"]}

        def get_call_kwargs(self, case):
            return {"base_url": base_url, "headers": self.headers, "timeout": scaled(30)}

        def validate_response(self, response, case, additional_checks=None, **kwargs):
            case.validate_response(response, checks=check_functions,
                                   headers=dict(self.headers), transport_kwargs=kwargs)
            check_echo(case, response)

    Machine.run(settings=hypothesis.settings(
        max_examples=max(1, int(STATEFUL_SCENARIOS * EXAMPLE_SCALE)), stateful_step_count=12,
        deadline=None, database=None, derandomize=True, phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck), report_multiple_bugs=False))
