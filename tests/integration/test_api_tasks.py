"""Proves the task routes (PRODUCT.md T1, T2, T4; API.md "Tasks"): create with
defaults and every field, validation (422 naming the field by dotted path, 400
for malformed JSON or a wrong content type), read, partial update with null
clearing, complete/uncomplete, delete, Location and ETag headers, If-Match
(strong, "*", 412 with the current version), last-write-wins without
If-Match, and 404 for deleted, foreign and malformed ids."""
import json
from datetime import datetime, timedelta, timezone

import pytest

from httpio import build_request

from api import (API, TASK_FIELDS, UUID_RE, check_task, describe, etag_version, parse_time,
                 problem, run_threads, server_fixture, signup)

api_server = server_fixture()

FULL = {
    "title": "Write the report",
    "description": "Quarterly numbers, with charts",
    "priority": "high",
    "tags": ["work", "q1"],
    "due": "2031-03-01T09:30:00Z",
    "timezone": "Europe/Paris",
    "recurrence": {"rule": "FREQ=WEEKLY;BYDAY=MO", "from": "due"},
    "reminders": [{"before": "PT1H"}, {"at": "2031-03-01T08:00:00Z"}],
}


@pytest.fixture(scope="module")
def alice(api_server):
    return signup(api_server, "alice")


@pytest.fixture(scope="module")
def bob(api_server, alice):
    return signup(api_server, "bob")


def event_types(user, task_id):
    return [event["type"] for event in user.api.task_events(task_id)]


def test_create_minimal_task_gets_defaults(alice):
    """POST /tasks with only a title answers 201, Location, ETag "1" and the defaults."""
    response = alice.api.post(API + "/tasks", {"title": "Buy milk"})
    assert response.status_code == 201, describe(response)
    task = response.json()
    check_task(task)
    assert response.headers["Location"] == API + "/tasks/" + task["id"]
    assert response.headers["ETag"] == '"1"'
    assert response.headers["Content-Type"].split(";")[0] == "application/json"
    assert task["title"] == "Buy milk"
    assert task["description"] == ""
    assert task["completed"] is False and task["completed_at"] is None
    assert task["priority"] == "medium"
    assert task["tags"] == [] and task["due"] is None and task["recurrence"] is None
    assert task["reminders"] == [] and task["parent_id"] is None
    assert task["timezone"] == alice.user["timezone"] == "UTC"
    assert task["created_at"] == task["updated_at"]
    assert task["version"] == 1
    assert abs(parse_time(task["created_at"]) - datetime.now(timezone.utc)) < timedelta(minutes=5)


def test_create_with_every_field_echoes_them(alice):
    """Every writable field given on create comes back as given."""
    task = alice.api.create_task(FULL)
    check_task(task)
    for field, value in FULL.items():
        if field == "recurrence":
            # The server adds where the series starts (its first due date) and the index.
            value = dict(value, series_start=FULL["due"], index=0)
        assert task[field] == value, (field, task[field], value)
    assert alice.api.get_task(task["id"]) == task


def test_due_without_reminders_gets_the_default_reminder(alice):
    """A task with a due date and no reminders member gets [{"before":"PT15M"}];
    an explicit empty list stays empty; no due date, no default."""
    task = alice.api.create_task({"title": "due", "due": "2031-01-01T00:00:00Z"})
    assert task["reminders"] == [{"before": "PT15M"}]
    task = alice.api.create_task({"title": "due", "due": "2031-01-01T00:00:00Z",
                                  "reminders": []})
    assert task["reminders"] == []
    assert alice.api.create_task({"title": "no due"})["reminders"] == []


def test_recurrence_rule_is_normalised(alice):
    """recurrence.rule is read case-insensitively and answered in its normalised text;
    "from" defaults to "due"."""
    task = alice.api.create_task({"title": "weekly",
                                  "recurrence": {"rule": "freq=weekly;byday=fr,mo;interval=1"}})
    assert task["recurrence"] == {"rule": "FREQ=WEEKLY;BYDAY=MO,FR", "from": "due",
                                  "series_start": None, "index": 0}


def test_times_are_normalised_to_utc(alice):
    """A due time with an offset is stored and answered in UTC."""
    task = alice.api.create_task({"title": "offset", "due": "2031-06-01T12:00:00+02:00"})
    assert task["due"] == "2031-06-01T10:00:00Z"


