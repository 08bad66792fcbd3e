"""tasks: durable task creates and list/search queries, Docket vs PocketBase, same run (issue 4).

Sides (one server alive at a time, each started fresh on a fresh data dir, pinned to
--server-cpu; wrk pinned to --client-cpu):
  docket             zig-out/bin/docket: every create fsync'd in the event log (group commit)
                     before its 201, audited; projections in SQLite.
  pocketbase-normal  PocketBase as shipped: SQLite WAL + synchronous=NORMAL (commits not fsync'd).
  pocketbase-full    the same build with synchronous=FULL (the WAL fsync'd on every commit):
                     the durability-matched peer. See bench/pocketbase/main.go.

Part 1, creates: for each pair, each connection count: docket, pocketbase-normal,
pocketbase-full (A B C A B C). Each run: fresh server, a user and its token, wrk warm-up, then
a closed-loop wrk run of POST with varied, deterministic bodies (bench/lib/taskgen.*); afterwards
the rows the user owns are counted and must equal the 2xx answers (+ at most the requests still
in flight when wrk stopped).
Part 2, queries: for each size (10k, 1M), docket then pocketbase-normal: fresh server, load that
many tasks through the REST API (Docket: one POST each, wrk; PocketBase: /api/batch of 1000,
capped at --load-minutes), then for each query: check the answer once, and measure it with wrk
at each --query-concurrency.
"""

import os
import re
import shutil
import subprocess
import time
import urllib.parse

from bench.lib import disk, env, httpjson, procs, report, stats, taskgen, wrk, wrkscript

NAME = "tasks"
SUMMARY = ("durable task creates (64/256 conns) and list/search over 10k/1M tasks: "
           "Docket vs PocketBase (NORMAL and FULL)")

HOST = "127.0.0.1"
PB_SRC = os.path.join(env.BENCH_DIR, "pocketbase")
PB_CACHE = os.path.join(env.WORK_DIR, "pocketbase")  # built once, reused while the sources are unchanged
DOCKET_USER = {"username": "bench", "password": "bench-password-1234"}
PB_USER = {"email": "bench@example.com", "password": "bench-password-1234"}
SIDES_CREATE = ("docket", "pocketbase-normal", "pocketbase-full")
SIDES_QUERY = ("docket", "pocketbase-normal")
PB_BATCH = 1000
TARGET_CREATES = 20000
TARGET_CREATE_RATIO = 5.0
TARGET_QUERY_P99_MS = 20.0
NOISE_LIMIT = 0.03          # other processes' share of a pinned CPU above which a run is noted as noisy
CREATE_TIMEOUT_S = 30      # wrk's default 2 s would count PocketBase FULL's queueing at 256 conns as errors
SLOW_QUERY_S = 1.0          # a first answer slower than this is measured sequentially (_measure_slow)
SLOW_QUERY_BUDGET_S = 60.0  # time allowed for one slow query's sequential requests

DURABILITY = {
    "docket": "durable: each create is in the event log and fdatasync'd (group commit) before the 201; "
              "the SQLite projections are rebuilt from the log after a crash",
    "pocketbase-normal": "not durable per request: SQLite WAL + synchronous=NORMAL (PocketBase's default) - "
                         "a commit is written to the WAL but not fsync'd; it survives a process crash, "
                         "and a power loss or kernel crash can lose the last commits (durable at checkpoint)",
    "pocketbase-full": "durable: SQLite WAL + synchronous=FULL (set through PocketBase's DBConnect hook) - "
                       "the WAL is fsync'd on every commit before the response",
}

# name -> (Docket query string, PocketBase filter, PocketBase sort, what it exercises)
QUERIES = [
    ("default", "status=open&sort=due&limit=50", "completed = false", "due",
     "open tasks by due date, first page of 50"),
    ("tag_priority", "tag=work&priority=high&limit=50",
     "completed = false && tags ~ '\"work\"' && priority = 'high'", "due", "filter tag + priority"),
    ("sort_priority", "sort=-priority&limit=50", "completed = false", "-priority", "open tasks by priority desc"),
    ("overdue", "overdue=true&limit=50", "completed = false && due != '' && due < @now", "due",
     "open tasks with due < now"),
    ("q_common", f"q={taskgen.COMMON_WORD}&limit=50",
     f"completed = false && (title ~ '{taskgen.COMMON_WORD}' || description ~ '{taskgen.COMMON_WORD}')", "due",
     f"text search, a word in ~5 % of titles ({taskgen.COMMON_WORD})"),
    ("q_rare", f"q={taskgen.RARE_WORD}&limit=50",
     f"completed = false && (title ~ '{taskgen.RARE_WORD}' || description ~ '{taskgen.RARE_WORD}')", "due",
     f"text search, a word in ~0.02 % of titles ({taskgen.RARE_WORD})"),
    ("page2", None, "completed = false", "due", "second page of the default list (Docket: cursor; "
                                                  "PocketBase: page=2)"),
]


