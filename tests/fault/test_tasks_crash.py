"""Black-box crash test of the tasks API (ARCHITECTURE.md invariants 1 and 4,
PRODUCT.md E3, E4, T2): in each of at least 20 rounds the server starts on
the same data directory, client threads create, patch, complete,
uncomplete and delete tasks with unique Idempotency-Keys, and the server is
killed with SIGKILL at a random moment. After every restart:

- every acknowledged write, retried with its key and body, answers its
  first response with Idempotent-Replayed: true;
- every write whose answer was lost is retried the same way (a client
  would) and then also counts as done; so every write of the round is
  applied exactly once: each key has exactly one group of events (one
  correlation id), no key is missing, no event is extra;
- per-user sequences stay dense with no event twice;
- every task touched in the round is what the writes made of it, GET
  equals the Python fold of its events, and the list holds every live task
  exactly once (titles are unique).

At the end `docket rebuild` must leave the API answering exactly as before.
Bounded in time (about a minute for the release build); loopback only.
"""
import os
import random
import sys
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from api import (API, Api, ApiServer, check_dense, check_envelope, describe,  # noqa: E402
                 events_since, fold, signup, tasks_all)
from conftest import scaled  # noqa: E402

ROUNDS_MIN = 20
TIME_BUDGET_S = scaled(90)
THREADS = 6
USERS = 2
KILL_AFTER_MAX_S = 0.3
PRIORITIES = ["low", "medium", "high", "urgent"]


class Op:
    """One write: what was sent and, once known, what came back."""

    def __init__(self, user, method, path, body, key, local):
        self.user = user          # the User who sent it
        self.method = method      # HTTP method
        self.path = path          # request path (task id filled in)
        self.body = body          # JSON body or None
        self.key = key            # Idempotency-Key
        self.local = local        # the worker's model of the task it acts on
        self.response = None      # requests.Response once answered (acknowledged)
        self.retried = None       # the answer to the retry after the restart


class Worker(threading.Thread):
    """Writes until the server dies; keeps a model of its own tasks (no other
    thread touches them, so the expected end state is exact)."""

    def __init__(self, user, base_url, round_number, index, seed, stop):
        super().__init__(daemon=True)
        self.user = user
        self.api = Api(base_url, user.token)
        self.prefix = "r%d-w%d" % (round_number, index)
        self.rng = random.Random(seed)
        self.stop = stop
        self.ops = []          # every Op, in order; only the last may be unanswered
        self.tasks = []        # models: {"id","title","priority","completed","deleted"}
        self.errors = []       # unexpected statuses (server bugs)
        self.counter = 0

    def next_op(self):
        self.counter += 1
        key = "%s-%d" % (self.prefix, self.counter)
        live = [task for task in self.tasks if not task["deleted"] and task["id"]]
        choice = self.rng.random()
        if not live or choice < 0.35:
            model = {"id": None, "title": "%s-t%d" % (self.prefix, self.counter),
                     "priority": self.rng.choice(PRIORITIES), "completed": False,
                     "deleted": False}
            self.tasks.append(model)
            body = {"title": model["title"], "priority": model["priority"]}
            return Op(self.user, "POST", API + "/tasks", body, key, model)
        model = self.rng.choice(live)
        path = API + "/tasks/" + model["id"]
        if choice < 0.65:
            body = {"title": "%s-p%d" % (self.prefix, self.counter),
                    "priority": self.rng.choice(PRIORITIES)}
            return Op(self.user, "PATCH", path, body, key, model)
        if choice < 0.9:
            action = "uncomplete" if model["completed"] else "complete"
            return Op(self.user, "POST", path + "/" + action, None, key, model)
        return Op(self.user, "DELETE", path, None, key, model)

    def send(self, op):
        kwargs = {"body": op.body} if op.body is not None else {}
        return self.api.request(op.method, op.path, headers={"Idempotency-Key": op.key},
                                **kwargs)

    def run(self):
        while not self.stop.is_set():
            op = self.next_op()
            self.ops.append(op)
            try:
                response = self.send(op)
            except requests.RequestException:
                return  # the server died: this op's outcome is unknown
            if response.status_code == 503:
                return  # shutting down: not acknowledged, retried after the restart
            if response.status_code not in (200, 201, 204):
                self.errors.append(describe(response))
                return
            op.response = response
            apply(op, response)


