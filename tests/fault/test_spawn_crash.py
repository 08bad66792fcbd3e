"""Black-box crash tests of the timers (ARCHITECTURE.md invariants 1 and 4;
src/reminders/scheduler.h "a timer is handed out once ... across restarts
the projection's row state prevents a second firing"):

- spawn exactly once: 300 due-mode recurring tasks of two users are
  completed concurrently by several threads while the server is killed with
  SIGKILL at a random moment, in a few rounds. After each restart (and the
  retry, with the same Idempotency-Key, of every complete whose answer was
  lost) and once the server is quiet: every completed task has exactly one
  successor (no parent_id is shared by two tasks), every acknowledged
  completion is still there, no task is lost, exactly one recurrence.spawned
  names each parent, and per-user event sequences stay dense;
- reminders exactly once: a few hundred reminder instants fall in a window
  around a SIGKILL; after the restart each (task, instant) has exactly one
  reminder.triggered or reminder.missed, never two, none lost;
- `docket rebuild` afterwards changes no task and no event, fires no timer
  again, and a reminder still ahead at the rebuild fires once.

Bounded in time (about half a minute for the release build); loopback only.
"""
import os
import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from api import (API, Api, ApiServer, check_dense, describe, events_since,  # noqa: E402
                 signup, tasks_all)
from conftest import scaled  # noqa: E402
from timers_util import in_seconds, iso_ms, now_utc, parse_any  # noqa: E402

USERS = 2
SERIES = 300
THREADS = 6
SPAWN_ROUNDS = 4
REMINDER_ROUNDS = 3
REMINDER_TASKS = 150
KILL_AFTER_MAX_S = 0.25
QUIET_TIMEOUT_S = scaled(20)
MISSED_GRACE_MS = 300


def replayed(response):
    return response.headers.get("Idempotent-Replayed", "").lower() == "true"


def pool_map(function, items, workers=THREADS):
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(function, items))


class Completer(threading.Thread):
    """Completes its share of the open occurrences, one request at a time,
    until the server dies; remembers which completes were acknowledged."""

    def __init__(self, user, base_url, tasks, round_number):
        super().__init__(daemon=True)
        self.user = user
        self.api = Api(base_url, user.token)
        self.tasks = tasks          # the occurrences this thread completes
        self.round_number = round_number
        self.sent = []              # task ids whose complete was sent
        self.acknowledged = {}      # task id -> first response body
        self.errors = []            # unexpected answers (server bugs)

    def key(self, task_id):
        return "spawn-r%d-%s" % (self.round_number, task_id)

    def send(self, task_id):
        return self.api.post(API + "/tasks/%s/complete" % task_id,
                             headers={"Idempotency-Key": self.key(task_id)})

    def run(self):
        for task in self.tasks:
            self.sent.append(task["id"])
            try:
                response = self.send(task["id"])
            except requests.RequestException:
                return  # killed: outcome unknown, retried after the restart
            if response.status_code == 503:
                return
            if response.status_code != 200:
                self.errors.append(describe(response))
                return
            self.acknowledged[task["id"]] = response.content


def successors(tasks):
    """parent_id -> the tasks naming it."""
    index = {}
    for task in tasks:
        if task["parent_id"] is not None:
            index.setdefault(task["parent_id"], []).append(task)
    return index


def wait_quiet(user, open_ids):
    """Waits until every completed task among `open_ids` has a successor;
    returns the user's tasks then."""
    deadline = time.monotonic() + QUIET_TIMEOUT_S
    while True:
        tasks = tasks_all(user.api)
        by_id = {task["id"]: task for task in tasks}
        children = successors(tasks)
        waiting = [task_id for task_id in open_ids
                   if by_id[task_id]["completed"] and task_id not in children]
        if not waiting or time.monotonic() > deadline:
            return tasks
        time.sleep(0.1)