def add_arguments(p):
    p.add_argument("--connections", default="64,256", help="wrk connections for creates (default 64,256)")
    p.add_argument("--duration", type=int, default=15, help="measured seconds per create run (default 15)")
    p.add_argument("--warmup", type=int, default=2, help="warm-up seconds before each create run (default 2)")
    p.add_argument("--pairs", type=int, default=2, help="interleaved create rounds (default 2)")
    p.add_argument("--sizes", default="10000,1000000", help="task counts for the query part (default 10000,1000000)")
    p.add_argument("--query-duration", type=int, default=5, help="seconds per query measurement (default 5)")
    p.add_argument("--query-concurrency", default="1,8",
                   help="wrk connections per query measurement; the first gives the latency figures (default 1,8)")
    p.add_argument("--load-connections", type=int, default=256, help="wrk connections while loading Docket (256)")
    p.add_argument("--load-minutes", type=float, default=12.0,
                   help="cap on each loading phase per side (default 12); a capped side is measured at the size "
                        "it reached, which the output says")
    p.add_argument("--only", choices=["docket", "pocketbase"], default=None,
                   help="measure one system only (no ratios): for checking one side")
    p.add_argument("--skip-creates", action="store_true", help="leave out part 1")
    p.add_argument("--skip-queries", action="store_true", help="leave out part 2")
    p.add_argument("--build", action="store_true", help="run .ci/do build first (default: only if missing)")
    p.add_argument("--build-ref", metavar="REF", default=None, help="measure a clean build of git REF")
    p.add_argument("--docket-bin", metavar="PATH", default=None, help="measure this docket binary")
    p.add_argument("--server-cpu", type=int, default=0, help="CPU the server is pinned to (default 0)")
    p.add_argument("--client-cpu", type=int, default=1, help="CPU wrk is pinned to (default 1)")
    p.add_argument("--nice", type=int, default=-19, help="nice for servers and wrk (default -19; needs root)")
    p.add_argument("--wait-quiet", type=float, default=60,
                   help="wait up to this many seconds in total for the CPUs to be idle before runs (default 60)")


def _settings(a):
    if a.quick:
        a.connections, a.duration, a.warmup, a.pairs = "64", 3, 1, 1
        a.sizes, a.query_duration = "10000", 2
        a.wait_quiet = min(a.wait_quiet, 10)
    a.levels = [int(c) for c in str(a.connections).split(",") if c.strip()]
    a.size_list = [int(s) for s in str(a.sizes).split(",") if s.strip()]
    a.concurrency = [int(c) for c in str(a.query_concurrency).split(",") if c.strip()]
    if not a.levels or not a.size_list or not a.concurrency or a.pairs < 1:
        raise SystemExit("bench tasks: need connection counts, sizes, query concurrencies and --pairs >= 1")


# ---- servers -----------------------------------------------------------------------------------

class Server:
    """One started server with a signed-in user: proc, port, token, user id, data dir."""

    def __init__(self, side, proc, port, data_dir):
        self.side, self.proc, self.port, self.data_dir = side, proc, port, data_dir
        self.token = self.user_id = None
        self.start_to_listen_s = self.signup_s = None

    @property
    def docket(self):
        return self.side == "docket"

    def client(self):
        return httpjson.Client(HOST, self.port, token=self.token)

    @property
    def create_path(self):
        return "/api/v1/tasks" if self.docket else "/api/collections/tasks/records"

    @property
    def create_status(self):
        return 201 if self.docket else 200

    def extra_json(self):
        """Fields PocketBase needs in the body that Docket fills itself: the owner (Docket takes it
        from the token), version 1, the user's timezone and the default reminder Docket adds to
        every task with a due date (added for all here: PocketBase has no conditional default)."""
        if self.docket:
            return ""
        return f',"owner":"{self.user_id}","version":1,"timezone":"UTC","reminders":[{{"before":"PT15M"}}]'


def _build_pocketbase(ctx):
    """go build bench/pocketbase into bench/work/pocketbase (cached by source mtime); returns the path."""
    go = shutil.which("go") or "/usr/local/go/bin/go"
    if not os.access(go, os.X_OK):
        raise SystemExit("bench tasks: `go` not found; PocketBase is built from its Go module at run time")
    os.makedirs(PB_CACHE, exist_ok=True)
    binary = os.path.join(PB_CACHE, "pocketbase-bench")
    newest = max(os.path.getmtime(os.path.join(PB_SRC, f)) for f in ("go.mod", "go.sum", "main.go"))
    gov = env.tool_version([go, "version"])
    if not os.access(binary, os.X_OK) or os.path.getmtime(binary) < newest:
        env.log("==> building PocketBase (bench/pocketbase) with the machine's go")
        argv = [go, "build", "-trimpath", "-o", binary, "."]
        e = dict(os.environ, GOFLAGS="-mod=mod", CGO_ENABLED="0")
        r = subprocess.run(argv, cwd=PB_SRC, env=e, capture_output=True, text=True, timeout=900)
        ctx.command("cd bench/pocketbase && GOFLAGS=-mod=mod CGO_ENABLED=0 " + " ".join(argv), "build PocketBase")
        if r.returncode != 0:
            raise RuntimeError(f"go build of bench/pocketbase failed:\n{r.stdout}\n{r.stderr}")
    dst = os.path.join(ctx.work_dir, "pocketbase-bench")
    shutil.copy2(binary, dst)
    versions = {}
    with open(os.path.join(PB_SRC, "go.mod")) as f:
        for m in re.finditer(r"^\s*(github.com/pocketbase/pocketbase|modernc.org/sqlite)\s+(\S+)", f.read(), re.M):
            versions[m.group(1)] = m.group(2)
    return dst, gov, versions


def _start(ctx, side, tag):
    a = ctx.args
    port = procs.free_port(HOST)
    data_dir = os.path.join(ctx.work_dir, f"{side}-{tag}")
    log_path = os.path.join(ctx.work_dir, f"{side}-{tag}.log")
    if side == "docket":
        argv = [ctx.docket["path"], "--listen", f"{HOST}:{port}", "--data-dir", data_dir]
        proc = procs.Proc("docket", argv, cpu=a.server_cpu, nice=a.nice, log_path=log_path)
    else:
        level = "FULL" if side == "pocketbase-full" else "NORMAL"
        argv = [ctx.pb_bin, "serve", "--http", f"{HOST}:{port}", "--dir", data_dir]
        proc = procs.Proc(side, argv, cpu=a.server_cpu, nice=a.nice, log_path=log_path,
                          env=dict(os.environ, PB_BENCH_SYNCHRONOUS=level))
    ctx.command(proc.command, f"{side} server ({tag})")
    srv = Server(side, proc, port, data_dir)
    try:
        srv.start_to_listen_s = round(proc.wait_port(HOST, port, timeout=60), 3)
        t0 = time.monotonic()
        _sign_in(srv)
        srv.signup_s = round(time.monotonic() - t0, 3)
    except BaseException:
        proc.stop()
        raise
    return srv


