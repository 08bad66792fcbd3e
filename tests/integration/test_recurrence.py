"""Proves recurring tasks end to end over the real API (API.md `recurrence`,
src/tasks/series.h): completing a due- or completion-mode occurrence spawns
the next one as a new task exactly once (parent_id set, properties kept,
absolute reminders shifted with the due date, index + 1, series_start kept),
dues follow the rule on the task's wall clock across DST changes (checked
against python-dateutil's rrule in the same zone), COUNT and UNTIL end the
series with recurrence.ended, schedule mode spawns at the due instant without
completion, retries and uncomplete/complete never spawn twice, a deleted
schedule-mode occurrence ends its series, and bad rules or read-only members
are 422 naming the field. A seeded property test walks ~200 random rules in
five zones and compares every chain of dues with dateutil."""
import itertools
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from dateutil.rrule import rrulestr

from api import (API, Api, ApiServer, describe, events_since, fresh_key, problem,
                 server_fixture, signup, tasks_all, wait_for)
from conftest import scaled
from timers_util import (complete, create, in_seconds, iso_ms, last_sequence, metric, now_utc,
                         outcome_of, parse_any, poll_events, wait_outcomes)

api_server = server_fixture()

UTC = timezone.utc
ZONES = ["America/New_York", "Europe/Berlin", "Australia/Sydney", "Asia/Kolkata", "UTC"]


@pytest.fixture(scope="module")
def carol(api_server):
    return signup(api_server, "carol")


# ---- Helpers ------------------------------------------------------------------

def local(zone, *fields):
    """A wall-clock time in `zone` (fold 0: the earlier of two, RFC 5545)."""
    return datetime(*fields, tzinfo=ZoneInfo(zone))


def occurrences(rule, dtstart, count):
    """The first `count` occurrences of `rule` from the aware local `dtstart`,
    as UTC instants (dateutil works on the wall clock, as RFC 5545 asks)."""
    return [moment.astimezone(UTC) for moment in
            itertools.islice(rrulestr(rule, dtstart=dtstart), count)]


def recurring(title, zone, dtstart, rule, mode="due", **extra):
    body = {"title": title, "timezone": zone, "due": iso_ms(dtstart),
            "recurrence": {"rule": rule, "from": mode}}
    body.update(extra)
    return body


def step(api, task, timeout=10):
    """Completes `task` and waits for its spawn outcome; returns (child or None,
    ended event or None)."""
    since = last_sequence(api)
    complete(api, task["id"])
    events = wait_outcomes(api, since, [task["id"]], timeout)
    spawned, ended = outcome_of(events, task["id"])
    assert len(spawned) + len(ended) == 1, (task["id"], spawned, ended)
    return (spawned[0]["data"] if spawned else None), (ended[0] if ended else None)


def walk(api, first, steps):
    """Completes the chain `steps` times (or until it ends); returns the tasks
    (first included) and the recurrence.ended event if the series ended."""
    chain, ended = [first], None
    for _ in range(steps):
        child, ended = step(api, chain[-1])
        if child is None:
            break
        chain.append(child)
    return chain, ended


def children(api, parent_id):
    """Every task (any status) whose parent_id is `parent_id`."""
    return [task for task in tasks_all(api) if task["parent_id"] == parent_id]


def dues(chain):
    return [parse_any(task["due"]) for task in chain]


# ---- Due mode, DST and properties -------------------------------------------------

