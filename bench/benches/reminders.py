"""reminders: reminder lateness with 1,000,000 pending timers under writes, schedule/cancel cost,
completion-to-next-occurrence latency, and libuv's uv_timer as the floor (issue 6, perf.md B8/B9).

One Docket server (fresh data dir, pinned to --server-cpu); every client (loaders, the writer, the
WebSocket reader) runs on --client-cpu.

Part 1, lateness: --tasks tasks of --per-task "at" reminders each are created through the HTTP API
(--loaders processes x --loader-conns keep-alive connections; load time reported) - all of them far
in the future (1 day .. 1 year) except --due reminders, created last, due uniformly inside a
--window-s window starting --lead-s later (owned by the measured user, "owner"). The server then
holds tasks x per-task pending timers (docket_reminder_timers in /metrics; RSS before and after
gives bytes per pending timer). While a background writer (its own process, another user) creates
--writes-per-s tasks per second, one WebSocket client of the owner stamps each reminder.triggered
on arrival. Figures: server-side lateness (data.late_ms of each reminder.triggered, read back
through GET /api/v1/events), client-side lateness (WebSocket arrival minus data.reminder.at: it
also holds the durable append and the delivery), missed (due, not triggered) and duplicated (one
key triggered twice) - both must be 0 - and reminder.missed events.
Part 2, cost: in-process, bench/reminders_floor/sched_cost.c drives src/reminders/scheduler.c
(compiled from the tree) with 1M timers: ns per put / move / remove / fire. End to end on the
server holding 1M timers, one keep-alive connection, interleaved: POST a task with 0 vs 20
reminders, PATCH the due of a task with 20 "before" reminders (20 timers moved) vs PATCH its
title (none), DELETE a task with 20 vs 0 reminders (20 cancelled).
Part 3, completion -> next occurrence: --completions recurring tasks (FREQ=DAILY from due) of the
owner are completed one after another; latency = arrival of the recurrence.spawned on the
owner's WebSocket minus the moment the complete request was sent, and minus the moment its 200
arrived.
Part 4, restart with 1M pending (informational): SIGTERM, time to exit, start, time to /readyz.
Part 5, floor: bench/reminders_floor/uv_floor.c (libuv's uv_timer heap, the vendored libuv,
built with `zig cc`) holding the same number of timers, --due of them firing in the same window;
lateness p50/p99/max and bytes per timer. Idle loop: nothing else runs.
Ratios (> 1.0 = Docket better): floor p99 / Docket p99 (server-side lateness), and Vikunja's
minute cron (reminders sent at the minute's tick, up to 60 s off; perf.md R32) 60,000 ms /
Docket p99. Vikunja itself is not run.
"""

import datetime
import hashlib
import json
import multiprocessing
import os
import random
import re
import shutil
import socket
import struct
import subprocess
import threading
import time
import http.client

from bench.lib import env, httpjson, procs, report
from bench.lib.report import fmt

NAME = "reminders"
SUMMARY = ("reminder lateness p50/p99/max with 1M pending under 1,000 writes/s, schedule/cancel cost, "
           "completion -> next occurrence: Docket vs libuv uv_timer floor")

HOST = "127.0.0.1"
FLOOR_SRC = os.path.join(env.BENCH_DIR, "reminders_floor")
FLOOR_CACHE = os.path.join(env.WORK_DIR, "reminders-floor")
QUICK_OUT = os.path.join(env.WORK_DIR, "reminders-quick")
PASSWORD = "bench-password-1234"
TARGET_LATE_P99_MS = 10.0
TARGET_SPAWN_MS = 10.0
VIKUNJA_GRANULARITY_MS = 60000.0
DAY_MS = 86400 * 1000
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)  # Linux; SCM_TIMESTAMPNS has the same value


def add_arguments(p):
    p.add_argument("--tasks", type=int, default=50000, help="tasks loaded (default 50000)")
    p.add_argument("--per-task", type=int, default=20, help="'at' reminders per task (default 20, the maximum)")
    p.add_argument("--due", type=int, default=3000, help="reminders due inside the window (default 3000)")
    p.add_argument("--lead-s", type=float, default=8, help="seconds from the window tasks' creation to "
                                                          "the window's start (default 8)")
    p.add_argument("--window-s", type=float, default=25, help="window the due reminders spread over (default 25)")
    p.add_argument("--drain-s", type=float, default=5, help="seconds waited after the window (default 5)")
    p.add_argument("--writes-per-s", type=float, default=1000, help="background task creates/s (default 1000)")
    p.add_argument("--loaders", type=int, default=3, help="loader processes (default 3)")
    p.add_argument("--loader-conns", type=int, default=8, help="keep-alive connections per loader (default 8)")
    p.add_argument("--cost-samples", type=int, default=200, help="requests per end-to-end cost case (default 200)")
    p.add_argument("--completions", type=int, default=500, help="sequential completions (default 500)")
    p.add_argument("--skip-restart", action="store_true", help="leave out the restart with 1M pending")
    p.add_argument("--write-out", action="store_true", help="with --quick: still write bench/out/reminders.json")
    p.add_argument("--build", action="store_true", help="run .ci/do build first (default: only if missing)")
    p.add_argument("--build-ref", metavar="REF", default=None, help="measure a clean build of git REF")
    p.add_argument("--docket-bin", metavar="PATH", default=None, help="measure this docket binary")
    p.add_argument("--server-cpu", type=int, default=0, help="CPU the server is pinned to (default 0)")
    p.add_argument("--client-cpu", type=int, default=1, help="CPU every client is pinned to (default 1)")
    p.add_argument("--nice", type=int, default=-19, help="nice for the server and clients (default -19; root)")
    p.add_argument("--wait-quiet", type=float, default=60,
                   help="wait up to this many seconds in total for the CPUs to be idle (default 60)")


