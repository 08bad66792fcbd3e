"""Run wrk (closed loop, keep-alive) pinned to a CPU and parse everything it prints.

Figures come from two places, both kept:
  * wrk's own text (`--latency`): Requests/sec, the Latency Distribution (50/75/90/99 %),
    "Socket errors: connect N, read N, write N, timeout N", "Non-2xx or 3xx responses: N";
  * bench/lib/wrk_report.lua's done() line: exact microsecond percentiles (p50..p99.99, max)
    and the same error counters, which the JSON prefers when present.
"""

import json
import os
import re

from . import procs

REPORT_LUA = os.path.join(os.path.dirname(os.path.abspath(__file__)), "wrk_report.lua")

_TIME_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}  # -> milliseconds
_SIZE_UNITS = {"B": 1, "KB": 1024, "MB": 1024 ** 2, "GB": 1024 ** 3, "TB": 1024 ** 4}


def _ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", text.strip())
    return float(m.group(1)) * _TIME_UNITS[m.group(2)] if m else None


def _bytes(text):
    m = re.fullmatch(r"([\d.]+)(B|KB|MB|GB|TB)", text.strip())
    return float(m.group(1)) * _SIZE_UNITS[m.group(2)] if m else None


def parse_output(text):
    """Parse wrk's stdout into a dict (milliseconds for latency). Missing items are None / 0."""
    res = {"rps": None, "requests": None, "duration_s": None, "bytes_read": None,
           "latency_ms": {}, "errors": {"connect": 0, "read": 0, "write": 0, "timeout": 0, "non_2xx_3xx": 0}}
    m = re.search(r"^\s*Latency\s+(\S+)\s+(\S+)\s+(\S+)\s+", text, re.M)
    if m:
        res["latency_ms"].update(mean=_ms(m.group(1)), stdev=_ms(m.group(2)), max=_ms(m.group(3)))
    for pct, val in re.findall(r"^\s+(\d+(?:\.\d+)?)%\s+(\S+)\s*$", text, re.M):
        res["latency_ms"]["p" + pct.rstrip("0").rstrip(".") if "." in pct else "p" + pct] = _ms(val)
    m = re.search(r"^\s*(\d+) requests in ([\d.]+\w+), ([\d.]+\w+) read", text, re.M)
    if m:
        res["requests"] = int(m.group(1))
        res["duration_s"] = _ms(m.group(2)) / 1e3 if _ms(m.group(2)) is not None else None
        res["bytes_read"] = _bytes(m.group(3))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    if m:
        res["errors"].update(connect=int(m.group(1)), read=int(m.group(2)),
                             write=int(m.group(3)), timeout=int(m.group(4)))
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if m:
        res["errors"]["non_2xx_3xx"] = int(m.group(1))
    m = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    if m:
        res["rps"] = float(m.group(1))
    m = re.search(r"^WRK_REPORT (\{.*\})\s*$", text, re.M)
    if m:
        rep = json.loads(m.group(1))
        res["exact"] = rep
        lat = rep["latency_us"]
        res["latency_ms"] = {k: lat[k] / 1e3 for k in lat}
        e = rep["errors"]
        res["errors"].update(connect=e["connect"], read=e["read"], write=e["write"], timeout=e["timeout"],
                             non_2xx_3xx=e["status"])
        res["requests"] = rep["requests"]
        res["duration_s"] = rep["duration_us"] / 1e6
        res["bytes_read"] = rep["bytes"]
        if rep["duration_us"]:
            res["rps"] = rep["requests"] / (rep["duration_us"] / 1e6)
    res["errors"]["total"] = sum(v for k, v in res["errors"].items() if k != "total")
    return res


def command(url, connections, duration_s, threads=1, timeout_s=None, exact=True):
    argv = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration_s}s", "--latency"]
    if timeout_s:
        argv.append(f"--timeout={timeout_s}s")
    if exact:
        argv += ["-s", REPORT_LUA]
    return argv + [url]


def run(url, connections, duration_s, cpu=1, threads=1, timeout_s=None, nice=None):
    """Run wrk to completion pinned to `cpu`; returns parsed figures plus command, raw output, client CPU."""
    argv = command(url, connections, duration_s, threads=threads, timeout_s=timeout_s)
    r = procs.run_measured(argv, cpu=cpu, timeout=duration_s + 30, nice=nice)
    if r["returncode"] != 0 or "Requests/sec" not in r["stdout"]:
        raise RuntimeError(f"wrk failed (exit {r['returncode']}): {r['command']}\n{r['stdout']}\n{r['stderr']}")
    res = parse_output(r["stdout"])
    res.update(command=r["command"], raw=r["stdout"], stderr=r["stderr"], wall_seconds=r["wall_seconds"],
               client_cpu_seconds=r["cpu_seconds"], client_runqueue_wait_seconds=r["runqueue_wait_seconds"])
    return res