def check_spawns(user, chains, acknowledged, created_ids):
    """Exactly-once checks for one user after a round; returns the successors
    of the round (chain index -> new frontier task)."""
    tasks = wait_quiet(user, [chain[-1]["id"] for chain in chains])
    time.sleep(0.3)  # anything still in flight would now show as a duplicate
    tasks = tasks_all(user.api)
    by_id = {task["id"]: task for task in tasks}
    missing = created_ids - set(by_id)
    assert not missing, "tasks lost: %r" % sorted(missing)[:5]
    children = successors(tasks)
    twice = {parent: [c["id"] for c in kids] for parent, kids in children.items()
             if len(kids) > 1}
    assert not twice, "a task spawned twice: %r" % list(twice.items())[:3]
    for task_id in acknowledged:
        assert by_id[task_id]["completed"], "acknowledged completion lost: %s" % task_id
    for task in tasks:
        if task["completed"]:
            assert len(children.get(task["id"], [])) == 1, \
                "completed %s has %d successors" % (task["id"], len(children.get(task["id"], [])))
        else:
            assert task["id"] not in children, "open task %s has a successor" % task["id"]
    events = events_since(user.api)
    check_dense(events)
    spawned = {}
    for event in events:
        if event["type"] == "recurrence.spawned":
            spawned.setdefault(event["data"]["parent_id"], []).append(event["subject"])
        assert event["type"] != "recurrence.ended", event
    assert {p: [c["id"] for c in kids] for p, kids in children.items()} == spawned
    advanced = 0
    for chain in chains:
        head = by_id[chain[-1]["id"]]
        if head["completed"]:
            child = children[head["id"]][0]
            assert child["recurrence"]["index"] == head["recurrence"]["index"] + 1
            assert parse_any(child["due"]) - parse_any(head["due"]) == timedelta(days=1)
            chain.append(child)
            created_ids.add(child["id"])
            advanced += 1
    return advanced


def spawns_across(user, kill_at):
    """How many spawns crossed the kill: the parent's task.completed is from
    before it, the recurrence.spawned from after (the timer row survived)."""
    events = events_since(user.api)
    completed = {e["subject"]: parse_any(e["time"]).timestamp() for e in events
                 if e["type"] == "task.completed"}
    return sum(1 for e in events if e["type"] == "recurrence.spawned"
               and completed.get(e["data"]["parent_id"], kill_at) < kill_at
               <= parse_any(e["time"]).timestamp())


def rebuild_changes_nothing(server, users, settle_s=1.0):
    """Stops the server, runs `docket rebuild`, starts it again: every task and
    every event is as before, and (after `settle_s`) no timer fires again -
    no spawn repeated, no reminder re-sent from the rebuilt timer rows."""
    before = {user.id: (events_since(user.api), tasks_all(user.api)) for user in users}
    server.stop()
    result = server.cli("rebuild", timeout=scaled(120))
    assert result.returncode == 0, result.stderr
    server.start()
    time.sleep(settle_s)
    for user in users:
        assert (events_since(user.api), tasks_all(user.api)) == before[user.id]


