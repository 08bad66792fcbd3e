"""Proves the audit trail (PRODUCT.md A1, A2; API.md "Audit"): every operation
is recorded with time, user, actor, type, task and payload (the event's
data), chronologically; users see only their own entries (403 when naming
someone else), admins see everything and filter by user; filters by type
(repeatable), task and time range; cursor pagination; 400 naming bad
parameters; no password or hash in any payload."""
import pytest

from api import (API, PASSWORD, UUID_RE, describe, list_all, login, parse_time, problem,
                 server_fixture, signup)

api_server = server_fixture()
ENTRY_FIELDS = {"id", "time", "user_id", "actor", "type", "task_id", "payload"}


@pytest.fixture(scope="module")
def root(api_server):
    return signup(api_server, "root")


@pytest.fixture(scope="module")
def alice(api_server, root):
    return signup(api_server, "alice")


@pytest.fixture(scope="module")
def bob(api_server, alice):
    return signup(api_server, "bob")


@pytest.fixture(scope="module")
def history(alice, bob):
    """Each of alice and bob creates, updates, completes and deletes a task; returns
    {user id: task id}."""
    result = {}
    for user in (alice, bob):
        api = user.api
        task = api.create_task({"title": "audited by " + user.username})
        api.patch_task(task["id"], {"priority": "high"})
        assert api.post(API + "/tasks/%s/complete" % task["id"]).status_code == 200
        assert api.delete(API + "/tasks/" + task["id"]).status_code == 204
        result[user.id] = task["id"]
    return result


def audit(user, params=()):
    items, _ = list_all(user.api, API + "/audit", list(params), limit=500)
    for entry in items:
        assert set(entry) == ENTRY_FIELDS, entry
        assert UUID_RE.match(entry["user_id"]), entry
        parse_time(entry["time"])
        assert isinstance(entry["type"], str) and entry["type"], entry
        assert entry["task_id"] is None or UUID_RE.match(entry["task_id"]), entry
        assert isinstance(entry["payload"], dict), entry
    return items


def test_every_task_operation_is_audited_with_its_payload(alice, history):
    """A1: each change of a task has an entry with time, user, actor, type, task and
    the event's data as payload, in order."""
    task_id = history[alice.id]
    entries = audit(alice, [("task", task_id)])
    assert [e["type"] for e in entries] == ["task.created", "task.updated", "task.completed",
                                            "task.deleted"]
    events = alice.api.task_events(task_id)
    for entry, event in zip(entries, events):
        assert entry["user_id"] == alice.id and entry["actor"] == alice.id
        assert entry["task_id"] == task_id
        assert entry["payload"] == event["data"]
        assert entry["time"] == event["time"]


def test_account_operations_are_audited(api_server, alice, history):
    """user.created and user.login appear in the user's own trail, without a task."""
    assert login(api_server, "alice", PASSWORD).status_code == 200
    entries = audit(alice)
    types = [e["type"] for e in entries]
    assert types[0] == "user.created"
    assert "user.login" in types
    for entry in entries:
        if entry["type"].startswith("user."):
            assert entry["task_id"] is None, entry


def test_audit_is_chronological_with_unique_ids(alice, bob, root, history):
    """Entries come oldest first and no entry id repeats."""
    for user in (alice, bob, root):
        entries = audit(user)
        times = [parse_time(e["time"]) for e in entries]
        assert times == sorted(times)
        ids = [e["id"] for e in entries]
        assert len(ids) == len(set(ids))


def test_users_see_only_their_own_entries(alice, bob, history):
    """A2: a user's trail holds only their own entries, and naming another user's
    task finds nothing."""
    for user, other in ((alice, bob), (bob, alice)):
        entries = audit(user)
        assert entries and all(e["user_id"] == user.id for e in entries)
        assert audit(user, [("task", history[other.id])]) == []