def _sign_in(srv):
    c = httpjson.Client(HOST, srv.port)
    if srv.docket:
        doc = c.json("POST", "/api/v1/auth/signup", DOCKET_USER, expect=(201,))
        srv.token, srv.user_id = doc["token"], doc["user"]["id"]
    else:
        body = dict(PB_USER, passwordConfirm=PB_USER["password"])
        c.json("POST", "/api/collections/users/records", body, expect=(200,))
        doc = c.json("POST", "/api/collections/users/auth-with-password",
                     {"identity": PB_USER["email"], "password": PB_USER["password"]}, expect=(200,))
        srv.token, srv.user_id = doc["token"], doc["record"]["id"]
    c.close()


def _stop(ctx, srv):
    rc = srv.proc.stop()
    lines = [l for l in srv.proc.log_text().splitlines()
             if re.search(r"level=(warn|error)|panic|fatal|ERROR", l)][:20]
    if not ctx.args.keep_work:
        shutil.rmtree(srv.data_dir, ignore_errors=True)
    return rc, lines


def _count(srv):
    """Tasks the user owns, as the server reports them (Docket: every page of the list, all
    statuses; PocketBase: totalItems of a list without skipTotal)."""
    c = srv.client()
    try:
        if not srv.docket:
            doc = c.json("GET", "/api/collections/tasks/records?perPage=1&fields=id")
            return doc["totalItems"]
        n, cursor = 0, None
        while True:
            path = "/api/v1/tasks?status=all&sort=created&limit=500"
            if cursor:
                path += "&cursor=" + urllib.parse.quote(cursor, safe="")
            doc = c.json("GET", path)
            n += len(doc["items"])
            cursor = doc.get("next_cursor")
            if not cursor or not doc["items"]:
                return n
    finally:
        c.close()


def _headers(srv):
    return {"Authorization": f"Bearer {srv.token}", "Content-Type": "application/json"}


def _script(ctx, srv, name, start, limit=None, marker=None):
    path = os.path.join(ctx.work_dir, f"{name}.lua")
    with open(path, "w") as f:
        f.write(taskgen.lua_script(srv.create_path, _headers(srv), ctx.now, start, extra_json=srv.extra_json(),
                                   limit=limit, create_status=srv.create_status, marker_path=marker,
                                   idle_path="/healthz" if srv.docket else "/api/health",
                                   report_lua=wrk.REPORT_LUA))
    return path


def _probe_docket(ctx):
    """Fail early, with a clear message, when Docket's tasks API does not answer yet."""
    srv = _start(ctx, "docket", "probe")
    try:
        c = srv.client()
        status, _, doc, _ = c.request("POST", "/api/v1/tasks", taskgen.task(0, ctx.now))
        if status != 201 or not isinstance(doc, dict) or "id" not in doc:
            raise RuntimeError(f"Docket's POST /api/v1/tasks answered {status} {str(doc)[:300]}: the tasks API "
                               f"is not ready in this binary ({ctx.docket['version']})")
        lst = c.json("GET", "/api/v1/tasks?limit=5")
        if not lst.get("items"):
            raise RuntimeError(f"Docket's GET /api/v1/tasks does not list the task just created: {lst}")
        c.close()
        return {"create_response": doc, "signup_s": srv.signup_s}
    finally:
        _stop(ctx, srv)


# ---- part 1: creates ---------------------------------------------------------------------------

