"""Proves WebSocket realtime sync (issue 5; PRODUCT.md S1, U2) against the real
binary, mostly through the `websockets` client library: every change reaches
every connected device of its user (and no one else) as the CloudEvent GET
/api/v1/events returns, with dense sequences; ?since and resume deliver
exactly what was missed and then live events; errors keep the socket open;
token expiry, connection limits, dead peers, slow consumers, server shutdown
and TLS behave as the contract says."""
import json
import shutil
import signal
import socket
import ssl
import subprocess
import threading
import time

import pytest
import requests
from websockets.exceptions import ConnectionClosed, InvalidStatus

from api import (API, Api, ApiServer, check_envelope, claims_for, events_since, forge,
                 server_fixture, signup, wait_for)
from conftest import SANITIZED, scaled
from httpio import assert_problem
import wsraw
from wsraw import OP_CLOSE, OP_PING, Stream, lib_connect, lib_recv_json

api_server = server_fixture()


@pytest.fixture(scope="module")
def alice(api_server):
    return signup(api_server, "wsalice")


@pytest.fixture(scope="module")
def bob(api_server, alice):
    return signup(api_server, "wsbob")


@pytest.fixture
def own_server(tmp_path_factory):
    """own_server(*flags) -> a started ApiServer of this test only."""
    servers = []

    def start(*flags):
        server = ApiServer(tmp_path_factory.mktemp("ws"), flags).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def last_sequence(user):
    events = events_since(user.api)
    return events[-1]["sequence"] if events else 0


def attach(user, since=None, via="header", **kw):
    """A library client whose subscription is surely attached (a ping was answered)."""
    ws = lib_connect(user.server.base_url, user.token, since=since, via=via, **kw)
    if since is None:
        ws.send(json.dumps({"type": "ping"}))
        assert lib_recv_json(ws, scaled(5)) == {"type": "pong"}
    return ws


def next_events(ws, count, timeout=10.0, user_id=None):
    """Exactly the next `count` messages, each an event message; returns the events."""
    events = []
    deadline = time.monotonic() + scaled(timeout)
    while len(events) < count:
        remaining = deadline - time.monotonic()
        assert remaining > 0, "got %d of %d events: %r" % (len(events), count,
                                                          [e["sequence"] for e in events])
        message = lib_recv_json(ws, remaining)
        assert message.get("type") == "event" and set(message) == {"type", "event"}, message
        check_envelope(message["event"], user_id)
        events.append(message["event"])
    return events


def assert_quiet(ws, seconds=0.3):
    """Nothing more arrives for `seconds`."""
    with pytest.raises(TimeoutError):
        message = ws.recv(timeout=seconds)
        raise AssertionError("unexpected message %r" % message[:300])


def rest_events(user, since, count, timeout=5.0):
    """The user's events after `since` from GET /api/v1/events, once there are `count`."""
    events = wait_for(lambda: (lambda got: got if len(got) >= count else None)(
        events_since(user.api, since)), timeout=timeout)
    assert events and len(events) == count, events
    return events


def write_some(user, count, prefix="w"):
    """`count` creates; returns how many events they appended (one each)."""
    api = user.api
    for index in range(count):
        api.create_task({"title": "%s-%d" % (prefix, index)})
    return count


def expect_event_stream(ws, user, since, count, timeout=10.0):
    """The next `count` events on `ws` are since+1.. and equal GET /events."""
    got = next_events(ws, count, timeout, user.id)
    assert [e["sequence"] for e in got] == list(range(since + 1, since + count + 1))
    assert got == rest_events(user, since, count)
    return got


# ---- Live events ----------------------------------------------------------------

