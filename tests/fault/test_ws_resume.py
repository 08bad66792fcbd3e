"""Black-box fault test of WebSocket resume (issue 5; PRODUCT.md S1, E3):
writer threads create and patch tasks for three users for a bounded time
while several devices per user disconnect at random points (clean close,
abrupt close, TCP reset) and reconnect with ?since=<last seen sequence> or
with a resume message. Every device's stream is checked as it arrives (no
gap, no duplicate beyond a requested replay, no reorder, replays identical)
and at the end must be exactly 1..last, equal to GET /api/v1/events of its
user. A second round kill -9s the server mid-load and restarts it on the
same data directory: devices resume from their last seen sequence, every
acknowledged write appears exactly once and no unacknowledged one twice.
Loopback only; bounded (about 20 s of load plus a ~6 s kill round)."""
import random
import socket
import struct
import sys
import threading
import time
import uuid
from collections import defaultdict
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "integration"))

from api import API, ApiServer, check_dense, check_envelope, events_since, signup  # noqa: E402
from conftest import scaled  # noqa: E402
from httpio import ResponseError  # noqa: E402
import wsraw  # noqa: E402
from wsraw import Closed, Stream  # noqa: E402

USERS = 3
DEVICES_PER_USER = 3
WRITERS_PER_USER = 2
LOAD_S = 20.0
KILL_ROUND_S = 6.0
SEED = int(time.time())


class Writer(threading.Thread):
    """Creates and patches its own tasks with unique Idempotency-Keys until
    told to stop; remembers which writes were acknowledged."""

    def __init__(self, server, user, index, seed, stop):
        super().__init__(daemon=True)
        self.server = server        # ApiServer (its address changes on restart)
        self.user = user            # the User it writes for
        self.name_prefix = "%s-w%d" % (user.username, index)
        self.rng = random.Random(seed)
        self.stop = stop            # threading.Event: stop writing
        self.acked = []             # Idempotency-Keys of acknowledged writes
        self.unacked = []           # keys whose answer never came (server killed)
        self.failures = []          # unexpected HTTP statuses
        self.tasks = []             # ids of acknowledged creates
        self.session = requests.Session()

    def write_once(self, counter):
        key = "%s-%d-%s" % (self.name_prefix, counter, uuid.uuid4().hex[:8])
        headers = {"Authorization": "Bearer " + self.user.token, "Idempotency-Key": key}
        base = self.server.base_url
        if not self.tasks or self.rng.random() < 0.4:
            method, path = "POST", API + "/tasks"
            body = {"title": "%s-t%d" % (self.name_prefix, counter),
                    "priority": self.rng.choice(["low", "medium", "high", "urgent"])}
        else:
            method, path = "PATCH", API + "/tasks/" + self.rng.choice(self.tasks)
            body = {"title": "%s-p%d" % (self.name_prefix, counter)}
        try:
            response = self.session.request(method, base + path, json=body, headers=headers,
                                            timeout=scaled(10))
        except requests.RequestException:
            self.unacked.append(key)
            self.session = requests.Session()
            time.sleep(0.05)
            return
        if response.status_code in (200, 201):
            self.acked.append(key)
            if method == "POST":
                self.tasks.append(response.json()["id"])
        elif response.status_code == 503:
            self.unacked.append(key)  # shutting down or starting: not acknowledged
        else:
            self.failures.append("%s %s -> %d %s" % (method, path, response.status_code,
                                                     response.text[:300]))

    def run(self):
        counter = 0
        while not self.stop.is_set():
            counter += 1
            self.write_once(counter)