def _create_run(ctx, side, conns, pair, run_id):
    a = ctx.args
    procs.wait_quiet_before_run(ctx, f"before create run {run_id}")
    srv = _start(ctx, side, f"c{run_id}")
    rec = {"side": side, "connections": conns, "pair": pair, "run": run_id, "duration_s": a.duration,
           "server_command": srv.proc.command, "start_to_listen_s": srv.start_to_listen_s, "signup_s": srv.signup_s}
    try:
        url = f"http://{HOST}:{srv.port}{srv.create_path}"
        ok_warm = 0
        if a.warmup > 0:
            w0 = wrkscript.run(url, conns, a.warmup, _script(ctx, srv, f"warm-{run_id}", 0),
                               cpu=a.client_cpu, nice=a.nice, timeout_s=CREATE_TIMEOUT_S)
            ok_warm = w0["requests"] - w0["errors"]["non_2xx_3xx"]
            rec["warmup"] = {"rps": w0["rps"], "requests": w0["requests"], "errors": w0["errors"]}
        cpu0, sched0 = srv.proc.cpu_seconds(), srv.proc.sched_seconds()
        disk0, io0 = disk.counters(ctx.work_dir), disk.process_io(srv.proc.pid)
        times0 = procs.cpu_times({a.server_cpu, a.client_cpu})
        w = wrkscript.run(url, conns, a.duration, _script(ctx, srv, f"run-{run_id}", 10_000_000),
                          cpu=a.client_cpu, nice=a.nice, timeout_s=CREATE_TIMEOUT_S)
        disk1, io1 = disk.counters(ctx.work_dir), disk.process_io(srv.proc.pid)
        cpu_delta = procs.cpu_times_delta(times0, procs.cpu_times({a.server_cpu, a.client_cpu}))
        cpu1, sched1 = srv.proc.cpu_seconds(), srv.proc.sched_seconds()
        mem = srv.proc.memory_kib()
        ctx.command(w["command"], f"creates (run {run_id}, {side}, {conns} connections)")
        time.sleep(0.5)  # requests wrk left in flight finish before counting
        rows = _count(srv)
        alive = srv.proc.alive()
    finally:
        rc, log_lines = _stop(ctx, srv)
    ok = w["requests"] - w["errors"]["non_2xx_3xx"]
    lat = w["latency_ms"]
    wall = w["duration_s"] or a.duration
    server_cpu = cpu1 - cpu0
    d = disk.delta(disk0, disk1)
    extra = rows - (ok + ok_warm)
    rec.update({
        "rps": ok / wall, "requests": w["requests"], "ok": ok, "measured_s": wall,
        "p50_ms": lat.get("p50"), "p90_ms": lat.get("p90"), "p99_ms": lat.get("p99"), "p99_9_ms": lat.get("p99.9"),
        "max_ms": lat.get("max"), "mean_ms": lat.get("mean"), "errors": w["errors"],
        "cpu_seconds": round(server_cpu, 3), "cpu_util": round(server_cpu / wall, 3),
        "creates_per_cpu_second": round(ok / server_cpu, 1) if server_cpu > 0 else None,
        "rss_peak_kib": mem["rss_peak_kib"],
        "client_cpu_util": round(w["client_cpu_seconds"] / wall, 3),
        "server_runqueue_wait_s": round(sched1["wait_s"] - sched0["wait_s"], 4),
        "client_runqueue_wait_s": round(w["client_runqueue_wait_seconds"] or 0.0, 4),
        "disk": d, "creates_per_flush": round(ok / d["flushes"], 1) if d and d["flushes"] else None,
        # what the server itself wrote (/proc/PID/io), per acknowledged create
        "server_write_bytes": (io1["write_bytes"] - io0["write_bytes"]) if io0 and io1 else None,
        "bytes_written_per_create": round((io1["write_bytes"] - io0["write_bytes"]) / ok) if io0 and io1 and ok else None,
        # CPU time other processes took on the pinned CPUs: busy time there minus the server's
        # (or wrk's) own. Run-queue wait is kept too, but for a multi-threaded server pinned to
        # one CPU it mostly counts its own threads waiting for each other.
        "other_cpu_seconds_on_server_cpu": round(max(cpu_delta[a.server_cpu]["busy"] - server_cpu, 0.0), 3),
        "other_cpu_seconds_on_client_cpu": round(max(cpu_delta[a.client_cpu]["busy"] - w["client_cpu_seconds"], 0.0), 3),
        "rows_after": rows, "ok_including_warmup": ok + ok_warm,
        # rows the server holds beyond the 2xx wrk saw: requests in flight when a wrk run stopped
        # (at most `conns` per run); fewer rows than 2xx answers would be lost acknowledged creates
        "rows_minus_2xx": extra,
        "verified": 0 <= extra <= 2 * conns,
        "alive_after_load": alive, "exit_code": rc, "log_warn_error_lines": log_lines,
        "wrk_command": w["command"], "wrk_output": w["raw"],
    })
    return rec


def _creates(ctx):
    a = ctx.args
    runs, n = [], 0
    sides = [s for s in SIDES_CREATE if _wanted(a, s)]
    total = a.pairs * len(a.levels) * len(sides)
    for pair in range(1, a.pairs + 1):
        for conns in a.levels:
            for side in sides:
                n += 1
                r = _create_run(ctx, side, conns, pair, n)
                runs.append(r)
                print(f"  [{n:2}/{total}] creates {side:17} {conns:4} conns: {r['rps']:>9,.0f}/s  "
                      f"p50 {r['p50_ms']:.2f} ms  p99 {r['p99_ms']:.2f} ms  cpu {r['cpu_util']:.0%}  "
                      f"wrk cpu {r['client_cpu_util']:.0%}  per flush {r['creates_per_flush']}  "
                      f"B/create {r['bytes_written_per_create']}  other cpu {r['other_cpu_seconds_on_server_cpu']:.1f} s  "
                      f"errors {r['errors']['total']}  rows {r['rows_after']:,} "
                      f"({'ok' if r['verified'] else 'MISMATCH'} {r['rows_minus_2xx']:+d})", flush=True)
    return runs


def _wanted(a, side):
    return a.only is None or side.startswith(a.only)


# ---- part 2: loading and queries ---------------------------------------------------------------