def apply(op, response):
    """Updates the task model with a successful answer to `op`."""
    model = op.local
    if op.method == "POST" and op.path == API + "/tasks":
        model["id"] = response.json()["id"]
    elif op.method == "PATCH":
        model["title"], model["priority"] = op.body["title"], op.body["priority"]
    elif op.method == "DELETE":
        model["deleted"] = True
    elif op.path.endswith("/complete"):
        model["completed"] = True
    elif op.path.endswith("/uncomplete"):
        model["completed"] = False


def replayed(response):
    return response.headers.get("Idempotent-Replayed", "").lower() == "true"


def retry_all(workers, base_url):
    """Retries every op of the round with its key: acknowledged ones must replay
    their first answer; unanswered ones complete now (or replay, if they were
    durable after all)."""
    for worker in workers:
        worker.api = Api(base_url, worker.user.token)
        for op in worker.ops:
            answer = worker.send(op)
            op.retried = answer
            if op.response is not None:
                assert replayed(answer), describe(answer)
                assert answer.status_code == op.response.status_code, describe(answer)
                assert answer.content == op.response.content, \
                    (describe(op.response), describe(answer))
            else:
                assert answer.status_code in (200, 201, 204), describe(answer)
                op.response = answer
                apply(op, answer)


def check_events(user, since, ops):
    """The user's events after `since`: dense, and one correlation group per op
    key, nothing more, nothing less. Returns the last sequence."""
    events = events_since(user.api, since)
    for event in events:
        check_envelope(event, user.id)
    check_dense(events, since + 1)
    groups = {}
    for event in events:
        key = event.get("idempotencykey")
        assert key is not None, "event without a key during the crash run: %r" % event
        groups.setdefault(key, set()).add(event["correlationid"])
    expected = {op.key for op in ops}
    assert set(groups) == expected, ("missing", sorted(expected - set(groups))[:5], "extra",
                                     sorted(set(groups) - expected)[:5])
    twice = {key: ids for key, ids in groups.items() if len(ids) != 1}
    assert not twice, "writes applied more than once: %r" % list(twice.items())[:5]
    return events[-1]["sequence"] if events else since


def check_tasks(user, models):
    """Each task touched this round is what its writes made it; GET equals the
    fold of its events."""
    api = user.api
    for model in models:
        assert model["id"], "a create never completed"
        response = api.get(API + "/tasks/" + model["id"])
        events = api.task_events(model["id"])
        folded, deleted = fold(events)
        assert deleted == model["deleted"], model
        if model["deleted"]:
            assert response.status_code == 404, describe(response)
            continue
        assert response.status_code == 200, describe(response)
        task = response.json()
        assert folded == task, (folded, task)
        assert (task["title"], task["priority"], task["completed"]) == \
            (model["title"], model["priority"], model["completed"]), (task, model)


def check_list(user, all_models):
    """The list holds each live task exactly once (by id and by title)."""
    items = tasks_all(user.api)
    titles = [item["title"] for item in items]
    assert len(titles) == len(set(titles)), "a title appears twice"
    live = {m["id"]: m["title"] for m in all_models if not m["deleted"]}
    assert {item["id"]: item["title"] for item in items} == live


def snapshot(users):
    state = {}
    for user in users:
        api = user.api
        state[user.username] = {
            "events": events_since(api),
            "by_created": tasks_all(api, extra=[("sort", "created")]),
            "by_title": tasks_all(api, extra=[("sort", "-title")]),
            "open": tasks_all(api, status="open"),
        }
    return state