def test_title_length_is_counted_in_characters(alice):
    """Titles are 1..500 characters: 500 multi-byte characters pass, 501 and "" do not."""
    task = alice.api.create_task({"title": "é" * 500})
    assert task["title"] == "é" * 500
    problem(alice.api.post(API + "/tasks", {"title": "a" * 501}), 422, field="title")
    problem(alice.api.post(API + "/tasks", {"title": ""}), 422, field="title")


@pytest.mark.parametrize("body,field", [
    ({}, "title"),
    ({"title": None}, "title"),
    ({"title": 5}, "title"),
    ({"title": "t", "description": 5}, "description"),
    ({"title": "t", "priority": "critical"}, "priority"),
    ({"title": "t", "priority": None}, "priority"),
    ({"title": "t", "tags": "work"}, "tags"),
    ({"title": "t", "tags": ["ok", 3]}, "tags.1"),
    ({"title": "t", "tags": ["x" * 65]}, "tags.0"),
    ({"title": "t", "tags": ["t%d" % i for i in range(51)]}, "tags"),
    ({"title": "t", "due": "tomorrow"}, "due"),
    ({"title": "t", "due": "2031-02-30T00:00:00Z"}, "due"),
    ({"title": "t", "due": 1700000000}, "due"),
    ({"title": "t", "timezone": "Mars/Olympus"}, "timezone"),
    ({"title": "t", "recurrence": {"rule": "FREQ=SOMETIMES", "from": "due"}},
     "recurrence.rule"),
    ({"title": "t", "recurrence": {"rule": "FREQ=DAILY", "from": "whenever"}},
     "recurrence.from"),
    ({"title": "t", "recurrence": "FREQ=DAILY"}, "recurrence"),
    ({"title": "t", "reminders": [{"before": "15 minutes"}]}, "reminders.0.before"),
    ({"title": "t", "reminders": [{"before": "PT5M"}, {"at": "noon"}]}, "reminders.1.at"),
    ({"title": "t", "reminders": {"before": "PT5M"}}, "reminders"),
    ({"title": "t", "colour": "red"}, "colour"),
    ({"title": "t", "id": "0190c2a0-0000-7000-8000-000000000000"}, "id"),
    ({"title": "t", "version": 7}, "version"),
    ({"title": "t", "created_at": "2030-01-01T00:00:00Z"}, "created_at"),
    ({"title": "t", "updated_at": "2030-01-01T00:00:00Z"}, "updated_at"),
    ({"title": "t", "completed_at": "2030-01-01T00:00:00Z"}, "completed_at"),
    ({"title": "t", "parent_id": None}, "parent_id"),
])
def test_create_rejects_invalid_bodies_with_422(alice, body, field):
    """Each invalid or unknown or read-only member is 422 naming it, and creates nothing."""
    before = alice.api.get(API + "/tasks", params={"status": "all", "limit": 500}).json()
    problem(alice.api.post(API + "/tasks", body), 422, field=field)
    after = alice.api.get(API + "/tasks", params={"status": "all", "limit": 500}).json()
    assert before == after


def test_text_limits(alice):
    """description holds up to 65536 bytes (not one more); control characters are
    refused in titles and tags, and allowed in descriptions only as tab and line
    breaks."""
    task = alice.api.create_task({"title": "big", "description": "d" * 65536})
    assert len(task["description"]) == 65536
    problem(alice.api.post(API + "/tasks", {"title": "big", "description": "d" * 65537}), 422,
            field="description")
    problem(alice.api.post(API + "/tasks", {"title": "bell\u0007"}), 422, field="title")
    problem(alice.api.post(API + "/tasks", {"title": "t", "tags": ["a\u0000b"]}), 422,
            field="tags.0")
    problem(alice.api.post(API + "/tasks", {"title": "t", "description": "esc\u001b"}), 422,
            field="description")
    task = alice.api.create_task({"title": "multi-line", "description": "a\tb\nc\r\nd"})
    assert task["description"] == "a\tb\nc\r\nd"
    task = alice.api.create_task({"title": "\u2603 snow \U0001f600", "tags": ["\u00e9t\u00e9"]})
    assert task["title"] == "\u2603 snow \U0001f600" and task["tags"] == ["\u00e9t\u00e9"]


