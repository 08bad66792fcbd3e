"""ws: WebSocket fan-out latency and idle connection memory, Docket vs Centrifugo, same run (issue 5).

Sides (one server alive at a time, each started fresh, pinned to --server-cpu; the load client
bench/wsload pinned to --client-cpu):
  docket      zig-out/bin/docket: GET /api/v1/ws; a write is POST /api/v1/tasks, durable (event log,
              fdatasync) and projected before its event goes out.
  centrifugo  Centrifugo v5 (bench/centrifugo pins it; built from its Go module at run time), memory
              engine, personal channel "#<user>" subscribed server-side; a write is its HTTP publish
              API (in memory, nothing on disk).

Both sides get the same users: user ids and per-device connections come from one list (Docket's
accounts are made once by sign-up and kept as a template data dir in bench/work/ws-users-*/,
because each sign-up costs a 600,000-iteration PBKDF2; tokens are forged with the data dir's
jwt-secret). Centrifugo's tokens are HS256 JWTs with the same ids as `sub`.

Part 1, fan-out: for each round, each client count (--clients), each side: fresh server, N
clients connected (--devices per user), then for each rate (--rates) a warm-up and a measured
run of writes at that fixed rate, round-robin over the users; every client of the written user
must receive it. Latency from the write's HTTP answer (and from its start) to each delivery;
delivered/expected must be 1.0; server CPU per 1k deliveries.
Part 2, idle memory: for each round, each side: fresh server; connections are added level by
level (--idle-levels) by several client processes on distinct loopback source addresses
(127.0.0.2, .3, ...), and the server's VmRSS is read once they are all up and settled. A
least-squares line gives KiB per connection and the projection to 100,000.

RLIMIT_NOFILE: this machine's hard limit is 20,000 (no CAP_SYS_RESOURCE to raise it), so one
server process cannot hold 100,000 sockets; idle levels stop below it and 100k is a projection.
"""

import json
import math
import os
import re
import resource
import secrets
import shutil
import subprocess
import threading
import time

from bench.lib import env, httpjson, procs, report, stats
from bench.lib.report import fmt

NAME = "ws"
SUMMARY = ("WebSocket fan-out (publish-to-delivery latency at 1k/10k clients, 200/1000 writes/s) and "
           "idle memory per connection: Docket vs Centrifugo")

HOST = "127.0.0.1"
WSLOAD_SRC = os.path.join(env.BENCH_DIR, "wsload")
WSLOAD_CACHE = os.path.join(env.WORK_DIR, "wsload")
CF_SRC = os.path.join(env.BENCH_DIR, "centrifugo")
CF_CACHE = os.path.join(env.WORK_DIR, "centrifugo")
CF_MODULE = "github.com/centrifugal/centrifugo/v5"
USERS_CACHE_PREFIX = os.path.join(env.WORK_DIR, "ws-users-")  # + user count: a Docket data dir + users.json
USER_PASSWORD = "bench-password-1234"
SIDES = ("docket", "centrifugo")
TARGET_P99_MS = 5.0
TARGET_P99_CLIENTS = 10000
TARGET_IDLE_CONNS = 100_000
TARGET_IDLE_BYTES = 1 << 30
TOKEN_TTL_S = 6 * 3600
NOISE_LIMIT = 0.03          # other processes' share of a pinned CPU above which a run is noted
IDLE_FD_MARGIN = 200        # fds a server needs beside its connections (listen, log, db, metrics)
MARKER = "wsb-0000000000"   # wsload's write marker; the write id replaces the digits


def add_arguments(p):
    p.add_argument("--clients", default="1000,10000", help="connected clients per fan-out run (default 1000,10000)")
    p.add_argument("--rates", default="200,1000", help="writes per second, each measured on the same clients "
                                                       "(default 200,1000)")
    p.add_argument("--devices", type=int, default=4, help="connections per user (default 4)")
    p.add_argument("--duration", type=float, default=10, help="measured seconds per rate (default 10)")
    p.add_argument("--warmup", type=float, default=2, help="unmeasured seconds of writes before each (default 2)")
    p.add_argument("--rounds", type=int, default=2, help="interleaved fan-out rounds (default 2)")
    p.add_argument("--writers", type=int, default=64, help="writes in flight at most (default 64)")
    p.add_argument("--message-bytes", type=int, default=1024,
                   help="target size of one delivered Docket event message (default 1024)")
    p.add_argument("--idle-levels", default="0,2000,5000,10000,18000",
                   help="idle connection counts, ascending (default 0,2000,5000,10000,18000)")
    p.add_argument("--idle-rounds", type=int, default=2, help="interleaved idle rounds (default 2)")
    p.add_argument("--per-process", type=int, default=5000, help="idle connections per client process (5000)")
    p.add_argument("--settle", type=float, default=3, help="seconds between the last handshake and reading RSS (3)")
    p.add_argument("--only", choices=SIDES, default=None, help="measure one system only (no ratios)")
    p.add_argument("--skip-fanout", action="store_true", help="leave out part 1")
    p.add_argument("--skip-idle", action="store_true", help="leave out part 2")
    p.add_argument("--build", action="store_true", help="run .ci/do build first (default: only if missing)")
    p.add_argument("--build-ref", metavar="REF", default=None, help="measure a clean build of git REF")
    p.add_argument("--docket-bin", metavar="PATH", default=None, help="measure this docket binary")
    p.add_argument("--server-cpu", type=int, default=0, help="CPU the server is pinned to (default 0)")
    p.add_argument("--client-cpu", type=int, default=1, help="CPU the load client is pinned to (default 1)")
    p.add_argument("--nice", type=int, default=-19, help="nice for servers and clients (default -19; needs root)")
    p.add_argument("--wait-quiet", type=float, default=60,
                   help="wait up to this many seconds in total for the CPUs to be idle before runs (default 60)")


def _ints(text):
    return [int(x) for x in str(text).split(",") if x.strip()]