def _load(ctx, srv, size):
    """Create tasks 0..size-1 through the API, within --load-minutes; returns the load record."""
    a = ctx.args
    cap = a.load_minutes * 60
    t0 = time.monotonic()
    progress = {"last": 0}

    def tick(elapsed):
        if elapsed - progress["last"] >= 15:
            progress["last"] = elapsed
            print(f"      loading {srv.side}: {elapsed:.0f} s", flush=True)

    if srv.docket:
        marker = os.path.join(ctx.work_dir, f"load-{srv.side}-{size}.done")
        script = _script(ctx, srv, f"load-{srv.side}-{size}", 0, limit=size, marker=marker)
        url = f"http://{HOST}:{srv.port}{srv.create_path}"
        w = wrkscript.load(url, a.load_connections, script, marker, cap, cpu=a.client_cpu, nice=a.nice,
                           on_tick=tick)
        ctx.command(w["command"], f"load {size} tasks into docket")
        method = f"wrk, one POST per task, {a.load_connections} connections"
        errors = w["errors"]["non_2xx_3xx"]
        # Complete: every task number was answered, so the rows are the 201s (paging through a
        # million rows to count them would take longer than loading them). Capped: count.
        rows = size - errors if w["completed"] else None
        capped = not w["completed"]
    else:
        c = srv.client()
        sent = errors = 0
        while sent < size and time.monotonic() - t0 < cap:
            batch = []
            for i in range(sent, min(size, sent + PB_BATCH)):  # the same bodies as taskgen.lua sends
                body = taskgen.task(i, ctx.now)
                body.update(owner=srv.user_id, version=1, timezone="UTC", reminders=[{"before": "PT15M"}])
                batch.append({"method": "POST", "url": srv.create_path, "body": body})
            status, _, doc, _ = c.request("POST", "/api/batch", {"requests": batch})
            if status != 200:
                errors += len(batch)
                raise RuntimeError(f"PocketBase /api/batch answered {status}: {str(doc)[:300]}")
            sent += len(batch)
            tick(time.monotonic() - t0)
        c.close()
        method = f"Python, POST /api/batch of {PB_BATCH} creates (one transaction each), sequential"
        rows = None
        capped = sent < size
    seconds = time.monotonic() - t0
    if rows is None:
        rows = _count(srv)
    rec = {"side": srv.side, "target": size, "loaded": rows, "seconds": round(seconds, 1),
           "rate_per_s": round(rows / seconds, 1) if seconds > 0 else None, "method": method,
           "capped": capped, "errors": errors}
    if errors:
        ctx.note(f"{srv.side}: {errors} of the {size:,} creates while loading were refused (non-2xx)")
    if rec["capped"]:
        ctx.note(f"{srv.side}: loading {size:,} tasks stopped at the {a.load_minutes:g}-minute cap with "
                 f"{rows:,} tasks ({rec['rate_per_s']:,.0f}/s); its queries are measured over {rows:,}")
    return rec


def _query_paths(srv, size_tag):
    """(name, path) per query for this side; page 2 needs the first page's cursor (Docket)."""
    out = []
    for name, dq, pf, ps, _ in QUERIES:
        if srv.docket:
            if name == "page2":
                c = srv.client()
                first = c.json("GET", "/api/v1/tasks?" + QUERIES[0][1])
                c.close()
                cur = first.get("next_cursor")
                if not cur:
                    raise RuntimeError(f"docket: no next_cursor on the first page at {size_tag}")
                dq = QUERIES[0][1] + "&cursor=" + urllib.parse.quote(cur, safe="")
            out.append((name, "/api/v1/tasks?" + dq))
        else:
            q = {"filter": pf, "sort": ps, "perPage": "50", "skipTotal": "1"}
            if name == "page2":
                q["page"] = "2"
            out.append((name, "/api/collections/tasks/records?" + urllib.parse.urlencode(q, quote_via=urllib.parse.quote)))
    return out


def _check_answer(srv, name, path):
    """One request before measuring: 200 and a list; returns what the answer holds."""
    c = srv.client()
    status, _, doc, secs = c.request("GET", path)
    c.close()
    if status != 200 or not isinstance(doc, dict) or not isinstance(doc.get("items"), list):
        raise RuntimeError(f"{srv.side} {name}: GET {path} answered {status}: {str(doc)[:300]}")
    items = doc["items"]
    return {"status": status, "items": len(items), "first_seconds": round(secs, 4),
            "titles": sorted(i.get("title", "") for i in items)}


def _query_phase(ctx, side, size):
    a = ctx.args
    procs.wait_quiet_before_run(ctx, f"before {side} {size}")
    srv = _start(ctx, side, f"q{size}")
    res = {"side": side, "size_target": size, "queries": {}}
    try:
        with ctx.phase(f"load_{side}"):
            res["load"] = _load(ctx, srv, size)
        ld = res["load"]
        print(f"    {side:17} loaded {ld['loaded']:,} of {size:,} in {ld['seconds']:.1f} s "
              f"({ld['rate_per_s']:,.0f}/s){' CAPPED' if ld['capped'] else ''}", flush=True)
        for name, path in _query_paths(srv, size):
            check = _check_answer(srv, name, path)
            q = {"path": path, "check": {k: v for k, v in check.items() if k != "titles"},
                 "titles": check["titles"] if check["items"] < 50 else None, "by_concurrency": {}}
            if check["first_seconds"] > SLOW_QUERY_S:
                q["slow"] = True  # measured sequentially; no figure at higher concurrency
                slow = _measure_slow(srv, path, check["first_seconds"])
                q["by_concurrency"] = {str(c): (slow if i == 0 else None) for i, c in enumerate(a.concurrency)}
            else:
                for c in a.concurrency:
                    q["by_concurrency"][str(c)] = _measure_query(ctx, srv, name, path, c, size)
            res["queries"][name] = q
            parts = "  ".join(f"c{c}: {x['rps']:,.1f}/s p50 {x['p50_ms']:.2f} p99 {x['p99_ms']:.2f} ms"
                              for c, x in q["by_concurrency"].items() if x)
            print(f"      {name:14} items {check['items']:3}  {parts}{'  (slow: sequential)' if q.get('slow') else ''}",
                  flush=True)
        res["rss_peak_kib"] = srv.proc.memory_kib()["rss_peak_kib"]
        res["data_dir_bytes"] = _du(srv.data_dir)
    finally:
        res["exit_code"], res["log_warn_error_lines"] = _stop(ctx, srv)
    return res