def test_create_reports_several_errors_at_once(alice):
    """A body with several bad members names each of them."""
    document = problem(alice.api.post(API + "/tasks", {"title": "", "priority": "x",
                                                       "colour": 1}), 422)
    fields = {error["field"] for error in document["errors"]}
    assert {"title", "priority", "colour"} <= fields, document


@pytest.mark.parametrize("raw,content_type", [
    (b'{"title": "x"', "application/json"),
    (b'{"title": "x",}', "application/json"),
    (b"", "application/json"),
    (b"[]", "application/json"),
    (b'"title"', "application/json"),
    (b"\xff\xfe{}", "application/json"),
    (b'{"title": "x"}', "text/plain"),
    (b'{"title": "x"}', "application/x-www-form-urlencoded"),
    (b'{"title": "x"}', None),
])
def test_create_rejects_malformed_requests_with_400(alice, raw, content_type):
    """Malformed JSON, a non-object body or a wrong Content-Type is 400."""
    problem(alice.api.post(API + "/tasks", raw=raw, content_type=content_type), 400)


def test_json_content_type_with_charset_is_accepted(alice):
    """application/json; charset=utf-8 is JSON."""
    response = alice.api.post(API + "/tasks", raw=b'{"title":"charset"}',
                              content_type="application/json; charset=utf-8")
    assert response.status_code == 201, describe(response)


def test_get_returns_the_task_with_its_etag(alice):
    """GET /tasks/{id} answers the task as created, with ETag "<version>"."""
    created = alice.api.create_task({"title": "read me"})
    response = alice.api.get(API + "/tasks/" + created["id"])
    assert response.status_code == 200, describe(response)
    assert response.json() == created
    assert etag_version(response) == 1


def test_patch_changes_only_named_fields(alice):
    """PATCH is partial: named fields change, version +1, updated_at moves, the
    rest stays; the response ETag is the new version."""
    created = alice.api.create_task(FULL)
    response = alice.api.patch(API + "/tasks/" + created["id"], {"title": "Renamed",
                                                                 "tags": ["home"]})
    assert response.status_code == 200, describe(response)
    task = response.json()
    assert etag_version(response) == task["version"] == 2
    assert task["title"] == "Renamed" and task["tags"] == ["home"]
    for field in TASK_FIELDS - {"title", "tags", "version", "updated_at"}:
        assert task[field] == created[field], field
    assert parse_time(task["updated_at"]) >= parse_time(created["updated_at"])
    assert alice.api.get_task(created["id"]) == task


def test_patch_null_clears(alice):
    """PATCH with null clears description, tags, due, recurrence and reminders."""
    created = alice.api.create_task(FULL)
    task = alice.api.patch_task(created["id"], {"description": None, "tags": None, "due": None,
                                                "recurrence": None, "reminders": None})
    assert task["description"] == "" and task["tags"] == [] and task["due"] is None
    assert task["recurrence"] is None and task["reminders"] == []
    assert task["version"] == 2


@pytest.mark.parametrize("body,field", [
    ({"title": None}, "title"),
    ({"title": ""}, "title"),
    ({"priority": None}, "priority"),
    ({"timezone": None}, "timezone"),
    ({"priority": "extreme"}, "priority"),
    ({"due": "soon"}, "due"),
    ({"reminders": [{"before": "-PT5M"}]}, "reminders.0.before"),
    ({"recurrence": {"rule": "FREQ=DAILY;COUNT=x", "from": "due"}}, "recurrence.rule"),
    ({"colour": "red"}, "colour"),
    ({"id": "x"}, "id"),
    ({"version": 9}, "version"),
    ({"created_at": "2030-01-01T00:00:00Z"}, "created_at"),
    ({"completed": "yes"}, "completed"),
])
def test_patch_rejects_invalid_bodies_with_422_and_changes_nothing(alice, body, field):
    """Invalid, unknown and read-only members on PATCH are 422 naming them; the task
    and its history stay as they were."""
    created = alice.api.create_task({"title": "stable"})
    problem(alice.api.patch(API + "/tasks/" + created["id"], body), 422, field=field)
    assert alice.api.get_task(created["id"]) == created
    assert event_types(alice, created["id"]) == ["task.created"]