def test_daily_berlin_across_spring_change_keeps_wall_clock_and_properties(carol):
    """A daily 09:00 Europe/Berlin series walked across 2027-03-28 (CET -> CEST)
    stays at 09:00 local (08:00Z, then 07:00Z); each successor keeps every
    property, names its parent, counts its index up from the same series_start,
    keeps relative reminders and shifts absolute ones by the due delta; the
    recurrence.spawned data is the new task as GET answers it."""
    api = carol.api
    start = local("Europe/Berlin", 2027, 3, 26, 9, 0)
    evening_before = start - timedelta(hours=13)
    first = create(api, recurring("standup", "Europe/Berlin", start, "FREQ=DAILY",
                                  description="daily sync", priority="high",
                                  tags=["work", "team"],
                                  reminders=[{"before": "PT15M"}, {"at": iso_ms(evening_before)}]))
    assert first["recurrence"]["index"] == 0
    assert parse_any(first["recurrence"]["series_start"]) == start
    since = last_sequence(api)
    chain, ended = walk(api, first, 3)
    assert ended is None
    assert dues(chain) == occurrences("FREQ=DAILY", start, 4)
    assert [due.strftime("%H:%M") for due in dues(chain)] == ["08:00", "08:00", "07:00", "07:00"]
    for parent, child in zip(chain, chain[1:]):
        assert child["parent_id"] == parent["id"]
        assert child["id"] != parent["id"]
        assert child["recurrence"]["index"] == parent["recurrence"]["index"] + 1
        assert child["recurrence"]["series_start"] == first["recurrence"]["series_start"]
        assert child["recurrence"]["rule"] == "FREQ=DAILY"
        assert child["recurrence"]["from"] == "due"
        for field in ("title", "description", "priority", "tags", "timezone"):
            assert child[field] == first[field], field
        assert child["completed"] is False and child["completed_at"] is None
        assert child["version"] == 1
        assert child["reminders"][0] == {"before": "PT15M"}
        shift = parse_any(child["due"]) - parse_any(parent["due"])
        assert parse_any(child["reminders"][1]["at"]) == \
            parse_any(parent["reminders"][1]["at"]) + shift
        current = api.get_task(child["id"])
        if child is chain[-1]:
            assert current == child
        else:  # completed since by walk(): only the completion members moved
            moved = {"completed", "completed_at", "version", "updated_at"}
            assert {k: v for k, v in current.items() if k not in moved} == \
                {k: v for k, v in child.items() if k not in moved}
    # The 23-hour day: the absolute reminder moved by 23 h, not 24 h.
    assert dues(chain)[3] - dues(chain)[2] == timedelta(hours=24)
    assert dues(chain)[2] - dues(chain)[1] == timedelta(hours=23)
    spawned = [e for e in events_since(api, since) if e["type"] == "recurrence.spawned"]
    assert [e["subject"] for e in spawned] == [task["id"] for task in chain[1:]]
    # Spawned with the completion (same request: the user's actor and
    # correlation id), or by the spawn timer after a crash ("docket").
    assert all(e["actor"] in (e["userid"], "docket") for e in spawned)
    # Each occurrence's own history starts with the event that made it.
    for task, event in zip(chain[1:], spawned):
        history = api.task_events(task["id"])
        assert history[0]["id"] == event["id"] and history[0]["data"] == task, history[:2]


def test_daily_berlin_across_autumn_change(carol):
    """Across 2027-10-31 (CEST -> CET) a daily 09:00 Berlin series moves from
    07:00Z to 08:00Z, exactly as dateutil's rrule in that zone."""
    start = local("Europe/Berlin", 2027, 10, 29, 9, 0)
    first = create(carol.api, recurring("autumn", "Europe/Berlin", start, "FREQ=DAILY"))
    chain, _ = walk(carol.api, first, 3)
    assert dues(chain) == occurrences("FREQ=DAILY", start, 4)
    assert [due.strftime("%H") for due in dues(chain)] == ["07", "07", "08", "08"]


def test_weekly_byday_new_york_across_dst(carol):
    """FREQ=WEEKLY;BYDAY=MO,WE,FR at 07:30 New York yields Monday, Wednesday,
    Friday in turn across 2027-03-14 (EST -> EDT), on the wall clock."""
    rule = "FREQ=WEEKLY;BYDAY=MO,WE,FR"
    start = local("America/New_York", 2027, 3, 10, 7, 30)  # a Wednesday
    first = create(carol.api, recurring("gym", "America/New_York", start, rule))
    chain, _ = walk(carol.api, first, 4)
    assert dues(chain) == occurrences(rule, start, 5)
    walls = [due.astimezone(ZoneInfo("America/New_York")) for due in dues(chain)]
    assert [w.strftime("%a %H:%M") for w in walls] == \
        ["Wed 07:30", "Fri 07:30", "Mon 07:30", "Wed 07:30", "Fri 07:30"]


def test_monthly_bymonthday_31_skips_short_months(carol):
    """FREQ=MONTHLY;BYMONTHDAY=31 from January 31 skips February, April and
    June: Jan 31, Mar 31, May 31, Jul 31, Aug 31 (RFC 5545 skips invalid dates)."""
    rule = "FREQ=MONTHLY;BYMONTHDAY=31"
    start = local("Australia/Sydney", 2027, 1, 31, 18, 0)
    first = create(carol.api, recurring("rent", "Australia/Sydney", start, rule))
    chain, _ = walk(carol.api, first, 4)
    assert dues(chain) == occurrences(rule, start, 5)
    walls = [d.astimezone(ZoneInfo("Australia/Sydney")).strftime("%m-%d %H:%M") for d in
             dues(chain)]
    assert walls == ["01-31 18:00", "03-31 18:00", "05-31 18:00", "07-31 18:00", "08-31 18:00"]


