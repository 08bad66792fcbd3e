"""Proves Idempotency-Key (API.md "Conventions"; PRODUCT.md S1, E4): a retry
with the same key and body answers the first response with
Idempotent-Replayed: true and appends nothing; the same key with another body
or route is 422 naming "Idempotency-Key"; keys are per user; concurrent
duplicates all get one response and produce one task and one event; every
write route honours keys; stored responses survive a restart."""
import json
import socket

import pytest

from httpio import build_request

from api import (API, describe, events_since, fresh_key, problem, run_threads, server_fixture,
                 signup, tasks_all)

api_server = server_fixture()


@pytest.fixture(scope="module")
def alice(api_server):
    return signup(api_server, "alice")


@pytest.fixture(scope="module")
def bob(api_server, alice):
    return signup(api_server, "bob")


def replayed(response):
    return response.headers.get("Idempotent-Replayed", "").lower() == "true"


def keyed(key):
    return {"Idempotency-Key": key}


def events_with_key(user, key):
    return [event for event in events_since(user.api) if event.get("idempotencykey") == key]


def same_response(first, second):
    assert second.status_code == first.status_code, (describe(first), describe(second))
    assert second.content == first.content, (describe(first), describe(second))
    for header in ("Location", "ETag", "Content-Type"):
        assert second.headers.get(header) == first.headers.get(header), header


def test_create_retry_replays_the_first_response(alice):
    """A retried POST /tasks with the same key and body answers the same 201, body,
    Location and ETag with Idempotent-Replayed: true, and creates nothing more."""
    key = fresh_key()
    body = {"title": "once only", "tags": ["idem"]}
    first = alice.api.post(API + "/tasks", body, headers=keyed(key))
    assert first.status_code == 201, describe(first)
    assert not replayed(first)
    for _ in range(3):
        again = alice.api.post(API + "/tasks", body, headers=keyed(key))
        same_response(first, again)
        assert replayed(again), describe(again)
    assert [t["title"] for t in tasks_all(alice.api)].count("once only") == 1
    assert [e["type"] for e in events_with_key(alice, key)] == ["task.created"]


def test_same_key_other_body_is_422(alice):
    """The same key with another body is 422 naming "Idempotency-Key"; nothing is
    created."""
    key = fresh_key()
    first = alice.api.post(API + "/tasks", {"title": "original"}, headers=keyed(key))
    assert first.status_code == 201
    before = tasks_all(alice.api)
    problem(alice.api.post(API + "/tasks", {"title": "different"}, headers=keyed(key)), 422,
            field="Idempotency-Key")
    assert tasks_all(alice.api) == before


def test_same_key_other_route_is_422(alice):
    """A key used for one route is 422 on another route."""
    key = fresh_key()
    task = alice.api.create_task({"title": "route bound"}, headers=keyed(key))
    problem(alice.api.post(API + "/tasks/%s/complete" % task["id"], headers=keyed(key)), 422,
            field="Idempotency-Key")
    other = alice.api.create_task({"title": "other target"})
    problem(alice.api.patch(API + "/tasks/" + other["id"], {"title": "route bound"},
                            headers=keyed(key)), 422, field="Idempotency-Key")
    assert alice.api.get_task(task["id"])["completed"] is False
    assert alice.api.get_task(other["id"])["title"] == "other target"


def test_keys_are_per_user(alice, bob):
    """bob using alice's key and body creates his own task (not a replay of hers)."""
    key = fresh_key()
    body = {"title": "shared key"}
    mine = alice.api.post(API + "/tasks", body, headers=keyed(key))
    theirs = bob.api.post(API + "/tasks", body, headers=keyed(key))
    assert mine.status_code == theirs.status_code == 201
    assert not replayed(theirs)
    assert mine.json()["id"] != theirs.json()["id"]
    problem(bob.api.get(API + "/tasks/" + mine.json()["id"]), 404)


def test_concurrent_duplicate_creates_make_one_task(alice):
    """20 concurrent POSTs with one key and body all answer the same 201 and body;
    exactly one task and one event exist; at most one answer is not a replay."""
    key = fresh_key()
    body = {"title": "stampede", "priority": "urgent"}

    def send():
        return alice.api.post(API + "/tasks", body, headers=keyed(key))

    results = run_threads(send, [()] * 20)
    for response in results:
        same_response(results[0], response)
    assert results[0].status_code == 201, describe(results[0])
    assert sum(not replayed(r) for r in results) <= 1
    assert [t["title"] for t in tasks_all(alice.api)].count("stampede") == 1
    assert len(events_with_key(alice, key)) == 1


def test_concurrent_same_key_different_bodies(alice):
    """10 concurrent POSTs sharing one key with different bodies: exactly one task is
    created; every other answer is its replay (same body) or 422 naming the key."""
    key = fresh_key()

    def send(index):
        return alice.api.post(API + "/tasks", {"title": "contender %d" % index},
                              headers=keyed(key))

    results = run_threads(send, [(i,) for i in range(10)])
    created = [r for r in results if r.status_code == 201]
    assert created, [describe(r) for r in results]
    for response in created:
        assert response.content == created[0].content
    for response in results:
        if response.status_code != 201:
            problem(response, 422, field="Idempotency-Key")
    titles = [t["title"] for t in tasks_all(alice.api) if t["title"].startswith("contender")]
    assert titles == [created[0].json()["title"]]
    assert len(events_with_key(alice, key)) == 1