def test_patch_rejects_malformed_requests_with_400(alice):
    """Malformed JSON or a wrong Content-Type on PATCH is 400 and changes nothing."""
    created = alice.api.create_task({"title": "stable"})
    path = API + "/tasks/" + created["id"]
    problem(alice.api.patch(path, raw=b'{"title":'), 400)
    problem(alice.api.patch(path, raw=b'["title"]'), 400)
    problem(alice.api.patch(path, raw=b'{"title":"x"}', content_type="text/plain"), 400)
    assert alice.api.get_task(created["id"]) == created


def test_empty_patch_changes_nothing(alice):
    """PATCH {} answers 200 with the task unchanged: same version, no event."""
    created = alice.api.create_task({"title": "untouched"})
    response = alice.api.patch(API + "/tasks/" + created["id"], {})
    assert response.status_code == 200, describe(response)
    assert response.json() == created
    assert etag_version(response) == 1
    assert event_types(alice, created["id"]) == ["task.created"]


def test_patch_to_identical_values_changes_nothing(alice):
    """PATCH naming fields with their current values is not a change: no new version,
    no event."""
    created = alice.api.create_task({"title": "same", "priority": "low", "tags": ["a"]})
    task = alice.api.patch_task(created["id"], {"title": "same", "priority": "low",
                                                "tags": ["a"]})
    assert task == created
    assert event_types(alice, created["id"]) == ["task.created"]


def test_complete_and_uncomplete(alice):
    """complete sets completed and completed_at (200 task), a second complete changes
    nothing; uncomplete clears them, a second uncomplete changes nothing."""
    created = alice.api.create_task({"title": "finish me"})
    path = API + "/tasks/" + created["id"]
    response = alice.api.post(path + "/complete")
    assert response.status_code == 200, describe(response)
    done = response.json()
    assert done["completed"] is True and done["version"] == 2
    assert etag_version(response) == 2
    parse_time(done["completed_at"])
    again = alice.api.post(path + "/complete")
    assert again.status_code == 200 and again.json() == done
    response = alice.api.post(path + "/uncomplete")
    assert response.status_code == 200, describe(response)
    reopened = response.json()
    assert reopened["completed"] is False and reopened["completed_at"] is None
    assert reopened["version"] == 3
    again = alice.api.post(path + "/uncomplete")
    assert again.status_code == 200 and again.json() == reopened
    assert event_types(alice, created["id"]) == ["task.created", "task.completed",
                                                 "task.uncompleted"]


def test_complete_and_uncomplete_accept_an_empty_json_body(alice):
    """complete/uncomplete need no body; an empty JSON object is fine too."""
    created = alice.api.create_task({"title": "body"})
    path = API + "/tasks/" + created["id"]
    assert alice.api.post(path + "/complete", {}).status_code == 200
    assert alice.api.post(path + "/uncomplete", {}).status_code == 200


def test_patch_completed_true_is_complete(alice):
    """PATCH {"completed": true} completes (task.completed event); false reopens."""
    created = alice.api.create_task({"title": "patch-complete"})
    task = alice.api.patch_task(created["id"], {"completed": True})
    assert task["completed"] is True and task["completed_at"] is not None
    assert task["version"] == 2
    task = alice.api.patch_task(created["id"], {"completed": False})
    assert task["completed"] is False and task["completed_at"] is None
    assert event_types(alice, created["id"]) == ["task.created", "task.completed",
                                                 "task.uncompleted"]


def test_delete_then_every_route_is_404(alice):
    """DELETE answers 204 with no body; afterwards every route on the id is 404
    (except its event history)."""
    created = alice.api.create_task({"title": "doomed"})
    path = API + "/tasks/" + created["id"]
    response = alice.api.delete(path)
    assert response.status_code == 204, describe(response)
    assert response.content == b""
    problem(alice.api.get(path), 404)
    problem(alice.api.patch(path, {"title": "zombie"}), 404)
    problem(alice.api.delete(path), 404)
    problem(alice.api.post(path + "/complete"), 404)
    problem(alice.api.post(path + "/uncomplete"), 404)
    assert event_types(alice, created["id"]) == ["task.created", "task.deleted"]


