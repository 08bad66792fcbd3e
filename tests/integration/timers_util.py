"""Helpers shared by the black-box tests of recurring tasks and reminders
(test_recurrence.py, test_reminders.py, tests/fault/test_spawn_crash.py):
time formatting with milliseconds, bounded polling of the caller's event
stream for the events a timer produces, and the successor index built from
recurrence.spawned events.

Like api.py, nothing here knows the server's internals: only API.md and the
event types of src/tasks/task.h."""
import time
from datetime import datetime, timedelta, timezone

from api import API, describe, events_since
from conftest import scaled


def iso_ms(moment):
    """An aware datetime as RFC 3339 UTC with milliseconds."""
    utc = moment.astimezone(timezone.utc)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (utc.microsecond // 1000)


def parse_any(text):
    """An API time ("...Z", with or without milliseconds) as an aware datetime."""
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def now_utc():
    return datetime.now(timezone.utc)


def in_seconds(seconds, whole=False):
    """The instant `seconds` from now, truncated to whole milliseconds (or, with
    `whole`, rounded up to the next whole second)."""
    moment = now_utc() + timedelta(seconds=seconds)
    if whole:
        return moment.replace(microsecond=0) + timedelta(seconds=1)
    return moment.replace(microsecond=moment.microsecond // 1000 * 1000)


def last_sequence(api):
    events = events_since(api)
    return events[-1]["sequence"] if events else 0


def poll_events(api, since, done, timeout, interval=0.05):
    """Polls the caller's events after `since` until done(events) is true or
    `timeout` (scaled for sanitizer builds) passes; returns the events seen."""
    deadline = time.monotonic() + scaled(timeout)
    while True:
        events = events_since(api, since)
        if done(events) or time.monotonic() >= deadline:
            return events
        time.sleep(interval)


def of_type(events, kind, subject=None):
    return [event for event in events
            if event["type"] == kind and (subject is None or event["subject"] == subject)]


def timer_events(events, task_id):
    """reminder.triggered and reminder.missed events of one task."""
    return [event for event in events
            if event["type"] in ("reminder.triggered", "reminder.missed")
            and event["subject"] == task_id]


def outcome_of(events, parent_id):
    """What the spawn of `parent_id` produced: the recurrence.spawned events
    whose new task names it as parent plus the recurrence.ended events about it."""
    spawned = [event for event in events if event["type"] == "recurrence.spawned"
               and event["data"]["parent_id"] == parent_id]
    ended = of_type(events, "recurrence.ended", parent_id)
    return spawned, ended


def wait_outcomes(api, since, parent_ids, timeout=10):
    """Waits until every parent has a spawn outcome; returns the events."""
    wanted = set(parent_ids)

    def done(events):
        seen = {event["data"]["parent_id"] for event in events
                if event["type"] == "recurrence.spawned"}
        seen |= {event["subject"] for event in events if event["type"] == "recurrence.ended"}
        return wanted <= seen

    return poll_events(api, since, done, timeout)


def complete(api, task_id, key=None):
    headers = {"Idempotency-Key": key} if key else None
    response = api.post(API + "/tasks/%s/complete" % task_id, headers=headers)
    assert response.status_code == 200, describe(response)
    return response.json()


def create(api, body):
    response = api.post(API + "/tasks", body)
    assert response.status_code == 201, describe(response)
    return response.json()


def metric(api, name):
    """The value of an unlabelled sample of GET /metrics."""
    response = api.get("/metrics")
    assert response.status_code == 200, describe(response)
    for line in response.text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("no sample %s in /metrics" % name)
