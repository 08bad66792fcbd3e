"""Proves the embedded time-zone data (src/tasks/tzdata.h) stands in for a host
without zone files: the real binary, started with TZDIR naming a directory that
does not exist (the standard variable, so the host's /usr/share/zoneinfo is out
of reach), accepts IANA names for tasks and users, computes a recurring task's
next occurrence across a New York DST change from the embedded rules, and logs
that the embedded release is the source. A second server whose TZDIR holds a
deliberately wrong "America/New_York" shows that a host file wins over the
embedded copy."""
import re
import time

from api import API, describe, parse_time, signup, tasks_all
from conftest import scaled

# 2027-03-13 09:00 in New York is 14:00Z (EST, -5); DST starts on 2027-03-14,
# so the next daily occurrence at 09:00 local is 13:00Z (EDT, -4).
DUE = "2027-03-13T14:00:00Z"
NEXT_IN_NEW_YORK = "2027-03-14T13:00:00Z"
NEXT_IN_UTC = "2027-03-14T14:00:00Z"

SOURCE_RE = r"component=timezone msg=\"time-zone data\" source=\"%s\""


def recurring_task(user):
    return user.api.create_task({
        "title": "Water the plants",
        "due": DUE,
        "timezone": "America/New_York",
        "recurrence": {"rule": "FREQ=DAILY", "from": "due"},
    })


def next_occurrence(user, parent_id):
    """Completes the task and returns its spawned successor (waiting briefly:
    the successor may be created just after the completion is answered)."""
    response = user.api.post(API + "/tasks/%s/complete" % parent_id)
    assert response.status_code == 200, describe(response)
    deadline = time.monotonic() + scaled(10)
    while time.monotonic() < deadline:
        children = [task for task in tasks_all(user.api) if task["parent_id"] == parent_id]
        if children:
            assert len(children) == 1, children
            return children[0]
        time.sleep(0.05)
    raise AssertionError("no occurrence was spawned from %s" % parent_id)


def test_zones_work_without_host_zoneinfo(start_server):
    """With TZDIR=/nonexistent: a task in America/New_York is created (201), a
    user timezone Asia/Tokyo is accepted at signup and by PATCH /me (200), an
    unknown zone is still refused (422), the next daily occurrence lands at
    09:00 New York summer time, and the log names the embedded tzdata."""
    server = start_server(env={"TZDIR": "/nonexistent"})
    user = signup(server, "tokyo", timezone_name="Asia/Tokyo")
    assert user.user["timezone"] == "Asia/Tokyo"
    response = user.api.patch(API + "/me", {"timezone": "Asia/Tokyo"})
    assert response.status_code == 200, describe(response)
    assert response.json()["timezone"] == "Asia/Tokyo"
    response = user.api.patch(API + "/me", {"timezone": "Mars/Olympus_Mons"})
    assert response.status_code == 422, describe(response)

    task = recurring_task(user)
    assert task["timezone"] == "America/New_York"
    child = next_occurrence(user, task["id"])
    assert parse_time(child["due"]) == parse_time(NEXT_IN_NEW_YORK), child
    server.wait_for_log(SOURCE_RE % r"embedded tzdata 20\d\d[a-z]")


def test_host_file_wins_over_embedded(start_server, tmp_path):
    """With TZDIR holding an "America/New_York" that is really UTC, the next
    occurrence follows that file (09:00 stays 14:00Z), and the log names the
    directory as the source."""
    zones = tmp_path / "zoneinfo"
    (zones / "America").mkdir(parents=True)
    (zones / "America" / "New_York").write_bytes(utc_tzif())
    server = start_server(env={"TZDIR": str(zones)})
    user = signup(server, "utc")
    task = recurring_task(user)
    child = next_occurrence(user, task["id"])
    assert parse_time(child["due"]) == parse_time(NEXT_IN_UTC), child
    server.wait_for_log(SOURCE_RE % re.escape("system zoneinfo at %s" % zones))


def utc_tzif():
    """A minimal version 2 TZif file for UTC (RFC 8536): empty v1 block with one
    type, the same v2 block, and the footer "UTC0"."""
    header = b"TZif2" + bytes(15) + (0).to_bytes(4, "big") * 4 \
        + (1).to_bytes(4, "big") + (4).to_bytes(4, "big")
    block = (0).to_bytes(4, "big") + b"\x00\x00" + b"UTC\x00"
    return header + block + header + block + b"\nUTC0\n"