def test_live_events_dense_for_each_change(alice):
    """create, patch, due change, complete, uncomplete and delete reach a live
    socket as {"type":"event"} messages identical to GET /events, dense from the
    user's sequence at connect time, and nothing else arrives."""
    with attach(alice) as ws:
        start = last_sequence(alice)
        api = alice.api
        task = api.create_task({"title": "live", "due": "2031-01-01T09:00:00Z"})
        api.patch_task(task["id"], {"title": "live 2"})
        api.patch_task(task["id"], {"due": "2031-01-02T09:00:00Z"})
        assert api.post(API + "/tasks/%s/complete" % task["id"]).status_code == 200
        assert api.post(API + "/tasks/%s/uncomplete" % task["id"]).status_code == 200
        assert api.delete(API + "/tasks/" + task["id"]).status_code == 204
        expected = wait_for(lambda: (lambda got: got if got and got[-1]["type"] ==
                                     "task.deleted" else None)(events_since(api, start)))
        got = next_events(ws, len(expected), user_id=alice.id)
        assert got == expected
        assert [e["sequence"] for e in got] == list(range(start + 1, start + len(got) + 1))
        types = [e["type"] for e in got]
        for kind in ("task.created", "task.updated", "task.due_changed", "task.completed",
                     "task.uncompleted", "task.deleted"):
            assert kind in types, types
        assert {e["subject"] for e in got} == {task["id"]}
        assert_quiet(ws)