def _settings(a):
    if a.quick:
        a.clients, a.rates, a.duration, a.warmup, a.rounds = "200", "200", 3, 1, 1
        a.idle_levels, a.idle_rounds, a.per_process, a.settle = "0,400,1000", 1, 500, 1
        a.wait_quiet = min(a.wait_quiet, 10)
    a.client_list = _ints(a.clients)
    a.rate_list = [float(x) for x in str(a.rates).split(",") if x.strip()]
    a.idle_list = _ints(a.idle_levels)
    if not a.client_list or not a.rate_list or a.rounds < 1 or a.idle_rounds < 1 or a.devices < 1:
        raise SystemExit("bench ws: need client counts, rates, --rounds/--idle-rounds >= 1 and --devices >= 1")
    if a.idle_list != sorted(a.idle_list):
        raise SystemExit("bench ws: --idle-levels must be ascending")
    if a.per_process % a.devices:
        raise SystemExit("bench ws: --per-process must be a multiple of --devices")
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    a.nofile_hard = hard
    top = max(a.idle_list + a.client_list)
    if hard != resource.RLIM_INFINITY and top + IDLE_FD_MARGIN > hard:
        raise SystemExit(f"bench ws: {top} connections need more than this machine's RLIMIT_NOFILE hard limit "
                         f"({hard}) allows one server process; lower --idle-levels/--clients")
    a.users_needed = math.ceil(max(a.client_list) / a.devices)


# ---- builds ------------------------------------------------------------------------------------

def _go():
    go = shutil.which("go") or "/usr/local/go/bin/go"
    if not os.access(go, os.X_OK):
        raise SystemExit("bench ws: `go` not found; wsload and Centrifugo are built from Go modules at run time")
    return go


def _newest(root):
    return max(os.path.getmtime(os.path.join(root, f)) for f in os.listdir(root)
               if f.endswith((".go", ".mod", ".sum")))


def _go_build(ctx, what, src, cache, name, target=".", ldflags=None, version_check=None):
    """go build (cached in bench/work/ while the sources are unchanged and `version_check`, an
    (argv tail, expected substring) pair, still matches); returns a copy in the run dir."""
    go = _go()
    os.makedirs(cache, exist_ok=True)
    binary = os.path.join(cache, name)
    stale = not os.access(binary, os.X_OK) or os.path.getmtime(binary) < _newest(src)
    if not stale and version_check:
        stale = version_check[1] not in (env.tool_version([binary] + version_check[0]) or "")
    if stale:
        env.log(f"==> building {what} with the machine's go")
        argv = [go, "build", "-trimpath"] + (["-ldflags", ldflags] if ldflags else []) + ["-o", binary, target]
        e = dict(os.environ, GOFLAGS="-mod=mod", CGO_ENABLED="0")
        r = subprocess.run(argv, cwd=src, env=e, capture_output=True, text=True, timeout=900)
        ctx.command(f"cd {os.path.relpath(src, env.ROOT)} && GOFLAGS=-mod=mod CGO_ENABLED=0 " + " ".join(argv),
                    f"build {what}")
        if r.returncode != 0:
            raise RuntimeError(f"go build of {what} failed:\n{r.stdout}\n{r.stderr}")
    dst = os.path.join(ctx.work_dir, name)
    shutil.copy2(binary, dst)
    return dst


def _cf_version():
    with open(os.path.join(CF_SRC, "go.mod")) as f:
        m = re.search(r"^\s*" + re.escape(CF_MODULE) + r"\s+(v\S+)", f.read(), re.M)
    if not m:
        raise SystemExit(f"bench ws: bench/centrifugo/go.mod does not require {CF_MODULE}")
    return m.group(1)


# ---- users: one Docket template data dir, tokens for both sides ---------------------------------

def _b64(data):
    import base64
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(secret, claims):
    """An HS256 JWT over exactly these claims (the same construction as tests/integration/api.py)."""
    import hashlib
    import hmac
    signing = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode()) + "." + \
        _b64(json.dumps(claims, separators=(",", ":")).encode())
    return signing + "." + _b64(hmac.new(secret, signing.encode(), hashlib.sha256).digest())


def _docket_token(secret, user_id):
    now = int(time.time())
    return forge(secret, {"sub": user_id, "role": "user", "iat": now, "exp": now + TOKEN_TTL_S,
                          "iss": "docket", "aud": "docket"})


def _template_ok(ctx, path, needed):
    """A cached template is usable when it has enough users and the docket under test accepts a
    forged token of its first and last user (same data dir format)."""
    try:
        with open(os.path.join(path, "users.json")) as f:
            users = json.load(f)
    except (OSError, ValueError):
        return None
    if len(users) < needed:
        return None
    srv = _start_docket(ctx, "template-check", users_dir=path)
    try:
        for u in (users[0], users[needed - 1]):
            c = httpjson.Client(HOST, srv.port, token=_docket_token(srv.secret, u["id"]))
            status, _, doc, _ = c.request("GET", "/api/v1/me")
            c.close()
            if status != 200 or not isinstance(doc, dict) or doc.get("id") != u["id"]:
                ctx.note(f"cached users template {os.path.relpath(path, env.ROOT)} refused by this docket "
                         f"({status}); rebuilding it")
                return None
    finally:
        _stop(ctx, srv)
    return users


