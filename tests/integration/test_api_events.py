"""Proves the event stream (PRODUCT.md E1, E2; API.md "Events"): every change
appends the documented CloudEvent (envelope of src/tasks/event.h, data per
task.h), per-user sequences are dense from 1 (user.created first) even under
concurrent writes, /events pages with since/limit, /tasks/{id}/events is
oldest first and outlives deletion, folding a task's events in Python
reproduces GET /tasks/{id}, user.* events are recorded, streams are isolated
per user, and no password or hash ever appears in an event."""
import random
import threading

import pytest

from api import (API, PASSWORD, check_dense, check_envelope, describe, events_since, fold,
                 fresh_key, list_all, login, parse_time, problem, run_threads, server_fixture,
                 signup)

api_server = server_fixture()


@pytest.fixture(scope="module")
def alice(api_server):
    return signup(api_server, "alice")


@pytest.fixture(scope="module")
def bob(api_server, alice):
    return signup(api_server, "bob")


def last_sequence(user):
    events = events_since(user.api)
    return events[-1]["sequence"] if events else 0


def new_events(user, since):
    events = events_since(user.api, since)
    for event in events:
        check_envelope(event, user.id)
    return events


def test_stream_starts_with_user_created(bob):
    """A new user's stream starts at sequence 1 with user.created about that user."""
    events = new_events(bob, 0)
    first = events[0]
    assert first["type"] == "user.created" and first["sequence"] == 1
    assert first["subject"] == bob.id and first["userid"] == bob.id
    check_dense(events)


def test_every_task_change_appends_its_event(alice):
    """create, update, due change, complete, uncomplete and delete each append the
    documented event type and data, with subject = task id and actor = the user."""
    api = alice.api
    start = last_sequence(alice)
    created = api.create_task({"title": "evented", "due": "2031-05-01T09:00:00Z"})
    renamed = api.patch_task(created["id"], {"title": "evented 2"})
    moved = api.patch_task(created["id"], {"due": "2031-05-02T09:00:00Z"})
    done = api.post(API + "/tasks/%s/complete" % created["id"]).json()
    reopened = api.post(API + "/tasks/%s/uncomplete" % created["id"]).json()
    assert api.delete(API + "/tasks/" + created["id"]).status_code == 204
    events = new_events(alice, start)
    check_dense(events, start + 1)
    types = [event["type"] for event in events]
    assert types == ["task.created", "task.updated", "task.updated", "task.due_changed",
                     "task.completed", "task.uncompleted", "task.deleted"], types
    for event in events:
        assert event["subject"] == created["id"]
        assert event["actor"] == alice.id
        assert "idempotencykey" not in event
    assert events[0]["data"] == created
    assert events[1]["data"] == {"changes": {"title": {"old": "evented", "new": "evented 2"}},
                                 "version": 2, "updated_at": renamed["updated_at"]}
    assert events[2]["data"]["changes"] == {"due": {"old": "2031-05-01T09:00:00Z",
                                                    "new": "2031-05-02T09:00:00Z"}}
    assert events[2]["data"]["version"] == 3
    assert events[3]["data"] == {"old": "2031-05-01T09:00:00Z", "new": "2031-05-02T09:00:00Z",
                                 "version": 3, "updated_at": moved["updated_at"]}
    assert events[2]["correlationid"] == events[3]["correlationid"]
    assert events[4]["data"] == {"completed_at": done["completed_at"], "version": 4,
                                 "updated_at": done["updated_at"]}
    assert events[5]["data"] == {"previous_completed_at": done["completed_at"], "version": 5,
                                 "updated_at": reopened["updated_at"]}
    snapshot = dict(events[6]["data"])
    parse_time(snapshot.pop("deleted_at"))
    assert snapshot == reopened
    correlations = [event["correlationid"] for event in events]
    assert len(set(correlations)) == 6, "one correlation id per request"


def test_task_events_endpoint_is_oldest_first_and_outlives_delete(alice):
    """GET /tasks/{id}/events lists exactly that task's events, oldest first, also
    after deletion, and its fold is the deleted snapshot."""
    api = alice.api
    created = api.create_task({"title": "history"})
    other = api.create_task({"title": "noise"})
    api.patch_task(created["id"], {"priority": "low"})
    api.patch_task(other["id"], {"priority": "low"})
    last = api.patch_task(created["id"], {"tags": ["x"]})
    before = api.task_events(created["id"])
    assert [event["type"] for event in before] == ["task.created", "task.updated",
                                                   "task.updated"]
    assert all(event["subject"] == created["id"] for event in before)
    sequences = [event["sequence"] for event in before]
    assert sequences == sorted(sequences) and len(set(sequences)) == len(sequences)
    assert fold(before) == (last, False)
    assert api.delete(API + "/tasks/" + created["id"]).status_code == 204
    after = api.task_events(created["id"])
    assert after[:3] == before and after[3]["type"] == "task.deleted"
    assert fold(after) == (last, True)