def test_foreign_task_is_404_on_every_route(alice, bob):
    """Another user's task id is 404 on every task route, indistinguishable from a
    missing one, and nothing changes."""
    created = alice.api.create_task({"title": "alice's"})
    path = API + "/tasks/" + created["id"]
    missing = API + "/tasks/0190c2a0-0000-7000-8000-000000000000"
    for suffix_method in (("", "GET"), ("", "PATCH"), ("", "DELETE"), ("/complete", "POST"),
                          ("/uncomplete", "POST"), ("/events", "GET")):
        suffix, method = suffix_method
        body = {"title": "mine now"} if method == "PATCH" else None
        kwargs = {"body": body} if body is not None else {}
        foreign = bob.api.request(method, path + suffix, **kwargs)
        absent = bob.api.request(method, missing + suffix, **kwargs)
        problem(foreign, 404)
        problem(absent, 404)
        for member in ("type", "title"):
            assert foreign.json()[member] == absent.json()[member], (foreign.json(),
                                                                     absent.json())
    assert alice.api.get_task(created["id"]) == created


@pytest.mark.parametrize("task_id", ["nope", "123", "0190c2a0-0000-7000-8000-00000000000",
                                     "0190C2A0-0000-7000-8000-00000000000Z",
                                     "x" * 300])
def test_malformed_ids_are_404(alice, task_id):
    """Malformed task ids are 404 on every task route."""
    path = API + "/tasks/" + task_id
    problem(alice.api.get(path), 404)
    problem(alice.api.patch(path, {"title": "x"}), 404)
    problem(alice.api.delete(path), 404)
    problem(alice.api.post(path + "/complete"), 404)
    problem(alice.api.post(path + "/uncomplete"), 404)
    problem(alice.api.get(path + "/events"), 404)


def test_if_match_matching_version_succeeds(alice):
    """If-Match with the current version (strong, quoted) or "*" lets PATCH, complete,
    uncomplete and DELETE through."""
    created = alice.api.create_task({"title": "guarded"})
    path = API + "/tasks/" + created["id"]
    task = alice.api.patch_task(created["id"], {"title": "guarded 2"},
                                headers={"If-Match": '"1"'})
    assert task["version"] == 2
    response = alice.api.post(path + "/complete", headers={"If-Match": '"2"'})
    assert response.status_code == 200 and response.json()["version"] == 3
    response = alice.api.post(path + "/uncomplete", headers={"If-Match": "*"})
    assert response.status_code == 200 and response.json()["version"] == 4
    task = alice.api.patch_task(created["id"], {"priority": "low"}, headers={"If-Match": "*"})
    assert task["version"] == 5
    response = alice.api.delete(path, headers={"If-Match": '"5"'})
    assert response.status_code == 204, describe(response)


def test_if_match_mismatch_is_412_with_the_current_version(alice):
    """A stale If-Match is 412 problem+json naming the current version, on every
    conditional route, and changes nothing."""
    created = alice.api.create_task({"title": "contested"})
    current = alice.api.patch_task(created["id"], {"title": "contested 2"})
    path = API + "/tasks/" + created["id"]
    for method, suffix, body in (("PATCH", "", {"title": "lost update"}),
                                 ("POST", "/complete", None), ("POST", "/uncomplete", None),
                                 ("DELETE", "", None)):
        kwargs = {"body": body} if body is not None else {}
        response = alice.api.request(method, path + suffix, headers={"If-Match": '"1"'},
                                     **kwargs)
        document = problem(response, 412)
        assert "2" in document["detail"], document
    assert alice.api.get_task(created["id"]) == current
    assert event_types(alice, created["id"]) == ["task.created", "task.updated"]


@pytest.mark.parametrize("value", ['W/"1"', "1", '"x"', ""])
def test_if_match_weak_or_malformed_never_matches(alice, value):
    """A weak or malformed If-Match never lets a write through (412, or 400 for a
    malformed one) and changes nothing."""
    created = alice.api.create_task({"title": "strict"})
    response = alice.api.patch(API + "/tasks/" + created["id"], {"title": "changed"},
                               headers={"If-Match": value})
    assert response.status_code in (400, 412), describe(response)
    problem(response, response.status_code)
    assert alice.api.get_task(created["id"]) == created


