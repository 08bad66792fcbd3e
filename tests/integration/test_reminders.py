"""Proves reminders end to end over the real API (API.md `reminders`,
src/reminders/scheduler.h): each distinct reminder instant of an open task
appends one reminder.triggered at that instant (small late_ms); several
instants fire separately and two reminders on one instant fire once; moving
the due reschedules, completing and deleting cancel, uncompleting re-arms the
instants still ahead, and a reminder already past when set is never
scheduled; pending reminders survive a clean restart; a reminder that came
due while the server was down fires at start with late_ms ~ the downtime
when within --reminders-grace-ms and is recorded as reminder.missed (never
triggered) beyond it; users never see each other's reminders; /metrics
counts the timers."""
import re
import time
from datetime import timedelta

import pytest

from api import API, ApiServer, describe, events_since, server_fixture, signup, wait_for
from conftest import scaled
from timers_util import (complete, create, in_seconds, iso_ms, last_sequence, metric, now_utc,
                         parse_any, poll_events, timer_events)

api_server = server_fixture()

# How late a reminder may fire on a quiet machine (the wheel ticks in ms; the
# scheduler sleeps at most 1 s but is woken by new timers).
LATE_MS_MAX = scaled(500)


@pytest.fixture(scope="module")
def dora(api_server):
    return signup(api_server, "dora")


@pytest.fixture(scope="module")
def eve(api_server):
    return signup(api_server, "eve")