def test_spawn_exactly_once_under_kill_9(tmp_path):
    """Concurrent completes of 300 recurring tasks across SIGKILLs: every
    completed task has exactly one successor, nothing acknowledged is lost,
    sequences stay dense."""
    rng = random.Random(int(os.environ.get("CRASH_SEED", "0")) or None)
    server = ApiServer(tmp_path).start()
    try:
        users = [signup(server, "spawn%d" % i) for i in range(USERS)]
        start = (now_utc() + timedelta(days=30)).replace(microsecond=0)

        def create_series(number):
            user = users[number % USERS]
            body = {"title": "series %d" % number, "timezone": "Europe/Berlin",
                    "due": iso_ms(start + timedelta(minutes=number)), "reminders": [],
                    "recurrence": {"rule": "FREQ=DAILY;COUNT=1000", "from": "due"}}
            response = Api(server.base_url, user.token).post(API + "/tasks", body)
            assert response.status_code == 201, describe(response)
            return user, response.json()

        chains = {user.id: [] for user in users}
        created = {user.id: set() for user in users}
        for user, task in pool_map(create_series, range(SERIES)):
            chains[user.id].append([task])
            created[user.id].add(task["id"])
        total_acknowledged = total_lost = spawned_after_restart = 0
        for round_number in range(SPAWN_ROUNDS):
            heads = [(user, chain[-1]) for user in users for chain in chains[user.id]]
            rng.shuffle(heads)
            workers = [Completer(users[i % USERS], server.base_url,
                                 [task for user, task in heads if user is users[i % USERS]]
                                 [i // USERS::THREADS // USERS], round_number)
                       for i in range(THREADS)]
            for worker in workers:
                worker.start()
            deadline = time.monotonic() + scaled(10)
            while not any(worker.acknowledged for worker in workers):
                assert time.monotonic() < deadline, "no complete acknowledged within 10 s"
                time.sleep(0.002)
            time.sleep(rng.uniform(0.0, KILL_AFTER_MAX_S))
            kill_at = time.time()
            server.kill()
            for worker in workers:
                worker.join(timeout=scaled(30))
                assert not worker.is_alive()
                assert not worker.errors, worker.errors
            server.start()
            acknowledged = {user.id: set() for user in users}
            for worker in workers:
                worker.api = Api(server.base_url, worker.user.token)
                for task_id in worker.sent:
                    answer = worker.send(task_id)
                    assert answer.status_code == 200, describe(answer)
                    if task_id in worker.acknowledged:
                        assert replayed(answer), describe(answer)
                        assert answer.content == worker.acknowledged[task_id]
                        acknowledged[worker.user.id].add(task_id)
                total_acknowledged += len(worker.acknowledged)
                total_lost += len(worker.sent) - len(worker.acknowledged)
            advanced = sum(check_spawns(user, chains[user.id], acknowledged[user.id],
                                        created[user.id]) for user in users)
            assert advanced == sum(len(w.sent) for w in workers)
            spawned_after_restart += sum(spawns_across(user, kill_at) for user in users)
        assert total_acknowledged > 0
        rebuild_changes_nothing(server, users)
        print("spawn crash: %d rounds, %d acknowledged completes, %d retried after a lost "
              "answer, %d completed before a kill and spawned after it"
              % (SPAWN_ROUNDS, total_acknowledged, total_lost, spawned_after_restart))
    finally:
        server.close()


def reminder_round(server, user, rng, round_number):
    """One round: REMINDER_TASKS tasks with two reminder instants each in a
    ~2 s window, SIGKILL inside the window, restart; returns the expected
    (task id, instant ms) pairs."""
    window_s = 2.0
    # The window opens once the tasks exist: time a few creates first (the
    # sanitizer build is far slower), then leave five times that margin.
    started = time.monotonic()
    pool_map(lambda n: Api(server.base_url, user.token).post(
        API + "/tasks", {"title": "probe %d" % n}), range(12))
    per_task_s = (time.monotonic() - started) / 12
    window_start = in_seconds(1.0 + 5 * per_task_s * REMINDER_TASKS)

    def create_one(number):
        due = window_start + timedelta(seconds=rng.uniform(0.3, window_s))
        due = due.replace(microsecond=due.microsecond // 1000 * 1000)
        body = {"title": "r%d-%d" % (round_number, number), "due": iso_ms(due),
                "reminders": [{"before": "PT0S"}, {"at": iso_ms(due - timedelta(
                    milliseconds=rng.randint(1, 300)))}]}
        response = Api(server.base_url, user.token).post(API + "/tasks", body)
        assert response.status_code == 201, describe(response)
        task = response.json()
        return [(task["id"], int(parse_any(spec_at).timestamp() * 1000))
                for spec_at in (task["due"], task["reminders"][1]["at"])]

    expected = set()
    for pairs in pool_map(create_one, range(REMINDER_TASKS)):
        expected.update(pairs)
    first = min(at for _, at in expected) / 1000.0
    assert time.time() < first, "creating the tasks took longer than the window lead"
    kill_at = first + rng.uniform(0.0, window_s * 0.6)  # some instants come after it
    time.sleep(max(0.0, kill_at - time.time()))
    server.kill()
    if round_number % 2:
        # Odd rounds stay down a while and come back with a short grace: the
        # instants of the downtime are recorded as missed, still once each.
        time.sleep(0.6)
        server.start("--reminders-grace-ms", str(MISSED_GRACE_MS))
    else:
        server.start()
    return expected, kill_at


def test_reminders_fire_exactly_once_across_kill_9(tmp_path):
    """Reminder instants around a SIGKILL: after the restart every (task,
    instant) has exactly one reminder.triggered or reminder.missed."""
    rng = random.Random(int(os.environ.get("CRASH_SEED", "0")) or None)
    server = ApiServer(tmp_path).start()
    try:
        user = signup(server, "reminded")
        expected = set()
        before_kill = 0
        for round_number in range(REMINDER_ROUNDS):
            pairs, kill_at = reminder_round(server, user, rng, round_number)
            expected |= pairs
            last = max(at for _, at in expected) / 1000.0
            deadline = time.monotonic() + QUIET_TIMEOUT_S
            while True:
                events = events_since(user.api)
                fired = [(e["subject"], e["data"]["key"]) for e in events
                         if e["type"] in ("reminder.triggered", "reminder.missed")]
                if (len(fired) >= len(expected) and time.time() > last + 0.3) \
                        or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            time.sleep(0.3)
            events = events_since(user.api)
            check_dense(events)
            keys = [e["data"]["key"] for e in events
                    if e["type"] in ("reminder.triggered", "reminder.missed")]
            twice = {key for key in keys if keys.count(key) > 1}
            assert not twice, "reminders fired twice: %r" % sorted(twice)[:5]
            wanted = {"%s@%d" % pair for pair in expected}
            assert set(keys) == wanted, ("missing", sorted(wanted - set(keys))[:5],
                                         "extra", sorted(set(keys) - wanted)[:5])
            round_keys = {"%s@%d" % pair for pair in pairs}
            before_kill += sum(parse_any(e["data"]["fired_at"]).timestamp() < kill_at
                               for e in events if e["type"] == "reminder.triggered"
                               and e["data"]["key"] in round_keys)
        # Both sides of the kill must have been exercised for the test to mean much.
        assert 0 < before_kill < len(expected), (before_kill, len(expected))
        missed = [e for e in events if e["type"] == "reminder.missed"]
        assert missed, "no reminder was missed in the short-grace rounds"
        assert all(e["data"]["late_ms"] > MISSED_GRACE_MS for e in missed), missed[:3]
        # A reminder still ahead at a rebuild fires once afterwards; the fired
        # ones do not fire again.
        since = events_since(user.api)[-1]["sequence"]
        due = in_seconds(scaled(2.5))
        ahead = Api(server.base_url, user.token).post(
            API + "/tasks", {"title": "ahead of the rebuild", "due": iso_ms(due),
                             "reminders": [{"before": "PT0S"}]}).json()
        rebuild_changes_nothing(server, [user], settle_s=0.0)
        time.sleep(max(0.0, (due - now_utc()).total_seconds()) + 0.5)
        deadline = time.monotonic() + QUIET_TIMEOUT_S
        while True:
            after = events_since(user.api, since)
            if any(e["type"].startswith("reminder.") for e in after) \
                    or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        time.sleep(0.3)
        after = events_since(user.api, since)
        assert [(e["type"], e["subject"]) for e in after] == \
            [("task.created", ahead["id"]), ("reminder.triggered", ahead["id"])], after
        print("reminder crash: %d rounds, %d instants, %d fired before a kill, %d missed"
              % (REMINDER_ROUNDS, len(expected), before_kill, len(missed)))
    finally:
        server.close()