def test_acknowledged_writes_survive_kill_9(tmp_path):
    """Every acknowledged write survives SIGKILL exactly once, retries replay,
    sequences stay dense, GET equals the fold of the events, and rebuild
    changes no answer."""
    rng = random.Random(int(os.environ.get("CRASH_SEED", "0")) or None)
    server = ApiServer(tmp_path).start()
    users = [signup(server, "crash%d" % i) for i in range(USERS)]
    last_sequence = {user.id: events_since(user.api)[-1]["sequence"] for user in users}
    all_models = {user.id: [] for user in users}
    started = time.monotonic()
    rounds = acknowledged = lost = 0
    try:
        while rounds < ROUNDS_MIN or time.monotonic() - started < TIME_BUDGET_S / 2:
            assert time.monotonic() - started < TIME_BUDGET_S * 1.5, \
                "only %d rounds in the time budget" % rounds
            if rounds and not server.running:
                server.start()
            stop = threading.Event()
            workers = [Worker(users[i % USERS], server.base_url, rounds, i, rng.random(), stop)
                       for i in range(THREADS)]
            for worker in workers:
                worker.start()
            deadline = time.monotonic() + scaled(10)
            while not any(op.response is not None for w in workers for op in w.ops):
                assert time.monotonic() < deadline, "no write acknowledged within 10 s"
                time.sleep(0.002)
            time.sleep(rng.uniform(0.0, KILL_AFTER_MAX_S))
            server.kill()
            stop.set()
            for worker in workers:
                worker.join(timeout=scaled(30))
                assert not worker.is_alive()
                assert not worker.errors, worker.errors
            acknowledged += sum(op.response is not None for w in workers for op in w.ops)
            lost += sum(op.response is None for w in workers for op in w.ops)
            server.start()
            retry_all(workers, server.base_url)
            for user in users:
                ops = [op for w in workers if w.user is user for op in w.ops]
                models = [m for w in workers if w.user is user for m in w.tasks]
                last_sequence[user.id] = check_events(user, last_sequence[user.id], ops)
                check_tasks(user, models)
                all_models[user.id].extend(models)
                check_list(user, all_models[user.id])
            rounds += 1
        assert rounds >= ROUNDS_MIN and acknowledged > 0
        print("crash test: %d rounds, %d acknowledged writes, %d retried after a lost answer"
              % (rounds, acknowledged, lost))
        for user in users:
            check_dense(events_since(user.api))
        before = snapshot(users)
        server.stop()
        result = server.cli("rebuild", timeout=scaled(120))
        assert result.returncode == 0, result.stderr
        server.start()
        assert snapshot(users) == before
        # Retries of old writes still replay after the rebuild.
        sample = [op for w in workers for op in w.ops][:20]
        for op in sample:
            answer = Worker(op.user, server.base_url, 0, 0, 0, None).send(op)
            assert replayed(answer) and answer.content == op.response.content, describe(answer)
    finally:
        server.close()


def test_sigterm_under_concurrent_writes_loses_nothing(tmp_path):
    """5 rounds of SIGTERM while 8 clients write: exit status 0, every acknowledged
    write is there after the restart, and retries apply the rest exactly once."""
    server = ApiServer(tmp_path).start()
    user = signup(server, "graceful")
    last = events_since(user.api)[-1]["sequence"]
    models = []
    try:
        for round_number in range(5):
            stop = threading.Event()
            workers = [Worker(user, server.base_url, round_number, i, i, stop) for i in range(8)]
            for worker in workers:
                worker.start()
            deadline = time.monotonic() + scaled(10)
            while sum(op.response is not None for w in workers for op in w.ops) < 50:
                assert time.monotonic() < deadline, "too few writes acknowledged"
                time.sleep(0.005)
            server.stop()  # SIGTERM; asserts exit status 0
            stop.set()
            for worker in workers:
                worker.join(timeout=scaled(30))
                assert not worker.errors, worker.errors
            server.start()
            retry_all(workers, server.base_url)
            ops = [op for w in workers for op in w.ops]
            last = check_events(user, last, ops)
            round_models = [m for w in workers for m in w.tasks]
            check_tasks(user, round_models)
            models.extend(round_models)
            check_list(user, models)
    finally:
        server.close()