def test_long_task_history_is_paginated_and_folds(alice):
    """A task with 70 changes: its history pages (default 50, then the rest via
    next_cursor, limit=7 pages alike) and the whole folds to GET /tasks/{id}."""
    api = alice.api
    task = api.create_task({"title": "long history"})
    for index in range(70):
        api.patch_task(task["id"], {"title": "long history %d" % index})
    first = api.get(API + "/tasks/%s/events" % task["id"])
    assert first.status_code == 200, describe(first)
    page = first.json()
    assert len(page["items"]) == 50 and page["next_cursor"] is not None
    everything = api.task_events(task["id"])
    assert len(everything) == 71 and everything[:50] == page["items"]
    paged, _ = list_all(api, API + "/tasks/%s/events" % task["id"], limit=7)
    assert paged == everything
    assert fold(everything) == (api.get_task(task["id"]), False)


def random_patch(rng):
    choice = rng.randrange(10)
    if choice == 0:
        return {"title": "title %d" % rng.randrange(1000)}
    if choice == 1:
        return {"description": rng.choice(["", "some words", None, "more words"])}
    if choice == 2:
        return {"priority": rng.choice(["low", "medium", "high", "urgent"])}
    if choice == 3:
        return {"tags": rng.choice([[], ["a"], ["a", "b"], ["c"], None])}
    if choice == 4:
        return {"due": rng.choice([None, "2031-01-01T00:00:00Z", "2032-02-02T12:30:00Z"])}
    if choice == 5:
        return {"timezone": rng.choice(["UTC", "Europe/Berlin", "Asia/Tokyo"])}
    if choice == 6:
        return {"reminders": rng.choice([[], [{"before": "PT5M"}], None,
                                         [{"at": "2031-01-01T00:00:00Z"}]])}
    if choice == 7:
        return {"recurrence": rng.choice([None, {"rule": "FREQ=DAILY", "from": "due"},
                                          {"rule": "FREQ=WEEKLY;BYDAY=MO,TU",
                                           "from": "completion"}])}
    if choice == 8:
        return {"completed": rng.choice([True, False])}
    return {"title": "multi %d" % rng.randrange(1000), "priority": "high",
            "due": rng.choice([None, "2033-03-03T03:03:03Z"])}


def test_fold_of_events_reproduces_the_task(alice):
    """After every one of 60 random changes (PATCH of each field, complete,
    uncomplete), folding the task's events in Python equals GET /tasks/{id}."""
    api = alice.api
    rng = random.Random(4)
    tasks = [api.create_task({"title": "fold %d" % i, "due": "2031-01-01T00:00:00Z"})
             for i in range(3)]
    for step in range(60):
        task = rng.choice(tasks)
        if step % 7 == 3:
            response = api.post(API + "/tasks/%s/%s" % (task["id"], rng.choice(
                ["complete", "uncomplete"])))
        else:
            response = api.patch(API + "/tasks/" + task["id"], random_patch(rng))
        assert response.status_code == 200, describe(response)
        current = api.get_task(task["id"])
        assert response.json() == current
        assert fold(api.task_events(task["id"])) == (current, False), step


def test_events_since_and_limit(alice):
    """/events?since=N returns the caller's events with sequence > N in order;
    limit bounds a page; a short page has next_cursor null."""
    api = alice.api
    for index in range(7):
        api.create_task({"title": "paged %d" % index})
    everything = new_events(alice, 0)
    check_dense(everything)
    total = everything[-1]["sequence"]
    for since in (0, 1, total - 5, total - 1, total, total + 10):
        response = api.get(API + "/events", params={"since": since, "limit": 500})
        assert response.status_code == 200, describe(response)
        items = response.json()["items"]
        assert items == [e for e in everything if e["sequence"] > since], since
    response = api.get(API + "/events", params={"since": 0, "limit": 3})
    page = response.json()
    assert [e["sequence"] for e in page["items"]] == [1, 2, 3]
    assert page["next_cursor"] is not None
    assert events_since(api, 0, limit=3) == everything
    default = api.get(API + "/events").json()["items"]
    assert default == everything[:50]


