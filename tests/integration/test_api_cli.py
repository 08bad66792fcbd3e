"""Proves the user and rebuild commands of the CLI (PRODUCT.md O1, invariant 1
of ARCHITECTURE.md): `docket user add|list|set-role|reset-password` and
`docket rebuild` against a stopped server's data directory, their effect
seen through the API afterwards (with actor "cli" in the events), their
errors, their refusal while a server runs on the directory, and a rebuild
from the log that leaves every GET answering exactly as before."""
import pytest

from api import (API, PASSWORD, UUID_RE, Api, describe, events_since, login, problem,
                 server_fixture, signup, tasks_all)

api_server = server_fixture()
CAROL_PASSWORD = "carol from the cli"
ALICE_NEW_PASSWORD = "alice reset by cli"


@pytest.fixture(scope="module")
def root(api_server):
    return signup(api_server, "root")


@pytest.fixture(scope="module")
def alice(api_server, root):
    user = signup(api_server, "alice")
    api = user.api
    for index in range(12):
        task = api.create_task({"title": "cli task %d" % index, "tags": ["t%d" % (index % 3)],
                                "due": "2031-01-%02dT08:00:00Z" % (index + 1)},
                               headers={"Idempotency-Key": "cli-%d" % index})
        if index % 3 == 0:
            api.patch_task(task["id"], {"priority": "urgent", "due": None})
        if index % 4 == 1:
            assert api.post(API + "/tasks/%s/complete" % task["id"]).status_code == 200
        if index % 5 == 2:
            assert api.delete(API + "/tasks/" + task["id"]).status_code == 204
    return user


@pytest.fixture(scope="module")
def bob(api_server, alice):
    user = signup(api_server, "bob")
    user.api.create_task({"title": "bob's only task"})
    return user


def running(server):
    if not server.running:
        server.start()
    return server


def stopped(server):
    if server.running:
        server.stop()
    return server


def user_lines(server):
    result = server.cli("user", "list")
    assert result.returncode == 0, result.stderr
    users = {}
    for line in result.stdout.splitlines():
        fields = line.split()
        assert len(fields) == 3, line
        user_id, username, role = fields
        assert UUID_RE.match(user_id), line
        users[username] = (user_id, role)
    return users


def test_commands_refuse_while_a_server_runs(api_server, root, alice, bob):
    """Every user command and rebuild exits 1 with a message while a server is
    running on the data directory, and changes nothing."""
    running(api_server)
    for args, stdin in ((["user", "list"], None),
                        (["user", "add", "mallory", "--role", "admin"], "mallory-pass\n"),
                        (["user", "set-role", "alice", "admin"], None),
                        (["user", "reset-password", "alice"], "hijacked-pass\n"),
                        (["rebuild"], None)):
        result = api_server.cli(*args, stdin=stdin)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        assert "running" in result.stderr.lower() or "in use" in result.stderr.lower(), \
            (args, result.stderr)
    assert login(api_server, "alice", PASSWORD).status_code == 200
    problem(login(api_server, "mallory", "mallory-pass"), 401)


def test_user_list(api_server, root, alice, bob):
    """`user list` prints one line per user: id, username, role."""
    stopped(api_server)
    users = user_lines(api_server)
    assert users == {"root": (root.id, "admin"), "alice": (alice.id, "user"),
                     "bob": (bob.id, "user")}