def test_non_admin_naming_another_user_is_403(alice, bob, history):
    """user= naming someone else is 403 for a non-admin; naming oneself is allowed."""
    problem(alice.api.get(API + "/audit", params={"user": bob.id}), 403)
    own = audit(alice, [("user", alice.id)])
    assert own == audit(alice)


def test_admin_sees_everything_and_filters_by_user(root, alice, bob, history):
    """An admin's trail holds every user's entries; user= narrows it to one user."""
    everything = audit(root)
    owners = {e["user_id"] for e in everything}
    assert {root.id, alice.id, bob.id} <= owners
    assert audit(root, [("user", alice.id)]) == audit(alice)
    assert audit(root, [("user", bob.id), ("task", history[bob.id])]) == \
        audit(bob, [("task", history[bob.id])])


def test_type_filter_is_repeatable(alice, history):
    """type= selects entries of the given types; repeated, any of them."""
    entries = audit(alice)
    for types in (["task.created"], ["task.created", "task.deleted"], ["user.created"],
                  ["no.such.type"]):
        filtered = audit(alice, [("type", t) for t in types])
        assert filtered == [e for e in entries if e["type"] in types], types


def test_time_range_filter(alice, history):
    """from/to bound entries by time."""
    entries = audit(alice)
    assert len(entries) >= 4
    low, high = entries[1]["time"], entries[-2]["time"]
    filtered = audit(alice, [("from", low), ("to", high)])
    lo, hi = parse_time(low), parse_time(high)
    assert all(lo <= parse_time(e["time"]) <= hi for e in filtered)
    strictly_inside = [e for e in entries if lo < parse_time(e["time"]) < hi]
    assert all(e in filtered for e in strictly_inside)
    assert audit(alice, [("from", "2100-01-01T00:00:00Z")]) == []
    assert audit(alice, [("to", "2000-01-01T00:00:00Z")]) == []


def test_pagination_reproduces_the_whole_trail(root, history):
    """Following next_cursor with limit=3 yields the single-page trail exactly."""
    whole = audit(root)
    paged, _ = list_all(root.api, API + "/audit", [], limit=3)
    assert paged == whole


def test_filtered_pagination(root, alice, history):
    """Cursors keep the filters: limit=1 pages of a filtered trail equal the whole."""
    for user, params in ((alice, [("type", "task.created"), ("type", "task.deleted")]),
                         (root, [("user", alice.id)]),
                         (root, [("task", history[alice.id])])):
        whole = audit(user, params)
        paged, _ = list_all(user.api, API + "/audit", params, limit=1)
        assert paged == whole and whole, params


@pytest.mark.parametrize("params,field", [
    ({"from": "yesterday"}, "from"),
    ({"to": "2031-02-30T00:00:00Z"}, "to"),
    ({"limit": "0"}, "limit"),
    ({"limit": "501"}, "limit"),
    ({"cursor": "garbage!"}, "cursor"),
    ({"task": "not-a-uuid"}, "task"),
    ({"since": "1"}, "since"),
])
def test_bad_parameters_are_400(alice, history, params, field):
    """A bad value or unknown parameter is 400 naming it."""
    problem(alice.api.get(API + "/audit", params=params), 400, first_field=field)


def test_admin_bad_user_parameter_is_400(root, history):
    """user= that is not a user id is 400 naming "user" (for an admin)."""
    problem(root.api.get(API + "/audit", params={"user": "not-a-uuid"}), 400,
            first_field="user")


def test_no_secret_in_any_payload(api_server, root, alice, history):
    """After signups, logins and a password change, no audit payload carries a
    password or a password hash."""
    new_password = "alice's second secret"
    response = alice.api.patch(API + "/me", {"password": new_password,
                                             "current_password": PASSWORD})
    assert response.status_code == 200, describe(response)
    assert "user.password_changed" in [e["type"] for e in audit(alice)]
    response = root.api.get(API + "/audit", params={"limit": 500})
    assert response.status_code == 200
    for secret in ("pbkdf2", PASSWORD, new_password, "password_hash"):
        assert secret not in response.text, secret