@pytest.mark.parametrize("params,field", [
    ({"since": "-1"}, "since"),
    ({"since": "abc"}, "since"),
    ({"since": "1.5"}, "since"),
    ({"limit": "0"}, "limit"),
    ({"limit": "501"}, "limit"),
    ({"limit": "x"}, "limit"),
    ({"after": "1"}, "after"),
])
def test_events_bad_parameters_are_400(alice, params, field):
    """Bad or unknown /events parameters are 400 naming the parameter."""
    problem(alice.api.get(API + "/events", params=params), 400, first_field=field)


def test_idempotency_key_is_carried_in_the_envelope(alice):
    """An event caused by a request with Idempotency-Key carries it as
    `idempotencykey`; other events do not have the member."""
    api = alice.api
    key = fresh_key()
    task = api.create_task({"title": "keyed"}, headers={"Idempotency-Key": key})
    events = api.task_events(task["id"])
    assert events[0]["idempotencykey"] == key
    api.patch_task(task["id"], {"title": "unkeyed"})
    assert "idempotencykey" not in api.task_events(task["id"])[1]


def test_user_events_and_no_secrets_in_events(api_server, bob):
    """login, PATCH /me and a password change append user.login, user.updated and
    user.password_changed; no event anywhere carries a password or its hash."""
    start = last_sequence(bob)
    assert login(api_server, "bob", PASSWORD).status_code == 200
    response = bob.api.patch(API + "/me", {"timezone": "Asia/Tokyo"})
    assert response.status_code == 200, describe(response)
    new_password = "bob's new password"
    response = bob.api.patch(API + "/me", {"password": new_password,
                                           "current_password": PASSWORD})
    assert response.status_code == 200, describe(response)
    events = new_events(bob, start)
    check_dense(events, start + 1)
    assert [e["type"] for e in events] == ["user.login", "user.updated",
                                           "user.password_changed"]
    for event in events:
        assert event["subject"] == bob.id
    response = bob.api.get(API + "/events", params={"since": 0, "limit": 500})
    text = response.text
    for secret in ("pbkdf2", PASSWORD, new_password, "password_hash"):
        assert secret not in text, secret
    # Put the password back for later tests.
    response = bob.api.patch(API + "/me", {"password": PASSWORD,
                                           "current_password": new_password})
    assert response.status_code == 200, describe(response)


def test_streams_are_isolated_per_user(alice, bob):
    """Each user's /events holds only their own events, with their own dense
    sequence; another user's task history is 404."""
    task = alice.api.create_task({"title": "private"})
    for user in (alice, bob):
        events = new_events(user, 0)
        check_dense(events)
        assert all(event["userid"] == user.id for event in events)
    assert task["id"] not in {event["subject"] for event in new_events(bob, 0)}
    problem(bob.api.get(API + "/tasks/%s/events" % task["id"]), 404)
    assert alice.api.delete(API + "/tasks/" + task["id"]).status_code == 204
    problem(bob.api.get(API + "/tasks/%s/events" % task["id"]), 404)
    assert len(alice.api.task_events(task["id"])) == 2


def test_concurrent_writes_keep_sequences_dense(alice, bob):
    """40 concurrent writes from each of two users leave each stream dense, without
    duplicates, with exactly one task.created per task."""
    starts = {user.id: last_sequence(user) for user in (alice, bob)}
    created = {alice.id: [], bob.id: []}
    lock = threading.Lock()

    def worker(user, index):
        api = user.api
        task = api.create_task({"title": "burst %d" % index})
        if index % 2:
            api.patch_task(task["id"], {"priority": "urgent"})
        with lock:
            created[user.id].append(task["id"])

    run_threads(worker, [(user, i) for i in range(40) for user in (alice, bob)])
    for user in (alice, bob):
        events = new_events(user, starts[user.id])
        check_dense(events, starts[user.id] + 1)
        creations = [e["subject"] for e in events if e["type"] == "task.created"]
        assert sorted(creations) == sorted(created[user.id])
        assert sum(e["type"] == "task.updated" for e in events) == 20


def test_event_times_follow_sequence(alice):
    """Event times never go backwards along one user's sequence."""
    events = new_events(alice, 0)
    times = [parse_time(event["time"]) for event in events]
    assert times == sorted(times)
