"""wrk with a Lua request script and extra headers (bench/lib/wrk.py runs only static GETs).

  run(url, connections, duration_s, script=None, headers=None, ...)  a timed, closed-loop run;
      same result dict as wrk.run (parsed by wrk.parse_output: exact percentiles when the script
      loads wrk_report.lua, as taskgen.lua_script(report_lua=wrk.REPORT_LUA) does).
  load(url, connections, script, marker, max_seconds, ...)  a counted run: the script stops its
      thread and writes `marker` once its quota is answered (taskgen.lua's limit mode); wrk is
      then ended with SIGINT (wrk prints its summary on SIGINT) - or at max_seconds, capped.
"""

import os
import signal
import subprocess
import tempfile
import time

from . import procs, wrk


def command(url, connections, duration_s, script=None, headers=None, threads=1, timeout_s=None):
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration_s}s", "--latency"]
    if timeout_s:
        argv.append(f"--timeout={timeout_s}s")
    for k, v in (headers or {}).items():
        argv += ["-H", f"{k}: {v}"]
    argv += ["-s", script or wrk.REPORT_LUA]
    return argv + [url]


def _result(r):
    if r["returncode"] != 0 or "Requests/sec" not in r["stdout"]:
        raise RuntimeError(f"wrk failed (exit {r['returncode']}): {r['command']}\n{r['stdout']}\n{r['stderr']}")
    res = wrk.parse_output(r["stdout"])
    res.update(command=r["command"], raw=r["stdout"], stderr=r["stderr"], wall_seconds=r["wall_seconds"],
               client_cpu_seconds=r["cpu_seconds"], client_runqueue_wait_seconds=r["runqueue_wait_seconds"])
    return res


def run(url, connections, duration_s, script=None, headers=None, cpu=1, threads=1, timeout_s=None, nice=None):
    """Timed run pinned to `cpu`; headers go on every request (with a script that builds its own
    requests, put them in the script instead: wrk's -H only reaches the static request)."""
    argv = command(url, connections, duration_s, script, headers, threads, timeout_s)
    return _result(procs.run_measured(argv, cpu=cpu, timeout=duration_s + 30, nice=nice))


def load(url, connections, script, marker, max_seconds, cpu=1, nice=None, on_tick=None):
    """Counted run: returns the parsed result plus "completed" (the marker appeared) and "seconds".

    on_tick(elapsed_s) is called about once a second (progress output)."""
    argv = procs.taskset_prefix(cpu, nice) + command(url, connections, int(max_seconds) + 5, script)
    if os.path.exists(marker):
        os.unlink(marker)
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err, start_new_session=True)
        procs._LIVE[p.pid] = p  # so bench/run's cleanup stops it on Ctrl-C
        procs.set_autogroup_nice(p.pid, nice)
        completed = False
        last_tick = t0
        reaped = None  # (status, rusage) once wrk has exited
        try:
            while True:
                pid, status, ru = os.wait4(p.pid, os.WNOHANG)
                if pid:
                    reaped = (status, ru)
                    break
                now = time.monotonic()
                if os.path.exists(marker):
                    completed = True
                    break
                if now - t0 > max_seconds:
                    break
                if on_tick and now - last_tick >= 1.0:
                    last_tick = now
                    on_tick(now - t0)
                time.sleep(0.02)
            seconds = time.monotonic() - t0
            if reaped is None:
                p.send_signal(signal.SIGINT)  # wrk stops its threads, prints the summary, runs done()
                _, status, ru = os.wait4(p.pid, 0)
                reaped = (status, ru)
        finally:
            if reaped is None:
                p.kill()
                os.wait4(p.pid, 0)
            p.returncode = 0  # reaped here; keeps Popen from waiting on a PID that is gone
            procs._LIVE.pop(p.pid, None)
        status, ru = reaped
        out.seek(0)
        err.seek(0)
        r = {"command": " ".join(procs._quote(a) for a in argv), "returncode": os.waitstatus_to_exitcode(status),
             "stdout": out.read().decode(errors="replace"), "stderr": err.read().decode(errors="replace"),
             "wall_seconds": seconds, "cpu_seconds": ru.ru_utime + ru.ru_stime,
             "runqueue_wait_seconds": None}
    res = _result(r)
    res.update(completed=completed, seconds=seconds)
    return res