class Device(threading.Thread):
    """One client device of a user: reads its stream, disconnects at random
    points in random ways, reconnects with ?since or a resume message, and
    once `finish` is set reads until it has `target` and closes cleanly."""

    def __init__(self, server, user, index, seed):
        super().__init__(daemon=True)
        self.server = server
        self.user = user
        self.label = "%s-d%d" % (user.username, index)
        self.rng = random.Random(seed)
        self.stream = Stream(0)           # everything since the user's first event
        self.finish = threading.Event()   # set with target: read up to it and stop
        self.target = None                # the user's last sequence at the end
        self.connects = defaultdict(int)  # how often each connect/disconnect way ran
        self.problems = []                # unexpected messages or connect failures

    def done(self):
        return self.finish.is_set() and self.target is not None and \
            self.stream.last >= self.target

    def connect(self):
        """A new connection resuming from stream.last; None while the server is down."""
        way = self.rng.choice(["since", "since", "resume"])
        auth = self.rng.choice(["header", "subprotocol", "query"])
        path, headers = wsraw.WS_PATH, {}
        query = []
        if auth == "header":
            headers["Authorization"] = "Bearer " + self.user.token
        elif auth == "subprotocol":
            headers["Sec-WebSocket-Protocol"] = "bearer, bearer." + self.user.token
        else:
            query.append("token=" + self.user.token)
        if way == "since":
            query.append("since=%d" % self.stream.last)
        if query:
            path += "?" + "&".join(query)
        try:
            ws = wsraw.connect(self.server.process.port, path, headers, timeout=scaled(5))
        except (OSError, EOFError, ResponseError):
            return None
        if ws.response.status != 101:
            if ws.response.status != 503:
                self.problems.append("handshake answered %r" % ws.response)
            ws.close()
            return None
        self.connects[way] += 1
        if way == "since":
            self.stream.connected_since()
        else:
            self.stream.connected_live()
            self.stream.resume_sent(self.stream.last)
            try:
                ws.send_json({"type": "resume", "since": self.stream.last})
            except OSError:
                ws.close()
                return None
        return ws

    def handle(self, message):
        kind = message.get("type")
        if kind == "event":
            check_envelope(message["event"], self.user.id)
            self.stream.add(message["event"])
        elif kind != "pong":
            self.problems.append("unexpected message %r" % message)

    def read_session(self, ws, until):
        """Reads until `until` (monotonic) or the target; False if the
        connection was lost."""
        while time.monotonic() < until and not self.done():
            try:
                self.handle(ws.recv_json(timeout=0.2))
            except socket.timeout:
                continue
            except (Closed, OSError):
                return False
        return True

    def disconnect(self, ws):
        way = "clean" if self.done() else self.rng.choice(["clean", "abrupt", "reset"])
        self.connects["close-" + way] += 1
        try:
            if way == "clean":
                ws.send_close(1000)
                while True:  # events still in flight before the close echo count too
                    self.handle(ws.recv_json(timeout=scaled(3)))
            elif way == "reset":
                ws.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except Closed as closed:
            if closed.code not in (1000, None):
                self.problems.append("clean close answered %r" % closed.code)
        except (OSError, socket.timeout):
            pass
        ws.close()

    def run(self):
        while not self.done():
            ws = self.connect()
            if ws is None:
                time.sleep(0.05)
                continue
            length = 30.0 if self.finish.is_set() else self.rng.uniform(0.05, 1.5)
            alive = self.read_session(ws, time.monotonic() + length)
            if alive:
                self.disconnect(ws)
            else:
                ws.close()
            time.sleep(self.rng.uniform(0, 0.15))


def snapshot(stream):
    """The events a device's stream holds now (read from another thread)."""
    while True:
        try:
            events = stream.events.copy()
        except RuntimeError:  # resized while copied
            continue
        return [events[sequence] for sequence in sorted(events)]


def start_load(server, users, seed, stop):
    rng = random.Random(seed)
    writers = [Writer(server, user, index, rng.random(), stop)
               for user in users for index in range(WRITERS_PER_USER)]
    devices = [Device(server, user, index, rng.random())
               for user in users for index in range(DEVICES_PER_USER)]
    for thread in devices + writers:
        thread.start()
    return writers, devices