def test_malformed_if_match_list_changes_nothing(alice):
    """A malformed If-Match list is bad input and changes nothing, even when one of
    its well-formed members names the current version (invariant 6)."""
    created = alice.api.create_task({"title": "malformed list"})
    response = alice.api.patch(API + "/tasks/" + created["id"], {"title": "changed"},
                               headers={"If-Match": '"1", "2"x'})
    assert response.status_code in (400, 412), describe(response)
    assert alice.api.get_task(created["id"]) == created


def test_if_match_list_matches_any_member(alice):
    """If-Match with a list of strong tags matches when one of them is current."""
    created = alice.api.create_task({"title": "listed"})
    response = alice.api.patch(API + "/tasks/" + created["id"], {"title": "listed 2"},
                               headers={"If-Match": '"7", "1"'})
    assert response.status_code == 200, describe(response)


def test_concurrent_conditional_patches_let_exactly_one_win(api_server, alice):
    """T4: 16 clients PATCH the same version with If-Match "1" at once: exactly one
    gets 200 (version 2), the others 412."""
    created = alice.api.create_task({"title": "race"})
    def worker(index):
        return alice.api.patch(API + "/tasks/" + created["id"], {"title": "winner %d" % index},
                               headers={"If-Match": '"1"'})

    results = run_threads(worker, [(i,) for i in range(16)])
    statuses = sorted(response.status_code for response in results)
    assert statuses == [200] + [412] * 15, statuses
    winner = next(r for r in results if r.status_code == 200).json()
    assert winner["version"] == 2
    assert alice.api.get_task(created["id"]) == winner


def test_unconditional_concurrent_patches_are_last_write_wins(alice):
    """T4: 16 unconditional PATCHes at once all succeed, each gets its own version
    (2..17), and the task ends as the highest version says."""
    created = alice.api.create_task({"title": "lww"})
    def worker(index):
        return alice.api.patch(API + "/tasks/" + created["id"], {"title": "writer %d" % index})

    results = run_threads(worker, [(i,) for i in range(16)])
    assert all(r.status_code == 200 for r in results), [describe(r) for r in results
                                                        if r.status_code != 200]
    versions = sorted(r.json()["version"] for r in results)
    assert versions == list(range(2, 18)), versions
    last = max((r.json() for r in results), key=lambda task: task["version"])
    assert alice.api.get_task(created["id"]) == last


def test_task_ids_are_unique_uuids(alice):
    """Task ids are canonical lowercase UUIDs, unique across many creates."""
    ids = {alice.api.create_task({"title": "id %d" % i})["id"] for i in range(30)}
    assert len(ids) == 30
    assert all(UUID_RE.match(task_id) for task_id in ids)


def test_unknown_methods_and_routes(alice):
    """A wrong method on a task route is 405 and an unknown route under /api/v1 is 404,
    both problem+json."""
    created = alice.api.create_task({"title": "methods"})
    response = alice.api.request("PUT", API + "/tasks/" + created["id"], body={"title": "x"})
    problem(response, 405)
    assert "PATCH" in response.headers.get("Allow", ""), describe(response)
    problem(alice.api.get(API + "/no-such-route"), 404)


def test_pipelined_writes_answer_in_order_and_are_read_back(api_server, alice):
    """30 POSTs pipelined on one connection, with list reads among them, answer in
    request order, and each read sees every write sent before it."""
    headers = {"Authorization": "Bearer " + alice.token, "Content-Type": "application/json"}
    before = len(alice.api.get(API + "/tasks", params={"q": "pipelined", "limit": 500})
                 .json()["items"])
    data = b""
    for index in range(30):
        data += build_request("POST", API + "/tasks", headers,
                              json.dumps({"title": "pipelined %d" % index}))
        if index % 5 == 4:
            data += build_request("GET", API + "/tasks?q=pipelined&limit=500",
                                  {"Authorization": headers["Authorization"]})
    with api_server.process.connect() as conn:
        conn.send(data)
        for index in range(30):
            response = conn.read_response()
            assert response.status == 201, response
            assert response.json()["title"] == "pipelined %d" % index
            if index % 5 == 4:
                listing = conn.read_response()
                assert listing.status == 200, listing
                assert len(listing.json()["items"]) == before + index + 1