def seconds_of(duration):
    """PTnHnMnS (the forms the server writes and reads) in seconds."""
    match = re.fullmatch(r"PT(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?", duration)
    assert match and duration != "PT", duration
    hours, minutes, seconds = (int(part or 0) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def wait_reminders(api, since, task_id, count, timeout):
    """Waits for `count` reminder events of the task; returns all of them seen."""
    events = poll_events(api, since, lambda ev: len(timer_events(ev, task_id)) >= count,
                         timeout)
    return timer_events(events, task_id)


def sleep_until(moment, extra=0.0):
    time.sleep(max(0.0, (moment - now_utc()).total_seconds()) + extra)


def check_triggered(event, task, at, late_ms_max=LATE_MS_MAX):
    """A reminder.triggered for `task` at instant `at`, fired on time."""
    assert event["type"] == "reminder.triggered", event
    assert event["subject"] == task["id"] and event["actor"] == "docket", event
    data = event["data"]
    assert set(data) == {"task", "reminder", "key", "fired_at", "late_ms"}, data
    assert data["task"]["id"] == task["id"]
    assert parse_any(data["reminder"]["at"]) == at, (data, at)
    at_ms = int(at.timestamp() * 1000)
    assert data["key"] == "%s@%d" % (task["id"], at_ms), data
    fired = parse_any(data["fired_at"])
    assert fired >= at, data
    assert 0 <= data["late_ms"] <= late_ms_max, data
    assert abs((fired - at) / timedelta(milliseconds=1) - data["late_ms"]) <= 2, data
    return data


# ---- Firing ------------------------------------------------------------------------

def test_reminder_fires_at_its_instant(dora):
    """A task due in 1.5 s with {"before":"PT0S"} gets one reminder.triggered at
    the due instant: data carries the task, the instant, the spec, the key
    <task>@<ms>, fired_at and a small late_ms; nothing fires twice."""
    api = dora.api
    since = last_sequence(api)
    due = in_seconds(1.5)
    task = create(api, {"title": "tea", "due": iso_ms(due), "reminders": [{"before": "PT0S"}]})
    found = wait_reminders(api, since, task["id"], 1, timeout=5)
    assert len(found) == 1, found
    data = check_triggered(found[0], task, due)
    assert data["task"] == task
    assert [seconds_of(spec["before"]) for spec in data["reminder"]["specs"]] == [0]
    time.sleep(0.5)
    assert len(timer_events(events_since(api, since), task["id"])) == 1


def test_several_reminders_fire_separately(dora):
    """Reminders 2 s, 1 s and 0 s before the due are three instants: three
    reminder.triggered events, in time order, each at its own instant with
    only its own spec."""
    api = dora.api
    since = last_sequence(api)
    due = in_seconds(2.5)
    task = create(api, {"title": "three", "due": iso_ms(due),
                        "reminders": [{"before": "PT2S"}, {"before": "PT1S"},
                                      {"before": "PT0S"}]})
    found = wait_reminders(api, since, task["id"], 3, timeout=6)
    assert len(found) == 3, found
    for event, before in zip(found, (2, 1, 0)):
        data = check_triggered(event, task, due - timedelta(seconds=before))
        assert [seconds_of(s["before"]) for s in data["reminder"]["specs"]] == [before]
    keys = [event["data"]["key"] for event in found]
    assert len(set(keys)) == 3


def test_two_reminders_on_one_instant_fire_once(dora):
    """{"before":"PT1S"} and {"at": due - 1 s} name one instant: one event,
    listing both specs."""
    api = dora.api
    since = last_sequence(api)
    due = in_seconds(2)
    at = due - timedelta(seconds=1)
    task = create(api, {"title": "same", "due": iso_ms(due),
                        "reminders": [{"before": "PT1S"}, {"at": iso_ms(at)}]})
    found = wait_reminders(api, since, task["id"], 1, timeout=5)
    time.sleep(0.5)
    found = timer_events(events_since(api, since), task["id"])
    assert len(found) == 1, found
    specs = check_triggered(found[0], task, at)["reminder"]["specs"]
    assert len(specs) == 2, specs
    assert {seconds_of(s["before"]) for s in specs if "before" in s} == {1}
    assert [parse_any(s["at"]) for s in specs if "at" in s] == [at]


def test_specs_echo_the_tasks_reminder_entries(dora):
    """reminder.specs lists the task's reminder entries as the task holds them:
    the default {"before":"PT15M"} is reported as "PT15M", not respelled
    (an earlier build wrote "PT900S")."""
    api = dora.api
    since = last_sequence(api)
    due = in_seconds(15 * 60 + 1)
    task = create(api, {"title": "default", "due": iso_ms(due)})
    assert task["reminders"] == [{"before": "PT15M"}]
    found = wait_reminders(api, since, task["id"], 1, timeout=5)
    assert len(found) == 1, found
    data = check_triggered(found[0], task, due - timedelta(minutes=15))
    assert data["reminder"]["specs"] == task["reminders"], data["reminder"]


# ---- Rescheduling and cancelling -----------------------------------------------------

def test_moving_the_due_reschedules(dora):
    """PATCHing the due from +1.2 s to +2.5 s moves the reminder: it fires once,
    at the new instant, and the old instant never fires."""
    api = dora.api
    since = last_sequence(api)
    old_due, new_due = in_seconds(1.2), in_seconds(2.5)
    task = create(api, {"title": "moved", "due": iso_ms(old_due),
                        "reminders": [{"before": "PT0S"}]})
    moved = api.patch_task(task["id"], {"due": iso_ms(new_due)})
    found = wait_reminders(api, since, task["id"], 1, timeout=6)
    sleep_until(new_due, 0.4)
    found = timer_events(events_since(api, since), task["id"])
    assert len(found) == 1, found
    check_triggered(found[0], moved, new_due)


@pytest.mark.parametrize("action", ["complete", "delete"])
def test_completing_or_deleting_cancels(dora, action):
    """A task completed (or deleted) before its reminder's instant gets no
    reminder event at all once the instant has passed."""
    api = dora.api
    since = last_sequence(api)
    due = in_seconds(1.2)
    task = create(api, {"title": action, "due": iso_ms(due), "reminders": [{"before": "PT0S"}]})
    if action == "complete":
        complete(api, task["id"])
    else:
        assert api.delete(API + "/tasks/" + task["id"]).status_code == 204
    sleep_until(due, 0.8)
    assert timer_events(events_since(api, since), task["id"]) == []


def test_uncomplete_rearms_instants_still_ahead(dora):
    """complete then uncomplete before the instant: the reminder fires once at
    its instant. A task whose instant passed while it was completed gets
    nothing when uncompleted afterwards."""
    api = dora.api
    since = last_sequence(api)
    ahead_due, passed_due = in_seconds(2.0), in_seconds(0.8)
    ahead = create(api, {"title": "ahead", "due": iso_ms(ahead_due),
                         "reminders": [{"before": "PT0S"}]})
    passed = create(api, {"title": "passed", "due": iso_ms(passed_due),
                          "reminders": [{"before": "PT0S"}]})
    complete(api, ahead["id"])
    complete(api, passed["id"])
    assert api.post(API + "/tasks/%s/uncomplete" % ahead["id"]).status_code == 200
    sleep_until(passed_due, 0.3)
    reopened = api.post(API + "/tasks/%s/uncomplete" % passed["id"])
    assert reopened.status_code == 200, describe(reopened)
    found = wait_reminders(api, since, ahead["id"], 1, timeout=5)
    sleep_until(ahead_due, 0.5)
    events = events_since(api, since)
    found = timer_events(events, ahead["id"])
    assert len(found) == 1, found
    check_triggered(found[0], api.get_task(ahead["id"]), ahead_due)
    assert timer_events(events, passed["id"]) == []


def test_patching_reminders_and_clearing_the_due_reschedule(dora):
    """PATCH reminders replaces the instants: a removed one never fires, an added
    one does; clearing the due (null) cancels the relative reminders of a
    task while its absolute ones still fire."""
    api = dora.api
    since = last_sequence(api)
    due = in_seconds(2.0)
    edited = create(api, {"title": "edited", "due": iso_ms(due),
                          "reminders": [{"before": "PT1S"}]})
    api.patch_task(edited["id"], {"reminders": [{"before": "PT0S"}]})
    undated = create(api, {"title": "undated", "due": iso_ms(due),
                           "reminders": [{"before": "PT0S"}, {"at": iso_ms(due)},
                                         {"before": "PT1S"}]})
    cleared = api.patch_task(undated["id"], {"due": None})
    assert cleared["due"] is None
    sleep_until(due, 0.5)
    events = events_since(api, since)
    found = timer_events(events, edited["id"])
    assert len(found) == 1, found
    check_triggered(found[0], api.get_task(edited["id"]), due)
    found = timer_events(events, undated["id"])
    assert len(found) == 1, found
    data = check_triggered(found[0], cleared, due)
    assert [parse_any(s["at"]) for s in data["reminder"]["specs"]] == [due], data


def test_reminder_in_the_past_is_not_scheduled(dora):
    """A reminder whose instant is already past when set (an `at` 10 s ago, or the
    default PT15M of a task due in 5 minutes) is never scheduled: no timer in
    the gauge, no triggered and no missed event."""
    api = dora.api
    since = last_sequence(api)
    timers = metric(api, "docket_reminder_timers")
    past_at = create(api, {"title": "past at", "due": iso_ms(in_seconds(3600)),
                           "reminders": [{"at": iso_ms(in_seconds(-10))}]})
    default = create(api, {"title": "soon", "due": iso_ms(in_seconds(300))})
    assert default["reminders"] == [{"before": "PT15M"}]
    assert metric(api, "docket_reminder_timers") == timers
    time.sleep(0.5)
    events = events_since(api, since)
    assert timer_events(events, past_at["id"]) == [] and timer_events(events, default["id"]) == []


# ---- Isolation and metrics ---------------------------------------------------------

def test_reminders_of_another_user_are_invisible(dora, eve):
    """dora's reminder fires in dora's stream only: eve's stream has no
    reminder event about it and eve cannot read the task's events."""
    since_d, since_e = last_sequence(dora.api), last_sequence(eve.api)
    due = in_seconds(1)
    task = create(dora.api, {"title": "private", "due": iso_ms(due),
                             "reminders": [{"before": "PT0S"}]})
    assert len(wait_reminders(dora.api, since_d, task["id"], 1, timeout=5)) == 1
    theirs = events_since(eve.api, since_e)
    assert all(task["id"] not in str(event) for event in theirs), theirs
    assert not [e for e in theirs if e["type"].startswith("reminder.")], theirs
    assert eve.api.get(API + "/tasks/%s/events" % task["id"]).status_code == 404


def settled(api, name, quiet_s=0.5):
    """The gauge once it has not moved for `quiet_s` (a timer of an earlier test
    may still be leaving the wheel)."""
    value, since = metric(api, name), time.monotonic()
    deadline = since + scaled(5)
    while time.monotonic() - since < quiet_s and time.monotonic() < deadline:
        time.sleep(0.05)
        current = metric(api, name)
        if current != value:
            value, since = current, time.monotonic()
    return value


def test_metrics_count_timers(dora):
    """docket_reminder_timers counts pending instants: +3 for three tasks with
    one future reminder each, +1 more for a task with two reminders on one
    instant, back down when they are deleted; firings are counted."""
    api = dora.api
    before = settled(api, "docket_reminder_timers")
    firings = metric(api, "docket_reminder_firings_total")
    far = in_seconds(7200)
    tasks = [create(api, {"title": "m%d" % i, "due": iso_ms(far + timedelta(minutes=i))})
             for i in range(3)]
    tasks.append(create(api, {"title": "m-same", "due": iso_ms(far),
                              "reminders": [{"before": "PT1H"},
                                            {"at": iso_ms(far - timedelta(hours=1))}]}))
    assert metric(api, "docket_reminder_timers") == before + 4
    for task in tasks:
        assert api.delete(API + "/tasks/" + task["id"]).status_code == 204
    assert wait_for(lambda: metric(api, "docket_reminder_timers") == before, timeout=3), \
        (before, metric(api, "docket_reminder_timers"))
    since = last_sequence(api)
    task = create(api, {"title": "fires", "due": iso_ms(in_seconds(0.5)),
                        "reminders": [{"before": "PT0S"}]})
    assert wait_reminders(api, since, task["id"], 1, timeout=5)
    assert wait_for(lambda: metric(api, "docket_reminder_firings_total") >= firings + 1)
    assert wait_for(lambda: metric(api, "docket_reminder_timers") == before, timeout=3), \
        (before, metric(api, "docket_reminder_timers"))


# ---- Restarts and the grace window --------------------------------------------------

@pytest.fixture(scope="module")
def own_server(tmp_path_factory):
    """A server of its own (these tests stop and restart it); one signup (a
    PBKDF2 hash) serves them all."""
    server = ApiServer(tmp_path_factory.mktemp("restarts")).start()
    server.user = signup(server, "frank")
    yield server
    server.close()


def running_user(server):
    """The module's restart user, its server started again if an earlier test
    failed while it was down."""
    if not server.running:
        server.start()
    return server.user


def test_clean_restart_keeps_pending_reminders(own_server):
    """A reminder pending at SIGTERM fires after the restart, once, on time."""
    user = running_user(own_server)
    since = last_sequence(user.api)
    due = in_seconds(3)
    task = create(user.api, {"title": "survives", "due": iso_ms(due),
                             "reminders": [{"before": "PT0S"}]})
    own_server.restart()
    assert now_utc() < due, "the restart took longer than the test allows"
    found = wait_reminders(user.api, since, task["id"], 1, timeout=6)
    sleep_until(due, 0.5)
    found = timer_events(events_since(user.api, since), task["id"])
    assert len(found) == 1, found
    check_triggered(found[0], task, due)


def downtime_start(server, user, seconds_ahead):
    """Creates a task whose reminder comes due `seconds_ahead` from now and stops
    the server (SIGTERM) before it does; returns (task, instant)."""
    at = in_seconds(seconds_ahead)
    task = create(user.api, {"title": "down", "due": iso_ms(at),
                             "reminders": [{"before": "PT0S"}]})
    server.stop()
    assert now_utc() < at, "the server stopped only after the instant"
    return task, at


def test_reminder_due_while_down_fires_within_grace(own_server):
    """Down across a reminder's instant for ~2.5 s, restarted with a 60 s grace:
    reminder.triggered once with late_ms ~ the downtime; a further restart
    does not fire it again."""
    user = running_user(own_server)
    since = last_sequence(user.api)
    task, at = downtime_start(own_server, user, 0.5)
    sleep_until(at, 2.0)
    own_server.start("--reminders-grace-ms", "60000")
    found = wait_reminders(user.api, since, task["id"], 1, timeout=5)
    observed_ms = (now_utc() - at) / timedelta(milliseconds=1)
    assert len(found) == 1 and found[0]["type"] == "reminder.triggered", found
    late_ms = found[0]["data"]["late_ms"]
    assert 2000 <= late_ms <= observed_ms, (late_ms, observed_ms)
    check_triggered(found[0], task, at, late_ms_max=observed_ms)
    own_server.restart()
    time.sleep(0.5)
    assert len(timer_events(events_since(user.api, since), task["id"])) == 1


def test_reminder_later_than_grace_is_missed(own_server):
    """Down ~2.5 s across a reminder's instant, restarted with
    --reminders-grace-ms 500: reminder.missed (late_ms > 500) and never
    reminder.triggered, also not after a further restart; the missed counter
    counts it."""
    user = running_user(own_server)
    since = last_sequence(user.api)
    task, at = downtime_start(own_server, user, 0.5)
    sleep_until(at, 2.0)
    own_server.start("--reminders-grace-ms", "500")
    found = wait_reminders(user.api, since, task["id"], 1, timeout=5)
    assert [event["type"] for event in found] == ["reminder.missed"], found
    data = found[0]["data"]
    assert data["late_ms"] >= 2000 and parse_any(data["reminder"]["at"]) == at, data
    assert data["key"] == "%s@%d" % (task["id"], int(at.timestamp() * 1000))
    assert metric(user.api, "docket_reminder_missed_total") == 1
    own_server.restart("--reminders-grace-ms", "500")
    time.sleep(0.5)
    assert [e["type"] for e in timer_events(events_since(user.api, since), task["id"])] == \
        ["reminder.missed"]