def test_devices_get_their_users_events_only(alice, bob):
    """Two devices of A and two of B, writes of both users interleaved from
    threads: each device gets exactly its user's events (dense, equal to GET
    /events) and never one of the other user's."""
    devices = {"a1": (alice, attach(alice)), "a2": (alice, attach(alice, via="subprotocol")),
               "b1": (bob, attach(bob, via="query")), "b2": (bob, attach(bob))}
    try:
        starts = {user.id: last_sequence(user) for user in (alice, bob)}
        threads = [threading.Thread(target=write_some, args=(user, 15, user.username))
                   for user in (alice, bob)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        metrics = requests.get(alice.server.base_url + "/metrics", timeout=10).text
        gauge = [line for line in metrics.splitlines()
                 if line.startswith("docket_ws_connections")]
        assert gauge and float(gauge[0].split()[-1]) >= 4, gauge
        for name, (user, ws) in devices.items():
            got = expect_event_stream(ws, user, starts[user.id], 15)
            assert all(event["userid"] == user.id for event in got), name
            assert_quiet(ws)
    finally:
        for _, ws in devices.values():
            ws.close()


# ---- Resume ----------------------------------------------------------------------

def test_since_delivers_missed_then_live(alice):
    """?since=N delivers exactly N+1..last (also N=0: the whole history from
    user.created), then live events, on every auth path."""
    before = last_sequence(alice)
    write_some(alice, 4, "offline")
    last = before + 4
    for via in ("header", "subprotocol", "query"):
        with lib_connect(alice.server.base_url, alice.token, since=before, via=via) as ws:
            expect_event_stream(ws, alice, before, last - before)
            assert_quiet(ws, 0.2)
            alice.api.create_task({"title": "live after since " + via})
            last += 1
            got = next_events(ws, 1, user_id=alice.id)
            assert got[0]["sequence"] == last
    with lib_connect(alice.server.base_url, alice.token, since=0) as ws:
        history = expect_event_stream(ws, alice, 0, last)
        assert history[0]["type"] == "user.created"
    with lib_connect(alice.server.base_url, alice.token, since=last) as ws:
        ws.send(json.dumps({"type": "ping"}))
        assert lib_recv_json(ws, scaled(5)) == {"type": "pong"}


def test_resume_message_and_gap_request(alice):
    """{"type":"resume","since":N} delivers N+1..last then live; sent again
    later (a client that saw a gap) it re-delivers from the new N, then live,
    with no duplicate beyond the requested replay."""
    write_some(alice, 5, "before-resume")
    last = last_sequence(alice)
    with attach(alice) as ws:
        ws.send(json.dumps({"type": "resume", "since": last - 5}))
        expect_event_stream(ws, alice, last - 5, 5)
        alice.api.create_task({"title": "live 1"})
        assert next_events(ws, 1)[0]["sequence"] == last + 1
        ws.send(json.dumps({"type": "resume", "since": last - 2}))
        got = next_events(ws, 3, user_id=alice.id)
        assert [e["sequence"] for e in got] == [last - 1, last, last + 1]
        assert got == events_since(alice.api, last - 2)[:3]
        assert_quiet(ws, 0.2)
        alice.api.create_task({"title": "live 2"})
        assert next_events(ws, 1)[0]["sequence"] == last + 2
        assert_quiet(ws, 0.2)


def test_resume_while_events_flow(alice):
    """Gap requests sent while another thread writes: the device's stream holds
    every event once, in order, each re-sent one identical to its first copy."""
    start = last_sequence(alice)
    stream = Stream(start)
    writer = threading.Thread(target=write_some, args=(alice, 60, "flow"))
    with attach(alice) as ws:
        writer.start()
        triggers = [10, 25, 40]  # gap requests when the stream reaches these
        while stream.last < start + 60:
            try:
                message = lib_recv_json(ws, scaled(10))
            except TimeoutError:
                raise AssertionError("stream stuck at %d: %r" % (stream.last, stream.errors[:5]))
            if message["type"] == "pong":
                continue
            assert message["type"] == "event", message
            stream.add(message["event"])
            if triggers and stream.last - start >= triggers[0] and stream.pending is None \
                    and stream.cursor is None:
                triggers.pop(0)
                ws.send(json.dumps({"type": "resume", "since": stream.last - 4}))
                stream.resume_sent(stream.last - 4)
        writer.join()
        assert not stream.errors, stream.errors[:5]
        assert stream.ordered() == events_since(alice.api, start)
        assert not triggers and stream.replays >= 1


def test_since_ahead_then_live(alice):
    """since past the user's last sequence opens the socket, sends a since_ahead
    error with last_sequence, and continues live from there; the same for a
    resume message."""
    last = last_sequence(alice)
    with lib_connect(alice.server.base_url, alice.token, since=last + 100) as ws:
        error = lib_recv_json(ws, scaled(5))
        assert error["type"] == "error" and error["code"] == "since_ahead", error
        assert error["last_sequence"] == last, error
        assert isinstance(error.get("detail"), str) and error["detail"], error
        alice.api.create_task({"title": "after since_ahead"})
        assert next_events(ws, 1)[0]["sequence"] == last + 1
        ws.send(json.dumps({"type": "resume", "since": last + 50}))
        error = lib_recv_json(ws, scaled(5))
        assert error["type"] == "error" and error["code"] == "since_ahead", error
        assert error["last_sequence"] == last + 1, error
        alice.api.create_task({"title": "after resume since_ahead"})
        assert next_events(ws, 1)[0]["sequence"] == last + 2
        assert_quiet(ws, 0.2)


# ---- Messages ---------------------------------------------------------------------

def test_ping_pong(alice):
    """{"type":"ping"} is answered {"type":"pong"}, as often as asked."""
    with lib_connect(alice.server.base_url, alice.token) as ws:
        for _ in range(5):
            ws.send(json.dumps({"type": "ping"}))
            assert lib_recv_json(ws, scaled(5)) == {"type": "pong"}


BAD_MESSAGES = [
    ("{", {"invalid_json"}, None),
    ('{"type":"ping"', {"invalid_json"}, None),
    ("", {"invalid_json"}, None),
    ("[1,2]", {"invalid_json", "invalid_field", "unknown_type"}, None),
    ('"ping"', {"invalid_json", "invalid_field", "unknown_type"}, None),
    ("42", {"invalid_json", "invalid_field", "unknown_type"}, None),
    ("null", {"invalid_json", "invalid_field", "unknown_type"}, None),
    ('{"type":"subscribe"}', {"unknown_type"}, None),
    ('{"type":"PING"}', {"unknown_type"}, None),
    ("{}", {"unknown_type", "invalid_field"}, None),
    ('{"type":5}', {"unknown_type", "invalid_field"}, None),
    ('{"type":"resume"}', {"invalid_field"}, "since"),
    ('{"type":"resume","since":-1}', {"invalid_field"}, "since"),
    ('{"type":"resume","since":"5"}', {"invalid_field"}, "since"),
    ('{"type":"resume","since":1.5}', {"invalid_field"}, "since"),
    ('{"type":"resume","since":null}', {"invalid_field"}, "since"),
    ('{"type":"resume","since":true}', {"invalid_field"}, "since"),
    ('{"type":"resume","since":99999999999999999999999}', {"invalid_field"}, "since"),
]


def test_bad_messages_get_errors_and_socket_stays(alice):
    """Invalid JSON, non-objects, unknown types and bad since values each get an
    error message with the documented code (and field "since"), and the socket
    keeps working."""
    with attach(alice) as ws:
        for text, codes, field in BAD_MESSAGES:
            ws.send(text)
            error = lib_recv_json(ws, scaled(5))
            assert error.get("type") == "error" and error.get("code") in codes, (text, error)
            assert isinstance(error.get("detail"), str) and error["detail"], (text, error)
            if field is not None:
                assert error.get("field") == field, (text, error)
        ws.send(json.dumps({"type": "ping"}))
        assert lib_recv_json(ws, scaled(5)) == {"type": "pong"}
        last = last_sequence(alice)
        alice.api.create_task({"title": "after errors"})
        assert next_events(ws, 1)[0]["sequence"] == last + 1


# ---- Token expiry, limits, keepalive ------------------------------------------------

def test_token_expiry_closes_4001(own_server):
    """A socket opened with a token that expires in 2 s is closed with 4001 at
    the token's exp (not before), with a reason; a fresh token reconnects."""
    server = own_server("--auth-leeway-s", 0)
    user = signup(server, "expiring")
    exp = int(time.time()) + 2
    token = forge(server.secret(), claims_for(user.id, role=user.role, exp=exp))
    ws = wsraw.open_ws(server.process.port, token)
    with ws:
        assert ws.ping_pong() == []
        code, reason, _, _ = ws.expect_close(timeout=scaled(6))
        closed_at = time.time()
        assert code == 4001, (code, reason)
        assert reason
        assert exp - 0.5 <= closed_at <= exp + scaled(1.5), (exp, closed_at)
    with lib_connect(server.base_url, user.token) as fresh:
        fresh.send(json.dumps({"type": "ping"}))
        assert lib_recv_json(fresh, scaled(5)) == {"type": "pong"}


def closed_at_once(port, token):
    """Upgrades, then expects an immediate close; returns (code, reason)."""
    ws = wsraw.open_ws(port, token)
    with ws:
        code, reason, before, _ = ws.expect_close(timeout=scaled(2))
        assert not [f for f in before if f.opcode != OP_PING], before
        return code, reason


def test_connection_limits(own_server):
    """Past ws.max_connections_per_user the upgrade completes and the server
    closes at once with 1008; past ws.max_connections with 1013 (with reasons);
    other users and freed slots are unaffected."""
    server = own_server("--ws-max-connections-per-user", 2, "--ws-max-connections", 3)
    port = server.process.port
    carol, dave = signup(server, "carol"), signup(server, "dave")
    a1, a2 = wsraw.open_ws(port, carol.token), wsraw.open_ws(port, carol.token)
    b1 = None
    try:
        for ws in (a1, a2):
            assert ws.ping_pong() == []
        code, reason = closed_at_once(port, carol.token)
        assert code == 1008 and reason, (code, reason)
        b1 = wsraw.open_ws(port, dave.token)
        assert b1.ping_pong() == []
        code, reason = closed_at_once(port, dave.token)
        assert code == 1013 and reason, (code, reason)
        a1.send_close(1000)
        a1.wait_eof(timeout=scaled(3))

        def reconnects():
            ws = wsraw.open_ws(port, dave.token)
            try:
                return ws.ping_pong(timeout=scaled(2)) == []
            except wsraw.Closed:
                return False
            finally:
                ws.close()
        assert wait_for(reconnects, timeout=3, interval=0.1)
    finally:
        for ws in (a1, a2, b1):
            if ws is not None:
                ws.close()


def test_max_connections_counts_websockets(own_server):
    """--max-connections counts upgraded WebSockets: with 3 of them open a new
    TCP connection is answered 503, and closing one frees its slot."""
    server = own_server("--max-connections", 3)
    user = signup(server, "counted")
    port = server.process.port
    held = [wsraw.open_ws(port, user.token) for _ in range(3)]
    try:
        for ws in held:
            assert ws.ping_pong() == []
        with server.process.connect() as extra:
            assert_problem(extra.read_response(), 503)
        held[0].send_close(1000)
        held[0].wait_eof(timeout=scaled(3))

        def served():
            with server.process.connect() as conn:
                conn.send(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                return conn.read_response().status == 200
        assert wait_for(served, timeout=3, interval=0.05)
    finally:
        for ws in held:
            ws.close()


def test_dead_peer_dropped_and_keepalive(own_server):
    """With ws.ping_interval_ms 300 and ws.pong_timeout_ms 300: a raw client that
    never sends a byte gets a ping and is then dropped without a close frame;
    a websockets client (which answers pings) and a raw client that keeps
    sending messages stay open."""
    server = own_server("--ws-ping-interval-ms", 300, "--ws-pong-timeout-ms", 300)
    user = signup(server, "keepalive")
    port = server.process.port
    with wsraw.open_ws(port, user.token) as silent, lib_connect(server.base_url,
                                                                user.token) as library, \
            wsraw.open_ws(port, user.token) as chatty:
        started = time.monotonic()
        frames, dropped_after, sent = [], None, 0
        while time.monotonic() - started < 2.0:
            if dropped_after is None:
                try:
                    frames.append(silent.read_frame(timeout=0.1))
                except EOFError:
                    dropped_after = time.monotonic() - started
                except socket.timeout:
                    pass
            else:
                time.sleep(0.1)
            chatty.send_json({"type": "ping"})
            sent += 1
        assert dropped_after is not None, "the silent client was not dropped within 2 s"
        assert any(f.opcode == OP_PING for f in frames), frames
        assert not any(f.opcode == OP_CLOSE for f in frames), frames
        assert 0.4 <= dropped_after, dropped_after
        for _ in range(sent):  # every ping answered; server pings answered on the way
            assert chatty.recv_json(timeout=scaled(2)) == {"type": "pong"}
        library.send(json.dumps({"type": "ping"}))
        assert lib_recv_json(library, scaled(5)) == {"type": "pong"}
        user.api.create_task({"title": "kept alive"})
        message = lib_recv_json(library, scaled(5))
        assert message["type"] == "event", message
        assert chatty.recv_json(timeout=scaled(5))["type"] == "event"


# ---- Slow consumer ---------------------------------------------------------------------

SLOW_EVENTS = 5000
SLOW_WRITERS = 8
DESCRIPTION = ("slow consumer " * 1200)[:16000]  # ~16 KB per event: 5,000 of them ~80 MB
RSS_BOUND_KIB = 64 * 1024
# The server's caches (SQLite pages) grow by ~70 MiB over the first ~2,500
# large creates and then stay flat; the baseline is taken after this many so
# that the bound measures what the slow client costs, not the cache filling.
WARMUP_EVENTS = 2500


def flood(user, count, writers):
    """`count` creates (16 KB descriptions) from `writers` threads."""
    per = count // writers

    def write(index):
        api = Api(user.server.base_url, user.token)
        for number in range(per):
            api.create_task({"title": "flood %d-%d" % (index, number),
                             "description": DESCRIPTION})

    threads = [threading.Thread(target=write, args=(index,)) for index in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


class Reader(threading.Thread):
    """A normal client (websockets library) reading every event into a Stream
    as fast as it comes, sampling the server's RSS on the way."""

    def __init__(self, server, user, start):
        super().__init__(daemon=True)
        self.server = server
        self.token = user.token
        self.ws = attach(user)
        self.resumed = 0           # reconnects after a 4008 (only with a tiny stall timeout)
        self.stream = Stream(start)
        self.arrived = {}          # sequence -> monotonic time it arrived
        self.peak_kib = 0          # highest VmRSS seen
        self.failure = None
        self.stop = threading.Event()

    def run(self):
        try:
            while not self.stop.is_set():
                try:
                    message = lib_recv_json(self.ws, 0.2)
                except TimeoutError:
                    continue
                except ConnectionClosed as closed:
                    # Only a stall (4008) is a reason to resume; it is counted.
                    if closed.rcvd is None or closed.rcvd.code != 4008:
                        raise
                    self.resumed += 1
                    self.ws = lib_connect(self.server.base_url, self.token,
                                          since=self.stream.last)
                    continue
                assert message["type"] == "event", message
                self.stream.add(message["event"])
                self.arrived[message["event"]["sequence"]] = time.monotonic()
                if self.stream.last % 100 == 0:
                    self.peak_kib = max(self.peak_kib, self.server.process.rss_kib())
        except Exception as error:  # noqa: B902 - reported by the test
            self.failure = error

    def wait_for(self, last, timeout):
        deadline = time.monotonic() + scaled(timeout)
        while self.stream.last < last and time.monotonic() < deadline and self.is_alive():
            time.sleep(0.02)
        assert self.failure is None, self.failure
        assert self.stream.last >= last, "the normal client got %d of %d" % (self.stream.last,
                                                                           last)


def metric(server, name):
    text = requests.get(server.base_url + "/metrics", timeout=scaled(10)).text
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.split()[-1])
    return None


def read_raw_stream(ws, stream, until, timeout):
    """Reads events from a raw client into `stream` until `until` or a close;
    returns the close code (None if the stream reached `until`, "eof" if the
    connection ended without a close frame)."""
    deadline = time.monotonic() + timeout
    while stream.last < until:
        try:
            message = ws.recv_json(timeout=max(0.1, deadline - time.monotonic()))
        except wsraw.Closed as closed:  # "eof": TCP ended without a close frame
            return closed.code if closed.code is not None else "eof"
        assert message["type"] == "event", message
        stream.add(message["event"])
        assert time.monotonic() < deadline, "slow client stuck at %d of %d" % (stream.last,
                                                                             until)
    return None


@pytest.mark.parametrize("stall_ms,events,warmup", [
    (60000, SLOW_EVENTS, WARMUP_EVENTS),
    # A stalled socket is closed with 4008 behind its queue: the close wait
    # counts from the close, so a client that reads again gets it all.
    (1000, 2000, 0)])
def test_slow_consumer(own_server, stall_ms, events, warmup):
    """A client with a tiny receive buffer that does not read while ~5,000
    large events are written keeps the server's RSS within baseline + 64 MiB
    and a normal client meanwhile gets every event promptly. With the default
    stall timeout, when the slow client reads it gets the complete dense
    stream (catch-up); with a 1 s stall timeout it is closed with 4008 after a
    dense prefix (read as soon as the stall is counted) and resumes with
    ?since to the complete stream (no RSS bound there: no warm-up)."""
    server = own_server("--ws-stall-timeout-ms", stall_ms)
    user = signup(server, "slowpoke")
    reader = Reader(server, user, last_sequence(user))
    reader.start()
    flood(user, warmup, SLOW_WRITERS)
    start = last_sequence(user)
    reader.wait_for(start, 30)
    total = events // SLOW_WRITERS * SLOW_WRITERS
    slow = wsraw.open_ws(server.process.port, user.token, rcvbuf=4096)
    assert slow.ping_pong() == []
    baseline = server.process.rss_kib()
    reader.peak_kib = baseline
    writer = threading.Thread(target=flood, args=(user, total, SLOW_WRITERS))
    writer.start()
    slow_stream = Stream(start)
    code = None
    if stall_ms < 60000:
        try:
            stalled = wait_for(
                lambda: (metric(server, "docket_ws_stalls_closed_total") or 0) >= 1,
                timeout=30, interval=0.05)
            assert stalled, "no stall counted while the slow client did not read"
            code = read_raw_stream(slow, slow_stream, start + total, scaled(60))
            assert code == 4008, "the slow client, reading as soon as the stall was counted, " \
                "got %r after %d events (%d bytes of a partial frame left)" % (
                    code, slow_stream.last - start, len(slow.conn.buffer))
            assert slow_stream.last > start, "4008 before any event"
        finally:
            writer.join()  # the server must outlive the writers
    writer.join()
    written_at = time.monotonic()
    reader.wait_for(start + total, 30)
    lag = max(0.0, reader.arrived[start + total] - written_at)
    peak = max(reader.peak_kib, server.process.rss_kib())
    reader.stop.set()
    assert not reader.stream.errors, reader.stream.errors[:5]
    assert reader.resumed == 0 or stall_ms < 60000, reader.resumed
    print("slow consumer stall=%d: RSS baseline %d KiB, peak %d KiB (+%d); normal lag %.2fs"
          % (stall_ms, baseline, peak, peak - baseline, lag))
    assert lag <= scaled(2.0), "the normal client got the last event %.2fs late" % lag
    if warmup and not SANITIZED:  # ASan's quarantine and shadow memory make RSS meaningless
        assert peak - baseline <= RSS_BOUND_KIB, (baseline, peak)
    if code is None:
        code = read_raw_stream(slow, slow_stream, start + total, scaled(60))
        assert code is None, "closed with %r after %d events although the stall timeout " \
            "was not reached" % (code, slow_stream.last - start)
    else:
        slow.close()
        for _ in range(20):  # a client resumes after each 4008 (a busy machine may stall it)
            again = wsraw.open_ws(server.process.port, user.token,
                                  path=wsraw.WS_PATH + "?since=%d" % slow_stream.last)
            with again:
                code = read_raw_stream(again, slow_stream, start + total, scaled(60))
            if code is None:
                break
            assert code == 4008, code
        assert code is None, "the resumed client kept stalling"
    slow.close()
    assert not slow_stream.errors, slow_stream.errors[:5]
    assert slow_stream.sequences() == list(range(start + 1, start + total + 1))
    assert slow_stream.ordered() == reader.stream.ordered()[-total:]
    reader.ws.close()


# ---- Shutdown and TLS ---------------------------------------------------------------------

def test_sigterm_closes_sockets_with_1001(own_server):
    """On SIGTERM every WebSocket gets a 1001 close frame and the server exits 0."""
    server = own_server()
    user = signup(server, "shutdown")
    raw = [wsraw.open_ws(server.process.port, user.token) for _ in range(3)]
    library = attach(user)
    for ws in raw:
        assert ws.ping_pong() == []
    server.process.signal(signal.SIGTERM)
    for ws in raw:
        code, reason, _, _ = ws.expect_close(timeout=scaled(5))
        assert code == 1001, (code, reason)
        ws.wait_eof(timeout=scaled(5))
        ws.close()
    with pytest.raises(ConnectionClosed) as closed:
        library.recv(timeout=scaled(5))
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1001, closed.value
    assert server.process.wait(timeout=scaled(15)) == 0, server.process.stderr[-3000:]
    server.check_sanitizers()


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("the openssl CLI is required for the TLS tests (apt-get install openssl)")
    directory = tmp_path_factory.mktemp("wstls")
    cert, key = directory / "ec.crt", directory / "ec.key"
    subprocess.run([openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


def test_wss(own_server, certificate):
    """Over TLS: wss with the library gets live events; Origin https://<Host> is
    same-origin, http://<Host> is 403."""
    cert, key = certificate
    server = own_server("--tls-cert", cert, "--tls-key", key)
    assert server.base_url.startswith("https://")
    port = server.process.port
    base = "https://localhost:%d" % port
    response = requests.post(base + API + "/auth/signup",
                             json={"username": "secure", "password": "correct horse battery"},
                             verify=str(cert), timeout=scaled(30))
    assert response.status_code == 201, response.text
    token = response.json()["token"]
    context = ssl.create_default_context(cafile=str(cert))
    with lib_connect(base, token, ssl=context, origin="https://localhost:%d" % port) as ws:
        ws.send(json.dumps({"type": "ping"}))
        assert lib_recv_json(ws, scaled(5)) == {"type": "pong"}
        created = requests.post(base + API + "/tasks", json={"title": "over tls"},
                                headers={"Authorization": "Bearer " + token},
                                verify=str(cert), timeout=scaled(30))
        assert created.status_code == 201, created.text
        message = lib_recv_json(ws, scaled(5))
        assert message["type"] == "event" and message["event"]["subject"] == \
            created.json()["id"], message
    with pytest.raises(InvalidStatus) as refused:
        lib_connect(base, token, ssl=context, origin="http://localhost:%d" % port)
    assert refused.value.response.status_code == 403
    tls_sock = context.wrap_socket(socket.create_connection(("127.0.0.1", port)),
                                   server_hostname="localhost")
    with wsraw.connect(port, headers=dict(wsraw.bearer(token),
                                          Origin="https://localhost:%d" % port),
                       host="localhost:%d" % port, sock=tls_sock) as raw:
        assert raw.response.status == 101, raw.response
        assert raw.ping_pong() == []

