"""Helpers for tests that use the dead-letter queue's admin API (API.md
"Operations"; shapes in src/consumer/deadletter.h): list every entry through
the keyset pages, wait for an entry to appear or change state, redrive one,
and read the docket_dlq_entries gauges from /metrics. Only the public API is
used."""
import re
import time

import requests

from api import API, TIMEOUT

DLQ = API + "/admin/dlq"
STATES = ("dead", "redriving", "redriven", "failed_again")
ENTRY_FIELDS = {"id", "consumer", "key", "user_id", "event", "item", "error", "attempts",
                "failed_at", "state", "redriven_at"}


def dlq_entries(admin, state=None, limit=None, max_pages=100):
    """Every entry, newest first, following next_cursor (`admin` is an Api
    with an admin token). Checks each page's shape on the way."""
    entries, cursor = [], None
    for _ in range(max_pages):
        params = {}
        if state is not None:
            params["state"] = state
        if limit is not None:
            params["limit"] = str(limit)
        if cursor is not None:
            params["cursor"] = cursor
        response = admin.get(DLQ, params=params)
        assert response.status_code == 200, response.text
        page = response.json()
        assert set(page) == {"items", "next_cursor"}, page
        for entry in page["items"]:
            assert set(entry) == ENTRY_FIELDS, entry
            assert entry["state"] in STATES, entry
        entries += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            return entries
    raise AssertionError("more than %d pages" % max_pages)


def dlq_wait(admin, predicate, timeout=30.0, interval=0.1):
    """Polls the list until an entry satisfies `predicate`; returns it."""
    deadline = time.monotonic() + timeout
    while True:
        for entry in dlq_entries(admin):
            if predicate(entry):
                return entry
        if time.monotonic() > deadline:
            raise AssertionError("no dead-letter entry matched within %.0fs" % timeout)
        time.sleep(interval)


def dlq_redrive(admin, entry_id):
    """POST .../redrive; returns the response (202 with the entry on success)."""
    return admin.post(DLQ + "/" + entry_id + "/redrive")


def dlq_metrics(base_url):
    """{state: count} from the docket_dlq_entries gauges of /metrics."""
    text = requests.get(base_url + "/metrics", timeout=TIMEOUT).text
    found = dict(re.findall(r'^docket_dlq_entries\{state="([a-z_]+)"\} (\d+)$', text, re.M))
    return {state: int(count) for state, count in found.items()}