def _measure_query(ctx, srv, name, path, conns, size):
    a = ctx.args
    url = f"http://{HOST}:{srv.port}{path}"
    cpu0 = srv.proc.cpu_seconds()
    w = wrkscript.run(url, conns, a.query_duration, None, headers={"Authorization": f"Bearer {srv.token}"},
                      cpu=a.client_cpu, nice=a.nice, timeout_s=10)
    cpu = srv.proc.cpu_seconds() - cpu0
    ctx.command(w["command"], f"query {name} ({srv.side}, {size}, {conns} conns)")
    lat = w["latency_ms"]
    ok = w["requests"] - w["errors"]["non_2xx_3xx"]
    wall = w["duration_s"] or a.query_duration
    return {"rps": ok / wall, "requests": w["requests"], "p50_ms": lat.get("p50"), "p99_ms": lat.get("p99"),
            "p99_9_ms": lat.get("p99.9"), "max_ms": lat.get("max"), "errors": w["errors"],
            "cpu_util": round(cpu / wall, 3), "client_cpu_util": round(w["client_cpu_seconds"] / wall, 3),
            "wrk_output": w["raw"]}


def _measure_slow(srv, path, first_s):
    """A query slower than SLOW_QUERY_S cannot fill a timed wrk run (wrk gives up after its
    timeout): time a few sequential requests instead, within SLOW_QUERY_BUDGET_S. Its p99 is the
    slowest of them and it has no figure at higher concurrency."""
    n = max(2, min(20, int(SLOW_QUERY_BUDGET_S / max(first_s, 1e-3))))
    c = srv.client()
    lat = []
    for _ in range(n):
        status, _, _, secs = c.request("GET", path)
        if status != 200:
            raise RuntimeError(f"{srv.side}: GET {path} answered {status}")
        lat.append(secs * 1e3)
    c.close()
    return {"rps": 1e3 / stats.median(lat), "requests": n, "p50_ms": stats.median(lat), "p99_ms": max(lat),
            "max_ms": max(lat), "errors": {"total": 0}, "method": f"{n} sequential requests (Python), "
            "p99 = slowest", "latencies_ms": [round(x, 2) for x in lat]}