def test_user_add(api_server, root, alice, bob):
    """`user add NAME --role admin` with the password on stdin creates an account
    that logs in with that role; its user.created event has actor "cli"."""
    stopped(api_server)
    result = api_server.cli("user", "add", "carol", "--role", "admin",
                            stdin=CAROL_PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    assert user_lines(api_server)["carol"][1] == "admin"
    running(api_server)
    response = login(api_server, "carol", CAROL_PASSWORD)
    assert response.status_code == 200, describe(response)
    assert response.json()["user"]["role"] == "admin"
    carol = Api(api_server.base_url, response.json()["token"])
    assert carol.get(API + "/admin/users").status_code == 200
    created = events_since(carol)[0]
    assert created["type"] == "user.created" and created["actor"] == "cli"


def test_user_add_plain_user(api_server, root):
    """`user add NAME --role user` makes an ordinary account."""
    stopped(api_server)
    result = api_server.cli("user", "add", "dave", "--role", "user", stdin="dave-password\n")
    assert result.returncode == 0, result.stderr
    assert user_lines(api_server)["dave"][1] == "user"


def test_set_role(api_server, root, alice):
    """`user set-role NAME ROLE` changes the role (user.role_changed by "cli");
    a new login carries it."""
    stopped(api_server)
    result = api_server.cli("user", "set-role", "alice", "admin")
    assert result.returncode == 0, result.stderr
    assert user_lines(api_server)["alice"] == (alice.id, "admin")
    running(api_server)
    response = login(api_server, "alice", PASSWORD)
    assert response.status_code == 200 and response.json()["user"]["role"] == "admin"
    events = events_since(alice.api)
    changed = [e for e in events if e["type"] == "user.role_changed"]
    assert len(changed) == 1 and changed[0]["actor"] == "cli"
    # The role is the stored one, not the token's claim: her old token (role "user")
    # is let through admin routes now, and her admin token is refused once demoted.
    assert alice.api.get(API + "/admin/users").status_code == 200
    admin_token = response.json()["token"]
    stopped(api_server)
    result = api_server.cli("user", "set-role", "alice", "user")
    assert result.returncode == 0, result.stderr
    assert user_lines(api_server)["alice"] == (alice.id, "user")
    running(api_server)
    problem(Api(api_server.base_url, admin_token).get(API + "/admin/users"), 403)
    problem(Api(api_server.base_url, admin_token).get(API + "/audit",
                                                      params={"user": root.id}), 403)


def test_reset_password(api_server, alice):
    """`user reset-password NAME` reads the new password from stdin; only it logs
    in afterwards (user.password_changed, no hash in the event)."""
    stopped(api_server)
    result = api_server.cli("user", "reset-password", "alice", stdin=ALICE_NEW_PASSWORD + "\n")
    assert result.returncode == 0, result.stderr
    running(api_server)
    assert login(api_server, "alice", ALICE_NEW_PASSWORD).status_code == 200
    problem(login(api_server, "alice", PASSWORD), 401)
    changed = [e for e in events_since(alice.api) if e["type"] == "user.password_changed"]
    assert changed and changed[-1]["actor"] == "cli"
    assert "pbkdf2" not in str(changed[-1])


@pytest.mark.parametrize("args,stdin", [
    (["user", "add", "alice", "--role", "user"], "some-password\n"),
    (["user", "add", "bad name", "--role", "user"], "some-password\n"),
    (["user", "add", "x", "--role", "user"], "some-password\n"),
    (["user", "add", "erin", "--role", "superuser"], "some-password\n"),
    (["user", "add", "erin", "--role", "user"], "short\n"),
    (["user", "add", "erin", "--role", "user"], ""),
    (["user", "add"], None),
    (["user", "set-role", "nobody", "admin"], None),
    (["user", "set-role", "alice", "god"], None),
    (["user", "set-role", "alice"], None),
    (["user", "reset-password", "nobody"], "whatever-password\n"),
    (["user", "reset-password", "bob"], "short\n"),
    (["user", "frobnicate"], None),
    (["user"], None),
])
def test_user_command_errors(api_server, root, alice, bob, args, stdin):
    """Bad user commands exit non-zero with a message on stderr and change nothing."""
    stopped(api_server)
    before = user_lines(api_server)
    result = api_server.cli(*args, stdin=stdin)
    assert result.returncode in (1, 2), (args, result.returncode, result.stderr)
    assert result.stderr.strip(), args
    assert user_lines(api_server) == before


def snapshot(server, users):
    """Everything the API answers for these users: /me, every task list order,
    every task and its history, events, audit, and the admin user list."""
    state = {}
    for user in users:
        api = user.api
        me = api.get(API + "/me")
        assert me.status_code == 200, describe(me)
        tasks = {}
        for sort in ("due", "-priority", "title", "created", "-updated"):
            tasks[sort] = tasks_all(api, extra=[("sort", sort)])
        for status in ("open", "completed"):
            tasks[status] = tasks_all(api, status=status)
        events = events_since(api)
        histories = {}
        for event in events:
            if event["type"].startswith("task."):
                task_id = event["subject"]
                if task_id not in histories:
                    histories[task_id] = api.task_events(task_id)
                    response = api.get(API + "/tasks/" + task_id)
                    histories[task_id + "/get"] = (response.status_code,
                                                   response.json() if response.content else None)
        audit = api.get(API + "/audit", params={"limit": 500})
        assert audit.status_code == 200, describe(audit)
        state[user.username] = {"me": me.json(), "tasks": tasks, "events": events,
                                "histories": histories, "audit": audit.json()}
    admin = users[0].api.get(API + "/admin/users")
    state["admin/users"] = (admin.status_code, admin.json())
    return state


def test_rebuild_reproduces_every_answer(api_server, root, alice, bob):
    """`docket rebuild` drops the projections and replays the log (progress on
    stderr); afterwards every GET answers exactly as before, and writes go on
    with the next version and sequence."""
    running(api_server)
    users = [root, alice, bob]
    before = snapshot(api_server, users)
    stopped(api_server)
    result = api_server.cli("rebuild")
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip(), "rebuild reports progress on stderr"
    running(api_server)
    after = snapshot(api_server, users)
    for key in before:
        assert after[key] == before[key], key
    # Idempotent replays and sequences continue from the rebuilt state.
    replay = alice.api.post(API + "/tasks", {"title": "cli task 1", "tags": ["t1"],
                                             "due": "2031-01-02T08:00:00Z"},
                            headers={"Idempotency-Key": "cli-1"})
    assert replay.status_code == 201, describe(replay)
    assert replay.headers.get("Idempotent-Replayed", "").lower() == "true"
    last = before["alice"]["events"][-1]["sequence"]
    task = alice.api.create_task({"title": "after rebuild"})
    assert alice.api.task_events(task["id"])[0]["sequence"] == last + 1


def test_rebuild_twice_is_stable(api_server, root, alice, bob):
    """A second rebuild right after the first changes nothing either."""
    running(api_server)
    users = [root, alice, bob]
    before = snapshot(api_server, users)
    stopped(api_server)
    for _ in range(2):
        result = api_server.cli("rebuild")
        assert result.returncode == 0, result.stderr
    running(api_server)
    assert snapshot(api_server, users) == before