def test_concurrent_duplicate_patches_change_once(alice):
    """20 concurrent PATCHes with one key bump the version once."""
    task = alice.api.create_task({"title": "patch stampede"})
    key = fresh_key()

    def send():
        return alice.api.patch(API + "/tasks/" + task["id"], {"priority": "low"},
                               headers=keyed(key))

    results = run_threads(send, [()] * 20)
    for response in results:
        same_response(results[0], response)
    assert results[0].status_code == 200 and results[0].json()["version"] == 2
    assert alice.api.get_task(task["id"])["version"] == 2
    assert len(events_with_key(alice, key)) == 1


def test_patch_retry_replays_the_old_response(alice):
    """A retried PATCH answers its first response even after a later change, and
    does not undo or repeat anything."""
    task = alice.api.create_task({"title": "v1"})
    key = fresh_key()
    first = alice.api.patch(API + "/tasks/" + task["id"], {"title": "v2"}, headers=keyed(key))
    assert first.status_code == 200 and first.json()["version"] == 2
    later = alice.api.patch_task(task["id"], {"title": "v3"})
    again = alice.api.patch(API + "/tasks/" + task["id"], {"title": "v2"}, headers=keyed(key))
    same_response(first, again)
    assert replayed(again)
    assert alice.api.get_task(task["id"]) == later
    assert len(alice.api.task_events(task["id"])) == 3


def test_complete_uncomplete_delete_retries(alice):
    """complete, uncomplete and DELETE retried with their keys replay (DELETE: 204,
    not 404) and append nothing."""
    task = alice.api.create_task({"title": "lifecycle"})
    path = API + "/tasks/" + task["id"]
    for method, suffix, status in (("POST", "/complete", 200), ("POST", "/uncomplete", 200),
                                   ("DELETE", "", 204)):
        key = fresh_key()
        first = alice.api.request(method, path + suffix, headers=keyed(key))
        assert first.status_code == status, describe(first)
        again = alice.api.request(method, path + suffix, headers=keyed(key))
        same_response(first, again)
        assert replayed(again), describe(again)
    types = [e["type"] for e in alice.api.task_events(task["id"])]
    assert types == ["task.created", "task.completed", "task.uncompleted", "task.deleted"]


def test_key_length_is_bounded(alice):
    """A 255-byte key is accepted; a 256-byte key is rejected naming
    "Idempotency-Key" and creates nothing."""
    ok = alice.api.post(API + "/tasks", {"title": "long key"}, headers=keyed("k" * 255))
    assert ok.status_code == 201, describe(ok)
    before = tasks_all(alice.api)
    response = alice.api.post(API + "/tasks", {"title": "too long key"},
                              headers=keyed("k" * 256))
    assert response.status_code in (400, 422), describe(response)
    problem(response, response.status_code, field="Idempotency-Key")
    assert tasks_all(alice.api) == before


@pytest.mark.parametrize("key", ["", "has space", "caf\u00e9".encode().decode("latin-1"),
                                 "tab\there"])
def test_key_must_be_visible_ascii(alice, key):
    """An empty key or one with spaces, control or non-ASCII bytes is 400 naming
    "Idempotency-Key" and creates nothing."""
    before = tasks_all(alice.api)
    response = alice.api.post(API + "/tasks", {"title": "odd key"}, headers=keyed(key))
    problem(response, 400, field="Idempotency-Key")
    assert tasks_all(alice.api) == before


def test_failed_requests_do_not_consume_the_key(alice):
    """A request rejected by validation stores nothing: the same key then works for
    a valid body."""
    key = fresh_key()
    problem(alice.api.post(API + "/tasks", {"title": ""}, headers=keyed(key)), 422,
            field="title")
    response = alice.api.post(API + "/tasks", {"title": "second try"}, headers=keyed(key))
    assert response.status_code == 201, describe(response)
    assert not replayed(response)


def test_clients_hanging_up_mid_write_then_retrying(api_server, alice):
    """30 clients send a keyed create and hang up before the answer; their retries
    then leave exactly one task each and a dense stream."""
    headers = {"Authorization": "Bearer " + alice.token, "Content-Type": "application/json"}
    keys = [fresh_key() for _ in range(30)]
    for index, key in enumerate(keys):
        with socket.create_connection(("127.0.0.1", api_server.process.port)) as sock:
            sock.sendall(build_request("POST", API + "/tasks", dict(headers, **keyed(key)),
                                       json.dumps({"title": "hung up %d" % index})))
    for index, key in enumerate(keys):
        response = alice.api.post(API + "/tasks", {"title": "hung up %d" % index},
                                  headers=keyed(key))
        assert response.status_code == 201, describe(response)
    titles = [t["title"] for t in tasks_all(alice.api) if t["title"].startswith("hung up")]
    assert sorted(titles) == sorted("hung up %d" % i for i in range(30))
    events = events_since(alice.api)
    assert [e["sequence"] for e in events] == list(range(1, len(events) + 1))


def test_replays_survive_a_restart(api_server, alice):
    """Stored responses outlive a restart: after SIGTERM and start, retries still
    replay and create nothing (this test runs last: it restarts the server)."""
    key = fresh_key()
    body = {"title": "durable key"}
    first = alice.api.post(API + "/tasks", body, headers=keyed(key))
    assert first.status_code == 201
    task_id = first.json()["id"]
    patch_key = fresh_key()
    patched = alice.api.patch(API + "/tasks/" + task_id, {"title": "durable key 2"},
                              headers=keyed(patch_key))
    api_server.restart()
    again = alice.api.post(API + "/tasks", body, headers=keyed(key))
    same_response(first, again)
    assert replayed(again)
    again = alice.api.patch(API + "/tasks/" + task_id, {"title": "durable key 2"},
                            headers=keyed(patch_key))
    same_response(patched, again)
    assert replayed(again)
    assert len(events_with_key(alice, key)) == 1