def _du(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.path.getsize(os.path.join(root, f))
            except OSError:
                pass
    return total


def _queries(ctx):
    a = ctx.args
    out = {}
    for size in a.size_list:
        print(f"\n  queries over {size:,} tasks", flush=True)
        out[str(size)] = {side: _query_phase(ctx, side, size) for side in SIDES_QUERY if _wanted(a, side)}
        d, p = out[str(size)].get("docket"), out[str(size)].get("pocketbase-normal")
        if d and p:  # same data set on both sides: answers under 50 items must hold the same titles
            for name in d["queries"]:
                dt, pt = d["queries"][name]["titles"], p["queries"][name]["titles"]
                if dt is not None and pt is not None and d["load"]["loaded"] == p["load"]["loaded"] and dt != pt:
                    ctx.note(f"{name} at {size}: docket and pocketbase return different tasks "
                             f"({len(dt)} vs {len(pt)} items)")
    return out


# ---- summary -----------------------------------------------------------------------------------

def _summarise_creates(a, runs):
    out = {}
    for conns in a.levels:
        level = {}
        for side in SIDES_CREATE:
            rs = [r for r in runs if r["side"] == side and r["connections"] == conns]
            if not rs:
                continue
            s = {k: stats.median([r[k] for r in rs]) for k in
                 ("rps", "p50_ms", "p99_ms", "p99_9_ms", "max_ms", "cpu_util", "creates_per_cpu_second",
                  "creates_per_flush", "rss_peak_kib", "client_cpu_util", "bytes_written_per_create",
                  "other_cpu_seconds_on_server_cpu", "other_cpu_seconds_on_client_cpu")}
            s["rps_range"] = stats.spread([r["rps"] for r in rs])
            s["p99_ms_range"] = stats.spread([r["p99_ms"] for r in rs])
            s["errors_total"] = sum(r["errors"]["total"] for r in rs)
            s["verified"] = all(r["verified"] for r in rs)
            s["runs"] = len(rs)
            level[side] = s
        ratios = {}
        d = [r for r in runs if r["side"] == "docket" and r["connections"] == conns]
        for peer in ("pocketbase-normal", "pocketbase-full"):
            p = [r for r in runs if r["side"] == peer and r["connections"] == conns]
            if d and p:
                ratios[peer] = {"rps": stats.paired_ratio([r["rps"] for r in d], [r["rps"] for r in p], True),
                                "p99": stats.paired_ratio([r["p99_ms"] for r in d], [r["p99_ms"] for r in p], False),
                                "creates_per_cpu_second": stats.paired_ratio(
                                    [r["creates_per_cpu_second"] for r in d], [r["creates_per_cpu_second"] for r in p],
                                    True)}
        level["ratios"] = ratios
        out[str(conns)] = level
    return out


def _query_ratios(q):
    out = {}
    for size, sides in q.items():
        d, p = sides.get("docket"), sides.get("pocketbase-normal")
        if not (d and p):
            continue
        out[size] = {}
        for name in d["queries"]:
            r = {}
            for c in d["queries"][name]["by_concurrency"]:
                dc, pc = d["queries"][name]["by_concurrency"][c], p["queries"][name]["by_concurrency"][c]
                if not dc or not pc:
                    r[c] = None
                    continue
                r[c] = {"rps": stats.ratio(dc["rps"], pc["rps"], True),
                        "p50": stats.ratio(dc["p50_ms"], pc["p50_ms"], False),
                        "p99": stats.ratio(dc["p99_ms"], pc["p99_ms"], False)}
            out[size][name] = r
    return out


def _targets(a, creates, queries):
    t = []
    if creates:
        best = max(a.levels, key=lambda c: (creates[str(c)].get("docket") or {}).get("rps") or 0)
        d = creates[str(best)].get("docket")
        if d:
            t.append({"target": f">= {TARGET_CREATES:,} durable creates/s", "figure": d["rps"],
                      "where": f"docket, {best} connections (best level)", "met": d["rps"] >= TARGET_CREATES})
        for peer in ("pocketbase-normal", "pocketbase-full"):
            r = creates[str(best)]["ratios"].get(peer)
            if r and r["rps"]["median"] is not None:
                t.append({"target": f">= {TARGET_CREATE_RATIO:g}x PocketBase on creates ({peer})",
                          "figure": r["rps"]["median"], "where": f"{best} connections, median of pairs",
                          "met": r["rps"]["median"] >= TARGET_CREATE_RATIO})
    big = str(max(a.size_list))
    d = (queries or {}).get(big, {}).get("docket")
    if d:
        c = str(a.concurrency[0])
        worst = max(d["queries"].items(), key=lambda kv: kv[1]["by_concurrency"][c]["p99_ms"] or 0)
        t.append({"target": f"search/filter/sort over 1M tasks p99 < {TARGET_QUERY_P99_MS:g} ms",
                  "figure": worst[1]["by_concurrency"][c]["p99_ms"],
                  "where": f"docket, worst query ({worst[0]}) at {c} connection(s), {d['load']['loaded']:,} tasks",
                  "met": (worst[1]["by_concurrency"][c]["p99_ms"] < TARGET_QUERY_P99_MS
                          if d["load"]["loaded"] >= 1_000_000 else None),
                  "note": None if d["load"]["loaded"] >= 1_000_000 else "fewer than 1M tasks loaded: not judged"})
    return t


def _print_creates(a, creates):
    f = report.fmt
    rows = []
    for conns in a.levels:
        for side in SIDES_CREATE:
            s = creates[str(conns)].get(side)
            if not s:
                continue
            lo, hi = s["rps_range"]
            rows.append([side, conns, f(s["rps"], 0), f"{f(lo, 0)}-{f(hi, 0)}", f(s["p50_ms"], 2), f(s["p99_ms"], 2),
                         f(s["p99_9_ms"], 2), f"{f((s['cpu_util'] or 0) * 100, 0)}%", f(s["creates_per_cpu_second"], 0),
                         f(s["creates_per_flush"], 1), f(s["bytes_written_per_create"], 0), f(s["rss_peak_kib"]),
                         f"{f((s['client_cpu_util'] or 0) * 100, 0)}%", s["errors_total"],
                         "yes" if s["verified"] else "NO"])
    print("\nCreates (POST, closed loop; median over pairs):")
    report.table(["side", "conns", "creates/s", "range", "p50 ms", "p99 ms", "p99.9 ms", "cpu", "per cpu-s",
                  "per flush", "B written", "rss KiB", "wrk cpu", "errors", "rows=2xx"], rows)
    rrows = []
    for conns in a.levels:
        for peer, r in creates[str(conns)]["ratios"].items():
            rrows.append([conns, peer, f"{f(r['rps']['median'])} ({f(r['rps']['min'])}-{f(r['rps']['max'])})",
                          f"{f(r['p99']['median'])} ({f(r['p99']['min'])}-{f(r['p99']['max'])})",
                          f(r["creates_per_cpu_second"]["median"])])
    if rrows:
        print()
        report.table(["conns", "docket vs", "creates/s ratio", "p99 ratio", "per cpu-s ratio"], rrows)


def _print_queries(a, queries, qratios):
    f = report.fmt
    c0 = str(a.concurrency[0])
    ck = str(a.concurrency[-1])
    print(f"\nLoading (through each side's REST API):")
    rows = []
    for size, sides in queries.items():
        for side, r in sides.items():
            ld = r["load"]
            rows.append([side, f(int(size)), f(ld["loaded"]), f(ld["seconds"], 1), f(ld["rate_per_s"], 0),
                         "CAPPED" if ld["capped"] else "", ld["method"]])
    report.table(["side", "target", "loaded", "seconds", "tasks/s", "", "how"], rows)
    print(f"\nQueries (latency at {c0} connection(s); throughput at {ck}):")
    rows = []
    for size, sides in queries.items():
        d, p = sides.get("docket"), sides.get("pocketbase-normal")
        names = list((d or p)["queries"])
        for name in names:
            row = [f(int(size)), name]
            for s in (d, p):
                if s:
                    q = s["queries"][name]
                    lo, hi = q["by_concurrency"][c0], q["by_concurrency"][ck] or {}
                    row += [q["check"]["items"], f(lo["p50_ms"], 2), f(lo["p99_ms"], 2),
                            f(hi.get("rps"), 0) if hi else "slow", f(hi.get("p99_ms"), 2)]
                else:
                    row += ["-"] * 5
            r = qratios.get(size, {}).get(name)
            row += [f(r[c0]["p99"]) if r and r[c0] else "-", f(r[ck]["rps"]) if r and r[ck] else "-"]
            rows.append(row)
    report.table(["tasks", "query", "D items", "D p50", "D p99", f"D rps@{ck}", f"D p99@{ck}",
                  "PB items", "PB p50", "PB p99", f"PB rps@{ck}", f"PB p99@{ck}", "p99 PB/D", "rps D/PB"], rows)


def _print_targets(targets):
    if not targets:
        return
    print("\nTargets (issue 4):")
    report.table(["target", "figure", "met", "where"],
                 [[t["target"], report.fmt(t["figure"], 2), {True: "yes", False: "NO", None: "n/a"}[t["met"]],
                   t["where"] + (f" - {t['note']}" if t.get("note") else "")] for t in targets])


# ---- entry -------------------------------------------------------------------------------------

def run(ctx):
    a = ctx.args
    _settings(a)
    ctx.quiet_waited = 0.0
    ctx.now = int(time.time())  # the data set's "now": the same due dates on both sides
    with ctx.phase("setup"):
        env.ensure_apt(["wrk"], commands={"wrk": "wrk"})
        if a.nice < 0 and os.geteuid() != 0:
            ctx.note(f"not root: cannot use nice {a.nice}; running at the default priority")
            a.nice = 0
        ncpu = os.cpu_count() or 1
        if max(a.server_cpu, a.client_cpu) >= ncpu or a.server_cpu == a.client_cpu:
            raise SystemExit(f"bench tasks: need distinct CPUs < {ncpu} for server and client")
    with ctx.phase("build"):
        ctx.docket = None
        if a.only != "pocketbase":
            ctx.docket = env.snapshot_docket(ctx.work_dir, build=a.build, ref=a.build_ref, binary=a.docket_bin)
            if not ctx.docket["matches_head"]:
                ctx.note(f"the docket binary reports {ctx.docket['version']!r}, not built from HEAD "
                         f"{ctx.git['commit']}; pass --build or --build-ref HEAD")
        pb_versions, gov = {}, None
        if a.only != "docket":
            ctx.pb_bin, gov, pb_versions = _build_pocketbase(ctx)
    ctx.tools = {"docket": ctx.docket["version"] if ctx.docket else None, "go": gov,
                 "pocketbase": pb_versions.get("github.com/pocketbase/pocketbase"),
                 "pocketbase_sqlite_driver": "modernc.org/sqlite " + pb_versions.get("modernc.org/sqlite", "?"),
                 "wrk": env.tool_version(["wrk", "-v"]), "taskset": env.tool_version(["taskset", "--version"])}
    probe = None
    if ctx.docket:
        with ctx.phase("verify"):
            probe = _probe_docket(ctx)
    procs.wait_quiet_before_run(ctx, "start")

    runs, creates = [], {}
    if not a.skip_creates:
        print(f"\nPart 1: creates, {a.pairs} round(s) x {a.levels} connections x "
              f"{len([s for s in SIDES_CREATE if _wanted(a, s)])} sides, {a.duration} s each", flush=True)
        with ctx.phase("creates"):
            runs = _creates(ctx)
        creates = _summarise_creates(a, runs)
    queries = {}
    if not a.skip_queries:
        print(f"\nPart 2: list/search over {a.size_list} tasks, {a.query_duration} s per query "
              f"and concurrency {a.concurrency}", flush=True)
        with ctx.phase("queries"):
            queries = _queries(ctx)
    qratios = _query_ratios(queries)
    targets = _targets(a, creates, queries)

    for r in runs:
        if not r["verified"]:
            ctx.note(f"{r['side']} run {r['run']}: {r['rows_after']} rows vs {r['ok_including_warmup']} 2xx answers "
                     f"({r['rows_minus_2xx']:+d}; allowed 0..{2 * r['connections']} in flight)")
        if r["errors"]["total"]:
            ctx.note(f"{r['side']} run {r['run']}: wrk errors {r['errors']}")
        if r["exit_code"] not in (0, None):
            ctx.note(f"{r['side']} run {r['run']}: exit code {r['exit_code']} after SIGTERM")
        # Noise: on the server's CPU, other processes' CPU time (the server's own threads wait for
        # each other there, so its run-queue wait says little); for wrk (one thread, nice -19,
        # ~10 % of its CPU) its run-queue wait, since others filling its idle time cost it nothing.
        lim = NOISE_LIMIT * r["measured_s"]
        if r["other_cpu_seconds_on_server_cpu"] > lim or r["client_runqueue_wait_s"] > lim:
            ctx.note(f"{r['side']} run {r['run']}: noisy - other processes used "
                     f"{r['other_cpu_seconds_on_server_cpu']:.2f} CPU-s on the server's CPU, wrk waited "
                     f"{r['client_runqueue_wait_s']:.2f} s for its CPU, during the {r['measured_s']:.0f} s run")
    if creates:
        _print_creates(a, creates)
    if queries:
        _print_queries(a, queries, qratios)
    _print_targets(targets)

    headline = {}
    top = str(max(a.levels))
    for peer in ("pocketbase-normal", "pocketbase-full"):
        r = (creates.get(top) or {}).get("ratios", {}).get(peer)
        if r:
            key = peer.replace("pocketbase-", "pocketbase_")
            headline[f"docket_vs_{key}_creates_ratio"] = r["rps"]["median"]
            headline[f"docket_vs_{key}_creates_ratio_range"] = [r["rps"]["min"], r["rps"]["max"]]
            headline[f"docket_vs_{key}_create_p99_ratio"] = r["p99"]["median"]
    headline["headline_connections"] = int(top)
    headline["queries"] = qratios
    headline["convention"] = ("throughput docket/pocketbase, latency pocketbase/docket; > 1.0 = Docket better; "
                              "creates: median of per-pair ratios; queries: one run per side")
    return {
        "description": SUMMARY,
        "durability": DURABILITY,
        "targets": targets,
        "ratios": headline,
        "figures": {"creates": creates, "queries": {s: {side: {k: v for k, v in r.items()}
                                                         for side, r in sides.items()}
                                                     for s, sides in queries.items()}},
        "queries_defined": [{"name": n, "docket": d, "pocketbase_filter": pf, "pocketbase_sort": ps, "what": w}
                            for n, d, pf, ps, w in QUERIES],
        "data_set": {"generator": "bench/lib/taskgen.py (same bodies on both sides)", "now": ctx.now,
                     "common_word": taskgen.COMMON_WORD, "rare_word": taskgen.RARE_WORD},
        "docket_binary": {k: v for k, v in ctx.docket.items() if k != "path"} if ctx.docket else None,
        "docket_probe": probe,
        "runs": runs,
    }