def _build_template(ctx, count):
    """Sign up `count` users on a fresh Docket (4 at a time: the server hashes on its thread pool)
    and keep its data dir; ~0.3 s per user on 2 CPUs."""
    path = USERS_CACHE_PREFIX + str(count)
    tmp = path + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    port = procs.free_port(HOST)
    data = os.path.join(tmp, "data")
    argv = [ctx.docket["path"], "--listen", f"{HOST}:{port}", "--data-dir", data]
    proc = procs.Proc("docket-template", argv, log_path=os.path.join(tmp, "docket.log"))
    ctx.command(proc.command, f"docket for signing up {count} users (template, cached)")
    print(f"  building the users template: {count:,} sign-ups (one-time, cached in "
          f"{os.path.relpath(path, env.ROOT)}; ~{count * 0.3 / 60:.0f} min)", flush=True)
    users = [None] * count
    errors = []
    try:
        proc.wait_port(HOST, port, timeout=60)
        nxt = {"i": 0}
        lock = threading.Lock()

        def worker():
            c = httpjson.Client(HOST, port)
            while True:
                with lock:
                    i = nxt["i"]
                    nxt["i"] += 1
                if i >= count or errors:
                    break
                try:
                    doc = c.json("POST", "/api/v1/auth/signup",
                                 {"username": f"wsbench{i:06d}", "password": USER_PASSWORD}, expect=(201,))
                    users[i] = {"name": f"wsbench{i:06d}", "id": doc["user"]["id"]}
                except Exception as e:  # noqa: BLE001 - reported below
                    errors.append(str(e))
                    break
                if i and i % 250 == 0:
                    print(f"    {i:,} users", flush=True)
            c.close()

        threads = [threading.Thread(target=worker) for _ in range(4)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise RuntimeError(f"sign-up failed: {errors[0]}")
        secs = time.monotonic() - t0
    finally:
        proc.stop()
    with open(os.path.join(tmp, "users.json"), "w") as f:
        json.dump(users, f)
    with open(os.path.join(tmp, "meta.json"), "w") as f:
        json.dump({"count": count, "built_with": ctx.docket["version"], "signup_seconds": round(secs, 1),
                   "date_utc": report.utc_now()}, f)
    shutil.rmtree(path, ignore_errors=True)
    os.rename(tmp, path)
    return path, users, secs


def _users(ctx, needed):
    """(template dir, users) with at least `needed` users: the smallest cached template that fits
    and works with this docket, else a new one of `needed` users."""
    cached = []
    for d in os.listdir(env.WORK_DIR):
        full = os.path.join(env.WORK_DIR, d)
        if d.startswith(os.path.basename(USERS_CACHE_PREFIX)) and d[len(os.path.basename(USERS_CACHE_PREFIX)):].isdigit():
            cached.append((int(d.rsplit("-", 1)[1]), full))
    for count, path in sorted(cached):
        if count >= needed:
            users = _template_ok(ctx, path, needed)
            if users:
                with open(os.path.join(path, "meta.json")) as f:
                    meta = json.load(f)
                return path, users, dict(meta, cached=True)
    with ctx.phase("users_template"):
        path, users, secs = _build_template(ctx, needed)
    with open(os.path.join(path, "meta.json")) as f:
        return path, users, dict(json.load(f), cached=False)


def _write_users(ctx, name, rows):
    path = os.path.join(ctx.work_dir, name)
    with open(path, "w") as f:
        for uid, tok in rows:
            f.write(f"{uid}\t{tok}\n")
    return path


# ---- servers -----------------------------------------------------------------------------------

class Server:
    """One started server: side, proc, port, and what its clients need (secret / api key)."""

    def __init__(self, side, proc, port, data_dir):
        self.side, self.proc, self.port, self.data_dir = side, proc, port, data_dir
        self.secret = self.api_key = None
        self.start_to_listen_s = None


def _docket_argv(ctx, port, data_dir, max_conns):
    # Generous limits: every connection of the run fits; pings far apart so idle connections
    # stay idle (both sides: one hour).
    return [ctx.docket["path"], "--listen", f"{HOST}:{port}", "--data-dir", data_dir,
            "--max-connections", str(max_conns), "--ws-max-connections", str(max_conns),
            "--ws-ping-interval-ms", "3600000", "--ws-pong-timeout-ms", "60000"]


def _start_docket(ctx, tag, users_dir=None):
    a = ctx.args
    port = procs.free_port(HOST)
    data_dir = os.path.join(ctx.work_dir, f"docket-{tag}")
    shutil.rmtree(data_dir, ignore_errors=True)
    shutil.copytree(os.path.join(users_dir or ctx.users_dir, "data"), data_dir)
    max_conns = a.nofile_hard - IDLE_FD_MARGIN if a.nofile_hard != resource.RLIM_INFINITY else 100_000
    argv = _docket_argv(ctx, port, data_dir, max_conns)
    proc = procs.Proc("docket", argv, cpu=a.server_cpu, nice=a.nice,
                      log_path=os.path.join(ctx.work_dir, f"docket-{tag}.log"))
    ctx.command(proc.command, f"docket server ({tag})")
    srv = Server("docket", proc, port, data_dir)
    try:
        srv.start_to_listen_s = round(proc.wait_port(HOST, port, timeout=60), 3)
        with open(os.path.join(data_dir, "jwt-secret"), "rb") as f:
            srv.secret = f.read()
    except BaseException:
        proc.stop()
        raise
    return srv


def _cf_config(port, secret, api_key):
    """Centrifugo's configuration, generated per run: memory engine (the default), each user's
    connections subscribed server-side to its personal channel "#<user>", the HTTP API with a
    key, pings an hour apart like Docket's, no usage reports."""
    return {"address": HOST, "port": str(port), "token_hmac_secret_key": secret, "api_key": api_key,
            "user_subscribe_to_personal": True, "ping_interval": "3600s", "pong_timeout": "60s",
            "usage_stats_disable": True, "health": True, "log_level": "info"}


def _start_centrifugo(ctx, tag):
    a = ctx.args
    port = procs.free_port(HOST)
    d = os.path.join(ctx.work_dir, f"centrifugo-{tag}")
    os.makedirs(d, exist_ok=True)
    conf = _cf_config(port, ctx.cf_secret.decode(), ctx.cf_api_key)
    conf_path = os.path.join(d, "config.json")
    with open(conf_path, "w") as f:
        json.dump(conf, f, indent=1)
    proc = procs.Proc("centrifugo", [ctx.cf_bin, "--config", conf_path], cwd=d, cpu=a.server_cpu, nice=a.nice,
                      log_path=os.path.join(ctx.work_dir, f"centrifugo-{tag}.log"))
    ctx.command(proc.command, f"centrifugo server ({tag})")
    srv = Server("centrifugo", proc, port, d)
    srv.secret, srv.api_key = ctx.cf_secret, ctx.cf_api_key
    try:
        srv.start_to_listen_s = round(proc.wait_port(HOST, port, timeout=60), 3)
        c = httpjson.Client(HOST, port)
        c.json("GET", "/health", expect=(200,))
        c.close()
    except BaseException:
        proc.stop()
        raise
    return srv


def _start(ctx, side, tag):
    return _start_docket(ctx, tag) if side == "docket" else _start_centrifugo(ctx, tag)


def _stop(ctx, srv):
    rc = srv.proc.stop()
    lines = [l for l in srv.proc.log_text().splitlines()
             if re.search(r"level=(warn|error)|panic|fatal|\"level\":\"(error|warn)", l)][:20]
    if not ctx.args.keep_work:
        shutil.rmtree(srv.data_dir, ignore_errors=True)
    return rc, lines


def _users_file(ctx, srv):
    """The TSV wsload reads (user id, token), for this server's secret; written once per side."""
    key = (srv.side, srv.secret)
    if key not in ctx.users_files:
        rows = []
        for u in ctx.users:
            if srv.side == "docket":
                rows.append((u["id"], _docket_token(srv.secret, u["id"])))
            else:
                now = int(time.time())
                rows.append((u["id"], forge(srv.secret, {"sub": u["id"], "iat": now, "exp": now + TOKEN_TTL_S})))
        ctx.users_files[key] = _write_users(ctx, f"users-{srv.side}-{len(ctx.users_files)}.tsv", rows)
    return ctx.users_files[key]


def _server_conns(srv):
    """Open WebSocket connections as the server counts them (Docket: /metrics gauge; Centrifugo:
    the info API's num_clients), or None."""
    try:
        c = httpjson.Client(HOST, srv.port)
        if srv.side == "docket":
            status, _, body, _ = c.request("GET", "/metrics")
            c.close()
            text = body.decode() if isinstance(body, bytes) else str(body)
            m = re.search(r"^docket_ws_connections(?:\{[^}]*\})?\s+(\d+)", text, re.M)
            return int(m.group(1)) if m else None
        doc = c.json("POST", "/api/info", {}, headers={"X-API-Key": srv.api_key})
        c.close()
        return sum(n.get("num_clients", 0) for n in doc.get("result", {}).get("nodes", []))
    except Exception:  # noqa: BLE001 - a missing figure is reported as None
        return None


# ---- wsload ------------------------------------------------------------------------------------

def _wsload_argv(ctx, mode, srv, conns, **kw):
    argv = [ctx.wsload_bin, mode, "-proto", srv.side, "-addr", f"{HOST}:{srv.port}",
            "-users", _users_file(ctx, srv), "-devices", str(ctx.args.devices), "-conns", str(conns)]
    for k, v in kw.items():
        if v is not None:
            argv += [f"-{k.replace('_', '-')}", str(v)]
    return argv


def _probe(ctx):
    """Fail early when Docket's WebSocket does not work yet; measure one delivered event and size
    the description so a delivered message is about --message-bytes. Returns the event (the
    Centrifugo payload: the same JSON object, so both sides deliver the same bytes)."""
    a = ctx.args
    srv = _start_docket(ctx, "probe")
    try:
        info = {}
        pad = 600
        for attempt in (1, 2):
            dump = os.path.join(ctx.work_dir, f"probe-{attempt}.json")
            argv = _wsload_argv(ctx, "fanout", srv, a.devices, rates=20, duration=1, warmup=0, drain=3,
                                pad=pad, server_pid=srv.proc.pid, dump=dump, writers=4)
            r = procs.run_measured(argv, cpu=a.client_cpu, timeout=120)
            ctx.command(r["command"], f"docket WebSocket probe {attempt}")
            try:
                doc = json.loads(r["stdout"].strip().splitlines()[-1])
            except (ValueError, IndexError):
                doc = {}
            ph = (doc.get("phases") or [{}])[0]
            if doc.get("connected") != a.devices or ph.get("delivered_ratio") != 1 or not os.path.exists(dump):
                raise RuntimeError("Docket's WebSocket fan-out does not work in this binary "
                                   f"({ctx.docket['version']}): {json.dumps(doc)[:800]} {r['stderr'][-800:]}")
            with open(dump) as f:
                raw = f.read()
            info[f"attempt_{attempt}"] = {"pad": pad, "message_bytes": len(raw)}
            if attempt == 1:
                pad = max(0, pad + a.message_bytes - len(raw))
        msg = json.loads(raw)
        if msg.get("type") != "event" or not isinstance(msg.get("event"), dict):
            raise RuntimeError(f"Docket's WebSocket sent an unexpected message: {raw[:300]}")
        event = msg["event"]
        payload = re.sub(r"wsb-\d{10}", MARKER, json.dumps(event, separators=(",", ":")))
        info.update(pad=pad, message_bytes=len(raw), example_message=re.sub(r"wsb-\d{10}", MARKER, raw))
        return pad, payload, info
    finally:
        _stop(ctx, srv)


def _synthetic_payload(a):
    """--only centrifugo: no Docket event to copy; a CloudEvent-shaped object of the same size."""
    ev = {"specversion": "1.0", "id": "0" * 26, "source": "/docket", "type": "task.created",
          "time": "2026-01-01T00:00:00.000Z", "subject": "0" * 26, "datacontenttype": "application/json",
          "userid": "0" * 26, "sequence": 1, "correlationid": "0" * 26,
          "data": {"title": MARKER, "description": ""}}
    base = len(json.dumps({"type": "event", "event": ev}, separators=(",", ":")))
    ev["data"]["description"] = "x" * max(0, a.message_bytes - base)
    return json.dumps(ev, separators=(",", ":"))


# ---- part 1: fan-out ---------------------------------------------------------------------------

def _fanout_run(ctx, side, clients, rnd, run_id):
    a = ctx.args
    procs.wait_quiet_before_run(ctx, f"before fan-out run {run_id}")
    srv = _start(ctx, side, f"f{run_id}")
    rec = {"side": side, "clients": clients, "round": rnd, "run": run_id, "server_command": srv.proc.command,
           "start_to_listen_s": srv.start_to_listen_s}
    try:
        kw = dict(rates=",".join(f"{r:g}" for r in a.rate_list), duration=a.duration, warmup=a.warmup,
                  writers=a.writers, server_pid=srv.proc.pid, drain=5)
        if side == "docket":
            kw["pad"] = ctx.pad
        else:
            kw.update(payload=ctx.cf_payload_path, api_key=srv.api_key)
        argv = _wsload_argv(ctx, "fanout", srv, clients, **kw)
        budget = 120 + len(a.rate_list) * (a.warmup + a.duration + 10)
        times0 = procs.cpu_times({a.server_cpu, a.client_cpu})
        cpu0 = srv.proc.cpu_seconds()
        r = procs.run_measured(argv, cpu=a.client_cpu, nice=a.nice, timeout=budget)
        cpu_delta = procs.cpu_times_delta(times0, procs.cpu_times({a.server_cpu, a.client_cpu}))
        server_cpu = srv.proc.cpu_seconds() - cpu0
        ctx.command(r["command"], f"fan-out (run {run_id}, {side}, {clients} clients)")
        rec["mem_after"] = srv.proc.memory_kib()
        rec["server_ws_connections_after"] = _server_conns(srv)
        alive = srv.proc.alive()
    finally:
        rc, log_lines = _stop(ctx, srv)
    try:
        doc = json.loads(r["stdout"].strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise RuntimeError(f"wsload fanout ({side}, {clients}) failed ({r['returncode']}): {r['stderr'][-1500:]}")
    wall = r["wall_seconds"]
    rec.update({
        "wsload": {k: v for k, v in doc.items() if k != "phases"}, "phases": doc.get("phases", []),
        "wall_s": round(wall, 2), "client_cpu_s": round(r["cpu_seconds"], 3),
        "client_runqueue_wait_s": round(r["runqueue_wait_seconds"] or 0.0, 3),
        "server_cpu_s_whole_run": round(server_cpu, 3),
        # CPU time other processes took on the pinned CPUs over the whole client run
        "other_cpu_seconds_on_server_cpu": round(max(cpu_delta[a.server_cpu]["busy"] - server_cpu, 0.0), 3),
        "other_cpu_seconds_on_client_cpu": round(max(cpu_delta[a.client_cpu]["busy"] - r["cpu_seconds"], 0.0), 3),
        "alive_after": alive, "exit_code": rc, "log_warn_error_lines": log_lines,
        "wsload_returncode": r["returncode"], "wsload_stderr": r["stderr"][-2000:],
    })
    return rec


def _fanout(ctx):
    a = ctx.args
    runs, n = [], 0
    sides = [s for s in SIDES if a.only in (None, s)]
    total = a.rounds * len(a.client_list) * len(sides)
    for rnd in range(1, a.rounds + 1):
        for clients in a.client_list:
            for side in sides:
                n += 1
                r = _fanout_run(ctx, side, clients, rnd, n)
                runs.append(r)
                for ph in r["phases"]:
                    ad, sd = ph["ack_to_delivery_ms"], ph["start_to_delivery_ms"]
                    print(f"  [{n:2}/{total}] {side:10} {clients:6,} clients {ph['rate']:6g}/s: "
                          f"ack->delivery p50 {fmt(ad['p50'], 3)} p99 {fmt(ad['p99'], 3)} max {fmt(ad['max'], 2)} ms  "
                          f"start->delivery p99 {fmt(sd['p99'], 3)} ms  delivered {ph['delivered']:,}/{ph['expected']:,}  "
                          f"cpu/1k {fmt(ph.get('server_cpu_s_per_1k_deliveries'), 3)} s  "
                          f"write errors {ph['write_errors']}", flush=True)
                if r["wsload"].get("connect_failures"):
                    ctx.note(f"{side} run {n}: {r['wsload']['connect_failures']} of {clients} clients failed to "
                             f"connect: {r['wsload'].get('connect_errors')}")
    return runs


def _fanout_summary(a, runs):
    out = {}
    for clients in a.client_list:
        for rate in a.rate_list:
            key = f"{clients}@{rate:g}"
            level = {"clients": clients, "rate": rate}
            per_side = {}
            for side in SIDES:
                phs = [ph for r in runs if r["side"] == side and r["clients"] == clients
                       for ph in r["phases"] if ph["rate"] == rate]
                if not phs:
                    continue
                per_side[side] = phs
                s = {}
                for fig, sub in (("ack_to_delivery_ms", ("p50", "p90", "p99", "p99_9", "max")),
                                 ("start_to_delivery_ms", ("p50", "p99", "max")), ("write_ms", ("p50", "p99")),
                                 ("writer_lateness_ms", ("p99", "max"))):
                    for k in sub:
                        s[f"{fig.replace('_ms', '')}_{k}_ms"] = stats.median([ph[fig][k] for ph in phs])
                s["ack_to_delivery_p99_ms_range"] = stats.spread([ph["ack_to_delivery_ms"]["p99"] for ph in phs])
                s["ack_to_delivery_max_ms_worst"] = max((ph["ack_to_delivery_ms"]["max"] or 0) for ph in phs)
                s["delivered"] = sum(ph["delivered"] for ph in phs)
                s["expected"] = sum(ph["expected"] for ph in phs)
                s["delivered_ratio"] = s["delivered"] / s["expected"] if s["expected"] else None
                s["delivered_ratio_min"] = min((ph["delivered_ratio"] or 0) for ph in phs)
                s["delivered_before_ack_share"] = (sum(ph["delivered_before_ack"] for ph in phs) /
                                                   max(1, s["delivered"]))
                for k in ("server_cpu_s_per_1k_deliveries", "achieved_rate", "mean_message_bytes", "client_cpu_s",
                          "wall_s"):
                    s[k] = stats.median([ph.get(k) for ph in phs])
                s["client_cpu_util"] = (s["client_cpu_s"] / s["wall_s"]) if s["wall_s"] else None
                for k in ("write_errors", "duplicates", "seq_errors", "misrouted", "unmatched"):
                    s[k] = sum(ph.get(k, 0) for ph in phs)
                s["runs"] = len(phs)
                level[side] = s
            if "docket" in per_side and "centrifugo" in per_side:
                d, c = per_side["docket"], per_side["centrifugo"]
                pos = lambda v: v if v is not None and v > 0 else None  # noqa: E731 - ratios of positive figures only
                level["ratios"] = {
                    "ack_to_delivery_p99": stats.paired_ratio([pos(x["ack_to_delivery_ms"]["p99"]) for x in d],
                                                              [pos(x["ack_to_delivery_ms"]["p99"]) for x in c], False),
                    "start_to_delivery_p50": stats.paired_ratio([x["start_to_delivery_ms"]["p50"] for x in d],
                                                                [x["start_to_delivery_ms"]["p50"] for x in c], False),
                    "start_to_delivery_p99": stats.paired_ratio([x["start_to_delivery_ms"]["p99"] for x in d],
                                                                [x["start_to_delivery_ms"]["p99"] for x in c], False),
                    "server_cpu_per_1k_deliveries": stats.paired_ratio(
                        [x.get("server_cpu_s_per_1k_deliveries") for x in d],
                        [x.get("server_cpu_s_per_1k_deliveries") for x in c], False),
                }
            out[key] = level
    return out


# ---- part 2: idle memory -----------------------------------------------------------------------

def _ready_line(proc, key, timeout):
    """Poll a client's log for its JSON line holding `key`; fail if it exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for line in proc.log_text().splitlines():
            if line.startswith("{") and f'"{key}"' in line:
                try:
                    return json.loads(line)
                except ValueError:
                    pass
        if not proc.alive():
            raise RuntimeError(f"wsload idle exited ({proc.popen.returncode}): {proc.log_text()[-1500:]}")
        time.sleep(0.1)
    raise RuntimeError(f"wsload idle: no {key!r} line within {timeout} s: {proc.log_text()[-1500:]}")


def _idle_round(ctx, side, rnd, run_id):
    a = ctx.args
    procs.wait_quiet_before_run(ctx, f"before idle run {run_id}")
    srv = _start(ctx, side, f"i{run_id}")
    points, clients, src_n = [], [], 0
    rec = {"side": side, "round": rnd, "run": run_id, "server_command": srv.proc.command}
    try:
        have = 0
        for level in a.idle_list:
            t0 = time.monotonic()
            new = []
            while have < level:
                n = min(a.per_process, level - have)
                src = f"127.0.0.{2 + src_n}"
                src_n += 1
                argv = _wsload_argv(ctx, "idle", srv, n, user_offset=have // a.devices, src=src,
                                    dial_concurrency=64)
                p = procs.Proc(f"wsload-idle-{src}", argv, cpu=a.client_cpu, nice=a.nice,
                               log_path=os.path.join(ctx.work_dir, f"idle-{run_id}-{src}.log"))
                ctx.command(p.command, f"idle clients ({side}, run {run_id}, {n} from {src})")
                new.append(p)
                have += n
            readies = [_ready_line(p, "ready", 300) for p in new]
            clients += new
            connect_s = time.monotonic() - t0
            time.sleep(a.settle)
            mem = srv.proc.memory_kib()
            fds = len(os.listdir(f"/proc/{srv.proc.pid}/fd"))
            counted = _server_conns(srv)
            deadline = time.monotonic() + 10  # Centrifugo refreshes its node info every few seconds
            while counted != level and time.monotonic() < deadline:
                time.sleep(0.5)
                counted = _server_conns(srv)
            failed = sum(r["failed"] for r in readies)
            pt = {"connections": level, "rss_kib": mem["rss_kib"], "rss_peak_kib": mem["rss_peak_kib"],
                  "server_fds": fds, "server_counted": counted, "connect_failures": failed,
                  "connect_s": round(connect_s, 2), "client_processes": len(clients)}
            points.append(pt)
            print(f"    {side:10} round {rnd}: {level:6,} idle connections  RSS {mem['rss_kib']:9,} KiB  "
                  f"fds {fds:6,}  server counts {counted}  failed {failed}  ({connect_s:.1f} s)", flush=True)
            if failed or (counted is not None and counted != level):
                ctx.note(f"{side} idle run {run_id} at {level}: server counts {counted} connections, "
                         f"{failed} failed: {[r.get('errors') for r in readies if r['failed']][:2]}")
        rec["alive_after"] = srv.proc.alive()
    finally:
        for p in clients:
            p.stop()
        rec["exit_code"], rec["log_warn_error_lines"] = _stop(ctx, srv)
    rec["points"] = points
    rec["fit"] = _fit(points)
    return rec


def _fit(points):
    """Least squares RSS = intercept + slope * connections, over the points with connections."""
    xs = [p["connections"] for p in points if p["rss_kib"] is not None]
    ys = [p["rss_kib"] for p in points if p["rss_kib"] is not None]
    if len(xs) < 2 or len(set(xs)) < 2:
        return None
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx
    icpt = my - slope * mx
    ss_tot = sum((y - my) ** 2 for y in ys)
    ss_res = sum((y - (icpt + slope * x)) ** 2 for x, y in zip(xs, ys))
    proj = icpt + slope * TARGET_IDLE_CONNS
    return {"slope_kib_per_conn": round(slope, 3), "slope_bytes_per_conn": round(slope * 1024),
            "intercept_kib": round(icpt), "r2": round(1 - ss_res / ss_tot, 5) if ss_tot else None,
            "projected_100k_kib": round(proj), "projected_100k_gib": round(proj / 1048576, 3)}


def _idle(ctx):
    a = ctx.args
    runs, n = [], 0
    sides = [s for s in SIDES if a.only in (None, s)]
    for rnd in range(1, a.idle_rounds + 1):
        for side in sides:
            n += 1
            r = _idle_round(ctx, side, rnd, n)
            runs.append(r)
            f = r["fit"] or {}
            print(f"  [{n:2}/{a.idle_rounds * len(sides)}] {side:10} idle: {fmt(f.get('slope_bytes_per_conn'))} B per "
                  f"connection, 100k projected {fmt(f.get('projected_100k_gib'), 3)} GiB", flush=True)
    return runs


def _idle_summary(a, runs):
    out = {}
    for side in SIDES:
        rs = [r for r in runs if r["side"] == side and r["fit"]]
        if not rs:
            continue
        out[side] = {
            "slope_bytes_per_conn": stats.median([r["fit"]["slope_bytes_per_conn"] for r in rs]),
            "slope_bytes_per_conn_range": stats.spread([r["fit"]["slope_bytes_per_conn"] for r in rs]),
            "intercept_kib": stats.median([r["fit"]["intercept_kib"] for r in rs]),
            "projected_100k_gib": stats.median([r["fit"]["projected_100k_gib"] for r in rs]),
            "r2_min": min(r["fit"]["r2"] or 0 for r in rs),
            "rss_kib_by_level": {str(lv): stats.median([p["rss_kib"] for r in rs for p in r["points"]
                                                       if p["connections"] == lv]) for lv in a.idle_list},
            "max_connections_held": max(p["connections"] for r in rs for p in r["points"]),
            "connect_failures": sum(p["connect_failures"] for r in rs for p in r["points"]),
            "runs": len(rs),
        }
    if "docket" in out and "centrifugo" in out:
        d = [r for r in runs if r["side"] == "docket" and r["fit"]]
        c = [r for r in runs if r["side"] == "centrifugo" and r["fit"]]
        out["ratios"] = {"bytes_per_conn": stats.paired_ratio([r["fit"]["slope_bytes_per_conn"] for r in d],
                                                              [r["fit"]["slope_bytes_per_conn"] for r in c], False)}
        top = str(a.idle_list[-1])
        out["ratios"]["rss_at_top_level"] = stats.ratio(out["docket"]["rss_kib_by_level"][top],
                                                        out["centrifugo"]["rss_kib_by_level"][top], False)
    return out


# ---- summary -----------------------------------------------------------------------------------

def _print_fanout(a, fan):
    rows = []
    for key, lv in fan.items():
        for side in SIDES:
            s = lv.get(side)
            if not s:
                continue
            rows.append([side, fmt(lv["clients"]), f"{lv['rate']:g}", fmt(s["ack_to_delivery_p50_ms"], 3),
                         fmt(s["ack_to_delivery_p99_ms"], 3), fmt(s["ack_to_delivery_max_ms_worst"], 2),
                         fmt(s["start_to_delivery_p50_ms"], 3), fmt(s["start_to_delivery_p99_ms"], 3),
                         fmt(s["write_p50_ms"], 3), fmt(s["write_p99_ms"], 3), f"{s['delivered']:,}/{s['expected']:,}",
                         fmt(s["delivered_ratio"], 4), fmt(s["server_cpu_s_per_1k_deliveries"], 3),
                         fmt(s["mean_message_bytes"], 0), f"{fmt((s['client_cpu_util'] or 0) * 100, 0)}%",
                         s["write_errors"] + s["duplicates"] + s["seq_errors"] + s["misrouted"]])
    print("\nFan-out (medians over rounds; latencies in ms; ack = the write's HTTP answer received):")
    report.table(["side", "clients", "writes/s", "ack->dlv p50", "p99", "max", "start->dlv p50", "p99",
                  "write p50", "p99", "delivered", "ratio", "cpu-s/1k dlv", "msg B", "client cpu", "errors"], rows)
    rrows = []
    for key, lv in fan.items():
        r = lv.get("ratios")
        if not r:
            continue

        def cell(x):
            return f"{fmt(x['median'])} ({fmt(x['min'])}-{fmt(x['max'])})" if x["median"] is not None else "-"
        rrows.append([fmt(lv["clients"]), f"{lv['rate']:g}", cell(r["ack_to_delivery_p99"]),
                      cell(r["start_to_delivery_p50"]), cell(r["start_to_delivery_p99"]),
                      cell(r["server_cpu_per_1k_deliveries"])])
    if rrows:
        print()
        report.table(["clients", "writes/s", "ack->dlv p99 C/D", "start->dlv p50 C/D", "start->dlv p99 C/D",
                      "cpu/1k dlv C/D"], rrows)
        print("(ratios centrifugo/docket: median of per-round ratios, min-max; > 1.0 means Docket is better)")


def _print_idle(a, idle):
    rows = []
    for side in SIDES:
        s = idle.get(side)
        if not s:
            continue
        rows.append([side] + [fmt(round(s["rss_kib_by_level"][str(lv)])) for lv in a.idle_list] +
                    [fmt(round(s["slope_bytes_per_conn"])), fmt(round(s["intercept_kib"])), fmt(s["r2_min"], 4),
                     fmt(s["projected_100k_gib"], 3), s["connect_failures"]])
    print(f"\nIdle connections: server VmRSS in KiB (median over rounds); linear fit; "
          f"RLIMIT_NOFILE hard limit {a.nofile_hard}: 100k is a projection")
    report.table(["side"] + [f"{lv:,} conns" for lv in a.idle_list] +
                 ["B/conn", "intercept KiB", "r2 min", "100k GiB", "failed"], rows)
    r = idle.get("ratios")
    if r:
        x = r["bytes_per_conn"]
        print(f"bytes per connection, centrifugo/docket: {fmt(x['median'])} ({fmt(x['min'])}-{fmt(x['max'])}); "
              f"RSS at {a.idle_list[-1]:,}: {fmt(r['rss_at_top_level'])}")


def _targets(a, fan, idle):
    t = []
    for key, lv in fan.items():
        d = lv.get("docket")
        if d and lv["clients"] >= TARGET_P99_CLIENTS:
            t.append({"target": f"p99 ack->delivery < {TARGET_P99_MS:g} ms at {TARGET_P99_CLIENTS:,} clients",
                      "figure": d["ack_to_delivery_p99_ms"], "where": f"docket, {lv['clients']:,} clients, "
                      f"{lv['rate']:g} writes/s (median of rounds; worst round "
                      f"{fmt(d['ack_to_delivery_p99_ms_range'][1], 3)})",
                      "met": d["ack_to_delivery_p99_ms"] is not None and d["ack_to_delivery_p99_ms"] < TARGET_P99_MS})
    ds = [lv["docket"] for lv in fan.values() if lv.get("docket")]
    if ds:
        worst = min(s["delivered_ratio_min"] for s in ds)
        t.append({"target": "delivered/expected = 1.0", "figure": worst, "where": "docket, worst run",
                  "met": worst == 1.0})
    d = idle.get("docket")
    if d:
        t.append({"target": f"{TARGET_IDLE_CONNS:,} idle connections < 1 GiB", "figure": d["projected_100k_gib"],
                  "where": f"docket, linear projection from 0..{d['max_connections_held']:,} held connections "
                           f"(RLIMIT_NOFILE {a.nofile_hard})",
                  "met": d["projected_100k_gib"] * (1 << 30) < TARGET_IDLE_BYTES})
    return t


def _print_targets(targets):
    if targets:
        print("\nTargets (issue 5):")
        report.table(["target", "figure", "met", "where"],
                     [[x["target"], fmt(x["figure"], 3), {True: "yes", False: "NO", None: "n/a"}[x["met"]],
                       x["where"]] for x in targets])


def _notes(ctx, fan_runs, idle_runs):
    a = ctx.args
    for r in fan_runs:
        for ph in r["phases"]:
            if ph["delivered_ratio"] != 1 or ph["write_errors"] or ph["duplicates"] or ph["seq_errors"] \
                    or ph["misrouted"]:
                ctx.note(f"{r['side']} run {r['run']} at {ph['rate']:g}/s: delivered {ph['delivered']}/{ph['expected']},"
                         f" write errors {ph['write_errors']} {ph['write_error_statuses']}, duplicates "
                         f"{ph['duplicates']}, sequence errors {ph['seq_errors']}, misrouted {ph['misrouted']}")
            if ph.get("achieved_rate") and ph["achieved_rate"] < 0.97 * ph["rate"]:
                ctx.note(f"{r['side']} run {r['run']}: the writer reached {ph['achieved_rate']:.0f}/s of "
                         f"{ph['rate']:g}/s (writes answered too slowly for --writers {a.writers})")
        # Noise: CPU time other processes took on either pinned CPU. (The client's run-queue wait is
        # recorded but not used: Go's runtime threads pinned to one CPU wait for each other there,
        # ~2 s per run on a quiet machine.)
        lim = NOISE_LIMIT * r["wall_s"]
        if r["other_cpu_seconds_on_server_cpu"] > lim or r["other_cpu_seconds_on_client_cpu"] > lim:
            ctx.note(f"{r['side']} run {r['run']}: noisy - other processes used "
                     f"{r['other_cpu_seconds_on_server_cpu']:.2f} CPU-s on the server's CPU and "
                     f"{r['other_cpu_seconds_on_client_cpu']:.2f} on the client's, during {r['wall_s']:.0f} s")
        if r["wsload"].get("ends"):
            ctx.note(f"{r['side']} run {r['run']}: connections ended during the run: {r['wsload']['ends']}")
        if r["exit_code"] not in (0, None):
            ctx.note(f"{r['side']} run {r['run']}: exit code {r['exit_code']} after SIGTERM")
    for r in idle_runs:
        if r["exit_code"] not in (0, None):
            ctx.note(f"{r['side']} idle run {r['run']}: exit code {r['exit_code']} after SIGTERM")


# ---- entry -------------------------------------------------------------------------------------

def run(ctx):
    a = ctx.args
    _settings(a)
    ctx.quiet_waited = 0.0
    ctx.users_files = {}
    with ctx.phase("setup"):
        if a.nice < 0 and os.geteuid() != 0:
            ctx.note(f"not root: cannot use nice {a.nice}; running at the default priority")
            a.nice = 0
        ncpu = os.cpu_count() or 1
        if max(a.server_cpu, a.client_cpu) >= ncpu or a.server_cpu == a.client_cpu:
            raise SystemExit(f"bench ws: need distinct CPUs < {ncpu} for server and client")
    with ctx.phase("build"):
        ctx.wsload_bin = _go_build(ctx, "wsload (bench/wsload)", WSLOAD_SRC, WSLOAD_CACHE, "wsload")
        # Docket is needed even with --only centrifugo: it holds the users (ids) both sides share.
        ctx.docket = env.snapshot_docket(ctx.work_dir, build=a.build, ref=a.build_ref, binary=a.docket_bin)
        if not ctx.docket["matches_head"]:
            ctx.note(f"the docket binary reports {ctx.docket['version']!r}, not built from HEAD "
                     f"{ctx.git['commit']}; pass --build or --build-ref HEAD")
        cf_version = None
        if a.only != "docket":
            cf_version = _cf_version()
            ctx.cf_bin = _go_build(ctx, f"Centrifugo {cf_version} (bench/centrifugo)", CF_SRC, CF_CACHE, "centrifugo",
                                   target=CF_MODULE, ldflags=f"-X {CF_MODULE}/internal/build.Version="
                                                             f"{cf_version.lstrip('v')}",
                                   version_check=(["version"], f"Centrifugo {cf_version}"))
            ctx.cf_secret = secrets.token_hex(32).encode()
            ctx.cf_api_key = secrets.token_hex(16)
    ctx.tools = {"docket": ctx.docket["version"], "go": env.tool_version([_go(), "version"]),
                 "centrifugo": env.tool_version([ctx.cf_bin, "version"]) if a.only != "docket" else None,
                 "centrifugo_module": f"{CF_MODULE} {cf_version}" if cf_version else None,
                 "wsload": "bench/wsload (standard library only)",
                 "taskset": env.tool_version(["taskset", "--version"])}
    with ctx.phase("users"):
        ctx.users_dir, ctx.users, users_meta = _users(ctx, a.users_needed)
        ctx.users = ctx.users[:a.users_needed]
    print(f"users: {len(ctx.users):,} ({a.devices} connections each at {max(a.client_list):,} clients; "
          f"template {os.path.relpath(ctx.users_dir, env.ROOT)}, "
          f"{'cached' if users_meta['cached'] else 'built now'})", flush=True)
    probe = None
    with ctx.phase("verify"):
        if a.only != "centrifugo":
            ctx.pad, payload, probe = _probe(ctx)
            print(f"verified: Docket's WebSocket delivers task events to every device ({probe['message_bytes']} B "
                  f"per message with a {ctx.pad}-char description)", flush=True)
        else:
            ctx.pad, payload = None, _synthetic_payload(a)
        ctx.cf_payload_path = os.path.join(ctx.work_dir, "centrifugo-payload.json")
        with open(ctx.cf_payload_path, "w") as fh:
            fh.write(payload)
    procs.wait_quiet_before_run(ctx, "start")

    fan_runs, fan = [], {}
    if not a.skip_fanout:
        print(f"\nPart 1: fan-out, {a.rounds} round(s) x {a.client_list} clients x rates {a.rate_list}/s, "
              f"{a.warmup:g} s warm-up + {a.duration:g} s each", flush=True)
        with ctx.phase("fanout"):
            fan_runs = _fanout(ctx)
        fan = _fanout_summary(a, fan_runs)
    idle_runs, idle = [], {}
    if not a.skip_idle:
        print(f"\nPart 2: idle connections {a.idle_list}, {a.idle_rounds} round(s)", flush=True)
        with ctx.phase("idle"):
            idle_runs = _idle(ctx)
        idle = _idle_summary(a, idle_runs)
    targets = _targets(a, fan, idle)
    _notes(ctx, fan_runs, idle_runs)
    if fan:
        _print_fanout(a, fan)
    if idle:
        _print_idle(a, idle)
    _print_targets(targets)

    headline = {"convention": "latency, CPU and memory centrifugo/docket; > 1.0 = Docket better; median of "
                              "per-round ratios"}
    for key, lv in fan.items():
        if lv.get("ratios"):
            headline[f"ack_to_delivery_p99_ratio_{key}"] = lv["ratios"]["ack_to_delivery_p99"]["median"]
            headline[f"start_to_delivery_p99_ratio_{key}"] = lv["ratios"]["start_to_delivery_p99"]["median"]
            headline[f"cpu_per_1k_deliveries_ratio_{key}"] = lv["ratios"]["server_cpu_per_1k_deliveries"]["median"]
    if idle.get("ratios"):
        headline["idle_bytes_per_connection_ratio"] = idle["ratios"]["bytes_per_conn"]["median"]
    return {
        "description": SUMMARY,
        "limits": {"rlimit_nofile_hard": a.nofile_hard,
                   "note": "RLIMIT_NOFILE hard limit cannot be raised here (no CAP_SYS_RESOURCE): one server process "
                           "holds at most that many sockets, so 100,000 idle connections is a linear projection"},
        "targets": targets,
        "ratios": headline,
        "figures": {"fanout": fan, "idle": idle},
        "semantics": {
            "docket": "write = POST /api/v1/tasks: appended to the event log and fdatasync'd, projected, then "
                      "answered 201; the event goes to the user's sockets once durable and projected",
            "centrifugo": "write = HTTP API publish to the personal channel #<user>: memory engine, no history, "
                          "nothing written to disk; answered once handed to the local hub",
            "ack_to_delivery": "from the write's HTTP response fully read to the message's last byte read; "
                               "negative when the push arrives first",
            "payload": "Centrifugo publishes, as its data, the exact CloudEvent JSON Docket delivered in the probe "
                       "(same bytes but the write marker)",
        },
        "users": {"count": len(ctx.users), "devices_per_user": a.devices, "template": users_meta},
        "docket_binary": {k: v for k, v in ctx.docket.items() if k != "path"},
        "docket_probe": probe,
        "centrifugo_config": _cf_config(0, "<random per run>", "<random per run>") if a.only != "docket" else None,
        "fanout_runs": fan_runs,
        "idle_runs": idle_runs,
    }