def finish(server, users, writers, devices):
    """Stops the writers, lets every device catch up, and checks everything."""
    for writer in writers:
        writer.join(timeout=scaled(15))
        assert not writer.is_alive(), "writer stuck"
        assert not writer.failures, writer.failures[:5]
    expected = {}
    for user in users:
        expected[user.id] = events_since(user.api)
        check_dense(expected[user.id])
    for device in devices:
        device.target = expected[device.user.id][-1]["sequence"]
        device.finish.set()
    deadline = time.monotonic() + scaled(30)
    for device in devices:
        device.join(timeout=max(0.1, deadline - time.monotonic()))
    report = []
    for device in devices:
        stream = device.stream
        report.append("%s: %d events, replays %d, %s" % (device.label, stream.last,
                                                          stream.replays, dict(device.connects)))
        assert not device.is_alive(), "%s stuck at %d of %d" % (device.label, stream.last,
                                                                 device.target)
        assert not stream.errors, (device.label, stream.errors[:5])
        assert not device.problems, (device.label, device.problems[:5])
        events = expected[device.user.id]
        assert stream.sequences() == list(range(1, len(events) + 1)), device.label
        assert stream.ordered() == events, device.label
    print("\n".join(report))
    return expected


def check_writes_once(writers, expected):
    """Every acknowledged write's key has exactly one group of events (one
    correlation id); an unacknowledged one at most one."""
    groups = defaultdict(set)
    for events in expected.values():
        for event in events:
            if "idempotencykey" in event:
                groups[event["idempotencykey"]].add(event["correlationid"])
    for writer in writers:
        for key in writer.acked:
            assert len(groups.get(key, ())) == 1, (key, groups.get(key))
        for key in writer.unacked:
            assert len(groups.get(key, ())) <= 1, (key, groups.get(key))
    return sum(len(w.acked) for w in writers), sum(len(w.unacked) for w in writers)


def test_devices_resume_under_load(tmp_path):
    """Devices that drop and resume at random points while three users write
    for ~20 s each end with exactly their user's stream 1..last, equal to GET
    /events, with every write applied once."""
    server = ApiServer(tmp_path).start()
    try:
        users = [signup(server, "resume%d" % index) for index in range(USERS)]
        stop = threading.Event()
        writers, devices = start_load(server, users, SEED, stop)
        time.sleep(LOAD_S)
        stop.set()
        expected = finish(server, users, writers, devices)
        acked, unacked = check_writes_once(writers, expected)
        assert unacked == 0, "writes failed without a kill"
        print("seed %d: %d writes, %d events" % (SEED, acked,
                                                 sum(len(e) for e in expected.values())))
        for device in devices:
            assert sum(device.connects[w] for w in ("since", "resume")) >= 3, device.connects
    finally:
        server.close()


def test_resume_across_kill9(tmp_path):
    """kill -9 mid-load and a restart on the same data directory: devices resume
    from their last seen sequence to the complete stream, every acknowledged
    write appears exactly once, and no event a device saw is lost."""
    server = ApiServer(tmp_path).start()
    try:
        users = [signup(server, "killed%d" % index) for index in range(USERS)]
        stop = threading.Event()
        writers, devices = start_load(server, users, SEED + 1, stop)
        time.sleep(KILL_ROUND_S / 2)
        seen_before = {device.label: snapshot(device.stream) for device in devices}
        server.kill()
        time.sleep(0.2)
        server.start()
        time.sleep(KILL_ROUND_S / 2)
        stop.set()
        expected = finish(server, users, writers, devices)
        for device in devices:
            before = seen_before[device.label]
            assert expected[device.user.id][:len(before)] == before, device.label
        acked, unacked = check_writes_once(writers, expected)
        print("kill round seed %d: %d acknowledged writes, %d unanswered" % (SEED + 1, acked,
                                                                              unacked))
    finally:
        server.close()