def _settings(a):
    if a.quick:
        a.tasks, a.due, a.lead_s, a.window_s, a.drain_s = 2000, 400, 4, 6, 3
        a.writes_per_s, a.cost_samples, a.completions = 200, 30, 50
        a.wait_quiet = min(a.wait_quiet, 10)
        if not a.out_dir and not a.write_out:
            a.out_dir = QUICK_OUT  # a smoke run never replaces the committed figures unless asked
    if a.per_task < 1 or a.per_task > 20 or a.tasks < 10 or a.due < a.per_task:
        raise SystemExit("bench reminders: need --per-task 1..20, --tasks >= 10, --due >= --per-task")
    a.window_tasks = -(-a.due // a.per_task)
    if a.window_tasks >= a.tasks:
        raise SystemExit("bench reminders: --due needs fewer tasks than --tasks")
    a.total_timers = a.tasks * a.per_task


# ---- small helpers -----------------------------------------------------------------------------

def iso(ms):
    """Unix ms -> RFC 3339 UTC with milliseconds."""
    dt = datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{int(ms) % 1000:03d}Z"


def parse_iso_ms(text):
    """RFC 3339 (with or without fractional seconds; Docket leaves them out at .000) -> Unix ms."""
    return round(datetime.datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def pct(values, q):
    """Nearest-rank percentile of a list (None when empty)."""
    if not values:
        return None
    s = sorted(values)
    return s[min(len(s) - 1, max(0, int(round(q * (len(s) - 1)))))]


def dist(values, digits=3):
    if not values:
        return {"count": 0}
    return {"count": len(values), "min": round(min(values), digits), "p50": round(pct(values, 0.5), digits),
            "p90": round(pct(values, 0.9), digits), "p99": round(pct(values, 0.99), digits),
            "max": round(max(values), digits), "mean": round(sum(values) / len(values), digits)}


def _pin(cpu, nice):
    try:
        os.sched_setaffinity(0, {cpu})
    except OSError:
        pass
    if nice:
        try:
            os.nice(nice)
        except OSError:
            pass


def _metrics(port):
    c = httpjson.Client(HOST, port, timeout=30)
    try:
        status, _, body, _ = c.request("GET", "/metrics")
    finally:
        c.close()
    text = body.decode() if isinstance(body, bytes) else str(body)
    out = {}
    for m in re.finditer(r"^(docket_reminder_[a-z_]+(?:\{[^}]*\})?)\s+(\S+)$", text, re.M):
        out[m.group(1)] = float(m.group(2))
    return out


# ---- builds ------------------------------------------------------------------------------------

def _zig():
    z = os.path.join(env.ROOT, ".tools", "bin", "zig")
    return z if os.access(z, os.X_OK) else (shutil.which("zig") or "zig")


def _libuv_sources():
    """The libuv source list and flags exactly as build.zig compiles them."""
    with open(os.path.join(env.ROOT, "build.zig")) as f:
        text = f.read()

    def array(name):
        m = re.search(r"const " + name + r" = \[_\]\[\]const u8\{(.*?)\};", text, re.S)
        if not m:
            raise SystemExit(f"bench reminders: build.zig has no {name}")
        return re.findall(r'"([^"]+)"', m.group(1))
    return array("libuv_sources"), array("libuv_flags")


def _build_c(ctx, name, argv_tail, inputs):
    """zig cc, cached in bench/work/reminders-floor/ by a hash of the inputs and the command."""
    zig = _zig()
    h = hashlib.sha256(" ".join(argv_tail).encode())
    for path in inputs:
        with open(path, "rb") as f:
            h.update(f.read())
    os.makedirs(FLOOR_CACHE, exist_ok=True)
    binary = os.path.join(FLOOR_CACHE, f"{name}-{h.hexdigest()[:16]}")
    argv = [zig, "cc"] + argv_tail + ["-o", binary]
    if not os.access(binary, os.X_OK):
        env.log(f"==> building {name} with zig cc")
        r = subprocess.run(argv, capture_output=True, text=True, timeout=900, cwd=env.ROOT)
        if r.returncode != 0:
            raise RuntimeError(f"zig cc of {name} failed:\n{r.stdout}\n{r.stderr}")
    ctx.command(" ".join(argv), f"build {name} (cached by input hash)")
    dst = os.path.join(ctx.work_dir, name)
    shutil.copy2(binary, dst)
    return dst


def _build_helpers(ctx):
    uv_dir = os.path.join(env.ROOT, "vendor", "src", "libuv")
    if not os.path.isdir(uv_dir):
        subprocess.run([os.path.join(env.ROOT, ".ci", "do"), "build"], check=True, cwd=env.ROOT)
    sources, flags = _libuv_sources()
    uv_files = [os.path.join(uv_dir, s) for s in sources]
    floor_c = os.path.join(FLOOR_SRC, "uv_floor.c")
    floor = _build_c(ctx, "uv_floor", ["-O2"] + flags + [f"-I{uv_dir}/include", f"-I{uv_dir}/src", floor_c]
                     + uv_files + ["-lpthread"], [floor_c] + uv_files)
    src = os.path.join(env.ROOT, "src")
    sched_files = [os.path.join(FLOOR_SRC, "sched_cost.c")] + [os.path.join(src, p) for p in (
        "reminders/scheduler.c", "timer/wheel.c", "base/check.c", "base/err.c", "base/mem.c", "base/uuid.c",
        "base/random.c")]
    headers = [os.path.join(src, p) for p in ("reminders/scheduler.h", "timer/wheel.h", "base/mem.h",
                                              "base/check.h", "base/uuid.h", "base/err.h")]
    cost = _build_c(ctx, "sched_cost", ["-O2", "-std=c17", "-D_GNU_SOURCE", "-Wall", "-Wextra", "-Werror"]
                    + sched_files, sched_files + headers)
    return floor, cost


# ---- the server --------------------------------------------------------------------------------

class Server:
    def __init__(self, ctx, data_dir, tag):
        a = ctx.args
        self.port = procs.free_port(HOST)
        self.data_dir = data_dir
        argv = [ctx.docket["path"], "--listen", f"{HOST}:{self.port}", "--data-dir", data_dir,
                "--max-connections", "2000", "--ws-ping-interval-ms", "3600000",
                "--http-idle-timeout-ms", "600000"]
        self.proc = procs.Proc("docket", argv, cpu=a.server_cpu, nice=a.nice,
                               log_path=os.path.join(ctx.work_dir, f"docket-{tag}.log"))
        ctx.command(self.proc.command, f"docket server ({tag})")
        self.started = time.monotonic()
        self.listen_s = self.proc.wait_port(HOST, self.port, timeout=600)

    def ready_s(self, timeout=600):
        """Seconds from start until GET /readyz answers 200."""
        deadline = self.started + timeout
        while time.monotonic() < deadline:
            try:
                c = httpjson.Client(HOST, self.port, timeout=5)
                status, _, _, _ = c.request("GET", "/readyz")
                c.close()
                if status == 200:
                    return time.monotonic() - self.started
            except OSError:
                pass
            if not self.proc.alive():
                raise RuntimeError(f"docket exited: {self.proc.log_text()[-2000:]}")
            time.sleep(0.02)
        raise RuntimeError("docket not ready within the timeout")

    def stop(self):
        t0 = time.monotonic()
        rc = self.proc.stop(timeout=120)
        return rc, time.monotonic() - t0

    def log_problems(self):
        return [l for l in self.proc.log_text().splitlines() if re.search(r"level=(warn|error)", l)][:20]


def _signup(port, name):
    c = httpjson.Client(HOST, port)
    doc = c.json("POST", "/api/v1/auth/signup", {"username": name, "password": PASSWORD}, expect=(201,))
    c.close()
    return {"name": name, "id": doc["user"]["id"], "token": doc["token"]}


# ---- part 1a: loading (processes) ---------------------------------------------------------------

def _far_body(i, rng, now_ms, per_task):
    ats = sorted(now_ms + DAY_MS + rng.randrange(364 * DAY_MS) for _ in range(per_task))
    return json.dumps({"title": f"far {i}", "reminders": [{"at": iso(t)} for t in ats]},
                      separators=(",", ":"))


def _loader(index, port, token, first, count, per_task, conns, now_ms, cpu, nice, out_q):
    """One loader process: `conns` threads, each a keep-alive connection, POSTing its share."""
    _pin(cpu, nice)
    rng = random.Random(1000 + index)
    bodies = [_far_body(first + i, rng, now_ms, per_task) for i in range(count)]
    lock = threading.Lock()
    state = {"next": 0, "ok": 0, "errors": 0, "first_error": None}
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    def worker():
        conn = http.client.HTTPConnection(HOST, port, timeout=120)
        while True:
            with lock:
                i = state["next"]
                state["next"] += 1
            if i >= count:
                break
            for attempt in (1, 2, 3):
                try:
                    conn.request("POST", "/api/v1/tasks", body=bodies[i], headers=headers)
                    r = conn.getresponse()
                    body = r.read()
                    ok = r.status == 201
                    break
                except (OSError, http.client.HTTPException) as e:
                    conn.close()
                    conn = http.client.HTTPConnection(HOST, port, timeout=120)
                    ok, body = False, str(e).encode()
            with lock:
                if ok:
                    state["ok"] += 1
                else:
                    state["errors"] += 1
                    state["first_error"] = state["first_error"] or body[:300].decode(errors="replace")
        conn.close()

    threads = [threading.Thread(target=worker) for _ in range(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    out_q.put({"index": index, "ok": state["ok"], "errors": state["errors"], "first_error": state["first_error"]})


def _load(ctx, srv, bulk, far_tasks):
    a = ctx.args
    mp = multiprocessing.get_context("fork")
    q = mp.Queue()
    now_ms = int(time.time() * 1000)
    share = [far_tasks // a.loaders + (1 if i < far_tasks % a.loaders else 0) for i in range(a.loaders)]
    ps, first = [], 0
    t0 = time.monotonic()
    for i in range(a.loaders):
        p = mp.Process(target=_loader, args=(i, srv.port, bulk["token"], first, share[i], a.per_task,
                                             a.loader_conns, now_ms, a.client_cpu, a.nice, q))
        first += share[i]
        p.start()
        ps.append(p)
    results = [q.get(timeout=3600) for _ in ps]
    for p in ps:
        p.join()
    secs = time.monotonic() - t0
    ok = sum(r["ok"] for r in results)
    errors = sum(r["errors"] for r in results)
    return {"tasks": far_tasks, "created": ok, "errors": errors, "seconds": round(secs, 2),
            "tasks_per_s": round(ok / secs, 1), "reminders_per_s": round(ok * a.per_task / secs, 1),
            "first_error": next((r["first_error"] for r in results if r["first_error"]), None)}


def _wait_timers(port, expected, timeout):
    """Polls docket_reminder_timers until it reaches `expected` (the projection applies the log
    asynchronously); returns (count, seconds waited)."""
    t0 = time.monotonic()
    last, last_change = -1, t0
    while True:
        n = int(_metrics(port).get("docket_reminder_timers", -1))
        if n != last:
            last, last_change = n, time.monotonic()
        if n >= expected or time.monotonic() - t0 > timeout or time.monotonic() - last_change > 60:
            return n, round(time.monotonic() - t0, 2)
        time.sleep(0.2)


# ---- WebSocket reader (a thread; stamps each message on arrival) --------------------------------

class WsReader:
    """A minimal RFC 6455 client: handshake with ?token=, then reads text frames in a thread and
    keeps (wall time of arrival, text) for each; answers pings. `wanted` filters kept messages."""

    def __init__(self, port, token, wanted=("reminder.triggered", "recurrence.spawned")):
        self.sock = socket.create_connection((HOST, port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        key = "dGhlIHNhbXBsZSBub25jZQ=="
        req = (f"GET /api/v1/ws?token={token} HTTP/1.1\r\nHost: {HOST}:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
        self.sock.sendall(req.encode())
        buf = b""
        while b"\r\n\r\n" not in buf:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise RuntimeError("WebSocket handshake: connection closed")
            buf += chunk
        head, self.buf = buf.split(b"\r\n\r\n", 1)
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise RuntimeError(f"WebSocket handshake refused: {head[:300]!r}")
        self.wanted = tuple(w.encode() for w in wanted)
        self.messages = []        # (arrival wall s, text)
        self.cond = threading.Condition()
        self.closed = None
        self.frames = 0
        self.sock.settimeout(0.5)
        self.stop_flag = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _frames(self, now, read_at):
        while True:
            b = self.buf
            if len(b) < 2:
                return
            op, ln, pos = b[0] & 0x0F, b[1] & 0x7F, 2
            if ln == 126:
                if len(b) < 4:
                    return
                ln, pos = struct.unpack("!H", b[2:4])[0], 4
            elif ln == 127:
                if len(b) < 10:
                    return
                ln, pos = struct.unpack("!Q", b[2:10])[0], 10
            if len(b) < pos + ln:
                return
            payload, self.buf = b[pos:pos + ln], b[pos + ln:]
            self.frames += 1
            if op == 0x9:  # ping -> pong (masked with a zero key)
                self.sock.sendall(bytes([0x8A, 0x80 | len(payload)]) + b"\0\0\0\0" + payload)
            elif op == 0x8:
                self.closed = payload[:2]
                return
            elif op == 0x1 and any(w in payload for w in self.wanted):
                with self.cond:
                    self.messages.append((now, payload, read_at))
                    self.cond.notify_all()

    def _run(self):
        # Arrival = the kernel's receive timestamp of the data (SO_TIMESTAMPNS: for TCP, that of
        # the last segment the read took), so the reader's own scheduling delay on a busy
        # machine is not counted; the user-space read time is kept beside it.
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        while not self.stop_flag and self.closed is None:
            try:
                chunk, anc, _, _ = self.sock.recvmsg(1 << 20, socket.CMSG_SPACE(16))
            except socket.timeout:
                continue
            except OSError:
                break
            now = time.time()
            kernel = now
            for level, kind, data in anc:
                if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS and len(data) >= 16:
                    sec, nsec = struct.unpack("qq", data[:16])
                    kernel = sec + nsec / 1e9
            if not chunk:
                self.closed = b"eof"
                break
            self.buf += chunk
            self._frames(kernel, now)

    def stop(self):
        self.stop_flag = True
        self.thread.join(timeout=5)
        try:
            self.sock.close()
        except OSError:
            pass
        return self.messages


# ---- part 1b: the background writer (a process) --------------------------------------------------

def _writer(port, token, rate, go, stop_at, cpu, nice, out_q):
    """Open-loop task creates at `rate`/s until wall time `stop_at`: one keep-alive connection
    per thread, enough threads (one per 25 writes/s) that a slow answer does not hold the rate."""
    _pin(cpu, nice)
    threads_n = max(4, int(rate // 25))
    go.wait(timeout=600)
    lat, errors = [], [0]
    lock = threading.Lock()
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    t_start = time.monotonic()
    stop_mono = t_start + (stop_at - time.time())
    behind = [0]

    def worker(k):
        conn = http.client.HTTPConnection(HOST, port, timeout=60)
        n = 0
        interval = threads_n / rate
        while True:
            due = t_start + (n * threads_n + k) / rate
            if due >= stop_mono:
                break
            d = due - time.monotonic()
            if d > 0:
                time.sleep(d)
            elif d < -interval:
                with lock:
                    behind[0] += 1
            t0 = time.monotonic()
            try:
                conn.request("POST", "/api/v1/tasks", body=json.dumps({"title": f"write {k}-{n}"}), headers=headers)
                r = conn.getresponse()
                r.read()
                ok = r.status == 201
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=60)
                ok = False
            with lock:
                if ok:
                    lat.append((time.monotonic() - t0) * 1000)
                else:
                    errors[0] += 1
            n += 1
        conn.close()

    ts = [threading.Thread(target=worker, args=(k,)) for k in range(threads_n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    secs = time.monotonic() - t_start
    out_q.put({"writes": len(lat), "errors": errors[0], "seconds": round(secs, 2),
               "writes_per_s": round(len(lat) / secs, 1) if secs else None, "late_sends": behind[0],
               "latency_ms": dist(lat)})


# ---- part 1c: the measured window ----------------------------------------------------------------

def _events(port, token, types, since=0):
    """Every event of the user of `token` with one of `types`, paging GET /api/v1/events."""
    c = httpjson.Client(HOST, port, token=token)
    out = []
    try:
        while True:
            doc = c.json("GET", f"/api/v1/events?since={since}&limit=500")
            items = doc.get("items") or []
            if not items:
                break
            for e in items:
                if e.get("type") in types:
                    out.append(e)
            since = items[-1]["sequence"]
    finally:
        c.close()
    return out


def _window(ctx, srv, owner, writer_user):
    a = ctx.args
    c = httpjson.Client(HOST, srv.port, token=owner["token"])
    # The writer process is forked first (before any thread) and waits; then the owner's
    # WebSocket and the window's tasks (so their creation does not queue behind the writes);
    # then the writer starts, well before the window.
    ws = None
    mp = multiprocessing.get_context("fork")
    q = mp.Queue()
    go = mp.Event()
    base_ms = int(time.time() * 1000) + int(a.lead_s * 1000)
    window_ms = int(a.window_s * 1000)
    end_ms = base_ms + window_ms
    writer_stop = end_ms / 1000 + a.drain_s
    wp = mp.Process(target=_writer, args=(srv.port, writer_user["token"], a.writes_per_s, go, writer_stop,
                                          a.client_cpu, a.nice, q))
    wp.start()
    try:
        ws = WsReader(srv.port, owner["token"])
        rng = random.Random(7)
        ats = sorted(base_ms + rng.randrange(window_ms) for _ in range(a.due))
        n_tasks = a.window_tasks
        expected, created_late = {}, {}
        t0 = time.monotonic()
        for j in range(n_tasks):
            mine = ats[j::n_tasks][:a.per_task]
            doc = c.json("POST", "/api/v1/tasks", {"title": f"window {j}", "reminders": [{"at": iso(t)} for t in mine]},
                         expect=(201,))
            answered_ms = time.time() * 1000
            for t in mine:
                # An instant already past when the create was answered is not pending (Docket
                # does not fire a reminder created after its instant): counted apart.
                (expected if t > answered_ms else created_late)[f"{doc['id']}@{t}"] = t
        create_s = time.monotonic() - t0
        go.set()
        if time.time() * 1000 > base_ms:
            ctx.note(f"creating the window's {n_tasks} tasks took {create_s:.1f} s, past the window's start; "
                     "raise --lead-s")
        pending_at_window = int(_metrics(srv.port).get("docket_reminder_timers", -1))
        rss_at_window = srv.proc.memory_kib()
        while time.time() < writer_stop:
            time.sleep(0.2)
        writer = q.get(timeout=120)
        wp.join(timeout=30)
    finally:
        go.set()
        if wp.is_alive():
            wp.terminate()
        msgs = ws.stop() if ws else []
    c.close()
    cpu_s = srv.proc.cpu_seconds()
    # Server-side: the log, through the events API.
    trig = _events(srv.port, owner["token"], ("reminder.triggered", "reminder.missed"))
    server_late, seen, dup, missed_events = [], {}, 0, 0
    for e in trig:
        d = e.get("data") or {}
        key = d.get("key")
        if e["type"] == "reminder.missed":
            missed_events += 1
            continue
        if key in seen:
            dup += 1
        seen[key] = seen.get(key, 0) + 1
        if key not in created_late:
            server_late.append(float(d.get("late_ms", 0)))
    not_triggered = [k for k in expected if k not in seen]
    unexpected = [k for k in seen if k not in expected and k not in created_late]
    # Client-side: WebSocket arrival minus the instant.
    client_late, ws_seen, ws_dup, fired_at_minus_at, read_delay = [], set(), 0, [], []
    for t_arr, raw, t_read in msgs:
        m = json.loads(raw)
        ev = m.get("event") or {}
        if m.get("type") != "event" or ev.get("type") != "reminder.triggered":
            continue
        d = ev.get("data") or {}
        key = d.get("key")
        if key in ws_seen:
            ws_dup += 1
        ws_seen.add(key)
        if key in created_late:
            continue
        at = expected.get(key)
        if at is None:
            at = parse_iso_ms(d["reminder"]["at"])
        client_late.append(t_arr * 1000 - at)
        read_delay.append((t_read - t_arr) * 1000)
        if d.get("fired_at"):
            fired_at_minus_at.append(parse_iso_ms(d["fired_at"]) - at)
    ws_missing = [k for k in expected if k not in ws_seen]
    return {
        "window": {"start_utc": iso(base_ms), "end_utc": iso(end_ms), "seconds": a.window_s,
                   "reminders_due": len(expected), "tasks": n_tasks, "create_seconds": round(create_s, 3),
                   "created_after_instant": len(created_late),
                   "created_after_instant_triggered": sum(1 for k in created_late if k in seen)},
        "pending_timers_at_window": pending_at_window,
        "rss_at_window_kib": rss_at_window,
        "writer": writer,
        "server_late_ms": dist(server_late, 1),
        "client_late_ms": dist(client_late, 3),
        "fired_at_minus_at_ms": dist(fired_at_minus_at, 1),
        "client_read_delay_ms": dist(read_delay, 3),
        "triggered": len(server_late), "missed": len(not_triggered), "duplicated": dup,
        "reminder_missed_events": missed_events, "unexpected_keys": len(unexpected),
        "ws_received": len(ws_seen), "ws_missing": len(ws_missing), "ws_duplicated": ws_dup,
        "ws_closed": ws.closed.decode(errors="replace") if ws and ws.closed else None,
        "client_early": sum(1 for v in client_late if v < 0),
        "examples_missing": not_triggered[:5],
        "server_cpu_seconds_total_after": round(cpu_s, 2),
    }


# ---- part 2: end-to-end cost -------------------------------------------------------------------

def _cost_http(ctx, srv, user):
    """Interleaved single requests on one keep-alive connection (ms)."""
    a = ctx.args
    n = a.cost_samples
    c = httpjson.Client(HOST, srv.port, token=user["token"])
    now = int(time.time() * 1000)
    rng = random.Random(11)

    def at20():
        return [{"at": iso(now + DAY_MS + rng.randrange(300 * DAY_MS))} for _ in range(20)]
    before20 = [{"before": f"PT{m + 1}M"} for m in range(20)]
    due0 = now + 30 * DAY_MS
    # Tasks to PATCH and DELETE, made first (not measured).
    patch_ids = [c.json("POST", "/api/v1/tasks", {"title": f"p{i}", "due": iso(due0), "reminders": before20},
                        expect=(201,))["id"] for i in range(n)]
    del20 = [c.json("POST", "/api/v1/tasks", {"title": f"d{i}", "reminders": at20()}, expect=(201,))["id"]
             for i in range(n)]
    del0 = [c.json("POST", "/api/v1/tasks", {"title": f"e{i}"}, expect=(201,))["id"] for i in range(n)]
    cases = {k: [] for k in ("create_0", "create_20", "patch_title", "patch_due_20", "delete_0", "delete_20")}
    errors = 0

    def timed(name, method, path, body, ok):
        nonlocal errors
        status, _, _, secs = c.request(method, path, body)
        if status != ok:
            errors += 1
        cases[name].append(secs * 1000)

    for i in range(n):
        timed("create_0", "POST", "/api/v1/tasks", {"title": f"c0 {i}"}, 201)
        timed("create_20", "POST", "/api/v1/tasks", {"title": f"c20 {i}", "reminders": at20()}, 201)
        timed("patch_title", "PATCH", f"/api/v1/tasks/{patch_ids[i]}", {"title": f"p{i} renamed"}, 200)
        timed("patch_due_20", "PATCH", f"/api/v1/tasks/{patch_ids[i]}", {"due": iso(due0 + DAY_MS + i)}, 200)
        timed("delete_0", "DELETE", f"/api/v1/tasks/{del0[i]}", None, 204)
        timed("delete_20", "DELETE", f"/api/v1/tasks/{del20[i]}", None, 204)
    c.close()
    out = {k: dist(v, 3) for k, v in cases.items()}
    out["errors"] = errors
    for pair, (with20, base) in {"schedule_20": ("create_20", "create_0"), "move_20": ("patch_due_20", "patch_title"),
                                 "cancel_20": ("delete_20", "delete_0")}.items():
        out[f"{pair}_extra_p50_ms"] = round(out[with20]["p50"] - out[base]["p50"], 3)
    return out


# ---- part 3: completion -> next occurrence ------------------------------------------------------

def _completions(ctx, srv, owner):
    a = ctx.args
    c = httpjson.Client(HOST, srv.port, token=owner["token"])
    now = int(time.time() * 1000)
    ids = [c.json("POST", "/api/v1/tasks", {"title": f"daily {i}", "due": iso(now + DAY_MS + i * 60000),
                                            "recurrence": {"rule": "FREQ=DAILY", "from": "due"}, "reminders": []},
                  expect=(201,))["id"] for i in range(a.completions)]
    ws = WsReader(srv.port, owner["token"], wanted=("recurrence.spawned",))
    from_send, from_ack, errors, timeouts = [], [], 0, 0
    try:
        for tid in ids:
            t_send = time.time()
            status, _, _, secs = c.request("POST", f"/api/v1/tasks/{tid}/complete", {})
            t_ack = time.time()
            if status != 200:
                errors += 1
                continue
            arrival = None
            deadline = time.time() + 5
            with ws.cond:
                while arrival is None and time.time() < deadline:
                    for t_arr, raw, _ in reversed(ws.messages):
                        if tid.encode() in raw:
                            m = json.loads(raw)
                            if (m.get("event") or {}).get("data", {}).get("parent_id") == tid:
                                arrival = t_arr
                                break
                    if arrival is None:
                        ws.cond.wait(0.05)
            if arrival is None:
                timeouts += 1
                continue
            from_send.append((arrival - t_send) * 1000)
            from_ack.append((arrival - t_ack) * 1000)
    finally:
        ws.stop()
        c.close()
    return {"completions": len(ids), "spawned_seen": len(from_send), "errors": errors, "timeouts": timeouts,
            "from_request_sent_ms": dist(from_send, 3), "from_200_ms": dist(from_ack, 3),
            "spawn_before_200": sum(1 for v in from_ack if v < 0)}


# ---- parts 4 and 5 -----------------------------------------------------------------------------

def _run_json(ctx, argv, purpose, timeout):
    r = procs.run_measured(argv, cpu=ctx.args.server_cpu, nice=ctx.args.nice, timeout=timeout)
    ctx.command(r["command"], purpose)
    try:
        return json.loads(r["stdout"].strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError(f"{purpose} failed ({r['returncode']}): {r['stdout'][-500:]} {r['stderr'][-1000:]}")


# ---- output ------------------------------------------------------------------------------------

def _print(a, res):
    load, lat, cost, comp, floor, sc = (res["load"], res["lateness"], res["cost_http"], res["completion"],
                                        res["floor"], res["scheduler_cost"])
    print(f"\nLoad: {load['created'] + a.window_tasks:,} tasks, {res['pending_timers']:,} pending timers "
          f"(docket_reminder_timers) in {load['seconds']:.1f} s ({load['reminders_per_s']:,.0f} reminders/s, "
          f"{load['errors']} errors); RSS {res['rss_before_load_kib']:,} -> {res['rss_loaded_kib']:,} KiB = "
          f"{fmt(res['bytes_per_pending_timer'], 1)} B per pending timer", flush=True)
    rows = []
    for label, d in (("Docket server-side (late_ms)", lat["server_late_ms"]),
                     ("Docket client-side (WS arrival - at)", lat["client_late_ms"]),
                     ("libuv uv_timer floor (idle loop)", floor["late_ms"])):
        rows.append([label, fmt(d.get("count")), fmt(d.get("p50")), fmt(d.get("p99")), fmt(d.get("max"))])
    print(f"\nLateness, ms ({lat['window']['reminders_due']:,} due in {a.window_s:g} s, "
          f"{lat['pending_timers_at_window']:,} pending, writer {lat['writer']['writes_per_s']}/s):")
    report.table(["", "n", "p50", "p99", "max"], rows)
    print(f"missed {lat['missed']}, duplicated {lat['duplicated']}, reminder.missed {lat['reminder_missed_events']}, "
          f"WS missing {lat['ws_missing']}, WS duplicated {lat['ws_duplicated']}; writer p99 "
          f"{lat['writer']['latency_ms'].get('p99')} ms, {lat['writer']['errors']} errors; reader's own delay "
          f"p50/p99 {lat['client_read_delay_ms'].get('p50')}/{lat['client_read_delay_ms'].get('p99')} ms")
    print("\nCost, in process (sched_cost, 1M timers): put {put_ns} ns, move {move_ns} ns, remove {remove_ns} ns, "
          "fire {fire_ns} ns; {scheduler_bytes_per_timer} B/timer (scheduler_bytes), {rss_bytes_per_timer} B/timer "
          "(RSS)".format(**sc))
    rows = [[k, fmt(cost[k]["p50"], 3), fmt(cost[k]["p99"], 3), fmt(cost[k]["max"], 3)]
            for k in ("create_0", "create_20", "patch_title", "patch_due_20", "delete_0", "delete_20")]
    print(f"Cost, end to end at {res['pending_timers']:,} pending (ms, {a.cost_samples} each, interleaved):")
    report.table(["request", "p50", "p99", "max"], rows)
    print(f"\nCompletion -> recurrence.spawned on WS ({comp['spawned_seen']}/{comp['completions']}), ms: "
          f"from send p50 {comp['from_request_sent_ms'].get('p50')} p99 {comp['from_request_sent_ms'].get('p99')} "
          f"max {comp['from_request_sent_ms'].get('max')}; from 200 p50 {comp['from_200_ms'].get('p50')} "
          f"p99 {comp['from_200_ms'].get('p99')} max {comp['from_200_ms'].get('max')}")
    if res.get("restart"):
        r = res["restart"]
        print(f"Restart with {r['pending_before']:,} pending (expected {r['expected']:,}): stop "
              f"{r['stop_seconds']} s, start -> /readyz {r['ready_seconds']} s, pending after {r['pending_after']:,}")
    print(f"Floor: uv_timer {floor['bytes_per_timer']} B/timer (struct {floor['struct_bytes']} B)")
    print("\nRatios (> 1.0 = Docket better):")
    report.table(["ratio", "value"], [[k, fmt(v, 3)] for k, v in res["ratios"].items() if k != "convention"])
    print("\nTargets:")
    report.table(["target", "figure", "met"], [[t["target"], t["figure"], "yes" if t["met"] else "NO"]
                                               for t in res["targets"]])


# ---- entry -------------------------------------------------------------------------------------

def run(ctx):
    a = ctx.args
    _settings(a)
    ctx.quiet_waited = 0.0
    if a.nice < 0 and os.geteuid() != 0:
        ctx.note(f"not root: cannot use nice {a.nice}; running at the default priority")
        a.nice = 0
    with ctx.phase("build"):
        ctx.docket = env.snapshot_docket(ctx.work_dir, build=a.build, ref=a.build_ref, binary=a.docket_bin)
        if not ctx.docket["matches_head"]:
            ctx.note(f"the docket binary reports {ctx.docket['version']!r}, not built from HEAD "
                     f"{ctx.git['commit']}; pass --build or --build-ref HEAD")
        floor_bin, cost_bin = _build_helpers(ctx)
    ctx.tools = {"docket": ctx.docket["version"], "zig": env.tool_version([_zig(), "version"]),
                 "taskset": env.tool_version(["taskset", "--version"])}
    procs.wait_quiet_before_run(ctx, "start")
    res = {}
    with ctx.phase("scheduler_cost"):
        res["scheduler_cost"] = _run_json(ctx, [cost_bin, str(a.total_timers)], "sched_cost (in-process)", 600)
    procs.wait_quiet_before_run(ctx, "floor")
    with ctx.phase("floor"):
        res["floor"] = _run_json(ctx, [floor_bin, str(a.total_timers), str(a.due), str(int(a.lead_s * 1000)),
                                       str(int(a.window_s * 1000))], "uv_timer floor", 600 + a.window_s)
    data_dir = os.path.join(ctx.work_dir, "docket-data")
    srv = Server(ctx, data_dir, "main")
    try:
        with ctx.phase("users"):
            owner, bulk, writer_user = (_signup(srv.port, n) for n in ("remowner", "rembulk", "remwriter"))
        time.sleep(1)
        res["rss_before_load_kib"] = srv.proc.memory_kib()["rss_kib"]
        far = a.tasks - a.window_tasks
        print(f"loading {far:,} tasks x {a.per_task} reminders ({a.loaders} processes x {a.loader_conns} conns)",
              flush=True)
        with ctx.phase("load"):
            res["load"] = _load(ctx, srv, bulk, far)
            n, waited = _wait_timers(srv.port, far * a.per_task, 600)
            res["load"]["timers_after_load"], res["load"]["projection_wait_s"] = n, waited
        if res["load"]["errors"]:
            ctx.note(f"load: {res['load']['errors']} failed creates: {res['load']['first_error']}")
        time.sleep(1)
        res["rss_loaded_kib"] = srv.proc.memory_kib()["rss_kib"]
        res["pending_timers"] = n
        res["bytes_per_pending_timer"] = round((res["rss_loaded_kib"] - res["rss_before_load_kib"]) * 1024 / n, 1) \
            if n > 0 else None
        print(f"loaded in {res['load']['seconds']} s; {n:,} timers; measuring the window", flush=True)
        procs.wait_quiet_before_run(ctx, "window")
        cpu0 = srv.proc.cpu_seconds()
        with ctx.phase("window"):
            res["lateness"] = _window(ctx, srv, owner, writer_user)
        res["lateness"]["server_cpu_seconds"] = round(srv.proc.cpu_seconds() - cpu0, 2)
        res["metrics_after_window"] = _metrics(srv.port)
        with ctx.phase("cost_http"):
            res["cost_http"] = _cost_http(ctx, srv, writer_user)
        time.sleep(2)
        res["timers_after_cost"] = int(_metrics(srv.port).get("docket_reminder_timers", -1))
        with ctx.phase("completion"):
            res["completion"] = _completions(ctx, srv, owner)
        time.sleep(2)
        res["metrics_end"] = _metrics(srv.port)
        # What should be pending now: the loaded timers, plus the cost part's 20-reminder tasks
        # (created, and PATCHed ones; the deleted ones are gone); the window's have fired.
        res["timers_expected_end"] = (a.tasks - a.window_tasks) * a.per_task + 2 * 20 * a.cost_samples
        res["firings_expected_end"] = a.due + a.completions
        if not a.skip_restart:
            with ctx.phase("restart"):
                pending = int(res["metrics_end"].get("docket_reminder_timers", -1))
                rc, stop_s = srv.stop()
                problems = srv.log_problems()
                srv = Server(ctx, data_dir, "restart")
                ready = srv.ready_s()
                n2, _ = _wait_timers(srv.port, min(pending, res["timers_expected_end"]), 60)
                res["restart"] = {"pending_before": pending, "expected": res["timers_expected_end"],
                                  "exit_code": rc, "stop_seconds": round(stop_s, 3),
                                  "listen_seconds": round(srv.listen_s, 3), "ready_seconds": round(ready, 3),
                                  "pending_after": n2, "rss_after_kib": srv.proc.memory_kib()["rss_kib"],
                                  "log_problems_before": problems}
        res["server_log_problems"] = srv.log_problems()
        res["data_dir_mb"] = round(sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(data_dir)
                                       for f in fs) / 1e6, 1)
    finally:
        srv.stop()
    lat, floor = res["lateness"], res["floor"]
    p99 = lat["server_late_ms"].get("p99")
    comp = res["completion"]["from_request_sent_ms"]
    res["ratios"] = {
        "convention": "lateness: peer p99 / Docket p99 (server-side late_ms); > 1.0 = Docket better",
        "late_p99_vs_uv_timer_floor": round(floor["late_ms"]["p99"] / p99, 3) if p99 else None,
        "late_p99_client_vs_uv_timer_floor": round(floor["late_ms"]["p99"] / lat["client_late_ms"]["p99"], 3)
        if lat["client_late_ms"].get("p99") else None,
        "late_p99_vs_vikunja_minute_cron": round(VIKUNJA_GRANULARITY_MS / p99, 1) if p99 else None,
        "bytes_per_timer_vs_uv_timer": round(floor["bytes_per_timer"] / res["bytes_per_pending_timer"], 3)
        if res.get("bytes_per_pending_timer") else None,
    }
    res["targets"] = [
        {"target": f"lateness p99 < 10 ms (server-side, {res['pending_timers']:,} pending, writes)",
         "figure": f"{p99} ms", "met": p99 is not None and p99 < TARGET_LATE_P99_MS},
        {"target": "lateness p99 < 10 ms (client-side, WS arrival)",
         "figure": f"{lat['client_late_ms'].get('p99')} ms",
         "met": (lat["client_late_ms"].get("p99") or 1e9) < TARGET_LATE_P99_MS},
        {"target": "missed = duplicated = 0", "figure": f"{lat['missed']} / {lat['duplicated']}",
         "met": lat["missed"] == 0 and lat["duplicated"] == 0 and lat["reminder_missed_events"] == 0},
        {"target": "next occurrence < 10 ms after completion (p99, from send)",
         "figure": f"{comp.get('p99')} ms", "met": (comp.get("p99") or 1e9) < TARGET_SPAWN_MS},
    ]
    _print(a, res)
    return dict({"description": SUMMARY, "docket_binary": {k: v for k, v in ctx.docket.items() if k != "path"},
                 "semantics": {
                     "server_late_ms": "data.late_ms of reminder.triggered: the command layer's wall clock when it "
                                       "built the event minus the instant (integer ms)",
                     "client_late_ms": "kernel receive timestamp (SO_TIMESTAMPNS) of the data completing the "
                                       "message on the owner's WebSocket minus data.reminder.at; includes the "
                                       "durable append (fdatasync), projection and push, not the reader's own "
                                       "scheduling (client_read_delay_ms: user-space read minus that stamp)",
                     "floor": "uv_floor: same timer count in libuv's heap, idle loop, callback wall clock minus "
                              "the instant; no disk, no writes",
                     "bytes_per_pending_timer": "(server VmRSS with the timers - VmRSS before loading) / "
                                                "docket_reminder_timers; includes SQLite page cache growth",
                     "vikunja": "not run; its reminder cron runs each minute (perf.md R32): up to 60 s off",
                 }}, **res)