def test_count_three_gives_three_tasks_then_ended(carol):
    """COUNT=3 makes exactly three occurrences (index 0, 1, 2); completing the
    third appends recurrence.ended {"reason":"count","index":2} about it and no
    fourth task; completing it again later spawns nothing more."""
    api = carol.api
    start = local("UTC", 2028, 1, 3, 12, 0)
    first = create(api, recurring("thrice", "UTC", start, "FREQ=DAILY;COUNT=3"))
    chain, ended = walk(api, first, 5)
    assert len(chain) == 3
    assert [task["recurrence"]["index"] for task in chain] == [0, 1, 2]
    assert dues(chain) == occurrences("FREQ=DAILY;COUNT=3", start, 10)
    assert ended is not None and ended["subject"] == chain[-1]["id"]
    assert ended["data"] == {"reason": "count", "index": 2}
    assert children(api, chain[-1]["id"]) == []
    since = last_sequence(api)
    assert api.post(API + "/tasks/%s/uncomplete" % chain[-1]["id"]).status_code == 200
    complete(api, chain[-1]["id"])
    time.sleep(0.5)
    later = events_since(api, since)
    assert [e["type"] for e in later] == ["task.uncompleted", "task.completed"], later


def test_until_ends_the_series(carol):
    """UNTIL (UTC) keeps the occurrences at or before it: a weekly series from
    2028-02-01 with UNTIL 15 days later has three occurrences, then
    recurrence.ended with reason "until"."""
    start = local("Asia/Kolkata", 2028, 2, 1, 8, 0)
    until = (start + timedelta(days=15)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    rule = "FREQ=WEEKLY;UNTIL=" + until
    first = create(carol.api, recurring("weekly until", "Asia/Kolkata", start, rule))
    chain, ended = walk(carol.api, first, 5)
    assert dues(chain) == occurrences(rule, start, 10)
    assert len(chain) == 3
    assert ended["data"] == {"reason": "until", "index": 2}


def test_due_mode_never_spawns_into_the_past(carol):
    """A daily task due three days ago, completed now, spawns the first
    occurrence after now; the skipped ones still count in its index."""
    api = carol.api
    start = (now_utc() - timedelta(days=3)).replace(second=0, microsecond=0)
    rule = "FREQ=DAILY"
    first = create(api, recurring("late", "UTC", start, rule))
    child, _ = step(api, first)
    expected = occurrences(rule, start, 10)
    future = [(i, moment) for i, moment in enumerate(expected) if moment > now_utc()]
    index, due = future[0]
    assert parse_any(child["due"]) == due
    assert child["recurrence"]["index"] == index
    assert parse_any(child["due"]) > parse_any(api.get_task(first["id"])["completed_at"])


# ---- Completion and schedule modes -------------------------------------------------

def test_completion_mode_interval_counts_from_completion(carol):
    """from "completion" with FREQ=DAILY;INTERVAL=3: completing a task due next
    month spawns the next one 3 days after the completion's local date, at the
    due date's local time of day (Asia/Kolkata), not 3 days after the due."""
    api = carol.api
    zone = ZoneInfo("Asia/Kolkata")
    start = (now_utc() + timedelta(days=30)).astimezone(zone).replace(
        hour=9, minute=0, second=0, microsecond=0)
    first = create(api, recurring("water plants", "Asia/Kolkata", start,
                                  "FREQ=DAILY;INTERVAL=3", mode="completion"))
    child, _ = step(api, first)
    completed = parse_any(api.get_task(first["id"])["completed_at"]).astimezone(zone)
    expected = (completed.replace(hour=9, minute=0, second=0, microsecond=0)
                + timedelta(days=3))
    assert parse_any(child["due"]) == expected, (child["due"], completed)
    assert child["recurrence"]["from"] == "completion"
    assert child["recurrence"]["index"] == 1
    assert child["parent_id"] == first["id"]


def test_completion_mode_count_counts_occurrences(carol):
    """from "completion" with COUNT=2: the first task and one successor (index 1,
    due the day after its parent's completion at the same local time), then
    recurrence.ended {"reason":"count","index":1}."""
    api = carol.api
    zone = ZoneInfo("America/New_York")
    start = (now_utc() + timedelta(days=10)).astimezone(zone).replace(
        hour=18, minute=30, second=0, microsecond=0)
    first = create(api, recurring("twice", "America/New_York", start, "FREQ=DAILY;COUNT=2",
                                  mode="completion"))
    chain, ended = walk(api, first, 3)
    assert len(chain) == 2 and [t["recurrence"]["index"] for t in chain] == [0, 1]
    done = parse_any(api.get_task(first["id"])["completed_at"]).astimezone(zone)
    assert parse_any(chain[1]["due"]) == done.replace(hour=18, minute=30, second=0,
                                                      microsecond=0) + timedelta(days=1)
    assert ended["data"] == {"reason": "count", "index": 1}


def test_schedule_mode_spawns_at_due_without_completion(carol):
    """from "schedule": a task due in ~2 s spawns its successor at that instant
    though nobody completes it; the successor is due one rule step later and
    holds its own spawn timer (the timers gauge is back where it was after the
    parent's fired); completing the parent afterwards spawns nothing more."""
    api = carol.api
    # Whole seconds: occurrences are computed to the second (RRULE times have
    # no fraction), so a due with milliseconds would repeat without them.
    due = in_seconds(1.5, whole=True)
    timers_before = metric(api, "docket_reminder_timers")
    since = last_sequence(api)
    first = create(api, {"title": "heartbeat", "timezone": "UTC", "due": iso_ms(due),
                         "reminders": [], "recurrence": {"rule": "FREQ=DAILY",
                                                         "from": "schedule"}})
    assert metric(api, "docket_reminder_timers") == timers_before + 1
    events = wait_outcomes(api, since, [first["id"]], timeout=8)
    spawned, ended = outcome_of(events, first["id"])
    assert len(spawned) == 1 and not ended, events
    fired_at = parse_any(spawned[0]["time"])
    assert due <= fired_at <= due + timedelta(seconds=scaled(1.5)), (due, fired_at)
    child = spawned[0]["data"]
    assert parse_any(child["due"]) == due + timedelta(days=1)
    assert child["recurrence"]["index"] == 1 and child["recurrence"]["from"] == "schedule"
    assert api.get_task(first["id"])["completed"] is False
    assert wait_for(lambda: metric(api, "docket_reminder_timers") == timers_before + 1,
                    timeout=3), metric(api, "docket_reminder_timers")
    complete(api, first["id"])
    time.sleep(0.5)
    assert children(api, first["id"]) == [child]
    assert children(api, child["id"]) == []


def test_schedule_mode_completed_early_spawns_only_at_due(carol):
    """Completing a schedule-mode occurrence before it is due spawns nothing yet;
    the successor appears when the due instant comes."""
    api = carol.api
    due = in_seconds(1, whole=True)
    since = last_sequence(api)
    first = create(api, {"title": "early bird", "due": iso_ms(due), "reminders": [],
                         "recurrence": {"rule": "FREQ=WEEKLY", "from": "schedule"}})
    complete(api, first["id"])
    early = events_since(api, since)
    assert outcome_of(early, first["id"]) == ([], []), early
    events = wait_outcomes(api, since, [first["id"]], timeout=8)
    spawned, _ = outcome_of(events, first["id"])
    assert len(spawned) == 1
    assert parse_any(spawned[0]["time"]) >= due
    assert parse_any(spawned[0]["data"]["due"]) == due + timedelta(weeks=1)


def test_moving_a_schedule_due_moves_its_spawn(carol):
    """Moving a schedule-mode occurrence's due 2 s later moves its spawn:
    nothing at the old instant, one successor at the new one. The series
    stays anchored at series_start (only a rule or mode change restarts it),
    so the successor is the series' first occurrence after the new due."""
    api = carol.api
    old_due = in_seconds(0.5, whole=True)
    new_due = old_due + timedelta(seconds=2)
    since = last_sequence(api)
    first = create(api, {"title": "moved", "due": iso_ms(old_due), "reminders": [],
                         "recurrence": {"rule": "FREQ=DAILY", "from": "schedule"}})
    api.patch_task(first["id"], {"due": iso_ms(new_due)})
    time.sleep(max(0.0, (old_due - now_utc()).total_seconds()) + 0.4)
    if now_utc() < new_due:
        assert outcome_of(events_since(api, since), first["id"]) == ([], [])
    events = wait_outcomes(api, since, [first["id"]], timeout=6)
    spawned, _ = outcome_of(events, first["id"])
    assert len(spawned) == 1, events
    assert parse_any(spawned[0]["time"]) >= new_due
    assert parse_any(spawned[0]["data"]["recurrence"]["series_start"]) == old_due
    assert parse_any(spawned[0]["data"]["due"]) == old_due + timedelta(days=1)


def test_deleting_a_schedule_occurrence_stops_the_series(carol):
    """A schedule-mode occurrence deleted before its due never spawns: no
    recurrence event and no task names it as parent after the instant passed."""
    api = carol.api
    due = in_seconds(1.2)
    since = last_sequence(api)
    first = create(api, {"title": "cancelled", "due": iso_ms(due), "reminders": [],
                         "recurrence": {"rule": "FREQ=DAILY", "from": "schedule"}})
    assert api.delete(API + "/tasks/" + first["id"]).status_code == 204
    time.sleep(max(0.0, (due - now_utc()).total_seconds()) + 1.0)
    events = events_since(api, since)
    assert [e["type"] for e in events] == ["task.created", "task.deleted"], events
    assert children(api, first["id"]) == []


# ---- Exactly once -------------------------------------------------------------

def test_uncomplete_then_complete_never_spawns_twice(carol):
    """complete -> spawn; uncomplete; complete again: still exactly one successor
    and one recurrence.spawned naming the task as parent."""
    api = carol.api
    since = last_sequence(api)
    first = create(api, recurring("once", "Europe/Berlin",
                                  local("Europe/Berlin", 2028, 5, 1, 10, 0), "FREQ=DAILY"))
    child, _ = step(api, first)
    for _ in range(3):
        assert api.post(API + "/tasks/%s/uncomplete" % first["id"]).status_code == 200
        complete(api, first["id"])
    time.sleep(0.5)
    spawned, ended = outcome_of(events_since(api, since), first["id"])
    assert [e["subject"] for e in spawned] == [child["id"]] and not ended
    assert children(api, first["id"]) == [child]


def test_concurrent_completes_and_uncompletes_spawn_once(carol):
    """8 clients complete the same recurring task at once, then race
    uncomplete/complete pairs: one successor, one recurrence.spawned, and
    every request answered 200 (or 409 for a conflicting in-flight change)."""
    api = carol.api
    since = last_sequence(api)
    first = create(api, recurring("race", "UTC", local("UTC", 2028, 7, 1, 6, 0), "FREQ=DAILY"))
    path = API + "/tasks/%s/" % first["id"]

    def hammer(index):
        client = Api(api.base_url, api.token)
        statuses = [client.post(path + "complete").status_code]
        for _ in range(3):
            statuses.append(client.post(path + ("uncomplete" if index % 2 else "complete"))
                            .status_code)
        return statuses

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = [s for result in pool.map(hammer, range(8)) for s in result]
    assert set(statuses) <= {200, 409}, statuses
    if not api.get_task(first["id"])["completed"]:
        complete(api, first["id"])
    wait_outcomes(api, since, [first["id"]])
    time.sleep(0.5)
    spawned, ended = outcome_of(events_since(api, since), first["id"])
    assert len(spawned) == 1 and not ended, spawned
    assert [c["id"] for c in children(api, first["id"])] == [spawned[0]["subject"]]


def test_retried_complete_with_idempotency_key_spawns_once(carol):
    """The same complete sent three times with one Idempotency-Key (twice
    after the spawn, once concurrently with it) completes once and spawns once."""
    api = carol.api
    since = last_sequence(api)
    first = create(api, recurring("retry", "UTC", local("UTC", 2028, 6, 1, 6, 0),
                                  "FREQ=WEEKLY"))
    key = fresh_key()
    answers = [api.post(API + "/tasks/%s/complete" % first["id"],
                        headers={"Idempotency-Key": key})]
    answers.append(Api(api.base_url, api.token).post(
        API + "/tasks/%s/complete" % first["id"], headers={"Idempotency-Key": key}))
    wait_outcomes(api, since, [first["id"]])
    answers.append(api.post(API + "/tasks/%s/complete" % first["id"],
                            headers={"Idempotency-Key": key}))
    assert all(a.status_code == 200 for a in answers), [describe(a) for a in answers]
    assert len({a.content for a in answers}) == 1
    time.sleep(0.3)
    events = events_since(api, since)
    assert [e["type"] for e in events].count("task.completed") == 1
    spawned, _ = outcome_of(events, first["id"])
    assert len(spawned) == 1
    assert len(children(api, first["id"])) == 1


# ---- Validation ---------------------------------------------------------------

BAD_RULES = [
    "FREQ=HOURLY", "FREQ=DAILY;BYSETPOS=1", "FREQ=DAILY;INTERVAL=0", "FREQ=DAILY;INTERVAL=1001",
    "FREQ=DAILY;COUNT=2;UNTIL=20300101T000000Z", "FREQ=DAILY;BYDAY=MO", "RRULE:FREQ=DAILY", "",
    "FREQ=WEEKLY;BYDAY=XX", "FREQ=MONTHLY;BYMONTHDAY=32", "INTERVAL=2",
    "FREQ=DAILY;FREQ=WEEKLY", "FREQ=DAILY;COUNT=0", "FREQ=DAILY;UNTIL=tomorrow",
    "FREQ=WEEKLY;BYDAY=1MO",
]


@pytest.mark.parametrize("rule", BAD_RULES)
def test_invalid_rule_is_422_naming_recurrence_rule(carol, rule):
    """An unsupported or malformed RRULE is 422 with an error on recurrence.rule,
    on create and on PATCH, and changes nothing."""
    api = carol.api
    body = {"title": "bad", "due": "2029-01-01T09:00:00Z",
            "recurrence": {"rule": rule, "from": "due"}}
    problem(api.post(API + "/tasks", body), 422, field="recurrence.rule")
    task = create(api, {"title": "plain", "due": "2029-01-01T09:00:00Z"})
    problem(api.patch(API + "/tasks/" + task["id"], {"recurrence": body["recurrence"]}), 422,
            field="recurrence.rule")
    assert api.get_task(task["id"]) == task


def test_invalid_mode_is_422_naming_recurrence_from(carol):
    """recurrence.from other than due/completion/schedule is 422 on that field."""
    body = {"title": "bad", "due": "2029-01-01T09:00:00Z",
            "recurrence": {"rule": "FREQ=DAILY", "from": "weekly"}}
    problem(carol.api.post(API + "/tasks", body), 422, field="recurrence.from")


@pytest.mark.parametrize("member,value", [("series_start", "2029-01-01T09:00:00Z"),
                                          ("index", 3)])
def test_read_only_members_are_422(carol, member, value):
    """recurrence.series_start and recurrence.index are set by the server: sending
    either (create or PATCH) is 422 naming it."""
    api = carol.api
    recurrence = {"rule": "FREQ=DAILY", "from": "due", member: value}
    body = {"title": "ro", "due": "2029-01-01T09:00:00Z", "recurrence": recurrence}
    problem(api.post(API + "/tasks", body), 422, field="recurrence." + member)
    task = create(api, {"title": "ro", "due": "2029-01-01T09:00:00Z",
                        "recurrence": {"rule": "FREQ=DAILY", "from": "due"}})
    problem(api.patch(API + "/tasks/" + task["id"], {"recurrence": recurrence}), 422,
            field="recurrence." + member)
    assert api.get_task(task["id"]) == task


# ---- Property test against dateutil ----------------------------------------------

PROPERTY_SEED = 20261124
PROPERTY_RULES = 200
PROPERTY_STEPS = 5
WEEKDAYS = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"]


def random_rule(rng, dtstart):
    freq = rng.choice(["DAILY", "WEEKLY", "MONTHLY", "YEARLY"])
    parts = ["FREQ=" + freq]
    interval = rng.choice([1, 1, 1, 2, 3, 5, 7])
    if interval > 1:
        parts.append("INTERVAL=%d" % interval)
    if freq == "WEEKLY" and rng.random() < 0.6:
        days = sorted(rng.sample(range(7), rng.randint(1, 4)))
        parts.append("BYDAY=" + ",".join(WEEKDAYS[d] for d in days))
    if freq == "MONTHLY" and rng.random() < 0.6:
        days = sorted(rng.sample(range(1, 32), rng.randint(1, 3)))
        if rng.random() < 0.3:
            days = sorted(set(days) | {rng.choice([29, 30, 31])})
        parts.append("BYMONTHDAY=" + ",".join(str(d) for d in days))
    end = rng.random()
    if end < 0.3:
        parts.append("COUNT=%d" % rng.randint(1, PROPERTY_STEPS + 1))
    elif end < 0.5:
        span = {"DAILY": 10, "WEEKLY": 40, "MONTHLY": 150, "YEARLY": 1500}[freq] * interval
        until = dtstart + timedelta(days=rng.randint(0, span))
        parts.append("UNTIL=" + until.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ"))
    return ";".join(parts)


def random_series(rng):
    """(zone, rule, dtstart) with dtstart in the future, on an occurrence of the
    rule (so DTSTART counts, as both dateutil and RFC 5545 then agree) and on a
    wall time that exists in the zone."""
    while True:
        zone = rng.choice(ZONES)
        base = (now_utc() + timedelta(days=rng.randint(2, 700))).astimezone(ZoneInfo(zone))
        base = base.replace(hour=rng.randint(0, 23), minute=rng.choice([0, 15, 30, 45]),
                            second=0, microsecond=0, fold=0)
        rule = random_rule(rng, base)
        starts = list(itertools.islice(rrulestr(rule, dtstart=base), 1))
        if not starts:
            continue
        start = starts[0]
        if start.astimezone(UTC).astimezone(start.tzinfo).replace(tzinfo=None) != \
                start.replace(tzinfo=None):
            continue  # a wall time skipped by a DST change: DTSTART would move
        return zone, rule, start


class Chain:
    """One random series walked through the API."""

    def __init__(self, zone, rule, start):
        self.zone = zone                 # IANA zone of the task
        self.rule = rule                 # RRULE text sent
        self.start = start               # DTSTART, aware local
        self.expected = occurrences(rule, start, PROPERTY_STEPS + 2)
        self.tasks = []                  # tasks of the chain so far
        self.ended = None                # recurrence.ended event once the series ended

    @property
    def open(self):
        return self.ended is None and len(self.tasks) <= PROPERTY_STEPS


def test_property_due_chains_match_dateutil(carol, api_server):
    """~200 seeded random rules (DAILY/WEEKLY/MONTHLY/YEARLY, INTERVAL, BYDAY,
    BYMONTHDAY, COUNT, UNTIL) in five zones: completing each due-mode chain up to
    five times yields exactly dateutil's occurrences from the same DTSTART in
    that zone, index 0, 1, 2, ..., and recurrence.ended with the right reason
    exactly when dateutil has no further occurrence."""
    rng = random.Random(PROPERTY_SEED)
    api = signup(api_server, "prop").api
    chains = [Chain(*random_series(rng)) for _ in range(PROPERTY_RULES)]
    local_api = threading.local()

    def client():
        if not hasattr(local_api, "api"):
            local_api.api = Api(api.base_url, api.token)
        return local_api.api

    def create_one(chain):
        body = recurring("p", chain.zone, chain.start, chain.rule, reminders=[])
        return create(client(), body)

    def complete_one(chain):
        return complete(client(), chain.tasks[-1]["id"])

    with ThreadPoolExecutor(max_workers=8) as pool:
        for chain, task in zip(chains, pool.map(create_one, chains)):
            assert parse_any(task["due"]) == chain.expected[0], (chain.rule, chain.zone, task)
            assert task["recurrence"]["index"] == 0
            chain.tasks.append(task)
        for _ in range(PROPERTY_STEPS):
            active = [chain for chain in chains if chain.open]
            if not active:
                break
            since = last_sequence(api)
            list(pool.map(complete_one, active))
            events = wait_outcomes(api, since, [c.tasks[-1]["id"] for c in active], timeout=20)
            for chain in active:
                check_step(chain, events)


def check_step(chain, events):
    parent = chain.tasks[-1]
    spawned, ended = outcome_of(events, parent["id"])
    assert len(spawned) + len(ended) == 1, (chain.rule, chain.zone, spawned, ended)
    position = len(chain.tasks)
    context = (chain.rule, chain.zone, chain.start.isoformat(),
               [o.isoformat() for o in chain.expected], [t["due"] for t in chain.tasks])
    if position < len(chain.expected):
        assert spawned, ("dateutil has a next occurrence, the server ended", context, ended)
        child = spawned[0]["data"]
        assert parse_any(child["due"]) == chain.expected[position], (child["due"], context)
        assert child["recurrence"]["index"] == position, context
        assert parse_any(child["recurrence"]["series_start"]) == chain.expected[0], context
        assert child["parent_id"] == parent["id"]
        chain.tasks.append(child)
        return
    assert ended, ("dateutil ends here, the server spawned", context, spawned)
    reason = "count" if "COUNT=" in chain.rule else "until"
    assert ended[0]["data"] == {"reason": reason, "index": position - 1}, (ended, context)
    chain.ended = ended[0]


def test_wall_times_in_dst_gap_and_overlap_follow_rfc5545(carol):
    """Daily 02:30 in Berlin: on 2027-03-28 02:30 does not exist and the
    occurrence moves forward by the gap (03:30 CEST = 01:30Z); on 2027-10-31
    02:30 happens twice and the earlier instant (CEST, 00:30Z) is taken; the
    days after return to 02:30. Same instants as dateutil with zoneinfo."""
    api = carol.api
    for start in (local("Europe/Berlin", 2027, 3, 26, 2, 30),
                  local("Europe/Berlin", 2027, 10, 29, 2, 30)):
        first = create(api, recurring("night", "Europe/Berlin", start, "FREQ=DAILY"))
        chain, _ = walk(api, first, 3)
        assert dues(chain) == occurrences("FREQ=DAILY", start, 4), [t["due"] for t in chain]
    autumn = [t["due"] for t in chain]  # the last chain, checked explicitly too
    assert autumn[2] == "2027-10-31T00:30:00Z" and autumn[3] == "2027-11-01T01:30:00Z", autumn


def test_schedule_mode_due_in_the_past_catches_up_once(carol):
    """A schedule-mode daily task created with a due three days ago spawns one
    successor at once, due at the first occurrence after now (not one per
    missed day), with the skipped occurrences counted in its index."""
    api = carol.api
    start = (now_utc() - timedelta(days=3)).replace(microsecond=0)
    since = last_sequence(api)
    first = create(api, {"title": "catch up", "due": iso_ms(start), "reminders": [],
                         "recurrence": {"rule": "FREQ=DAILY", "from": "schedule"}})
    events = wait_outcomes(api, since, [first["id"]], timeout=5)
    spawned, _ = outcome_of(events, first["id"])
    assert len(spawned) == 1, events
    child = spawned[0]["data"]
    expected = [(i, m) for i, m in enumerate(occurrences("FREQ=DAILY", start, 10))
                if m > parse_any(spawned[0]["time"])]
    assert (child["recurrence"]["index"], parse_any(child["due"])) == expected[0]
    time.sleep(0.5)
    assert len([e for e in events_since(api, since) if e["type"] == "recurrence.spawned"]) == 1


def test_schedule_spawn_due_while_down_happens_at_start_once(tmp_path):
    """A schedule-mode occurrence that falls due while the server is stopped
    (SIGTERM) spawns its successor once at the next start, even with a grace
    window far shorter than the downtime (spawns are never "missed"), and a
    further restart spawns nothing more."""
    server = ApiServer(tmp_path).start()
    try:
        user = signup(server, "ivan")
        since = last_sequence(user.api)
        due = in_seconds(1.5, whole=True)
        first = create(user.api, {"title": "while down", "due": iso_ms(due), "reminders": [],
                                  "recurrence": {"rule": "FREQ=DAILY", "from": "schedule"}})
        server.stop()
        assert now_utc() < due, "the server stopped only after the due instant"
        time.sleep(max(0.0, (due - now_utc()).total_seconds()) + 1.5)
        server.start("--reminders-grace-ms", "100")
        events = wait_outcomes(user.api, since, [first["id"]], timeout=5)
        spawned, ended = outcome_of(events, first["id"])
        assert len(spawned) == 1 and not ended, events
        assert parse_any(spawned[0]["data"]["due"]) == due + timedelta(days=1)
        server.restart()
        time.sleep(0.5)
        assert len(outcome_of(events_since(user.api, since), first["id"])[0]) == 1
        assert len(children(user.api, first["id"])) == 1
    finally:
        server.close()


def test_spawned_occurrence_gets_its_own_reminders(carol):
    """A daily task due yesterday at (now + ~2.5 s) is completed: its successor is
    due today at that time and its reminders - the relative one kept, the
    absolute one shifted by a day - fire for the successor, once each, while
    the parent's (past) instants never fire."""
    api = carol.api
    start = in_seconds(2, whole=True) - timedelta(days=1)
    since = last_sequence(api)
    first = create(api, recurring("child reminders", "UTC", start, "FREQ=DAILY",
                                  reminders=[{"before": "PT0S"},
                                             {"at": iso_ms(start - timedelta(seconds=1))}]))
    child, _ = step(api, first)
    due = parse_any(child["due"])
    assert due == start + timedelta(days=1) and due > now_utc(), child
    assert child["reminders"][0] == {"before": "PT0S"}
    assert parse_any(child["reminders"][1]["at"]) == due - timedelta(seconds=1)
    time.sleep(max(0.0, (due - now_utc()).total_seconds()) + 0.5)
    events = poll_events(api, since, lambda ev: len(
        [e for e in ev if e["type"] == "reminder.triggered"]) >= 2, timeout=3)
    fired = [(e["type"], e["subject"], parse_any(e["data"]["reminder"]["at"])) for e in events
             if e["type"].startswith("reminder.")]
    assert fired == [("reminder.triggered", child["id"], due - timedelta(seconds=1)),
                     ("reminder.triggered", child["id"], due)], fired
